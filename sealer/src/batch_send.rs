//! The pipeline's side of batching: the checks a pre-commit or prove-commit makes before it is
//! sent or queued, a sector's wait in its queue, and the loop that sends each queue's batches
//! when [`crate::batch`] says they are due.

use std::sync::Weak;

use futures_util::StreamExt;
use std::time::Duration;

use api::tasks::TaskError;
use api::{BatchQueued, BatchSent, SectorState};
use chain::calls::PreCommitSpec;
use lotus::miner::Method;
use proofs::SealedCommitments;
use resources::SectorRef;

use super::{Consumed, Pipeline};
use crate::batch::{describe, BatchConfig, BatchKind, Batcher, Due, Member, Outcome, Queued};
use crate::fsm::{now_ms, Event, Sector};
use crate::funds::{Payment, Use};

/// What a sector's pre-commit says, less its expiration (counted from when it is sent).
#[derive(Debug, Clone)]
pub(super) struct PreItem {
    pub sector: SectorRef,
    pub comms: SealedCommitments,
    pub ticket_epoch: i64,
}

/// A sector's proof, for its prove-commit.
#[derive(Debug, Clone)]
pub(super) struct CommitItem {
    pub sector: SectorRef,
    pub proof: Vec<u8>,
}

/// "pre-commit of sector 3", "pre-commit batch of 3 sectors (1, 2, 5)": in number order,
/// whatever order they joined the batch in.
pub(super) fn what(kind: BatchKind, sectors: impl Iterator<Item = u64>) -> String {
    let mut n: Vec<u64> = sectors.collect();
    n.sort_unstable();
    let n: Vec<String> = n.iter().map(u64::to_string).collect();
    match n.len() {
        1 => format!("{} of sector {}", kind.what(), n[0]),
        len => format!("{} batch of {len} sectors ({})", kind.what(), n.join(", ")),
    }
}

/// Chain calls a batch makes at once (one per member: its pre-commit on chain).
pub(super) const CHAIN_CALLS_AT_ONCE: usize = 16;

/// Tells each member the same outcome.
fn answer<T>(members: Vec<Member<T>>, outcome: impl Fn() -> Outcome) {
    for m in members {
        let _ = m.reply.send(outcome());
    }
}

impl Pipeline {
    /// `item`'s pre-commit sent at `head`: committed from its activation on, which follows the
    /// seed, for `[Sealing] CommittedCapacitySectorLifetime` (lotus counts the lifetime from
    /// the pre-commit's epoch likewise).
    pub(super) fn spec(&self, item: &PreItem, head: i64) -> PreCommitSpec {
        PreCommitSpec {
            sector: item.sector,
            comms: item.comms,
            ticket_epoch: item.ticket_epoch,
            expiration: head + self.chain.precommit_challenge_delay() + self.lifetime,
        }
    }

    /// Before a pre-commit is sent or queued: one sent before (a restart, an answer lost) and
    /// still in the pool is followed, not sent twice (the pool first, then the chain: a message
    /// that lands in between is seen); one on chain for this replica is taken as landed; a
    /// ticket too old to land sends the sector for a fresh one. Otherwise the head's height.
    pub(super) async fn precommit_checks(
        &self,
        sector: SectorRef,
        comms: SealedCommitments,
        ticket_epoch: i64,
    ) -> Result<i64, Event> {
        let failed = |e: chain::ChainError| Event::Failed(e.into());
        if let Some(id) = self
            .chain
            .pending(Method::PreCommitSectorBatch2, sector.number)
            .await
            .map_err(failed)?
        {
            return Err(Event::PreCommitSent(id));
        }
        // Sealed again after its pre-commit landed (a fallback to PC1): the same ticket made
        // the same replica, and the chain already has it (lotus checks too).
        let head = self.chain.head().await.map_err(failed)?.height;
        match self.chain.precommit(&sector).await.map_err(failed)? {
            Some(pc) if pc.comm_r == comms.comm_r && pc.ticket_epoch == ticket_epoch => {
                return Err(Event::PreCommitLanded(pc.precommit_epoch));
            }
            Some(pc) => {
                let why = format!(
                    "the chain holds a pre-commit of sector {} with commR {} (ticket epoch {}), \
                     this replica has commR {} (ticket epoch {ticket_epoch})",
                    sector.number,
                    chain::hex(&pc.comm_r),
                    pc.ticket_epoch,
                    chain::hex(&comms.comm_r),
                );
                return Err(Event::Failed(TaskError::temporary(why)));
            }
            None => {}
        }
        // It lands at the next epoch at the earliest: a ticket too old by then is refused by
        // the miner actor, so the sector is sealed again on a fresh one.
        let max_age = self.chain.max_ticket_age();
        let earliest = head + 1 - max_age;
        if ticket_epoch < earliest {
            let why = format!(
                "ticket epoch {ticket_epoch} is too old to pre-commit at epoch {}: the miner \
                 actor takes tickets from epoch {earliest} (MaxPreCommitRandomnessLookback \
                 {max_age}): a fresh ticket, and PC1 and PC2 again",
                head + 1
            );
            return Err(Event::TicketExpired(why));
        }
        Ok(head)
    }

