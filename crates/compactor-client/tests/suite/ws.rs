//! The WebSocket transport (D45, D13, D26): connection reuse across turns,
//! incremental requests, handshake headers, `response.processed`, terminal errors, the 426 and
//! exhausted-retries fallbacks, prewarm, wrapped error frames and abandoned streams.

use std::time::{Duration, Instant};

use compactor_client::{ClientNotice, OPENAI_BETA_WEBSOCKETS, Prewarm};
use compactor_protocol::{CompactorError, Prompt, ResponseEvent, ResponseItem, owned_items};
use compactor_testkit::events::{
    ev_completed, ev_function_call, ev_output_text_delta, ev_response_created,
};
use compactor_testkit::{
    AfterSlots, ErrorReply, Fault, HandshakeFault, TestServer, WsConnectionScript, WsSlot,
};
use futures::StreamExt;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::common::{
    Notices, TEST_KEY, THREAD_ID, bounded, client, collect, fast_retries, open, prompt, reply,
    settings, turn, user, ws_config,
};

/// The wire JSON of items, to compare with what the server recorded.
fn wire<T: serde::Serialize>(items: &[T]) -> Vec<Value> {
    items.iter().map(|item| serde_json::to_value(item).unwrap()).collect()
}

/// `prompt`'s input, then the response's output items, then `more`: the next turn's input.
fn extend(
    prompt: &Prompt<'static>,
    output: Vec<ResponseItem>,
    more: ResponseItem,
) -> Prompt<'static> {
    let mut next = prompt.clone();
    next.input.extend(owned_items(output));
    next.input.push(more.into());
    next
}

