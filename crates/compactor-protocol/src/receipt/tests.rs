//! Tests of receipts: the exact JSON, the totals' arithmetic and tolerant reading.

use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;

fn receipt() -> CompactionReceipt {
    let mut totals = ReceiptTotals::default();
    totals.pinned.add(12);
    totals.kept_verbatim.add(20);
    totals.summarized.add(300);
    totals.summarized.add(5);
    totals.instructions = 6;
    totals.tools = 40;
    totals.unattributed = -3;
    CompactionReceipt {
        compaction_id: "cmp-1".into(),
        implementation: CompactionImplementation::ResponsesCompactionV2,
        chain_position: 1,
        chain_length: 2,
        trigger: CompactionTrigger::Manual,
        reason: CompactionReason::UserRequested,
        phase: CompactionPhase::StandaloneTurn,
        status: ReceiptStatus::Completed,
        error: None,
        request_id: Some("compaction_request:1".into()),
        response_id: Some("resp_1".into()),
        tokens_before: 380,
        tokens_after: Some(90),
        items: vec![
            ItemReceipt {
                item_type: "message".into(),
                role: Some("user".into()),
                outcome: ItemOutcome::Pinned,
                tokens: 12,
            },
            ItemReceipt {
                item_type: "message".into(),
                role: Some("user".into()),
                outcome: ItemOutcome::KeptVerbatim,
                tokens: 20,
            },
            ItemReceipt {
                item_type: "function_call_output".into(),
                role: None,
                outcome: ItemOutcome::Summarized,
                tokens: 300,
            },
            ItemReceipt {
                item_type: "function_call".into(),
                role: None,
                outcome: ItemOutcome::Summarized,
                tokens: 5,
            },
        ],
        totals,
        pins: vec![PinReceipt {
            id: PinId::from_number(1),
            tokens: 12,
            placement: PinPlacement::PinSlot,
        }],
    }
}

#[test]
fn receipt_json_is_stable() {
    let receipt = receipt();
    let value = serde_json::to_value(&receipt).unwrap();
    insta::assert_json_snapshot!(value);
    assert_eq!(serde_json::from_value::<CompactionReceipt>(value).unwrap(), receipt);
}

#[test]
fn totals_add_up_to_the_before_figure() {
    let receipt = receipt();
    assert_eq!(receipt.totals.attributed(), 12 + 20 + 305 + 6 + 40);
    assert_eq!(receipt.totals.sum(), 380);
    assert!(receipt.adds_up());
    assert_eq!(receipt.totals.items(), 4);
    let mut off = receipt;
    off.totals.unattributed += 1;
    assert!(!off.adds_up());
}

#[test]
fn outcomes_of_a_newer_version_are_read_as_other() {
    let item: ItemReceipt =
        serde_json::from_value(json!({"type": "message", "outcome": "archived", "tokens": 3}))
            .unwrap();
    assert_eq!(item.outcome, ItemOutcome::Other);
    assert_eq!(item.role, None);
    let placement: PinPlacement = serde_json::from_value(json!("elsewhere")).unwrap();
    assert_eq!(placement, PinPlacement::Other);
    let status: ReceiptStatus = serde_json::from_value(json!("queued")).unwrap();
    assert_eq!(status, ReceiptStatus::Other);
}

#[test]
fn outcome_names_are_their_json() {
    for outcome in ItemOutcome::ALL {
        assert_eq!(serde_json::to_value(outcome).unwrap(), json!(outcome.name()));
        assert!(ReceiptTotals::default().category(outcome).is_some());
    }
    assert_eq!(ReceiptTotals::default().category(ItemOutcome::Other), None);
}

#[test]
fn an_item_line_names_the_type_and_role_as_the_item_does() {
    let user = ItemReceipt::of(&ResponseItem::user_text("hi"), ItemOutcome::KeptVerbatim, 3);
    assert!(matches!(user.item_type, Cow::Borrowed("message")), "{:?}", user.item_type);
    assert!(matches!(user.role, Some(Cow::Borrowed("user"))), "{:?}", user.role);
    let unusual: ResponseItem =
        serde_json::from_value(json!({"type": "message", "role": "critic", "content": []}))
            .unwrap();
    let critic = ItemReceipt::of(&unusual, ItemOutcome::Dropped, 1);
    assert_eq!(critic.role.as_deref(), Some("critic"));
    let unknown: ResponseItem =
        serde_json::from_value(json!({"type": "future_item", "data": 1})).unwrap();
    let line = ItemReceipt::of(&unknown, ItemOutcome::Summarized, 9);
    assert_eq!(line.item_type, "future_item");
    assert_eq!(line.role, None);
    // Static or copied, the JSON is the same, and it reads back as the line it was.
    let value = serde_json::to_value(&user).unwrap();
    assert_eq!(
        value,
        json!({"type": "message", "role": "user", "outcome": "kept_verbatim", "tokens": 3})
    );
    assert_eq!(serde_json::from_value::<ItemReceipt>(value).unwrap(), user);
}
