//! A sink that logs each event as one `tracing` info event with structured fields.

use crate::event::AnalyticsEvent;
use crate::sink::{AnalyticsSink, SinkFuture};

/// Logs every event at `INFO` with target `compactor_analytics` and message
/// `compaction attempt`, one field per event field (`completed_usage` as its total).
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

impl AnalyticsSink for TracingSink {
    fn name(&self) -> &str {
        "tracing"
    }

    fn send<'a>(&'a mut self, events: &'a [AnalyticsEvent]) -> SinkFuture<'a> {
        for event in events {
            let event_type = event.event_type();
            match event {
                AnalyticsEvent::Compaction(compaction) => tracing::info!(
                    target: "compactor_analytics",
                    event_type,
                    thread_id = %compaction.thread_id,
                    turn_id = %compaction.turn_id,
                    model = %compaction.model,
                    provider = %compaction.provider,
                    compaction_id = %compaction.compaction_id,
                    attempt_number = compaction.attempt_number,
                    chain_position = compaction.chain_position,
                    chain_length = compaction.chain_length,
                    trigger = %compaction.trigger,
                    reason = %compaction.reason,
                    implementation = %compaction.implementation,
                    phase = %compaction.phase,
                    strategy = %compaction.strategy,
                    status = %compaction.status,
                    error = compaction.error.as_deref(),
                    active_context_tokens_before = compaction.active_context_tokens_before,
                    active_context_tokens_after = compaction.active_context_tokens_after,
                    started_at = compaction.started_at,
                    completed_at = compaction.completed_at,
                    duration_ms = compaction.duration_ms,
                    bytes_sent = compaction.bytes_sent,
                    retries = compaction.retries,
                    completed_usage_total_tokens =
                        compaction.completed_usage.map(|usage| usage.total_tokens),
                    compactor_version = %compaction.runtime.compactor_version,
                    "compaction attempt"
                ),
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }
}
