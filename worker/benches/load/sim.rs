//! Simulated workers: many in this process, each with its own port, session, resources and
//! storage path, serving the worker API (`Session`, `WorkerInfo`, `WorkerFetch`,
//! `WorkerExecute`, ...) over HTTP on loopback and returning results with `WorkerReturn`, as
//! `worker run` does. Tasks run on the in-process mock engine with per-task-type delays (no
//! processor children: a thousand workers share this machine's two cores with the sealer).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::contract::Handlers;
use api::methods as m;
use api::rpc::RpcError;
use api::{ApiInfo, Client, RunningCall, TaskCall, VersionInfo, WorkerInfo};
use proofs::{Engine, MockEngine};
use resources::{ResourceTable, SectorSize, TaskSet, TaskType, WorkerResources};
use stores::{AttachOptions, LocalStore, Remote, Secret};

/// What the simulated workers saw, together.
#[derive(Default)]
pub struct Seen {
    /// `WorkerReturn` round trips, ms.
    pub returns_ms: Mutex<Vec<f64>>,
    pub return_errors: AtomicU64,
    /// Every `WorkerExecute` taken, by call ID (a restarted sealer sends a running call again:
    /// it runs once, as on a worker).
    pub calls: Mutex<HashMap<String, u32>>,
    /// Tasks run, by (sector, task type): the same step run twice shows here.
    pub steps: Mutex<HashMap<(u64, TaskType), u32>>,
    pub failed: AtomicU64,
    pub heartbeats: AtomicU64,
    /// Every sector task run, in the order they ended: what a bad count names.
    pub runs: Mutex<Vec<Run>>,
}

/// One sector task a simulated worker ran.
pub struct Run {
    pub sector: u64,
    pub task: TaskType,
    pub worker: String,
    pub call_id: String,
    /// When it ended.
    pub ended: Instant,
    /// Its error, when it failed.
    pub error: Option<String>,
}

pub struct Sim {
    session: String,
    hostname: String,
    url: String,
    resources: WorkerResources,
    table: ResourceTable,
    tasks: TaskSet,
    store: LocalStore,
    remote: Arc<Remote>,
    engine: Arc<dyn Engine>,
    sealer: Arc<Client>,
    running: Mutex<BTreeMap<String, RunningCall>>,
    seen: Arc<Seen>,
    /// While set, PC1s stay running (the restart phase).
    hold: std::sync::OnceLock<Arc<AtomicBool>>,
}

/// The sealer's figures a simulated worker announces: a 64-core, 512 GiB sealing box
/// (no GPU), whose table lets the 2KiB tasks take no threads (only the scheduler and memory
/// limit how many run at once, as the dispatch benchmark's `FREE_THREADS`).
fn box_resources() -> (WorkerResources, ResourceTable) {
    let res = WorkerResources {
        mem_physical: 512 << 30,
        mem_used: 2 << 30,
        mem_swap: 0,
        mem_swap_used: 0,
        cpus: 64,
        gpus: Vec::new(),
    };
    let mut table = ResourceTable::default();
    for t in TaskType::ALL {
        let r = table.get_mut(t, SectorSize::S2KiB);
        r.max_parallelism = 0;
        r.max_parallelism_gpu = 0;
    }
    (res, table)
}

impl Sim {
    /// Starts simulated worker `i` under `dir`: opens and attaches its sealing path and the
    /// shared store (`dir/shared`, made by the first), listens on a free loopback port and
    /// serves. Registration is left to the caller.
    pub async fn start(
        i: usize,
        dir: &Path,
        sealer: &ApiInfo,
        secret: Secret,
        delays: &[(TaskType, Duration)],
        seen: Arc<Seen>,
    ) -> anyhow::Result<Arc<Sim>> {
        let repo = dir.join(format!("w{i}"));
        std::fs::create_dir_all(repo.join("local"))?;
        // One HTTP client for all of them (its connections pooled): a thousand pools of their
        // own would hold more files open than this process may (its limit, 20,000 here, is
        // also the sealer's: it inherits it).
        static HTTP: std::sync::OnceLock<Client> = std::sync::OnceLock::new();
        // One client for all the simulated workers: about 4 idle connections each to the
        // sealer (a worker's own client keeps up to `api::client::IDLE_PER_HOST`).
        let base =
            HTTP.get_or_init(|| Client::pooled(sealer, "/rpc/v0", Duration::from_secs(60), 4096));
        let client = Arc::new(base.for_other(sealer));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let index = Arc::new(api::index::IndexClient {
            client: client.clone(),
        });
        let store = LocalStore::open(
            &repo.join("storage.json"),
            index,
            vec![format!("http://{addr}/remote")],
        )
        .await?;
        // Its own sealing path, and the store every worker mounts (as an NFS share: one path,
        // one storage ID): finished sectors go there, and any worker can prove them.
        let seal = AttachOptions {
            init: true,
            seal: true,
            ..Default::default()
        };
        store.attach(&repo.join("local"), &seal).await?;
        let shared = AttachOptions {
            init: !dir.join("shared").join("sectorstore.json").exists(),
            store: true,
            ..Default::default()
        };
        std::fs::create_dir_all(dir.join("shared"))?;
        store.attach(&dir.join("shared"), &shared).await?;
        let remote = Arc::new(Remote::new(store.clone(), sealer.token.clone(), 4));
        let mut engine = MockEngine::default();
        for (t, d) in delays {
            engine = engine.with_delay(*t, *d);
        }
        let (resources, table) = box_resources();
        let mut session = [0u8; 16];
        getrandom::fill(&mut session)?;
        let sim = Arc::new(Sim {
            session: session.iter().map(|b| format!("{b:02x}")).collect(),
            hostname: format!("sim-{i:04}"),
            url: format!("http://{addr}/rpc/v0"),
            resources,
            table,
            tasks: TaskType::ALL.iter().copied().collect(),
            store: store.clone(),
            remote,
            engine: Arc::new(engine),
            sealer: client,
            running: Mutex::new(BTreeMap::new()),
            seen,
            hold: std::sync::OnceLock::new(),
        });
        let (files, _) = stores::http::router(store, secret.clone());
        let app = api::server::RpcServer::new(secret, handlers(), sim.clone())
            .router(&["/rpc/v0"])
            .merge(files);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(sim)
    }

