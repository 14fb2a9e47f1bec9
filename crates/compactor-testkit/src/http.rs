//! The HTTP handlers: `POST /responses` (SSE), `POST /responses/compact` (JSON), and the
//! fallback for every other route.

use std::sync::Arc;

use axum::body::{Body, HttpBody as _};
use axum::extract::{FromRequest, Request, State};
use axum::response::Response;
use bytes::Bytes;
use compactor_protocol::{CompactRequest, ResponsesApiRequest, into_owned_items};
use futures::StreamExt as _;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use http_body_util::{BodyExt as _, Limited};
use serde_json::Value;

use crate::faults::{EarlyEnd, ErrorReply, Fault, FaultPlan, replaces_answer};
use crate::invariants::check_input;
use crate::record::Endpoint;
use crate::request_error::invalid_body;
use crate::server::{Answer, Prepared, Resolution, Shared};
use crate::split_read::{self, SplitInput};
use crate::stream::{MALFORMED_JSON, drop_connection, frames, pause, sse_body};
use crate::traffic::Traffic;

/// `POST /responses`: records the request, then answers with the next script or the model,
/// under the request's faults.
#[tracing::instrument(skip_all, fields(path = %uri.path()))]
pub(crate) async fn responses(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Payload(body): Payload,
) -> Response {
    let context = format!("{method} {} request", uri.path());
    let logged = (method.clone(), uri.clone(), headers.clone());
    let (index, script, mut faults) = shared.update(|state| {
        let index = state.record_request(Endpoint::Responses, (method, uri, headers), &body);
        let faults = state.http_faults.pop_front().unwrap_or_default();
        let script = if replaces_answer(&faults) { None } else { state.http_scripts.pop_front() };
        (index, script, faults)
    });
    log_request(&shared, index, logged, &body).await;
    let context = format!("{context} #{index}");
    let (answer, extra_headers) = match script {
        Some(script) => {
            faults.extend(script.faults);
            (Answer::Script(script.events), script.headers)
        }
        // The queued faults answer by themselves; neither a script nor the model is asked.
        None if replaces_answer(&faults) => (Answer::Faults, Vec::new()),
        None => (Answer::Unscripted, Vec::new()),
    };
    let plan = FaultPlan::new(&faults);

    let prepared = {
        let shared = Arc::clone(&shared);
        let context = context.clone();
        tokio::task::spawn_blocking(move || {
            let request: ResponsesApiRequest<'static> = match read_body(&body) {
                Ok(request) => request,
                Err(err) => {
                    let reply = invalid_body::<ResponsesApiRequest<'static>>(&body);
                    let message = format!("the body is not a Responses request: {err}");
                    return Prepared::Reply(shared.violation_with(&context, message, reply));
                }
            };
            let base = match &request.previous_response_id {
                Some(previous) => Resolution::Unresolved(previous.clone()),
                None => Resolution::NotRequested,
            };
            shared.prepare_response(&context, request, base, answer)
        })
        .await
    };
    let events = match prepared {
        Ok(Prepared::Events { events, full_input }) => {
            // HTTP keeps no history: the input is freed off the way to the answer (freeing a
            // large history takes milliseconds).
            tokio::task::spawn_blocking(move || drop(full_input));
            events
        }
        Ok(Prepared::Reply(reply) | Prepared::Failed { reply, .. }) => {
            return error_response(&reply);
        }
        Err(err) => {
            tracing::error!(%err, "compactor-testkit: request task failed");
            return error_response(&ErrorReply::internal_error());
        }
    };
    if !pause(plan.delay_before_response, &shared.cancel).await {
        return error_response(&shutting_down());
    }
    if let Some(reply) = &plan.reject {
        return error_response(reply);
    }
    let frames = frames(events, &plan);
    let mut response =
        Response::new(Body::from_stream(sse_body(frames, plan, shared.cancel.clone())));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    insert_headers(headers, &extra_headers);
    response
}

