//! Property: for random workers and random task streams, no worker's accounted resources ever
//! exceed its capacity (checked after every step, on workers running PoSt too: sealing within
//! the machine counting PoSt, each PoSt kind within it by itself, one at a time), and every task
//! that fits some enabled worker eventually runs.

use proptest::prelude::*;
use resources::{SectorSize, TaskType, WorkerResources};
use sched::sim::{spec, Sim, GIB};
use sched::{Assigner, Need, SchedConfig, Usage, WorkerId};

#[derive(Debug, Clone)]
struct W {
    mem_gib: u64,
    swap_gib: u64,
    cpus: u64,
    gpus: usize,
    tasks: Vec<TaskType>,
    pc1_cap: i64,
}

#[derive(Debug, Clone)]
struct T {
    task: TaskType,
    size: SectorSize,
    deal: bool,
    at: u64,
}

fn worker() -> impl Strategy<Value = W> {
    (
        prop::sample::select(vec![1u64, 16, 64, 128, 256, 512, 1024]),
        prop::sample::select(vec![0u64, 64]),
        1u64..=64,
        0usize..=2,
        prop::sample::subsequence(TaskType::ALL.to_vec(), 1..=TaskType::ALL.len()),
        0i64..=3,
    )
        .prop_map(|(mem_gib, swap_gib, cpus, gpus, tasks, pc1_cap)| W {
            mem_gib,
            swap_gib,
            cpus,
            gpus,
            tasks,
            pc1_cap,
        })
}

fn task() -> impl Strategy<Value = T> {
    (
        prop::sample::select(TaskType::ALL.to_vec()),
        prop::sample::select(SectorSize::ALL.to_vec()),
        any::<bool>(),
        0u64..400,
    )
        .prop_map(|(task, size, deal, at)| T {
            task,
            size,
            deal,
            at,
        })
}

fn fits_idle(res: &WorkerResources, need: &Need) -> bool {
    Usage::default().fits(res, need)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn never_over_capacity_and_everything_that_fits_runs(
        workers in prop::collection::vec(worker(), 1..6),
        tasks in prop::collection::vec(task(), 1..80),
        spread in any::<bool>(),
        durations in prop::collection::vec((0u64..30, 1u64..200), TaskType::ALL.len()),
        blip in prop::option::of((0usize..6, 0u64..300, 1u64..300)),
    ) {
        let assigner = if spread { Assigner::Spread } else { Assigner::Utilization };
        let mut sim = Sim::new(SchedConfig {
            assigner,
            windows: 2,
            ..SchedConfig::default()
        });
        sim.durations = Box::new(move |t, _, _| durations[t.index()]);
        let mut specs = Vec::new();
        for (i, w) in workers.iter().enumerate() {
            let mut s = spec(&format!("w{i}"), w.mem_gib, w.cpus, w.gpus, &w.tasks);
            s.resources.mem_swap = w.swap_gib * GIB;
            for size in SectorSize::ALL {
                s.table.get_mut(TaskType::PreCommit1, size).max_concurrent = w.pc1_cap;
            }
            sim.add_worker(s.clone());
            specs.push(s);
        }
        // A worker drops out for a while and comes back.
        if let Some((w, at, len)) = blip {
            let id = WorkerId((w % workers.len()) as u32);
            sim.at(at, move |s| { s.disconnect(id).unwrap(); });
            sim.at(at + len, move |s| { s.reconnect(id).unwrap(); });
        }
        // Tasks arrive over time, in submission order.
        let mut ids = vec![None; tasks.len()];
        let mut order: Vec<usize> = (0..tasks.len()).collect();
        order.sort_by_key(|i| tasks[*i].at);
        let mut now = 0;
        for (n, i) in order.into_iter().enumerate() {
            let t = &tasks[i];
            if t.at > now {
                sim.run(t.at);
                now = t.at;
            }
            let prio = if t.deal { resources::DEAL_SECTOR_PRIORITY } else { 0 };
            ids[i] = Some(sim.submit(t.task, t.size, n as u64, prio));
        }
        // Runs to quiescence; `sim.check` asserts the accounting after every step.
        sim.run(u64::MAX);
        for (i, t) in tasks.iter().enumerate() {
            let id = ids[i].unwrap();
            let fits_somewhere = specs.iter().any(|s| {
                s.tasks.contains(t.task) && fits_idle(&s.resources, &Need::of(s, t.task, t.size))
            });
            prop_assert_eq!(sim.completed(id), fits_somewhere, "task {:?} (fits somewhere: {})", t, fits_somewhere);
        }
        prop_assert_eq!(sim.sched.len(), sim.sched.queued_len(), "only unplaceable requests remain");
    }
}
