//! How the devnet applies a message to the miner actor: the receiver and caller checked, the
//! params decoded with the official types by method number, and the sealing methods
//! (PreCommitSectorBatch2, ProveCommitSectors3) applied; the proving methods are in `post`.
//! A refusal is a [`Fail`] with the exit code builtin-actors v18 gives for it.

use std::collections::HashMap;

use db::Batch;
use lotus::fvm_ipld_encoding::RawBytes;
use lotus::miner::{
    BatchReturn, ChangeWorkerAddressParams, DeclareFaultsParams, DeclareFaultsRecoveredParams,
    FailCode, Method, PreCommitSectorBatchParams2, ProveCommitSectors3Params,
    SubmitWindowedPoStParams, TerminateSectorsParams, TerminateSectorsReturn,
};
use lotus::{ExitCode, Message};
use proofs::SealedCommitments;

use super::{allocated_key, precommit_key, sector_key, sector_ref, Devnet, Fail, MinerState};
use crate::devnet::proving::ProvingState;
use crate::{ActiveSector, PreCommitOnChain, RandKind};

/// The most sectors one PreCommitSectorBatch2 may carry (builtin-actors' policy).
pub const PRE_COMMIT_SECTOR_BATCH_MAX_SIZE: usize = 256;

fn decode<T: serde::de::DeserializeOwned>(m: &Message) -> Result<T, Fail> {
    lotus::fvm_ipld_encoding::from_slice(&m.params).map_err(|e| {
        Fail::new(
            ExitCode::USR_SERIALIZATION,
            format!("params of method {} do not decode: {e}", m.method_num),
        )
    })
}

fn cbor<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, Fail> {
    Ok(RawBytes::serialize(v).map_err(Fail::state)?.into())
}

impl Devnet {
    /// Applies `m` at `epoch`, writing to `batch`; `done` holds what the epoch's earlier
    /// messages wrote (a sector pre-committed or activated by one is so for the next).
    pub(super) async fn apply_msg(
        &self,
        m: &Message,
        epoch: i64,
        done: &Batch,
        batch: &mut Batch,
        miners: &mut HashMap<u64, MinerState>,
    ) -> Result<Vec<u8>, Fail> {
        if m.to == super::id_address(lotus::power::POWER_ACTOR) {
            if m.method_num != lotus::power::CREATE_MINER {
                return Err(Fail::new(
                    ExitCode::USR_UNHANDLED_MESSAGE,
                    format!(
                        "the devnet's power actor handles CreateMiner only, not method {}",
                        m.method_num
                    ),
                ));
            }
            let ret = self.create_miner(m, decode(m)?, miners)?;
            return cbor(&ret);
        }
        let actor =
            m.to.id()
                .ok()
                .filter(|a| self.miner(*a).ok().flatten().is_some())
                .ok_or_else(|| {
                    Fail::new(
                        ExitCode::SYS_INVALID_RECEIVER,
                        format!("{} is not a miner actor on the devnet", m.to),
                    )
                })?;
        let method = m.method_num;
        let caller = self
            .account_id(&m.from)
            .map_err(Fail::state)?
            .ok_or_else(|| {
                Fail::new(
                    ExitCode::USR_FORBIDDEN,
                    format!("caller {} is not an account", m.from),
                )
            })?;
        let miner = self.miner_mut(miners, actor)?;
        let owner = miner.owner_id.unwrap_or(miner.worker_id);
        if method == Method::ChangeWorkerAddress.number() {
            if caller != owner {
                return Err(Fail::new(
                    ExitCode::USR_FORBIDDEN,
                    format!("caller {} is not the owner t0{owner} of {}", m.from, m.to),
                ));
            }
            let p: ChangeWorkerAddressParams = decode(m)?;
            return self.change_addresses(actor, p, miners).map(|_| Vec::new());
        }
        // The owner, the worker and the control addresses may call the miner (builtin-actors'
        // caller_validation with the control addresses).
        if caller != owner && caller != miner.worker_id && !miner.control.contains(&caller) {
            return Err(Fail::new(
                ExitCode::USR_FORBIDDEN,
                format!(
                    "caller {} is not the owner, worker or a control address of {}",
                    m.from, m.to
                ),
            ));
        }
        if method == Method::PreCommitSectorBatch2.number() {
            self.apply_precommit(actor, decode(m)?, epoch, done, batch, miners)?;
            Ok(Vec::new())
        } else if method == Method::ProveCommitSectors3.number() {
            let ret = self
                .apply_prove_commit(actor, decode(m)?, epoch, done, batch, miners)
                .await?;
            cbor(&ret)
        } else if method == Method::SubmitWindowedPoSt.number() {
            let p: SubmitWindowedPoStParams = decode(m)?;
            self.submit_window_post(actor, p, epoch, miners).await?;
            Ok(Vec::new())
        } else if method == Method::DeclareFaults.number() {
            let p: DeclareFaultsParams = decode(m)?;
            self.declare(actor, &p.faults, false, epoch, miners)?;
            Ok(Vec::new())
        } else if method == Method::DeclareFaultsRecovered.number() {
            let p: DeclareFaultsRecoveredParams = decode(m)?;
            self.declare(actor, &p.recoveries, true, epoch, miners)?;
            Ok(Vec::new())
        } else if method == Method::TerminateSectors.number() {
            let p: TerminateSectorsParams = decode(m)?;
            self.terminate(actor, &p.terminations, epoch, done, batch, miners)?;
            cbor(&TerminateSectorsReturn { done: true })
        } else if method == Method::ExtendSectorExpiration2.number() {
            self.extend(actor, decode(m)?, epoch, done, batch)?;
            Ok(Vec::new())
        } else {
            Err(Fail::new(
                ExitCode::USR_UNHANDLED_MESSAGE,
                format!("the devnet's miner actor does not handle method {method}"),
            ))
        }
    }

