//! The WindowPoSt scheduler: when a deadline opens, it proves the deadline's sectors through
//! the task scheduler (WDP goes ahead of every sealing task), skipping sectors it cannot read
//! (they become faulty); ahead of each deadline it checks the sectors (reads the challenged
//! leaves, like `lotus-miner proving check`), declares the unreadable ones faulty before they
//! can be missed, and declares faulty ones recovered once they read again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::tasks::{PoStTarget, TaskError, TaskOutput};
use api::TaskCall;
use resources::{SectorRef, SectorSize};
use serde::Serialize;

use crate::cluster::{ClusterView, PoStSelector};
use crate::manager::Manager;
use chain::{Call, Chain, ChainError, DeadlineState, Partitions, RandKind};
use chain::{DeadlineInfo, DEADLINES};

/// Why a WindowPoSt step (reading the deadlines, a check, a message) did not get done.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error("message {id} failed (exit code {exit_code}): {error}")]
    MessageFailed {
        id: String,
        exit_code: i64,
        error: String,
    },
    #[error("deadline {index} does not exist: the chain has {count}")]
    NoDeadline { index: u64, count: usize },
}

/// How long after a check finds sectors unprovable they are checked again before they are
/// reported as lost: longer than a worker's removal time (10 s) and a failing path's grace
/// (30 s), so a store that restarts, or whose machine is given up meanwhile, is not taken for
/// unreadable copies.
const RECHECK_AFTER: Duration = Duration::from_secs(30);

/// What happened at a deadline's last opening, for `proving deadlines`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeadlineRun {
    pub open: i64,
    /// "proven", "failed: why", or "nothing to prove".
    pub outcome: String,
    pub skipped: Vec<u64>,
    /// The first of `messages`.
    pub message: Option<String>,
    /// Every SubmitWindowedPoSt sent (one per `PARTITIONS_PER_MESSAGE` partitions).
    pub messages: Vec<String>,
    /// How long the proofs took, from the first WDP call to the last proof (retries included).
    pub proof_ms: Option<u64>,
}

/// What the WindowPoSt scheduler asks of the sealing side and tells it (the pipeline; a fake
/// in tests).
pub trait ProvingSectors: Send + Sync {
    /// Whether sector `n` is being finalized or rebuilt here: the checks ahead of its deadline
    /// leave it out, so it is neither declared faulty nor recovered meanwhile (a proof at the
    /// deadline still covers it if the chain expects it).
    fn busy(&self, n: u64) -> bool;
    /// Sector `n` could not be proven, and why: its replica may need rebuilding.
    fn unprovable(&self, n: u64, why: &str);
}

pub struct WindowPoSt {
    chain: Arc<dyn Chain>,
    sectors: Arc<dyn ProvingSectors>,
    manager: Arc<Manager>,
    view: Arc<ClusterView>,
    actor: u64,
    size: SectorSize,
    /// `[Fees] MaxWindowPoStGasFee`: the MaxFee of proofs and declarations.
    max_fee: chain::TokenAmount,
    /// `[Addresses]`: proofs and declarations go from the control addresses no list claims,
    /// then the worker.
    senders: crate::funds::Senders,
    runs: Mutex<BTreeMap<u64, DeadlineRun>>,
}

/// What proving one message's partitions came to.
struct PartitionsRun {
    skipped: Vec<u64>,
    proof_ms: Option<u64>,
    /// The message's CID, or why there is none.
    sent: Result<String, String>,
}

/// Partitions one SubmitWindowedPoSt may prove (the miner actor's limit; lotus sends as many
/// messages as a deadline's partitions need).
pub const PARTITIONS_PER_MESSAGE: usize = 3;

/// What a PoSt call over one deadline found.
enum Proved {
    Proof(Vec<u8>),
    Unprovable(Vec<(u64, String)>),
}

