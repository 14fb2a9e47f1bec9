//! Bounded decoding against servers that never stop talking: a 3 GiB SSE line without a newline
//! and a 3 GiB WebSocket message, both generated on the fly, end with `EventTooLarge` at the
//! client's cap (64 MiB here), are not retried, and keep the process's peak memory under twice
//! the cap above what it used before.
//!
//! Each test measures in a child process of this test binary, so that the high-water mark
//! (`VmHWM` in `/proc/self/status`) is its own whichever runner runs the tests. They are heavy:
//! nextest runs them one at a time (`.config/nextest.toml`).

#![allow(clippy::print_stdout, reason = "the child process reports to its parent on stdout")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use compactor_client::{KeySource, ProviderConfig, WebsocketMode};
use compactor_protocol::CompactorError;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::{Notices, client, collect, fast_retries, prompt, settings, user};

/// Set in the child process: run the scenario and print its report.
const CHILD: &str = "COMPACTOR_BOUNDED_DECODING_CHILD";

/// The line of the child's output that carries its report.
const REPORT: &str = "bounded-decoding-report: ";

/// The client's cap in these tests.
const CAP: usize = 64 << 20;

/// What the server offers: far more than the cap.
const ENDLESS: u64 = 3 << 30;

/// The bytes written per step.
const STEP: usize = 1 << 20;

/// The report of a scenario.
fn report(error: &CompactorError, baseline: u64, requests: usize, fallbacks: usize) -> Value {
    json!({
        "error": error.to_string(),
        "too_large": matches!(error, CompactorError::EventTooLarge { limit } if *limit == CAP as u64),
        "retryable": error.is_retryable(),
        "baseline_kb": baseline,
        "peak_kb": memory_kb("VmHWM:"),
        "requests": requests,
        "fallbacks": fallbacks,
    })
}

/// A line of `/proc/self/status`, in kB.
fn memory_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with(field)).unwrap();
    line[field.len()..].trim().trim_end_matches("kB").trim().parse().unwrap()
}

/// Runs test `name` of this binary again, in a child process, and returns its report.
fn in_child(name: &str) -> Value {
    let exe = std::env::current_exe().unwrap();
    let output = std::process::Command::new(exe)
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().find_map(|line| Some(&line[line.find(REPORT)? + REPORT.len()..]));
    let line = line.unwrap_or_else(|| {
        panic!(
            "no report from the child\nstdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    serde_json::from_str(line).unwrap()
}

#[track_caller]
fn check(report: &Value) {
    assert_eq!(report["too_large"], true, "{report}");
    assert_eq!(report["retryable"], false, "{report}");
    assert_eq!(report["requests"], 2, "the warm-up and one attempt, no retry: {report}");
    assert_eq!(report["fallbacks"], 0, "no fallback to HTTP: {report}");
    let baseline = report["baseline_kb"].as_u64().unwrap();
    let peak = report["peak_kb"].as_u64().unwrap();
    let allowed = baseline + 2 * (CAP as u64 / 1024);
    assert!(peak < allowed, "peak {peak} kB, allowed {allowed} kB: {report}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn config(base_url: String) -> ProviderConfig {
    ProviderConfig {
        key: KeySource::None,
        retry: fast_retries(3),
        max_event_bytes: CAP,
        stream_idle_timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(5),
        websocket_connect_timeout: Duration::from_secs(5),
        ..ProviderConfig::new("endless", base_url)
    }
}

/// A small complete SSE response.
const SMALL_SSE: &str = "data: {\"type\":\"response.created\",\"response\":{\"id\":\"r1\"}}\n\n\
                         data: {\"type\":\"response.completed\",\"response\":{\"id\":\"r1\"}}\n\n";

/// Reads one request head; `None` when the connection ends first.
async fn read_head(socket: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if socket.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// Skips a request body announced by `head`.
async fn skip_body(socket: &mut TcpStream, head: &str) -> Option<()> {
    let length: usize = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase().strip_prefix("content-length:").map(str::to_owned)
        })
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    socket.read_exact(&mut body).await.ok()?;
    Some(())
}

/// An SSE server: the first request gets a small response, every later one a `data:` line that
/// never ends.
async fn sse_server(requests: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let requests = Arc::clone(&requests);
            tokio::spawn(async move {
                while let Some(head) = read_head(&mut socket).await {
                    skip_body(&mut socket, &head).await;
                    let seen = requests.fetch_add(1, Ordering::SeqCst);
                    if seen == 0 {
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n{SMALL_SSE}",
                            SMALL_SSE.len()
                        );
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\ndata: ",
                        ENDLESS + 6
                    );
                    if socket.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = vec![b'a'; STEP];
                    let mut sent = 0u64;
                    while sent < ENDLESS {
                        if socket.write_all(&chunk).await.is_err() {
                            return;
                        }
                        sent += STEP as u64;
                    }
                    return;
                }
            });
        }
    });
    url
}

