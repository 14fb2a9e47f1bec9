//! `demo`, then `resume` and `compact` on what it wrote.

use std::path::Path;

use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::common::{Served, redact, run};

/// Runs the demo into `dir/out` and returns its stdout.
async fn demo(dir: &Path, extra: &[&str]) -> String {
    let out = dir.join("out");
    let mut args = vec!["demo", "--turns", "12", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let result = run(dir, &args).await;
    assert_eq!(result.code, 0, "stdout:\n{}\nstderr:\n{}", result.stdout, result.stderr);
    result.stdout
}

fn compacted_lines(rollout: &Path) -> usize {
    std::fs::read_to_string(rollout)
        .unwrap()
        .lines()
        .filter(|line| serde_json::from_str::<Value>(line).unwrap()["type"] == "compacted")
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_compacts_and_resume_reads_back_the_final_history() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = demo(dir.path(), &[]).await;

    let auto = stdout.lines().filter(|line| line.contains(": auto ")).count();
    let manual = stdout.lines().filter(|line| line.contains(": manual ")).count();
    assert!(auto >= 2, "fewer than two auto compactions:\n{stdout}");
    assert_eq!(manual, 1, "{stdout}");
    insta::assert_snapshot!("demo_stdout", redact(&stdout, dir.path()));

    let out = dir.path().join("out");
    for file in ["rollout.jsonl", "analytics.jsonl", "summary.json"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let traces: Vec<_> = std::fs::read_dir(out.join("traces")).unwrap().collect();
    assert_eq!(traces.len(), 1, "one trace bundle folder per thread");
    let analytics = std::fs::read_to_string(out.join("analytics.jsonl")).unwrap();
    assert_eq!(analytics.lines().count(), auto + manual);
    assert_eq!(compacted_lines(&out.join("rollout.jsonl")), auto + manual);

    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let resumed = run(dir.path(), &["resume", "--json", "out/rollout.jsonl"]).await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let resumed: Value = serde_json::from_str(&resumed.stdout).unwrap();
    assert_eq!(resumed["history"], summary["history"]);
    assert_eq!(resumed["thread_id"], summary["thread_id"]);
    assert_eq!(resumed["estimated_tokens"], summary["history_estimated_tokens"]);
    assert_eq!(resumed["window_generation"], Value::from(auto + manual));

    let text = run(dir.path(), &["resume", "out/rollout.jsonl", "--max-chars", "60"]).await;
    assert_eq!(text.code, 0, "{}", text.stderr);
    insta::assert_snapshot!("resume_stdout", redact(&text.stdout, dir.path()));
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_over_http_ends_with_the_same_history() {
    let ws = tempfile::tempdir().unwrap();
    let http = tempfile::tempdir().unwrap();
    demo(ws.path(), &[]).await;
    let stdout = demo(http.path(), &["--transport", "http"]).await;
    assert!(stdout.contains("(http + sse)"), "{stdout}");
    let history = |dir: &Path| -> Value {
        let text = std::fs::read_to_string(dir.join("out/summary.json")).unwrap();
        serde_json::from_str::<Value>(&text).unwrap()["history"].clone()
    };
    assert_eq!(history(http.path()), history(ws.path()));
}

#[tokio::test(flavor = "multi_thread")]
async fn compact_against_a_served_model_appends_a_compacted_line() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), &[]).await;
    let rollout = dir.path().join("out/rollout.jsonl");
    let before = compacted_lines(&rollout);

    let served = Served::start(dir.path()).await;
    let result = run(
        dir.path(),
        &[
            "compact",
            "out/rollout.jsonl",
            "--base-url",
            &served.base_url,
            "--api-key-env",
            "",
            // On loopback the served model is a provider of kind `other`, which compacts
            // locally by default; this test is about remote compaction.
            "--implementation",
            "v2",
            "--focus",
            "the failing tests",
        ],
    )
    .await;
    assert_eq!(served.stop().await, 0, "serve exits 0 on SIGTERM");
    assert_eq!(result.code, 0, "stdout:\n{}\nstderr:\n{}", result.stdout, result.stderr);
    assert_eq!(compacted_lines(&rollout), before + 1);
    insta::assert_snapshot!("compact_stdout", redact(&result.stdout, dir.path()));

    // The result resumes: the last item is the new compaction.
    let resumed = run(dir.path(), &["resume", "--json", "out/rollout.jsonl"]).await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let resumed: Value = serde_json::from_str(&resumed.stdout).unwrap();
    let history = resumed["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["type"], "context_compaction");
    assert_eq!(resumed["window_generation"], Value::from(before + 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn compact_without_a_base_url_uses_the_embedded_model() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), &[]).await;
    let rollout = dir.path().join("out/rollout.jsonl");
    let before = compacted_lines(&rollout);
    let result = run(dir.path(), &["compact", "out/rollout.jsonl", "--transport", "http"]).await;
    assert_eq!(result.code, 0, "stdout:\n{}\nstderr:\n{}", result.stdout, result.stderr);
    assert!(result.stdout.contains("embedded reference model"), "{}", result.stdout);
    assert_eq!(compacted_lines(&rollout), before + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_distance_to_compaction_falls_as_items_are_recorded_and_jumps_back_after_one() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), &[]).await;
    let rollout = std::fs::read_to_string(dir.path().join("out/rollout.jsonl")).unwrap();
    // The distances the session reported, cut into the stretches between two compactions.
    let mut stretches: Vec<Vec<i64>> = vec![Vec::new()];
    for line in rollout.lines() {
        let line: Value = serde_json::from_str(line).unwrap();
        if line["type"] == "compacted" {
            stretches.push(Vec::new());
        }
        let until = &line["payload"]["info"]["tokens_until_compaction"];
        if line["payload"]["type"] == "token_count"
            && let Some(until) = until.as_i64()
        {
            stretches.last_mut().unwrap().push(until);
        }
    }
    assert_eq!(stretches.len(), 4, "three compactions: {stretches:?}");
    for stretch in &stretches {
        assert!(stretch.len() >= 4, "{stretches:?}");
        // Each item recorded brings the next compaction closer; nothing moves it away.
        assert!(stretch.windows(2).all(|pair| pair[1] <= pair[0]), "{stretch:?}");
        assert!(stretch.first() > stretch.last(), "{stretch:?}");
    }
    for pair in stretches.windows(2) {
        let (before, after) = (pair[0].last().unwrap(), pair[1].first().unwrap());
        assert!(after > before, "a compaction moves the next one away: {before} -> {after}");
    }
}

