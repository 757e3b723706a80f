//! `sealer plan`: a cluster, described in TOML (machines with their CPUs, RAM, swap, GPUs, seal
//! space, the tasks their worker runs and its env overrides) or as the workers registered with a
//! running sealer, and the steps' times (built-in, from the file, or as the cluster recorded
//! them), planned with `sched::plan`: how many of each task fit at once on each machine and what
//! stops the next one, the bound on sectors a day and what is full at it, what the scheduler
//! reaches in a simulated week and with how many sectors in flight (MaxSealingSectors), the
//! WindowPoSt headroom, and what to add next.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{bail, Result};
use resources::{human_bytes, SectorSize, TaskType};
use sched::plan::{self, Addition, Full, SealSpace};
use sched::WorkerSpec;
use stores::{FileTypes, PathKind};

mod input;

pub use input::{
    durations, machine, Cluster, ClusterFile, DurationsFile, Machine, MachineFile, Times,
};

/// The whole plan, as text.
pub fn report(c: &Cluster, days: f64, pledge: Option<f64>) -> Result<String> {
    let size = c.size;
    let d = &c.times.steps;
    let per_sector = FileTypes::ALL.overhead(size, PathKind::Sealing);
    let mut out = String::new();
    for n in &c.notes {
        writeln!(out, "{n}")?;
    }
    let step = |t: TaskType| {
        format!(
            "{} {}",
            t.short(),
            hm(d.step_s.get(&t).copied().unwrap_or(0.0))
        )
    };
    writeln!(
        out,
        "Plan for {size} sectors on {} machines; steps: {}; wait PC2 -> C1 {}",
        c.machines.len(),
        plan::STEPS.map(step).join(", "),
        hm(d.wait_s)
    )?;
    writeln!(
        out,
        "A sector's files on the sealing path: {}",
        human_bytes(per_sector)
    )?;
    // A path several workers reach counts once.
    let mut paths: BTreeMap<&str, u64> = BTreeMap::new();
    let mut any_space = false;
    for m in &c.machines {
        let spec = &m.spec;
        let r = &spec.resources;
        let space = m.seal.as_ref().map(|p| p.iter().map(|x| x.1).sum::<u64>());
        writeln!(
            out,
            "\n{}: {} CPUs, {} RAM, {} swap, {} GPUs, seal space {}",
            spec.name,
            r.cpus,
            human_bytes(r.mem_physical),
            human_bytes(r.mem_swap),
            r.gpus.len(),
            space.map_or("not given".to_string(), human_bytes)
        )?;
        let own: Vec<String> = c
            .times
            .machine_src
            .iter()
            .filter(|((name, _), _)| *name == spec.name)
            .map(|((_, t), src)| format!("{} {} ({src})", t.short(), hm(d.on(&spec.name, *t))))
            .collect();
        if !own.is_empty() {
            writeln!(out, "  its own times: {}", own.join(", "))?;
        }
        let seal = space.map(|total| SealSpace { total, per_sector });
        for a in plan::machine(spec, size, seal) {
            let post = matches!(a.task, TaskType::WindowPoSt | TaskType::WinningPoSt);
            if !plan::STEPS.contains(&a.task) && !post {
                continue;
            }
            match a.limit {
                plan::Limit::None => writeln!(
                    out,
                    "  {:<4}     - at once: no limit in the table",
                    a.task.short()
                )?,
                _ => write!(
                    out,
                    "  {:<4} {:>5} at once; the next: {}",
                    a.task.short(),
                    a.count,
                    a.limit
                )?,
            }
            // What the machine itself would allow, where the seal space stops it first.
            if let plan::Limit::SealSpace { .. } = a.limit {
                let alone = plan::at_once(spec, a.task, size, None);
                match alone.limit {
                    plan::Limit::None => write!(out, "; the machine: no limit")?,
                    l => write!(out, "; the machine: {} ({l})", alone.count)?,
                }
            }
            if !matches!(a.limit, plan::Limit::None) {
                writeln!(out)?;
            }
        }
        for (id, bytes) in m.seal.iter().flatten() {
            any_space = true;
            paths.insert(id, *bytes);
        }
    }
    let specs: Vec<WorkerSpec> = c.machines.iter().map(|m| m.spec.clone()).collect();
    let space = any_space.then(|| (paths.values().sum::<u64>(), per_sector));
    if let Some((total, _)) = space {
        writeln!(
            out,
            "\nSeal space: {} on {} paths, {} sectors' files",
            human_bytes(total),
            paths.len(),
            total / per_sector.max(1)
        )?;
    }
    let b = plan::bound(&specs, size, d, space)?;
    writeln!(out, "\nBound: {:.1} sectors a day", b.per_day)?;
    let mut alone = b.alone.clone();
    alone.sort_by(|x, y| x.1.total_cmp(&y.1));
    let alone: Vec<String> = alone
        .iter()
        .take(3)
        .map(|(t, n)| format!("{} {n:.1}", t.short()))
        .collect();
    writeln!(
        out,
        "  the slowest steps alone, on every machine running them: {}",
        alone.join(", ")
    )?;
    let full: Vec<String> = b.full.iter().map(|f| full_name(f, &specs)).collect();
    writeln!(out, "  full at the bound: {}", full.join("; "))?;
    // What the seal space holds, whole sectors.
    let room = space.map(|(t, p)| (t / p) as u32);
    if room == Some(0) {
        bail!(
            "the seal space ({}) holds no {size} sector's files ({} each)",
            human_bytes(space.map_or(0, |s| s.0)),
            human_bytes(per_sector)
        );
    }
    // The scheduler as it is; where it stays under 95 % of the bound, also with the limits the
    // bound's mix implies (the bound often has many solutions: limits from one of them are
    // proposed only where the scheduler needs them, and only where they help).
    let target = 0.95 * b.per_day;
    let (sim, max_sealing, stopped) = searched(plan::max_sealing(
        &specs,
        size,
        d,
        b.in_flight,
        room,
        days,
        target,
    ));
    let limits = match sim.per_day < target {
        true => plan::limits(&specs, size, &b),
        false => Vec::new(),
    };
    let steered = (!limits.is_empty()).then(|| {
        let tuned = plan::with_limits(&specs, size, &limits);
        searched(plan::max_sealing(
            &tuned,
            size,
            d,
            b.in_flight,
            room,
            days,
            target,
        ))
    });
    let span = |s: &plan::Simulated| match s.days < days {
        true => format!("{} ({} sectors)", hm(s.days * 86_400.0), s.sealed),
        false => format!("{days} days"),
    };
    writeln!(
        out,
        "Scheduler, simulated {}: {:.1} sectors a day ({:.3} of the bound) with MaxSealingSectors = {max_sealing}{stopped}",
        span(&sim),
        sim.per_day,
        sim.per_day / b.per_day
    )?;
    let mut sealing = max_sealing;
    if let Some((tuned, n, stopped)) = steered {
        let names: Vec<String> = limits.iter().map(|l| limit_name(l, &specs, size)).collect();
        if tuned.per_day > sim.per_day * 1.005 {
            sealing = n;
            writeln!(
                out,
                "  with the bound's concurrency: {:.1} a day ({:.3} of the bound) with MaxSealingSectors = {n}{stopped}: {}",
                tuned.per_day,
                tuned.per_day / b.per_day,
                names.join("; ")
            )?;
        } else {
            writeln!(
                out,
                "  the bound's concurrency ({}) would not help: {:.1} a day",
                names.join("; "),
                tuned.per_day
            )?;
        }
    }
    writeln!(
        out,
        "  seal space for them: {} ({} a sector)",
        human_bytes(u64::from(sealing) * per_sector),
        human_bytes(per_sector)
    )?;
    if let Some(rate) = pledge {
        // The seal space caps the sectors in flight as MaxSealingSectors would.
        let p = plan::simulate_pledged(&specs, size, d, rate, room, days);
        writeln!(
            out,
            "Pledging {rate} a day for {days} days: {:.1} sealed a day; {} pledged{}, {} sealed, {} refused{}; at most {} sectors in flight at once ({} of seal space)",
            p.per_day,
            p.pledged,
            match (p.pledged as f64) < (rate * days).floor() {
                true => format!(" (a run stops at {})", plan::MAX_SECTORS),
                false => String::new(),
            },
            p.sealed,
            p.refused,
            match room {
                Some(r) => format!(" (MaxSealingSectors = {r}, what the seal space holds)"),
                None => String::new(),
            },
            p.peak_in_flight,
            human_bytes(p.peak_in_flight * per_sector)
        )?;
        if rate > b.per_day * 1.01 {
            writeln!(
                out,
                "  above the bound ({:.1} a day): the cluster cannot take them all",
                b.per_day
            )?;
        }
    }
    post_headroom(
        &mut out,
        c.sectors.as_ref(),
        &specs,
        size,
        b.per_day,
        c.times.wdp_partition_s,
    )?;
    let next = plan::additions(&specs, size, d, space)?;
    writeln!(out, "What to add next:")?;
    if next.is_empty() {
        writeln!(out, "  nothing of one kind raises the bound alone")?;
    }
    for (a, n) in next.iter().take(5) {
        writeln!(
            out,
            "  {}: {n:.1} a day (+{:.1})",
            addition_name(a, &specs),
            n - b.per_day
        )?;
    }
    Ok(out)
}

