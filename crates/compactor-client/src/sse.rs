//! An incremental Server-Sent Events decoder: bytes in, one `data` payload per event out.
//!
//! It follows the EventSource framing rules: `\n`, `\r\n` and `\r` line ends (also split across
//! reads), `:` comments, several `data:` lines joined by `\n`, and an optional `event:` line. The
//! event type is taken from the JSON payload, never from `event:`; only an event that has an
//! `event:` line and no data at all gets the synthetic payload `{"type":"<event>"}`.
//!
//! Memory is bounded (D61 in docs/decisions.md): a line, or an event's data, longer than the
//! decoder's cap ends decoding with [`EventTooLarge`], and the bytes of one event are held about
//! once. An event with a single `data:` line (every server's framing) is handed out straight from
//! the receive buffer, which grows by a quarter at a time rather than doubling, and shrinks back
//! once a large event has gone.

/// The default cap (also what [`SseDecoder::default`] uses).
const DEFAULT_MAX_EVENT_BYTES: usize = crate::config::DEFAULT_MAX_EVENT_BYTES;

/// A buffer keeps at most this much spare capacity once a large event has gone through it.
const KEEP_CAPACITY: usize = 1 << 20;

/// A line or an event's data outgrew the decoder's cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EventTooLarge;

/// What the decoder hands out next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ready {
    /// Nothing.
    None,
    /// The single data line at `buf[start..end]`.
    Line(usize, usize),
    /// The joined data lines, or a synthetic payload, in `out`.
    Out,
}

