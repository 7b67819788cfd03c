//! Running account totals (`account_rollups`, migration 0013) on SQLite: kept in the
//! transaction that records a decision, read in O(1) by the account roll-up instead of every
//! decision of the domain. A writer needs no scoring configuration: it keeps whichever rows
//! the readers made (one per account and score id, each with its own half-life).

use chrono::{DateTime, TimeZone, Utc};
use sqlx::Row;

use super::Store;
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

/// The lead's latest decision so far, if any.
pub(super) async fn latest(
    tx: &mut sqlx::SqliteConnection,
    lead_id: &str,
) -> Result<Option<Latest>, StoreError> {
    let row = sqlx::query(
        "SELECT id, domain, decided_at FROM decisions WHERE lead_id = ? ORDER BY id DESC LIMIT 1",
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

impl Latest {
    pub(super) fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }
}

/// The JSON path of a score's value in a stored decision.
fn score_path(score: &str) -> String {
    format!("$.scores.\"{}\".score", score.replace('"', ""))
}

/// The running totals kept for `domain`, by score id.
async fn totals(
    tx: &mut sqlx::SqliteConnection,
    domain: &str,
) -> Result<Vec<(String, RunningTotal)>, StoreError> {
    let rows = sqlx::query(
        "SELECT score, half_life_ms, total, as_of, leads FROM account_rollups WHERE domain = ?",
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
    tx: &mut sqlx::SqliteConnection,
    domain: &str,
    score: &str,
    t: &RunningTotal,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO account_rollups (domain, score, half_life_ms, total, as_of, leads)
         VALUES (?, ?, ?, ?, ?, ?)
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

/// After a decision was inserted for a lead whose latest decision was `before`: the old
/// value leaves its account's totals and the new one (now the latest, `after`) joins its own.
/// Reads only the totals of the two accounts and, if they have any, the old decision's value.
pub(super) async fn moved(
    tx: &mut sqlx::SqliteConnection,
    before: Option<&Latest>,
    after: &Latest,
    decision: &Decision,
) -> Result<(), StoreError> {
    if let Some(b) = before {
        if let Some(domain) = b.domain() {
            for (score, mut t) in totals(tx, domain).await? {
                let old: Option<f64> = sqlx::query_scalar(
                    "SELECT CAST(json_extract(record, ?) AS REAL) FROM decisions WHERE id = ?",
                )
                .bind(score_path(&score))
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
    if let Some(domain) = after.domain() {
        for (score, mut t) in totals(tx, domain).await? {
            if let Some(card) = decision.scores.get(&score) {
                t.add(card.score as f64, after.decided_at);
                save(tx, domain, &score, &t).await?;
            }
        }
    }
    Ok(())
}

impl Store {
    /// The account's rolled-up score from its running total; the first read of an account
    /// (or one with another half-life) builds the total from the decisions, in a write
    /// transaction so no decision recorded meanwhile is missed.
    pub async fn account_score(
        &self,
        domain: &str,
        rollup: &AccountRollup,
        now: DateTime<Utc>,
    ) -> Result<AccountScore, StoreError> {
        let want = half_life_ms(rollup.half_life);
        let kept = sqlx::query(
            "SELECT half_life_ms, total, as_of, leads FROM account_rollups
             WHERE domain = ? AND score = ?",
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
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
    conn: &mut sqlx::SqliteConnection,
    domain: &str,
    score: &str,
) -> Result<Vec<(f64, DateTime<Utc>)>, StoreError> {
    let rows = sqlx::query(
        // Each lead's latest decision, when it was made with this domain (migration
        // 0008: the domain is on the decision, so intake writes no domain index).
        "SELECT CAST(json_extract(d.record, ?) AS REAL) AS s, d.decided_at
         FROM decisions d
         WHERE d.domain = ? AND d.id = (SELECT MAX(id) FROM decisions WHERE lead_id = d.lead_id)",
    )
    .bind(score_path(score))
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
