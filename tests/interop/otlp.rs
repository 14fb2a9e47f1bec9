//! The OTLP analytics sink against an independent OTLP/HTTP receiver (`interop/otlp/receiver.py`,
//! which decodes with the OpenTelemetry project's `opentelemetry-proto` package).
//!
//! The case runs `compactor demo` with `[analytics] otlp_endpoint` pointed at the receiver, and
//! checks what arrived against the demo's own JSONL analytics under the mapping of
//! `docs/telemetry.md`: one span per compaction attempt with equal attributes, and metrics that
//! add up to the same counts.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::common::{bounded, peer_url};

/// The header the sink must send, and the variable the config file names for its value.
const HEADER: &str = "x-interop-key";
const HEADER_VAR: &str = "COMPACTOR_INTEROP_OTLP_HEADER";
const HEADER_VALUE: &str = "otlp-interop-secret-7f3a";

/// The demo's turns: enough for two inline compactions and the manual one.
const TURNS: &str = "12";

fn url() -> String {
    peer_url("COMPACTOR_INTEROP_OTLP_URL")
}

async fn receiver(method: reqwest::Method, path: &str) -> Value {
    let response =
        bounded(path, reqwest::Client::new().request(method, format!("{}{path}", url())).send())
            .await
            .unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    let bytes = bounded(path, response.bytes()).await.unwrap();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// Runs `compactor demo` with the OTLP sink on, bounded by [`WAIT`]; returns its output folder's
/// analytics events.
async fn run_demo(dir: &Path) -> Vec<Value> {
    let config = dir.join("compactor.toml");
    let file = format!(
        "[analytics]\notlp_endpoint = \"{}\"\notlp_headers = {{ \"{HEADER}\" = \"{HEADER_VAR}\" }}\n",
        url()
    );
    std::fs::write(&config, file).unwrap();
    let out = dir.join("out");
    let bin = peer_url("COMPACTOR_INTEROP_COMPACTOR_BIN");
    let child = tokio::process::Command::new(&bin)
        .args(["demo", "--turns", TURNS, "--out"])
        .arg(&out)
        .arg("--config")
        .arg(&config)
        .env(HEADER_VAR, HEADER_VALUE)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {bin}: {err}"));
    let output = bounded("compactor demo", child.wait_with_output()).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "compactor demo failed:\n{stdout}\n{stderr}");
    assert!(!stdout.contains(HEADER_VALUE) && !stderr.contains(HEADER_VALUE));
    let analytics = std::fs::read_to_string(out.join("analytics.jsonl")).unwrap();
    analytics
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["event_params"].clone())
        .collect()
}

/// An OTLP attribute list (protobuf's JSON mapping) as `key -> value`, integers as numbers.
fn attributes(list: &Value) -> BTreeMap<String, Value> {
    let mut map = BTreeMap::new();
    for attribute in list.as_array().into_iter().flatten() {
        let value = &attribute["value"];
        let value = if let Some(text) = value.get("string_value") {
            text.clone()
        } else if let Some(int) = value.get("int_value") {
            // 64-bit integers are strings in protobuf's JSON mapping.
            json!(int.as_str().unwrap().parse::<i64>().unwrap())
        } else {
            panic!("unexpected attribute value {value}")
        };
        map.insert(attribute["key"].as_str().unwrap().to_owned(), value);
    }
    map
}

