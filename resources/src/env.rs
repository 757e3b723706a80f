//! Per-worker resource overrides from the environment, as lotus-worker reads them:
//! `<SHORT>_<SIZE>_<FIELD>` first (`PC1_32G_MAX_MEMORY=60GiB`), then `<SHORT>_<FIELD>`
//! (`PC1_MAX_CONCURRENT=4`). A malformed value is an error naming the variable and the value.

use crate::proof::SectorSize;
use crate::table::{ResourceTable, Resources};
use crate::task::TaskType;

/// A resource override in the environment that could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EnvError {
    #[error("invalid value {value:?} for {var}: {reason}")]
    Invalid {
        var: String,
        value: String,
        reason: String,
    },
}

/// The overridable fields, with their env names.
const FIELDS: [&str; 7] = [
    "MIN_MEMORY",
    "MAX_MEMORY",
    "GPU_UTILIZATION",
    "MAX_PARALLELISM",
    "MAX_PARALLELISM_GPU",
    "BASE_MIN_MEMORY",
    "MAX_CONCURRENT",
];

/// A byte count for people: `512 B`, `1.5 GiB`, `32 GiB` (what [`parse_bytes`] reads back).
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.3} {}", UNITS[u]).replace(".000 ", " ")
    }
}

/// Parses a byte count: a plain number of bytes, or a number with a binary unit
/// (`KiB`, `MiB`, `GiB`, `TiB`, `PiB`; `K`, `M`, `G`, `T`, `P` and `B` also read). Fractions are
/// allowed with a unit (`1.5GiB`).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "ki" => 1 << 10,
        "m" | "mib" | "mi" => 1 << 20,
        "g" | "gib" | "gi" => 1 << 30,
        "t" | "tib" | "ti" => 1 << 40,
        "p" | "pib" | "pi" => 1 << 50,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} (use bytes or KiB, MiB, GiB, TiB)"
            ))
        }
    };
    if num.is_empty() {
        return Err("expected a number of bytes, e.g. 60GiB".into());
    }
    if let Ok(n) = num.parse::<u64>() {
        return n
            .checked_mul(mult)
            .ok_or_else(|| "does not fit in 64 bits".to_string());
    }
    let f: f64 = num
        .parse()
        .map_err(|_| format!("{num:?} is not a number"))?;
    let v = f * mult as f64;
    if !v.is_finite() || v >= u64::MAX as f64 {
        return Err("does not fit in 64 bits".into());
    }
    Ok(v.round() as u64)
}

fn set_field(res: &mut Resources, field: &str, value: &str) -> Result<(), String> {
    let int = |v: &str| {
        v.trim()
            .parse::<i64>()
            .map_err(|_| "expected a whole number".to_string())
    };
    match field {
        "MIN_MEMORY" => res.min_memory = parse_bytes(value)?,
        "MAX_MEMORY" => res.max_memory = parse_bytes(value)?,
        "BASE_MIN_MEMORY" => res.base_min_memory = parse_bytes(value)?,
        "GPU_UTILIZATION" => {
            let f: f64 = value
                .trim()
                .parse()
                .map_err(|_| "expected a number of GPUs, e.g. 0.5".to_string())?;
            if !(0.0..=1024.0).contains(&f) {
                return Err("expected a number of GPUs between 0 and 1024".into());
            }
            res.gpu_utilization = f;
        }
        "MAX_PARALLELISM" | "MAX_PARALLELISM_GPU" => {
            let n = int(value)?;
            if n < -1 {
                return Err("expected -1 (92% of the CPUs) or a number of threads".into());
            }
            if field == "MAX_PARALLELISM" {
                res.max_parallelism = n;
            } else {
                res.max_parallelism_gpu = n;
            }
        }
        "MAX_CONCURRENT" => {
            let n = int(value)?;
            if n < 0 {
                return Err("expected 0 (no limit) or a positive number".into());
            }
            res.max_concurrent = n;
        }
        _ => unreachable!("unknown field {field}"),
    }
    Ok(())
}

/// PC1 threads under multicore SDR: the producers plus the one core doing the work.
fn sdr_threads(lookup: &dyn Fn(&str) -> Option<String>) -> Result<i64, EnvError> {
    // Read as rust-fil-proofs reads it (a boolean of the `config` crate), so the threads
    // accounted are the threads PC1 uses.
    let flag = "FIL_PROOFS_USE_MULTICORE_SDR";
    if let Some(v) = lookup(flag) {
        match v.trim().to_lowercase().as_str() {
            "1" | "true" | "on" | "yes" => {}
            "0" | "false" | "off" | "no" => return Ok(1),
            _ => {
                return Err(EnvError::Invalid {
                    var: flag.into(),
                    value: v.clone(),
                    reason: "expected 1 or 0 (or true/false, on/off, yes/no)".into(),
                })
            }
        }
    } else {
        return Ok(1);
    }
    let var = "FIL_PROOFS_MULTICORE_SDR_PRODUCERS";
    let producers = match lookup(var) {
        None => 3,
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| EnvError::Invalid {
                var: var.into(),
                value: v.clone(),
                reason: "expected a whole number of producer threads".into(),
            })?,
    };
    Ok(producers + 1)
}

