//! Request and response types of the sealer API. Field names follow lotus's JSON where lotus
//! has the same structure.

use std::fmt;

use resources::{SectorSize, TaskSet, TaskType, WorkerResources};
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
    /// Waiting in the pre-commit batch queue (`[Sealing] BatchPreCommits`).
    SubmitPreCommitBatch,
    PreCommitWait,
    WaitSeed,
    Committing,
    SubmitCommit,
    /// Waiting in the prove-commit batch queue (`[Sealing] AggregateCommits`).
    SubmitCommitAggregate,
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
    /// The sector's replica or cache is nowhere healthy and it waits to be rebuilt (no worker
    /// can run PC1 and PC2 with room, or the automatic rebuild is off): the reason is shown.
    RebuildWait,
    /// Its replica is made again from the recorded ticket: PC1 of zeros, then PC2; the new
    /// commR is checked against the chain's before the sector goes on.
    RebuildPreCommit1,
    RebuildPreCommit2,
    RebuildFailed,
    /// `sectors terminate`: its TerminateSectors is being sent (it waits while its deadline is
    /// open or next, when the miner actor refuses changes to it).
    Terminating,
    /// Waiting for the termination to land; then its files are removed.
    TerminateWait,
    TerminateFailed,
}

impl SectorState {
    /// Whether a sector in this state is on chain (pre-committed or active).
    pub fn on_chain(self) -> bool {
        !matches!(
            self,
            SectorState::Packing
                | SectorState::GetTicket
                | SectorState::PreCommit1
                | SectorState::PreCommit2
                | SectorState::PreCommitting
                | SectorState::SubmitPreCommitBatch
                | SectorState::PreCommitWait
                | SectorState::SealPreCommit1Failed
                | SectorState::SealPreCommit2Failed
                | SectorState::PreCommitFailed
                | SectorState::Removing
                | SectorState::Removed
        )
    }

    pub const ALL: [SectorState; 30] = [
        SectorState::Packing,
        SectorState::GetTicket,
        SectorState::PreCommit1,
        SectorState::PreCommit2,
        SectorState::PreCommitting,
        SectorState::SubmitPreCommitBatch,
        SectorState::PreCommitWait,
        SectorState::WaitSeed,
        SectorState::Committing,
        SectorState::SubmitCommit,
        SectorState::SubmitCommitAggregate,
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
        SectorState::RebuildWait,
        SectorState::RebuildPreCommit1,
        SectorState::RebuildPreCommit2,
        SectorState::RebuildFailed,
        SectorState::Terminating,
        SectorState::TerminateWait,
        SectorState::TerminateFailed,
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
                | SectorState::Terminating
                | SectorState::TerminateWait
                | SectorState::TerminateFailed
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
                | SectorState::RebuildFailed
                | SectorState::TerminateFailed
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
    /// What kind of failure the last error was (what the retry does next); none before any.
    #[serde(rename = "LastErrKind", default)]
    pub last_error_kind: Option<crate::tasks::ErrorKind>,
    #[serde(rename = "Log")]
    pub log: Vec<SectorLog>,
    /// Why the sector waits (RebuildWait: no worker can rebuild it, or the rebuild is off).
    #[serde(rename = "Waiting", default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// On-chain view (filled when asked with showOnChainInfo).
    #[serde(rename = "OnChain")]
    pub on_chain: Option<OnChainSector>,
}

/// One row of `sectors list` (`Filecoin.SectorsListPage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorListRow {
    pub number: u64,
    pub state: SectorState,
    /// When it entered its state (unix ms).
    pub since_ms: u64,
    pub retries: u32,
    pub last_error: String,
    pub deals: u64,
    /// The chain's expiration epoch, when asked for and the chain has the sector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<i64>,
}

/// A page of `sectors list`: its rows and how many sectors match in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorsPage {
    pub total: u64,
    pub rows: Vec<SectorListRow>,
    /// The chain epoch the expirations were read at, when they were asked for: what the CLI
    /// counts "in N days" from, without a `ChainHead` call of its own (absent from an older
    /// sealer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OnChainSector {
    #[serde(rename = "Activation")]
    pub activation: Option<i64>,
    #[serde(rename = "PreCommitEpoch")]
    pub precommit_epoch: Option<i64>,
    /// The chain's view of the active sector (`StateSectorGetInfo`, `StateSectorPartition`).
    #[serde(rename = "SealProof", default)]
    pub seal_proof: Option<i64>,
    #[serde(rename = "SealedCID", default)]
    pub sealed_cid: Option<String>,
    #[serde(rename = "Expiration", default)]
    pub expiration: Option<i64>,
    #[serde(rename = "Deadline", default)]
    pub deadline: Option<u64>,
    #[serde(rename = "Partition", default)]
    pub partition: Option<u64>,
}

