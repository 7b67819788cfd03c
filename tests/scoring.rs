//! The score stage end to end: decay arithmetic, factors that add up, named scores that
//! routing sees, the account rollup through the store, and the predictive model (training
//! recovers known effects, the model file round-trips).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use leadgate::lead::{EnrichedLead, Enrichment, Provenanced, RawLead};
use leadgate::normalize::Normalizer;
use leadgate::pipeline::Pipeline;
use leadgate::route::LocalAssignments;
use leadgate::rules::RuleFile;
use leadgate::score::features::{Features, RawValue};
use leadgate::score::train::{self, Example, ModelChoice, TrainOptions};
use leadgate::score::{Model, Scorer};
use leadgate::settings::Settings;
use leadgate::store::Store;
use serde_json::{json, Value};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

fn enriched(lead: Value, company: Value) -> EnrichedLead {
    let lead = Normalizer::new(["gmail.com".to_string()].into(), Default::default())
        .normalize(&RawLead(lead.as_object().unwrap().clone()))
        .unwrap();
    let mut enrichment = Enrichment::default();
    for (k, v) in company.as_object().unwrap() {
        enrichment.fields.insert(
            format!("company.{k}"),
            Provenanced {
                value: v.clone(),
                provider: "test".into(),
                at: now(),
                confidence: None,
            },
        );
    }
    EnrichedLead { lead, enrichment }
}

fn scorer(text: &str) -> Scorer {
    Scorer::from_file(&RuleFile::from_text("scoring.toml", text)).unwrap()
}

const SCORES: &str = r#"
[grades]
hot = 80
warm = 50
cool = 20

[caps]
firmographic = 30
negative = -25

[lists]
competitors = ["rival.io"]

[[score]]
id = "fit"
dimensions = ["firmographic", "demographic", "negative"]
grades = { A = 60, B = 30, C = 0 }

[[score]]
id = "engagement"
dimensions = ["behavioral"]

[[score]]
id = "combined"
combine = { fit = 0.6, engagement = 0.4 }

[[rule]]
id = "enterprise"
dimension = "firmographic"
when = "company.employees >= 1000"
points = 25

[[rule]]
id = "software"
dimension = "firmographic"
when = "company.industry == 'Software'"
points = 15

[[rule]]
id = "executive"
dimension = "demographic"
when = "has(person.title) && person.title.contains('Chief')"
points = 20

[[rule]]
id = "competitor"
dimension = "negative"
when = "has(lead.domain) && lead.domain in lists.competitors"
points = -40

[[rule]]
id = "busy-week"
dimension = "behavioral"
when = "activity.count_7d >= 2"
points = 7

[[event]]
id = "pricing"
type = "page_view"
when = "has(event.path) && event.path.startsWith('/pricing')"
points = 10
half_life = "14d"
max = 40

[[event]]
id = "unsubscribed"
type = "unsubscribe"
dimension = "negative"
points = -15
"#;

#[test]
fn decay_matches_hand_computed_values() {
    let s = scorer(SCORES);
    // 10 points today, 10 × 2^(−7/14) = 7.0711 a week ago, 10 × 2^(−21/14) = 3.5355 three
    // weeks ago: 20.6066 → 20.61 points.
    let e = enriched(
        json!({"email": "ada@acme.io", "events": [
            {"type": "page_view", "at": "2026-11-23T12:00:00Z", "path": "/pricing"},
            {"type": "page_view", "at": "2026-11-16T12:00:00Z", "path": "/pricing/team"},
            {"type": "page_view", "at": "2026-11-02T12:00:00Z", "path": "/pricing"},
            {"type": "page_view", "at": "2026-11-23T12:00:00Z", "path": "/blog"}
        ]}),
        json!({}),
    );
    let ctx = s.context(&e, &json!({}), now());
    let (_, cards) = s.score_all(e, &ctx, now());
    let pricing = cards["lead"]
        .factors
        .iter()
        .find(|f| &*f.rule == "pricing")
        .unwrap();
    assert_eq!(pricing.points, 20.61);
    assert_eq!(pricing.matched["events"], json!(3));
    // The latest of the three matching views (the /blog view the same day does not match).
    assert_eq!(pricing.matched["latest"], json!("2026-11-23T12:00:00Z"));
    assert_eq!(
        leadgate::score::decay(
            Some(std::time::Duration::from_secs(14 * 86_400)),
            now() - chrono::Duration::days(7),
            now()
        ),
        0.5f64.sqrt()
    );
}

