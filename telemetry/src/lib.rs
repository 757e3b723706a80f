//! The Prometheus metrics the daemons serve at `GET /metrics`: every family's name, labels,
//! unit and buckets, in one place, and their text encoding (OpenMetrics, which Prometheus
//! scrapes natively).
//!
//! Names follow lotus's (`sealing/…`, `sched/…`, `storage/path_…`) under one prefix, `sealer_`,
//! on both daemons: durations in seconds, counters end in `_total`, and no label names a
//! sector (per-sector data is on the dashboard and the API, not in time series).
//!
//! This crate does no I/O. Events are counted as they happen (`SealerMetrics::task_started`,
//! …); what is a state rather than an event (sectors per state, queue length, workers, paths,
//! proving) is handed over at scrape time as a [`sealer::Snapshot`], which replaces the gauges'
//! previous values, so a gone worker or path does not linger.

pub mod labels;
pub mod paths;
pub mod sealer;
pub mod worker;

use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::Histogram;

pub use sealer::SealerMetrics;
pub use worker::WorkerMetrics;

/// The prefix of every family.
pub const PREFIX: &str = "sealer";

/// The `Content-Type` of [`SealerMetrics::render`]'s and [`WorkerMetrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Task durations: 1 s to 24 h (a 2KiB AP takes a second, a 32GiB PC1 hours).
pub const TASK_BUCKETS: [f64; 18] = [
    1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 10800.0,
    14400.0, 28800.0, 43200.0, 86400.0,
];

/// An API call answered: 1 ms to 30 s.
pub const API_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 30.0,
];

/// A scheduling pass: 10 µs to 1 s.
pub const PASS_BUCKETS: [f64; 11] = [
    0.00001, 0.00003, 0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0,
];

/// WindowPoSt of a deadline: 1 s to 30 min (its challenge window).
pub const POST_BUCKETS: [f64; 10] = [1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0];

/// Makes a family's histograms with fixed buckets.
#[derive(Clone, Copy)]
pub struct Buckets(pub &'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// A family of histograms with fixed buckets.
pub type Histograms<L> = Family<L, Histogram, Buckets>;

fn histograms<L: Clone + std::hash::Hash + Eq>(buckets: &'static [f64]) -> Histograms<L> {
    Family::new_with_constructor(Buckets(buckets))
}

/// A counter made to show `value` where the source keeps a running total itself (a count
/// stored across restarts): it only ever grows.
fn catch_up(c: &prometheus_client::metrics::counter::Counter, value: u64) {
    let now = c.get();
    if value > now {
        c.inc_by(value - now);
    }
}
