//! Tests of requests written in pieces: joined, they are the JSON of the whole message.

use compactor_protocol::{Prompt, TurnSettings, owned_items};
use pretty_assertions::assert_eq;
use proptest::prelude::*;
use serde_json::json;

use super::*;

fn settings() -> TurnSettings {
    TurnSettings { model: "m".into(), ..TurnSettings::default() }
}

fn request<'a>(prompt: &'a Prompt<'_>, settings: &'a TurnSettings) -> ResponsesApiRequest<'a> {
    let mut request = ResponsesApiRequest::from_prompt(prompt, settings);
    request.prompt_cache_key = Some("thread-1".into());
    request.stream = Some(true);
    request
}

/// The `response.create` of `request` written whole.
fn create_json(request: &ResponsesApiRequest<'_>) -> Vec<u8> {
    serde_json::to_vec(&WsClientMessage::ResponseCreate(Box::new(request.reborrow()))).unwrap()
}

/// Every piece of `pieces`, and whether `fill` said more would follow each.
fn pieces(mut pieces: JsonPieces<'_>) -> Vec<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    loop {
        let mut piece = Vec::new();
        let more = pieces.fill(&mut piece).unwrap();
        out.push((piece, more));
        if !more {
            return out;
        }
    }
}

/// A prompt of about 1.3 MB in 40 items with escapes and multi-byte text, and text that looks
/// like the input list in the instructions and inside a tool's schema.
fn large_prompt() -> Prompt<'static> {
    let big = "x\"y\\z é ".repeat(4_000);
    Prompt {
        input: owned_items(
            (0..40).map(|n| ResponseItem::user_text(format!("{n} {big}"))).collect::<Vec<_>>(),
        ),
        base_instructions: r#"say "input":[] and {"input":[]}"#.to_owned(),
        tools: vec![json!({"type": "function", "name": "f", "parameters": {"input": []}})],
        ..Prompt::default()
    }
}

#[test]
fn a_message_in_pieces_is_the_json_of_the_request() {
    let prompt = large_prompt();
    let settings = settings();
    let request = request(&prompt, &settings);
    let whole = create_json(&request);
    let pieces = pieces(JsonPieces::create(&request).unwrap());
    assert!(pieces.len() > 2, "{} pieces", pieces.len());
    let joined: Vec<u8> = pieces.iter().flat_map(|(piece, _)| piece.clone()).collect();
    assert_eq!(String::from_utf8(joined).unwrap(), String::from_utf8(whole).unwrap());
    let (last, rest) = pieces.split_last().unwrap();
    assert!(!last.1 && rest.iter().all(|(_, more)| *more), "only the last piece ends the body");
    // Whole items fill a piece up to its size: no piece holds much more than one item past it.
    let item_len = serde_json::to_vec(&request.input[0]).unwrap().len();
    assert!(rest.iter().all(|(piece, _)| piece.len() < PIECE_BYTES + item_len + 1));
}

#[test]
fn http_bodies_in_pieces_are_the_json_of_their_requests() {
    let prompt = large_prompt();
    let settings = settings();
    let request = request(&prompt, &settings);
    let body = HttpBody::new(JsonPieces::body(&request).unwrap());
    let whole = serde_json::to_vec(&request).unwrap();
    assert_eq!(body.len(), u64::try_from(whole.len()).unwrap(), "the length counted is the body's");
    let pieces: Vec<Bytes> = body.pieces().map(Result::unwrap).collect();
    assert!(pieces.len() > 2, "{} pieces", pieces.len());
    assert!(pieces.iter().all(|piece| piece.len() < HTTP_PIECE_BYTES * 2));
    assert_eq!(pieces.concat(), whole);
    assert_eq!(body.to_bytes().unwrap(), whole, "written again, the body is the same");

    let mut compact = CompactRequest::from_prompt(&prompt, &settings);
    compact.prompt_cache_key = Some("thread-1".into());
    let body = HttpBody::new(JsonPieces::compact(&compact).unwrap());
    let whole = serde_json::to_vec(&compact).unwrap();
    assert_eq!(body.len(), u64::try_from(whole.len()).unwrap());
    assert_eq!(body.to_bytes().unwrap(), whole);
}

