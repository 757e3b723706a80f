//! `worker run`: connects to the sealer, opens its storage and call records, serves its API and
//! `/remote`, runs the calls the sealer sends and returns their results until delivered.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use api::contract::Handlers;
use api::methods as m;
use api::rpc::RpcError;
use api::tasks::TaskError;
use api::{ApiInfo, Client, RunningCall, TaskCall, VersionInfo, WorkerInfo, WorkerPath};
use processor::{Placement, Processors};
use proofs::{Engine, MockEngine};
use resources::topology::{CpuSet, Place, Topology};
use resources::{ResourceTable, TaskSet, TaskType, WorkerResources};
use stores::{AttachOptions, LocalStore, Remote, Secret};

use crate::calls::{Calls, WorkerCall};
use crate::config::WorkerConfig;

/// A worker's storage paths as it declares them to the sealer (`WorkerInfo.paths`).
pub fn paths_of(store: &LocalStore) -> Vec<WorkerPath> {
    store
        .paths()
        .into_iter()
        .map(|(id, path, meta)| WorkerPath {
            id,
            local_path: path.display().to_string(),
            weight: meta.weight,
            can_seal: meta.can_seal,
            can_store: meta.can_store,
        })
        .collect()
}

/// What `worker run` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub sealer: ApiInfo,
    pub listen: String,
    pub name: Option<String>,
    pub tasks: TaskSet,
    pub no_local_storage: bool,
    pub no_swap: bool,
    pub parallel_fetch_limit: usize,
    /// Mock engine only: task delays, e.g. `PC1=2s`.
    pub mock_delays: Vec<(TaskType, Duration)>,
    /// Mock engine only: faults the next processor child of a task type commits.
    pub mock_faults: Vec<(TaskType, processor::Fault)>,
    /// A processor child of a task type still running after this is killed.
    pub timeouts: Vec<(TaskType, Duration)>,
    /// The CPUs this worker may use (`--cpus`; default: its affinity mask).
    pub cpus: Option<CpuSet>,
    /// `GET /metrics` without a token.
    pub metrics_without_token: bool,
}

pub struct Worker {
    session: String,
    hostname: String,
    url: String,
    resources: WorkerResources,
    topology: Option<Topology>,
    /// The CPUs it may use.
    cpus: CpuSet,
    /// `worker.toml`, and the CPUs it keeps task types to.
    config: WorkerConfig,
    task_cpus: BTreeMap<TaskType, CpuSet>,
    /// Calls running, with the CPUs each was placed on.
    running: Mutex<BTreeMap<String, RunningCall>>,
    table: ResourceTable,
    tasks: Mutex<TaskSet>,
    remote: Arc<Remote>,
    store: LocalStore,
    procs: Arc<Processors>,
    calls: Calls,
    sealer: Arc<Client>,
    secret: Secret,
    returns: tokio::sync::Notify,
    /// Announce to the sealer now (task types or paths changed).
    announce: Arc<tokio::sync::Notify>,
    shutdown: tokio::sync::Notify,
    metrics: telemetry::WorkerMetrics,
    metrics_without_token: bool,
}

