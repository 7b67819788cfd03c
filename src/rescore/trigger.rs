//! `[[trigger]]` in routing.toml (issue 25): what to do when a score moves at rest. Each
//! trigger's `when` is CEL over the lead's context plus `previous` = {grade, score, route};
//! `then` lists its actions. A trigger fires at most once per (trigger, lead, decision): the
//! effect key in the outbox names all three.
//!
//! ```toml
//! [[trigger]]
//! name = "became-hot"
//! when = "grade == 'hot' && previous.grade != 'hot'"
//! then = ["reroute", "write_score", { enroll = "mid-funnel" }]
//! ```

use std::path::Path;

use serde::Deserialize;
use serde_json::{json, Value};
use toml::Spanned;

use crate::rules::{Condition, RuleContext, RuleFile, Scope};
use crate::settings::{ConfigErrors, ConfigIssue};

/// What a trigger does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Route the lead again and deliver it as a routed lead.
    Reroute,
    /// Write the new score to the CRM record, per `[[delivery.field]]`'s write policy.
    WriteScore,
    /// Enroll the lead in this `[[delivery.sequence]]`.
    Enroll(String),
}

/// A trigger, compiled.
#[derive(Debug)]
pub struct Trigger {
    pub name: String,
    when: Condition,
    pub then: Vec<Action>,
}

impl Trigger {
    /// Whether it fires for a lead whose context is `ctx` (with `previous` set).
    pub fn fires(&self, ctx: &RuleContext) -> bool {
        self.when.eval(ctx).matched()
    }

    pub fn reroutes(&self) -> bool {
        self.then.contains(&Action::Reroute)
    }
}

impl Triggers {
    /// Whether some trigger may read the lead's list of events (`lead.events`, `events`).
    pub fn read_event_list(&self) -> bool {
        self.0
            .iter()
            .any(|t| crate::rules::reads_event_list(&t.when))
    }
}

/// Every `[[trigger]]` of routing.toml, in file order.
#[derive(Debug, Default)]
pub struct Triggers(pub Vec<Trigger>);

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    trigger: Vec<RawTrigger>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    name: Spanned<String>,
    when: Spanned<String>,
    then: Spanned<Vec<Value>>,
}

impl Triggers {
    /// Reads the triggers of `routing.toml`; `sequences` are the `[[delivery.sequence]]`
    /// names an `enroll` may name.
    pub fn load(path: &Path, sequences: &[String]) -> Result<Self, ConfigErrors> {
        Self::from_file(&RuleFile::read(path)?, sequences)
    }

