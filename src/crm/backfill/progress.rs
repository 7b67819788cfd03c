//! The backfill's progress on stderr: an `indicatif` bar with rate and ETA on a terminal;
//! otherwise (a log, a pipe) one line every `every`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    connector: String,
    every: Duration,
    started: Instant,
    last_line: Instant,
    done: u64,
    total: Option<u64>,
}

impl Progress {
    pub fn new(connector: &str, every: Duration, already: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {prefix} [{bar:30}] {pos}/{len} records  {per_sec}  ETA {eta}  {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(connector.to_string());
            bar.set_position(already);
            bar
        });
        Self {
            bar,
            connector: connector.to_string(),
            every,
            started: Instant::now(),
            last_line: Instant::now(),
            done: already,
            total: None,
        }
    }

    /// How many records match in all, once the CRM says.
    pub fn set_total(&mut self, total: u64) {
        self.total = Some(total);
        if let Some(b) = &self.bar {
            b.set_length(total);
        }
    }

    pub fn advance(&mut self, records: u64, written: u64, failed: u64) {
        self.done += records;
        let msg = format!("{written} written, {failed} failed");
        match &self.bar {
            Some(b) => {
                b.set_position(self.done);
                b.set_message(msg);
            }
            None if self.last_line.elapsed() >= self.every => {
                self.last_line = Instant::now();
                let secs = self.started.elapsed().as_secs_f64().max(0.001);
                let rate = self.done as f64 / secs;
                let eta = match self.total {
                    Some(t) if rate > 0.0 && t > self.done => {
                        let left = Duration::from_secs(((t - self.done) as f64 / rate) as u64);
                        format!(", ETA {}", humantime::format_duration(left))
                    }
                    _ => String::new(),
                };
                let of = self.total.map(|t| format!("/{t}")).unwrap_or_default();
                eprintln!(
                    "backfill {}: {}{of} records, {rate:.0}/s{eta}; {msg}",
                    self.connector, self.done
                );
            }
            None => {}
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
