//! The bound on sectors a day a cluster can seal: a linear program over the average number of
//! tasks of each sealing step each machine runs at once. Every sector goes through every step
//! once, so each step's machines must finish `S` of them a second (Little's law: `n / d` tasks a
//! second with `n` at once taking `d` each); each machine's mix must fit its RAM, RAM + swap,
//! CPUs and GPUs on average (a step's base memory for at least the share of the time its tasks
//! run), no step more at once than [`at_once`] allows there; and the sectors in flight must fit
//! the seal space, in whole sectors.
//! The scheduler can reach this bound at best: it places whole tasks, and cannot always keep
//! every machine full.

use std::collections::BTreeMap;

use microlp::{ComparisonOp, OptimizationDirection, Problem, Variable};
use resources::{SectorSize, TaskType};

use super::at_once;
use crate::worker::{Need, WorkerSpec};

/// The steps every sector goes through, in order.
pub const STEPS: [TaskType; 6] = TaskType::STEPS;

/// How long each step takes (seconds), and how long a sector waits besides (for its seed,
/// batches, messages), holding its seal space all the while.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Durations {
    pub step_s: BTreeMap<TaskType, f64>,
    /// A machine's own time for a step, by the machine's name, where it differs from
    /// `step_s` (a step on its CPUs where the others have a GPU; what the cluster recorded).
    pub machine_s: BTreeMap<(String, TaskType), f64>,
    pub wait_s: f64,
}

impl Durations {
    pub fn new(step_s: BTreeMap<TaskType, f64>, wait_s: f64) -> Durations {
        Durations {
            step_s,
            machine_s: BTreeMap::new(),
            wait_s,
        }
    }

    /// The step's time where no machine has its own.
    pub fn of(&self, t: TaskType) -> f64 {
        self.step_s.get(&t).copied().unwrap_or(0.0)
    }

    /// The step's time on machine `name`.
    pub fn on(&self, name: &str, t: TaskType) -> f64 {
        self.machine_s
            .get(&(name.to_string(), t))
            .copied()
            .unwrap_or_else(|| self.of(t))
    }
}

/// What is full at the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Full {
    Ram(usize),
    RamSwap(usize),
    Cpus(usize),
    Gpus(usize),
    /// As many tasks of the step at once on the machine as fit there ([`at_once`]).
    AtOnce(usize, TaskType),
    /// The cluster's seal space, with every sector in flight holding its files.
    SealSpace,
}

/// The bound, and what makes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    /// Sectors a day.
    pub per_day: f64,
    /// Each step alone, given every machine that runs it and nothing else there: sectors a day.
    /// The smallest is the step that stops the cluster when the machines do not share steps.
    pub alone: Vec<(TaskType, f64)>,
    /// The solution's mix: (machine, step, average tasks at once), those above zero.
    pub mix: Vec<(usize, TaskType, f64)>,
    /// Sectors in flight at the bound (Little's law): the mix's tasks and the sectors waiting.
    pub in_flight: f64,
    /// What is full in the solution found (a linear program may have several solutions:
    /// [`additions`] says which additions raise the bound).
    pub full: Vec<Full>,
}

/// One `<=` constraint: what is full when it binds, its terms, its right-hand side.
type Check = (Full, Vec<(Variable, f64)>, f64);

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BoundError {
    #[error("no machine runs {0:?}: no sector can be sealed")]
    NoMachineFor(TaskType),
    #[error("the bound's linear program has no solution: {0}")]
    Solver(String),
}

