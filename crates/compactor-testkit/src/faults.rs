//! Fault injection: error answers, delays, broken streams and failed responses.
//!
//! A fault applies to one request (HTTP) or one `response.create` (WebSocket). Faults come from the
//! server's fault queues (consumed by the next request of their kind, in both modes) or from a
//! scripted entry; all faults that apply to one request are combined. Queued faults that replace
//! the whole answer ([`Fault::Reject`], [`Fault::Failed`], [`Fault::Incomplete`],
//! [`HandshakeFault::Reject`]) leave the scripts alone, so the retry that follows gets the next
//! scripted answer.

use std::time::Duration;

use serde_json::{Map, Value, json};

/// An error answer: an HTTP status with `{"error":{...}}` over HTTP, or a wrapped `error` frame
/// `{"type":"error","status":S,"error":{...},"headers":{...}}` over WebSocket (D45).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    /// The HTTP status (or the frame's `status`).
    pub status: u16,
    /// `error.type`, e.g. `invalid_request_error`.
    pub error_type: String,
    /// `error.code`, e.g. `server_is_overloaded`.
    pub code: String,
    /// `error.message`.
    pub message: String,
    /// `error.param`: the request parameter at fault (`input[2].content`), when there is one.
    /// (Boxed to keep every `Result` carrying a reply small.)
    pub param: Option<Box<str>>,
    /// Extra response headers (or the frame's `headers`), e.g. `retry-after`.
    pub headers: Vec<(String, String)>,
}

impl ErrorReply {
    /// An error with a type derived from the status: `invalid_request_error` for 4xx (but
    /// `rate_limit_error` for 429), `server_error` otherwise.
    pub fn new(status: u16, code: &str, message: &str) -> Self {
        let error_type = match status {
            429 => "rate_limit_error",
            400..=499 => "invalid_request_error",
            _ => "server_error",
        };
        Self {
            status,
            error_type: error_type.to_owned(),
            code: code.to_owned(),
            message: message.to_owned(),
            param: None,
            headers: Vec::new(),
        }
    }

    /// The same error naming the request parameter at fault.
    #[must_use]
    pub fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.into());
        self
    }

    /// A 400 `context_length_exceeded`: the input estimate is over the model's window, as the
    /// API answers it.
    pub fn context_length_exceeded(input_tokens: u64, window: u64) -> Self {
        let message = format!(
            "Your input exceeds the context window of this model ({input_tokens} tokens over a \
             window of {window}). Please adjust your input and try again."
        );
        Self::invalid_request("context_length_exceeded", &message).with_param("input")
    }

    /// A 400 `invalid_request_error` with `code`.
    pub fn invalid_request(code: &str, message: &str) -> Self {
        Self::new(400, code, message)
    }

    /// A 429 `rate_limit_exceeded` with `retry-after` (whole seconds, rounded up) and
    /// `retry-after-ms` headers, and a `try again in Ns` message.
    pub fn rate_limited(retry_after: Duration) -> Self {
        let millis = retry_after.as_millis();
        let seconds = millis.div_ceil(1000);
        let message = format!(
            "Rate limit reached for requests. Please try again in {:.3}s.",
            retry_after.as_secs_f64()
        );
        Self::new(429, "rate_limit_exceeded", &message)
            .with_header("retry-after", &seconds.to_string())
            .with_header("retry-after-ms", &millis.to_string())
    }

    /// A 500 `server_error`.
    pub fn internal_error() -> Self {
        Self::new(500, "server_error", "The server had an error while processing your request.")
    }

    /// A 503 `server_is_overloaded`.
    pub fn overloaded() -> Self {
        Self::new(503, "server_is_overloaded", "The server is overloaded. Please try again later.")
    }

    /// A 426 Upgrade Required (the WebSocket handshake is refused; the client should use HTTP).
    pub fn upgrade_required() -> Self {
        Self::new(426, "upgrade_required", "WebSocket transport is not available; use HTTP.")
    }

    /// Adds a header (HTTP) or a `headers` entry (WebSocket frame).
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The `error` object.
    pub fn error_json(&self) -> Value {
        json!({
            "type": self.error_type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
        })
    }

    /// The HTTP body: `{"error":{...}}`.
    pub fn body_json(&self) -> Value {
        json!({ "error": self.error_json() })
    }

    /// The wrapped WebSocket frame.
    pub fn ws_frame(&self) -> Value {
        let mut frame =
            json!({ "type": "error", "status": self.status, "error": self.error_json() });
        if !self.headers.is_empty()
            && let Some(map) = frame.as_object_mut()
        {
            let headers: Map<String, Value> = self
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), Value::from(value.as_str())))
                .collect();
            map.insert("headers".to_owned(), Value::Object(headers));
        }
        frame
    }
}

