//! The pipeline in-process: the sealer's own worker (mock engine, temporary seal and store paths)
//! behind a handle that injects failures, the embedded chain with 10 ms epochs, and the sector
//! state machine's retry policy acting on each failure's kind.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::tasks::{ErrorKind, TaskError, TaskResult};
use api::{SectorState, TaskCall};
use async_trait::async_trait;
use proofs::{Engine, MockEngine};
use resources::{SealProof, TaskType};
use sched::{SchedConfig, Scheduler};
use stores::{AttachOptions, LocalStore, MemIndex, Remote};

use crate::calls::CallTracker;
use crate::cluster::ClusterView;
use crate::localworker::LocalWorker;
use crate::manager::{Manager, WorkerHandle};
use crate::pipeline::Pipeline;
use crate::sectors::Sectors;
use chain::{Chain, LocalChain};
use db::Db;

/// The in-process worker, failing the first N calls of some task types with a given kind.
struct Faulty {
    inner: LocalWorker,
    faults: Mutex<HashMap<TaskType, (ErrorKind, u32)>>,
}

#[async_trait]
impl WorkerHandle for Faulty {
    async fn prepare(&self, call: &TaskCall) -> Result<(), TaskError> {
        self.inner.prepare(call).await
    }
    async fn execute(&self, call_id: &str, call: TaskCall) -> TaskResult {
        let fault = match self.faults.lock().unwrap().get_mut(&call.task()) {
            Some((kind, n)) if *n > 0 => {
                *n -= 1;
                Some(*kind)
            }
            _ => None,
        };
        match fault {
            Some(kind) => Err(TaskError::new(
                kind,
                format!("{}: injected", call.describe()),
            )),
            None => self.inner.execute(call_id, call).await,
        }
    }
}

struct Cluster {
    _dir: tempfile::TempDir,
    db: Db,
    sectors: Arc<Sectors>,
    pipeline: Arc<Pipeline>,
}

async fn cluster(faults: &[(TaskType, ErrorKind, u32)]) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let engine: Arc<dyn Engine> = Arc::new(MockEngine::default());
    let chain = LocalChain::open(
        db.clone(),
        engine.clone(),
        Duration::from_millis(10),
        1,
        10,
        0,
    )
    .unwrap();
    chain
        .ensure_miner(1000, resources::SectorSize::S2KiB)
        .await
        .unwrap();
    let index = Arc::new(MemIndex::default());
    let store = LocalStore::open(
        &dir.path().join("storage.json"),
        index.clone(),
        vec!["http://127.0.0.1:1/remote".into()],
    )
    .await
    .unwrap();
    for (name, seal) in [("seal", true), ("store", false)] {
        let p = dir.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        let opts = AttachOptions {
            init: true,
            seal,
            store: !seal,
            weight: None,
            max_storage: None,
            groups: Vec::new(),
            allow_to: Vec::new(),
        };
        store.attach(&p, &opts).await.unwrap();
    }
    let remote = Arc::new(Remote::new(store.clone(), String::new(), 1));
    let manager = Manager::new(
        Scheduler::new(SchedConfig::default()),
        CallTracker::open(db.clone()).unwrap(),
    );
    let view = ClusterView::new(index);
    let worker = Arc::new(Faulty {
        inner: LocalWorker {
            remote: remote.clone(),
            engine: engine.clone(),
        },
        faults: Mutex::new(faults.iter().map(|(t, k, n)| (*t, (*k, *n))).collect()),
    });
    let spec = sched::sim::spec("local", 64, 16, 0, &TaskType::ALL);
    let id = manager.add_worker(spec, worker, true);
    view.set_paths(id, store.paths().into_iter().map(|p| p.0).collect());
    manager.spawn();
    chain.spawn();
    let sectors = Arc::new(Sectors::load(db.clone(), 3).unwrap());
    let pipeline = Pipeline::new(
        sectors.clone(),
        chain as Arc<dyn Chain>,
        manager,
        remote,
        view,
        Duration::from_millis(200),
        engine,
    );
    Cluster {
        _dir: dir,
        db,
        sectors,
        pipeline,
    }
}

