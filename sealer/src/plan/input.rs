//! What `sealer plan` plans: a cluster file (`[[machine]]`s, `[durations]`), or the workers
//! registered with a running sealer, turned into the scheduler's worker specs, their sealing
//! paths and the steps' times (built-in from published figures, the file's, a machine's own,
//! or those the cluster recorded).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context, Result};
use resources::{human_bytes, parse_bytes, ResourceTable, SectorSize, TaskSet, TaskType};
use sched::plan::{self, Durations};
use sched::WorkerSpec;
use serde::Deserialize;

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

/// `sealer plan --durations FILE`: the step times alone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurationsFile {
    #[serde(default)]
    pub durations: BTreeMap<String, String>,
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
    /// A name for that path where machines share it (an NFS share): its space counts once.
    #[serde(default)]
    pub seal_path: Option<String>,
    /// The task types its worker runs (`AP`, `PC1`, `PC2`, `C1`, `C2`, `FIN`, ...).
    pub tasks: Vec<String>,
    /// The worker's resource env overrides (`PC1_64G_MAX_CONCURRENT = "6"`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Its own step times where they differ from the cluster's (`C2 = "1h30m"`).
    #[serde(default)]
    pub durations: BTreeMap<String, String>,
    /// The machine where several workers run side by side (seed 001's B): said in the plan.
    #[serde(default)]
    pub host: Option<String>,
}

/// A cluster to plan: its machines and the steps' times, from a file or a running sealer.
pub struct Cluster {
    pub size: SectorSize,
    pub machines: Vec<Machine>,
    pub times: Times,
    /// Proving sectors for the WindowPoSt headroom, and where the number comes from.
    pub sectors: Option<(u64, String)>,
    /// Said before the plan: where the machines and times come from, and what may mislead.
    pub notes: Vec<String>,
}

/// One worker to plan.
pub struct Machine {
    pub spec: WorkerSpec,
    /// Its sealing paths (ID, bytes); `None`: not given (not limited).
    pub seal: Option<Vec<(String, u64)>>,
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
/// PC2 and C2 of 32GiB on a CPU (lotus #1475, a Ryzen 3700X, 16 threads, without a GPU: PC2
/// 4h04m, C2 1h36m), for a machine without GPUs; scaled with the sector as the GPU times are,
/// and by 16 over the threads the step gets there (both build Merkle trees or proofs on every
/// thread they are given: an estimate, which a measured time in the file replaces).
const CPU_THREADS: f64 = 16.0;
const CPU_32G_S: [(TaskType, f64); 2] = [
    (TaskType::PreCommit2, 4.0 * 3600.0 + 4.0 * 60.0),
    (TaskType::Commit2, 3600.0 + 36.0 * 60.0),
];
/// One partition's WindowPoSt on a GPU: 10 min for a full 32GiB partition. bellperson #22
/// measured 3m34s-4m23s for a 32GiB window PoSt of one sector on an RTX 3090 (the SNARK is
/// one partition's, whatever its sectors); 10 min is an allowance on top for reading 2,349
/// sectors' challenges from disk and for a smaller card, not a measurement. `WDP = "..."`
/// under `[durations]` overrides it.
const WDP_PARTITION_S: f64 = 600.0;

/// The step times, and a WindowPoSt partition's.
pub struct Times {
    pub steps: Durations,
    pub wdp_partition_s: f64,
    /// Where each machine's own times come from, by machine and step.
    pub machine_src: BTreeMap<(String, TaskType), String>,
    /// The steps the cluster's times override (a machine without GPUs keeps them too).
    pub overridden: BTreeSet<TaskType>,
}

/// The step times: the built-in ones for `size`, with the file's overrides.
pub fn durations(size: SectorSize, over: &BTreeMap<String, String>) -> Result<Times> {
    let scale = size.bytes() as f64 / (32u64 << 30) as f64;
    let mut d = Durations::new(
        BUILT_IN_32G_S
            .iter()
            .map(|(t, s)| (*t, s * scale))
            .collect(),
        WAIT_S,
    );
    let mut wdp = WDP_PARTITION_S;
    let mut overridden = BTreeSet::new();
    for (k, v) in over {
        let secs = parse_secs("[durations]", k, v)?;
        if k.eq_ignore_ascii_case("wait") {
            d.wait_s = secs;
            continue;
        }
        if k.eq_ignore_ascii_case("WDP") {
            wdp = secs;
            continue;
        }
        let t = step("[durations]", k)?;
        d.step_s.insert(t, secs);
        overridden.insert(t);
    }
    Ok(Times {
        steps: d,
        wdp_partition_s: wdp,
        machine_src: BTreeMap::new(),
        overridden,
    })
}

/// What workers on one machine should know: each counts the memory it reports, as the
/// scheduler does.
fn shared_host(who: &str) -> String {
    format!(
        "{who}: each is planned with the memory and CPUs it reports, as the scheduler counts \
         them, so together they may be given more than the machine has; a worker reports its \
         cgroup's MemoryMax and CPU quota where set (systemd's MemoryMax=, CPUQuota=): give each \
         its share"
    )
}

fn parse_secs(whose: &str, k: &str, v: &str) -> Result<f64> {
    Ok(crate::config::parse_duration(v)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("{whose} {k}"))?
        .as_secs_f64())
}

