//! Every compaction implementation, the fallback chain, the loop guard, reactive compaction,
//! hooks and focus text.

use std::sync::{Arc, Mutex};

use compactor_core::{
    CompactHookInput, CompactHooks, HookFuture, HookOutcome, ToolCall, ToolFuture, ToolHandler,
};
use compactor_protocol::display::format_history_truncated;
use compactor_protocol::{
    CompactionImplementation, CompactionStatus, CompactorError, EventMsg, HookEventName, Reasoning,
    ResponseItem, ToolOutput,
};
use compactor_testkit::events::{
    ev_assistant_message, ev_completed, ev_completed_with_tokens, ev_context_compaction, ev_failed,
    ev_function_call, ev_output_item_done, ev_response_created,
};
use compactor_testkit::{ReferenceModelConfig, TestServer, ToolCallPolicy};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::common::{Harness, Options, Transport, event_types, session_config};

fn http_options(window: i64) -> Options {
    Options { transport: Transport::Http, response_processed: false, context_window: window }
}

fn reply(id: &str, text: &str) -> Vec<Value> {
    vec![ev_response_created(id), ev_assistant_message(&format!("m-{id}"), text), ev_completed(id)]
}

/// A response that fails with `code`.
fn failed(id: &str, code: &str, message: &str) -> Vec<Value> {
    vec![ev_response_created(id), ev_failed(id, code, message)]
}

fn input_of(request: &Value) -> Vec<ResponseItem> {
    serde_json::from_value(request["input"].clone()).unwrap()
}

fn render(items: &[ResponseItem]) -> String {
    format_history_truncated(items, 60)
}

/// Answers every tool call with `size` bytes of output.
struct BigOutputs(usize);

impl ToolHandler for BigOutputs {
    fn call<'a>(&'a self, call: &'a ToolCall) -> ToolFuture<'a> {
        let line = format!("{} output line\n", call.name);
        let text = line.repeat(self.0 / line.len() + 1);
        Box::pin(std::future::ready(ToolOutput::Text(text)))
    }
}

async fn harness_with(
    server: TestServer,
    options: &Options,
    edit: impl FnOnce(&mut compactor_core::SessionConfig),
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut config = session_config(&server, dir.path(), options);
    edit(&mut config);
    Harness::with_config(server, config, dir).await
}

#[tokio::test]
async fn v1_manual_sends_the_turn_settings_and_installs_the_output() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("resp-1", "first reply"));
    server.push_compact_json(json!({"output": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "first task"}]},
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "stale instructions"}]},
        {"type": "compaction", "encrypted_content": "ENC_V1"}
    ]}));
    server.push_sse(reply("resp-2", "second reply"));
    let mut h = harness_with(server, &http_options(100_000), |config| {
        config.features.remote_compaction_v2 = false;
        config.tools =
            vec![json!({"type": "function", "name": "shell", "parameters": {"type": "object"}})];
        config.parallel_tool_calls = true;
        config.model.reasoning =
            Some(Reasoning { effort: Some("medium".into()), summary: Some("auto".into()) });
    })
    .await;
    h.turn("first task").await.unwrap();
    h.compact().await.unwrap();
    h.turn("second task").await.unwrap();

    let compact = h.server.compact_requests();
    assert_eq!(compact.len(), 1);
    let body = compact[0].body_json();
    let turn_body = h.server.responses_requests()[0].body_json().clone();
    for key in ["tools", "parallel_tool_calls", "reasoning", "model", "instructions"] {
        assert_eq!(body[key], turn_body[key], "{key}");
    }
    for key in ["stream", "store", "include", "tool_choice"] {
        assert!(body.get(key).is_none(), "{key} must be omitted");
    }
    let follow_up = input_of(h.server.responses_requests()[1].body_json());
    insta::assert_snapshot!(render(&follow_up), @r"
    00:message/user:first task
    01:compaction:encrypted=true
    02:message/developer:<permissions instructions>
    03:message/user:<environment_context>cwd=/repo</environment_context>
    04:message/user:second task
    ");
    let events = h.analytics_events(1).await;
    assert_eq!(events[0].implementation, CompactionImplementation::ResponsesCompact);
    h.server.assert_no_violations();
}

