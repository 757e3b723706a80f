//! The WindowPoSt scheduler in-process, against a fake chain (a head moved by hand, deadlines
//! and active sectors set by the test, messages recorded and landed at once) and a scripted
//! worker behind the real manager and scheduler.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;

use api::tasks::{ErrorKind, TaskResult};
use api::{ChainHead, MinerPower};
use async_trait::async_trait;
use chain::{
    deadline_at, ActiveSector, DeadlineState, MinerTally, Partition, PreCommitOnChain, Receipt,
};
use proofs::Randomness;
use resources::topology::Place;
use resources::{SealProof, SectorRef, TaskType};
use sched::{SchedConfig, Scheduler};
use stores::MemIndex;

use super::*;
use crate::calls::CallTracker;
use crate::manager::WorkerHandle;

const WINDOW: i64 = 10;
const ACTOR: u64 = 1000;

#[derive(Default)]
struct ChainState {
    head: i64,
    deadlines: Vec<DeadlineState>,
    sectors: HashMap<u64, ActiveSector>,
    pushed: Vec<Call>,
}

struct FakeChain {
    st: Mutex<ChainState>,
    head_tx: tokio::sync::watch::Sender<i64>,
}

impl FakeChain {
    fn new() -> Arc<FakeChain> {
        let st = ChainState {
            deadlines: vec![DeadlineState::default(); DEADLINES as usize],
            ..Default::default()
        };
        Arc::new(FakeChain {
            st: Mutex::new(st),
            head_tx: tokio::sync::watch::channel(0).0,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ChainState> {
        self.st.lock().unwrap()
    }

    /// Puts `sectors` in one partition of deadline `index`, `faults` of them faulty.
    fn place(&self, index: u64, sectors: &[u64], faults: &[u64]) {
        self.place_partitions(index, &[sectors.to_vec()], SealProof::StackedDrg2KiBV1_1);
        self.lock().deadlines[index as usize].partitions[0].faults =
            faults.iter().copied().collect();
    }

    /// Puts `partitions` (each a list of sectors) in deadline `index`.
    fn place_partitions(&self, index: u64, partitions: &[Vec<u64>], proof: SealProof) {
        let mut g = self.lock();
        g.deadlines[index as usize].partitions = partitions
            .iter()
            .map(|p| Partition {
                sectors: p.iter().copied().collect(),
                faults: BTreeSet::new(),
                recoveries: BTreeSet::new(),
            })
            .collect();
        for (i, p) in partitions.iter().enumerate() {
            for n in p {
                let sector = SectorRef::new(ACTOR, *n, proof);
                let a = ActiveSector {
                    sector,
                    comm_r: [*n as u8; 32],
                    activation: 0,
                    expiration: 0,
                    deadline: index,
                    partition: i,
                    initial_pledge: Default::default(),
                };
                g.sectors.insert(*n, a);
            }
        }
    }

    fn set_head(&self, epoch: i64) {
        self.lock().head = epoch;
        self.head_tx.send_replace(epoch);
    }

    fn pushed(&self) -> Vec<Call> {
        self.lock().pushed.clone()
    }
}

#[async_trait]
impl Chain for FakeChain {
    fn mode(&self) -> &'static str {
        "fake"
    }
    async fn head(&self) -> Result<ChainHead, ChainError> {
        Ok(ChainHead {
            height: self.lock().head,
            timestamp_ms: 0,
            block_delay_ms: 0,
            ..Default::default()
        })
    }
    async fn wait_epoch(&self, epoch: i64) -> Result<ChainHead, ChainError> {
        let mut rx = self.head_tx.subscribe();
        let _ = rx.wait_for(|h| *h >= epoch).await;
        self.head().await
    }
    async fn randomness(&self, _kind: RandKind, epoch: i64) -> Result<Randomness, ChainError> {
        Ok([epoch as u8; 32])
    }
    fn precommit_challenge_delay(&self) -> i64 {
        1
    }
    async fn ensure_miner(&self, _actor: u64, _size: SectorSize) -> Result<(), ChainError> {
        Ok(())
    }
    async fn send(
        &self,
        _from: chain::Address,
        msg: Call,
        _value: chain::TokenAmount,
        _max_fee: chain::TokenAmount,
    ) -> Result<String, ChainError> {
        let mut g = self.lock();
        g.pushed.push(msg);
        Ok(format!("msg{}", g.pushed.len()))
    }
    // WindowPoSt messages carry no value: this chain has money enough for their gas, and
    // nothing locked.
    async fn addresses(&self) -> Result<chain::MinerAddresses, ChainError> {
        let a = chain::Account {
            id: chain::Address::new_id(100),
            key: chain::Address::new_id(100),
        };
        Ok(chain::MinerAddresses {
            owner: a,
            worker: a,
            control: Vec::new(),
        })
    }
    async fn wallet_has(&self, _key: &chain::Address) -> Result<bool, ChainError> {
        Ok(true)
    }
    fn network(&self) -> String {
        "fake".into()
    }
    async fn balance(&self, _of: &chain::Address) -> Result<chain::TokenAmount, ChainError> {
        Ok(chain::TokenAmount::from_whole(1000))
    }
    async fn precommit_deposit(
        &self,
        _pc: &chain::calls::PreCommitSpec,
    ) -> Result<chain::TokenAmount, ChainError> {
        Ok(chain::TokenAmount::default())
    }
    async fn initial_pledge(&self, _duration: i64) -> Result<chain::TokenAmount, ChainError> {
        Ok(chain::TokenAmount::default())
    }
    async fn funds(&self) -> Result<chain::MinerFunds, ChainError> {
        Ok(chain::MinerFunds::default())
    }
    async fn available_balance(&self) -> Result<chain::TokenAmount, ChainError> {
        Ok(chain::TokenAmount::default())
    }
    async fn pending(&self, _: lotus::miner::Method, _: u64) -> Result<Option<String>, ChainError> {
        Ok(None)
    }
    async fn receipt(&self, _id: &str) -> Result<Option<Receipt>, ChainError> {
        Ok(Some(Receipt {
            epoch: self.lock().head,
            exit_code: 0,
            error: String::new(),
            replaced_by: None,
        }))
    }
    async fn precommit(&self, _s: &SectorRef) -> Result<Option<PreCommitOnChain>, ChainError> {
        Ok(None)
    }
    async fn active_sector(&self, s: &SectorRef) -> Result<Option<ActiveSector>, ChainError> {
        Ok(self.lock().sectors.get(&s.number).cloned())
    }
    async fn power(&self, _actor: u64) -> Result<MinerPower, ChainError> {
        Ok(MinerPower::default())
    }
    fn wpost_window(&self) -> i64 {
        WINDOW
    }
    async fn proving_deadline(&self, _actor: u64) -> Result<DeadlineInfo, ChainError> {
        Ok(deadline_at(self.lock().head, WINDOW))
    }
    async fn deadline(&self, _actor: u64, index: u64) -> Result<DeadlineState, ChainError> {
        Ok(self.lock().deadlines[index as usize].clone())
    }
    async fn election(
        &self,
        _actor: u64,
        _epoch: i64,
    ) -> Result<Option<chain::Election>, ChainError> {
        Ok(None)
    }
    async fn winning_sectors(
        &self,
        _actor: u64,
        _epoch: i64,
    ) -> Result<Vec<PoStTarget>, ChainError> {
        Ok(Vec::new())
    }
    async fn submit_block(
        &self,
        _: u64,
        _: i64,
        _: &chain::Election,
        _: Vec<u8>,
    ) -> Result<(), ChainError> {
        Ok(())
    }
    async fn tally(&self, _actor: u64) -> Result<Option<MinerTally>, ChainError> {
        Ok(None)
    }
}

/// A call a scripted worker took: a check or not, its sectors, when it started and ended.
type PostCall = (bool, Vec<u64>, std::time::Instant, std::time::Instant);

/// A PoSt worker whose proofs follow a script (then succeed), and whose checks name `bad`.
#[derive(Default)]
struct Scripted {
    proofs: Mutex<VecDeque<TaskResult>>,
    bad: Mutex<Vec<u64>>,
    /// The sectors of each proof call, in order.
    proved: Mutex<Vec<Vec<u64>>>,
    /// How long each call takes (a mock proof's time).
    delay: Duration,
    /// Each call: a check or not, its sectors, when it started and ended.
    calls: Mutex<Vec<PostCall>>,
}

#[async_trait]
impl WorkerHandle for Scripted {
    async fn prepare(&self, _call: &TaskCall) -> Result<(), TaskError> {
        Ok(())
    }
    async fn execute(&self, _call_id: &str, call: TaskCall, _place: Option<Place>) -> TaskResult {
        let TaskCall::WindowPoSt {
            sectors,
            check_only,
            ..
        } = call
        else {
            return Err(TaskError::temporary("not a WindowPoSt"));
        };
        let numbers: Vec<u64> = sectors.iter().map(|t| t.sector.number).collect();
        let started = std::time::Instant::now();
        tokio::time::sleep(self.delay).await;
        let ended = std::time::Instant::now();
        self.calls
            .lock()
            .unwrap()
            .push((check_only, numbers.clone(), started, ended));
        if check_only {
            let bad = self.bad.lock().unwrap().clone();
            let named = numbers.iter().filter(|n| bad.contains(n));
            return Ok(TaskOutput::Unprovable(
                named.map(|n| (*n, "unreadable".to_string())).collect(),
            ));
        }
        self.proved.lock().unwrap().push(numbers.clone());
        let next = self.proofs.lock().unwrap().pop_front();
        next.unwrap_or(Ok(TaskOutput::WindowPoSt(vec![7; 4])))
    }
}

/// Every sector is Proving here; none is rebuilt.
struct AllProving;

impl super::ProvingSectors for AllProving {
    fn busy(&self, _n: u64) -> bool {
        false
    }
    fn unprovable(&self, _n: u64, _why: &str) {}
}

fn scheduler(
    chain: &Arc<FakeChain>,
    worker: &Arc<Scripted>,
) -> (Arc<WindowPoSt>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = db::Db::open(dir.path()).unwrap();
    let manager = Manager::new(
        Scheduler::new(SchedConfig::default()),
        CallTracker::open(db).unwrap(),
    );
    manager.add_worker(
        sched::sim::spec("post", 64, 16, 0, &[TaskType::WindowPoSt]),
        worker.clone(),
        false,
    );
    let view = ClusterView::new(Arc::new(MemIndex::default()));
    let w = start(chain, manager, view, SectorSize::S2KiB);
    (w, dir)
}

/// The manager's dispatch and the WindowPoSt scheduler on `chain`, started.
fn start(
    chain: &Arc<FakeChain>,
    manager: Arc<Manager>,
    view: Arc<ClusterView>,
    size: SectorSize,
) -> Arc<WindowPoSt> {
    manager.spawn();
    let w = WindowPoSt::new(
        chain.clone() as Arc<dyn Chain>,
        Arc::new(AllProving),
        manager,
        view,
        ACTOR,
        size,
        crate::config::Fees::default().window_post,
        Default::default(),
    );
    w.spawn();
    w
}

/// Waits (10 s at most) until `f` gives something.
async fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn outcome(w: &WindowPoSt, index: u64, open: i64) -> Option<DeadlineRun> {
    w.runs().get(&index).filter(|r| r.open == open).cloned()
}

/// The deadline and sectors of declarations (all of one deadline).
fn declared(d: &[lotus::miner::SectorsDeclaration]) -> (u64, Vec<u64>) {
    let mut sectors: Vec<u64> = d.iter().flat_map(|x| x.sectors.iter()).collect();
    sectors.sort_unstable();
    (d[0].deadline, sectors)
}

fn submissions(chain: &FakeChain) -> Vec<(u64, Vec<usize>, Vec<u64>)> {
    chain
        .pushed()
        .into_iter()
        .filter_map(|m| {
            m.decode::<lotus::miner::SubmitWindowedPoStParams>()
                .map(|p| {
                    let parts = p.partitions.iter().map(|x| x.index as usize).collect();
                    let mut skipped: Vec<u64> =
                        p.partitions.iter().flat_map(|x| x.skipped.iter()).collect();
                    skipped.sort_unstable();
                    (p.deadline, parts, skipped)
                })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_sector_is_skipped_and_the_rest_proven() {
    let chain = FakeChain::new();
    chain.place(2, &[1, 2], &[]);
    let worker = Arc::new(Scripted::default());
    worker
        .proofs
        .lock()
        .unwrap()
        .push_back(Ok(TaskOutput::Unprovable(vec![(
            2,
            "no sealed file".into(),
        )])));
    let (w, _dir) = scheduler(&chain, &worker);
    chain.set_head(2 * WINDOW);
    let run = until("deadline 2 proven", || outcome(&w, 2, 20)).await;
    assert_eq!(
        (run.outcome.as_str(), run.skipped.clone()),
        ("proven", vec![2])
    );
    assert_eq!(submissions(&chain), vec![(2, vec![0], vec![2])]);
    // The first call covered both sectors, the second the readable one.
    assert_eq!(*worker.proved.lock().unwrap(), vec![vec![1, 2], vec![1]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_prover_is_tried_again_while_the_deadline_is_open() {
    let chain = FakeChain::new();
    chain.place(3, &[4], &[]);
    let worker = Arc::new(Scripted::default());
    let lost = TaskError::new(ErrorKind::WorkerLost, "worker P stopped answering");
    worker.proofs.lock().unwrap().push_back(Err(lost));
    let (w, _dir) = scheduler(&chain, &worker);
    chain.set_head(3 * WINDOW + 1);
    let run = until("deadline 3 proven", || outcome(&w, 3, 30)).await;
    assert_eq!(run.outcome, "proven");
    assert_eq!(worker.proved.lock().unwrap().len(), 2);
    assert_eq!(submissions(&chain), vec![(3, vec![0], vec![])]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prover_failing_until_the_close_is_recorded_and_nothing_is_sent() {
    let chain = FakeChain::new();
    chain.place(3, &[4], &[]);
    let worker = Arc::new(Scripted::default());
    for _ in 0..1000 {
        let e = TaskError::temporary("GPU fell off the bus");
        worker.proofs.lock().unwrap().push_back(Err(e));
    }
    let (w, _dir) = scheduler(&chain, &worker);
    chain.set_head(3 * WINDOW);
    until("a retry", || {
        (worker.proved.lock().unwrap().len() >= 2).then_some(())
    })
    .await;
    // The deadline's last epoch: no time for another try.
    chain.set_head(4 * WINDOW - 1);
    let run = until("deadline 3 given up", || outcome(&w, 3, 30)).await;
    assert!(
        run.outcome.starts_with("failed: ") && run.outcome.contains("GPU fell off the bus"),
        "{run:?}"
    );
    assert_eq!(submissions(&chain), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_sectors_are_declared_faulty_ahead_and_recovered_once_they_read() {
    let chain = FakeChain::new();
    chain.place(4, &[5, 6], &[]);
    let worker = Arc::new(Scripted::default());
    *worker.bad.lock().unwrap() = vec![5];
    let (_w, _dir) = scheduler(&chain, &worker);
    // Deadline 2 opens: deadline 4 is checked.
    chain.set_head(2 * WINDOW);
    let faults = until("a fault declaration", || {
        chain.pushed().into_iter().find_map(|m| {
            m.decode::<lotus::miner::DeclareFaultsParams>()
                .map(|p| declared(&p.faults))
        })
    })
    .await;
    assert_eq!(faults, (4, vec![5]));
    // The chain took it; the file is back. A period later deadline 2 opens again.
    chain.place(4, &[5, 6], &[5]);
    worker.bad.lock().unwrap().clear();
    chain.set_head(2 * WINDOW + WINDOW * DEADLINES as i64);
    let recovered = until("a recovery declaration", || {
        chain.pushed().into_iter().find_map(|m| {
            m.decode::<lotus::miner::DeclareFaultsRecoveredParams>()
                .map(|p| declared(&p.recoveries))
        })
    })
    .await;
    assert_eq!(recovered, (4, vec![5]));
}

/// A large miner's deadline (issue #19): 20 full partitions of 32GiB sectors (2,349 each,
/// 46,980 sectors) on four storage machines that are also PoSt workers, each proof and check
/// taking 200 ms. The check ahead reads every sector where it lies, on the four machines at
/// once; the proof goes in 7 messages of at most 3 partitions, each proven by the machine that
/// holds its partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_of_20_full_partitions_is_checked_everywhere_at_once_and_proven_in_7_messages() {
    const PARTS: usize = 20;
    let per = chain::devnet::proving::partition_sectors(SectorSize::S32GiB);
    assert_eq!(per, 2349);
    let chain = FakeChain::new();
    let partitions: Vec<Vec<u64>> = (0..PARTS)
        .map(|p| ((p * per) as u64 + 1..=((p + 1) * per) as u64).collect())
        .collect();
    chain.place_partitions(4, &partitions, SealProof::StackedDrg32GiBV1_1);

    let dir = tempfile::tempdir().unwrap();
    let db = db::Db::open(dir.path()).unwrap();
    let manager = Manager::new(
        Scheduler::new(SchedConfig::default()),
        CallTracker::open(db).unwrap(),
    );
    let index = Arc::new(MemIndex::default());
    let view = ClusterView::new(index.clone());
    let mut machines = Vec::new();
    for m in 0..4 {
        let path = crate::cluster::tests::path(&format!("store-{m}"));
        use stores::SectorIndex;
        index
            .storage_attach(path.clone(), stores::FsStat::default())
            .await
            .unwrap();
        let w = Arc::new(Scripted {
            delay: Duration::from_millis(200),
            ..Default::default()
        });
        let id = manager.add_worker(
            sched::sim::spec(&format!("store-{m}"), 256, 64, 1, &[TaskType::WindowPoSt]),
            w.clone(),
            false,
        );
        view.set_paths(id, vec![path.id.clone()]);
        machines.push((path.id, w));
    }
    // Message b's partitions (3b..3b+2) all lie on machine b % 4.
    for (p, sectors) in partitions.iter().enumerate() {
        let (path, _) = &machines[(p / PARTITIONS_PER_MESSAGE) % 4];
        for n in sectors {
            let s = SectorRef::new(ACTOR, *n, SealProof::StackedDrg32GiBV1_1);
            for ft in [stores::FileType::Sealed, stores::FileType::Cache] {
                use stores::SectorIndex;
                index
                    .storage_declare_sector(path, s.id(), ft)
                    .await
                    .unwrap();
            }
        }
    }
    let w = start(&chain, manager, view, SectorSize::S32GiB);

    // Deadline 2 opens: deadline 4 is checked ahead, every sector on the machine that has it.
    let started = std::time::Instant::now();
    chain.set_head(2 * WINDOW);
    let all = PARTS * per;
    let checked = || -> usize {
        machines
            .iter()
            .flat_map(|(_, w)| w.calls.lock().unwrap().clone())
            .filter(|c| c.0)
            .map(|c| c.1.len())
            .sum()
    };
    until("every sector checked", || (checked() == all).then_some(())).await;
    let check_took = started.elapsed();
    let held = |m: usize, n: u64| ((n as usize - 1) / per / PARTITIONS_PER_MESSAGE) % 4 == m;
    for (m, (_, w)) in machines.iter().enumerate() {
        let calls = w.calls.lock().unwrap().clone();
        assert!(calls.iter().any(|c| c.0), "machine {m} checked nothing");
        for (_, sectors, _, _) in calls.iter().filter(|c| c.0) {
            assert!(
                sectors.iter().all(|n| held(m, *n)),
                "machine {m} checked sectors it does not hold"
            );
        }
    }
    // At once: every machine's first check began before any machine's last one ended.
    let firsts = machines.iter().map(|(_, w)| w.calls.lock().unwrap()[0].2);
    let last_end = machines
        .iter()
        .flat_map(|(_, w)| w.calls.lock().unwrap().clone())
        .map(|c| c.3)
        .max()
        .unwrap();
    let first_end = machines
        .iter()
        .map(|(_, w)| w.calls.lock().unwrap()[0].3)
        .min()
        .unwrap();
    assert!(
        firsts.clone().all(|f| f < first_end),
        "the checks ran one machine after another"
    );
    assert!(last_end > first_end);

    // Deadline 4 opens: 7 proofs and 7 messages, all sent while it is open.
    let opened = std::time::Instant::now();
    chain.set_head(4 * WINDOW);
    let run = until("deadline 4 proven", || outcome(&w, 4, 40)).await;
    let prove_took = opened.elapsed();
    assert_eq!(run.outcome, "proven", "{run:?}");
    assert_eq!(run.messages.len(), 7);
    let mut sent: Vec<Vec<usize>> = submissions(&chain).into_iter().map(|s| s.1).collect();
    sent.sort();
    let want: Vec<Vec<usize>> = (0..PARTS)
        .collect::<Vec<_>>()
        .chunks(PARTITIONS_PER_MESSAGE)
        .map(|c| c.to_vec())
        .collect();
    assert_eq!(sent, want);
    assert_eq!(chain.lock().head, 4 * WINDOW, "proven inside the window");
    // Each message's proof ran on the machine that holds its partitions.
    for (m, (_, w)) in machines.iter().enumerate() {
        for (_, sectors, _, _) in w.calls.lock().unwrap().iter().filter(|c| !c.0) {
            assert!(sectors.iter().all(|n| held(m, *n)));
            assert_eq!(sectors.len() % per, 0);
        }
    }
    eprintln!(
        "{all} sectors in {PARTS} partitions: checked ahead in {:.2} s, proven and sent in {:.2} s ({} proofs of 200 ms on 4 machines)",
        check_took.as_secs_f64(),
        prove_took.as_secs_f64(),
        run.messages.len()
    );
}
