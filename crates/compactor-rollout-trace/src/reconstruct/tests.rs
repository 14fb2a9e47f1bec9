//! Tests of resume reconstruction and fork (D23, D24): one tiny rollout per case.

use std::fmt::Write as _;

use compactor_protocol::display::format_history;
use compactor_protocol::{
    CompactedItem, ContentItem, ContextualMarkers, EventMsg, Pin, PinId, PinsItem, ResponseItem,
    RolloutItem, RolloutLine, SessionMeta, TokenUsage, TokenUsageInfo, TurnContextItem,
    is_user_turn_boundary,
};
use pretty_assertions::assert_eq;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

const TS: &str = "2026-05-15T10:00:00.000Z";

/// Every reconstruction in these tests goes both ways: borrowing the lines, and taking them by
/// value (what resume does); the two must agree.
#[track_caller]
fn reconstruct_history_from_rollout(
    lines: &[RolloutLine],
    legacy_rebuild: LegacyRebuild<'_>,
) -> ReconstructedSession {
    let borrowed = super::reconstruct_history_from_rollout(lines, legacy_rebuild);
    let markers = ContextualMarkers::default();
    let owned = Replay::new(legacy_rebuild, &markers).reconstruct_owned(lines.to_vec());
    assert_eq!(owned, borrowed, "reconstruct_owned disagrees with reconstruct");
    borrowed
}

fn started(turn: &str) -> RolloutItem {
    RolloutItem::EventMsg(EventMsg::TurnStarted {
        turn_id: turn.into(),
        started_at: None,
        model_context_window: Some(10_000),
    })
}

fn complete(turn: &str) -> RolloutItem {
    RolloutItem::EventMsg(EventMsg::TurnComplete { turn_id: turn.into(), last_agent_message: None })
}

fn ctx(turn: Option<&str>, model: &str) -> RolloutItem {
    RolloutItem::TurnContext(TurnContextItem {
        turn_id: turn.map(str::to_owned),
        model: model.into(),
        ..TurnContextItem::default()
    })
}

fn user_event(text: &str) -> RolloutItem {
    RolloutItem::EventMsg(EventMsg::UserMessage { message: text.into() })
}

fn user(text: &str) -> RolloutItem {
    RolloutItem::ResponseItem(ResponseItem::user_text(text))
}

fn assistant(text: &str) -> RolloutItem {
    RolloutItem::ResponseItem(ResponseItem::assistant_text(text))
}

fn developer(text: &str) -> RolloutItem {
    RolloutItem::ResponseItem(ResponseItem::developer_text(text))
}

fn compacted(items: &[&str]) -> RolloutItem {
    RolloutItem::Compacted(CompactedItem::new(
        "",
        items.iter().map(|text| ResponseItem::user_text(*text)).collect(),
    ))
}

fn legacy(message: &str) -> RolloutItem {
    RolloutItem::Compacted(CompactedItem {
        message: message.into(),
        replacement_history: None,
        pins: None,
        receipt: None,
        extra: serde_json::Map::new(),
    })
}

fn rollback(num_turns: u32) -> RolloutItem {
    RolloutItem::EventMsg(EventMsg::ThreadRolledBack { num_turns })
}

fn tokens(total: i64) -> RolloutItem {
    let mut info = TokenUsageInfo::default();
    info.append_last_usage(&TokenUsage::with_total(total));
    RolloutItem::EventMsg(EventMsg::TokenCount { info: Some(info), rate_limits: None })
}

/// A user turn: `turn_started`, `turn_context`, `user_message`, the user item, a reply and
/// `turn_complete`.
fn user_turn(turn: &str, model: &str, text: &str) -> Vec<RolloutItem> {
    vec![
        started(turn),
        ctx(Some(turn), model),
        user_event(text),
        user(text),
        assistant(&format!("re: {text}")),
        complete(turn),
    ]
}

/// A standalone manual compaction turn (no user message; the baseline is cleared).
fn compaction_turn(turn: &str, items: &[&str]) -> Vec<RolloutItem> {
    vec![
        started(turn),
        compacted(items),
        RolloutItem::EventMsg(EventMsg::ContextCompacted {}),
        complete(turn),
    ]
}

fn lines(items: Vec<RolloutItem>) -> Vec<RolloutLine> {
    items.into_iter().map(|item| RolloutLine::new(TS, item)).collect()
}

/// The items of a fork of `lines` with the default markers.
fn fork_rollout(lines: &[RolloutLine], drop_last_user_turns: u32) -> Vec<RolloutItem> {
    Replay::new(&rebuild, &ContextualMarkers::default()).fork(lines, drop_last_user_turns)
}

/// The test's legacy rebuild: the user messages so far, then the message as a summary.
fn rebuild(history: &[ResponseItem], message: &str, _: &ContextualMarkers) -> Vec<ResponseItem> {
    let mut out: Vec<ResponseItem> =
        history.iter().filter(|item| item.role() == Some("user")).cloned().collect();
    out.push(ResponseItem::user_text(format!("SUMMARY: {message}")));
    out
}

