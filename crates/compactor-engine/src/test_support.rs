//! Small item builders shared by the unit tests.

use compactor_protocol::{ContentItem, ResponseItem, ToolOutput};
use serde_json::json;

pub(crate) fn user(text: &str) -> ResponseItem {
    ResponseItem::user_text(text)
}

pub(crate) fn assistant(text: &str) -> ResponseItem {
    ResponseItem::assistant_text(text)
}

pub(crate) fn developer(text: &str) -> ResponseItem {
    ResponseItem::developer_text(text)
}

pub(crate) fn message(role: &str, text: &str) -> ResponseItem {
    ResponseItem::Message {
        id: None,
        role: role.to_owned(),
        content: vec![ContentItem::InputText { text: text.to_owned() }],
        phase: None,
        extra: Default::default(),
    }
}

pub(crate) fn data_url_image() -> ContentItem {
    ContentItem::InputImage {
        image_url: format!("data:image/png;base64,{}", "A".repeat(400)),
        detail: None,
    }
}

pub(crate) fn user_with_image(text: &str) -> ResponseItem {
    ResponseItem::Message {
        id: None,
        role: "user".to_owned(),
        content: vec![ContentItem::InputText { text: text.to_owned() }, data_url_image()],
        phase: None,
        extra: Default::default(),
    }
}

pub(crate) fn call(call_id: &str, name: &str) -> ResponseItem {
    ResponseItem::FunctionCall {
        id: None,
        name: name.to_owned(),
        namespace: None,
        arguments: "{}".to_owned(),
        call_id: call_id.to_owned(),
    }
}

pub(crate) fn output(call_id: &str, text: &str) -> ResponseItem {
    ResponseItem::FunctionCallOutput {
        call_id: call_id.to_owned(),
        output: ToolOutput::Text(text.to_owned()),
    }
}

pub(crate) fn custom_call(call_id: &str, name: &str) -> ResponseItem {
    ResponseItem::CustomToolCall {
        id: None,
        status: None,
        call_id: call_id.to_owned(),
        name: name.to_owned(),
        input: "patch".to_owned(),
    }
}

pub(crate) fn custom_output(call_id: &str, text: &str) -> ResponseItem {
    ResponseItem::CustomToolCallOutput {
        call_id: call_id.to_owned(),
        name: None,
        output: ToolOutput::Text(text.to_owned()),
    }
}

pub(crate) fn tool_search_call(call_id: &str) -> ResponseItem {
    ResponseItem::ToolSearchCall {
        id: None,
        call_id: Some(call_id.to_owned()),
        status: None,
        execution: "client".to_owned(),
        arguments: Box::new(json!({"query": "files"})),
    }
}

pub(crate) fn tool_search_output(call_id: &str) -> ResponseItem {
    ResponseItem::ToolSearchOutput {
        call_id: Some(call_id.to_owned()),
        status: "completed".to_owned(),
        execution: "client".to_owned(),
        tools: vec![json!({"type": "function", "name": "read_file"})],
    }
}

pub(crate) fn reasoning(encrypted_len: usize) -> ResponseItem {
    ResponseItem::Reasoning {
        id: None,
        summary: vec![],
        content: None,
        encrypted_content: Some("E".repeat(encrypted_len)),
    }
}

pub(crate) fn context_compaction(payload: &str) -> ResponseItem {
    ResponseItem::ContextCompaction { id: None, encrypted_content: Some(payload.to_owned()) }
}

pub(crate) fn compaction(payload: &str) -> ResponseItem {
    ResponseItem::Compaction { id: None, encrypted_content: payload.to_owned(), created_by: None }
}

pub(crate) fn unknown(item_type: &str) -> ResponseItem {
    serde_json::from_value(json!({"type": item_type, "data": "opaque"})).unwrap()
}
