//! `compactor compact ROLLOUT`: resume a saved session, compact it as a manual compaction with
//! the configured implementation, and append the result to the rollout; with `--dry-run`, show
//! what it would do without sending or writing anything (D144).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use compactor_core::{PreviewOptions, Session};
use compactor_engine::{COMPACT_USER_MESSAGE_MAX_TOKENS, EstimateContext};
use compactor_protocol::{
    CompactionImplementation, CompactionStatus, EventMsg, ReceiptStatus, ResponseItem,
};
use compactor_rollout_trace::read_rollout;
use compactor_testkit::ToolCallPolicy;

use crate::demo::retry_line;
use crate::drive::drive;
use crate::error::{CliError, Exit};
use crate::format;
use crate::interrupt::InterruptWatch;
use crate::receipt::receipt_lines;
use crate::rollout::{self, ReadArgs};
use crate::settings::{self, ConfigFile, ModelArgs};

/// `compactor compact` flags.
#[derive(Debug, Args)]
pub(crate) struct CompactArgs {
    /// The rollout (JSONL) of the session to compact; the result is appended to it.
    rollout: PathBuf,
    /// What the compaction should preserve, e.g. "the failing tests" (`/compact <focus>`).
    #[arg(long, value_name = "TEXT")]
    focus: Option<String>,
    /// Show what the compaction would do (the receipt, marked as a preview, and the request it
    /// would send) without sending, installing or writing anything: the rollout is only read,
    /// not even a torn last line is cut off.
    #[arg(long)]
    dry_run: bool,
    /// With --dry-run, print the preview as one JSON object.
    #[arg(long, requires = "dry_run")]
    json: bool,
    #[command(flatten)]
    read: ReadArgs,
    #[command(flatten)]
    pub(crate) model: ModelArgs,
}

pub(crate) async fn run(args: CompactArgs, file: Option<ConfigFile>) -> Result<(), CliError> {
    let saved = rollout::read(&args.rollout, args.read.damaged_lines()).await?;
    let before = saved.session.history.clone();

    // Unless told otherwise, compact with the model and window the session was using.
    let mut defaults = settings::cli_defaults(saved.model());
    defaults.base_instructions = saved.base_instructions().to_owned();
    defaults.cwd = saved.session.session_meta.as_ref().and_then(|meta| meta.cwd.clone());
    let mut settings = settings::layer(&args.model, file, defaults)?;
    if args.dry_run {
        // Nothing is sent: no provider is started.
        return Box::pin(dry_run(&args, &settings, &saved)).await;
    }
    let server = settings.start_provider(ToolCallPolicy::Never).await?;
    let result = Box::pin(compact(&args, &settings, &saved, &before)).await;
    if let Some(server) = server
        && let Err(err) = server.shutdown().await
    {
        tracing::warn!(error = %err, "the embedded model did not stop cleanly");
    }
    result
}

