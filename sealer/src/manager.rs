//! Glue between the scheduler (pure bookkeeping in `sched`) and the workers that run tasks: it
//! submits calls, runs scheduling passes, hands prepare/execute actions to workers, tracks each
//! call in RocksDB (`calls/`) and returns results to the waiting sector.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::tasks::TaskResult;
use api::{JobRow, TaskCall, WorkerRow};
use async_trait::async_trait;
use resources::{SectorRef, TaskType};
use sched::{
    ActionKind, RequestId, SchedError, Scheduler, Selector, TaskHandle, TaskRequest, WorkerId,
    WorkerSpec,
};
use serde::{Deserialize, Serialize};

use crate::db::Db;

/// A worker the manager can hand tasks to: the in-process worker now, remote ones later.
#[async_trait]
pub trait WorkerHandle: Send + Sync {
    /// Brings the call's input files onto the worker.
    async fn prepare(&self, call: &TaskCall) -> Result<(), String>;
    /// Runs the call, known to both sides as `call_id`.
    async fn execute(&self, call_id: &str, call: TaskCall) -> TaskResult;
}

/// A call as recorded in the metadata store: where it runs and, once back, its result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallRecord {
    pub call_id: String,
    pub sector: SectorRef,
    pub task: TaskType,
    pub worker: String,
    /// Whether the worker is the sealer's own (its calls die with the sealer).
    pub local: bool,
    pub started_ms: u64,
    pub result: Option<TaskResult>,
}

fn new_call_id() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    crate::chain::hex(&b)
}

pub fn call_key(sector: &SectorRef, task: TaskType) -> String {
    format!("calls/{:020}/{}", sector.number, task.short())
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
}

pub struct Manager {
    inner: Mutex<Inner>,
    /// One task executing per sector at a time: a task aborted by the operator may still be
    /// running on its worker, and its retry must not write the same files beside it.
    sector_locks: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
    /// Callers waiting for a remote worker's `WorkerReturn`, by call ID.
    returns: Mutex<HashMap<String, tokio::sync::oneshot::Sender<TaskResult>>>,
    wake: tokio::sync::Notify,
    db: Db,
}

impl Manager {
    pub fn new(sched: Scheduler, db: Db) -> Arc<Manager> {
        Arc::new(Manager {
            inner: Mutex::new(Inner {
                sched,
                workers: HashMap::new(),
                pending: HashMap::new(),
                passes: 0,
                dispatch: Dispatch::default(),
            }),
            sector_locks: Mutex::new(HashMap::new()),
            returns: Mutex::new(HashMap::new()),
            wake: tokio::sync::Notify::new(),
            db,
        })
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
        self.wake.notify_one();
        id
    }

