//! [`SentRequest`]: what the client sent for one request, reported to its caller for traces and
//! byte counts (see D80 in docs/decisions.md).

use bytes::Bytes;
use compactor_protocol::{CompactorError, ResponsesApiRequest, WsClientMessage};

use crate::body::HttpBody;
use crate::client::json_body;

/// Called with what the client sent, once per request it puts on the wire (a retry of opening
/// reports again when it sends something new, such as a full `response.create` on a fresh
/// WebSocket connection). It is called synchronously: keep it quick.
pub type SentReport<'r> = &'r mut (dyn FnMut(&SentRequest<'_>) + Send);

/// What the client sent for one request.
///
/// The *logical request* is the whole request: the prompt's input after the pass-through
/// filter, with `prompt_cache_key` and, for `/responses`, `stream: true`; the body an HTTP
/// request carries. The *wire message* is what went out instead when that differs: over
/// WebSocket, the `response.create` text, which is incremental (`previous_response_id` and only
/// the new input) when the connection allowed it.
///
/// The client writes a request while it sends it and keeps no copy of its bytes (D161, D165):
/// the JSON is written again, the same bytes, only for a caller that asks for it.
#[derive(Debug)]
pub struct SentRequest<'a>(Sent<'a>);

#[derive(Debug)]
#[expect(clippy::large_enum_variant, reason = "a short-lived value on the stack, never stored")]
enum Sent<'a> {
    /// An HTTP body: the logical request, which went out as it is.
    Http(&'a HttpBody<'a>),
    /// A WebSocket `response.create` of `len` bytes creating `message` for a logical request
    /// that was never serialized as such (borrowed from the request sent, in its HTTP form).
    Websocket { request: ResponsesApiRequest<'a>, message: ResponsesApiRequest<'a>, len: u64 },
}

impl<'a> SentRequest<'a> {
    /// An HTTP request: `body` is the logical request and went out as it is.
    pub(crate) fn http(body: &'a HttpBody<'a>) -> Self {
        Self(Sent::Http(body))
    }

    /// A WebSocket request: the `response.create` of `message`, `len` bytes, went out for
    /// `request`.
    pub(crate) fn websocket(
        request: &'a ResponsesApiRequest<'_>,
        message: &'a ResponsesApiRequest<'_>,
        len: u64,
    ) -> Self {
        let message = message.reborrow();
        let mut request = request.reborrow();
        request.stream = Some(true);
        request.previous_response_id = None;
        request.generate = None;
        Self(Sent::Websocket { request, message, len })
    }

    /// The logical request as JSON, written by this call, so a caller that does not ask pays
    /// nothing: over HTTP the bytes of the body sent, over WebSocket the request in its HTTP form.
    ///
    /// # Errors
    ///
    /// [`CompactorError::Json`] when the request cannot be serialized.
    pub fn request_json(&self) -> Result<Bytes, CompactorError> {
        match &self.0 {
            Sent::Http(body) => body.to_bytes(),
            Sent::Websocket { request, .. } => json_body(request).map(Bytes::from),
        }
    }

    /// The message that went on the wire when it differs from the logical request, written by
    /// this call: the text of a WebSocket `response.create` (UTF-8 JSON); `None` over HTTP.
    ///
    /// # Errors
    ///
    /// [`CompactorError::Json`] when the message cannot be serialized.
    pub fn wire_message(&self) -> Result<Option<Bytes>, CompactorError> {
        match &self.0 {
            Sent::Http(_) => Ok(None),
            Sent::Websocket { message, .. } => {
                let create = WsClientMessage::ResponseCreate(Box::new(message.reborrow()));
                json_body(&create).map(|text| Some(Bytes::from(text)))
            }
        }
    }

    /// The size in bytes of what went out: the body, or the WebSocket message.
    pub fn wire_len(&self) -> u64 {
        match &self.0 {
            Sent::Http(body) => body.len(),
            Sent::Websocket { len, .. } => *len,
        }
    }
}

#[cfg(test)]
mod tests;
