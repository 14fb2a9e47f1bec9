//! Tests of the traffic log's lines and redaction.

use http::HeaderValue;
use pretty_assertions::assert_eq;

use super::*;

#[track_caller]
fn check_uri(uri: &str, expected: &str) {
    assert_eq!(redacted_uri(&uri.parse().unwrap()), expected);
}

#[test]
fn credential_query_parameters_are_redacted() {
    check_uri("/v1/responses", "/v1/responses");
    check_uri("/v1/responses?api-key=s1", "/v1/responses?api-key=[redacted]");
    check_uri("/r?Token=s&x=1&access_token=t", "/r?Token=[redacted]&x=1&access_token=[redacted]");
    check_uri("/r?flag&api_key=k", "/r?flag&api_key=[redacted]");
}

#[track_caller]
fn check_headers(headers: &[(&str, &str)], expected: &Value) {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    assert_eq!(&redacted_headers(&map), expected);
}

#[test]
fn credential_headers_are_redacted() {
    check_headers(
        &[("authorization", "Bearer sk-1"), ("content-type", "application/json")],
        &json!({"authorization": "Bearer [redacted]", "content-type": "application/json"}),
    );
    check_headers(&[("authorization", "sk-bare")], &json!({"authorization": "[redacted]"}));
    check_headers(
        &[("api-key", "a"), ("x-goog-api-key", "b"), ("x-session-token", "c"), ("cookie", "d")],
        &json!({"api-key": "[redacted]", "x-goog-api-key": "[redacted]",
               "x-session-token": "[redacted]", "cookie": "[redacted]"}),
    );
    check_headers(&[("x-a", "1"), ("x-a", "2")], &json!({"x-a": ["1", "2"]}));
}

#[test]
fn lines_name_what_was_received() {
    let message = Traffic::Message { connection: 2, index: 5, text: "{\"type\":\"x\"}".into() };
    assert_eq!(
        to_json(7, &message),
        json!({"kind": "ws_message", "at_ms": 7, "connection": 2, "index": 5, "message": {"type": "x"}})
    );
    let request = Traffic::Request {
        index: 0,
        method: Method::POST,
        uri: "/v1/responses/compact".parse().unwrap(),
        headers: HeaderMap::new(),
        body: Bytes::new(),
    };
    assert_eq!(
        to_json(1, &request),
        json!({"kind": "http_request", "at_ms": 1, "index": 0, "method": "POST",
               "uri": "/v1/responses/compact", "headers": {}})
    );
}
