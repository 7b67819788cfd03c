//! The pipeline, one lead at a time, a tracing span per stage. A queued job goes through
//! [`Pipeline::run_job`], the one place that says the order: normalize → suppression →
//! history → enrich → account match → score → route → override → deliver → record. Built once from settings; shared by the CLI, the workers and the
//! HTTP API, so every entry point decides the same way.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use tracing::Instrument;

use crate::alert::Alerts;
use crate::crm::fence::Fence;
use crate::crm::Crm;
use crate::enrich::report::Catalog;
use crate::enrich::Waterfall;
use crate::lead::{Decision, Lead, LeadStatus, RawLead, RouteAction};
use crate::normalize::{InvalidLead, Normalizer};
use crate::route::{Assignments, Router};
use crate::rules::RuleContext;
use crate::score::{AccountEngagement, Scorer};
use crate::settings::{ConfigErrors, ConfigIssue, Settings};
use crate::store::reuse::{Reuse, Reused};
use crate::store::{Job, Store, StoreError};
use crate::webhook::RecordSource;
use futures::future::BoxFuture;

pub struct Pipeline {
    pub normalizer: Normalizer,
    pub waterfall: Waterfall,
    /// Every connector manifest and waterfall provider, for `leadgate connectors`.
    pub connectors: Catalog,
    pub scorer: Scorer,
    pub router: Router,
    /// The stored decisions the account score rolls up (`account.score`); none when the
    /// storage backend cannot supply them.
    pub account_engagement: Option<Arc<dyn AccountEngagement>>,
    /// The enrichment answer cache, so an erasure can forget what it holds about a person.
    pub cache: Option<crate::enrich::SharedCache>,
    /// Account roll-ups that dry runs ([`Pipeline::preview`]) reuse.
    preview_rollups: RollupCache,
}

/// How long a dry run reuses an account's roll-up when nothing in this process changed it,
/// and how long after that a kept copy still answers while one background read replaces it.
/// Together they bound what a write by another process (a replica, `leadgate run`) can
/// hide from a preview: about ten seconds for an account seen at least once a minute.
/// Reading the roll-up per lead was a large share of `POST /v1/evaluate`, and re-reading
/// every account each second still put the store's latency into evaluate's p99
/// (docs/performance.md, seventh round).
const PREVIEW_ROLLUP_FRESH: std::time::Duration = std::time::Duration::from_secs(10);
const PREVIEW_ROLLUP_KEEP: std::time::Duration = std::time::Duration::from_secs(60);

/// Most accounts whose roll-up is kept; past it the copies are dropped and read again.
const PREVIEW_ROLLUP_ACCOUNTS: usize = 10_000;

/// What the store answered for an account: `(score, decided_at)` per lead.
type Rows = Vec<(f64, DateTime<Utc>)>;

/// Rows read for one account and score, with the account's change counter
/// ([`crate::store::account_version`]) noted before the read.
struct RollupEntry {
    version: u64,
    rows: Reused<Arc<Rows>>,
}

type RollupEntries = std::sync::Mutex<HashMap<(String, String), RollupEntry>>;

/// Roll-up rows per (domain, score id).
struct RollupCache {
    entries: Arc<RollupEntries>,
    fresh: std::time::Duration,
    keep: std::time::Duration,
    /// Background reads under way. Copies read together (a warm-up, a restart) expire
    /// together: unbounded, a thousand accounts' refreshes filled the store's pool at once
    /// and the reads that had to wait (new accounts) queued behind them.
    refreshes: Arc<tokio::sync::Semaphore>,
}

/// Most background roll-up reads at once; the rest keep answering their copy meanwhile.
const PREVIEW_ROLLUP_REFRESHES: usize = 2;

impl Default for RollupCache {
    fn default() -> Self {
        Self {
            entries: Arc::default(),
            fresh: PREVIEW_ROLLUP_FRESH,
            keep: PREVIEW_ROLLUP_KEEP,
            refreshes: Arc::new(tokio::sync::Semaphore::new(PREVIEW_ROLLUP_REFRESHES)),
        }
    }
}