/// Decodes SSE bytes fed in arbitrary chunks.
#[derive(Debug)]
pub(crate) struct SseDecoder {
    /// Bytes received and not yet consumed.
    buf: Vec<u8>,
    /// Start of the unconsumed part of `buf`.
    pos: usize,
    /// Where the search for the next line end resumes, so a long line is scanned once.
    scan: usize,
    /// The current event's only data line so far, as a range of `buf` (kept there, not copied).
    line: Option<(usize, usize)>,
    /// The current event's data lines joined by `\n`, once it has more than one.
    data: Vec<u8>,
    /// Whether the current event has a data line (an empty `data:` line counts).
    has_data: bool,
    /// The current event's `event:` name.
    event: Vec<u8>,
    /// The previous chunk ended with `\r`; a leading `\n` belongs to that line end.
    skip_lf: bool,
    /// A payload that is not a slice of `buf`.
    out: Vec<u8>,
    /// The payload handed out last, released on the next call.
    ready: Ready,
    /// The longest line, and the most data of one event, in bytes.
    max_event_bytes: usize,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseDecoder {
    /// A decoder that refuses lines and events longer than `max_event_bytes`.
    pub(crate) fn new(max_event_bytes: usize) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            scan: 0,
            line: None,
            data: Vec::new(),
            has_data: false,
            event: Vec::new(),
            skip_lf: false,
            out: Vec::new(),
            ready: Ready::None,
            max_event_bytes,
        }
    }

    /// The cap, in bytes.
    pub(crate) fn max_event_bytes(&self) -> usize {
        self.max_event_bytes
    }

    /// Appends received bytes.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.release();
        // Consumed bytes go, except the current event's data line, which stays where it is.
        let keep_from = self.line.map_or(self.pos, |(start, _)| start.min(self.pos));
        if keep_from > 0 && keep_from * 2 >= self.buf.len() {
            self.buf.drain(..keep_from);
            self.scan -= keep_from;
            self.pos -= keep_from;
            if let Some((start, end)) = &mut self.line {
                *start -= keep_from;
                *end -= keep_from;
            }
            shrink(&mut self.buf);
        }
        let spare = self.buf.capacity() - self.buf.len();
        if spare < chunk.len() {
            // A quarter more at a time: a long line costs its size and a quarter, not double.
            self.buf.reserve_exact(chunk.len().max(self.buf.len() / 4));
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event's payload: `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    ///
    /// [`EventTooLarge`] when the line being read, or the current event's data, is longer than
    /// the cap; the decoder must not be used after that.
    pub(crate) fn next_payload(&mut self) -> Result<Option<&[u8]>, EventTooLarge> {
        self.release();
        loop {
            if self.skip_lf && self.pos < self.buf.len() {
                if self.buf[self.pos] == b'\n' {
                    self.pos += 1;
                    self.scan = self.scan.max(self.pos);
                }
                self.skip_lf = false;
            }
            let from = self.scan.max(self.pos);
            let Some(offset) = memchr::memchr2(b'\n', b'\r', &self.buf[from..]) else {
                self.scan = self.buf.len();
                // The line being read, plus the data the current event already holds.
                let held = self.line.map_or(self.data.len(), |(start, end)| end - start);
                if (self.buf.len() - self.pos).saturating_add(held) > self.max_event_bytes {
                    return Err(EventTooLarge);
                }
                return Ok(None);
            };
            let end = from + offset;
            let line_start = self.pos;
            if self.buf[end] == b'\r' {
                self.skip_lf = true;
            }
            self.pos = end + 1;
            self.scan = self.pos;
            if end == line_start {
                if self.dispatch() {
                    return Ok(Some(self.payload()));
                }
                continue;
            }
            if end - line_start > self.max_event_bytes {
                return Err(EventTooLarge);
            }
            self.field(line_start, end)?;
        }
    }

    /// Ends the stream: an event whose blank line never came is returned when its data is a
    /// complete JSON document (lenient towards servers that omit the final blank line), and
    /// dropped otherwise.
    ///
    /// # Errors
    ///
    /// [`EventTooLarge`] as [`SseDecoder::next_payload`].
    pub(crate) fn finish(&mut self) -> Result<Option<&[u8]>, EventTooLarge> {
        self.release();
        if self.pos < self.buf.len() {
            let (start, end) = (self.pos, self.buf.len());
            if end - start > self.max_event_bytes {
                return Err(EventTooLarge);
            }
            self.field(start, end)?;
            self.pos = end;
        }
        if self.has_data {
            let data = match self.line {
                Some((start, end)) => &self.buf[start..end],
                None => &self.data[..],
            };
            if serde_json::from_slice::<serde::de::IgnoredAny>(data).is_err() {
                self.reset_event();
                return Ok(None);
            }
        }
        if self.dispatch() { Ok(Some(self.payload())) } else { Ok(None) }
    }

    fn payload(&self) -> &[u8] {
        match self.ready {
            Ready::Line(start, end) => &self.buf[start..end],
            Ready::Out => &self.out,
            Ready::None => &[],
        }
    }

    /// Forgets the payload handed out last.
    fn release(&mut self) {
        match std::mem::replace(&mut self.ready, Ready::None) {
            Ready::Out => {
                self.out.clear();
                shrink(&mut self.out);
            }
            Ready::Line(..) | Ready::None => {}
        }
    }

    fn field(&mut self, start: usize, end: usize) -> Result<(), EventTooLarge> {
        let line = &self.buf[start..end];
        if line.first() == Some(&b':') {
            return Ok(());
        }
        let (name_end, value_start) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = colon + 1;
                (colon, if line.get(value) == Some(&b' ') { value + 1 } else { value })
            }
            None => (line.len(), line.len()),
        };
        let (value_start, value_end) = (start + value_start, end);
        match &self.buf[start..start + name_end] {
            b"data" => {
                if !self.has_data {
                    self.line = Some((value_start, value_end));
                    self.has_data = true;
                    return Ok(());
                }
                if let Some((first_start, first_end)) = self.line.take() {
                    self.data.extend_from_slice(&self.buf[first_start..first_end]);
                }
                let value_len = value_end - value_start;
                if self.data.len() + 1 + value_len > self.max_event_bytes {
                    return Err(EventTooLarge);
                }
                self.data.push(b'\n');
                self.data.extend_from_slice(&self.buf[value_start..value_end]);
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(&self.buf[value_start..value_end]);
            }
            // `id`, `retry` and unknown fields carry nothing Compactor uses.
            _ => {}
        }
        Ok(())
    }

    /// Readies the finished event's payload; false when the event had nothing to say.
    fn dispatch(&mut self) -> bool {
        let produced = if self.has_data {
            match self.line.take() {
                Some((start, end)) => self.ready = Ready::Line(start, end),
                None => {
                    std::mem::swap(&mut self.out, &mut self.data);
                    self.ready = Ready::Out;
                }
            }
            true
        } else if !self.event.is_empty() {
            self.out.clear();
            self.out.extend_from_slice(b"{\"type\":");
            // The name came from the wire: write it as a JSON string, escaped.
            let name = String::from_utf8_lossy(&self.event);
            let quoted = serde_json::to_string(name.as_ref()).unwrap_or_else(|_| "\"\"".to_owned());
            self.out.extend_from_slice(quoted.as_bytes());
            self.out.push(b'}');
            self.ready = Ready::Out;
            true
        } else {
            false
        };
        self.reset_event();
        produced
    }

    fn reset_event(&mut self) {
        self.line = None;
        self.data.clear();
        shrink(&mut self.data);
        self.has_data = false;
        self.event.clear();
    }
}

/// Gives back the spare capacity a large event left in `buf`.
fn shrink(buf: &mut Vec<u8>) {
    if buf.capacity() > KEEP_CAPACITY && buf.len() < buf.capacity() / 4 {
        buf.shrink_to(buf.len().max(KEEP_CAPACITY / 4));
    }
}

#[cfg(test)]
mod tests;
