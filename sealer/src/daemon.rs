//! `sealer run`: opens the repo, the metadata store and the chain, attaches the storage paths,
//! starts the scheduler with the in-process worker, resumes unfinished sectors and serves the
//! JSON-RPC API (`/rpc/v0`) and sector files (`/remote`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use processor::Processors;
use proofs::{Engine, MockEngine, RealEngine};
use resources::{ResourceTable, SealProof, SectorSize, TaskType};
use sched::{SchedConfig, Scheduler, WorkerSpec};
use stores::{LocalStore, MemIndex, Permission, Remote, Secret};

use crate::cluster::{ClusterView, Workers};
use crate::config::{ChainMode, Config, Settings};
use crate::localworker::{local_tasks, LocalWorker};
use crate::manager::Manager;
use crate::pipeline::Pipeline;
use crate::repo::Repo;
use crate::sectors::Sectors;
use chain::devnet::DevnetConfig;
use chain::{Chain, Devnet, FullNode};
use db::Db;

/// Everything the API reaches.
pub struct Node {
    pub(crate) cfg: Config,
    pub(crate) settings: Settings,
    pub(crate) config_file: String,
    pub(crate) secret: Secret,
    pub(crate) sectors: Arc<Sectors>,
    pub(crate) pipeline: Arc<Pipeline>,
    pub(crate) manager: Arc<Manager>,
    pub(crate) chain: Arc<dyn Chain>,
    /// The sealing pipeline's, the WindowPoSt and WinningPoSt schedulers' own clients of the
    /// chain node (`chain` answers the API).
    pub(crate) chain_parts: Vec<(&'static str, Arc<dyn Chain>)>,
    pub(crate) store: LocalStore,
    pub(crate) index: Arc<MemIndex>,
    pub(crate) view: Arc<ClusterView>,
    pub(crate) workers: Arc<Workers>,
    pub(crate) local_worker: sched::WorkerId,
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) wdpost: Arc<crate::wdpost::WindowPoSt>,
    pub(crate) wnpost: Arc<crate::wnpost::WinningPoSt>,
    pub(crate) shutdown: tokio::sync::Notify,
    /// The proving figures, read from the chain in the background (`web::ProvingCache`).
    pub(crate) proving: crate::web::ProvingCache,
}

impl Node {
    pub fn seal_proof(&self) -> SealProof {
        seal_proof(self.settings.sector_size)
    }
}

/// The registered seal proof for new sectors of a size (the V1_1 proofs the network uses).
pub fn seal_proof(size: SectorSize) -> SealProof {
    SealProof::ALL[5 + size.index()]
}

/// The API's socket, with room for a thousand workers connecting at once (after a restart):
/// tokio's default backlog of 1,024 overflowed with SYN cookies under the load tool.
fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let s = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    s.set_reuseaddr(true)?;
    s.bind(addr)?;
    s.listen(8192)
}

/// The chain node the sealer works with, through its Lotus client: the embedded devnet, opened
/// in the sealer's metadata store and served on its own address (`_devnet` keeps it serving),
/// or the Lotus node of FULLNODE_API_INFO.
async fn open_chain(
    repo: &Repo,
    cfg: &Config,
    settings: &Settings,
    db: &Db,
    engine: &Arc<dyn Engine>,
) -> Result<(FullNode, Option<chain::devnet::node::Served>)> {
    let (info, served) = match &settings.chain {
        ChainMode::Lotus { info } => (info.clone(), None),
        ChainMode::Devnet { listen } => {
            let devnet = Devnet::open(
                db.clone(),
                engine.clone(),
                DevnetConfig {
                    block_delay: settings.block_delay,
                    challenge_delay: cfg.chain.pre_commit_challenge_delay as i64,
                    window: cfg.chain.wpost_challenge_window as i64,
                    other_power: settings.other_network_power,
                    worker_funds: settings.devnet_worker_funds.clone(),
                    max_ticket_age: chain::MAX_PRECOMMIT_RANDOMNESS_LOOKBACK,
                    ticket_lookback: 0,
                    max_prove_commit_duration: chain::MAX_PROVE_COMMIT_DURATION,
                },
                settings.actor,
                settings.sector_size,
            )
            .context("opening the devnet")?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("Chain.DevnetListenAddress: cannot listen on {listen}"))?;
            let served = devnet.run(listener).context("serving the devnet node")?;
            repo.write_fullnode_api(&served.info.to_env())?;
            tracing::info!(
                "devnet node listening: FULLNODE_API_INFO={} (also in {})",
                served.info.to_env(),
                repo.fullnode_api_file().display()
            );
            (served.info.clone(), Some(served))
        }
    };
    let node = FullNode::connect(&info, settings.actor)
        .await
        .with_context(|| format!("connecting to the chain node at {}", info.addr))?;
    tracing::info!(mode = node.mode(), url = node.url(), "chain node reached");
    Ok((node, served))
}

