//! Tests of the SSE decoder: framing variants and chunk-independence.

use pretty_assertions::assert_eq;
use proptest::prelude::*;

use super::*;

fn decode_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<String> {
    decode_capped(chunks, DEFAULT_MAX_EVENT_BYTES).unwrap()
}

/// The payloads of `chunks` under a cap of `max` bytes, or the error that ended them.
fn decode_capped<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    max: usize,
) -> Result<Vec<String>, EventTooLarge> {
    let mut decoder = SseDecoder::new(max);
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.push(chunk);
        while let Some(payload) = decoder.next_payload()? {
            out.push(String::from_utf8(payload.to_vec()).unwrap());
        }
    }
    if let Some(payload) = decoder.finish()? {
        out.push(String::from_utf8(payload.to_vec()).unwrap());
    }
    Ok(out)
}

fn decode(input: &str) -> Vec<String> {
    decode_chunks([input.as_bytes()])
}

#[test]
fn framing_variants() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("event and data lines", "event: a\ndata: {\"type\":\"a\"}\n\n", &[r#"{"type":"a"}"#]),
        (
            "data lines only",
            "data: {\"x\":1}\n\ndata: {\"x\":2}\n\n",
            &[r#"{"x":1}"#, r#"{"x":2}"#],
        ),
        ("crlf", "event: a\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n", &["1", "2"]),
        ("bare cr", "data: 1\r\rdata: 2\r\r", &["1", "2"]),
        ("comments", ": keep-alive\ndata: 1\n: another\n\n", &["1"]),
        ("multi-line data", "data: {\"a\":\ndata: 1}\n\n", &["{\"a\":\n1}"]),
        ("no space after colon", "data:{\"a\":1}\n\n", &[r#"{"a":1}"#]),
        ("empty data line counts", "data:\n\n", &[""]),
        ("event without data", "event: response.created\n\n", &[r#"{"type":"response.created"}"#]),
        ("blank lines alone", "\n\n\n", &[]),
        ("id and retry ignored", "id: 7\nretry: 100\ndata: 1\n\n", &["1"]),
        ("done sentinel is a payload", "data: [DONE]\n\n", &["[DONE]"]),
        ("missing final blank line, complete json", "data: {\"a\":1}\n", &[r#"{"a":1}"#]),
        ("missing final newline, complete json", "data: {\"a\":1}", &[r#"{"a":1}"#]),
        (
            "truncated json at the end is dropped",
            "data: {\"a\":1}\n\ndata: {\"b\":",
            &[r#"{"a":1}"#],
        ),
    ];
    for (name, input, expected) in cases {
        assert_eq!(decode(input), *expected, "{name}");
    }
}

#[test]
fn crlf_split_across_reads() {
    let chunks: [&[u8]; 4] = [b"data: 1\r", b"\n\r", b"\ndata: 2\r\n", b"\r\n"];
    assert_eq!(decode_chunks(chunks), ["1", "2"]);
}

#[test]
fn long_line_across_many_chunks() {
    let body = "x".repeat(100_000);
    let input = format!("data: {body}\n\n");
    let chunks: Vec<&[u8]> = input.as_bytes().chunks(16 * 1024).collect();
    assert_eq!(decode_chunks(chunks), [body]);
}

#[test]
fn the_cap_bounds_lines_and_events() {
    let chunked =
        |input: &str| -> Vec<Vec<u8>> { input.as_bytes().chunks(7).map(<[u8]>::to_vec).collect() };
    let check =
        |name: &str, input: &str, max: usize, expected: Result<Vec<&str>, EventTooLarge>| {
            let whole = decode_capped([input.as_bytes()], max);
            let chunks = chunked(input);
            let pieces = decode_capped(chunks.iter().map(Vec::as_slice), max);
            let expected = expected
                .map(|payloads| payloads.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>());
            assert_eq!(whole, expected, "{name}, whole");
            assert_eq!(pieces, expected, "{name}, in chunks");
        };
    let ten = "0123456789";
    check("a line at the cap", &format!("data: {ten}\n\n"), 16, Ok(vec![ten]));
    check("a line past the cap", &format!("data: {ten}{ten}\n\n"), 16, Err(EventTooLarge));
    check("a line that never ends", &"y".repeat(100), 16, Err(EventTooLarge));
    check("a comment past the cap", &format!(": {ten}{ten}\n"), 16, Err(EventTooLarge));
    check(
        "data lines adding up past the cap",
        &format!("data: {ten}\ndata: {ten}\n\n"),
        16,
        Err(EventTooLarge),
    );
    check(
        "events under the cap one by one",
        &format!("data: {ten}\n\ndata: {ten}\n\n"),
        16,
        Ok(vec![ten, ten]),
    );
}

#[test]
fn a_large_event_does_not_keep_its_buffer() {
    let body = "z".repeat(8 << 20);
    let input = format!("data: {body}\n\ndata: small\n\n");
    let mut decoder = SseDecoder::default();
    let mut seen = Vec::new();
    for chunk in input.as_bytes().chunks(64 * 1024) {
        decoder.push(chunk);
        while let Some(payload) = decoder.next_payload().unwrap() {
            seen.push(payload.len());
        }
        // Never more than the event and a quarter, plus one chunk.
        assert!(decoder.buf.capacity() <= body.len() + body.len() / 4 + 2 * 64 * 1024);
    }
    assert_eq!(seen, [body.len(), 5]);
    decoder.push(b"data: x\n\n");
    assert!(decoder.buf.capacity() <= KEEP_CAPACITY, "{}", decoder.buf.capacity());
}

proptest! {
    #[test]
    fn chunking_never_changes_the_events(
        events in proptest::collection::vec("[a-z{}\":, ]{0,40}", 0..8),
        style in 0usize..3,
        cuts in proptest::collection::vec(1usize..20, 0..40),
    ) {
        let eol = ["\n", "\r\n", "\r"][style];
        let mut input = String::new();
        for (i, event) in events.iter().enumerate() {
            if i % 2 == 0 {
                input.push_str(&format!("event: e{i}{eol}"));
            }
            input.push_str(&format!(": comment{eol}data: {event}{eol}{eol}"));
        }
        let whole = decode(&input);
        let bytes = input.as_bytes();
        let mut chunks = Vec::new();
        let mut at = 0;
        for cut in cuts {
            if at >= bytes.len() { break; }
            let end = (at + cut).min(bytes.len());
            chunks.push(&bytes[at..end]);
            at = end;
        }
        chunks.push(&bytes[at..]);
        prop_assert_eq!(&decode_chunks(chunks), &whole);
        let single_bytes: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(&decode_chunks(single_bytes), &whole);
        prop_assert_eq!(whole.len(), events.len());
    }
}