#[tokio::test]
async fn v1_auto_pre_turn() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(vec![
        ev_response_created("r1"),
        ev_assistant_message("m1", "done"),
        ev_completed_with_tokens("r1", 9_500),
    ]);
    server.push_compact_json(json!({"output": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "first task"}]},
        {"type": "compaction", "encrypted_content": "ENC_V1"}
    ]}));
    server.push_sse(reply("r2", "ok"));
    let mut h = harness_with(server, &http_options(10_000), |config| {
        config.features.remote_compaction_v2 = false;
    })
    .await;
    h.turn("first task").await.unwrap();
    h.turn("second task").await.unwrap();
    assert_eq!(h.server.compact_requests().len(), 1);
    assert!(!h.server.compact_requests()[0].body_contains_text("second task"));
    let follow_up = input_of(h.server.responses_requests()[1].body_json());
    insta::assert_snapshot!(render(&follow_up), @r"
    00:message/user:first task
    01:compaction:encrypted=true
    02:message/developer:<permissions instructions>
    03:message/user:<environment_context>cwd=/repo</environment_context>
    04:message/user:second task
    ");
}

#[tokio::test]
async fn local_manual_layouts() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("r1", "FIRST_REPLY"));
    server.push_sse(reply("r-sum", "SUMMARY"));
    server.push_sse(reply("r2", "ok"));
    let mut h = harness_with(server, &http_options(100_000), |config| {
        config.compaction.chain = vec![CompactionImplementation::Responses];
        config.compaction.summarization_prompt = Some("<SUMMARIZATION_PROMPT>".into());
    })
    .await;
    h.turn("first manual turn").await.unwrap();
    h.compact().await.unwrap();
    h.turn("second manual turn").await.unwrap();
    let requests = h.server.responses_requests();
    let compact_request = input_of(requests[1].body_json());
    assert_eq!(requests[1].body_json()["tools"], json!([]));
    let follow_up = input_of(requests[2].body_json());
    insta::assert_snapshot!(format!("{}--\n{}", render(&compact_request), render(&follow_up)), @r"
    00:message/developer:<permissions instructions>
    01:message/user:<environment_context>cwd=/repo</environment_context>
    02:message/user:first manual turn
    03:message/assistant:FIRST_REPLY
    04:message/user:<SUMMARIZATION_PROMPT>
    --
    00:message/user:first manual turn
    01:message/user:[compacted context] The conversation before this point was c…(+143 chars)
    02:message/developer:<permissions instructions>
    03:message/user:<environment_context>cwd=/repo</environment_context>
    04:message/user:second manual turn
    ");
    assert!(follow_up[1].message_text().unwrap().ends_with("\nSUMMARY"));
    assert!(h.seen.iter().any(|e| matches!(e, EventMsg::Warning { message } if message == compactor_core::LOCAL_COMPACTION_WARNING)));
}

#[tokio::test]
async fn local_mid_turn_layout() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(vec![
        ev_response_created("r1"),
        ev_function_call("call-1", "shell", "{}"),
        ev_completed_with_tokens("r1", 9_500),
    ]);
    server.push_sse(reply("r-sum", "AUTO_SUMMARY"));
    server.push_sse(reply("r2", "done"));
    let mut h = harness_with(server, &http_options(10_000), |config| {
        config.compaction.chain = vec![CompactionImplementation::Responses];
        config.compaction.summarization_prompt = Some("<SUMMARIZATION_PROMPT>".into());
    })
    .await;
    h.turn("run the tests").await.unwrap();
    let requests = h.server.responses_requests();
    assert_eq!(requests.len(), 3);
    insta::assert_snapshot!(
        format!("{}--\n{}", render(&input_of(requests[1].body_json())), render(&input_of(requests[2].body_json()))),
        @r"
    00:message/developer:<permissions instructions>
    01:message/user:<environment_context>cwd=/repo</environment_context>
    02:message/user:run the tests
    03:function_call/shell
    04:function_call_output:unsupported call: shell
    05:message/user:<SUMMARIZATION_PROMPT>
    --
    00:message/developer:<permissions instructions>
    01:message/user:<environment_context>cwd=/repo</environment_context>
    02:message/user:run the tests
    03:message/user:[compacted context] The conversation before this point was c…(+148 chars)
    "
    );
}

#[tokio::test]
async fn local_overflow_drops_exactly_the_oldest_item() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("r1", "FIRST_REPLY"));
    server.push_sse(failed("r-over", "context_length_exceeded", "too long"));
    server.push_sse(reply("r-sum", "SUMMARY"));
    let mut h = harness_with(server, &http_options(100_000), |config| {
        config.compaction.chain = vec![CompactionImplementation::Responses];
    })
    .await;
    h.turn("first manual turn").await.unwrap();
    h.compact().await.unwrap();
    let requests = h.server.responses_requests();
    assert_eq!(requests.len(), 3);
    let first = input_of(requests[1].body_json());
    let second = input_of(requests[2].body_json());
    assert_eq!(second, first[1..]);
    let events = h.analytics_events(1).await;
    assert_eq!(events[0].status, CompactionStatus::Completed);
}

