//! Resume and fork: the session state a rollout describes (D23, D24, D34).
//!
//! # Turn segments
//!
//! A rollout is cut into turn segments at every `turn_started` line (or `task_started`, the name
//! Codex writes, with its `turn_id` read tolerantly; D115); lines before the first one form a
//! leading segment. A segment is a *user turn* when it holds a `response_item` line that
//! is a user-turn boundary by [`compactor_protocol::is_user_turn_boundary`] with the replay's
//! markers: a `user` message none of whose text parts starts with a contextual marker such as
//! `<environment_context>`, in any ASCII case. The engine counts the turns of a live history by
//! the same function (D70). A `user_message` event alone does not make a user turn (D71).
//!
//! # Rollback
//!
//! `thread_rolled_back{num_turns: N}` undoes everything from the start of the N-th newest
//! surviving user turn up to the rollback line: the session returns to the state it had just
//! before that turn began. Segments that are not user turns (a standalone `/compact` turn, for
//! example) are undone with the user turns around them but are not counted. When fewer than N
//! user turns survive, everything from the first user turn on is undone and what came before it
//! stays. A rollback over a compaction therefore undoes that compaction and replays the
//! append-only history before it (D24).
//!
//! Live sessions apply a rollback the same way: append the `thread_rolled_back` line, then
//! reconstruct from the session's lines. That keeps the live history and a resumed one equal.
//!
//! # History
//!
//! The newest surviving `compacted` line with a `replacement_history` is the base; the surviving
//! lines after it are replayed: a `response_item` is appended (compaction triggers, which are
//! never persisted, are skipped), a legacy `compacted` line without `replacement_history` is
//! rebuilt by the caller's function from the history so far and the line's `message`.
//! Everything else (events, `turn_context`, lines of unknown type) leaves the history alone.
//! Items are appended as recorded: truncating tool outputs is the recorder's caller's job,
//! before it records them.
//!
//! # Reference context and previous turn settings
//!
//! Scanning surviving segments from newest to oldest (D23):
//! - inside a segment, the newest `turn_context` whose `turn_id` is compatible with the segment's
//!   (equal, or either one absent) sets the segment's baseline, unless a `compacted` line newer
//!   than it already cleared the baseline: looking backward, a compaction clears every older
//!   baseline, and a `turn_context` written after the compaction re-establishes it;
//! - the reference context comes from the newest user turn, or from a newer segment whose
//!   compaction cleared it; a cleared or never-set baseline gives `None`, and so does any legacy
//!   compaction in the replayed lines (the next turn then re-injects the full context);
//! - the previous turn settings (model, realtime) come from the newest user turn that has a
//!   `turn_context`.
//!
//! # Damaged lines
//!
//! [`Replay::reconstruct_contents`] also takes what reading skipped (see D50 in
//! docs/decisions.md): a damaged line is left out as if it had never been written, so a damaged
//! `compacted` line falls back to the compaction before it and replays the lines after that one,
//! which are all still in the append-only file. Its result counts the skipped lines and carries
//! one warning per skipped line, the warning of a lost newest compaction saying so; a damaged
//! `compacted` line still counts towards the window generation, which never goes back.
//!
//! # Pins
//!
//! The session's pins are those of the newest surviving pins record: a `pins` line, or the
//! `pins` of a `compacted` line. A rollback that undoes the line that added a pin therefore
//! removes the pin; a fork copies the surviving records. The history's pin slot is the pins of
//! the `compacted` line the history starts from, when the history starts with them. Pin ids are
//! never reused: the next one is numbered after the highest in the file, rolled back or not
//! (see D141 in docs/decisions.md).
//!
//! # Token usage and window generation
//!
//! Token info is the `info` of the last surviving `token_count` event that has one (a rolled-back
//! turn's usage does not count). The window generation is the number of `compacted` lines,
//! rolled back or not, since the generation of a live session never goes back; lines that a fork
//! copied from its parent are marked and not counted, so a fork starts at 0.

