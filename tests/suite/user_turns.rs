//! User turns are counted by one rule everywhere: the live history, resume, rollback and fork
//! agree on which turns are the user's, with the default markers and with a session's own.

use std::path::Path;

use compactor_client::{KeySource, ProviderConfig};
use compactor_core::{ModelInfo, Session, SessionConfig};
use compactor_protocol::{
    ContentItem, ContextualMarkers, EventMsg, ResponseItem, RolloutItem, RolloutLine,
    TurnContextItem, is_user_turn_boundary,
};
use pretty_assertions::assert_eq;

use crate::common::{Harness, Options, Transport, bounded};

const TS: &str = "2026-05-15T10:00:00.000Z";

fn text(text: &str) -> ContentItem {
    ContentItem::InputText { text: text.to_owned() }
}

fn user(parts: &[&str]) -> ResponseItem {
    ResponseItem::Message {
        id: None,
        role: "user".into(),
        content: parts.iter().copied().map(text).collect(),
        phase: None,
        extra: Default::default(),
    }
}

/// A turn as a harness might have written it without `user_message` events.
fn turn(id: &str, message: ResponseItem) -> Vec<RolloutItem> {
    vec![
        RolloutItem::EventMsg(EventMsg::TurnStarted {
            turn_id: id.into(),
            started_at: None,
            model_context_window: Some(100_000),
        }),
        RolloutItem::TurnContext(TurnContextItem {
            turn_id: Some(id.into()),
            model: format!("model-{id}"),
            ..TurnContextItem::default()
        }),
        RolloutItem::ResponseItem(message),
        RolloutItem::ResponseItem(ResponseItem::assistant_text(format!("re: {id}"))),
        RolloutItem::EventMsg(EventMsg::TurnComplete {
            turn_id: id.into(),
            last_agent_message: None,
        }),
    ]
}

fn write_rollout(path: &Path, turns: &[(&str, ResponseItem)]) {
    let mut text = String::new();
    for (id, message) in turns {
        for item in turn(id, message.clone()) {
            text.push_str(&serde_json::to_string(&RolloutLine::new(TS, item)).unwrap());
            text.push('\n');
        }
    }
    std::fs::write(path, text).unwrap();
}

/// A session configuration that never needs its provider: resume, rollback and fork are local.
fn offline_config(markers: &ContextualMarkers) -> SessionConfig {
    let mut provider = ProviderConfig::new("offline", "http://127.0.0.1:9/v1");
    provider.key = KeySource::None;
    let mut config = SessionConfig::new(provider, ModelInfo::new("gpt-test", 100_000));
    config.contextual_markers = markers.clone();
    config
}

/// Where rolling back the last `n` user turns cuts `live`: just before the `n`-th newest
/// user-turn boundary by protocol's rule (the first one when there are fewer).
fn cut(live: &[ResponseItem], markers: &ContextualMarkers, n: usize) -> usize {
    let boundaries: Vec<usize> = live
        .iter()
        .enumerate()
        .filter(|(_, item)| is_user_turn_boundary(item, markers))
        .map(|(index, _)| index)
        .collect();
    match n {
        0 => live.len(),
        n => boundaries[boundaries.len().saturating_sub(n)],
    }
}

async fn resume(path: &Path, markers: &ContextualMarkers) -> Session {
    bounded(Session::builder(offline_config(markers)).resume(path)).await.unwrap().0
}

/// Resumes, rolls back and forks a hand-written rollout with `markers` on the session, and
/// checks that each counts `expected_turns` user turns the way the live history does.
async fn check_counts(turns: &[(&str, ResponseItem)], markers: &ContextualMarkers) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollout.jsonl");
    write_rollout(&path, turns);

    let session = resume(&path, markers).await;
    let live = session.history();
    let counted = live.iter().filter(|item| is_user_turn_boundary(item, markers)).count();
    assert_eq!(counted, 2, "live counting");
    // Resume takes the settings of the newest user turn: t4, not the contextual t5.
    let reference = session.reference_context_item().map(|ctx| ctx.model);
    assert_eq!(reference.as_deref(), Some("model-t4"), "resume");

    for n in 0..=3u32 {
        let expected = &live[..cut(&live, markers, n as usize)];
        let fork_path = dir.path().join(format!("fork-{n}.jsonl"));
        bounded(session.fork(&fork_path, n)).await.unwrap();
        assert_eq!(resume(&fork_path, markers).await.history(), expected, "fork before {n}");

        let copy = dir.path().join(format!("copy-{n}.jsonl"));
        std::fs::copy(&path, &copy).unwrap();
        let rolled_back = resume(&copy, markers).await;
        bounded(rolled_back.rollback(n)).await.unwrap();
        assert_eq!(rolled_back.history(), expected, "rollback {n}");
        bounded(rolled_back.shutdown()).await.unwrap();
        assert_eq!(resume(&copy, markers).await.history(), expected, "resume after rollback {n}");
    }
    bounded(session.shutdown()).await.unwrap();
}

#[tokio::test]
async fn resume_rollback_and_fork_count_user_turns_like_the_live_history() {
    // t2 has the marker in its second text part, t3 in another case: neither is a user turn.
    check_counts(
        &[
            ("t1", user(&["first"])),
            ("t2", user(&["see below", "<environment_context>a</environment_context>"])),
            ("t3", user(&["<ENVIRONMENT_CONTEXT>b</ENVIRONMENT_CONTEXT>"])),
            ("t4", user(&["fourth"])),
            ("t5", user(&["and this", "<Environment_Context>c</Environment_Context>"])),
        ],
        &ContextualMarkers::default(),
    )
    .await;
}

#[tokio::test]
async fn a_sessions_own_markers_count_user_turns_everywhere() {
    // With the session's markers, `<ctx>` is context and `<environment_context>` is not.
    check_counts(
        &[
            ("t1", user(&["first"])),
            ("t2", user(&["see below", "<CTX>a</CTX>"])),
            ("t3", user(&["<Ctx>b</Ctx>"])),
            ("t4", user(&["<environment_context>typed by the user</environment_context>"])),
            ("t5", user(&["and this", "<ctx>c</ctx>"])),
        ],
        &ContextualMarkers::new(["<ctx>"]),
    )
    .await;
}

#[tokio::test]
async fn live_turns_with_contextual_input_roll_back_like_the_live_history() {
    // Live turns announce every input with a `user_message` event; that does not make a turn. The
    // initial context goes into the first turn, which is why "zero" comes before the others.
    let server = crate::common::reference_model().await;
    let options =
        Options { transport: Transport::Http, response_processed: false, ..Options::default() };
    let mut h = Harness::start(server, options).await;
    let markers = ContextualMarkers::default();
    for input in [
        vec![text("zero")],
        vec![text("first")],
        vec![text("see below"), text("<environment_context>a</environment_context>")],
        vec![text("<ENVIRONMENT_CONTEXT>b</ENVIRONMENT_CONTEXT>")],
        vec![text("fourth")],
    ] {
        bounded(h.session.run_turn(input)).await.unwrap();
    }
    h.drain();
    let live = h.session.history();
    let fork_path = h.dir.path().join("fork.jsonl");
    bounded(h.session.fork(&fork_path, 2)).await.unwrap();
    let forked = resume(&fork_path, &markers).await;
    assert_eq!(forked.history(), &live[..cut(&live, &markers, 2)]);

    bounded(h.session.rollback(2)).await.unwrap();
    assert_eq!(h.session.history(), &live[..cut(&live, &markers, 2)]);
    assert_eq!(h.resumed_history().await, h.session.history(), "the rollout agrees");
    h.server.assert_no_violations();
}
