#!/usr/bin/python3
"""Issue #26 item 7: leadgate's models beside scikit-learn's on the same split.

Run by hand (not in CI), from the repository root, after `cargo build --release`:

    apt-get install -y python3-sklearn      # Debian's scikit-learn for /usr/bin/python3
    /usr/bin/python3 scripts/compare_sklearn.py [--leadgate target/release/leadgate] [--rows 48000]
    /usr/bin/python3 scripts/compare_sklearn.py --past-leads config/past-leads.csv [--folds 5] \
        [--gbm-flags "--exclude company.revenue" ...]

With --past-leads the same comparison runs as stratified k-fold cross-validation on that file
(600 rows are too few for one split to mean much); --gbm-flags adds leadgate gbm runs with
other `leadgate train` flags. leadgate enriches each lead from config/firmographics.csv
(company.* features) where scikit-learn sees the file's columns only; excluding the enriched
fields with --gbm-flags gives the like-for-like comparison.

Generates a lead-like data set (fixed seed; interactions, non-linear effects, ~12% converted)
as one CSV with a `split` column (stratified 75/25), trains scikit-learn's
HistGradientBoostingClassifier and LogisticRegression on the `train` rows, runs
`leadgate train --split-column split` with `--model auto` and `--model gbm` on the same
file, and prints the holdout ROC AUC of each (leadgate's from the model file's metrics).
"""

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

SEED = 42
INDUSTRIES = ["Software", "Retail", "Health", "Finance", "Education", "Logistics", "Manufacturing"]
SOURCES = ["webinar", "referral", "paid_search", "organic", "event", "partner"]
COUNTRIES = ["US", "DE", "GB", "FR", "IN", "BR", "JP", "CA"]
PLANS = ["free", "team", "enterprise"]
NUMERIC = ["headcount", "web_visits", "pricing_views", "months_since_signup",
           "stated_budget_k", "seats_requested", "emails_opened", "noise_a", "noise_b"]
CATEGORICAL = ["industry_segment", "plan_interest", "source", "country"]


def generate(rows, rng):
    headcount = np.round(np.exp(rng.normal(4.0, 1.6, rows)))
    web_visits = rng.poisson(6, rows).astype(float)
    pricing_views = rng.poisson(0.8, rows).astype(float)
    months = rng.uniform(0, 36, rows)
    budget = np.round(rng.gamma(2.0, 20.0, rows), 1)
    seats = rng.poisson(np.clip(headcount / 40, 1, 60)).astype(float)
    emails = rng.binomial(12, 0.3, rows).astype(float)
    noise_a = rng.normal(0, 1, rows)
    noise_b = rng.uniform(0, 100, rows)
    industry = rng.choice(INDUSTRIES, rows, p=[0.3, 0.12, 0.12, 0.16, 0.1, 0.1, 0.1])
    plan = rng.choice(PLANS, rows, p=[0.55, 0.3, 0.15])
    source = rng.choice(SOURCES, rows, p=[0.15, 0.08, 0.3, 0.3, 0.1, 0.07])
    country = rng.choice(COUNTRIES, rows)

    log_size = np.log1p(headcount)
    z = (
        -0.9 * (log_size - 5.0) ** 2 / 4.0                  # sweet spot in company size
        + 0.9 * np.tanh(web_visits / 6.0)                     # saturating engagement
        + 0.35 * np.minimum(pricing_views, 4)
        + 1.1 * ((pricing_views >= 2) & (industry == "Software"))   # interaction
        + 0.9 * (source == "referral") + 0.4 * (source == "webinar")
        - 0.6 * (source == "paid_search")
        + 0.5 * np.sin(months / 4.0)                           # periodic effect
        - 0.03 * np.maximum(months - 24, 0)
        + 1.2 * ((budget > 50) & (plan == "enterprise"))       # interaction
        + 0.6 * (plan == "team") - 0.4 * (country == "IN")
        + 0.25 * np.log1p(seats) * (industry == "Finance")
        + 0.08 * emails
    )
    # The intercept that gives ~12% converted, found by bisection.
    lo, hi = -10.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if (1 / (1 + np.exp(-(z + mid)))).mean() < 0.12:
            lo = mid
        else:
            hi = mid
    p = 1 / (1 + np.exp(-(z + lo)))
    y = (rng.uniform(0, 1, rows) < p).astype(int)
    numeric = np.column_stack([headcount, web_visits, pricing_views, np.round(months, 2), budget,
                               seats, emails, np.round(noise_a, 4), np.round(noise_b, 3)])
    categorical = np.column_stack([industry, plan, source, country])
    return numeric, categorical, y


