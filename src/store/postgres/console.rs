//! PostgreSQL twin of `sqlite/console.rs`: same methods and meaning.
//!
//! The console's queries (issue 24): the leads list, the review queue, overrides,
//! stats. Types and meaning: `store/console.rs`.

use sqlx::Row;

use super::{now_ms, PgStore as Store};
use crate::store::console::{
    ConsoleRefusal, CrmWrite, LeadFilter, LeadRow, NewOverride, OverrideLabel, OverrideRecord,
    Resolution, ReviewItem, Stats, CRM_WRITE_COLUMNS, SCORE_BAND,
};
use crate::store::StoreError;

/// A bound value of a query assembled from optional filters.
enum Arg {
    Text(String),
    Int(i64),
}

const OVERRIDE_COLUMNS: &str =
    "id, lead_id, grade, route, reason, by_whom, replaced, created_at, cleared_at, cleared_by";

fn override_record(r: &sqlx::postgres::PgRow) -> OverrideRecord {
    OverrideRecord {
        id: r.get("id"),
        lead_id: r.get("lead_id"),
        grade: r.get("grade"),
        route: r.get("route"),
        reason: r.get("reason"),
        by: r.get("by_whom"),
        replaced: serde_json::from_str(&r.get::<String, _>("replaced"))
            .unwrap_or(serde_json::Value::Null),
        created_at: r.get("created_at"),
        cleared_at: r.get("cleared_at"),
        cleared_by: r.get("cleared_by"),
    }
}

/// The open review items: the latest arrival of a lead, routed to review, not resolved.
const OPEN_REVIEW: &str = "SELECT j.id AS job_id, j.lead_id, l.email, d.score, d.grade, d.record, d.decided_at,
        r.claimed_by, r.claimed_at
   FROM jobs j
   JOIN decisions d ON d.job_id = j.id
   LEFT JOIN leads l ON l.id = j.lead_id
   LEFT JOIN review_items r ON r.job_id = j.id
  WHERE j.status = 'review' AND r.resolved_at IS NULL
    AND NOT EXISTS (SELECT 1 FROM jobs n WHERE n.lead_id = j.lead_id AND n.created_at > j.created_at)";

fn review_item(r: &sqlx::postgres::PgRow) -> ReviewItem {
    ReviewItem {
        job_id: r.get("job_id"),
        lead_id: r.get("lead_id"),
        email: r.get("email"),
        score: r.get("score"),
        grade: r.get("grade"),
        record: r.get("record"),
        decided_at: r.get("decided_at"),
        claimed_by: r.get("claimed_by"),
        claimed_at: r.get("claimed_at"),
    }
}

