//! `sectors extend`: active sectors moved to a later expiration in one ExtendSectorExpiration2,
//! grouped by deadline and partition as the miner actor takes them, sent from the worker (as
//! lotus-miner's `sectors extend` does). The actor's limits are checked first, naming the
//! sector: a new expiration must be later than the current one and at most
//! MaxSectorExpirationExtension (1278 days) from now.

use std::collections::BTreeMap;

use api::{ExtendTo, Extended};
use chain::{Chain, ChainError};
use lotus::miner::{ExpirationExtension2, ExtendSectorExpiration2Params};
use resources::{SealProof, SectorRef};

#[derive(Debug, thiserror::Error)]
pub enum ExtendError {
    #[error("no sectors given")]
    Empty,
    #[error("sector {0} is not active on chain (only Proving sectors can be extended)")]
    NotActive(u64),
    #[error("sector {sector}: new expiration {to} is not after its expiration {from}")]
    NotLater { sector: u64, from: i64, to: i64 },
    #[error(
        "sector {sector}: new expiration {to} is past epoch {latest} (1278 days from the head at \
         {head}, the miner actor's MaxSectorExpirationExtension)"
    )]
    TooFar {
        sector: u64,
        to: i64,
        head: i64,
        latest: i64,
    },
    #[error("max fee {0:?}: {1}")]
    MaxFee(String, String),
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// Extends `sectors` of the miner (`actor`, sealed with `proof`) as `to` says.
pub async fn extend(
    chain: &dyn Chain,
    actor: u64,
    proof: SealProof,
    sectors: &[u64],
    to: ExtendTo,
    max_fee: &str,
) -> Result<Extended, ExtendError> {
    if sectors.is_empty() {
        return Err(ExtendError::Empty);
    }
    let max_fee = lotus::json::parse_fil(max_fee)
        .map_err(|e| ExtendError::MaxFee(max_fee.into(), e.to_string()))?;
    let head = chain.head().await?.height;
    let latest = head + chain::MAX_SECTOR_EXPIRATION_EXTENSION;
    let mut groups: BTreeMap<(u64, u64, i64), Vec<u64>> = BTreeMap::new();
    let mut changed = Vec::new();
    for &n in sectors {
        let a = chain
            .active_sector(&SectorRef::new(actor, n, proof))
            .await?
            .ok_or(ExtendError::NotActive(n))?;
        let new = match to {
            ExtendTo::At(e) => e,
            ExtendTo::By(d) => a.expiration + d,
        };
        if new <= a.expiration {
            return Err(ExtendError::NotLater {
                sector: n,
                from: a.expiration,
                to: new,
            });
        }
        if new > latest {
            return Err(ExtendError::TooFar {
                sector: n,
                to: new,
                head,
                latest,
            });
        }
        groups
            .entry((a.deadline, a.partition as u64, new))
            .or_default()
            .push(n);
        changed.push((n, a.expiration, new));
    }
    let extensions = groups
        .into_iter()
        .map(|((deadline, partition, new), ns)| ExpirationExtension2 {
            deadline,
            partition,
            sectors: lotus::miner::sectors_bitfield(ns),
            sectors_with_claims: Vec::new(),
            new_expiration: new,
        })
        .collect();
    let call =
        chain::Call::of(&ExtendSectorExpiration2Params { extensions }).map_err(ChainError::from)?;
    let worker = chain.addresses().await?.worker.id;
    let message = chain
        .send(worker, call, chain::TokenAmount::default(), max_fee)
        .await?;
    Ok(Extended {
        message,
        sectors: changed,
    })
}
