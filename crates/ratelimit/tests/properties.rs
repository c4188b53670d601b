//! Property tests: every algorithm against a naive reference model, and the documented
//! bound on what any interval may admit.
#![allow(clippy::unwrap_used)] // Test helpers: a panic there is a failing test.

use std::time::{Duration, UNIX_EPOCH};

use palisade_ratelimit::{Algorithm, Limit, MemoryStore, Policy};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Params {
    algorithm: Algorithm,
    limit: u64,
    period_us: u64,
    burst: u64,
}

impl Params {
    fn uses_burst(&self) -> bool {
        matches!(
            self.algorithm,
            Algorithm::TokenBucket | Algorithm::LeakyBucket | Algorithm::Gcra
        )
    }

    fn emission(&self) -> u64 {
        self.period_us.div_ceil(self.limit)
    }

    fn policy(&self) -> Policy {
        let mut l = Limit::new(
            "w",
            self.algorithm,
            self.limit,
            Duration::from_micros(self.period_us),
        );
        if self.uses_burst() {
            l = l.with_burst(self.burst);
        }
        Policy::builder("p").limit(l).build().unwrap()
    }
}

/// The naive reference: decides from the full history of admitted requests.
struct Reference {
    p: Params,
    admitted: Vec<(u64, u64)>,
    // The continuous bucket, in units of 1/T token: exact rationals.
    fill: u128,
    last: u64,
}

impl Reference {
    fn new(p: Params) -> Self {
        let fill = u128::from(p.burst) * u128::from(p.emission());
        Self {
            p,
            admitted: Vec::new(),
            fill,
            last: 0,
        }
    }

    fn sum(&self, from: u64, to_exclusive: u64) -> u64 {
        self.admitted
            .iter()
            .filter(|(t, _)| *t >= from && *t < to_exclusive)
            .map(|(_, c)| c)
            .sum()
    }

    fn decide(&mut self, now: u64, cost: u64) -> bool {
        let p = &self.p;
        let period = p.period_us;
        let allowed = match p.algorithm {
            Algorithm::FixedWindow => {
                let start = now - now % period;
                self.sum(start, start + period) + cost <= p.limit
            }
            Algorithm::SlidingWindow => {
                let start = now - now % period;
                let cur = self.sum(start, start + period);
                let prev = self.sum(start.saturating_sub(period), start);
                let elapsed = now - start;
                u128::from(prev) * u128::from(period - elapsed)
                    + u128::from(cur + cost) * u128::from(period)
                    <= u128::from(p.limit) * u128::from(period)
            }
            Algorithm::SlidingLog => {
                self.sum((now + 1).saturating_sub(period), now + 1) + cost <= p.limit
            }
            Algorithm::TokenBucket | Algorithm::LeakyBucket | Algorithm::Gcra => {
                let t = u128::from(p.emission());
                let capacity = u128::from(p.burst) * t;
                if self.last == 0 {
                    self.last = now;
                }
                self.fill = (self.fill + u128::from(now - self.last)).min(capacity);
                self.last = now;
                let ok = self.fill >= u128::from(cost) * t;
                if ok {
                    self.fill -= u128::from(cost) * t;
                }
                ok
            }
        };
        if allowed && cost > 0 {
            self.admitted.push((now, cost));
        }
        allowed
    }

