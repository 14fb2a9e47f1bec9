//! HTTP + SSE over the network: the request as sent, every row of the event table and of the
//! `response.failed` mapping through `stream()`, the stream's end, idle timeouts and header
//! events.

use std::time::Duration;

use compactor_client::ClientNotice;
use compactor_protocol::{
    CompactorError, InputTokensDetails, OutputTokensDetails, Prompt, RateLimitSnapshot,
    RateLimitWindow, Reasoning, ResponseEvent, ResponseUsage, TokenUsage, TurnSettings,
    owned_items,
};
use compactor_testkit::events::{
    assistant_message_item, ev_assistant_message, ev_completed, ev_completed_with_usage,
    ev_content_part_added, ev_custom_tool_call, ev_custom_tool_call_input_delta, ev_function_call,
    ev_message_item_added, ev_output_text_delta, ev_reasoning_item, ev_reasoning_item_added,
    ev_reasoning_summary_text_delta, ev_reasoning_text_delta, ev_response_created,
    function_call_item, reasoning_item,
};
use compactor_testkit::{Endpoint, Fault, HttpScript, TestServer};
use futures::StreamExt;
use pretty_assertions::assert_eq;
use serde_json::json;

use crate::common::{
    MODEL, Notices, TEST_KEY, THREAD_ID, bounded, client, collect, http_config, item, open, prompt,
    reply, settings, turn, user,
};