fn render(session: &ReconstructedSession) -> String {
    let mut out = String::from("history:\n");
    out.push_str(&format_history(&session.history));
    let reference = session
        .reference_context_item
        .as_ref()
        .map(|ctx| format!("{}/{}", ctx.turn_id.as_deref().unwrap_or("-"), ctx.model));
    let _ = writeln!(out, "reference: {}", reference.as_deref().unwrap_or("none"));
    let previous = session.previous_turn_settings.as_ref().map(|s| s.model.as_str());
    let _ = writeln!(out, "previous: {}", previous.unwrap_or("none"));
    let tokens = session.token_info.map(|info| info.total_token_usage.total_tokens);
    let _ = writeln!(out, "tokens: {}", tokens.map_or("none".to_owned(), |t| t.to_string()));
    let _ = writeln!(out, "generation: {}", session.window_generation);
    if session.legacy_compactions_replayed > 0 {
        let _ = writeln!(out, "legacy: {}", session.legacy_compactions_replayed);
    }
    out
}

#[track_caller]
fn check(items: Vec<RolloutItem>, expected: &str) {
    let session = reconstruct_history_from_rollout(&lines(items), &rebuild);
    assert_eq!(render(&session), expected.trim_start());
}

fn concat(parts: Vec<Vec<RolloutItem>>) -> Vec<RolloutItem> {
    parts.into_iter().flatten().collect()
}

#[test]
fn empty_rollout() {
    check(
        vec![],
        "
history:
reference: none
previous: none
tokens: none
generation: 0
",
    );
}

#[test]
fn plain_turns_replay_in_order() {
    check(
        concat(vec![user_turn("t1", "gpt-a", "one"), user_turn("t2", "gpt-b", "two")]),
        "
history:
00:message/user:one
01:message/assistant:re: one
02:message/user:two
03:message/assistant:re: two
reference: t2/gpt-b
previous: gpt-b
tokens: none
generation: 0
",
    );
}

#[test]
fn newest_replacement_history_is_the_base() {
    check(
        concat(vec![
            user_turn("t1", "gpt-a", "one"),
            compaction_turn("c1", &["one", "S1"]),
            user_turn("t2", "gpt-a", "two"),
            compaction_turn("c2", &["one", "two", "S2"]),
            user_turn("t3", "gpt-a", "three"),
        ]),
        "
history:
00:message/user:one
01:message/user:two
02:message/user:S2
03:message/user:three
04:message/assistant:re: three
reference: t3/gpt-a
previous: gpt-a
tokens: none
generation: 2
",
    );
}

#[test]
fn reference_context_is_cleared_by_a_compaction() {
    // A manual compaction after the last user turn: the next turn must re-inject the context.
    check(
        concat(vec![user_turn("t1", "gpt-a", "one"), compaction_turn("c1", &["one", "S"])]),
        "
history:
00:message/user:one
01:message/user:S
reference: none
previous: gpt-a
tokens: none
generation: 1
",
    );
}

#[test]
fn turn_context_after_the_compaction_re_establishes_the_reference() {
    // Mid-turn compaction: the `turn_context` written right after `compacted` is the baseline.
    check(
        vec![
            started("t1"),
            ctx(Some("t1"), "gpt-a"),
            user_event("one"),
            user("one"),
            assistant("working"),
            compacted(&["one", "S"]),
            ctx(Some("t1"), "gpt-a2"),
            assistant("done"),
            complete("t1"),
        ],
        "
history:
00:message/user:one
01:message/user:S
02:message/assistant:done
reference: t1/gpt-a2
previous: gpt-a2
tokens: none
generation: 1
",
    );
    // A later user turn's `turn_context` re-establishes it after a cleared one.
    check(
        concat(vec![
            user_turn("t1", "gpt-a", "one"),
            compaction_turn("c1", &["one", "S"]),
            user_turn("t2", "gpt-b", "two"),
        ]),
        "
history:
00:message/user:one
01:message/user:S
02:message/user:two
03:message/assistant:re: two
reference: t2/gpt-b
previous: gpt-b
tokens: none
generation: 1
",
    );
}

#[test]
fn legacy_compaction_is_rebuilt_and_clears_the_reference() {
    check(
        concat(vec![
            user_turn("t1", "gpt-a", "one"),
            vec![legacy("what happened")],
            user_turn("t2", "gpt-a", "two"),
        ]),
        "
history:
00:message/user:one
01:message/user:SUMMARY: what happened
02:message/user:two
03:message/assistant:re: two
reference: none
previous: gpt-a
tokens: none
generation: 1
legacy: 1
",
    );
    // Before the newest replacement history a legacy line is superseded and not replayed.
    check(
        concat(vec![
            user_turn("t1", "gpt-a", "one"),
            vec![legacy("old")],
            compaction_turn("c1", &["one", "S"]),
            user_turn("t2", "gpt-a", "two"),
        ]),
        "
history:
00:message/user:one
01:message/user:S
02:message/user:two
03:message/assistant:re: two
reference: t2/gpt-a
previous: gpt-a
tokens: none
generation: 2
",
    );
}

#[test]
fn trailing_incomplete_compacted_turn_clears_the_reference() {
    check(
        concat(vec![
            user_turn("t1", "gpt-a", "one"),
            vec![
                started("t2"),
                ctx(Some("t2"), "gpt-a"),
                user_event("two"),
                user("two"),
                compacted(&["one", "two", "S"]),
            ],
        ]),
        "
history:
00:message/user:one
01:message/user:two
02:message/user:S
reference: none
previous: gpt-a
tokens: none
generation: 1
",
    );
    // Without the compaction the incomplete turn keeps its baseline.
    check(
        concat(vec![
            user_turn("t1", "gpt-a", "one"),
            vec![started("t2"), ctx(Some("t2"), "gpt-b"), user_event("two"), user("two")],
        ]),
        "
history:
00:message/user:one
01:message/assistant:re: one
02:message/user:two
reference: t2/gpt-b
previous: gpt-b
tokens: none
generation: 0
",
    );
}

