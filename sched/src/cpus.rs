//! Which CPUs of a worker each running task holds. The scheduler places a task on concrete
//! CPUs when it hands it out to run, and the worker pins the task's processor child to them.
//!
//! - PC1 takes one SDR unit (its threads, in whole cores) at the offsets rust-fil-proofs' own
//!   `create_core_units` lays units out (each L3 group's first unit before any group's second),
//!   so the child's multicore SDR binds its threads to exactly the cores it was given and two
//!   PC1s never share cores (lotus #5076). Where no aligned unit is free, free cores inside one
//!   L3 group, then any free cores.
//! - PC2, C2 and the PoSts take whole L3 groups, as many as their threads need, then free CPUs.
//!   One that uses a GPU is given the least busy GPU and L3 groups on that GPU's NUMA node first.
//! - Other tasks (AP, C1, finalize, fetch, unseal) run on the CPUs nobody holds.
//!
//! The accounting has already admitted the task, so a place is always given: where nothing is
//! free (a PoSt admitted on top of sealing), the task shares the worker's CPUs and holds none.

use std::collections::BTreeMap;

use resources::topology::{CpuSet, Place, Topology};
use resources::TaskType;
use serde::{Deserialize, Serialize};

use crate::request::RequestId;

/// What a task's CPUs look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// An SDR unit of this many cores.
    Unit(usize),
    /// Whole L3 groups covering this many CPUs.
    Groups(usize),
    /// Whatever nobody holds.
    Shared,
}

impl Shape {
    /// The shape of `task` taking `threads` CPUs.
    pub fn of(task: TaskType, threads: u64) -> Shape {
        let n = threads.max(1) as usize;
        match task {
            TaskType::PreCommit1 => Shape::Unit(n),
            TaskType::PreCommit2
            | TaskType::Commit2
            | TaskType::WindowPoSt
            | TaskType::WinningPoSt => Shape::Groups(n),
            _ => Shape::Shared,
        }
    }
}

/// CPUs a running task was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub task: TaskType,
    pub cpus: CpuSet,
    /// Its own (no other task is placed on them) or shared.
    pub exclusive: bool,
    /// The GPU it was given, and its share of it in thousandths.
    #[serde(default)]
    pub gpu: Option<u32>,
    #[serde(default)]
    pub gpu_milli: u32,
}

/// A worker's CPUs as `sealing workers` shows them: those it may use, and what each running
/// task holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuUse {
    pub allowed: CpuSet,
    pub held: Vec<(RequestId, Held)>,
}

/// One worker's CPUs and who holds them.
#[derive(Debug, Clone)]
pub struct CpuMap {
    topo: Topology,
    allowed: CpuSet,
    /// Task types kept to some of the CPUs (the worker's `worker.toml`).
    per_task: BTreeMap<TaskType, CpuSet>,
    held: BTreeMap<RequestId, Held>,
    /// Calls found running on the worker when it registered (started before the sealer's
    /// restart), by call ID: their CPUs stay theirs until they return.
    found: BTreeMap<String, Held>,
}

impl CpuMap {
    /// A worker with the machine layout `topo` that may use `allowed` (its `--cpus`).
    pub fn new(topo: Topology, allowed: CpuSet) -> CpuMap {
        let allowed = allowed.and(&topo.cpus);
        CpuMap {
            topo,
            allowed,
            per_task: BTreeMap::new(),
            held: BTreeMap::new(),
            found: BTreeMap::new(),
        }
    }

    /// Call `call_id` of `task` runs at `place` already (the worker said so when it registered):
    /// its CPUs are held until [`CpuMap::returned`].
    pub fn running_already(&mut self, call_id: &str, task: TaskType, place: &Place) {
        self.found.insert(
            call_id.to_string(),
            Held {
                task,
                cpus: place.cpus.clone(),
                exclusive: true,
                gpu: place.gpu,
                gpu_milli: 0,
            },
        );
    }

    /// A call found running returned: its CPUs are free. Whether it was one.
    pub fn returned(&mut self, call_id: &str) -> bool {
        self.found.remove(call_id).is_some()
    }

    /// Keeps each task type of `per_task` to its CPUs (within the worker's).
    pub fn with_task_cpus(mut self, per_task: BTreeMap<TaskType, CpuSet>) -> CpuMap {
        self.per_task = per_task
            .into_iter()
            .map(|(t, s)| (t, s.and(&self.allowed)))
            .filter(|(_, s)| !s.is_empty())
            .collect();
        self
    }

    pub fn allowed(&self) -> &CpuSet {
        &self.allowed
    }

    /// What each running task holds.
    pub fn held(&self) -> &BTreeMap<RequestId, Held> {
        &self.held
    }

