//! Why a queued request is not running: for every worker, the first thing that keeps it from
//! taking the request now, in the order a pass checks them (connected, enabled, task type,
//! resources, storage, a free window). Lotus leaves operators to guess (lotus #2758, #8918;
//! Curio logged its refusals at debug level only); here each one is a value that the CLI, the
//! dashboard and the metrics show.
//!
//! Asked for, never computed during a pass: it costs one selector call per worker and request.

use std::fmt;

use resources::{human_bytes, Subject, TaskType};
use serde::{Deserialize, Serialize};

use crate::request::{RequestId, WorkerId};
use crate::scheduler::{Scheduler, Stage};
use crate::selector::Refusal;
use crate::worker::NoFit;

/// What keeps one worker from taking a queued request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotHere {
    /// Its heartbeat is missing.
    Disconnected,
    /// The operator disabled it (`sealing workers disable`).
    Disabled,
    /// It does not take this task type.
    TaskType,
    /// Resources: what the task needs against what is free there.
    Resources(NoFit),
    /// Storage: its selector's refusal.
    Storage(Refusal),
    /// Every scheduling window holds tasks that have not started preparing.
    WindowsFull,
    /// Held for a task of this type ahead in the queue, which waits for resources there: what
    /// is left beside it does not take this one.
    Held(TaskType),
    /// Nothing: the next pass places the request (on this worker or a closer one).
    Fits,
}

impl NotHere {
    /// A short fixed name: the metrics' `reason` label.
    pub fn label(&self) -> &'static str {
        match self {
            NotHere::Disconnected => "worker disconnected",
            NotHere::Disabled => "worker disabled",
            NotHere::TaskType => "task type disabled",
            NotHere::Resources(NoFit::MaxConcurrent { .. }) => "MaxConcurrent reached",
            NotHere::Resources(NoFit::PoStRunning) => "a PoSt of the kind runs",
            NotHere::Resources(NoFit::Memory { .. }) => "not enough RAM",
            NotHere::Resources(NoFit::VirtualMemory { .. }) => "not enough RAM+swap",
            NotHere::Resources(NoFit::Cpus { .. }) => "not enough CPUs",
            NotHere::Resources(NoFit::Gpu { .. }) => "no GPU free",
            NotHere::Storage(Refusal::NoRoomToSeal) => "no sealing storage with room",
            NotHere::Storage(Refusal::NoRoomToStore) => "no long-term storage with room",
            NotHere::Storage(Refusal::NotHolder) => "does not hold the sector's files",
            NotHere::Storage(Refusal::SectorsElsewhere) => "does not reach the sectors",
            NotHere::Storage(Refusal::LeftToPoStWorker) => "left to a PoSt worker",
            NotHere::Storage(Refusal::Other) => "refused by the selector",
            NotHere::WindowsFull => "scheduling windows full",
            NotHere::Held(_) => "held for a task ahead",
            NotHere::Fits => "placed at the next pass",
        }
    }

    /// How close the worker is to taking the request: a request's reason is its closest
    /// worker's (the one an operator would change something on).
    fn closeness(&self) -> u8 {
        match self {
            NotHere::Disconnected => 0,
            NotHere::TaskType => 1,
            NotHere::Disabled => 2,
            NotHere::Storage(_) => 3,
            NotHere::Resources(_) => 4,
            NotHere::WindowsFull | NotHere::Held(_) => 5,
            NotHere::Fits => 6,
        }
    }
}

impl fmt::Display for NotHere {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = |n: &u64| human_bytes(*n);
        match self {
            NotHere::Resources(NoFit::MaxConcurrent { max }) => {
                write!(f, "MaxConcurrent reached ({max} running)")
            }
            NotHere::Resources(NoFit::Memory { need, free }) => {
                write!(f, "not enough RAM: needs {}, {} free", b(need), b(free))
            }
            NotHere::Resources(NoFit::VirtualMemory { need, free }) => {
                write!(
                    f,
                    "not enough RAM+swap: needs {}, {} free",
                    b(need),
                    b(free)
                )
            }
            NotHere::Resources(NoFit::Cpus { need, free }) => {
                write!(f, "not enough CPUs: needs {need} threads, {free} free")
            }
            NotHere::Resources(NoFit::Gpu {
                need_milli,
                free_milli,
            }) => write!(
                f,
                "no GPU free: needs {:.2} GPU, {:.2} free",
                *need_milli as f64 / 1000.0,
                *free_milli as f64 / 1000.0
            ),
            NotHere::Held(t) => write!(f, "held for a {} ahead in the queue", t.short()),
            other => f.write_str(other.label()),
        }
    }
}

