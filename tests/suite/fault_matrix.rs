//! The fault matrix (D7, D43): every compaction implementation under every fault the
//! testkit injects, at both stages of a response, with the typed error or the documented recovery.
//!
//! Each case resumes a small session from a rollout (so the compaction is the first request of
//! the session and its answer can be scripted precisely), injects one fault into the compaction's
//! answer, compacts manually, and checks:
//! - the typed error or the recovery (client retries per D10, core retries per D11 and
//!   D12, and per D38 for local compaction), with the `stream_error` / `warning` notices it shows;
//! - the `error` event text (prefixed per implementation) and the analytics status and error;
//! - on failure: history, rollout, token usage and window generation exactly as they were;
//! - on recovery: one installed compaction, and a resume that rebuilds the live history;
//! - that the next turn works (the reference model verifies every sealed item it is sent).
//!
//! Combinations that cannot occur are listed by [`expected`] with the reason they are skipped,
//! and [`the_matrix_is_complete`] pins the whole table. [`exhausted`] adds, per implementation,
//! a retryable fault on every attempt: the retries run out and the typed error remains.

use std::fmt;
use std::time::Duration;

use compactor_core::{
    LOCAL_COMPACT_ERROR_PREFIX, LOCAL_COMPACTION_WARNING, REMOTE_COMPACT_ERROR_PREFIX,
    SessionConfig,
};
use compactor_protocol::{CompactionStatus, CompactorError, EventMsg, ResponseItem};
use compactor_testkit::events::{
    ev_assistant_message, ev_completed, ev_completed_with_tokens, ev_context_compaction,
    ev_error_frame, ev_failed, ev_response_created,
};
use compactor_testkit::{
    CompactScript, ErrorReply, Fault, HandshakeFault, HttpScript, SealKey, TestServer,
    WsConnectionScript, WsSlot,
};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::common::{Harness, Options, Transport, sealed, session_config, write_rollout};

/// The provider's idle timeout (and `/responses/compact` request timeout) in the matrix: short
/// for the stall cases, long enough that a loaded machine never trips it on a healthy answer.
const IDLE: Duration = Duration::from_secs(2);
/// The longest one implementation's matrix may take.
const MATRIX_WAIT: Duration = Duration::from_secs(90);
/// How many cases of one implementation run at once.
const PARALLEL_CASES: usize = 6;
/// A stall well past [`IDLE`]; the server is dropped long before it ends.
const STALL: Duration = Duration::from_secs(30);
/// The `stream_error` text of the client's first retry (`max_retries: 2` in the harness).
const CLIENT_RETRY: &str = "Reconnecting... 1/2";
/// The `stream_error` text of core's first v2 retry (`v2_max_retries` is 2).
const CORE_V2_RETRY: &str = "Reconnecting... 1/2";
/// The `stream_error` text of core's first local retry (`local_max_retries` is 5).
const CORE_LOCAL_RETRY: &str = "Reconnecting... 1/5";
/// The fallback warning (D45).
const FALLBACK: &str = "Falling back from WebSockets to HTTPS transport";
/// A rate-limit message whose delay the client parses (`try again in`), kept short.
const RATE_LIMIT_MESSAGE: &str = "Rate limit reached for requests. Please try again in 20ms.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Implementation {
    V2Ws,
    V2Http,
    V1,
    Local,
}

impl Implementation {
    const ALL: [Implementation; 4] =
        [Implementation::V2Ws, Implementation::V2Http, Implementation::V1, Implementation::Local];