impl ResourceTable {
    /// The default table with overrides read through `lookup` (a variable name to its value).
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<ResourceTable, EnvError> {
        let mut table = ResourceTable::default();
        let sdr = sdr_threads(lookup)?;
        for task in TaskType::ALL {
            for size in SectorSize::ALL {
                let res = table.get_mut(task, size);
                for field in FIELDS {
                    let sized = format!("{}_{}_{}", task.short(), size.env_name(), field);
                    let general = format!("{}_{}", task.short(), field);
                    let found = lookup(&sized)
                        .map(|v| (sized, v))
                        .or_else(|| lookup(&general).map(|v| (general, v)));
                    match found {
                        Some((var, value)) => set_field(res, field, &value)
                            .map_err(|reason| EnvError::Invalid { var, value, reason })?,
                        None if field == "MAX_PARALLELISM"
                            && matches!(task, TaskType::PreCommit1 | TaskType::Unseal) =>
                        {
                            res.max_parallelism = sdr;
                        }
                        None => {}
                    }
                }
            }
        }
        Ok(table)
    }

    /// The default table with overrides from this process's environment.
    pub fn from_env() -> Result<ResourceTable, EnvError> {
        ResourceTable::from_lookup(&|k| std::env::var(k).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn table(vars: &[(&str, &str)]) -> Result<ResourceTable, EnvError> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ResourceTable::from_lookup(&|k| m.get(k).cloned())
    }

    #[test]
    fn bytes() {
        assert_eq!(parse_bytes("60GiB").unwrap(), 60 << 30);
        assert_eq!(parse_bytes("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert_eq!(parse_bytes("8M").unwrap(), 8 << 20);
        assert!(parse_bytes("sixty").is_err());
        assert!(parse_bytes("60 GB-ish").is_err());
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("99999999999PiB").is_err());
    }

    #[test]
    fn sized_then_general() {
        let t = table(&[
            ("PC1_32G_MAX_MEMORY", "60GiB"),
            ("PC1_MAX_MEMORY", "70GiB"),
            ("PC1_MAX_CONCURRENT", "4"),
            ("C2_GPU_UTILIZATION", "0.5"),
        ])
        .unwrap();
        use SectorSize::*;
        use TaskType::*;
        assert_eq!(t.get(PreCommit1, S32GiB).max_memory, 60 << 30);
        assert_eq!(t.get(PreCommit1, S64GiB).max_memory, 70 << 30);
        assert_eq!(t.get(PreCommit1, S2KiB).max_concurrent, 4);
        assert_eq!(t.get(PreCommit1, S32GiB).max_concurrent, 4);
        assert_eq!(t.get(Commit2, S32GiB).gpu_milli(), 500);
        // Untouched entries keep lotus's defaults.
        assert_eq!(
            t.get(PreCommit2, S32GiB),
            &crate::table::default_resources(PreCommit2, S32GiB)
        );
    }

    #[test]
    fn malformed_values_name_the_variable() {
        let e = table(&[("PC1_32G_MAX_MEMORY", "lots")]).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("PC1_32G_MAX_MEMORY") && msg.contains("lots"),
            "{msg}"
        );
        let e = table(&[("C2_MAX_CONCURRENT", "-2")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("C2_MAX_CONCURRENT") && e.contains("-2"), "{e}");
        let e = table(&[("WDP_GPU_UTILIZATION", "half")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("WDP_GPU_UTILIZATION"), "{e}");
        let e = table(&[
            ("FIL_PROOFS_USE_MULTICORE_SDR", "1"),
            ("FIL_PROOFS_MULTICORE_SDR_PRODUCERS", "x"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("FIL_PROOFS_MULTICORE_SDR_PRODUCERS"), "{e}");
    }

    #[test]
    fn multicore_sdr_threads() {
        use TaskType::*;
        let t = table(&[("FIL_PROOFS_USE_MULTICORE_SDR", "1")]).unwrap();
        assert_eq!(t.get(PreCommit1, SectorSize::S32GiB).max_parallelism, 4);
        assert_eq!(t.get(Unseal, SectorSize::S32GiB).max_parallelism, 4);
        let t = table(&[
            ("FIL_PROOFS_USE_MULTICORE_SDR", "1"),
            ("FIL_PROOFS_MULTICORE_SDR_PRODUCERS", "5"),
            ("PC1_2K_MAX_PARALLELISM", "2"),
        ])
        .unwrap();
        assert_eq!(t.get(PreCommit1, SectorSize::S32GiB).max_parallelism, 6);
        assert_eq!(t.get(PreCommit1, SectorSize::S2KiB).max_parallelism, 2);
        let t = table(&[]).unwrap();
        assert_eq!(t, ResourceTable::default());
        // Spelled as rust-fil-proofs accepts it.
        let t = table(&[("FIL_PROOFS_USE_MULTICORE_SDR", "true")]).unwrap();
        assert_eq!(t.get(PreCommit1, SectorSize::S32GiB).max_parallelism, 4);
        let t = table(&[("FIL_PROOFS_USE_MULTICORE_SDR", "0")]).unwrap();
        assert_eq!(t, ResourceTable::default());
        let e = table(&[("FIL_PROOFS_USE_MULTICORE_SDR", "maybe")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("FIL_PROOFS_USE_MULTICORE_SDR") && e.contains("maybe"),
            "{e}"
        );
    }
}
