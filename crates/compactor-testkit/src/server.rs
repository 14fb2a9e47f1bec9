//! The server: configuration, lifecycle, shared state, scripting and recording.

use std::collections::VecDeque;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use compactor_protocol::tokens::TokenCounter;
use compactor_protocol::{ResponseItem, ResponsesApiRequest, into_owned_items};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{Error, Result};
use crate::faults::{ErrorReply, Fault, HandshakeFault};
use crate::invariants::check_input;
use crate::listener::CuttableListener;
use crate::model::{ReferenceModel, ReferenceModelConfig, Refusal};
use crate::record::{
    Kept, KeptConnection, RecordLimits, RecordedConnection, RecordedHandshake, RecordedRequest,
    RecordedWsMessage, Violation,
};
use crate::script::{CompactScript, HttpScript, WsConnectionScript};
use crate::traffic::{Traffic, TrafficLog};
use crate::{http, ws};

/// How the server answers requests that no scripted entry covers.
#[derive(Debug, Clone, Default)]
pub enum Mode {
    /// Only scripted entries answer; a request with none left is a [`Violation`] (answered 400,
    /// and a WebSocket handshake with no scripted connection left is refused with 400).
    #[default]
    Scripted,
    /// The deterministic reference model answers (scripted entries, when queued, go first).
    ReferenceModel(ReferenceModelConfig),
}

/// How a [`TestServer`] starts.
#[derive(Debug, Clone)]
pub struct TestServerConfig {
    /// Scripted or reference model.
    pub mode: Mode,
    /// The loopback port; 0 picks a free one.
    pub port: u16,
    /// How long `wait_for_*` calls wait.
    pub wait_timeout: Duration,
    /// How long [`TestServer::shutdown`] waits for its tasks before aborting them.
    pub shutdown_timeout: Duration,
    /// The largest request body or WebSocket message accepted.
    pub max_body_bytes: usize,
    /// How much of what it saw the server keeps in memory.
    pub record: RecordLimits,
    /// How long a client may take to send a request's head (request line and headers), and to
    /// send the next one on an idle connection; a slower one is disconnected (D66 in
    /// docs/decisions.md).
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's body; a slower one is answered
    /// `408 request_timeout` and disconnected.
    pub body_read_timeout: Duration,
    /// A file to append every HTTP request, WebSocket handshake and WebSocket client message to,
    /// one JSON object per line, credentials redacted (created 0600 when missing).
    pub record_traffic: Option<PathBuf>,
    /// When set, a request whose input (resolved through `previous_response_id`) and
    /// instructions are estimated above this many tokens is a [`Violation`], answered 400: how a
    /// test checks that a client never sends more than a model's context window.
    pub input_token_limit: Option<u64>,
}

impl Default for TestServerConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Scripted,
            port: 0,
            wait_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(5),
            max_body_bytes: 256 * 1024 * 1024,
            record: RecordLimits::default(),
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            record_traffic: None,
            input_token_limit: None,
        }
    }
}

/// A Responses-compatible server on `127.0.0.1` (SSE, WebSocket and `/responses/compact` on one
/// port), stopped by [`TestServer::shutdown`] or, without waiting, by drop.
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    wait_timeout: Duration,
    shutdown_timeout: Duration,
    serve: Option<JoinHandle<std::io::Result<()>>>,
    /// Fails the I/O of every connection: the hard stop after a graceful one timed out, or on
    /// drop.
    cut: CancellationToken,
}

