//! One response's frames after faults, and the SSE body that paces them; shared by both
//! transports.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use compactor_protocol::ResponseItem;
use futures::Stream;
use serde::Deserialize as _;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::events::{ev_failed, ev_incomplete, ev_response_created, sse_event, stamp_events};
use crate::faults::{EarlyEnd, Fault, FaultPlan};

/// The text of a malformed event: JSON cut off mid-string.
pub(crate) const MALFORMED_JSON: &str =
    r#"{"type":"response.output_text.delta","delta":"unterminat"#;

/// One frame of a response: an SSE event or a WebSocket text frame.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Frame {
    /// A stamped event.
    Event(Value),
    /// Malformed JSON (a fault).
    Malformed,
}

impl Frame {
    /// The SSE encoding.
    pub(crate) fn sse(&self) -> String {
        match self {
            Frame::Event(event) => sse_event(event),
            Frame::Malformed => {
                format!("event: response.output_text.delta\ndata: {MALFORMED_JSON}\n\n")
            }
        }
    }

    /// The WebSocket text.
    pub(crate) fn text(&self) -> String {
        match self {
            Frame::Event(event) => event.to_string(),
            Frame::Malformed => MALFORMED_JSON.to_owned(),
        }
    }
}

/// The frames of one response: the events, replaced by `created` + `failed`/`incomplete` when
/// the plan says so, stamped, with malformed frames inserted.
pub(crate) fn frames(events: Vec<Value>, plan: &FaultPlan) -> Vec<Frame> {
    let events = match &plan.replace {
        Some(Fault::Failed { code, message }) => {
            let id = response_id(&events).unwrap_or_else(|| "resp_failed".to_owned());
            vec![ev_response_created(&id), ev_failed(&id, code, message)]
        }
        Some(Fault::Incomplete { reason }) => {
            let id = response_id(&events).unwrap_or_else(|| "resp_incomplete".to_owned());
            vec![ev_response_created(&id), ev_incomplete(&id, reason)]
        }
        Some(_) | None => events,
    };
    let mut frames: Vec<Frame> = stamp_events(events).into_iter().map(Frame::Event).collect();
    let mut positions = plan.malformed_at.clone();
    positions.sort_unstable();
    for at in positions.into_iter().rev() {
        frames.insert(at.min(frames.len()), Frame::Malformed);
    }
    frames
}

/// The id of the first response object among `events`.
fn response_id(events: &[Value]) -> Option<String> {
    events.iter().find_map(|event| event.get("response")?.get("id")?.as_str().map(str::to_owned))
}

/// The id of the `response.completed` among `frames` and the items of their
/// `response.output_item.done` events; `None` without a completion.
pub(crate) fn completed_response(frames: &[Frame]) -> Option<(String, Vec<ResponseItem>)> {
    let mut items = Vec::new();
    let mut completed = None;
    for frame in frames {
        let Frame::Event(event) = frame else { continue };
        match event.get("type").and_then(Value::as_str) {
            Some("response.output_item.done") => {
                if let Some(item) = event.get("item")
                    && let Ok(item) = ResponseItem::deserialize(item)
                {
                    items.push(item);
                }
            }
            Some("response.completed") => {
                completed = event
                    .get("response")
                    .and_then(|response| response.get("id"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
            _ => {}
        }
    }
    completed.map(|id| (id, items))
}

/// Sleeps for `delay` unless cancelled first; `false` when cancelled.
pub(crate) async fn pause(delay: Duration, cancel: &CancellationToken) -> bool {
    if delay.is_zero() {
        return !cancel.is_cancelled();
    }
    tokio::select! {
        () = cancel.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}

/// What a writer does before frame `sent` (with `remaining` frames left).
pub(crate) enum Step {
    /// Wait this long, then send the next frame.
    Send(Duration),
    /// Wait this long, then end the stream early.
    End(Duration, EarlyEnd),
    /// The stream is complete.
    Done,
}

/// The pacing of frame number `sent` under `plan`.
pub(crate) fn step(plan: &FaultPlan, sent: usize, remaining: usize) -> Step {
    let delay = if sent == 0 { plan.delay_before_first_event } else { plan.delay_between_events };
    match plan.early_end {
        Some(end) if sent >= end.after() || remaining == 0 => Step::End(delay, end),
        Some(_) | None if remaining == 0 => Step::Done,
        Some(_) | None => Step::Send(delay),
    }
}

/// The body error that makes hyper drop the connection, returned after a short pause so that the
/// frames already written are flushed to the client first (hyper flushes when the body is
/// pending; an error straight after a frame would discard it).
pub(crate) async fn drop_connection() -> io::Error {
    tokio::time::sleep(DROP_FLUSH_PAUSE).await;
    io::Error::other("connection dropped by an injected fault")
}

/// How long a dropped body waits so its last frames reach the client.
const DROP_FLUSH_PAUSE: Duration = Duration::from_millis(20);

/// The SSE body of `frames`, paced and cut per `plan`; it ends when `cancel` fires.
pub(crate) fn sse_body(
    frames: Vec<Frame>,
    plan: FaultPlan,
    cancel: CancellationToken,
) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
    struct State {
        frames: std::vec::IntoIter<Frame>,
        sent: usize,
        plan: FaultPlan,
        cancel: CancellationToken,
        finished: bool,
    }
    let state = State { frames: frames.into_iter(), sent: 0, plan, cancel, finished: false };
    futures::stream::unfold(state, |mut state| async move {
        if state.finished {
            return None;
        }
        match step(&state.plan, state.sent, state.frames.len()) {
            Step::Done => None,
            Step::End(delay, end) => {
                state.finished = true;
                if !pause(delay, &state.cancel).await {
                    return None;
                }
                match end {
                    EarlyEnd::Close(_) => None,
                    EarlyEnd::Drop(_) => Some((Err(drop_connection().await), state)),
                }
            }
            Step::Send(delay) => {
                if !pause(delay, &state.cancel).await {
                    return None;
                }
                let frame = state.frames.next()?;
                state.sent += 1;
                Some((Ok(Bytes::from(frame.sse())), state))
            }
        }
    })
}

#[cfg(test)]
mod tests;