use compactor_protocol::{
    CompactionReceipt, ContextualMarkers, EventMsg, Pin, ResponseItem, RolloutItem, RolloutLine,
    SessionMeta, TokenUsageInfo, TurnContextItem, is_user_turn_boundary, pin_slot_items,
};
use serde_json::Value;

use crate::reader::{CorruptLine, ReadReport, RolloutContents};

/// Damaged lines warned about one by one before the rest are only counted.
const DAMAGE_WARNINGS: usize = 16;

/// The `compacted` payload field that marks a line copied into a fork.
pub(crate) const FORKED_MARKER: &str = "forked";

/// Rebuilds the history of a legacy `compacted` line (no `replacement_history`) from the history
/// before it, the line's `message` and the replay's contextual markers; core passes the engine's
/// local-compaction rebuild (D1), which keeps the real user messages by those markers (D72).
pub type LegacyRebuild<'a> =
    &'a dyn Fn(&[ResponseItem], &str, &ContextualMarkers) -> Vec<ResponseItem>;

/// The session state a rollout describes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReconstructedSession {
    /// The history, item for item as the live session had it.
    pub history: Vec<ResponseItem>,
    /// The settings of the newest user turn.
    pub previous_turn_settings: Option<PreviousTurnSettings>,
    /// The settings baseline for the next turn's context diffs; `None` means the next turn
    /// re-injects the full initial context.
    pub reference_context_item: Option<TurnContextItem>,
    /// The token accounting to seed the session with.
    pub token_info: Option<TokenUsageInfo>,
    /// The number of compactions this thread installed.
    pub window_generation: u64,
    /// The first `session_meta` line.
    pub session_meta: Option<SessionMeta>,
    /// The session's pins, from the newest surviving pins record.
    pub pins: Vec<Pin>,
    /// How many leading items of `history` are the pin slot of the compaction it starts from.
    pub pin_slot: usize,
    /// The number of the next pin id: one more than the highest the rollout ever assigned.
    pub next_pin_number: u64,
    /// Legacy `compacted` lines rebuilt while replaying.
    pub legacy_compactions_replayed: usize,
    /// Complete lines skipped because they were damaged ([`Replay::reconstruct_contents`] only).
    pub skipped_lines: usize,
    /// What the harness should be told about the rollout: skipped lines (with line number and
    /// byte offset), a lost compaction, an ignored torn last line ([`Replay::reconstruct_contents`]
    /// only).
    pub warnings: Vec<String>,
}

/// One `compacted` line of a rollout, as [`Replay::compactions`] lists it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionRecord<'l> {
    /// The line's index among the rollout's readable lines.
    pub line: usize,
    /// When it was written.
    pub timestamp: &'l str,
    /// Whether a rollback undid it.
    pub rolled_back: bool,
    /// Whether a fork copied it from the thread it forked from.
    pub forked: bool,
    /// How many items it installed (`None` for a legacy line without `replacement_history`).
    pub history_items: Option<usize>,
    /// The session's pins when it was installed.
    pub pins: &'l [Pin],
    /// Its receipt, when it has one.
    pub receipt: Option<&'l CompactionReceipt>,
}

/// The settings of a previous turn a resumed session compares the next one with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreviousTurnSettings {
    /// The model slug.
    pub model: String,
    /// Whether a realtime conversation was active.
    pub realtime_active: Option<bool>,
}

/// Reconstruction, rollback and fork with the contextual markers of the session whose rollout it
/// replays: they decide which segments are user turns, and the legacy rebuild gets them too.
#[derive(Clone, Copy)]
pub struct Replay<'a> {
    /// Rebuilds legacy compactions.
    pub legacy_rebuild: LegacyRebuild<'a>,
    /// The session's markers of contextual user messages.
    pub markers: &'a ContextualMarkers,
}

