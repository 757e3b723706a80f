//! Batching of pre-commits and prove-commits, as lotus's `[Sealing]` BatchPreCommits and
//! AggregateCommits do it: a sector ready to send joins a queue (SubmitPreCommitBatch,
//! SubmitCommitAggregate) and one message carries many. [`BatchConfig::due`] is the rule
//! (when a batch goes; pure), [`Batcher`] the queue; the pipeline sends what it hands out.
//!
//! A batch goes when it is full (MaxPreCommitBatch, MaxCommitBatch), when its oldest member has
//! waited PreCommitBatchWait or CommitBatchWait, when a member's deadline (the epoch its ticket
//! expires, or its prove-commit window closes) is within the slack, or when an operator flushes
//! it (`sectors batching precommit --publish-now`). While the network's base fee is below
//! BatchPreCommitAboveBaseFee or AggregateAboveBaseFee, batching saves nothing and sectors are
//! sent one by one (lotus's rule: with the defaults, one by one on today's mainnet).
//! Prove-commits carry one proof per sector: SnarkPack aggregation needs the
//! `v28-fil-inner-product-v1.srs` file, which this build does not use (MinCommitBatch is read
//! for lotus's configs and only matters to aggregation).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chain::TokenAmount;
use lotus::json::fil_text;
use tokio::sync::{oneshot, Notify};

/// Which message a batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    PreCommit,
    Commit,
}

impl BatchKind {
    /// The `[Sealing]` keys of its count, wait and slack, and its `[Fees]` key.
    fn keys(self) -> [&'static str; 4] {
        match self {
            BatchKind::PreCommit => [
                "MaxPreCommitBatch",
                "PreCommitBatchWait",
                "PreCommitBatchSlack",
                "MaxPreCommitBatchGasFee",
            ],
            BatchKind::Commit => [
                "MaxCommitBatch",
                "CommitBatchWait",
                "CommitBatchSlack",
                "MaxCommitBatchGasFee",
            ],
        }
    }

    pub fn fee_key(self) -> &'static str {
        self.keys()[3]
    }

    /// "pre-commit", "prove-commit".
    pub fn what(self) -> &'static str {
        match self {
            BatchKind::PreCommit => "pre-commit",
            BatchKind::Commit => "prove-commit",
        }
    }
}

/// One kind's `[Sealing]` batch keys and its `[Fees]` batch fee.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchConfig {
    pub kind: BatchKind,
    /// BatchPreCommits, AggregateCommits.
    pub enabled: bool,
    /// MaxPreCommitBatch, MaxCommitBatch: sent at once when this many wait.
    pub max: usize,
    /// MinCommitBatch (aggregation only); 1 for pre-commits.
    pub min: usize,
    /// PreCommitBatchWait, CommitBatchWait: the longest a sector waits in the queue.
    pub wait: Duration,
    /// PreCommitBatchSlack, CommitBatchSlack: sent this long before a member's deadline.
    pub slack: Duration,
    /// BatchPreCommitAboveBaseFee, AggregateAboveBaseFee: below this base fee, one by one.
    pub above_base_fee: TokenAmount,
    /// `[Fees.MaxPreCommitBatchGasFee]`, `[Fees.MaxCommitBatchGasFee]`: Base + PerSector × n.
    pub fee_base: TokenAmount,
    pub fee_per_sector: TokenAmount,
}

/// Both kinds.
#[derive(Debug, Clone, PartialEq)]
pub struct Batching {
    pub precommit: BatchConfig,
    pub commit: BatchConfig,
}

impl Default for Batching {
    /// Off, as a test pipeline wants it; the config's defaults are lotus's.
    fn default() -> Self {
        let off = |kind, max| BatchConfig {
            kind,
            enabled: false,
            max,
            min: 1,
            wait: Duration::from_secs(24 * 3600),
            slack: Duration::from_secs(3600),
            above_base_fee: TokenAmount::default(),
            fee_base: TokenAmount::default(),
            fee_per_sector: TokenAmount::default(),
        };
        Batching {
            precommit: off(BatchKind::PreCommit, 256),
            commit: off(BatchKind::Commit, 819),
        }
    }
}