    fn prefix(self) -> &'static str {
        match self {
            Implementation::V2Ws | Implementation::V2Http | Implementation::V1 => {
                REMOTE_COMPACT_ERROR_PREFIX
            }
            Implementation::Local => LOCAL_COMPACT_ERROR_PREFIX,
        }
    }

    /// Core's notice when it retries a stream that failed after it opened.
    fn core_retry(self) -> Expected {
        let notice = match self {
            Implementation::Local => CORE_LOCAL_RETRY,
            Implementation::V2Ws | Implementation::V2Http | Implementation::V1 => CORE_V2_RETRY,
        };
        Expected::Recovers { notices: vec![notice], retries: 1 }
    }

    fn config(self, server: &TestServer, dir: &std::path::Path) -> SessionConfig {
        let transport = match self {
            Implementation::V2Ws => Transport::Ws,
            Implementation::V2Http | Implementation::V1 | Implementation::Local => Transport::Http,
        };
        let options = Options { transport, response_processed: false, ..Options::default() };
        let mut config = session_config(server, dir, &options);
        config.provider.stream_idle_timeout = IDLE;
        config.provider.request_timeout = IDLE;
        match self {
            Implementation::V2Ws | Implementation::V2Http => {}
            Implementation::V1 => config.features.remote_compaction_v2 = false,
            Implementation::Local => {
                config.compaction.chain =
                    vec![compactor_protocol::CompactionImplementation::Responses];
            }
        }
        config
    }
}

/// The faults the testkit injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FaultKind {
    /// The server goes silent for longer than the idle timeout.
    IdleTimeout,
    /// A clean end of the stream (SSE body end, WebSocket Close frame).
    CloseMidStream,
    /// A broken connection (HTTP body error, TCP drop without a close handshake).
    DropWithoutClose,
    /// A frame of malformed JSON.
    MalformedJson,
    /// HTTP 429 with `Retry-After` (over WebSocket, a wrapped 429 frame).
    RateLimited,
    /// HTTP 500 (over WebSocket, a wrapped 500 frame).
    InternalError,
    /// HTTP 503 `server_is_overloaded` (over WebSocket, a wrapped 503 frame).
    Overloaded,
    /// `response.failed` with this `error.code`.
    Failed(&'static str),
    /// The WebSocket upgrade is refused with 426.
    UpgradeRequired,
    /// A wrapped WebSocket `error` frame of its own kind: the connection limit (D45).
    WrappedErrorFrame,
    /// The history holds a sealed item whose content was changed (reference model: 400
    /// `invalid_encrypted_content`).
    TamperedSealedItem,
}

const FAULTS: [FaultKind; 16] = [
    FaultKind::IdleTimeout,
    FaultKind::CloseMidStream,
    FaultKind::DropWithoutClose,
    FaultKind::MalformedJson,
    FaultKind::RateLimited,
    FaultKind::InternalError,
    FaultKind::Overloaded,
    FaultKind::Failed("context_length_exceeded"),
    FaultKind::Failed("insufficient_quota"),
    FaultKind::Failed("invalid_prompt"),
    FaultKind::Failed("server_is_overloaded"),
    FaultKind::Failed("rate_limit_exceeded"),
    FaultKind::Failed("server_error"),
    FaultKind::UpgradeRequired,
    FaultKind::WrappedErrorFrame,
    FaultKind::TamperedSealedItem,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Before the response's first event.
    BeforeFirstEvent,
    /// After the compaction item (v2: the `context_compaction` output, local: the summary
    /// message, v1: the middle of the JSON body) and before `response.completed`.
    AfterCompactionItem,
}

const STAGES: [Stage; 2] = [Stage::BeforeFirstEvent, Stage::AfterCompactionItem];