#[test]
fn rollback_counts_user_turns_only() {
    // The compaction turn after t2 is undone with t2 but not counted: one user turn goes.
    check(
        concat(vec![
            user_turn("t1", "gpt-a", "one"),
            user_turn("t2", "gpt-b", "two"),
            compaction_turn("c1", &["one", "two", "S"]),
            vec![rollback(1)],
        ]),
        "
history:
00:message/user:one
01:message/assistant:re: one
reference: t1/gpt-a
previous: gpt-a
tokens: none
generation: 1
",
    );
    // A non-user segment between user turns survives a rollback of the newest turn.
    check(
        concat(vec![
            user_turn("t1", "gpt-a", "one"),
            vec![
                started("auto"),
                ctx(Some("auto"), "gpt-x"),
                assistant("follow-up"),
                complete("auto"),
            ],
            user_turn("t2", "gpt-b", "two"),
            vec![rollback(1)],
        ]),
        "
history:
00:message/user:one
01:message/assistant:re: one
02:message/assistant:follow-up
reference: t1/gpt-a
previous: gpt-a
tokens: none
generation: 0
",
    );
}

#[test]
fn rollback_of_an_incomplete_turn() {
    check(
        concat(vec![
            user_turn("t1", "gpt-a", "one"),
            vec![
                started("t2"),
                ctx(Some("t2"), "gpt-b"),
                user_event("two"),
                user("two"),
                rollback(1),
            ],
            user_turn("t3", "gpt-a", "three"),
        ]),
        "
history:
00:message/user:one
01:message/assistant:re: one
02:message/user:three
03:message/assistant:re: three
reference: t3/gpt-a
previous: gpt-a
tokens: none
generation: 0
",
    );
}

#[test]
fn over_large_rollback_keeps_only_what_preceded_the_first_user_turn() {
    check(
        concat(vec![
            vec![
                RolloutItem::SessionMeta(SessionMeta {
                    id: "thread".into(),
                    ..SessionMeta::default()
                }),
                developer("permissions"),
                user("<environment_context>cwd=/w</environment_context>"),
            ],
            user_turn("t1", "gpt-a", "one"),
            user_turn("t2", "gpt-a", "two"),
            vec![rollback(5)],
        ]),
        "
history:
00:message/developer:permissions
01:message/user:<environment_context>cwd=/w</environment_context>
reference: none
previous: none
tokens: none
generation: 0
",
    );
    // No user turn at all: nothing to roll back.
    check(
        vec![
            developer("permissions"),
            user("<environment_context>x</environment_context>"),
            rollback(1),
        ],
        "
history:
00:message/developer:permissions
01:message/user:<environment_context>x</environment_context>
reference: none
previous: none
tokens: none
generation: 0
",
    );
}

#[test]
fn rollback_after_a_compaction_keeps_the_compacted_history() {
    // A rollback past a compaction replays the append-only history before it (D24).
    check(
        concat(vec![
            user_turn("t1", "gpt-a", "hello world"),
            compaction_turn("c1", &["hello world", "SUMMARY"]),
            user_turn("edited", "gpt-a", "EDITED_AFTER_COMPACT"),
            vec![rollback(1)],
        ]),
        "
history:
00:message/user:hello world
01:message/user:SUMMARY
reference: none
previous: gpt-a
tokens: none
generation: 1
",
    );
}

#[test]
fn rollback_of_a_turn_that_compacted_replays_the_history_before_it() {
    check(
        concat(vec![
            user_turn("t1", "gpt-a", "one"),
            vec![
                started("t2"),
                ctx(Some("t2"), "gpt-b"),
                user_event("two"),
                compacted(&["one", "S"]),
                user("two"),
                complete("t2"),
                rollback(1),
            ],
        ]),
        "
history:
00:message/user:one
01:message/assistant:re: one
reference: t1/gpt-a
previous: gpt-a
tokens: none
generation: 1
",
    );
}

#[test]
fn rollbacks_stack() {
    check(
        concat(vec![
            user_turn("t1", "gpt-a", "one"),
            user_turn("t2", "gpt-a", "two"),
            vec![rollback(1)],
            user_turn("t3", "gpt-a", "three"),
            user_turn("t4", "gpt-a", "four"),
            vec![rollback(2)],
        ]),
        "
history:
00:message/user:one
01:message/assistant:re: one
reference: t1/gpt-a
previous: gpt-a
tokens: none
generation: 0
",
    );
    check(concat(vec![user_turn("t1", "gpt-a", "one"), vec![rollback(0)]]), &render_plain_one());
}

fn render_plain_one() -> String {
    "
history:
00:message/user:one
01:message/assistant:re: one
reference: t1/gpt-a
previous: gpt-a
tokens: none
generation: 0
"
    .to_owned()
}

