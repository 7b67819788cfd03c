//! The predictive model's kinds: gbm against logistic on a non-linear target, exact
//! contributions, reproducibility, model files old and new.

mod support;

use std::path::Path;

use leadgate::score::features::{Features, RawValue};
use leadgate::score::model::ModelKind;
use leadgate::score::train::{self, Example, ModelChoice, TrainOptions};
use leadgate::score::Model;

/// XOR-like: converts when exactly one of two signals is high, plus noise columns.
fn xor_leads(n: usize, seed: u64) -> Vec<Example> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|_| {
            let a = rng.f64();
            let b = rng.f64();
            let mut f = Features::new();
            f.insert("attributes.a".into(), RawValue::Num(a));
            f.insert("attributes.b".into(), RawValue::Num(b));
            f.insert("attributes.noise".into(), RawValue::Num(rng.f64()));
            let region = ["north", "south", "east"][rng.usize(..3)];
            f.insert("lead.country".into(), RawValue::Text(region.into()));
            let p = if (a > 0.5) != (b > 0.5) { 0.8 } else { 0.1 };
            Example {
                features: f,
                converted: rng.f64() < p,
                holdout: None,
            }
        })
        .collect()
}

fn opts(model: ModelChoice) -> TrainOptions {
    TrainOptions {
        model,
        min_level_count: 1,
        ..TrainOptions::default()
    }
}

#[test]
fn gbm_beats_logistic_on_an_interaction_and_auto_picks_it() {
    let leads = xor_leads(2000, 7);
    let (_, logistic) = train::fit(&leads, "xor", &opts(ModelChoice::Logistic)).unwrap();
    let (_, gbm) = train::fit(&leads, "xor", &opts(ModelChoice::Gbm)).unwrap();
    assert!(
        gbm.auc > logistic.auc + 0.1,
        "gbm {} vs logistic {}",
        gbm.auc,
        logistic.auc
    );
    let (model, report) = train::fit(&leads, "xor", &opts(ModelChoice::Auto)).unwrap();
    assert_eq!(model.kind, ModelKind::Gbm);
    assert_eq!(report.candidates.len(), 2);
}

#[test]
fn gbm_contributions_add_up_to_the_logit() {
    let leads = xor_leads(1500, 11);
    let (model, _) = train::fit(&leads, "xor", &opts(ModelChoice::Gbm)).unwrap();
    let mut spread = 0.0f64;
    for e in xor_leads(300, 99) {
        let c = model.contributions(&e.features);
        let sum = model.baseline() + c.iter().map(|c| c.logit).sum::<f64>();
        let z = model.logit(&e.features);
        assert!((sum - z).abs() < 1e-12, "{sum} vs {z}");
        let direct = model
            .trees
            .as_ref()
            .unwrap()
            .predict_direct(&model.encode(&e.features));
        let raw = model.raw_logit(&e.features);
        assert!(
            (direct - raw).abs() < 1e-6,
            "TreeSHAP {raw} vs forust {direct}"
        );
        spread = spread.max((z - model.baseline()).abs());
    }
    assert!(spread > 0.5, "contributions should move leads: {spread}");
}

