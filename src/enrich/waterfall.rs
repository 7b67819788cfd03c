//! The waterfall: providers in order until the `stop_when` fields are filled; the first
//! provider to give a field keeps it (unless a per-field order says otherwise). An answer
//! that fails validation counts as a miss and the waterfall goes on; a provider that is
//! skipped or fails is recorded with the reason, and the lead carries on regardless.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::validate::Validation;
use super::{Lookup, Provider, ProviderAnswer, ProviderStatus, Reply};
use crate::lead::{EnrichedLead, Enrichment, Lead, Provenanced, ProviderAttempt, ProviderOutcome};

pub struct Waterfall {
    providers: Vec<Arc<dyn Provider>>,
    stop_when: Vec<String>,
    /// field → provider ids in the order that field trusts them.
    field_order: HashMap<String, Vec<String>>,
    /// provider id → the checks its answers must pass (default: the domain must match).
    validation: HashMap<String, Validation>,
}

impl Waterfall {
    pub fn new(
        providers: Vec<Arc<dyn Provider>>,
        stop_when: Vec<String>,
        field_order: HashMap<String, Vec<String>>,
    ) -> Self {
        Self {
            providers,
            stop_when,
            field_order,
            validation: HashMap::new(),
        }
    }

    /// Sets the per-provider answer checks.
    pub fn with_validation(mut self, validation: HashMap<String, Validation>) -> Self {
        self.validation = validation;
        self
    }

    /// Every provider's health and usage, in waterfall order.
    pub fn statuses(&self) -> Vec<ProviderStatus> {
        self.providers.iter().map(|p| p.status()).collect()
    }

    /// Each paid provider's id and daily budget.
    pub fn budgets(&self) -> Vec<(&str, &crate::resilience::budget::Budget)> {
        self.providers
            .iter()
            .filter_map(|p| p.budget().map(|b| (p.id(), b)))
            .collect()
    }

    pub fn provider_ids(&self) -> Vec<String> {
        self.providers.iter().map(|p| p.id().to_string()).collect()
    }

    pub async fn enrich(&self, lead: Lead, now: DateTime<Utc>) -> EnrichedLead {
        let lookup = Lookup::for_lead(&lead);
        let mut enrichment = Enrichment::default();
        for provider in &self.providers {
            let id = provider.id().to_string();
            if self.satisfied(&enrichment) {
                enrichment.providers.push(attempt(
                    &id,
                    ProviderOutcome::Skipped,
                    Some("stop_when satisfied"),
                    None,
                ));
                continue;
            }
            let started = Instant::now();
            let Reply { answer, cached } = provider.lookup(&lookup).await;
            let ms = Some(started.elapsed().as_millis() as u64);
            let mut line = match answer {
                ProviderAnswer::Found { fields, confidence } => {
                    let checks = self.validation.get(&id).unwrap_or(&NO_CHECKS);
                    match checks.check(lead.domain.as_deref(), &fields, confidence) {
                        Err(why) => attempt(
                            &id,
                            ProviderOutcome::NotFound,
                            Some(&format!("rejected: {why}")),
                            ms,
                        ),
                        Ok(()) => {
                            self.merge(&mut enrichment, &id, fields, confidence, now);
                            attempt(&id, ProviderOutcome::Hit, None, ms)
                        }
                    }
                }
                ProviderAnswer::NotFound => attempt(&id, ProviderOutcome::NotFound, None, ms),
                ProviderAnswer::Pending => attempt(
                    &id,
                    ProviderOutcome::Pending,
                    Some("the vendor is still looking; ask again later"),
                    ms,
                ),
                ProviderAnswer::Skipped(why) => {
                    attempt(&id, ProviderOutcome::Skipped, Some(&why.to_string()), None)
                }
                ProviderAnswer::Failed(why) => attempt(&id, ProviderOutcome::Error, Some(&why), ms),
            };
            line.cached = cached;
            enrichment.providers.push(line);
        }
        EnrichedLead { lead, enrichment }
    }

    fn merge(
        &self,
        enrichment: &mut Enrichment,
        id: &str,
        fields: std::collections::BTreeMap<String, serde_json::Value>,
        confidence: Option<f64>,
        now: DateTime<Utc>,
    ) {
        for (field, value) in fields {
            if value.is_null() {
                continue;
            }
            let candidate = Provenanced {
                value,
                provider: id.to_string(),
                at: now,
                confidence,
            };
            match enrichment.fields.get(&field) {
                Some(current) if !self.prefers(&field, id, &current.provider) => {}
                _ => {
                    enrichment.fields.insert(field, candidate);
                }
            }
        }
    }

    fn satisfied(&self, e: &Enrichment) -> bool {
        !self.stop_when.is_empty() && self.stop_when.iter().all(|f| e.fields.contains_key(f))
    }

    /// Whether `challenger` should replace `holder`'s value for `field`.
    fn prefers(&self, field: &str, challenger: &str, holder: &str) -> bool {
        let Some(order) = self.field_order.get(field) else {
            return false;
        };
        let rank = |p: &str| order.iter().position(|o| o == p).unwrap_or(usize::MAX);
        rank(challenger) < rank(holder)
    }
}

