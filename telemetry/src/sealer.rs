//! The sealer's families: sealing tasks per type and worker, the scheduler, the workers, the
//! storage paths, proving and the chain.

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::labels as l;
use crate::paths::PathFamilies;
pub use crate::paths::PathGauges;
use crate::{catch_up, histograms, API_BUCKETS, PASS_BUCKETS, POST_BUCKETS, PREFIX, TASK_BUCKETS};

type F64 = Gauge<f64, AtomicU64>;
/// No labels: a family of one series, left out until its value is known (the chain's figures
/// before the chain was read, so that a restart shows no counter at 0).
type Plain = Vec<(String, String)>;
type Hist<L> = crate::Histograms<L>;

/// What is a state rather than an event, read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Sector state -> sectors in it.
    pub sectors: Vec<(String, u64)>,
    /// Task type -> queued tasks (not yet placed on a worker).
    pub queue: Vec<(String, u64)>,
    /// (task type, reason) -> queued tasks that wait for that reason.
    pub blocked: Vec<(String, String, u64)>,
    pub workers: Vec<WorkerGauges>,
    pub paths: Vec<PathGauges>,
    pub proving: Option<Proving>,
    pub chain_head: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct WorkerGauges {
    pub name: String,
    pub up: bool,
    pub heartbeat_age_s: f64,
    pub cpus: u64,
    pub cpus_reserved: u64,
    pub memory_bytes: u64,
    pub memory_reserved_bytes: u64,
    pub gpus: u64,
    /// In GPUs (a task may take a share of one).
    pub gpus_reserved: f64,
    /// Task type -> tasks running or placed there.
    pub running: Vec<(String, u64)>,
}

/// Running totals the proving schedulers keep across restarts, and the miner's faults now.
#[derive(Debug, Clone, Default)]
pub struct Proving {
    pub faulty_sectors: u64,
    pub recovering_sectors: u64,
    pub proofs_accepted: u64,
    pub missed: u64,
    pub elections: u64,
    pub winning_posts_sent: u64,
    pub wins: u64,
    pub power_raw_bytes: u64,
}

pub struct SealerMetrics {
    /// Off: events are not counted (the dispatch benchmark's baseline, `[API] Metrics = false`).
    on: bool,
    registry: Registry,
    /// One scrape at a time sets the snapshot gauges.
    render: Mutex<()>,
    started: Family<l::TaskOnWorker, Counter>,
    returned: Family<l::TaskOnWorker, Counter>,
    failed: Family<l::TaskOnWorker, Counter>,
    duration: Hist<l::TaskType>,
    queue_wait: Hist<l::TaskType>,
    pass: Histogram,
    api_duration: Hist<l::Method>,
    wdpost_duration: Hist<l::Deadline>,
    sectors: Family<l::SectorState, Gauge>,
    queue: Family<l::TaskType, Gauge>,
    blocked: Family<l::Blocked, Gauge>,
    worker_up: Family<l::Worker, Gauge>,
    heartbeat_age: Family<l::Worker, F64>,
    cpus: Family<l::Worker, Gauge>,
    cpus_reserved: Family<l::Worker, Gauge>,
    memory: Family<l::Worker, Gauge>,
    memory_reserved: Family<l::Worker, Gauge>,
    gpus: Family<l::Worker, Gauge>,
    gpus_reserved: Family<l::Worker, F64>,
    running: Family<l::TaskOnWorker, Gauge>,
    paths: PathFamilies,
    faulty: Family<Plain, Gauge>,
    recovering: Family<Plain, Gauge>,
    proofs: Family<Plain, Counter>,
    missed: Family<Plain, Counter>,
    elections: Family<Plain, Counter>,
    winning_sent: Family<Plain, Counter>,
    wins: Family<Plain, Counter>,
    power_raw: Family<Plain, Gauge>,
    head: Family<Plain, Gauge>,
    chain_up: Gauge,
}

