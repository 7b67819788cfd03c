//! Normalize stage: turns a [`RawLead`] into a [`Lead`] — trims, lowercases the email,
//! finds the registrable domain (public suffix list) from `domain`, `website` or the email,
//! and flags free-mail and disposable addresses from the shipped domain lists.
//!
//! It refuses a lead it cannot identify (no usable email and no domain) with an error that
//! names the field; it never calls out and never looks anything up beyond its lists.

use std::collections::HashSet;
use std::path::Path;

use serde_json::{Map, Value};

use crate::lead::{EmailInfo, Event, Lead, RawLead, CANONICAL_FIELDS};

/// Longest value accepted in a canonical text field: longer is a broken form or an attack,
/// never a name or title.
pub const MAX_FIELD_LEN: usize = 1024;

/// Why a lead was refused; `field` is the canonical field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidLead {
    pub field: String,
    pub reason: String,
}

impl InvalidLead {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Could not read a domain list file.
#[derive(Debug, thiserror::Error)]
#[error("cannot read domain list {path}: {source}")]
pub struct DomainListError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

/// Holds the free-mail and disposable domain lists.
#[derive(Debug, Default, Clone)]
pub struct Normalizer {
    free: HashSet<String>,
    disposable: HashSet<String>,
}

impl Normalizer {
    pub fn new(free: HashSet<String>, disposable: HashSet<String>) -> Self {
        Self { free, disposable }
    }

    /// Loads both lists (one domain a line, `#` comments).
    pub fn from_files(free: &Path, disposable: &Path) -> Result<Self, DomainListError> {
        Ok(Self::new(
            read_domain_list(free)?,
            read_domain_list(disposable)?,
        ))
    }

    pub fn is_free(&self, domain: &str) -> bool {
        self.free.contains(domain)
    }

    pub fn is_disposable(&self, domain: &str) -> bool {
        self.is_disposable_at(domain, registrable_domain(domain).as_deref())
    }

    /// [`Self::is_disposable`] with `domain`'s registrable domain already known.
    fn is_disposable_at(&self, domain: &str, registrable: Option<&str>) -> bool {
        self.disposable.contains(domain) || registrable.is_some_and(|d| self.disposable.contains(d))
    }

    pub fn normalize(&self, raw: &RawLead) -> Result<Lead, InvalidLead> {
        let map = &raw.0;
        // The queue's own marker for a CRM fetch job (webhook::fetch_payload): from a caller
        // it would make a worker fetch a record of the caller's choosing.
        if map.contains_key(crate::webhook::FETCH_MARKER) {
            return Err(InvalidLead::new(
                crate::webhook::FETCH_MARKER,
                "is reserved for leadgate's own CRM fetch jobs; rename the attribute",
            ));
        }
        let text = |field: &str| text_field(map, field);

        // The email's registrable domain is looked up once here and reused below (three
        // public-suffix lookups a lead before).
        let (email, email_registrable) = match text("email")? {
            Some(e) => {
                let (email, registrable) = checked_email(&e)?;
                (Some(email), Some(registrable))
            }
            None => (None, None),
        };
        let email_domain = email
            .as_deref()
            .and_then(|e| e.split_once('@'))
            .map(|(_, d)| d.to_string());
        let is_free = email_domain.as_deref().is_some_and(|d| self.is_free(d));
        let is_disposable = email_domain
            .as_deref()
            .is_some_and(|d| self.is_disposable_at(d, email_registrable.as_deref()));

        let website = text("website")?;
        let explicit_domain = match text("domain")? {
            Some(d) => Some(
                domain_from_website(&d)
                    .ok_or_else(|| InvalidLead::new("domain", format!("`{d}` is not a domain")))?,
            ),
            None => None,
        };
        let website_domain = website.as_deref().and_then(domain_from_website);
        // A personal mailbox says nothing about the employer, so its domain never stands in
        // for the company's.
        let email_company_domain = email_registrable.filter(|_| !is_free && !is_disposable);
        let domain = explicit_domain.or(website_domain).or(email_company_domain);

        if email.is_none() && domain.is_none() {
            return Err(match &website {
                Some(w) => InvalidLead::new(
                    "website",
                    format!("`{w}` is not a website or domain, and there is no email"),
                ),
                None => InvalidLead::new("email", "a lead needs an email or a domain"),
            });
        }

        let mut attributes = match map.get("attributes") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(InvalidLead::new("attributes", "must be an object")),
        };
        for (key, value) in map {
            if !CANONICAL_FIELDS.contains(&key.as_str()) && !value.is_null() {
                attributes.insert(key.clone(), value.clone());
            }
        }

