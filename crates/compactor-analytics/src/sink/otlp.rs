//! The OpenTelemetry sink (cargo feature `otlp`): one span per compaction attempt and four
//! metrics, exported over OTLP/HTTP with protobuf from the analytics worker itself.
//!
//! The mapping from event fields to attributes is written down, with units, in
//! `docs/telemetry.md`; the choices behind it are D90 to D93 in `docs/decisions.md`.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::{Duration, UNIX_EPOCH};

use compactor_protocol::CompactionStatus;
use opentelemetry::metrics::{Counter, Histogram, MeterProvider as _};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{
    MetricExporter, Protocol, SpanExporter, WithExportConfig as _, WithHttpConfig as _,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter as _;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality,
};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::client::AnalyticsStats;
use crate::error::{Error, Result};
use crate::event::{AnalyticsEvent, CompactionEvent};
use crate::sink::{AnalyticsSink, Batching, SinkFuture};

/// The value of `gen_ai.operation.name` on every span, and the first word of its name (D91).
pub(crate) const OPERATION_NAME: &str = "compact";

/// Metric names (D92).
pub(crate) const DURATION_METRIC: &str = "compactor.compaction.duration";
pub(crate) const TOKENS_SAVED_METRIC: &str = "compactor.compaction.tokens_saved";
pub(crate) const ATTEMPTS_METRIC: &str = "compactor.compaction.attempts";
pub(crate) const DROPPED_METRIC: &str = "compactor.analytics.events.dropped";

/// Bucket bounds of the duration histogram, in seconds: the OpenTelemetry GenAI conventions'
/// advice for operation durations.
const DURATION_BOUNDS: [f64; 14] =
    [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

/// Bucket bounds of the tokens-saved histogram: the GenAI conventions' advice for token counts.
const TOKEN_BOUNDS: [f64; 14] = [
    1.0,
    4.0,
    16.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
];

/// One header sent with every export, such as a collector's API key. Its value never appears
/// in `Debug`, logs or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct OtlpHeader {
    name: String,
    value: String,
}

impl OtlpHeader {
    /// A header whose value is given in code.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        OtlpHeader { name: name.into(), value: value.into() }
    }

    /// A header whose value is read from the environment variable `variable`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the variable is unset, empty or not Unicode; the message names
    /// the header and the variable, never a value.
    pub fn from_env(name: impl Into<String>, variable: &str) -> Result<Self> {
        let name = name.into();
        match std::env::var(variable) {
            Ok(value) if !value.is_empty() => Ok(OtlpHeader { name, value }),
            Ok(_) | Err(_) => Err(Error::Config(format!(
                "environment variable {variable} (for the otlp header {name}) is unset or empty"
            ))),
        }
    }

    /// The header's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for OtlpHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OtlpHeader({:?}: <redacted>)", self.name)
    }
}

/// Settings of an [`OtlpSink`].
#[derive(Debug, Clone)]
pub struct OtlpSinkConfig {
    /// The OTLP/HTTP base URL, such as `http://127.0.0.1:4318`: spans go to
    /// `{endpoint}/v1/traces` and metrics to `{endpoint}/v1/metrics`, as with the standard
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: String,
    /// Headers sent with every export.
    pub headers: Vec<OtlpHeader>,
    /// The resource's `service.name` (default `compactor`).
    pub service_name: String,
    /// The bound of one export request, retries included (default 10 s).
    pub timeout: Duration,
    /// How events are grouped into exports (default: 64 events or 2 s).
    pub batching: Batching,
}

impl OtlpSinkConfig {
    /// The default export timeout.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default batching.
    pub const DEFAULT_BATCHING: Batching =
        Batching { max_events: 64, max_delay: Duration::from_secs(2) };

    /// Defaults for `endpoint`, without headers.
    pub fn new(endpoint: impl Into<String>) -> Self {
        OtlpSinkConfig {
            endpoint: endpoint.into(),
            headers: Vec::new(),
            service_name: "compactor".to_owned(),
            timeout: OtlpSinkConfig::DEFAULT_TIMEOUT,
            batching: OtlpSinkConfig::DEFAULT_BATCHING,
        }
    }
}

/// The SDK's instruments of the four metrics.
struct Instruments {
    duration: Histogram<f64>,
    tokens_saved: Histogram<u64>,
    attempts: Counter<u64>,
    dropped: Counter<u64>,
}

