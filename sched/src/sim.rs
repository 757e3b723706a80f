//! A discrete-event simulation around the scheduler: simulated workers that take a fixed time to
//! prepare and run each task type, on a virtual clock. Used by the scenario and property tests and
//! the benchmark; it exercises exactly the API the sealer daemon uses.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use resources::{
    ResourceTable, SealProof, SectorRef, SectorSize, Subject, TaskSet, TaskType, WorkerResources,
};

use crate::request::{RequestId, TaskHandle, TaskRequest, WorkerId};
use crate::scheduler::{ActionKind, SchedConfig, Scheduler};
use crate::selector::{Selector, TaskSelector};
use crate::worker::WorkerSpec;

pub const GIB: u64 = 1 << 30;

/// A worker spec with the default resource table: `mem_gib` of RAM, no swap, `gpus` GPUs.
pub fn spec(name: &str, mem_gib: u64, cpus: u64, gpus: usize, tasks: &[TaskType]) -> WorkerSpec {
    WorkerSpec {
        name: name.to_string(),
        resources: WorkerResources {
            mem_physical: mem_gib * GIB,
            mem_used: 0,
            mem_swap: 0,
            mem_swap_used: 0,
            cpus,
            gpus: (0..gpus).map(|i| format!("Simulated GPU {i}")).collect(),
        },
        table: ResourceTable::default(),
        tasks: tasks.iter().copied().collect::<TaskSet>(),
        cpus: None,
        task_cpus: Default::default(),
    }
}

/// What happened, when, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub time: u64,
    pub worker: String,
    pub task: TaskType,
    pub sector: u64,
    pub id: RequestId,
    pub start: bool,
}

type Script = Box<dyn FnOnce(&mut Scheduler)>;

enum Event {
    Prepared(TaskHandle),
    Done(TaskHandle, WorkerId),
    Script(Script),
    Submit(TaskType, u64, SectorSize),
}

/// What a finished task leads to: (after how many virtual milliseconds, task, sector), each
/// submitted then with the finished one's sector size (a sector's next step, say).
pub type Follow = Box<dyn FnMut(TaskType, u64) -> Vec<(u64, TaskType, u64)>>;

/// A task's (prepare, run) time on a worker (by name), in virtual milliseconds.
pub type Durations = Box<dyn Fn(TaskType, SectorSize, &str) -> (u64, u64)>;

/// The simulation: a scheduler, a clock and a log.
pub struct Sim {
    pub sched: Scheduler,
    pub now: u64,
    pub log: Vec<Record>,
    /// Check the scheduler's accounting after every step.
    pub check: bool,
    /// (prepare, run) time of a task on a worker (by name), in virtual milliseconds.
    pub durations: Durations,
    /// Told each finished task (type, sector); what it returns is submitted (priority 0).
    pub follow: Option<Follow>,
    /// Asked before a scheduled submission ([`Sim::submit_at`]) is made: `false` drops it (a
    /// pledge refused at MaxSealingSectors, say).
    pub admit: Option<Box<dyn FnMut(TaskType, u64) -> bool>>,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Event>,
    seq: u64,
    info: HashMap<RequestId, (TaskType, u64, SectorSize)>,
}

impl Sim {
    pub fn new(config: SchedConfig) -> Self {
        Sim {
            sched: Scheduler::new(config),
            now: 0,
            log: Vec::new(),
            check: true,
            durations: Box::new(|_, _, _| (1, 100)),
            follow: None,
            admit: None,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            seq: 0,
            info: HashMap::new(),
        }
    }

    pub fn add_worker(&mut self, spec: WorkerSpec) -> WorkerId {
        self.sched.add_worker(spec)
    }

    /// Submits a task with the plain task selector.
    pub fn submit(
        &mut self,
        task: TaskType,
        size: SectorSize,
        sector: u64,
        priority: i32,
    ) -> RequestId {
        self.submit_with(task, size, sector, priority, Arc::new(TaskSelector))
    }

    /// Submits `task` for `sector` at virtual time `at` (priority 0).
    pub fn submit_at(&mut self, at: u64, task: TaskType, size: SectorSize, sector: u64) {
        self.push(at, Event::Submit(task, sector, size));
    }

