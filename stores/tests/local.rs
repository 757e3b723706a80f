//! One machine's paths: reservations, MaxStorage, and the finalize move.

use std::fs;
use std::sync::Arc;

use resources::{SectorRef, SectorSize};
use std::collections::HashSet;

use resources::SectorId;
use stores::index::{Listing, ReservationId, StorageEntry};
use stores::{
    AttachOptions, FileType, FileTypes, FsStat, LocalStore, MemIndex, PathKind, SectorIndex,
    SectorLocation, StorageId, StorageInfo, StoreError,
};

async fn store(dir: &std::path::Path) -> (LocalStore, Arc<MemIndex>) {
    let index = Arc::new(MemIndex::default());
    let idx: Arc<dyn SectorIndex> = index.clone();
    let s = LocalStore::open(
        &dir.join("storage.json"),
        idx,
        vec!["http://127.0.0.1:1/remote".into()],
    )
    .await
    .unwrap();
    (s, index)
}

fn opts(seal: bool, store: bool, max: Option<u64>) -> AttachOptions {
    AttachOptions {
        init: true,
        seal,
        store,
        max_storage: max,
        ..Default::default()
    }
}

fn sector(n: u64) -> SectorRef {
    SectorRef::new(1000, n, SectorSize::S8MiB.seal_proof())
}

#[tokio::test]
async fn allocations_reserve_space_until_the_task_ends() {
    let d = tempfile::tempdir().unwrap();
    let (s, _) = store(d.path()).await;
    let id = s
        .attach(&d.path().join("seal"), &opts(true, false, None))
        .await
        .unwrap();
    let need = FileTypes::SEALED.overhead(SectorSize::S8MiB, PathKind::Sealing);
    let before = s.stat(&id).unwrap();
    let got = s
        .acquire(
            &sector(1),
            FileTypes::NONE,
            FileTypes::SEALED,
            PathKind::Sealing,
        )
        .unwrap();
    let during = s.stat(&id).unwrap();
    assert_eq!(during.reserved, need);
    assert!(during.available <= before.available - need + (1 << 20));
    // What the task writes is taken out of what is still reserved.
    fs::write(got.paths.sealed.as_ref().unwrap(), vec![1u8; 4 << 20]).unwrap();
    let written = s.stat(&id).unwrap();
    assert!(
        written.reserved <= need - (4 << 20) && written.used >= 4 << 20,
        "{written:?}"
    );
    drop(got);
    assert_eq!(s.stat(&id).unwrap().reserved, 0);
}

#[tokio::test]
async fn max_storage_is_honoured_with_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let (s, _) = store(d.path()).await;
    let path = d.path().join("small");
    s.attach(&path, &opts(true, false, Some(50 << 20)))
        .await
        .unwrap();
    let err = s
        .acquire(
            &sector(1),
            FileTypes::NONE,
            FileTypes::SEALED,
            PathKind::Sealing,
        )
        .err()
        .unwrap();
    let msg = err.to_string();
    let need = FileTypes::SEALED.overhead(SectorSize::S8MiB, PathKind::Sealing);
    assert!(
        msg.contains(&path.display().to_string())
            && msg.contains(&format!("need: {need}"))
            && msg.contains("out of space"),
        "{msg}"
    );
    // A plain unsealed file fits in 50 MiB.
    assert!(s
        .acquire(
            &sector(1),
            FileTypes::NONE,
            FileType::Unsealed.into(),
            PathKind::Sealing
        )
        .is_ok());
    // No storage path at all is its own error.
    let err = s
        .acquire(
            &sector(2),
            FileTypes::NONE,
            FileTypes::SEALED,
            PathKind::Storage,
        )
        .err()
        .unwrap();
    assert!(
        matches!(err, StoreError::NoSuitablePath(ref m) if m.contains("--store")),
        "{err}"
    );
    // Re-attaching the same path, or attaching a fresh one without --init, are errors that say so.
    let again = s
        .attach(&path, &AttachOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(again.contains("already attached"), "{again}");
}

