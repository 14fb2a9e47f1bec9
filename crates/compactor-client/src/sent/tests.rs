//! Tests of what a request reports: the logical request in its HTTP form, the wire message.

use compactor_protocol::{Prompt, ResponseItem, TurnSettings, WsClientMessage, owned_items};
use pretty_assertions::assert_eq;
use serde_json::Value;

use super::*;

fn prompt() -> Prompt<'static> {
    Prompt {
        input: owned_items([ResponseItem::user_text("hi"), ResponseItem::assistant_text("ok")]),
        ..Prompt::default()
    }
}

#[test]
fn http_reports_the_body_it_sent() {
    let json = br#"{"model":"m","stream":true}"#;
    let body = HttpBody::new(crate::body::JsonPieces::whole(json.to_vec()));
    let sent = SentRequest::http(&body);
    assert_eq!(sent.request_json().unwrap(), &json[..]);
    assert_eq!(sent.wire_message().unwrap(), None);
    assert_eq!(sent.wire_len(), 27);
}

#[test]
fn websocket_reports_the_logical_request_in_its_http_form() {
    let prompt = prompt();
    let settings = TurnSettings { model: "m".into(), ..TurnSettings::default() };
    let mut request = ResponsesApiRequest::from_prompt(&prompt, &settings);
    request.prompt_cache_key = Some("thread-1".into());
    let http_body = json_body(&request).unwrap();
    request.stream = None;
    let mut incremental = request.reborrow();
    incremental.input = (&request.input[1..]).into();
    incremental.previous_response_id = Some("resp-1".into());
    let message =
        serde_json::to_string(&WsClientMessage::ResponseCreate(Box::new(incremental.reborrow())))
            .unwrap();

    let len = u64::try_from(message.len()).unwrap();
    let sent = SentRequest::websocket(&request, &incremental, len);
    assert_eq!(sent.request_json().unwrap(), http_body, "the body HTTP would have sent");
    assert_eq!(sent.wire_message().unwrap().as_deref(), Some(message.as_bytes()));
    assert_eq!(sent.wire_len(), u64::try_from(message.len()).unwrap());
    let logical: Value = serde_json::from_slice(&sent.request_json().unwrap()).unwrap();
    assert_eq!(logical["input"].as_array().map(Vec::len), Some(2), "the full input");
    assert_eq!(logical["prompt_cache_key"], "thread-1");
}
