//! Synthetic clusters for the benchmark and the cost tests: lotus's BenchmarkTrySched shapes and a
//! large mixed cluster with several worker kinds, task types, sector sizes and sector locality.

use std::collections::HashMap;
use std::sync::Arc;

use resources::{SectorRef, SectorSize, TaskType, DEAL_SECTOR_PRIORITY};

use crate::request::{TaskRequest, WorkerId};
use crate::scheduler::{SchedConfig, Scheduler};
use crate::selector::{AllocSelector, ExistingSelector, Selector, StorageView, TaskSelector};
use crate::sim::{spec, GIB};

/// A small deterministic generator (splitmix64), so every run builds the same cluster.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Picks from `(weight, value)` pairs.
    pub fn pick<T: Copy>(&mut self, table: &[(u64, T)]) -> T {
        let total: u64 = table.iter().map(|(w, _)| w).sum();
        let mut r = self.below(total);
        for (w, v) in table {
            if r < *w {
                return *v;
            }
            r -= w;
        }
        table[table.len() - 1].1
    }
}

/// Lotus's BenchmarkTrySched shape: `windows` open windows (one worker each: 128 GiB, 32 CPUs,
/// one GPU) and `queued` 2KiB C2 requests with the task selector.
pub fn lotus_case(windows: usize, queued: usize) -> Scheduler {
    let mut s = Scheduler::new(SchedConfig {
        windows: 1,
        ..SchedConfig::default()
    });
    for i in 0..windows {
        s.add_worker(spec(&format!("w{i}"), 128, 32, 1, &[TaskType::Commit2]));
    }
    let sel: Arc<dyn Selector> = Arc::new(TaskSelector);
    for n in 0..queued {
        s.submit(TaskRequest::for_sector(
            SectorRef::new(1000, n as u64, SectorSize::S2KiB.seal_proof()),
            TaskType::Commit2,
            0,
            sel.clone(),
        ));
    }
    s
}

/// Which worker holds each sector, and which workers have sealing space.
pub struct ClusterStorage {
    holder: HashMap<u64, WorkerId>,
    room: Vec<bool>,
}

impl StorageView for ClusterStorage {
    fn holders(&self, sector: &SectorRef, out: &mut Vec<WorkerId>) {
        out.extend(self.holder.get(&sector.number));
    }

    fn can_allocate(&self, worker: WorkerId, _size: SectorSize) -> bool {
        self.room.get(worker.0 as usize).copied().unwrap_or(false)
    }
}

/// A mixed cluster: `workers` workers of four kinds (PC1 boxes, PC2 boxes with a GPU, C2 boxes
/// with two GPUs, PoSt boxes), one in ten without sealing space, and `queued` requests of every
/// task type over 2KiB to 64GiB sectors, one in ten with deal priority. Sectors past PC1 are held
/// by one worker (PC1 box before PC2, PC2 box after), so PC2/C1/FIN/GET go through the existing
/// selector (C1 without fetch), AP/PC1 through the alloc selector, C2 and PoSt through the task
/// selector.
pub fn mixed_cluster(workers: usize, queued: usize, seed: u64) -> Scheduler {
    use TaskType::*;
    let mut rng = Rng::new(seed);
    let mut s = Scheduler::new(SchedConfig::default());
    let mut pc1_boxes = Vec::new();
    let mut pc2_boxes = Vec::new();
    let mut room = Vec::new();
    for i in 0..workers {
        let kind = rng.pick(&[(40, 0u8), (30, 1), (20, 2), (10, 3)]);
        let mut w = match kind {
            0 => spec(
                &format!("pc1-{i}"),
                512,
                64,
                0,
                &[AddPiece, PreCommit1, Fetch, Finalize],
            ),
            1 => spec(
                &format!("pc2-{i}"),
                256,
                64,
                1,
                &[PreCommit2, Commit1, Fetch, Finalize],
            ),
            2 => spec(&format!("c2-{i}"), 512, 64, 2, &[Commit1, Commit2]),
            _ => spec(&format!("post-{i}"), 256, 32, 1, &[WindowPoSt, WinningPoSt]),
        };
        if kind == 2 {
            w.resources.mem_swap = 256 * GIB;
        }
        let id = s.add_worker(w);
        match kind {
            0 => pc1_boxes.push(id),
            1 => pc2_boxes.push(id),
            _ => {}
        }
        room.push(rng.below(10) != 0);
    }
    let mut holder = HashMap::new();
    let mut reqs = Vec::with_capacity(queued);
    for n in 0..queued as u64 {
        let task = rng.pick(&[
            (15, AddPiece),
            (25, PreCommit1),
            (20, PreCommit2),
            (10, Commit1),
            (15, Commit2),
            (10, Finalize),
            (3, Fetch),
            (1, WindowPoSt),
            (1, WinningPoSt),
        ]);
        let size = rng.pick(&[
            (60, SectorSize::S32GiB),
            (20, SectorSize::S64GiB),
            (10, SectorSize::S512MiB),
            (10, SectorSize::S2KiB),
        ]);
        let owners = match task {
            PreCommit2 | Fetch => &pc1_boxes,
            Commit1 | Finalize => &pc2_boxes,
            _ => &pc1_boxes[..0],
        };
        if !owners.is_empty() {
            holder.insert(n, owners[rng.below(owners.len() as u64) as usize]);
        }
        let deal = rng.below(10) == 0;
        reqs.push((n, task, size, deal));
    }
    let storage: Arc<dyn StorageView> = Arc::new(ClusterStorage { holder, room });
    let alloc: Arc<dyn Selector> = Arc::new(AllocSelector {
        storage: storage.clone(),
    });
    let fetch: Arc<dyn Selector> = Arc::new(ExistingSelector {
        storage: storage.clone(),
        allow_fetch: true,
    });
    let local: Arc<dyn Selector> = Arc::new(ExistingSelector {
        storage,
        allow_fetch: false,
    });
    let any: Arc<dyn Selector> = Arc::new(TaskSelector);
    for (n, task, size, deal) in reqs {
        let selector = match task {
            AddPiece | PreCommit1 => alloc.clone(),
            PreCommit2 | Finalize | Fetch => fetch.clone(),
            Commit1 => local.clone(),
            _ => any.clone(),
        };
        s.submit(TaskRequest::for_sector(
            SectorRef::new(1000, n, size.seal_proof()),
            task,
            if deal { DEAL_SECTOR_PRIORITY } else { 0 },
            selector,
        ));
    }
    s
}