impl SealerMetrics {
    pub fn new(version: &str) -> SealerMetrics {
        let mut r = Registry::with_prefix(PREFIX);
        let m = SealerMetrics {
            on: true,
            registry: Registry::default(),
            render: Mutex::new(()),
            started: Family::default(),
            returned: Family::default(),
            failed: Family::default(),
            duration: histograms(&TASK_BUCKETS),
            queue_wait: histograms(&TASK_BUCKETS),
            pass: Histogram::new(PASS_BUCKETS.iter().copied()),
            api_duration: histograms(&API_BUCKETS),
            wdpost_duration: histograms(&POST_BUCKETS),
            sectors: Family::default(),
            queue: Family::default(),
            blocked: Family::default(),
            worker_up: Family::default(),
            heartbeat_age: Family::default(),
            cpus: Family::default(),
            cpus_reserved: Family::default(),
            memory: Family::default(),
            memory_reserved: Family::default(),
            gpus: Family::default(),
            gpus_reserved: Family::default(),
            running: Family::default(),
            paths: PathFamilies::default(),
            faulty: Family::default(),
            recovering: Family::default(),
            proofs: Family::default(),
            missed: Family::default(),
            elections: Family::default(),
            winning_sent: Family::default(),
            wins: Family::default(),
            power_raw: Family::default(),
            head: Family::default(),
            chain_up: Gauge::default(),
        };
        r.register(
            "build",
            "The daemon's version and kind",
            Info::new(l::Build {
                version: version.into(),
                node_type: "sealer".into(),
                worker: String::new(),
            }),
        );
        let s = &m;
        r.register(
            "sealing_tasks_started",
            "Tasks handed to a worker to run, per task type and worker",
            s.started.clone(),
        );
        r.register(
            "sealing_tasks_returned",
            "Tasks that came back from their worker (done or failed), per task type and worker",
            s.returned.clone(),
        );
        r.register(
            "sealing_tasks_failed",
            "Tasks that came back with an error, per task type and worker",
            s.failed.clone(),
        );
        r.register_with_unit(
            "sealing_task_duration",
            "Time from a task's start on its worker to its result",
            Unit::Seconds,
            s.duration.clone(),
        );
        r.register("sealing_sectors", "Sectors per state", s.sectors.clone());
        r.register(
            "sched_queue_tasks",
            "Tasks waiting for a worker, per task type",
            s.queue.clone(),
        );
        r.register_with_unit(
            "sched_queue_wait",
            "Time from a task being ready to its start on a worker",
            Unit::Seconds,
            s.queue_wait.clone(),
        );
        r.register_with_unit(
            "sched_pass_duration",
            "Time of one scheduling pass",
            Unit::Seconds,
            s.pass.clone(),
        );
        r.register_with_unit(
            "api_request_duration",
            "Time the sealer took to answer an API call, per method (the request read to the answer written out; the wait for a thread before and the network after are not in it)",
            Unit::Seconds,
            s.api_duration.clone(),
        );
        r.register("sched_queued_blocked_tasks", "Queued tasks per task type and the reason none of the workers takes them now (the closest worker's)", s.blocked.clone());
        r.register(
            "worker_up",
            "Whether the worker answers its heartbeat (1) or not (0)",
            s.worker_up.clone(),
        );
        r.register_with_unit(
            "worker_heartbeat_age",
            "Time since the worker last answered its heartbeat",
            Unit::Seconds,
            s.heartbeat_age.clone(),
        );
        r.register("worker_cpus", "CPU threads the worker has", s.cpus.clone());
        r.register(
            "worker_cpus_reserved",
            "CPU threads reserved by the tasks placed on the worker",
            s.cpus_reserved.clone(),
        );
        r.register_with_unit(
            "worker_memory",
            "Physical memory the worker has",
            Unit::Bytes,
            s.memory.clone(),
        );
        r.register_with_unit(
            "worker_memory_reserved",
            "Memory reserved by the tasks placed on the worker (their minimum)",
            Unit::Bytes,
            s.memory_reserved.clone(),
        );
        r.register("worker_gpus", "GPUs the worker has", s.gpus.clone());
        r.register(
            "worker_gpus_reserved",
            "GPUs reserved by the tasks placed on the worker",
            s.gpus_reserved.clone(),
        );
        r.register(
            "worker_tasks_running",
            "Tasks placed on the worker (preparing or running), per task type",
            s.running.clone(),
        );
        s.paths.register(&mut r);
        r.register_with_unit(
            "wdpost_duration",
            "Time to prove a deadline's partitions (from its opening to the message landing)",
            Unit::Seconds,
            s.wdpost_duration.clone(),
        );
        r.register(
            "wdpost_faulty_sectors",
            "Sectors the chain holds faulty now",
            s.faulty.clone(),
        );
        r.register(
            "wdpost_recovering_sectors",
            "Faulty sectors declared recovering now",
            s.recovering.clone(),
        );
        r.register(
            "wdpost_proofs",
            "WindowPoSt proofs the chain accepted",
            s.proofs.clone(),
        );
        r.register(
            "wdpost_missed",
            "Deadlines closed without a proof",
            s.missed.clone(),
        );
        r.register(
            "wnpost_elections",
            "WinningPoSt elections drawn",
            s.elections.clone(),
        );
        r.register(
            "wnpost_proofs_sent",
            "WinningPoSt proofs made for a won election",
            s.winning_sent.clone(),
        );
        r.register("wnpost_wins", "Blocks won", s.wins.clone());
        r.register_with_unit(
            "miner_power_raw",
            "The miner's raw byte power",
            Unit::Bytes,
            s.power_raw.clone(),
        );
        r.register(
            "chain_up",
            "Whether the last read of the chain node (every few seconds) succeeded (1) or not (0)",
            s.chain_up.clone(),
        );
        r.register(
            "chain_head_height",
            "The chain head's epoch",
            s.head.clone(),
        );
        SealerMetrics { registry: r, ..m }
    }