    /// ChangeWorkerAddress: the control addresses (accounts, at most 10) take effect at once;
    /// the devnet keeps its worker (a change would take effect only after a delay on a chain).
    fn change_addresses(
        &self,
        actor: u64,
        p: ChangeWorkerAddressParams,
        miners: &mut HashMap<u64, MinerState>,
    ) -> Result<(), Fail> {
        if p.new_control_addresses.len() > 10 {
            return Err(Fail::arg(format!(
                "{} control addresses, at most 10",
                p.new_control_addresses.len()
            )));
        }
        let mut control = Vec::new();
        for a in &p.new_control_addresses {
            let id = self
                .account_id(a)
                .map_err(Fail::state)?
                .ok_or_else(|| Fail::arg(format!("control address {a} is not an account")))?;
            control.push(id);
        }
        let miner = self.miner_mut(miners, actor)?;
        let worker = self.account_id(&p.new_worker).map_err(Fail::state)?;
        if worker != Some(miner.worker_id) {
            return Err(Fail::arg(format!(
                "the devnet does not change workers ({} asked, t0{} kept)",
                p.new_worker, miner.worker_id
            )));
        }
        miner.control = control;
        Ok(())
    }

    fn apply_precommit(
        &self,
        actor: u64,
        p: PreCommitSectorBatchParams2,
        epoch: i64,
        done: &Batch,
        batch: &mut Batch,
        miners: &mut HashMap<u64, MinerState>,
    ) -> Result<(), Fail> {
        let size = self.miner_mut(miners, actor)?.sector_size;
        let deposit = super::funds::precommit_deposit(size);
        if p.sectors.is_empty() {
            return Err(Fail::arg("no sectors to pre-commit"));
        }
        if p.sectors.len() > PRE_COMMIT_SECTOR_BATCH_MAX_SIZE {
            return Err(Fail::arg(format!(
                "{} sectors in one pre-commit batch, at most {PRE_COMMIT_SECTOR_BATCH_MAX_SIZE}",
                p.sectors.len()
            )));
        }
        let mut out = Vec::new();
        for s in &p.sectors {
            let n = s.sector_number;
            let proof = i64::from(s.seal_proof);
            if proof != size.seal_proof() as i64 {
                return Err(Fail::arg(format!(
                    "sector {n}: seal proof {proof} is not the miner's ({})",
                    size.seal_proof() as i64
                )));
            }
            let active = self.sector(actor, n).map_err(Fail::state)?.is_some();
            if active || done.writes(&sector_key(actor, n)) {
                return Err(Fail::arg(format!("sector {n} is already active")));
            }
            let pre = self.precommit(actor, n).map_err(Fail::state)?.is_some();
            if pre || done.writes(&precommit_key(actor, n)) {
                return Err(Fail::arg(format!("sector {n} is already pre-committed")));
            }
            let key = allocated_key(actor, n);
            if done.writes(&key) || self.db.get::<bool>(&key).map_err(Fail::state)?.is_some() {
                return Err(Fail::arg(format!(
                    "sector number {n} was allocated already (a number is never reused)"
                )));
            }
            if out
                .iter()
                .any(|pc: &PreCommitOnChain| pc.sector.number == n)
            {
                return Err(Fail::arg(format!("duplicate sector number {n}")));
            }
            if s.seal_rand_epoch >= epoch {
                return Err(Fail::arg(format!(
                    "sector {n}: ticket epoch {} is not before {epoch}",
                    s.seal_rand_epoch
                )));
            }
            let earliest = epoch - self.cfg.max_ticket_age;
            if s.seal_rand_epoch < earliest {
                return Err(Fail::arg(format!(
                    "sector {n}: ticket epoch {} is too old (the earliest at epoch {epoch} is \
                     {earliest})",
                    s.seal_rand_epoch
                )));
            }
            let comm_r = lotus::fvm_shared::commcid::cid_to_replica_commitment_v1(&s.sealed_cid)
                .map_err(|e| Fail::arg(format!("sector {n}: sealed CID: {e}")))?;
            let comm_d = s
                .unsealed_cid
                .0
                .map(|c| lotus::fvm_shared::commcid::cid_to_data_commitment_v1(&c))
                .transpose()
                .map_err(|e| Fail::arg(format!("sector {n}: unsealed CID: {e}")))?;
            out.push(PreCommitOnChain {
                sector: sector_ref(actor, n, size),
                comm_r,
                comm_d,
                ticket_epoch: s.seal_rand_epoch,
                precommit_epoch: epoch,
                expiration: s.expiration,
                deposit: deposit.clone(),
            });
        }
        // Every deposit of the batch is locked at once, or none (exit 19).
        let total = deposit.clone() * out.len() as u64;
        let what = format!("the pre-commit deposit of {} sector(s)", out.len());
        super::funds::lock(self.miner_mut(miners, actor)?, &total, what, |m| {
            m.precommit_deposits += total.clone()
        })?;
        for pc in out {
            batch.put(&allocated_key(actor, pc.sector.number), &true);
            batch.put(&precommit_key(actor, pc.sector.number), &pc);
        }
        Ok(())
    }

