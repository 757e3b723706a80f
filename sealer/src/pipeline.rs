//! Drives each sector through the state machine: one task per sector that is not done, running
//! the current state's step (a task on a worker, a chain message, a wait) and recording the event
//! it produced. On start, sectors interrupted by a crash or restart are resumed.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::tasks::{ErrorKind, TaskError, TaskResult};
use api::{SectorState, TaskCall, TaskOutput};
use resources::{SectorRef, Subject, TaskType};
use sched::{AllocSelector, ExistingSelector, Selector, TaskSelector};

use crate::cluster::{ClusterView, StoreSelector};
use stores::{FileType, FileTypes, Remote};

use crate::batch::{BatchKind, Batcher};
use crate::calls::CallTracker;
use crate::fsm::{now_ms, Event, Sector};
use crate::funds::{Payment, Policy, Use};
use crate::manager::Manager;
use crate::sectors::Sectors;
use chain::{Chain, RandKind, Receipt};
use lotus::miner::Method;

use SectorState::*;

/// The call whose recorded result a sector event used: removed with the event.
type Consumed = Option<(Subject, TaskType)>;

/// States in which a sector needs no driving.
fn is_done(s: SectorState) -> bool {
    matches!(s, Proving | Removed | FailedUnrecoverable)
}

pub struct Pipeline {
    sectors: Arc<Sectors>,
    chain: Arc<dyn Chain>,
    manager: Arc<Manager>,
    remote: Arc<Remote>,
    view: Arc<ClusterView>,
    cooldown: Duration,
    /// Checks each C2 proof before it is sent (lotus's checkCommit).
    engine: Arc<dyn proofs::Engine>,
    running: Mutex<HashSet<u64>>,
    /// Which worker ran the step a sector's next event comes from (for its log).
    notes: Mutex<std::collections::HashMap<u64, String>>,
    /// `[Sealing] RebuildLostSectors`.
    auto_rebuild: bool,
    /// `[Fees]`, `[Sealing] CollateralFromMinerBalance` and `[Addresses]`: what messages
    /// pay, and who sends them.
    policy: Policy,
    /// `[Sealing] CommittedCapacitySectorLifetime`, in epochs.
    lifetime: i64,
    /// `[Chain] MessageConfidence`: epochs on top of a message before it counts as landed.
    confidence: i64,
    /// The pre-commit and prove-commit batch queues (`[Sealing] BatchPreCommits`,
    /// `AggregateCommits`).
    precommits: Batcher<batch_send::PreItem>,
    commits: Batcher<batch_send::CommitItem>,
    /// When this sealer started: until its workers had the heartbeat's removal time to
    /// connect again and declare their files, a file the index does not know is not lost.
    born: std::time::Instant,
    /// Active sectors' expirations for `sectors list` (`rpc`): told each sector's pre-committed
    /// one when its pre-commit is read at the seed (what the sector keeps once active).
    pub(crate) expirations: crate::expiry::Expirations,
    /// The runtime the sectors are driven on (the one this pipeline was made on): a sector
    /// started from an API call (a pledge) is driven there, not on the API's own runtime.
    rt: tokio::runtime::Handle,
}

/// How a wait for a message ended.
enum Landed {
    /// Its receipt, deep enough.
    Receipt(chain::Receipt),
    /// Neither the chain nor the pool has it any more, and why.
    Dropped(String),
    /// Another message (this CID) with its nonce landed instead, or took its place in the pool.
    Replaced(String),
}

