//! Running account totals (`account_rollups`, migration 0013) on PostgreSQL: the twin of
//! `sqlite/rollup.rs`. Kept in the transaction that records a decision and read in O(1) by
//! the account roll-up, instead of every decision of the domain.
//!
//! SQLite serializes writers; here replicas record decisions at once, so two locks order
//! them, always taken in this order within a transaction:
//! 1. the lead's row (`FOR UPDATE`), before its latest decision is read: two replicas
//!    deciding one person (an arrival and a re-score, two arrivals) move its value one
//!    after the other, each from the decision the other committed, never both from the same
//!    one (which would take the old value out twice);
//! 2. the accounts' advisory locks, sorted, at the end of the transaction (`apply`): no
//!    update of a total is lost, a decision committed while the totals are being built is
//!    counted by its own transaction after, and a transaction recording many leads (a
//!    `run` batch, a re-score batch) never waits for a lead while holding an account.

use chrono::{DateTime, TimeZone, Utc};
use sqlx::Row;

use super::PgStore;
use crate::lead::Decision;
use crate::score::{half_life_ms, AccountRollup, AccountScore, RunningTotal};
use crate::store::StoreError;

/// A lead's latest decision: the value it counts in its account's totals.
#[derive(Debug, Clone)]
pub(super) struct Latest {
    id: i64,
    domain: Option<String>,
    decided_at: i64,
}

impl Latest {
    pub(super) fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }
}

/// The lead's latest decision so far, if any.
pub(super) async fn latest(
    tx: &mut sqlx::PgConnection,
    lead_id: &str,
) -> Result<Option<Latest>, StoreError> {
    let row = sqlx::query(
        "SELECT id, domain, decided_at FROM decisions WHERE lead_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(lead_id)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(|r| Latest {
        id: r.get("id"),
        domain: r.get("domain"),
        decided_at: r.get("decided_at"),
    }))
}

/// Holds the lead's row lock until the transaction ends (see the module's lock order).
pub(in crate::store) async fn lock_lead(
    tx: &mut sqlx::PgConnection,
    lead_id: &str,
) -> Result<(), StoreError> {
    sqlx::query("SELECT 1 FROM leads WHERE id = $1 FOR UPDATE")
        .bind(lead_id)
        .fetch_optional(&mut *tx)
        .await?;
    Ok(())
}

/// Holds the account's lock until the transaction ends.
async fn lock_account(tx: &mut sqlx::PgConnection, domain: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('account_rollups:' || $1, 0))")
        .bind(domain)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// A score's value in a stored decision, when it is a JSON number (as SQLite's json_extract
/// yields no number for anything else).
const SCORE_VALUE: &str =
    "CASE WHEN jsonb_typeof(record::jsonb -> 'scores' -> $1 -> 'score') = 'number'
     THEN (record::jsonb -> 'scores' -> $1 -> 'score')::float8 END";

/// The running totals kept for `domain`, by score id.
async fn totals(
    tx: &mut sqlx::PgConnection,
    domain: &str,
) -> Result<Vec<(String, RunningTotal)>, StoreError> {
    let rows = sqlx::query(
        // Row locks too: an erasure deleting every total waits for this transaction, or this
        // one finds the totals gone, never writing back a total read before they went.
        "SELECT score, half_life_ms, total, as_of, leads FROM account_rollups WHERE domain = $1
         FOR UPDATE",
    )
    .bind(domain)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.get("score"),
                RunningTotal {
                    half_life_ms: r.get("half_life_ms"),
                    total: r.get("total"),
                    as_of: r.get("as_of"),
                    leads: r.get("leads"),
                },
            )
        })
        .collect())
}

async fn save(
    tx: &mut sqlx::PgConnection,
    domain: &str,
    score: &str,
    t: &RunningTotal,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO account_rollups (domain, score, half_life_ms, total, as_of, leads)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (domain, score) DO UPDATE SET half_life_ms = excluded.half_life_ms,
           total = excluded.total, as_of = excluded.as_of, leads = excluded.leads",
    )
    .bind(domain)
    .bind(score)
    .bind(t.half_life_ms)
    .bind(t.total)
    .bind(t.as_of)
    .bind(t.leads)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A decision recorded for a lead whose latest decision was `before`: the old value leaves
/// its account's totals and the new one (now the latest, `after`) joins its own, when the
/// transaction applies its moves.
#[derive(Debug)]
pub(super) struct Move {
    before: Option<Latest>,
    after: Latest,
    scores: Vec<(String, f64)>,
}

