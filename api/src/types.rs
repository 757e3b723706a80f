//! Request and response types of the sealer API. Field names follow lotus's JSON where lotus
//! has the same structure.

use std::fmt;

use resources::{SectorRef, TaskSet, TaskType, WorkerResources};
use sched::{JobState, Usage};
use serde::{Deserialize, Serialize};
use stores::{FsStat, StorageInfo};

/// A sector's state, named as lotus names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SectorState {
    Packing,
    GetTicket,
    PreCommit1,
    PreCommit2,
    PreCommitting,
    PreCommitWait,
    WaitSeed,
    Committing,
    SubmitCommit,
    CommitWait,
    FinalizeSector,
    Proving,
    SealPreCommit1Failed,
    SealPreCommit2Failed,
    PreCommitFailed,
    ComputeProofFailed,
    CommitFailed,
    FinalizeFailed,
    /// Too many retries; the sector needs an operator (lotus: FailedUnrecoverable).
    FailedUnrecoverable,
    Removing,
    Removed,
}

impl SectorState {
    pub const ALL: [SectorState; 21] = [
        SectorState::Packing,
        SectorState::GetTicket,
        SectorState::PreCommit1,
        SectorState::PreCommit2,
        SectorState::PreCommitting,
        SectorState::PreCommitWait,
        SectorState::WaitSeed,
        SectorState::Committing,
        SectorState::SubmitCommit,
        SectorState::CommitWait,
        SectorState::FinalizeSector,
        SectorState::Proving,
        SectorState::SealPreCommit1Failed,
        SectorState::SealPreCommit2Failed,
        SectorState::PreCommitFailed,
        SectorState::ComputeProofFailed,
        SectorState::CommitFailed,
        SectorState::FinalizeFailed,
        SectorState::FailedUnrecoverable,
        SectorState::Removing,
        SectorState::Removed,
    ];

    /// Counted against MaxSealingSectors: everything between pledge and Proving, failures
    /// waiting for a retry included.
    pub fn is_sealing(self) -> bool {
        !matches!(
            self,
            SectorState::Proving
                | SectorState::FailedUnrecoverable
                | SectorState::Removing
                | SectorState::Removed
        )
    }

    pub fn is_failed(self) -> bool {
        matches!(
            self,
            SectorState::SealPreCommit1Failed
                | SectorState::SealPreCommit2Failed
                | SectorState::PreCommitFailed
                | SectorState::ComputeProofFailed
                | SectorState::CommitFailed
                | SectorState::FinalizeFailed
                | SectorState::FailedUnrecoverable
        )
    }
}

impl fmt::Display for SectorState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl std::str::FromStr for SectorState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SectorState::ALL
            .into_iter()
            .find(|st| st.to_string() == s)
            .ok_or_else(|| format!("unknown sector state {s:?}"))
    }
}

/// One entry of a sector's event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectorLog {
    /// Unix time, milliseconds.
    #[serde(rename = "Timestamp")]
    pub timestamp_ms: u64,
    /// The event's kind (e.g. `SectorPreCommit1`, `SectorSealPreCommit1Failed`).
    #[serde(rename = "Kind")]
    pub kind: String,
    /// The state entered.
    #[serde(rename = "State")]
    pub state: SectorState,
    /// What happened: the task's worker, the message, or the error.
    #[serde(rename = "Message")]
    pub message: String,
}

