//! The chain as the sealer needs it: the [`Chain`] trait and the types it speaks (messages,
//! receipts, pre-commits, active sectors, deadlines and partitions), in terms a Lotus node's
//! FullNode API gives as well, and [`devnet`]: an embedded chain that implements it, with its own
//! bookkeeping kept inside. Deadline time math is in [`deadline`].

pub mod deadline;
pub mod devnet;

use std::collections::BTreeSet;

use api::{ChainHead, MinerPower};
use async_trait::async_trait;
use proofs::{Randomness, SealedCommitments};
use resources::{SectorRef, SectorSize};
use serde::{Deserialize, Serialize};

pub use deadline::{deadline_at, next_opening, DeadlineInfo, DEADLINES};
pub use devnet::LocalChain;

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error("randomness for epoch {epoch} is not known yet (head is {head})")]
    Future { epoch: i64, head: i64 },
    #[error("miner t0{actor} is registered with {on_chain} sectors, not {asked}")]
    SectorSizeMismatch {
        actor: u64,
        on_chain: SectorSize,
        asked: SectorSize,
    },
    #[error("chain: {0}")]
    Other(String),
}

/// A step that failed on the chain (a store error, randomness not there yet) may pass by itself.
impl From<ChainError> for api::tasks::TaskError {
    fn from(e: ChainError) -> Self {
        api::tasks::TaskError::temporary(e.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RandKind {
    Ticket,
    Seed,
    WindowPoSt,
    WinningPoSt,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    PreCommit {
        sector: SectorRef,
        comms: SealedCommitments,
        ticket_epoch: i64,
    },
    ProveCommit {
        sector: SectorRef,
        #[serde(with = "proofs::bytes")]
        proof: Vec<u8>,
    },
    /// A WindowPoSt over `partitions` of deadline `deadline`, while it is open.
    /// `skipped`: sectors the prover could not read; they become faulty and the proof covers
    /// the rest.
    SubmitWindowedPoSt {
        miner: u64,
        deadline: u64,
        partitions: Vec<usize>,
        #[serde(default)]
        skipped: Vec<u64>,
        #[serde(with = "proofs::bytes")]
        proof: Vec<u8>,
    },
    /// Sectors of `deadline` that will not be proven (they lose power now).
    DeclareFaults {
        miner: u64,
        deadline: u64,
        sectors: Vec<u64>,
    },
    /// The WinningPoSt of a miner elected at `epoch`; counts as a block won only if it lands in
    /// the next epoch (it was sent while `epoch` was the head).
    WinningPoSt {
        miner: u64,
        epoch: i64,
        #[serde(with = "proofs::bytes")]
        proof: Vec<u8>,
    },
    /// Faulty sectors of `deadline` that can be proven again (power returns once proven).
    DeclareFaultsRecovered {
        miner: u64,
        deadline: u64,
        sectors: Vec<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The epoch the message landed in.
    pub epoch: i64,
    /// 0 = ok.
    pub exit_code: i64,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreCommitOnChain {
    pub sector: SectorRef,
    pub comms: SealedCommitments,
    pub ticket_epoch: i64,
    pub precommit_epoch: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveSector {
    pub sector: SectorRef,
    pub comm_r: [u8; 32],
    pub activation: i64,
    /// Where it is proven: deadline and partition.
    #[serde(default)]
    pub deadline: u64,
    #[serde(default)]
    pub partition: usize,
}

impl ActiveSector {
    /// The sector as a PoSt call names it.
    pub fn target(&self) -> api::tasks::PoStTarget {
        api::tasks::PoStTarget {
            sector: self.sector,
            comm_r: self.comm_r,
        }
    }
}

/// What the sealer needs of a chain.
#[async_trait]
pub trait Chain: Send + Sync {
    fn mode(&self) -> &'static str;
    async fn head(&self) -> Result<ChainHead, ChainError>;
    /// Waits until the head is at least `epoch`.
    async fn wait_epoch(&self, epoch: i64) -> Result<ChainHead, ChainError>;
    async fn randomness(&self, kind: RandKind, epoch: i64) -> Result<Randomness, ChainError>;
    /// Epochs between a pre-commit landing and the epoch of its seed.
    fn precommit_challenge_delay(&self) -> i64;
    /// Registers the miner actor with its sector size, or checks it against the registered one.
    async fn ensure_miner(&self, actor: u64, size: SectorSize) -> Result<(), ChainError>;
    /// Sends a message; returns its ID.
    async fn push(&self, msg: Message) -> Result<String, ChainError>;
    /// The receipt once the message has landed.
    async fn receipt(&self, id: &str) -> Result<Option<Receipt>, ChainError>;
    async fn precommit(&self, sector: &SectorRef) -> Result<Option<PreCommitOnChain>, ChainError>;
    async fn active_sector(&self, sector: &SectorRef) -> Result<Option<ActiveSector>, ChainError>;
    async fn power(&self, actor: u64) -> Result<MinerPower, ChainError>;
    /// Epochs per WindowPoSt deadline.
    fn wpost_window(&self) -> i64;
    /// The deadline open at the head for the miner (lotus: `StateMinerProvingDeadline`).
    async fn proving_deadline(&self, actor: u64) -> Result<DeadlineInfo, ChainError>;
    /// The miner's [`DEADLINES`] deadlines with their partitions and faults (lotus:
    /// `StateMinerDeadlines` and `StateMinerPartitions`); all empty before its first sector.
    async fn deadlines(&self, actor: u64) -> Result<Vec<DeadlineState>, ChainError>;
    /// Whether the miner is elected to make the block of `epoch` (the head or before).
    async fn elected(&self, actor: u64, epoch: i64) -> Result<bool, ChainError>;
    /// The sectors a WinningPoSt for `epoch` must cover.
    async fn winning_sectors(
        &self,
        actor: u64,
        epoch: i64,
    ) -> Result<Vec<ActiveSector>, ChainError>;
    /// What the chain counted for the miner since genesis, where it counts (the devnet does;
    /// a Lotus node keeps no such tally and answers `None`).
    async fn tally(&self, actor: u64) -> Result<Option<MinerTally>, ChainError>;
}

/// WindowPoSt counts and blocks won, as the devnet counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinerTally {
    /// Partitions proven in time, and partitions whose deadline closed unproven.
    pub proofs_accepted: u64,
    pub missed: u64,
    pub blocks_won: u64,
}

/// One partition of a deadline: its sectors, the faulty ones, and the faulty ones declared
/// recovered (lotus: `AllSectors`, `FaultySectors`, `RecoveringSectors`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub sectors: BTreeSet<u64>,
    /// Sectors without power: declared faulty, or in a partition whose deadline was missed.
    pub faults: BTreeSet<u64>,
    /// Faulty sectors declared recovered: they regain power once a proof includes them.
    pub recoveries: BTreeSet<u64>,
}

impl Partition {
    /// Sectors a proof of this partition must cover: all but the faulty, plus recoveries.
    pub fn to_prove(&self) -> Vec<u64> {
        self.sectors
            .iter()
            .filter(|s| !self.faults.contains(s) || self.recoveries.contains(s))
            .copied()
            .collect()
    }
}

/// Sector sets over a deadline's partitions.
pub trait Partitions {
    /// Every sector.
    fn sectors(&self) -> BTreeSet<u64>;
    fn faults(&self) -> BTreeSet<u64>;
    fn recoveries(&self) -> BTreeSet<u64>;
}

impl Partitions for [Partition] {
    fn sectors(&self) -> BTreeSet<u64> {
        self.iter()
            .flat_map(|p| p.sectors.iter().copied())
            .collect()
    }
    fn faults(&self) -> BTreeSet<u64> {
        self.iter().flat_map(|p| p.faults.iter().copied()).collect()
    }
    fn recoveries(&self) -> BTreeSet<u64> {
        self.iter()
            .flat_map(|p| p.recoveries.iter().copied())
            .collect()
    }
}

/// A deadline as the chain holds it now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineState {
    pub partitions: Vec<Partition>,
    /// Partitions proven in its current opening; empty while it is not open (lotus:
    /// `PostSubmissions`).
    pub proven: BTreeSet<usize>,
}

/// Lowercase hex, as message IDs and commitments are shown.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
