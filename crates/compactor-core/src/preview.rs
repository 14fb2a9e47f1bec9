//! Previews (D144): what a manual compaction would do, computed without sending, installing or
//! persisting anything.

use std::borrow::Cow;
use std::sync::Arc;

use compactor_analytics::ChainPosition;
use compactor_engine::{
    Compacted, EstimateContext, SUMMARIZATION_PROMPT, V2PromptOptions, append_v2_trigger,
    collect_user_messages, summarization_prompt_with_focus, v2_request_messages,
};
use compactor_protocol::{
    CompactionImplementation, CompactionPhase, CompactionReason, CompactionReceipt,
    CompactionTrigger, CompactorError, InitialContextInjection, ReceiptStatus, ResponseItem,
};

use crate::compact::add_v1_focus;
use crate::pins::PinsAtStart;
use crate::receipt::{ReceiptFacts, ReceiptHeader, ReceiptHistories, SentItems};
use crate::session::{Session, count_history};
use crate::turn::TurnContext;

/// The compaction id of a preview's receipt: a preview is no compaction.
const PREVIEW_COMPACTION_ID: &str = "preview";

/// What to preview.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreviewOptions {
    /// The implementation (default: the first of the session's fallback chain).
    pub implementation: Option<CompactionImplementation>,
    /// The focus text of a `/compact <focus>` (D30).
    pub focus: Option<String>,
}

/// What a manual compaction would do now.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactionPreview {
    /// The receipt the compaction would write, with status `preview`. For `prune` it is the
    /// receipt the compaction writes; for the others, every item's outcome is known before the
    /// request, and only the new compaction item or summary (and so the tokens after) is not.
    pub receipt: CompactionReceipt,
    /// The JSON body of the request the compaction would send (`/responses` for v2 and local,
    /// `/responses/compact` for v1), as the client builds it; `None` for `prune`.
    pub request: Option<String>,
    /// For `prune`, the history the compaction would install. For the others, the part of it
    /// known before the request: the pin slot and the retained items, without the compaction
    /// item or summary the model would return. For v1 the server chooses what it returns; the
    /// preview assumes it returns the request's user messages, as servers do.
    pub history: Vec<ResponseItem>,
    /// Whether `history` is the whole history the compaction would install (`prune`).
    pub exact: bool,
}

