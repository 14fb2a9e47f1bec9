//! How far a session's token estimates were from the usage servers reported (D125), read from
//! its `token_count` events or rollout lines alone.
//!
//! Every `token_count` event after a response carries the session's own estimate of the request
//! (`estimated_input_tokens`, made just before sending it, calibrated when the session
//! calibrates) next to the input tokens the server reported for it (D126).

use compactor_protocol::{EventMsg, TokenUsageInfo};

/// One request: what the session estimated and what the server reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestEstimate {
    /// The session's estimate, made before sending the request.
    pub estimated: i64,
    /// The input tokens the server reported.
    pub reported: i64,
}

impl RequestEstimate {
    /// The error of the estimate, in percent of the reported figure.
    pub fn error_percent(&self) -> f64 {
        if self.reported <= 0 {
            return 0.0;
        }
        (self.estimated - self.reported).unsigned_abs() as f64 * 100.0 / self.reported as f64
    }
}

/// The requests of a session, in order, from its `token_count` events (the accounting a
/// session repeats between two responses is read once).
///
/// # Examples
///
/// ```
/// use compactor_protocol::{EventMsg, TokenUsage, TokenUsageInfo};
/// use compactor_testkit::workload::request_estimates;
///
/// let mut info = TokenUsageInfo::default();
/// info.append_last_usage(&TokenUsage { input_tokens: 1_250, ..TokenUsage::default() });
/// info.estimated_input_tokens = Some(1_000);
/// let event = EventMsg::TokenCount { info: Some(info), rate_limits: None };
/// let requests = request_estimates([&event, &event]);
/// assert_eq!(requests.len(), 1);
/// assert_eq!(requests[0].error_percent(), 20.0);
/// ```
pub fn request_estimates<'a>(
    events: impl IntoIterator<Item = &'a EventMsg>,
) -> Vec<RequestEstimate> {
    let mut requests = Vec::new();
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
        requests.push(RequestEstimate { estimated, reported: info.last_token_usage.input_tokens });
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
    /// The summary of the errors of `requests`.
    pub fn of(requests: &[RequestEstimate]) -> Self {
        let mut summary = Self { requests: requests.len(), ..Self::default() };
        let mut sum = 0.0;
        for request in requests {
            let error = request.error_percent();
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
