//! Entry points for `cargo xtask bench` (D48; hidden from the docs, no stability promise):
//! the transports' own decoding and mapping code, run over in-memory input, and the WebSocket
//! transport's incremental-request bookkeeping without a socket.

use bytes::Bytes;
use compactor_protocol::{CompactorError, ResponseItem, ResponsesApiRequest};

use crate::http::Read;
use crate::ws::Bookkeeping;

/// Decodes one SSE response body that arrives in `chunks` exactly as the HTTP transport does
/// (SSE framing, payload parsing, event mapping), and returns how many events it produced, the
/// completion included.
///
/// # Errors
///
/// The error that ended the stream before `response.completed`.
pub fn sse_events(chunks: &[&[u8]]) -> Result<usize, CompactorError> {
    completed(|each| crate::http::decode_chunks(chunks, each))
}

/// Maps one response's WebSocket text `frames` exactly as the WebSocket transport does, and
/// returns how many events it produced, the completion included.
///
/// # Errors
///
/// The error that ended the stream before `response.completed`.
pub fn websocket_events(frames: &[&[u8]]) -> Result<usize, CompactorError> {
    completed(|each| crate::ws::map_frames(frames, each))
}

/// The WebSocket transport's work around each request of a connection, without the
/// connection: building the `response.create` (incremental when the input extends what the server
/// holds) and keeping the baseline for the next one (D130).
#[derive(Debug)]
pub struct WebsocketTurns(Bookkeeping);

impl Default for WebsocketTurns {
    fn default() -> Self {
        Self(Bookkeeping::new())
    }
}

impl WebsocketTurns {
    /// The message the transport sends for `request` on this connection; the request becomes the
    /// baseline of the next one.
    ///
    /// # Errors
    ///
    /// The request does not serialize.
    pub fn send(&mut self, request: &ResponsesApiRequest<'_>) -> Result<Bytes, CompactorError> {
        self.0.send(request)
    }

    /// Records that the last request was answered by `response_id` with `output`.
    pub fn complete(&mut self, response_id: &str, output: &[ResponseItem]) {
        self.0.complete(response_id, output);
    }
}

/// How many reads `decode` handed on, the completion included. Each read is dropped when the
/// next comes, as a stream's consumer takes events one by one: the count costs nothing the
/// transport does not.
fn completed(decode: impl FnOnce(&mut dyn FnMut(Read))) -> Result<usize, CompactorError> {
    let mut count = 0;
    let mut last = None;
    decode(&mut |read| {
        count += 1;
        last = Some(read);
    });
    match last {
        Some(Read::Completed(_)) => Ok(count),
        Some(Read::End(error)) => Err(error),
        Some(Read::Event(_)) | None => {
            Err(CompactorError::stream("stream closed before response.completed"))
        }
    }
}

#[cfg(test)]
mod tests;
