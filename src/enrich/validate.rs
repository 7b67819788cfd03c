//! Validation of a provider's answer before it is merged. An answer that fails — the
//! returned domain is not the lead's, the confidence is under the minimum, a required field
//! is missing — counts as a miss, and the waterfall goes on to the next provider (as Clay
//! users expect: a wrong company is worse than none).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::normalize::domain_from_website;

/// The checks for one provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Validation {
    /// The answer's `company.domain` must be the lead's domain (when both are known).
    pub match_domain: bool,
    /// Lowest confidence accepted (0–1); an answer without a confidence passes.
    pub min_confidence: Option<f64>,
    /// Fields the answer must hold to count.
    pub required_fields: Vec<String>,
}

impl Default for Validation {
    fn default() -> Self {
        Self::STANDARD
    }
}

impl Validation {
    /// The checks of a provider whose config names none.
    pub const STANDARD: Validation = Validation {
        match_domain: true,
        min_confidence: None,
        required_fields: Vec::new(),
    };

    /// `Err(why)` when the answer must be treated as a miss.
    pub fn check(
        &self,
        lead_domain: Option<&str>,
        fields: &BTreeMap<String, Value>,
        confidence: Option<f64>,
    ) -> Result<(), String> {
        if self.match_domain {
            let returned = fields
                .get("company.domain")
                .and_then(Value::as_str)
                .and_then(domain_from_website);
            if let (Some(lead), Some(got)) = (lead_domain, returned) {
                if !lead.eq_ignore_ascii_case(&got) {
                    return Err(format!(
                        "returned domain {got} does not match the lead's {lead}"
                    ));
                }
            }
        }
        if let (Some(min), Some(c)) = (self.min_confidence, confidence) {
            if c < min {
                return Err(format!("confidence {c:.2} is below the minimum {min:.2}"));
            }
        }
        let missing: Vec<&str> = self
            .required_fields
            .iter()
            .filter(|f| fields.get(f.as_str()).is_none_or(Value::is_null))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(format!("required field(s) missing: {}", missing.join(", ")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn a_different_domain_is_rejected() {
        let v = Validation::default();
        let f = fields(&[("company.domain", json!("www.other.com"))]);
        assert!(v
            .check(Some("acme.com"), &f, None)
            .unwrap_err()
            .contains("other.com"));
        let f = fields(&[("company.domain", json!("https://www.acme.com/"))]);
        assert!(v.check(Some("acme.com"), &f, None).is_ok());
    }

    #[test]
    fn low_confidence_and_missing_fields_are_rejected() {
        let v = Validation {
            match_domain: false,
            min_confidence: Some(0.6),
            required_fields: vec!["company.industry".into()],
        };
        let f = fields(&[("company.industry", json!("Software"))]);
        assert!(v.check(None, &f, Some(0.5)).is_err());
        assert!(v.check(None, &f, Some(0.7)).is_ok());
        assert!(v
            .check(None, &BTreeMap::new(), Some(0.7))
            .unwrap_err()
            .contains("company.industry"));
    }
}