impl RollupCache {
    /// The account's rows: read from `source` when there is no copy, this process changed
    /// the account since, or the copy is older than `keep`; a copy between `fresh` and
    /// `keep` old is answered while one background read replaces it ([`Reused`]).
    async fn rows(
        &self,
        source: &Arc<dyn AccountEngagement>,
        domain: &str,
        score: &str,
    ) -> Result<Arc<Rows>, StoreError> {
        let key = (domain.to_string(), score.to_string());
        let version = crate::store::account_version(domain);
        if let Some(e) = lock(&self.entries).get_mut(&key) {
            if e.version == version {
                match e.rows.reuse_within(self.fresh, self.keep) {
                    Reuse::Fresh(rows) => return Ok(rows),
                    Reuse::RefreshBehind(rows) => {
                        let started = tokio::runtime::Handle::try_current()
                            .ok()
                            .zip(self.refreshes.clone().try_acquire_owned().ok());
                        match started {
                            Some((runtime, permit)) => {
                                let (entries, source, key) =
                                    (self.entries.clone(), source.clone(), key.clone());
                                runtime.spawn(async move {
                                    let _permit = permit;
                                    match source.account_rows(&key.0, &key.1).await {
                                        Ok(rows) => insert(&entries, key, version, Arc::new(rows)),
                                        Err(e) => {
                                            tracing::debug!(error = %e, "account roll-up refresh failed");
                                            if let Some(e) = lock(&entries).get_mut(&key) {
                                                e.rows.refresh_failed();
                                            }
                                        }
                                    }
                                });
                            }
                            // No runtime, or enough refreshes under way: a later caller
                            // starts it.
                            None => e.rows.refresh_failed(),
                        }
                        return Ok(rows);
                    }
                    Reuse::Stale => {}
                }
            }
        }
        let rows = Arc::new(source.account_rows(domain, score).await?);
        insert(&self.entries, key, version, rows.clone());
        Ok(rows)
    }
}

/// Keeps `rows`, read after the account's change counter was `version`.
fn insert(entries: &RollupEntries, key: (String, String), version: u64, rows: Arc<Rows>) {
    let mut entries = lock(entries);
    if entries.len() >= PREVIEW_ROLLUP_ACCOUNTS {
        entries.clear();
    }
    entries.insert(
        key,
        RollupEntry {
            version,
            rows: Reused::new(rows),
        },
    );
}

