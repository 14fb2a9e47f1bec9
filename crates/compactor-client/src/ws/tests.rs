//! Tests of the incremental-request baseline: fingerprints decide exactly as comparing the items
//! themselves did, in every case that decision distinguishes.

use compactor_protocol::ToolOutput;
use pretty_assertions::assert_eq;
use proptest::prelude::*;
use serde_json::json;

use super::*;

/// A fixed key: the decisions do not depend on it.
fn key() -> FingerprintKey {
    FingerprintKey::new(7, 11)
}

fn user(text: &str) -> ResponseItem {
    ResponseItem::user_text(text)
}

fn assistant(text: &str) -> ResponseItem {
    ResponseItem::assistant_text(text)
}

fn compaction(content: &str) -> ResponseItem {
    ResponseItem::Compaction { id: None, encrypted_content: content.to_owned(), created_by: None }
}

fn context_compaction(content: &str) -> ResponseItem {
    ResponseItem::ContextCompaction { id: None, encrypted_content: Some(content.to_owned()) }
}

fn request(input: &[ResponseItem]) -> ResponsesApiRequest<'static> {
    ResponsesApiRequest {
        model: Cow::Owned("gpt-test".to_owned()),
        instructions: Cow::Owned("be brief".to_owned()),
        input: Cow::Owned(input.iter().cloned().map(Cow::Owned).collect()),
        tools: Cow::Owned(vec![json!({"type": "function", "name": "shell"})]),
        tool_choice: Cow::Owned("auto".to_owned()),
        parallel_tool_calls: true,
        reasoning: None,
        store: false,
        stream: None,
        include: Vec::new(),
        service_tier: None,
        prompt_cache_key: Some("thread".to_owned()),
        text: None,
        context_management: None,
        previous_response_id: None,
        generate: None,
        client_metadata: None,
    }
}

/// The last response as the reader records it.
fn response(output: &[ResponseItem]) -> LastResponse {
    LastResponse {
        response_id: "resp_1".to_owned(),
        added: output.iter().map(|item| item.fingerprint(key())).collect(),
        compaction_at: output
            .iter()
            .rposition(|item| matches!(item, ResponseItem::Compaction { .. })),
    }
}

/// The decision as it was made before fingerprints, on the items themselves: the oracle.
fn by_items(
    last: &ResponsesApiRequest<'_>,
    output: &[ResponseItem],
    next: &ResponsesApiRequest<'_>,
) -> Option<usize> {
    if !same_settings(last, next) {
        return None;
    }
    match output.iter().rposition(|item| matches!(item, ResponseItem::Compaction { .. })) {
        Some(at) => {
            let tail = &output[at..];
            let starts = next.input.len() >= tail.len()
                && next.input.iter().zip(tail).all(|(sent, kept)| **sent == *kept);
            starts.then_some(tail.len())
        }
        None => {
            let prefix_len = last.input.len() + output.len();
            let extends = next.input.len() >= prefix_len
                && next.input[..last.input.len()] == last.input[..]
                && next.input[last.input.len()..prefix_len]
                    .iter()
                    .zip(output)
                    .all(|(sent, added)| **sent == *added);
            extends.then_some(prefix_len)
        }
    }
}

/// Decides `next` after `last` was answered with `output`, by fingerprints.
fn by_prints(
    last: &ResponsesApiRequest<'_>,
    output: &[ResponseItem],
    next: &ResponsesApiRequest<'_>,
) -> Option<usize> {
    let prints = last.input.iter().map(|item| item.fingerprint(key())).collect();
    let baseline = Baseline::new(last, prints);
    incremental_prefix(Some(&baseline), Some(&response(output)), next, true, key()).0
}

/// Asserts the decision for `next`, after `last` was answered with `output`, is `expected` (the
/// length of the prefix the server holds, or `None` for a full create), by fingerprints and by
/// the items alike.
#[track_caller]
fn check(
    last: &ResponsesApiRequest<'_>,
    output: &[ResponseItem],
    next: &ResponsesApiRequest<'_>,
    expected: Option<usize>,
) {
    assert_eq!(by_items(last, output, next), expected, "the oracle");
    assert_eq!(by_prints(last, output, next), expected, "fingerprints");
}

