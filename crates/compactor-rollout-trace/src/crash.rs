//! Crash points: named places in the rollout recorder and in core's install path where a test
//! can make the process abort, to check what a crash at that instant leaves behind.
//!
//! The points exist only with the `crash-points` cargo feature, which only tests enable: without
//! it, [`hit`] and [`reached`] do nothing and compile away. With it, a point is armed by the
//! environment variable [`CRASH_AT_ENV`], `<point>:<n>` (e.g. `after_memory_swap:2`): the n-th
//! pass through that point aborts the process (`SIGABRT`), which, like `kill -9`, runs no
//! destructor and keeps only what the kernel already has. That tests crash consistency, not power
//! loss: the page cache survives a process crash (see D51 in docs/decisions.md).

/// The environment variable that arms a crash point: `<point>:<n>`, `n` counting from 1.
pub const CRASH_AT_ENV: &str = "COMPACTOR_CRASH_AT";

/// A place where a test may crash the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrashPoint {
    /// In core, when a compaction's response has been turned into a new history, before it is
    /// installed.
    AfterCompactionResponse,
    /// In the recorder, when a batch holding a `compacted` line is written, before its sync.
    AfterCompactedWrite,
    /// In the recorder, when that batch is synced, before the caller hears of it.
    AfterCompactedSync,
    /// In core, when the session's history has been replaced by the compacted one.
    AfterMemorySwap,
    /// In core, when a compaction's `response.processed` has been sent.
    AfterResponseProcessed,
    /// In the recorder, in the middle of the first line of a batch: half of it is written, then
    /// the process aborts, leaving a torn last line.
    MidLine,
}

impl CrashPoint {
    /// Every point, in the order a compaction passes them (the torn line last).
    pub const ALL: [CrashPoint; 6] = [
        CrashPoint::AfterCompactionResponse,
        CrashPoint::AfterCompactedWrite,
        CrashPoint::AfterCompactedSync,
        CrashPoint::AfterMemorySwap,
        CrashPoint::AfterResponseProcessed,
        CrashPoint::MidLine,
    ];

    /// The point's name in [`CRASH_AT_ENV`].
    pub fn name(self) -> &'static str {
        match self {
            CrashPoint::AfterCompactionResponse => "after_compaction_response",
            CrashPoint::AfterCompactedWrite => "after_compacted_write",
            CrashPoint::AfterCompactedSync => "after_compacted_sync",
            CrashPoint::AfterMemorySwap => "after_memory_swap",
            CrashPoint::AfterResponseProcessed => "after_response_processed",
            CrashPoint::MidLine => "mid_line",
        }
    }

    /// The point named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|point| point.name() == name)
    }

    #[cfg(feature = "crash-points")]
    fn index(self) -> usize {
        match self {
            CrashPoint::AfterCompactionResponse => 0,
            CrashPoint::AfterCompactedWrite => 1,
            CrashPoint::AfterCompactedSync => 2,
            CrashPoint::AfterMemorySwap => 3,
            CrashPoint::AfterResponseProcessed => 4,
            CrashPoint::MidLine => 5,
        }
    }
}

/// Passes `point`: aborts the process when this pass is the armed one.
#[inline]
pub fn hit(point: CrashPoint) {
    if reached(point) {
        abort(point);
    }
}

/// Passes `point` and says whether this pass is the armed one; the caller then does the partial
/// work the point stands for and calls [`abort`].
#[inline]
pub fn reached(point: CrashPoint) -> bool {
    #[cfg(feature = "crash-points")]
    {
        armed::reached(point)
    }
    #[cfg(not(feature = "crash-points"))]
    {
        let _ = point;
        false
    }
}

/// Aborts the process at `point`, saying so on stderr first.
pub fn abort(point: CrashPoint) -> ! {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "crash point {} reached: aborting", point.name());
    std::process::abort()
}

/// How many times this process passed `point` so far.
#[cfg(feature = "crash-points")]
pub fn hits(point: CrashPoint) -> u64 {
    armed::hits(point)
}

/// Parses a [`CRASH_AT_ENV`] value: `<point>:<n>` with `n >= 1`.
pub fn parse_spec(spec: &str) -> Option<(CrashPoint, u64)> {
    let (name, count) = spec.trim().split_once(':')?;
    let point = CrashPoint::from_name(name)?;
    let count: u64 = count.parse().ok()?;
    (count >= 1).then_some((point, count))
}

#[cfg(feature = "crash-points")]
mod armed {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::{CRASH_AT_ENV, CrashPoint, parse_spec};

    static HITS: [AtomicU64; CrashPoint::ALL.len()] = [const { AtomicU64::new(0) }; 6];
    static ARMED: OnceLock<Option<(CrashPoint, u64)>> = OnceLock::new();

    fn armed() -> Option<(CrashPoint, u64)> {
        *ARMED.get_or_init(|| {
            let spec = std::env::var(CRASH_AT_ENV).ok()?;
            let parsed = parse_spec(&spec);
            if parsed.is_none() {
                tracing::error!(spec, "ignoring an invalid {CRASH_AT_ENV}");
            }
            parsed
        })
    }

    pub(super) fn reached(point: CrashPoint) -> bool {
        let count = HITS[point.index()].fetch_add(1, Ordering::SeqCst) + 1;
        armed() == Some((point, count))
    }

    pub(super) fn hits(point: CrashPoint) -> u64 {
        HITS[point.index()].load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests;