/// The summary of the demo in `dir/out`.
fn summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("out/summary.json")).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_completes_every_turn_with_the_window_enforced_for_each_implementation() {
    let mut refused = Vec::new();
    for (flags, chain) in [
        (&["--transport", "ws"][..], "responses_compaction_v2"),
        (&["--transport", "http"][..], "responses_compaction_v2"),
        (&["--implementation", "v1"][..], "responses_compact"),
        (&["--implementation", "local"][..], "responses"),
        (&["--implementation", "prune"][..], "prune"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let stdout = demo(dir.path(), flags).await;
        let summary = summary(dir.path());
        assert_eq!(summary["chain"], serde_json::json!([chain]), "{flags:?}");
        assert_eq!(summary["turns"], 12, "{flags:?}:\n{stdout}");
        assert_eq!(summary["error"], Value::Null, "{flags:?}");
        assert_eq!(
            (&summary["window_enforced"], &summary["context_window"]),
            (&Value::Bool(true), &Value::from(16_000))
        );
        assert_eq!(summary["protocol_violations"], 0, "{flags:?}");
        refused.push(summary["refused_over_window"].as_u64().unwrap());
    }
    // Local summarization sends the whole history; over the window it is refused and the
    // summary request shrinks until it fits: the session met real-shaped failures and recovered.
    assert!(refused[3] > 0, "the embedded model refused nothing: {refused:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_records_a_demo_run_without_its_credential() {
    const SECRET: &str = "sk-demo-secret-4f1d2c";
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("traffic.jsonl");
    let served = Served::start_with(
        dir.path(),
        &["--context-window", "16000", "--record", record.to_str().unwrap()],
    )
    .await;
    let out = dir.path().join("out");
    let args = [
        "demo",
        "--out",
        out.to_str().unwrap(),
        "--base-url",
        &served.base_url,
        "--api-key-env",
        "DEMO_KEY",
        "--implementation",
        "v2",
    ];
    let output = tokio::time::timeout(
        crate::common::DEADLINE,
        crate::common::compactor(dir.path(), &args).env("DEMO_KEY", SECRET).output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(served.stop().await, 0);
    let summary = summary(dir.path());
    assert_eq!(summary["turns"], 12);

    let text = std::fs::read_to_string(&record).unwrap();
    assert!(!text.contains(SECRET), "the API key reached the recording");
    let lines: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let handshakes: Vec<&Value> =
        lines.iter().filter(|line| line["kind"] == "ws_handshake").collect();
    assert!(!handshakes.is_empty());
    for handshake in &handshakes {
        assert_eq!(handshake["headers"]["authorization"], "Bearer [redacted]");
        assert_eq!(handshake["status"], 101);
    }
    let creates: Vec<&Value> = lines
        .iter()
        .filter(|line| line["kind"] == "ws_message")
        .map(|line| &line["message"])
        .filter(|message| message["type"] == "response.create")
        .collect();
    let posts = lines.iter().filter(|line| line["kind"] == "http_request").count();
    // Every request the session made is there, in full: one per turn (the served model calls no
    // tools) and one per compaction attempt, each with the user's prompt or the trigger.
    let attempts = summary["compactions"].as_array().unwrap().len();
    assert_eq!(creates.len() + posts, 12 + attempts, "{text}");
    let sent_texts: Vec<String> = creates
        .iter()
        .flat_map(|create| create["input"].as_array().unwrap())
        .filter(|item| item["role"] == "user")
        .map(|item| item["content"][0]["text"].as_str().unwrap().to_owned())
        .collect();
    let history = summary["history"].as_array().unwrap();
    let prompts: Vec<&str> = history
        .iter()
        .filter(|item| item["role"] == "user")
        .map(|item| item["content"][0]["text"].as_str().unwrap())
        .filter(|text| !text.starts_with('<'))
        .collect();
    assert!(!prompts.is_empty());
    for prompt in prompts {
        assert!(sent_texts.iter().any(|sent| sent == prompt), "{prompt:?} was not recorded");
    }
    let triggers = creates
        .iter()
        .filter(|create| {
            create["input"].as_array().unwrap().last().unwrap()["type"] == "context_compaction"
        })
        .count();
    assert_eq!(triggers, attempts);
    let processed =
        lines.iter().filter(|line| line["message"]["type"] == "response.processed").count();
    assert!(processed > 0, "acknowledgements are recorded too");
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_reads_a_codex_rollout() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/codex-rollouts/codex-0.171-exec-compacted.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let result = run(dir.path(), &["resume", "--json", fixture.to_str().unwrap()]).await;
    assert_eq!(result.code, 0, "{}", result.stderr);
    let resumed: Value = serde_json::from_str(&result.stdout).unwrap();
    assert_eq!(resumed["thread_id"], "01a248a6-6e30-7b50-905b-3bdc08c62262");
    assert_eq!(resumed["window_generation"], 1);
    let history = resumed["history"].as_array().unwrap();
    let types: Vec<&str> = history
        .iter()
        .map(|item| item["role"].as_str().unwrap_or_else(|| item["type"].as_str().unwrap()))
        .collect();
    assert_eq!(types, ["developer", "user", "user", "compaction", "user", "assistant"]);
    assert_eq!(history[5]["status"], "completed");
    assert_eq!(history[5]["content"][0]["annotations"], serde_json::json!([]));
    assert_eq!(
        history[2]["internal_chat_message_metadata_passthrough"]["content_item_kinds"],
        serde_json::json!(["user.text"])
    );
}