/// Reconstructs the session state of `lines` (D23), with the default contextual markers: a
/// session with markers of its own replays with [`Replay`].
///
/// # Examples
///
/// ```
/// use compactor_protocol::{CompactedItem, ResponseItem, RolloutItem, RolloutLine};
/// use compactor_rollout_trace::reconstruct_history_from_rollout;
///
/// let line = |item| RolloutLine::new("2026-05-15T10:00:00.000Z", item);
/// let lines = vec![
///     line(RolloutItem::ResponseItem(ResponseItem::user_text("old"))),
///     line(RolloutItem::Compacted(CompactedItem::new("", vec![ResponseItem::user_text("base")]))),
///     line(RolloutItem::ResponseItem(ResponseItem::assistant_text("new"))),
/// ];
/// let no_legacy = |history: &[ResponseItem], _: &str, _: &_| history.to_vec();
/// let session = reconstruct_history_from_rollout(&lines, &no_legacy);
/// assert_eq!(
///     session.history,
///     vec![ResponseItem::user_text("base"), ResponseItem::assistant_text("new")]
/// );
/// assert_eq!(session.window_generation, 1);
/// ```
pub fn reconstruct_history_from_rollout(
    lines: &[RolloutLine],
    legacy_rebuild: LegacyRebuild<'_>,
) -> ReconstructedSession {
    Replay::new(legacy_rebuild, &ContextualMarkers::default()).reconstruct(lines)
}

impl<'a> Replay<'a> {
    /// A replay of a session with these contextual markers.
    pub fn new(legacy_rebuild: LegacyRebuild<'a>, markers: &'a ContextualMarkers) -> Self {
        Self { legacy_rebuild, markers }
    }

    /// Reconstructs the session state of `lines` (see the module docs for the rules).
    pub fn reconstruct(&self, lines: &[RolloutLine]) -> ReconstructedSession {
        let survival = survive(lines, self.markers, 0);
        let (history, legacy_compactions_replayed) = self.replay_history(lines, &survival.alive);
        let pin_slot = pin_slot(lines, history_base(lines, &survival.alive), &history);
        let session = finish(lines, &survival, history, legacy_compactions_replayed);
        ReconstructedSession { pin_slot, ..session }
    }

    /// [`Replay::reconstruct`] taking the lines by value: the history's items are moved out of
    /// them instead of copied, so resuming a large rollout holds its items once, not twice.
    pub fn reconstruct_owned(&self, mut lines: Vec<RolloutLine>) -> ReconstructedSession {
        let survival = survive(&lines, self.markers, 0);
        let alive = survival.alive.clone();
        // Everything but the history first, while the lines are whole.
        let session = finish(&lines, &survival, Vec::new(), 0);
        drop(survival);
        let base = history_base(&lines, &alive);
        let (history, legacy_compactions_replayed) = self.replay_history_owned(&mut lines, &alive);
        let reference_context_item =
            session.reference_context_item.filter(|_| legacy_compactions_replayed == 0);
        let pin_slot = pin_slot(&lines, base, &history);
        ReconstructedSession {
            history,
            reference_context_item,
            legacy_compactions_replayed,
            pin_slot,
            ..session
        }
    }

    /// [`Replay::reconstruct_owned`] of what [`read_rollout`](crate::read_rollout) returned,
    /// counting and describing what reading skipped (see the module docs on damaged lines).
    ///
    /// # Examples
    ///
    /// ```
    /// use compactor_protocol::{ContextualMarkers, ResponseItem};
    /// use compactor_rollout_trace::{Replay, parse_rollout};
    ///
    /// let file = concat!(
    ///     r#"{"timestamp":"t","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"a"}]}}"#, "\n",
    ///     r#"{"timestamp":"t","type":"response_item","payload":{"type":"mess"#, "\n",
    ///     r#"{"timestamp":"t","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"b"}]}}"#, "\n",
    /// );
    /// let no_legacy = |history: &[ResponseItem], _: &str, _: &_| history.to_vec();
    /// let markers = ContextualMarkers::default();
    /// let session =
    ///     Replay::new(&no_legacy, &markers).reconstruct_contents(parse_rollout(file.as_bytes()));
    /// assert_eq!(session.history, vec![ResponseItem::user_text("a"), ResponseItem::user_text("b")]);
    /// assert_eq!(session.skipped_lines, 1);
    /// assert!(session.warnings[0].starts_with("rollout line 2 (byte 129) is damaged and was skipped"));
    /// ```
    pub fn reconstruct_contents(&self, contents: RolloutContents) -> ReconstructedSession {
        let RolloutContents { lines, report } = contents;
        let newest_compaction =
            lines.iter().rposition(|line| matches!(line.item, RolloutItem::Compacted(_)));
        let mut session = self.reconstruct_owned(lines);
        let damaged_compactions =
            report.corrupt_lines.iter().filter(|line| is_compacted(line)).count();
        session.window_generation += damaged_compactions as u64;
        session.skipped_lines = report.corrupt_lines.len();
        session.warnings = damage_warnings(&report, newest_compaction);
        session
    }

