//! `sectorstore.json` (one per storage path, lotus's field names) and `storage.json` (the list of
//! attached paths), with the `storage attach --init --seal --store` rules.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;
use crate::StoreError;

pub const META_FILE: &str = "sectorstore.json";

/// A storage path's ID (a UUID string, as lotus writes).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StorageId(pub String);

impl StorageId {
    pub fn random() -> StorageId {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b).expect("the OS random source works");
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        StorageId(format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        ))
    }
}

impl std::fmt::Display for StorageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn default_weight() -> u64 {
    10
}

/// Contents of `sectorstore.json`. Fields lotus has and we do not use are kept as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalStorageMeta {
    #[serde(rename = "ID")]
    pub id: StorageId,
    /// Share of new sectors this path gets; 0 = never allocate here.
    #[serde(rename = "Weight", default = "default_weight")]
    pub weight: u64,
    #[serde(rename = "CanSeal", default)]
    pub can_seal: bool,
    #[serde(rename = "CanStore", default)]
    pub can_store: bool,
    /// Most bytes sector files may take here; 0 = the whole filesystem.
    #[serde(rename = "MaxStorage", default)]
    pub max_storage: u64,
    #[serde(rename = "Groups", default)]
    pub groups: Vec<String>,
    #[serde(rename = "AllowTo", default)]
    pub allow_to: Vec<String>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// Options of `storage attach`.
#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    pub init: bool,
    pub seal: bool,
    pub store: bool,
    pub weight: Option<u64>,
    pub max_storage: Option<u64>,
    pub groups: Vec<String>,
    pub allow_to: Vec<String>,
}

/// Reads `<path>/sectorstore.json`.
pub fn read_meta(path: &Path) -> Result<LocalStorageMeta, StoreError> {
    let file = path.join(META_FILE);
    let raw = fs::read(&file).map_err(|e| StoreError::io(&file, e))?;
    serde_json::from_slice(&raw).map_err(|e| StoreError::BadMeta {
        path: file,
        reason: e.to_string(),
    })
}

/// Applies the attach rules and returns the path's metadata, writing a new `sectorstore.json`
/// when `--init` is given.
pub fn prepare_attach(path: &Path, opts: &AttachOptions) -> Result<LocalStorageMeta, StoreError> {
    let file = path.join(META_FILE);
    if !path.is_absolute() {
        return Err(StoreError::Attach(format!(
            "{} is not an absolute path",
            path.display()
        )));
    }
    if opts.init {
        if file.exists() {
            return Err(StoreError::Attach(format!(
                "{} already exists: the path is initialized, attach it without --init",
                file.display()
            )));
        }
        if !opts.seal && !opts.store {
            return Err(StoreError::Attach(
                "neither --seal nor --store given: a path must be for sealing, long-term storage, or both".into(),
            ));
        }
        fs::create_dir_all(path).map_err(|e| StoreError::io(path, e))?;
        let meta = LocalStorageMeta {
            id: StorageId::random(),
            weight: opts.weight.unwrap_or(10),
            can_seal: opts.seal,
            can_store: opts.store,
            max_storage: opts.max_storage.unwrap_or(0),
            groups: opts.groups.clone(),
            allow_to: opts.allow_to.clone(),
            other: Default::default(),
        };
        let json = serde_json::to_vec_pretty(&meta).expect("serializable");
        write_atomic(&file, &json)?;
        return Ok(meta);
    }
    if !file.exists() {
        return Err(StoreError::Attach(format!(
            "{} has no {META_FILE}: initialize it with --init (and --seal and/or --store)",
            path.display()
        )));
    }
    read_meta(path)
}

/// `storage.json`: the paths this machine has attached.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StorageConfig {
    #[serde(rename = "StoragePaths", default)]
    pub storage_paths: Vec<LocalPathConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalPathConfig {
    #[serde(rename = "Path")]
    pub path: PathBuf,
}

impl StorageConfig {
    /// Reads the config; a missing file is an empty list.
    pub fn load(file: &Path) -> Result<StorageConfig, StoreError> {
        match fs::read(file) {
            Ok(raw) => serde_json::from_slice(&raw).map_err(|e| StoreError::BadMeta {
                path: file.to_path_buf(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StorageConfig::default()),
            Err(e) => Err(StoreError::io(file, e)),
        }
    }

    pub fn save(&self, file: &Path) -> Result<(), StoreError> {
        write_atomic(
            file,
            &serde_json::to_vec_pretty(self).expect("serializable"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_rules() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("seal");
        let err = prepare_attach(&p, &AttachOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--init") && err.contains("sectorstore.json"),
            "{err}"
        );
        let init = AttachOptions {
            init: true,
            ..Default::default()
        };
        let err = prepare_attach(&p, &init).unwrap_err().to_string();
        assert!(err.contains("neither --seal nor --store"), "{err}");
        let seal = AttachOptions {
            init: true,
            seal: true,
            weight: Some(5),
            ..Default::default()
        };
        let meta = prepare_attach(&p, &seal).unwrap();
        assert!(meta.can_seal && !meta.can_store && meta.weight == 5);
        let err = prepare_attach(&p, &seal).unwrap_err().to_string();
        assert!(
            err.contains("already exists") && err.contains("without --init"),
            "{err}"
        );
        assert_eq!(prepare_attach(&p, &AttachOptions::default()).unwrap(), meta);
        assert!(prepare_attach(Path::new("relative"), &seal).is_err());
    }

    #[test]
    fn reads_lotus_files_and_keeps_unknown_fields() {
        let lotus = r#"{
          "ID": "0b1e2f1c-7c0a-4b5e-9d55-6f5d3c1b2a10",
          "Weight": 10,
          "CanSeal": false,
          "CanStore": true,
          "MaxStorage": 0,
          "Groups": ["g1"],
          "AllowTo": [],
          "AllowTypes": null,
          "DenyTypes": null
        }"#;
        let m: LocalStorageMeta = serde_json::from_str(lotus).unwrap();
        assert!(m.can_store && !m.can_seal);
        assert_eq!(m.groups, vec!["g1".to_string()]);
        let back = serde_json::to_value(&m).unwrap();
        assert!(back.get("AllowTypes").is_some());
        let id = StorageId::random();
        assert_eq!(id.0.len(), 36);
    }
}
