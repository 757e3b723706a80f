//! Keys that sign messages as a Lotus wallet does. A secp256k1 key signs blake2b-256 of the
//! message's CID bytes (Lotus `lib/sigs/secp`): 65 bytes, r ‖ s ‖ recovery id, s low, the nonce
//! from RFC 6979 (so the same key and message always give the same signature); its address is
//! the `1` address of the uncompressed public key. Anyone can check a signature from the
//! message alone: the key is recovered and its address must be the sender.

use fvm_shared::address::Address;
use fvm_shared::crypto::signature::{Signature, SignatureType};
use fvm_shared::message::Message;
use k256::ecdsa::{RecoveryId, Signature as Ecdsa, SigningKey, VerifyingKey};

use crate::message::{message_cid, SignedMessage};
use crate::rand::digest_of as blake2b256;
use crate::EncodingError;

fn invalid(what: &'static str, reason: impl ToString) -> EncodingError {
    EncodingError::Invalid {
        what,
        reason: reason.to_string(),
    }
}

/// A secp256k1 private key.
pub struct SecpKey(SigningKey);

impl SecpKey {
    /// The key with these 32 private bytes (big-endian, as Lotus exports secp256k1 keys).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<SecpKey, EncodingError> {
        SigningKey::from_slice(bytes)
            .map(SecpKey)
            .map_err(|e| invalid("secp256k1 private key", e))
    }

    /// A new random key.
    pub fn generate() -> Result<SecpKey, EncodingError> {
        loop {
            let mut b = [0u8; 32];
            getrandom::fill(&mut b).map_err(|e| invalid("random key", e))?;
            // Out of range (zero or above the group order): about 2^-128, draw again.
            if let Ok(k) = SecpKey::from_bytes(&b) {
                return Ok(k);
            }
        }
    }

    pub fn private_bytes(&self) -> [u8; 32] {
        self.0.to_bytes().into()
    }

    pub fn address(&self) -> Address {
        address_of(self.0.verifying_key())
    }

    /// Signs `m` as its sender (the caller sets `m.from` to this key's address).
    pub fn sign(&self, m: Message) -> Result<SignedMessage, EncodingError> {
        let digest = blake2b256(&message_cid(&m).to_bytes());
        let (sig, recid) = self
            .0
            .sign_prehash_recoverable(&digest)
            .map_err(|e| invalid("secp256k1 signing", e))?;
        let mut bytes = sig.to_bytes().to_vec();
        bytes.push(recid.to_byte());
        Ok(SignedMessage {
            message: m,
            signature: Signature {
                sig_type: SignatureType::Secp256k1,
                bytes,
            },
        })
    }
}

fn address_of(key: &VerifyingKey) -> Address {
    Address::new_secp256k1(key.to_encoded_point(false).as_bytes())
        .expect("an uncompressed point is 65 bytes")
}

/// Checks a secp256k1-signed message: the key its signature recovers must be its sender's.
pub fn verify(sm: &SignedMessage) -> Result<(), EncodingError> {
    let s = &sm.signature;
    if s.sig_type != SignatureType::Secp256k1 {
        return Err(invalid("signature", "only secp256k1 is checked here"));
    }
    let [rs @ .., v] = s.bytes.as_slice() else {
        return Err(invalid("secp256k1 signature", "empty"));
    };
    if rs.len() != 64 {
        return Err(invalid(
            "secp256k1 signature",
            format!("{} bytes, 65 expected", s.bytes.len()),
        ));
    }
    let sig = Ecdsa::from_slice(rs).map_err(|e| invalid("secp256k1 signature", e))?;
    let recid = RecoveryId::from_byte(*v)
        .ok_or_else(|| invalid("secp256k1 signature", format!("recovery id {v}")))?;
    let digest = blake2b256(&message_cid(&sm.message).to_bytes());
    let key = VerifyingKey::recover_from_prehash(&digest, &sig, recid)
        .map_err(|e| invalid("secp256k1 signature", e))?;
    let signer = address_of(&key);
    if signer != sm.message.from {
        return Err(invalid(
            "secp256k1 signature",
            format!("made by {signer}, the message is from {}", sm.message.from),
        ));
    }
    Ok(())
}
