//! Remote workers on the sealer's side: the scheduler's view of every machine's storage (through
//! the sector index), the handle that sends calls to a worker's API and waits for its
//! `WorkerReturn`, registration (`WorkerConnect`; a restarted worker connects with a new
//! session) and the workers' heartbeats (`WorkerHeartbeat`), watched for silent and lost ones.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::methods as m;
use api::tasks::{TaskError, TaskResult};
use api::{ApiInfo, Client, TaskCall, WorkerInfo};
use async_trait::async_trait;
use resources::topology::Place;
use resources::{SectorRef, SectorSize, TaskSet, TaskType};
use sched::{Refusal, Selector, StorageView, TaskRequest, WorkerId, WorkerSpec};
use stores::{FileType, FileTypes, MemIndex, PathKind, StorageId};

use crate::calls::CallTracker;
use crate::heartbeat::{self, Verdict};
use crate::manager::{Manager, WorkerHandle};

/// Heartbeat: each worker beats every [`api::HEARTBEAT`] (`WorkerHeartbeat`, worker-initiated:
/// one small call in per worker, none out), and the watch looks at every worker's last beat
/// each `WATCH_EVERY`. Silent for `SILENT_AFTER` (a beat missed, the next one due), a worker
/// is disconnected and its unstarted work requeued; for `LOST_AFTER` (five beats' time), it is
/// removed and what it was running fails and is retried elsewhere. Many workers silent at once
/// are judged as [`heartbeat::judge`] says.
pub const WATCH_EVERY: Duration = Duration::from_secs(1);
pub const SILENT_AFTER: Duration = Duration::from_secs(api::HEARTBEAT.as_secs() * 2);
pub const LOST_AFTER: Duration = Duration::from_secs(api::HEARTBEAT.as_secs() * 5);

/// How long a `WorkerFetch` may take: the worker holds the call until a sector's files are
/// in place (a 32GiB sector's over a slow network takes many minutes), so its liveness is
/// judged by its heartbeat, and a removed worker's fetch fails at once, not by this limit.
pub const FETCH_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// Which workers can reach which storage paths, and the index that knows what is on them; which
/// workers take PoSt, and which one is the sealer's own.
pub struct ClusterView {
    pub index: Arc<MemIndex>,
    paths: Mutex<Reach>,
    post: Mutex<PoStWorkers>,
}

/// Which paths each worker reaches, and the other way round (a sector's holders are found
/// from its paths without going through every worker).
#[derive(Default)]
struct Reach {
    by_worker: HashMap<WorkerId, Vec<StorageId>>,
    by_path: HashMap<StorageId, Vec<WorkerId>>,
}

impl Reach {
    fn set(&mut self, worker: WorkerId, paths: Vec<StorageId>) {
        self.remove(worker);
        for p in &paths {
            self.by_path.entry(p.clone()).or_default().push(worker);
        }
        self.by_worker.insert(worker, paths);
    }

    fn remove(&mut self, worker: WorkerId) {
        for p in self.by_worker.remove(&worker).unwrap_or_default() {
            if let Some(ws) = self.by_path.get_mut(&p) {
                ws.retain(|w| *w != worker);
                if ws.is_empty() {
                    self.by_path.remove(&p);
                }
            }
        }
    }

    fn of(&self, worker: WorkerId) -> &[StorageId] {
        self.by_worker.get(&worker).map_or(&[], |v| v.as_slice())
    }
}

#[derive(Default)]
struct PoStWorkers {
    /// The sealer's in-process worker.
    builtin: Option<WorkerId>,
    /// Worker daemons that take WDP or WNP, and whether they answer now.
    remote: HashMap<WorkerId, (TaskSet, bool)>,
}

impl ClusterView {
    pub fn new(index: Arc<MemIndex>) -> Arc<ClusterView> {
        Arc::new(ClusterView {
            index,
            paths: Mutex::new(Reach::default()),
            post: Mutex::new(PoStWorkers::default()),
        })
    }

    pub fn set_paths(&self, worker: WorkerId, paths: Vec<StorageId>) {
        self.lock().set(worker, paths);
    }

    /// The sealer's own worker: it proves only when no worker daemon that takes the PoSt
    /// kind can reach the sectors (as lotus-miner's built-in prover).
    pub fn set_builtin(&self, worker: WorkerId) {
        self.post_lock().builtin = Some(worker);
    }

