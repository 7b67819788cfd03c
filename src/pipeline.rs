//! The pipeline: normalize → enrich → score → route → (deliver), one lead at a time, a
//! tracing span per stage. Built once from settings; shared by the CLI, the workers and the
//! HTTP API, so every entry point decides the same way.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use tracing::Instrument;

use crate::enrich::report::Catalog;
use crate::enrich::Waterfall;
use crate::lead::{Decision, Lead, LeadStatus, RawLead, RouteAction};
use crate::normalize::{InvalidLead, Normalizer};
use crate::route::{Assignments, Router};
use crate::rules::RuleContext;
use crate::score::{AccountEngagement, Scorer};
use crate::settings::{ConfigErrors, ConfigIssue, Settings};
use crate::store::reuse::{Reuse, Reused};
use crate::store::StoreError;

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
        let mut account = self.router.match_account(&lead).await;
        self.roll_up_account(&mut account, lead.domain.as_deref(), now, reuse_rollup)
            .await;
        let enriched = self
            .waterfall
            .enrich(lead, now)
            .instrument(tracing::debug_span!("stage", name = "enrich"))
            .await;
        let mut ctx = RuleContext::for_lead(&enriched, &account, now);
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
