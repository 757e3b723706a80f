//! The pipeline in-process: the sealer's own worker (mock engine, temporary seal and store paths)
//! behind a handle that injects failures, or fake remote machines; the devnet node with 10 ms
//! epochs, reached through the Lotus client. The sector state machine's retry policy acting on each failure's kind; a sealer
//! restart while a worker runs a step; a result that comes back after its step moved on; an
//! operator's abort of a running step.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::tasks::{ErrorKind, TaskError, TaskOutput, TaskResult};
use api::{SectorState, TaskCall};
use async_trait::async_trait;
use proofs::{Engine, MockEngine};
use resources::topology::Place;
use resources::{SealProof, SectorRef, SectorSize, Subject, TaskType};
use sched::{SchedConfig, Scheduler};
use stores::{AttachOptions, LocalStore, MemIndex, Remote};

use crate::calls::CallTracker;
use crate::cluster::ClusterView;
use crate::localworker::LocalWorker;
use crate::manager::{Manager, WorkerHandle};
use crate::pipeline::Pipeline;
use crate::sectors::Sectors;
use chain::devnet::{Devnet, DevnetConfig};
use chain::{
    ActiveSector, Call, Chain, ChainError, DeadlineInfo, DeadlineState, FullNode, MinerTally,
    PreCommitOnChain, RandKind, Receipt,
};
use db::Db;
use proofs::Randomness;
use std::sync::atomic::Ordering::SeqCst;

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
    async fn execute(&self, call_id: &str, call: TaskCall, place: Option<Place>) -> TaskResult {
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
            None => self.inner.execute(call_id, call, place).await,
        }
    }
}

/// The sealer's services on one directory and database, as one run of the daemon builds them
/// (no API server): a restart is a second `Life` on the same directory and database.
struct Life {
    db: Db,
    sectors: Arc<Sectors>,
    pipeline: Arc<Pipeline>,
    manager: Arc<Manager>,
    remote: Arc<Remote>,
    engine: Arc<dyn Engine>,
    view: Arc<ClusterView>,
    store: LocalStore,
    dir: std::path::PathBuf,
    workers: Mutex<Vec<sched::WorkerId>>,
    /// The devnet node this life's pipeline reaches through its Lotus client.
    _node: chain::devnet::node::Served,
    /// The devnet itself (its test hooks).
    devnet: Arc<Devnet>,
}

impl Life {
    /// Starts the services on `dir`, attaching a seal and a store path the first time. No
    /// worker yet, and no sector is driven until `pledge` or `resume_all`.
    async fn start(dir: &Path, db: Db) -> Life {
        Life::start_with(dir, db, &[("seal", true, None), ("store", false, None)]).await
    }

    /// The same, attaching `paths` (name, seal or store, max storage) the first time.
    async fn start_with(dir: &Path, db: Db, paths: &[(&str, bool, Option<u64>)]) -> Life {
        Life::start_wrapped(dir, db, paths, |c| c).await
    }

    /// The same, with the pipeline's chain client seen through `wrap`.
    async fn start_wrapped(
        dir: &Path,
        db: Db,
        paths: &[(&str, bool, Option<u64>)],
        wrap: impl FnOnce(Arc<dyn Chain>) -> Arc<dyn Chain>,
    ) -> Life {
        Life::start_full(dir, db, paths, wrap, Opts::default()).await
    }

