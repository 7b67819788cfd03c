//! Alerts (issue 25 item 4): `[[alert]]` sections send a message to Slack or to a signed
//! webhook when a lead becomes hot, an SLA is breached, a provider's circuit opens or its
//! daily budget runs out, or CRM delivery failures pass a rate.
//!
//! The stages tell an [`Alerts`] handle what happened; it never waits: events go into a
//! bounded channel (dropped and counted when it is full) that one background
//! [`dispatcher`] drains in `serve`. The dispatcher matches events to alerts
//! ([`conditions`]), claims each (alert, lead or provider) once per dedupe window in the
//! store (shared by replicas, kept across restarts), and sends with retries
//! ([`slack`], [`webhook`]).
//!
//! Must not: slow or fail a lead's pipeline, log personal data, or decide anything about
//! a lead.

pub mod conditions;
pub mod config;
pub mod dispatcher;
pub mod slack;
pub mod webhook;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::mpsc;

pub use config::{AlertKind, AlertRule, AlertSet, Receiver, ReceiverKind};

use crate::lead::Decision;

/// Default room in the alert channel: minutes of a busy day's hot leads; beyond it a
/// stalled receiver costs alerts, never leads.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 1024;
/// Factors quoted in a lead's alert: enough to say why, short enough to read in Slack.
pub const TOP_FACTORS: usize = 5;

/// One of the factors behind a score, as an alert quotes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopFactor {
    pub rule: String,
    pub points: f64,
}

/// A lead's grade moved: what the decision path and the sweep tell alerts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GradeChange {
    pub lead_id: String,
    /// The grade before; none for a lead never graded.
    pub previous_grade: Option<String>,
    pub grade: String,
    pub score: i64,
    /// The largest factors, largest first.
    pub factors: Vec<TopFactor>,
}

impl GradeChange {
    /// The change a decision makes from `previous_grade`.
    pub fn of(lead_id: &str, previous_grade: Option<String>, decision: &Decision) -> Self {
        Self {
            lead_id: lead_id.to_string(),
            previous_grade,
            grade: decision.grade.clone(),
            score: decision.score,
            factors: top_factors(decision),
        }
    }
}

/// The factors of a decision that moved the score most, largest first.
pub fn top_factors(decision: &Decision) -> Vec<TopFactor> {
    let mut f: Vec<TopFactor> = decision
        .factors
        .iter()
        .map(|f| TopFactor {
            rule: f.rule.to_string(),
            points: f.points,
        })
        .collect();
    f.sort_by(|a, b| b.points.abs().total_cmp(&a.points.abs()));
    f.truncate(TOP_FACTORS);
    f
}

/// An SLA step: the owner did not touch the lead in time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlaBreach {
    pub lead_id: String,
    /// The owner who let the SLA pass (a CRM owner id).
    pub owner: String,
    /// The routing rule that assigned the lead.
    pub rule: String,
    pub sla: String,
    pub due_at: DateTime<Utc>,
    /// `reassigned` or `escalated`.
    pub step: &'static str,
    /// Who has the lead now; none when it went to review.
    pub new_owner: Option<String>,
}

/// What happened, for the dispatcher to match against the alerts.
#[derive(Debug, Clone)]
pub enum AlertEvent {
    /// A lead's grade changed; with the decision when it came from the decision path (its
    /// route and the context `when` reads).
    Grade {
        change: GradeChange,
        decision: Option<Arc<Decision>>,
    },
    SlaBreached(SlaBreach),
    /// A CRM delivery failed (a refusal, or no answer within its retries).
    DeliveryFailed {
        connector: String,
    },
}

impl AlertEvent {
    fn kind(&self) -> AlertKind {
        match self {
            AlertEvent::Grade { .. } => AlertKind::LeadHot,
            AlertEvent::SlaBreached(_) => AlertKind::SlaBreached,
            AlertEvent::DeliveryFailed { .. } => AlertKind::DeliveryFailures,
        }
    }
}

/// The stages' side of alerts: cheap to clone, never blocks. With no alerts configured
/// every call is a no-op.
#[derive(Clone, Default)]
pub struct Alerts {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    set: Arc<AlertSet>,
    tx: mpsc::Sender<AlertEvent>,
    dropped: AtomicU64,
}

/// The dispatcher's side of the channel, handed to [`dispatcher::run`].
pub struct AlertQueue {
    pub(crate) set: Arc<AlertSet>,
    pub(crate) rx: mpsc::Receiver<AlertEvent>,
}