    pub fn usage(&self) -> CpuUse {
        CpuUse {
            allowed: self.allowed.clone(),
            held: self.held.iter().map(|(k, v)| (*k, v.clone())).collect(),
        }
    }

    /// CPUs no task holds for itself.
    pub fn free(&self) -> CpuSet {
        let busy: CpuSet = self
            .held
            .values()
            .chain(self.found.values())
            .filter(|h| h.exclusive)
            .flat_map(|h| h.cpus.0.iter().copied())
            .collect();
        self.allowed.0.difference(&busy.0).copied().collect()
    }

    /// Places task `id` of `task` taking `threads` CPUs and `gpu_milli` thousandths of a GPU,
    /// and returns where.
    pub fn place(&mut self, id: RequestId, task: TaskType, threads: u64, gpu_milli: u32) -> Place {
        self.release(id);
        let gpu = (gpu_milli > 0).then(|| self.least_busy_gpu()).flatten();
        let near: Option<CpuSet> = gpu
            .and_then(|g| self.topo.gpus.get(g as usize).copied().flatten())
            .and_then(|node| self.topo.numa.iter().find(|(n, _)| *n == node))
            .map(|(_, cpus)| cpus.clone());
        let (free, allowed) = match self.per_task.get(&task) {
            Some(limit) => (self.free().and(limit), limit.clone()),
            None => (self.free(), self.allowed.clone()),
        };
        let mine = match Shape::of(task, threads) {
            Shape::Unit(n) => self.unit(n, &free, &allowed),
            Shape::Groups(n) => self.groups(n, &free, near.as_ref()),
            Shape::Shared => CpuSet::default(),
        };
        let (cpus, exclusive) = if mine.is_empty() {
            let shared = if free.is_empty() { allowed } else { free };
            (shared, false)
        } else {
            (mine, true)
        };
        self.held.insert(
            id,
            Held {
                task,
                cpus: cpus.clone(),
                exclusive,
                gpu,
                gpu_milli,
            },
        );
        Place { cpus, gpu }
    }

    /// The GPU with the least committed to it (the lowest index among equals), if there is one.
    fn least_busy_gpu(&self) -> Option<u32> {
        (0..self.topo.gpus.len() as u32).min_by_key(|g| {
            self.held
                .values()
                .filter(|h| h.gpu == Some(*g))
                .map(|h| h.gpu_milli)
                .sum::<u32>()
        })
    }

    pub fn release(&mut self, id: RequestId) {
        self.held.remove(&id);
    }

    /// The cores (indexes into `topo.cores`) of rust-fil-proofs' units of `n` cores, in the
    /// order it hands them out: one per L3 group, then a second round.
    pub fn sdr_units(&self, n: usize) -> Vec<Vec<usize>> {
        let cores = self.topo.cores.len();
        let groups = self.topo.l3.len().max(1);
        let size = cores / groups;
        let per_group = size.checked_div(n).unwrap_or(0);
        (0..groups * per_group)
            .map(|i| {
                let round = i / groups;
                (0..n).map(|j| (j + i * size) % cores + round * n).collect()
            })
            .collect()
    }

    /// Core `k`'s threads the task may use (`scope`: the worker's or its task type's CPUs), so
    /// that a worker given one thread per core (`--cpus 0-23` on a machine with SMT) still has
    /// whole cores to give.
    fn usable(&self, k: usize, scope: &CpuSet) -> CpuSet {
        self.topo.cores[k].cpus.and(scope)
    }

    fn cpus_of(&self, cores: &[usize], scope: &CpuSet) -> CpuSet {
        cores
            .iter()
            .flat_map(|k| self.usable(*k, scope).0)
            .collect()
    }

    /// Whether core `k` has threads in `scope` and all of them are free.
    fn core_free(&self, k: usize, free: &CpuSet, scope: &CpuSet) -> bool {
        let c = self.usable(k, scope);
        !c.is_empty() && c.0.iter().all(|x| free.contains(*x))
    }

    /// Free cores, in order, inside `within` where given.
    fn free_cores(&self, free: &CpuSet, scope: &CpuSet, within: Option<&CpuSet>) -> Vec<usize> {
        (0..self.topo.cores.len())
            .filter(|k| {
                self.core_free(*k, free, scope)
                    && within
                        .is_none_or(|w| self.usable(*k, scope).0.iter().all(|x| w.contains(*x)))
            })
            .collect()
    }

