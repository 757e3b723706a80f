//! The sector index: health from heartbeats, best allocation, scheduling-time reservations.

use std::collections::HashSet;
use std::time::Duration;

use resources::{SectorId, SectorSize};
use stores::{
    FileType, FileTypes, FsStat, MemIndex, PathKind, SectorIndex, StorageId, StorageInfo,
    StoreError,
};

const GIB: u64 = 1 << 30;

fn info(id: &str, weight: u64, seal: bool, store: bool) -> StorageInfo {
    StorageInfo {
        id: StorageId(id.into()),
        urls: vec![format!("http://{id}.example:3456/remote")],
        weight,
        max_storage: 0,
        can_seal: seal,
        can_store: store,
        groups: vec![],
        allow_to: vec![],
    }
}

fn avail(bytes: u64) -> FsStat {
    FsStat {
        capacity: 2 * bytes,
        available: bytes,
        fs_available: bytes,
        ..Default::default()
    }
}

#[tokio::test]
async fn heartbeats_keep_paths_healthy() {
    let idx = MemIndex::new(Duration::from_millis(200));
    let id = StorageId("p".into());
    idx.storage_attach(info("p", 10, true, false), avail(100 * GIB))
        .await
        .unwrap();
    let s = SectorId::new(1000, 1);
    idx.storage_declare_sector(&id, s, FileType::Sealed)
        .await
        .unwrap();
    assert!(idx.storage_find_sector(s, FileTypes::ALL).await.unwrap()[0].healthy);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let locs = idx.storage_find_sector(s, FileTypes::ALL).await.unwrap();
    assert!(!locs[0].healthy, "stale after the threshold, still listed");
    let err = idx
        .storage_best_alloc(
            FileTypes::SEALED,
            SectorSize::S2KiB,
            PathKind::Sealing,
            None,
        )
        .await;
    assert!(matches!(err, Err(StoreError::NoSuitablePath(_))), "{err:?}");
    idx.storage_report_health(&id, avail(100 * GIB), None)
        .await
        .unwrap();
    assert!(idx.storage_find_sector(s, FileTypes::ALL).await.unwrap()[0].healthy);
    idx.storage_report_health(&id, avail(100 * GIB), Some("disk gone".into()))
        .await
        .unwrap();
    assert!(
        !idx.storage_find_sector(s, FileTypes::ALL).await.unwrap()[0].healthy,
        "a failing stat is unhealthy"
    );
    idx.storage_drop_sector(&id, s, FileType::Sealed)
        .await
        .unwrap();
    assert!(idx
        .storage_find_sector(s, FileTypes::ALL)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn best_alloc_orders_by_available_times_weight_and_kind() {
    let idx = MemIndex::default();
    idx.storage_attach(info("small-heavy", 10, true, false), avail(1000 * GIB))
        .await
        .unwrap();
    idx.storage_attach(info("big-light", 1, true, false), avail(3000 * GIB))
        .await
        .unwrap();
    idx.storage_attach(info("store", 10, false, true), avail(9000 * GIB))
        .await
        .unwrap();
    idx.storage_attach(info("readonly", 0, true, true), avail(9000 * GIB))
        .await
        .unwrap();
    let got = idx
        .storage_best_alloc(
            FileTypes::SEALED,
            SectorSize::S32GiB,
            PathKind::Sealing,
            None,
        )
        .await
        .unwrap();
    let ids: Vec<&str> = got.iter().map(|i| i.id.0.as_str()).collect();
    assert_eq!(ids, vec!["small-heavy", "big-light"]);
    let got = idx
        .storage_best_alloc(
            FileTypes::SEALED,
            SectorSize::S32GiB,
            PathKind::Storage,
            None,
        )
        .await
        .unwrap();
    assert_eq!(got[0].id.0, "store");
    let only: HashSet<StorageId> = [StorageId("big-light".into())].into();
    let got = idx
        .storage_best_alloc(
            FileTypes::SEALED,
            SectorSize::S32GiB,
            PathKind::Sealing,
            Some(&only),
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
}

#[tokio::test]
async fn space_reserved_at_scheduling_counts_before_any_file_exists() {
    let idx = MemIndex::default();
    let id = StorageId("p".into());
    idx.storage_attach(info("p", 10, true, false), avail(600 * GIB))
        .await
        .unwrap();
    let need = FileTypes::SEALED.overhead(SectorSize::S32GiB, PathKind::Sealing);
    let r = idx.storage_reserve(&id, need).await.unwrap();
    // A second 32GiB PC1 no longer fits: 600 - 483 GiB left.
    let err = idx
        .storage_best_alloc(
            FileTypes::SEALED,
            SectorSize::S32GiB,
            PathKind::Sealing,
            None,
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("storage p")
            && msg.contains(&format!("available: {}", 600 * GIB - need))
            && msg.contains(&format!("need: {need}")),
        "{msg}"
    );
    assert!(idx.storage_reserve(&id, need).await.is_err());
    let list = idx.storage_list().await.unwrap();
    assert_eq!(list[0].sched_reserved, need);
    idx.storage_release(r).await.unwrap();
    assert!(idx
        .storage_best_alloc(
            FileTypes::SEALED,
            SectorSize::S32GiB,
            PathKind::Sealing,
            None
        )
        .await
        .is_ok());
}

#[tokio::test]
async fn a_path_given_up_takes_its_files_along_and_says_why_until_they_are_declared_again() {
    let idx = MemIndex::default();
    let (a, b) = (StorageId("a".into()), StorageId("b".into()));
    for p in ["a", "b"] {
        idx.storage_attach(info(p, 10, true, false), avail(GIB))
            .await
            .unwrap();
    }
    let (one, two) = (SectorId::new(1000, 1), SectorId::new(1000, 2));
    idx.storage_declare_sectors(&a, vec![(one, FileType::Sealed), (one, FileType::Cache)])
        .await
        .unwrap();
    idx.storage_declare_sector(&b, two, FileType::Sealed)
        .await
        .unwrap();
    let mut losses = idx.losses();
    let held = idx.detach_now(&a, "A was lost").unwrap();
    assert_eq!(held, vec![(one, FileTypes::SEALED)]);
    assert!(losses.has_changed().unwrap());
    losses.mark_unchanged();
    assert!(idx.holders_now(one).is_empty());
    assert_eq!(idx.lost_reason(one).as_deref(), Some("A was lost"));
    assert_eq!(idx.lost_reason(two), None);
    assert!(matches!(
        idx.detach_now(&a, "again"),
        Err(StoreError::UnknownStorage(_))
    ));
    // Declared again (its machine back): the reason goes.
    idx.storage_attach(info("a", 10, true, false), avail(GIB))
        .await
        .unwrap();
    idx.storage_declare_sectors(&a, vec![(one, FileType::Sealed)])
        .await
        .unwrap();
    assert_eq!(idx.lost_reason(one), None);
    assert_eq!(
        idx.holders_now(one),
        vec![(a.clone(), FileType::Sealed.into())]
    );
    // A failing path counts only once it has failed long enough; a good report clears it.
    idx.storage_report_health(&b, avail(GIB), Some("EIO".into()))
        .await
        .unwrap();
    assert!(
        losses.has_changed().unwrap(),
        "a first error is a possible loss"
    );
    assert_eq!(idx.path_failing(&b, Duration::from_secs(60)), None);
    assert_eq!(idx.path_failing(&b, Duration::ZERO).as_deref(), Some("EIO"));
    idx.storage_report_health(&b, avail(GIB), None)
        .await
        .unwrap();
    assert_eq!(idx.path_failing(&b, Duration::ZERO), None);
    // Forgotten copies (a rebuild replaces them), wherever they were.
    assert_eq!(idx.forget_sector(two, FileTypes::ALL), vec![b]);
    assert!(idx.holders_now(two).is_empty());
}
