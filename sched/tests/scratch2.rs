use resources::{SectorSize, TaskType};
use sched::plan::{Durations, STEPS};
use sched::sim::spec;
use std::collections::BTreeMap;
#[test]
fn over() {
    let m = spec("seed001", 1024, 128, 1, &TaskType::ALL);
    let mut step_s: BTreeMap<TaskType, f64> = STEPS.iter().map(|t| (*t, 300.0)).collect();
    step_s.insert(TaskType::PreCommit1, 4.0 * 3600.0);
    let d = Durations::new(step_s, 75.0 * 60.0);
    let mut sim = sched::sim::Sim::new(sched::SchedConfig::default());
    sim.check = false;
    let times = d.clone();
    sim.durations = Box::new(move |t, _, w| (0, (times.on(w, t) * 1000.0) as u64));
    sim.add_worker(m);
    sim.follow = Some(Box::new(move |task, sector| match task {
        TaskType::AddPiece => vec![(0, TaskType::PreCommit1, sector)],
        TaskType::PreCommit1 => vec![(0, TaskType::PreCommit2, sector)],
        TaskType::PreCommit2 => vec![(4_500_000, TaskType::Commit1, sector)],
        TaskType::Commit1 => vec![(0, TaskType::Commit2, sector)],
        TaskType::Commit2 => vec![(0, TaskType::Finalize, sector)],
        _ => vec![],
    }));
    for k in 0..200u64 {
        sim.submit_at(k * 900_000, TaskType::AddPiece, SectorSize::S64GiB, k + 1);
    }
    sim.run(2 * 86_400_000);
    let mut c: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for r in &sim.log {
        let e = c.entry(format!("{:?}", r.task)).or_default();
        if r.start {
            e.0 += 1
        } else {
            e.1 += 1
        }
    }
    eprintln!("{c:?}");
    let first: Vec<_> = sim
        .log
        .iter()
        .filter(|r| r.start && r.task == TaskType::PreCommit2)
        .take(3)
        .map(|r| r.time)
        .collect();
    eprintln!("first PC2 starts {first:?}");
    eprintln!(
        "{:?}",
        sim.sched
            .worker_stats()
            .iter()
            .map(|w| (
                w.usage.mem_min() >> 30,
                w.usage.mem_max() >> 30,
                w.usage.cpus()
            ))
            .collect::<Vec<_>>()
    );
}
