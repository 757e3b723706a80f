//! [`LocalChain`]: an embedded devnet that advances an epoch every BlockDelay, derives ticket and
//! seed randomness per epoch, lands pre-commit and prove-commit messages at the next epoch,
//! verifies prove-commits with the proof engine and adds power for each activated sector, then
//! keeps it proven: WindowPoSt deadlines, faults and recoveries (`post`, with the miner actor's
//! bookkeeping in `proving`). Its state lives in the sealer's RocksDB under `chain/`.

mod post;
pub mod proving;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use api::{ChainHead, MinerPower};
use async_trait::async_trait;
use db::{Batch, Db};
use proofs::{Engine, Randomness};
use resources::{SectorRef, SectorSize};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    hex, next_opening, ActiveSector, Chain, ChainError, DeadlineInfo, DeadlineState, Message,
    MinerTally, PreCommitOnChain, RandKind, Receipt, DEADLINES,
};
use proving::ProvingState;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Head {
    height: i64,
    timestamp_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MinerState {
    sector_size: SectorSize,
    power: MinerPower,
    #[serde(default)]
    proving: Option<ProvingState>,
    /// Blocks won (elections answered with a valid WinningPoSt in time).
    #[serde(default)]
    wins: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredMsg {
    msg: Message,
    receipt: Option<Receipt>,
}

const HEAD: &str = "chain/head";
const GENESIS: &str = "chain/genesis";
const NONCE: &str = "chain/nonce";
const MPOOL: &str = "chain/mpool/";

fn msg_key(id: &str) -> String {
    format!("chain/msg/{id}")
}
fn miner_key(actor: u64) -> String {
    format!("chain/miner/{actor}")
}
fn precommit_key(s: &SectorRef) -> String {
    format!("chain/precommit/{}/{:020}", s.miner, s.number)
}
fn sector_key(s: &SectorRef) -> String {
    format!("chain/sector/{}/{:020}", s.miner, s.number)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub struct LocalChain {
    db: Db,
    engine: Arc<dyn Engine>,
    block_delay: Duration,
    challenge_delay: i64,
    /// Epochs per WindowPoSt deadline.
    window: i64,
    /// Raw power of the rest of the devnet network (elections).
    other_power: u64,
    genesis: [u8; 32],
    head_tx: tokio::sync::watch::Sender<i64>,
    /// One writer of chain state at a time (epoch application and miner registration).
    apply: tokio::sync::Mutex<()>,
}

impl LocalChain {
    /// Opens (or creates, at epoch 0) the chain stored in `db`.
    pub fn open(
        db: Db,
        engine: Arc<dyn Engine>,
        block_delay: Duration,
        challenge_delay: u64,
        window: u64,
        other_power: u64,
    ) -> Result<Arc<LocalChain>, ChainError> {
        let genesis = match db.get::<[u8; 32]>(GENESIS)? {
            Some(g) => g,
            None => {
                let mut g = [0u8; 32];
                getrandom::fill(&mut g).map_err(|e| ChainError::Other(e.to_string()))?;
                let mut b = Batch::default();
                b.put(GENESIS, &g);
                b.put(
                    HEAD,
                    &Head {
                        height: 0,
                        timestamp_ms: now_ms(),
                    },
                );
                db.write(b)?;
                g
            }
        };
        let head: Head = db.get(HEAD)?.expect("head written with genesis");
        let (head_tx, _) = tokio::sync::watch::channel(head.height);
        Ok(Arc::new(LocalChain {
            db,
            engine,
            block_delay,
            challenge_delay: challenge_delay as i64,
            window: window.max(1) as i64,
            other_power,
            genesis,
            head_tx,
            apply: tokio::sync::Mutex::new(()),
        }))
    }

    /// Advances the chain every BlockDelay until the task is dropped.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.block_delay);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = me.advance().await {
                    tracing::error!("local chain: could not advance an epoch: {e}");
                }
            }
        })
    }

    /// Mines one epoch: applies every pending message, then moves the head.
    pub async fn advance(&self) -> Result<i64, ChainError> {
        let _g = self.apply.lock().await;
        let head: Head = self.db.get(HEAD)?.expect("head");
        let epoch = head.height + 1;
        let mut batch = Batch::default();
        let mut miners = HashMap::new();
        for (key, id) in self.db.scan::<String>(MPOOL)? {
            let Some(mut stored) = self.db.get::<StoredMsg>(&msg_key(&id))? else {
                batch.delete(&key);
                continue;
            };
            let receipt = match self
                .apply_msg(&stored.msg, epoch, &mut batch, &mut miners)
                .await
            {
                Ok(()) => Receipt {
                    epoch,
                    exit_code: 0,
                    error: String::new(),
                },
                Err(error) => {
                    tracing::info!(msg = %id, "local chain: message failed: {error}");
                    Receipt {
                        epoch,
                        exit_code: 16,
                        error,
                    }
                }
            };
            stored.receipt = Some(receipt);
            batch.put(&msg_key(&id), &stored);
            batch.delete(&key);
        }
        self.close_deadlines(epoch, &mut miners)?;
        for (actor, m) in &miners {
            batch.put(&miner_key(*actor), m);
        }
        batch.put(
            HEAD,
            &Head {
                height: epoch,
                timestamp_ms: now_ms(),
            },
        );
        self.db.write(batch)?;
        self.head_tx.send_replace(epoch);
        Ok(epoch)
    }

    async fn apply_msg(
        &self,
        msg: &Message,
        epoch: i64,
        batch: &mut Batch,
        miners: &mut HashMap<u64, MinerState>,
    ) -> Result<(), String> {
        match msg {
            Message::PreCommit {
                sector,
                comms,
                ticket_epoch,
            } => {
                if self
                    .db
                    .get::<ActiveSector>(&sector_key(sector))
                    .ok()
                    .flatten()
                    .is_some()
                {
                    return Err(format!("sector {} is already active", sector.number));
                }
                if *ticket_epoch >= epoch {
                    return Err(format!("ticket epoch {ticket_epoch} is not before {epoch}"));
                }
                batch.put(
                    &precommit_key(sector),
                    &PreCommitOnChain {
                        sector: *sector,
                        comms: *comms,
                        ticket_epoch: *ticket_epoch,
                        precommit_epoch: epoch,
                    },
                );
                Ok(())
            }
            Message::SubmitWindowedPoSt { .. }
            | Message::DeclareFaults { .. }
            | Message::DeclareFaultsRecovered { .. }
            | Message::WinningPoSt { .. } => self.apply_post_msg(msg, epoch, miners).await,
            Message::ProveCommit { sector, proof } => {
                let pc: PreCommitOnChain = self
                    .db
                    .get(&precommit_key(sector))
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| {
                        format!("sector {} has no pre-commit on chain", sector.number)
                    })?;
                let seed_epoch = pc.precommit_epoch + self.challenge_delay;
                if epoch <= seed_epoch {
                    return Err(format!(
                        "prove-commit of sector {} too early: seed epoch {seed_epoch}, now {epoch}",
                        sector.number
                    ));
                }
                let ticket = self.rand(RandKind::Ticket, pc.ticket_epoch);
                let seed = self.rand(RandKind::Seed, seed_epoch);
                let engine = self.engine.clone();
                let (s, comms, proof) = (*sector, pc.comms, proof.clone());
                let ok = tokio::task::spawn_blocking(move || {
                    engine.verify_seal(&s, &comms, &ticket, &seed, &proof)
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| {
                    format!("seal proof of sector {} not verifiable: {e}", sector.number)
                })?;
                if !ok {
                    return Err(format!("invalid seal proof for sector {}", sector.number));
                }
                // Several activations in one epoch add up: the miner's state for this epoch
                // is kept here and written once with the batch.
                let miner = self.miner_mut(miners, sector.miner)?;
                miner.power.sectors += 1;
                miner.power.raw_bytes += sector.size().bytes();
                let (window, size) = (self.window, miner.sector_size);
                let (deadline, partition) = miner
                    .proving
                    .get_or_insert_with(|| ProvingState::new(window, size, epoch))
                    .assign(sector.number, epoch);
                batch.put(
                    &sector_key(sector),
                    &ActiveSector {
                        sector: *sector,
                        comm_r: pc.comms.comm_r,
                        activation: epoch,
                        deadline,
                        partition,
                    },
                );
                batch.delete(&precommit_key(sector));
                Ok(())
            }
        }
    }

    fn rand(&self, kind: RandKind, epoch: i64) -> Randomness {
        let mut h = Sha256::new();
        h.update(self.genesis);
        h.update(match kind {
            RandKind::Ticket => b"ticket",
            RandKind::Seed => b"seed__",
            RandKind::WindowPoSt => b"wdpost",
            RandKind::WinningPoSt => b"wnpost",
        });
        h.update(epoch.to_le_bytes());
        h.finalize().into()
    }

    fn head_now(&self) -> Result<ChainHead, ChainError> {
        let h: Head = self.db.get(HEAD)?.expect("head");
        Ok(ChainHead {
            height: h.height,
            timestamp_ms: h.timestamp_ms,
            block_delay_ms: self.block_delay.as_millis() as u64,
        })
    }
}