#[tokio::test]
async fn chain_falls_back_to_prune() {
    let server = TestServer::scripted().await.unwrap();
    for turn in 0..3 {
        server.push_sse(vec![
            ev_response_created("c"),
            ev_function_call(&format!("call-{turn}"), "shell", "{}"),
            ev_completed("c"),
        ]);
        server.push_sse(reply("r", "ok"));
    }
    // v2: a payload-less item (fatal); local: a refused prompt (not retryable).
    server.push_sse(vec![
        ev_response_created("v2"),
        ev_output_item_done(json!({"type": "context_compaction"})),
        ev_completed("v2"),
    ]);
    server.push_sse(failed("local", "invalid_prompt", "refused"));
    let h = harness_with(server, &http_options(100_000), |config| {
        config.compaction.chain = vec![
            CompactionImplementation::ResponsesCompactionV2,
            CompactionImplementation::Responses,
            CompactionImplementation::Prune,
        ];
        config.model.auto_compact_token_limit = Some(2_000);
    })
    .await;
    let (session, mut events) = rebuild_with_tools(&h, BigOutputs(6_000)).await;
    for turn in 0..3 {
        session
            .run_turn(vec![compactor_protocol::ContentItem::InputText {
                text: format!("task {turn}"),
            }])
            .await
            .unwrap();
    }
    session.compact().await.unwrap();
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    let analytics = h.analytics_events(3).await;
    let statuses: Vec<_> =
        analytics.iter().map(|e| (e.implementation, e.status, e.chain_position)).collect();
    assert_eq!(
        statuses,
        [
            (CompactionImplementation::ResponsesCompactionV2, CompactionStatus::Failed, 1),
            (CompactionImplementation::Responses, CompactionStatus::Failed, 2),
            (CompactionImplementation::Prune, CompactionStatus::Completed, 3),
        ]
    );
    assert!(analytics.iter().all(|e| e.compaction_id == analytics[0].compaction_id));
    let types = event_types(&seen);
    assert_eq!(types.iter().filter(|t| *t == "item_started").count(), 1);
    assert_eq!(types.iter().filter(|t| *t == "item_completed").count(), 1);
    assert!(!types.iter().any(|t| t == "error"));
    // Prune masked and then dropped the tool traffic; every user message stays.
    let history = session.history();
    assert!(!history.iter().any(|item| item.output_call_id().is_some()));
    let users: Vec<String> = history
        .iter()
        .filter(|i| i.role() == Some("user"))
        .filter_map(ResponseItem::message_text)
        .collect();
    assert_eq!(users[1..], ["task 0", "task 1", "task 2"]);
}

/// A second session on the harness's server and analytics with other tools.
async fn rebuild_with_tools(
    h: &Harness,
    tools: impl ToolHandler,
) -> (compactor_core::Session, tokio::sync::mpsc::Receiver<EventMsg>) {
    let config = h.session.config().clone();
    let mut config = config;
    config.rollout_path = Some(h.dir.path().join("rollout-tools.jsonl"));
    let analytics = compactor_analytics::AnalyticsClient::start(
        compactor_analytics::AnalyticsConfig::default(),
        vec![Box::new(h.analytics.clone())],
    )
    .unwrap();
    compactor_core::Session::builder(config)
        .tools(tools)
        .analytics(analytics)
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn loop_guard_ends_a_turn_whose_request_cannot_fit_after_compaction() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(vec![
        ev_response_created("r1"),
        ev_assistant_message("m-r1", "noted"),
        ev_completed_with_tokens("r1", 8_000),
    ]);
    server.push_sse(vec![
        ev_response_created("rc"),
        ev_context_compaction("cc", "ENC"),
        ev_completed("rc"),
    ]);
    let mut h = Harness::start(server, http_options(10_000)).await;
    h.turn("first").await.unwrap();
    // About 9 600 tokens: the history is compacted first, and the message still does not fit
    // the 9 500-token usable window.
    let error = h.turn(&"word ".repeat(7_700)).await.unwrap_err();
    let CompactorError::CompactionMadeNoProgress { retained_tokens, limit, window } = error else {
        panic!("{error}");
    };
    assert!(retained_tokens > 9_500, "{retained_tokens}");
    assert_eq!((limit, window), (9_000, 9_500));
    assert_eq!(h.server.requests().len(), 2, "one sampling request, one compaction, nothing after");
    let history = h.session.history();
    assert!(history.iter().any(ResponseItem::is_compaction), "the compacted history stays");
    assert!(
        !history
            .iter()
            .any(|item| item.message_text().is_some_and(|text| text.starts_with("word"))),
        "the message that cannot fit is not recorded"
    );
    let message = format!(
        "compaction made no progress: {retained_tokens} tokens remain after compaction, over the \
         usable context window of 9500 tokens (auto-compact limit 9000)"
    );
    assert!(h.seen.iter().any(|e| matches!(e, EventMsg::Error(e) if e.message == message)));
}

