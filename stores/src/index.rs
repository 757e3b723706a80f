//! The sector index: which storage path (on which machine, reachable at which URLs) holds which
//! sector file types, how full each path is (from heartbeats), and where new sectors should go.
//!
//! `SectorIndex` is a trait so a worker can reach the sealer's index over RPC; `MemIndex` is the
//! implementation the sealer holds.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use resources::{SectorId, SectorSize};
use serde::{Deserialize, Serialize};

use crate::filetype::{FileType, FileTypes, PathKind};
use crate::meta::{LocalStorageMeta, StorageId};
use crate::StoreError;

/// A path is unhealthy when its last heartbeat is older than this (lotus: 50 s).
pub const SKIPPED_HEARTBEAT_THRESH: Duration = Duration::from_secs(50);

/// A storage path as the cluster knows it (lotus's field names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageInfo {
    #[serde(rename = "ID")]
    pub id: StorageId,
    /// Base URLs of the `/remote` endpoint of the machine that has this path.
    #[serde(rename = "URLs")]
    pub urls: Vec<String>,
    #[serde(rename = "Weight")]
    pub weight: u64,
    #[serde(rename = "MaxStorage")]
    pub max_storage: u64,
    #[serde(rename = "CanSeal")]
    pub can_seal: bool,
    #[serde(rename = "CanStore")]
    pub can_store: bool,
    #[serde(rename = "Groups")]
    pub groups: Vec<String>,
    #[serde(rename = "AllowTo")]
    pub allow_to: Vec<String>,
}

impl StorageInfo {
    pub fn from_meta(meta: &LocalStorageMeta, urls: Vec<String>) -> StorageInfo {
        StorageInfo {
            id: meta.id.clone(),
            urls,
            weight: meta.weight,
            max_storage: meta.max_storage,
            can_seal: meta.can_seal,
            can_store: meta.can_store,
            groups: meta.groups.clone(),
            allow_to: meta.allow_to.clone(),
        }
    }

    fn allows(&self, kind: PathKind) -> bool {
        match kind {
            PathKind::Sealing => self.can_seal,
            PathKind::Storage => self.can_store,
        }
    }
}

/// How full a path is (lotus's `fsutil.FsStat` names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsStat {
    #[serde(rename = "Capacity")]
    pub capacity: u64,
    /// What can still be allocated: free space less reservations, within MaxStorage.
    #[serde(rename = "Available")]
    pub available: u64,
    /// Free space on the filesystem.
    #[serde(rename = "FSAvailable")]
    pub fs_available: u64,
    /// Space reserved for files being written and not yet written.
    #[serde(rename = "Reserved")]
    pub reserved: u64,
    #[serde(rename = "Max")]
    pub max: u64,
    /// Space taken by sector files (on a path without MaxStorage, as measured up to
    /// `local::USED_EVERY` ago).
    #[serde(rename = "Used")]
    pub used: u64,
}

/// One place a sector's files are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectorLocation {
    #[serde(rename = "Storage")]
    pub storage: StorageInfo,
    /// The types of this sector's files on that path.
    #[serde(rename = "Types")]
    pub types: FileTypes,
    /// Whether the path heartbeats: unhealthy paths are listed but not fetched from.
    #[serde(rename = "Healthy")]
    pub healthy: bool,
}

/// A path's entry in `storage list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StorageEntry {
    pub info: StorageInfo,
    pub stat: FsStat,
    /// Space reserved by the scheduler for tasks placed but not yet started.
    pub sched_reserved: u64,
    /// Seconds since the last heartbeat.
    pub heartbeat_age_secs: u64,
    pub heartbeat_err: Option<String>,
    pub sectors: usize,
}

/// A path's declared files added up, order aside: how many (sector, file type) pairs and the
/// sum of their hashes. A worker declaring its paths again (the sealer restarted, or the worker
/// reconnected) compares its listing's with the index's and sends the files only when they
/// differ: a store that a thousand workers mount is declared once, not a thousand times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Listing {
    #[serde(rename = "Files")]
    pub files: u64,
    #[serde(rename = "Sum")]
    pub sum: u64,
}

