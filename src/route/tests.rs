use super::*;
use crate::lead::{EnrichedLead, Enrichment, RawLead};
use serde_json::json;

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

fn router(text: &str) -> Result<Router, ConfigErrors> {
    Router::from_file(&RuleFile::from_text("routing.toml", text), Path::new("."))
}

fn scored(grade: &str) -> (ScoredLead, RuleContext) {
    let lead = crate::normalize::Normalizer::default()
        .normalize(&RawLead(json!({"email": "a@acme.io"}).as_object().unwrap().clone()))
        .unwrap();
    let enriched = EnrichedLead { lead, enrichment: Enrichment::default() };
    let mut ctx = RuleContext::for_lead(&enriched, &json!({}), chrono::Utc::now());
    ctx.set("grade", &json!(grade));
    ctx.set("score", &json!(50));
    (ScoredLead { enriched, score: 50, grade: grade.into(), factors: vec![] }, ctx)
}

#[tokio::test]
async fn first_match_wins_and_names_the_rules_before_it() {
    let r = router(ROUTING).unwrap();
    let (s, ctx) = scored("warm");
    let route = r.route(&s, &ctx, &LocalRotation::default()).await.unwrap();
    assert_eq!(route.rule, "warm");
    assert_eq!(route.action, RouteAction::Enroll);
    assert_eq!(route.sequence.as_deref(), Some("mid-funnel"));
    assert_eq!(route.not_matched, ["existing-account", "hot", "junk"]);
}

#[tokio::test]
async fn unmatched_leads_take_the_fallback() {
    let r = router(ROUTING).unwrap();
    let (s, ctx) = scored("cold");
    let route = r.route(&s, &ctx, &LocalRotation::default()).await.unwrap();
    assert_eq!(route.rule, FALLBACK);
    assert_eq!(route.sequence.as_deref(), Some("awareness"));
}

#[tokio::test]
async fn round_robin_skips_unavailable_members_in_order() {
    let r = router(ROUTING).unwrap();
    let (s, ctx) = scored("hot");
    let rotation = LocalRotation::default();
    let mut owners = Vec::new();
    for _ in 0..4 {
        let route = r.route(&s, &ctx, &rotation).await.unwrap();
        assert_eq!(route.skipped_members[0].owner, "2");
        owners.push(route.owner.unwrap());
    }
    assert_eq!(owners, ["1", "3", "1", "3"]);
}

#[tokio::test]
async fn account_owner_assignment_uses_the_matched_account() {
    let r = router(ROUTING).unwrap();
    let (s, _) = scored("cold");
    let mut ctx = RuleContext::for_lead(&s.enriched, &json!({"id": "A-1", "owner": "41629779"}), chrono::Utc::now());
    ctx.set("grade", &json!("cold"));
    let route = r.route(&s, &ctx, &LocalRotation::default()).await.unwrap();
    assert_eq!(route.rule, "existing-account");
    assert_eq!(route.owner.as_deref(), Some("41629779"));
}

#[test]
fn check_reports_unknown_pools_bad_cel_and_unreachable_rules_with_lines() {
    let bad = ROUTING
        .replace("pool = \"ae\" }", "pool = \"nope\" }")
        .replace("grade == 'warm'", "grade == ")
        .replace("account.owner != ''", "true");
    let err = router(&bad).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("rule \"hot\": pool \"nope\" does not exist"), "{text}");
    assert!(text.contains("routing.toml:19: rule \"warm\" when: CEL syntax error"), "{text}");
    assert!(text.contains("unreachable"), "{text}");
}