#[tokio::test]
async fn over_the_limit_after_a_compaction_the_turn_samples_while_the_request_fits() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(vec![
        ev_response_created("r1"),
        ev_function_call("call-1", "shell", "{}"),
        ev_completed_with_tokens("r1", 9_200),
    ]);
    // The compacted history (about 9 200 tokens) stays over the limit but fits the window.
    server.push_sse(vec![
        ev_response_created("rc"),
        ev_context_compaction("cc", &"E".repeat(49_900)),
        ev_completed("rc"),
    ]);
    server.push_sse(reply("r2", "done"));
    let mut h = Harness::start(server, http_options(10_000)).await;
    h.turn("go").await.unwrap();
    let events = h.analytics_events(1).await;
    let after = events[0].active_context_tokens_after;
    assert!((9_000..=9_500).contains(&after), "over the limit, within the window: {after}");
    assert_eq!(h.server.requests().len(), 3, "sample, compact, sample again");
    assert!(!h.seen.iter().any(|e| matches!(e, EventMsg::Error(_))));
}

/// A scripted turn for the per-turn cap: a call reported at 9 200 tokens, a compaction, a second
/// call reported at `second_usage` tokens, and (when it is sent) a reply.
async fn capped_turn(second_usage: i64) -> (Harness, Result<(), CompactorError>) {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(vec![
        ev_response_created("r1"),
        ev_function_call("call-1", "shell", "{}"),
        ev_completed_with_tokens("r1", 9_200),
    ]);
    server.push_sse(vec![
        ev_response_created("rc"),
        ev_context_compaction("cc", "ENC"),
        ev_completed("rc"),
    ]);
    server.push_sse(vec![
        ev_response_created("r2"),
        ev_function_call("call-2", "shell", "{}"),
        ev_completed_with_tokens("r2", second_usage),
    ]);
    server.push_sse(reply("r3", "done"));
    let mut h = harness_with(server, &http_options(10_000), |config| {
        config.compaction.max_auto_compactions_per_turn = 1;
    })
    .await;
    let result = h.turn("go").await;
    (h, result)
}

#[tokio::test]
async fn past_the_cap_a_request_that_fits_is_sent_without_compacting() {
    // 9 300 tokens: over the 9 000-token limit, within the 9 500-token usable window.
    let (h, result) = capped_turn(9_300).await;
    result.unwrap();
    assert_eq!(h.server.requests().len(), 4, "sample, compact, sample, sample");
    assert_eq!(h.seen.iter().filter(|e| matches!(e, EventMsg::ContextCompacted {})).count(), 1);
}

#[tokio::test]
async fn past_the_cap_a_request_that_cannot_fit_ends_the_turn() {
    let (h, result) = capped_turn(9_800).await;
    let error = result.unwrap_err();
    assert!(
        matches!(error, CompactorError::CompactionMadeNoProgress { window: 9_500, .. }),
        "{error}"
    );
    assert_eq!(h.server.requests().len(), 3, "nothing is sent that cannot fit");
}

#[tokio::test]
async fn reactive_compaction_retries_once() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("r0", "hello"));
    server.push_sse(failed("r-over", "context_length_exceeded", "too long"));
    server.push_sse(vec![
        ev_response_created("rc"),
        ev_context_compaction("cc", "ENC"),
        ev_completed("rc"),
    ]);
    server.push_sse(reply("r2", "fits now"));
    let mut h = Harness::start(server, http_options(100_000)).await;
    h.turn("first").await.unwrap();
    h.turn("second").await.unwrap();
    let requests = h.server.responses_requests();
    assert_eq!(requests.len(), 4);
    let rebuilt = input_of(requests[3].body_json());
    assert!(
        rebuilt.iter().any(ResponseItem::is_compaction),
        "the retried request is rebuilt from the compacted history"
    );
    let events = h.analytics_events(1).await;
    assert_eq!(events[0].status, CompactionStatus::Completed);

    // A second overflow after the reactive compaction ends the turn with the typed error.
    h.server.push_sse(failed("r-over2", "context_length_exceeded", "too long"));
    h.server.push_sse(vec![
        ev_response_created("rc2"),
        ev_context_compaction("cc2", "ENC2"),
        ev_completed("rc2"),
    ]);
    h.server.push_sse(failed("r-over3", "context_length_exceeded", "still too long"));
    let error = h.turn("third").await.unwrap_err();
    assert_eq!(error, CompactorError::ContextWindowExceeded);
}