    /// Before a prove-commit is sent or queued: one still in the pool, or the sector already
    /// active, is not sent twice (the pool first); a pre-commit a reorg took back sends the
    /// sector back to pre-commit. Otherwise its pre-commit as the chain holds it.
    pub(super) async fn commit_checks(
        &self,
        sector: SectorRef,
        precommit_epoch: Option<i64>,
    ) -> Result<chain::PreCommitOnChain, Event> {
        let failed = |e: chain::ChainError| Event::Failed(e.into());
        if let Some(id) = self
            .chain
            .pending(Method::ProveCommitSectors3, sector.number)
            .await
            .map_err(failed)?
        {
            return Err(Event::CommitSent(id));
        }
        if let Some(a) = self.chain.active_sector(&sector).await.map_err(failed)? {
            return Err(Event::CommitLanded(a.activation));
        }
        let head = self.chain.head().await.map_err(failed)?.height;
        match self.chain.precommit(&sector).await.map_err(failed)? {
            Some(pc) => match self.expired(pc.precommit_epoch, head) {
                Some(why) => Err(Event::PreCommitExpired(why)),
                None => Ok(pc),
            },
            // Gone because it expired (the chain removed it), not because of a reorg.
            None => match precommit_epoch.and_then(|e| self.expired(e, head)) {
                Some(why) => Err(Event::PreCommitExpired(format!(
                    "{why}: it expired unproven and the chain removed it"
                ))),
                None => Err(Event::PreCommitReverted(
                    "its pre-commit is no longer on chain (a reorg): sent again, with a new seed \
                     and proof"
                        .into(),
                )),
            },
        }
    }

    /// Why a pre-commit that landed at `landed` can no longer be proven by a message landing
    /// after `head`, if it cannot (MaxProveCommitDuration after it landed).
    pub(super) fn expired(&self, landed: i64, head: i64) -> Option<String> {
        let max = self.chain.max_prove_commit_duration();
        let last = landed + max;
        (head + 1 > last).then(|| {
            format!(
                "its pre-commit (landed at epoch {landed}) could be proven until epoch {last} \
                 (MaxProveCommitDuration {max}), the head is at {head}"
            )
        })
    }

    /// Whether sector `s`, due by `deadline`, joins its batch queue, and how the batch goes:
    /// not when batching is off, nor while the base fee is under the key's threshold, nor when
    /// its last batch failed (it goes alone).
    pub(super) async fn batch_now(
        &self,
        cfg: &BatchConfig,
        deadline: i64,
        s: &Sector,
    ) -> Result<Option<String>, chain::ChainError> {
        if !cfg.enabled || s.send_alone {
            return Ok(None);
        }
        let fee = self.chain.base_fee().await?;
        if !cfg.batches_at(fee.as_ref()) {
            tracing::debug!(
                "base fee {:?} is under the batching threshold {}: sent alone",
                fee.map(|f| lotus::json::fil_text(&f)),
                lotus::json::fil_text(&cfg.above_base_fee)
            );
            return Ok(None);
        }
        Ok(Some(format!(
            "queued for a {} batch: sent when {} sectors wait, after {:?}, or {:?} before epoch \
             {deadline}",
            cfg.kind.what(),
            cfg.max,
            cfg.wait,
            cfg.slack
        )))
    }