    /// Compiles the triggers, every issue at once with line, trigger and field.
    pub fn from_file(file: &RuleFile, sequences: &[String]) -> Result<Self, ConfigErrors> {
        let raw: File = file.parse()?;
        let scope = Scope::routing().with("previous");
        let mut issues: Vec<ConfigIssue> = Vec::new();
        let mut triggers = Vec::new();
        for t in raw.trigger {
            let name = t.name.get_ref().trim().to_string();
            let key = |field: &str| format!("trigger \"{name}\" {field}");
            if name.is_empty() {
                issues.push(file.issue(Some(t.name.span()), "trigger name", "is empty"));
            }
            if triggers.iter().any(|x: &Trigger| x.name == name) {
                issues.push(file.issue(Some(t.name.span()), key("name"), "duplicate trigger name"));
            }
            let when = match Condition::compile(t.when.get_ref(), &scope) {
                Ok(c) => Some(c),
                Err(e) => {
                    issues.push(file.issue(Some(t.when.span()), key("when"), e.to_string()));
                    None
                }
            };
            let mut then = Vec::new();
            if t.then.get_ref().is_empty() {
                issues.push(file.issue(
                    Some(t.then.span()),
                    key("then"),
                    "lists no action: give reroute, write_score, { enroll = \"SEQUENCE\" }",
                ));
            }
            for (i, a) in t.then.get_ref().iter().enumerate() {
                match action(a, sequences) {
                    Ok(a) => then.push(a),
                    Err(reason) => issues.push(file.issue(
                        Some(t.then.span()),
                        key(&format!("then[{i}]")),
                        reason,
                    )),
                }
            }
            if let Some(when) = when {
                triggers.push(Trigger { name, when, then });
            }
        }
        if issues.is_empty() {
            Ok(Self(triggers))
        } else {
            Err(ConfigErrors(issues))
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn action(v: &Value, sequences: &[String]) -> Result<Action, String> {
    const KNOWN: &str = "reroute, write_score, { enroll = \"SEQUENCE\" }";
    match v {
        Value::String(s) if s == "reroute" => Ok(Action::Reroute),
        Value::String(s) if s == "write_score" => Ok(Action::WriteScore),
        Value::String(s) if s == "enroll" || s == "unenroll" => Err(format!(
            "`{s}` names a sequence: write {{ {s} = \"SEQUENCE\" }}"
        )),
        Value::String(s) => Err(format!("unknown action `{s}` (known: {KNOWN})")),
        Value::Object(m) if m.len() == 1 => {
            let (k, v) = m.iter().next().expect("one key");
            let Some(seq) = v.as_str() else {
                return Err(format!("`{k}` takes a sequence name as a string"));
            };
            match k.as_str() {
                "enroll" if sequences.iter().any(|s| s == seq) => Ok(Action::Enroll(seq.to_string())),
                "enroll" => Err(format!(
                    "enroll names sequence \"{seq}\", but no [[delivery.sequence]] in leadgate.toml has name = \"{seq}\""
                )),
                // No shipped connector manifest has an operation that ends an enrollment, and
                // the vendor formats it would need are not documented here yet.
                "unenroll" => Err(
                    "unenroll is not supported yet: no connector manifest defines an operation that ends an enrollment".into(),
                ),
                other => Err(format!("unknown action `{other}` (known: {KNOWN})")),
            }
        }
        _ => Err(format!(
            "an action is a string or a one-key table ({KNOWN})"
        )),
    }
}

/// `previous` as a trigger's `when` reads it.
pub fn previous(grade: &str, score: i64, route: &str) -> Value {
    json!({"grade": grade, "score": score, "route": route})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Triggers, ConfigErrors> {
        Triggers::from_file(
            &RuleFile::from_text("routing.toml", text),
            &["nurture".to_string()],
        )
    }

    #[test]
    fn a_trigger_compiles_with_previous_and_its_actions() {
        let t = load(
            "[fallback]\nreview = { reason = \"x\" }\n[[trigger]]\nname = \"hot\"\nwhen = \"grade == 'hot' && previous.grade != 'hot'\"\nthen = [\"reroute\", \"write_score\", { enroll = \"nurture\" }]\n",
        )
        .unwrap();
        assert_eq!(t.0.len(), 1);
        assert_eq!(
            t.0[0].then,
            [
                Action::Reroute,
                Action::WriteScore,
                Action::Enroll("nurture".into())
            ]
        );
    }

    #[test]
    fn check_names_the_trigger_and_the_bad_field() {
        let err = load(
            "[[trigger]]\nname = \"hot\"\nwhen = \"grade == 'hot'\"\nthen = [\"write_score\", \"ring_bell\"]\n\n[[trigger]]\nname = \"cold\"\nwhen = \"nosuch.field > 1\"\nthen = [{ enroll = \"missing\" }, { unenroll = \"nurture\" }]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("trigger \"hot\" then[1]") && err.contains("ring_bell"),
            "{err}"
        );
        assert!(err.contains("trigger \"cold\" when"), "{err}");
        assert!(
            err.contains("trigger \"cold\" then[0]") && err.contains("missing"),
            "{err}"
        );
        assert!(
            err.contains("then[1]") && err.contains("unenroll is not supported"),
            "{err}"
        );
        assert!(
            err.contains(":8") || err.contains("line 8"),
            "lines are named: {err}"
        );
    }
}
