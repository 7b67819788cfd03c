use super::*;
use crate::lead::{EnrichedLead, Enrichment, Provenanced, RawLead, SkipKind};
use chrono::TimeZone;
use serde_json::json;
use std::collections::BTreeMap;

const ROUTING: &str = r#"
[[rule]]
id = "existing-account"
when = "account.owner != ''"
assign = { to = "account_owner" }

[[rule]]
id = "hot"
when = "grade == 'hot'"
assign = { pool = "ae" }

[[rule]]
id = "junk"
when = "email.is_disposable"
disqualify = { reason = "disposable email" }

[[rule]]
id = "warm"
when = "grade == 'warm'"
enroll = { sequence = "mid-funnel", connector = "hubspot" }

[fallback]
enroll = { sequence = "awareness" }

[[pool]]
id = "ae"
strategy = "round_robin"
members = [
  { owner = "1", name = "Ada" },
  { owner = "2", name = "Grace", available = false },
  { owner = "3", name = "Linus" },
]
"#;

/// Monday 23 November 2026, 17:00 UTC: 09:00 in Los Angeles, 12:00 in New York, 18:00 in
/// Berlin.
fn monday_17_utc() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 17, 0, 0).unwrap()
}

fn router(text: &str) -> Result<Router, ConfigErrors> {
    Router::from_file(&RuleFile::from_text("routing.toml", text), Path::new("."))
}

fn scored_with(
    grade: &str,
    company: &[(&str, serde_json::Value)],
    account: serde_json::Value,
) -> (ScoredLead, RuleContext) {
    let lead = crate::normalize::Normalizer::default()
        .normalize(&RawLead(
            json!({"email": "a@acme.io"}).as_object().unwrap().clone(),
        ))
        .unwrap();
    let mut fields = BTreeMap::new();
    for (k, v) in company {
        fields.insert(
            format!("company.{k}"),
            Provenanced {
                value: v.clone(),
                provider: "test".into(),
                at: monday_17_utc(),
                confidence: None,
            },
        );
    }
    let enriched = EnrichedLead {
        lead,
        enrichment: Enrichment {
            fields,
            providers: vec![],
        },
    };
    let mut ctx = RuleContext::for_lead(&enriched, &account, monday_17_utc());
    ctx.set("grade", &json!(grade));
    ctx.set("score", &json!(50));
    (
        ScoredLead {
            enriched,
            score: 50,
            grade: grade.into(),
            factors: Default::default(),
        },
        ctx,
    )
}

fn scored(grade: &str) -> (ScoredLead, RuleContext) {
    scored_with(grade, &[], json!({}))
}

async fn route_n(
    r: &Router,
    grade: &str,
    n: usize,
    a: &dyn Assignments,
    now: DateTime<Utc>,
) -> Vec<Route> {
    let mut out = Vec::new();
    for _ in 0..n {
        let (s, mut ctx) = scored(grade);
        out.push(r.route(&s, &mut ctx, a, now).await.unwrap());
    }
    out
}

fn tally(routes: &[Route]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in routes {
        *m.entry(r.owner.clone().unwrap_or_else(|| format!("<{}>", r.rule)))
            .or_default() += 1;
    }
    m
}

fn pool_config(strategy: &str, members: &str, extra: &str) -> String {
    format!(
        r#"
[[rule]]
id = "hot"
when = "grade == 'hot'"
assign = {{ pool = "p"{extra} }}

[fallback]
review = {{ reason = "nobody could take it" }}

[[pool]]
id = "p"
strategy = "{strategy}"
members = [{members}]

[[pool]]
id = "backup"
members = [{{ owner = "backup-1" }}]
"#
    )
}

#[tokio::test]
async fn first_match_wins_and_names_the_rules_before_it_with_why() {
    let r = router(ROUTING).unwrap();
    let (s, mut ctx) = scored("warm");
    let route = r
        .route(&s, &mut ctx, &LocalAssignments::default(), monday_17_utc())
        .await
        .unwrap();
    assert_eq!(route.rule, "warm");
    assert_eq!(route.action, RouteAction::Enroll);
    assert_eq!(route.sequence.as_deref(), Some("mid-funnel"));
    assert_eq!(route.not_matched, ["existing-account", "hot", "junk"]);
    assert_eq!(
        route.not_matched_why[0].why,
        "`owner` is missing on this lead"
    );
    assert_eq!(route.not_matched_why[1].why, "condition was false");
}

