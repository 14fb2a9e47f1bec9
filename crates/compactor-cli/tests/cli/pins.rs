//! `compactor pin`, `compactor show` (receipts, pins and the progress ledger) and
//! `compactor compact --dry-run` on what the demo wrote.

use std::path::Path;

use compactor_protocol::{CompactionReceipt, ReceiptStatus};
use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::common::{DEADLINE, run};
use crate::rollouts::{demo_rollout, hold_rollout};

/// `compactor show --json` of `rollout`.
async fn show_json(dir: &Path, rollout: &str) -> Value {
    let result = run(dir, &["show", "--json", rollout]).await;
    assert_eq!(result.code, 0, "stdout:\n{}\nstderr:\n{}", result.stdout, result.stderr);
    serde_json::from_str(&result.stdout).unwrap()
}

/// The receipts `show --json` lists, one per compaction.
fn receipts(show: &Value) -> Vec<CompactionReceipt> {
    show["compactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|compaction| serde_json::from_value(compaction["receipt"].clone()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn receipts_add_up_for_every_compaction_and_a_pinned_note_is_kept_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    demo_rollout(dir.path()).await;
    let show = show_json(dir.path(), "out/rollout.jsonl").await;
    let demo_receipts = receipts(&show);
    assert!(demo_receipts.len() >= 3, "{show:#}");
    for receipt in &demo_receipts {
        assert_eq!(receipt.status, ReceiptStatus::Completed);
        assert!(!receipt.items.is_empty());
        assert!(receipt.adds_up(), "{:#?} vs {}", receipt.totals, receipt.tokens_before);
    }
    assert_eq!(show["pins"], Value::Array(Vec::new()));

    let pinned =
        run(dir.path(), &["pin", "out/rollout.jsonl", "--note", "keep the API stable"]).await;
    assert_eq!(pinned.code, 0, "stdout:\n{}\nstderr:\n{}", pinned.stdout, pinned.stderr);
    assert!(pinned.stdout.contains("Pinned note pin-1"), "{}", pinned.stdout);
    let show = show_json(dir.path(), "out/rollout.jsonl").await;
    assert_eq!(show["pins"][0]["id"], "pin-1");
    assert_eq!(show["pins"][0]["text"], "keep the API stable");

    let compacted = run(dir.path(), &["compact", "out/rollout.jsonl", "--transport", "http"]).await;
    assert_eq!(compacted.code, 0, "stdout:\n{}\nstderr:\n{}", compacted.stdout, compacted.stderr);
    let resumed = run(dir.path(), &["resume", "--json", "out/rollout.jsonl"]).await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let resumed: Value = serde_json::from_str(&resumed.stdout).unwrap();
    let first = &resumed["history"][0];
    assert_eq!(first["role"], "developer");
    assert_eq!(first["content"][0]["text"], "keep the API stable");

    let show = show_json(dir.path(), "out/rollout.jsonl").await;
    let after = receipts(&show);
    assert_eq!(after.len(), demo_receipts.len() + 1);
    let last = after.last().unwrap();
    assert!(last.adds_up(), "{:#?} vs {}", last.totals, last.tokens_before);
    assert_eq!(last.pins.len(), 1);

    let removed = run(dir.path(), &["pin", "out/rollout.jsonl", "--remove", "pin-1"]).await;
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    assert_eq!(show_json(dir.path(), "out/rollout.jsonl").await["pins"], Value::Array(Vec::new()));
}

#[tokio::test(flavor = "multi_thread")]
async fn pin_on_a_rollout_another_process_writes_fails_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let rollout = demo_rollout(dir.path()).await;
    let lock = dir.path().join("out/rollout.jsonl.lock");
    let (mut holder, holder_pid, endpoint) = hold_rollout(dir.path(), &lock).await;
    let before = std::fs::read(&rollout).unwrap();

    let pinned =
        run(dir.path(), &["pin", "out/rollout.jsonl", "--note", "keep the API stable"]).await;
    assert_eq!(pinned.code, 9, "stdout:\n{}\nstderr:\n{}", pinned.stdout, pinned.stderr);
    assert!(
        pinned.stderr.contains(&format!("out/rollout.jsonl is in use by pid {holder_pid}")),
        "{}",
        pinned.stderr
    );
    // The holder may append its own lines meanwhile; the pin wrote none.
    let after = String::from_utf8(std::fs::read(&rollout).unwrap()).unwrap();
    assert!(after.starts_with(std::str::from_utf8(&before).unwrap()));
    assert!(!after.contains("keep the API stable"), "nothing was written");
    let shown = run(dir.path(), &["show", "out/rollout.jsonl"]).await;
    assert_eq!(shown.code, 0, "show only reads, so it needs no lock: {}", shown.stderr);
    assert!(shown.stdout.contains("No pins."), "{}", shown.stdout);

    holder.start_kill().unwrap();
    tokio::time::timeout(DEADLINE, holder.wait()).await.unwrap().unwrap();
    endpoint.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_leaves_the_rollout_byte_for_byte_unchanged_even_with_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let rollout = demo_rollout(dir.path()).await;
    let mut bytes = std::fs::read(&rollout).unwrap();
    bytes.extend_from_slice(br#"{"timestamp":"2026-01-01T00:00:00.000Z","type":"respo"#);
    std::fs::write(&rollout, &bytes).unwrap();

    let dry = run(dir.path(), &["compact", "out/rollout.jsonl", "--dry-run", "--json"]).await;
    assert_eq!(dry.code, 0, "stdout:\n{}\nstderr:\n{}", dry.stdout, dry.stderr);
    let preview: Value = serde_json::from_str(&dry.stdout).unwrap();
    assert_eq!(preview["preview"], true);
    let receipt: CompactionReceipt = serde_json::from_value(preview["receipt"].clone()).unwrap();
    assert_eq!(receipt.status, ReceiptStatus::Preview);
    assert!(receipt.adds_up());
    assert!(preview["request"]["input"].is_array(), "{preview:#}");

    let text = run(dir.path(), &["compact", "out/rollout.jsonl", "--dry-run"]).await;
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.contains("nothing was sent"), "{}", text.stdout);

    assert_eq!(std::fs::read(&rollout).unwrap(), bytes, "the rollout is unchanged");
    assert!(!dir.path().join("out/rollout.jsonl.lock").exists(), "no writer lock was taken");
}

