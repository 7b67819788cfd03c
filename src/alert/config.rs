//! `alerts.toml`: the `[[alert]]` sections, read beside `leadgate.toml` (or at the path its
//! `alerts` key names), `${ENV}` secrets filled in, and checked into [`AlertRule`]s. Every
//! issue names the alert and the field, and all of them are reported at once.
//!
//! Must not: send anything or know when a condition holds (`conditions`, `dispatcher`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::rules::{Condition, RuleFile, Scope};
use crate::settings::{ConfigErrors, ConfigIssue, Settings};

/// The file read when `leadgate.toml` names none: beside it, and optional.
pub const DEFAULT_FILE: &str = "alerts.toml";
/// Default dedupe window: one message an hour about the same lead or provider keeps a
/// channel readable while a provider flaps or a lead is re-sent.
pub const DEFAULT_DEDUPE_WINDOW: &str = "1h";
/// Default grade a `lead_hot` alert watches for.
pub const DEFAULT_HOT_GRADE: &str = "hot";
/// Default send attempts in all (the first included): rides out a Slack 429 or a
/// receiver's restart without holding a sender for long.
pub const DEFAULT_ATTEMPTS: u32 = 5;
/// Most attempts an alert may ask for: past this a dead receiver is better reported.
const MAX_ATTEMPTS: u32 = 20;
/// Shortest dedupe window: below a second every occurrence would be its own alert.
const MIN_DEDUPE_WINDOW: Duration = Duration::from_secs(1);

/// What an alert watches: a closed set, matched exhaustively by the conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A lead's grade becomes the alert's `grade` from another grade or none.
    LeadHot,
    /// An SLA step: the owner did not touch the lead in time.
    SlaBreached,
    /// A provider's circuit breaker opened.
    ProviderCircuitOpen,
    /// A provider's daily credit budget or daily request cap is spent.
    ProviderBudgetExhausted,
    /// More than `rate` CRM delivery failures within `window`.
    DeliveryFailures,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::LeadHot => "lead_hot",
            AlertKind::SlaBreached => "sla_breached",
            AlertKind::ProviderCircuitOpen => "provider_circuit_open",
            AlertKind::ProviderBudgetExhausted => "provider_budget_exhausted",
            AlertKind::DeliveryFailures => "delivery_failures",
        }
    }

    /// Alerts about one lead, whose `when` sees the lead's context.
    fn is_about_a_lead(self) -> bool {
        matches!(self, AlertKind::LeadHot | AlertKind::SlaBreached)
    }
}

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiverKind {
    /// A Slack incoming webhook: a Block Kit message.
    Slack,
    /// Any HTTPS endpoint: a JSON body signed with HMAC-SHA256.
    Webhook,
}

/// One `[[alert]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// The alert's name: in messages, metrics and dedupe keys.
    pub name: String,
    /// The condition watched.
    pub on: AlertKind,
    /// `lead_hot`: the grade that counts as hot (`hot`).
    #[serde(default)]
    pub grade: Option<String>,
    /// Lead alerts: a CEL condition on the lead (`company.employees >= 1000`).
    #[serde(default)]
    pub when: Option<String>,
    /// `slack` or `webhook`.
    pub to: ReceiverKind,
    /// The Slack incoming-webhook URL or the receiver's URL (`${SLACK_WEBHOOK_URL}`).
    pub url: String,
    /// `webhook`: the shared HMAC secret, at least 16 characters.
    #[serde(default)]
    pub secret: Option<String>,
    /// Sent at most once per lead (or provider) within this window (`1h`).
    #[serde(default)]
    pub dedupe_window: Option<String>,
    /// `delivery_failures`: more failures than this within `window` alert.
    #[serde(default)]
    pub rate: Option<u32>,
    /// `delivery_failures`: the window failures are counted over (`10m`).
    #[serde(default)]
    pub window: Option<String>,
    /// Send attempts in all before giving up (5).
    #[serde(default)]
    pub attempts: Option<u32>,
}

