//! The types that flow through the pipeline, in order: [`RawLead`] (as received) →
//! [`Lead`] (normalized) → [`EnrichedLead`] → [`ScoredLead`] → [`Decision`].
//!
//! Nothing here does I/O; each later stage wraps the previous one's output rather than
//! mutating it, so data flows one way.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The canonical input fields. Anything else a source sends lands in `attributes`.
pub const CANONICAL_FIELDS: &[&str] = &[
    "email",
    "first_name",
    "last_name",
    "title",
    "company",
    "domain",
    "website",
    "phone",
    "country",
    "source",
    "external_id",
    "crm",
    "attributes",
    "events",
];

/// The enriched company fields a provider may fill (without the `company.` prefix).
pub const COMPANY_FIELDS: &[&str] = &[
    "name",
    "domain",
    "industry",
    "employees",
    "revenue",
    "country",
    "state",
    "city",
    "tech",
    "funding_total",
    "founded_year",
];

/// The enriched person fields a provider may fill (without the `person.` prefix).
pub const PERSON_FIELDS: &[&str] = &["title", "seniority", "department"];

/// The derived email fields (without the `email.` prefix).
pub const EMAIL_FIELDS: &[&str] = &[
    "address",
    "domain",
    "local_part",
    "is_free",
    "is_disposable",
];

/// The matched CRM account fields (without the `account.` prefix).
/// `score` is the account's engagement rolled up across its leads in the store, `leads` how
/// many of them have a decision there.
pub const ACCOUNT_FIELDS: &[&str] = &[
    "id",
    "owner",
    "owner_name",
    "name",
    "domain",
    "tier",
    "score",
    "leads",
];

/// The lead's recent activity, derived from its events (without the `activity.` prefix):
/// frequency, recency and velocity for rules that look at behaviour as a whole.
pub const ACTIVITY_FIELDS: &[&str] = &[
    "count",
    "count_7d",
    "count_30d",
    "count_90d",
    "days_since_last",
    "days_since_first",
    "velocity",
    "types",
];

/// A lead as received: a JSON object (from the API, a JSONL line, or a CSV row turned into
/// one). Kept as-is so the queue stores exactly what arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawLead(pub Map<String, Value>);

/// One behavioural event on a lead (`page_view`, `form_submit`, `email_click` ...).
/// Serialized by hand (below): serde's `flatten` buffers every value first, and a lead's
/// events were most of the cost of building its rule context.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    pub at: DateTime<Utc>,
    /// Every other key of the event (`path`, `form`, `asset` ...).
    #[serde(flatten)]
    pub props: Map<String, Value>,
}

/// `2026-11-23T10:00:00Z` (or `...:00.123456Z`), as chrono writes it (`AutoSi`: no
/// fraction for whole seconds, else 3, 6 or 9 digits), with `Z` or `+00:00`.
///
/// Years 0–9999 are written digit by digit into a fixed buffer: chrono's `Display` writes one
/// character at a time, and formatting event and enrichment times showed in the profiles of
/// scoring and of an evaluate answer. Leap seconds and other years are left to chrono.
pub fn rfc3339(at: &DateTime<Utc>, z: bool) -> String {
    use chrono::{Datelike, SecondsFormat, Timelike};
    let year = at.year();
    let nanos = at.nanosecond();
    if nanos >= 1_000_000_000 || !(0..=9999).contains(&year) {
        return at.to_rfc3339_opts(SecondsFormat::AutoSi, z);
    }
    let mut b = [0u8; 35];
    b[..19].copy_from_slice(b"0000-00-00T00:00:00");
    let put = |b: &mut [u8; 35], at: usize, width: usize, mut v: u32| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    // One conversion to the naive time: each accessor on the `DateTime` converts again.
    let n = at.naive_utc();
    put(&mut b, 0, 4, year as u32);
    put(&mut b, 5, 2, n.month());
    put(&mut b, 8, 2, n.day());
    put(&mut b, 11, 2, n.hour());
    put(&mut b, 14, 2, n.minute());
    put(&mut b, 17, 2, n.second());
    let (digits, fraction) = match nanos {
        0 => (0, 0),
        n if n % 1_000_000 == 0 => (3, n / 1_000_000),
        n if n % 1_000 == 0 => (6, n / 1_000),
        n => (9, n),
    };
    let mut end = 19;
    if digits > 0 {
        b[19] = b'.';
        put(&mut b, 20, digits, fraction);
        end = 20 + digits;
    }
    let offset: &[u8] = if z { b"Z" } else { b"+00:00" };
    b[end..end + offset.len()].copy_from_slice(offset);
    end += offset.len();
    // Only ASCII digits and separators were written, so this never falls back.
    std::str::from_utf8(&b[..end]).map_or_else(
        |_| at.to_rfc3339_opts(SecondsFormat::AutoSi, z),
        str::to_owned,
    )
}