    /// The same, with the devnet and the pipeline's policy as `opts` say.
    async fn start_full(
        dir: &Path,
        db: Db,
        paths: &[(&str, bool, Option<u64>)],
        wrap: impl FnOnce(Arc<dyn Chain>) -> Arc<dyn Chain>,
        opts: Opts,
    ) -> Life {
        let Opts {
            worker_funds,
            max_ticket_age,
            policy,
            block_delay,
            confidence,
            ticket_lookback,
            max_prove_commit_duration,
        } = opts;
        let engine: Arc<dyn Engine> = Arc::new(MockEngine::default());
        let cfg = DevnetConfig {
            block_delay,
            challenge_delay: 1,
            window: 10,
            other_power: 0,
            worker_funds,
            max_ticket_age,
            ticket_lookback,
            max_prove_commit_duration,
        };
        let devnet = Devnet::open(
            db.clone(),
            engine.clone(),
            cfg,
            1000,
            resources::SectorSize::S2KiB,
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let node = devnet.run(listener).unwrap();
        let chain = wrap(Arc::new(FullNode::connect(&node.info, 1000).await.unwrap()));
        let index = Arc::new(MemIndex::default());
        let first = !dir.join("storage.json").exists();
        let store = LocalStore::open(
            &dir.join("storage.json"),
            index.clone(),
            vec!["http://127.0.0.1:1/remote".into()],
        )
        .await
        .unwrap();
        let remote = Arc::new(Remote::new(store.clone(), String::new(), 1));
        let manager = Manager::new(
            Scheduler::new(SchedConfig::default()),
            CallTracker::open(db.clone()).unwrap(),
        );
        manager.spawn();
        let view = ClusterView::new(index);
        let sectors = Arc::new(Sectors::load(db.clone(), 3).unwrap());
        let pipeline = Pipeline::new(
            sectors.clone(),
            chain,
            manager.clone(),
            remote.clone(),
            view.clone(),
            Duration::from_millis(200),
            engine.clone(),
            true,
            policy,
            540 * 2880,
            confidence,
        );
        let life = Life {
            db,
            sectors,
            pipeline,
            manager,
            remote,
            engine,
            view,
            store,
            dir: dir.to_path_buf(),
            workers: Mutex::new(Vec::new()),
            _node: node,
            devnet,
        };
        if first {
            for (name, seal, max) in paths {
                life.attach(name, *seal, *max).await;
            }
        }
        life
    }

    /// Attaches `dir/name` as a seal or a store path, with `max_storage` if given; every worker
    /// reaches it (they share this disk).
    async fn attach(&self, name: &str, seal: bool, max_storage: Option<u64>) {
        let p = self.dir.join(name);
        std::fs::create_dir_all(&p).unwrap();
        let opts = AttachOptions {
            init: true,
            seal,
            store: !seal,
            weight: None,
            max_storage,
            groups: Vec::new(),
            allow_to: Vec::new(),
        };
        self.store.attach(&p, &opts).await.unwrap();
        for id in self.workers.lock().unwrap().iter() {
            self.view.set_paths(*id, self.paths());
        }
    }

    fn paths(&self) -> Vec<stores::StorageId> {
        self.store.paths().into_iter().map(|p| p.0).collect()
    }

    /// The sealer's own worker code on this life's storage.
    fn local_worker(&self) -> LocalWorker {
        LocalWorker {
            remote: self.remote.clone(),
            engine: self.engine.clone(),
            procs: None,
            topology: None,
            calls: None,
        }
    }

    /// Adds a worker taking every task type, with this life's paths.
    fn add(&self, name: &str, handle: Arc<dyn WorkerHandle>, local: bool) -> sched::WorkerId {
        let spec = sched::sim::spec(name, 64, 16, 0, &TaskType::ALL);
        let id = self.manager.add_worker(spec, handle, local);
        self.view.set_paths(id, self.paths());
        self.workers.lock().unwrap().push(id);
        id
    }

    /// Adds `m` as a remote worker reporting to this life.
    fn connect(&self, m: &Arc<Machine>) -> sched::WorkerId {
        m.report_to(self);
        self.add(m.name, Arc::new(m.clone()), false)
    }

    /// Pledges a sector and starts driving it.
    fn pledge(&self) -> u64 {
        let s = self
            .sectors
            .pledge(1000, SealProof::StackedDrg2KiBV1_1, 0)
            .unwrap();
        self.pipeline.start(s.sector.number);
        s.sector.number
    }

    /// Waits (at most 30 s) until sector `n` is in `state`.
    async fn wait_state(&self, n: u64, state: SectorState) -> crate::fsm::Sector {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.sectors.get_full(n).unwrap();
            if s.state == state {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "sector {n} not {state} but {}: {:?}",
                s.state,
                s.log.last()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Pledges a sector and waits until it is Proving.
    async fn seal_one(&self) -> crate::fsm::Sector {
        let n = self.pledge();
        self.wait_state(n, SectorState::Proving).await
    }
}

/// How a life's devnet and pipeline differ from the defaults.
struct Opts {
    /// What the genesis gives the miner's worker.
    worker_funds: chain::TokenAmount,
    /// The devnet's MaxPreCommitRandomnessLookback.
    max_ticket_age: i64,
    policy: crate::funds::Policy,
    /// The devnet's epochs.
    block_delay: Duration,
    /// `[Chain] MessageConfidence`.
    confidence: i64,
    /// The devnet's SealRandomnessLookback.
    ticket_lookback: i64,
    /// The devnet's MaxProveCommitDuration.
    max_prove_commit_duration: i64,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            worker_funds: chain::devnet::funds::fil(100),
            max_ticket_age: chain::MAX_PRECOMMIT_RANDOMNESS_LOOKBACK,
            policy: Default::default(),
            block_delay: Duration::from_millis(10),
            confidence: 5,
            ticket_lookback: 0,
            max_prove_commit_duration: chain::MAX_PROVE_COMMIT_DURATION,
        }
    }
}

/// The in-process worker, its first call of `task` taking `delay` longer.
struct SlowOnce {
    inner: LocalWorker,
    task: TaskType,
    delay: Mutex<Option<Duration>>,
}

#[async_trait]
impl WorkerHandle for SlowOnce {
    async fn prepare(&self, call: &TaskCall) -> Result<(), TaskError> {
        self.inner.prepare(call).await
    }
    async fn execute(&self, call_id: &str, call: TaskCall, place: Option<Place>) -> TaskResult {
        let delay = match call.task() == self.task {
            true => self.delay.lock().unwrap().take(),
            false => None,
        };
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        self.inner.execute(call_id, call, place).await
    }
}

/// One life with the in-process worker, failing as `faults` say.
struct Cluster {
    _dir: tempfile::TempDir,
    life: Life,
}

impl std::ops::Deref for Cluster {
    type Target = Life;
    fn deref(&self) -> &Life {
        &self.life
    }
}

async fn cluster(faults: &[(TaskType, ErrorKind, u32)]) -> Cluster {
    let c = bare().await;
    let worker = Arc::new(Faulty {
        inner: c.local_worker(),
        faults: Mutex::new(faults.iter().map(|(t, k, n)| (*t, (*k, *n))).collect()),
    });
    c.add("local", worker, true);
    c
}

/// One life with no worker, its devnet and pipeline as `opts` say.
async fn bare_with(opts: Opts) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let paths = [("seal", true, None), ("store", false, None)];
    let life = Life::start_full(dir.path(), db, &paths, |c| c, opts).await;
    Cluster { _dir: dir, life }
}

/// The same, with the in-process worker.
async fn cluster_with(opts: Opts) -> Cluster {
    let c = bare_with(opts).await;
    c.add("local", Arc::new(c.local_worker()), true);
    c
}

/// One life with no worker.
async fn bare() -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let life = Life::start(dir.path(), db).await;
    Cluster { _dir: dir, life }
}

/// Polls `f` every 10 ms until it gives something, for at most 30 s.
async fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "waited 30 s for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A remote worker machine as the sealer sees one: `execute` hands the call over and waits for
/// its `WorkerReturn` through the call tracker (as `cluster::RemoteWorker` does); the machine
/// runs each call ID once, on its own runtime (so a call outlives a sealer restart), with the
/// sealer's worker code on the same disk, and returns the result to whichever sealer it reports
/// to by then. The first call of the held task type stops after its work, before its result is
/// returned, until `release`; it then returns `replace` instead, if given.
struct Machine {
    name: &'static str,
    rt: tokio::runtime::Handle,
    sealer: Mutex<Option<(Arc<LocalWorker>, Arc<CallTracker>)>>,
    hold: Mutex<Option<(TaskType, Option<TaskResult>)>>,
    release: Arc<tokio::sync::Semaphore>,
    /// Call IDs in the order the machine took them, with their task type.
    taken: Mutex<Vec<(String, TaskType)>>,
    /// Every call ID `execute` was called with (a re-attached step asks again).
    asked: Mutex<Vec<String>>,
    /// The held call, once its work is done.
    held: Mutex<Option<String>>,
    /// Each `WorkerReturn`: the call and whether a step was waiting for it.
    returns: Mutex<Vec<(String, bool)>>,
    /// Calls running per sector now, and the most ever at once.
    busy: Mutex<(HashMap<u64, usize>, usize)>,
}