pub async fn run(repo: &Path, o: Options) -> Result<()> {
    std::fs::create_dir_all(repo).with_context(|| format!("creating {}", repo.display()))?;
    match processor::limits::raise_open_files() {
        Ok((before, after)) if after > before => {
            tracing::info!("open files limit raised from {before} to {after}")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("open files limit not raised: {e}"),
    }
    let sealer = Arc::new(Client::new(&o.sealer, Duration::from_secs(30)));
    let secret_hex = sealer
        .request::<m::WorkerJwtSecret>(())
        .await
        .with_context(|| format!("connecting to the sealer at {}", sealer.url()))?;
    let secret =
        Secret::from_bytes(unhex(&secret_hex)?).map_err(|e| anyhow!("sealer secret: {e}"))?;
    let miner = sealer.request::<m::MinerInfoCall>(()).await?;
    let launch = processor::parent::Launch::this_binary(repo)
        .context("finding this binary to start processors")?;
    let mut procs = if miner.engine == "mock" {
        tracing::warn!(
            "MOCK PROOF ENGINE (the sealer's): sectors are not really sealed, proofs are not real"
        );
        let mut e = MockEngine::new();
        for (t, d) in &o.mock_delays {
            e = e.with_delay(*t, *d);
        }
        Processors::mock(launch, e)
    } else {
        Processors::real(launch)
    };
    for (t, d) in &o.timeouts {
        procs = procs.with_timeout(*t, *d);
    }
    let procs = Arc::new(
        procs
            .with_faults(o.mock_faults.clone())
            .map_err(|e| anyhow!("--mock-faults: {e}"))?,
    );
    // Before anything is advertised: a predecessor's children still hold CPUs and files.
    let orphans = procs.end_orphans();
    if orphans > 0 {
        tracing::warn!("ended {orphans} processor(s) left running by the previous worker");
    }

    let listener = tokio::net::TcpListener::bind(&o.listen)
        .await
        .with_context(|| format!("--listen: cannot listen on {}", o.listen))?;
    let addr = listener.local_addr()?;
    let public = if addr.ip().is_unspecified() {
        let ip = outbound_ip(&o.sealer.addr).unwrap_or_else(|| "127.0.0.1".into());
        format!("{ip}:{}", addr.port())
    } else {
        addr.to_string()
    };
    let index = Arc::new(api::index::IndexClient {
        client: sealer.clone(),
    });
    let store = LocalStore::open(
        &repo.join("storage.json"),
        index,
        vec![format!("http://{public}/remote")],
    )
    .await
    .context("opening storage paths (storage.json)")?;
    if !o.no_local_storage && store.paths().is_empty() {
        let local = repo.join("local");
        std::fs::create_dir_all(&local)?;
        let opts = AttachOptions {
            init: true,
            seal: true,
            ..Default::default()
        };
        store.attach(&local, &opts).await?;
    }
    // The paths' health goes to the sealer with the beats (`link`), not in calls of its own.
    let remote = Arc::new(Remote::new(
        store.clone(),
        o.sealer.token.clone(),
        o.parallel_fetch_limit,
    ));
    let calls = Calls::open(&repo.join("datastore"))?;
    let lost = calls.mark_interrupted()?;
    calls.prune_done(24 * 3600)?;
    if lost > 0 {
        tracing::warn!("{lost} call(s) were cut off by a restart; returning them as lost");
    }
    std::fs::write(repo.join("api"), &public)?;
    std::fs::write(repo.join("token"), &o.sealer.token)?;

    let topology = match Topology::this_machine() {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!("CPU topology not known: {e}");
            None
        }
    };
    let cpus = allowed_cpus(o.cpus.as_ref(), topology.as_ref())?;
    let config = WorkerConfig::load(repo)?;
    let table = config.table()?;
    let task_cpus = config
        .task_cpus(topology.as_ref(), &cpus)
        .with_context(|| format!("{}", repo.join(WorkerConfig::FILE).display()))?;
    let mut resources = resources::detect(o.no_swap);
    if o.cpus.is_some() {
        // Everything this worker runs stays on them, its own threads included.
        processor::affinity::pin_process(&cpus)
            .with_context(|| format!("--cpus {cpus}: pinning the worker"))?;
        // A cgroup CPU quota below the list still counts.
        resources.cpus = resources.cpus.min(cpus.len() as u64);
    }

    let mut session = [0u8; 16];
    getrandom::fill(&mut session).map_err(|e| anyhow!("{e}"))?;
    let hostname = o.name.clone().unwrap_or_else(resources::host::host_name);
    let w = Arc::new(Worker {
        session: session.iter().map(|b| format!("{b:02x}")).collect(),
        hostname: hostname.clone(),
        url: format!("http://{public}/rpc/v0"),
        resources,
        topology,
        cpus,
        running: Mutex::new(BTreeMap::new()),
        table,
        config,
        task_cpus,
        tasks: Mutex::new(o.tasks),
        remote,
        store: store.clone(),
        procs,
        calls,
        sealer,
        secret: secret.clone(),
        returns: tokio::sync::Notify::new(),
        announce: Arc::new(tokio::sync::Notify::new()),
        shutdown: tokio::sync::Notify::new(),
        metrics: telemetry::WorkerMetrics::new(env!("CARGO_PKG_VERSION"), &hostname),
        metrics_without_token: o.metrics_without_token,
    });
    let (files, _) = stores::http::router(store, secret);
    let app = api::server::RpcServer::new(w.secret.clone(), handlers(), w.clone())
        .router(&["/rpc/v0"])
        .merge(files)
        .merge(crate::metrics::router(w.clone()));
    log_options(repo, &o, &w);
    tokio::spawn(w.clone().connect_loop());
    tokio::spawn(w.clone().return_loop());
    tracing::info!(session = %w.session, tasks = %o.tasks, "worker {} listening on {public}", w.hostname);
    let stop = w.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            api::server::until_stopped(&stop.shutdown).await;
        })
        .await
        .context("serving the worker API")
}