/// The effective config, once at start: every key with its value (defaults filled in), and what
/// the environment decides (engine, SDR mode, parameter cache).
fn log_config(repo: &Repo, file: &std::path::Path, cfg: &Config, engine: proofs::EngineKind) {
    let sdr = proofs::SdrMode::describe(proofs::SdrMode::of(engine));
    tracing::info!(
        "effective config ({}, repo {}):\n{}\n# proof engine: {engine}; PC1 SDR: {sdr}; parameter cache: {}",
        file.display(),
        repo.path.display(),
        cfg.to_toml().trim_end(),
        proofs::params::cache_dir().display(),
    );
}

pub async fn run(repo: Repo, force_mock: bool) -> Result<()> {
    let file = repo.config_file();
    if !repo.exists() {
        anyhow::bail!(
            "{} is not initialized: run `sealer init --actor t01000 --sector-size 2KiB` first",
            repo.path.display()
        );
    }
    let (cfg, mut settings) = Config::load(&file)?;
    settings.mock |= force_mock;
    // Two connections per worker, besides the database and sector files.
    match processor::limits::raise_open_files() {
        Ok((before, after)) if after > before => {
            tracing::info!("open files limit raised from {before} to {after}")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("open files limit not raised: {e}"),
    }

    let launch = processor::parent::Launch::this_binary(&repo.path)
        .context("finding this binary to start processors")?;
    let (engine, procs): (Arc<dyn Engine>, _) = if settings.mock {
        tracing::warn!("MOCK PROOF ENGINE: sectors are not really sealed and proofs are not real (tests and demos only)");
        let mut m = MockEngine::new().with_corrupt_proofs(cfg.proofs.mock_corrupt_proofs);
        for (t, d) in &settings.mock_delays {
            m = m.with_delay(*t, *d);
        }
        (Arc::new(m.clone()), Processors::mock(launch, m))
    } else {
        if !cfg.proofs.parameter_cache.is_empty() {
            std::env::set_var("FIL_PROOFS_PARAMETER_CACHE", &cfg.proofs.parameter_cache);
        }
        (Arc::new(RealEngine), Processors::real(launch))
    };
    let procs = Arc::new(procs);
    let orphans = procs.end_orphans();
    if orphans > 0 {
        tracing::warn!("ended {orphans} processor(s) left running by the previous sealer");
    }
    log_config(&repo, &file, &cfg, engine.kind());
    let db = Db::open(&repo.datastore())?;
    let (chain, _devnet) = open_chain(&repo, &cfg, &settings, &db, &engine).await?;
    if let Err(e) = chain
        .ensure_miner(settings.actor, settings.sector_size)
        .await
    {
        tracing::error!("{e} (config: {}): pledges will be refused", file.display());
    }
    // One client per part of the sealer, so `sealer info` tells their chain calls apart.
    let parts: Vec<(&'static str, Arc<dyn Chain>)> = ["sealing", "WindowPoSt", "WinningPoSt"]
        .into_iter()
        .map(|p| (p, Arc::new(chain.fork()) as Arc<dyn Chain>))
        .collect();
    let chain: Arc<dyn Chain> = Arc::new(chain);

    let listener = listen(settings.listen)
        .with_context(|| format!("API.ListenAddress: cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let public = if cfg.api.remote_listen_address.is_empty() {
        addr.to_string()
    } else {
        cfg.api.remote_listen_address.clone()
    };
    let index = Arc::new(MemIndex::default());
    let store = LocalStore::open(
        &repo.storage_file(),
        index.clone(),
        vec![format!("http://{public}/remote")],
    )
    .await
    .context("opening storage paths (storage.json)")?;
    store.spawn_heartbeats(Duration::from_secs(10));
    let secret = repo.secret()?;
    let remote = Arc::new(Remote::new(
        store.clone(),
        secret.token_for(Permission::Admin),
        cfg.storage.parallel_fetch_limit as usize,
    ));

    let sched = Scheduler::new(SchedConfig {
        assigner: settings.assigner,
        windows: 2,
        measured_memory: cfg.storage.measured_memory,
    });
    let calls = crate::calls::CallTracker::open(db.clone())?;
    let version = env!("CARGO_PKG_VERSION");
    let metrics = match cfg.api.metrics {
        true => telemetry::SealerMetrics::new(version),
        false => telemetry::SealerMetrics::off(version),
    };
    let manager = Manager::new(sched, calls)
        .with_metrics(Arc::new(metrics))
        .with_took(crate::took::Took::open(db.clone())?);
    let view = ClusterView::new(index.clone());
    let tasks = local_tasks(&cfg.storage, &cfg.proving);
    if !tasks.contains(TaskType::PreCommit1)
        && !tasks.contains(TaskType::AddPiece)
        && !tasks.contains(TaskType::Commit2)
    {
        tracing::info!(tasks = %tasks, "the sealer runs no sealing task itself (every [Storage] Allow* is false)");
    }
    let table = ResourceTable::from_env().context("resource table from the environment")?;
    let topology = resources::topology::Topology::this_machine()
        .map_err(|e| tracing::warn!("CPU topology not known: {e}"))
        .ok();
    let affinity = processor::affinity::current().context("reading the sealer's CPU affinity")?;
    let spec = WorkerSpec {
        name: resources::host::host_name(),
        resources: resources::detect(false),
        table,
        tasks,
        cpus: topology.clone().map(|t| (t, affinity)),
        task_cpus: Default::default(),
    };
    let worker = Arc::new(LocalWorker {
        remote: remote.clone(),
        engine: engine.clone(),
        procs: Some(procs),
        topology,
        calls: Some(manager.calls().clone()),
    });
    let local_worker = manager.add_worker(spec, worker, true);
    view.set_builtin(local_worker);
    view.set_paths(
        local_worker,
        store.paths().into_iter().map(|p| p.0).collect(),
    );
    tracing::info!(tasks = %tasks, "in-process worker {local_worker} ready");
    manager.spawn();

    let sectors = Arc::new(Sectors::load(db.clone(), cfg.sealing.max_retries)?);
    let pipeline = Pipeline::new(
        sectors.clone(),
        parts[0].1.clone(),
        manager.clone(),
        remote,
        view.clone(),
        settings.retry_cooldown,
        engine.clone(),
        cfg.sealing.rebuild_lost_sectors,
        crate::funds::Policy {
            fees: settings.fees.clone(),
            collateral: settings.collateral.clone(),
            senders: settings.senders.clone(),
            batching: settings.batching.clone(),
        },
        settings.cc_lifetime_epochs,
        settings.message_confidence,
    );
    pipeline.resume_all();
    let wdpost = crate::wdpost::WindowPoSt::new(
        parts[1].1.clone(),
        Arc::new(pipeline.clone()),
        manager.clone(),
        view.clone(),
        settings.actor,
        settings.sector_size,
        settings.fees.window_post.clone(),
        settings.senders.clone(),
    );
    wdpost.spawn();
    let wnpost = crate::wnpost::WinningPoSt::new(
        parts[2].1.clone(),
        manager.clone(),
        view.clone(),
        settings.actor,
        crate::wnpost::SlashFilter::new(db.clone()),
    );
    wnpost.spawn();

    let node = Arc::new(Node {
        cfg,
        settings,
        config_file: file.display().to_string(),
        secret: secret.clone(),
        sectors,
        pipeline,
        manager,
        chain: chain.clone(),
        chain_parts: parts,
        store: store.clone(),
        index,
        view,
        workers: Arc::new(Workers::default()),
        local_worker,
        engine,
        wdpost,
        wnpost,
        shutdown: tokio::sync::Notify::new(),
        proving: Default::default(),
    });
    crate::web::ProvingCache::spawn(node.clone());
    let (remote, _) = stores::http::router(store, secret);
    let app = crate::rpc::router(node.clone())
        .merge(crate::web::router(node.clone()))
        .merge(remote);
    let ma = api::client::addr_to_multiaddr(&addr);
    repo.write_api(&ma)?;
    tracing::info!(
        "sealer for {} ({} sectors, {} proofs) listening on {ma}",
        crate::config::actor_name(node.settings.actor),
        node.settings.sector_size,
        node.engine.kind()
    );
    let stop = node.clone();
    // Apart from the runtime that drives the sectors: an operator's call does not wait in
    // line behind their steps.
    let served = api::server::serve_apart(listener, app, async move {
        api::server::until_stopped(&stop.shutdown).await;
        tracing::info!("shutting down");
    })
    .await;
    repo.remove_api();
    served.context("serving the API")
}
