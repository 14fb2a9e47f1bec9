//! Tests of the fit floor: it never exceeds what an implementation really installs.

use compactor_protocol::{InitialContextInjection, PassThroughList};
use pretty_assertions::assert_eq;
use proptest::prelude::*;

use compactor_protocol::tokens::TokenCounter;

use super::*;
use crate::test_support::{assistant, call, developer, output, user, user_with_image};
use crate::{
    Compacted, EstimateContext, HistoryCounts, Layout, PruneConfig, compacted_history,
    estimate_history, prune,
};

fn markers() -> ContextualMarkers {
    ContextualMarkers::default()
}

#[test]
fn the_floor_counts_the_instructions_and_the_kept_user_text() {
    let history = [
        user(&"a".repeat(400)),
        user("<environment_context>cwd</environment_context>"),
        assistant(&"b".repeat(4_000)),
        developer(&"c".repeat(4_000)),
        call("c1", "shell"),
        output("c1", &"d".repeat(4_000)),
        user_with_image("look"),
    ];
    let v2 = CompactionImplementation::ResponsesCompactionV2;
    // 16 bytes of instructions, 400 and 4 bytes of kept user text.
    let instructions = "i".repeat(16);
    assert_eq!(
        compacted_floor(
            v2,
            &history,
            None,
            &instructions,
            &markers(),
            64_000,
            TokenCounter::Bytes4
        ),
        Some(4 + 100 + 1)
    );
    // Over the retained budget, v2 keeps what the budget holds: no bound beyond the instructions.
    assert_eq!(
        compacted_floor(v2, &history, None, &instructions, &markers(), 100, TokenCounter::Bytes4),
        Some(4)
    );
    let prune = CompactionImplementation::Prune;
    assert_eq!(
        compacted_floor(prune, &history, None, "", &markers(), 100, TokenCounter::Bytes4),
        Some(101)
    );
    for none in [
        CompactionImplementation::Responses,
        CompactionImplementation::ResponsesCompact,
        CompactionImplementation::ServerManaged,
    ] {
        assert_eq!(
            compacted_floor(none, &history, None, "", &markers(), 64_000, TokenCounter::Bytes4),
            None,
            "{none:?}"
        );
    }
}

fn arbitrary_item() -> impl Strategy<Value = ResponseItem> {
    prop_oneof![
        "[a-z \"\\\\é]{0,60}".prop_map(|text| user(&text)),
        "[a-z ]{0,60}".prop_map(|text| user_with_image(&text)),
        "[a-z ]{0,60}".prop_map(|text| assistant(&text)),
        "[a-z ]{0,60}".prop_map(|text| developer(&text)),
        ("[a-z]{1,4}", "[a-z ]{0,200}").prop_map(|(id, text)| output(&id, &text)),
        "[a-z]{1,4}".prop_map(|id| call(&id, "shell")),
    ]
}

proptest! {
    #[test]
    fn the_floor_is_never_above_the_installed_history(
        history in proptest::collection::vec(arbitrary_item(), 0..30),
        instructions in "[a-z]{0,40}",
        budget in crate::MIN_RETAINED_BUDGET_TOKENS..2_000,
    ) {
        let pass_through = PassThroughList::default();
        let estimate = |items: &[ResponseItem]| estimate_history(&instructions, items, &pass_through);
        // v2 with the smallest compaction item there is.
        let item = ResponseItem::ContextCompaction { id: None, encrypted_content: Some(String::new()) };
        let markers = markers();
        let layout = Layout {
            injection: InitialContextInjection::DoNotInject,
            retained_budget_tokens: budget,
            ..Layout::new(&markers)
        };
        let compacted =
            Compacted::RemoteV2 { messages: crate::v2_request_messages(&history), item };
        let installed = compacted_history(compacted, &layout).unwrap();
        let context = EstimateContext::new(&instructions, &pass_through);
        let counts = HistoryCounts::new(&history, &context.item_counter());
        let floor = |implementation, counts| {
            compacted_floor(implementation, &history, counts, &instructions, &markers, budget, TokenCounter::Bytes4)
        };
        let v2 = floor(CompactionImplementation::ResponsesCompactionV2, None);
        prop_assert!(v2.unwrap() <= estimate(&installed), "{v2:?} > {}", estimate(&installed));
        // The history's cached counts give the same bound as counting its items again.
        prop_assert_eq!(floor(CompactionImplementation::ResponsesCompactionV2, Some(&counts)), v2);
        // Prune with a target nothing reaches: it removes all it can.
        let config = PruneConfig { protected_user_turns: 0, target_tokens: 0 };
        let pruned = prune(&history, &counts, &config, &context, &markers);
        let prune_floor = floor(CompactionImplementation::Prune, None);
        prop_assert!(prune_floor.unwrap() <= estimate(&pruned.history));
        prop_assert_eq!(floor(CompactionImplementation::Prune, Some(&counts)), prune_floor);
    }
}
