//! The WebSocket transport on `GET /responses` (D45): handshake faults, per-connection
//! scripts or the reference model, `previous_response_id` resolution and one event per text
//! frame.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use compactor_protocol::{ResponseItem, ResponsesApiRequest, WsClientMessage};
use http::{HeaderMap, Method, Uri};
use tokio_util::sync::CancellationToken;

use crate::events::ev_failed;
use crate::faults::{EarlyEnd, ErrorReply, FaultPlan, HandshakeFault, replaces_answer};
use crate::http::{error_response, insert_headers, log_request};
use crate::record::{Endpoint, Kept, KeptConnection, RecordedHandshake, RecordedWsMessage};
use crate::request_error::invalid_body;
use crate::script::{AfterSlots, WsConnectionScript, WsSlot};
use crate::server::{Answer, Prepared, Resolution, Shared};
use crate::split_read;
use crate::stream::{Frame, Step, completed_response, frames, pause, step};
use crate::traffic::Traffic;

/// How many completed response ids a connection remembers to check `response.processed` against.
const REMEMBERED_IDS: usize = 1024;
/// How long a closing connection waits for the client's Close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// `GET /responses` with an upgrade: applies handshake faults, takes the next connection script,
/// records the handshake, and upgrades.
#[tracing::instrument(skip_all, fields(path = %uri.path()))]
pub(crate) async fn upgrade(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            let context = format!("{method} {}", uri.path());
            let logged = (method.clone(), uri.clone(), headers.clone());
            let index = shared.update(|state| {
                state.record_request(Endpoint::Other, (method, uri, headers), &Bytes::new())
            });
            log_request(&shared, index, logged, &Bytes::new()).await;
            shared.violation(&context, format!("not a WebSocket upgrade: {rejection}"));
            return rejection.into_response();
        }
    };
    let (script, mut faults) = shared.update(|state| {
        let faults: Vec<HandshakeFault> = state.handshake_faults.pop_front().into_iter().collect();
        let refused = faults.iter().any(|fault| matches!(fault, HandshakeFault::Reject(_)));
        // A refused handshake leaves the connection scripts for the next one.
        let script = if refused { None } else { state.ws_scripts.pop_front() };
        (script, faults)
    });
    if let Some(script) = &script {
        faults.extend(script.handshake_faults.iter().cloned());
    }
    let mut delay = Duration::ZERO;
    let mut reject = None;
    for fault in faults {
        match fault {
            HandshakeFault::Delay(by) => delay += by,
            HandshakeFault::Reject(reply) => reject = Some(reply),
        }
    }
    if !pause(delay, &shared.cancel).await {
        reject = Some(ErrorReply::new(503, "server_shutting_down", "The test server is stopping."));
    }
    if reject.is_none() && script.is_none() && shared.model.is_none() {
        let index = shared.lock().handshakes.seen();
        let context = format!("websocket handshake #{index}");
        reject = Some(
            shared.violation_reply(&context, "no scripted WebSocket connection left".to_owned()),
        );
    }
    let logged = (uri.clone(), headers.clone());
    if let Some(reply) = reject {
        let status = reply.status;
        let index = shared.update(|state| {
            let index = state.handshakes.seen();
            state.handshakes.push(RecordedHandshake::new(index, uri, headers, status), 0);
            index
        });
        log_handshake(&shared, index, None, logged, status).await;
        return error_response(&reply);
    }

    let (index, connection) = shared.update(|state| {
        let index = state.handshakes.seen();
        let handshake = RecordedHandshake::new(index, uri, headers, 101);
        state.handshakes.push(handshake.clone(), 0);
        let connection = state.connections.seen();
        let limits = state.limits;
        let messages =
            Kept::new(limits.messages_per_connection, limits.message_bytes_per_connection);
        state.connections.push(KeptConnection { index: connection, handshake, messages }, 0);
        (index, connection)
    });
    log_handshake(&shared, index, Some(connection), logged, 101).await;
    let response_headers =
        script.as_ref().map(|script| script.response_headers.clone()).unwrap_or_default();
    let limit = shared.max_body_bytes;
    let task_shared = Arc::clone(&shared);
    let mut response = upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_failed_upgrade(|err| tracing::debug!(%err, "compactor-testkit: upgrade failed"))
        .on_upgrade(move |socket| serve_connection(task_shared, connection, script, socket));
    insert_headers(response.headers_mut(), &response_headers);
    response
}

/// What a connection does after a message.
enum Flow {
    /// Wait for the next client message.
    Continue,
    /// Send a Close frame and end.
    Close,
    /// End without a close handshake.
    Drop,
    /// The server is stopping.
    Cancelled,
}

