//! Tests of the OTLP sink: the attribute mapping, the ids, and whole exports to a loopback
//! receiver that decodes the protobuf with the OpenTelemetry project's own message types.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use compactor_protocol::{CompactionImplementation, CompactionTrigger};
use opentelemetry::Value;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue as ProtoKeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
use pretty_assertions::assert_eq;
use prost::Message as _;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::*;
use crate::client::{AnalyticsClient, AnalyticsConfig};
use crate::test_support::sample_event;

const WAIT: Duration = Duration::from_secs(5);
const SECRET: &str = "collector-secret-value-123";

/// What the receiver got: one entry per request.
#[derive(Debug)]
enum Received {
    Traces { headers: HeaderMap, request: ExportTraceServiceRequest },
    Metrics(ExportMetricsServiceRequest),
}

/// A loopback OTLP/HTTP receiver; stopped on drop.
struct Receiver {
    addr: SocketAddr,
    received: mpsc::UnboundedReceiver<Received>,
    task: JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Receiver {
        let (tx, received) = mpsc::unbounded_channel();
        let traces = tx.clone();
        let app = Router::new()
            .route(
                "/otlp/v1/traces",
                post(move |headers: HeaderMap, body: Bytes| {
                    let request = ExportTraceServiceRequest::decode(body).unwrap();
                    traces.send(Received::Traces { headers, request }).unwrap();
                    std::future::ready(Vec::<u8>::new())
                }),
            )
            .route(
                "/otlp/v1/metrics",
                post(move |body: Bytes| {
                    let request = ExportMetricsServiceRequest::decode(body).unwrap();
                    tx.send(Received::Metrics(request)).unwrap();
                    std::future::ready(Vec::<u8>::new())
                }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { addr, received, task }
    }

    /// The endpoint, with a trailing slash that the sink must not double.
    fn endpoint(&self) -> String {
        format!("http://{}/otlp/", self.addr)
    }

    /// Everything received so far.
    fn drain(&mut self) -> Vec<Received> {
        std::iter::from_fn(|| self.received.try_recv().ok()).collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn render(value: &Value) -> String {
    match value {
        Value::String(text) => format!("{:?}", text.as_str()),
        other => other.to_string(),
    }
}

fn render_proto(value: Option<&AnyValue>) -> String {
    match value.and_then(|value| value.value.as_ref()) {
        Some(any_value::Value::StringValue(text)) => format!("{text:?}"),
        Some(any_value::Value::IntValue(int)) => int.to_string(),
        Some(any_value::Value::BoolValue(flag)) => flag.to_string(),
        Some(any_value::Value::DoubleValue(double)) => double.to_string(),
        other => panic!("unexpected attribute value {other:?}"),
    }
}

fn proto_map(attributes: &[ProtoKeyValue]) -> BTreeMap<String, String> {
    attributes.iter().map(|kv| (kv.key.clone(), render_proto(kv.value.as_ref()))).collect()
}

fn sdk_map(attributes: &[KeyValue]) -> BTreeMap<String, String> {
    attributes.iter().map(|kv| (kv.key.to_string(), render(&kv.value))).collect()
}

fn failed_event() -> CompactionEvent {
    CompactionEvent {
        implementation: CompactionImplementation::Responses,
        status: CompactionStatus::Failed,
        error: Some("stream error: connection reset".to_owned()),
        active_context_tokens_after: 250_000,
        completed_usage: None,
        retries: 2,
        ..sample_event(2)
    }
}

#[test]
fn span_attributes_follow_the_written_mapping() {
    let rendered = |event: &CompactionEvent| {
        span_attributes(event)
            .iter()
            .map(|kv| format!("{} = {}", kv.key, render(&kv.value)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    insta::assert_snapshot!("completed_span_attributes", rendered(&sample_event(1)));
    insta::assert_snapshot!("failed_span_attributes", rendered(&failed_event()));
}

#[test]
fn metric_attributes_are_few_and_name_the_status() {
    let attributes = sdk_map(&metric_attributes(&failed_event()));
    let expected: BTreeMap<String, String> = [
        ("compactor.implementation", "\"responses\""),
        ("compactor.status", "\"failed\""),
        ("compactor.trigger", "\"auto\""),
        ("gen_ai.provider.name", "\"testkit\""),
        ("gen_ai.request.model", "\"gpt-test\""),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect();
    assert_eq!(attributes, expected);
}

#[test]
fn span_names_and_tokens_saved() {
    assert_eq!(span_name(&sample_event(1)), "compact gpt-test");
    assert_eq!(span_name(&CompactionEvent { model: String::new(), ..sample_event(1) }), "compact");
    assert_eq!(tokens_saved(&sample_event(1)), 232_000);
    let grew = CompactionEvent { active_context_tokens_after: 300_000, ..sample_event(1) };
    assert_eq!(tokens_saved(&grew), 0);
}

#[test]
fn ids_are_stable_and_join_the_attempts_of_a_chain() {
    let uuid = "4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
    assert_eq!(trace_id(uuid).to_string(), "4f1c2d3e5a6b4c7d8e9f0a1b2c3d4e5f");
    // Not a UUID: a hash, the same every time, and different for another id.
    assert_eq!(trace_id("compaction-item-9"), trace_id("compaction-item-9"));
    assert_ne!(trace_id("compaction-item-9"), trace_id("compaction-item-8"));
    assert_ne!(trace_id(""), TraceId::INVALID);
    assert_ne!(span_id(uuid, 1), span_id(uuid, 2));
    assert_ne!(span_id(uuid, 1), span_id("compaction-item-9", 1));
    assert_eq!(span_id(uuid, 3), span_id(uuid, 3));
    assert_ne!(span_id("", 0), SpanId::INVALID);
}

#[test]
fn config_errors_name_the_problem_and_never_a_secret() {
    let bad = |config: OtlpSinkConfig| OtlpSink::new(config).unwrap_err().to_string();
    assert_eq!(
        bad(OtlpSinkConfig::new("ftp://127.0.0.1:4318")),
        "invalid analytics configuration: otlp endpoint scheme must be http or https, not ftp"
    );
    assert!(bad(OtlpSinkConfig::new("not a url")).contains("invalid otlp endpoint"));
    let mut config = OtlpSinkConfig::new("http://127.0.0.1:4318");
    config.headers.push(OtlpHeader::new("bad header", SECRET));
    assert!(bad(config).contains("invalid otlp header name \"bad header\""));
    let mut config = OtlpSinkConfig::new("http://127.0.0.1:4318");
    config.headers.push(OtlpHeader::new("x-key", format!("{SECRET}\n")));
    let message = bad(config.clone());
    assert!(message.contains("invalid value for the otlp header x-key"), "{message}");
    assert!(!message.contains(SECRET));
    assert!(!format!("{config:?}").contains(SECRET));
    let unset = OtlpHeader::from_env("x-key", "COMPACTOR_TEST_SURELY_UNSET_VARIABLE");
    assert_eq!(
        unset.unwrap_err().to_string(),
        "invalid analytics configuration: environment variable \
         COMPACTOR_TEST_SURELY_UNSET_VARIABLE (for the otlp header x-key) is unset or empty"
    );
}

/// The spans of every traces request, by attempt number.
fn spans_by_attempt(received: &[Received]) -> BTreeMap<i64, ProtoSpan> {
    let mut spans = BTreeMap::new();
    for entry in received {
        let Received::Traces { request, .. } = entry else { continue };
        for resource in &request.resource_spans {
            for scope in &resource.scope_spans {
                assert_eq!(scope.scope.as_ref().unwrap().name, "compactor-analytics");
                for span in &scope.spans {
                    let attributes = proto_map(&span.attributes);
                    let attempt = attributes["compactor.attempt_number"].parse().unwrap();
                    assert!(spans.insert(attempt, span.clone()).is_none(), "span sent twice");
                }
            }
        }
    }
    spans
}

/// The newest value of every metric point: `name{status}` -> value (a sum, or a histogram's
/// count and sum).
fn latest_metrics(received: &[Received]) -> BTreeMap<String, String> {
    let mut latest = BTreeMap::new();
    for entry in received {
        let Received::Metrics(request) = entry else { continue };
        for resource in &request.resource_metrics {
            for scope in &resource.scope_metrics {
                for metric in &scope.metrics {
                    match metric.data.as_ref().unwrap() {
                        metric::Data::Sum(sum) => {
                            for point in &sum.data_points {
                                let status = proto_map(&point.attributes)
                                    .get("compactor.status")
                                    .cloned()
                                    .unwrap_or_default();
                                let value = match point.value.unwrap() {
                                    number_data_point::Value::AsInt(int) => int.to_string(),
                                    number_data_point::Value::AsDouble(double) => {
                                        double.to_string()
                                    }
                                };
                                latest.insert(format!("{}{{{status}}}", metric.name), value);
                            }
                        }
                        metric::Data::Histogram(histogram) => {
                            for point in &histogram.data_points {
                                let status = &proto_map(&point.attributes)["compactor.status"];
                                let value = format!(
                                    "count {} sum {} ({})",
                                    point.count,
                                    point.sum.unwrap(),
                                    metric.unit
                                );
                                latest.insert(format!("{}{{{status}}}", metric.name), value);
                            }
                        }
                        other => panic!("unexpected metric data {other:?}"),
                    }
                }
            }
        }
    }
    latest
}

#[tokio::test]
async fn exports_one_span_per_attempt_and_metrics_that_add_up() {
    let mut receiver = Receiver::start().await;
    let mut config = OtlpSinkConfig::new(receiver.endpoint());
    config.headers.push(OtlpHeader::new("x-collector-key", SECRET));
    config.service_name = "compactor-test".to_owned();
    let sink = OtlpSink::new(config).unwrap();
    let client = AnalyticsClient::start(AnalyticsConfig::default(), vec![Box::new(sink)]).unwrap();
    let skipped = CompactionEvent {
        status: CompactionStatus::Skipped,
        trigger: CompactionTrigger::Manual,
        ..sample_event(3)
    };
    let events = [sample_event(1), failed_event(), skipped];
    for event in &events {
        client.track(event.clone());
    }
    client.shutdown().await.unwrap();
    assert_eq!(client.stats().sink_errors, 0);
    let received = receiver.drain();

    let spans = spans_by_attempt(&received);
    assert_eq!(spans.len(), 3);
    for event in &events {
        let span = &spans[&i64::from(event.attempt_number)];
        assert_eq!(proto_map(&span.attributes), sdk_map(&span_attributes(event)));
        assert_eq!(span.name, "compact gpt-test");
        assert_eq!(span.trace_id, trace_id(&event.compaction_id).to_bytes().to_vec());
        assert_eq!(span.start_time_unix_nano, event.started_at_ms * 1_000_000);
        assert_eq!(
            span.end_time_unix_nano - span.start_time_unix_nano,
            event.duration_ms * 1_000_000
        );
    }
    let status = |attempt: i64| spans[&attempt].status.clone().unwrap_or_default();
    assert_eq!((status(1).code, status(1).message.as_str()), (1, ""));
    assert_eq!((status(2).code, status(2).message.as_str()), (2, "stream error: connection reset"));
    assert_eq!(status(3).code, 0);

    // Every request carried the configured header; the service name is on the resource.
    for entry in &received {
        if let Received::Traces { headers, request } = entry {
            assert_eq!(headers["x-collector-key"], SECRET);
            assert_eq!(headers["content-type"], "application/x-protobuf");
            let resource = request.resource_spans[0].resource.as_ref().unwrap();
            assert_eq!(proto_map(&resource.attributes)["service.name"], "\"compactor-test\"");
        }
    }

    let metrics = latest_metrics(&received);
    let expected: BTreeMap<String, String> = [
        ("compactor.analytics.events.dropped{}", "0"),
        ("compactor.compaction.attempts{\"completed\"}", "1"),
        ("compactor.compaction.attempts{\"failed\"}", "1"),
        ("compactor.compaction.attempts{\"skipped\"}", "1"),
        ("compactor.compaction.duration{\"completed\"}", "count 1 sum 3.25 (s)"),
        ("compactor.compaction.duration{\"failed\"}", "count 1 sum 3.25 (s)"),
        ("compactor.compaction.duration{\"skipped\"}", "count 1 sum 3.25 (s)"),
        ("compactor.compaction.tokens_saved{\"completed\"}", "count 1 sum 232000 ({token})"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect();
    assert_eq!(metrics, expected);
}

#[tokio::test(flavor = "current_thread")]
async fn drops_are_exported_as_a_metric() {
    let mut receiver = Receiver::start().await;
    let sink = OtlpSink::new(OtlpSinkConfig::new(receiver.endpoint())).unwrap();
    let config = AnalyticsConfig { queue_capacity: 2, ..AnalyticsConfig::default() };
    let client = AnalyticsClient::start(config, vec![Box::new(sink)]).unwrap();
    // The worker has not run yet on this single-threaded runtime: two fit, three are dropped.
    for attempt in 1..=5 {
        client.track(sample_event(attempt));
    }
    assert_eq!(client.dropped_count(), 3);
    client.shutdown().await.unwrap();
    let received = receiver.drain();
    assert_eq!(spans_by_attempt(&received).len(), 2);
    assert_eq!(latest_metrics(&received)["compactor.analytics.events.dropped{}"], "3");
}

#[tokio::test]
async fn a_dead_endpoint_is_counted_and_never_blocks_shutdown() {
    let unused = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", unused.local_addr().unwrap());
    drop(unused);
    let mut config = OtlpSinkConfig::new(endpoint);
    config.timeout = Duration::from_millis(500);
    let sink = OtlpSink::new(config).unwrap();
    let client = AnalyticsClient::start(AnalyticsConfig::default(), vec![Box::new(sink)]).unwrap();
    client.track(sample_event(1));
    let started = std::time::Instant::now();
    client.shutdown().await.unwrap();
    assert!(started.elapsed() < WAIT);
    // The batch's export failed (spans and metrics: one failed call) and so did the final flush.
    assert_eq!(client.stats().sink_errors, 2);
}

#[tokio::test]
async fn the_sdk_starts_no_thread() {
    let mut receiver = Receiver::start().await;
    let sink = OtlpSink::new(OtlpSinkConfig::new(receiver.endpoint())).unwrap();
    let client = AnalyticsClient::start(AnalyticsConfig::default(), vec![Box::new(sink)]).unwrap();
    client.track(sample_event(1));
    client.flush().await.unwrap();
    // The SDK names its background threads `OpenTelemetry.*` (batch processors, periodic
    // readers); the kernel keeps the first 15 bytes of a name.
    let threads: Vec<String> = std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
                .collect()
        })
        .unwrap_or_default();
    assert!(!threads.is_empty() || !cfg!(target_os = "linux"));
    assert!(threads.iter().all(|name| !name.starts_with("OpenTelemetry")), "threads: {threads:?}");
    client.shutdown().await.unwrap();
    assert!(!receiver.drain().is_empty());
}