impl Alerts {
    /// No alerts: what tests and one-shot commands use.
    pub fn none() -> Self {
        Self::default()
    }

    /// A handle for `set` and the queue its dispatcher drains; `capacity` events wait at most.
    pub fn new(set: AlertSet, capacity: usize) -> (Self, AlertQueue) {
        let set = Arc::new(set);
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Self {
                inner: Some(Arc::new(Inner {
                    set: set.clone(),
                    tx,
                    dropped: AtomicU64::new(0),
                })),
            },
            AlertQueue { set, rx },
        )
    }

    /// Whether any alert watches `kind`: callers skip building an event nobody reads.
    pub fn watches(&self, kind: AlertKind) -> bool {
        self.inner.as_ref().is_some_and(|i| i.set.watches(kind))
    }

    /// Whether a decision of `grade` could fire a `lead_hot` alert: only then is the
    /// lead's previous grade worth reading.
    pub fn watches_grade(&self, grade: &str) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|i| i.set.on(AlertKind::LeadHot).any(|r| r.hot_grade == grade))
    }

    /// Events dropped because the channel was full (also `leadgate_alerts_dropped_total`).
    pub fn dropped(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.dropped.load(Ordering::Relaxed))
    }

    /// The decision path: `decision` was recorded for `lead_id`, whose grade was
    /// `previous_grade` before it.
    pub fn lead_decided(&self, lead_id: &str, previous_grade: Option<String>, decision: &Decision) {
        if !self.watches_grade(&decision.grade) {
            return;
        }
        self.send(AlertEvent::Grade {
            change: GradeChange::of(lead_id, previous_grade, decision),
            decision: Some(Arc::new(decision.clone())),
        });
    }

    /// A grade change found elsewhere (the re-scoring sweep): alerts as a decision would,
    /// without a route; a `when` reads `score`, `grade` and `previous.grade` only.
    pub fn grade_changed(&self, change: GradeChange) {
        if !self.watches_grade(&change.grade) {
            return;
        }
        self.send(AlertEvent::Grade {
            change,
            decision: None,
        });
    }

    pub fn sla_breached(&self, breach: SlaBreach) {
        if self.watches(AlertKind::SlaBreached) {
            self.send(AlertEvent::SlaBreached(breach));
        }
    }

    pub fn delivery_failed(&self, connector: &str) {
        if self.watches(AlertKind::DeliveryFailures) {
            self.send(AlertEvent::DeliveryFailed {
                connector: connector.to_string(),
            });
        }
    }

    /// Queues `event`, or drops it when the queue is full: the pipeline never waits.
    fn send(&self, event: AlertEvent) {
        let Some(inner) = &self.inner else { return };
        let kind = event.kind();
        if let Err(e) = inner.tx.try_send(event) {
            let reason = match e {
                mpsc::error::TrySendError::Full(_) => "queue_full",
                mpsc::error::TrySendError::Closed(_) => "stopped",
            };
            inner.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("leadgate_alerts_dropped_total", "on" => kind.as_str(), "reason" => reason)
                .increment(1);
            tracing::warn!(
                on = kind.as_str(),
                reason,
                "alert dropped: the alert queue is full or stopped (a slow or unreachable receiver?)"
            );
        }
    }
}

/// How long a duration reads in a message (`1h`, `4h 30m`).
pub(crate) fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

impl Alerts {
    /// The decision path, before recording `decision`: the lead's grade so far, read from
    /// the store only when this decision could turn it hot for some alert. A store error
    /// reads as no grade (the dedupe claim still keeps a re-sent lead to one alert).
    pub async fn previous_grade(
        &self,
        store: &crate::store::Store,
        lead_id: &str,
        decision: &Decision,
    ) -> Option<String> {
        if !self.watches_grade(&decision.grade) {
            return None;
        }
        match store.lead(lead_id).await {
            Ok(view) => view
                .and_then(|v| v.decision)
                .and_then(|d| d.get("grade").and_then(|g| g.as_str()).map(str::to_string)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the lead's previous grade for alerts");
                None
            }
        }
    }

    /// The decision path, once `decision` is recorded: a grade change and each failed CRM
    /// delivery are told to the alerts.
    pub fn decision_recorded(
        &self,
        lead_id: &str,
        previous_grade: Option<String>,
        decision: &Decision,
    ) {
        self.lead_decided(lead_id, previous_grade, decision);
        for d in decision
            .delivery
            .iter()
            .filter(|d| d.status == crate::lead::DeliveryStatus::Failed)
        {
            self.delivery_failed(&d.connector);
        }
    }
}
