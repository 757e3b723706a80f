//! Capacity arithmetic for planning a cluster (`sealer plan`, #20): how many tasks of a type one
//! machine can run at once under its resource table (env overrides included) and its seal space,
//! and which limit stops the next one. The count is the scheduler's own: tasks are added to an
//! empty [`Usage`] with the same `why_not` rule that admits them at run time, so the plan and the
//! scheduler cannot disagree.

use std::fmt;

use resources::{human_bytes, SectorSize, TaskType};

mod bound;
mod post;
mod simulate;
mod tune;

pub use bound::{additions, bound, Addition, Bound, BoundError, Durations, Full, STEPS};
pub use post::{headroom, Headroom, DEADLINES, PARTITIONS_PER_MESSAGE, WINDOW_S};
pub use simulate::{
    max_sealing, simulate, simulate_pledged, Pledged, Searched, Simulated, Stop, MAX_SECTORS,
};
pub use tune::{limits, with_limits, Tuned, STEERED};

use crate::why::NotHere;
use crate::worker::{Need, NoFit, Usage, WorkerSpec};

/// The most tasks counted on one machine: a type whose table entry takes nothing (FIN) has no
/// limit, and is reported as such.
pub const COUNT_CAP: u32 = 10_000;

/// A machine's sealing space for the sectors in flight: what it holds, and what one sector's
/// files take while it is sealed (for lotus's sealing overheads, unsealed 1x + sealed 1x +
/// cache 14.1x of the sector size: 1,030 GiB for a 64GiB sector).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealSpace {
    pub total: u64,
    pub per_sector: u64,
}

/// What stops one more task of a type on a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The worker does not run this task type.
    NotAccepted,
    /// A resource of the table: RAM, RAM + swap, CPUs, GPU, MaxConcurrent.
    Resource(NoFit),
    /// The seal space: one more sector's files do not fit.
    SealSpace { need: u64, free: u64 },
    /// Nothing in the table or the space limits it (counted up to [`COUNT_CAP`]).
    None,
}

/// How many tasks of `task` run at once on one machine, and what stops the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtOnce {
    pub task: TaskType,
    pub count: u32,
    pub limit: Limit,
}

/// The task types whose sector holds seal space while they run: the sealing steps (its files
/// are on the sealing path from AP to FIN).
pub fn holds_seal_space(task: TaskType) -> bool {
    STEPS.contains(&task)
}

/// How many `task`s of `size` sectors the machine of `spec` runs at once, nothing else running
/// there, and the limit the next one meets. `space` counts for the types that hold a sector's
/// files ([`holds_seal_space`]).
pub fn at_once(
    spec: &WorkerSpec,
    task: TaskType,
    size: SectorSize,
    space: Option<SealSpace>,
) -> AtOnce {
    if !spec.tasks.contains(task) {
        return AtOnce {
            task,
            count: 0,
            limit: Limit::NotAccepted,
        };
    }
    let need = Need::of(spec, task, size);
    let mut usage = Usage::default();
    let mut count = 0;
    let limit = loop {
        if let Some(no) = usage.why_not(&spec.resources, &need) {
            break Limit::Resource(no);
        }
        if let Some(s) = space.filter(|s| s.per_sector > 0 && holds_seal_space(task)) {
            let used = u64::from(count) * s.per_sector;
            if used + s.per_sector > s.total {
                break Limit::SealSpace {
                    need: s.per_sector,
                    free: s.total.saturating_sub(used),
                };
            }
        }
        if count == COUNT_CAP {
            break Limit::None;
        }
        usage.add(&need);
        count += 1;
        // PoSt runs one of a kind at a time per worker: the next meets `PoStRunning`.
    };
    AtOnce { task, count, limit }
}

