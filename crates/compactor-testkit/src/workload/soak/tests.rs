//! Tests of the soak workload: its sizes, its cycle and its determinism.

use compactor_protocol::ContentItem;
use pretty_assertions::assert_eq;

use super::*;

/// The text bytes and whether there is an image.
fn shape(turn: &SoakTurn) -> (usize, bool) {
    let text = turn
        .input
        .iter()
        .map(|part| match part {
            ContentItem::InputText { text } => text.len(),
            _ => 0,
        })
        .sum();
    (text, turn.input.iter().any(|part| matches!(part, ContentItem::InputImage { .. })))
}

#[test]
fn sizes_cover_the_promised_ranges() {
    let soak = Soak::default();
    let turns: Vec<SoakTurn> = (0..SOAK_TURNS).map(|turn| soak.turn(turn)).collect();
    let outputs: Vec<usize> = turns.iter().filter_map(|turn| turn.tool_output_bytes).collect();
    let (min, max) = SOAK_TOOL_OUTPUT_BYTES;
    assert!(outputs.iter().all(|bytes| (min..=max).contains(bytes)));
    // Larger than the whole window (four bytes a token), and small ones too.
    let window_bytes = usize::try_from(SOAK_CONTEXT_WINDOW).unwrap() * 4;
    assert!(outputs.iter().filter(|bytes| **bytes > window_bytes).count() >= 30, "{outputs:?}");
    assert!(outputs.iter().any(|bytes| *bytes < 1_000));
    assert!(outputs.len() >= SOAK_TURNS * 2 / 3 && outputs.len() < SOAK_TURNS);
    let pastes = turns.iter().filter(|turn| shape(turn).0 > 4_000).count();
    assert!(pastes >= 20, "{pastes} long pastes");
    for (number, turn) in turns.iter().enumerate() {
        assert_eq!(shape(turn).1, number.is_multiple_of(10), "turn {number}");
        let text = turn.input[0].clone();
        let ContentItem::InputText { text } = text else { panic!("text first") };
        assert_eq!(text.contains(SOAK_TOOL_TRIGGER), turn.tool_output_bytes.is_some());
    }
}

#[test]
fn the_sizes_repeat_every_cycle_and_the_texts_do_not() {
    let soak = Soak::default();
    for turn in 0..SOAK_CYCLE {
        let (first, later) = (soak.turn(turn), soak.turn(turn + 4 * SOAK_CYCLE));
        assert_eq!(first.tool_output_bytes, later.tool_output_bytes);
        assert_ne!(first.input, later.input);
        let (first_text, first_image) = shape(&first);
        let (later_text, later_image) = shape(&later);
        assert_eq!(first_image, later_image);
        // Only the turn number in the request and character boundaries differ.
        assert!(first_text.abs_diff(later_text) <= 8, "turn {turn}: {first_text} {later_text}");
    }
}

#[test]
fn tool_outputs_have_the_size_asked_for() {
    let soak = Soak::default();
    for bytes in [100, 4_097, 2_000_000] {
        let output = soak.tool_output(17, bytes);
        assert!(output.len() <= bytes && output.len() + 4 > bytes, "{bytes}: {}", output.len());
        assert_eq!(output, soak.tool_output(17, bytes));
        assert_ne!(output, soak.tool_output(18, bytes));
    }
}
