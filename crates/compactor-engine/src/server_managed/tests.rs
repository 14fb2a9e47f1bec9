//! Tests of splitting a response at the server's compaction.

use compactor_protocol::display::format_history;
use pretty_assertions::assert_eq;

use super::*;
use crate::test_support::{assistant, call, compaction, context_compaction, output, user};

#[track_caller]
fn check(
    history: &[ResponseItem],
    output: &[ResponseItem],
    expected: Option<(&[ResponseItem], &[ResponseItem])>,
) {
    let sorted = split_server_compaction(history, output.to_vec());
    match (sorted, expected) {
        (ResponseOutput::Plain(items), None) => assert_eq!(items, output),
        (ResponseOutput::Compacted(split), Some((input, new))) => {
            assert_eq!(format_history(&split.input_history), format_history(input));
            assert_eq!(format_history(&split.new_history), format_history(new));
            assert_eq!(
                split,
                ServerCompaction { input_history: input.to_vec(), new_history: new.to_vec() }
            );
        }
        (sorted, expected) => panic!("{sorted:?} is not {expected:?}"),
    }
}

#[test]
fn output_without_a_compaction_item_is_plain() {
    check(&[user("u")], &[], None);
    check(&[user("u")], &[assistant("a"), call("c1", "shell")], None);
    // A v2 `context_compaction` is not the server compacting a normal response.
    check(&[user("u")], &[context_compaction("ENC"), assistant("a")], None);
}

#[test]
fn the_newest_compaction_item_and_what_follows_replace_the_history() {
    let history = [user("first"), assistant("one"), call("c1", "shell"), output("c1", "ok")];
    check(
        &history,
        &[
            assistant("before"),
            compaction("OLD"),
            assistant("middle"),
            compaction("NEW"),
            assistant("after"),
        ],
        Some((
            &[
                user("first"),
                assistant("one"),
                call("c1", "shell"),
                output("c1", "ok"),
                assistant("before"),
                compaction("OLD"),
                assistant("middle"),
            ],
            &[compaction("NEW"), assistant("after")],
        )),
    );
    check(&[], &[compaction("ENC")], Some((&[], &[compaction("ENC")])));
    check(&[user("u")], &[compaction("ENC")], Some((&[user("u")], &[compaction("ENC")])));
}
