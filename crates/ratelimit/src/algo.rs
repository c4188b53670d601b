//! The algorithms as pure state machines over microseconds since the Unix epoch.
//!
//! The Redis script (`redis.lua`) mirrors this file line for line; the conformance tests
//! hold the two to the same answers.

use std::collections::VecDeque;

use crate::decision::{Decision, WindowDecision};
use crate::policy::{Algorithm, MAX_WINDOWS, Window};

/// The state of one window of one key. `Empty` is the fully recovered state.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) enum State {
    #[default]
    Empty,
    Fixed {
        start: u64,
        count: u64,
    },
    Sliding {
        start: u64,
        prev: u64,
        cur: u64,
    },
    Log(Box<LogState>),
    Tokens {
        tokens: u64,
        last: u64,
    },
    Level {
        level: u64,
        last: u64,
    },
    Gcra {
        tat: u64,
    },
}

/// The exact log: admitted units with their time, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct LogState {
    entries: VecDeque<(u64, u64)>,
    used: u64,
}

/// The state of one window, tagged with the window it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) id: u64,
    pub(crate) state: State,
}

fn floor_to(now: u64, period: u64) -> u64 {
    now - now % period
}

fn div_floor_u128(numerator: u128, denominator: u128) -> u64 {
    u64::try_from(numerator / denominator.max(1)).unwrap_or(u64::MAX)
}

impl State {
    /// Brings the state to `now` without changing what it means (a lossless step), and
    /// turns `Empty` or a state of another algorithm into the algorithm's fresh state.
    #[inline]
    pub(crate) fn normalize(&mut self, w: &Window, now: u64) {
        let period = w.period_us;
        let t = w.emission_us;
        match (w.algorithm, &mut *self) {
            (Algorithm::FixedWindow, State::Fixed { start, count }) => {
                let current = floor_to(now, period);
                if current > *start {
                    *start = current;
                    *count = 0;
                }
            }
            (Algorithm::SlidingWindow, State::Sliding { start, prev, cur }) => {
                let current = floor_to(now, period);
                if current > *start {
                    *prev = if current == start.saturating_add(period) {
                        *cur
                    } else {
                        0
                    };
                    *cur = 0;
                    *start = current;
                }
            }
            (Algorithm::SlidingLog, State::Log(log)) => {
                while let Some(&(at, units)) = log.entries.front() {
                    if at.saturating_add(period) > now {
                        break;
                    }
                    log.entries.pop_front();
                    log.used = log.used.saturating_sub(units);
                }
            }
            (Algorithm::TokenBucket, State::Tokens { tokens, last }) => {
                if *tokens >= w.burst {
                    *tokens = w.burst;
                    *last = now;
                } else if now > *last {
                    let added = (now - *last) / t;
                    *tokens = tokens.saturating_add(added).min(w.burst);
                    if *tokens == w.burst {
                        *last = now;
                    } else {
                        *last += added * t;
                    }
                }
            }
            (Algorithm::LeakyBucket, State::Level { level, last }) => {
                if *level == 0 {
                    *last = now;
                } else if now > *last {
                    let leaked = (now - *last) / t;
                    *level = level.saturating_sub(leaked);
                    if *level == 0 {
                        *last = now;
                    } else {
                        *last += leaked * t;
                    }
                }
            }
            (Algorithm::Gcra, State::Gcra { tat }) => {
                if *tat < now {
                    *tat = now;
                }
            }
            (algorithm, state) => {
                *state = match algorithm {
                    Algorithm::FixedWindow => State::Fixed {
                        start: floor_to(now, period),
                        count: 0,
                    },
                    Algorithm::SlidingWindow => State::Sliding {
                        start: floor_to(now, period),
                        prev: 0,
                        cur: 0,
                    },
                    Algorithm::SlidingLog => State::Log(Box::default()),
                    Algorithm::TokenBucket => State::Tokens {
                        tokens: w.burst,
                        last: now,
                    },
                    Algorithm::LeakyBucket => State::Level {
                        level: 0,
                        last: now,
                    },
                    Algorithm::Gcra => State::Gcra { tat: now },
                };
            }
        }
    }

