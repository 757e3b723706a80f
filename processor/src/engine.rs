//! [`ChildEngine`]: a [`proofs::Engine`] whose heavy operations each run in a processor child,
//! so the task code (`exec`) stays as it is. Verification and challenge selection, which are
//! cheap, run in the worker.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proofs::{
    Commitment, Engine, EngineKind, MockEngine, PhaseOutput, PieceData, PieceInfo, PoStSector,
    ProofError, PublicSector, Randomness, SealPaths, SealedCommitments,
};
use resources::{SealProof, SectorRef, TaskType};

use crate::fault::Fault;
pub use crate::parent::Run;
use crate::parent::{self, Launch, Placement};
use crate::wire::{EngineSpec, Op, Output, Paths, Request};

/// A daemon's processors: how children start, with which engine, and their limits.
pub struct Processors {
    launch: Launch,
    /// The engine in the worker: its kind, verification, challenges; the mock's settings.
    local: Arc<dyn Engine>,
    mock: Option<MockEngine>,
    timeouts: HashMap<TaskType, Duration>,
    /// Mock engine only: faults still to commit, the first child of each task type takes one.
    faults: Mutex<Vec<(TaskType, Fault)>>,
}

impl Processors {
    /// Children of `exe args…` with the real engine.
    pub fn real(launch: Launch) -> Processors {
        Processors {
            launch,
            local: Arc::new(proofs::RealEngine),
            mock: None,
            timeouts: HashMap::new(),
            faults: Mutex::new(Vec::new()),
        }
    }

    /// Children with the mock engine `m` (its delays; its corrupt proofs counted here).
    pub fn mock(launch: Launch, m: MockEngine) -> Processors {
        Processors {
            launch,
            local: Arc::new(m.clone()),
            mock: Some(m),
            timeouts: HashMap::new(),
            faults: Mutex::new(Vec::new()),
        }
    }

    /// Kills a child of task type `t` still running after `d`.
    pub fn with_timeout(mut self, t: TaskType, d: Duration) -> Processors {
        self.timeouts.insert(t, d);
        self
    }

    /// Mock engine only: the next child of each `(t, fault)`'s type commits the fault.
    pub fn with_faults(self, faults: Vec<(TaskType, Fault)>) -> Result<Processors, String> {
        if self.mock.is_none() && !faults.is_empty() {
            return Err("faults are for the mock engine only".into());
        }
        *self.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
        Ok(self)
    }

    pub fn kind(&self) -> EngineKind {
        self.local.kind()
    }

    /// The engine for one task placed by `placement`.
    pub fn engine(self: &Arc<Self>, placement: Placement) -> ChildEngine {
        ChildEngine {
            procs: self.clone(),
            placement,
            runs: Mutex::new(Vec::new()),
            crashes: Mutex::new(Vec::new()),
            progress: None,
        }
    }

    /// Ends children a dead predecessor left (see [`parent::end_orphans`]).
    pub fn end_orphans(&self) -> usize {
        self.launch
            .pid_dir
            .as_deref()
            .map(parent::end_orphans)
            .unwrap_or(0)
    }

    pub fn pid_dir(&self) -> Option<&Path> {
        self.launch.pid_dir.as_deref()
    }

    fn request(&self, op: Op) -> Request {
        let task = op.task();
        let fault = self.mock.as_ref().and_then(|_| {
            let mut f = self.faults.lock().unwrap_or_else(|e| e.into_inner());
            let i = f.iter().position(|(t, _)| *t == task)?;
            Some(f.remove(i).1)
        });
        let mock = self.mock.as_ref();
        Request {
            engine: EngineSpec {
                kind: self.kind(),
                delays: mock.map(|m| m.delays()).unwrap_or_default(),
                corrupt: task == TaskType::Commit2 && mock.is_some_and(|m| m.take_corrupt_proof()),
            },
            op,
            fault,
        }
    }
}

