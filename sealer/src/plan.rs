//! `sealer plan --cluster FILE`: a cluster described in TOML (machines with their CPUs, RAM,
//! swap, GPUs, seal space, the tasks their worker runs and its env overrides) and the steps'
//! times, planned with `sched::plan`: how many of each task fit at once on each machine and what
//! stops the next one, the bound on sectors a day and what is full at it, what the scheduler
//! reaches in a simulated week and with how many sectors in flight (MaxSealingSectors), and
//! what to add next.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{bail, Context, Result};
use resources::{human_bytes, parse_bytes, ResourceTable, SectorSize, TaskSet, TaskType};
use sched::plan::{self, Addition, Durations, Full, SealSpace};
use sched::WorkerSpec;
use serde::Deserialize;
use stores::{FileTypes, PathKind};

/// The cluster file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// `32GiB`, `64GiB`.
    pub sector_size: String,
    /// Step times overriding the built-in ones: `PC1 = "4h"`, ..., and `wait` (PC2 to C1).
    #[serde(default)]
    pub durations: BTreeMap<String, String>,
    #[serde(rename = "machine", default)]
    pub machines: Vec<MachineFile>,
    /// Proving sectors for the WindowPoSt headroom (default: a year of sealing at the bound).
    #[serde(default)]
    pub sectors: Option<u64>,
}

/// One worker: a machine, or the part of one a worker is given.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineFile {
    pub name: String,
    pub cpus: u64,
    pub memory: String,
    #[serde(default)]
    pub swap: Option<String>,
    /// Memory the rest of the machine uses (the OS, other programs).
    #[serde(default)]
    pub memory_used: Option<String>,
    #[serde(default)]
    pub gpus: usize,
    /// Its sealing path's size (the sectors in flight keep their files there).
    #[serde(default)]
    pub seal_space: Option<String>,
    /// The task types its worker runs (`AP`, `PC1`, `PC2`, `C1`, `C2`, `FIN`, ...).
    pub tasks: Vec<String>,
    /// The worker's resource env overrides (`PC1_64G_MAX_CONCURRENT = "6"`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// lotus's 32GiB step times (its docs' benchmarks; PC1 3.5-4 h on a CPU, lotus #1475), PC2 and
/// C2 on a GPU; other sizes scale with the sector (SDR and the trees are linear in it). The wait
/// between PC2 and C1 is the seed's: 150 epochs of 30 s.
const BUILT_IN_32G_S: [(TaskType, f64); 6] = [
    (TaskType::AddPiece, 5.0 * 60.0),
    (TaskType::PreCommit1, 3.5 * 3600.0),
    (TaskType::PreCommit2, 15.0 * 60.0),
    (TaskType::Commit1, 60.0),
    (TaskType::Commit2, 10.0 * 60.0),
    (TaskType::Finalize, 2.0 * 60.0),
];
const WAIT_S: f64 = 150.0 * 30.0;
/// One partition's WindowPoSt on a GPU: the load tool's lotus figure (10 min for a 32GiB
/// partition); `WDP = "..."` under `[durations]` overrides it.
const WDP_PARTITION_S: f64 = 600.0;

/// The step times, and a WindowPoSt partition's.
pub struct Times {
    pub steps: Durations,
    pub wdp_partition_s: f64,
}

/// The step times: the built-in ones for `size`, with the file's overrides.
pub fn durations(size: SectorSize, over: &BTreeMap<String, String>) -> Result<Times> {
    let scale = size.bytes() as f64 / (32u64 << 30) as f64;
    let mut d = Durations {
        step_s: BUILT_IN_32G_S
            .iter()
            .map(|(t, s)| (*t, s * scale))
            .collect(),
        wait_s: WAIT_S,
    };
    let mut wdp = WDP_PARTITION_S;
    for (k, v) in over {
        let secs = crate::config::parse_duration(v)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("[durations] {k}"))?
            .as_secs_f64();
        if k.eq_ignore_ascii_case("wait") {
            d.wait_s = secs;
            continue;
        }
        if k.eq_ignore_ascii_case("WDP") {
            wdp = secs;
            continue;
        }
        let t: TaskType = k.parse().map_err(|_| {
            anyhow::anyhow!("[durations] {k}: not a step (AP, PC1, PC2, C1, C2, FIN, WDP or wait)")
        })?;
        if !plan::STEPS.contains(&t) {
            bail!("[durations] {k}: not a step with a time here (AP, PC1, PC2, C1, C2, FIN, WDP or wait)");
        }
        d.step_s.insert(t, secs);
    }
    Ok(Times {
        steps: d,
        wdp_partition_s: wdp,
    })
}

