//! LiteLLM proxy 1.108.7 (`interop/litellm/`): the custom-provider model `interop-custom` over
//! SSE (text, a tool call, a whole core session with a prune compaction that resumes), and the
//! self-loop model `interop-loop` over WebSocket (one turn, two turns on one connection).
//!
//! LiteLLM writes `data:` lines only, ends with `data: [DONE]`, adds `model` to every event and
//! omits `logprobs` and `input_tokens_details`.

use compactor_client::{KeySource, ProviderConfig, SecretString, WebsocketMode};
use compactor_core::{PruneSettings, RemoteCompaction};
use compactor_protocol::{CompactionImplementation, ResponseItem, ToolOutput};
use pretty_assertions::assert_eq;
use serde_json::json;

use crate::common::{
    Harness, Notices, Tap, assert_text_turn, assert_tool_turn, bounded, client, peer_url, prompt,
    provider, settings, shell_output, shell_tool, stream_turn, user_texts,
};

/// The model served by `interop_provider.py` (SSE only).
const CUSTOM: &str = "interop-custom";

/// The model whose upstream is the proxy's own `/v1` (SSE and WebSocket).
const SELF_LOOP: &str = "interop-loop";

/// What the self-loop model's mock upstream says.
const SELF_LOOP_TEXT: &str = "Hello over the LiteLLM self-loop.";

fn url() -> String {
    peer_url("COMPACTOR_INTEROP_LITELLM_URL")
}

fn key() -> KeySource {
    KeySource::Value(SecretString::new(peer_url("COMPACTOR_INTEROP_LITELLM_KEY")))
}

fn http() -> ProviderConfig {
    provider("litellm", &url(), key(), WebsocketMode::Disabled)
}

#[tokio::test]
async fn sse_text_turn() {
    let client = client(http(), &Notices::default());
    let input = vec![ResponseItem::user_text("hello from compactor")];
    let turn = stream_turn(&client, &prompt(input, Vec::new()), &settings(CUSTOM)).await.unwrap();
    assert_text_turn(&turn, "LiteLLM custom provider heard: hello from compactor");
}

#[tokio::test]
async fn sse_tool_call_turn() {
    let client = client(http(), &Notices::default());
    let input = vec![ResponseItem::user_text("please use the tool to list the files")];
    let turn =
        stream_turn(&client, &prompt(input, vec![shell_tool()]), &settings(CUSTOM)).await.unwrap();
    assert_tool_turn(&turn, "shell", &json!({"cmd": "ls"}));
}

#[tokio::test]
async fn websocket_text_turn_through_the_self_loop_model() {
    let tap = Tap::start(&url()).await;
    let notices = Notices::default();
    let client =
        client(provider("litellm", &tap.url(&url()), key(), WebsocketMode::Enabled), &notices);
    let input = vec![ResponseItem::user_text("hello over a websocket")];
    let turn =
        stream_turn(&client, &prompt(input, Vec::new()), &settings(SELF_LOOP)).await.unwrap();
    assert_text_turn(&turn, SELF_LOOP_TEXT);
    notices.assert_no_fallback();
    assert_eq!(tap.connections(), 1);
}

#[tokio::test]
async fn websocket_two_turns_on_one_connection() {
    let tap = Tap::start(&url()).await;
    let notices = Notices::default();
    let client =
        client(provider("litellm", &tap.url(&url()), key(), WebsocketMode::Enabled), &notices);
    let mut history = vec![ResponseItem::user_text("first question")];
    let first =
        stream_turn(&client, &prompt(history.clone(), Vec::new()), &settings(SELF_LOOP)).await;
    let first = first.unwrap();
    let first_id = assert_text_turn(&first, SELF_LOOP_TEXT);
    // The second request extends the first: the client sends it incrementally, with
    // `previous_response_id`, on the connection the first turn left in the client.
    history.extend(first.output_items());
    history.push(ResponseItem::user_text("second question"));
    let second = stream_turn(&client, &prompt(history, Vec::new()), &settings(SELF_LOOP)).await;
    let second_id = assert_text_turn(&second.unwrap(), SELF_LOOP_TEXT);
    assert_ne!(first_id, second_id);
    notices.assert_no_fallback();
    assert_eq!(notices.all(), Vec::new(), "no retry either");
    assert_eq!(tap.connections(), 1, "both turns must share one WebSocket connection");
}

#[tokio::test]
async fn core_session_with_a_tool_round_and_a_prune_compaction_resumes() {
    let mut h = Harness::start(http(), CUSTOM, |config| {
        config.remote_compaction = RemoteCompaction::Unsupported;
        config.compaction.chain = vec![CompactionImplementation::Prune];
        // Mask every tool output, however recent: the session is short.
        config.compaction.prune = PruneSettings { protected_user_turns: 0, target_percent: 50 };
    })
    .await;

    // A turn with a tool call and its follow-up: LiteLLM reads the function call and its output
    // back from the input and answers with text.
    let answer = h.turn("please use the tool to list the files").await;
    assert_eq!(answer.unwrap(), format!("The tool returned: {}", shell_output()));
    let calls = h.tools.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].name, "shell");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&calls[0].input).unwrap(),
        json!({"cmd": "ls"})
    );

    // A prune compaction: no model call; the tool output is masked in place.
    bounded("the prune compaction", h.session.compact()).await.unwrap();
    h.drain();
    let history = h.session.history();
    let masked: Vec<String> = history
        .iter()
        .filter_map(|item| match item {
            ResponseItem::FunctionCallOutput { output: ToolOutput::Text(text), .. } => {
                Some(text.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(masked.len(), 1, "{history:#?}");
    assert!(masked[0].starts_with("[output of shell removed by compaction: "), "{}", masked[0]);
    assert_eq!(h.session.window_generation(), 1);

    // Another turn on the pruned history: LiteLLM accepts the masked tool round.
    let answer = h.turn("what did you find?").await;
    assert_eq!(answer.unwrap(), "LiteLLM custom provider heard: what did you find?");

    // The rollout resumes to the same history.
    let live = h.session.history();
    assert_eq!(
        user_texts(&live),
        ["please use the tool to list the files", "what did you find?"],
        "{live:#?}"
    );
    let (rebuilt, compacted) = h.resumed().await;
    assert_eq!(compacted, 1);
    assert_eq!(rebuilt, live);
    let resumed = h.resume().await;
    assert_eq!(resumed.history(), live);
    assert_eq!(resumed.window_generation(), 1);
}

/// With no chain configured, a session against LiteLLM compacts through local summarization.
#[tokio::test]
async fn core_session_compacts_locally_without_a_chain() {
    crate::common::compacts_locally_without_a_chain(http(), CUSTOM).await;
}