#[tokio::test]
async fn unmatched_leads_take_the_fallback() {
    let r = router(ROUTING).unwrap();
    let (s, mut ctx) = scored("cold");
    let route = r
        .route(&s, &mut ctx, &LocalAssignments::default(), monday_17_utc())
        .await
        .unwrap();
    assert_eq!(route.rule, FALLBACK);
    assert_eq!(route.sequence.as_deref(), Some("awareness"));
}

#[tokio::test]
async fn round_robin_skips_unavailable_members_in_order() {
    let r = router(ROUTING).unwrap();
    let a = LocalAssignments::default();
    let routes = route_n(&r, "hot", 4, &a, monday_17_utc()).await;
    for route in &routes {
        assert_eq!(route.skipped_members[0].owner, "2");
        assert_eq!(route.skipped_members[0].kind, Some(SkipKind::Unavailable));
    }
    let owners: Vec<_> = routes.iter().map(|r| r.owner.clone().unwrap()).collect();
    assert_eq!(owners, ["1", "3", "1", "3"]);
}

#[tokio::test]
async fn account_owner_assignment_uses_the_matched_account_and_records_it() {
    let r = router(ROUTING).unwrap();
    let (s, mut ctx) = scored_with(
        "cold",
        &[],
        json!({"id": "A-1", "owner": "41629779", "name": "Acme"}),
    );
    let route = r
        .route(&s, &mut ctx, &LocalAssignments::default(), monday_17_utc())
        .await
        .unwrap();
    assert_eq!(route.rule, "existing-account");
    assert_eq!(route.owner.as_deref(), Some("41629779"));
    assert_eq!(route.account.as_ref().unwrap()["id"], "A-1");
}

#[tokio::test]
async fn round_robin_is_exact_over_1000_leads() {
    let r = router(&pool_config(
        "round_robin",
        r#"{ owner = "a" }, { owner = "b" }, { owner = "c" }"#,
        "",
    ))
    .unwrap();
    let a = LocalAssignments::default();
    let t = tally(&route_n(&r, "hot", 1000, &a, monday_17_utc()).await);
    assert_eq!(
        t,
        BTreeMap::from([("a".into(), 334), ("b".into(), 333), ("c".into(), 333)])
    );
}

#[tokio::test]
async fn weighted_follows_the_weights_over_1000_leads_and_interleaves() {
    let r = router(&pool_config(
        "weighted",
        r#"{ owner = "a", weight = 5 }, { owner = "b", weight = 3 }, { owner = "c", weight = 2 }"#,
        "",
    ))
    .unwrap();
    let a = LocalAssignments::default();
    let routes = route_n(&r, "hot", 1000, &a, monday_17_utc()).await;
    let t = tally(&routes);
    for (owner, share) in [("a", 0.5), ("b", 0.3), ("c", 0.2)] {
        let got = t[owner] as f64 / 1000.0;
        assert!((got - share).abs() <= 0.01, "{owner}: {got} vs {share}");
    }
    // Smooth: the heaviest member never gets more than two in a row.
    let owners: Vec<_> = routes.iter().map(|r| r.owner.clone().unwrap()).collect();
    assert!(
        owners
            .windows(3)
            .all(|w| !(w[0] == "a" && w[1] == "a" && w[2] == "a")),
        "{:?}",
        &owners[..10]
    );
}

