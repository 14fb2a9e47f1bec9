//! How far a session's token estimates were from the usage servers reported (D125), read from
//! its `token_count` events or rollout lines alone.
//!
//! Every `token_count` event after a response carries the session's own estimate of the request
//! (`estimated_input_tokens`, made before sending it) next to the input tokens the server
//! reported for it, and the calibration learned so far (D126). The estimate a calibrated session
//! relied on for that request is the raw estimate corrected by the calibration it had before the
//! response came back.

use compactor_protocol::tokens::TokenCalibration;
use compactor_protocol::{EventMsg, TokenUsageInfo};

/// One request: what the session estimated and what the server reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestEstimate {
    /// The session's estimate with its counter, uncorrected.
    pub estimated: i64,
    /// That estimate corrected by the calibration the session had when it sent the request
    /// (the same as `estimated` without one).
    pub calibrated: i64,
    /// The input tokens the server reported.
    pub reported: i64,
}

impl RequestEstimate {
    /// The error of the raw estimate, in percent of the reported figure.
    pub fn error_percent(&self) -> f64 {
        percent(self.estimated, self.reported)
    }

    /// The error of the calibrated estimate, in percent of the reported figure.
    pub fn calibrated_error_percent(&self) -> f64 {
        percent(self.calibrated, self.reported)
    }
}

fn percent(estimate: i64, reported: i64) -> f64 {
    if reported <= 0 {
        return 0.0;
    }
    (estimate - reported).unsigned_abs() as f64 * 100.0 / reported as f64
}

/// The requests of a session, in order, from its `token_count` events (the accounting a
/// session repeats between two responses is read once).
///
/// # Examples
///
/// ```
/// use compactor_protocol::tokens::TokenCalibration;
/// use compactor_protocol::{EventMsg, TokenUsage, TokenUsageInfo};
/// use compactor_testkit::workload::request_estimates;
///
/// let event = |estimated: i64, reported: i64, calibration| {
///     let mut info = TokenUsageInfo::default();
///     info.append_last_usage(&TokenUsage { input_tokens: reported, ..TokenUsage::default() });
///     info.estimated_input_tokens = Some(estimated);
///     info.calibration = calibration;
///     EventMsg::TokenCount { info: Some(info), rate_limits: None }
/// };
/// let first = TokenCalibration::observe(None, 1_200, 1_000);
/// let second = TokenCalibration::observe(first, 2_400, 2_000);
/// let events = [event(1_000, 1_200, first), event(2_000, 2_400, second)];
/// let requests = request_estimates(&events);
/// assert_eq!(requests.len(), 2);
/// assert_eq!(requests[0].calibrated, 1_000); // nothing learned yet
/// assert_eq!(requests[1].calibrated, 2_400); // the first request taught 1.2
/// assert_eq!(requests[1].error_percent().round(), 17.0);
/// assert_eq!(requests[1].calibrated_error_percent(), 0.0);
/// ```
pub fn request_estimates<'a>(
    events: impl IntoIterator<Item = &'a EventMsg>,
) -> Vec<RequestEstimate> {
    let mut requests = Vec::new();
    let mut calibration: Option<TokenCalibration> = None;
    let mut last: Option<TokenUsageInfo> = None;
    for event in events {
        let EventMsg::TokenCount { info: Some(info), .. } = event else { continue };
        let Some(estimated) = info.estimated_input_tokens else { continue };
        let same_request = last.is_some_and(|last| {
            last.estimated_input_tokens == info.estimated_input_tokens
                && last.total_token_usage == info.total_token_usage
        });
        if same_request {
            continue;
        }
        let reported = info.last_token_usage.input_tokens;
        let calibrated = calibration.map_or(estimated, |calibration| {
            i64::try_from(calibration.apply(u64::try_from(estimated).unwrap_or(0)))
                .unwrap_or(i64::MAX)
        });
        requests.push(RequestEstimate { estimated, calibrated, reported });
        calibration = info.calibration;
        last = Some(*info);
    }
    requests
}

/// The mean and largest error of some estimates, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ErrorSummary {
    /// How many requests.
    pub requests: usize,
    /// The mean error.
    pub mean_percent: f64,
    /// The largest error.
    pub max_percent: f64,
}

impl ErrorSummary {
    /// The summary of `errors`, each in percent.
    pub fn of(errors: impl IntoIterator<Item = f64>) -> Self {
        let mut summary = Self::default();
        let mut sum = 0.0;
        for error in errors {
            summary.requests += 1;
            sum += error;
            summary.max_percent = summary.max_percent.max(error);
        }
        if summary.requests > 0 {
            summary.mean_percent = sum / summary.requests as f64;
        }
        summary
    }
}

#[cfg(test)]
mod tests;
