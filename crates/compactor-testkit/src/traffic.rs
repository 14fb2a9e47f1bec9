//! The traffic log: every HTTP request, WebSocket handshake and WebSocket client message a server
//! receives, appended to a JSON-lines file with credentials redacted (`compactor serve
//! --record FILE`), so a harness author can see what their client sent (D112).
//!
//! It is separate from the in-memory record the test API reads: it never drops a line and never
//! holds what it wrote. Handlers queue lines on a bounded channel; one writer on the blocking
//! pool turns them into JSON and appends them, and [`TrafficLog::close`] waits until every
//! queued line is on disk.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How many lines may wait for the writer before a handler waits for it.
const QUEUE: usize = 256;

/// What stands in for a credential.
pub(crate) const REDACTED: &str = "[redacted]";

/// One thing the server received.
#[derive(Debug)]
pub(crate) enum Traffic {
    /// An HTTP request (any route).
    Request {
        /// Its position among the server's HTTP requests.
        index: usize,
        /// The method.
        method: Method,
        /// The path and query.
        uri: Uri,
        /// The headers, credentials included (they are redacted when written).
        headers: HeaderMap,
        /// The body as it came.
        body: Bytes,
    },
    /// A WebSocket handshake, accepted (101) or refused.
    Handshake {
        /// Its position among the server's handshakes.
        index: usize,
        /// The connection it opened, when accepted.
        connection: Option<usize>,
        /// The path and query.
        uri: Uri,
        /// The headers, credentials included (they are redacted when written).
        headers: HeaderMap,
        /// The status answered.
        status: u16,
    },
    /// A client message on a WebSocket connection.
    Message {
        /// The connection.
        connection: usize,
        /// Its position on the connection.
        index: usize,
        /// The text (a binary frame lossily as UTF-8).
        text: String,
    },
}

/// An open traffic log.
#[derive(Debug)]
pub(crate) struct TrafficLog {
    path: PathBuf,
    sender: Mutex<Option<mpsc::Sender<(u64, Traffic)>>>,
    writer: Mutex<Option<JoinHandle<io::Result<()>>>>,
}

impl TrafficLog {
    /// Opens `path` for append (created 0600 when missing) and starts its writer.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let file = open_append(path)?;
        let (sender, receiver) = mpsc::channel(QUEUE);
        let writer = tokio::task::spawn_blocking(move || write_all(file, receiver));
        Ok(Self {
            path: path.to_path_buf(),
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Queues `traffic` (waiting while the queue is full); nothing once the log is closed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a cancelled call queued nothing.
    pub(crate) async fn record(&self, traffic: Traffic) {
        let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(sender) = sender
            && sender.send((unix_ms(), traffic)).await.is_err()
        {
            tracing::warn!(path = %self.path.display(), "traffic log writer stopped; line lost");
        }
    }

    /// Stops taking lines and waits until every queued line is written and flushed.
    ///
    /// # Errors
    ///
    /// The writer's I/O error, or a writer that panicked.
    pub(crate) async fn close(&self) -> io::Result<()> {
        drop(self.sender.lock().unwrap_or_else(PoisonError::into_inner).take());
        let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner).take();
        match writer {
            Some(writer) => writer.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

#[cfg(unix)]
fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new().create(true).append(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// The writer: one line per entry, flushed whenever the queue runs dry.
fn write_all(file: File, mut receiver: mpsc::Receiver<(u64, Traffic)>) -> io::Result<()> {
    let mut out = BufWriter::new(file);
    while let Some((at_ms, traffic)) = receiver.blocking_recv() {
        write_line(&mut out, at_ms, &traffic)?;
        while let Ok((at_ms, traffic)) = receiver.try_recv() {
            write_line(&mut out, at_ms, &traffic)?;
        }
        out.flush()?;
    }
    out.flush()
}

fn write_line(out: &mut impl io::Write, at_ms: u64, traffic: &Traffic) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &to_json(at_ms, traffic))?;
    out.write_all(b"\n")
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}

/// The JSON line of one entry received at `at_ms` (Unix milliseconds).
pub(crate) fn to_json(at_ms: u64, traffic: &Traffic) -> Value {
    match traffic {
        Traffic::Request { index, method, uri, headers, body } => {
            let mut line = json!({
                "kind": "http_request",
                "at_ms": at_ms,
                "index": index,
                "method": method.as_str(),
                "uri": redacted_uri(uri),
                "headers": redacted_headers(headers),
            });
            insert_body(&mut line, "body", body);
            line
        }
        Traffic::Handshake { index, connection, uri, headers, status } => json!({
            "kind": "ws_handshake",
            "at_ms": at_ms,
            "index": index,
            "connection": connection,
            "uri": redacted_uri(uri),
            "headers": redacted_headers(headers),
            "status": status,
        }),
        Traffic::Message { connection, index, text } => {
            let mut line = json!({
                "kind": "ws_message",
                "at_ms": at_ms,
                "connection": connection,
                "index": index,
            });
            insert_body(&mut line, "message", text.as_bytes());
            line
        }
    }
}

/// The body as JSON under `key`, or as text under `key` + `_text` when it is not JSON; an
/// empty body is left out.
fn insert_body(line: &mut Value, key: &str, body: &[u8]) {
    let Some(map) = line.as_object_mut() else { return };
    if body.is_empty() {
        return;
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => {
            map.insert(key.to_owned(), value);
        }
        Err(_) => {
            map.insert(format!("{key}_text"), Value::from(String::from_utf8_lossy(body)));
        }
    }
}

/// Header names whose values are credentials.
fn is_secret_header(name: &str) -> bool {
    const EXACT: [&str; 6] =
        ["authorization", "proxy-authorization", "cookie", "set-cookie", "api-key", "x-api-key"];
    const PARTS: [&str; 4] = ["key", "token", "secret", "password"];
    EXACT.contains(&name) || PARTS.iter().any(|part| name.contains(part))
}

/// The headers as a JSON object (a repeated header as a list), credentials redacted: an
/// `Authorization` value keeps its scheme (`Bearer [redacted]`).
fn redacted_headers(headers: &HeaderMap) -> Value {
    let mut out = Map::new();
    for name in headers.keys() {
        let secret = is_secret_header(name.as_str());
        let values: Vec<Value> = headers
            .get_all(name)
            .iter()
            .map(|value| {
                let text = String::from_utf8_lossy(value.as_bytes());
                if !secret {
                    return Value::from(text);
                }
                match text.split_once(' ') {
                    Some((scheme, _)) if name.as_str().ends_with("authorization") => {
                        Value::from(format!("{scheme} {REDACTED}"))
                    }
                    _ => Value::from(REDACTED),
                }
            })
            .collect();
        let value = match <[Value; 1]>::try_from(values) {
            Ok([one]) => one,
            Err(many) => Value::Array(many),
        };
        out.insert(name.as_str().to_owned(), value);
    }
    Value::Object(out)
}

/// The path and query, with the values of credential-like query parameters redacted.
fn redacted_uri(uri: &Uri) -> String {
    let Some(query) = uri.query() else { return uri.path().to_owned() };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_header(&name.to_ascii_lowercase()) => {
                format!("{name}={REDACTED}")
            }
            _ => pair.to_owned(),
        })
        .collect();
    format!("{}?{}", uri.path(), pairs.join("&"))
}

#[cfg(test)]
mod tests;
