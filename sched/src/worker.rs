//! A worker as the scheduler sees it: what it reported, and the resources committed to it.
//!
//! Everything placed on a worker counts against its capacity from the moment it is assigned to a
//! window until it finishes: tasks in windows, preparing, prepared and running. A window is
//! filled only with what fits beside all of that (lotus checks an empty pool, lotus #7868).

use resources::{
    ResourceTable, SectorSize, TaskSet, TaskType, WorkerResources, SECTOR_SIZE_COUNT,
    TASK_TYPE_COUNT,
};
use serde::{Deserialize, Serialize};

use std::collections::{BTreeMap, HashMap};

use resources::topology::{CpuSet, Topology};

use crate::cpus::CpuMap;
use crate::request::RequestId;

/// What a worker reports when it connects.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// Host name (or the worker's `--name`).
    pub name: String,
    pub resources: WorkerResources,
    /// The resource table with this worker's env overrides applied.
    pub table: ResourceTable,
    /// Task types it accepts.
    pub tasks: TaskSet,
    /// The machine's CPU layout and the CPUs the worker may use (`--cpus`): where it reports
    /// them, running tasks are placed on concrete CPUs (`cpus::CpuMap`).
    pub cpus: Option<(Topology, CpuSet)>,
    /// Task types kept to some of those CPUs (the worker's `worker.toml`).
    pub task_cpus: BTreeMap<TaskType, CpuSet>,
}

/// What one task takes on one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Need {
    pub task: TaskType,
    pub size: SectorSize,
    pub min_memory: u64,
    pub max_memory: u64,
    pub base_memory: u64,
    pub threads: u64,
    pub gpu_milli: u32,
    pub max_concurrent: u32,
}

impl Need {
    pub fn of(spec: &WorkerSpec, task: TaskType, size: SectorSize) -> Need {
        let r = spec.table.get(task, size);
        Need {
            task,
            size,
            min_memory: r.min_memory,
            max_memory: r.max_memory,
            base_memory: r.base_min_memory,
            threads: r.threads(spec.resources.cpus, spec.resources.gpus.len()),
            gpu_milli: r.gpu_milli(),
            max_concurrent: r.max_concurrent.clamp(0, u32::MAX as i64) as u32,
        }
    }
}

/// Resources committed to one kind of work on a worker: the tasks, what they take, and the
/// base memory their (type, size) shares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub mem_min: u64,
    pub mem_max: u64,
    pub cpus: u64,
    pub gpu_milli: u32,
    /// Tasks of each type (indexed by `TaskType::index()`).
    pub count: [u32; TASK_TYPE_COUNT],
    /// Tasks sharing each (type, size) base memory, and the base memory accounted for them.
    base_refs: [[u32; SECTOR_SIZE_COUNT]; TASK_TYPE_COUNT],
    base_mem: [[u64; SECTOR_SIZE_COUNT]; TASK_TYPE_COUNT],
}

impl Account {
    fn base_to_add(&self, need: &Need) -> u64 {
        if self.base_refs[need.task.index()][need.size.index()] == 0 {
            need.base_memory
        } else {
            0
        }
    }

    fn add(&mut self, need: &Need) {
        let (t, s) = (need.task.index(), need.size.index());
        let base = self.base_to_add(need);
        if self.base_refs[t][s] == 0 {
            self.base_mem[t][s] = base;
        }
        self.base_refs[t][s] += 1;
        self.mem_min += need.min_memory + base;
        self.mem_max += need.max_memory + base;
        self.cpus += need.threads;
        self.gpu_milli += need.gpu_milli;
        self.count[t] += 1;
    }

    fn remove(&mut self, need: &Need) {
        let (t, s) = (need.task.index(), need.size.index());
        self.base_refs[t][s] -= 1;
        let base = if self.base_refs[t][s] == 0 {
            std::mem::take(&mut self.base_mem[t][s])
        } else {
            0
        };
        self.mem_min -= need.min_memory + base;
        self.mem_max -= need.max_memory + base;
        self.cpus -= need.threads;
        self.gpu_milli -= need.gpu_milli;
        self.count[t] -= 1;
    }

    pub fn tasks(&self) -> u32 {
        self.count.iter().sum()
    }