impl Store {
    /// A page of leads (each lead's latest decision), newest first.
    pub async fn list_leads(&self, f: &LeadFilter) -> Result<Vec<LeadRow>, StoreError> {
        let mut sql = String::from(
            "SELECT d.id, d.lead_id, l.email, d.score, d.grade, d.route_rule, d.route_owner,
                    d.lead_status, d.decided_at,
                    (SELECT o.grade FROM overrides o WHERE o.lead_id = d.lead_id AND o.cleared_at IS NULL ORDER BY o.id DESC LIMIT 1) AS override_grade,
                    (SELECT o.route FROM overrides o WHERE o.lead_id = d.lead_id AND o.cleared_at IS NULL ORDER BY o.id DESC LIMIT 1) AS override_route
               FROM decisions d LEFT JOIN leads l ON l.id = d.lead_id
              WHERE NOT EXISTS (SELECT 1 FROM decisions n WHERE n.lead_id = d.lead_id AND n.id > d.id)",
        );
        let mut args = Vec::new();
        // PostgreSQL numbers its placeholders: each filter takes the next.
        let next = |args: &mut Vec<Arg>, a: Arg| {
            args.push(a);
            format!("${}", args.len())
        };
        for (column, v) in [
            ("d.grade", &f.grade),
            ("d.lead_status", &f.status),
            ("d.route_rule", &f.route),
            ("d.route_owner", &f.owner),
        ] {
            if let Some(v) = v {
                let p = next(&mut args, Arg::Text(v.clone()));
                sql.push_str(&format!(" AND {column} = {p}"));
            }
        }
        if let Some(q) = &f.q {
            let p = next(&mut args, Arg::Text(format!("%{}%", like_escape(q))));
            sql.push_str(&format!(" AND l.email LIKE {p} ESCAPE '\\'"));
        }
        if let Some(since) = f.since {
            let p = next(&mut args, Arg::Int(since));
            sql.push_str(&format!(" AND d.decided_at >= {p}"));
        }
        if let Some((at, id)) = f.before {
            let a = next(&mut args, Arg::Int(at));
            let i = next(&mut args, Arg::Int(id));
            sql.push_str(&format!(
                " AND (d.decided_at < {a} OR (d.decided_at = {a} AND d.id < {i}))"
            ));
        }
        let p = next(&mut args, Arg::Int(i64::from(f.limit)));
        // Decision time first: workers insert in the order they finish, not the order they decided.
        sql.push_str(&format!(" ORDER BY d.decided_at DESC, d.id DESC LIMIT {p}"));
        let mut query = sqlx::query(&sql);
        for a in args {
            query = match a {
                Arg::Text(t) => query.bind(t),
                Arg::Int(i) => query.bind(i),
            };
        }
        Ok(query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| LeadRow {
                decision_id: r.get("id"),
                id: r.get("lead_id"),
                email: r.get("email"),
                score: r.get("score"),
                grade: r.get("grade"),
                route: r.get("route_rule"),
                owner: r.get("route_owner"),
                status: r
                    .get::<Option<String>, _>("lead_status")
                    .unwrap_or_default(),
                decided_at: r.get("decided_at"),
                override_grade: r.get("override_grade"),
                override_route: r.get("override_route"),
            })
            .collect())
    }

    /// The review queue, oldest first.
    pub async fn review_queue(&self, limit: u32) -> Result<Vec<ReviewItem>, StoreError> {
        Ok(
            sqlx::query(&format!("{OPEN_REVIEW} ORDER BY j.created_at LIMIT $1"))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(review_item)
                .collect(),
        )
    }

    /// The lead's open review item, if it is waiting in the queue.
    pub async fn open_review(&self, lead_id: &str) -> Result<Option<ReviewItem>, StoreError> {
        Ok(sqlx::query(&format!("{OPEN_REVIEW} AND j.lead_id = $1"))
            .bind(lead_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(review_item))
    }

    /// Claims the lead's open review item for `by` (again by the same person is fine).
    pub async fn claim_review(
        &self,
        lead_id: &str,
        by: &str,
    ) -> Result<Result<ReviewItem, ConsoleRefusal>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(item) = sqlx::query(&format!("{OPEN_REVIEW} AND j.lead_id = $1"))
            .bind(lead_id)
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(review_item)
        else {
            return Ok(Err(refusal_for(&mut tx, lead_id).await?));
        };
        let claimed = sqlx::query(
            "INSERT INTO review_items (job_id, lead_id, claimed_by, claimed_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT(job_id) DO UPDATE SET claimed_by = excluded.claimed_by, claimed_at = excluded.claimed_at
             WHERE review_items.resolved_at IS NULL
               AND (review_items.claimed_by IS NULL OR review_items.claimed_by = excluded.claimed_by)",
        )
        .bind(&item.job_id)
        .bind(lead_id)
        .bind(by)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            let refusal = held_by(&mut tx, &item.job_id).await?;
            return Ok(Err(refusal));
        }
        tx.commit().await?;
        Ok(Ok(ReviewItem {
            claimed_by: Some(by.to_string()),
            ..item
        }))
    }

    /// Records the resolution of the review item `job_id` and queues the arrival that
    /// delivers it: a new job whose pending `decide` effect holds the resolved decision, so
    /// the worker delivers it as any routed lead, exactly once (the outbox fences it).
    pub async fn resolve_review(
        &self,
        job_id: &str,
        lead_id: &str,
        res: &Resolution,
    ) -> Result<Result<(), ConsoleRefusal>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let open: Option<String> = sqlx::query_scalar(&format!(
            "SELECT job_id FROM ({OPEN_REVIEW} AND j.id = $1) AS open_item"
        ))
        .bind(job_id)
        .fetch_optional(&mut *tx)
        .await?;
        if open.is_none() {
            let refusal = match held_by(&mut tx, job_id).await? {
                r @ ConsoleRefusal::ResolvedBy(_) => r,
                _ => ConsoleRefusal::NotInReview(lead_id.to_string()),
            };
            return Ok(Err(refusal));
        }
        let now = now_ms();
        let resolved = sqlx::query(
            "INSERT INTO review_items (job_id, lead_id, resolved_by, resolved_at, action, reason, resolution_job)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT(job_id) DO UPDATE SET resolved_by = $3, resolved_at = $4, action = $5,
               reason = $6, resolution_job = $7
             WHERE review_items.resolved_at IS NULL
               AND (review_items.claimed_by IS NULL OR review_items.claimed_by = $3)",
        )
        .bind(job_id)
        .bind(lead_id)
        .bind(&res.by)
        .bind(now)
        .bind(&res.action)
        .bind(&res.reason)
        .bind(&res.new_job_id)
        .execute(&mut *tx)
        .await?;
        if resolved.rows_affected() == 0 {
            let refusal = held_by(&mut tx, job_id).await?;
            return Ok(Err(refusal));
        }
        // The review arrival's payload: the new job is the same lead arriving again, already
        // decided; `created_at` after the review job's takes it out of the queue.
        sqlx::query(
            "INSERT INTO jobs (id, lead_id, payload, status, created_at, updated_at)
             SELECT $1, lead_id, payload, 'queued', GREATEST($2, created_at + 1), $2 FROM jobs WHERE id = $3",
        )
        .bind(&res.new_job_id)
        .bind(now)
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO outbox (effect_key, lead_id, job_id, connector, op, status, decision, attempts, created_at, updated_at)
             VALUES ($1, $2, $3, '-', 'decide', 'pending', $4, 0, $5, $6)",
        )
        .bind(format!("job:{}:decision", res.new_job_id))
        .bind(lead_id)
        .bind(&res.new_job_id)
        .bind(&res.decision)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Records a human override of the lead's latest decision; an earlier active override
    /// is cleared by it (one override is in force at a time).
    pub async fn add_override(
        &self,
        lead_id: &str,
        o: &NewOverride,
    ) -> Result<Result<OverrideRecord, ConsoleRefusal>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let latest = sqlx::query(
            "SELECT id, grade, route_rule FROM decisions WHERE lead_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(lead_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(latest) = latest else {
            let known: Option<i64> = sqlx::query_scalar(
                "SELECT 1::BIGINT FROM jobs WHERE lead_id = $1 UNION ALL SELECT 1::BIGINT FROM leads WHERE id = $2 LIMIT 1",
            )
            .bind(lead_id)
            .bind(lead_id)
            .fetch_optional(&mut *tx)
            .await?;
            return Ok(Err(match known {
                Some(_) => ConsoleRefusal::NotDecided(lead_id.to_string()),
                None => ConsoleRefusal::NoLead(lead_id.to_string()),
            }));
        };
        let now = now_ms();
        let replaced = serde_json::json!({
            "decision_id": latest.get::<i64, _>("id"),
            "grade": latest.get::<String, _>("grade"),
            "route": latest.get::<String, _>("route_rule"),
        });
        sqlx::query(
            "UPDATE overrides SET cleared_at = $1, cleared_by = $2 WHERE lead_id = $3 AND cleared_at IS NULL",
        )
        .bind(now)
        .bind(format!("{} (a newer override)", o.by))
        .bind(lead_id)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!(
            "INSERT INTO overrides (lead_id, grade, route, reason, by_whom, replaced, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {OVERRIDE_COLUMNS}"
        ))
        .bind(lead_id)
        .bind(&o.grade)
        .bind(&o.route)
        .bind(&o.reason)
        .bind(&o.by)
        .bind(replaced.to_string())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(override_record(&row)))
    }

    /// Clears the lead's active override: later decisions are automatic again.
    pub async fn clear_override(
        &self,
        lead_id: &str,
        by: &str,
    ) -> Result<Result<OverrideRecord, ConsoleRefusal>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE overrides SET cleared_at = $1, cleared_by = $2 WHERE lead_id = $3 AND cleared_at IS NULL
             RETURNING {OVERRIDE_COLUMNS}"
        ))
        .bind(now_ms())
        .bind(by)
        .bind(lead_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .as_ref()
            .map(override_record)
            .ok_or_else(|| ConsoleRefusal::NoOverride(lead_id.to_string())))
    }

    /// The id of the lead with this email (for `leadgate explain`, which shows its override).
    pub async fn lead_id_by_email(&self, email: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM leads WHERE identity_key = 'email:' || $1 UNION ALL SELECT id FROM leads WHERE email = $1 LIMIT 1",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The lead's CRM side effects from the outbox, oldest first (not the `decide` rows,
    /// which carry the decision being delivered).
    pub async fn crm_writes(&self, lead_id: &str) -> Result<Vec<CrmWrite>, StoreError> {
        Ok(sqlx::query(&format!(
            "SELECT {CRM_WRITE_COLUMNS} FROM outbox WHERE lead_id = $1 AND op <> 'decide' ORDER BY created_at, effect_key"
        ))
        .bind(lead_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| CrmWrite {
            connector: r.get("connector"),
            op: r.get("op"),
            status: r.get("status"),
            record_id: r.get("record_id"),
            result_id: r.get("result_id"),
            error: r.get("error"),
            attempts: r.get("attempts"),
            created_at: r.get("created_at"),
            updated_at: r.get("updated_at"),
        })
        .collect())
    }

    /// Every override of the lead, oldest first.
    pub async fn overrides(&self, lead_id: &str) -> Result<Vec<OverrideRecord>, StoreError> {
        Ok(sqlx::query(&format!(
            "SELECT {OVERRIDE_COLUMNS} FROM overrides WHERE lead_id = $1 ORDER BY id"
        ))
        .bind(lead_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(override_record)
        .collect())
    }

    /// Overrides as training labels: every override still in force, with the decision it
    /// overrode (the features the person judged).
    pub async fn override_labels(&self) -> Result<Vec<OverrideLabel>, StoreError> {
        Ok(sqlx::query(
            "SELECT o.lead_id, o.grade, o.route, o.by_whom, o.created_at, d.record
               FROM overrides o
               LEFT JOIN decisions d ON d.id = ((o.replaced::jsonb) ->> 'decision_id')::BIGINT
              WHERE o.cleared_at IS NULL ORDER BY o.id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| OverrideLabel {
            lead_id: r.get("lead_id"),
            grade: r.get("grade"),
            route: r.get("route"),
            by: r.get("by_whom"),
            at: r.get("created_at"),
            decision: r
                .get::<Option<String>, _>("record")
                .and_then(|s| serde_json::from_str(&s).ok()),
        })
        .collect())
    }

    /// Counts per day since `since` (unix ms) for the charts.
    pub async fn stats(&self, since: i64) -> Result<Stats, StoreError> {
        const DAY: &str =
            "to_char(to_timestamp(d.decided_at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')";
        let pairs = |column: &str| {
            format!(
                "SELECT {DAY} AS bucket, {column} AS k, COUNT(*) AS n FROM decisions d
                  WHERE d.decided_at >= $1 GROUP BY 1, 2 ORDER BY 1, 2"
            )
        };
        let by = |rows: Vec<sqlx::postgres::PgRow>| {
            rows.iter()
                .map(|r| (r.get("bucket"), r.get("k"), r.get("n")))
                .collect::<Vec<(String, String, i64)>>()
        };
        let by_grade = by(sqlx::query(&pairs("d.grade"))
            .bind(since)
            .fetch_all(&self.pool)
            .await?);
        let by_route = by(sqlx::query(&pairs("d.route_rule"))
            .bind(since)
            .fetch_all(&self.pool)
            .await?);
        let by_provider = sqlx::query(&format!(
            "SELECT {DAY} AS bucket, p.value ->> 'provider' AS provider,
                    p.value ->> 'outcome' AS outcome, COUNT(*) AS n
               FROM decisions d, jsonb_array_elements(COALESCE((d.record::jsonb) -> 'enrichment' -> 'providers', '[]'::jsonb)) p
              WHERE d.decided_at >= $1 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ))
        .bind(since)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            (
                r.get("bucket"),
                r.get::<Option<String>, _>("provider").unwrap_or_default(),
                r.get::<Option<String>, _>("outcome").unwrap_or_default(),
                r.get("n"),
            )
        })
        .collect();
        // Each lead's latest outcome against its latest decision's score.
        let conversion = sqlx::query(
            "SELECT (d.score / $1) * $1 AS band, COUNT(*) AS leads, SUM(CASE WHEN o.converted THEN 1 ELSE 0 END)::BIGINT AS converted
               FROM outcomes o
               JOIN decisions d ON d.lead_id = o.lead_id
              WHERE NOT EXISTS (SELECT 1 FROM outcomes n WHERE n.lead_id = o.lead_id AND n.id > o.id)
                AND NOT EXISTS (SELECT 1 FROM decisions n WHERE n.lead_id = d.lead_id AND n.id > d.id)
                AND d.decided_at >= $2
              GROUP BY 1 ORDER BY 1",
        )
        .bind(SCORE_BAND)
        .bind(since)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| (r.get("band"), r.get("leads"), r.get("converted")))
        .collect();
        Ok(Stats {
            by_grade,
            by_route,
            by_provider,
            conversion,
        })
    }
}

