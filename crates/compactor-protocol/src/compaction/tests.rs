//! Tests of the compaction vocabulary's names.

use pretty_assertions::assert_eq;

use super::*;

#[test]
fn implementation_names() {
    use CompactionImplementation::{
        Prune, Responses, ResponsesCompact, ResponsesCompactionV2, ServerManaged,
    };
    // (implementation, long name, short name, can be requested)
    let cases = [
        (ResponsesCompactionV2, "responses_compaction_v2", "v2", true),
        (ResponsesCompact, "responses_compact", "v1", true),
        (Responses, "responses", "local", true),
        (Prune, "prune", "prune", true),
        (ServerManaged, "server_managed", "server_managed", false),
    ];
    assert_eq!(cases.map(|case| case.0), CompactionImplementation::ALL);
    for (implementation, long, short, requestable) in cases {
        assert_eq!(implementation.name(), long);
        assert_eq!(implementation.short_name(), short);
        assert_eq!(implementation.can_be_requested(), requestable, "{long}");
        // The long name is the JSON form, the analytics label and the display form.
        assert_eq!(serde_json::to_value(implementation).unwrap(), serde_json::json!(long));
        assert_eq!(implementation.to_string(), long);
        assert_eq!(long.parse(), Ok(implementation));
        assert_eq!(short.parse(), Ok(implementation));
    }
}

#[test]
fn unknown_implementation_names_are_errors() {
    for name in ["", "fastest", "V2", "Responses", " v1", "responses_compaction", "server-managed"]
    {
        let err = name.parse::<CompactionImplementation>().unwrap_err();
        assert_eq!(err, UnknownImplementation { name: name.to_owned() });
        assert_eq!(
            err.to_string(),
            format!(
                "unknown compaction implementation {name:?} (expected one of \
                 responses_compaction_v2, responses_compact, responses, prune, server_managed)"
            )
        );
    }
}

#[test]
fn the_other_enums_display_their_json_names() {
    assert_eq!(CompactionTrigger::Auto.to_string(), "auto");
    assert_eq!(CompactionReason::ModelDownshift.to_string(), "model_downshift");
    assert_eq!(CompactionPhase::StandaloneTurn.to_string(), "standalone_turn");
    assert_eq!(CompactionStatus::Skipped.to_string(), "skipped");
    assert_eq!(V2TriggerForm::CompactionTrigger.to_string(), "compaction_trigger");
}