async fn finalize_into(store_root: &std::path::Path) {
    let d = tempfile::tempdir().unwrap();
    let (s, index) = store(d.path()).await;
    let seal = s
        .attach(&d.path().join("seal"), &opts(true, false, None))
        .await
        .unwrap();
    let st = s
        .attach(store_root, &opts(false, true, None))
        .await
        .unwrap();
    let sec = sector(3);
    let got = s
        .acquire(&sec, FileTypes::NONE, FileTypes::SEALED, PathKind::Sealing)
        .unwrap();
    fs::write(got.paths.sealed.as_ref().unwrap(), vec![7u8; 1 << 20]).unwrap();
    let cache = got.paths.cache.clone().unwrap();
    fs::create_dir_all(&cache).unwrap();
    fs::write(cache.join("p_aux"), b"aux").unwrap();
    for t in [FileType::Sealed, FileType::Cache] {
        s.declare(sec.id(), t, &seal).await.unwrap();
    }
    drop(got);
    let moved = s.move_to_storage(&sec, FileTypes::SEALED).await.unwrap();
    assert!(moved.sealed.as_ref().unwrap().starts_with(store_root));
    assert_eq!(fs::read(moved.sealed.unwrap()).unwrap(), vec![7u8; 1 << 20]);
    assert_eq!(
        fs::read(moved.cache.unwrap().join("p_aux")).unwrap(),
        b"aux"
    );
    assert!(!d.path().join("seal/sealed").join(sec.file_name()).exists());
    assert!(!cache.exists());
    let locs = index
        .storage_find_sector(sec.id(), FileTypes::SEALED)
        .await
        .unwrap();
    assert_eq!(locs.len(), 1);
    assert_eq!(locs[0].storage.id, st);
    assert_eq!(locs[0].types, FileTypes::SEALED);
}

#[tokio::test]
async fn finalize_moves_to_long_term_storage_on_one_filesystem() {
    let d = tempfile::tempdir().unwrap();
    finalize_into(&d.path().join("store")).await;
}

#[tokio::test]
async fn finalize_moves_across_filesystems_by_copy() {
    // /dev/shm is a tmpfs: a rename from the temp dir fails with EXDEV and the copy path runs.
    let shm = std::path::Path::new("/dev/shm");
    if !shm.is_dir() {
        eprintln!("no /dev/shm here: the cross-filesystem case is covered by the same-filesystem test only");
        return;
    }
    let d = tempfile::tempdir_in(shm).unwrap();
    finalize_into(&d.path().join("store")).await;
}

