//! The devnet's side of a sector's life after activation: ExtendSectorExpiration2 (a later
//! expiration, within the miner actor's limits) and TerminateSectors (the sectors leave their
//! partitions, their power goes and their pledge is released). builtin-actors burns a
//! termination fee computed from the sector's pledge, power and age; the devnet burns none.

use std::collections::HashMap;

use db::Batch;
use lotus::miner::{ExtendSectorExpiration2Params, SectorsDeclaration};
use lotus::ExitCode;

use super::{sector_key, Devnet, Fail, MinerState};
use crate::ActiveSector;

impl Devnet {
    /// An active sector of the miner where `(deadline, partition)` says it is, not changed
    /// earlier in this epoch (`done`, `batch`: what the epoch wrote so far).
    fn active_in(
        &self,
        actor: u64,
        n: u64,
        (deadline, partition): (u64, u64),
        (done, batch): (&Batch, &Batch),
    ) -> Result<ActiveSector, Fail> {
        let key = sector_key(actor, n);
        if done.writes(&key) || batch.writes(&key) {
            return Err(Fail::arg(format!(
                "sector {n} changed earlier in this epoch: send again at the next"
            )));
        }
        let a = self.sector(actor, n).map_err(Fail::state)?.ok_or_else(|| {
            Fail::new(ExitCode::USR_NOT_FOUND, format!("sector {n} is not active"))
        })?;
        if (a.deadline, a.partition as u64) != (deadline, partition) {
            return Err(Fail::arg(format!(
                "sector {n} is in partition {} of deadline {}, not {partition} of {deadline}",
                a.partition, a.deadline
            )));
        }
        Ok(a)
    }

    /// ExtendSectorExpiration2: each sector's expiration moved to a later epoch, at most
    /// MaxSectorExpirationExtension from now.
    pub(super) fn extend(
        &self,
        actor: u64,
        p: ExtendSectorExpiration2Params,
        epoch: i64,
        done: &Batch,
        batch: &mut Batch,
    ) -> Result<(), Fail> {
        let latest = epoch + crate::MAX_SECTOR_EXPIRATION_EXTENSION;
        for e in &p.extensions {
            if !e.sectors_with_claims.is_empty() {
                return Err(Fail::arg(
                    "the devnet's sectors have no verified claims to extend",
                ));
            }
            if e.new_expiration > latest {
                return Err(Fail::arg(format!(
                    "new expiration {} is past epoch {latest} (MaxSectorExpirationExtension, \
                     1278 days from epoch {epoch})",
                    e.new_expiration
                )));
            }
            for n in e.sectors.iter() {
                let mut a = self.active_in(actor, n, (e.deadline, e.partition), (done, batch))?;
                if e.new_expiration <= a.expiration {
                    return Err(Fail::arg(format!(
                        "sector {n}: new expiration {} is not after its expiration {} (an \
                         expiration cannot be brought forward)",
                        e.new_expiration, a.expiration
                    )));
                }
                a.expiration = e.new_expiration;
                batch.put(&sector_key(actor, n), &a);
            }
        }
        Ok(())
    }

    /// TerminateSectors: the sectors leave their partitions (not in the deadline open now or
    /// next), lose their power, and their initial pledge is released.
    pub(super) fn terminate(
        &self,
        actor: u64,
        decls: &[SectorsDeclaration],
        epoch: i64,
        done: &Batch,
        batch: &mut Batch,
        miners: &mut HashMap<u64, MinerState>,
    ) -> Result<(), Fail> {
        let mut gone = Vec::new();
        for d in decls {
            for n in d.sectors.iter() {
                let at = (d.deadline, d.partition);
                gone.push(self.active_in(actor, n, at, (done, batch))?);
            }
        }
        let m = self.miner_mut(miners, actor)?;
        let state = m
            .proving
            .as_mut()
            .ok_or_else(|| Fail::arg(format!("miner t0{actor} has no active sectors")))?;
        let mut powered = 0;
        for d in decls {
            let sectors: Vec<u64> = d.sectors.iter().collect();
            powered += state
                .terminate(d.deadline, &sectors, epoch)
                .map_err(|e| Fail::arg(e.to_string()))?
                .len();
        }
        super::post::change_power(m, -(powered as i64));
        for a in gone {
            m.initial_pledge -= a.initial_pledge.clone();
            batch.delete(&sector_key(actor, a.sector.number));
            tracing::info!(
                actor,
                sector = a.sector.number,
                "devnet: sector terminated, its pledge released"
            );
        }
        Ok(())
    }
}