/// `Filecoin.WorkerJobs`: one row of `sealing jobs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRow {
    #[serde(rename = "ID")]
    pub id: u64,
    /// The sector, or the PoSt's deadline or epoch.
    #[serde(rename = "Subject")]
    pub subject: resources::Subject,
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
    /// The CPUs it runs on (running, on a worker that reported its CPU layout).
    #[serde(rename = "Cpus", default)]
    pub cpus: Option<resources::topology::CpuSet>,
    /// How far it is (running, where its worker reported it): PC1's layer, a fetch's bytes.
    #[serde(rename = "Progress", default)]
    pub progress: Option<resources::Progress>,
}

/// Resources committed on a worker by the tasks placed on it (lotus's MemUsedMin/Max, CpuUse,
/// GpuUsed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerUsage {
    #[serde(rename = "MemUsedMin")]
    pub mem_min: u64,
    #[serde(rename = "MemUsedMax")]
    pub mem_max: u64,
    #[serde(rename = "CpuUse")]
    pub cpus: u64,
    /// Thousandths of a GPU.
    #[serde(rename = "GpuUsedMilli")]
    pub gpu_milli: u32,
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
    pub usage: WorkerUsage,
    /// Running tasks per task type (short name -> count).
    #[serde(rename = "TaskCounts")]
    pub task_counts: std::collections::BTreeMap<String, u32>,
    /// The CPUs it may use, and what each running task holds ("PC1 of sector 3", its CPUs,
    /// whether they are its own), where it reported its CPU layout.
    #[serde(rename = "Cpus", default)]
    pub cpus: Option<resources::topology::CpuSet>,
    #[serde(rename = "CpusHeld", default)]
    pub cpus_held: Vec<CpusHeld>,
}

/// `Filecoin.SealingPlanInputs`: a running cluster, as `sealer plan` plans it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanInputs {
    #[serde(rename = "SectorSize")]
    pub sector_size: SectorSize,
    /// Sectors the miner proves now (Proving and on their way out of it).
    #[serde(rename = "Sectors")]
    pub sectors: u64,
    #[serde(rename = "MaxSealingSectors")]
    pub max_sealing: u64,
    /// A sector's wait for its seed on this chain: the pre-commit challenge delay's epochs.
    #[serde(rename = "SeedWaitSecs")]
    pub seed_wait_s: f64,
    /// The proof engine's name ("mock" where the times recorded are not real proofs').
    #[serde(rename = "Engine")]
    pub engine: String,
    #[serde(rename = "Workers")]
    pub workers: Vec<PlanWorker>,
}

/// One registered worker for the plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanWorker {
    /// Its name (the host it announced).
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Enabled")]
    pub enabled: bool,
    #[serde(rename = "Connected")]
    pub connected: bool,
    #[serde(rename = "Tasks")]
    pub tasks: TaskSet,
    #[serde(rename = "Info")]
    pub resources: WorkerResources,
    /// The resource table with its env overrides.
    #[serde(rename = "Table")]
    pub table: resources::ResourceTable,
    /// The sealing paths it reaches: storage ID and size (a path shared by several workers is
    /// listed under each).
    #[serde(rename = "SealPaths")]
    pub seal_paths: Vec<(String, u64)>,
    /// The steps' usual times on it, for the sector size: task, runs, mean seconds.
    #[serde(rename = "Took")]
    pub took: Vec<(TaskType, u64, f64)>,
}

/// CPUs a running task holds on its worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpusHeld {
    #[serde(rename = "Task")]
    pub task: TaskType,
    #[serde(rename = "Subject")]
    pub subject: resources::Subject,
    #[serde(rename = "Cpus")]
    pub cpus: resources::topology::CpuSet,
    /// Its own, or shared (nothing was free).
    #[serde(rename = "Exclusive")]
    pub exclusive: bool,
    /// The GPU it was given (NVML's index).
    #[serde(rename = "Gpu", default)]
    pub gpu: Option<u32>,
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

