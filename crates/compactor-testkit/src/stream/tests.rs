//! Tests of fault application to frames and of the pacing steps.

use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;
use crate::events::{ev_assistant_message, ev_completed, ev_function_call};

fn batch() -> Vec<Value> {
    vec![ev_response_created("resp_7"), ev_assistant_message("msg_1", "hi"), ev_completed("resp_7")]
}

fn kinds(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .map(|frame| match frame {
            Frame::Event(event) => event["type"].as_str().unwrap_or("?").to_owned(),
            Frame::Malformed => "MALFORMED".to_owned(),
        })
        .collect()
}

#[test]
fn faults_reshape_frames() {
    #[track_caller]
    fn check(faults: &[Fault], expected: &[&str]) {
        assert_eq!(kinds(&frames(batch(), &FaultPlan::new(faults))), expected);
    }
    check(&[], &["response.created", "response.output_item.done", "response.completed"]);
    check(
        &[Fault::MalformedEventAt(1), Fault::MalformedEventAt(99), Fault::MalformedEventAt(0)],
        &[
            "MALFORMED",
            "response.created",
            "MALFORMED",
            "response.output_item.done",
            "response.completed",
            "MALFORMED",
        ],
    );
    check(
        &[Fault::failed("context_length_exceeded", "too long")],
        &["response.created", "response.failed"],
    );
    check(&[Fault::incomplete("max_output_tokens")], &["response.created", "response.incomplete"]);
}

#[test]
fn failed_keeps_the_response_id() {
    let frames = frames(batch(), &FaultPlan::new(&[Fault::failed("server_error", "boom")]));
    let Frame::Event(failed) = &frames[1] else { panic!() };
    assert_eq!(failed["response"]["id"], json!("resp_7"));
    assert_eq!(failed["response"]["error"], json!({"code": "server_error", "message": "boom"}));
    assert_eq!(failed["sequence_number"], json!(1));
}

#[test]
fn malformed_frames_do_not_parse() {
    assert!(serde_json::from_str::<Value>(&Frame::Malformed.text()).is_err());
    assert!(Frame::Malformed.sse().starts_with("event: response.output_text.delta\ndata: {"));
    assert!(Frame::Malformed.sse().ends_with("\n\n"));
}

#[test]
fn completed_response_collects_outputs() {
    let mut events = batch();
    events.insert(2, ev_function_call("c1", "shell", "{}"));
    let frames = frames(events, &FaultPlan::default());
    let (id, items) = completed_response(&frames).unwrap();
    assert_eq!(id, "resp_7");
    let kinds: Vec<&str> = items.iter().map(ResponseItem::item_type).collect();
    assert_eq!(kinds, ["message", "function_call"]);
    assert_eq!(completed_response(&frames[..2]), None);
}

#[test]
fn pacing_steps() {
    let ms = Duration::from_millis;
    let plan = FaultPlan {
        delay_before_first_event: ms(5),
        delay_between_events: ms(2),
        early_end: Some(EarlyEnd::Close(2)),
        ..FaultPlan::default()
    };
    let render = |step: Step| match step {
        Step::Send(delay) => format!("send after {delay:?}"),
        Step::End(delay, end) => format!("end {end:?} after {delay:?}"),
        Step::Done => "done".to_owned(),
    };
    assert_eq!(render(step(&plan, 0, 3)), "send after 5ms");
    assert_eq!(render(step(&plan, 1, 2)), "send after 2ms");
    assert_eq!(render(step(&plan, 2, 1)), "end Close(2) after 2ms");
    // An early end past the last event still ends the stream its way.
    let late = FaultPlan { early_end: Some(EarlyEnd::Drop(10)), ..FaultPlan::default() };
    assert_eq!(render(step(&late, 3, 0)), "end Drop(10) after 0ns");
    assert_eq!(render(step(&FaultPlan::default(), 3, 0)), "done");
}
