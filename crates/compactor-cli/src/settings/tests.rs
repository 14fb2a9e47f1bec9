//! Tests of the settings layers: defaults, then the file, then the flags.

use compactor_client::KeySource;
use compactor_core::CompactorToml;
use pretty_assertions::assert_eq;

use super::*;

fn no_flags() -> ModelArgs {
    ModelArgs {
        config: None,
        base_url: None,
        api_key_env: None,
        model: None,
        window: None,
        transport: None,
        implementation: None,
        token_counter: None,
        seal_key: None,
    }
}

fn file(text: &str) -> ConfigFile {
    let path = PathBuf::from("compactor.toml");
    ConfigFile { toml: CompactorToml::parse(text, &path).unwrap(), path }
}

fn defaults() -> SessionConfig {
    cli_defaults(ModelInfo::new("default-model", 16_000))
}

#[test]
fn the_defaults_select_the_embedded_model_over_websocket_with_v2() {
    let settings = layer(&no_flags(), None, defaults()).unwrap();
    assert_eq!(settings.endpoint, Endpoint::Embedded { seal_key: None });
    let config = &settings.config;
    assert_eq!(config.provider.key, KeySource::None);
    assert_eq!(config.provider.websocket, WebsocketMode::Enabled);
    assert!(config.features.remote_compaction_v2);
    assert!(config.features.responses_websocket_response_processed);
    assert_eq!(config.compaction.chain, []);
    assert_eq!(config.provider_kind, Some(ProviderKind::Reference));
    assert_eq!(config.compaction_chain(), [CompactionImplementation::ResponsesCompactionV2]);
    assert_eq!(
        settings.describe_chain(),
        "responses_compaction_v2 (the default for a provider of kind reference)"
    );
}

#[test]
fn without_a_chain_the_provider_kind_chooses_it() {
    let remote = |url: &str, file_text: &str| {
        let flags = ModelArgs {
            base_url: Some(url.to_owned()),
            api_key_env: Some(String::new()),
            ..no_flags()
        };
        let file = (!file_text.is_empty()).then(|| file(file_text));
        layer(&flags, file, defaults()).unwrap()
    };
    let cases = [
        (
            "https://api.openai.com/v1",
            "",
            "responses_compaction_v2 (the default for a provider of kind openai)",
        ),
        (
            "https://team.openai.azure.com/openai/v1",
            "",
            "responses_compaction_v2 (the default for a provider of kind azure)",
        ),
        (
            "http://127.0.0.1:8000/v1",
            "",
            "responses -> prune (the default for a provider of kind other)",
        ),
        (
            "http://127.0.0.1:8000/v1",
            "[provider]\nkind = \"openai\"\n",
            "responses_compaction_v2 (the default for a provider of kind openai)",
        ),
        (
            "http://127.0.0.1:8000/v1",
            "[provider]\nremote_compaction = true\n",
            "responses_compaction_v2 (the default for a provider of kind other)",
        ),
        (
            "https://api.openai.com/v1",
            "[provider]\nremote_compaction = false\n",
            "responses -> prune (the default for a provider of kind openai)",
        ),
        (
            "http://127.0.0.1:8000/v1",
            "[compaction]\nchain = [\"v2\", \"prune\"]\n",
            "responses_compaction_v2 -> prune",
        ),
    ];
    for (url, file_text, expected) in cases {
        assert_eq!(remote(url, file_text).describe_chain(), expected, "{url} {file_text:?}");
    }
}

#[test]
fn the_file_overrides_defaults_and_flags_override_the_file() {
    let file = file(
        "[provider]\nwebsocket = false\n[model]\nslug = \"from-file\"\ncontext_window = 50000\n\
         [compaction]\nchain = [\"prune\"]\n",
    );
    let settings = layer(&no_flags(), Some(file.clone()), defaults()).unwrap();
    assert_eq!(settings.config.provider.websocket, WebsocketMode::Disabled);
    assert_eq!(settings.config.model.slug, "from-file");
    assert_eq!(settings.config.model.context_window, Some(50_000));
    assert_eq!(settings.config.compaction.chain, [CompactionImplementation::Prune]);

    let flags = ModelArgs {
        model: Some("from-flag".into()),
        window: Some(20_000),
        transport: Some(Transport::Ws),
        implementation: Some(vec![
            CompactionImplementation::ResponsesCompactionV2,
            CompactionImplementation::Responses,
            CompactionImplementation::ResponsesCompactionV2,
        ]),
        ..no_flags()
    };
    let settings = layer(&flags, Some(file), defaults()).unwrap();
    let config = &settings.config;
    assert_eq!(config.provider.websocket, WebsocketMode::Enabled);
    assert_eq!(config.model.slug, "from-flag");
    assert_eq!(config.model.context_window, Some(20_000));
    assert_eq!(
        config.compaction.chain,
        [CompactionImplementation::ResponsesCompactionV2, CompactionImplementation::Responses]
    );
    assert!(config.features.remote_compaction_v2);
    assert_eq!(settings.describe_chain(), "responses_compaction_v2 -> responses");

    let prune_only =
        ModelArgs { implementation: Some(vec![CompactionImplementation::Prune]), ..no_flags() };
    let settings = layer(&prune_only, None, defaults()).unwrap();
    assert!(!settings.config.features.remote_compaction_v2);
}

/// The model flags on their own, as a command line.
#[derive(Debug, clap::Parser)]
struct Flags {
    #[command(flatten)]
    args: ModelArgs,
}