    /// Queues `call` and waits for its result.
    pub async fn run(
        &self,
        call: TaskCall,
        priority: i32,
        selector: Arc<dyn Selector>,
    ) -> TaskResult {
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let mut g = self.lock();
            let id = g.sched.submit(TaskRequest {
                sector: call.sector(),
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
        }
        self.wake.notify_one();
        rx.await
            .unwrap_or_else(|_| Err("the call was dropped (aborted)".into()))
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
                    g.sched.schedule();
                    g.sched.take_actions()
                };
                for a in actions {
                    let me = me.clone();
                    tokio::spawn(async move { me.act(a.kind, a.handle, a.worker).await });
                }
            }
        })
    }

    async fn act(self: Arc<Self>, kind: ActionKind, h: TaskHandle, worker: WorkerId) {
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
                let r = handle.prepare(&call).await;
                let mut g = self.lock();
                match r {
                    Ok(()) => {
                        let _ = g.sched.prepared(h);
                    }
                    Err(e) => {
                        if g.sched.finished(h).is_ok() {
                            if let Some(p) = g.pending.remove(&h.id) {
                                let _ = p.tx.send(Err(format!("preparing on {wname}: {e}")));
                            }
                        }
                    }
                }
            }
            ActionKind::Execute => {
                let key = call_key(&call.sector(), call.task());
                {
                    let mut g = self.lock();
                    let now = std::time::Instant::now();
                    if let Some(ready) = g.pending.get(&h.id).map(|p| p.ready) {
                        let d = &mut g.dispatch;
                        d.waits_us
                            .push(now.duration_since(ready).as_micros() as u64);
                        d.first.get_or_insert(now);
                        d.last = Some(now);
                    }
                }
                let call_id = new_call_id();
                let mut rec = CallRecord {
                    call_id: call_id.clone(),
                    local,
                    sector: call.sector(),
                    task: call.task(),
                    worker: wname.clone(),
                    started_ms: crate::fsm::now_ms(),
                    result: None,
                };
                let lock = self
                    .sector_locks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(call.sector().number)
                    .or_default()
                    .clone();
                let _one_at_a_time = lock.lock().await;
                if let Err(e) = self.db.put_unsynced(&key, &rec) {
                    tracing::error!("recording call {key}: {e}");
                }
                let result = handle.execute(&call_id, call).await;
                let mut g = self.lock();
                let _ = g.sched.finished(h);
                // An aborted call's result is dropped: its sector has moved on.
                if let Some(p) = g.pending.remove(&h.id) {
                    drop(g);
                    // A remote worker's `WorkerReturn` has recorded it already.
                    let recorded = matches!(self.db.get::<CallRecord>(&key),
                        Ok(Some(r)) if r.call_id == rec.call_id && r.result.is_some());
                    if !recorded {
                        rec.result = Some(result.clone());
                        if let Err(e) = self.db.put_unsynced(&key, &rec) {
                            tracing::error!("recording the result of {key}: {e}");
                        }
                    }
                    let _ = p.tx.send(result);
                }
            }
        }
        self.wake.notify_one();
    }

    /// Registers, at once, that the result of call `call_id` (run by a remote worker, arriving
    /// through `deliver`) is awaited, and returns the wait. Register before sending the call:
    /// a quick worker can return the result before the send itself has been answered.
    pub fn expect_return(
        &self,
        call_id: &str,
    ) -> impl std::future::Future<Output = TaskResult> + Send + 'static {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.returns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(call_id.to_string(), tx);
        let call_id = call_id.to_string();
        async move {
            rx.await
                .unwrap_or_else(|_| Err(format!("call {call_id}: its worker was lost")))
        }
    }

    /// A worker returned a call's result. Returns whether someone was waiting for it.
    pub fn deliver(&self, call_id: &str, result: TaskResult) -> bool {
        let tx = self
            .returns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(call_id);
        tx.is_some_and(|tx| tx.send(result).is_ok())
    }

    /// Fails every return waited for from calls in `ids` (their worker is gone).
    pub fn fail_returns(&self, ids: &[String], why: &str) {
        let mut r = self.returns.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            if let Some(tx) = r.remove(id) {
                let _ = tx.send(Err(why.to_string()));
            }
        }
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
                let _ = p.tx.send(Err(format!("{} on {id}: {why}", f.task.short())));
            }
        }
        drop(g);
        self.wake.notify_one();
    }

    /// `sealing abort`: drops a request; the sector waiting for it sees an error and retries
    /// after its cool-down.
    pub fn abort(&self, id: u64) -> Result<(), String> {
        let rid = RequestId(id);
        let mut g = self.lock();
        let p = g
            .pending
            .remove(&rid)
            .ok_or_else(|| format!("no job {id}"))?;
        match g.sched.abort(rid) {
            // Queued or in a window: withdrawn.
            Ok(_) => {}
            // Preparing or running: the worker finishes it, its resources stay counted until
            // then, and its result is dropped.
            Err(SchedError::WrongState { .. }) => {}
            Err(e) => {
                g.pending.insert(rid, p);
                return Err(e.to_string());
            }
        }
        let _ = p.tx.send(Err(format!("job {id} aborted by the operator")));
        drop(g);
        self.wake.notify_one();
        Ok(())
    }

    pub fn jobs(&self) -> Vec<JobRow> {
        let g = self.lock();
        g.sched
            .jobs()
            .into_iter()
            .map(|j| JobRow {
                id: j.id.0,
                sector: j.sector,
                worker: j.worker.to_string(),
                hostname: j.hostname,
                task: j.task,
                state: j.state.to_string(),
                run_wait: JobRow::run_wait_of(Some(j.state)),
                elapsed_ms: j.elapsed.as_millis() as u64,
            })
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
                    usage: w.usage,
                    task_counts,
                }
            })
            .collect()
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

    /// `sealing sched-diag`: the queue, what no worker can ever take, and the placed jobs.
    pub fn sched_diag(&self) -> serde_json::Value {
        let g = self.lock();
        let unplaceable: Vec<serde_json::Value> = g
            .sched
            .unplaceable()
            .into_iter()
            .filter_map(|id| {
                g.pending.get(&id).map(|p| {
                    serde_json::json!({
                        "ID": id.0,
                        "Sector": p.call.sector().number,
                        "Task": p.call.task().short(),
                        "Why": "no connected, enabled worker supports this task type with enough resources and storage",
                    })
                })
            })
            .collect();
        let mut queued: Vec<serde_json::Value> = g
            .pending
            .iter()
            .filter(|(id, _)| g.sched.job_state(**id).is_none())
            .map(|(id, p)| {
                serde_json::json!({
                    "ID": id.0,
                    "Sector": p.call.sector().number,
                    "Task": p.call.task().short(),
                })
            })
            .collect();
        queued.sort_by_key(|v| v["ID"].as_u64());
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
        serde_json::json!({
            "Dispatch": {
                "Tasks": waits.len(),
                "ReadyToStartP50Ms": pct(&waits, 0.5),
                "ReadyToStartP99Ms": pct(&waits, 0.99),
                "ReadyToStartMaxMs": pct(&waits, 1.0),
                "ReadyToAssignP50Ms": pct(&assign, 0.5),
                "ReadyToAssignP99Ms": pct(&assign, 0.99),
                "FirstToLastStartS": span,
            },
            "Passes": g.passes,
            "Queued": queued,
            "Unplaceable": unplaceable,
            "Workers": g.workers.len(),
            "Invariants": g.sched.check_invariants().err(),
        })
    }
}
