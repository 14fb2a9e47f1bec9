//! Tests of the error answers and of combining faults.

use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;

#[test]
fn error_types_follow_the_status() {
    #[track_caller]
    fn check(status: u16, expected: &str) {
        assert_eq!(ErrorReply::new(status, "c", "m").error_type, expected);
    }
    check(400, "invalid_request_error");
    check(404, "invalid_request_error");
    check(426, "invalid_request_error");
    check(429, "rate_limit_error");
    check(500, "server_error");
    check(503, "server_error");
}

#[test]
fn canned_replies() {
    let replies = [
        ErrorReply::rate_limited(Duration::from_millis(1500)),
        ErrorReply::internal_error(),
        ErrorReply::overloaded(),
        ErrorReply::upgrade_required(),
        ErrorReply::invalid_request("invalid_encrypted_content", "bad"),
    ];
    let rendered: Vec<String> = replies
        .iter()
        .map(|reply| {
            format!(
                "{} {:?}\nbody: {}\nframe: {}\n",
                reply.status,
                reply.headers,
                reply.body_json(),
                reply.ws_frame()
            )
        })
        .collect();
    insta::assert_snapshot!(rendered.join("\n"));
}

#[test]
fn overloaded_body_carries_the_code() {
    assert_eq!(
        ErrorReply::overloaded().body_json()["error"]["code"],
        json!("server_is_overloaded")
    );
}

#[test]
fn plan_combines_faults() {
    let plan = FaultPlan::new(&[
        Fault::DelayBetweenEvents(Duration::from_millis(10)),
        Fault::DelayBetweenEvents(Duration::from_millis(5)),
        Fault::MalformedEventAt(2),
        Fault::MalformedEventAt(0),
        Fault::CloseAfterEvents(3),
        Fault::DropAfterEvents(1),
        Fault::internal_error(),
        Fault::overloaded(),
        Fault::failed("a", "b"),
        Fault::incomplete("max_output_tokens"),
    ]);
    assert_eq!(
        plan,
        FaultPlan {
            reject: Some(ErrorReply::overloaded()),
            delay_before_response: Duration::ZERO,
            delay_before_first_event: Duration::ZERO,
            delay_between_events: Duration::from_millis(15),
            early_end: Some(EarlyEnd::Drop(1)),
            malformed_at: vec![2, 0],
            replace: Some(Fault::incomplete("max_output_tokens")),
        }
    );
    assert_eq!(FaultPlan::new(&[]), FaultPlan::default());
}
