//! Tests of the demo's workload: deterministic, large enough, and varied.

use pretty_assertions::assert_eq;

use super::*;

#[test]
fn outputs_are_deterministic_and_sized() {
    for seed in [0, 7, 42, u64::MAX] {
        for index in 0..8 {
            let a = tool_output(seed, index, "ls");
            let b = tool_output(seed, index, "ls");
            assert_eq!(a, b);
            assert!(OUTPUT_BYTES.start() <= &a.len(), "{seed} {index}: {}", a.len());
            assert!(a.len() <= OUTPUT_BYTES.end() + 200, "{seed} {index}: {}", a.len());
            assert!(a.starts_with("$ ls\n"));
        }
    }
    assert_ne!(tool_output(7, 0, "ls"), tool_output(8, 0, "ls"));
    assert_ne!(tool_output(7, 0, "ls"), tool_output(7, 4, "ls"));
}

#[test]
fn the_kinds_take_turns() {
    let second_lines: Vec<String> = (0..4)
        .map(|index| tool_output(7, index, "x").lines().nth(1).unwrap_or_default().to_owned())
        .collect();
    assert!(second_lines[0].starts_with("-rw-r--r--"), "{}", second_lines[0]);
    assert!(second_lines[1].starts_with("test "), "{}", second_lines[1]);
    assert!(second_lines[2].contains("TODO("), "{}", second_lines[2]);
    assert!(second_lines[3].starts_with("commit "), "{}", second_lines[3]);
}

#[test]
fn prompts_cycle_and_start_their_scripted_turn() {
    assert_eq!(prompt(1), PROMPTS[0]);
    assert_eq!(prompt(12), PROMPTS[11]);
    assert_eq!(prompt(13), format!("{} (round 2)", PROMPTS[0]));
    assert_eq!(prompt(25), format!("{} (round 3)", PROMPTS[0]));
    let script = script(true);
    assert!(script.forgetful);
    for turn in 1..=24 {
        let starts = script.turns.iter().position(|t| prompt(turn).contains(&t.marker));
        assert_eq!(starts, Some((turn as usize - 1) % PROMPTS.len()), "{turn}");
    }
}

#[test]
fn every_turn_runs_a_command_and_reads_a_file_no_prompt_or_output_names() {
    let script = script(false);
    let outputs: String = (0..8).map(|index| tool_output(7, index, "x")).collect();
    for turn in &script.turns {
        let names: Vec<&str> = turn.calls.iter().map(|call| call.name.as_str()).collect();
        assert_eq!(names[0], SHELL);
        assert!(names.contains(&READ_FILE), "{names:?}");
    }
    for (_, reads, _) in PLAN {
        for path in reads {
            assert!(!PROMPTS.iter().any(|prompt| prompt.contains(path)), "{path}");
            assert!(!outputs.contains(path), "{path}");
        }
    }
}

#[tokio::test]
async fn the_handler_counts_and_reads_the_command() {
    let tools = DemoTools::new(7);
    let call = ToolCall {
        call_id: "call_1".into(),
        name: SHELL.into(),
        kind: compactor_core::ToolCallKind::Function,
        input: r#"{"command":"cargo test"}"#.into(),
    };
    let ToolOutput::Text(first) = tools.call(&call).await else {
        panic!("a text output");
    };
    let output = tool_output(7, 0, "cargo test");
    let code = if output.contains("FAILED") { 101 } else { 0 };
    assert_eq!(first, format!("Exit code: {code}\nOutput:\n{output}"));
    let _ = tools.call(&call).await;
    let stats = tools.stats();
    assert_eq!(stats.calls.load(Ordering::Relaxed), 2);
    assert!(stats.bytes.load(Ordering::Relaxed) > 2 * 10_000);

    let read = ToolCall {
        call_id: "call_3".into(),
        name: READ_FILE.into(),
        kind: compactor_core::ToolCallKind::Function,
        input: r#"{"path":"src/wal/writer.rs"}"#.into(),
    };
    let ToolOutput::Text(file) = tools.call(&read).await else {
        panic!("a text output");
    };
    assert_eq!(file, file_text(7, "src/wal/writer.rs"));
    assert!(*FILE_BYTES.start() <= file.len() && file.len() < FILE_BYTES.end() + 200);
    assert_eq!(stats.rereads.load(Ordering::Relaxed), 0);
    let _ = tools.call(&read).await;
    assert_eq!(stats.rereads.load(Ordering::Relaxed), 1, "the second read of a file is a re-read");
    let patch = ToolCall {
        call_id: "call_4".into(),
        name: APPLY_PATCH.into(),
        kind: compactor_core::ToolCallKind::Function,
        input: json!({ "input": "*** Begin Patch\n*** Update File: src/a.rs\n*** End Patch" })
            .to_string(),
    };
    let ToolOutput::Text(done) = tools.call(&patch).await else {
        panic!("a text output");
    };
    assert!(done.starts_with("Exit code: 0\n"), "{done}");
    assert!(done.ends_with("M src/a.rs"), "{done}");
}
