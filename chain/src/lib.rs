//! The chain as the sealer needs it: the [`Chain`] trait and the types it speaks (receipts,
//! pre-commits, active sectors, deadlines and partitions), in the terms of a Lotus node's
//! FullNode API. [`client::FullNode`] implements it over that API (Lotus JSON on `/rpc/v1`);
//! [`devnet`] is a node that serves that API for an embedded devnet. Deadline time math is in
//! [`deadline`]; the devnet's election draw, which client and node share, in [`election`].

pub mod calls;
pub mod client;
pub mod deadline;
pub mod devnet;
pub mod election;
pub mod init;
pub mod pool;

use std::collections::BTreeSet;

use api::{ChainHead, MinerPower};
use async_trait::async_trait;
use proofs::Randomness;
use resources::{SectorRef, SectorSize};
use serde::{Deserialize, Serialize};

pub use api::fullnode::MinerTally;
pub use client::FullNode;
pub use deadline::{deadline_at, next_opening, DeadlineInfo, DEADLINES};
pub use devnet::Devnet;
pub use lotus::{Address, Call, TokenAmount};

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error("chain node: {0}")]
    Node(#[from] api::ClientError),
    #[error("randomness for epoch {epoch} is not known yet (head is {head})")]
    Future { epoch: i64, head: i64 },
    #[error("miner {miner} is registered with {on_chain} sectors, not {asked}")]
    SectorSizeMismatch {
        miner: String,
        on_chain: SectorSize,
        asked: SectorSize,
    },
    #[error("miner {0} is not on chain")]
    NoMiner(String),
    #[error("the chain node answered {what}: {reason}")]
    BadAnswer { what: &'static str, reason: String },
    #[error(transparent)]
    Encoding(#[from] lotus::EncodingError),
    #[error("chain: {0}")]
    Other(String),
}

/// A step that failed on the chain (a node unreachable, randomness not there yet) may pass by
/// itself.
impl From<ChainError> for api::tasks::TaskError {
    fn from(e: ChainError) -> Self {
        api::tasks::TaskError::temporary(e.to_string())
    }
}

/// What a draw of randomness is for (each has its domain separation tag, and is drawn from
/// the tickets or the beacon as the actors draw it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RandKind {
    /// SealRandomness, from tickets.
    Ticket,
    /// InteractiveSealChallengeSeed, from the beacon.
    Seed,
    /// WindowedPoStChallengeSeed, from the beacon.
    WindowPoSt,
    /// WinningPoStChallengeSeed, from the beacon.
    WinningPoSt,
    /// PoStChainCommit, from tickets, no entropy: what a WindowPoSt commits to.
    ChainCommit,
    /// ElectionProofProduction, from the beacon.
    Election,
    /// TicketProduction, from the beacon: what a block's ticket VRF signs (drawn for the epoch
    /// before the block's).
    TicketProduction,
}

impl RandKind {
    pub fn tag(self) -> lotus::rand::DomainSeparationTag {
        use lotus::rand::DomainSeparationTag as T;
        match self {
            RandKind::Ticket => T::SealRandomness,
            RandKind::Seed => T::InteractiveSealChallengeSeed,
            RandKind::WindowPoSt => T::WindowedPoStChallengeSeed,
            RandKind::WinningPoSt => T::WinningPoStChallengeSeed,
            RandKind::ChainCommit => T::PoStChainCommit,
            RandKind::Election => T::ElectionProofProduction,
            RandKind::TicketProduction => T::TicketProduction,
        }
    }

    /// Drawn from the beacon (`StateGetRandomnessFromBeacon`), or from tickets.
    pub fn from_beacon(self) -> bool {
        !matches!(self, RandKind::Ticket | RandKind::ChainCommit)
    }

    /// The miner's address is the entropy, except for the chain commit.
    pub fn miner_entropy(self) -> bool {
        self != RandKind::ChainCommit
    }
}

/// The miner actor's MaxPreCommitRandomnessLookback: a day of epochs plus the chain's finality
/// (builtin-actors' policy, mainnet and calibnet alike).
pub const MAX_PRECOMMIT_RANDOMNESS_LOOKBACK: i64 = 2880 + 900;

/// The miner actor's MaxProveCommitDuration: a pre-commit must be proven within 30 days of
/// epochs and the PreCommitChallengeDelay (150) after it lands (builtin-actors' policy).
pub const MAX_PROVE_COMMIT_DURATION: i64 = 30 * 2880 + 150;

/// The furthest from now a sector's expiration may be set (builtin-actors'
/// MaxSectorExpirationExtension: 1278 days of epochs).
pub const MAX_SECTOR_EXPIRATION_EXTENSION: i64 = 1278 * 2880;

/// SealRandomnessLookback: a ticket is drawn this far back from the head (the chain's
/// finality), where no reorg reaches.
pub const SEAL_RANDOMNESS_LOOKBACK: i64 = 900;

/// An address of the miner as the chain names it (an ID address), and its key address (what
/// signs, and what a message from it says once signed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub id: Address,
    pub key: Address,
}

