//! The machine's CPUs as Linux lays them out: cores with their hyperthread siblings, the groups
//! of cores that share an L3 cache, NUMA nodes. Read from `sys/devices/system/{cpu,node}` under
//! a root directory (`/` on a machine; a fixture tree in tests), as rust-fil-proofs' multicore
//! SDR and an operator's `lscpu` see them. Issue #17 places tasks on these; this module only
//! reads them.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A set of CPUs (Linux logical CPU numbers), written as Linux lists them: `0-3,8-11`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CpuSet(pub BTreeSet<u32>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a CPU list (e.g. \"0-3,8-11\"): {reason}")]
pub struct CpuListError {
    pub text: String,
    pub reason: String,
}

impl CpuSet {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, cpu: u32) -> bool {
        self.0.contains(&cpu)
    }

    pub fn first(&self) -> Option<u32> {
        self.0.first().copied()
    }

    /// The CPUs in both.
    pub fn and(&self, other: &CpuSet) -> CpuSet {
        CpuSet(self.0.intersection(&other.0).copied().collect())
    }
}

impl FromIterator<u32> for CpuSet {
    fn from_iter<I: IntoIterator<Item = u32>>(it: I) -> Self {
        CpuSet(it.into_iter().collect())
    }
}

impl std::str::FromStr for CpuSet {
    type Err = CpuListError;

    /// `0-3,8-11`, `5`, or empty (no CPU), as `/sys` and `taskset -c` write them.
    fn from_str(s: &str) -> Result<CpuSet, CpuListError> {
        let bad = |reason: String| CpuListError {
            text: s.to_string(),
            reason,
        };
        let mut out = BTreeSet::new();
        for part in s.trim().split(',').filter(|p| !p.trim().is_empty()) {
            let num = |t: &str| {
                t.trim()
                    .parse::<u32>()
                    .map_err(|_| bad(format!("{t:?} is not a CPU number")))
            };
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (num(a)?, num(b)?);
                    if a > b {
                        return Err(bad(format!("range {a}-{b} runs backwards")));
                    }
                    out.extend(a..=b);
                }
                None => {
                    out.insert(num(part)?);
                }
            }
        }
        Ok(CpuSet(out))
    }
}

impl fmt::Display for CpuSet {
    /// Ranges as Linux writes them: `0-3,8-11`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut it = self.0.iter().copied().peekable();
        while let Some(start) = it.next() {
            let mut end = start;
            while it.peek() == Some(&(end + 1)) {
                end = it.next().expect("peeked");
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            match start == end {
                true => write!(f, "{start}")?,
                false => write!(f, "{start}-{end}")?,
            }
        }
        Ok(())
    }
}

/// A physical core: its hyperthreads (one CPU without SMT) and its package (socket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Core {
    pub cpus: CpuSet,
    pub package: u32,
}

/// The machine's CPU layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    /// Every online CPU.
    pub cpus: CpuSet,
    /// Physical cores, by their first CPU.
    pub cores: Vec<Core>,
    /// Groups of CPUs sharing an L3 cache (one per package where `/sys` names no L3).
    pub l3: Vec<CpuSet>,
    /// NUMA nodes and their CPUs (one node with every CPU where `/sys` has none).
    pub numa: Vec<(u32, CpuSet)>,
    /// Each GPU's NUMA node, in NVML's order (none where the machine does not say). Filled by
    /// the worker from NVML and `/sys/bus/pci`; `read` leaves it empty.
    #[serde(default)]
    pub gpus: Vec<Option<u32>>,
}

/// Where the scheduler placed a running task on its worker: its CPUs, and for a task that
/// uses a GPU, which one (NVML's index, as `CUDA_VISIBLE_DEVICES` with
/// `CUDA_DEVICE_ORDER=PCI_BUS_ID` counts them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    pub cpus: CpuSet,
    #[serde(default)]
    pub gpu: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("reading {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    List {
        path: PathBuf,
        #[source]
        source: CpuListError,
    },
    #[error("{path}: {text:?} is not a number")]
    Number { path: PathBuf, text: String },
}

fn read(path: &Path) -> Result<String, TopologyError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| TopologyError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

fn read_list(path: &Path) -> Result<CpuSet, TopologyError> {
    read(path)?.parse().map_err(|source| TopologyError::List {
        path: path.to_path_buf(),
        source,
    })
}

