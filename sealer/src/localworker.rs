//! The sealer's own worker (lotus-miner is itself a worker): runs the task types `[Storage]
//! Allow*` switch on, on the sealer's storage paths, fetching inputs from other machines when
//! they are elsewhere.

use std::sync::Arc;

use api::tasks::{TaskError, TaskResult};
use api::TaskCall;
use async_trait::async_trait;
use processor::{Placement, Processors};
use proofs::Engine;
use resources::topology::{Place, Topology};
use resources::{TaskSet, TaskType};
use stores::Remote;

use crate::calls::CallTracker;
use crate::config::{ProvingConfig, StorageConfig};
use crate::manager::WorkerHandle;

pub struct LocalWorker {
    pub remote: Arc<Remote>,
    /// The engine, in this process: what runs the tasks where there are no processors (the
    /// pipeline's in-process tests).
    pub engine: Arc<dyn Engine>,
    /// Each task's proof operations in processor children (the daemon).
    pub procs: Option<Arc<Processors>>,
    /// This machine's CPU layout (for the env of a placed task).
    pub topology: Option<Topology>,
    /// Where the processors' runs are recorded with their call.
    pub calls: Option<Arc<CallTracker>>,
}

#[async_trait]
impl WorkerHandle for LocalWorker {
    async fn prepare(&self, call: &TaskCall) -> Result<(), TaskError> {
        exec::prepare(&self.remote, call).await
    }

    async fn prepare_reporting(&self, call: &TaskCall, key: &str) -> Result<(), TaskError> {
        let Some(calls) = &self.calls else {
            return self.prepare(call).await;
        };
        exec::prepare_reporting(&self.remote, call, &|p| calls.progress(key, p)).await
    }

    async fn execute(&self, call_id: &str, call: TaskCall, place: Option<Place>) -> TaskResult {
        match &self.procs {
            Some(p) => {
                let at = Placement::of(call.task(), place, self.topology.as_ref());
                let calls = self.calls.clone();
                let id = call_id.to_string();
                let report: Arc<dyn Fn(resources::Progress) + Send + Sync> = Arc::new(move |p| {
                    if let Some(c) = &calls {
                        c.progress(&id, p)
                    }
                });
                let child = Arc::new(p.engine(at).with_progress(report.clone()));
                let e: Arc<dyn Engine> = child.clone();
                let r = exec::execute_reporting(&self.remote, &e, call, &*report).await;
                if let Some(c) = &self.calls {
                    c.ran(call_id, child.runs());
                }
                r
            }
            None => exec::execute(&self.remote, &self.engine, call).await,
        }
    }
}

/// Task types the in-process worker takes, from `[Storage] Allow*`. C1 goes with commit, and
/// finalize with any sealing at all (it runs where the sealing files are). GET (bringing
/// finalized sectors to the sealer's store paths) is always on, as on lotus-miner; with every
/// Allow* false it is the only one, and the sealer runs no sealing task itself.
pub fn local_tasks(cfg: &StorageConfig, proving: &ProvingConfig) -> TaskSet {
    let mut t = TaskSet::default();
    let mut add = |on: bool, types: &[TaskType]| {
        if on {
            types.iter().for_each(|x| t.insert(*x));
        }
    };
    add(cfg.allow_add_piece, &[TaskType::AddPiece]);
    add(cfg.allow_pre_commit1, &[TaskType::PreCommit1]);
    add(cfg.allow_pre_commit2, &[TaskType::PreCommit2]);
    add(cfg.allow_commit, &[TaskType::Commit1, TaskType::Commit2]);
    add(cfg.allow_unseal, &[TaskType::Unseal]);
    if !t.is_empty() {
        t.insert(TaskType::Finalize);
    }
    t.insert(TaskType::Fetch);
    // The sealer proves what it stores while no PoSt worker can (`cluster::PoStSelector`), as
    // lotus-miner's built-in prover, unless `[Proving]` turns that off.
    if !proving.disable_builtin_window_post {
        t.insert(TaskType::WindowPoSt);
    }
    if !proving.disable_builtin_winning_post {
        t.insert(TaskType::WinningPoSt);
    }
    t
}