/// Exports each compaction attempt as an OpenTelemetry span, and the attempts' durations,
/// tokens saved, counts by status and the analytics queue's drops as metrics, to an
/// OTLP/HTTP endpoint (protobuf).
///
/// The sink runs inside the analytics worker, so it never blocks a turn: events wait in the
/// client's bounded queue (a full queue drops and counts them, and the count is exported as
/// `compactor.analytics.events.dropped`), and each export is bounded by
/// [`OtlpSinkConfig::timeout`]. Spans are sent with each batch; metrics with each batch and on
/// every flush, shutdown included. The SDK starts no thread here: the exporters run on the
/// worker's task, and the metrics are read on demand (D90).
///
/// A failed export is logged by the worker and counted in
/// [`AnalyticsStats::sink_errors`]; its spans are lost. Error text names neither the URL nor
/// the headers.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), compactor_analytics::Error> {
/// use compactor_analytics::{AnalyticsClient, AnalyticsConfig, OtlpHeader, OtlpSink, OtlpSinkConfig};
///
/// let mut config = OtlpSinkConfig::new("http://127.0.0.1:4318");
/// config.headers.push(OtlpHeader::new("x-team", "agents"));
/// let sink = OtlpSink::new(config)?;
/// let analytics = AnalyticsClient::start(AnalyticsConfig::default(), vec![Box::new(sink)])?;
/// // ... hand `analytics` to the session builder; on exit:
/// let _ = analytics.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct OtlpSink {
    spans: SpanExporter,
    metrics: MetricExporter,
    reader: Arc<ManualReader>,
    /// Owns the metrics pipeline the reader collects from.
    _provider: SdkMeterProvider,
    instruments: Instruments,
    scope: InstrumentationScope,
    batching: Batching,
    /// The client's drop count already added to the dropped-events counter.
    reported_drops: u64,
}

impl fmt::Debug for OtlpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpSink").field("batching", &self.batching).finish_non_exhaustive()
    }
}

