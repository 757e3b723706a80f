//! What a worker's host has: CPUs, memory, swap and GPUs, as the scheduler accounts them.
//!
//! Memory and CPUs come from sysinfo, narrowed to the process's cgroup v2 limits when those are
//! smaller (containers); GPUs come from NVML when it loads, and are simply absent when it does not.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A worker's hardware as reported to the scheduler (lotus's `WorkerResources` field names).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WorkerResources {
    #[serde(rename = "MemPhysical")]
    pub mem_physical: u64,
    /// Memory in use by everything else on the host when the worker reported.
    #[serde(rename = "MemUsed")]
    pub mem_used: u64,
    #[serde(rename = "MemSwap")]
    pub mem_swap: u64,
    #[serde(rename = "MemSwapUsed")]
    pub mem_swap_used: u64,
    #[serde(rename = "CPUs")]
    pub cpus: u64,
    /// GPU names; empty when the host has none (or NVML is not there).
    #[serde(rename = "GPUs")]
    pub gpus: Vec<String>,
}

impl WorkerResources {
    /// Drops swap from the accounting, as `--no-swap` does.
    pub fn without_swap(mut self) -> Self {
        self.mem_swap = 0;
        self.mem_swap_used = 0;
        self
    }
}

/// Limits of a cgroup v2 group; `None` where the group sets none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupLimits {
    pub memory_max: Option<u64>,
    pub memory_current: Option<u64>,
    pub swap_max: Option<u64>,
    /// CPUs allowed by `cpu.max` (quota / period, rounded up).
    pub cpus: Option<u64>,
}

fn read_limit(path: &Path) -> Option<u64> {
    let s = fs::read_to_string(path).ok()?;
    let s = s.trim();
    if s == "max" {
        None
    } else {
        s.parse().ok()
    }
}

/// The cgroup v2 directory of this process under `mount` (normally `/sys/fs/cgroup`), from the
/// contents of `/proc/self/cgroup`. `None` on cgroup v1 or when the line is missing.
pub fn cgroup_dir(mount: &Path, proc_self_cgroup: &str) -> Option<PathBuf> {
    let rel = proc_self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .trim()
        .trim_start_matches('/');
    let dir = mount.join(rel);
    dir.is_dir().then_some(dir)
}

/// Reads the limits of one cgroup v2 directory.
pub fn cgroup_limits(dir: &Path) -> CgroupLimits {
    let cpus = fs::read_to_string(dir.join("cpu.max")).ok().and_then(|s| {
        let mut it = s.split_whitespace();
        let quota = it.next()?.parse::<u64>().ok()?;
        let period = it
            .next()
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(100_000);
        (period > 0).then(|| quota.div_ceil(period).max(1))
    });
    CgroupLimits {
        memory_max: read_limit(&dir.join("memory.max")),
        memory_current: read_limit(&dir.join("memory.current")),
        swap_max: read_limit(&dir.join("memory.swap.max")),
        cpus,
    }
}

/// Narrows host figures to the cgroup's limits where those are smaller.
pub fn apply_cgroup(mut r: WorkerResources, lim: &CgroupLimits) -> WorkerResources {
    if let Some(max) = lim.memory_max.filter(|m| *m < r.mem_physical) {
        r.mem_physical = max;
        // Inside a limited group, what counts as used is the group's own usage.
        r.mem_used = lim.memory_current.unwrap_or(r.mem_used).min(max);
    }
    if let Some(swap) = lim.swap_max.filter(|s| *s < r.mem_swap) {
        r.mem_swap = swap;
        r.mem_swap_used = r.mem_swap_used.min(swap);
    }
    if let Some(c) = lim.cpus.filter(|c| *c < r.cpus) {
        r.cpus = c;
    }
    r
}

/// GPU names through NVML; empty (and no error) when NVML does not load.
pub fn detect_gpus() -> Vec<String> {
    let nvml = match nvml_wrapper::Nvml::init() {
        Ok(n) => n,
        Err(e) => {
            tracing::debug!("no GPUs: NVML did not load ({e})");
            return Vec::new();
        }
    };
    let count = nvml.device_count().unwrap_or(0);
    (0..count)
        .map(|i| {
            nvml.device_by_index(i)
                .and_then(|d| d.name())
                .unwrap_or_else(|e| format!("GPU {i} ({e})"))
        })
        .collect()
}

