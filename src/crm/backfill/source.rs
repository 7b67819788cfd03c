//! Reading a CRM's existing records page by page, through the manifest's `backfill_OBJECT`
//! operation (and `backfill_OBJECT_next` for the vendors whose next page is a cursor):
//! HubSpot search keyed on `hs_object_id`, Salesforce SOQL then queryMore, Pipedrive's
//! `next_cursor`.

use serde_json::Value;

use super::super::body::TypedVars;
use super::super::client::CrmConnector;
use crate::connector::ConnectorError;

/// The CRMs a backfill knows how to page and batch-write: a closed set, because each
/// vendor's batch answer is read by code here, not by the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    HubSpot,
    Salesforce,
    Pipedrive,
}

impl Vendor {
    pub fn of(connector: &str) -> Option<Self> {
        match connector {
            "hubspot" => Some(Vendor::HubSpot),
            "salesforce" => Some(Vendor::Salesforce),
            "pipedrive" => Some(Vendor::Pipedrive),
            _ => None,
        }
    }

    /// The object a backfill reads (`backfill_contact`, `fetch_contact`).
    pub fn object(self) -> &'static str {
        match self {
            Vendor::HubSpot => "contact",
            Vendor::Salesforce => "lead",
            Vendor::Pipedrive => "person",
        }
    }

    /// Records per write call: HubSpot batch update 100, Salesforce sObject collections
    /// 200, Pipedrive one (it has no batch update).
    pub fn batch_size(self) -> usize {
        match self {
            Vendor::HubSpot => 100,
            Vendor::Salesforce => 200,
            Vendor::Pipedrive => 1,
        }
    }

    /// Properties a listing must ask for besides the mapped ones and the owner, so the
    /// record maps to a lead (`fetch_contact`'s fields); Salesforce lists them in its SOQL
    /// and Pipedrive sends every field.
    pub fn lead_properties(self) -> &'static [&'static str] {
        match self {
            Vendor::HubSpot => &[
                "email",
                "firstname",
                "lastname",
                "company",
                "jobtitle",
                "phone",
                "website",
                "country",
                "lastmodifieddate",
            ],
            Vendor::Salesforce | Vendor::Pipedrive => &[],
        }
    }

    /// What a listed record holds now, as the write policies read it.
    pub fn properties(self, record: &Value) -> Value {
        match self {
            Vendor::HubSpot => record.get("properties").cloned().unwrap_or(Value::Null),
            Vendor::Salesforce | Vendor::Pipedrive => record.clone(),
        }
    }
}

/// One page as read.
#[derive(Debug, Clone)]
pub struct Page {
    pub records: Vec<Value>,
    /// The next page's cursor; `None` on the last page.
    pub next: Option<String>,
    /// How many records match in all, when the CRM says (HubSpot `total`, SOQL `totalSize`).
    pub total: Option<u64>,
}

/// Reads the page at `cursor` (`None`: the first).
pub async fn read_page(
    c: &CrmConnector,
    vendor: Vendor,
    vars: &TypedVars,
    cursor: Option<&str>,
) -> Result<Page, ConnectorError> {
    let first = format!("backfill_{}", vendor.object());
    let next_op = format!("{first}_next");
    let mut vars = vars.clone();
    let op = match (vendor, cursor) {
        // A keyset: the cursor is the last id read.
        (Vendor::HubSpot, c) => {
            vars.insert("after_id", Value::from(c.unwrap_or("0").to_string()));
            first
        }
        (_, Some(cursor)) => {
            vars.insert("cursor", Value::from(cursor.to_string()));
            next_op
        }
        (_, None) => first,
    };
    let reply = c.call(&op, &vars).await?;
    let records = match reply.fields.get("records") {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    let more = reply.text("next");
    let next = match vendor {
        Vendor::HubSpot => {
            more.and_then(|_| records.last().and_then(|r| r.get("id")).and_then(id_text))
        }
        // `nextRecordsUrl` is `/services/data/v62.0/query/01gD0000002HU6KIAW-2000`.
        Vendor::Salesforce => more.and_then(|url| url.rsplit('/').next().map(str::to_string)),
        Vendor::Pipedrive => more,
    }
    .filter(|n| !n.is_empty());
    let total = reply.fields.get("total").and_then(Value::as_u64);
    Ok(Page {
        records,
        next,
        total,
    })
}

/// A record id as text (HubSpot sends strings, Pipedrive numbers).
pub fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether `name` may stand in a SOQL field list (letters, digits, `_`, a `__c` suffix, a
/// dotted relationship): config names it, but it lands inside a query.
pub fn soql_field(name: &str) -> bool {
    !name.is_empty()
        && name
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}