impl Worker {
    /// `GET /metrics`: whether `authorization` may read them, then the text.
    pub(crate) fn metrics(&self, authorization: Option<&str>) -> Result<String, String> {
        if !self.metrics_without_token {
            let perms = stores::auth::permissions_from_header(&self.secret, authorization)?;
            if !perms.contains(&stores::Permission::Read) {
                return Err("this token lacks read permission".into());
            }
        }
        let paths: Vec<telemetry::sealer::PathGauges> = self
            .store
            .paths()
            .into_iter()
            .map(|(id, _, meta)| {
                let st = self.store.stat_recent(&id).unwrap_or_default();
                telemetry::sealer::PathGauges {
                    id: id.0,
                    seal: meta.can_seal,
                    store: meta.can_store,
                    capacity_bytes: st.capacity,
                    available_bytes: st.available,
                    reserved_bytes: st.reserved,
                }
            })
            .collect();
        Ok(self.metrics.render(&paths))
    }

    /// What a call's processor reports goes into its running entry and on to the sealer, in
    /// order (one sender per call, ending with the call's engine).
    fn progress_reporter(
        self: Arc<Self>,
        call_id: String,
    ) -> Arc<dyn Fn(resources::Progress) + Send + Sync> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<resources::Progress>();
        let (sealer, id) = (self.sealer.clone(), call_id.clone());
        tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                if let Err(e) = sealer.request::<m::WorkerProgress>((id.clone(), p)).await {
                    tracing::debug!(call = %id, "progress {p} not told to the sealer: {e}");
                }
            }
        });
        Arc::new(move |p| {
            if let Some(r) = self
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(&call_id)
            {
                r.progress = Some(p);
            }
            let _ = tx.send(p);
        })
    }

    fn info(&self) -> WorkerInfo {
        WorkerInfo {
            hostname: self.hostname.clone(),
            session: self.session.clone(),
            enabled: true,
            resources: self.resources.clone(),
            table: self.table.clone(),
            tasks: *self.tasks.lock().unwrap_or_else(|e| e.into_inner()),
            paths: paths_of(&self.store),
            url: self.url.clone(),
            fetches: self.remote.fetch_count(),
            sdr: proofs::SdrMode::of(self.procs.kind()),
            topology: self.topology.clone(),
            cpus: Some(self.cpus.clone()),
            task_cpus: self.task_cpus.clone(),
            running: self
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .cloned()
                .collect(),
        }
    }

    /// Keeps this worker registered with the sealer ([`crate::link`]).
    async fn connect_loop(self: Arc<Self>) {
        let me = self.clone();
        crate::link::keep_connected(
            self.sealer.clone(),
            self.url.clone(),
            self.session.clone(),
            self.announce.clone(),
            move || {
                let me = me.clone();
                async move {
                    // A new registration: the sealer may have restarted with an empty index,
                    // so this worker's paths and files are declared again.
                    if let Err(e) = me.store.redeclare().await {
                        tracing::warn!("declaring storage to the sealer: {e}");
                    }
                    me.returns.notify_one();
                }
            },
            || {},
            crate::link::health_watch(self.store.clone()),
        )
        .await
    }

    /// Returns finished calls' results to the sealer until each is taken.
    async fn return_loop(self: Arc<Self>) {
        loop {
            let _ = tokio::time::timeout(Duration::from_secs(1), self.returns.notified()).await;
            let Ok(all) = self.calls.all() else { continue };
            for c in all.iter().filter(|c| c.result.is_some()) {
                if !self.give_back(c).await {
                    break;
                }
            }
        }
    }

    /// Returns a finished call's result to the sealer; once taken, the record is deleted.
    async fn give_back(&self, c: &WorkerCall) -> bool {
        let Some(result) = c.result.clone() else {
            return false;
        };
        let sent = self
            .sealer
            .request::<m::WorkerReturn>((c.call_id.clone(), result, Some(c.runs.clone())))
            .await;
        match sent {
            Ok(_) => {
                let _ = self.calls.retire(&c.call_id);
                true
            }
            Err(e) => {
                tracing::debug!(call = %c.call_id, "returning the result failed, will retry: {e}");
                false
            }
        }
    }

    fn execute(
        self: &Arc<Self>,
        call_id: String,
        call: TaskCall,
        place: Option<Place>,
    ) -> Result<(), TaskError> {
        let t = call.task();
        if !self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(t)
        {
            return Err(TaskError::temporary(format!(
                "task type {} is disabled on this worker",
                t.short()
            )));
        }
        let db = |e: anyhow::Error| TaskError::temporary(format!("worker metadata store: {e}"));
        if self.calls.known(&call_id).map_err(db)? {
            return Ok(()); // sent again by a restarted sealer: it runs once
        }
        let rec = WorkerCall {
            call_id,
            call,
            result: None,
            runs: Vec::new(),
        };
        self.calls.put(&rec).map_err(db)?;
        match &rec.call {
            TaskCall::WindowPoSt {
                deadline, sectors, ..
            } => {
                tracing::info!(call = %rec.call_id, "running WDP for deadline {deadline} ({} sectors)", sectors.len())
            }
            TaskCall::WinningPoSt { epoch, .. } => {
                tracing::info!(call = %rec.call_id, "running WNP for epoch {epoch}")
            }
            c => {
                tracing::info!(call = %rec.call_id, "running {}", c.describe())
            }
        }
        // Unplaced (a worker whose layout the sealer does not know, a call sent again after the
        // sealer's restart): still kept to its task type's CPUs from worker.toml.
        let place = place.or_else(|| {
            self.task_cpus.get(&rec.call.task()).map(|c| Place {
                cpus: c.clone(),
                gpu: None,
            })
        });
        let mut placement = Placement::of(rec.call.task(), place.clone(), self.topology.as_ref());
        let (env, numa) = self.config.for_task(rec.call.task());
        placement.env.extend(env);
        placement.numa = numa;
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                rec.call_id.clone(),
                RunningCall {
                    call_id: rec.call_id.clone(),
                    task: rec.call.task(),
                    call: rec.call.describe(),
                    place,
                    progress: None,
                },
            );
        let me = self.clone();
        let task = rec.call.task().short();
        self.metrics.started(task);
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let report = me.clone().progress_reporter(rec.call_id.clone());
            let engine = Arc::new(me.procs.engine(placement).with_progress(report.clone()));
            let dyn_engine: Arc<dyn Engine> = engine.clone();
            let result =
                exec::execute_reporting(&me.remote, &dyn_engine, rec.call.clone(), &*report).await;
            me.metrics
                .returned(task, result.is_ok(), started.elapsed().as_secs_f64());
            for r in engine.runs() {
                me.metrics.child_ran(task, r.peak_rss);
            }
            for kind in engine.crashes() {
                me.metrics.child_crashed(task, kind);
            }
            me.running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&rec.call_id);
            let done = WorkerCall {
                result: Some(result),
                runs: engine.runs(),
                ..rec
            };
            if let Err(e) = me.calls.put(&done) {
                tracing::error!("recording the result of {}: {e}", done.call_id);
            }
            // Straight back to the sealer; the return loop retries what does not get through.
            if !me.give_back(&done).await {
                me.returns.notify_one();
            }
        });
        Ok(())
    }
}