thread_local! {
    /// The last time [`serialize_time`] wrote, and its text: a decision carries the same
    /// enrichment time on every field (a dozen), so it is formatted once, not per field.
    static LAST_TIME: std::cell::RefCell<Option<(DateTime<Utc>, String)>> =
        const { std::cell::RefCell::new(None) };
}

/// `serialize_with` for a time written as chrono's serde would, through [`rfc3339`].
fn serialize_time<S: serde::Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    LAST_TIME.with_borrow_mut(|last| match last {
        Some((t, text)) if t == at => s.serialize_str(text),
        _ => s.serialize_str(&last.insert((*at, rfc3339(at, true))).1),
    })
}

/// `{"type": .., "at": .., ...props}`, as the derived form with `flatten` wrote it.
impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let own = |k: &String| k != "type" && k != "at";
        let mut map = s.serialize_map(Some(2 + self.props.keys().filter(|k| own(k)).count()))?;
        map.serialize_entry("type", &self.kind)?;
        map.serialize_entry("at", &rfc3339(&self.at, true))?;
        for (k, v) in self.props.iter().filter(|(k, _)| own(k)) {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// What the email address says about the lead, derived during normalization.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmailInfo {
    pub domain: Option<String>,
    pub is_free: bool,
    pub is_disposable: bool,
}

/// A normalized lead: trimmed, lowercased where it matters, with a registrable domain.
/// Holding one means it has an email or a domain (the normalizer refuses anything else).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lead {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    /// The registrable domain (public suffix list), from `domain`, the email, or `website`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crm: Option<String>,
    pub email_info: EmailInfo,
    #[serde(default)]
    pub attributes: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
}

impl Lead {
    /// The key that makes two arrivals the same person: the email, else the external id,
    /// else the domain (a company-level lead).
    pub fn identity_key(&self) -> String {
        if let Some(email) = &self.email {
            return format!("email:{email}");
        }
        if let Some(id) = &self.external_id {
            return format!("external:{id}");
        }
        format!("domain:{}", self.domain.as_deref().unwrap_or_default())
    }

    /// The email masked for logs: `a***@acme.io`. Personal data never reaches the logs.
    pub fn masked_email(&self) -> String {
        self.email
            .as_deref()
            .map(mask_email)
            .unwrap_or_else(|| "-".into())
    }
}

/// `ada@acme.io` → `a***@acme.io`; anything without an `@` → `***`.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// One enriched value and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenanced {
    pub value: Value,
    pub provider: String,
    #[serde(serialize_with = "serialize_time")]
    pub at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

/// What happened when the waterfall asked one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderOutcome {
    Hit,
    NotFound,
    Pending,
    Skipped,
    Error,
}

/// One provider's line in the decision: tried or skipped, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderAttempt {
    pub provider: String,
    pub outcome: ProviderOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub cached: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ms: Option<u64>,
}

/// The enrichment section of a decision: merged fields with provenance, and the trail.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Enrichment {
    /// Keyed by the canonical dotted name (`company.industry`).
    pub fields: BTreeMap<String, Provenanced>,
    pub providers: Vec<ProviderAttempt>,
}

impl Enrichment {
    pub fn value(&self, field: &str) -> Option<&Value> {
        self.fields.get(field).map(|p| &p.value)
    }

