//! Tests of remote compaction v2: the trigger tail, collecting the output (D12) and
//! the retention shape.

use compactor_protocol::display::format_history;
use futures::executor::block_on;
use futures::stream;
use pretty_assertions::assert_eq;

use super::*;
use crate::test_support::{
    assistant, call, compaction, context_compaction, developer, message, output, reasoning, user,
};

fn done(item: ResponseItem) -> Result<ResponseEvent, CompactorError> {
    Ok(ResponseEvent::OutputItemDone { item })
}

fn completed(id: &str) -> Result<ResponseEvent, CompactorError> {
    Ok(ResponseEvent::Completed {
        response_id: id.into(),
        token_usage: Some(TokenUsage::with_total(42)),
        end_turn: None,
    })
}

fn collect(
    events: Vec<Result<ResponseEvent, CompactorError>>,
    form: V2TriggerForm,
) -> Result<CollectedCompaction, CompactorError> {
    block_on(collect_context_compaction_output(stream::iter(events), form))
}

#[test]
fn trigger_items_of_both_forms() {
    for (form, json) in [
        (V2TriggerForm::ContextCompaction, r#"{"type":"context_compaction"}"#),
        (V2TriggerForm::CompactionTrigger, r#"{"type":"compaction_trigger"}"#),
    ] {
        assert_eq!(serde_json::to_string(&v2_trigger_item(form)).unwrap(), json);
        let mut input = vec![user("u")];
        let options = V2PromptOptions { trigger_form: form, focus: None };
        assert_eq!(append_v2_trigger(&mut input, &options), 1);
        assert_eq!(input, [user("u"), v2_trigger_item(form)]);
    }
}

#[test]
fn focus_goes_in_a_developer_message_before_the_trigger() {
    let mut input = vec![user("u")];
    let options =
        V2PromptOptions { trigger_form: V2TriggerForm::default(), focus: Some(" the parser ") };
    assert_eq!(append_v2_trigger(&mut input, &options), 1);
    assert_eq!(
        format_history(&input),
        "00:message/user:u\n\
         01:message/developer:When you compact this conversation, give priority to preserving the following:\\nthe parser\n\
         02:context_compaction:trigger\n"
    );
    let mut input = vec![user("u")];
    let blank = V2PromptOptions { trigger_form: V2TriggerForm::default(), focus: Some("  ") };
    append_v2_trigger(&mut input, &blank);
    assert_eq!(input, [user("u"), ResponseItem::context_compaction_trigger()]);
}

#[test]
fn collecting_accepts_additional_output_items() {
    let events = vec![
        Ok(ResponseEvent::Created { response_id: Some("resp-compact".into()) }),
        done(assistant("thinking out loud")),
        done(reasoning(900)),
        Ok(ResponseEvent::OutputTextDelta { delta: "x".into() }),
        done(context_compaction("ENC")),
        completed("resp-compact"),
    ];
    let collected = collect(events, V2TriggerForm::ContextCompaction).unwrap();
    assert_eq!(
        collected,
        CollectedCompaction {
            item: context_compaction("ENC"),
            response_id: "resp-compact".into(),
            token_usage: Some(TokenUsage::with_total(42)),
        }
    );
}

#[test]
fn collecting_the_compaction_trigger_form_expects_a_compaction_item() {
    let events =
        vec![done(context_compaction("IGNORED")), done(compaction("ENC")), completed("r1")];
    let collected = collect(events, V2TriggerForm::CompactionTrigger).unwrap();
    assert_eq!(collected.item, compaction("ENC"));
    assert_eq!(collected.response_id, "r1");
}

/// Collects `events` and expects `error`, with its retryability.
#[track_caller]
fn check_error(
    events: Vec<Result<ResponseEvent, CompactorError>>,
    form: V2TriggerForm,
    expected: &CompactorError,
    retryable: bool,
) {
    let error = collect(events, form).unwrap_err();
    assert_eq!(&error, expected);
    assert_eq!(error.is_retryable(), retryable);
}

#[test]
fn a_payload_less_item_is_fatal_at_once() {
    check_error(
        vec![done(ResponseItem::context_compaction_trigger()), done(context_compaction("late"))],
        V2TriggerForm::ContextCompaction,
        &CompactorError::Fatal(
            "remote compaction v2 returned context_compaction without encrypted_content".into(),
        ),
        false,
    );
    check_error(
        vec![done(context_compaction("")), completed("r")],
        V2TriggerForm::ContextCompaction,
        &CompactorError::Fatal(
            "remote compaction v2 returned context_compaction without encrypted_content".into(),
        ),
        false,
    );
    check_error(
        vec![done(compaction("")), completed("r")],
        V2TriggerForm::CompactionTrigger,
        &CompactorError::Fatal(
            "remote compaction v2 returned compaction without encrypted_content".into(),
        ),
        false,
    );
}

#[test]
fn two_items_fail_with_the_counts() {
    check_error(
        vec![
            done(context_compaction("A")),
            done(assistant("extra")),
            done(context_compaction("B")),
            completed("r"),
        ],
        V2TriggerForm::ContextCompaction,
        &CompactorError::Fatal(
            "remote compaction v2 expected exactly one context_compaction output item, got 2 from 3 output items"
                .into(),
        ),
        false,
    );
}

#[test]
fn no_item_fails_with_the_counts() {
    check_error(
        vec![done(assistant("no compaction")), completed("r")],
        V2TriggerForm::ContextCompaction,
        &CompactorError::Fatal(
            "remote compaction v2 expected exactly one context_compaction output item, got 0 from 1 output items"
                .into(),
        ),
        false,
    );
    check_error(
        vec![done(context_compaction("wrong form")), completed("r")],
        V2TriggerForm::CompactionTrigger,
        &CompactorError::Fatal(
            "remote compaction v2 expected exactly one compaction output item, got 0 from 1 output items"
                .into(),
        ),
        false,
    );
}

#[test]
fn an_early_end_is_a_retryable_stream_error() {
    for events in [vec![], vec![done(context_compaction("ENC"))]] {
        check_error(
            events,
            V2TriggerForm::ContextCompaction,
            &CompactorError::stream("remote compaction v2 stream closed before response.completed"),
            true,
        );
    }
}

#[test]
fn stream_errors_are_returned_as_they_are() {
    check_error(
        vec![done(context_compaction("ENC")), Err(CompactorError::ContextWindowExceeded)],
        V2TriggerForm::ContextCompaction,
        &CompactorError::ContextWindowExceeded,
        false,
    );
}

#[test]
fn stream_error_types_convert() {
    #[derive(Debug)]
    struct TransportError;
    impl From<TransportError> for CompactorError {
        fn from(_: TransportError) -> Self {
            CompactorError::ConnectionFailed("reset".into())
        }
    }
    let events: Vec<Result<ResponseEvent, TransportError>> = vec![Err(TransportError)];
    let error = block_on(collect_context_compaction_output(
        stream::iter(events),
        V2TriggerForm::ContextCompaction,
    ))
    .unwrap_err();
    assert_eq!(error, CompactorError::ConnectionFailed("reset".into()));
}

#[test]
fn engine_errors_convert_with_their_messages() {
    let missing = Error::MissingPayload { item_type: "context_compaction" };
    assert_eq!(
        &CompactorError::from(missing.clone()).to_string(),
        "remote compaction v2 returned context_compaction without encrypted_content"
    );
    let early = CompactorError::from(Error::StreamClosedEarly);
    assert_eq!(
        early.to_string(),
        "stream error: remote compaction v2 stream closed before response.completed"
    );
}

#[test]
fn v2_history_matches_the_retention_shape() {
    let commentary = ResponseItem::Message {
        id: None,
        role: "assistant".into(),
        content: vec![compactor_protocol::ContentItem::OutputText { text: "commentary".into() }],
        phase: Some(compactor_protocol::MessagePhase::Commentary),
        extra: Default::default(),
    };
    let prompt_input = [
        developer("dev instructions"),
        message("system", "system text"),
        user("first"),
        commentary,
        assistant("final"),
        reasoning(900),
        call("c1", "shell"),
        output("c1", "ok"),
        context_compaction("OLD"),
        user("second"),
    ];
    assert_eq!(
        v2_request_messages(&prompt_input).into_iter().map(Cow::into_owned).collect::<Vec<_>>(),
        [
            developer("dev instructions"),
            message("system", "system text"),
            user("first"),
            user("second")
        ]
    );
}