    /// A sector's wait in `batcher`'s queue, until its batch goes (or cannot, for want of
    /// funds: the reason is recorded once and it waits on, no retry spent).
    pub(super) async fn in_batch<T>(
        &self,
        s: &Sector,
        batcher: &Batcher<T>,
        deadline: i64,
        item: T,
    ) -> (Option<Event>, Consumed) {
        // Batching turned off while it waited (a restart with the key changed): alone.
        if !batcher.cfg.enabled {
            let why = format!(
                "{} batching is off now: sent alone",
                batcher.cfg.kind.what()
            );
            return (Some(Event::Unbatched(why)), None);
        }
        // Since it joined (the log survives a restart; a wait's events do not reset it).
        let since_ms = self
            .sectors
            .log(s.sector.number)
            .unwrap_or_default()
            .iter()
            .rev()
            .find(|l| l.kind == "SectorBatched")
            .map_or(s.since_ms, |l| l.timestamp_ms);
        let q = Queued {
            sector: s.sector.number,
            deadline,
            since_ms,
        };
        let rx = batcher.join(q, item);
        // Removed (or moved on) as it joined: out again (`Pipeline::start` may have looked
        // before it was in).
        if self.sectors.get(s.sector.number).map(|x| x.state) != Some(s.state) {
            batcher.leave(s.sector.number);
            return (None, None);
        }
        let ev = match rx.await {
            Ok(Outcome::Alone(why)) => Event::Unbatched(why),
            Ok(Outcome::Sent(id)) => match batcher.cfg.kind {
                BatchKind::PreCommit => Event::PreCommitSent(id),
                BatchKind::Commit => Event::CommitSent(id),
            },
            Ok(Outcome::Wait(why)) if s.waiting.as_deref() != Some(why.as_str()) => {
                tracing::warn!(sector = s.sector.number, "{why}");
                Event::Waiting(why)
            }
            Ok(Outcome::Failed(e)) => Event::Failed(e),
            // Waits on (the same reason), or left the queue: the step runs again.
            Ok(Outcome::Wait(_)) | Err(_) => return (None, None),
        };
        (Some(ev), None)
    }

    /// `sectors batching precommit|commit`.
    pub fn batch_pending(&self, kind: BatchKind) -> Vec<BatchQueued> {
        let queued = match kind {
            BatchKind::PreCommit => self.precommits.queued(),
            BatchKind::Commit => self.commits.queued(),
        };
        let now = now_ms();
        queued
            .into_iter()
            .map(|q| BatchQueued {
                sector: q.sector,
                deadline: q.deadline,
                waited_s: now.saturating_sub(q.since_ms) / 1000,
            })
            .collect()
    }

    /// `sectors batching ... --publish-now`: what the flush sent.
    pub async fn batch_flush(&self, kind: BatchKind) -> Vec<BatchSent> {
        let rx = match kind {
            BatchKind::PreCommit => self.precommits.flush(),
            BatchKind::Commit => self.commits.flush(),
        };
        rx.await.unwrap_or_default()
    }

    /// Sector `n` leaves the batch queues it no longer belongs in (removed while it waited).
    pub(super) fn unqueue(&self, n: u64) {
        let state = self.sectors.get(n).map(|s| s.state);
        if state != Some(SectorState::SubmitPreCommitBatch) {
            self.precommits.leave(n);
        }
        if state != Some(SectorState::SubmitCommitAggregate) {
            self.commits.leave(n);
        }
    }