/// [`at_once`] for every task type the machine runs, in [`TaskType::ALL`]'s order.
pub fn machine(spec: &WorkerSpec, size: SectorSize, space: Option<SealSpace>) -> Vec<AtOnce> {
    TaskType::ALL
        .iter()
        .filter(|t| spec.tasks.contains(**t))
        .map(|t| at_once(spec, *t, size, space))
        .collect()
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::NotAccepted => f.write_str("not a task this worker runs"),
            Limit::Resource(NoFit::PoStRunning) => f.write_str("one PoSt of a kind at a time"),
            Limit::Resource(no) => NotHere::Resources(*no).fmt(f),
            Limit::SealSpace { need, free } => write!(
                f,
                "not enough seal space: a sector needs {}, {} free",
                human_bytes(*need),
                human_bytes(*free)
            ),
            Limit::None => write!(f, "no limit (counted up to {COUNT_CAP})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{spec, GIB};
    use resources::ResourceTable;

    const TIB: u64 = 1024 * GIB;

    /// Seed 001's machine: 128 cores, 1 TiB of RAM, no swap, `gpus` 3060 Ti, every sealing task.
    fn seed001(gpus: usize, os_used_gib: u64) -> WorkerSpec {
        let mut s = spec("seed001", 1024, 128, gpus, &TaskType::ALL);
        s.resources.mem_used = os_used_gib * GIB;
        s
    }

    #[test]
    fn seed_001_runs_seven_64gib_pc1s_under_lotuss_table_its_base_stopping_the_eighth() {
        // lotus's 64GiB PC1: 112 GiB in RAM, 128 GiB at peak, 10 MiB shared by all PC1s. RAM
        // alone would take 9 (9 x 112 = 1,008 GiB); RAM + swap (no swap) stops the 8th by the
        // shared 10 MiB: 10 MiB + 8 x 128 GiB is over 1,024 GiB.
        let a = at_once(
            &seed001(1, 0),
            TaskType::PreCommit1,
            SectorSize::S64GiB,
            None,
        );
        assert_eq!(a.count, 7);
        assert_eq!(
            a.limit,
            Limit::Resource(NoFit::VirtualMemory {
                need: 128 * GIB,
                free: 128 * GIB - (10 << 20)
            }),
            "{}",
            a.limit
        );
        assert_eq!(
            a.limit.to_string(),
            "not enough RAM+swap: needs 128 GiB, 127.990 GiB free"
        );
        // 60 GiB used by the OS and the rest when the worker started still leaves 7; 128 GiB
        // leaves 6.
        let pc1 = |os| {
            at_once(
                &seed001(1, os),
                TaskType::PreCommit1,
                SectorSize::S64GiB,
                None,
            )
        };
        assert_eq!(pc1(60).count, 7);
        assert_eq!(pc1(128).count, 6);
    }

    #[test]
    fn the_seeds_own_memory_rule_as_an_override_gives_its_7_125_and_its_6_with_the_os() {
        // "64G: 112G cache + 128G per sector": BaseMinMemory 112 GiB (shared by all PC1s),
        // MinMemory = MaxMemory = 128 GiB: (1,024 - 112) / 128 = 7.125.
        let mut s = seed001(1, 0);
        let mut table = ResourceTable::default();
        let pc1 = table.get_mut(TaskType::PreCommit1, SectorSize::S64GiB);
        pc1.base_min_memory = 112 * GIB;
        pc1.min_memory = 128 * GIB;
        pc1.max_memory = 128 * GIB;
        s.table = table;
        let a = at_once(&s, TaskType::PreCommit1, SectorSize::S64GiB, None);
        assert_eq!(a.count, 7);
        // 112 + 7 x 128 = 1,008 GiB: 16 GiB left for the 8th's 128.
        assert_eq!(
            a.limit,
            Limit::Resource(NoFit::Memory {
                need: 128 * GIB,
                free: 16 * GIB
            })
        );
        assert_eq!(
            a.limit.to_string(),
            "not enough RAM: needs 128 GiB, 16 GiB free"
        );
        // "to be safe, start with 6": what 60 GiB used by the rest of the machine leaves.
        s.resources.mem_used = 60 * GIB;
        let a = at_once(&s, TaskType::PreCommit1, SectorSize::S64GiB, None);
        assert_eq!(a.count, 6, "{}", a.limit);
    }

    #[test]
    fn seal_space_stops_pc1_first_when_it_is_shorter_than_memory() {
        // The seed's 6 TiB for six 64GiB sectors: each takes 16.1 x 64 GiB = 1,030.4 GiB, so
        // 6 TiB holds five.
        let per_sector = 161 * 64 * GIB / 10;
        let space = SealSpace {
            total: 6 * TIB,
            per_sector,
        };
        let a = at_once(
            &seed001(1, 0),
            TaskType::PreCommit1,
            SectorSize::S64GiB,
            Some(space),
        );
        assert_eq!(a.count, 5);
        assert_eq!(
            a.limit,
            Limit::SealSpace {
                need: per_sector,
                free: 6 * TIB - 5 * per_sector
            }
        );
        // A PoSt holds no sector's files: the space does not count for it.
        let w = at_once(
            &seed001(1, 0),
            TaskType::WindowPoSt,
            SectorSize::S64GiB,
            Some(SealSpace {
                total: 0,
                per_sector,
            }),
        );
        assert_eq!(w.count, 1);
        assert_eq!(w.limit, Limit::Resource(NoFit::PoStRunning));
    }

    #[test]
    fn gpu_and_cpu_tasks_meet_their_own_limits() {
        // C2 takes a whole GPU: one per GPU (the seed keeps one of the two 3060 Ti).
        let c2 = |gpus| {
            at_once(
                &seed001(gpus, 0),
                TaskType::Commit2,
                SectorSize::S64GiB,
                None,
            )
        };
        assert_eq!(c2(1).count, 1);
        assert!(matches!(c2(1).limit, Limit::Resource(NoFit::Gpu { .. })));
        assert_eq!(c2(2).count, 2);
        // Without a GPU, PC2 takes 92 % of the cores (117 of 128): one at a time.
        let pc2 = at_once(
            &seed001(0, 0),
            TaskType::PreCommit2,
            SectorSize::S64GiB,
            None,
        );
        assert_eq!(pc2.count, 1);
        assert_eq!(
            pc2.limit,
            Limit::Resource(NoFit::Cpus {
                need: 117,
                free: 11
            })
        );
        // MaxConcurrent from the table (as `PC1_MAX_CONCURRENT=3` sets it).
        let mut s = seed001(1, 0);
        s.table
            .get_mut(TaskType::PreCommit1, SectorSize::S64GiB)
            .max_concurrent = 3;
        let a = at_once(&s, TaskType::PreCommit1, SectorSize::S64GiB, None);
        assert_eq!(
            (a.count, a.limit),
            (3, Limit::Resource(NoFit::MaxConcurrent { max: 3 }))
        );
        // FIN takes nothing in lotus's table; without seal space nothing limits it.
        let fin = at_once(&s, TaskType::Finalize, SectorSize::S64GiB, None);
        assert_eq!((fin.count, fin.limit), (COUNT_CAP, Limit::None));
        // A type the worker does not run.
        let ap_only = spec("ap", 64, 16, 0, &[TaskType::AddPiece]);
        let a = at_once(&ap_only, TaskType::PreCommit1, SectorSize::S64GiB, None);
        assert_eq!((a.count, a.limit), (0, Limit::NotAccepted));
        let all = machine(&ap_only, SectorSize::S64GiB, None);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].task, TaskType::AddPiece);
    }
}
