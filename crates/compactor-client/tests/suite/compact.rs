//! `POST /responses/compact` (D8) against the reference model and scripted answers.

use compactor_protocol::{CompactorError, Prompt, ResponseItem, TurnSettings, owned_items};
use compactor_testkit::events::function_call_item;
use compactor_testkit::{CompactScript, Fault, TestServer};
use pretty_assertions::assert_eq;
use serde_json::json;

use crate::common::{
    MODEL, Notices, TEST_KEY, THREAD_ID, bounded, client, http_config, item, prompt, turn, user,
};

fn history() -> Vec<ResponseItem> {
    vec![
        user("read the config file"),
        item(function_call_item("call_1", "shell", "{\"cmd\":\"cat compactor.toml\"}")),
        item(
            json!({"type": "function_call_output", "call_id": "call_1", "output": "[provider]\nname = \"x\""}),
        ),
        ResponseItem::assistant_text("The provider is x."),
        user("now summarize it"),
        ResponseItem::assistant_text("It configures provider x."),
    ]
}

#[tokio::test]
async fn compact_round_trips_against_the_reference_model() {
    let server = TestServer::reference_model().await.unwrap();
    let client = client(http_config(&server), &Notices::default());
    let prompt = Prompt {
        input: owned_items(history()),
        base_instructions: "You are a test model.".to_owned(),
        ..Prompt::default()
    };
    let settings = TurnSettings {
        model: MODEL.to_owned(),
        verbosity: Some("low".to_owned()),
        ..TurnSettings::default()
    };
    let compacted = bounded(client.compact(&prompt, &settings)).await.unwrap();

    let requests = server.compact_requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.path(), "/v1/responses/compact");
    let authorization = format!("Bearer {TEST_KEY}");
    assert_eq!(request.header("authorization"), Some(authorization.as_str()));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(request.header("x-client-request-id"), Some(THREAD_ID));
    let body = request.body_json();
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["instructions"], "You are a test model.");
    assert_eq!(body["prompt_cache_key"], THREAD_ID);
    assert_eq!(body["text"], json!({"verbosity": "low"}));
    assert_eq!(body.get("stream"), None, "a unary call");
    assert_eq!(request.input().len(), history().len());

    let kinds: Vec<&str> = compacted.iter().map(ResponseItem::item_type).collect();
    assert_eq!(kinds, ["message", "message", "compaction"], "{compacted:?}");
    let users: Vec<String> = compacted.iter().filter_map(ResponseItem::message_text).collect();
    assert_eq!(users, ["read the config file", "now summarize it"]);

    // The compacted history is accepted back, and the model reads its sealed item.
    let mut next = compacted.clone();
    next.push(user("what was the provider?"));
    let collected = turn(&client, &crate::common::prompt(next)).await;
    assert_eq!(collected.error, None);
    let reply = collected.output_items()[0].message_text().unwrap();
    assert!(reply.contains("memory: 1 compaction(s)"), "{reply}");
    let sent = server.responses_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].inputs_of_type("compaction").len(), 1);
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn compact_of_an_empty_history_sends_nothing() {
    let server = TestServer::reference_model().await.unwrap();
    let client = client(http_config(&server), &Notices::default());
    let compacted =
        bounded(client.compact(&prompt(Vec::new()), &crate::common::settings())).await.unwrap();
    assert_eq!(compacted, []);
    assert_eq!(server.requests().len(), 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn compact_retries_a_500_and_maps_a_400() {
    let server = TestServer::reference_model().await.unwrap();
    server.push_compact_faults([Fault::internal_error()]);
    let notices = Notices::default();
    let client = client(http_config(&server), &notices);
    let compacted =
        bounded(client.compact(&prompt(history()), &crate::common::settings())).await.unwrap();
    assert_eq!(compacted.last().map(ResponseItem::item_type), Some("compaction"));
    assert_eq!(server.compact_requests().len(), 2);
    assert_eq!(notices.messages(), ["Reconnecting... 1/2"]);

    server.push_compact_faults([Fault::error(400, "invalid_value", "No.")]);
    let err =
        bounded(client.compact(&prompt(history()), &crate::common::settings())).await.unwrap_err();
    assert_eq!(err, CompactorError::InvalidRequest("No.".into()));
    assert_eq!(server.compact_requests().len(), 3);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn compact_answer_that_is_not_a_compaction_is_a_stream_error() {
    let server = TestServer::scripted().await.unwrap();
    server.push_compact(CompactScript::json(json!({"unexpected": true})));
    let client = client(http_config(&server), &Notices::default());
    let err =
        bounded(client.compact(&prompt(history()), &crate::common::settings())).await.unwrap_err();
    assert!(matches!(err, CompactorError::Stream { .. }), "{err:?}");
    server.shutdown().await.unwrap();
}