    /// Why this account alone is over `res`'s capacity, if it is.
    fn over(&self, res: &WorkerResources, what: &str) -> Option<String> {
        if self.tasks() == 0 {
            return None;
        }
        let reserved = res.mem_used.saturating_add(res.mem_swap_used);
        let gpus = res.gpus.len() as u64 * 1000;
        if self.mem_min > res.mem_physical {
            return Some(format!(
                "{what}: min memory {} > physical {}",
                self.mem_min, res.mem_physical
            ));
        }
        if reserved + self.mem_max > res.mem_physical + res.mem_swap {
            return Some(format!(
                "{what}: max memory {} + reserved {reserved} > ram+swap",
                self.mem_max
            ));
        }
        if self.cpus > res.cpus {
            return Some(format!("{what}: threads {} > cpus {}", self.cpus, res.cpus));
        }
        if gpus > 0 && self.gpu_milli as u64 > gpus {
            return Some(format!(
                "{what}: gpu {}/1000 > {} gpus",
                self.gpu_milli,
                res.gpus.len()
            ));
        }
        None
    }
}

/// Resources committed on a worker, in three accounts: sealing, WindowPoSt, WinningPoSt.
/// Sealing tasks are admitted only if they fit beside everything committed, PoSt included.
/// PoSt is never kept waiting by sealing (lotus #6181: a WindowPoSt waited 42 minutes behind
/// C2), nor a WinningPoSt by a WindowPoSt (a block must be proven within its epoch): each PoSt
/// kind is admitted against its own account, one task at a time, which must fit the machine by
/// itself. So every account is always within the machine's capacity; the sum goes over it only
/// while a PoSt runs that arrived on top of other work, and then no sealing is added.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub seal: Account,
    /// WindowPoSt's, then WinningPoSt's.
    pub post: [Account; 2],
}

/// The `Usage::post` account of a PoSt task type.
fn post_index(t: TaskType) -> Option<usize> {
    match t {
        TaskType::WindowPoSt => Some(0),
        TaskType::WinningPoSt => Some(1),
        _ => None,
    }
}

impl Usage {
    /// Whether `need` may be placed on a worker with `res` beside what is committed.
    pub fn fits(&self, res: &WorkerResources, need: &Need) -> bool {
        self.why_not(res, need).is_none()
    }

    /// Why `need` may not be placed on a worker with `res` beside what is committed (the first
    /// limit it meets), if it may not.
    pub fn why_not(&self, res: &WorkerResources, need: &Need) -> Option<NoFit> {
        match self.short(res, need) {
            Err(no) => Some(no),
            Ok(s) => s.into_iter().flatten().next(),
        }
    }

    /// Each resource `need` lacks beside what is committed, in the order `why_not` checks them
    /// (RAM, RAM + swap, CPUs, GPU); `Err` where it may not be placed whatever is free (one PoSt
    /// of the kind runs; MaxConcurrent is reached).
    fn short(&self, res: &WorkerResources, need: &Need) -> Result<[Option<NoFit>; 4], NoFit> {
        let gpus = res.gpus.len() as u64 * 1000;
        // Memory others use may be swapped out, so it only counts against RAM + swap (as lotus).
        let reserved = res.mem_used.saturating_add(res.mem_swap_used);
        let vmem = res.mem_physical.saturating_add(res.mem_swap);
        let (base, used) = match post_index(need.task) {
            // Its account is empty (one at a time), so the task only has to fit the machine.
            Some(k) if self.post[k].tasks() > 0 => return Err(NoFit::PoStRunning),
            Some(_) => (need.base_memory, Account::default()),
            None => {
                if need.max_concurrent > 0
                    && self.seal.count[need.task.index()] >= need.max_concurrent
                {
                    return Err(NoFit::MaxConcurrent {
                        max: need.max_concurrent,
                    });
                }
                let all = Account {
                    mem_min: self.mem_min(),
                    mem_max: self.mem_max(),
                    cpus: self.cpus(),
                    gpu_milli: self.gpu_milli(),
                    ..Account::default()
                };
                (self.seal.base_to_add(need), all)
            }
        };
        let need_min = need.min_memory + base;
        let need_max = need.max_memory + base;
        Ok([
            (used.mem_min + need_min > res.mem_physical).then(|| NoFit::Memory {
                need: need_min,
                free: res.mem_physical.saturating_sub(used.mem_min),
            }),
            (reserved + used.mem_max + need_max > vmem).then(|| NoFit::VirtualMemory {
                need: need_max,
                free: vmem.saturating_sub(reserved + used.mem_max),
            }),
            (used.cpus + need.threads > res.cpus).then(|| NoFit::Cpus {
                need: need.threads,
                free: res.cpus.saturating_sub(used.cpus),
            }),
            (gpus > 0 && need.gpu_milli > 0 && (used.gpu_milli + need.gpu_milli) as u64 > gpus)
                .then(|| NoFit::Gpu {
                    need_milli: need.gpu_milli,
                    free_milli: gpus.saturating_sub(used.gpu_milli as u64) as u32,
                }),
        ])
    }

