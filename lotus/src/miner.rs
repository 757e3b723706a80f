//! The miner actor's methods a sealer calls, and their params: CBOR tuples in builtin-actors
//! v18's field order (`actors/miner/src/types.rs`), written here with the ecosystem's tuple
//! derive rather than pulled in with every actor version (`fil_actor_miner_state` builds v8 to
//! v19 and three `fvm_shared` majors). A test pins the bytes to vectors made independently.

use cid::Cid;
use fvm_ipld_bitfield::BitField;
use fvm_ipld_encoding::tuple::{Deserialize_tuple, Serialize_tuple};
use fvm_ipld_encoding::RawBytes;
use fvm_shared::address::Address;
use fvm_shared::clock::ChainEpoch;
use fvm_shared::econ::TokenAmount;
use fvm_shared::message::Message;
use fvm_shared::randomness::Randomness;
use fvm_shared::sector::{PoStProof, RegisteredAggregateProof, RegisteredSealProof, SectorNumber};
use serde::{Deserialize, Serialize};

use crate::EncodingError;

/// Method numbers (builtin-actors v18 `actors/miner/src/lib.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Method {
    ChangeWorkerAddress = 3,
    SubmitWindowedPoSt = 5,
    TerminateSectors = 9,
    DeclareFaults = 10,
    DeclareFaultsRecovered = 11,
    PreCommitSectorBatch2 = 28,
    ExtendSectorExpiration2 = 32,
    ProveCommitSectors3 = 34,
}

impl Method {
    pub fn number(self) -> u64 {
        self as u64
    }
}

/// The unsealed CID a pre-commit names: none for a committed-capacity sector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CompactCommD(pub Option<Cid>);

#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct PreCommitSectorBatchParams2 {
    pub sectors: Vec<SectorPreCommitInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct SectorPreCommitInfo {
    pub seal_proof: RegisteredSealProof,
    pub sector_number: SectorNumber,
    /// CommR.
    pub sealed_cid: Cid,
    pub seal_rand_epoch: ChainEpoch,
    pub deal_ids: Vec<u64>,
    pub expiration: ChainEpoch,
    pub unsealed_cid: CompactCommD,
}

#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct ProveCommitSectors3Params {
    pub sector_activations: Vec<SectorActivationManifest>,
    /// One proof per sector, or none with an aggregate.
    pub sector_proofs: Vec<RawBytes>,
    pub aggregate_proof: RawBytes,
    pub aggregate_proof_type: Option<RegisteredAggregateProof>,
    pub require_activation_success: bool,
    pub require_notification_success: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct SectorActivationManifest {
    pub sector_number: SectorNumber,
    pub pieces: Vec<PieceActivationManifest>,
}

#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct PieceActivationManifest {
    pub cid: Cid,
    pub size: u64,
    pub verified_allocation_key: Option<VerifiedAllocationKey>,
    pub notify: Vec<DataActivationNotification>,
}

#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct VerifiedAllocationKey {
    pub client: u64,
    pub id: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct DataActivationNotification {
    pub address: Address,
    pub payload: RawBytes,
}

/// What `ProveCommitSectors3` returns (transparent in v18): how many sectors were activated,
/// and the exit code of each that was not.
#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct BatchReturn {
    pub success_count: u32,
    pub fail_codes: Vec<FailCode>,
}

#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct FailCode {
    pub idx: u32,
    pub code: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct SubmitWindowedPoStParams {
    pub deadline: u64,
    pub partitions: Vec<PoStPartition>,
    pub proofs: Vec<PoStProof>,
    pub chain_commit_epoch: ChainEpoch,
    pub chain_commit_rand: Randomness,
}

#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct PoStPartition {
    pub index: u64,
    /// Sectors left out of this proof (faults found while proving).
    pub skipped: BitField,
}

#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct DeclareFaultsParams {
    pub faults: Vec<SectorsDeclaration>,
}

#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct DeclareFaultsRecoveredParams {
    pub recoveries: Vec<SectorsDeclaration>,
}

#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct TerminateSectorsParams {
    pub terminations: Vec<SectorsDeclaration>,
}

/// What `TerminateSectors` returns: whether every termination was processed at once.
#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct TerminateSectorsReturn {
    pub done: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct ExtendSectorExpiration2Params {
    pub extensions: Vec<ExpirationExtension2>,
}

/// Sectors of one partition moved to a later expiration. Committed-capacity sectors have no
/// verified claims: `sectors_with_claims` stays empty.
#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct ExpirationExtension2 {
    pub deadline: u64,
    pub partition: u64,
    pub sectors: BitField,
    pub sectors_with_claims: Vec<SectorClaim>,
    pub new_expiration: ChainEpoch,
}

#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct SectorClaim {
    pub sector_number: SectorNumber,
    pub maintain_claims: Vec<u64>,
    pub drop_claims: Vec<u64>,
}

/// Sectors of one partition (v18's FaultDeclaration, RecoveryDeclaration and
/// TerminationDeclaration, which share this shape).
#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct SectorsDeclaration {
    pub deadline: u64,
    pub partition: u64,
    pub sectors: BitField,
}

