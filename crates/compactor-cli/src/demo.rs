//! `compactor demo`: a scripted multi-turn coding session that fills its context window with
//! large tool outputs, auto-compacts inline, compacts once by hand, and reports what happened.

mod ui;
mod workload;

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use clap::Args;
use compactor_analytics::{AnalyticsClient, CompactionEvent, JsonlFileSink};
use compactor_core::{Calibration, ModelInfo, Session};
use compactor_engine::EstimateContext;
use compactor_protocol::{
    CompactionStatus, CompactionTrigger, CompactorError, ContentItem, EventMsg, TurnItem,
};
use compactor_rollout_trace::{TraceConfig, format_timestamp};
use compactor_testkit::workload::{ErrorSummary, request_estimates};
use compactor_testkit::{TestServer, ToolCallPolicy};
use serde_json::json;
use tokio::sync::mpsc;

use crate::drive::drive;
use crate::error::{CliError, Exit};
use crate::format;
use crate::interrupt::InterruptWatch;
use crate::settings::{self, ConfigFile, DEFAULT_MODEL, Endpoint, ModelArgs, Settings};
use ui::{Moment, Ui};
use workload::DemoTools;

/// The default context window: small enough that the default 12 turns compact inline at least
/// twice, large enough to hold three turns of tool output.
pub(crate) const DEFAULT_WINDOW: i64 = 16_000;

/// The model slug the embedded reference model is asked for.
const EMBEDDED_MODEL: &str = "compactor-reference";

/// `compactor demo` flags.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// How many user turns to run; the manual compaction runs before the last one.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=500))]
    turns: u32,
    /// The seed of the tool outputs (the same seed gives the same session).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Where to write the rollout, traces, analytics and summary [default: a new
    /// ./compactor-demo-YYYYMMDD-HHMMSS folder].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) model: ModelArgs,
}

/// What the demo counted.
#[derive(Debug, Default)]
struct Tally {
    turns_completed: u32,
    compactions: Vec<CompactionEvent>,
    peak_context: i64,
    warnings: Vec<String>,
    /// Every `token_count` event: the budget of the latest, and the estimates of every request.
    token_counts: Vec<EventMsg>,
}

pub(crate) async fn run(args: DemoArgs, file: Option<ConfigFile>) -> Result<(), CliError> {
    let started = Instant::now();
    let out = output_dir(args.out.as_deref()).await?;
    let slug = match &args.model.base_url {
        Some(_) => DEFAULT_MODEL,
        None if file.as_ref().is_some_and(|file| file.toml.base_url().is_some()) => DEFAULT_MODEL,
        None => EMBEDDED_MODEL,
    };
    let mut settings = settings::layer(
        &args.model,
        file,
        settings::cli_defaults(ModelInfo::new(slug, DEFAULT_WINDOW)),
    )?;
    let tool_calls = ToolCallPolicy::OnUserText {
        trigger: workload::TOOL_TRIGGER.to_owned(),
        name: workload::TOOL_NAME.to_owned(),
        arguments: workload::TOOL_ARGUMENTS.to_owned(),
    };
    let server = settings.start_provider(tool_calls).await?;
    let result = Box::pin(run_session(&args, &mut settings, &out, server.as_ref(), started)).await;
    if let Some(server) = server
        && let Err(err) = server.shutdown().await
    {
        tracing::warn!(error = %err, "the embedded model did not stop cleanly");
    }
    result
}

