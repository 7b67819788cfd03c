//! Territories: named regions and company-size bands, defined once in `routing.toml` and
//! tested in rules three ways:
//!
//! - `in_territory('west')` — the lead is in territory `west`;
//! - `territory == 'west'` — `west` is the lead's *first* territory in file order (so
//!   overlapping territories resolve like a LeanData territory table: the first row wins);
//! - `'emea' in territories` — every territory the lead is in.
//!
//! A lead is in a territory when each dimension the territory sets matches (countries,
//! states, postal prefixes, employee band); a dimension it does not set matches anything,
//! and a dimension it sets that the lead lacks does not match.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use super::config::TerritoryConfig;
use crate::rules::RuleContext;

#[derive(Debug, Clone, PartialEq)]
pub struct Territory {
    pub id: String,
    countries: Vec<String>,
    states: Vec<String>,
    postal_prefixes: Vec<String>,
    employees_min: Option<i64>,
    employees_max: Option<i64>,
}

/// Where a lead's company is, as territories read it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Place {
    pub country: Option<String>,
    pub state: Option<String>,
    pub postal: Option<String>,
    pub employees: Option<i64>,
}

impl Place {
    /// From the enriched company first, then what the lead itself said (`country`, and the
    /// `state` / `postal_code` / `zip` / `postcode` attributes of a form).
    pub fn of(ctx: &RuleContext) -> Self {
        let text = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
        };
        let attrs = ctx.lookup("lead.attributes");
        let attr = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| text(attrs.and_then(|a| a.get(*n))))
        };
        Self {
            country: text(ctx.lookup("company.country"))
                .or_else(|| text(ctx.lookup("lead.country"))),
            state: text(ctx.lookup("company.state"))
                .or_else(|| attr(&["state", "region", "province"])),
            postal: text(ctx.lookup("company.postal_code"))
                .or_else(|| attr(&["postal_code", "zip", "zip_code", "postcode"])),
            employees: ctx
                .lookup("company.employees")
                .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))),
        }
    }
}

impl Territory {
    pub fn build(c: &TerritoryConfig) -> Result<Self, String> {
        if let (Some(lo), Some(hi)) = (c.employees_min, c.employees_max) {
            if lo > hi {
                return Err(format!("employees_min {lo} is above employees_max {hi}"));
            }
        }
        let t = Self {
            id: c.id.get_ref().clone(),
            countries: c.countries.iter().map(|s| country_code(s)).collect(),
            states: c.states.iter().map(|s| state_code(s)).collect(),
            postal_prefixes: c.postal_prefixes.iter().map(|s| postal(s)).collect(),
            employees_min: c.employees_min,
            employees_max: c.employees_max,
        };
        if t.countries.is_empty()
            && t.states.is_empty()
            && t.postal_prefixes.is_empty()
            && t.employees_min.is_none()
            && t.employees_max.is_none()
        {
            return Err("sets nothing to match: give countries, states, postal_prefixes or an employees band".into());
        }
        Ok(t)
    }

    pub fn contains(&self, p: &Place) -> bool {
        self.holds(&Codes::of(p))
    }

    fn holds(&self, c: &Codes) -> bool {
        let listed = |list: &[String], v: &Option<String>| {
            list.is_empty() || v.as_ref().is_some_and(|v| list.contains(v))
        };
        listed(&self.countries, &c.country)
            && listed(&self.states, &c.state)
            && (self.postal_prefixes.is_empty()
                || c.postal.as_deref().is_some_and(|z| {
                    self.postal_prefixes
                        .iter()
                        .any(|pre| z.starts_with(pre.as_str()))
                }))
            && self
                .employees_min
                .is_none_or(|lo| c.employees.is_some_and(|e| e >= lo))
            && self
                .employees_max
                .is_none_or(|hi| c.employees.is_some_and(|e| e <= hi))
    }
}

/// A place in the form territories list theirs (country and state codes, postal code without
/// spaces, uppercased): made once per lead, not once per territory tested.
struct Codes {
    country: Option<String>,
    state: Option<String>,
    postal: Option<String>,
    employees: Option<i64>,
}

impl Codes {
    fn of(p: &Place) -> Self {
        Self {
            country: p.country.as_deref().map(country_code),
            state: p.state.as_deref().map(state_code),
            postal: p.postal.as_deref().map(postal),
            employees: p.employees,
        }
    }
}

/// The ids of the territories `place` is in, in file order.
pub fn territories_of(territories: &[Territory], place: &Place) -> Vec<String> {
    let codes = Codes::of(place);
    territories
        .iter()
        .filter(|t| t.holds(&codes))
        .map(|t| t.id.clone())
        .collect()
}