/// A call of the miner actor: the method and its params in CBOR, ready to be sent by whoever
/// knows the addresses (the sealer's chain client fills in the worker and the miner).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: u64,
    pub params: RawBytes,
}

impl Call {
    /// A plain send of value (method 0, no params), as `lotus send` makes.
    pub fn transfer() -> Call {
        Call {
            method: 0,
            params: RawBytes::default(),
        }
    }

    pub fn of<P: Params>(p: &P) -> Result<Call, EncodingError> {
        Ok(Call {
            method: P::METHOD.number(),
            params: RawBytes::serialize(p)?,
        })
    }

    /// The params as `P`, if this is a call of `P`'s method.
    pub fn decode<P: Params + serde::de::DeserializeOwned>(&self) -> Option<P> {
        (self.method == P::METHOD.number())
            .then(|| fvm_ipld_encoding::from_slice(&self.params).ok())
            .flatten()
    }

    /// The unsigned message of this call from `from` to `to` (the miner, or for a transfer any
    /// address); nonce and gas are left for the node to fill in (`MpoolPushMessage`).
    pub fn message(&self, from: Address, to: Address, value: TokenAmount) -> Message {
        Message {
            version: 0,
            from,
            to,
            sequence: 0,
            value,
            method_num: self.method,
            params: self.params.clone(),
            gas_limit: 0,
            gas_fee_cap: TokenAmount::default(),
            gas_premium: TokenAmount::default(),
        }
    }
}

/// A method's params, with the method they go to.
pub trait Params: Serialize {
    const METHOD: Method;

    /// An unsigned message to `miner` from `from` calling this method with `value`; nonce and
    /// gas are left for the node to fill in (`MpoolPushMessage`).
    fn message(
        &self,
        from: Address,
        miner: Address,
        value: TokenAmount,
    ) -> Result<Message, EncodingError>
    where
        Self: Sized,
    {
        Ok(Call::of(self)?.message(from, miner, value))
    }
}

/// The owner's change of the worker and of the control addresses (`lotus-miner actor control
/// set`): the control addresses take effect at once, a new worker after a delay.
#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct ChangeWorkerAddressParams {
    pub new_worker: Address,
    pub new_control_addresses: Vec<Address>,
}

impl Params for ChangeWorkerAddressParams {
    const METHOD: Method = Method::ChangeWorkerAddress;
}
impl Params for PreCommitSectorBatchParams2 {
    const METHOD: Method = Method::PreCommitSectorBatch2;
}
impl Params for ProveCommitSectors3Params {
    const METHOD: Method = Method::ProveCommitSectors3;
}
impl Params for SubmitWindowedPoStParams {
    const METHOD: Method = Method::SubmitWindowedPoSt;
}
impl Params for DeclareFaultsParams {
    const METHOD: Method = Method::DeclareFaults;
}
impl Params for DeclareFaultsRecoveredParams {
    const METHOD: Method = Method::DeclareFaultsRecovered;
}
impl Params for TerminateSectorsParams {
    const METHOD: Method = Method::TerminateSectors;
}
impl Params for ExtendSectorExpiration2Params {
    const METHOD: Method = Method::ExtendSectorExpiration2;
}

/// A bitfield of these sector numbers (in any order, repeats allowed), as declarations,
/// skipped sectors and partitions carry them.
pub fn sectors_bitfield(sectors: impl IntoIterator<Item = u64>) -> BitField {
    let mut v: Vec<u64> = sectors.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    BitField::try_from_bits(v).expect("sector numbers fit a bitfield")
}

/// The CID of a replica commitment (CommR), as pre-commits name it.
pub fn sealed_cid(comm_r: &[u8; 32]) -> Cid {
    fvm_shared::commcid::replica_commitment_v1_to_cid(comm_r)
        .expect("fixed codec and multihash for a replica commitment")
}

/// A committed-capacity sector's pre-commit (no deals, no unsealed CID).
pub fn precommit_cc(
    seal_proof: RegisteredSealProof,
    sector_number: SectorNumber,
    comm_r: &[u8; 32],
    seal_rand_epoch: ChainEpoch,
    expiration: ChainEpoch,
) -> SectorPreCommitInfo {
    SectorPreCommitInfo {
        seal_proof,
        sector_number,
        sealed_cid: sealed_cid(comm_r),
        seal_rand_epoch,
        deal_ids: Vec::new(),
        expiration,
        unsealed_cid: CompactCommD(None),
    }
}

/// Prove-commits of committed-capacity sectors, one proof each, as lotus sends them
/// (activation failures reported per sector, not aborting the batch).
pub fn prove_commit_cc(sectors: &[(SectorNumber, Vec<u8>)]) -> ProveCommitSectors3Params {
    ProveCommitSectors3Params {
        sector_activations: sectors
            .iter()
            .map(|(n, _)| SectorActivationManifest {
                sector_number: *n,
                pieces: Vec::new(),
            })
            .collect(),
        sector_proofs: sectors
            .iter()
            .map(|(_, p)| RawBytes::new(p.clone()))
            .collect(),
        aggregate_proof: RawBytes::default(),
        aggregate_proof_type: None,
        require_activation_success: false,
        require_notification_success: false,
    }
}
