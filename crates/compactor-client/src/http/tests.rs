//! Tests of the SSE reader over recorded peer streams, and of HTTP status mapping.

use std::path::PathBuf;
use std::time::Duration;

use compactor_protocol::ResponseItem;
use pretty_assertions::assert_eq;

use super::*;

fn body_of(chunks: Vec<Vec<u8>>) -> BodyStream {
    futures::stream::iter(chunks.into_iter().map(|chunk| Ok(Bytes::from(chunk)))).boxed()
}

/// Reads every item of a stream: events, then the terminal error if there is one.
async fn read_all(chunks: Vec<Vec<u8>>) -> (Vec<ResponseEvent>, Option<CompactorError>) {
    read_all_capped(chunks, crate::config::DEFAULT_MAX_EVENT_BYTES).await
}

/// [`read_all`] under a cap of `max` bytes per line and event.
async fn read_all_capped(
    chunks: Vec<Vec<u8>>,
    max: usize,
) -> (Vec<ResponseEvent>, Option<CompactorError>) {
    let mut reader = SseReader::new(body_of(chunks), Duration::from_secs(5), max);
    let mut events = Vec::new();
    loop {
        match reader.next().await {
            Read::Event(event) => events.push(event),
            Read::Completed(event) => {
                events.push(event);
                return (events, None);
            }
            Read::End(error) => return (events, Some(error)),
        }
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/peer-streams").join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// A compact summary of a decoded stream, for asserting what each peer's stream holds.
fn summarize(events: &[ResponseEvent]) -> (String, Vec<String>, Option<(String, i64)>) {
    let mut text = String::new();
    let mut items = Vec::new();
    let mut completed = None;
    for event in events {
        match event {
            ResponseEvent::OutputTextDelta { delta } => text.push_str(delta),
            ResponseEvent::OutputItemDone { item } => items.push(match item {
                ResponseItem::FunctionCall { name, arguments, .. } => {
                    format!("function_call {name} {arguments}")
                }
                ResponseItem::Message { .. } => {
                    format!("message {}", item.message_text().unwrap_or_default())
                }
                other => other.item_type().to_owned(),
            }),
            ResponseEvent::Completed { response_id, token_usage, .. } => {
                completed = Some((response_id.clone(), token_usage.map_or(-1, |u| u.total_tokens)));
            }
            _ => {}
        }
    }
    (text, items, completed)
}

#[tokio::test]
async fn peer_streams_decode_whole_and_byte_by_byte() {
    let names = [
        "litellm-text.sse",
        "litellm-tool.sse",
        "agentserver-text.sse",
        "agentserver-tool.sse",
        "agentserver-compaction.sse",
        "llmock-text.sse",
        "llmock-tool.sse",
        "aimock-text.sse",
        "aimock-tool.sse",
    ];
    let mut summaries = Vec::new();
    for name in names {
        let bytes = fixture(name);
        let (events, error) = read_all(vec![bytes.clone()]).await;
        assert_eq!(error, None, "{name}");
        let (one_byte_events, _) = read_all(bytes.chunks(1).map(<[u8]>::to_vec).collect()).await;
        assert_eq!(one_byte_events, events, "{name} byte by byte");
        let (text, items, completed) = summarize(&events);
        let (id, total) = completed.unwrap_or_else(|| panic!("{name}: no completed event"));
        assert!(!id.is_empty());
        assert!(!items.is_empty(), "{name}: no output item");
        let id_shape = if id.len() > 24 { format!("{}…", &id[..12]) } else { id };
        summaries.push(format!(
            "{name}: text={text:?} items={items:?} completed={id_shape} total_tokens={total}"
        ));
    }
    insta::assert_snapshot!(summaries.join("\n"));
}

#[tokio::test]
async fn llmock_disconnect_ends_with_early_close_error() {
    let (events, error) = read_all(vec![fixture("llmock-disconnect.sse")]).await;
    assert!(!events.is_empty());
    assert_eq!(error, Some(CompactorError::stream("stream closed before response.completed")));
}

#[tokio::test]
async fn failed_response_is_remembered_until_the_end() {
    let body = concat!(
        "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r\"}}\n\n",
        "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"id\":\"r\",\"error\":{\"code\":\"context_length_exceeded\",\"message\":\"too long\"}}}\n\n",
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"late\"}\n\n",
    );
    let (events, error) = read_all(vec![body.as_bytes().to_vec()]).await;
    assert_eq!(events.len(), 2, "created and the late delta still flow: {events:?}");
    assert_eq!(error, Some(CompactorError::ContextWindowExceeded));
}

#[tokio::test]
async fn completed_stops_reading() {
    let body = concat!(
        "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"r\"}}\n\n",
        "data: {\"type\":\"response.output_text.delta\",\"delta\":\"after\"}\n\n",
    );
    let (events, error) = read_all(vec![body.as_bytes().to_vec()]).await;
    assert_eq!(
        events,
        [ResponseEvent::Completed { response_id: "r".into(), token_usage: None, end_turn: None }]
    );
    assert_eq!(error, None);
}

#[tokio::test(start_paused = true)]
async fn silence_past_the_idle_timeout_is_an_error() {
    let head = futures::stream::iter([Ok(Bytes::from_static(
        b"data: {\"type\":\"response.created\",\"response\":{\"id\":\"r\"}}\n\n",
    ))]);
    let body: BodyStream = head.chain(futures::stream::pending()).boxed();
    let mut reader = SseReader::new(body, Duration::from_secs(300), 1 << 20);
    assert!(matches!(reader.next().await, Read::Event(ResponseEvent::Created { .. })));
    match reader.next().await {
        Read::End(error) => {
            assert_eq!(error, CompactorError::stream("idle timeout waiting for SSE"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn dropping_the_stream_stops_the_pump() {
    let head = futures::stream::iter([Ok(Bytes::from_static(
        b"data: {\"type\":\"response.created\",\"response\":{\"id\":\"r\"}}\n\n",
    ))]);
    // The body never ends: only the consumer going away can stop the pump.
    let body: BodyStream = head.chain(futures::stream::pending()).boxed();
    let mut reader = SseReader::new(body, Duration::from_secs(300), 1 << 20);
    let first = reader.next().await;
    let (mut stream, sender) = crate::stream::ResponseStream::channel(Redactor::default());
    let task = tokio::spawn(pump(reader, first, sender));
    let event = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap();
    assert!(matches!(event, Some(Ok(ResponseEvent::Created { .. }))), "{event:?}");
    drop(stream);
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("the pump stopped").unwrap();
}

#[test]
fn status_mapping_table() {
    let retry_after = {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("2"));
        headers
    };
    let none = HeaderMap::new();
    let cases: Vec<(u16, &HeaderMap, &str, CompactorError, Retry)> = vec![
        (
            400,
            &none,
            r#"{"error":{"code":"invalid_value","message":"bad input"}}"#,
            CompactorError::InvalidRequest("bad input".into()),
            Retry::Never,
        ),
        (
            400,
            &none,
            r#"{"error":{"code":"invalid_value","message":"Invalid value: 'context_compaction'.","param":"input[3].type"}}"#,
            CompactorError::InvalidRequest(
                "Invalid value: 'context_compaction'. (param: input[3].type)".into(),
            ),
            Retry::Never,
        ),
        (
            400,
            &none,
            r#"{"error":{"code":"invalid_request","message":"Validation failed","param":null,"details":[{"param":"$.input[1].type","message":"no"},{"param":"$.input[1].type","message":"again"},{"param":"$.model"}]}}"#,
            CompactorError::InvalidRequest(
                "Validation failed (param: $.input[1].type, $.model)".into(),
            ),
            Retry::Never,
        ),
        (
            400,
            &none,
            r#"{"error":{"code":"invalid_value","message":"Bad 'input[0]'.","param":"input[0]"}}"#,
            CompactorError::InvalidRequest("Bad 'input[0]'.".into()),
            Retry::Never,
        ),
        (
            400,
            &none,
            r#"{"error":{"code":"context_length_exceeded","message":"long"}}"#,
            CompactorError::ContextWindowExceeded,
            Retry::Never,
        ),
        (
            400,
            &none,
            r#"{"error":{"code":"cyber_policy","message":"no"}}"#,
            CompactorError::CyberPolicy("no".into()),
            Retry::Never,
        ),
        (
            400,
            &none,
            "plain text",
            CompactorError::InvalidRequest("plain text".into()),
            Retry::Never,
        ),
        (
            401,
            &none,
            "unauthorized",
            CompactorError::UnexpectedStatus { status: 401, body: "unauthorized".into() },
            Retry::Never,
        ),
        (
            429,
            &retry_after,
            r#"{"error":{"code":"rate_limit_exceeded","message":"slow"}}"#,
            CompactorError::RetryLimit { status: 429, message: "slow".into() },
            Retry::After(Some(Duration::from_secs(2))),
        ),
        (
            429,
            &none,
            r#"{"error":{"type":"usage_limit_reached","message":"limit"}}"#,
            CompactorError::UsageLimitReached("limit".into()),
            Retry::Never,
        ),
        (500, &none, "boom", CompactorError::InternalServerError, Retry::After(None)),
        (
            503,
            &none,
            r#"{"error":{"code":"server_is_overloaded","message":"busy"}}"#,
            CompactorError::ServerOverloaded,
            Retry::After(None),
        ),
        (
            502,
            &none,
            "bad gateway",
            CompactorError::UnexpectedStatus { status: 502, body: "bad gateway".into() },
            Retry::After(None),
        ),
    ];
    for (status, headers, body, error, retry) in cases {
        let got = status_error(
            StatusCode::from_u16(status).unwrap(),
            headers,
            body,
            &Redactor::default(),
        );
        assert_eq!((got.error, got.retry), (error, retry), "{status} {body}");
    }
}

#[test]
fn error_bodies_never_carry_the_key() {
    let key = SecretString::new("sk-secret-123");
    let redactor = ProviderConfig::new("test", "http://127.0.0.1:1/v1").redactor(Some(&key));
    let check = |status: u16, body: &str, expected: &str| {
        let got =
            status_error(StatusCode::from_u16(status).unwrap(), &HeaderMap::new(), body, &redactor);
        assert_eq!(got.error.to_string(), expected, "{body}");
    };
    check(401, "bad key sk-secret-123", "unexpected status 401: bad key <redacted>");
    // Escaped in the JSON, the message decodes to the key.
    let escaped: String = "sk-secret-123".chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
    check(
        401,
        &format!(r#"{{"error":{{"message":"bad key {escaped}"}}}}"#),
        "unexpected status 401: bad key <redacted>",
    );
    // Percent-encoded inside the message.
    let percent: String = "sk-secret-123".bytes().map(|b| format!("%{b:02X}")).collect();
    check(
        400,
        &format!(r#"{{"error":{{"message":"key={percent}&x=1"}}}}"#),
        "invalid request: key=<redacted>&x=1",
    );
    // Past the cut, a prefix of the key is all that would be left.
    let long = format!("{}sk-secret-123 trailing", "x".repeat(MAX_SERVER_TEXT - 8));
    let got = status_error(StatusCode::BAD_GATEWAY, &HeaderMap::new(), &long, &redactor);
    let text = got.error.to_string();
    assert!(!text.contains("sk-secr"), "{text}");
    // A server that cut its own message inside the key.
    check(401, "bad key sk-secre", "unexpected status 401: bad key <redacted>");
    check(401, "bad key sk-se", "unexpected status 401: bad key sk-se");
}

#[test]
fn a_redirect_is_final_and_names_its_target_without_userinfo() {
    let mut headers = HeaderMap::new();
    headers.insert(header::LOCATION, HeaderValue::from_static("http://u:pw@127.0.0.1:9/v1"));
    let got = status_error(StatusCode::TEMPORARY_REDIRECT, &headers, "", &Redactor::default());
    assert_eq!(got.retry, Retry::Never);
    let text = got.error.to_string();
    assert!(text.contains("redirects to http://127.0.0.1:9/v1"), "{text}");
    assert!(!text.contains("pw"), "{text}");
}

#[tokio::test]
async fn a_line_past_the_cap_ends_the_stream_with_event_too_large() {
    let created = b"data: {\"type\":\"response.created\",\"response\":{\"id\":\"r\"}}\n\n".to_vec();
    let endless = vec![b'a'; 4096];
    let mut chunks = vec![created, b"data: ".to_vec()];
    chunks.extend(std::iter::repeat_n(endless, 64));
    let (events, error) = read_all_capped(chunks, 64 * 1024).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(error, Some(CompactorError::EventTooLarge { limit: 64 * 1024 }));
    assert!(!error.unwrap().is_retryable());
}

#[test]
fn headers_mark_the_key_sensitive() {
    let config = ProviderConfig::new("test", "http://127.0.0.1:1/v1");
    let key = SecretString::new("sk-secret-123");
    let headers = request_headers(&config, Some(&key), "thread-1", "text/event-stream").unwrap();
    let auth = headers.get(header::AUTHORIZATION).unwrap();
    assert!(auth.is_sensitive());
    assert!(!format!("{headers:?}").contains("sk-secret-123"));
    assert_eq!(headers.get("x-client-request-id").unwrap(), "thread-1");
    assert_eq!(headers.get(header::ACCEPT).unwrap(), "text/event-stream");
}
