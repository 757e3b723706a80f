//! The JSON-RPC 2.0 endpoint (`POST /rpc/v0`): JWT check (401 without a valid token, 403 without
//! the method's permission), framing errors as JSON-RPC errors, then one handler per method.

use std::sync::Arc;

use api::methods as m;
use api::rpc::{RpcError, METHOD_NOT_FOUND};
use api::{AttachParams, FoundFile, MinerInfo, SectorInfo, StorageRow};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use stores::{FileType, FileTypes, Permission};

use crate::chain::{hex, Chain};
use crate::daemon::Node;
use crate::fsm::Event;

pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/rpc/v0", post(handle))
        .with_state(node)
}

async fn handle(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let n = node.clone();
    api::server::handle(
        &node.secret,
        m::permission,
        &headers,
        &body,
        |method, params| async move { dispatch(&n, &method, params).await },
    )
    .await
}

/// Positional parameter `i` (lotus sends an array).
fn arg<T: DeserializeOwned>(method: &str, params: &Value, i: usize) -> Result<T, RpcError> {
    let v = match params {
        Value::Array(a) => a.get(i).cloned().unwrap_or(Value::Null),
        Value::Null => Value::Null,
        other if i == 0 => other.clone(),
        _ => Value::Null,
    };
    serde_json::from_value(v).map_err(|e| RpcError::params(method, format!("parameter {i}: {e}")))
}

fn to_value<T: serde::Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(RpcError::app)
}

