//! A cheap wall clock for the in-memory hot path.
//!
//! `SystemTime::now()` costs tens of nanoseconds (a vDSO call, then `duration_since`),
//! as much as a whole GCRA check. This clock reads the CPU's time-stamp counter through
//! `quanta` (the clock `governor` uses; where the counter is not invariant, `quanta`
//! falls back to the monotonic clock) and adds an offset to the system clock, re-read
//! once a second so that the two never drift apart by more than a second's worth of
//! counter drift (microseconds). The offset is one atomic word, so a reader never sees
//! half of an update.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::decision::micros;

/// How often the offset to the system clock is re-read, in microseconds.
const REANCHOR_US: u64 = 1_000_000;

pub(crate) struct WallClock {
    counter: quanta::Clock,
    /// The counter's reading when this clock was made: elapsed time counts from here.
    base: u64,
    /// System time minus elapsed time, in microseconds (wrapping).
    offset_us: AtomicU64,
    /// Elapsed microseconds at which the offset is next re-read.
    next_anchor_us: AtomicU64,
}

impl WallClock {
    /// The process's clock (the counter's calibration runs once, on first use).
    pub(crate) fn global() -> &'static WallClock {
        static CLOCK: OnceLock<WallClock> = OnceLock::new();
        CLOCK.get_or_init(WallClock::new)
    }

    fn new() -> Self {
        let counter = quanta::Clock::new();
        let base = counter.raw();
        let clock = Self {
            counter,
            base,
            offset_us: AtomicU64::new(0),
            next_anchor_us: AtomicU64::new(0),
        };
        clock.reanchor(0);
        clock
    }

    /// Microseconds since the Unix epoch, within microseconds of the system clock.
    #[inline]
    pub(crate) fn now_us(&self) -> u64 {
        let elapsed = self.counter.delta_as_nanos(self.base, self.counter.raw()) / 1_000;
        if elapsed >= self.next_anchor_us.load(Ordering::Relaxed) {
            return self.reanchor(elapsed);
        }
        elapsed.wrapping_add(self.offset_us.load(Ordering::Relaxed))
    }

    /// Re-reads the system clock. Racing threads each store an offset read within a
    /// few microseconds of the other's: either is right.
    #[cold]
    #[inline(never)]
    fn reanchor(&self, elapsed: u64) -> u64 {
        let wall = micros(SystemTime::now());
        self.offset_us
            .store(wall.wrapping_sub(elapsed), Ordering::Relaxed);
        self.next_anchor_us
            .store(elapsed.saturating_add(REANCHOR_US), Ordering::Relaxed);
        wall
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_system_clock() {
        let clock = WallClock::global();
        for _ in 0..1_000 {
            let before = micros(SystemTime::now());
            let ours = clock.now_us();
            let after = micros(SystemTime::now());
            // Within a millisecond either side: the counter and the system clock agree
            // to microseconds between re-reads; the margin absorbs a preempted thread.
            assert!(
                ours + 1_000 >= before && ours <= after + 1_000,
                "{before} <= {ours} <= {after}"
            );
        }
    }

    #[test]
    fn advances() {
        let clock = WallClock::global();
        let start = clock.now_us();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let elapsed = clock.now_us() - start;
        assert!((15_000..2_000_000).contains(&elapsed), "{elapsed}");
    }
}
