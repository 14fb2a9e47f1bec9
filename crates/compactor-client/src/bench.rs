//! Entry points for `cargo xtask bench` (D48; hidden from the docs, no stability promise):
//! the transports' own decoding and mapping code, run over in-memory input.

use compactor_protocol::CompactorError;

use crate::http::Read;

/// Decodes one SSE response body that arrives in `chunks` exactly as the HTTP transport does
/// (SSE framing, payload parsing, event mapping), and returns how many events it produced, the
/// completion included.
///
/// # Errors
///
/// The error that ended the stream before `response.completed`.
pub fn sse_events(chunks: &[&[u8]]) -> Result<usize, CompactorError> {
    completed(crate::http::decode_chunks(chunks))
}

/// Maps one response's WebSocket text `frames` exactly as the WebSocket transport does, and
/// returns how many events it produced, the completion included.
///
/// # Errors
///
/// The error that ended the stream before `response.completed`.
pub fn websocket_events(frames: &[&[u8]]) -> Result<usize, CompactorError> {
    completed(crate::ws::map_frames(frames))
}

fn completed(mut reads: Vec<Read>) -> Result<usize, CompactorError> {
    match reads.pop() {
        Some(Read::Completed(_)) => Ok(reads.len() + 1),
        Some(Read::End(error)) => Err(error),
        Some(Read::Event(_)) | None => {
            Err(CompactorError::stream("stream closed before response.completed"))
        }
    }
}

#[cfg(test)]
mod tests;