#[tokio::test]
async fn load_balanced_gives_the_next_lead_to_whoever_has_fewest_today() {
    let r = router(&pool_config(
        "load_balanced",
        r#"{ owner = "a" }, { owner = "b" }, { owner = "c" }"#,
        "",
    ))
    .unwrap();
    let day = monday_17_utc().date_naive().to_string();
    let snapshot = AssignmentSnapshot {
        counts: HashMap::from([
            (("a".to_string(), day.clone()), 10),
            (("b".to_string(), day.clone()), 4),
        ]),
        ..AssignmentSnapshot::default()
    };
    let a = LocalAssignments::from_snapshot(snapshot);
    let routes = route_n(&r, "hot", 1000, &a, monday_17_utc()).await;
    // c catches up to 4, then b and c catch up to 10, then all three share evenly.
    let owners: Vec<_> = routes.iter().map(|r| r.owner.clone().unwrap()).collect();
    assert!(owners[..4].iter().all(|o| o == "c"), "{:?}", &owners[..4]);
    let (ca, cb, cc) = (
        a.count_of("a", &day),
        a.count_of("b", &day),
        a.count_of("c", &day),
    );
    assert_eq!(ca + cb + cc, 1014);
    assert!(
        ca.max(cb).max(cc) - ca.min(cb).min(cc) <= 1,
        "{ca} {cb} {cc}"
    );
}

#[tokio::test]
async fn capacity_is_respected_and_the_rest_overflows() {
    let members = r#"{ owner = "a", capacity_per_day = 100 }, { owner = "b", capacity_per_day = 250 }, { owner = "c", capacity_per_day = 50 }"#;
    let r = router(&pool_config(
        "round_robin",
        members,
        r#", overflow = "backup""#,
    ))
    .unwrap();
    let a = LocalAssignments::default();
    let routes = route_n(&r, "hot", 1000, &a, monday_17_utc()).await;
    let t = tally(&routes);
    assert_eq!((t["a"], t["b"], t["c"]), (100, 250, 50));
    assert_eq!(t["backup-1"], 600);
    let last = routes.last().unwrap();
    assert_eq!(last.pool.as_deref(), Some("backup"));
    assert!(
        last.reason.contains("overflow to pool `backup`"),
        "{}",
        last.reason
    );
    let kinds: Vec<_> = last
        .skipped_members
        .iter()
        .map(|s| (s.owner.as_str(), s.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("a", Some(SkipKind::AtCapacity)),
            ("b", Some(SkipKind::AtCapacity)),
            ("c", Some(SkipKind::AtCapacity))
        ]
    );
    assert_eq!(
        last.skipped_members[0].reason,
        "at capacity (100 of 100 today)"
    );
}

#[tokio::test]
async fn a_fully_unavailable_pool_without_overflow_goes_to_the_fallback() {
    let r = router(&pool_config(
        "round_robin",
        r#"{ owner = "a", paused = true }, { owner = "b", available = false }"#,
        "",
    ))
    .unwrap();
    let routes = route_n(&r, "hot", 1, &LocalAssignments::default(), monday_17_utc()).await;
    assert_eq!(routes[0].rule, FALLBACK);
    assert_eq!(routes[0].action, RouteAction::Review);
    let kinds: Vec<_> = routes[0].skipped_members.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, [Some(SkipKind::Paused), Some(SkipKind::Unavailable)]);
}

#[tokio::test]
async fn working_hours_follow_each_members_time_zone_and_dates_off() {
    let members = r#"
      { owner = "la", timezone = "America/Los_Angeles", hours = "09:00-17:00" },
      { owner = "berlin", timezone = "Europe/Berlin", hours = "09:00-17:00" },
      { owner = "ny", timezone = "America/New_York", hours = "09:00-17:00", dates_off = ["2026-11-23"] },
    "#;
    let r = router(&pool_config("round_robin", members, "")).unwrap();
    let a = LocalAssignments::default();
    let routes = route_n(&r, "hot", 3, &a, monday_17_utc()).await;
    assert!(routes.iter().all(|r| r.owner.as_deref() == Some("la")));
    let why: BTreeMap<_, _> = routes[0]
        .skipped_members
        .iter()
        .map(|s| (s.owner.as_str(), (s.kind, s.reason.as_str())))
        .collect();
    assert_eq!(why["berlin"].0, Some(SkipKind::OutsideHours));
    assert!(
        why["berlin"].1.contains("18:00 in Europe/Berlin"),
        "{}",
        why["berlin"].1
    );
    assert_eq!(why["ny"].0, Some(SkipKind::OffToday));
    // Saturday: nobody works (hours imply Monday to Friday).
    let saturday = Utc.with_ymd_and_hms(2026, 11, 28, 17, 0, 0).unwrap();
    let routes = route_n(&r, "hot", 1, &a, saturday).await;
    assert_eq!(routes[0].rule, FALLBACK);
    assert!(routes[0]
        .skipped_members
        .iter()
        .all(|s| s.kind == Some(SkipKind::OffToday)));
}