#[tokio::test]
async fn an_attempt_streams_the_pieces_its_writer_writes() {
    use http_body_util::BodyExt;

    let prompt = large_prompt();
    let settings = settings();
    let request = request(&prompt, &settings);
    let body = HttpBody::new(JsonPieces::body(&request).unwrap());
    let (wire, writer) = body.attempt().unwrap();
    let read = async { wire.collect().await.map(http_body_util::Collected::to_bytes) };
    let (read, written) = tokio::join!(read, writer.write());
    written.unwrap();
    assert_eq!(read.unwrap(), serde_json::to_vec(&request).unwrap());

    // A body nobody reads any more ends the writing, which is not an error.
    let (wire, writer) = body.attempt().unwrap();
    drop(wire);
    writer.write().await.unwrap();
}

#[tokio::test]
async fn a_body_that_does_not_come_to_its_length_ends_in_an_error() {
    use http_body_util::BodyExt;

    let prompt = large_prompt();
    let settings = settings();
    let request = request(&prompt, &settings);
    let mut body = HttpBody::new(JsonPieces::body(&request).unwrap());
    body.len -= 1;
    let err = body.to_bytes().unwrap_err();
    assert!(matches!(&err, CompactorError::Json(message) if message.contains("counted")), "{err}");
    let (wire, writer) = body.attempt().unwrap();
    let (read, written) = tokio::join!(wire.collect(), writer.write());
    assert!(read.is_err(), "the stream ends in an error, not cut short");
    assert!(matches!(written, Err(CompactorError::Json(_))));
}

#[test]
fn a_create_message_in_pieces_is_its_json() {
    let prompt = Prompt {
        input: owned_items([ResponseItem::user_text("hi"), ResponseItem::assistant_text("ok")]),
        ..Prompt::default()
    };
    let settings = settings();
    let mut request = request(&prompt, &settings);
    request.stream = None;
    request.previous_response_id = Some("resp-1".into());
    let whole = create_json(&request);
    let mut written = JsonPieces::create(&request).unwrap();
    let mut out = Vec::new();
    assert!(!written.fill(&mut out).unwrap(), "a small message is one piece");
    assert_eq!(written.written(), u64::try_from(whole.len()).unwrap());
    assert_eq!(out, whole);
}

#[test]
fn an_empty_input_is_an_empty_list() {
    let settings = settings();
    let prompt = Prompt::default();
    let request = request(&prompt, &settings);
    assert_eq!(JsonPieces::create(&request).unwrap().collect().unwrap(), create_json(&request));
}

#[test]
fn the_input_list_is_found_only_at_the_top_level() {
    assert_eq!(empty_input_at(br#"{"a":{"input":[]},"input":[]}"#), Some(26));
    assert_eq!(empty_input_at(br#"{"a":"\"input\":[]","input":[]}"#), Some(28));
    assert_eq!(empty_input_at(br#"{"input":"[]"}"#), None);
    assert_eq!(empty_input_at(br#"{"a":["input"],"b":"input"}"#), None);
    assert_eq!(empty_input_at(br#"{"a":"unterminated"#), None);
}

proptest! {
    #[test]
    fn any_input_in_pieces_is_the_json_of_the_message(
        // Short random texts repeated: items of up to several KiB, bodies of several pieces.
        texts in proptest::collection::vec(("[a-z \"\\\\{}\\[\\]:,é]{0,30}", 0..200usize), 0..60),
        instructions in "[a-z \"\\\\{}\\[\\]:,]{0,40}",
    ) {
        let prompt = Prompt {
            input: owned_items(
                texts
                    .iter()
                    .map(|(text, times)| ResponseItem::user_text(text.repeat(*times)))
                    .collect::<Vec<_>>(),
            ),
            base_instructions: instructions,
            ..Prompt::default()
        };
        let settings = settings();
    let request = request(&prompt, &settings);
        let mut pieces = JsonPieces::create(&request).unwrap();
        let mut joined = Vec::new();
        while pieces.fill(&mut joined).unwrap() {}
        prop_assert_eq!(pieces.written(), u64::try_from(joined.len()).unwrap());
        prop_assert_eq!(joined, create_json(&request));
    }
}

#[tokio::test]
async fn a_body_of_one_piece_is_written_before_its_attempt() {
    use http_body_util::BodyExt;

    let prompt =
        Prompt { input: owned_items([ResponseItem::user_text("hi")]), ..Prompt::default() };
    let settings = settings();
    let request = request(&prompt, &settings);
    let mut body = HttpBody::new(JsonPieces::body(&request).unwrap());
    let (wire, writer) = body.attempt().unwrap();
    writer.write().await.unwrap();
    assert_eq!(wire.collect().await.unwrap().to_bytes(), serde_json::to_vec(&request).unwrap());
    // Written before the attempt, a body that cannot be written fails it at once.
    body.len += 1;
    assert!(matches!(body.attempt(), Err(CompactorError::Json(_))));
}