fn step(whose: &str, k: &str) -> Result<TaskType> {
    let t: TaskType = k.parse().map_err(|_| {
        anyhow::anyhow!("{whose} {k}: not a step (AP, PC1, PC2, C1, C2, FIN, WDP or wait)")
    })?;
    if !plan::STEPS.contains(&t) {
        bail!("{whose} {k}: not a step with a time here (AP, PC1, PC2, C1, C2, FIN, WDP or wait)");
    }
    Ok(t)
}

impl Times {
    /// A machine's own time for a step, and where it comes from.
    pub fn set(&mut self, machine: &str, t: TaskType, secs: f64, src: String) {
        self.steps.machine_s.insert((machine.to_string(), t), secs);
        self.machine_src.insert((machine.to_string(), t), src);
    }

    /// A machine without GPUs runs PC2 and C2 on its CPUs: their CPU times (unless the
    /// cluster's times were given for them).
    pub fn on_cpus(&mut self, spec: &WorkerSpec, size: SectorSize) {
        if !spec.resources.gpus.is_empty() {
            return;
        }
        let scale = size.bytes() as f64 / (32u64 << 30) as f64;
        for (t, s) in CPU_32G_S {
            if spec.tasks.contains(t) && !self.overridden.contains(&t) {
                let threads = sched::Need::of(spec, t, size).threads.max(1);
                let src = format!("on {threads} CPU threads: lotus #1475's 16, scaled");
                self.set(&spec.name, t, s * scale * CPU_THREADS / threads as f64, src);
            }
        }
    }
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

impl Cluster {
    /// The cluster a file describes.
    pub fn from_file(file: &ClusterFile) -> Result<Cluster> {
        let size: SectorSize = file
            .sector_size
            .parse()
            .map_err(|e| anyhow::anyhow!("sector_size: {e}"))?;
        if file.machines.is_empty() {
            bail!("no [[machine]] in the cluster file");
        }
        let mut times = durations(size, &file.durations)?;
        let mut machines = Vec::new();
        let mut shared: BTreeMap<String, u64> = BTreeMap::new();
        for m in &file.machines {
            let (spec, space) = machine(m)?;
            times.on_cpus(&spec, size);
            for (k, v) in &m.durations {
                let whose = format!("machine {}: durations", m.name);
                let t = step(&whose, k)?;
                let secs = parse_secs(&whose, k, v)?;
                times.set(&m.name, t, secs, "the file".into());
            }
            if m.seal_path.is_some() && space.is_none() {
                bail!("machine {}: seal_path without seal_space", m.name);
            }
            let path = m.seal_path.clone().unwrap_or_else(|| m.name.clone());
            if let Some(b) = space {
                if let Some(other) = shared.insert(path.clone(), b).filter(|o| *o != b) {
                    bail!(
                        "machine {}: seal_path {path} is {} here and {} on another machine",
                        m.name,
                        human_bytes(b),
                        human_bytes(other)
                    );
                }
            }
            let seal = space.map(|b| vec![(path, b)]);
            machines.push(Machine { spec, seal });
        }
        let mut hosts: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for m in &file.machines {
            if let Some(h) = &m.host {
                hosts.entry(h).or_default().push(&m.name);
            }
        }
        let notes = hosts
            .iter()
            .filter(|h| h.1.len() > 1)
            .map(|(h, names)| shared_host(&format!("{} share host {h}", names.join(" and "))))
            .collect();
        Ok(Cluster {
            size,
            machines,
            times,
            sectors: file
                .sectors
                .map(|n| (n, "`sectors` in the file".to_string())),
            notes,
        })
    }