#[tokio::test]
async fn a_simulation_ignores_calendars_and_capacities_but_not_pauses() {
    let members = r#"{ owner = "a", capacity_per_day = 1, hours = "01:00-02:00" }, { owner = "b", paused = true }"#;
    let r = router(&pool_config("round_robin", members, "")).unwrap();
    let t = tally(
        &route_n(
            &r,
            "hot",
            10,
            &LocalAssignments::simulation(),
            monday_17_utc(),
        )
        .await,
    );
    assert_eq!(t, BTreeMap::from([("a".into(), 10)]));
}

#[tokio::test]
async fn run_time_pauses_in_the_snapshot_are_honoured() {
    let r = router(&pool_config(
        "round_robin",
        r#"{ owner = "a" }, { owner = "b" }"#,
        "",
    ))
    .unwrap();
    let snapshot = AssignmentSnapshot {
        paused: [("*".to_string(), "a".to_string())].into(),
        ..AssignmentSnapshot::default()
    };
    let routes = route_n(
        &r,
        "hot",
        3,
        &LocalAssignments::from_snapshot(snapshot),
        monday_17_utc(),
    )
    .await;
    assert!(routes.iter().all(|r| r.owner.as_deref() == Some("b")));
    assert_eq!(routes[0].skipped_members[0].kind, Some(SkipKind::Paused));
}

#[tokio::test]
async fn sla_is_recorded_with_its_deadline() {
    let r = router(&pool_config(
        "round_robin",
        r#"{ owner = "a" }"#,
        r#", sla = "4h""#,
    ))
    .unwrap();
    let routes = route_n(&r, "hot", 1, &LocalAssignments::default(), monday_17_utc()).await;
    assert_eq!(routes[0].sla.as_deref(), Some("4h"));
    assert_eq!(
        routes[0].sla_due_at,
        Some(monday_17_utc() + chrono::Duration::hours(4))
    );
}

const TERRITORIES: &str = r#"
[[territory]]
id = "west"
countries = ["US"]
states = ["CA", "OR", "WA"]

[[territory]]
id = "enterprise-us"
countries = ["US"]
employees_min = 1000

[[rule]]
id = "west-ent"
when = "in_territory('west') && 'enterprise-us' in territories"
enroll = { sequence = "west-ent" }

[[rule]]
id = "west"
when = "territory == 'west'"
enroll = { sequence = "west" }

[fallback]
enroll = { sequence = "rest" }
"#;

#[tokio::test]
async fn territories_are_visible_to_rules_three_ways() {
    let r = router(TERRITORIES).unwrap();
    let a = LocalAssignments::default();
    let (s, mut ctx) = scored_with(
        "hot",
        &[
            ("country", json!("US")),
            ("state", json!("California")),
            ("employees", json!(5000)),
        ],
        json!({}),
    );
    let route = r.route(&s, &mut ctx, &a, monday_17_utc()).await.unwrap();
    assert_eq!(route.rule, "west-ent");
    assert_eq!(route.territories, ["west", "enterprise-us"]);
    let (s, mut ctx) = scored_with(
        "hot",
        &[
            ("country", json!("US")),
            ("state", json!("OR")),
            ("employees", json!(50)),
        ],
        json!({}),
    );
    assert_eq!(
        r.route(&s, &mut ctx, &a, monday_17_utc())
            .await
            .unwrap()
            .rule,
        "west"
    );
    let (s, mut ctx) = scored_with(
        "hot",
        &[("country", json!("US")), ("state", json!("TX"))],
        json!({}),
    );
    assert_eq!(
        r.route(&s, &mut ctx, &a, monday_17_utc())
            .await
            .unwrap()
            .rule,
        FALLBACK
    );
}

