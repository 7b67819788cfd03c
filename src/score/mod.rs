//! Score stage: rule points grouped by dimension, event points that decay with a half-life,
//! per-dimension caps, a total clamped to 0–100, a grade from thresholds, and the factors
//! that explain it.
//!
//! Scoring reads the enriched lead and nothing else; it never changes it.

mod config;
mod grades;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use config::{EventRuleConfig, ScoreRuleConfig, ScoringConfig};
pub use grades::Grades;

use crate::lead::{EnrichedLead, Factor, ScoredLead};
use crate::rules::{Condition, RuleContext, RuleFile, Scope};
use crate::settings::{ConfigErrors, ConfigIssue};

/// A scoring rule, compiled.
#[derive(Debug)]
pub struct ScoreRule {
    pub id: String,
    pub dimension: String,
    pub when: Condition,
    pub points: f64,
}

/// An event rule, compiled: points per matching event, fading with age.
#[derive(Debug)]
pub struct EventRule {
    pub id: String,
    pub dimension: String,
    pub event_type: String,
    pub when: Option<Condition>,
    pub points: f64,
    pub half_life: Option<Duration>,
    pub max: Option<f64>,
}

#[derive(Debug)]
pub struct Scorer {
    rules: Vec<ScoreRule>,
    events: Vec<EventRule>,
    caps: BTreeMap<String, f64>,
    grades: Grades,
}