#[test]
fn token_info_is_the_last_surviving_token_count() {
    check(
        concat(vec![
            user_turn("t1", "gpt-a", "one"),
            vec![
                tokens(100),
                RolloutItem::EventMsg(EventMsg::TokenCount { info: None, rate_limits: None }),
            ],
            user_turn("t2", "gpt-a", "two"),
            vec![tokens(900), rollback(1)],
        ]),
        "
history:
00:message/user:one
01:message/assistant:re: one
reference: t1/gpt-a
previous: gpt-a
tokens: 100
generation: 0
",
    );
}

#[test]
fn unknown_lines_are_skipped_and_unknown_items_kept() {
    let unknown_item: ResponseItem =
        serde_json::from_value(json!({"type": "configuration_update", "x": 1})).unwrap();
    check(
        vec![
            RolloutItem::Unknown { kind: "future_line".into(), payload: Some(json!({"a": 1})) },
            started("t1"),
            user_event("one"),
            user("one"),
            RolloutItem::ResponseItem(unknown_item),
            RolloutItem::ResponseItem(ResponseItem::context_compaction_trigger()),
            RolloutItem::ResponseItem(ResponseItem::CompactionTrigger),
            RolloutItem::EventMsg(serde_json::from_value(json!({"type": "future_event"})).unwrap()),
            complete("t1"),
        ],
        "
history:
00:message/user:one
01:configuration_update:unknown
reference: none
previous: none
tokens: none
generation: 0
",
    );
}

#[test]
fn turn_context_of_another_turn_is_ignored() {
    check(
        vec![
            started("t1"),
            ctx(Some("t1"), "gpt-a"),
            user("one"),
            ctx(Some("other"), "gpt-z"),
            complete("t1"),
        ],
        "
history:
00:message/user:one
reference: t1/gpt-a
previous: gpt-a
tokens: none
generation: 0
",
    );
}

#[test]
fn user_turn_from_items_when_events_are_missing() {
    // Contextual user messages do not make a user turn; a real one does.
    let session = reconstruct_history_from_rollout(
        &lines(vec![
            started("t1"),
            ctx(Some("t1"), "gpt-a"),
            user("<user_instructions>be brief</user_instructions>"),
            started("t2"),
            ctx(Some("t2"), "gpt-b"),
            user("  # AGENTS.md instructions for /w"),
            started("t3"),
            user("real"),
            rollback(1),
        ]),
        &rebuild,
    );
    assert_eq!(session.history.len(), 2);
    assert_eq!(session.previous_turn_settings, None);
    let markers = ContextualMarkers::new(["<user_instructions>"]);
    let custom = Replay::new(&rebuild, &markers);
    let session = custom.reconstruct(&lines(vec![
        started("t1"),
        user("<user_instructions>x</user_instructions>"),
        started("t2"),
        user("# AGENTS.md instructions for /w"),
        rollback(1),
    ]));
    assert_eq!(
        session.history,
        vec![ResponseItem::user_text("<user_instructions>x</user_instructions>")]
    );
}

/// A user message item with these text parts.
fn user_parts(parts: &[&str]) -> RolloutItem {
    RolloutItem::ResponseItem(ResponseItem::Message {
        id: None,
        role: "user".into(),
        content: parts.iter().map(|text| ContentItem::InputText { text: (*text).into() }).collect(),
        phase: None,
        extra: Default::default(),
    })
}

/// A turn without a `user_message` event: `turn_started`, `turn_context`, `item`, a reply and
/// `turn_complete`.
fn silent_turn(turn: &str, item: RolloutItem) -> Vec<RolloutItem> {
    vec![
        started(turn),
        ctx(Some(turn), &format!("model-{turn}")),
        item,
        assistant(&format!("re: {turn}")),
        complete(turn),
    ]
}

/// For every `n`, rolling back (and forking before) the last `n` user turns cuts the history
/// just before the `n`-th newest user-turn boundary that protocol's rule finds in the live
/// history, so replay and the engine count the same turns.
#[track_caller]
fn check_turns_counted_by_the_protocol_rule(
    items: &[RolloutItem],
    markers: &ContextualMarkers,
    expected_turns: usize,
) {
    let replay = Replay::new(&rebuild, markers);
    let live = replay.reconstruct(&lines(items.to_vec())).history;
    let boundaries: Vec<usize> = live
        .iter()
        .enumerate()
        .filter(|(_, item)| is_user_turn_boundary(item, markers))
        .map(|(index, _)| index)
        .collect();
    assert_eq!(boundaries.len(), expected_turns, "{}", format_history(&live));
    for n in 0..=expected_turns + 1 {
        let cut = match n {
            0 => live.len(),
            n => boundaries[boundaries.len().saturating_sub(n)],
        };
        let mut rolled_back = items.to_vec();
        rolled_back.push(rollback(u32::try_from(n).unwrap()));
        let resumed = replay.reconstruct(&lines(rolled_back));
        assert_eq!(format_history(&resumed.history), format_history(&live[..cut]), "rollback {n}");
        let forked = replay.fork(&lines(items.to_vec()), u32::try_from(n).unwrap());
        let fork = replay.reconstruct(&lines(forked));
        assert_eq!(fork.history, live[..cut], "fork before {n}");
    }
}

