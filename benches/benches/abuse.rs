//! palisade-abuse in memory: recording one request and reading the decision (target
//! under 500 ns), with 1 and 10 000 identities. The nearest peer doing per-key state work
//! on every request is governor's keyed limiter (`check_key`), measured on the same keys
//! as a reference point; it keeps one timestamp per key, where the monitor updates nine
//! counters, three distinct sets and an activity mask.
//!
//! `cargo bench -p palisade-benches --features abuse --bench abuse`
#![allow(missing_docs)] // criterion_group! generates an undocumented public function.

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use governor::{Quota, RateLimiter as Governor};
use palisade_abuse::{AbuseMonitor, Identity, LimitUsage, RequestEvent};

/// Drives a future that is ready at once (the in-memory store never waits).
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("in-memory store future was not ready"),
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("abuse/record+decision");
    let event = RequestEvent {
        endpoint: "GET /api/orders/{id}",
        is_auth_endpoint: false,
        status: 200,
        response_bytes: 512,
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) palisade-bench/1.0"),
        source_ip: "203.0.113.7".parse().expect("ip"),
        rate_limit: Some(LimitUsage {
            remaining: 40,
            limit: 60,
        }),
    };
    let start = UNIX_EPOCH + Duration::from_secs(1_764_000_000);
    for keys in [1usize, 10_000] {
        let ids: Vec<Identity> = (0..keys)
            .map(|i| Identity::api_key(&format!("key_{i:08}")))
            .collect();
        let monitor = AbuseMonitor::in_memory();
        let mut i = 0usize;
        let mut tick = 0u64;
        group.bench_function(BenchmarkId::new("palisade-abuse", keys), |b| {
            b.iter(|| {
                i = (i + 1) % keys;
                tick = tick.wrapping_add(1);
                // Time moves 10 ms per request: one busy but well-behaved key at 100
                // requests per second, or 10 000 keys at one request every 100 s each.
                // (Flagged identities are the rare path and not measured here.)
                let now: SystemTime = start + Duration::from_millis(tick * 10);
                let id = &ids[i];
                ready(monitor.record(id, &event, now));
                ready(monitor.decision(id, now))
            });
        });
        // The sync hot path for the in-memory store (no future at all).
        let mut i = 0usize;
        group.bench_function(BenchmarkId::new("palisade-abuse decision_now", keys), |b| {
            b.iter(|| {
                i = (i + 1) % keys;
                monitor.decision_now(&ids[i], start)
            });
        });

        let names: Vec<String> = ids.iter().map(|id| id.as_str().to_owned()).collect();
        let governor = Governor::keyed(Quota::per_second(
            NonZeroU32::new(1_000_000).expect("non-zero"),
        ));
        let mut i = 0usize;
        group.bench_function(BenchmarkId::new("governor check_key", keys), |b| {
            b.iter(|| {
                i = (i + 1) % keys;
                governor.check_key(&names[i]).is_ok()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
