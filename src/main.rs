//! The `leadgate` command line: parse, load settings, call the library. Exit codes: 0 ok,
//! 1 a user error (bad input or config, with a message), 2 an internal failure.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use leadgate::batch::{self, RunOptions};
use leadgate::lead::RawLead;
use leadgate::pipeline::Pipeline;
use leadgate::route::{LocalAssignments, LocalRotation};
use leadgate::settings::Settings;
use leadgate::store::Store;

#[derive(Parser)]
#[command(name = "leadgate", version, about = "Enrich, score and route B2B leads — and record why.")]
struct Cli {
    /// The main config file; relative paths inside it resolve against its folder.
    #[arg(long, global = true, default_value = "config/leadgate.toml", env = "LEADGATE_CONFIG")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enrich, score and route every lead in a CSV or JSONL file.
    Run {
        file: PathBuf,
        /// Write one JSON decision per lead to this file.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Decide without recording or delivering anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Run the daemon: HTTP intake, workers, metrics.
    Serve {
        /// Listen address (overrides [server] listen).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Validate config, rules and providers; exit 1 on any error.
    Check,
    /// Explain one lead: an email, or a JSON file with one lead.
    Explain {
        lead: String,
        /// Print the decision as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Dry-run the current rules over a file of past leads.
    Simulate { file: PathBuf },
}

/// A failure, tagged with who can fix it.
enum Failure {
    User(anyhow::Error),
    Internal(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Internal(e.into())
    }
}

fn user(e: impl Into<anyhow::Error>) -> Failure {
    Failure::User(e.into())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Serve { .. }) { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::User(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
        Err(Failure::Internal(e)) => {
            eprintln!("internal error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(cli: Cli) -> Result<(), Failure> {
    let settings = Settings::load(&cli.config).map_err(user)?;
    match cli.command {
        Command::Check => check(&settings),
        Command::Serve { listen } => leadgate::daemon::serve(settings, listen).await.map_err(|e| match e {
            leadgate::daemon::ServeError::Store(_) => Failure::Internal(e.into()),
            _ => user(e),
        }),
        Command::Run { file, out, dry_run } => run(&settings, &file, out.as_deref(), dry_run).await,
        Command::Explain { lead, json } => explain(&settings, &lead, json).await,
        Command::Simulate { file } => simulate(&settings, &file).await,
    }
}

fn check(settings: &Settings) -> Result<(), Failure> {
    match Pipeline::build(settings) {
        Ok(p) => {
            println!(
                "ok: {} — {} scoring rules, {} routing rules, providers: {}",
                settings.file.display(),
                p.scorer.rule_count(),
                p.router.rule_ids().len(),
                p.waterfall.provider_ids().join(", ")
            );
            Ok(())
        }
        Err(errors) => {
            for issue in &errors.0 {
                eprintln!("{issue}");
            }
            Err(user(anyhow::anyhow!("{} problem(s) in the configuration", errors.0.len())))
        }
    }
}

async fn open(settings: &Settings) -> Result<(Pipeline, Store), Failure> {
    let pipeline = Pipeline::build(settings).map_err(user)?;
    let store = Store::open(&settings.storage_url()).await?;
    Ok((pipeline, store))
}

async fn run(settings: &Settings, file: &Path, out: Option<&Path>, dry_run: bool) -> Result<(), Failure> {
    let (pipeline, store) = open(settings).await?;
    let summary = batch::run_file(&pipeline, &store, file, RunOptions { out, dry_run, keep_decisions: false })
        .await
        .map_err(|e| match e {
            batch::BatchError::Store(_) => Failure::Internal(e.into()),
            _ => user(e),
        })?;
    for bad in &summary.bad_rows {
        eprintln!("skipped {}: {bad}", file.display());
    }
    print!("{}", batch::render_summary(&summary, &pipeline.scorer.grade_names()));
    if let Some(o) = out {
        println!("\nDecisions written to {}", o.display());
    }
    if dry_run {
        println!("Dry run: nothing was recorded.");
    }
    Ok(())
}

async fn explain(settings: &Settings, lead: &str, json: bool) -> Result<(), Failure> {
    let (pipeline, store) = open(settings).await?;
    let raw = if Path::new(lead).is_file() {
        let text = std::fs::read_to_string(lead).with_context(|| format!("cannot read {lead}")).map_err(user)?;
        match serde_json::from_str::<serde_json::Value>(&text).map_err(user)? {
            serde_json::Value::Object(m) => RawLead(m),
            _ => return Err(user(anyhow::anyhow!("{lead}: must hold one JSON object"))),
        }
    } else {
        match store.lead_by_email(&lead.trim().to_lowercase()).await? {
            Some(stored) => stored,
            None => RawLead(serde_json::Map::from_iter([("email".to_string(), serde_json::json!(lead))])),
        }
    };
    let normalized = pipeline.normalize(&raw).map_err(user)?;
    let now = chrono::Utc::now();
    let rotation = LocalAssignments::from_snapshot(store.assignment_snapshot(now).await?);
    let decision = pipeline.decide(normalized, &rotation, now).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&decision)?);
    } else {
        print!("{}", leadgate::explain::render(&decision));
    }
    Ok(())
}

async fn simulate(settings: &Settings, file: &Path) -> Result<(), Failure> {
    let (pipeline, store) = open(settings).await?;
    let summary = batch::run_file(&pipeline, &store, file, RunOptions { out: None, dry_run: true, keep_decisions: true })
        .await
        .map_err(user)?;
    for bad in &summary.bad_rows {
        eprintln!("skipped {}: {bad}", file.display());
    }
    let rules = pipeline.router.rule_ids();
    let sim = leadgate::simulate::simulate(&summary, &rules);
    print!("{}", leadgate::simulate::render(&sim, &rules));
    Ok(())
}
