//! The devnet as a Lotus FullNode: the methods of [`api::fullnode`] (and nothing else of the
//! FullNode API) served in Lotus JSON on `/rpc/v1` (and `/rpc/v0`), with the devnet's own JWT
//! secret and lotus's permissions: `MpoolPushMessage` needs `sign`. The devnet answers about
//! its head: a tipset key given with a state call is not looked up.

use std::net::SocketAddr;
use std::sync::Arc;

use api::contract::Handlers;
use api::fullnode as f;
use api::server::RpcServer;
use api::{ApiInfo, RpcError};
use lotus::chain::{Deadline, MiningBaseInfo, NetworkParams, SectorInfo, SectorLocation};
use lotus::fvm_shared::bigint::BigInt;
use lotus::json::wire::{Addr, Atto, Bytes, CidJson, List};
use lotus::json::{MessageJson, SignatureJson, SignedMessageJson};
use lotus::miner::{sealed_cid, sectors_bitfield};
use lotus::state::{
    ActorState, Claim, DeadlineInfo, MinerInfo, MinerPower, MsgLookup, Partition, PreCommitInfo,
    Receipt, SectorOnChainInfo, SectorPreCommitOnChainInfo, Version, FULL_API_VERSION,
};
use lotus::{Cid, RegisteredPoStProof, RegisteredSealProof, TokenAmount};
use serde_json::json;
use stores::{Permission, Secret};

use super::proving::partition_sectors;
use super::{funds, id_address, Devnet, MinerState};
use crate::{next_opening, ActiveSector, ChainError, DEADLINES};

/// The network version the devnet's actors are (builtin-actors v18).
pub const NETWORK_VERSION: u64 = 28;
const SECRET: &str = "chain/jwt";

fn app(e: impl std::fmt::Display) -> RpcError {
    RpcError::app(e)
}

/// The pool's messages.
fn pool(d: &Devnet) -> Result<List<SignedMessageJson>, RpcError> {
    let pending = d.pending().map_err(app)?;
    Ok(List(pending.iter().map(SignedMessageJson::from).collect()))
}

fn actor_of(a: &Addr) -> Result<u64, RpcError> {
    a.0.id().map_err(|_| {
        app(format!(
            "{}: the devnet's miners have ID addresses (t0…)",
            a.0
        ))
    })
}

/// A proven sector in Lotus's terms.
fn on_chain_info(s: &ActiveSector) -> SectorOnChainInfo {
    SectorOnChainInfo {
        sector_number: s.sector.number,
        seal_proof: RegisteredSealProof::from(s.sector.proof as i64),
        sealed_cid: sealed_cid(&s.comm_r),
        activation: s.activation,
        expiration: s.expiration,
        deal_weight: BigInt::from(0),
        verified_deal_weight: BigInt::from(0),
        initial_pledge: s.initial_pledge.clone(),
        expected_day_reward: TokenAmount::default(),
        expected_storage_pledge: TokenAmount::default(),
        power_base_epoch: s.activation,
        replaced_day_reward: TokenAmount::default(),
        sector_key_cid: None,
        flags: 0,
        daily_fee: TokenAmount::default(),
    }
}

fn miner_of(d: &Devnet, a: &Addr) -> Result<(u64, Arc<MinerState>), RpcError> {
    let actor = actor_of(a)?;
    match d.miner_shared(actor).map_err(app)? {
        Some(m) => Ok((actor, m)),
        None => Err(app(format!("actor not found: {}", a.0))),
    }
}

/// Where `cid` landed; with `replaced`, where the message that replaced it landed (its CID in
/// the answer), as Lotus's allowReplaced.
fn lookup(d: &Devnet, cid: Cid, replaced: bool) -> Result<Option<MsgLookup>, RpcError> {
    let landed = match d.replacement(&cid).map_err(app)? {
        Some(new) if replaced => new,
        _ => cid,
    };
    let Some((_, Some(r))) = d.message(&landed).map_err(app)? else {
        return Ok(None);
    };
    Ok(Some(MsgLookup {
        message: landed,
        receipt: Receipt {
            exit_code: r.exit_code,
            r#return: r.ret.into(),
            gas_used: 0,
            events_root: None,
        },
        return_dec: serde_json::Value::Null,
        tipset: vec![d.block_cid(r.epoch)],
        height: r.epoch,
    }))
}

