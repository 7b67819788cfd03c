//! `[delivery]` and `[intake.poll.ID]` as written in leadgate.toml.
//!
//! Field mappings are a list of tables (`[[delivery.field]]`), not a map with dotted keys:
//! the `config` crate splits keys on dots, so `"company.industry" = ...` would not survive it.

use serde::Deserialize;

/// `[delivery]`: where decisions are written back, and what is written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// The CRM connector decisions are written to (`hubspot`, `salesforce`, `pipedrive`);
    /// none delivers nothing. Its credentials are `[providers.ID]`.
    #[serde(default)]
    pub target: Option<String>,
    /// How a lead the CRM does not have yet is written: `upsert` (default; one natural-key
    /// call where the connector has an `upsert` operation) or `create` (create, and update
    /// the existing record when the CRM answers 409 "Existing ID").
    #[serde(default)]
    pub write: WriteMode,
    /// Set the CRM owner when routing assigned one (default true).
    #[serde(default = "default_true")]
    pub assign_owner: bool,
    /// Canonical field → CRM property, with a write policy each.
    #[serde(default)]
    pub field: Vec<FieldMappingConfig>,
    /// Routing's sequence names → the ids the sequencing tool knows them by.
    #[serde(default)]
    pub sequence: Vec<SequenceConfig>,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    #[default]
    Upsert,
    Create,
}

/// `[[delivery.field]] canonical = "company.industry", property = "industry"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMappingConfig {
    /// A decision value: `company.*`, `person.*`, `email.*`, `lead.*`, `score`, `grade`,
    /// `scores.ID`, `grades.ID`, `route.rule`, `route.reason`, `route.pool`, `route.owner`,
    /// `route.sequence`, `decided_at`.
    pub canonical: String,
    /// The CRM property (`industry`, `Industry`, a Pipedrive custom-field key as
    /// `custom_fields.<hash>`: a dot nests the value inside an object).
    pub property: String,
    /// `fill_empty` (default: never overwrite what a person typed), `overwrite`, `never`.
    #[serde(default)]
    pub policy: WritePolicy,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WritePolicy {
    /// Write only when the CRM record has no value (the record is read first).
    #[default]
    FillEmpty,
    /// Always write.
    Overwrite,
    /// Never write (keeps a mapping documented but off).
    Never,
}

/// `[[delivery.sequence]] name = "mid-funnel", connector = "hubspot", id = "987654"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequenceConfig {
    /// The name routing uses (`enroll = { sequence = "mid-funnel" }`).
    pub name: String,
    /// The connector that enrolls (default: the routing rule's `connector`, else the target).
    #[serde(default)]
    pub connector: Option<String>,
    /// The sequence / campaign / cadence id in that tool.
    pub id: String,
    /// HubSpot: the sending user's id (`userId`); Salesloft: the membership's owner.
    #[serde(default)]
    pub user_id: Option<String>,
    /// HubSpot: the sender's connected inbox.
    #[serde(default)]
    pub sender_email: Option<String>,
    /// Outreach: the mailbox that sends.
    #[serde(default)]
    pub mailbox_id: Option<String>,
    /// Salesforce: the CampaignMember status label (default `Sent`).
    #[serde(default)]
    pub status: Option<String>,
}

/// `[intake]`: intake sources beside the HTTP API and webhooks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeConfig {
    /// `[intake.poll.hubspot]`: poll a CRM for new and changed leads (for teams without
    /// webhooks). The connector's credentials are `[providers.ID]`.
    #[serde(default)]
    pub poll: std::collections::BTreeMap<String, PollConfig>,
}

/// One CRM polled for changes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollConfig {
    /// How often to ask (`60s`).
    #[serde(default = "default_interval")]
    pub interval: String,
    /// Where the first poll starts (RFC 3339); default: when polling first starts, so a new
    /// install does not import the CRM's whole history.
    #[serde(default)]
    pub start: Option<String>,
    /// Changes within this long of leadgate's own write to the same record are its echo and
    /// are not queued again (default 2m).
    #[serde(default = "default_echo_window")]
    pub echo_window: String,
}

fn default_interval() -> String {
    "60s".into()
}
fn default_echo_window() -> String {
    "2m".into()
}

/// `[crm]`: how the deliver stage uses the CRM's batch endpoints.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmBatchConfig {
    /// How long a CRM write waits for others to the same target and operation before it is
    /// sent (`"50ms"`): writes decided together go out as one batch call (HubSpot batch
    /// update / upsert, Salesforce sObject collections). Unset: one call per lead.
    #[serde(default)]
    pub batch_wait: Option<String>,
    /// Records per batch call (at most the CRM's own cap: HubSpot 100, Salesforce 200).
    #[serde(default)]
    pub batch_size: Option<usize>,
}
