//! Helpers shared by the tests: client configuration, bounded waits, stream collection and a
//! recording observer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use compactor_client::{
    ClientNotice, ClientObserver, KeySource, ModelClient, ModelClientSession, ProviderConfig,
    ResponseStream, RetryPolicy, SecretString, WebsocketMode,
};
use compactor_protocol::{
    CompactorError, Prompt, ResponseEvent, ResponseItem, TurnSettings, owned_items,
};
use compactor_testkit::TestServer;
use futures::StreamExt;
use serde_json::Value;

/// The bound of every network wait.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// The API key of every test but the secret-hygiene one.
pub(crate) const TEST_KEY: &str = "sk-test-key-0001";

/// The thread id: `x-client-request-id` and `prompt_cache_key`.
pub(crate) const THREAD_ID: &str = "thread-test-1";

/// The model of every request.
pub(crate) const MODEL: &str = "test-model";

/// Awaits `future` or fails the test after [`TIMEOUT`].
pub(crate) async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, future).await.expect("timed out")
}

/// A fast retry policy: `max_retries` retries a few milliseconds apart.
pub(crate) fn fast_retries(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_secs(5),
    }
}

/// An HTTP provider pointing at `server`, with the test key and fast retries.
pub(crate) fn http_config(server: &TestServer) -> ProviderConfig {
    ProviderConfig {
        key: KeySource::Value(SecretString::new(TEST_KEY)),
        retry: fast_retries(2),
        stream_idle_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        websocket_connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        ..ProviderConfig::new("testkit", server.base_url())
    }
}

/// [`http_config`] with the WebSocket transport on.
pub(crate) fn ws_config(server: &TestServer) -> ProviderConfig {
    ProviderConfig { websocket: WebsocketMode::Enabled, ..http_config(server) }
}

/// Every notice a client gave, in order.
#[derive(Clone, Default)]
pub(crate) struct Notices(Arc<Mutex<Vec<ClientNotice>>>);

impl Notices {
    pub(crate) fn observer(&self) -> ClientObserver {
        let notices = Arc::clone(&self.0);
        ClientObserver::new(move |notice| notices.lock().unwrap().push(notice.clone()))
    }

    pub(crate) fn all(&self) -> Vec<ClientNotice> {
        self.0.lock().unwrap().clone()
    }

    /// The notices' display texts.
    pub(crate) fn messages(&self) -> Vec<String> {
        self.all().iter().map(ClientNotice::message).collect()
    }
}

/// A client of `config` that reports to `notices`.
pub(crate) fn client(config: ProviderConfig, notices: &Notices) -> ModelClient {
    ModelClient::builder(config, THREAD_ID).observer(notices.observer()).build().unwrap()
}

/// The settings of every request.
pub(crate) fn settings() -> TurnSettings {
    TurnSettings { model: MODEL.to_owned(), ..TurnSettings::default() }
}

/// A prompt with this input and no tools or instructions.
pub(crate) fn prompt(input: Vec<ResponseItem>) -> Prompt<'static> {
    Prompt { input: owned_items(input), ..Prompt::default() }
}

/// A user message.
pub(crate) fn user(text: &str) -> ResponseItem {
    ResponseItem::user_text(text)
}

/// An item from its wire JSON.
pub(crate) fn item(json: Value) -> ResponseItem {
    serde_json::from_value(json).unwrap()
}

/// Opens a stream, bounded.
pub(crate) async fn open(
    session: &mut ModelClientSession,
    prompt: &Prompt<'_>,
    settings: &TurnSettings,
) -> Result<ResponseStream, CompactorError> {
    bounded(session.stream(prompt, settings)).await
}

/// What a stream delivered: its events, then its error if it ended with one.
#[derive(Debug)]
pub(crate) struct Collected {
    pub(crate) events: Vec<ResponseEvent>,
    pub(crate) error: Option<CompactorError>,
}

impl Collected {
    /// The completed response's id.
    pub(crate) fn response_id(&self) -> &str {
        self.events
            .iter()
            .find_map(|event| match event {
                ResponseEvent::Completed { response_id, .. } => Some(response_id.as_str()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no completed event: {self:?}"))
    }

    /// The items of the `OutputItemDone` events.
    pub(crate) fn output_items(&self) -> Vec<ResponseItem> {
        self.events
            .iter()
            .filter_map(|event| match event {
                ResponseEvent::OutputItemDone { item } => Some(item.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Reads `stream` to its end (bounded), checking that nothing follows `Completed` or an error.
pub(crate) async fn collect(mut stream: ResponseStream) -> Collected {
    let mut events = Vec::new();
    let mut error = None;
    while let Some(item) = bounded(stream.next()).await {
        assert!(error.is_none(), "an item followed the error: {item:?}");
        assert!(
            !matches!(events.last(), Some(ResponseEvent::Completed { .. })),
            "an item followed Completed: {item:?}"
        );
        match item {
            Ok(event) => events.push(event),
            Err(err) => error = Some(err),
        }
    }
    Collected { events, error }
}

/// Opens a stream on a new session of `client` and reads it to its end; the session is
/// dropped afterwards (giving its WebSocket back to the client).
pub(crate) async fn turn(client: &ModelClient, prompt: &Prompt<'_>) -> Collected {
    let mut session = client.new_session();
    let stream = open(&mut session, prompt, &settings()).await.unwrap();
    collect(stream).await
}

/// A normal scripted response: created, one assistant message, completed.
pub(crate) fn reply(id: &str, text: &str) -> Vec<Value> {
    use compactor_testkit::events::{ev_assistant_message, ev_completed, ev_response_created};
    vec![
        ev_response_created(id),
        ev_assistant_message(&format!("msg_{id}"), text),
        ev_completed(id),
    ]
}
