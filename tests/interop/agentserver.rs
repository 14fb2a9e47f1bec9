//! Microsoft `azure-ai-agentserver-responses` 2.3.0 (`interop/agentserver/handler.py`): it
//! validates every request body against the Responses schema, so it is the judge of what
//! Compactor sends. Every request goes through a [`Tap`], and a `400` fails the test with the
//! JSON paths the server named.
//!
//! Its streams have `event:` lines, an `agent_reference` on items, and no `tools`/`tool_choice`
//! in the response object. Its routes have no `/v1` prefix. It has no WebSocket and no
//! `/responses/compact`.

use compactor_client::{KeySource, ModelClient, WebsocketMode};
use compactor_protocol::{
    CompactorError, ContentItem, ContextManagement, Prompt, Reasoning, ResponseItem, TurnSettings,
};
use pretty_assertions::assert_eq;
use serde_json::json;

use crate::common::{
    Harness, Notices, Tap, Turn, assert_text_turn, assert_tool_turn, bounded, client, item,
    peer_url, prompt, provider, settings, shell_output, shell_tool, stream_turn, user_texts,
    validation_paths,
};

const MODEL: &str = "agentserver-model";

fn url() -> String {
    peer_url("COMPACTOR_INTEROP_AGENTSERVER_URL")
}

/// A client of the agentserver through a new tap.
async fn tapped_client() -> (Tap, ModelClient) {
    let tap = Tap::start(&url()).await;
    let config =
        provider("agentserver", &tap.url(&url()), KeySource::None, WebsocketMode::Disabled);
    let client = client(config, &Notices::default());
    (tap, client)
}

/// Streams `prompt`; a rejected request fails the test with the JSON paths of the `400`.
async fn accepted(
    tap: &Tap,
    client: &ModelClient,
    prompt: &Prompt<'_>,
    settings: &TurnSettings,
) -> Turn {
    match stream_turn(client, prompt, settings).await {
        Ok(turn) => turn,
        Err(err) => panic!("{}", rejection(tap, &err)),
    }
}

/// The text of a failure: the error, and the JSON paths of every `400` seen through the tap.
fn rejection(tap: &Tap, err: &CompactorError) -> String {
    let paths: Vec<String> = tap.bad_request_bodies().iter().flat_map(validation_paths).collect();
    format!("the agentserver rejected Compactor's request: {err}\n  {}", paths.join("\n  "))
}

#[tokio::test]
async fn sse_text_turn() {
    let (tap, client) = tapped_client().await;
    let input = vec![ResponseItem::user_text("hello agentserver")];
    let turn = accepted(&tap, &client, &prompt(input, Vec::new()), &settings(MODEL)).await;
    assert_text_turn(&turn, "agentserver heard: hello agentserver");
}

#[tokio::test]
async fn sse_tool_call_turn() {
    let (tap, client) = tapped_client().await;
    let input = vec![ResponseItem::user_text("please use the tool")];
    let turn = accepted(&tap, &client, &prompt(input, vec![shell_tool()]), &settings(MODEL)).await;
    assert_tool_turn(&turn, "shell", &json!({"cmd": "ls"}));
}

#[tokio::test]
async fn sse_compaction_item_turn() {
    let (tap, client) = tapped_client().await;
    let input = vec![ResponseItem::user_text("please compact")];
    let turn = accepted(&tap, &client, &prompt(input, Vec::new()), &settings(MODEL)).await;
    turn.completed();
    let items = turn.output_items();
    assert_eq!(items.len(), 1, "{items:?}");
    match &items[0] {
        ResponseItem::Compaction { id, encrypted_content, .. } => {
            assert!(id.as_deref().is_some_and(|id| !id.is_empty()), "{id:?}");
            assert_eq!(encrypted_content, "agentserver-compacted:14");
        }
        other => panic!("expected a compaction item, got {other:?}"),
    }
}

/// One request form Compactor sends: its name, prompt and settings.
struct Form {
    name: &'static str,
    prompt: Prompt<'static>,
    settings: TurnSettings,
}