#[test]
fn gbm_explainer_equals_forusts_shapley_values_on_a_loaded_model() {
    let leads = xor_leads(2000, 21);
    let (trained, _) = train::fit(&leads, "xor", &opts(ModelChoice::Gbm)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    trained.save(&path).unwrap();
    // Loading converts the stored trees again: the file's trees are the ones explained.
    let model = Model::load(&path).unwrap();
    let trees = model.trees.as_ref().unwrap();
    assert!(trees.len() > 5, "{} trees test little", trees.len());
    let mut worst = 0.0f64;
    let mut moved = 0.0f64;
    for e in xor_leads(600, 77) {
        let row = model.encode(&e.features);
        let ours = trees.contributions(&row);
        let forust = trees.library_contributions(&row);
        assert_eq!(ours.len(), forust.len());
        for (a, b) in ours.iter().zip(&forust) {
            worst = worst.max((a - b).abs());
            moved = moved.max(a.abs());
        }
        // One pass gives the score and the factors that sum to it.
        let (p, c) = model.explain(&e.features);
        let z = model.baseline() + c.iter().map(|c| c.logit).sum::<f64>();
        assert_eq!(p, leadgate::score::model::sigmoid(z));
        assert!((p - model.predict(&e.features)).abs() < 1e-12);
    }
    assert!(
        worst <= 1e-9,
        "explainer off forust's Shapley values by {worst}"
    );
    assert!(moved > 0.1, "contributions should move leads: {moved}");
}

#[test]
fn gbm_training_is_reproducible_and_round_trips() {
    let leads = xor_leads(1200, 3);
    let (mut a, _) = train::fit(&leads, "xor", &opts(ModelChoice::Gbm)).unwrap();
    let (mut b, _) = train::fit(&leads, "xor", &opts(ModelChoice::Gbm)).unwrap();
    a.trained_at.clear();
    b.trained_at.clear();
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    assert_eq!(a.data_digest, b.data_digest);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    a.save(&path).unwrap();
    let loaded = Model::load(&path).unwrap();
    for e in xor_leads(50, 5) {
        assert_eq!(loaded.predict(&e.features), a.predict(&e.features));
    }
    let shown = loaded.summary();
    assert!(shown.contains("kind         gbm"), "{shown}");
    assert!(shown.contains(a.data_digest.as_deref().unwrap()), "{shown}");
    assert!(shown.contains("attributes.a"), "{shown}");
}

#[test]
fn a_version_1_model_file_still_loads_as_logistic() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/model-v1.json");
    let model = Model::load(&path).unwrap();
    assert_eq!(model.version, 1);
    assert_eq!(model.kind, ModelKind::Logistic);
    assert!(model.trees.is_none() && model.data_digest.is_none());
    assert!(model.summary().contains("kind         logistic"));
}

/// A linear signal in two numbers and a category; strong enough that a heavily penalised
/// regression is far too timid (every probability pulled toward the base rate).
fn linear_leads(n: usize, seed: u64) -> Vec<Example> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|_| {
            let a = rng.f64() * 4.0 - 2.0;
            let b = rng.f64() * 4.0 - 2.0;
            let plan = ["basic", "pro", "team"][rng.usize(..3)];
            let z = -2.0 + 1.8 * a - 1.2 * b + if plan == "pro" { 1.0 } else { 0.0 };
            let mut f = Features::new();
            f.insert("attributes.a".into(), RawValue::Num(a));
            f.insert("attributes.b".into(), RawValue::Num(b));
            f.insert("attributes.plan".into(), RawValue::Text(plan.into()));
            Example {
                features: f,
                converted: rng.f64() < 1.0 / (1.0 + (-z).exp()),
                holdout: None,
            }
        })
        .collect()
}

#[test]
fn calibration_repairs_a_miscalibrated_model_and_keeps_factors_exact() {
    let leads = linear_leads(3000, 21);
    let shrunk = TrainOptions {
        l2: Some(3000.0),
        ..opts(ModelChoice::Logistic)
    };
    let (model, report) = train::fit(&leads, "linear", &shrunk).unwrap();
    let platt = model.calibration.clone().expect("a calibration is fitted");
    assert!(platt.slope > 1.5, "a timid model is stretched: {platt:?}");
    assert_eq!(platt.folds, 5);
    let before = &report.uncalibrated;
    assert!(
        report.log_loss < before.log_loss - 0.01,
        "log loss {} → {}",
        before.log_loss,
        report.log_loss
    );
    assert!(
        report.brier < before.brier - 0.002,
        "Brier {} → {}",
        before.brier,
        report.brier
    );
    // Monotone: the ranking is untouched.
    assert!((report.auc - before.auc).abs() < 1e-12);
    assert!(report.pr_auc > 0.0 && report.pr_auc <= 1.0);
    assert_eq!(report.calibration.len(), 10);
    let rendered = train::render(&report, Path::new("m.json"));
    assert!(
        rendered.contains("before     after calibration") && rendered.contains("PR AUC"),
        "{rendered}"
    );
    for e in linear_leads(200, 5) {
        let c = model.contributions(&e.features);
        let sum = model.baseline() + c.iter().map(|c| c.logit).sum::<f64>();
        let z = model.logit(&e.features);
        assert!((sum - z).abs() < 1e-9, "{sum} vs {z}");
        let raw = model.raw_logit(&e.features);
        assert!((platt.apply(raw) - z).abs() < 1e-9);
    }
    // The calibration travels in the file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    model.save(&path).unwrap();
    let loaded = Model::load(&path).unwrap();
    assert_eq!(loaded.calibration, model.calibration);
    assert!(loaded.summary().contains("calibration  Platt"));
}

