//! Stream decoding keeps up with JSON parsing (D48): decoding a 50 MB realistic event
//! stream runs at no less than the throughput of `serde_json::from_slice::<Value>` over the
//! same payloads, over SSE and over WebSocket. (The comparison with `async-openai` on the same
//! SSE bytes is the bench-only package `benches/peer-decode`.)
//!
//! The stream is `compactor_testkit::workload::response_streams`: agent turns with reasoning
//! (summary deltas, encrypted content), assistant messages streamed as small text deltas, function
//! calls with argument deltas, and completions that repeat every output item.
//!
//! - SSE: each response's body, as the testkit writes it, is fed in 16 KiB chunks through the
//!   HTTP transport's reader (SSE framing, typed payload parsing, event mapping).
//! - WebSocket: each event is one text frame, mapped as the WebSocket transport maps it (typed
//!   parsing, wrapped errors, event mapping, and the fingerprints of output items kept for the
//!   next incremental request).
//! - Baseline: `serde_json::from_slice::<serde_json::Value>` of every event's `data:` payload.
//!
//! Throughput is payload bytes per second; the ratio is decoder throughput over baseline
//! throughput. The three are timed in turn, several times, and each keeps its fastest run.

#![allow(clippy::print_stdout, reason = "a bench reports on the terminal")]

use std::hint::black_box;
use std::time::{Duration, Instant};

use compactor_client::bench::{sse_events, websocket_events};
use compactor_testkit::events::sse;
use compactor_testkit::workload::{self, MeasuredRatio};

/// The size of the stream.
const STREAM_BYTES: usize = 50_000_000;

/// The chunk size of the SSE body.
const CHUNK_BYTES: usize = 16 * 1024;

const RUNS: usize = 3;

/// One response on both transports.
struct Response {
    /// The SSE body.
    body: Vec<u8>,
    /// Each event's JSON: the SSE `data:` payloads, and the WebSocket text frames.
    payloads: Vec<Vec<u8>>,
}

fn timed(run: impl FnOnce() -> usize) -> (Duration, usize) {
    let start = Instant::now();
    let events = run();
    (start.elapsed(), events)
}

fn main() -> std::process::ExitCode {
    let responses: Vec<Response> = workload::response_streams(STREAM_BYTES)
        .iter()
        .map(|events| Response {
            body: sse(events).into_bytes(),
            payloads: events.iter().map(|event| event.to_string().into_bytes()).collect(),
        })
        .collect();
    let payload_bytes: usize = responses.iter().flat_map(|r| &r.payloads).map(Vec::len).sum();
    let body_bytes: usize = responses.iter().map(|r| r.body.len()).sum();
    let event_count: usize = responses.iter().map(|r| r.payloads.len()).sum();
    println!(
        "stream: {} responses, {event_count} events, {:.1} MB of payloads, {:.1} MB of SSE",
        responses.len(),
        payload_bytes as f64 / 1e6,
        body_bytes as f64 / 1e6
    );

    let mut best = [Duration::MAX; 3];
    for _ in 0..RUNS {
        let (time, parsed) = timed(|| {
            let mut parsed = 0;
            for payload in responses.iter().flat_map(|r| &r.payloads) {
                let value: serde_json::Value =
                    serde_json::from_slice(black_box(payload)).unwrap_or_default();
                parsed += usize::from(value.is_object());
                drop(black_box(value));
            }
            parsed
        });
        assert_eq!(parsed, event_count, "every payload is a JSON object");
        best[0] = best[0].min(time);

        let (time, decoded) = timed(|| {
            let mut decoded = 0;
            for response in &responses {
                let chunks: Vec<&[u8]> = response.body.chunks(CHUNK_BYTES).collect();
                decoded += sse_events(black_box(&chunks)).unwrap_or(0);
            }
            decoded
        });
        assert!(decoded > 0, "the SSE stream decodes");
        best[1] = best[1].min(time);

        let (time, decoded) = timed(|| {
            let mut decoded = 0;
            for response in &responses {
                let frames: Vec<&[u8]> = response.payloads.iter().map(Vec::as_slice).collect();
                decoded += websocket_events(black_box(&frames)).unwrap_or(0);
            }
            decoded
        });
        assert!(decoded > 0, "the WebSocket frames decode");
        best[2] = best[2].min(time);
    }

    let throughput = |time: Duration| payload_bytes as f64 / time.as_secs_f64() / 1e6;
    let [baseline, sse_time, ws_time] = best;
    println!(
        "serde_json Value {:.0} MB/s, SSE {:.0} MB/s, WebSocket {:.0} MB/s",
        throughput(baseline),
        throughput(sse_time),
        throughput(ws_time)
    );
    let ratio = |name: &str, time: Duration| {
        MeasuredRatio::new(
            name,
            baseline.as_secs_f64() / time.as_secs_f64(),
            format!("{:.0} MB/s vs {:.0} MB/s", throughput(time), throughput(baseline)),
        )
    };
    let ratios = [
        ratio("sse_decode_vs_serde_value", sse_time),
        ratio("websocket_decode_vs_serde_value", ws_time),
    ];
    match workload::report("decode", &ratios) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(err) => {
            println!("cannot write the bench results: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
