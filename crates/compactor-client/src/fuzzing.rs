//! Entry points for the cargo-fuzz targets in `fuzz/` (hidden from the docs; no stability
//! promise). Each runs the transport's own decoding and mapping code without I/O and returns
//! the reads it produced, as their `Debug` text.

/// Reads an SSE body that arrives in `chunks`, decoding and mapping it exactly as the HTTP
/// transport does, up to and including the first terminal read (`Completed` or the error that
/// ends the stream).
pub fn sse_reads(chunks: &[&[u8]]) -> Vec<String> {
    let mut reads = Vec::new();
    crate::http::decode_chunks(chunks, |read| reads.push(format!("{read:?}")));
    reads
}

/// Maps WebSocket text `frames` exactly as the WebSocket transport does (wrapped `error` frames
/// included), up to and including the first terminal read.
pub fn websocket_reads(frames: &[&[u8]]) -> Vec<String> {
    let mut reads = Vec::new();
    crate::ws::map_frames(frames, |read| reads.push(format!("{read:?}")));
    reads
}