/// What a case must do.
#[derive(Debug, Clone, PartialEq)]
enum Expected {
    /// The combination cannot occur, for this reason.
    Skip(&'static str),
    /// The compaction completes after these notices, with `retries` core retries in analytics.
    Recovers { notices: Vec<&'static str>, retries: u32 },
    /// The compaction fails with this error.
    Fails(ErrorMatch),
    /// A fault on every attempt: the retries run out (with these notices, and `retries` core
    /// retries in analytics) and the compaction fails with this error.
    Exhausted { error: ErrorMatch, notices: Vec<&'static str>, retries: u32 },
}

/// How a case's error is recognised.
#[derive(Debug, Clone, PartialEq)]
enum ErrorMatch {
    /// Exactly this error.
    Is(CompactorError),
    /// An error whose `Display` starts with this text (for messages quoting a parser's words).
    Starts(&'static str),
}

impl ErrorMatch {
    fn matches(&self, error: &CompactorError) -> bool {
        match self {
            ErrorMatch::Is(expected) => error == expected,
            ErrorMatch::Starts(prefix) => error.to_string().starts_with(prefix),
        }
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Skip(reason) => write!(f, "skip: {reason}"),
            Expected::Recovers { notices, retries } => {
                write!(f, "recovers {notices:?}, core retries {retries}")
            }
            Expected::Fails(ErrorMatch::Is(error)) => write!(f, "fails: {error}"),
            Expected::Fails(ErrorMatch::Starts(prefix)) => write!(f, "fails: {prefix}..."),
            Expected::Exhausted { error, notices, retries } => {
                write!(f, "exhausted {notices:?}, core retries {retries}: {error:?}")
            }
        }
    }
}

fn failure_message(code: &str) -> &'static str {
    match code {
        "rate_limit_exceeded" => RATE_LIMIT_MESSAGE,
        _ => "injected failure",
    }
}

/// The expected outcome of one combination; every skip says why it cannot occur.
fn expected(implementation: Implementation, fault: FaultKind, stage: Stage) -> Expected {
    use Implementation::{Local, V1, V2Http, V2Ws};
    use Stage::{AfterCompactionItem as After, BeforeFirstEvent as Before};
    let client_retry = Expected::Recovers { notices: vec![CLIENT_RETRY], retries: 0 };
    let fails = |error| Expected::Fails(ErrorMatch::Is(error));
    match (implementation, fault, stage) {
        // --- Skips -------------------------------------------------------------------------
        (V2Http | V1 | Local, FaultKind::UpgradeRequired | FaultKind::WrappedErrorFrame, _) => {
            Expected::Skip("HTTP only: no WebSocket handshake and no frames")
        }
        (V2Ws, FaultKind::UpgradeRequired, After) => {
            Expected::Skip("the upgrade is answered before any event can flow")
        }
        (_, FaultKind::TamperedSealedItem, After) => {
            Expected::Skip("the server verifies the input before it streams anything")
        }
        (
            V2Http | Local,
            FaultKind::RateLimited | FaultKind::InternalError | FaultKind::Overloaded,
            After,
        ) => Expected::Skip("an HTTP status comes before the body, never after an event"),
        (V1, FaultKind::Failed(_), _) => Expected::Skip(
            "/responses/compact is unary JSON with no response.failed event (the testkit maps the \
             fault to an HTTP 500: the InternalError row)",
        ),
        (V1, FaultKind::IdleTimeout, After) => Expected::Skip(
            "/responses/compact has no event stream; the testkit delays a compact answer only \
             before it",
        ),
        (V1, FaultKind::CloseMidStream | FaultKind::DropWithoutClose, Before) => Expected::Skip(
            "the testkit cuts a /responses/compact body in half: the only stage is mid-body, \
             checked as AfterCompactionItem",
        ),
        (V1, FaultKind::MalformedJson, After) => Expected::Skip(
            "a malformed /responses/compact answer is one malformed body: checked as \
             BeforeFirstEvent",
        ),
        (V1, FaultKind::RateLimited | FaultKind::InternalError | FaultKind::Overloaded, After) => {
            Expected::Skip("an HTTP status comes before the body")
        }

        // --- Tampered history: a 400 no retry can fix --------------------------------------
        (_, FaultKind::TamperedSealedItem, Before) => {
            Expected::Fails(ErrorMatch::Starts("invalid request: The encrypted content of input["))
        }

        // --- v1 (unary, retried by the client only) -----------------------------------------
        (V1, FaultKind::IdleTimeout, Before) => client_retry,
        (V1, FaultKind::MalformedJson, Before) => Expected::Fails(ErrorMatch::Starts(
            "stream error: failed to parse the compact response:",
        )),
        // A cleanly ended body is a complete answer whose JSON is cut: not a transport failure.
        (V1, FaultKind::CloseMidStream, After) => Expected::Fails(ErrorMatch::Starts(
            "stream error: failed to parse the compact response:",
        )),
        (V1, FaultKind::DropWithoutClose, After) => client_retry,
        (V1, FaultKind::RateLimited | FaultKind::InternalError | FaultKind::Overloaded, Before) => {
            client_retry
        }

        // --- Streams: a malformed frame is skipped (D44) -----------------------------
        (V2Ws | V2Http | Local, FaultKind::MalformedJson, _) => {
            Expected::Recovers { notices: vec![], retries: 0 }
        }
        // --- Before the first event: the client retries opening (D10) --------------
        (
            V2Ws | V2Http | Local,
            FaultKind::IdleTimeout
            | FaultKind::CloseMidStream
            | FaultKind::DropWithoutClose
            | FaultKind::RateLimited
            | FaultKind::InternalError
            | FaultKind::Overloaded
            | FaultKind::WrappedErrorFrame,
            Before,
        ) => client_retry,
        (V2Ws, FaultKind::UpgradeRequired, Before) => {
            Expected::Recovers { notices: vec![FALLBACK], retries: 0 }
        }
        // --- After the compaction item: core retries what is retryable (D12) --------
        (
            V2Ws | V2Http | Local,
            FaultKind::IdleTimeout | FaultKind::CloseMidStream | FaultKind::DropWithoutClose,
            After,
        ) => implementation.core_retry(),
        (V2Ws, FaultKind::WrappedErrorFrame | FaultKind::InternalError, After) => {
            implementation.core_retry()
        }
        // A wrapped 429 or 503 mid-stream maps like the HTTP status (D45) to an error that
        // is not retryable (D43: `RetryLimit`, `ServerOverloaded`).
        (V2Ws, FaultKind::RateLimited, After) => fails(CompactorError::RetryLimit {
            status: 429,
            message: "Rate limit reached for requests.".to_owned(),
        }),
        (V2Ws, FaultKind::Overloaded, After) => fails(CompactorError::ServerOverloaded),

        // --- response.failed per code (D44) --------------------------------------------
        (Local | V2Ws | V2Http, FaultKind::Failed("context_length_exceeded"), _) => {
            // Local compaction drops the oldest item and tries again (D38), v2 the oldest
            // tenth of the history (D160).
            Expected::Recovers { notices: vec![], retries: 0 }
        }
        (_, FaultKind::Failed(code), stage) => match code {
            "context_length_exceeded" => fails(CompactorError::ContextWindowExceeded),
            "insufficient_quota" => {
                fails(CompactorError::QuotaExceeded(failure_message(code).to_owned()))
            }
            "invalid_prompt" => {
                fails(CompactorError::InvalidRequest(failure_message(code).to_owned()))
            }
            "server_is_overloaded" => fails(CompactorError::ServerOverloaded),
            // Retryable (`ResponseStreamFailed`): as the first event the client retries the
            // opening; after the item core retries the stream.
            _ => match stage {
                Before => client_retry,
                After => implementation.core_retry(),
            },
        },
    }
}

/// `sealed` content with one character changed: the tag no longer verifies.
fn tampered(content: &str) -> String {
    let mut chars: Vec<char> = content.chars().collect();
    let at = chars.len() / 2;
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// The compaction item event a scripted answer carries.
fn item_event(implementation: Implementation) -> Value {
    match implementation {
        Implementation::Local => ev_assistant_message("m-summary", "SCRIPTED SUMMARY"),
        Implementation::V2Ws | Implementation::V2Http | Implementation::V1 => {
            ev_context_compaction("cc-scripted", &sealed("context_compaction"))
        }
    }
}

fn reply_for(fault: FaultKind) -> ErrorReply {
    match fault {
        // `Retry-After` alone (no `retry-after-ms`, no delay in the message): the header is what
        // the client must honour (capped at the harness's 20 ms `max_delay`).
        FaultKind::RateLimited => {
            ErrorReply::new(429, "rate_limit_exceeded", "Rate limit reached for requests.")
                .with_header("retry-after", "1")
        }
        FaultKind::Overloaded => ErrorReply::overloaded(),
        _ => ErrorReply::internal_error(),
    }
}

/// The scripted answer to the faulted request: its events and faults.
fn scripted(
    implementation: Implementation,
    fault: FaultKind,
    stage: Stage,
) -> (Vec<Value>, Vec<Fault>) {
    let id = "resp-fault";
    let item = item_event(implementation);
    let normal = vec![ev_response_created(id), item.clone(), ev_completed(id)];
    let with_item = |last: Value| vec![ev_response_created(id), item.clone(), last];
    // The position of a frame fault: the first frame, or the frame after the item.
    let at = match stage {
        Stage::BeforeFirstEvent => 0,
        Stage::AfterCompactionItem => 2,
    };
    match (fault, stage) {
        (FaultKind::IdleTimeout, Stage::BeforeFirstEvent) => {
            (normal, vec![Fault::DelayBeforeFirstEvent(STALL)])
        }
        // The testkit's delay applies to every gap between events, so the item goes first
        // (without `response.created`) and the stall falls between it and `response.completed`.
        (FaultKind::IdleTimeout, Stage::AfterCompactionItem) => {
            (vec![item, ev_completed(id)], vec![Fault::DelayBetweenEvents(STALL)])
        }
        (FaultKind::CloseMidStream, _) => (normal, vec![Fault::CloseAfterEvents(at)]),
        (FaultKind::DropWithoutClose, _) => (normal, vec![Fault::DropAfterEvents(at)]),
        (FaultKind::MalformedJson, _) => (normal, vec![Fault::MalformedEventAt(at)]),
        (
            FaultKind::RateLimited | FaultKind::InternalError | FaultKind::Overloaded,
            Stage::BeforeFirstEvent,
        ) => (normal, vec![Fault::Reject(reply_for(fault))]),
        (
            FaultKind::RateLimited | FaultKind::InternalError | FaultKind::Overloaded,
            Stage::AfterCompactionItem,
        ) => (with_item(reply_for(fault).ws_frame()), vec![]),
        (FaultKind::Failed(code), Stage::BeforeFirstEvent) => {
            (vec![ev_failed(id, code, failure_message(code))], vec![])
        }
        (FaultKind::Failed(code), Stage::AfterCompactionItem) => {
            (with_item(ev_failed(id, code, failure_message(code))), vec![])
        }
        (FaultKind::WrappedErrorFrame, Stage::BeforeFirstEvent) => {
            (vec![connection_limit_frame()], vec![])
        }
        (FaultKind::WrappedErrorFrame, Stage::AfterCompactionItem) => {
            (with_item(connection_limit_frame()), vec![])
        }
        (FaultKind::UpgradeRequired | FaultKind::TamperedSealedItem, _) => {
            unreachable!("{fault:?} needs no scripted answer")
        }
    }
}

fn connection_limit_frame() -> Value {
    ev_error_frame(
        400,
        "websocket_connection_limit_reached",
        "Responses websocket connection limit reached (60 minutes). Create a new websocket connection to continue.",
    )
}

/// The fault of a `/responses/compact` answer.
fn compact_fault(fault: FaultKind) -> Fault {
    match fault {
        FaultKind::IdleTimeout => Fault::DelayBeforeResponse(STALL),
        FaultKind::CloseMidStream => Fault::CloseAfterEvents(0),
        FaultKind::DropWithoutClose => Fault::DropAfterEvents(0),
        FaultKind::MalformedJson => Fault::MalformedEventAt(0),
        FaultKind::RateLimited | FaultKind::InternalError | FaultKind::Overloaded => {
            Fault::Reject(reply_for(fault))
        }
        FaultKind::Failed(_)
        | FaultKind::UpgradeRequired
        | FaultKind::WrappedErrorFrame
        | FaultKind::TamperedSealedItem => unreachable!("{fault:?} is skipped for v1"),
    }
}

/// A scripted reply for the turn after a compaction that kept its WebSocket connection.
fn next_turn_slot() -> WsSlot {
    WsSlot::new(vec![
        ev_response_created("resp-next"),
        ev_assistant_message("m-next", "NEXT REPLY"),
        ev_completed_with_tokens("resp-next", 900),
    ])
}

/// How often the fault answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persistence {
    /// The compaction's first request only; its retries meet the model.
    Once,
    /// Every attempt: the client's retries, core's retries, and over WebSocket the HTTP
    /// fallback's attempt too.
    Always,
}

/// Puts the fault where the compaction's request (or every attempt of it) will meet it.
fn inject(
    server: &TestServer,
    implementation: Implementation,
    fault: FaultKind,
    stage: Stage,
    persistence: Persistence,
) {
    // Every attempt: the first and two retries (the client's, or core's for a stream that
    // failed after it opened), then over WebSocket one more over HTTP after the fallback.
    let times = match persistence {
        Persistence::Once => 1,
        Persistence::Always => 3,
    };
    match fault {
        FaultKind::UpgradeRequired => {
            server.push_handshake_fault(HandshakeFault::Reject(ErrorReply::upgrade_required()));
            return;
        }
        // The history carries the fault.
        FaultKind::TamperedSealedItem => return,
        _ => {}
    }
    if implementation == Implementation::V1 {
        let body = json!({"output": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "write the parser"}]},
            {"type": "compaction", "id": "cmp-scripted", "encrypted_content": sealed("compaction")},
        ]});
        for _ in 0..times {
            server.push_compact(CompactScript::json(body.clone()).with_fault(compact_fault(fault)));
        }
        return;
    }
    let (events, faults) = scripted(implementation, fault, stage);
    for _ in 0..times {
        let (events, faults) = (events.clone(), faults.clone());
        match implementation {
            Implementation::V2Ws => {
                // The compaction opens the session's first connection; a turn that finds it
                // alive afterwards gets the second slot. A retry on a new connection meets the
                // model, or the next scripted connection.
                let slot = WsSlot { events, faults };
                server.push_ws_connection(WsConnectionScript::new([slot, next_turn_slot()]));
            }
            Implementation::V2Http | Implementation::Local => {
                server.push_http(HttpScript { events, faults, headers: Vec::new() });
            }
            Implementation::V1 => unreachable!("handled above"),
        }
    }
    if implementation == Implementation::V2Ws && persistence == Persistence::Always {
        // The attempt over HTTP after the fallback.
        server.push_http(HttpScript { events, faults, headers: Vec::new() });
    }
}

