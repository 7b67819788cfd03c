//! The predictive model's kinds: gbm against logistic on a non-linear target, exact
//! contributions, reproducibility, model files old and new.

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
        let sum = model.intercept + c.iter().map(|c| c.logit).sum::<f64>();
        let z = model.logit(&e.features);
        assert!((sum - z).abs() < 1e-12, "{sum} vs {z}");
        let direct = model
            .trees
            .as_ref()
            .unwrap()
            .predict_direct(&model.encode(&e.features));
        assert!((direct - z).abs() < 1e-6, "TreeSHAP {z} vs forust {direct}");
        spread = spread.max((z - model.intercept).abs());
    }
    assert!(spread > 0.5, "contributions should move leads: {spread}");
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