    /// A worker daemon's task types, as it announced them.
    pub fn set_tasks(&self, worker: WorkerId, tasks: TaskSet) {
        let mut g = self.post_lock();
        if tasks.contains(TaskType::WindowPoSt) || tasks.contains(TaskType::WinningPoSt) {
            g.remote.insert(worker, (tasks, true));
        } else {
            g.remote.remove(&worker);
        }
    }

    /// A worker stopped answering its heartbeat (`false`) or is back: a silent PoSt worker does
    /// not keep the sealer's own worker from proving.
    pub fn set_connected(&self, worker: WorkerId, connected: bool) {
        if let Some(w) = self.post_lock().remote.get_mut(&worker) {
            w.1 = connected;
        }
    }

    pub fn forget(&self, worker: WorkerId) {
        self.lock().remove(worker);
        self.post_lock().remote.remove(&worker);
    }

    fn post_lock(&self) -> std::sync::MutexGuard<'_, PoStWorkers> {
        self.post.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Paths no remaining worker can reach. A restarted worker's are unhealthy until it
    /// declares them again (nobody fetches from them meanwhile); a lost worker's leave the index
    /// with every file they held (`detach`): what only they held is lost, and the sectors that
    /// need it are rebuilt instead of waiting for a dead address.
    fn orphans(&self, paths: &[api::WorkerPath], why: &str, detach: bool) {
        let reach = self.lock();
        let orphaned: Vec<&api::WorkerPath> = paths
            .iter()
            .filter(|p| !reach.by_path.contains_key(&p.id))
            .collect();
        drop(reach);
        for p in orphaned {
            if !detach {
                self.index.mark_unhealthy(&p.id, why);
                continue;
            }
            match self.index.detach_now(&p.id, why) {
                Ok(held) if !held.is_empty() => tracing::warn!(
                    storage = %p.id,
                    sectors = held.len(),
                    "dropped from the index with its sector files: {why}"
                ),
                Ok(_) => {}
                Err(e) => tracing::debug!(storage = %p.id, "{e}"),
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Reach> {
        self.paths.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The paths `worker` reaches.
    pub fn paths_of(&self, worker: WorkerId) -> Vec<StorageId> {
        self.lock().of(worker).to_vec()
    }

    /// Whether `worker` has a path of `kind` with room for `types` of a sector of `size`.
    pub fn has_room(
        &self,
        worker: WorkerId,
        kind: PathKind,
        types: FileTypes,
        size: SectorSize,
    ) -> bool {
        let paths = self.lock().of(worker).to_vec();
        self.index
            .has_room_now(&paths, kind, types.overhead(size, kind))
    }
}

impl StorageView for ClusterView {
    fn holders(&self, sector: &SectorRef, out: &mut Vec<WorkerId>) {
        // Once a sector has a replica, the steps that follow want it (and its cache): only the
        // paths with the sealed file count. Before that, the unsealed file.
        let all = self.index.holders_now(sector.id());
        let sealed = all.iter().any(|(_, t)| t.contains(FileType::Sealed));
        let held: HashSet<StorageId> = all
            .into_iter()
            .filter(|(_, t)| !sealed || t.contains(FileType::Sealed))
            .map(|(id, _)| id)
            .collect();
        if held.is_empty() {
            return;
        }
        let reach = self.lock();
        for w in held.iter().filter_map(|p| reach.by_path.get(p)).flatten() {
            if !out.contains(w) {
                out.push(*w);
            }
        }
    }

    fn can_allocate(&self, worker: WorkerId, size: SectorSize) -> bool {
        self.has_room(worker, PathKind::Sealing, FileTypes::ALL, size)
    }
}

/// A worker with a long-term storage path that has room for a finalized sector (GET).
pub struct StoreSelector {
    pub view: Arc<ClusterView>,
}

impl Selector for StoreSelector {
    fn ok(&self, req: &TaskRequest, worker: WorkerId, _spec: &WorkerSpec) -> bool {
        self.view
            .has_room(worker, PathKind::Storage, FileTypes::SEALED, req.size)
    }

    fn refusal(&self, req: &TaskRequest, worker: WorkerId, spec: &WorkerSpec) -> Option<Refusal> {
        (!self.ok(req, worker, spec)).then_some(Refusal::NoRoomToStore)
    }
}

/// A worker holding the sealed file and cache of every sector a PoSt covers, on its own paths
/// (PoSt reads the challenged leaves where the files are). Sectors no path holds any more do
/// not count: they cannot be proven anywhere, and the PoSt names them.
pub struct PoStSelector {
    pub view: Arc<ClusterView>,
    pub sectors: Vec<SectorRef>,
}

impl PoStSelector {
    pub fn new(view: &Arc<ClusterView>, targets: &[api::tasks::PoStTarget]) -> Arc<PoStSelector> {
        Arc::new(PoStSelector {
            view: view.clone(),
            sectors: targets.iter().map(|t| t.sector).collect(),
        })
    }
}

impl PoStSelector {
    /// Whether `worker` reaches the sealed file and cache of every sector.
    fn reaches(&self, worker: WorkerId) -> bool {
        let paths: HashSet<StorageId> = self.view.lock().of(worker).iter().cloned().collect();
        self.sectors.iter().all(|s| {
            let holders: Vec<StorageId> = self
                .view
                .index
                .holders_now(s.id())
                .into_iter()
                .filter(|(_, t)| t.contains(FileType::Sealed) && t.contains(FileType::Cache))
                .map(|(id, _)| id)
                .collect();
            holders.is_empty() || holders.iter().any(|id| paths.contains(id))
        })
    }
}

impl Selector for PoStSelector {
    fn ok(&self, req: &TaskRequest, worker: WorkerId, _spec: &WorkerSpec) -> bool {
        if !self.reaches(worker) {
            return false;
        }
        let (builtin, remote): (Option<WorkerId>, Vec<WorkerId>) = {
            let g = self.view.post_lock();
            let remote = g
                .remote
                .iter()
                .filter(|(_, (t, connected))| *connected && t.contains(req.task))
                .map(|(id, _)| *id)
                .collect();
            (g.builtin, remote)
        };
        // The in-process worker shares the sealer's process (and its proof thread pools) with
        // C2: a 2KiB WindowPoSt started 20 s into a C2 there took 23.7 s, 2.8 s in a process
        // of its own (1.4 s alone). A PoSt worker that can do the job takes it instead.
        builtin != Some(worker) || !remote.into_iter().any(|w| self.reaches(w))
    }

    fn refusal(&self, req: &TaskRequest, worker: WorkerId, spec: &WorkerSpec) -> Option<Refusal> {
        match self.ok(req, worker, spec) {
            true => None,
            false if !self.reaches(worker) => Some(Refusal::SectorsElsewhere),
            false => Some(Refusal::LeftToPoStWorker),
        }
    }
}

/// `WorkerConnect` could not reach the worker that asked to be added.
#[derive(Debug, thiserror::Error)]
#[error("asking the worker at {url} who it is: {source}")]
pub struct ConnectError {
    pub url: String,
    pub source: api::client::ClientError,
}

/// A worker daemon, reached through its JSON-RPC API.
pub struct RemoteWorker {
    pub info: WorkerInfo,
    client: Client,
    /// Where its `WorkerReturn`s arrive.
    calls: Arc<CallTracker>,
    inflight: Mutex<HashSet<String>>,
    /// When its last heartbeat came (or it connected).
    seen: Mutex<std::time::Instant>,
    /// Its heartbeat has been missing for `SILENT_AFTER`.
    silent: std::sync::atomic::AtomicBool,
    /// True once it is removed: its fetches still waiting fail then.
    gone: tokio::sync::watch::Sender<bool>,
}

impl RemoteWorker {
    /// The prepare stage on the worker (`WorkerFetch`); it reports the fetch's progress under
    /// `key`.
    async fn fetch(&self, call: &TaskCall, key: Option<String>) -> Result<(), TaskError> {
        let need = call.inputs();
        let Some(sector) = call.sector().filter(|_| !need.is_empty()) else {
            return Ok(()); // nothing to fetch: spare the round trip
        };
        let mut gone = self.gone.subscribe();
        let fetch = self
            .client
            .request_within::<m::WorkerFetch>((sector, need, key), FETCH_LIMIT);
        let r = tokio::select! {
            r = fetch => r,
            _ = gone.wait_for(|g| *g) => {
                let why = format!("{} was removed while fetching", self.info.hostname);
                return Err(TaskError::worker_lost(why));
            }
        };
        r.map_err(|e| match e {
            // The worker ran the fetch and says why it failed.
            api::ClientError::Rpc(r) => r.task_error(),
            // It could not be asked: the call goes to another worker.
            other => TaskError::worker_lost(other.to_string()),
        })
    }
}

#[async_trait]
impl WorkerHandle for RemoteWorker {
    async fn prepare(&self, call: &TaskCall) -> Result<(), TaskError> {
        self.fetch(call, None).await
    }

    async fn prepare_reporting(&self, call: &TaskCall, key: &str) -> Result<(), TaskError> {
        self.fetch(call, Some(key.to_string())).await
    }

    async fn execute(&self, call_id: &str, call: TaskCall, place: Option<Place>) -> TaskResult {
        self.inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(call_id.to_string());
        let waiting = self.calls.wait(call_id);
        let sent = self
            .client
            .request::<m::WorkerExecute>((call_id.to_string(), call, place))
            .await;
        let r = match sent {
            Ok(()) => waiting.await,
            Err(e) => {
                let why = format!("sending the call to {}: {e}", self.info.hostname);
                let err = Err(match e {
                    // The worker answered and refused it.
                    api::ClientError::Rpc(r) => TaskError::new(r.task_error().kind, why),
                    _ => TaskError::worker_lost(why),
                });
                self.calls.returned(call_id, &err);
                err
            }
        };
        self.inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(call_id);
        r
    }
}

/// The remote workers known, by URL.
#[derive(Default)]
pub struct Workers {
    by_url: Mutex<HashMap<String, (WorkerId, Arc<RemoteWorker>)>>,
    /// The heartbeat watch runs (started with the first worker).
    watching: std::sync::atomic::AtomicBool,
    /// The HTTP client every worker's API client shares.
    http: std::sync::OnceLock<Client>,
}

impl Workers {
    /// Seconds since each worker daemon last answered its heartbeat, by worker ID (`w1`).
    pub fn heartbeat_ages(&self) -> HashMap<String, f64> {
        self.by_url
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|(id, w)| {
                let seen = *w.seen.lock().unwrap_or_else(|e| e.into_inner());
                (id.to_string(), seen.elapsed().as_secs_f64())
            })
            .collect()
    }

    /// `WorkerConnect`: asks the worker at `url` who it is and adds it, replacing an earlier
    /// session at the same URL (a restarted worker). A known session is left as it is.
    pub async fn connect(
        self: &Arc<Self>,
        url: &str,
        token: &str,
        manager: &Arc<Manager>,
        view: &Arc<ClusterView>,
    ) -> Result<(WorkerId, bool), ConnectError> {
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches("/rpc/v0")
            .trim_end_matches('/')
            .to_string();
        let shared = self.http.get_or_init(|| {
            let none = ApiInfo {
                token: String::new(),
                addr: "127.0.0.1:0".into(),
            };
            Client::new(&none, Duration::from_secs(30))
        });
        let client = shared.for_other(&ApiInfo {
            token: token.to_string(),
            addr,
        });
        let info: WorkerInfo = client
            .request::<m::WorkerInfoCall>(())
            .await
            .map_err(|source| ConnectError {
                url: url.to_string(),
                source,
            })?;
        let old = {
            let g = self.by_url.lock().unwrap_or_else(|e| e.into_inner());
            g.get(url).cloned()
        };
        if let Some((id, w)) = &old {
            if w.info.session == info.session {
                *w.seen.lock().unwrap_or_else(|e| e.into_inner()) = std::time::Instant::now();
                // Paths attached and task types enabled or disabled since the last announcement.
                view.set_paths(*id, info.paths.iter().map(|p| p.id.clone()).collect());
                view.set_tasks(*id, info.tasks);
                manager.set_tasks(*id, info.tasks);
                return Ok((*id, false));
            }
            self.drop_worker(
                (url, *id),
                manager,
                view,
                "the worker restarted (new session)",
                false,
            );
        }
        let spec = WorkerSpec {
            name: info.hostname.clone(),
            resources: info.resources.clone(),
            table: info.table.clone(),
            tasks: info.tasks,
            cpus: info.topology.clone().map(|t| {
                let allowed = info.cpus.clone().unwrap_or_else(|| t.cpus.clone());
                (t, allowed)
            }),
            task_cpus: info.task_cpus.clone(),
        };
        let handle = Arc::new(RemoteWorker {
            info: info.clone(),
            client,
            calls: manager.calls().clone(),
            inflight: Mutex::new(HashSet::new()),
            seen: Mutex::new(std::time::Instant::now()),
            silent: Default::default(),
            gone: tokio::sync::watch::channel(false).0,
        });
        let id = manager.add_worker(spec, handle.clone(), false);
        manager.running_already(id, &info.running);
        view.set_paths(id, info.paths.iter().map(|p| p.id.clone()).collect());
        view.set_tasks(id, info.tasks);
        if !info.enabled {
            manager.set_enabled(id, false);
        }
        tracing::info!(worker = %id, host = %info.hostname, session = %info.session, tasks = %info.tasks, "worker connected");
        self.by_url
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(url.to_string(), (id, handle.clone()));
        if !self
            .watching
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let (me, manager, view) = (self.clone(), manager.clone(), view.clone());
            tokio::spawn(async move { me.watch(manager, view).await });
        }
        Ok((id, true))
    }

    /// Drops the worker at `url`: `lost` when its heartbeat has been missing for the removal time
    /// (its paths leave the index; a worker that comes back declares them again), else it
    /// restarted (its paths come back with its new session).
    fn drop_worker(
        &self,
        (url, which): (&str, WorkerId),
        manager: &Arc<Manager>,
        view: &Arc<ClusterView>,
        why: &str,
        lost: bool,
    ) {
        // Only that session: a worker that came back at the same URL meanwhile stays.
        let gone = {
            let mut g = self.by_url.lock().unwrap_or_else(|e| e.into_inner());
            match g.get(url) {
                Some((id, _)) if *id == which => g.remove(url),
                _ => None,
            }
        };
        if let Some((id, w)) = gone {
            tracing::warn!(worker = %id, host = %w.info.hostname, "removing worker: {why}");
            // Its paths first: the steps failed below retry at once and must not be sent to
            // fetch from the lost machine.
            view.forget(id);
            let gone = match lost {
                true => format!(
                    "{} was lost (no heartbeat for {}s)",
                    w.info.hostname,
                    LOST_AFTER.as_secs()
                ),
                false => format!("{} restarted", w.info.hostname),
            };
            view.orphans(&w.info.paths, &gone, lost);
            manager.remove_worker(id, why);
            let ids: Vec<String> = w
                .inflight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned()
                .collect();
            manager.calls().lost(&ids, why);
            // Its fetches still waiting fail last, once nothing sends their retries back here.
            w.gone.send_replace(true);
        }
    }

    /// `WorkerHeartbeat` from the worker at `url`: whether its session is the one known here.
    pub fn beat(&self, url: &str, session: &str) -> bool {
        let g = self.by_url.lock().unwrap_or_else(|e| e.into_inner());
        match g.get(url) {
            Some((_, w)) if w.info.session == session => {
                *w.seen.lock().unwrap_or_else(|e| e.into_inner()) = std::time::Instant::now();
                true
            }
            _ => false,
        }
    }

    /// Every `WATCH_EVERY`, each worker's last heartbeat: silent for `SILENT_AFTER`, it is
    /// disconnected (and connected again when it beats); for `LOST_AFTER`, removed as lost;
    /// many silent at once, judged as [`heartbeat::judge`] says.
    async fn watch(self: Arc<Self>, manager: Arc<Manager>, view: Arc<ClusterView>) {
        use std::sync::atomic::Ordering;
        let mut last = std::time::Instant::now();
        let mut held = false;
        loop {
            tokio::time::sleep(WATCH_EVERY).await;
            // This watch itself ran late: the sealer was stalled, and the beats that came
            // meanwhile may still wait to be read. Nobody is judged on this round.
            let late = last.elapsed() > WATCH_EVERY * 2;
            last = std::time::Instant::now();
            if late {
                tracing::warn!(
                    "the heartbeat watch ran late: the sealer was stalled; no worker judged this round"
                );
                continue;
            }
            let all: Vec<(String, WorkerId, Arc<RemoteWorker>)> = self
                .by_url
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(url, (id, w))| (url.clone(), *id, w.clone()))
                .collect();
            let silences: Vec<Duration> = all
                .iter()
                .map(|(_, _, w)| w.seen.lock().unwrap_or_else(|e| e.into_inner()).elapsed())
                .collect();
            let round = heartbeat::judge(&silences);
            if round.mass != held {
                held = round.mass;
                let n = round
                    .verdicts
                    .iter()
                    .filter(|v| **v == Verdict::Held)
                    .count();
                match held {
                    true => tracing::warn!(
                        "{n} of {} workers silent at once: the sealer's side (its CPU or network) is the likelier cause; nobody is disconnected or removed for up to {}s of silence",
                        all.len(),
                        heartbeat::HOLD_LIMIT.as_secs()
                    ),
                    false => tracing::info!("the mass silence is over: workers are judged one by one again"),
                }
            }
            for ((url, id, w), verdict) in all.into_iter().zip(round.verdicts) {
                let silent = match verdict {
                    Verdict::Held => continue,
                    Verdict::Lost => {
                        self.drop_worker(
                            (&url, id),
                            &manager,
                            &view,
                            "the worker was lost (no heartbeat)",
                            true,
                        );
                        continue;
                    }
                    Verdict::Silent => true,
                    Verdict::Heard => false,
                };
                if w.silent.swap(silent, Ordering::SeqCst) == silent {
                    continue;
                }
                if silent {
                    tracing::warn!(worker = %id, host = %w.info.hostname, "worker not answering: disconnected, its unstarted work is requeued");
                    view.set_connected(id, false);
                    manager.disconnect(id);
                } else {
                    tracing::info!(worker = %id, host = %w.info.hostname, "worker is back");
                    view.set_connected(id, true);
                    manager.reconnect(id);
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use api::tasks::PoStTarget;
    use resources::{SealProof, Subject};
    use stores::{FsStat, SectorIndex, StorageInfo};

    /// A store path (not for sealing) of weight 10, as tests attach it.
    pub(crate) fn path(id: &str) -> StorageInfo {
        StorageInfo {
            id: StorageId(id.into()),
            urls: Vec::new(),
            weight: 10,
            max_storage: 0,
            can_seal: false,
            can_store: true,
            groups: Vec::new(),
            allow_to: Vec::new(),
        }
    }

    /// WindowPoSt over sector 1, held on `store`; the sealer's own worker is 0.
    async fn wdp_of_sector_on_store() -> (Arc<ClusterView>, Arc<PoStSelector>, TaskRequest) {
        let index = Arc::new(MemIndex::default());
        for p in ["store", "elsewhere"] {
            index
                .storage_attach(path(p), FsStat::default())
                .await
                .unwrap();
        }
        let sector = SectorRef::new(1000, 1, SealProof::StackedDrg2KiBV1_1);
        for ft in [FileType::Sealed, FileType::Cache] {
            index
                .storage_declare_sector(&StorageId("store".into()), sector.id(), ft)
                .await
                .unwrap();
        }
        let view = ClusterView::new(index);
        view.set_builtin(WorkerId(0));
        view.set_paths(WorkerId(0), vec![StorageId("store".into())]);
        let selector = PoStSelector::new(
            &view,
            &[PoStTarget {
                sector,
                comm_r: [0; 32],
            }],
        );
        let req = TaskRequest {
            subject: Subject::WindowPoSt {
                miner: 1000,
                deadline: 3,
                check: false,
            },
            size: SectorSize::S2KiB,
            task: TaskType::WindowPoSt,
            priority: 0,
            selector: selector.clone(),
        };
        (view, selector, req)
    }

    fn spec() -> WorkerSpec {
        WorkerSpec {
            name: "w".into(),
            resources: Default::default(),
            table: Default::default(),
            tasks: TaskSet::default(),
            cpus: None,
            task_cpus: Default::default(),
        }
    }

    #[tokio::test]
    async fn the_builtin_prover_stands_aside_only_for_a_post_worker_that_reaches_the_sectors() {
        let (view, sel, req) = wdp_of_sector_on_store().await;
        let (builtin, post, other) = (WorkerId(0), WorkerId(1), WorkerId(2));
        assert!(sel.ok(&req, builtin, &spec()), "alone, the sealer proves");
        // A WDP worker without the sector's path cannot prove it: the sealer still does.
        view.set_tasks(post, [TaskType::WindowPoSt].into_iter().collect());
        view.set_paths(post, vec![StorageId("elsewhere".into())]);
        assert!(!sel.ok(&req, post, &spec()));
        assert!(sel.ok(&req, builtin, &spec()));
        // On the shared store it takes the proof, and the sealer stands aside.
        view.set_paths(post, vec![StorageId("store".into())]);
        assert!(sel.ok(&req, post, &spec()));
        assert!(!sel.ok(&req, builtin, &spec()));
        // A worker that only takes WinningPoSt does not count for a WindowPoSt.
        view.set_tasks(other, [TaskType::WinningPoSt].into_iter().collect());
        view.set_paths(other, vec![StorageId("store".into())]);
        assert!(!sel.ok(&req, builtin, &spec()));
        // Silent (heartbeat missed), or gone: the sealer proves again.
        view.set_connected(post, false);
        assert!(sel.ok(&req, builtin, &spec()));
        view.set_connected(post, true);
        assert!(!sel.ok(&req, builtin, &spec()));
        view.forget(post);
        assert!(sel.ok(&req, builtin, &spec()));
    }
}