    /// One round of `kind`'s queue: its batch sent if due. Returns how long to sleep unless a
    /// sector joins (`None`: until one does).
    async fn batch_round(&self, kind: BatchKind) -> Option<Duration> {
        let head = match self.chain.head().await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!("{} batches: {e}", kind.what());
                return Some(Duration::from_secs(1));
            }
        };
        let delay = Duration::from_millis(head.block_delay_ms);
        let now = now_ms();
        let due = match kind {
            BatchKind::PreCommit => self.precommits.due(head.height, delay, now),
            BatchKind::Commit => self.commits.due(head.height, delay, now),
        };
        let reason = match due {
            Due::Idle => {
                // A flush of a queue emptied meanwhile (its sectors removed): nothing went.
                match kind {
                    BatchKind::PreCommit => self.precommits.flushed(Vec::new()),
                    BatchKind::Commit => self.commits.flushed(Vec::new()),
                }
                return None;
            }
            Due::At(ms) => return Some(Duration::from_millis(ms.saturating_sub(now))),
            Due::Now(reason) => reason,
        };
        let sent = match kind {
            BatchKind::PreCommit => {
                let members = self.precommits.take();
                self.send_precommits(members, reason).await
            }
            BatchKind::Commit => {
                let members = self.commits.take();
                self.send_commits(members, reason).await
            }
        };
        let said = describe(kind, &sent);
        match sent.message.is_some() {
            true => tracing::info!("{said}"),
            // A batch that cannot go is tried every epoch: the same reason is said once a
            // minute, not at every try.
            false if repeated(kind, &said) => tracing::debug!("{said}"),
            false => tracing::warn!("{said}"),
        }
        let failed = sent.message.is_none() && !sent.sectors.is_empty();
        match kind {
            BatchKind::PreCommit => self.precommits.flushed(vec![sent]),
            BatchKind::Commit => self.commits.flushed(vec![sent]),
        }
        // A batch that could not go is tried again at the next epoch, not at once.
        if failed {
            let _ = self.chain.wait_epoch(head.height + 1).await;
        }
        Some(Duration::ZERO)
    }

    /// Members still in `state` (a sector removed meanwhile is left out, its waiter told
    /// nothing).
    fn still<T>(&self, members: Vec<Member<T>>, state: SectorState) -> Vec<Member<T>> {
        members
            .into_iter()
            .filter(|m| self.sectors.get(m.sector).is_some_and(|s| s.state == state))
            .collect()
    }

    /// Sends a pre-commit batch: each sector's deposit (the same for every committed-capacity
    /// sector of the miner's size, so asked once), MaxPreCommitBatchGasFee, one sender.
    async fn send_precommits(&self, members: Vec<Member<PreItem>>, reason: String) -> BatchSent {
        let mut members = self.still(members, SectorState::SubmitPreCommitBatch);
        let mut sent = BatchSent {
            sectors: Vec::new(),
            message: None,
            reason,
            error: None,
        };
        let head = match self.chain.head().await {
            Ok(h) => h.height,
            Err(e) => return self.batch_failed(sent, members, e.to_string()),
        };
        // A ticket too old by now: its sector steps again, and goes for a fresh one.
        let earliest = head + 1 - self.chain.max_ticket_age();
        members.retain(|m| m.item.ticket_epoch >= earliest);
        if members.is_empty() {
            sent.error = Some("no sector of the batch can still be sent".into());
            return sent;
        }
        sent.sectors = members.iter().map(|m| m.sector).collect();
        let specs: Vec<PreCommitSpec> = members.iter().map(|m| self.spec(&m.item, head)).collect();
        let pay = self
            .precommit_payment(&specs, Some(&self.precommits.cfg))
            .await;
        let call = chain::calls::precommit_batch(&specs);
        match pay {
            Ok(pay) => {
                self.send_batch(sent, members, pay, Use::PreCommit, call)
                    .await
            }
            Err(e) => self.batch_failed(sent, members, e.to_string()),
        }
    }

    /// Sends a prove-commit batch: each sector's pledge less its released deposit,
    /// MaxCommitBatchGasFee, one proof per sector.
    async fn send_commits(&self, members: Vec<Member<CommitItem>>, reason: String) -> BatchSent {
        let mut members = self.still(members, SectorState::SubmitCommitAggregate);
        let mut sent = BatchSent {
            sectors: Vec::new(),
            message: None,
            reason,
            error: None,
        };
        // A pre-commit gone (a reorg): its sector steps again and pre-commits anew.
        let mut pcs = Vec::new();
        let mut kept = Vec::new();
        let head = match self.chain.head().await {
            Ok(h) => h.height,
            Err(e) => return self.batch_failed(sent, members, e.to_string()),
        };
        // One lookup per member, several at once: on a Lotus node across the network, 819
        // lookups one after the other take longer than the batch waited.
        let refs: Vec<SectorRef> = members.iter().map(|m| m.item.sector).collect();
        let chain = &self.chain;
        let found: Vec<_> = futures_util::stream::iter(refs)
            .map(|s| async move { chain.precommit(&s).await })
            .buffered(CHAIN_CALLS_AT_ONCE)
            .collect()
            .await;
        for (m, pc) in members.drain(..).zip(found) {
            match pc {
                // Expired meanwhile: it steps again, and goes for a fresh ticket.
                Ok(Some(pc)) if self.expired(pc.precommit_epoch, head).is_some() => {}
                Ok(Some(pc)) => {
                    pcs.push(pc);
                    kept.push(m);
                }
                Ok(None) => {}
                Err(e) => {
                    kept.push(m);
                    return self.batch_failed(sent, kept, e.to_string());
                }
            }
        }
        if kept.is_empty() {
            sent.error = Some("no sector of the batch can still be sent".into());
            return sent;
        }
        // One proof per sector: only as many as one message can carry; the rest wait for the
        // next batch.
        let fit = crate::batch::proofs_that_fit(kept.iter().map(|m| m.item.proof.len()));
        if fit < kept.len() {
            let rest = kept.split_off(fit);
            pcs.truncate(fit);
            self.commits.give_back(rest);
        }
        sent.sectors = kept.iter().map(|m| m.sector).collect();
        let proofs: Vec<(u64, Vec<u8>)> = kept
            .iter()
            .map(|m| (m.sector, m.item.proof.clone()))
            .collect();
        let call = chain::calls::prove_commit_batch(&proofs);
        match self
            .commit_payment(&pcs, BatchKind::Commit, Some(&self.commits.cfg))
            .await
        {
            Ok(pay) => self.send_batch(sent, kept, pay, Use::Commit, call).await,
            Err(e) => self.batch_failed(sent, kept, e.message),
        }
    }

    /// Picks the sender and sends; every member hears the outcome.
    async fn send_batch<T>(
        &self,
        mut sent: BatchSent,
        members: Vec<Member<T>>,
        pay: Payment,
        use_: Use,
        call: chain::Call,
    ) -> BatchSent {
        let from = match pay.sender(&*self.chain, &self.policy.senders, use_).await {
            Ok(Ok(from)) => from,
            Ok(Err(why)) => {
                answer(members, || Outcome::Wait(why.clone()));
                sent.error = Some(why);
                return sent;
            }
            Err(e) => return self.batch_failed(sent, members, e.to_string()),
        };
        match self.chain.send(from, call, pay.value, pay.max_fee).await {
            Ok(id) => {
                answer(members, || Outcome::Sent(id.clone()));
                sent.message = Some(id);
                sent
            }
            Err(e) => self.batch_failed(sent, members, format!("sending the batch: {e}")),
        }
    }

    /// A batch that could not be sent: one sector alone fails its step; several each go
    /// alone next (a failure of one must not hold the others, and is then its own).
    fn batch_failed<T>(
        &self,
        mut sent: BatchSent,
        members: Vec<Member<T>>,
        why: String,
    ) -> BatchSent {
        sent.sectors = members.iter().map(|m| m.sector).collect();
        match members.len() {
            1 => answer(members, || {
                Outcome::Failed(TaskError::temporary(why.clone()))
            }),
            n => answer(members, || {
                Outcome::Alone(format!(
                    "its batch of {n} sectors could not be sent ({why}): sent alone"
                ))
            }),
        }
        sent.error = Some(why);
        sent
    }
}

