//! Tests of `compactor.toml` parsing: good files change exactly what they name, bad files fail
//! with an error that names the key and its line.

use std::path::Path;
use std::time::Duration;

use compactor_client::{KeySource, Prewarm, ProviderConfig, RetryPolicy, WebsocketMode};
use compactor_engine::TruncationPolicy;
use compactor_protocol::{
    CompactionImplementation, CompactorError, PassThroughList, V2TriggerForm,
};
use compactor_rollout_trace::TraceConfig;
use pretty_assertions::assert_eq;

use super::validate::parse_duration;
use super::*;
use crate::config::{
    CompactionSettings, Features, ModelInfo, ProgressLedger, ProviderKind, PruneSettings,
    ReactiveCompaction, RemoteCompaction,
};

fn base() -> SessionConfig {
    SessionConfig::new(ProviderConfig::default(), ModelInfo::new("base-model", 100_000))
}

fn parse(text: &str) -> Result<CompactorToml, ConfigFileError> {
    CompactorToml::parse(text, Path::new("conf/compactor.toml"))
}

fn applied(text: &str) -> SessionConfig {
    let toml = parse(text).unwrap();
    let mut config = base();
    toml.apply(&mut config);
    config
}

/// Checks that `text` fails with exactly `expected`.
fn check_error(text: &str, expected: &str) {
    let err = parse(text).expect_err(text);
    assert_eq!(err.to_string(), expected, "{text}");
}

#[test]
fn an_empty_file_changes_nothing() {
    let config = applied("");
    let reference = base();
    assert_eq!(config.provider.base_url, reference.provider.base_url);
    assert_eq!(config.provider.key, reference.provider.key);
    assert_eq!(config.model, reference.model);
    assert_eq!(config.features, reference.features);
    assert_eq!(config.compaction, reference.compaction);
    assert!(!config.trace.is_enabled());
    assert_eq!(parse("# only a comment\n").unwrap(), CompactorToml::default());
}