impl Scorer {
    /// Loads and compiles `scoring.toml`; every issue at once, each with line and rule id.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigErrors> {
        let file = RuleFile::read(path)?;
        Self::from_file(&file)
    }

    pub fn from_file(file: &RuleFile) -> Result<Self, ConfigErrors> {
        let raw: ScoringConfig = file.parse()?;
        let mut issues: Vec<ConfigIssue> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut rules = Vec::new();
        for r in &raw.rule {
            if !seen.insert(r.id.clone()) {
                issues.push(file.issue(Some(r.when.span()), format!("rule \"{}\"", r.id), "duplicate rule id"));
            }
            match Condition::compile(r.when.get_ref(), &Scope::scoring()) {
                Ok(when) => rules.push(ScoreRule {
                    id: r.id.clone(),
                    dimension: r.dimension.clone(),
                    when,
                    points: r.points,
                }),
                Err(e) => issues.push(file.issue(Some(r.when.span()), format!("rule \"{}\" when", r.id), e.to_string())),
            }
        }
        let mut events = Vec::new();
        for e in &raw.event {
            if !seen.insert(e.id.clone()) {
                issues.push(file.issue(None, format!("event \"{}\"", e.id), "duplicate rule id"));
            }
            let when = match &e.when {
                None => None,
                Some(w) => match Condition::compile(w.get_ref(), &Scope::event()) {
                    Ok(c) => Some(c),
                    Err(err) => {
                        issues.push(file.issue(Some(w.span()), format!("event \"{}\" when", e.id), err.to_string()));
                        None
                    }
                },
            };
            let half_life = match &e.half_life {
                None => None,
                Some(h) => match humantime::parse_duration(h) {
                    Ok(d) if !d.is_zero() => Some(d),
                    _ => {
                        issues.push(file.issue(None, format!("event \"{}\" half_life", e.id), format!("`{h}` is not a duration; write e.g. 14d")));
                        None
                    }
                },
            };
            events.push(EventRule {
                id: e.id.clone(),
                dimension: e.dimension.clone(),
                event_type: e.kind.clone(),
                when,
                points: e.points,
                half_life,
                max: e.max,
            });
        }
        let grades = Grades::new(&raw.grades).map_err(|reason| {
            issues.push(file.issue(None, "grades", reason));
        });
        if !issues.is_empty() {
            return Err(ConfigErrors(issues));
        }
        Ok(Self {
            rules,
            events,
            caps: raw.caps,
            grades: grades.unwrap_or_default(),
        })
    }

    /// Grade names, highest first.
    pub fn grade_names(&self) -> Vec<String> {
        self.grades.names()
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len() + self.events.len()
    }

    /// Scores one lead. `ctx` is the lead's rule context, built once by the pipeline.
    pub fn score(&self, enriched: EnrichedLead, ctx: &RuleContext, now: DateTime<Utc>) -> ScoredLead {
        let mut factors = Vec::new();
        for rule in &self.rules {
            if rule.when.eval(ctx).matched() {
                let matched = rule
                    .when
                    .fields()
                    .iter()
                    .filter_map(|f| ctx.lookup(f).map(|v| (f.clone(), v.clone())))
                    .collect();
                factors.push(Factor {
                    rule: rule.id.clone(),
                    dimension: rule.dimension.clone(),
                    points: rule.points,
                    matched,
                });
            }
        }
        for rule in &self.events {
            if let Some(f) = self.score_events(rule, &enriched, ctx, now) {
                factors.push(f);
            }
        }
        let score = self.total(&mut factors);
        factors.sort_by(|a, b| b.points.abs().total_cmp(&a.points.abs()).then_with(|| a.rule.cmp(&b.rule)));
        let grade = self.grades.grade(score).to_string();
        ScoredLead {
            enriched,
            score,
            grade,
            factors,
        }
    }

    fn score_events(&self, rule: &EventRule, enriched: &EnrichedLead, ctx: &RuleContext, now: DateTime<Utc>) -> Option<Factor> {
        let mut points = 0.0;
        let mut count = 0u32;
        for event in enriched.lead.events.iter().filter(|e| e.kind == rule.event_type) {
            if let Some(when) = &rule.when {
                let json = serde_json::to_value(event).unwrap_or(Value::Null);
                if !when.eval_with(ctx, "event", &json).matched() {
                    continue;
                }
            }
            count += 1;
            points += rule.points * decay(rule.half_life, event.at, now);
        }
        if count == 0 {
            return None;
        }
        if let Some(max) = rule.max {
            points = if rule.points >= 0.0 { points.min(max) } else { points.max(-max.abs()) };
        }
        let points = (points * 100.0).round() / 100.0;
        Some(Factor {
            rule: rule.id.clone(),
            dimension: rule.dimension.clone(),
            points,
            matched: BTreeMap::from([("events".to_string(), Value::from(count))]),
        })
    }

    /// Applies per-dimension caps (scaling that dimension's factors so they still sum to the
    /// score) and clamps the total to 0–100.
    fn total(&self, factors: &mut [Factor]) -> i64 {
        let mut by_dimension: BTreeMap<&str, f64> = BTreeMap::new();
        for f in factors.iter() {
            *by_dimension.entry(f.dimension.as_str()).or_default() += f.points;
        }
        let mut scale: BTreeMap<String, f64> = BTreeMap::new();
        for (dim, sum) in &by_dimension {
            if let Some(cap) = self.caps.get(*dim) {
                if *sum > *cap && *sum > 0.0 {
                    scale.insert(dim.to_string(), cap / sum);
                }
            }
        }
        for f in factors.iter_mut() {
            if let Some(s) = scale.get(&f.dimension) {
                f.points = (f.points * s * 100.0).round() / 100.0;
            }
        }
        let sum: f64 = factors.iter().map(|f| f.points).sum();
        sum.round().clamp(0.0, 100.0) as i64
    }
}