/// The loop that sends `kind`'s batches for as long as the pipeline lives: a round whenever a
/// sector joins, an operator flushes, or the next batch falls due.
pub(super) async fn run(pipeline: Weak<Pipeline>, kind: BatchKind) {
    let Some(wake) = pipeline.upgrade().map(|p| match kind {
        BatchKind::PreCommit => p.precommits.waker(),
        BatchKind::Commit => p.commits.waker(),
    }) else {
        return;
    };
    loop {
        let next = {
            let Some(p) = pipeline.upgrade() else { return };
            p.batch_round(kind).await
        };
        // At most a few seconds at a time, to notice the pipeline gone.
        let nap = next.unwrap_or(Duration::MAX).min(Duration::from_secs(5));
        if !nap.is_zero() {
            let _ = tokio::time::timeout(nap, wake.notified()).await;
        }
    }
}

/// Whether `said` is what the last failed batch of `kind` said, less than a minute ago.
fn repeated(kind: BatchKind, said: &str) -> bool {
    type Last = std::sync::Mutex<Option<(String, std::time::Instant)>>;
    static PRE: Last = std::sync::Mutex::new(None);
    static COMMIT: Last = std::sync::Mutex::new(None);
    let last = match kind {
        BatchKind::PreCommit => &PRE,
        BatchKind::Commit => &COMMIT,
    };
    let mut g = last.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((s, at)) = g.as_ref() {
        if s == said && at.elapsed() < Duration::from_secs(60) {
            return true;
        }
    }
    *g = Some((said.to_string(), std::time::Instant::now()));
    false
}
