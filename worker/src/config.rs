//! The worker's own config file, `worker.toml` in its repo: per task type, the knobs seeds 003/004
//! (venus-cluster's external processors) give and lotus does not: a concurrency limit, extra env
//! for the task's processor, the CPUs it may run on, a NUMA node to keep it (and its memory) on.
//!
//! ```toml
//! [PC1]
//! MaxConcurrent = 14
//! Cpus = "0-41"
//! NumaNode = 0
//! Env = { FIL_PROOFS_MULTICORE_SDR_PRODUCERS = "1" }
//! ```
//!
//! Lotus's env overrides (`PC1_32G_MAX_CONCURRENT`, `PC1_MAX_CONCURRENT`, ...) keep working and
//! win over the file.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use resources::topology::{CpuSet, Topology};
use resources::{ResourceTable, TaskType};
use serde::Deserialize;

/// One task type's section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct TaskConfig {
    /// At most this many at once on this worker (lotus's `<TASK>_MAX_CONCURRENT`).
    pub max_concurrent: Option<u32>,
    /// Extra variables for the task's processor.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The CPUs its processors may run on (within the worker's `--cpus`).
    pub cpus: Option<String>,
    /// Keep it on this NUMA node: its CPUs (with `Cpus`, those of both) and its memory
    /// (allocations preferred there).
    pub numa_node: Option<u32>,
}

/// The file, by task type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerConfig {
    pub tasks: BTreeMap<TaskType, TaskConfig>,
}

impl WorkerConfig {
    pub const FILE: &'static str = "worker.toml";

