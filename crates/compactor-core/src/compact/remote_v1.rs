//! Remote compaction v1 (D8): `POST /responses/compact` with the turn's tools and settings.

use compactor_engine::{Compacted, compacted_history};
use compactor_protocol::CompactorError;
use compactor_rollout_trace::CompactionTraceContext;

use super::{AttemptStats, CompactionRequest, Prepared, SentCapture};
use crate::session::Session;
use crate::turn::TurnContext;

impl Session {
    /// Sends the history to `/responses/compact` and processes the returned history (D16).
    /// Focus text is appended to the instructions (D30).
    pub(super) async fn prepare_v1(
        &self,
        turn: &TurnContext,
        request: CompactionRequest<'_>,
        trace: &CompactionTraceContext,
        stats: &mut AttemptStats,
    ) -> Result<Prepared, CompactorError> {
        let input_history = self.compaction_history(turn);
        let mut prompt = self.turn_prompt(&turn.model, &input_history);
        if let Some(focus) = request.focus.map(str::trim).filter(|focus| !focus.is_empty()) {
            prompt.base_instructions = format!(
                "{}\n\nWhen you compact this conversation, give priority to preserving the following:\n{focus}",
                prompt.base_instructions
            );
        }
        let settings = turn.settings(self);
        let mut sent = SentCapture::new(trace);
        let result = self
            .inner
            .client
            .compact_with_report(&prompt, &settings, &mut |report| sent.keep(report))
            .await
            .and_then(|output| {
                if output.is_empty() {
                    Err(CompactorError::Fatal("remote compaction v1 returned no output".to_owned()))
                } else {
                    Ok(output)
                }
            });
        stats.bytes_sent = stats.bytes_sent.saturating_add(sent.wire_len());
        let attempt = sent.start_attempt().await;
        match &result {
            Ok(output) => attempt.record_result(Ok(output)).await,
            Err(error) => attempt.record_result(Err(error)).await,
        }
        let compacted = Compacted::RemoteV1 { output: result? };
        let new_history = compacted_history(compacted, &self.layout(turn, request.injection))?;
        Ok(Prepared {
            input_history,
            new_history,
            message: String::new(),
            response_id: None,
            usage: None,
            reset_websocket: true,
            keep_reference: false,
        })
    }
}
