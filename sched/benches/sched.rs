//! One full scheduling pass, for lotus's BenchmarkTrySched shapes and at cluster scale.
//!
//! Run: `cargo bench -p sched --bench sched`. Each iteration schedules a freshly built queue
//! (building it is not timed). The first line per case says what one pass did.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use sched::world::{lotus_case, mixed_cluster};
use sched::Scheduler;

type Build = Box<dyn Fn() -> Scheduler>;

fn cases() -> Vec<(&'static str, Build)> {
    vec![
        ("1w-1q", Box::new(|| lotus_case(1, 1))),
        ("500w-1q", Box::new(|| lotus_case(500, 1))),
        ("1w-500q", Box::new(|| lotus_case(1, 500))),
        ("200w-400q", Box::new(|| lotus_case(200, 400))),
        ("1000w-10000q", Box::new(|| mixed_cluster(1000, 10_000, 7))),
        (
            "1000w-100000q",
            Box::new(|| mixed_cluster(1000, 100_000, 7)),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("sched");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    for (name, build) in cases() {
        let stats = build().schedule();
        eprintln!(
            "{name}: one pass considered {} requests, assigned {}, made {} selector calls",
            stats.considered, stats.assigned, stats.selector_calls
        );
        group.bench_function(name, |b| {
            b.iter_batched(&build, |mut s| s.schedule(), BatchSize::LargeInput)
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
