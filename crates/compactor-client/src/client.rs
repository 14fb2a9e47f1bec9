//! [`ModelClient`] (session-scoped) and [`ModelClientSession`] (turn-scoped).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use compactor_protocol::{
    CompactRequest, CompactResponse, CompactorError, Prompt, ResponseItem, ResponsesApiRequest,
    TurnSettings,
};
use futures::StreamExt;
use reqwest::header::{CONTENT_LENGTH, HeaderValue};

use crate::body::{BodyWriter, HttpBody, JsonPieces};
use crate::config::{ProviderConfig, SecretString, WebsocketMode};
use crate::http::{self, MAX_ERROR_BODY_READ, Read, SseReader, read_limited};
use crate::retry::{AttemptError, ClientNotice, ClientObserver, with_retries};
use crate::sent::{SentReport, SentRequest};
use crate::stream::ResponseStream;
use crate::ws::{self, WsSession};

/// The model client of one agent session: cheap to clone, shared by every turn.
///
/// It owns the HTTP connection pool, the cached WebSocket connection, the sticky HTTP fallback
/// and the window generation. Turns talk through a [`ModelClientSession`].
#[derive(Debug, Clone)]
pub struct ModelClient {
    pub(crate) inner: Arc<ClientInner>,
}

#[derive(Debug)]
pub(crate) struct ClientInner {
    pub(crate) config: ProviderConfig,
    pub(crate) http: reqwest::Client,
    pub(crate) thread_id: String,
    pub(crate) observer: Option<ClientObserver>,
    window_generation: AtomicU64,
    disable_websockets: AtomicBool,
    cached_ws: Mutex<Option<WsSession>>,
}

/// Builds a [`ModelClient`].
#[derive(Debug)]
pub struct ModelClientBuilder {
    config: ProviderConfig,
    thread_id: String,
    observer: Option<ClientObserver>,
}

impl ModelClientBuilder {
    /// Calls `observer` before every retry the client makes (`Reconnecting... n/max`) and when it
    /// falls back from WebSocket to HTTP.
    pub fn observer(mut self, observer: ClientObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The client.
    ///
    /// # Errors
    ///
    /// [`CompactorError::Config`] when the HTTP client cannot be built.
    pub fn build(self) -> Result<ModelClient, CompactorError> {
        // No redirects: the Responses API does not redirect, and a redirect must never carry the
        // conversation to another origin (D62 in docs/decisions.md).
        let http = reqwest::Client::builder()
            .connect_timeout(self.config.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| {
                CompactorError::Config(format!("cannot build the HTTP client: {err}"))
            })?;
        Ok(ModelClient {
            inner: Arc::new(ClientInner {
                config: self.config,
                http,
                thread_id: self.thread_id,
                observer: self.observer,
                window_generation: AtomicU64::new(0),
                disable_websockets: AtomicBool::new(false),
                cached_ws: Mutex::new(None),
            }),
        })
    }
}

impl ModelClient {
    /// A builder for a client of `config`, for the thread `thread_id` (sent as
    /// `x-client-request-id` and used as the prompt cache key).
    pub fn builder(config: ProviderConfig, thread_id: impl Into<String>) -> ModelClientBuilder {
        ModelClientBuilder { config, thread_id: thread_id.into(), observer: None }
    }

    /// The provider configuration.
    pub fn config(&self) -> &ProviderConfig {
        &self.inner.config
    }

    /// The thread id.
    pub fn thread_id(&self) -> &str {
        &self.inner.thread_id
    }

    /// A turn-scoped session; it takes the cached WebSocket connection, if any.
    pub fn new_session(&self) -> ModelClientSession {
        let ws = self.inner.cached_ws.lock().unwrap_or_else(PoisonError::into_inner).take();
        ModelClientSession { client: self.clone(), ws }
    }

    /// Whether requests go over WebSocket (configured and not fallen back to HTTP).
    pub fn uses_websocket(&self) -> bool {
        self.inner.config.websocket == WebsocketMode::Enabled
            && !self.inner.disable_websockets.load(Ordering::Acquire)
    }

