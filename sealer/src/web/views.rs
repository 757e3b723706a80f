//! What each dashboard page shows, as data: served as JSON under `/api/v0/...` and rendered by
//! `pages`. Built from the same functions the JSON-RPC methods use (`WorkerJobs`,
//! `WorkerStats`, `SealingSchedDiag`, `StorageList`, `SectorsStatus`, `StateMinerDeadlines`),
//! so nothing is computed twice.

use std::collections::BTreeMap;
use std::sync::Arc;

use api::{
    FoundFile, JobRow, ProvingDeadlines, QueuedJob, SectorInfo, SectorState, StorageRow,
    WaitingSector, WorkerRow,
};
use serde::Serialize;

use crate::daemon::Node;
use crate::fsm::now_ms;

/// A sector in a sealing state this long without changing state is flagged as stuck.
pub const STUCK_AFTER_MS: u64 = 6 * 3600 * 1000;

/// A path with less than this share available is flagged as nearly full.
pub const NEARLY_FULL: f64 = 0.05;

/// The order of the pipeline's main states on the overview (the rest come after).
const PIPELINE: [SectorState; 10] = [
    SectorState::Packing,
    SectorState::PreCommit1,
    SectorState::PreCommit2,
    SectorState::PreCommitWait,
    SectorState::WaitSeed,
    SectorState::Committing,
    SectorState::CommitWait,
    SectorState::FinalizeSector,
    SectorState::Proving,
    SectorState::FailedUnrecoverable,
];

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StateCount {
    pub state: SectorState,
    pub count: u64,
    pub failed: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Alert {
    /// `worker down`, `path nearly full`, `sector stuck`, `sector failed`, `fault declared`,
    /// `chain`.
    pub kind: &'static str,
    pub text: String,
    /// The page that shows more.
    pub link: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Overview {
    pub actor: String,
    pub sector_size: String,
    /// `real` or `mock` (a demo: no real proofs).
    pub engine: String,
    /// Every state with sectors, the pipeline's order first.
    pub states: Vec<StateCount>,
    pub sectors: u64,
    /// Sectors that reached Proving in each of the last 24 hours (oldest first).
    pub proving_per_hour: Vec<u64>,
    /// ... and in each of the last 14 days.
    pub proving_per_day: Vec<u64>,
    pub head: Option<i64>,
    pub power_bytes: Option<u64>,
    pub power_sectors: Option<u64>,
    /// The next deadline with sectors to prove: (index, epoch it opens, epochs from now).
    pub next_post: Option<(u64, i64, i64)>,
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunningTask {
    #[serde(flatten)]
    pub job: JobRow,
    /// The task type's mean successful duration here so far.
    pub usual_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WorkerView {
    #[serde(flatten)]
    pub row: WorkerRow,
    /// Seconds since it last answered its heartbeat (0 for the sealer's own worker).
    pub heartbeat_age_s: f64,
    pub running: Vec<RunningTask>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tasks {
    /// Placed on a worker: assigned, preparing (fetching its files), prepared, running,
    /// ret-wait.
    pub placed: Vec<RunningTask>,
    /// Waiting for a worker, each with why (per worker for the first ones).
    pub queued: Vec<QueuedJob>,
    /// Sectors waiting before any task can be queued for them.
    pub sectors_waiting: Vec<WaitingSector>,
    pub passes: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorRow {
    pub number: u64,
    pub state: SectorState,
    /// When it entered its state (unix ms).
    pub since_ms: u64,
    pub retries: u32,
    pub last_error: String,
    pub failed: bool,
    pub stuck: bool,
    pub waiting: Option<String>,
}

/// One step of a sector's timeline: a state it entered, for how long, and what was said.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Step {
    pub state: SectorState,
    pub kind: String,
    pub at_ms: u64,
    /// Until the next step (or now, for the last).
    pub took_ms: u64,
    pub message: String,
    pub error: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorDetail {
    pub info: SectorInfo,
    pub steps: Vec<Step>,
    pub files: Vec<FoundFile>,
    /// Why the chain could not be read, where it could not.
    pub chain_error: Option<String>,
}

fn is_stuck(state: SectorState, since_ms: u64, now: u64) -> bool {
    state.is_sealing() && !state.is_failed() && now.saturating_sub(since_ms) > STUCK_AFTER_MS
}

pub fn sectors(node: &Arc<Node>) -> Vec<SectorRow> {
    let now = now_ms();
    // Read in place (by number already): a large miner's records are not copied.
    let mut v = Vec::new();
    node.sectors.visit(|s| {
        v.push(SectorRow {
            number: s.sector.number,
            state: s.state,
            since_ms: s.since_ms,
            retries: s.retries,
            failed: s.state.is_failed(),
            stuck: is_stuck(s.state, s.since_ms, now),
            waiting: s.waiting_reason(),
            last_error: s.last_error.clone(),
        })
    });
    v
}

pub async fn overview(node: &Arc<Node>) -> Overview {
    let now = now_ms();
    let mut counts: BTreeMap<String, (SectorState, u64)> = BTreeMap::new();
    let (mut per_hour, mut per_day) = (vec![0u64; 24], vec![0u64; 14]);
    let mut alerts = Vec::new();
    // One pass over the records in place: a large miner's are not copied every refresh.
    node.sectors.visit(|s| {
        counts.entry(s.state.to_string()).or_insert((s.state, 0)).1 += 1;
        // A Proving sector's last state change is its arrival in Proving.
        if s.state == SectorState::Proving {
            let ago = now.saturating_sub(s.since_ms);
            let (h, d) = (ago / 3_600_000, ago / 86_400_000);
            if h < 24 {
                per_hour[23 - h as usize] += 1;
            }
            if d < 14 {
                per_day[13 - d as usize] += 1;
            }
        }
        if s.state == SectorState::FailedUnrecoverable {
            alerts.push(Alert {
                kind: "sector failed",
                text: format!(
                    "sector {} failed for good: {}",
                    s.sector.number, s.last_error
                ),
                link: format!("/ui/sectors/{}", s.sector.number),
            });
        } else if is_stuck(s.state, s.since_ms, now) {
            alerts.push(Alert {
                kind: "sector stuck",
                text: format!(
                    "sector {} has been in {} for {} h",
                    s.sector.number,
                    s.state,
                    now.saturating_sub(s.since_ms) / 3_600_000
                ),
                link: format!("/ui/sectors/{}", s.sector.number),
            });
        }
    });
    let total: u64 = counts.values().map(|(_, n)| n).sum();
    let mut states: Vec<StateCount> = Vec::new();
    for st in PIPELINE {
        if let Some((_, n)) = counts.remove(&st.to_string()) {
            states.push(StateCount {
                state: st,
                count: n,
                failed: st.is_failed(),
            });
        } else if st != SectorState::FailedUnrecoverable {
            states.push(StateCount {
                state: st,
                count: 0,
                failed: false,
            });
        }
    }
    states.extend(counts.into_values().map(|(st, n)| StateCount {
        state: st,
        count: n,
        failed: st.is_failed(),
    }));
    for w in node.manager.worker_stats().iter().filter(|w| !w.connected) {
        alerts.push(Alert {
            kind: "worker down",
            text: format!(
                "worker {} ({}) does not answer its heartbeat",
                w.hostname, w.id
            ),
            link: "/ui/workers".into(),
        });
    }
    // The index's view (stats as of each path's last heartbeat): no sector count per path,
    // which the storage page's listing scans the index for.
    if let Ok(paths) = node.store.index().storage_list().await {
        let local = crate::rpc::local_paths(node);
        for e in paths {
            let at = local.get(&e.info.id).map(|p| p.display().to_string());
            alerts.extend(path_alert(
                &e.info.id.0,
                at.as_deref(),
                Some(&e.stat),
                e.heartbeat_err.as_deref(),
            ));
        }
    }
    let mut ov = Overview {
        actor: crate::config::actor_name(node.settings.actor),
        sector_size: node.settings.sector_size.to_string(),
        engine: node.engine.kind().to_string(),
        sectors: total,
        states,
        proving_per_hour: per_hour,
        proving_per_day: per_day,
        head: None,
        power_bytes: None,
        power_sectors: None,
        next_post: None,
        alerts,
    };
    match node
        .proving
        .get()
        .unwrap_or_else(|| Err("not read yet".into()))
    {
        Ok(d) => {
            ov.head = Some(d.head);
            ov.power_bytes = Some(d.power.raw_bytes);
            ov.power_sectors = Some(d.power.sectors);
            ov.next_post = d
                .deadlines
                .iter()
                .filter(|r| r.partitions.iter().any(|p| !p.sectors.is_empty()))
                .map(|r| (r.index, r.open, r.open - d.head))
                .min_by_key(|(_, open, _)| *open);
            if !d.faults.is_empty() {
                ov.alerts.push(Alert {
                    kind: "fault declared",
                    text: format!(
                        "{} sector(s) faulty on chain: {}{}",
                        d.faults.len(),
                        d.faults
                            .iter()
                            .take(10)
                            .map(|n| n.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                        if d.faults.len() > 10 { ", ..." } else { "" }
                    ),
                    link: "/ui/proving".into(),
                });
            }
        }
        Err(e) => ov.alerts.push(Alert {
            kind: "chain",
            text: format!("the chain node could not be read: {e}"),
            link: "/ui/proving".into(),
        }),
    }
    ov
}

/// A path that is unhealthy or has less than [`NEARLY_FULL`] of its capacity available.
pub fn path_alert(
    id: &str,
    local_path: Option<&str>,
    stat: Option<&stores::FsStat>,
    error: Option<&str>,
) -> Option<Alert> {
    if let Some(e) = error {
        return Some(Alert {
            kind: "path unhealthy",
            text: format!("storage path {id}: {e}"),
            link: "/ui/storage".into(),
        });
    }
    let st = stat?;
    (st.capacity > 0 && (st.available as f64) < st.capacity as f64 * NEARLY_FULL).then(|| Alert {
        kind: "path nearly full",
        text: format!(
            "storage path {id} ({}): {} available of {}",
            local_path.unwrap_or("remote"),
            resources::human_bytes(st.available),
            resources::human_bytes(st.capacity)
        ),
        link: "/ui/storage".into(),
    })
}

fn running(node: &Arc<Node>, jobs: Vec<JobRow>) -> Vec<RunningTask> {
    jobs.into_iter()
        .filter(|j| j.state != "queued")
        .map(|job| RunningTask {
            usual_s: node.manager.usual_secs(job.task),
            job,
        })
        .collect()
}

pub fn workers(node: &Arc<Node>) -> Vec<WorkerView> {
    let ages = node.workers.heartbeat_ages();
    let placed = running(node, node.manager.jobs());
    node.manager
        .worker_stats()
        .into_iter()
        .map(|row| WorkerView {
            heartbeat_age_s: ages.get(&row.id).copied().unwrap_or(0.0),
            running: placed
                .iter()
                .filter(|t| t.job.worker == row.id)
                .cloned()
                .collect(),
            row,
        })
        .collect()
}

pub fn tasks(node: &Arc<Node>) -> Tasks {
    let diag = crate::rpc::sched_diag(node);
    Tasks {
        placed: running(node, node.manager.jobs()),
        queued: diag.queued,
        sectors_waiting: diag.sectors_waiting,
        passes: diag.passes,
    }
}

pub async fn sector(node: &Arc<Node>, n: u64) -> Result<SectorDetail, api::rpc::RpcError> {
    let (info, chain_error) = match crate::rpc::sector_status(node, n, true).await {
        Ok(i) => (i, None),
        Err(e) => (
            crate::rpc::sector_status(node, n, false).await?,
            Some(e.message),
        ),
    };
    let now = now_ms();
    let steps = info
        .log
        .iter()
        .enumerate()
        .map(|(i, l)| Step {
            state: l.state,
            kind: l.kind.clone(),
            at_ms: l.timestamp_ms,
            took_ms: info
                .log
                .get(i + 1)
                .map_or(now, |next| next.timestamp_ms)
                .saturating_sub(l.timestamp_ms),
            message: l.message.clone(),
            error: l.state.is_failed() || l.kind.ends_with("Failed"),
        })
        .collect();
    let files = crate::rpc::find_sector(node, n).await.unwrap_or_default();
    Ok(SectorDetail {
        info,
        steps,
        files,
        chain_error,
    })
}

pub async fn storage(node: &Arc<Node>) -> Result<Vec<StorageRow>, api::rpc::RpcError> {
    crate::rpc::storage_list(node).await
}

pub async fn proving(node: &Arc<Node>) -> Result<ProvingDeadlines, api::rpc::RpcError> {
    crate::rpc::deadlines(node).await
}
