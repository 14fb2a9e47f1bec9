//! The `compactor-testkit` binary: serves the reference model in its own process.

use std::process::Stdio;
use std::time::Duration;

use compactor_testkit::SealKey;
use pretty_assertions::assert_eq;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::common::{bounded, post, request, sse_events, user};

#[tokio::test]
async fn serves_the_reference_model_until_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_compactor-testkit"))
        .args(["--port", "0", "--seal-key", "process-key"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let base_url = bounded(lines.next_line()).await.unwrap().unwrap();
    assert!(base_url.starts_with("http://127.0.0.1:"), "{base_url}");
    assert!(base_url.ends_with("/v1"), "{base_url}");

    let mut input = vec![user("hello from another process")];
    input.push(json!({"type": "context_compaction"}));
    let events = sse_events(post(&format!("{base_url}/responses"), &request(&input)).await).await;
    let sealed = &events.last().unwrap()["response"]["output"][0]["encrypted_content"];
    // Sealed with the key given on the command line.
    let digest = SealKey::new("process-key").open(sealed.as_str().unwrap()).unwrap();
    assert_eq!(digest["user_messages"], json!(["hello from another process"]));

    let pid = child.id().unwrap().to_string();
    let status = bounded(Command::new("kill").args(["-TERM", &pid]).status()).await.unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn rejects_a_bad_port() {
    let output = bounded(
        Command::new(env!("CARGO_BIN_EXE_compactor-testkit"))
            .args(["--port", "not-a-port"])
            .output(),
    )
    .await
    .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
}