#[test]
fn implementation_flags_take_long_and_short_names() {
    use clap::Parser as _;
    let parsed = Flags::try_parse_from(["compactor", "--implementation", "v2,responses,v1,prune"]);
    assert_eq!(
        parsed.unwrap().args.implementation,
        Some(vec![
            CompactionImplementation::ResponsesCompactionV2,
            CompactionImplementation::Responses,
            CompactionImplementation::ResponsesCompact,
            CompactionImplementation::Prune,
        ])
    );
    let parsed = Flags::try_parse_from(["compactor", "--implementation", "local"]);
    assert_eq!(
        parsed.unwrap().args.implementation,
        Some(vec![CompactionImplementation::Responses])
    );
    // server_managed is a name, but not one a chain may request.
    for bad in ["fastest", "server_managed", "V2", ""] {
        let err = Flags::try_parse_from(["compactor", "--implementation", bad]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue, "{bad:?}");
    }
}

#[test]
fn a_base_url_selects_a_remote_endpoint_and_needs_its_key() {
    // PATH is set wherever tests run; this name is set nowhere.
    let unset = "COMPACTOR_CLI_TEST_VARIABLE_THAT_IS_NEVER_SET";
    let flags = ModelArgs {
        base_url: Some("http://127.0.0.1:9/v1".into()),
        api_key_env: Some("PATH".into()),
        ..no_flags()
    };
    let settings = layer(&flags, None, defaults()).unwrap();
    assert_eq!(settings.endpoint, Endpoint::Remote);
    assert_eq!(settings.config.provider.base_url, "http://127.0.0.1:9/v1");
    assert_eq!(settings.config.provider.key, KeySource::Env("PATH".into()));

    let no_key = ModelArgs { api_key_env: Some(String::new()), ..flags.clone() };
    let settings = layer(&no_key, None, defaults()).unwrap();
    assert_eq!(settings.config.provider.key, KeySource::None);

    let missing = ModelArgs { api_key_env: Some(unset.into()), ..flags.clone() };
    let err = layer(&missing, None, defaults()).unwrap_err();
    assert_eq!(err.exit, Exit::KeyUnset);

    let from_file = file(&format!(
        "[provider]\nbase_url = \"https://example.invalid/v1\"\napi_key_env = \"{unset}\"\n"
    ));
    let err = layer(&no_flags(), Some(from_file), defaults()).unwrap_err();
    assert_eq!(err.exit, Exit::KeyUnset);

    for url in
        ["localhost:8080", "not a url", "http://", "ftp://example.com/v1", "http://h:99999/v1"]
    {
        let bad_url = ModelArgs { base_url: Some(url.into()), ..no_flags() };
        assert_eq!(layer(&bad_url, None, defaults()).unwrap_err().exit, Exit::Usage, "{url}");
    }
    let secret = ModelArgs { base_url: Some("http://me:hunter2@h/v1?x#y".into()), ..no_flags() };
    let err = layer(&secret, None, defaults()).unwrap_err();
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
}

#[test]
fn config_files_load_or_fail_with_their_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    assert_eq!(load_config_file(Some(&missing)).unwrap_err().exit, Exit::MissingFile);

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[model]\nslgu = \"x\"\n").unwrap();
    assert_eq!(load_config_file(Some(&bad)).unwrap_err().exit, Exit::BadConfig);

    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[model]\nslug = \"x\"\n").unwrap();
    let loaded = load_config_file(Some(&good)).unwrap().unwrap();
    assert_eq!(loaded.path, good);
}

#[test]
fn the_readme_example_is_a_valid_config_file() {
    let readme = include_str!("../../README.md");
    let start = readme.find("```toml\n[provider]").unwrap() + "```toml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let loaded = file(&readme[start..end]);
    let settings = layer(&no_flags(), Some(loaded), defaults());
    // The example points at OpenAI; its key variable may be unset here.
    match settings {
        Ok(settings) => assert_eq!(settings.endpoint, Endpoint::Remote),
        Err(err) => assert_eq!(err.exit, Exit::KeyUnset),
    }
}

#[test]
fn the_token_counter_is_o200k_unless_the_file_or_a_flag_says_otherwise() {
    use compactor_protocol::tokens::TokenCounter;

    let counter = |file: Option<ConfigFile>, flag| {
        let args = ModelArgs { token_counter: flag, ..no_flags() };
        layer(&args, file, defaults()).unwrap().config.tokens.counter
    };
    assert_eq!(counter(None, None), TokenCounter::O200k);
    let bytes4 = || Some(file("[tokens]\ncounter = \"bytes4\"\n"));
    assert_eq!(counter(bytes4(), None), TokenCounter::Bytes4);
    assert_eq!(counter(bytes4(), Some(TokenCounterArg::O200k)), TokenCounter::O200k);
    assert_eq!(counter(None, Some(TokenCounterArg::Bytes4)), TokenCounter::Bytes4);
}

#[tokio::test]
async fn the_config_file_turns_on_the_otlp_sink() {
    let unset = "COMPACTOR_CLI_TEST_UNSET_OTLP_VARIABLE";
    let text = "[analytics]\notlp_endpoint = \"http://127.0.0.1:9\"\n";
    let settings = layer(&no_flags(), Some(file(text)), defaults()).unwrap();
    let (analytics, _events) = settings.start_analytics(Vec::new()).await.unwrap();
    analytics.shutdown().await.unwrap();

    let text = format!("{text}otlp_headers = {{ \"x-api-key\" = \"{unset}\" }}\n");
    let settings = layer(&no_flags(), Some(file(&text)), defaults()).unwrap();
    let err = settings.start_analytics(Vec::new()).await.unwrap_err();
    assert_eq!(err.exit, Exit::KeyUnset);
}