#[tokio::test]
async fn two_turns_share_one_connection_and_the_second_is_incremental() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([
        vec![
            ev_response_created("resp_1"),
            ev_function_call("call_1", "shell", "{\"cmd\":\"ls\"}"),
            ev_completed("resp_1"),
        ],
        reply("resp_2", "two files"),
        reply("resp_3", "new rules"),
    ]));
    let client = client(ws_config(&server), &Notices::default());

    let first = prompt(vec![user("list the files")]);
    let turn1 = turn(&client, &first).await;
    assert_eq!(turn1.error, None);
    assert_eq!(turn1.response_id(), "resp_1");

    let output = json!({"type": "function_call_output", "call_id": "call_1", "output": "a b"});
    let second = extend(&first, turn1.output_items(), crate::common::item(output.clone()));
    let turn2 = turn(&client, &second).await;
    assert_eq!(turn2.error, None);
    assert_eq!(turn2.response_id(), "resp_2");

    // A changed non-input field (the instructions) forces a full create.
    let mut third = extend(&second, turn2.output_items(), user("and now?"));
    third.base_instructions = "New instructions.".to_owned();
    let turn3 = turn(&client, &third).await;
    assert_eq!(turn3.error, None);

    assert_eq!(server.handshakes().len(), 1, "one connection serves every turn");
    let messages = server.connection(0).unwrap().messages;
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0].message_type(), Some("response.create"));
    assert_eq!(messages[0].previous_response_id(), None);
    assert_eq!(messages[0].input(), wire(&first.input));
    assert_eq!(messages[0].body_json().get("stream"), None, "no `stream` field on WebSocket");
    assert_eq!(messages[1].previous_response_id(), Some("resp_1"));
    assert_eq!(messages[1].input(), [output], "only the new suffix");
    assert_eq!(messages[2].previous_response_id(), None);
    assert_eq!(messages[2].input(), wire(&third.input), "the full input");
    assert_eq!(messages[2].body_json()["instructions"], "New instructions.");
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn changed_tools_force_a_full_create() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([
        reply("resp_1", "one"),
        reply("resp_2", "two"),
    ]));
    let client = client(ws_config(&server), &Notices::default());
    let first = prompt(vec![user("hi")]);
    let turn1 = turn(&client, &first).await;
    let mut second = extend(&first, turn1.output_items(), user("again"));
    second.tools = vec![json!({"type": "function", "name": "shell", "parameters": {}})];
    assert_eq!(turn(&client, &second).await.error, None);
    let messages = server.connection(0).unwrap().messages;
    assert_eq!(messages[1].previous_response_id(), None);
    assert_eq!(messages[1].input().len(), 3);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_non_prefix_input_is_a_full_create() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([
        reply("resp_1", "one"),
        reply("resp_2", "two"),
    ]));
    let client = client(ws_config(&server), &Notices::default());
    let turn1 = turn(&client, &prompt(vec![user("hi")])).await;
    assert_eq!(turn1.error, None);
    // A rewritten history (as after a compaction) does not extend the last request.
    let second = prompt(vec![user("summary of before"), user("go on")]);
    assert_eq!(turn(&client, &second).await.error, None);
    let messages = server.connection(0).unwrap().messages;
    assert_eq!(messages[1].previous_response_id(), None);
    assert_eq!(messages[1].input(), wire(&second.input));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn handshake_carries_the_beta_auth_and_request_id_headers() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([reply("resp_1", "hi")]));
    let mut config = ws_config(&server);
    config.extra_headers = vec![("x-extra-header".to_owned(), "extra-value".to_owned())];
    let client = client(config, &Notices::default());
    assert_eq!(turn(&client, &prompt(vec![user("hi")])).await.error, None);
    let handshakes = server.handshakes();
    assert_eq!(handshakes.len(), 1);
    let handshake = &handshakes[0];
    assert_eq!(handshake.status, 101);
    assert_eq!(handshake.uri.path(), "/v1/responses");
    assert_eq!(handshake.header("openai-beta"), Some("responses_websockets=2026-02-06"));
    assert_eq!(OPENAI_BETA_WEBSOCKETS, "responses_websockets=2026-02-06");
    let authorization = format!("Bearer {TEST_KEY}");
    assert_eq!(handshake.header("authorization"), Some(authorization.as_str()));
    assert_eq!(handshake.header("x-client-request-id"), Some(THREAD_ID));
    assert_eq!(handshake.header("x-extra-header"), Some("extra-value"));
    assert_eq!(server.requests().len(), 0, "nothing went over HTTP");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn handshake_headers_become_events_of_each_stream() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(
        WsConnectionScript::new([reply("resp_1", "one"), reply("resp_2", "two")])
            .with_response_header("openai-model", "gpt-served")
            .with_response_header("x-reasoning-included", "true"),
    );
    let client = client(ws_config(&server), &Notices::default());
    let first = prompt(vec![user("hi")]);
    let turn1 = turn(&client, &first).await;
    let turn2 = turn(&client, &extend(&first, turn1.output_items(), user("again"))).await;
    for collected in [turn1, turn2] {
        assert_eq!(
            collected.events[..3],
            [
                ResponseEvent::ServerModel { model: "gpt-served".into() },
                ResponseEvent::ServerReasoningIncluded { included: true },
                ResponseEvent::Created { response_id: Some(collected.response_id().into()) },
            ]
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn response_processed_is_the_next_message_on_the_same_connection() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(
        WsConnectionScript::new([reply("resp_1", "hi"), vec![]]).after_slots(AfterSlots::KeepOpen),
    );
    let client = client(ws_config(&server), &Notices::default());
    let mut session = client.new_session();
    let collected =
        collect(open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap()).await;
    let response_id = collected.response_id().to_owned();
    bounded(session.send_response_processed(&response_id)).await;
    let processed = server.wait_for_ws_message(0, 1).await.unwrap();
    assert_eq!(
        processed.body_json(),
        &json!({"type": "response.processed", "response_id": "resp_1"})
    );
    assert_eq!(server.handshakes().len(), 1);
    assert_eq!(server.connection(0).unwrap().messages.len(), 2);
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn response_processed_over_http_sends_nothing() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("resp_1", "hi"));
    let client = client(crate::common::http_config(&server), &Notices::default());
    let mut session = client.new_session();
    let collected =
        collect(open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap()).await;
    bounded(session.send_response_processed(collected.response_id())).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.requests().len(), 1, "only the turn's request");
    assert_eq!(server.handshakes().len(), 0);
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_dropped_connection_errors_promptly_and_the_next_request_reconnects() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([
        WsSlot::new(reply("resp_1", "cut short")).with_fault(Fault::DropAfterEvents(1))
    ]));
    server.push_ws_connection(WsConnectionScript::new([reply("resp_2", "whole")]));
    let mut config = ws_config(&server);
    config.stream_idle_timeout = Duration::from_secs(60);
    let notices = Notices::default();
    let client = client(config, &notices);
    let mut session = client.new_session();
    let started = Instant::now();
    let first = prompt(vec![user("hi")]);
    let collected = collect(open(&mut session, &first, &settings()).await.unwrap()).await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(2), "the error took {elapsed:?}");
    assert_eq!(collected.events.len(), 1, "{collected:?}");
    let error = collected.error.expect("an error");
    assert!(matches!(error, CompactorError::Stream { .. }), "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(notices.all(), [], "failures after events flowed are the caller's to retry");

    // The same session reconnects, with a full create.
    let collected = collect(open(&mut session, &first, &settings()).await.unwrap()).await;
    assert_eq!(collected.error, None);
    assert_eq!(collected.response_id(), "resp_2");
    assert_eq!(server.handshakes().len(), 2);
    assert_eq!(notices.all(), [], "the broken connection was replaced, not tried and retried");
    let messages = server.connection(1).unwrap().messages;
    assert_eq!(messages[0].previous_response_id(), None);
    assert_eq!(messages[0].input(), wire(&first.input));
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn upgrade_required_426_falls_back_to_http_for_good() {
    let server = TestServer::scripted().await.unwrap();
    server.push_handshake_fault(HandshakeFault::Reject(ErrorReply::upgrade_required()));
    server.push_sse(reply("resp_1", "over http"));
    server.push_sse(reply("resp_2", "still http"));
    let notices = Notices::default();
    let client = client(ws_config(&server), &notices);
    let first = prompt(vec![user("hi")]);
    let turn1 = turn(&client, &first).await;
    assert_eq!(turn1.error, None);
    assert_eq!(turn1.response_id(), "resp_1");
    assert!(!client.uses_websocket());
    let turn2 = turn(&client, &extend(&first, turn1.output_items(), user("again"))).await;
    assert_eq!(turn2.response_id(), "resp_2");

    assert_eq!(server.handshakes().len(), 1, "no further handshakes");
    assert_eq!(server.handshakes()[0].status, 426);
    let requests = server.responses_requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.body_json()["stream"], true);
        assert_eq!(request.body_json().get("previous_response_id"), None);
    }
    let notices = notices.all();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(matches!(&notices[0], ClientNotice::FallbackToHttp { .. }), "{notices:?}");
    assert_eq!(notices[0].message(), "Falling back from WebSockets to HTTPS transport");
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn prewarm_then_the_first_request_is_incremental() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([
        vec![ev_response_created("resp_prewarm"), ev_completed("resp_prewarm")],
        reply("resp_1", "warm"),
    ]));
    let mut config = ws_config(&server);
    config.prewarm = Prewarm::On;
    let client = client(config, &Notices::default());
    let mut first = prompt(vec![user("hi")]);
    first.base_instructions = "Be brief.".to_owned();
    let collected = turn(&client, &first).await;
    assert_eq!(collected.error, None);
    assert_eq!(collected.response_id(), "resp_1", "the prewarm's events are not the turn's");
    assert!(
        !collected.events.iter().any(|event| matches!(event, ResponseEvent::Completed { response_id, .. } if response_id == "resp_prewarm"))
    );

    let messages = server.connection(0).unwrap().messages;
    assert_eq!(messages.len(), 2);
    let warm = messages[0].body_json();
    assert_eq!(warm["type"], "response.create");
    assert_eq!(warm["generate"], false);
    assert_eq!(warm["input"], json!([]));
    assert_eq!(warm["instructions"], "Be brief.");
    assert_eq!(messages[1].previous_response_id(), Some("resp_prewarm"));
    assert_eq!(messages[1].input(), wire(&first.input));
    assert_eq!(messages[1].body_json().get("generate"), None);
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn wrapped_error_frame_with_status_400_is_invalid_request() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(
        WsConnectionScript::new([reply("resp_1", "unused")]).after_slots(AfterSlots::KeepOpen),
    );
    server.push_ws_faults([Fault::error(400, "invalid_value", "The input is not valid.")]);
    let notices = Notices::default();
    let client = client(ws_config(&server), &notices);
    let mut session = client.new_session();
    let err = open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap_err();
    assert_eq!(err, CompactorError::InvalidRequest("The input is not valid.".into()));
    assert_eq!(notices.all(), [], "not retried, no fallback");
    assert!(client.uses_websocket());
    assert_eq!(server.handshakes().len(), 1);
    assert_eq!(server.requests().len(), 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn error_frame_without_status_fails_at_once() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(
        WsConnectionScript::new([vec![serde_json::json!({
            "type": "error",
            "error": {"code": "invalid_prompt", "message": "no fixture matched"}
        })]])
        .after_slots(AfterSlots::KeepOpen),
    );
    let notices = Notices::default();
    let client = client(ws_config(&server), &notices);
    let mut session = client.new_session();
    let started = Instant::now();
    let err = open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap_err();
    assert_eq!(err, CompactorError::InvalidRequest("no fixture matched".into()));
    assert!(started.elapsed() < Duration::from_secs(5), "no idle wait");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn connection_limit_reached_reconnects_and_succeeds() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([reply("resp_unused", "never")]));
    server.push_ws_connection(WsConnectionScript::new([reply("resp_1", "fresh connection")]));
    server.push_ws_faults([Fault::error(
        400,
        "websocket_connection_limit_reached",
        "Responses websocket connection limit reached (60 minutes). Create a new websocket connection to continue.",
    )]);
    let notices = Notices::default();
    let client = client(ws_config(&server), &notices);
    let first = prompt(vec![user("hi")]);
    let collected = turn(&client, &first).await;
    assert_eq!(collected.error, None);
    assert_eq!(collected.response_id(), "resp_1");
    assert_eq!(server.handshakes().len(), 2, "a new connection");
    let retried = server.connection(1).unwrap().messages;
    assert_eq!(retried[0].previous_response_id(), None);
    assert_eq!(retried[0].input(), wire(&first.input));
    assert_eq!(notices.messages(), ["Reconnecting... 1/2"]);
    assert!(client.uses_websocket());
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn exhausted_websocket_retries_fall_back_to_http() {
    let server = TestServer::scripted().await.unwrap();
    for _ in 0..2 {
        server.push_handshake_fault(HandshakeFault::Reject(ErrorReply::internal_error()));
    }
    server.push_sse(reply("resp_1", "over http"));
    let notices = Notices::default();
    let mut config = ws_config(&server);
    config.retry = fast_retries(1);
    let client = client(config, &notices);
    let collected = turn(&client, &prompt(vec![user("hi")])).await;
    assert_eq!(collected.error, None);
    assert_eq!(collected.response_id(), "resp_1");
    assert_eq!(server.handshakes().len(), 2);
    assert_eq!(server.responses_requests().len(), 1);
    assert!(!client.uses_websocket());
    let notices = notices.all();
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert_eq!(notices[0].message(), "Reconnecting... 1/1");
    let ClientNotice::FallbackToHttp { reason } = &notices[1] else { panic!("{notices:?}") };
    assert!(reason.contains("internal server error"), "{reason}");
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_refused_handshake_401_is_final_without_fallback() {
    let server = TestServer::scripted().await.unwrap();
    server.push_handshake_fault(HandshakeFault::Reject(ErrorReply::new(
        401,
        "invalid_api_key",
        "Bad key.",
    )));
    let notices = Notices::default();
    let client = client(ws_config(&server), &notices);
    let mut session = client.new_session();
    let err = open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap_err();
    assert_eq!(err, CompactorError::UnexpectedStatus { status: 401, body: "Bad key.".into() });
    assert_eq!(notices.all(), []);
    assert!(client.uses_websocket(), "no fallback for an auth failure");
    assert_eq!(server.requests().len(), 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn dropping_a_stream_mid_response_frees_the_session_and_breaks_the_connection() {
    let server = TestServer::scripted().await.unwrap();
    // Events 30 s apart: a producer that kept reading would hold the connection that long.
    server.push_ws_connection(WsConnectionScript::new([WsSlot::new(vec![
        ev_response_created("resp_1"),
        ev_output_text_delta("msg_1", "one"),
        ev_output_text_delta("msg_1", "two"),
        ev_completed("resp_1"),
    ])
    .with_fault(Fault::DelayBetweenEvents(Duration::from_secs(30)))]));
    server.push_ws_connection(WsConnectionScript::new([reply("resp_2", "fresh")]));
    let notices = Notices::default();
    let client = client(ws_config(&server), &notices);
    let mut session = client.new_session();
    let first = prompt(vec![user("hi")]);
    let mut stream = open(&mut session, &first, &settings()).await.unwrap();
    let event = bounded(stream.next()).await.unwrap().unwrap();
    assert_eq!(event, ResponseEvent::Created { response_id: Some("resp_1".into()) });
    drop(stream);

    // At once, on the same session: a fresh connection and a full create.
    let started = Instant::now();
    let collected = collect(
        tokio::time::timeout(Duration::from_secs(3), session.stream(&first, &settings()))
            .await
            .expect("the abandoned response still holds the connection")
            .unwrap(),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(collected.response_id(), "resp_2");
    assert_eq!(server.handshakes().len(), 2);
    let messages = server.connection(1).unwrap().messages;
    assert_eq!(messages[0].previous_response_id(), None);
    assert_eq!(server.connection(0).unwrap().messages.len(), 1, "the old one carried no more");
    assert_eq!(notices.all(), [], "the broken connection was replaced, not tried and retried");
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_dropped_session_mid_stream_does_not_hand_over_a_busy_connection_badly() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([
        WsSlot::new(reply("resp_1", "slow"))
            .with_fault(Fault::DelayBetweenEvents(Duration::from_millis(100))),
        reply("resp_2", "next").into(),
    ]));
    let client = client(ws_config(&server), &Notices::default());
    let first = prompt(vec![user("hi")]);
    let mut session = client.new_session();
    let stream = open(&mut session, &first, &settings()).await.unwrap();
    // The turn ends its session while its stream is still being read.
    drop(session);
    let turn1 = collect(stream).await;
    assert_eq!(turn1.error, None);
    let turn2 = turn(&client, &extend(&first, turn1.output_items(), user("again"))).await;
    assert_eq!(turn2.error, None);
    assert_eq!(server.handshakes().len(), 1);
    let messages = server.connection(0).unwrap().messages;
    assert_eq!(messages[1].previous_response_id(), Some("resp_1"));
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_request_larger_than_a_fragment_arrives_whole() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([reply("resp_1", "read it")]));
    let client = client(ws_config(&server), &Notices::default());
    // About 2.6 MB over many fragments: a hundred items of 13 KB, and one of 1.3 MB that
    // makes a fragment of its own, larger than the others; multi-byte characters throughout.
    let small: String = "éa🦀".repeat(2_000);
    let mut items = vec![user("summarize this"), user(&"éa🦀".repeat(200_000))];
    items.extend((0..100).map(|n| user(&format!("{n} {small}"))));
    let request = prompt(items);
    let mut session = client.new_session();
    let (reports, collected) = stream_reporting(&mut session, &request).await;
    assert_eq!(collected.error, None);
    assert_eq!(collected.response_id(), "resp_1");

    let messages = server.connection(0).unwrap().messages;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].input(), wire(&request.input));
    let sent = reports[0].2;
    assert_eq!(sent, messages[0].text.len() as u64, "the size the client reports is what it sent");
    assert!(sent > 2_000_000, "{sent} bytes");
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

/// What one `stream_with_report` call reported, owned: (logical request, wire message, size).
type Reported = (Vec<u8>, Option<String>, u64);

async fn stream_reporting(
    session: &mut compactor_client::ModelClientSession,
    prompt: &Prompt<'_>,
) -> (Vec<Reported>, crate::common::Collected) {
    let mut reports = Vec::new();
    let stream = bounded(session.stream_with_report(prompt, &settings(), &mut |sent| {
        let request = sent.request_json().unwrap().to_vec();
        reports.push((
            request,
            sent.wire_message().unwrap().map(|wire| String::from_utf8(wire.to_vec()).unwrap()),
            sent.wire_len(),
        ));
    }))
    .await
    .unwrap();
    (reports, collect(stream).await)
}

#[tokio::test]
async fn every_message_sent_is_reported_with_the_logical_request() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([reply("resp_unused", "never")]));
    server.push_ws_connection(WsConnectionScript::new([
        reply("resp_1", "fresh connection"),
        reply("resp_2", "incremental"),
    ]));
    server.push_ws_faults([Fault::error(
        400,
        "websocket_connection_limit_reached",
        "Responses websocket connection limit reached (60 minutes).",
    )]);
    let client = client(ws_config(&server), &Notices::default());
    let mut session = client.new_session();
    let first = prompt(vec![user("hi")]);
    let (reports, collected) = stream_reporting(&mut session, &first).await;
    assert_eq!(collected.error, None);
    let sent =
        [&server.connection(0).unwrap().messages[0], &server.connection(1).unwrap().messages[0]];
    assert_eq!(reports.len(), 2, "one report per message sent, the retry included");
    for ((request, message, len), recorded) in reports.iter().zip(sent) {
        assert_eq!(message.as_deref(), Some(recorded.text.as_str()));
        assert_eq!(*len, recorded.text.len() as u64);
        let logical: Value = serde_json::from_slice(request).unwrap();
        assert_eq!(logical["input"], json!(wire(&first.input)));
        assert_eq!(
            (&logical["stream"], &logical["prompt_cache_key"]),
            (&json!(true), &json!(THREAD_ID))
        );
    }

    let second = extend(&first, collected.output_items(), user("and now?"));
    let (reports, collected) = stream_reporting(&mut session, &second).await;
    assert_eq!(collected.error, None);
    let recorded = &server.connection(1).unwrap().messages[1];
    assert_eq!(recorded.previous_response_id(), Some("resp_1"));
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].1.as_deref(), Some(recorded.text.as_str()), "the incremental message");
    let logical: Value = serde_json::from_slice(&reports[0].0).unwrap();
    assert_eq!(logical["input"], json!(wire(&second.input)), "the logical request is whole");
    assert_eq!(logical.get("previous_response_id"), None);
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}
