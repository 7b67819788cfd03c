//! Where a backfill stands, as the store keeps it (`backfill_runs`, migration 0019).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One pass over a CRM's records, for one set of parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillRun {
    pub connector: String,
    /// Digest of `--since` and `--filter`: another filter is another pass.
    pub params: String,
    /// Counts up each time a finished pass is begun again; part of every effect key.
    pub generation: i64,
    /// The next page to read (`None`: the first).
    pub cursor: Option<String>,
    /// Pages committed so far.
    pub pages: i64,
    pub counts: Counts,
    /// True when this process continues a pass an earlier one did not finish.
    pub resumed: bool,
}

/// What a pass did, summed over its committed pages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub read: u64,
    /// Records whose CRM values the new decision would change.
    pub changed: u64,
    pub unchanged: u64,
    pub written: u64,
    /// Records not processed, by why: `suppressed` (the person asked to be erased),
    /// `filtered` (`--filter` did not match), `invalid` (not a lead leadgate can read).
    pub skipped: BTreeMap<String, u64>,
    /// Writes the CRM refused, by its reason (HubSpot `category`, Salesforce `statusCode`).
    pub failed: BTreeMap<String, u64>,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.read += other.read;
        self.changed += other.changed;
        self.unchanged += other.unchanged;
        self.written += other.written;
        for (k, n) in &other.skipped {
            *self.skipped.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &other.failed {
            *self.failed.entry(k.clone()).or_default() += n;
        }
    }

    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// Counts as stored; a row written by another version reads as zero counts.
    pub fn from_json(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_default()
    }
}
