//! The API key never shows: not in a log line (captured at TRACE), not in an error's text, not in
//! the `Debug` output of the client, its configuration, a session or a stream, whether requests
//! succeed or fail (401 echoing the key, 500 after retries, a dropped connection), over HTTP,
//! WebSocket and `/responses/compact`.

use std::io;
use std::sync::{Arc, Mutex};

use compactor_client::{KeySource, ModelClient, SecretString};
use compactor_testkit::{ErrorReply, Fault, HandshakeFault, HttpScript, TestServer};
use pretty_assertions::assert_eq;
use tracing_subscriber::fmt::MakeWriter;

use crate::common::{
    Notices, bounded, client, collect, http_config, open, prompt, reply, settings, user, ws_config,
};

const SECRET: &str = "sk-test-SECRET-1234";

/// A credential in a configured extra header.
const HEADER_SECRET: &str = "tok-test-SECRET-5678";

/// Log output collected in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Everything the test printed or got back, to search for the key.
#[derive(Default)]
struct Outputs(Vec<String>);

impl Outputs {
    fn debug(&mut self, what: &str, value: &impl std::fmt::Debug) {
        self.0.push(format!("{what}: {value:?} / {value:#?}"));
    }

    fn error(&mut self, what: &str, error: &compactor_protocol::CompactorError) {
        self.0.push(format!("{what}: {error} / {error:?}"));
    }
}

fn secret_client(config: compactor_client::ProviderConfig, notices: &Notices) -> ModelClient {
    let config = compactor_client::ProviderConfig {
        key: KeySource::Value(SecretString::new(SECRET)),
        extra_headers: vec![("x-session-token".to_owned(), HEADER_SECRET.to_owned())],
        ..config
    };
    client(config, notices)
}

/// The tests run on the current-thread runtime, so the thread-local subscriber sees every task
/// of the client and of the server.
#[tokio::test]
async fn the_key_never_leaks() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut outputs = Outputs::default();
    let echo = format!("Incorrect API key provided: {SECRET}. You can find your key online.");

    // HTTP: success, 401 echoing the key, 500 after the retries, a dropped connection.
    let server = TestServer::scripted().await.unwrap();
    let notices = Notices::default();
    let http = secret_client(http_config(&server), &notices);
    outputs.debug("config", http.config());
    outputs.debug("client", &http);
    // Faults apply to the next request: each is queued right before its request.
    server.push_sse(reply("resp_ok", "fine"));
    let mut session = http.new_session();
    let stream = open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap();
    outputs.debug("session", &session);
    outputs.debug("stream", &stream);
    let collected = collect(stream).await;
    assert_eq!(collected.error, None);
    outputs.debug("events", &collected.events);

    server.push_http_faults([Fault::error(401, "invalid_api_key", &echo)]);
    let unauthorized =
        open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap_err();
    assert!(
        matches!(&unauthorized, compactor_protocol::CompactorError::UnexpectedStatus { status: 401, body } if body.contains("<redacted>")),
        "{unauthorized:?}"
    );
    outputs.error("401", &unauthorized);
    for _ in 0..3 {
        server.push_http_faults([Fault::internal_error()]);
    }
    let internal = open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap_err();
    assert_eq!(internal, compactor_protocol::CompactorError::InternalServerError);
    outputs.error("500", &internal);
    server
        .push_http(HttpScript::new(reply("resp_cut", "cut")).with_fault(Fault::DropAfterEvents(1)));
    let dropped =
        collect(open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap()).await;
    let dropped = dropped.error.expect("the dropped connection is an error");
    outputs.error("dropped", &dropped);

    // `/responses/compact`: 401 echoing the key, then success.
    server.push_compact_faults([Fault::error(401, "invalid_api_key", &echo)]);
    let compact_err =
        bounded(http.compact(&prompt(vec![user("hi")]), &settings())).await.unwrap_err();
    outputs.error("compact 401", &compact_err);
    server.push_compact_json(
        serde_json::json!({"output": [{"type": "compaction", "encrypted_content": "ENC"}]}),
    );
    let compacted = bounded(http.compact(&prompt(vec![user("hi")]), &settings())).await.unwrap();
    outputs.debug("compacted", &compacted);

    let authorization = format!("Bearer {SECRET}");
    assert!(
        server.requests().iter().all(|r| r.header("authorization") == Some(authorization.as_str())
            && r.header("x-session-token") == Some(HEADER_SECRET)),
        "the key and the header are sent on every request"
    );
    outputs.debug("notices", &notices.all());
    outputs.debug("client after", &http);
    drop(session);
    server.shutdown().await.unwrap();

    // WebSocket: 401 on the handshake echoing the key, then success on a live connection.
    let server = TestServer::scripted().await.unwrap();
    let notices = Notices::default();
    let ws = secret_client(ws_config(&server), &notices);
    server.push_handshake_fault(HandshakeFault::Reject(ErrorReply::new(
        401,
        "invalid_api_key",
        &echo,
    )));
    server
        .push_ws_connection(compactor_testkit::WsConnectionScript::new([reply("resp_ws", "fine")]));
    let mut session = ws.new_session();
    let refused = open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap_err();
    outputs.error("ws 401", &refused);
    let stream = open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap();
    outputs.debug("ws session", &session);
    outputs.debug("ws stream", &stream);
    outputs.debug("ws client", &ws);
    assert_eq!(collect(stream).await.error, None);
    let handshakes = server.handshakes();
    assert_eq!(handshakes.len(), 2);
    assert!(handshakes.iter().all(|h| h.header("authorization") == Some(authorization.as_str())));
    outputs.debug("ws notices", &notices.all());
    drop(session);
    server.shutdown().await.unwrap();

    let logs = logs.text();
    assert!(logs.contains("retrying model request"), "the capture works: {logs}");
    for secret in [SECRET, HEADER_SECRET] {
        assert!(!logs.contains(secret), "a log line carries {secret}:\n{logs}");
        for output in &outputs.0 {
            assert!(!output.contains(secret), "an output carries {secret}: {output}");
        }
    }
}