fn lock(
    entries: &RollupEntries,
) -> std::sync::MutexGuard<'_, HashMap<(String, String), RollupEntry>> {
    // A panic while holding the lock leaves a map that is still whole.
    entries.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pipeline {
    /// Builds every stage from settings, collecting every issue before failing.
    pub fn build(settings: &Settings) -> Result<Self, ConfigErrors> {
        let c = &settings.config;
        let file = settings.file_name();
        let mut issues: Vec<ConfigIssue> = Vec::new();
        let issue = |key: &str, reason: String| ConfigIssue {
            file: file.clone(),
            line: None,
            key: key.into(),
            reason,
        };

        let normalizer = Normalizer::from_files(
            &settings.resolve(&c.normalize.free_email_domains),
            &settings.resolve(&c.normalize.disposable_email_domains),
        )
        .map_err(|e| issues.push(issue("normalize", e.to_string())))
        .unwrap_or_default();

        // Providers from `[enrichment] waterfall`, connectors/*.toml and `[providers.ID]`.
        let (providers, validation, connectors, cache) =
            match crate::enrich::build::providers(settings) {
                Ok(b) => (b.providers, b.validation, b.catalog, Some(b.cache)),
                Err(e) => {
                    issues.extend(e);
                    Default::default()
                }
            };
        let field_order: HashMap<String, Vec<String>> = c
            .enrichment
            .field_order
            .iter()
            .map(|f| (f.field.clone(), f.order.clone()))
            .collect();
        let waterfall = Waterfall::new(providers, c.enrichment.stop_when.clone(), field_order)
            .with_validation(validation);

        let scorer = Scorer::load(&settings.resolve(&c.scoring)).map_err(|e| issues.extend(e.0));
        let router = Router::load(&settings.resolve(&c.routing)).map_err(|e| issues.extend(e.0));
        match (scorer, router) {
            (Ok(scorer), Ok(router)) if issues.is_empty() => Ok(Self {
                normalizer,
                waterfall,
                connectors,
                cache,
                scorer,
                router,
                preview_rollups: RollupCache::default(),
                // A lazy read pool on the same file: connects on the first lead, after the
                // caller has opened (and migrated) the store.
                account_engagement: crate::store::Store::open_lazy(&settings.storage_url())
                    .ok()
                    .map(|s| Arc::new(s) as Arc<dyn AccountEngagement>),
            }),
            _ => Err(ConfigErrors(issues)),
        }
    }

    /// Forgets every cached enrichment answer whose request or answer named this email (raw
    /// or URL-encoded), in memory and in Redis, and tells the other replicas through Redis
    /// (`enrich::erasures`; the store's counter moved with the erasure); returns how many
    /// entries went here.
    pub async fn forget(&self, email: &str) -> u64 {
        let Some(cache) = &self.cache else { return 0 };
        let email = email.trim().to_lowercase();
        let encoded =
            percent_encoding::utf8_percent_encode(&email, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
                .to_lowercase();
        let mut n = cache.invalidate_containing(&email).await;
        if encoded != email {
            n += cache.invalidate_containing(&encoded).await;
        }
        cache.announce_erasure().await;
        n
    }

    /// Normalizes a raw lead (the intake check).
    pub fn normalize(&self, raw: &RawLead) -> Result<Lead, InvalidLead> {
        self.normalizer.normalize(raw)
    }

    /// Sets `account.score` (the account's leads' engagement, rolled up from the store) and
    /// `account.leads`. A store that cannot answer leaves them unset: scoring goes on.
    /// `reuse` lets a dry run take a roll-up read moments ago (see [`RollupCache`]).
    async fn roll_up_account(
        &self,
        account: &mut serde_json::Value,
        domain: Option<&str>,
        now: DateTime<Utc>,
        reuse: bool,
    ) {
        let (Some(domain), Some(rollup), Some(source)) = (
            domain,
            self.scorer.account_rollup(),
            &self.account_engagement,
        ) else {
            return;
        };
        // A decision reads the account's running total (O(1), migration 0013); a dry run may
        // take rows read moments ago.
        let rolled = if reuse {
            self.preview_rollups
                .rows(source, domain, &rollup.score)
                .await
                .map(|rows| rollup.roll_up(&rows, now))
        } else {
            source.account_score(domain, rollup, now).await
        };
        match rolled {
            Ok(rolled) => {
                if !account.is_object() {
                    *account = json!({});
                }
                if let Some(obj) = account.as_object_mut() {
                    obj.insert("score".into(), json!(rolled.score));
                    obj.insert("leads".into(), json!(rolled.leads));
                }
            }
            Err(e) => tracing::debug!(error = %e, "account score unavailable; scoring without it"),
        }
    }

    /// Enriches, scores and routes a normalized lead. Delivers nothing: the caller records
    /// the decision, and `rotation` decides whether routing state is written.
    pub async fn decide(
        &self,
        lead: Lead,
        rotation: &dyn Assignments,
        now: DateTime<Utc>,
    ) -> Result<Decision, StoreError> {
        self.decide_with(lead, rotation, now, false).await
    }

    /// [`Pipeline::decide`] for a dry run (`POST /v1/evaluate`): the account roll-up may be
    /// one read moments ago, never one older than a decision this process recorded since.
    pub async fn preview(
        &self,
        lead: Lead,
        rotation: &dyn Assignments,
        now: DateTime<Utc>,
    ) -> Result<Decision, StoreError> {
        self.decide_with(lead, rotation, now, true).await
    }

    async fn decide_with(
        &self,
        lead: Lead,
        rotation: &dyn Assignments,
        now: DateTime<Utc>,
        reuse_rollup: bool,
    ) -> Result<Decision, StoreError> {
        let enriched = self
            .waterfall
            .enrich(lead, now)
            .instrument(tracing::debug_span!("stage", name = "enrich"))
            .await;
        let mut account = self
            .router
            .match_account(&enriched.lead)
            .instrument(tracing::debug_span!("stage", name = "account"))
            .await;
        let domain = enriched.lead.domain.as_deref();
        self.roll_up_account(&mut account, domain, now, reuse_rollup)
            .await;
        let event_list = self.scorer.reads_event_list() || self.router.reads_event_list();
        let mut ctx = RuleContext::for_lead_reading(&enriched, &account, now, event_list);
        self.scorer.prepare(&mut ctx);
        let (scored, scores) = {
            let _span = tracing::debug_span!("stage", name = "score").entered();
            self.scorer.score_all(enriched, &ctx, now)
        };
        // Built as values and moved in: `set(&json!(…))` built each twice.
        ctx.set_json("score", scored.score.into());
        ctx.set_json("grade", scored.grade.as_str().into());
        let (mut by_score, mut by_grade) = (serde_json::Map::new(), serde_json::Map::new());
        for (id, card) in &scores {
            by_score.insert(id.clone(), card.score.into());
            by_grade.insert(id.clone(), card.grade.as_str().into());
        }
        ctx.set_json("scores", by_score.into());
        ctx.set_json("grades", by_grade.into());
        let route = self
            .router
            .route(&scored, &mut ctx, rotation, now)
            .instrument(tracing::debug_span!("stage", name = "route"))
            .await?;
        let status = match route.action {
            RouteAction::Review => LeadStatus::Review,
            _ => LeadStatus::Done,
        };
        let lead = scored.enriched.lead;
        Ok(Decision {
            id: String::new(),
            external_id: lead.external_id.clone(),
            email: lead.email.clone(),
            status,
            enrichment: scored.enriched.enrichment,
            score: scored.score,
            grade: scored.grade,
            factors: scored.factors,
            scores,
            route,
            delivery: Vec::new(),
            decided_at: now,
            lead,
            rescore: None,
        })
    }
}

/// What a job's stages use besides the pipeline itself: the store, and the CRM and the
/// alerts when they are configured (the daemon's `Services` hands them over).
pub struct JobStages<'a> {
    pub store: &'a Store,
    /// Fetches the CRM record a webhook named by id.
    pub records: Option<&'a dyn RecordSource>,
    /// Delivers decisions to the CRM; none unless `[delivery]` is set.
    pub delivery: Option<&'a Crm>,
    pub alerts: &'a Alerts,
}

