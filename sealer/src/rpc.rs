//! The JSON-RPC 2.0 endpoint (`POST /rpc/v0`): JWT check (401 without a valid token, 403 without
//! the method's permission), framing errors as JSON-RPC errors, then one handler per method.

use std::sync::Arc;

use api::contract::Handlers;
use api::methods as m;
use api::rpc::RpcError;
use api::server::RpcServer;
use api::*;
use axum::Router;
use stores::{FileType, FileTypes, Permission};

use crate::batch::BatchKind;
use crate::daemon::Node;
use crate::fsm::Event;
use chain::{hex, Partitions};

pub fn router(node: Arc<Node>) -> Router {
    let metrics = node.manager.metrics().clone();
    RpcServer::new(node.secret.clone(), handlers(), node)
        .with_timing(Arc::new(move |method: &str, secs: f64| {
            metrics.api_call(method, secs)
        }))
        .router(&["/rpc/v0"])
}

fn app<E: std::fmt::Display>(e: E) -> RpcError {
    RpcError::app(e)
}

/// Every method the sealer serves: its contract definition and handler.
pub fn handlers() -> Handlers<Arc<Node>> {
    let h = Handlers::<Arc<Node>>::default()
        .on::<m::Version, _, _>(|_, ()| async {
            Ok(VersionInfo {
                version: concat!("sealer ", env!("CARGO_PKG_VERSION")).into(),
                api_version: "v0".into(),
            })
        })
        .on::<m::ActorAddress, _, _>(|n, ()| async move {
            Ok(crate::config::actor_name(n.settings.actor))
        })
        .on::<m::ActorSectorSize, _, _>(|n, ()| async move { Ok(n.settings.sector_size.bytes()) })
        .on::<m::MinerInfoCall, _, _>(|n, ()| async move { miner_info(&n).await })
        .on::<m::PledgeSector, _, _>(|n, ()| async move { pledge(&n).await })
        .on::<m::SectorsList, _, _>(|n, ()| async move { Ok(n.sectors.numbers()) })
        .on::<m::SectorsListInStates, _, _>(|n, (states,)| async move {
            Ok(n.sectors
                .page(&states, 0, 0)
                .rows
                .into_iter()
                .map(|r| r.number)
                .collect())
        })
        .on::<m::SectorsListPage, _, _>(|n, (states, offset, limit, chain)| async move {
            let mut page = n.sectors.page(&states, offset, limit);
            if chain.unwrap_or(false) {
                expirations(&n, &mut page).await.map_err(app)?;
            }
            Ok(page)
        })
        .on::<m::SectorsStatus, _, _>(|n, (id, on_chain)| async move {
            sector_status(&n, id, on_chain.unwrap_or(false)).await
        })
        .on::<m::SectorRemove, _, _>(|n, (id,)| async move {
            n.sectors.apply(id, Event::Remove, |_| {}).map_err(app)?;
            n.pipeline.start(id);
            Ok(())
        })
        .on::<m::SectorTerminate, _, _>(|n, (id,)| async move {
            n.sectors.apply(id, Event::Terminate, |_| {}).map_err(app)?;
            n.pipeline.start(id);
            Ok(())
        })
        .on::<m::SectorsExtend, _, _>(|n, (ids, to, max_fee)| async move {
            let proof = n.seal_proof();
            let head = n.chain.head().await.map_err(app)?.height;
            let sent =
                crate::extend::extend(&*n.chain, n.settings.actor, proof, &ids, to, &max_fee)
                    .await
                    .map_err(app)?;
            n.pipeline
                .expirations
                .extending(sent.sectors.iter().map(|(s, _, _)| *s), head);
            Ok(sent)
        })
        .on::<m::SectorRebuild, _, _>(|n, (id,)| async move { n.pipeline.rebuild(id).map_err(app) })
        .on::<m::SectorPreCommitPending, _, _>(|n, ()| async move {
            Ok(n.pipeline.batch_pending(BatchKind::PreCommit))
        })
        .on::<m::SectorCommitPending, _, _>(|n, ()| async move {
            Ok(n.pipeline.batch_pending(BatchKind::Commit))
        })
        .on::<m::SectorPreCommitFlush, _, _>(|n, ()| async move {
            Ok(n.pipeline.batch_flush(BatchKind::PreCommit).await)
        })
        .on::<m::SectorCommitFlush, _, _>(|n, ()| async move {
            Ok(n.pipeline.batch_flush(BatchKind::Commit).await)
        })
        .on::<m::ActorControlList, _, _>(|n, ()| async move {
            crate::funds::control_rows(&*n.chain, &n.settings.senders)
                .await
                .map_err(app)
        })
        .on::<m::ActorControlSet, _, _>(|n, (addrs,)| async move {
            let mut control = Vec::new();
            for a in &addrs {
                control.push(lotus::json::parse_address(a).map_err(app)?);
            }
            crate::funds::set_control(&*n.chain, control)
                .await
                .map_err(app)
        })
        .on::<m::StorageDetachLocal, _, _>(|n, (path,)| async move {
            let id = n
                .store
                .detach(std::path::Path::new(&path))
                .await
                .map_err(app)?;
            local_paths_changed(&n);
            Ok(id.0)
        })
        .on::<m::WorkerJobs, _, _>(|n, ()| async move { Ok(n.manager.jobs()) })
        .on::<m::WorkerStats, _, _>(|n, ()| async move { Ok(n.manager.worker_stats()) })
        .on::<m::SealingAbort, _, _>(|n, (id,)| async move { n.manager.abort(id).map_err(app) })
        .on::<m::SealingSchedDiag, _, _>(|n, ()| async move { Ok(sched_diag(&n)) })
        .on::<m::SealingPlanInputs, _, _>(|n, ()| async move { plan_inputs(&n).await })
        .on::<m::StorageList, _, _>(|n, ()| async move { storage_list(&n).await })
        .on::<m::StorageAttach, _, _>(|n, (p,)| async move {
            let opts = p.options();
            let id = n
                .store
                .attach(std::path::Path::new(&p.path), &opts)
                .await
                .map_err(app)?;
            local_paths_changed(&n);
            Ok(id.0)
        })
        .on::<m::StorageFindSector, _, _>(|n, (id,)| async move { find_sector(&n, id).await })
        .on::<m::ChainHead, _, _>(|n, ()| async move { n.chain.head().await.map_err(app) })
        .on::<m::StateMinerPower, _, _>(|n, ()| async move {
            n.chain.power(n.settings.actor).await.map_err(app)
        })
        .on::<m::StateMinerDeadlines, _, _>(|n, ()| async move { deadlines(&n).await })
        .on::<m::CheckProvable, _, _>(|n, (d,)| async move { check_provable(&n, d).await })
        .on::<m::AuthNew, _, _>(|n, (perms,)| async move { Ok(n.secret.token(&perms)) })
        .on::<m::AuthVerify, _, _>(
            |n, (token,)| async move { n.secret.verify(&token).map_err(app) },
        )
        .on::<m::WorkerConnect, _, _>(|n, (url,)| async move {
            let token = n.secret.token_for(Permission::Admin);
            let (id, new) = n
                .workers
                .connect(&url, &token, &n.manager, &n.view)
                .await
                .map_err(app)?;
            Ok(Connected {
                id: id.to_string(),
                new,
            })
        })
        .on::<m::WorkerHeartbeat, _, _>(|n, (url, session, health)| async move {
            let known = n.workers.beat(&url, &session);
            if known {
                for (id, stat, err) in health.unwrap_or_default() {
                    // A path detached meanwhile: nothing to report it for.
                    if let Err(e) =
                        stores::SectorIndex::storage_report_health(&*n.index, &id, stat, err).await
                    {
                        tracing::debug!("health of {id} from {url}: {e}");
                    }
                }
            }
            Ok(known)
        })
        .on::<m::WorkerReturn, _, _>(|n, (call_id, result, runs)| async move {
            n.manager.calls().ran(&call_id, runs.unwrap_or_default());
            n.manager.returned(&call_id);
            if !n.manager.calls().returned(&call_id, &result) {
                tracing::debug!(%call_id, "a result nobody waits for any more");
            }
            Ok(())
        })
        .on::<m::WorkerProgress, _, _>(|n, (call_id, p)| async move {
            n.manager.calls().progress(&call_id, p);
            Ok(())
        })
        .on::<m::WorkerJwtSecret, _, _>(|n, ()| async move { Ok(hex(n.secret.as_bytes())) })
        .on::<m::Shutdown, _, _>(|n, ()| async move {
            n.shutdown.notify_one();
            Ok(())
        });
    api::index::serve(h, |n: &Arc<Node>| {
        n.index.clone() as Arc<dyn stores::SectorIndex>
    })
}

