//! The reference model over real sockets: sealed compaction round trips, keys, tampering,
//! `previous_response_id`, prewarm, `/responses/compact`, usage.

use compactor_protocol::ResponseItem;
use compactor_protocol::tokens::TokenCounter;
use compactor_testkit::{Mode, ReferenceModelConfig, SealKey, TestServer, TestServerConfig};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::common::{
    bounded, create, kinds, post, request, sse_events, user, ws_connect, ws_recv_response, ws_send,
};

/// `turns` user/assistant pairs of about 1 KB each.
fn long_history(turns: usize) -> Vec<Value> {
    (0..turns)
        .flat_map(|turn| {
            let filler = "lorem ipsum dolor sit amet ".repeat(20);
            [
                user(&format!("question {turn}: {filler}")),
                json!({"type": "message", "role": "assistant",
                       "content": [{"type": "output_text", "text": format!("answer {turn}: {filler}")}]}),
            ]
        })
        .collect()
}

/// The input tokens the reference model reports: counted with o200k, as a real server does.
fn estimate(instructions: &str, input: &[Value]) -> u64 {
    let items: Vec<ResponseItem> = serde_json::from_value(Value::from(input.to_vec())).unwrap();
    TokenCounter::O200k.history_tokens(instructions, &items)
}

fn completed(events: &[Value]) -> &Value {
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.completed", "{events:#?}");
    &last["response"]
}

fn input_tokens(events: &[Value]) -> u64 {
    completed(events)["usage"]["input_tokens"].as_u64().unwrap()
}

async fn respond(server: &TestServer, body: &Value) -> Vec<Value> {
    sse_events(post(&server.responses_url(), body).await).await
}

/// Compacts `history` with `trigger` on `server`; returns the sealed item.
async fn compact(server: &TestServer, history: &[Value], trigger: &str) -> Value {
    let mut input = history.to_vec();
    input.push(json!({"type": trigger}));
    let events = respond(server, &request(&input)).await;
    let output = completed(&events)["output"].as_array().unwrap().clone();
    assert_eq!(output.len(), 1, "{output:#?}");
    let done: Vec<&Value> =
        events.iter().filter(|e| e["type"] == "response.output_item.done").collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["item"], output[0]);
    output[0].clone()
}

async fn error_body(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    bounded(response.json()).await.unwrap()
}