impl Session {
    /// Computes what a manual compaction (`/compact`) would do now, without sending,
    /// installing or persisting anything (D144): for `prune` and for the trimming step of every
    /// implementation the exact result, for remote compaction the request it would send and the
    /// part of the history it would retain, for local compaction the summarization request. The
    /// receipt is marked as a preview.
    ///
    /// Waits for a running turn or compaction, as [`Session::compact`] does.
    ///
    /// # Errors
    ///
    /// What the compaction would fail with before its request: [`CompactorError::PinsOverBudget`],
    /// [`CompactorError::CompactionDoesNotFit`], [`CompactorError::NothingToCompact`] from `prune`;
    /// and
    /// [`CompactorError::Config`] for `server_managed`, which only a server can do.
    pub async fn preview_compaction(
        &self,
        options: &PreviewOptions,
    ) -> Result<CompactionPreview, CompactorError> {
        let _turn = self.inner.turn_lock.lock().await;
        let config = &self.inner.config;
        let chain = self.compaction_chain();
        let implementation = options
            .implementation
            .or_else(|| chain.first().copied())
            .unwrap_or(CompactionImplementation::Prune);
        let position = chain.iter().position(|entry| *entry == implementation);
        let turn = TurnContext {
            turn_id: PREVIEW_COMPACTION_ID.to_owned(),
            model: config.model.clone(),
            cancel: self.inner.cancel.child_token(),
        };
        let header = ReceiptHeader {
            compaction_id: PREVIEW_COMPACTION_ID,
            implementation,
            chain: position.map_or(ChainPosition::SINGLE, |index| {
                ChainPosition::from_index(index, chain.len())
            }),
            trigger: CompactionTrigger::Manual,
            reason: CompactionReason::UserRequested,
            phase: CompactionPhase::StandaloneTurn,
            tokens_before: self.total_token_usage(),
        };
        let (history, counts) = {
            let state = self.state();
            (Arc::clone(&state.history), state.counts.clone())
        };
        let pins = self.pins_at_start();
        if let Some(error) = pins.over_budget(
            self.pins_budget(implementation, &turn.model),
            self.inner.config.tokens.counter,
        ) {
            return Err(error);
        }
        if let Some(usable) = turn.model.model_context_window()
            && let Some(floor) =
                self.compacted_floor(implementation, &history, &counts, &turn.model)
            && let tokens = i64::try_from(floor).unwrap_or(i64::MAX)
            && tokens > usable
        {
            return Err(CompactorError::CompactionDoesNotFit { tokens, usable_window: usable });
        }
        let focus = options.focus.as_deref();
        let work = match implementation {
            CompactionImplementation::Prune => self.preview_prune(&turn, &pins)?,
            CompactionImplementation::ResponsesCompactionV2
            | CompactionImplementation::ResponsesCompact => {
                self.preview_remote(&turn, implementation, focus, &pins)?
            }
            CompactionImplementation::Responses => self.preview_local(&turn, focus, &pins)?,
            CompactionImplementation::ServerManaged => {
                return Err(CompactorError::Config(
                    "server_managed compaction happens on the server and cannot be previewed"
                        .to_owned(),
                ));
            }
        };
        let histories = ReceiptHistories {
            history: &history,
            counts: Some(&counts),
            input: &work.input,
            new_history: &work.new_history,
        };
        let mut receipt = self.compaction_receipt(
            &header,
            ReceiptStatus::Preview,
            &histories,
            &work.facts,
            &pins,
        );
        let exact = work.facts.produced == 0;
        let mut preview_history = work.new_history;
        if exact {
            let (history, counts) = count_history(preview_history, &self.item_counter()).await?;
            preview_history = history;
            let estimate = self.estimate_context();
            receipt.tokens_after = Some(self.state().total_usage_after_install(
                &preview_history,
                &counts,
                &estimate,
                &config.contextual_markers,
            ));
        } else {
            preview_history.truncate(preview_history.len().saturating_sub(work.facts.produced));
        }
        Ok(CompactionPreview { receipt, request: work.request, history: preview_history, exact })
    }

    /// `prune` exactly as a compaction runs it.
    fn preview_prune(
        &self,
        turn: &TurnContext,
        pins: &PinsAtStart,
    ) -> Result<PreviewWork, CompactorError> {
        let prepared = self.prepare_prune(turn, pins)?;
        let new_history = prepared.new_history;
        // Estimated uncorrected, as the install estimates it (D123).
        if let Some(usable) = turn.model.model_context_window() {
            let estimate = EstimateContext { calibration: None, ..self.estimate_context() };
            let tokens = i64::try_from(estimate.estimate(&new_history)).unwrap_or(i64::MAX);
            if tokens > usable {
                return Err(CompactorError::CompactionDoesNotFit { tokens, usable_window: usable });
            }
        }
        Ok(PreviewWork {
            input: prepared.input_history.to_vec(),
            new_history,
            request: None,
            facts: prepared.facts,
        })
    }