/// A receipt without what only the real compaction knows: its ids and status.
fn comparable(receipt: &CompactionReceipt) -> CompactionReceipt {
    CompactionReceipt {
        compaction_id: String::new(),
        status: ReceiptStatus::Completed,
        request_id: None,
        response_id: None,
        ..receipt.clone()
    }
}

/// `compact --dry-run --json` then `compact` with `flags`: the preview's receipt and the receipt
/// the compaction wrote.
async fn preview_then_compact(flags: &[&str]) -> (CompactionReceipt, CompactionReceipt) {
    let dir = tempfile::tempdir().unwrap();
    let demo = run(dir.path(), &[&["demo", "--turns", "12", "--out", "out"], flags].concat()).await;
    assert_eq!(demo.code, 0, "stdout:\n{}\nstderr:\n{}", demo.stdout, demo.stderr);
    // The outputs of the latest turns are fair game, so that `prune` finds some.
    let toml = "[compaction]\nprune = { protected_user_turns = 0, target_percent = 1 }\n";
    std::fs::write(dir.path().join("compactor.toml"), toml).unwrap();
    let mut args = vec!["compact", "out/rollout.jsonl", "--transport", "http"];
    args.extend_from_slice(flags);
    let dry = run(dir.path(), &[args.as_slice(), &["--dry-run", "--json"]].concat()).await;
    assert_eq!(dry.code, 0, "stdout:\n{}\nstderr:\n{}", dry.stdout, dry.stderr);
    let preview: Value = serde_json::from_str(&dry.stdout).unwrap();
    let previewed: CompactionReceipt = serde_json::from_value(preview["receipt"].clone()).unwrap();
    let real = run(dir.path(), &args).await;
    assert_eq!(real.code, 0, "stdout:\n{}\nstderr:\n{}", real.stdout, real.stderr);
    let installed = receipts(&show_json(dir.path(), "out/rollout.jsonl").await).pop().unwrap();
    (previewed, installed)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prune_dry_run_is_the_receipt_the_compaction_writes() {
    let (previewed, installed) = preview_then_compact(&["--implementation", "prune"]).await;
    assert_eq!(previewed.status, ReceiptStatus::Preview);
    assert_eq!(comparable(&previewed), comparable(&installed));
    let dropped = compactor_protocol::ItemOutcome::Dropped;
    assert!(installed.items.iter().any(|item| item.outcome == dropped), "prune removed something");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_v2_dry_run_agrees_with_the_compaction_on_every_item_but_the_summarized_ones() {
    let (previewed, installed) = preview_then_compact(&["--implementation", "v2"]).await;
    assert_eq!(previewed.implementation, installed.implementation);
    assert_eq!(previewed.tokens_before, installed.tokens_before);
    assert_eq!(previewed.items.len(), installed.items.len());
    for (index, (previewed, real)) in previewed.items.iter().zip(&installed.items).enumerate() {
        let summarized = real.outcome == compactor_protocol::ItemOutcome::Summarized;
        assert!(previewed == real || summarized, "item {index}: {previewed:?} vs {real:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn show_prints_each_compactions_ledger_and_the_session_ledger_a_resume_holds() {
    let dir = tempfile::tempdir().unwrap();
    demo_rollout(dir.path()).await;
    // `compact` resumes the session and writes its ledger into the new `compacted` line; nothing
    // follows it, so the ledger `show` replays must be that one.
    let compacted = run(dir.path(), &["compact", "out/rollout.jsonl", "--transport", "http"]).await;
    assert_eq!(compacted.code, 0, "stdout:\n{}\nstderr:\n{}", compacted.stdout, compacted.stderr);
    let show = show_json(dir.path(), "out/rollout.jsonl").await;
    let compactions = show["compactions"].as_array().unwrap();
    assert!(compactions.len() >= 4, "{show:#}");
    for compaction in compactions {
        assert!(!compaction["ledger"]["commands"].as_array().unwrap().is_empty(), "{show:#}");
    }
    let ledger = &show["ledger"];
    assert_eq!(ledger, &compactions.last().unwrap()["ledger"]);
    assert!(ledger["files"].as_array().unwrap().len() > 1, "{ledger:#}");

    let shown = run(dir.path(), &["show", "out/rollout.jsonl"]).await;
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let text = &shown.stdout;
    assert_eq!(text.matches("\n  ledger: ").count(), compactions.len(), "{text}");
    let header = "Progress ledger (laid out after the pins in the next compacted history, within \
                  2,000 tokens):\n";
    let (_, ledger) = text.split_once(header).unwrap_or_else(|| panic!("{text}"));
    assert!(ledger.starts_with("  <progress_ledger>"), "{ledger}");
    assert!(ledger.contains("  - turn 2: cargo test --workspace (exit 0)"), "{ledger}");
    assert!(ledger.contains("  - src/storage/pager.rs: read (turn 1)"), "{ledger}");

    // The config file's ledger settings are the next compaction's, and so `show`'s.
    std::fs::write(dir.path().join("small.toml"), "[compaction]\nledger_budget_tokens = 150\n")
        .unwrap();
    let small = run(dir.path(), &["show", "out/rollout.jsonl", "--config", "small.toml"]).await;
    assert_eq!(small.code, 0, "{}", small.stderr);
    let header = "Progress ledger (laid out after the pins in the next compacted history, within \
                  150 tokens):\n";
    let (_, small_ledger) =
        small.stdout.split_once(header).unwrap_or_else(|| panic!("{}", small.stdout));
    assert!(small_ledger.lines().count() < ledger.lines().count(), "{small_ledger}");
    std::fs::write(dir.path().join("off.toml"), "[compaction]\nledger = false\n").unwrap();
    let off = run(dir.path(), &["show", "out/rollout.jsonl", "--config", "off.toml"]).await;
    assert_eq!(off.code, 0, "{}", off.stderr);
    assert!(
        off.stdout.ends_with("No progress ledger: the config file turns it off.\n"),
        "{}",
        off.stdout
    );
}
