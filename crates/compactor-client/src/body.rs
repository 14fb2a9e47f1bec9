//! A request's JSON written in pieces while it is sent, so that its text is never whole in
//! memory: a WebSocket message in pieces of about 64 KiB with no pass that counts it first
//! (D165), and an HTTP body in pieces of about 512 KiB after a pass that counts its length, for
//! its `Content-Length` (D161).
//!
//! The request is split where its `input` items go: the JSON of the request with no input (the
//! *envelope*) is cut around the empty `input` list, and the items are written one by one
//! between the two halves. The pieces joined are the bytes `serde_json` writes for the whole
//! request; tests hold them to it.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::{fmt, io};

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

/// About how much JSON each piece of an HTTP body holds. Each piece is handed to the
/// connection's task and written by a call of its own, so pieces are larger than a WebSocket
/// message's; the first is mapped fresh, and the allocator then keeps memory of that size on the
/// heap, where the next pieces reuse it (D161).
pub(crate) const HTTP_PIECE_BYTES: usize = 512 * 1024;

/// The JSON of one request, written in pieces of about [`PIECE_BYTES`].
#[derive(Clone)]
pub(crate) struct JsonPieces<'r> {
    /// The envelope up to and including the `[` that opens the input.
    head: Vec<u8>,
    /// The envelope from the `]` that closes the input.
    tail: Vec<u8>,
    items: &'r [Cow<'r, ResponseItem>],
    /// The length each item's JSON was said to have, when the body's length was taken from them
    /// (D169): each item is held to its length as it is written.
    lens: Option<ItemLens<'r>>,
    /// The next item to write; `None` before the head is written.
    next: Option<usize>,
    written: u64,
}

/// The lengths an [`HttpBody`] was given for its items, and the mark it leaves when one is wrong.
#[derive(Clone)]
struct ItemLens<'r> {
    lens: &'r [u64],
    wrong: Arc<AtomicBool>,
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
        Self { head: json, tail: Vec::new(), items: &[], lens: None, next: None, written: 0 }
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
        Ok(Self { head, tail, items, lens: None, next: None, written: 0 })
    }

    /// Appends the next piece to `out`: whole items until it holds [`PIECE_BYTES`], and the
    /// envelope's halves where they come. Returns whether more pieces follow.
    pub(crate) fn fill(&mut self, out: &mut Vec<u8>) -> Result<bool, CompactorError> {
        self.fill_to(out, PIECE_BYTES)
    }

    /// [`fill`](Self::fill) with pieces of about `piece_bytes`.
    fn fill_to(&mut self, out: &mut Vec<u8>, piece_bytes: usize) -> Result<bool, CompactorError> {
        let start = out.len();
        let mut next = match self.next {
            Some(next) => next,
            None => {
                out.extend_from_slice(&self.head);
                0
            }
        };
        while next < self.items.len() && out.len() - start < piece_bytes {
            if next > 0 {
                out.push(b',');
            }
            let before = out.len();
            compactor_protocol::json::write_json(out, &self.items[next])?;
            if let Some(given) = &self.lens {
                let len = u64::try_from(out.len() - before).unwrap_or(u64::MAX);
                if given.lens.get(next) != Some(&len) {
                    given.wrong.store(true, Ordering::Relaxed);
                    return Err(CompactorError::Json(format!(
                        "input item {next} came to {len} bytes of JSON where {} were given",
                        given.lens.get(next).copied().unwrap_or(0)
                    )));
                }
            }
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

    /// The length of the whole JSON, counted without writing it: the envelope's halves, each
    /// item's JSON as `tokens::json_len` counts it (or as `lens` gives it), and the commas
    /// between items.
    fn counted_len(&self, lens: Option<&[u64]>) -> u64 {
        let items = match lens {
            Some(lens) => lens.iter().fold(0u64, |len, &item| len.saturating_add(item)),
            None => self.items.iter().fold(0u64, |len, item| {
                len.saturating_add(compactor_protocol::tokens::json_len(item.as_ref()))
            }),
        };
        let fixed = self.head.len() + self.tail.len() + self.items.len().saturating_sub(1);
        items.saturating_add(u64::try_from(fixed).unwrap_or(u64::MAX))
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

/// An HTTP request body, written while it is sent (D161): its length is counted first, for its
/// `Content-Length`, and each attempt writes its pieces again, so the whole body is never in
/// memory at once.
pub(crate) struct HttpBody<'r> {
    /// The body's JSON before any of it is written.
    pieces: JsonPieces<'r>,
    len: u64,
}

impl fmt::Debug for HttpBody<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpBody").field("len", &self.len).finish_non_exhaustive()
    }
}

impl<'r> HttpBody<'r> {
    /// The body `pieces` write, its length counted.
    pub(crate) fn new(pieces: JsonPieces<'r>) -> Self {
        Self::with_lens(pieces, None)
    }

