//! The SSE decoder and event mapping of the HTTP transport: never panics, and the reads do not
//! depend on how the body is cut into chunks (whole, at fuzzer-chosen offsets, byte by byte).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte says how many cut offsets follow (up to 7); the rest is the body.
    let Some((&cuts, rest)) = data.split_first() else { return };
    let cuts = usize::from(cuts % 8).min(rest.len());
    let (offsets, body) = rest.split_at(cuts);
    let mut points: Vec<usize> = offsets
        .iter()
        .map(|&at| if body.is_empty() { 0 } else { usize::from(at) % body.len() })
        .collect();
    points.sort_unstable();
    points.dedup();
    let mut chunks = Vec::new();
    let mut start = 0;
    for point in points {
        chunks.push(&body[start..point]);
        start = point;
    }
    chunks.push(&body[start..]);

    let whole = compactor_client::fuzzing::sse_reads(&[body]);
    let cut = compactor_client::fuzzing::sse_reads(&chunks);
    assert_eq!(whole, cut, "cut at {chunks:?}");
    if body.len() <= 4096 {
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(whole, compactor_client::fuzzing::sse_reads(&bytes), "byte by byte");
    }
});
