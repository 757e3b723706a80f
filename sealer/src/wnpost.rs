//! WinningPoSt: at every new head, the miner's election for the next round (its worker's VRF,
//! signed by the node's wallet, and the wins it draws, [`chain::election`]); when it wins, it
//! proves the challenged sectors through the scheduler (WNP goes ahead of everything, on the
//! sealer or a `--winningpost` worker), has the node make the block on the head
//! (`MinerCreateBlock`) and submits it; the chain counts the block only if its VRF, win count
//! and proof check out and it arrives before its round is made without it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use api::tasks::{PoStTarget, TaskError, TaskOutput};
use api::TaskCall;

use crate::cluster::{ClusterView, PoStSelector};
use crate::manager::Manager;
use chain::Chain;

/// Lotus's slash filter, in its simplest form: a round is mined at most once, across restarts
/// (a second block at one height, on other parents, is a consensus fault, and is slashed). The
/// last round mined is recorded before its block is submitted.
pub struct SlashFilter {
    db: db::Db,
}

const LAST_ROUND: &str = "wnpost/last-mined-round";

#[derive(Debug, thiserror::Error)]
pub enum SlashError {
    #[error(
        "round {round} not mined: round {last} was mined already (a second block at a height \
         already mined is a consensus fault)"
    )]
    Mined { round: i64, last: i64 },
    #[error(transparent)]
    Db(#[from] db::DbError),
}

impl SlashFilter {
    pub fn new(db: db::Db) -> SlashFilter {
        SlashFilter { db }
    }

    /// Records `round` as mined, unless it (or a later one) was.
    pub fn record(&self, round: i64) -> Result<(), SlashError> {
        if let Some(last) = self.db.get::<i64>(LAST_ROUND)?.filter(|l| *l >= round) {
            return Err(SlashError::Mined { round, last });
        }
        Ok(self.db.put(LAST_ROUND, &round)?)
    }
}

pub struct WinningPoSt {
    filter: SlashFilter,
    chain: Arc<dyn Chain>,
    manager: Arc<Manager>,
    view: Arc<ClusterView>,
    actor: u64,
    /// Elections seen, and proofs sent for them.
    elections: AtomicU64,
    submitted: AtomicU64,
    /// A WinningPoSt is being made: a new election meanwhile is let go (its proof could not
    /// arrive in time anyway, and proofs must not pile up behind a slow one).
    busy: AtomicBool,
}

impl WinningPoSt {
    /// The block prover for `actor`; `spawn` starts it.
    pub fn new(
        chain: Arc<dyn Chain>,
        manager: Arc<Manager>,
        view: Arc<ClusterView>,
        actor: u64,
        filter: SlashFilter,
    ) -> Arc<WinningPoSt> {
        Arc::new(WinningPoSt {
            filter,
            chain,
            manager,
            view,
            actor,
            elections: AtomicU64::new(0),
            submitted: AtomicU64::new(0),
            busy: AtomicBool::new(false),
        })
    }

    /// Elections seen, and WinningPoSts sent for them.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.elections.load(Ordering::Relaxed),
            self.submitted.load(Ordering::Relaxed),
        )
    }

    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            // Each round is mined on the head before it, as lotus-miner mines, at most once
            // (the slash filter). Unlike lotus-miner, a round after a null round is not mined
            // on the older head, and no propagation delay is waited out for a heavier head.
            let mut next = match me.chain.head().await {
                Ok(h) => h.height + 1,
                Err(_) => 1,
            };
            loop {
                let head = match me.chain.wait_epoch(next).await {
                    Ok(h) => h.height,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                next = head + 1;
                let round = head + 1;
                match me.chain.election(me.actor, round).await {
                    Ok(Some(won)) => {
                        me.elections.fetch_add(1, Ordering::Relaxed);
                        if me.busy.swap(true, Ordering::AcqRel) {
                            tracing::info!(epoch = round, "WinningPoSt: elected while still proving an earlier election: skipped");
                            continue;
                        }
                        let m = me.clone();
                        tokio::spawn(async move {
                            if let Err(e) = m.mine(round, won).await {
                                tracing::warn!(epoch = round, "WinningPoSt: {e}");
                            }
                            m.busy.store(false, Ordering::Release);
                        });
                    }
                    Ok(None) => {}
                    Err(e) => tracing::debug!(epoch = round, "WinningPoSt: election: {e}"),
                }
            }
        })
    }

    async fn mine(&self, epoch: i64, won: chain::Election) -> Result<(), TaskError> {
        let sectors: Vec<PoStTarget> = self.chain.winning_sectors(self.actor, epoch).await?;
        if sectors.is_empty() {
            return Err(TaskError::bad_input("elected with no sector to prove"));
        }
        let randomness = won.post_randomness;
        let selector = PoStSelector::new(&self.view, &sectors);
        let call = TaskCall::WinningPoSt {
            miner: self.actor,
            epoch,
            randomness,
            sectors,
        };
        let proof = match self.manager.run(call, 0, selector).await? {
            TaskOutput::WinningPoSt(p) => p,
            other => return Err(TaskError::temporary(format!("WNP returned {other:?}"))),
        };
        self.filter
            .record(epoch)
            .map_err(|e| TaskError::temporary(e.to_string()))?;
        self.chain
            .submit_block(self.actor, epoch, &won, proof)
            .await?;
        self.submitted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slash_filter_mines_each_round_once_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let f = SlashFilter::new(db::Db::open(dir.path()).unwrap());
        f.record(10).unwrap();
        f.record(12).unwrap();
        for round in [12, 11] {
            let e = f.record(round).unwrap_err().to_string();
            assert!(e.contains("round 12 was mined already"), "{e}");
        }
        drop(f);
        let f = SlashFilter::new(db::Db::open(dir.path()).unwrap());
        assert!(f.record(12).is_err());
        f.record(13).unwrap();
    }
}