    /// Counts nothing: what the daemon runs with `[API] Metrics = false`.
    pub fn off(version: &str) -> SealerMetrics {
        SealerMetrics {
            on: false,
            ..SealerMetrics::new(version)
        }
    }

    pub fn is_on(&self) -> bool {
        self.on
    }

    pub fn task_started(&self, task: &str, worker: &str) {
        if !self.on {
            return;
        }
        self.started.get_or_create(&on(task, worker)).inc();
    }

    /// A task came back after `secs` on its worker, done or failed.
    pub fn task_returned(&self, task: &str, worker: &str, ok: bool, secs: f64) {
        if !self.on {
            return;
        }
        let labels = on(task, worker);
        self.returned.get_or_create(&labels).inc();
        if !ok {
            self.failed.get_or_create(&labels).inc();
        }
        self.duration.get_or_create(&of(task)).observe(secs);
    }

    /// A task started `secs` after it was ready.
    pub fn queue_waited(&self, task: &str, secs: f64) {
        if !self.on {
            return;
        }
        self.queue_wait.get_or_create(&of(task)).observe(secs);
    }

    /// An API call to `method` was answered in `secs`.
    pub fn api_call(&self, method: &str, secs: f64) {
        if !self.on {
            return;
        }
        let m = l::Method {
            method: method.to_string(),
        };
        self.api_duration.get_or_create(&m).observe(secs);
    }

    pub fn sched_pass(&self, secs: f64) {
        if !self.on {
            return;
        }
        self.pass.observe(secs);
    }

    pub fn wdpost_proven(&self, deadline: u64, secs: f64) {
        if !self.on {
            return;
        }
        let l = l::Deadline {
            deadline: deadline.to_string(),
        };
        self.wdpost_duration.get_or_create(&l).observe(secs);
    }

