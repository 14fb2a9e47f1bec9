//! A rollout that cannot be written during a compaction, in a child process: a full disk
//! (`ENOSPC`: the session appends to a node of the `full` device, made in the test's folder
//! because a rollout is never opened through a link) and a file-size limit (`EFBIG`:
//! `ulimit -f` leaves room for the compaction turn's first event line, not for its `compacted`
//! line). Either way the compaction fails with a typed error naming the file and the OS error,
//! installs nothing, emits one `error` event, and leaves a session whose later writes fail the
//! same way.

use std::path::Path;
use std::time::Duration;

use compactor_analytics::{AnalyticsClient, AnalyticsConfig, MemorySink};
use compactor_core::Session;
use compactor_protocol::{
    CompactionImplementation, CompactionStatus, CompactorError, ContentItem, EventMsg, RolloutItem,
    TokenUsageInfo,
};
use compactor_rollout_trace::{TraceConfig, read_rollout};
use pretty_assertions::assert_eq;
use tokio::sync::mpsc;

use crate::child::{child, child_with_file_size_limit};
use crate::common::{Options, bounded, saved_session, session_config_for};

/// The child's scenario: `enospc` or `efbig`.
const SCENARIO_ENV: &str = "COMPACTOR_TEST_WRITE_FAILURE";
/// The folder holding the prepared `rollout.jsonl`.
const DIR_ENV: &str = "COMPACTOR_TEST_WRITE_FAILURE_DIR";
/// The parent's model server.
const URL_ENV: &str = "COMPACTOR_TEST_WRITE_FAILURE_URL";
/// The child test.
const CHILD: &str = "write_failures::write_failure_child";

fn drain(events: &mut mpsc::Receiver<EventMsg>) -> Vec<EventMsg> {
    let mut out = Vec::new();
    while let Ok(event) = events.try_recv() {
        out.push(event);
    }
    out
}

fn error_messages(events: &[EventMsg]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            EventMsg::Error(error) => Some(error.message.clone()),
            _ => None,
        })
        .collect()
}

/// What a failed compaction must leave as it was.
fn state(session: &Session) -> (Vec<compactor_protocol::ResponseItem>, TokenUsageInfo, u64) {
    (session.history(), session.token_usage_info(), session.window_generation())
}

