//! Calls this worker runs, in its RocksDB (`calls/<id>`): recorded when accepted, updated with
//! the result, deleted once the sealer has taken the result. A call found still running at start
//! was cut off by a restart and is returned as lost, so the sealer retries it at once.

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
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        self.db
            .put_opt(key(&c.call_id), serde_json::to_vec(c)?, &wo)?;
        Ok(())
    }

    pub fn delete(&self, id: &str) -> anyhow::Result<()> {
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        self.db.delete_opt(key(id), &wo)?;
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