    /// The items to write into a new rollout that forks `lines` after dropping its last
    /// `drop_last_user_turns` user turns (0 forks at the end).
    ///
    /// The fork holds the surviving lines of `lines` (rollbacks applied, rollback lines and
    /// `session_meta` lines left out), so reconstructing it gives the same history, reference
    /// context, previous turn settings and token info, and a rollback in the fork can go back
    /// into the inherited turns. Copied `compacted` lines are marked `"forked": true`, so the
    /// fork's window generation starts at 0 (D23). The caller writes the fork's own
    /// `session_meta` (new thread id, `forked_from_id`) first, then these items.
    pub fn fork(&self, lines: &[RolloutLine], drop_last_user_turns: u32) -> Vec<RolloutItem> {
        fork_surviving(lines, &survive(lines, self.markers, drop_last_user_turns))
    }

    /// Every `compacted` line of `lines`, oldest first, with whether a rollback undid it.
    pub fn compactions<'l>(&self, lines: &'l [RolloutLine]) -> Vec<CompactionRecord<'l>> {
        let survival = survive(lines, self.markers, 0);
        lines
            .iter()
            .enumerate()
            .filter_map(|(index, line)| match &line.item {
                RolloutItem::Compacted(compacted) => Some(CompactionRecord {
                    line: index,
                    timestamp: &line.timestamp,
                    rolled_back: !survival.alive[index],
                    forked: compacted.extra.get(FORKED_MARKER) == Some(&Value::Bool(true)),
                    history_items: compacted.replacement_history.as_ref().map(Vec::len),
                    pins: compacted.pins.as_deref().unwrap_or_default(),
                    receipt: compacted.receipt.as_deref(),
                }),
                _ => None,
            })
            .collect()
    }

    /// [`Replay::replay_history`] moving the items out of `lines`, which it leaves hollow.
    fn replay_history_owned(
        &self,
        lines: &mut [RolloutLine],
        alive: &[bool],
    ) -> (Vec<ResponseItem>, usize) {
        let replay_from = history_base(lines, alive);
        let mut history = Vec::with_capacity(lines.len() - replay_from);
        let mut legacy = 0;
        for (line, _) in
            lines[replay_from..].iter_mut().zip(&alive[replay_from..]).filter(|(_, a)| **a)
        {
            match &mut line.item {
                RolloutItem::ResponseItem(item) => {
                    if !item.is_compaction_trigger() {
                        history.push(std::mem::replace(item, ResponseItem::CompactionTrigger));
                    }
                }
                RolloutItem::Compacted(compacted) => match compacted.replacement_history.take() {
                    Some(replacement) => history = replacement,
                    None => {
                        history = (self.legacy_rebuild)(&history, &compacted.message, self.markers);
                        legacy += 1;
                    }
                },
                RolloutItem::SessionMeta(_)
                | RolloutItem::TurnContext(_)
                | RolloutItem::EventMsg(_)
                | RolloutItem::Pins(_)
                | RolloutItem::Unknown { .. } => {}
            }
        }
        (history, legacy)
    }

    fn replay_history(&self, lines: &[RolloutLine], alive: &[bool]) -> (Vec<ResponseItem>, usize) {
        // The base line itself is replayed first: its replacement starts the history.
        let replay_from = history_base(lines, alive);
        let mut history = Vec::new();
        let mut legacy = 0;
        for (line, _) in lines[replay_from..].iter().zip(&alive[replay_from..]).filter(|(_, a)| **a)
        {
            match &line.item {
                RolloutItem::ResponseItem(item) => {
                    if !item.is_compaction_trigger() {
                        history.push(item.clone());
                    }
                }
                RolloutItem::Compacted(compacted) => match &compacted.replacement_history {
                    Some(replacement) => history.clone_from(replacement),
                    None => {
                        history = (self.legacy_rebuild)(&history, &compacted.message, self.markers);
                        legacy += 1;
                    }
                },
                RolloutItem::SessionMeta(_)
                | RolloutItem::TurnContext(_)
                | RolloutItem::EventMsg(_)
                | RolloutItem::Pins(_)
                | RolloutItem::Unknown { .. } => {}
            }
        }
        (history, legacy)
    }
}

