//! The `leadgate` command line: parse, load settings, call the library. Exit codes: 0 ok,
//! 1 a user error (bad input or config, with a message), 2 an internal failure.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use leadgate::batch::{self, RunOptions};
use leadgate::enrich::usage;
use leadgate::lead::RawLead;
use leadgate::pipeline::Pipeline;
use leadgate::route::{LocalAssignments, LocalRotation};
use leadgate::settings::Settings;
use leadgate::store::Store;

/// mimalloc instead of glibc malloc: many small, long-lived cache entries and per-request
/// allocations across threads fragment glibc's arenas (measured: peak RSS with 100,000
/// cached companies, `cargo bench --bench e2e`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "leadgate",
    version,
    about = "Enrich, score and route B2B leads — and record why."
)]
struct Cli {
    /// The main config file; relative paths inside it resolve against its folder.
    #[arg(
        long,
        global = true,
        default_value = "config/leadgate.toml",
        env = "LEADGATE_CONFIG"
    )]
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
    /// Each connector: configured?, credentials present?, rate limit, circuit state,
    /// credits used today.
    Connectors {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Explain one lead: an email, or a JSON file with one lead.
    Explain {
        lead: String,
        /// Print the decision as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Dry-run the current rules over a file of past leads; with outcomes, conversion per
    /// score band and grade.
    Simulate {
        /// A CSV or JSONL file of past leads (omit with --from-store).
        #[arg(required_unless_present = "from_store")]
        file: Option<PathBuf>,
        /// Re-score the stored leads that have an outcome (POST /v1/outcomes) instead.
        #[arg(long, conflicts_with = "file")]
        from_store: bool,
        /// The file's outcome column (yes/no, true/false, 1/0).
        #[arg(long, default_value = "converted")]
        outcome: String,
        /// Width of a score band, in points.
        #[arg(long, default_value_t = 10)]
        band: u32,
        /// Another routing.toml: how many of the file's leads would change route, from → to.
        #[arg(long, value_name = "OTHER_ROUTING.toml", requires = "file")]
        compare: Option<PathBuf>,
        /// With --from-store: compare the recent window's leads with the model's training
        /// leads (PSI per feature and for the score; conversion by band per week).
        #[arg(long, requires = "from_store")]
        drift: bool,
        /// The recent window for --drift (`7d`, `30d`, `12h`).
        #[arg(long, default_value = "7d", requires = "drift")]
        window: String,
    },
    /// Score stored people again (issue 25): `--all` marks everyone for the next sweep of
    /// `leadgate serve` (a rules change), `--now` runs one pass here, `--dry-run` prints the
    /// grade changes a pass would make and writes nothing.
    Rescore {
        /// Everyone, not only who is due (cause `rules_change`).
        #[arg(long)]
        all: bool,
        /// Run one pass now instead of leaving it to the daemon's sweep.
        #[arg(long, conflicts_with = "dry_run")]
        now: bool,
        /// Print the grade changes it would make; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Fit the predictive model on past leads with a known outcome.
    Train {
        /// A CSV or JSONL file of past leads (or `--from-store`).
        #[arg(required_unless_present = "from_store")]
        file: Option<PathBuf>,
        /// Train on the store's decided leads with outcomes posted to /v1/outcomes (and
        /// human overrides to the top/bottom grade, weight 2) instead of a file.
        #[arg(long, conflicts_with = "file")]
        from_store: bool,
        /// With --from-store: `time` (earlier leads train, later ones judge) or `random`.
        #[arg(long, default_value = "time", value_parser = ["time", "random"], requires = "from_store")]
        split: String,
        /// The outcome column (yes/no, true/false, 1/0).
        #[arg(long, default_value = "converted")]
        outcome: String,
        /// Where to write the model (JSON).
        #[arg(long)]
        out: PathBuf,
        /// Columns or fields to leave out, comma-separated (`budget,company.industry`).
        #[arg(long, value_delimiter = ',')]
        exclude: Vec<String>,
        /// Share of leads held out for evaluation (stratified, fixed seed).
        #[arg(long, default_value_t = leadgate::score::train::DEFAULT_HOLDOUT)]
        holdout: f64,
        #[arg(long, default_value_t = leadgate::score::train::DEFAULT_SEED)]
        seed: u64,
        /// L2 penalty λ (scikit-learn's C = 1/λ), or `auto`: chosen by 5-fold
        /// cross-validation on the training split.
        #[arg(long, default_value = "auto")]
        l2: String,
        /// Pool category levels seen in fewer leads than this into `(other)`.
        #[arg(long, default_value_t = leadgate::score::train::DEFAULT_MIN_LEVEL_COUNT)]
        min_level_count: usize,
        /// `auto` (log long-tailed numbers, clip to the training range) or `raw`
        /// (standardize only, as scikit-learn's StandardScaler).
        #[arg(long, default_value = "auto", value_parser = ["auto", "raw"])]
        numeric: String,
        /// Use this column (`train` / `test`) as the split instead of a random one.
        #[arg(long)]
        split_column: Option<String>,
        /// `logistic`, `gbm` (gradient-boosted trees) or `auto`: both on the same split, the
        /// better holdout ROC AUC kept (a tie keeps logistic).
        #[arg(long, default_value = "auto", value_parser = ["auto", "logistic", "gbm"])]
        model: String,
        /// Stratified k-fold cross-validation on the training rows: picks λ and the model
        /// kind, and fits the calibration on the out-of-fold predictions.
        #[arg(long, default_value_t = leadgate::score::train::DEFAULT_FOLDS)]
        folds: usize,
        /// The deepest a gbm tree grows, 1 to 12 (shallower trees explain a lead faster).
        #[arg(long, default_value_t = leadgate::score::gbm::GbmOptions::default().max_depth,
              value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=12))]
        max_depth: usize,
    },
    /// Inspect a model file.
    Model {
        #[command(subcommand)]
        action: ModelAction,
    },
    /// Re-process the records a CRM already holds (after a rules change): page through
    /// them, enrich, score and route each, and write what changed back in batches.
    /// Resumable: run the same command again after an interruption.
    Backfill {
        /// The CRM: hubspot, salesforce or pipedrive (its [providers.ID] credentials).
        #[arg(long = "crm")]
        connector: String,
        /// Only records modified on or after this day (YYYY-MM-DD) or time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// A CEL condition on the record as a lead, before enrichment
        /// (`lead.country == "US"`, `email.is_free == false`).
        #[arg(long)]
        filter: Option<String>,
        /// Decide and print what would change; write nothing to the CRM or the store.
        #[arg(long)]
        dry_run: bool,
        /// Stop after this many records (a real run finishes the page it is on).
        #[arg(long)]
        limit: Option<u64>,
        /// Without a terminal, print a progress line this often.
        #[arg(long, default_value = "10s")]
        progress_every: String,
    },
    /// CRM connections: `crm connect hubspot --code ... --redirect-uri ...` (OAuth public app).
    Crm {
        #[command(subcommand)]
        action: CrmAction,
    },
}

