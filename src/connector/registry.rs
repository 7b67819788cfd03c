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
