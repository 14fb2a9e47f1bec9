//! Protocol fixtures: every fixture line reads into Compactor's types and writes back unchanged.

use std::path::PathBuf;

use compactor_protocol::{ResponseItem, RolloutItem, RolloutLine};
use pretty_assertions::assert_eq;

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/compactor-protocol/tests/fixtures/protocol")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

#[test]
fn item_fixtures_round_trip_byte_for_byte() {
    let text = fixture("items.jsonl");
    let mut unknown = Vec::new();
    for line in text.lines() {
        let item: ResponseItem = serde_json::from_str(line).unwrap();
        assert_eq!(serde_json::to_string(&item).unwrap(), line);
        if let ResponseItem::Unknown(_) = item {
            unknown.push(item.item_type().to_owned());
        }
    }
    assert_eq!(unknown, ["ghost_snapshot", "configuration_update"]);
}

#[test]
fn rollout_fixture_round_trips_byte_for_byte() {
    let text = fixture("rollout.jsonl");
    let mut kinds = Vec::new();
    for line in text.lines() {
        let parsed: RolloutLine = serde_json::from_str(line).unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), line);
        if let RolloutItem::Unknown { kind, .. } = &parsed.item {
            kinds.push(kind.clone());
        }
    }
    assert_eq!(kinds, ["future_line_type"]);
}
