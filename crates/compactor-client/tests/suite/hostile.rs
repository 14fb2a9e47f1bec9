//! Hostile servers on loopback: a key (or the base URL's password) echoed back raw, JSON-escaped
//! on the wire, percent-encoded, upper-cased, nested, or cut by the truncation, in a 401, a 500,
//! a 502 and a `response.failed`, never shows in an error, a notice or a log line; a redirect to
//! another port never gets the request.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use compactor_client::{KeySource, ProviderConfig, SecretString, WebsocketMode};
use compactor_protocol::CompactorError;
use compactor_testkit::events::{ev_error_frame, ev_failed, ev_response_created};
use compactor_testkit::{ErrorReply, HandshakeFault, TestServer, WsConnectionScript};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::common::{
    Notices, bounded, client, collect, fast_retries, open, prompt, settings, user,
};

/// The key: a prefix of it, six characters or longer, must not show either.
const KEY: &str = "sk-hostile-4b1d7e90c2aa-SECRET";

/// The base URL's password.
const PASSWORD: &str = "pw-hostile-77c3e1";

fn json_escaped(text: &str) -> String {
    text.chars().map(|c| format!("\\u{:04x}", c as u32)).collect()
}

fn percent(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// The ways a hostile server writes `secret` into the JSON string of an error message, as it
/// goes on the wire (so `\u0073` is a JSON escape the client's parser decodes).
fn wire_encodings(secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("raw", secret.to_owned()),
        ("json-escaped", json_escaped(secret)),
        ("percent-encoded", percent(secret)),
        ("upper-case", secret.to_uppercase()),
        // A JSON escape of a backslash: the message holds `\u0073...` as text.
        ("escaped twice", json_escaped(secret).replace('\\', "\\\\")),
        ("percent of a JSON escape", percent(&json_escaped(secret))),
        // Past the 2 000 bytes an error keeps: only a prefix would be left.
        ("across the cut", format!("{}{secret} and more", "x".repeat(1_960))),
    ]
}

/// Everything that could leak: error texts, notices and log lines.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    fn error(&mut self, what: &str, error: &CompactorError) {
        self.0.push(format!("{what}: {error} / {error:?}"));
    }

    /// Fails when any text holds `secret`, a 6-character prefix of it, or those encoded.
    #[track_caller]
    fn assert_clean(&self, secret: &str) {
        let prefix = &secret[..6];
        let forms = [
            secret.to_lowercase(),
            prefix.to_lowercase(),
            json_escaped(prefix).to_lowercase(),
            percent(prefix).to_lowercase(),
        ];
        for text in &self.0 {
            let lower = text.to_lowercase();
            for form in &forms {
                assert!(!lower.contains(form.as_str()), "{form:?} shows in: {text}");
            }
        }
    }
}

