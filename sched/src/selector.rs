//! Selectors decide which workers may take a request and which are preferred. The scheduler has
//! already checked task-type support, enablement and resources before it asks a selector.
//!
//! Storage is seen only through [`StorageView`], so this crate does not depend on `stores`.

use std::sync::Arc;

use resources::{SectorRef, SectorSize};

use crate::request::{TaskRequest, WorkerId};
use crate::worker::WorkerSpec;

/// Which workers may run a request.
pub trait Selector: Send + Sync {
    /// Whether `worker` may take `req`.
    fn ok(&self, req: &TaskRequest, worker: WorkerId, spec: &WorkerSpec) -> bool;

    /// Pushes the workers that should be tried first (they already hold the sector's files) onto
    /// `out`. Returns true when no other worker may take the request.
    fn preferred(&self, _req: &TaskRequest, _out: &mut Vec<WorkerId>) -> bool {
        false
    }

    /// A key promising that, for workers not returned by `preferred`, `ok` depends only on
    /// (key, worker) and that a refusal holds for the rest of a scheduling pass. The scheduler then
    /// asks each worker at most once per key and pass. Keys must differ between verdicts that
    /// differ. `None` (the default): ask for every request.
    fn cache_key(&self, _req: &TaskRequest) -> Option<u64> {
        None
    }

    /// Why `worker` may not take `req` (what `ok` refuses), for the operator: `None` where `ok`
    /// accepts. Asked only to explain a queued request, never while scheduling.
    fn refusal(&self, req: &TaskRequest, worker: WorkerId, spec: &WorkerSpec) -> Option<Refusal> {
        (!self.ok(req, worker, spec)).then_some(Refusal::Other)
    }
}

/// Why a selector refuses a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Refusal {
    /// No sealing path of the worker has room for a new sector's files.
    NoRoomToSeal,
    /// No long-term storage path of the worker has room for the sealed sector.
    NoRoomToStore,
    /// The worker does not hold the sector's files, and the task does not fetch them.
    NotHolder,
    /// The worker does not hold the files of every sector the PoSt covers.
    SectorsElsewhere,
    /// The sealer's own worker leaves PoSt to a worker daemon that can do it.
    LeftToPoStWorker,
    /// The selector refused without saying why.
    Other,
}

/// What selectors need to know of storage.
pub trait StorageView: Send + Sync {
    /// Pushes the workers that hold the sector's files on their own paths onto `out`.
    fn holders(&self, sector: &SectorRef, out: &mut Vec<WorkerId>);

    /// Whether the worker has a sealing path with room for a new sector of this size.
    fn can_allocate(&self, worker: WorkerId, size: SectorSize) -> bool;
}

/// Any worker that supports the task type (C2, PoSt): no storage involved.
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskSelector;

impl Selector for TaskSelector {
    fn ok(&self, _req: &TaskRequest, _worker: WorkerId, _spec: &WorkerSpec) -> bool {
        true
    }
}

/// A worker that can allocate space for a new sector (AP, PC1 of a new sector).
#[derive(Clone)]
pub struct AllocSelector {
    pub storage: Arc<dyn StorageView>,
}

const ALLOC_KEY: u64 = 1 << 32;

impl Selector for AllocSelector {
    fn ok(&self, req: &TaskRequest, worker: WorkerId, _spec: &WorkerSpec) -> bool {
        self.storage.can_allocate(worker, req.size)
    }

    fn refusal(&self, req: &TaskRequest, worker: WorkerId, spec: &WorkerSpec) -> Option<Refusal> {
        (!self.ok(req, worker, spec)).then_some(Refusal::NoRoomToSeal)
    }

    fn cache_key(&self, req: &TaskRequest) -> Option<u64> {
        Some(ALLOC_KEY | req.size.index() as u64)
    }
}

/// A worker that holds the sector's files, or, with `allow_fetch`, one that can make room to
/// fetch them. Holders are always preferred.
#[derive(Clone)]
pub struct ExistingSelector {
    pub storage: Arc<dyn StorageView>,
    pub allow_fetch: bool,
}

impl Selector for ExistingSelector {
    fn ok(&self, req: &TaskRequest, worker: WorkerId, _spec: &WorkerSpec) -> bool {
        if self.allow_fetch && self.storage.can_allocate(worker, req.size) {
            return true;
        }
        let Some(sector) = req.subject.sector() else {
            return false;
        };
        let mut holders = Vec::new();
        self.storage.holders(&sector, &mut holders);
        holders.contains(&worker)
    }

    fn preferred(&self, req: &TaskRequest, out: &mut Vec<WorkerId>) -> bool {
        if let Some(sector) = req.subject.sector() {
            self.storage.holders(&sector, out);
        }
        !self.allow_fetch
    }

    fn refusal(&self, req: &TaskRequest, worker: WorkerId, spec: &WorkerSpec) -> Option<Refusal> {
        match self.ok(req, worker, spec) {
            true => None,
            false if self.allow_fetch => Some(Refusal::NoRoomToSeal),
            false => Some(Refusal::NotHolder),
        }
    }

    fn cache_key(&self, req: &TaskRequest) -> Option<u64> {
        // Non-holders are judged by free space alone, the same verdict as AllocSelector's.
        self.allow_fetch
            .then(|| ALLOC_KEY | req.size.index() as u64)
    }
}
