//! The response map: canonical field ← RFC 9535 JSONPath (`serde_json_path`), with
//! fallback paths and a closed set of conversions. A path may hold a placeholder
//! (`$.data.emails[?@.value == {email}].position`), filled per lead as a JSON string literal,
//! so one cached domain answer serves every person at that domain.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};
use serde_json_path::JsonPath;

use super::template::{Escape, Template, Vars};
use crate::connector::manifest::{Convert, FieldMapConfig};
use crate::connector::spec::{Confidence, Operation};

/// Where a field's value is found.
#[derive(Debug, Clone)]
pub enum PathSource {
    /// Compiled once.
    Fixed(JsonPath),
    /// Compiled per lead once the placeholders are filled.
    Templated(Template),
}

impl PathSource {
    fn compile(text: &str) -> Result<Self, String> {
        let t = Template::parse(text)?;
        let src = if t.is_constant() {
            PathSource::Fixed(
                JsonPath::parse(text)
                    .map_err(|e| format!("`{text}` is not an RFC 9535 JSONPath: {e}"))?,
            )
        } else {
            PathSource::Templated(t)
        };
        crate::connector::spec::check_path_source(&src).map_err(|e| format!("`{text}`: {e}"))?;
        Ok(src)
    }

    /// The nodes selected in `body`; nothing when a placeholder has no value.
    fn select<'b>(&self, body: &'b Value, vars: &Vars) -> Vec<&'b Value> {
        match self {
            PathSource::Fixed(p) => p.query(body).all(),
            PathSource::Templated(t) => t
                .render(vars, Escape::JsonString)
                .ok()
                .and_then(|text| JsonPath::parse(&text).ok())
                .map(|p| p.query(body).all())
                .unwrap_or_default(),
        }
    }
}

/// One canonical field's source.
#[derive(Debug, Clone)]
pub struct FieldMap {
    pub field: String,
    pub paths: Vec<PathSource>,
    pub convert: Convert,
    /// `values` of the manifest, keys lower-cased.
    pub values: HashMap<String, String>,
}

impl FieldMap {
    pub fn compile(field: &str, config: &FieldMapConfig) -> Result<Self, String> {
        let (paths, convert, values) = match config {
            FieldMapConfig::Path(p) => (vec![p.clone()], Convert::Keep, HashMap::new()),
            FieldMapConfig::Table(t) => {
                let mut all = vec![t.path.clone()];
                all.extend(t.or.iter().cloned());
                let values = t
                    .values
                    .iter()
                    .map(|(k, v)| (k.trim().to_lowercase(), v.clone()))
                    .collect();
                (all, t.convert, values)
            }
        };
        Ok(Self {
            field: field.to_string(),
            paths: paths
                .iter()
                .map(|p| PathSource::compile(p))
                .collect::<Result<_, _>>()?,
            convert,
            values,
        })
    }

    /// The converted value from the first path that yields one.
    pub fn extract(&self, body: &Value, vars: &Vars) -> Option<Value> {
        self.paths.iter().find_map(|p| {
            let nodes: Vec<&Value> = p
                .select(body, vars)
                .into_iter()
                .filter(|v| !v.is_null())
                .collect();
            convert(self.convert, &nodes).map(|v| self.in_team_words(v))
        })
    }

    fn in_team_words(&self, value: Value) -> Value {
        match &value {
            Value::String(s) if !self.values.is_empty() => self
                .values
                .get(&s.trim().to_lowercase())
                .map_or(value, |ours| Value::String(ours.clone())),
            _ => value,
        }
    }
}

/// Fields and confidence read from one answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mapped {
    pub fields: BTreeMap<String, Value>,
    pub confidence: Option<f64>,
}

impl Operation {
    /// Whether a 2xx body holds a record (`found_if`); true without a `found_if`.
    pub fn is_found(&self, body: &Value) -> bool {
        match &self.found_if {
            None => true,
            Some(p) => p
                .query(body)
                .all()
                .iter()
                .any(|v| !v.is_null() && *v != &json!({})),
        }
    }

    /// Reads the canonical fields out of a found answer.
    pub fn map(&self, body: &Value, vars: &Vars) -> Mapped {
        let fields = self
            .response
            .iter()
            .filter_map(|m| m.extract(body, vars).map(|v| (m.field.clone(), v)))
            .collect();
        Mapped {
            fields,
            confidence: self.confidence.as_ref().and_then(|c| confidence(c, body)),
        }
    }
}