    /// Switches the client to HTTP for the rest of its life (sticky fallback) and tells the
    /// observer. Returns whether this call made the switch.
    pub fn fall_back_to_http(&self, reason: &str) -> bool {
        let switched =
            self.uses_websocket() && !self.inner.disable_websockets.swap(true, Ordering::AcqRel);
        if switched {
            tracing::warn!(reason, "falling back from WebSockets to HTTPS transport");
            self.inner.cached_ws.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(observer) = &self.inner.observer {
                observer.notify(&ClientNotice::FallbackToHttp { reason: reason.to_owned() });
            }
        }
        switched
    }

    /// The number of compactions installed in this thread; it keys the context window.
    pub fn window_generation(&self) -> u64 {
        self.inner.window_generation.load(Ordering::Acquire)
    }

    /// Sets the generation (on resume: the number of `compacted` rollout lines).
    pub fn set_window_generation(&self, generation: u64) {
        self.inner.window_generation.store(generation, Ordering::Release);
    }

    /// Bumps the generation after an installed compaction and forgets the cached WebSocket
    /// request baseline, whose input no longer matches the history.
    pub fn advance_window_generation(&self) -> u64 {
        if let Some(ws) =
            self.inner.cached_ws.lock().unwrap_or_else(PoisonError::into_inner).as_mut()
        {
            ws.forget_baseline();
        }
        self.inner.window_generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    fn key(&self) -> Result<Option<SecretString>, CompactorError> {
        self.inner.config.key.resolve()
    }

    /// The `/responses` request for `prompt`, as this client builds it before sending (D80).
    fn responses_request<'p>(
        &self,
        prompt: &'p Prompt<'_>,
        settings: &'p TurnSettings,
    ) -> ResponsesApiRequest<'p> {
        let mut request = ResponsesApiRequest::from_prompt(prompt, settings);
        request.input = self.inner.config.pass_through.filter_input(&prompt.input);
        request.prompt_cache_key = Some(self.inner.thread_id.clone());
        request
    }

