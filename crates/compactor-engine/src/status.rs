//! The analytics status of a finished compaction attempt (D41).

use compactor_protocol::{CompactionStatus, CompactorError};

/// `Ok` is [`CompactionStatus::Completed`]; a cancellation or an abort is
/// [`CompactionStatus::Interrupted`]; any other error is [`CompactionStatus::Failed`].
///
/// [`CompactionStatus::Skipped`] (nothing to compact) is decided by the caller, which never made
/// an attempt.
pub fn compaction_status_from_result<T>(result: &Result<T, CompactorError>) -> CompactionStatus {
    match result {
        Ok(_) => CompactionStatus::Completed,
        Err(err) if err.is_interruption() => CompactionStatus::Interrupted,
        Err(_) => CompactionStatus::Failed,
    }
}

#[cfg(test)]
mod tests;