impl Pipeline {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        sectors: Arc<Sectors>,
        chain: Arc<dyn Chain>,
        manager: Arc<Manager>,
        remote: Arc<Remote>,
        view: Arc<ClusterView>,
        cooldown: Duration,
        engine: Arc<dyn proofs::Engine>,
        auto_rebuild: bool,
        policy: Policy,
        lifetime: i64,
        confidence: i64,
    ) -> Arc<Pipeline> {
        let batching = policy.batching.clone();
        let me = Arc::new(Pipeline {
            precommits: Batcher::new(batching.precommit.clone()),
            commits: Batcher::new(batching.commit.clone()),
            sectors,
            chain,
            manager,
            remote,
            view,
            cooldown,
            engine,
            running: Mutex::new(HashSet::new()),
            born: std::time::Instant::now(),
            expirations: Default::default(),
            rt: tokio::runtime::Handle::current(),
            notes: Mutex::new(std::collections::HashMap::new()),
            auto_rebuild,
            policy,
            lifetime,
            confidence,
        });
        for b in [batching.precommit, batching.commit] {
            if b.enabled {
                tokio::spawn(batch_send::run(Arc::downgrade(&me), b.kind));
            }
        }
        me
    }

    /// Starts driving sector `n` unless it is already driven.
    pub fn start(self: &Arc<Self>, n: u64) {
        self.unqueue(n);
        if !self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(n)
        {
            return;
        }
        let me = self.clone();
        self.rt.spawn(async move {
            me.clone().drive(n).await;
            me.running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&n);
            // An event that came in as the driver stopped (a removal of a Proving sector).
            if me.sectors.get(n).is_some_and(|s| !is_done(s.state)) {
                me.start(n);
            }
        });
    }

    /// After a (re)start: a sector whose PC2 was running goes back to PC1 (PC2 encodes the replica
    /// in place, so a half-done PC2 cannot be rerun); every unfinished sector is driven again.
    /// Other steps rerun from their inputs, and a result recorded before the crash is used
    /// instead of running the task again.
    pub fn resume_all(self: &Arc<Self>) {
        // Only the sectors still on their way (a large miner's Proving ones are not copied).
        for s in self.sectors.matching(|s| !is_done(s)) {
            if matches!(s.state, PreCommit2 | RebuildPreCommit2) {
                let subject = Subject::Sector(s.sector);
                if let Ok(Some(rec)) = self.calls().find(&subject, TaskType::PreCommit2) {
                    if rec.result.is_none() {
                        let why = format!(
                            "the sealer restarted while PC2 was running on {}; PC1 runs again because PC2 encodes the replica in place",
                            rec.worker
                        );
                        tracing::warn!(sector = s.sector.number, "{why}");
                        let applied =
                            self.sectors
                                .apply(s.sector.number, Event::Restarted(why), |b| {
                                    if let Err(e) =
                                        self.calls().consume(&subject, TaskType::PreCommit2, b)
                                    {
                                        tracing::error!("{e}");
                                    }
                                });
                        if let Err(e) = applied {
                            tracing::error!("{e}");
                        }
                    }
                }
            }
            if !is_done(s.state) {
                self.start(s.sector.number);
            }
        }
    }

    async fn drive(self: Arc<Self>, n: u64) {
        loop {
            let Some(s) = self.sectors.get(n) else { return };
            if is_done(s.state) {
                return;
            }
            let state = s.state;
            let (event, consumed) = self.step(&s).await;
            let Some(event) = event else { continue };
            let failed = matches!(event, Event::Failed(_));
            if let Event::Failed(e) = &event {
                tracing::warn!(sector = n, state = %state, "{e}");
            }
            let note = self
                .notes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&n)
                .unwrap_or_default();
            match self.sectors.apply_noted(n, event, &note, |b| {
                if let Some((subject, task)) = &consumed {
                    if let Err(e) = self.calls().consume(subject, *task, b) {
                        tracing::error!(sector = n, "{e}");
                    }
                }
            }) {
                Ok(next) if next.state != state => {
                    tracing::info!(sector = n, "{state} -> {}", next.state);
                }
                Ok(_) => {}
                // The sector moved on meanwhile (removed while a task ran).
                Err(e) => tracing::debug!(sector = n, "{e}"),
            }
            if failed {
                tokio::task::yield_now().await;
            }
        }
    }

    fn calls(&self) -> &Arc<CallTracker> {
        self.manager.calls()
    }

    /// Runs the step of `s.state`. Returns the event, and the call whose result it used.
    async fn step(&self, s: &Sector) -> (Option<Event>, Consumed) {
        let sector = s.sector;
        match s.state {
            Packing => {
                self.task(TaskCall::AddPiece { sector }, |o| match o {
                    TaskOutput::Piece(p) => Some(Event::PieceAdded(p)),
                    _ => None,
                })
                .await
            }
            GetTicket => (Some(self.ticket().await), None),
            PreCommit1 => {
                // A PC1 started before a restart is waited for where it runs (`task`).
                let started = self
                    .calls()
                    .find(&Subject::Sector(sector), TaskType::PreCommit1)
                    .ok()
                    .flatten()
                    .is_some();
                if !started {
                    loop {
                        let found = self
                            .remote
                            .locate(sector.id(), FileType::Unsealed.into())
                            .await
                            .map_or(true, |l| !l.local.is_empty() || !l.fetchable.is_empty());
                        if found {
                            break;
                        }
                        // Just restarted: the worker holding it may not have declared it yet.
                        if self.manager.still_coming_back(self.born) {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        }
                        let why = "no reachable copy of the unsealed file (its machine was lost): AP runs again";
                        return (Some(Event::Repack(why.into())), None);
                    }
                }
                let Some((_, ticket)) = s.ticket else {
                    return (Some(Event::Failed(TaskError::temporary("no ticket"))), None);
                };
                let call = TaskCall::PreCommit1 {
                    sector,
                    ticket,
                    pieces: s.pieces.clone(),
                    rebuild: false,
                };
                self.task(call, |o| match o {
                    TaskOutput::PreCommit1(out) => Some(Event::PreCommit1Done(out)),
                    _ => None,
                })
                .await
            }
            PreCommit2 => {
                let Some(pc1) = s.pc1.clone() else {
                    return (
                        Some(Event::Failed(TaskError::temporary("no PC1 output"))),
                        None,
                    );
                };
                let call = TaskCall::PreCommit2 { sector, pc1 };
                self.task_on_files(call, FileTypes::ALL, |o| match o {
                    TaskOutput::PreCommit2(c) => Some(Event::PreCommit2Done(c)),
                    _ => None,
                })
                .await
            }
            RebuildWait => (self.rebuild_wait(s).await, None),
            RebuildPreCommit1 => self.rebuild_pc1(s).await,
            RebuildPreCommit2 => self.rebuild_pc2(s).await,
            PreCommitting | SubmitPreCommitBatch => {
                let (Some(comms), Some((ticket_epoch, _))) = (s.comms, s.ticket) else {
                    return (
                        Some(Event::Failed(TaskError::temporary("no commitments"))),
                        None,
                    );
                };
                let head = match self.precommit_checks(sector, comms, ticket_epoch).await {
                    Ok(head) => head,
                    Err(ev) => return (Some(ev), None),
                };
                let item = batch_send::PreItem {
                    sector,
                    comms,
                    ticket_epoch,
                };
                let deadline = ticket_epoch + self.chain.max_ticket_age();
                if s.state == SubmitPreCommitBatch {
                    return self.in_batch(s, &self.precommits, deadline, item).await;
                }
                match self.batch_now(&self.precommits.cfg, deadline, s).await {
                    Ok(Some(how)) => return (Some(Event::Batched(how)), None),
                    Ok(None) => {}
                    Err(e) => return (Some(Event::Failed(e.into())), None),
                }
                let pc = self.spec(&item, head);
                let pay = match self
                    .precommit_payment(std::slice::from_ref(&pc), None)
                    .await
                {
                    Ok(p) => p,
                    Err(e) => return (Some(Event::Failed(e.into())), None),
                };
                let from = match self.sender_or_wait(s, &pay, Use::PreCommit).await {
                    Ok(from) => from,
                    Err(wait) => return wait,
                };
                let ev = match self
                    .chain
                    .send(from, pc.call(), pay.value, pay.max_fee)
                    .await
                {
                    Ok(id) => Event::PreCommitSent(id),
                    Err(e) => {
                        Event::Failed(TaskError::temporary(format!("sending pre-commit: {e}")))
                    }
                };
                (Some(ev), None)
            }
            PreCommitWait | CommitWait | TerminateWait => {
                let (msg, method) = match s.state {
                    PreCommitWait => (s.precommit_msg.clone(), Method::PreCommitSectorBatch2),
                    TerminateWait => (s.terminate_msg.clone(), Method::TerminateSectors),
                    _ => (s.commit_msg.clone(), Method::ProveCommitSectors3),
                };
                let ev = match self
                    .wait_receipt(msg.as_deref(), method, sector.number)
                    .await
                {
                    Ok(Landed::Dropped(why)) => Event::MessageDropped(why),
                    Ok(Landed::Replaced(new)) => Event::MessageReplaced(new),
                    Ok(Landed::Receipt(r)) if r.exit_code == 0 && s.state == PreCommitWait => {
                        Event::PreCommitLanded(r.epoch)
                    }
                    Ok(Landed::Receipt(r)) if r.exit_code == 0 && s.state == TerminateWait => {
                        Event::TerminateLanded(r.epoch)
                    }
                    // A batch's message succeeds though one of its proofs failed: the sector
                    // must be active.
                    Ok(Landed::Receipt(r)) if r.exit_code == 0 => {
                        match self.chain.active_sector(&sector).await {
                            Ok(Some(_)) => Event::CommitLanded(r.epoch),
                            Ok(None) => Event::Failed(TaskError::temporary(format!(
                                "message {} landed at epoch {} but did not activate sector {}: \
                                 its proof failed",
                                msg.unwrap_or_default(),
                                r.epoch,
                                sector.number
                            ))),
                            Err(e) => Event::Failed(e.into()),
                        }
                    }
                    Ok(Landed::Receipt(r)) => {
                        let why = format!(
                            "message {} failed at epoch {} (exit {}): {}",
                            msg.unwrap_or_default(),
                            r.epoch,
                            r.exit_code,
                            r.error
                        );
                        let no_funds = lotus::ExitCode::USR_INSUFFICIENT_FUNDS.value() as i64;
                        match r.exit_code == no_funds {
                            true => Event::NotEnoughFunds(why),
                            false => Event::Failed(TaskError::temporary(why)),
                        }
                    }
                    Err(e) => Event::Failed(e),
                };
                (Some(ev), None)
            }
            WaitSeed => (Some(self.seed(s).await), None),
            Terminating => self.terminate(s).await,
            Committing => self.commit(s).await,
            SubmitCommit | SubmitCommitAggregate => {
                let Some(proof) = s.proof.clone() else {
                    return (Some(Event::Failed(TaskError::temporary("no proof"))), None);
                };
                let pc = match self.commit_checks(sector, s.precommit_epoch).await {
                    Ok(pc) => pc,
                    Err(ev) => return (Some(ev), None),
                };
                let deadline = pc.precommit_epoch + self.chain.max_prove_commit_duration();
                let item = batch_send::CommitItem { sector, proof };
                if s.state == SubmitCommitAggregate {
                    return self.in_batch(s, &self.commits, deadline, item).await;
                }
                match self.batch_now(&self.commits.cfg, deadline, s).await {
                    Ok(Some(how)) => return (Some(Event::Batched(how)), None),
                    Ok(None) => {}
                    Err(e) => return (Some(Event::Failed(e.into())), None),
                }
                let pay = match self.commit_payment(&[pc], BatchKind::Commit, None).await {
                    Ok(p) => p,
                    Err(e) => return (Some(Event::Failed(e)), None),
                };
                let from = match self.sender_or_wait(s, &pay, Use::Commit).await {
                    Ok(from) => from,
                    Err(wait) => return wait,
                };
                let call = chain::calls::prove_commit(sector.number, item.proof);
                let ev = match self.chain.send(from, call, pay.value, pay.max_fee).await {
                    Ok(id) => Event::CommitSent(id),
                    Err(e) => {
                        Event::Failed(TaskError::temporary(format!("sending prove-commit: {e}")))
                    }
                };
                (Some(ev), None)
            }
            FinalizeSector => {
                // FIN trims the cache where the sector was sealed; GET then brings it to a
                // long-term store path (over HTTP when that is another machine).
                let fin = TaskCall::Finalize { sector };
                let (ev, fin_key) = self
                    .task_on_files(fin, FileTypes::SEALED, |o| match o {
                        TaskOutput::Finalized => Some(Event::Finalized),
                        _ => None,
                    })
                    .await;
                if ev != Some(Event::Finalized) {
                    return (ev, fin_key);
                }
                let (ev, key) =
                    self.task_on_files(TaskCall::MoveStorage { sector }, FileTypes::SEALED, |o| {
                        match o {
                            TaskOutput::Moved => Some(Event::Finalized),
                            _ => None,
                        }
                    })
                    .await;
                if let Some((subject, task)) = fin_key {
                    if let Err(e) = self.calls().remove(&subject, task) {
                        tracing::error!(sector = sector.number, "{e}");
                    }
                }
                (ev, key)
            }
            Removing => {
                let ev = match self
                    .remote
                    .remove_everywhere(sector.id(), FileTypes::ALL)
                    .await
                {
                    Ok(_) => Event::RemoveDone,
                    Err(e) => {
                        tracing::error!(sector = sector.number, "removing files: {e}");
                        tokio::time::sleep(self.cooldown).await;
                        return (None, None);
                    }
                };
                (Some(ev), None)
            }
            st if st.is_failed() => {
                let cooldown = s.retry_cooldown(self.cooldown, self.sectors.max_retries());
                let due = s.since_ms + cooldown.as_millis() as u64;
                let wait = due.saturating_sub(now_ms());
                tokio::time::sleep(Duration::from_millis(wait)).await;
                (Some(Event::Retry), None)
            }
            _ => (None, None),
        }
    }

    fn selector(&self, call: &TaskCall) -> Arc<dyn Selector> {
        let storage: Arc<dyn sched::StorageView> = self.view.clone();
        match call {
            TaskCall::AddPiece { .. } | TaskCall::PreCommit1 { rebuild: true, .. } => {
                Arc::new(AllocSelector { storage })
            }
            TaskCall::PreCommit1 { .. } | TaskCall::PreCommit2 { .. } => {
                Arc::new(ExistingSelector {
                    storage,
                    allow_fetch: true,
                })
            }
            TaskCall::Commit1 { .. } | TaskCall::Finalize { .. } => Arc::new(ExistingSelector {
                storage,
                allow_fetch: false,
            }),
            TaskCall::Commit2 { .. }
            | TaskCall::WindowPoSt { .. }
            | TaskCall::WinningPoSt { .. } => Arc::new(TaskSelector),
            TaskCall::MoveStorage { .. } => Arc::new(StoreSelector {
                view: self.view.clone(),
            }),
        }
    }

    /// Runs a task call, or takes the result recorded for it before a restart.
    async fn task(
        &self,
        call: TaskCall,
        to_event: impl FnOnce(TaskOutput) -> Option<Event>,
    ) -> (Option<Event>, Consumed) {
        let (subject, task) = (call.subject(), call.task());
        let record = self.calls().find(&subject, task).ok().flatten();
        let running_remote = record
            .as_ref()
            .filter(|r| r.result.is_none() && !r.local)
            .map(|r| (r.call_id.clone(), r.worker.clone()));
        let recorded = match running_remote {
            // Started on a worker before the sealer restarted: wait for its result instead of
            // running it again (the worker retries WorkerReturn until it is taken).
            Some((call_id, worker)) => {
                tracing::info!(%worker, "{}: re-attaching to call {call_id}", call.describe());
                Some(self.reattach(&call_id, &worker, &call).await)
            }
            None => record.and_then(|r| r.result),
        };
        let result: TaskResult = match recorded {
            Some(r) => {
                tracing::info!(
                    "{}: using the result recorded before the restart",
                    call.describe()
                );
                r
            }
            None => {
                let sel = self.selector(&call);
                self.manager.run(call.clone(), 0, sel).await
            }
        };
        if let Ok(Some(rec)) = self.calls().find(&subject, task) {
            let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
            let note = notes.entry(subject.number()).or_default();
            if !note.is_empty() {
                note.push_str(", ");
            }
            note.push_str(&format!("{} on {}", call.task().short(), rec.worker));
            let runs: Vec<String> = rec
                .runs
                .iter()
                .map(|r| {
                    format!(
                        "pid {} on CPUs {}, peak RSS {} MiB",
                        r.pid,
                        r.cpus,
                        r.peak_rss.div_ceil(1 << 20)
                    )
                })
                .collect();
            if !runs.is_empty() {
                note.push_str(&format!(" ({})", runs.join("; ")));
            }
        }
        let ev = match result {
            Ok(out) => to_event(out).unwrap_or_else(|| {
                Event::Failed(TaskError::temporary(format!(
                    "{} returned the wrong kind of output",
                    call.task().short()
                )))
            }),
            Err(e) => Event::Failed(e),
        };
        (Some(ev), Some((subject, task)))
    }

    /// Waits for a call a worker started before this sealer restarted. The call is sent to its
    /// worker again under the same ID once the worker is back: the worker runs a call ID once,
    /// so this only matters if the first send never reached it. A worker that does not come back
    /// within the heartbeat's removal time fails the step (it is retried elsewhere).
    async fn reattach(&self, call_id: &str, worker: &str, call: &TaskCall) -> TaskResult {
        self.manager.reattaching(call_id, call, worker);
        let r = self.reattach_inner(call_id, worker, call).await;
        self.manager.reattach_done(call_id);
        r
    }

    async fn reattach_inner(&self, call_id: &str, worker: &str, call: &TaskCall) -> TaskResult {
        let lost_after = crate::cluster::LOST_AFTER;
        let start = std::time::Instant::now();
        // Registered now: a WorkerReturn that arrives meanwhile is not missed.
        let returned = self.calls().wait(call_id);
        tokio::pin!(returned);
        loop {
            if let Some(h) = self.manager.remote_by_name(worker) {
                return tokio::select! {
                    r = h.execute(call_id, call.clone(), None) => r,
                    r = &mut returned => r,
                };
            }
            if !self.manager.still_coming_back(start) {
                return Err(TaskError::worker_lost(format!(
                    "worker {worker} did not come back within {:.0?} of the restart (none other came back in the last {lost_after:?}, or {:?} passed)",
                    start.elapsed(),
                    crate::heartbeat::HOLD_LIMIT
                )));
            }
            tokio::select! {
                r = &mut returned => return r,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }

    async fn ticket(&self) -> Event {
        let r = async {
            // Drawn back from the head by SealRandomnessLookback (the chain's finality, as
            // lotus draws it), so that a reorg does not take the ticket's epoch away.
            let head = self.chain.head().await?;
            let epoch = (head.height - self.chain.ticket_lookback()).max(0);
            let t = self.chain.randomness(RandKind::Ticket, epoch).await?;
            Ok::<_, chain::ChainError>(Event::Ticket(epoch, t))
        };
        r.await.unwrap_or_else(|e| {
            Event::Failed(TaskError::temporary(format!("getting a ticket: {e}")))
        })
    }

    async fn seed(&self, s: &Sector) -> Event {
        let Some(pc_epoch) = s.precommit_epoch else {
            return Event::Failed(TaskError::temporary("no pre-commit epoch"));
        };
        let seed_epoch = pc_epoch + self.chain.precommit_challenge_delay();
        let r = async {
            self.chain.wait_epoch(seed_epoch).await?;
            // The pre-commit may have gone with a reorg, or landed again elsewhere: the seed is
            // drawn from where it is now.
            match self.chain.precommit(&s.sector).await? {
                None => {
                    return Ok(Event::PreCommitReverted(format!(
                        "its pre-commit (landed at epoch {pc_epoch}) is no longer on chain (a \
                         reorg): sent again"
                    )))
                }
                Some(pc) if pc.precommit_epoch != pc_epoch => {
                    return Ok(Event::PreCommitLanded(pc.precommit_epoch))
                }
                Some(pc) => self
                    .expirations
                    .precommitted(s.sector.number, pc.expiration),
            }
            let seed = self.chain.randomness(RandKind::Seed, seed_epoch).await?;
            Ok::<_, chain::ChainError>(Event::Seed(seed_epoch, seed))
        };
        r.await.unwrap_or_else(|e| {
            Event::Failed(TaskError::temporary(format!("waiting for the seed: {e}")))
        })
    }

    async fn commit(&self, s: &Sector) -> (Option<Event>, Consumed) {
        let sector: SectorRef = s.sector;
        match &s.c1 {
            None => {
                let (Some((_, ticket)), Some((_, seed)), Some(comms)) = (s.ticket, s.seed, s.comms)
                else {
                    return (
                        Some(Event::Failed(TaskError::temporary(
                            "missing ticket, seed or commitments",
                        ))),
                        None,
                    );
                };
                let call = TaskCall::Commit1 {
                    sector,
                    ticket,
                    seed,
                    comms,
                    pieces: s.pieces.clone(),
                };
                self.task_on_files(call, FileTypes::ALL, |o| match o {
                    TaskOutput::Commit1(out) => Some(Event::Commit1Done(out)),
                    _ => None,
                })
                .await
            }
            Some(c1) => {
                let call = TaskCall::Commit2 {
                    sector,
                    c1: c1.clone(),
                };
                let (ev, key) = self
                    .task(call, |o| match o {
                        TaskOutput::Proof(p) => Some(Event::ProofReady(p)),
                        _ => None,
                    })
                    .await;
                match ev {
                    Some(Event::ProofReady(proof)) => (Some(self.check_proof(s, proof).await), key),
                    other => (other, key),
                }
            }
        }
    }

    /// A proof is verified before it is sent (lotus's checkCommit): one that does not verify
    /// fails the step as `ProofInvalid`, and is computed again instead of costing a message.
    async fn check_proof(&self, s: &Sector, proof: Vec<u8>) -> Event {
        let (Some((_, ticket)), Some((_, seed)), Some(comms)) = (s.ticket, s.seed, s.comms) else {
            return Event::Failed(TaskError::temporary("missing ticket, seed or commitments"));
        };
        let (engine, sector, p) = (self.engine.clone(), s.sector, proof.clone());
        let checked = tokio::task::spawn_blocking(move || {
            engine.verify_seal(&sector, &comms, &ticket, &seed, &p)
        })
        .await;
        let what = format!("C2 proof of sector {}", s.sector.number);
        match checked {
            Ok(Ok(true)) => Event::ProofReady(proof),
            Ok(Ok(false)) => Event::Failed(TaskError::new(
                ErrorKind::ProofInvalid,
                format!("{what} does not verify"),
            )),
            Ok(Err(e)) => {
                let e = TaskError::from(e).context(format_args!("verifying the {what}"));
                match e.kind {
                    // A proof that cannot even be read is as invalid as one that fails.
                    ErrorKind::BadInput => {
                        Event::Failed(TaskError::new(ErrorKind::ProofInvalid, e.message))
                    }
                    _ => Event::Failed(e),
                }
            }
            Err(e) => Event::Failed(TaskError::temporary(format!("verifying the {what}: {e}"))),
        }
    }

    /// Waits for a message's receipt to be `[Chain] MessageConfidence` epochs deep (lotus's
    /// StateWaitMsg with confidence), following the chain as it goes: a receipt a reorg takes
    /// back is waited for again while the message is in the pool, and the message is
    /// `Dropped` once neither the chain nor the pool has it (checked every `confidence`
    /// epochs). A message the chain refused fails the step (its state decides the retry: a
    /// rejected prove-commit is recomputed), unless it lacked funds.
    async fn wait_receipt(
        &self,
        id: Option<&str>,
        method: Method,
        sector: u64,
    ) -> Result<Landed, TaskError> {
        let id = id.ok_or_else(|| TaskError::temporary("no message to wait for"))?;
        let confidence = self.confidence.max(0);
        let mut unseen = 0;
        let mut landed: Option<i64> = None;
        loop {
            let head = self.chain.head().await?.height;
            match self.chain.receipt(id).await? {
                Some(Receipt {
                    replaced_by: Some(new),
                    ..
                }) => return Ok(Landed::Replaced(new)),
                Some(r) if head >= r.epoch + confidence => return Ok(Landed::Receipt(r)),
                Some(r) => {
                    landed = Some(r.epoch);
                    self.chain.wait_epoch(r.epoch + confidence).await?;
                }
                None => {
                    unseen += 1;
                    let check = landed.is_some() || unseen > confidence;
                    let pending = if check {
                        self.chain.pending(method, sector).await?
                    } else {
                        None
                    };
                    // Another message for this sector in the pool: this one was replaced there
                    // (`lotus mpool replace`) before either landed. It is followed.
                    if let Some(other) = pending.as_deref().filter(|p| *p != id) {
                        return Ok(Landed::Replaced(other.to_string()));
                    }
                    if check && pending.is_none() {
                        let why = match landed {
                            Some(e) => format!(
                                "message {id} (landed at epoch {e}) was taken back by a reorg \
                                 and is in no pool: sent again"
                            ),
                            None => format!(
                                "message {id} is neither on chain nor in the pool: sent again"
                            ),
                        };
                        return Ok(Landed::Dropped(why));
                    }
                    if check {
                        unseen = 0;
                        landed = None;
                    }
                    self.chain.wait_epoch(head + 1).await?;
                }
            }
        }
    }

    /// What a pre-commit of `specs` pays: the deposit the chain asks for each (the same for
    /// every committed-capacity sector of the miner's size, so asked once); its fee is
    /// MaxPreCommitGasFee, or the batch's (`batch`).
    async fn precommit_payment(
        &self,
        specs: &[chain::calls::PreCommitSpec],
        batch: Option<&crate::batch::BatchConfig>,
    ) -> Result<Payment, chain::ChainError> {
        let Some(first) = specs.first() else {
            return Err(chain::ChainError::Other("a pre-commit of no sector".into()));
        };
        let deposit = self.chain.precommit_deposit(first).await? * specs.len() as u64;
        let what = batch_send::what(BatchKind::PreCommit, specs.iter().map(|s| s.sector.number));
        let fee = match batch {
            Some(b) => (b.max_fee(specs.len()), b.kind.fee_key()),
            None => (self.policy.fees.pre_commit.clone(), "MaxPreCommitGasFee"),
        };
        Payment::plan(
            &*self.chain,
            &self.policy.collateral,
            what,
            "deposit",
            deposit,
            fee,
        )
        .await
    }

    /// What a prove-commit of `pcs` pays: each sector's initial pledge for its committed life,
    /// less the deposit its pre-commit locked (released as it activates), as lotus-miner
    /// computes it; its fee is MaxCommitGasFee, or the batch's (`batch`).
    async fn commit_payment(
        &self,
        pcs: &[chain::PreCommitOnChain],
        kind: BatchKind,
        batch: Option<&crate::batch::BatchConfig>,
    ) -> Result<Payment, TaskError> {
        let head = self.chain.head().await?.height;
        let mut collateral = chain::TokenAmount::default();
        // The pledge depends on the committed life only: a batch's sectors, pre-committed
        // together, share a few lives, each asked once.
        let mut pledges = std::collections::HashMap::new();
        for pc in pcs {
            let life = pc.expiration - head;
            let pledge = match pledges.get(&life) {
                Some(p) => chain::TokenAmount::clone(p),
                None => {
                    let p = self.chain.initial_pledge(life).await?;
                    pledges.insert(life, p.clone());
                    p
                }
            };
            let owed = pledge - pc.deposit.clone();
            if !owed.is_negative() {
                collateral += owed;
            }
        }
        let what = batch_send::what(kind, pcs.iter().map(|pc| pc.sector.number));
        let fee = match batch {
            Some(b) => (b.max_fee(pcs.len()), b.kind.fee_key()),
            None => (self.policy.fees.commit.clone(), "MaxCommitGasFee"),
        };
        Ok(Payment::plan(
            &*self.chain,
            &self.policy.collateral,
            what,
            "pledge",
            collateral,
            fee,
        )
        .await?)
    }

    /// The address that can pay `pay` now. Otherwise the step's outcome while it waits: the
    /// reason recorded once (a `Waiting` event, logged), then an epoch at a time until funds
    /// arrive. No retry is spent.
    async fn sender_or_wait(
        &self,
        s: &Sector,
        pay: &Payment,
        use_: Use,
    ) -> Result<chain::Address, (Option<Event>, Consumed)> {
        match pay.sender(&*self.chain, &self.policy.senders, use_).await {
            Ok(Ok(from)) => Ok(from),
            Ok(Err(why)) => Err(self.wait_saying(s, why).await),
            Err(e) => Err((Some(Event::Failed(e.into())), None)),
        }
    }

    /// A step that cannot go on yet: the reason recorded once (a `Waiting` event, logged),
    /// then an epoch at a time until it can.
    async fn wait_saying(&self, s: &Sector, why: String) -> (Option<Event>, Consumed) {
        if s.waiting.as_deref() != Some(why.as_str()) {
            tracing::warn!(sector = s.sector.number, "{why}");
            return (Some(Event::Waiting(why)), None);
        }
        let waited = async {
            let head = self.chain.head().await?.height;
            self.chain.wait_epoch(head + 1).await
        };
        match waited.await {
            Ok(_) => (None, None),
            Err(e) => (Some(Event::Failed(e.into())), None),
        }
    }
}

#[path = "batch_send.rs"]
mod batch_send;
#[path = "rebuild.rs"]
mod rebuild;
#[path = "terminate.rs"]
mod terminate;
pub use rebuild::RebuildRefused;

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