fn miner_info(m: &MinerState) -> MinerInfo {
    let worker = m.worker_id();
    let proof = m.sector_size.seal_proof();
    let mut other = serde_json::Map::new();
    for (k, v) in [
        ("NewWorker", json!("<empty>")),
        ("WorkerChangeEpoch", json!(-1)),
        ("PendingOwnerAddress", json!(null)),
        ("Beneficiary", json!(worker.to_string())),
        (
            "BeneficiaryTerm",
            json!({"Quota": "0", "UsedQuota": "0", "Expiration": 0}),
        ),
        ("PendingBeneficiaryTerm", json!(null)),
        ("ConsensusFaultElapsed", json!(-1)),
    ] {
        other.insert(k.to_string(), v);
    }
    MinerInfo {
        owner: m.owner(),
        worker,
        control_addresses: m.control.iter().map(|c| id_address(*c)).collect(),
        peer_id: None,
        multiaddrs: None,
        window_po_st_proof_type: RegisteredPoStProof::from(proof.window_post().number()),
        sector_size: m.sector_size.bytes(),
        window_po_st_partition_sectors: partition_sectors(m.sector_size) as u64,
        other,
    }
}

fn claim(raw: u64) -> Claim {
    Claim {
        raw_byte_power: BigInt::from(raw),
        quality_adj_power: BigInt::from(raw),
    }
}

fn deadline_info(d: &Devnet) -> Result<DeadlineInfo, ChainError> {
    let head = d.head()?.height;
    let w = d.cfg.window;
    let i = crate::deadline_at(head, w);
    Ok(DeadlineInfo {
        current_epoch: head,
        period_start: i.period_start,
        index: i.index,
        open: i.open,
        close: i.close,
        challenge: i.challenge,
        fault_cutoff: i.open - w,
        wpost_period_deadlines: DEADLINES,
        wpost_proving_period: w * DEADLINES as i64,
        wpost_challenge_window: w,
        wpost_challenge_lookback: i.open - i.challenge,
        fault_declaration_cutoff: w,
    })
}

/// The devnet's stand-in for an actor's code CID: the CID of its name.
fn code_cid(name: &str) -> Cid {
    lotus::cbor_cid(&format!("sealer-devnet/{name}")).expect("a string encodes")
}

/// `StateReadState`: a miner's balance and the amounts of its state lotus-miner reads, or an
/// account's balance and key address.
fn read_state(d: &Devnet, a: &lotus::Address) -> Result<ActorState, RpcError> {
    let token = |t: &TokenAmount| t.atto().to_string();
    if let Some(m) = a.id().ok().and_then(|id| d.miner(id).ok().flatten()) {
        return Ok(ActorState {
            balance: m.balance.clone(),
            code: code_cid("storageminer"),
            state: json!({
                "PreCommitDeposits": token(&m.precommit_deposits),
                "LockedFunds": "0",
                "InitialPledge": token(&m.initial_pledge),
                "FeeDebt": "0",
            }),
        });
    }
    let key = d.account_key(a).map_err(app)?;
    Ok(ActorState {
        balance: d.balance(&key).map_err(app)?,
        code: code_cid("account"),
        state: json!({ "Address": key.to_string() }),
    })
}