/// The span attributes of one analytics event, under `docs/telemetry.md`.
fn expected_attributes(event: &Value) -> BTreeMap<String, Value> {
    let mut map = BTreeMap::new();
    let mut put = |key: &str, value: Value| {
        map.insert(key.to_owned(), value);
    };
    put("gen_ai.operation.name", json!("compact"));
    put("gen_ai.provider.name", event["provider"].clone());
    put("gen_ai.request.model", event["model"].clone());
    put("gen_ai.conversation.id", event["thread_id"].clone());
    let usage = &event["completed_usage"];
    if !usage.is_null() {
        put("gen_ai.usage.input_tokens", usage["input_tokens"].clone());
        put("gen_ai.usage.output_tokens", usage["output_tokens"].clone());
        put("compactor.usage.cached_input_tokens", usage["cached_input_tokens"].clone());
        put("compactor.usage.reasoning_output_tokens", usage["reasoning_output_tokens"].clone());
        put("compactor.usage.total_tokens", usage["total_tokens"].clone());
    }
    let status = event["status"].as_str().unwrap();
    if status == "failed" || status == "interrupted" {
        put("error.type", json!(status));
    }
    for field in [
        "turn_id",
        "compaction_id",
        "attempt_number",
        "chain_position",
        "chain_length",
        "trigger",
        "reason",
        "implementation",
        "phase",
        "strategy",
        "status",
        "duration_ms",
        "bytes_sent",
        "retries",
    ] {
        put(&format!("compactor.{field}"), event[field].clone());
    }
    put("compactor.tokens_before", event["active_context_tokens_before"].clone());
    put("compactor.tokens_after", event["active_context_tokens_after"].clone());
    put("compactor.version", event["runtime"]["compactor_version"].clone());
    put("compactor.runtime.os", event["runtime"]["runtime_os"].clone());
    put("compactor.runtime.arch", event["runtime"]["runtime_arch"].clone());
    map
}

fn nanos(value: &Value) -> u64 {
    value.as_str().unwrap().parse().unwrap()
}