#[test]
fn user_turns_are_counted_by_the_protocol_rule() {
    // No `user_message` events: the items alone say which turns are the user's.
    let items = concat(vec![
        silent_turn("t1", user("first")),
        silent_turn(
            "t2",
            user_parts(&["see below", "<environment_context>x</environment_context>"]),
        ),
        silent_turn("t3", user("<ENVIRONMENT_CONTEXT>y</ENVIRONMENT_CONTEXT>")),
        silent_turn("t4", user("fourth")),
        silent_turn("t5", user_parts(&["and this", "<Environment_Context>z"])),
    ]);
    check_turns_counted_by_the_protocol_rule(&items, &ContextualMarkers::default(), 2);
    // The reference context and the previous settings come from the newest user turn, t4.
    let session = Replay::new(&rebuild, &ContextualMarkers::default()).reconstruct(&lines(items));
    assert_eq!(session.reference_context_item.map(|ctx| ctx.model), Some("model-t4".to_owned()));
    assert_eq!(session.previous_turn_settings.map(|s| s.model), Some("model-t4".to_owned()));

    // A session's own markers replace the defaults everywhere.
    let markers = ContextualMarkers::new(["<ctx>"]);
    let items = concat(vec![
        silent_turn("t1", user("first")),
        silent_turn("t2", user_parts(&["see below", "<CTX>a</CTX>"])),
        silent_turn("t3", user("<Ctx>b</Ctx>")),
        silent_turn("t4", user("<environment_context>not context here</environment_context>")),
        silent_turn("t5", user_parts(&["and this", "<ctx>c"])),
    ]);
    check_turns_counted_by_the_protocol_rule(&items, &markers, 2);
    let session = Replay::new(&rebuild, &markers).reconstruct(&lines(items));
    assert_eq!(session.reference_context_item.map(|ctx| ctx.model), Some("model-t4".to_owned()));
}

#[test]
fn a_user_message_event_alone_is_not_a_user_turn() {
    // t2 announces a message but records only context: it is undone with t1, not counted.
    check(
        concat(vec![
            user_turn("t1", "gpt-a", "one"),
            vec![
                started("t2"),
                ctx(Some("t2"), "gpt-b"),
                user_event("!ls"),
                user("<user_shell_command>ls</user_shell_command>"),
                complete("t2"),
            ],
            user_turn("t3", "gpt-c", "three"),
            vec![rollback(2)],
        ]),
        "
history:
reference: none
previous: none
tokens: none
generation: 0
",
    );
}

#[test]
fn the_legacy_rebuild_gets_the_replays_markers() {
    let seen = std::cell::RefCell::new(Vec::new());
    let rebuild = |history: &[ResponseItem], _: &str, markers: &ContextualMarkers| {
        seen.borrow_mut().push(markers.clone());
        history.to_vec()
    };
    let markers = ContextualMarkers::new(["<mine>"]);
    let items = lines(concat(vec![user_turn("t1", "gpt-a", "one"), vec![legacy("old")]]));
    let replay = Replay::new(&rebuild, &markers);
    replay.reconstruct(&items);
    replay.reconstruct_owned(items);
    assert_eq!(*seen.borrow(), [markers.clone(), markers]);
}

#[test]
fn session_meta_is_the_first_one() {
    let meta = |id: &str| {
        RolloutItem::SessionMeta(SessionMeta { id: id.into(), ..SessionMeta::default() })
    };
    let session = reconstruct_history_from_rollout(&lines(vec![meta("a"), meta("b")]), &rebuild);
    assert_eq!(session.session_meta.map(|m| m.id), Some("a".to_owned()));
}

fn two_compaction_session() -> Vec<RolloutItem> {
    concat(vec![
        vec![RolloutItem::SessionMeta(SessionMeta {
            id: "parent".into(),
            ..SessionMeta::default()
        })],
        user_turn("t1", "gpt-a", "one"),
        vec![tokens(500)],
        compaction_turn("c1", &["one", "S1"]),
        user_turn("t2", "gpt-a", "two"),
        vec![legacy("legacy")],
        user_turn("t3", "gpt-b", "three"),
        compaction_turn("c2", &["one", "two", "S2"]),
        user_turn("t4", "gpt-b", "four"),
        vec![tokens(700)],
    ])
}

#[test]
fn fork_resumes_to_the_same_state_with_generation_zero() {
    let parent = lines(two_compaction_session());
    let forked = fork_rollout(&parent, 0);
    assert!(forked.iter().all(|item| !matches!(item, RolloutItem::SessionMeta(_))));
    assert!(forked.iter().all(|item| match item {
        RolloutItem::Compacted(c) => c.extra.get(FORKED_MARKER) == Some(&Value::Bool(true)),
        _ => true,
    }));
    let parent_session = reconstruct_history_from_rollout(&parent, &rebuild);
    let fork_session = reconstruct_history_from_rollout(&lines(forked.clone()), &rebuild);
    assert_eq!(parent_session.window_generation, 3);
    assert_eq!(fork_session.window_generation, 0);
    assert_eq!(
        fork_session,
        ReconstructedSession { window_generation: 0, session_meta: None, ..parent_session }
    );
    // The fork's own compactions count from 0.
    let mut continued = forked;
    continued.extend(compaction_turn("c3", &["S3"]));
    let session = reconstruct_history_from_rollout(&lines(continued), &rebuild);
    assert_eq!(session.window_generation, 1);
    assert_eq!(session.history, vec![ResponseItem::user_text("S3")]);
}