/// Each GPU's NUMA node, in NVML's order: from its PCI address, `/sys/bus/pci/devices/<addr>/
/// numa_node` (-1 there, or no NVML: none).
pub fn gpu_numa_nodes() -> Vec<Option<u32>> {
    let Ok(nvml) = nvml_wrapper::Nvml::init() else {
        return Vec::new();
    };
    let count = nvml.device_count().unwrap_or(0);
    (0..count)
        .map(|i| {
            let bus = nvml.device_by_index(i).and_then(|d| d.pci_info()).ok()?;
            let addr = sysfs_pci_address(&bus.bus_id)?;
            let node = std::fs::read_to_string(format!("/sys/bus/pci/devices/{addr}/numa_node"));
            node.ok()?
                .trim()
                .parse::<i64>()
                .ok()
                .and_then(|n| u32::try_from(n).ok())
        })
        .collect()
}

/// NVML's PCI bus id (`00000000:3B:00.0`, an 8-digit domain) as `/sys/bus/pci/devices` names
/// it (`0000:3b:00.0`).
pub fn sysfs_pci_address(bus_id: &str) -> Option<String> {
    let bus_id = bus_id.trim_end_matches('\0');
    let (domain, rest) = bus_id.split_once(':')?;
    if domain.len() < 4 || rest.len() != 7 {
        return None;
    }
    let domain = &domain[domain.len() - 4..];
    Some(format!("{domain}:{rest}").to_ascii_lowercase())
}

/// Detects this host's resources. With `no_swap`, swap is left out of the accounting.
pub fn detect(no_swap: bool) -> WorkerResources {
    let fallback_cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let mut r = match sysinfo::System::new() {
        Ok(mut sys) => {
            sys.refresh_memory();
            sys.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
            WorkerResources {
                mem_physical: sys.total_memory(),
                mem_used: sys.used_memory(),
                mem_swap: sys.total_swap(),
                mem_swap_used: sys.used_swap(),
                cpus: match sys.cpus().len() as u64 {
                    0 => fallback_cpus,
                    n => n,
                },
                gpus: Vec::new(),
            }
        }
        Err(e) => {
            tracing::warn!("host memory unknown ({e}); accounting with 0 bytes of RAM");
            WorkerResources {
                cpus: fallback_cpus,
                ..Default::default()
            }
        }
    };
    r.gpus = detect_gpus();
    let mount = Path::new("/sys/fs/cgroup");
    if let Some(dir) = fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|c| cgroup_dir(mount, &c))
    {
        r = apply_cgroup(r, &cgroup_limits(&dir));
    }
    if no_swap {
        r = r.without_swap();
    }
    r
}

/// This machine's host name (what `sealing workers` shows unless a worker is given `--name`).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvml_bus_ids_name_their_sysfs_devices() {
        assert_eq!(
            sysfs_pci_address("00000000:3B:00.0").as_deref(),
            Some("0000:3b:00.0")
        );
        assert_eq!(
            sysfs_pci_address("00000001:C1:00.0\0").as_deref(),
            Some("0001:c1:00.0")
        );
        assert_eq!(sysfs_pci_address("3B:00.0"), None);
    }

    #[test]
    fn detects_this_host() {
        let r = detect(false);
        assert!(r.cpus >= 1);
        assert!(r.mem_physical > 0);
        assert!(r.mem_used <= r.mem_physical);
        let n = detect(true);
        assert_eq!((n.mem_swap, n.mem_swap_used), (0, 0));
    }

    #[test]
    fn cgroup_limits_narrow_the_host() {
        let dir = std::env::temp_dir().join(format!("cg-test-{}", std::process::id()));
        let group = dir.join("worker.slice");
        fs::create_dir_all(&group).unwrap();
        fs::write(group.join("memory.max"), "8589934592\n").unwrap();
        fs::write(group.join("memory.current"), "1073741824\n").unwrap();
        fs::write(group.join("memory.swap.max"), "max\n").unwrap();
        fs::write(group.join("cpu.max"), "250000 100000\n").unwrap();
        let found = cgroup_dir(&dir, "0::/worker.slice\n").unwrap();
        assert_eq!(found, group);
        let lim = cgroup_limits(&found);
        assert_eq!(lim.cpus, Some(3));
        assert_eq!(lim.swap_max, None);
        let host = WorkerResources {
            mem_physical: 64 << 30,
            mem_used: 10 << 30,
            mem_swap: 4 << 30,
            mem_swap_used: 0,
            cpus: 16,
            gpus: vec![],
        };
        let r = apply_cgroup(host.clone(), &lim);
        assert_eq!(
            (r.mem_physical, r.mem_used, r.mem_swap, r.cpus),
            (8 << 30, 1 << 30, 4 << 30, 3)
        );
        // A larger limit changes nothing.
        fs::write(group.join("memory.max"), "137438953472\n").unwrap();
        fs::write(group.join("cpu.max"), "max 100000\n").unwrap();
        assert_eq!(apply_cgroup(host.clone(), &cgroup_limits(&found)), host);
        assert_eq!(
            cgroup_dir(&dir, "12:cpu:/x\n"),
            None,
            "cgroup v1 has no 0:: line"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