    /// The body `pieces` write, its length taken from `lens`, the length of each item's JSON,
    /// when there is one per item (D169), else counted.
    pub(crate) fn with_lens(mut pieces: JsonPieces<'r>, lens: Option<&'r [u64]>) -> Self {
        let lens = lens.filter(|lens| lens.len() == pieces.items.len());
        let len = pieces.counted_len(lens);
        pieces.lens = lens.map(|lens| ItemLens { lens, wrong: Arc::new(AtomicBool::new(false)) });
        Self { pieces, len }
    }

    /// Whether an item's JSON turned out longer or shorter than the length given for it: the
    /// body's declared length is then wrong, and so is every attempt to send it.
    pub(crate) fn lens_were_wrong(&self) -> bool {
        self.pieces.lens.as_ref().is_some_and(|given| given.wrong.load(Ordering::Relaxed))
    }

    /// The body's length in bytes, for its `Content-Length`.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The body's pieces, written one by one as they are taken; the last is an error if the
    /// pieces do not add up to the length counted.
    pub(crate) fn pieces(&self) -> HttpPieces<'r> {
        HttpPieces { pieces: self.pieces.clone(), len: self.len, more: true }
    }

    /// The body for one attempt, and the writer that must run while it is sent: the body is a
    /// stream that ends when the writer has handed it every piece (or is dropped). A body of one
    /// piece is written here, whole, and its writer has nothing left to do.
    ///
    /// # Errors
    ///
    /// [`CompactorError::Json`] when a body of one piece cannot be written.
    pub(crate) fn attempt(&self) -> Result<(reqwest::Body, BodyWriter<'r>), CompactorError> {
        if self.len <= HTTP_PIECE_BYTES as u64 {
            let whole = self.to_bytes()?;
            return Ok((reqwest::Body::from(whole), BodyWriter(None)));
        }
        // Two pieces queued besides the one being written and the one being sent: the writer
        // keeps ahead of the connection without holding much of the body.
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(2);
        let stream = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx));
        Ok((reqwest::Body::wrap_stream(stream), BodyWriter(Some((self.pieces(), sender)))))
    }

    /// The body's bytes in one buffer, written again (the same bytes as sent).
    pub(crate) fn to_bytes(&self) -> Result<Bytes, CompactorError> {
        let mut pieces = self.pieces();
        let Some(first) = pieces.next().transpose()? else { return Ok(Bytes::new()) };
        if !pieces.more {
            // One piece, the body of every normal turn: it is the whole, with no copy.
            return Ok(first);
        }
        // Sized to the length counted, so the pieces are copied once, not again as it grows.
        let mut out = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        out.extend_from_slice(&first);
        pieces
            .try_fold(out, |mut out, piece| {
                out.extend_from_slice(&piece?);
                Ok(out)
            })
            .map(Bytes::from)
    }
}

/// The pieces of an [`HttpBody`], written as they are taken.
pub(crate) struct HttpPieces<'r> {
    pieces: JsonPieces<'r>,
    len: u64,
    more: bool,
}

impl Iterator for HttpPieces<'_> {
    type Item = Result<Bytes, CompactorError>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.more {
            return None;
        }
        // Room for a piece and the item that overflows it, or for what is left of a short body
        // (a normal turn's request is one small piece).
        let left = usize::try_from(self.len.saturating_sub(self.pieces.written())).unwrap_or(0);
        let mut piece = Vec::with_capacity(left.min(HTTP_PIECE_BYTES + HTTP_PIECE_BYTES / 4));
        let written = self.pieces.fill_to(&mut piece, HTTP_PIECE_BYTES);
        self.more = matches!(written, Ok(true));
        let wrong_len = match written {
            Ok(true) => self.pieces.written() > self.len,
            Ok(false) => self.pieces.written() != self.len,
            Err(err) => return Some(Err(err)),
        };
        if wrong_len {
            self.more = false;
            return Some(Err(CompactorError::Json(format!(
                "the request body came to {} bytes where {} were counted",
                self.pieces.written(),
                self.len
            ))));
        }
        Some(Ok(Bytes::from(piece)))
    }
}

/// Hands an attempt's body its pieces as the connection takes them.
pub(crate) struct BodyWriter<'r>(
    /// The pieces still to write and where they go; `None` for a body written whole.
    Option<(HttpPieces<'r>, tokio::sync::mpsc::Sender<io::Result<Bytes>>)>,
);

impl BodyWriter<'_> {
    /// Writes every piece into the body. A piece that cannot be written ends the body with an
    /// error, so the request is not sent cut short, and is returned; a body the request no
    /// longer reads (it failed, or was answered) ends the writing.
    pub(crate) async fn write(self) -> Result<(), CompactorError> {
        let Some((pieces, sender)) = self.0 else { return Ok(()) };
        for piece in pieces {
            let (piece, failure) = match piece {
                Ok(piece) => (Ok(piece), None),
                Err(err) => (Err(io::Error::other(err.to_string())), Some(err)),
            };
            if sender.send(piece).await.is_err() {
                return Ok(());
            }
            if let Some(err) = failure {
                return Err(err);
            }
        }
        Ok(())
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
