//! An injectable wall clock, so tests can write byte-identical rollouts and traces.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where timestamps come from: the system clock, or a function a test provides.
#[derive(Clone, Default)]
pub struct Clock {
    source: Option<Arc<dyn Fn() -> SystemTime + Send + Sync>>,
}

impl Clock {
    /// The system clock (the default).
    pub fn system() -> Self {
        Self { source: None }
    }

    /// A clock that always reads `unix_ms` milliseconds after the epoch.
    pub fn fixed_unix_ms(unix_ms: u64) -> Self {
        let time = UNIX_EPOCH + Duration::from_millis(unix_ms);
        Self::from_fn(move || time)
    }

    /// A clock that reads `now`.
    pub fn from_fn(now: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        Self { source: Some(Arc::new(now)) }
    }

    /// The current time.
    pub fn now(&self) -> SystemTime {
        match &self.source {
            Some(now) => now(),
            None => SystemTime::now(),
        }
    }

    /// The current time in milliseconds since the Unix epoch (0 before the epoch).
    pub fn unix_ms(&self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source {
            Some(_) => f.write_str("Clock::Custom"),
            None => f.write_str("Clock::System"),
        }
    }
}