#[tokio::test]
async fn a_restart_drops_declarations_of_files_that_are_gone() {
    let d = tempfile::tempdir().unwrap();
    let (s, index) = store(d.path()).await;
    let id = s
        .attach(&d.path().join("seal"), &opts(true, false, None))
        .await
        .unwrap();
    let here = sector(5);
    fs::write(d.path().join("seal/sealed").join(here.file_name()), b"x").unwrap();
    s.declare(here.id(), FileType::Sealed, &id).await.unwrap();
    // The index believes a file that is not on disk (deleted while the process was down).
    let gone = sector(6);
    s.declare(gone.id(), FileType::Sealed, &id).await.unwrap();
    // Restart: the same storage.json and index.
    let idx: Arc<dyn SectorIndex> = index.clone();
    let again = LocalStore::open(&d.path().join("storage.json"), idx, vec![])
        .await
        .unwrap();
    assert_eq!(again.paths().len(), 1);
    assert_eq!(
        index
            .storage_find_sector(here.id(), FileTypes::ALL)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(index
        .storage_find_sector(gone.id(), FileTypes::ALL)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn heartbeats_and_metrics_reuse_the_last_measure_of_a_path_and_storage_list_measures_now() {
    let d = tempfile::tempdir().unwrap();
    let (s, _) = store(d.path()).await;
    let id = s
        .attach(&d.path().join("store"), &opts(false, true, None))
        .await
        .unwrap();
    let at_attach = s.stat_recent(&id).unwrap().used;
    // A file lands without going through this store (another worker mounting the path).
    let sealed = d.path().join("store/sealed/s-t01000-7");
    fs::write(&sealed, vec![1u8; 1 << 20]).unwrap();
    // Walking a store of thousands of sectors is what every heartbeat would do: it does not.
    assert_eq!(s.stat_recent(&id).unwrap().used, at_attach);
    let now = s.stat(&id).unwrap().used;
    assert!(now >= at_attach + (1 << 20), "{now} after {at_attach}");
    // The measure taken now is the one reused.
    assert_eq!(s.stat_recent(&id).unwrap().used, now);
}

/// An index that notes each attach and each declaration of many files, in order.
struct Noting {
    inner: MemIndex,
    calls: std::sync::Mutex<Vec<(&'static str, StorageId)>>,
}

#[async_trait::async_trait]
impl SectorIndex for Noting {
    async fn storage_attach(&self, info: StorageInfo, stat: FsStat) -> Result<(), StoreError> {
        self.calls.lock().unwrap().push(("attach", info.id.clone()));
        self.inner.storage_attach(info, stat).await
    }
    async fn storage_detach(&self, id: &StorageId) -> Result<(), StoreError> {
        self.inner.storage_detach(id).await
    }
    async fn storage_report_health(
        &self,
        id: &StorageId,
        stat: FsStat,
        err: Option<String>,
    ) -> Result<(), StoreError> {
        self.inner.storage_report_health(id, stat, err).await
    }
    async fn storage_declare_sector(
        &self,
        id: &StorageId,
        sector: SectorId,
        ft: FileType,
    ) -> Result<(), StoreError> {
        self.inner.storage_declare_sector(id, sector, ft).await
    }
    async fn storage_declare_sectors(
        &self,
        id: &StorageId,
        files: Vec<(SectorId, FileType)>,
    ) -> Result<(), StoreError> {
        self.calls.lock().unwrap().push(("declare", id.clone()));
        self.inner.storage_declare_sectors(id, files).await
    }
    async fn storage_drop_sector(
        &self,
        id: &StorageId,
        sector: SectorId,
        ft: FileType,
    ) -> Result<(), StoreError> {
        self.inner.storage_drop_sector(id, sector, ft).await
    }
    async fn storage_find_sector(
        &self,
        sector: SectorId,
        types: FileTypes,
    ) -> Result<Vec<SectorLocation>, StoreError> {
        self.inner.storage_find_sector(sector, types).await
    }
    async fn storage_best_alloc(
        &self,
        types: FileTypes,
        size: SectorSize,
        kind: PathKind,
        among: Option<&HashSet<StorageId>>,
    ) -> Result<Vec<StorageInfo>, StoreError> {
        self.inner
            .storage_best_alloc(types, size, kind, among)
            .await
    }
    async fn storage_info(&self, id: &StorageId) -> Result<StorageInfo, StoreError> {
        self.inner.storage_info(id).await
    }
    async fn storage_listing(&self, id: &StorageId) -> Result<Option<Listing>, StoreError> {
        self.inner.storage_listing(id).await
    }
    async fn storage_sectors(
        &self,
        id: &StorageId,
    ) -> Result<Vec<(SectorId, FileTypes)>, StoreError> {
        self.inner.storage_sectors(id).await
    }
    async fn storage_list(&self) -> Result<Vec<StorageEntry>, StoreError> {
        self.inner.storage_list().await
    }
    async fn storage_reserve(
        &self,
        id: &StorageId,
        bytes: u64,
    ) -> Result<ReservationId, StoreError> {
        self.inner.storage_reserve(id, bytes).await
    }
    async fn storage_release(&self, res: ReservationId) -> Result<(), StoreError> {
        self.inner.storage_release(res).await
    }
}

/// A sealer that restarted learns a worker's paths again from `redeclare`: every path before
/// any path's files (a task ending while a large store is listed declares its file on a path
/// the index knows), and a path that cannot be read keeps neither the others nor their files
/// out.
#[tokio::test]
async fn redeclaring_attaches_every_path_before_listing_files_and_goes_past_a_broken_one() {
    let d = tempfile::tempdir().unwrap();
    let noting = Arc::new(Noting {
        inner: MemIndex::default(),
        calls: Default::default(),
    });
    let idx: Arc<dyn SectorIndex> = noting.clone();
    let s = LocalStore::open(&d.path().join("storage.json"), idx, vec![])
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        let id = s
            .attach(&d.path().join(name), &opts(true, true, None))
            .await
            .unwrap();
        let file = d
            .path()
            .join(name)
            .join("sealed")
            .join(sector(i as u64).file_name());
        fs::write(file, b"x").unwrap();
        ids.push(id);
    }
    // Path "b" became unreadable; then the sealer restarted and the worker declares again.
    fs::remove_dir_all(d.path().join("b")).unwrap();
    noting.calls.lock().unwrap().clear();

    assert!(s.redeclare().await.is_err(), "path b's failure is reported");

    let calls = noting.calls.lock().unwrap().clone();
    let attached: Vec<_> = calls.iter().filter(|c| c.0 == "attach").collect();
    let first_declare = calls.iter().position(|c| c.0 == "declare").unwrap();
    assert_eq!(attached.len(), 2, "a and c attached: {calls:?}");
    assert!(
        calls[..first_declare].iter().all(|c| c.0 == "attach") && first_declare == 2,
        "every path attached before any file declared: {calls:?}"
    );
    for i in [0u64, 2] {
        let found = noting
            .storage_find_sector(sector(i).id(), FileTypes::ALL)
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "sector {i}'s file declared again");
        assert_eq!(found[0].storage.id, ids[i as usize]);
    }
}

/// A store that many machines mount (one path, one storage ID) is declared by the first of
/// them; the others, finding the index's listing of it the same as theirs, send nothing, until
/// it differs.
#[tokio::test]
async fn a_shared_store_already_declared_is_not_declared_again_by_each_machine() {
    let d = tempfile::tempdir().unwrap();
    let noting = Arc::new(Noting {
        inner: MemIndex::default(),
        calls: Default::default(),
    });
    let open = |name: &'static str| {
        let idx: Arc<dyn SectorIndex> = noting.clone();
        let dir = d.path().join(name);
        async move {
            fs::create_dir_all(&dir).unwrap();
            LocalStore::open(
                &dir.join("storage.json"),
                idx,
                vec![format!("http://{name}")],
            )
            .await
            .unwrap()
        }
    };
    let (first, second) = (open("m1").await, open("m2").await);
    let shared = d.path().join("shared");
    let id = first
        .attach(&shared, &opts(false, true, None))
        .await
        .unwrap();
    for n in 0..3 {
        fs::write(shared.join("sealed").join(sector(n).file_name()), b"x").unwrap();
    }
    first.redeclare().await.unwrap();
    let declares = |n: &Noting| {
        n.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.0 == "declare")
            .count()
    };
    let before = declares(&noting);
    let attached = AttachOptions {
        init: false,
        ..opts(false, true, None)
    };
    second.attach(&shared, &attached).await.unwrap();
    second.redeclare().await.unwrap();
    assert_eq!(declares(&noting), before, "nothing new to declare");
    assert_eq!(
        noting.storage_sectors(&id).await.unwrap().len(),
        3,
        "the first machine's declaration stands"
    );

    // A file the index does not have: the listing differs, and the files are sent.
    fs::write(shared.join("sealed").join(sector(7).file_name()), b"x").unwrap();
    second.redeclare().await.unwrap();
    assert_eq!(declares(&noting), before + 1);
    let found = noting
        .storage_find_sector(sector(7).id(), FileTypes::ALL)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
}
