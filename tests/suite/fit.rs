//! Never install what does not fit: a compaction whose result is above the usable window fails
//! with both sizes, installs and appends nothing, and the fallback chain goes on; a compaction
//! that no implementation can fit is refused before any request.

use compactor_protocol::{
    CompactionImplementation, CompactionStatus, CompactorError, EventMsg, ResponseItem,
};
use compactor_testkit::TestServer;
use compactor_testkit::events::{
    ev_assistant_message, ev_completed, ev_completed_with_tokens, ev_context_compaction,
    ev_response_created,
};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::common::{Harness, Options, Transport, bounded, session_config};

fn http_options(window: i64) -> Options {
    Options { transport: Transport::Http, response_processed: false, context_window: window }
}

fn reply(id: &str, text: &str) -> Vec<Value> {
    vec![ev_response_created(id), ev_assistant_message(&format!("m-{id}"), text), ev_completed(id)]
}

#[tokio::test]
async fn a_result_above_the_window_is_not_installed_and_the_chain_goes_on() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("r1", "ok"));
    // v2 answers with an item far bigger than the window: about 18 700 tokens.
    server.push_sse(vec![
        ev_response_created("rc"),
        ev_context_compaction("cc", &"A".repeat(100_000)),
        ev_completed("rc"),
    ]);
    server.push_compact_json(json!({"output": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]},
        {"type": "compaction", "encrypted_content": "ENC_V1"}
    ]}));
    let dir = tempfile::tempdir().unwrap();
    let mut config = session_config(&server, dir.path(), &http_options(10_000));
    config.compaction.chain = vec![
        CompactionImplementation::ResponsesCompactionV2,
        CompactionImplementation::ResponsesCompact,
    ];
    let mut h = Harness::with_config(server, config, dir).await;
    h.turn("hello").await.unwrap();
    h.compact().await.unwrap();

    let analytics = h.analytics_events(2).await;
    let statuses: Vec<_> = analytics.iter().map(|e| (e.implementation, e.status)).collect();
    assert_eq!(
        statuses,
        [
            (CompactionImplementation::ResponsesCompactionV2, CompactionStatus::Failed),
            (CompactionImplementation::ResponsesCompact, CompactionStatus::Completed),
        ]
    );
    let error = analytics[0].error.as_deref().unwrap();
    assert!(
        error.contains("does not fit") && error.contains("usable window of 9500 tokens"),
        "{error}"
    );
    let tokens: i64 =
        error.split("at least ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(tokens > 9_500, "{error}");
    // Only the result that fits was installed and persisted.
    assert_eq!(h.compacted_lines().await, 1);
    let history = h.session.history();
    assert!(history.iter().any(|item| matches!(item, ResponseItem::Compaction { .. })));
    assert!(!history.iter().any(|item| matches!(item, ResponseItem::ContextCompaction { .. })));
    assert!(!h.seen.iter().any(|event| matches!(event, EventMsg::Error(_))));
}

#[tokio::test]
async fn a_compaction_no_implementation_can_fit_is_refused_before_it_starts() {
    // A session with a large window records a 60 KB message (about 15 000 tokens)...
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("r1", "ok"));
    let dir = tempfile::tempdir().unwrap();
    let config = session_config(&server, dir.path(), &http_options(100_000));
    let mut h = Harness::with_config(server, config, dir).await;
    h.turn(&"word ".repeat(12_000)).await.unwrap();
    h.session.shutdown().await.unwrap();
    let Harness { server, dir, .. } = h;

    // ... and is resumed with a 10 000-token window. With a retained budget over the window, v2
    // keeps the message whole (D101), so it cannot fit.
    let mut config = session_config(&server, dir.path(), &http_options(10_000));
    config.compaction.chain = vec![CompactionImplementation::ResponsesCompactionV2];
    config.compaction.retained_budget_tokens = Some(50_000);
    let mut h = Harness::resume(server, config, dir).await;
    let rollout = std::fs::read(h.rollout_path()).unwrap();
    let requests = h.server.requests().len();
    let error = h.compact().await.unwrap_err();
    match &error {
        CompactorError::CompactionDoesNotFit { tokens, usable_window } => {
            assert_eq!(*usable_window, 9_500);
            assert!(*tokens > 15_000, "{error}");
        }
        other => panic!("{other:?}"),
    }
    // No request, no event, no analytics, not a byte appended.
    assert_eq!(h.server.requests().len(), requests);
    assert!(h.seen.is_empty(), "{:?}", h.seen);
    assert!(h.analytics.compaction_events().is_empty());
    bounded(h.session.flush()).await.unwrap();
    assert_eq!(std::fs::read(h.rollout_path()).unwrap(), rollout);
}

#[tokio::test]
async fn an_auto_compaction_that_cannot_fit_makes_no_request() {
    // A session with a large window records a 60 KB message (about 15 000 tokens, as the
    // server reports)...
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(vec![
        ev_response_created("r1"),
        ev_assistant_message("m-r1", "ok"),
        ev_completed_with_tokens("r1", 15_050),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let config = session_config(&server, dir.path(), &http_options(100_000));
    let mut h = Harness::with_config(server, config, dir).await;
    h.turn(&"word ".repeat(12_000)).await.unwrap();
    h.session.shutdown().await.unwrap();
    let Harness { server, dir, .. } = h;

    // ... and goes on with a 10 000-token window, a retained budget over it (v2 keeps the
    // message whole, D101): the next turn's request cannot fit, and neither can its compaction.
    let mut config = session_config(&server, dir.path(), &http_options(10_000));
    config.compaction.chain = vec![CompactionImplementation::ResponsesCompactionV2];
    config.compaction.retained_budget_tokens = Some(50_000);
    let mut h = Harness::resume(server, config, dir).await;
    let requests = h.server.requests().len();
    let error = h.turn("go on").await.unwrap_err();
    assert!(matches!(error, CompactorError::CompactionDoesNotFit { .. }), "{error:?}");
    assert_eq!(h.server.requests().len(), requests, "no sampling request, no compaction request");
    let errors: Vec<&str> = h
        .seen
        .iter()
        .filter_map(|event| match event {
            EventMsg::Error(error) => Some(error.message.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("usable window of 9500 tokens"), "{errors:?}");
    assert_eq!(h.compacted_lines().await, 0);
}
