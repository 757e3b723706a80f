//! Scenario tests: simulated workers, asserting who ran what and in which order.

use std::collections::HashMap;
use std::sync::Arc;

use resources::{ResourceTable, SectorRef, SectorSize, TaskType, DEAL_SECTOR_PRIORITY};
use sched::sim::{spec, Sim};
use sched::{Assigner, ExistingSelector, JobState, SchedConfig, SchedError, StorageView, WorkerId};
use SectorSize::*;
use TaskType::*;

fn sim() -> Sim {
    Sim::new(SchedConfig::default())
}

/// When `task` of `sector` started (`start`) or ended.
fn time_of(sim: &Sim, task: TaskType, sector: u64, start: bool) -> u64 {
    let what = if start { "started" } else { "ended" };
    sim.log
        .iter()
        .find(|r| r.start == start && r.task == task && r.sector == sector)
        .unwrap_or_else(|| panic!("{task} of sector {sector} never {what}"))
        .time
}

fn start_of(sim: &Sim, task: TaskType, sector: u64) -> u64 {
    time_of(sim, task, sector, true)
}

fn end_of(sim: &Sim, task: TaskType, sector: u64) -> u64 {
    time_of(sim, task, sector, false)
}

#[test]
fn pc1_and_pc2_block_each_other_when_memory_is_short() {
    // 70 GiB holds a 32GiB PC1 (56 GiB) or a PC2 (16 GiB), not both: whichever runs first makes
    // the other wait for it.
    for (first, second) in [(PreCommit1, PreCommit2), (PreCommit2, PreCommit1)] {
        let mut s = sim();
        s.add_worker(spec("w", 70, 32, 0, &[PreCommit1, PreCommit2]));
        s.submit(first, S32GiB, 1, 0);
        s.run(5);
        s.submit(second, S32GiB, 2, 0);
        s.run(u64::MAX);
        assert!(
            start_of(&s, second, 2) >= end_of(&s, first, 1),
            "{first} then {second}"
        );
    }
}

#[test]
fn pc2_goes_before_pc1_and_deal_priority_before_both() {
    let mut s = sim();
    s.add_worker(spec("w", 70, 32, 0, &[PreCommit1, PreCommit2]));
    s.submit(PreCommit1, S32GiB, 1, 0);
    s.submit(PreCommit2, S32GiB, 2, 0);
    s.submit(PreCommit1, S32GiB, 3, DEAL_SECTOR_PRIORITY);
    s.run(u64::MAX);
    let order: Vec<u64> = s.starts().into_iter().map(|(_, _, n)| n).collect();
    assert_eq!(
        order,
        vec![3, 2, 1],
        "deal PC1, then PC2 (order 4), then PC1 (order 5)"
    );
}

#[test]
fn pc1_batches_on_one_worker_up_to_its_resources() {
    let mut s = sim();
    s.add_worker(spec("big", 200, 64, 0, &[PreCommit1]));
    for n in 1..=5 {
        s.submit(PreCommit1, S32GiB, n, 0);
    }
    s.run(u64::MAX);
    assert_eq!(
        s.max_concurrent("big", |t| t == PreCommit1),
        3,
        "3 x 56 GiB fit in 200 GiB"
    );
    let first: Vec<u64> = (1..=3).map(|n| start_of(&s, PreCommit1, n)).collect();
    assert!(
        first.iter().all(|t| *t == first[0]),
        "the first three start together: {first:?}"
    );
    assert!(start_of(&s, PreCommit1, 4) >= end_of(&s, PreCommit1, 1));
}

