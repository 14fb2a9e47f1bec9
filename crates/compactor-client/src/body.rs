//! A request's JSON written in pieces of about 64 KiB, with no pass that counts it first: a
//! WebSocket message piece by piece while it is sent, so that its text is never whole in memory
//! (D165), and an HTTP body whole, as the pieces of its stream (D161).
//!
//! The request is split where its `input` items go: the JSON of the request with no input (the
//! *envelope*) is cut around the empty `input` list, and the items are written one by one
//! between the two halves. The pieces joined are the bytes `serde_json` writes for the whole
//! request; tests hold them to it.

use std::borrow::Cow;

use bytes::Bytes;
use compactor_protocol::{
    CompactRequest, CompactorError, ResponseItem, ResponsesApiRequest, WsClientMessage,
};
use serde::Serialize;

/// About how much JSON each piece holds: whole items are written until a piece reaches it.
///
/// It stays under the allocator's threshold for mapping fresh pages (128 KiB in glibc): a freed
/// piece goes back to the heap and the next one reuses its memory, where a larger piece would be
/// mapped and faulted in again every time.
pub(crate) const PIECE_BYTES: usize = 64 * 1024;

/// The JSON of one request, written in pieces of about [`PIECE_BYTES`].
pub(crate) struct JsonPieces<'r> {
    /// The envelope up to and including the `[` that opens the input.
    head: Vec<u8>,
    /// The envelope from the `]` that closes the input.
    tail: Vec<u8>,
    items: &'r [Cow<'r, ResponseItem>],
    /// The next item to write; `None` before the head is written.
    next: Option<usize>,
    written: u64,
}

impl<'r> JsonPieces<'r> {
    /// The body of a `POST /responses` of `request`.
    pub(crate) fn body(request: &'r ResponsesApiRequest<'_>) -> Result<Self, CompactorError> {
        Self::split(&without_input(request), &request.input)
    }

    /// The body of a `POST /responses/compact` of `request`.
    pub(crate) fn compact(request: &'r CompactRequest<'_>) -> Result<Self, CompactorError> {
        let envelope = CompactRequest {
            model: Cow::Borrowed(&request.model),
            input: Cow::Borrowed(&[]),
            instructions: Cow::Borrowed(&request.instructions),
            tools: Cow::Borrowed(&request.tools),
            parallel_tool_calls: request.parallel_tool_calls,
            reasoning: request.reasoning.clone(),
            service_tier: request.service_tier.clone(),
            prompt_cache_key: request.prompt_cache_key.clone(),
            text: request.text.clone(),
        };
        Self::split(&envelope, &request.input)
    }

    /// The `response.create` message of `request` as the WebSocket transport sends it.
    pub(crate) fn create(request: &'r ResponsesApiRequest<'_>) -> Result<Self, CompactorError> {
        let envelope = WsClientMessage::ResponseCreate(Box::new(without_input(request)));
        Self::split(&envelope, &request.input)
    }

    /// JSON already written whole (a short message): one piece.
    pub(crate) fn whole(json: Vec<u8>) -> Self {
        Self { head: json, tail: Vec::new(), items: &[], next: None, written: 0 }
    }