#[test]
fn fork_before_the_last_user_turns() {
    let parent = two_compaction_session();
    let forked = fork_rollout(&lines(parent.clone()), 2);
    let mut rolled_back = parent;
    rolled_back.push(rollback(2));
    let expected = reconstruct_history_from_rollout(&lines(rolled_back), &rebuild);
    let actual = reconstruct_history_from_rollout(&lines(forked), &rebuild);
    assert_eq!(format_history(&actual.history), format_history(&expected.history));
    assert_eq!(
        format_history(&actual.history),
        // The legacy line follows t2's `turn_complete`, so it belongs to t2 and survives.
        "00:message/user:one\n01:message/user:S1\n02:message/user:two\n03:message/user:SUMMARY: legacy\n"
    );
    assert_eq!(
        actual,
        ReconstructedSession { window_generation: 0, session_meta: None, ..expected }
    );
}

/// One step of a generated rollout.
#[derive(Debug, Clone)]
enum Step {
    Turn { user: bool, model: Option<u8>, replies: u8, complete: bool },
    Compact { items: u8, in_turn: bool, context_after: bool },
    Legacy,
    Rollback(u8),
    Tokens(u16),
    Unknown,
    Pins(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (any::<bool>(), proptest::option::of(0u8..3), 0u8..3, any::<bool>())
            .prop_map(|(user, model, replies, complete)| Step::Turn { user, model, replies, complete }),
        2 => (0u8..3, any::<bool>(), any::<bool>())
            .prop_map(|(items, in_turn, context_after)| Step::Compact { items, in_turn, context_after }),
        1 => Just(Step::Legacy),
        1 => (0u8..4).prop_map(Step::Rollback),
        1 => any::<u16>().prop_map(Step::Tokens),
        1 => Just(Step::Unknown),
        1 => (0u8..3).prop_map(Step::Pins),
    ]
}

fn build(steps: &[Step]) -> Vec<RolloutItem> {
    let mut out = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        let turn = format!("t{n}");
        match step {
            Step::Turn { user: is_user, model, replies, complete: done } => {
                out.push(started(&turn));
                if let Some(model) = model {
                    out.push(ctx(Some(&turn), &format!("m{model}")));
                }
                if *is_user {
                    out.push(user_event(&turn));
                    out.push(user(&turn));
                }
                for reply in 0..*replies {
                    out.push(assistant(&format!("{turn}.{reply}")));
                }
                if *done {
                    out.push(complete(&turn));
                }
            }
            Step::Compact { items, in_turn, context_after } => {
                if *in_turn {
                    out.push(started(&turn));
                }
                let texts: Vec<String> = (0..*items).map(|i| format!("c{n}.{i}")).collect();
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                out.push(compacted(&refs));
                if *context_after {
                    out.push(ctx(in_turn.then_some(turn.as_str()), "after"));
                }
            }
            Step::Legacy => out.push(legacy(&turn)),
            Step::Rollback(num_turns) => out.push(rollback(u32::from(*num_turns))),
            Step::Tokens(total) => out.push(tokens(i64::from(*total))),
            Step::Unknown => {
                out.push(RolloutItem::Unknown { kind: "future".into(), payload: None });
            }
            Step::Pins(count) => {
                let pins = (0..u64::from(*count))
                    .map(|i| {
                        Pin::note(PinId::from_number(n as u64 * 10 + i + 1), format!("{turn}.{i}"))
                    })
                    .collect();
                out.push(RolloutItem::Pins(PinsItem::new(pins)));
            }
        }
    }
    out
}

proptest! {
    #[test]
    fn fork_preserves_everything_but_the_generation(
        steps in proptest::collection::vec(step(), 0..14),
        drop in 0u32..3,
    ) {
        let parent = build(&steps);
        let forked = fork_rollout(&lines(parent.clone()), drop);
        let mut rolled_back = parent;
        rolled_back.push(rollback(drop));
        let expected = reconstruct_history_from_rollout(&lines(rolled_back), &rebuild);
        let actual = reconstruct_history_from_rollout(&lines(forked), &rebuild);
        prop_assert_eq!(actual.window_generation, 0);
        prop_assert_eq!(&actual.pins, &expected.pins);
        // A fork numbers its next pin after what it copied; the parent also counts the pins of
        // what it rolled back. Ids are never reused either way.
        prop_assert!(actual.next_pin_number <= expected.next_pin_number);
        let next_pin_number = actual.next_pin_number;
        prop_assert_eq!(
            actual,
            ReconstructedSession {
                window_generation: 0,
                session_meta: None,
                next_pin_number,
                ..expected
            }
        );
    }

    #[test]
    fn generation_counts_every_compacted_line(steps in proptest::collection::vec(step(), 0..14)) {
        let items = build(&steps);
        let compactions = items.iter().filter(|item| matches!(item, RolloutItem::Compacted(_))).count();
        let session = reconstruct_history_from_rollout(&lines(items), &rebuild);
        prop_assert_eq!(session.window_generation, compactions as u64);
    }
}

/// The JSONL of `items`, with the lines at `damaged` (0-based) cut short so that they are no
/// longer JSON, as bit rot or an interleaved writer would leave them.
fn damaged_file(items: &[RolloutItem], damaged: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    for (index, line) in lines(items.to_vec()).iter().enumerate() {
        let mut json = serde_json::to_vec(line).unwrap();
        if damaged.contains(&index) {
            json.truncate(json.len() - 3);
        }
        out.extend_from_slice(&json);
        out.push(b'\n');
    }
    out
}

