//! The typed parse of a request (D48): reading the request a v2 compaction of a 10 000-item
//! history sends, on one thread, takes the general `ResponseItem` reading (a message from its
//! JSON object, any other item by the derived tagged deserializer) at least twice as long as the
//! testkit's own reading of it: its items by the direct reader (D170), which reads the form
//! Compactor writes straight from the text, the rest of the body by `serde_json`. The row
//! compares the readings, so both read on one thread; the testkit's server reads a request this
//! large in two halves at once (D168).
//!
//! The body is the one the client sends (the history's items, then the v2 trigger). The
//! testkit's side reads the whole body as a `ResponsesApiRequest`; the general side reads its
//! `input` the general way (`compactor_protocol::items::oracle`) and skips the other fields, so
//! the measured speed-up is, if anything, smaller than the real one. Both read the body as the
//! server does, its text checked as UTF-8 once and then read as a string. Each is timed in turn,
//! several times, and keeps its fastest run; the hand-written serde reader (D131), which reads an
//! item the direct reader does not take, and `serde_json::from_slice::<Value>` of the body are
//! printed for reading.

#![allow(clippy::print_stdout, reason = "a bench reports on the terminal")]

use std::borrow::Cow;
use std::hint::black_box;
use std::time::{Duration, Instant};

use compactor_protocol::items::oracle::ReferenceInput;
use compactor_protocol::{Prompt, ResponseItem, ResponsesApiRequest, TurnSettings};
use compactor_testkit::workload::{self, MeasuredRatio};

const ITEMS: usize = 10_000;
const RUNS: usize = 15;

/// The body's text, checked as UTF-8 once, as the testkit's server reads a body before it reads
/// the JSON in it; both readings are timed with it.
fn read(body: &[u8]) -> serde_json::Result<&str> {
    std::str::from_utf8(body).map_err(serde::de::Error::custom)
}

fn main() -> std::process::ExitCode {
    let mut history = workload::realistic_history(ITEMS);
    history.push(ResponseItem::context_compaction_trigger());
    let prompt = Prompt {
        input: history.iter().map(Cow::Borrowed).collect(),
        base_instructions: "You are a coding agent working in a repository.".to_owned(),
        ..Prompt::default()
    };
    let settings = TurnSettings { model: "gpt-bench".to_owned(), ..TurnSettings::default() };
    let request = ResponsesApiRequest::from_prompt(&prompt, &settings);
    let body = serde_json::to_vec(&request).unwrap_or_default();

    let mut best = [Duration::MAX; 4];
    for _ in 0..RUNS {
        let start = Instant::now();
        let ours = read(black_box(&body)).and_then(compactor_testkit::read_request_on_one_thread);
        best[0] = best[0].min(start.elapsed());
        let ours = ours.map(|request| request.input.len()).unwrap_or(0);

        let start = Instant::now();
        let serde =
            read(black_box(&body)).and_then(serde_json::from_str::<ResponsesApiRequest<'static>>);
        best[3] = best[3].min(start.elapsed());
        let serde = serde.map(|request| request.input.len()).unwrap_or(0);

        let start = Instant::now();
        let theirs = read(black_box(&body)).and_then(serde_json::from_str::<ReferenceInput>);
        best[1] = best[1].min(start.elapsed());
        let theirs = theirs.map(|input| input.0.len()).unwrap_or(0);

        let start = Instant::now();
        let value = serde_json::from_slice::<serde_json::Value>(black_box(&body));
        best[2] = best[2].min(start.elapsed());
        drop(black_box(value));
        if ours != history.len() || theirs != history.len() || serde != history.len() {
            println!("FAILED: read {ours}, {theirs} and {serde} items of {}", history.len());
            return std::process::ExitCode::FAILURE;
        }
    }
    let [ours, theirs, value, serde] = best;
    let ms = |time: Duration| time.as_secs_f64() * 1e3;
    println!(
        "request of {} items, {:.1} MB: direct {:.2} ms, general {:.2} ms, hand-written serde \
         reader {:.2} ms, serde_json Value {:.2} ms",
        history.len(),
        body.len() as f64 / 1e6,
        ms(ours),
        ms(theirs),
        ms(serde),
        ms(value),
    );
    let ratio = MeasuredRatio::new(
        "request_parse_vs_derived",
        theirs.as_secs_f64() / ours.as_secs_f64(),
        format!(
            "general {:.2} ms vs direct {:.2} ms ({:.1} MB; the hand-written serde reader {:.2} \
             ms, {:.2}x; serde_json Value {:.2} ms)",
            ms(theirs),
            ms(ours),
            body.len() as f64 / 1e6,
            ms(serde),
            theirs.as_secs_f64() / serde.as_secs_f64(),
            ms(value)
        ),
    );
    match workload::report("parse", &[ratio]) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(err) => {
            println!("cannot write the bench results: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
