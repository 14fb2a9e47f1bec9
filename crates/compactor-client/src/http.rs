//! The HTTP transport: `POST /responses` read as SSE, `POST /responses/compact`, and the mapping
//! of HTTP failures to errors (D43, D44, D8).

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use compactor_protocol::{CompactorError, ResponseEvent};
use futures::{Stream, StreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use serde_json::Value;

use crate::config::{ProviderConfig, SecretString};
use crate::events::{EventMapper, Mapped, map_event, parse_payload, parse_retry_delay};
use crate::redact::{MAX_SERVER_TEXT, Redactor};
use crate::retry::{AttemptError, Retry};
use crate::sse::{EventTooLarge, SseDecoder};
use crate::stream::StreamSender;

/// The most bytes of an error answer read: enough for any error object, and far more than the
/// [`MAX_SERVER_TEXT`] an error keeps, so that redaction sees past the cut.
pub(crate) const MAX_ERROR_BODY_READ: usize = 64 * 1024;

/// The headers of every request (D26). The key's header is marked sensitive, so the
/// `http` crate never prints it.
pub(crate) fn request_headers(
    config: &ProviderConfig,
    key: Option<&SecretString>,
    thread_id: &str,
    accept: &'static str,
) -> Result<HeaderMap, CompactorError> {
    let mut headers = HeaderMap::new();
    if let Some(key) = key {
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| {
                CompactorError::Config("the API key is not a valid header value".into())
            })?;
        value.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, value);
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::ACCEPT, HeaderValue::from_static(accept));
    if let Ok(value) = HeaderValue::from_str(thread_id) {
        headers.insert(HeaderName::from_static("x-client-request-id"), value);
    }
    for (name, value) in &config.extra_headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| CompactorError::Config(format!("invalid header name `{name}`")))?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| CompactorError::Config(format!("invalid value for header `{name}`")))?;
        // Configured headers may carry credentials; sensitive values never print.
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    Ok(headers)
}

/// Maps a transport failure (no HTTP status) of one attempt.
pub(crate) fn transport_error(err: &reqwest::Error, redactor: &Redactor) -> AttemptError {
    // reqwest's text names the URL (without userinfo) and the cause, never the headers; it is
    // redacted all the same.
    let error = if err.is_timeout() {
        CompactorError::Timeout(format!("request timed out: {err}"))
    } else {
        CompactorError::ConnectionFailed(err.to_string())
    };
    AttemptError { error: redactor.error(error), retry: Retry::After(None) }
}

/// Reads at most `limit` bytes of `response`'s body; the flag says whether more followed.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> reqwest::Result<(Vec<u8>, bool)> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// Maps a non-success HTTP answer of one attempt: the final error and whether a retry may help
/// (D10: connect errors, 5xx and 429 without `usage_limit_reached` are retried). The server's
/// text is decoded (the `error.message` of a JSON body) and then redacted before it is cut to
/// [`MAX_SERVER_TEXT`] bytes (D60). A redirect is final: the client follows none (D62).
pub(crate) fn status_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    redactor: &Redactor,
) -> AttemptError {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let error_obj = parsed.as_ref().and_then(|v| v.get("error"));
    let field = |name: &str| error_obj.and_then(|e| e.get(name)).and_then(Value::as_str);
    let code = field("code").or_else(|| field("type")).unwrap_or("");
    let message = redactor.redact_truncated(field("message").unwrap_or(body), MAX_SERVER_TEXT);
    let requested = retry_after_header(headers).or_else(|| parse_retry_delay(&message));
    let code_u16 = status.as_u16();
    let attempt = match code_u16 {
        400 => AttemptError::final_error(match code {
            "context_length_exceeded" => CompactorError::ContextWindowExceeded,
            "cyber_policy" => CompactorError::CyberPolicy(message),
            _ => CompactorError::InvalidRequest(with_params(message, error_obj)),
        }),
        429 if code == "usage_limit_reached" || field("type") == Some("usage_limit_reached") => {
            AttemptError::final_error(CompactorError::UsageLimitReached(message))
        }
        429 => AttemptError {
            error: CompactorError::RetryLimit { status: code_u16, message },
            retry: Retry::After(requested),
        },
        500 => AttemptError {
            error: CompactorError::InternalServerError,
            retry: Retry::After(requested),
        },
        _ if status.is_server_error() => AttemptError {
            error: match code {
                "server_is_overloaded" | "slow_down" => CompactorError::ServerOverloaded,
                _ => CompactorError::UnexpectedStatus { status: code_u16, body: message },
            },
            retry: Retry::After(requested),
        },
        _ if status.is_redirection() => {
            let target = headers
                .get(header::LOCATION)
                .and_then(|value| value.to_str().ok())
                .map(|location| crate::config::url_without_userinfo(location).into_owned());
            let body = match target {
                Some(target) => format!(
                    "the server redirects to {target}; Compactor follows no redirects, so set the \
                     base URL to where the API is"
                ),
                None => "the server redirects; Compactor follows no redirects, so set the base \
                         URL to where the API is"
                    .to_owned(),
            };
            AttemptError::final_error(CompactorError::UnexpectedStatus { status: code_u16, body })
        }
        _ => AttemptError::final_error(CompactorError::UnexpectedStatus {
            status: code_u16,
            body: message,
        }),
    };
    AttemptError { error: redactor.error(attempt.error), retry: attempt.retry }
}