    /// Sets every snapshot gauge from `snap` (dropping label sets it no longer has) and encodes
    /// the registry.
    pub fn render(&self, snap: &Snapshot) -> String {
        let _one = self.render.lock().unwrap_or_else(|e| e.into_inner());
        set_all(
            &self.sectors,
            snap.sectors.iter().map(|(s, n)| {
                (
                    l::SectorState {
                        sector_state: s.clone(),
                    },
                    *n as i64,
                )
            }),
        );
        set_all(
            &self.queue,
            snap.queue.iter().map(|(t, n)| (of(t), *n as i64)),
        );
        set_all(
            &self.blocked,
            snap.blocked.iter().map(|(t, r, n)| {
                (
                    l::Blocked {
                        task_type: t.clone(),
                        reason: r.clone(),
                    },
                    *n as i64,
                )
            }),
        );
        for f in [
            &self.worker_up,
            &self.cpus,
            &self.cpus_reserved,
            &self.memory,
            &self.memory_reserved,
            &self.gpus,
        ] {
            f.clear();
        }
        self.heartbeat_age.clear();
        self.gpus_reserved.clear();
        self.running.clear();
        for w in &snap.workers {
            let k = l::Worker {
                worker: w.name.clone(),
            };
            self.worker_up.get_or_create(&k).set(w.up as i64);
            self.heartbeat_age.get_or_create(&k).set(w.heartbeat_age_s);
            self.cpus.get_or_create(&k).set(w.cpus as i64);
            self.cpus_reserved
                .get_or_create(&k)
                .set(w.cpus_reserved as i64);
            self.memory.get_or_create(&k).set(w.memory_bytes as i64);
            self.memory_reserved
                .get_or_create(&k)
                .set(w.memory_reserved_bytes as i64);
            self.gpus.get_or_create(&k).set(w.gpus as i64);
            self.gpus_reserved.get_or_create(&k).set(w.gpus_reserved);
            for (t, n) in &w.running {
                self.running.get_or_create(&on(t, &w.name)).set(*n as i64);
            }
        }
        self.paths.set(&snap.paths);
        let one = Plain::new();
        if let Some(p) = &snap.proving {
            self.faulty.get_or_create(&one).set(p.faulty_sectors as i64);
            self.recovering
                .get_or_create(&one)
                .set(p.recovering_sectors as i64);
            catch_up(&self.proofs.get_or_create(&one), p.proofs_accepted);
            catch_up(&self.missed.get_or_create(&one), p.missed);
            catch_up(&self.elections.get_or_create(&one), p.elections);
            catch_up(&self.winning_sent.get_or_create(&one), p.winning_posts_sent);
            catch_up(&self.wins.get_or_create(&one), p.wins);
            self.power_raw
                .get_or_create(&one)
                .set(p.power_raw_bytes as i64);
        }
        self.chain_up.set(snap.chain_head.is_some() as i64);
        if let Some(h) = snap.chain_head {
            self.head.get_or_create(&one).set(h);
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String does not fail");
        out
    }
}

fn of(task: &str) -> l::TaskType {
    l::TaskType {
        task_type: task.to_string(),
    }
}

fn on(task: &str, worker: &str) -> l::TaskOnWorker {
    l::TaskOnWorker {
        task_type: task.to_string(),
        worker: worker.to_string(),
    }
}

fn set_all<L: Clone + std::hash::Hash + Eq>(
    f: &Family<L, Gauge>,
    values: impl Iterator<Item = (L, i64)>,
) {
    f.clear();
    for (k, v) in values {
        f.get_or_create(&k).set(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            sectors: vec![("PreCommit1".into(), 2), ("Proving".into(), 5)],
            queue: vec![("PC2".into(), 1)],
            blocked: vec![("PC2".into(), "task type disabled".into(), 1)],
            workers: vec![WorkerGauges {
                name: "w1".into(),
                up: true,
                heartbeat_age_s: 0.5,
                cpus: 16,
                cpus_reserved: 4,
                memory_bytes: 1 << 30,
                memory_reserved_bytes: 1 << 20,
                gpus: 1,
                gpus_reserved: 0.5,
                running: vec![("PC1".into(), 2)],
            }],
            paths: vec![PathGauges {
                id: "abc".into(),
                seal: true,
                store: false,
                capacity_bytes: 1000,
                available_bytes: 600,
                reserved_bytes: 100,
            }],
            proving: Some(Proving {
                faulty_sectors: 1,
                proofs_accepted: 3,
                wins: 2,
                ..Proving::default()
            }),
            chain_head: Some(1234),
        }
    }

    fn line<'a>(text: &'a str, start: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in:\n{text}"))
    }