#[derive(Subcommand)]
enum CrmAction {
    /// Trade an OAuth authorization code (from the app's install redirect) for a refresh
    /// token, kept in the store for `serve`.
    Connect {
        /// The connector (`hubspot`).
        connector: String,
        #[arg(long)]
        code: String,
        /// The redirect URI the app's install link used (must match exactly).
        #[arg(long)]
        redirect_uri: String,
    },
}

#[derive(Subcommand)]
enum ModelAction {
    /// Print a model file's kind, features, metrics, training data digest and creation time.
    Show { file: PathBuf },
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
    let default_level = if matches!(cli.command, Command::Serve { .. }) {
        "info"
    } else {
        "warn"
    };
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
    // A model file is read on its own: no config needed to inspect one.
    if let Command::Model {
        action: ModelAction::Show { file },
    } = &cli.command
    {
        let model = leadgate::score::Model::load(file).map_err(user)?;
        print!("{}", model.summary());
        return Ok(());
    }
    let settings = Settings::load(&cli.config).map_err(user)?;
    match cli.command {
        Command::Check => check(&settings),
        Command::Connectors { json } => connectors(&settings, json).await,
        Command::Serve { listen } => leadgate::daemon::serve(settings, listen)
            .await
            .map_err(|e| match e {
                leadgate::daemon::ServeError::Store(_) => Failure::Internal(e.into()),
                _ => user(e),
            }),
        Command::Run { file, out, dry_run } => run(&settings, &file, out.as_deref(), dry_run).await,
        Command::Explain { lead, json } => explain(&settings, &lead, json).await,
        Command::Rescore { all, now, dry_run } => rescore(&settings, all, now, dry_run).await,
        Command::Simulate {
            file,
            from_store,
            outcome,
            band,
            compare,
            drift,
            window,
        } => {
            if drift {
                return drift_report(&settings, &window).await;
            }
            simulate(&settings, file.as_deref(), from_store, &outcome, band).await?;
            match (compare, file) {
                (Some(other), Some(file)) => compare_routing(&settings, &file, &other).await,
                _ => Ok(()),
            }
        }
        Command::Train {
            file,
            from_store,
            split,
            outcome,
            out,
            exclude,
            holdout,
            seed,
            l2,
            min_level_count,
            numeric,
            split_column,
            model,
            folds,
            max_depth,
        } => {
            let l2 = match l2.as_str() {
                "auto" => None,
                n => Some(n.parse::<f64>().map_err(|_| {
                    user(anyhow::anyhow!("--l2 `{n}`: give a number ≥ 0 or `auto`"))
                })?),
            };
            let opts = leadgate::score::train::TrainOptions {
                model: match model.as_str() {
                    "logistic" => leadgate::score::train::ModelChoice::Logistic,
                    "gbm" => leadgate::score::train::ModelChoice::Gbm,
                    _ => leadgate::score::train::ModelChoice::Auto,
                },
                outcome,
                exclude,
                holdout,
                seed,
                l2,
                min_level_count,
                numeric: if numeric == "raw" {
                    leadgate::score::train::NumericPrep::Raw
                } else {
                    leadgate::score::train::NumericPrep::Auto
                },
                split_column,
                folds,
                max_depth,
            };
            match file {
                Some(file) if !from_store => train(&settings, &file, &out, &opts).await,
                _ => train_from_store(&settings, &split, &out, opts).await,
            }
        }
        Command::Model { .. } => unreachable!("handled before the config is loaded"),
        Command::Backfill {
            connector,
            since,
            filter,
            dry_run,
            limit,
            progress_every,
        } => {
            backfill(
                &settings,
                connector,
                since.as_deref(),
                filter,
                dry_run,
                limit,
                &progress_every,
            )
            .await
        }
        Command::Crm {
            action:
                CrmAction::Connect {
                    connector,
                    code,
                    redirect_uri,
                },
        } => {
            let crm = leadgate::crm::Crm::build(&settings)
                .map_err(user)?
                .ok_or_else(|| {
                    user(anyhow::anyhow!(
                        "no CRM connector is configured: set [providers.{connector}]"
                    ))
                })?;
            let store = leadgate::store::Store::open(&settings.storage_url()).await?;
            leadgate::crm::tokens::connect(&crm, &store, &connector, &code, &redirect_uri)
                .await
                .map_err(user)?;
            println!("ok: {connector} connected; the refresh token is kept in the store for `leadgate serve`");
            Ok(())
        }
    }
}