/// One connection's state: its script and the responses it completed, both bounded.
struct Connection {
    index: usize,
    script: Option<WsConnectionScript>,
    next_slot: usize,
    /// Client messages seen, kept or not.
    messages: usize,
    /// The histories of the latest completed responses, for `previous_response_id`.
    responses: VecDeque<(String, Arc<Vec<ResponseItem>>)>,
    /// How many `responses` are kept.
    max_responses: usize,
    /// The ids of the latest completed responses, for `response.processed`.
    completed: VecDeque<String>,
}

impl Connection {
    fn resolve(&self, previous: &str) -> Option<Arc<Vec<ResponseItem>>> {
        self.responses.iter().find(|(id, _)| id == previous).map(|(_, items)| Arc::clone(items))
    }

    fn remember(&mut self, id: String, items: Vec<ResponseItem>) {
        if self.completed.len() == REMEMBERED_IDS {
            self.completed.pop_front();
        }
        self.completed.push_back(id.clone());
        if self.max_responses == 0 {
            return;
        }
        if self.responses.len() == self.max_responses {
            self.responses.pop_front();
        }
        self.responses.push_back((id, Arc::new(items)));
    }
}

/// Serves one upgraded connection until the client leaves, a fault ends it, or the server stops.
#[tracing::instrument(skip_all, fields(connection = index))]
async fn serve_connection(
    shared: Arc<Shared>,
    index: usize,
    script: Option<WsConnectionScript>,
    mut socket: WebSocket,
) {
    let _task = shared.tracker.token();
    let mut connection = Connection {
        index,
        script,
        next_slot: 0,
        messages: 0,
        responses: VecDeque::new(),
        max_responses: shared.responses_per_connection,
        completed: VecDeque::new(),
    };
    loop {
        let received = tokio::select! {
            () = shared.cancel.cancelled() => None,
            received = socket.recv() => Some(received),
        };
        let flow = match received {
            None => Flow::Cancelled,
            Some(None) => return,
            Some(Some(Err(err))) => {
                tracing::debug!(%err, connection = index, "compactor-testkit: websocket read failed");
                return;
            }
            Some(Some(Ok(Message::Text(text)))) => {
                on_message(&shared, &mut connection, text, &mut socket).await
            }
            Some(Some(Ok(Message::Binary(bytes)))) => {
                // The protocol is text: a binary frame gets a close with 1003 (D66).
                let at = record_message(&shared, &mut connection, &String::from_utf8_lossy(&bytes))
                    .await;
                let context = format!("websocket connection {index} message {at}");
                shared.violation(&context, "binary frame (the protocol uses text frames)".into());
                let reason = "binary frames are not supported; send JSON text frames";
                let wait = CloseWait::ForReply(&shared.cancel);
                return close(socket, close_code::UNSUPPORTED, reason, wait).await;
            }
            Some(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => Flow::Continue,
            Some(Some(Ok(Message::Close(_)))) => {
                // Reading on flushes tungstenite's Close reply and ends the stream.
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, drain(&mut socket)).await;
                return;
            }
        };
        match flow {
            Flow::Continue => {}
            Flow::Close => {
                let reason = "no more scripted requests";
                let wait = CloseWait::ForReply(&shared.cancel);
                return close(socket, close_code::NORMAL, reason, wait).await;
            }
            // A stopping server does not wait for the client's reply: shutdown stays fast even
            // when a test holds a socket it no longer reads.
            Flow::Cancelled => {
                return close(socket, close_code::AWAY, "server shutting down", CloseWait::No)
                    .await;
            }
            Flow::Drop => {
                tracing::debug!(connection = index, "compactor-testkit: dropping websocket");
                return;
            }
        }
    }
}

/// Appends handshake `index` to the traffic log, when there is one.
async fn log_handshake(
    shared: &Shared,
    index: usize,
    connection: Option<usize>,
    (uri, headers): (Uri, HeaderMap),
    status: u16,
) {
    shared.log_traffic(|| Traffic::Handshake { index, connection, uri, headers, status }).await;
}

/// Records a client message of `connection` (in memory when its record is still kept, and in
/// the traffic log when there is one) and returns its position on the connection.
async fn record_message(shared: &Shared, connection: &mut Connection, text: &str) -> usize {
    let at = connection.messages;
    connection.messages += 1;
    shared.update(|state| match state.connections.get_mut(connection.index) {
        Some(record) if record.messages.keeps() => {
            let len = text.len();
            record.messages.push(RecordedWsMessage::new(at, text.to_owned()), len);
        }
        Some(record) => record.messages.push_forgotten(),
        None => {}
    });
    let index = connection.index;
    shared
        .log_traffic(|| Traffic::Message { connection: index, index: at, text: text.to_owned() })
        .await;
    at
}