    /// The documented bound, over every interval starting at an admitted request.
    fn check_bounds(&self) -> Result<(), TestCaseError> {
        let p = &self.p;
        let period = p.period_us;
        for (i, &(a, _)) in self.admitted.iter().enumerate() {
            match p.algorithm {
                Algorithm::SlidingLog => {
                    prop_assert!(self.sum(a, a + period) <= p.limit);
                }
                Algorithm::FixedWindow | Algorithm::SlidingWindow => {
                    let start = a - a % period;
                    prop_assert!(self.sum(start, start + period) <= p.limit);
                    let any = self.sum(a, a + period);
                    // Any length: an interval of length t meets at most
                    // ceil(t/P) + 1 aligned windows.
                    for &(b, _) in &self.admitted[i..] {
                        let inside = self.sum(a, b + 1);
                        let windows = (b - a).div_ceil(period) + 1;
                        prop_assert!(inside <= p.limit * windows);
                    }
                    if p.algorithm == Algorithm::FixedWindow {
                        prop_assert!(any <= 2 * p.limit);
                    } else {
                        prop_assert!(any < 2 * p.limit);
                    }
                }
                _ => {
                    let t = p.emission();
                    for &(b, _) in &self.admitted[i..] {
                        let inside = self.sum(a, b + 1);
                        prop_assert!(
                            inside <= p.burst + (b - a).div_ceil(t),
                            "{inside} admitted in {}us",
                            b - a
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

fn params() -> impl Strategy<Value = Params> {
    (
        prop::sample::select(vec![
            Algorithm::FixedWindow,
            Algorithm::SlidingWindow,
            Algorithm::SlidingLog,
            Algorithm::TokenBucket,
            Algorithm::LeakyBucket,
            Algorithm::Gcra,
        ]),
        1u64..12,
        prop::sample::select(vec![1_000u64, 7_000, 100_000, 1_000_000, 2_500_000]),
        1u64..12,
    )
        .prop_map(|(algorithm, limit, period_us, burst)| Params {
            algorithm,
            limit,
            period_us,
            burst,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_algorithm_matches_its_reference_and_its_bound(
        p in params(),
        steps in prop::collection::vec((0u64..1_500_000, 0u64..5), 1..120),
        start in 1_000_000_000_000_000u64..1_000_000_100_000_000,
    ) {
        let store = MemoryStore::new();
        let policy = p.policy();
        let mut reference = Reference::new(p.clone());
        let mut now = start;
        for (delta, cost) in steps {
            // Deltas scaled to the period so that both bursts and idle gaps occur.
            now += delta % (p.period_us * 2);
            let decision = store.check_sync("k", &policy, cost, UNIX_EPOCH + Duration::from_micros(now));
            let expected = reference.decide(now, cost);
            prop_assert_eq!(decision.allowed(), expected, "at {} cost {}", now, cost);
            let window = &decision.windows()[0];
            prop_assert!(window.remaining() <= window.limit());
            prop_assert_eq!(decision.retry_after().is_some(), !decision.allowed() && !decision.never());
        }
        reference.check_bounds()?;
    }

    #[test]
    fn retry_after_is_exact(
        p in params(),
        warmup in prop::collection::vec((0u64..300_000, 1u64..4), 1..30),
        cost in 1u64..4,
    ) {
        // After a warm-up, a denied request passes exactly at its retry time and not
        // one microsecond before (without other traffic).
        let policy = p.policy();
        let mut now = 2_000_000_000_000_000u64;
        let store = MemoryStore::new();
        for (delta, c) in warmup {
            now += delta;
            store.check_sync("k", &policy, c, UNIX_EPOCH + Duration::from_micros(now));
        }
        let at = |t: u64| UNIX_EPOCH + Duration::from_micros(t);
        let decision = store.check_sync("k", &policy, 0, at(now));
        prop_assert!(decision.allowed());
        let d = store.check_sync("k", &policy, cost, at(now));
        if !d.allowed() && !d.never() {
            let retry = u64::try_from(d.retry_after().unwrap().as_micros()).unwrap();
            prop_assert!(retry > 0);
            let before = store.check_sync("k", &policy, cost, at(now + retry - 1));
            prop_assert!(!before.allowed());
            let exactly = store.check_sync("k", &policy, cost, at(now + retry));
            prop_assert!(exactly.allowed(), "not allowed at retry time {}", retry);
        }
    }

    #[test]
    fn arbitrary_input_never_panics(
        key in ".{0,300}",
        raw in prop::collection::vec(any::<u8>(), 0..300),
        cost in any::<u64>(),
        now in any::<u64>(),
        p in params(),
    ) {
        let store = MemoryStore::new();
        let policy = p.policy();
        let time = UNIX_EPOCH + Duration::from_micros(now / 2);
        let d = store.check_sync(&key, &policy, cost, time);
        prop_assert!(cost <= p.limit.max(p.burst) || !d.allowed());
        let lossy = String::from_utf8_lossy(&raw);
        let _ = store.check_sync(&lossy, &policy, cost % 4, time);
        // A clock that jumps backwards is survived too.
        let _ = store.check_sync(&lossy, &policy, 1, UNIX_EPOCH);
    }
}