/// The sealer's own worker reaches the paths attached here now.
fn local_paths_changed(n: &Node) {
    n.view.set_paths(
        n.local_worker,
        n.store.paths().into_iter().map(|p| p.0).collect(),
    );
}

async fn check_provable(node: &Arc<Node>, d: u64) -> Result<Provable, RpcError> {
    if d >= chain::DEADLINES {
        return Err(RpcError::params(
            <m::CheckProvable as api::contract::Method>::NAME,
            format!(
                "deadline {d} does not exist (0 to {})",
                chain::DEADLINES - 1
            ),
        ));
    }
    let sectors = node.wdpost.deadline_sectors(d).await.map_err(app)?;
    let bad = if sectors.is_empty() {
        Vec::new()
    } else {
        node.wdpost.check(d, &sectors).await.map_err(app)?
    };
    Ok(Provable {
        deadline: d,
        sectors,
        unprovable: bad
            .into_iter()
            .map(|(sector, why)| Unprovable { sector, why })
            .collect(),
    })
}

/// The scheduler's view, plus where each worker has room: a new sector (AP, PC1) goes only
/// to a worker with a seal path that can hold it.
pub(crate) fn sched_diag(node: &Arc<Node>) -> SchedDiag {
    let mut diag = node.manager.sched_diag();
    let size = node.settings.sector_size;
    let seal_need = FileTypes::ALL.overhead(size, stores::PathKind::Sealing);
    diag.storage = node
        .manager
        .worker_names()
        .into_iter()
        .map(|(id, name)| {
            let seal = node.view.has_room(id, stores::PathKind::Sealing, FileTypes::ALL, size);
            let store = node.view.has_room(id, stores::PathKind::Storage, FileTypes::SEALED, size);
            WorkerRoom {
                worker: id.to_string(),
                host: name,
                room_to_seal: seal,
                room_to_store: store,
                why: (!seal).then(|| format!(
                    "no healthy seal path with {seal_need} bytes available for a new {size} sector: gets no AP or PC1 of a new sector"
                )),
            }
        })
        .collect();
    let mut waiting = Vec::new();
    node.sectors.visit(|s| {
        if let Some(why) = s.waiting_reason() {
            waiting.push(api::WaitingSector {
                sector: s.sector.number,
                state: s.state,
                why,
            });
        }
    });
    diag.sectors_waiting = waiting;
    diag
}

