//! The alert dispatcher: drains the alert queue in the background of `serve`, looks at the
//! providers' health every [`PROVIDER_CHECK_EVERY`], and for each alert that holds claims
//! it in the store — once per (alert, lead or provider) within the alert's dedupe window,
//! across replicas and restarts — then sends it with retries (`backon`, honouring a
//! `Retry-After`). An alert that cannot be delivered gives its claim back, so the next
//! occurrence is tried again.
//!
//! Metrics: `leadgate_alerts_sent_total{alert, outcome}` with outcome `sent`, `failed`
//! (retries spent), `refused` (the receiver said the message will never work),
//! `deduplicated`; `leadgate_alerts_dropped_total` counts events the queue had no room for.
//!
//! Must not: log a receiver's URL (a Slack one is a credential) or a lead's email.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::conditions::{self, FailureWindow, ProviderTrouble, ProviderWatch};
use super::config::{AlertKind, AlertRule, AlertSet, Receiver};
use super::{human, AlertEvent, AlertQueue, GradeChange, SlaBreach, TopFactor};
use crate::lead::{Decision, RouteAction};
use crate::resilience::retry::{RetryPolicy, Retryable};
use crate::store::Store;

/// How often provider health is read: a few mutexes per provider, and an opened circuit
/// is reported within seconds.
pub const PROVIDER_CHECK_EVERY: Duration = Duration::from_secs(1);
/// One send's timeout: Slack answers in well under a second; a receiver slower than this
/// is treated as down for this attempt.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// First backoff between attempts.
const MIN_DELAY: Duration = Duration::from_millis(500);
/// Longest backoff between attempts.
const MAX_DELAY: Duration = Duration::from_secs(30);
/// Longest `Retry-After` waited for: Slack asks for seconds; a longer pause gives up and
/// frees the claim for the next occurrence.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// How long a stopping daemon waits for alerts in flight.
const DRAIN: Duration = Duration::from_secs(5);

/// Why one send did not go through, and whether another try may.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{}", status.map(|s| format!("HTTP {s}")).unwrap_or_else(|| "no answer".into()), if code.is_empty() { String::new() } else { format!(" ({code})") })]
pub struct SendError {
    pub status: Option<u16>,
    /// Slack's error code (`invalid_payload`, `no_service`), or why there was no answer.
    pub code: String,
    pub retryable: bool,
    pub retry_after: Option<Duration>,
}

impl SendError {
    pub fn retry(status: u16, retry_after: Option<Duration>, code: &str) -> Self {
        Self {
            status: Some(status),
            code: short(code),
            retryable: true,
            retry_after,
        }
    }

    pub fn permanent(status: u16, code: &str) -> Self {
        Self {
            status: Some(status),
            code: short(code),
            retryable: false,
            retry_after: None,
        }
    }

    fn unreachable(e: &reqwest::Error) -> Self {
        let code = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "cannot connect"
        } else {
            "request failed"
        };
        Self {
            status: None,
            code: code.into(),
            retryable: true,
            retry_after: None,
        }
    }
}

impl Retryable for SendError {
    fn retryable(&self) -> bool {
        self.retryable
    }
    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

/// A receiver's error body, kept short and to one line: it goes to the log.
fn short(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(80).collect()
}

/// The lead an alert is about, as a message shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeadSummary {
    pub id: String,
    pub grade: String,
    pub previous_grade: Option<String>,
    pub score: i64,
    pub factors: Vec<TopFactor>,
    /// `rule → owner 123 (pool west)`, when decided.
    pub route: Option<String>,
    pub owner: Option<String>,
    pub company: Option<String>,
    /// The console's page for the lead, with `[server] public_url` set.
    pub link: Option<String>,
}

/// One alert to send: the webhook body, and what the Slack message is made of.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// The alert's name.
    pub alert: String,
    pub on: AlertKind,
    /// What it is deduplicated on: a lead id, a provider id, or `delivery`.
    pub key: String,
    pub at: DateTime<Utc>,
    pub title: String,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead: Option<LeadSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla: Option<SlaBreach>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

impl Message {
    /// The one-line text for notifications and clients without blocks.
    pub fn fallback(&self) -> String {
        format!("{}: {}", self.title, self.summary)
    }
}

/// What became of one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Sent within the dedupe window already (here, by another replica, before a restart).
    Deduplicated,
    /// The receiver refused it for good (Slack's `invalid_payload`, `no_service`, a 4xx).
    Refused,
    /// No attempt got through.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Deduplicated => "deduplicated",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

