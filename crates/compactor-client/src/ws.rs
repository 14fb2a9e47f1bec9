//! The WebSocket transport (D45, D13, D26): one connection per client session,
//! reused across turns, with incremental `previous_response_id` requests.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use compactor_protocol::{
    CompactorError, Fingerprint, FingerprintKey, ResponseEvent, ResponseItem, ResponsesApiRequest,
    StreamEventPayload, WsClientMessage,
};
use futures::{SinkExt, StreamExt};
use http::HeaderMap;
use tokio::net::TcpStream;
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data as OpData, OpCode};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::body::JsonPieces;
use crate::client::ModelClientSession;
use crate::config::Prewarm;
use crate::events::{EventMapper, Mapped, map_event, parse_payload};
use crate::http::{self as transport, Read};
use crate::redact::Redactor;
use crate::retry::{AttemptError, Retry, next_retry};
use crate::sent::{SentReport, SentRequest};
use crate::stream::{ResponseStream, StreamSender};

/// The beta header value of the Responses WebSocket protocol.
pub const OPENAI_BETA_WEBSOCKETS: &str = "responses_websockets=2026-02-06";

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The handshake answer's headers that become events (D45).
const EVENT_HEADERS: [&str; 4] =
    ["openai-model", "x-openai-model", "x-models-etag", "x-reasoning-included"];

/// A connection. Once it must not carry another request (an error, or a response abandoned
/// half-read) its socket is dropped at once, without waiting for a close handshake.
#[derive(Debug)]
struct Connection {
    /// `None` once broken.
    socket: Option<Socket>,
}

impl Connection {
    fn is_broken(&self) -> bool {
        self.socket.is_none()
    }

    /// Drops the socket: the server sees the connection end, and the next request reconnects.
    fn break_off(&mut self) {
        self.socket = None;
    }
}

/// The last request sent on a connection, as the baseline of the next incremental request
/// (D130): its settings, and its input as one fingerprint per item, never a copy of the items.
#[derive(Debug)]
struct Baseline {
    /// Everything but the input (which is empty here), to compare settings with.
    settings: ResponsesApiRequest<'static>,
    /// The fingerprint of each input item, in order.
    input: Vec<Fingerprint>,
}

impl Baseline {
    fn new(request: &ResponsesApiRequest<'_>, input: Vec<Fingerprint>) -> Self {
        Self { settings: settings_of(request), input }
    }
}

/// The last completed response on a connection: with the last request, the baseline of the next
/// incremental request.
#[derive(Debug, Clone)]
struct LastResponse {
    response_id: String,
    /// The fingerprint of each output item, in order.
    added: Vec<Fingerprint>,
    /// The position in `added` of the last `compaction` item, when the server compacted.
    compaction_at: Option<usize>,
}

/// The fingerprints of a response's output items as they are read.
#[derive(Debug)]
struct OutputPrints {
    key: FingerprintKey,
    added: Vec<Fingerprint>,
    compaction_at: Option<usize>,
}

impl OutputPrints {
    fn new(key: FingerprintKey) -> Self {
        Self { key, added: Vec::new(), compaction_at: None }
    }

    fn push(&mut self, item: &ResponseItem) {
        if matches!(item, ResponseItem::Compaction { .. }) {
            self.compaction_at = Some(self.added.len());
        }
        self.added.push(item.fingerprint(self.key));
    }

    /// The completed response, leaving this empty for the next one.
    fn finish(&mut self, response_id: &str) -> LastResponse {
        LastResponse {
            response_id: response_id.to_owned(),
            added: std::mem::take(&mut self.added),
            compaction_at: self.compaction_at.take(),
        }
    }
}

/// The incremental-request bookkeeping of one connection without the connection: what the
/// transport does around each request, for the benches (`crate::bench::WebsocketTurns`).
#[derive(Debug)]
pub(crate) struct Bookkeeping {
    key: FingerprintKey,
    last_request: Option<Baseline>,
    last_response: Option<LastResponse>,
}