    /// The `/responses/compact` request for `prompt`, as this client builds it before sending.
    fn compact_request<'p>(
        &self,
        prompt: &'p Prompt<'_>,
        settings: &'p TurnSettings,
    ) -> CompactRequest<'p> {
        let mut request = CompactRequest::from_prompt(prompt, settings);
        request.input = self.inner.config.pass_through.filter_input(&prompt.input);
        request.prompt_cache_key = Some(self.inner.thread_id.clone());
        request
    }

    /// The body an HTTP `POST /responses` of `prompt` would carry, built exactly as a request
    /// that goes out is (the logical request of D80), without sending anything: what a preview
    /// shows.
    ///
    /// # Errors
    ///
    /// A prompt that cannot be serialized.
    pub fn responses_body(
        &self,
        prompt: &Prompt<'_>,
        settings: &TurnSettings,
    ) -> Result<Bytes, CompactorError> {
        let mut request = self.responses_request(prompt, settings);
        request.stream = Some(true);
        Ok(Bytes::from(json_body(&request)?))
    }

    /// The body a `POST /responses/compact` of `prompt` would carry, without sending anything.
    ///
    /// # Errors
    ///
    /// A prompt that cannot be serialized.
    pub fn compact_body(
        &self,
        prompt: &Prompt<'_>,
        settings: &TurnSettings,
    ) -> Result<Bytes, CompactorError> {
        Ok(Bytes::from(json_body(&self.compact_request(prompt, settings))?))
    }

    /// Compacts `prompt.input` with `POST /responses/compact` (D8) and returns the
    /// new history. An empty input returns an empty history without a request.
    ///
    /// # Errors
    ///
    /// The mapped HTTP failure after the client's retries (D10), a `Stream` error when the answer
    /// is not a compaction response, or [`CompactorError::EventTooLarge`] when it is longer than
    /// [`ProviderConfig::max_event_bytes`].
    pub async fn compact(
        &self,
        prompt: &Prompt<'_>,
        settings: &TurnSettings,
    ) -> Result<Vec<ResponseItem>, CompactorError> {
        self.compact_with_report(prompt, settings, &mut |_| {}).await
    }

    /// As [`ModelClient::compact`], and calls `report` with the body once it is built, before it
    /// is sent (not at all for an empty input).
    ///
    /// # Errors
    ///
    /// As [`ModelClient::compact`].
    pub async fn compact_with_report(
        &self,
        prompt: &Prompt<'_>,
        settings: &TurnSettings,
        report: SentReport<'_>,
    ) -> Result<Vec<ResponseItem>, CompactorError> {
        if prompt.input.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.key()?;
        let redactor = self.inner.config.redactor(key.as_ref());
        Box::pin(self.compact_with(prompt, settings, key.as_ref(), &redactor, report))
            .await
            .map_err(|error| redactor.error(error))
    }

    async fn compact_with(
        &self,
        prompt: &Prompt<'_>,
        settings: &TurnSettings,
        key: Option<&SecretString>,
        redactor: &crate::redact::Redactor,
        report: SentReport<'_>,
    ) -> Result<Vec<ResponseItem>, CompactorError> {
        let config = &self.inner.config;
        let request = self.compact_request(prompt, settings);
        let body = HttpBody::new(JsonPieces::compact(&request)?);
        report(&SentRequest::http(&body));
        let mut headers =
            http::request_headers(config, key, &self.inner.thread_id, "application/json")?;
        // The body is a stream: its length is given, so it is not sent chunked.
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        let url = config.url("responses/compact");
        let max = config.max_event_bytes;
        let text = with_retries(&config.retry, self.inner.observer.as_ref(), || async {
            let (wire, writer) = body.attempt().map_err(AttemptError::final_error)?;
            let sent = self
                .inner
                .http
                .post(&url)
                .headers(headers.clone())
                .timeout(config.request_timeout)
                .body(wire)
                .send();
            let response = while_writing(sent, writer)
                .await?
                .map_err(|err| http::transport_error(&err, redactor))?;
            let status = response.status();
            let response_headers = response.headers().clone();
            let limit = if status.is_success() { max } else { MAX_ERROR_BODY_READ };
            let (bytes, cut) = read_limited(response, limit)
                .await
                .map_err(|err| http::transport_error(&err, redactor))?;
            if !status.is_success() {
                let text = String::from_utf8_lossy(&bytes);
                return Err(http::status_error(status, &response_headers, &text, redactor));
            }
            if cut {
                // The answer is one event: past the cap it is refused, not retried (D61).
                let limit = u64::try_from(max).unwrap_or(u64::MAX);
                return Err(AttemptError::final_error(CompactorError::EventTooLarge { limit }));
            }
            Ok(bytes)
        })
        .await?;
        let parsed: CompactResponse = serde_json::from_slice(&text).map_err(|err| {
            redactor.error(CompactorError::stream(format!(
                "failed to parse the compact response: {err}"
            )))
        })?;
        Ok(parsed.output)
    }
}

/// Awaits `sent`, a request whose body `writer` writes, while the writer runs. A body that could
/// not be written fails the attempt for good (writing it again would fail the same way); once
/// `sent` is done, the writer is dropped, which ends a body the request no longer reads.
async fn while_writing<T>(
    sent: impl Future<Output = T>,
    writer: BodyWriter<'_>,
) -> Result<T, AttemptError> {
    let writing = writer.write();
    tokio::pin!(sent, writing);
    let mut written = false;
    loop {
        tokio::select! {
            outcome = &mut sent => return Ok(outcome),
            result = &mut writing, if !written => {
                result.map_err(AttemptError::final_error)?;
                written = true;
            }
        }
    }
}