/// The worker's hold on a job, as the stages see it (`crate::worker` implements it).
pub trait JobLease: Fence {
    /// Whether another worker claimed the job since: nothing more may be written.
    fn lost(&self) -> bool;
    /// Renews the lease now.
    fn renew(&self) -> BoxFuture<'_, Result<(), StoreError>>;
}

impl Pipeline {
    /// One claimed job through every stage, in leadgate's one order:
    ///
    /// resume an interrupted delivery → fetch the CRM record a webhook named → normalize →
    /// suppression → the person's event history → enrich → account match → score → route
    /// → a human override → deliver → record (which closes the job).
    ///
    /// A step that cannot finish for a reason that heals (a store or CRM hiccup) returns
    /// without recording: the job's lease brings it back. A lead that can never be decided
    /// is recorded as failed with the reason.
    pub async fn run_job(&self, stages: &JobStages<'_>, job: &Job, lease: &dyn JobLease) {
        let raw: RawLead = match serde_json::from_str(&job.payload) {
            Ok(r) => r,
            Err(e) => {
                return fail(stages, job, &format!("stored payload is not a lead: {e}")).await
            }
        };
        // A delivery a crash interrupted resumes with the decision it was delivering: the lead
        // is not routed a second time.
        if let Some(crm) = &stages.delivery {
            if let Some(decision) = crm.resume(stages.store, job).await {
                let lead = decision.lead.clone();
                return self
                    .deliver_and_record(stages, job, lease, &lead, decision)
                    .await;
            }
        }
        // A resolved review item (issue 24) is queued already decided; without `[delivery]`
        // nothing above resumed it, so it is recorded as decided here.
        if stages.delivery.is_none() {
            if let Some(decision) = crate::console::review::preset_decision(stages.store, job).await
            {
                let lead = decision.lead.clone();
                return self
                    .deliver_and_record(stages, job, lease, &lead, decision)
                    .await;
            }
        }
        let raw = match crate::webhook::fetch_target(&raw) {
        None => raw,
        Some((connector, object, id)) => match &stages.records {
            None => return fail(stages, job, &format!("the webhook named {connector} {object} {id}, but no CRM connector is configured to fetch it")).await,
            Some(source) => match source.fetch(&connector, &object, &id).await {
                Ok(fetched) => fetched,
                Err(e) if e.permanent => return fail(stages, job, &format!("cannot read {connector} {object} {id}: {e}")).await,
                Err(e) => {
                    // The lease brings the job back: a CRM hiccup must not lose the lead.
                    tracing::warn!(%connector, %object, error = %e, "cannot fetch the CRM record yet; will retry");
                    return;
                }
            },
        },
    };
        let lead = match self.normalize(&raw) {
            Ok(l) => l,
            Err(e) => return fail(stages, job, &format!("invalid lead: {e}")).await,
        };
        if let Some(email) = &lead.email {
            match stages.store.is_suppressed(email).await {
                Ok(true) => {
                    return fail(stages, job, "suppressed: this person asked to be erased").await
                }
                Ok(false) => {}
                // The lease brings the job back; deciding without the check could re-process
                // someone who asked to be forgotten.
                Err(e) => {
                    return tracing::error!(error = %e, "cannot check the suppression list; the job will be retried")
                }
            }
        }
        // A job taken over while it was being fetched or normalized: routing it here would
        // spend a pick the newer claim makes again.
        if lease.lost() {
            return;
        }
        // Issue 25: the arrival's events join the person's history; scoring reads all of it.
        let lead = match crate::events::with_history(
            stages.store,
            &self.scorer,
            &job.lead_id,
            lead,
            Utc::now(),
        )
        .await
        {
            Ok(l) => l,
            Err(e) => {
                // The lease brings the job back: scoring without the history would lose points.
                return tracing::error!(error = %e, "cannot read the person's event history; the job will be retried");
            }
        };
        let decision = match self
            .decide(lead.clone(), &stages.store.for_job(&job.id), Utc::now())
            .await
        {
            Ok(d) => d,
            Err(e) => {
                // The lease brings the job back; nothing is lost.
                tracing::error!(error = %e, "pipeline could not finish; the job will be retried");
                return;
            }
        };
        crate::score::exported::record_scores(&decision);
        // A human override in force wins over the automatic decision (issue 24).
        let decision = match stages.store.active_override(&job.lead_id).await {
            Ok(None) => decision,
            Ok(Some(o)) => {
                let mut d = decision;
                crate::console::overrides::apply(&mut d, &o);
                d
            }
            Err(e) => {
                // The lease brings the job back: delivering without the check could undo a person's override.
                return tracing::error!(error = %e, "cannot read the lead's overrides; the job will be retried");
            }
        };
        self.deliver_and_record(stages, job, lease, &lead, decision)
            .await
    }

