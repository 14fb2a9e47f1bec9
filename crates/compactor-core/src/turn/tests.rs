//! Tests of what a normal request declares: the JSON length of each of its items.

use compactor_client::{ProviderConfig, WebsocketMode};
use compactor_engine::InputModalities;
use compactor_protocol::{PassThroughList, ToolOutput};
use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;
use crate::config::{ModelInfo, SessionConfig};

async fn session(websocket: WebsocketMode, model: &ModelInfo) -> Session {
    let mut provider = ProviderConfig::new("test", "http://127.0.0.1:9/v1");
    provider.websocket = websocket;
    provider.pass_through = PassThroughList::default();
    Session::builder(SessionConfig::new(provider, model.clone())).build().await.unwrap().0
}

/// A history that normalization changes: an image a text-only model does not get, a call with
/// no output, an output with no call, an unknown item kept out and one passed through.
fn history() -> Vec<ResponseItem> {
    let item = |value| serde_json::from_value::<ResponseItem>(value).unwrap();
    vec![
        ResponseItem::user_text("list the files\nplease \"now\""),
        item(json!({"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "and this"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}
        ]})),
        item(json!({"type": "function_call", "name": "shell", "arguments": "{}", "call_id": "c1"})),
        ResponseItem::FunctionCallOutput {
            call_id: "c0".into(),
            output: ToolOutput::Text("orphan".into()),
        },
        item(json!({"type": "function_call", "name": "shell", "arguments": "{}", "call_id": "c2"})),
        ResponseItem::FunctionCallOutput {
            call_id: "c2".into(),
            output: ToolOutput::Text("a.txt\nb.txt".into()),
        },
        item(json!({"type": "mystery_item", "payload": "kept out"})),
        item(json!({"type": "configuration_update", "settings": {"a": 1}})),
        ResponseItem::assistant_text("Two files: é and 🦀."),
    ]
}

#[tokio::test]
async fn an_http_requests_item_lengths_are_the_json_lengths_of_its_items() {
    let mut model = ModelInfo::new("m", 100_000);
    model.input_modalities = InputModalities::TextOnly;
    let session = session(WebsocketMode::Disabled, &model).await;
    session.record_items(history()).await.unwrap();
    let history = Arc::clone(&session.state().history);
    let prompt = session.turn_prompt(&model, &history);
    assert!(prompt.input.iter().any(|item| matches!(item, Cow::Owned(_))), "normalized");
    assert!(prompt.input.len() != history.len());
    let lens = session.input_json_lens(session.client(), &history, &prompt.input);
    let expected: Vec<u64> =
        prompt.input.iter().map(|item| serde_json::to_vec(item).unwrap().len() as u64).collect();
    assert_eq!(lens, Some(expected));

    // A copy of the history is not the session's: its request counts its own length.
    let copy = Arc::new(history.to_vec());
    let prompt = session.turn_prompt(&model, &copy);
    assert_eq!(session.input_json_lens(session.client(), &copy, &prompt.input), None);
}

#[tokio::test]
async fn a_websocket_request_declares_no_length() {
    let model = ModelInfo::new("m", 100_000);
    let session = session(WebsocketMode::Enabled, &model).await;
    session.record_items(history()).await.unwrap();
    let history = Arc::clone(&session.state().history);
    let prompt = session.turn_prompt(&model, &history);
    assert_eq!(session.input_json_lens(session.client(), &history, &prompt.input), None);
}
