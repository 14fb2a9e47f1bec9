//! Redaction of secrets from text that came from a server (D60 in docs/decisions.md).
//!
//! A hostile or careless server can echo a credential back in an error message, and encode it on
//! the way so that a plain search misses it. Redaction therefore works on a decoded view of the
//! text: JSON string escapes (`\u0073`, `\n`, ...) and percent-escapes (`%73`) are decoded,
//! repeatedly, so that nested encodings unwrap too, and secrets are matched there, ignoring ASCII
//! case. Each match is mapped back to the bytes it came from, which are replaced by
//! [`REDACTED`]. A text that ends with the first 6 or more characters of a secret (a message
//! cut in the middle of a key) loses that tail as well.
//!
//! Text is redacted before it is truncated: [`Redactor::redact_truncated`] looks at enough bytes
//! past the cut to see any secret that starts before it.

use std::borrow::Cow;
use std::sync::Arc;

use compactor_protocol::CompactorError;

/// What a secret is replaced with.
pub(crate) const REDACTED: &str = "<redacted>";

/// The shortest secret prefix redacted at the end of a text.
const MIN_TAIL_CHARS: usize = 6;

/// How many times the decoder unwraps nested encodings (`%5Cu0073` is `\u0073` is `s`).
const DECODE_ROUNDS: usize = 4;

/// How many bytes of the original text one character of a secret is assumed to take at most, to
/// decide how far past a cut to look for a secret that starts before it. Deeper encodings are
/// caught by the tail rule once the text is cut.
const MAX_ENCODED_CHAR_BYTES: usize = 24;

/// The most bytes of server text an error keeps.
pub(crate) const MAX_SERVER_TEXT: usize = 2_000;

/// The secrets of one client: the API key, and the credentials of the base URL's userinfo.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    /// Non-empty, longest first.
    secrets: Arc<[String]>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    /// A redactor of `secrets`; empty ones are ignored.
    pub(crate) fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Self { secrets: secrets.into() }
    }

    /// `text` without any secret, decoded or not, and without a trailing secret prefix.
    pub(crate) fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.secrets.is_empty() || text.is_empty() {
            return Cow::Borrowed(text);
        }
        let spans = self.spans(text);
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in spans {
            out.push_str(&text[at..start]);
            out.push_str(REDACTED);
            at = end;
        }
        out.push_str(&text[at..]);
        Cow::Owned(out)
    }

    /// `text` redacted, then cut to at most `max_bytes` (on a character boundary), then redacted
    /// again, so that a secret straddling the cut leaves no prefix behind.
    pub(crate) fn redact_truncated(&self, text: &str, max_bytes: usize) -> String {
        let margin = self.longest().saturating_mul(MAX_ENCODED_CHAR_BYTES);
        let window = truncate(text, max_bytes.saturating_add(margin));
        let redacted = self.redact(window);
        let cut = truncate(&redacted, max_bytes);
        self.redact(cut).into_owned()
    }

    /// `error` with every text it carries redacted and cut to [`MAX_SERVER_TEXT`] bytes.
    pub(crate) fn error(&self, error: CompactorError) -> CompactorError {
        let clean = |text: String| self.redact_truncated(&text, MAX_SERVER_TEXT);
        match error {
            CompactorError::TurnAborted { reason } => {
                CompactorError::TurnAborted { reason: clean(reason) }
            }
            CompactorError::Stream { message, retry_after } => {
                CompactorError::Stream { message: clean(message), retry_after }
            }
            CompactorError::UnexpectedStatus { status, body } => {
                CompactorError::UnexpectedStatus { status, body: clean(body) }
            }
            CompactorError::InvalidRequest(text) => CompactorError::InvalidRequest(clean(text)),
            CompactorError::CyberPolicy(text) => CompactorError::CyberPolicy(clean(text)),
            CompactorError::UsageLimitReached(text) => {
                CompactorError::UsageLimitReached(clean(text))
            }
            CompactorError::QuotaExceeded(text) => CompactorError::QuotaExceeded(clean(text)),
            CompactorError::UsageNotIncluded(text) => CompactorError::UsageNotIncluded(clean(text)),
            CompactorError::RetryLimit { status, message } => {
                CompactorError::RetryLimit { status, message: clean(message) }
            }
            CompactorError::Timeout(text) => CompactorError::Timeout(clean(text)),
            CompactorError::ConnectionFailed(text) => CompactorError::ConnectionFailed(clean(text)),
            CompactorError::ResponseStreamFailed { code, message, retry_after } => {
                CompactorError::ResponseStreamFailed {
                    code: clean(code),
                    message: clean(message),
                    retry_after,
                }
            }
            CompactorError::Fatal(text) => CompactorError::Fatal(clean(text)),
            CompactorError::Io(text) => CompactorError::Io(clean(text)),
            CompactorError::Json(text) => CompactorError::Json(clean(text)),
            CompactorError::Rollout(text) => CompactorError::Rollout(clean(text)),
            CompactorError::Config(text) => CompactorError::Config(clean(text)),
            error @ (CompactorError::Cancelled
            | CompactorError::ContextWindowExceeded
            | CompactorError::ServerOverloaded
            | CompactorError::InternalServerError
            | CompactorError::NothingToCompact { .. }
            | CompactorError::CompactionMadeNoProgress { .. }
            | CompactorError::EventTooLarge { .. }
            | CompactorError::CompactionDoesNotFit { .. }
            | CompactorError::RolloutWrite { .. }
            | CompactorError::RolloutInUse { .. }
            | CompactorError::PinsOverBudget { .. }
            | CompactorError::PinNotFound { .. }
            | CompactorError::NotPinnable { .. }) => error,
        }
    }

    fn longest(&self) -> usize {
        self.secrets.first().map_or(0, |secret| secret.chars().count())
    }

    /// The byte ranges of `text` to replace, sorted and merged.
    fn spans(&self, text: &str) -> Vec<(usize, usize)> {
        let view = DecodedView::of(text);
        let folded = view.text.to_ascii_lowercase();
        let mut spans = Vec::new();
        for secret in self.secrets.iter() {
            let needle = secret.to_ascii_lowercase();
            let mut from = 0;
            while let Some(found) = folded[from..].find(&needle) {
                let start = from + found;
                let end = start + needle.len();
                spans.push(view.original(start, end));
                from = end;
            }
        }
        // A text that ends inside a secret: the tail is the secret's first characters (cut by a
        // truncation, here or on the server). An escape cut in half at the very end decodes to
        // nothing yet; it goes with the tail.
        let (body, partial_escape) = strip_partial_escape(text);
        let tail_view = if partial_escape { DecodedView::of(body) } else { view };
        let tail_text = tail_view.text.to_ascii_lowercase();
        if let Some(start) = self.secret_prefix_tail(&tail_text) {
            let (from, _) = tail_view.original(start, tail_text.len());
            spans.push((from, text.len()));
        }
        merge(spans)
    }

    /// Where the longest suffix of `text` that is a proper prefix (of at least
    /// [`MIN_TAIL_CHARS`] characters) of some secret starts; a whole secret is a match already.
    fn secret_prefix_tail(&self, text: &str) -> Option<usize> {
        let mut best: Option<usize> = None;
        for secret in self.secrets.iter() {
            let secret = secret.to_ascii_lowercase();
            for (prefix_end, _) in secret.char_indices().skip(MIN_TAIL_CHARS) {
                let prefix = &secret[..prefix_end];
                if text.ends_with(prefix) {
                    let start = text.len() - prefix.len();
                    best = Some(best.map_or(start, |best| best.min(start)));
                }
            }
        }
        best
    }
}

