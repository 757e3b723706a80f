//! What a Lotus node answers about chain state, in its JSON (field names as Lotus writes them):
//! the node's version, a miner's info, power, proving deadline and partitions, a sector's
//! pre-commit and on-chain info, and a message's lookup with its receipt. The FullNode client reads these; the devnet node writes
//! them.

use cid::Cid;
use fvm_ipld_bitfield::BitField;
use fvm_ipld_encoding::RawBytes;
use fvm_shared::address::Address;
use fvm_shared::bigint::BigInt;
use fvm_shared::clock::ChainEpoch;
use fvm_shared::econ::TokenAmount;
use fvm_shared::sector::{RegisteredPoStProof, RegisteredSealProof, SectorNumber};
use serde::{Deserialize, Serialize};

use crate::json::{
    address, addresses, bigint, bitfield, cid_link, cid_link_opt, raw_bytes, tipset_key, token,
};

/// The API version a Lotus v1 node reports (2.3.0), which lotus-miner requires.
pub const FULL_API_VERSION: u64 = 0x020300;

/// `Version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Version {
    pub version: String,
    #[serde(rename = "APIVersion")]
    pub api_version: u64,
    /// Seconds.
    pub block_delay: u64,
    #[serde(default)]
    pub agent: String,
}

/// `StateMinerProvingDeadline`: the deadline open (or next) at `current_epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeadlineInfo {
    pub current_epoch: ChainEpoch,
    pub period_start: ChainEpoch,
    pub index: u64,
    pub open: ChainEpoch,
    pub close: ChainEpoch,
    pub challenge: ChainEpoch,
    pub fault_cutoff: ChainEpoch,
    #[serde(rename = "WPoStPeriodDeadlines")]
    pub wpost_period_deadlines: u64,
    #[serde(rename = "WPoStProvingPeriod")]
    pub wpost_proving_period: ChainEpoch,
    #[serde(rename = "WPoStChallengeWindow")]
    pub wpost_challenge_window: ChainEpoch,
    #[serde(rename = "WPoStChallengeLookback")]
    pub wpost_challenge_lookback: ChainEpoch,
    pub fault_declaration_cutoff: ChainEpoch,
}

/// One partition of `StateMinerPartitions`: its sectors as bitfields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Partition {
    #[serde(with = "bitfield")]
    pub all_sectors: BitField,
    #[serde(with = "bitfield")]
    pub faulty_sectors: BitField,
    #[serde(with = "bitfield")]
    pub recovering_sectors: BitField,
    #[serde(with = "bitfield")]
    pub live_sectors: BitField,
    #[serde(with = "bitfield")]
    pub active_sectors: BitField,
}

/// A pre-commit as the chain holds it (`StateSectorPreCommitInfo`, `null` when there is none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorPreCommitOnChainInfo {
    pub info: PreCommitInfo,
    #[serde(with = "token")]
    pub pre_commit_deposit: TokenAmount,
    pub pre_commit_epoch: ChainEpoch,
}

/// The pre-commit's own fields (the JSON of the actor's `SectorPreCommitInfo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PreCommitInfo {
    pub seal_proof: RegisteredSealProof,
    pub sector_number: SectorNumber,
    #[serde(rename = "SealedCID", with = "cid_link")]
    pub sealed_cid: Cid,
    pub seal_rand_epoch: ChainEpoch,
    #[serde(rename = "DealIDs", default)]
    pub deal_ids: Option<Vec<u64>>,
    pub expiration: ChainEpoch,
    #[serde(with = "cid_link_opt", default)]
    pub unsealed_cid: Option<Cid>,
}

/// A message's receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Receipt {
    pub exit_code: u32,
    #[serde(with = "raw_bytes")]
    pub r#return: RawBytes,
    pub gas_used: u64,
    #[serde(with = "cid_link_opt", default)]
    pub events_root: Option<Cid>,
}

/// `StateWaitMsg` / `StateSearchMsg`: where a message landed. `message` may name a replacement
/// of the message asked for (same sender and nonce): compare it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MsgLookup {
    #[serde(with = "cid_link")]
    pub message: Cid,
    pub receipt: Receipt,
    #[serde(default)]
    pub return_dec: serde_json::Value,
    #[serde(rename = "TipSet", with = "tipset_key")]
    pub tipset: Vec<Cid>,
    pub height: ChainEpoch,
}

/// `StateMinerInfo`: the fields a sealer acts on, typed; the others (pending changes,
/// beneficiary terms, where Lotus writes `<empty>` for an unset address) kept as they came.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MinerInfo {
    #[serde(with = "address")]
    pub owner: Address,
    #[serde(with = "address")]
    pub worker: Address,
    #[serde(with = "addresses")]
    pub control_addresses: Vec<Address>,
    pub peer_id: Option<String>,
    #[serde(default)]
    pub multiaddrs: Option<Vec<String>>,
    pub window_po_st_proof_type: RegisteredPoStProof,
    pub sector_size: u64,
    pub window_po_st_partition_sectors: u64,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// Raw and quality-adjusted power, in bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Claim {
    #[serde(with = "bigint")]
    pub raw_byte_power: BigInt,
    #[serde(with = "bigint")]
    pub quality_adj_power: BigInt,
}

/// `StateMinerPower`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MinerPower {
    pub miner_power: Claim,
    pub total_power: Claim,
    pub has_min_power: bool,
}

/// A proven sector as the chain holds it (`StateSectorGetInfo`, `null` when there is none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorOnChainInfo {
    pub sector_number: SectorNumber,
    pub seal_proof: RegisteredSealProof,
    #[serde(rename = "SealedCID", with = "cid_link")]
    pub sealed_cid: Cid,
    pub activation: ChainEpoch,
    pub expiration: ChainEpoch,
    #[serde(with = "bigint")]
    pub deal_weight: BigInt,
    #[serde(with = "bigint")]
    pub verified_deal_weight: BigInt,
    #[serde(with = "token")]
    pub initial_pledge: TokenAmount,
    #[serde(with = "token")]
    pub expected_day_reward: TokenAmount,
    #[serde(with = "token")]
    pub expected_storage_pledge: TokenAmount,
    pub power_base_epoch: ChainEpoch,
    #[serde(with = "token")]
    pub replaced_day_reward: TokenAmount,
    #[serde(rename = "SectorKeyCID", with = "cid_link_opt", default)]
    pub sector_key_cid: Option<Cid>,
    pub flags: u64,
    /// Since FIP-0100; older nodes leave it out.
    #[serde(with = "token", default)]
    pub daily_fee: TokenAmount,
}

/// `StateReadState`: an actor's balance, code and state. The state's JSON is the actor's own
/// (for a miner: `PreCommitDeposits`, `LockedFunds`, `InitialPledge`, `FeeDebt`, ...): kept as
/// it came, with [`ActorState::amount`] to read a field that is an amount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ActorState {
    #[serde(with = "token")]
    pub balance: TokenAmount,
    #[serde(with = "cid_link")]
    pub code: Cid,
    pub state: serde_json::Value,
}

impl ActorState {
    /// The state's field `name` as an amount (a decimal attoFIL string); `None` when it is not
    /// there or not one.
    pub fn amount(&self, name: &str) -> Option<TokenAmount> {
        let s = self.state.get(name)?.as_str()?;
        s.parse::<BigInt>().ok().map(TokenAmount::from_atto)
    }
}
