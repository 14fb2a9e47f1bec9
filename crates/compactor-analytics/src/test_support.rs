//! Test helpers: a `tracing` subscriber that keeps every event and span as a line of text.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use compactor_protocol::{
    CompactionImplementation, CompactionPhase, CompactionReason, CompactionStatus,
    CompactionStrategy, CompactionTrigger, TokenUsage,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use crate::event::{CompactionEvent, RuntimeInfo};

/// A runtime that does not depend on the machine running the tests.
pub(crate) fn fixed_runtime() -> RuntimeInfo {
    RuntimeInfo {
        compactor_version: "0.0.0-test".to_owned(),
        runtime_os: "linux".to_owned(),
        runtime_arch: "x86_64".to_owned(),
    }
}

/// A completed v2 attempt with fixed times; `attempt_number` distinguishes events.
pub(crate) fn sample_event(attempt_number: u32) -> CompactionEvent {
    CompactionEvent {
        thread_id: "thread-1".to_owned(),
        turn_id: "turn-2".to_owned(),
        runtime: fixed_runtime(),
        model: "gpt-test".to_owned(),
        provider: "testkit".to_owned(),
        trigger: CompactionTrigger::Auto,
        reason: CompactionReason::ContextLimit,
        implementation: CompactionImplementation::ResponsesCompactionV2,
        phase: CompactionPhase::MidTurn,
        strategy: CompactionStrategy::Memento,
        status: CompactionStatus::Completed,
        error: None,
        active_context_tokens_before: 250_000,
        active_context_tokens_after: 18_000,
        started_at: 1_750_000_000,
        started_at_ms: 1_750_000_000_125,
        completed_at: 1_750_000_003,
        duration_ms: 3_250,
        compaction_id: "compaction-item-9".to_owned(),
        attempt_number,
        chain_position: attempt_number,
        chain_length: 3,
        bytes_sent: 1_000_000,
        retries: 1,
        completed_usage: Some(TokenUsage {
            input_tokens: 240_000,
            cached_input_tokens: 200_000,
            output_tokens: 4_000,
            reasoning_output_tokens: 1_000,
            total_tokens: 244_000,
        }),
        receipt: None,
    }
}

/// The lines recorded by [`CapturedLogs::subscriber`]'s subscriber.
#[derive(Clone, Default)]
pub(crate) struct CapturedLogs {
    lines: Arc<Mutex<Vec<String>>>,
}

impl CapturedLogs {
    /// A subscriber recording into these logs; install it with `tracing::subscriber::set_default`
    /// inside a current-thread runtime so that spawned tasks use it too.
    pub(crate) fn subscriber(&self) -> impl Subscriber + Send + Sync + 'static {
        Recorder { logs: self.clone(), next_span: AtomicU64::new(1) }
    }

    /// Every line so far: `LEVEL target message field=value ...`.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn push(&self, line: String) {
        self.lines.lock().unwrap().push(line);
    }
}

struct Recorder {
    logs: CapturedLogs,
    next_span: AtomicU64,
}

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            write!(self.0, " {value:?}").unwrap();
        } else {
            write!(self.0, " {}={value:?}", field.name()).unwrap();
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        write!(self.0, " {}={value}", field.name()).unwrap();
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _metadata: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut line = Line(format!("SPAN {}", span.metadata().name()));
        span.record(&mut line);
        self.logs.push(line.0);
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _span: &Id, values: &Record<'_>) {
        let mut line = Line("SPAN-RECORD".to_owned());
        values.record(&mut line);
        self.logs.push(line.0);
    }

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let metadata = event.metadata();
        let mut line = Line(format!("{} {}", metadata.level(), metadata.target()));
        event.record(&mut line);
        self.logs.push(line.0);
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}
