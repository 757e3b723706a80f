//! The devnet's side of keeping power: WindowPoSt submissions (SubmitWindowedPoSt) verified
//! with the engine, declared faults and recoveries, deadlines that close without a proof,
//! elections and the blocks won with a WinningPoSt. The bookkeeping is `proving`; this applies
//! it to the miners' stored state and power.

use std::collections::HashMap;

use lotus::chain::BlockHeader;
use lotus::miner::{SectorsDeclaration, SubmitWindowedPoStParams};
use lotus::ExitCode;
use proofs::PublicSector;

use super::proving::ProvingState;
use super::{id_address, miner_key, sector_ref, Devnet, Fail, MinerState, MINERS};
use crate::{ActiveSector, ChainError, RandKind};

impl Devnet {
    /// The miner's state for this epoch, loaded once and written with the epoch's batch.
    pub(super) fn miner_mut<'a>(
        &self,
        miners: &'a mut HashMap<u64, MinerState>,
        actor: u64,
    ) -> Result<&'a mut MinerState, Fail> {
        Ok(match miners.entry(actor) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(
                self.db
                    .get(&miner_key(actor))
                    .map_err(Fail::state)?
                    .ok_or_else(|| {
                        Fail::new(
                            ExitCode::SYS_INVALID_RECEIVER,
                            format!("miner t0{actor} is not registered"),
                        )
                    })?,
            ),
        })
    }

    pub(super) async fn submit_window_post(
        &self,
        actor: u64,
        p: SubmitWindowedPoStParams,
        epoch: i64,
        miners: &mut HashMap<u64, MinerState>,
    ) -> Result<(), Fail> {
        let m = self.miner_mut(miners, actor)?;
        let size = m.sector_size;
        let index = p.deadline;
        if index >= crate::DEADLINES {
            return Err(Fail::arg(format!("invalid deadline {index}")));
        }
        let state = proving_of(m, actor)?;
        let d = state
            .open_deadline(index, epoch)
            .map_err(|e| Fail::arg(e.to_string()))?;
        if p.chain_commit_epoch < d.challenge || p.chain_commit_epoch >= epoch {
            return Err(Fail::arg(format!(
                "chain commit epoch {} is not in [{}, {epoch})",
                p.chain_commit_epoch, d.challenge
            )));
        }
        let commit = self.rand_for(RandKind::ChainCommit, actor, p.chain_commit_epoch);
        if p.chain_commit_rand.0.as_slice() != commit.as_slice() {
            return Err(Fail::arg(format!(
                "chain commit randomness does not match the chain's at epoch {}",
                p.chain_commit_epoch
            )));
        }
        let want = size.seal_proof().window_post().number();
        let proof = match &p.proofs[..] {
            [one] if i64::from(one.post_proof) == want => one.proof_bytes.clone(),
            [one] => {
                return Err(Fail::arg(format!(
                    "WindowPoSt proof type {} is not the miner's ({want})",
                    i64::from(one.post_proof)
                )))
            }
            many => {
                return Err(Fail::arg(format!(
                    "{} proofs: the devnet takes one per message",
                    many.len()
                )))
            }
        };
        let dl = &state.deadlines[index as usize];
        let mut public = Vec::new();
        let mut parts = Vec::new();
        let mut skipped = Vec::new();
        for pp in &p.partitions {
            let i = pp.index as usize;
            let part = dl.partitions.get(i).ok_or_else(|| {
                Fail::new(
                    ExitCode::USR_NOT_FOUND,
                    format!("deadline {index} has no partition {i}"),
                )
            })?;
            if parts.contains(&i) {
                return Err(Fail::arg(format!("duplicate partition {i} proven")));
            }
            if dl.proven_open == d.open && dl.proven.contains(&i) {
                return Err(Fail::arg(format!("partition {i} already proven")));
            }
            parts.push(i);
            let skip: Vec<u64> = pp.skipped.iter().collect();
            for n in part.to_prove().into_iter().filter(|n| !skip.contains(n)) {
                let a: ActiveSector = self
                    .sector(actor, n)
                    .map_err(Fail::state)?
                    .ok_or_else(|| Fail::state(format!("sector {n} is not active")))?;
                public.push(PublicSector {
                    number: n,
                    proof: a.sector.proof,
                    comm_r: a.comm_r,
                });
            }
            skipped.extend(skip);
        }
        if !public.is_empty() {
            let rand = self.rand_for(RandKind::WindowPoSt, actor, d.challenge);
            let engine = self.engine.clone();
            let ok = tokio::task::spawn_blocking(move || {
                engine.verify_window_post(actor, &rand, &public, &proof)
            })
            .await
            .map_err(Fail::state)?
            .map_err(|e| {
                Fail::arg(format!(
                    "WindowPoSt for deadline {index} not verifiable: {e}"
                ))
            })?;
            if !ok {
                return Err(Fail::arg(format!(
                    "invalid WindowPoSt for deadline {index}"
                )));
            }
        }
        let m = self.miner_mut(miners, actor)?;
        let (recovered, lost) = proving_of(m, actor)?
            .record_proof(index, &parts, &skipped, epoch)
            .map_err(|e| Fail::arg(e.to_string()))?;
        change_power(m, recovered.len() as i64 - lost.len() as i64);
        tracing::debug!(actor, index, ?parts, "devnet: WindowPoSt accepted");
        Ok(())
    }

    /// Faults (`recovered` false) or recoveries, declared partition by partition.
    pub(super) fn declare(
        &self,
        actor: u64,
        decls: &[SectorsDeclaration],
        recovered: bool,
        epoch: i64,
        miners: &mut HashMap<u64, MinerState>,
    ) -> Result<(), Fail> {
        let m = self.miner_mut(miners, actor)?;
        let state = proving_of(m, actor)?;
        let mut faulty = 0;
        for d in decls {
            let dl = state
                .deadlines
                .get(d.deadline as usize)
                .ok_or_else(|| Fail::arg(format!("invalid deadline {}", d.deadline)))?;
            let in_part = dl.partitions.get(d.partition as usize).ok_or_else(|| {
                Fail::new(
                    ExitCode::USR_NOT_FOUND,
                    format!("deadline {} has no partition {}", d.deadline, d.partition),
                )
            })?;
            let sectors: Vec<u64> = d.sectors.iter().collect();
            if let Some(s) = sectors.iter().find(|s| !in_part.sectors.contains(s)) {
                return Err(Fail::arg(format!(
                    "sector {s} is not in partition {} of deadline {}",
                    d.partition, d.deadline
                )));
            }
            faulty += state
                .declare(d.deadline, &sectors, recovered, epoch)
                .map_err(|e| Fail::arg(e.to_string()))?
                .len();
        }
        change_power(m, -(faulty as i64));
        Ok(())
    }

    /// A block for the epoch after the head (mined on the head, as lotus-miner mines) from a
    /// miner elected for it, with its WinningPoSt: counted as won once its election proof (the
    /// worker's VRF, and the wins it draws) and its WinningPoSt verify, if that epoch has not
    /// been made without it meanwhile.
    pub async fn submit_block(&self, h: &BlockHeader) -> Result<(), ChainError> {
        let bad = |why: String| ChainError::Other(format!("block refused: {why}"));
        let actor = h
            .miner
            .id()
            .map_err(|_| bad(format!("{} is not an ID address", h.miner)))?;
        let head = self.head()?.height;
        if h.height != head + 1 {
            return Err(bad(format!(
                "block for epoch {} at head {head}: only the next epoch ({}) can be mined",
                h.height,
                head + 1
            )));
        }
        self.check_election(actor, h).map_err(bad)?;
        let proof = match &h.win_post_proof[..] {
            [p] => p.proof_bytes.clone(),
            _ => return Err(bad("a block carries one WinningPoSt".into())),
        };
        let m = self
            .miner(actor)?
            .ok_or_else(|| ChainError::NoMiner(h.miner.to_string()))?;
        let sectors = self.challenged(actor, &m, h.height)?;
        let public: Vec<PublicSector> = sectors
            .iter()
            .map(|a| PublicSector {
                number: a.sector.number,
                proof: a.sector.proof,
                comm_r: a.comm_r,
            })
            .collect();
        let rand = self.rand_for(RandKind::WinningPoSt, actor, h.height);
        let engine = self.engine.clone();
        let ok = tokio::task::spawn_blocking(move || {
            engine.verify_winning_post(actor, &rand, &public, &proof)
        })
        .await
        .map_err(|e| ChainError::Other(e.to_string()))?
        .map_err(|e| bad(format!("WinningPoSt not verifiable: {e}")))?;
        if !ok {
            return Err(bad(format!("invalid WinningPoSt for epoch {}", h.height)));
        }
        let _g = self.apply.lock().await;
        let head = self.head()?.height;
        if head + 1 != h.height {
            return Err(bad(format!(
                "the head moved to {head} before the block for {} was verified: too late",
                h.height
            )));
        }
        let mut m = self.miner(actor)?.expect("read above");
        if m.last_win == Some(h.height) {
            return Err(bad(format!(
                "a block for epoch {} was taken already",
                h.height
            )));
        }
        m.wins += 1;
        m.last_win = Some(h.height);
        self.db.put(&miner_key(actor), &m)?;
        tracing::info!(actor, epoch = h.height, "devnet: block won");
        Ok(())
    }

    /// Closes the deadlines that ended by `epoch` for every miner: partitions nobody proved lose
    /// their power.
    pub(super) fn close_deadlines(
        &self,
        epoch: i64,
        miners: &mut HashMap<u64, MinerState>,
    ) -> Result<(), ChainError> {
        for (key, m) in self.db.scan::<MinerState>(MINERS)? {
            let Ok(actor) = key.trim_start_matches(MINERS).parse::<u64>() else {
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
                        "devnet: deadline closed without a WindowPoSt: sectors faulty, power lost"
                    );
                }
                lost += c.newly_faulty.len() as i64;
            }
            change_power(m, -lost);
        }
        Ok(())
    }

    /// The wins of `actor` at `epoch` ([`crate::election`]), as its worker's VRF made by this
    /// node's wallet draws them from its share of the power (every miner's plus
    /// OtherNetworkPower): what the miner's own election finds.
    pub fn wins_at(&self, actor: u64, epoch: i64) -> Result<i64, ChainError> {
        let m = self
            .miner(actor)?
            .ok_or_else(|| ChainError::NoMiner(format!("t0{actor}")))?;
        let input = self.rand_for(RandKind::Election, actor, epoch);
        let vrf = self.sign_bytes(&m.worker(), &input)?;
        let (mine, total) = self.election_power(actor)?;
        Ok(crate::election::win_count(
            &vrf.bytes,
            mine as u128,
            total as u128,
        ))
    }

    /// A block's election proof checked: its VRF is the miner's worker's signature of the
    /// epoch's election randomness, and its win count is what that VRF draws (at least one).
    fn check_election(&self, actor: u64, h: &BlockHeader) -> Result<(), String> {
        let e = h
            .election_proof
            .as_ref()
            .ok_or("a block needs an election proof")?;
        let m = self
            .miner(actor)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("t0{actor} is not a miner"))?;
        let worker = m.worker();
        let input = self.rand_for(RandKind::Election, actor, h.height);
        crate::election::verify_vrf(&worker, &input, &e.vrf_proof).map_err(|err| {
            format!(
                "the election proof's VRF is not the worker {worker}'s signature of epoch {}'s \
                 election randomness ({err})",
                h.height
            )
        })?;
        // The ticket: the worker's VRF of the TicketProduction randomness of the epoch before,
        // from this epoch's beacon entry.
        let ticket = h.ticket.as_ref().ok_or("a block needs a ticket")?;
        let input = crate::election::from_beacon(
            &self.beacon(h.height).data,
            RandKind::TicketProduction,
            h.height - 1,
            &h.miner,
        );
        crate::election::verify_vrf(&worker, &input, &ticket.vrf_proof).map_err(|err| {
            format!(
                "the ticket's VRF is not the worker {worker}'s signature of epoch {}'s ticket \
                 randomness ({err})",
                h.height - 1
            )
        })?;
        let (mine, total) = self.election_power(actor).map_err(|e| e.to_string())?;
        let wins = crate::election::win_count(&e.vrf_proof, mine as u128, total as u128);
        if wins == 0 {
            return Err(format!(
                "t0{actor} was not elected at epoch {}: its VRF draws no win",
                h.height
            ));
        }
        if e.win_count != wins {
            return Err(format!(
                "the election proof claims {} wins, its VRF draws {wins}",
                e.win_count
            ));
        }
        Ok(())
    }

    /// `MinerCreateBlock`: the header of a template, on the devnet's tipset at the epoch
    /// before. Unsigned: the devnet keeps no block encoding to sign (a Lotus node signs it
    /// with the worker key).
    pub fn create_block(
        &self,
        t: lotus::chain::BlockTemplate,
    ) -> Result<lotus::chain::BlockMsg, ChainError> {
        let mut header = self
            .tipset(t.epoch - 1)?
            .blocks
            .into_iter()
            .next()
            .ok_or_else(|| ChainError::Other(format!("no block at epoch {}", t.epoch - 1)))?;
        header.height = t.epoch;
        header.parent_weight += 1;
        header.miner = t.miner;
        header.ticket = t.ticket;
        header.election_proof = t.eproof;
        header.beacon_entries = t.beacon_values;
        header.win_post_proof = t.winning_post_proof;
        header.parents = t.parents;
        header.timestamp = t.timestamp;
        header.block_sig = None;
        let (mut bls, mut secp) = (Vec::new(), Vec::new());
        for m in t.messages {
            let m = lotus::SignedMessage::try_from(m)?;
            let bls_signed =
                m.signature.sig_type == lotus::fvm_shared::crypto::signature::SignatureType::BLS;
            match bls_signed {
                true => bls.push(m.cid()),
                false => secp.push(m.cid()),
            }
        }
        Ok(lotus::chain::BlockMsg {
            header,
            bls_messages: bls,
            secpk_messages: secp,
        })
    }

    /// The miner's raw power, and the network's for elections.
    pub fn election_power(&self, actor: u64) -> Result<(u64, u64), ChainError> {
        let mine = self.miner(actor)?.map_or(0, |m| m.power.raw_bytes);
        Ok((mine, self.network_power()? + self.cfg.other_power))
    }

    /// The sectors a WinningPoSt at `epoch` covers: the engine picks them among the miner's
    /// sectors with power, in number order.
    pub fn challenged(
        &self,
        actor: u64,
        m: &MinerState,
        epoch: i64,
    ) -> Result<Vec<ActiveSector>, ChainError> {
        let Some(state) = &m.proving else {
            return Ok(Vec::new());
        };
        let live = state.live();
        if live.is_empty() {
            return Ok(Vec::new());
        }
        let proof = m.sector_size.seal_proof();
        let rand = self.rand_for(RandKind::WinningPoSt, actor, epoch);
        let picks = self
            .engine
            .winning_post_challenge(proof, actor, &rand, live.len() as u64)
            .map_err(|e| ChainError::Other(e.to_string()))?;
        let mut out = Vec::new();
        for i in picks {
            let n = live[i as usize % live.len()];
            let a = self.sector(actor, n)?.ok_or_else(|| {
                ChainError::Other(format!(
                    "sector {} of {} is live but not active",
                    sector_ref(actor, n, m.sector_size).number,
                    id_address(actor)
                ))
            })?;
            out.push(a);
        }
        Ok(out)
    }
}

fn proving_of(m: &mut MinerState, actor: u64) -> Result<&mut ProvingState, Fail> {
    m.proving
        .as_mut()
        .ok_or_else(|| Fail::arg(format!("miner t0{actor} has no active sectors")))
}

/// Adds (or with a negative `sectors`, removes) that many sectors of power.
pub(super) fn change_power(m: &mut MinerState, sectors: i64) {
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