    async fn apply_prove_commit(
        &self,
        actor: u64,
        p: ProveCommitSectors3Params,
        epoch: i64,
        done: &Batch,
        batch: &mut Batch,
        miners: &mut HashMap<u64, MinerState>,
    ) -> Result<BatchReturn, Fail> {
        if p.sector_proofs.len() != p.sector_activations.len() || p.aggregate_proof_type.is_some() {
            return Err(Fail::arg(format!(
                "{} activations with {} proofs: the devnet takes one proof per sector, no aggregates",
                p.sector_activations.len(),
                p.sector_proofs.len()
            )));
        }
        let mut fails = Vec::new();
        let mut first: Option<Fail> = None;
        for (i, (a, proof)) in p
            .sector_activations
            .iter()
            .zip(&p.sector_proofs)
            .enumerate()
        {
            let r = self
                .activate(actor, a.sector_number, proof, epoch, done, batch, miners)
                .await;
            if let Err(f) = r {
                tracing::info!(
                    sector = a.sector_number,
                    "devnet: activation failed: {}",
                    f.reason
                );
                fails.push(FailCode {
                    idx: i as u32,
                    code: f.code,
                });
                first.get_or_insert(f);
            }
        }
        let ok = p.sector_activations.len() - fails.len();
        match first {
            Some(f) if ok == 0 || p.require_activation_success => Err(f),
            _ => Ok(BatchReturn {
                success_count: ok as u32,
                fail_codes: fails,
            }),
        }
    }