#[test]
fn one_pass_fills_a_window_only_with_what_fits_beside_other_work() {
    // Lotus #7868: 17 PC1 dumped onto one worker in one cycle. Here each worker's window takes
    // what fits beside everything it already holds.
    let mut s = sim();
    let a = s.add_worker(spec("a", 200, 64, 0, &[PreCommit1]));
    let b = s.add_worker(spec("b", 200, 64, 0, &[PreCommit1]));
    for n in 1..=17 {
        s.submit(PreCommit1, S32GiB, n, 0);
    }
    let stats = s.sched.schedule();
    assert_eq!(stats.assigned, 6);
    assert_eq!(s.sched.queued_len(), 11);
    let jobs = s.sched.jobs();
    for w in [a, b] {
        let on: Vec<_> = jobs.iter().filter(|j| j.worker == w).collect();
        assert_eq!(on.len(), 3);
        assert!(on.iter().all(|j| j.state == JobState::Assigned(1)));
    }
    // A second pass adds nothing: the second windows are open, but nothing more fits.
    assert_eq!(s.sched.schedule().assigned, 0);
    s.sched.check_invariants().unwrap();
    assert!(s.sched.unplaceable().is_empty());
    // The scheduler tells which requests wait for a worker that does not exist: no worker here
    // takes C2, and with a disconnected and b disabled, nothing can run at all.
    let c2 = s.submit(Commit2, S32GiB, 99, 0);
    s.sched.set_enabled(b, false).unwrap();
    s.sched.disconnect(a).unwrap();
    let pc1 = s.submit(PreCommit1, S2KiB, 100, 0);
    let mut stuck = s.sched.unplaceable();
    stuck.sort();
    assert_eq!(
        stuck.len(),
        17 + 2,
        "with both workers away, everything waits"
    );
    assert!(stuck.contains(&c2) && stuck.contains(&pc1));
    s.sched.reconnect(a).unwrap();
    assert_eq!(s.sched.unplaceable(), vec![c2]);
}

#[test]
fn job_listing_moves_through_lotus_states() {
    let mut s = sim();
    let w = s.add_worker(spec("w", 64, 16, 0, &[AddPiece]));
    let id = s.sched.submit(sched::TaskRequest::for_sector(
        SectorRef::new(1000, 1, S2KiB.seal_proof()),
        AddPiece,
        0,
        Arc::new(sched::TaskSelector),
    ));
    assert_eq!(
        s.sched.job_state(id),
        None,
        "queued requests are not jobs yet"
    );
    s.sched.schedule();
    assert_eq!(s.sched.job_state(id), Some(JobState::Assigned(1)));
    let prep = s.sched.take_actions();
    assert_eq!(prep.len(), 1);
    assert_eq!(s.sched.job_state(id), Some(JobState::Preparing));
    s.sched.prepared(prep[0].handle).unwrap();
    assert_eq!(s.sched.job_state(id), Some(JobState::Prepared));
    let exec = s.sched.take_actions();
    assert_eq!(s.sched.job_state(id), Some(JobState::Running));
    assert_eq!(s.sched.jobs()[0].state.to_string(), "running");
    let stats = &s.sched.worker_stats()[0];
    assert_eq!(
        (
            stats.running.tasks(),
            stats.preparing.tasks(),
            stats.usage.tasks()
        ),
        (1, 0, 1)
    );
    s.sched.disconnect(w).unwrap();
    assert_eq!(s.sched.jobs()[0].state.to_string(), "ret-wait");
    s.sched.reconnect(w).unwrap();
    let done = s.sched.finished(exec[0].handle).unwrap();
    assert_eq!((done.task, done.worker), (AddPiece, Some(w)));
    assert!(s.sched.is_empty());
    assert_eq!(s.sched.worker_stats()[0].usage.tasks(), 0);
}

#[test]
fn c2_runs_only_on_workers_that_support_it() {
    let mut s = sim();
    s.add_worker(spec(
        "sealer",
        256,
        64,
        1,
        &[AddPiece, PreCommit1, PreCommit2],
    ));
    s.add_worker(spec("prover", 64, 16, 1, &[Commit2]));
    for n in 1..=10 {
        s.submit(Commit2, S2KiB, n, 0);
    }
    s.run(u64::MAX);
    let starts = s.starts();
    assert_eq!(starts.len(), 10);
    assert!(starts.iter().all(|(w, _, _)| w == "prover"), "{starts:?}");
}

#[test]
fn gpu_tasks_never_exceed_the_gpu_count() {
    for gpus in [1usize, 2] {
        let mut s = sim();
        s.add_worker(spec("gpu", 128, 32, gpus, &[Commit2, WindowPoSt]));
        for n in 1..=6 {
            s.submit(Commit2, S2KiB, n, 0);
            s.submit(WindowPoSt, S2KiB, 100 + n, 0);
        }
        s.run(u64::MAX);
        assert_eq!(s.starts().len(), 12);
        assert_eq!(
            s.max_concurrent("gpu", |t| t == Commit2 || t == WindowPoSt),
            gpus
        );
    }
}

