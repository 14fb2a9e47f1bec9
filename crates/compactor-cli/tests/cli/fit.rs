//! A session whose one user message is 2 MB cannot be compacted into a 16 000-token window by
//! `prune`, which never touches user messages: `compactor compact` says so with both sizes and
//! what to change, exits 10, and leaves the rollout exactly as it was. (Remote compaction v2
//! would cut the message to its retained budget, D101, and fit.)

use crate::common::run;

#[tokio::test(flavor = "multi_thread")]
async fn a_compaction_that_cannot_fit_exits_10_and_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollout.jsonl");
    let message = serde_json::json!({
        "timestamp": "2026-05-15T10:00:00.001Z",
        "type": "response_item",
        "payload": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "long ".repeat(400_000)}],
        },
    });
    let meta = r#"{"timestamp":"2026-05-15T10:00:00.000Z","type":"session_meta","payload":{"id":"thread-fit"}}"#;
    std::fs::write(&path, format!("{meta}\n{message}\n")).unwrap();
    let before = std::fs::read(&path).unwrap();

    let args =
        ["compact", path.to_str().unwrap(), "--window", "16000", "--implementation", "prune"];
    let result = run(dir.path(), &args).await;
    assert_eq!(result.code, 10, "stdout:\n{}\nstderr:\n{}", result.stdout, result.stderr);
    let stderr = &result.stderr;
    // Both sizes: the history's (2 MB of text, 400 000 o200k tokens) and the usable window's.
    assert!(stderr.contains("usable window of 15200 tokens"), "{stderr}");
    let tokens: u64 = stderr
        .split("does not fit: at least ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no size in {stderr}"));
    assert!(tokens >= 400_000, "{stderr}");
    // What to change, and what happened to the rollout.
    assert!(stderr.contains("--window"), "{stderr}");
    assert!(stderr.contains("nothing was appended to the rollout"), "{stderr}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "the rollout is unchanged");
    insta::assert_snapshot!("does_not_fit", stderr.trim_end());
}
