//! Issue 28's rate limit table: throughput of checks at 64 tasks, in one
//! run.
//!
//! - Redis: `RateLimiter::check` (one GCRA script with `TIME`) against a
//!   plain `incr` on the same adapter (what a hand-made fixed window
//!   costs, without its `EXPIRE`), one subject and 10,000 subjects.
//! - In process: `RateLimiter::check` on moka against governor's keyed
//!   limiter (in-process GCRA, the speed to beat), 10,000 subjects, and
//!   its direct (one-subject) limiter against one subject.
//!
//! `cargo bench -p cache-bench --bench rate_limit` (`RATE_ONLY=redis`: the
//! Redis table alone).

use std::num::NonZeroU32;
use std::sync::Arc;

use cache_bench::{compare, header, leak, run_tasks, Plan};
use cache_moka::MokaConfig;
use cache_port::Cache;
use cache_recipes::{Quota, RateLimiter};
use cache_redis::RedisConfig;
use cache_redis_harness::RedisServer;

const SUBJECTS: usize = 10_000;

fn main() {
    let rt = cache_bench::runtime();
    let server = RedisServer::start();
    let redis: &'static Arc<dyn Cache> = leak(rt.block_on(async {
        Arc::new(
            RedisConfig::from_url(&server.url())
                .unwrap()
                .connect()
                .await
                .unwrap(),
        ) as Arc<dyn Cache>
    }));
    // A quota no check reaches: every check is counted and allowed, as
    // most checks of a service are.
    // (1 µs apart, the finest a quota takes, with a burst of 71 minutes' worth.)
    let quota = Quota::per(1_000_000, std::time::Duration::from_secs(1))
        .unwrap()
        .burst(u32::MAX)
        .unwrap();
    let subjects = leak((0..SUBJECTS).map(|i| format!("s{i}")).collect::<Vec<_>>());

    header("rate limit checks on Redis, 64 tasks: raw = incr on the same adapter, ours = RateLimiter::check");
    let limiter = leak(RateLimiter::new(Arc::clone(redis), "limit", quota).unwrap());
    for (name, spread) in [("one subject", 1usize), ("10,000 subjects", SUBJECTS)] {
        compare(
            &format!("redis check, {name}"),
            Plan::REDIS,
            None,
            |n| {
                run_tasks(&rt, 64, n, move |i| async move {
                    let key = &subjects[i % spread];
                    redis.incr(key, 1, None).await.unwrap();
                })
            },
            |n| {
                run_tasks(&rt, 64, n, move |i| async move {
                    assert!(limiter.check(&subjects[i % spread]).await.unwrap().allowed);
                })
            },
        );
    }

    // `RATE_ONLY=redis` skips the in-process table (its calibration on
    // governor's 30 ns makes it take minutes).
    if std::env::var("RATE_ONLY").as_deref() == Ok("redis") {
        return;
    }
    header(
        "rate limit checks in process, 64 tasks: raw = governor, ours = RateLimiter::check on moka",
    );
    let moka: Arc<dyn Cache> = Arc::new(MokaConfig::default().build().unwrap());
    let limiter = leak(RateLimiter::new(moka, "limit", quota).unwrap());
    let per_second = NonZeroU32::new(1_000_000_000).unwrap();
    let keyed = leak(governor::RateLimiter::keyed(governor::Quota::per_second(
        per_second,
    )));
    let direct = leak(governor::RateLimiter::direct(governor::Quota::per_second(
        per_second,
    )));
    compare(
        "in process, one subject (governor direct)",
        Plan::default(),
        None,
        |n| {
            run_tasks(&rt, 64, n, move |_| async move {
                assert!(direct.check().is_ok());
            })
        },
        |n| {
            run_tasks(&rt, 64, n, move |_| async move {
                assert!(limiter.check("one").await.unwrap().allowed);
            })
        },
    );
    compare(
        "in process, 10,000 subjects (governor keyed)",
        Plan::default(),
        None,
        |n| {
            run_tasks(&rt, 64, n, move |i| async move {
                assert!(keyed.check_key(&subjects[i % SUBJECTS]).is_ok());
            })
        },
        |n| {
            run_tasks(&rt, 64, n, move |i| async move {
                assert!(
                    limiter
                        .check(&subjects[i % SUBJECTS])
                        .await
                        .unwrap()
                        .allowed
                );
            })
        },
    );
}
