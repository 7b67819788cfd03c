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
            .env("LEADGATE__STORAGE__URL", format!("sqlite://{}", db.display()))
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

    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit; returns whether it exited 0.
    pub fn terminate(mut self, within: Duration) -> bool {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
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

/// Polls `GET /v1/leads/{id}` until its status is one of `want` (bounded).
pub async fn wait_for_status(client: &reqwest::Client, d: &Daemon, id: &str, want: &[&str]) -> serde_json::Value {
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
        assert!(Instant::now() < deadline, "lead {id} never reached {want:?}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