async fn compact(
    args: &CompactArgs,
    settings: &settings::Settings,
    saved: &rollout::SavedSession,
    before: &[ResponseItem],
) -> Result<(), CliError> {
    let path = saved.path.as_path();
    // Where this run's lines will start, so a failure can say exactly what it appended.
    let start = rollout::append_offset(saved).await?;
    let (analytics, mut compactions) = settings.start_analytics(Vec::new()).await?;
    let (session, mut events) = Session::builder(settings.config.clone())
        .analytics(analytics.clone())
        .damaged_lines(args.read.damaged_lines())
        .resume(path)
        .await?;
    let config = session.config().clone();
    let _watch = InterruptWatch::start(session.clone());
    let started = Instant::now();
    let work = async {
        match &args.focus {
            Some(focus) => session.compact_with_focus(focus).await,
            None => session.compact().await,
        }
    };
    let mut receipt = None;
    let result = drive(work, &mut events, |event| {
        if let EventMsg::CompactionReceipt { receipt: installed } = event
            && installed.status == ReceiptStatus::Completed
        {
            receipt = Some(installed.clone());
        }
        show_notice(event);
    })
    .await;
    let elapsed = started.elapsed();
    let after = session.history();
    let generation = session.window_generation();
    let shutdown = session.shutdown().await;
    if let Err(err) = result {
        let appended = rollout::appended_since(path, start).await;
        return Err(failure(err, settings, &appended));
    }
    shutdown?;
    let mut attempts = Vec::new();
    while let Ok(event) = compactions.try_recv() {
        attempts.push(event);
    }
    let estimate = |items: &[ResponseItem]| {
        EstimateContext {
            counter: config.tokens.counter,
            ..EstimateContext::new(&config.base_instructions, &config.provider.pass_through)
        }
        .estimate(items)
    };
    let completed =
        attempts.iter().rev().find(|attempt| attempt.status == CompactionStatus::Completed);
    if completed.is_none() && attempts.iter().any(|a| a.status == CompactionStatus::Skipped) {
        outln!("Nothing to compact in {}: its history is empty.", path.display());
        return Ok(());
    }
    let (implementation, duration) = match completed {
        Some(attempt) => {
            (attempt.implementation.to_string(), Duration::from_millis(attempt.duration_ms))
        }
        None => (settings.describe_chain(), elapsed),
    };
    for attempt in attempts.iter().filter(|attempt| attempt.status != CompactionStatus::Completed) {
        let error = attempt.error.as_deref().unwrap_or("no error text");
        outln!("  {} {}: {error}", attempt.implementation, attempt.status);
    }
    outln!("Compacted {} with {implementation} in {}", path.display(), format::duration(duration));
    outln!("  provider {}", settings.describe_provider());
    outln!("            items   tokens (estimate)");
    outln!("  before   {:>6}   {:>17}", before.len(), format::count(estimate(before)));
    outln!("  after    {:>6}   {:>17}", after.len(), format::count(estimate(&after)));
    if let Some(receipt) = receipt {
        outln!("Receipt (also in the `compacted` line; `compactor show` lists them all):");
        for line in receipt_lines(&receipt, "  ") {
            outln!("{line}");
        }
    }
    outln!("Appended a `compacted` line; {generation} compaction(s) installed in this session.");
    Ok(())
}

/// `--dry-run`: the preview of the compaction, from a session read from the rollout and never
/// written to (D144).
async fn dry_run(
    args: &CompactArgs,
    settings: &settings::Settings,
    saved: &rollout::SavedSession,
) -> Result<(), CliError> {
    let path = saved.path.as_path();
    for warning in &saved.session.warnings {
        eprintln!("warning: {}: {warning}", path.display());
    }
    let contents = read_rollout(path).await.map_err(|err| {
        CliError::new(Exit::BadRollout, err)
            .context(format!("cannot read rollout {}", path.display()))
    })?;
    let (session, _events) = Session::builder(settings.config.clone())
        .damaged_lines(args.read.damaged_lines())
        .read_only(contents, path)
        .await?;
    let options = PreviewOptions { implementation: None, focus: args.focus.clone() };
    let preview = session.preview_compaction(&options).await;
    let shutdown = session.shutdown().await;
    let preview = preview.map_err(|err| {
        let err = CliError::from(err);
        err.context(format!(
            "the compaction would fail; nothing was sent or written to {}",
            path.display()
        ))
    })?;
    shutdown?;
    if args.json {
        let request = preview
            .request
            .as_deref()
            .map(serde_json::from_str::<serde_json::Value>)
            .transpose()
            .map_err(CliError::other)?;
        let value = serde_json::json!({
            "rollout": path,
            "preview": true,
            "implementation": preview.receipt.implementation,
            "receipt": preview.receipt,
            "request": request,
            "history": preview.history,
            "exact": preview.exact,
        });
        let text = serde_json::to_string_pretty(&value).map_err(CliError::other)?;
        outln!("{text}");
        return Ok(());
    }
    outln!(
        "Dry run of compacting {}: nothing was sent, and the rollout was only read.",
        path.display()
    );
    for line in receipt_lines(&preview.receipt, "  ") {
        outln!("{line}");
    }
    let kept = if preview.exact {
        "the history it would install"
    } else {
        "what it would keep before the model's compaction item or summary"
    };
    outln!("  {kept}: {} items", preview.history.len());
    if let Some(request) = &preview.request {
        outln!(
            "  it would send a request of {} bytes (--json prints it)",
            format::count(request.len() as u64)
        );
    }
    Ok(())
}

