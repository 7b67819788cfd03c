//! The registry: every `connectors/*.toml`, parsed and checked. Adding a provider is adding a
//! file here; nothing is registered in code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::manifest::ManifestConfig;
use super::spec::{check, Manifest};
use crate::settings::ConfigIssue;

/// The checked manifests of one folder, by id.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub dir: PathBuf,
    manifests: BTreeMap<String, Arc<Manifest>>,
}

impl Registry {
    /// Reads every `*.toml` in `dir`. Returns what loaded and every issue found; a missing
    /// folder is one issue.
    pub fn load(dir: &Path) -> (Self, Vec<ConfigIssue>) {
        let mut registry = Self {
            dir: dir.to_path_buf(),
            manifests: BTreeMap::new(),
        };
        let mut issues = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                issues.push(ConfigIssue {
                    file: dir.display().to_string(),
                    line: None,
                    key: "connectors".into(),
                    reason: format!("cannot read the connectors folder: {e}"),
                });
                return (registry, issues);
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
        for file in files {
            match load_file(&file) {
                Ok(m) => {
                    if let Some(first) = seen.get(&m.id) {
                        issues.push(ConfigIssue {
                            file: file.display().to_string(),
                            line: None,
                            key: "id".into(),
                            reason: format!("id `{}` is already used by {}", m.id, first.display()),
                        });
                        continue;
                    }
                    seen.insert(m.id.clone(), file.clone());
                    registry.manifests.insert(m.id.clone(), Arc::new(m));
                }
                Err(mut e) => issues.append(&mut e),
            }
        }
        (registry, issues)
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Manifest>> {
        self.manifests.get(id)
    }

    pub fn manifests(&self) -> impl Iterator<Item = &Arc<Manifest>> {
        self.manifests.values()
    }

    pub fn ids(&self) -> Vec<String> {
        self.manifests.keys().cloned().collect()
    }

    pub fn insert(&mut self, manifest: Manifest) {
        self.manifests
            .insert(manifest.id.clone(), Arc::new(manifest));
    }
}

/// Parses and checks one manifest file.
pub fn load_file(path: &Path) -> Result<Manifest, Vec<ConfigIssue>> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigIssue {
            file: name.clone(),
            line: None,
            key: "-".into(),
            reason: format!("cannot read the manifest: {e}"),
        }]
    })?;
    parse(&name, &text, path.to_path_buf())
}

/// Parses and checks manifest text (`name` is used in issues).
pub fn parse(name: &str, text: &str, file: PathBuf) -> Result<Manifest, Vec<ConfigIssue>> {
    let raw: ManifestConfig = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        vec![ConfigIssue {
            file: name.to_string(),
            line,
            key: "-".into(),
            reason: e.message().trim().to_string(),
        }]
    })?;
    check(raw, file, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Manifest, Vec<ConfigIssue>> {
        parse("test.toml", text, PathBuf::from("test.toml"))
    }

    #[test]
    fn the_shipped_manifests_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("connectors");
        let (registry, issues) = Registry::load(&dir);
        assert!(issues.is_empty(), "{issues:?}");
        for id in [
            "clearbit",
            "peopledatalabs",
            "apollo",
            "hunter",
            "local_file",
        ] {
            assert!(registry.get(id).is_some(), "{id} missing");
        }
    }

    #[test]
    fn unknown_keys_and_versions_are_rejected_with_the_line() {
        let issues = parse_text(
            "version = 1\nid = \"x\"\nkind = \"enrichment\"\nbase_urll = \"https://x\"\n",
        )
        .unwrap_err();
        assert_eq!(issues[0].line, Some(4), "{issues:?}");
        assert!(issues[0].reason.contains("base_urll"), "{issues:?}");
        let issues =
            parse_text("version = 2\nid = \"x\"\nkind = \"crm\"\nbase_url = \"https://x.io\"\n")
                .unwrap_err();
        assert!(issues[0].reason.contains("version 2"), "{issues:?}");
    }

    #[test]
    fn every_issue_in_an_operation_is_reported_at_once() {
        let text = r#"
version = 1
id = "bad"
kind = "enrichment"
base_url = "https://api.example.com"
timeout = "soon"
[operations.find]
path = "/find/{domian}"
status = { not_found = [404], invalid = [404] }
[operations.find.response]
"company.industry" = "$.[oops"
"company.colour" = "$.colour"
"#;
        let issues = parse_text(text).unwrap_err();
        let all = format!("{issues:?}");
        for needle in [
            "timeout",
            "domian",
            "404 is listed as both",
            "JSONPath",
            "company.colour",
        ] {
            assert!(all.contains(needle), "{needle} not in {all}");
        }
    }

    #[test]
    fn several_named_operations_fit_in_one_manifest() {
        let text = r#"
version = 1
id = "somecrm"
kind = "crm"
base_url = "https://api.example.com"
[auth]
kind = "bearer"
[operations.search_contact]
method = "POST"
path = "/contacts/search"
body = { filter = { email = "{email}" } }
[operations.update_contact]
method = "PATCH"
path = "/contacts/{email}"
"#;
        let m = parse_text(text).unwrap();
        assert_eq!(m.operations.len(), 2);
        assert!(m.operations["search_contact"].needs.contains("email"));
    }
}