/// `POST /responses/compact`: records the request, then answers with the next script or the
/// model's compaction, under the request's faults.
#[tracing::instrument(skip_all, fields(path = %uri.path()))]
pub(crate) async fn compact(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Payload(body): Payload,
) -> Response {
    let context = format!("{method} {} request", uri.path());
    let logged = (method.clone(), uri.clone(), headers.clone());
    let (index, script, mut faults) = shared.update(|state| {
        let index = state.record_request(Endpoint::Compact, (method, uri, headers), &body);
        let faults = state.compact_faults.pop_front().unwrap_or_default();
        let script =
            if replaces_answer(&faults) { None } else { state.compact_scripts.pop_front() };
        (index, script, faults)
    });
    log_request(&shared, index, logged, &body).await;
    let context = format!("{context} #{index}");
    let scripted = match script {
        Some(script) => {
            faults.extend(script.faults);
            Some((script.status, script.body))
        }
        None if replaces_answer(&faults) => Some((200, Value::Null)),
        None => None,
    };
    let plan = FaultPlan::new(&faults);

    let prepared = {
        let shared = Arc::clone(&shared);
        let context = context.clone();
        tokio::task::spawn_blocking(move || -> Result<(u16, Value), ErrorReply> {
            let mut request: CompactRequest<'static> = read_body(&body).map_err(|err| {
                let reply = invalid_body::<CompactRequest<'static>>(&body);
                let message = format!("the body is not a compact request: {err}");
                shared.violation_with(&context, message, reply)
            })?;
            let input = into_owned_items(std::mem::take(&mut request.input));
            let problems = check_input(&input);
            if !problems.is_empty() {
                return Err(shared.violation_reply(&context, problems.join("; ")));
            }
            if let Some(reply) = shared.check_input_tokens(&context, &request.instructions, &input)
            {
                return Err(reply);
            }
            match (scripted, &shared.model) {
                (Some(answer), _) => Ok(answer),
                (None, Some(model)) => model.compact(&request, &input).map(|body| (200, body)),
                (None, None) => Err(shared
                    .violation_reply(&context, "no scripted compact response left".to_owned())),
            }
        })
        .await
    };
    let (status, body) = match prepared {
        Ok(Ok(answer)) => answer,
        Ok(Err(reply)) => return error_response(&reply),
        Err(err) => {
            tracing::error!(%err, "compactor-testkit: request task failed");
            return error_response(&ErrorReply::internal_error());
        }
    };
    let delay = plan.delay_before_response + plan.delay_before_first_event;
    if !pause(delay, &shared.cancel).await {
        return error_response(&shutting_down());
    }
    if let Some(reply) = &plan.reject {
        return error_response(reply);
    }
    match &plan.replace {
        Some(Fault::Failed { code, message }) => {
            return error_response(&ErrorReply::new(500, code, message));
        }
        Some(Fault::Incomplete { reason }) => {
            return error_response(&ErrorReply::new(500, "incomplete", reason));
        }
        Some(_) | None => {}
    }
    let bytes = if plan.malformed_at.is_empty() {
        Bytes::from(body.to_string())
    } else {
        Bytes::from_static(MALFORMED_JSON.as_bytes())
    };
    let body = match plan.early_end {
        None => Body::from(bytes),
        Some(end) => {
            // Half of the body, then a clean end or a broken connection.
            let half = futures::stream::once(async move { Ok(bytes.slice(..bytes.len() / 2)) });
            match end {
                EarlyEnd::Close(_) => Body::from_stream(half),
                EarlyEnd::Drop(_) => {
                    let broken = futures::stream::once(async { Err(drop_connection().await) });
                    Body::from_stream(half.chain(broken))
                }
            }
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Every other route: recorded, reported as a violation, answered 404.
#[tracing::instrument(skip_all, fields(path = %uri.path()))]
pub(crate) async fn not_found(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Payload(body): Payload,
) -> Response {
    let context = format!("{method} {}", uri.path());
    let logged = (method.clone(), uri.clone(), headers.clone());
    let index =
        shared.update(|state| state.record_request(Endpoint::Other, (method, uri, headers), &body));
    log_request(&shared, index, logged, &body).await;
    let mut reply = shared.violation_reply(&context, "no such route on this server".to_owned());
    reply.status = 404;
    reply.code = "not_found".to_owned();
    error_response(&reply)
}

/// Appends request `index` to the traffic log, when there is one.
pub(crate) async fn log_request(
    shared: &Shared,
    index: usize,
    (method, uri, headers): (Method, Uri, HeaderMap),
    body: &Bytes,
) {
    shared
        .log_traffic(|| Traffic::Request { index, method, uri, headers, body: body.clone() })
        .await;
}

/// A request body read as JSON: its text is checked as UTF-8 once, in one pass, and then read
/// as a string, which reads faster than bytes checked string by string, and a large input on
/// two threads (D168); a body that is not UTF-8 is read as bytes, for the error to name where it
/// fails.
fn read_body<T: SplitInput>(body: &[u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(body) {
        Ok(text) => split_read::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
}

/// The HTTP answer of an error: status, `{"error":{...}}` and the reply's headers.
pub(crate) fn error_response(reply: &ErrorReply) -> Response {
    let mut response = Response::new(Body::from(reply.body_json().to_string()));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    insert_headers(headers, &reply.headers);
    response
}

/// Adds headers; a name or value that is not valid HTTP is skipped with a warning.
pub(crate) fn insert_headers(headers: &mut HeaderMap, extra: &[(String, String)]) {
    for (name, value) in extra {
        match (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            (Err(_), _) | (_, Err(_)) => {
                tracing::warn!(name, "compactor-testkit: skipping an invalid scripted header");
            }
        }
    }
}

/// A request body, read in full unless the server stops first (so a client that uploads slowly
/// cannot hold up a shutdown), at most [`crate::TestServerConfig::max_body_bytes`] long, and
/// within [`crate::TestServerConfig::body_read_timeout`]: a client that sends it slower gets a
/// 408 and loses the connection (D66 in docs/decisions.md).
pub(crate) struct Payload(pub(crate) Bytes);

impl FromRequest<Arc<Shared>> for Payload {
    type Rejection = Response;

    async fn from_request(request: Request, shared: &Arc<Shared>) -> Result<Self, Response> {
        let read = read_to_end(request.into_body(), shared.max_body_bytes);
        let read = tokio::time::timeout(shared.body_read_timeout, read);
        match shared.cancel.run_until_cancelled(read).await {
            Some(Ok(Ok(bytes))) => Ok(Payload(bytes)),
            Some(Ok(Err(err))) => Err(error_response(&ErrorReply::new(
                413,
                "request_body_unreadable",
                &format!(
                    "The request body could not be read (limit {} bytes): {err}",
                    shared.max_body_bytes
                ),
            ))),
            Some(Err(_elapsed)) => {
                let mut response = error_response(&ErrorReply::new(
                    408,
                    "request_timeout",
                    &format!(
                        "The request body did not arrive within {:?}.",
                        shared.body_read_timeout
                    ),
                ));
                // The rest of the body is never read: the connection goes with this answer.
                response
                    .headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
                Err(response)
            }
            None => Err(error_response(&shutting_down())),
        }
    }
}

/// The body's bytes, failing as `axum::body::to_bytes` does past `limit` bytes. They are copied
/// into one buffer as they arrive, sized from the declared length: a chunk is dropped as soon as
/// it is copied, so hyper reads the next one into the buffer it already has instead of a fresh
/// one, and the bytes are copied once, not gathered at the end.
async fn read_to_end(body: Body, limit: usize) -> Result<Bytes, axum::Error> {
    let mut body = Limited::new(body, limit);
    let declared = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX);
    let mut bytes = Vec::with_capacity(declared.min(limit));
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(axum::Error::new)?.into_data() {
            bytes.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(bytes))
}

/// The answer when the server stops during a delay.
fn shutting_down() -> ErrorReply {
    ErrorReply::new(503, "server_shutting_down", "The test server is shutting down.")
}
