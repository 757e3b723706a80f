//! `resources` owns what every other crate agrees on about work and machines: task types with
//! lotus's short names and order numbers, what a task is about (a sector or a PoSt: `Subject`), sector sizes and registered proof types, the default
//! resource table (equal to lotus's) with per-worker environment overrides, host detection, and
//! the CPU topology (cores, L3 groups, NUMA nodes) read from `/sys`.

pub mod env;
pub mod host;
pub mod progress;
pub mod proof;
pub mod subject;
pub mod table;
pub mod task;
pub mod topology;

pub use env::{human_bytes, parse_bytes, EnvError};
pub use host::{detect, WorkerResources};
pub use progress::Progress;
pub use proof::{PoStProof, SealProof, SectorId, SectorRef, SectorSize, SECTOR_SIZE_COUNT};
pub use subject::Subject;
pub use table::{default_resources, ResourceTable, Resources};
pub use task::{queue_cmp, TaskSet, TaskType, DEAL_SECTOR_PRIORITY, TASK_TYPE_COUNT};
