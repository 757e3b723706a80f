//! Reorgs and replaced messages on the devnet, test hooks for what a real chain does now and then: each epoch keeps
//! what it overwrote (an undo record, the last [`UNDO_EPOCHS`] epochs), and [`Devnet::revert`]
//! takes the last epochs back, as a node switching to a heavier fork that lacks them would.
//! Their messages go back to the pool, as Lotus's message pool takes reverted messages back, or
//! are dropped (a fork whose miner never saw them, and a pool that lost them). A message in the
//! pool can be replaced by one with the same nonce and a higher fee ([`Devnet::replace`]).

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

fn replaced_key(cid: &Cid) -> String {
    format!("chain/replaced/{cid}")
}

impl Devnet {
    /// Replaces a message still in the pool by the same message (same sender and nonce) with a
    /// higher fee cap and premium, as `lotus mpool replace` does; the premium must rise by a
    /// quarter at least (the pool's replace-by-fee rule). The old message is known to have been
    /// replaced: a search for it with replacements allowed finds the new one.
    pub async fn replace(
        &self,
        cid: &Cid,
        fee_cap: lotus::TokenAmount,
        premium: lotus::TokenAmount,
    ) -> Result<lotus::SignedMessage, ChainError> {
        let _g = self.apply.lock().await;
        let (old, receipt) = self
            .message(cid)?
            .ok_or_else(|| ChainError::Other(format!("message {cid} not found")))?;
        if receipt.is_some() {
            return Err(ChainError::Other(format!(
                "message {cid} has landed already"
            )));
        }
        let min = lotus::TokenAmount::from_atto(old.message.gas_premium.atto() * 5 / 4);
        if premium < min {
            return Err(ChainError::Other(format!(
                "replacing {cid} needs a premium of at least {} attoFIL (old {} + 25%), not {}",
                min.atto(),
                old.message.gas_premium.atto(),
                premium.atto()
            )));
        }
        let mut m = old.message.clone();
        m.gas_fee_cap = fee_cap;
        m.gas_premium = premium;
        let key: [u8; 32] = self
            .db
            .get(&super::wallet_key(&m.from))?
            .ok_or_else(|| ChainError::Other(format!("no key for {}", m.from)))?;
        let signed = lotus::wallet::Key::from_bytes(&m.from, &key)?.sign(m)?;
        let new = signed.cid();
        let mut b = Batch::default();
        for (key, c) in self.db.scan::<String>(MPOOL)? {
            if c == cid.to_string() {
                b.put(&key, &new.to_string());
            }
        }
        b.put(
            &msg_key(&new),
            &super::StoredMsg {
                signed: lotus::fvm_ipld_encoding::to_vec(&signed)
                    .map_err(lotus::EncodingError::from)?,
                receipt: None,
            },
        );
        b.put(&replaced_key(cid), &new.to_string());
        self.db.write(b)?;
        Ok(signed)
    }

    /// The message that replaced `cid`, if one did (following replacements of replacements).
    pub fn replacement(&self, cid: &Cid) -> Result<Option<Cid>, ChainError> {
        let mut at = *cid;
        let mut found = None;
        while let Some(next) = self.db.get::<String>(&replaced_key(&at))? {
            at = next
                .parse::<Cid>()
                .map_err(|e| ChainError::Other(e.to_string()))?;
            found = Some(at);
        }
        Ok(found)
    }
}
