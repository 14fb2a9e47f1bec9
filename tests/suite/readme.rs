//! The configuration examples of the repository's documents are valid `compactor.toml` files.

use std::path::Path;

use compactor_core::CompactorToml;

/// Every ```toml block of `document` (relative to the workspace root) but Cargo manifests,
/// parsed.
fn toml_blocks(document: &str) -> Vec<CompactorToml> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(document);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut blocks = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("```toml\n") {
        let body = &rest[start + "```toml\n".len()..];
        let end = body.find("```").unwrap();
        rest = &body[end..];
        if body[..end].contains("[dependencies]") {
            continue;
        }
        let file = Path::new("compactor.toml");
        let parsed = CompactorToml::parse(&body[..end], file)
            .unwrap_or_else(|err| panic!("a toml block of {document}: {err}"));
        blocks.push(parsed);
    }
    blocks
}

#[test]
fn the_readme_and_telemetry_examples_parse() {
    let readme = toml_blocks("README.md");
    // The settings example and the Telemetry section's.
    assert!(readme.len() >= 2, "README.md has {} toml blocks", readme.len());
    let telemetry = readme.iter().find(|toml| toml.analytics().otlp_endpoint.is_some()).unwrap();
    assert_eq!(telemetry.analytics().otlp_headers, [("x-api-key".into(), "OTLP_API_KEY".into())]);
    let docs = toml_blocks("docs/telemetry.md");
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].analytics().otlp_endpoint.as_deref(), Some("http://127.0.0.1:4318"));
}

#[test]
fn the_readme_shows_a_pin_and_the_output_of_compactor_show() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text = std::fs::read_to_string(path).unwrap();
    let readme = toml_blocks("README.md");
    let pins_a_note = |toml: &CompactorToml| {
        let mut config = compactor_core::SessionConfig::new(
            compactor_client::ProviderConfig::default(),
            compactor_core::ModelInfo::new("gpt-test", 100_000),
        );
        toml.apply(&mut config);
        !config.compaction.pinned_notes.is_empty()
    };
    assert!(readme.iter().any(pins_a_note), "the settings example pins a note");
    for shown in [
        "$ compactor pin out/rollout.jsonl --note",
        "Pinned note pin-1",
        "$ compactor show out/rollout.jsonl",
        "= tokens before",
        "pins: pin-1 (pin slot",
        "Pins (kept verbatim at the head of every compacted history):",
    ] {
        assert!(text.contains(shown), "README.md does not show {shown:?}");
    }
}
