//! Resume: a session resumed from its rollout sees exactly what the live session saw.

use compactor_core::Session;
use pretty_assertions::assert_eq;

use crate::common::{Harness, Options, Transport, bounded, session_config};

#[tokio::test]
async fn resume_after_two_compactions_reproduces_the_live_session() {
    let server = crate::common::reference_model().await;
    let options =
        Options { transport: Transport::Http, response_processed: false, ..Options::default() };
    let mut live = Harness::start(server, options.clone()).await;
    live.turn("write the parser").await.unwrap();
    live.compact().await.unwrap();
    live.turn("now add tests").await.unwrap();
    live.compact().await.unwrap();
    live.session.flush().await.unwrap();
    assert_eq!(live.session.window_generation(), 2);

    // Keep the rollout as it is now, then let the live session go on.
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().join("rollout.jsonl");
    std::fs::copy(live.rollout_path(), &copy).unwrap();
    let live_history = live.session.history();
    let live_reference = live.session.reference_context_item();
    live.turn("and document it").await.unwrap();
    let live_request = live.server.requests().last().unwrap().body_json().clone();

    // A second server instance with the same (default) seal key.
    let other = crate::common::reference_model().await;
    let config = session_config(&other, copy_dir.path(), &options);
    let (resumed, _events) = bounded(Session::builder(config).resume(&copy)).await.unwrap();
    assert_eq!(resumed.history(), live_history);
    assert_eq!(resumed.reference_context_item(), live_reference);
    assert_eq!(resumed.window_generation(), 2);
    assert_eq!(resumed.thread_id(), live.session.thread_id());
    bounded(resumed.run_turn(vec![compactor_protocol::ContentItem::InputText {
        text: "and document it".into(),
    }]))
    .await
    .unwrap();
    let resumed_request = other.requests().last().unwrap().body_json().clone();
    assert_eq!(resumed_request, live_request);
    other.assert_no_violations();
    live.server.assert_no_violations();
}

#[tokio::test]
async fn rollback_and_fork() {
    let server = crate::common::reference_model().await;
    let options =
        Options { transport: Transport::Http, response_processed: false, ..Options::default() };
    let mut h = Harness::start(server, options.clone()).await;
    h.turn("first task").await.unwrap();
    h.compact().await.unwrap();
    let after_compaction = h.session.history();
    h.turn("second task").await.unwrap();
    assert_ne!(h.session.history(), after_compaction);

    bounded(h.session.rollback(1)).await.unwrap();
    assert_eq!(h.session.history(), after_compaction);
    assert_eq!(h.resumed_history().await, after_compaction, "the rollout agrees");

    h.turn("another second task").await.unwrap();
    let live = h.session.history();
    let fork_path = h.dir.path().join("fork.jsonl");
    let fork_id = bounded(h.session.fork(&fork_path, 0)).await.unwrap();
    assert_ne!(fork_id, h.session.thread_id());
    let config = session_config(&h.server, h.dir.path(), &options);
    let (forked, _events) = bounded(Session::builder(config).resume(&fork_path)).await.unwrap();
    assert_eq!(forked.history(), live);
    assert_eq!(forked.thread_id(), fork_id);
    assert_eq!(forked.window_generation(), 0, "a fork starts its own window generations");
}