fn form(name: &'static str, input: Vec<ResponseItem>) -> Form {
    Form { name, prompt: prompt(input, Vec::new()), settings: settings(MODEL) }
}

fn user(text: &str) -> ResponseItem {
    ResponseItem::user_text(text)
}

/// Every public form of request Compactor sends on normal turns and after compactions.
fn forms() -> Vec<Form> {
    let mut forms = vec![
        form("a user message", vec![user("hello")]),
        form(
            "developer and contextual user messages",
            vec![
                ResponseItem::developer_text("<permissions instructions>"),
                user("<environment_context>cwd=/repo</environment_context>"),
                user("hello"),
            ],
        ),
        form(
            "a function call round",
            vec![
                user("list the files"),
                item(
                    json!({"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "shell", "arguments": "{\"cmd\":\"ls\"}"}),
                ),
                item(
                    json!({"type": "function_call_output", "call_id": "call_1", "output": shell_output()}),
                ),
                item(
                    json!({"type": "message", "id": "msg_1", "role": "assistant", "content": [{"type": "output_text", "text": "Four entries."}]}),
                ),
                user("thanks"),
            ],
        ),
        form(
            "a function call round with structured output",
            vec![
                user("list the files"),
                item(
                    json!({"type": "function_call", "call_id": "call_2", "name": "shell", "arguments": "{}"}),
                ),
                item(
                    json!({"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "a.txt"}]}),
                ),
                user("thanks"),
            ],
        ),
        form(
            "a custom tool call round",
            vec![
                user("patch the file"),
                item(
                    json!({"type": "custom_tool_call", "id": "ctc_1", "call_id": "call_3", "name": "apply_patch", "input": "*** Begin Patch"}),
                ),
                item(
                    json!({"type": "custom_tool_call_output", "call_id": "call_3", "output": "Done."}),
                ),
                user("thanks"),
            ],
        ),
        form(
            "a reasoning item",
            vec![
                user("think first"),
                item(
                    json!({"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Thinking."}], "encrypted_content": "gAAAAABencrypted"}),
                ),
                item(
                    json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Done."}]}),
                ),
                user("and now?"),
            ],
        ),
        form(
            "an image input",
            vec![ResponseItem::Message {
                id: None,
                role: "user".to_owned(),
                content: vec![
                    ContentItem::InputText { text: "what is this?".to_owned() },
                    ContentItem::InputImage {
                        image_url: "data:image/png;base64,iVBORw0KGgo=".to_owned(),
                        detail: None,
                    },
                ],
                phase: None,
                extra: Default::default(),
            }],
        ),
        // Remote compaction v1 installs the user messages and one compaction item (no id).
        form(
            "a compaction item without id (after /responses/compact)",
            vec![
                user("first task"),
                item(json!({"type": "compaction", "encrypted_content": "ENC_V1"})),
                ResponseItem::developer_text("<permissions instructions>"),
                user("second task"),
            ],
        ),
        // Server-managed compaction keeps the compaction item as it came, then what followed.
        form(
            "a compaction item with id (server-managed)",
            vec![
                item(
                    json!({"type": "compaction", "id": "cmp_1", "encrypted_content": "ENC_SERVER"}),
                ),
                item(
                    json!({"type": "message", "id": "msg_2", "role": "assistant", "content": [{"type": "output_text", "text": "Compacted."}]}),
                ),
                user("carry on"),
            ],
        ),
    ];
    let mut full = form("instructions, tools, reasoning, verbosity and tier", vec![user("hello")]);
    full.prompt.base_instructions = "You are a coding agent.".to_owned();
    full.prompt.tools = vec![shell_tool()];
    full.prompt.parallel_tool_calls = true;
    full.settings.reasoning =
        Some(Reasoning { effort: Some("medium".to_owned()), summary: Some("auto".to_owned()) });
    full.settings.verbosity = Some("low".to_owned());
    full.settings.service_tier = Some("priority".to_owned());
    forms.push(full);
    let mut schema = form("a structured output schema", vec![user("answer in JSON")]);
    schema.prompt.output_schema = Some(json!({
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": false,
    }));
    forms.push(schema);
    let mut managed = form("context_management (server-managed compaction)", vec![user("hello")]);
    managed.settings.context_management =
        Some(vec![ContextManagement::Compaction { compact_threshold: 1000 }]);
    forms.push(managed);
    forms
}

#[tokio::test]
async fn accepts_every_public_request_form() {
    let mut rejected = Vec::new();
    for form in forms() {
        let (tap, client) = tapped_client().await;
        match stream_turn(&client, &form.prompt, &form.settings).await {
            Ok(turn) => {
                turn.completed();
            }
            Err(err) => rejected.push(format!("{}: {}", form.name, rejection(&tap, &err))),
        }
    }
    assert!(rejected.is_empty(), "rejected forms:\n{}", rejected.join("\n"));
}

/// The documented gap of 2.3.0: the later v2 trigger is not in its schema. The `400` names the
/// trigger's JSON path, and the client returns it as a final `InvalidRequest` (no retry).
#[tokio::test]
async fn compaction_trigger_is_rejected_with_its_json_path() {
    let (tap, client) = tapped_client().await;
    let input = vec![user("hello"), ResponseItem::CompactionTrigger];
    let err = stream_turn(&client, &prompt(input, Vec::new()), &settings(MODEL)).await.unwrap_err();
    assert!(matches!(err, CompactorError::InvalidRequest(_)), "{err:?}");
    let bodies = tap.bad_request_bodies();
    assert_eq!(bodies.len(), 1, "one request, no retry: {bodies:?}");
    let paths = validation_paths(&bodies[0]);
    assert!(paths.iter().any(|line| line.starts_with("$.input[1].type: ")), "{paths:?}");
}

/// A core session over SSE with server-managed compaction: a tool round, then the server answers
/// with a `compaction` item, which Compactor installs and sends back as input on the next turn.
#[tokio::test]
async fn core_session_sends_the_server_compaction_item_back() {
    let tap = Tap::start(&url()).await;
    let config =
        provider("agentserver", &tap.url(&url()), KeySource::None, WebsocketMode::Disabled);
    let mut h = Harness::start(config, MODEL, |config| {
        config.context_management =
            Some(vec![ContextManagement::Compaction { compact_threshold: 1000 }]);
    })
    .await;
    let turn = async |h: &mut Harness, text: &str| match h.try_turn(text).await {
        Ok(answer) => answer,
        Err(err) => panic!("turn {text:?}: {}", rejection(&tap, &err)),
    };

    // A tool round: the follow-up request carries the call and its output.
    let answer = turn(&mut h, "please use the tool").await;
    assert_eq!(answer.unwrap(), "agentserver read the output of call_agentserver_1");
    assert_eq!(h.tools.calls.lock().unwrap().len(), 1);

    // The server compacts: the session's progress ledger (of the tool round) and the server's
    // compaction item become the history.
    let answer = turn(&mut h, "please compact").await;
    assert_eq!(answer, None);
    let history = h.session.history();
    assert!(
        matches!(
            history.as_slice(),
            [ledger, ResponseItem::Compaction { id: Some(_), .. }]
                if compactor_engine::is_ledger_message(ledger)
        ),
        "{history:#?}"
    );
    assert_eq!(h.session.window_generation(), 1);

    // The next request starts with that compaction item, and the server accepts it.
    let answer = turn(&mut h, "carry on").await;
    assert_eq!(answer.unwrap(), "agentserver heard: carry on");
    let live = h.session.history();
    assert_eq!(user_texts(&live), ["carry on"], "{live:#?}");
    let (rebuilt, compacted) = h.resumed().await;
    assert_eq!(compacted, 1);
    assert_eq!(rebuilt, live);
    bounded("shutdown", h.session.shutdown()).await.unwrap();
}

/// With no chain configured, a session against the agentserver compacts through local
/// summarization.
#[tokio::test]
async fn core_session_compacts_locally_without_a_chain() {
    let config = provider("agentserver", &url(), KeySource::None, WebsocketMode::Disabled);
    crate::common::compacts_locally_without_a_chain(config, MODEL).await;
}
