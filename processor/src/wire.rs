//! The protocol on a child's fd 3: one JSON message per line.
//!
//! child → worker: [`ToWorker::Hello`] first, then any [`ToWorker::Progress`], then one
//! [`ToWorker::Result`] (or [`ToWorker::Panicked`] / [`ToWorker::OutOfMemory`] on the way down).
//! worker → child: one [`Request`] after the hello.

use std::path::PathBuf;
use std::time::Duration;

use proofs::{
    Commitment, EngineKind, PhaseOutput, PieceData, PieceInfo, PoStSector, ProofError, Randomness,
    SealedCommitments,
};
use resources::topology::CpuSet;
use resources::{SectorRef, TaskType};
use serde::{Deserialize, Serialize};

use crate::fault::Fault;

/// A child's first message: where and how it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub pid: u32,
    /// The CPUs it may run on (its affinity mask).
    pub affinity: CpuSet,
    /// The proof variables it sees (`FIL_PROOFS_*`, `RAYON_NUM_THREADS`, `BELLMAN_*`,
    /// `CUDA_VISIBLE_DEVICES`).
    pub env: Vec<(String, String)>,
}

/// The engine a child builds: the worker's own, with the mock engine's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineSpec {
    pub kind: EngineKind,
    /// Mock engine: per-task delays.
    pub delays: Vec<(TaskType, Duration)>,
    /// Mock engine: make this C2 proof corrupt.
    pub corrupt: bool,
}

/// A sector's file paths for a sealing step (owned [`proofs::SealPaths`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paths {
    pub unsealed: PathBuf,
    pub sealed: PathBuf,
    pub cache: PathBuf,
}

impl Paths {
    pub fn of(p: proofs::SealPaths<'_>) -> Paths {
        Paths {
            unsealed: p.unsealed.into(),
            sealed: p.sealed.into(),
            cache: p.cache.into(),
        }
    }

    pub fn seal(&self) -> proofs::SealPaths<'_> {
        proofs::SealPaths {
            unsealed: &self.unsealed,
            sealed: &self.sealed,
            cache: &self.cache,
        }
    }
}

/// One engine operation with its inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    AddPiece {
        sector: SectorRef,
        unsealed: PathBuf,
        data: PieceData,
        size: u64,
        existing: Vec<u64>,
    },
    PreCommit1 {
        sector: SectorRef,
        paths: Paths,
        ticket: Randomness,
        pieces: Vec<PieceInfo>,
    },
    PreCommit2 {
        sector: SectorRef,
        paths: Paths,
        pc1: PhaseOutput,
    },
    Commit1 {
        sector: SectorRef,
        paths: Paths,
        ticket: Randomness,
        seed: Randomness,
        comms: SealedCommitments,
        pieces: Vec<PieceInfo>,
    },
    Commit2 {
        sector: SectorRef,
        c1: PhaseOutput,
    },
    Finalize {
        sector: SectorRef,
        cache: PathBuf,
    },
    Unseal {
        sector: SectorRef,
        paths: Paths,
        ticket: Randomness,
        comm_d: Commitment,
        offset: u64,
        len: u64,
    },
    CheckProvable {
        miner: u64,
        randomness: Randomness,
        sectors: Vec<PoStSector>,
    },
    WindowPoSt {
        miner: u64,
        randomness: Randomness,
        sectors: Vec<PoStSector>,
    },
    WinningPoSt {
        miner: u64,
        randomness: Randomness,
        sectors: Vec<PoStSector>,
    },
}

impl Op {
    /// The task type the operation belongs to (its mock delay, its faults, its CPUs).
    pub fn task(&self) -> TaskType {
        match self {
            Op::AddPiece { .. } => TaskType::AddPiece,
            Op::PreCommit1 { .. } => TaskType::PreCommit1,
            Op::PreCommit2 { .. } => TaskType::PreCommit2,
            Op::Commit1 { .. } => TaskType::Commit1,
            Op::Commit2 { .. } => TaskType::Commit2,
            Op::Finalize { .. } => TaskType::Finalize,
            Op::Unseal { .. } => TaskType::Unseal,
            Op::CheckProvable { .. } | Op::WindowPoSt { .. } => TaskType::WindowPoSt,
            Op::WinningPoSt { .. } => TaskType::WinningPoSt,
        }
    }

    /// "PC1 of sector 3", "WindowPoSt of 2 sectors", for messages.
    pub fn describe(&self) -> String {
        let of = |s: &SectorRef| format!("{} of sector {}", self.task().short(), s.number);
        match self {
            Op::AddPiece { sector, .. }
            | Op::PreCommit1 { sector, .. }
            | Op::PreCommit2 { sector, .. }
            | Op::Commit1 { sector, .. }
            | Op::Commit2 { sector, .. }
            | Op::Finalize { sector, .. }
            | Op::Unseal { sector, .. } => of(sector),
            Op::CheckProvable { sectors, .. } => {
                format!("WindowPoSt check of {} sectors", sectors.len())
            }
            Op::WindowPoSt { sectors, .. } | Op::WinningPoSt { sectors, .. } => {
                format!("{} of {} sectors", self.task().short(), sectors.len())
            }
        }
    }
}

/// What the worker asks of a child.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub engine: EngineSpec,
    pub op: Op,
    /// Mock engine only: what the child does wrong instead (crash tests).
    pub fault: Option<Fault>,
}

/// An operation's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    Piece(PieceInfo),
    Phase(PhaseOutput),
    Comms(SealedCommitments),
    Proof(Vec<u8>),
    Done,
    /// Sectors that cannot be proven, with why.
    Unprovable(Vec<(u64, String)>),
}

/// An operation's error as it crosses the pipe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireError {
    FaultySectors(Vec<(u64, String)>),
    Other { bad_input: bool, message: String },
}

impl From<&ProofError> for WireError {
    fn from(e: &ProofError) -> WireError {
        match e {
            ProofError::FaultySectors(v) => WireError::FaultySectors(v.clone()),
            ProofError::InChild { bad_input, message } => WireError::Other {
                bad_input: *bad_input,
                message: message.clone(),
            },
            e => WireError::Other {
                bad_input: matches!(
                    e,
                    ProofError::WrongEngine { .. } | ProofError::Invalid { .. }
                ),
                message: e.to_string(),
            },
        }
    }
}

impl From<WireError> for ProofError {
    fn from(e: WireError) -> ProofError {
        match e {
            WireError::FaultySectors(v) => ProofError::FaultySectors(v),
            WireError::Other { bad_input, message } => ProofError::InChild { bad_input, message },
        }
    }
}

/// A message from a child.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToWorker {
    Hello(Hello),
    /// How far the operation is.
    Progress(resources::Progress),
    Result(Result<Output, WireError>),
    Panicked(String),
    OutOfMemory {
        bytes: u64,
    },
}