async fn sse_scenario() -> Value {
    let requests = Arc::new(AtomicUsize::new(0));
    let url = sse_server(Arc::clone(&requests)).await;
    let notices = Notices::default();
    let client = client(config(url), &notices);
    let warm =
        collect(client.new_session().stream(&prompt(vec![user("hi")]), &settings()).await.unwrap())
            .await;
    assert_eq!(warm.error, None);
    // The high-water mark starts here (writing 5 to clear_refs resets it; where that is not
    // allowed, the warm-up's smaller peak stays in it).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let baseline = memory_kb("VmRSS:");
    let mut session = client.new_session();
    let error = match session.stream(&prompt(vec![user("hi")]), &settings()).await {
        Err(error) => error,
        Ok(stream) => collect(stream).await.error.expect("the stream fails"),
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    report(&error, baseline, requests.load(Ordering::SeqCst), 0)
}

#[test]
fn heavy_a_3_gib_sse_line_ends_with_event_too_large() {
    if std::env::var_os(CHILD).is_some() {
        let report = runtime().block_on(sse_scenario());
        println!("{REPORT}{report}");
        return;
    }
    check(&in_child("bounded::heavy_a_3_gib_sse_line_ends_with_event_too_large"));
}

/// Reads one client frame (masked) and returns its opcode and payload.
async fn read_frame(socket: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    socket.read_exact(&mut head).await.ok()?;
    let len = match head[1] & 0x7f {
        126 => u64::from(socket.read_u16().await.ok()?),
        127 => socket.read_u64().await.ok()?,
        len => u64::from(len),
    };
    let mut mask = [0u8; 4];
    if head[1] & 0x80 != 0 {
        socket.read_exact(&mut mask).await.ok()?;
    }
    let mut payload = vec![0u8; usize::try_from(len).ok()?];
    socket.read_exact(&mut payload).await.ok()?;
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
    Some((head[0] & 0x0f, payload))
}

/// A server frame header: `fin`, `opcode`, a 64-bit length.
fn frame_head(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
    let mut head = vec![if fin { 0x80 } else { 0 } | opcode, 127];
    head.extend_from_slice(&len.to_be_bytes());
    head
}

/// What the WebSocket server counts.
#[derive(Default)]
struct WsCounts {
    handshakes: AtomicUsize,
    creates: AtomicUsize,
    /// Plain HTTP requests: a fallback from WebSocket.
    fallbacks: AtomicUsize,
}

/// A WebSocket server: the first `response.create` gets a small response, every later one a
/// text message that never ends (fragments of a MiB).
async fn ws_server(counts: Arc<WsCounts>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let counts = Arc::clone(&counts);
            tokio::spawn(async move {
                let Some(head) = read_head(&mut socket).await else { return };
                let key = head.lines().find_map(|line| {
                    let lower = line.to_ascii_lowercase();
                    lower.starts_with("sec-websocket-key:").then(|| line[18..].trim().to_owned())
                });
                let Some(key) = key else {
                    counts.fallbacks.fetch_add(1, Ordering::SeqCst);
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n",
                        )
                        .await;
                    return;
                };
                counts.handshakes.fetch_add(1, Ordering::SeqCst);
                let accept =
                    tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
                let answer = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {accept}\r\n\r\n"
                );
                if socket.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
                while let Some((opcode, _)) = read_frame(&mut socket).await {
                    if opcode != 1 {
                        continue;
                    }
                    if counts.creates.fetch_add(1, Ordering::SeqCst) == 0 {
                        for event in
                            SMALL_SSE.lines().filter_map(|line| line.strip_prefix("data: "))
                        {
                            let mut frame = frame_head(true, 1, event.len() as u64);
                            frame.extend_from_slice(event.as_bytes());
                            if socket.write_all(&frame).await.is_err() {
                                return;
                            }
                        }
                        continue;
                    }
                    let chunk = vec![b'a'; STEP];
                    let mut sent = 0u64;
                    while sent < ENDLESS {
                        let opcode = if sent == 0 { 1 } else { 0 };
                        let mut frame = frame_head(false, opcode, STEP as u64);
                        frame.extend_from_slice(&chunk);
                        if socket.write_all(&frame).await.is_err() {
                            return;
                        }
                        sent += STEP as u64;
                    }
                    return;
                }
            });
        }
    });
    url
}

async fn ws_scenario() -> Value {
    let counts = Arc::new(WsCounts::default());
    let url = ws_server(Arc::clone(&counts)).await;
    let notices = Notices::default();
    let client =
        client(ProviderConfig { websocket: WebsocketMode::Enabled, ..config(url) }, &notices);
    let warm =
        collect(client.new_session().stream(&prompt(vec![user("hi")]), &settings()).await.unwrap())
            .await;
    assert_eq!(warm.error, None);
    // The high-water mark starts here (writing 5 to clear_refs resets it; where that is not
    // allowed, the warm-up's smaller peak stays in it).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let baseline = memory_kb("VmRSS:");
    let mut session = client.new_session();
    let error = match session.stream(&prompt(vec![user("hi")]), &settings()).await {
        Err(error) => error,
        Ok(stream) => collect(stream).await.error.expect("the stream fails"),
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // One connection carries both requests; a retry would open another.
    assert_eq!(counts.handshakes.load(Ordering::SeqCst), 1);
    let requests = counts.creates.load(Ordering::SeqCst);
    report(&error, baseline, requests, counts.fallbacks.load(Ordering::SeqCst))
}

#[test]
fn heavy_a_3_gib_websocket_message_ends_with_event_too_large() {
    if std::env::var_os(CHILD).is_some() {
        let report = runtime().block_on(ws_scenario());
        println!("{REPORT}{report}");
        return;
    }
    check(&in_child("bounded::heavy_a_3_gib_websocket_message_ends_with_event_too_large"));
}