    /// How many units could be admitted now (after `normalize`).
    #[inline]
    pub(crate) fn available(&self, w: &Window, now: u64) -> u64 {
        match self {
            State::Fixed { count, .. } => w.limit.saturating_sub(*count),
            State::Sliding { start, prev, cur } => {
                let period = w.period_us;
                let elapsed = now.saturating_sub(*start).min(period);
                let budget = w.limit.saturating_sub(*cur).checked_mul(period);
                let weighted = prev.checked_mul(period - elapsed);
                match (budget, weighted) {
                    (Some(budget), Some(weighted)) => budget.saturating_sub(weighted) / period,
                    _ => {
                        let period = u128::from(period);
                        let budget = u128::from(w.limit.saturating_sub(*cur)) * period;
                        let weighted = u128::from(*prev) * (period - u128::from(elapsed));
                        div_floor_u128(budget.saturating_sub(weighted), period)
                    }
                }
            }
            State::Log(log) => w.limit.saturating_sub(log.used),
            State::Tokens { tokens, .. } => *tokens,
            State::Level { level, .. } => w.burst.saturating_sub(*level),
            State::Gcra { tat } => {
                // burst x emission is at most 366 days in microseconds (validated).
                let capacity = w.burst.saturating_mul(w.emission_us);
                capacity.saturating_sub(tat.saturating_sub(now)) / w.emission_us.max(1)
            }
            State::Empty => w.quota(),
        }
    }

    /// Consumes `units` (after `normalize`, and only if they are available).
    #[inline]
    pub(crate) fn apply(&mut self, w: &Window, now: u64, units: u64) {
        if units == 0 {
            return;
        }
        match self {
            State::Fixed { count, .. } => *count = count.saturating_add(units),
            State::Sliding { cur, .. } => *cur = cur.saturating_add(units),
            State::Log(log) => {
                match log.entries.back_mut() {
                    Some((at, existing)) if *at == now => *existing += units,
                    _ => log.entries.push_back((now, units)),
                }
                log.used = log.used.saturating_add(units);
            }
            State::Tokens { tokens, .. } => *tokens = tokens.saturating_sub(units),
            State::Level { level, .. } => *level = level.saturating_add(units),
            State::Gcra { tat } => {
                *tat = tat.saturating_add(units.saturating_mul(w.emission_us));
            }
            State::Empty => {}
        }
    }

    /// When the state will have fully recovered (equal to a fresh one): 0 if it has.
    #[inline]
    pub(crate) fn recovery_at(&self, w: &Window) -> u64 {
        let period = w.period_us;
        match self {
            State::Empty => 0,
            State::Fixed { start, count } => {
                if *count == 0 {
                    0
                } else {
                    start.saturating_add(period)
                }
            }
            State::Sliding { start, prev, cur } => {
                if *cur > 0 {
                    start.saturating_add(period.saturating_mul(2))
                } else if *prev > 0 {
                    start.saturating_add(period)
                } else {
                    0
                }
            }
            State::Log(log) => log
                .entries
                .back()
                .map_or(0, |&(at, _)| at.saturating_add(period)),
            State::Tokens { tokens, last } => {
                if *tokens >= w.burst {
                    0
                } else {
                    last.saturating_add((w.burst - tokens).saturating_mul(w.emission_us))
                }
            }
            State::Level { level, last } => {
                if *level == 0 {
                    0
                } else {
                    last.saturating_add(level.saturating_mul(w.emission_us))
                }
            }
            State::Gcra { tat } => *tat,
        }
    }

