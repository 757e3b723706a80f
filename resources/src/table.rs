//! The resource table: what each task needs on a worker, per sector size, with lotus's defaults.

use serde::{Deserialize, Serialize};

use crate::proof::{SectorSize, SECTOR_SIZE_COUNT};
use crate::task::{TaskType, TASK_TYPE_COUNT};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Share of a worker's CPUs a "use every core" task (MaxParallelism = -1) takes: 92%.
pub const PARALLEL_NUM: u64 = 92;
pub const PARALLEL_DENOM: u64 = 100;

/// What one task of a type and sector size needs. Field names on the wire are lotus's.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Resources {
    /// Memory that must be in RAM for decent performance.
    #[serde(rename = "MinMemory")]
    pub min_memory: u64,
    /// Peak memory (RAM + swap).
    #[serde(rename = "MaxMemory")]
    pub max_memory: u64,
    /// GPUs the task uses (fraction allowed).
    #[serde(rename = "GPUUtilization")]
    pub gpu_utilization: f64,
    /// CPU threads without a GPU; -1 = 92% of the worker's CPUs.
    #[serde(rename = "MaxParallelism")]
    pub max_parallelism: i64,
    /// CPU threads when the worker has a GPU; 0 = same as MaxParallelism.
    #[serde(rename = "MaxParallelismGPU")]
    pub max_parallelism_gpu: i64,
    /// Memory shared by all tasks of this type on a worker (e.g. C2 parameters): counted once.
    #[serde(rename = "BaseMinMemory")]
    pub base_min_memory: u64,
    /// Most tasks of this type at once on one worker; 0 = no limit.
    #[serde(rename = "MaxConcurrent")]
    pub max_concurrent: i64,
}

impl Resources {
    /// CPU threads this task takes on a worker with `cpus` CPUs and `gpus` GPUs.
    pub fn threads(&self, cpus: u64, gpus: usize) -> u64 {
        let mut mp = self.max_parallelism;
        if self.gpu_utilization > 0.0 && gpus > 0 && self.max_parallelism_gpu != 0 {
            mp = self.max_parallelism_gpu;
        }
        if mp == -1 {
            let n = cpus * PARALLEL_NUM / PARALLEL_DENOM;
            return if n == 0 { cpus } else { n };
        }
        mp.max(0) as u64
    }

    /// GPU share in thousandths, so that sums are exact.
    pub fn gpu_milli(&self) -> u32 {
        (self.gpu_utilization * 1000.0).round().max(0.0) as u32
    }
}

/// Shorthand for table entries: min, max, max parallelism, base memory.
const fn r(min: u64, max: u64, mp: i64, base: u64) -> Resources {
    Resources {
        min_memory: min,
        max_memory: max,
        gpu_utilization: 0.0,
        max_parallelism: mp,
        max_parallelism_gpu: 0,
        base_min_memory: base,
        max_concurrent: 0,
    }
}

/// Same as `r` for a task that uses the GPU (one whole GPU) with `mpg` threads beside it.
const fn g(min: u64, max: u64, mp: i64, mpg: i64, base: u64) -> Resources {
    Resources {
        min_memory: min,
        max_memory: max,
        gpu_utilization: 1.0,
        max_parallelism: mp,
        max_parallelism_gpu: mpg,
        base_min_memory: base,
        max_concurrent: 0,
    }
}

/// Lotus's default for one task type and sector size (storiface resource table).
pub fn default_resources(task: TaskType, size: SectorSize) -> Resources {
    use SectorSize::*;
    use TaskType::*;
    // The two small devnet sizes need exactly their sector size of memory for every task
    // in the table; only threads and GPU differ.
    let tiny = |mp: i64, gpu: bool| {
        let b = size.bytes();
        if gpu {
            g(b, b, mp, 0, b)
        } else {
            r(b, b, mp, b)
        }
    };
    let small = matches!(size, S2KiB | S8MiB);
    match task {
        AddPiece if small => tiny(1, false),
        AddPiece => match size {
            S512MiB => r(GIB, GIB, 1, GIB),
            S32GiB => r(4 * GIB, 4 * GIB, 1, GIB),
            _ => r(8 * GIB, 8 * GIB, 1, GIB),
        },
        PreCommit1 | Unseal if small => tiny(1, false),
        PreCommit1 | Unseal => match size {
            S512MiB => r(768 * MIB, GIB, 1, MIB),
            S32GiB => r(56 * GIB, 64 * GIB, 1, 10 * MIB),
            _ => r(112 * GIB, 128 * GIB, 1, 10 * MIB),
        },
        PreCommit2 if small => tiny(-1, false),
        PreCommit2 => match size {
            S512MiB => r(GIB, 3 * 512 * MIB, -1, GIB),
            S32GiB => g(15 * GIB, 15 * GIB, -1, 6, GIB),
            _ => g(30 * GIB, 30 * GIB, -1, 6, GIB),
        },
        Commit1 if small => tiny(0, false),
        Commit1 => r(GIB, GIB, 0, GIB),
        Commit2 if small => tiny(1, true),
        Commit2 => match size {
            S512MiB => g(GIB, 3 * 512 * MIB, 1, 0, 10 * GIB),
            S32GiB => g(30 * GIB, 150 * GIB, -1, 6, 32 * GIB),
            _ => g(60 * GIB, 190 * GIB, -1, 6, 64 * GIB),
        },
        Fetch => r(MIB, MIB, 0, 0),
        WindowPoSt if small => tiny(1, true),
        WindowPoSt => match size {
            S512MiB => g(GIB, 3 * 512 * MIB, 1, 0, 10 * GIB),
            S32GiB => g(30 * GIB, 96 * GIB, -1, 6, 32 * GIB),
            _ => g(60 * GIB, 120 * GIB, -1, 6, 64 * GIB),
        },
        WinningPoSt if small => tiny(1, true),
        WinningPoSt => match size {
            // Lotus's table really has 2KiB here for 512MiB sectors.
            S512MiB => g(2 * KIB, 2 * KIB, 1, 0, 10 * GIB),
            S32GiB => g(GIB, GIB, -1, 6, 32 * GIB),
            _ => g(GIB, GIB, -1, 6, 64 * GIB),
        },
        // No entry in lotus's table: these take nothing.
        Finalize | ReadUnsealed => Resources::default(),
    }
}

