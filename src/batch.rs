//! `leadgate run FILE`: every lead of a CSV or JSONL file through the pipeline, decisions
//! recorded in the store (unless a dry run) and optionally written as JSON lines; a
//! malformed row is reported with its line and the rest still run.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};

use crate::intake::{self, BadRow, IntakeError};
use crate::lead::{Decision, Lead, ProviderOutcome, RouteAction};
use crate::pipeline::Pipeline;
use crate::route::LocalAssignments;
use crate::store::{Store, StoreError};

/// Decisions are written to the store in transactions of this many leads: one fsync per
/// batch instead of per lead.
const RECORD_BATCH: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("{0}")]
    Intake(#[from] IntakeError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("cannot write {path}: {reason}")]
    Output { path: String, reason: String },
}

/// One provider's line in the summary.
#[derive(Debug, Default, Clone)]
pub struct ProviderTally {
    pub provider: String,
    /// Leads it was asked about (not skipped).
    pub asked: usize,
    pub hits: usize,
    /// Answers served from the cache: no upstream call, no credit.
    pub cached: usize,
    /// Why it was skipped, and how often (`stop_when satisfied`, `not_configured` ...).
    pub skipped: BTreeMap<String, usize>,
}

/// What a run did, for the summary table.
#[derive(Debug, Default)]
pub struct Summary {
    pub rows: usize,
    pub decided: usize,
    pub bad_rows: Vec<BadRow>,
    /// Lines of people who asked to be erased: not enriched, decided or recorded.
    pub suppressed: Vec<u64>,
    pub by_grade: BTreeMap<String, usize>,
    /// "rule → action target" → count.
    pub by_route: BTreeMap<String, usize>,
    pub enriched: usize,
    /// Per provider, in waterfall order.
    pub providers: Vec<ProviderTally>,
    pub decisions: Vec<Decision>,
}

impl Summary {
    fn add(&mut self, d: &Decision) {
        self.decided += 1;
        *self.by_grade.entry(d.grade.clone()).or_default() += 1;
        *self.by_route.entry(route_label(d)).or_default() += 1;
        if d.enrichment.hit() {
            self.enriched += 1;
        }
        for p in &d.enrichment.providers {
            let i = match self.providers.iter().position(|t| t.provider == p.provider) {
                Some(i) => i,
                None => {
                    self.providers.push(ProviderTally {
                        provider: p.provider.clone(),
                        ..Default::default()
                    });
                    self.providers.len() - 1
                }
            };
            let t = &mut self.providers[i];
            match p.outcome {
                ProviderOutcome::Skipped => {
                    // The kind of reason, not its details: `not_configured: no API key` → `not_configured`.
                    let why = p
                        .reason
                        .as_deref()
                        .unwrap_or("skipped")
                        .split(':')
                        .next()
                        .unwrap_or("skipped")
                        .trim()
                        .to_string();
                    *t.skipped.entry(why).or_default() += 1;
                }
                outcome => {
                    t.asked += 1;
                    t.hits += usize::from(outcome == ProviderOutcome::Hit);
                    t.cached += usize::from(p.cached);
                }
            }
        }
    }
}

/// `rule → assign owner 123 (pool west)` style label for the summary.
pub fn route_label(d: &Decision) -> String {
    let r = &d.route;
    let what = match r.action {
        RouteAction::Assign => match &r.pool {
            Some(p) => format!("assign pool {p}"),
            None => "assign owner".into(),
        },
        RouteAction::Enroll => format!("enroll {}", r.sequence.as_deref().unwrap_or("?")),
        RouteAction::Review => "review".into(),
        RouteAction::Disqualify => "disqualify".into(),
    };
    format!("{} → {what}", r.rule)
}

pub struct RunOptions<'a> {
    pub out: Option<&'a Path>,
    pub dry_run: bool,
    /// Keep every decision in the summary (simulate, tests).
    pub keep_decisions: bool,
}

/// Runs a file through the pipeline. Routing runs in memory from the stored state
/// (positions, today's counts, pauses); what it changes is saved with each chunk of
/// decisions, so a dry run saves nothing.
pub async fn run_file(
    pipeline: &Pipeline,
    store: &Store,
    path: &Path,
    opts: RunOptions<'_>,
) -> Result<Summary, BatchError> {
    let rotation = LocalAssignments::from_snapshot(store.assignment_snapshot(Utc::now()).await?);
    run_file_with(pipeline, store, path, opts, &rotation).await
}