    /// Delivers the decision to the CRM (when `[delivery]` is set), then records it and closes
    /// the job. A CRM refusal that will not heal fails the lead with the CRM's message; a
    /// transient one leaves the job for its lease to bring back.
    async fn deliver_and_record(
        &self,
        stages: &JobStages<'_>,
        job: &Job,
        lease: &dyn JobLease,
        lead: &Lead,
        decision: Decision,
    ) {
        let decision = match &stages.delivery {
            None => decision,
            Some(crm) => {
                // The last renewal before the CRM call: it proves the job is still this worker's
                // and gives the delivery a whole lease (the heartbeat goes on renewing it).
                match lease.renew().await {
                    Ok(()) => {}
                    Err(StoreError::LeaseLost { .. }) => {
                        return tracing::warn!("another worker claimed this job after its lease ran out; not delivering it");
                    }
                    Err(e) => {
                        return tracing::warn!(error = %e, "cannot confirm this worker still holds the job; not delivering it, the job will be retried");
                    }
                }
                match crm.deliver(stages.store, job, decision, lease).await {
                    Ok(d) => d,
                    Err(crate::crm::DeliveryError::Store(StoreError::LeaseLost { .. })) => {
                        return tracing::warn!("another worker claimed this job after its lease ran out; this worker stops before calling the CRM");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "delivery did not finish; the job will be retried");
                        stages
                            .alerts
                            .delivery_failed(crm.target.as_deref().unwrap_or("crm"));
                        return;
                    }
                }
            }
        };
        // Issue 25 alerts: the grade before this decision, read only when it could turn hot.
        let previous_grade = stages
            .alerts
            .previous_grade(stages.store, &job.lead_id, &decision)
            .await;
        match stages.store.complete(job, lead, &decision).await {
            // `complete` recorded the CRM's refusal as the job's error with the status.
            Ok(()) if let Some(reason) = crate::crm::failure_reason(&decision) => {
                metrics::counter!("leadgate_leads_processed_total", "status" => "failed")
                    .increment(1);
                tracing::warn!(reason, "lead failed");
                stages
                    .alerts
                    .decision_recorded(&job.lead_id, previous_grade, &decision);
            }
            Ok(()) => {
                stages
                    .alerts
                    .decision_recorded(&job.lead_id, previous_grade, &decision);
                metrics::counter!("leadgate_leads_processed_total", "status" => decision.status.as_str()).increment(1);
                tracing::info!(
                    email = %lead.masked_email(),
                    score = decision.score,
                    grade = %decision.grade,
                    rule = %decision.route.rule,
                    "lead decided"
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot record the decision; the job will be retried")
            }
        }
    }
}

