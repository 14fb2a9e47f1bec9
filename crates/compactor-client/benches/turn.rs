//! A normal WebSocket turn at 10 000 items (D48): what the transport adds to a turn whose
//! request extends the last one, in memory against the history's JSON and in time against one
//! `serde_json::to_vec` of the history.
//!
//! The turn is the transport's own work without the socket (`compactor_client::bench::
//! WebsocketTurns`, the code `ws.rs` runs around each request): the history was sent as a full
//! `response.create` and answered with a function call; the next request is the history, the call
//! and its output. The turn builds that request's `response.create` (incremental: only the call's
//! output goes out), keeps the baseline for the next request, and records the next response's
//! output.
//!
//! - Time: the fastest turn of several, against the fastest `to_vec` of the history, measured in
//!   turn.
//! - Memory: the peak of live heap bytes during the turn, above what was live before the
//!   connection's first request (the requests are built beforehand, as core builds its prompt):
//!   the baseline the first request left, everything the turn allocates, and the baseline it
//!   leaves. A counting global allocator measures it.

#![allow(clippy::print_stdout, reason = "a bench reports on the terminal")]

use std::borrow::Cow;
use std::hint::black_box;
use std::time::{Duration, Instant};

use compactor_client::bench::WebsocketTurns;
use compactor_protocol::{Prompt, ResponseItem, ResponsesApiRequest, ToolOutput, TurnSettings};
use compactor_testkit::workload::{self, MeasuredRatio};
use peak_alloc::PeakAlloc;

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

const ITEMS: usize = 10_000;
const RUNS: usize = 15;

/// A turn's prompt, its input borrowing the items (as core's `prompt_input` does).
fn prompt(input: &[ResponseItem]) -> Prompt<'_> {
    Prompt {
        input: input.iter().map(Cow::Borrowed).collect(),
        base_instructions: "You are a coding agent working in a repository.".to_owned(),
        ..Prompt::default()
    }
}

fn main() -> std::process::ExitCode {
    let history = workload::realistic_history(ITEMS);
    let history_json = serde_json::to_vec(&history).map_or(0, |json| json.len());
    let call = ResponseItem::FunctionCall {
        id: Some("fc_next".to_owned()),
        name: "shell".to_owned(),
        namespace: None,
        arguments: r#"{"command":["cargo","test"]}"#.to_owned(),
        call_id: "call_next".to_owned(),
    };
    let output = ResponseItem::FunctionCallOutput {
        call_id: "call_next".to_owned(),
        output: ToolOutput::Text("test result: ok. 42 passed; 0 failed\n".repeat(40)),
    };
    let answer = ResponseItem::assistant_text("All tests pass.");
    let mut next = history.clone();
    next.extend([call.clone(), output]);
    let settings = TurnSettings { model: "gpt-bench".to_owned(), ..TurnSettings::default() };

    let mut baseline = Duration::MAX;
    let mut turn = Duration::MAX;
    let mut full = Duration::MAX;
    let mut sent = 0usize;
    for _ in 0..RUNS {
        let start = Instant::now();
        let json = serde_json::to_vec(black_box(&history)).unwrap_or_default();
        baseline = baseline.min(start.elapsed());
        drop(black_box(json));

        let (first, second) = (prompt(&history), prompt(&next));
        let first = ResponsesApiRequest::from_prompt(&first, &settings);
        let second = ResponsesApiRequest::from_prompt(&second, &settings);
        let mut turns = WebsocketTurns::default();
        let start = Instant::now();
        let message = turns.send(&first).unwrap_or_default();
        full = full.min(start.elapsed());
        drop(black_box(message));
        turns.complete("resp_1", std::slice::from_ref(&call));

        let start = Instant::now();
        let message = turns.send(&second).unwrap_or_default();
        turns.complete("resp_2", std::slice::from_ref(&answer));
        turn = turn.min(start.elapsed());
        let text = std::str::from_utf8(&message).unwrap_or_default();
        assert!(text.contains(r#""previous_response_id":"resp_1""#), "the turn is incremental");
        sent = message.len();
        drop(black_box(message));
        drop(turns);
    }
    let extra = measure_turn_peak(&history, &next, &call, &answer, &settings);
    println!(
        "history: {ITEMS} items, {:.1} MB of JSON; to_vec {:.2} ms; full create {:.2} ms; \
         incremental turn {:.3} ms ({sent} bytes sent); turn memory {:.1} KB",
        history_json as f64 / 1e6,
        baseline.as_secs_f64() * 1e3,
        full.as_secs_f64() * 1e3,
        turn.as_secs_f64() * 1e3,
        extra as f64 / 1e3,
    );
    let ratios = [
        MeasuredRatio::new(
            "ws_turn_time_vs_to_vec",
            turn.as_secs_f64() / baseline.as_secs_f64(),
            format!(
                "{:.3} ms vs {:.2} ms; {sent} bytes sent",
                turn.as_secs_f64() * 1e3,
                baseline.as_secs_f64() * 1e3
            ),
        ),
        MeasuredRatio::new(
            "ws_turn_memory_vs_history_json",
            extra as f64 / history_json as f64,
            format!(
                "{:.1} KB vs {:.1} MB (the baseline kept between turns included)",
                extra as f64 / 1e3,
                history_json as f64 / 1e6
            ),
        ),
    ];
    match workload::report("turn", &ratios) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(err) => {
            println!("cannot write the bench results: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The peak of live heap bytes over one normal turn, above what was live before the first
/// request of the connection, without the first request's own transient message: the baseline it
/// left, what the turn allocates, and the baseline the turn leaves.
fn measure_turn_peak(
    history: &[ResponseItem],
    next: &[ResponseItem],
    call: &ResponseItem,
    answer: &ResponseItem,
    settings: &TurnSettings,
) -> usize {
    let (first, second) = (prompt(history), prompt(next));
    let first = ResponsesApiRequest::from_prompt(&first, settings);
    let second = ResponsesApiRequest::from_prompt(&second, settings);
    let before = HEAP.current_usage();
    let mut turns = WebsocketTurns::default();
    drop(black_box(turns.send(&first).unwrap_or_default()));
    turns.complete("resp_1", std::slice::from_ref(call));
    HEAP.reset_peak_usage();
    let message = turns.send(&second).unwrap_or_default();
    turns.complete("resp_2", std::slice::from_ref(answer));
    drop(black_box(message));
    let peak = HEAP.peak_usage().saturating_sub(before);
    drop(turns);
    peak
}
