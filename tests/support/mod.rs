//! Test harness: the real `leadgate` binary on an ephemeral loopback port with a temporary
//! SQLite file, and helpers to talk to it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_leadgate");

/// A running `leadgate serve`.
pub struct Daemon {
    pub child: Child,
    pub base: String,
}

impl Daemon {
    /// Starts `leadgate serve` on 127.0.0.1:0 with the shipped config and `db` as its store.
    pub fn start(db: &Path, workers: usize, extra_env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .env(
                "LEADGATE__STORAGE__URL",
                format!("sqlite://{}", db.display()),
            )
            .env("LEADGATE__SERVER__WORKERS", workers.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start leadgate serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("leadgate listening on ") {
                        break url.trim().to_string();
                    }
                }
                _ => panic!("leadgate serve exited before listening"),
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Daemon { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The daemon's Prometheus page (`GET /metrics`).
    pub async fn metrics(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit; returns whether it exited 0.
    pub fn terminate(mut self, within: Duration) -> bool {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("leadgate.db");
    (dir, db)
}

/// The SQLite store at `db`, opened in this process (migrations applied).
pub async fn open_store(db: &Path) -> leadgate::store::Store {
    leadgate::store::Store::open(&format!("sqlite://{}", db.display()))
        .await
        .expect("open the SQLite store")
}

/// Polls `GET /v1/leads/{id}` until its status is one of `want` (bounded).
pub async fn wait_for_status(
    client: &reqwest::Client,
    d: &Daemon,
    id: &str,
    want: &[&str],
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body: serde_json::Value = client
            .get(d.url(&format!("/v1/leads/{id}")))
            .send()
            .await
            .expect("GET lead")
            .json()
            .await
            .expect("JSON");
        if want.iter().any(|w| body["status"] == *w) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "lead {id} never reached {want:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- PostgreSQL and replicas (tests built with `--features postgres-tests`) ----------------

/// The throwaway PostgreSQL server scripts/test.sh started, as a URL to its `postgres`
/// database. Fails (never skips) when it is not set.
pub fn postgres_url() -> String {
    match std::env::var("LEADGATE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "LEADGATE_TEST_POSTGRES_URL is not set: these tests need a PostgreSQL server. \
             Run them through scripts/test.sh (it installs and starts one on 127.0.0.1), e.g. \
             `scripts/test.sh --test replicas`"
        ),
    }
}

/// A new, empty database on the test server, so each test starts clean; returns its URL.
pub async fn fresh_postgres_db() -> String {
    use sqlx::Connection;
    let base = postgres_url();
    let name = format!("leadgate_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to LEADGATE_TEST_POSTGRES_URL ({base}): {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE");
    let _ = conn.close().await;
    let (prefix, _) = base
        .rsplit_once('/')
        .expect("LEADGATE_TEST_POSTGRES_URL ends in /DATABASE");
    format!("{prefix}/{name}")
}

/// Runs the restart command scripts/test.sh provides: PostgreSQL goes down (connections cut)
/// for `down`, then comes back. Blocking; call it from a blocking thread.
pub fn restart_postgres(down: Duration) {
    let script = std::env::var("LEADGATE_TEST_POSTGRES_RESTART")
        .expect("LEADGATE_TEST_POSTGRES_RESTART is not set: run the tests through scripts/test.sh");
    let status = Command::new(&script)
        .arg(down.as_secs().to_string())
        .status()
        .expect("run the PostgreSQL restart script");
    assert!(status.success(), "restarting PostgreSQL failed: {status}");
}

impl Daemon {
    /// Starts `leadgate serve` on 127.0.0.1:0 with the shipped config and `url` as its store
    /// (`postgres://...` or `sqlite://...`).
    pub fn start_with_store(url: &str, workers: usize, extra_env: &[(&str, &str)]) -> Daemon {
        let mut env: Vec<(&str, &str)> = vec![("LEADGATE__STORAGE__URL", url)];
        env.extend_from_slice(extra_env);
        // The placeholder path is overridden by the URL above (later env wins).
        Daemon::start(Path::new("unused.db"), workers, &env)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Daemon {
    /// Starts `leadgate serve` with `config` (through LEADGATE_CONFIG) instead of the shipped
    /// config, and `db` as its store.
    pub fn start_with_config(
        config: &Path,
        db: &Path,
        workers: usize,
        extra_env: &[(&str, &str)],
    ) -> Daemon {
        let config = config.display().to_string();
        let mut env: Vec<(&str, &str)> = vec![("LEADGATE_CONFIG", config.as_str())];
        env.extend_from_slice(extra_env);
        Daemon::start(db, workers, &env)
    }
}

/// A copy of the repository's `config/` and `connectors/` folders, side by side as in the
/// repository (the config names `../connectors`), so a test can change them freely.
/// Returns the temp dir and the copied `leadgate.toml`.
pub fn config_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    for folder in ["config", "connectors"] {
        let to = dir.path().join(folder);
        std::fs::create_dir_all(&to).expect("mkdir");
        for entry in std::fs::read_dir(folder).expect("read folder") {
            let p = entry.expect("entry").path();
            let name = p.file_name().expect("name").to_string_lossy().to_string();
            if p.is_file() && !name.contains(".db") {
                std::fs::copy(&p, to.join(&name)).expect("copy");
            }
        }
    }
    let cfg = dir.path().join("config").join("leadgate.toml");
    (dir, cfg)
}

/// A path inside the repository, as text for a config file.
pub fn repo_path(p: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(p)
        .display()
        .to_string()
}

/// A config folder: the shipped scoring, connectors, email lists and local firmographics,
/// `routing` as its routing.toml, and `extra` appended to leadgate.toml. Returns the folder
/// and the leadgate.toml path.
pub fn shipped_config(routing: &str, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("routing.toml"), routing).unwrap();
    let text = format!(
        r#"scoring = "{scoring}"
routing = "routing.toml"
connectors = "{connectors}"
[normalize]
free_email_domains = "{free}"
disposable_email_domains = "{disposable}"
[enrichment]
waterfall = ["local_file"]
[providers.local_file]
file = "{firmographics}"
{extra}
"#,
        scoring = repo_path("config/scoring.toml"),
        connectors = repo_path("connectors"),
        free = repo_path("config/free-email-domains.txt"),
        disposable = repo_path("config/disposable-email-domains.txt"),
        firmographics = repo_path("config/firmographics.csv"),
    );
    let file = dir.path().join("leadgate.toml");
    std::fs::write(&file, text).unwrap();
    (dir, file)
}

/// Backfill progress (migration 0019), the same on both backends: an unfinished pass is
/// continued at its cursor with its counts; a finished one begins again at the next
/// generation; another filter is another pass.
pub async fn assert_backfill_progress_rules(store: &leadgate::store::Store) {
    let mut run = store.backfill_start("hubspot", "p1").await.unwrap();
    assert_eq!(
        (run.generation, run.cursor.clone(), run.resumed),
        (1, None, false)
    );
    run.pages = 1;
    run.counts.read = 200;
    run.counts.failed.insert("VALIDATION_ERROR".into(), 1);
    store
        .backfill_commit(&run, Some("2000"), false)
        .await
        .unwrap();

    let again = store.backfill_start("hubspot", "p1").await.unwrap();
    assert!(again.resumed);
    assert_eq!(again.cursor.as_deref(), Some("2000"));
    assert_eq!(again.pages, 1);
    assert_eq!(again.counts, run.counts);
    // Another filter is another pass.
    assert_eq!(
        store
            .backfill_start("hubspot", "p2")
            .await
            .unwrap()
            .generation,
        1
    );

    store.backfill_commit(&again, None, true).await.unwrap();
    let renewed = store.backfill_start("hubspot", "p1").await.unwrap();
    assert_eq!(
        (renewed.generation, renewed.cursor, renewed.resumed),
        (2, None, false)
    );
    assert_eq!(renewed.counts.read, 0);
}

/// A touch finds the lead it names before any worker decided it, by the lead's id or its
/// job's, the same on both backends (SQLite keeps such a lead pending, migration 0010); an
/// unknown id names nobody.
pub async fn assert_touch_finds_an_undecided_lead(
    store: &leadgate::store::Store,
    pipeline: &leadgate::pipeline::Pipeline,
) {
    let raw = leadgate::lead::RawLead(
        serde_json::json!({"email": "pending.touch@acme.io"})
            .as_object()
            .cloned()
            .expect("object"),
    );
    let lead = pipeline.normalize(&raw).expect("valid lead");
    let accepted = store.accept(&lead, &raw, None).await.expect("accept");
    let at = chrono::Utc::now();
    for id in [&accepted.id, &accepted.job_id] {
        let touched = store
            .record_touch(id, Some("a"), Some("call"), at)
            .await
            .expect("touch")
            .expect("the undecided lead is found");
        assert_eq!(
            (touched.lead_id.as_str(), touched.sla_met),
            (accepted.id.as_str(), 0)
        );
    }
    assert!(store
        .record_touch("no-such-lead", None, None, at)
        .await
        .expect("touch")
        .is_none());
}
