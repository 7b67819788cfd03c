//! The connectors report: for every manifest and every waterfall provider — configured?,
//! credentials present?, rate limit, circuit state, credits used today, hit rate. Served by
//! `leadgate connectors` and `GET /v1/connectors`.

use std::fmt::Write as _;

use serde::Serialize;

use super::{ProviderStatus, Waterfall};

/// What is known about a connector when leadgate starts.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    pub id: String,
    pub name: String,
    pub kind: String,
    /// The manifest file, when there is one.
    pub manifest: Option<String>,
    pub needs_key: bool,
    pub key_present: bool,
    /// Has a `[providers.ID]` section.
    pub has_settings: bool,
    pub rate_limit: Option<String>,
    pub daily_budget: Option<f64>,
    pub cost_per_call: f64,
}

/// Every connector leadgate knows of.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    entries: Vec<CatalogEntry>,
    waterfall: Vec<String>,
}

/// One connector's line in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectorReport {
    pub id: String,
    pub name: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// 1-based position in `[enrichment] waterfall`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waterfall_position: Option<usize>,
    pub cost_per_call: f64,
    #[serde(flatten)]
    pub status: ProviderStatus,
}

impl Catalog {
    pub fn new(entries: Vec<CatalogEntry>, waterfall: Vec<String>) -> Self {
        Self { entries, waterfall }
    }

    pub fn ids(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.id.clone()).collect()
    }

    /// The report: waterfall providers first (in order, with live status), then the rest.
    pub fn report(&self, waterfall: &Waterfall) -> Vec<ConnectorReport> {
        let live = waterfall.statuses();
        let mut out: Vec<ConnectorReport> = self
            .entries
            .iter()
            .map(|e| {
                let position = self
                    .waterfall
                    .iter()
                    .position(|w| *w == e.id)
                    .map(|p| p + 1);
                let status = live
                    .iter()
                    .find(|s| s.id == e.id)
                    .cloned()
                    .unwrap_or_else(|| ProviderStatus {
                        id: e.id.clone(),
                        configured: false,
                        credentials_present: e.needs_key.then_some(e.key_present),
                        problem: Some(if e.kind == "enrichment" {
                            "not in [enrichment] waterfall".to_string()
                        } else {
                            format!(
                                "a {} connector; used by delivery and webhooks, not the waterfall",
                                e.kind
                            )
                        }),
                        rate_limit: e.rate_limit.clone(),
                        daily_budget: e.daily_budget,
                        ..ProviderStatus::default()
                    });
                ConnectorReport {
                    id: e.id.clone(),
                    name: e.name.clone(),
                    kind: e.kind.clone(),
                    manifest: e.manifest.clone(),
                    waterfall_position: position,
                    cost_per_call: e.cost_per_call,
                    status,
                }
            })
            .collect();
        out.sort_by_key(|r| (r.waterfall_position.unwrap_or(usize::MAX), r.id.clone()));
        out
    }
}

/// The report as a table for the terminal.
pub fn render(reports: &[ConnectorReport]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<16} {:<11} {:>3}  {:<10} {:<11} {:<22} {:<9} {:>8} {:>8} {:>7} {:>6}",
        "connector",
        "kind",
        "#",
        "configured",
        "credentials",
        "rate limit",
        "circuit",
        "credits",
        "budget",
        "calls",
        "hits"
    );
    for r in reports {
        let s = &r.status;
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let _ = writeln!(
            t,
            "{:<16} {:<11} {:>3}  {:<10} {:<11} {:<22} {:<9} {:>8} {:>8} {:>7} {:>6}",
            r.id,
            r.kind,
            r.waterfall_position.map_or("-".into(), |p| p.to_string()),
            yes_no(s.configured),
            s.credentials_present
                .map_or("not needed", |p| if p { "present" } else { "missing" }),
            s.rate_limit.as_deref().unwrap_or("-"),
            s.circuit.map_or("-", |c| c.as_str()),
            format_credits(s.credits_used_today),
            s.daily_budget.map_or("-".into(), format_credits),
            s.calls,
            s.hit_rate
                .map_or("-".into(), |h| format!("{:.0}%", h * 100.0)),
        );
    }
    let notes: Vec<String> = reports
        .iter()
        .filter_map(|r| {
            let mut why = r.status.problem.clone()?;
            if let Some(until) = r.status.parked_until {
                why += &format!(" (parked until {until})");
            }
            Some(format!("  {}: {why}", r.id))
        })
        .chain(reports.iter().filter_map(|r| {
            r.status
                .parked_until
                .filter(|_| r.status.problem.is_none())
                .map(|until| {
                    format!(
                        "  {}: parked until {until}: {}",
                        r.id,
                        r.status.parked_reason.as_deref().unwrap_or("")
                    )
                })
        }))
        .collect();
    if !notes.is_empty() {
        t += "\nNotes\n";
        for n in notes {
            t += &n;
            t.push('\n');
        }
    }
    t += "\nCredits and calls count since this process started (today, UTC).\n";
    t
}

fn format_credits(c: f64) -> String {
    if c.fract() == 0.0 {
        format!("{c:.0}")
    } else {
        format!("{c:.2}")
    }
}