fn handlers() -> Handlers<Arc<Devnet>> {
    Handlers::<Arc<Devnet>>::default()
        .on::<f::Version0, _, _>(|d, ()| async move {
            Ok(Version {
                version: format!("{}+sealer-devnet", env!("CARGO_PKG_VERSION")),
                api_version: FULL_API_VERSION,
                block_delay: d.cfg.block_delay.as_secs().max(1),
                agent: "sealer-devnet".into(),
            })
        })
        .on::<f::ChainHead, _, _>(|d, ()| async move {
            let h = d.head().map_err(app)?.height;
            d.tipset(h).map_err(app)
        })
        .on::<f::ChainGetTipSetByHeight, _, _>(|d, (h, _)| async move { d.tipset(h).map_err(app) })
        .on::<f::ChainGetMessage, _, _>(|d, (cid,)| async move {
            match d.message(&cid.0).map_err(app)? {
                Some((m, _)) => Ok(MessageJson::from(&m.message)),
                None => Err(app(format!("message {} not found", cid.0))),
            }
        })
        .on::<f::StateGetRandomnessFromTickets, _, _>(|d, (tag, epoch, entropy, _)| async move {
            d.randomness(tag, false, epoch, &entropy.0)
                .map(|r| Bytes(r.to_vec()))
                .map_err(app)
        })
        .on::<f::StateGetRandomnessFromBeacon, _, _>(|d, (tag, epoch, entropy, _)| async move {
            d.randomness(tag, true, epoch, &entropy.0)
                .map(|r| Bytes(r.to_vec()))
                .map_err(app)
        })
        .on::<f::StateNetworkVersion, _, _>(|_, _| async { Ok(NETWORK_VERSION) })
        .on::<f::StateGetNetworkParams, _, _>(|d, ()| async move {
            let ms = d.cfg.block_delay.as_millis() as u64;
            let mut other = serde_json::Map::new();
            // Not a Lotus field: the devnet's epochs can be shorter than a second.
            other.insert("BlockDelayMillis".into(), json!(ms));
            other.insert(
                "MaxPreCommitRandomnessLookback".into(),
                json!(d.cfg.max_ticket_age),
            );
            other.insert(
                "SealRandomnessLookback".into(),
                json!(d.cfg.ticket_lookback),
            );
            other.insert(
                "MaxProveCommitDuration".into(),
                json!(d.cfg.max_prove_commit_duration),
            );
            Ok(NetworkParams {
                network_name: "sealer-devnet".into(),
                block_delay_secs: ms.div_ceil(1000),
                consensus_miner_min_power: BigInt::from(0),
                supported_proof_types: Some(
                    resources::SectorSize::ALL
                        .iter()
                        .map(|s| RegisteredSealProof::from(s.seal_proof() as i64))
                        .collect(),
                ),
                pre_commit_challenge_delay: d.cfg.challenge_delay,
                other,
            })
        })
        .on::<f::StateMinerInfo, _, _>(
            |d, (a, _)| async move { Ok(miner_info(&miner_of(&d, &a)?.1)) },
        )
        .on::<f::StateMinerPower, _, _>(|d, (a, _)| async move {
            let (_, m) = miner_of(&d, &a)?;
            Ok(MinerPower {
                miner_power: claim(m.power.raw_bytes),
                total_power: claim(d.network_power().map_err(app)?),
                has_min_power: m.power.raw_bytes > 0,
            })
        })
        .on::<f::StateMinerProvingDeadline, _, _>(|d, (a, _)| async move {
            miner_of(&d, &a)?;
            deadline_info(&d).map_err(app)
        })
        .on::<f::StateMinerDeadlines, _, _>(|d, (a, _)| async move {
            let (_, m) = miner_of(&d, &a)?;
            let head = d.head().map_err(app)?.height;
            Ok(List(
                (0..DEADLINES)
                    .map(|i| {
                        let proven = m.proving.as_ref().and_then(|p| {
                            let dl = &p.deadlines[i as usize];
                            let open = next_opening(i, head, d.cfg.window).open;
                            (dl.proven_open == open)
                                .then(|| sectors_bitfield(dl.proven.iter().map(|p| *p as u64)))
                        });
                        Deadline {
                            post_submissions: proven.unwrap_or_default(),
                            disputable_proof_count: 0,
                            daily_fee: TokenAmount::default(),
                        }
                    })
                    .collect(),
            ))
        })
        .on::<f::StateMinerPartitions, _, _>(|d, (a, index, _)| async move {
            let (_, m) = miner_of(&d, &a)?;
            if index >= DEADLINES {
                return Err(app(format!(
                    "deadline {index} out of range (0..{DEADLINES})"
                )));
            }
            let Some(p) = &m.proving else {
                return Ok(List::default());
            };
            Ok(List(
                p.deadlines[index as usize]
                    .partitions
                    .iter()
                    .map(|p| {
                        let all = sectors_bitfield(p.sectors.iter().copied());
                        let faulty = sectors_bitfield(p.faults.iter().copied());
                        Partition {
                            live_sectors: all.clone(),
                            active_sectors: &all - &faulty,
                            all_sectors: all,
                            faulty_sectors: faulty,
                            recovering_sectors: sectors_bitfield(p.recoveries.iter().copied()),
                        }
                    })
                    .collect(),
            ))
        })
        .on::<f::StateSectorPreCommitInfo, _, _>(|d, (a, n, _)| async move {
            let (actor, _) = miner_of(&d, &a)?;
            Ok(d.precommit(actor, n)
                .map_err(app)?
                .map(|pc| SectorPreCommitOnChainInfo {
                    info: PreCommitInfo {
                        seal_proof: RegisteredSealProof::from(pc.sector.proof as i64),
                        sector_number: n,
                        sealed_cid: sealed_cid(&pc.comm_r),
                        seal_rand_epoch: pc.ticket_epoch,
                        deal_ids: None,
                        expiration: pc.expiration,
                        unsealed_cid: pc.comm_d.map(|c| {
                            lotus::fvm_shared::commcid::data_commitment_v1_to_cid(&c)
                                .expect("a data commitment")
                        }),
                    },
                    pre_commit_deposit: pc.deposit,
                    pre_commit_epoch: pc.precommit_epoch,
                }))
        })
        .on::<f::StateSectorGetInfo, _, _>(|d, (a, n, _)| async move {
            let (actor, _) = miner_of(&d, &a)?;
            Ok(d.sector(actor, n).map_err(app)?.map(|s| on_chain_info(&s)))
        })
        .on::<f::StateMinerSectors, _, _>(|d, (a, numbers, _)| async move {
            let (actor, _) = miner_of(&d, &a)?;
            let found = match numbers {
                None => d.sectors(actor).map_err(app)?,
                Some(bf) => {
                    let mut out = Vec::new();
                    for n in bf.0.iter() {
                        out.extend(d.sector(actor, n).map_err(app)?);
                    }
                    out
                }
            };
            Ok(List(found.iter().map(on_chain_info).collect()))
        })
        .on::<f::StateSectorPartition, _, _>(|d, (a, n, _)| async move {
            let (actor, _) = miner_of(&d, &a)?;
            match d.sector(actor, n).map_err(app)? {
                Some(s) => Ok(SectorLocation {
                    deadline: s.deadline,
                    partition: s.partition as u64,
                }),
                None => Err(app(format!(
                    "sector {n} not found in any partition of {}",
                    a.0
                ))),
            }
        })
        .on::<f::StateMinerPreCommitDepositForPower, _, _>(|d, (a, _, _)| async move {
            let (_, m) = miner_of(&d, &a)?;
            Ok(Atto(funds::precommit_deposit(m.sector_size)))
        })
        .on::<f::StateMinerInitialPledgeForSector, _, _>(|_, (_, size, _, _)| async move {
            let size = resources::SectorSize::from_bytes(size)
                .ok_or_else(|| app(format!("{size} bytes is not a sector size")))?;
            Ok(Atto(funds::initial_pledge(size)))
        })
        .on::<f::StateMinerAvailableBalance, _, _>(|d, (a, _)| async move {
            Ok(Atto(miner_of(&d, &a)?.1.available()))
        })
        .on::<f::StateReadState, _, _>(|d, (a, _)| async move { read_state(&d, &a.0) })
        .on::<f::WalletBalance, _, _>(
            |d, (a,)| async move { d.balance(&a.0).map(Atto).map_err(app) },
        )
        .on::<f::WalletDefaultAddress, _, _>(
            |d, ()| async move { d.faucet().map(Addr).map_err(app) },
        )
        .on::<f::WalletNew, _, _>(
            |d, (kind,)| async move { d.wallet_new(&kind).map(Addr).map_err(app) },
        )
        .on::<f::WalletHas, _, _>(|d, (a,)| async move { d.has_key(&a.0).map_err(app) })
        .on::<f::WalletDelete, _, _>(|d, (a,)| async move { d.delete_key(&a.0).map_err(app) })
        .on::<f::AuthVerify, _, _>(|d, (token,)| async move {
            d.secret().map_err(app)?.verify(&token).map_err(app)
        })
        .on::<f::StateAccountKey, _, _>(|d, (a, _)| async move {
            d.account_key(&a.0).map(Addr).map_err(app)
        })
        .on::<f::MpoolPushMessage, _, _>(|d, (m, spec)| async move {
            let signed = d
                .push(m.into(), spec.map(|s| s.max_fee))
                .await
                .map_err(app)?;
            Ok(SignedMessageJson::from(&signed))
        })
        .on::<f::MpoolPending, _, _>(|d, _| async move { pool(&d) })
        .on::<f::StateSearchMsg, _, _>(|d, (_, cid, _, replaced)| async move {
            lookup(&d, cid.0, replaced)
        })
        .on::<f::StateWaitMsg, _, _>(|d, (cid, confidence, _, replaced)| async move {
            loop {
                if d.message(&cid.0).map_err(app)?.is_none() {
                    return Err(app(format!("message {} not found", cid.0)));
                }
                if let Some(l) = lookup(&d, cid.0, replaced)? {
                    let at = l
                        .height
                        .saturating_add(confidence.min(i64::MAX as u64) as i64);
                    if d.head().map_err(app)?.height >= at {
                        return Ok(l);
                    }
                    d.wait_epoch(at).await.map_err(app)?;
                } else {
                    let h = d.head().map_err(app)?.height;
                    d.wait_epoch(h + 1).await.map_err(app)?;
                }
            }
        })
        .on::<f::MinerGetBaseInfo, _, _>(|d, (a, epoch, _)| async move {
            let (actor, m) = miner_of(&d, &a)?;
            let (mine, total) = d.election_power(actor).map_err(app)?;
            let sectors = if mine > 0 {
                d.challenged(actor, &m, epoch).map_err(app)?
            } else {
                Vec::new()
            };
            Ok(Some(MiningBaseInfo {
                miner_power: BigInt::from(mine),
                network_power: BigInt::from(total),
                sectors: sectors
                    .iter()
                    .map(|s| SectorInfo {
                        seal_proof: RegisteredSealProof::from(s.sector.proof as i64),
                        sector_number: s.sector.number,
                        sealed_cid: sealed_cid(&s.comm_r),
                    })
                    .collect(),
                worker_key: m.worker(),
                sector_size: m.sector_size.bytes(),
                prev_beacon_entry: d.beacon(epoch - 1),
                beacon_entries: vec![d.beacon(epoch)],
                eligible_for_mining: mine > 0,
            }))
        })
        .on::<f::SyncSubmitBlock, _, _>(|d, (b,)| async move {
            d.submit_block(&b.header).await.map_err(app)
        })
        .on::<f::WalletSign, _, _>(|d, (a, data)| async move {
            let sig = d.sign_bytes(&a.0, &data.0).map_err(app)?;
            Ok(SignatureJson::from(&sig))
        })
        // The devnet applies its whole pool each epoch: a block takes it all.
        .on::<f::MpoolSelect, _, _>(|d, _| async move { pool(&d) })
        .on::<f::MinerCreateBlock, _, _>(|d, (t,)| async move { d.create_block(t).map_err(app) })
        .on::<f::DevnetRevert, _, _>(|d, (n, drop)| async move {
            let then = match drop {
                true => super::Reverted::Dropped,
                false => super::Reverted::BackToPool,
            };
            let landed = d.revert(n, then).await.map_err(app)?;
            Ok(List(landed.into_iter().map(CidJson).collect()))
        })
        .on::<f::DevnetMpoolReplace, _, _>(|d, (cid, fee_cap, premium)| async move {
            let m = d.replace(&cid.0, fee_cap.0, premium.0).await.map_err(app)?;
            Ok(CidJson(m.cid()))
        })
        .on::<f::DevnetMinerTally, _, _>(|d, (a,)| async move {
            let (_, m) = miner_of(&d, &a)?;
            Ok(f::MinerTally {
                proofs_accepted: m.proving.as_ref().map_or(0, |p| p.proofs_accepted),
                missed: m.proving.as_ref().map_or(0, |p| p.missed),
                blocks_won: m.wins,
            })
        })
}