/// See the module documentation. Keeps how each of its children ran.
pub struct ChildEngine {
    procs: Arc<Processors>,
    placement: Placement,
    runs: Mutex<Vec<Run>>,
    /// The kinds of its children's crashes (`proofs::Crash::kind`), in order.
    crashes: Mutex<Vec<&'static str>>,
    /// Told of each progress report of its children.
    progress: Option<Arc<dyn Fn(resources::Progress) + Send + Sync>>,
}

impl ChildEngine {
    /// How its children ran, in order.
    pub fn runs(&self) -> Vec<Run> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Calls `f` with each progress report its children send.
    pub fn with_progress(mut self, f: Arc<dyn Fn(resources::Progress) + Send + Sync>) -> Self {
        self.progress = Some(f);
        self
    }

    /// How its children crashed (`proofs::Crash::kind`), in order.
    pub fn crashes(&self) -> Vec<&'static str> {
        self.crashes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn run(&self, op: Op) -> Result<Output, ProofError> {
        let task = op.task();
        let req = self.procs.request(op);
        if let Some(f) = req.fault {
            tracing::warn!(
                "MOCK fault: the processor for {} will {f}",
                req.op.describe()
            );
        }
        let deadline = self.procs.timeouts.get(&task).copied();
        let report = |p| {
            if let Some(f) = &self.progress {
                f(p)
            }
        };
        let (out, run) = parent::run(&self.procs.launch, &self.placement, deadline, &req, &report);
        if let Some(r) = run {
            tracing::info!(
                pid = r.pid,
                cpus = %r.cpus,
                peak_rss_mib = r.peak_rss >> 20,
                wall_ms = r.wall_ms,
                ok = out.is_ok(),
                "processor ran {}",
                r.op
            );
            self.runs.lock().unwrap_or_else(|e| e.into_inner()).push(r);
        }
        if let Err(ProofError::Crashed { crash, .. }) = &out {
            self.crashes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(crash.kind());
        }
        out
    }
}

fn unexpected(op: &'static str, o: Output) -> ProofError {
    ProofError::Invalid {
        op,
        reason: format!("the processor answered with {o:?}"),
    }
}

impl Engine for ChildEngine {
    fn kind(&self) -> EngineKind {
        self.procs.kind()
    }

    fn add_piece(
        &self,
        sector: &SectorRef,
        unsealed: &Path,
        data: &PieceData,
        size: u64,
        existing: &[u64],
    ) -> Result<PieceInfo, ProofError> {
        match self.run(Op::AddPiece {
            sector: *sector,
            unsealed: unsealed.into(),
            data: data.clone(),
            size,
            existing: existing.to_vec(),
        })? {
            Output::Piece(p) => Ok(p),
            o => Err(unexpected("AddPiece", o)),
        }
    }

    fn pre_commit1(
        &self,
        sector: &SectorRef,
        paths: SealPaths<'_>,
        ticket: &Randomness,
        pieces: &[PieceInfo],
    ) -> Result<PhaseOutput, ProofError> {
        match self.run(Op::PreCommit1 {
            sector: *sector,
            paths: Paths::of(paths),
            ticket: *ticket,
            pieces: pieces.to_vec(),
        })? {
            Output::Phase(p) => Ok(p),
            o => Err(unexpected("PreCommit1", o)),
        }
    }

    fn pre_commit2(
        &self,
        sector: &SectorRef,
        paths: SealPaths<'_>,
        pc1: &PhaseOutput,
    ) -> Result<SealedCommitments, ProofError> {
        match self.run(Op::PreCommit2 {
            sector: *sector,
            paths: Paths::of(paths),
            pc1: pc1.clone(),
        })? {
            Output::Comms(c) => Ok(c),
            o => Err(unexpected("PreCommit2", o)),
        }
    }

    fn commit1(
        &self,
        sector: &SectorRef,
        paths: SealPaths<'_>,
        ticket: &Randomness,
        seed: &Randomness,
        comms: &SealedCommitments,
        pieces: &[PieceInfo],
    ) -> Result<PhaseOutput, ProofError> {
        match self.run(Op::Commit1 {
            sector: *sector,
            paths: Paths::of(paths),
            ticket: *ticket,
            seed: *seed,
            comms: *comms,
            pieces: pieces.to_vec(),
        })? {
            Output::Phase(p) => Ok(p),
            o => Err(unexpected("Commit1", o)),
        }
    }