impl Bookkeeping {
    pub(crate) fn new() -> Self {
        Self { key: random_key(), last_request: None, last_response: None }
    }

    /// The `response.create` message for `request`, as [`attempt`] builds it; the baseline it
    /// leaves replaces the last one.
    pub(crate) fn send(
        &mut self,
        request: &ResponsesApiRequest<'_>,
    ) -> Result<Bytes, CompactorError> {
        let Create { message, baseline } = create_message(
            self.last_request.as_ref(),
            self.last_response.take(),
            request,
            self.key,
        );
        let text = JsonPieces::create(&message)?.collect()?;
        self.last_request = baseline;
        Ok(Bytes::from(text))
    }

    /// Records a completed response with `output`, as the reader does.
    pub(crate) fn complete(&mut self, response_id: &str, output: &[ResponseItem]) {
        let mut prints = OutputPrints::new(self.key);
        for item in output {
            prints.push(item);
        }
        self.last_response = Some(prints.finish(response_id));
    }
}

/// A turn's WebSocket state: the connection and the incremental-request baseline.
#[derive(Debug)]
pub(crate) struct WsSession {
    connection: Arc<Mutex<Connection>>,
    /// The handshake answer's headers that become events at the start of each stream (D45).
    handshake_headers: HeaderMap,
    /// The secret key of this connection's fingerprints.
    key: FingerprintKey,
    last_request: Option<Baseline>,
    last_response: Arc<StdMutex<Option<LastResponse>>>,
}

impl WsSession {
    fn new(socket: Socket, handshake_headers: HeaderMap) -> Self {
        Self {
            connection: Arc::new(Mutex::new(Connection { socket: Some(socket) })),
            handshake_headers,
            key: random_key(),
            last_request: None,
            last_response: Arc::new(StdMutex::new(None)),
        }
    }

    /// Whether the connection may serve another turn. A connection still held by a stream counts
    /// as reusable: the next request waits for the lock and checks again.
    pub(crate) fn is_reusable(&self) -> bool {
        match self.connection.try_lock() {
            Ok(connection) => !connection.is_broken(),
            Err(_) => true,
        }
    }