    /// The earliest time at which `cost` units would fit, with no other traffic; `None`
    /// when they never can (the cost exceeds the window's capacity).
    #[inline]
    pub(crate) fn retry_at(&self, w: &Window, now: u64, cost: u64) -> Option<u64> {
        if cost > w.quota() {
            return None;
        }
        let period = w.period_us;
        let t = w.emission_us;
        let at = match self {
            State::Empty => now,
            State::Fixed { start, .. } => start.saturating_add(period),
            State::Sliding { start, prev, cur } => {
                let need = w.limit - cost;
                let p = u128::from(period);
                if *cur <= need {
                    if *prev == 0 {
                        now
                    } else {
                        let slack = div_floor_u128(u128::from(need - cur) * p, u128::from(*prev));
                        start.saturating_add(period.saturating_sub(slack))
                    }
                } else {
                    let slack = div_floor_u128(u128::from(need) * p, u128::from(*cur));
                    start
                        .saturating_add(period)
                        .saturating_add(period.saturating_sub(slack))
                }
            }
            State::Log(log) => {
                let excess = log.used.saturating_add(cost).saturating_sub(w.limit);
                let mut freed = 0u64;
                let mut at = now;
                for &(when, units) in &log.entries {
                    if freed >= excess {
                        break;
                    }
                    freed = freed.saturating_add(units);
                    at = when.saturating_add(period);
                }
                at
            }
            State::Tokens { tokens, last } => {
                last.saturating_add(cost.saturating_sub(*tokens).saturating_mul(t))
            }
            State::Level { level, last } => {
                let over = level.saturating_add(cost).saturating_sub(w.burst);
                last.saturating_add(over.saturating_mul(t))
            }
            State::Gcra { tat } => tat
                .saturating_add(cost.saturating_mul(t))
                .saturating_sub(w.burst.saturating_mul(t)),
        };
        Some(at.max(now))
    }
}

/// GCRA on a policy of this one window, the memory store's lock-free path: whether
/// `cost` units fit on the stored arrival time `tat` at `now`, and the arrival time after
/// the step. The arithmetic of `decide_into` without its general machinery (a test holds
/// the two to the same answers): `floor(room / T) >= cost` is `cost * T <= room`.
#[inline]
pub(crate) fn gcra_step(w: &Window, tat: u64, now: u64, cost: u64) -> (bool, u64) {
    let base = tat.max(now);
    let room = w
        .burst
        .saturating_mul(w.emission_us)
        .saturating_sub(base - now);
    let charge = cost.saturating_mul(w.emission_us);
    if charge <= room {
        (true, base.saturating_add(charge))
    } else {
        (false, base)
    }
}

/// The decision after `gcra_step`, from its answer alone (`tat` is the arrival time after
/// the step), so that a retried compare-and-swap builds it only once.
#[inline]
pub(crate) fn gcra_decision(w: &Window, allowed: bool, tat: u64, now: u64, cost: u64) -> Decision {
    let t = w.emission_us.max(1);
    let left = w
        .burst
        .saturating_mul(t)
        .saturating_sub(tat.saturating_sub(now));
    let retry_at = if allowed {
        Some(now)
    } else {
        State::Gcra { tat }.retry_at(w, now, cost)
    };
    let window = WindowDecision::new(w, allowed, left / t, tat, retry_at, now);
    Decision::single(allowed, now, window)
}

/// Decides `cost` units against every window at once: either all windows admit and all
/// are charged, or none is. With `lease`, an admitted request takes a grant of up to
/// `max` units (at least `cost`, at most what every window has, and a `divisor`th of it)
/// for the hybrid store. Returns the decision and the units charged.
#[cfg(test)]
pub(crate) fn decide(
    windows: &[Window],
    states: &mut [Slot],
    now: u64,
    cost: u64,
    lease: Option<(u64, u64)>,
) -> (Decision, u64) {
    let mut decision = Decision::empty(false, now);
    let grant = decide_into(windows, states, now, cost, lease, &mut decision);
    (decision, grant)
}

