//! Glue between the scheduler (pure bookkeeping in `sched`) and the workers that run tasks: it
//! submits calls, runs scheduling passes, hands prepare/execute actions to workers, notes each
//! call with the call tracker and returns results to the waiting step.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::tasks::{ErrorKind, TaskError, TaskResult};
use api::{JobRow, TaskCall, WorkerRow};
use async_trait::async_trait;
use resources::topology::Place;
use sched::{
    ActionKind, RequestId, SchedError, Scheduler, Selector, TaskHandle, TaskRequest, WorkerId,
    WorkerSpec,
};

use crate::calls::{CallRecord, CallTracker};

/// A worker the manager can hand tasks to: the in-process worker now, remote ones later.
#[async_trait]
pub trait WorkerHandle: Send + Sync {
    /// Brings the call's input files onto the worker.
    async fn prepare(&self, call: &TaskCall) -> Result<(), TaskError>;
    /// `prepare`, with the fetch's progress told to the call tracker under `key` (where the
    /// worker can say it).
    async fn prepare_reporting(&self, call: &TaskCall, _key: &str) -> Result<(), TaskError> {
        self.prepare(call).await
    }
    /// Runs the call, known to both sides as `call_id`, where the scheduler placed it.
    async fn execute(&self, call_id: &str, call: TaskCall, place: Option<Place>) -> TaskResult;
}

/// The per-worker rows of a queued task's explanation.
fn not_here_rows(w: &sched::WhyQueued) -> Vec<api::NotHereRow> {
    w.workers
        .iter()
        .map(|(id, host, n)| api::NotHereRow {
            worker: id.to_string(),
            host: host.clone(),
            reason: n.label().to_string(),
            why: n.to_string(),
        })
        .collect()
}

/// The key a task's fetch reports its progress under (`WorkerFetch`, `WorkerProgress`).
fn prepare_key(id: RequestId) -> String {
    format!("{}{}", crate::calls::PREPARE_KEY, id.0)
}

/// lotus's RunWait number for a job state: 0 running, 1 prepared, N+1 assigned(N), -1 ret-wait.
fn run_wait_of(state: sched::JobState) -> i32 {
    use sched::JobState::*;
    match state {
        Running => 0,
        Prepared | Preparing => 1,
        Assigned(n) => n as i32 + 1,
        RetWait => -1,
    }
}

fn new_call_id() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    chain::hex(&b)
}

/// Withdraws a request when the `Manager::run` waiting for it is dropped before its result.
struct Withdraw<'a> {
    manager: &'a Manager,
    id: RequestId,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.manager.withdraw(self.id);
    }
}

/// Why `sealing abort` could not withdraw a job.
#[derive(Debug, thiserror::Error)]
pub enum AbortError {
    #[error("no job {0} (`sealing jobs` lists the running and queued ones)")]
    NoJob(u64),
    #[error(transparent)]
    Sched(SchedError),
}

struct Pending {
    call: TaskCall,
    tx: tokio::sync::oneshot::Sender<TaskResult>,
    /// When the task became ready (was submitted).
    ready: std::time::Instant,
}

/// Time from a task becoming ready to its execution being handed to a worker.
#[derive(Default)]
struct Dispatch {
    waits_us: Vec<u64>,
    /// Ready to placed on a worker: the scheduler's own part of the wait.
    assign_us: Vec<u64>,
    first: Option<std::time::Instant>,
    last: Option<std::time::Instant>,
}

struct Inner {
    sched: Scheduler,
    workers: HashMap<WorkerId, (String, Arc<dyn WorkerHandle>, bool)>,
    pending: HashMap<RequestId, Pending>,
    /// Why requests cannot be placed anywhere, last time anyone looked.
    passes: u64,
    dispatch: Dispatch,
    /// The call ID of each request handed to its worker, until it finishes.
    call_of: HashMap<RequestId, String>,
    /// Why the head of the queue waits, as last worked out (at most once a second: it asks
    /// every worker's selector about each task, under this lock).
    explained: Option<(std::time::Instant, HashMap<RequestId, sched::WhyQueued>)>,
    /// Calls a worker was running when this sealer started, waited for by their sectors (not
    /// in the scheduler's books): call ID -> what it is, on which worker, since when.
    reattached: HashMap<String, Reattached>,
}

