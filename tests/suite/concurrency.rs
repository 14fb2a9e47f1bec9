//! Concurrency (D28): a manual compaction asked for during an auto compaction
//! waits for it; sessions with their own clients compact in parallel against one server without
//! cross-talk; 200 sessions compact twice each against one reference-model server.

use std::time::{Duration, Instant};

use compactor_core::{Session, SessionConfig};
use compactor_protocol::{CompactionPhase, CompactionTrigger, ContentItem, EventMsg, ResponseItem};
use compactor_rollout_trace::{TraceConfig, read_rollout, reconstruct_history_from_rollout};
use compactor_testkit::events::{
    ev_assistant_message, ev_completed, ev_completed_with_tokens, ev_context_compaction,
    ev_response_created,
};
use compactor_testkit::{Fault, HttpScript, SealKey, TestServer, WsConnectionScript, WsSlot};
use pretty_assertions::assert_eq;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::common::{Harness, Options, Transport, bounded, event_types, session_config};

fn text(text: &str) -> Vec<ContentItem> {
    vec![ContentItem::InputText { text: text.to_owned() }]
}

/// Whether a request body (or WebSocket message) asks for a v2 compaction.
fn is_compaction(body: &Value) -> bool {
    body["input"].as_array().and_then(|input| input.last()).is_some_and(|last| {
        last["type"] == "context_compaction" && last.get("encrypted_content").is_none()
    })
}

fn bodies(server: &TestServer, transport: Transport) -> Vec<Value> {
    match transport {
        Transport::Http => {
            server.responses_requests().iter().map(|r| r.body_json().clone()).collect()
        }
        Transport::Ws => server
            .connections()
            .iter()
            .flat_map(|c| c.messages.iter().map(|m| m.body_json().clone()))
            .collect(),
    }
}