/// Whether a message gets a slot of the connection's script.
enum Slot {
    /// The next slot.
    Taken(WsSlot),
    /// The connection has no script (reference model).
    Unscripted,
    /// The slots are used up; the connection does what its script says.
    UsedUp(AfterSlots),
}

impl Connection {
    fn take_slot(&mut self) -> Slot {
        let Some(script) = &mut self.script else {
            return Slot::Unscripted;
        };
        match script.slots.get_mut(self.next_slot) {
            Some(slot) => {
                self.next_slot += 1;
                Slot::Taken(std::mem::take(slot))
            }
            None => Slot::UsedUp(script.after_slots),
        }
    }
}

/// A client message. A `response.create` that starts with its `type` (as clients write it) is
/// read straight into the request: the generic reading of a tagged message first buffers the
/// whole message, a cost that grows with the history it carries; a large input is read on two
/// threads (D168).
fn parse_client_message(text: &str) -> serde_json::Result<WsClientMessage<'static>> {
    const CREATE: &str = r#"{"type":"response.create","#;
    if text.starts_with(CREATE) {
        // `type` is not a field of the request, which ignores it.
        split_read::from_str::<ResponsesApiRequest<'static>>(text)
            .map(|request| WsClientMessage::ResponseCreate(Box::new(request)))
    } else {
        serde_json::from_str(text)
    }
}

/// The API's `error` event answering a client message that could not be read: a
/// `response.create` is checked as a request, anything else for its `type`.
fn invalid_message(text: &str) -> ErrorReply {
    let kind = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|value| value.get("type").and_then(serde_json::Value::as_str).map(str::to_owned));
    match kind.as_deref() {
        Some("response.create") => invalid_body::<ResponsesApiRequest<'static>>(text.as_bytes()),
        Some("response.processed") => invalid_body::<WsClientMessage<'static>>(text.as_bytes()),
        Some(other) => ErrorReply::invalid_request(
            "invalid_value",
            &format!(
                "Invalid value for 'type': '{other}'; expected 'response.create' or \
                 'response.processed'."
            ),
        )
        .with_param("type"),
        None => invalid_body::<WsClientMessage<'static>>(text.as_bytes()),
    }
}

/// Handles one client text message: records it, takes its slot, answers it.
async fn on_message(
    shared: &Arc<Shared>,
    connection: &mut Connection,
    text: Utf8Bytes,
    socket: &mut WebSocket,
) -> Flow {
    let at = record_message(shared, connection, text.as_str()).await;
    let context = format!("websocket connection {} message {at}", connection.index);

    let parsed = tokio::task::spawn_blocking(move || {
        parse_client_message(text.as_str())
            .map_err(|err| Box::new((err, invalid_message(text.as_str()))))
    })
    .await;
    let message = match parsed {
        Ok(Ok(message)) => message,
        Ok(Err(failure)) => {
            let (err, reply) = *failure;
            if let Slot::UsedUp(after) = connection.take_slot() {
                return after_slots(after);
            }
            let reply = shared.violation_with(
                &context,
                format!("not a response.create or response.processed message: {err}"),
                reply,
            );
            return send_reply(socket, &reply).await;
        }
        Err(err) => {
            tracing::error!(%err, "compactor-testkit: message task failed");
            return send_reply(socket, &ErrorReply::internal_error()).await;
        }
    };

    match message {
        WsClientMessage::ResponseProcessed { response_id } => {
            let slot = connection.take_slot();
            if !connection.completed.contains(&response_id) {
                shared.violation(
                    &context,
                    format!(
                        "response.processed names {response_id:?}, which did not complete on this connection"
                    ),
                );
            }
            match slot {
                Slot::Taken(slot) => {
                    let plan = FaultPlan::new(&slot.faults);
                    let frames = frames(slot.events, &plan);
                    send_frames(shared, socket, &frames, &plan).await
                }
                Slot::Unscripted => Flow::Continue,
                Slot::UsedUp(after) => after_slots(after),
            }
        }
        WsClientMessage::ResponseCreate(request) => {
            let mut faults = shared.update(|state| {
                state.model_requests += 1;
                state.ws_faults.pop_front().unwrap_or_default()
            });
            let answer = if replaces_answer(&faults) {
                // The queued faults answer by themselves and leave the slot for the retry.
                Answer::Faults
            } else {
                match connection.take_slot() {
                    Slot::Taken(slot) => {
                        faults.extend(slot.faults);
                        Answer::Script(slot.events)
                    }
                    Slot::Unscripted => Answer::Unscripted,
                    Slot::UsedUp(after) => return after_slots(after),
                }
            };
            let plan = FaultPlan::new(&faults);
            let base = match &request.previous_response_id {
                None => Resolution::NotRequested,
                Some(previous) => match connection.resolve(previous) {
                    Some(items) => Resolution::Resolved(items),
                    None => Resolution::Unresolved(previous.clone()),
                },
            };
            let prepared = {
                let shared = Arc::clone(shared);
                tokio::task::spawn_blocking(move || {
                    shared.prepare_response(&context, *request, base, answer)
                })
                .await
            };
            let (full_input, events) = match prepared {
                Ok(Prepared::Events { full_input, events }) => (full_input, events),
                Ok(Prepared::Reply(reply)) => return send_reply(socket, &reply).await,
                Ok(Prepared::Failed { reply, response_id }) => {
                    // Over a WebSocket the API fails the response instead of the request.
                    let failed = vec![ev_failed(&response_id, &reply.code, &reply.message)];
                    let frames = frames(failed, &plan);
                    return send_frames(shared, socket, &frames, &plan).await;
                }
                Err(err) => {
                    tracing::error!(%err, "compactor-testkit: request task failed");
                    return send_reply(socket, &ErrorReply::internal_error()).await;
                }
            };
            if !pause(plan.delay_before_response, &shared.cancel).await {
                return Flow::Cancelled;
            }
            if let Some(reply) = &plan.reject {
                return send_reply(socket, reply).await;
            }
            let frames = frames(events, &plan);
            let flow = send_frames(shared, socket, &frames, &plan).await;
            if let Flow::Continue = flow
                && let Some((id, output)) = completed_response(&frames)
            {
                // A compaction item in the output carries the context before it (the retention
                // rule of OpenAI's compaction guide): a chained request continues from it.
                let start =
                    output.iter().rposition(|item| matches!(item, ResponseItem::Compaction { .. }));
                let mut history = if start.is_some() { Vec::new() } else { full_input };
                history.extend(output.into_iter().skip(start.unwrap_or(0)));
                connection.remember(id, history);
            }
            flow
        }
    }
}