/// The byte offset of the 0-based line `index` of `file`.
fn line_offset(file: &[u8], index: usize) -> usize {
    file.split_inclusive(|&b| b == b'\n').take(index).map(<[u8]>::len).sum()
}

/// Reconstructs `items` with the lines at `damaged` damaged, and checks that the result is the
/// reconstruction of the other lines, with the damaged ones counted. Returns the warnings.
#[track_caller]
fn check_damaged(items: Vec<RolloutItem>, damaged: &[usize], expected: &str) -> Vec<String> {
    let contents = crate::parse_rollout(&damaged_file(&items, damaged));
    let session =
        Replay::new(&rebuild, &ContextualMarkers::default()).reconstruct_contents(contents);
    let survivors: Vec<RolloutItem> = items
        .into_iter()
        .enumerate()
        .filter(|(index, _)| !damaged.contains(index))
        .map(|(_, item)| item)
        .collect();
    let without = reconstruct_history_from_rollout(&lines(survivors), &rebuild);
    assert_eq!(session.history, without.history);
    assert_eq!(session.reference_context_item, without.reference_context_item);
    assert_eq!(session.token_info, without.token_info);
    assert_eq!(session.skipped_lines, damaged.len());
    assert_eq!(render(&session), expected.trim_start());
    session.warnings
}

#[test]
fn a_damaged_middle_line_is_left_out_and_warned_about() {
    let items = concat(vec![user_turn("t1", "m", "one"), user_turn("t2", "m", "two")]);
    let items_copy = items.clone();
    // Line 5 (0-based 4) is the first turn's reply.
    let warnings = check_damaged(
        items,
        &[4],
        "
history:
00:message/user:one
01:message/user:two
02:message/assistant:re: two
reference: t2/m
previous: m
tokens: none
generation: 0
",
    );
    assert_eq!(warnings.len(), 1);
    let offset = line_offset(&damaged_file(&items_copy, &[]), 4);
    assert!(
        warnings[0]
            .starts_with(&format!("rollout line 5 (byte {offset}) is damaged and was skipped: ")),
        "{warnings:?}"
    );
}

#[test]
fn a_damaged_newest_compaction_falls_back_to_the_one_before() {
    let items = concat(vec![
        user_turn("t1", "m", "one"),
        compaction_turn("c1", &["one", "S1"]),
        user_turn("t2", "m", "two"),
        compaction_turn("c2", &["one", "two", "S2"]),
        user_turn("t3", "m", "three"),
    ]);
    // Line 18 (0-based 17) is the second `compacted` line.
    let warnings = check_damaged(
        items,
        &[17],
        "
history:
00:message/user:one
01:message/user:S1
02:message/user:two
03:message/assistant:re: two
04:message/user:three
05:message/assistant:re: three
reference: t3/m
previous: m
tokens: none
generation: 2
",
    );
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].starts_with("rollout line 18 (byte "), "{warnings:?}");
    assert!(
        warnings[0].ends_with(
            "; it held the newest compaction, which was lost: the session resumes from the \
             compaction before it"
        ),
        "{warnings:?}"
    );
}

#[test]
fn a_damaged_only_compaction_falls_back_to_the_history_before_it() {
    let items = concat(vec![user_turn("t1", "m", "one"), compaction_turn("c1", &["one", "S1"])]);
    let warnings = check_damaged(
        items,
        &[7],
        "
history:
00:message/user:one
01:message/assistant:re: one
reference: t1/m
previous: m
tokens: none
generation: 1
",
    );
    assert!(
        warnings[0].ends_with("the session resumes from the history before it"),
        "{warnings:?}"
    );
}

#[test]
fn a_damaged_older_compaction_changes_nothing_but_is_warned_about() {
    let items = concat(vec![
        user_turn("t1", "m", "one"),
        compaction_turn("c1", &["one", "S1"]),
        user_turn("t2", "m", "two"),
        compaction_turn("c2", &["one", "two", "S2"]),
    ]);
    let warnings = check_damaged(
        items,
        &[7],
        "
history:
00:message/user:one
01:message/user:two
02:message/user:S2
reference: none
previous: m
tokens: none
generation: 2
",
    );
    assert!(warnings[0].ends_with("; it held an older compaction"), "{warnings:?}");
}

#[test]
fn many_damaged_lines_are_all_counted_and_the_warnings_bounded() {
    let items: Vec<RolloutItem> = (0..40).map(|n| user(&format!("u{n}"))).collect();
    let damaged: Vec<usize> = (0..40).filter(|n| n % 2 == 1).collect();
    let contents = crate::parse_rollout(&damaged_file(&items, &damaged));
    let session =
        Replay::new(&rebuild, &ContextualMarkers::default()).reconstruct_contents(contents);
    assert_eq!(session.skipped_lines, 20);
    assert_eq!(session.history.len(), 20);
    assert_eq!(session.warnings.len(), 17);
    assert_eq!(session.warnings[16], "4 more damaged rollout lines were skipped");
}