/// Asserts that `history` holds the installed compaction of `implementation`.
fn assert_compacted(implementation: Implementation, history: &[ResponseItem], name: &str) {
    match implementation {
        Implementation::V2Ws | Implementation::V2Http => match history.last() {
            Some(ResponseItem::ContextCompaction { encrypted_content: Some(content), .. }) => {
                assert!(SealKey::default().open(content).is_ok(), "{name}: not sealed");
            }
            other => panic!("{name}: the history does not end with the v2 item: {other:?}"),
        },
        Implementation::V1 => {
            let compactions: Vec<&ResponseItem> =
                history.iter().filter(|item| item.is_compaction()).collect();
            assert_eq!(compactions.len(), 1, "{name}: {history:#?}");
        }
        Implementation::Local => {
            let summaries = history
                .iter()
                .filter_map(ResponseItem::message_text)
                .filter(|text| text.starts_with(compactor_engine::SUMMARY_PREFIX))
                .count();
            assert_eq!(summaries, 1, "{name}: {history:#?}");
            assert!(!history.iter().any(ResponseItem::is_compaction), "{name}");
        }
    }
}

/// Runs one combination of the matrix.
async fn check(implementation: Implementation, fault: FaultKind, stage: Stage) {
    let expected = expected(implementation, fault, stage);
    Box::pin(run_case(implementation, fault, stage, Persistence::Once, expected)).await;
}