/// The CPUs a worker may use: `--cpus` where given (each online and in this process's affinity
/// mask), else its affinity mask.
fn allowed_cpus(asked: Option<&CpuSet>, topo: Option<&Topology>) -> Result<CpuSet> {
    let mask = processor::affinity::current().context("reading this process's CPU affinity")?;
    let Some(asked) = asked else {
        return Ok(mask);
    };
    if asked.is_empty() {
        return Err(anyhow!("--cpus: an empty list"));
    }
    if let Some(t) = topo {
        let offline: CpuSet = asked.0.difference(&t.cpus.0).copied().collect();
        if !offline.is_empty() {
            return Err(anyhow!(
                "--cpus {asked}: CPUs {offline} are not online on this machine (online: {})",
                t.cpus
            ));
        }
    }
    let outside: CpuSet = asked.0.difference(&mask.0).copied().collect();
    if !outside.is_empty() {
        return Err(anyhow!(
            "--cpus {asked}: CPUs {outside} are outside this process's affinity mask {mask} \
             (taskset, a cgroup cpuset or the container's CPUs)"
        ));
    }
    Ok(asked.clone())
}

/// Every method a worker serves: its contract definition and handler.
fn handlers() -> Handlers<Arc<Worker>> {
    Handlers::<Arc<Worker>>::default()
        .on::<m::Version, _, _>(|_, ()| async {
            Ok(VersionInfo {
                version: concat!("worker ", env!("CARGO_PKG_VERSION")).into(),
                api_version: "v0".into(),
            })
        })
        .on::<m::Session, _, _>(|w, ()| async move { Ok(w.session.clone()) })
        .on::<m::WorkerInfoCall, _, _>(|w, ()| async move { Ok(w.info()) })
        .on::<m::WorkerFetch, _, _>(|w, (sector, need, key)| async move {
            let report: Arc<dyn Fn(resources::Progress) + Send + Sync> = match key {
                Some(key) => w.clone().progress_reporter(key),
                None => Arc::new(|_| {}),
            };
            exec::fetch_reporting(&w.remote, &sector, need, &*report)
                .await
                .map_err(|e| RpcError::task(&e))
        })
        .on::<m::WorkerExecute, _, _>(|w, (id, call, place)| async move {
            w.execute(id, call, place).map_err(|e| RpcError::task(&e))
        })
        .on::<m::WorkerTaskEnable, _, _>(|w, (t,)| async move { w.set_task(&t, true) })
        .on::<m::WorkerTaskDisable, _, _>(|w, (t,)| async move { w.set_task(&t, false) })
        .on::<m::StorageAttach, _, _>(|w, (a,)| async move {
            let opts = a.options();
            let id = w
                .store
                .attach(Path::new(&a.path), &opts)
                .await
                .map_err(RpcError::app)?;
            w.announce.notify_one();
            Ok(id.0)
        })
        .on::<m::StorageDetachLocal, _, _>(|w, (path,)| async move {
            let id = w
                .store
                .detach(Path::new(&path))
                .await
                .map_err(RpcError::app)?;
            w.announce.notify_one();
            Ok(id.0)
        })
        .on::<m::Shutdown, _, _>(|w, ()| async move {
            w.shutdown.notify_one();
            Ok(())
        })
}