async fn run_session(
    args: &DemoArgs,
    settings: &mut Settings,
    out: &Path,
    server: Option<&TestServer>,
    started: Instant,
) -> Result<(), CliError> {
    let files = Files::new(out);
    let config = &mut settings.config;
    config.base_instructions = workload::INSTRUCTIONS.to_owned();
    config.initial_context = workload::initial_context();
    config.tools = workload::tool_specs();
    config.cwd = Some(workload::CWD.to_owned());
    config.rollout_path = Some(files.rollout.clone());
    config.trace = TraceConfig::with_root(files.traces.clone());

    let jsonl = JsonlFileSink::open(&files.analytics).await.map_err(CliError::other)?;
    let (analytics, mut compactions) = settings.start_analytics(vec![Box::new(jsonl)]).await?;
    let tools = DemoTools::new(args.seed);
    let tool_stats = tools.stats();
    let (session, mut events) = Session::builder(settings.config.clone())
        .tools(tools)
        .analytics(analytics.clone())
        .build()
        .await?;

    let config = session.config();
    let window = config.model.context_window.unwrap_or_default();
    outln!(
        "Compactor demo: {} turns of a scripted coding session, window {} tokens (auto-compact at {})",
        args.turns,
        format::count(window),
        format::count(config.model.auto_compact_limit()),
    );
    outln!("  provider     {}", settings.describe_provider());
    outln!("  compaction   {}", settings.describe_chain());
    outln!(
        "  tokens       counted with {}{}",
        config.tokens.counter,
        match config.tokens.calibration {
            Calibration::On => ", calibrated by reported usage",
            Calibration::Off => "",
        }
    );
    if let Some(file) = &settings.file {
        outln!("  config       {}", file.path.display());
    }
    outln!("  output       {}", out.display());
    outln!();

    let watch = InterruptWatch::start(session.clone());
    let ui = Ui::new(args.turns);
    let manual_after = args.turns.saturating_sub(1).max(1);
    let mut tally = Tally::default();
    let mut outcome: Result<(), CompactorError> = Ok(());
    for turn in 1..=args.turns {
        let requests_before = server.map(count_requests);
        let bytes_before = tool_stats.bytes.load(std::sync::atomic::Ordering::Relaxed);
        ui.status(format!("sampling: {}", workload::prompt(turn)));
        let input = vec![ContentItem::InputText { text: workload::prompt(turn) }];
        let result =
            drive(session.run_turn(input), &mut events, |event| on_event(event, &ui, &mut tally))
                .await
                .map(drop);
        show_compactions(&analytics, &mut compactions, &ui, &mut tally, Moment::InTurn(turn)).await;
        let context = session.total_token_usage();
        tally.peak_context = tally.peak_context.max(context);
        let bytes = tool_stats.bytes.load(std::sync::atomic::Ordering::Relaxed) - bytes_before;
        let requests = match (server, requests_before) {
            (Some(server), Some(before)) => {
                format!(", {} requests", count_requests(server) - before)
            }
            _ => String::new(),
        };
        let ended = match &result {
            Ok(()) => String::new(),
            Err(CompactorError::Cancelled) => "  [interrupted]".to_owned(),
            Err(err) => format!("  [failed: {err}]"),
        };
        // The distance to the next auto compaction the session reported last (D126).
        let budget = tally.token_counts.iter().rev().find_map(|event| match event {
            EventMsg::TokenCount { info: Some(info), .. } => info.tokens_until_compaction,
            _ => None,
        });
        let until = match budget {
            Some(until) => format!(", compaction in {:>6}", format::count(until)),
            None => String::new(),
        };
        ui.turn_done(&format!(
            "turn {turn:>2}/{}  context {:>6} tokens ({:>3}% of the window){until}, tool output {} bytes{requests}{ended}",
            args.turns,
            format::count(context),
            percent(context, window),
            format::count(bytes),
        ));
        ui.status(format!("context {} tokens", format::count(context)));
        if let Err(err) = result {
            outcome = Err(err);
            break;
        }
        tally.turns_completed = turn;
        if watch.interrupted() {
            outcome = Err(CompactorError::Cancelled);
            break;
        }
        if turn == manual_after {
            ui.status("manual compaction".to_owned());
            let result =
                drive(session.compact(), &mut events, |event| on_event(event, &ui, &mut tally))
                    .await;
            show_compactions(
                &analytics,
                &mut compactions,
                &ui,
                &mut tally,
                Moment::AfterTurn(turn),
            )
            .await;
            // A failed manual compaction leaves the session as it was (its line says why); the
            // last turn still runs, and fails too if the endpoint is the problem.
            if let Err(err) = result {
                tracing::debug!(error = %err, "the manual compaction failed");
            }
            if watch.interrupted() {
                outcome = Err(CompactorError::Cancelled);
                break;
            }
        }
    }
    ui.finish();

    let history = session.history();
    let context = session.total_token_usage();
    let token_info = session.token_usage_info();
    let config = session.config().clone();
    let thread_id = session.thread_id().to_owned();
    let shutdown = session.shutdown().await;
    while let Ok(event) = compactions.try_recv() {
        tally.compactions.push(event);
    }
    let estimate = EstimateContext {
        counter: config.tokens.counter,
        ..EstimateContext::new(&config.base_instructions, &config.provider.pass_through)
    }
    .estimate(&history);
    let requests_estimated = request_estimates(&tally.token_counts);
    let requests = server.map(count_requests);
    let violations = server.map(TestServer::violation_count);
    let refused = server.map(TestServer::refused_over_window);

    let auto = count_compactions(&tally, CompactionTrigger::Auto);
    let manual = count_compactions(&tally, CompactionTrigger::Manual);
    let ids = compaction_ids(&tally.compactions);
    let failed = ids.len() - auto - manual;
    let attempts = match tally.compactions.len() {
        n if n == ids.len() => String::new(),
        n => format!(", {n} attempts"),
    };
    outln!();
    outln!("Summary");
    match &outcome {
        Ok(()) => outln!("  turns            {}", args.turns),
        Err(CompactorError::Cancelled) => {
            outln!("  turns            {} of {} (interrupted)", tally.turns_completed, args.turns);
        }
        Err(_) => outln!("  turns            {} of {} (failed)", tally.turns_completed, args.turns),
    }
    if let Some(requests) = requests {
        let checked = match violations {
            Some(0) => ", all valid".to_owned(),
            Some(n) => format!(", {n} protocol violations"),
            None => String::new(),
        };
        // The embedded model enforces the window as a real endpoint does; a refused request is
        // one the session recovered from (a local summary trimmed, a reactive compaction).
        let refused = match refused {
            Some(0) | None => String::new(),
            Some(n) => format!(", {n} refused as over the window"),
        };
        outln!("  model requests   {requests}{checked}{refused}");
    }
    outln!(
        "  compactions      {} ({auto} auto, {manual} manual, {failed} not completed{attempts})",
        ids.len()
    );
    outln!(
        "  context tokens   peak {}, now {} (window {})",
        format::count(tally.peak_context),
        format::count(context),
        format::count(window)
    );
    outln!(
        "  input tokens     {} over the session, {} output tokens",
        format::count(token_info.total_token_usage.input_tokens),
        format::count(token_info.total_token_usage.output_tokens)
    );
    outln!(
        "  history          {} items, ~{} tokens (estimate)",
        history.len(),
        format::count(estimate)
    );
    let errors = ErrorSummary::of(&requests_estimated);
    if errors.requests > 0 {
        outln!(
            "  estimates        {} requests, error against reported usage mean {:.1}%, max {:.1}%",
            errors.requests,
            errors.mean_percent,
            errors.max_percent,
        );
    }
    let mut warnings: Vec<(&String, usize)> = Vec::new();
    for warning in &tally.warnings {
        match warnings.iter_mut().find(|(seen, _)| *seen == warning) {
            Some((_, count)) => *count += 1,
            None => warnings.push((warning, 1)),
        }
    }
    for (warning, count) in warnings {
        let times = if count > 1 { format!(" ({count} times)") } else { String::new() };
        outln!("  warning          {warning}{times}");
    }

    let summary = json!({
        "thread_id": thread_id,
        "turns": tally.turns_completed,
        "turns_planned": args.turns,
        "seed": args.seed,
        "model": config.model.slug,
        "context_window": config.model.context_window,
        "auto_compact_limit": config.model.auto_compact_limit(),
        "chain": config.compaction_chain(),
        "provider_kind": config.provider_kind().as_str(),
        "base_url": config.provider.display_base_url(),
        "embedded": matches!(settings.endpoint, Endpoint::Embedded { .. }),
        "requests": requests,
        "protocol_violations": violations,
        "window_enforced": matches!(settings.endpoint, Endpoint::Embedded { .. }),
        "refused_over_window": refused,
        "compactions": tally.compactions,
        "peak_context_tokens": tally.peak_context,
        "context_tokens": context,
        "token_usage": token_info,
        "history_estimated_tokens": estimate,
        "token_counter": config.tokens.counter,
        "token_calibration": config.tokens.calibration == Calibration::On,
        "estimate_error_percent": {
            "requests": errors.requests,
            "mean": errors.mean_percent,
            "max": errors.max_percent,
        },
        "history": history,
        "error": outcome.as_ref().err().map(ToString::to_string),
        "elapsed_ms": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    });
    let text = serde_json::to_vec_pretty(&summary).map_err(CliError::other)?;
    write_private(&files.summary, text).await.map_err(|err| {
        CliError::other(err).context(format!("cannot write {}", files.summary.display()))
    })?;

    outln!();
    outln!("Files");
    outln!("  rollout     {}", files.rollout.display());
    outln!("  traces      {}", files.traces.display());
    outln!("  analytics   {}", files.analytics.display());
    outln!("  summary     {}", files.summary.display());
    if outcome.is_ok() {
        // The program as it was started (`target/release/compactor` under `cargo run`).
        let program = std::env::args().next().unwrap_or_else(|| "compactor".to_owned());
        let rollout = files.rollout.display();
        outln!();
        outln!("Next: {program} resume {rollout}");
        outln!("      {program} compact {rollout} --focus \"the failing tests\"");
    }
    outln!("Finished in {}", format::duration(started.elapsed()));
    outcome.map_err(|err| {
        let err = CliError::from(err);
        match err.exit {
            Exit::Unreachable => err.context(format!(
                "cannot reach the model at {}",
                config.provider.display_base_url()
            )),
            Exit::Interrupted => err.context("interrupted"),
            Exit::Failure
            | Exit::Usage
            | Exit::MissingFile
            | Exit::BadRollout
            | Exit::KeyUnset
            | Exit::BadConfig
            | Exit::RolloutWrite
            | Exit::RolloutInUse
            | Exit::DoesNotFit
            | Exit::PinsOverBudget => err,
        }
    })?;
    shutdown?;
    Ok(())
}