/// `Filecoin.ChainHead`: the head as the chain node gave it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// The tipset key: its blocks' CIDs.
    #[serde(rename = "Cids", default)]
    pub cids: Vec<String>,
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
    /// The chain node's API calls so far, by part of the sealer (API, sealing, WindowPoSt,
    /// WinningPoSt) and method.
    #[serde(rename = "ChainCalls", default)]
    pub chain_calls: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
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
    /// The miner actor's and its worker's money.
    #[serde(rename = "Funds", default)]
    pub funds: Option<MinerBalances>,
}

/// One of the miner's addresses as `actor control list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ControlRow {
    /// "owner", "worker", "control-0", ...
    pub name: String,
    pub id: String,
    pub key: String,
    /// What it sends: "precommit", "commit", "post" (as a listed sender or a fallback).
    pub uses: Vec<String>,
    pub balance: String,
    /// Whether the node's wallet holds its key (it cannot send otherwise).
    pub in_wallet: bool,
}

/// The miner's money as lotus-miner `info` shows it, amounts as lotus prints FIL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MinerBalances {
    /// The actor's balance, and what of it is locked: pre-commit deposits, initial pledge,
    /// vesting rewards; the rest is available.
    pub miner_balance: String,
    pub pre_commit: String,
    pub pledge: String,
    pub vesting: String,
    pub available: String,
    /// The worker (which sends the messages and pays their value and gas): its ID and key
    /// address, and its balance.
    pub worker: String,
    pub worker_key: String,
    pub worker_balance: String,
    pub owner: String,
    pub owner_balance: String,
    /// Control addresses with their balances.
    pub control: Vec<(String, String)>,
    /// The chain's network name.
    pub network: String,
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
    /// Its CPUs: cores, L3 groups, NUMA nodes, as `/sys` says (none where it cannot be read).
    #[serde(rename = "Topology", default)]
    pub topology: Option<resources::topology::Topology>,
    /// The CPUs it may use (`worker run --cpus`, default its affinity mask).
    #[serde(rename = "Cpus", default)]
    pub cpus: Option<resources::topology::CpuSet>,
    /// Task types kept to some of those CPUs (`worker.toml`).
    #[serde(rename = "TaskCpus", default)]
    pub task_cpus: std::collections::BTreeMap<TaskType, resources::topology::CpuSet>,
    /// Calls running now.
    #[serde(rename = "Running", default)]
    pub running: Vec<RunningCall>,
}

fn unknown_task() -> TaskType {
    TaskType::Fetch
}

/// A call running on a worker, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningCall {
    /// The ID the sealer gave it.
    #[serde(rename = "CallID", default)]
    pub call_id: String,
    #[serde(rename = "Task", default = "unknown_task")]
    pub task: TaskType,
    /// "PC1 of sector 3".
    #[serde(rename = "Call")]
    pub call: String,
    /// The CPUs (and GPU) the scheduler placed it on (none: the worker's own).
    #[serde(rename = "Place")]
    pub place: Option<resources::topology::Place>,
    /// How far it is, where its processor said.
    #[serde(rename = "Progress", default)]
    pub progress: Option<resources::Progress>,
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

/// `Filecoin.Version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VersionInfo {
    pub version: String,
    #[serde(rename = "APIVersion")]
    pub api_version: String,
}

/// `Filecoin.WorkerConnect`: the worker's ID here, and whether it is a new session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Connected {
    #[serde(rename = "ID")]
    pub id: String,
    pub new: bool,
}

/// `Filecoin.CheckProvable` (`proving check`): a deadline's sectors and those that cannot be
/// proven now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Provable {
    pub deadline: u64,
    pub sectors: Vec<u64>,
    pub unprovable: Vec<Unprovable>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Unprovable {
    pub sector: u64,
    pub why: String,
}

/// Where a deadline stands in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeadlineTimes {
    /// The epoch the current proving period began.
    pub period_start: i64,
    pub index: u64,
    /// First epoch a proof for it is accepted.
    pub open: i64,
    /// First epoch it no longer is.
    pub close: i64,
    /// The epoch whose randomness challenges its proofs.
    pub challenge: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PartitionRow {
    pub sectors: Vec<u64>,
    pub faults: Vec<u64>,
    pub recoveries: Vec<u64>,
}

/// What happened at a deadline's last opening.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeadlineRunRow {
    pub open: i64,
    /// "proven", "failed: why", or "nothing to prove".
    pub outcome: String,
    pub skipped: Vec<u64>,
    pub message: Option<String>,
    /// How long the proof took (the WDP task, retries included).
    #[serde(default)]
    pub proof_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeadlineRow {
    pub index: u64,
    /// Its next (or current) opening.
    pub open: i64,
    pub close: i64,
    pub partitions: Vec<PartitionRow>,
    /// Partitions proven in the current opening.
    pub proven_partitions: usize,
    pub last_run: Option<DeadlineRunRow>,
}

