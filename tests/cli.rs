//! The `leadgate` command line as a new user runs it: the sample file, `--out`, malformed
//! rows, `check` on broken configs, rotation that survives a restart.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::BIN;

/// A copy of the shipped config (and connectors), so a test can break it freely.
fn config_copy() -> (tempfile::TempDir, PathBuf) {
    let (dir, cfg) = support::config_copy();
    (dir, cfg)
}

fn leadgate(cfg: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(cfg)
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn edit(path: &Path, from: &str, to: &str) {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(s.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(path, s.replacen(from, to, 1)).unwrap();
}

#[test]
fn run_decides_every_sample_lead_and_reports_malformed_rows_by_line() {
    let (dir, cfg) = config_copy();
    let out = dir.path().join("decisions.jsonl");
    let sample = Path::new("config/sample-leads.csv").canonicalize().unwrap();
    let res = leadgate(
        &cfg,
        &[
            "run",
            sample.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let (stdout, stderr) = (text(&res.stdout), text(&res.stderr));
    assert!(res.status.success(), "{stderr}");

    // The malformed rows listed beside the sample, each reported with its line.
    let listed = std::fs::read_to_string("config/sample-leads.MALFORMED.md").unwrap();
    let mut expected_lines = 0;
    for line in [18, 45, 72, 99, 127, 154, 182, 208] {
        assert!(listed.contains(&line.to_string()));
        assert!(
            stderr.contains(&format!("line {line}:")),
            "line {line} not reported:\n{stderr}"
        );
        expected_lines += 1;
    }
    assert!(
        stdout.contains(&format!("{expected_lines} malformed rows skipped")),
        "{stdout}"
    );
    for section in ["By grade", "By route", "hit rate"] {
        assert!(stdout.contains(section), "{section} missing:\n{stdout}");
    }

    let decisions: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(decisions.len(), 240 - expected_lines);
    for d in &decisions {
        assert!(d["score"].as_i64().unwrap() <= 100);
        assert!(
            d["grade"].is_string() && d["route"]["rule"].is_string(),
            "{d}"
        );
        assert!(d["enrichment"]["providers"].is_array());
    }
    // Normalization happened: every email is trimmed and lowercase.
    for d in &decisions {
        if let Some(e) = d["email"].as_str() {
            assert_eq!(e, e.trim().to_lowercase());
        }
    }
    // Some leads were enriched from the local file, with provenance.
    let enriched = decisions
        .iter()
        .filter(|d| d["enrichment"]["fields"]["company.industry"]["provider"] == "local_file")
        .count();
    assert!(enriched > 150, "{enriched}");
    // Disposable addresses are flagged and disqualified by the shipped rules.
    assert!(decisions
        .iter()
        .any(|d| d["lead"]["email_info"]["is_disposable"] == true
            && d["route"]["action"] == "disqualify"));
}

#[test]
fn run_records_decisions_in_sqlite_and_dry_run_records_nothing() {
    let (dir, cfg) = config_copy();
    let jsonl = Path::new("config/sample-leads.jsonl")
        .canonicalize()
        .unwrap();
    let res = leadgate(&cfg, &["run", jsonl.to_str().unwrap(), "--dry-run"]);
    assert!(res.status.success());
    assert!(text(&res.stdout).contains("Dry run"));
    let db = dir.path().join("config/leadgate.db");
    assert_eq!(rusqlite_count(&db), 0);
    let res = leadgate(&cfg, &["run", jsonl.to_str().unwrap()]);
    assert!(res.status.success());
    assert_eq!(rusqlite_count(&db), 40);
}

/// Counts stored decisions through the library's store (no sqlite3 binary needed).
fn rusqlite_count(db: &Path) -> i64 {
    if !db.exists() {
        return 0;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = leadgate::store::Store::open(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        store.decision_count().await.unwrap()
    })
}

#[test]
fn round_robin_continues_across_runs() {
    let (dir, cfg) = config_copy();
    let routing = dir.path().join("config/routing.toml");
    std::fs::write(
        &routing,
        r#"
[[rule]]
id = "everyone"
when = "true"
assign = { pool = "team" }

[fallback]
enroll = { sequence = "awareness" }

[[pool]]
id = "team"
members = [{ owner = "A" }, { owner = "B" }, { owner = "C" }]
"#,
    )
    .unwrap();
    let leads = dir.path().join("two.csv");
    std::fs::write(&leads, "email\none@acme.io\ntwo@acme.io\n").unwrap();
    let out = dir.path().join("o.jsonl");
    let owners = || -> Vec<String> {
        let res = leadgate(
            &cfg,
            &[
                "run",
                leads.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert!(res.status.success(), "{}", text(&res.stderr));
        std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["route"]["owner"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(owners(), ["A", "B"]);
    assert_eq!(
        owners(),
        ["C", "A"],
        "the second run continues the rotation"
    );
}

#[test]
fn check_passes_on_the_shipped_config() {
    let res = leadgate(Path::new("config/leadgate.toml"), &["check"]);
    assert!(res.status.success(), "{}", text(&res.stderr));
    assert!(text(&res.stdout).starts_with("ok:"));
}

#[test]
fn check_names_file_rule_and_reason_for_each_problem() {
    let (dir, cfg) = config_copy();
    let scoring = dir.path().join("config/scoring.toml");
    let routing = dir.path().join("config/routing.toml");
    edit(
        &scoring,
        "company.employees >= 1000",
        "company.employees >=",
    );
    edit(&scoring, "company.country in", "company.contry in");
    edit(&routing, "pool = \"sdr\"", "pool = \"nobody\"");
    let res = leadgate(&cfg, &["check"]);
    assert_eq!(res.status.code(), Some(1));
    let err = text(&res.stderr);
    assert!(
        err.contains("scoring.toml:") && err.contains("rule \"enterprise\" when: CEL syntax error"),
        "{err}"
    );
    assert!(err.contains("unknown field `company.contry`"), "{err}");
    assert!(
        err.contains("routing.toml:") && err.contains("pool \"nobody\" does not exist"),
        "{err}"
    );
}

#[test]
fn check_also_validates_crm_delivery() {
    let (dir, cfg) = config_copy();
    let config = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        config.replace("[delivery]", "[delivery]\ntarget = \"nocrm\""),
    )
    .unwrap();
    let res = leadgate(&cfg, &["check"]);
    assert_eq!(res.status.code(), Some(1));
    let err = text(&res.stderr);
    assert!(err.contains("delivery") && err.contains("nocrm"), "{err}");
    drop(dir);
}

#[test]
fn a_bad_config_file_is_a_user_error() {
    let (dir, cfg) = config_copy();
    edit(&cfg, "[server]", "[server]\nlisten_adress = \"x\"");
    let res = leadgate(&cfg, &["run", "config/sample-leads.csv"]);
    assert_eq!(res.status.code(), Some(1));
    assert!(text(&res.stderr).contains("listen_adress"));
    drop(dir);
}

#[test]
fn explain_prints_enrichment_factors_and_route() {
    let (dir, cfg) = config_copy();
    let lead = dir.path().join("lead.json");
    std::fs::write(
        &lead,
        r#"{"email": "maya@acme.io", "title": "VP Engineering"}"#,
    )
    .unwrap();
    let res = leadgate(&cfg, &["explain", lead.to_str().unwrap()]);
    assert!(res.status.success(), "{}", text(&res.stderr));
    let out = text(&res.stdout);
    for part in [
        "Enrichment",
        "local_file",
        "Score",
        "vp-or-head",
        "Route: rule",
    ] {
        assert!(out.contains(part), "{part} missing:\n{out}");
    }
}