fn check(settings: &Settings) -> Result<(), Failure> {
    // The pipeline and the CRM side ([delivery], [intake.poll], CRM credentials) are checked
    // together, so every problem shows in one pass.
    let pipeline = Pipeline::build(settings);
    let crm = leadgate::crm::Crm::build(settings);
    if let Ok(p) = &pipeline {
        model_features_producible(p, settings)?;
    }
    // `[[alert]]` (issue 25): its issues join the others'.
    let alerts = leadgate::alert::AlertSet::from_settings(settings);
    match (pipeline, crm) {
        (Ok(mut p), Ok(crm)) if alerts.is_ok() => {
            leadgate::rescore::RescorePolicy::from_settings(settings, &p.scorer)
                .map_err(|e| user(anyhow::anyhow!("{}: rescore: {e}", settings.file.display())))?;
            // `[account_match] source = "crm"` needs a searchable CRM connector.
            leadgate::crm::account_match::attach(&mut p.router, crm.as_deref())
                .map_err(|e| user(anyhow::anyhow!("{}: {e}", settings.file.display())))?;
            println!(
                "ok: {} — {} scoring rules, {} routing rules, providers: {}; delivery: {}",
                settings.file.display(),
                p.scorer.rule_count(),
                p.router.rule_ids().len(),
                p.waterfall.provider_ids().join(", "),
                settings
                    .config
                    .delivery
                    .target
                    .as_deref()
                    .filter(|_| crm.is_some())
                    .unwrap_or("none (decisions are recorded, not written to a CRM)")
            );
            if let (Ok(set), Some(file)) = (&alerts, leadgate::alert::config::file_for(settings)) {
                println!("ok: {} — {} alert(s)", file.display(), set.rules.len());
            }
            Ok(())
        }
        (pipeline, crm) => {
            let mut issues = Vec::new();
            if let Err(e) = pipeline {
                issues.extend(e.0);
            }
            if let Err(e) = crm {
                issues.extend(e.0);
            }
            if let Err(e) = alerts {
                issues.extend(e.0);
            }
            for issue in &issues {
                eprintln!("{issue}");
            }
            Err(user(anyhow::anyhow!(
                "{} problem(s) in the configuration",
                issues.len()
            )))
        }
    }
}