fn after_slots(after: AfterSlots) -> Flow {
    match after {
        AfterSlots::Close => Flow::Close,
        AfterSlots::KeepOpen => Flow::Continue,
    }
}

/// Sends a wrapped `error` frame; the connection stays open.
async fn send_reply(socket: &mut WebSocket, reply: &ErrorReply) -> Flow {
    match socket.send(Message::Text(reply.ws_frame().to_string().into())).await {
        Ok(()) => Flow::Continue,
        Err(_) => Flow::Drop,
    }
}

/// Sends `frames`, one per text frame, paced and cut per `plan`.
async fn send_frames(
    shared: &Shared,
    socket: &mut WebSocket,
    frames: &[Frame],
    plan: &FaultPlan,
) -> Flow {
    let mut sent = 0;
    loop {
        match step(plan, sent, frames.len() - sent) {
            Step::Done => return Flow::Continue,
            Step::End(delay, end) => {
                if !pause(delay, &shared.cancel).await {
                    return Flow::Cancelled;
                }
                return match end {
                    EarlyEnd::Close(_) => Flow::Close,
                    EarlyEnd::Drop(_) => Flow::Drop,
                };
            }
            Step::Send(delay) => {
                if !pause(delay, &shared.cancel).await {
                    return Flow::Cancelled;
                }
                let Some(frame) = frames.get(sent) else {
                    return Flow::Continue;
                };
                if socket.send(Message::Text(frame.text().into())).await.is_err() {
                    return Flow::Drop;
                }
                sent += 1;
            }
        }
    }
}

/// Whether closing waits for the client's Close frame.
enum CloseWait<'a> {
    /// Wait for it, completing the close handshake: at most [`CLOSE_TIMEOUT`], and not past the
    /// server's shutdown.
    ForReply(&'a CancellationToken),
    /// Send ours and go.
    No,
}

/// Sends a Close frame, then per `wait` waits (bounded) for the client's.
async fn close(mut socket: WebSocket, code: u16, reason: &'static str, wait: CloseWait<'_>) {
    let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
    if socket.send(Message::Close(Some(frame))).await.is_ok()
        && let CloseWait::ForReply(cancel) = wait
    {
        let drained = tokio::time::timeout(CLOSE_TIMEOUT, drain(&mut socket));
        let _ = cancel.run_until_cancelled(drained).await;
    }
}

async fn drain(socket: &mut WebSocket) {
    while let Some(Ok(_)) = socket.recv().await {}
}

#[cfg(test)]
mod tests;