async fn pledge(node: &Arc<Node>) -> Result<resources::SectorId, RpcError> {
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
    Ok(sector.sector.id())
}

pub(crate) async fn sector_status(
    node: &Arc<Node>,
    n: u64,
    on_chain: bool,
) -> Result<SectorInfo, RpcError> {
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
            activation: active.as_ref().map(|a| a.activation),
            precommit_epoch: pc.as_ref().map(|p| p.precommit_epoch).or(s.precommit_epoch),
            seal_proof: active.as_ref().map(|a| a.sector.proof as i64),
            sealed_cid: active
                .as_ref()
                .map(|a| lotus::miner::sealed_cid(&a.comm_r).to_string()),
            // Active, or still pre-committed (what its pre-commit said).
            expiration: active
                .as_ref()
                .map(|a| a.expiration)
                .or(pc.as_ref().map(|p| p.expiration)),
            deadline: active.as_ref().map(|a| a.deadline),
            partition: active.as_ref().map(|a| a.partition as u64),
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
        deals: s.deals.clone(),
        retries: s.retries,
        last_error: s.last_error.clone(),
        last_error_kind: (!s.last_error.is_empty()).then_some(s.failed_kind),
        log: node.sectors.log(n).map_err(RpcError::app)?,
        waiting: s.waiting_reason(),
        on_chain,
    })
}