#[test]
fn check_reports_unknown_pools_bad_cel_and_unreachable_rules_with_lines() {
    let bad = ROUTING
        .replace("pool = \"ae\" }", "pool = \"nope\" }")
        .replace("grade == 'warm'", "grade == ")
        .replace("account.owner != ''", "true");
    let err = router(&bad).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("routing.toml:8: rule \"hot\": pool \"nope\" does not exist (pools: ae)"),
        "{text}"
    );
    assert!(
        text.contains("routing.toml:19: rule \"warm\" when: CEL syntax error"),
        "{text}"
    );
    assert!(text.contains("routing.toml:13: rule \"junk\": unreachable: rule \"existing-account\" before it always matches"), "{text}");
}

#[test]
fn check_reports_unknown_territories_duplicates_empty_pools_and_constant_rules() {
    let text = format!(
        "{}\n{}",
        TERRITORIES
            .replace("in_territory('west')", "in_territory('wset')")
            .replace("territory == 'west'", "1 == 1"),
        r#"
[[rule]]
id = "west"
when = "'nowhere' in territories"
enroll = { sequence = "x" }

[[territory]]
id = "west"
states = ["NV"]

[[pool]]
id = "empty"
members = []

[[pool]]
id = "twice"
members = [{ owner = "a", timezone = "Mars/Olympus" }, { owner = "a", hours = "9-5" }]

[[pool]]
id = "twice"
members = [{ owner = "b" }]
"#
    );
    let err = router(&text).unwrap_err().to_string();
    for expected in [
        "rule \"west-ent\" when: territory \"wset\" does not exist (territories: west, enterprise-us)",
        "territory \"west\": duplicate territory id",
        "rule \"west\": duplicate rule id",
        "unreachable: rule \"west\" before it always matches",
        "territory \"nowhere\" does not exist",
        "pool \"empty\": has no members",
        "pool \"twice\": duplicate pool id",
        "duplicate member",
        "`Mars/Olympus` is not an IANA time zone",
        "`9-5` is not working hours",
    ] {
        assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
    }
    assert!(err.lines().all(|l| l.starts_with("routing.toml:")), "{err}");
}

#[test]
fn check_reports_sla_and_overflow_mistakes() {
    let text = pool_config(
        "round_robin",
        r#"{ owner = "a" }"#,
        r#", sla = "soon", overflow = "nope""#,
    ) + "\n[sla]\nescalate_to = { pool = \"managers\" }\n";
    let err = router(&text).unwrap_err().to_string();
    assert!(
        err.contains("overflow pool \"nope\" does not exist"),
        "{err}"
    );
    assert!(
        err.contains("sla.escalate_to.pool: pool \"managers\" does not exist"),
        "{err}"
    );
}

#[test]
fn in_territory_is_read_natively_and_agrees_with_cel() {
    use crate::rules::{Condition, RuleContext, Scope};
    let when = Condition::compile("in_territory('west')", &Scope::routing()).unwrap();
    assert!(when.is_native());
    for ids in [&[][..], &["west"], &["east", "west"], &["east"]] {
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        let mut ctx = RuleContext::empty();
        super::territory::bind(&mut ctx, &ids);
        assert_eq!(when.eval(&ctx), when.eval_interpreted(&ctx), "{ids:?}");
        assert_eq!(when.eval(&ctx).matched(), ids.contains(&"west".to_string()));
    }
}

#[test]
fn a_router_knows_whether_a_rule_reads_the_event_list() {
    assert!(!router(ROUTING).unwrap().reads_event_list());
    let reads = format!(
        "[[rule]]\nid = \"demo-seekers\"\nwhen = \"lead.events.exists(e, e.type == 'demo_request')\"\nassign = {{ pool = \"ae\" }}\n{ROUTING}"
    );
    assert!(router(&reads).unwrap().reads_event_list());
}
