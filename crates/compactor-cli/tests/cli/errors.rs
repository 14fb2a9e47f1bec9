//! Every bad input gives its documented message and exit code.

use std::fmt::Write as _;
use std::path::Path;

use pretty_assertions::assert_eq;

use crate::common::{redact, run};

/// A valid two-line rollout.
const ROLLOUT: &str = concat!(
    r#"{"timestamp":"2026-05-15T10:00:00.000Z","type":"session_meta","payload":{"id":"thread-1"}}"#,
    "\n",
    r#"{"timestamp":"2026-05-15T10:00:01.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"hello"}]}}"#,
    "\n",
);

/// The variable the key tests name; set nowhere.
const UNSET: &str = "COMPACTOR_CLI_TEST_KEY_THAT_IS_NEVER_SET";

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_inputs_give_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "good.jsonl", ROLLOUT);
    write(root, "corrupt.jsonl", &ROLLOUT.replace("\"type\":\"response_item\"", "\"type\":"));
    write(root, "empty.jsonl", "");
    write(root, "torn.jsonl", &format!("{ROLLOUT}{{\"timestamp\":\"2026"));
    std::fs::create_dir(root.join("folder.jsonl")).unwrap();
    write(root, "unknown-key.toml", "[model]\nslug = \"m\"\nslgu = \"typo\"\n");
    write(root, "bad-value.toml", "[compaction]\nchain = [\"responses_compaction_v2\", \"foo\"]\n");
    write(root, "bad-syntax.toml", "[model\n");
    write(
        root,
        "remote-key.toml",
        &format!("[provider]\nbase_url = \"http://127.0.0.1:1/v1\"\napi_key_env = \"{UNSET}\"\n"),
    );

    let unreachable_compact = |implementation| {
        [
            "compact",
            "good.jsonl",
            "--base-url",
            "http://127.0.0.1:1/v1",
            "--api-key-env",
            "",
            "--transport",
            "http",
            "--implementation",
            implementation,
        ]
    };
    // (arguments, expected exit code)
    let cases: &[(&[&str], i32)] = &[
        (&["resume", "missing.jsonl"], 3),
        (&["compact", "missing.jsonl"], 3),
        (&["demo", "--config", "missing.toml", "--out", "o1"], 3),
        (&["resume", "--strict", "corrupt.jsonl"], 4),
        (&["compact", "--strict", "corrupt.jsonl"], 4),
        (&["resume", "empty.jsonl"], 4),
        (&["resume", "folder.jsonl"], 4),
        // Remote compaction, so the unreachable endpoint is what fails (on loopback the
        // default chain would end with `prune`, which needs no endpoint).
        (&unreachable_compact("v2"), 5),
        // A chain whose every attempt fails reports the one that says why: the unreachable
        // endpoint, not `prune` finding nothing to remove, whichever comes last.
        (&unreachable_compact("responses,prune"), 5),
        (&unreachable_compact("prune,responses"), 5),
        (
            &["demo", "--base-url", "http://127.0.0.1:1/v1", "--api-key-env", UNSET, "--out", "o2"],
            6,
        ),
        (&["compact", "good.jsonl", "--config", "remote-key.toml"], 6),
        (&["demo", "--config", "unknown-key.toml", "--out", "o3"], 7),
        (&["compact", "good.jsonl", "--config", "bad-value.toml"], 7),
        (&["demo", "--config", "bad-syntax.toml", "--out", "o4"], 7),
        (&["demo", "--turns", "0"], 2),
        (&["demo", "--implementation", "fastest"], 2),
        (&["demo", "--base-url", "localhost:8080", "--out", "o5"], 2),
        (&["demo", "--base-url", "not a url", "--out", "o6"], 2),
        (&["compact", "good.jsonl", "--base-url", "http://me:hunter2@", "--api-key-env", ""], 2),
    ];
    let mut report = String::new();
    for (args, expected) in cases {
        let result = run(root, args).await;
        assert_eq!(result.code, *expected, "{args:?}\nstderr:\n{}", result.stderr);
        let shown: Vec<&str> =
            args.iter().map(|arg| if arg.is_empty() { "\"\"" } else { arg }).collect();
        let _ = writeln!(report, "$ compactor {}\nexit {}", shown.join(" "), result.code);
        // clap's usage errors are long; the first line says enough.
        let stderr = if *expected == 2 {
            result.stderr.lines().next().unwrap_or_default().to_owned()
        } else {
            result.stderr.trim_end().to_owned()
        };
        let _ = writeln!(report, "{}\n", redact(&stderr, root));
    }
    insta::assert_snapshot!("bad_inputs", report);

    // A torn last line is a warning, not an error.
    let torn = run(root, &["resume", "torn.jsonl"]).await;
    assert_eq!(torn.code, 0, "{}", torn.stderr);
    assert!(
        torn.stderr.contains(
            "torn.jsonl: rollout ends with an unterminated line 3 (18 bytes at byte 247), ignored"
        ),
        "{}",
        torn.stderr
    );
    assert!(torn.stdout.starts_with("00:message/user:hello\n"), "{}", torn.stdout);
    // So is a damaged line without --strict: it is skipped, named and counted.
    let corrupt = run(root, &["resume", "corrupt.jsonl"]).await;
    assert_eq!(corrupt.code, 0, "{}", corrupt.stderr);
    assert!(
        corrupt.stderr.contains(
            "corrupt.jsonl: rollout line 2 (byte 91) is damaged and was skipped: expected value"
        ),
        "{}",
        corrupt.stderr
    );
    assert!(corrupt.stdout.ends_with(", 1 damaged line skipped\n"), "{}", corrupt.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn help_documents_the_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["demo", "--help"],
        &["compact", "--help"],
        &["resume", "--help"],
        &["serve", "--help"],
    ] {
        let result = run(dir.path(), args).await;
        assert_eq!(result.code, 0, "{args:?}");
        for code in [
            "0  success",
            "3  a file",
            "4  the rollout",
            "5  the model endpoint",
            "6  the API key",
            "7  the config file",
            "8  the rollout cannot be written",
            "9  the rollout is in use",
        ] {
            assert!(result.stdout.contains(code), "{args:?} lacks {code:?}:\n{}", result.stdout);
        }
    }
    let help = run(dir.path(), &["demo", "--help"]).await;
    insta::assert_snapshot!("demo_help", help.stdout);
}
