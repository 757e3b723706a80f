//! What the scheduler itself reaches on a cluster: the discrete-event simulator ([`crate::sim`])
//! runs the real scheduler over simulated machines for some days, every sector going through
//! the steps one after the other (waiting between PC2 and C1 for its seed): a new sector pledged
//! whenever one finishes, at most `max_sealing` in flight (`MaxSealingSectors`), or pledged at
//! the operator's rate whatever is in flight.

use std::cell::Cell;
use std::rc::Rc;

use resources::{SectorSize, TaskType};

use super::Durations;
use crate::scheduler::SchedConfig;
use crate::sim::Sim;
use crate::worker::WorkerSpec;

/// The most sectors one simulation seals: steps of seconds (the mock engine's, recorded by a
/// test cluster) would otherwise make a week of millions.
pub const MAX_SECTORS: u64 = 10_000;

/// What the simulation measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulated {
    /// Sectors sealed a day once the pipeline is full (the first day, or the time the first
    /// `2 x max_sealing` sectors took where that is shorter, left out).
    pub per_day: f64,
    /// Sectors sealed over the whole run.
    pub sealed: u64,
    /// Simulated days (fewer than asked where [`MAX_SECTORS`] were sealed first).
    pub days: f64,
}

/// Runs the scheduler on `machines` for `days` simulated days (or until [`MAX_SECTORS`] are
/// sealed) with `max_sealing` sectors in flight, pledged as fast as the cluster takes them.
pub fn simulate(
    machines: &[WorkerSpec],
    size: SectorSize,
    d: &Durations,
    max_sealing: u32,
    days: f64,
) -> Simulated {
    let mut sim = setup(machines, d, Some(u64::from(max_sealing) + 1));
    for s in 1..=u64::from(max_sealing) {
        sim.submit(TaskType::AddPiece, size, s, 0);
    }
    let end = (days * DAY_MS) as u64;
    sim.run(end);
    let done = sealed_at(&sim);
    // The pipeline filled once the first 2 x max_sealing sectors were sealed, or after a day.
    let filled = done
        .get(2 * max_sealing as usize)
        .copied()
        .unwrap_or(u64::MAX)
        .min(DAY_MS as u64);
    let last = done.last().copied().unwrap_or(end);
    Simulated {
        per_day: slope(&done, filled),
        sealed: done.len() as u64,
        days: if done.len() as u64 >= MAX_SECTORS {
            last as f64 / DAY_MS
        } else {
            days
        },
    }
}

/// What a run pledging at a given rate measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Pledged {
    /// Sectors sealed a day once the pipeline is full.
    pub per_day: f64,
    pub pledged: u64,
    /// Pledges refused at MaxSealingSectors.
    pub refused: u64,
    pub sealed: u64,
    /// The most sectors in flight at once (the MaxSealingSectors the rate needs).
    pub peak_in_flight: u64,
    pub days: f64,
}

/// Runs the scheduler on `machines` for `days` simulated days, a sector pledged every
/// `1 / per_day` of a day (up to [`MAX_SECTORS`]); with `max_sealing`, a pledge is refused
/// while that many are in flight (the sealer's MaxSealingSectors).
pub fn simulate_pledged(
    machines: &[WorkerSpec],
    size: SectorSize,
    d: &Durations,
    per_day: f64,
    max_sealing: Option<u32>,
    days: f64,
) -> Pledged {
    let mut sim = setup(machines, d, None);
    // Sectors in flight as each pledge is admitted or refused; a sector leaves when its FIN is
    // done.
    let flight = Rc::new(Cell::new(Flight::default()));
    let max = max_sealing.map_or(u64::MAX, u64::from);
    let (admitting, leaving) = (flight.clone(), flight.clone());
    sim.admit = Some(Box::new(move |task, _| {
        // A sector's next step, after its wait, is not a pledge.
        if task != TaskType::AddPiece {
            return true;
        }
        let mut f = admitting.get();
        let ok = f.now < max;
        if ok {
            f.now += 1;
            f.peak = f.peak.max(f.now);
        } else {
            f.refused += 1;
        }
        admitting.set(f);
        ok
    }));
    let mut follow = sim.follow.take().expect("the steps' order");
    sim.follow = Some(Box::new(move |task, sector| {
        if task == TaskType::Finalize {
            let mut f = leaving.get();
            f.now = f.now.saturating_sub(1);
            leaving.set(f);
        }
        follow(task, sector)
    }));
    let every = DAY_MS / per_day;
    let count = ((per_day * days).floor() as u64).min(MAX_SECTORS);
    for k in 0..count {
        sim.submit_at((k as f64 * every) as u64, TaskType::AddPiece, size, k + 1);
    }
    let end = (days * DAY_MS) as u64;
    sim.run(end);
    let done = sealed_at(&sim);
    let filled = done
        .first()
        .map_or(u64::MAX, |t| t.saturating_mul(2))
        .min(DAY_MS as u64);
    Pledged {
        per_day: slope(&done, filled),
        pledged: count,
        refused: flight.get().refused,
        sealed: done.len() as u64,
        peak_in_flight: flight.get().peak,
        days,
    }
}