fn confidence(c: &Confidence, body: &Value) -> Option<f64> {
    let read = c
        .path
        .as_ref()
        .and_then(|p| p.query(body).first().and_then(number))
        .map(|n| (n / c.scale).clamp(0.0, 1.0));
    read.or(c.default)
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().replace(',', "").parse().ok(),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn convert(how: Convert, nodes: &[&Value]) -> Option<Value> {
    let first = nodes.first().copied();
    match how {
        Convert::Keep => first.cloned(),
        Convert::Text => first.and_then(text).map(Value::String),
        Convert::Number => first.and_then(number).map(|n| json!(n)).map(integral),
        Convert::Integer => first.and_then(number).map(|n| json!(n.round() as i64)),
        Convert::Lowercase => first.and_then(text).map(|s| json!(s.to_lowercase())),
        Convert::Titlecase => first.and_then(text).map(|s| json!(titlecase(&s))),
        Convert::Domain => first
            .and_then(text)
            .and_then(|s| crate::normalize::domain_from_website(&s))
            .map(Value::String),
        Convert::List => {
            let mut out = Vec::new();
            for v in nodes {
                match v {
                    Value::Array(items) => {
                        out.extend(items.iter().filter(|i| !i.is_null()).cloned())
                    }
                    other => out.push((*other).clone()),
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        Convert::Money => first.and_then(money).map(|n| json!(n)).map(integral),
        Convert::CountryCode => first
            .and_then(text)
            .and_then(|s| country_code(&s))
            .map(|c| json!(c)),
    }
}

/// 83.0 → 83, so whole numbers compare as integers in rules.
fn integral(v: Value) -> Value {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => json!(f as i64),
        _ => v,
    }
}

fn titlecase(s: &str) -> String {
    s.split(' ')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `$10M-$50M` → 10,000,000 (the low end, so rules never overstate); `$1.2B`, `500K`,
/// `250000`, and plain numbers too.
fn money(v: &Value) -> Option<f64> {
    if let Some(n) = v.as_f64() {
        return Some(n);
    }
    let s = v.as_str()?.trim();
    let low = s.split(['-', '–']).next()?.trim();
    let cleaned: String = low
        .chars()
        .filter(|c| !matches!(c, '$' | '€' | '£' | ',' | '+' | ' '))
        .collect();
    let (digits, mult) = match cleaned.chars().last()? {
        'k' | 'K' => (&cleaned[..cleaned.len() - 1], 1e3),
        'm' | 'M' => (&cleaned[..cleaned.len() - 1], 1e6),
        'b' | 'B' => (&cleaned[..cleaned.len() - 1], 1e9),
        't' | 'T' => (&cleaned[..cleaned.len() - 1], 1e12),
        _ => (cleaned.as_str(), 1.0),
    };
    digits.parse::<f64>().ok().map(|n| n * mult)
}

/// English country names (as PDL and Apollo write them) → ISO 3166-1 alpha-2. Hand-kept
/// rather than a crate: the vendors use a few dozen spellings, and rules compare codes.
const COUNTRIES: &[(&str, &str)] = &[
    ("united states", "US"),
    ("united states of america", "US"),
    ("usa", "US"),
    ("united kingdom", "GB"),
    ("great britain", "GB"),
    ("england", "GB"),
    ("scotland", "GB"),
    ("uk", "GB"),
    ("canada", "CA"),
    ("germany", "DE"),
    ("france", "FR"),
    ("netherlands", "NL"),
    ("the netherlands", "NL"),
    ("australia", "AU"),
    ("new zealand", "NZ"),
    ("ireland", "IE"),
    ("spain", "ES"),
    ("portugal", "PT"),
    ("italy", "IT"),
    ("switzerland", "CH"),
    ("austria", "AT"),
    ("belgium", "BE"),
    ("luxembourg", "LU"),
    ("denmark", "DK"),
    ("sweden", "SE"),
    ("norway", "NO"),
    ("finland", "FI"),
    ("iceland", "IS"),
    ("poland", "PL"),
    ("czech republic", "CZ"),
    ("czechia", "CZ"),
    ("hungary", "HU"),
    ("romania", "RO"),
    ("greece", "GR"),
    ("turkey", "TR"),
    ("israel", "IL"),
    ("united arab emirates", "AE"),
    ("saudi arabia", "SA"),
    ("india", "IN"),
    ("china", "CN"),
    ("japan", "JP"),
    ("south korea", "KR"),
    ("korea, republic of", "KR"),
    ("singapore", "SG"),
    ("hong kong", "HK"),
    ("taiwan", "TW"),
    ("indonesia", "ID"),
    ("malaysia", "MY"),
    ("philippines", "PH"),
    ("thailand", "TH"),
    ("vietnam", "VN"),
    ("brazil", "BR"),
    ("mexico", "MX"),
    ("argentina", "AR"),
    ("chile", "CL"),
    ("colombia", "CO"),
    ("peru", "PE"),
    ("south africa", "ZA"),
    ("nigeria", "NG"),
    ("kenya", "KE"),
    ("egypt", "EG"),
    ("ukraine", "UA"),
    ("estonia", "EE"),
    ("latvia", "LV"),
    ("lithuania", "LT"),
];

fn country_code(s: &str) -> Option<String> {
    let t = s.trim();
    if t.len() == 2 && t.chars().all(|c| c.is_ascii_alphabetic()) {
        return Some(t.to_ascii_uppercase());
    }
    let lower = t.to_lowercase();
    COUNTRIES
        .iter()
        .find(|(name, _)| *name == lower)
        .map(|(_, code)| code.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::manifest::FieldMapTable;

    fn map(path: &str, convert: Convert) -> FieldMap {
        FieldMap::compile(
            "company.x",
            &FieldMapConfig::Table(FieldMapTable {
                path: path.into(),
                or: vec![],
                convert,
                values: Default::default(),
            }),
        )
        .unwrap()
    }

    #[test]
    fn a_vendors_vocabulary_maps_to_the_teams_and_the_rest_passes_through() {
        let m = FieldMap::compile(
            "company.industry",
            &FieldMapConfig::Table(FieldMapTable {
                path: "$.industry".into(),
                or: vec![],
                convert: Convert::Titlecase,
                values: [("computer software".to_string(), "Software".to_string())].into(),
            }),
        )
        .unwrap();
        let vars = Vars::default();
        let read = |v: &str| m.extract(&json!({ "industry": v }), &vars);
        assert_eq!(read("computer software"), Some(json!("Software")));
        assert_eq!(read(" COMPUTER Software "), Some(json!("Software")));
        assert_eq!(read("wine and spirits"), Some(json!("Wine And Spirits")));
    }

    #[test]
    fn converts_vendor_values_to_canonical_ones() {
        let body = json!({"rev": "$10M-$50M", "c": "united states", "w": "https://www.acme.com/about",
                          "n": "computer software", "e": "83", "tags": ["a", "b"]});
        let v = Vars::new();
        assert_eq!(
            map("$.rev", Convert::Money).extract(&body, &v),
            Some(json!(10_000_000))
        );
        assert_eq!(
            map("$.c", Convert::CountryCode).extract(&body, &v),
            Some(json!("US"))
        );
        assert_eq!(
            map("$.w", Convert::Domain).extract(&body, &v),
            Some(json!("acme.com"))
        );
        assert_eq!(
            map("$.n", Convert::Titlecase).extract(&body, &v),
            Some(json!("Computer Software"))
        );
        assert_eq!(
            map("$.e", Convert::Integer).extract(&body, &v),
            Some(json!(83))
        );
        assert_eq!(
            map("$.tags", Convert::List).extract(&body, &v),
            Some(json!(["a", "b"]))
        );
        assert_eq!(map("$.missing", Convert::Keep).extract(&body, &v), None);
    }

    #[test]
    fn a_path_placeholder_picks_the_lead_out_of_a_list() {
        let body = json!({"data": {"emails": [
            {"value": "bo@acme.com", "position": "CFO"},
            {"value": "ada@acme.com", "position": "VP Sales"}]}});
        let m = map("$.data.emails[?@.value == {email}].position", Convert::Keep);
        let v = Vars::from([("email", "ada@acme.com".to_string())]);
        assert_eq!(m.extract(&body, &v), Some(json!("VP Sales")));
        assert_eq!(m.extract(&body, &Vars::new()), None);
    }
}
