//! Task failures come back with the kind the sector's retry policy acts on.

use std::sync::Arc;

use api::tasks::{ErrorKind, TaskCall, TaskOutput};
use proofs::{Engine, MockEngine, PhaseOutput};
use resources::{SealProof, SectorRef};
use stores::{AttachOptions, LocalStore, MemIndex, Remote};

fn sector(n: u64) -> SectorRef {
    SectorRef::new(1000, n, SealProof::StackedDrg2KiBV1_1)
}

async fn remote(dir: &std::path::Path) -> Remote {
    let store = LocalStore::open(
        &dir.join("storage.json"),
        Arc::new(MemIndex::default()),
        vec!["http://127.0.0.1:1/remote".into()],
    )
    .await
    .unwrap();
    Remote::new(store, String::new(), 1)
}

async fn attach(r: &Remote, path: &std::path::Path, max_storage: Option<u64>) {
    std::fs::create_dir_all(path).unwrap();
    let opts = AttachOptions {
        init: true,
        seal: true,
        store: false,
        weight: None,
        max_storage,
        groups: Vec::new(),
        allow_to: Vec::new(),
    };
    r.local().attach(path, &opts).await.unwrap();
}

#[tokio::test]
async fn no_room_is_out_of_space_until_a_path_with_room_is_attached() {
    let dir = tempfile::tempdir().unwrap();
    let r = remote(dir.path()).await;
    let engine: Arc<dyn Engine> = Arc::new(MockEngine::default());
    let ap = || TaskCall::AddPiece { sector: sector(1) };

    // No sealing path at all.
    let e = exec::execute(&r, &engine, ap()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutOfSpace, "{e}");
    assert!(e.message.contains("AP of sector 1"), "{e}");

    // A path too small for a 2KiB sector's files: the refusal names it and the figures.
    attach(&r, &dir.path().join("small"), Some(1024)).await;
    let e = exec::execute(&r, &engine, ap()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutOfSpace, "{e}");
    assert!(
        e.message.contains("available") && e.message.contains("need"),
        "{e}"
    );

    // Room attached: the same call goes through.
    attach(&r, &dir.path().join("big"), None).await;
    let out = exec::execute(&r, &engine, ap()).await.unwrap();
    assert!(matches!(out, TaskOutput::Piece(_)), "{out:?}");
}

#[tokio::test]
async fn an_unusable_earlier_output_or_a_missing_file_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let r = remote(dir.path()).await;
    attach(&r, &dir.path().join("seal"), None).await;
    let engine: Arc<dyn Engine> = Arc::new(MockEngine::default());

    // PC2 of a sector whose files are not here.
    let pc1 = PhaseOutput {
        engine: proofs::EngineKind::Mock,
        data: b"{}".to_vec(),
    };
    let call = TaskCall::PreCommit2 {
        sector: sector(2),
        pc1: pc1.clone(),
    };
    let e = exec::execute(&r, &engine, call).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadInput, "{e}");

    // A C1 output made by the other engine.
    let c1 = PhaseOutput {
        engine: proofs::EngineKind::Real,
        ..pc1
    };
    let call = TaskCall::Commit2 {
        sector: sector(2),
        c1,
    };
    let e = exec::execute(&r, &engine, call).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadInput, "{e}");
}
