//! The outbox's records: one row per side effect in a CRM or sequencing tool, written
//! `pending` before the call and closed with the CRM's answer after it. The store persists
//! them (`outbox_*` methods, migrations/*/0004_outbox.sql); this module only names them.

use serde_json::Value;

/// A side effect about to happen.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    /// What the effect is, unique: `job:JOB:decision`, `job:JOB:CONNECTOR:write`,
    /// `lead:LEAD:CONNECTOR:enroll:SEQUENCE`.
    pub key: String,
    pub lead_id: String,
    pub job_id: Option<String>,
    pub connector: String,
    pub op: String,
    /// On the decide row: the decision being delivered (JSON), so a replay delivers the
    /// same decision instead of routing the lead again.
    pub decision: Option<String>,
}

/// Where an effect stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EffectStatus {
    /// Begun, not known to be done: the call may or may not have reached the CRM.
    Pending,
    Ok,
    Failed,
}

impl EffectStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EffectStatus::Pending => "pending",
            EffectStatus::Ok => "ok",
            EffectStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "ok" => EffectStatus::Ok,
            "failed" => EffectStatus::Failed,
            _ => EffectStatus::Pending,
        }
    }
}

/// A stored effect.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub key: String,
    pub status: EffectStatus,
    pub decision: Option<String>,
    pub record_id: Option<String>,
    pub result_id: Option<String>,
    pub answer: Option<Value>,
    pub error: Option<String>,
    /// How many times it was begun (1 on the first try).
    pub attempts: i64,
}

/// How an effect ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub status: EffectStatus,
    pub record_id: Option<String>,
    pub result_id: Option<String>,
    pub answer: Option<Value>,
    pub error: Option<String>,
}
