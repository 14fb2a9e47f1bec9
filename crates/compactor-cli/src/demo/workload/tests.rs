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
fn prompts_cycle_and_name_the_tool() {
    assert_eq!(prompt(1), PROMPTS[0]);
    assert_eq!(prompt(12), PROMPTS[11]);
    assert_eq!(prompt(13), format!("{} (round 2)", PROMPTS[0]));
    assert_eq!(prompt(25), format!("{} (round 3)", PROMPTS[0]));
    for turn in 1..=24 {
        assert!(prompt(turn).contains(TOOL_TRIGGER), "{turn}");
    }
}

#[tokio::test]
async fn the_handler_counts_and_reads_the_command() {
    let tools = DemoTools::new(7);
    let call = ToolCall {
        call_id: "call_1".into(),
        name: TOOL_NAME.into(),
        kind: compactor_core::ToolCallKind::Function,
        input: r#"{"command":"cargo test"}"#.into(),
    };
    let ToolOutput::Text(first) = tools.call(&call).await else {
        panic!("a text output");
    };
    assert!(first.starts_with("$ cargo test\n"));
    assert_eq!(first, tool_output(7, 0, "cargo test"));
    let _ = tools.call(&call).await;
    let stats = tools.stats();
    assert_eq!(stats.calls.load(Ordering::Relaxed), 2);
    assert!(stats.bytes.load(Ordering::Relaxed) > 2 * 10_000);
}
