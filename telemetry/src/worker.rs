//! A worker daemon's own families: the calls it runs (whoever sent them), their processor
//! children, and its storage paths. Lotus's workers have none (their tasks are counted on the
//! miner only).

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::labels as l;
use crate::paths::{PathFamilies, PathGauges};
use crate::{histograms, PREFIX, TASK_BUCKETS};

type Hist = crate::Histograms<l::TaskType>;

pub struct WorkerMetrics {
    registry: Registry,
    render: Mutex<()>,
    started: Family<l::TaskType, Counter>,
    returned: Family<l::TaskType, Counter>,
    failed: Family<l::TaskType, Counter>,
    running: Family<l::TaskType, Gauge>,
    duration: Hist,
    peak_rss: Family<l::TaskType, Gauge>,
    crashes: Family<l::Crash, Counter>,
    paths: PathFamilies,
}

impl WorkerMetrics {
    pub fn new(version: &str, worker: &str) -> WorkerMetrics {
        let mut r = Registry::with_prefix(PREFIX);
        let m = WorkerMetrics {
            registry: Registry::default(),
            render: Mutex::new(()),
            started: Family::default(),
            returned: Family::default(),
            failed: Family::default(),
            running: Family::default(),
            duration: histograms(&TASK_BUCKETS),
            peak_rss: Family::default(),
            crashes: Family::default(),
            paths: PathFamilies::default(),
        };
        r.register(
            "build",
            "The daemon's version and kind",
            Info::new(l::Build {
                version: version.into(),
                node_type: "worker".into(),
                worker: worker.into(),
            }),
        );
        let s = &m;
        r.register(
            "processor_tasks_started",
            "Calls this worker started, per task type",
            s.started.clone(),
        );
        r.register(
            "processor_tasks_returned",
            "Calls this worker finished (done or failed), per task type",
            s.returned.clone(),
        );
        r.register(
            "processor_tasks_failed",
            "Calls this worker finished with an error, per task type",
            s.failed.clone(),
        );
        r.register(
            "processor_tasks_running",
            "Calls running on this worker now, per task type",
            s.running.clone(),
        );
        r.register_with_unit(
            "processor_task_duration",
            "Time of a call on this worker, from its start to its result",
            Unit::Seconds,
            s.duration.clone(),
        );
        r.register_with_unit(
            "processor_peak_rss",
            "Peak resident memory of the last processor child of a task type",
            Unit::Bytes,
            s.peak_rss.clone(),
        );
        r.register("processor_crashes", "Processor children that died without a result (panic, signal, out of memory, timeout, ...)", s.crashes.clone());
        s.paths.register(&mut r);
        WorkerMetrics { registry: r, ..m }
    }

    pub fn started(&self, task: &str) {
        let k = of(task);
        self.started.get_or_create(&k).inc();
        self.running.get_or_create(&k).inc();
    }

    pub fn returned(&self, task: &str, ok: bool, secs: f64) {
        let k = of(task);
        self.returned.get_or_create(&k).inc();
        self.running.get_or_create(&k).dec();
        if !ok {
            self.failed.get_or_create(&k).inc();
        }
        self.duration.get_or_create(&k).observe(secs);
    }

    /// A processor child of the task type ended, with its peak resident memory.
    pub fn child_ran(&self, task: &str, peak_rss_bytes: u64) {
        self.peak_rss
            .get_or_create(&of(task))
            .set(peak_rss_bytes as i64);
    }

    /// A processor child of the task type died without a result (`proofs::Crash::kind`).
    pub fn child_crashed(&self, task: &str, kind: &str) {
        let k = l::Crash {
            task_type: task.to_string(),
            kind: kind.to_string(),
        };
        self.crashes.get_or_create(&k).inc();
    }

    pub fn render(&self, paths: &[PathGauges]) -> String {
        let _one = self.render.lock().unwrap_or_else(|e| e.into_inner());
        self.paths.set(paths);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_follows_started_and_returned() {
        let m = WorkerMetrics::new("0.1.0", "box1");
        m.started("C2");
        m.started("C2");
        m.returned("C2", true, 50.0);
        m.child_ran("C2", 300 << 20);
        m.child_crashed("C2", "signal");
        let t = m.render(&[]);
        assert!(
            t.contains(r#"sealer_build_info{version="0.1.0",node_type="worker",worker="box1"} 1"#),
            "{t}"
        );
        assert!(
            t.contains(r#"sealer_processor_tasks_started_total{task_type="C2"} 2"#),
            "{t}"
        );
        assert!(
            t.contains(r#"sealer_processor_tasks_returned_total{task_type="C2"} 1"#),
            "{t}"
        );
        assert!(
            t.contains(r#"sealer_processor_tasks_running{task_type="C2"} 1"#),
            "{t}"
        );
        assert!(
            t.contains(r#"sealer_processor_peak_rss_bytes{task_type="C2"} 314572800"#),
            "{t}"
        );
        assert!(
            t.contains(r#"sealer_processor_crashes_total{task_type="C2",kind="signal"} 1"#),
            "{t}"
        );
        assert!(
            t.contains(r#"sealer_processor_task_duration_seconds_count{task_type="C2"} 1"#),
            "{t}"
        );
    }
}