/// `check`: every feature the configured model needs must be one the config can produce.
fn model_features_producible(p: &Pipeline, settings: &Settings) -> Result<(), Failure> {
    let Some(model) = p.scorer.model() else {
        return Ok(());
    };
    let missing = leadgate::score::producible::unproducible(model, &p.waterfall.provider_ids());
    for m in &missing {
        eprintln!(
            "{}: [model] needs feature `{}`, which this configuration cannot produce: {}",
            settings.config.scoring.display(),
            m.feature,
            m.reason
        );
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(user(anyhow::anyhow!(
            "{} model feature(s) the configuration cannot produce; retrain (`leadgate train`) or configure their source",
            missing.len()
        )))
    }
}

/// `leadgate rescore` (issue 25; src/rescore).
async fn rescore(settings: &Settings, all: bool, now: bool, dry_run: bool) -> Result<(), Failure> {
    use leadgate::rescore;
    let (pipeline, store) = open(settings).await?;
    let policy = rescore::RescorePolicy::from_settings(settings, &pipeline.scorer).map_err(user)?;
    let services = std::sync::Arc::new(leadgate::services::Services::new(pipeline, store));
    let at = chrono::Utc::now();
    if dry_run {
        let (scored, changes) = rescore::preview(&services, &policy, at, all)
            .await
            .map_err(user)?;
        print!("{}", rescore::render(scored, &changes));
        return Ok(());
    }
    if all {
        let marked = rescore::mark_all(&services.store).await.map_err(user)?;
        println!("marked {marked} people for re-scoring (cause rules_change)");
    }
    if now {
        let r = rescore::sweep_once(&services, &policy, at)
            .await
            .map_err(user)?;
        println!(
            "re-scored {} people: {} scores moved, {} grades moved",
            r.scored,
            r.changed,
            r.grade_changes.len()
        );
        for c in &r.grade_changes {
            println!(
                "  {}  {} ({}) → {} ({})  {}",
                c.lead_id,
                c.previous_grade,
                c.previous_score,
                c.grade,
                c.score,
                c.cause.as_str()
            );
        }
    } else if !all {
        let due = services.store.rescore_due(at.timestamp_millis()).await?;
        println!("{due} people are due for re-scoring; the next sweep of `leadgate serve` scores them (or run `leadgate rescore --now`)");
    }
    Ok(())
}

async fn open(settings: &Settings) -> Result<(Pipeline, Store), Failure> {
    let pipeline = Pipeline::build(settings).map_err(user)?;
    let store = Store::open(&settings.storage_url()).await?;
    Ok((pipeline, store))
}

async fn run(
    settings: &Settings,
    file: &Path,
    out: Option<&Path>,
    dry_run: bool,
) -> Result<(), Failure> {
    let (pipeline, store) = open(settings).await?;
    // Paid calls cost the same in a dry run: budgets go on from today's credits so far, and
    // this run's are added for the next.
    usage::sync_or_warn(&pipeline.waterfall, &store).await;
    let summary = batch::run_file(
        &pipeline,
        &store,
        file,
        RunOptions {
            out,
            dry_run,
            keep_decisions: false,
        },
    )
    .await
    .map_err(|e| match e {
        batch::BatchError::Store(_) => Failure::Internal(e.into()),
        _ => user(e),
    })?;
    usage::sync_or_warn(&pipeline.waterfall, &store).await;
    for bad in &summary.bad_rows {
        eprintln!("skipped {}: {bad}", file.display());
    }
    for line in &summary.suppressed {
        eprintln!(
            "skipped {}: line {line}: suppressed (this person asked to be erased)",
            file.display()
        );
    }
    print!(
        "{}",
        batch::render_summary(&summary, &pipeline.scorer.grade_names())
    );
    if let Some(o) = out {
        println!("\nDecisions written to {}", o.display());
    }
    if dry_run {
        println!("Dry run: no decision was recorded (paid enrichment calls still count toward today's budgets).");
    }
    Ok(())
}