    #[test]
    fn the_text_has_each_family_with_its_unit_labels_and_values() {
        let m = SealerMetrics::new("0.1.0");
        m.task_started("PC1", "w1");
        m.task_started("PC1", "w1");
        m.task_returned("PC1", "w1", false, 90.0);
        m.queue_waited("PC1", 0.2);
        m.sched_pass(0.0004);
        m.wdpost_proven(7, 12.0);
        let t = m.render(&snapshot());
        assert!(t.ends_with("# EOF\n"), "{t}");
        assert_eq!(
            line(&t, "sealer_build_info{"),
            r#"sealer_build_info{version="0.1.0",node_type="sealer",worker=""} 1"#
        );
        assert_eq!(
            line(&t, "sealer_sealing_tasks_started_total{"),
            r#"sealer_sealing_tasks_started_total{task_type="PC1",worker="w1"} 2"#
        );
        assert_eq!(
            line(&t, "sealer_sealing_tasks_returned_total{"),
            r#"sealer_sealing_tasks_returned_total{task_type="PC1",worker="w1"} 1"#
        );
        assert_eq!(
            line(&t, "sealer_sealing_tasks_failed_total{"),
            r#"sealer_sealing_tasks_failed_total{task_type="PC1",worker="w1"} 1"#
        );
        // 90 s falls in the 120 s bucket, not the 60 s one.
        assert!(
            t.contains(
                r#"sealer_sealing_task_duration_seconds_bucket{le="60.0",task_type="PC1"} 0"#
            ),
            "{t}"
        );
        assert!(
            t.contains(
                r#"sealer_sealing_task_duration_seconds_bucket{le="120.0",task_type="PC1"} 1"#
            ),
            "{t}"
        );
        assert!(
            t.contains(
                r#"sealer_sealing_task_duration_seconds_bucket{le="86400.0",task_type="PC1"} 1"#
            ),
            "{t}"
        );
        assert!(
            t.contains("# UNIT sealer_sealing_task_duration_seconds seconds"),
            "{t}"
        );
        assert_eq!(
            line(&t, "sealer_sealing_sectors{sector_state=\"Proving\""),
            r#"sealer_sealing_sectors{sector_state="Proving"} 5"#
        );
        assert_eq!(
            line(&t, "sealer_sched_queue_tasks{"),
            r#"sealer_sched_queue_tasks{task_type="PC2"} 1"#
        );
        assert_eq!(
            line(&t, "sealer_sched_queued_blocked_tasks{"),
            r#"sealer_sched_queued_blocked_tasks{task_type="PC2",reason="task type disabled"} 1"#
        );
        assert_eq!(
            line(&t, "sealer_sched_pass_duration_seconds_count"),
            "sealer_sched_pass_duration_seconds_count 1"
        );
        assert_eq!(
            line(&t, "sealer_worker_up{"),
            r#"sealer_worker_up{worker="w1"} 1"#
        );
        assert_eq!(
            line(&t, "sealer_worker_heartbeat_age_seconds{"),
            r#"sealer_worker_heartbeat_age_seconds{worker="w1"} 0.5"#
        );
        assert_eq!(
            line(&t, "sealer_worker_gpus_reserved{"),
            r#"sealer_worker_gpus_reserved{worker="w1"} 0.5"#
        );
        assert_eq!(
            line(&t, "sealer_worker_tasks_running{"),
            r#"sealer_worker_tasks_running{task_type="PC1",worker="w1"} 2"#
        );
        assert_eq!(
            line(&t, "sealer_storage_path_available_bytes{"),
            r#"sealer_storage_path_available_bytes{storage_id="abc",seal="true",store="false"} 600"#
        );
        assert_eq!(
            line(&t, "sealer_wdpost_duration_seconds_count{"),
            r#"sealer_wdpost_duration_seconds_count{deadline="7"} 1"#
        );
        assert_eq!(
            line(&t, "sealer_wdpost_proofs_total"),
            "sealer_wdpost_proofs_total 3"
        );
        assert_eq!(
            line(&t, "sealer_wnpost_wins_total"),
            "sealer_wnpost_wins_total 2"
        );
        assert_eq!(
            line(&t, "sealer_chain_head_height"),
            "sealer_chain_head_height 1234"
        );
        assert!(
            !t.contains("sector_id") && !t.contains("sector=\""),
            "no per-sector labels:\n{t}"
        );
    }

    #[test]
    fn the_chain_figures_are_left_out_until_the_chain_is_read() {
        let m = SealerMetrics::new("0.1.0");
        let t = m.render(&Snapshot::default());
        assert!(!t.contains("sealer_wdpost_proofs_total"), "{t}");
        assert!(!t.contains("sealer_chain_head_height "), "{t}");
        assert_eq!(line(&t, "sealer_chain_up"), "sealer_chain_up 0");
        let t = m.render(&snapshot());
        assert_eq!(line(&t, "sealer_chain_up"), "sealer_chain_up 1");
        assert_eq!(
            line(&t, "sealer_wdpost_proofs_total"),
            "sealer_wdpost_proofs_total 3"
        );
    }

    #[test]
    fn a_gone_worker_leaves_the_gauges_and_totals_never_go_back() {
        let m = SealerMetrics::new("0.1.0");
        m.render(&snapshot());
        let mut s = snapshot();
        s.workers.clear();
        s.proving.as_mut().unwrap().proofs_accepted = 1;
        let t = m.render(&s);
        assert!(!t.contains("worker=\"w1\""), "{t}");
        assert_eq!(
            line(&t, "sealer_wdpost_proofs_total"),
            "sealer_wdpost_proofs_total 3"
        );
    }
}
