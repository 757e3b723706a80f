//! How long the steps take on this cluster: for each worker, task type and sector size, the
//! mean time of its successful runs (about the last [`WINDOW`] of them), kept in the metadata
//! store under `took/` so that it outlives restarts. `sealer plan --recorded` plans with these
//! times, and the dashboard shows a running job's usual time.

use std::collections::BTreeMap;
use std::sync::Mutex;

use db::{Db, DbError};
use resources::{SectorSize, TaskType};
use serde::{Deserialize, Serialize};

const PREFIX: &str = "took/";

/// The runs a mean follows: older ones weigh less and less (a machine upgraded shows its new
/// times within this many runs).
pub const WINDOW: u64 = 100;

/// One worker's usual time for one task type and size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usual {
    pub worker: String,
    pub task: TaskType,
    pub size: SectorSize,
    pub runs: u64,
    pub mean_s: f64,
}

type Key = (String, TaskType, SectorSize);

/// The usual times, in memory and (where opened on a store) in `took/`.
pub struct Took {
    db: Option<Db>,
    map: Mutex<BTreeMap<Key, Usual>>,
}

fn key_of(k: &Key) -> String {
    format!("{PREFIX}{}/{}/{}", k.2.name(), k.1.short(), k.0)
}

impl Took {
    /// Kept in memory only (tests, tools).
    pub fn in_memory() -> Took {
        Took {
            db: None,
            map: Mutex::new(BTreeMap::new()),
        }
    }

    /// The times recorded in `db`, and new ones written there.
    pub fn open(db: Db) -> Result<Took, DbError> {
        let map = db
            .scan::<Usual>(PREFIX)?
            .into_iter()
            .map(|(_, u)| ((u.worker.clone(), u.task, u.size), u))
            .collect();
        Ok(Took {
            db: Some(db),
            map: Mutex::new(map),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Usual>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A run of `task` on `worker` succeeded in `secs`.
    pub fn record(&self, worker: &str, task: TaskType, size: SectorSize, secs: f64) {
        let key = (worker.to_string(), task, size);
        let u = {
            let mut g = self.lock();
            let u = g.entry(key.clone()).or_insert_with(|| Usual {
                worker: worker.to_string(),
                task,
                size,
                runs: 0,
                mean_s: 0.0,
            });
            u.runs += 1;
            u.mean_s += (secs - u.mean_s) / u.runs.min(WINDOW) as f64;
            u.clone()
        };
        if let Some(db) = &self.db {
            if let Err(e) = db.put_unsynced(&key_of(&key), &u) {
                tracing::warn!(worker, task = %task.short(), "recording its time: {e}");
            }
        }
    }

    /// Every usual time recorded, by worker, task type and size.
    pub fn all(&self) -> Vec<Usual> {
        self.lock().values().cloned().collect()
    }

    /// The task type's usual time over every worker and size, weighted by their runs.
    pub fn usual_secs(&self, task: TaskType) -> Option<f64> {
        let g = self.lock();
        let (runs, total) = g
            .values()
            .filter(|u| u.task == task)
            .fold((0u64, 0.0), |(n, s), u| {
                (n + u.runs, s + u.mean_s * u.runs as f64)
            });
        (runs > 0).then(|| total / runs as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_follows_the_recent_runs_and_outlives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let t = Took::open(db.clone()).unwrap();
        t.record("w1", TaskType::PreCommit1, SectorSize::S2KiB, 2.0);
        t.record("w1", TaskType::PreCommit1, SectorSize::S2KiB, 4.0);
        t.record("w2", TaskType::PreCommit1, SectorSize::S2KiB, 9.0);
        assert_eq!(t.usual_secs(TaskType::PreCommit1), Some(5.0));
        assert_eq!(t.usual_secs(TaskType::Commit2), None);
        // Past the window, a new time moves the mean by 1/WINDOW of the difference.
        for _ in 0..WINDOW {
            t.record("w3", TaskType::Commit2, SectorSize::S2KiB, 10.0);
        }
        t.record("w3", TaskType::Commit2, SectorSize::S2KiB, 110.0);
        let c2 = t.usual_secs(TaskType::Commit2).unwrap();
        assert!((c2 - 11.0).abs() < 1e-9, "{c2}");
        drop(t);
        let again = Took::open(db).unwrap();
        let w1 = again.all().into_iter().find(|u| u.worker == "w1").unwrap();
        assert_eq!((w1.runs, w1.mean_s), (2, 3.0));
        assert_eq!(again.all().len(), 3);
    }
}