/// The error of a failed compaction, with what it appended to the rollout (D69 in
/// docs/decisions.md) and, when the result would not fit, what to change.
fn failure(
    error: compactor_protocol::CompactorError,
    settings: &settings::Settings,
    appended: &str,
) -> CliError {
    let config = &settings.config;
    let fit = match &error {
        compactor_protocol::CompactorError::CompactionDoesNotFit { tokens, .. } => Some(*tokens),
        _ => None,
    };
    let err = CliError::from(error);
    match err.exit {
        Exit::Unreachable => err.context(format!(
            "cannot reach the model at {}; {appended}",
            config.provider.display_base_url()
        )),
        Exit::Interrupted => err.context(format!("interrupted; {appended}")),
        Exit::RolloutWrite => err.context(format!(
            "compaction failed: the rollout cannot be written, so nothing was installed, and \
             {appended}"
        )),
        Exit::RolloutInUse => err.context(format!(
            "another process is writing this session; run compact again once it has finished \
             ({appended})"
        )),
        Exit::DoesNotFit => {
            let tokens = fit.unwrap_or_default();
            let percent = config.model.effective_context_window_percent.max(1);
            let needed = (tokens.saturating_mul(100) + percent - 1) / percent;
            let mut hint = format!(
                "a model window of at least {} tokens would hold it (--window {needed}), or \
                 remove the largest messages from the session",
                format::count(needed)
            );
            let usable = config.model.model_context_window().unwrap_or_default();
            let has_local = config.compaction.chain.contains(&CompactionImplementation::Responses);
            if !has_local && usable > LOCAL_KEEPS_AT_MOST {
                hint.push_str(&format!(
                    "; or add local summarization, which keeps at most {} tokens of user \
                     messages (--implementation v2,local)",
                    format::count(i64::try_from(COMPACT_USER_MESSAGE_MAX_TOKENS).unwrap_or(0))
                ));
            }
            err.context(format!(
                "the compacted history would not fit the model's window: nothing was \
                 installed, and {appended}.\nTo compact it: {hint}"
            ))
        }
        Exit::PinsOverBudget => err.context(format!(
            "compaction refused before any request: nothing was installed, and {appended}.\nTo \
             compact it: unpin something (`compactor show ROLLOUT` lists the pins, `compactor \
             pin ROLLOUT --remove ID` removes one)"
        )),
        Exit::Failure
        | Exit::Usage
        | Exit::MissingFile
        | Exit::BadRollout
        | Exit::KeyUnset
        | Exit::BadConfig => err.context(format!("compaction failed; {appended}")),
    }
}

/// A usable window above this holds what local compaction keeps: its budget of user messages
/// (`COMPACT_USER_MESSAGE_MAX_TOKENS`), and room for the summary.
const LOCAL_KEEPS_AT_MOST: i64 = 24_000;

/// Retries and warnings, as they happen.
fn show_notice(event: &EventMsg) {
    match event {
        EventMsg::StreamError { message, additional_details, .. } => {
            eprintln!("  {}", retry_line(message, additional_details.as_deref()));
        }
        EventMsg::Warning { message } => eprintln!("warning: {message}"),
        EventMsg::TurnStarted { .. }
        | EventMsg::ItemStarted { .. }
        | EventMsg::ItemCompleted { .. }
        | EventMsg::ContextCompacted {}
        | EventMsg::TokenCount { .. }
        | EventMsg::Error(_)
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
