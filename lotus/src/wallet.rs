//! Keys that sign messages as a Lotus wallet does. A secp256k1 key signs blake2b-256 of the
//! message's CID bytes (Lotus `lib/sigs/secp`): 65 bytes, r ‖ s ‖ recovery id, s low, the nonce
//! from RFC 6979 (so the same key and message always give the same signature); its address is
//! the `1` address of the uncompressed public key. Anyone can check a signature from the
//! message alone: the key is recovered and its address must be the sender. A BLS key
//! (BLS12-381, public keys in G1, Lotus `lib/sigs/bls`) signs the CID bytes themselves with
//! Filecoin's ciphersuite: 96 bytes; its address is the `3` address of its 48-byte public key,
//! which is what a signature is checked against. The miner actor takes only BLS workers.

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
        let signature = self.sign_bytes(&message_cid(&m).to_bytes())?;
        Ok(SignedMessage {
            message: m,
            signature,
        })
    }

    /// Signs `data` (blake2b-256 of it), as Lotus's `WalletSign` does.
    pub fn sign_bytes(&self, data: &[u8]) -> Result<Signature, EncodingError> {
        let (sig, recid) = self
            .0
            .sign_prehash_recoverable(&blake2b256(data))
            .map_err(|e| invalid("secp256k1 signing", e))?;
        let mut bytes = sig.to_bytes().to_vec();
        bytes.push(recid.to_byte());
        Ok(Signature {
            sig_type: SignatureType::Secp256k1,
            bytes,
        })
    }
}

/// Filecoin's BLS ciphersuite (the `bls-signatures` crate's, which Lotus uses).
const BLS_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_";

/// A BLS private key.
pub struct BlsKey(blst::min_pk::SecretKey);

impl BlsKey {
    /// The key with these 32 private bytes (a big-endian scalar; Lotus exports BLS keys
    /// little-endian, so an imported key would be reversed first).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<BlsKey, EncodingError> {
        blst::min_pk::SecretKey::from_bytes(bytes)
            .map(BlsKey)
            .map_err(|e| invalid("BLS private key", format!("{e:?}")))
    }

    /// A new random key.
    pub fn generate() -> Result<BlsKey, EncodingError> {
        let mut ikm = [0u8; 32];
        getrandom::fill(&mut ikm).map_err(|e| invalid("random key", e))?;
        blst::min_pk::SecretKey::key_gen(&ikm, &[])
            .map(BlsKey)
            .map_err(|e| invalid("BLS key generation", format!("{e:?}")))
    }

    pub fn private_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn address(&self) -> Address {
        Address::new_bls(&self.0.sk_to_pk().compress()).expect("a BLS public key is 48 bytes")
    }

    /// Signs `m` as its sender (the caller sets `m.from` to this key's address).
    pub fn sign(&self, m: Message) -> SignedMessage {
        SignedMessage {
            signature: self.sign_bytes(&message_cid(&m).to_bytes()),
            message: m,
        }
    }

    /// Signs `data` itself, as Lotus's `WalletSign` does (a miner's VRF is its worker's BLS
    /// signature of the randomness).
    pub fn sign_bytes(&self, data: &[u8]) -> Signature {
        Signature {
            sig_type: SignatureType::BLS,
            bytes: self.0.sign(data, BLS_DST, &[]).compress().to_vec(),
        }
    }
}

/// A key of either kind a wallet holds, told apart by its address.
pub enum Key {
    Secp(SecpKey),
    Bls(BlsKey),
}

impl Key {
    /// The key of `address` (a `1` or `3` address) with these private bytes.
    pub fn from_bytes(address: &Address, bytes: &[u8; 32]) -> Result<Key, EncodingError> {
        match address.protocol() {
            fvm_shared::address::Protocol::BLS => BlsKey::from_bytes(bytes).map(Key::Bls),
            _ => SecpKey::from_bytes(bytes).map(Key::Secp),
        }
    }

    pub fn private_bytes(&self) -> [u8; 32] {
        match self {
            Key::Secp(k) => k.private_bytes(),
            Key::Bls(k) => k.private_bytes(),
        }
    }

    pub fn address(&self) -> Address {
        match self {
            Key::Secp(k) => k.address(),
            Key::Bls(k) => k.address(),
        }
    }

    pub fn sign(&self, m: Message) -> Result<SignedMessage, EncodingError> {
        match self {
            Key::Secp(k) => k.sign(m),
            Key::Bls(k) => Ok(k.sign(m)),
        }
    }