        Ok(Lead {
            first_name: text("first_name")?,
            last_name: text("last_name")?,
            title: text("title")?,
            company: text("company")?,
            website,
            phone: text("phone")?,
            country: text("country")?.map(|c| c.to_uppercase()),
            source: text("source")?.map(|s| s.to_lowercase()),
            external_id: text("external_id")?,
            crm: text("crm")?.map(|s| s.to_lowercase()),
            email_info: EmailInfo {
                domain: email_domain,
                is_free,
                is_disposable,
            },
            email,
            domain,
            attributes,
            events: parse_events(map.get("events"))?,
        })
    }
}

fn read_domain_list(path: &Path) -> Result<HashSet<String>, DomainListError> {
    let text = std::fs::read_to_string(path).map_err(|source| DomainListError {
        path: path.display().to_string(),
        source,
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_lowercase)
        .collect())
}

/// A canonical text field: a string (trimmed; empty means absent) or a number (ids and
/// phone numbers often arrive as numbers from forms).
fn text_field(map: &Map<String, Value>, field: &str) -> Result<Option<String>, InvalidLead> {
    let value = match map.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) if field != "email" => n.to_string(),
        Some(other) => {
            return Err(InvalidLead::new(
                field,
                format!("must be a string, got {}", json_type(other)),
            ))
        }
    };
    if value.len() > MAX_FIELD_LEN {
        return Err(InvalidLead::new(
            field,
            format!(
                "is {} bytes long; the limit is {MAX_FIELD_LEN}",
                value.len()
            ),
        ));
    }
    Ok((!value.is_empty()).then_some(value))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Lowercases and checks the shape of an address: one `@`, no spaces, a domain with a
/// public suffix.
pub fn normalize_email(raw: &str) -> Result<String, InvalidLead> {
    checked_email(raw).map(|(email, _)| email)
}

/// [`normalize_email`], with the registrable domain of the email's domain that proved it.
fn checked_email(raw: &str) -> Result<(String, String), InvalidLead> {
    let email = raw.trim().to_lowercase();
    let bad = |why: &str| {
        InvalidLead::new(
            "email",
            format!("`{}` {why}", crate::lead::mask_email(&email)),
        )
    };
    if email.chars().any(char::is_whitespace) {
        return Err(bad("contains a space"));
    }
    // Look-alike addresses (a NUL, a right-to-left mark, a zero-width space) would pass as
    // another person's and slip past dedupe and suppression.
    if let Some(c) = email.chars().find(|c| is_invisible(*c)) {
        return Err(bad(&format!(
            "contains the invisible or control character U+{:04X}",
            u32::from(c)
        )));
    }
    let mut parts = email.split('@');
    let (local, domain) = match (parts.next(), parts.next(), parts.next()) {
        (Some(l), Some(d), None) => (l, d),
        (_, None, _) => return Err(bad("has no @")),
        _ => return Err(bad("has more than one @")),
    };
    if local.is_empty() {
        return Err(bad("has nothing before the @"));
    }
    let registrable = match registrable_domain(domain) {
        Some(r) if domain.contains('.') => r,
        _ => return Err(bad("does not end in a real domain")),
    };
    Ok((email, registrable))
}

