//! The sealer's own worker (lotus-miner is itself a worker): runs the task types `[Storage]
//! Allow*` switch on, on the sealer's storage paths, and the storage view the scheduler's
//! selectors use to see those paths.

use std::sync::Arc;

use api::tasks::TaskResult;
use api::TaskCall;
use async_trait::async_trait;
use proofs::Engine;
use resources::{SectorRef, SectorSize, TaskSet, TaskType};
use sched::{StorageView, WorkerId};
use stores::{FileType, FileTypes, LocalStore, PathKind};

use crate::config::StorageConfig;
use crate::manager::WorkerHandle;

pub struct LocalWorker {
    pub store: LocalStore,
    pub engine: Arc<dyn Engine>,
}

#[async_trait]
impl WorkerHandle for LocalWorker {
    async fn prepare(&self, call: &TaskCall) -> Result<(), String> {
        // Everything this worker reads is on the sealer's own paths: check it is there, so a
        // missing file fails the task now rather than after a wait in the execute queue.
        let need = match call {
            TaskCall::PreCommit1 { .. } => FileType::Unsealed.into(),
            TaskCall::PreCommit2 { .. } | TaskCall::Commit1 { .. } => FileTypes::ALL,
            TaskCall::Finalize { .. } => FileTypes::SEALED,
            _ => FileTypes::NONE,
        };
        let sector = call.sector();
        for t in need.iter() {
            if self.store.find_local(sector.id(), t).is_none()
                && !(t == FileType::Unsealed && matches!(call, TaskCall::Finalize { .. }))
            {
                return Err(format!(
                    "sector {} has no {t} file on this machine's paths",
                    sector.number
                ));
            }
        }
        Ok(())
    }

    async fn execute(&self, call: TaskCall) -> TaskResult {
        api::exec::execute(&self.store, &self.engine, call).await
    }
}

/// Task types the in-process worker takes, from `[Storage] Allow*`. C1 goes with commit, and
/// finalize with any sealing at all (it runs where the sealing files are).
pub fn local_tasks(cfg: &StorageConfig) -> TaskSet {
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
        t.insert(TaskType::Fetch);
    }
    t
}

/// The scheduler's view of the sealer's own storage, for its in-process worker.
pub struct LocalView {
    pub store: LocalStore,
    pub worker: std::sync::OnceLock<WorkerId>,
}

impl StorageView for LocalView {
    fn holders(&self, sector: &SectorRef, out: &mut Vec<WorkerId>) {
        let Some(w) = self.worker.get() else { return };
        let id = sector.id();
        if [FileType::Unsealed, FileType::Sealed, FileType::Cache]
            .into_iter()
            .any(|t| self.store.find_local(id, t).is_some())
        {
            out.push(*w);
        }
    }

    fn can_allocate(&self, worker: WorkerId, size: SectorSize) -> bool {
        if self.worker.get() != Some(&worker) {
            return false;
        }
        let need = FileTypes::ALL.overhead(size, PathKind::Sealing);
        self.store.paths().into_iter().any(|(id, _, meta)| {
            meta.can_seal
                && self
                    .store
                    .stat(&id)
                    .map(|st| st.available >= need)
                    .unwrap_or(false)
        })
    }
}