    /// Forgets the baseline; the next request is a full `response.create`.
    pub(crate) fn forget_baseline(&mut self) {
        self.last_request = None;
        *self.last_response.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// How a WebSocket attempt ended when it produced no stream.
#[derive(Debug)]
pub(crate) enum WsFailure {
    /// The server answered the upgrade with 426: use HTTP from now on.
    UpgradeRequired,
    /// Retryable failures outlasted the retries: the caller falls back to HTTP.
    Exhausted(CompactorError),
    /// A final error no retry or transport can fix (e.g. 400, 401).
    Error(CompactorError),
}

/// Streams `request` over the session's WebSocket, connecting (and prewarming) when needed,
/// retrying failures before the first event on a fresh connection with a full create.
pub(crate) async fn stream(
    session: &mut ModelClientSession,
    request: &mut ResponsesApiRequest<'_>,
    report: SentReport<'_>,
) -> Result<ResponseStream, WsFailure> {
    request.stream = None;
    let client = session.client().clone();
    let config = &client.inner.config;
    let mut retries = 0u32;
    loop {
        let failure = match attempt(session, request, &mut *report).await {
            Ok(stream) => return Ok(stream),
            Err(WsAttempt::UpgradeRequired) => return Err(WsFailure::UpgradeRequired),
            Err(WsAttempt::Failed(failure)) => failure,
        };
        // After any error the next request reconnects and sends a full create.
        *session.ws_mut() = None;
        let retryable = match failure.retry {
            Retry::After(_) => true,
            Retry::Never => false,
        };
        match next_retry(&config.retry, client.inner.observer.as_ref(), &mut retries, failure) {
            Ok(delay) => tokio::time::sleep(delay).await,
            Err(error) if retryable => return Err(WsFailure::Exhausted(error)),
            Err(error) => return Err(WsFailure::Error(error)),
        }
    }
}

enum WsAttempt {
    UpgradeRequired,
    Failed(AttemptError),
}

impl From<AttemptError> for WsAttempt {
    fn from(failure: AttemptError) -> Self {
        WsAttempt::Failed(failure)
    }
}

async fn attempt(
    session: &mut ModelClientSession,
    request: &ResponsesApiRequest<'_>,
    report: SentReport<'_>,
) -> Result<ResponseStream, WsAttempt> {
    let client = session.client().clone();
    let config = &client.inner.config;
    // The lock waits for a stream still reading from the connection; only then is it known
    // whether that stream finished cleanly or left the connection broken.
    let reused = match session.ws_mut().as_ref() {
        Some(ws) => {
            let guard = ws.connection.clone().lock_owned().await;
            (!guard.is_broken()).then_some(guard)
        }
        None => None,
    };
    let guard = match reused {
        Some(guard) => guard,
        None => {
            // A new connection starts without a baseline: the first request is a full create.
            let (socket, handshake_headers) = connect(session).await?;
            let ws = WsSession::new(socket, handshake_headers);
            let connection = ws.connection.clone();
            *session.ws_mut() = Some(ws);
            if config.prewarm == Prewarm::On {
                prewarm(session, request).await?;
            }
            connection.lock_owned().await
        }
    };
    let Some(ws) = session.ws_mut().as_mut() else {
        return Err(
            AttemptError::by_class(CompactorError::stream("websocket session missing")).into()
        );
    };
    let last_response = ws.last_response.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let Create { message, baseline } =
        create_message(ws.last_request.as_ref(), last_response, request, ws.key);
    let pieces = JsonPieces::create(&message).map_err(AttemptError::final_error)?;
    ws.last_request = baseline;
    *ws.last_response.lock().unwrap_or_else(PoisonError::into_inner) = None;
    // The reader owns the connection from the send on: if this future is dropped before the
    // response is read to its end, the connection is broken off, never reused with a stale
    // answer on its way.
    let mut reader =
        WsReader::new(guard, config.stream_idle_timeout, ws.last_response.clone(), ws.key)
            .redacting(redactor_of(&client));
    let len = send_text(&mut reader.guard, pieces, config.stream_idle_timeout).await?;
    report(&SentRequest::websocket(request, &message, len));
    let lead = reader.mapper.header_events(&ws.handshake_headers);
    let first = match reader.next().await {
        Read::End(error) => {
            reader.guard.break_off();
            return Err(reader.failure(error).into());
        }
        first => reader.lead_with(lead, first),
    };
    let (stream, sender) = ResponseStream::channel(redactor_of(&client));
    tokio::spawn(pump(reader, first, sender));
    Ok(stream)
}

/// Sends a `generate: false` request with the real request's settings and no input, and waits
/// for its completion, so the first real request can go incrementally.
async fn prewarm(
    session: &mut ModelClientSession,
    request: &ResponsesApiRequest<'_>,
) -> Result<(), WsAttempt> {
    let idle = session.client().inner.config.stream_idle_timeout;
    let key = redactor_of(session.client());
    let Some(ws) = session.ws_mut().as_mut() else {
        return Ok(());
    };
    let mut warm = settings_of(request);
    warm.generate = Some(false);
    let pieces = JsonPieces::create(&warm).map_err(AttemptError::final_error)?;
    let guard = ws.connection.clone().lock_owned().await;
    let mut reader = WsReader::new(guard, idle, ws.last_response.clone(), ws.key).redacting(key);
    send_text(&mut reader.guard, pieces, idle).await?;
    loop {
        match reader.next().await {
            Read::Event(_) => {}
            Read::Completed(_) => break,
            Read::End(error) => {
                reader.guard.break_off();
                return Err(reader.failure(error).into());
            }
        }
    }
    warm.generate = None;
    ws.last_request = Some(Baseline { settings: warm, input: Vec::new() });
    Ok(())
}

/// A `response.create` message, and the baseline it leaves for the next request.
struct Create<'r> {
    /// The request the message creates (incremental, or the whole request).
    message: ResponsesApiRequest<'r>,
    /// `None` after a request that ends with a compaction trigger: no request extends it (the
    /// next one starts from the compacted history), so its input is not even fingerprinted.
    baseline: Option<Baseline>,
}

/// The `response.create` to send: incremental when the new input extends the last request's
/// input plus the last response's output (or, after a server-side compaction, starts with the
/// compaction item and what followed it) and nothing else changed; full otherwise. Items are
/// compared by fingerprint (D130).
fn create_message<'r>(
    baseline: Option<&Baseline>,
    last_response: Option<LastResponse>,
    request: &'r ResponsesApiRequest<'_>,
    key: FingerprintKey,
) -> Create<'r> {
    let keep = !request.input.last().is_some_and(|item| item.is_compaction_trigger());
    let (prefix, prints) = incremental_prefix(baseline, last_response.as_ref(), request, keep, key);
    let message = match prefix.zip(last_response) {
        Some((prefix_len, response)) => {
            let mut suffix = request.reborrow();
            suffix.input = Cow::Borrowed(&request.input[prefix_len..]);
            suffix.previous_response_id = Some(response.response_id);
            suffix
        }
        None => request.reborrow(),
    };
    Create { message, baseline: keep.then(|| Baseline::new(request, prints)) }
}

