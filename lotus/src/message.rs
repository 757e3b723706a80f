//! Messages on the wire: the CBOR Lotus hashes and the CID it names a message by. A message
//! signed with BLS is known by its unsigned message's CID, any other by the signed message's
//! (Lotus `chain/types/signedmessage.go`).

use cid::Cid;
use fvm_ipld_encoding::tuple::{Deserialize_tuple, Serialize_tuple};
use fvm_ipld_encoding::DAG_CBOR;
use fvm_shared::crypto::signature::{Signature, SignatureType};
use fvm_shared::message::Message;
use multihash_codetable::{Code, MultihashDigest};
use serde::Serialize;

use crate::EncodingError;

/// The CID of `value`'s DAG-CBOR encoding: CIDv1, dag-cbor, blake2b-256, as Lotus names blocks
/// and messages.
pub fn cbor_cid<T: Serialize + ?Sized>(value: &T) -> Result<Cid, EncodingError> {
    let bytes = fvm_ipld_encoding::to_vec(value)?;
    Ok(Cid::new_v1(DAG_CBOR, Code::Blake2b256.digest(&bytes)))
}

/// The CID of an unsigned message.
pub fn message_cid(m: &Message) -> Cid {
    cbor_cid(m).expect("a message always encodes")
}

/// A message with its sender's signature: a CBOR pair, as Lotus encodes it.
#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct SignedMessage {
    pub message: Message,
    pub signature: Signature,
}

impl SignedMessage {
    /// The CID the chain knows the message by.
    pub fn cid(&self) -> Cid {
        match self.signature.sig_type {
            SignatureType::BLS => message_cid(&self.message),
            _ => cbor_cid(self).expect("a signed message always encodes"),
        }
    }
}