/// How long the connections get to end after they were cut.
const CUT_TIMEOUT: Duration = Duration::from_secs(1);

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl TestServer {
    /// Binds `127.0.0.1:<port>` and starts serving.
    ///
    /// # Errors
    ///
    /// [`Error::Bind`] when the port cannot be bound.
    pub async fn start(config: TestServerConfig) -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, config.port))
            .await
            .map_err(|source| Error::Bind { port: config.port, source })?;
        let addr =
            listener.local_addr().map_err(|source| Error::Bind { port: config.port, source })?;
        let model = match config.mode {
            Mode::Scripted => None,
            Mode::ReferenceModel(model) => Some(ReferenceModel::new(model)),
        };
        let traffic = match &config.record_traffic {
            Some(path) => Some(
                TrafficLog::open(path)
                    .map_err(|source| Error::Record { path: path.clone(), source })?,
            ),
            None => None,
        };
        let shared = Arc::new(Shared {
            model,
            state: Mutex::new(State::new(&config.record)),
            version: watch::Sender::new(0),
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
            max_body_bytes: config.max_body_bytes,
            body_read_timeout: config.body_read_timeout,
            responses_per_connection: config.record.responses_per_connection,
            traffic,
            input_token_limit: config.input_token_limit,
        });
        let app = router(Arc::clone(&shared));
        let cut = CancellationToken::new();
        let listener = CuttableListener { inner: listener, cut: cut.clone() };
        let serve = tokio::spawn(crate::listener::serve(
            listener,
            app,
            shared.cancel.clone(),
            config.header_read_timeout,
        ));
        tracing::debug!(%addr, "compactor-testkit server started");
        Ok(Self {
            addr,
            shared,
            wait_timeout: config.wait_timeout,
            shutdown_timeout: config.shutdown_timeout,
            serve: Some(serve),
            cut,
        })
    }

    /// A scripted server on a free port.
    ///
    /// # Errors
    ///
    /// [`Error::Bind`] when no port can be bound.
    pub async fn scripted() -> Result<Self> {
        Self::start(TestServerConfig::default()).await
    }

    /// A reference-model server on a free port, with the default seal key.
    ///
    /// # Errors
    ///
    /// [`Error::Bind`] when no port can be bound.
    pub async fn reference_model() -> Result<Self> {
        Self::start(TestServerConfig {
            mode: Mode::ReferenceModel(ReferenceModelConfig::default()),
            ..TestServerConfig::default()
        })
        .await
    }

    /// The bound address (always loopback).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL a client is configured with: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1/responses`.
    pub fn responses_url(&self) -> String {
        format!("http://{}/v1/responses", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1/responses/compact`.
    pub fn compact_url(&self) -> String {
        format!("http://{}/v1/responses/compact", self.addr)
    }

    /// `ws://127.0.0.1:PORT/v1/responses`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/responses", self.addr)
    }

    /// Queues the SSE answer of the next unanswered `POST /responses`.
    pub fn push_sse(&self, events: Vec<Value>) {
        self.push_http(HttpScript::new(events));
    }

    /// Queues the answer of the next unanswered `POST /responses`.
    pub fn push_http(&self, script: HttpScript) {
        self.shared.update(|state| state.http_scripts.push_back(script));
    }

    /// Queues a 200 JSON answer of the next unanswered `POST /responses/compact`.
    pub fn push_compact_json(&self, body: Value) {
        self.push_compact(CompactScript::json(body));
    }

    /// Queues the answer of the next unanswered `POST /responses/compact`.
    pub fn push_compact(&self, script: CompactScript) {
        self.shared.update(|state| state.compact_scripts.push_back(script));
    }

    /// Queues the script of the next WebSocket connection.
    pub fn push_ws_connection(&self, script: WsConnectionScript) {
        self.shared.update(|state| state.ws_scripts.push_back(script));
    }

    /// Queues faults for the next `POST /responses` (scripted or answered by the model).
    pub fn push_http_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        let faults = faults.into_iter().collect();
        self.shared.update(|state| state.http_faults.push_back(faults));
    }

    /// Queues faults for the next `POST /responses/compact`.
    pub fn push_compact_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        let faults = faults.into_iter().collect();
        self.shared.update(|state| state.compact_faults.push_back(faults));
    }

    /// Queues faults for the next WebSocket `response.create`, on any connection.
    pub fn push_ws_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        let faults = faults.into_iter().collect();
        self.shared.update(|state| state.ws_faults.push_back(faults));
    }

    /// Queues a fault for the next WebSocket handshake.
    pub fn push_handshake_fault(&self, fault: HandshakeFault) {
        self.shared.update(|state| state.handshake_faults.push_back(fault));
    }

    /// The HTTP requests still kept ([`RecordLimits`]), in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.iter().cloned().collect()
    }

    /// How many model requests the server answered or refused so far, forgotten ones included:
    /// `POST /responses`, `POST /responses/compact` and WebSocket `response.create` messages.
    pub fn model_requests(&self) -> usize {
        self.shared.lock().model_requests
    }

    /// The `POST /responses` requests so far.
    pub fn responses_requests(&self) -> Vec<RecordedRequest> {
        self.requests_to(crate::Endpoint::Responses)
    }

    /// The `POST /responses/compact` requests so far.
    pub fn compact_requests(&self) -> Vec<RecordedRequest> {
        self.requests_to(crate::Endpoint::Compact)
    }

    fn requests_to(&self, endpoint: crate::Endpoint) -> Vec<RecordedRequest> {
        let state = self.shared.lock();
        state.requests.iter().filter(|request| request.endpoint == endpoint).cloned().collect()
    }

    /// The WebSocket handshakes still kept, accepted or refused.
    pub fn handshakes(&self) -> Vec<RecordedHandshake> {
        self.shared.lock().handshakes.iter().cloned().collect()
    }

    /// The accepted WebSocket connections still kept, with their messages.
    pub fn connections(&self) -> Vec<RecordedConnection> {
        self.shared.lock().connections.iter().map(KeptConnection::to_recorded).collect()
    }

    /// Accepted connection `index`, when it exists and is still kept.
    pub fn connection(&self, index: usize) -> Option<RecordedConnection> {
        self.shared.lock().connections.get(index).map(KeptConnection::to_recorded)
    }

    /// How many requests the reference model refused with `context_length_exceeded` (0 in
    /// scripted mode).
    pub fn refused_over_window(&self) -> u64 {
        self.shared.model.as_ref().map_or(0, ReferenceModel::refused_over_window)
    }

    /// The protocol violations still kept.
    pub fn violations(&self) -> Vec<Violation> {
        self.shared.lock().violations.iter().cloned().collect()
    }

    /// How many protocol violations there were, forgotten ones included.
    pub fn violation_count(&self) -> usize {
        self.shared.lock().violations.seen()
    }

    /// `Ok` when no request broke an invariant.
    ///
    /// # Errors
    ///
    /// [`Error::Violations`] listing every violation.
    pub fn check_no_violations(&self) -> Result<()> {
        let count = self.violation_count();
        if count == 0 {
            return Ok(());
        }
        let details: Vec<String> = self.violations().iter().map(ToString::to_string).collect();
        Err(Error::Violations { count, details: details.join("\n") })
    }

    /// Asserts that no request broke an invariant.
    ///
    /// # Panics
    ///
    /// When violations were recorded, with every violation in the message.
    #[track_caller]
    pub fn assert_no_violations(&self) {
        if let Err(err) = self.check_no_violations() {
            panic!("{err}");
        }
    }

    /// Waits until at least `n` HTTP requests arrived and returns those still kept.
    ///
    /// # Errors
    ///
    /// [`Error::WaitTimedOut`] after the configured wait timeout.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only observes.
    pub async fn wait_for_requests(&self, n: usize) -> Result<Vec<RecordedRequest>> {
        self.shared
            .wait_until(
                self.wait_timeout,
                |state| format!("{n} HTTP requests (saw {})", state.requests.seen()),
                |state| {
                    (state.requests.seen() >= n).then(|| state.requests.iter().cloned().collect())
                },
            )
            .await
    }

    /// Waits until at least `n` WebSocket handshakes arrived and returns those still kept.
    ///
    /// # Errors
    ///
    /// [`Error::WaitTimedOut`] after the configured wait timeout.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only observes.
    pub async fn wait_for_handshakes(&self, n: usize) -> Result<Vec<RecordedHandshake>> {
        self.shared
            .wait_until(
                self.wait_timeout,
                |state| format!("{n} WebSocket handshakes (saw {})", state.handshakes.seen()),
                |state| {
                    (state.handshakes.seen() >= n)
                        .then(|| state.handshakes.iter().cloned().collect())
                },
            )
            .await
    }

    /// Waits for client message `index` of connection `connection` and returns it.
    ///
    /// # Errors
    ///
    /// [`Error::WaitTimedOut`] after the configured wait timeout.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only observes.
    pub async fn wait_for_ws_message(
        &self,
        connection: usize,
        index: usize,
    ) -> Result<RecordedWsMessage> {
        self.shared
            .wait_until(
                self.wait_timeout,
                |state| {
                    let seen = state.connections.get(connection).map(|c| c.messages.seen());
                    format!(
                        "message {index} of WebSocket connection {connection} (connection seen: {}, messages: {})",
                        seen.is_some(),
                        seen.unwrap_or(0)
                    )
                },
                |state| state.connections.get(connection)?.messages.get(index).cloned(),
            )
            .await
    }

    /// Stops the server gracefully: no new connections; open streams end, WebSocket connections
    /// get a Close frame (going away), requests in flight finish. When that takes longer than the
    /// shutdown timeout (e.g. a client stuck halfway through sending a request), every connection
    /// is cut. Either way every task the server started has finished when this returns.
    ///
    /// # Errors
    ///
    /// [`Error::ShutdownTimedOut`] when connections had to be cut; [`Error::Serve`] or
    /// [`Error::Join`] when the server task failed.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe in the sense that dropping the future mid-way leaves the stop to `Drop`,
    /// which cuts the remaining connections without waiting.
    pub async fn shutdown(mut self) -> Result<()> {
        self.shared.cancel.cancel();
        self.shared.tracker.close();
        let Some(mut serve) = self.serve.take() else {
            return Ok(());
        };
        let tracker = self.shared.tracker.clone();
        let graceful = tokio::time::timeout(self.shutdown_timeout, async {
            let served = (&mut serve).await;
            tracker.wait().await;
            served
        })
        .await;
        let Ok(served) = graceful else {
            tracing::warn!(
                addr = %self.addr,
                timeout = ?self.shutdown_timeout,
                "compactor-testkit: graceful shutdown timed out; cutting connections"
            );
            self.cut.cancel();
            let forced = tokio::time::timeout(CUT_TIMEOUT, async {
                let served = (&mut serve).await;
                tracker.wait().await;
                served
            })
            .await;
            if forced.is_err() {
                serve.abort();
            }
            if let Err(err) = self.close_traffic_log().await {
                tracing::warn!(%err, "compactor-testkit: traffic log not closed cleanly");
            }
            return Err(Error::ShutdownTimedOut { timeout: self.shutdown_timeout });
        };
        // Every connection has ended: what they received is queued, and now written.
        let recorded = self.close_traffic_log().await;
        match served {
            Ok(Ok(())) => recorded,
            Ok(Err(err)) => Err(Error::Serve(err)),
            Err(err) => Err(Error::Join(err.to_string())),
        }
    }

    async fn close_traffic_log(&self) -> Result<()> {
        match &self.shared.traffic {
            Some(log) => log
                .close()
                .await
                .map_err(|source| Error::Record { path: log.path().to_path_buf(), source }),
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Stops at once: cancelling ends every stream and WebSocket task, cutting fails the I/O
        // of every connection, so the serve task and the connection tasks end by themselves.
        // `shutdown()` is the graceful way, and the way to wait.
        self.shared.cancel.cancel();
        self.shared.tracker.close();
        self.cut.cancel();
        if self.serve.is_some() {
            let violations = self.shared.lock().violations.seen();
            if violations > 0 {
                tracing::warn!(
                    violations,
                    addr = %self.addr,
                    "compactor-testkit server dropped with protocol violations"
                );
            }
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    let responses = post(http::responses).get(ws::upgrade);
    let compact = post(http::compact);
    Router::new()
        .route("/v1/responses", responses.clone())
        .route("/responses", responses)
        .route("/v1/responses/compact", compact.clone())
        .route("/responses/compact", compact)
        .fallback(http::not_found)
        .with_state(shared)
}

/// State shared by the handlers and the [`TestServer`] handle.
pub(crate) struct Shared {
    pub(crate) model: Option<ReferenceModel>,
    state: Mutex<State>,
    version: watch::Sender<u64>,
    pub(crate) cancel: CancellationToken,
    pub(crate) tracker: TaskTracker,
    pub(crate) max_body_bytes: usize,
    pub(crate) body_read_timeout: Duration,
    pub(crate) responses_per_connection: usize,
    /// The traffic log, when one is configured.
    traffic: Option<TrafficLog>,
    pub(crate) input_token_limit: Option<u64>,
}

/// Queues and records.
pub(crate) struct State {
    pub(crate) http_scripts: VecDeque<HttpScript>,
    pub(crate) compact_scripts: VecDeque<CompactScript>,
    pub(crate) ws_scripts: VecDeque<WsConnectionScript>,
    pub(crate) http_faults: VecDeque<Vec<Fault>>,
    pub(crate) compact_faults: VecDeque<Vec<Fault>>,
    pub(crate) ws_faults: VecDeque<Vec<Fault>>,
    pub(crate) handshake_faults: VecDeque<HandshakeFault>,
    pub(crate) requests: Kept<RecordedRequest>,
    pub(crate) handshakes: Kept<RecordedHandshake>,
    pub(crate) connections: Kept<KeptConnection>,
    pub(crate) violations: Kept<Violation>,
    /// Model requests seen: `/responses`, `/responses/compact`, WebSocket `response.create`.
    pub(crate) model_requests: usize,
    /// The limits each new connection's messages get.
    pub(crate) limits: RecordLimits,
}

impl State {
    fn new(limits: &RecordLimits) -> Self {
        Self {
            http_scripts: VecDeque::new(),
            compact_scripts: VecDeque::new(),
            ws_scripts: VecDeque::new(),
            http_faults: VecDeque::new(),
            compact_faults: VecDeque::new(),
            ws_faults: VecDeque::new(),
            handshake_faults: VecDeque::new(),
            requests: Kept::new(limits.requests, limits.request_bytes),
            handshakes: Kept::new(limits.connections, usize::MAX),
            connections: Kept::new(limits.connections, usize::MAX),
            violations: Kept::new(limits.violations, usize::MAX),
            model_requests: 0,
            limits: *limits,
        }
    }

    /// Records an HTTP request at the next position, when requests are kept at all.
    pub(crate) fn record_request(
        &mut self,
        endpoint: crate::Endpoint,
        parts: (::http::Method, ::http::Uri, ::http::HeaderMap),
        body: &bytes::Bytes,
    ) -> usize {
        let index = self.requests.seen();
        if matches!(endpoint, crate::Endpoint::Responses | crate::Endpoint::Compact) {
            self.model_requests += 1;
        }
        if self.requests.keeps() {
            let (method, uri, headers) = parts;
            let record = RecordedRequest::new(index, endpoint, method, uri, headers, body.clone());
            self.requests.push(record, body.len());
        } else {
            self.requests.push_forgotten();
        }
        index
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Mutates the state and wakes the waiters.
    pub(crate) fn update<R>(&self, change: impl FnOnce(&mut State) -> R) -> R {
        let result = change(&mut self.lock());
        self.version.send_modify(|version| *version += 1);
        result
    }

    /// Appends what `traffic` builds to the traffic log, when there is one.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a cancelled call appended nothing.
    pub(crate) async fn log_traffic(&self, traffic: impl FnOnce() -> Traffic) {
        if let Some(log) = &self.traffic {
            log.record(traffic()).await;
        }
    }

    /// Records a violation.
    pub(crate) fn violation(&self, context: &str, message: String) {
        tracing::warn!(context, %message, "compactor-testkit: protocol violation");
        let violation = Violation { context: context.to_owned(), message };
        self.update(|state| state.violations.push(violation, 0));
    }

    /// Records a violation and returns `reply`, the API's answer to it.
    pub(crate) fn violation_with(
        &self,
        context: &str,
        message: String,
        reply: ErrorReply,
    ) -> ErrorReply {
        self.violation(context, message);
        reply
    }

    /// The violation answer for an input above the configured token limit, if it is.
    pub(crate) fn check_input_tokens(
        &self,
        context: &str,
        instructions: &str,
        input: &[ResponseItem],
    ) -> Option<ErrorReply> {
        let limit = self.input_token_limit?;
        // Counted as the reference model counts its usage, as a real server counts its window.
        let tokens = match &self.model {
            Some(model) => model.history_tokens(instructions, input),
            None => TokenCounter::O200k.history_tokens(instructions, input),
        };
        (tokens > limit).then(|| {
            self.violation_reply(
                context,
                format!("the input is estimated at {tokens} tokens, over the limit of {limit}"),
            )
        })
    }

    /// Records a violation and returns the 400 that answers it.
    pub(crate) fn violation_reply(&self, context: &str, message: String) -> ErrorReply {
        let reply = ErrorReply::invalid_request(
            "testkit_protocol_violation",
            &format!("compactor-testkit: {context}: {message}"),
        );
        self.violation(context, message);
        reply
    }

    async fn wait_until<T>(
        &self,
        timeout: Duration,
        describe: impl Fn(&State) -> String,
        check: impl Fn(&State) -> Option<T>,
    ) -> Result<T> {
        let mut changes = self.version.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            loop {
                let found = check(&self.lock());
                if let Some(found) = found {
                    return found;
                }
                if changes.changed().await.is_err() {
                    // The sender lives as long as `self`; this cannot happen while we borrow it.
                    std::future::pending::<()>().await;
                }
            }
        })
        .await;
        waited.map_err(|_| Error::WaitTimedOut { what: describe(&self.lock()), timeout })
    }

    /// Resolves, validates and answers one `/responses` request (CPU work: callers run it on the
    /// blocking pool). `base` is the resolved history of `previous_response_id`.
    ///
    /// An unknown `previous_response_id` is a `400 previous_response_not_found` when the
    /// reference model serves; in scripted mode it is a [`Violation`], and the script still plays
    /// (the pairing checks, which need the unknown history, are skipped).
    pub(crate) fn prepare_response(
        &self,
        context: &str,
        mut request: ResponsesApiRequest<'static>,
        base: Resolution,
        answer: Answer,
    ) -> Prepared {
        let input = into_owned_items(std::mem::take(&mut request.input));
        let (full_input, check) = match base {
            Resolution::NotRequested => (input, true),
            Resolution::Resolved(base) => {
                let mut full = Vec::with_capacity(base.len() + input.len());
                full.extend(base.iter().cloned());
                full.extend(input);
                (full, true)
            }
            Resolution::Unresolved(previous) => {
                if self.model.is_some() {
                    return Prepared::Reply(ErrorReply::invalid_request(
                        "previous_response_not_found",
                        &format!("Previous response with id '{previous}' not found."),
                    ));
                }
                self.violation(context, format!("previous_response_id {previous:?} is unknown"));
                (input, false)
            }
        };
        if check {
            let problems = check_input(&full_input);
            if !problems.is_empty() {
                return Prepared::Reply(self.violation_reply(context, problems.join("; ")));
            }
        }
        if let Some(reply) = self.check_input_tokens(context, &request.instructions, &full_input) {
            return Prepared::Reply(reply);
        }
        let events = match (answer, &self.model) {
            (Answer::Script(events), _) => events,
            (Answer::Faults, _) => Vec::new(),
            (Answer::Unscripted, Some(model)) => match model.respond(&request, &full_input) {
                Ok(events) => events,
                Err(Refusal::Error(reply)) => return Prepared::Reply(reply),
                Err(Refusal::ContextLength { input_tokens, window, response_id }) => {
                    let reply = ErrorReply::context_length_exceeded(input_tokens, window);
                    return Prepared::Failed { reply, response_id };
                }
            },
            (Answer::Unscripted, None) => {
                return Prepared::Reply(
                    self.violation_reply(context, "no scripted response left".to_owned()),
                );
            }
        };
        Prepared::Events { full_input, events }
    }
}

/// Who answers a `/responses` request.
pub(crate) enum Answer {
    /// A scripted batch of events.
    Script(Vec<Value>),
    /// No script: the reference model, or in scripted mode a violation.
    Unscripted,
    /// Queued faults that replace the whole answer; no events are needed.
    Faults,
}

/// How `previous_response_id` resolved.
pub(crate) enum Resolution {
    /// The request has none.
    NotRequested,
    /// The full history of the previous response (its input and output items).
    Resolved(Arc<Vec<ResponseItem>>),
    /// The id is unknown (always the case over HTTP, which keeps no responses).
    Unresolved(String),
}

/// The outcome of [`Shared::prepare_response`].
pub(crate) enum Prepared {
    /// Events to send, and the resolved full input they answer.
    Events { full_input: Vec<ResponseItem>, events: Vec<Value> },
    /// An error answer.
    Reply(ErrorReply),
    /// A refusal the API reports over HTTP as an error answer and on a WebSocket as a
    /// `response.failed` of the response with `response_id`.
    Failed {
        /// The HTTP answer; the failed response carries its code and message.
        reply: ErrorReply,
        /// The id of the failed response.
        response_id: String,
    },
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM: how a binary that serves a [`TestServer`] (the
/// testkit's own, `compactor serve`) learns to stop.
///
/// The handlers are installed when this is called, not when the future is first polled: a binary
/// calls it before it prints its address, so a client that reads the address and at once sends
/// SIGTERM stops the server instead of killing the process.
pub fn stop_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let terminate = {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(terminate) => Some(terminate),
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM; stop with Ctrl-C");
                None
            }
        }
    };
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        if let Some(mut terminate) = terminate {
            tokio::select! {
                _ = ctrl_c => {}
                _ = terminate.recv() => {}
            }
            return;
        }
        if let Err(err) = ctrl_c.await {
            tracing::warn!(%err, "cannot listen for Ctrl-C");
        }
    }
}