/// Decides into `decision` (no copy of it on the hot path); returns the units charged.
#[inline]
pub(crate) fn decide_into(
    windows: &[Window],
    states: &mut [Slot],
    now: u64,
    cost: u64,
    lease: Option<(u64, u64)>,
    decision: &mut Decision,
) -> u64 {
    let mut allowed = true;
    let mut smallest = u64::MAX;
    let mut availability = [0u64; MAX_WINDOWS];
    for ((w, slot), room) in windows.iter().zip(states.iter_mut()).zip(&mut availability) {
        slot.state.normalize(w, now);
        *room = slot.state.available(w, now);
        smallest = smallest.min(*room);
        if *room < cost {
            allowed = false;
        }
    }
    let mut grant = 0;
    if allowed {
        grant = match lease {
            Some((max, divisor)) => (smallest / divisor.max(1)).min(max).max(cost).min(smallest),
            None => cost,
        };
    }
    decision.reset(allowed, now);
    for ((w, slot), room) in windows.iter().zip(states.iter_mut()).zip(availability) {
        let window_allowed = room >= cost;
        // What is left is linear in the units charged, for every algorithm.
        let mut remaining = room;
        if allowed {
            slot.state.apply(w, now, grant);
            remaining = room.saturating_sub(grant);
        }
        let retry_at = if window_allowed {
            Some(now)
        } else {
            slot.state.retry_at(w, now, cost)
        };
        decision.push(WindowDecision::new(
            w,
            window_allowed,
            remaining,
            slot.state.recovery_at(w),
            retry_at,
            now,
        ));
    }
    grant
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Limit, Policy};
    use std::time::Duration;

    fn window(algorithm: Algorithm, limit: u64, period_s: u64, burst: Option<u64>) -> Window {
        let mut l = Limit::new("w", algorithm, limit, Duration::from_secs(period_s));
        if let Some(b) = burst {
            l = l.with_burst(b);
        }
        Policy::builder("t").limit(l).build().unwrap().windows()[0]
    }

    fn run(w: &Window, state: &mut [Slot], now: u64, cost: u64) -> Decision {
        decide(std::slice::from_ref(w), state, now, cost, None).0
    }

    fn fresh(w: &Window) -> Vec<Slot> {
        vec![Slot {
            id: w.id,
            state: State::Empty,
        }]
    }

    const S: u64 = 1_000_000;

    #[test]
    fn fixed_window_admits_twice_the_limit_across_the_edge() {
        let w = window(Algorithm::FixedWindow, 10, 60, None);
        let mut s = fresh(&w);
        let edge = 1_000 * 60 * S;
        let mut admitted = 0;
        for i in 0..10 {
            admitted += u64::from(run(&w, &mut s, edge - 10 + i, 1).allowed());
        }
        assert!(!run(&w, &mut s, edge - 1, 1).allowed());
        for i in 0..10 {
            admitted += u64::from(run(&w, &mut s, edge + i, 1).allowed());
        }
        // 20 requests within 20 microseconds against a limit of 10 per minute.
        assert_eq!(admitted, 20);
    }

    #[test]
    fn sliding_counter_weights_the_previous_window() {
        let w = window(Algorithm::SlidingWindow, 10, 60, None);
        let mut s = fresh(&w);
        let start = 1_000 * 60 * S;
        for _ in 0..10 {
            assert!(run(&w, &mut s, start + 50 * S, 1).allowed());
        }
        // Half-way through the next window, half of the previous count still weighs.
        let d = run(&w, &mut s, start + 90 * S, 1);
        assert!(d.allowed());
        assert_eq!(d.windows()[0].remaining(), 4);
        let mut more = 0;
        while run(&w, &mut s, start + 90 * S, 1).allowed() {
            more += 1;
        }
        assert_eq!(more, 4);
        let denied = run(&w, &mut s, start + 90 * S, 1);
        // 5 (previous, weighted 1/2) + 5 (current) = 10; one more fits once the previous
        // weight falls to 4/10, at 60 * (1 - 4/10) = 36 s into the window.
        assert_eq!(denied.retry_after(), Some(Duration::from_secs(6)));
    }

    #[test]
    fn buckets_and_gcra_allow_the_burst_then_the_rate() {
        for algorithm in [
            Algorithm::TokenBucket,
            Algorithm::LeakyBucket,
            Algorithm::Gcra,
        ] {
            let w = window(algorithm, 60, 60, Some(10));
            let mut s = fresh(&w);
            let now = 77 * S;
            for i in 0..10 {
                let d = run(&w, &mut s, now, 1);
                assert!(d.allowed(), "{algorithm:?} {i}");
                assert_eq!(d.windows()[0].remaining(), 9 - i);
            }
            let d = run(&w, &mut s, now, 1);
            assert!(!d.allowed());
            assert_eq!(
                d.retry_after(),
                Some(Duration::from_secs(1)),
                "{algorithm:?}"
            );
            assert_eq!(
                d.windows()[0].reset(),
                Duration::from_secs(10),
                "{algorithm:?}"
            );
            assert!(!run(&w, &mut s, now + S - 1, 1).allowed());
            assert!(run(&w, &mut s, now + S, 1).allowed());
            assert!(!run(&w, &mut s, now + S, 1).allowed());
            // A cost above the burst can never pass.
            let d = run(&w, &mut s, now + 100 * S, 11);
            assert!(!d.allowed());
            assert_eq!(d.retry_after(), None);
        }
    }

    #[test]
    fn sliding_log_is_exact_and_costs_count() {
        let w = window(Algorithm::SlidingLog, 5, 10, None);
        let mut s = fresh(&w);
        assert!(run(&w, &mut s, S, 3).allowed());
        assert!(run(&w, &mut s, 2 * S, 2).allowed());
        let d = run(&w, &mut s, 3 * S, 1);
        assert!(!d.allowed());
        assert_eq!(d.retry_after(), Some(Duration::from_secs(8)));
        let d = run(&w, &mut s, 11 * S, 3);
        assert!(d.allowed());
        assert_eq!(d.windows()[0].remaining(), 0);
        assert_eq!(d.windows()[0].reset(), Duration::from_secs(10));
    }

    #[test]
    fn multi_window_is_all_or_nothing() {
        let policy = Policy::builder("t")
            .limit(Limit::new(
                "a",
                Algorithm::FixedWindow,
                5,
                Duration::from_secs(60),
            ))
            .limit(Limit::new(
                "b",
                Algorithm::FixedWindow,
                3,
                Duration::from_secs(3600),
            ))
            .build()
            .unwrap();
        let mut s: Vec<Slot> = policy
            .windows()
            .iter()
            .map(|w| Slot {
                id: w.id,
                state: State::Empty,
            })
            .collect();
        assert!(decide(policy.windows(), &mut s, S, 2, None).0.allowed());
        // 2 more would fit window a (3 left) but not window b (1 left): charged to none.
        let (d, charged) = decide(policy.windows(), &mut s, S, 2, None);
        assert!(!d.allowed());
        assert_eq!(charged, 0);
        assert!(d.windows()[0].allowed());
        assert!(!d.windows()[1].allowed());
        assert_eq!(d.windows()[0].remaining(), 3);
        assert_eq!(d.windows()[1].remaining(), 1);
        assert!(decide(policy.windows(), &mut s, S, 1, None).0.allowed());
    }

    #[test]
    fn the_lock_free_gcra_path_matches_the_general_one() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        for _ in 0..20_000 {
            let limit = 1 + next(1_000);
            let burst = 1 + next(50);
            let w = window(Algorithm::Gcra, limit, 1 + next(100), Some(burst));
            let now = 1_000 * S + next(10 * S);
            // Stored arrival times in the past, the future and past the capacity.
            let tat = match next(4) {
                0 => 0,
                1 => now - next(S),
                _ => now + next(burst * w.emission_us * 2),
            };
            let cost = match next(8) {
                0 => 0,
                1 => u64::MAX / (1 + next(3)),
                _ => next(burst + 3),
            };
            let mut slot = [Slot {
                id: w.id,
                state: if tat == 0 {
                    State::Empty
                } else {
                    State::Gcra { tat }
                },
            }];
            let (expected, charged) = decide(std::slice::from_ref(&w), &mut slot, now, cost, None);
            let (allowed, after) = gcra_step(&w, tat, now, cost);
            let got = gcra_decision(&w, allowed, after, now, cost);
            assert_eq!(got, expected, "tat {tat} now {now} cost {cost} {w:?}");
            if charged > 0 {
                assert_eq!(slot[0].state, State::Gcra { tat: after });
            }
        }
    }

    #[test]
    fn leases_shrink_near_the_limit() {
        let w = window(Algorithm::FixedWindow, 100, 60, None);
        let mut s = fresh(&w);
        let mut grants = Vec::new();
        loop {
            let (d, g) = decide(std::slice::from_ref(&w), &mut s, S, 1, Some((10, 4)));
            if !d.allowed() {
                break;
            }
            grants.push(g);
        }
        assert_eq!(grants.iter().sum::<u64>(), 100);
        assert_eq!(grants.first(), Some(&10));
        assert_eq!(grants.last(), Some(&1));
    }
}