/// Control characters, bidi controls and zero-width or otherwise invisible format characters:
/// none belongs in an address, and each makes two addresses that look the same differ.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
            | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}')
}

/// The registrable domain (`shop.acme.co.uk` → `acme.co.uk`), by the public suffix list;
/// `None` for a bare suffix or something that is not a host name.
pub fn registrable_domain(host: &str) -> Option<String> {
    let host = host.trim().trim_end_matches('.');
    if host.is_empty()
        || !host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
    {
        return None;
    }
    // Only ASCII is left, and most hosts arrive lowercase already: copied only when not.
    let host: std::borrow::Cow<str> = match host.bytes().any(|c| c.is_ascii_uppercase()) {
        true => host.to_ascii_lowercase().into(),
        false => host.into(),
    };
    // One lookup in the list for both answers (it was two, visible in an evaluate's profile).
    let domain = psl::domain(host.as_bytes())?;
    // Unknown TLDs match psl's wildcard rule; a company domain must end in a listed suffix.
    if !domain.suffix().is_known() {
        return None;
    }
    std::str::from_utf8(domain.trim().as_bytes())
        .ok()
        .map(str::to_string)
}

/// The registrable domain of a website in any common form: `https://www.acme.io/pricing`,
/// `www.acme.io`, `acme.io:443`, `shop.acme.co.uk`.
pub fn domain_from_website(website: &str) -> Option<String> {
    let w = website.trim();
    let w = w.split_once("://").map_or(w, |(_, rest)| rest);
    let host = w.split(['/', '?', '#']).next()?;
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = host.split(':').next()?;
    registrable_domain(host)
}

