//! Which model features the current configuration can produce, for `leadgate check`: a
//! model that needs a feature no lead will ever carry scores every lead as if that feature
//! were missing, silently — so it is a configuration error, named.
//!
//! The names follow [`super::features::extract`]: `lead.*` and `email.*` are a fixed set,
//! `company.*`/`person.*` come from the enrichment waterfall (a canonical field, and at
//! least one provider to fill it), and `attributes.*`/`events.*` from the lead's own
//! payload, which any intake can carry.

use crate::lead::{COMPANY_FIELDS, PERSON_FIELDS};

use super::model::Model;

/// The `lead.*` features extraction makes.
const LEAD_FEATURES: &[&str] = &["country", "source", "title_level"];
/// The `email.*` features extraction makes.
const EMAIL_FEATURES: &[&str] = &["is_free", "is_disposable"];

/// One feature the configuration cannot produce, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unproducible {
    pub feature: String,
    pub reason: String,
}

/// The model's features that no lead can carry under a waterfall of `providers`.
pub fn unproducible(model: &Model, providers: &[String]) -> Vec<Unproducible> {
    model
        .features
        .iter()
        .filter_map(|f| {
            why_not(&f.name, providers).map(|reason| Unproducible {
                feature: f.name.clone(),
                reason,
            })
        })
        .collect()
}

fn why_not(feature: &str, providers: &[String]) -> Option<String> {
    let (prefix, field) = feature.split_once('.').unwrap_or((feature, ""));
    let enriched = |known: &[&str], kind: &str| {
        if !known.contains(&field) {
            Some(format!(
                "`{field}` is not a {kind} field providers fill (they fill {})",
                known.join(", ")
            ))
        } else if providers.is_empty() {
            Some("[enrichment] waterfall lists no provider to fill it".into())
        } else {
            None
        }
    };
    match prefix {
        "attributes" | "events" if !field.is_empty() => None,
        "lead" if LEAD_FEATURES.contains(&field) => None,
        "email" if EMAIL_FEATURES.contains(&field) => None,
        "lead" => Some(format!(
            "leads carry {} only",
            LEAD_FEATURES.iter().map(|f| format!("lead.{f}")).collect::<Vec<_>>().join(", ")
        )),
        "email" => Some(format!(
            "leads carry {} only",
            EMAIL_FEATURES.iter().map(|f| format!("email.{f}")).collect::<Vec<_>>().join(", ")
        )),
        "company" => enriched(COMPANY_FIELDS, "company"),
        "person" => enriched(PERSON_FIELDS, "person"),
        _ => Some(
            "not a feature leadgate extracts (lead.*, email.*, company.*, person.*, attributes.*, events.*)"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_cannot_be_produced() {
        let some = vec!["local_file".to_string()];
        assert_eq!(why_not("company.revenue", &some), None);
        assert_eq!(why_not("attributes.budget", &[]), None);
        assert_eq!(why_not("events.page_view", &[]), None);
        assert_eq!(why_not("lead.title_level", &[]), None);
        assert!(why_not("company.revenue", &[])
            .unwrap()
            .contains("waterfall"));
        assert!(why_not("company.mood", &some).unwrap().contains("`mood`"));
        assert!(why_not("lead.budget", &some).is_some());
        assert!(why_not("crm.stage", &some).is_some());
    }
}