impl Worker {
    /// `tasks enable|disable`: the sealer's scheduler learns it now, not at a restart.
    fn set_task(&self, t: &str, on: bool) -> Result<(), RpcError> {
        let t: TaskType = t.parse().map_err(RpcError::app)?;
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        if on {
            tasks.insert(t);
        } else {
            tasks.remove(t);
        }
        drop(tasks);
        self.announce.notify_one();
        Ok(())
    }
}

fn unhex(s: &str) -> Result<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(s.get(i..i + 2).unwrap_or("zz"), 16)
                .map_err(|_| anyhow!("malformed secret from the sealer"))
        })
        .collect()
}

/// The local address used to reach `addr` (what other machines can reach this one on).
fn outbound_ip(addr: &str) -> Option<String> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect(addr).ok()?;
    Some(s.local_addr().ok()?.ip().to_string())
}

/// `<repo>/api` and `<repo>/token`: how the CLI reaches the running worker.
pub fn own_api(repo: &Path) -> Result<ApiInfo> {
    let addr = std::fs::read_to_string(repo.join("api")).with_context(|| {
        format!(
            "no worker address in {} (is `worker run` running with this repo?)",
            repo.join("api").display()
        )
    })?;
    let token = std::fs::read_to_string(repo.join("token"))?;
    Ok(ApiInfo {
        token: token.trim().to_string(),
        addr: addr.trim().to_string(),
    })
}