fn parse_events(value: Option<&Value>) -> Result<Vec<Event>, InvalidLead> {
    let list = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(InvalidLead::new("events", "must be a list")),
    };
    list.iter()
        .enumerate()
        .map(|(i, e)| {
            serde_json::from_value::<Event>(e.clone()).map_err(|err| {
                InvalidLead::new(
                    format!("events[{i}]"),
                    format!("needs `type` and an RFC 3339 `at`: {err}"),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn normalizer() -> Normalizer {
        Normalizer::new(
            ["gmail.com".to_string()].into(),
            ["mailinator.com".to_string()].into(),
        )
    }

    fn raw(v: Value) -> RawLead {
        RawLead(v.as_object().unwrap().clone())
    }

    #[test]
    fn control_bidi_and_zero_width_characters_in_an_email_are_refused_naming_the_field() {
        let n = normalizer();
        for email in [
            "ann\u{0}@acme.io",
            "ann\u{202E}@acme.io",
            "an\u{200B}n@acme.io",
            "ann@ac\u{FEFF}me.io",
            "ann\u{2066}@acme.io",
        ] {
            let err = n.normalize(&raw(json!({ "email": email }))).unwrap_err();
            assert_eq!(err.field, "email", "{email:?}");
            assert!(err.reason.contains("invisible or control"), "{err}");
        }
        assert!(n.normalize(&raw(json!({"email": "ann@acme.io"}))).is_ok());
    }

    #[test]
    fn the_fetch_job_marker_is_refused_from_outside() {
        let err = normalizer()
            .normalize(&raw(json!({
                "email": "ann@acme.io",
                "_fetch": {"connector": "hubspot", "object": "contact", "id": "1"}
            })))
            .unwrap_err();
        assert_eq!(err.field, "_fetch");
    }

    #[test]
    fn trims_and_lowercases_the_email_and_takes_its_domain() {
        let lead = normalizer()
            .normalize(&raw(json!({"email": "  Ada.Lovelace@Mail.ACME.co.uk "})))
            .unwrap();
        assert_eq!(lead.email.as_deref(), Some("ada.lovelace@mail.acme.co.uk"));
        assert_eq!(lead.domain.as_deref(), Some("acme.co.uk"));
        assert_eq!(lead.email_info.domain.as_deref(), Some("mail.acme.co.uk"));
    }

    #[test]
    fn a_free_mail_lead_takes_its_domain_from_the_website() {
        let n = normalizer();
        let lead = n
            .normalize(&raw(
                json!({"email": "bob@gmail.com", "website": "https://www.initech.com/about"}),
            ))
            .unwrap();
        assert!(lead.email_info.is_free);
        assert_eq!(lead.domain.as_deref(), Some("initech.com"));
        let lead = n
            .normalize(&raw(json!({"email": "bob@gmail.com"})))
            .unwrap();
        assert_eq!(lead.domain, None);
    }

    #[test]
    fn flags_disposable_addresses() {
        let lead = normalizer()
            .normalize(&raw(json!({"email": "x@mailinator.com"})))
            .unwrap();
        assert!(lead.email_info.is_disposable);
        assert!(!lead.email_info.is_free);
    }

    #[test]
    fn refuses_bad_emails_naming_the_field() {
        let n = normalizer();
        for bad in [
            "john.doe.acme.io",
            "a@b@acme.io",
            "jane doe@acme.io",
            "bob@localhost",
            "@acme.io",
        ] {
            let err = n.normalize(&raw(json!({ "email": bad }))).unwrap_err();
            assert_eq!(err.field, "email", "{bad}");
        }
        let err = n.normalize(&raw(json!({ "email": 42 }))).unwrap_err();
        assert!(err.reason.contains("must be a string"));
    }

    #[test]
    fn refuses_a_lead_with_neither_email_nor_domain() {
        let n = normalizer();
        let err = n.normalize(&raw(json!({"first_name": "Ann"}))).unwrap_err();
        assert_eq!(err.field, "email");
        let err = n
            .normalize(&raw(json!({"website": "not a website"})))
            .unwrap_err();
        assert_eq!(err.field, "website");
        let ok = n.normalize(&raw(json!({"website": "acme.io"}))).unwrap();
        assert_eq!(ok.domain.as_deref(), Some("acme.io"));
    }

    #[test]
    fn unknown_fields_become_attributes() {
        let lead = normalizer()
            .normalize(&raw(
                json!({"email": "a@acme.io", "budget": "50k+", "attributes": {"x": 1}}),
            ))
            .unwrap();
        assert_eq!(lead.attributes["budget"], json!("50k+"));
        assert_eq!(lead.attributes["x"], json!(1));
    }

    #[test]
    fn events_need_a_type_and_a_time() {
        let n = normalizer();
        let ok = n
            .normalize(&raw(json!({"email": "a@acme.io", "events": [{"type": "page_view", "at": "2026-11-01T00:00:00Z", "path": "/pricing"}]})))
            .unwrap();
        assert_eq!(ok.events[0].props["path"], json!("/pricing"));
        let err = n
            .normalize(&raw(
                json!({"email": "a@acme.io", "events": [{"type": "page_view"}]}),
            ))
            .unwrap_err();
        assert_eq!(err.field, "events[0]");
    }

    #[test]
    fn website_forms_reduce_to_one_domain() {
        for w in [
            "https://www.acme.io/pricing",
            "www.acme.io",
            "acme.io:443",
            "http://shop.acme.io?x=1",
        ] {
            assert_eq!(domain_from_website(w).as_deref(), Some("acme.io"), "{w}");
        }
        assert_eq!(domain_from_website("not a website"), None);
    }

    #[test]
    fn registrable_domains_come_from_the_public_suffix_list() {
        for (host, want) in [
            ("Shop.ACME.co.uk", Some("acme.co.uk")),
            ("acme.io.", Some("acme.io")),
            (" acme.io ", Some("acme.io")),
            ("co.uk", None),
            ("acme.notatld", None),
            ("ac me.io", None),
            ("bücher.de", None),
            ("", None),
        ] {
            assert_eq!(registrable_domain(host).as_deref(), want, "{host:?}");
        }
    }
}
