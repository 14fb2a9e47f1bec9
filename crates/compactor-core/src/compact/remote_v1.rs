//! Remote compaction v1 (D8): `POST /responses/compact` with the turn's tools and settings.

use std::borrow::Cow;

use compactor_engine::Compacted;
use compactor_protocol::{CompactorError, Prompt};
use compactor_rollout_trace::CompactionTraceContext;

use super::{AttemptStats, CompactionRequest, Prepared, SentCapture};
use crate::pins::PinsAtStart;
use crate::receipt::{ReceiptFacts, SentItems};
use crate::session::Session;
use crate::turn::TurnContext;

impl Session {
    /// Sends the history to `/responses/compact` and processes the returned history (D16).
    /// Focus text is appended to the instructions (D30). The pins the history's pin slot does
    /// not hold yet go in last, as ordinary input (D146).
    pub(super) async fn prepare_v1(
        &self,
        turn: &TurnContext,
        request: CompactionRequest<'_>,
        trace: &CompactionTraceContext,
        stats: &mut AttemptStats,
        pins: &PinsAtStart,
    ) -> Result<Prepared, CompactorError> {
        let history_len = self.state().history.len();
        let input_history = self.compaction_history(turn);
        let mut prompt = self.turn_prompt(&turn.model, &input_history);
        prompt.input.extend(pins.missing_from_history().map(Cow::Borrowed));
        add_v1_focus(&mut prompt, request.focus);
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
        stats.request_id = attempt.request_id().map(str::to_owned);
        match &result {
            Ok(output) => attempt.record_result(Ok(output)).await,
            Err(error) => attempt.record_result(Err(error)).await,
        }
        let compacted = Compacted::RemoteV1 { output: pins.strip(result?) };
        let new_history = self.lay_out(turn, request.injection, &pins.items, compacted)?;
        let produced = new_history.iter().rev().take_while(|item| item.is_compaction()).count();
        let facts = ReceiptFacts {
            sent: Some(SentItems::All),
            trimmed: input_history.len() < history_len,
            produced,
            response_id: None,
            trimmed_history: None,
        };
        Ok(Prepared {
            input_history,
            new_history,
            message: String::new(),
            response_id: None,
            usage: None,
            reset_websocket: true,
            keep_reference: false,
            facts,
        })
    }
}

/// Appends a manual compaction's focus text to a v1 prompt's instructions (D30).
pub(crate) fn add_v1_focus(prompt: &mut Prompt<'_>, focus: Option<&str>) {
    if let Some(focus) = focus.map(str::trim).filter(|focus| !focus.is_empty()) {
        prompt.base_instructions = format!(
            "{}\n\nWhen you compact this conversation, give priority to preserving the following:\n{focus}",
            prompt.base_instructions
        );
    }
}
