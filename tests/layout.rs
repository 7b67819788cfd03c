//! The house rules of `src/`'s layout (issue 27), checked on the source text so that a change
//! that breaks one fails here, not in a reviewer's head:
//! - the module graph has no circles: every file is a module (as in Rust's module tree), and
//!   a `crate::a::b` path in a file is an edge to the longest module it names;
//! - only `main.rs` and `daemon.rs` use the HTTP edge (`server`);
//! - the store uses no stage (route, score, crm, enrich, pipeline, rescore, alert), but for
//!   the modules `STORE_STAGE_IMPORTS_LEFT` lists;
//! - lib.rs's layout map names every top-level module.
//!
//! Comments and `#[cfg(test)] mod tests` blocks are not part of the graph: a doc link or a
//! test may name any module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module under src/ (by path, `store::sqlite::routing`) and the source it holds.
fn modules() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix(&root).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().map(String::as_str) == Some("mod") {
                parts.pop();
            }
            let name = parts.join("::");
            out.insert(name, code_only(&std::fs::read_to_string(&path).unwrap()));
        }
    }
    out
}

/// The source without comments and without its unit-test module.
fn code_only(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    let comment = regex::Regex::new(r"//[^\n]*").unwrap();
    comment.replace_all(text, "").into_owned()
}

/// Each module's edges: the modules its `crate::` paths name (never itself or its parents).
fn graph(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let path =
        regex::Regex::new(r"crate::((?:[a-z_][a-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*)").unwrap();
    let group = regex::Regex::new(r"crate::((?:[a-z_][a-z0-9_]*::)*)\{([^}]*)\}").unwrap();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, code) in modules {
        let mut named: Vec<String> = path.captures_iter(code).map(|c| c[1].to_string()).collect();
        // `use crate::a::{b::C, d}`: each item of the group is a path too.
        for c in group.captures_iter(code) {
            for item in c[2].split(',') {
                let item = item.trim().split(" as ").next().unwrap_or("").trim();
                if !item.is_empty() {
                    named.push(format!("{}{item}", &c[1]));
                }
            }
        }
        let mine = edges.entry(name.clone()).or_default();
        for p in named {
            let parts: Vec<&str> = p.trim_end_matches("::").split("::").collect();
            if let Some(target) = (1..=parts.len())
                .rev()
                .map(|k| parts[..k].join("::"))
                .find(|m| modules.contains_key(m) && m != "lib" && m != "main")
            {
                let parent = name.starts_with(&format!("{target}::"));
                if target != *name && !parent {
                    mine.insert(target);
                }
            }
        }
    }
    edges
}

/// A circle through `from`, when there is one (depth-first search).
fn circle(
    edges: &BTreeMap<String, BTreeSet<String>>,
    at: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(i) = path.iter().position(|p| p == at) {
        let mut c = path[i..].to_vec();
        c.push(at.to_string());
        return Some(c);
    }
    if done.contains(at) {
        return None;
    }
    path.push(at.to_string());
    for next in edges.get(at).into_iter().flatten() {
        if let Some(c) = circle(edges, next, path, done) {
            return Some(c);
        }
    }
    path.pop();
    done.insert(at.to_string());
    None
}

#[test]
fn the_module_graph_has_no_circles() {
    let modules = modules();
    let edges = graph(&modules);
    let mut done = BTreeSet::new();
    for m in modules.keys() {
        if let Some(c) = circle(&edges, m, &mut Vec::new(), &mut done) {
            panic!("modules import each other in a circle: {}", c.join(" → "));
        }
    }
}

#[test]
fn only_main_and_the_daemon_use_the_http_edge() {
    let modules = modules();
    let edges = graph(&modules);
    let users: Vec<&String> = edges
        .iter()
        .filter(|(m, to)| {
            !m.starts_with("server")
                && !["main", "daemon"].contains(&m.as_str())
                && to
                    .iter()
                    .any(|t| t == "server" || t.starts_with("server::"))
        })
        .map(|(m, _)| m)
        .collect();
    assert!(users.is_empty(), "these modules import `server`: {users:?}");
}

/// The stages the store must not import (issue 27, item 3): the store persists, the stages
/// decide.
const STAGES: &[&str] = &[
    "route", "score", "crm", "enrich", "pipeline", "rescore", "alert",
];

/// Store modules that still import a stage, each to leave this list once its record types
/// move into the store; a module not listed (the written-once files among them) may not.
const STORE_STAGE_IMPORTS_LEFT: &[&str] = &[
    "store::dispatch",
    "store::outbox",
    "store::picks",
    "store::postgres::backfill",
    "store::postgres::rescore",
    "store::postgres::rollup",
    "store::postgres::routing",
    "store::postgres::scoring",
    "store::sqlite::backfill",
    "store::sqlite::rescore",
    "store::sqlite::rollup",
    "store::sqlite::routing",
    "store::sqlite::scoring",
    "store::sqlite::tests",
];

#[test]
fn the_store_imports_no_stage() {
    let modules = modules();
    let edges = graph(&modules);
    let is_stage = |t: &String| {
        STAGES
            .iter()
            .any(|s| t == s || t.starts_with(&format!("{s}::")))
    };
    let importers: Vec<String> = edges
        .iter()
        .filter(|(m, to)| {
            (m.as_str() == "store" || m.starts_with("store::"))
                && !STORE_STAGE_IMPORTS_LEFT.contains(&m.as_str())
                && to.iter().any(is_stage)
        })
        .map(|(m, to)| {
            let stages: Vec<&String> = to.iter().filter(|t| is_stage(t)).collect();
            format!("{m} → {stages:?}")
        })
        .collect();
    assert!(
        importers.is_empty(),
        "these store modules import a stage: {importers:?}"
    );
    // The list only shrinks: a module cleared of stage imports leaves it.
    let cleared: Vec<&&str> = STORE_STAGE_IMPORTS_LEFT
        .iter()
        .filter(|m| edges.get(**m).is_none_or(|to| !to.iter().any(is_stage)))
        .collect();
    assert!(
        cleared.is_empty(),
        "these modules import no stage any more; take them off STORE_STAGE_IMPORTS_LEFT: {cleared:?}"
    );
}

#[test]
fn the_graph_sees_an_import_through_a_use_group() {
    // The checks above are only as good as the edges they read.
    let mut modules = BTreeMap::new();
    modules.insert("a".to_string(), "use crate::b::{c::D, e};".to_string());
    modules.insert("b".to_string(), String::new());
    modules.insert("b::c".to_string(), "fn f() { crate::a::g() }".to_string());
    let edges = graph(&modules);
    assert!(edges["a"].contains("b::c"));
    assert!(edges["a"].contains("b"));
    assert!(edges["b::c"].contains("a"));
    let mut done = BTreeSet::new();
    let found = circle(&edges, "a", &mut Vec::new(), &mut done);
    assert_eq!(found.unwrap(), ["a", "b::c", "a"]);
}

#[test]
fn the_layout_map_in_lib_names_every_top_level_module() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let map: String = lib
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert!(declared.len() > 10, "lib.rs declares its modules");
    let missing: Vec<&&str> = declared
        .iter()
        .filter(|m| !map.contains(&format!("[`{m}`]")))
        .collect();
    assert!(
        missing.is_empty(),
        "lib.rs's layout map does not name: {missing:?}"
    );
}
