//! The storage paths of one machine: attach, acquire paths for a sector's files (finding existing
//! ones, allocating new ones with a space reservation), stat, remove, and the finalize move from a
//! sealing path to a long-term storage path.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use resources::{SectorId, SectorRef};

use crate::filetype::{sector_path, staging_path, FileType, FileTypes, PathKind, SectorPaths};
use crate::fsutil::{disk_usage, move_path, remove_all, statfs, Moved};
use crate::index::{FsStat, Listing, SectorIndex, StorageInfo};
use crate::meta::{
    prepare_attach, read_meta, AttachOptions, LocalPathConfig, LocalStorageMeta, StorageConfig,
    StorageId,
};
use crate::StoreError;

struct Reserved {
    bytes: u64,
    /// The files or directories being written under the reservation.
    files: Vec<PathBuf>,
}

struct LocalPath {
    root: PathBuf,
    meta: LocalStorageMeta,
    reservations: HashMap<u64, Reserved>,
    /// The sector files' size as last measured, and when: walking every file of a store
    /// holding thousands of sectors is slow (a shared store is walked by every worker that
    /// mounts it), so without a MaxStorage to enforce it is measured every `USED_EVERY`.
    used: std::sync::Mutex<Option<(std::time::Instant, u64)>>,
}

/// How often a path without MaxStorage has its sector files' size measured (`used` in
/// `storage list`; nothing is allocated by it).
pub const USED_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

impl LocalPath {
    /// Reserved bytes not yet taken by the files they were reserved for.
    fn reserved_remaining(&self) -> u64 {
        self.reservations
            .values()
            .map(|r| {
                let written: u64 = r.files.iter().map(|f| disk_usage(f)).sum();
                r.bytes.saturating_sub(written)
            })
            .sum()
    }

    /// Space taken by sector files: measured now when `fresh` or where MaxStorage is
    /// enforced, else at most `USED_EVERY` old.
    fn used(&self, fresh: bool) -> u64 {
        let mut last = self.used.lock().unwrap_or_else(|e| e.into_inner());
        match *last {
            Some((at, used))
                if !fresh && self.meta.max_storage == 0 && at.elapsed() < USED_EVERY =>
            {
                used
            }
            _ => {
                let used = FileType::ALL
                    .iter()
                    .map(|t| disk_usage(&self.root.join(t.dir())))
                    .sum();
                *last = Some((std::time::Instant::now(), used));
                used
            }
        }
    }

    /// The path's space; `fresh`: its sector files measured now (see `used`).
    fn stat(&self, fresh: bool) -> Result<FsStat, StoreError> {
        let (capacity, fs_available) = statfs(&self.root)?;
        let reserved = self.reserved_remaining();
        let used = self.used(fresh);
        let mut available = fs_available.saturating_sub(reserved);
        let mut capacity = capacity;
        if self.meta.max_storage > 0 {
            capacity = capacity.min(self.meta.max_storage);
            available = available.min(self.meta.max_storage.saturating_sub(used + reserved));
        }
        Ok(FsStat {
            capacity,
            available,
            fs_available,
            reserved,
            max: self.meta.max_storage,
            used,
        })
    }

    fn allows(&self, kind: PathKind) -> bool {
        self.meta.weight > 0
            && match kind {
                PathKind::Sealing => self.meta.can_seal,
                PathKind::Storage => self.meta.can_store,
            }
    }
}

struct Inner {
    index: Arc<dyn SectorIndex>,
    urls: Vec<String>,
    config_file: PathBuf,
    paths: Mutex<HashMap<StorageId, LocalPath>>,
    next_res: Mutex<u64>,
    config_lock: Mutex<()>,
}

/// A path's health report: its stat, and the error reading it if it could not be read.
pub type PathHealth = (StorageId, FsStat, Option<String>);

/// One machine's storage paths. Cheap to clone.
#[derive(Clone)]
pub struct LocalStore {
    inner: Arc<Inner>,
}

/// Space held for files being written; released when dropped (when the task ends).
pub struct Reservation {
    inner: Arc<Inner>,
    held: Vec<(StorageId, u64)>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut paths = self.inner.paths.lock().unwrap_or_else(|e| e.into_inner());
        for (id, r) in self.held.drain(..) {
            if let Some(p) = paths.get_mut(&id) {
                p.reservations.remove(&r);
            }
        }
    }
}

