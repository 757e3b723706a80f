//! A scheduling pass does not ask selectors about every (request, window) pair (lotus PR #3166:
//! 2,000 tasks took over ten minutes). Counted, not timed: timings live in the benchmark.

use sched::world::{lotus_case, mixed_cluster};

#[test]
fn selector_calls_grow_with_the_queue_not_queue_times_windows() {
    let mut s = mixed_cluster(300, 6_000, 11);
    let stats = s.schedule();
    s.check_invariants().unwrap();
    assert_eq!(stats.considered, 6_000);
    assert!(stats.assigned > 1_000, "{stats:?}");
    // Lotus would make up to 6,000 x 600 = 3.6 million calls here.
    assert!(stats.selector_calls < 2 * stats.considered, "{stats:?}");

    let mut s = lotus_case(200, 400);
    let stats = s.schedule();
    assert_eq!((stats.assigned, stats.selector_calls), (200, 200));
    assert_eq!(s.queued_len(), 200);
}

#[test]
fn passes_keep_the_cluster_consistent_as_work_completes() {
    let mut s = mixed_cluster(100, 3_000, 3);
    for _ in 0..5 {
        s.schedule();
        let actions = s.take_actions();
        for a in &actions {
            if a.kind == sched::ActionKind::Prepare {
                s.prepared(a.handle).unwrap();
            }
        }
        for a in s.take_actions() {
            s.finished(a.handle).unwrap();
        }
        s.check_invariants().unwrap();
    }
    assert!(s.queued_len() < 3_000);
}