    /// `WalletSign`: a signature of arbitrary bytes.
    pub fn sign_bytes(&self, data: &[u8]) -> Result<Signature, EncodingError> {
        match self {
            Key::Secp(k) => k.sign_bytes(data),
            Key::Bls(k) => Ok(k.sign_bytes(data)),
        }
    }
}

fn address_of(key: &VerifyingKey) -> Address {
    Address::new_secp256k1(key.to_encoded_point(false).as_bytes())
        .expect("an uncompressed point is 65 bytes")
}

/// Checks a BLS signature of `data` against `signer`'s public key (its `3` address).
fn verify_bls(sig: &Signature, signer: &Address, data: &[u8]) -> Result<(), EncodingError> {
    let fvm_shared::address::Payload::BLS(pk) = signer.payload() else {
        return Err(invalid(
            "BLS signature",
            format!("the signer {signer} is not a BLS address"),
        ));
    };
    let pk = blst::min_pk::PublicKey::uncompress(pk)
        .map_err(|e| invalid("BLS public key", format!("{e:?}")))?;
    let s = blst::min_pk::Signature::uncompress(&sig.bytes)
        .map_err(|e| invalid("BLS signature", format!("{e:?}")))?;
    match s.verify(true, data, BLS_DST, &[], &pk, true) {
        blst::BLST_ERROR::BLST_SUCCESS => Ok(()),
        e => Err(invalid(
            "BLS signature",
            format!("not {signer}'s signature of these bytes ({e:?})"),
        )),
    }
}

/// Checks a signed message: a secp256k1 signature must recover to its sender's key, a BLS one
/// verify against its sender's public key.
pub fn verify(sm: &SignedMessage) -> Result<(), EncodingError> {
    verify_bytes(
        &sm.signature,
        &sm.message.from,
        &message_cid(&sm.message).to_bytes(),
    )
}

/// Checks `sig` as `signer`'s signature of `data` (Lotus's `sigs.Verify`; a VRF is checked so).
pub fn verify_bytes(sig: &Signature, signer: &Address, data: &[u8]) -> Result<(), EncodingError> {
    if sig.sig_type == SignatureType::BLS {
        return verify_bls(sig, signer, data);
    }
    let [rs @ .., v] = sig.bytes.as_slice() else {
        return Err(invalid("secp256k1 signature", "empty"));
    };
    if rs.len() != 64 {
        return Err(invalid(
            "secp256k1 signature",
            format!("{} bytes, 65 expected", sig.bytes.len()),
        ));
    }
    let ecdsa = Ecdsa::from_slice(rs).map_err(|e| invalid("secp256k1 signature", e))?;
    let recid = RecoveryId::from_byte(*v)
        .ok_or_else(|| invalid("secp256k1 signature", format!("recovery id {v}")))?;
    let key = VerifyingKey::recover_from_prehash(&blake2b256(data), &ecdsa, recid)
        .map_err(|e| invalid("secp256k1 signature", e))?;
    let made_by = address_of(&key);
    if made_by != *signer {
        return Err(invalid(
            "secp256k1 signature",
            format!("made by {made_by}, not {signer}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fvm_shared::econ::TokenAmount;

    #[test]
    fn a_bls_key_signs_what_its_address_verifies_and_nothing_else() {
        let key = BlsKey::generate().unwrap();
        let again = BlsKey::from_bytes(&key.private_bytes()).unwrap();
        assert_eq!(again.address(), key.address());
        assert_eq!(key.address().protocol(), fvm_shared::address::Protocol::BLS);
        let m = Message {
            version: 0,
            from: key.address(),
            to: Address::new_id(1000),
            sequence: 3,
            value: TokenAmount::from_atto(5),
            method_num: 28,
            params: Default::default(),
            gas_limit: 1000,
            gas_fee_cap: TokenAmount::from_atto(100),
            gas_premium: TokenAmount::from_atto(1),
        };
        let signed = Key::from_bytes(&key.address(), &key.private_bytes())
            .unwrap()
            .sign(m.clone())
            .unwrap();
        assert_eq!(signed.signature.bytes.len(), 96);
        verify(&signed).unwrap();
        // Known by the unsigned message's CID, as Lotus names BLS messages.
        assert_eq!(signed.cid(), message_cid(&m));
        // Another message, or another sender, does not verify.
        let mut changed = signed.clone();
        changed.message.sequence = 4;
        assert!(verify(&changed).is_err());
        let mut other = signed;
        other.message.from = BlsKey::generate().unwrap().address();
        assert!(verify(&other).is_err());
    }
}
