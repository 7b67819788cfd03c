#!/usr/bin/env python3
"""Check leadgate's logistic regression against scikit-learn on a public data set.

Exports scikit-learn's bundled breast-cancer data set (569 rows, 30 numeric columns) to a
CSV with a stratified train/test split column (seed 42, 25% test), fits scikit-learn's
LogisticRegression on the same split with the same penalty (C = 1/λ = 1, intercept not
penalized, StandardScaler on the training rows), and prints its holdout ROC AUC and log loss.
Then run leadgate on the same file (the command is printed) and compare.

    pip install scikit-learn
    python3 tools/sklearn_compare.py /tmp/breast_cancer.csv
"""

import csv
import sys

from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/breast_cancer.csv"
data = load_breast_cancer()
X, y = data.data, data.target
idx = list(range(len(y)))
train_idx, test_idx = train_test_split(idx, test_size=0.25, stratify=y, random_state=42)
test_set = set(test_idx)

with open(out, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow([n.replace(" ", "_") for n in data.feature_names] + ["split", "benign"])
    for i in idx:
        w.writerow([repr(float(v)) for v in X[i]] + ["test" if i in test_set else "train", "yes" if y[i] == 1 else "no"])

scaler = StandardScaler().fit(X[train_idx])
model = LogisticRegression(C=1.0, tol=1e-10, max_iter=100000).fit(scaler.transform(X[train_idx]), y[train_idx])
p = model.predict_proba(scaler.transform(X[test_idx]))[:, 1]
print(f"wrote {out}: {len(train_idx)} train rows, {len(test_idx)} test rows")
print(f"scikit-learn {__import__('sklearn').__version__} LogisticRegression(C=1.0, lbfgs)")
print(f"  holdout ROC AUC {roc_auc_score(y[test_idx], p):.4f}")
print(f"  holdout log loss {log_loss(y[test_idx], p):.4f}")
print(f"  intercept {model.intercept_[0]:.4f}")
print("leadgate, same split and penalty:")
print(f"  leadgate train {out} --outcome benign --split-column split --l2 1 --numeric raw --out /tmp/bc-model.json")
