//! The local chain's side of keeping power: WindowPoSt submissions verified with the engine,
//! declared faults and recoveries, and deadlines that close without a proof. The bookkeeping is
//! `proving`; this applies it to the miners' stored state and power.

use std::collections::HashMap;

use proofs::PublicSector;
use resources::SectorRef;

use sha2::{Digest, Sha256};

use super::proving::ProvingState;
use super::{
    miner_key, sector_key, ActiveSector, ChainError, LocalChain, Message, MinerState, RandKind,
};

impl LocalChain {
    /// The miner's state for this epoch, loaded once and written with the epoch's batch.
    pub(super) fn miner_mut<'a>(
        &self,
        miners: &'a mut HashMap<u64, MinerState>,
        actor: u64,
    ) -> Result<&'a mut MinerState, String> {
        Ok(match miners.entry(actor) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(
                self.db
                    .get(&miner_key(actor))
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("miner t0{actor} is not registered"))?,
            ),
        })
    }

    pub(super) async fn apply_post_msg(
        &self,
        msg: &Message,
        epoch: i64,
        miners: &mut HashMap<u64, MinerState>,
    ) -> Result<(), String> {
        match msg {
            Message::SubmitWindowedPoSt {
                miner,
                deadline,
                partitions,
                skipped,
                proof,
            } => {
                let m = self.miner_mut(miners, *miner)?;
                let size = m.sector_size;
                let state = proving_of(m, *miner)?;
                let d = state
                    .open_deadline(*deadline, epoch)
                    .map_err(|e| e.to_string())?;
                let dl = &state.deadlines[*deadline as usize];
                let mut public = Vec::new();
                for p in partitions {
                    let part = dl
                        .partitions
                        .get(*p)
                        .ok_or_else(|| format!("deadline {deadline} has no partition {p}"))?;
                    for n in part.to_prove().into_iter().filter(|n| !skipped.contains(n)) {
                        let s = SectorRef::new(*miner, n, size.seal_proof());
                        let a: ActiveSector = self
                            .db
                            .get(&sector_key(&s))
                            .map_err(|e| e.to_string())?
                            .ok_or_else(|| format!("sector {n} is not active"))?;
                        public.push(PublicSector {
                            number: n,
                            proof: s.proof,
                            comm_r: a.comm_r,
                        });
                    }
                }
                if !public.is_empty() {
                    let rand = self.rand(RandKind::WindowPoSt, d.challenge);
                    let (engine, miner_id, proof) = (self.engine.clone(), *miner, proof.clone());
                    let ok = tokio::task::spawn_blocking(move || {
                        engine.verify_window_post(miner_id, &rand, &public, &proof)
                    })
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| {
                        format!("WindowPoSt for deadline {deadline} not verifiable: {e}")
                    })?;
                    if !ok {
                        return Err(format!("invalid WindowPoSt for deadline {deadline}"));
                    }
                }
                let m = self.miner_mut(miners, *miner)?;
                let (recovered, lost) = proving_of(m, *miner)?
                    .record_proof(*deadline, partitions, skipped, epoch)
                    .map_err(|e| e.to_string())?;
                change_power(m, recovered.len() as i64 - lost.len() as i64);
                tracing::debug!(
                    miner,
                    deadline,
                    ?partitions,
                    "local chain: WindowPoSt accepted"
                );
                Ok(())
            }
            Message::DeclareFaults {
                miner,
                deadline,
                sectors,
            }
            | Message::DeclareFaultsRecovered {
                miner,
                deadline,
                sectors,
            } => {
                let recovered = matches!(msg, Message::DeclareFaultsRecovered { .. });
                let m = self.miner_mut(miners, *miner)?;
                let faulty = proving_of(m, *miner)?
                    .declare(*deadline, sectors, recovered, epoch)
                    .map_err(|e| e.to_string())?;
                change_power(m, -(faulty.len() as i64));
                Ok(())
            }
            Message::WinningPoSt {
                miner,
                epoch: elected_at,
                proof,
            } => {
                if *elected_at != epoch - 1 {
                    return Err(format!(
                        "WinningPoSt for epoch {elected_at} arrived in epoch {epoch}: too late"
                    ));
                }
                if !self
                    .is_elected(*miner, *elected_at)
                    .map_err(|e| e.to_string())?
                {
                    return Err(format!(
                        "miner t0{miner} was not elected at epoch {elected_at}"
                    ));
                }
                let m = self.miner_mut(miners, *miner)?.clone();
                let sectors = self.challenged(*miner, &m, *elected_at)?;
                let public: Vec<PublicSector> = sectors
                    .iter()
                    .map(|a| PublicSector {
                        number: a.sector.number,
                        proof: a.sector.proof,
                        comm_r: a.comm_r,
                    })
                    .collect();
                let rand = self.rand(RandKind::WinningPoSt, *elected_at);
                let (engine, miner_id, proof) = (self.engine.clone(), *miner, proof.clone());
                let ok = tokio::task::spawn_blocking(move || {
                    engine.verify_winning_post(miner_id, &rand, &public, &proof)
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("WinningPoSt not verifiable: {e}"))?;
                if !ok {
                    return Err(format!("invalid WinningPoSt for epoch {elected_at}"));
                }
                self.miner_mut(miners, *miner)?.wins += 1;
                tracing::info!(miner, epoch = elected_at, "local chain: block won");
                Ok(())
            }
            _ => Err("not a proving message".into()),
        }
    }

    /// Closes the deadlines that ended by `epoch` for every miner: partitions nobody proved lose
    /// their power.
    pub(super) fn close_deadlines(
        &self,
        epoch: i64,
        miners: &mut HashMap<u64, MinerState>,
    ) -> Result<(), ChainError> {
        for (key, m) in self.db.scan::<MinerState>("chain/miner/")? {
            let Ok(actor) = key.trim_start_matches("chain/miner/").parse::<u64>() else {
                continue;
            };
            if m.proving.is_none() {
                continue;
            }
            let m = miners.entry(actor).or_insert(m);
            let Some(state) = m.proving.as_mut() else {
                continue;
            };
            let mut lost = 0;
            for c in state.close_through(epoch) {
                if !c.newly_faulty.is_empty() {
                    tracing::warn!(
                        miner = actor,
                        deadline = c.index,
                        sectors = ?c.newly_faulty,
                        "local chain: deadline closed without a WindowPoSt: sectors faulty, power lost"
                    );
                }
                lost += c.newly_faulty.len() as i64;
            }
            change_power(m, -lost);
        }
        Ok(())
    }

    /// Whether `actor` is elected at `epoch`: with probability its raw power over the network's
    /// (every miner's plus `OtherNetworkPower`), from the epoch's election randomness.
    pub(super) fn is_elected(&self, actor: u64, epoch: i64) -> Result<bool, ChainError> {
        let mut total = self.other_power;
        let mut mine = 0;
        for (key, m) in self.db.scan::<MinerState>("chain/miner/")? {
            total += m.power.raw_bytes;
            if key == miner_key(actor) {
                mine = m.power.raw_bytes;
            }
        }
        if mine == 0 {
            return Ok(false);
        }
        let mut h = Sha256::new();
        h.update(self.rand(RandKind::WinningPoSt, epoch));
        h.update(b"election");
        h.update(actor.to_le_bytes());
        let d: [u8; 32] = h.finalize().into();
        let draw = u64::from_le_bytes(d[..8].try_into().expect("8 bytes")) as f64 / u64::MAX as f64;
        Ok(draw < mine as f64 / total as f64)
    }

    /// The sectors a WinningPoSt at `epoch` covers: the engine picks them among the miner's
    /// sectors with power, in number order.
    pub(super) fn challenged(
        &self,
        actor: u64,
        m: &MinerState,
        epoch: i64,
    ) -> Result<Vec<ActiveSector>, String> {
        let Some(state) = &m.proving else {
            return Ok(Vec::new());
        };
        let live = state.live();
        if live.is_empty() {
            return Ok(Vec::new());
        }
        let proof = m.sector_size.seal_proof();
        let rand = self.rand(RandKind::WinningPoSt, epoch);
        let picks = self
            .engine
            .winning_post_challenge(proof, actor, &rand, live.len() as u64)
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for i in picks {
            let n = live[i as usize % live.len()];
            let s = SectorRef::new(actor, n, proof);
            let a: ActiveSector = self
                .db
                .get(&sector_key(&s))
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("sector {n} is not active"))?;
            out.push(a);
        }
        Ok(out)
    }
}

fn proving_of(m: &mut MinerState, actor: u64) -> Result<&mut ProvingState, String> {
    m.proving
        .as_mut()
        .ok_or_else(|| format!("miner t0{actor} has no active sectors"))
}

/// Adds (or with a negative `sectors`, removes) that many sectors of power.
fn change_power(m: &mut MinerState, sectors: i64) {
    let bytes = m.sector_size.bytes();
    if sectors >= 0 {
        m.power.sectors += sectors as u64;
        m.power.raw_bytes += sectors as u64 * bytes;
    } else {
        let n = sectors.unsigned_abs();
        m.power.sectors = m.power.sectors.saturating_sub(n);
        m.power.raw_bytes = m.power.raw_bytes.saturating_sub(n * bytes);
    }
}