    /// Pre-commits no longer provable at `epoch` (MaxProveCommitDuration after they landed)
    /// are removed and their deposits burnt. builtin-actors' cron does so
    /// ExpiredPreCommitCleanUpDelay later; the devnet at once.
    pub(super) fn expire_precommits(
        &self,
        epoch: i64,
        batch: &mut Batch,
        miners: &mut HashMap<u64, MinerState>,
    ) -> Result<(), crate::ChainError> {
        let max = self.cfg.max_prove_commit_duration;
        for (key, pc) in self.db.scan::<PreCommitOnChain>(super::PRECOMMITS)? {
            if epoch <= pc.precommit_epoch + max || batch.writes(&key) {
                continue;
            }
            let m = self
                .miner_mut(miners, pc.sector.miner)
                .map_err(|f| crate::ChainError::Other(f.reason))?;
            m.precommit_deposits -= pc.deposit.clone();
            m.balance -= pc.deposit.clone();
            batch.delete(&key);
            tracing::info!(
                sector = pc.sector.number,
                "devnet: pre-commit of epoch {} expired unproven at epoch {epoch}: removed, its \
                 deposit burnt",
                pc.precommit_epoch
            );
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn activate(
        &self,
        actor: u64,
        n: u64,
        proof: &RawBytes,
        epoch: i64,
        done: &Batch,
        batch: &mut Batch,
        miners: &mut HashMap<u64, MinerState>,
    ) -> Result<(), Fail> {
        // Activated by an earlier message of this epoch, or earlier in this one: its
        // pre-commit is gone.
        let key = sector_key(actor, n);
        if done.writes(&key) || batch.writes(&key) {
            return Err(Fail::new(
                ExitCode::USR_NOT_FOUND,
                format!("sector {n} has no pre-commit (activated in this epoch)"),
            ));
        }
        let pc = self
            .precommit(actor, n)
            .map_err(Fail::state)?
            .ok_or_else(|| {
                Fail::new(
                    ExitCode::USR_NOT_FOUND,
                    format!("sector {n} has no pre-commit"),
                )
            })?;
        let seed_epoch = pc.precommit_epoch + self.cfg.challenge_delay;
        let last = pc.precommit_epoch + self.cfg.max_prove_commit_duration;
        if epoch > last {
            return Err(Fail::arg(format!(
                "prove-commit of sector {n} too late: its pre-commit (epoch {}) could be proven \
                 until epoch {last}, now {epoch}",
                pc.precommit_epoch
            )));
        }
        if epoch <= seed_epoch {
            return Err(Fail::new(
                ExitCode::USR_FORBIDDEN,
                format!(
                    "prove-commit of sector {n} too early: seed epoch {seed_epoch}, now {epoch}"
                ),
            ));
        }
        let comm_d = pc.comm_d.ok_or_else(|| {
            Fail::arg(format!(
                "sector {n}: the devnet verifies seals against the pre-commit's unsealed CID, and it has none"
            ))
        })?;
        let ticket = self.rand_for(RandKind::Ticket, actor, pc.ticket_epoch);
        let seed = self.rand_for(RandKind::Seed, actor, seed_epoch);
        let comms = SealedCommitments {
            comm_d,
            comm_r: pc.comm_r,
        };
        let (engine, s, proof) = (self.engine.clone(), pc.sector, proof.to_vec());
        let ok = tokio::task::spawn_blocking(move || {
            engine.verify_seal(&s, &comms, &ticket, &seed, &proof)
        })
        .await
        .map_err(Fail::state)?
        .map_err(|e| Fail::arg(format!("seal proof of sector {n} not verifiable: {e}")))?;
        if !ok {
            return Err(Fail::arg(format!("invalid seal proof for sector {n}")));
        }
        // Several activations in one epoch add up: the miner's state for this epoch is kept
        // in `miners` and written once with the batch.
        let (window, size) = (self.cfg.window, self.miner_mut(miners, actor)?.sector_size);
        let miner = self.miner_mut(miners, actor)?;
        // The pre-commit's deposit is released, and the initial pledge locked in its place.
        let pledge = super::funds::initial_pledge(size);
        let mut released = miner.clone();
        released.precommit_deposits -= pc.deposit.clone();
        super::funds::lock(
            &mut released,
            &pledge,
            format_args!("the initial pledge of sector {n}"),
            |m| m.initial_pledge += pledge.clone(),
        )?;
        *miner = released;
        miner.power.sectors += 1;
        miner.power.raw_bytes += size.bytes();
        let (deadline, partition) = miner
            .proving
            .get_or_insert_with(|| ProvingState::new(window, size, epoch))
            .assign(n, epoch);
        batch.put(
            &sector_key(actor, n),
            &ActiveSector {
                sector: pc.sector,
                comm_r: pc.comm_r,
                activation: epoch,
                expiration: pc.expiration,
                deadline,
                partition,
                initial_pledge: pledge,
            },
        );
        batch.delete(&precommit_key(actor, n));
        Ok(())
    }
}
