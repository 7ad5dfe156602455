//! Time as a dependency, so tests control it.

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock, truncated to microseconds (what both databases store).
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        now - chrono::Duration::nanoseconds(i64::from(now.timestamp_subsec_nanos() % 1000))
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// Starts at `start`, truncated to microseconds like the wall clock.
    pub fn new(start: DateTime<Utc>) -> Self {
        let nanos = i64::from(start.timestamp_subsec_nanos() % 1000);
        Self(Mutex::new(start - chrono::Duration::nanoseconds(nanos)))
    }

    pub fn advance(&self, by: chrono::Duration) {
        *self.0.lock() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock()
    }
}