/// When the queue's batch goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Nothing waits.
    Idle,
    /// Now, and why.
    Now(String),
    /// Not before this many milliseconds from now (unix ms), unless something changes.
    At(u64),
}

/// A sector waiting in a batch queue: its deadline epoch and since when it waits (unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    pub sector: u64,
    pub deadline: i64,
    pub since_ms: u64,
}

impl BatchConfig {
    /// Whether to batch at this base fee (`None`: the node did not say; batched).
    pub fn batches_at(&self, base_fee: Option<&TokenAmount>) -> bool {
        self.enabled && base_fee.is_none_or(|f| *f >= self.above_base_fee)
    }

    /// The most a batch of `n` sectors may pay for gas.
    pub fn max_fee(&self, n: usize) -> TokenAmount {
        self.fee_base.clone() + self.fee_per_sector.clone() * n as u64
    }

    /// When a batch of `queued` goes, at chain height `head` with epochs of `block_delay`, at
    /// time `now_ms`; `flush`: an operator asked for it now.
    pub fn due(
        &self,
        queued: &[Queued],
        head: i64,
        block_delay: Duration,
        now_ms: u64,
        flush: bool,
    ) -> Due {
        let [max_key, wait_key, slack_key, _] = self.kind.keys();
        let (Some(first), Some(oldest)) = (
            queued.iter().min_by_key(|q| (q.deadline, q.sector)),
            queued.iter().map(|q| q.since_ms).min(),
        ) else {
            return Due::Idle;
        };
        if flush {
            return Due::Now("flushed by the operator (sectors batching --publish-now)".into());
        }
        if queued.len() >= self.max.max(1) {
            return Due::Now(format!(
                "{} sectors wait ({max_key} {})",
                queued.len(),
                self.max
            ));
        }
        let epochs = (first.deadline - head).max(0) as u32;
        let left = block_delay.saturating_mul(epochs);
        if left <= self.slack {
            return Due::Now(format!(
                "sector {} must land by epoch {} ({} epochs, {left:?}, from the head at {head}: \
                 within {slack_key} {:?})",
                first.sector, first.deadline, epochs, self.slack
            ));
        }
        let waited_until = oldest + self.wait.as_millis() as u64;
        if now_ms >= waited_until {
            return Due::Now(format!(
                "its oldest sector waited {wait_key} {:?}",
                self.wait
            ));
        }
        let slack_at = now_ms + (left - self.slack).as_millis() as u64;
        Due::At(waited_until.min(slack_at))
    }
}

/// What a sector in the queue is told.
#[derive(Debug)]
pub enum Outcome {
    /// Its batch went in this message.
    Sent(String),
    /// Its batch could not go, and why (no sender has the funds): it waits, no retry spent.
    Wait(String),
    /// Sending failed.
    Failed(api::tasks::TaskError),
    /// Its batch failed: it goes alone, so that a failure is its own.
    Alone(String),
}

struct Entry<T> {
    item: T,
    queued: Queued,
    reply: oneshot::Sender<Outcome>,
}

/// One sector handed out to be sent, with where its outcome goes.
pub struct Member<T> {
    pub sector: u64,
    pub item: T,
    pub reply: oneshot::Sender<Outcome>,
    queued: Queued,
}

/// The most bytes of params one message carries: Lotus's pool refuses a signed message over
/// 64 KiB (MaxMessageSize); some room is left for the rest of it.
pub const MAX_PARAMS_BYTES: usize = 60 << 10;

/// How many of these proofs, in order, fit one ProveCommitSectors3 under
/// [`MAX_PARAMS_BYTES`] (at least one): a 32GiB proof is 1,920 bytes, so about 31 go in one
/// message without aggregation.
pub fn proofs_that_fit(lens: impl IntoIterator<Item = usize>) -> usize {
    // Each sector's activation manifest and the proof's byte-string header.
    const PER_SECTOR: usize = 16;
    let mut total = 0;
    let mut n = 0;
    for len in lens {
        total += len + PER_SECTOR;
        if total > MAX_PARAMS_BYTES {
            break;
        }
        n += 1;
    }
    n.max(1)
}

