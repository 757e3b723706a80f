//! The chain itself as a Lotus node describes it in JSON: tipsets and block headers
//! (`ChainHead`, `SyncSubmitBlock`), the network's parameters (`StateGetNetworkParams`), what a
//! miner needs to mine a round (`MinerGetBaseInfo`), and where a sector is proven
//! (`StateSectorPartition`, `StateMinerDeadlines`).

use cid::Cid;
use fvm_ipld_bitfield::BitField;
use fvm_shared::address::Address;
use fvm_shared::bigint::BigInt;
use fvm_shared::clock::ChainEpoch;
use fvm_shared::econ::TokenAmount;
use fvm_shared::sector::{RegisteredPoStProof, RegisteredSealProof, SectorNumber};
use serde::{Deserialize, Serialize};

use crate::json::{
    address, bigint, bitfield, bytes, cid_link, null_as_empty, tipset_key, token, SignatureJson,
};

/// A tipset: its key (the CIDs of its blocks), the blocks and their height.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TipSet {
    #[serde(with = "tipset_key")]
    pub cids: Vec<Cid>,
    pub blocks: Vec<BlockHeader>,
    pub height: ChainEpoch,
}

impl TipSet {
    /// Seconds since the Unix epoch, as block headers carry it.
    pub fn timestamp(&self) -> u64 {
        self.blocks.first().map_or(0, |b| b.timestamp)
    }
}

/// `{"VRFProof": base64}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    #[serde(rename = "VRFProof", with = "bytes")]
    pub vrf_proof: Vec<u8>,
}

/// `{"WinCount", "VRFProof"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionProof {
    #[serde(rename = "WinCount")]
    pub win_count: i64,
    #[serde(rename = "VRFProof", with = "bytes")]
    pub vrf_proof: Vec<u8>,
}

/// A drand round: `{"Round", "Data"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BeaconEntry {
    pub round: u64,
    #[serde(with = "bytes")]
    pub data: Vec<u8>,
}

/// A PoSt proof in JSON: `{"PoStProof": type, "ProofBytes": base64}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PoStProofJson {
    pub po_st_proof: RegisteredPoStProof,
    #[serde(with = "bytes")]
    pub proof_bytes: Vec<u8>,
}

/// A block header, with every field Lotus writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BlockHeader {
    #[serde(with = "address")]
    pub miner: Address,
    pub ticket: Option<Ticket>,
    pub election_proof: Option<ElectionProof>,
    #[serde(default, with = "null_as_empty")]
    pub beacon_entries: Vec<BeaconEntry>,
    #[serde(default, rename = "WinPoStProof", with = "null_as_empty")]
    pub win_post_proof: Vec<PoStProofJson>,
    #[serde(with = "tipset_key")]
    pub parents: Vec<Cid>,
    #[serde(with = "bigint")]
    pub parent_weight: BigInt,
    pub height: ChainEpoch,
    #[serde(with = "cid_link")]
    pub parent_state_root: Cid,
    #[serde(with = "cid_link")]
    pub parent_message_receipts: Cid,
    #[serde(with = "cid_link")]
    pub messages: Cid,
    #[serde(rename = "BLSAggregate")]
    pub bls_aggregate: Option<SignatureJson>,
    /// Seconds since the Unix epoch.
    pub timestamp: u64,
    pub block_sig: Option<SignatureJson>,
    pub fork_signaling: u64,
    #[serde(with = "token")]
    pub parent_base_fee: TokenAmount,
}

/// `MinerCreateBlock`'s template: what the miner decides (its election and ticket VRFs, the
/// beacon entries, the messages it picked, its WinningPoSt); the node fills in the rest and
/// signs the header with the worker key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BlockTemplate {
    #[serde(with = "address")]
    pub miner: Address,
    #[serde(with = "tipset_key")]
    pub parents: Vec<Cid>,
    pub ticket: Option<Ticket>,
    pub eproof: Option<ElectionProof>,
    #[serde(default, with = "null_as_empty")]
    pub beacon_values: Vec<BeaconEntry>,
    #[serde(default, with = "null_as_empty")]
    pub messages: Vec<crate::json::SignedMessageJson>,
    pub epoch: ChainEpoch,
    /// Seconds since the Unix epoch.
    pub timestamp: u64,
    #[serde(default, rename = "WinningPoStProof", with = "null_as_empty")]
    pub winning_post_proof: Vec<PoStProofJson>,
}

/// `SyncSubmitBlock`'s block: the header and the CIDs of its messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BlockMsg {
    pub header: BlockHeader,
    #[serde(with = "tipset_key")]
    pub bls_messages: Vec<Cid>,
    #[serde(with = "tipset_key")]
    pub secpk_messages: Vec<Cid>,
}

/// `StateGetNetworkParams` (the fields a miner reads; the rest are kept as they came).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkParams {
    pub network_name: String,
    pub block_delay_secs: u64,
    #[serde(with = "bigint")]
    pub consensus_miner_min_power: BigInt,
    #[serde(default)]
    pub supported_proof_types: Option<Vec<RegisteredSealProof>>,
    pub pre_commit_challenge_delay: ChainEpoch,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// A sector as `MinerGetBaseInfo` names the ones a WinningPoSt covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorInfo {
    pub seal_proof: RegisteredSealProof,
    pub sector_number: SectorNumber,
    #[serde(rename = "SealedCID", with = "cid_link")]
    pub sealed_cid: Cid,
}

/// `MinerGetBaseInfo`: what a miner needs to mine a round, or `null` for a miner without
/// power.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MiningBaseInfo {
    #[serde(with = "bigint")]
    pub miner_power: BigInt,
    #[serde(with = "bigint")]
    pub network_power: BigInt,
    /// The sectors the round's WinningPoSt covers.
    #[serde(default, with = "null_as_empty")]
    pub sectors: Vec<SectorInfo>,
    #[serde(with = "address")]
    pub worker_key: Address,
    pub sector_size: u64,
    pub prev_beacon_entry: BeaconEntry,
    #[serde(default, with = "null_as_empty")]
    pub beacon_entries: Vec<BeaconEntry>,
    pub eligible_for_mining: bool,
}

/// `StateSectorPartition`: where a sector is proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorLocation {
    pub deadline: u64,
    pub partition: u64,
}

/// One deadline of `StateMinerDeadlines`: the partitions proven in its current opening.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Deadline {
    #[serde(with = "bitfield")]
    pub post_submissions: BitField,
    pub disputable_proof_count: u64,
    /// Since FIP-0100; older nodes leave it out.
    #[serde(with = "token", default)]
    pub daily_fee: TokenAmount,
}