#[test]
fn max_concurrent_is_honoured() {
    let vars: HashMap<&str, &str> = [("PC1_MAX_CONCURRENT", "2")].into();
    let table = ResourceTable::from_lookup(&|k| vars.get(k).map(|v| v.to_string())).unwrap();
    let mut s = sim();
    let mut w = spec("limited", 1024, 64, 0, &[PreCommit1, AddPiece]);
    w.table = table;
    s.add_worker(w);
    for n in 1..=6 {
        s.submit(PreCommit1, S32GiB, n, 0);
        s.submit(AddPiece, S32GiB, 10 + n, 0);
    }
    s.run(u64::MAX);
    assert_eq!(s.starts().len(), 12);
    assert_eq!(s.max_concurrent("limited", |t| t == PreCommit1), 2);
    assert!(
        s.max_concurrent("limited", |t| t == AddPiece) > 2,
        "the cap is per task type"
    );
}

#[test]
fn base_memory_is_shared_by_tasks_of_a_type() {
    // Two 32GiB C2: 2 x 150 GiB max + 32 GiB parameters once = 332 GiB <= 350 GiB.
    let mut s = sim();
    s.add_worker(spec("c2", 350, 64, 2, &[Commit2]));
    s.submit(Commit2, S32GiB, 1, 0);
    s.submit(Commit2, S32GiB, 2, 0);
    s.run(u64::MAX);
    assert_eq!(s.max_concurrent("c2", |t| t == Commit2), 2);
}

#[test]
fn disconnected_workers_unstarted_tasks_run_elsewhere() {
    let mut s = sim();
    s.durations = Box::new(|_, _, _| (50, 100));
    let a = s.add_worker(spec("a", 200, 64, 0, &[PreCommit1]));
    s.add_worker(spec("b", 70, 64, 0, &[PreCommit1]));
    for n in 1..=4 {
        s.submit(PreCommit1, S32GiB, n, 0);
    }
    s.at(10, move |sched| {
        let requeued = sched.disconnect(a).unwrap();
        assert_eq!(requeued, 3, "a's three preparing PC1s go back to the queue");
    });
    s.run(u64::MAX);
    let starts = s.starts();
    assert_eq!(starts.len(), 4);
    assert!(starts.iter().all(|(w, _, _)| w == "b"), "{starts:?}");
}

#[test]
fn reconnected_worker_gets_work_again() {
    let mut s = sim();
    let a = s.add_worker(spec("a", 64, 16, 0, &[AddPiece]));
    s.sched.disconnect(a).unwrap();
    s.submit(AddPiece, S2KiB, 1, 0);
    s.run(100);
    assert!(
        s.starts().is_empty(),
        "nothing runs while the only worker is away"
    );
    s.sched.reconnect(a).unwrap();
    s.run(u64::MAX);
    assert_eq!(s.starts().len(), 1);
}

#[test]
fn disabled_worker_gets_no_work() {
    let mut s = sim();
    let a = s.add_worker(spec("a", 64, 16, 0, &[AddPiece]));
    s.add_worker(spec("b", 64, 16, 0, &[AddPiece]));
    s.sched.set_enabled(a, false).unwrap();
    for n in 1..=4 {
        s.submit(AddPiece, S2KiB, n, 0);
    }
    s.run(u64::MAX);
    assert!(s.starts().iter().all(|(w, _, _)| w == "b"));
}

#[test]
fn abort_removes_a_queued_request() {
    let mut s = sim();
    s.add_worker(spec("w", 70, 16, 0, &[PreCommit1]));
    let first = s.submit(PreCommit1, S32GiB, 1, 0);
    s.submit(PreCommit1, S32GiB, 2, 0);
    let third = s.submit(PreCommit1, S32GiB, 3, 0);
    s.run(5);
    let gone = s.sched.abort(third).unwrap();
    assert_eq!((gone.subject.number(), gone.worker), (3, None));
    assert!(
        matches!(s.sched.abort(first), Err(SchedError::WrongState { .. })),
        "running: not abortable"
    );
    assert!(matches!(
        s.sched.abort(third),
        Err(SchedError::UnknownRequest(_))
    ));
    s.run(u64::MAX);
    let sectors: Vec<u64> = s.starts().into_iter().map(|(_, _, n)| n).collect();
    assert_eq!(sectors, vec![1, 2]);
}

