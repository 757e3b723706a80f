//! The storage power actor's CreateMiner (builtin-actors v18 `actors/power/src/types.rs`): how
//! `lotus-miner init` makes a miner actor. A CBOR tuple in the actor's field order.

use fvm_ipld_encoding::tuple::{Deserialize_tuple, Serialize_tuple};
use fvm_ipld_encoding::{strict_bytes, BytesDe, RawBytes};
use fvm_shared::address::Address;
use fvm_shared::econ::TokenAmount;
use fvm_shared::message::Message;
use fvm_shared::sector::RegisteredPoStProof;

use crate::EncodingError;

/// The storage power actor, `t04`.
pub const POWER_ACTOR: u64 = 4;
/// Its CreateMiner method.
pub const CREATE_MINER: u64 = 2;

#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct CreateMinerParams {
    pub owner: Address,
    pub worker: Address,
    pub window_post_proof_type: RegisteredPoStProof,
    #[serde(with = "strict_bytes")]
    pub peer: Vec<u8>,
    pub multiaddrs: Vec<BytesDe>,
}

#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct CreateMinerReturn {
    /// The new miner's ID address.
    pub id_address: Address,
    /// Its reorg-safe (actor) address.
    pub robust_address: Address,
}

impl CreateMinerParams {
    /// The message `from` sends to create the miner (nonce and gas left to the node).
    pub fn message(&self, from: Address) -> Result<Message, EncodingError> {
        let call = crate::Call {
            method: CREATE_MINER,
            params: RawBytes::serialize(self)?,
        };
        Ok(call.message(from, Address::new_id(POWER_ACTOR), TokenAmount::default()))
    }
}