    pub fn submit_with(
        &mut self,
        task: TaskType,
        size: SectorSize,
        sector: u64,
        priority: i32,
        selector: Arc<dyn Selector>,
    ) -> RequestId {
        let proof: SealProof = size.seal_proof();
        // PoSt is about a deadline or an epoch: `sector` numbers those.
        let subject = match task {
            TaskType::WindowPoSt => Subject::WindowPoSt {
                miner: 1000,
                deadline: sector,
                check: false,
            },
            TaskType::WinningPoSt => Subject::WinningPoSt {
                miner: 1000,
                epoch: sector as i64,
            },
            _ => Subject::Sector(SectorRef::new(1000, sector, proof)),
        };
        let id = self.sched.submit(TaskRequest {
            subject,
            size,
            task,
            priority,
            selector,
        });
        self.info.insert(id, (task, sector, size));
        id
    }

    /// Runs `f` on the scheduler at virtual time `t`.
    pub fn at(&mut self, t: u64, f: impl FnOnce(&mut Scheduler) + 'static) {
        self.push(t, Event::Script(Box::new(f)));
    }

    fn push(&mut self, t: u64, e: Event) {
        self.seq += 1;
        self.events.insert(self.seq, e);
        self.queue.push(Reverse((t, self.seq)));
    }

    fn name(&self, w: WorkerId) -> String {
        self.sched
            .worker_ref(w)
            .map(|w| w.spec.name.clone())
            .unwrap_or_default()
    }

    /// Schedules and hands out actions until nothing is left to happen (or `limit` is reached).
    pub fn run(&mut self, limit: u64) {
        loop {
            self.sched.schedule();
            for a in self.sched.take_actions() {
                let worker = self.name(a.worker);
                let (prep, run) = (self.durations)(a.task, self.info[&a.handle.id].2, &worker);
                match a.kind {
                    ActionKind::Prepare => self.push(self.now + prep, Event::Prepared(a.handle)),
                    ActionKind::Execute => {
                        self.log.push(Record {
                            time: self.now,
                            worker,
                            task: a.task,
                            sector: a.subject.number(),
                            id: a.handle.id,
                            start: true,
                        });
                        self.push(self.now + run, Event::Done(a.handle, a.worker));
                    }
                }
            }
            if self.check {
                if let Err(e) = self.sched.check_invariants() {
                    panic!("at t={}: {e}", self.now);
                }
            }
            match self.queue.peek() {
                Some(Reverse((t, _))) if *t <= limit => {}
                _ => break,
            }
            let Reverse((t, seq)) = self.queue.pop().expect("peeked");
            self.now = t;
            match self.events.remove(&seq).expect("event") {
                // Reports about requeued placements are refused as stale; that is expected.
                Event::Prepared(h) => {
                    let _ = self.sched.prepared(h);
                }
                Event::Done(h, w) => {
                    if self.sched.finished(h).is_ok() {
                        let (task, sector, size) = self.info[&h.id];
                        self.log.push(Record {
                            time: t,
                            worker: self.name(w),
                            task,
                            sector,
                            id: h.id,
                            start: false,
                        });
                        let next = self.follow.as_mut().map(|f| f(task, sector));
                        for (after, task, sector) in next.unwrap_or_default() {
                            self.push(t + after, Event::Submit(task, sector, size));
                        }
                    }
                }
                Event::Script(f) => f(&mut self.sched),
                Event::Submit(task, sector, size) => {
                    if self.admit.as_mut().is_none_or(|f| f(task, sector)) {
                        self.submit(task, size, sector, 0);
                    }
                }
            }
        }
    }

    /// Task starts in time order: (worker, task, sector).
    pub fn starts(&self) -> Vec<(String, TaskType, u64)> {
        self.log
            .iter()
            .filter(|r| r.start)
            .map(|r| (r.worker.clone(), r.task, r.sector))
            .collect()
    }

    /// Whether request `id` ran to completion.
    pub fn completed(&self, id: RequestId) -> bool {
        self.log.iter().any(|r| r.id == id && !r.start)
    }

    /// The most tasks matching `pred` that ran at the same time on `worker`.
    pub fn max_concurrent(&self, worker: &str, pred: impl Fn(TaskType) -> bool) -> usize {
        let (mut cur, mut max) = (0i64, 0i64);
        let mut evs: Vec<(u64, bool)> = self
            .log
            .iter()
            .filter(|r| r.worker == worker && pred(r.task))
            .map(|r| (r.time, r.start))
            .collect();
        // Ends before starts at the same instant.
        evs.sort();
        for (_, start) in evs {
            cur += if start { 1 } else { -1 };
            max = max.max(cur);
        }
        max as usize
    }
}