#[test]
fn a_full_file_sets_every_setting() {
    let text = r#"
[provider]
name = "local"
base_url = "http://127.0.0.1:8080/v1"
api_key_env = "MY_KEY"
websocket = true
prewarm = true
max_retries = 7
retry_base_delay = "50ms"
retry_max_delay = "2s"
stream_idle_timeout = "5m"
connect_timeout = "3s"
websocket_connect_timeout = "4s"
request_timeout = "1h"
kind = "other"
remote_compaction = false
v2_trigger = "compaction_trigger"
pass_through = ["configuration_update", "ghost_snapshot"]
extra_headers = { "x-team" = "agents", "OpenAI-Organization" = "org-1" }

[features]
remote_compaction_v2 = true
responses_websocket_response_processed = true

[compaction]
chain = ["v2", "responses", "prune"]
summarization_prompt = "Summarize."
max_auto_compactions_per_turn = 2
reactive = false
local_max_retries = 1
v2_max_retries = 3
turn_max_retries = 4
retained_budget_tokens = 12000
max_retained_images = 2
ledger = false
ledger_budget_tokens = 3000
prune = { protected_user_turns = 1, target_percent = 40 }
pinned_notes = ["Never edit vendor/.", "Run the tests first."]

[model]
slug = "gpt-test"
context_window = 64000
auto_compact_token_limit = 50000
effective_context_window_percent = 90
tool_output_limit = { mode = "bytes", limit = 20000 }

[trace]
root = "traces"

[analytics]
jsonl = "/var/log/compactor.jsonl"
http_url = "https://analytics.example/v1/events"
http_bearer_env = "ANALYTICS_TOKEN"
otlp_endpoint = "http://127.0.0.1:4318"
otlp_headers = { authorization = "OTLP_AUTH", "x-team" = "OTLP_TEAM" }
"#;
    let toml = parse(text).unwrap();
    let mut config = base();
    toml.apply(&mut config);

    let provider = &config.provider;
    assert_eq!(provider.name, "local");
    assert_eq!(provider.base_url, "http://127.0.0.1:8080/v1");
    assert_eq!(provider.key, KeySource::Env("MY_KEY".into()));
    assert_eq!(provider.websocket, WebsocketMode::Enabled);
    assert_eq!(provider.prewarm, Prewarm::On);
    assert_eq!(
        provider.retry,
        RetryPolicy {
            max_retries: 7,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2)
        }
    );
    assert_eq!(provider.stream_idle_timeout, Duration::from_secs(300));
    assert_eq!(provider.connect_timeout, Duration::from_secs(3));
    assert_eq!(provider.websocket_connect_timeout, Duration::from_secs(4));
    assert_eq!(provider.request_timeout, Duration::from_secs(3600));
    assert_eq!(
        provider.pass_through,
        PassThroughList::new(["configuration_update", "ghost_snapshot"])
    );
    assert_eq!(
        provider.extra_headers,
        vec![
            ("OpenAI-Organization".to_owned(), "org-1".to_owned()),
            ("x-team".to_owned(), "agents".to_owned())
        ]
    );
    assert_eq!(config.remote_compaction, RemoteCompaction::Unsupported);
    assert_eq!(config.provider_kind, Some(ProviderKind::Other));
    assert_eq!(
        config.features,
        Features { remote_compaction_v2: true, responses_websocket_response_processed: true }
    );
    assert_eq!(
        config.compaction,
        CompactionSettings {
            chain: vec![
                CompactionImplementation::ResponsesCompactionV2,
                CompactionImplementation::Responses,
                CompactionImplementation::Prune,
            ],
            summarization_prompt: Some("Summarize.".into()),
            local_max_retries: 1,
            prune: PruneSettings { protected_user_turns: 1, target_percent: 40 },
            max_auto_compactions_per_turn: 2,
            reactive: ReactiveCompaction::Off,
            v2_trigger: V2TriggerForm::CompactionTrigger,
            v2_max_retries: 3,
            turn_max_retries: 4,
            pinned_notes: vec!["Never edit vendor/.".into(), "Run the tests first.".into()],
            retained_budget_tokens: Some(12_000),
            max_retained_images: 2,
            ledger: ProgressLedger::Off,
            ledger_budget_tokens: 3_000,
        }
    );
    assert_eq!(
        config.model,
        ModelInfo {
            slug: "gpt-test".into(),
            context_window: Some(64_000),
            auto_compact_token_limit: Some(50_000),
            effective_context_window_percent: 90,
            tool_output_limit: TruncationPolicy::Bytes(20_000),
            ..ModelInfo::new("x", 0)
        }
    );
    assert_eq!(config.trace.root(), Some(Path::new("conf/traces")));
    assert_eq!(toml.trace_root(), Some(Path::new("conf/traces")));
    assert_eq!(toml.base_url(), Some("http://127.0.0.1:8080/v1"));
    assert_eq!(
        toml.analytics(),
        &AnalyticsSettings {
            jsonl: Some("/var/log/compactor.jsonl".into()),
            http_url: Some("https://analytics.example/v1/events".into()),
            http_bearer_env: Some("ANALYTICS_TOKEN".into()),
            otlp_endpoint: Some("http://127.0.0.1:4318".into()),
            otlp_headers: vec![
                ("authorization".into(), "OTLP_AUTH".into()),
                ("x-team".into(), "OTLP_TEAM".into()),
            ],
        }
    );
}

#[test]
fn the_documented_example_parses() {
    let source = include_str!("../toml_config.rs");
    let start = source.find("/// ```toml\n").unwrap() + "/// ```toml\n".len();
    let end = start + source[start..].find("/// ```\n").unwrap();
    let example: String = source[start..end]
        .lines()
        .map(|line| line.strip_prefix("///").unwrap().strip_prefix(' ').unwrap_or_default())
        .map(|line| format!("{line}\n"))
        .collect();
    let toml = parse(&example).unwrap();
    let mut config = base();
    toml.apply(&mut config);
    assert_eq!(config.provider.base_url, "https://api.openai.com/v1");
    assert_eq!(config.compaction.chain.len(), 3);
    assert_eq!(toml.analytics().http_bearer_env.as_deref(), Some("ANALYTICS_TOKEN"));
    assert_eq!(toml.analytics().otlp_endpoint.as_deref(), Some("http://127.0.0.1:4318"));
    assert_eq!(toml.analytics().otlp_headers, [("x-api-key".into(), "OTLP_API_KEY".into())]);
}