#[test]
fn auto_chooses_by_cross_validation_and_records_it() {
    let leads = linear_leads(1500, 8);
    let (model, report) = train::fit(&leads, "linear", &opts(ModelChoice::Auto)).unwrap();
    let (logistic, gbm) = (report.candidates[0].1, report.candidates[1].1);
    let want = if gbm > logistic {
        ModelKind::Gbm
    } else {
        ModelKind::Logistic
    };
    assert_eq!(model.kind, want, "logistic {logistic} vs gbm {gbm}");
    assert_eq!(model.metrics["folds"], 5);
    assert!(model.metrics["chosen_by"]["rule"]
        .as_str()
        .unwrap()
        .contains("k-fold"));
    let three = TrainOptions {
        folds: 3,
        ..opts(ModelChoice::Logistic)
    };
    let (m3, _) = train::fit(&leads, "linear", &three).unwrap();
    assert_eq!(m3.calibration.unwrap().folds, 3);
    let bad = TrainOptions {
        folds: 1,
        ..opts(ModelChoice::Logistic)
    };
    let err = train::fit(&leads, "linear", &bad).unwrap_err().to_string();
    assert!(err.contains("--folds"), "{err}");
}

#[test]
fn check_names_a_model_feature_the_config_cannot_produce() {
    let (dir, cfg) = support::config_copy();
    let leads = linear_leads(600, 4);
    let (mut model, _) = train::fit(&leads, "linear", &opts(ModelChoice::Logistic)).unwrap();
    let scoring = dir.path().join("config/scoring.toml");
    let mut rules = std::fs::read_to_string(&scoring).unwrap();
    rules.push_str("\n[model]\npath = \"model.json\"\nweight = 0.5\n");
    std::fs::write(&scoring, rules).unwrap();
    let model_path = dir.path().join("config/model.json");
    let check = || {
        std::process::Command::new(support::BIN)
            .arg("--config")
            .arg(&cfg)
            .arg("check")
            .output()
            .unwrap()
    };
    // As trained (attributes only) the shipped config produces every feature.
    model.save(&model_path).unwrap();
    let ok = check();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // A model that needs a CRM field leadgate never extracts, and an enriched field.
    model.features[0].name = "crm.stage".into();
    model.features[1].name = "company.revenue".into();
    model.save(&model_path).unwrap();
    let res = check();
    let stderr = String::from_utf8_lossy(&res.stderr).to_string();
    assert_eq!(res.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("feature `crm.stage`"), "{stderr}");
    assert!(!stderr.contains("`company.revenue`"), "{stderr}");
    // With no enrichment provider, company.revenue cannot be filled either.
    let main = std::fs::read_to_string(&cfg).unwrap();
    let emptied = main.replacen(
        "waterfall = [\"local_file\", \"clearbit\", \"peopledatalabs\", \"apollo\", \"hunter\"]",
        "waterfall = []",
        1,
    );
    assert_ne!(main, emptied);
    std::fs::write(&cfg, emptied).unwrap();
    let stderr = String::from_utf8_lossy(&check().stderr).to_string();
    assert!(
        stderr.contains("feature `company.revenue`") && stderr.contains("waterfall"),
        "{stderr}"
    );
}