/// A machine as the scheduler would see its worker, and its seal space.
pub fn machine(m: &MachineFile) -> Result<(WorkerSpec, Option<u64>)> {
    let bytes = |what: &str, v: &Option<String>| -> Result<u64> {
        v.as_deref().map_or(Ok(0), |s| {
            parse_bytes(s)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("machine {}: {what}", m.name))
        })
    };
    let tasks: TaskSet = m
        .tasks
        .iter()
        .map(|t| t.parse::<TaskType>())
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("machine {}: tasks: {e}", m.name))?;
    let env = m.env.clone();
    let table = ResourceTable::from_lookup(&|k| env.get(k).cloned())
        .with_context(|| format!("machine {}: env", m.name))?;
    let spec = WorkerSpec {
        name: m.name.clone(),
        resources: resources::WorkerResources {
            mem_physical: bytes("memory", &Some(m.memory.clone()))?,
            mem_used: bytes("memory_used", &m.memory_used)?,
            mem_swap: bytes("swap", &m.swap)?,
            mem_swap_used: 0,
            cpus: m.cpus,
            gpus: (0..m.gpus).map(|i| format!("GPU {i}")).collect(),
        },
        table,
        tasks,
        cpus: None,
        task_cpus: Default::default(),
    };
    let space = m
        .seal_space
        .is_some()
        .then(|| bytes("seal_space", &m.seal_space))
        .transpose()?;
    Ok((spec, space))
}

/// The whole plan, as text.
pub fn report(file: &ClusterFile, days: f64) -> Result<String> {
    let size: SectorSize = file
        .sector_size
        .parse()
        .map_err(|e| anyhow::anyhow!("sector_size: {e}"))?;
    if file.machines.is_empty() {
        bail!("no [[machine]] in the cluster file");
    }
    let times = durations(size, &file.durations)?;
    let d = times.steps;
    let per_sector = FileTypes::ALL.overhead(size, PathKind::Sealing);
    let mut specs = Vec::new();
    let mut total_space: Option<u64> = None;
    let mut out = String::new();
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
        file.machines.len(),
        plan::STEPS.map(step).join(", "),
        hm(d.wait_s)
    )?;
    writeln!(
        out,
        "A sector's files on the sealing path: {}",
        human_bytes(per_sector)
    )?;
    for m in &file.machines {
        let (spec, space) = machine(m)?;
        let r = &spec.resources;
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
        let seal = space.map(|total| SealSpace { total, per_sector });
        for a in plan::machine(&spec, size, seal) {
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
                _ => writeln!(
                    out,
                    "  {:<4} {:>5} at once; the next: {}",
                    a.task.short(),
                    a.count,
                    a.limit
                )?,
            }
        }
        if let Some(s) = space {
            total_space = Some(total_space.unwrap_or(0) + s);
        }
        specs.push(spec);
    }
    let space = total_space.map(|t| (t, per_sector));
    let b = plan::bound(&specs, size, &d, space)?;
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
    // Little's law's count of sectors in flight, then more until the scheduler reaches 95 %.
    // What the seal space holds, whole sectors.
    let room = space.map(|(t, p)| (t / p) as u32);
    if room == Some(0) {
        bail!(
            "the seal space ({}) holds no {size} sector's files ({} each)",
            human_bytes(space.map_or(0, |s| s.0)),
            human_bytes(per_sector)
        );
    }
    // Little's law's count of sectors in flight, then a quarter more at a time until the
    // scheduler reaches 95 % of the bound, the seal space is full, or 8 tries.
    let mut n = (b.per_day * d.in_flight_s() / 86_400.0).ceil().max(1.0) as u32;
    n = room.map_or(n, |r| n.min(r));
    let mut best = (plan::simulate(&specs, size, &d, n, days), n);
    let mut stopped = "";
    for tries in 0.. {
        if best.0.per_day >= 0.95 * b.per_day {
            break;
        }
        let more = room.map_or(u32::MAX, |r| r).min(n + n.div_ceil(4));
        if more == n {
            stopped = "; the seal space holds no more";
            break;
        }
        if tries == 8 {
            stopped = "; more sectors in flight did not get closer";
            break;
        }
        n = more;
        let sim = plan::simulate(&specs, size, &d, n, days);
        if sim.per_day > best.0.per_day {
            best = (sim, n);
        }
    }
    let (sim, max_sealing) = best;
    writeln!(
        out,
        "Scheduler, simulated {days} days: {:.1} sectors a day ({:.3} of the bound) with MaxSealingSectors = {max_sealing}{stopped}",
        sim.per_day,
        sim.per_day / b.per_day
    )?;
    writeln!(
        out,
        "  seal space for them: {} ({} a sector)",
        human_bytes(u64::from(max_sealing) * per_sector),
        human_bytes(per_sector)
    )?;
    post_headroom(
        &mut out,
        file,
        &specs,
        size,
        b.per_day,
        times.wdp_partition_s,
    )?;
    let next = plan::additions(&specs, size, &d, space)?;
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

/// The WindowPoSt lines: one deadline's proofs on the machines that run WDP, against the window.
fn post_headroom(
    out: &mut String,
    file: &ClusterFile,
    specs: &[WorkerSpec],
    size: SectorSize,
    per_day: f64,
    partition_s: f64,
) -> Result<()> {
    let (sectors, whence) = match file.sectors {
        Some(n) => (n, "`sectors` in the file"),
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