    fn unit(&self, n: usize, free: &CpuSet, scope: &CpuSet) -> CpuSet {
        if let Some(u) = self
            .sdr_units(n)
            .iter()
            .find(|u| u.iter().all(|k| self.core_free(*k, free, scope)))
        {
            return self.cpus_of(u, scope);
        }
        // Free cores inside one L3 group (the one with the most), else anywhere.
        let best = self
            .topo
            .l3
            .iter()
            .map(|g| self.free_cores(free, scope, Some(g)))
            .max_by_key(Vec::len)
            .unwrap_or_default();
        if best.len() >= n {
            return self.cpus_of(&best[..n], scope);
        }
        let any = self.free_cores(free, scope, None);
        self.cpus_of(&any[..n.min(any.len())], scope)
    }

    /// Whole free L3 groups (those in `near` first) until `n` CPUs, then free CPUs.
    fn groups(&self, n: usize, free: &CpuSet, near: Option<&CpuSet>) -> CpuSet {
        let mut out = CpuSet::default();
        let mut order: Vec<&CpuSet> = self.topo.l3.iter().collect();
        if let Some(near) = near {
            order.sort_by_key(|g| !g.0.iter().any(|c| near.contains(*c)));
        }
        for g in order {
            let g = g.and(&self.allowed);
            if out.len() >= n {
                break;
            }
            if !g.is_empty() && g.0.iter().all(|c| free.contains(*c)) {
                out.0.extend(g.0);
            }
        }
        for c in &free.0 {
            if out.len() >= n {
                break;
            }
            out.0.insert(*c);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cores(m: &CpuMap, set: &CpuSet) -> Vec<usize> {
        (0..m.topo.cores.len())
            .filter(|k| m.topo.cores[*k].cpus.0.iter().all(|c| set.contains(*c)))
            .collect()
    }

    /// The PC1s placed one after another, as core indexes.
    fn pc1s(m: &mut CpuMap, n: u64, count: u64) -> Vec<Vec<usize>> {
        (0..count)
            .map(|i| {
                let set = m.place(RequestId(i), TaskType::PreCommit1, n, 0).cpus;
                cores(m, &set)
            })
            .collect()
    }

    fn map(t: Topology) -> CpuMap {
        let all = t.cpus.clone();
        CpuMap::new(t, all)
    }

    /// rust-fil-proofs' own `create_core_units` vectors (storage-proofs-porep, cores.rs tests):
    /// the same machine gives the same units in the same order.
    #[test]
    fn pc1_units_are_rust_fil_proofs_units_in_its_order() {
        // "intel": 16 cores, 2 groups, units of 3.
        let mut m = map(Topology::uniform(1, 2, 8, true));
        assert_eq!(
            pc1s(&mut m, 3, 4),
            [[0, 1, 2], [8, 9, 10], [3, 4, 5], [11, 12, 13]]
        );
        // "sp": 48 cores, 8 groups, units of 3: one per group, then the second round.
        let mut m = map(Topology::uniform(2, 4, 6, false));
        let got = pc1s(&mut m, 3, 16);
        let want: Vec<Vec<usize>> = (0..16)
            .map(|i| {
                let base = (i % 8) * 6 + (i / 8) * 3;
                vec![base, base + 1, base + 2]
            })
            .collect();
        assert_eq!(got, want);
        // "amd": 16 cores, 4 groups, units of 4; "dc": 32 cores, 2 groups.
        let mut m = map(Topology::uniform(1, 4, 4, true));
        assert_eq!(
            pc1s(&mut m, 4, 4),
            [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]]
        );
        let m = map(Topology::uniform(2, 1, 16, true));
        assert_eq!(
            m.sdr_units(4)[..4],
            [
                [0, 1, 2, 3],
                [16, 17, 18, 19],
                [4, 5, 6, 7],
                [20, 21, 22, 23]
            ]
        );
        // "laptop": 4 cores, 1 group, units of 3: one unit, its 4th core left out.
        assert_eq!(
            map(Topology::uniform(1, 1, 4, false)).sdr_units(3),
            [[0, 1, 2]]
        );
    }

    /// An AMD EPYC 7642: 48 cores in 16 L3 groups of 3 (the topology fixture of the same name).
    #[test]
    fn on_an_epyc_7642_units_of_three_fill_one_l3_group_each_and_units_of_four_have_none() {
        let epyc = || map(Topology::uniform(1, 16, 3, true));
        let mut m = epyc();
        let want: Vec<Vec<usize>> = (0..16).map(|g| vec![3 * g, 3 * g + 1, 3 * g + 2]).collect();
        assert_eq!(pc1s(&mut m, 3, 16), want);
        // rust-fil-proofs has no unit of 4 in a group of 3 (its threads run unbound): free
        // cores are given, starting with a whole group.
        let m = epyc();
        assert!(m.sdr_units(4).is_empty());
        let mut m = epyc();
        assert_eq!(pc1s(&mut m, 4, 1), [[0, 1, 2, 3]]);
    }

    #[test]
    fn a_pc1_unit_holds_whole_cores_with_their_hyperthreads_and_is_released() {
        let t = Topology::uniform(1, 2, 4, true); // CPUs 0-7, siblings 8-15
        let mut m = map(t);
        let a = m.place(RequestId(1), TaskType::PreCommit1, 2, 0).cpus;
        assert_eq!(a.to_string(), "0-1,8-9");
        let b = m.place(RequestId(2), TaskType::PreCommit1, 2, 0).cpus;
        assert_eq!(b.to_string(), "4-5,12-13", "the other L3 group first");
        m.release(RequestId(1));
        let c = m.place(RequestId(3), TaskType::PreCommit1, 2, 0).cpus;
        assert_eq!(c, a, "a released unit is given again");
    }

    #[test]
    fn a_worker_limited_with_cpus_places_only_inside_them() {
        // sp_limited_1: the second half of the "sp" machine.
        let t = Topology::uniform(2, 4, 6, false);
        let mut m = CpuMap::new(t, (24..48).collect());
        let got = pc1s(&mut m, 3, 8);
        assert_eq!(
            got[..4],
            [[24, 25, 26], [30, 31, 32], [36, 37, 38], [42, 43, 44]]
        );
        assert_eq!(
            got[4..],
            [[27, 28, 29], [33, 34, 35], [39, 40, 41], [45, 46, 47]]
        );
        for i in 8..12 {
            let s = m.place(RequestId(100 + i), TaskType::AddPiece, 1, 0).cpus;
            assert!(s.0.iter().all(|c| *c >= 24), "{s}");
        }
        // Everything above 24 is held by PC1s: a C2 shares the worker's CPUs, still >= 24.
        let c2 = m.place(RequestId(200), TaskType::Commit2, 8, 0).cpus;
        assert_eq!(c2.to_string(), "24-47");
        assert!(!m.held()[&RequestId(200)].exclusive);
    }

    #[test]
    fn pc1_units_not_aligned_fall_back_to_one_l3_group_then_anywhere() {
        // Two groups of 4 cores, units of 3: aligned units are cores 0-2 and 4-6.
        let mut m = map(Topology::uniform(1, 2, 4, false));
        // An AP-sized hold on core 0 and a C2 on nothing: units of 3 in a group of 4 with one
        // core taken is still 3 free cores in that group.
        m.held.insert(
            RequestId(50),
            Held {
                task: TaskType::PreCommit1,
                cpus: CpuSet::from_iter([0]),
                exclusive: true,
                gpu: None,
                gpu_milli: 0,
            },
        );
        assert_eq!(
            m.place(RequestId(1), TaskType::PreCommit1, 3, 0)
                .cpus
                .to_string(),
            "4-6"
        );
        assert_eq!(
            m.place(RequestId(2), TaskType::PreCommit1, 3, 0)
                .cpus
                .to_string(),
            "1-3"
        );
        // Cores 7 left: a unit of 3 takes what is free.
        assert_eq!(
            m.place(RequestId(3), TaskType::PreCommit1, 3, 0)
                .cpus
                .to_string(),
            "7"
        );
    }

    #[test]
    fn c2_and_post_take_whole_l3_groups_and_shared_tasks_what_is_left() {
        let mut m = map(Topology::uniform(1, 4, 4, false)); // groups 0-3, 4-7, 8-11, 12-15
        let pc1 = m.place(RequestId(1), TaskType::PreCommit1, 4, 0).cpus;
        assert_eq!(pc1.to_string(), "0-3");
        let c2 = m.place(RequestId(2), TaskType::Commit2, 6, 0).cpus;
        assert_eq!(c2.to_string(), "4-11", "two whole groups for 6 threads");
        let ap = m.place(RequestId(3), TaskType::AddPiece, 1, 0).cpus;
        assert_eq!(ap.to_string(), "12-15");
        assert!(!m.held()[&RequestId(3)].exclusive);
        let wdp = m.place(RequestId(4), TaskType::WindowPoSt, 4, 0).cpus;
        assert_eq!(wdp.to_string(), "12-15");
        // Nothing free: a WinningPoSt on top shares everything.
        let wnp = m.place(RequestId(5), TaskType::WinningPoSt, 1, 0).cpus;
        assert_eq!(wnp.to_string(), "0-15");
        assert_eq!(m.free().len(), 0);
        m.release(RequestId(2));
        assert_eq!(m.free().to_string(), "4-11");
    }

    #[test]
    fn a_task_type_kept_to_some_cpus_is_placed_only_there() {
        // Seed 004's layout: PC1 on node 0's first 42 cores, C2 on the rest.
        let t = Topology::uniform(2, 8, 6, false); // 96 cores, 16 L3 groups of 6
        let per: BTreeMap<TaskType, CpuSet> = [
            (TaskType::PreCommit1, "0-41".parse().unwrap()),
            (TaskType::Commit2, "42-47".parse().unwrap()),
        ]
        .into_iter()
        .collect();
        let all = t.cpus.clone();
        let mut m = CpuMap::new(t, all).with_task_cpus(per);
        for i in 0..20 {
            let s = m.place(RequestId(i), TaskType::PreCommit1, 2, 0).cpus;
            assert!(s.0.iter().all(|c| *c <= 41), "{s}");
        }
        assert_eq!(
            m.place(RequestId(50), TaskType::Commit2, 48, 0)
                .cpus
                .to_string(),
            "42-47"
        );
        // Untouched types use the whole worker: a WindowPoSt takes whole free groups.
        let wdp = m.place(RequestId(51), TaskType::WindowPoSt, 12, 0).cpus;
        assert_eq!(wdp.to_string(), "48-59");
    }

    #[test]
    fn a_gpu_task_gets_the_least_busy_gpu_and_l3_groups_on_its_numa_node() {
        // Two sockets of 24 cores with HT; GPU 0 hangs off socket 1, GPU 1 off socket 0.
        let mut t = Topology::uniform(2, 1, 24, true);
        t.gpus = vec![Some(1), Some(0)];
        let mut m = map(t);
        let a = m.place(RequestId(1), TaskType::Commit2, 24, 1000);
        assert_eq!(a.gpu, Some(0));
        assert_eq!(a.cpus.to_string(), "24-47,72-95", "socket 1, near GPU 0");
        let b = m.place(RequestId(2), TaskType::Commit2, 24, 1000);
        assert_eq!(b.gpu, Some(1));
        assert_eq!(b.cpus.to_string(), "0-23,48-71");
        assert_eq!(m.held()[&RequestId(2)].gpu, Some(1));
        // CPU work gets no GPU.
        assert_eq!(m.place(RequestId(3), TaskType::PreCommit1, 1, 0).gpu, None);
        m.release(RequestId(1));
        let c = m.place(RequestId(4), TaskType::WindowPoSt, 8, 1000);
        assert_eq!(c.gpu, Some(0), "the GPU given back is the least busy");
        // No GPU on the machine: a GPU share places CPUs only.
        let mut m = map(Topology::uniform(1, 1, 4, false));
        assert_eq!(m.place(RequestId(1), TaskType::Commit2, 4, 1000).gpu, None);
    }

    #[test]
    fn a_worker_given_one_thread_per_core_still_gives_pc1s_cores_of_their_own() {
        // A Xeon with SMT, the worker on the first thread of each core (`--cpus 0-23`).
        let t = Topology::uniform(2, 1, 24, true);
        let mut m = CpuMap::new(t, "0-23".parse().unwrap());
        let a = m.place(RequestId(1), TaskType::PreCommit1, 4, 0).cpus;
        let b = m.place(RequestId(2), TaskType::PreCommit1, 4, 0).cpus;
        assert_eq!((a.to_string(), b.to_string()), ("0-3".into(), "4-7".into()));
        assert!(m.held().values().all(|h| h.exclusive));
    }

    #[test]
    fn a_call_found_running_after_a_restart_keeps_its_cpus_until_it_returns() {
        let mut m = map(Topology::uniform(1, 1, 2, false));
        let place = Place {
            cpus: CpuSet::from_iter([0]),
            gpu: None,
        };
        m.running_already("call-1", TaskType::PreCommit1, &place);
        assert_eq!(pc1s(&mut m, 1, 1), [[1]], "CPU 0 is the running call's");
        assert!(m.returned("call-1"));
        assert!(!m.returned("call-1"));
        m.release(RequestId(0));
        assert_eq!(pc1s(&mut m, 1, 1), [[0]]);
    }

    #[test]
    fn two_single_core_pc1s_on_a_two_cpu_machine_get_one_cpu_each() {
        let mut m = map(Topology::uniform(1, 1, 2, false));
        assert_eq!(pc1s(&mut m, 1, 2), [[0], [1]]);
        let mut m = CpuMap::new(Topology::uniform(1, 1, 2, false), CpuSet::from_iter([1]));
        assert_eq!(pc1s(&mut m, 1, 2), [[1], [1]], "--cpus 1: never CPU 0");
    }
}
