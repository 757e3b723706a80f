//! Lotus JSON: how a Lotus node writes Filecoin's types in its JSON-RPC API (Lotus
//! `chain/types`, `documentation/en/api-methods-v1-stable.md`). Addresses are text (`t01000`;
//! either network's prefix is read, the process's network is written), token amounts decimal
//! attoFIL strings, bytes base64 (empty ones `null`, as Go writes a nil slice), CIDs
//! `{"/": "bafy…"}`, tipset keys lists of those, bitfields RLE runs starting with zeros
//! (`fvm_ipld_bitfield`'s `json`). Each `mod` here is a `#[serde(with = ..)]` helper; the structs
//! are the JSON forms of messages and signatures.

use std::str::FromStr;

use base64::Engine as _;
use cid::Cid;
use fvm_ipld_encoding::RawBytes;
use fvm_shared::address::{Address, Network};
use fvm_shared::bigint::BigInt;
use fvm_shared::crypto::signature::{Signature, SignatureType};
use fvm_shared::econ::TokenAmount;
use fvm_shared::message::Message;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::message::{message_cid, SignedMessage};
use crate::EncodingError;

pub use fvm_ipld_bitfield::json::{BitFieldJson, BitFieldJsonRef};

/// Reads an address in either network's text form (`f0…` or `t0…`), as Lotus does.
pub fn parse_address(s: &str) -> Result<Address, EncodingError> {
    let network = if s.starts_with('t') {
        Network::Testnet
    } else {
        Network::Mainnet
    };
    network
        .parse_address(s)
        .map_err(|e| EncodingError::Invalid {
            what: "address",
            reason: format!("{s:?}: {e}"),
        })
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Base64 text of `bytes`.
pub fn base64_text(bytes: &[u8]) -> String {
    b64().encode(bytes)
}

/// A bitfield as RLE runs (`fvm_ipld_bitfield`'s JSON); `null` reads as empty.
pub mod bitfield {
    use super::*;
    use fvm_ipld_bitfield::BitField;

    pub fn serialize<S: Serializer>(b: &BitField, s: S) -> Result<S::Ok, S::Error> {
        BitFieldJsonRef(b).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BitField, D::Error> {
        Ok(Option::<BitFieldJson>::deserialize(d)?
            .map(|j| j.0)
            .unwrap_or_default())
    }
}

/// An address as text.
pub mod address {
    use super::*;

    pub fn serialize<S: Serializer>(a: &Address, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&a.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Address, D::Error> {
        let s = String::deserialize(d)?;
        parse_address(&s).map_err(D::Error::custom)
    }
}

/// A list of addresses as text.
pub mod addresses {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[Address], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|a| a.to_string()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Address>, D::Error> {
        let v = Option::<Vec<String>>::deserialize(d)?.unwrap_or_default();
        v.iter()
            .map(|s| parse_address(s).map_err(D::Error::custom))
            .collect()
    }
}

/// A token amount in attoFIL, as a decimal string.
pub mod token {
    use super::*;

    pub fn serialize<S: Serializer>(t: &TokenAmount, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.atto().to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TokenAmount, D::Error> {
        let s = String::deserialize(d)?;
        BigInt::from_str(&s)
            .map(TokenAmount::from_atto)
            .map_err(|e| D::Error::custom(format!("token amount {s:?}: {e}")))
    }
}

/// A big integer (power, deal weight) as a decimal string.
pub mod bigint {
    use super::*;

    pub fn serialize<S: Serializer>(n: &BigInt, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&n.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BigInt, D::Error> {
        let s = String::deserialize(d)?;
        BigInt::from_str(&s).map_err(|e| D::Error::custom(format!("integer {s:?}: {e}")))
    }
}

/// Bytes as base64; empty ones are `null`, and `null` or `""` read as empty.
pub mod bytes {
    use super::*;

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if b.is_empty() {
            s.serialize_none()
        } else {
            s.serialize_str(&base64_text(b))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(Vec::new()),
            Some(s) => b64()
                .decode(&s)
                .map_err(|e| D::Error::custom(format!("base64 {s:?}: {e}"))),
        }
    }
}

/// `RawBytes` (message params, receipt returns) as `bytes` does.
pub mod raw_bytes {
    use super::*;

    pub fn serialize<S: Serializer>(b: &RawBytes, s: S) -> Result<S::Ok, S::Error> {
        bytes::serialize(b.bytes(), s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RawBytes, D::Error> {
        bytes::deserialize(d).map(RawBytes::new)
    }
}

#[derive(Serialize, Deserialize)]
struct Link {
    #[serde(rename = "/")]
    link: String,
}

impl Link {
    fn of(c: &Cid) -> Link {
        Link {
            link: c.to_string(),
        }
    }

    fn cid<E: serde::de::Error>(&self) -> Result<Cid, E> {
        Cid::from_str(&self.link).map_err(|e| E::custom(format!("CID {:?}: {e}", self.link)))
    }
}

/// A CID as `{"/": "bafy…"}`.
pub mod cid_link {
    use super::*;

    pub fn serialize<S: Serializer>(c: &Cid, s: S) -> Result<S::Ok, S::Error> {
        Link::of(c).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Cid, D::Error> {
        Link::deserialize(d)?.cid()
    }
}

/// An optional CID: `null` or `{"/": ..}`.
pub mod cid_link_opt {
    use super::*;

    pub fn serialize<S: Serializer>(c: &Option<Cid>, s: S) -> Result<S::Ok, S::Error> {
        c.as_ref().map(Link::of).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cid>, D::Error> {
        Option::<Link>::deserialize(d)?.map(|l| l.cid()).transpose()
    }
}

/// A tipset key: the CIDs of its blocks. `null` and `[]` (the head, in a call) read as empty.
pub mod tipset_key {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[Cid], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(Link::of))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Cid>, D::Error> {
        Option::<Vec<Link>>::deserialize(d)?
            .unwrap_or_default()
            .iter()
            .map(Link::cid)
            .collect()
    }
}

/// A message as Lotus writes it, with the `CID` field Lotus adds (ignored when read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageJson {
    pub version: u64,
    #[serde(with = "address")]
    pub to: Address,
    #[serde(with = "address")]
    pub from: Address,
    pub nonce: u64,
    #[serde(with = "token")]
    pub value: TokenAmount,
    pub gas_limit: u64,
    #[serde(with = "token")]
    pub gas_fee_cap: TokenAmount,
    #[serde(with = "token")]
    pub gas_premium: TokenAmount,
    pub method: u64,
    #[serde(with = "raw_bytes")]
    pub params: RawBytes,
    #[serde(
        rename = "CID",
        with = "cid_link_opt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cid: Option<Cid>,
}

impl From<&Message> for MessageJson {
    fn from(m: &Message) -> Self {
        MessageJson {
            version: m.version,
            to: m.to,
            from: m.from,
            nonce: m.sequence,
            value: m.value.clone(),
            gas_limit: m.gas_limit,
            gas_fee_cap: m.gas_fee_cap.clone(),
            gas_premium: m.gas_premium.clone(),
            method: m.method_num,
            params: m.params.clone(),
            cid: Some(message_cid(m)),
        }
    }
}

impl From<MessageJson> for Message {
    fn from(j: MessageJson) -> Self {
        Message {
            version: j.version,
            from: j.from,
            to: j.to,
            sequence: j.nonce,
            value: j.value,
            method_num: j.method,
            params: j.params,
            gas_limit: j.gas_limit,
            gas_fee_cap: j.gas_fee_cap,
            gas_premium: j.gas_premium,
        }
    }
}

/// A signature: `{"Type": 1 (secp256k1) or 2 (BLS), "Data": base64}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SignatureJson {
    #[serde(rename = "Type")]
    pub kind: u8,
    #[serde(with = "bytes")]
    pub data: Vec<u8>,
}

impl From<&Signature> for SignatureJson {
    fn from(s: &Signature) -> Self {
        SignatureJson {
            kind: s.sig_type as u8,
            data: s.bytes.clone(),
        }
    }
}

impl TryFrom<SignatureJson> for Signature {
    type Error = EncodingError;
    fn try_from(j: SignatureJson) -> Result<Self, EncodingError> {
        let sig_type = match j.kind {
            1 => SignatureType::Secp256k1,
            2 => SignatureType::BLS,
            k => {
                return Err(EncodingError::Invalid {
                    what: "signature type",
                    reason: format!("{k} (1 secp256k1, 2 BLS)"),
                })
            }
        };
        Ok(Signature {
            sig_type,
            bytes: j.data,
        })
    }
}

/// A signed message: `{"Message", "Signature", "CID"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SignedMessageJson {
    pub message: MessageJson,
    pub signature: SignatureJson,
    #[serde(
        rename = "CID",
        with = "cid_link_opt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cid: Option<Cid>,
}

impl From<&SignedMessage> for SignedMessageJson {
    fn from(m: &SignedMessage) -> Self {
        SignedMessageJson {
            message: (&m.message).into(),
            signature: (&m.signature).into(),
            cid: Some(m.cid()),
        }
    }
}

impl TryFrom<SignedMessageJson> for SignedMessage {
    type Error = EncodingError;
    fn try_from(j: SignedMessageJson) -> Result<Self, EncodingError> {
        Ok(SignedMessage {
            message: j.message.into(),
            signature: j.signature.try_into()?,
        })
    }
}

/// A list field Go may write as `null`: `#[serde(with = "null_as_empty")]`.
pub mod null_as_empty {
    use super::*;

    pub fn serialize<S: Serializer, T: Serialize>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Vec<T>, D::Error> {
        Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
    }
}

/// Newtypes for values passed whole as RPC parameters and results, in Lotus JSON.
pub mod wire {
    use super::*;

    /// An address as text.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(transparent)]
    pub struct Addr(#[serde(with = "address")] pub Address);

    /// A CID as `{"/": ..}`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(transparent)]
    pub struct CidJson(#[serde(with = "cid_link")] pub Cid);

    /// A bitfield as RLE runs (e.g. sector numbers).
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(transparent)]
    pub struct Bits(#[serde(with = "bitfield")] pub fvm_ipld_bitfield::BitField);

    /// A tipset key; empty (`[]` or `null`) is the head.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(transparent)]
    pub struct TipSetKey(#[serde(with = "tipset_key")] pub Vec<Cid>);

    /// A list that Go may write as `null` (a nil slice): read as empty.
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[serde(transparent)]
    pub struct List<T>(pub Vec<T>);

    impl<T> Default for List<T> {
        fn default() -> Self {
            List(Vec::new())
        }
    }

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            Ok(List(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default()))
        }
    }

    /// Bytes as base64.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(transparent)]
    pub struct Bytes(#[serde(with = "bytes")] pub Vec<u8>);

    /// An amount of attoFIL as a decimal string (`WalletBalance`, `StateMinerAvailableBalance`).
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(transparent)]
    pub struct Atto(#[serde(with = "token")] pub TokenAmount);
}

/// `MpoolPushMessage`'s send spec: the most the message may cost in gas (attoFIL), which the
/// node keeps the gas fee cap under (lotus: `MessageSendSpec.MaxFee`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendSpec {
    #[serde(with = "token")]
    pub max_fee: TokenAmount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_uuid: Option<String>,
    #[serde(default)]
    pub maximize_fee_cap: bool,
}

impl SendSpec {
    pub fn max_fee(max_fee: TokenAmount) -> SendSpec {
        SendSpec {
            max_fee,
            msg_uuid: None,
            maximize_fee_cap: false,
        }
    }
}

/// An amount as lotus writes and reads FIL: `0.025 FIL`, `0.025`, `25 mFIL`, `100 attoFIL`
/// (the unit's case ignored, a bare number in FIL). More than 18 decimals of FIL is refused.
pub fn parse_fil(s: &str) -> Result<TokenAmount, EncodingError> {
    let bad = |reason: &str| EncodingError::Invalid {
        what: "FIL amount",
        reason: format!("{s:?}: {reason} (expected e.g. \"0.025 FIL\", \"25 mFIL\")"),
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = (&t[..split], t[split..].trim());
    let decimals: u32 = match unit.to_ascii_lowercase().as_str() {
        "" | "fil" => 18,
        "mfil" => 15,
        "ufil" | "μfil" => 12,
        "nanofil" | "nfil" => 9,
        "picofil" | "pfil" => 6,
        "femtofil" => 3,
        "attofil" | "afil" => 0,
        _ => return Err(bad("unknown unit")),
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() {
        return Err(bad("no number"));
    }
    if frac.contains('.') || frac.len() > decimals as usize {
        return Err(bad("too many decimals"));
    }
    let digits = format!("{int}{frac:0<width$}", width = decimals as usize);
    let atto: BigInt = digits.parse().map_err(|_| bad("not a number"))?;
    Ok(TokenAmount::from_atto(atto))
}

/// An amount as lotus prints FIL: `0.025 FIL`, without trailing zeros.
pub fn fil_text(t: &TokenAmount) -> String {
    let atto = t.atto().to_string();
    let (neg, digits) = atto
        .strip_prefix('-')
        .map_or((false, atto.as_str()), |d| (true, d));
    let padded = format!("{digits:0>19}");
    let (int, frac) = padded.split_at(padded.len() - 18);
    let frac = frac.trim_end_matches('0');
    let sign = if neg { "-" } else { "" };
    match frac.is_empty() {
        true => format!("{sign}{int} FIL"),
        false => format!("{sign}{int}.{frac} FIL"),
    }
}

#[cfg(test)]
mod fil_tests {
    use super::*;

    #[test]
    fn fil_amounts_read_and_print_as_lotus_writes_them() {
        let atto = |s: &str| parse_fil(s).unwrap().atto().to_string();
        assert_eq!(atto("0.025 FIL"), "25000000000000000");
        assert_eq!(atto("0.025"), "25000000000000000");
        assert_eq!(atto("5 FIL"), "5000000000000000000");
        assert_eq!(atto("25 mFIL"), "25000000000000000");
        assert_eq!(atto("100 attoFIL"), "100");
        assert_eq!(atto(".5 fil"), "500000000000000000");
        for bad in ["", "FIL", "1.2.3", "0.0000000000000000001", "3 BTC", "-1"] {
            assert!(parse_fil(bad).is_err(), "{bad:?} accepted");
        }
        let text = |s: &str| fil_text(&parse_fil(s).unwrap());
        assert_eq!(text("0.025 FIL"), "0.025 FIL");
        assert_eq!(text("5"), "5 FIL");
        assert_eq!(text("1 attoFIL"), "0.000000000000000001 FIL");
        assert_eq!(text("0"), "0 FIL");
    }
}