/// Writes `bytes` to a new file at `path` with mode 0600, never through a symbolic link: the
/// summary holds the whole conversation (D64 in docs/decisions.md).
async fn write_private(path: &Path, bytes: Vec<u8>) -> std::io::Result<()> {
    use std::io::Write as _;
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut file = compactor_rollout_trace::private_file_options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|err| compactor_rollout_trace::explain_open_error(&path, err))?;
        file.write_all(&bytes)?;
        file.sync_data()
    })
    .await
    .map_err(std::io::Error::other)?
}

/// The files the demo writes.
struct Files {
    rollout: PathBuf,
    traces: PathBuf,
    analytics: PathBuf,
    summary: PathBuf,
}

impl Files {
    fn new(out: &Path) -> Self {
        Self {
            rollout: out.join("rollout.jsonl"),
            traces: out.join("traces"),
            analytics: out.join("analytics.jsonl"),
            summary: out.join("summary.json"),
        }
    }
}

fn on_event(event: &EventMsg, ui: &Ui, tally: &mut Tally) {
    match event {
        EventMsg::ItemStarted { item: TurnItem::ContextCompaction(_), .. } => {
            ui.status("compacting...".to_owned());
        }
        EventMsg::ItemCompleted { item: TurnItem::ContextCompaction(_), .. } => {
            ui.status("compacted; sampling".to_owned());
        }
        EventMsg::TokenCount { info: Some(info), .. } => {
            tally.peak_context = tally.peak_context.max(info.last_token_usage.total_tokens);
            tally.token_counts.push(event.clone());
        }
        EventMsg::StreamError { message, additional_details, .. } => {
            ui.line(&format!("  {}", retry_line(message, additional_details.as_deref())));
            ui.status(message.clone());
        }
        EventMsg::Warning { message } => {
            ui.line(&format!("  warning: {message}"));
            tally.warnings.push(message.clone());
        }
        EventMsg::Error(error) => ui.status(format!("error: {}", error.message)),
        EventMsg::TurnStarted { .. }
        | EventMsg::ContextCompacted {}
        | EventMsg::TokenCount { info: None, .. }
        | EventMsg::HookStarted { .. }
        | EventMsg::HookCompleted { .. }
        | EventMsg::TurnComplete { .. }
        | EventMsg::TurnAborted { .. }
        | EventMsg::RawResponseItem { .. }
        | EventMsg::ThreadRolledBack { .. }
        | EventMsg::UserMessage { .. }
        | EventMsg::AgentMessage { .. }
        | EventMsg::CompactionReceipt { .. }
        | EventMsg::ToolOutputTruncated { .. }
        | EventMsg::Unknown(_) => {}
    }
}