/// Paths for a sector's files, where they are, and the space held for new ones.
pub struct Acquired {
    pub paths: SectorPaths,
    pub storage: HashMap<FileType, StorageId>,
    pub reservation: Reservation,
}

impl LocalStore {
    /// Opens the paths listed in `config_file` (`storage.json`) and declares them and the sector
    /// files on them to `index`. `urls` are this machine's `/remote` base URLs.
    pub async fn open(
        config_file: &Path,
        index: Arc<dyn SectorIndex>,
        urls: Vec<String>,
    ) -> Result<LocalStore, StoreError> {
        let store = LocalStore {
            inner: Arc::new(Inner {
                index,
                urls,
                config_file: config_file.to_path_buf(),
                paths: Mutex::new(HashMap::new()),
                next_res: Mutex::new(0),
                config_lock: Mutex::new(()),
            }),
        };
        for p in StorageConfig::load(config_file)?.storage_paths {
            let meta = read_meta(&p.path)?;
            store.open_path(p.path, meta).await?;
        }
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StorageId, LocalPath>> {
        self.inner.paths.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn index(&self) -> &Arc<dyn SectorIndex> {
        &self.inner.index
    }

    /// Attaches a path (`storage attach`): applies the `--init` rules, records it in
    /// `storage.json`, and declares it and any sector files already on it.
    pub async fn attach(&self, path: &Path, opts: &AttachOptions) -> Result<StorageId, StoreError> {
        if self.lock().values().any(|p| p.root == path) {
            return Err(StoreError::Attach(format!(
                "{} is already attached",
                path.display()
            )));
        }
        let meta = prepare_attach(path, opts)?;
        let id = meta.id.clone();
        if let Some(p) = self.lock().get(&id) {
            return Err(StoreError::Attach(format!(
                "{} has storage ID {id}, already attached here as {}",
                path.display(),
                p.root.display()
            )));
        }
        self.open_path(path.to_path_buf(), meta).await?;
        self.edit_config(|cfg| {
            if cfg.storage_paths.iter().any(|p| p.path == path) {
                return false;
            }
            cfg.storage_paths.push(LocalPathConfig {
                path: path.to_path_buf(),
            });
            true
        })?;
        Ok(id)
    }

    /// Changes `storage.json` with `edit`, saved when it says so. One writer at a time, so
    /// concurrent attaches and detaches do not lose an entry.
    fn edit_config(&self, edit: impl FnOnce(&mut StorageConfig) -> bool) -> Result<(), StoreError> {
        let _config = self
            .inner
            .config_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut cfg = StorageConfig::load(&self.inner.config_file)?;
        if edit(&mut cfg) {
            cfg.save(&self.inner.config_file)?;
        }
        Ok(())
    }

    /// Detaches the path at `path` (`storage detach`): it leaves `storage.json` and the index, and
    /// the files on it stay where they are. Refused while a task holds room on it.
    pub async fn detach(&self, path: &Path) -> Result<StorageId, StoreError> {
        // Out of the map under the lock that reservations take: nothing new lands on it.
        let id = {
            let mut paths = self.lock();
            let (id, p) = paths.iter().find(|(_, p)| p.root == path).ok_or_else(|| {
                StoreError::Attach(format!("{} is not attached here", path.display()))
            })?;
            if !p.reservations.is_empty() {
                return Err(StoreError::Attach(format!(
                    "{} has {} reservation(s) in use (a task is writing there): detach it once they end",
                    path.display(),
                    p.reservations.len()
                )));
            }
            let id = id.clone();
            paths.remove(&id);
            id
        };
        self.edit_config(|cfg| {
            cfg.storage_paths.retain(|p| p.path != path);
            true
        })?;
        match self.inner.index.storage_detach(&id).await {
            Ok(()) | Err(StoreError::UnknownStorage(_)) => {}
            Err(e) => return Err(e),
        }
        tracing::warn!(path = %path.display(), storage = %id, "storage path detached");
        Ok(id)
    }

    async fn open_path(&self, root: PathBuf, meta: LocalStorageMeta) -> Result<(), StoreError> {
        for t in FileType::ALL {
            let d = root.join(t.dir());
            fs::create_dir_all(&d).map_err(|e| StoreError::io(&d, e))?;
            // Leftovers of fetches cut off before a restart are never complete files. Entries
            // touched in the last hour may be another machine's fetch into a shared path.
            remove_stale(&d.join("fetching"), std::time::Duration::from_secs(3600));
        }
        let id = meta.id.clone();
        let info = StorageInfo::from_meta(&meta, self.inner.urls.clone());
        let lp = LocalPath {
            root: root.clone(),
            meta,
            reservations: HashMap::new(),
            used: Default::default(),
        };
        let stat = lp.stat(true)?;
        self.lock().insert(id.clone(), lp);
        self.inner.index.storage_attach(info, stat).await?;
        self.declare_files(&id, &root).await?;
        // Declarations the index still holds for files no longer on this path are dropped.
        for (sector, types) in self.inner.index.storage_sectors(&id).await? {
            for t in types.iter() {
                if !sector_path(&root, t, sector).exists() {
                    self.inner.index.storage_drop_sector(&id, sector, t).await?;
                }
            }
        }
        tracing::info!(path = %root.display(), storage = %id, "storage path attached");
        Ok(())
    }

    /// Declares every sector file found under `root` (path `id`) to the index.
    async fn declare_files(&self, id: &StorageId, root: &Path) -> Result<(), StoreError> {
        let root = root.to_path_buf();
        // A store of many sectors takes a while to list: not on the runtime's threads.
        let files: Vec<(SectorId, FileType)> = tokio::task::spawn_blocking(move || {
            FileType::ALL
                .into_iter()
                .flat_map(|t| {
                    scan_sectors(&root.join(t.dir()))
                        .into_iter()
                        .map(move |s| (s, t))
                })
                .collect()
        })
        .await
        .unwrap_or_else(|e| {
            tracing::warn!("listing the sector files of storage path {id} failed: {e}");
            Vec::new()
        });
        // Another machine mounting the same store (one storage ID) may have declared it
        // already; a sealer that cannot tell answers `None` or an error.
        if let Ok(Some(known)) = self.inner.index.storage_listing(id).await {
            if known == Listing::of(&files) {
                return Ok(());
            }
        }
        self.inner.index.storage_declare_sectors(id, files).await
    }

    /// Declares every path and the sector files on it to the index again (a sealer that
    /// restarted has an empty index). Every path is attached before any file is declared: a
    /// task ending meanwhile declares its files on a path the index knows, however long a
    /// large store takes to list. A path that fails does not keep the others out; the first
    /// error is returned.
    pub async fn redeclare(&self) -> Result<(), StoreError> {
        let paths: Vec<(StorageId, PathBuf, StorageInfo, Result<FsStat, StoreError>)> = self
            .lock()
            .iter()
            .map(|(id, p)| {
                let info = StorageInfo::from_meta(&p.meta, self.inner.urls.clone());
                (id.clone(), p.root.clone(), info, p.stat(false))
            })
            .collect();
        let mut first_error = None;
        let mut attached = Vec::new();
        for (id, root, info, stat) in paths {
            // Detached meanwhile: not attached again behind the detach's back.
            if !self.lock().contains_key(&id) {
                continue;
            }
            let r = match stat {
                Ok(stat) => self.inner.index.storage_attach(info, stat).await,
                Err(e) => Err(e),
            };
            match r {
                Ok(()) => attached.push((id, root)),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        for (id, root) in attached {
            if !self.lock().contains_key(&id) {
                continue;
            }
            if let Err(e) = self.declare_files(&id, &root).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Attached paths: ID, root, metadata.
    pub fn paths(&self) -> Vec<(StorageId, PathBuf, LocalStorageMeta)> {
        let mut v: Vec<_> = self
            .lock()
            .iter()
            .map(|(id, p)| (id.clone(), p.root.clone(), p.meta.clone()))
            .collect();
        v.sort_by(|a, b| a.1.cmp(&b.1));
        v
    }

    /// Path `id`'s space, its sector files measured now (`storage list`, `/remote/stat`).
    pub fn stat(&self, id: &StorageId) -> Result<FsStat, StoreError> {
        self.stat_of(id, true)
    }

    /// Path `id`'s space, its sector files' size up to [`USED_EVERY`] old (metrics).
    pub fn stat_recent(&self, id: &StorageId) -> Result<FsStat, StoreError> {
        self.stat_of(id, false)
    }

    fn stat_of(&self, id: &StorageId, fresh: bool) -> Result<FsStat, StoreError> {
        let paths = self.lock();
        paths
            .get(id)
            .ok_or_else(|| StoreError::UnknownStorage(id.clone()))?
            .stat(fresh)
    }

    /// Every path's health as the index takes it: its stat (sector files measured at most
    /// [`USED_EVERY`] ago), or why it could not be read.
    pub fn health(&self) -> Vec<PathHealth> {
        self.lock()
            .iter()
            .map(|(id, p)| match p.stat(false) {
                Ok(s) => (id.clone(), s, None),
                Err(e) => (id.clone(), FsStat::default(), Some(e.to_string())),
            })
            .collect()
    }

    /// Reports every path's stat to the index (the caller does this every 10 s).
    pub async fn heartbeat(&self) -> Result<(), StoreError> {
        for (id, stat, err) in self.health() {
            self.inner
                .index
                .storage_report_health(&id, stat, err)
                .await?;
        }
        Ok(())
    }

    /// Heartbeats every `every` (lotus: 10 s) until the returned task is aborted, so the index
    /// keeps these paths healthy.
    pub fn spawn_heartbeats(&self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = me.heartbeat().await {
                    tracing::warn!("storage heartbeat failed: {e}");
                }
            }
        })
    }

    /// The local path holding a sector's file of type `t`, if any.
    pub fn find_local(&self, sector: SectorId, t: FileType) -> Option<(StorageId, PathBuf)> {
        self.lock().iter().find_map(|(id, p)| {
            let f = sector_path(&p.root, t, sector);
            f.exists().then(|| (id.clone(), f))
        })
    }

    /// Holds `bytes` on path `id` for `file`, refusing when the path lacks the room.
    /// Picks the best path of `kind` (available x weight) and holds `bytes` on it for the files
    /// `files(root)` names, in one step under the lock, so concurrent callers cannot both take
    /// the last room. When no path has the room, the error names the best candidate, what it
    /// has and what is needed.
    fn reserve_best(
        &self,
        kind: PathKind,
        bytes: u64,
        files: impl FnOnce(&Path) -> Vec<PathBuf>,
    ) -> Result<(StorageId, PathBuf, Reservation), StoreError> {
        let mut paths = self.lock();
        let mut best: Option<(u128, StorageId, u64)> = None;
        for (id, p) in paths.iter().filter(|(_, p)| p.allows(kind)) {
            let avail = match p.stat(false) {
                Ok(st) => st.available,
                Err(e) => {
                    tracing::warn!(path = %p.root.display(), "skipping a storage path that cannot be read: {e}");
                    continue;
                }
            };
            let score = avail as u128 * p.meta.weight as u128;
            if best
                .as_ref()
                .is_none_or(|b| score > b.0 || (score == b.0 && *id < b.1))
            {
                best = Some((score, id.clone(), avail));
            }
        }
        let Some((_, sid, available)) = best else {
            return Err(StoreError::NoSuitablePath(format!(
                "no attached path can be used for {}",
                if kind == PathKind::Sealing {
                    "sealing (--seal)"
                } else {
                    "long-term storage (--store)"
                }
            )));
        };
        let p = paths.get_mut(&sid).expect("chosen path exists");
        if available < bytes {
            return Err(StoreError::OutOfSpace {
                path: p.root.display().to_string(),
                available,
                needed: bytes,
            });
        }
        let root = p.root.clone();
        let mut n = self
            .inner
            .next_res
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *n += 1;
        let files = files(&root);
        p.reservations.insert(*n, Reserved { bytes, files });
        let reservation = Reservation {
            inner: self.inner.clone(),
            held: vec![(sid.clone(), *n)],
        };
        Ok((sid, root, reservation))
    }

    /// Paths for `sector`: `existing` types must already be on this machine; `allocate` types get
    /// new paths on the best path of `kind`, with their space reserved until the returned
    /// reservation is dropped.
    pub fn acquire(
        &self,
        sector: &SectorRef,
        existing: FileTypes,
        allocate: FileTypes,
        kind: PathKind,
    ) -> Result<Acquired, StoreError> {
        let id = sector.id();
        let mut out = SectorPaths::default();
        let mut storage = HashMap::new();
        for t in existing.iter() {
            let (sid, path) = self.find_local(id, t).ok_or(StoreError::NotFound {
                sector: id,
                file_type: t,
            })?;
            out.set(t, path);
            storage.insert(t, sid);
        }
        if allocate.is_empty() {
            let reservation = Reservation {
                inner: self.inner.clone(),
                held: Vec::new(),
            };
            return Ok(Acquired {
                paths: out,
                storage,
                reservation,
            });
        }
        let need = allocate.overhead(sector.size(), kind);
        let (sid, root, reservation) = self.reserve_best(kind, need, |root| {
            allocate.iter().map(|t| sector_path(root, t, id)).collect()
        })?;
        for t in allocate.iter() {
            out.set(t, sector_path(&root, t, id));
            storage.insert(t, sid.clone());
        }
        Ok(Acquired {
            paths: out,
            storage,
            reservation,
        })
    }

    /// Holds room for writing a sector's file of type `t` into the best path of `kind`, staged
    /// at `fetching/<name>.<tag>`. Returns the storage path ID, its root, the staging path and the
    /// reservation.
    pub(crate) fn reserve_fetch(
        &self,
        sector: &SectorRef,
        t: FileType,
        kind: PathKind,
        bytes: u64,
        tag: &str,
    ) -> Result<(StorageId, PathBuf, PathBuf, Reservation), StoreError> {
        let (sid, root, r) = self.reserve_best(kind, bytes, |root| {
            vec![staging_path(root, t, sector.id(), tag)]
        })?;
        let staging = staging_path(&root, t, sector.id(), tag);
        Ok((sid, root, staging, r))
    }

    /// Tells the index a file of this sector is now on path `id`.
    pub async fn declare(
        &self,
        sector: SectorId,
        t: FileType,
        id: &StorageId,
    ) -> Result<(), StoreError> {
        self.inner.index.storage_declare_sector(id, sector, t).await
    }

    /// Deletes a sector's files of `types` from every local path and from the index. Returns
    /// whether anything was there.
    pub async fn remove(&self, sector: SectorId, types: FileTypes) -> Result<bool, StoreError> {
        let mut found = false;
        for t in types.iter() {
            let hits: Vec<(StorageId, PathBuf)> = self
                .lock()
                .iter()
                .map(|(id, p)| (id.clone(), sector_path(&p.root, t, sector)))
                .filter(|(_, f)| f.exists())
                .collect();
            for (id, f) in hits {
                remove_all(&f)?;
                self.inner.index.storage_drop_sector(&id, sector, t).await?;
                found = true;
            }
        }
        Ok(found)
    }

    /// Finalize's move: each of `types` goes from wherever it is on this machine to the best
    /// long-term storage path (a rename on one filesystem, else copy then rename), and the index
    /// follows. Files already on a storage path stay.
    pub async fn move_to_storage(
        &self,
        sector: &SectorRef,
        types: FileTypes,
    ) -> Result<SectorPaths, StoreError> {
        let id = sector.id();
        let mut out = SectorPaths::default();
        for t in types.iter() {
            let (src_id, src) = self.find_local(id, t).ok_or(StoreError::NotFound {
                sector: id,
                file_type: t,
            })?;
            if self.lock()[&src_id].meta.can_store {
                out.set(t, src);
                continue;
            }
            let (dst_id, root, staging, _res) = self.reserve_fetch(
                sector,
                t,
                PathKind::Storage,
                t.overhead(sector.size(), PathKind::Storage),
                "move",
            )?;
            let dst = sector_path(&root, t, id);
            let moved = move_path(&src, &dst, &staging)?;
            // The index follows before the source goes, so it never points at a half-deleted copy.
            self.inner
                .index
                .storage_declare_sector(&dst_id, id, t)
                .await?;
            self.inner.index.storage_drop_sector(&src_id, id, t).await?;
            if moved == Moved::Copied {
                if let Err(e) = remove_all(&src) {
                    tracing::warn!(sector = %id, file = %t, "moved to storage, but the sealing copy could not be removed: {e}");
                }
            }
            tracing::debug!(sector = %id, file = %t, from = %src.display(), to = %dst.display(), "moved to storage");
            out.set(t, dst);
        }
        Ok(out)
    }
}

/// Removes entries of `dir` not modified for `age`.
fn remove_stale(dir: &Path, age: std::time::Duration) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|a| a > age);
        if old {
            if let Err(err) = remove_all(&e.path()) {
                tracing::warn!("could not remove stale fetch {}: {err}", e.path().display());
            }
        }
    }
}

/// Sector names found in one file-type directory (anything else is ignored).
fn scan_sectors(dir: &Path) -> Vec<SectorId> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}
