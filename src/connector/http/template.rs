//! Request templates: `{domain}`, `{email}`, `{company}`, `{first_name}`, `{last_name}` in
//! a path, query value, body string or response JSONPath, filled from the lead.
//!
//! Hand-written rather than a template crate: the language is deliberately only named
//! placeholders (no logic, no filters), and each place a value lands needs its own escaping —
//! a path segment is percent-encoded, a query value form-encoded by the URL builder, a
//! JSONPath literal JSON-quoted. Lead data can never change the host or add a path segment.

use std::collections::BTreeMap;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// The lead values a template may use.
pub const VARIABLES: &[&str] = &[
    "domain",
    "email",
    "company",
    "first_name",
    "last_name",
    // CRM and nurture connectors: values from the decision and the CRM (crate::crm::vars).
    "full_name",
    "lead_id",
    "external_id",
    "record_id",
    "owner_id",
    "sequence_id",
    "user_id",
    "sender_email",
    "mailbox_id",
    "member_status",
    "since_ms",
    "since_iso",
    "properties",
    "property_names",
    // CRM account search (crate::crm::account_match): the searched domain or name, the same
    // escaped for a SOQL string literal, and the Salesforce field searched.
    "term",
    "soql_term",
    "account_field",
    // Backfill (crate::crm::backfill): the keyset and page cursors, the batch bodies, and
    // the checked Salesforce field list.
    "after_id",
    "cursor",
    "inputs",
    "records",
    "soql_fields",
];

/// Characters escaped in a path segment: everything but unreserved characters (RFC 3986),
/// so `/`, `?`, `#`, `%`, `@` and `..` tricks stay inside the segment.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b':')
    .add(b';')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'&')
    .add(b'+')
    .add(b',')
    .add(b'$')
    .add(b'!')
    .add(b'\'')
    .add(b'(')
    .add(b')')
    .add(b'*');

/// The values for one call, by variable name.
pub type Vars = BTreeMap<&'static str, String>;

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Var(&'static str),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// How a value is escaped where it lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// As is (the URL builder or JSON serializer escapes it).
    None,
    /// Percent-encoded as one path segment.
    PathSegment,
    /// A JSON string literal (for JSONPath filters).
    JsonString,
}

impl Template {
    /// Parses `text`; an unknown `{name}` is an error naming it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("`{{` without a closing `}}` in `{text}`"))?;
            let name = &after[..close];
            let var = VARIABLES.iter().find(|v| **v == name).ok_or_else(|| {
                format!(
                    "unknown placeholder `{{{name}}}`; known: {}",
                    braced(VARIABLES)
                )
            })?;
            pieces.push(Piece::Var(var));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Self { pieces })
    }

    /// The variables this template needs.
    pub fn variables(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var(v) => Some(*v),
            Piece::Text(_) => None,
        })
    }

    /// Checks a template meant for a URL path: every `%` in its own text must start a
    /// percent-escape (`%25` for a literal `%`). A stray `%2` followed by a placeholder
    /// would let a lead value complete the escape (`e` makes `%2e`, a dot segment) and move
    /// the request out of the configured path.
    pub fn check_path(&self) -> Result<(), String> {
        for piece in &self.pieces {
            let Piece::Text(t) = piece else { continue };
            let bytes = t.as_bytes();
            for (i, _) in t.match_indices('%') {
                let escape = bytes.get(i + 1..i + 3);
                if !escape.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return Err(format!(
                        "`%` in `{t}` does not start a percent-escape (write `%25` for a literal `%`): a value next to it could complete one"
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn is_constant(&self) -> bool {
        self.variables().next().is_none()
    }

    /// Fills the template; `Err(name)` names a variable the lead does not have.
    pub fn render(&self, vars: &Vars, escape: Escape) -> Result<String, &'static str> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => {
                    let value = vars.get(v).filter(|s| !s.is_empty()).ok_or(*v)?;
                    // `.` and `..` are dot-segments even percent-encoded (`%2e%2e`): a URL
                    // would resolve them and move the request to another path. Such a value
                    // cannot be looked up by path, so it counts as missing.
                    if escape == Escape::PathSegment && matches!(value.as_str(), "." | "..") {
                        return Err(*v);
                    }
                    match escape {
                        Escape::None => out.push_str(value),
                        Escape::PathSegment => out.extend(utf8_percent_encode(value, SEGMENT)),
                        Escape::JsonString => {
                            out.push_str(&serde_json::Value::String(value.clone()).to_string())
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

fn braced(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{{{n}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(domain: &str) -> Vars {
        Vars::from([("domain", domain.to_string())])
    }

    #[test]
    fn path_values_cannot_escape_their_segment() {
        let t = Template::parse("/v2/companies/{domain}").unwrap();
        assert_eq!(
            t.render(&vars("evil.com/../admin?x=1#"), Escape::PathSegment)
                .unwrap(),
            "/v2/companies/evil.com%2F..%2Fadmin%3Fx%3D1%23"
        );
    }

    /// Found by `cargo fuzz run manifest_template`: `.%2{domain}` with the value `e`
    /// rendered `.%2e`, a dot segment, and the URL left the configured path.
    #[test]
    fn a_path_with_a_stray_percent_is_refused_before_a_value_can_complete_it() {
        let t = Template::parse("/companies/.%2{domain}/profile").unwrap();
        assert!(t.check_path().is_err());
        assert!(Template::parse("/a%/{domain}")
            .unwrap()
            .check_path()
            .is_err());
        assert!(Template::parse("/a%2").unwrap().check_path().is_err());
        assert!(Template::parse("/a%2Fb/{domain}%20x")
            .unwrap()
            .check_path()
            .is_ok());
        assert!(Template::parse("/v2/companies/{domain}")
            .unwrap()
            .check_path()
            .is_ok());
    }

    #[test]
    fn json_literals_are_quoted() {
        let t = Template::parse("$.emails[?@.value == {domain}]").unwrap();
        assert_eq!(
            t.render(&vars("a\"b"), Escape::JsonString).unwrap(),
            r#"$.emails[?@.value == "a\"b"]"#
        );
    }

    #[test]
    fn unknown_and_missing_variables_are_named() {
        assert!(Template::parse("/x/{domian}")
            .unwrap_err()
            .contains("domian"));
        let t = Template::parse("{email}").unwrap();
        assert_eq!(t.render(&vars("acme.io"), Escape::None), Err("email"));
    }
}