    /// True when at least one provider returned data for this lead.
    pub fn hit(&self) -> bool {
        self.providers
            .iter()
            .any(|p| p.outcome == ProviderOutcome::Hit)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrichedLead {
    pub lead: Lead,
    pub enrichment: Enrichment,
}

/// One rule's contribution to a score. The same factor appears in several score cards and
/// in the scored lead, so copying one must not allocate: names are interned for the life of
/// the process ([`intern`]) and the matched values shared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Factor {
    pub rule: Name,
    pub dimension: Name,
    pub points: f64,
    /// The lead values the rule looked at, as they were when it matched.
    #[serde(default, skip_serializing_if = "no_values")]
    pub matched: Matched,
    /// The rule's description from `scoring.toml`, for readers of the explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Name>,
}

/// A score's factors, shared: the primary score card, the scored lead and its decision
/// hold the same list (copying sixty factors per lead cost more than sorting them).
pub type Factors = Arc<[Factor]>;

/// A rule id, dimension or description: interned (borrowed) when scoring made it, owned
/// when read back from the store.
pub type Name = std::borrow::Cow<'static, str>;

/// The process-wide copy of `text`. Rule names and descriptions come from config files and
/// are few; interning them makes every factor's copy a pointer copy (an `Arc` count was
/// 4 atomic operations per factor per score card). Loading the same config again interns
/// nothing new.
pub fn intern(text: &str) -> Name {
    static INTERNED: std::sync::LazyLock<
        std::sync::Mutex<std::collections::HashSet<&'static str>>,
    > = std::sync::LazyLock::new(Default::default);
    let mut set = INTERNED.lock().unwrap_or_else(|p| p.into_inner());
    let text: &'static str = match set.get(text) {
        Some(t) => t,
        None => {
            let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
            set.insert(leaked);
            leaked
        }
    };
    Name::Borrowed(text)
}

/// The values a rule looked at, by field name (sorted, each name once); shared by every
/// factor that quotes them. Serialized as a JSON object. A sorted list rather than a map:
/// a factor quotes one or two values, and a map's first node (half a kilobyte) was most of
/// a scored lead's memory and of the time to build it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Matched(Arc<[(Arc<str>, Value)]>);

impl Matched {
    /// From values in any order; of two with the same name, the first is kept.
    pub fn new(mut values: Vec<(Arc<str>, Value)>) -> Self {
        if !values.is_sorted_by(|a, b| a.0 < b.0) {
            values.sort_by(|a, b| a.0.cmp(&b.0));
            values.dedup_by(|later, first| later.0 == first.0);
        }
        Self(values.into())
    }

    /// From values already sorted by name, each name once.
    pub(crate) fn sorted(values: Arc<[(Arc<str>, Value)]>) -> Self {
        debug_assert!(values.is_sorted_by(|a, b| a.0 < b.0));
        Self(values)
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(name))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// Name and value, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (&**k, v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `matched["field"]`, `null` when the rule did not look at it (as `serde_json::Value`
/// indexes).
impl std::ops::Index<&str> for Matched {
    type Output = Value;
    fn index(&self, name: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.get(name).unwrap_or(&NULL)
    }
}

impl Serialize for Matched {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Matched {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let values = BTreeMap::<String, Value>::deserialize(d)?;
        Ok(Self(
            values.into_iter().map(|(k, v)| (Arc::from(k), v)).collect(),
        ))
    }
}

fn no_values(m: &Matched) -> bool {
    m.is_empty()
}

/// One named score of a lead (`fit`, `engagement`, a product line, their combination):
/// its value, grade and the factors that make it up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreCard {
    /// 0–100: `total` rounded.
    pub score: i64,
    pub grade: String,
    /// The exact sum of the factors' points, before rounding.
    pub total: f64,
    /// Sorted by absolute weight, largest first; their points sum to `total`.
    pub factors: Factors,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredLead {
    pub enriched: EnrichedLead,
    /// 0–100, after caps and clamping.
    pub score: i64,
    pub grade: String,
    /// Sorted by absolute weight, largest first.
    pub factors: Factors,
}

/// The closed set of routing actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteAction {
    Assign,
    Enroll,
    Review,
    Disqualify,
}