    fn commit2(&self, sector: &SectorRef, c1: &PhaseOutput) -> Result<Vec<u8>, ProofError> {
        match self.run(Op::Commit2 {
            sector: *sector,
            c1: c1.clone(),
        })? {
            Output::Proof(p) => Ok(p),
            o => Err(unexpected("Commit2", o)),
        }
    }

    fn finalize(&self, sector: &SectorRef, cache: &Path) -> Result<(), ProofError> {
        match self.run(Op::Finalize {
            sector: *sector,
            cache: cache.into(),
        })? {
            Output::Done => Ok(()),
            o => Err(unexpected("Finalize", o)),
        }
    }

    fn unseal(
        &self,
        sector: &SectorRef,
        paths: SealPaths<'_>,
        ticket: &Randomness,
        comm_d: &Commitment,
        offset: u64,
        len: u64,
    ) -> Result<(), ProofError> {
        match self.run(Op::Unseal {
            sector: *sector,
            paths: Paths::of(paths),
            ticket: *ticket,
            comm_d: *comm_d,
            offset,
            len,
        })? {
            Output::Done => Ok(()),
            o => Err(unexpected("Unseal", o)),
        }
    }

    fn check_provable(
        &self,
        miner: u64,
        randomness: &Randomness,
        sectors: &[PoStSector],
    ) -> Result<Vec<(u64, String)>, ProofError> {
        match self.run(Op::CheckProvable {
            miner,
            randomness: *randomness,
            sectors: sectors.to_vec(),
        })? {
            Output::Unprovable(v) => Ok(v),
            o => Err(unexpected("CheckProvable", o)),
        }
    }

    fn generate_window_post(
        &self,
        miner: u64,
        randomness: &Randomness,
        sectors: &[PoStSector],
    ) -> Result<Vec<u8>, ProofError> {
        match self.run(Op::WindowPoSt {
            miner,
            randomness: *randomness,
            sectors: sectors.to_vec(),
        })? {
            Output::Proof(p) => Ok(p),
            o => Err(unexpected("WindowPoSt", o)),
        }
    }

    fn winning_post_challenge(
        &self,
        proof: SealProof,
        miner: u64,
        randomness: &Randomness,
        eligible: u64,
    ) -> Result<Vec<u64>, ProofError> {
        self.procs
            .local
            .winning_post_challenge(proof, miner, randomness, eligible)
    }

    fn generate_winning_post(
        &self,
        miner: u64,
        randomness: &Randomness,
        sectors: &[PoStSector],
    ) -> Result<Vec<u8>, ProofError> {
        match self.run(Op::WinningPoSt {
            miner,
            randomness: *randomness,
            sectors: sectors.to_vec(),
        })? {
            Output::Proof(p) => Ok(p),
            o => Err(unexpected("WinningPoSt", o)),
        }
    }

    fn verify_seal(
        &self,
        sector: &SectorRef,
        comms: &SealedCommitments,
        ticket: &Randomness,
        seed: &Randomness,
        proof: &[u8],
    ) -> Result<bool, ProofError> {
        self.procs
            .local
            .verify_seal(sector, comms, ticket, seed, proof)
    }

    fn verify_window_post(
        &self,
        miner: u64,
        randomness: &Randomness,
        sectors: &[PublicSector],
        proof: &[u8],
    ) -> Result<bool, ProofError> {
        self.procs
            .local
            .verify_window_post(miner, randomness, sectors, proof)
    }

    fn verify_winning_post(
        &self,
        miner: u64,
        randomness: &Randomness,
        sectors: &[PublicSector],
        proof: &[u8],
    ) -> Result<bool, ProofError> {
        self.procs
            .local
            .verify_winning_post(miner, randomness, sectors, proof)
    }
}