/// Fills in the expiration of a page's Proving sectors (a sector only pre-committed has none
/// yet): those not known from an earlier call (`crate::expiry`) in one chain call.
async fn expirations(
    node: &Arc<Node>,
    page: &mut api::SectorsPage,
) -> Result<(), chain::ChainError> {
    let proof = crate::daemon::seal_proof(node.settings.sector_size);
    // Only sectors surely active: a Lotus node fails the whole call for a number it does not
    // hold as a sector (a pre-commit, a terminated one).
    let proving: Vec<u64> = page
        .rows
        .iter()
        .filter(|r| r.state == api::SectorState::Proving)
        .map(|r| r.number)
        .collect();
    // The watch's head will do (an epoch late at most): one call fewer per list.
    let head = match node.chain.seen_epoch() {
        Some(e) => e,
        None => node.chain.head().await?.height,
    };
    let now = std::time::Instant::now();
    let ask = node.pipeline.expirations.to_read(&proving, head, now);
    if !ask.is_empty() {
        let refs: Vec<resources::SectorRef> = ask
            .iter()
            .map(|n| resources::SectorRef::new(node.settings.actor, *n, proof))
            .collect();
        let active: std::collections::HashMap<u64, i64> = node
            .chain
            .active_sectors(&refs)
            .await?
            .into_iter()
            .map(|a| (a.sector.number, a.expiration))
            .collect();
        node.pipeline.expirations.learn(&ask, &active, now);
    }
    page.head = Some(head);
    for r in &mut page.rows {
        r.expiration = match r.state {
            api::SectorState::Proving => node.pipeline.expirations.get(r.number),
            _ => None,
        };
    }
    Ok(())
}

async fn miner_info(node: &Arc<Node>) -> Result<MinerInfo, RpcError> {
    Ok(MinerInfo {
        actor: crate::config::actor_name(node.settings.actor),
        sector_size: node.settings.sector_size.to_string(),
        engine: node.engine.kind().to_string(),
        chain_mode: node.chain.mode().to_string(),
        chain_calls: std::iter::once(("API", &node.chain))
            .chain(node.chain_parts.iter().map(|(p, c)| (*p, c)))
            .map(|(part, c)| {
                let calls = c.calls().into_iter().map(|(k, v)| (k.to_string(), v));
                (part.to_string(), calls.collect())
            })
            .collect(),
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
        funds: Some(balances(&*node.chain).await.map_err(RpcError::app)?),
    })
}

async fn balances(chain: &dyn chain::Chain) -> Result<api::MinerBalances, chain::ChainError> {
    let f = chain.funds().await?;
    let a = chain.addresses().await?;
    let text = lotus::json::fil_text;
    let mut control = Vec::new();
    for c in &a.control {
        control.push((c.id.to_string(), text(&chain.balance(&c.id).await?)));
    }
    Ok(api::MinerBalances {
        miner_balance: text(&f.balance),
        pre_commit: text(&f.precommit_deposits),
        pledge: text(&f.initial_pledge),
        vesting: text(&f.vesting),
        available: text(&f.available),
        worker: a.worker.id.to_string(),
        worker_key: a.worker.key.to_string(),
        worker_balance: text(&chain.balance(&a.worker.id).await?),
        owner: a.owner.id.to_string(),
        owner_balance: text(&chain.balance(&a.owner.id).await?),
        control,
        network: chain.network(),
    })
}