    /// The file in `repo`, or an empty config where there is none.
    pub fn load(repo: &Path) -> Result<WorkerConfig> {
        let path = repo.join(Self::FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text).with_context(|| format!("{}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(WorkerConfig::default()),
            Err(e) => Err(anyhow!("{}: {e}", path.display())),
        }
    }

    pub fn parse(text: &str) -> Result<WorkerConfig> {
        let raw: BTreeMap<String, TaskConfig> = toml::from_str(text)?;
        let mut tasks = BTreeMap::new();
        for (name, c) in raw {
            let t: TaskType = name.parse().map_err(|e| {
                anyhow!("[{name}]: {e} (sections are task types: [PC1], [C2], ...)")
            })?;
            if let Some(cpus) = &c.cpus {
                cpus.parse::<CpuSet>()
                    .map_err(|e| anyhow!("[{name}] Cpus: {e}"))?;
            }
            tasks.insert(t, c);
        }
        Ok(WorkerConfig { tasks })
    }

    /// Lotus's resource table from the environment, with the file's limits where the
    /// environment sets none, and PC1's threads from the `FIL_PROOFS_*` its `Env` gives its
    /// processors (so the scheduler's unit is the one the child labels with).
    pub fn table(&self) -> Result<ResourceTable> {
        self.table_with(&|k| std::env::var(k).ok())
    }

    /// [`WorkerConfig::table`] with the environment read through `env`.
    pub fn table_with(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<ResourceTable> {
        let file: BTreeMap<String, String> = self
            .tasks
            .iter()
            .filter_map(|(t, c)| {
                let n = c.max_concurrent?;
                Some((format!("{}_MAX_CONCURRENT", t.short()), n.to_string()))
            })
            .collect();
        let pc1_env = self
            .tasks
            .get(&TaskType::PreCommit1)
            .map(|c| &c.env)
            .cloned()
            .unwrap_or_default();
        Ok(ResourceTable::from_lookup(&|k| {
            let sdr = k.starts_with("FIL_PROOFS_");
            env(k)
                .or_else(|| file.get(k).cloned())
                .or_else(|| sdr.then(|| pc1_env.get(k).cloned()).flatten())
        })?)
    }

    /// The CPUs each task type is kept to, within `allowed`, from `Cpus` and `NumaNode`. A set
    /// with nothing left is refused by name.
    pub fn task_cpus(
        &self,
        topo: Option<&Topology>,
        allowed: &CpuSet,
    ) -> Result<BTreeMap<TaskType, CpuSet>> {
        let mut out = BTreeMap::new();
        for (t, c) in &self.tasks {
            let mut set = allowed.clone();
            if let Some(cpus) = &c.cpus {
                let want: CpuSet = cpus.parse()?;
                set = set.and(&want);
            }
            if let Some(node) = c.numa_node {
                let topo = topo.ok_or_else(|| {
                    anyhow!(
                        "[{}] NumaNode = {node}: the CPU layout is not known",
                        t.short()
                    )
                })?;
                let cpus = topo
                    .numa
                    .iter()
                    .find(|(n, _)| *n == node)
                    .map(|(_, s)| s)
                    .ok_or_else(|| {
                        let nodes: Vec<String> =
                            topo.numa.iter().map(|(n, _)| n.to_string()).collect();
                        anyhow!(
                            "[{}] NumaNode = {node}: this machine has NUMA nodes {}",
                            t.short(),
                            nodes.join(", ")
                        )
                    })?;
                set = set.and(cpus);
            }
            if c.cpus.is_some() || c.numa_node.is_some() {
                if set.is_empty() {
                    return Err(anyhow!(
                        "[{}]: no CPU left of the worker's {allowed} with Cpus = {:?} and \
                         NumaNode = {:?}",
                        t.short(),
                        c.cpus.as_deref().unwrap_or("-"),
                        c.numa_node
                    ));
                }
                out.insert(*t, set);
            }
        }
        Ok(out)
    }

    /// Extra env and NUMA node for a task type's processor.
    pub fn for_task(&self, t: TaskType) -> (Vec<(String, String)>, Option<u32>) {
        self.tasks.get(&t).map_or((Vec::new(), None), |c| {
            (
                c.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                c.numa_node,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_task_types_with_seeds_003_004_knobs() {
        let c = WorkerConfig::parse(
            "[PC1]\nMaxConcurrent = 14\nCpus = \"0-41\"\nNumaNode = 0\n\
             Env = { FIL_PROOFS_MULTICORE_SDR_PRODUCERS = \"1\" }\n[C2]\nCpus = \"42-47\"\n",
        )
        .unwrap();
        let pc1 = &c.tasks[&TaskType::PreCommit1];
        assert_eq!(pc1.max_concurrent, Some(14));
        assert_eq!(
            c.for_task(TaskType::PreCommit1),
            (
                vec![("FIL_PROOFS_MULTICORE_SDR_PRODUCERS".into(), "1".into())],
                Some(0)
            )
        );
        // Two sockets of 24 cores with HT: node 0 is 0-23,48-71.
        let topo = Topology::uniform(2, 1, 24, true);
        let per = c.task_cpus(Some(&topo), &topo.cpus).unwrap();
        assert_eq!(per[&TaskType::PreCommit1].to_string(), "0-23");
        assert_eq!(per[&TaskType::Commit2].to_string(), "42-47");
        // Within the worker's own CPUs only.
        let e = c
            .task_cpus(Some(&topo), &"48-95".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("[PC1]") && e.contains("48-95"), "{e}");
        let e = WorkerConfig::parse("[PC1]\nNumaNode = 3\n")
            .unwrap()
            .task_cpus(Some(&topo), &topo.cpus)
            .unwrap_err()
            .to_string();
        assert!(e.contains("NUMA nodes 0, 1"), "{e}");
    }

    #[test]
    fn bad_files_are_refused_naming_the_section_and_key() {
        let e = WorkerConfig::parse("[PC3]\nMaxConcurrent = 1\n").unwrap_err();
        assert!(format!("{e:#}").contains("[PC3]"), "{e:#}");
        let e = WorkerConfig::parse("[PC1]\nCpus = \"3-1\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("[PC1] Cpus"), "{e:#}");
        let e = WorkerConfig::parse("[PC1]\nMaxConcurent = 1\n").unwrap_err();
        assert!(format!("{e:#}").contains("MaxConcurent"), "{e:#}");
    }

    #[test]
    fn lotus_env_overrides_win_over_the_file() {
        let c = WorkerConfig::parse("[PC2]\nMaxConcurrent = 3\n[AP]\nMaxConcurrent = 5\n").unwrap();
        let s = resources::SectorSize::S32GiB;
        let env = |k: &str| match k {
            "AP_32G_MAX_CONCURRENT" => Some("7".to_string()),
            "PC2_MAX_CONCURRENT" => Some("2".to_string()),
            _ => None,
        };
        let t = c.table_with(&env).unwrap();
        assert_eq!(t.get(TaskType::PreCommit2, s).max_concurrent, 2);
        assert_eq!(t.get(TaskType::AddPiece, s).max_concurrent, 7);
        assert_eq!(
            t.get(TaskType::AddPiece, resources::SectorSize::S2KiB)
                .max_concurrent,
            5
        );
        let t = c.table_with(&|_| None).unwrap();
        assert_eq!(t.get(TaskType::PreCommit2, s).max_concurrent, 3);
        // PC1's processors labelling with multicore SDR (set in the file): the scheduler counts
        // the producers + 1 threads they use.
        let c = WorkerConfig::parse(
            "[PC1]\nEnv = { FIL_PROOFS_USE_MULTICORE_SDR = \"1\", \
             FIL_PROOFS_MULTICORE_SDR_PRODUCERS = \"2\" }\n",
        )
        .unwrap();
        let t = c.table_with(&|_| None).unwrap();
        assert_eq!(t.get(TaskType::PreCommit1, s).max_parallelism, 3);
    }
}