/// A full table: one `Resources` per task type and sector size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceTable {
    entries: [[Resources; SECTOR_SIZE_COUNT]; TASK_TYPE_COUNT],
}

impl Default for ResourceTable {
    fn default() -> Self {
        let mut entries = [[Resources::default(); SECTOR_SIZE_COUNT]; TASK_TYPE_COUNT];
        for t in TaskType::ALL {
            for s in SectorSize::ALL {
                entries[t.index()][s.index()] = default_resources(t, s);
            }
        }
        ResourceTable { entries }
    }
}

impl ResourceTable {
    pub fn get(&self, task: TaskType, size: SectorSize) -> &Resources {
        &self.entries[task.index()][size.index()]
    }

    pub fn get_mut(&mut self, task: TaskType, size: SectorSize) -> &mut Resources {
        &mut self.entries[task.index()][size.index()]
    }

    /// Every entry, task type by task type.
    pub fn iter(&self) -> impl Iterator<Item = (TaskType, SectorSize, &Resources)> {
        TaskType::ALL.into_iter().flat_map(move |t| {
            SectorSize::ALL
                .into_iter()
                .map(move |s| (t, s, self.get(t, s)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SectorSize::*;
    use TaskType::*;

    #[test]
    fn threads_rule() {
        let all = Resources {
            max_parallelism: -1,
            ..Default::default()
        };
        for (cpus, want) in [
            (12, 11),
            (16, 14),
            (24, 22),
            (32, 29),
            (64, 58),
            (128, 117),
            (1, 1),
        ] {
            assert_eq!(all.threads(cpus, 0), want, "{cpus} cpus");
        }
        let c2 = default_resources(Commit2, S32GiB);
        assert_eq!(c2.threads(64, 0), 58);
        assert_eq!(c2.threads(64, 1), 6);
        let c2small = default_resources(Commit2, S2KiB);
        assert_eq!(
            c2small.threads(64, 1),
            1,
            "MaxParallelismGPU 0 inherits MaxParallelism"
        );
        assert_eq!(default_resources(Commit1, S32GiB).threads(64, 0), 0);
    }

    #[test]
    fn table_matches_lotus() {
        let t = ResourceTable::default();
        let pc1 = t.get(PreCommit1, S32GiB);
        assert_eq!(
            (pc1.min_memory, pc1.max_memory, pc1.base_min_memory),
            (56 * GIB, 64 * GIB, 10 * MIB)
        );
        assert_eq!(t.get(Unseal, S64GiB), t.get(PreCommit1, S64GiB));
        let c2 = t.get(Commit2, S64GiB);
        assert_eq!(
            (c2.min_memory, c2.max_memory, c2.base_min_memory),
            (60 * GIB, 190 * GIB, 64 * GIB)
        );
        assert_eq!(
            (c2.max_parallelism, c2.max_parallelism_gpu, c2.gpu_milli()),
            (-1, 6, 1000)
        );
        let pc2 = t.get(PreCommit2, S512MiB);
        assert_eq!((pc2.max_memory, pc2.gpu_milli()), (1536 * MIB, 0));
        assert_eq!(t.get(WinningPoSt, S512MiB).max_memory, 2 * KIB);
        assert_eq!(t.get(WindowPoSt, S32GiB).max_memory, 96 * GIB);
        assert_eq!(t.get(Fetch, S32GiB).min_memory, MIB);
        assert_eq!(*t.get(Finalize, S32GiB), Resources::default());
        for s in [S2KiB, S8MiB] {
            for task in [
                AddPiece,
                PreCommit1,
                PreCommit2,
                Commit1,
                Commit2,
                WindowPoSt,
                WinningPoSt,
            ] {
                let e = t.get(task, s);
                assert_eq!(
                    (e.min_memory, e.max_memory, e.base_min_memory),
                    (s.bytes(), s.bytes(), s.bytes())
                );
            }
        }
        assert!(t.iter().all(|(_, _, e)| e.max_concurrent == 0));
        assert_eq!(t.iter().count(), TASK_TYPE_COUNT * SECTOR_SIZE_COUNT);
    }
}