pub(crate) async fn storage_list(node: &Arc<Node>) -> Result<Vec<StorageRow>, RpcError> {
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

pub(crate) async fn find_sector(node: &Arc<Node>, n: u64) -> Result<Vec<FoundFile>, RpcError> {
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

/// `Filecoin.SealingPlanInputs`: the registered workers with their tables, sealing paths and
/// usual times, for `sealer plan`.
pub(crate) async fn plan_inputs(node: &Arc<Node>) -> Result<api::PlanInputs, RpcError> {
    let size = node.settings.sector_size;
    let seal_sizes: std::collections::HashMap<stores::StorageId, u64> = node
        .store
        .index()
        .storage_list()
        .await
        .map_err(RpcError::app)?
        .into_iter()
        .filter(|e| e.info.can_seal)
        .map(|e| {
            let cap = match e.info.max_storage {
                0 => e.stat.capacity,
                m => m.min(e.stat.capacity),
            };
            (e.info.id, cap)
        })
        .collect();
    let took = node.manager.took().all();
    let workers = node
        .manager
        .worker_specs()
        .into_iter()
        .map(|(id, enabled, connected, spec)| api::PlanWorker {
            seal_paths: node
                .view
                .paths_of(id)
                .into_iter()
                .filter_map(|p| Some((p.0.clone(), *seal_sizes.get(&p)?)))
                .collect(),
            took: took
                .iter()
                .filter(|u| u.worker == spec.name && u.size == size)
                .map(|u| (u.task, u.runs, u.mean_s))
                .collect(),
            name: spec.name,
            enabled,
            connected,
            tasks: spec.tasks,
            resources: spec.resources,
            table: spec.table,
        })
        .collect();
    let states = node.sectors.count_by_state();
    let sectors = states
        .iter()
        .filter(|(s, _)| {
            s.parse::<SectorState>().is_ok_and(|s| {
                !s.is_sealing()
                    && !matches!(
                        s,
                        SectorState::Removed
                            | SectorState::Removing
                            | SectorState::FailedUnrecoverable
                    )
            })
        })
        .map(|(_, n)| *n)
        .sum();
    Ok(api::PlanInputs {
        sector_size: size,
        sectors,
        max_sealing: node.cfg.sealing.max_sealing_sectors,
        seed_wait_s: node.chain.precommit_challenge_delay() as f64
            * node.chain.block_delay_ms() as f64
            / 1000.0,
        engine: node.engine.kind().to_string(),
        workers,
    })
}

/// This machine's paths by storage ID.
pub(crate) fn local_paths(
    node: &Node,
) -> std::collections::HashMap<stores::StorageId, std::path::PathBuf> {
    node.store
        .paths()
        .into_iter()
        .map(|(id, path, _)| (id, path))
        .collect()
}

/// `Filecoin.StateMinerDeadlines`.
pub(crate) async fn deadlines(node: &Node) -> Result<ProvingDeadlines, RpcError> {
    let head = node.chain.head().await.map_err(app)?.height;
    let window = node.chain.wpost_window();
    let actor = node.settings.actor;
    let cur = node.chain.proving_deadline(actor).await.map_err(app)?;
    let power = node.chain.power(actor).await.map_err(app)?;
    let states = node.chain.deadlines(actor).await.map_err(app)?;
    let tally = node
        .chain
        .tally(actor)
        .await
        .map_err(app)?
        .unwrap_or_default();
    let runs = node.wdpost.runs();
    let faults: std::collections::BTreeSet<u64> =
        states.iter().flat_map(|d| d.partitions.faults()).collect();
    let deadlines = states
        .into_iter()
        .enumerate()
        .map(|(i, dl)| {
            let i = i as u64;
            let d = chain::deadline::next_opening_from(&cur, i, head, window);
            DeadlineRow {
                index: i,
                open: d.open,
                close: d.close,
                partitions: dl
                    .partitions
                    .iter()
                    .map(|p| PartitionRow {
                        sectors: p.sectors.iter().copied().collect(),
                        faults: p.faults.iter().copied().collect(),
                        recoveries: p.recoveries.iter().copied().collect(),
                    })
                    .collect(),
                proven_partitions: dl.proven.len(),
                last_run: runs.get(&i).map(|r| DeadlineRunRow {
                    open: r.open,
                    outcome: r.outcome.clone(),
                    skipped: r.skipped.clone(),
                    message: (!r.messages.is_empty()).then(|| r.messages.join(" ")),
                    proof_ms: r.proof_ms,
                }),
            }
        })
        .collect();
    let (elections, winning_posts_sent) = node.wnpost.counts();
    Ok(ProvingDeadlines {
        head,
        window,
        current: DeadlineTimes {
            period_start: cur.period_start,
            index: cur.index,
            open: cur.open,
            close: cur.close,
            challenge: cur.challenge,
        },
        power,
        faults: faults.into_iter().collect(),
        missed: tally.missed,
        proofs_accepted: tally.proofs_accepted,
        elections,
        winning_posts_sent,
        blocks_won: tally.blocks_won,
        deadlines,
    })
}