/// Decides the sample leads into a fresh SQLite store with `leadgate run`, then posts
/// outcomes for all but a few through the store API and overrides one undecided-outcome
/// lead to the top grade. Returns the config, the store URL and the lead ids by decision.
async fn store_with_outcomes(
    url: Option<String>,
) -> (tempfile::TempDir, std::path::PathBuf, String, usize) {
    use leadgate::store::{NewOutcome, Store};
    let (dir, cfg) = support::config_copy();
    let url = url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("lg.db").display()));
    let sample = Path::new("config/sample-leads.csv").canonicalize().unwrap();
    let out = dir.path().join("decisions.jsonl");
    let res = std::process::Command::new(support::BIN)
        .arg("--config")
        .arg(&cfg)
        .args([
            "run",
            sample.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .env("LEADGATE__STORAGE__URL", &url)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let decisions: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(decisions.len() > 100, "{}", decisions.len());
    let store = Store::open(&url).await.unwrap();
    let mut ids: Vec<(String, i64)> = decisions
        .iter()
        .filter_map(|d| Some((d["id"].as_str()?.to_string(), d["score"].as_i64()?)))
        .collect();
    ids.sort();
    ids.dedup_by(|a, b| a.0 == b.0);
    let (last, rest) = ids.split_last().unwrap();
    let mut rng = fastrand::Rng::with_seed(5);
    let mut posted = 0;
    for (id, score) in rest {
        // Higher-scored leads convert more often: something to learn.
        let converted = rng.f64() < (*score as f64 / 100.0).clamp(0.05, 0.9);
        store
            .record_outcome(
                id,
                &NewOutcome {
                    converted,
                    at: chrono::Utc::now(),
                    value: None,
                    source: Some("test".into()),
                },
            )
            .await
            .unwrap();
        posted += 1;
    }
    let top =
        leadgate::pipeline::Pipeline::build(&leadgate::settings::Settings::load(&cfg).unwrap())
            .unwrap()
            .scorer
            .grade_names()[0]
            .clone();
    store
        .add_override(
            &last.0,
            &leadgate::store::console::NewOverride {
                grade: Some(top),
                route: None,
                reason: "met them at the conference".into(),
                by: "rep@example.com".into(),
            },
        )
        .await
        .unwrap()
        .unwrap();
    (dir, cfg, url, posted)
}

#[tokio::test(flavor = "multi_thread")]
async fn train_from_a_sqlite_store_with_outcomes_and_an_override() {
    train_from_store_with_outcomes_and_an_override(None, "store (sqlite)").await;
}

#[cfg(feature = "postgres-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn train_from_a_postgres_store_with_outcomes_and_an_override() {
    let url = support::fresh_postgres_db().await;
    train_from_store_with_outcomes_and_an_override(Some(url), "store (postgres)").await;
}