#[test]
fn post_jumps_ahead_of_everything() {
    // One CPU: one task at a time.
    let mut s = sim();
    s.add_worker(spec(
        "w",
        64,
        1,
        0,
        &[PreCommit1, Finalize, WindowPoSt, WinningPoSt],
    ));
    for n in 1..=4 {
        s.submit(PreCommit1, S2KiB, n, DEAL_SECTOR_PRIORITY);
    }
    s.run(10);
    s.submit(WindowPoSt, S2KiB, 0, 0);
    s.submit(WinningPoSt, S2KiB, 0, 0);
    s.run(u64::MAX);
    let order: Vec<TaskType> = s.starts().into_iter().map(|(_, t, _)| t).collect();
    assert_eq!(
        order,
        vec![
            PreCommit1,
            WinningPoSt,
            WindowPoSt,
            PreCommit1,
            PreCommit1,
            PreCommit1
        ]
    );
}

#[test]
fn a_task_that_does_not_fit_does_not_block_smaller_ones() {
    // Lotus #8655/#8918: the PC1 at the head cannot fit beside the running PC2; the AP behind it
    // runs anyway.
    let mut s = sim();
    s.add_worker(spec("w", 72, 32, 0, &[PreCommit1, PreCommit2, AddPiece]));
    s.submit(PreCommit2, S32GiB, 1, 0);
    s.run(5);
    s.submit(PreCommit1, S32GiB, 2, 0);
    s.submit(AddPiece, S32GiB, 3, 0);
    s.run(u64::MAX);
    assert!(start_of(&s, AddPiece, 3) < end_of(&s, PreCommit2, 1));
    assert!(start_of(&s, PreCommit1, 2) >= end_of(&s, PreCommit2, 1));
}

#[test]
fn spread_and_utilization_assigners() {
    for (assigner, want) in [(Assigner::Spread, (2, 2)), (Assigner::Utilization, (2, 2))] {
        let mut s = Sim::new(SchedConfig {
            assigner,
            windows: 2,
            ..SchedConfig::default()
        });
        s.add_worker(spec("a", 64, 16, 0, &[AddPiece]));
        s.add_worker(spec("b", 64, 16, 0, &[AddPiece]));
        for n in 1..=4 {
            s.submit(AddPiece, S2KiB, n, 0);
        }
        s.run(u64::MAX);
        let on = |w: &str| s.starts().iter().filter(|(x, _, _)| x == w).count();
        assert_eq!((on("a"), on("b")), want, "{assigner:?}");
    }
    // Utilization weighs what tasks take: a big PC1 on `a` sends the next small tasks to `b`.
    let mut s = sim();
    s.add_worker(spec("a", 128, 16, 0, &[PreCommit1, AddPiece]));
    s.add_worker(spec("b", 128, 16, 0, &[AddPiece]));
    s.submit(PreCommit1, S32GiB, 1, 0);
    s.run(5);
    for n in 2..=4 {
        s.submit(AddPiece, S2KiB, n, 0);
    }
    s.run(u64::MAX);
    let aps: Vec<String> = s
        .starts()
        .into_iter()
        .filter(|(_, t, _)| *t == AddPiece)
        .map(|(w, _, _)| w)
        .collect();
    assert!(aps.iter().all(|w| w == "b"), "{aps:?}");
}

/// Storage seen by selectors in tests: who holds which sector, who has room.
struct Holders {
    held: HashMap<u64, Vec<WorkerId>>,
    room: Vec<WorkerId>,
}

impl StorageView for Holders {
    fn holders(&self, sector: &SectorRef, out: &mut Vec<WorkerId>) {
        out.extend(self.held.get(&sector.number).into_iter().flatten());
    }
    fn can_allocate(&self, worker: WorkerId, _size: SectorSize) -> bool {
        self.room.contains(&worker)
    }
}

#[test]
fn workers_holding_the_sector_are_preferred_and_no_fetch_waits_for_them() {
    let mut s = sim();
    let a = s.add_worker(spec("a", 64, 32, 0, &[PreCommit2, Commit1]));
    let b = s.add_worker(spec("b", 64, 32, 0, &[PreCommit2, Commit1]));
    let storage = Arc::new(Holders {
        held: [(1, vec![b]), (2, vec![b])].into(),
        room: vec![a, b],
    });
    let fetch = Arc::new(ExistingSelector {
        storage: storage.clone(),
        allow_fetch: true,
    });
    let local = Arc::new(ExistingSelector {
        storage,
        allow_fetch: false,
    });
    // a is busy with sector 9; b is idle but holds sector 1. Then sector 2 may run only on b,
    // which its PC2 fills (92% of the CPUs), so it waits for b even when a frees up first.
    s.submit(PreCommit2, S2KiB, 9, 0);
    s.run(5);
    s.submit_with(PreCommit2, S2KiB, 1, 0, fetch);
    s.submit_with(PreCommit2, S2KiB, 2, 0, local);
    s.run(u64::MAX);
    let starts = s.starts();
    let where_ran = |n: u64| starts.iter().find(|(_, _, m)| *m == n).unwrap().0.clone();
    assert_eq!(where_ran(9), "a");
    assert_eq!(
        where_ran(1),
        "b",
        "the holder wins over a worker that is just as free"
    );
    assert_eq!(
        where_ran(2),
        "b",
        "without fetch, only the holder may run it"
    );
    assert!(start_of(&s, PreCommit2, 2) >= end_of(&s, PreCommit2, 1));
    assert!(
        end_of(&s, PreCommit2, 9) < end_of(&s, PreCommit2, 1),
        "a was free first"
    );
}