async fn fail(stages: &JobStages<'_>, job: &Job, reason: &str) {
    metrics::counter!("leadgate_leads_processed_total", "status" => "failed").increment(1);
    tracing::warn!(reason, "lead failed");
    match stages.store.fail(job, reason).await {
        Ok(()) => {}
        Err(StoreError::LeaseLost { .. }) => tracing::warn!(
            "another worker claimed this job after its lease ran out; it records the outcome"
        ),
        Err(e) => tracing::error!(error = %e, "cannot mark the job failed"),
    }
}

impl Pipeline {
    /// The account a stored lead is scored with at rest (issue 25, src/rescore): matched and
    /// rolled up as [`Pipeline::decide`] does, reusing a recent roll-up as a dry run does.
    pub async fn account_at_rest(&self, lead: &Lead, now: DateTime<Utc>) -> serde_json::Value {
        let mut account = self.router.match_account(lead).await;
        self.roll_up_account(&mut account, lead.domain.as_deref(), now, true)
            .await;
        account
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::AccountRows;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Answers each read with one row whose score is the read's number.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl AccountEngagement for Counting {
        fn account_rows<'a>(&'a self, _domain: &'a str, _score: &'a str) -> AccountRows<'a> {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            Box::pin(async move { Ok(vec![(n as f64, Utc::now())]) })
        }
    }

    async fn score_of(cache: &RollupCache, source: &Arc<dyn AccountEngagement>) -> f64 {
        cache.rows(source, "acme.io", "lead").await.unwrap()[0].0
    }

    /// Reads that wait on a gate once `blocking` is set, counted as they start.
    #[derive(Default)]
    struct Gated {
        started: AtomicUsize,
        blocking: std::sync::atomic::AtomicBool,
        gate: tokio::sync::Notify,
    }

    impl AccountEngagement for Gated {
        fn account_rows<'a>(&'a self, _domain: &'a str, _score: &'a str) -> AccountRows<'a> {
            self.started.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if self.blocking.load(Ordering::SeqCst) {
                    self.gate.notified().await;
                }
                Ok(vec![(1.0, Utc::now())])
            })
        }
    }

    /// Copies read together expire together: only `refreshes` background reads start at
    /// once, and the other accounts answer their copy instead of waiting.
    #[tokio::test]
    async fn background_roll_up_reads_are_bounded() {
        let gated = Arc::new(Gated::default());
        let source: Arc<dyn AccountEngagement> = gated.clone();
        let fresh = std::time::Duration::from_millis(50);
        let cache = RollupCache {
            fresh,
            keep: std::time::Duration::from_secs(60),
            refreshes: Arc::new(tokio::sync::Semaphore::new(1)),
            ..RollupCache::default()
        };
        let domains = ["a.io", "b.io", "c.io"];
        for d in domains {
            cache.rows(&source, d, "lead").await.unwrap();
        }
        assert_eq!(gated.started.load(Ordering::SeqCst), 3);
        gated.blocking.store(true, Ordering::SeqCst);
        tokio::time::sleep(fresh * 2).await;
        for d in domains {
            let rows = tokio::time::timeout(
                std::time::Duration::from_secs(1),
                cache.rows(&source, d, "lead"),
            )
            .await
            .expect("a kept copy answers at once");
            assert_eq!(rows.unwrap().len(), 1);
        }
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            gated.started.load(Ordering::SeqCst),
            4,
            "one background read at a time"
        );
        gated.gate.notify_waiters();
        for _ in 0..100 {
            if cache.refreshes.available_permits() == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        for d in domains {
            cache.rows(&source, d, "lead").await.unwrap();
        }
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            gated.started.load(Ordering::SeqCst),
            5,
            "the next waiting account is read once the first is done"
        );
    }

    /// Fresh copies are reused; a copy past `fresh` is answered while one background read
    /// replaces it; a copy past `keep` is read again before answering; a change made by
    /// this process is read at once.
    #[tokio::test]
    async fn dry_run_roll_ups_are_reused_then_refreshed_behind_the_answer() {
        let counting = Arc::new(Counting::default());
        let source: Arc<dyn AccountEngagement> = counting.clone();
        let (fresh, keep) = (
            std::time::Duration::from_millis(400),
            std::time::Duration::from_millis(1200),
        );
        let cache = RollupCache {
            fresh,
            keep,
            ..RollupCache::default()
        };
        let reads = || counting.0.load(Ordering::SeqCst);
        assert_eq!(score_of(&cache, &source).await, 1.0);
        assert_eq!(score_of(&cache, &source).await, 1.0);
        assert_eq!(reads(), 1);

        tokio::time::sleep(fresh + fresh / 4).await;
        assert_eq!(
            score_of(&cache, &source).await,
            1.0,
            "the old copy, at once"
        );
        assert_eq!(score_of(&cache, &source).await, 1.0);
        for _ in 0..100 {
            if reads() == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        tokio::task::yield_now().await;
        assert_eq!(reads(), 2, "one background read, however many asked");
        assert_eq!(score_of(&cache, &source).await, 2.0, "then the new one");

        tokio::time::sleep(keep + fresh / 4).await;
        assert_eq!(score_of(&cache, &source).await, 3.0, "too old: read first");

        crate::store::account_changed(Some("acme.io"));
        assert_eq!(
            score_of(&cache, &source).await,
            4.0,
            "changed here: read first"
        );
    }
}
