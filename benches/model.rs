//! The predictive model (issue #26, item 8): one `gbm` training run on a generated
//! 45,000 rows × 16 columns set (target: under 60 s, including the k-fold cross-validation
//! and the calibration `leadgate train --model gbm` does), then prediction with
//! contributions (TreeSHAP) per lead (target: under 50 µs), and the explainer beside
//! forust's own contribution call. Prints the figures; asserts nothing about time.
//!
//!     cargo bench --bench model -- --measurement-time 3

use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use leadgate::score::features::{Features, RawValue};
use leadgate::score::train::{self, Example, ModelChoice, TrainOptions};

// The daemon's allocator (src/main.rs), so the figure is the one `serve` sees.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROWS: usize = 45_000;
const INDUSTRIES: &[&str] = &[
    "Software",
    "Retail",
    "Health",
    "Finance",
    "Education",
    "Logistics",
];
const SOURCES: &[&str] = &["webinar", "referral", "paid_search", "organic", "event"];
const COUNTRIES: &[&str] = &["US", "DE", "GB", "FR", "IN", "BR", "JP"];

/// 12 numbers and 4 categories with interactions and non-linear effects, about 12% positive.
fn generate(rows: usize, seed: u64) -> Vec<Example> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let pick =
        |rng: &mut fastrand::Rng, levels: &[&str]| levels[rng.usize(..levels.len())].to_string();
    (0..rows)
        .map(|_| {
            let employees = (rng.f64() * 9.0).exp();
            let visits = (rng.f64() * 40.0).floor();
            let pricing = (rng.f64() * rng.f64() * 10.0).floor();
            let tenure = rng.f64() * 20.0;
            let budget = rng.f64() * 100.0;
            let noise: Vec<f64> = (0..7).map(|_| rng.f64()).collect();
            let industry = pick(&mut rng, INDUSTRIES);
            let source = pick(&mut rng, SOURCES);
            let country = pick(&mut rng, COUNTRIES);
            let plan = pick(&mut rng, &["free", "team", "enterprise"]);
            let mut z = -2.9 - 0.5 * (employees.ln() - 4.5).abs().min(2.0)
                + 0.08 * visits.min(15.0)
                + if pricing >= 2.0 && industry == "Software" {
                    1.4
                } else {
                    0.0
                }
                + if source == "referral" { 0.9 } else { 0.0 }
                + (tenure / 3.0).sin() * 0.6
                + if budget > 60.0 && plan == "enterprise" {
                    1.2
                } else {
                    0.0
                };
            z += 0.3 * (noise[0] - 0.5);
            let p = 1.0 / (1.0 + (-z).exp());
            let mut f = Features::new();
            let num = |f: &mut Features, name: &str, v: f64| {
                f.insert(format!("attributes.{name}"), RawValue::Num(v));
            };
            num(&mut f, "employees", employees.round());
            num(&mut f, "visits", visits);
            num(&mut f, "pricing_views", pricing);
            num(&mut f, "tenure", tenure);
            num(&mut f, "budget", budget);
            for (i, n) in noise.iter().enumerate() {
                num(&mut f, &format!("noise{i}"), *n);
            }
            f.insert("attributes.industry".into(), RawValue::Text(industry));
            f.insert("lead.source".into(), RawValue::Text(source));
            f.insert("lead.country".into(), RawValue::Text(country));
            f.insert("attributes.plan".into(), RawValue::Text(plan));
            Example {
                features: f,
                converted: rng.f64() < p,
                holdout: None,
            }
        })
        .collect()
}