/// One queued request and, for every worker, why it is not running there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhyQueued {
    pub id: RequestId,
    pub task: TaskType,
    pub subject: Subject,
    /// (worker, its name, why not there), in worker order.
    pub workers: Vec<(WorkerId, String, NotHere)>,
}

impl WhyQueued {
    /// The closest worker's reason; `None` with no workers at all.
    pub fn reason(&self) -> Option<NotHere> {
        self.workers
            .iter()
            .map(|(_, _, n)| *n)
            .max_by_key(NotHere::closeness)
    }
}

impl Scheduler {
    /// Why the first `limit` queued requests, in queue order, are not running.
    pub fn why_queued(&self, limit: usize) -> Vec<WhyQueued> {
        self.queue
            .iter()
            .take(limit)
            .filter_map(|(_, id)| self.why_not(id))
            .collect()
    }

    /// Why queued request `id` is not running on each worker; `None` unless it is queued.
    pub fn why_not(&self, id: RequestId) -> Option<WhyQueued> {
        let e = self.entries.get(&id)?;
        if e.stage != Stage::Queued {
            return None;
        }
        let req = &e.req;
        let workers = self
            .workers
            .iter()
            .enumerate()
            .filter_map(|(i, w)| w.as_ref().map(|w| (WorkerId(i as u32), w)))
            .map(|(wid, w)| {
                let why = if !w.connected {
                    NotHere::Disconnected
                } else if !w.enabled {
                    NotHere::Disabled
                } else if !w.spec.tasks.contains(req.task) {
                    NotHere::TaskType
                } else if let Some(n) = w
                    .usage
                    .why_not(&w.spec.resources, &w.need(req.task, req.size))
                {
                    NotHere::Resources(n)
                } else if let Some(t) = self.held_against(wid, w, id) {
                    NotHere::Held(t)
                } else if let Some(r) = req.selector.refusal(req, wid, &w.spec) {
                    NotHere::Storage(r)
                } else if w.open_window().is_none() {
                    NotHere::WindowsFull
                } else {
                    NotHere::Fits
                };
                (wid, w.spec.name.clone(), why)
            })
            .collect();
        Some(WhyQueued {
            id,
            task: req.task,
            subject: req.subject,
            workers,
        })
    }