fn hex(base64: &Value) -> String {
    let bytes = STANDARD.decode(base64.as_str().unwrap()).unwrap();
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// What the newest export says of one metric over the points of one status: the points are
/// cumulative, so the newest export of each attribute set holds everything.
#[derive(Debug, Default, PartialEq)]
struct Totals {
    /// Sums: the total value; histograms: the total count.
    count: u64,
    /// Histograms: the total of the values.
    sum: f64,
    unit: String,
}

/// `(metric, status)` -> totals over the metric's points with that `compactor.status` (`""` for
/// points without one).
fn metric_totals(requests: &[Value]) -> BTreeMap<(String, String), Totals> {
    let mut latest: BTreeMap<(String, String), Value> = BTreeMap::new();
    for request in requests.iter().filter(|request| request["signal"] == "metrics") {
        for resource in request["body"]["resource_metrics"].as_array().into_iter().flatten() {
            for scope in resource["scope_metrics"].as_array().into_iter().flatten() {
                for metric in scope["metrics"].as_array().into_iter().flatten() {
                    let name = metric["name"].as_str().unwrap().to_owned();
                    let data = metric.get("sum").or_else(|| metric.get("histogram")).unwrap();
                    assert_eq!(
                        data["aggregation_temporality"], "AGGREGATION_TEMPORALITY_CUMULATIVE",
                        "{name}"
                    );
                    for point in data["data_points"].as_array().into_iter().flatten() {
                        let mut point = point.clone();
                        point["unit"] = metric["unit"].clone();
                        let series = point["attributes"].to_string();
                        latest.insert((name.clone(), series), point);
                    }
                }
            }
        }
    }
    let mut totals: BTreeMap<(String, String), Totals> = BTreeMap::new();
    for ((name, _), point) in latest {
        let status = attributes(&point["attributes"])
            .get("compactor.status")
            .map_or_else(String::new, |status| status.as_str().unwrap().to_owned());
        let entry = totals.entry((name, status)).or_default();
        entry.unit = point["unit"].as_str().unwrap().to_owned();
        if let Some(value) = point.get("as_int") {
            entry.count += value.as_str().unwrap().parse::<u64>().unwrap();
        } else {
            entry.count += nanos(&point["count"]);
            entry.sum += point["sum"].as_f64().unwrap_or(0.0);
        }
    }
    totals
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_spans_equal_the_jsonl_analytics() {
    receiver(reqwest::Method::POST, "/reset").await;
    let dir = tempfile::tempdir().unwrap();
    let events = run_demo(dir.path()).await;
    assert!(events.len() >= 3, "the demo compacts at least three times: {events:#?}");

    let received = receiver(reqwest::Method::GET, "/received").await;
    let requests = received["requests"].as_array().unwrap().clone();
    for request in &requests {
        assert!(request.get("error").is_none(), "the receiver could not decode: {request}");
        assert_eq!(request["headers"][HEADER], HEADER_VALUE);
        assert_eq!(request["headers"]["content-type"], "application/x-protobuf");
    }

    // One span per attempt, keyed by compaction id and attempt number.
    let mut spans = BTreeMap::new();
    for request in requests.iter().filter(|request| request["signal"] == "traces") {
        for resource in request["body"]["resource_spans"].as_array().into_iter().flatten() {
            let resource_attributes = attributes(&resource["resource"]["attributes"]);
            assert_eq!(resource_attributes["service.name"], "compactor");
            for scope in resource["scope_spans"].as_array().into_iter().flatten() {
                assert_eq!(scope["scope"]["name"], "compactor-analytics");
                for span in scope["spans"].as_array().into_iter().flatten() {
                    let attrs = attributes(&span["attributes"]);
                    let key = (
                        attrs["compactor.compaction_id"].as_str().unwrap().to_owned(),
                        attrs["compactor.attempt_number"].as_i64().unwrap(),
                    );
                    assert!(spans.insert(key, span.clone()).is_none(), "a span came twice");
                }
            }
        }
    }
    assert_eq!(spans.len(), events.len(), "one span per attempt");
    for event in &events {
        let id = event["compaction_id"].as_str().unwrap();
        let key = (id.to_owned(), event["attempt_number"].as_i64().unwrap());
        let span = &spans[&key];
        assert_eq!(attributes(&span["attributes"]), expected_attributes(event), "{id}");
        assert_eq!(span["name"], format!("compact {}", event["model"].as_str().unwrap()));
        assert_eq!(span["kind"], "SPAN_KIND_INTERNAL");
        // The trace id is the compaction id (a UUID), so all attempts of a chain share it.
        assert_eq!(hex(&span["trace_id"]), id.replace('-', ""));
        let start = nanos(&span["start_time_unix_nano"]);
        let end = nanos(&span["end_time_unix_nano"]);
        assert_eq!(start, event["started_at_ms"].as_u64().unwrap() * 1_000_000);
        assert_eq!(end - start, event["duration_ms"].as_u64().unwrap() * 1_000_000);
        let expected_code = match event["status"].as_str().unwrap() {
            "completed" => json!("STATUS_CODE_OK"),
            "failed" | "interrupted" => json!("STATUS_CODE_ERROR"),
            _ => Value::Null,
        };
        assert_eq!(span["status"].get("code").cloned().unwrap_or(Value::Null), expected_code);
    }

    // The metrics add up to the same counts.
    let totals = metric_totals(&requests);
    let mut expected: BTreeMap<(String, String), Totals> = BTreeMap::new();
    let key = |name: &str, status: &str| (name.to_owned(), status.to_owned());
    expected.insert(
        key("compactor.analytics.events.dropped", ""),
        Totals { unit: "{event}".to_owned(), ..Totals::default() },
    );
    for event in &events {
        let status = event["status"].as_str().unwrap();
        let attempts = expected.entry(key("compactor.compaction.attempts", status)).or_default();
        attempts.count += 1;
        attempts.unit = "{attempt}".to_owned();
        let duration = expected.entry(key("compactor.compaction.duration", status)).or_default();
        duration.count += 1;
        duration.sum += event["duration_ms"].as_f64().unwrap() / 1000.0;
        duration.unit = "s".to_owned();
        if status == "completed" {
            let before = event["active_context_tokens_before"].as_i64().unwrap();
            let after = event["active_context_tokens_after"].as_i64().unwrap();
            let saved =
                expected.entry(key("compactor.compaction.tokens_saved", status)).or_default();
            saved.count += 1;
            saved.sum += (before - after).max(0) as f64;
            saved.unit = "{token}".to_owned();
        }
    }
    // Sums of seconds may differ in the last bits with the order of addition.
    for ((name, status), total) in &mut expected {
        if let Some(found) = totals.get(&(name.clone(), status.clone()))
            && (found.sum - total.sum).abs() < 1e-9
        {
            total.sum = found.sum;
        }
    }
    assert_eq!(totals, expected);
}