impl Machine {
    fn new(
        name: &'static str,
        rt: tokio::runtime::Handle,
        hold: Option<(TaskType, Option<TaskResult>)>,
    ) -> Arc<Machine> {
        Arc::new(Machine {
            name,
            rt,
            sealer: Mutex::new(None),
            hold: Mutex::new(hold),
            release: Arc::new(tokio::sync::Semaphore::new(0)),
            taken: Mutex::new(Vec::new()),
            asked: Mutex::new(Vec::new()),
            held: Mutex::new(None),
            returns: Mutex::new(Vec::new()),
            busy: Mutex::new((HashMap::new(), 0)),
        })
    }

    fn report_to(&self, life: &Life) {
        *self.sealer.lock().unwrap() =
            Some((Arc::new(life.local_worker()), life.manager.calls().clone()));
    }

    fn taken(&self, task: TaskType) -> Vec<String> {
        let g = self.taken.lock().unwrap();
        g.iter()
            .filter(|(_, t)| *t == task)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Waits until the held call has done its work; returns its ID.
    async fn wait_held(&self) -> String {
        until("the held call", || self.held.lock().unwrap().clone()).await
    }

    fn returned(&self, call_id: &str) -> Option<bool> {
        let g = self.returns.lock().unwrap();
        g.iter().find(|(id, _)| id == call_id).map(|(_, t)| *t)
    }

    fn run(self: Arc<Self>, call_id: String, call: TaskCall) {
        let held = {
            let mut h = self.hold.lock().unwrap();
            match &*h {
                Some((t, _)) if *t == call.task() => h.take(),
                _ => None,
            }
        };
        let n = call.sector().map(|s| s.number).unwrap_or(u64::MAX);
        let rt = self.rt.clone();
        rt.spawn(async move {
            {
                let mut b = self.busy.lock().unwrap();
                let now = b.0.entry(n).or_default();
                *now += 1;
                let now = *now;
                b.1 = b.1.max(now);
            }
            let inner = self.sealer.lock().unwrap().as_ref().unwrap().0.clone();
            let mut r = inner.execute(&call_id, call, None).await;
            if let Some((_, replace)) = held {
                *self.held.lock().unwrap() = Some(call_id.clone());
                self.release.acquire().await.unwrap().forget();
                if let Some(x) = replace {
                    r = x;
                }
            }
            *self.busy.lock().unwrap().0.get_mut(&n).unwrap() -= 1;
            let tracker = self.sealer.lock().unwrap().as_ref().unwrap().1.clone();
            let waited = tracker.returned(&call_id, &r);
            self.returns.lock().unwrap().push((call_id, waited));
        });
    }
}

#[async_trait]
impl WorkerHandle for Arc<Machine> {
    async fn prepare(&self, _call: &TaskCall) -> Result<(), TaskError> {
        Ok(())
    }
    async fn execute(&self, call_id: &str, call: TaskCall, _place: Option<Place>) -> TaskResult {
        let tracker = self.sealer.lock().unwrap().as_ref().unwrap().1.clone();
        let waiting = tracker.wait(call_id);
        self.asked.lock().unwrap().push(call_id.to_string());
        let new = {
            let mut g = self.taken.lock().unwrap();
            let new = !g.iter().any(|(id, _)| id == call_id);
            if new {
                g.push((call_id.to_string(), call.task()));
            }
            new
        };
        if new {
            self.clone().run(call_id.to_string(), call);
        }
        waiting.await
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
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
    let n = c.pledge();
    c.wait_state(n, SectorState::FailedUnrecoverable).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_out_of_room_refuses_and_the_sector_proceeds_once_a_path_is_attached() {
    // A 64 KiB seal path, as the sealer last heard of it, room for a 2KiB sector's sealing; since
    // then 40 KiB of it filled up (the index hears of that only at the next heartbeat). AP's
    // unsealed 2 KiB still fits, PC1's sealed file and cache (30,924 bytes, as lotus counts
    // them) do not: the worker refuses PC1.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let paths = [("small", true, Some(64 << 10)), ("store", false, None)];
    let life = Life::start_with(dir.path(), db, &paths).await;
    std::fs::write(dir.path().join("small/cache/filler"), vec![1u8; 40 << 10]).unwrap();
    life.add("local", Arc::new(life.local_worker()), true);
    let n = life.pledge();
    // The worker refuses PC1 for want of room, again after each cool-down: nothing is spent.
    let refusals = until("two refusals", || {
        let s = life.sectors.get_full(n).ok()?;
        let failed = logged(&s, "SectorFailed");
        (failed.len() >= 2).then_some(failed)
    })
    .await;
    let small = dir.path().join("small").display().to_string();
    for f in &refusals {
        assert!(f.contains("[out of space]"), "{f}");
        // The refusal names the path, what is left and what PC1 needs.
        assert!(f.contains(&small) && f.contains("30924"), "{f}");
    }
    assert_eq!(life.sectors.get_full(n).unwrap().retries, 0);
    life.attach("big", true, None).await;
    let s = life.wait_state(n, SectorState::Proving).await;
    assert_eq!(s.retries, 0);
    assert!(logged(&s, "SectorFailed")
        .iter()
        .all(|f| f.contains("[out of space]")));
    assert!(logged(&s, "SectorRetry")
        .iter()
        .all(|r| r.contains("no retry spent")));
    assert_eq!(logged(&s, "SectorPreCommit1").len(), 1, "{:?}", s.log);
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
    let messages = chain::devnet::stored_messages(&c.db).unwrap();
    let precommits = messages
        .iter()
        .filter(|m| m.message.method_num == lotus::miner::Method::PreCommitSectorBatch2.number())
        .count();
    assert_eq!(precommits, 1, "{messages:?}");
}

#[test]
fn a_step_running_on_a_worker_across_a_sealer_restart_is_taken_up_not_run_again() {
    let machine_rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let m = Machine::new(
        "w1",
        machine_rt.handle().clone(),
        Some((TaskType::PreCommit1, None)),
    );

    // First run: PC1 goes to the worker, which does the work; the sealer stops before the
    // result comes back (its runtime, with every task of it, is dropped).
    let first = runtime();
    let (n, call_id) = first.block_on(async {
        let life = Life::start(dir.path(), db.clone()).await;
        life.connect(&m);
        let n = life.pledge();
        (n, m.wait_held().await)
    });
    first.shutdown_timeout(Duration::from_secs(5));

    // Second run on the same directory and database: the step finds the call's record and
    // waits for that call instead of running PC1 again.
    let second = runtime();
    second.block_on(async {
        let life = Life::start(dir.path(), db.clone()).await;
        assert_eq!(life.sectors.state(n), Some(SectorState::PreCommit1));
        life.connect(&m);
        life.pipeline.resume_all();
        // The re-attached step has asked the worker for the same call ID again.
        until("the step to re-attach", || {
            let asked = m.asked.lock().unwrap();
            (asked.iter().filter(|id| **id == call_id).count() == 2).then_some(())
        })
        .await;
        let sector = life.sectors.get_full(n).unwrap().sector;
        let rec = life
            .manager
            .calls()
            .find(&Subject::Sector(sector), TaskType::PreCommit1);
        assert_eq!(rec.unwrap().unwrap().call_id, call_id);
        // Not queued again: `sealing jobs` shows it running on its worker, as it is.
        let jobs = life.manager.jobs();
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_eq!(
            (jobs[0].task, jobs[0].state.as_str()),
            (TaskType::PreCommit1, "running")
        );
        assert_eq!(jobs[0].hostname, "w1");
        m.release.add_permits(1);
        let s = life.wait_state(n, SectorState::Proving).await;
        assert_eq!(m.taken(TaskType::PreCommit1), vec![call_id.clone()]);
        assert_eq!(m.returned(&call_id), Some(true), "the result was not taken");
        assert!(logged(&s, "SectorFailed").is_empty(), "{:?}", s.log);
        assert_eq!(logged(&s, "SectorPreCommit1").len(), 1, "{:?}", s.log);
        assert_eq!(s.retries, 0);
        assert_eq!(life.manager.calls().counts(), (0, 0));
    });
    second.shutdown_timeout(Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_that_comes_back_after_its_worker_was_given_up_changes_nothing() {
    let c = bare().await;
    // What the lost worker's PC1 finally returns: an output PC2 could not use.
    let garbage = proofs::PhaseOutput {
        engine: proofs::EngineKind::Mock,
        data: vec![0xde, 0xad],
    };
    let stale = Ok(TaskOutput::PreCommit1(garbage.clone()));
    let a = Machine::new(
        "a",
        tokio::runtime::Handle::current(),
        Some((TaskType::PreCommit1, Some(stale.clone()))),
    );
    let ida = c.connect(&a);
    let n = c.pledge();
    let stale_id = a.wait_held().await;

    // The worker is given up (as the heartbeat does after LOST_AFTER of silence); another one
    // takes the step at once.
    let b = Machine::new("b", tokio::runtime::Handle::current(), None);
    c.connect(&b);
    c.manager.remove_worker(ida, "lost in the test");
    c.manager
        .calls()
        .lost(std::slice::from_ref(&stale_id), "lost in the test");
    until("PC1 on b", || b.taken(TaskType::PreCommit1).pop()).await;

    // The lost worker comes back with its result: nobody takes it.
    a.release.add_permits(1);
    until("the stale WorkerReturn", || a.returned(&stale_id)).await;
    assert_eq!(a.returned(&stale_id), Some(false));
    assert!(!c.manager.calls().returned(&stale_id, &stale));

    let s = c.wait_state(n, SectorState::Proving).await;
    let failed = logged(&s, "SectorFailed");
    assert_eq!(failed.len(), 1, "{:?}", s.log);
    assert!(failed[0].contains("[worker lost]"), "{failed:?}");
    assert_eq!(logged(&s, "SectorPreCommit1").len(), 1, "{:?}", s.log);
    assert_ne!(s.pc1, Some(garbage));
    assert_eq!(s.retries, 0);
    assert_eq!(c.manager.calls().counts(), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_running_step_is_retried_only_once_its_call_has_ended() {
    let c = bare().await;
    let m = Machine::new(
        "w",
        tokio::runtime::Handle::current(),
        Some((TaskType::PreCommit1, None)),
    );
    c.connect(&m);
    let n = c.pledge();
    let aborted = m.wait_held().await;
    let job = c
        .manager
        .jobs()
        .into_iter()
        .find(|j| j.task == TaskType::PreCommit1)
        .unwrap();
    c.manager.abort(job.id).unwrap();
    assert!(matches!(
        c.manager.abort(job.id),
        Err(crate::manager::AbortError::NoJob(_))
    ));

    // After its cool-down the sector submits PC1 again. The worker still runs the aborted
    // call: the retry is placed, but does not start beside it on the same sector's files.
    c.wait_state(n, SectorState::PreCommit1).await;
    until("the retry to be placed", || {
        c.manager
            .jobs()
            .into_iter()
            // Its prepare stage waits for the sector's lock (a fetch writes its files too).
            .find(|j| j.task == TaskType::PreCommit1 && j.id != job.id && j.state == "preparing")
    })
    .await;
    assert_eq!(m.taken(TaskType::PreCommit1), vec![aborted.clone()]);

    m.release.add_permits(1);
    let s = c.wait_state(n, SectorState::Proving).await;
    let pc1 = m.taken(TaskType::PreCommit1);
    assert_eq!(pc1.len(), 2, "{pc1:?}");
    assert_eq!(
        m.busy.lock().unwrap().1,
        1,
        "two calls of one sector ran at once"
    );
    // The aborted call's result ended the wait that held the sector's lock; the sector did
    // not use it (one PC1 in its log, the retry's).
    assert_eq!(m.returned(&aborted), Some(true));
    let failed = logged(&s, "SectorFailed");
    assert_eq!(failed.len(), 1, "{:?}", s.log);
    assert!(failed[0].contains("[aborted]"), "{failed:?}");
    assert_eq!(logged(&s, "SectorPreCommit1").len(), 1, "{:?}", s.log);
    assert_eq!(c.manager.calls().counts(), (0, 0));
}

/// A chain client whose first `lose` sends reach the node while their answers are lost (the
/// connection cut after MpoolPushMessage): the sender cannot know the message went. While
/// `forge` is set, it reports active sectors with another commR. With `refuse_batches`, a
/// pre-commit of several sectors is refused (as a pool refuses a message one of whose
/// sectors the actor would reject).
struct LostAnswers {
    inner: Arc<dyn Chain>,
    lose: std::sync::atomic::AtomicU32,
    forge: Arc<std::sync::atomic::AtomicBool>,
    refuse_batches: bool,
}

#[async_trait]
impl Chain for LostAnswers {
    fn mode(&self) -> &'static str {
        self.inner.mode()
    }
    async fn head(&self) -> Result<api::ChainHead, ChainError> {
        self.inner.head().await
    }
    async fn wait_epoch(&self, epoch: i64) -> Result<api::ChainHead, ChainError> {
        self.inner.wait_epoch(epoch).await
    }
    async fn randomness(&self, kind: RandKind, epoch: i64) -> Result<Randomness, ChainError> {
        self.inner.randomness(kind, epoch).await
    }
    fn precommit_challenge_delay(&self) -> i64 {
        self.inner.precommit_challenge_delay()
    }
    fn max_ticket_age(&self) -> i64 {
        self.inner.max_ticket_age()
    }
    async fn ensure_miner(&self, actor: u64, size: SectorSize) -> Result<(), ChainError> {
        self.inner.ensure_miner(actor, size).await
    }
    async fn send(
        &self,
        from: chain::Address,
        call: Call,
        value: chain::TokenAmount,
        max_fee: chain::TokenAmount,
    ) -> Result<String, ChainError> {
        let batch = call
            .decode::<lotus::miner::PreCommitSectorBatchParams2>()
            .is_some_and(|p| p.sectors.len() > 1);
        if self.refuse_batches && batch {
            return Err(ChainError::Other("the pool refused the batch".into()));
        }
        let id = self.inner.send(from, call, value, max_fee).await?;
        let lost = self
            .lose
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if lost {
            return Err(ChainError::Other(format!(
                "the answer to sending {id} was lost"
            )));
        }
        Ok(id)
    }
    async fn addresses(&self) -> Result<chain::MinerAddresses, ChainError> {
        self.inner.addresses().await
    }
    async fn wallet_has(&self, key: &chain::Address) -> Result<bool, ChainError> {
        self.inner.wallet_has(key).await
    }
    fn network(&self) -> String {
        self.inner.network()
    }
    async fn balance(&self, of: &chain::Address) -> Result<chain::TokenAmount, ChainError> {
        self.inner.balance(of).await
    }
    async fn precommit_deposit(
        &self,
        pc: &chain::calls::PreCommitSpec,
    ) -> Result<chain::TokenAmount, ChainError> {
        self.inner.precommit_deposit(pc).await
    }
    async fn initial_pledge(&self, duration: i64) -> Result<chain::TokenAmount, ChainError> {
        self.inner.initial_pledge(duration).await
    }
    async fn funds(&self) -> Result<chain::MinerFunds, ChainError> {
        self.inner.funds().await
    }
    async fn available_balance(&self) -> Result<chain::TokenAmount, ChainError> {
        self.inner.available_balance().await
    }
    async fn pending(&self, m: lotus::miner::Method, n: u64) -> Result<Option<String>, ChainError> {
        self.inner.pending(m, n).await
    }
    async fn receipt(&self, id: &str) -> Result<Option<Receipt>, ChainError> {
        self.inner.receipt(id).await
    }
    async fn precommit(&self, s: &SectorRef) -> Result<Option<PreCommitOnChain>, ChainError> {
        self.inner.precommit(s).await
    }
    async fn active_sector(&self, s: &SectorRef) -> Result<Option<ActiveSector>, ChainError> {
        let mut a = self.inner.active_sector(s).await?;
        if let Some(a) = a.as_mut().filter(|_| self.forge.load(SeqCst)) {
            a.comm_r[0] ^= 0xff;
        }
        Ok(a)
    }
    async fn power(&self, actor: u64) -> Result<api::MinerPower, ChainError> {
        self.inner.power(actor).await
    }
    fn wpost_window(&self) -> i64 {
        self.inner.wpost_window()
    }
    async fn proving_deadline(&self, actor: u64) -> Result<DeadlineInfo, ChainError> {
        self.inner.proving_deadline(actor).await
    }
    async fn deadline(&self, actor: u64, index: u64) -> Result<DeadlineState, ChainError> {
        self.inner.deadline(actor, index).await
    }
    async fn election(
        &self,
        actor: u64,
        epoch: i64,
    ) -> Result<Option<chain::Election>, ChainError> {
        self.inner.election(actor, epoch).await
    }
    async fn winning_sectors(
        &self,
        actor: u64,
        epoch: i64,
    ) -> Result<Vec<api::tasks::PoStTarget>, ChainError> {
        self.inner.winning_sectors(actor, epoch).await
    }
    async fn submit_block(
        &self,
        actor: u64,
        epoch: i64,
        won: &chain::Election,
        proof: Vec<u8>,
    ) -> Result<(), ChainError> {
        self.inner.submit_block(actor, epoch, won, proof).await
    }
    async fn tally(&self, actor: u64) -> Result<Option<MinerTally>, ChainError> {
        self.inner.tally(actor).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_whose_answer_was_lost_is_found_not_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let paths = [("seal", true, None), ("store", false, None)];
    // The pre-commit's and the prove-commit's answers are lost.
    let life = Life::start_wrapped(dir.path(), db.clone(), &paths, |inner| {
        Arc::new(LostAnswers {
            inner,
            lose: 2.into(),
            forge: Default::default(),
            refuse_batches: false,
        })
    })
    .await;
    life.add("local", Arc::new(life.local_worker()), true);
    let s = life.seal_one().await;
    let failed = logged(&s, "SectorFailed");
    assert_eq!(failed.len(), 2, "{:?}", s.log);
    assert!(failed.iter().all(|f| f.contains("was lost")), "{failed:?}");
    let sent = chain::devnet::stored_messages(&db).unwrap();
    let count = |m: lotus::miner::Method| {
        sent.iter()
            .filter(|x| x.message.method_num == m.number())
            .count()
    };
    assert_eq!(
        (
            count(lotus::miner::Method::PreCommitSectorBatch2),
            count(lotus::miner::Method::ProveCommitSectors3)
        ),
        (1, 1),
        "{:?}",
        s.log
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuilt_replica_whose_comm_r_is_not_the_chains_fails_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let paths = [("seal", true, None), ("store", false, None)];
    let forge: Arc<std::sync::atomic::AtomicBool> = Default::default();
    let f = forge.clone();
    let life = Life::start_wrapped(dir.path(), db, &paths, |inner| {
        Arc::new(LostAnswers {
            inner,
            lose: 0.into(),
            forge: f,
            refuse_batches: false,
        })
    })
    .await;
    life.add("local", Arc::new(life.local_worker()), true);
    let s = life.seal_one().await;
    let n = s.sector.number;
    forge.store(true, SeqCst);
    life.pipeline.rebuild(n).unwrap();
    let failed = life.wait_state(n, SectorState::RebuildFailed).await;
    let ours = chain::hex(&s.comms.unwrap().comm_r);
    let mut theirs = s.comms.unwrap().comm_r;
    theirs[0] ^= 0xff;
    let want = format!(
        "the rebuilt replica of sector {n} has commR {ours}, its active sector on chain has {}",
        chain::hex(&theirs)
    );
    assert!(failed.last_error.contains(&want), "{}", failed.last_error);
    assert_eq!(failed.failed_kind, ErrorKind::BadInput);
    // The chain agrees again: the retry (PC1 then PC2) goes through to Proving.
    forge.store(false, SeqCst);
    let s = life.wait_state(n, SectorState::Proving).await;
    assert_eq!(logged(&s, "SectorRebuilt").len(), 1, "{:?}", s.log);

    // Only a sector with a replica can be rebuilt, and the refusal says why.
    let e = life.pipeline.rebuild(99).unwrap_err().to_string();
    assert_eq!(e, "sector 99 not found");
    life.manager
        .set_enabled(life.workers.lock().unwrap()[0], false);
    let m = life.pledge();
    let e = life.pipeline.rebuild(m).unwrap_err().to_string();
    assert!(e.contains(&format!("sector {m} is Packing")), "{e}");
}

/// Sends `amount` from the node's wallet's default address (the devnet's faucet) to the
/// miner's worker, over the node's API as `lotus send` does.
async fn send_funds(life: &Life, amount: chain::TokenAmount) {
    send_funds_to(life, lotus::Address::new_id(100), amount).await
}

/// A new BLS key in the node's wallet (`lotus wallet new bls`): its account's ID address (the
/// devnet makes the account at once, numbered from t0102 in the order keys are made).
async fn new_account(life: &Life) -> lotus::Address {
    let node = api::Client::new_at(
        &life._node.info,
        api::fullnode::PATH,
        Duration::from_secs(5),
    );
    let key = node
        .request::<api::fullnode::WalletNew>(("bls".to_string(),))
        .await
        .unwrap()
        .0;
    for n in 102..120 {
        let a = lotus::Address::new_id(n);
        let k = node
            .request::<api::fullnode::StateAccountKey>((
                lotus::json::wire::Addr(a),
                Default::default(),
            ))
            .await;
        if k.is_ok_and(|k| k.0 == key) {
            return a;
        }
    }
    panic!("no account for {key}");
}

async fn send_funds_to(life: &Life, to: lotus::Address, amount: chain::TokenAmount) {
    let node = api::Client::new_at(
        &life._node.info,
        api::fullnode::PATH,
        Duration::from_secs(5),
    );
    let from = node
        .request::<api::fullnode::WalletDefaultAddress>(())
        .await
        .unwrap()
        .0;
    let m = lotus::Call::transfer().message(from, to, amount);
    node.request::<api::fullnode::MpoolPushMessage>((lotus::json::MessageJson::from(&m), None))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_short_of_funds_waits_without_spending_retries_and_goes_on_once_paid() {
    let opts = Opts {
        worker_funds: Default::default(),
        ..Default::default()
    };
    let life = cluster_with(opts).await;
    let fil = |s: &str| lotus::json::parse_fil(s).unwrap();
    let n = life.pledge();
    // The pre-commit needs its deposit (the miner's balance is empty) and its MaxFee.
    let s = until("the pre-commit to wait for funds", || {
        let s = life.sectors.get_full(n).unwrap();
        s.waiting.clone().map(|w| (s, w))
    })
    .await;
    let (s, why) = s;
    assert_eq!(s.state, SectorState::PreCommitting);
    for part in [
        "the pre-commit of sector 1 needs 0.045 FIL: 0.02 FIL of its 0.02 FIL deposit",
        "0.025 FIL of gas (MaxPreCommitGasFee); no sender has it: the worker t0100 (t3",
        ") has 0 FIL; send FIL to one of them",
    ] {
        assert!(why.contains(part), "{part:?} not in {why:?}");
    }
    // It waits as epochs pass, without failing or spending a retry, and says so once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = life.sectors.get_full(n).unwrap();
    assert_eq!((s.state, s.retries), (SectorState::PreCommitting, 0));
    assert_eq!(logged(&s, "SectorWaiting"), vec![why.clone()]);

    // Enough for the pre-commit, not for the prove-commit's pledge (0.05 FIL less the 0.02
    // deposit it releases) and MaxFee: the sector goes on and waits again there.
    send_funds(&life, fil("0.05")).await;
    let s = until("the prove-commit to wait for funds", || {
        let s = life.sectors.get_full(n).unwrap();
        (s.state == SectorState::SubmitCommit && s.waiting.is_some()).then_some(s)
    })
    .await;
    let why = s.waiting.clone().unwrap();
    assert!(
        why.contains("prove-commit of sector 1 needs 0.08 FIL")
            && why.contains("0.03 FIL of its 0.03 FIL pledge")
            && why.contains("(MaxCommitGasFee)"),
        "{why}"
    );
    send_funds(&life, fil("1")).await;
    let s = life.wait_state(n, SectorState::Proving).await;
    assert!(logged(&s, "SectorFailed").is_empty(), "{:?}", s.log);
    assert_eq!(s.waiting, None);
    assert_eq!(logged(&s, "SectorWaiting").len(), 2, "{:?}", s.log);

    // The deposit came as the pre-commit's value and was released; the pledge is locked.
    let node = FullNode::connect(&life._node.info, 1000).await.unwrap();
    let f = node.funds().await.unwrap();
    assert_eq!(
        (f.precommit_deposits, f.initial_pledge, f.available),
        (Default::default(), fil("0.05"), Default::default())
    );
}

/// The key address each of the sealer's messages of `method` was sent from.
fn senders_of(db: &Db, method: lotus::miner::Method) -> Vec<lotus::Address> {
    chain::devnet::stored_messages(db)
        .unwrap()
        .iter()
        .filter(|m| m.message.method_num == method.number())
        .map(|m| m.message.from)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_go_from_their_control_addresses_else_the_worker_or_they_wait() {
    use lotus::miner::Method::{PreCommitSectorBatch2, ProveCommitSectors3};
    let fil = |s: &str| lotus::json::parse_fil(s).unwrap();
    // [Addresses] PreCommitControl = ["t0102"], CommitControl = ["t0103"], no fallback.
    let (p, c) = (lotus::Address::new_id(102), lotus::Address::new_id(103));
    let policy = |fallback: bool| crate::funds::Policy {
        senders: crate::funds::Senders {
            pre_commit: vec![p],
            commit: vec![c],
            disable_worker_fallback: !fallback,
            disable_owner_fallback: !fallback,
            ..Default::default()
        },
        ..Default::default()
    };
    let opts = Opts {
        policy: policy(false),
        ..Default::default()
    };
    let life = cluster_with(opts).await;
    let node = FullNode::connect(&life._node.info, 1000).await.unwrap();
    assert_eq!((new_account(&life).await, new_account(&life).await), (p, c));
    crate::funds::set_control(&node, vec![p, c]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while node.addresses().await.unwrap().control.len() != 2 {
        assert!(Instant::now() < deadline, "control addresses not set");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let keys = node.addresses().await.unwrap();
    let (p_key, c_key) = (keys.control[0].key, keys.control[1].key);
    send_funds_to(&life, c, fil("1")).await;

    // The pre-commit's sender has nothing and the worker is not a fallback: it waits, saying so.
    let n = life.pledge();
    let why = until("the pre-commit to wait for its sender", || {
        life.sectors.get_full(n).unwrap().waiting
    })
    .await;
    assert!(
        why.contains("no sender has it: the PreCommitControl t0102 (")
            && why.contains(") has 0 FIL (the worker is not tried: DisableWorkerFallback)"),
        "{why}"
    );
    send_funds_to(&life, p, fil("1")).await;
    let s = life.wait_state(n, SectorState::Proving).await;
    assert_eq!(s.retries, 0);
    assert_eq!(senders_of(&life.db, PreCommitSectorBatch2), vec![p_key]);
    assert_eq!(senders_of(&life.db, ProveCommitSectors3), vec![c_key]);
    let rows = crate::funds::control_rows(&node, &policy(false).senders)
        .await
        .unwrap();
    let uses: Vec<(String, Vec<String>)> = rows
        .iter()
        .map(|r| (r.name.clone(), r.uses.clone()))
        .collect();
    assert_eq!(
        uses,
        vec![
            // The genesis miner's owner is its worker.
            ("owner".to_string(), vec!["post".to_string()]),
            ("worker".to_string(), vec!["post".to_string()]),
            ("control-0".to_string(), vec!["precommit".to_string()]),
            ("control-1".to_string(), vec!["commit".to_string()]),
        ]
    );
    drop(life);

    // With the worker as fallback, an empty control address is passed over for the worker.
    let opts = Opts {
        policy: policy(true),
        ..Default::default()
    };
    let life = cluster_with(opts).await;
    let node = FullNode::connect(&life._node.info, 1000).await.unwrap();
    assert_eq!(new_account(&life).await, p);
    crate::funds::set_control(&node, vec![p]).await.unwrap();
    while node.addresses().await.unwrap().control.is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    life.seal_one().await;
    let worker = node.addresses().await.unwrap().worker.key;
    assert_eq!(senders_of(&life.db, PreCommitSectorBatch2), vec![worker]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_too_old_to_pre_commit_gets_a_fresh_one_and_the_sector_is_sealed_again() {
    // Tickets may be 50 epochs old (500 ms here); the first PC2 takes 1.5 s longer.
    let opts = Opts {
        max_ticket_age: 50,
        ..Default::default()
    };
    let life = bare_with(opts).await;
    let slow = SlowOnce {
        inner: life.local_worker(),
        task: TaskType::PreCommit2,
        delay: Mutex::new(Some(Duration::from_millis(1500))),
    };
    life.add("local", Arc::new(slow), true);
    let s = life.seal_one().await;
    let expired = logged(&s, "SectorTicketExpired");
    assert_eq!(expired.len(), 1, "{:?}", s.log);
    assert!(
        expired[0].contains("is too old to pre-commit")
            && expired[0].contains("(MaxPreCommitRandomnessLookback 50)"),
        "{expired:?}"
    );
    // Two tickets, PC1 and PC2 twice, one pre-commit: on the second ticket.
    assert_eq!(logged(&s, "SectorTicket").len(), 2, "{:?}", s.log);
    assert_eq!(logged(&s, "SectorPreCommit2").len(), 2, "{:?}", s.log);
    assert!(logged(&s, "SectorFailed").is_empty(), "{:?}", s.log);
    let sent = chain::devnet::stored_messages(&life.db).unwrap();
    let pcs: Vec<_> = sent
        .iter()
        .filter(|m| m.message.method_num == lotus::miner::Method::PreCommitSectorBatch2.number())
        .collect();
    assert_eq!(pcs.len(), 1);
    let p: lotus::miner::PreCommitSectorBatchParams2 =
        lotus::fvm_ipld_encoding::from_slice(&pcs[0].message.params).unwrap();
    assert_eq!(p.sectors[0].seal_rand_epoch, s.ticket.unwrap().0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_commit_that_expires_before_its_proof_removes_the_sector() {
    // A pre-commit may be proven for 30 epochs (300 ms here); the first C2 takes 1.5 s longer.
    let opts = Opts {
        max_prove_commit_duration: 30,
        ..Default::default()
    };
    let life = bare_with(opts).await;
    let slow = SlowOnce {
        inner: life.local_worker(),
        task: TaskType::Commit2,
        delay: Mutex::new(Some(Duration::from_millis(1500))),
    };
    life.add("local", Arc::new(slow), true);
    let n = life.pledge();
    let s = life.wait_state(n, SectorState::Removed).await;
    let expired = logged(&s, "SectorPreCommitExpired");
    assert_eq!(expired.len(), 1, "{:?}", s.log);
    // Found expired on chain, or already removed by the chain (both happen at the epoch it
    // can no longer be proven).
    assert!(
        (expired[0].contains("(MaxProveCommitDuration 30)")
            || expired[0].contains("expired unproven and the chain removed it"))
            && expired[0].contains("its number cannot be pre-committed again"),
        "{expired:?}"
    );
    // No proof sent for it, no retry spent, its deposit burnt and its files gone.
    assert!(logged(&s, "SectorFailed").is_empty(), "{:?}", s.log);
    use lotus::miner::Method::{PreCommitSectorBatch2, ProveCommitSectors3};
    assert_eq!(senders_of(&life.db, PreCommitSectorBatch2).len(), 1);
    assert_eq!(senders_of(&life.db, ProveCommitSectors3).len(), 0);
    let node = FullNode::connect(&life._node.info, 1000).await.unwrap();
    let f = node.funds().await.unwrap();
    assert_eq!(f.precommit_deposits, chain::TokenAmount::default());
    let found = life
        .remote
        .locate(s.sector.id(), stores::FileTypes::ALL)
        .await
        .unwrap();
    assert!(found.local.is_empty() && found.fetchable.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_that_drops_the_pre_commit_or_the_prove_commit_has_it_sent_again() {
    use chain::devnet::Reverted;
    // 50 ms epochs: a message is 250 ms from landed to five epochs deep. Tickets are drawn 5
    // epochs back, where the reorgs below do not reach.
    let opts = Opts {
        block_delay: Duration::from_millis(50),
        ticket_lookback: 5,
        ..Default::default()
    };
    let life = cluster_with(opts).await;
    until("epoch 5", || {
        (life.devnet.head().unwrap().height >= 5).then_some(())
    })
    .await;
    let n = life.pledge();
    // The pre-commit lands; three epochs are taken back before it is five deep, and its
    // message with them (the pool lost it).
    until("the pre-commit on chain", || {
        life.devnet.precommit(1000, n).ok().flatten()
    })
    .await;
    let gone = life.devnet.revert(3, Reverted::Dropped).await.unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(life.devnet.precommit(1000, n).unwrap(), None);
    // The same for the prove-commit: the sector was active, and is not any more.
    let deadline = Instant::now() + Duration::from_secs(30);
    while life.devnet.sector(1000, n).unwrap().is_none() {
        let s = life.sectors.get_full(n).unwrap();
        assert!(Instant::now() < deadline, "not active: {:#?}", s.log);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    life.devnet.revert(3, Reverted::Dropped).await.unwrap();
    assert_eq!(life.devnet.sector(1000, n).unwrap(), None);
    let s = life.wait_state(n, SectorState::Proving).await;
    let dropped = logged(&s, "SectorMessageDropped");
    assert_eq!(dropped.len(), 2, "{:?}", s.log);
    // Seen landed before the reorg or not, the message is named and sent again.
    assert!(
        dropped
            .iter()
            .all(|d| d.starts_with("message bafy") && d.ends_with("sent again")),
        "{dropped:?}"
    );
    assert_eq!(logged(&s, "SectorPreCommitted").len(), 2, "{:?}", s.log);
    assert_eq!(logged(&s, "SectorCommitSubmitted").len(), 2, "{:?}", s.log);
    assert!(logged(&s, "SectorFailed").is_empty(), "{:?}", s.log);
    assert!(life.devnet.sector(1000, n).unwrap().is_some());

    // A reorg that puts the prove-commit back in the pool: it lands again, nothing is resent.
    let n = life.pledge();
    until("the second sector active", || {
        life.devnet.sector(1000, n).ok().flatten()
    })
    .await;
    life.devnet.revert(2, Reverted::BackToPool).await.unwrap();
    let s = life.wait_state(n, SectorState::Proving).await;
    assert_eq!(logged(&s, "SectorCommitSubmitted").len(), 1, "{:?}", s.log);
    assert!(logged(&s, "SectorMessageDropped").is_empty(), "{:?}", s.log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_commit_replaced_in_the_pool_is_followed_to_its_replacement() {
    // A MaxPreCommitGasFee so low that the pre-commit's fee cap is under the base fee: it
    // stays in the pool until the operator replaces it with a higher fee.
    let mut policy = crate::funds::Policy::default();
    policy.fees.pre_commit = chain::TokenAmount::from_atto(1);
    let opts = Opts {
        policy,
        ..Default::default()
    };
    let life = cluster_with(opts).await;
    let n = life.pledge();
    let stuck =
        until("the pre-commit in the pool", || {
            life.devnet.pending().ok()?.into_iter().find(|m| {
                m.message.method_num == lotus::miner::Method::PreCommitSectorBatch2.number()
            })
        })
        .await;
    // It waits there, several epochs, without failing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s = life.sectors.get_full(n).unwrap();
    assert_eq!(s.state, SectorState::PreCommitWait, "{:?}", s.log);
    // `lotus mpool replace`: the same message, nonce and all, with a fee that covers the base fee.
    let premium = chain::TokenAmount::from_atto(1_000);
    let new = life
        .devnet
        .replace(
            &stuck.cid(),
            chain::TokenAmount::from_atto(100_000),
            premium.clone(),
        )
        .await
        .unwrap();
    let s = life.wait_state(n, SectorState::Proving).await;
    assert_eq!(s.precommit_msg, Some(new.cid().to_string()));
    let followed = logged(&s, "SectorMessageReplaced");
    assert_eq!(followed.len(), 1, "{:?}", s.log);
    assert!(
        followed[0].contains(&stuck.cid().to_string()) && followed[0].contains("following it"),
        "{followed:?}"
    );
    assert!(logged(&s, "SectorFailed").is_empty(), "{:?}", s.log);
    // A message that landed is not replaced.
    let e = life
        .devnet
        .replace(&new.cid(), chain::TokenAmount::from_atto(100_000), premium)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("has landed already"), "{e}");
}

#[path = "batch_tests.rs"]
mod batch_tests;