    /// The workers registered with a running sealer; the steps' times built in (or `over`),
    /// and with `recorded` each worker's own where it has run the step.
    pub fn from_sealer(
        inputs: &api::PlanInputs,
        over: &BTreeMap<String, String>,
        recorded: bool,
    ) -> Result<Cluster> {
        let size = inputs.sector_size;
        let mut notes = vec![format!(
            "The {} workers registered with the sealer ({} engine); MaxSealingSectors there: {}",
            inputs.workers.len(),
            inputs.engine,
            match inputs.max_sealing {
                0 => "no limit".to_string(),
                n => n.to_string(),
            }
        )];
        if inputs.workers.is_empty() {
            bail!("no worker is registered with the sealer: nothing to plan");
        }
        let mut times = durations(size, over)?;
        if !over.keys().any(|k| k.eq_ignore_ascii_case("wait")) {
            times.steps.wait_s = inputs.seed_wait_s;
        }
        let mut machines = Vec::new();
        let mut hosts: BTreeMap<String, u32> = BTreeMap::new();
        let mut used = 0;
        for w in &inputs.workers {
            let n = hosts.entry(w.name.clone()).or_default();
            *n += 1;
            if !w.connected || !w.enabled {
                notes.push(format!(
                    "{} is {}: planned as if it took tasks",
                    w.name,
                    if w.connected {
                        "disabled"
                    } else {
                        "not answering"
                    }
                ));
            }
            let spec = WorkerSpec {
                name: w.name.clone(),
                resources: w.resources.clone(),
                table: w.table.clone(),
                tasks: w.tasks,
                cpus: None,
                task_cpus: Default::default(),
            };
            times.on_cpus(&spec, size);
            if recorded {
                for (t, runs, mean) in &w.took {
                    if plan::STEPS.contains(t) && *runs > 0 {
                        let src = match runs {
                            1 => "recorded, 1 run".to_string(),
                            n => format!("recorded, {n} runs"),
                        };
                        times.set(&w.name, *t, *mean, src);
                        used += 1;
                    }
                }
            }
            let seal = (!w.seal_paths.is_empty()).then(|| w.seal_paths.clone());
            machines.push(Machine { spec, seal });
        }
        for (host, n) in hosts.iter().filter(|h| *h.1 > 1) {
            notes.push(shared_host(&format!(
                "{n} workers are named {host} (they share their step times here): if they share one machine, they"
            )));
        }
        if recorded {
            notes.push(format!(
                "Times recorded by this cluster: {used} (worker, step) pairs; the others built in"
            ));
            if inputs.engine == "mock" {
                notes.push(
                    "The mock engine ran these steps: its times are not a real machine's".into(),
                );
            }
        }
        Ok(Cluster {
            size,
            machines,
            times,
            sectors: Some((inputs.sectors, "the sectors the miner proves now".into())),
            notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn file(text: &str) -> Result<Cluster> {
        Cluster::from_file(&toml::from_str::<ClusterFile>(text).unwrap())
    }

    #[test]
    fn a_machine_without_gpus_runs_pc2_and_c2_at_cpu_times_unless_a_time_is_given() {
        let c = file(
            r#"
            sector_size = "32GiB"
            [[machine]]
            name = "cpu"
            cpus = 32
            memory = "512GiB"
            tasks = ["PC2", "C2"]
            [[machine]]
            name = "gpu"
            cpus = 32
            memory = "512GiB"
            gpus = 1
            tasks = ["PC2", "C2"]
            [[machine]]
            name = "timed"
            cpus = 32
            memory = "512GiB"
            tasks = ["PC2", "C2"]
            durations = { C2 = "2h" }
            "#,
        )
        .unwrap();
        let d = &c.times.steps;
        // lotus #1475's 16-thread times (PC2 4h04m, C2 1h36m) over the threads lotus's table
        // gives each step on this machine.
        let threads = |t| sched::Need::of(&c.machines[0].spec, t, SectorSize::S32GiB).threads;
        let pc2 = threads(TaskType::PreCommit2);
        assert!(pc2 > 16, "{pc2}");
        let want = 244.0 * 60.0 * 16.0 / pc2 as f64;
        assert_eq!(d.on("cpu", TaskType::PreCommit2), want);
        let want = 96.0 * 60.0 * 16.0 / threads(TaskType::Commit2) as f64;
        assert_eq!(d.on("cpu", TaskType::Commit2), want);
        let src = &c.times.machine_src[&("cpu".to_string(), TaskType::PreCommit2)];
        assert_eq!(
            src,
            &format!("on {pc2} CPU threads: lotus #1475's 16, scaled")
        );
        // The GPU machine keeps the built-in GPU times.
        assert_eq!(d.on("gpu", TaskType::PreCommit2), 15.0 * 60.0);
        assert_eq!(d.on("timed", TaskType::Commit2), 2.0 * 3600.0);
        let src = &c.times.machine_src[&("timed".to_string(), TaskType::Commit2)];
        assert_eq!(src, "the file");
        // A cluster-wide time is the operator's: no CPU estimate replaces it.
        let c = file(
            r#"
            sector_size = "32GiB"
            [durations]
            PC2 = "50m"
            [[machine]]
            name = "cpu"
            cpus = 32
            memory = "512GiB"
            tasks = ["PC2", "C2"]
            "#,
        )
        .unwrap();
        assert_eq!(c.times.steps.on("cpu", TaskType::PreCommit2), 50.0 * 60.0);
        assert!(c.times.steps.on("cpu", TaskType::Commit2) > 30.0 * 60.0);
    }

    #[test]
    fn a_shared_seal_path_counts_once_and_must_have_one_size() {
        let two = |b: &str| {
            format!(
                r#"
                sector_size = "32GiB"
                [[machine]]
                name = "a"
                cpus = 8
                memory = "64GiB"
                seal_space = "4TiB"
                seal_path = "nfs"
                tasks = ["PC1"]
                [[machine]]
                name = "b"
                cpus = 8
                memory = "64GiB"
                seal_space = "{b}"
                seal_path = "nfs"
                tasks = ["PC1"]
                "#
            )
        };
        let c = file(&two("4TiB")).unwrap();
        let paths: Vec<_> = c.machines.iter().map(|m| m.seal.clone().unwrap()).collect();
        assert_eq!(paths[0], paths[1]);
        assert_eq!(paths[0], vec![("nfs".to_string(), 4096 * GIB)]);
        let e = file(&two("2TiB")).err().unwrap().to_string();
        assert!(
            e.contains("machine b: seal_path nfs is 2 TiB here and 4 TiB on another machine"),
            "{e}"
        );
    }

    fn worker(name: &str, took: Vec<(TaskType, u64, f64)>) -> api::PlanWorker {
        api::PlanWorker {
            name: name.into(),
            enabled: true,
            connected: true,
            tasks: [TaskType::PreCommit1, TaskType::PreCommit2]
                .into_iter()
                .collect(),
            resources: resources::WorkerResources {
                mem_physical: 256 * GIB,
                mem_used: 0,
                mem_swap: 0,
                mem_swap_used: 0,
                cpus: 64,
                gpus: vec!["GPU 0".into()],
            },
            table: ResourceTable::from_lookup(&|_| None).unwrap(),
            seal_paths: vec![("p1".into(), 1024 * GIB)],
            took,
        }
    }

    #[test]
    fn a_running_clusters_workers_are_planned_with_the_times_they_recorded() {
        let inputs = api::PlanInputs {
            sector_size: SectorSize::S32GiB,
            sectors: 1200,
            max_sealing: 0,
            seed_wait_s: 150.0 * 30.0,
            engine: "real".into(),
            workers: vec![
                worker("h1", vec![(TaskType::PreCommit1, 3, 5.0 * 3600.0)]),
                worker("h1", vec![]),
            ],
        };
        let none = BTreeMap::new();
        let c = Cluster::from_sealer(&inputs, &none, true).unwrap();
        assert_eq!(c.machines.len(), 2);
        assert_eq!(c.times.steps.on("h1", TaskType::PreCommit1), 5.0 * 3600.0);
        assert_eq!(c.times.steps.wait_s, 150.0 * 30.0);
        assert_eq!(c.sectors.as_ref().map(|s| s.0), Some(1200));
        let notes = c.notes.join("\n");
        assert!(
            notes.contains(
                "2 workers are named h1 (they share their step times here): if they share"
            ),
            "{notes}"
        );
        assert!(notes.contains("1 (worker, step) pairs"), "{notes}");
        // Without --recorded, the built-in times; a [durations] wait wins over the chain's.
        let over: BTreeMap<String, String> = [("wait".to_string(), "1h".to_string())].into();
        let c = Cluster::from_sealer(&inputs, &over, false).unwrap();
        assert_eq!(c.times.steps.on("h1", TaskType::PreCommit1), 3.5 * 3600.0);
        assert_eq!(c.times.steps.wait_s, 3600.0);
        // A sealer without workers has nothing to plan, and says so.
        let empty = api::PlanInputs {
            workers: Vec::new(),
            ..inputs
        };
        let e = Cluster::from_sealer(&empty, &none, true).err().unwrap();
        assert!(e.to_string().contains("no worker is registered"), "{e}");
    }
}