#[derive(Clone, Default)]
struct RecordingHooks {
    calls: Arc<Mutex<Vec<CompactHookInput>>>,
    stop_pre: bool,
}

impl CompactHooks for RecordingHooks {
    fn pre_compact<'a>(&'a self, input: &'a CompactHookInput) -> HookFuture<'a> {
        self.calls.lock().unwrap().push(input.clone());
        let outcome = if self.stop_pre {
            HookOutcome::Stop { reason: "not now".into() }
        } else {
            HookOutcome::Continue
        };
        Box::pin(std::future::ready(outcome))
    }

    fn post_compact<'a>(&'a self, input: &'a CompactHookInput) -> HookFuture<'a> {
        self.calls.lock().unwrap().push(input.clone());
        Box::pin(std::future::ready(HookOutcome::Continue))
    }
}

#[tokio::test]
async fn hooks_wrap_the_item_events() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("r1", "hi"));
    server.push_sse(vec![
        ev_response_created("rc"),
        ev_context_compaction("cc", "ENC"),
        ev_completed("rc"),
    ]);
    let hooks = RecordingHooks::default();
    let dir = tempfile::tempdir().unwrap();
    let config = session_config(&server, dir.path(), &http_options(100_000));
    let (session, mut events) =
        compactor_core::Session::builder(config).hooks(hooks.clone()).build().await.unwrap();
    session
        .run_turn(vec![compactor_protocol::ContentItem::InputText { text: "task".into() }])
        .await
        .unwrap();
    session.compact().await.unwrap();
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    let types = event_types(&seen);
    let start = types.iter().rposition(|t| t == "turn_started").unwrap();
    assert_eq!(
        types[start..],
        [
            "turn_started",
            "hook_started",
            "hook_completed",
            "item_started",
            "token_count",
            "item_completed",
            "context_compacted",
            "compaction_receipt",
            "hook_started",
            "hook_completed",
            "turn_complete",
        ]
    );
    let calls = hooks.calls.lock().unwrap().clone();
    assert_eq!(
        calls.iter().map(|c| c.hook_event_name).collect::<Vec<_>>(),
        [HookEventName::PreCompact, HookEventName::PostCompact]
    );
    assert_eq!(calls[0].trigger, compactor_protocol::CompactionTrigger::Manual);
    assert_eq!(calls[0].transcript_path, Some(dir.path().join("rollout.jsonl")));
    server.assert_no_violations();
}

#[tokio::test]
async fn a_stopping_pre_compact_hook_sends_nothing() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("r1", "hi"));
    let hooks = RecordingHooks { stop_pre: true, ..RecordingHooks::default() };
    let dir = tempfile::tempdir().unwrap();
    let config = session_config(&server, dir.path(), &http_options(100_000));
    let (session, _events) =
        compactor_core::Session::builder(config).hooks(hooks).build().await.unwrap();
    session
        .run_turn(vec![compactor_protocol::ContentItem::InputText { text: "task".into() }])
        .await
        .unwrap();
    let before = session.history();
    let error = session.compact().await.unwrap_err();
    assert_eq!(error, CompactorError::TurnAborted { reason: "not now".into() });
    assert_eq!(server.requests().len(), 1);
    assert_eq!(session.history(), before);
}