    /// `envelope`'s JSON with `items` written as its `input`.
    fn split(
        envelope: &impl Serialize,
        items: &'r [Cow<'r, ResponseItem>],
    ) -> Result<Self, CompactorError> {
        let mut head = serde_json::to_vec(envelope)?;
        let Some(open) = empty_input_at(&head) else {
            return Err(CompactorError::Json(
                "the request's JSON has no `input` list to write its items into".to_owned(),
            ));
        };
        let tail = head.split_off(open + 1);
        Ok(Self { head, tail, items, next: None, written: 0 })
    }

    /// Appends the next piece to `out`: whole items until it holds [`PIECE_BYTES`], and the
    /// envelope's halves where they come. Returns whether more pieces follow.
    pub(crate) fn fill(&mut self, out: &mut Vec<u8>) -> Result<bool, CompactorError> {
        let start = out.len();
        let mut next = match self.next {
            Some(next) => next,
            None => {
                out.extend_from_slice(&self.head);
                0
            }
        };
        while next < self.items.len() && out.len() - start < PIECE_BYTES {
            if next > 0 {
                out.push(b',');
            }
            compactor_protocol::json::write_json(out, &self.items[next])?;
            next += 1;
        }
        let done = next == self.items.len();
        if done {
            out.extend_from_slice(&self.tail);
        }
        self.next = Some(next);
        self.written = self.written.saturating_add(u64::try_from(out.len() - start).unwrap_or(0));
        Ok(!done)
    }

    /// The next piece in a buffer of its own, and whether more pieces follow.
    pub(crate) fn next_piece(&mut self) -> Result<(Vec<u8>, bool), CompactorError> {
        // Room for a piece and the item that overflows it: the buffer stays a heap block that a
        // later piece reuses once this one is freed.
        let mut piece = Vec::with_capacity(PIECE_BYTES + PIECE_BYTES / 4);
        let more = self.fill(&mut piece)?;
        Ok((piece, more))
    }

    /// Every piece, written now: an HTTP body, which must be whole to declare its length.
    pub(crate) fn all(mut self) -> Result<Vec<Bytes>, CompactorError> {
        let mut pieces = Vec::new();
        loop {
            let (mut piece, more) = self.next_piece()?;
            // Kept until the body is sent: the room left for an overflowing item goes back
            // (the allocator shrinks a block in place).
            piece.shrink_to_fit();
            pieces.push(Bytes::from(piece));
            if !more {
                return Ok(pieces);
            }
        }
    }

    /// The bytes written so far.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// The whole JSON in one buffer, for a caller that needs it whole.
    pub(crate) fn collect(mut self) -> Result<Vec<u8>, CompactorError> {
        let mut out = Vec::new();
        while self.fill(&mut out)? {}
        Ok(out)
    }
}

/// `request` with an empty input: the envelope its items are written into.
fn without_input<'q>(request: &'q ResponsesApiRequest<'_>) -> ResponsesApiRequest<'q> {
    let mut envelope = request.reborrow();
    envelope.input = Cow::Borrowed(&[]);
    envelope
}

/// An HTTP request body, written whole in pieces before it is sent (D161): no pass counts its
/// length first, its length is the pieces' sum, and a retry sends the same pieces again.
#[derive(Debug, Clone)]
pub(crate) struct HttpBody {
    pieces: Vec<Bytes>,
    len: u64,
}

impl HttpBody {
    /// The body `pieces` write.
    pub(crate) fn new(pieces: JsonPieces<'_>) -> Result<Self, CompactorError> {
        let pieces = pieces.all()?;
        let len = pieces.iter().map(|piece| u64::try_from(piece.len()).unwrap_or(u64::MAX)).sum();
        Ok(Self { pieces, len })
    }

    /// The body's length in bytes, for its `Content-Length`.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The body for one attempt: its pieces shared, not copied.
    pub(crate) fn reqwest_body(&self) -> reqwest::Body {
        match self.pieces.as_slice() {
            [one] => reqwest::Body::from(one.clone()),
            // The stream owns its pieces (a clone of each is a reference count).
            _ => reqwest::Body::wrap_stream(futures::stream::iter(
                self.pieces.clone().into_iter().map(Ok::<Bytes, std::convert::Infallible>),
            )),
        }
    }

    /// The body's bytes in one buffer (copied only when there are several pieces).
    pub(crate) fn to_bytes(&self) -> Bytes {
        match self.pieces.as_slice() {
            [one] => one.clone(),
            pieces => Bytes::from(pieces.concat()),
        }
    }
}

/// Where the `[` of the top-level `"input":[]` is in `json`, an object as `serde_json` writes
/// it (no whitespace). Strings are skipped with their escapes, so text that looks like the key,
/// inside a string or a nested object, is not taken for it.
fn empty_input_at(json: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut at = 0;
    while at < json.len() {
        match json[at] {
            b'"' => {
                let end = string_end(json, at)?;
                let key = &json[at + 1..end];
                at = end + 1;
                if depth == 1 && key == b"input" && json[at..].starts_with(b":[]") {
                    return Some(at + 1);
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.checked_sub(1)?,
            _ => {}
        }
        at += 1;
    }
    None
}

/// The index of the quote that closes the string opening at `start`.
fn string_end(json: &[u8], start: usize) -> Option<usize> {
    let mut at = start + 1;
    while at < json.len() {
        match json[at] {
            b'\\' => at += 2,
            b'"' => return Some(at),
            _ => at += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests;