/// The weight of an event `at` seen from `now`: 0.5 per half-life elapsed; future events
/// (clock skew) count in full.
pub fn decay(half_life: Option<Duration>, at: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    let Some(h) = half_life else { return 1.0 };
    let age = (now - at).num_milliseconds().max(0) as f64 / 1000.0;
    0.5f64.powf(age / h.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::RawLead;
    use chrono::TimeZone;
    use serde_json::json;

    const RULES: &str = r#"
[grades]
hot = 80
warm = 50
cool = 20

[caps]
firmographic = 40

[[rule]]
id = "enterprise"
dimension = "firmographic"
when = "company.employees >= 1000"
points = 30

[[rule]]
id = "software"
dimension = "firmographic"
when = "company.industry == 'Software'"
points = 20

[[rule]]
id = "personal-email"
dimension = "negative"
when = "email.is_free"
points = -40

[[event]]
id = "pricing-page"
type = "page_view"
when = "event.path.startsWith('/pricing')"
points = 10
half_life = "14d"
max = 15
"#;

    fn scorer() -> Scorer {
        Scorer::from_file(&RuleFile::from_text("scoring.toml", RULES)).unwrap()
    }

    fn enriched(lead: serde_json::Value, company: serde_json::Value) -> EnrichedLead {
        let lead = crate::normalize::Normalizer::new(["gmail.com".to_string()].into(), Default::default())
            .normalize(&RawLead(lead.as_object().unwrap().clone()))
            .unwrap();
        let mut enrichment = crate::lead::Enrichment::default();
        for (k, v) in company.as_object().unwrap() {
            enrichment.fields.insert(
                format!("company.{k}"),
                crate::lead::Provenanced { value: v.clone(), provider: "t".into(), at: Utc::now(), confidence: None },
            );
        }
        EnrichedLead { lead, enrichment }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap()
    }

    #[test]
    fn decay_halves_per_half_life() {
        let h = Some(Duration::from_secs(14 * 86400));
        assert!((decay(h, now() - chrono::Duration::days(14), now()) - 0.5).abs() < 1e-9);
        assert!((decay(h, now() - chrono::Duration::days(28), now()) - 0.25).abs() < 1e-9);
        assert_eq!(decay(None, now() - chrono::Duration::days(400), now()), 1.0);
    }

    #[test]
    fn caps_a_dimension_and_factors_sum_to_the_score() {
        let e = enriched(json!({"email": "a@acme.io"}), json!({"employees": 5000, "industry": "Software"}));
        let ctx = RuleContext::for_lead(&e, &json!({}), now());
        let s = scorer().score(e, &ctx, now());
        assert_eq!(s.score, 40, "{:?}", s.factors);
        let sum: f64 = s.factors.iter().map(|f| f.points).sum();
        assert_eq!(sum.round() as i64, s.score);
        assert_eq!(s.grade, "cool");
        assert_eq!(s.factors[0].rule, "enterprise");
        assert_eq!(s.factors[0].matched["company.employees"], json!(5000));
    }

    #[test]
    fn events_decay_and_are_capped_by_max() {
        let e = enriched(
            json!({"email": "a@acme.io", "events": [
                {"type": "page_view", "at": "2026-11-09T00:00:00Z", "path": "/pricing"},
                {"type": "page_view", "at": "2026-11-23T00:00:00Z", "path": "/pricing/enterprise"},
                {"type": "page_view", "at": "2026-11-23T00:00:00Z", "path": "/blog"}
            ]}),
            json!({}),
        );
        let ctx = RuleContext::for_lead(&e, &json!({}), now());
        let s = scorer().score(e, &ctx, now());
        // 10 (today) + 5 (one half-life ago) = 15, exactly the max.
        assert_eq!(s.factors[0].points, 15.0);
        assert_eq!(s.score, 15);
        assert_eq!(s.grade, "cold");
    }

    #[test]
    fn the_total_is_clamped_at_zero() {
        let e = enriched(json!({"email": "a@gmail.com"}), json!({}));
        let ctx = RuleContext::for_lead(&e, &json!({}), now());
        assert_eq!(scorer().score(e, &ctx, now()).score, 0);
    }

    #[test]
    fn cel_errors_at_load_time_name_the_rule_and_line() {
        let bad = RULES.replace("company.industry == 'Software'", "company.industry ==");
        let err = Scorer::from_file(&RuleFile::from_text("scoring.toml", &bad)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("rule \"software\""), "{text}");
        assert!(text.contains("scoring.toml:19"), "{text}");
    }
}