impl Listing {
    pub fn of(files: &[(SectorId, FileType)]) -> Listing {
        let mut l = Listing::default();
        for (sector, ft) in files {
            l.add(*sector, *ft);
        }
        l
    }

    fn add(&mut self, sector: SectorId, ft: FileType) {
        self.files += 1;
        self.sum = self.sum.wrapping_add(file_hash(sector, ft));
    }

    fn remove(&mut self, sector: SectorId, ft: FileType) {
        self.files -= 1;
        self.sum = self.sum.wrapping_sub(file_hash(sector, ft));
    }
}

/// A stable hash of one file (the same in every process and version: it crosses the wire).
fn file_hash(sector: SectorId, ft: FileType) -> u64 {
    // splitmix64's finaliser.
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let kind = FileType::ALL.iter().position(|t| *t == ft).unwrap_or(0) as u64;
    mix(mix(mix(sector.miner) ^ sector.number) ^ kind)
}

/// A scheduling-time space reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReservationId(pub u64);

#[async_trait]
pub trait SectorIndex: Send + Sync {
    async fn storage_attach(&self, info: StorageInfo, stat: FsStat) -> Result<(), StoreError>;
    async fn storage_detach(&self, id: &StorageId) -> Result<(), StoreError>;
    async fn storage_report_health(
        &self,
        id: &StorageId,
        stat: FsStat,
        err: Option<String>,
    ) -> Result<(), StoreError>;
    async fn storage_declare_sector(
        &self,
        id: &StorageId,
        sector: SectorId,
        ft: FileType,
    ) -> Result<(), StoreError>;
    /// Declares many files of one path at once (a path attached or declared again), so that
    /// its files reappear together.
    async fn storage_declare_sectors(
        &self,
        id: &StorageId,
        files: Vec<(SectorId, FileType)>,
    ) -> Result<(), StoreError> {
        for (sector, ft) in files {
            self.storage_declare_sector(id, sector, ft).await?;
        }
        Ok(())
    }
    async fn storage_drop_sector(
        &self,
        id: &StorageId,
        sector: SectorId,
        ft: FileType,
    ) -> Result<(), StoreError>;
    /// Every path holding any of `types` of the sector, healthy ones first, by weight.
    async fn storage_find_sector(
        &self,
        sector: SectorId,
        types: FileTypes,
    ) -> Result<Vec<SectorLocation>, StoreError>;
    /// Healthy paths (among `among`, if given) of the right kind with room for `types` of a new
    /// sector, best first (available x weight), counting scheduling reservations. When none has
    /// room, the error names the best candidate, what it has and what is needed.
    async fn storage_best_alloc(
        &self,
        types: FileTypes,
        size: SectorSize,
        kind: PathKind,
        among: Option<&HashSet<StorageId>>,
    ) -> Result<Vec<StorageInfo>, StoreError>;
    async fn storage_info(&self, id: &StorageId) -> Result<StorageInfo, StoreError>;
    /// Path `id`'s declared files added up (`None`: this index cannot tell, e.g. an older
    /// sealer): what a worker compares its own listing with before declaring it again.
    async fn storage_listing(&self, id: &StorageId) -> Result<Option<Listing>, StoreError> {
        let _ = id;
        Ok(None)
    }
    /// The sectors declared on one path, with their file types.
    async fn storage_sectors(
        &self,
        id: &StorageId,
    ) -> Result<Vec<(SectorId, FileTypes)>, StoreError>;
    async fn storage_list(&self) -> Result<Vec<StorageEntry>, StoreError>;
    /// Holds `bytes` on a path from scheduling until the task's own reservation takes over.
    async fn storage_reserve(
        &self,
        id: &StorageId,
        bytes: u64,
    ) -> Result<ReservationId, StoreError>;
    async fn storage_release(&self, res: ReservationId) -> Result<(), StoreError>;
}

struct PathState {
    info: StorageInfo,
    stat: FsStat,
    last_heartbeat: SystemTime,
    heartbeat_err: Option<String>,
    /// Since when `heartbeat_err` has been set without a break.
    failing_since: Option<SystemTime>,
}