async fn dispatch(node: &Arc<Node>, method: &str, params: Value) -> Result<Value, RpcError> {
    match method {
        m::VERSION => Ok(
            json!({"Version": concat!("sealer ", env!("CARGO_PKG_VERSION")), "APIVersion": "v0"}),
        ),
        m::ACTOR_ADDRESS => to_value(crate::config::actor_name(node.settings.actor)),
        m::ACTOR_SECTOR_SIZE => to_value(node.settings.sector_size.bytes()),
        m::MINER_INFO => to_value(miner_info(node).await?),
        m::PLEDGE_SECTOR => pledge(node).await,
        m::SECTORS_LIST => to_value(node.sectors.numbers()),
        m::SECTORS_STATUS => {
            let n: u64 = arg(method, &params, 0)?;
            let on_chain: bool = arg::<Option<bool>>(method, &params, 1)?.unwrap_or(false);
            to_value(sector_status(node, n, on_chain).await?)
        }
        m::SECTOR_REMOVE => {
            let n: u64 = arg(method, &params, 0)?;
            node.sectors
                .apply(n, Event::Remove, |_| {})
                .map_err(RpcError::app)?;
            node.pipeline.start(n);
            Ok(Value::Null)
        }
        m::WORKER_JOBS => to_value(node.manager.jobs()),
        m::WORKER_STATS => to_value(node.manager.worker_stats()),
        m::SEALING_ABORT => {
            let id: u64 = arg(method, &params, 0)?;
            node.manager.abort(id).map_err(RpcError::app)?;
            Ok(Value::Null)
        }
        m::SEALING_SCHED_DIAG => {
            // The scheduler's view, plus where each worker has room: a new sector (AP, PC1)
            // goes only to a worker with a seal path that can hold it.
            let mut v = node.manager.sched_diag();
            let size = node.settings.sector_size;
            let seal_need = FileTypes::ALL.overhead(size, stores::PathKind::Sealing);
            let rooms: Vec<Value> = node
                .manager
                .worker_names()
                .into_iter()
                .map(|(id, name)| {
                    let seal = node.view.has_room(id, stores::PathKind::Sealing, FileTypes::ALL, size);
                    let store = node.view.has_room(id, stores::PathKind::Storage, FileTypes::SEALED, size);
                    let mut r = json!({"Worker": id.to_string(), "Host": name, "RoomToSeal": seal, "RoomToStore": store});
                    if !seal {
                        r["Why"] = json!(format!(
                            "no healthy seal path with {seal_need} bytes available for a new {size} sector: gets no AP or PC1 of a new sector"
                        ));
                    }
                    r
                })
                .collect();
            v["Storage"] = Value::Array(rooms);
            Ok(v)
        }
        m::STORAGE_LIST => to_value(storage_list(node).await?),
        m::STORAGE_ATTACH => {
            let p: AttachParams = arg(method, &params, 0)?;
            let opts = p.options();
            let id = node
                .store
                .attach(std::path::Path::new(&p.path), &opts)
                .await
                .map_err(RpcError::app)?;
            node.view.set_paths(
                node.local_worker,
                node.store.paths().into_iter().map(|p| p.0).collect(),
            );
            to_value(id.0)
        }
        m::STORAGE_FIND_SECTOR => {
            let n: u64 = arg(method, &params, 0)?;
            to_value(find_sector(node, n).await?)
        }
        m::CHAIN_HEAD => to_value(node.chain.head().await.map_err(RpcError::app)?),
        m::STATE_MINER_POWER => to_value(
            node.chain
                .power(node.settings.actor)
                .await
                .map_err(RpcError::app)?,
        ),
        m::STATE_MINER_DEADLINES => Ok(deadlines(node).await?),
        m::CHECK_PROVABLE => {
            let d: u64 = arg(method, &params, 0)?;
            if d >= crate::proving::DEADLINES {
                return Err(RpcError::params(
                    method,
                    format!(
                        "deadline {d} does not exist (0 to {})",
                        crate::proving::DEADLINES - 1
                    ),
                ));
            }
            let sectors = node
                .wdpost
                .deadline_sectors(d)
                .await
                .map_err(RpcError::app)?;
            let bad = if sectors.is_empty() {
                Vec::new()
            } else {
                node.wdpost
                    .check(d, &sectors)
                    .await
                    .map_err(RpcError::app)?
            };
            Ok(serde_json::json!({
                "Deadline": d,
                "Sectors": sectors,
                "Unprovable": bad.iter().map(|(n, why)| serde_json::json!({"Sector": n, "Why": why})).collect::<Vec<_>>(),
            }))
        }
        m::AUTH_NEW => {
            let perms: Vec<Permission> = arg(method, &params, 0)?;
            to_value(node.secret.token(&perms))
        }
        m::AUTH_VERIFY => {
            let token: String = arg(method, &params, 0)?;
            to_value(node.secret.verify(&token).map_err(RpcError::app)?)
        }
        m::WORKER_CONNECT => {
            let url: String = arg(method, &params, 0)?;
            let token = node.secret.token_for(Permission::Admin);
            let (id, new) = node
                .workers
                .connect(&url, &token, &node.manager, &node.view)
                .await
                .map_err(RpcError::app)?;
            Ok(json!({"ID": id.to_string(), "New": new}))
        }
        m::WORKER_RETURN => {
            let call_id: String = arg(method, &params, 0)?;
            let sector: resources::SectorRef = arg(method, &params, 1)?;
            let task: resources::TaskType = arg(method, &params, 2)?;
            let result: api::tasks::TaskResult = arg(method, &params, 3)?;
            worker_return(node, &call_id, &sector, task, result)?;
            Ok(Value::Null)
        }
        m::WORKER_JWT_SECRET => to_value(hex(node.secret.as_bytes())),
        m if api::index::METHODS.contains(&m) => {
            api::index::serve(node.index.as_ref(), m, &params).await
        }
        m::SHUTDOWN => {
            node.shutdown.notify_one();
            Ok(Value::Null)
        }
        other => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("method '{other}' not found"),
        )),
    }
}

async fn pledge(node: &Arc<Node>) -> Result<Value, RpcError> {
    let s = &node.settings;
    node.chain
        .ensure_miner(s.actor, s.sector_size)
        .await
        .map_err(|e| {
            RpcError::app(format!(
                "{e}: check [Miner] SectorSize in {}",
                node.config_file
            ))
        })?;
    if !s.mock {
        let dir = proofs::params::cache_dir();
        let missing: Vec<String> =
            proofs::params::status(&dir, &proofs::params::official_manifest(), s.sector_size)
                .into_iter()
                .filter(|(_, present)| !present)
                .map(|(n, _)| n)
                .collect();
        if !missing.is_empty() {
            return Err(RpcError::app(format!(
                "no proof parameters for {} sectors in {} ({} of {} files missing, e.g. {}); run `sealer fetch-params {}`",
                s.sector_size,
                dir.display(),
                missing.len(),
                proofs::params::needed(&proofs::params::official_manifest(), s.sector_size).len(),
                missing[0],
                s.sector_size
            )));
        }
    }
    let max = node.cfg.sealing.max_sealing_sectors;
    let sector = node
        .sectors
        .pledge(s.actor, node.seal_proof(), max)
        .map_err(RpcError::app)?;
    node.pipeline.start(sector.sector.number);
    to_value(sector.sector.id())
}