#[async_trait]
impl Chain for LocalChain {
    fn mode(&self) -> &'static str {
        "local"
    }

    async fn head(&self) -> Result<ChainHead, ChainError> {
        self.head_now()
    }

    async fn wait_epoch(&self, epoch: i64) -> Result<ChainHead, ChainError> {
        let mut rx = self.head_tx.subscribe();
        rx.wait_for(|h| *h >= epoch)
            .await
            .map_err(|_| ChainError::Other("chain stopped".into()))?;
        self.head_now()
    }

    async fn randomness(&self, kind: RandKind, epoch: i64) -> Result<Randomness, ChainError> {
        let head = self.head_now()?.height;
        if epoch > head {
            return Err(ChainError::Future { epoch, head });
        }
        Ok(self.rand(kind, epoch))
    }

    fn precommit_challenge_delay(&self) -> i64 {
        self.challenge_delay
    }

    async fn ensure_miner(&self, actor: u64, size: SectorSize) -> Result<(), ChainError> {
        let _g = self.apply.lock().await;
        match self.db.get::<MinerState>(&miner_key(actor))? {
            Some(m) if m.sector_size != size => Err(ChainError::SectorSizeMismatch {
                actor,
                on_chain: m.sector_size,
                asked: size,
            }),
            Some(_) => Ok(()),
            None => Ok(self.db.put(
                &miner_key(actor),
                &MinerState {
                    sector_size: size,
                    power: MinerPower::default(),
                    proving: None,
                    wins: 0,
                },
            )?),
        }
    }

    async fn push(&self, msg: Message) -> Result<String, ChainError> {
        let _g = self.apply.lock().await;
        let nonce: u64 = self.db.get(NONCE)?.unwrap_or(0);
        let mut h = Sha256::new();
        h.update(self.genesis);
        h.update(nonce.to_le_bytes());
        h.update(serde_json::to_vec(&msg).expect("messages serialize"));
        let digest: [u8; 32] = h.finalize().into();
        let id = format!("bafy2bzace{}", hex(&digest[..20]));
        let mut b = Batch::default();
        b.put(NONCE, &(nonce + 1));
        b.put(&msg_key(&id), &StoredMsg { msg, receipt: None });
        b.put(&format!("{MPOOL}{:020}", nonce), &id);
        self.db.write(b)?;
        Ok(id)
    }

    async fn receipt(&self, id: &str) -> Result<Option<Receipt>, ChainError> {
        Ok(self
            .db
            .get::<StoredMsg>(&msg_key(id))?
            .and_then(|m| m.receipt))
    }

    async fn precommit(&self, sector: &SectorRef) -> Result<Option<PreCommitOnChain>, ChainError> {
        Ok(self.db.get(&precommit_key(sector))?)
    }

    async fn active_sector(&self, sector: &SectorRef) -> Result<Option<ActiveSector>, ChainError> {
        Ok(self.db.get(&sector_key(sector))?)
    }

    async fn power(&self, actor: u64) -> Result<MinerPower, ChainError> {
        let mut total = MinerPower::default();
        let mut mine = MinerPower::default();
        for (key, m) in self.db.scan::<MinerState>("chain/miner/")? {
            total.raw_bytes += m.power.raw_bytes;
            if key == miner_key(actor) {
                mine = m.power;
            }
        }
        mine.total_raw_bytes = total.raw_bytes;
        Ok(mine)
    }

    fn wpost_window(&self) -> i64 {
        self.window
    }

    async fn proving_deadline(&self, _actor: u64) -> Result<DeadlineInfo, ChainError> {
        Ok(crate::deadline_at(self.head_now()?.height, self.window))
    }

    async fn deadlines(&self, actor: u64) -> Result<Vec<DeadlineState>, ChainError> {
        let head = self.head_now()?.height;
        let proving = self
            .db
            .get::<MinerState>(&miner_key(actor))?
            .and_then(|m| m.proving);
        let Some(p) = proving else {
            return Ok(vec![DeadlineState::default(); DEADLINES as usize]);
        };
        Ok(p.deadlines
            .iter()
            .enumerate()
            .map(|(i, dl)| DeadlineState {
                partitions: dl.partitions.clone(),
                // Proven in the opening under way (a closed one's set is cleared at its close).
                proven: if dl.proven_open == next_opening(i as u64, head, self.window).open {
                    dl.proven.clone()
                } else {
                    Default::default()
                },
            })
            .collect())
    }

    async fn elected(&self, actor: u64, epoch: i64) -> Result<bool, ChainError> {
        let head = self.head_now()?.height;
        if epoch > head {
            return Err(ChainError::Future { epoch, head });
        }
        self.is_elected(actor, epoch)
    }

    async fn winning_sectors(
        &self,
        actor: u64,
        epoch: i64,
    ) -> Result<Vec<ActiveSector>, ChainError> {
        let Some(m) = self.db.get::<MinerState>(&miner_key(actor))? else {
            return Ok(Vec::new());
        };
        self.challenged(actor, &m, epoch).map_err(ChainError::Other)
    }

    async fn tally(&self, actor: u64) -> Result<Option<MinerTally>, ChainError> {
        let m = self.db.get::<MinerState>(&miner_key(actor))?;
        Ok(Some(m.map_or(MinerTally::default(), |m| MinerTally {
            proofs_accepted: m.proving.as_ref().map_or(0, |p| p.proofs_accepted),
            missed: m.proving.as_ref().map_or(0, |p| p.missed),
            blocks_won: m.wins,
        })))
    }
}

#[cfg(test)]
mod tests;