#[tokio::test]
async fn request_path_headers_and_body() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("resp_1", "ok"));
    let mut config = http_config(&server);
    config.extra_headers = vec![("x-extra-header".to_owned(), "extra-value".to_owned())];
    let client = client(config, &Notices::default());
    let prompt = Prompt {
        input: owned_items([
            item(
                json!({"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be brief."}]}),
            ),
            user("list the files"),
            item(
                json!({"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "thinking"}], "encrypted_content": "ENC1"}),
            ),
            item(
                json!({"type": "function_call", "id": "fc_1", "name": "shell", "arguments": "{\"cmd\":\"ls\"}", "call_id": "call_1"}),
            ),
            item(
                json!({"type": "function_call_output", "call_id": "call_1", "output": "a.txt\nb.txt"}),
            ),
            item(
                json!({"type": "message", "id": "msg_1", "role": "assistant", "content": [{"type": "output_text", "text": "Two files."}]}),
            ),
            // On the default pass-through list: sent as it came.
            item(json!({"type": "configuration_update", "id": "cu_1", "settings": {"a": 1}})),
            // Unknown and not on the list: kept out of the request.
            item(json!({"type": "mystery_item", "id": "mx_1", "payload": "secret-sauce"})),
            user("thanks"),
        ]),
        tools: vec![json!({
            "type": "function",
            "name": "shell",
            "description": "Runs a command.",
            "strict": false,
            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]},
        })],
        parallel_tool_calls: true,
        base_instructions: "You are a test model.".to_owned(),
        ..Prompt::default()
    };
    let settings = TurnSettings {
        model: MODEL.to_owned(),
        reasoning: Some(Reasoning {
            effort: Some("medium".to_owned()),
            summary: Some("auto".to_owned()),
        }),
        service_tier: Some("priority".to_owned()),
        verbosity: Some("low".to_owned()),
        context_management: None,
    };
    let mut session = client.new_session();
    let collected = collect(open(&mut session, &prompt, &settings).await.unwrap()).await;
    assert_eq!(collected.error, None);

    let requests = server.wait_for_requests(1).await.unwrap();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.endpoint, Endpoint::Responses);
    assert_eq!(request.method, "POST");
    assert_eq!(request.path(), "/v1/responses");
    let authorization = format!("Bearer {TEST_KEY}");
    assert_eq!(request.header("authorization"), Some(authorization.as_str()));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("accept"), Some("text/event-stream"));
    assert_eq!(request.header("x-client-request-id"), Some(THREAD_ID));
    assert_eq!(request.header("x-extra-header"), Some("extra-value"));
    assert_eq!(request.header("openai-beta"), None, "the beta header is for WebSockets only");
    assert!(!request.body_contains_text("mystery_item"));
    insta::assert_json_snapshot!("http_request_body", request.body_json());
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_event_table_row_through_stream() {
    let server = TestServer::scripted().await.unwrap();
    let mut completed = ev_completed_with_usage(
        "resp_table",
        ResponseUsage {
            input_tokens: 100,
            input_tokens_details: Some(InputTokensDetails {
                cached_tokens: 40,
                cache_write_tokens: 0,
            }),
            output_tokens: 20,
            output_tokens_details: Some(OutputTokensDetails { reasoning_tokens: 5 }),
            total_tokens: 120,
        },
    );
    completed["response"]["end_turn"] = json!(true);
    server.push_sse(vec![
        ev_response_created("resp_table"),
        ev_message_item_added("msg_1"),
        ev_content_part_added("msg_1"),
        ev_output_text_delta("msg_1", "Hel"),
        ev_output_text_delta("msg_1", "lo"),
        ev_assistant_message("msg_1", "Hello"),
        ev_reasoning_item_added("rs_1", &[]),
        json!({"type": "response.reasoning_summary_part.added", "item_id": "rs_1", "summary_index": 0}),
        ev_reasoning_summary_text_delta("rs_1", "sum", 0),
        ev_reasoning_text_delta("rs_1", "raw", 0),
        ev_reasoning_item("rs_1", &["sum"], &["raw"]),
        ev_function_call("call_1", "shell", "{\"cmd\":\"ls\"}"),
        ev_custom_tool_call_input_delta("ctc_call_2", "call_2", "*** Begin Patch"),
        ev_custom_tool_call("call_2", "apply_patch", "*** Begin Patch"),
        json!({"type": "response.compaction.compacting", "item_id": "cmp_1", "output_index": 9}),
        json!({"type": "response.metadata", "metadata": {"openai_verification_recommendation": ["verify_identity"]}}),
        json!({"type": "response.some_future_event", "anything": [1, 2, 3]}),
        completed,
    ]);
    let client = client(http_config(&server), &Notices::default());
    let collected = turn(&client, &prompt(vec![user("show every event")])).await;
    assert_eq!(collected.error, None);

    let expected = vec![
        ResponseEvent::Created { response_id: Some("resp_table".into()) },
        ResponseEvent::OutputItemAdded {
            // Read as the server wrote it, `status` included: it is written back as it came.
            item: item(json!({
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            })),
        },
        ResponseEvent::OutputTextDelta { delta: "Hel".into() },
        ResponseEvent::OutputTextDelta { delta: "lo".into() },
        ResponseEvent::OutputItemDone { item: item(assistant_message_item("msg_1", "Hello")) },
        ResponseEvent::OutputItemAdded {
            item: item(json!({"type": "reasoning", "id": "rs_1", "summary": []})),
        },
        ResponseEvent::ReasoningSummaryPartAdded { summary_index: 0 },
        ResponseEvent::ReasoningSummaryDelta { delta: "sum".into(), summary_index: 0 },
        ResponseEvent::ReasoningContentDelta { delta: "raw".into(), content_index: 0 },
        ResponseEvent::OutputItemDone { item: item(reasoning_item("rs_1", &["sum"], &["raw"])) },
        ResponseEvent::OutputItemDone {
            item: item(function_call_item("call_1", "shell", "{\"cmd\":\"ls\"}")),
        },
        ResponseEvent::ToolCallInputDelta {
            item_id: "ctc_call_2".into(),
            call_id: Some("call_2".into()),
            delta: "*** Begin Patch".into(),
        },
        ResponseEvent::OutputItemDone {
            item: item(json!({
                "type": "custom_tool_call",
                "id": "ctc_call_2",
                "call_id": "call_2",
                "name": "apply_patch",
                "input": "*** Begin Patch",
                "status": "completed",
            })),
        },
        ResponseEvent::Compacting { item_id: Some("cmp_1".into()), output_index: Some(9) },
        ResponseEvent::ModelVerifications { recommendations: vec!["verify_identity".into()] },
        ResponseEvent::Completed {
            response_id: "resp_table".into(),
            token_usage: Some(TokenUsage {
                input_tokens: 100,
                cached_input_tokens: 40,
                output_tokens: 20,
                reasoning_output_tokens: 5,
                total_tokens: 120,
            }),
            end_turn: Some(true),
        },
    ];
    assert_eq!(collected.events, expected);
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_response_failed_code_through_stream() {
    let server = TestServer::scripted().await.unwrap();
    let client = client(http_config(&server), &Notices::default());
    let failed = |code: &str, message: &str| CompactorError::ResponseStreamFailed {
        code: code.into(),
        message: message.into(),
        retry_after: None,
    };
    let cases = vec![
        ("context_length_exceeded", "Your input exceeds the context window.", {
            CompactorError::ContextWindowExceeded
        }),
        (
            "insufficient_quota",
            "You exceeded your current quota.",
            CompactorError::QuotaExceeded("You exceeded your current quota.".into()),
        ),
        (
            "usage_not_included",
            "Not included in your plan.",
            CompactorError::UsageNotIncluded("Not included in your plan.".into()),
        ),
        ("cyber_policy", "Flagged.", CompactorError::CyberPolicy("Flagged.".into())),
        (
            "cyber_policy",
            " ",
            CompactorError::CyberPolicy("the request was flagged by the safety policy".into()),
        ),
        ("invalid_prompt", "Bad prompt.", CompactorError::InvalidRequest("Bad prompt.".into())),
        ("server_is_overloaded", "Busy.", CompactorError::ServerOverloaded),
        ("slow_down", "Slow down.", CompactorError::ServerOverloaded),
        (
            "rate_limit_exceeded",
            "Rate limit reached. Please try again in 1.5s.",
            CompactorError::ResponseStreamFailed {
                code: "rate_limit_exceeded".into(),
                message: "Rate limit reached. Please try again in 1.5s.".into(),
                retry_after: Some(Duration::from_millis(1500)),
            },
        ),
        (
            "rate_limit_exceeded",
            "Rate limit reached. Please try again in 250ms.",
            CompactorError::ResponseStreamFailed {
                code: "rate_limit_exceeded".into(),
                message: "Rate limit reached. Please try again in 250ms.".into(),
                retry_after: Some(Duration::from_millis(250)),
            },
        ),
        ("server_error", "Something broke.", failed("server_error", "Something broke.")),
        ("", "", failed("unknown", "the server reported a failure without details")),
    ];
    for (code, message, expected) in cases {
        server.push_http_faults([Fault::failed(code, message)]);
        let collected = turn(&client, &prompt(vec![user("fail please")])).await;
        assert_eq!(
            collected.events,
            [ResponseEvent::Created { response_id: Some("resp_failed".into()) }],
            "{code}"
        );
        assert_eq!(collected.error, Some(expected), "{code}: {message}");
    }
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn response_incomplete_through_stream() {
    let server = TestServer::scripted().await.unwrap();
    server.push_http_faults([Fault::incomplete("max_output_tokens")]);
    let client = client(http_config(&server), &Notices::default());
    let collected = turn(&client, &prompt(vec![user("write a novel")])).await;
    assert_eq!(
        collected.events,
        [ResponseEvent::Created { response_id: Some("resp_incomplete".into()) }]
    );
    assert_eq!(
        collected.error,
        Some(CompactorError::stream("Incomplete response returned, reason: max_output_tokens"))
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn stream_ends_after_completed() {
    let server = TestServer::scripted().await.unwrap();
    let mut events = reply("resp_1", "done");
    events.push(ev_output_text_delta("msg_late", "after the end"));
    events.push(ev_completed("resp_2"));
    server.push_sse(events);
    let client = client(http_config(&server), &Notices::default());
    let mut session = client.new_session();
    let mut stream = open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let event = bounded(stream.next()).await.unwrap().unwrap();
        let last = matches!(event, ResponseEvent::Completed { .. });
        seen.push(event);
        if last {
            break;
        }
    }
    assert!(bounded(stream.next()).await.is_none(), "nothing follows Completed");
    assert!(
        matches!(&seen[..], [ResponseEvent::Created { .. }, ResponseEvent::OutputItemDone { .. }, ResponseEvent::Completed { response_id, .. }] if response_id == "resp_1")
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn early_end_is_the_streams_last_item() {
    let server = TestServer::scripted().await.unwrap();
    server
        .push_http(HttpScript::new(reply("resp_1", "cut")).with_fault(Fault::CloseAfterEvents(2)));
    let notices = Notices::default();
    let client = client(http_config(&server), &notices);
    let collected = turn(&client, &prompt(vec![user("hi")])).await;
    assert_eq!(collected.events.len(), 2, "{collected:?}");
    assert_eq!(
        collected.error,
        Some(CompactorError::stream("stream closed before response.completed"))
    );
    assert_eq!(notices.all(), [], "failures after events flowed are the caller's to retry");
    assert_eq!(server.requests().len(), 1);
    server.shutdown().await.unwrap();
}

/// D10: an idle timeout before the first event is retried, whether the server is silent
/// before its response head or after it.
#[tokio::test]
async fn idle_timeout_before_the_first_event_is_retried() {
    for fault in [
        Fault::DelayBeforeFirstEvent(Duration::from_secs(5)),
        Fault::DelayBeforeResponse(Duration::from_secs(5)),
    ] {
        let server = TestServer::scripted().await.unwrap();
        server.push_http(HttpScript::new(reply("resp_slow", "late")).with_fault(fault.clone()));
        server.push_sse(reply("resp_2", "on time"));
        let mut config = http_config(&server);
        config.stream_idle_timeout = Duration::from_millis(750);
        let notices = Notices::default();
        let client = client(config, &notices);
        let collected = turn(&client, &prompt(vec![user("hi")])).await;
        assert_eq!(collected.error, None, "{fault:?}");
        assert_eq!(collected.response_id(), "resp_2", "{fault:?}");
        assert_eq!(server.requests().len(), 2, "{fault:?}");
        assert_eq!(notices.messages(), ["Reconnecting... 1/2"], "{fault:?}");
        let ClientNotice::Retry(retry) = &notices.all()[0] else { panic!("not a retry") };
        assert!(
            matches!(retry.error, CompactorError::Stream { .. } | CompactorError::Timeout(_)),
            "{fault:?}: {:?}",
            retry.error
        );
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn idle_timeout_after_events_ends_the_stream() {
    let server = TestServer::scripted().await.unwrap();
    server.push_http(
        HttpScript::new(reply("resp_1", "slow"))
            .with_fault(Fault::DelayBetweenEvents(Duration::from_secs(5))),
    );
    let mut config = http_config(&server);
    config.stream_idle_timeout = Duration::from_millis(750);
    let notices = Notices::default();
    let client = client(config, &notices);
    let collected = turn(&client, &prompt(vec![user("hi")])).await;
    assert_eq!(collected.events.len(), 1);
    assert_eq!(collected.error, Some(CompactorError::stream("idle timeout waiting for SSE")));
    assert_eq!(notices.all(), []);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn response_headers_become_events() {
    let server = TestServer::scripted().await.unwrap();
    server.push_http(
        HttpScript::new(reply("resp_1", "hi"))
            .with_header("openai-model", "gpt-served")
            .with_header("x-models-etag", "etag-7")
            .with_header("x-reasoning-included", "true")
            .with_header("x-codex-primary-used-percent", "42.5")
            .with_header("x-codex-primary-window-minutes", "300")
            .with_header("x-codex-primary-reset-at", "1767225600"),
    );
    let client = client(http_config(&server), &Notices::default());
    let collected = turn(&client, &prompt(vec![user("hi")])).await;
    let primary = RateLimitWindow {
        used_percent: 42.5,
        window_minutes: Some(300),
        resets_at: Some(1_767_225_600),
    };
    assert_eq!(
        collected.events[..5],
        [
            ResponseEvent::ServerModel { model: "gpt-served".into() },
            ResponseEvent::ModelsEtag { etag: "etag-7".into() },
            ResponseEvent::ServerReasoningIncluded { included: true },
            ResponseEvent::RateLimits {
                snapshot: RateLimitSnapshot { primary: Some(primary), secondary: None },
            },
            ResponseEvent::Created { response_id: Some("resp_1".into()) },
        ]
    );
    assert_eq!(collected.error, None);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn dropping_the_stream_mid_response_ends_the_request() {
    let server = TestServer::scripted().await.unwrap();
    server.push_http(
        HttpScript::new(reply("resp_1", "slow"))
            .with_fault(Fault::DelayBetweenEvents(Duration::from_secs(30))),
    );
    server.push_sse(reply("resp_2", "next"));
    let client = client(http_config(&server), &Notices::default());
    let mut session = client.new_session();
    let mut stream = open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap();
    let first = bounded(stream.next()).await.unwrap().unwrap();
    assert!(matches!(first, ResponseEvent::Created { .. }));
    drop(stream);
    // The session serves the next request at once.
    let collected =
        collect(bounded(session.stream(&prompt(vec![user("again")]), &settings())).await.unwrap())
            .await;
    assert_eq!(collected.response_id(), "resp_2");
    server.shutdown().await.unwrap();
}

/// A harness spawns turns: the client is shared across tasks, and a session, its `stream()`
/// future and the stream move into them.
#[test]
fn the_api_works_across_tasks() {
    fn send<T: Send>(_: &T) {}
    fn send_sync<T: Send + Sync>(_: &T) {}
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _entered = runtime.enter();
    let config = compactor_client::ProviderConfig::new("unused", "http://127.0.0.1:9/v1");
    let client = compactor_client::ModelClient::builder(config, THREAD_ID).build().unwrap();
    send_sync(&client);
    let mut session = client.new_session();
    let prompt = prompt(vec![user("hi")]);
    let settings = settings();
    {
        let future = session.stream(&prompt, &settings);
        send(&future);
    }
    send(&session);
    send(&client.compact(&prompt, &settings));
}

/// What one request reported (logical request, whether a wire message differed, size), and
/// what the server received for it.
type ReportedAndReceived = ((bytes::Bytes, bool, u64), compactor_testkit::RecordedRequest);

/// Streams `items` and then compacts them over HTTP against a scripted server, keeping every
/// report beside the request the server recorded.
async fn stream_and_compact(
    items: Vec<compactor_protocol::ResponseItem>,
) -> Vec<ReportedAndReceived> {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("resp_1", "read it"));
    server.push_compact_json(json!({"output": [
        {"type": "compaction", "encrypted_content": "ENC"}
    ]}));
    let client = client(http_config(&server), &Notices::default());
    let mut session = client.new_session();
    let prompt = prompt(items);
    let mut reports = Vec::new();
    let mut keep = |sent: &compactor_client::SentRequest<'_>| {
        reports.push((
            sent.request_json().unwrap(),
            sent.wire_message().unwrap().is_some(),
            sent.wire_len(),
        ));
    };
    let stream =
        bounded(session.stream_with_report(&prompt, &settings(), &mut keep)).await.unwrap();
    collect(stream).await;
    bounded(client.compact_with_report(&prompt, &settings(), &mut keep)).await.unwrap();
    let recorded = server.requests();
    server.assert_no_violations();
    server.shutdown().await.unwrap();
    assert_eq!(reports.len(), 2);
    reports.into_iter().zip(recorded).collect()
}

#[tokio::test]
async fn the_report_is_the_body_the_server_received() {
    for ((body, has_wire, len), recorded) in stream_and_compact(vec![user("hi")]).await {
        assert_eq!(body, recorded.body, "{}", recorded.path());
        assert!(!has_wire, "over HTTP the body is what went out");
        assert_eq!(len, recorded.body.len() as u64);
    }
}

#[tokio::test]
async fn a_body_of_many_pieces_goes_out_whole_with_its_length() {
    // About 2.6 MB: a hundred items of 13 KB, and one of 1.3 MB larger than a piece;
    // multi-byte characters throughout.
    let small: String = "éa🦀".repeat(2_000);
    let mut items = vec![user("summarize this"), user(&"éa🦀".repeat(200_000))];
    items.extend((0..100).map(|n| user(&format!("{n} {small}"))));
    for ((body, _, len), recorded) in stream_and_compact(items).await {
        assert!(body.len() > 2_000_000, "{} bytes", body.len());
        assert_eq!(body, recorded.body, "{}", recorded.path());
        assert_eq!(len, body.len() as u64);
        // The length is declared, not left to chunked transfer encoding.
        assert_eq!(recorded.header("content-length"), Some(body.len().to_string().as_str()));
        assert_eq!(recorded.header("transfer-encoding"), None);
        assert_eq!(recorded.input().len(), 102);
    }
}

/// Streams `items` over HTTP with `lens` given as their JSON lengths, and returns what was
/// reported last, the requests the server recorded, and the stream's items.
async fn stream_with_lens(
    items: Vec<compactor_protocol::ResponseItem>,
    lens: Vec<u64>,
) -> ((bytes::Bytes, u64), Vec<compactor_testkit::RecordedRequest>, usize) {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("resp_1", "read it"));
    let client = client(http_config(&server), &Notices::default());
    let mut session = client.new_session();
    let mut prompt = prompt(items);
    prompt.input_json_lens = Some(lens);
    let mut last = None;
    // A body whose given lengths are wrong cannot be written, for the report either.
    let mut keep = |sent: &compactor_client::SentRequest<'_>| {
        last = sent.request_json().ok().map(|json| (json, sent.wire_len()));
    };
    let stream =
        bounded(session.stream_with_report(&prompt, &settings(), &mut keep)).await.unwrap();
    let events = collect(stream).await.events.len();
    let recorded = server.requests();
    server.shutdown().await.unwrap();
    (last.unwrap(), recorded, events)
}

/// Items in one piece, and items in many pieces with the last larger than a piece.
fn short_and_long_inputs() -> [Vec<compactor_protocol::ResponseItem>; 2] {
    let small: String = "éa🦀\n\"".repeat(2_000);
    let mut long = vec![user("summarize this")];
    long.extend((0..100).map(|n| user(&format!("{n} {small}"))));
    long.push(user(&"éa🦀".repeat(200_000)));
    [vec![user("hi"), user("there")], long]
}

#[tokio::test]
async fn given_item_lengths_declare_the_body_without_counting_it() {
    for items in short_and_long_inputs() {
        let lens = items.iter().map(compactor_protocol::tokens::json_len).collect();
        let count = items.len();
        let ((body, len), recorded, events) = stream_with_lens(items, lens).await;
        assert!(events > 0);
        assert_eq!(recorded.len(), 1);
        assert_eq!(body, recorded[0].body);
        assert_eq!(len, body.len() as u64);
        assert_eq!(recorded[0].header("content-length"), Some(body.len().to_string().as_str()));
        assert_eq!(recorded[0].input().len(), count);
    }
}

#[tokio::test]
async fn a_wrong_item_length_sends_the_request_again_counted() {
    for items in short_and_long_inputs() {
        let count = items.len();
        // The last item is said to be one byte shorter, then one longer, than it is: in a
        // long body the pieces before it have gone out by the time it is written.
        for wrong in [-1i64, 1] {
            let mut lens: Vec<u64> =
                items.iter().map(compactor_protocol::tokens::json_len).collect();
            let last = lens.len() - 1;
            lens[last] = lens[last].saturating_add_signed(wrong);
            let ((body, len), recorded, events) = stream_with_lens(items.clone(), lens).await;
            assert!(events > 0, "the request is answered");
            let answered = recorded.last().unwrap();
            assert_eq!(body, answered.body, "the last report is the body that was answered");
            assert_eq!(len, body.len() as u64);
            assert_eq!(answered.header("content-length"), Some(body.len().to_string().as_str()));
            assert_eq!(answered.input().len(), count);
            assert_eq!(recorded.len(), 1, "a cut body is not a request");
        }
    }
}