/// The bound for `machines` sealing sectors of `size` with these durations. `seal_space` is the
/// cluster's space for sectors in flight and what one takes (`None`: not limited).
pub fn bound(
    machines: &[WorkerSpec],
    size: SectorSize,
    d: &Durations,
    seal_space: Option<(u64, u64)>,
) -> Result<Bound, BoundError> {
    const DAY: f64 = 86_400.0;
    // How many of each step fit at once on each machine, counted once: machine, then STEPS.
    let at: Vec<[u32; STEPS.len()]> = machines
        .iter()
        .map(|m| STEPS.map(|t| at_once(m, t, size, None).count))
        .collect();
    let cap = |i: usize, t: TaskType| at[i][STEPS.iter().position(|s| *s == t).expect("a step")];
    // Every step needs a machine, even one whose time is counted as nothing.
    for t in STEPS {
        if (0..machines.len()).all(|i| cap(i, t) == 0) {
            return Err(BoundError::NoMachineFor(t));
        }
    }
    // A step some machine does in no time limits nothing; the others each need their time.
    let runs = |i: usize, t: TaskType| machines[i].tasks.contains(t) && cap(i, t) > 0;
    let secs = |i: usize, t: TaskType| d.on(&machines[i].name, t);
    let steps: Vec<TaskType> = STEPS
        .iter()
        .copied()
        .filter(|t| (0..machines.len()).all(|i| !runs(i, *t) || secs(i, *t) > 0.0))
        .collect();
    let alone: Vec<(TaskType, f64)> = steps
        .iter()
        .map(|t| {
            let a: f64 = (0..machines.len())
                .filter(|i| runs(*i, *t))
                .map(|i| f64::from(cap(i, *t)) / secs(i, *t) * DAY)
                .sum();
            (*t, a)
        })
        .collect();
    let mut lp = Problem::new(OptimizationDirection::Maximize);
    // Sectors a day (the objective).
    let s = lp.add_var(1.0, (0.0, f64::INFINITY));
    // (machine, step) -> tasks at once on average.
    let mut n: Vec<(usize, TaskType, Variable)> = Vec::new();
    let mut checks: Vec<Check> = Vec::new();
    for (i, m) in machines.iter().enumerate() {
        let here: Vec<TaskType> = steps.iter().copied().filter(|t| runs(i, *t)).collect();
        let needs: Vec<Need> = here.iter().map(|t| Need::of(m, *t, size)).collect();
        let caps: Vec<u32> = here.iter().map(|t| cap(i, *t)).collect();
        let res = &m.resources;
        let vars: Vec<Variable> = here
            .iter()
            .map(|_| lp.add_var(0.0, (0.0, f64::INFINITY)))
            .collect();
        for ((t, v), cap) in here.iter().zip(&vars).zip(&caps) {
            n.push((i, *t, *v));
            checks.push((Full::AtOnce(i, *t), vec![(*v, 1.0)], f64::from(*cap)));
        }
        // A step's base memory is held while any of its tasks runs: with n of them on average
        // and at most `cap` at once, at least n / cap of the time. Charging base / cap a task
        // keeps the bound above what the scheduler (which charges the base only then) reaches.
        let row = |f: &dyn Fn(&Need) -> f64, with_base: bool| -> Vec<(Variable, f64)> {
            vars.iter()
                .zip(&needs)
                .zip(&caps)
                .map(|((v, n), cap)| {
                    let base = if with_base {
                        n.base_memory as f64 / f64::from((*cap).max(1))
                    } else {
                        0.0
                    };
                    (*v, f(n) + base)
                })
                .collect()
        };
        let vmem =
            (res.mem_physical + res.mem_swap).saturating_sub(res.mem_used + res.mem_swap_used);
        checks.push((
            Full::Ram(i),
            row(&|n| n.min_memory as f64, true),
            res.mem_physical as f64,
        ));
        checks.push((
            Full::RamSwap(i),
            row(&|n| n.max_memory as f64, true),
            vmem as f64,
        ));
        checks.push((
            Full::Cpus(i),
            row(&|n| n.threads as f64, false),
            res.cpus as f64,
        ));
        if !res.gpus.is_empty() {
            let gpus = res.gpus.len() as f64 * 1000.0;
            checks.push((Full::Gpus(i), row(&|n| f64::from(n.gpu_milli), false), gpus));
        }
    }
    // Each step's machines finish S sectors a day: sum of n / d (a second) * DAY >= S.
    for t in &steps {
        let mut row: Vec<(Variable, f64)> = n
            .iter()
            .filter(|x| x.1 == *t)
            .map(|x| (x.2, DAY / secs(x.0, *t)))
            .collect();
        row.push((s, -1.0));
        lp.add_constraint(row.as_slice(), ComparisonOp::Ge, 0.0);
    }
    if let Some((total, per_sector)) = seal_space.filter(|(_, p)| *p > 0) {
        // Sectors in flight (Little's law: the steps' tasks at once, and S a day waiting for
        // their time between steps) within the whole sectors' files the space holds.
        let mut row: Vec<(Variable, f64)> = n.iter().map(|x| (x.2, 1.0)).collect();
        row.push((s, d.wait_s / DAY));
        checks.push((Full::SealSpace, row, (total / per_sector) as f64));
    }
    for (_, row, rhs) in &checks {
        lp.add_constraint(row.as_slice(), ComparisonOp::Le, *rhs);
    }
    let sol = lp.solve().map_err(|e| BoundError::Solver(e.to_string()))?;
    let full = checks
        .iter()
        .filter(|(_, row, rhs)| {
            let lhs: f64 = row.iter().map(|(v, c)| sol[*v] * c).sum();
            *rhs > 0.0 && lhs >= rhs * (1.0 - 1e-6)
        })
        .map(|c| c.0)
        .collect();
    // Sectors in flight: each step's tasks at once, scaled to finish exactly S a day (where the
    // solution has room to spare), and the sectors waiting.
    let mut in_flight = sol[s] * d.wait_s / DAY;
    for t in &steps {
        let on: Vec<&(usize, TaskType, Variable)> = n.iter().filter(|x| x.1 == *t).collect();
        let at: f64 = on.iter().map(|x| sol[x.2]).sum();
        let rate: f64 = on.iter().map(|x| sol[x.2] * DAY / secs(x.0, *t)).sum();
        if rate > 0.0 {
            in_flight += at * sol[s] / rate;
        }
    }
    Ok(Bound {
        per_day: sol[s],
        in_flight,
        alone,
        mix: n
            .iter()
            .filter(|x| sol[x.2] > 1e-9)
            .map(|x| (x.0, x.1, sol[x.2]))
            .collect(),
        full,
    })
}