async fn explain(settings: &Settings, lead: &str, json: bool) -> Result<(), Failure> {
    let (pipeline, store) = open(settings).await?;
    let raw = if Path::new(lead).is_file() {
        let text = std::fs::read_to_string(lead)
            .with_context(|| format!("cannot read {lead}"))
            .map_err(user)?;
        match serde_json::from_str::<serde_json::Value>(&text).map_err(user)? {
            serde_json::Value::Object(m) => RawLead(m),
            _ => return Err(user(anyhow::anyhow!("{lead}: must hold one JSON object"))),
        }
    } else {
        match store.lead_by_email(&lead.trim().to_lowercase()).await? {
            Some(stored) => stored,
            None => RawLead(serde_json::Map::from_iter([(
                "email".to_string(),
                serde_json::json!(lead),
            )])),
        }
    };
    let normalized = pipeline.normalize(&raw).map_err(user)?;
    // An erased person is not enriched or scored again, not even to explain.
    if let Some(email) = &normalized.email {
        if store.is_suppressed(email).await? {
            return Err(user(leadgate::store::StoreError::Suppressed));
        }
    }
    let now = chrono::Utc::now();
    let rotation = LocalAssignments::from_snapshot(store.assignment_snapshot(now).await?);
    let mut decision = pipeline.decide(normalized, &rotation, now).await?;
    // A stored lead's human override wins, as it does for the worker (issue 24).
    let mut at_rest = String::new();
    if let Some(email) = decision.lead.email.clone() {
        if let Some(id) = store.lead_id_by_email(&email).await? {
            if let Some(o) = store.active_override(&id).await? {
                leadgate::console::overrides::apply(&mut decision, &o);
            }
            // The stored score's moves at rest (issue 25), beside today's evaluation.
            if let Some(view) = store.lead(&id).await? {
                at_rest = leadgate::rescore::history_lines(&view.history);
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&decision)?);
    } else {
        print!("{}", leadgate::explain::render(&decision));
        print!("{at_rest}");
    }
    Ok(())
}

async fn simulate(
    settings: &Settings,
    file: Option<&Path>,
    from_store: bool,
    outcome: &str,
    band: u32,
) -> Result<(), Failure> {
    let (pipeline, store) = open(settings).await?;
    let (summary, outcomes) = match file {
        Some(file) if !from_store => {
            // Past leads arrived over many days and hours: rotations start fresh, and
            // capacities and working hours do not apply (see route::LocalAssignments).
            let summary = batch::run_file_with(
                &pipeline,
                &store,
                file,
                RunOptions {
                    out: None,
                    dry_run: true,
                    keep_decisions: true,
                },
                &LocalAssignments::simulation(),
            )
            .await
            .map_err(user)?;
            for bad in &summary.bad_rows {
                eprintln!("skipped {}: {bad}", file.display());
            }
            let outcomes: Vec<Option<bool>> = summary
                .decisions
                .iter()
                .map(|d| leadgate::simulate::outcome_of(d, outcome))
                .collect();
            (summary, outcomes)
        }
        _ => {
            // The stored leads with outcomes, re-scored by the current rules (a dry run).
            let rotation = LocalRotation::starting_at(store.rotation_positions().await?);
            let mut summary = batch::Summary::default();
            let mut outcomes = Vec::new();
            let now = chrono::Utc::now();
            for stored in store.outcome_leads().await? {
                summary.rows += 1;
                summary
                    .decisions
                    .push(pipeline.decide(stored.lead, &rotation, now).await?);
                outcomes.push(Some(stored.converted));
            }
            summary.decided = summary.decisions.len();
            println!(
                "{} stored leads with an outcome, re-scored by the current rules",
                summary.decided
            );
            (summary, outcomes)
        }
    };
    let rules = pipeline.router.rule_ids();
    let sim = leadgate::simulate::simulate(&summary, &rules);
    print!("{}", leadgate::simulate::render(&sim, &rules));
    let named: Vec<(String, Vec<String>)> = pipeline
        .scorer
        .score_ids()
        .into_iter()
        .skip(1)
        .filter_map(|id| pipeline.scorer.grade_names_of(&id).map(|g| (id, g)))
        .collect();
    let decided: Vec<(&leadgate::lead::Decision, Option<bool>)> =
        summary.decisions.iter().zip(outcomes).collect();
    let report = leadgate::simulate::conversion_report(
        &decided,
        outcome,
        band,
        &pipeline.scorer.grade_names(),
        &named,
    );
    print!("{}", leadgate::simulate::render_conversion(&report));
    Ok(())
}

