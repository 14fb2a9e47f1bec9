//! A hostile endpoint echoes the API key (and the base URL's password) back raw, JSON-escaped,
//! percent-encoded, across the truncation point, in a 401, a 500, a 502 and a
//! `response.failed`: `compactor compact` shows neither in its stdout or stderr (debug logs
//! included), nor writes it to the rollout, the trace bundles or the analytics file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::{DEADLINE, compactor};

const KEY: &str = "sk-cli-hostile-9e41b07d5f3a-SECRET";
const PASSWORD: &str = "pw-cli-hostile-2c8d4f";

fn json_escaped(text: &str) -> String {
    text.chars().map(|c| format!("\\u{:04x}", c as u32)).collect()
}

fn percent(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn answer(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The answers of the hostile server, one kind per run.
fn answers(secret: &str) -> Vec<(&'static str, String)> {
    let json = |message: &str| {
        format!(r#"{{"error":{{"message":"{message}","code":"invalid_api_key"}}}}"#)
    };
    let failed = |message: &str| {
        format!(
            "data: {{\"type\":\"response.created\",\"response\":{{\"id\":\"r\"}}}}\n\n\
             data: {{\"type\":\"response.failed\",\"response\":{{\"id\":\"r\",\"error\":{{\"code\":\"server_error\",\"message\":\"{message}\"}}}}}}\n\n"
        )
    };
    vec![
        (
            "401 raw",
            answer("401 Unauthorized", "application/json", &json(&format!("bad key {secret}"))),
        ),
        (
            "401 JSON-escaped",
            answer(
                "401 Unauthorized",
                "application/json",
                &json(&format!("bad key {}", json_escaped(secret))),
            ),
        ),
        (
            "401 percent-encoded",
            answer(
                "401 Unauthorized",
                "application/json",
                &json(&format!("key={}", percent(secret))),
            ),
        ),
        (
            "401 across the cut",
            answer(
                "401 Unauthorized",
                "text/plain",
                &format!("{}{secret} trailing", "x".repeat(1_985)),
            ),
        ),
        ("500", answer("500 Internal Server Error", "application/json", &json(secret))),
        ("502 percent-encoded", answer("502 Bad Gateway", "text/plain", &percent(secret))),
        (
            "response.failed JSON-escaped",
            answer("200 OK", "text/event-stream", &failed(&json_escaped(secret))),
        ),
        ("response.failed raw", answer("200 OK", "text/event-stream", &failed(secret))),
    ]
}

/// Serves `answer` to every request, on a new connection each.
async fn hostile(answer: String) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answer = Arc::new(answer);
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let answer = Arc::clone(&answer);
            tokio::spawn(async move {
                // Read the head and whatever body arrives with it, then answer and close.
                let mut buf = vec![0u8; 64 * 1024];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (format!("{addr}"), task)
}

/// A small rollout to compact.
fn rollout(path: &Path) {
    let lines = [
        r#"{"timestamp":"2026-05-15T10:00:00.000Z","type":"session_meta","payload":{"id":"thread-hostile"}}"#,
        r#"{"timestamp":"2026-05-15T10:00:00.001Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"hello"}]}}"#,
        r#"{"timestamp":"2026-05-15T10:00:00.002Z","type":"response_item","payload":{"type":"message","role":"assistant","content":[{"type":"output_text","text":"hi"}]}}"#,
    ];
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Fails when `text` holds `secret`, its first 6 characters, or those encoded.
#[track_caller]
fn assert_clean(what: &str, text: &str, secret: &str) {
    let lower = text.to_lowercase();
    let prefix = &secret[..6];
    for form in [secret.to_owned(), prefix.to_owned(), json_escaped(prefix), percent(prefix)] {
        assert!(!lower.contains(&form.to_lowercase()), "{what} shows {form:?}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_echoed_key_shows_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("me:{PASSWORD}"));
    let mut runs: Vec<(String, String, &str)> = answers(KEY)
        .into_iter()
        .map(|(name, answer)| (name.to_owned(), answer, "OPENAI_API_KEY"))
        .collect();
    // Without a key, the URL's credentials go as Basic auth; the server echoes them.
    let echo = format!("bad credentials me:{PASSWORD} {basic} {}", percent(PASSWORD));
    runs.push((
        "401 echoing the userinfo".to_owned(),
        answer("401 Unauthorized", "text/plain", &echo),
        "",
    ));
    for (index, (name, reply, key_env)) in runs.into_iter().enumerate() {
        let (addr, server) = hostile(reply).await;
        let path = root.join(format!("rollout-{index}.jsonl"));
        rollout(&path);
        let config = root.join(format!("compactor-{index}.toml"));
        std::fs::write(
            &config,
            format!(
                "[provider]\nmax_retries = 1\n\n[analytics]\njsonl = \"analytics-{index}.jsonl\"\n"
            ),
        )
        .unwrap();
        let traces = root.join(format!("traces-{index}"));
        let base_url = format!("http://me:{PASSWORD}@{addr}/v1");
        let mut command = compactor(
            root,
            &[
                "compact",
                path.to_str().unwrap(),
                "--base-url",
                &base_url,
                "--transport",
                "http",
                "--config",
                config.to_str().unwrap(),
                "--api-key-env",
                key_env,
            ],
        );
        command
            .env("OPENAI_API_KEY", KEY)
            .env("RUST_LOG", "debug")
            .env("COMPACTOR_ROLLOUT_TRACE_ROOT", &traces);
        let output = tokio::time::timeout(DEADLINE, command.output()).await.unwrap().unwrap();
        server.abort();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_ne!(output.status.code(), Some(0), "{name}: the compaction fails\n{stderr}");
        assert!(stderr.contains("compaction failed"), "{name}:\n{stderr}");
        let mut outputs = vec![
            (format!("{name}: stdout"), stdout.into_owned()),
            (format!("{name}: stderr"), stderr.into_owned()),
            (format!("{name}: rollout"), std::fs::read_to_string(&path).unwrap()),
        ];
        let analytics = root.join(format!("analytics-{index}.jsonl"));
        let analytics = std::fs::read_to_string(analytics).unwrap();
        assert!(analytics.contains("\"failed\""), "{name}: the attempt is recorded\n{analytics}");
        outputs.push((format!("{name}: analytics"), analytics));
        let traced = files(&traces);
        assert!(!traced.is_empty(), "{name}: a trace bundle was written");
        for file in traced {
            outputs.push((
                format!("{name}: {}", file.display()),
                std::fs::read_to_string(file).unwrap(),
            ));
        }
        for (what, text) in &outputs {
            assert_clean(what, text, KEY);
            assert_clean(what, text, PASSWORD);
            assert_clean(what, text, &basic);
        }
        // The rollout's error event is there, redacted.
        let rollout_text = &outputs[2].1;
        assert!(rollout_text.contains("\"type\":\"error\""), "{name}:\n{rollout_text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_endpoint_is_named_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollout.jsonl");
    rollout(&path);
    // A port nothing listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = dir.path().join("compactor.toml");
    std::fs::write(&config, "[provider]\nmax_retries = 0\n[compaction]\nchain = [\"v2\"]\n")
        .unwrap();
    let base_url = format!("http://me:{PASSWORD}@127.0.0.1:{port}/v1");
    let mut command = compactor(
        dir.path(),
        &[
            "compact",
            path.to_str().unwrap(),
            "--base-url",
            &base_url,
            "--api-key-env",
            "",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    command.env("RUST_LOG", "debug");
    let output = tokio::time::timeout(DEADLINE, command.output()).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach the model at http://127.0.0.1:{port}/v1")),
        "{stderr}"
    );
    assert_clean("stderr", &stderr, PASSWORD);
    assert_clean("stdout", &String::from_utf8_lossy(&output.stdout), PASSWORD);
}