#[tokio::test]
async fn focus_text_reaches_every_implementation() {
    let focus = "keep the parser design";
    // v2: a developer message just before the trigger.
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("r1", "hi"));
    server.push_sse(vec![
        ev_response_created("rc"),
        ev_context_compaction("cc", "ENC"),
        ev_completed("rc"),
    ]);
    let h = Harness::start(server, http_options(100_000)).await;
    h.session
        .run_turn(vec![compactor_protocol::ContentItem::InputText { text: "task".into() }])
        .await
        .unwrap();
    h.session.compact_with_focus(focus).await.unwrap();
    let input = input_of(h.server.responses_requests()[1].body_json());
    let n = input.len();
    assert_eq!(input[n - 1], ResponseItem::context_compaction_trigger());
    assert!(
        input[n - 2].role() == Some("developer")
            && input[n - 2].message_text().unwrap().ends_with(focus)
    );

    // v1: appended to the instructions.
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("r1", "hi"));
    server.push_compact_json(json!({"output": [{"type": "compaction", "encrypted_content": "E"}]}));
    let h =
        harness_with(server, &http_options(100_000), |c| c.features.remote_compaction_v2 = false)
            .await;
    h.session
        .run_turn(vec![compactor_protocol::ContentItem::InputText { text: "task".into() }])
        .await
        .unwrap();
    h.session.compact_with_focus(focus).await.unwrap();
    let instructions =
        h.server.compact_requests()[0].body_json()["instructions"].as_str().unwrap().to_owned();
    assert!(instructions.starts_with("You are a coding agent.") && instructions.ends_with(focus));

    // local: in the summarization prompt.
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("r1", "hi"));
    server.push_sse(reply("rs", "SUMMARY"));
    let h = harness_with(server, &http_options(100_000), |c| {
        c.compaction.chain = vec![CompactionImplementation::Responses];
    })
    .await;
    h.session
        .run_turn(vec![compactor_protocol::ContentItem::InputText { text: "task".into() }])
        .await
        .unwrap();
    h.session.compact_with_focus(focus).await.unwrap();
    let input = input_of(h.server.responses_requests()[1].body_json());
    assert!(input.last().unwrap().message_text().unwrap().ends_with(focus));
}

/// 40 turns with ~2 000-token tool outputs in a 32 000-token window on the reference model.
async fn long_session(options: Options, edit: impl FnOnce(&mut compactor_core::SessionConfig)) {
    let model = ReferenceModelConfig {
        tool_calls: ToolCallPolicy::OnUserText {
            trigger: "run".into(),
            name: "shell".into(),
            arguments: r#"{"cmd":"cargo test"}"#.into(),
        },
        ..ReferenceModelConfig::default()
    };
    let server = crate::common::enforcing_reference_model(model, options.context_window).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = session_config(&server, dir.path(), &options);
    edit(&mut config);
    let window = config.model.context_window.unwrap();
    let analytics = compactor_analytics::MemorySink::default();
    let client = compactor_analytics::AnalyticsClient::start(
        compactor_analytics::AnalyticsConfig::default(),
        vec![Box::new(analytics.clone())],
    )
    .unwrap();
    let (session, mut events) = compactor_core::Session::builder(config)
        .tools(BigOutputs(8_000))
        .analytics(client)
        .build()
        .await
        .unwrap();
    let mut max_usage = 0;
    for turn in 0..40 {
        session
            .run_turn(vec![compactor_protocol::ContentItem::InputText {
                text: format!("run step {turn}"),
            }])
            .await
            .unwrap_or_else(|e| panic!("turn {turn}: {e}"));
        while let Ok(event) = events.try_recv() {
            if let EventMsg::TokenCount { info: Some(info), .. } = event {
                max_usage = max_usage.max(
                    info.last_token_usage.input_tokens.max(info.last_token_usage.total_tokens),
                );
            }
        }
    }
    assert!(max_usage > 0 && max_usage < window, "max request {max_usage} of {window}");
    analytics.wait_for(1).await;
    let compactions = analytics.compaction_events();
    assert!(compactions.len() >= 2, "{} compactions", compactions.len());
    assert!(compactions.iter().all(|e| e.status == CompactionStatus::Completed));
    server.assert_no_violations();
}

#[tokio::test]
async fn long_session_v2_websocket() {
    long_session(Options { context_window: 32_000, ..Options::default() }, |_| {}).await;
}

#[tokio::test]
async fn long_session_v2_http() {
    long_session(http_options(32_000), |_| {}).await;
}

#[tokio::test]
async fn long_session_v1() {
    long_session(http_options(32_000), |c| c.features.remote_compaction_v2 = false).await;
}

#[tokio::test]
async fn long_session_local() {
    long_session(http_options(32_000), |c| {
        c.compaction.chain = vec![CompactionImplementation::Responses];
    })
    .await;
}

#[tokio::test]
async fn long_session_prune() {
    long_session(http_options(32_000), |c| {
        c.compaction.chain = vec![CompactionImplementation::Prune];
    })
    .await;
}