/// `text` cut to at most `max_bytes`, on a character boundary.
pub(crate) fn truncate(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Sorts and merges overlapping or touching ranges.
fn merge(mut spans: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            Some(_) | None => merged.push((start, end)),
        }
    }
    merged
}

/// `text` without an escape cut off at its end (`\`, `\u00`, `%`, `%7`), and whether there was
/// one.
fn strip_partial_escape(text: &str) -> (&str, bool) {
    let bytes = text.as_bytes();
    let len = bytes.len();
    let hex_run = bytes.iter().rev().take(3).take_while(|b| b.is_ascii_hexdigit()).count();
    // `\` followed by `u` and up to three hex digits, or by nothing.
    if len > hex_run && bytes[len - hex_run - 1] == b'u' && len > hex_run + 1 {
        let slash = len - hex_run - 2;
        if bytes[slash] == b'\\' {
            return (&text[..slash], true);
        }
    }
    if bytes.last() == Some(&b'\\') {
        return (&text[..len - 1], true);
    }
    // `%` followed by at most one hex digit.
    match bytes {
        [.., b'%'] => (&text[..len - 1], true),
        [.., b'%', last] if last.is_ascii_hexdigit() => (&text[..len - 2], true),
        _ => (text, false),
    }
}

/// A decoded copy of a text, with the original byte range of every decoded byte.
struct DecodedView {
    text: String,
    /// `spans[i]` is the range of the original text that decoded byte `i` came from.
    spans: Vec<(usize, usize)>,
}