/// Resumes the session prepared in `dir` so that its writes fail as `scenario` says, and checks
/// everything a failed rollout write must do.
async fn check_write_failure(scenario: &str, dir: &Path, base_url: &str) {
    let source = dir.join("rollout.jsonl");
    let mut config = session_config_for(base_url, dir, &Options::default());
    // Trace files would meet the file-size limit too; only the rollout is under test.
    config.trace = TraceConfig::disabled();
    // A fallback would fail the same way: the chain must stop at the first rollout failure.
    config.compaction.chain =
        vec![CompactionImplementation::ResponsesCompactionV2, CompactionImplementation::Prune];
    let sink = MemorySink::default();
    let analytics =
        AnalyticsClient::start(AnalyticsConfig::default(), vec![Box::new(sink.clone())]).unwrap();
    let builder = Session::builder(config).analytics(analytics);
    let (target, os_error) = match scenario {
        "enospc" => (dir.join("full.jsonl"), "No space left on device (os error 28)"),
        "efbig" => (source.clone(), "File too large (os error 27)"),
        other => panic!("unknown scenario {other}"),
    };
    let (session, mut events) = if scenario == "enospc" {
        // The saved lines come from the real file; every new line goes to a node of the `full`
        // device (1, 7), as /dev/full is. Making one needs CAP_MKNOD.
        let made = std::process::Command::new("mknod").arg(&target).args(["c", "1", "7"]).status();
        assert!(made.unwrap().success(), "cannot make a `full` device node: this needs CAP_MKNOD");
        let contents = read_rollout(&source).await.unwrap();
        bounded(builder.resume_from(contents, &target)).await.unwrap()
    } else {
        bounded(builder.resume(&source)).await.unwrap()
    };
    let before = state(&session);
    assert!(!before.0.is_empty());
    let expected = CompactorError::RolloutWrite {
        path: target.display().to_string(),
        message: os_error.into(),
    };

    let error = bounded(session.compact()).await.unwrap_err();
    assert_eq!(error, expected);
    assert_eq!(state(&session), before, "nothing installed");
    let seen = drain(&mut events);
    assert_eq!(
        error_messages(&seen),
        vec![format!("Error running remote compact task: {expected}")],
        "one error event naming the file and the OS error"
    );
    assert!(!seen.iter().any(|event| matches!(event, EventMsg::ContextCompacted {})), "{seen:?}");
    bounded(sink.wait_for(1)).await;
    let attempts = sink.compaction_events();
    assert_eq!(attempts.len(), 1, "the chain stops at the rollout failure");
    assert_eq!(attempts[0].status, CompactionStatus::Failed);
    assert!(attempts[0].error.as_deref().unwrap_or_default().contains(os_error), "{attempts:?}");

    // The session still works in memory; every later write fails the same clear way.
    let turn = bounded(session.run_turn(vec![ContentItem::InputText { text: "go on".into() }]))
        .await
        .unwrap_err();
    assert_eq!(turn, expected);
    assert_eq!(state(&session), before);
    assert_eq!(error_messages(&drain(&mut events)), vec![expected.to_string()]);
    assert_eq!(bounded(session.compact()).await.unwrap_err(), expected);
    assert_eq!(state(&session), before);
    assert_eq!(bounded(session.shutdown()).await.unwrap_err(), expected);

    // The saved session resumes as it was: no `compacted` line was added, no line is torn.
    let contents = read_rollout(&source).await.unwrap();
    assert!(contents.report.is_clean(), "{:?}", contents.report);
    let after: Vec<_> = contents
        .lines
        .iter()
        .filter(|line| matches!(line.item, RolloutItem::Compacted(_)))
        .collect();
    assert_eq!(after.len() as u64, before.2);
    if scenario == "efbig" {
        // The limit left room for the compaction turn's first line: what failed was the
        // `compacted` line itself.
        let last = contents.lines.last().map(|line| line.item.clone());
        assert!(
            matches!(last, Some(RolloutItem::EventMsg(EventMsg::TurnStarted { .. }))),
            "{last:?}"
        );
    }
    #[allow(clippy::print_stdout, reason = "the parent reads it")]
    {
        println!("write failure {scenario}: checked");
    }
}

/// The child. Started by the tests below with [`SCENARIO_ENV`] set; run on its own, it checks
/// the `ENOSPC` scenario in this process.
#[tokio::test(flavor = "multi_thread")]
async fn write_failure_child() {
    match std::env::var(SCENARIO_ENV) {
        Ok(scenario) => {
            let dir = std::env::var(DIR_ENV).unwrap();
            let url = std::env::var(URL_ENV).unwrap();
            Box::pin(check_write_failure(&scenario, Path::new(&dir), &url)).await;
        }
        Err(_) => {
            let server = crate::common::reference_model().await;
            let dir = tempfile::tempdir().unwrap();
            saved_session(&server, dir.path()).await;
            Box::pin(check_write_failure("enospc", dir.path(), &server.base_url())).await;
        }
    }
}

/// Runs the child for `scenario` on a prepared session and checks that it finished its checks.
async fn run_child(scenario: &str, file_size_limit: bool) {
    let server = crate::common::reference_model().await;
    let dir = tempfile::tempdir().unwrap();
    saved_session(&server, dir.path()).await;
    let mut command = if file_size_limit {
        // Room for the compaction turn's `turn_started` line, not for its `compacted` line.
        let size = std::fs::metadata(dir.path().join("rollout.jsonl")).unwrap().len();
        child_with_file_size_limit(CHILD, (size + 300).div_ceil(512))
    } else {
        child(CHILD)
    };
    command.env(SCENARIO_ENV, scenario).env(DIR_ENV, dir.path()).env(URL_ENV, server.base_url());
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the child did not finish within 60 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains(&format!("write failure {scenario}: checked")),
        "the child ran no check\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_during_a_compaction_installs_nothing() {
    run_child("enospc", false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_size_limit_during_a_compaction_installs_nothing() {
    run_child("efbig", true).await;
}
