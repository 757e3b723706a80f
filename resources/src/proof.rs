//! Sector sizes, registered seal and PoSt proof types (chain numbering), and sector references.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The sector sizes the cluster seals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SectorSize {
    S2KiB,
    S8MiB,
    S512MiB,
    S32GiB,
    S64GiB,
}

/// Number of sector sizes; `SectorSize::index()` is below this.
pub const SECTOR_SIZE_COUNT: usize = 5;

impl SectorSize {
    pub const ALL: [SectorSize; SECTOR_SIZE_COUNT] = [
        SectorSize::S2KiB,
        SectorSize::S8MiB,
        SectorSize::S512MiB,
        SectorSize::S32GiB,
        SectorSize::S64GiB,
    ];

    pub const fn index(self) -> usize {
        self as usize
    }

    pub const fn bytes(self) -> u64 {
        match self {
            SectorSize::S2KiB => 2 << 10,
            SectorSize::S8MiB => 8 << 20,
            SectorSize::S512MiB => 512 << 20,
            SectorSize::S32GiB => 32 << 30,
            SectorSize::S64GiB => 64 << 30,
        }
    }

    /// The name operators write: `32GiB`.
    pub const fn name(self) -> &'static str {
        match self {
            SectorSize::S2KiB => "2KiB",
            SectorSize::S8MiB => "8MiB",
            SectorSize::S512MiB => "512MiB",
            SectorSize::S32GiB => "32GiB",
            SectorSize::S64GiB => "64GiB",
        }
    }

    /// The size as it appears in resource env variables (`PC1_32G_MAX_MEMORY`).
    pub const fn env_name(self) -> &'static str {
        match self {
            SectorSize::S2KiB => "2K",
            SectorSize::S8MiB => "8M",
            SectorSize::S512MiB => "512M",
            SectorSize::S32GiB => "32G",
            SectorSize::S64GiB => "64G",
        }
    }

    pub fn from_bytes(b: u64) -> Option<SectorSize> {
        SectorSize::ALL.into_iter().find(|s| s.bytes() == b)
    }

    /// The seal proof new sectors of this size use (V1_1).
    pub const fn seal_proof(self) -> SealProof {
        match self {
            SectorSize::S2KiB => SealProof::StackedDrg2KiBV1_1,
            SectorSize::S8MiB => SealProof::StackedDrg8MiBV1_1,
            SectorSize::S512MiB => SealProof::StackedDrg512MiBV1_1,
            SectorSize::S32GiB => SealProof::StackedDrg32GiBV1_1,
            SectorSize::S64GiB => SealProof::StackedDrg64GiBV1_1,
        }
    }
}

impl fmt::Display for SectorSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unsupported sector size {0:?} (supported: 2KiB, 8MiB, 512MiB, 32GiB, 64GiB)")]
pub struct UnknownSectorSize(pub String);

impl FromStr for SectorSize {
    type Err = UnknownSectorSize;

    /// Accepts `32GiB`, `32G`, `32gib` or the byte count.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if let Ok(n) = t.parse::<u64>() {
            return SectorSize::from_bytes(n).ok_or_else(|| UnknownSectorSize(s.to_string()));
        }
        SectorSize::ALL
            .into_iter()
            .find(|z| z.name().eq_ignore_ascii_case(t) || z.env_name().eq_ignore_ascii_case(t))
            .ok_or_else(|| UnknownSectorSize(s.to_string()))
    }
}

impl Serialize for SectorSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.bytes())
    }
}

impl<'de> Deserialize<'de> for SectorSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let b = u64::deserialize(d)?;
        SectorSize::from_bytes(b)
            .ok_or_else(|| serde::de::Error::custom(UnknownSectorSize(b.to_string())))
    }
}

/// Registered seal proof types, numbered as on chain (`abi.RegisteredSealProof`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "i64", try_from = "i64")]
pub enum SealProof {
    StackedDrg2KiBV1 = 0,
    StackedDrg8MiBV1 = 1,
    StackedDrg512MiBV1 = 2,
    StackedDrg32GiBV1 = 3,
    StackedDrg64GiBV1 = 4,
    StackedDrg2KiBV1_1 = 5,
    StackedDrg8MiBV1_1 = 6,
    StackedDrg512MiBV1_1 = 7,
    StackedDrg32GiBV1_1 = 8,
    StackedDrg64GiBV1_1 = 9,
}

impl SealProof {
    pub const ALL: [SealProof; 10] = [
        SealProof::StackedDrg2KiBV1,
        SealProof::StackedDrg8MiBV1,
        SealProof::StackedDrg512MiBV1,
        SealProof::StackedDrg32GiBV1,
        SealProof::StackedDrg64GiBV1,
        SealProof::StackedDrg2KiBV1_1,
        SealProof::StackedDrg8MiBV1_1,
        SealProof::StackedDrg512MiBV1_1,
        SealProof::StackedDrg32GiBV1_1,
        SealProof::StackedDrg64GiBV1_1,
    ];

    pub const fn sector_size(self) -> SectorSize {
        SectorSize::ALL[(self as usize) % SECTOR_SIZE_COUNT]
    }

    /// The WindowPoSt proof for sectors sealed with this proof (chain's V1_1 window proofs).
    pub const fn window_post(self) -> PoStProof {
        PoStProof::window(self.sector_size())
    }

    /// The WinningPoSt proof for sectors sealed with this proof.
    pub const fn winning_post(self) -> PoStProof {
        PoStProof::winning(self.sector_size())
    }
}

impl From<SealProof> for i64 {
    fn from(p: SealProof) -> i64 {
        p as i64
    }
}

impl TryFrom<i64> for SealProof {
    type Error = String;