def write_csv(path, numeric, categorical, y, test):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(NUMERIC + CATEGORICAL + ["converted", "split"])
        for i in range(len(y)):
            w.writerow([repr(float(v)) if not float(v).is_integer() else int(v) for v in numeric[i]]
                       + list(categorical[i])
                       + ["yes" if y[i] else "no", "test" if test[i] else "train"])


def leadgate_auc(binary, csv_path, model, out_dir, flags=()):
    out = os.path.join(out_dir, f"model-{model}.json")
    started = time.time()
    run = subprocess.run([binary, "train", csv_path, "--split-column", "split", "--model", model,
                          *flags, "--out", out], capture_output=True, text=True)
    seconds = time.time() - started
    if run.returncode != 0:
        sys.exit(f"leadgate train --model {model} failed:\n{run.stdout}\n{run.stderr}")
    with open(out) as f:
        metrics = json.load(f)["metrics"]
    return metrics, seconds


# config/past-leads.csv: the columns scikit-learn sees (identifiers left out, as leadgate's
# features leave them out). leadgate also enriches each lead from config/firmographics.csv.
PAST_NUMERIC = ["employees", "page_views", "pricing_visits"]
PAST_CATEGORICAL = ["title", "country", "source", "utm_campaign", "budget", "timeline",
                    "industry", "demo_requested"]