/// The model client of one turn. It carries the WebSocket connection and its incremental-request
/// baseline; dropping it gives them back to the [`ModelClient`] for the next turn.
#[derive(Debug)]
pub struct ModelClientSession {
    client: ModelClient,
    ws: Option<WsSession>,
}

impl ModelClientSession {
    /// The client this session belongs to.
    pub fn client(&self) -> &ModelClient {
        &self.client
    }

    /// Streams one response for `prompt`.
    ///
    /// Failures before the first event (connect errors, 5xx, 429, idle timeouts) are retried per
    /// D10 and returned as `Err` once final; failures after events have flowed arrive as
    /// the stream's last item, for the caller to retry if it is safe.
    ///
    /// # Errors
    ///
    /// The final error of opening the stream.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the request; a WebSocket connection in use is discarded.
    pub async fn stream(
        &mut self,
        prompt: &Prompt<'_>,
        settings: &TurnSettings,
    ) -> Result<ResponseStream, CompactorError> {
        self.stream_with_report(prompt, settings, &mut |_| {}).await
    }

    /// As [`ModelClientSession::stream`], and calls `report` with what is sent each time a
    /// request goes out: the HTTP body once (its retries resend the same bytes), or each
    /// WebSocket `response.create`. The last call describes the request the stream answers.
    ///
    /// # Errors
    ///
    /// As [`ModelClientSession::stream`].
    ///
    /// # Cancel safety
    ///
    /// As [`ModelClientSession::stream`].
    pub async fn stream_with_report(
        &mut self,
        prompt: &Prompt<'_>,
        settings: &TurnSettings,
        report: SentReport<'_>,
    ) -> Result<ResponseStream, CompactorError> {
        // Every error that leaves the client is redacted here once more, whatever made it.
        let redactor = self.client.inner.config.redactor(self.client.key().ok().flatten().as_ref());
        // Boxed: the transports' futures are large, and every caller's future would carry them.
        Box::pin(self.stream_inner(prompt, settings, report))
            .await
            .map_err(|error| redactor.error(error))
    }

    async fn stream_inner(
        &mut self,
        prompt: &Prompt<'_>,
        settings: &TurnSettings,
        report: SentReport<'_>,
    ) -> Result<ResponseStream, CompactorError> {
        let mut request = self.client.responses_request(prompt, settings);
        if self.client.uses_websocket() {
            let reason = match ws::stream(self, &mut request, &mut *report).await {
                Ok(stream) => return Ok(stream),
                Err(ws::WsFailure::UpgradeRequired) => {
                    "the server answered the WebSocket upgrade with 426 Upgrade Required".to_owned()
                }
                Err(ws::WsFailure::Exhausted(error)) => {
                    format!("WebSocket retries exhausted: {error}")
                }
                Err(ws::WsFailure::Error(error)) => return Err(error),
            };
            self.client.fall_back_to_http(&reason);
            self.ws = None;
        }
        request.stream = Some(true);
        // The lengths given for the prompt's items are the request's when it left none out.
        let lens =
            prompt.input_json_lens.as_deref().filter(|_| request.input.len() == prompt.input.len());
        self.stream_http(&request, lens, report).await
    }

    /// Sends `request` over HTTP, its body's length taken from `lens` when they are given
    /// (D169). A length that turns out wrong as its item is written fails the attempt at once,
    /// and the request is sent again with its length counted.
    async fn stream_http(
        &mut self,
        request: &ResponsesApiRequest<'_>,
        mut lens: Option<&[u64]>,
        report: SentReport<'_>,
    ) -> Result<ResponseStream, CompactorError> {
        loop {
            let body = HttpBody::with_lens(JsonPieces::body(request)?, lens.take());
            match self.stream_http_body(&body, report).await {
                Err(error) if body.lens_were_wrong() => {
                    tracing::warn!(
                        %error,
                        "an input item's JSON length was given wrong; sending the request again \
                         with its length counted"
                    );
                }
                outcome => return outcome,
            }
        }
    }

