//! Sector file types, the on-disk layout `<path>/{unsealed,sealed,cache}/s-t0<miner>-<number>`,
//! and lotus's space overheads.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use resources::{SectorId, SectorSize};
use serde::{Deserialize, Serialize};

/// One kind of sector file. `Cache` is a directory; the others are files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FileType {
    #[serde(rename = "unsealed")]
    Unsealed,
    #[serde(rename = "sealed")]
    Sealed,
    #[serde(rename = "cache")]
    Cache,
}

impl FileType {
    pub const ALL: [FileType; 3] = [FileType::Unsealed, FileType::Sealed, FileType::Cache];

    /// The directory under a storage path, and the name used in `/remote/{type}/...` URLs.
    pub const fn dir(self) -> &'static str {
        match self {
            FileType::Unsealed => "unsealed",
            FileType::Sealed => "sealed",
            FileType::Cache => "cache",
        }
    }

    const fn bit(self) -> u8 {
        match self {
            FileType::Unsealed => 1,
            FileType::Sealed => 2,
            FileType::Cache => 4,
        }
    }

    /// Space one sector's file of this type takes, as lotus reserves it: while sealing, unsealed
    /// and sealed 1x the sector size and the cache 14.1x; once finalized, the cache 0.1x.
    pub fn overhead(self, size: SectorSize, kind: PathKind) -> u64 {
        let tenths: u64 = match (self, kind) {
            (FileType::Cache, PathKind::Sealing) => 141,
            (FileType::Cache, PathKind::Storage) => 1,
            _ => 10,
        };
        size.bytes() * tenths / 10
    }
}

impl fmt::Display for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.dir())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown sector file type {0:?} (expected unsealed, sealed or cache)")]
pub struct BadFileType(pub String);

impl FromStr for FileType {
    type Err = BadFileType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FileType::ALL
            .into_iter()
            .find(|t| t.dir() == s)
            .ok_or_else(|| BadFileType(s.to_string()))
    }
}

/// Whether space is taken for sealing (large cache) or for long-term storage (finalized cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PathKind {
    Sealing,
    Storage,
}

/// A set of file types.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileTypes(u8);

impl FileTypes {
    pub const NONE: FileTypes = FileTypes(0);
    pub const ALL: FileTypes = FileTypes(7);
    /// Sealed and cache: what a sealed sector is.
    pub const SEALED: FileTypes = FileTypes(6);

    pub fn of(types: &[FileType]) -> Self {
        FileTypes(types.iter().fold(0, |acc, t| acc | t.bit()))
    }

    pub fn contains(self, t: FileType) -> bool {
        self.0 & t.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = FileType> {
        FileType::ALL.into_iter().filter(move |t| self.contains(*t))
    }

    pub fn union(self, other: FileTypes) -> FileTypes {
        FileTypes(self.0 | other.0)
    }

    pub fn intersect(self, other: FileTypes) -> FileTypes {
        FileTypes(self.0 & other.0)
    }

    pub fn minus(self, other: FileTypes) -> FileTypes {
        FileTypes(self.0 & !other.0)
    }

    /// Space to reserve for these types of one sector.
    pub fn overhead(self, size: SectorSize, kind: PathKind) -> u64 {
        self.iter().map(|t| t.overhead(size, kind)).sum()
    }
}

impl From<FileType> for FileTypes {
    fn from(t: FileType) -> Self {
        FileTypes(t.bit())
    }
}

impl fmt::Display for FileTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(FileType::dir).collect();
        f.write_str(&names.join("|"))
    }
}

/// Where a sector's file of `t` lives under storage root `root`.
pub fn sector_path(root: &Path, t: FileType, sector: SectorId) -> PathBuf {
    root.join(t.dir()).join(sector.file_name())
}

/// Where one attempt (`tag`) at writing that file from elsewhere (a fetch, a move) is staged
/// until it is complete: `<type>/fetching/<name>.<tag>`.
pub fn staging_path(root: &Path, t: FileType, sector: SectorId, tag: &str) -> PathBuf {
    root.join(t.dir())
        .join("fetching")
        .join(format!("{}.{tag}", sector.file_name()))
}

/// Paths of a sector's files on one machine (only the requested types are set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectorPaths {
    pub unsealed: Option<PathBuf>,
    pub sealed: Option<PathBuf>,
    pub cache: Option<PathBuf>,
}

impl SectorPaths {
    pub fn get(&self, t: FileType) -> Option<&PathBuf> {
        match t {
            FileType::Unsealed => self.unsealed.as_ref(),
            FileType::Sealed => self.sealed.as_ref(),
            FileType::Cache => self.cache.as_ref(),
        }
    }

    pub fn set(&mut self, t: FileType, p: PathBuf) {
        match t {
            FileType::Unsealed => self.unsealed = Some(p),
            FileType::Sealed => self.sealed = Some(p),
            FileType::Cache => self.cache = Some(p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overheads_match_lotus() {
        let s = SectorSize::S32GiB;
        assert_eq!(
            FileType::Cache.overhead(s, PathKind::Sealing),
            (32u64 << 30) * 141 / 10
        );
        assert_eq!(
            FileType::Cache.overhead(s, PathKind::Storage),
            (32u64 << 30) / 10
        );
        assert_eq!(FileType::Sealed.overhead(s, PathKind::Sealing), 32 << 30);
        // PC1 of a 32GiB sector allocates sealed + cache: about 483 GiB.
        assert_eq!(
            FileTypes::SEALED.overhead(s, PathKind::Sealing) / (1 << 30),
            483
        );
        assert_eq!(
            FileTypes::of(&[FileType::Sealed, FileType::Cache]),
            FileTypes::SEALED
        );
        assert_eq!(FileTypes::SEALED.to_string(), "sealed|cache");
        assert_eq!("cache".parse::<FileType>().unwrap(), FileType::Cache);
        assert!("../cache".parse::<FileType>().is_err());
    }
}