impl WindowPoSt {
    /// The scheduler for `actor`'s deadlines (sectors of `size`); `spawn` starts it.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        chain: Arc<dyn Chain>,
        sectors: Arc<dyn ProvingSectors>,
        manager: Arc<Manager>,
        view: Arc<ClusterView>,
        actor: u64,
        size: SectorSize,
        max_fee: chain::TokenAmount,
        senders: crate::funds::Senders,
    ) -> Arc<WindowPoSt> {
        Arc::new(WindowPoSt {
            chain,
            sectors,
            manager,
            view,
            actor,
            size,
            max_fee,
            senders,
            runs: Mutex::new(BTreeMap::new()),
        })
    }

    /// Watches the head; at each deadline opening, proves it and checks the one after next.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut last_open = None;
            loop {
                let d = match me.chain.proving_deadline(me.actor).await {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!("WindowPoSt: reading the proving deadline: {e}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                if last_open != Some(d.open) {
                    last_open = Some(d.open);
                    let m = me.clone();
                    tokio::spawn(async move { m.prove(d).await });
                    let m = me.clone();
                    let ahead = (d.index + 2) % DEADLINES;
                    tokio::spawn(async move { m.declare_ahead(ahead).await });
                }
                let _ = me.chain.wait_epoch(d.close).await;
            }
        })
    }

    fn record(&self, index: u64, run: DeadlineRun) {
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(index, run);
    }

    /// The sectors of deadline `index` a proof covers, by partition: those not proven yet in
    /// this opening (a sealer restarted inside an open deadline does not prove it twice).
    fn partitions(dl: &DeadlineState) -> (Vec<usize>, Vec<u64>) {
        let mut parts = Vec::new();
        let mut sectors = Vec::new();
        for (i, p) in dl.partitions.iter().enumerate() {
            let s = p.to_prove();
            if !s.is_empty() && !dl.proven.contains(&i) {
                parts.push(i);
                sectors.extend(s);
            }
        }
        (parts, sectors)
    }

    async fn targets(&self, numbers: &[u64]) -> Result<Vec<PoStTarget>, ChainError> {
        // One call for a deadline's thousands of sectors, not one per sector.
        let refs: Vec<SectorRef> = numbers
            .iter()
            .map(|n| SectorRef::new(self.actor, *n, self.size.seal_proof()))
            .collect();
        let active = self.chain.active_sectors(&refs).await?;
        Ok(active.iter().map(|a| a.target()).collect())
    }

    /// Runs a WDP call (a proof, or with `check_only` a check) over `numbers`.
    async fn run_post(
        &self,
        deadline: u64,
        randomness: proofs::Randomness,
        numbers: &[u64],
        check_only: bool,
    ) -> Result<Proved, TaskError> {
        let sectors = self.targets(numbers).await?;
        let selector = PoStSelector::new(&self.view, &sectors);
        let call = TaskCall::WindowPoSt {
            miner: self.actor,
            deadline,
            randomness,
            sectors,
            check_only,
        };
        match self.manager.run(call, 0, selector).await? {
            TaskOutput::WindowPoSt(p) => Ok(Proved::Proof(p)),
            TaskOutput::Unprovable(bad) => Ok(Proved::Unprovable(bad)),
            other => Err(TaskError::temporary(format!("WDP returned {other:?}"))),
        }
    }

    /// Proves deadline `d` while it is open.
    async fn prove(self: &Arc<Self>, d: DeadlineInfo) {
        let started = std::time::Instant::now();
        let run = self.prove_inner(d).await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let head = self.chain.head().await.map(|h| h.height).unwrap_or(-1);
        match &run.outcome[..] {
            "nothing to prove" => {}
            "proven" => {
                self.manager
                    .metrics()
                    .wdpost_proven(d.index, elapsed_ms as f64 / 1000.0);
                tracing::info!(
                deadline = d.index,
                open = d.open,
                close = d.close,
                head,
                elapsed_ms,
                proof_ms = run.proof_ms,
                skipped = ?run.skipped,
                "WindowPoSt: deadline proven"
                )
            }
            _ => tracing::warn!(
                deadline = d.index,
                open = d.open,
                close = d.close,
                head,
                elapsed_ms,
                proof_ms = run.proof_ms,
                "WindowPoSt: {}",
                run.outcome
            ),
        }
        let skipped = run.skipped.clone();
        self.record(d.index, run);
        self.report_unprovable(d.index, skipped);
    }

    async fn prove_inner(&self, d: DeadlineInfo) -> DeadlineRun {
        let mut run = DeadlineRun {
            open: d.open,
            ..Default::default()
        };
        let dl = match self.chain.deadline(self.actor, d.index).await {
            Ok(dl) => dl,
            Err(e) => {
                run.outcome = format!("failed: reading the deadlines: {e}");
                return run;
            }
        };
        let (parts, _) = Self::partitions(&dl);
        if parts.is_empty() {
            run.outcome = "nothing to prove".into();
            return run;
        }
        // The challenge, and the chain commitment the proofs go with (the actor takes any epoch
        // from the challenge on): both known since before the deadline opened.
        let rand = self.chain.randomness(RandKind::WindowPoSt, d.challenge);
        let commit = self.chain.randomness(RandKind::ChainCommit, d.challenge);
        let (rand, commit) = match (rand.await, commit.await) {
            (Ok(r), Ok(c)) => (r, c),
            (Err(e), _) | (_, Err(e)) => {
                run.outcome = format!("failed: challenge randomness: {e}");
                return run;
            }
        };
        // One proof and one message per group of partitions the actor takes at once, all at
        // the same time (each on whichever PoSt worker is free).
        let batches = parts
            .chunks(PARTITIONS_PER_MESSAGE)
            .map(|group| self.prove_partitions(d, &dl, group, rand, commit));
        let mut failed = Vec::new();
        for (group, b) in parts
            .chunks(PARTITIONS_PER_MESSAGE)
            .zip(futures_util::future::join_all(batches).await)
        {
            run.skipped.extend(b.skipped);
            run.proof_ms = run.proof_ms.max(b.proof_ms);
            match b.sent {
                Ok(id) => run.messages.push(id),
                Err(e) => failed.push(format!("partitions {group:?}: {e}")),
            }
        }
        run.skipped.sort_unstable();
        run.message = run.messages.first().cloned();
        run.outcome = match failed.is_empty() {
            true => "proven".into(),
            false => format!("failed: {}", failed.join("; ")),
        };
        run
    }

    /// Proves `parts` of deadline `d` (skipping the sectors that cannot be read: they become
    /// faulty) and sends their SubmitWindowedPoSt.
    async fn prove_partitions(
        &self,
        d: DeadlineInfo,
        dl: &DeadlineState,
        parts: &[usize],
        rand: proofs::Randomness,
        commit: proofs::Randomness,
    ) -> PartitionsRun {
        let mut numbers: Vec<u64> = parts
            .iter()
            .flat_map(|i| dl.partitions[*i].to_prove())
            .collect();
        let mut out = PartitionsRun {
            skipped: Vec::new(),
            proof_ms: None,
            sent: Err(String::new()),
        };
        let proving = std::time::Instant::now();
        let proof = loop {
            if numbers.is_empty() {
                break Vec::new();
            }
            match self.run_post(d.index, rand, &numbers, false).await {
                Ok(Proved::Proof(p)) => break p,
                Ok(Proved::Unprovable(bad)) if !bad.is_empty() => {
                    for (n, why) in &bad {
                        tracing::warn!(
                            sector = n,
                            deadline = d.index,
                            "WindowPoSt: skipping a sector that cannot be proven: {why}"
                        );
                        out.skipped.push(*n);
                    }
                    let bad: BTreeSet<u64> = bad.into_iter().map(|(n, _)| n).collect();
                    numbers.retain(|n| !bad.contains(n));
                }
                Ok(Proved::Unprovable(_)) => {
                    out.sent = Err("the proof named no faulty sector".into());
                    return out;
                }
                Err(e) => {
                    // The prover was lost (a PoSt worker killed, say): try again while the
                    // deadline is open; the chain records the miss if it closes first.
                    let head = self.chain.head().await.map(|h| h.height).unwrap_or(d.close);
                    if head + 1 < d.close {
                        tracing::warn!(deadline = d.index, "WindowPoSt failed, trying again: {e}");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                    out.sent = Err(e.to_string());
                    return out;
                }
            }
        };
        out.proof_ms = Some(proving.elapsed().as_millis() as u64);
        let call = window_post_call(d, dl, parts, &out.skipped, self.size, proof, commit);
        out.sent = self.push_and_wait(call).await.map_err(|e| e.to_string());
        out
    }

    async fn push_and_wait(&self, call: Call) -> Result<String, PostError> {
        let from = self
            .senders
            .post_sender(&*self.chain, &self.max_fee)
            .await?;
        let id = self
            .chain
            .send(
                from,
                call,
                chain::TokenAmount::default(),
                self.max_fee.clone(),
            )
            .await?;
        loop {
            match self.chain.receipt(&id).await? {
                Some(r) if r.exit_code == 0 => return Ok(id),
                Some(r) => {
                    return Err(PostError::MessageFailed {
                        id,
                        exit_code: r.exit_code,
                        error: r.error,
                    })
                }
                None => {
                    let h = self.chain.head().await?;
                    let _ = self.chain.wait_epoch(h.height + 1).await;
                }
            }
        }
    }

    /// Checks deadline `index`'s sectors before it opens: declares the unreadable ones faulty
    /// and the faulty ones that read again recovered.
    async fn declare_ahead(self: &Arc<Self>, index: u64) {
        if let Err(e) = self.declare_ahead_inner(index).await {
            tracing::warn!(deadline = index, "WindowPoSt: checking sectors ahead: {e}");
        }
    }

    async fn declare_ahead_inner(self: &Arc<Self>, index: u64) -> Result<(), PostError> {
        let dl = self.deadline(index).await?;
        // Sectors being finalized or rebuilt here are left as the chain has them.
        let all: Vec<u64> = dl
            .partitions
            .sectors()
            .into_iter()
            .filter(|n| !self.sectors.busy(*n))
            .collect();
        if all.is_empty() {
            return Ok(());
        }
        let bad: BTreeSet<u64> = self
            .check(index, &all)
            .await?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        self.report_unprovable(index, bad.iter().copied().collect());
        let considered: BTreeSet<u64> = all.iter().copied().collect();
        let (mut faulty, recovering) = (dl.partitions.faults(), dl.partitions.recoveries());
        faulty.retain(|n| considered.contains(n));
        let new_faults: Vec<u64> = bad
            .iter()
            .filter(|n| !faulty.contains(n))
            .copied()
            .collect();
        let recovered: Vec<u64> = faulty
            .iter()
            .filter(|n| !bad.contains(n) && !recovering.contains(n))
            .copied()
            .collect();
        if !new_faults.is_empty() {
            tracing::warn!(deadline = index, sectors = ?new_faults, "WindowPoSt: declaring faults");
            let faults = declarations(index, &dl, &new_faults);
            let p = lotus::miner::DeclareFaultsParams { faults };
            self.push_and_wait(Call::of(&p).expect("params encode"))
                .await?;
        }
        if !recovered.is_empty() {
            tracing::info!(deadline = index, sectors = ?recovered, "WindowPoSt: declaring recoveries");
            let recoveries = declarations(index, &dl, &recovered);
            let p = lotus::miner::DeclareFaultsRecoveredParams { recoveries };
            self.push_and_wait(Call::of(&p).expect("params encode"))
                .await?;
        }
        Ok(())
    }

    /// Sectors found unprovable are checked again `RECHECK_AFTER` later, and those still
    /// unreadable are reported to the sealing side (which rebuilds a lost replica): a path that
    /// fails once does not cost a replica.
    fn report_unprovable(self: &Arc<Self>, index: u64, bad: Vec<u64>) {
        if bad.is_empty() {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(RECHECK_AFTER).await;
            let bad: Vec<u64> = bad.into_iter().filter(|n| !me.sectors.busy(*n)).collect();
            match me.check(index, &bad).await {
                Ok(still) => {
                    for (n, why) in still {
                        me.sectors.unprovable(n, &why);
                    }
                }
                Err(e) => tracing::warn!(deadline = index, "WindowPoSt: checking again: {e}"),
            }
        });
    }

    /// `proving check`: the sectors of deadline `index` (or `numbers`) that cannot be proven.
    pub async fn check(
        &self,
        index: u64,
        numbers: &[u64],
    ) -> Result<Vec<(u64, String)>, PostError> {
        let head = self.chain.head().await?.height;
        let rand = self.chain.randomness(RandKind::WindowPoSt, head).await?;
        // One check per set of workers holding the sectors, all at once: each reads the
        // challenged leaves of what it holds.
        let groups = self.by_holders(numbers);
        let checks = groups.iter().map(|g| self.run_post(index, rand, g, true));
        let mut bad = Vec::new();
        for r in futures_util::future::join_all(checks).await {
            match r? {
                Proved::Unprovable(b) => bad.extend(b),
                Proved::Proof(_) => {
                    return Err(PostError::Task(TaskError::temporary(
                        "a check returned a proof",
                    )))
                }
            }
        }
        bad.sort_unstable();
        Ok(bad)
    }

    /// `numbers` grouped by the workers that hold their files (sectors no path holds in one
    /// group of their own).
    fn by_holders(&self, numbers: &[u64]) -> Vec<Vec<u64>> {
        use sched::StorageView;
        let mut groups: BTreeMap<Vec<sched::WorkerId>, Vec<u64>> = BTreeMap::new();
        let mut holders = Vec::new();
        for n in numbers {
            holders.clear();
            let s = SectorRef::new(self.actor, *n, self.size.seal_proof());
            self.view.holders(&s, &mut holders);
            holders.sort_unstable();
            groups.entry(holders.clone()).or_default().push(*n);
        }
        groups.into_values().collect()
    }

    /// The sectors of deadline `index`.
    pub async fn deadline_sectors(&self, index: u64) -> Result<Vec<u64>, PostError> {
        Ok(self
            .deadline(index)
            .await?
            .partitions
            .sectors()
            .into_iter()
            .collect())
    }

    /// Deadline `index` as the chain holds it.
    async fn deadline(&self, index: u64) -> Result<DeadlineState, PostError> {
        if index >= DEADLINES {
            return Err(PostError::NoDeadline {
                index,
                count: DEADLINES as usize,
            });
        }
        Ok(self.chain.deadline(self.actor, index).await?)
    }

    pub fn runs(&self) -> BTreeMap<u64, DeadlineRun> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// SubmitWindowedPoSt for `parts` of deadline `d`, leaving out `skipped` sectors partition by
