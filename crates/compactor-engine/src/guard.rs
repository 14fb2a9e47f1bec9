//! The loop guard's rule (see D104 in docs/decisions.md): when an auto compaction runs, and when a
//! request that still does not fit ends the turn.

/// How much a context must grow after a compaction, in percent of the window, before the
/// auto-compact limit makes it compact again.
pub(crate) const MIN_GROWTH_PERCENT: i64 = 10;

/// What the loop guard knows of a model's window, in estimated tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLimits {
    /// The auto-compact limit; `i64::MAX` when unknown.
    pub auto_compact_limit: i64,
    /// The usable window a request must fit; `None` when unknown.
    pub usable_window: Option<i64>,
    /// The model's whole context window, a tenth of which is the growth that
    /// allows another compaction; `None` when unknown (the limit is used instead).
    pub context_window: Option<i64>,
}

/// Why an auto compaction must run before the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactionNeed {
    /// The context reached the auto-compact limit, and grew by at least a tenth of
    /// the window since the last compaction (or there was none).
    Limit,
    /// The request would not fit the usable window: without a compaction it cannot be sent.
    Fit,
}

impl WindowLimits {
    /// Whether a request of `estimate` tokens needs a compaction first, given the estimate right
    /// after the session's last compaction (`None` when there was none).
    ///
    /// A request that does not fit the usable window always needs one. Otherwise the limit asks
    /// for one only when the context has grown enough since the last compaction: a compaction
    /// that could not get under the limit (retained messages that are themselves over it) is not
    /// repeated on every request.
    ///
    /// # Examples
    ///
    /// ```
    /// use compactor_engine::{CompactionNeed, WindowLimits};
    ///
    /// let limits = WindowLimits {
    ///     auto_compact_limit: 28_800,
    ///     usable_window: Some(30_400),
    ///     context_window: Some(32_000),
    /// };
    /// assert_eq!(limits.compaction_need(20_000, None), None);
    /// assert_eq!(limits.compaction_need(29_000, None), Some(CompactionNeed::Limit));
    /// // 29 000 right after the last compaction: no growth, no new compaction...
    /// assert_eq!(limits.compaction_need(30_000, Some(29_000)), None);
    /// // ...unless the request does not fit.
    /// assert_eq!(limits.compaction_need(31_000, Some(29_000)), Some(CompactionNeed::Fit));
    /// ```
    pub fn compaction_need(
        &self,
        estimate: i64,
        after_last_compaction: Option<i64>,
    ) -> Option<CompactionNeed> {
        if !self.fits(estimate) {
            return Some(CompactionNeed::Fit);
        }
        let grown = after_last_compaction
            .is_none_or(|after| estimate.saturating_sub(after) >= self.growth_step());
        (estimate >= self.auto_compact_limit && grown).then_some(CompactionNeed::Limit)
    }

    /// Whether a request of `estimate` tokens fits the usable window (always, when it is
    /// unknown).
    pub fn fits(&self, estimate: i64) -> bool {
        self.usable_window.is_none_or(|window| estimate <= window)
    }

    /// The growth after a compaction that allows another one.
    fn growth_step(&self) -> i64 {
        let base = self.context_window.unwrap_or(self.auto_compact_limit);
        base / 100 * MIN_GROWTH_PERCENT
    }
}

#[cfg(test)]
mod tests;