/// `Reconnecting... 1/4: connection failed: ...`.
pub(crate) fn retry_line(message: &str, details: Option<&str>) -> String {
    match details {
        Some(details) => format!("{message}: {details}"),
        None => message.to_owned(),
    }
}

/// Prints a line for every compaction attempt tracked so far.
async fn show_compactions(
    analytics: &AnalyticsClient,
    compactions: &mut mpsc::Receiver<CompactionEvent>,
    ui: &Ui,
    tally: &mut Tally,
    moment: Moment,
) {
    // Attempts are tracked before the turn returns; a flush delivers them to every sink.
    if let Err(err) = analytics.flush().await {
        tracing::warn!(error = %err, "analytics flush failed");
    }
    while let Ok(event) = compactions.try_recv() {
        tally.peak_context = tally.peak_context.max(event.active_context_tokens_before);
        tally.compactions.push(event);
        // The attempts of one fallback chain share a compaction id, and so a number.
        let ids = compaction_ids(&tally.compactions);
        if let Some(event) = tally.compactions.last() {
            ui.line(&ui::compaction_line(ids.len(), moment, event));
        }
    }
}

/// The distinct compaction ids of `attempts`, in order.
fn compaction_ids(attempts: &[CompactionEvent]) -> Vec<&str> {
    let mut ids: Vec<&str> = Vec::new();
    for attempt in attempts {
        if !ids.contains(&attempt.compaction_id.as_str()) {
            ids.push(&attempt.compaction_id);
        }
    }
    ids
}