/// A pledged run's sectors in flight: now, at most, and the pledges refused.
#[derive(Debug, Clone, Copy, Default)]
struct Flight {
    now: u64,
    peak: u64,
    refused: u64,
}

const DAY_MS: f64 = 86_400_000.0;

/// The simulator with `machines`, each sector going through the steps one after the other;
/// with `refill`, a sealed sector's place goes to a new one numbered from there (up to
/// [`MAX_SECTORS`]).
fn setup(machines: &[WorkerSpec], d: &Durations, refill: Option<u64>) -> Sim {
    let mut sim = Sim::new(SchedConfig::default());
    // Accounting checked by the scheduler's own tests; here it would cost more than the run.
    sim.check = false;
    let ms = |s: f64| (s * 1000.0).round() as u64;
    let times = d.clone();
    sim.durations = Box::new(move |t, _, worker| {
        let run = ms(times.on(worker, t));
        // Preparing (fetching inputs) is not modelled: the steps' times include it.
        (0, run.max(1))
    });
    for m in machines {
        sim.add_worker(m.clone());
    }
    let wait = ms(d.wait_s);
    let next_number = Rc::new(Cell::new(refill.unwrap_or(0)));
    let n = next_number.clone();
    sim.follow = Some(Box::new(move |task, sector| {
        let next = |t| vec![(0, t, sector)];
        match task {
            TaskType::AddPiece => next(TaskType::PreCommit1),
            TaskType::PreCommit1 => next(TaskType::PreCommit2),
            TaskType::PreCommit2 => vec![(wait, TaskType::Commit1, sector)],
            TaskType::Commit1 => next(TaskType::Commit2),
            TaskType::Commit2 => next(TaskType::Finalize),
            TaskType::Finalize if refill.is_some() => {
                let s = n.get();
                n.set(s + 1);
                match s <= MAX_SECTORS {
                    true => vec![(0, TaskType::AddPiece, s)],
                    false => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }));
    sim
}

/// When each sector was sealed (its FIN done), in time order.
fn sealed_at(sim: &Sim) -> Vec<u64> {
    sim.log
        .iter()
        .filter(|r| !r.start && r.task == TaskType::Finalize)
        .map(|r| r.time)
        .collect()
}

/// Sectors a day: the slope of sectors sealed against time from `filled` on (least squares):
/// sectors often finish in groups, so counting over a fixed window would gain or lose a whole
/// group at its ends.
fn slope(done: &[u64], filled: u64) -> f64 {
    let after: Vec<f64> = done
        .iter()
        .filter(|t| **t >= filled)
        .map(|t| *t as f64)
        .collect();
    let k = after.len() as f64;
    let (mt, mi) = (after.iter().sum::<f64>() / k, (k - 1.0) / 2.0);
    let (mut cov, mut var) = (0.0, 0.0);
    for (i, t) in after.iter().enumerate() {
        cov += (t - mt) * (i as f64 - mi);
        var += (t - mt) * (t - mt);
    }
    if after.len() > 1 && var > 0.0 {
        cov / var * DAY_MS
    } else {
        0.0
    }
}

/// What [`max_sealing`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Searched {
    /// The best run.
    pub sim: Simulated,
    /// Its sectors in flight (MaxSealingSectors).
    pub max_sealing: u32,
    pub stopped: Stop,
}

/// Why the search stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The scheduler reached the target.
    Reached,
    /// The seal space holds no more sectors.
    SealSpace,
    /// Eight more tries did not reach it.
    NoCloser,
}

/// MaxSealingSectors: Little's law's count of sectors in flight (`in_flight`, at the bound),
/// then a quarter more at a time until the scheduler reaches `target` sectors a day, the seal
/// space (`room` whole sectors) is full, or 8 tries; the best run is kept.
pub fn max_sealing(
    machines: &[WorkerSpec],
    size: SectorSize,
    d: &Durations,
    in_flight: f64,
    room: Option<u32>,
    days: f64,
    target: f64,
) -> Searched {
    let mut n = in_flight.ceil().max(1.0) as u32;
    n = room.map_or(n, |r| n.min(r));
    let mut best = (simulate(machines, size, d, n, days), n);
    let mut stopped = Stop::Reached;
    for tries in 0.. {
        if best.0.per_day >= target {
            break;
        }
        let more = room.map_or(u32::MAX, |r| r).min(n + n.div_ceil(4));
        if more == n {
            stopped = Stop::SealSpace;
            break;
        }
        if tries == 8 {
            stopped = Stop::NoCloser;
            break;
        }
        n = more;
        let sim = simulate(machines, size, d, n, days);
        if sim.per_day > best.0.per_day {
            best = (sim, n);
        }
    }
    Searched {
        sim: best.0,
        max_sealing: best.1,
        stopped,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{bound, STEPS};
    use super::*;
    use crate::sim::spec;
    use std::collections::BTreeMap;

    #[test]
    fn the_scheduler_reaches_the_bound_of_a_machine_whose_pc1s_are_the_limit() {
        // Seed 001's machine, every step: 7 PC1s of 4 h at once -> 42 a day; the other steps
        // take minutes.
        let m = spec("seed001", 1024, 128, 1, &TaskType::ALL);
        let mut step_s: BTreeMap<TaskType, f64> = STEPS.iter().map(|t| (*t, 300.0)).collect();
        step_s.insert(TaskType::PreCommit1, 4.0 * 3600.0);
        let d = Durations::new(step_s, 75.0 * 60.0);
        let b = bound(std::slice::from_ref(&m), SectorSize::S64GiB, &d, None).unwrap();
        let s = simulate(&[m], SectorSize::S64GiB, &d, 16, 7.0);
        let ratio = s.per_day / b.per_day;
        eprintln!(
            "simulated {:.2} a day, bound {:.2}: {ratio:.3}",
            s.per_day, b.per_day
        );
        assert!(ratio > 0.95 && ratio <= 1.0 + 1e-9, "{s:?} against {b:?}");
    }

    #[test]
    fn pledged_at_a_rate_the_cluster_seals_it_or_its_bound_and_the_peak_in_flight_says_so() {
        // The same machine (42 a day at most); a sector is in flight 5 h 45 min here.
        let m = spec("seed001", 1024, 128, 1, &TaskType::ALL);
        let mut step_s: BTreeMap<TaskType, f64> = STEPS.iter().map(|t| (*t, 300.0)).collect();
        step_s.insert(TaskType::PreCommit1, 4.0 * 3600.0);
        let d = Durations::new(step_s, 75.0 * 60.0);
        let m = [m];
        let size = SectorSize::S64GiB;
        let under = simulate_pledged(&m, size, &d, 24.0, None, 7.0);
        assert!((under.per_day - 24.0).abs() < 0.5, "{under:?}");
        // One an hour, each 5.75 h in flight: 6 at once (7 where two steps' ends meet).
        assert!((6..=7).contains(&under.peak_in_flight), "{under:?}");
        assert_eq!(under.pledged, 168);
        let over = simulate_pledged(&m, size, &d, 96.0, None, 7.0);
        assert!((over.per_day - 42.0).abs() < 2.0, "{over:?}");
        // The rest wait: a week's pledges beyond what was sealed are all still in flight.
        assert!(
            over.peak_in_flight >= over.pledged - over.sealed,
            "{over:?}"
        );
        assert!(over.pledged - over.sealed > 300, "{over:?}");
        // With MaxSealingSectors = 8, the pledges beyond it are refused: 8 in flight at most,
        // and the machine still seals what its PC1s allow with 8 (7 PC1s at once).
        let capped = simulate_pledged(&m, size, &d, 96.0, Some(8), 7.0);
        eprintln!("24 a day: {under:?}\n96 a day: {over:?}\n96 a day, 8 at most: {capped:?}");
        assert_eq!(capped.peak_in_flight, 8, "{capped:?}");
        assert!(capped.refused > 300, "{capped:?}");
        assert!(capped.per_day > 24.0, "{capped:?}");
    }
}
