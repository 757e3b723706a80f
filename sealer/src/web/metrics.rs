//! `GET /metrics`: the snapshot gauges read from the sealer's state, then the whole registry.

use std::collections::BTreeMap;
use std::sync::Arc;

use api::SectorState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use stores::Permission;
use telemetry::sealer::{PathGauges, Proving, Snapshot, WorkerGauges};

use super::auth::Access;
use crate::daemon::Node;

pub async fn serve(State(node): State<Arc<Node>>, access: Access) -> Response {
    if !node.cfg.api.metrics_without_token {
        if let Some(r) = access.refuse(Permission::Read, false) {
            return r;
        }
    }
    let metrics = node.manager.metrics().clone();
    if !metrics.is_on() {
        return (
            StatusCode::NOT_FOUND,
            "metrics are off ([API] Metrics = false)\n",
        )
            .into_response();
    }
    let snap = snapshot(&node).await;
    (
        [(header::CONTENT_TYPE, telemetry::CONTENT_TYPE)],
        metrics.render(&snap),
    )
        .into_response()
}

/// What the gauges show now.
pub async fn snapshot(node: &Arc<Node>) -> Snapshot {
    let mut states: BTreeMap<String, u64> = SectorState::ALL
        .iter()
        .map(|s| (s.to_string(), 0))
        .collect();
    states.extend(node.sectors.count_by_state());
    // The manager's part only: the per-worker storage room and waiting sectors are not counted.
    let diag = node.manager.sched_diag();
    let mut queue: BTreeMap<String, u64> = resources::TaskType::ALL
        .iter()
        .map(|t| (t.short().to_string(), 0))
        .collect();
    let mut blocked: BTreeMap<(String, String), u64> = BTreeMap::new();
    for q in &diag.queued {
        *queue.entry(q.task.clone()).or_default() += 1;
        let reason = q.reason.clone().unwrap_or_else(|| "not explained".into());
        *blocked.entry((q.task.clone(), reason)).or_default() += 1;
    }
    let ages = node.workers.heartbeat_ages();
    let workers = node
        .manager
        .worker_stats()
        .into_iter()
        .map(|w| WorkerGauges {
            heartbeat_age_s: ages.get(&w.id).copied().unwrap_or(0.0),
            name: w.hostname,
            up: w.connected,
            cpus: w.resources.cpus,
            cpus_reserved: w.usage.cpus,
            memory_bytes: w.resources.mem_physical,
            memory_reserved_bytes: w.usage.mem_min,
            gpus: w.resources.gpus.len() as u64,
            gpus_reserved: w.usage.gpu_milli as f64 / 1000.0,
            running: w
                .task_counts
                .into_iter()
                .map(|(t, n)| (t, n as u64))
                .collect(),
        })
        .collect();
    // The index's view (stat as of each path's last heartbeat): no statfs, no sector scan.
    let paths = node
        .store
        .index()
        .storage_list()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|e| PathGauges {
            id: e.info.id.0,
            seal: e.info.can_seal,
            store: e.info.can_store,
            capacity_bytes: e.stat.capacity,
            available_bytes: e.stat.available,
            reserved_bytes: e.stat.reserved,
        })
        .collect();
    let (proving, chain_head) = match node.proving.get() {
        Some(Ok(d)) => (
            Some(Proving {
                faulty_sectors: d.faults.len() as u64,
                recovering_sectors: d
                    .deadlines
                    .iter()
                    .flat_map(|r| &r.partitions)
                    .map(|p| p.recoveries.len() as u64)
                    .sum(),
                proofs_accepted: d.proofs_accepted,
                missed: d.missed,
                elections: d.elections,
                winning_posts_sent: d.winning_posts_sent,
                wins: d.blocks_won,
                power_raw_bytes: d.power.raw_bytes,
            }),
            Some(d.head),
        ),
        _ => (None, None),
    };
    Snapshot {
        sectors: states.into_iter().collect(),
        queue: queue.into_iter().collect(),
        blocked: blocked.into_iter().map(|((t, r), n)| (t, r, n)).collect(),
        workers,
        paths,
        proving,
        chain_head,
    }
}
