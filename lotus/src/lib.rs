//! Filecoin's types as a Lotus node and the miner actor see them. Messages, addresses, token
//! amounts, proof types, signatures and bitfields are the ecosystem's own (`fvm_shared`,
//! `fvm_ipld_encoding`, `fvm_ipld_bitfield`, `cid`); this crate adds what those leave to each
//! implementation:
//! - `message`: a message's CID as Lotus computes it, and signed messages;
//! - `miner`: the miner actor's method numbers and params, CBOR tuples as builtin-actors v18
//!   decodes them;
//! - `power`: the power actor's CreateMiner, which makes a miner actor;
//! - `chain`: tipsets, block headers and the network's parameters, in Lotus JSON;
//! - `json`: Lotus's JSON for all of these (addresses as text, amounts as decimal strings,
//!   bytes as base64, CIDs as `{"/": ..}`, bitfields as RLE runs);
//! - `rand`: randomness drawn as the chain draws it (tags, digest, epoch, entropy);
//! - `state`: what a node answers about chain state (version, deadlines, partitions,
//!   pre-commits, message lookups), in Lotus JSON;
//! - `wallet`: secp256k1 keys that sign messages as a Lotus wallet does, and the check anyone
//!   can make of such a signature.

pub mod chain;
pub mod json;
pub mod message;
pub mod miner;
pub mod power;
pub mod rand;
pub mod state;
pub mod wallet;

pub use cid::Cid;
pub use fvm_ipld_bitfield::BitField;
pub use fvm_ipld_encoding;
pub use fvm_ipld_encoding::RawBytes;
pub use fvm_shared;
pub use fvm_shared::address::{Address, Network};
pub use fvm_shared::crypto::signature::{Signature, SignatureType};
pub use fvm_shared::econ::TokenAmount;
pub use fvm_shared::error::ExitCode;
pub use fvm_shared::message::Message;
pub use fvm_shared::randomness::Randomness;
pub use fvm_shared::sector::{PoStProof, RegisteredPoStProof, RegisteredSealProof};
pub use message::{cbor_cid, SignedMessage};
pub use miner::Call;

/// An exit code with its name, as a receipt is read: `16 (illegal argument)`.
pub fn exit_code_text(code: u32) -> String {
    let name = match code {
        0 => "ok",
        1..=15 => "system error",
        16 => "illegal argument",
        17 => "not found",
        18 => "forbidden",
        19 => "insufficient funds",
        20 => "illegal state",
        21 => "serialization",
        22 => "unhandled message",
        23 => "unspecified",
        24 => "assertion failed",
        _ => "actor error",
    };
    format!("{code} ({name})")
}

/// Something could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodingError {
    #[error("CBOR: {0}")]
    Cbor(#[from] fvm_ipld_encoding::Error),
    #[error("{what}: {reason}")]
    Invalid { what: &'static str, reason: String },
}
