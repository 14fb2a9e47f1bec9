//! Tests of the pin helpers: what can be pinned, the pin slot and deduplication.

use compactor_protocol::tokens::estimate_item_tokens;
use compactor_protocol::{MessagePhase, ResponseItem};
use pretty_assertions::assert_eq;

use super::*;
use crate::test_support::{assistant, call, developer, output, reasoning, user};

fn with_id(mut item: ResponseItem, new_id: &str) -> ResponseItem {
    if let ResponseItem::Message { id, .. } = &mut item {
        *id = Some(new_id.to_owned());
    }
    item
}

#[test]
fn only_messages_can_be_pinned_and_their_copies_lose_the_id() {
    let raw = serde_json::json!({
        "type": "message",
        "id": "msg_9",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "plan"}],
        "phase": "final_answer",
        "metadata": {"source": "cli"},
    });
    let with_phase: ResponseItem = serde_json::from_value(raw.clone()).unwrap();
    let copy = pin_copy(&with_phase).unwrap();
    let mut expected = raw;
    expected.as_object_mut().unwrap().remove("id");
    // Everything but the id is kept, fields this version does not model included.
    assert_eq!(serde_json::to_value(&copy).unwrap(), expected);
    assert!(matches!(copy, ResponseItem::Message { phase: Some(MessagePhase::FinalAnswer), .. }));
    assert_eq!(pin_copy(&with_id(user("u"), "msg_1")), Some(user("u")));
    assert_eq!(pin_copy(&developer("d")), Some(developer("d")));
    assert_eq!(pin_copy(&call("c1", "shell")), None);
    assert_eq!(pin_copy(&output("c1", "ok")), None);
    assert_eq!(pin_copy(&reasoning(100)), None);
}

#[test]
fn same_content_ignores_message_ids_only() {
    assert!(same_content(&with_id(user("a"), "msg_1"), &user("a")));
    assert!(!same_content(&user("a"), &assistant("a")));
    assert!(!same_content(&user("a"), &user("b")));
    assert!(same_content(&output("c1", "x"), &output("c1", "x")));
    assert!(!same_content(&output("c1", "x"), &output("c2", "x")));
}

#[track_caller]
fn check_slot(history: &[ResponseItem], pinned: &[ResponseItem], expected: usize) {
    assert_eq!(pin_slot_len(history, pinned), expected);
}

#[test]
fn the_pin_slot_is_counted_only_when_the_history_starts_with_it() {
    let pinned = [user("p1"), developer("note")];
    check_slot(&[user("p1"), developer("note"), user("u")], &pinned, 2);
    check_slot(&[user("p1"), developer("note")], &pinned, 2);
    check_slot(&[user("p1"), user("u")], &pinned, 0);
    check_slot(&[user("p1")], &pinned, 0);
    check_slot(&[user("u")], &[], 0);
}

#[test]
fn originals_of_pinned_items_leave_the_retained_part() {
    let pinned = [user("keep me")];
    let items = vec![with_id(user("keep me"), "msg_1"), user("other"), assistant("keep me")];
    assert_eq!(without_pinned(items.clone(), &pinned), vec![user("other"), assistant("keep me")]);
    assert_eq!(without_pinned(items.clone(), &[]), items);
}

#[test]
fn pinned_tokens_add_the_counts_of_the_session_counter() {
    let pinned = [user("p1"), developer("note")];
    let expected: u64 = pinned.iter().map(estimate_item_tokens).sum();
    assert_eq!(pinned_tokens(&pinned, TokenCounter::Bytes4), expected);
    assert_eq!(pinned_tokens(&[], TokenCounter::Bytes4), 0);
    // Russian text: o200k counts about half of what four bytes per token does.
    let note = [developer(&"Не меняй публичный API без согласования. ".repeat(20))];
    let exact = pinned_tokens(&note, TokenCounter::O200k);
    assert_eq!(exact, TokenCounter::O200k.item_tokens(&note[0]));
    assert!(exact < pinned_tokens(&note, TokenCounter::Bytes4), "{exact}");
}