/// Where a checked alert sends.
#[derive(Debug, Clone)]
pub enum Receiver {
    Slack { url: reqwest::Url },
    Webhook { url: reqwest::Url, secret: String },
}

impl Receiver {
    pub fn kind(&self) -> ReceiverKind {
        match self {
            Receiver::Slack { .. } => ReceiverKind::Slack,
            Receiver::Webhook { .. } => ReceiverKind::Webhook,
        }
    }
}

/// One checked alert.
#[derive(Debug, Clone)]
pub struct AlertRule {
    pub name: String,
    pub kind: AlertKind,
    /// `lead_hot`: the grade watched for.
    pub hot_grade: String,
    pub when: Option<Arc<Condition>>,
    pub receiver: Receiver,
    pub dedupe_window: Duration,
    /// `delivery_failures`: (failures tolerated, window).
    pub failures: Option<(u32, Duration)>,
    pub attempts: u32,
}

/// Every alert of a configuration, and the console's address for links.
#[derive(Debug, Clone, Default)]
pub struct AlertSet {
    pub rules: Vec<AlertRule>,
    /// `[server] public_url`: where the console is reached, for links to a lead's page.
    pub public_url: Option<String>,
}

/// The variables a lead alert's `when` can use: a routing rule's, plus `previous` (the
/// grade before: `previous.grade`) and `route` (the decision's route).
pub fn lead_scope() -> Scope {
    Scope::routing().with("previous").with("route")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsFile {
    #[serde(default)]
    alert: Vec<toml::Value>,
}

impl AlertSet {
    /// The alerts of `settings`: the file its `alerts` key names, else `alerts.toml` beside
    /// it when there is one; no file means no alerts. Secrets come from the environment.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigErrors> {
        Self::from_settings_with_env(settings, &std::env::vars().collect())
    }

    /// As [`AlertSet::from_settings`], with the environment given (tests).
    pub fn from_settings_with_env(
        settings: &Settings,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigErrors> {
        let mut set = match &settings.config.alerts {
            Some(p) => Self::load(&settings.resolve(p), env)?,
            None => {
                let p = settings.dir.join(DEFAULT_FILE);
                if p.exists() {
                    Self::load(&p, env)?
                } else {
                    Self::default()
                }
            }
        };
        set.public_url = settings
            .config
            .server
            .public_url
            .as_deref()
            .map(|u| u.trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty());
        Ok(set)
    }

    /// Reads and checks `path`, with `${NAME}` filled from `env`.
    pub fn load(path: &Path, env: &HashMap<String, String>) -> Result<Self, ConfigErrors> {
        let file = RuleFile::read(path)?;
        Self::parse(&file, env)
    }

    /// Checks the text of an alerts file named `name` (tests, `leadgate check`).
    pub fn from_text(
        name: &str,
        text: &str,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigErrors> {
        Self::parse(&RuleFile::from_text(name, text), env)
    }

    fn parse(file: &RuleFile, env: &HashMap<String, String>) -> Result<Self, ConfigErrors> {
        let raw: AlertsFile = file.parse()?;
        let mut issues = Vec::new();
        let mut rules = Vec::new();
        let mut names = HashSet::new();
        for (i, entry) in raw.alert.into_iter().enumerate() {
            let label = match entry.get("name").and_then(|n| n.as_str()) {
                Some(n) if !n.trim().is_empty() => format!("alert \"{n}\""),
                _ => format!("alert[{i}]"),
            };
            let issue = |key: &str, reason: String| ConfigIssue {
                file: file.name.clone(),
                line: None,
                key: format!("{label} {key}"),
                reason,
            };
            let mut value = match serde_json::to_value(&entry) {
                Ok(v) => v,
                Err(e) => {
                    issues.push(issue("-", e.to_string()));
                    continue;
                }
            };
            if let Err(missing) = crate::settings::interpolate_secrets(&mut value, env) {
                for (key, reason) in missing {
                    issues.push(issue(&key, reason));
                }
                continue;
            }
            let config: AlertConfig = match serde_path_to_error::deserialize(value) {
                Ok(c) => c,
                Err(e) => {
                    let key = e.path().to_string();
                    let key = if key == "." { "-".to_string() } else { key };
                    issues.push(issue(&key, e.into_inner().to_string()));
                    continue;
                }
            };
            if !names.insert(config.name.clone()) {
                issues.push(issue(
                    "name",
                    "another alert has this name; names must be unique (they key the dedupe)"
                        .into(),
                ));
            }
            match check(&config) {
                Ok(rule) => rules.push(rule),
                Err(problems) => {
                    issues.extend(problems.into_iter().map(|(k, r)| issue(k, r)));
                }
            }
        }
        if issues.is_empty() {
            Ok(Self {
                rules,
                public_url: None,
            })
        } else {
            Err(ConfigErrors(issues))
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether any alert watches `kind`.
    pub fn watches(&self, kind: AlertKind) -> bool {
        self.rules.iter().any(|r| r.kind == kind)
    }

    /// The alerts watching `kind`.
    pub fn on(&self, kind: AlertKind) -> impl Iterator<Item = &AlertRule> {
        self.rules.iter().filter(move |r| r.kind == kind)
    }
}

/// Checks one alert's fields together: (field, reason) for each problem.
fn check(c: &AlertConfig) -> Result<AlertRule, Vec<(&'static str, String)>> {
    let mut problems: Vec<(&'static str, String)> = Vec::new();
    if c.name.trim().is_empty() {
        problems.push(("name", "must not be empty".into()));
    }
    let duration = |key: &'static str, v: &str, problems: &mut Vec<(&'static str, String)>| {
        match humantime::parse_duration(v) {
            Ok(d) => Some(d),
            Err(e) => {
                problems.push((
                    key,
                    format!("`{v}` is not a duration ({e}); write e.g. 90s, 4h, 7d"),
                ));
                None
            }
        }
    };
    let dedupe_window = duration(
        "dedupe_window",
        c.dedupe_window.as_deref().unwrap_or(DEFAULT_DEDUPE_WINDOW),
        &mut problems,
    );
    if dedupe_window.is_some_and(|d| d < MIN_DEDUPE_WINDOW) {
        problems.push(("dedupe_window", "must be at least 1s".into()));
    }
    let dedupe_window = dedupe_window.unwrap_or_default();
    if c.grade.is_some() && c.on != AlertKind::LeadHot {
        problems.push((
            "grade",
            format!(
                "only a lead_hot alert watches a grade (this one is on = \"{}\")",
                c.on.as_str()
            ),
        ));
    }
    let hot_grade = c.grade.clone().unwrap_or_else(|| DEFAULT_HOT_GRADE.into());
    if hot_grade.trim().is_empty() {
        problems.push(("grade", "must not be empty".into()));
    }
    let when = match &c.when {
        None => None,
        Some(_) if !c.on.is_about_a_lead() => {
            problems.push(("when", format!("only lead alerts (lead_hot, sla_breached) take a condition; on = \"{}\" has no lead", c.on.as_str())));
            None
        }
        Some(src) => match Condition::compile(src, &lead_scope()) {
            Ok(cond) => Some(Arc::new(cond)),
            Err(e) => {
                problems.push(("when", e.to_string()));
                None
            }
        },
    };
    let failures = match (c.on, c.rate, &c.window) {
        (AlertKind::DeliveryFailures, Some(rate), Some(window)) => {
            if rate == 0 {
                problems.push((
                    "rate",
                    "must be at least 1 (alerts when failures exceed it)".into(),
                ));
            }
            duration("window", window, &mut problems)
                .filter(|w| !w.is_zero())
                .map(|w| (rate, w))
        }
        (AlertKind::DeliveryFailures, rate, window) => {
            if rate.is_none() {
                problems.push(("rate", "is required for on = \"delivery_failures\": failures tolerated within `window`".into()));
            }
            if window.is_none() {
                problems.push((
                    "window",
                    "is required for on = \"delivery_failures\" (e.g. \"10m\")".into(),
                ));
            }
            None
        }
        (kind, rate, window) => {
            if rate.is_some() {
                problems.push((
                    "rate",
                    format!(
                        "only a delivery_failures alert takes a rate (this one is on = \"{}\")",
                        kind.as_str()
                    ),
                ));
            }
            if window.is_some() {
                problems.push(("window", format!("only a delivery_failures alert takes a window; the dedupe window is `dedupe_window` (this one is on = \"{}\")", kind.as_str())));
            }
            None
        }
    };
    let attempts = c.attempts.unwrap_or(DEFAULT_ATTEMPTS);
    if attempts == 0 || attempts > MAX_ATTEMPTS {
        problems.push(("attempts", format!("must be between 1 and {MAX_ATTEMPTS}")));
    }
    let url = match check_url(&c.url) {
        Ok(u) => Some(u),
        Err(why) => {
            problems.push(("url", why));
            None
        }
    };
    let min = crate::webhook::MIN_SECRET_LEN;
    let secret = match (c.to, &c.secret) {
        (ReceiverKind::Webhook, Some(s)) if s.chars().count() >= min => Some(s.clone()),
        (ReceiverKind::Webhook, Some(s)) => {
            problems.push(("secret", format!("is {} characters; use at least {min} (a short secret lets a receiver be sent forged alerts)", s.chars().count())));
            None
        }
        (ReceiverKind::Webhook, None) => {
            problems.push(("secret", format!("is required for to = \"webhook\": the receiver verifies the signature with it (at least {min} characters)")));
            None
        }
        (ReceiverKind::Slack, Some(_)) => {
            problems.push((
                "secret",
                "a Slack incoming webhook takes no secret: its URL is the secret".into(),
            ));
            None
        }
        (ReceiverKind::Slack, None) => None,
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let url = url.expect("checked above");
    let receiver = match c.to {
        ReceiverKind::Slack => Receiver::Slack { url },
        ReceiverKind::Webhook => Receiver::Webhook {
            url,
            secret: secret.expect("checked above"),
        },
    };
    Ok(AlertRule {
        name: c.name.clone(),
        kind: c.on,
        hot_grade,
        when,
        receiver,
        dedupe_window,
        failures,
        attempts,
    })
}

/// An alert URL: HTTPS, or HTTP to this machine (a local relay, tests). The reason never
/// quotes the URL: a Slack webhook URL is a secret.
fn check_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text.trim())
        .map_err(|e| format!("is not a URL ({e}); write https://…"))?;
    let host = url
        .host_str()
        .unwrap_or("")
        .trim_matches(|c| c == '[' || c == ']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err("must be https:// (plain http is allowed to a loopback address only): alerts carry lead data".into()),
        other => Err(format!("scheme `{other}` is not supported; write https://…")),
    }
}

/// Where an alerts file is, for `leadgate check` to name it.
pub fn file_for(settings: &Settings) -> Option<PathBuf> {
    match &settings.config.alerts {
        Some(p) => Some(settings.resolve(p)),
        None => {
            let p = settings.dir.join(DEFAULT_FILE);
            p.exists().then_some(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<AlertSet, ConfigErrors> {
        AlertSet::from_text("alerts.toml", text, &HashMap::new())
    }

    #[test]
    fn defaults_apply_and_secrets_fill_in() {
        let env = HashMap::from([(
            "HOOK_SECRET".to_string(),
            "0123456789abcdef0123".to_string(),
        )]);
        let set = AlertSet::from_text(
            "alerts.toml",
            "[[alert]]\nname = \"hot\"\non = \"lead_hot\"\nto = \"webhook\"\nurl = \"https://alerts.example.com/h\"\nsecret = \"${HOOK_SECRET}\"\n\n\
             [[alert]]\nname = \"crm\"\non = \"delivery_failures\"\nrate = 5\nwindow = \"10m\"\ndedupe_window = \"30m\"\nto = \"slack\"\nurl = \"http://127.0.0.1:9/x\"\n",
            &env,
        )
        .unwrap();
        let hot = &set.rules[0];
        assert_eq!(hot.hot_grade, DEFAULT_HOT_GRADE);
        assert_eq!(hot.dedupe_window, Duration::from_secs(3600));
        assert_eq!(hot.attempts, DEFAULT_ATTEMPTS);
        assert!(
            matches!(&hot.receiver, Receiver::Webhook { secret, .. } if secret == "0123456789abcdef0123")
        );
        let crm = &set.rules[1];
        assert_eq!(crm.failures, Some((5, Duration::from_secs(600))));
        assert_eq!(crm.dedupe_window, Duration::from_secs(1800));
        assert!(set.watches(AlertKind::DeliveryFailures));
        assert!(!set.watches(AlertKind::SlaBreached));
    }

    #[test]
    fn duplicate_names_unknown_keys_and_misplaced_fields_are_named() {
        let err = load(
            "[[alert]]\nname = \"a\"\non = \"lead_hot\"\nto = \"slack\"\nurl = \"https://hooks.slack.com/x\"\n\n\
             [[alert]]\nname = \"a\"\non = \"provider_circuit_open\"\nwhen = \"true\"\ngrade = \"hot\"\nto = \"slack\"\nurl = \"https://hooks.slack.com/x\"\nsecret = \"0123456789abcdef\"\n\n\
             [[alert]]\nname = \"b\"\non = \"sla_breached\"\nto = \"slack\"\nurl = \"https://hooks.slack.com/x\"\nchannel = \"#sales\"\n\n\
             [[alert]]\nname = \"c\"\non = \"sla_breached\"\nto = \"slack\"\nurl = \"ftp://hooks.slack.com/x\"\ndedupe_window = \"soon\"\nattempts = 0\n",
        )
        .unwrap_err();
        let keys: Vec<&str> = err.0.iter().map(|i| i.key.as_str()).collect();
        for k in [
            "alert \"a\" name",
            "alert \"a\" when",
            "alert \"a\" grade",
            "alert \"a\" secret",
            "alert \"b\" channel",
            "alert \"c\" url",
            "alert \"c\" dedupe_window",
            "alert \"c\" attempts",
        ] {
            assert!(keys.contains(&k), "{k} not in {keys:?}");
        }
        assert!(err.to_string().contains("channel"), "{err}");
    }

    #[test]
    fn a_url_reason_never_quotes_the_url() {
        let err = load(
            "[[alert]]\nname = \"a\"\non = \"lead_hot\"\nto = \"slack\"\nurl = \"http://hooks.slack.com/services/T/B/SECRETPART\"\n",
        )
        .unwrap_err();
        assert!(!err.to_string().contains("SECRETPART"), "{err}");
    }

    #[test]
    fn the_shipped_example_loads() {
        let env = HashMap::from([
            (
                "SLACK_WEBHOOK_URL".to_string(),
                "https://hooks.slack.com/services/T0/B0/X".to_string(),
            ),
            (
                "LEADGATE_ALERT_SECRET".to_string(),
                "0123456789abcdef0123".to_string(),
            ),
        ]);
        let set = AlertSet::load(Path::new("config/alerts.example.toml"), &env).unwrap();
        assert_eq!(set.rules.len(), 4);
    }

    #[test]
    fn a_file_that_is_not_toml_names_its_line() {
        let err = load("[[alert]]\nname = \"a\"\non = \n").unwrap_err();
        assert_eq!(err.0[0].line, Some(3), "{err}");
    }
}
