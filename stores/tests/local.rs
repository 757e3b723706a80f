//! One machine's paths: reservations, MaxStorage, and the finalize move.

use std::fs;
use std::sync::Arc;

use resources::{SectorRef, SectorSize};
use stores::{
    AttachOptions, FileType, FileTypes, LocalStore, MemIndex, PathKind, SectorIndex, StoreError,
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
