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

pub struct WinningPoSt {
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
    ) -> Arc<WinningPoSt> {
        Arc::new(WinningPoSt {
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
            // Each round is mined on the head before it, as lotus-miner mines. Not on a public
            // network yet: lotus-miner also mines null rounds, waits out the propagation delay
            // and keeps a slash filter (a second block at a height on other parents is a
            // consensus fault, and slashed); untested against a Lotus node, this loop does not
            // risk that.
            if me.chain.mode() != "devnet" {
                tracing::warn!(
                    "WinningPoSt: block production is not run on a {} node (devnet only: no \
                     slash filter or null-round mining yet)",
                    me.chain.mode()
                );
                return;
            }
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
        self.chain
            .submit_block(self.actor, epoch, &won, proof)
            .await?;
        self.submitted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
