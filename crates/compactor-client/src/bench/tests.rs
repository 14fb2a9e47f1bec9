//! The bench entry points decode whole responses and report the error that ends a broken one.

use compactor_testkit::events::{
    ev_assistant_message, ev_completed, ev_output_text_delta, ev_response_created, sse,
    stamp_events,
};
use pretty_assertions::assert_eq;
use serde_json::Value;

use super::{sse_events, websocket_events};

fn response() -> Vec<Value> {
    stamp_events(vec![
        ev_response_created("resp_1"),
        ev_output_text_delta("msg_1", "hel"),
        ev_output_text_delta("msg_1", "lo"),
        ev_assistant_message("msg_1", "hello"),
        ev_completed("resp_1"),
    ])
}

#[test]
fn sse_bodies_decode_in_any_chunking() {
    let body = sse(&response()).into_bytes();
    for size in [1, 7, 16 * 1024] {
        let chunks: Vec<&[u8]> = body.chunks(size).collect();
        assert_eq!(sse_events(&chunks).unwrap(), 5, "chunks of {size}");
    }
    let cut = &body[..body.len() / 2];
    assert!(sse_events(&[cut]).unwrap_err().to_string().contains("response.completed"));
}

#[test]
fn websocket_frames_decode() {
    let frames: Vec<String> = response().iter().map(Value::to_string).collect();
    let frames: Vec<&[u8]> = frames.iter().map(String::as_bytes).collect();
    assert_eq!(websocket_events(&frames).unwrap(), 5);
    assert!(websocket_events(&frames[..3]).is_err());
}