/// Binds `territory`, `territories` and `in_territory(id)` into a lead's context.
pub fn bind(ctx: &mut RuleContext, ids: &[String]) {
    ctx.set_json("territory", ids.first().cloned().unwrap_or_default().into());
    ctx.set_json("territories", ids.to_vec().into());
    let set: Arc<HashSet<String>> = Arc::new(ids.iter().cloned().collect());
    ctx.add_function("in_territory", move |id: Arc<String>| {
        set.contains(id.as_str())
    });
}

/// Territory ids a compiled rule names literally: `in_territory('x')`, `territory == 'x'`,
/// `'x' in territories` — so `leadgate check` can catch a misspelt one.
pub fn referenced(expr: &cel::IdedExpr) -> Vec<String> {
    use cel::common::ast::{Expr, LiteralValue};
    let lit = |e: &cel::IdedExpr| match &e.expr {
        Expr::Literal(LiteralValue::String(s)) => Some(s.inner().to_string()),
        _ => None,
    };
    let is_ident = |e: &cel::IdedExpr, name: &str| matches!(&e.expr, Expr::Ident(n) if n == name);
    let mut out = Vec::new();
    crate::rules::visit(expr, &mut |e| {
        let Expr::Call(call) = &e.expr else { return };
        let args = &call.args;
        match call.func_name.as_str() {
            "in_territory" => out.extend(args.first().and_then(lit)),
            "_==_" | "_!=_" if args.len() == 2 => {
                if is_ident(&args[0], "territory") {
                    out.extend(lit(&args[1]));
                } else if is_ident(&args[1], "territory") {
                    out.extend(lit(&args[0]));
                }
            }
            "@in" if args.len() == 2 && is_ident(&args[1], "territories") => {
                out.extend(lit(&args[0]))
            }
            _ => {}
        }
    });
    out
}

fn postal(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase()
}

/// `usa`, `United States` → `US`; anything unknown is kept, uppercased.
fn country_code(s: &str) -> String {
    let up = s.trim().to_uppercase().replace('.', "");
    let code = match up.as_str() {
        "USA" | "UNITED STATES" | "UNITED STATES OF AMERICA" | "AMERICA" => "US",
        "UK" | "UNITED KINGDOM" | "GREAT BRITAIN" | "ENGLAND" | "SCOTLAND" | "WALES"
        | "NORTHERN IRELAND" => "GB",
        "GERMANY" | "DEUTSCHLAND" => "DE",
        "FRANCE" => "FR",
        "SPAIN" | "ESPAÑA" => "ES",
        "ITALY" | "ITALIA" => "IT",
        "NETHERLANDS" | "THE NETHERLANDS" | "HOLLAND" => "NL",
        "CANADA" => "CA",
        "AUSTRALIA" => "AU",
        "NEW ZEALAND" => "NZ",
        "IRELAND" => "IE",
        "SWEDEN" => "SE",
        "NORWAY" => "NO",
        "DENMARK" => "DK",
        "FINLAND" => "FI",
        "SWITZERLAND" => "CH",
        "AUSTRIA" => "AT",
        "BELGIUM" => "BE",
        "PORTUGAL" => "PT",
        "POLAND" => "PL",
        "JAPAN" => "JP",
        "INDIA" => "IN",
        "CHINA" => "CN",
        "SINGAPORE" => "SG",
        "BRAZIL" | "BRASIL" => "BR",
        "MEXICO" | "MÉXICO" => "MX",
        "ISRAEL" => "IL",
        "SOUTH AFRICA" => "ZA",
        "UNITED ARAB EMIRATES" | "UAE" => "AE",
        _ => return up,
    };
    code.into()
}

