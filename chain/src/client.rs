//! [`FullNode`]: the sealer's client of a Lotus FullNode v1 API (`FULLNODE_API_INFO`, Bearer
//! JWT, Lotus JSON over HTTP on `/rpc/v1`), implementing [`Chain`] with the calls lotus-miner
//! makes: the head by polling `ChainHead`, randomness from tickets and the beacon with the
//! actors' tags and the miner's address as entropy, the miner's info, deadlines, partitions,
//! pre-commits and sectors from `State*`, money (balances, deposits, pledge) from
//! `WalletBalance`, `StateReadState` and the `StateMiner*` amounts, messages sent with
//! `MpoolPushMessage` (their value the collateral) and found with
//! `StateSearchMsg`, blocks with `MinerGetBaseInfo` and `SyncSubmitBlock`. One head watch polls
//! `ChainHead` for every part of the sealer that waits for an epoch. Each request stands alone, so
//! a node that restarts is simply reached again; calls wait for a node they cannot connect to.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use api::contract::Method;
use api::fullnode as f;
use api::tasks::PoStTarget;
use api::{ApiInfo, ChainHead, Client, ClientError, MinerPower};
use async_trait::async_trait;
use lotus::chain::{BlockTemplate, ElectionProof, PoStProofJson, Ticket};
use lotus::json::wire::{Addr, Bytes, CidJson, TipSetKey};
use lotus::json::MessageJson;
use lotus::{Address, Call, Cid, RegisteredPoStProof, TokenAmount};
use proofs::Randomness;
use resources::{SealProof, SectorRef, SectorSize};

use crate::{
    Account, ActiveSector, Chain, ChainError, DeadlineInfo, DeadlineState, Election,
    MinerAddresses, MinerFunds, MinerTally, Partition, PreCommitOnChain, RandKind, Receipt,
    DEADLINES,
};

/// The devnet node's network name (`StateGetNetworkParams`).
pub const DEVNET_NAME: &str = "sealer-devnet";

#[derive(Clone)]
pub struct FullNode {
    rpc: std::sync::Arc<Client>,
    actor: u64,
    miner: Address,
    network: String,
    sector_size: u64,
    mode: &'static str,
    block_delay_ms: u64,
    poll: Duration,
    challenge_delay: i64,
    /// MaxPreCommitRandomnessLookback.
    max_ticket_age: i64,
    /// SealRandomnessLookback.
    ticket_lookback: i64,
    /// MaxProveCommitDuration, as the node says (a devnet's own) or builtin-actors' policy.
    max_prove_commit_duration: i64,
    window: i64,
    calls: std::sync::Arc<Mutex<BTreeMap<&'static str, u64>>>,
    /// How long a call waits for a node it cannot connect to (restarting, say) before failing.
    patience: Duration,
    /// The head as one poller shared by every fork sees it: waits for an epoch cost no calls.
    heads: tokio::sync::watch::Receiver<Option<ChainHead>>,
    /// The miner's addresses at the head the watch last saw: state changes only from one
    /// tipset to the next, so every sender choice and mpool search within an epoch shares
    /// one `StateMinerInfo` and its `StateAccountKey`s.
    addresses: std::sync::Arc<Mutex<Option<(i64, MinerAddresses)>>>,
    /// The pool's messages of the miner, as last looked up and sent since (see
    /// [`crate::pool`]), shared by every fork.
    pool: std::sync::Arc<tokio::sync::Mutex<crate::pool::PoolCache>>,
}

/// How long calls wait for a node that is away, by default.
pub const PATIENCE: Duration = Duration::from_secs(600);

fn bad(what: &'static str, reason: impl ToString) -> ChainError {
    ChainError::BadAnswer {
        what,
        reason: reason.to_string(),
    }
}

fn head_key() -> TipSetKey {
    TipSetKey::default()
}

fn cid_of(id: &str) -> Result<Cid, ChainError> {
    id.parse()
        .map_err(|e| ChainError::Other(format!("message ID {id:?} is not a CID: {e}")))
}