async fn sector_status(node: &Arc<Node>, n: u64, on_chain: bool) -> Result<SectorInfo, RpcError> {
    let s = node
        .sectors
        .get(n)
        .ok_or_else(|| RpcError::app(format!("sector {n} not found")))?;
    let on_chain = if on_chain {
        let active = node
            .chain
            .active_sector(&s.sector)
            .await
            .map_err(RpcError::app)?;
        let pc = node
            .chain
            .precommit(&s.sector)
            .await
            .map_err(RpcError::app)?;
        Some(api::OnChainSector {
            activation: active.map(|a| a.activation),
            precommit_epoch: pc.map(|p| p.precommit_epoch).or(s.precommit_epoch),
        })
    } else {
        None
    };
    Ok(SectorInfo {
        sector_id: n,
        state: s.state,
        proof: s.sector.proof,
        comm_d: s.comms.map(|c| hex(&c.comm_d)),
        comm_r: s.comms.map(|c| hex(&c.comm_r)),
        ticket: s.ticket.map(|t| hex(&t.1)),
        ticket_epoch: s.ticket.map(|t| t.0),
        seed: s.seed.map(|t| hex(&t.1)),
        seed_epoch: s.seed.map(|t| t.0),
        precommit_msg: s.precommit_msg.clone(),
        commit_msg: s.commit_msg.clone(),
        proof_len: s.proof.as_ref().map_or(0, |p| p.len()),
        deals: Vec::new(),
        retries: s.retries,
        last_error: s.last_error.clone(),
        log: s.log.clone(),
        on_chain,
    })
}

