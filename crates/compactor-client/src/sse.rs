//! An incremental Server-Sent Events decoder: bytes in, one `data` payload per event out.
//!
//! It follows the EventSource framing rules: `\n`, `\r\n` and `\r` line ends (also split across
//! reads), `:` comments, several `data:` lines joined by `\n`, and an optional `event:` line. The
//! event type is taken from the JSON payload, never from `event:`; only an event that has an
//! `event:` line and no data at all gets the synthetic payload `{"type":"<event>"}`.

/// Decodes SSE bytes fed in arbitrary chunks.
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    /// Bytes received and not yet consumed.
    buf: Vec<u8>,
    /// Start of the unconsumed part of `buf`.
    pos: usize,
    /// Where the search for the next line end resumes, so a long line is scanned once.
    scan: usize,
    /// The current event's data lines, joined by `\n`.
    data: Vec<u8>,
    /// Whether the current event has a data line (an empty `data:` line counts).
    has_data: bool,
    /// The current event's `event:` name.
    event: Vec<u8>,
    /// The previous chunk ended with `\r`; a leading `\n` belongs to that line end.
    skip_lf: bool,
    /// The payload last returned, kept so the caller can borrow it.
    out: Vec<u8>,
}

impl SseDecoder {
    /// Appends received bytes.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.scan -= self.pos;
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event's payload, if one is complete.
    pub(crate) fn next_payload(&mut self) -> Option<&[u8]> {
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
                return None;
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
                    return Some(&self.out);
                }
                continue;
            }
            self.field(line_start, end);
        }
    }

    /// Ends the stream: an event whose blank line never came is returned when its data is a
    /// complete JSON document (lenient towards servers that omit the final blank line), and
    /// dropped otherwise.
    pub(crate) fn finish(&mut self) -> Option<&[u8]> {
        if self.pos < self.buf.len() {
            let (start, end) = (self.pos, self.buf.len());
            self.field(start, end);
            self.pos = end;
        }
        if self.has_data && serde_json::from_slice::<serde::de::IgnoredAny>(&self.data).is_err() {
            self.reset_event();
            return None;
        }
        if self.dispatch() { Some(&self.out) } else { None }
    }

    fn field(&mut self, start: usize, end: usize) {
        let line = &self.buf[start..end];
        if line.first() == Some(&b':') {
            return;
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
            }
            // `id`, `retry` and unknown fields carry nothing Compactor uses.
            _ => {}
        }
    }

    /// Moves the finished event's payload to `out`; false when the event had nothing to say.
    fn dispatch(&mut self) -> bool {
        let produced = if self.has_data {
            std::mem::swap(&mut self.out, &mut self.data);
            true
        } else if !self.event.is_empty() {
            self.out.clear();
            self.out.extend_from_slice(b"{\"type\":");
            // The name came from the wire: write it as a JSON string, escaped.
            let name = String::from_utf8_lossy(&self.event);
            let quoted = serde_json::to_string(name.as_ref()).unwrap_or_else(|_| "\"\"".to_owned());
            self.out.extend_from_slice(quoted.as_bytes());
            self.out.push(b'}');
            true
        } else {
            false
        };
        self.reset_event();
        produced
    }

    fn reset_event(&mut self) {
        self.data.clear();
        self.has_data = false;
        self.event.clear();
    }
}

#[cfg(test)]
mod tests;