impl Cluster {
    /// Pledges a sector and waits (at most 30 s) until it is Proving.
    async fn seal_one(&self) -> crate::fsm::Sector {
        let s = self
            .sectors
            .pledge(1000, SealProof::StackedDrg2KiBV1_1, 0)
            .unwrap();
        let n = s.sector.number;
        self.pipeline.start(n);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.sectors.get(n).unwrap();
            if s.state == SectorState::Proving {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "sector {n} stuck in {}: {:?}",
                s.state,
                s.log.last()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn logged(s: &crate::fsm::Sector, kind: &str) -> Vec<String> {
    s.log
        .iter()
        .filter(|l| l.kind == kind)
        .map(|l| l.message.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_worker_costs_no_retry_and_bad_input_reruns_the_step_before() {
    let c = cluster(&[
        (TaskType::PreCommit1, ErrorKind::WorkerLost, 1),
        (TaskType::PreCommit2, ErrorKind::BadInput, 1),
    ])
    .await;
    let s = c.seal_one().await;
    let failed = logged(&s, "SectorFailed");
    assert_eq!(failed.len(), 2, "{:?}", s.log);
    assert!(failed[0].contains("[worker lost]"), "{failed:?}");
    assert!(failed[1].contains("[bad input]"), "{failed:?}");
    let retries = logged(&s, "SectorRetry");
    assert!(retries[0].contains("no retry spent"), "{retries:?}");
    // The PC2 that could not use its PC1 output sent the sector back to PC1: PC1 ran twice
    // after the lost one.
    let pc1_done = logged(&s, "SectorPreCommit1").len();
    assert_eq!(pc1_done, 2, "{:?}", s.log);
    assert_eq!(s.retries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_space_waits_without_spending_retries() {
    // Five refusals in a row would exhaust MaxRetries (3) if they counted.
    let c = cluster(&[(TaskType::AddPiece, ErrorKind::OutOfSpace, 5)]).await;
    let s = c.seal_one().await;
    let failed = logged(&s, "SectorFailed");
    assert_eq!(failed.len(), 5, "{:?}", s.log);
    assert!(
        failed.iter().all(|f| f.contains("[out of space]")),
        "{failed:?}"
    );
    assert!(logged(&s, "SectorRetry")
        .iter()
        .all(|r| r.contains("no retry spent")));
    assert_eq!(s.state, SectorState::Proving);

    // The same refusals as temporary failures stop the sector.
    let c = cluster(&[(TaskType::AddPiece, ErrorKind::Temporary, 5)]).await;
    let n = c
        .sectors
        .pledge(1000, SealProof::StackedDrg2KiBV1_1, 0)
        .unwrap()
        .sector
        .number;
    c.pipeline.start(n);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while c.sectors.get(n).unwrap().state != SectorState::FailedUnrecoverable {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            c.sectors.get(n)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_again_after_its_pre_commit_landed_a_sector_is_not_pre_committed_twice() {
    // Two invalid C2 proofs in a row: lotus's fallback seals again from PC1 (same ticket).
    let c = cluster(&[(TaskType::Commit2, ErrorKind::ProofInvalid, 2)]).await;
    let s = c.seal_one().await;
    assert_eq!(logged(&s, "SectorPreCommit1").len(), 2, "{:?}", s.log);
    let again = logged(&s, "SectorPreCommitLanded");
    assert_eq!(again.len(), 2, "{:?}", s.log);
    assert!(again[1].contains("not sent again"), "{again:?}");
    let messages: Vec<(String, serde_json::Value)> = c.db.scan("chain/msg/").unwrap();
    let precommits = messages
        .iter()
        .filter(|(_, m)| m["msg"].get("PreCommit").is_some())
        .count();
    assert_eq!(precommits, 1, "{messages:?}");
}