#[derive(Default)]
struct State {
    paths: HashMap<StorageId, PathState>,
    sectors: BTreeMap<SectorId, BTreeMap<StorageId, FileTypes>>,
    /// The other way round: the sectors with files on each path (a path's listing and count
    /// without going through every sector).
    on_path: HashMap<StorageId, BTreeSet<SectorId>>,
    /// Each path's files added up, kept as they change.
    listings: HashMap<StorageId, Listing>,
    reservations: HashMap<ReservationId, (StorageId, u64)>,
    next_res: u64,
    /// Why a sector's files were last dropped with a whole path (detached, or its machine
    /// lost), until the sector's files are declared again.
    lost: HashMap<SectorId, String>,
}

impl State {
    /// `sector` has `types` on path `id` now (`None`: nothing there any more).
    fn set(&mut self, sector: SectorId, id: &StorageId, types: Option<FileTypes>) {
        let (was, now) = (self.held(sector, id), types.unwrap_or(FileTypes::NONE));
        if was != now {
            let l = self.listings.entry(id.clone()).or_default();
            was.minus(now).iter().for_each(|ft| l.remove(sector, ft));
            now.minus(was).iter().for_each(|ft| l.add(sector, ft));
        }
        let holders = self.sectors.entry(sector).or_default();
        match types.filter(|t| !t.is_empty()) {
            Some(t) => {
                holders.insert(id.clone(), t);
                self.on_path.entry(id.clone()).or_default().insert(sector);
            }
            None => {
                holders.remove(id);
                if holders.is_empty() {
                    self.sectors.remove(&sector);
                }
                if let Some(on) = self.on_path.get_mut(id) {
                    on.remove(&sector);
                }
            }
        }
    }

    /// What `sector` has on path `id`.
    fn held(&self, sector: SectorId, id: &StorageId) -> FileTypes {
        self.sectors
            .get(&sector)
            .and_then(|h| h.get(id))
            .copied()
            .unwrap_or(FileTypes::NONE)
    }

    fn sched_reserved(&self, id: &StorageId) -> u64 {
        self.reservations
            .values()
            .filter(|(s, _)| s == id)
            .map(|(_, b)| b)
            .sum()
    }

    fn path(&self, id: &StorageId) -> Result<&PathState, StoreError> {
        self.paths
            .get(id)
            .ok_or_else(|| StoreError::UnknownStorage(id.clone()))
    }
}

/// The in-memory index the sealer keeps (paths re-declare themselves when they attach).
pub struct MemIndex {
    state: Mutex<State>,
    stale_after: Duration,
    /// Counts the times files may have become unreachable (a path dropped, marked unhealthy or
    /// reporting an error), so that whoever waits on files can look again.
    losses: tokio::sync::watch::Sender<u64>,
}

impl Default for MemIndex {
    fn default() -> Self {
        MemIndex::new(SKIPPED_HEARTBEAT_THRESH)
    }
}

impl MemIndex {
    pub fn new(stale_after: Duration) -> Self {
        MemIndex {
            state: Mutex::new(State::default()),
            stale_after,
            losses: tokio::sync::watch::channel(0).0,
        }
    }

    /// Changes each time files may have become unreachable (see `losses`).
    pub fn losses(&self) -> tokio::sync::watch::Receiver<u64> {
        self.losses.subscribe()
    }

    fn lost_some(&self) {
        self.losses.send_modify(|n| *n += 1);
    }

    /// How long a path may go without a heartbeat before it counts as unhealthy.
    pub fn stale_after(&self) -> Duration {
        self.stale_after
    }