/// The session state of `lines` around an already replayed `history`.
fn finish(
    lines: &[RolloutLine],
    survival: &Survival<'_>,
    history: Vec<ResponseItem>,
    legacy_compactions_replayed: usize,
) -> ReconstructedSession {
    let (previous_turn_settings, baseline) = scan_metadata(lines, survival);
    let reference_context_item = match baseline {
        Baseline::Latest(ctx) if legacy_compactions_replayed == 0 => Some(ctx.clone()),
        Baseline::Latest(_) | Baseline::Cleared | Baseline::NeverSet => None,
    };
    let token_info =
        lines.iter().zip(&survival.alive).rev().find_map(|(line, alive)| match &line.item {
            RolloutItem::EventMsg(EventMsg::TokenCount { info: Some(info), .. }) if *alive => {
                Some(*info)
            }
            _ => None,
        });
    let window_generation = lines
        .iter()
        .filter(|line| match &line.item {
            RolloutItem::Compacted(compacted) => {
                compacted.extra.get(FORKED_MARKER) != Some(&Value::Bool(true))
            }
            _ => false,
        })
        .count() as u64;
    let session_meta = lines.iter().find_map(|line| match &line.item {
        RolloutItem::SessionMeta(meta) => Some(meta.clone()),
        _ => None,
    });
    let pins = lines
        .iter()
        .zip(&survival.alive)
        .rev()
        .filter(|(_, alive)| **alive)
        .find_map(|(line, _)| pins_record(&line.item))
        .map(<[Pin]>::to_vec)
        .unwrap_or_default();
    let next_pin_number = lines
        .iter()
        .filter_map(|line| pins_record(&line.item))
        .flatten()
        .map(|pin| pin.id.number())
        .max()
        .unwrap_or(0)
        .saturating_add(1);
    ReconstructedSession {
        history,
        previous_turn_settings,
        reference_context_item,
        token_info,
        window_generation,
        session_meta,
        pins,
        pin_slot: 0,
        next_pin_number,
        legacy_compactions_replayed,
        skipped_lines: 0,
        warnings: Vec::new(),
    }
}

/// The pins a line records: a `pins` line's, or a `compacted` line's when it has them.
fn pins_record(item: &RolloutItem) -> Option<&[Pin]> {
    match item {
        RolloutItem::Pins(pins) => Some(&pins.pins),
        RolloutItem::Compacted(compacted) => compacted.pins.as_deref(),
        RolloutItem::SessionMeta(_)
        | RolloutItem::ResponseItem(_)
        | RolloutItem::TurnContext(_)
        | RolloutItem::EventMsg(_)
        | RolloutItem::Unknown { .. } => None,
    }
}

/// The length of the pin slot `history` starts with: the pins recorded with the `compacted` line
/// at `base` the history was replayed from, when the history starts with their items.
fn pin_slot(lines: &[RolloutLine], base: usize, history: &[ResponseItem]) -> usize {
    let Some(RolloutItem::Compacted(compacted)) = lines.get(base).map(|line| &line.item) else {
        return 0;
    };
    let Some(pins) = compacted.pins.as_deref() else { return 0 };
    let slot = pin_slot_items(pins);
    if history.starts_with(&slot) { slot.len() } else { 0 }
}

