//! Scoring one lead against 100 rules and 20 event rules (the lead has 20 events): the
//! time per lead of the score stage, with and without building the lead's rule context.
//! Target: under 20 µs per lead. Prints the figure; asserts nothing about time.
//!
//!     cargo bench --bench scoring -- --measurement-time 3

use std::fmt::Write as _;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use leadgate::lead::{EnrichedLead, Enrichment, Provenanced, RawLead};
use leadgate::normalize::Normalizer;
use leadgate::route::Router;
use leadgate::rules::{Condition, RuleContext, RuleFile, Scope};
use leadgate::score::Scorer;
use serde_json::json;

// The daemon's allocator (src/main.rs), so the figure is the one `serve` sees.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// 100 rules in the shapes the shipped config uses (comparisons, membership, presence,
/// string tests), 20 event rules with and without conditions and decay.
fn rules() -> String {
    let mut t = String::from("[grades]\nhot = 80\nwarm = 50\ncool = 20\n[caps]\nfirmographic = 45\ndemographic = 35\n\n[[score]]\nid = \"fit\"\ndimensions = [\"firmographic\", \"demographic\"]\n\n");
    let conditions = [
        ("firmographic", "company.employees >= {n}"),
        (
            "firmographic",
            "company.industry in ['Software', 'Financial Services', 'Industry {n}']",
        ),
        (
            "firmographic",
            "has(company.revenue) && company.revenue > {n}000",
        ),
        (
            "firmographic",
            "company.tech.exists(t, t in ['salesforce', 'hubspot', 'tool{n}'])",
        ),
        (
            "demographic",
            "has(person.title) && person.title.contains('Officer')",
        ),
        (
            "demographic",
            "has(person.title) && person.title.startsWith('Chief')",
        ),
        (
            "intent",
            "has(lead.attributes.budget) && lead.attributes.budget == '50k+'",
        ),
        (
            "intent",
            "lead.source in ['referral', 'chat', 'webinar', 'src{n}']",
        ),
        ("negative", "email.is_free || email.is_disposable"),
        ("engagement", "activity.count_30d >= {n}"),
    ];
    for i in 0..100 {
        let (dim, when) = conditions[i % conditions.len()];
        let _ = writeln!(
            t,
            "[[rule]]\nid = \"r{i}\"\ndimension = \"{dim}\"\nwhen = \"{}\"\npoints = {}\n",
            when.replace("{n}", &i.to_string()),
            (i % 7) as i64 - 2
        );
    }
    let types = [
        "page_view",
        "email_click",
        "form_submit",
        "webinar_attended",
        "trial_activity",
    ];
    for i in 0..20 {
        let kind = types[i % types.len()];
        let when = match i % 4 {
            0 => "when = \"has(event.path) && event.path.startsWith('/pricing')\"\n",
            1 => "when = \"has(event.campaign)\"\n",
            _ => "",
        };
        let _ = writeln!(t, "[[event]]\nid = \"e{i}\"\ntype = \"{kind}\"\n{when}points = {}\nhalf_life = \"14d\"\nmax = 30\n", 2 + i % 5);
    }
    t
}

fn lead() -> EnrichedLead {
    let types = [
        "page_view",
        "email_click",
        "form_submit",
        "webinar_attended",
        "trial_activity",
    ];
    let events: Vec<serde_json::Value> = (0..20)
        .map(|i| json!({"type": types[i % 5], "at": format!("2026-11-{:02}T10:00:00Z", 1 + i), "path": if i % 2 == 0 { "/pricing" } else { "/blog" }, "campaign": "nurture"}))
        .collect();
    let raw = json!({"email": "ada@acme.io", "title": "Chief Revenue Officer", "source": "webinar", "budget": "50k+", "events": events});
    let lead = Normalizer::default()
        .normalize(&RawLead(raw.as_object().unwrap().clone()))
        .unwrap();
    let mut enrichment = Enrichment::default();
    let at = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap();
    for (k, v) in [
        ("company.employees", json!(240)),
        ("company.industry", json!("Software")),
        ("company.revenue", json!(38_000_000)),
        ("company.tech", json!(["salesforce", "hubspot", "aws"])),
        ("company.country", json!("US")),
    ] {
        enrichment.fields.insert(
            k.into(),
            Provenanced {
                value: v,
                provider: "bench".into(),
                at,
                confidence: None,
            },
        );
    }
    EnrichedLead { lead, enrichment }
}

