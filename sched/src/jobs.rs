//! Listings for operators: jobs with lotus's states, and per-worker resource use.

use std::fmt;
use std::time::Duration;

use resources::topology::CpuSet;
use resources::{Subject, TaskSet, TaskType, WorkerResources};
use serde::{Deserialize, Serialize};

use crate::cpus::CpuUse;
use crate::request::{RequestId, WorkerId};
use crate::scheduler::{Scheduler, Stage};
use crate::worker::Usage;

/// A placed task's state, named as `lotus-miner sealing jobs` names them (plus `preparing`,
/// which lotus folds into `prepared`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    Running,
    Prepared,
    Preparing,
    /// Waiting in scheduling window N (1-based).
    Assigned(usize),
    /// Was running on a worker that is no longer connected; waiting for its result.
    RetWait,
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobState::Running => f.write_str("running"),
            JobState::Prepared => f.write_str("prepared"),
            JobState::Preparing => f.write_str("preparing"),
            JobState::Assigned(n) => write!(f, "assigned({n})"),
            JobState::RetWait => f.write_str("ret-wait"),
        }
    }
}

/// One row of the job listing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub id: RequestId,
    pub subject: Subject,
    pub task: TaskType,
    pub worker: WorkerId,
    pub hostname: String,
    pub state: JobState,
    /// Time in the current state.
    pub elapsed: Duration,
    /// The CPUs it runs on (running, on a worker that reported its CPU layout).
    #[serde(default)]
    pub cpus: Option<CpuSet>,
}

/// One worker's row in `sealing workers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerStats {
    pub id: WorkerId,
    pub name: String,
    pub enabled: bool,
    pub connected: bool,
    pub tasks: TaskSet,
    pub resources: WorkerResources,
    /// Everything committed: windows, preparing, prepared and running.
    pub usage: Usage,
    /// The part of `usage` held by running tasks (the execute stage).
    pub running: Usage,
    /// The part of `usage` held by tasks preparing or prepared (the prepare stage).
    pub preparing: Usage,
    /// Its CPUs and what each running task holds (where it reported its CPU layout).
    #[serde(default)]
    pub cpus: Option<CpuUse>,
}

impl Scheduler {
    /// Placed tasks, running first, then prepared, preparing, and by window; oldest first within.
    pub fn jobs(&self) -> Vec<Job> {
        let mut out: Vec<Job> = self
            .entries
            .iter()
            .filter(|(_, e)| e.stage != Stage::Queued)
            .filter_map(|(id, e)| {
                let (worker, _) = e.placed?;
                Some(Job {
                    id: *id,
                    subject: e.req.subject,
                    task: e.req.task,
                    worker,
                    hostname: self
                        .worker_ref(worker)
                        .map(|w| w.spec.name.clone())
                        .unwrap_or_default(),
                    state: self.job_state(*id)?,
                    elapsed: e.since.elapsed(),
                    cpus: self
                        .worker_ref(worker)
                        .ok()
                        .and_then(|w| w.cpus.as_ref())
                        .and_then(|m| m.held().get(id))
                        .map(|h| h.cpus.clone()),
                })
            })
            .collect();
        let rank = |s: &JobState| match s {
            JobState::Running | JobState::RetWait => 0,
            JobState::Prepared => 1,
            JobState::Preparing => 2,
            JobState::Assigned(n) => 2 + n,
        };
        out.sort_by(|a, b| {
            rank(&a.state)
                .cmp(&rank(&b.state))
                .then(b.elapsed.cmp(&a.elapsed))
                .then(a.id.cmp(&b.id))
        });
        out
    }

    /// Every worker's capacity and committed resources, with the prepare and execute stages apart.
    pub fn worker_stats(&self) -> Vec<WorkerStats> {
        let mut running = vec![Usage::default(); self.workers.len()];
        let mut preparing = vec![Usage::default(); self.workers.len()];
        for e in self.entries.values() {
            let Some((w, need)) = e.placed else { continue };
            match e.stage {
                Stage::Running => running[w.0 as usize].add(&need),
                Stage::Preparing | Stage::Prepared => preparing[w.0 as usize].add(&need),
                _ => {}
            }
        }
        self.worker_ids()
            .filter_map(|id| {
                let w = self.worker_ref(id).ok()?;
                Some(WorkerStats {
                    id,
                    name: w.spec.name.clone(),
                    enabled: w.enabled,
                    connected: w.connected,
                    tasks: w.spec.tasks,
                    resources: w.spec.resources.clone(),
                    usage: w.usage.clone(),
                    running: std::mem::take(&mut running[id.0 as usize]),
                    preparing: std::mem::take(&mut preparing[id.0 as usize]),
                    cpus: w.cpus.as_ref().map(|m| m.usage()),
                })
            })
            .collect()
    }

    /// Queued requests that no connected, enabled worker supporting their task type could take
    /// even when idle: they wait for a worker that does not exist (say so to the operator).
    pub fn unplaceable(&self) -> Vec<RequestId> {
        self.queue
            .iter()
            .filter(|(_, id)| {
                let req = &self.entries[id].req;
                !self.workers.iter().flatten().any(|w| {
                    w.enabled
                        && w.connected
                        && w.spec.tasks.contains(req.task)
                        && Usage::default().fits(&w.spec.resources, &w.need(req.task, req.size))
                })
            })
            .map(|(_, id)| id)
            .collect()
    }

    /// Checks the accounting: each worker's usage equals the sum of what is placed on it and is
    /// within its capacity; windows and queue agree with task states. For tests and debugging.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut sums: Vec<Usage> = vec![Usage::default(); self.workers.len()];
        for (id, e) in &self.entries {
            match (e.stage, e.placed) {
                (Stage::Queued, None) => {}
                (Stage::Queued, Some(_)) => return Err(format!("queued request {id} is placed")),
                (_, None) => return Err(format!("request {id} is not placed")),
                (stage, Some((w, need))) => {
                    sums[w.0 as usize].add(&need);
                    if let Stage::Assigned { window } = stage {
                        let in_window =
                            self.worker_ref(w).map(|wk| wk.windows[window].contains(id));
                        if in_window != Ok(true) {
                            return Err(format!(
                                "request {id} missing from window {window} of {w}"
                            ));
                        }
                    }
                }
            }
        }
        let queued = self
            .entries
            .values()
            .filter(|e| e.stage == Stage::Queued)
            .count();
        if queued != self.queue.len() {
            return Err(format!(
                "{queued} queued entries, {} in queue",
                self.queue.len()
            ));
        }
        for id in self.worker_ids() {
            let w = self.worker_ref(id).map_err(|e| e.to_string())?;
            if w.usage != sums[id.0 as usize] {
                return Err(format!(
                    "{id}: usage {:?} != sum {:?}",
                    w.usage, sums[id.0 as usize]
                ));
            }
            if let Some(why) = w.usage.over_capacity(&w.spec.resources) {
                return Err(format!("{id} ({}) over capacity: {why}", w.spec.name));
            }
        }
        Ok(())
    }
}