/// `message` followed by the request parameters the error names (`param`, and the `param` of
/// each of its `details`, as schema-validating servers report them), so the caller can tell
/// which part of its request was refused (D114).
fn with_params(message: String, error: Option<&Value>) -> String {
    let Some(error) = error else { return message };
    let details = error.get("details").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let mut params: Vec<&str> = Vec::new();
    for param in std::iter::once(error.get("param"))
        .chain(details.iter().map(|detail| detail.get("param")))
        .filter_map(|param| param.and_then(Value::as_str))
    {
        if !param.is_empty() && !params.contains(&param) && !message.contains(param) {
            params.push(param);
        }
    }
    if params.is_empty() { message } else { format!("{message} (param: {})", params.join(", ")) }
}

/// `Retry-After: <seconds>` (or `retry-after-ms`).
fn retry_after_header(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    text("retry-after")
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
}

/// A boxed body byte stream.
pub(crate) type BodyStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// What reading a response produced next.
#[derive(Debug)]
pub(crate) enum Read {
    /// An event to forward.
    Event(ResponseEvent),
    /// The completed event; nothing follows.
    Completed(ResponseEvent),
    /// The stream ended with this error.
    End(CompactorError),
}

/// Reads an SSE body into events, applying D44's rules: the idle timeout, the remembered
/// `response.failed`, and the early-end error.
pub(crate) struct SseReader {
    body: BodyStream,
    decoder: SseDecoder,
    mapper: EventMapper,
    remembered: Option<CompactorError>,
    pending: VecDeque<Read>,
    idle_timeout: Duration,
    eof: bool,
    /// The secrets redacted from the failures the server reports.
    redactor: Redactor,
}

impl SseReader {
    /// A reader of `body` that refuses lines and events over `max_event_bytes` (D61).
    pub(crate) fn new(body: BodyStream, idle_timeout: Duration, max_event_bytes: usize) -> Self {
        Self {
            body,
            decoder: SseDecoder::new(max_event_bytes),
            mapper: EventMapper::default(),
            remembered: None,
            pending: VecDeque::new(),
            idle_timeout,
            eof: false,
            redactor: Redactor::default(),
        }
    }

