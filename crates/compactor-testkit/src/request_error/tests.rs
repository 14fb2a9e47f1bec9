//! Tests of the API-shaped answers to malformed request bodies.

use compactor_protocol::{CompactRequest, ResponsesApiRequest};
use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;

#[track_caller]
fn check(body: &str, code: &str, param: Option<&str>) {
    let reply = invalid_body::<ResponsesApiRequest<'static>>(body.as_bytes());
    assert_eq!((reply.status, reply.error_type.as_str()), (400, "invalid_request_error"), "{body}");
    assert_eq!((reply.code.as_str(), reply.param.as_deref()), (code, param), "{body}");
    let error = &reply.body_json()["error"];
    let keys: Vec<&String> = error.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["type", "code", "message", "param"]);
    assert_eq!(error["param"], param.map_or(json!(null), |param| json!(param)));
}

#[test]
fn each_fault_names_its_parameter() {
    check(r#"{"input":"hi"}"#, "missing_required_parameter", Some("model"));
    check(r#"{"model":5,"input":"hi"}"#, "invalid_type", Some("model"));
    check(r#"{"model":"m","input":7}"#, "invalid_type", Some("input"));
    check(r#"{"model":"m","input":[],"tools":"shell"}"#, "invalid_type", Some("tools"));
    check(r#"{"model":"m","store":"yes"}"#, "invalid_type", Some("store"));
    check(r#"{"model":"m","reasoning":{"effort":1}}"#, "invalid_type", Some("reasoning.effort"));
    check(
        r#"{"model":"m","text":{"format":{"type":"json_schema"}}}"#,
        "missing_required_parameter",
        Some("text.format.strict"),
    );
    check(
        r#"{"model":"m","context_management":[{"type":"sometimes"}]}"#,
        "invalid_value",
        Some("context_management[0].type"),
    );
    check(r#"{"model":"m","#, "invalid_json", None);
    check("not json", "invalid_json", None);
    check(r#"{"model":"m"} {"model":"n"}"#, "invalid_json", None);
}

#[test]
fn messages_read_like_the_api() {
    let reply = invalid_body::<ResponsesApiRequest<'static>>(br#"{"input":"hi"}"#);
    assert_eq!(reply.message, "Missing required parameter: 'model'.");
    let reply = invalid_body::<ResponsesApiRequest<'static>>(br#"{"model":"m","input":7}"#);
    assert_eq!(
        reply.message,
        "Invalid type for 'input': expected a list of input items or a string, but got integer `7` instead."
    );
    let reply = invalid_body::<CompactRequest<'static>>(br#"{"model":"m","input":[],"tools":{}}"#);
    assert_eq!(reply.param.as_deref(), Some("tools"));
}