#[test]
fn settings_the_file_does_not_name_are_kept() {
    let mut config = base();
    config.provider.websocket = WebsocketMode::Enabled;
    config.features.responses_websocket_response_processed = true;
    config.trace = TraceConfig::with_root("/keep");
    parse("[model]\ncontext_window = 5000\n").unwrap().apply(&mut config);
    assert_eq!(config.provider.websocket, WebsocketMode::Enabled);
    assert!(config.features.responses_websocket_response_processed);
    assert_eq!(config.trace.root(), Some(Path::new("/keep")));
    assert_eq!(config.model.slug, "base-model");
    assert_eq!(config.model.context_window, Some(5000));
}

#[test]
fn small_cases() {
    // (file, what to read back from the applied config)
    type Read = fn(&SessionConfig) -> String;
    let cases: [(&str, Read, &str); 9] = [
        (
            "[provider]\napi_key_env = \"\"\n",
            |c| format!("{:?}", c.provider.key),
            "KeySource::None",
        ),
        ("[provider]\nwebsocket = false\n", |c| format!("{:?}", c.provider.websocket), "Disabled"),
        ("[compaction]\nchain = []\n", |c| format!("{:?}", c.compaction.chain), "[]"),
        (
            "[compaction]\nchain = [\"prune\"]\n",
            |c| format!("{:?} {}", c.compaction.chain, c.features.remote_compaction_v2),
            "[Prune] false",
        ),
        (
            "[compaction]\nchain = [\"responses_compact\", \"local\"]\n",
            |c| format!("{:?}", c.compaction.chain),
            "[ResponsesCompact, Responses]",
        ),
        (
            "[compaction]\nchain = [\"v1\", \"v2\", \"local\"]\n",
            |c| format!("{:?}", c.compaction.chain),
            "[ResponsesCompact, ResponsesCompactionV2, Responses]",
        ),
        (
            "[features]\nremote_compaction_v2 = false\n[compaction]\nchain = [\"prune\"]\n",
            |c| format!("{}", c.features.remote_compaction_v2),
            "false",
        ),
        ("provider.max_retries = 0\n", |c| format!("{}", c.provider.retry.max_retries), "0"),
        (
            "[trace]\nroot = \"/abs/traces\"\n",
            |c| format!("{:?}", c.trace.root()),
            "Some(\"/abs/traces\")",
        ),
    ];
    for (text, read, expected) in cases {
        assert_eq!(read(&applied(text)), expected, "{text}");
    }
}

#[test]
fn unknown_keys_are_named() {
    let cases = [
        (
            "[provider]\nbase_url = \"http://x\"\nbase_ur = 1\n",
            "conf/compactor.toml:3: unknown key `provider.base_ur` (expected one of name, base_url, kind, api_key_env, websocket, prewarm, max_retries, retry_base_delay, retry_max_delay, stream_idle_timeout, connect_timeout, websocket_connect_timeout, request_timeout, remote_compaction, v2_trigger, pass_through, extra_headers)",
        ),
        (
            "[providers]\n",
            "conf/compactor.toml:1: unknown key `providers` (expected one of provider, features, compaction, model, tokens, trace, analytics)",
        ),
        (
            "[compaction.prune]\ntarget = 3\n",
            "conf/compactor.toml:2: unknown key `compaction.prune.target` (expected one of protected_user_turns, target_percent)",
        ),
        (
            "features.remote_compaction = true\n",
            "conf/compactor.toml:1: unknown key `features.remote_compaction` (expected one of remote_compaction_v2, responses_websocket_response_processed)",
        ),
        (
            "[trace]\nroot = \"t\"\nenabled = true\n",
            "conf/compactor.toml:3: unknown key `trace.enabled` (expected root)",
        ),
    ];
    for (text, expected) in cases {
        check_error(text, expected);
    }
}