fn seal_proof(p: lotus::RegisteredSealProof) -> Result<SealProof, ChainError> {
    SealProof::try_from(i64::from(p)).map_err(|e| bad("seal proof", e))
}

fn comm_r(c: &Cid) -> Result<[u8; 32], ChainError> {
    lotus::fvm_shared::commcid::cid_to_replica_commitment_v1(c).map_err(|e| bad("sealed CID", e))
}

/// Addresses are written as the node's network writes them: `f…` on mainnet, `t…` on every
/// test network (calibnet, devnets), as Lotus builds for those networks print them.
pub fn use_network_prefix(network: &str) {
    let n = match network {
        "mainnet" => lotus::Network::Mainnet,
        _ => lotus::Network::Testnet,
    };
    lotus::fvm_shared::address::set_current_network(n);
}

impl FullNode {
    /// Connects to the node at `info` as miner `t0<actor>`: reads the network's parameters and
    /// the miner's info and proving deadline, so a node that is not there, or a miner that is
    /// not on its chain, is said at once.
    pub async fn connect(info: &ApiInfo, actor: u64) -> Result<FullNode, ChainError> {
        // Every sealing sector asks the node at once: more connections kept than a worker's
        // (each one reopened costs both ends a handshake and a close).
        let rpc = std::sync::Arc::new(Client::pooled(info, f::PATH, Duration::from_secs(60), 32));
        let mut me = FullNode {
            rpc,
            actor,
            miner: Address::new_id(actor),
            network: String::new(),
            sector_size: 0,
            mode: "lotus",
            block_delay_ms: 30_000,
            poll: Duration::from_secs(1),
            challenge_delay: 150,
            max_ticket_age: crate::MAX_PRECOMMIT_RANDOMNESS_LOOKBACK,
            ticket_lookback: crate::SEAL_RANDOMNESS_LOOKBACK,
            max_prove_commit_duration: crate::MAX_PROVE_COMMIT_DURATION,
            window: 60,
            calls: Default::default(),
            patience: Duration::ZERO,
            heads: tokio::sync::watch::channel(None).1,
            addresses: Default::default(),
            pool: Default::default(),
        };
        let params = me.call::<f::StateGetNetworkParams>(()).await?;
        me.block_delay_ms = params
            .other
            .get("BlockDelayMillis")
            .and_then(|v| v.as_u64())
            .unwrap_or(params.block_delay_secs * 1000);
        me.poll = Duration::from_millis((me.block_delay_ms / 4).clamp(10, 1000));
        me.challenge_delay = params.pre_commit_challenge_delay;
        // Not in a Lotus node's answer (its builds compile the policy in): a devnet says its own.
        me.max_ticket_age = params
            .other
            .get("MaxPreCommitRandomnessLookback")
            .and_then(|v| v.as_i64())
            .unwrap_or(crate::MAX_PRECOMMIT_RANDOMNESS_LOOKBACK);
        me.ticket_lookback = params
            .other
            .get("SealRandomnessLookback")
            .and_then(|v| v.as_i64())
            .unwrap_or(crate::SEAL_RANDOMNESS_LOOKBACK);
        me.max_prove_commit_duration = params
            .other
            .get("MaxProveCommitDuration")
            .and_then(|v| v.as_i64())
            .unwrap_or(crate::MAX_PROVE_COMMIT_DURATION);
        if params.network_name == DEVNET_NAME {
            me.mode = "devnet";
        }
        use_network_prefix(&params.network_name);
        me.network = params.network_name;
        let miner = Addr(me.miner);
        let mi = match me.call::<f::StateMinerInfo>((miner, head_key())).await {
            Ok(mi) => mi,
            Err(ChainError::Node(ClientError::Rpc(e))) => {
                return Err(ChainError::NoMiner(format!(
                    "{} ({}: {})",
                    me.miner,
                    me.rpc.url(),
                    e.message
                )))
            }
            Err(e) => return Err(e),
        };
        me.sector_size = mi.sector_size;
        let d = me
            .call::<f::StateMinerProvingDeadline>((miner, head_key()))
            .await?;
        me.window = d.wpost_challenge_window.max(1);
        me.patience = PATIENCE;
        me.heads = me.watch_heads();
        Ok(me)
    }