/// `Filecoin.StateMinerDeadlines`: the miner's deadlines, power and PoSt record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProvingDeadlines {
    pub head: i64,
    /// Epochs per deadline.
    pub window: i64,
    pub current: DeadlineTimes,
    pub power: MinerPower,
    pub faults: Vec<u64>,
    pub missed: u64,
    pub proofs_accepted: u64,
    pub elections: u64,
    #[serde(rename = "WinningPoStsSent")]
    pub winning_posts_sent: u64,
    pub blocks_won: u64,
    pub deadlines: Vec<DeadlineRow>,
}

/// `Filecoin.SealingSchedDiag`: the queue, what no worker can take, dispatch latency, storage
/// room per worker, and the scheduler's own accounting check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SchedDiag {
    pub dispatch: DispatchStats,
    /// Scheduling passes run.
    pub passes: u64,
    pub queued: Vec<QueuedJob>,
    pub unplaceable: Vec<QueuedJob>,
    pub workers: usize,
    /// A broken accounting invariant, if any (none in a healthy scheduler).
    pub invariants: Option<String>,
    pub storage: Vec<WorkerRoom>,
    /// Sectors that wait before any task can be queued for them (a lost replica that no
    /// worker can rebuild now) or before a message can be sent (a sender short of funds),
    /// with the reason.
    #[serde(default)]
    pub sectors_waiting: Vec<WaitingSector>,
}

impl SchedDiag {
    /// Queued tasks explained worker by worker, from the head of the queue.
    pub const EXPLAINED: usize = 200;
}

/// A sector waiting outside the queue, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitingSector {
    pub sector: u64,
    pub state: SectorState,
    pub why: String,
}

/// Time from a task being ready to its start, over every task dispatched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DispatchStats {
    pub tasks: usize,
    pub ready_to_start_p50_ms: Option<f64>,
    pub ready_to_start_p99_ms: Option<f64>,
    pub ready_to_start_max_ms: Option<f64>,
    /// Ready to placed on a worker: the scheduler's own part.
    pub ready_to_assign_p50_ms: Option<f64>,
    pub ready_to_assign_p99_ms: Option<f64>,
    pub first_to_last_start_s: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueuedJob {
    #[serde(rename = "ID")]
    pub id: u64,
    /// The sector, or the PoSt's deadline or epoch.
    pub subject: String,
    /// Short task name (`AP`, `PC1`, ...).
    pub task: String,
    /// Why it is not running: its closest worker's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The same as a fixed short reason (`NotHereRow::reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why not on each worker (the first `SchedDiag::EXPLAINED` queued tasks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<NotHereRow>,
}

/// Why a queued task is not running on one worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NotHereRow {
    pub worker: String,
    pub host: String,
    /// A fixed short reason (the metrics' label): "task type disabled", "not enough RAM", ...
    pub reason: String,
    /// The same with figures: "not enough RAM: needs 56 GiB, 12 GiB free".
    pub why: String,
}

/// Whether a worker has room to seal a new sector and to store a finalized one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WorkerRoom {
    pub worker: String,
    pub host: String,
    pub room_to_seal: bool,
    pub room_to_store: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// A sector waiting in a batch queue (`sectors batching precommit|commit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchQueued {
    pub sector: u64,
    /// The epoch by which its message must land (its ticket's expiry for a pre-commit, the
    /// end of its prove-commit window for a prove-commit).
    pub deadline: i64,
    /// Seconds it has waited in the queue.
    pub waited_s: u64,
}

/// A batch a flush sent (`sectors batching ... --publish-now`), or could not send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchSent {
    pub sectors: Vec<u64>,
    /// Its message's CID, when it went.
    pub message: Option<String>,
    /// Why it went now.
    pub reason: String,
    /// Why it did not go (no sender with the funds, the node refused it).
    pub error: Option<String>,
}

/// `sectors extend`: the new expiration, or how many epochs later than each sector's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExtendTo {
    At(i64),
    By(i64),
}

/// What `sectors extend` sent: one ExtendSectorExpiration2 message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Extended {
    pub message: String,
    /// Each sector with its expiration before and after.
    pub sectors: Vec<(u64, i64, i64)>,
}