/// A batch queue: sectors join with what their message needs (`T`) and wait for the outcome.
pub struct Batcher<T> {
    pub cfg: BatchConfig,
    queue: Mutex<BTreeMap<u64, Entry<T>>>,
    flushes: Mutex<Vec<oneshot::Sender<Vec<api::BatchSent>>>>,
    wake: Arc<Notify>,
}

impl<T> Batcher<T> {
    pub fn new(cfg: BatchConfig) -> Batcher<T> {
        Batcher {
            cfg,
            queue: Mutex::new(BTreeMap::new()),
            flushes: Mutex::new(Vec::new()),
            wake: Arc::new(Notify::new()),
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Entry<T>>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sector `q.sector` waits for a batch with `item`; a second join replaces the first.
    pub fn join(&self, q: Queued, item: T) -> oneshot::Receiver<Outcome> {
        let (reply, rx) = oneshot::channel();
        self.queue().insert(
            q.sector,
            Entry {
                item,
                queued: q,
                reply,
            },
        );
        self.wake.notify_one();
        rx
    }

    /// Sector `n` leaves the queue (removed): its waiter is told nothing, and steps again.
    pub fn leave(&self, n: u64) {
        self.queue().remove(&n);
    }

    /// Who waits, oldest deadline first.
    pub fn queued(&self) -> Vec<Queued> {
        let mut v: Vec<Queued> = self.queue().values().map(|e| e.queued).collect();
        v.sort_by_key(|q| (q.deadline, q.sector));
        v
    }

    /// When the batch goes (see [`BatchConfig::due`]).
    pub fn due(&self, head: i64, block_delay: Duration, now_ms: u64) -> Due {
        let flush = !self
            .flushes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        self.cfg
            .due(&self.queued(), head, block_delay, now_ms, flush)
    }

    /// The next batch: at most the batch size, the nearest deadlines first.
    pub fn take(&self) -> Vec<Member<T>> {
        let order = self.queued();
        let mut q = self.queue();
        order
            .iter()
            .take(self.cfg.max.max(1))
            .filter_map(|x| q.remove(&x.sector))
            .map(|e| Member {
                sector: e.queued.sector,
                item: e.item,
                reply: e.reply,
                queued: e.queued,
            })
            .collect()
    }

    /// Members taken but not sent (the message would be too big) wait again, as they were.
    pub fn give_back(&self, members: Vec<Member<T>>) {
        let mut q = self.queue();
        for m in members {
            q.insert(
                m.sector,
                Entry {
                    item: m.item,
                    queued: m.queued,
                    reply: m.reply,
                },
            );
        }
        drop(q);
        self.wake.notify_one();
    }

    /// An operator's flush: the batch goes now, and the returned receiver has what was sent
    /// (nothing when the queue is empty).
    pub fn flush(&self) -> oneshot::Receiver<Vec<api::BatchSent>> {
        let (tx, rx) = oneshot::channel();
        if self.queue().is_empty() {
            let _ = tx.send(Vec::new());
        } else {
            self.flushes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(tx);
            self.wake.notify_one();
        }
        rx
    }

    /// Tells the operators who flushed what went.
    pub fn flushed(&self, sent: Vec<api::BatchSent>) {
        let waiting = std::mem::take(&mut *self.flushes.lock().unwrap_or_else(|e| e.into_inner()));
        for tx in waiting {
            let _ = tx.send(sent.clone());
        }
    }

    /// Notified when a sector joins or an operator flushes.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}

/// A batch's result for the operator and the log, its sectors in number order.
pub fn describe(kind: BatchKind, sent: &api::BatchSent) -> String {
    let mut sectors = sent.sectors.clone();
    sectors.sort_unstable();
    match (&sent.message, &sent.error) {
        (Some(m), _) => format!(
            "{} batch of {} sector(s) {:?} sent in {m} ({})",
            kind.what(),
            sectors.len(),
            sectors,
            sent.reason
        ),
        (None, e) => format!(
            "{} batch of sectors {:?} not sent ({}): {}",
            kind.what(),
            sectors,
            sent.reason,
            e.as_deref().unwrap_or("no reason given")
        ),
    }
}

/// `[Fees]`' batch fee as text, for a waiting sector's reason.
pub fn fee_text(cfg: &BatchConfig, n: usize) -> String {
    format!(
        "{} ({} for {n} sectors)",
        cfg.kind.fee_key(),
        fil_text(&cfg.max_fee(n))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BatchConfig {
        BatchConfig {
            enabled: true,
            max: 4,
            wait: Duration::from_secs(60),
            slack: Duration::from_secs(10),
            ..Batching::default().precommit
        }
    }

    fn q(sector: u64, deadline: i64, since_ms: u64) -> Queued {
        Queued {
            sector,
            deadline,
            since_ms,
        }
    }

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn an_empty_queue_is_idle_even_when_flushed() {
        assert_eq!(cfg().due(&[], 0, SEC, 0, true), Due::Idle);
    }

    #[test]
    fn a_full_batch_goes_at_once() {
        let full: Vec<Queued> = (0..4).map(|i| q(i, 1000, 0)).collect();
        match cfg().due(&full, 0, SEC, 0, false) {
            Due::Now(why) => assert!(why.contains("MaxPreCommitBatch 4"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            cfg().due(&full[..3], 0, SEC, 0, false),
            Due::At(_)
        ));
    }

    #[test]
    fn a_member_near_its_deadline_sends_the_batch_early() {
        // Sector 7 must land by epoch 110; at head 100 with 1 s epochs that is 10 s away,
        // which is the slack.
        let queued = [q(3, 1000, 0), q(7, 110, 0)];
        match cfg().due(&queued, 100, SEC, 0, false) {
            Due::Now(why) => assert!(
                why.contains("sector 7 must land by epoch 110") && why.contains("Slack"),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
        // At head 95 it waits until the slack is reached: 5 s from now.
        assert_eq!(cfg().due(&queued, 95, SEC, 1_000, false), Due::At(6_000));
    }

    #[test]
    fn the_oldest_member_waits_at_most_the_batch_wait() {
        let queued = [q(1, 10_000, 5_000), q(2, 10_000, 20_000)];
        assert_eq!(cfg().due(&queued, 0, SEC, 30_000, false), Due::At(65_000));
        match cfg().due(&queued, 0, SEC, 65_000, false) {
            Due::Now(why) => assert!(why.contains("PreCommitBatchWait"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_flush_sends_what_waits() {
        let queued = [q(1, 10_000, 0)];
        assert!(matches!(cfg().due(&queued, 0, SEC, 0, true), Due::Now(_)));
    }

    #[test]
    fn below_the_base_fee_threshold_sectors_go_one_by_one() {
        let c = BatchConfig {
            above_base_fee: TokenAmount::from_atto(320),
            ..cfg()
        };
        assert!(!c.batches_at(Some(&TokenAmount::from_atto(100))));
        assert!(c.batches_at(Some(&TokenAmount::from_atto(320))));
        assert!(!BatchConfig {
            enabled: false,
            ..c
        }
        .batches_at(None));
    }

    #[test]
    fn the_fee_grows_with_the_batch() {
        let c = BatchConfig {
            fee_base: TokenAmount::from_atto(5),
            fee_per_sector: TokenAmount::from_atto(2),
            ..cfg()
        };
        assert_eq!(c.max_fee(3), TokenAmount::from_atto(11));
    }

    #[test]
    fn a_prove_commit_batch_stays_under_lotuss_message_size() {
        // 32GiB proofs: 1,920 bytes each.
        assert_eq!(proofs_that_fit(std::iter::repeat_n(1920, 819)), 31);
        assert_eq!(proofs_that_fit(std::iter::repeat_n(192, 819)), 295);
        assert_eq!(proofs_that_fit([100_000]), 1);
    }

    #[test]
    fn the_queue_hands_out_the_nearest_deadlines_first_and_at_most_a_batch() {
        let b: Batcher<&str> = Batcher::new(BatchConfig { max: 2, ..cfg() });
        let _r1 = b.join(q(1, 300, 0), "a");
        let _r2 = b.join(q(2, 100, 0), "b");
        let _r3 = b.join(q(3, 200, 0), "c");
        let taken: Vec<u64> = b.take().iter().map(|m| m.sector).collect();
        assert_eq!(taken, vec![2, 3]);
        assert_eq!(b.queued().len(), 1);
        b.leave(1);
        assert!(b.queued().is_empty());
    }
}