/// Why a pool member could not take a lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipKind {
    /// Paused in the config or at run time.
    Paused,
    /// `available = false`: out of office.
    Unavailable,
    /// A date off or a day they do not work.
    OffToday,
    OutsideHours,
    /// `capacity_per_day` reached.
    AtCapacity,
    /// Already had this lead (an SLA reassignment moves past them).
    PreviousOwner,
}

/// A pool member passed over while picking an owner, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedMember {
    pub owner: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<SkipKind>,
    /// The pool they were skipped in (a lead can overflow through several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
}

/// A routing rule evaluated before the matching one that did not match, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleMiss {
    pub rule: String,
    pub why: String,
}

/// An SLA step recorded in the decision history after the first routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaStep {
    Reassigned,
    Escalated,
}

/// Where the lead went and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// The rule that matched, or `fallback`.
    pub rule: String,
    pub action: RouteAction,
    pub pool: Option<String>,
    pub owner: Option<String>,
    pub sequence: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    pub reason: String,
    /// Rules evaluated before the matching one that did not match, in order.
    pub not_matched: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_members: Vec<SkippedMember>,
    /// Why each rule in `not_matched` did not match (false, a missing field, an error).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_matched_why: Vec<RuleMiss>,
    /// The owner's SLA (`4h`) and its deadline, when the assignment carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_due_at: Option<DateTime<Utc>>,
    /// The territories the lead is in, in `routing.toml` order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub territories: Vec<String>,
    /// The matched CRM account (`id`, `name`, `domain`, `owner`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Value>,
    /// For an SLA step: the owner the lead was taken from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_step: Option<SlaStep>,
}