/// US states and Canadian provinces by name → their postal code (`California` → `CA`);
/// anything else is kept, uppercased.
fn state_code(s: &str) -> String {
    const NAMES: &[(&str, &str)] = &[
        ("ALABAMA", "AL"),
        ("ALASKA", "AK"),
        ("ARIZONA", "AZ"),
        ("ARKANSAS", "AR"),
        ("CALIFORNIA", "CA"),
        ("COLORADO", "CO"),
        ("CONNECTICUT", "CT"),
        ("DELAWARE", "DE"),
        ("DISTRICT OF COLUMBIA", "DC"),
        ("FLORIDA", "FL"),
        ("GEORGIA", "GA"),
        ("HAWAII", "HI"),
        ("IDAHO", "ID"),
        ("ILLINOIS", "IL"),
        ("INDIANA", "IN"),
        ("IOWA", "IA"),
        ("KANSAS", "KS"),
        ("KENTUCKY", "KY"),
        ("LOUISIANA", "LA"),
        ("MAINE", "ME"),
        ("MARYLAND", "MD"),
        ("MASSACHUSETTS", "MA"),
        ("MICHIGAN", "MI"),
        ("MINNESOTA", "MN"),
        ("MISSISSIPPI", "MS"),
        ("MISSOURI", "MO"),
        ("MONTANA", "MT"),
        ("NEBRASKA", "NE"),
        ("NEVADA", "NV"),
        ("NEW HAMPSHIRE", "NH"),
        ("NEW JERSEY", "NJ"),
        ("NEW MEXICO", "NM"),
        ("NEW YORK", "NY"),
        ("NORTH CAROLINA", "NC"),
        ("NORTH DAKOTA", "ND"),
        ("OHIO", "OH"),
        ("OKLAHOMA", "OK"),
        ("OREGON", "OR"),
        ("PENNSYLVANIA", "PA"),
        ("RHODE ISLAND", "RI"),
        ("SOUTH CAROLINA", "SC"),
        ("SOUTH DAKOTA", "SD"),
        ("TENNESSEE", "TN"),
        ("TEXAS", "TX"),
        ("UTAH", "UT"),
        ("VERMONT", "VT"),
        ("VIRGINIA", "VA"),
        ("WASHINGTON", "WA"),
        ("WEST VIRGINIA", "WV"),
        ("WISCONSIN", "WI"),
        ("WYOMING", "WY"),
        ("ALBERTA", "AB"),
        ("BRITISH COLUMBIA", "BC"),
        ("MANITOBA", "MB"),
        ("NEW BRUNSWICK", "NB"),
        ("NEWFOUNDLAND AND LABRADOR", "NL"),
        ("NOVA SCOTIA", "NS"),
        ("ONTARIO", "ON"),
        ("PRINCE EDWARD ISLAND", "PE"),
        ("QUEBEC", "QC"),
        ("QUÉBEC", "QC"),
        ("SASKATCHEWAN", "SK"),
    ];
    let up = s.trim().to_uppercase();
    NAMES
        .iter()
        .find(|(name, _)| *name == up)
        .map_or(up, |(_, code)| (*code).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use toml::Spanned;

    fn territory(text: &str) -> Territory {
        #[derive(serde::Deserialize)]
        struct W {
            territory: TerritoryConfig,
        }
        let w: W = toml::from_str(text).unwrap();
        let _: &Spanned<String> = &w.territory.id;
        Territory::build(&w.territory).unwrap()
    }

    fn place(country: &str, state: &str, postal: Option<&str>, employees: Option<i64>) -> Place {
        Place {
            country: Some(country.into()),
            state: Some(state.into()),
            postal: postal.map(String::from),
            employees,
        }
    }

    #[test]
    fn states_match_by_code_or_name_and_countries_by_alias() {
        let west = territory(
            "[territory]\nid = 'west'\ncountries = ['US']\nstates = ['CA', 'Oregon', 'WA']",
        );
        assert!(west.contains(&place("US", "California", None, None)));
        assert!(west.contains(&place("United States", "OR", None, None)));
        assert!(west.contains(&place("usa", "wa", None, None)));
        assert!(!west.contains(&place("US", "TX", None, None)));
        assert!(!west.contains(&place("CA", "ON", None, None)));
        assert!(!west.contains(&Place::default()));
    }

    #[test]
    fn postal_prefixes_and_employee_bands_narrow_a_territory() {
        let bay = territory("[territory]\nid = 'bay'\npostal_prefixes = ['940', '941']\nemployees_min = 200\nemployees_max = 999");
        assert!(bay.contains(&place("US", "CA", Some("94107"), Some(500))));
        assert!(!bay.contains(&place("US", "CA", Some("90210"), Some(500))));
        assert!(!bay.contains(&place("US", "CA", Some("94107"), Some(1000))));
        assert!(
            !bay.contains(&place("US", "CA", Some("94107"), None)),
            "a band needs a size"
        );
        let london = territory("[territory]\nid = 'london'\npostal_prefixes = ['SW1', 'EC']");
        assert!(london.contains(&place("GB", "England", Some("sw1a 1aa"), None)));
    }

    #[test]
    fn a_territory_must_set_something() {
        #[derive(serde::Deserialize)]
        struct W {
            territory: TerritoryConfig,
        }
        let w: W = toml::from_str("[territory]\nid = 'all'").unwrap();
        assert!(Territory::build(&w.territory).is_err());
    }
}
