//! The sealing calls a worker executes for the sealer, and what they return. The in-process
//! worker and remote workers take the same calls.

use proofs::{Commitment, PhaseOutput, PieceInfo, Randomness, SealedCommitments};
use resources::{SectorRef, TaskType};
use serde::{Deserialize, Serialize};
use stores::{FileType, FileTypes};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskCall {
    /// AP: fills a new committed-capacity sector with zeros.
    AddPiece {
        sector: SectorRef,
    },
    PreCommit1 {
        sector: SectorRef,
        ticket: Randomness,
        pieces: Vec<PieceInfo>,
    },
    PreCommit2 {
        sector: SectorRef,
        pc1: PhaseOutput,
    },
    Commit1 {
        sector: SectorRef,
        ticket: Randomness,
        seed: Randomness,
        comms: SealedCommitments,
        pieces: Vec<PieceInfo>,
    },
    Commit2 {
        sector: SectorRef,
        c1: PhaseOutput,
    },
    /// FIN: trims the cache where the sector was sealed (and moves it to a store path on the
    /// same machine, if there is one).
    Finalize {
        sector: SectorRef,
    },
    /// GET: brings the finalized sealed file and cache onto this machine's store path (fetching
    /// with Move from the sealing machine), then drops the CC sector's unsealed copies.
    MoveStorage {
        sector: SectorRef,
    },
    /// WDP over one deadline's sectors, read from this machine's paths. With `check_only`, only
    /// reads the challenged leaves (`proving check`) and names the sectors that cannot be proven.
    WindowPoSt {
        miner: u64,
        deadline: u64,
        randomness: Randomness,
        sectors: Vec<PoStTarget>,
        check_only: bool,
    },
    /// WNP for the block this miner was elected to make at `epoch`.
    WinningPoSt {
        miner: u64,
        epoch: i64,
        randomness: Randomness,
        sectors: Vec<PoStTarget>,
    },
}

/// A sector a PoSt covers, as the chain knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoStTarget {
    pub sector: SectorRef,
    pub comm_r: Commitment,
}

/// PoSt calls are not about one sector: they are keyed (call records, per-sector locks) by a
/// number no sector has, one per deadline and kind.
pub const POST_KEY_BASE: u64 = 1 << 62;

/// The pseudo sector a PoSt call is keyed by: number `POST_KEY_BASE + n`, its sectors' proof.
fn post_key(miner: u64, n: u64, sectors: &[PoStTarget]) -> SectorRef {
    let proof = sectors
        .first()
        .map(|t| t.sector.proof)
        .unwrap_or(resources::SealProof::StackedDrg2KiBV1_1);
    SectorRef::new(miner, POST_KEY_BASE + n, proof)
}

impl TaskCall {
    /// The sector files the prepare stage brings to the worker before the call runs (none for
    /// AP and C2; GET fetches as it runs).
    pub fn inputs(&self) -> FileTypes {
        match self {
            TaskCall::PreCommit1 { .. } => FileType::Unsealed.into(),
            TaskCall::PreCommit2 { .. } | TaskCall::Commit1 { .. } => FileTypes::ALL,
            TaskCall::Finalize { .. } => FileTypes::SEALED,
            TaskCall::AddPiece { .. }
            | TaskCall::Commit2 { .. }
            | TaskCall::MoveStorage { .. }
            | TaskCall::WindowPoSt { .. }
            | TaskCall::WinningPoSt { .. } => FileTypes::NONE,
        }
    }

    pub fn sector(&self) -> SectorRef {
        match self {
            TaskCall::AddPiece { sector }
            | TaskCall::PreCommit1 { sector, .. }
            | TaskCall::PreCommit2 { sector, .. }
            | TaskCall::Commit1 { sector, .. }
            | TaskCall::Commit2 { sector, .. }
            | TaskCall::Finalize { sector }
            | TaskCall::MoveStorage { sector } => *sector,
            TaskCall::WindowPoSt {
                miner,
                deadline,
                sectors,
                check_only,
                ..
            } => post_key(*miner, deadline * 2 + *check_only as u64, sectors),
            TaskCall::WinningPoSt {
                miner,
                epoch,
                sectors,
                ..
            } => post_key(*miner, (1 << 32) + *epoch as u64, sectors),
        }
    }

    pub fn task(&self) -> TaskType {
        match self {
            TaskCall::AddPiece { .. } => TaskType::AddPiece,
            TaskCall::PreCommit1 { .. } => TaskType::PreCommit1,
            TaskCall::PreCommit2 { .. } => TaskType::PreCommit2,
            TaskCall::Commit1 { .. } => TaskType::Commit1,
            TaskCall::Commit2 { .. } => TaskType::Commit2,
            TaskCall::Finalize { .. } => TaskType::Finalize,
            TaskCall::MoveStorage { .. } => TaskType::Fetch,
            TaskCall::WindowPoSt { .. } => TaskType::WindowPoSt,
            TaskCall::WinningPoSt { .. } => TaskType::WinningPoSt,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskOutput {
    Piece(PieceInfo),
    PreCommit1(PhaseOutput),
    PreCommit2(SealedCommitments),
    Commit1(PhaseOutput),
    Proof(#[serde(with = "proofs::bytes")] Vec<u8>),
    Finalized,
    Moved,
    /// A WindowPoSt proof.
    WindowPoSt(#[serde(with = "proofs::bytes")] Vec<u8>),
    /// A WinningPoSt proof.
    WinningPoSt(#[serde(with = "proofs::bytes")] Vec<u8>),
    /// Sectors that cannot be proven, with why (a check, or a proof that could not be made).
    Unprovable(Vec<(u64, String)>),
}

/// A task's result as a worker returns it: the output, or the error in words.
pub type TaskResult = Result<TaskOutput, String>;