/// How much of `request`'s input the server already holds after `baseline` and `response`
/// (`None`: send it whole), and the fingerprints of the input: all of them when `keep` (they
/// become the next baseline), else only as many as the comparison needed.
fn incremental_prefix(
    baseline: Option<&Baseline>,
    response: Option<&LastResponse>,
    request: &ResponsesApiRequest<'_>,
    keep: bool,
    key: FingerprintKey,
) -> (Option<usize>, Vec<Fingerprint>) {
    // What the server holds, as fingerprints: `head` then `tail`.
    let held = match (baseline, response) {
        (Some(baseline), Some(response)) if same_settings(&baseline.settings, request) => {
            match response.compaction_at {
                // After a server-side compaction the server's state is the compaction item and
                // what followed it, so a request that starts there chains (nothing pruned by
                // hand).
                Some(at) => Some((&[][..], &response.added[at..])),
                None => Some((&baseline.input[..], &response.added[..])),
            }
        }
        _ => None,
    };
    let input = &request.input;
    let needed = held.map(|(head, tail)| head.len() + tail.len());
    let count = if keep { input.len() } else { needed.filter(|&n| input.len() >= n).unwrap_or(0) };
    let prints: Vec<Fingerprint> =
        input[..count].iter().map(|item| item.fingerprint(key)).collect();
    let prefix = held.and_then(|(head, tail)| {
        let len = head.len() + tail.len();
        let extends = prints.len() >= len
            && prints[..head.len()] == *head
            && prints[head.len()..len] == *tail;
        extends.then_some(len)
    });
    (prefix, prints)
}

/// Whether two requests agree on everything but their input.
fn same_settings(a: &ResponsesApiRequest<'_>, b: &ResponsesApiRequest<'_>) -> bool {
    a.model == b.model
        && a.instructions == b.instructions
        && a.tools == b.tools
        && a.tool_choice == b.tool_choice
        && a.parallel_tool_calls == b.parallel_tool_calls
        && a.reasoning == b.reasoning
        && a.store == b.store
        && a.include == b.include
        && a.service_tier == b.service_tier
        && a.prompt_cache_key == b.prompt_cache_key
        && a.text == b.text
        && a.context_management == b.context_management
        && a.client_metadata == b.client_metadata
}