async fn train(
    settings: &Settings,
    file: &Path,
    out: &Path,
    opts: &leadgate::score::train::TrainOptions,
) -> Result<(), Failure> {
    use leadgate::score::train;
    let pipeline = Pipeline::build(settings).map_err(user)?;
    let loaded = train::load_examples(&pipeline, file, opts)
        .await
        .map_err(user)?;
    for bad in loaded.skipped.iter().take(20) {
        eprintln!("skipped {}: {bad}", file.display());
    }
    if loaded.skipped.len() > 20 {
        eprintln!("... and {} more rows skipped", loaded.skipped.len() - 20);
    }
    let (model, report) =
        train::fit(&loaded.examples, &file.display().to_string(), opts).map_err(user)?;
    model.save(out).map_err(user)?;
    print!("{}", train::render(&report, out));
    Ok(())
}

/// `simulate --from-store --drift`: recent decisions against the model's training leads.
async fn drift_report(settings: &Settings, window: &str) -> Result<(), Failure> {
    use leadgate::score::drift;
    let span = humantime::parse_duration(window).map_err(|e| {
        user(anyhow::anyhow!(
            "--window `{window}`: {e} (e.g. 7d, 30d, 12h)"
        ))
    })?;
    let (pipeline, store) = open(settings).await?;
    let Some(model) = pipeline.scorer.model() else {
        return Err(user(anyhow::anyhow!(
            "--drift needs a model: set [model] path in {}",
            settings.config.scoring.display()
        )));
    };
    let Some(baseline) = &model.training_distribution else {
        return Err(user(anyhow::anyhow!(
            "the model was trained before model files recorded their training distribution; retrain it (`leadgate train`) to compare against"
        )));
    };
    let since = chrono::Utc::now()
        - chrono::Duration::from_std(span).map_err(|e| user(anyhow::anyhow!("--window: {e}")))?;
    let recent = leadgate::score::store_training::recent(&store, since)
        .await
        .map_err(user)?;
    let report = drift::compare(model, baseline, &recent);
    print!("{}", drift::render(&report, baseline, window));
    Ok(())
}

/// `train --from-store`: the store's labelled leads, split by time or at random.
async fn train_from_store(
    settings: &Settings,
    split: &str,
    out: &Path,
    mut opts: leadgate::score::train::TrainOptions,
) -> Result<(), Failure> {
    use leadgate::score::store_training::{self, StoreSplit};
    use leadgate::score::train;
    if opts.outcome != "converted" {
        return Err(user(anyhow::anyhow!(
            "--outcome {}: the store records one outcome, `converted` (POST /v1/outcomes)",
            opts.outcome
        )));
    }
    let (pipeline, store) = open(settings).await?;
    let how = if split == "random" {
        StoreSplit::Random
    } else {
        StoreSplit::Time
    };
    let loaded = store_training::load(
        &store,
        &pipeline.scorer.grade_names(),
        &opts.exclude,
        opts.holdout,
        how,
        opts.seed,
    )
    .await
    .map_err(user)?;
    if loaded.skipped > 0 {
        eprintln!(
            "skipped {} lead(s) with an outcome but no stored decision to learn from",
            loaded.skipped
        );
    }
    // The holdout flags are set by lead; fit follows them.
    opts.split_column = Some(format!("--split {split}"));
    // The backend only: a PostgreSQL URL may carry a password, and model files get shared.
    let source = if leadgate::store::is_postgres_url(&settings.storage_url()) {
        "store (postgres)"
    } else {
        "store (sqlite)"
    };
    let (mut model, mut report) = train::fit(&loaded.examples, source, &opts).map_err(user)?;
    report.split = match (how, loaded.cut) {
        (StoreSplit::Time, Some(cut)) => format!(
            "by time: trained on leads decided before {}, judged on those from then on ({} outcomes, {} overrides × {})",
            cut.to_rfc3339(),
            loaded.outcomes,
            loaded.overrides,
            store_training::OVERRIDE_WEIGHT
        ),
        _ => format!(
            "random by lead ({} outcomes, {} overrides × {})",
            loaded.outcomes,
            loaded.overrides,
            store_training::OVERRIDE_WEIGHT
        ),
    };
    if let serde_json::Value::Object(m) = &mut model.metrics {
        m.insert("split".into(), serde_json::json!(report.split));
        m.insert("outcomes".into(), serde_json::json!(loaded.outcomes));
        m.insert("overrides".into(), serde_json::json!(loaded.overrides));
        if let Some(cut) = loaded.cut {
            m.insert("cut".into(), serde_json::json!(cut.to_rfc3339()));
        }
    }
    model.save(out).map_err(user)?;
    print!("{}", train::render(&report, out));
    Ok(())
}

