//! Tests of the rollout reader: damaged input is reported, never fatal, never a panic.

use compactor_protocol::{EventMsg, RolloutItem, RolloutLine};
use pretty_assertions::assert_eq;
use proptest::prelude::*;

use super::*;

const GOOD: &str = r#"{"timestamp":"2026-05-15T10:00:00.000Z","type":"event_msg","payload":{"type":"context_compacted"}}"#;
const USER: &str = r#"{"timestamp":"2026-05-15T10:00:00.001Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}}"#;
const FUTURE: &str = r#"{"timestamp":"2026-05-15T10:00:00.002Z","type":"future_line","payload":{"x":1},"extra":true}"#;

/// Renders what the reader found: each line's type, then the report.
fn render(contents: &RolloutContents) -> String {
    let kinds: Vec<&str> = contents.lines.iter().map(|line| line.item.kind()).collect();
    let report = &contents.report;
    let corrupt: Vec<String> = report
        .corrupt_lines
        .iter()
        .map(|line| format!("{}@{}", line.line_number, line.byte_offset))
        .collect();
    let torn = report
        .torn_tail
        .map(|tail| format!("{}@{}+{}", tail.line_number, tail.byte_offset, tail.len));
    format!(
        "lines=[{}] complete={} blank={} unknown={} corrupt=[{}] torn={}",
        kinds.join(","),
        report.complete_lines,
        report.blank_lines,
        report.unknown_lines,
        corrupt.join(","),
        torn.as_deref().unwrap_or("none"),
    )
}

#[track_caller]
fn check(input: &str, expected: &str) {
    assert_eq!(render(&parse_rollout(input.as_bytes())), expected);
    // Read as a stream, through buffers of every small size, the file reads the same.
    for buffer in [1, 2, 7, 64] {
        let streamed = read_lines(std::io::BufReader::with_capacity(buffer, input.as_bytes()));
        assert_eq!(render(&streamed.unwrap()), expected, "buffer of {buffer} bytes");
    }
}

#[test]
fn cases() {
    check("", "lines=[] complete=0 blank=0 unknown=0 corrupt=[] torn=none");
    check(
        &format!("{GOOD}\n"),
        "lines=[event_msg] complete=1 blank=0 unknown=0 corrupt=[] torn=none",
    );
    check(
        &format!("{GOOD}\n{USER}\n"),
        "lines=[event_msg,response_item] complete=2 blank=0 unknown=0 corrupt=[] torn=none",
    );
    // A complete JSON object without its newline is still a torn tail (D21).
    check(
        &format!("{GOOD}\n{USER}"),
        "lines=[event_msg] complete=1 blank=0 unknown=0 corrupt=[] torn=2@99+152",
    );
    check(
        &format!("{GOOD}\n{{\"time"),
        "lines=[event_msg] complete=1 blank=0 unknown=0 corrupt=[] torn=2@99+6",
    );
    check("{\"ti", "lines=[] complete=0 blank=0 unknown=0 corrupt=[] torn=1@0+4");
    check(
        &format!("{GOOD}\nnot json\n{USER}\n"),
        "lines=[event_msg,response_item] complete=3 blank=0 unknown=0 corrupt=[2@99] torn=none",
    );
    check(
        &format!("\n  \r\n{GOOD}\n\n"),
        "lines=[event_msg] complete=4 blank=3 unknown=0 corrupt=[] torn=none",
    );
    check(
        &format!("{GOOD}\r\n{FUTURE}\n"),
        "lines=[event_msg,future_line] complete=2 blank=0 unknown=1 corrupt=[] torn=none",
    );
    // Valid JSON that is not a rollout line, a known type with a bad payload, two objects.
    check(
        &format!(
            "[1,2]\n{{\"type\":\"event_msg\",\"payload\":{{}}}}\n{}\n{GOOD}{GOOD}\n{GOOD}\n",
            r#"{"timestamp":"t","type":"compacted","payload":{"replacement_history":7}}"#
        ),
        "lines=[event_msg] complete=5 blank=0 unknown=0 corrupt=[1@0,2@6,3@40,4@113] torn=none",
    );
}

#[test]
fn invalid_utf8_is_a_corrupt_line() {
    let mut bytes = format!("{GOOD}\n").into_bytes();
    bytes.extend_from_slice(b"{\"timestamp\":\"\xff\xfe\",\"type\":\"x\"}\n");
    bytes.extend_from_slice(format!("{GOOD}\n").as_bytes());
    let contents = parse_rollout(&bytes);
    assert_eq!(
        render(&contents),
        "lines=[event_msg,event_msg] complete=3 blank=0 unknown=0 corrupt=[2@99] torn=none"
    );
}

#[test]
fn parsed_lines_are_the_protocol_values() {
    let contents = parse_rollout(format!("{GOOD}\n").as_bytes());
    assert_eq!(
        contents.lines,
        vec![RolloutLine::new(
            "2026-05-15T10:00:00.000Z",
            RolloutItem::EventMsg(EventMsg::ContextCompacted {})
        )]
    );
    // Unknown lines keep every field, so writing them back loses nothing.
    let contents = parse_rollout(format!("{FUTURE}\n").as_bytes());
    assert_eq!(serde_json::to_string(&contents.lines[0]).unwrap(), FUTURE);
}

#[test]
fn report_warnings_name_lines() {
    let contents = parse_rollout(format!("{GOOD}\nbroken\n{GOOD}\n{{\"tim").as_bytes());
    assert!(!contents.report.is_clean());
    let warnings = contents.report.warnings();
    assert_eq!(warnings.len(), 2);
    assert!(
        warnings[0].starts_with("rollout line 2 (byte 99) is damaged and was skipped: "),
        "{}",
        warnings[0]
    );
    assert_eq!(
        warnings[1],
        "rollout ends with an unterminated line 4 (5 bytes at byte 205), ignored"
    );
    assert!(parse_rollout(format!("{GOOD}\n\n").as_bytes()).report.is_clean());
}