#[tokio::test]
async fn sealed_item_round_trip_cuts_usage() {
    let server = TestServer::reference_model().await.unwrap();
    let history = long_history(60);
    for (trigger, kind) in
        [("context_compaction", "context_compaction"), ("compaction_trigger", "compaction")]
    {
        let before = input_tokens(&respond(&server, &request(&history)).await);
        assert_eq!(before, estimate("", &history), "usage is the engine's estimate");
        let sealed = compact(&server, &history, trigger).await;
        assert_eq!(sealed["type"], kind);
        let digest =
            SealKey::default().open(sealed["encrypted_content"].as_str().unwrap()).unwrap();
        assert_eq!(digest["items"], json!(120));

        let next = [user("question 0"), sealed.clone(), user("what next?")];
        let events = respond(&server, &request(&next)).await;
        let after = input_tokens(&events);
        assert_eq!(after, estimate("", &next));
        assert!(after * 100 < before, "{kind}: {after} tokens after vs {before} before");
        let reply = &completed(&events)["output"][0]["content"][0]["text"];
        assert_eq!(
            reply,
            "Reply to user message 2: \"what next?\". (memory: 1 compaction(s) covering 120 earlier items)"
        );
    }
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn keys_decide_who_accepts_an_item() {
    let first = TestServer::reference_model().await.unwrap();
    let second = TestServer::reference_model().await.unwrap();
    let keyed = |key: &str| TestServerConfig {
        mode: Mode::ReferenceModel(ReferenceModelConfig {
            seal_key: SealKey::new(key),
            ..ReferenceModelConfig::default()
        }),
        ..TestServerConfig::default()
    };
    let other = TestServer::start(keyed("another key")).await.unwrap();
    let sealed = compact(&first, &long_history(3), "context_compaction").await;
    let next = request(&[sealed.clone(), user("continue")]);

    let events = respond(&second, &next).await;
    assert_eq!(kinds(&events).last().unwrap(), "response.completed");

    let body = error_body(post(&other.responses_url(), &next).await, 400).await;
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "invalid_encrypted_content");

    // A server with the other key produces items only it accepts.
    let foreign = compact(&other, &long_history(1), "compaction_trigger").await;
    let rejected = post(&first.responses_url(), &request(&[foreign, user("x")])).await;
    assert_eq!(error_body(rejected, 400).await["error"]["code"], "invalid_encrypted_content");
    for server in [first, second, other] {
        server.assert_no_violations();
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn tampered_items_are_rejected() {
    let server = TestServer::reference_model().await.unwrap();
    let sealed = compact(&server, &long_history(2), "context_compaction").await;
    let content = sealed["encrypted_content"].as_str().unwrap();
    let mut bytes = content.as_bytes().to_vec();
    bytes[10] = if bytes[10] == b'Q' { b'R' } else { b'Q' };
    let mut tampered = sealed.clone();
    tampered["encrypted_content"] = json!(String::from_utf8(bytes).unwrap());
    let input = [tampered, user("continue")];

    let body = error_body(post(&server.responses_url(), &request(&input)).await, 400).await;
    assert_eq!(body["error"]["code"], "invalid_encrypted_content");
    assert!(body["error"]["message"].as_str().unwrap().contains("input[0] (context_compaction)"));

    let mut socket = ws_connect(&server.ws_url()).await;
    ws_send(&mut socket, &create(&input)).await;
    let frame = &ws_recv_response(&mut socket).await[0];
    assert_eq!(frame["type"], "error");
    assert_eq!(frame["status"], 400);
    assert_eq!(frame["error"]["code"], "invalid_encrypted_content");
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn previous_response_id_resolves_per_connection() {
    let server = TestServer::reference_model().await.unwrap();
    let mut socket = ws_connect(&server.ws_url()).await;

    ws_send(
        &mut socket,
        &json!({"type": "response.create", "model": "m", "input": [], "generate": false}),
    )
    .await;
    let prewarm = ws_recv_response(&mut socket).await;
    assert_eq!(kinds(&prewarm), ["response.created", "response.completed"]);
    assert_eq!(completed(&prewarm)["output"], json!([]));
    let prewarm_id = completed(&prewarm)["id"].as_str().unwrap().to_owned();

    let first_input = [user("first question")];
    let mut first = create(&first_input);
    first["previous_response_id"] = json!(prewarm_id);
    ws_send(&mut socket, &first).await;
    let events = ws_recv_response(&mut socket).await;
    let first_id = completed(&events)["id"].as_str().unwrap().to_owned();
    let answer = completed(&events)["output"][0].clone();

    let mut second = create(&[user("second question")]);
    second["previous_response_id"] = json!(first_id);
    ws_send(&mut socket, &second).await;
    let events = ws_recv_response(&mut socket).await;
    let full = [user("first question"), answer, user("second question")];
    assert_eq!(input_tokens(&events), estimate("", &full), "usage covers the resolved input");
    assert_eq!(
        completed(&events)["output"][0]["content"][0]["text"],
        "Reply to user message 2: \"second question\"."
    );

    // An incremental compaction: only the trigger is new.
    let mut trigger = create(&[json!({"type": "context_compaction"})]);
    trigger["previous_response_id"] = completed(&events)["id"].clone();
    ws_send(&mut socket, &trigger).await;
    let compacted = ws_recv_response(&mut socket).await;
    let sealed = &completed(&compacted)["output"][0];
    let digest = SealKey::default().open(sealed["encrypted_content"].as_str().unwrap()).unwrap();
    assert_eq!(digest["items"], json!(4));

    let mut unknown = create(&[user("third")]);
    unknown["previous_response_id"] = json!("resp_does_not_exist");
    ws_send(&mut socket, &unknown).await;
    let frame = &ws_recv_response(&mut socket).await[0];
    assert_eq!(frame["type"], "error");
    assert_eq!(frame["status"], 400);
    assert_eq!(frame["error"]["code"], "previous_response_not_found");

    // Ids do not cross connections.
    let mut other = ws_connect(&server.ws_url()).await;
    let mut foreign = create(&[user("x")]);
    foreign["previous_response_id"] = json!(first_id);
    ws_send(&mut other, &foreign).await;
    assert_eq!(
        ws_recv_response(&mut other).await[0]["error"]["code"],
        "previous_response_not_found"
    );

    // The connection stays usable after an error frame.
    ws_send(&mut socket, &create(&[user("fresh")])).await;
    assert_eq!(ws_recv_response(&mut socket).await.last().unwrap()["type"], "response.completed");

    // HTTP keeps no responses.
    let mut over_http = request(&[user("x")]);
    over_http["previous_response_id"] = json!(first_id);
    let body = error_body(post(&server.responses_url(), &over_http).await, 400).await;
    assert_eq!(body["error"]["code"], "previous_response_not_found");
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn compact_endpoint_round_trip() {
    let server = TestServer::reference_model().await.unwrap();
    let history = long_history(30);
    let response =
        post(&server.compact_url(), &json!({"model": "m", "input": history, "instructions": "i"}))
            .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = bounded(response.json()).await.unwrap();
    assert_eq!(body["object"], "response.compaction");
    assert!(body["id"].as_str().unwrap().starts_with("resp_"));
    assert!(body["created_at"].as_u64().unwrap() > 0);
    assert_eq!(body["usage"]["input_tokens"], json!(estimate("i", &history)));
    let output = body["output"].as_array().unwrap();
    assert_eq!(output.len(), 31);
    assert!(output[..30].iter().all(|item| item["role"] == "user"));
    assert_eq!(output[30]["type"], "compaction");

    let events = respond(&server, &request(output)).await;
    let (after, before) = (input_tokens(&events), estimate("", &history));
    // The user half of the history is kept; the answers are sealed away.
    assert!(after * 10 < before * 6, "{after} vs {before}");
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn any_extra_request_fields_are_accepted() {
    let server = TestServer::reference_model().await.unwrap();
    let body = json!({
        "model": "m",
        "instructions": "be brief",
        "input": [user("hi")],
        "tools": [{"type": "function", "name": "shell", "parameters": {"type": "object"}}],
        "tool_choice": "auto",
        "parallel_tool_calls": true,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": false,
        "stream": true,
        "include": ["reasoning.encrypted_content"],
        "service_tier": "priority",
        "prompt_cache_key": "thread-1",
        "text": {"verbosity": "low"},
        "client_metadata": {"x-codex-installation-id": "abc"},
        "prompt_cache_retention": "24h",
        "brand_new_field": [1, 2, 3],
    });
    let events = respond(&server, &body).await;
    let response = completed(&events);
    assert_eq!(response["model"], "m");
    assert_eq!(response["tools"], body["tools"]);
    assert_eq!(response["parallel_tool_calls"], true);
    let tools = TokenCounter::O200k.json_tokens(&body["tools"]);
    assert_eq!(
        response["usage"]["input_tokens"],
        json!(estimate("be brief", &[user("hi")]) + tools),
        "the tools count as input"
    );
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_input_over_the_token_limit_is_a_violation_on_every_route() {
    let server = TestServer::start(TestServerConfig {
        mode: Mode::ReferenceModel(ReferenceModelConfig::default()),
        input_token_limit: Some(200),
        ..TestServerConfig::default()
    })
    .await
    .unwrap();
    // The limit counts as the usage does: 80 words are about 110 tokens with the message around
    // them.
    let within = [user(&"word ".repeat(80))];
    assert!(estimate("", &within) <= 200);
    let events = respond(&server, &request(&within)).await;
    assert_eq!(completed(&events)["status"], "completed");
    server.assert_no_violations();

    let over = [user(&"over ".repeat(300))];
    let response = post(&server.responses_url(), &request(&over)).await;
    assert_eq!(response.status(), 400);
    let violations = server.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].message.contains(&format!("estimated at {} tokens", estimate("", &over))),
        "{}",
        violations[0]
    );

    // Over WebSocket the input counts resolved through `previous_response_id`: each message is
    // small, the second one's resolved input is not.
    let mut socket = ws_connect(&server.ws_url()).await;
    ws_send(&mut socket, &create(&within)).await;
    let first = ws_recv_response(&mut socket).await;
    let mut second = create(&within);
    second["previous_response_id"] = completed(&first)["id"].clone();
    ws_send(&mut socket, &second).await;
    let frame = &ws_recv_response(&mut socket).await[0];
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["status"], 400);
    assert_eq!(server.violations().len(), 2);

    // `/responses/compact` too, instructions included.
    let body = json!({"model": "m", "instructions": "i".repeat(800), "input": within});
    let response = post(&server.compact_url(), &body).await;
    assert_eq!(response.status(), 400);
    assert_eq!(server.violations().len(), 3);
    bounded(server.shutdown()).await.unwrap();
}