#[test]
fn factors_sum_exactly_to_every_score() {
    let s = scorer(SCORES);
    let leads = [
        (
            json!({"email": "ceo@acme.io", "title": "Chief Executive Officer"}),
            json!({"employees": 5000, "industry": "Software"}),
        ),
        (
            json!({"email": "x@rival.io", "events": [{"type": "unsubscribe", "at": "2026-11-20T00:00:00Z"}]}),
            json!({"employees": 10}),
        ),
        (
            json!({"email": "y@acme.io", "events": [
                {"type": "page_view", "at": "2026-11-22T00:00:00Z", "path": "/pricing"},
                {"type": "page_view", "at": "2026-11-21T00:00:00Z", "path": "/pricing"},
                {"type": "page_view", "at": "2026-10-01T00:00:00Z", "path": "/pricing"}
            ]}),
            json!({"employees": 1200, "industry": "Software"}),
        ),
        (json!({"email": "z@gmail.com"}), json!({})),
    ];
    for (lead, company) in leads {
        let e = enriched(lead, company);
        let ctx = s.context(&e, &json!({}), now());
        let (primary, cards) = s.score_all(e, &ctx, now());
        assert_eq!(
            cards.keys().collect::<Vec<_>>(),
            ["combined", "engagement", "fit", "lead"]
        );
        for (id, card) in &cards {
            let sum: f64 = card.factors.iter().map(|f| f.points).sum();
            assert!(
                (sum - card.total).abs() < 1e-6,
                "{id}: factors {sum} ≠ total {}: {:?}",
                card.total,
                card.factors
            );
            assert_eq!(card.total.round() as i64, card.score, "{id}");
            assert!((0..=100).contains(&card.score));
            let sorted = card
                .factors
                .windows(2)
                .all(|w| w[0].points.abs() >= w[1].points.abs());
            assert!(
                sorted,
                "{id} factors not sorted by weight: {:?}",
                card.factors
            );
        }
        assert_eq!(primary.score, cards["lead"].score);
        assert_eq!(primary.factors, cards["lead"].factors);
    }
}

#[test]
fn caps_and_negative_caps_hold_and_combinations_weigh_their_parts() {
    let s = scorer(SCORES);
    let e = enriched(
        json!({"email": "ceo@rival.io", "title": "Chief Revenue Officer",
               "events": [{"type": "unsubscribe", "at": "2026-11-20T00:00:00Z"}]}),
        json!({"employees": 5000, "industry": "Software"}),
    );
    let ctx = s.context(&e, &json!({}), now());
    let (_, cards) = s.score_all(e, &ctx, now());
    let lead = &cards["lead"];
    let dim = |d: &str| {
        lead.factors
            .iter()
            .filter(|f| *f.dimension == *d)
            .map(|f| f.points)
            .sum::<f64>()
    };
    // Firmographic 25 + 15 capped at 30; negative −40 − 15 held at −25.
    assert_eq!(dim("firmographic"), 30.0);
    assert_eq!(dim("negative"), -25.0);
    assert_eq!(lead.score, 25);
    let combined = cards["combined"].total;
    let expected = 0.6 * cards["fit"].total + 0.4 * cards["engagement"].total;
    assert!(
        (combined - expected).abs() <= 0.011,
        "{combined} vs {expected}"
    );
    assert_eq!(cards["fit"].grade, "C");
}