#[test]
fn bad_values_are_named() {
    let cases = [
        (
            "[compaction]\npinned_notes = [\"ok\", \"  \"]\n",
            "conf/compactor.toml:2: invalid value for compaction.pinned_notes[1]: an empty string",
        ),
        (
            "[provider]\nkind = \"vllm\"\n",
            "conf/compactor.toml:2: invalid value for provider.kind: \"vllm\" (expected one of openai, azure, reference, other)",
        ),
        (
            "[compaction]\nchain = [\"responses_compaction_v2\", \"foo\"]\n",
            "conf/compactor.toml:2: invalid value for compaction.chain[1]: \"foo\" (expected one of responses_compaction_v2, responses_compact, responses, prune)",
        ),
        (
            "[compaction]\nchain = [\"server_managed\"]\n",
            "conf/compactor.toml:2: invalid value for compaction.chain[0]: \"server_managed\" (the server compacts by itself; expected one of responses_compaction_v2, responses_compact, responses, prune)",
        ),
        (
            "[compaction]\nchain = [\"V2\"]\n",
            "conf/compactor.toml:2: invalid value for compaction.chain[0]: \"V2\" (expected one of responses_compaction_v2, responses_compact, responses, prune)",
        ),
        (
            "[compaction]\nchain = [\"prune\", \"prune\"]\n",
            "conf/compactor.toml:2: invalid value for compaction.chain[1]: \"prune\" is listed twice",
        ),
        (
            "[compaction]\nchain = [\"prune\", 3]\n",
            "conf/compactor.toml:2: invalid value for compaction.chain[1]: invalid type: integer `3`, expected a string",
        ),
        (
            "[provider]\nmax_retries = \"x\"\n",
            "conf/compactor.toml:2: invalid value for provider.max_retries: invalid type: string \"x\", expected i64",
        ),
        (
            "provider.max_retries = -1\n",
            "conf/compactor.toml:1: invalid value for provider.max_retries: -1 (expected an integer from 0 to 100)",
        ),
        (
            "[provider]\nwebsocket = \"yes\"\n",
            "conf/compactor.toml:2: invalid value for provider.websocket: invalid type: string \"yes\", expected a boolean",
        ),
        (
            "[provider]\nbase_url = \"api.openai.com\"\n",
            "conf/compactor.toml:2: invalid value for provider.base_url: \"api.openai.com\" is not a URL (relative URL without a base)",
        ),
        (
            "[provider]\nbase_url = \"http://me:hunter2@/v1\"\n",
            "conf/compactor.toml:2: invalid value for provider.base_url: \"http:///v1\" is not a URL (empty host)",
        ),
        (
            "[provider]\napi_key_env = \"MY KEY\"\n",
            "conf/compactor.toml:2: invalid value for provider.api_key_env: \"MY KEY\" (expected an environment variable name such as OPENAI_API_KEY, or \"\" for no key)",
        ),
        (
            "[provider]\nconnect_timeout = \"15\"\n",
            "conf/compactor.toml:2: invalid value for provider.connect_timeout: \"15\" (expected a positive duration such as \"500ms\", \"15s\", \"5m\" or \"1h\")",
        ),
        (
            "[provider]\nrequest_timeout = \"0s\"\n",
            "conf/compactor.toml:2: invalid value for provider.request_timeout: \"0s\" (expected a positive duration such as \"500ms\", \"15s\", \"5m\" or \"1h\")",
        ),
        (
            "[provider]\nv2_trigger = \"compaction\"\n",
            "conf/compactor.toml:2: invalid value for provider.v2_trigger: \"compaction\" (expected one of context_compaction, compaction_trigger)",
        ),
        (
            "[provider.extra_headers]\n\"bad header\" = \"v\"\n",
            "conf/compactor.toml:2: invalid value for provider.extra_headers.\"bad header\": \"bad header\" is not a valid header name",
        ),
        (
            "[provider.extra_headers]\nAuthorization = \"Bearer sk-secret\"\n",
            "conf/compactor.toml:2: invalid value for provider.extra_headers.Authorization: the key is set with provider.api_key_env, never in the file",
        ),
        (
            "[provider]\nextra_headers = { x = 1 }\n",
            "conf/compactor.toml:2: invalid value for provider.extra_headers.x: invalid type: integer `1`, expected a string",
        ),
        (
            "[model]\ncontext_window = 0\n",
            "conf/compactor.toml:2: invalid value for model.context_window: 0 (expected an integer at least 1)",
        ),
        (
            "[model]\nslug = \"\"\n",
            "conf/compactor.toml:2: invalid value for model.slug: an empty string",
        ),
        (
            "\n\n[compaction.prune]\ntarget_percent = 150\n",
            "conf/compactor.toml:4: invalid value for compaction.prune.target_percent: 150 (expected an integer from 1 to 100)",
        ),
        (
            "[compaction]\nretained_budget_tokens = 10\n",
            "conf/compactor.toml:2: invalid value for compaction.retained_budget_tokens: 10 (expected an integer at least 64)",
        ),
        (
            "[compaction]\nledger_budget_tokens = 10\n",
            "conf/compactor.toml:2: invalid value for compaction.ledger_budget_tokens: 10 (expected an integer from 64 to 1000000)",
        ),
        (
            "[compaction]\nmax_retained_images = -1\n",
            "conf/compactor.toml:2: invalid value for compaction.max_retained_images: -1 (expected an integer from 0 to 1000000)",
        ),
        (
            "[model]\ntool_output_limit = { mode = \"lines\", limit = 10 }\n",
            "conf/compactor.toml:2: invalid value for model.tool_output_limit.mode: \"lines\" (expected one of tokens, bytes)",
        ),
        (
            "[model]\ntool_output_limit = { mode = \"tokens\", limit = 0 }\n",
            "conf/compactor.toml:2: invalid value for model.tool_output_limit.limit: 0 (expected an integer at least 1)",
        ),
        (
            "[model]\ntool_output_limit = { mode = \"tokens\" }\n",
            "conf/compactor.toml:2: invalid value for model.tool_output_limit: missing field `limit`",
        ),
        (
            "[model.tool_output_limit]\nmode = \"tokens\"\nlimit = 5\nlines = 3\n",
            "conf/compactor.toml:4: unknown key `model.tool_output_limit.lines` (expected one of mode, limit)",
        ),
        (
            "[compaction]\nmax_auto_compactions_per_turn = 0\n",
            "conf/compactor.toml:2: invalid value for compaction.max_auto_compactions_per_turn: 0 (expected an integer from 1 to 100)",
        ),
        (
            "[features]\nremote_compaction_v2 = false\n[compaction]\nchain = [\"v2\"]\n",
            "conf/compactor.toml:2: invalid value for features.remote_compaction_v2: false, but compaction.chain lists responses_compaction_v2 (enable the feature or remove it from the chain)",
        ),
        (
            "[analytics]\nhttp_url = \"ftp://x\"\n",
            "conf/compactor.toml:2: invalid value for analytics.http_url: \"ftp://x\" (expected an http:// or https:// URL)",
        ),
        (
            "[analytics]\nhttp_bearer_env = \"TOKEN\"\n",
            "conf/compactor.toml:2: invalid value for analytics.http_bearer_env: set without analytics.http_url",
        ),
        (
            "[analytics]\notlp_endpoint = \"localhost:4318\"\n",
            "conf/compactor.toml:2: invalid value for analytics.otlp_endpoint: \"localhost:4318\" (expected an http:// or https:// URL)",
        ),
        (
            "[analytics]\notlp_endpoint = \"http://c:4318\"\notlp_headers = { \"x-key\" = \"sk-not-a-variable-name!\" }\n",
            "conf/compactor.toml:3: invalid value for analytics.otlp_headers.x-key: expected the name of the environment variable that holds the header's value (the value itself never goes in the file)",
        ),
        (
            "[analytics]\notlp_endpoint = \"http://c:4318\"\notlp_headers = { \"bad header\" = \"V\" }\n",
            "conf/compactor.toml:3: invalid value for analytics.otlp_headers.\"bad header\": \"bad header\" is not a valid header name",
        ),
        (
            "[analytics]\notlp_headers = { \"x-key\" = \"V\" }\n",
            "conf/compactor.toml:2: invalid value for analytics.otlp_headers: set without analytics.otlp_endpoint",
        ),
        (
            "provider = 3\n",
            "conf/compactor.toml:1: invalid value for provider: invalid type: integer `3`, expected struct RawProvider",
        ),
    ];
    for (text, expected) in cases {
        check_error(text, expected);
    }
}

