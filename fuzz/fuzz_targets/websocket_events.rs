//! WebSocket event parsing: text frames (one per input line) mapped as the WebSocket transport
//! does, wrapped `error` frames included. Never panics, and frames map one at a time: the reads
//! of a prefix of the frames are a prefix of the reads of all of them.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let frames: Vec<&[u8]> = data.split(|&byte| byte == b'\n').collect();
    let all = compactor_client::fuzzing::websocket_reads(&frames);
    let half = compactor_client::fuzzing::websocket_reads(&frames[..frames.len() / 2]);
    assert!(all.starts_with(&half), "{half:?} is not a prefix of {all:?}");
});