    /// Polls `ChainHead` every poll interval (a quarter of the block delay, at most a second;
    /// counted with this client's calls) while any fork still waits on it; a node that does
    /// not answer leaves the last head in place.
    fn watch_heads(&self) -> tokio::sync::watch::Receiver<Option<ChainHead>> {
        let (tx, rx) = tokio::sync::watch::channel(None);
        // Its calls count with this client's (a clone shares the counts); it holds the
        // receiver of the channel it replaces, not of this one, so the watch ends with its users.
        let probe = self.clone();
        let poll = self.poll;
        tokio::spawn(async move {
            let mut away: Option<std::time::Instant> = None;
            let mut tick = tokio::time::interval(poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if tx.is_closed() {
                    return;
                }
                *probe
                    .calls
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry("head watch")
                    .or_default() += 1;
                let h = match probe.head_now().await {
                    Ok(h) => h,
                    Err(e) => {
                        if away.is_none() {
                            tracing::warn!("chain node unreachable ({e}): waiting for it");
                            away = Some(std::time::Instant::now());
                        }
                        continue;
                    }
                };
                if let Some(since) = away.take() {
                    tracing::info!("chain node reached again after {:?}", since.elapsed());
                }
                // A higher head, or a lower one after a reorg (a waiter for an epoch the
                // chain went back from waits again).
                tx.send_if_modified(|old: &mut Option<ChainHead>| {
                    let changed = old.as_ref().is_none_or(|o| o.height != h.height);
                    if old.as_ref().is_some_and(|o| o.height > h.height) {
                        tracing::warn!("chain head went back to epoch {} (a reorg)", h.height);
                    }
                    if changed {
                        *old = Some(h);
                    }
                    changed
                });
            }
        });
        rx
    }

    /// The miner's addresses as the node says now (uncached).
    async fn addresses_now(&self) -> Result<MinerAddresses, ChainError> {
        let mi = self
            .call::<f::StateMinerInfo>((self.addr(), head_key()))
            .await?;
        let account = |id: Address| async move {
            let key = self
                .call::<f::StateAccountKey>((Addr(id), head_key()))
                .await?
                .0;
            Ok::<_, ChainError>(Account { id, key })
        };
        let mut control = Vec::new();
        for c in &mi.control_addresses {
            control.push(account(*c).await?);
        }
        Ok(MinerAddresses {
            owner: account(mi.owner).await?,
            worker: account(mi.worker).await?,
            control,
        })
    }

    /// The head, asked of the node now (not counted: the head watch counts its own).
    async fn head_now(&self) -> Result<ChainHead, ChainError> {
        let ts = self.rpc.request::<f::ChainHead>(()).await?;
        Ok(self.to_head(ts))
    }

    fn to_head(&self, ts: lotus::chain::TipSet) -> ChainHead {
        ChainHead {
            cids: ts.cids.iter().map(|c| c.to_string()).collect(),
            height: ts.height,
            timestamp_ms: ts.timestamp() * 1000,
            block_delay_ms: self.block_delay_ms,
        }
    }

    /// Another client of the same node and miner, counting its own calls (one for each part
    /// of the sealer, so that each part's calls can be told apart).
    pub fn fork(&self) -> FullNode {
        FullNode {
            calls: Default::default(),
            ..self.clone()
        }
    }

    pub fn url(&self) -> &str {
        self.rpc.url()
    }