    /// v2 and v1: the trimmed history, the request with the pins the slot lacks, and what the
    /// new history keeps of it, followed by a stand-in for the compaction item.
    fn preview_remote(
        &self,
        turn: &TurnContext,
        implementation: CompactionImplementation,
        focus: Option<&str>,
        pins: &PinsAtStart,
    ) -> Result<PreviewWork, CompactorError> {
        let config = &self.inner.config;
        let history_len = self.state().history.len();
        let input_history = self.compaction_history(turn);
        let mut prompt = self.turn_prompt(&turn.model, &input_history);
        let settings = turn.settings(self);
        let (prompt_len, request) =
            if implementation == CompactionImplementation::ResponsesCompactionV2 {
                let options = V2PromptOptions { trigger_form: config.compaction.v2_trigger, focus };
                let prompt_len = append_v2_trigger(&mut prompt.input, &options);
                prompt
                    .input
                    .splice(prompt_len..prompt_len, pins.missing_from_history().map(Cow::Borrowed));
                (prompt_len, self.inner.client.responses_body(&prompt, &settings)?)
            } else {
                let prompt_len = prompt.input.len();
                add_v1_focus(&mut prompt, focus);
                prompt.input.extend(pins.missing_from_history().map(Cow::Borrowed));
                (prompt_len, self.inner.client.compact_body(&prompt, &settings)?)
            };
        let stand_in = ResponseItem::Compaction {
            id: None,
            encrypted_content: "preview".to_owned(),
            created_by: None,
        };
        let sent = &prompt.input[..prompt_len];
        let compacted = if implementation == CompactionImplementation::ResponsesCompactionV2 {
            Compacted::RemoteV2 { messages: pins.strip(v2_request_messages(sent)), item: stand_in }
        } else {
            // What servers return: the request's user messages, then the compaction item.
            let mut output: Vec<ResponseItem> = sent
                .iter()
                .filter(|item| item.role() == Some("user"))
                .map(|item| item.as_ref().clone())
                .collect();
            output.push(stand_in);
            Compacted::RemoteV1 { output: pins.strip(output) }
        };
        let new_history =
            self.lay_out(turn, InitialContextInjection::DoNotInject, &pins.items, compacted)?;
        let facts = ReceiptFacts {
            sent: Some(SentItems::All),
            trimmed: input_history.len() < history_len,
            produced: 1,
            response_id: None,
            trimmed_history: None,
        };
        Ok(PreviewWork {
            input: input_history.to_vec(),
            new_history,
            request: Some(String::from_utf8_lossy(&request).into_owned()),
            facts,
        })
    }

    /// Local compaction: the summarization request, and the retained user messages followed by a
    /// stand-in for the summary.
    fn preview_local(
        &self,
        turn: &TurnContext,
        focus: Option<&str>,
        pins: &PinsAtStart,
    ) -> Result<PreviewWork, CompactorError> {
        let config = &self.inner.config;
        let history = self.state().history.to_vec();
        let base =
            config.compaction.summarization_prompt.as_deref().unwrap_or(SUMMARIZATION_PROMPT);
        let mut input = history.clone();
        input.push(ResponseItem::user_text(summarization_prompt_with_focus(
            base,
            focus.unwrap_or_default(),
        )));
        let mut prompt = self.turn_prompt(&turn.model, &input);
        prompt.tools = Vec::new();
        prompt.parallel_tool_calls = false;
        let request = self.inner.client.responses_body(&prompt, &turn.settings(self))?;
        let user_messages =
            pins.strip_contents(collect_user_messages(&history, &config.contextual_markers));
        let compacted = Compacted::Local { user_messages: &user_messages, summary: "" };
        let new_history =
            self.lay_out(turn, InitialContextInjection::DoNotInject, &pins.items, compacted)?;
        let facts = ReceiptFacts {
            sent: Some(SentItems::Input),
            trimmed: false,
            produced: 1,
            response_id: None,
            trimmed_history: None,
        };
        Ok(PreviewWork {
            new_history,
            input: history,
            request: Some(String::from_utf8_lossy(&request).into_owned()),
            facts,
        })
    }
}

/// One implementation's part of a preview.
struct PreviewWork {
    /// The history the implementation works on.
    input: Vec<ResponseItem>,
    /// The new history, with a stand-in for what the model would produce.
    new_history: Vec<ResponseItem>,
    /// The request's JSON body.
    request: Option<String>,
    facts: ReceiptFacts,
}