/// Compactions (not attempts) of `trigger` that completed.
fn count_compactions(tally: &Tally, trigger: CompactionTrigger) -> usize {
    tally
        .compactions
        .iter()
        .filter(|c| c.trigger == trigger && c.status == CompactionStatus::Completed)
        .count()
}

/// Model requests the embedded server answered: HTTP `/responses` and `/responses/compact`,
/// and WebSocket creates.
fn count_requests(server: &TestServer) -> usize {
    server.model_requests()
}

fn percent(part: i64, whole: i64) -> i64 {
    if whole <= 0 { 0 } else { part.saturating_mul(100) / whole }
}

/// Creates the output folder: `--out`, or a new `compactor-demo-<time>` in the current one.
async fn output_dir(flag: Option<&Path>) -> Result<PathBuf, CliError> {
    let dir = match flag {
        Some(dir) => {
            // Nothing is written over an earlier demo, nor through a link planted where an
            // output goes (D64 in docs/decisions.md).
            let files = Files::new(dir);
            for path in [&files.rollout, &files.summary, &files.analytics, &files.traces] {
                let Ok(metadata) = tokio::fs::symlink_metadata(path).await else {
                    continue;
                };
                let why = if metadata.file_type().is_symlink() {
                    "a symbolic link; Compactor does not write through links"
                } else {
                    "already there; choose another --out"
                };
                return Err(CliError::msg(
                    Exit::Failure,
                    format_args!("{} is {why}", path.display()),
                ));
            }
            dir.to_path_buf()
        }
        None => {
            // `2026-05-15T10:00:00.123Z` -> `compactor-demo-20260515-100000`.
            let stamp: String = format_timestamp(SystemTime::now())
                .chars()
                .take(19)
                .filter(|c| c.is_ascii_digit() || *c == 'T')
                .map(|c| if c == 'T' { '-' } else { c })
                .collect();
            let base = format!("compactor-demo-{stamp}");
            let mut dir = PathBuf::from(&base);
            let mut n = 2;
            while tokio::fs::try_exists(&dir).await.unwrap_or(false) {
                dir = PathBuf::from(format!("{base}-{n}"));
                n += 1;
            }
            dir
        }
    };
    let created = dir.clone();
    tokio::task::spawn_blocking(move || compactor_rollout_trace::create_private_dir_all(&created))
        .await
        .map_err(std::io::Error::other)
        .and_then(|created| created)
        .map_err(|err| CliError::other(err).context(format!("cannot create {}", dir.display())))?;
    Ok(std::path::absolute(&dir).unwrap_or(dir))
}
