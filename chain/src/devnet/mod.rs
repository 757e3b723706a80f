//! [`Devnet`]: an embedded Filecoin devnet, served to the sealer as a Lotus FullNode ([`node`]).
//! It advances an epoch every BlockDelay; takes signed messages into its pool
//! (`MpoolPushMessage` signs with a key its wallet holds: the worker's BLS key, the faucet's
//! secp256k1 key) and applies them at the next
//! epoch as the miner actor would, decoding the params with the official types and answering
//! with the actor's exit codes (`apply`); verifies prove-commits and WindowPoSts with the proof
//! engine; keeps power, deadlines, faults and recoveries (`post`, with the actor's bookkeeping
//! in `proving`); and draws randomness with Lotus's formula from tickets and beacon entries of
//! its own. Its state lives in a RocksDB under `chain/`, so it carries on across restarts.
//!
//! Money is kept as on a real network (`funds`): balances, gas at a fixed base fee, a message's
//! value moved to its receiver, a miner's pre-commit deposits and initial pledge locked.
//!
//! What differs from a Lotus node, and why: the devnet's blocks are made up (one per epoch, its
//! CID names the genesis and height rather than a header's bytes), its base fee and prices are
//! fixed, and an election stands the randomness in for the worker's VRF ([`crate::election`]).

mod apply;
mod create;
pub mod funds;
mod lifetime;
pub mod node;
mod reorg;

pub use reorg::{Reverted, UNDO_EPOCHS};
mod post;
pub mod proving;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use api::MinerPower;
use db::{Batch, Db};
use lotus::chain::{BeaconEntry, BlockHeader, ElectionProof, Ticket, TipSet};
use lotus::wallet::{BlsKey, Key};
use lotus::{Address, Cid, Message, SignedMessage};
use proofs::Engine;
use resources::{SectorRef, SectorSize};
use serde::{Deserialize, Serialize};

use crate::{ActiveSector, ChainError, PreCommitOnChain, RandKind};
use proving::ProvingState;

/// How the devnet runs.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    pub block_delay: Duration,
    /// Epochs from a pre-commit landing to its seed (PreCommitChallengeDelay).
    pub challenge_delay: i64,
    /// Epochs per WindowPoSt deadline (WPoStChallengeWindow).
    pub window: i64,
    /// Raw power of the rest of the devnet network (elections).
    pub other_power: u64,
    /// What the genesis miner's worker holds at genesis.
    pub worker_funds: lotus::TokenAmount,
    /// How old a pre-commit's ticket may be when it lands (MaxPreCommitRandomnessLookback).
    pub max_ticket_age: i64,
    /// How far back from the head a sealer draws its tickets (SealRandomnessLookback; 0 on a
    /// devnet, whose reorgs are only the ones a test asks for).
    pub ticket_lookback: i64,
    /// How long after its pre-commit lands a sector may be prove-committed
    /// (MaxProveCommitDuration); a pre-commit not proven by then is removed and its deposit
    /// burnt.
    pub max_prove_commit_duration: i64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Head {
    pub height: i64,
    pub timestamp_ms: u64,
}

/// A miner actor's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MinerState {
    pub sector_size: SectorSize,
    pub power: MinerPower,
    #[serde(default)]
    pub proving: Option<ProvingState>,
    /// Blocks won (elections answered with a valid WinningPoSt in time).
    #[serde(default)]
    pub wins: u64,
    /// The epoch of the last block won (one block per epoch).
    #[serde(default)]
    pub last_win: Option<i64>,
    /// Its worker's (and owner's) key address: a BLS key the devnet's wallet holds (a devnet
    /// made before it had BLS keeps its secp256k1 worker).
    pub worker: String,
    /// The worker account's ID: `StateMinerInfo` names the worker `t0<id>`, as Lotus does.
    #[serde(default)]
    pub worker_id: u64,
    /// The actor's balance, of which `precommit_deposits` and `initial_pledge` are locked.
    #[serde(with = "lotus::json::token", default)]
    pub balance: lotus::TokenAmount,
    #[serde(with = "lotus::json::token", default)]
    pub precommit_deposits: lotus::TokenAmount,
    #[serde(with = "lotus::json::token", default)]
    pub initial_pledge: lotus::TokenAmount,
    /// The owner's account ID; none: the worker owns the miner (the genesis miner).
    #[serde(default)]
    pub owner_id: Option<u64>,
    /// Control addresses (account IDs), as the owner last set them.
    #[serde(default)]
    pub control: Vec<u64>,
}