/// The search's best run, its MaxSealingSectors, and what stopped it (said after the count).
fn searched(s: plan::Searched) -> (plan::Simulated, u32, &'static str) {
    let why = match s.stopped {
        plan::Stop::Reached => "",
        plan::Stop::SealSpace => "; the seal space holds no more",
        plan::Stop::NoCloser => "; more sectors in flight did not get closer",
    };
    (s.sim, s.max_sealing, why)
}

/// A limit as the operator sets it: the worker's env override, or its `worker run` flag.
fn limit_name(l: &plan::Tuned, specs: &[WorkerSpec], size: SectorSize) -> String {
    let name = &specs[l.machine].name;
    match l.max {
        0 => {
            let flag = match l.task {
                TaskType::PreCommit1 => "--precommit1=false",
                TaskType::PreCommit2 => "--precommit2=false",
                _ => "--commit=false",
            };
            format!("{name}: no {} ({flag})", l.task.short())
        }
        n => format!(
            "{name}: {}_{}_MAX_CONCURRENT={n}",
            l.task.short(),
            size.env_name()
        ),
    }
}

/// The WindowPoSt lines: one deadline's proofs on the machines that run WDP, against the window.
fn post_headroom(
    out: &mut String,
    sectors: Option<&(u64, String)>,
    specs: &[WorkerSpec],
    size: SectorSize,
    per_day: f64,
    partition_s: f64,
) -> Result<()> {
    let (sectors, whence) = match sectors {
        Some((n, whence)) => (*n, whence.as_str()),
        None => (
            (per_day * 365.0).round() as u64,
            "a year of sealing at the bound",
        ),
    };
    let provers: Vec<&str> = specs
        .iter()
        .filter(|m| m.tasks.contains(TaskType::WindowPoSt))
        .map(|m| m.name.as_str())
        .collect();
    let per_partition = chain::devnet::proving::partition_sectors(size) as u64;
    let h = plan::headroom(sectors, per_partition, partition_s, provers.len() as u32);
    writeln!(
        out,
        "WindowPoSt with {sectors} sectors ({whence}): {} a deadline, {} partitions of {per_partition}, {} messages",
        h.deadline_sectors, h.partitions, h.messages
    )?;
    if provers.is_empty() {
        writeln!(
            out,
            "  no machine runs WDP: give the one that proves (the sealer's) tasks = [\"WDP\", ...]"
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "  proven in {} of the {} window on {} ({} a partition); up to {} sectors within it",
        hm(h.proving_s),
        hm(plan::WINDOW_S),
        provers.join(", "),
        hm(partition_s),
        h.max_sectors
    )?;
    Ok(())
}

fn hm(s: f64) -> String {
    if s < 59.5 {
        return match s < 9.95 {
            true => format!("{s:.1}s"),
            false => format!("{s:.0}s"),
        };
    }
    let m = (s / 60.0).round() as u64;
    match (m / 60, m % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m}m"),
    }
}

fn full_name(f: &Full, specs: &[WorkerSpec]) -> String {
    let n = |i: &usize| specs[*i].name.clone();
    match f {
        Full::Ram(i) => format!("RAM on {}", n(i)),
        Full::RamSwap(i) => format!("RAM+swap on {}", n(i)),
        Full::Cpus(i) => format!("CPUs on {}", n(i)),
        Full::Gpus(i) => format!("GPUs on {}", n(i)),
        Full::AtOnce(i, t) => format!("{} at once on {}", t.short(), n(i)),
        Full::SealSpace => "seal space".to_string(),
    }
}

fn addition_name(a: &Addition, specs: &[WorkerSpec]) -> String {
    let n = |i: &usize| specs[*i].name.clone();
    match a {
        Addition::Ram(i) => format!("half as much RAM again on {}", n(i)),
        Addition::Cpus(i) => format!("half as many cores again on {}", n(i)),
        Addition::Gpu(i) => format!("a GPU on {}", n(i)),
        Addition::Machine(i) => format!("another machine like {}", n(i)),
        Addition::SealSpace => "half as much seal space again".to_string(),
    }
}
