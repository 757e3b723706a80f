//! `stores` owns where sector files live and how they move: storage paths with lotus's
//! `sectorstore.json`, the `{unsealed,sealed,cache}/s-t0<miner>-<number>` layout, a local store
//! with space reservations, the sector index (which path on which machine holds what, path
//! health, best allocation), API tokens, the `/remote` HTTP endpoints and the remote fetcher.

use std::path::{Path, PathBuf};

use resources::SectorId;

pub mod auth;
pub mod filetype;
pub mod fsutil;
pub mod http;
pub mod index;
pub mod local;
pub mod meta;
pub mod remote;

pub use auth::{Permission, Secret};
pub use filetype::{FileType, FileTypes, PathKind, SectorPaths};
pub use index::{FsStat, MemIndex, SectorIndex, SectorLocation, StorageInfo};
pub use local::{Acquired, LocalStore, Reservation};
pub use meta::{AttachOptions, LocalStorageMeta, StorageId};
pub use remote::{AcquireMode, Located, Remote, SEALER_FETCH_LIMIT, WORKER_FETCH_LIMIT};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    BadMeta { path: PathBuf, reason: String },
    #[error("storage attach: {0}")]
    Attach(String),
    #[error("unknown storage path {0}")]
    UnknownStorage(StorageId),
    #[error("not allocating on {path}, out of space (available: {available}, need: {needed})")]
    OutOfSpace {
        path: String,
        available: u64,
        needed: u64,
    },
    #[error("{0}")]
    NoSuitablePath(String),
    #[error("sector {sector} has no {file_type} file here")]
    NotFound {
        sector: SectorId,
        file_type: FileType,
    },
    #[error("fetching {what}: {reason}")]
    Fetch { what: String, reason: String },
    #[error("refused {what}: {reason}")]
    Refused { what: String, reason: String },
}

impl StoreError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