#[test]
fn a_torn_tail_is_warned_about_but_not_counted() {
    let mut file = damaged_file(&[user("a"), user("b")], &[]);
    let offset = file.len();
    file.extend_from_slice(br#"{"timestamp":"t","ty"#);
    let session = Replay::new(&rebuild, &ContextualMarkers::default())
        .reconstruct_contents(crate::parse_rollout(&file));
    assert_eq!(session.skipped_lines, 0);
    assert_eq!(session.history.len(), 2);
    assert_eq!(
        session.warnings,
        vec![format!(
            "rollout ends with an unterminated line 3 (20 bytes at byte {offset}), ignored"
        )]
    );
}

// Pins.

fn note(number: u64, text: &str) -> Pin {
    Pin::note(PinId::from_number(number), text)
}

fn pins_line(pins: &[Pin]) -> RolloutItem {
    RolloutItem::Pins(PinsItem::new(pins.to_vec()))
}

/// A compaction whose history starts with the pin slot of `pins`, then `items`.
fn compacted_with_pins(pins: &[Pin], items: &[&str]) -> RolloutItem {
    let mut history = pin_slot_items(pins);
    history.extend(items.iter().map(|text| ResponseItem::user_text(*text)));
    let mut compacted = CompactedItem::new("", history);
    compacted.pins = Some(pins.to_vec());
    RolloutItem::Compacted(compacted)
}

#[test]
fn the_newest_pins_record_is_the_sessions_pins() {
    let first = [note(1, "a")];
    let both = [note(1, "a"), note(2, "b")];
    let items = concat(vec![
        user_turn("t1", "m", "one"),
        vec![pins_line(&first)],
        user_turn("t2", "m", "two"),
        vec![pins_line(&both)],
    ]);
    let session = reconstruct_history_from_rollout(&lines(items.clone()), &rebuild);
    assert_eq!(session.pins, both.to_vec());
    assert_eq!(session.pin_slot, 0);
    assert_eq!(session.next_pin_number, 3);

    // A compaction records the pins and lays out their slot.
    let mut compacted = items;
    compacted.extend(vec![
        started("c1"),
        compacted_with_pins(&both, &["two", "S"]),
        complete("c1"),
    ]);
    compacted.extend(user_turn("t3", "m", "three"));
    let session = reconstruct_history_from_rollout(&lines(compacted.clone()), &rebuild);
    assert_eq!(session.pins, both.to_vec());
    assert_eq!(session.pin_slot, 2);
    assert_eq!(
        format_history(&session.history),
        "00:message/developer:a\n01:message/developer:b\n02:message/user:two\n03:message/user:S\n04:message/user:three\n05:message/assistant:re: three\n"
    );

    // Unpinning after the compaction: the slot stays until the next compaction.
    compacted.push(pins_line(&first[..0]));
    let session = reconstruct_history_from_rollout(&lines(compacted), &rebuild);
    assert_eq!(session.pins, Vec::new());
    assert_eq!(session.pin_slot, 2);
    assert_eq!(session.next_pin_number, 3);
}

#[test]
fn rollback_of_the_turn_that_made_a_pin_removes_it_but_never_its_id() {
    let first = [note(1, "a")];
    let both = [note(1, "a"), note(2, "b")];
    let mut items = concat(vec![
        user_turn("t1", "m", "one"),
        vec![pins_line(&first)],
        vec![started("t2"), user_event("two"), user("two"), pins_line(&both), complete("t2")],
    ]);
    items.push(rollback(1));
    let session = reconstruct_history_from_rollout(&lines(items.clone()), &rebuild);
    assert_eq!(session.pins, first.to_vec());
    assert_eq!(session.next_pin_number, 3, "pin-2 is never given again");
    items.push(rollback(1));
    let session = reconstruct_history_from_rollout(&lines(items), &rebuild);
    assert_eq!(session.pins, Vec::new());
}

#[test]
fn a_slot_the_history_does_not_start_with_is_no_slot() {
    let pins = [note(1, "a")];
    let mut compacted = CompactedItem::new("", vec![ResponseItem::user_text("S")]);
    compacted.pins = Some(pins.to_vec());
    let items = vec![RolloutItem::Compacted(compacted)];
    let session = reconstruct_history_from_rollout(&lines(items), &rebuild);
    assert_eq!(session.pins, pins.to_vec());
    assert_eq!(session.pin_slot, 0);
}

#[test]
fn fork_copies_the_pins() {
    let both = [note(1, "a"), note(2, "b")];
    let items = concat(vec![
        user_turn("t1", "m", "one"),
        vec![pins_line(&both)],
        vec![started("c1"), compacted_with_pins(&both, &["one", "S"]), complete("c1")],
        user_turn("t2", "m", "two"),
    ]);
    let forked = fork_rollout(&lines(items), 0);
    let session = reconstruct_history_from_rollout(&lines(forked), &rebuild);
    assert_eq!(session.pins, both.to_vec());
    assert_eq!(session.pin_slot, 2);
    assert_eq!(session.next_pin_number, 3);
}

#[test]
fn compactions_are_listed_with_whether_a_rollback_undid_them() {
    let items = concat(vec![
        user_turn("t1", "m", "one"),
        compaction_turn("c1", &["one", "S1"]),
        vec![started("t2"), user_event("two"), user("two"), compacted(&["S2"]), complete("t2")],
        vec![rollback(1)],
    ]);
    let lines = lines(items);
    let markers = ContextualMarkers::default();
    let records = Replay::new(&rebuild, &markers).compactions(&lines);
    let summary: Vec<(bool, Option<usize>)> =
        records.iter().map(|record| (record.rolled_back, record.history_items)).collect();
    assert_eq!(summary, vec![(false, Some(2)), (true, Some(1))]);
    assert!(records.iter().all(|record| record.receipt.is_none() && record.pins.is_empty()));
}