/// A devnet node listening: where, and a token with every permission (`FULLNODE_API_INFO`).
/// Dropping it stops the node (its server, and its epochs if [`Devnet::run`] started them).
pub struct Served {
    pub addr: SocketAddr,
    pub info: ApiInfo,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Devnet {
    /// The node's JWT secret, made with the devnet and kept with its state.
    pub fn secret(&self) -> Result<Secret, ChainError> {
        if let Some(b) = self.db.get::<Vec<u8>>(SECRET)? {
            return Secret::from_bytes(b).map_err(|e| ChainError::Other(e.to_string()));
        }
        let s = Secret::generate();
        self.db.put(SECRET, &s.as_bytes().to_vec())?;
        Ok(s)
    }

    /// Serves the FullNode subset on `listener` until the task is dropped or aborted.
    pub fn serve(
        self: &Arc<Self>,
        listener: tokio::net::TcpListener,
    ) -> Result<Served, ChainError> {
        let secret = self.secret()?;
        let addr = listener
            .local_addr()
            .map_err(|e| ChainError::Other(e.to_string()))?;
        let token = secret.token(&Permission::ALL);
        let app = RpcServer::new(secret, handlers(), self.clone()).router(&[f::PATH, "/rpc/v0"]);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("devnet node: {e}");
            }
        });
        Ok(Served {
            addr,
            info: ApiInfo {
                token,
                addr: addr.to_string(),
            },
            tasks: vec![task],
        })
    }

    /// Serves the node on `listener` and mines an epoch every BlockDelay.
    pub fn run(self: &Arc<Self>, listener: tokio::net::TcpListener) -> Result<Served, ChainError> {
        let mut served = self.serve(listener)?;
        served.tasks.push(self.spawn());
        Ok(served)
    }
}
