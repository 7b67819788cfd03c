//! Reading a rule file (`scoring.toml`, `routing.toml`): TOML with spans, so every issue
//! names the file, the line, and the rule.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::settings::{ConfigErrors, ConfigIssue};

/// A rule file's text, kept to turn byte offsets into line numbers.
pub struct RuleFile {
    pub name: String,
    text: String,
}

impl RuleFile {
    pub fn read(path: &Path) -> Result<Self, ConfigErrors> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::one(&name, "-", format!("cannot read the rule file: {e}"))
        })?;
        Ok(Self { name, text })
    }

    pub fn from_text(name: &str, text: &str) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
        }
    }

    /// Parses the file; a TOML or schema error names its line and key.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigErrors> {
        toml::from_str(&self.text).map_err(|e| {
            ConfigErrors(vec![ConfigIssue {
                file: self.name.clone(),
                line: e.span().map(|s| self.line_of(s.start)),
                key: "-".into(),
                reason: e.message().trim().to_string(),
            }])
        })
    }

    /// 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    pub fn issue(
        &self,
        span: Option<std::ops::Range<usize>>,
        key: impl Into<String>,
        reason: impl Into<String>,
    ) -> ConfigIssue {
        ConfigIssue {
            file: self.name.clone(),
            line: span.map(|s| self.line_of(s.start)),
            key: key.into(),
            reason: reason.into(),
        }
    }
}