/// `Filecoin.SectorsStatus`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SectorInfo {
    #[serde(rename = "SectorID")]
    pub sector_id: u64,
    #[serde(rename = "State")]
    pub state: SectorState,
    #[serde(rename = "ProofType")]
    pub proof: resources::SealProof,
    #[serde(rename = "CommD")]
    pub comm_d: Option<String>,
    #[serde(rename = "CommR")]
    pub comm_r: Option<String>,
    #[serde(rename = "Ticket")]
    pub ticket: Option<String>,
    #[serde(rename = "TicketEpoch")]
    pub ticket_epoch: Option<i64>,
    #[serde(rename = "Seed")]
    pub seed: Option<String>,
    #[serde(rename = "SeedEpoch")]
    pub seed_epoch: Option<i64>,
    #[serde(rename = "PreCommitMsg")]
    pub precommit_msg: Option<String>,
    #[serde(rename = "CommitMsg")]
    pub commit_msg: Option<String>,
    #[serde(rename = "Proof")]
    pub proof_len: usize,
    #[serde(rename = "Deals")]
    pub deals: Vec<u64>,
    #[serde(rename = "Retries")]
    pub retries: u32,
    #[serde(rename = "LastErr")]
    pub last_error: String,
    #[serde(rename = "Log")]
    pub log: Vec<SectorLog>,
    /// On-chain view (filled when asked with showOnChainInfo).
    #[serde(rename = "OnChain")]
    pub on_chain: Option<OnChainSector>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OnChainSector {
    #[serde(rename = "Activation")]
    pub activation: Option<i64>,
    #[serde(rename = "PreCommitEpoch")]
    pub precommit_epoch: Option<i64>,
}

/// `Filecoin.WorkerJobs`: one row of `sealing jobs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRow {
    #[serde(rename = "ID")]
    pub id: u64,
    #[serde(rename = "Sector")]
    pub sector: SectorRef,
    #[serde(rename = "Worker")]
    pub worker: String,
    #[serde(rename = "Hostname")]
    pub hostname: String,
    #[serde(rename = "Task")]
    pub task: TaskType,
    /// `running`, `prepared`, `preparing`, `assigned(N)`, `ret-wait`, or `queued`.
    #[serde(rename = "State")]
    pub state: String,
    #[serde(rename = "RunWait")]
    pub run_wait: i32,
    /// Milliseconds in the current state.
    #[serde(rename = "ElapsedMs")]
    pub elapsed_ms: u64,
}

impl JobRow {
    /// lotus's RunWait number for a job state: 0 running, 1 prepared, N+1 assigned(N), -1 ret-wait.
    pub fn run_wait_of(state: Option<JobState>) -> i32 {
        match state {
            Some(JobState::Running) => 0,
            Some(JobState::Prepared) | Some(JobState::Preparing) => 1,
            Some(JobState::Assigned(n)) => n as i32 + 1,
            Some(JobState::RetWait) => -1,
            None => 100,
        }
    }
}

/// `Filecoin.WorkerStats`: one worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerRow {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Hostname")]
    pub hostname: String,
    #[serde(rename = "Enabled")]
    pub enabled: bool,
    #[serde(rename = "Connected")]
    pub connected: bool,
    #[serde(rename = "Tasks")]
    pub tasks: TaskSet,
    #[serde(rename = "Info")]
    pub resources: WorkerResources,
    #[serde(rename = "Usage")]
    pub usage: Usage,
    /// Running tasks per task type (short name -> count).
    #[serde(rename = "TaskCounts")]
    pub task_counts: std::collections::BTreeMap<String, u32>,
}

/// `Filecoin.StorageList`: one path with its stat and what it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StorageRow {
    #[serde(rename = "Info")]
    pub info: StorageInfo,
    #[serde(rename = "Stat")]
    pub stat: Option<FsStat>,
    #[serde(rename = "LocalPath")]
    pub local_path: Option<String>,
    /// Sector files per file type (unsealed, sealed, cache).
    #[serde(rename = "Counts")]
    pub counts: std::collections::BTreeMap<String, u64>,
    #[serde(rename = "Healthy")]
    pub healthy: bool,
    #[serde(rename = "Error")]
    pub error: Option<String>,
}

/// `Filecoin.StorageAttach` (`storage attach` flags).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AttachParams {
    #[serde(rename = "Path")]
    pub path: String,
    #[serde(rename = "Init")]
    pub init: bool,
    #[serde(rename = "CanSeal")]
    pub seal: bool,
    #[serde(rename = "CanStore")]
    pub store: bool,
    #[serde(rename = "Weight")]
    pub weight: u64,
    #[serde(rename = "MaxStorage")]
    pub max_storage: u64,
    #[serde(rename = "Groups", default)]
    pub groups: Vec<String>,
    #[serde(rename = "AllowTo", default)]
    pub allow_to: Vec<String>,
}