impl OtlpSink {
    /// Builds the sink; nothing is sent until the first batch.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an endpoint that does not parse or is not `http`/`https`, an
    /// invalid header name or value, or exporters the SDK refuses to build;
    /// [`Error::Http`] when the HTTP client cannot be built.
    pub fn new(config: OtlpSinkConfig) -> Result<Self> {
        let endpoint = Url::parse(&config.endpoint)
            .map_err(|err| Error::Config(format!("invalid otlp endpoint: {err}")))?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(Error::Config(format!(
                "otlp endpoint scheme must be http or https, not {}",
                endpoint.scheme()
            )));
        }
        let base = config.endpoint.trim_end_matches('/');
        let mut headers = HeaderMap::new();
        for header in &config.headers {
            let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| {
                Error::Config(format!("invalid otlp header name {:?}", header.name))
            })?;
            let mut value = HeaderValue::from_str(&header.value).map_err(|_| {
                Error::Config(format!("invalid value for the otlp header {}", header.name))
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        // One client for both signals. Redirects are not followed, so the headers never reach
        // another host.
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("compactor-analytics/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| Error::Http(err.without_url()))?;
        let built = |what: &str, err: &dyn fmt::Display| {
            Error::Config(format!("cannot build the otlp {what} exporter: {err}"))
        };
        let resource = Resource::builder().with_service_name(config.service_name).build();
        let mut spans = SpanExporter::builder()
            .with_http()
            .with_http_client(http.clone())
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{base}/v1/traces"))
            .with_timeout(config.timeout)
            .build()
            .map_err(|err| built("span", &err))?;
        spans.set_resource(&resource);
        let metrics = MetricExporter::builder()
            .with_http()
            .with_http_client(http)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{base}/v1/metrics"))
            .with_timeout(config.timeout)
            .with_temporality(Temporality::Cumulative)
            .build()
            .map_err(|err| built("metric", &err))?;

        let scope = InstrumentationScope::builder("compactor-analytics")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let reader =
            Arc::new(ManualReader::builder().with_temporality(Temporality::Cumulative).build());
        let provider = SdkMeterProvider::builder()
            .with_reader(SharedReader(Arc::clone(&reader)))
            .with_resource(resource)
            .build();
        let meter = provider.meter_with_scope(scope.clone());
        let instruments = Instruments {
            duration: meter
                .f64_histogram(DURATION_METRIC)
                .with_unit("s")
                .with_description("Duration of compaction attempts")
                .with_boundaries(DURATION_BOUNDS.to_vec())
                .build(),
            tokens_saved: meter
                .u64_histogram(TOKENS_SAVED_METRIC)
                .with_unit("{token}")
                .with_description("Context tokens removed by completed compaction attempts")
                .with_boundaries(TOKEN_BOUNDS.to_vec())
                .build(),
            attempts: meter
                .u64_counter(ATTEMPTS_METRIC)
                .with_unit("{attempt}")
                .with_description("Compaction attempts, by status")
                .build(),
            dropped: meter
                .u64_counter(DROPPED_METRIC)
                .with_unit("{event}")
                .with_description("Analytics events dropped because the queue was full or closed")
                .build(),
        };
        // Exported from the start, so that a dashboard sees 0 rather than nothing.
        instruments.dropped.add(0, &[]);
        Ok(OtlpSink {
            spans,
            metrics,
            reader,
            _provider: provider,
            instruments,
            scope,
            batching: config.batching,
            reported_drops: 0,
        })
    }

    fn record(&self, event: &CompactionEvent) {
        let attributes = metric_attributes(event);
        self.instruments.attempts.add(1, &attributes);
        // Milliseconds to seconds; exact for any duration below 2^52 ms.
        let seconds = event.duration_ms as f64 / 1000.0;
        self.instruments.duration.record(seconds, &attributes);
        if event.status == CompactionStatus::Completed {
            self.instruments.tokens_saved.record(tokens_saved(event), &attributes);
        }
    }

    fn span(&self, event: &CompactionEvent) -> SpanData {
        let start = UNIX_EPOCH
            + if event.started_at_ms > 0 {
                Duration::from_millis(event.started_at_ms)
            } else {
                Duration::from_secs(event.started_at)
            };
        let status = match event.status {
            CompactionStatus::Completed => Status::Ok,
            CompactionStatus::Failed | CompactionStatus::Interrupted => {
                Status::error(event.error.clone().unwrap_or_default())
            }
            CompactionStatus::Skipped => Status::Unset,
        };
        SpanData {
            span_context: SpanContext::new(
                trace_id(&event.compaction_id),
                span_id(&event.compaction_id, event.attempt_number),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: span_name(event).into(),
            start_time: start,
            end_time: start + Duration::from_millis(event.duration_ms),
            attributes: span_attributes(event),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status,
            instrumentation_scope: self.scope.clone(),
        }
    }

    async fn export_metrics(&self) -> Result<()> {
        let mut collected = ResourceMetrics::default();
        self.reader
            .collect(&mut collected)
            .map_err(|err| Error::Otlp(format!("cannot collect metrics: {err}")))?;
        self.metrics
            .export(&collected)
            .await
            .map_err(|err| Error::Otlp(format!("metrics export failed: {err}")))
    }

    async fn export(&self, events: &[AnalyticsEvent]) -> Result<()> {
        let mut spans = Vec::with_capacity(events.len());
        for event in events {
            let AnalyticsEvent::Compaction(compaction) = event;
            self.record(compaction);
            spans.push(self.span(compaction));
        }
        let spans = self
            .spans
            .export(spans)
            .await
            .map_err(|err| Error::Otlp(format!("span export failed: {err}")));
        // Metrics go out even when the spans did not.
        let metrics = self.export_metrics().await;
        spans.and(metrics)
    }
}

impl AnalyticsSink for OtlpSink {
    fn name(&self) -> &str {
        "otlp"
    }

    fn batching(&self) -> Batching {
        self.batching
    }

    fn send<'a>(&'a mut self, events: &'a [AnalyticsEvent]) -> SinkFuture<'a> {
        Box::pin(self.export(events))
    }

    fn flush(&mut self) -> SinkFuture<'_> {
        Box::pin(self.export_metrics())
    }

    fn observe_stats(&mut self, stats: AnalyticsStats) {
        let new_drops = stats.dropped.saturating_sub(self.reported_drops);
        if new_drops > 0 {
            self.instruments.dropped.add(new_drops, &[]);
            self.reported_drops = stats.dropped;
        }
    }
}

/// A [`ManualReader`] the sink keeps a handle on after giving it to the meter provider.
#[derive(Debug)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }

    fn collect(&self, metrics: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(metrics)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

/// `compact {model}`, or `compact` when the model is unknown (D91).
pub(crate) fn span_name(event: &CompactionEvent) -> String {
    if event.model.is_empty() {
        OPERATION_NAME.to_owned()
    } else {
        format!("{OPERATION_NAME} {}", event.model)
    }
}

/// Context tokens a completed attempt removed; 0 when the context grew.
pub(crate) fn tokens_saved(event: &CompactionEvent) -> u64 {
    u64::try_from(
        event.active_context_tokens_before.saturating_sub(event.active_context_tokens_after),
    )
    .unwrap_or(0)
}

fn int(value: impl TryInto<i64>) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}

/// The attributes of an attempt's span, in the order of `docs/telemetry.md`.
pub(crate) fn span_attributes(event: &CompactionEvent) -> Vec<KeyValue> {
    let mut attributes = vec![KeyValue::new("gen_ai.operation.name", OPERATION_NAME)];
    if !event.provider.is_empty() {
        attributes.push(KeyValue::new("gen_ai.provider.name", event.provider.clone()));
    }
    if !event.model.is_empty() {
        attributes.push(KeyValue::new("gen_ai.request.model", event.model.clone()));
    }
    attributes.push(KeyValue::new("gen_ai.conversation.id", event.thread_id.clone()));
    if let Some(usage) = event.completed_usage {
        attributes.extend([
            KeyValue::new("gen_ai.usage.input_tokens", usage.input_tokens),
            KeyValue::new("gen_ai.usage.output_tokens", usage.output_tokens),
            KeyValue::new("compactor.usage.cached_input_tokens", usage.cached_input_tokens),
            KeyValue::new("compactor.usage.reasoning_output_tokens", usage.reasoning_output_tokens),
            KeyValue::new("compactor.usage.total_tokens", usage.total_tokens),
        ]);
    }
    match event.status {
        CompactionStatus::Failed | CompactionStatus::Interrupted => {
            attributes.push(KeyValue::new("error.type", event.status.to_string()));
        }
        CompactionStatus::Completed | CompactionStatus::Skipped => {}
    }
    attributes.extend([
        KeyValue::new("compactor.turn_id", event.turn_id.clone()),
        KeyValue::new("compactor.compaction_id", event.compaction_id.clone()),
        KeyValue::new("compactor.attempt_number", int(event.attempt_number)),
        KeyValue::new("compactor.chain_position", int(event.chain_position)),
        KeyValue::new("compactor.chain_length", int(event.chain_length)),
        KeyValue::new("compactor.trigger", event.trigger.to_string()),
        KeyValue::new("compactor.reason", event.reason.to_string()),
        KeyValue::new("compactor.implementation", event.implementation.to_string()),
        KeyValue::new("compactor.phase", event.phase.to_string()),
        KeyValue::new("compactor.strategy", event.strategy.to_string()),
        KeyValue::new("compactor.status", event.status.to_string()),
        KeyValue::new("compactor.tokens_before", event.active_context_tokens_before),
        KeyValue::new("compactor.tokens_after", event.active_context_tokens_after),
        KeyValue::new("compactor.duration_ms", int(event.duration_ms)),
        KeyValue::new("compactor.bytes_sent", int(event.bytes_sent)),
        KeyValue::new("compactor.retries", int(event.retries)),
        KeyValue::new("compactor.version", event.runtime.compactor_version.clone()),
        KeyValue::new("compactor.runtime.os", event.runtime.runtime_os.clone()),
        KeyValue::new("compactor.runtime.arch", event.runtime.runtime_arch.clone()),
    ]);
    attributes
}

/// The attributes of every metric point: few, and of low cardinality.
pub(crate) fn metric_attributes(event: &CompactionEvent) -> Vec<KeyValue> {
    vec![
        KeyValue::new("gen_ai.provider.name", event.provider.clone()),
        KeyValue::new("gen_ai.request.model", event.model.clone()),
        KeyValue::new("compactor.trigger", event.trigger.to_string()),
        KeyValue::new("compactor.implementation", event.implementation.to_string()),
        KeyValue::new("compactor.status", event.status.to_string()),
    ]
}

/// The trace of a compaction: the id itself when it is a UUID (as core's ids are), so a trace
/// can be found by compaction id; otherwise a hash of it (D93).
pub(crate) fn trace_id(compaction_id: &str) -> TraceId {
    let hex: String = compaction_id.chars().filter(|c| *c != '-').collect();
    let id = match u128::from_str_radix(&hex, 16) {
        Ok(id) if hex.len() == 32 => id,
        Ok(_) | Err(_) => {
            let high = fnv1a(compaction_id.as_bytes(), FNV_OFFSET);
            let low = fnv1a(compaction_id.as_bytes(), FNV_OFFSET ^ 0x9e37_79b9_7f4a_7c15);
            (u128::from(high) << 64) | u128::from(low)
        }
    };
    // The all-zero id is invalid.
    TraceId::from(id.max(1))
}

/// The span of one attempt: a hash of the compaction id and the attempt number (D93).
pub(crate) fn span_id(compaction_id: &str, attempt_number: u32) -> SpanId {
    let seed = fnv1a(compaction_id.as_bytes(), FNV_OFFSET);
    SpanId::from(fnv1a(&attempt_number.to_le_bytes(), seed).max(1))
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// 64-bit FNV-1a of `bytes`, starting from `state`.
fn fnv1a(bytes: &[u8], state: u64) -> u64 {
    bytes.iter().fold(state, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests;