fn read_number(path: &Path) -> Result<u32, TopologyError> {
    let text = read(path)?;
    text.parse().map_err(|_| TopologyError::Number {
        path: path.to_path_buf(),
        text,
    })
}

impl Topology {
    /// The layout under `root` (`/` for this machine).
    pub fn read(root: &Path) -> Result<Topology, TopologyError> {
        let cpu_dir = root.join("sys/devices/system/cpu");
        let cpus = read_list(&cpu_dir.join("online"))?;
        let mut cores: Vec<Core> = Vec::new();
        let mut l3: Vec<CpuSet> = Vec::new();
        let mut packages: Vec<(u32, CpuSet)> = Vec::new();
        for cpu in &cpus.0 {
            let dir = cpu_dir.join(format!("cpu{cpu}"));
            let topo = dir.join("topology");
            // core_cpus_list since Linux 5.7; thread_siblings_list before.
            let siblings = match read_list(&topo.join("core_cpus_list")) {
                Ok(s) => s,
                Err(TopologyError::Read { .. }) => read_list(&topo.join("thread_siblings_list"))?,
                Err(e) => return Err(e),
            };
            let package = read_number(&topo.join("physical_package_id"))?;
            // Siblings that are offline are not ours to use.
            let siblings = siblings.and(&cpus);
            if !cores.iter().any(|c| c.cpus == siblings) {
                cores.push(Core {
                    cpus: siblings,
                    package,
                });
            }
            match packages.iter_mut().find(|(p, _)| *p == package) {
                Some((_, set)) => {
                    set.0.insert(*cpu);
                }
                None => packages.push((package, CpuSet::from_iter([*cpu]))),
            }
            if let Some(shared) = l3_of(&dir.join("cache"))? {
                let shared = shared.and(&cpus);
                if !l3.contains(&shared) {
                    l3.push(shared);
                }
            }
        }
        if l3.is_empty() {
            l3 = packages.into_iter().map(|(_, set)| set).collect();
        }
        cores.sort_by_key(|c| c.cpus.first());
        l3.sort_by_key(|s| s.first());
        let numa = numa_nodes(&root.join("sys/devices/system/node"), &cpus)?;
        Ok(Topology {
            cpus,
            cores,
            l3,
            numa,
            gpus: Vec::new(),
        })
    }
}

impl Topology {
    /// This machine's layout (`/`), with each GPU's NUMA node.
    pub fn this_machine() -> Result<Topology, TopologyError> {
        let mut t = Topology::read(Path::new("/"))?;
        t.gpus = crate::host::gpu_numa_nodes();
        Ok(t)
    }

    /// A uniform machine numbered as Linux numbers Intel and AMD CPUs: core `k`'s first thread
    /// is CPU `k`, its second CPU `k + cores` (with SMT); L3 groups and packages are runs of
    /// consecutive cores; one NUMA node per package.
    pub fn uniform(packages: u32, l3_per_package: u32, cores_per_l3: u32, smt: bool) -> Topology {
        let per_package = l3_per_package * cores_per_l3;
        let n = packages * per_package;
        let threads = |k: u32| -> CpuSet {
            if smt {
                CpuSet::from_iter([k, k + n])
            } else {
                CpuSet::from_iter([k])
            }
        };
        let cores: Vec<Core> = (0..n)
            .map(|k| Core {
                cpus: threads(k),
                package: k / per_package,
            })
            .collect();
        let group = |from: u32, len: u32| -> CpuSet {
            (from..from + len).flat_map(|k| threads(k).0).collect()
        };
        Topology {
            cpus: group(0, n),
            cores,
            l3: (0..packages * l3_per_package)
                .map(|g| group(g * cores_per_l3, cores_per_l3))
                .collect(),
            numa: (0..packages)
                .map(|p| (p, group(p * per_package, per_package)))
                .collect(),
            gpus: Vec::new(),
        }
    }
}

/// The CPUs sharing this CPU's L3 cache (its `cache/indexK` of level 3), if it has one.
fn l3_of(cache: &Path) -> Result<Option<CpuSet>, TopologyError> {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return Ok(None);
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with("index") {
            continue;
        }
        if read_number(&e.path().join("level"))? == 3 {
            return Ok(Some(read_list(&e.path().join("shared_cpu_list"))?));
        }
    }
    Ok(None)
}

