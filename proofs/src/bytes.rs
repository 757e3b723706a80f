//! Byte strings on the wire and in the metadata store as base64 text, the way lotus's JSON carries
//! `[]byte` (a C1 output is megabytes: as a JSON array of numbers it would be several times
//! larger and slow to parse). Arrays of numbers are still read, for records written before.
//!
//! `#[serde(with = "proofs::bytes")]` on a `Vec<u8>`; `proofs::bytes::opt` on an `Option<Vec<u8>>`.

use base64::Engine as _;
use serde::de::{Deserializer, Error, SeqAccess, Visitor};
use serde::Serializer;

/// Lowercase hex, as commitments, digests and message IDs are shown.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&B64.encode(v))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    d.deserialize_any(BytesVisitor)
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("base64 text (or an array of bytes)")
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<Vec<u8>, E> {
        B64.decode(v)
            .map_err(|e| E::custom(format!("invalid base64: {e}")))
    }

    fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(out)
    }
}

/// The same for `Option<Vec<u8>>` (`null` for none).
pub mod opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => super::serialize(b, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "super")] Vec<u8>);
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct T {
        #[serde(with = "crate::bytes")]
        b: Vec<u8>,
        #[serde(with = "crate::bytes::opt", default)]
        o: Option<Vec<u8>>,
    }

    #[test]
    fn base64_round_trip_and_old_arrays_read() {
        let t = T {
            b: vec![0, 1, 2, 255],
            o: Some(vec![9]),
        };
        let s = serde_json::to_string(&t).unwrap();
        assert_eq!(s, r#"{"b":"AAEC/w==","o":"CQ=="}"#);
        assert_eq!(serde_json::from_str::<T>(&s).unwrap(), t);
        let old: T = serde_json::from_str(r#"{"b":[0,1,2,255],"o":null}"#).unwrap();
        assert_eq!(old.b, t.b);
        assert_eq!(old.o, None);
        let missing: T = serde_json::from_str(r#"{"b":""}"#).unwrap();
        assert_eq!(missing.o, None);
        let bad = serde_json::from_str::<T>(r#"{"b":"@@"}"#).unwrap_err();
        assert!(bad.to_string().contains("invalid base64"), "{bad}");
    }
}