#[test]
fn both_post_kinds_start_at_once_beside_sealing_and_sealing_waits_for_them() {
    // One core: one sealing task at a time (2KiB C2 takes one thread, as do WDP and WNP).
    let mut s = sim();
    s.add_worker(spec("w", 64, 1, 0, &[Commit2, WindowPoSt, WinningPoSt]));
    for n in 1..=3 {
        s.submit(Commit2, S2KiB, n, 0);
    }
    s.run(10);
    // Deadline 5 and the election at epoch 700 arrive while the first C2 runs.
    s.submit(WindowPoSt, S2KiB, 5, 0);
    s.submit(WinningPoSt, S2KiB, 700, 0);
    // `Sim` checks the accounting (PoSt workers included) after every step.
    s.run(u64::MAX);
    let c2_done = end_of(&s, Commit2, 1);
    let (wdp, wnp) = (start_of(&s, WindowPoSt, 5), start_of(&s, WinningPoSt, 700));
    assert!(
        wdp < c2_done && wnp < c2_done,
        "WDP {wdp}, WNP {wnp}, C2 done {c2_done}"
    );
    let post_done = end_of(&s, WindowPoSt, 5).max(end_of(&s, WinningPoSt, 700));
    assert!(start_of(&s, Commit2, 2) >= post_done, "{:?}", s.starts());
    let stats = &s.sched.worker_stats()[0];
    assert_eq!(stats.usage.tasks(), 0);
}

#[test]
fn a_c2_waiting_for_memory_that_pc1s_keep_taking_holds_the_worker_and_runs() {
    // 256 GiB: four 32GiB PC1s (64 GiB each at most) fill it, a C2 needs 182 GiB. The PC1s end
    // one every 250 ms and more keep coming: without a hold, each one ending is replaced by the
    // next and the C2, ahead of them in the queue, never starts (`sealer plan --pledge` found
    // it: a week of pledges beyond what the cluster takes sealed nothing).
    let mut s = sim();
    s.durations = Box::new(|t, _, _| (0, if t == PreCommit1 { 1000 } else { 100 }));
    s.add_worker(spec("w", 256, 64, 0, &[PreCommit1, Commit2]));
    for n in 1..=200u64 {
        s.submit_at((n - 1) * 250, PreCommit1, S32GiB, n);
    }
    s.submit_at(1100, Commit2, S32GiB, 1000);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    for t in (1200..20_000).step_by(250) {
        let seen = seen.clone();
        s.at(t, move |sched| {
            for q in sched.why_queued(10) {
                for (_, _, why) in q.workers {
                    seen.lock().unwrap().push(why.to_string());
                }
            }
        });
    }
    s.run(u64::MAX);
    let c2 = start_of(&s, Commit2, 1000);
    // Overtaken in OVERTAKEN_HOLD passes, it holds the memory; three PC1s end and it starts.
    let overtook = s
        .log
        .iter()
        .filter(|r| r.start && r.task == PreCommit1 && r.time > 1100 && r.time < c2)
        .count();
    assert!(
        overtook <= sched::OVERTAKEN_HOLD as usize + 4,
        "{overtook} PC1s started before the C2 (at {c2} ms)"
    );
    assert!(
        c2 < start_of(&s, PreCommit1, 200),
        "the C2 waited for the PC1s to run out"
    );
    // Meanwhile the PC1s behind it say why they wait.
    let seen = seen.lock().unwrap();
    assert!(
        seen.iter().any(|w| w == "held for a C2 ahead in the queue"),
        "{seen:?}"
    );
}