    /// Keeps this worker registered, as `worker run` does.
    pub async fn stay_connected(self: Arc<Self>) {
        let store = self.store.clone();
        let seen = self.seen.clone();
        worker::link::keep_connected(
            self.sealer.clone(),
            self.url.clone(),
            self.session.clone(),
            Arc::new(tokio::sync::Notify::new()),
            move || {
                let store = store.clone();
                async move {
                    let _ = store.redeclare().await;
                }
            },
            move || {
                seen.heartbeats.fetch_add(1, Ordering::Relaxed);
            },
            worker::link::health_watch(self.store.clone()),
        )
        .await
    }

    pub fn set_hold(&self, hold: Arc<AtomicBool>) {
        let _ = self.hold.set(hold);
    }

    fn info(&self) -> WorkerInfo {
        WorkerInfo {
            hostname: self.hostname.clone(),
            session: self.session.clone(),
            enabled: true,
            resources: self.resources.clone(),
            table: self.table.clone(),
            tasks: self.tasks,
            paths: worker::daemon::paths_of(&self.store),
            url: self.url.clone(),
            fetches: self.remote.fetch_count(),
            sdr: None,
            topology: None,
            cpus: None,
            task_cpus: BTreeMap::new(),
            running: self.lock().values().cloned().collect(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, RunningCall>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn execute(self: &Arc<Self>, id: String, call: TaskCall) {
        let first = {
            let mut calls = self.seen.calls.lock().unwrap();
            let n = calls.entry(id.clone()).or_insert(0);
            *n += 1;
            *n == 1
        };
        if !first {
            return; // sent again by a restarted sealer: it runs once, as on a worker
        }
        self.lock().insert(
            id.clone(),
            RunningCall {
                call_id: id.clone(),
                task: call.task(),
                call: call.describe(),
                place: None,
                progress: None,
            },
        );
        let me = self.clone();
        tokio::spawn(async move {
            let step = call.sector().map(|s| (s.number, call.task()));
            if let (Some(hold), TaskType::PreCommit1) = (me.hold.get(), call.task()) {
                while hold.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            let result = exec::execute(&me.remote, &me.engine, call).await;
            if result.is_err() {
                me.seen.failed.fetch_add(1, Ordering::Relaxed);
            } else if let Some(step) = step {
                *me.seen.steps.lock().unwrap().entry(step).or_insert(0) += 1;
            }
            if let Some((sector, task)) = step {
                me.seen.runs.lock().unwrap().push(Run {
                    sector,
                    task,
                    worker: me.hostname.clone(),
                    call_id: id.clone(),
                    ended: Instant::now(),
                    error: result.as_ref().err().map(|e| format!("{e:?}")),
                });
            }
            me.lock().remove(&id);
            // Returned until the sealer takes it, as `worker run` does.
            loop {
                let t0 = Instant::now();
                let r = me
                    .sealer
                    .request::<m::WorkerReturn>((id.clone(), result.clone(), None))
                    .await;
                match r {
                    Ok(()) => {
                        let ms = t0.elapsed().as_secs_f64() * 1000.0;
                        me.seen.returns_ms.lock().unwrap().push(ms);
                        return;
                    }
                    Err(_) => {
                        me.seen.return_errors.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }
}

fn handlers() -> Handlers<Arc<Sim>> {
    Handlers::<Arc<Sim>>::default()
        .on::<m::Version, _, _>(|_, ()| async {
            Ok(VersionInfo {
                version: "simulated worker".into(),
                api_version: "v0".into(),
            })
        })
        .on::<m::Session, _, _>(|w, ()| async move { Ok(w.session.clone()) })
        .on::<m::WorkerInfoCall, _, _>(|w, ()| async move { Ok(w.info()) })
        .on::<m::WorkerFetch, _, _>(|w, (sector, need, _key)| async move {
            exec::fetch(&w.remote, &sector, need)
                .await
                .map_err(|e| RpcError::task(&e))
        })
        .on::<m::WorkerExecute, _, _>(|w, (id, call, _place)| async move {
            w.execute(id, call);
            Ok(())
        })
}