/// One side effect performed (or not) for the lead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub connector: String,
    pub op: String,
    pub status: DeliveryStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The CRM record written or enrolled (`512`, `00Q…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    /// The enrollment the sequencing tool created (HubSpot enrollment, CampaignMember,
    /// sequenceState, cadence membership).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_id: Option<String>,
}

/// How one CRM side effect of a decision ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// The CRM accepted it (or had it already, found by its natural key).
    Ok,
    /// The CRM refused it or could not be reached within the retries; the lead is `failed`.
    Failed,
    /// Not attempted, with the reason in `detail` (e.g. nothing to enroll into).
    Skipped,
}

/// Lifecycle of one arrival of a lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadStatus {
    Queued,
    Processing,
    Done,
    Failed,
    Review,
}

impl LeadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LeadStatus::Queued => "queued",
            LeadStatus::Processing => "processing",
            LeadStatus::Done => "done",
            LeadStatus::Failed => "failed",
            LeadStatus::Review => "review",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => LeadStatus::Queued,
            "processing" => LeadStatus::Processing,
            "done" => LeadStatus::Done,
            "failed" => LeadStatus::Failed,
            "review" => LeadStatus::Review,
            _ => return None,
        })
    }
}

/// The record of what leadgate decided for one arrival of a lead, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The lead's id (stable across arrivals of the same person); empty for dry runs.
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub status: LeadStatus,
    pub lead: Lead,
    pub enrichment: Enrichment,
    pub score: i64,
    pub grade: String,
    pub factors: Factors,
    /// Every named score (the primary one too), by id; `score`/`grade`/`factors` above are
    /// the primary score's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scores: BTreeMap<String, ScoreCard>,
    pub route: Route,
    pub delivery: Vec<Delivery>,
    #[serde(serialize_with = "serialize_time")]
    pub decided_at: DateTime<Utc>,
    /// Set on a decision the re-scoring sweep made at rest (issue 25): why the score moved
    /// and from what. None for a decision made on an arrival.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rescore: Option<Rescored>,
}

impl Decision {
    /// Why the delivery failed (the CRM's own words), if it did: the job's error, recorded
    /// in the statement that closes the job.
    pub fn failure_reason(&self) -> Option<String> {
        self.delivery
            .iter()
            .find(|d| d.status == DeliveryStatus::Failed)
            .map(|d| {
                d.detail
                    .clone()
                    .unwrap_or_else(|| format!("{} {} failed", d.connector, d.op))
            })
    }
}

/// Why a score moved at rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Time alone: event points faded by their half-life.
    Decay,
    /// Events arrived since the last decision.
    Event,
    /// The scoring rules changed (a new digest, or `leadgate rescore --all`).
    RulesChange,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Decay => "decay",
            Cause::Event => "event",
            Cause::RulesChange => "rules_change",
        }
    }

    /// The store's `pending` column: absent means decay.
    pub fn from_pending(pending: Option<&str>) -> Self {
        match pending {
            Some("event") => Cause::Event,
            Some("rules_change") => Cause::RulesChange,
            _ => Cause::Decay,
        }
    }
}

/// What a decision made at rest (issue 25, `crate::rescore`) records beside the new score (`Decision::rescore`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rescored {
    pub cause: Cause,
    pub previous_score: i64,
    pub previous_grade: String,
    /// The digest of the scoring rules this score was computed with.
    pub rules: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matched_values_are_a_json_object_sorted_by_name() {
        let m = Matched::new(vec![
            (Arc::from("person.title"), json!("CRO")),
            (Arc::from("company.employees"), json!(240)),
            (
                Arc::from("person.title"),
                json!("ignored: the first is kept"),
            ),
        ]);
        assert_eq!(m.len(), 2);
        assert_eq!(m["company.employees"], json!(240));
        assert_eq!(m["person.title"], json!("CRO"));
        assert_eq!(m["not.quoted"], Value::Null);
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(text, r#"{"company.employees":240,"person.title":"CRO"}"#);
        let back: Matched = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m);
        let names: Vec<&str> = back.iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["company.employees", "person.title"]);
        assert!(Matched::default().is_empty());
    }

    #[test]
    fn masks_the_local_part_of_an_email() {
        assert_eq!(mask_email("ada.lovelace@acme.io"), "a***@acme.io");
        assert_eq!(mask_email("nonsense"), "***");
    }
}

#[cfg(test)]
mod timestamp_tests {
    use super::rfc3339;
    use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

    #[test]
    fn event_times_are_written_as_chrono_writes_them() {
        let times: Vec<DateTime<Utc>> = vec![
            Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(1969, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(12, 3, 4, 5, 6, 7).unwrap(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
            Utc.timestamp_opt(1_795_000_000, 120_000_000).unwrap(),
            Utc.timestamp_opt(1_795_000_000, 1).unwrap(),
            Utc.timestamp_opt(1_795_000_000, 686_556_679).unwrap(),
            Utc.timestamp_opt(1_795_000_000, 686_556_000).unwrap(),
            Utc.timestamp_opt(1_795_000_000, 5_000).unwrap(),
            Utc.timestamp_opt(1_795_000_000, 999_999_999).unwrap(),
            Utc.timestamp_opt(1_795_000_079, 1_500_000_000).unwrap(),
            Utc.timestamp_opt(-1, 10_000_000).unwrap(),
        ];
        for at in times {
            for z in [true, false] {
                assert_eq!(
                    rfc3339(&at, z),
                    at.to_rfc3339_opts(SecondsFormat::AutoSi, z)
                );
            }
            assert_eq!(
                serde_json::to_value(super::Event {
                    kind: "page_view".into(),
                    at,
                    props: Default::default()
                })
                .unwrap()["at"],
                serde_json::to_value(at).unwrap()
            );
            let found = super::Provenanced {
                value: serde_json::json!(1),
                provider: "clearbit".into(),
                at,
                confidence: None,
            };
            let written = serde_json::to_value(&found).unwrap();
            assert_eq!(written["at"], serde_json::to_value(at).unwrap());
            // Written again, the text comes from the last-time cache: the same.
            assert_eq!(serde_json::to_value(&found).unwrap(), written);
            let read: super::Provenanced = serde_json::from_value(written).unwrap();
            assert_eq!(read, found);
        }
    }
}
