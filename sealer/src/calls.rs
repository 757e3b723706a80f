//! The call tracker owns `calls/`: one record per task call handed to a worker, keyed by call
//! ID (`calls/<id>`), with an index by subject and task (`callidx/<subject>/<task>` → ID) through
//! which a step resumed after a restart finds its call. A record is written when the call starts
//! and once more when its result arrives, whoever brings it first (the worker's `WorkerReturn`
//! or the manager); the step waiting for it is handed the result in memory, not by polling.
//! A sealing call's record goes in the same batch as the sector event that consumes it. PoSt
//! calls are tracked in memory only: nothing resumes them after a restart (the PoSt scheduler
//! proves the deadline again), so they leave nothing behind.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use api::tasks::{TaskError, TaskResult};
use resources::{SectorRef, Subject, TaskType};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use db::{Batch, Db, DbError};

const RECORDS: &str = "calls/";
const INDEX: &str = "callidx/";

/// A call as recorded: where it runs and, once back, its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub call_id: String,
    pub subject: Subject,
    pub task: TaskType,
    pub worker: String,
    /// Whether the worker is the sealer's own (its calls die with the sealer).
    pub local: bool,
    pub started_ms: u64,
    pub result: Option<TaskResult>,
    /// How its processor children ran (pid, CPUs, peak RSS), as its worker reported.
    #[serde(default)]
    pub runs: Vec<processor::Run>,
}

/// A record as written before calls were keyed by ID (`calls/<sector>/<task>`).
#[derive(Deserialize)]
struct OldRecord {
    call_id: String,
    sector: SectorRef,
    task: TaskType,
    worker: String,
    local: bool,
    started_ms: u64,
    result: Option<TaskResult>,
}

fn record_key(call_id: &str) -> String {
    format!("{RECORDS}{call_id}")
}

fn index_key(subject: &Subject, task: TaskType) -> String {
    format!("{INDEX}{}/{}", subject.key(), task.short())
}

#[derive(Default)]
struct State {
    /// Calls started and not yet returned, by ID.
    open: HashMap<String, CallRecord>,
    /// Steps waiting for a call's result.
    waiters: HashMap<String, Vec<oneshot::Sender<TaskResult>>>,
    /// The highest peak RSS of returned calls' processors, until the manager takes it.
    peaks: HashMap<String, u64>,
    /// How far open calls are, as their workers last said (kept in memory only).
    progress: HashMap<String, resources::Progress>,
}

/// The prefix of the keys a task's fetch (its prepare stage) reports progress under.
pub const PREPARE_KEY: &str = "prepare-";

pub struct CallTracker {
    db: Db,
    state: Mutex<State>,
}