/// A miner's owner, worker and control addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinerAddresses {
    pub owner: Account,
    pub worker: Account,
    pub control: Vec<Account>,
}

impl MinerAddresses {
    /// Every address of the miner, owner first (a message from any may be the miner's).
    pub fn all(&self) -> impl Iterator<Item = &Account> {
        [&self.owner, &self.worker].into_iter().chain(&self.control)
    }

    /// The account `a` names (by ID or key), if it is one of the miner's.
    pub fn find(&self, a: &Address) -> Option<Account> {
        self.all().find(|x| x.id == *a || x.key == *a).copied()
    }
}

/// A miner actor's money (`StateReadState`, `StateMinerAvailableBalance`), as lotus-miner
/// `info` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinerFunds {
    #[serde(with = "lotus::json::token")]
    pub balance: TokenAmount,
    #[serde(with = "lotus::json::token")]
    pub precommit_deposits: TokenAmount,
    #[serde(with = "lotus::json::token")]
    pub initial_pledge: TokenAmount,
    /// Block rewards still vesting (`LockedFunds`).
    #[serde(with = "lotus::json::token")]
    pub vesting: TokenAmount,
    /// What the actor can pay deposits and pledge from, or the owner withdraw.
    #[serde(with = "lotus::json::token")]
    pub available: TokenAmount,
}