/// One fault of one request or WebSocket `response.create`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with an error instead of a stream: HTTP status and JSON body, or over WebSocket a
    /// wrapped `error` frame (the connection stays open).
    Reject(ErrorReply),
    /// Wait before answering at all (HTTP: before the status line; WebSocket: before the first
    /// frame).
    DelayBeforeResponse(Duration),
    /// Send the response head at once, then wait before the first event (an idle stream).
    DelayBeforeFirstEvent(Duration),
    /// Wait between consecutive events.
    DelayBetweenEvents(Duration),
    /// End the stream cleanly after this many events: HTTP ends the body (terminating chunk);
    /// WebSocket sends a Close frame and ends the connection.
    CloseAfterEvents(usize),
    /// Break the connection after this many events: HTTP aborts the body without its
    /// terminating chunk; WebSocket drops the TCP connection without a close handshake.
    DropAfterEvents(usize),
    /// Insert a frame of malformed JSON before the event at this position (at the end if it is
    /// past the last event). On `/responses/compact` the whole body is malformed.
    MalformedEventAt(usize),
    /// Answer with `response.created` and `response.failed` carrying this error code and message.
    Failed {
        /// `response.error.code`, e.g. `context_length_exceeded`.
        code: String,
        /// `response.error.message`.
        message: String,
    },
    /// Answer with `response.created` and `response.incomplete` with this reason.
    Incomplete {
        /// `incomplete_details.reason`, e.g. `max_output_tokens`.
        reason: String,
    },
}

impl Fault {
    /// [`Fault::Reject`] with [`ErrorReply::rate_limited`].
    pub fn rate_limited(retry_after: Duration) -> Self {
        Fault::Reject(ErrorReply::rate_limited(retry_after))
    }

    /// [`Fault::Reject`] with [`ErrorReply::internal_error`].
    pub fn internal_error() -> Self {
        Fault::Reject(ErrorReply::internal_error())
    }

    /// [`Fault::Reject`] with [`ErrorReply::overloaded`].
    pub fn overloaded() -> Self {
        Fault::Reject(ErrorReply::overloaded())
    }

    /// [`Fault::Reject`] with any status and code; over WebSocket, the wrapped `error` frame.
    pub fn error(status: u16, code: &str, message: &str) -> Self {
        Fault::Reject(ErrorReply::new(status, code, message))
    }

    /// [`Fault::Failed`].
    pub fn failed(code: &str, message: &str) -> Self {
        Fault::Failed { code: code.to_owned(), message: message.to_owned() }
    }

    /// [`Fault::Incomplete`].
    pub fn incomplete(reason: &str) -> Self {
        Fault::Incomplete { reason: reason.to_owned() }
    }
}

/// A fault of a WebSocket handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeFault {
    /// Refuse the upgrade with this HTTP answer (e.g. [`ErrorReply::upgrade_required`]).
    Reject(ErrorReply),
    /// Wait before answering the handshake.
    Delay(Duration),
}

/// Whether `faults` replace the whole answer (an error or a failed response), so that a
/// scripted entry is not used up by the request they apply to.
pub(crate) fn replaces_answer(faults: &[Fault]) -> bool {
    faults.iter().any(|fault| match fault {
        Fault::Reject(_) | Fault::Failed { .. } | Fault::Incomplete { .. } => true,
        Fault::DelayBeforeResponse(_)
        | Fault::DelayBeforeFirstEvent(_)
        | Fault::DelayBetweenEvents(_)
        | Fault::CloseAfterEvents(_)
        | Fault::DropAfterEvents(_)
        | Fault::MalformedEventAt(_) => false,
    })
}

/// How a stream ends early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EarlyEnd {
    Close(usize),
    Drop(usize),
}

impl EarlyEnd {
    pub(crate) fn after(self) -> usize {
        match self {
            EarlyEnd::Close(n) | EarlyEnd::Drop(n) => n,
        }
    }
}

/// The faults of one request, combined: the last reject, failure and early end win; delays add up;
/// malformed positions accumulate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FaultPlan {
    pub(crate) reject: Option<ErrorReply>,
    pub(crate) delay_before_response: Duration,
    pub(crate) delay_before_first_event: Duration,
    pub(crate) delay_between_events: Duration,
    pub(crate) early_end: Option<EarlyEnd>,
    pub(crate) malformed_at: Vec<usize>,
    pub(crate) replace: Option<Fault>,
}

impl FaultPlan {
    pub(crate) fn new<'a>(faults: impl IntoIterator<Item = &'a Fault>) -> Self {
        let mut plan = FaultPlan::default();
        for fault in faults {
            match fault {
                Fault::Reject(reply) => plan.reject = Some(reply.clone()),
                Fault::DelayBeforeResponse(delay) => plan.delay_before_response += *delay,
                Fault::DelayBeforeFirstEvent(delay) => plan.delay_before_first_event += *delay,
                Fault::DelayBetweenEvents(delay) => plan.delay_between_events += *delay,
                Fault::CloseAfterEvents(n) => plan.early_end = Some(EarlyEnd::Close(*n)),
                Fault::DropAfterEvents(n) => plan.early_end = Some(EarlyEnd::Drop(*n)),
                Fault::MalformedEventAt(at) => plan.malformed_at.push(*at),
                Fault::Failed { .. } | Fault::Incomplete { .. } => {
                    plan.replace = Some(fault.clone());
                }
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests;