impl Move {
    pub(super) fn new(before: Option<Latest>, after: Latest, decision: &Decision) -> Self {
        let scores = decision
            .scores
            .iter()
            .map(|(id, card)| (id.clone(), card.score as f64))
            .collect();
        Self {
            before,
            after,
            scores,
        }
    }

    fn accounts(&self) -> impl Iterator<Item = &str> {
        self.before
            .as_ref()
            .and_then(Latest::domain)
            .into_iter()
            .chain(self.after.domain())
    }
}

/// Applies a transaction's moves, in the order their decisions were recorded, under every
/// account's lock taken in one (sorted) order, so two transactions moving leads opposite
/// ways cannot deadlock. Called last before the commit.
pub(super) async fn apply(tx: &mut sqlx::PgConnection, moves: &[Move]) -> Result<(), StoreError> {
    let mut accounts: Vec<&str> = moves.iter().flat_map(Move::accounts).collect();
    accounts.sort_unstable();
    accounts.dedup();
    for domain in &accounts {
        lock_account(tx, domain).await?;
    }
    for m in moves {
        if let Some(b) = &m.before {
            if let Some(domain) = b.domain() {
                for (score, mut t) in totals(tx, domain).await? {
                    let old: Option<f64> = sqlx::query_scalar(&format!(
                        "SELECT {SCORE_VALUE} FROM decisions WHERE id = $2"
                    ))
                    .bind(&score)
                    .bind(b.id)
                    .fetch_one(&mut *tx)
                    .await?;
                    if let Some(old) = old {
                        t.remove(old, b.decided_at);
                        save(tx, domain, &score, &t).await?;
                    }
                }
            }
        }
        if let Some(domain) = m.after.domain() {
            for (score, mut t) in totals(tx, domain).await? {
                if let Some((_, value)) = m.scores.iter().find(|(id, _)| *id == score) {
                    t.add(*value, m.after.decided_at);
                    save(tx, domain, &score, &t).await?;
                }
            }
        }
    }
    Ok(())
}

impl PgStore {
    /// The account's rolled-up score from its running total; the first read of an account
    /// (or one with another half-life) builds the total from the decisions under the
    /// account's lock, so no decision recorded meanwhile is missed.
    pub async fn account_score(
        &self,
        domain: &str,
        rollup: &AccountRollup,
        now: DateTime<Utc>,
    ) -> Result<AccountScore, StoreError> {
        let want = half_life_ms(rollup.half_life);
        let kept = sqlx::query(
            "SELECT half_life_ms, total, as_of, leads FROM account_rollups
             WHERE domain = $1 AND score = $2",
        )
        .bind(domain)
        .bind(&rollup.score)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| RunningTotal {
            half_life_ms: r.get("half_life_ms"),
            total: r.get("total"),
            as_of: r.get("as_of"),
            leads: r.get("leads"),
        });
        if let Some(t) = kept.filter(|t| t.half_life_ms == want) {
            if let Some(score) = t.at(now) {
                return Ok(score);
            }
            // A clock behind the newest decision: the rows answer exactly.
            let rows = self.account_rows(domain, &rollup.score).await?;
            return Ok(rollup.roll_up(&rows, now));
        }
        let mut tx = self.pool.begin().await?;
        lock_account(&mut tx, domain).await?;
        let rows = full_rows(&mut tx, domain, &rollup.score).await?;
        save(
            &mut tx,
            domain,
            &rollup.score,
            &RunningTotal::of(rollup.half_life, &rows),
        )
        .await?;
        tx.commit().await?;
        Ok(rollup.roll_up(&rows, now))
    }
}

/// `(score, decided_at)` of the latest decision of every lead at `domain`: the full read.
pub(super) async fn full_rows(
    conn: &mut sqlx::PgConnection,
    domain: &str,
    score: &str,
) -> Result<Vec<(f64, DateTime<Utc>)>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {SCORE_VALUE} AS s, d.decided_at
         FROM decisions d
         WHERE d.domain = $2 AND d.id = (SELECT MAX(id) FROM decisions WHERE lead_id = d.lead_id)"
    ))
    .bind(score)
    .bind(domain)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let s: Option<f64> = r.try_get("s").ok().flatten();
            let at = Utc.timestamp_millis_opt(r.get("decided_at")).single()?;
            Some((s?, at))
        })
        .collect())
}