/// Runs one case and checks everything the issue asks of it.
async fn run_case(
    implementation: Implementation,
    fault: FaultKind,
    stage: Stage,
    persistence: Persistence,
    expected: Expected,
) {
    let name = format!("{implementation:?} x {fault:?} x {stage:?} x {persistence:?}");
    if let Expected::Skip(_) = expected {
        return;
    }
    let server = crate::common::reference_model().await;
    let dir = tempfile::tempdir().unwrap();
    let mut content = sealed("compaction");
    if fault == FaultKind::TamperedSealedItem {
        content = tampered(&content);
    }
    write_rollout(&dir.path().join("rollout.jsonl"), content).await;
    let config = implementation.config(&server, dir.path());
    let mut h = Harness::resume(server, config, dir).await;
    let before = h.snapshot().await;
    let generation = h.session.window_generation();
    assert_eq!(generation, 1, "{name}");

    inject(&h.server, implementation, fault, stage, persistence);
    let result = h.compact().await;

    let errors: Vec<String> = h
        .seen
        .iter()
        .filter_map(|event| match event {
            EventMsg::Error(error) => Some(error.message.clone()),
            _ => None,
        })
        .collect();
    let notices: Vec<String> = h
        .seen
        .iter()
        .filter_map(|event| match event {
            EventMsg::StreamError { message, .. } => Some(message.clone()),
            EventMsg::Warning { message } if message != LOCAL_COMPACTION_WARNING => {
                Some(message.clone())
            }
            _ => None,
        })
        .collect();
    let analytics = h.analytics_events(1).await;
    assert_eq!(analytics.len(), 1, "{name}: {analytics:#?}");
    let attempt = &analytics[0];

    match &expected {
        Expected::Skip(_) => unreachable!(),
        Expected::Recovers { notices: expected_notices, retries } => {
            assert!(result.is_ok(), "{name}: expected a recovery, got {result:?}");
            assert_eq!(notices, *expected_notices, "{name}: notices");
            assert!(errors.is_empty(), "{name}: {errors:?}");
            assert_eq!(
                (attempt.status, attempt.error.as_deref(), attempt.retries),
                (CompactionStatus::Completed, None, *retries),
                "{name}: analytics"
            );
            assert_eq!(h.session.window_generation(), generation + 1, "{name}");
            assert_eq!(h.compacted_lines().await, before.3 + 1, "{name}");
            let history = h.session.history();
            assert_compacted(implementation, &history, &name);
            assert_eq!(h.resumed_history().await, history, "{name}: resume");
            if fault == FaultKind::UpgradeRequired {
                assert!(!h.session.client().uses_websocket(), "{name}: the fallback is sticky");
            }
        }
        Expected::Fails(_) | Expected::Exhausted { .. } => {
            let (matcher, expected_notices, retries) = match &expected {
                Expected::Fails(matcher) => (matcher, Vec::new(), 0),
                Expected::Exhausted { error, notices, retries } => {
                    (error, notices.clone(), *retries)
                }
                Expected::Skip(_) | Expected::Recovers { .. } => unreachable!(),
            };
            let error = result.expect_err(&name);
            assert!(matcher.matches(&error), "{name}: expected {expected}, got {error:?}");
            assert_eq!(errors, [format!("{}: {error}", implementation.prefix())], "{name}");
            assert_eq!(notices, expected_notices, "{name}: notices");
            assert_eq!(
                (attempt.status, attempt.error.clone(), attempt.retries),
                (CompactionStatus::Failed, Some(error.to_string()), retries),
                "{name}: analytics"
            );
            assert_eq!(h.snapshot().await, before, "{name}: the state changed");
            assert_eq!(h.session.window_generation(), generation, "{name}");
        }
    }

    // The next turn works: the reference model (or the connection's scripted slot) answers, and
    // the model verifies every sealed item in the history.
    let next = h.turn("next task").await;
    if fault == FaultKind::TamperedSealedItem {
        // No retry or transport can fix a tampered item: the next request is refused the same way.
        let error = next.expect_err(&name);
        assert!(
            error.to_string().starts_with("invalid request: The encrypted content of input["),
            "{name}: {error:?}"
        );
    } else {
        next.unwrap_or_else(|error| panic!("{name}: the next turn failed: {error}"));
        let history = h.session.history();
        assert_eq!(history.last().and_then(ResponseItem::role), Some("assistant"), "{name}");
    }
    h.server.assert_no_violations();
}