impl MinerState {
    /// The worker's key address (what signs).
    pub fn worker(&self) -> Address {
        lotus::json::parse_address(&self.worker).expect("stored as written")
    }

    /// The worker as the chain names it.
    pub fn worker_id(&self) -> Address {
        id_address(self.worker_id)
    }

    /// The owner as the chain names it.
    pub fn owner(&self) -> Address {
        id_address(self.owner_id.unwrap_or(self.worker_id))
    }
}

/// The worker account of the miner made at genesis (Lotus's genesis accounts start at t0100).
const GENESIS_WORKER_ID: u64 = 100;

/// A message's receipt, with why it failed (the devnet's log of what an actor would say).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredReceipt {
    pub epoch: i64,
    pub exit_code: u32,
    #[serde(default)]
    pub reason: String,
    #[serde(with = "proofs::bytes", default)]
    pub ret: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredMsg {
    /// The signed message's CBOR.
    #[serde(with = "proofs::bytes")]
    signed: Vec<u8>,
    receipt: Option<StoredReceipt>,
}

const HEAD: &str = "chain/head";
const GENESIS: &str = "chain/genesis";
const SEQ: &str = "chain/seq";
const MPOOL: &str = "chain/mpool/";
const MINERS: &str = "chain/miner/";

fn msg_key(cid: &Cid) -> String {
    format!("chain/msg/{cid}")
}
fn miner_key(actor: u64) -> String {
    format!("{MINERS}{actor}")
}
fn wallet_key(a: &Address) -> String {
    format!("chain/wallet/{a}")
}
fn account_key(id: u64) -> String {
    format!("chain/account/{id}")
}
fn nonce_key(a: &Address) -> String {
    format!("chain/nonce/{a}")
}
/// A sector number the miner actor allocated (by a pre-commit): never allocated again, even
/// after its pre-commit expired (builtin-actors' `allocate_sector_numbers`, deny collisions).
fn allocated_key(actor: u64, number: u64) -> String {
    format!("chain/allocated/{actor}/{number:020}")
}
const PRECOMMITS: &str = "chain/precommit/";
fn precommit_key(actor: u64, number: u64) -> String {
    format!("{PRECOMMITS}{actor}/{number:020}")
}
fn sector_key(actor: u64, number: u64) -> String {
    format!("chain/sector/{actor}/{number:020}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The devnet's base fee, per unit of gas: fixed.
pub fn base_fee() -> lotus::TokenAmount {
    lotus::TokenAmount::from_atto(100)
}

/// `t0<actor>`.
pub fn id_address(actor: u64) -> Address {
    Address::new_id(actor)
}

pub struct Devnet {
    db: Db,
    engine: Arc<dyn Engine>,
    cfg: DevnetConfig,
    genesis: [u8; 32],
    head_tx: tokio::sync::watch::Sender<i64>,
    /// One writer of chain state at a time (epochs, the message pool, blocks).
    apply: tokio::sync::Mutex<()>,
    /// Each miner's state as last decoded, and the store's write sequence then: a large
    /// miner's state (its deadlines' sectors) costs more to decode than the calls that read it.
    miners: std::sync::Mutex<HashMap<u64, (u64, Arc<MinerState>)>>,
}

impl Devnet {
    /// Opens (or creates, at epoch 0) the devnet stored in `db`, with miner `actor` of `size`
    /// sectors at genesis (its worker key made then, kept in the wallet); a miner already there
    /// keeps its size.
    pub fn open(
        db: Db,
        engine: Arc<dyn Engine>,
        cfg: DevnetConfig,
        actor: u64,
        size: SectorSize,
    ) -> Result<Arc<Devnet>, ChainError> {
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
        // A devnet is a test network: its addresses are written `t0…`/`t1…`.
        lotus::fvm_shared::address::set_current_network(lotus::Network::Testnet);
        // A miner made with another sector size keeps it: whoever asks with another size is
        // told so (StateMinerInfo), as on any chain.
        match db.get::<MinerState>(&miner_key(actor))? {
            Some(_) => {}
            None => {
                // The miner actor takes only BLS workers.
                let key = BlsKey::generate()?;
                let worker = key.address();
                let mut b = Batch::default();
                b.put(&wallet_key(&worker), &key.private_bytes());
                b.put(&account_key(GENESIS_WORKER_ID), &worker.to_string());
                b.put(
                    &miner_key(actor),
                    &MinerState {
                        sector_size: size,
                        power: MinerPower::default(),
                        proving: None,
                        wins: 0,
                        last_win: None,
                        worker: worker.to_string(),
                        worker_id: GENESIS_WORKER_ID,
                        balance: Default::default(),
                        precommit_deposits: Default::default(),
                        initial_pledge: Default::default(),
                        owner_id: None,
                        control: Vec::new(),
                    },
                );
                db.write(b)?;
            }
        }
        let worker = db
            .get::<MinerState>(&miner_key(actor))?
            .expect("written above")
            .worker();
        let head: Head = db.get(HEAD)?.expect("head written with genesis");
        let (head_tx, _) = tokio::sync::watch::channel(head.height);
        let mut cfg = cfg;
        cfg.window = cfg.window.max(1);
        let d = Devnet {
            db,
            engine,
            cfg,
            genesis,
            head_tx,
            apply: tokio::sync::Mutex::new(()),
            miners: Default::default(),
        };
        d.fund_genesis(&worker, &d.cfg.worker_funds)?;
        Ok(Arc::new(d))
    }

    pub fn config(&self) -> &DevnetConfig {
        &self.cfg
    }

    /// Advances the chain every BlockDelay until the task is dropped.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.cfg.block_delay);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = me.advance().await {
                    tracing::error!("devnet: could not advance an epoch: {e}");
                }
            }
        })
    }

    /// Mines one epoch: applies every message in the pool, closes deadlines, moves the head.
    pub async fn advance(&self) -> Result<i64, ChainError> {
        let _g = self.apply.lock().await;
        let head = self.head()?;
        let epoch = head.height + 1;
        let mut batch = Batch::default();
        let mut miners = HashMap::new();
        let mut balances = funds::Balances::default();
        for (key, cid) in self.db.scan::<String>(MPOOL)? {
            let Ok(cid) = cid.parse::<Cid>() else {
                batch.delete(&key);
                continue;
            };
            let Some(mut stored) = self.db.get::<StoredMsg>(&msg_key(&cid))? else {
                batch.delete(&key);
                continue;
            };
            let signed: SignedMessage = lotus::fvm_ipld_encoding::from_slice(&stored.signed)
                .map_err(|e| ChainError::Other(format!("stored message {cid}: {e}")))?;
            // Its fee cap does not cover the base fee: no block takes it; it waits in the pool.
            if signed.message.gas_fee_cap < base_fee() {
                continue;
            }
            batch.delete(&key);
            // Gas is paid whatever happens next; a message that fails changes nothing else: it
            // runs (its value moved first) on a copy of the epoch's state, kept only if it
            // succeeds.
            let mut trial = miners.clone();
            let mut trial_balances = balances.clone();
            let mut writes = Batch::default();
            let applied = match trial_balances.charge_gas(self, &signed.message) {
                Err(f) => Err(f),
                Ok(()) => {
                    balances = trial_balances.clone();
                    match trial_balances.transfer(self, &signed.message, &mut trial) {
                        Err(f) => Err(f),
                        // A plain send (method 0) only moves its value.
                        Ok(()) if signed.message.method_num == 0 => Ok(Vec::new()),
                        Ok(()) => {
                            self.apply_msg(&signed.message, epoch, &batch, &mut writes, &mut trial)
                                .await
                        }
                    }
                }
            };
            if applied.is_ok() {
                miners = trial;
                balances = trial_balances;
                batch.extend(writes);
            }
            let receipt = match applied {
                Ok(ret) => StoredReceipt {
                    epoch,
                    exit_code: 0,
                    reason: String::new(),
                    ret,
                },
                Err(f) => {
                    tracing::info!(msg = %cid, exit_code = f.code, "devnet: message failed: {}", f.reason);
                    StoredReceipt {
                        epoch,
                        exit_code: f.code,
                        reason: f.reason,
                        ret: Vec::new(),
                    }
                }
            };
            stored.receipt = Some(receipt);
            batch.put(&msg_key(&cid), &stored);
        }
        self.close_deadlines(epoch, &mut miners)?;
        self.expire_precommits(epoch, &mut batch, &mut miners)?;
        balances.write(&mut batch);
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
        self.keep_undo(epoch, &mut batch)?;
        self.db.write(batch)?;
        self.head_tx.send_replace(epoch);
        Ok(epoch)
    }

    pub fn head(&self) -> Result<Head, ChainError> {
        Ok(self.db.get(HEAD)?.expect("head written with genesis"))
    }

    /// Resolves when the head reaches `epoch`.
    pub async fn wait_epoch(&self, epoch: i64) -> Result<(), ChainError> {
        let mut rx = self.head_tx.subscribe();
        rx.wait_for(|h| *h >= epoch)
            .await
            .map(|_| ())
            .map_err(|_| ChainError::Other("devnet stopped".into()))
    }

    fn made_up(&self, what: &[u8], epoch: i64) -> [u8; 32] {
        let mut b = self.genesis.to_vec();
        b.extend_from_slice(what);
        b.extend_from_slice(&epoch.to_be_bytes());
        lotus::rand::digest_of(&b)
    }

    /// The block CID of `epoch` (the devnet has one block per epoch).
    pub fn block_cid(&self, epoch: i64) -> Cid {
        lotus::cbor_cid(&(lotus::fvm_ipld_encoding::BytesSer(&self.genesis), epoch))
            .expect("a pair encodes")
    }

    /// The tipset at `epoch` (at or before the head).
    pub fn tipset(&self, epoch: i64) -> Result<TipSet, ChainError> {
        let head = self.head()?;
        if epoch > head.height || epoch < 0 {
            return Err(ChainError::Future {
                epoch,
                head: head.height,
            });
        }
        let delay = self.cfg.block_delay.as_millis() as u64;
        let ts_ms = head
            .timestamp_ms
            .saturating_sub((head.height - epoch) as u64 * delay);
        let zero = self.block_cid(-1);
        let miner = self
            .db
            .first_key(MINERS)?
            .and_then(|k| k.trim_start_matches(MINERS).parse().ok())
            .unwrap_or(1000);
        let header = BlockHeader {
            miner: id_address(miner),
            ticket: Some(Ticket {
                vrf_proof: self.made_up(b"ticket", epoch).to_vec(),
            }),
            election_proof: Some(ElectionProof {
                win_count: 1,
                vrf_proof: self.made_up(b"election", epoch).to_vec(),
            }),
            beacon_entries: vec![self.beacon(epoch)],
            win_post_proof: Vec::new(),
            parents: if epoch == 0 {
                Vec::new()
            } else {
                vec![self.block_cid(epoch - 1)]
            },
            parent_weight: epoch.into(),
            height: epoch,
            parent_state_root: zero,
            parent_message_receipts: zero,
            messages: zero,
            bls_aggregate: None,
            timestamp: ts_ms / 1000,
            block_sig: None,
            fork_signaling: 0,
            parent_base_fee: base_fee(),
        };
        Ok(TipSet {
            cids: vec![self.block_cid(epoch)],
            blocks: vec![header],
            height: epoch,
        })
    }

    pub(super) fn beacon(&self, epoch: i64) -> BeaconEntry {
        BeaconEntry {
            round: epoch.max(0) as u64,
            data: self.made_up(b"beacon", epoch).to_vec(),
        }
    }

    /// Randomness as Lotus draws it: blake2b-256 over `tag`, the digest of the epoch's ticket
    /// VRF proof (`from_beacon` false) or beacon entry, `epoch` and `entropy`.
    pub fn randomness(
        &self,
        tag: i64,
        from_beacon: bool,
        epoch: i64,
        entropy: &[u8],
    ) -> Result<[u8; 32], ChainError> {
        let head = self.head()?.height;
        if epoch > head {
            return Err(ChainError::Future { epoch, head });
        }
        let tag = lotus::rand::DomainSeparationTag::from_number(tag)
            .ok_or_else(|| ChainError::Other(format!("unknown domain separation tag {tag}")))?;
        Ok(self.draw(tag, from_beacon, epoch, entropy))
    }

    fn draw(
        &self,
        tag: lotus::rand::DomainSeparationTag,
        from_beacon: bool,
        epoch: i64,
        entropy: &[u8],
    ) -> [u8; 32] {
        let base = if from_beacon {
            self.beacon(epoch).data
        } else {
            self.made_up(b"ticket", epoch).to_vec()
        };
        lotus::rand::draw(&lotus::rand::digest_of(&base), tag, epoch, entropy)
    }

    /// The miner's randomness of `kind` (what the actors draw when they check a proof).
    pub(crate) fn rand_for(&self, kind: RandKind, actor: u64, epoch: i64) -> [u8; 32] {
        let entropy = if kind.miner_entropy() {
            lotus::rand::miner_entropy(&id_address(actor))
        } else {
            Vec::new()
        };
        self.draw(kind.tag(), kind.from_beacon(), epoch, &entropy)
    }

    /// The key address of an account (`StateAccountKey`): an ID resolved, a key address as is.
    pub fn account_key(&self, a: &Address) -> Result<Address, ChainError> {
        let Ok(id) = a.id() else {
            return Ok(*a);
        };
        let key: String = self
            .db
            .get(&account_key(id))?
            .ok_or_else(|| ChainError::Other(format!("{a} is not an account on the devnet")))?;
        Ok(lotus::json::parse_address(&key)?)
    }

    /// Whether the wallet holds the key of `a` (a key address; an account's ID resolved).
    pub fn has_key(&self, a: &Address) -> Result<bool, ChainError> {
        let key = self.account_key(a)?;
        Ok(self.db.get::<[u8; 32]>(&wallet_key(&key))?.is_some())
    }

    /// Removes the key of `a` from the wallet (`lotus wallet delete`): its messages can no
    /// longer be signed here.
    pub fn delete_key(&self, a: &Address) -> Result<(), ChainError> {
        let key = self.account_key(a)?;
        if !self.has_key(&key)? {
            return Err(ChainError::Other(format!(
                "the wallet holds no key for {key}"
            )));
        }
        let mut b = Batch::default();
        b.delete(&wallet_key(&key));
        Ok(self.db.write(b)?)
    }

    pub fn miner(&self, actor: u64) -> Result<Option<MinerState>, ChainError> {
        Ok(self.miner_shared(actor)?.map(Arc::unwrap_or_clone))
    }

    /// Miner `actor`'s state, decoded again only after the store was written to.
    pub fn miner_shared(&self, actor: u64) -> Result<Option<Arc<MinerState>>, ChainError> {
        // The sequence first: the state read after it is at least that recent.
        let seq = self.db.sequence();
        let cache = || self.miners.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, m)) = cache().get(&actor) {
            if *at == seq {
                return Ok(Some(m.clone()));
            }
        }
        let Some(m) = self.db.get::<MinerState>(&miner_key(actor))? else {
            return Ok(None);
        };
        let m = Arc::new(m);
        cache().insert(actor, (seq, m.clone()));
        Ok(Some(m))
    }

    /// The raw power of every miner on the devnet (without OtherNetworkPower, which only
    /// elections count).
    pub fn network_power(&self) -> Result<u64, ChainError> {
        Ok(self
            .db
            .scan::<MinerState>(MINERS)?
            .iter()
            .map(|(_, m)| m.power.raw_bytes)
            .sum())
    }

    pub fn precommit(&self, actor: u64, n: u64) -> Result<Option<PreCommitOnChain>, ChainError> {
        Ok(self.db.get(&precommit_key(actor, n))?)
    }

    pub fn sector(&self, actor: u64, n: u64) -> Result<Option<ActiveSector>, ChainError> {
        Ok(self.db.get(&sector_key(actor, n))?)
    }

    /// Every proven sector of `actor`, by number.
    pub fn sectors(&self, actor: u64) -> Result<Vec<ActiveSector>, ChainError> {
        let prefix = format!("chain/sector/{actor}/");
        Ok(self
            .db
            .scan::<ActiveSector>(&prefix)?
            .into_iter()
            .map(|(_, s)| s)
            .collect())
    }

    /// Signs `m` with the wallet's key for its sender, fills in the sender's next nonce and
    /// gas, and puts it in the pool for the next epoch. Its gas fee cap is kept so that the gas
    /// costs at most `max_fee` (lotus's capGasFee; zero: no cap): a cap below the base fee
    /// leaves the message in the pool, as on a real chain.
    pub async fn push(
        &self,
        mut m: Message,
        max_fee: Option<lotus::TokenAmount>,
    ) -> Result<SignedMessage, ChainError> {
        // Lotus's pool refuses a message over 64 KiB (MaxMessageSize).
        if m.params.len() > 64 << 10 {
            return Err(ChainError::Other(format!(
                "message too big: {} bytes of params, the pool takes messages of at most {} bytes",
                m.params.len(),
                64 << 10
            )));
        }
        let _g = self.apply.lock().await;
        // An account named by its ID is signed for by its key, and sent from the key address
        // (as Lotus's MpoolPushMessage does).
        m.from = self.account_key(&m.from)?;
        let key: [u8; 32] = self.db.get(&wallet_key(&m.from))?.ok_or_else(|| {
            ChainError::Other(format!(
                "the devnet's wallet holds no key for {} (it holds the miners' workers and its faucet)",
                m.from
            ))
        })?;
        let key = Key::from_bytes(&m.from, &key)?;
        let nonce: u64 = self.db.get(&nonce_key(&m.from))?.unwrap_or(0);
        m.sequence = nonce;
        if m.gas_limit == 0 {
            m.gas_limit = 10_000_000;
            m.gas_fee_cap = lotus::TokenAmount::from_atto(100_000);
            m.gas_premium = lotus::TokenAmount::from_atto(1_000);
        }
        if let Some(max) = max_fee.filter(|f| !f.is_zero()) {
            let limit = lotus::TokenAmount::from_atto(m.gas_limit);
            if m.gas_fee_cap.atto() * m.gas_limit > *max.atto() {
                m.gas_fee_cap = lotus::TokenAmount::from_atto(max.atto() / limit.atto());
                if m.gas_premium > m.gas_fee_cap {
                    m.gas_premium = m.gas_fee_cap.clone();
                }
            }
        }
        self.check_funds(&m)?;
        let signed = key.sign(m)?;
        let cid = signed.cid();
        let seq: u64 = self.db.get(SEQ)?.unwrap_or(0);
        let mut b = Batch::default();
        b.put(&nonce_key(&signed.message.from), &(nonce + 1));
        b.put(SEQ, &(seq + 1));
        b.put(
            &msg_key(&cid),
            &StoredMsg {
                signed: lotus::fvm_ipld_encoding::to_vec(&signed)
                    .map_err(lotus::EncodingError::from)?,
                receipt: None,
            },
        );
        b.put(&format!("{MPOOL}{seq:020}"), &cid.to_string());
        self.db.write(b)?;
        Ok(signed)
    }

    /// The messages in the pool, in the order they will be applied.
    /// `WalletSign`: `data` signed by the wallet's key of `a` (an account's ID or key address).
    pub fn sign_bytes(
        &self,
        a: &Address,
        data: &[u8],
    ) -> Result<lotus::fvm_shared::crypto::signature::Signature, ChainError> {
        let a = self.account_key(a)?;
        let key: [u8; 32] = self.db.get(&wallet_key(&a))?.ok_or_else(|| {
            ChainError::Other(format!("the devnet's wallet holds no key for {a}"))
        })?;
        Ok(Key::from_bytes(&a, &key)?.sign_bytes(data)?)
    }

    pub fn pending(&self) -> Result<Vec<SignedMessage>, ChainError> {
        let mut out = Vec::new();
        for (_, cid) in self.db.scan::<String>(MPOOL)? {
            let Ok(cid) = cid.parse::<Cid>() else {
                continue;
            };
            if let Some((m, None)) = self.message(&cid)? {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// A message the devnet took, and its receipt once it has landed.
    pub fn message(
        &self,
        cid: &Cid,
    ) -> Result<Option<(SignedMessage, Option<StoredReceipt>)>, ChainError> {
        let Some(s) = self.db.get::<StoredMsg>(&msg_key(cid))? else {
            return Ok(None);
        };
        let signed = lotus::fvm_ipld_encoding::from_slice(&s.signed)
            .map_err(|e| ChainError::Other(format!("stored message {cid}: {e}")))?;
        Ok(Some((signed, s.receipt)))
    }
}

/// Every message a devnet stored in `db` took, in no particular order (for checks of what a
/// sealer sent).
pub fn stored_messages(db: &Db) -> Result<Vec<SignedMessage>, ChainError> {
    db.scan::<StoredMsg>("chain/msg/")?
        .into_iter()
        .map(|(k, m)| {
            lotus::fvm_ipld_encoding::from_slice(&m.signed)
                .map_err(|e| ChainError::Other(format!("{k}: {e}")))
        })
        .collect()
}

/// A message the actor refused: its exit code, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fail {
    pub code: u32,
    pub reason: String,
}

impl Fail {
    pub fn new(code: lotus::ExitCode, reason: impl Into<String>) -> Fail {
        Fail {
            code: code.value(),
            reason: reason.into(),
        }
    }
    pub fn arg(reason: impl Into<String>) -> Fail {
        Fail::new(lotus::ExitCode::USR_ILLEGAL_ARGUMENT, reason)
    }
    pub fn state(e: impl std::fmt::Display) -> Fail {
        Fail::new(lotus::ExitCode::USR_ILLEGAL_STATE, e.to_string())
    }
}

/// The sector reference of a miner's sector with `proof`.
pub(crate) fn sector_ref(actor: u64, n: u64, size: SectorSize) -> SectorRef {
    SectorRef::new(actor, n, size.seal_proof())
}

#[cfg(test)]
mod tests;