async fn train_from_store_with_outcomes_and_an_override(url: Option<String>, source: &str) {
    use leadgate::score::store_training::{self, StoreSplit, OVERRIDE_WEIGHT};
    let (dir, cfg, url, posted) = store_with_outcomes(url).await;
    let model_path = dir.path().join("from-store.json");
    let res = std::process::Command::new(support::BIN)
        .arg("--config")
        .arg(&cfg)
        .args([
            "train",
            "--from-store",
            "--outcome",
            "converted",
            "--split",
            "time",
        ])
        .args(["--model", "logistic", "--out", model_path.to_str().unwrap()])
        .env("LEADGATE__STORAGE__URL", &url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&res.stdout).to_string();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(
        stdout.contains("by time: trained on leads decided before"),
        "{stdout}"
    );
    let model = Model::load(&model_path).unwrap();
    assert_eq!(model.source, source);
    assert_eq!(model.metrics["outcomes"], posted);
    assert_eq!(model.metrics["overrides"], 1);
    let rows = model.metrics["train_rows"].as_u64().unwrap()
        + model.metrics["holdout_rows"].as_u64().unwrap();
    assert_eq!(rows as usize, posted + OVERRIDE_WEIGHT);

    // The same rows read through the library: the file's digest is theirs, and the time
    // split trains on the earlier decisions only.
    let store = leadgate::store::Store::open(&url).await.unwrap();
    let grades =
        leadgate::pipeline::Pipeline::build(&leadgate::settings::Settings::load(&cfg).unwrap())
            .unwrap()
            .scorer
            .grade_names();
    let loaded = store_training::load(&store, &grades, &[], 0.25, StoreSplit::Time, 42)
        .await
        .unwrap();
    assert_eq!(
        model.data_digest.as_deref(),
        Some(train::data_digest(&loaded.examples).as_str())
    );
    let cut = loaded.cut.unwrap();
    for (e, r) in loaded.examples.iter().zip(&loaded.rows) {
        if e.holdout == Some(true) {
            assert!(r.decided_at >= cut);
        } else {
            assert!(r.decided_at <= cut);
        }
    }
    let latest_train = loaded
        .rows
        .iter()
        .zip(&loaded.examples)
        .filter(|(_, e)| e.holdout == Some(false))
        .map(|(r, _)| r.decided_at)
        .max()
        .unwrap();
    let earliest_holdout = loaded
        .rows
        .iter()
        .zip(&loaded.examples)
        .filter(|(_, e)| e.holdout == Some(true))
        .map(|(r, _)| r.decided_at)
        .min()
        .unwrap();
    assert!(latest_train <= earliest_holdout);
    let overrides: Vec<_> = loaded
        .rows
        .iter()
        .filter(|r| r.label == "override")
        .collect();
    assert_eq!(overrides.len(), OVERRIDE_WEIGHT);
    assert!(overrides.iter().all(|r| r.converted));
    // An outcome wins over an override on the same lead.
    let outcome_lead = loaded
        .rows
        .iter()
        .find(|r| r.label == "outcome")
        .unwrap()
        .lead_id
        .clone();
    store
        .add_override(
            &outcome_lead,
            &leadgate::store::console::NewOverride {
                grade: Some(grades[0].clone()),
                route: None,
                reason: "sure of it".into(),
                by: "rep@example.com".into(),
            },
        )
        .await
        .unwrap()
        .unwrap();
    let again = store_training::load(&store, &grades, &[], 0.25, StoreSplit::Random, 42)
        .await
        .unwrap();
    assert_eq!(again.overrides, 1);
    assert_eq!(again.examples.len(), loaded.examples.len());
    // The drift report's read: every decided lead in the window, with its outcome if posted.
    let recent = store_training::recent(&store, chrono::Utc::now() - chrono::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(recent.len(), posted + 1);
    assert_eq!(
        recent.iter().filter(|r| r.converted.is_some()).count(),
        posted
    );
    let none = store_training::recent(&store, chrono::Utc::now() + chrono::Duration::days(1))
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[test]
fn drift_flags_the_feature_that_moved_and_the_score() {
    use leadgate::score::drift::{self, Recent};
    let leads = linear_leads(2000, 30);
    let (model, _) = train::fit(&leads, "linear", &opts(ModelChoice::Logistic)).unwrap();
    let baseline = model.training_distribution.clone().unwrap();
    assert_eq!(baseline.score.len(), drift::SCORE_BANDS);
    assert!((baseline.score.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    let now = chrono::Utc::now();
    let same: Vec<Recent> = linear_leads(1500, 31)
        .into_iter()
        .map(|e| Recent {
            features: e.features,
            at: now,
            converted: Some(e.converted),
        })
        .collect();
    let d = drift::compare(&model, &baseline, &same);
    assert!(d.score_psi < drift::WATCH, "{d:?}");
    assert!(d.features.iter().all(|(_, p)| *p < drift::WATCH), "{d:?}");
    // Shift `a` up: it moves, `b` does not, and the score follows `a`.
    let shifted: Vec<Recent> = linear_leads(1500, 32)
        .into_iter()
        .map(|mut e| {
            if let Some(RawValue::Num(a)) = e.features.get_mut("attributes.a") {
                *a = (*a + 1.5).min(2.0);
            }
            Recent {
                features: e.features,
                at: now,
                converted: None,
            }
        })
        .collect();
    let d = drift::compare(&model, &baseline, &shifted);
    let psi = |name: &str| d.features.iter().find(|f| f.0 == name).unwrap().1;
    assert!(psi("attributes.a") > drift::MOVED, "{d:?}");
    assert!(psi("attributes.b") < drift::WATCH, "{d:?}");
    assert!(d.score_psi > drift::MOVED, "{d:?}");
    assert_eq!(d.features[0].0, "attributes.a");
    let shown = drift::render(&d, &baseline, "7d");
    assert!(shown.contains("moved   attributes.a"), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn simulate_drift_on_a_store_reports_psi_and_conversion_by_band() {
    let (dir, cfg, url, _) = store_with_outcomes(None).await;
    let model_path = dir.path().join("config/model.json");
    let run = |args: &[&str]| {
        std::process::Command::new(support::BIN)
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .env("LEADGATE__STORAGE__URL", &url)
            .output()
            .unwrap()
    };
    let res = run(&[
        "train",
        "--from-store",
        "--model",
        "logistic",
        "--out",
        model_path.to_str().unwrap(),
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let scoring = dir.path().join("config/scoring.toml");
    let mut rules = std::fs::read_to_string(&scoring).unwrap();
    rules.push_str("\n[model]\npath = \"model.json\"\nweight = 0.5\n");
    std::fs::write(&scoring, rules).unwrap();
    let res = run(&["simulate", "--from-store", "--drift", "--window", "7d"]);
    let stdout = String::from_utf8_lossy(&res.stdout).to_string();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let model = Model::load(&model_path).unwrap();
    assert!(stdout.contains("leads decided in the last 7d"), "{stdout}");
    assert!(stdout.contains("model score"), "{stdout}");
    for f in &model.features {
        assert!(stdout.contains(&f.name), "{} missing from {stdout}", f.name);
    }
    assert!(
        stdout.contains("Conversion by score band") && stdout.contains("training"),
        "{stdout}"
    );
    // A window before any decision is refused politely, not a panic.
    let bad = run(&["simulate", "--from-store", "--drift", "--window", "soon"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--window"));
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_export_the_score_distribution_as_a_histogram() {
    let (_dir, db) = support::temp_db();
    let daemon = support::Daemon::start(&db, 2, &[]);
    let client = reqwest::Client::new();
    for i in 0..3 {
        let res = client
            .post(daemon.url("/v1/leads"))
            .json(&serde_json::json!({"email": format!("buyer{i}@acme.io"), "title": "VP Sales", "company": "Acme"}))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let text = loop {
        let text = daemon.metrics().await;
        if text.contains("leadgate_lead_score_count{score=\"primary\"} 3") {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    for le in ["10", "50", "100", "+Inf"] {
        assert!(
            text.contains(&format!(
                "leadgate_lead_score_bucket{{score=\"primary\",le=\"{le}\"}}"
            )),
            "le={le} missing: {text}"
        );
    }
    assert!(
        text.contains("leadgate_lead_score_bucket{score=\"primary\",le=\"+Inf\"} 3"),
        "{text}"
    );
}

#[test]
fn the_prepared_encoder_and_feature_logits_equal_the_models_own() {
    let mut leads = xor_leads(1500, 31);
    // Leads without a country teach a `(missing)` column; a rare level pools into `(other)`.
    for (i, e) in leads.iter_mut().enumerate() {
        match i % 50 {
            0 => drop(e.features.remove("lead.country")),
            1 => drop(
                e.features
                    .insert("lead.country".into(), RawValue::Text("west".into())),
            ),
            _ => {}
        }
    }
    let options = TrainOptions {
        min_level_count: 40,
        ..opts(ModelChoice::Gbm)
    };
    let (model, _) = train::fit(&leads, "xor", &options).unwrap();
    let encoder = model.encoder();
    let names: Vec<&str> = model.features.iter().map(|f| f.name.as_str()).collect();
    let mut probes = xor_leads(200, 5);
    let odd = [
        None,
        Some(RawValue::Text("west".into())),
        Some(RawValue::Text("nowhere".into())),
        Some(RawValue::Text("(missing)".into())),
        Some(RawValue::Num(3.0)),
        Some(RawValue::Bool(true)),
        Some(RawValue::List(vec!["north".into()])),
    ];
    for (i, e) in probes.iter_mut().enumerate() {
        match &odd[i % odd.len()] {
            None => drop(e.features.remove("lead.country")),
            Some(v) => drop(e.features.insert("lead.country".into(), v.clone())),
        }
    }
    let mut row = Vec::new();
    for e in &probes {
        let values: Vec<Option<RawValue>> =
            names.iter().map(|n| e.features.get(*n).cloned()).collect();
        encoder.encode(&model, &values, &mut row);
        let want = model.encode_values(&values);
        assert_eq!(row.len(), want.len());
        for (a, b) in row.iter().zip(&want) {
            assert_eq!(a.to_bits(), b.to_bits(), "{:?}", e.features);
        }
        let fast = model.feature_logits_with(&encoder, &values);
        let slow = model.feature_logits(&values);
        assert_eq!(fast, slow);
    }
}