/// One thing an operator could add to the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addition {
    /// Half as much RAM again on the machine.
    Ram(usize),
    /// Half as many CPU cores again.
    Cpus(usize),
    /// One GPU.
    Gpu(usize),
    /// A machine like this one, running the same tasks.
    Machine(usize),
    /// Half as much seal space again.
    SealSpace,
}

/// Each [`Addition`] that raises the bound, with the bound it gives, the largest gain first.
pub fn additions(
    machines: &[WorkerSpec],
    size: SectorSize,
    d: &Durations,
    seal_space: Option<(u64, u64)>,
) -> Result<Vec<(Addition, f64)>, BoundError> {
    let now = bound(machines, size, d, seal_space)?.per_day;
    let mut tries: Vec<(Addition, Vec<WorkerSpec>)> = Vec::new();
    for (i, m) in machines.iter().enumerate() {
        let with = |f: &dyn Fn(&mut WorkerSpec)| {
            let mut v = machines.to_vec();
            f(&mut v[i]);
            v
        };
        let r = &m.resources;
        let ram = with(&|m| m.resources.mem_physical += r.mem_physical / 2);
        tries.push((Addition::Ram(i), ram));
        tries.push((Addition::Cpus(i), with(&|m| m.resources.cpus += r.cpus / 2)));
        let gpu = format!("GPU {}", r.gpus.len());
        tries.push((
            Addition::Gpu(i),
            with(&|m| m.resources.gpus.push(gpu.clone())),
        ));
        let mut more = machines.to_vec();
        more.push(m.clone());
        tries.push((Addition::Machine(i), more));
    }
    let mut gains = Vec::new();
    for (a, ms) in tries {
        let b = bound(&ms, size, d, seal_space)?.per_day;
        if b > now * (1.0 + 1e-6) {
            gains.push((a, b));
        }
    }
    if let Some((total, per)) = seal_space {
        let b = bound(machines, size, d, Some((total + total / 2, per)))?.per_day;
        if b > now * (1.0 + 1e-6) {
            gains.push((Addition::SealSpace, b));
        }
    }
    gains.sort_by(|x, y| y.1.total_cmp(&x.1));
    Ok(gains)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{spec, GIB};

    const H: f64 = 3600.0;

    fn durations(pc1_h: f64, c2_h: f64, others_s: f64, wait_s: f64) -> Durations {
        let mut step_s: BTreeMap<TaskType, f64> = STEPS.iter().map(|t| (*t, others_s)).collect();
        step_s.insert(TaskType::PreCommit1, pc1_h * H);
        step_s.insert(TaskType::Commit2, c2_h * H);
        Durations::new(step_s, wait_s)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-3 * b.abs().max(1.0)
    }

    #[test]
    fn one_machine_with_long_pc1s_seals_its_pc1s_at_once_over_their_time() {
        // Seed 001's machine: 7 PC1s of 64GiB at once (lotus's table), 4 h each, the other
        // steps a second: 7 x 24 / 4 = 42 sectors a day.
        let m = spec("seed001", 1024, 128, 1, &TaskType::ALL);
        let b = bound(
            &[m],
            SectorSize::S64GiB,
            &durations(4.0, 1.0 / H, 1.0, 0.0),
            None,
        )
        .unwrap();
        assert!(close(b.per_day, 42.0), "{b:?}");
        assert!(
            b.full.contains(&Full::AtOnce(0, TaskType::PreCommit1)),
            "{b:?}"
        );
        let pc1 = b
            .alone
            .iter()
            .find(|a| a.0 == TaskType::PreCommit1)
            .unwrap();
        assert!(close(pc1.1, 42.0));
    }

    #[test]
    fn the_slowest_step_on_machines_of_its_own_sets_the_bound() {
        // A: everything but C2; B: C2 only, one GPU, 1 h a C2: 24 a day, under A's 42 PC1s.
        let steps_a: Vec<TaskType> = STEPS
            .iter()
            .copied()
            .filter(|t| *t != TaskType::Commit2)
            .collect();
        let a = spec("a", 1024, 128, 0, &steps_a);
        let b = spec("b", 256, 32, 1, &[TaskType::Commit2]);
        let d = durations(4.0, 1.0, 1.0, 0.0);
        let r = bound(&[a, b], SectorSize::S64GiB, &d, None).unwrap();
        assert!(close(r.per_day, 24.0), "{r:?}");
        assert!(r.full.contains(&Full::Gpus(1)), "{r:?}");
        let slowest = r.alone.iter().min_by(|x, y| x.1.total_cmp(&y.1)).unwrap();
        assert_eq!(slowest.0, TaskType::Commit2);
        // No machine for C2: no bound, and the error names the step.
        let a = spec("a", 1024, 128, 0, &steps_a);
        assert_eq!(
            bound(&[a], SectorSize::S64GiB, &d, None),
            Err(BoundError::NoMachineFor(TaskType::Commit2))
        );
    }

    #[test]
    fn seal_space_bounds_the_sectors_in_flight() {
        // 6 TiB for 64GiB sectors of 1,030.4 GiB each: 5 in flight (5.96 of a sector's files
        // fit, but not a sixth whole one). A sector is in flight 7.75 h (PC1 4 h, the other five
        // steps half an hour each, 75 min of waiting): 5 x 24 / 7.75 = 15.5 sectors a day,
        // under the 42 that the PC1s would allow.
        let m = spec("seed001", 1024, 128, 1, &TaskType::ALL);
        let d = durations(4.0, 0.5, 0.5 * H, 75.0 * 60.0);
        let per_sector = 161 * 64 * GIB / 10;
        let total = 6 * 1024 * GIB;
        let r = bound(&[m], SectorSize::S64GiB, &d, Some((total, per_sector))).unwrap();
        let in_flight_h = 4.0 + 0.5 + 4.0 * 0.5 + 1.25;
        let want = 5.0 * 24.0 / in_flight_h;
        assert!(close(r.per_day, want), "{} vs {want}: {r:?}", r.per_day);
        assert_eq!(r.full, vec![Full::SealSpace]);
    }

    #[test]
    fn what_to_add_is_what_raises_the_bound() {
        // One GPU between two machines, and only the first runs the GPU steps: a GPU there (or
        // a machine like it) raises the bound; a GPU on the other one does not.
        let gpu = spec("gpu", 768, 64, 1, &STEPS);
        let cpu = spec(
            "cpu",
            768,
            64,
            0,
            &[
                TaskType::AddPiece,
                TaskType::PreCommit1,
                TaskType::Commit1,
                TaskType::Finalize,
            ],
        );
        let mut d = durations(3.5, 10.0 / 60.0, 60.0, 0.0);
        d.step_s.insert(TaskType::PreCommit2, 0.25 * H);
        let m = [gpu, cpu];
        let now = bound(&m, SectorSize::S32GiB, &d, None).unwrap().per_day;
        let add = additions(&m, SectorSize::S32GiB, &d, None).unwrap();
        assert!(
            add.iter()
                .any(|a| a.0 == Addition::Gpu(0) && a.1 > now * 1.5),
            "{add:?}"
        );
        assert!(add.iter().any(|a| a.0 == Addition::Machine(0)), "{add:?}");
        assert!(!add.iter().any(|a| a.0 == Addition::Gpu(1)), "{add:?}");
        assert!(
            add.windows(2).all(|w| w[0].1 >= w[1].1),
            "largest gain first"
        );
    }

    #[test]
    fn a_machine_with_its_own_time_for_a_step_counts_at_its_own_rate() {
        // C2 on `fast` (1 h) and on `slow` (its own 3 h), one at a time on each (one GPU
        // each); every other step on `rest`, a second each: 24 + 8 = 32 sectors a day, with
        // two C2s running all the time.
        let fast = spec("fast", 256, 32, 1, &[TaskType::Commit2]);
        let slow = spec("slow", 256, 32, 1, &[TaskType::Commit2]);
        let others: Vec<TaskType> = STEPS
            .iter()
            .copied()
            .filter(|t| *t != TaskType::Commit2)
            .collect();
        let rest = spec("rest", 4096, 512, 0, &others);
        let mut d = durations(1.0 / H, 1.0, 1.0, 0.0);
        d.machine_s
            .insert(("slow".to_string(), TaskType::Commit2), 3.0 * H);
        assert_eq!(d.on("slow", TaskType::Commit2), 3.0 * H);
        assert_eq!(d.on("fast", TaskType::Commit2), H);
        let m = [fast, slow, rest];
        let b = bound(&m, SectorSize::S32GiB, &d, None).unwrap();
        assert!(close(b.per_day, 32.0), "{b:?}");
        let c2 = b.alone.iter().find(|a| a.0 == TaskType::Commit2).unwrap();
        assert!(close(c2.1, 32.0), "{b:?}");
        // Sectors in flight: the two C2s, and the other steps' 32 seconds a day of tasks.
        assert!(
            close(b.in_flight, 2.0 + 5.0 * 32.0 / 86_400.0),
            "{}",
            b.in_flight
        );
        // A step some machine does in no time limits nothing.
        d.machine_s
            .insert(("slow".to_string(), TaskType::Commit2), 0.0);
        let b = bound(&m, SectorSize::S32GiB, &d, None).unwrap();
        assert!(b.per_day > 1000.0, "{b:?}");
    }

    #[test]
    fn a_base_memory_counts_only_while_its_step_runs() {
        // 300 GiB, PC1 and C2 of 64GiB allowed; another machine does every C2. The scheduler
        // keeps 2 PC1s here (2 x 128 GiB + 10 MiB); charging C2's 64 GiB base all the time would
        // leave room for 1.84.
        let pc1 = spec(
            "pc1",
            300,
            64,
            1,
            &[TaskType::PreCommit1, TaskType::Commit2],
        );
        let rest = spec(
            "rest",
            1024,
            128,
            1,
            &[
                TaskType::AddPiece,
                TaskType::PreCommit2,
                TaskType::Commit1,
                TaskType::Commit2,
                TaskType::Finalize,
            ],
        );
        let d = durations(4.0, 1.0 / 60.0, 1.0, 0.0);
        let b = bound(&[pc1, rest], SectorSize::S64GiB, &d, None).unwrap();
        // 2 PC1s of 4 h at once, on the only machine running PC1: 2 x 6 = 12 a day.
        assert!(close(b.per_day, 12.0), "{b:?}");
    }
}