#[test]
fn a_request_that_extends_the_last_input_and_output_is_incremental() {
    let (u1, a1, u2) = (user("a"), assistant("b"), user("c"));
    check(
        &request(&[user("a")]),
        &[assistant("b")],
        &request(&[u1.clone(), a1.clone(), u2]),
        Some(2),
    );
    // Nothing new: the suffix is empty, still chained.
    check(&request(&[user("a")]), &[assistant("b")], &request(&[u1.clone(), a1]), Some(2));
    // A response without output.
    check(&request(&[user("a")]), &[], &request(&[u1.clone(), user("d")]), Some(1));
    // After a prewarm: nothing sent, nothing answered.
    check(&request(&[]), &[], &request(&[u1]), Some(0));
}

#[test]
fn a_changed_item_or_a_short_input_is_a_full_create() {
    let (u1, a1, u2) = (user("a"), assistant("b"), user("c"));
    let last = request(&[u1.clone(), user("x")]);
    let output = [a1.clone()];
    // An item of the last input changed, or was removed.
    check(&last, &output, &request(&[user("A"), user("x"), a1.clone(), u2.clone()]), None);
    check(&last, &output, &request(&[u1.clone(), a1.clone(), u2.clone()]), None);
    // An output item changed, or is missing.
    check(&last, &output, &request(&[u1.clone(), user("x"), assistant("B"), u2.clone()]), None);
    check(&last, &output, &request(&[u1.clone(), user("x"), u2]), None);
    // Shorter than what the server holds.
    check(&last, &output, &request(&[u1.clone(), user("x")]), None);
    check(&last, &output, &request(&[]), None);
    // The same items in another order.
    check(&last, &output, &request(&[user("x"), u1, a1]), None);
}

#[test]
fn every_changed_setting_is_a_full_create() {
    let last = request(&[user("a")]);
    let mut changes: Vec<fn(&mut ResponsesApiRequest<'static>)> = vec![
        |r| r.model = Cow::Owned("other".to_owned()),
        |r| r.instructions = Cow::Owned("other".to_owned()),
        |r| r.tools = Cow::Owned(Vec::new()),
        |r| r.tool_choice = Cow::Owned("none".to_owned()),
        |r| r.parallel_tool_calls = false,
        |r| r.store = true,
        |r| r.include = vec!["reasoning.encrypted_content".to_owned()],
        |r| r.service_tier = Some("flex".to_owned()),
        |r| r.prompt_cache_key = None,
        |r| r.client_metadata = json!({"k": "v"}).as_object().cloned(),
    ];
    changes.push(|r| {
        r.reasoning = serde_json::from_value(json!({"effort": "high"})).unwrap();
    });
    changes.push(|r| r.text = serde_json::from_value(json!({"verbosity": "low"})).unwrap());
    changes.push(|r| {
        r.context_management =
            serde_json::from_value(json!([{"type": "compaction", "compact_threshold": 5}]))
                .unwrap();
    });
    for change in changes {
        let mut next = request(&[user("a"), assistant("b")]);
        change(&mut next);
        assert!(!same_settings(&last, &next), "{next:?}");
        check(&last, &[assistant("b")], &next, None);
    }
    // `stream`, `generate` and `previous_response_id` are not settings: they never break the chain.
    let mut next = request(&[user("a"), assistant("b")]);
    next.stream = Some(true);
    next.previous_response_id = Some("resp_0".to_owned());
    check(&last, &[assistant("b")], &next, Some(2));
}

#[test]
fn after_a_server_side_compaction_the_input_chains_from_the_compaction_item() {
    let last = request(&[user("a")]);
    let output = [assistant("b"), compaction("C"), assistant("d")];
    let (c, d, u2) = (compaction("C"), assistant("d"), user("e"));
    check(&last, &output, &request(&[c.clone(), d.clone(), u2.clone()]), Some(2));
    check(&last, &output, &request(&[c.clone(), d.clone()]), Some(2));
    // The whole history resent does not start with the compaction item.
    check(
        &last,
        &output,
        &request(&[user("a"), assistant("b"), c.clone(), d.clone(), u2.clone()]),
        None,
    );
    // Shorter than what followed the compaction, or another compaction item.
    check(&last, &output, &request(&[compaction("C")]), None);
    check(&last, &output, &request(&[compaction("X"), d.clone(), u2.clone()]), None);
    // Two compaction items: the server holds what the last one started.
    let output = [compaction("old"), assistant("x"), c.clone(), d.clone()];
    check(&last, &output, &request(&[c.clone(), d.clone(), u2.clone()]), Some(2));
    check(&last, &output, &request(&[compaction("old"), assistant("x"), c, d, u2]), None);
    // A v2 `context_compaction` output is no server-side compaction: the prefix rule applies.
    let cc = ResponseItem::ContextCompaction { id: None, encrypted_content: Some("E".into()) };
    check(
        &last,
        &[context_compaction("E")],
        &request(&[user("a"), cc.clone(), user("z")]),
        Some(2),
    );
    check(&last, &[context_compaction("E")], &request(&[cc, user("z")]), None);
}