/// A server that answers every request on a new connection with the raw bytes `answer` makes
/// for it, and records each request head.
struct RawServer {
    addr: std::net::SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl RawServer {
    async fn start(answer: impl Fn() -> Vec<u8> + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&heads);
        let answer = Arc::new(answer);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let recorded = Arc::clone(&recorded);
                let answer = Arc::clone(&answer);
                tokio::spawn(async move {
                    let Some(head) = read_request(&mut socket).await else { return };
                    recorded.lock().unwrap().push(head);
                    let _ = socket.write_all(&answer()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self { addr, heads, task }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request (head and `Content-Length` body) and returns its head.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase().strip_prefix("content-length:").map(str::to_owned)
        })
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < end + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(head)
}

fn http_answer(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn hostile_config(base_url: String, key: KeySource) -> ProviderConfig {
    ProviderConfig {
        key,
        retry: fast_retries(1),
        stream_idle_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        websocket_connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        ..ProviderConfig::new("hostile", base_url)
    }
}

/// Captures every log line at TRACE on the current-thread runtime of the test.
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    #[derive(Clone)]
    struct Writer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Writer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let logs = Arc::new(Mutex::new(Vec::new()));
    let writer = Writer(Arc::clone(&logs));
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn an_echoed_key_never_shows_over_http() {
    let (logs, _guard) = capture_logs();
    let mut seen = Seen::default();
    for (encoding, echoed) in wire_encodings(KEY) {
        let message = format!("Incorrect API key provided: {echoed}.");
        let json = format!(r#"{{"error":{{"message":"{message}","code":"invalid_api_key"}}}}"#);
        let failed = format!(
            "data: {{\"type\":\"response.failed\",\"response\":{{\"id\":\"r\",\"error\":{{\"code\":\"server_error\",\"message\":\"{message}\"}}}}}}\n\n"
        );
        let answers = [
            ("401 json", http_answer("401 Unauthorized", "application/json", &json)),
            ("401 text", http_answer("401 Unauthorized", "text/plain", &message)),
            ("500", http_answer("500 Internal Server Error", "application/json", &json)),
            ("502", http_answer("502 Bad Gateway", "text/plain", &message)),
            ("response.failed", http_answer("200 OK", "text/event-stream", &failed)),
        ];
        for (status, answer) in answers {
            let what = format!("{encoding}, {status}");
            let server = RawServer::start(move || answer.clone()).await;
            let notices = Notices::default();
            let config = hostile_config(
                format!("http://{}/v1", server.addr),
                KeySource::Value(SecretString::new(KEY)),
            );
            let client = client(config, &notices);
            let mut session = client.new_session();
            let error = match open(&mut session, &prompt(vec![user("hi")]), &settings()).await {
                Err(error) => error,
                Ok(stream) => collect(stream).await.error.expect("the stream fails"),
            };
            if status.starts_with("401") && encoding != "across the cut" {
                assert!(error.to_string().contains("<redacted>"), "{what}: {error}");
            }
            seen.error(&what, &error);
            for notice in notices.all() {
                seen.0.push(format!("{what} notice: {notice:?} {}", notice.message()));
            }
            let compact = bounded(client.compact(&prompt(vec![user("hi")]), &settings())).await;
            seen.error(&format!("{what} compact"), &compact.unwrap_err());
        }
    }
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(logs.contains("retrying model request"), "the capture works");
    seen.0.push(logs);
    seen.assert_clean(KEY);
}

#[tokio::test]
async fn an_echoed_key_never_shows_over_websocket() {
    let (logs, _guard) = capture_logs();
    let mut seen = Seen::default();
    // The testkit writes its JSON with serde: escapes here arrive as text the client decodes.
    for (encoding, echoed) in wire_encodings(KEY) {
        let message = format!("Incorrect API key provided: {echoed}.");
        let server = TestServer::scripted().await.unwrap();
        server.push_handshake_fault(HandshakeFault::Reject(ErrorReply::new(
            401,
            "invalid_api_key",
            &message,
        )));
        // Each failure breaks the connection off: the next request opens a new one.
        server.push_ws_connection(WsConnectionScript::new([vec![ev_error_frame(
            401,
            "invalid_api_key",
            &message,
        )]]));
        server.push_ws_connection(WsConnectionScript::new([vec![
            ev_response_created("r"),
            ev_failed("r", "server_error", &message),
        ]]));
        let notices = Notices::default();
        let config = ProviderConfig {
            websocket: WebsocketMode::Enabled,
            ..hostile_config(server.base_url(), KeySource::Value(SecretString::new(KEY)))
        };
        let client = client(config, &notices);
        let mut session = client.new_session();
        for attempt in ["handshake 401", "error frame", "response.failed"] {
            let error = match open(&mut session, &prompt(vec![user("hi")]), &settings()).await {
                Err(error) => error,
                Ok(stream) => collect(stream).await.error.expect("the stream fails"),
            };
            seen.error(&format!("{encoding}, {attempt}"), &error);
        }
        for notice in notices.all() {
            seen.0.push(format!("{encoding} notice: {notice:?}"));
        }
        drop(session);
        server.shutdown().await.unwrap();
    }
    seen.0.push(String::from_utf8_lossy(&logs.lock().unwrap()).into_owned());
    seen.assert_clean(KEY);
}

#[tokio::test]
async fn a_base_url_password_is_used_but_never_shown() {
    let (logs, _guard) = capture_logs();
    let mut seen = Seen::default();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("me:{PASSWORD}"));
    let echo = format!("bad credentials me:{PASSWORD} ({basic}), {}", percent(PASSWORD));
    let body = format!(r#"{{"error":{{"message":"{echo}"}}}}"#);
    let server =
        RawServer::start(move || http_answer("401 Unauthorized", "application/json", &body)).await;
    let notices = Notices::default();
    let url = format!("http://me:{PASSWORD}@{}/v1", server.addr);
    let http = client(hostile_config(url, KeySource::None), &notices);
    seen.0.push(format!("{:?} {:?}", http.config(), http));
    seen.0.push(http.config().display_base_url());
    let mut session = http.new_session();
    let error = open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap_err();
    seen.error("401", &error);
    // The credentials went as `Basic` auth, as reqwest sends userinfo.
    let heads = server.heads();
    assert!(heads[0].contains(&format!("authorization: Basic {basic}")), "{heads:?}");
    assert!(!heads[0].contains(&format!("me:{PASSWORD}@")), "{heads:?}");

    // Over WebSocket too: the handshake carries the credentials, the URL does not.
    let testkit = TestServer::scripted().await.unwrap();
    testkit.push_handshake_fault(HandshakeFault::Reject(ErrorReply::new(401, "bad", &echo)));
    let url = testkit.base_url().replacen("http://", &format!("http://me:{PASSWORD}@"), 1);
    let ws = client(
        ProviderConfig {
            websocket: WebsocketMode::Enabled,
            ..hostile_config(url, KeySource::None)
        },
        &notices,
    );
    let mut session = ws.new_session();
    let error = open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap_err();
    seen.error("ws 401", &error);
    let handshake = &testkit.handshakes()[0];
    assert_eq!(handshake.header("authorization"), Some(format!("Basic {basic}").as_str()));
    assert!(!handshake.header("host").unwrap_or_default().contains(PASSWORD));
    for notice in notices.all() {
        seen.0.push(format!("notice: {notice:?}"));
    }
    drop(session);
    testkit.shutdown().await.unwrap();
    seen.0.push(String::from_utf8_lossy(&logs.lock().unwrap()).into_owned());
    seen.assert_clean(PASSWORD);
    seen.assert_clean(&basic);
}

#[tokio::test]
async fn a_redirect_to_another_port_gets_no_second_post() {
    let elsewhere = TestServer::scripted().await.unwrap();
    let location = elsewhere.responses_url();
    let redirect = format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    let answer = redirect.clone();
    let server = RawServer::start(move || answer.clone().into_bytes()).await;
    let notices = Notices::default();
    let config = hostile_config(
        format!("http://{}/v1", server.addr),
        KeySource::Value(SecretString::new(KEY)),
    );
    let client = client(config, &notices);
    let mut session = client.new_session();
    let error = open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap_err();
    assert!(
        matches!(&error, CompactorError::UnexpectedStatus { status: 307, body } if body.contains(&location)),
        "{error:?}"
    );
    let compact = bounded(client.compact(&prompt(vec![user("hi")]), &settings())).await;
    assert!(matches!(compact, Err(CompactorError::UnexpectedStatus { status: 307, .. })));
    // One request each, not retried, and nothing reached the other port.
    assert_eq!(server.heads().len(), 2, "{:?}", server.heads());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(elsewhere.requests().is_empty(), "{:?}", elsewhere.requests());
    assert!(notices.all().is_empty(), "{:?}", notices.all());
    elsewhere.shutdown().await.unwrap();
}