/// Runs a file with the given in-memory assignments (a simulation passes
/// [`LocalAssignments::simulation`]).
pub async fn run_file_with(
    pipeline: &Pipeline,
    store: &Store,
    path: &Path,
    opts: RunOptions<'_>,
    rotation: &LocalAssignments,
) -> Result<Summary, BatchError> {
    let rows = intake::read_file(path)?;
    let mut summary = Summary {
        rows: rows.len(),
        ..Summary::default()
    };
    let mut out = match opts.out {
        None => None,
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p).map_err(
            |e| BatchError::Output {
                path: p.display().to_string(),
                reason: e.to_string(),
            },
        )?)),
    };

    let bar = ProgressBar::new(rows.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:40}] {pos}/{len} leads {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut pending: Vec<(Lead, Decision)> = Vec::new();
    // The file line of each pending decision, for what the store skips as suppressed.
    let mut lines: Vec<u64> = Vec::new();
    let now = Utc::now();
    for (line, row) in rows {
        bar.inc(1);
        let raw = match row {
            Ok(raw) => raw,
            Err(bad) => {
                summary.bad_rows.push(bad);
                continue;
            }
        };
        let lead = match pipeline.normalize(&raw) {
            Ok(l) => l,
            Err(e) => {
                summary.bad_rows.push(BadRow {
                    line,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        // Someone who asked to be erased is not enriched, decided or recorded, dry run or not.
        if let Some(email) = &lead.email {
            if store.is_suppressed(email).await? {
                flush(
                    store,
                    &mut pending,
                    &mut lines,
                    rotation,
                    &opts,
                    &mut out,
                    &mut summary,
                )
                .await?;
                skip_suppressed(line, &opts, &mut out, &mut summary)?;
                continue;
            }
        }
        let decision = pipeline.decide(lead.clone(), rotation, now).await?;
        pending.push((lead, decision));
        lines.push(line);
        if pending.len() >= RECORD_BATCH {
            flush(
                store,
                &mut pending,
                &mut lines,
                rotation,
                &opts,
                &mut out,
                &mut summary,
            )
            .await?;
        }
    }
    flush(
        store,
        &mut pending,
        &mut lines,
        rotation,
        &opts,
        &mut out,
        &mut summary,
    )
    .await?;
    if let Some(o) = out.as_mut() {
        o.flush().map_err(|e| output_error(&opts, e))?;
    }
    bar.finish_and_clear();
    Ok(summary)
}

/// Records a chunk with the rotation positions it used (unless a dry run) and writes it
/// to `--out`.
async fn flush(
    store: &Store,
    pending: &mut Vec<(Lead, Decision)>,
    lines: &mut Vec<u64>,
    rotation: &LocalAssignments,
    opts: &RunOptions<'_>,
    out: &mut Option<std::io::BufWriter<std::fs::File>>,
    summary: &mut Summary,
) -> Result<(), BatchError> {
    let mut erased_since = Vec::new();
    if !opts.dry_run && !pending.is_empty() {
        let delta = rotation.take_delta();
        erased_since = store.record_batch(pending, &delta.positions).await?;
        store.add_assignment_counts(&delta.counts).await?;
    }
    for (i, ((_, d), line)) in pending.drain(..).zip(lines.drain(..)).enumerate() {
        // Erased between the check before deciding and the write: the store kept nothing.
        if erased_since.contains(&i) {
            skip_suppressed(line, opts, out, summary)?;
            continue;
        }
        summary.add(&d);
        if let Some(o) = out.as_mut() {
            let line = serde_json::to_string(&d).unwrap_or_default();
            writeln!(o, "{line}").map_err(|e| output_error(opts, e))?;
        }
        if opts.keep_decisions {
            summary.decisions.push(d);
        }
    }
    Ok(())
}

/// Counts a suppressed line and writes `{"line": N, "skipped": "suppressed"}` to `--out`
/// (the line number only: the person asked to be forgotten).
fn skip_suppressed(
    line: u64,
    opts: &RunOptions<'_>,
    out: &mut Option<std::io::BufWriter<std::fs::File>>,
    summary: &mut Summary,
) -> Result<(), BatchError> {
    summary.suppressed.push(line);
    if let Some(o) = out.as_mut() {
        let skipped = serde_json::json!({"line": line, "skipped": "suppressed"});
        writeln!(o, "{skipped}").map_err(|e| output_error(opts, e))?;
    }
    Ok(())
}

fn output_error(opts: &RunOptions<'_>, e: std::io::Error) -> BatchError {
    BatchError::Output {
        path: opts
            .out
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        reason: e.to_string(),
    }
}

/// The summary table printed at the end of a run.
pub fn render_summary(s: &Summary, grade_order: &[String]) -> String {
    let mut t = String::new();
    let pct = |n: usize, d: usize| {
        if d == 0 {
            0.0
        } else {
            100.0 * n as f64 / d as f64
        }
    };
    t += &format!(
        "\n{} rows read · {} leads decided · {} malformed rows skipped\n",
        s.rows,
        s.decided,
        s.bad_rows.len()
    );
    if !s.suppressed.is_empty() {
        t += &format!(
            "skipped: suppressed · {} leads of people who asked to be erased (not enriched, decided or recorded)\n",
            s.suppressed.len()
        );
    }
    t += "\nBy grade\n";
    let mut grades: Vec<&String> = grade_order
        .iter()
        .filter(|g| s.by_grade.contains_key(*g))
        .collect();
    grades.extend(s.by_grade.keys().filter(|g| !grade_order.contains(g)));
    for g in grades {
        let n = s.by_grade[g];
        t += &format!("  {:<12} {:>6}  {:>5.1}%\n", g, n, pct(n, s.decided));
    }
    t += "\nBy route\n";
    let width = s
        .by_route
        .keys()
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(10)
        .max(10);
    let mut routes: Vec<_> = s.by_route.iter().collect();
    routes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (r, n) in routes {
        t += &format!("  {:<width$} {:>6}  {:>5.1}%\n", r, n, pct(*n, s.decided));
    }
    t += &format!(
        "\nEnrichment: {} of {} leads enriched ({:.1}% hit rate)\n",
        s.enriched,
        s.decided,
        pct(s.enriched, s.decided)
    );
    for p in &s.providers {
        let skipped: Vec<String> = p
            .skipped
            .iter()
            .map(|(why, n)| format!("{n} {why}"))
            .collect();
        let skipped = if skipped.is_empty() {
            String::new()
        } else {
            format!("   skipped: {}", skipped.join(", "))
        };
        t += &format!(
            "  {:<16} {:>6} asked {:>6} hits {:>6.1}%  {:>5} from cache{skipped}\n",
            p.provider,
            p.asked,
            p.hits,
            pct(p.hits, p.asked),
            p.cached
        );
    }
    t
}