#[test]
fn cel_errors_at_load_time_name_the_file_line_and_rule() {
    let bad = SCORES.replace(
        "company.industry == 'Software'",
        "company.industry = 'Software'",
    );
    let err = Scorer::from_file(&RuleFile::from_text("scoring.toml", &bad))
        .unwrap_err()
        .to_string();
    assert!(err.contains("rule \"software\""), "{err}");
    assert!(err.contains("scoring.toml:"), "{err}");
    let bad = SCORES.replace("lists.competitors", "lists.competitor");
    let err = Scorer::from_file(&RuleFile::from_text("scoring.toml", &bad))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rule \"competitor\"") && err.contains("lists.competitor"),
        "{err}"
    );
    let bad = SCORES.replace(
        "combine = { fit = 0.6, engagement = 0.4 }",
        "combine = { fit = 0.6, engagment = 0.4 }",
    );
    let err = Scorer::from_file(&RuleFile::from_text("scoring.toml", &bad))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("score \"combined\" combine") && err.contains("engagment"),
        "{err}"
    );
}

/// A temporary copy of the shipped config with these scoring and routing rules.
fn config_with(scoring: &str, routing: &str) -> (tempfile::TempDir, Settings) {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for f in [
        "free-email-domains.txt",
        "disposable-email-domains.txt",
        "firmographics.csv",
        "accounts.csv",
    ] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let db = dir.path().join("lg.db");
    std::fs::write(
        dir.path().join("leadgate.toml"),
        format!(
            "scoring = \"scoring.toml\"\nrouting = \"routing.toml\"\n[storage]\nurl = \"sqlite://{}\"\n[normalize]\nfree_email_domains = \"free-email-domains.txt\"\ndisposable_email_domains = \"disposable-email-domains.txt\"\n[enrichment]\nwaterfall = [\"local_file\"]\n[providers.local_file]\nfile = \"firmographics.csv\"\n",
            db.display()
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("scoring.toml"), scoring).unwrap();
    std::fs::write(dir.path().join("routing.toml"), routing).unwrap();
    let settings = Settings::load(&dir.path().join("leadgate.toml")).unwrap();
    (dir, settings)
}

const ROUTING: &str = r#"
[[rule]]
id = "great-fit"
when = "scores.fit >= 60 && grades.fit == 'A'"
review = { reason = "great fit" }

[[rule]]
id = "engaged-account"
when = "has(account.score) && account.score >= 10"
review = { reason = "engaged account" }

[fallback]
enroll = { sequence = "awareness" }
"#;

fn lead(v: Value) -> leadgate::lead::Lead {
    Normalizer::new(Default::default(), Default::default())
        .normalize(&RawLead(v.as_object().unwrap().clone()))
        .unwrap()
}

#[tokio::test]
async fn named_scores_and_their_grades_are_visible_to_routing() {
    let (_dir, settings) = config_with(SCORES, ROUTING);
    let pipeline = Pipeline::build(&settings).unwrap();
    let _store = Store::open(&settings.storage_url()).await.unwrap();
    let d = pipeline
        .decide(
            lead(json!({"email": "ceo@hubspot.com", "title": "Chief Executive Officer"})),
            &LocalAssignments::default(),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(d.scores["fit"].grade, "A", "{:?}", d.scores["fit"]);
    assert_eq!(d.route.rule, "great-fit");
    let d = pipeline
        .decide(
            lead(json!({"email": "dev@hubspot.com", "title": "Engineer"})),
            &LocalAssignments::default(),
            now(),
        )
        .await
        .unwrap();
    assert_ne!(d.route.rule, "great-fit");
}

#[tokio::test]
async fn the_account_score_rolls_up_engagement_from_the_store() {
    let scoring = format!("{SCORES}\n[account]\nscore = \"engagement\"\nhalf_life = \"30d\"\n");
    let (_dir, settings) = config_with(&scoring, ROUTING);
    let pipeline = Pipeline::build(&settings).unwrap();
    let store = Store::open(&settings.storage_url()).await.unwrap();
    let engaged = |email: &str| {
        lead(json!({"email": email, "events": [
            {"type": "page_view", "at": "2026-11-23T10:00:00Z", "path": "/pricing"},
            {"type": "page_view", "at": "2026-11-22T10:00:00Z", "path": "/pricing"}
        ]}))
    };
    // Nobody from the account yet: no account score to speak of.
    let first = pipeline
        .decide(
            engaged("a@kestrel-data.io"),
            &LocalAssignments::default(),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(
        first
            .route
            .account
            .as_ref()
            .and_then(|a| a.get("score"))
            .cloned()
            .unwrap_or(json!(0)),
        json!(0)
    );
    let engagement = first.scores["engagement"].score;
    assert!(engagement >= 20, "{:?}", first.scores["engagement"]);
    let mut batch = vec![
        (engaged("a@kestrel-data.io"), first),
        (
            engaged("b@kestrel-data.io"),
            pipeline
                .decide(
                    engaged("b@kestrel-data.io"),
                    &LocalAssignments::default(),
                    now(),
                )
                .await
                .unwrap(),
        ),
    ];
    store
        .record_batch(&mut batch, &Default::default())
        .await
        .unwrap();
    // A third colleague arrives: the two stored leads' engagement rolls up.
    let third = pipeline
        .decide(
            lead(json!({"email": "c@kestrel-data.io"})),
            &LocalAssignments::default(),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(third.route.rule, "engaged-account", "{:?}", third.route);
    // A lead of another account sees none of it.
    let other = pipeline
        .decide(
            lead(json!({"email": "d@acme.io"})),
            &LocalAssignments::default(),
            now(),
        )
        .await
        .unwrap();
    assert_ne!(other.route.rule, "engaged-account");
}

/// Synthetic leads from a known logistic model: x (numeric) +1.5, vip (boolean) −1.0,
/// plan b +0.8 and c −0.8 against a, intercept −1.
fn synthetic(n: usize, seed: u64) -> (Vec<Example>, Vec<f64>) {
    let mut state = seed;
    let mut uniform = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64) / ((1u64 << 53) as f64)
    };
    let mut examples = Vec::new();
    let mut truth = Vec::new();
    for _ in 0..n {
        let (u1, u2) = (uniform().max(1e-12), uniform());
        let x = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let vip = uniform() < 0.4;
        let plan = ["a", "b", "c"][(uniform() * 3.0) as usize % 3];
        let z = -1.0 + 1.5 * x - 1.0 * f64::from(u8::from(vip))
            + match plan {
                "b" => 0.8,
                "c" => -0.8,
                _ => 0.0,
            };
        let p = 1.0 / (1.0 + (-z).exp());
        let mut f = Features::new();
        f.insert("attributes.x".into(), RawValue::Num(x));
        f.insert("attributes.vip".into(), RawValue::Bool(vip));
        f.insert("attributes.plan".into(), RawValue::Text(plan.into()));
        examples.push(Example {
            features: f,
            converted: uniform() < p,
            holdout: None,
        });
        truth.push(p);
    }
    (examples, truth)
}

#[test]
fn training_recovers_the_signs_and_the_auc_the_data_allows() {
    let (examples, truth) = synthetic(4000, 7);
    let opts = TrainOptions::default();
    let (model, report) = train::fit(&examples, "synthetic", &opts).unwrap();
    let c: BTreeMap<String, f64> = model.coefficient_map();
    assert!(c["attributes.x"] > 0.5, "{c:?}");
    assert!(c["attributes.vip"] < -0.1, "{c:?}");
    assert!(
        c["attributes.plan = b"] > c["attributes.plan = a"]
            && c["attributes.plan = a"] > c["attributes.plan = c"],
        "{c:?}"
    );
    // The best any model can do on this holdout: rank by the true probability.
    let held = train::split(&examples, &opts);
    let (p, y): (Vec<f64>, Vec<bool>) = truth
        .iter()
        .zip(&examples)
        .zip(&held)
        .filter(|(_, h)| **h)
        .map(|((p, e), _)| (*p, e.converted))
        .unzip();
    let oracle = train::auc(&p, &y);
    assert!(
        report.auc > oracle - 0.02,
        "trained AUC {} vs the generating model's {oracle}",
        report.auc
    );
    assert!(report.auc > 0.75);
    // Calibrated: the deciles' mean prediction tracks what happened.
    let worst = report
        .calibration
        .iter()
        .map(|d| (d.predicted - d.observed).abs())
        .fold(0.0, f64::max);
    assert!(worst < 0.15, "{:?}", report.calibration);
}

#[test]
fn a_model_file_round_trips() {
    let (examples, _) = synthetic(600, 11);
    let (model, _) = train::fit(
        &examples,
        "synthetic",
        &TrainOptions {
            l2: Some(1.0),
            ..TrainOptions::default()
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.json");
    model.save(&path).unwrap();
    let back = Model::load(&path).unwrap();
    assert_eq!(back, model);
    for e in examples.iter().take(50) {
        assert_eq!(back.predict(&e.features), model.predict(&e.features));
    }
    // Another version is refused with a message that says what to do.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"version\": 2", "\"version\": 99");
    std::fs::write(&path, text).unwrap();
    let err = Model::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("version 99") && err.contains("leadgate train"),
        "{err}"
    );
}

#[test]
fn a_blended_model_explains_itself_and_still_sums_to_the_score() {
    blended_model_explains_itself(ModelChoice::Auto);
}

#[test]
fn a_blended_gbm_explains_itself_and_still_sums_to_the_score() {
    blended_model_explains_itself(ModelChoice::Gbm);
}

fn blended_model_explains_itself(choice: ModelChoice) {
    let (examples, _) = synthetic(800, 3);
    let opts = TrainOptions {
        model: choice,
        ..TrainOptions::default()
    };
    let (model, _) = train::fit(&examples, "synthetic", &opts).unwrap();
    if choice == ModelChoice::Gbm {
        assert!(model.trees.is_some());
    }
    let dir = tempfile::tempdir().unwrap();
    model.save(&dir.path().join("model.json")).unwrap();
    for weight in ["0.5", "1.0"] {
        let text = format!(
            "{SCORES}\n[model]\npath = \"model.json\"\nweight = {weight}\nexplain_top = 2\n"
        );
        let s = Scorer::from_file(&RuleFile::from_text(
            &dir.path().join("scoring.toml").display().to_string(),
            &text,
        ))
        .unwrap();
        let e = enriched(
            json!({"email": "ceo@acme.io", "title": "Chief Executive", "x": 1.2, "vip": "no", "plan": "b"}),
            json!({"employees": 2000}),
        );
        let ctx = s.context(&e, &json!({}), now());
        let (primary, cards) = s.score_all(e.clone(), &ctx, now());
        let sum: f64 = primary.factors.iter().map(|f| f.points).sum();
        assert!((sum - cards["lead"].total).abs() < 1e-6);
        let p = s
            .model()
            .unwrap()
            .predict(&leadgate::score::features::extract(&e));
        assert_eq!(cards["model"].score, (p * 100.0).round() as i64);
        // The model's own card: its factors add up to probability × 100 exactly.
        let own: f64 = cards["model"].factors.iter().map(|f| f.points).sum();
        assert!((own - cards["model"].total).abs() < 1e-6);
        assert!((cards["model"].total - p * 100.0).abs() <= 0.005 + 1e-9);
        // Scoring extracts only the model's features: its factors carry the values and
        // log-odds the model gives the lead's full feature map.
        let features = leadgate::score::features::extract(&e);
        let contributions = s.model().unwrap().contributions(&features);
        let mut named = 0;
        for f in cards["model"].factors.iter() {
            let Some(name) = f.rule.strip_prefix("model: ") else {
                continue;
            };
            let Some(c) = contributions.iter().find(|c| c.feature == name) else {
                continue;
            };
            named += 1;
            assert_eq!(f.matched.get(name), Some(&c.value), "{name}");
            assert_eq!(
                f.description.as_deref(),
                Some(format!("{:+.2} log-odds against an average lead", c.logit).as_str())
            );
        }
        assert!(named >= 1, "{:?}", cards["model"].factors);
        let model_factors: Vec<&str> = primary
            .factors
            .iter()
            .filter(|f| &*f.dimension == "model")
            .map(|f| &*f.rule)
            .collect();
        assert!(
            model_factors.contains(&"model: baseline")
                && model_factors.contains(&"model: attributes.x"),
            "{model_factors:?}"
        );
        if weight == "1.0" {
            assert_eq!(primary.score, (p * 100.0).round() as i64);
            assert!(
                primary.factors.iter().all(|f| &*f.dimension == "model"),
                "{:?}",
                primary.factors
            );
        }
    }
}