impl DecodedView {
    fn of(original: &str) -> Self {
        let mut view = DecodedView {
            text: original.to_owned(),
            spans: original.char_indices().flat_map(|(at, c)| char_spans(at, c)).collect(),
        };
        for _ in 0..DECODE_ROUNDS {
            let Some((text, spans)) = decode_once(&view.text) else {
                break;
            };
            view.spans = spans
                .iter()
                .map(|&(start, end)| (view.spans[start].0, view.spans[end - 1].1))
                .collect();
            view.text = text;
        }
        view
    }

    /// The original range of decoded bytes `start..end`.
    fn original(&self, start: usize, end: usize) -> (usize, usize) {
        (self.spans[start].0, self.spans[end.max(start + 1) - 1].1)
    }
}

/// One span per byte of `c` at `at`: all of them the character's own range.
fn char_spans(at: usize, c: char) -> impl Iterator<Item = (usize, usize)> {
    let len = c.len_utf8();
    std::iter::repeat_n((at, at + len), len)
}

/// Decodes one layer of JSON string escapes and percent-escapes; `None` when there is none.
/// The spans it returns are byte ranges of `text`, one per byte of the decoded string.
fn decode_once(text: &str) -> Option<(String, Vec<(usize, usize)>)> {
    if !text.contains(['\\', '%']) {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut spans = Vec::with_capacity(text.len());
    let mut changed = false;
    let mut at = 0;
    while at < bytes.len() {
        if let Some((c, len)) = json_escape(&text[at..]) {
            push_char(&mut out, &mut spans, c, (at, at + len));
            at += len;
            changed = true;
            continue;
        }
        if let Some((decoded, len)) = percent_run(&text[at..]) {
            // Each character keeps the range of its own `%XX` group.
            let mut from = at;
            for c in decoded.chars() {
                let group = 3 * c.len_utf8();
                push_char(&mut out, &mut spans, c, (from, from + group));
                from += group;
            }
            at += len;
            changed = true;
            continue;
        }
        let c = text[at..].chars().next().unwrap_or('\u{fffd}');
        push_char(&mut out, &mut spans, c, (at, at + c.len_utf8()));
        at += c.len_utf8();
    }
    changed.then_some((out, spans))
}

fn push_char(out: &mut String, spans: &mut Vec<(usize, usize)>, c: char, span: (usize, usize)) {
    out.push(c);
    spans.extend(std::iter::repeat_n(span, c.len_utf8()));
}

/// A JSON string escape at the start of `text`: the character and the escape's length.
fn json_escape(text: &str) -> Option<(char, usize)> {
    let rest = text.strip_prefix('\\')?;
    let simple = match rest.as_bytes().first()? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => {
            let high = hex4(rest.get(1..5)?)?;
            if (0xD800..0xDC00).contains(&high) {
                // A surrogate pair is one character; a lone half is kept as it is.
                let low = rest.get(5..11).and_then(|pair| pair.strip_prefix("\\u")).and_then(hex4);
                return match low {
                    Some(low) if (0xDC00..0xE000).contains(&low) => {
                        let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                        char::from_u32(code).map(|c| (c, 12))
                    }
                    Some(_) | None => None,
                };
            }
            return char::from_u32(high).map(|c| (c, 6));
        }
        _ => return None,
    };
    Some((simple, 2))
}

fn hex4(text: &str) -> Option<u32> {
    if text.len() == 4 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        u32::from_str_radix(text, 16).ok()
    } else {
        None
    }
}

/// A run of `%XX` escapes at the start of `text` that decodes to UTF-8: the characters and the
/// run's length. Only whole characters are taken; a run that is not UTF-8 is left alone.
fn percent_run(text: &str) -> Option<(String, usize)> {
    let mut bytes = Vec::new();
    let mut at = 0;
    while let Some(byte) = text.get(at..at + 3).and_then(percent_byte) {
        bytes.push(byte);
        at += 3;
    }
    if bytes.is_empty() {
        return None;
    }
    let valid = match std::str::from_utf8(&bytes) {
        Ok(all) => all.len(),
        Err(err) => err.valid_up_to(),
    };
    if valid == 0 {
        return None;
    }
    let decoded = String::from_utf8_lossy(&bytes[..valid]).into_owned();
    Some((decoded, valid * 3))
}

fn percent_byte(escape: &str) -> Option<u8> {
    let hex = escape.strip_prefix('%')?;
    if hex.bytes().all(|b| b.is_ascii_hexdigit()) { u8::from_str_radix(hex, 16).ok() } else { None }
}

/// Percent-decodes `text` (for URL userinfo); invalid escapes stay as they are.
pub(crate) fn percent_decode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        if let Some((decoded, len)) = percent_run(&text[at..]) {
            out.push_str(&decoded);
            at += len;
            continue;
        }
        let c = text[at..].chars().next().unwrap_or('\u{fffd}');
        out.push(c);
        at += c.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests;
