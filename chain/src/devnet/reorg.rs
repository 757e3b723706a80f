//! Reorgs on the devnet, a test hook for what a real chain does now and then: each epoch keeps
//! what it overwrote (an undo record, the last [`UNDO_EPOCHS`] epochs), and [`Devnet::revert`]
//! takes the last epochs back, as a node switching to a heavier fork that lacks them would.
//! Their messages go back to the pool, as Lotus's message pool takes reverted messages back, or
//! are dropped (a fork whose miner never saw them, and a pool that lost them).

use db::Batch;
use lotus::Cid;
use serde_json::Value;

use super::{msg_key, Devnet, MPOOL};
use crate::ChainError;

/// How many epochs can be reverted.
pub const UNDO_EPOCHS: i64 = 100;

fn undo_key(epoch: i64) -> String {
    format!("chain/undo/{epoch:020}")
}

/// What happens to the messages of the reverted epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reverted {
    /// Back in the pool, to land again.
    BackToPool,
    /// Gone: neither in the pool nor on chain.
    Dropped,
}

impl Devnet {
    /// Adds to `batch` (the writes of `epoch`) what they overwrite, to take back on a revert,
    /// and forgets the record of an epoch too old to revert.
    pub(super) fn keep_undo(&self, epoch: i64, batch: &mut Batch) -> Result<(), ChainError> {
        let mut undo: Vec<(String, Option<Value>)> = Vec::new();
        for k in batch.keys() {
            undo.push((k.to_string(), self.db.get::<Value>(k)?));
        }
        batch.put(&undo_key(epoch), &undo);
        batch.delete(&undo_key(epoch - UNDO_EPOCHS));
        Ok(())
    }

    /// Takes the last `n` epochs back (at most [`UNDO_EPOCHS`], never genesis): every state
    /// they changed is as before them, and their messages are `then` (back in the pool or
    /// dropped). Returns the messages that had landed in them.
    pub async fn revert(&self, n: i64, then: Reverted) -> Result<Vec<Cid>, ChainError> {
        let _g = self.apply.lock().await;
        let head = self.head()?.height;
        if n < 1 || n > UNDO_EPOCHS.min(head) {
            return Err(ChainError::Other(format!(
                "cannot revert {n} epochs from {head} (1 to {})",
                UNDO_EPOCHS.min(head)
            )));
        }
        let mut landed = Vec::new();
        for epoch in (head - n + 1..=head).rev() {
            let undo: Vec<(String, Option<Value>)> = self
                .db
                .get(&undo_key(epoch))?
                .ok_or_else(|| ChainError::Other(format!("no undo record of epoch {epoch}")))?;
            let mut b = Batch::default();
            for (k, v) in &undo {
                if let Some(cid) = k.strip_prefix("chain/msg/") {
                    landed.push(
                        cid.parse::<Cid>()
                            .map_err(|e| ChainError::Other(e.to_string()))?,
                    );
                }
                match v {
                    Some(v) => b.put(k, v),
                    None => b.delete(k),
                }
            }
            b.delete(&undo_key(epoch));
            self.db.write(b)?;
        }
        if then == Reverted::Dropped {
            let mut b = Batch::default();
            for (key, cid) in self.db.scan::<String>(MPOOL)? {
                if landed.iter().any(|c| c.to_string() == cid) {
                    b.delete(&key);
                }
            }
            for cid in &landed {
                b.delete(&msg_key(cid));
            }
            self.db.write(b)?;
        }
        let now = self.head()?.height;
        tracing::info!(
            "devnet: reverted {n} epochs ({head} -> {now}), {} messages {}",
            landed.len(),
            match then {
                Reverted::BackToPool => "back in the pool",
                Reverted::Dropped => "dropped",
            }
        );
        self.head_tx.send_replace(now);
        Ok(landed)
    }
}