/// partition, committing to the chain at the deadline's challenge.
fn window_post_call(
    d: DeadlineInfo,
    dl: &DeadlineState,
    parts: &[usize],
    skipped: &[u64],
    size: SectorSize,
    proof: Vec<u8>,
    commit: proofs::Randomness,
) -> Call {
    let partitions = parts
        .iter()
        .map(|i| lotus::miner::PoStPartition {
            index: *i as u64,
            skipped: lotus::miner::sectors_bitfield(
                skipped
                    .iter()
                    .copied()
                    .filter(|n| dl.partitions[*i].sectors.contains(n)),
            ),
        })
        .collect();
    let post_proof =
        lotus::RegisteredPoStProof::from(crate::daemon::seal_proof(size).window_post().number());
    let p = lotus::miner::SubmitWindowedPoStParams {
        deadline: d.index,
        partitions,
        proofs: vec![lotus::PoStProof {
            post_proof,
            proof_bytes: proof,
        }],
        chain_commit_epoch: d.challenge,
        chain_commit_rand: lotus::Randomness(commit.to_vec()),
    };
    Call::of(&p).expect("WindowPoSt params encode")
}

/// `sectors` of deadline `index`, declared partition by partition.
fn declarations(
    index: u64,
    dl: &DeadlineState,
    sectors: &[u64],
) -> Vec<lotus::miner::SectorsDeclaration> {
    dl.partitions
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let mine: Vec<u64> = sectors
                .iter()
                .copied()
                .filter(|n| p.sectors.contains(n))
                .collect();
            (!mine.is_empty()).then(|| lotus::miner::SectorsDeclaration {
                deadline: index,
                partition: i as u64,
                sectors: lotus::miner::sectors_bitfield(mine),
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "wdpost_tests.rs"]
mod tests;