impl CallTracker {
    /// Opens the records in `db`, converting those of the older layout, and notes the calls
    /// that were still running (their results may yet come back).
    pub fn open(db: Db) -> Result<Arc<CallTracker>, DbError> {
        let mut state = State::default();
        let mut batch = Batch::default();
        let mut converted = 0;
        for (key, raw) in db.scan::<serde_json::Value>(RECORDS)? {
            let rec = if key[RECORDS.len()..].contains('/') {
                let old: OldRecord = serde_json::from_value(raw).map_err(|e| DbError::Decode {
                    key: key.clone(),
                    reason: e.to_string(),
                })?;
                let rec = CallRecord {
                    call_id: old.call_id,
                    subject: Subject::Sector(old.sector),
                    task: old.task,
                    worker: old.worker,
                    local: old.local,
                    started_ms: old.started_ms,
                    result: old.result,
                    runs: Vec::new(),
                };
                batch.delete(&key);
                batch.put(&record_key(&rec.call_id), &rec);
                batch.put(&index_key(&rec.subject, rec.task), &rec.call_id);
                converted += 1;
                rec
            } else {
                serde_json::from_value(raw).map_err(|e| DbError::Decode {
                    key,
                    reason: e.to_string(),
                })?
            };
            // A call of the sealer's own worker died with the sealer: no result will come.
            if rec.result.is_none() && !rec.local {
                state.open.insert(rec.call_id.clone(), rec);
            }
        }
        if converted > 0 {
            db.write(batch)?;
            tracing::info!("call records: {converted} converted to the by-ID layout");
        }
        Ok(Arc::new(CallTracker {
            db,
            state: Mutex::new(state),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A call was handed to a worker. A sealing call's record replaces the one its subject and
    /// task had before (one write); a PoSt call is only noted in memory.
    pub fn started(&self, rec: CallRecord) -> Result<(), DbError> {
        if rec.subject.sector().is_some() {
            let idx = index_key(&rec.subject, rec.task);
            let mut b = Batch::default();
            if let Some(old) = self.db.get::<String>(&idx)? {
                if old != rec.call_id {
                    b.delete(&record_key(&old));
                    self.close(&old, &format!("replaced by call {}", rec.call_id));
                }
            }
            b.put(&record_key(&rec.call_id), &rec);
            b.put(&idx, &rec.call_id);
            self.db.write_unsynced(b)?;
        }
        self.lock().open.insert(rec.call_id.clone(), rec);
        Ok(())
    }

    /// The call recorded for `subject`'s `task`, if any.
    pub fn find(&self, subject: &Subject, task: TaskType) -> Result<Option<CallRecord>, DbError> {
        match self.db.get::<String>(&index_key(subject, task))? {
            Some(id) => self.db.get(&record_key(&id)),
            None => Ok(None),
        }
    }

    /// How an open call's processor children ran: kept with its record (written with the
    /// result).
    pub fn ran(&self, call_id: &str, runs: Vec<processor::Run>) {
        let mut g = self.lock();
        let Some(rec) = g.open.get_mut(call_id) else {
            return; // returned already (a second WorkerReturn): nobody takes it
        };
        let peak = runs.iter().map(|r| r.peak_rss).max();
        rec.runs = runs;
        if let Some(peak) = peak {
            g.peaks.insert(call_id.to_string(), peak);
        }
    }

    /// A worker says how far open call `call_id` is (ignored once it returned), or a fetch
    /// under its key ([`PREPARE_KEY`]...).
    pub fn progress(&self, call_id: &str, p: resources::Progress) {
        let mut g = self.lock();
        if g.open.contains_key(call_id) || call_id.starts_with(PREPARE_KEY) {
            g.progress.insert(call_id.to_string(), p);
        }
    }

    /// The prepare stage under `key` ended: its progress goes.
    pub fn forget_progress(&self, key: &str) {
        self.lock().progress.remove(key);
    }

    /// How far open call `call_id` is, where its worker said.
    pub fn progress_of(&self, call_id: &str) -> Option<resources::Progress> {
        self.lock().progress.get(call_id).copied()
    }

    /// The highest peak RSS of a call's processors, once (for the scheduler's accounting).
    pub fn take_peak(&self, call_id: &str) -> Option<u64> {
        self.lock().peaks.remove(call_id)
    }

    /// A call's result arrived. The first arrival is recorded (once) and handed to every step
    /// waiting for it; later ones, and results of calls not open, change nothing. Returns
    /// whether anyone was waiting.
    pub fn returned(&self, call_id: &str, result: &TaskResult) -> bool {
        let mut g = self.lock();
        g.progress.remove(call_id);
        if let Some(mut rec) = g.open.remove(call_id) {
            if rec.subject.sector().is_some() {
                rec.result = Some(result.clone());
                let mut b = Batch::default();
                b.put(&record_key(call_id), &rec);
                if let Err(e) = self.db.write_unsynced(b) {
                    tracing::error!(call = call_id, "recording the result: {e}");
                }
            }
        }
        // Whoever still waits hears it, even for a call no longer open (its step used an
        // earlier outcome: a worker lost before its WorkerReturn).
        let waiters = g.waiters.remove(call_id).unwrap_or_default();
        drop(g);
        let mut any = false;
        for tx in waiters {
            any |= tx.send(result.clone()).is_ok();
        }
        any
    }

    /// Waits for call `call_id`'s result. The wait is registered at once, so a result that
    /// arrives before the future is first polled is not missed; a call already returned gives
    /// its recorded result.
    pub fn wait(&self, call_id: &str) -> impl Future<Output = TaskResult> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let mut g = self.lock();
        if g.open.contains_key(call_id) {
            g.waiters.entry(call_id.to_string()).or_default().push(tx);
        } else {
            drop(g);
            let recorded = self
                .db
                .get::<CallRecord>(&record_key(call_id))
                .ok()
                .flatten()
                .and_then(|r| r.result);
            let _ = tx.send(recorded.unwrap_or_else(|| {
                Err(TaskError::worker_lost(format!(
                    "call {call_id} is no longer recorded"
                )))
            }));
        }
        let call_id = call_id.to_string();
        async move {
            rx.await.unwrap_or_else(|_| {
                Err(TaskError::worker_lost(format!(
                    "call {call_id}: its worker was lost"
                )))
            })
        }
    }

    /// The worker of calls `ids` is gone: their steps fail with `why` (as lost).
    pub fn lost(&self, ids: &[String], why: &str) {
        for id in ids {
            self.returned(id, &Err(TaskError::worker_lost(why)));
        }
    }

    /// Call `id` is no longer open and its result will not be recorded: whoever still waits for
    /// it hears `why` (as lost).
    fn close(&self, id: &str, why: &str) {
        let waiters = {
            let mut g = self.lock();
            g.open.remove(id);
            g.waiters.remove(id).unwrap_or_default()
        };
        for tx in waiters {
            let _ = tx.send(Err(TaskError::worker_lost(format!("call {id}: {why}"))));
        }
    }

    /// Adds to `batch` the removal of `subject`'s `task` call: its result has been used.
    pub fn consume(
        &self,
        subject: &Subject,
        task: TaskType,
        batch: &mut Batch,
    ) -> Result<(), DbError> {
        let idx = index_key(subject, task);
        if let Some(id) = self.db.get::<String>(&idx)? {
            batch.delete(&record_key(&id));
            // Its step has moved on; a handle still waiting for the worker (it holds the
            // sector's lock) waits on until the worker's result or the heartbeat's verdict
            // arrives, so that a retry never writes the sector's files beside a call still
            // running (an aborted one, or one of a worker not yet given up).
            self.lock().open.remove(&id);
        }
        batch.delete(&idx);
        Ok(())
    }

    /// Removes `subject`'s `task` call now.
    pub fn remove(&self, subject: &Subject, task: TaskType) -> Result<(), DbError> {
        let mut b = Batch::default();
        self.consume(subject, task, &mut b)?;
        self.db.write(b)
    }

    /// Calls held: records in the store, and calls open or waited for in memory.
    pub fn counts(&self) -> (usize, usize) {
        let stored = self
            .db
            .scan::<serde_json::Value>(RECORDS)
            .map_or(0, |v| v.len());
        let g = self.lock();
        (stored, g.open.len() + g.waiters.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use resources::SealProof;

    fn rec(id: &str, subject: Subject) -> CallRecord {
        CallRecord {
            call_id: id.into(),
            subject,
            task: TaskType::PreCommit1,
            worker: "w".into(),
            local: false,
            started_ms: 1,
            result: None,
            runs: Vec::new(),
        }
    }

    fn sector(n: u64) -> Subject {
        Subject::Sector(SectorRef::new(1000, n, SealProof::StackedDrg2KiBV1_1))
    }

    #[tokio::test]
    async fn a_result_reaches_the_waiting_step_and_is_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let t = CallTracker::open(Db::open(dir.path()).unwrap()).unwrap();
        t.started(rec("a", sector(1))).unwrap();
        let wait = t.wait("a");
        let ok: TaskResult = Ok(api::TaskOutput::Finalized);
        assert!(t.returned("a", &ok));
        assert_eq!(wait.await, ok);
        // A second arrival (the manager after WorkerReturn) changes nothing.
        assert!(!t.returned("a", &Err(TaskError::temporary("late"))));
        let found = t.find(&sector(1), TaskType::PreCommit1).unwrap().unwrap();
        assert_eq!(found.result, Some(ok.clone()));
        // Waiting after the fact gives the recorded result.
        assert_eq!(t.wait("a").await, ok);

        // A new call for the same step replaces the record; consuming removes it.
        t.started(rec("b", sector(1))).unwrap();
        assert_eq!(t.counts(), (1, 1));
        t.remove(&sector(1), TaskType::PreCommit1).unwrap();
        assert_eq!(t.counts(), (0, 0));
        assert!(t.find(&sector(1), TaskType::PreCommit1).unwrap().is_none());
    }

    #[tokio::test]
    async fn a_handle_waiting_for_a_consumed_call_ends_when_its_worker_does() {
        // The step took "worker lost" (or an abort) and consumed the call while the worker may
        // still run it: the handle's wait, which holds the sector's lock, lasts until the
        // worker's result or the heartbeat's verdict arrives, then ends.
        let dir = tempfile::tempdir().unwrap();
        let t = CallTracker::open(Db::open(dir.path()).unwrap()).unwrap();
        t.started(rec("a", sector(3))).unwrap();
        let mut wait = Box::pin(t.wait("a"));
        let mut b = Batch::default();
        t.consume(&sector(3), TaskType::PreCommit1, &mut b).unwrap();
        t.db.write(b).unwrap();
        let early = tokio::time::timeout(std::time::Duration::from_millis(100), &mut wait).await;
        assert!(
            early.is_err(),
            "the wait ended while the worker still ran the call"
        );
        assert!(t.returned("a", &Err(TaskError::worker_lost("gone"))));
        let r = tokio::time::timeout(std::time::Duration::from_secs(5), wait)
            .await
            .expect("the wait ends");
        assert_eq!(r.unwrap_err().kind, api::tasks::ErrorKind::WorkerLost);
        // Its record went with the step's event; a late result writes none.
        assert_eq!(t.counts(), (0, 0));
    }

    #[tokio::test]
    async fn post_calls_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let t = CallTracker::open(Db::open(dir.path()).unwrap()).unwrap();
        for epoch in 0..50 {
            let id = format!("w{epoch}");
            t.started(rec(&id, Subject::WinningPoSt { miner: 1000, epoch }))
                .unwrap();
            let wait = t.wait(&id);
            t.returned(&id, &Ok(api::TaskOutput::WinningPoSt(vec![1])));
            wait.await.unwrap();
        }
        assert_eq!(t.counts(), (0, 0));
    }

    #[tokio::test]
    async fn records_of_the_old_layout_are_converted_and_running_calls_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let old = serde_json::json!({
            "call_id": "c1", "sector": {"Miner": 1000, "Number": 7, "ProofType": 5},
            "task": "seal/v0/precommit/2", "worker": "w", "local": false,
            "started_ms": 1, "result": null
        });
        db.put("calls/00000000000000000007/PC2", &old).unwrap();
        let t = CallTracker::open(db).unwrap();
        let r = t.find(&sector(7), TaskType::PreCommit2).unwrap().unwrap();
        assert_eq!((r.call_id.as_str(), r.result.is_none()), ("c1", true));
        // Still running before the restart: its WorkerReturn is taken.
        let wait = t.wait("c1");
        assert!(t.returned("c1", &Ok(api::TaskOutput::Finalized)));
        assert!(wait.await.is_ok());
    }
}