struct Reattached {
    subject: resources::Subject,
    task: resources::TaskType,
    worker: String,
    since: std::time::Instant,
}

pub struct Manager {
    inner: Mutex<Inner>,
    /// One task preparing or executing per sector at a time: a task aborted by the operator may
    /// still be running on its worker, and its retry must not write the same files beside it. An
    /// entry lives while a task of its sector prepares or runs.
    sector_locks: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
    calls: Arc<CallTracker>,
    /// The steps' usual times on each worker.
    took: crate::took::Took,
    wake: tokio::sync::Notify,
    metrics: Arc<telemetry::SealerMetrics>,
    /// When a worker last registered (a sealer just restarted takes its workers back one by
    /// one: a thousand take half a minute).
    last_added: Mutex<Option<std::time::Instant>>,
}

impl Manager {
    pub fn new(sched: Scheduler, calls: Arc<CallTracker>) -> Arc<Manager> {
        Arc::new(Manager {
            inner: Mutex::new(Inner {
                sched,
                workers: HashMap::new(),
                pending: HashMap::new(),
                passes: 0,
                dispatch: Dispatch::default(),
                call_of: HashMap::new(),
                explained: None,
                reattached: HashMap::new(),
            }),
            sector_locks: Mutex::new(HashMap::new()),
            calls,
            took: crate::took::Took::in_memory(),
            wake: tokio::sync::Notify::new(),
            metrics: Arc::new(telemetry::SealerMetrics::new(env!("CARGO_PKG_VERSION"))),
            last_added: Mutex::new(None),
        })
    }

    /// Replaces the metrics (before any task runs): `[API] Metrics = false` counts nothing.
    pub fn with_metrics(mut self: Arc<Self>, metrics: Arc<telemetry::SealerMetrics>) -> Arc<Self> {
        Arc::get_mut(&mut self)
            .expect("metrics are set before the manager is shared")
            .metrics = metrics;
        self
    }

    /// Replaces the usual times kept in memory (before any task runs) with those of the store.
    pub fn with_took(mut self: Arc<Self>, took: crate::took::Took) -> Arc<Self> {
        Arc::get_mut(&mut self)
            .expect("the usual times are set before the manager is shared")
            .took = took;
        self
    }

    /// The steps' usual times on each worker.
    pub fn took(&self) -> &crate::took::Took {
        &self.took
    }

