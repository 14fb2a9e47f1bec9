//! Tests of tidy: violations planted in a synthetic workspace, and the real workspace.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::{File, check as tidy_check, collect};
use crate::Ctx;

const ROOT: &str = "/ws";

/// Normal dependencies of every member of the fixture, in a workspace that passes tidy.
const TIDY: &[(&str, &[&str])] = &[
    ("compactor-protocol", &["serde", "serde_json", "thiserror"]),
    ("compactor-client", &["compactor-protocol", "reqwest", "tokio"]),
    ("compactor-engine", &["compactor-protocol", "futures"]),
    ("compactor-analytics", &["compactor-protocol", "tokio"]),
    ("compactor-rollout-trace", &["compactor-protocol", "tokio"]),
    ("compactor-testkit", &["compactor-protocol", "axum", "tokio"]),
    (
        "compactor-core",
        &[
            "compactor-protocol",
            "compactor-client",
            "compactor-engine",
            "compactor-analytics",
            "compactor-rollout-trace",
            "tokio",
        ],
    ),
    ("compactor-cli", &["compactor-core", "compactor-testkit", "compactor-protocol", "clap"]),
    ("compactor-tests", &[]),
    ("xtask", &["anyhow", "serde_json"]),
];

/// The `# Examples` section every crate's `lib.rs` needs.
const DOC_EXAMPLE: &str = "//!\n//! # Examples\n//!\n//! ```\n//! let one = 1;\n//! ```\n";

const MANIFEST: &str = "\
[package]
name = \"NAME\"
version.workspace = true
edition.workspace = true
publish.workspace = true

[lints]
workspace = true
";

/// A synthetic workspace: metadata members and files, built tidy and then broken by a test.
struct Fixture {
    members: Vec<Member>,
    files: Vec<File>,
}

struct Member {
    name: String,
    /// Dependency names with their kind: `None` (cargo's `null`) for normal ones.
    deps: Vec<(String, Option<&'static str>)>,
}

fn dir(name: &str) -> String {
    match name {
        "compactor-tests" => "tests".to_owned(),
        "xtask" => "xtask".to_owned(),
        _ => format!("crates/{name}"),
    }
}

impl Fixture {
    fn tidy() -> Self {
        let mut fixture = Self { members: Vec::new(), files: Vec::new() };
        let mut architecture = String::from("# Architecture\n\n");
        for (name, deps) in TIDY {
            fixture.add_member(name, deps);
            architecture.push_str(&format!("### `{name}`\n"));
        }
        fixture.set("ARCHITECTURE.md", &architecture);
        fixture.set("README.md", "");
        fixture
    }

    fn add_member(&mut self, name: &str, deps: &[&str]) {
        let deps = deps.iter().map(|dep| ((*dep).to_owned(), None)).collect();
        self.members.push(Member { name: name.to_owned(), deps });
        let dir = dir(name);
        self.set(&format!("{dir}/Cargo.toml"), &MANIFEST.replace("NAME", name));
        let main = if name == "compactor-tests" { "suite/main.rs" } else { "src/lib.rs" };
        self.set(&format!("{dir}/{main}"), &format!("//! The {name} crate.\n{DOC_EXAMPLE}"));
    }

    fn add_dep(&mut self, member: &str, dep: &str, kind: Option<&'static str>) {
        for entry in &mut self.members {
            if entry.name == member {
                entry.deps.push((dep.to_owned(), kind));
            }
        }
    }

    fn set(&mut self, path: &str, text: &str) {
        self.files.retain(|file| file.path != path);
        self.files.push(File { path: path.to_owned(), text: text.to_owned() });
    }

    fn remove(&mut self, path: &str) {
        self.files.retain(|file| file.path != path);
    }