async fn miner_info(node: &Arc<Node>) -> Result<MinerInfo, RpcError> {
    Ok(MinerInfo {
        actor: crate::config::actor_name(node.settings.actor),
        sector_size: node.settings.sector_size.to_string(),
        engine: node.engine.kind().to_string(),
        chain_mode: node.chain.mode().to_string(),
        head: node.chain.head().await.map_err(RpcError::app)?,
        power: node
            .chain
            .power(node.settings.actor)
            .await
            .map_err(RpcError::app)?,
        states: node.sectors.count_by_state(),
        max_sealing: node.cfg.sealing.max_sealing_sectors,
        workers: node.manager.worker_count(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        sdr: proofs::SdrMode::of(node.engine.kind()),
    })
}

async fn storage_list(node: &Arc<Node>) -> Result<Vec<StorageRow>, RpcError> {
    let index = node.store.index().clone();
    let local = local_paths(node);
    let mut out = Vec::new();
    for e in index.storage_list().await.map_err(RpcError::app)? {
        let mut counts = std::collections::BTreeMap::new();
        for (_, types) in index
            .storage_sectors(&e.info.id)
            .await
            .map_err(RpcError::app)?
        {
            for t in types.iter() {
                *counts.entry(t.to_string()).or_insert(0u64) += 1;
            }
        }
        let stat = node.store.stat(&e.info.id).ok().or(Some(e.stat));
        out.push(StorageRow {
            local_path: local.get(&e.info.id).map(|p| p.display().to_string()),
            healthy: e.heartbeat_err.is_none(),
            error: e.heartbeat_err.clone(),
            info: e.info,
            stat,
            counts,
        });
    }
    out.sort_by(|a, b| a.info.id.cmp(&b.info.id));
    Ok(out)
}

async fn find_sector(node: &Arc<Node>, n: u64) -> Result<Vec<FoundFile>, RpcError> {
    let sector = node
        .sectors
        .get(n)
        .ok_or_else(|| RpcError::app(format!("sector {n} not found")))?
        .sector;
    let local = local_paths(node);
    let mut out = Vec::new();
    for t in [FileType::Unsealed, FileType::Sealed, FileType::Cache] {
        let locs = node
            .store
            .index()
            .storage_find_sector(sector.id(), FileTypes::from(t))
            .await
            .map_err(RpcError::app)?;
        for l in locs {
            out.push(FoundFile {
                file_type: t.to_string(),
                local_path: local.get(&l.storage.id).map(|p| p.display().to_string()),
                storage: l.storage.id.0.clone(),
                urls: l.storage.urls.clone(),
                can_seal: l.storage.can_seal,
                can_store: l.storage.can_store,
            });
        }
    }
    Ok(out)
}

/// This machine's paths by storage ID.
fn local_paths(node: &Node) -> std::collections::HashMap<stores::StorageId, std::path::PathBuf> {
    node.store
        .paths()
        .into_iter()
        .map(|(id, path, _)| (id, path))
        .collect()
}

/// A worker's result for a call: recorded (so it survives a restart of this sealer) and handed to
/// whoever waits for it. A result for a call no longer recorded (its sector moved on) is dropped.
fn worker_return(
    node: &Node,
    call_id: &str,
    sector: &resources::SectorRef,
    task: resources::TaskType,
    result: api::tasks::TaskResult,
) -> Result<(), RpcError> {
    let key = crate::manager::call_key(sector, task);
    if let Some(mut rec) = node
        .db
        .get::<crate::manager::CallRecord>(&key)
        .map_err(RpcError::app)?
    {
        if rec.call_id == call_id && rec.result.is_none() {
            rec.result = Some(result.clone());
            node.db.put_unsynced(&key, &rec).map_err(RpcError::app)?;
        }
    }
    if !node.manager.deliver(call_id, result) {
        tracing::debug!(%call_id, "a result nobody waits for any more");
    }
    Ok(())
}

/// `Filecoin.StateMinerDeadlines`.
async fn deadlines(node: &Node) -> Result<Value, RpcError> {
    let head = node.chain.head().await.map_err(RpcError::app)?.height;
    let window = node.chain.wpost_window();
    let cur = crate::proving::deadline_at(head, window);
    let power = node
        .chain
        .power(node.settings.actor)
        .await
        .map_err(RpcError::app)?;
    let state = node
        .chain
        .proving(node.settings.actor)
        .await
        .map_err(RpcError::app)?;
    let runs = node.wdpost.runs();
    let none = crate::proving::Deadline::default();
    let dls: Vec<Value> = (0..crate::proving::DEADLINES)
        .map(|i| {
            let dl = state.as_ref().map_or(&none, |s| &s.deadlines[i as usize]);
            let d = crate::proving::next_opening(i, head, window);
            serde_json::json!({
                "Index": i,
                "Open": d.open,
                "Close": d.close,
                "Partitions": dl.partitions.iter().map(|p| serde_json::json!({
                    "Sectors": p.sectors,
                    "Faults": p.faults,
                    "Recoveries": p.recoveries,
                })).collect::<Vec<_>>(),
                "ProvenPartitions": if dl.proven_open == d.open { dl.proven.len() } else { 0 },
                "LastRun": runs.get(&i),
            })
        })
        .collect();
    Ok(serde_json::json!({
        "Head": head,
        "Window": window,
        "Current": cur,
        "Power": power,
        "Faults": state.as_ref().map(|s| s.faulty()).unwrap_or_default(),
        "Missed": state.as_ref().map(|s| s.missed).unwrap_or(0),
        "ProofsAccepted": state.as_ref().map(|s| s.proofs_accepted).unwrap_or(0),
        "Elections": node.wnpost.elections.load(std::sync::atomic::Ordering::Relaxed),
        "WinningPoStsSent": node.wnpost.submitted.load(std::sync::atomic::Ordering::Relaxed),
        "BlocksWon": node.chain.wins(node.settings.actor).await.map_err(RpcError::app)?,
        "Deadlines": dls,
    }))
}