    fn try_from(v: i64) -> Result<Self, Self::Error> {
        SealProof::ALL
            .into_iter()
            .find(|p| *p as i64 == v)
            .ok_or_else(|| format!("unknown registered seal proof {v}"))
    }
}

/// Registered PoSt proof types, numbered as on chain (`abi.RegisteredPoStProof`):
/// WinningPoSt 0-4, WindowPoSt V1 5-9 and V1_1 10-14 (filecoin-proofs-api calls V1_1 "V1_2").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "i64", try_from = "i64")]
pub struct PoStProof(i64);

impl PoStProof {
    pub const fn winning(size: SectorSize) -> PoStProof {
        PoStProof(size.index() as i64)
    }

    pub const fn window(size: SectorSize) -> PoStProof {
        PoStProof(10 + size.index() as i64)
    }

    pub const fn number(self) -> i64 {
        self.0
    }

    pub const fn is_winning(self) -> bool {
        self.0 < 5
    }

    pub const fn sector_size(self) -> SectorSize {
        SectorSize::ALL[(self.0 as usize) % SECTOR_SIZE_COUNT]
    }
}

impl From<PoStProof> for i64 {
    fn from(p: PoStProof) -> i64 {
        p.0
    }
}

impl TryFrom<i64> for PoStProof {
    type Error = String;

    fn try_from(v: i64) -> Result<Self, Self::Error> {
        if (0..15).contains(&v) {
            Ok(PoStProof(v))
        } else {
            Err(format!("unknown registered PoSt proof {v}"))
        }
    }
}

/// A sector's identity: miner actor ID and sector number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SectorId {
    #[serde(rename = "Miner")]
    pub miner: u64,
    #[serde(rename = "Number")]
    pub number: u64,
}

impl SectorId {
    pub fn new(miner: u64, number: u64) -> Self {
        SectorId { miner, number }
    }

    /// The file name lotus uses for this sector: `s-t01000-42`.
    pub fn file_name(&self) -> String {
        format!("s-t0{}-{}", self.miner, self.number)
    }
}

impl fmt::Display for SectorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file_name())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid sector name {0:?} (expected s-t0<miner>-<number>)")]
pub struct BadSectorName(pub String);

impl FromStr for SectorId {
    type Err = BadSectorName;

    /// Parses exactly `s-t0<miner>-<number>` with decimal digits, nothing else.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadSectorName(s.to_string());
        let rest = s.strip_prefix("s-t0").ok_or_else(bad)?;
        let (m, n) = rest.split_once('-').ok_or_else(bad)?;
        let digits =
            |x: &str| !x.is_empty() && x.len() <= 20 && x.bytes().all(|b| b.is_ascii_digit());
        if !digits(m) || !digits(n) {
            return Err(bad());
        }
        Ok(SectorId {
            miner: m.parse().map_err(|_| bad())?,
            number: n.parse().map_err(|_| bad())?,
        })
    }
}

/// A sector: miner actor ID, sector number and seal proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SectorRef {
    #[serde(rename = "Miner")]
    pub miner: u64,
    #[serde(rename = "Number")]
    pub number: u64,
    #[serde(rename = "ProofType")]
    pub proof: SealProof,
}

impl SectorRef {
    pub fn new(miner: u64, number: u64, proof: SealProof) -> Self {
        SectorRef {
            miner,
            number,
            proof,
        }
    }

    pub fn size(&self) -> SectorSize {
        self.proof.sector_size()
    }

    pub fn id(&self) -> SectorId {
        SectorId::new(self.miner, self.number)
    }

    /// The file name lotus uses for this sector: `s-t01000-42`.
    pub fn file_name(&self) -> String {
        self.id().file_name()
    }
}

impl fmt::Display for SectorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_proofs() {
        assert_eq!("32GiB".parse::<SectorSize>().unwrap(), SectorSize::S32GiB);
        assert_eq!("2k".parse::<SectorSize>().unwrap(), SectorSize::S2KiB);
        assert_eq!(
            "536870912".parse::<SectorSize>().unwrap(),
            SectorSize::S512MiB
        );
        assert!("16GiB"
            .parse::<SectorSize>()
            .unwrap_err()
            .to_string()
            .contains("16GiB"));
        for s in SectorSize::ALL {
            let p = s.seal_proof();
            assert_eq!(p.sector_size(), s);
            assert_eq!(p as i64, 5 + s.index() as i64);
            assert_eq!(p.window_post().sector_size(), s);
            assert_eq!(p.winning_post().sector_size(), s);
            assert!(p.winning_post().is_winning());
            assert!(!p.window_post().is_winning());
        }
        assert_eq!(
            SealProof::StackedDrg32GiBV1.sector_size(),
            SectorSize::S32GiB
        );
        assert_eq!(SectorSize::S64GiB.seal_proof().window_post().number(), 14);
        let r = SectorRef::new(1000, 7, SealProof::StackedDrg2KiBV1_1);
        assert_eq!(r.file_name(), "s-t01000-7");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#"{"Miner":1000,"Number":7,"ProofType":5}"#);
        assert_eq!(serde_json::from_str::<SectorRef>(&json).unwrap(), r);
        assert!(serde_json::from_str::<SealProof>("42").is_err());
        assert_eq!("s-t01000-7".parse::<SectorId>().unwrap(), r.id());
        for bad in [
            "s-t01000-",
            "s-t0-1",
            "s-t01000-7/..",
            "../s-t01000-7",
            "s-t01000-+7",
            "s-t1000-7",
            "",
        ] {
            assert!(bad.parse::<SectorId>().is_err(), "{bad}");
        }
    }
}