    fn metadata(&self) -> Value {
        let id = |name: &str| format!("path+file://{ROOT}/{}#0.0.0", dir(name));
        let packages: Vec<Value> = self
            .members
            .iter()
            .map(|Member { name, deps }| {
                let deps: Vec<Value> =
                    deps.iter().map(|(dep, kind)| json!({ "name": dep, "kind": kind })).collect();
                json!({
                    "name": name,
                    "id": id(name),
                    "manifest_path": format!("{ROOT}/{}/Cargo.toml", dir(name)),
                    "dependencies": deps,
                    "targets": [{ "kind": ["lib"], "doctest": true }],
                })
            })
            .collect();
        let members: Vec<String> = self.members.iter().map(|member| id(&member.name)).collect();
        json!({ "workspace_root": ROOT, "workspace_members": members, "packages": packages })
    }
}

#[track_caller]
fn check(fixture: &Fixture, expected: &[&str]) {
    let actual = tidy_check(&fixture.metadata(), &fixture.files).unwrap();
    assert_eq!(actual, expected);
}

#[test]
fn tidy_fixture_passes() {
    check(&Fixture::tidy(), &[]);
}

#[test]
fn engine_must_not_depend_on_client() {
    let mut fixture = Fixture::tidy();
    fixture.add_dep("compactor-engine", "compactor-client", None);
    check(
        &fixture,
        &[
            "layering: compactor-engine depends on compactor-client; it may depend only on compactor-protocol",
        ],
    );
}

#[test]
fn engine_must_not_depend_on_runtime_or_io_crates() {
    let mut fixture = Fixture::tidy();
    for dep in ["tokio", "reqwest", "hyper", "axum", "tokio-tungstenite"] {
        fixture.add_dep("compactor-engine", dep, None);
    }
    let why = "the engine is pure and synchronous: no tokio, no I/O";
    check(
        &fixture,
        &[
            &format!("layering: compactor-engine depends on axum; {why}"),
            &format!("layering: compactor-engine depends on hyper; {why}"),
            &format!("layering: compactor-engine depends on reqwest; {why}"),
            // `-` sorts before `;`.
            &format!("layering: compactor-engine depends on tokio-tungstenite; {why}"),
            &format!("layering: compactor-engine depends on tokio; {why}"),
        ],
    );
}

#[test]
fn dev_and_build_dependencies_are_not_layering() {
    let mut fixture = Fixture::tidy();
    fixture.add_dep("compactor-engine", "tokio", Some("dev"));
    fixture.add_dep("compactor-engine", "compactor-testkit", Some("dev"));
    fixture.add_dep("compactor-protocol", "compactor-engine", Some("build"));
    check(&fixture, &[]);
}

#[test]
fn l1_crates_never_depend_on_each_other() {
    let mut fixture = Fixture::tidy();
    fixture.add_dep("compactor-client", "compactor-analytics", None);
    fixture.add_dep("compactor-rollout-trace", "compactor-engine", None);
    check(
        &fixture,
        &[
            "layering: compactor-client depends on compactor-analytics; it may depend only on compactor-protocol",
            "layering: compactor-rollout-trace depends on compactor-engine; it may depend only on compactor-protocol",
        ],
    );
}

#[test]
fn dependencies_point_down_only() {
    let mut fixture = Fixture::tidy();
    fixture.add_dep("compactor-protocol", "compactor-core", None);
    fixture.add_dep("compactor-testkit", "compactor-client", None);
    fixture.add_dep("compactor-core", "compactor-testkit", None);
    fixture.add_dep("compactor-core", "compactor-cli", None);
    check(
        &fixture,
        &[
            "layering: compactor-core depends on compactor-cli; it may depend only on compactor-protocol, compactor-client, compactor-engine, compactor-analytics, compactor-rollout-trace",
            "layering: compactor-core depends on compactor-testkit; it may depend only on compactor-protocol, compactor-client, compactor-engine, compactor-analytics, compactor-rollout-trace",
            "layering: compactor-protocol depends on compactor-core; it may depend on no workspace crate",
            "layering: compactor-testkit depends on compactor-client; it may depend only on compactor-protocol",
        ],
    );
}

#[test]
fn protocol_stays_free_of_runtime_crates() {
    let mut fixture = Fixture::tidy();
    fixture.add_dep("compactor-protocol", "tokio", None);
    check(
        &fixture,
        &[
            "layering: compactor-protocol depends on tokio; protocol holds types only: no tokio, no I/O",
        ],
    );
}

#[test]
fn tests_and_xtask_are_unrestricted() {
    let mut fixture = Fixture::tidy();
    fixture.add_dep("compactor-tests", "compactor-core", None);
    fixture.add_dep("xtask", "compactor-engine", None);
    check(&fixture, &[]);
}

#[test]
fn unknown_crate_needs_a_row_before_depending_on_the_workspace() {
    let mut fixture = Fixture::tidy();
    fixture.add_member("compactor-extra", &["serde"]);
    let architecture = fixture.files.iter().find(|f| f.path == "ARCHITECTURE.md").unwrap();
    let architecture = format!("{}### `compactor-extra` (planned)\n", architecture.text);
    fixture.set("ARCHITECTURE.md", &architecture);
    check(&fixture, &[]);

    fixture.add_dep("compactor-extra", "compactor-protocol", None);
    check(
        &fixture,
        &[
            "layering: compactor-extra depends on compactor-protocol but has no row in the layer table (LAYERS in xtask/src/tidy.rs)",
        ],
    );
}

#[test]
fn manifests_inherit_lints_edition_and_publish() {
    let mut fixture = Fixture::tidy();
    let manifest = "crates/compactor-engine/Cargo.toml";
    fixture.set(manifest, "[package]\nname = \"compactor-engine\"\nedition = \"2024\"\n");
    check(
        &fixture,
        &[
            "crates/compactor-engine/Cargo.toml: missing `[lints] workspace = true`",
            "crates/compactor-engine/Cargo.toml: missing `edition.workspace = true`",
            "crates/compactor-engine/Cargo.toml: missing `publish.workspace = true`",
        ],
    );

    // Inline tables, quoted keys and comments are the same TOML.
    fixture.set(
        manifest,
        "[package] # the engine\n\"edition\" = { workspace = true }\npublish = { workspace = true }\n\
         lints = \"x\"\n\n[lints]\nworkspace=true # inherit\n",
    );
    check(&fixture, &[]);
    fixture.set(
        manifest,
        "lints.workspace = true\n[package]\nedition.workspace = true\npublish.workspace = true\n",
    );
    check(&fixture, &[]);

    // The right keys in the wrong table, `false`, a comment or a string do not count.
    fixture.set(
        "xtask/Cargo.toml",
        "[package]\nedition.workspace = false\n# publish.workspace = true\n\
         description = \"\"\"\n[lints]\nworkspace = true\n\"\"\"\n[dependencies]\npublish.workspace = true\n",
    );
    check(
        &fixture,
        &[
            "xtask/Cargo.toml: missing `[lints] workspace = true`",
            "xtask/Cargo.toml: missing `edition.workspace = true`",
            "xtask/Cargo.toml: missing `publish.workspace = true`",
        ],
    );
}

#[test]
fn every_crate_folder_is_named_in_architecture_md() {
    let mut fixture = Fixture::tidy();
    // `compactor-cli` inside `compactor-client` does not count.
    fixture.set("ARCHITECTURE.md", "compactor-client (compactor-core) `compactor-engine`.");
    fixture.set("crates/compactor-new/README.md", "");
    fixture.set("crates/.DS_Store", "");
    check(
        &fixture,
        &[
            "crates/compactor-analytics: not named in ARCHITECTURE.md",
            "crates/compactor-cli: not named in ARCHITECTURE.md",
            "crates/compactor-new: not named in ARCHITECTURE.md",
            "crates/compactor-protocol: not named in ARCHITECTURE.md",
            "crates/compactor-rollout-trace: not named in ARCHITECTURE.md",
            "crates/compactor-testkit: not named in ARCHITECTURE.md",
        ],
    );
    fixture.remove("ARCHITECTURE.md");
    check(&fixture, &["ARCHITECTURE.md: missing"]);
}

#[test]
fn rust_files_open_with_module_docs() {
    let mut fixture = Fixture::tidy();
    let ok = [
        ("crates/compactor-engine/src/trim.rs", "\n\n  //! Trimming.\nfn f() {}\n"),
        // Outside crates/*/src, tests/ and xtask/src nothing is required.
        ("crates/compactor-engine/benches/trim.rs", "fn main() {}\n"),
        ("crates/compactor-engine/build.rs", "fn main() {}\n"),
        ("crates/compactor-engine/src/notes.md", "no docs"),
    ];
    let bad = [
        ("crates/compactor-engine/src/prune.rs", "// Pruning.\nfn f() {}\n"),
        ("crates/compactor-core/src/session/mod.rs", "#![allow(dead_code)]\n//! Sessions.\n"),
        ("tests/suite/compaction.rs", "/// Not a module doc.\nfn f() {}\n"),
        ("xtask/src/flags.rs", ""),
    ];
    for (path, text) in ok.into_iter().chain(bad) {
        fixture.set(path, text);
    }
    let expected: Vec<String> = bad
        .iter()
        .map(|(path, _)| {
            format!("{path}: the first line must be a `//!` comment saying what the module is for")
        })
        .collect();
    let mut expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    expected.sort_unstable();
    check(&fixture, &expected);
}

#[test]
fn crate_docs_open_with_an_example() {
    let mut fixture = Fixture::tidy();
    fixture.set("crates/compactor-engine/src/lib.rs", "//! The engine.\n//!\n//! No example.\n");
    // A code block outside an `# Examples` section does not count.
    fixture.set(
        "crates/compactor-core/src/lib.rs",
        "//! Core.\n//!\n//! ```\n//! let x = 1;\n//! ```\n//!\n//! # Examples\n//!\n//! None.\n",
    );
    // The binary's main.rs needs none.
    fixture.set("crates/compactor-cli/src/main.rs", "//! The command.\n");
    let message = "the crate documentation must show an example (a `//! # Examples` section with \
                   a code block)";
    check(
        &fixture,
        &[
            &format!("crates/compactor-core/src/lib.rs: {message}"),
            &format!("crates/compactor-engine/src/lib.rs: {message}"),
        ],
    );
}

#[test]
fn leftover_snapshots_are_reported() {
    let mut fixture = Fixture::tidy();
    fixture.set("crates/compactor-protocol/src/snapshots/item.snap", "");
    fixture.set("crates/compactor-protocol/src/snapshots/item.snap.new", "");
    fixture.set("tests/suite/.rollout.pending-snap", "");
    check(
        &fixture,
        &[
            "crates/compactor-protocol/src/snapshots/item.snap.new: leftover insta snapshot; accept or reject it with `cargo insta review`",
            "tests/suite/.rollout.pending-snap: leftover insta snapshot; accept or reject it with `cargo insta review`",
        ],
    );
}

/// The capitalised name of the outside design document, spelled in pieces (like the section
/// sign below) so that this file passes the check it tests.
const DESIGN: &str = concat!("DES", "IGN");
const SECTION: char = '§';
const ISSUE: &str = concat!("iss", "ue");
const INSTEAD: &str =
    "cite a decision of docs/decisions.md (D<N>) or a file in the repository instead";

fn outside(at: &str, found: &str) -> String {
    format!("{at}: cites a document outside the repository ({found}); {INSTEAD}")
}

fn issue(at: &str, found: &str) -> String {
    format!("{at}: cites an issue number ({found}); {INSTEAD}")
}

#[track_caller]
fn check_owned(fixture: &Fixture, expected: &[String]) {
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    check(fixture, &expected);
}

#[test]
fn citations_of_outside_documents_are_rejected() {
    let mut fixture = Fixture::tidy();
    let planted = [
        (
            "crates/compactor-engine/src/lib.rs",
            format!("//! The engine.\n/// Trims ({DESIGN} {SECTION}3).\n{DOC_EXAMPLE}"),
        ),
        (
            "crates/compactor-engine/src/trim.rs",
            format!("//! Trimming (ref {SECTION} 3.7, step 2).\n"),
        ),
        ("README.md", format!("Intro.\n\nSee {DESIGN}.md for more.\n")),
        ("ARCHITECTURE.md", format!("{}\nThe {DESIGN} {SECTION} table.\n", architecture(&fixture))),
        (
            "interop/README.md",
            format!("Peers ({}/reference/peers.md).\n", concat!("..", "/shared")),
        ),
        ("interop/run_peer.py", format!("# as {} says\n", concat!("codex-", "compaction.md"))),
        (
            "crates/compactor-cli/tests/snapshots/help.snap",
            format!("---\nsource: x\n---\n  --seal-key  the key ({SECTION}8.4)\n"),
        ),
        (
            "crates/compactor-engine/benches/trim.rs",
            format!("fn main() {{ println!(\"targets of {DESIGN} {SECTION}5\"); }}\n"),
        ),
    ];
    for (path, text) in &planted {
        fixture.set(path, text);
    }
    // `.ci/` may say what it likes.
    fixture.set(".ci/run", &format!("# {DESIGN} {SECTION}1\n"));
    check_owned(
        &fixture,
        &[
            outside("ARCHITECTURE.md:14", &format!("{DESIGN} {SECTION}")),
            outside("README.md:3", &format!("{DESIGN}.md")),
            outside("crates/compactor-cli/tests/snapshots/help.snap:4", &format!("{SECTION}8.4")),
            outside("crates/compactor-engine/benches/trim.rs:1", &format!("{SECTION}5")),
            outside("crates/compactor-engine/src/lib.rs:2", &format!("{SECTION}3")),
            outside("crates/compactor-engine/src/trim.rs:1", &format!("{SECTION}3.7")),
            outside("interop/README.md:1", concat!("..", "/shared")),
            outside("interop/run_peer.py:1", concat!("codex-", "compaction.md")),
        ],
    );
}

fn architecture(fixture: &Fixture) -> String {
    fixture.files.iter().find(|f| f.path == "ARCHITECTURE.md").unwrap().text.clone()
}

#[test]
fn issue_numbers_are_rejected() {
    let mut fixture = Fixture::tidy();
    let path = "crates/compactor-core/src/lib.rs";
    let text = [
        "//! Core.".to_owned(),
        format!("// Fixed in {ISSUE} 12."),
        format!("//! ({}S #7 and later)", ISSUE.to_uppercase()),
        "/// See #23.".to_owned(),
        "// tests (#4), [#5]".to_owned(),
        format!("// {ISSUE}\t#9: tabs count as spaces"),
    ]
    .join("\n");
    fixture.set(path, &format!("{text}\n{DOC_EXAMPLE}"));
    check_owned(
        &fixture,
        &[
            issue(&format!("{path}:2"), &format!("{ISSUE} 12")),
            issue(&format!("{path}:3"), &format!("{}S #7", ISSUE.to_uppercase())),
            issue(&format!("{path}:4"), "#23"),
            issue(&format!("{path}:5"), "#4"),
            issue(&format!("{path}:6"), &format!("{ISSUE}\t#9")),
        ],
    );
}

#[test]
fn text_that_only_looks_like_a_citation_passes() {
    let mut fixture = Fixture::tidy();
    fixture.set("docs/decisions.md", "# Design decisions\n\n## D1. Layers\n\nText.\n");
    let rust = [
        "//! Look-alikes.",
        "#![allow(dead_code)]",
        "#[derive(Debug)]",
        "const RAW: &str = r#\"x\"#;",
        "/// Which request, e.g. `POST /v1/responses request #2`.",
        "const MESSAGE: &str = \"websocket handshake #0: none left\";",
        "const ID: &str = \"path+file:///ws/tests#0.0.0\";",
        "// tissue 3, issue_7, issues, an issue with #x, the issue #1a",
        "// ID2, DD2, x_D3, 3D4, v1.D2, D1.5, cargo-D9, a/D12+x=, D<N>, D, a lone § sign",
        "// D1 is cited, as is (D1), `D1` and D1.",
    ]
    .join("\n");
    fixture.set("crates/compactor-engine/src/lookalike.rs", &rust);
    let markdown = "# Title\n\n## Section\n\n1. first\n2. second\n\ncolor: #333; fill: #123456\n";
    fixture.set("docs/style.md", markdown);
    check(&fixture, &[]);
}

#[test]
fn decision_citations_must_exist() {
    let mut fixture = Fixture::tidy();
    let decisions = "# Design decisions\n\n## D1. Layers\n\n## D2. Types\n\n## D2. Again\n";
    fixture.set("docs/decisions.md", decisions);
    let path = "crates/compactor-engine/src/lib.rs";
    let text = ["//! The engine (D1, D2).", concat!("/// See D", "99."), concat!("// (D", "3)")];
    fixture.set(path, &format!("{}\n{DOC_EXAMPLE}", text.join("\n")));
    let dangling = |line: usize, number: u32| {
        format!("{path}:{line}: cites D{number}, which docs/decisions.md does not define")
    };
    check_owned(
        &fixture,
        &[
            dangling(2, 99),
            dangling(3, 3),
            "docs/decisions.md:7: D2 is defined twice (first on line 5)".to_owned(),
        ],
    );

    fixture.remove("docs/decisions.md");
    let missing = [(1, 1), (1, 2), (2, 99), (3, 3)].map(|(line, number)| {
        format!("{path}:{line}: cites D{number}, but docs/decisions.md is missing")
    });
    check_owned(&fixture, &missing);
}

#[test]
fn serde_is_derived_only_where_the_rule_allows() {
    let mut fixture = Fixture::tidy();
    let wire = "//! Types.\n#[derive(Debug, Serialize, Deserialize)]\npub struct Item;\n";
    let read_only = "//! Schema.\n#[derive(Debug, Default, serde::Deserialize)]\nstruct Raw;\n";
    // Allowed: protocol, the crates' own records, core's config-file schema, unit-test files,
    // and derive lists in comments.
    fixture.set("crates/compactor-protocol/src/items.rs", wire);
    fixture.set("crates/compactor-analytics/src/event.rs", wire);
    fixture.set("crates/compactor-rollout-trace/src/trace.rs", "//! T.\n#[derive(Serialize)]\n");
    fixture.set("crates/compactor-core/src/toml_config/schema.rs", read_only);
    fixture.set("crates/compactor-engine/src/local/tests.rs", wire);
    fixture.set("crates/compactor-engine/src/local.rs", "//! L.\n// #[derive(Serialize)]\n");
    check(&fixture, &[]);

    // Everywhere else, and serializing in the config schema, are violations.
    fixture.set(
        "crates/compactor-core/src/session.rs",
        "//! S.\n#[derive(Clone, serde::Serialize)]\n",
    );
    fixture.set(
        "crates/compactor-core/src/toml_config/schema.rs",
        "//! Schema.\n#[derive(\n    Debug,\n    Serialize,\n    Deserialize,\n)]\nstruct Raw;\n",
    );
    fixture.set(
        "crates/compactor-engine/src/context.rs",
        "//! C.\n#[cfg_attr(test, derive(Deserialize))]\n",
    );
    fixture.set("crates/compactor-cli/src/main.rs", wire);
    let why = "serde is derived only in compactor-protocol, for the records of compactor-analytics \
               and compactor-rollout-trace, and (Deserialize only) in core's \
               src/toml_config/schema.rs (D74 in docs/decisions.md)";
    check(
        &fixture,
        &[
            &format!("crates/compactor-cli/src/main.rs: derives Deserialize; {why}"),
            &format!("crates/compactor-cli/src/main.rs: derives Serialize; {why}"),
            &format!("crates/compactor-core/src/session.rs: derives Serialize; {why}"),
            &format!("crates/compactor-core/src/toml_config/schema.rs: derives Serialize; {why}"),
            &format!("crates/compactor-engine/src/context.rs: derives Deserialize; {why}"),
        ],
    );
}

#[test]
fn malformed_metadata_is_an_error() {
    let result = tidy_check(&json!({ "packages": [] }), &[]);
    assert_eq!(
        result.map_err(|err| err.to_string()).unwrap_err(),
        "`cargo metadata`: missing field `workspace_root`"
    );
}

/// The tidy check of `cargo xtask tidy`, on this very workspace.
#[test]
fn workspace_is_tidy() {
    let ctx = Ctx::from_env();
    let metadata = ctx.workspace_metadata().unwrap();
    let files = collect(&ctx.root).unwrap();
    assert!(files.iter().any(|file| file.path == "xtask/src/tidy/tests.rs"));
    assert!(!files.iter().any(|file| file.path.starts_with("target/")));
    let violations = tidy_check(&metadata, &files).unwrap();
    assert_eq!(violations, Vec::<String>::new());
}
