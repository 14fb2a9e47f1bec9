//! Tests of the bench summary: reading results, verdicts, missing ratios, the table.

use pretty_assertions::assert_eq;
use serde_json::json;

use super::{Ratio, parse_results, summary, table};

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