/// What a provider without validation settings is checked against; borrowed, not cloned per
/// lead.
static NO_CHECKS: Validation = Validation::STANDARD;

fn attempt(
    provider: &str,
    outcome: ProviderOutcome,
    reason: Option<&str>,
    ms: Option<u64>,
) -> ProviderAttempt {
    ProviderAttempt {
        provider: provider.to_string(),
        outcome,
        reason: reason.map(str::to_string),
        cached: false,
        ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::BoxFuture;
    use serde_json::json;
    use std::collections::BTreeMap;

    struct Fixed(&'static str, ProviderAnswer);
    impl Provider for Fixed {
        fn id(&self) -> &str {
            self.0
        }
        fn lookup<'a>(&'a self, _: &'a Lookup) -> BoxFuture<'a, Reply> {
            Box::pin(std::future::ready(self.1.clone().into()))
        }
    }

    fn found(pairs: &[(&str, serde_json::Value)]) -> ProviderAnswer {
        ProviderAnswer::Found {
            fields: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
            confidence: Some(0.9),
        }
    }

    fn lead() -> Lead {
        crate::normalize::Normalizer::default()
            .normalize(&crate::lead::RawLead(
                json!({"email": "a@acme.io"}).as_object().unwrap().clone(),
            ))
            .unwrap()
    }

    #[tokio::test]
    async fn falls_through_failures_and_stops_when_fields_are_filled() {
        let w = Waterfall::new(
            vec![
                Arc::new(Fixed("down", ProviderAnswer::Failed("HTTP 500".into()))),
                Arc::new(Fixed(
                    "a",
                    found(&[("company.industry", json!("Software"))]),
                )),
                Arc::new(Fixed(
                    "b",
                    found(&[
                        ("company.employees", json!(50)),
                        ("company.industry", json!("Retail")),
                    ]),
                )),
                Arc::new(Fixed("c", found(&[("company.revenue", json!(1))]))),
            ],
            vec!["company.industry".into(), "company.employees".into()],
            HashMap::new(),
        );
        let e = w.enrich(lead(), Utc::now()).await;
        let outcomes: Vec<_> = e.enrichment.providers.iter().map(|p| p.outcome).collect();
        assert_eq!(
            outcomes,
            [
                ProviderOutcome::Error,
                ProviderOutcome::Hit,
                ProviderOutcome::Hit,
                ProviderOutcome::Skipped
            ]
        );
        assert_eq!(e.enrichment.fields["company.industry"].provider, "a");
        assert_eq!(e.enrichment.fields["company.employees"].value, json!(50));
        assert!(!e.enrichment.fields.contains_key("company.revenue"));
    }

    #[tokio::test]
    async fn a_field_order_override_lets_a_later_provider_win() {
        let w = Waterfall::new(
            vec![
                Arc::new(Fixed("a", found(&[("company.employees", json!(10))]))),
                Arc::new(Fixed("b", found(&[("company.employees", json!(12))]))),
            ],
            vec![],
            HashMap::from([(
                "company.employees".to_string(),
                vec!["b".to_string(), "a".to_string()],
            )]),
        );
        let e = w.enrich(lead(), Utc::now()).await;
        assert_eq!(e.enrichment.fields["company.employees"].provider, "b");
    }

    #[tokio::test]
    async fn an_answer_for_another_domain_is_a_miss_and_the_waterfall_goes_on() {
        let w = Waterfall::new(
            vec![
                Arc::new(Fixed(
                    "wrong",
                    found(&[
                        ("company.domain", json!("other.com")),
                        ("company.industry", json!("Retail")),
                    ]),
                )),
                Arc::new(Fixed(
                    "right",
                    found(&[
                        ("company.domain", json!("acme.io")),
                        ("company.industry", json!("Software")),
                    ]),
                )),
            ],
            vec!["company.industry".into()],
            HashMap::new(),
        );
        let e = w.enrich(lead(), Utc::now()).await;
        let first = &e.enrichment.providers[0];
        assert_eq!(first.outcome, ProviderOutcome::NotFound);
        assert!(
            first.reason.as_deref().unwrap().contains("does not match"),
            "{first:?}"
        );
        assert_eq!(e.enrichment.fields["company.industry"].provider, "right");
    }

    #[tokio::test]
    async fn a_confidence_under_the_minimum_is_a_miss() {
        let w = Waterfall::new(
            vec![Arc::new(Fixed(
                "a",
                found(&[("company.industry", json!("Software"))]),
            ))],
            vec![],
            HashMap::new(),
        )
        .with_validation(HashMap::from([(
            "a".to_string(),
            Validation {
                min_confidence: Some(0.95),
                ..Validation::default()
            },
        )]));
        let e = w.enrich(lead(), Utc::now()).await;
        assert_eq!(e.enrichment.providers[0].outcome, ProviderOutcome::NotFound);
        assert!(e.enrichment.fields.is_empty());
    }
}