fn bench(c: &mut Criterion) {
    let scorer = Scorer::from_file(&RuleFile::from_text("bench-scoring.toml", &rules()))
        .expect("the bench rules load");
    assert_eq!(scorer.rule_count(), 120);
    let enriched = lead();
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
    let account = json!({});
    let ctx = scorer.context(&enriched, &account, now);

    c.bench_function("score 1 lead: 100 rules + 20 event rules, 20 events", |b| {
        // The pipeline moves the enriched lead into the score stage; the copy made here for
        // each iteration is set up outside the timing.
        b.iter_batched(
            || enriched.clone(),
            |lead| scorer.score_all(lead, &ctx, now),
            BatchSize::SmallInput,
        )
    });
    c.bench_function("context + score 1 lead", |b| {
        b.iter_batched(
            || enriched.clone(),
            |lead| {
                let ctx = scorer.context(&lead, &account, now);
                scorer.score_all(lead, &ctx, now)
            },
            BatchSize::SmallInput,
        )
    });

    // Rule evaluation alone: the 100 rule conditions against one built context, no factors.
    let conditions: Vec<Condition> = rules()
        .lines()
        .filter_map(|l| l.strip_prefix("when = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter_map(|w| Condition::compile(w, &Scope::scoring()).ok())
        .collect();
    c.bench_function("evaluate 100 rule conditions (no factors)", |b| {
        b.iter(|| conditions.iter().filter(|w| w.eval(&ctx).matched()).count())
    });

    // A plain figure for the README, outside criterion's statistics: the copies of the
    // input are made before the clock starts, the results dropped after it stops, in
    // batches of 100 leads.
    let timed = |with_context: bool| {
        let mut spent = std::time::Duration::ZERO;
        for _ in 0..20 {
            let inputs: Vec<EnrichedLead> = (0..100).map(|_| enriched.clone()).collect();
            let started = Instant::now();
            let out: Vec<_> = inputs
                .into_iter()
                .map(|lead| {
                    if with_context {
                        let own = scorer.context(&lead, &account, now);
                        scorer.score_all(lead, &own, now)
                    } else {
                        scorer.score_all(lead, &ctx, now)
                    }
                })
                .collect();
            spent += started.elapsed();
            drop(out);
        }
        spent.as_secs_f64() * 1e6 / 2000.0
    };
    timed(true);
    let score_only = timed(false);
    let with_context = timed(true);
    println!("\nscoring: {score_only:.1} µs per lead (100 rules + 20 event rules, 20 events); {with_context:.1} µs including the rule context (target < 20 µs)");

    // Issue 25: a person whose stored history holds 1,000 events (what the worker scores
    // after `events::with_history`), context included as the arrival path builds it
    // (`Pipeline::decide`): with the event list only when a scoring or a routing rule reads it.
    let router = Router::load(std::path::Path::new("config/routing.toml"))
        .expect("the shipped routing loads");
    let event_list = scorer.reads_event_list() || router.reads_event_list();
    let arrival_context = |lead: &EnrichedLead| {
        let mut ctx = RuleContext::for_lead_reading(lead, &account, now, event_list);
        scorer.prepare(&mut ctx);
        ctx
    };
    let mut history = enriched.clone();
    let types = [
        "page_view",
        "email_click",
        "form_submit",
        "webinar_attended",
        "trial_activity",
    ];
    history.lead.events = (0..1000)
        .map(|i| {
            serde_json::from_value(json!({"type": types[i % 5], "at": (now - chrono::Duration::minutes(37 * i as i64)).to_rfc3339(), "path": if i % 2 == 0 { "/pricing" } else { "/blog" }}))
                .unwrap()
        })
        .collect();
    c.bench_function("context + score 1 person with 1,000 stored events", |b| {
        b.iter_batched(
            || history.clone(),
            |lead| {
                let ctx = arrival_context(&lead);
                scorer.score_all(lead, &ctx, now)
            },
            BatchSize::SmallInput,
        )
    });
    let mut spent = std::time::Duration::ZERO;
    for _ in 0..200 {
        let lead = history.clone();
        let started = Instant::now();
        let ctx = arrival_context(&lead);
        let out = scorer.score_all(lead, &ctx, now);
        spent += started.elapsed();
        drop(out);
    }
    // The context alone, to tell its share from the scoring's.
    let mut built = std::time::Duration::ZERO;
    for _ in 0..200 {
        let started = Instant::now();
        let ctx = arrival_context(&history);
        built += started.elapsed();
        drop(ctx);
    }
    println!(
        "scoring a person with 1,000 stored events: {:.1} µs including the rule context, {:.1} µs of it the context (target < 100 µs)",
        spent.as_secs_f64() * 1e6 / 200.0,
        built.as_secs_f64() * 1e6 / 200.0
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
