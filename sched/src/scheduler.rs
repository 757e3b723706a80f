//! The scheduler's state and its lifecycle API: workers come and go, requests are submitted,
//! assigned by passes (`assign.rs`), prepared, run and finished.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use resources::topology::Place;
use resources::{SectorSize, Subject, TaskSet, TaskType};
use serde::{Deserialize, Serialize};

use crate::jobs::JobState;
use crate::request::{QueueKey, RequestId, RequestQueue, TaskHandle, TaskRequest, WorkerId};
use crate::worker::{Need, Worker, WorkerSpec};

/// How the scheduler picks among workers that can take a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Assigner {
    /// The least utilized worker (lotus's default).
    #[default]
    Utilization,
    /// The worker with the fewest tasks.
    Spread,
}

impl std::str::FromStr for Assigner {
    type Err = SchedError;
    fn from_str(s: &str) -> Result<Self, SchedError> {
        match s {
            "utilization" => Ok(Assigner::Utilization),
            "spread" => Ok(Assigner::Spread),
            other => Err(SchedError::UnknownAssigner(other.to_string())),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedConfig {
    pub assigner: Assigner,
    /// Scheduling windows per worker (lotus: 2).
    pub windows: usize,
    /// Count a task's memory as the highest peak RSS its processors were seen to reach on that
    /// worker (type and size), with a tenth more, rather than the resource table (off: lotus's
    /// table, as lotus).
    #[serde(default)]
    pub measured_memory: bool,
}

impl Default for SchedConfig {
    fn default() -> Self {
        SchedConfig {
            assigner: Assigner::Utilization,
            windows: 2,
            measured_memory: false,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SchedError {
    #[error("unknown worker {0}")]
    UnknownWorker(WorkerId),
    #[error("unknown request {0}")]
    UnknownRequest(RequestId),
    #[error("request {id} is {state}, not {expected}")]
    WrongState {
        id: RequestId,
        state: String,
        expected: &'static str,
    },
    #[error("report for request {id} attempt {attempt} is stale (now attempt {current})")]
    StaleAttempt {
        id: RequestId,
        attempt: u32,
        current: u32,
    },
    #[error("unknown assigner {0:?} (expected utilization or spread)")]
    UnknownAssigner(String),
}

/// Where a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Queued,
    Assigned { window: usize },
    Preparing,
    Prepared,
    Running,
}

pub(crate) struct Entry {
    pub req: TaskRequest,
    pub key: QueueKey,
    pub stage: Stage,
    pub attempt: u32,
    /// The worker it is placed on and what it takes there (not while queued).
    pub placed: Option<(WorkerId, Need)>,
    pub since: Instant,
    /// Passes in which a task behind it in the queue took some of what it lacked on a worker
    /// (from [`crate::assign::OVERTAKEN_HOLD`] on, it holds one).
    pub overtaken: u32,
}

/// Something the embedder must do on a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub kind: ActionKind,
    pub handle: TaskHandle,
    pub worker: WorkerId,
    pub subject: Subject,
    pub task: TaskType,
    /// Execute only, on a worker that reported its CPU layout: the CPUs (and GPU) the task
    /// runs on.
    pub place: Option<Place>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// Fetch the task's inputs onto the worker; report with `prepared`.
    Prepare,
    /// Run the task; report with `finished`.
    Execute,
}

/// A request that left the scheduler, with where it ran.
#[derive(Debug, Clone)]
pub struct Finished {
    pub id: RequestId,
    pub subject: Subject,
    pub task: TaskType,
    pub worker: Option<WorkerId>,
}

/// The global scheduler: queue, workers, windows and task states. No I/O happens here; the
/// embedder runs the actions it hands out and reports back.
pub struct Scheduler {
    pub(crate) config: SchedConfig,
    pub(crate) workers: Vec<Option<Worker>>,
    pub(crate) entries: HashMap<RequestId, Entry>,
    pub(crate) queue: RequestQueue,
    pub(crate) actions: VecDeque<Action>,
    /// Workers the last pass held for a waiting request (`assign`), and for which.
    pub(crate) held: HashMap<WorkerId, (RequestId, Need)>,
    next_id: u64,
}

impl Scheduler {
    pub fn new(config: SchedConfig) -> Self {
        Scheduler {
            config,
            workers: Vec::new(),
            entries: HashMap::new(),
            queue: RequestQueue::default(),
            actions: VecDeque::new(),
            held: HashMap::new(),
            next_id: 0,
        }
    }

    pub fn config(&self) -> &SchedConfig {
        &self.config
    }

    // ---- workers ----

    pub fn add_worker(&mut self, spec: WorkerSpec) -> WorkerId {
        let id = WorkerId(self.workers.len() as u32);
        tracing::debug!(worker = %id, name = %spec.name, "worker added");
        let mut w = Worker::new(spec, self.config.windows);
        w.measured_memory = self.config.measured_memory;
        self.workers.push(Some(w));
        id
    }

    /// Call `call_id` of `task` was running at `place` on worker `id` when it registered (it
    /// started before this scheduler did): its CPUs stay held until [`Scheduler::returned`].
    pub fn running_already(&mut self, id: WorkerId, call_id: &str, task: TaskType, place: &Place) {
        if let Some(m) = self.worker_mut(id).ok().and_then(|w| w.cpus.as_mut()) {
            m.running_already(call_id, task, place);
        }
    }

    /// Call `call_id` returned: CPUs held for it as found running are free.
    pub fn returned(&mut self, call_id: &str) {
        for w in self.workers.iter_mut().flatten() {
            if let Some(m) = w.cpus.as_mut() {
                if m.returned(call_id) {
                    return;
                }
            }
        }
    }

    /// A task of `task` and `size` on worker `id` reached `peak_rss` bytes: with
    /// `measured_memory`, later tasks of that type and size there count the highest peak seen.
    pub fn observe(&mut self, id: WorkerId, task: TaskType, size: SectorSize, peak_rss: u64) {
        if let Ok(w) = self.worker_mut(id) {
            let seen = w.measured.entry((task, size)).or_default();
            *seen = (*seen).max(peak_rss);
        }
    }

    /// Each worker as it registered (its resources, table and task types), with whether it is
    /// enabled and connected.
    pub fn worker_specs(&self) -> impl Iterator<Item = (WorkerId, bool, bool, &WorkerSpec)> {
        self.workers.iter().enumerate().filter_map(|(i, w)| {
            let w = w.as_ref()?;
            Some((WorkerId(i as u32), w.enabled, w.connected, &w.spec))
        })
    }

    pub(crate) fn worker_ref(&self, id: WorkerId) -> Result<&Worker, SchedError> {
        self.workers
            .get(id.0 as usize)
            .and_then(Option::as_ref)
            .ok_or(SchedError::UnknownWorker(id))
    }

    fn worker_mut(&mut self, id: WorkerId) -> Result<&mut Worker, SchedError> {
        self.workers
            .get_mut(id.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(SchedError::UnknownWorker(id))
    }

    pub fn worker_ids(&self) -> impl Iterator<Item = WorkerId> + '_ {
        self.workers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.is_some())
            .map(|(i, _)| WorkerId(i as u32))
    }

    /// Enables or disables a worker. A disabled worker gets no new work; what sat in its windows
    /// goes back to the queue. Returns how many requests were requeued.
    pub fn set_enabled(&mut self, id: WorkerId, enabled: bool) -> Result<usize, SchedError> {
        self.worker_mut(id)?.enabled = enabled;
        Ok(if enabled {
            0
        } else {
            self.requeue_where(id, |s| matches!(s, Stage::Assigned { .. }))
        })
    }

    /// The task types a worker accepts changed (`worker tasks enable|disable`). What waits in its
    /// windows for a type it no longer takes goes back to the queue; running tasks go on.
    pub fn set_tasks(&mut self, id: WorkerId, tasks: TaskSet) -> Result<usize, SchedError> {
        let w = self.worker_mut(id)?;
        if w.spec.tasks == tasks {
            return Ok(0);
        }
        w.spec.tasks = tasks;
        w.version += 1;
        let dropped: Vec<RequestId> = self
            .on_worker(id)
            .filter(|r| {
                let e = &self.entries[r];
                matches!(e.stage, Stage::Assigned { .. }) && !tasks.contains(e.req.task)
            })
            .collect();
        for r in &dropped {
            self.requeue_one(*r);
        }
        tracing::info!(worker = %id, %tasks, requeued = dropped.len(), "worker task types changed");
        Ok(dropped.len())
    }

    /// The worker stopped answering. Everything not yet running on it (windows, preparing,
    /// prepared) goes back to the queue at once; running tasks wait for the worker (ret-wait).
    pub fn disconnect(&mut self, id: WorkerId) -> Result<usize, SchedError> {
        self.worker_mut(id)?.connected = false;
        let n = self.requeue_where(id, |s| s != Stage::Running);
        tracing::info!(worker = %id, requeued = n, "worker disconnected");
        Ok(n)
    }

    /// The same worker session is back: its running tasks are its own again.
    pub fn reconnect(&mut self, id: WorkerId) -> Result<(), SchedError> {
        self.worker_mut(id)?.connected = true;
        tracing::info!(worker = %id, "worker reconnected");
        Ok(())
    }

    /// Forgets a worker. Unstarted work is requeued; the running tasks are returned (they are
    /// lost with the worker, and the caller decides whether to submit them again).
    pub fn remove_worker(&mut self, id: WorkerId) -> Result<Vec<Finished>, SchedError> {
        self.worker_ref(id)?;
        self.requeue_where(id, |s| s != Stage::Running);
        let running: Vec<RequestId> = self.on_worker(id).collect();
        let lost = running.into_iter().map(|r| self.end(r)).collect();
        self.workers[id.0 as usize] = None;
        Ok(lost)
    }

    fn on_worker(&self, id: WorkerId) -> impl Iterator<Item = RequestId> + '_ {
        self.entries
            .iter()
            .filter(move |(_, e)| matches!(e.placed, Some((w, _)) if w == id))
            .map(|(r, _)| *r)
    }

    fn requeue_where(&mut self, id: WorkerId, pred: impl Fn(Stage) -> bool) -> usize {
        let ids: Vec<RequestId> = self
            .on_worker(id)
            .filter(|r| pred(self.entries[r].stage))
            .collect();
        for r in &ids {
            self.requeue_one(*r);
        }
        ids.len()
    }

    /// Releases what a placed request holds and puts it back in the queue at its old position.
    fn requeue_one(&mut self, id: RequestId) {
        self.unplace(id);
        let e = self.entries.get_mut(&id).expect("entry");
        e.stage = Stage::Queued;
        e.since = Instant::now();
        self.queue.insert(e.key, id);
    }

    /// Releases a request's resources and window slot on its worker.
    fn unplace(&mut self, id: RequestId) {
        let e = self.entries.get_mut(&id).expect("entry");
        let Some((wid, need)) = e.placed.take() else {
            return;
        };
        let stage = e.stage;
        if let Some(w) = self
            .workers
            .get_mut(wid.0 as usize)
            .and_then(Option::as_mut)
        {
            w.usage.remove(&need);
            if let Some(m) = w.cpus.as_mut() {
                m.release(id);
            }
            if let Stage::Assigned { window } = stage {
                w.windows[window].retain(|r| *r != id);
            }
        }
    }

    // ---- requests ----

    pub fn submit(&mut self, req: TaskRequest) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        let key = QueueKey::new(&req, id.0);
        self.queue.insert(key, id);
        self.entries.insert(
            id,
            Entry {
                req,
                key,
                stage: Stage::Queued,
                attempt: 0,
                placed: None,
                since: Instant::now(),
                overtaken: 0,
            },
        );
        id
    }

    /// Withdraws a request that has not started preparing (queued, or waiting in a window).
    pub fn abort(&mut self, id: RequestId) -> Result<Finished, SchedError> {
        let e = self
            .entries
            .get(&id)
            .ok_or(SchedError::UnknownRequest(id))?;
        match e.stage {
            Stage::Queued | Stage::Assigned { .. } => Ok(self.end(id)),
            s => Err(SchedError::WrongState {
                id,
                state: stage_name(s),
                expected: "queued or assigned",
            }),
        }
    }

    /// Removes a request wherever it is, releasing what it held.
    fn end(&mut self, id: RequestId) -> Finished {
        if self.entries[&id].stage == Stage::Queued {
            let key = self.entries[&id].key;
            self.queue.remove(&key);
        }
        let worker = self.entries[&id].placed.map(|(w, _)| w);
        self.unplace(id);
        let e = self.entries.remove(&id).expect("entry");
        Finished {
            id,
            subject: e.req.subject,
            task: e.req.task,
            worker,
        }
    }

    fn check(
        &self,
        h: TaskHandle,
        expected: &'static str,
        ok: fn(Stage) -> bool,
    ) -> Result<(), SchedError> {
        let e = self
            .entries
            .get(&h.id)
            .ok_or(SchedError::UnknownRequest(h.id))?;
        if e.attempt != h.attempt {
            return Err(SchedError::StaleAttempt {
                id: h.id,
                attempt: h.attempt,
                current: e.attempt,
            });
        }
        if !ok(e.stage) {
            return Err(SchedError::WrongState {
                id: h.id,
                state: stage_name(e.stage),
                expected,
            });
        }
        Ok(())
    }

    /// Hands out what must happen next: inputs to prepare for tasks in windows, and tasks whose
    /// inputs are ready to execute. Taking an action moves the task on.
    pub fn take_actions(&mut self) -> Vec<Action> {
        for (wi, slot) in self.workers.iter_mut().enumerate() {
            let Some(w) = slot else { continue };
            for window in w.windows.iter_mut() {
                for id in window.drain(..) {
                    let e = self.entries.get_mut(&id).expect("entry");
                    e.stage = Stage::Preparing;
                    e.since = Instant::now();
                    self.actions.push_back(Action {
                        kind: ActionKind::Prepare,
                        handle: TaskHandle {
                            id,
                            attempt: e.attempt,
                        },
                        worker: WorkerId(wi as u32),
                        subject: e.req.subject,
                        task: e.req.task,
                        place: None,
                    });
                }
            }
        }
        let mut out: Vec<Action> = self.actions.drain(..).collect();
        // An execute action whose task was requeued or ended since is dropped; one that goes
        // out is placed on its worker's CPUs.
        let workers = &mut self.workers;
        out.retain_mut(|a| match self.entries.get_mut(&a.handle.id) {
            Some(e) if a.kind == ActionKind::Execute => {
                let live = e.attempt == a.handle.attempt && e.stage == Stage::Prepared;
                if live {
                    e.stage = Stage::Running;
                    e.since = Instant::now();
                    if let Some((wid, need)) = e.placed {
                        a.place = workers
                            .get_mut(wid.0 as usize)
                            .and_then(Option::as_mut)
                            .and_then(|w| w.cpus.as_mut())
                            .map(|m| m.place(a.handle.id, need.task, need.threads, need.gpu_milli));
                    }
                }
                live
            }
            Some(_) => true,
            None => false,
        });
        out
    }

    /// The task's inputs are on its worker; it will be handed out to execute.
    pub fn prepared(&mut self, h: TaskHandle) -> Result<(), SchedError> {
        self.check(h, "preparing", |s| s == Stage::Preparing)?;
        let e = self.entries.get_mut(&h.id).expect("entry");
        e.stage = Stage::Prepared;
        e.since = Instant::now();
        let (worker, _) = e.placed.expect("placed");
        self.actions.push_back(Action {
            kind: ActionKind::Execute,
            handle: h,
            worker,
            subject: e.req.subject,
            task: e.req.task,
            place: None,
        });
        Ok(())
    }

    /// The task ended on its worker (successfully or not): its resources are released and the
    /// request leaves the scheduler. Also accepted while preparing (a failed fetch).
    pub fn finished(&mut self, h: TaskHandle) -> Result<Finished, SchedError> {
        self.check(h, "preparing, prepared or running", |s| {
            matches!(s, Stage::Preparing | Stage::Prepared | Stage::Running)
        })?;
        Ok(self.end(h.id))
    }

    /// Puts a placed task back in the queue to run again (its worker was lost or restarted).
    pub fn requeue(&mut self, h: TaskHandle) -> Result<(), SchedError> {
        self.check(h, "placed on a worker", |s| s != Stage::Queued)?;
        self.requeue_one(h.id);
        Ok(())
    }

    /// The state of one request as the job listing shows it (`None` while queued).
    pub fn job_state(&self, id: RequestId) -> Option<JobState> {
        let e = self.entries.get(&id)?;
        let (wid, _) = e.placed?;
        let connected = self.worker_ref(wid).map(|w| w.connected).unwrap_or(false);
        Some(match e.stage {
            Stage::Queued => return None,
            Stage::Assigned { window } => JobState::Assigned(window + 1),
            Stage::Preparing => JobState::Preparing,
            Stage::Prepared => JobState::Prepared,
            Stage::Running if !connected => JobState::RetWait,
            Stage::Running => JobState::Running,
        })
    }

    pub fn queued_len(&self) -> usize {
        self.queue.len()
    }

    /// Requests known to the scheduler, queued or placed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

pub(crate) fn stage_name(s: Stage) -> String {
    match s {
        Stage::Queued => "queued".into(),
        Stage::Assigned { window } => format!("assigned({})", window + 1),
        Stage::Preparing => "preparing".into(),
        Stage::Prepared => "prepared".into(),
        Stage::Running => "running".into(),
    }
}