fn is_compacted(line: &CorruptLine) -> bool {
    line.kind.as_deref() == Some("compacted")
}

/// The warnings of a read report, given the index of the newest readable `compacted` line.
fn damage_warnings(report: &ReadReport, newest_compaction: Option<usize>) -> Vec<String> {
    let newer = |line: &CorruptLine| newest_compaction.is_none_or(|index| line.position > index);
    // The newest damaged compaction that is newer than every readable one was the last one
    // installed: the session resumes from the one before.
    let lost = report.corrupt_lines.iter().rposition(|line| is_compacted(line) && newer(line));
    let fallback = match newest_compaction {
        Some(_) => "the session resumes from the compaction before it",
        None => "the session resumes from the history before it",
    };
    let mut warnings = Vec::new();
    let mut skipped_silently = 0usize;
    for (index, line) in report.corrupt_lines.iter().enumerate() {
        if Some(index) == lost {
            warnings.push(format!(
                "{}; it held the newest compaction, which was lost: {fallback}",
                line.warning()
            ));
        } else if is_compacted(line) {
            let state = if newer(line) { "a lost compaction" } else { "an older compaction" };
            warnings.push(format!("{}; it held {state}", line.warning()));
        } else if index < DAMAGE_WARNINGS {
            warnings.push(line.warning());
        } else {
            skipped_silently += 1;
        }
    }
    if skipped_silently > 0 {
        warnings.push(format!("{skipped_silently} more damaged rollout lines were skipped"));
    }
    if let Some(tail) = &report.torn_tail {
        warnings.push(tail.warning());
    }
    warnings
}

/// The index of the first line to replay: the newest surviving `compacted` line with a
/// `replacement_history` (whose replacement starts the history), or 0.
fn history_base(lines: &[RolloutLine], alive: &[bool]) -> usize {
    lines
        .iter()
        .zip(alive)
        .rposition(|(line, alive)| {
            *alive
                && matches!(&line.item, RolloutItem::Compacted(c) if c.replacement_history.is_some())
        })
        .unwrap_or(0)
}

/// A turn segment: from a `turn_started` line (or the file's start) to the next one.
#[derive(Debug)]
struct Segment<'l> {
    start: usize,
    turn_id: Option<&'l str>,
    user_turn: bool,
}

/// Which lines survive the rollbacks, and the surviving segments in file order.
#[derive(Debug)]
struct Survival<'l> {
    alive: Vec<bool>,
    segments: Vec<Segment<'l>>,
}

fn survive<'l>(
    lines: &'l [RolloutLine],
    markers: &ContextualMarkers,
    trailing_rollback: u32,
) -> Survival<'l> {
    let mut survival = Survival {
        alive: vec![true; lines.len()],
        segments: vec![Segment { start: 0, turn_id: None, user_turn: false }],
    };
    for (index, line) in lines.iter().enumerate() {
        match &line.item {
            RolloutItem::EventMsg(EventMsg::TurnStarted { turn_id, .. }) => {
                survival.segments.push(Segment {
                    start: index,
                    turn_id: Some(turn_id),
                    user_turn: false,
                });
            }
            RolloutItem::EventMsg(EventMsg::Unknown(event))
                if event.get("type").and_then(Value::as_str) == Some("task_started") =>
            {
                let turn_id = event.get("turn_id").and_then(Value::as_str);
                survival.segments.push(Segment { start: index, turn_id, user_turn: false });
            }
            RolloutItem::EventMsg(EventMsg::ThreadRolledBack { num_turns }) => {
                survival.alive[index] = false;
                survival.roll_back(*num_turns, index);
            }
            RolloutItem::ResponseItem(item) if is_user_turn_boundary(item, markers) => {
                survival.mark_user_turn();
            }
            _ => {}
        }
    }
    survival.roll_back(trailing_rollback, lines.len());
    survival
}