/// `request` without its input (and without `previous_response_id`), owned: never a copy of the
/// history.
fn settings_of(request: &ResponsesApiRequest<'_>) -> ResponsesApiRequest<'static> {
    ResponsesApiRequest {
        model: Cow::Owned(request.model.clone().into_owned()),
        instructions: Cow::Owned(request.instructions.clone().into_owned()),
        input: Cow::Owned(Vec::new()),
        tools: Cow::Owned(request.tools.to_vec()),
        tool_choice: Cow::Owned(request.tool_choice.clone().into_owned()),
        parallel_tool_calls: request.parallel_tool_calls,
        reasoning: request.reasoning.clone(),
        store: request.store,
        stream: request.stream,
        include: request.include.clone(),
        service_tier: request.service_tier.clone(),
        prompt_cache_key: request.prompt_cache_key.clone(),
        text: request.text.clone(),
        context_management: request.context_management.clone(),
        previous_response_id: None,
        generate: request.generate,
        client_metadata: request.client_metadata.clone(),
    }
}

/// A fresh secret key for a connection's fingerprints: two outputs of the standard library's
/// randomly keyed SipHash, which draws its keys from the operating system.
fn random_key() -> FingerprintKey {
    let state = RandomState::new();
    FingerprintKey::new(state.hash_one(0u8), state.hash_one(1u8))
}

/// Opens a connection; returns it with the handshake answer's headers that carry events.
async fn connect(session: &ModelClientSession) -> Result<(Socket, HeaderMap), WsAttempt> {
    let client = session.client();
    let config = &client.inner.config;
    let key = config.key.resolve().map_err(AttemptError::final_error)?;
    let redactor = config.redactor(key.as_ref());
    // The URL goes without userinfo; its credentials become a `Basic` header, as over HTTP.
    let url = config.websocket_url();
    let mut request = url.as_str().into_client_request().map_err(|err| {
        AttemptError::final_error(CompactorError::Config(format!("invalid websocket url: {err}")))
    })?;
    let headers = transport::request_headers(
        config,
        key.as_ref(),
        &client.inner.thread_id,
        "application/json",
    )
    .map_err(AttemptError::final_error)?;
    for (name, value) in &headers {
        if name != ::http::header::CONTENT_TYPE {
            request.headers_mut().insert(name.clone(), value.clone());
        }
    }
    if key.is_none()
        && let Some(basic) = config.basic_credentials()
        && let Ok(mut value) = ::http::HeaderValue::from_str(&format!("Basic {basic}"))
    {
        value.set_sensitive(true);
        request.headers_mut().insert(::http::header::AUTHORIZATION, value);
    }
    request
        .headers_mut()
        .insert("openai-beta", ::http::HeaderValue::from_static(OPENAI_BETA_WEBSOCKETS));
    // One message (and so one frame) holds at most one event: the client's cap (D61).
    let max = Some(config.max_event_bytes);
    let ws_config = WebSocketConfig::default().max_message_size(max).max_frame_size(max);
    // Boxed: with rustls the connect future is several kilobytes, and every caller's `stream()`
    // future would carry it.
    let connecting =
        Box::pin(tokio_tungstenite::connect_async_with_config(request, Some(ws_config), true));
    match tokio::time::timeout(config.websocket_connect_timeout, connecting).await {
        Err(_) => Err(AttemptError::by_class(CompactorError::Timeout(
            "websocket connect timed out".to_owned(),
        ))
        .into()),
        Ok(Ok((socket, response))) => {
            let mut kept = HeaderMap::new();
            for name in EVENT_HEADERS {
                if let Some(value) = response.headers().get(name) {
                    kept.insert(name, value.clone());
                }
            }
            Ok((socket, kept))
        }
        Ok(Err(tungstenite::Error::Http(response))) => {
            let status = response.status();
            if status.as_u16() == 426 {
                return Err(WsAttempt::UpgradeRequired);
            }
            let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            Err(transport::status_error(status, response.headers(), &body, &redactor).into())
        }
        Ok(Err(err)) => Err(AttemptError {
            error: redactor.error(CompactorError::ConnectionFailed(format!(
                "websocket connect failed: {err}"
            ))),
            retry: Retry::After(None),
        }
        .into()),
    }
}

/// Sends the text `pieces` write as one message, a fragment per piece (RFC 6455, section 5.4), and
/// returns its length in bytes.
///
/// Each piece is written while the one before it is on its way (D165), so a multi-megabyte
/// request is never whole in memory, and the WebSocket writer, which masks each frame into its
/// own buffer, copies one fragment at a time.
async fn send_text(
    connection: &mut Connection,
    mut pieces: JsonPieces<'_>,
    idle: Duration,
) -> Result<u64, AttemptError> {
    let Some(socket) = connection.socket.as_mut() else {
        return Err(AttemptError::by_class(CompactorError::stream(
            "the websocket connection is closed",
        )));
    };
    let sent = async {
        // Sent as raw frames: a message's text is JSON written by serde_json, already UTF-8, and
        // is not checked again (D163). Fragments end between items, never inside a character,
        // and receivers check the text of the whole message anyway.
        let mut opcode = OpData::Text;
        loop {
            let (piece, more) = pieces.next_piece().map_err(SendError::Json)?;
            let frame = Frame::message(Bytes::from(piece), OpCode::Data(opcode), !more);
            socket.feed(Message::Frame(frame)).await.map_err(SendError::Socket)?;
            if !more {
                break;
            }
            opcode = OpData::Continue;
        }
        socket.flush().await.map_err(SendError::Socket)
    };
    let failure = match tokio::time::timeout(idle, sent).await {
        Ok(Ok(())) => return Ok(pieces.written()),
        // Half a message went out: the connection cannot carry another one.
        Ok(Err(SendError::Json(error))) => AttemptError::final_error(error),
        Ok(Err(SendError::Socket(err))) => AttemptError::by_class(CompactorError::stream(format!(
            "error sending websocket request: {err}"
        ))),
        Err(_) => {
            AttemptError::by_class(CompactorError::stream("idle timeout sending websocket request"))
        }
    };
    connection.break_off();
    Err(failure)
}

/// Why a message could not be sent whole.
enum SendError {
    Json(CompactorError),
    Socket(tungstenite::Error),
}

/// Reads one response's events from a locked connection. Dropped before the response was read
/// to its end (an abandoned stream, a cancelled request), it breaks the connection off.
struct WsReader {
    guard: OwnedMutexGuard<Connection>,
    mapper: EventMapper,
    idle_timeout: Duration,
    /// The fingerprints of the output items read so far.
    output: OutputPrints,
    last_response: Arc<StdMutex<Option<LastResponse>>>,
    pending: VecDeque<Read>,
    /// The secrets redacted from error frames that echo them.
    redactor: Redactor,
    /// The retry decision of the wrapped error frame that ended the read, if one did: it maps
    /// like an HTTP answer (D45), so a 429 or 503 before the first event is retried as over
    /// HTTP (D10).
    rejected: Option<Retry>,
    /// The response was read to its `response.completed`.
    completed: bool,
}

impl Drop for WsReader {
    fn drop(&mut self) {
        if !self.completed {
            self.guard.break_off();
        }
    }
}

impl WsReader {
    fn new(
        guard: OwnedMutexGuard<Connection>,
        idle_timeout: Duration,
        last_response: Arc<StdMutex<Option<LastResponse>>>,
        key: FingerprintKey,
    ) -> Self {
        Self {
            guard,
            mapper: EventMapper::default(),
            idle_timeout,
            output: OutputPrints::new(key),
            last_response,
            pending: VecDeque::new(),
            redactor: Redactor::default(),
            rejected: None,
            completed: false,
        }
    }

    /// Redacts `key` from the error frames this reader maps.
    fn redacting(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// The failure of an attempt whose first read ended with `error`: retried per the wrapped
    /// error frame's status when a frame ended it, by the error's class otherwise.
    fn failure(&mut self, error: CompactorError) -> AttemptError {
        match self.rejected.take() {
            Some(retry) => AttemptError { error, retry },
            None => AttemptError::by_class(error),
        }
    }

    /// Queues `lead` (handshake header events) before `first` and returns what to forward first.
    fn lead_with(&mut self, lead: Vec<ResponseEvent>, first: Read) -> Read {
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

    async fn next(&mut self) -> Read {
        loop {
            if let Some(read) = self.pending.pop_front() {
                return read;
            }
            let Some(socket) = self.guard.socket.as_mut() else {
                return Read::End(CompactorError::stream("the websocket connection is closed"));
            };
            let frame = match tokio::time::timeout(self.idle_timeout, socket.next()).await {
                Err(_) => {
                    return Read::End(CompactorError::stream("idle timeout waiting for websocket"));
                }
                Ok(None | Some(Ok(Message::Close(_)))) => {
                    return Read::End(CompactorError::stream(
                        "websocket closed by server before response.completed",
                    ));
                }
                Ok(Some(Err(tungstenite::Error::Capacity(
                    tungstenite::error::CapacityError::MessageTooLong { max_size, .. },
                )))) => {
                    // A message or frame over the cap: the connection goes, unread (D61).
                    let limit = u64::try_from(max_size).unwrap_or(u64::MAX);
                    return Read::End(CompactorError::EventTooLarge { limit });
                }
                Ok(Some(Err(err))) => {
                    return Read::End(
                        self.redactor
                            .error(CompactorError::stream(format!("websocket error: {err}"))),
                    );
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let text = match frame {
                Message::Text(text) => text,
                Message::Binary(_) => {
                    return Read::End(CompactorError::stream("unexpected binary websocket event"));
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) | Message::Close(_) => {
                    continue;
                }
            };
            if let Some(read) = self.on_text(text.as_bytes()) {
                return read;
            }
        }
    }

    /// Maps one text frame; `None` when it carries nothing to forward (an unparsable payload,
    /// an ignored event or error frame).
    fn on_text(&mut self, text: &[u8]) -> Option<Read> {
        let payload = parse_payload(text)?;
        if payload.kind == "error" {
            let failure = wrapped_error(&payload, &self.redactor)?;
            self.rejected = Some(failure.retry);
            return Some(Read::End(failure.error));
        }
        let model = self.mapper.server_model(&payload);
        let read = match map_event(payload) {
            Mapped::Event(event) => {
                if let ResponseEvent::OutputItemDone { item } = &event {
                    self.output.push(item);
                }
                Read::Event(event)
            }
            Mapped::Completed(event) => {
                self.completed = true;
                if let ResponseEvent::Completed { response_id, .. } = &event {
                    *self.last_response.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(self.output.finish(response_id));
                }
                Read::Completed(event)
            }
            // Over WebSocket a failure ends the stream at once (D45).
            Mapped::Failure(error) | Mapped::Error(error) => Read::End(self.redactor.error(error)),
            Mapped::Ignored => return None,
        };
        match model {
            Some(model) => {
                self.pending.push_back(read);
                Some(Read::Event(model))
            }
            None => Some(read),
        }
    }
}

/// Maps text `frames` as [`WsReader::next`] does, up to and including the first terminal read,
/// on a connection without a socket, handing each read to `each` as the transport hands it to
/// the stream: the fuzz targets' and the benches' entry point.
pub(crate) fn map_frames(frames: &[&[u8]], mut each: impl FnMut(Read)) {
    let connection = Arc::new(Mutex::new(Connection { socket: None }));
    let Ok(guard) = connection.try_lock_owned() else {
        return;
    };
    let mut reader = WsReader::new(
        guard,
        Duration::ZERO,
        Arc::new(StdMutex::new(None)),
        FingerprintKey::new(0, 0),
    );
    let mut frames = frames.iter();
    loop {
        let read = match reader.pending.pop_front() {
            Some(read) => read,
            None => match frames.next() {
                Some(frame) => match reader.on_text(frame) {
                    Some(read) => read,
                    None => continue,
                },
                None => return,
            },
        };
        let last = matches!(read, Read::Completed(_) | Read::End(_));
        each(read);
        if last {
            return;
        }
    }
}

/// A wrapped `{"type":"error","status":N,"error":{...},"headers":{...}}` frame: the connection
/// limit is a retryable stream error, other non-2xx statuses map like HTTP answers (with the
/// frame's headers, e.g. `retry-after`, and the key redacted), the rest is ignored.
fn wrapped_error(payload: &StreamEventPayload, redactor: &Redactor) -> Option<AttemptError> {
    let code = payload.error.as_ref().and_then(|e| e.get("code")).and_then(|c| c.as_str());
    if code == Some("websocket_connection_limit_reached") {
        return Some(AttemptError::by_class(CompactorError::stream(
            "websocket connection limit reached",
        )));
    }
    let Some(status) = payload.status else {
        // Some peers (aimock) send error frames without a status. The reference ignores them,
        // which leaves the turn waiting out the idle timeout; an error object with a code or a
        // message ends the stream at once instead, mapped like `response.failed`.
        let error = payload.error.as_ref()?;
        if error.get("code").is_none() && error.get("message").is_none() {
            return None;
        }
        let error = redactor.error(crate::events::failure_from_error_object(Some(error)));
        return Some(AttemptError::by_class(error));
    };
    let status = ::http::StatusCode::from_u16(status).ok()?;
    if status.is_success() {
        return None;
    }
    let body = serde_json::json!({ "error": payload.error }).to_string();
    Some(transport::status_error(status, &frame_headers(payload.headers.as_ref()), &body, redactor))
}

/// The `headers` object of a wrapped error frame as a header map; entries that are not valid
/// headers are skipped.
fn frame_headers(headers: Option<&serde_json::Value>) -> HeaderMap {
    let mut map = HeaderMap::new();
    let Some(serde_json::Value::Object(headers)) = headers else {
        return map;
    };
    for (name, value) in headers {
        let text = match value {
            serde_json::Value::String(text) => text.clone(),
            serde_json::Value::Number(number) => number.to_string(),
            _ => continue,
        };
        if let (Ok(name), Ok(value)) =
            (::http::HeaderName::from_bytes(name.as_bytes()), ::http::HeaderValue::from_str(&text))
        {
            map.insert(name, value);
        }
    }
    map
}

/// The secrets to redact from server text: the key when it resolves (none was sent otherwise) and
/// the base URL's credentials.
fn redactor_of(client: &crate::client::ModelClient) -> Redactor {
    let config = &client.inner.config;
    config.redactor(config.key.resolve().ok().flatten().as_ref())
}

async fn pump(mut reader: WsReader, first: Read, sender: StreamSender) {
    let mut next = first;
    loop {
        let (item, last) = match next {
            Read::Event(event) => (Ok(event), false),
            Read::Completed(event) => (Ok(event), true),
            Read::End(error) => {
                // A terminal error drops the socket without a close handshake.
                reader.guard.break_off();
                (Err(error), true)
            }
        };
        if !sender.send(item).await {
            if !last {
                // The consumer left mid-response: the rest of it would poison the next request.
                reader.guard.break_off();
            }
            return;
        }
        if last {
            return;
        }
        next = tokio::select! {
            () = sender.cancel.cancelled() => {
                reader.guard.break_off();
                return;
            }
            read = reader.next() => read,
        };
    }
}

/// Sends `response.processed` on the session's connection (D13).
pub(crate) async fn send_response_processed(session: &mut ModelClientSession, response_id: &str) {
    let idle = session.client().inner.config.stream_idle_timeout;
    let Some(ws) = session.ws_mut().as_ref() else {
        tracing::debug!("no websocket connection: response.processed not sent");
        return;
    };
    let message = match serde_json::to_vec(&WsClientMessage::ResponseProcessed {
        response_id: response_id.to_owned(),
    }) {
        Ok(message) => message,
        Err(err) => {
            tracing::debug!(error = %err, "cannot encode response.processed");
            return;
        }
    };
    let mut connection = ws.connection.lock().await;
    if connection.is_broken() {
        tracing::debug!("websocket connection is broken: response.processed not sent");
        return;
    }
    if let Err(failure) = send_text(&mut connection, JsonPieces::whole(message), idle).await {
        tracing::debug!(error = %failure.error, "failed to send response.processed");
    }
}

#[cfg(test)]
mod tests;