    /// Redacts these secrets from the failures this reader reports (`response.failed` messages,
    /// read errors).
    pub(crate) fn redacting(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// The next event or the end.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: bytes already read stay buffered in the decoder.
    pub(crate) async fn next(&mut self) -> Read {
        loop {
            if let Some(read) = self.decoded() {
                return read;
            }
            match tokio::time::timeout(self.idle_timeout, self.body.next()).await {
                Err(_elapsed) => {
                    return Read::End(CompactorError::stream("idle timeout waiting for SSE"));
                }
                Ok(None) => self.eof = true,
                Ok(Some(Err(err))) => {
                    return Read::End(self.remembered.take().unwrap_or_else(|| {
                        self.redactor.error(CompactorError::stream(format!(
                            "error reading the response stream: {err}"
                        )))
                    }));
                }
                Ok(Some(Ok(bytes))) => self.decoder.push(&bytes),
            }
        }
    }

    /// The next read the bytes received so far make, or `None` when more bytes are needed.
    fn decoded(&mut self) -> Option<Read> {
        loop {
            if let Some(read) = self.pending.pop_front() {
                return Some(read);
            }
            let decoded = match self.decoder.next_payload() {
                Ok(None) if self.eof => self.decoder.finish(),
                decoded => decoded,
            };
            let payload = match decoded {
                Ok(data) => data.map(parse_payload),
                Err(EventTooLarge) => {
                    // The rest of the body is never read: the stream ends here (D61).
                    self.pending.clear();
                    let limit = u64::try_from(self.decoder.max_event_bytes()).unwrap_or(u64::MAX);
                    return Some(Read::End(CompactorError::EventTooLarge { limit }));
                }
            };
            if let Some(payload) = payload {
                if let Some(payload) = payload {
                    self.handle(payload);
                }
                continue;
            }
            if self.eof {
                return Some(Read::End(self.remembered.take().unwrap_or_else(|| {
                    CompactorError::stream("stream closed before response.completed")
                })));
            }
            return None;
        }
    }

    /// The events of the response's headers; call before reading the body, so a body event that
    /// repeats the header's model does not report it twice.
    pub(crate) fn header_events(&mut self, headers: &HeaderMap) -> Vec<ResponseEvent> {
        self.mapper.header_events(headers)
    }

    /// Queues `lead` (header events) before `first`, the body's first read, and returns what to
    /// forward first.
    pub(crate) fn lead_with(&mut self, lead: Vec<ResponseEvent>, first: Read) -> Read {
        let mut lead = lead.into_iter();
        let Some(head) = lead.next() else {
            return first;
        };
        self.pending.push_front(first);
        for event in lead.rev() {
            self.pending.push_front(Read::Event(event));
        }
        Read::Event(head)
    }

    fn handle(&mut self, payload: compactor_protocol::StreamEventPayload) {
        if let Some(model) = self.mapper.server_model(&payload) {
            self.pending.push_back(Read::Event(model));
        }
        match map_event(payload) {
            Mapped::Event(event) => self.pending.push_back(Read::Event(event)),
            Mapped::Completed(event) => self.pending.push_back(Read::Completed(event)),
            Mapped::Failure(error) => {
                // The first failure is the cause; later ones are consequences.
                if self.remembered.is_none() {
                    self.remembered = Some(self.redactor.error(error));
                }
            }
            Mapped::Error(error) => {
                self.pending.push_back(Read::End(self.redactor.error(error)));
            }
            Mapped::Ignored => {}
        }
    }
}

/// Reads an SSE body that arrives in `chunks` as [`SseReader::next`] does, up to and including
/// the first terminal read (`Completed` or `End`), without I/O, handing each read to `each` as
/// the transport hands it to the stream: the fuzz targets' and the benches' entry point.
pub(crate) fn decode_chunks(chunks: &[&[u8]], mut each: impl FnMut(Read)) {
    let mut reader = SseReader::new(
        Box::pin(futures::stream::empty()),
        Duration::ZERO,
        crate::config::DEFAULT_MAX_EVENT_BYTES,
    );
    let mut chunks = chunks.iter();
    loop {
        match reader.decoded() {
            Some(read) => {
                let last = matches!(read, Read::Completed(_) | Read::End(_));
                each(read);
                if last {
                    return;
                }
            }
            None => match chunks.next() {
                Some(chunk) => reader.decoder.push(chunk),
                None => reader.eof = true,
            },
        }
    }
}

/// Forwards `first` and then the rest of `reader` into `sender` until the response ends, the
/// consumer goes away, or the stream is cancelled.
pub(crate) async fn pump(mut reader: SseReader, first: Read, sender: StreamSender) {
    let mut next = first;
    loop {
        let (item, last) = match next {
            Read::Event(event) => (Ok(event), false),
            Read::Completed(event) => (Ok(event), true),
            Read::End(error) => (Err(error), true),
        };
        if !sender.send(item).await || last {
            return;
        }
        next = tokio::select! {
            () = sender.cancel.cancelled() => return,
            read = reader.next() => read,
        };
    }
}

#[cfg(test)]
mod tests;