/// Claims and sends alerts; cheap to clone into each send's task.
#[derive(Clone)]
pub struct Dispatcher {
    set: Arc<AlertSet>,
    store: Store,
    client: reqwest::Client,
}

impl Dispatcher {
    pub fn new(set: Arc<AlertSet>, store: Store) -> Self {
        let client = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .user_agent(concat!("leadgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self { set, store, client }
    }

    pub fn set(&self) -> &AlertSet {
        &self.set
    }

    /// Every `lead_hot` alert that `change` makes hold, sent; outcomes by alert name.
    pub async fn grade_changed(
        &self,
        change: &GradeChange,
        decision: Option<&Decision>,
    ) -> Vec<(String, Outcome)> {
        let rules: Vec<&AlertRule> = self
            .set
            .on(AlertKind::LeadHot)
            .filter(|r| conditions::becomes_hot(r, change))
            .collect();
        if rules.is_empty() {
            return Vec::new();
        }
        let ctx = rules
            .iter()
            .any(|r| r.when.is_some())
            .then(|| conditions::lead_context(change, decision));
        let mut out = Vec::new();
        for rule in rules {
            if !conditions::when_holds(rule, ctx.as_ref()) {
                continue;
            }
            let lead = self.lead_summary(change, decision);
            let name = lead
                .company
                .clone()
                .unwrap_or_else(|| format!("lead {}", lead.id));
            let m = Message {
                alert: rule.name.clone(),
                on: rule.kind,
                key: change.lead_id.clone(),
                at: Utc::now(),
                title: format!("🔥 {} lead: {name}", capitalized(&change.grade)),
                summary: format!(
                    "Lead {} is now {} (was {}) with a score of {}{}.",
                    change.lead_id,
                    change.grade,
                    change.previous_grade.as_deref().unwrap_or("ungraded"),
                    change.score,
                    lead.route
                        .as_ref()
                        .map(|r| format!("; routed {r}"))
                        .unwrap_or_default()
                ),
                lead: Some(lead),
                sla: None,
                provider: None,
            };
            out.push((rule.name.clone(), self.deliver(rule, m).await));
        }
        out
    }

    /// Every `sla_breached` alert whose `when` holds for the lead, sent.
    pub async fn sla_breached(&self, breach: &SlaBreach) -> Vec<(String, Outcome)> {
        let rules: Vec<&AlertRule> = self.set.on(AlertKind::SlaBreached).collect();
        if rules.is_empty() {
            return Vec::new();
        }
        // The lead's latest decision: its grade, score and route for the message, and the
        // context a `when` reads.
        let decision = self.latest_decision(&breach.lead_id).await;
        let change = decision
            .as_ref()
            .map(|d| GradeChange::of(&breach.lead_id, None, d));
        let ctx = match (&change, rules.iter().any(|r| r.when.is_some())) {
            (Some(c), true) => Some(conditions::lead_context(c, decision.as_ref())),
            _ => None,
        };
        let mut out = Vec::new();
        for rule in rules {
            if !conditions::when_holds(rule, ctx.as_ref()) {
                continue;
            }
            let lead = change
                .as_ref()
                .map(|c| self.lead_summary(c, decision.as_ref()));
            let name = lead
                .as_ref()
                .and_then(|l| l.company.clone())
                .unwrap_or_else(|| format!("lead {}", breach.lead_id));
            let m = Message {
                alert: rule.name.clone(),
                on: rule.kind,
                key: breach.lead_id.clone(),
                at: Utc::now(),
                title: format!("⏰ SLA breached: {name}"),
                summary: format!(
                    "Owner {} did not touch lead {} within its {} SLA (due {}); the lead was {} {}.",
                    breach.owner,
                    breach.lead_id,
                    breach.sla,
                    breach.due_at.format("%Y-%m-%d %H:%M UTC"),
                    breach.step,
                    breach
                        .new_owner
                        .as_deref()
                        .map(|o| format!("to owner {o}"))
                        .unwrap_or_else(|| "to review".into())
                ),
                lead,
                sla: Some(breach.clone()),
                provider: None,
            };
            out.push((rule.name.clone(), self.deliver(rule, m).await));
        }
        out
    }

    /// Every alert watching `trouble`'s kind, sent.
    pub async fn provider_trouble(&self, trouble: &ProviderTrouble) -> Vec<(String, Outcome)> {
        let mut out = Vec::new();
        for rule in self.set.on(trouble.kind) {
            let title = match trouble.kind {
                AlertKind::ProviderCircuitOpen => {
                    format!("⚡ Provider {}: circuit open", trouble.provider)
                }
                _ => format!("💳 Provider {}: daily budget spent", trouble.provider),
            };
            let m = Message {
                alert: rule.name.clone(),
                on: rule.kind,
                key: trouble.provider.clone(),
                at: Utc::now(),
                title,
                summary: format!(
                    "{}. Leads go on through the rest of the waterfall.",
                    trouble.detail
                ),
                lead: None,
                sla: None,
                provider: Some(trouble.provider.clone()),
            };
            out.push((rule.name.clone(), self.deliver(rule, m).await));
        }
        out
    }

    /// A `delivery_failures` alert whose rate was passed, sent.
    pub async fn delivery_failures(&self, rule: &AlertRule, connector: &str) -> (String, Outcome) {
        let (rate, window) = rule.failures.unwrap_or((0, Duration::ZERO));
        let m = Message {
            alert: rule.name.clone(),
            on: rule.kind,
            key: "delivery".into(),
            at: Utc::now(),
            title: "📮 CRM deliveries failing".into(),
            summary: format!(
                "More than {rate} CRM deliveries failed within {} (the latest to {connector}); failed leads show their CRM error in the console, and transient failures are retried.",
                human(window)
            ),
            lead: None,
            sla: None,
            provider: Some(connector.to_string()),
        };
        (rule.name.clone(), self.deliver(rule, m).await)
    }

    /// Claims the alert for its window, sends it, and gives the claim back if it could not
    /// be delivered.
    async fn deliver(&self, rule: &AlertRule, m: Message) -> Outcome {
        let now_ms = m.at.timestamp_millis();
        let window_ms = i64::try_from(rule.dedupe_window.as_millis()).unwrap_or(i64::MAX);
        let claimed = match self
            .store
            .claim_alert(&rule.name, &m.key, now_ms, window_ms)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                // A duplicate is better than a lost alert about trouble the store may share.
                tracing::warn!(alert = %rule.name, error = %e, "cannot claim the alert in the store; sending it unclaimed");
                true
            }
        };
        let outcome = if !claimed {
            Outcome::Deduplicated
        } else {
            match self.send_with_retries(rule, &m).await {
                Ok(()) => Outcome::Sent,
                Err(e) => {
                    let outcome = if e.retryable {
                        Outcome::Failed
                    } else {
                        Outcome::Refused
                    };
                    tracing::warn!(alert = %rule.name, on = rule.kind.as_str(), error = %e, outcome = outcome.as_str(), "alert not delivered; the next occurrence will be sent");
                    if let Err(e) = self.store.release_alert(&rule.name, &m.key, now_ms).await {
                        tracing::warn!(alert = %rule.name, error = %e, "cannot release the alert's claim");
                    }
                    outcome
                }
            }
        };
        metrics::counter!("leadgate_alerts_sent_total", "alert" => rule.name.clone(), "outcome" => outcome.as_str())
            .increment(1);
        outcome
    }