    /// The task type of the request ahead of `id` in the queue that holds worker `wid`, where
    /// `id` does not fit beside it there.
    fn held_against(
        &self,
        wid: WorkerId,
        w: &crate::worker::Worker,
        id: RequestId,
    ) -> Option<TaskType> {
        let (r, part) = self.held.get(&wid).filter(|(r, _)| *r != id)?;
        let (ahead, me) = (self.entries.get(r)?, self.entries.get(&id)?);
        if ahead.key >= me.key {
            return None;
        }
        let mut usage = w.usage.clone();
        usage.add(part);
        let need = w.need(me.req.task, me.req.size);
        (!usage.fits(&w.spec.resources, &need)).then_some(ahead.req.task)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use resources::{ResourceTable, SectorSize, TaskSet, WorkerResources};

    use super::*;
    use crate::request::TaskRequest;
    use crate::scheduler::SchedConfig;
    use crate::selector::{AllocSelector, StorageView, TaskSelector};
    use crate::worker::WorkerSpec;

    const GIB: u64 = 1 << 30;

    fn spec(name: &str, mem: u64, tasks: &[TaskType]) -> WorkerSpec {
        WorkerSpec {
            name: name.into(),
            resources: WorkerResources {
                mem_physical: mem,
                mem_used: 0,
                mem_swap: 0,
                mem_swap_used: 0,
                cpus: 64,
                gpus: vec![],
            },
            table: ResourceTable::default(),
            tasks: tasks.iter().copied().collect::<TaskSet>(),
            cpus: None,
            task_cpus: Default::default(),
        }
    }

    struct Full;
    impl StorageView for Full {
        fn holders(&self, _: &resources::SectorRef, _: &mut Vec<WorkerId>) {}
        fn can_allocate(&self, _: WorkerId, _: SectorSize) -> bool {
            false
        }
    }

    fn request(task: TaskType, n: u64, selector: Arc<dyn crate::Selector>) -> TaskRequest {
        TaskRequest {
            subject: Subject::Sector(resources::SectorRef {
                miner: 1000,
                number: n,
                proof: resources::SealProof::ALL[8],
            }),
            size: SectorSize::S32GiB,
            task,
            priority: 0,
            selector,
        }
    }

    #[test]
    fn each_worker_says_what_keeps_it_from_a_queued_task() {
        use TaskType::*;
        let mut s = Scheduler::new(SchedConfig::default());
        let off = s.add_worker(spec("no-pc2", 512 * GIB, &[PreCommit1]));
        let small = s.add_worker(spec("small", 8 * GIB, &[PreCommit2, PreCommit1]));
        let gone = s.add_worker(spec("gone", 512 * GIB, &[PreCommit2]));
        s.disconnect(gone).unwrap();
        let id = s.submit(request(PreCommit2, 1, Arc::new(TaskSelector)));
        let w = s.why_not(id).expect("queued");
        assert_eq!(w.workers[off.0 as usize].2, NotHere::TaskType);
        let NotHere::Resources(NoFit::Memory { need, free }) = w.workers[small.0 as usize].2 else {
            panic!("{:?}", w.workers[small.0 as usize]);
        };
        assert_eq!(free, 8 * GIB);
        assert!(need > free);
        assert_eq!(w.workers[gone.0 as usize].2, NotHere::Disconnected);
        assert_eq!(w.reason().map(|r| r.label()), Some("not enough RAM"));
        assert!(
            w.workers[small.0 as usize]
                .2
                .to_string()
                .starts_with("not enough RAM: needs "),
            "{}",
            w.workers[small.0 as usize].2
        );

        // A full disk is the storage's refusal, after resources.
        let pc1 = s.submit(request(
            PreCommit1,
            2,
            Arc::new(AllocSelector {
                storage: Arc::new(Full),
            }),
        ));
        let w = s.why_not(pc1).unwrap();
        assert_eq!(
            w.workers[off.0 as usize].2,
            NotHere::Storage(Refusal::NoRoomToSeal)
        );
        assert_eq!(s.why_queued(10).len(), 2);

        // A pass leaves it queued, for the same reason.
        s.schedule();
        assert_eq!(
            s.why_not(id).and_then(|w| w.reason()).map(|r| r.label()),
            Some("not enough RAM")
        );
    }

    #[test]
    fn max_concurrent_and_full_windows_are_named() {
        use TaskType::*;
        let mut sp = spec("one", 512 * GIB, &[PreCommit1]);
        sp.table
            .get_mut(PreCommit1, SectorSize::S32GiB)
            .max_concurrent = 1;
        let mut s = Scheduler::new(SchedConfig::default());
        s.add_worker(sp);
        let a = s.submit(request(PreCommit1, 1, Arc::new(TaskSelector)));
        let b = s.submit(request(PreCommit1, 2, Arc::new(TaskSelector)));
        s.schedule();
        assert!(s.why_not(a).is_none(), "placed");
        let w = s.why_not(b).unwrap();
        assert_eq!(
            w.workers[0].2,
            NotHere::Resources(NoFit::MaxConcurrent { max: 1 })
        );
        assert_eq!(
            w.workers[0].2.to_string(),
            "MaxConcurrent reached (1 running)"
        );
    }
}