/// The effective options, once at start, in one block: what `worker run` was given, what the
/// environment decides (resource overrides, SDR mode, parameter cache) and the storage paths.
fn log_options(repo: &Path, o: &Options, w: &Worker) {
    use std::fmt::Write;
    let mut b = String::new();
    let _ = writeln!(b, "repo: {}", repo.display());
    let _ = writeln!(b, "sealer: {}", o.sealer.addr);
    let _ = writeln!(b, "listen: {} (advertised {})", o.listen, w.url);
    let _ = writeln!(b, "name: {}", w.hostname);
    let _ = writeln!(b, "task types: {}", o.tasks);
    let _ = writeln!(
        b,
        "no-local-storage: {}; no-swap: {}; parallel-fetch-limit: {}",
        o.no_local_storage, o.no_swap, o.parallel_fetch_limit
    );
    let _ = writeln!(b, "proof engine: {}", w.procs.kind());
    let sdr = proofs::SdrMode::describe(proofs::SdrMode::of(w.procs.kind()));
    let _ = writeln!(b, "PC1 SDR: {sdr}");
    let _ = writeln!(
        b,
        "parameter cache: {}",
        proofs::params::cache_dir().display()
    );
    let base = ResourceTable::default();
    let overrides = TaskType::ALL
        .iter()
        .flat_map(|t| resources::SectorSize::ALL.iter().map(move |s| (*t, *s)))
        .filter(|(t, s)| w.table.get(*t, *s) != base.get(*t, *s))
        .count();
    let _ = writeln!(
        b,
        "resource table: {overrides} task/size entries differ from lotus's defaults (`worker resources`)"
    );
    for (id, path, meta) in w.store.paths() {
        let _ = writeln!(
            b,
            "path {id}: {} (seal: {}, store: {}, weight {})",
            path.display(),
            meta.can_seal,
            meta.can_store,
            meta.weight
        );
    }
    tracing::info!("effective options:\n{}", b.trim_end());
}

/// The worker repo's env names, first set wins: ours, then lotus-worker's and venus-worker's.
pub const REPO_ENV: [&str; 3] = ["WORKER_PATH", "LOTUS_WORKER_PATH", "VENUS_WORKER_PATH"];

/// The repo when `--worker-repo` is not given: the first of [`REPO_ENV`] that is set, else
/// `~/.worker`.
pub fn default_repo() -> PathBuf {
    repo_from_env(|k| std::env::var_os(k))
}

fn repo_from_env(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    let set: Vec<(&str, PathBuf)> = REPO_ENV
        .iter()
        .filter_map(|k| {
            var(k)
                .filter(|v| !v.is_empty())
                .map(|v| (*k, PathBuf::from(v)))
        })
        .collect();
    if let Some((name, path)) = set.first() {
        for (other, p) in &set[1..] {
            if p != path {
                tracing::warn!(
                    "{name}={} and {other}={} differ: using {name}",
                    path.display(),
                    p.display()
                );
            }
        }
        return path.clone();
    }
    var("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/root".into())
        .join(".worker")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(vars: &[(&str, &str)]) -> PathBuf {
        repo_from_env(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| std::ffi::OsString::from(v))
        })
    }

    #[test]
    fn lotus_and_venus_repo_names_are_aliases() {
        assert_eq!(repo(&[("HOME", "/h")]), PathBuf::from("/h/.worker"));
        assert_eq!(repo(&[("LOTUS_WORKER_PATH", "/l")]), PathBuf::from("/l"));
        assert_eq!(repo(&[("VENUS_WORKER_PATH", "/v")]), PathBuf::from("/v"));
        // Ours first, then lotus's, then venus's; an empty value is unset.
        let all = [
            ("WORKER_PATH", "/w"),
            ("LOTUS_WORKER_PATH", "/l"),
            ("VENUS_WORKER_PATH", "/v"),
        ];
        assert_eq!(repo(&all), PathBuf::from("/w"));
        assert_eq!(repo(&all[1..]), PathBuf::from("/l"));
        assert_eq!(
            repo(&[("WORKER_PATH", ""), ("VENUS_WORKER_PATH", "/v")]),
            PathBuf::from("/v")
        );
    }
}