#[test]
fn syntax_errors_give_the_line() {
    let err = parse("[model]\nslug = \"x\n").unwrap_err();
    assert!(matches!(err, ConfigFileError::Syntax { line: 2, .. }), "{err:?}");
    assert!(err.to_string().starts_with("conf/compactor.toml:2: invalid TOML: "), "{err}");
    assert_eq!(err.key(), None);
}

#[test]
fn errors_classify() {
    let missing = CompactorToml::load(Path::new("/nonexistent/compactor.toml")).unwrap_err();
    assert!(missing.is_not_found());
    assert_eq!(missing.to_string(), "cannot read /nonexistent/compactor.toml");
    assert!(matches!(CompactorError::from(missing), CompactorError::Io(_)));

    let bad = parse("[model]\nslgu = 1\n").unwrap_err();
    assert!(!bad.is_not_found());
    assert_eq!(bad.key(), Some("model.slgu"));
    assert!(matches!(CompactorError::from(bad), CompactorError::Config(_)));
}

#[test]
fn durations() {
    let cases = [
        ("500ms", Some(Duration::from_millis(500))),
        ("15s", Some(Duration::from_secs(15))),
        ("5m", Some(Duration::from_secs(300))),
        ("2h", Some(Duration::from_secs(7200))),
        (" 7 s ", Some(Duration::from_secs(7))),
        ("15", None),
        ("s", None),
        ("1.5s", None),
        ("-1s", None),
        ("3d", None),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_duration(text), expected, "{text:?}");
    }
}