/// Runs every combination of one implementation concurrently (each has its own server), and
/// reports every failing case, not just the first.
async fn run_matrix(implementation: Implementation) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(PARALLEL_CASES));
    let mut cases = tokio::task::JoinSet::new();
    for fault in FAULTS {
        for stage in STAGES {
            let slots = std::sync::Arc::clone(&slots);
            cases.spawn(async move {
                let _slot = slots.acquire_owned().await.unwrap();
                Box::pin(check(implementation, fault, stage)).await;
            });
        }
    }
    let mut failures = Vec::new();
    while let Some(joined) =
        tokio::time::timeout(MATRIX_WAIT, cases.join_next()).await.expect("the matrix timed out")
    {
        if let Err(error) = joined {
            let payload = error.into_panic();
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|text| (*text).to_owned()))
                .unwrap_or_default();
            failures.push(message);
        }
    }
    assert!(failures.is_empty(), "{} case(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix_v2_websocket() {
    run_matrix(Implementation::V2Ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix_v2_http() {
    run_matrix(Implementation::V2Http).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix_v1() {
    run_matrix(Implementation::V1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix_local() {
    run_matrix(Implementation::Local).await;
}

/// The whole table, so a change to any expectation or skip is reviewed.
#[test]
fn the_matrix_is_complete() {
    let mut table = String::new();
    for implementation in Implementation::ALL {
        for fault in FAULTS {
            for stage in STAGES {
                let outcome = expected(implementation, fault, stage);
                table
                    .push_str(&format!("{implementation:?} | {fault:?} | {stage:?} | {outcome}\n"));
            }
        }
    }
    insta::assert_snapshot!(table);
}

/// A retryable fault on every attempt: the client's retries (D10) and core's (D11, with
/// the sticky HTTP fallback over WebSocket) run out, and the compaction ends in the typed error.
fn exhausted(implementation: Implementation) -> (FaultKind, Stage, Expected) {
    let client_retries = vec![CLIENT_RETRY, "Reconnecting... 2/2"];
    match implementation {
        Implementation::V2Ws => (
            FaultKind::CloseMidStream,
            Stage::AfterCompactionItem,
            Expected::Exhausted {
                error: ErrorMatch::Is(CompactorError::stream(
                    "stream closed before response.completed",
                )),
                notices: vec![CORE_V2_RETRY, "Reconnecting... 2/2", FALLBACK],
                retries: 2,
            },
        ),
        Implementation::V2Http => (
            FaultKind::InternalError,
            Stage::BeforeFirstEvent,
            Expected::Exhausted {
                error: ErrorMatch::Is(CompactorError::InternalServerError),
                notices: client_retries,
                retries: 0,
            },
        ),
        Implementation::V1 => (
            FaultKind::RateLimited,
            Stage::BeforeFirstEvent,
            Expected::Exhausted {
                error: ErrorMatch::Is(CompactorError::RetryLimit {
                    status: 429,
                    message: "Rate limit reached for requests.".to_owned(),
                }),
                notices: client_retries,
                retries: 0,
            },
        ),
        Implementation::Local => (
            FaultKind::Overloaded,
            Stage::BeforeFirstEvent,
            Expected::Exhausted {
                error: ErrorMatch::Is(CompactorError::ServerOverloaded),
                notices: client_retries,
                retries: 0,
            },
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_end_in_the_typed_error() {
    let cases = Implementation::ALL.map(|implementation| {
        let (fault, stage, expected) = exhausted(implementation);
        tokio::spawn(run_case(implementation, fault, stage, Persistence::Always, expected))
    });
    for case in cases {
        tokio::time::timeout(MATRIX_WAIT, case).await.expect("timed out").unwrap();
    }
}