    /// The part of `need` that does not fit beside what is committed: its memory where RAM or
    /// RAM + swap is short, its threads where CPUs are, its GPU share where the GPUs are (what a
    /// hold keeps from the tasks behind it, and nothing more). All of it where it may not be
    /// placed whatever is free.
    pub(crate) fn short_of(&self, res: &WorkerResources, need: &Need) -> Need {
        let mut part = *need;
        let Ok([ram, swap, cpus, gpu]) = self.short(res, need) else {
            return part;
        };
        if ram.is_none() && swap.is_none() {
            part.min_memory = 0;
            part.max_memory = 0;
            part.base_memory = 0;
        }
        if cpus.is_none() {
            part.threads = 0;
        }
        if gpu.is_none() {
            part.gpu_milli = 0;
        }
        part
    }

    fn account(&mut self, task: TaskType) -> &mut Account {
        match post_index(task) {
            Some(k) => &mut self.post[k],
            None => &mut self.seal,
        }
    }

    fn sum(&self, f: impl Fn(&Account) -> u64) -> u64 {
        f(&self.seal) + self.post.iter().map(f).sum::<u64>()
    }

    pub fn add(&mut self, need: &Need) {
        self.account(need.task).add(need);
    }

    pub fn remove(&mut self, need: &Need) {
        self.account(need.task).remove(need);
    }

    /// Minimum memory committed, in all accounts.
    pub fn mem_min(&self) -> u64 {
        self.sum(|a| a.mem_min)
    }
    pub fn mem_max(&self) -> u64 {
        self.sum(|a| a.mem_max)
    }
    pub fn cpus(&self) -> u64 {
        self.sum(|a| a.cpus)
    }
    pub fn gpu_milli(&self) -> u32 {
        self.sum(|a| a.gpu_milli as u64) as u32
    }

    /// How full the worker is with what was committed to it: the fullest of CPU, RAM, RAM + swap
    /// and GPU, from 0 to 1. Unlike lotus's, it leaves out the memory the OS used when the worker
    /// connected: that snapshot never changes, so between two equal machines it would send every
    /// task to the one that happened to report a few KiB less (`fits` still counts it).
    pub fn utilization(&self, res: &WorkerResources) -> f64 {
        let ratio = |used: u64, total: u64| {
            if total == 0 {
                0.0
            } else {
                used as f64 / total as f64
            }
        };
        ratio(self.cpus(), res.cpus)
            .max(ratio(self.mem_min(), res.mem_physical))
            .max(ratio(self.mem_max(), res.mem_physical + res.mem_swap))
            .max(ratio(self.gpu_milli() as u64, res.gpus.len() as u64 * 1000))
    }

    /// Tasks committed in all.
    pub fn tasks(&self) -> u32 {
        self.sum(|a| a.tasks() as u64) as u32
    }

    /// Why this usage breaks the accounting rules on `res`, if it does: sealing over the
    /// machine's capacity (PoSt not counted: it may arrive on top), a PoSt account over it,
    /// or two PoSt tasks of one kind at once.
    pub fn over_capacity(&self, res: &WorkerResources) -> Option<String> {
        if let Some(why) = self.seal.over(res, "sealing") {
            return Some(why);
        }
        for (t, a) in [TaskType::WindowPoSt, TaskType::WinningPoSt]
            .iter()
            .zip(&self.post)
        {
            if a.tasks() > 1 {
                return Some(format!("{} {} tasks at once", a.tasks(), t.short()));
            }
            if let Some(why) = a.over(res, t.short()) {
                return Some(why);
            }
        }
        None
    }
}

/// The limit a task meets on a worker: what it needs and what is free there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoFit {
    /// The worker already runs its MaxConcurrent tasks of the type.
    MaxConcurrent {
        max: u32,
    },
    /// One PoSt of a kind at a time per worker.
    PoStRunning,
    /// Physical memory, against the minimum of everything placed there.
    Memory {
        need: u64,
        free: u64,
    },
    /// RAM + swap, against the maximum of everything placed there and what the OS uses.
    VirtualMemory {
        need: u64,
        free: u64,
    },
    Cpus {
        need: u64,
        free: u64,
    },
    Gpu {
        need_milli: u32,
        free_milli: u32,
    },
}

