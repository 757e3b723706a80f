//! The sealing calls a worker executes for the sealer, and what they return. The in-process
//! worker and remote workers take the same calls.

use proofs::{Commitment, PhaseOutput, PieceInfo, Randomness, SealedCommitments};
use resources::{SectorRef, SectorSize, Subject, TaskType};
use serde::{Deserialize, Serialize};
use stores::{FileType, FileTypes};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskCall {
    /// AP: fills a new committed-capacity sector with zeros.
    AddPiece {
        sector: SectorRef,
    },
    /// PC1. With `rebuild`, the committed-capacity sector's unsealed file is written here from
    /// zeros first (nothing is fetched): its replica is made again with the recorded ticket.
    PreCommit1 {
        sector: SectorRef,
        ticket: Randomness,
        pieces: Vec<PieceInfo>,
        #[serde(default)]
        rebuild: bool,
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

impl TaskCall {
    /// The sector files the prepare stage brings to the worker before the call runs (none for
    /// AP and C2; GET fetches as it runs).
    pub fn inputs(&self) -> FileTypes {
        match self {
            TaskCall::PreCommit1 { rebuild: true, .. } => FileTypes::NONE,
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

    /// What the call is about: its sector, or the PoSt's deadline or epoch.
    pub fn subject(&self) -> Subject {
        match self {
            TaskCall::AddPiece { sector }
            | TaskCall::PreCommit1 { sector, .. }
            | TaskCall::PreCommit2 { sector, .. }
            | TaskCall::Commit1 { sector, .. }
            | TaskCall::Commit2 { sector, .. }
            | TaskCall::Finalize { sector }
            | TaskCall::MoveStorage { sector } => Subject::Sector(*sector),
            TaskCall::WindowPoSt {
                miner,
                deadline,
                check_only,
                ..
            } => Subject::WindowPoSt {
                miner: *miner,
                deadline: *deadline,
                check: *check_only,
            },
            TaskCall::WinningPoSt { miner, epoch, .. } => Subject::WinningPoSt {
                miner: *miner,
                epoch: *epoch,
            },
        }
    }

    /// The sector of a sealing call; none for PoSt.
    pub fn sector(&self) -> Option<SectorRef> {
        self.subject().sector()
    }

    /// The size of the sectors the call works on (what it needs is looked up by it). A PoSt
    /// over no sectors is taken as 2KiB; it reads nothing.
    pub fn size(&self) -> SectorSize {
        match self {
            TaskCall::WindowPoSt { sectors, .. } | TaskCall::WinningPoSt { sectors, .. } => sectors
                .first()
                .map_or(SectorSize::S2KiB, |t| t.sector.size()),
            _ => self.sector().map_or(SectorSize::S2KiB, |s| s.size()),
        }
    }

    /// `PC1 of sector 3`, `WDP of deadline 12`, `WNP of epoch 4051`, for logs and errors.
    pub fn describe(&self) -> String {
        match self.subject() {
            Subject::Sector(s) => format!("{} of sector {}", self.task().short(), s.number),
            other => format!("{} of {other}", self.task().short()),
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

/// A task's result as a worker returns it: the output, or the typed error.
pub type TaskResult = Result<TaskOutput, TaskError>;

/// Why a task failed, as the sector's retry policy needs to know it. The kind, not the
/// message, decides what happens next; the message is for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The worker running it was lost, restarted, or could not be reached: the step runs again
    /// at once elsewhere and costs no retry (lotus: ErrTempWorkerRestart).
    WorkerLost,
    /// Anything that may pass by itself (I/O, a transfer, the chain): retried after the
    /// cool-down, counted against MaxRetries.
    #[default]
    Temporary,
    /// No storage path had room: waits for room, costs no retry.
    OutOfSpace,
    /// The step's inputs (the previous step's output or files) are unusable: the previous step
    /// runs again.
    BadInput,
    /// The proof made does not verify: it is computed again, and twice in a row seals again
    /// from PC1 (lotus's InvalidProofs fallback).
    ProofInvalid,
    /// The operator aborted the job (`sealing abort`).
    Aborted,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::WorkerLost => "worker lost",
            ErrorKind::Temporary => "temporary",
            ErrorKind::OutOfSpace => "out of space",
            ErrorKind::BadInput => "bad input",
            ErrorKind::ProofInvalid => "proof invalid",
            ErrorKind::Aborted => "aborted",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed task: its kind and what happened. Records written before kinds existed held the
/// message alone; they read as `Temporary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(from = "TaskErrorRecord")]
#[error("{message}")]
pub struct TaskError {
    #[serde(rename = "Kind")]
    pub kind: ErrorKind,
    #[serde(rename = "Message")]
    pub message: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TaskErrorRecord {
    Typed {
        #[serde(rename = "Kind")]
        kind: ErrorKind,
        #[serde(rename = "Message")]
        message: String,
    },
    Message(String),
}

impl From<TaskErrorRecord> for TaskError {
    fn from(r: TaskErrorRecord) -> TaskError {
        match r {
            TaskErrorRecord::Typed { kind, message } => TaskError { kind, message },
            TaskErrorRecord::Message(message) => TaskError::new(ErrorKind::Temporary, message),
        }
    }
}

impl TaskError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> TaskError {
        TaskError {
            kind,
            message: message.into(),
        }
    }

    pub fn temporary(message: impl Into<String>) -> TaskError {
        TaskError::new(ErrorKind::Temporary, message)
    }

    pub fn worker_lost(message: impl Into<String>) -> TaskError {
        TaskError::new(ErrorKind::WorkerLost, message)
    }

    pub fn bad_input(message: impl Into<String>) -> TaskError {
        TaskError::new(ErrorKind::BadInput, message)
    }

    /// The same error with `context: ` before its message.
    pub fn context(self, context: impl std::fmt::Display) -> TaskError {
        TaskError {
            kind: self.kind,
            message: format!("{context}: {}", self.message),
        }
    }
}

impl From<&stores::StoreError> for ErrorKind {
    fn from(e: &stores::StoreError) -> ErrorKind {
        use stores::StoreError as E;
        match e {
            E::OutOfSpace { .. } | E::NoSuitablePath(_) => ErrorKind::OutOfSpace,
            E::NotFound { .. } | E::BadMeta { .. } => ErrorKind::BadInput,
            E::Io { .. }
            | E::Attach(_)
            | E::UnknownStorage(_)
            | E::Fetch { .. }
            | E::Refused { .. } => ErrorKind::Temporary,
        }
    }
}

impl From<stores::StoreError> for TaskError {
    fn from(e: stores::StoreError) -> TaskError {
        TaskError::new(ErrorKind::from(&e), e.to_string())
    }
}

impl From<&proofs::ProofError> for ErrorKind {
    fn from(e: &proofs::ProofError) -> ErrorKind {
        use proofs::ProofError as E;
        match e {
            // An output of the other engine, or one that does not parse, cannot be used.
            E::WrongEngine { .. } | E::Invalid { .. } => ErrorKind::BadInput,
            E::InChild { bad_input, .. } if *bad_input => ErrorKind::BadInput,
            // A crashed child is retried as a failed operation is: a fresh process, same inputs.
            E::Failed { .. }
            | E::FaultySectors(_)
            | E::Io { .. }
            | E::InChild { .. }
            | E::Crashed { .. } => ErrorKind::Temporary,
        }
    }
}

impl From<proofs::ProofError> for TaskError {
    fn from(e: proofs::ProofError) -> TaskError {
        TaskError::new(ErrorKind::from(&e), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_keeps_its_kind_on_the_wire_and_old_records_read_as_temporary() {
        let e = TaskError::new(ErrorKind::OutOfSpace, "no room on /seal");
        let json = serde_json::to_string(&Err::<TaskOutput, _>(e.clone())).unwrap();
        assert_eq!(
            json,
            r#"{"Err":{"Kind":"OutOfSpace","Message":"no room on /seal"}}"#
        );
        let back: TaskResult = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Err(e));
        let old: TaskResult = serde_json::from_str(r#"{"Err":"PC1 of sector 3: disk"}"#).unwrap();
        assert_eq!(old, Err(TaskError::temporary("PC1 of sector 3: disk")));
    }

    #[test]
    fn store_and_proof_errors_map_to_the_kind_the_retry_policy_needs() {
        let full = stores::StoreError::OutOfSpace {
            path: "/seal".into(),
            available: 1,
            needed: 2,
        };
        assert_eq!(TaskError::from(full).kind, ErrorKind::OutOfSpace);
        let bad = proofs::ProofError::WrongEngine {
            op: "PC2",
            engine: proofs::EngineKind::Real,
            made_by: proofs::EngineKind::Mock,
        };
        assert_eq!(TaskError::from(bad).kind, ErrorKind::BadInput);
        let io = stores::StoreError::Fetch {
            what: "sealed".into(),
            reason: "reset".into(),
        };
        assert_eq!(TaskError::from(io).kind, ErrorKind::Temporary);
    }
}