/// `nodeN/cpulist` for each NUMA node, or one node with every CPU.
fn numa_nodes(dir: &Path, cpus: &CpuSet) -> Result<Vec<(u32, CpuSet)>, TopologyError> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(n) = name
                .strip_prefix("node")
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            out.push((n, read_list(&e.path().join("cpulist"))?.and(cpus)));
        }
    }
    out.sort_by_key(|(n, _)| *n);
    if out.is_empty() {
        out.push((0, cpus.clone()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_read_and_print_as_linux_writes_them() {
        let s: CpuSet = "0-3,8-11, 5".parse().unwrap();
        assert_eq!(s.len(), 9);
        assert_eq!(s.to_string(), "0-3,5,8-11");
        assert_eq!("".parse::<CpuSet>().unwrap(), CpuSet::default());
        let e = "3-1".parse::<CpuSet>().unwrap_err().to_string();
        assert!(e.contains("\"3-1\"") && e.contains("runs backwards"), "{e}");
        let e = "0-x".parse::<CpuSet>().unwrap_err().to_string();
        assert!(e.contains("\"x\" is not a CPU number"), "{e}");
    }

    /// A fixture `/sys`: 2 packages × 2 L3 groups × 2 cores × 2 hyperthreads, siblings
    /// numbered as Linux does on many servers (CPU c and c + 8 share core c), one NUMA node
    /// per package; CPU 15 offline.
    fn fixture(root: &Path) {
        let cpu = root.join("sys/devices/system/cpu");
        std::fs::create_dir_all(&cpu).unwrap();
        std::fs::write(cpu.join("online"), "0-14\n").unwrap();
        for c in 0..16u32 {
            let core = c % 8;
            let package = core / 4;
            let l3 = core / 2;
            let d = cpu.join(format!("cpu{c}"));
            std::fs::create_dir_all(d.join("topology")).unwrap();
            let siblings = format!("{core},{}", core + 8);
            std::fs::write(d.join("topology/core_cpus_list"), &siblings).unwrap();
            std::fs::write(d.join("topology/physical_package_id"), package.to_string()).unwrap();
            for (i, level, shared) in [
                (0, 1, siblings.clone()),
                (2, 2, siblings.clone()),
                (
                    3,
                    3,
                    format!("{}-{},{}-{}", l3 * 2, l3 * 2 + 1, l3 * 2 + 8, l3 * 2 + 9),
                ),
            ] {
                let idx = d.join(format!("cache/index{i}"));
                std::fs::create_dir_all(&idx).unwrap();
                std::fs::write(idx.join("level"), level.to_string()).unwrap();
                std::fs::write(idx.join("shared_cpu_list"), shared).unwrap();
            }
        }
        let node = root.join("sys/devices/system/node");
        for (n, list) in [(0, "0-3,8-11"), (1, "4-7,12-15")] {
            std::fs::create_dir_all(node.join(format!("node{n}"))).unwrap();
            std::fs::write(node.join(format!("node{n}/cpulist")), list).unwrap();
        }
    }

    #[test]
    fn a_fixture_machine_reads_as_its_cores_l3_groups_and_numa_nodes() {
        let dir = tempfile::tempdir().unwrap();
        fixture(dir.path());
        let t = Topology::read(dir.path()).unwrap();
        assert_eq!(t.cpus.to_string(), "0-14");
        assert_eq!(t.cores.len(), 8);
        assert_eq!(t.cores[0].cpus.to_string(), "0,8");
        // Core 7's sibling, CPU 15, is offline.
        assert_eq!(t.cores[7].cpus.to_string(), "7");
        assert_eq!((t.cores[3].package, t.cores[4].package), (0, 1));
        let l3: Vec<String> = t.l3.iter().map(|s| s.to_string()).collect();
        assert_eq!(l3, ["0-1,8-9", "2-3,10-11", "4-5,12-13", "6-7,14"]);
        let numa: Vec<(u32, String)> = t.numa.iter().map(|(n, s)| (*n, s.to_string())).collect();
        assert_eq!(numa, [(0, "0-3,8-11".into()), (1, "4-7,12-14".into())]);
    }

    #[test]
    fn a_broken_sys_tree_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fixture(dir.path());
        let bad = dir
            .path()
            .join("sys/devices/system/cpu/cpu2/topology/physical_package_id");
        std::fs::write(&bad, "two").unwrap();
        let e = Topology::read(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("cpu2/topology/physical_package_id") && e.contains("\"two\""),
            "{e}"
        );
        let e = Topology::read(Path::new("/nonexistent"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/sys/devices/system/cpu/online"),
            "{e}"
        );
    }

    /// Writes `t` as Linux shows it under `root`: per CPU its core's threads and package, its
    /// L3 group (where `l3`), the NUMA nodes (where `numa`).
    fn write_sys(root: &Path, t: &Topology, l3: bool, numa: bool) {
        let cpu = root.join("sys/devices/system/cpu");
        std::fs::create_dir_all(&cpu).unwrap();
        std::fs::write(cpu.join("online"), format!("{}\n", t.cpus)).unwrap();
        for core in &t.cores {
            for c in &core.cpus.0 {
                let d = cpu.join(format!("cpu{c}"));
                std::fs::create_dir_all(d.join("topology")).unwrap();
                std::fs::write(d.join("topology/core_cpus_list"), core.cpus.to_string()).unwrap();
                std::fs::write(
                    d.join("topology/physical_package_id"),
                    core.package.to_string(),
                )
                .unwrap();
                let idx = d.join("cache/index2");
                std::fs::create_dir_all(&idx).unwrap();
                std::fs::write(idx.join("level"), "2").unwrap();
                std::fs::write(idx.join("shared_cpu_list"), core.cpus.to_string()).unwrap();
                if l3 {
                    let g = t.l3.iter().find(|g| g.contains(*c)).unwrap();
                    let idx = d.join("cache/index3");
                    std::fs::create_dir_all(&idx).unwrap();
                    std::fs::write(idx.join("level"), "3").unwrap();
                    std::fs::write(idx.join("shared_cpu_list"), g.to_string()).unwrap();
                }
            }
        }
        if numa {
            let node = root.join("sys/devices/system/node");
            for (n, list) in &t.numa {
                std::fs::create_dir_all(node.join(format!("node{n}"))).unwrap();
                std::fs::write(node.join(format!("node{n}/cpulist")), list.to_string()).unwrap();
            }
        }
    }

    /// Three machines as their /sys shows them: an AMD EPYC 7642 (48 cores in 16 L3 groups
    /// of 3, SMT), a two-socket Intel Xeon with hyperthreading (2 × 24 cores, one L3 and one
    /// NUMA node per socket), and a small VM (4 vCPUs, no L3 or NUMA information).
    #[test]
    fn three_real_machine_layouts_read_back_as_they_are() {
        for (name, t, l3, numa) in [
            ("EPYC 7642", Topology::uniform(1, 16, 3, true), true, true),
            (
                "2 x Xeon 24c HT",
                Topology::uniform(2, 1, 24, true),
                true,
                true,
            ),
            ("4-vCPU VM", Topology::uniform(1, 1, 4, false), false, false),
        ] {
            let dir = tempfile::tempdir().unwrap();
            write_sys(dir.path(), &t, l3, numa);
            let read = Topology::read(dir.path()).unwrap();
            assert_eq!(read, t, "{name}");
        }
        let epyc = Topology::uniform(1, 16, 3, true);
        assert_eq!(epyc.cpus.to_string(), "0-95");
        assert_eq!(epyc.cores[5].cpus.to_string(), "5,53");
        assert_eq!(epyc.l3[1].to_string(), "3-5,51-53");
        let xeon = Topology::uniform(2, 1, 24, true);
        assert_eq!(xeon.numa[1].1.to_string(), "24-47,72-95");
    }

    #[test]
    fn this_machine_reads() {
        // Where /sys is mounted (not in every container), the layout holds every online CPU.
        if !Path::new("/sys/devices/system/cpu/online").exists() {
            return;
        }
        let t = Topology::read(Path::new("/")).unwrap();
        let in_cores: usize = t.cores.iter().map(|c| c.cpus.len()).sum();
        assert_eq!(in_cores, t.cpus.len(), "{t:?}");
        assert!(!t.l3.is_empty() && !t.numa.is_empty(), "{t:?}");
    }
}