/// The scheduler's record of one worker.
pub(crate) struct Worker {
    pub spec: WorkerSpec,
    pub enabled: bool,
    pub connected: bool,
    pub usage: Usage,
    /// Scheduling windows: each holds the requests assigned to it that have not started
    /// preparing. An empty window is open for the next pass.
    pub windows: Vec<Vec<RequestId>>,
    /// The window the current pass is filling (a pass fills one window per worker).
    pub filling: Option<usize>,
    /// Bumped whenever `usage` grows during a pass (lazy heap entries compare against it).
    pub version: u64,
    /// Which CPUs its running tasks hold (where it reported its layout).
    pub cpus: Option<CpuMap>,
    /// The highest peak RSS seen per task type and size, and whether it counts.
    pub measured: HashMap<(TaskType, SectorSize), u64>,
    pub measured_memory: bool,
}

impl Worker {
    pub fn new(spec: WorkerSpec, windows: usize) -> Self {
        let cpus = spec.cpus.clone().map(|(topo, allowed)| {
            CpuMap::new(topo, allowed).with_task_cpus(spec.task_cpus.clone())
        });
        Worker {
            cpus,
            measured: HashMap::new(),
            measured_memory: false,
            spec,
            enabled: true,
            connected: true,
            usage: Usage::default(),
            windows: vec![Vec::new(); windows.max(1)],
            filling: None,
            version: 0,
        }
    }

    /// The window a pass fills: the first open one, if the worker may receive work at all.
    pub fn open_window(&self) -> Option<usize> {
        if !(self.enabled && self.connected) {
            return None;
        }
        self.filling
            .or_else(|| self.windows.iter().position(Vec::is_empty))
    }

    /// What is committed here to tasks that run before a task of `order`, or with it (lower or
    /// equal order; PoSt always): what such a task waits for whatever comes after it.
    pub(crate) fn usage_ahead(&self, order: i32) -> Usage {
        let mut u = Usage {
            seal: Account::default(),
            post: self.usage.post.clone(),
        };
        let refs = &self.usage.seal.base_refs;
        for t in TaskType::ALL {
            if t.order() > order || post_index(t).is_some() {
                continue;
            }
            for s in SectorSize::ALL {
                let n = refs[t.index()][s.index()];
                if n == 0 {
                    continue;
                }
                let need = self.need(t, s);
                for _ in 0..n {
                    u.add(&need);
                }
            }
        }
        u
    }