    /// Calls `M`; while no connection can be made (the request never reached the node), tries
    /// again for up to the client's patience, saying so once.
    async fn call<M: Method>(&self, p: M::Params) -> Result<M::Result, ChainError>
    where
        M::Params: Clone,
    {
        let started = std::time::Instant::now();
        let mut said = false;
        loop {
            *self
                .calls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(M::NAME)
                .or_default() += 1;
            match self.rpc.request::<M>(p.clone()).await {
                Err(ClientError::NotConnected { url, reason })
                    if started.elapsed() < self.patience =>
                {
                    if !said {
                        tracing::warn!(
                            "chain node at {url} unreachable ({reason}): waiting for it (up to {:?})",
                            self.patience
                        );
                        said = true;
                    }
                    tokio::time::sleep(self.poll.max(Duration::from_millis(200))).await;
                }
                r => {
                    if said && r.is_ok() {
                        tracing::info!("chain node reached again after {:?}", started.elapsed());
                    }
                    return Ok(r?);
                }
            }
        }
    }

    fn addr(&self) -> Addr {
        Addr(self.miner)
    }

    fn check_actor(&self, actor: u64) -> Result<(), ChainError> {
        if actor == self.actor {
            Ok(())
        } else {
            Err(ChainError::Other(format!(
                "this chain client is for {}, not t0{actor}",
                self.miner
            )))
        }
    }

    /// A VRF: the worker's BLS signature of `input`, by the node's wallet (lotus-miner's
    /// ComputeVRF through WalletSign).
    async fn vrf(&self, worker: &Address, input: [u8; 32]) -> Result<Vec<u8>, ChainError> {
        let sig = self
            .call::<f::WalletSign>((Addr(*worker), Bytes(input.to_vec())))
            .await?;
        match sig.kind {
            2 => Ok(sig.data),
            _ => Err(bad(
                "WalletSign",
                format!("the worker {worker} signed with a non-BLS key: no VRF"),
            )),
        }
    }

    async fn base_info(
        &self,
        epoch: i64,
    ) -> Result<Option<lotus::chain::MiningBaseInfo>, ChainError> {
        self.call::<f::MinerGetBaseInfo>((self.addr(), epoch, head_key()))
            .await
    }
}

