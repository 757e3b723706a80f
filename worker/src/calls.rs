//! Calls this worker runs, in its RocksDB (`calls/<id>`): recorded when accepted, updated with
//! the result, deleted once the sealer has taken the result. A call found still running at start
//! was cut off by a restart and is returned as lost, so the sealer retries it at once.
//!
//! Writes go to the write-ahead log without waiting for the disk: they survive a crash of this
//! process (kill -9); a power cut can lose a record, which costs the sealer a retry of the call.

use std::path::Path;
use std::sync::Arc;

use api::tasks::TaskResult;
use api::TaskCall;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerCall {
    pub call_id: String,
    pub call: TaskCall,
    pub result: Option<TaskResult>,
}

#[derive(Clone)]
pub struct Calls {
    db: Arc<rocksdb::DB>,
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

    pub fn get(&self, id: &str) -> anyhow::Result<Option<WorkerCall>> {
        Ok(match self.db.get(key(id))? {
            Some(v) => Some(serde_json::from_slice(&v)?),
            None => None,
        })
    }

    pub fn delete(&self, id: &str) -> anyhow::Result<()> {
        self.db.delete(key(id))?;
        Ok(())
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
                c.result = Some(Err(format!(
                    "{} of sector {}: the worker restarted while running it (ErrTempWorkerRestart)",
                    c.call.task().short(),
                    c.call.sector().number
                )));
                self.put(&c)?;
                n += 1;
            }
        }
        Ok(n)
    }
}