    pub fn need(&self, task: TaskType, size: SectorSize) -> Need {
        let mut n = Need::of(&self.spec, task, size);
        if self.measured_memory {
            if let Some(peak) = self.measured.get(&(task, size)) {
                // The peak includes the parameters the process mapped: no base memory on top.
                let m = peak + peak / 10;
                (n.min_memory, n.max_memory, n.base_memory) = (m, m, 0);
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn spec(mem: u64, cpus: u64, gpus: usize) -> WorkerSpec {
        WorkerSpec {
            name: "w".into(),
            resources: WorkerResources {
                mem_physical: mem,
                mem_used: 0,
                mem_swap: 0,
                mem_swap_used: 0,
                cpus,
                gpus: vec!["gpu".into(); gpus],
            },
            table: ResourceTable::default(),
            tasks: TaskSet::all(),
            cpus: None,
            task_cpus: Default::default(),
        }
    }

    #[test]
    fn measured_peaks_count_only_when_asked_and_only_for_what_was_seen() {
        let s = spec(512 * GIB, 64, 0);
        let (pc1, pc2, size) = (
            TaskType::PreCommit1,
            TaskType::PreCommit2,
            SectorSize::S32GiB,
        );
        let mut w = Worker::new(s.clone(), 2);
        w.measured.insert((pc1, size), 40 * GIB);
        assert_eq!(w.need(pc1, size), Need::of(&s, pc1, size), "off: the table");
        w.measured_memory = true;
        let n = w.need(pc1, size);
        assert_eq!(
            (n.min_memory, n.max_memory, n.base_memory),
            (44 * GIB, 44 * GIB, 0)
        );
        assert_eq!(
            w.need(pc2, size),
            Need::of(&s, pc2, size),
            "not seen: the table"
        );
    }

    #[test]
    fn base_memory_is_counted_once_per_type() {
        let s = spec(512 * GIB, 64, 1);
        let c2 = Need::of(&s, TaskType::Commit2, SectorSize::S32GiB);
        let mut u = Usage::default();
        u.add(&c2);
        assert_eq!(u.mem_min(), 30 * GIB + 32 * GIB);
        let pc1 = Need::of(&s, TaskType::PreCommit1, SectorSize::S32GiB);
        u.add(&pc1);
        u.add(&pc1);
        assert_eq!(u.mem_min(), 62 * GIB + 2 * 56 * GIB + 10 * (1 << 20));
        u.remove(&pc1);
        u.remove(&pc1);
        u.remove(&c2);
        assert_eq!(u, Usage::default());
    }

    #[test]
    fn fit_counts_everything_committed() {
        let s = spec(200 * GIB, 64, 0);
        let pc1 = Need::of(&s, TaskType::PreCommit1, SectorSize::S32GiB);
        let mut u = Usage::default();
        let mut n = 0;
        while u.fits(&s.resources, &pc1) {
            u.add(&pc1);
            n += 1;
        }
        // 3 x 56 GiB min fits in 200 GiB; the vmem check (64 GiB max each) stops at 3 as well.
        assert_eq!(n, 3);
        assert!(u.over_capacity(&s.resources).is_none());
        assert!(u.utilization(&s.resources) > 0.9);
    }

    #[test]
    fn gpu_share_is_capped_by_gpu_count() {
        let s = spec(64 * GIB, 64, 1);
        let c2 = Need::of(&s, TaskType::Commit2, SectorSize::S2KiB);
        let mut u = Usage::default();
        assert!(u.fits(&s.resources, &c2));
        u.add(&c2);
        assert!(!u.fits(&s.resources, &c2), "one GPU, one GPU task");
        let no_gpu = spec(64 * GIB, 64, 0);
        let mut u = Usage::default();
        let c2 = Need::of(&no_gpu, TaskType::Commit2, SectorSize::S2KiB);
        u.add(&c2);
        assert!(
            u.fits(&no_gpu.resources, &c2),
            "without GPUs, C2 runs on CPU threads"
        );
    }

    #[test]
    fn post_is_not_kept_waiting_by_sealing_tasks() {
        let s = spec(64 * GIB, 8, 0);
        let mut u = Usage::default();
        let c2 = Need::of(&s, TaskType::Commit2, SectorSize::S2KiB);
        while u.fits(&s.resources, &c2) {
            u.add(&c2); // CPU C2s until every thread is taken
        }
        let wdp = Need::of(&s, TaskType::WindowPoSt, SectorSize::S2KiB);
        assert!(u.fits(&s.resources, &wdp));
        u.add(&wdp);
        // Both accounts are within the machine, though together they are over it.
        assert!(u.over_capacity(&s.resources).is_none());
        assert!(u.cpus() > s.resources.cpus);
        // Sealing waits for the PoSt: a C2 ends, yet its thread goes to no new C2 while the
        // WDP runs (counting sealing alone, one would fit).
        u.remove(&c2);
        assert!(u.seal.cpus + c2.threads <= s.resources.cpus);
        assert!(!u.fits(&s.resources, &c2));
        u.remove(&wdp);
        assert!(u.fits(&s.resources, &c2));
        u.add(&wdp);
        // One WindowPoSt at a time; a WinningPoSt still fits beside it.
        assert!(!u.fits(&s.resources, &wdp));
        let wnp = Need::of(&s, TaskType::WinningPoSt, SectorSize::S2KiB);
        assert!(u.fits(&s.resources, &wnp));
    }

    #[test]
    fn the_accounting_check_catches_what_it_is_for() {
        let s = spec(64 * GIB, 8, 0);
        let wdp = Need::of(&s, TaskType::WindowPoSt, SectorSize::S2KiB);
        let c2 = Need::of(&s, TaskType::Commit2, SectorSize::S2KiB);
        // Two WindowPoSts at once break the rule, though both fit the machine.
        let mut u = Usage::default();
        u.add(&wdp);
        assert!(u.over_capacity(&s.resources).is_none());
        u.add(&wdp);
        assert!(u.over_capacity(&s.resources).unwrap().contains("2 WDP"));
        // Sealing over the machine is caught with or without a PoSt beside it.
        let mut u = Usage::default();
        u.add(&wdp);
        for _ in 0..=s.resources.cpus / c2.threads.max(1) {
            u.add(&c2);
        }
        assert!(
            u.over_capacity(&s.resources)
                .unwrap()
                .starts_with("sealing"),
            "{u:?}"
        );
    }
}