/// `Filecoin.StorageFindSector`: where one of a sector's files is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FoundFile {
    #[serde(rename = "FileType")]
    pub file_type: String,
    #[serde(rename = "ID")]
    pub storage: String,
    #[serde(rename = "URLs")]
    pub urls: Vec<String>,
    #[serde(rename = "LocalPath")]
    pub local_path: Option<String>,
    #[serde(rename = "CanSeal")]
    pub can_seal: bool,
    #[serde(rename = "CanStore")]
    pub can_store: bool,
}

/// `Filecoin.ChainHead`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    #[serde(rename = "Height")]
    pub height: i64,
    /// Unix time of the epoch, milliseconds.
    #[serde(rename = "Timestamp")]
    pub timestamp_ms: u64,
    #[serde(rename = "BlockDelayMs")]
    pub block_delay_ms: u64,
}

/// `Filecoin.StateMinerPower`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinerPower {
    #[serde(rename = "RawBytePower")]
    pub raw_bytes: u64,
    #[serde(rename = "Sectors")]
    pub sectors: u64,
    #[serde(rename = "TotalRawBytePower")]
    pub total_raw_bytes: u64,
}

/// `Filecoin.MinerInfo`: what `info` prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MinerInfo {
    #[serde(rename = "Actor")]
    pub actor: String,
    #[serde(rename = "SectorSize")]
    pub sector_size: String,
    #[serde(rename = "Engine")]
    pub engine: String,
    #[serde(rename = "ChainMode")]
    pub chain_mode: String,
    #[serde(rename = "Head")]
    pub head: ChainHead,
    #[serde(rename = "Power")]
    pub power: MinerPower,
    /// Sectors per state.
    #[serde(rename = "States")]
    pub states: std::collections::BTreeMap<String, u64>,
    #[serde(rename = "MaxSealingSectors")]
    pub max_sealing: u64,
    #[serde(rename = "Workers")]
    pub workers: usize,
    #[serde(rename = "Version")]
    pub version: String,
    /// How the sealer's in-process worker labels in PC1 (none with the mock engine).
    #[serde(rename = "SDR", default)]
    pub sdr: Option<proofs::SdrMode>,
}

/// What a worker reports about itself (`Filecoin.WorkerInfo`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerInfo {
    #[serde(rename = "Hostname")]
    pub hostname: String,
    /// Changes on every start: a restarted worker is a new session.
    #[serde(rename = "Session")]
    pub session: String,
    #[serde(rename = "Enabled")]
    pub enabled: bool,
    #[serde(rename = "Resources")]
    pub resources: WorkerResources,
    /// The resource table with the worker's env overrides applied.
    #[serde(rename = "Table")]
    pub table: resources::ResourceTable,
    #[serde(rename = "Tasks")]
    pub tasks: TaskSet,
    /// This worker's storage paths.
    #[serde(rename = "Paths")]
    pub paths: Vec<WorkerPath>,
    #[serde(rename = "URL")]
    pub url: String,
    /// Sector files this worker has fetched from other machines since it started.
    #[serde(rename = "Fetches")]
    pub fetches: u64,
    /// How this worker labels in PC1 (none with the mock engine).
    #[serde(rename = "SDR", default)]
    pub sdr: Option<proofs::SdrMode>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerPath {
    #[serde(rename = "ID")]
    pub id: stores::StorageId,
    #[serde(rename = "LocalPath")]
    pub local_path: String,
    #[serde(rename = "Weight")]
    pub weight: u64,
    #[serde(rename = "CanSeal")]
    pub can_seal: bool,
    #[serde(rename = "CanStore")]
    pub can_store: bool,
}
