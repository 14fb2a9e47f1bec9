//! Tests of reading WebSocket client messages.

use serde_json::json;

use super::*;

/// The direct reading of a `response.create` gives what the generic reading gives.
#[test]
fn create_messages_read_directly_as_generically() {
    let messages = [
        json!({"type": "response.create", "model": "m", "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "context_compaction"},
        ], "tools": [], "previous_response_id": "resp_1", "generate": false}),
        json!({"model": "m", "type": "response.create", "input": []}),
        json!({"type": "response.processed", "response_id": "resp_2"}),
    ];
    for message in messages {
        let text = message.to_string();
        let generic: WsClientMessage<'static> = serde_json::from_str(&text).unwrap();
        assert_eq!(parse_client_message(&text).unwrap(), generic, "{text}");
    }
    assert!(parse_client_message(r#"{"type":"response.create","model":1}"#).is_err());
}