#[test]
fn items_equal_as_values_chain_even_in_another_key_order() {
    let ghost = |raw| serde_json::from_value::<ResponseItem>(raw).unwrap();
    let last = request(&[ghost(json!({"type": "ghost", "a": 1, "b": {"x": 0.0, "y": [1]}}))]);
    let next =
        request(&[ghost(json!({"type": "ghost", "b": {"y": [1], "x": -0.0}, "a": 1})), user("u")]);
    check(&last, &[], &next, Some(1));
    let next =
        request(&[ghost(json!({"type": "ghost", "b": {"y": [1], "x": 0.0}, "a": 1.0})), user("u")]);
    check(&last, &[], &next, None);
}

#[test]
fn without_a_baseline_or_a_completed_response_the_request_is_full() {
    let last = request(&[user("a")]);
    let next = request(&[user("a"), user("b")]);
    let baseline = Baseline::new(&last, vec![user("a").fingerprint(key())]);
    let answered = response(&[]);
    assert_eq!(incremental_prefix(None, Some(&answered), &next, true, key()).0, None);
    assert_eq!(incremental_prefix(Some(&baseline), None, &next, true, key()).0, None);
    assert_eq!(incremental_prefix(Some(&baseline), Some(&answered), &next, true, key()).0, Some(1));
}

#[test]
fn the_baseline_keeps_fingerprints_and_settings_never_the_items() {
    // 200 items of 10 KB: a copy would hold 2 MB.
    let items: Vec<ResponseItem> = (0..200).map(|i| user(&format!("{i:>10000}"))).collect();
    let next = request(&items);
    let (prefix, prints) = incremental_prefix(None, None, &next, true, key());
    assert_eq!(prefix, None);
    let baseline = Baseline::new(&next, prints);
    assert!(baseline.settings.input.is_empty());
    assert_eq!(baseline.input.len(), items.len());
    assert_eq!(size_of::<Fingerprint>(), 24);
    assert_eq!(baseline.input[7], items[7].fingerprint(key()));
}

#[test]
fn a_request_that_ends_with_a_compaction_trigger_fingerprints_only_what_it_compares() {
    let last = request(&[user("a")]);
    let baseline = Baseline::new(&last, vec![user("a").fingerprint(key())]);
    let answered = response(&[assistant("b")]);
    let mut input: Vec<ResponseItem> = (0..50).map(|i| user(&i.to_string())).collect();
    input.insert(0, user("a"));
    input.insert(1, assistant("b"));
    input.push(ResponseItem::context_compaction_trigger());
    let next = request(&input);
    let (prefix, prints) =
        incremental_prefix(Some(&baseline), Some(&answered), &next, false, key());
    assert_eq!(prefix, Some(2));
    assert_eq!(prints.len(), 2);
    // With no baseline nothing is fingerprinted at all.
    let (prefix, prints) = incremental_prefix(None, None, &next, false, key());
    assert_eq!((prefix, prints.len()), (None, 0));
}

fn item() -> impl Strategy<Value = ResponseItem> {
    prop_oneof![
        "[ab]".prop_map(|t| user(&t)),
        "[ab]".prop_map(|t| assistant(&t)),
        "[ab]".prop_map(|t| compaction(&t)),
        "[ab]".prop_map(|t| ResponseItem::FunctionCallOutput {
            call_id: "c".to_owned(),
            output: ToolOutput::Text(t),
        }),
    ]
}

proptest! {
    #[test]
    fn fingerprints_decide_as_the_items_do(
        last in proptest::collection::vec(item(), 0..4),
        output in proptest::collection::vec(item(), 0..4),
        next in proptest::collection::vec(item(), 0..9),
        splice in any::<bool>(),
    ) {
        // Half the time the next input really extends what came before, with random changes
        // left to `next`'s own items after it.
        let next = if splice {
            let mut extended = last.clone();
            extended.extend(output.iter().cloned());
            extended.extend(next);
            extended
        } else {
            next
        };
        let (last, next) = (request(&last), request(&next));
        prop_assert_eq!(by_prints(&last, &output, &next), by_items(&last, &output, &next));
    }
}
