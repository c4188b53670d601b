//! The one place the server reads the clock (core crates take time as an argument).

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time.
pub(crate) fn now() -> SystemTime {
    SystemTime::now()
}

/// The current time in Unix seconds.
pub(crate) fn unix_now() -> i64 {
    unix(now())
}

/// `time` in Unix seconds (0 before the epoch).
pub(crate) fn unix(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