/// `simulate FILE --compare OTHER`: the file routed by the current rules and by `other`,
/// both as dry runs over fresh in-memory rotations; nothing is written.
async fn compare_routing(settings: &Settings, file: &Path, other: &Path) -> Result<(), Failure> {
    let (pipeline, store) = open(settings).await?;
    let mut other_settings = settings.clone();
    other_settings.config.routing = std::path::absolute(other).map_err(user)?;
    let other_pipeline = Pipeline::build(&other_settings).map_err(user)?;
    let opts = || RunOptions {
        out: None,
        dry_run: true,
        keep_decisions: true,
    };
    let current = batch::run_file_with(
        &pipeline,
        &store,
        file,
        opts(),
        &LocalAssignments::simulation(),
    )
    .await
    .map_err(user)?;
    let changed = batch::run_file_with(
        &other_pipeline,
        &store,
        file,
        opts(),
        &LocalAssignments::simulation(),
    )
    .await
    .map_err(user)?;
    let c = leadgate::route::compare::compare(
        &current.decisions,
        &changed.decisions,
        &other_pipeline.router.rule_ids(),
    );
    print!(
        "{}",
        leadgate::route::compare::render(&c, &other.display().to_string())
    );
    Ok(())
}

/// `leadgate connectors`: every manifest and waterfall provider, with its health; credits
/// used today are every process's, as the store has them.
async fn connectors(settings: &Settings, json: bool) -> Result<(), Failure> {
    let pipeline = Pipeline::build(settings).map_err(user)?;
    match Store::open(&settings.storage_url()).await {
        Ok(store) => usage::sync_or_warn(&pipeline.waterfall, &store).await,
        Err(e) => eprintln!("note: credits used today are this process's only: {e}"),
    }
    let reports = pipeline.connectors.report(&pipeline.waterfall);
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        print!("{}", leadgate::enrich::report::render(&reports));
    }
    Ok(())
}

/// `leadgate backfill --crm ID`: see `leadgate::crm::backfill`.
async fn backfill(
    settings: &Settings,
    connector: String,
    since: Option<&str>,
    filter: Option<String>,
    dry_run: bool,
    limit: Option<u64>,
    progress_every: &str,
) -> Result<(), Failure> {
    let since = match since {
        None => None,
        Some(s) => Some(parse_since(s).map_err(user)?),
    };
    let progress_every = humantime::parse_duration(progress_every)
        .map_err(|e| user(anyhow::anyhow!("--progress-every `{progress_every}`: {e}")))?;
    let crm = leadgate::crm::Crm::build(settings)
        .map_err(user)?
        .ok_or_else(|| {
            user(anyhow::anyhow!(
                "no CRM is configured: set [providers.{connector}] credentials"
            ))
        })?;
    let (pipeline, store) = open(settings).await?;
    let opts = leadgate::crm::backfill::BackfillOptions {
        connector,
        since,
        filter,
        dry_run,
        limit,
        progress_every,
    };
    let report = leadgate::crm::backfill::run(&pipeline, &store, &crm, &opts)
        .await
        .map_err(|e| match e {
            leadgate::crm::backfill::BackfillError::Store { .. } => Failure::Internal(e.into()),
            _ => user(e),
        })?;
    print!("{}", leadgate::crm::backfill::render(&report));
    Ok(())
}

/// `--since`: a day (midnight UTC) or an RFC 3339 time.
fn parse_since(s: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(day) = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
        return Ok(day.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| {
            anyhow::anyhow!("--since `{s}`: give a day (2026-01-31) or an RFC 3339 time ({e})")
        })
}