    async fn send_with_retries(&self, rule: &AlertRule, m: &Message) -> Result<(), SendError> {
        let policy = RetryPolicy {
            attempts: rule.attempts as usize,
            min_delay: MIN_DELAY,
            max_delay: MAX_DELAY,
            max_retry_after: MAX_RETRY_AFTER,
        };
        policy.run(|| self.send_once(&rule.receiver, m)).await
    }

    async fn send_once(&self, receiver: &Receiver, m: &Message) -> Result<(), SendError> {
        let request = match receiver {
            Receiver::Slack { url } => self
                .client
                .post(url.clone())
                .json(&super::slack::payload(m)),
            Receiver::Webhook { url, secret } => {
                let body = serde_json::to_vec(m).unwrap_or_default();
                let ts = Utc::now().timestamp();
                self.client
                    .post(url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(super::webhook::TIMESTAMP_HEADER, ts.to_string())
                    .header(
                        super::webhook::SIGNATURE_HEADER,
                        super::webhook::signature(secret, ts, &body),
                    )
                    .body(body)
            }
        };
        let response = request
            .send()
            .await
            .map_err(|e| SendError::unreachable(&e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::connector::http::headers::retry_after(v.trim(), Utc::now()));
        match receiver {
            Receiver::Slack { .. } => {
                let body = response.text().await.unwrap_or_default();
                super::slack::outcome(status, retry_after, &body)
            }
            Receiver::Webhook { .. } => super::webhook::outcome(status, retry_after),
        }
    }

    fn lead_summary(&self, change: &GradeChange, decision: Option<&Decision>) -> LeadSummary {
        LeadSummary {
            id: change.lead_id.clone(),
            grade: change.grade.clone(),
            previous_grade: change.previous_grade.clone(),
            score: change.score,
            factors: change.factors.clone(),
            route: decision.map(route_line),
            owner: decision.and_then(|d| d.route.owner.clone()),
            company: decision.and_then(company),
            link: self
                .set
                .public_url
                .as_ref()
                .map(|u| format!("{u}/leads/{}", change.lead_id)),
        }
    }

    async fn latest_decision(&self, lead_id: &str) -> Option<Decision> {
        match self.store.lead(lead_id).await {
            Ok(Some(view)) => view.decision.and_then(|d| serde_json::from_value(d).ok()),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the lead for its alert; sending without its score");
                None
            }
        }
    }
}

/// `by rule west-ae to owner 123 (pool west)`.
fn route_line(d: &Decision) -> String {
    let r = &d.route;
    let to = match r.action {
        RouteAction::Assign => match (&r.owner, &r.pool) {
            (Some(o), Some(p)) => format!("to owner {o} (pool {p})"),
            (Some(o), None) => format!("to owner {o}"),
            (None, _) => "for assignment".into(),
        },
        RouteAction::Enroll => format!(
            "into sequence {}",
            r.sequence.as_deref().unwrap_or("(none)")
        ),
        RouteAction::Review => "to review".into(),
        RouteAction::Disqualify => "out (disqualified)".into(),
    };
    format!("by rule {} {to}", r.rule)
}

/// The company's name, as the lead gave it or enrichment found it.
fn company(d: &Decision) -> Option<String> {
    d.lead
        .company
        .clone()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            d.enrichment
                .value("company.name")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// The providers' live reports, read each provider check.
pub type ProviderReports =
    Box<dyn Fn() -> Vec<crate::enrich::report::ConnectorReport> + Send + Sync>;

/// The dispatcher loop of `leadgate serve`: drains `queue`, watches provider health, and
/// sends each alert in its own task (a slow receiver delays no other alert). Runs until
/// `stop` turns true, then waits up to a few seconds for alerts in flight.
/// `providers` answers the providers' live reports (circuit, budget) when asked.
pub async fn run(
    store: crate::store::Store,
    providers: ProviderReports,
    queue: AlertQueue,
    mut stop: watch::Receiver<bool>,
) {
    let AlertQueue { set, mut rx } = queue;
    let dispatcher = Dispatcher::new(set.clone(), store);
    let watches_providers = set.watches(AlertKind::ProviderCircuitOpen)
        || set.watches(AlertKind::ProviderBudgetExhausted);
    let mut watch = ProviderWatch::default();
    let mut failures: HashMap<String, FailureWindow> = HashMap::new();
    let mut every = tokio::time::interval(PROVIDER_CHECK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sends = JoinSet::new();
    loop {
        tokio::select! {
            event = rx.recv() => {
                let Some(event) = event else { break };
                match event {
                    AlertEvent::Grade { change, decision } => {
                        let d = dispatcher.clone();
                        sends.spawn(async move { d.grade_changed(&change, decision.as_deref()).await; });
                    }
                    AlertEvent::SlaBreached(breach) => {
                        let d = dispatcher.clone();
                        sends.spawn(async move { d.sla_breached(&breach).await; });
                    }
                    AlertEvent::DeliveryFailed { connector } => {
                        let now = tokio::time::Instant::now();
                        for rule in set.on(AlertKind::DeliveryFailures) {
                            let Some((rate, window)) = rule.failures else { continue };
                            let over = failures.entry(rule.name.clone()).or_default().record(now, rate, window);
                            if over {
                                let (d, rule, connector) = (dispatcher.clone(), rule.clone(), connector.clone());
                                sends.spawn(async move { d.delivery_failures(&rule, &connector).await; });
                            }
                        }
                    }
                }
            }
            _ = every.tick(), if watches_providers => {
                let reports = providers();
                for trouble in watch.observe(&reports) {
                    let d = dispatcher.clone();
                    sends.spawn(async move { d.provider_trouble(&trouble).await; });
                }
            }
            Some(_) = sends.join_next(), if !sends.is_empty() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    if tokio::time::timeout(DRAIN, async { while sends.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!(
            in_flight = sends.len(),
            "alerts still being sent at shutdown were abandoned"
        );
    }
}