/// A message's receipt, once it has landed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The epoch the message landed in.
    pub epoch: i64,
    /// 0 = ok.
    pub exit_code: i64,
    pub error: String,
    /// The message that landed instead, when the one asked for was replaced in the pool (same
    /// sender and nonce, a higher fee): its CID.
    #[serde(default)]
    pub replaced_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreCommitOnChain {
    pub sector: SectorRef,
    pub comm_r: [u8; 32],
    /// None: a committed-capacity sector's zero CommD.
    pub comm_d: Option<[u8; 32]>,
    pub ticket_epoch: i64,
    pub precommit_epoch: i64,
    pub expiration: i64,
    /// What its pre-commit locked (`PreCommitDeposit`).
    #[serde(with = "lotus::json::token", default)]
    pub deposit: TokenAmount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveSector {
    pub sector: SectorRef,
    pub comm_r: [u8; 32],
    pub activation: i64,
    #[serde(default)]
    pub expiration: i64,
    /// Where it is proven: deadline and partition.
    #[serde(default)]
    pub deadline: u64,
    #[serde(default)]
    pub partition: usize,
    /// What its activation locked (`InitialPledge`).
    #[serde(with = "lotus::json::token", default)]
    pub initial_pledge: TokenAmount,
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

/// What the sealer needs of a chain: the calls of a Lotus FullNode it makes, in its own terms.
/// One miner's view: `actor` is the sealer's miner.
#[async_trait]
pub trait Chain: Send + Sync {
    /// "devnet" or "lotus": what the node said it is.
    fn mode(&self) -> &'static str;
    /// The node's API calls made so far, by method (a client that counts them).
    fn calls(&self) -> std::collections::BTreeMap<&'static str, u64> {
        Default::default()
    }
    async fn head(&self) -> Result<ChainHead, ChainError>;
    /// The head's epoch as a watch last saw it (at most a poll old), without a call; `None`
    /// where there is no watch or it saw nothing yet.
    fn seen_epoch(&self) -> Option<i64> {
        None
    }
    /// Waits until the head is at least `epoch`.
    async fn wait_epoch(&self, epoch: i64) -> Result<ChainHead, ChainError>;
    /// The miner's randomness of `kind` at `epoch`.
    async fn randomness(&self, kind: RandKind, epoch: i64) -> Result<Randomness, ChainError>;
    /// Epochs between a pre-commit landing and the epoch of its seed.
    fn precommit_challenge_delay(&self) -> i64;
    /// Time between epochs, in milliseconds (mainnet's 30 s unless the node says otherwise).
    fn block_delay_ms(&self) -> u64 {
        30_000
    }
    /// How old a pre-commit's ticket may be when it lands (MaxPreCommitRandomnessLookback).
    fn max_ticket_age(&self) -> i64 {
        MAX_PRECOMMIT_RANDOMNESS_LOOKBACK
    }
    /// How far back from the head a ticket is drawn (SealRandomnessLookback).
    fn ticket_lookback(&self) -> i64 {
        SEAL_RANDOMNESS_LOOKBACK
    }
    /// How long after its pre-commit lands a sector may be prove-committed
    /// (MaxProveCommitDuration).
    fn max_prove_commit_duration(&self) -> i64 {
        MAX_PROVE_COMMIT_DURATION
    }
    /// The base fee at the head (its blocks' ParentBaseFee), where the node says.
    async fn base_fee(&self) -> Result<Option<TokenAmount>, ChainError> {
        Ok(None)
    }
    /// Checks that the miner actor is on chain with this sector size.
    async fn ensure_miner(&self, actor: u64, size: SectorSize) -> Result<(), ChainError>;
    /// Sends a call of the miner actor from `from` (its owner, worker or a control address)
    /// with `value` (a deposit or pledge), its gas costing at most `max_fee` (`[Fees]`);
    /// returns the message's CID.
    async fn send(
        &self,
        from: Address,
        call: Call,
        value: TokenAmount,
        max_fee: TokenAmount,
    ) -> Result<String, ChainError>;
    /// The miner's addresses as `StateMinerInfo` says at the head, with their key addresses
    /// (a node client may keep them for the epoch: state changes only between tipsets).
    async fn addresses(&self) -> Result<MinerAddresses, ChainError>;
    /// Whether the node's wallet holds the key of `key` (`WalletHas`).
    async fn wallet_has(&self, key: &Address) -> Result<bool, ChainError>;
    /// The network's name (`StateGetNetworkParams`).
    fn network(&self) -> String;
    /// An address's balance (`WalletBalance`).
    async fn balance(&self, of: &Address) -> Result<TokenAmount, ChainError>;
    /// The deposit a pre-commit locks (`StateMinerPreCommitDepositForPower`).
    async fn precommit_deposit(&self, pc: &calls::PreCommitSpec)
        -> Result<TokenAmount, ChainError>;
    /// The initial pledge of one of the miner's sectors committed for `duration` epochs
    /// (`StateMinerInitialPledgeForSector`).
    async fn initial_pledge(&self, duration: i64) -> Result<TokenAmount, ChainError>;
    /// The miner actor's balance and what of it is locked.
    async fn funds(&self) -> Result<MinerFunds, ChainError>;
    /// What the miner actor can pay deposits and pledge from (`StateMinerAvailableBalance`):
    /// `funds().available` in one call.
    async fn available_balance(&self) -> Result<TokenAmount, ChainError>;
    /// A message of the miner's worker still in the pool calling `method` for `sector` (a
    /// pre-commit or prove-commit sent before a restart): its CID.
    async fn pending(
        &self,
        method: lotus::miner::Method,
        sector: u64,
    ) -> Result<Option<String>, ChainError>;
    /// The receipt once the message has landed.
    async fn receipt(&self, id: &str) -> Result<Option<Receipt>, ChainError>;
    async fn precommit(&self, sector: &SectorRef) -> Result<Option<PreCommitOnChain>, ChainError>;
    async fn active_sector(&self, sector: &SectorRef) -> Result<Option<ActiveSector>, ChainError>;
    /// The proven ones among `sectors` (a deadline's, a page of `sectors list`), with their
    /// commR, activation and expiration, in one call where the node has one
    /// (`StateMinerSectors`); where each is proven (deadline, partition) is left at 0.
    async fn active_sectors(&self, sectors: &[SectorRef]) -> Result<Vec<ActiveSector>, ChainError> {
        let mut out = Vec::new();
        for s in sectors {
            out.extend(self.active_sector(s).await?);
        }
        Ok(out)
    }
    async fn power(&self, actor: u64) -> Result<MinerPower, ChainError>;
    /// Epochs per WindowPoSt deadline.
    fn wpost_window(&self) -> i64;
    /// The deadline open at the head for the miner (`StateMinerProvingDeadline`).
    async fn proving_deadline(&self, actor: u64) -> Result<DeadlineInfo, ChainError>;
    /// Deadline `index` with its partitions (`StateMinerPartitions`) and the partitions proven
    /// in its current opening (`StateMinerDeadlines`).
    async fn deadline(&self, actor: u64, index: u64) -> Result<DeadlineState, ChainError>;
    /// All [`DEADLINES`] deadlines; all empty before the miner's first sector.
    async fn deadlines(&self, actor: u64) -> Result<Vec<DeadlineState>, ChainError> {
        let mut out = Vec::new();
        for i in 0..DEADLINES {
            out.push(self.deadline(actor, i).await?);
        }
        Ok(out)
    }
    /// The miner's election for round `epoch` (the next one on the head, or any before), if it
    /// wins one or more blocks: its VRF (the worker's signature of the round's election
    /// randomness, made by the node's wallet), its win count, and its WinningPoSt's randomness.
    async fn election(&self, actor: u64, epoch: i64) -> Result<Option<Election>, ChainError>;
    /// The sectors a WinningPoSt for `epoch` must cover.
    async fn winning_sectors(
        &self,
        actor: u64,
        epoch: i64,
    ) -> Result<Vec<api::tasks::PoStTarget>, ChainError>;
    /// Has the node make the block the miner was elected for at round `epoch`, on the tipset
    /// before it (`MinerCreateBlock`), with its WinningPoSt, and submits it (`SyncSubmitBlock`).
    async fn submit_block(
        &self,
        actor: u64,
        epoch: i64,
        election: &Election,
        proof: Vec<u8>,
    ) -> Result<(), ChainError>;
    /// What the chain counted for the miner since genesis, where it counts (the devnet does;
    /// a Lotus node keeps no such tally and answers `None`).
    async fn tally(&self, actor: u64) -> Result<Option<MinerTally>, ChainError>;
}

/// A won election: the VRF proof, the number of blocks it wins, the randomness its
/// WinningPoSt answers, and the block's ticket (the worker's VRF of the TicketProduction
/// randomness of the round before), all drawn from the round's beacon entry as lotus-miner
/// draws them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Election {
    pub vrf: Vec<u8>,
    pub win_count: i64,
    pub post_randomness: Randomness,
    pub ticket: Vec<u8>,
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

pub use proofs::bytes::hex;
