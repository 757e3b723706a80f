//! Calls this worker runs, in its RocksDB (`calls/<id>`): recorded when accepted, updated with
//! the result, and once the sealer has taken the result replaced by a small `done/<id>` marker
//! (kept a day), so a call the sealer sends again after its own restart is not run twice. A call found still running at start
//! was cut off by a restart and is returned as lost, so the sealer retries it at once.
//!
//! Writes go to the write-ahead log without waiting for the disk: they survive a crash of this
//! process (kill -9); a power cut can lose a record, which costs the sealer a retry of the call.

use std::path::Path;
use std::sync::Arc;

use api::tasks::{TaskError, TaskResult};
use api::TaskCall;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerCall {
    pub call_id: String,
    pub call: TaskCall,
    pub result: Option<TaskResult>,
    /// How its processor children ran.
    #[serde(default)]
    pub runs: Vec<processor::Run>,
}

#[derive(Clone)]
pub struct Calls {
    db: Arc<rocksdb::DB>,
}

fn done_key(id: &str) -> String {
    format!("done/{id}")
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn key(id: &str) -> String {
    format!("calls/{id}")
}

impl Calls {
    pub fn open(path: &Path) -> anyhow::Result<Calls> {
        let mut o = rocksdb::Options::default();
        o.create_if_missing(true);
        let db = rocksdb::DB::open(&o, path)
            .map_err(|e| anyhow::anyhow!("worker metadata store {}: {e}", path.display()))?;
        Ok(Calls { db: Arc::new(db) })
    }

    pub fn put(&self, c: &WorkerCall) -> anyhow::Result<()> {
        self.db.put(key(&c.call_id), serde_json::to_vec(c)?)?;
        Ok(())
    }

    /// Whether call `id` was ever accepted here (running, finished, or returned in the last day).
    pub fn known(&self, id: &str) -> anyhow::Result<bool> {
        Ok(self.db.get(key(id))?.is_some() || self.db.get(done_key(id))?.is_some())
    }

    /// The sealer took the result: the record goes, a marker with the time stays.
    pub fn retire(&self, id: &str) -> anyhow::Result<()> {
        let mut b = rocksdb::WriteBatch::default();
        b.delete(key(id));
        b.put(done_key(id), now_s().to_string());
        self.db.write(b)?;
        Ok(())
    }

    /// Drops markers of calls returned more than `age_s` seconds ago.
    pub fn prune_done(&self, age_s: u64) -> anyhow::Result<usize> {
        let cutoff = now_s().saturating_sub(age_s);
        let mut old = Vec::new();
        for item in self.db.prefix_iterator(b"done/") {
            let (k, v) = item?;
            if !k.starts_with(b"done/") {
                break;
            }
            let at: u64 = std::str::from_utf8(&v)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if at < cutoff {
                old.push(k);
            }
        }
        for k in &old {
            self.db.delete(k)?;
        }
        Ok(old.len())
    }

    pub fn all(&self) -> anyhow::Result<Vec<WorkerCall>> {
        let mut out = Vec::new();
        for item in self.db.prefix_iterator(b"calls/") {
            let (k, v) = item?;
            if !k.starts_with(b"calls/") {
                break;
            }
            out.push(serde_json::from_slice(&v)?);
        }
        Ok(out)
    }

    /// At start: calls still running were cut off; they are returned as lost.
    pub fn mark_interrupted(&self) -> anyhow::Result<usize> {
        let mut n = 0;
        for mut c in self.all()? {
            if c.result.is_none() {
                c.result = Some(Err(TaskError::worker_lost(format!(
                    "{}: the worker restarted while running it",
                    c.call.describe()
                ))));
                self.put(&c)?;
                n += 1;
            }
        }
        Ok(n)
    }
}
