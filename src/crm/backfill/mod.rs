//! `leadgate backfill --crm ID`: re-processing the records a CRM already holds after a rules
//! change. Pages through them ([`source`]), runs each through enrich → score → route, and
//! writes what changed back in the vendor's batch shape ([`write`]) through the outbox —
//! within the connector's rate limiter and daily quota (shared by replicas when
//! `[limits] redis_url` or the store shares them, `resilience::shared`).
//!
//! Resumable and exactly once: the cursor of the next page is committed in the store
//! (`backfill_runs`, [`state`]) only after every write of the page is closed in the outbox
//! under `backfill:CONNECTOR:GENERATION:RECORD`. A process killed mid-page reads that page
//! again: a record whose effect is closed is counted, not written; one begun but not closed
//! is read again by id (search lags writes) and written only if it still lacks the values.
//!
//! Must not: write anything, record decisions or move rotations with `--dry-run`; process
//! a person who asked to be erased (counted `skipped: suppressed`).

pub mod progress;
pub mod source;
pub mod state;
pub mod write;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{json, Value};

use self::source::{id_text, soql_field, Vendor};
use self::state::{BackfillRun, Counts};
use self::write::{Change, Outcome};
use super::body::{get_path, text_vars, TypedVars};
use super::deliver::same;
use super::fetch::record_lead;
use super::outbox::{Effect, EffectStatus, Finished};
use super::Crm;
use crate::connector::ConnectorError;
use crate::lead::{Decision, EnrichedLead, Lead};
use crate::pipeline::Pipeline;
use crate::route::LocalAssignments;
use crate::rules::Scope;
use crate::rules::{Condition, RuleContext};
use crate::store::{Store, StoreError};

/// What a backfill is asked to do.
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    pub connector: String,
    /// Only records modified at or after this.
    pub since: Option<DateTime<Utc>>,
    /// A CEL condition on the record as a lead (before enrichment): `lead.*`, `email.*`.
    pub filter: Option<String>,
    pub dry_run: bool,
    /// Stop after this many records (a real run stops at the end of that page: pages are
    /// the unit of progress).
    pub limit: Option<u64>,
    /// Without a terminal, how often a progress line is printed.
    pub progress_every: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("backfill --crm {crm}: {reason}")]
    Setup { crm: String, reason: String },
    #[error("--filter `{expression}`: {reason}")]
    Filter { expression: String, reason: String },
    #[error("{crm}: reading page {page} failed: {error}; run the same command again to continue from this page")]
    Read {
        crm: String,
        page: i64,
        error: ConnectorError,
    },
    #[error("{crm}: writing page {page} (records {records}) failed: {error}; run the same command again to continue — records already written are not written again")]
    Write {
        crm: String,
        page: i64,
        records: String,
        error: ConnectorError,
    },
    #[error("{crm}: page {page}, record {record}: {reason}")]
    Record {
        crm: String,
        page: i64,
        record: String,
        reason: String,
    },
    #[error("{crm}: page {page}: {error}")]
    Store {
        crm: String,
        page: i64,
        error: StoreError,
    },
}

/// One record the CRM refused, for the summary (the id and the CRM's words, emails masked).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub page: i64,
    pub record: String,
    pub reason: String,
    pub message: String,
}

/// What `--dry-run` would have changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    /// CRM property → records whose value would change.
    pub per_property: BTreeMap<String, u64>,
    /// (the CRM's owner now, where routing sends the lead) → records, for changed owners.
    pub moves: BTreeMap<(String, String), u64>,
}

/// How a backfill ended.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub connector: String,
    pub dry_run: bool,
    /// Counts over the whole pass (earlier, interrupted runs of it included).
    pub counts: Counts,
    pub pages: i64,
    /// The page this process began at, when it continued an interrupted pass.
    pub resumed_at: Option<i64>,
    /// False when `--limit` stopped it first.
    pub finished: bool,
    pub diff: Diff,
    /// The first [`MAX_FAILURES_LISTED`] refused records.
    pub failures: Vec<Failure>,
    pub elapsed: Duration,
    /// Records read by this process.
    pub read_now: u64,
}

pub const MAX_FAILURES_LISTED: usize = 20;

