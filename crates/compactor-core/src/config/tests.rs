//! Tests of the model limits (D6).

use pretty_assertions::assert_eq;

use super::*;

#[test]
fn auto_compact_limit() {
    let cases = [
        (Some(400_000), None, 360_000),
        (Some(400_000), Some(100_000), 100_000),
        (Some(100_000), Some(500_000), 90_000),
        (None, Some(50_000), 50_000),
        (None, None, i64::MAX),
    ];
    for (window, limit, expected) in cases {
        let model = ModelInfo {
            context_window: window,
            auto_compact_token_limit: limit,
            ..ModelInfo::new("m", 0)
        };
        assert_eq!(model.auto_compact_limit(), expected, "{window:?} {limit:?}");
    }
}

#[test]
fn usable_window_is_95_percent() {
    assert_eq!(ModelInfo::new("m", 400_000).model_context_window(), Some(380_000));
    let unknown = ModelInfo { context_window: None, ..ModelInfo::new("m", 0) };
    assert_eq!(unknown.model_context_window(), None);
}

#[track_caller]
fn check_kind(name: &str, base_url: &str, expected: ProviderKind) {
    assert_eq!(ProviderKind::detect(name, base_url), expected, "{name} {base_url}");
}

#[test]
fn provider_kinds_from_the_base_url() {
    use ProviderKind::{Azure, OpenAi, Other};
    check_kind("openai", "https://api.openai.com/v1", OpenAi);
    check_kind("x", "https://API.OpenAI.com./v1", OpenAi);
    check_kind("x", "https://eu.api.openai.com:443/v1?x=1", OpenAi);
    check_kind("x", "https://user:pw@api.openai.com/v1", OpenAi);
    check_kind("x", "https://my-team.openai.azure.com/openai/v1", Azure);
    check_kind("x", "https://res.cognitiveservices.azure.com/openai", Azure);
    check_kind("x", "https://proj.services.ai.azure.com/api", Azure);
    check_kind("azure", "https://gateway.example/v1", Azure);
    check_kind("x", "http://127.0.0.1:8080/v1", Other);
    check_kind("x", "http://[::1]:4000/v1", Other);
    check_kind("x", "https://openai.com.evil.example/v1", Other);
    check_kind("x", "https://api.openai.com.proxy.example/v1", Other);
    check_kind("x", "https://notopenai.com/v1", Other);
    check_kind("openai", "https://openrouter.ai/api/v1", Other);
    for kind in [OpenAi, Azure, ProviderKind::Reference, Other] {
        assert_eq!(kind.as_str().parse::<ProviderKind>(), Ok(kind));
        assert_eq!(kind.to_string(), kind.as_str());
    }
}

#[track_caller]
fn check_chain(
    base_url: &str,
    kind: Option<ProviderKind>,
    remote: RemoteCompaction,
    v2_feature: bool,
    expected: &[CompactionImplementation],
) {
    let mut config = SessionConfig::new(ProviderConfig::new("p", base_url), ModelInfo::new("m", 1));
    config.provider_kind = kind;
    config.remote_compaction = remote;
    config.features.remote_compaction_v2 = v2_feature;
    assert_eq!(config.compaction_chain(), expected, "{base_url} {kind:?} {remote:?} {v2_feature}");
}

#[test]
fn default_chains_follow_the_provider() {
    use CompactionImplementation::{Prune, Responses, ResponsesCompact, ResponsesCompactionV2};
    use RemoteCompaction::{ByProviderKind, Supported, Unsupported};
    let local = [Responses, Prune];
    check_chain("https://api.openai.com/v1", None, ByProviderKind, true, &[ResponsesCompactionV2]);
    check_chain("https://api.openai.com/v1", None, ByProviderKind, false, &[ResponsesCompact]);
    check_chain(
        "https://x.openai.azure.com/v1",
        None,
        ByProviderKind,
        true,
        &[ResponsesCompactionV2],
    );
    check_chain(
        "http://127.0.0.1:1/v1",
        Some(ProviderKind::Reference),
        ByProviderKind,
        true,
        &[ResponsesCompactionV2],
    );
    check_chain("http://127.0.0.1:1/v1", None, ByProviderKind, true, &local);
    check_chain("http://127.0.0.1:1/v1", None, Supported, true, &[ResponsesCompactionV2]);
    check_chain("https://api.openai.com/v1", None, Unsupported, true, &local);
    check_chain(
        "https://api.openai.com/v1",
        Some(ProviderKind::Other),
        ByProviderKind,
        true,
        &local,
    );

    let mut config = SessionConfig::new(ProviderConfig::default(), ModelInfo::new("m", 1));
    config.compaction.chain = vec![Prune];
    assert_eq!(config.compaction_chain(), [Prune], "a configured chain wins");
}