#[test]
fn secrets_never_appear_in_errors() {
    let err =
        parse("[provider.extra_headers]\nAuthorization = \"Bearer sk-secret\"\n").unwrap_err();
    assert!(!err.to_string().contains("sk-secret"));
    assert!(!format!("{err:?}").contains("sk-secret"));
}

#[test]
fn the_token_counter_and_calibration_are_set_by_name() {
    use compactor_protocol::tokens::TokenCounter;

    use crate::config::{Calibration, TokenSettings};

    let config = applied("[tokens]\ncounter = \"o200k\"\ncalibration = false\n");
    assert_eq!(
        config.tokens,
        TokenSettings { counter: TokenCounter::O200k, calibration: Calibration::Off }
    );
    assert_eq!(applied("").tokens, TokenSettings::default());
    check_error(
        "[tokens]\ncounter = \"cl100k\"\n",
        "conf/compactor.toml:2: invalid value for tokens.counter: \"cl100k\" (expected one of bytes4, o200k)",
    );
}

#[test]
fn debug_shows_neither_url_credentials_nor_header_values() {
    let file = parse(
        r#"
[provider]
base_url = "https://proxy-user:sk-url-secret@proxy.example/v1"
extra_headers = { "x-api-key" = "sk-header-secret" }
"#,
    )
    .unwrap();
    let shown = format!("{file:?}");
    assert!(!shown.contains("sk-url-secret"), "{shown}");
    assert!(!shown.contains("proxy-user"), "{shown}");
    assert!(!shown.contains("sk-header-secret"), "{shown}");
    assert!(shown.contains("https://proxy.example/v1"), "{shown}");
    assert!(shown.contains("x-api-key"), "{shown}");
}