/// Each damaged line as `line@offset:damage:kind:position`.
fn render_damage(input: &str) -> Vec<String> {
    parse_rollout(input.as_bytes())
        .report
        .corrupt_lines
        .iter()
        .map(|line| {
            format!(
                "{}@{}:{:?}:{}:{}",
                line.line_number,
                line.byte_offset,
                line.damage,
                line.kind.as_deref().unwrap_or("-"),
                line.position
            )
        })
        .collect()
}

#[test]
fn damaged_lines_say_what_they_were_and_where_they_sat() {
    let compacted_torn = r#"{"timestamp":"t","type":"compacted","payload":{"message":"","repl"#;
    let compacted_bad =
        r#"{"timestamp":"t","type":"compacted","payload":{"replacement_history":7}}"#;
    assert_eq!(
        render_damage(&format!(
            "{GOOD}\n{compacted_torn}\n{USER}\nnot json\n{compacted_bad}\n[1]\n"
        )),
        vec![
            "2@99:NotJson:compacted:1",
            "4@318:NotJson:-:2",
            "5@327:UnreadablePayload:compacted:2",
            "6@400:NotRolloutLine:-:2",
        ]
    );
}

#[test]
fn the_strict_policy_fails_on_the_first_damaged_line_only() {
    let path = Path::new("/r/rollout.jsonl");
    let damaged = parse_rollout(format!("{GOOD}\nbroken\n{GOOD}\n[]\n").as_bytes());
    damaged.check(path, DamagedLines::Skip).unwrap();
    let err = damaged.check(path, DamagedLines::Fail).unwrap_err();
    assert!(
        matches!(err, Error::Damaged { line_number: 2, byte_offset: 99, count: 2, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("/r/rollout.jsonl:2: damaged rollout line (byte 99): "),
        "{err}"
    );
    // A torn tail is a crash's normal leftover, not damage.
    let torn = parse_rollout(format!("{GOOD}\n{{\"tim").as_bytes());
    torn.check(path, DamagedLines::Fail).unwrap();
}

#[tokio::test]
async fn read_rollout_with_the_strict_policy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollout.jsonl");
    std::fs::write(&path, format!("{GOOD}\nbroken\n{GOOD}\n")).unwrap();
    assert_eq!(read_rollout_with(&path, DamagedLines::Skip).await.unwrap().lines.len(), 2);
    let err = read_rollout_with(&path, DamagedLines::Fail).await.unwrap_err();
    assert!(matches!(err, Error::Damaged { line_number: 2, .. }), "{err:?}");
}

#[tokio::test]
async fn read_rollout_reads_a_file_and_reports_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollout.jsonl");
    std::fs::write(&path, format!("{GOOD}\n{USER}")).unwrap();
    let contents = read_rollout(&path).await.unwrap();
    assert_eq!(contents, parse_rollout(format!("{GOOD}\n{USER}").as_bytes()));
    let missing = read_rollout(&dir.path().join("missing.jsonl")).await.unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing:?}");
}

#[tokio::test]
async fn read_rollout_refuses_what_is_not_a_regular_file() {
    // `/dev/zero` is one line that never ends: reading it would never return.
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        read_rollout(Path::new("/dev/zero")),
    )
    .await
    .expect("the read ends at once")
    .unwrap_err();
    let Error::Io { source, .. } = &err else { panic!("{err:?}") };
    assert_eq!(source.kind(), std::io::ErrorKind::InvalidInput, "{err:?}");
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(read_rollout(dir.path()).await, Err(Error::Io { .. })));
}

fn good_line() -> impl Strategy<Value = String> {
    prop_oneof![Just(GOOD.to_owned()), Just(USER.to_owned()), Just(FUTURE.to_owned())]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let contents = parse_rollout(&bytes);
        let report = &contents.report;
        prop_assert_eq!(
            contents.lines.len() + report.blank_lines + report.corrupt_lines.len(),
            report.complete_lines
        );
        let newlines = bytes.iter().filter(|&&b| b == b'\n').count();
        prop_assert_eq!(report.complete_lines, newlines);
        match report.torn_tail {
            Some(tail) => prop_assert_eq!(tail.byte_offset + tail.len, bytes.len() as u64),
            None => prop_assert!(bytes.is_empty() || bytes.ends_with(b"\n")),
        }
    }

    #[test]
    fn mutated_rollouts_never_panic(
        lines in proptest::collection::vec(good_line(), 1..8),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
    ) {
        let mut bytes = lines.join("\n").into_bytes();
        bytes.push(b'\n');
        for (index, byte) in flips {
            let at = index.index(bytes.len());
            bytes[at] = byte;
        }
        let contents = parse_rollout(&bytes);
        prop_assert!(contents.lines.len() <= lines.len() + 1);
    }

    #[test]
    fn good_lines_with_any_tail_keep_every_complete_line(
        lines in proptest::collection::vec(good_line(), 0..8),
        tail in "[^\n]{0,40}",
    ) {
        let mut text = String::new();
        for line in &lines {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&tail);
        let contents = parse_rollout(text.as_bytes());
        prop_assert_eq!(contents.lines.len(), lines.len());
        prop_assert_eq!(contents.report.torn_tail.is_some(), !tail.is_empty());
        prop_assert!(contents.report.corrupt_lines.is_empty());
    }
}
