//! Compactor's SSE decoding against the Rust peer a harness author would otherwise pick (D48):
//! `async-openai`'s Responses stream event types (`ResponseStreamEvent`) read from the events of
//! the `eventsource-stream` parser, exactly as `async-openai` reads a streamed response, on the
//! same bytes. Compactor must keep at least 1.5x the peer's throughput.
//!
//! The bytes are the 50 MB event stream of the client's decode bench
//! (`compactor_testkit::workload::response_streams`, written as the testkit writes SSE), fed in
//! 16 KiB chunks to both:
//!
//! - Compactor: the HTTP transport's decoder (`compactor_client::bench::sse_events`: SSE framing,
//!   typed payload parsing, event mapping);
//! - the peer: `eventsource_stream::EventStream` over the chunks, then
//!   `serde_json::from_str::<ResponseStreamEvent>` of each event's data, skipping `[DONE]`.
//!
//! `serde_json::from_slice::<Value>` of every payload is timed too, for reading the two against
//! the client's decode bench. Throughput is payload bytes per second; each decoder is timed in
//! turn, several times, and keeps its fastest run.
//!
//! This package is outside the workspace so that no test or lint build compiles the peer's
//! crates; `cargo xtask bench` builds and runs it and gathers its ratio with the others.

#![allow(clippy::print_stdout, reason = "a bench reports on the terminal")]

use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, Instant};

use async_openai::types::responses::ResponseStreamEvent;
use bytes::Bytes;
use compactor_client::bench::sse_events;
use compactor_testkit::events::sse;
use compactor_testkit::workload::{self, MeasuredRatio};
use eventsource_stream::Eventsource;
use futures::StreamExt;

/// The size of the stream, as in the client's decode bench.
const STREAM_BYTES: usize = 50_000_000;

/// The chunk size of the SSE body.
const CHUNK_BYTES: usize = 16 * 1024;

const RUNS: usize = 3;

/// What the peer made of a response: events read into its types, and events it could not read.
#[derive(Default, Clone, Copy)]
struct PeerCount {
    parsed: usize,
    failed: usize,
}

/// Decodes one SSE body as `async-openai` decodes a streamed response.
fn peer_decode(chunks: &[Bytes]) -> PeerCount {
    let stream = futures::stream::iter(chunks.iter().cloned().map(Ok::<Bytes, Infallible>));
    let mut events = stream.eventsource();
    futures::executor::block_on(async move {
        let mut count = PeerCount::default();
        while let Some(event) = events.next().await {
            let Ok(event) = event else {
                count.failed += 1;
                continue;
            };
            if event.data == "[DONE]" {
                break;
            }
            match serde_json::from_str::<ResponseStreamEvent>(&event.data) {
                Ok(parsed) => {
                    count.parsed += 1;
                    drop(black_box(parsed));
                }
                Err(_) => count.failed += 1,
            }
        }
        count
    })
}

fn timed<T>(run: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = run();
    (start.elapsed(), out)
}

fn main() -> std::process::ExitCode {
    let responses = workload::response_streams(STREAM_BYTES);
    let bodies: Vec<Vec<Bytes>> = responses
        .iter()
        .map(|events| {
            let body = Bytes::from(sse(events).into_bytes());
            (0..body.len())
                .step_by(CHUNK_BYTES)
                .map(|start| body.slice(start..(start + CHUNK_BYTES).min(body.len())))
                .collect()
        })
        .collect();
    let payloads: Vec<Vec<u8>> =
        responses.iter().flatten().map(|event| event.to_string().into_bytes()).collect();
    let payload_bytes: usize = payloads.iter().map(Vec::len).sum();
    println!(
        "stream: {} responses, {} events, {:.1} MB of payloads",
        responses.len(),
        payloads.len(),
        payload_bytes as f64 / 1e6
    );

    let mut best = [Duration::MAX; 3];
    let mut peer = PeerCount::default();
    for _ in 0..RUNS {
        let (time, parsed) = timed(|| {
            payloads
                .iter()
                .filter(|payload| {
                    serde_json::from_slice::<serde_json::Value>(black_box(payload))
                        .is_ok_and(|value| value.is_object())
                })
                .count()
        });
        if parsed != payloads.len() {
            println!("FAILED: serde_json read {parsed} of {} payloads", payloads.len());
            return std::process::ExitCode::FAILURE;
        }
        best[0] = best[0].min(time);

        // Compactor's transport maps the events it acts on and passes over the rest, so what
        // is checked is that every response decodes through to its completion.
        let (time, completed) = timed(|| {
            bodies
                .iter()
                .filter(|chunks| {
                    let chunks: Vec<&[u8]> = chunks.iter().map(|chunk| &chunk[..]).collect();
                    sse_events(black_box(&chunks)).is_ok()
                })
                .count()
        });
        if completed != bodies.len() {
            println!(
                "FAILED: Compactor decoded {completed} of {} responses to their completion",
                bodies.len()
            );
            return std::process::ExitCode::FAILURE;
        }
        best[1] = best[1].min(time);

        let (time, count) = timed(|| {
            bodies.iter().map(|chunks| peer_decode(black_box(chunks))).fold(
                PeerCount::default(),
                |total, one| PeerCount {
                    parsed: total.parsed + one.parsed,
                    failed: total.failed + one.failed,
                },
            )
        });
        peer = count;
        best[2] = best[2].min(time);
    }

    let throughput = |time: Duration| payload_bytes as f64 / time.as_secs_f64() / 1e6;
    let [value, compactor, openai] = best;
    println!(
        "serde_json Value {:.0} MB/s, Compactor SSE {:.0} MB/s, async-openai over \
         eventsource-stream {:.0} MB/s ({} events read into its types, {} not)",
        throughput(value),
        throughput(compactor),
        throughput(openai),
        peer.parsed,
        peer.failed,
    );
    let ratio = MeasuredRatio::new(
        "sse_decode_vs_async_openai",
        openai.as_secs_f64() / compactor.as_secs_f64(),
        format!(
            "{:.0} MB/s vs {:.0} MB/s; the peer read {} of {} events into its types; \
             serde_json Value {:.0} MB/s",
            throughput(compactor),
            throughput(openai),
            peer.parsed,
            payloads.len(),
            throughput(value),
        ),
    );
    match workload::report("peer-decode", &[ratio]) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(err) => {
            println!("cannot write the bench results: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