    pub fn metrics(&self) -> &Arc<telemetry::SealerMetrics> {
        &self.metrics
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a worker; `local` for the sealer's in-process one.
    pub fn add_worker(
        &self,
        spec: WorkerSpec,
        handle: Arc<dyn WorkerHandle>,
        local: bool,
    ) -> WorkerId {
        let name = spec.name.clone();
        let mut g = self.lock();
        let id = g.sched.add_worker(spec);
        g.workers.insert(id, (name, handle, local));
        drop(g);
        *self.last_added.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.wake.notify_one();
        id
    }

    /// After a restart at `since`, whether a worker not back yet is still waited for
    /// ([`crate::heartbeat::still_coming_back`]: while others keep registering).
    pub fn still_coming_back(&self, since: Instant) -> bool {
        let last = *self.last_added.lock().unwrap_or_else(|e| e.into_inner());
        crate::heartbeat::still_coming_back(since.elapsed(), last.map(|t| t.elapsed()))
    }

    /// Calls `worker` was running when it registered (started before this sealer): their CPUs
    /// stay held until they return.
    pub fn running_already(&self, worker: WorkerId, running: &[api::RunningCall]) {
        let mut g = self.lock();
        for r in running {
            if let Some(place) = &r.place {
                g.sched.running_already(worker, &r.call_id, r.task, place);
            }
        }
    }

    /// Call `call_id` returned through `WorkerReturn`: CPUs held for it as found running go.
    pub fn returned(&self, call_id: &str) {
        self.lock().sched.returned(call_id);
    }

    /// Queues `call` and waits for its result.
    pub async fn run(
        &self,
        call: TaskCall,
        priority: i32,
        selector: Arc<dyn Selector>,
    ) -> TaskResult {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let id = {
            let mut g = self.lock();
            let id = g.sched.submit(TaskRequest {
                subject: call.subject(),
                size: call.size(),
                task: call.task(),
                priority,
                selector,
            });
            g.pending.insert(
                id,
                Pending {
                    call,
                    tx,
                    ready: std::time::Instant::now(),
                },
            );
            id
        };
        self.wake.notify_one();
        // A caller that stops waiting (its sector's files were lost) withdraws the request.
        let _withdraw = Withdraw { manager: self, id };
        rx.await.unwrap_or_else(|_| {
            Err(TaskError::new(
                ErrorKind::Aborted,
                "the call was dropped (aborted)",
            ))
        })
    }

    /// Forgets request `id` whose caller no longer waits: a queued one leaves the queue; one
    /// preparing or running finishes on its worker (its resources counted until then) and its
    /// result is dropped.
    fn withdraw(&self, id: RequestId) {
        let mut g = self.lock();
        if g.pending.remove(&id).is_some() {
            let _ = g.sched.abort(id);
            drop(g);
            self.wake.notify_one();
        }
    }

    /// Runs scheduling passes and hands out actions until the task is dropped.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let _ = tokio::time::timeout(Duration::from_secs(1), me.wake.notified()).await;
                let actions = {
                    let mut g = me.lock();
                    g.passes += 1;
                    let pass = g.sched.schedule();
                    if pass.considered > 0 {
                        me.metrics.sched_pass(pass.elapsed.as_secs_f64());
                    }
                    g.sched.take_actions()
                };
                for a in actions {
                    let me = me.clone();
                    tokio::spawn(async move { me.act(a.kind, a.handle, a.worker, a.place).await });
                }
            }
        })
    }

    async fn act(
        self: Arc<Self>,
        kind: ActionKind,
        h: TaskHandle,
        worker: WorkerId,
        place: Option<Place>,
    ) {
        let (call, handle, wname, local) = {
            let mut g = self.lock();
            let found = g.pending.get(&h.id).and_then(|p| {
                let (name, handle, local) = g.workers.get(&worker)?;
                Some((p.call.clone(), handle.clone(), name.clone(), *local))
            });
            match found {
                Some(f) => f,
                None => {
                    // Aborted while preparing: nothing waits for it any more.
                    let _ = g.sched.finished(h);
                    drop(g);
                    self.wake.notify_one();
                    return;
                }
            }
        };
        match kind {
            ActionKind::Prepare => {
                {
                    // The prepare stage begins once the scheduler has placed the task.
                    let mut g = self.lock();
                    if let Some(ready) = g.pending.get(&h.id).map(|p| p.ready) {
                        let us = ready.elapsed().as_micros() as u64;
                        g.dispatch.assign_us.push(us);
                    }
                }
                // A fetch writes the sector's files too: not beside a call of the sector still
                // running (an aborted one, or one its step stopped waiting for).
                let sector = call.sector().map(|s| s.number);
                let key = prepare_key(h.id);
                let r = self
                    .one_at_a_time(sector, handle.prepare_reporting(&call, &key))
                    .await;
                self.calls.forget_progress(&key);
                let mut g = self.lock();
                match r {
                    Ok(()) => {
                        let _ = g.sched.prepared(h);
                    }
                    Err(e) => {
                        if g.sched.finished(h).is_ok() {
                            if let Some(p) = g.pending.remove(&h.id) {
                                let _ =
                                    p.tx.send(Err(e.context(format_args!("preparing on {wname}"))));
                            }
                        }
                    }
                }
            }
            ActionKind::Execute => {
                let now = std::time::Instant::now();
                {
                    let mut g = self.lock();
                    if let Some(ready) = g.pending.get(&h.id).map(|p| p.ready) {
                        let waited = now.duration_since(ready);
                        tracing::debug!(
                            call = %call.describe(),
                            worker = %wname,
                            waited_ms = waited.as_millis() as u64,
                            "executing"
                        );
                        self.metrics
                            .queue_waited(call.task().short(), waited.as_secs_f64());
                        let d = &mut g.dispatch;
                        d.waits_us.push(waited.as_micros() as u64);
                        d.first.get_or_insert(now);
                        d.last = Some(now);
                    }
                }
                let call_id = new_call_id();
                self.lock().call_of.insert(h.id, call_id.clone());
                let rec = CallRecord {
                    call_id: call_id.clone(),
                    local,
                    subject: call.subject(),
                    task: call.task(),
                    worker: wname.clone(),
                    started_ms: crate::fsm::now_ms(),
                    result: None,
                    runs: Vec::new(),
                };
                let sector = call.sector().map(|s| s.number);
                let (task, size) = (call.task(), call.size());
                let run = async {
                    if let Err(e) = self.calls.started(rec) {
                        tracing::error!("recording call {call_id} ({}): {e}", call.describe());
                    }
                    let what = call.describe();
                    let t0 = std::time::Instant::now();
                    self.metrics.task_started(task.short(), &wname);
                    let result = handle.execute(&call_id, call, place).await;
                    let took = t0.elapsed().as_secs_f64();
                    self.metrics
                        .task_returned(task.short(), &wname, result.is_ok(), took);
                    tracing::debug!(
                        call = %what,
                        worker = %wname,
                        run_ms = now.elapsed().as_millis() as u64,
                        ok = result.is_ok(),
                        "returned"
                    );
                    // Recorded unless the worker's `WorkerReturn` did so first.
                    self.calls.returned(&call_id, &result);
                    (result, took)
                };
                let (result, took) = self.one_at_a_time(sector, run).await;
                if result.is_ok() {
                    self.took.record(&wname, task, size, took);
                }
                let peak = self.calls.take_peak(&call_id);
                let mut g = self.lock();
                if let Some(peak) = peak {
                    g.sched.observe(worker, task, size, peak);
                }
                let _ = g.sched.finished(h);
                g.call_of.remove(&h.id);
                // An aborted call's result is dropped: its sector has moved on.
                if let Some(p) = g.pending.remove(&h.id) {
                    drop(g);
                    let _ = p.tx.send(result);
                }
            }
        }
        self.wake.notify_one();
    }

    fn sector_lock(&self, n: u64) -> Arc<tokio::sync::Mutex<()>> {
        self.sector_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(n)
            .or_default()
            .clone()
    }

    /// Drops sector `n`'s lock entry once no task of it holds or waits for the lock.
    fn release_sector_lock(&self, n: u64, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut m = self.sector_locks.lock().unwrap_or_else(|e| e.into_inner());
        // Ours and the map's: nobody else has it.
        if Arc::strong_count(&lock) == 2 {
            m.remove(&n);
        }
    }

    /// Waits until no task of sector `n` prepares or executes on a worker (one dropped by its
    /// step may still run there until its worker returns or is given up).
    pub async fn sector_idle(&self, n: u64) {
        self.one_at_a_time(Some(n), async {}).await
    }

    /// Runs `work` holding sector `n`'s lock (none for a call with no sector).
    async fn one_at_a_time<T>(
        &self,
        n: Option<u64>,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let Some(n) = n else { return work.await };
        let lock = self.sector_lock(n);
        let held = lock.lock().await;
        let out = work.await;
        drop(held);
        self.release_sector_lock(n, lock);
        out
    }

    /// Sectors with a lock entry (for tests: the map does not grow).
    pub fn lock_count(&self) -> usize {
        self.sector_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// The call tracker the manager notes calls with.
    pub fn calls(&self) -> &Arc<CallTracker> {
        &self.calls
    }

    /// A worker stopped answering: unstarted work goes back to the queue at once.
    pub fn disconnect(&self, id: WorkerId) {
        let _ = self.lock().sched.disconnect(id);
        self.wake.notify_one();
    }

    pub fn set_enabled(&self, id: WorkerId, on: bool) {
        let _ = self.lock().sched.set_enabled(id, on);
        self.wake.notify_one();
    }

    /// The task types a worker accepts changed.
    pub fn set_tasks(&self, id: WorkerId, tasks: resources::TaskSet) {
        let _ = self.lock().sched.set_tasks(id, tasks);
        self.wake.notify_one();
    }

    pub fn reconnect(&self, id: WorkerId) {
        let _ = self.lock().sched.reconnect(id);
        self.wake.notify_one();
    }

    /// Drops a worker for good (lost too long, or restarted as a new session): what it was
    /// running fails with `why`, so the sectors retry elsewhere; its resources are freed.
    pub fn remove_worker(&self, id: WorkerId, why: &str) {
        let mut g = self.lock();
        let ended = g.sched.remove_worker(id).unwrap_or_default();
        g.workers.remove(&id);
        for f in ended {
            if let Some(p) = g.pending.remove(&f.id) {
                let _ = p.tx.send(Err(TaskError::worker_lost(format!(
                    "{} on {id}: {why}",
                    f.task.short()
                ))));
            }
        }
        drop(g);
        self.wake.notify_one();
    }

    /// `sealing abort`: drops a request; the sector waiting for it sees an error and retries
    /// after its cool-down.
    pub fn abort(&self, id: u64) -> Result<(), AbortError> {
        let rid = RequestId(id);
        let mut g = self.lock();
        let p = g.pending.remove(&rid).ok_or(AbortError::NoJob(id))?;
        match g.sched.abort(rid) {
            // Queued or in a window: withdrawn.
            Ok(_) => {}
            // Preparing or running: the worker finishes it, its resources stay counted until
            // then, and its result is dropped.
            Err(SchedError::WrongState { .. }) => {}
            Err(e) => {
                g.pending.insert(rid, p);
                return Err(AbortError::Sched(e));
            }
        }
        let _ = p.tx.send(Err(TaskError::new(
            ErrorKind::Aborted,
            format!("job {id} aborted by the operator"),
        )));
        drop(g);
        self.wake.notify_one();
        Ok(())
    }

    /// The mean duration of the task type's successful runs so far, in seconds.
    pub fn usual_secs(&self, task: resources::TaskType) -> Option<f64> {
        self.took.usual_secs(task)
    }

    /// A call `worker` was running before this sealer restarted is waited for again (shown
    /// by `sealing jobs` as running until `reattach_done`).
    pub fn reattaching(&self, call_id: &str, call: &api::TaskCall, worker: &str) {
        let r = Reattached {
            subject: call.subject(),
            task: call.task(),
            worker: worker.to_string(),
            since: std::time::Instant::now(),
        };
        self.lock().reattached.insert(call_id.to_string(), r);
    }

    pub fn reattach_done(&self, call_id: &str) {
        self.lock().reattached.remove(call_id);
    }

    pub fn jobs(&self) -> Vec<JobRow> {
        let g = self.lock();
        let reattached = g.reattached.iter().map(|(call, r)| {
            let id = g
                .workers
                .iter()
                .find(|(_, (n, _, local))| *n == r.worker && !local);
            JobRow {
                id: 0,
                subject: r.subject,
                worker: id.map_or_else(|| "-".to_string(), |(id, _)| id.to_string()),
                hostname: r.worker.clone(),
                task: r.task,
                state: "running".into(),
                run_wait: 0,
                elapsed_ms: r.since.elapsed().as_millis() as u64,
                cpus: None,
                progress: self.calls.progress_of(call),
            }
        });
        let reattached: Vec<JobRow> = reattached.collect();
        g.sched
            .jobs()
            .into_iter()
            .map(|j| JobRow {
                id: j.id.0,
                subject: j.subject,
                worker: j.worker.to_string(),
                hostname: j.hostname,
                task: j.task,
                state: j.state.to_string(),
                run_wait: run_wait_of(j.state),
                elapsed_ms: j.elapsed.as_millis() as u64,
                cpus: j.cpus,
                progress: match g.call_of.get(&j.id) {
                    Some(c) => self.calls.progress_of(c),
                    None => self.calls.progress_of(&prepare_key(j.id)),
                },
            })
            .chain(reattached)
            .collect()
    }

    /// Each registered worker as the scheduler has it: ID, whether enabled and connected, and
    /// its spec.
    pub fn worker_specs(&self) -> Vec<(WorkerId, bool, bool, sched::WorkerSpec)> {
        let g = self.lock();
        g.sched
            .worker_specs()
            .map(|(id, enabled, connected, spec)| (id, enabled, connected, spec.clone()))
            .collect()
    }

    pub fn worker_stats(&self) -> Vec<WorkerRow> {
        let g = self.lock();
        let jobs = g.sched.jobs();
        g.sched
            .worker_stats()
            .into_iter()
            .map(|w| {
                let mut task_counts = std::collections::BTreeMap::new();
                for j in jobs.iter().filter(|j| j.worker == w.id) {
                    *task_counts.entry(j.task.short().to_string()).or_insert(0) += 1;
                }
                WorkerRow {
                    id: w.id.to_string(),
                    hostname: w.name,
                    enabled: w.enabled,
                    connected: w.connected,
                    tasks: w.tasks,
                    resources: w.resources,
                    usage: api::WorkerUsage {
                        mem_min: w.usage.mem_min(),
                        mem_max: w.usage.mem_max(),
                        cpus: w.usage.cpus(),
                        gpu_milli: w.usage.gpu_milli(),
                    },
                    task_counts,
                    cpus: w.cpus.as_ref().map(|c| c.allowed.clone()),
                    cpus_held: w
                        .cpus
                        .iter()
                        .flat_map(|c| &c.held)
                        .filter_map(|(id, h)| {
                            let j = jobs.iter().find(|j| j.id == *id)?;
                            Some(api::CpusHeld {
                                task: h.task,
                                subject: j.subject,
                                cpus: h.cpus.clone(),
                                exclusive: h.exclusive,
                                gpu: h.gpu,
                            })
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// Workers that take new tasks now (connected and enabled): ID, name and task types.
    pub fn usable_workers(&self) -> Vec<(WorkerId, String, resources::TaskSet)> {
        let mut v: Vec<_> = self
            .lock()
            .sched
            .worker_stats()
            .into_iter()
            .filter(|w| w.enabled && w.connected)
            .map(|w| (w.id, w.name, w.tasks))
            .collect();
        v.sort_by_key(|w| w.0);
        v
    }

    /// Workers by ID with their names.
    pub fn worker_names(&self) -> Vec<(WorkerId, String)> {
        let mut v: Vec<(WorkerId, String)> = self
            .lock()
            .workers
            .iter()
            .map(|(id, (name, _, _))| (*id, name.clone()))
            .collect();
        v.sort();
        v
    }

    /// The remote worker registered under `name`, if one is.
    pub fn remote_by_name(&self, name: &str) -> Option<Arc<dyn WorkerHandle>> {
        self.lock()
            .workers
            .values()
            .find(|(n, _, local)| n == name && !local)
            .map(|(_, h, _)| h.clone())
    }

    pub fn worker_count(&self) -> usize {
        self.lock().workers.len()
    }

    /// `sealing sched-diag`: the queue, what no worker can ever take, dispatch latency and the
    /// accounting check (the caller adds where workers have room).
    pub fn sched_diag(&self) -> api::SchedDiag {
        let mut g = self.lock();
        let fresh = g
            .explained
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < Duration::from_secs(1));
        if !fresh {
            let why = g.sched.why_queued(api::SchedDiag::EXPLAINED);
            g.explained = Some((
                std::time::Instant::now(),
                why.into_iter().map(|w| (w.id, w)).collect(),
            ));
        }
        let g = g;
        let explained = &g.explained.as_ref().expect("just worked out").1;
        let job = |id: RequestId, p: &Pending, why: Option<&str>| api::QueuedJob {
            id: id.0,
            subject: p.call.subject().to_string(),
            task: p.call.task().short().to_string(),
            why: why.map(str::to_string),
            reason: None,
            workers: Vec::new(),
        };
        let unplaceable = g
            .sched
            .unplaceable()
            .into_iter()
            .filter_map(|id| {
                g.pending.get(&id).map(|p| {
                    job(id, p, Some("no connected, enabled worker supports this task type with enough resources and storage"))
                })
            })
            .collect();
        let mut queued: Vec<api::QueuedJob> = g
            .pending
            .iter()
            .filter(|(id, _)| g.sched.job_state(**id).is_none())
            .map(|(id, p)| {
                let Some(w) = explained.get(id) else {
                    return job(*id, p, None);
                };
                let closest = w.reason().map(|r| r.to_string());
                api::QueuedJob {
                    workers: not_here_rows(w),
                    reason: w.reason().map(|r| r.label().to_string()),
                    ..job(*id, p, closest.as_deref())
                }
            })
            .collect();
        queued.sort_by_key(|q| q.id);
        let sorted = |v: &[u64]| {
            let mut v = v.to_vec();
            v.sort_unstable();
            v
        };
        let (waits, assign) = (sorted(&g.dispatch.waits_us), sorted(&g.dispatch.assign_us));
        let pct = |v: &[u64], p: f64| {
            v.get(((v.len() as f64 * p).ceil() as usize).saturating_sub(1))
                .map(|us| *us as f64 / 1000.0)
        };
        let span = match (g.dispatch.first, g.dispatch.last) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        api::SchedDiag {
            dispatch: api::DispatchStats {
                tasks: waits.len(),
                ready_to_start_p50_ms: pct(&waits, 0.5),
                ready_to_start_p99_ms: pct(&waits, 0.99),
                ready_to_start_max_ms: pct(&waits, 1.0),
                ready_to_assign_p50_ms: pct(&assign, 0.5),
                ready_to_assign_p99_ms: pct(&assign, 0.99),
                first_to_last_start_s: span,
            },
            passes: g.passes,
            queued,
            unplaceable,
            workers: g.workers.len(),
            invariants: g.sched.check_invariants().err(),
            storage: Vec::new(),
            sectors_waiting: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::tasks::{PoStTarget, TaskOutput};
    use resources::{SealProof, SectorRef, Subject, TaskType};

    /// A worker that proves instantly, or holds WDP until told to go on.
    struct FakeWorker {
        hold_wdp: tokio::sync::Semaphore,
    }

    #[async_trait]
    impl WorkerHandle for FakeWorker {
        async fn prepare(&self, _call: &TaskCall) -> Result<(), TaskError> {
            Ok(())
        }
        async fn execute(
            &self,
            _call_id: &str,
            call: TaskCall,
            _place: Option<Place>,
        ) -> TaskResult {
            match call {
                TaskCall::WinningPoSt { .. } => Ok(TaskOutput::WinningPoSt(vec![1])),
                TaskCall::WindowPoSt { .. } => {
                    let _go = self.hold_wdp.acquire().await;
                    Ok(TaskOutput::WindowPoSt(vec![2]))
                }
                TaskCall::AddPiece { .. } => Err(TaskError::new(ErrorKind::OutOfSpace, "full")),
                _ => Err(TaskError::temporary("not faked")),
            }
        }
    }

    fn manager(dir: &std::path::Path) -> (Arc<Manager>, Arc<FakeWorker>) {
        let db = db::Db::open(dir).unwrap();
        let m = Manager::new(
            Scheduler::new(sched::SchedConfig::default()),
            CallTracker::open(db).unwrap(),
        );
        let w = Arc::new(FakeWorker {
            hold_wdp: tokio::sync::Semaphore::new(0),
        });
        let tasks = [
            TaskType::WinningPoSt,
            TaskType::WindowPoSt,
            TaskType::AddPiece,
        ];
        m.add_worker(
            sched::sim::spec("fake", 64, 16, 0, &tasks),
            w.clone(),
            false,
        );
        m.spawn();
        (m, w)
    }

    fn targets() -> Vec<PoStTarget> {
        vec![PoStTarget {
            sector: SectorRef::new(1000, 1, SealProof::StackedDrg2KiBV1_1),
            comm_r: [1; 32],
        }]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn five_hundred_elections_leave_no_call_records_or_locks() {
        let dir = tempfile::tempdir().unwrap();
        let (m, _w) = manager(dir.path());
        for epoch in 0..500 {
            let call = TaskCall::WinningPoSt {
                miner: 1000,
                epoch,
                randomness: [0; 32],
                sectors: targets(),
            };
            let out = m.run(call, 0, Arc::new(sched::TaskSelector)).await;
            assert_eq!(out, Ok(TaskOutput::WinningPoSt(vec![1])), "epoch {epoch}");
        }
        assert_eq!(m.calls().counts(), (0, 0), "calls stored, in memory");
        assert_eq!(m.lock_count(), 0);
        // A sealing call is recorded for resume; its lock entry goes when it is done.
        let sector = SectorRef::new(1000, 9, SealProof::StackedDrg2KiBV1_1);
        let err = m
            .run(
                TaskCall::AddPiece { sector },
                0,
                Arc::new(sched::TaskSelector),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::OutOfSpace);
        assert_eq!(m.calls().counts(), (1, 0));
        assert_eq!(m.lock_count(), 0);
        let rec = m
            .calls()
            .find(&Subject::Sector(sector), TaskType::AddPiece)
            .unwrap()
            .unwrap();
        assert_eq!(rec.result, Some(Err(err)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_running_windowpost_is_listed_by_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let (m, w) = manager(dir.path());
        let call = TaskCall::WindowPoSt {
            miner: 1000,
            deadline: 12,
            randomness: [0; 32],
            sectors: targets(),
            check_only: false,
        };
        let m2 = m.clone();
        let run = tokio::spawn(async move { m2.run(call, 0, Arc::new(sched::TaskSelector)).await });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let job = loop {
            if let Some(j) = m.jobs().into_iter().find(|j| j.state == "running") {
                break j;
            }
            assert!(std::time::Instant::now() < deadline, "WDP never ran");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(
            job.subject,
            Subject::WindowPoSt {
                miner: 1000,
                deadline: 12,
                check: false
            }
        );
        assert_eq!(
            (job.task, job.subject.to_string().as_str()),
            (TaskType::WindowPoSt, "deadline 12")
        );
        w.hold_wdp.add_permits(1);
        assert_eq!(run.await.unwrap(), Ok(TaskOutput::WindowPoSt(vec![2])));
        assert!(m.jobs().is_empty());
        assert_eq!(m.calls().counts(), (0, 0));
    }
}