#[async_trait]
impl Chain for FullNode {
    fn mode(&self) -> &'static str {
        self.mode
    }

    fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn head(&self) -> Result<ChainHead, ChainError> {
        let ts = self.call::<f::ChainHead>(()).await?;
        Ok(self.to_head(ts))
    }

    fn seen_epoch(&self) -> Option<i64> {
        self.heads.borrow().as_ref().map(|h| h.height)
    }

    async fn wait_epoch(&self, epoch: i64) -> Result<ChainHead, ChainError> {
        let mut rx = self.heads.clone();
        let seen = rx
            .wait_for(|h| h.as_ref().is_some_and(|h| h.height >= epoch))
            .await
            .map_err(|_| ChainError::Other("the head watch stopped".into()))?;
        Ok(seen.clone().expect("waited for a head"))
    }

    async fn randomness(&self, kind: RandKind, epoch: i64) -> Result<Randomness, ChainError> {
        // An epoch the head watch has seen needs no call to know it is not in the future.
        let seen = self.heads.borrow().as_ref().map_or(-1, |h| h.height);
        if epoch > seen {
            let head = self.head().await?.height;
            if epoch > head {
                return Err(ChainError::Future { epoch, head });
            }
        }
        let entropy = if kind.miner_entropy() {
            lotus::rand::miner_entropy(&self.miner)
        } else {
            Vec::new()
        };
        let p = (kind.tag() as i64, epoch, Bytes(entropy), head_key());
        let r = if kind.from_beacon() {
            self.call::<f::StateGetRandomnessFromBeacon>(p).await?
        } else {
            self.call::<f::StateGetRandomnessFromTickets>(p).await?
        };
        r.0.try_into()
            .map_err(|v: Vec<u8>| bad("randomness", format!("{} bytes, not 32", v.len())))
    }

    fn precommit_challenge_delay(&self) -> i64 {
        self.challenge_delay
    }

    fn block_delay_ms(&self) -> u64 {
        self.block_delay_ms
    }

    fn max_ticket_age(&self) -> i64 {
        self.max_ticket_age
    }

    fn ticket_lookback(&self) -> i64 {
        self.ticket_lookback
    }

    fn max_prove_commit_duration(&self) -> i64 {
        self.max_prove_commit_duration
    }

    async fn base_fee(&self) -> Result<Option<crate::TokenAmount>, ChainError> {
        let ts = self.call::<f::ChainHead>(()).await?;
        Ok(ts.blocks.first().map(|b| b.parent_base_fee.clone()))
    }

    async fn ensure_miner(&self, actor: u64, size: SectorSize) -> Result<(), ChainError> {
        self.check_actor(actor)?;
        let mi = self
            .call::<f::StateMinerInfo>((self.addr(), head_key()))
            .await?;
        if mi.sector_size == size.bytes() {
            return Ok(());
        }
        Err(ChainError::SectorSizeMismatch {
            miner: self.miner.to_string(),
            on_chain: SectorSize::from_bytes(mi.sector_size)
                .ok_or_else(|| bad("sector size", mi.sector_size))?,
            asked: size,
        })
    }

    async fn send(
        &self,
        from: Address,
        call: Call,
        value: TokenAmount,
        max_fee: TokenAmount,
    ) -> Result<String, ChainError> {
        let m = call.message(from, self.miner, value);
        let spec = lotus::json::SendSpec::max_fee(max_fee);
        let pushed = self
            .call::<f::MpoolPushMessage>((MessageJson::from(&m), Some(spec)))
            .await
            .and_then(|j| Ok(lotus::SignedMessage::try_from(j)?));
        let mut cache = self.pool.lock().await;
        match pushed {
            Ok(signed) => {
                cache.sent(&signed);
                Ok(signed.cid().to_string())
            }
            // It may have reached the pool all the same (an answer lost): looked up afresh.
            Err(e) => {
                cache.forget();
                Err(e)
            }
        }
    }

    async fn addresses(&self) -> Result<MinerAddresses, ChainError> {
        let epoch = self.seen_epoch();
        if let Some((at, a)) = self
            .addresses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            if Some(*at) == epoch {
                return Ok(a.clone());
            }
        }
        let a = self.addresses_now().await?;
        if let Some(e) = epoch {
            *self.addresses.lock().unwrap_or_else(|e| e.into_inner()) = Some((e, a.clone()));
        }
        Ok(a)
    }

    async fn wallet_has(&self, key: &Address) -> Result<bool, ChainError> {
        self.call::<f::WalletHas>((Addr(*key),)).await
    }

    fn network(&self) -> String {
        self.network.clone()
    }

    async fn balance(&self, of: &Address) -> Result<TokenAmount, ChainError> {
        Ok(self.call::<f::WalletBalance>((Addr(*of),)).await?.0)
    }

    async fn precommit_deposit(
        &self,
        pc: &crate::calls::PreCommitSpec,
    ) -> Result<TokenAmount, ChainError> {
        let p = (self.addr(), pc.info(), head_key());
        Ok(self
            .call::<f::StateMinerPreCommitDepositForPower>(p)
            .await?
            .0)
    }

    async fn initial_pledge(&self, duration: i64) -> Result<TokenAmount, ChainError> {
        let p = (duration, self.sector_size, 0, head_key());
        Ok(self.call::<f::StateMinerInitialPledgeForSector>(p).await?.0)
    }

    async fn available_balance(&self) -> Result<TokenAmount, ChainError> {
        let p = (self.addr(), head_key());
        Ok(self.call::<f::StateMinerAvailableBalance>(p).await?.0)
    }

    async fn funds(&self) -> Result<MinerFunds, ChainError> {
        let st = self
            .call::<f::StateReadState>((self.addr(), head_key()))
            .await?;
        let field = |name: &'static str| {
            st.amount(name)
                .ok_or_else(|| bad("miner state", format!("no amount {name}: {}", st.state)))
        };
        let available = self.available_balance().await?;
        Ok(MinerFunds {
            balance: st.balance.clone(),
            precommit_deposits: field("PreCommitDeposits")?,
            initial_pledge: field("InitialPledge")?,
            vesting: field("LockedFunds")?,
            available,
        })
    }

    async fn pending(
        &self,
        method: lotus::miner::Method,
        sector: u64,
    ) -> Result<Option<String>, ChainError> {
        // The node's head now, not the watch's (a poll behind): a message a reorg put back in
        // the pool must be seen by a sector that just found it gone from the chain.
        let head = self.head_now().await?;
        // Held while a snapshot is taken: the sectors asking meanwhile share it.
        let mut cache = self.pool.lock().await;
        if let Some(idx) = cache.fresh(&head.cids) {
            return Ok(idx.find(method, sector));
        }
        let pool = self.call::<f::MpoolPending>((head_key(),)).await?;
        let ours = self.addresses().await?;
        // Ours, so secp256k1 or BLS messages; anything else is not what is looked for.
        let signed = pool
            .0
            .into_iter()
            .filter_map(|j| lotus::SignedMessage::try_from(j).ok());
        let idx = crate::pool::PoolIndex::new(signed, &ours, &self.miner);
        let found = idx.find(method, sector);
        cache.keep(head.cids, idx);
        Ok(found)
    }

    async fn receipt(&self, id: &str) -> Result<Option<Receipt>, ChainError> {
        let cid = cid_of(id)?;
        let l = self
            .call::<f::StateSearchMsg>((head_key(), CidJson(cid), -1, true))
            .await?;
        Ok(l.map(|l| Receipt {
            replaced_by: (l.message != cid).then(|| l.message.to_string()),
            epoch: l.height,
            exit_code: l.receipt.exit_code as i64,
            error: if l.receipt.exit_code == 0 {
                String::new()
            } else {
                format!("exit code {}", lotus::exit_code_text(l.receipt.exit_code))
            },
        }))
    }

    async fn precommit(&self, sector: &SectorRef) -> Result<Option<PreCommitOnChain>, ChainError> {
        let Some(pc) = self
            .call::<f::StateSectorPreCommitInfo>((self.addr(), sector.number, head_key()))
            .await?
        else {
            return Ok(None);
        };
        let comm_d = pc
            .info
            .unsealed_cid
            .map(|c| lotus::fvm_shared::commcid::cid_to_data_commitment_v1(&c))
            .transpose()
            .map_err(|e| bad("unsealed CID", e))?;
        Ok(Some(PreCommitOnChain {
            sector: SectorRef::new(self.actor, sector.number, seal_proof(pc.info.seal_proof)?),
            comm_r: comm_r(&pc.info.sealed_cid)?,
            comm_d,
            ticket_epoch: pc.info.seal_rand_epoch,
            precommit_epoch: pc.pre_commit_epoch,
            expiration: pc.info.expiration,
            deposit: pc.pre_commit_deposit,
        }))
    }

    async fn active_sector(&self, sector: &SectorRef) -> Result<Option<ActiveSector>, ChainError> {
        let Some(s) = self
            .call::<f::StateSectorGetInfo>((self.addr(), sector.number, head_key()))
            .await?
        else {
            return Ok(None);
        };
        let at = self
            .call::<f::StateSectorPartition>((self.addr(), sector.number, head_key()))
            .await?;
        Ok(Some(ActiveSector {
            sector: SectorRef::new(self.actor, s.sector_number, seal_proof(s.seal_proof)?),
            comm_r: comm_r(&s.sealed_cid)?,
            activation: s.activation,
            expiration: s.expiration,
            deadline: at.deadline,
            partition: at.partition as usize,
            initial_pledge: s.initial_pledge,
        }))
    }

    async fn active_sectors(&self, sectors: &[SectorRef]) -> Result<Vec<ActiveSector>, ChainError> {
        if sectors.is_empty() {
            return Ok(Vec::new());
        }
        let numbers = lotus::miner::sectors_bitfield(sectors.iter().map(|s| s.number));
        let found = self
            .call::<f::StateMinerSectors>((
                self.addr(),
                Some(lotus::json::wire::Bits(numbers)),
                head_key(),
            ))
            .await?;
        found
            .0
            .into_iter()
            .map(|s| {
                Ok(ActiveSector {
                    sector: SectorRef::new(self.actor, s.sector_number, seal_proof(s.seal_proof)?),
                    comm_r: comm_r(&s.sealed_cid)?,
                    activation: s.activation,
                    expiration: s.expiration,
                    deadline: 0,
                    partition: 0,
                    initial_pledge: s.initial_pledge,
                })
            })
            .collect()
    }

    async fn power(&self, actor: u64) -> Result<MinerPower, ChainError> {
        self.check_actor(actor)?;
        let p = self
            .call::<f::StateMinerPower>((self.addr(), head_key()))
            .await?;
        let n = |b: &lotus::fvm_shared::bigint::BigInt| -> Result<u64, ChainError> {
            u64::try_from(b).map_err(|_| bad("power", b))
        };
        let raw = n(&p.miner_power.raw_byte_power)?;
        Ok(MinerPower {
            raw_bytes: raw,
            sectors: raw / self.sector_size.max(1),
            total_raw_bytes: n(&p.total_power.raw_byte_power)?,
        })
    }

    fn wpost_window(&self) -> i64 {
        self.window
    }

    async fn proving_deadline(&self, actor: u64) -> Result<DeadlineInfo, ChainError> {
        self.check_actor(actor)?;
        let d = self
            .call::<f::StateMinerProvingDeadline>((self.addr(), head_key()))
            .await?;
        Ok(DeadlineInfo {
            period_start: d.period_start,
            index: d.index,
            open: d.open,
            close: d.close,
            challenge: d.challenge,
        })
    }

    async fn deadline(&self, actor: u64, index: u64) -> Result<DeadlineState, ChainError> {
        self.check_actor(actor)?;
        let all = self
            .call::<f::StateMinerDeadlines>((self.addr(), head_key()))
            .await?;
        self.deadline_state(index, all.0.get(index as usize)).await
    }

    async fn deadlines(&self, actor: u64) -> Result<Vec<DeadlineState>, ChainError> {
        self.check_actor(actor)?;
        let all = self
            .call::<f::StateMinerDeadlines>((self.addr(), head_key()))
            .await?;
        let mut out = Vec::new();
        for (i, d) in all.0.iter().enumerate().take(DEADLINES as usize) {
            out.push(self.deadline_state(i as u64, Some(d)).await?);
        }
        Ok(out)
    }

    async fn election(&self, actor: u64, epoch: i64) -> Result<Option<Election>, ChainError> {
        self.check_actor(actor)?;
        let Some(b) = self.base_info(epoch).await? else {
            return Ok(None);
        };
        if !b.eligible_for_mining {
            return Ok(None);
        }
        // The round's randomness, drawn from its beacon entry as lotus-miner draws it (the
        // round may be the one after the head: no state call can give it yet).
        let beacon = b
            .beacon_entries
            .last()
            .unwrap_or(&b.prev_beacon_entry)
            .data
            .clone();
        let draw = |kind, at| crate::election::from_beacon(&beacon, kind, at, &self.miner);
        let proof = self
            .vrf(&b.worker_key, draw(RandKind::Election, epoch))
            .await?;
        let n = |x: &lotus::fvm_shared::bigint::BigInt| u128::try_from(x).unwrap_or(u128::MAX);
        let wins = crate::election::win_count(&proof, n(&b.miner_power), n(&b.network_power));
        if wins == 0 {
            return Ok(None);
        }
        // The block's ticket: drawn for the round before (lotus's TicketRandomnessLookback, 1).
        let ticket = self
            .vrf(&b.worker_key, draw(RandKind::TicketProduction, epoch - 1))
            .await?;
        Ok(Some(Election {
            vrf: proof,
            win_count: wins,
            post_randomness: draw(RandKind::WinningPoSt, epoch),
            ticket,
        }))
    }

    async fn winning_sectors(&self, actor: u64, epoch: i64) -> Result<Vec<PoStTarget>, ChainError> {
        self.check_actor(actor)?;
        let Some(b) = self.base_info(epoch).await? else {
            return Ok(Vec::new());
        };
        b.sectors
            .iter()
            .map(|s| {
                Ok(PoStTarget {
                    sector: SectorRef::new(self.actor, s.sector_number, seal_proof(s.seal_proof)?),
                    comm_r: comm_r(&s.sealed_cid)?,
                })
            })
            .collect()
    }

    async fn submit_block(
        &self,
        actor: u64,
        epoch: i64,
        election: &Election,
        proof: Vec<u8>,
    ) -> Result<(), ChainError> {
        self.check_actor(actor)?;
        let parent = self
            .call::<f::ChainGetTipSetByHeight>((epoch - 1, head_key()))
            .await?;
        let base = self
            .base_info(epoch)
            .await?
            .ok_or_else(|| bad("MinerGetBaseInfo", format!("no base for epoch {epoch}")))?;
        let size = SectorSize::from_bytes(self.sector_size)
            .ok_or_else(|| bad("sector size", self.sector_size))?;
        // The pool's best messages for a block on the parent (the ticket's quality: the higher
        // its hash, the lower).
        let h = lotus::rand::digest_of(&election.vrf);
        let quality =
            1.0 - u64::from_be_bytes(h[..8].try_into().expect("8 bytes")) as f64 / u64::MAX as f64;
        let messages = self
            .call::<f::MpoolSelect>((TipSetKey(parent.cids.clone()), quality))
            .await?;
        let template = BlockTemplate {
            miner: self.miner,
            parents: parent.cids.clone(),
            ticket: Some(Ticket {
                vrf_proof: election.ticket.clone(),
            }),
            eproof: Some(ElectionProof {
                win_count: election.win_count,
                vrf_proof: election.vrf.clone(),
            }),
            beacon_values: base.beacon_entries,
            messages: messages.0,
            epoch,
            timestamp: parent.timestamp() + self.block_delay_ms.div_ceil(1000),
            winning_post_proof: vec![PoStProofJson {
                po_st_proof: RegisteredPoStProof::from(size.seal_proof().winning_post().number()),
                proof_bytes: proof,
            }],
        };
        let block = self.call::<f::MinerCreateBlock>((template,)).await?;
        self.call::<f::SyncSubmitBlock>((block,)).await?;
        Ok(())
    }

    async fn tally(&self, actor: u64) -> Result<Option<MinerTally>, ChainError> {
        self.check_actor(actor)?;
        match self.call::<f::DevnetMinerTally>((self.addr(),)).await {
            Ok(t) => Ok(Some(t)),
            Err(ChainError::Node(ClientError::Rpc(e))) if e.code == api::rpc::METHOD_NOT_FOUND => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

impl FullNode {
    /// Deadline `index`: its partitions, and those proven in its opening as `d` (its
    /// `StateMinerDeadlines` entry) says.
    async fn deadline_state(
        &self,
        index: u64,
        d: Option<&lotus::chain::Deadline>,
    ) -> Result<DeadlineState, ChainError> {
        Ok(DeadlineState {
            partitions: self.partitions(index).await?,
            proven: d
                .map(|d| d.post_submissions.iter().map(|p| p as usize).collect())
                .unwrap_or_default(),
        })
    }

    async fn partitions(&self, index: u64) -> Result<Vec<Partition>, ChainError> {
        let ps = self
            .call::<f::StateMinerPartitions>((self.addr(), index, head_key()))
            .await?;
        let set = |b: &lotus::BitField| b.iter().collect::<BTreeSet<u64>>();
        Ok(ps
            .0
            .iter()
            .map(|p| Partition {
                sectors: set(&p.all_sectors),
                faults: set(&p.faulty_sectors),
                recoveries: set(&p.recovering_sectors),
            })
            .collect())
    }
}