    async fn stream_http_body(
        &mut self,
        body: &HttpBody<'_>,
        report: SentReport<'_>,
    ) -> Result<ResponseStream, CompactorError> {
        report(&SentRequest::http(body));
        let inner = &self.client.inner;
        let config = &inner.config;
        let key = self.client.key()?;
        let redactor = config.redactor(key.as_ref());
        let mut headers =
            http::request_headers(config, key.as_ref(), &inner.thread_id, "text/event-stream")?;
        // The body is a stream: its length is given, so it is not sent chunked.
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        let url = config.url("responses");
        let idle = config.stream_idle_timeout;
        let (reader, first) = with_retries(&config.retry, inner.observer.as_ref(), || async {
            // The idle timeout also bounds the wait for the response head (D10).
            let (wire, writer) = body.attempt().map_err(AttemptError::final_error)?;
            let sent = inner.http.post(&url).headers(headers.clone()).body(wire).send();
            let written = while_writing(tokio::time::timeout(idle, sent), writer).await;
            // The connection may report the body cut short before the writer says why: a wrong
            // length fails every attempt alike, so none is retried.
            if body.lens_were_wrong() {
                return Err(AttemptError::final_error(CompactorError::Json(
                    "an input item's JSON length was given wrong".to_owned(),
                )));
            }
            let response = match written? {
                Ok(response) => response.map_err(|err| http::transport_error(&err, &redactor))?,
                Err(_elapsed) => {
                    return Err(AttemptError::by_class(CompactorError::Timeout(
                        "idle timeout waiting for the response headers".to_owned(),
                    )));
                }
            };
            let status = response.status();
            let response_headers = response.headers().clone();
            if !status.is_success() {
                let read = read_limited(response, MAX_ERROR_BODY_READ);
                let text = match tokio::time::timeout(idle, read).await {
                    Ok(Ok((bytes, _))) => String::from_utf8_lossy(&bytes).into_owned(),
                    Ok(Err(_)) | Err(_) => String::new(),
                };
                return Err(http::status_error(status, &response_headers, &text, &redactor));
            }
            let body = response.bytes_stream().boxed();
            let mut reader =
                SseReader::new(body, idle, config.max_event_bytes).redacting(redactor.clone());
            let lead = reader.header_events(&response_headers);
            match reader.next().await {
                Read::End(error) => Err(AttemptError::by_class(error)),
                first => {
                    let first = reader.lead_with(lead, first);
                    Ok((reader, first))
                }
            }
        })
        .await?;
        let (stream, sender) = ResponseStream::channel(redactor);
        tokio::spawn(http::pump(reader, first, sender));
        Ok(stream)
    }

    /// Sends `{"type":"response.processed","response_id":ID}` on this session's WebSocket. A
    /// no-op over HTTP or without a connection; a failed send is logged, never an error.
    pub async fn send_response_processed(&mut self, response_id: &str) {
        ws::send_response_processed(self, response_id).await;
    }

    /// Drops the WebSocket connection and its baseline; the next request reconnects.
    pub fn reset_websocket_session(&mut self) {
        self.ws = None;
    }

    pub(crate) fn ws_mut(&mut self) -> &mut Option<WsSession> {
        &mut self.ws
    }
}

impl Drop for ModelClientSession {
    fn drop(&mut self) {
        if let Some(ws) = self.ws.take()
            && ws.is_reusable()
            && self.client.uses_websocket()
        {
            *self.client.inner.cached_ws.lock().unwrap_or_else(PoisonError::into_inner) = Some(ws);
        }
    }
}

/// `value` as JSON in a buffer sized exactly once: a multi-megabyte history must not be copied
/// by the buffer doubling as it grows.
pub(crate) fn json_body(value: &impl serde::Serialize) -> Result<Vec<u8>, CompactorError> {
    let len = usize::try_from(compactor_protocol::tokens::json_len(value)).unwrap_or(0);
    let mut body = Vec::with_capacity(len);
    serde_json::to_writer(&mut body, value)?;
    Ok(body)
}