/// D28: `Session::compact` during a turn's auto compaction waits for the turn; the
/// server sees the auto compaction, the turn's request that follows it, then the manual one.
async fn manual_waits_for_auto(transport: Transport) {
    let hold = Duration::from_millis(300);
    let turn_1 = vec![
        ev_response_created("resp-1"),
        ev_assistant_message("m-1", "first answer"),
        ev_completed_with_tokens("resp-1", 9_500),
    ];
    let auto = vec![
        ev_response_created("resp-auto"),
        ev_context_compaction("cc-auto", "ENC_AUTO"),
        ev_completed("resp-auto"),
    ];
    let turn_2 = vec![
        ev_response_created("resp-2"),
        ev_assistant_message("m-2", "second answer"),
        ev_completed_with_tokens("resp-2", 1_000),
    ];
    let manual = vec![
        ev_response_created("resp-manual"),
        ev_context_compaction("cc-manual", "ENC_MANUAL"),
        ev_completed("resp-manual"),
    ];
    let server = TestServer::scripted().await.unwrap();
    match transport {
        Transport::Http => {
            server.push_sse(turn_1);
            server.push_http(HttpScript::new(auto).with_fault(Fault::DelayBeforeFirstEvent(hold)));
            server.push_sse(turn_2);
            server.push_sse(manual);
        }
        Transport::Ws => server.push_ws_connection(WsConnectionScript::new([
            WsSlot::new(turn_1),
            WsSlot::new(auto).with_fault(Fault::DelayBeforeFirstEvent(hold)),
            WsSlot::new(turn_2),
            WsSlot::new(manual),
        ])),
    }
    let options = Options { transport, response_processed: false, context_window: 10_000 };
    let mut h = Harness::start(server, options).await;
    h.turn("first task").await.unwrap();

    // The second turn starts with a pre-turn auto compaction, which the server holds.
    let session = h.session.clone();
    let turn = tokio::spawn(async move { session.run_turn(text("second task")).await });
    bounded(async {
        while !bodies(&h.server, transport).get(1).is_some_and(is_compaction) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    let session = h.session.clone();
    let manual = tokio::spawn(async move { session.compact().await });
    tokio::time::sleep(hold / 3).await;
    assert_eq!(bodies(&h.server, transport).len(), 2, "the manual compaction waits");
    assert!(!manual.is_finished() && !turn.is_finished());

    bounded(turn).await.unwrap().unwrap();
    bounded(manual).await.unwrap().unwrap();
    h.drain();
    let sent = bodies(&h.server, transport);
    assert_eq!(
        sent.iter().map(is_compaction).collect::<Vec<_>>(),
        [false, true, false, true],
        "turn 1, auto compaction, turn 2, manual compaction"
    );
    assert!(sent[2].to_string().contains("second task"));
    // The manual compaction compacts what the auto compaction installed: over HTTP it sends it;
    // over WebSocket it goes incrementally after the second turn's response, which the server
    // resolves to that history.
    match transport {
        Transport::Http => assert!(sent[3].to_string().contains("ENC_AUTO"), "{}", sent[3]),
        Transport::Ws => assert_eq!(sent[3]["previous_response_id"], "resp-2", "{}", sent[3]),
    }
    let events = h.analytics_events(2).await;
    assert_eq!(
        events.iter().map(|e| (e.trigger, e.phase)).collect::<Vec<_>>(),
        [
            (CompactionTrigger::Auto, CompactionPhase::PreTurn),
            (CompactionTrigger::Manual, CompactionPhase::StandaloneTurn)
        ]
    );
    // No interleaving: the manual compaction's turn starts after the second turn completed.
    let types = event_types(&h.seen);
    let complete = types.iter().rposition(|t| t == "turn_complete").unwrap();
    let turns: Vec<usize> =
        types.iter().enumerate().filter(|(_, t)| *t == "turn_started").map(|(i, _)| i).collect();
    assert_eq!(turns.len(), 3, "{types:?}");
    let second_complete = types[..complete].iter().rposition(|t| t == "turn_complete").unwrap();
    assert!(turns[2] > second_complete, "{types:?}");
    assert_eq!(
        h.session.history().last(),
        Some(&ResponseItem::ContextCompaction {
            id: Some("cc-manual".into()),
            encrypted_content: Some("ENC_MANUAL".into())
        })
    );
    h.server.assert_no_violations();
}

#[tokio::test]
async fn manual_compaction_waits_for_an_auto_compaction_over_http() {
    manual_waits_for_auto(Transport::Http).await;
}

#[tokio::test]
async fn manual_compaction_waits_for_an_auto_compaction_over_websocket() {
    manual_waits_for_auto(Transport::Ws).await;
}

/// A session of its own (own `ModelClient`, thread id and rollout) on a shared server.
struct Peer {
    session: Session,
    _events: mpsc::Receiver<EventMsg>,
    dir: tempfile::TempDir,
}

impl Peer {
    async fn start(server: &TestServer, thread_id: &str, options: &Options) -> Self {
        Self::start_with(server, thread_id, options, |_| {}).await
    }

    async fn start_with(
        server: &TestServer,
        thread_id: &str,
        options: &Options,
        edit: impl FnOnce(&mut SessionConfig),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = session_config(server, dir.path(), options);
        edit(&mut config);
        let (session, events) =
            Session::builder(config).thread_id(thread_id).build().await.unwrap();
        Self { session, _events: events, dir }
    }

    async fn resumed_history(&self) -> Vec<ResponseItem> {
        self.session.flush().await.unwrap();
        let contents = read_rollout(&self.dir.path().join("rollout.jsonl")).await.unwrap();
        assert!(contents.report.is_clean(), "{:?}", contents.report);
        reconstruct_history_from_rollout(
            &contents.lines,
            &compactor_engine::rebuild_legacy_compacted,
        )
        .history
    }
}

/// The digest sealed in the session's last compaction item (the reference model's format).
fn last_digest(session: &Session) -> Value {
    match session.history().last() {
        Some(ResponseItem::ContextCompaction { encrypted_content: Some(content), .. }) => {
            SealKey::default().open(content).unwrap()
        }
        other => panic!("{}: no compaction item last: {other:?}", session.thread_id()),
    }
}

/// The user texts a session's history holds, without the harness's contextual messages.
fn user_texts(history: &[ResponseItem]) -> Vec<String> {
    history
        .iter()
        .filter(|item| item.role() == Some("user"))
        .filter_map(ResponseItem::message_text)
        .filter(|text| !text.starts_with('<'))
        .collect()
}

/// Two sessions, each with its own client, compact at the same time against one server; each
/// ends with its own history, and every request the server saw belongs to one thread only.
async fn two_sessions_in_parallel(transport: Transport) {
    let server = crate::common::reference_model().await;
    let options = Options { transport, response_processed: true, ..Options::default() };
    let alpha = Peer::start(&server, "thread-alpha", &options).await;
    let beta = Peer::start(&server, "thread-beta", &options).await;
    let (a, b) = bounded(async {
        tokio::join!(
            Box::pin(alpha.session.run_turn(text("alpha task"))),
            Box::pin(beta.session.run_turn(text("beta task")))
        )
    })
    .await;
    a.unwrap();
    b.unwrap();

    // Both compactions are held by the server, so both are in flight at once.
    let hold = Duration::from_millis(400);
    match transport {
        Transport::Http => server.push_http_faults([Fault::DelayBeforeFirstEvent(hold)]),
        Transport::Ws => server.push_ws_faults([Fault::DelayBeforeFirstEvent(hold)]),
    }
    match transport {
        Transport::Http => server.push_http_faults([Fault::DelayBeforeFirstEvent(hold)]),
        Transport::Ws => server.push_ws_faults([Fault::DelayBeforeFirstEvent(hold)]),
    }
    let compact_alpha = {
        let session = alpha.session.clone();
        tokio::spawn(async move { session.compact().await })
    };
    let compact_beta = {
        let session = beta.session.clone();
        tokio::spawn(async move { session.compact().await })
    };
    bounded(async {
        while bodies(&server, transport).iter().filter(|body| is_compaction(body)).count() < 2 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    assert!(
        !compact_alpha.is_finished() && !compact_beta.is_finished(),
        "both compactions were in flight together"
    );
    bounded(compact_alpha).await.unwrap().unwrap();
    bounded(compact_beta).await.unwrap().unwrap();

    for (peer, own, other) in [(&alpha, "alpha", "beta"), (&beta, "beta", "alpha")] {
        let digest = last_digest(&peer.session);
        let quoted = digest["user_messages"].to_string();
        assert!(quoted.contains(own) && !quoted.contains(other), "{own}: {quoted}");
        assert_eq!(user_texts(&peer.session.history()), [format!("{own} task")]);
    }
    let (a, b) = bounded(async {
        tokio::join!(
            Box::pin(alpha.session.run_turn(text("alpha next"))),
            Box::pin(beta.session.run_turn(text("beta next")))
        )
    })
    .await;
    let a = a.unwrap().last_agent_message.unwrap();
    let b = b.unwrap().last_agent_message.unwrap();
    assert!(a.contains("alpha next") && a.contains("memory: 1 compaction"), "{a}");
    assert!(b.contains("beta next") && b.contains("memory: 1 compaction"), "{b}");
    for peer in [&alpha, &beta] {
        assert_eq!(peer.resumed_history().await, peer.session.history());
    }

    // The server's view: each request carries one thread's id and only that thread's text.
    let requests: Vec<(String, String)> = match transport {
        Transport::Http => server
            .responses_requests()
            .iter()
            .map(|r| {
                let id = r.header("x-client-request-id").unwrap_or("").to_owned();
                (id, String::from_utf8_lossy(&r.body).into_owned())
            })
            .collect(),
        Transport::Ws => server
            .connections()
            .iter()
            .flat_map(|c| {
                let id = c.handshake.header("x-client-request-id").unwrap_or("").to_owned();
                c.messages.iter().map(move |m| (id.clone(), m.text.clone())).collect::<Vec<_>>()
            })
            .collect(),
    };
    assert!(requests.len() >= 6, "{} requests", requests.len());
    for (thread, body) in &requests {
        let (own, other) = match thread.as_str() {
            "thread-alpha" => ("alpha", "beta"),
            "thread-beta" => ("beta", "alpha"),
            unknown => panic!("a request from an unknown thread {unknown:?}"),
        };
        assert!(!body.contains(&format!("{other} ")), "{own}'s request carries {other}: {body}");
    }
    server.assert_no_violations();
}

#[tokio::test]
async fn two_sessions_compact_in_parallel_without_cross_talk_over_websocket() {
    Box::pin(two_sessions_in_parallel(Transport::Ws)).await;
}

#[tokio::test]
async fn two_sessions_compact_in_parallel_without_cross_talk_over_http() {
    Box::pin(two_sessions_in_parallel(Transport::Http)).await;
}

/// One of the 200: two turns, each followed by a manual compaction, then the checks.
async fn compacting_session(server: &TestServer, index: usize) -> Result<(), String> {
    let transport = if index.is_multiple_of(2) { Transport::Ws } else { Transport::Http };
    let options = Options { transport, response_processed: true, ..Options::default() };
    let peer = Peer::start_with(server, &format!("thread-{index}"), &options, |config| {
        config.trace = TraceConfig::disabled();
    })
    .await;
    let session = &peer.session;
    let fail =
        |what: &str, error: &dyn std::fmt::Display| format!("session {index}: {what}: {error}");
    session.run_turn(text(&format!("task {index} one"))).await.map_err(|e| fail("turn 1", &e))?;
    session.compact().await.map_err(|e| fail("compaction 1", &e))?;
    session.run_turn(text(&format!("task {index} two"))).await.map_err(|e| fail("turn 2", &e))?;
    session.compact().await.map_err(|e| fail("compaction 2", &e))?;

    let history = session.history();
    let expected = [format!("task {index} one"), format!("task {index} two")];
    if user_texts(&history) != expected {
        return Err(format!("session {index}: history {history:#?}"));
    }
    let digest = last_digest(session);
    if digest["generation"] != 2 {
        return Err(format!("session {index}: digest {digest}"));
    }
    let own = format!("task {index} ");
    for quoted in digest["user_messages"].as_array().into_iter().flatten() {
        let quoted = quoted.as_str().unwrap_or_default();
        if quoted.starts_with("task ") && !quoted.starts_with(&own) {
            return Err(format!("session {index}: cross-talk: {quoted}"));
        }
    }
    if session.window_generation() != 2 {
        return Err(format!("session {index}: generation {}", session.window_generation()));
    }
    if peer.resumed_history().await != history {
        return Err(format!("session {index}: the rollout rebuilds another history"));
    }
    session.shutdown().await.map_err(|e| fail("shutdown", &e))?;
    Ok(())
}

/// 200 concurrent sessions (half WebSocket, half HTTP) against one reference-model server on
/// loopback, each compacting twice; every history, digest and rollout is checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stdout, reason = "the test reports its wall time")]
async fn two_hundred_sessions_compact_twice_each() {
    const SESSIONS: usize = 200;
    let server = std::sync::Arc::new(crate::common::reference_model().await);
    let started = Instant::now();
    let mut sessions = tokio::task::JoinSet::new();
    for index in 0..SESSIONS {
        let server = std::sync::Arc::clone(&server);
        sessions.spawn(async move { compacting_session(&server, index).await });
    }
    let mut failures = Vec::new();
    let mut done = 0;
    let all = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(joined) = sessions.join_next().await {
            match joined.unwrap() {
                Ok(()) => done += 1,
                Err(failure) => failures.push(failure),
            }
        }
    })
    .await;
    let elapsed = started.elapsed();
    println!(
        "{SESSIONS} sessions x (2 turns + 2 compactions) on one server: {done} ok in {:.2?} ({} requests)",
        elapsed,
        server.requests().len()
            + server.connections().iter().map(|c| c.messages.len()).sum::<usize>()
    );
    assert!(all.is_ok(), "timed out after {elapsed:?} with {done} sessions done");
    assert!(failures.is_empty(), "{} failed:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(done, SESSIONS);
    server.assert_no_violations();
}
