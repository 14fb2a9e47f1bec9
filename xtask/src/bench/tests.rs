//! Tests of the bench summary: reading results, verdicts, missing ratios, the table.

use pretty_assertions::assert_eq;
use serde_json::json;

use super::{EXPECTED, Ratio, comparison, parse_results, summary, table};
use crate::project_root;

fn results() -> serde_json::Value {
    json!({
        "bench": "prepare",
        "ratios": [
            {
                "name": "fast_enough", "description": "a vs b", "value": 2.5,
                "bound": "at_most", "target": 3.0, "pass": true, "details": "5 ms vs 2 ms",
            },
            {
                "name": "throughput", "description": "c vs d", "value": 0.5,
                "bound": "at_least", "target": 0.7, "pass": false, "details": "",
            },
        ],
    })
}

#[test]
fn results_files_parse_into_ratios_with_verdicts() {
    let ratios = parse_results(&results()).unwrap();
    assert_eq!(
        ratios,
        vec![
            Ratio {
                bench: "prepare".into(),
                name: "fast_enough".into(),
                value: 2.5,
                bound: "at_most".into(),
                target: 3.0,
                details: "5 ms vs 2 ms".into(),
            },
            Ratio {
                bench: "prepare".into(),
                name: "throughput".into(),
                value: 0.5,
                bound: "at_least".into(),
                target: 0.7,
                details: String::new(),
            },
        ]
    );
    assert_eq!(ratios.iter().map(Ratio::passes).collect::<Vec<_>>(), [true, false]);
    assert!(parse_results(&json!({"bench": "x"})).is_err());
    assert!(parse_results(&json!({"bench": "x", "ratios": [{"name": "n"}]})).is_err());
}

#[test]
fn a_summary_passes_only_when_every_target_holds_and_nothing_is_missing() {
    let ratios = parse_results(&results()).unwrap();
    let passing = &ratios[..1];
    for (ratios, expected, succeeded, pass) in [
        (passing, &["fast_enough"][..], true, true),
        (passing, &["fast_enough"][..], false, false),
        (passing, &["fast_enough", "absent"][..], true, false),
        (&ratios[..], &["fast_enough"][..], true, false),
    ] {
        let summary = summary(ratios, expected, succeeded);
        assert_eq!(summary["pass"], json!(pass), "{summary:#}");
    }
    let summary = summary(passing, &["fast_enough", "absent"], true);
    assert_eq!(summary["missing"], json!(["absent"]));
    assert_eq!(summary["ratios"][0]["pass"], json!(true));
}

#[test]
fn the_table_shows_every_ratio_and_every_missing_one() {
    let ratios = parse_results(&results()).unwrap();
    assert_eq!(
        table(&ratios, &["fast_enough", "throughput", "absent"]),
        "\
ratio        measured  target   result   details
fast_enough     2.50x  <= 3x    PASS     5 ms vs 2 ms
throughput      0.50x  >= 0.7x  FAIL
absent              -  -        MISSING  the bench did not report it
"
    );
}

#[test]
fn a_comparison_shows_each_change_toward_or_away_from_its_target() {
    let saved = json!({"ratios": [
        {"name": "cost", "value": 2.0, "bound": "at_most"},
        {"name": "speed", "value": 1.0, "bound": "at_least"},
        {"name": "steady", "value": 1.0, "bound": "at_most"},
        {"name": "dropped", "value": 3.0, "bound": "at_most"},
    ]});
    let current = json!({"ratios": [
        {"name": "cost", "value": 2.5, "bound": "at_most"},
        {"name": "speed", "value": 1.5, "bound": "at_least"},
        {"name": "steady", "value": 1.01, "bound": "at_most"},
        {"name": "added", "value": 0.5, "bound": "at_least"},
    ]});
    assert_eq!(
        comparison(&saved, &current),
        "\
ratio    saved    now  change
cost     2.00x  2.50x  +25.0%  worse
speed    1.00x  1.50x  +50.0%  better
steady   1.00x  1.01x   +1.0%  same
added        -  0.50x       -  new
dropped  3.00x      -       -  gone
"
    );
}

/// The `(name, bound, target)` of every entry of `TARGETS` in the testkit's workload module.
fn targets_in_workload() -> Vec<(String, String, String)> {
    let text =
        std::fs::read_to_string(project_root().join("crates/compactor-testkit/src/workload.rs"))
            .unwrap();
    let table = &text[text.find("pub const TARGETS").unwrap()..];
    let table = &table[..table.find("];").unwrap()];
    let lines: Vec<&str> = table.lines().map(str::trim).collect();
    let mut targets = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        for (marker, bound) in [("Target::AtMost(", "at most"), ("Target::AtLeast(", "at least")] {
            if let Some(rest) = line.strip_prefix(marker) {
                let value = rest.trim_end_matches("),").to_owned();
                let name = lines[at - 1].trim_matches(|c| c == '"' || c == ',').to_owned();
                targets.push((name, bound.to_owned(), value));
            }
        }
    }
    targets
}

#[test]
fn the_expected_ratios_the_targets_and_d48_agree() {
    let targets = targets_in_workload();
    let names: Vec<&str> = targets.iter().map(|(name, _, _)| name.as_str()).collect();
    let expected: Vec<&str> = EXPECTED.iter().map(|(_, name)| *name).collect();
    assert_eq!(names, expected, "TARGETS in workload.rs and EXPECTED in bench.rs");
    let decisions = std::fs::read_to_string(project_root().join("docs/decisions.md")).unwrap();
    let d48 = &decisions[decisions.find("## D48.").unwrap()..];
    let d48 = &d48[..d48[1..].find("\n## D").map_or(d48.len(), |end| end + 1)];
    for (name, bound, value) in &targets {
        let value = value.trim_end_matches(".0");
        let row = d48
            .lines()
            .find(|line| line.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("D48 has no row for `{name}`"));
        assert!(row.contains(&format!("{bound} {value}x")), "D48 row of `{name}`: {row}");
    }
    let rows = d48.lines().filter(|line| line.starts_with("| `")).count();
    assert_eq!(rows, targets.len(), "D48 lists a ratio TARGETS does not");
}

#[test]
fn the_peer_package_stays_out_of_the_workspace() {
    let root = project_root();
    let manifest = std::fs::read_to_string(root.join(super::PEER_MANIFEST)).unwrap();
    assert!(manifest.lines().any(|line| line == "[workspace]"), "a workspace of its own");
    assert!(manifest.contains("async-openai"));
    let root_manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let members = root_manifest.lines().find(|line| line.starts_with("members")).unwrap();
    assert!(!members.contains("benches"), "{members}");
    // No workspace member may depend on the peer's crates.
    for member in ["crates", "tests", "xtask"] {
        let mut pending = vec![root.join(member)];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() && !path.ends_with("target") {
                    pending.push(path);
                } else if path.file_name().is_some_and(|name| name == "Cargo.toml") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    assert!(!text.contains("eventsource-stream"), "{}", path.display());
                }
            }
        }
    }
}
