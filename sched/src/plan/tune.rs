//! Concurrency limits that steer the scheduler towards the bound's mix. The scheduler places a
//! task wherever it fits first, not where the cluster needs it most: a machine that runs PC2 or
//! C2 slowly on its CPUs takes them while a GPU elsewhere would be four times faster, and a
//! machine full of PC1s (each holding its thread and memory for hours) has no room left for
//! the C2 the bound gives it. Capping each long step at what the bound runs there on average
//! (rounded up; a step it does not run there at all is taken off the machine) keeps the
//! bound's solution possible and leaves the rest to the steps that need it. `sealer plan`
//! simulates with and without them and recommends them only where they help.

use resources::{SectorSize, TaskType};

use super::{at_once, Bound};
use crate::worker::WorkerSpec;

/// The steps a limit steers: those operators cap (`PC1_32G_MAX_CONCURRENT`, ...).
pub const STEERED: [TaskType; 3] = [
    TaskType::PreCommit1,
    TaskType::PreCommit2,
    TaskType::Commit2,
];

/// One limit: at most `max` of `task` at once on machine `machine`; 0: not there at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuned {
    pub machine: usize,
    pub task: TaskType,
    pub max: u32,
}

/// The limits the bound's mix implies where they are below what fits on the machine.
pub fn limits(machines: &[WorkerSpec], size: SectorSize, b: &Bound) -> Vec<Tuned> {
    let mut out = Vec::new();
    for t in STEERED {
        // A step the bound does not count (no time) is left alone.
        if !b.mix.iter().any(|x| x.1 == t) {
            continue;
        }
        for (i, m) in machines.iter().enumerate() {
            if !m.tasks.contains(t) {
                continue;
            }
            let avg = b
                .mix
                .iter()
                .find(|x| x.0 == i && x.1 == t)
                .map_or(0.0, |x| x.2);
            let max = (avg - 1e-6).ceil().max(0.0) as u32;
            if max < at_once(m, t, size, None).count {
                out.push(Tuned {
                    machine: i,
                    task: t,
                    max,
                });
            }
        }
    }
    out
}

/// The machines with `limits` set in their tables (or the step taken off where it is 0).
pub fn with_limits(machines: &[WorkerSpec], size: SectorSize, limits: &[Tuned]) -> Vec<WorkerSpec> {
    let mut out = machines.to_vec();
    for l in limits {
        let m = &mut out[l.machine];
        match l.max {
            0 => m.tasks.remove(l.task),
            n => m.table.get_mut(l.task, size).max_concurrent = i64::from(n),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{bound, Durations, STEPS};
    use super::*;
    use crate::sim::spec;
    use std::collections::BTreeMap;

    #[test]
    fn limits_follow_the_bounds_mix_where_machines_differ_in_speed_and_keep_the_bound() {
        // Two 64-core machines running every step; `gpu` has the GPU, `cpu` runs PC2 and C2 on
        // its CPUs (58 threads each: 1h07m and 26m). The bound has `cpu` do C2s and hardly
        // any PC1; left alone, the scheduler fills it with PC1s and gives it PC2s.
        let gpu = spec("gpu", 768, 64, 1, &STEPS);
        let cpu = spec("cpu", 768, 64, 0, &STEPS);
        let min = 60.0;
        let step_s: BTreeMap<TaskType, f64> = [
            (TaskType::AddPiece, 5.0 * min),
            (TaskType::PreCommit1, 210.0 * min),
            (TaskType::PreCommit2, 15.0 * min),
            (TaskType::Commit1, min),
            (TaskType::Commit2, 10.0 * min),
            (TaskType::Finalize, 2.0 * min),
        ]
        .into();
        let mut d = Durations::new(step_s, 75.0 * min);
        d.machine_s.insert(
            ("cpu".into(), TaskType::PreCommit2),
            244.0 * min * 16.0 / 58.0,
        );
        d.machine_s
            .insert(("cpu".into(), TaskType::Commit2), 96.0 * min * 16.0 / 58.0);
        let m = [gpu, cpu];
        let size = SectorSize::S32GiB;
        let b = bound(&m, size, &d, None).unwrap();
        let l = limits(&m, size, &b);
        assert!(
            l.contains(&Tuned {
                machine: 1,
                task: TaskType::PreCommit1,
                max: 1
            }),
            "{l:?}: {b:?}"
        );
        let tuned = with_limits(&m, size, &l);
        // The bound's own solution stays possible.
        let again = bound(&tuned, size, &d, None).unwrap();
        assert!(
            (again.per_day - b.per_day).abs() < 1e-6 * b.per_day,
            "{again:?}"
        );
        // What the scheduler makes of it: tests/plan.rs, "mixed speeds" (BENCHMARKS.md).
    }
}