impl Survival<'_> {
    fn mark_user_turn(&mut self) {
        if let Some(segment) = self.segments.last_mut() {
            segment.user_turn = true;
        }
    }

    /// Undoes the newest `num_turns` user turns before line `at`.
    fn roll_back(&mut self, num_turns: u32, at: usize) {
        if num_turns == 0 {
            return;
        }
        let mut remaining = num_turns;
        let mut cut = None;
        for (position, segment) in self.segments.iter().enumerate().rev() {
            if segment.user_turn {
                cut = Some(position);
                remaining -= 1;
                if remaining == 0 {
                    break;
                }
            }
        }
        let Some(position) = cut else { return };
        let from = self.segments[position].start;
        self.alive[from..at].fill(false);
        self.segments.truncate(position);
        // Lines after the rollback and before the next `turn_started` join the newest surviving
        // segment, as lines after a `turn_complete` do; a fork, which leaves the undone lines
        // out, then cuts the same segments.
        if self.segments.is_empty() {
            self.segments.push(Segment { start: at, turn_id: None, user_turn: false });
        }
    }

    /// The line range of the segment at `position`.
    fn range(&self, position: usize, len: usize) -> std::ops::Range<usize> {
        let start = self.segments[position].start;
        let end = self.segments.get(position + 1).map_or(len, |next| next.start);
        start..end
    }
}

/// The baseline state of a segment, or of the scan so far.
#[derive(Debug, Clone, Copy)]
enum Baseline<'l> {
    NeverSet,
    Cleared,
    Latest(&'l TurnContextItem),
}

fn scan_metadata<'l>(
    lines: &'l [RolloutLine],
    survival: &Survival<'l>,
) -> (Option<PreviousTurnSettings>, Baseline<'l>) {
    let mut previous: Option<PreviousTurnSettings> = None;
    let mut reference = Baseline::NeverSet;
    for position in (0..survival.segments.len()).rev() {
        let segment = &survival.segments[position];
        let mut baseline = Baseline::NeverSet;
        let mut settings: Option<&TurnContextItem> = None;
        for index in survival.range(position, lines.len()).rev() {
            if !survival.alive[index] {
                continue;
            }
            match &lines[index].item {
                RolloutItem::Compacted(_) => {
                    if matches!(baseline, Baseline::NeverSet) {
                        baseline = Baseline::Cleared;
                    }
                }
                RolloutItem::TurnContext(ctx) if turn_ids_compatible(segment.turn_id, ctx) => {
                    settings.get_or_insert(ctx);
                    if matches!(baseline, Baseline::NeverSet) {
                        baseline = Baseline::Latest(ctx);
                    }
                }
                _ => {}
            }
        }
        if previous.is_none() && segment.user_turn {
            previous = settings.map(|ctx| PreviousTurnSettings {
                model: ctx.model.clone(),
                realtime_active: ctx.realtime_active,
            });
        }
        if matches!(reference, Baseline::NeverSet)
            && (segment.user_turn || matches!(baseline, Baseline::Cleared))
        {
            reference = baseline;
        }
        if previous.is_some() && !matches!(reference, Baseline::NeverSet) {
            break;
        }
    }
    (previous, reference)
}

fn turn_ids_compatible(segment_turn_id: Option<&str>, ctx: &TurnContextItem) -> bool {
    match (segment_turn_id, ctx.turn_id.as_deref()) {
        (Some(segment), Some(ctx)) => segment == ctx,
        (None, _) | (_, None) => true,
    }
}

fn fork_surviving(lines: &[RolloutLine], survival: &Survival<'_>) -> Vec<RolloutItem> {
    lines
        .iter()
        .zip(&survival.alive)
        .filter(|(_, alive)| **alive)
        .filter_map(|(line, _)| match &line.item {
            RolloutItem::SessionMeta(_) => None,
            RolloutItem::Compacted(compacted) => {
                let mut copied = compacted.clone();
                copied.extra.insert(FORKED_MARKER.to_owned(), Value::Bool(true));
                Some(RolloutItem::Compacted(copied))
            }
            item @ (RolloutItem::ResponseItem(_)
            | RolloutItem::TurnContext(_)
            | RolloutItem::EventMsg(_)
            | RolloutItem::Pins(_)
            | RolloutItem::Unknown { .. }) => Some(item.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests;