/// Who holds a review item that refused a claim or a resolution.
async fn held_by(tx: &mut sqlx::PgConnection, job_id: &str) -> Result<ConsoleRefusal, StoreError> {
    let row = sqlx::query("SELECT claimed_by, resolved_by FROM review_items WHERE job_id = $1")
        .bind(job_id)
        .fetch_optional(&mut *tx)
        .await?;
    let (claimed, resolved): (Option<String>, Option<String>) = match &row {
        Some(r) => (r.get("claimed_by"), r.get("resolved_by")),
        None => (None, None),
    };
    Ok(match (resolved, claimed) {
        (Some(by), _) => ConsoleRefusal::ResolvedBy(by),
        (None, Some(by)) => ConsoleRefusal::ClaimedBy(by),
        (None, None) => ConsoleRefusal::NotInReview(job_id.to_string()),
    })
}

/// Why a lead has no open review item: resolved already, or never in review.
async fn refusal_for(
    tx: &mut sqlx::PgConnection,
    lead_id: &str,
) -> Result<ConsoleRefusal, StoreError> {
    let resolved: Option<String> = sqlx::query_scalar(
        "SELECT resolved_by FROM review_items WHERE lead_id = $1 AND resolved_at IS NOT NULL ORDER BY resolved_at DESC LIMIT 1",
    )
    .bind(lead_id)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(match resolved {
        Some(by) => ConsoleRefusal::ResolvedBy(by),
        None => ConsoleRefusal::NotInReview(lead_id.to_string()),
    })
}

/// `%`, `_` and `\` in a search are literal.
fn like_escape(q: &str) -> String {
    q.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