/// A decided record waiting for its page's writes.
struct Decided {
    record_id: String,
    key: String,
    lead: Lead,
    decision: Decision,
    change: Option<Change>,
    /// Its effect was begun by an earlier process and never closed.
    pending: bool,
}

/// Runs a backfill to its end (or `--limit`).
pub async fn run(
    pipeline: &Pipeline,
    store: &Store,
    crm: &Crm,
    opts: &BackfillOptions,
) -> Result<Report, BackfillError> {
    let id = opts.connector.as_str();
    let setup = |reason: String| BackfillError::Setup {
        crm: id.to_string(),
        reason,
    };
    let vendor = Vendor::of(id).ok_or_else(|| {
        setup("backfill knows hubspot, salesforce and pipedrive; this connector is none".into())
    })?;
    let c = crm.connector(id).ok_or_else(|| {
        setup(format!(
            "the connector is not configured: set its credentials in [providers.{id}]"
        ))
    })?;
    let object = vendor.object();
    let write_op = if vendor == Vendor::Pipedrive {
        "update"
    } else {
        "batch_update"
    };
    for op in [
        format!("backfill_{object}"),
        format!("fetch_{object}"),
        write_op.to_string(),
    ] {
        if !c.has(&op) {
            return Err(setup(format!(
                "its manifest ({}) has no [operations.{op}]",
                c.manifest().file.display()
            )));
        }
    }
    let map = c
        .manifest()
        .operations
        .get(&format!("fetch_{object}"))
        .cloned()
        .ok_or_else(|| setup(format!("no fetch_{object}")))?;
    let filter =
        match &opts.filter {
            Some(f) => Some(Condition::compile(f, &Scope::scoring()).map_err(|e| {
                BackfillError::Filter {
                    expression: f.clone(),
                    reason: e.to_string(),
                }
            })?),
            None => None,
        };
    let owner_property = c.owner_property();
    let mut names: Vec<String> = std::iter::once("email".to_string())
        .chain(
            crm.fields
                .iter()
                .map(|f| f.property.split('.').next().unwrap_or_default().to_string()),
        )
        .chain(owner_property.clone())
        .chain(vendor.lead_properties().iter().map(|p| p.to_string()))
        .collect();
    names.sort();
    names.dedup();
    let mut vars = TypedVars::new();
    let since = opts
        .since
        .unwrap_or_else(|| DateTime::from_timestamp_millis(0).unwrap_or_default());
    vars.insert(
        "since_ms",
        Value::from(since.timestamp_millis().to_string()),
    );
    vars.insert(
        "since_iso",
        Value::from(since.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
    );
    vars.insert(
        "property_names",
        Value::Array(names.iter().cloned().map(Value::from).collect()),
    );
    if vendor == Vendor::Salesforce {
        const LISTED: &[&str] = &[
            "Id",
            "Email",
            "FirstName",
            "LastName",
            "Company",
            "Title",
            "Phone",
            "Website",
            "Country",
            "LastModifiedDate",
        ];
        let mut extra = Vec::new();
        for n in names.iter().filter(|n| n.as_str() != "email") {
            if !soql_field(n) {
                return Err(setup(format!(
                    "`{n}` is not a Salesforce field name (letters, digits, _)"
                )));
            }
            if !LISTED.iter().any(|l| l.eq_ignore_ascii_case(n)) {
                extra.push(n.clone());
            }
        }
        if extra.is_empty() {
            extra.push("CreatedDate".into());
        }
        vars.insert("soql_fields", Value::from(extra.join(", ")));
    }
    let text = text_vars(&vars);

    let params = params_digest(opts);
    let mut run = if opts.dry_run {
        BackfillRun {
            connector: id.to_string(),
            params,
            generation: 0,
            cursor: None,
            pages: 0,
            counts: Counts::default(),
            resumed: false,
        }
    } else {
        store
            .backfill_start(id, &params)
            .await
            .map_err(|error| BackfillError::Store {
                crm: id.to_string(),
                page: 1,
                error,
            })?
    };
    let now = Utc::now();
    let rotation =
        LocalAssignments::from_snapshot(store.assignment_snapshot(now).await.map_err(|error| {
            BackfillError::Store {
                crm: id.to_string(),
                page: run.pages + 1,
                error,
            }
        })?);
    let mut report = Report {
        connector: id.to_string(),
        dry_run: opts.dry_run,
        resumed_at: run.resumed.then_some(run.pages + 1),
        ..Report::default()
    };
    let started = Instant::now();
    let mut progress = progress::Progress::new(id, opts.progress_every, run.counts.read);

    // Three stages run at once, so the writes go out at the limiter's rate: a reader that
    // keeps a page ahead (the next cursor is known from the page itself), the decisions of
    // one page, and a writer that writes and commits pages in order. The cursor is still
    // committed only after every write of its page is closed; a crash leaves at most the
    // pages in between to be read and decided again, never written twice.
    let (page_tx, mut page_rx) =
        tokio::sync::mpsc::channel::<(i64, Result<source::Page, ConnectorError>)>(READ_AHEAD);
    let (write_tx, mut write_rx) = tokio::sync::mpsc::channel::<Staged>(WRITE_AHEAD);
    let reader = {
        let mut cursor = run.cursor.clone();
        let mut page_no = run.pages;
        let vars = &vars;
        async move {
            loop {
                page_no += 1;
                let page = source::read_page(c, vendor, vars, cursor.as_deref()).await;
                let next = page.as_ref().ok().and_then(|p| p.next.clone());
                let last = next.is_none();
                if page_tx.send((page_no, page)).await.is_err() || last {
                    break;
                }
                cursor = next;
            }
        }
    };
    let mut read_now = 0u64;
    let mut dry_diff = Diff::default();
    let generation = run.generation;
    let read_before = run.counts.read;
    let processor = async {
        let mut read_so_far = read_before;
        while let Some((page_no, page)) = page_rx.recv().await {
            let store_err = |error: StoreError| BackfillError::Store {
                crm: id.to_string(),
                page: page_no,
                error,
            };
            let page = page.map_err(|error| BackfillError::Read {
                crm: id.to_string(),
                page: page_no,
                error,
            })?;
            // HubSpot's `total` counts what the keyset query still matches; SOQL's the pass.
            let total = page.total.map(|t| {
                if vendor == Vendor::HubSpot {
                    read_so_far + t
                } else {
                    t
                }
            });
            let mut counts = Counts::default();
            let mut stopped_early = false;
            // The page's records as (record, record id, effect key), in order.
            let mut listed: Vec<(
                &Value,
                String,
                String,
                std::collections::BTreeMap<String, Value>,
            )> = Vec::with_capacity(page.records.len());
            for record in &page.records {
                if let Some(limit) = opts.limit {
                    if opts.dry_run && read_now >= limit {
                        stopped_early = true;
                        break;
                    }
                }
                read_now += 1;
                counts.read += 1;
                let fields = map.map(record, &text).fields;
                let Some(record_id) = fields.get("record_id").and_then(id_text) else {
                    *counts.skipped.entry("invalid".into()).or_default() += 1;
                    continue;
                };
                let key = format!("backfill:{id}:{generation}:{record_id}");
                listed.push((record, record_id, key, fields));
            }
            // One read for the page's outbox rows, one for its erasures (not one per record).
            let entries = if opts.dry_run || listed.is_empty() {
                Default::default()
            } else {
                let keys: Vec<String> = listed.iter().map(|(_, _, k, _)| k.clone()).collect();
                store.outbox_get_many(&keys).await.map_err(store_err)?
            };
            let mut candidates: Vec<(&Value, String, String, bool, Lead)> =
                Vec::with_capacity(listed.len());
            for (record, record_id, key, fields) in listed {
                let mut pending = false;
                if let Some(entry) = entries.get(&key) {
                    match entry.status {
                        EffectStatus::Ok => {
                            counts.changed += 1;
                            counts.written += 1;
                            continue;
                        }
                        EffectStatus::Failed => {
                            counts.changed += 1;
                            let reason = entry
                                .answer
                                .as_ref()
                                .and_then(|a| a.get("reason"))
                                .and_then(Value::as_str)
                                .unwrap_or("ERROR")
                                .to_string();
                            *counts.failed.entry(reason).or_default() += 1;
                            continue;
                        }
                        EffectStatus::Pending => pending = true,
                    }
                }
                let raw = record_lead(id, &record_id, &fields);
                let Ok(lead) = pipeline.normalize(&raw) else {
                    *counts.skipped.entry("invalid".into()).or_default() += 1;
                    continue;
                };
                candidates.push((record, record_id, key, pending, lead));
            }
            // Someone who asked to be erased is not enriched, decided, recorded or written.
            let emails: Vec<String> = candidates
                .iter()
                .filter_map(|(_, _, _, _, lead)| lead.email.clone())
                .collect();
            let mut suppressed = store
                .suppressed_among(&emails)
                .await
                .map_err(store_err)?
                .into_iter();
            let mut to_decide = Vec::with_capacity(candidates.len());
            for candidate in candidates {
                let lead = &candidate.4;
                if lead.email.is_some() && suppressed.next().unwrap_or(false) {
                    *counts.skipped.entry("suppressed".into()).or_default() += 1;
                    continue;
                }
                if let Some(f) = &filter {
                    let ctx = RuleContext::for_lead(
                        &EnrichedLead {
                            lead: lead.clone(),
                            enrichment: Default::default(),
                        },
                        &json!({}),
                        now,
                    );
                    if !f.eval(&ctx).matched() {
                        *counts.skipped.entry("filtered".into()).or_default() += 1;
                        continue;
                    }
                }
                to_decide.push(candidate);
            }
            // The page's records are decided concurrently (bounded): each decision waits on
            // the store for its account's roll-up, and those waits overlap. `buffered` keeps
            // the page's order for what follows.
            let names = &names;
            let rotation = &rotation;
            let outcomes: Vec<Result<(Decided, Value), BackfillError>> =
                futures::stream::iter(to_decide.into_iter().map(
                    |(record, record_id, key, pending, lead)| async move {
                        let decision =
                            pipeline
                                .decide(lead.clone(), rotation, now)
                                .await
                                .map_err(|e| BackfillError::Record {
                                    crm: id.to_string(),
                                    page: page_no,
                                    record: record_id.clone(),
                                    reason: e.to_string(),
                                })?;
                        let mut current = vendor.properties(record);
                        if pending && c.has("get") {
                            // Begun by a process that died before closing it: the listing
                            // may lag the write (HubSpot search does), the record by id not.
                            let mut get =
                                TypedVars::from([("record_id", Value::from(record_id.clone()))]);
                            get.insert("property_names", Value::from(names.join(",")));
                            let reply =
                                c.call("get", &get)
                                    .await
                                    .map_err(|error| BackfillError::Read {
                                        crm: id.to_string(),
                                        page: page_no,
                                        error,
                                    })?;
                            if let Some(p) = reply.fields.get("properties") {
                                current = p.clone();
                            }
                        }
                        Ok((
                            Decided {
                                record_id,
                                key,
                                lead,
                                decision,
                                change: None,
                                pending,
                            },
                            current,
                        ))
                    },
                ))
                .buffered(DECIDE_CONCURRENCY)
                .collect()
                .await;
            let mut decided: Vec<Decided> = Vec::with_capacity(outcomes.len());
            for outcome in outcomes {
                let (mut d, current) = outcome?;
                let change = diff(
                    crm,
                    &d.decision,
                    &current,
                    owner_property.as_deref(),
                    &d.record_id,
                );
                if let Some(ch) = &change {
                    counts.changed += 1;
                    if opts.dry_run {
                        note_diff(
                            &mut dry_diff,
                            ch,
                            &d.decision,
                            &current,
                            owner_property.as_deref(),
                        );
                    }
                } else if d.pending {
                    // The earlier attempt's write landed: close it.
                    counts.changed += 1;
                    counts.written += 1;
                    store
                        .outbox_finish(
                            &d.key,
                            &ok_finish(&d.record_id, "already held by the record"),
                        )
                        .await
                        .map_err(store_err)?;
                } else {
                    counts.unchanged += 1;
                }
                d.change = change;
                decided.push(d);
            }

            if !opts.dry_run {
                record_page(store, rotation, id, page_no, &mut decided, &mut counts).await?;
            }
            read_so_far += counts.read;
            let limit_reached = opts.limit.is_some_and(|l| read_now >= l);
            let done = page.next.is_none() && !stopped_early;
            let last = done || limit_reached || stopped_early;
            let staged = Staged {
                page_no,
                next: page.next,
                done,
                last,
                total,
                decided,
                counts,
            };
            // A closed writer has failed: its error is the one reported.
            if write_tx.send(staged).await.is_err() || last {
                break;
            }
        }
        drop(write_tx);
        Ok::<(), BackfillError>(())
    };
    let mut failures = Vec::new();
    let mut finished = false;
    let writer = async {
        while let Some(mut st) = write_rx.recv().await {
            let closed = if opts.dry_run {
                Vec::new()
            } else {
                write_changes(
                    store,
                    c,
                    vendor,
                    owner_property.as_deref(),
                    st.page_no,
                    &st.decided,
                    &mut st.counts,
                    &mut failures,
                )
                .await?
            };
            run.counts.add(&st.counts);
            run.pages = st.page_no;
            if !opts.dry_run {
                store
                    .backfill_close_page(&closed, &run, st.next.as_deref(), st.done)
                    .await
                    .map_err(|error| BackfillError::Store {
                        crm: id.to_string(),
                        page: st.page_no,
                        error,
                    })?;
            }
            if let Some(t) = st.total {
                progress.set_total(t);
            }
            progress.advance(
                st.counts.read,
                run.counts.written,
                run.counts.failed_total(),
            );
            run.cursor = st.next;
            if st.last {
                finished = st.done;
                break;
            }
        }
        Ok::<(), BackfillError>(())
    };
    let (decided, written, ()) = tokio::join!(processor, writer, reader);
    written?;
    decided?;
    report.read_now = read_now;
    report.diff = dry_diff;
    report.failures = failures;
    report.finished = finished;
    progress.finish();
    report.counts = run.counts;
    report.pages = run.pages;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Pages read ahead of the one being decided, and decided pages waiting for the writer:
/// one each keeps every stage busy without holding more than a few pages in memory.
const READ_AHEAD: usize = 1;
const WRITE_AHEAD: usize = 1;

/// Records of a page decided at once: enough to overlap their store reads, few enough that
/// a page's rotation order stays close to its record order.
const DECIDE_CONCURRENCY: usize = 16;

/// A decided page on its way to the writer.
struct Staged {
    page_no: i64,
    next: Option<String>,
    /// The pass ends with this page.
    done: bool,
    /// Nothing follows it in this process (the end, or `--limit`).
    last: bool,
    total: Option<u64>,
    decided: Vec<Decided>,
    counts: Counts,
}

/// Records the page's decisions with the rotation they used, before any of its writes.
async fn record_page(
    store: &Store,
    rotation: &LocalAssignments,
    id: &str,
    page: i64,
    decided: &mut Vec<Decided>,
    counts: &mut Counts,
) -> Result<(), BackfillError> {
    let store_err = |error: StoreError| BackfillError::Store {
        crm: id.to_string(),
        page,
        error,
    };
    let mut pairs: Vec<(Lead, Decision)> = decided
        .iter()
        .map(|d| (d.lead.clone(), d.decision.clone()))
        .collect();
    if pairs.is_empty() {
        return Ok(());
    }
    let delta = rotation.take_delta();
    let erased = store
        .record_batch(&mut pairs, &delta.positions)
        .await
        .map_err(store_err)?;
    store
        .add_assignment_counts(&delta.counts)
        .await
        .map_err(store_err)?;
    // Erased between the check and the record: the store kept nothing; write nothing.
    for i in erased.iter().rev() {
        let gone = decided.remove(*i);
        pairs.remove(*i);
        if gone.change.is_some() || gone.pending {
            counts.changed = counts.changed.saturating_sub(1);
        } else {
            counts.unchanged = counts.unchanged.saturating_sub(1);
        }
        *counts.skipped.entry("suppressed".into()).or_default() += 1;
    }
    for (d, (_, recorded)) in decided.iter_mut().zip(&pairs) {
        d.decision.id = recorded.id.clone();
    }
    Ok(())
}

/// Writes a recorded page's changes in batches, each record's effect begun before its call
/// and closed with its own answer. Returns the closes, which the caller commits with the
/// page's cursor in one transaction; a failed call closes what came before it (and leaves
/// its own records pending) before the error is returned.
#[allow(clippy::too_many_arguments)]
async fn write_changes(
    store: &Store,
    c: &super::CrmConnector,
    vendor: Vendor,
    owner_property: Option<&str>,
    page: i64,
    decided: &[Decided],
    counts: &mut Counts,
    failures: &mut Vec<Failure>,
) -> Result<Vec<(String, Finished)>, BackfillError> {
    let id = c.id().to_string();
    let store_err = |error: StoreError| BackfillError::Store {
        crm: id.clone(),
        page,
        error,
    };
    let writes: Vec<&Decided> = decided.iter().filter(|d| d.change.is_some()).collect();
    let mut closed = Vec::with_capacity(writes.len());
    if writes.is_empty() {
        return Ok(closed);
    }
    for chunk in writes.chunks(vendor.batch_size()) {
        let effects: Vec<Effect> = chunk
            .iter()
            .map(|d| Effect {
                key: d.key.clone(),
                lead_id: d.decision.id.clone(),
                job_id: None,
                connector: id.clone(),
                op: "write".into(),
                decision: None,
            })
            .collect();
        // Begun per batch, just before its call: a call that fails leaves no effect begun
        // for the batches after it (a begun effect is re-read by id when the page is replayed).
        let entries = store.outbox_begin_all(&effects).await.map_err(store_err)?;
        // Only effects still pending are written: one closed by another process is not.
        let chunk: Vec<&Decided> = chunk
            .iter()
            .zip(&entries)
            .filter(|(_, e)| e.status == EffectStatus::Pending)
            .map(|(d, _)| *d)
            .collect();
        let chunk = chunk.as_slice();
        let batch: Vec<Change> = chunk.iter().filter_map(|d| d.change.clone()).collect();
        if batch.is_empty() {
            continue;
        }
        let outcomes = match write::write_batch(c, vendor, owner_property, &batch).await {
            Ok(o) => o,
            Err(error) => {
                let still = batch.iter().map(|ch| {
                    (
                        key_of(chunk, &ch.record_id),
                        Finished {
                            status: EffectStatus::Pending,
                            record_id: None,
                            result_id: None,
                            answer: None,
                            error: Some(error.message.clone()),
                        },
                    )
                });
                closed.extend(still);
                store.outbox_finish_all(&closed).await.map_err(store_err)?;
                let first = batch
                    .first()
                    .map(|c| c.record_id.clone())
                    .unwrap_or_default();
                let last = batch
                    .last()
                    .map(|c| c.record_id.clone())
                    .unwrap_or_default();
                return Err(BackfillError::Write {
                    crm: id.clone(),
                    page,
                    records: format!("{first} … {last}"),
                    error,
                });
            }
        };
        for (ch, outcome) in batch.iter().zip(outcomes) {
            let key = key_of(chunk, &ch.record_id);
            let finish = match &outcome {
                Outcome::Written => {
                    counts.written += 1;
                    ok_finish(&ch.record_id, "written")
                }
                Outcome::Refused { reason, message } => {
                    *counts.failed.entry(reason.clone()).or_default() += 1;
                    if failures.len() < MAX_FAILURES_LISTED {
                        failures.push(Failure {
                            page,
                            record: ch.record_id.clone(),
                            reason: reason.clone(),
                            message: message.clone(),
                        });
                    }
                    metrics::counter!("leadgate_delivery_failures_total", "connector" => id.clone(), "op" => "backfill", "error_kind" => "invalid").increment(1);
                    Finished {
                        status: EffectStatus::Failed,
                        record_id: Some(ch.record_id.clone()),
                        result_id: None,
                        answer: Some(json!({"op": "backfill", "reason": reason})),
                        error: Some(format!(
                            "{id} refused the backfill write of {}: {message}",
                            ch.record_id
                        )),
                    }
                }
            };
            closed.push((key, finish));
        }
    }
    Ok(closed)
}

fn key_of(chunk: &[&Decided], record_id: &str) -> String {
    chunk
        .iter()
        .find(|d| d.record_id == record_id)
        .map(|d| d.key.clone())
        .unwrap_or_default()
}

fn ok_finish(record_id: &str, detail: &str) -> Finished {
    Finished {
        status: EffectStatus::Ok,
        record_id: Some(record_id.to_string()),
        result_id: None,
        answer: Some(json!({"op": "backfill", "detail": detail})),
        error: None,
    }
}

/// What the decision would change in the record: mapped fields (by their write policies)
/// and the owner; `None` when the record holds it all.
fn diff(
    crm: &Crm,
    decision: &Decision,
    current: &Value,
    owner_property: Option<&str>,
    record_id: &str,
) -> Option<Change> {
    let properties = crm.properties(decision, Some(current));
    let owner = match (crm.owner(decision), owner_property) {
        (Some(o), Some(p)) if !get_path(current, p).is_some_and(|v| same(v, &json!(o))) => Some(o),
        _ => None,
    };
    (!properties.is_empty() || owner.is_some()).then(|| Change {
        record_id: record_id.to_string(),
        properties,
        owner,
    })
}

fn note_diff(
    diff: &mut Diff,
    change: &Change,
    decision: &Decision,
    current: &Value,
    owner_property: Option<&str>,
) {
    for k in change.properties.keys() {
        *diff.per_property.entry(k.clone()).or_default() += 1;
    }
    if let (Some(_), Some(p)) = (&change.owner, owner_property) {
        *diff.per_property.entry(p.to_string()).or_default() += 1;
        let from = match get_path(current, p).and_then(id_text) {
            Some(o) => format!("owner {o}"),
            None => "no owner".to_string(),
        };
        *diff
            .moves
            .entry((from, crate::route::compare::destination(decision)))
            .or_default() += 1;
    }
}

/// Another `--since` or `--filter` is another pass with its own cursor.
fn params_digest(opts: &BackfillOptions) -> String {
    use sha2::Digest;
    let text = format!(
        "since={};filter={}",
        opts.since.map(|s| s.to_rfc3339()).unwrap_or_default(),
        opts.filter.as_deref().unwrap_or_default()
    );
    let d = sha2::Sha256::digest(text.as_bytes());
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The summary the command prints.
pub fn render(r: &Report) -> String {
    let mut t = String::new();
    let c = &r.counts;
    let resumed = r
        .resumed_at
        .map(|p| format!(", continued at page {p}"))
        .unwrap_or_default();
    let _ = writeln!(
        t,
        "Backfill {}{}: {} records read over {} pages{resumed}{}",
        r.connector,
        if r.dry_run { " (dry run)" } else { "" },
        c.read,
        r.pages,
        if r.finished {
            ""
        } else {
            " — stopped by --limit; run again to continue"
        }
    );
    let by = |m: &BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(t, "  changed    {:>8}", c.changed);
    let _ = writeln!(t, "  unchanged  {:>8}", c.unchanged);
    let _ = writeln!(t, "  written    {:>8}", c.written);
    let _ = writeln!(
        t,
        "  failed     {:>8}   {}",
        c.failed_total(),
        by(&c.failed)
    );
    let skipped: u64 = c.skipped.values().sum();
    let _ = writeln!(t, "  skipped    {:>8}   {}", skipped, by(&c.skipped));
    let secs = r.elapsed.as_secs_f64();
    if secs > 0.0 {
        let _ = writeln!(
            t,
            "  took {:.1}s ({:.0} records/s)",
            secs,
            r.read_now as f64 / secs
        );
    }
    if r.dry_run {
        let _ = writeln!(
            t,
            "\nDry run: nothing written to {}, no decision recorded. {} of {} records would change ({:.1}%)",
            r.connector,
            c.changed,
            c.read,
            if c.read == 0 { 0.0 } else { 100.0 * c.changed as f64 / c.read as f64 }
        );
        if !r.diff.per_property.is_empty() {
            let _ = writeln!(t, "\nProperties that would change");
            for (p, n) in &r.diff.per_property {
                let _ = writeln!(t, "  {p:<28} {n:>6}");
            }
        }
        let mut moves: Vec<_> = r.diff.moves.iter().collect();
        moves.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        if !moves.is_empty() {
            let width = moves
                .iter()
                .map(|((f, _), _)| f.chars().count())
                .max()
                .unwrap_or(10);
            let _ = writeln!(t, "\nWhere they would go (CRM owner now → routing)");
            for ((from, to), n) in moves {
                let _ = writeln!(t, "  {from:<width$} → {to:<28} {n:>6}");
            }
        }
    }
    if !r.failures.is_empty() {
        let _ = writeln!(
            t,
            "\nRefused by {} (first {}):",
            r.connector,
            r.failures.len()
        );
        for f in &r.failures {
            let _ = writeln!(
                t,
                "  page {}, record {}: {} — {}",
                f.page, f.record, f.reason, f.message
            );
        }
    }
    t
}