    fn healthy(&self, p: &PathState) -> bool {
        p.heartbeat_err.is_none()
            && SystemTime::now()
                .duration_since(p.last_heartbeat)
                .is_ok_and(|age| age <= self.stale_after)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The paths declaring the sector's files, with which (for the scheduler, which cannot
    /// wait).
    pub fn holders_now(&self, sector: SectorId) -> Vec<(StorageId, FileTypes)> {
        self.lock()
            .sectors
            .get(&sector)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }

    /// Drops path `id` and every declaration of files on it (a detach, or the machine that has
    /// it lost for good). Each sector that had files there remembers `why` (`lost_reason`) until
    /// its files are declared again. Returns the sectors it held, with their types there.
    pub fn detach_now(
        &self,
        id: &StorageId,
        why: &str,
    ) -> Result<Vec<(SectorId, FileTypes)>, StoreError> {
        let mut guard = self.lock();
        let st = &mut *guard;
        st.path(id)?;
        st.paths.remove(id);
        st.reservations.retain(|_, (s, _)| s != id);
        let mut held = Vec::new();
        for sector in st.on_path.remove(id).unwrap_or_default() {
            let t = st.held(sector, id);
            st.set(sector, id, None);
            held.push((sector, t));
            st.lost.insert(sector, why.to_string());
        }
        st.listings.remove(id);
        drop(guard);
        self.lost_some();
        Ok(held)
    }

    /// The error a path reports (or was marked with), if it has been failing for `at_least`
    /// without a break; `None` also for a path that is merely late with its heartbeat.
    pub fn path_failing(&self, id: &StorageId, at_least: Duration) -> Option<String> {
        let st = self.lock();
        let p = st.paths.get(id)?;
        let since = p.failing_since?;
        let long = SystemTime::now()
            .duration_since(since)
            .is_ok_and(|d| d >= at_least);
        p.heartbeat_err.clone().filter(|_| long)
    }

    /// Why the sector's files were dropped with a path, if they were and have not been declared
    /// again since.
    pub fn lost_reason(&self, sector: SectorId) -> Option<String> {
        self.lock().lost.get(&sector).cloned()
    }

    /// Forgets every declaration of the sector's `types`, wherever (its copies are known bad or
    /// gone: a rebuild replaces them). Returns the paths that had any.
    pub fn forget_sector(&self, sector: SectorId, types: FileTypes) -> Vec<StorageId> {
        let mut st = self.lock();
        let had: Vec<(StorageId, FileTypes)> = st
            .sectors
            .get(&sector)
            .into_iter()
            .flatten()
            .filter(|(_, t)| !t.intersect(types).is_empty())
            .map(|(id, t)| (id.clone(), *t))
            .collect();
        for (id, t) in &had {
            st.set(sector, id, Some(t.minus(types)));
        }
        had.into_iter().map(|(id, _)| id).collect()
    }

    /// Marks a path unhealthy now (the machine that has it was lost); its next heartbeat
    /// makes it healthy again.
    pub fn mark_unhealthy(&self, id: &StorageId, why: &str) {
        if let Some(p) = self.lock().paths.get_mut(id) {
            p.heartbeat_err = Some(why.to_string());
            p.failing_since.get_or_insert_with(SystemTime::now);
        }
        self.lost_some();
    }

    /// Whether a healthy path among `among` can take `bytes` more for `kind`, counting
    /// scheduling reservations (for the scheduler, which cannot wait).
    pub fn has_room_now(&self, among: &[StorageId], kind: PathKind, bytes: u64) -> bool {
        let st = self.lock();
        among.iter().any(|id| {
            st.paths.get(id).is_some_and(|p| {
                self.healthy(p)
                    && p.info.allows(kind)
                    && p.stat.available.saturating_sub(st.sched_reserved(id)) >= bytes
            })
        })
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[async_trait]
impl SectorIndex for MemIndex {
    async fn storage_attach(&self, info: StorageInfo, stat: FsStat) -> Result<(), StoreError> {
        let mut st = self.lock();
        // A path re-attached from another machine keeps its sectors; its URLs are replaced.
        st.paths.insert(
            info.id.clone(),
            PathState {
                info,
                stat,
                last_heartbeat: SystemTime::now(),
                heartbeat_err: None,
                failing_since: None,
            },
        );
        Ok(())
    }

    async fn storage_detach(&self, id: &StorageId) -> Result<(), StoreError> {
        self.detach_now(id, &format!("storage path {id} was detached"))
            .map(|_| ())
    }

    async fn storage_report_health(
        &self,
        id: &StorageId,
        stat: FsStat,
        err: Option<String>,
    ) -> Result<(), StoreError> {
        let mut st = self.lock();
        let p = st
            .paths
            .get_mut(id)
            .ok_or_else(|| StoreError::UnknownStorage(id.clone()))?;
        p.stat = stat;
        let failing = err.is_some() && p.heartbeat_err.is_none();
        p.failing_since = match &err {
            Some(_) => p.failing_since.or(Some(SystemTime::now())),
            None => None,
        };
        p.heartbeat_err = err;
        p.last_heartbeat = SystemTime::now();
        drop(st);
        if failing {
            self.lost_some();
        }
        Ok(())
    }

    async fn storage_declare_sector(
        &self,
        id: &StorageId,
        sector: SectorId,
        ft: FileType,
    ) -> Result<(), StoreError> {
        self.storage_declare_sectors(id, vec![(sector, ft)]).await
    }

    async fn storage_declare_sectors(
        &self,
        id: &StorageId,
        files: Vec<(SectorId, FileType)>,
    ) -> Result<(), StoreError> {
        let mut st = self.lock();
        st.path(id)?;
        for (sector, ft) in files {
            st.lost.remove(&sector);
            let t = st.held(sector, id).union(ft.into());
            st.set(sector, id, Some(t));
        }
        Ok(())
    }

    async fn storage_drop_sector(
        &self,
        id: &StorageId,
        sector: SectorId,
        ft: FileType,
    ) -> Result<(), StoreError> {
        let mut st = self.lock();
        if st.sectors.get(&sector).is_some_and(|h| h.contains_key(id)) {
            let t = st.held(sector, id).minus(ft.into());
            st.set(sector, id, Some(t));
        }
        Ok(())
    }

    async fn storage_find_sector(
        &self,
        sector: SectorId,
        types: FileTypes,
    ) -> Result<Vec<SectorLocation>, StoreError> {
        let st = self.lock();
        let mut out: Vec<SectorLocation> = st
            .sectors
            .get(&sector)
            .into_iter()
            .flatten()
            .filter_map(|(id, held)| {
                let found = held.intersect(types);
                let p = st.paths.get(id)?;
                (!found.is_empty()).then(|| SectorLocation {
                    storage: p.info.clone(),
                    types: found,
                    healthy: self.healthy(p),
                })
            })
            .collect();
        out.sort_by(|a, b| {
            b.healthy
                .cmp(&a.healthy)
                .then(b.storage.weight.cmp(&a.storage.weight))
        });
        Ok(out)
    }

    async fn storage_best_alloc(
        &self,
        types: FileTypes,
        size: SectorSize,
        kind: PathKind,
        among: Option<&HashSet<StorageId>>,
    ) -> Result<Vec<StorageInfo>, StoreError> {
        let st = self.lock();
        let need = types.overhead(size, kind);
        let mut candidates: Vec<(u128, &PathState, u64)> = st
            .paths
            .values()
            .filter(|p| p.info.allows(kind) && p.info.weight > 0 && self.healthy(p))
            .filter(|p| among.is_none_or(|set| set.contains(&p.info.id)))
            .map(|p| {
                let avail = p
                    .stat
                    .available
                    .saturating_sub(st.sched_reserved(&p.info.id));
                (avail as u128 * p.info.weight as u128, p, avail)
            })
            .collect();
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.info.id.cmp(&b.1.info.id)));
        let fits: Vec<StorageInfo> = candidates
            .iter()
            .filter(|(_, _, avail)| *avail >= need)
            .map(|(_, p, _)| p.info.clone())
            .collect();
        if fits.is_empty() {
            return Err(match candidates.iter().max_by_key(|(_, _, avail)| *avail) {
                Some((_, p, avail)) => StoreError::OutOfSpace {
                    path: format!("storage {}", p.info.id),
                    available: *avail,
                    needed: need,
                },
                None => StoreError::NoSuitablePath(format!(
                    "no healthy path can take {types} for {kind:?}"
                )),
            });
        }
        Ok(fits)
    }

    async fn storage_listing(&self, id: &StorageId) -> Result<Option<Listing>, StoreError> {
        let st = self.lock();
        st.path(id)?;
        Ok(Some(st.listings.get(id).copied().unwrap_or_default()))
    }

    async fn storage_sectors(
        &self,
        id: &StorageId,
    ) -> Result<Vec<(SectorId, FileTypes)>, StoreError> {
        let st = self.lock();
        Ok(st
            .on_path
            .get(id)
            .into_iter()
            .flatten()
            .map(|sector| (*sector, st.held(*sector, id)))
            .collect())
    }

    async fn storage_info(&self, id: &StorageId) -> Result<StorageInfo, StoreError> {
        Ok(self.lock().path(id)?.info.clone())
    }

    async fn storage_list(&self) -> Result<Vec<StorageEntry>, StoreError> {
        let st = self.lock();
        let now = SystemTime::now();
        let mut out: Vec<StorageEntry> = st
            .paths
            .values()
            .map(|p| StorageEntry {
                info: p.info.clone(),
                stat: p.stat,
                sched_reserved: st.sched_reserved(&p.info.id),
                heartbeat_age_secs: secs(now).saturating_sub(secs(p.last_heartbeat)),
                heartbeat_err: p.heartbeat_err.clone(),
                sectors: st.on_path.get(&p.info.id).map_or(0, |s| s.len()),
            })
            .collect();
        out.sort_by(|a, b| a.info.id.cmp(&b.info.id));
        Ok(out)
    }

    async fn storage_reserve(
        &self,
        id: &StorageId,
        bytes: u64,
    ) -> Result<ReservationId, StoreError> {
        let mut st = self.lock();
        let avail = st
            .path(id)?
            .stat
            .available
            .saturating_sub(st.sched_reserved(id));
        if avail < bytes {
            return Err(StoreError::OutOfSpace {
                path: format!("storage {id}"),
                available: avail,
                needed: bytes,
            });
        }
        st.next_res += 1;
        let r = ReservationId(st.next_res);
        st.reservations.insert(r, (id.clone(), bytes));
        Ok(r)
    }

    async fn storage_release(&self, res: ReservationId) -> Result<(), StoreError> {
        self.lock().reservations.remove(&res);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str) -> StorageInfo {
        StorageInfo::from_meta(
            &LocalStorageMeta {
                id: StorageId(id.into()),
                weight: 10,
                can_seal: false,
                can_store: true,
                max_storage: 0,
                groups: vec![],
                allow_to: vec![],
                other: Default::default(),
            },
            vec![],
        )
    }

    fn s(n: u64) -> SectorId {
        SectorId {
            miner: 1000,
            number: n,
        }
    }

    /// The index's listing of a path stays what the path's declared files add up to, through
    /// declarations, drops and a forget; a detach takes it along; order does not matter.
    #[tokio::test]
    async fn a_paths_listing_follows_its_files() {
        let idx = MemIndex::default();
        let id = StorageId("p".into());
        idx.storage_attach(info("p"), FsStat::default())
            .await
            .unwrap();
        assert_eq!(
            idx.storage_listing(&id).await.unwrap(),
            Some(Listing::default())
        );
        let files = vec![
            (s(1), FileType::Sealed),
            (s(1), FileType::Cache),
            (s(2), FileType::Sealed),
            (s(3), FileType::Unsealed),
        ];
        idx.storage_declare_sectors(&id, files.clone())
            .await
            .unwrap();
        // Declared twice: still once each.
        idx.storage_declare_sector(&id, s(2), FileType::Sealed)
            .await
            .unwrap();
        let mut reversed = files.clone();
        reversed.reverse();
        assert_eq!(
            idx.storage_listing(&id).await.unwrap(),
            Some(Listing::of(&reversed))
        );
        assert_eq!(Listing::of(&files).files, 4);

        idx.storage_drop_sector(&id, s(1), FileType::Cache)
            .await
            .unwrap();
        idx.forget_sector(s(3), FileTypes::ALL);
        let left = [(s(1), FileType::Sealed), (s(2), FileType::Sealed)];
        assert_eq!(
            idx.storage_listing(&id).await.unwrap(),
            Some(Listing::of(&left))
        );
        assert_ne!(
            Listing::of(&left),
            Listing::of(&files[..2]),
            "which files, not how many"
        );

        idx.detach_now(&id, "test").unwrap();
        assert!(
            idx.storage_listing(&id).await.is_err(),
            "an unknown path has no listing"
        );
        idx.storage_attach(info("p"), FsStat::default())
            .await
            .unwrap();
        assert_eq!(
            idx.storage_listing(&id).await.unwrap(),
            Some(Listing::default())
        );
    }
}