fn main() {
    let examples = generate(ROWS, 42);
    let positives = examples.iter().filter(|e| e.converted).count();
    let opts = TrainOptions {
        model: ModelChoice::Gbm,
        ..TrainOptions::default()
    };
    let started = Instant::now();
    let (model, report) = train::fit(&examples, "bench", &opts).expect("the generated set trains");
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "gbm training: {ROWS} rows × {} columns ({:.1}% converted), {} folds + final fit, {} trees: {seconds:.1} s (target < 60 s); holdout ROC AUC {:.4}",
        examples[0].features.len(),
        100.0 * positives as f64 / ROWS as f64,
        report.folds,
        report.trees,
        report.auc,
    );

    let leads: Vec<Features> = generate(1_000, 7).into_iter().map(|e| e.features).collect();
    let mut c = Criterion::default().configure_from_args();
    let mut at = 0;
    // What scoring pays per lead: the score and its factors from one pass (Model::explain).
    c.bench_function("gbm score + contributions, one pass, per lead", |b| {
        b.iter(|| {
            let lead = &leads[at % leads.len()];
            at += 1;
            black_box(model.explain(lead))
        })
    });
    c.bench_function("gbm predict + contributions per lead", |b| {
        b.iter(|| {
            let lead = &leads[at % leads.len()];
            at += 1;
            black_box((model.predict(lead), model.contributions(lead)))
        })
    });
    // The explainer against forust's own contribution call on the same encoded rows.
    let trees = model.trees.as_ref().expect("a gbm model has trees");
    let rows: Vec<Vec<f64>> = leads.iter().map(|l| model.encode(l)).collect();
    c.bench_function("TreeSHAP per row: leadgate's flat explainer", |b| {
        b.iter(|| {
            let row = &rows[at % rows.len()];
            at += 1;
            black_box(trees.contributions(row))
        })
    });
    c.bench_function("TreeSHAP per row: forust predict_contributions", |b| {
        b.iter(|| {
            let row = &rows[at % rows.len()];
            at += 1;
            black_box(trees.library_contributions(row))
        })
    });
    c.final_summary();

    if std::env::var_os("LEADGATE_BENCH_GBM_SETTINGS").is_some() {
        settings(&examples, &model);
    }
}

/// LEADGATE_BENCH_GBM_SETTINGS=1: boosting settings side by side on the same encoded rows —
/// trees kept, ROC AUC on 10,000 fresh leads, and explanation time per row — to see whether
/// fewer or shallower trees explain faster at equal AUC.
fn settings(examples: &[Example], model: &leadgate::score::Model) {
    use leadgate::score::gbm::{GbmOptions, Trees};
    let xs: Vec<Vec<f64>> = examples.iter().map(|e| model.encode(&e.features)).collect();
    let y: Vec<f64> = examples
        .iter()
        .map(|e| f64::from(u8::from(e.converted)))
        .collect();
    let weight = vec![1.0; y.len()];
    let fresh = generate(10_000, 1234);
    let rows: Vec<Vec<f64>> = fresh.iter().map(|e| model.encode(&e.features)).collect();
    let converted: Vec<bool> = fresh.iter().map(|e| e.converted).collect();
    let base = GbmOptions::default();
    let tries = [
        ("shipped: depth 4, rate 0.1, stop after 20", base),
        (
            "depth 3",
            GbmOptions {
                max_depth: 3,
                ..base
            },
        ),
        (
            "depth 2",
            GbmOptions {
                max_depth: 2,
                ..base
            },
        ),
        (
            "depth 5",
            GbmOptions {
                max_depth: 5,
                ..base
            },
        ),
        (
            "rate 0.2",
            GbmOptions {
                learning_rate: 0.2,
                ..base
            },
        ),
        (
            "depth 3, rate 0.2",
            GbmOptions {
                max_depth: 3,
                learning_rate: 0.2,
                ..base
            },
        ),
        (
            "stop after 10",
            GbmOptions {
                early_stopping_rounds: 10,
                ..base
            },
        ),
    ];
    println!("| gbm settings | trees | ROC AUC (10,000 fresh leads) | fit s | explain µs/row |");
    println!("|---|---|---|---|---|");
    for (name, opts) in tries {
        let started = Instant::now();
        let (trees, n) = Trees::fit(&xs, &y, &weight, &opts).expect("the generated set trains");
        let fit = started.elapsed().as_secs_f64();
        let scores: Vec<f64> = rows.iter().map(|r| trees.logit(r)).collect();
        let auc = leadgate::score::train::auc(&scores, &converted);
        let started = Instant::now();
        for _ in 0..3 {
            for r in &rows {
                black_box(trees.contributions(r));
            }
        }
        let us = started.elapsed().as_secs_f64() * 1e6 / (3 * rows.len()) as f64;
        println!("| {name} | {n} | {auc:.4} | {fit:.1} | {us:.1} |");
    }
}