def past_leads(binary, path, folds, extra):
    """Stratified k-fold CV on a file of past leads: every model is fitted on the same k−1
    folds and judged on the remaining one; prints the mean and spread of the fold AUCs."""
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import StratifiedKFold

    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames
        rows = list(reader)
    y = np.array([1 if r["converted"].strip().lower() in ("yes", "true", "1") else 0 for r in rows])
    num = np.array([[float(r[c]) if r[c].strip() else np.nan for c in PAST_NUMERIC] for r in rows])
    cat = np.array([[r[c].strip() or "(missing)" for c in PAST_CATEGORICAL] for r in rows],
                   dtype=object)
    x = np.empty((len(rows), len(PAST_NUMERIC) + len(PAST_CATEGORICAL)), dtype=object)
    x[:, : len(PAST_NUMERIC)] = num
    x[:, len(PAST_NUMERIC):] = cat
    num_cols = list(range(len(PAST_NUMERIC)))
    cat_cols = list(range(len(PAST_NUMERIC), x.shape[1]))

    def hgb():
        return make_pipeline(
            ColumnTransformer([("cat", OrdinalEncoder(handle_unknown="use_encoded_value",
                                                      unknown_value=np.nan), cat_cols)],
                              remainder="passthrough"),
            HistGradientBoostingClassifier(categorical_features=list(range(len(cat_cols))),
                                           random_state=SEED))

    def logreg():
        return make_pipeline(
            ColumnTransformer([
                ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True),
                                      StandardScaler()), num_cols),
                ("cat", OneHotEncoder(handle_unknown="ignore"), cat_cols)]),
            LogisticRegression(C=1.0, max_iter=5000))

    runs = [("scikit-learn HistGradientBoostingClassifier (defaults, native categoricals)", "hgb"),
            ("scikit-learn LogisticRegression (C=1, median-imputed + flags, standardized, one-hot)",
             "lr"),
            ("leadgate train --model gbm", "gbm"),
            ("leadgate train --model logistic", "logistic"),
            ("leadgate train --model auto", "auto")]
    runs += [(f"leadgate train --model gbm {' '.join(e)}", ("gbm", e)) for e in extra]
    aucs = {label: [] for label, _ in runs}
    chose = []
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
    with tempfile.TemporaryDirectory() as tmp:
        for k, (train_idx, test_idx) in enumerate(split.split(x, y)):
            fold_csv = os.path.join(tmp, f"fold{k}.csv")
            test = set(test_idx.tolist())
            with open(fold_csv, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(header + ["split"])
                for i, r in enumerate(rows):
                    w.writerow([r[c] for c in header] + ["test" if i in test else "train"])
            for label, run in runs:
                if run in ("hgb", "lr"):
                    m = hgb() if run == "hgb" else logreg()
                    m.fit(x[train_idx], y[train_idx])
                    aucs[label].append(roc_auc_score(y[test_idx], m.predict_proba(x[test_idx])[:, 1]))
                    continue
                model, flags = run if isinstance(run, tuple) else (run, [])
                metrics, _ = leadgate_auc(binary, fold_csv, model, tmp, flags)
                aucs[label].append(metrics["auc"])
                if model == "auto":
                    chose.append(metrics["kind"])

    print(f"{path}: {len(y)} rows ({y.mean():.1%} converted); stratified {folds}-fold CV "
          f"(seed {SEED}), every model on the same folds; leadgate: {binary}")
    print(f"leadgate --model auto chose: {', '.join(chose)}")
    print()
    print("| model | mean ROC AUC over folds | min–max |")
    print("|---|---|---|")
    for label, _ in runs:
        a = aucs[label]
        print(f"| {label} | {np.mean(a):.4f} | {min(a):.4f}–{max(a):.4f} |")
    gap = np.mean(aucs["leadgate train --model gbm"]) - np.mean(aucs[runs[0][0]])
    print()
    print(f"leadgate gbm − HistGradientBoosting: {gap:+.4f} ROC AUC (target ≥ −0.005)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leadgate", default=None, help="the leadgate binary")
    ap.add_argument("--rows", type=int, default=48_000)
    ap.add_argument("--keep", default=None, help="also write the CSV here")
    ap.add_argument("--past-leads", default=None, metavar="CSV",
                    help="instead of generated data: k-fold CV on this file (config/past-leads.csv)")
    ap.add_argument("--folds", type=int, default=5, help="with --past-leads")
    ap.add_argument("--gbm-flags", action="append", default=[], metavar="FLAGS",
                    help="also run `leadgate train --model gbm FLAGS` "
                         "(repeatable), e.g. \"--exclude company.employees,company.revenue\"")
    args = ap.parse_args()
    binary = args.leadgate or next(
        (b for b in ("target/release/leadgate", "target/debug/leadgate") if os.path.exists(b)), None)
    if binary is None:
        sys.exit("no leadgate binary: build it (cargo build --release) or pass --leadgate")
    if args.past_leads:
        past_leads(binary, args.past_leads, args.folds, [f.split() for f in args.gbm_flags])
        return

    rng = np.random.default_rng(SEED)
    numeric, categorical, y = generate(args.rows, rng)
    idx = np.arange(len(y))
    train_idx, test_idx = train_test_split(idx, test_size=0.25, stratify=y, random_state=SEED)
    test = np.zeros(len(y), dtype=bool)
    test[test_idx] = True

    x = np.empty((len(y), len(NUMERIC) + len(CATEGORICAL)), dtype=object)
    x[:, : len(NUMERIC)] = numeric
    x[:, len(NUMERIC):] = categorical
    num_cols = list(range(len(NUMERIC)))
    cat_cols = list(range(len(NUMERIC), x.shape[1]))
    rows = []

    hgb = make_pipeline(
        ColumnTransformer([("cat", OrdinalEncoder(), cat_cols)], remainder="passthrough"),
        HistGradientBoostingClassifier(categorical_features=list(range(len(cat_cols))),
                                       random_state=SEED),
    )
    started = time.time()
    hgb.fit(x[train_idx], y[train_idx])
    rows.append(("scikit-learn HistGradientBoostingClassifier (defaults, native categoricals)",
                 roc_auc_score(y[test_idx], hgb.predict_proba(x[test_idx])[:, 1]), time.time() - started))

    logreg = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), num_cols),
                           ("cat", OneHotEncoder(handle_unknown="ignore"), cat_cols)]),
        LogisticRegression(C=1.0, max_iter=5000),
    )
    started = time.time()
    logreg.fit(x[train_idx], y[train_idx])
    rows.append(("scikit-learn LogisticRegression (C=1, standardized, one-hot)",
                 roc_auc_score(y[test_idx], logreg.predict_proba(x[test_idx])[:, 1]), time.time() - started))

    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or os.path.join(tmp, "leads.csv")
        write_csv(path, numeric, categorical, y, test)
        for model in ("auto", "gbm"):
            m, seconds = leadgate_auc(binary, path, model, tmp)
            label = f"leadgate train --model {model}" + (f" (chose {m['kind']})" if model == "auto" else "")
            rows.append((label, m["auc"], seconds))
        for flags in args.gbm_flags:
            m, seconds = leadgate_auc(binary, path, "gbm", tmp, flags.split())
            rows.append((f"leadgate train --model gbm {flags}", m["auc"], seconds))

    print(f"{len(y)} rows ({y.mean():.1%} converted), {len(NUMERIC)} numeric + {len(CATEGORICAL)} "
          f"categorical columns, stratified 75/25 split (seed {SEED}); leadgate: {binary}")
    print()
    print("| model | holdout ROC AUC | fit time (s) |")
    print("|---|---|---|")
    for label, auc, seconds in rows:
        print(f"| {label} | {auc:.4f} | {seconds:.1f} |")
    gap = rows[3][1] - rows[0][1]
    print()
    print(f"leadgate gbm − HistGradientBoosting: {gap:+.4f} ROC AUC (target ≥ −0.005)")


if __name__ == "__main__":
    main()
