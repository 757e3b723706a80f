//! `sched` owns scheduling: the global request queue in lotus's order, per-worker scheduling
//! windows, resource accounting through the prepare and execute stages, selectors, assigners and
//! the job listing, and the capacity arithmetic a cluster's plan is made of (`plan`). It knows
//! nothing of networks, storage or proofs: the embedder (the sealer daemon) runs the actions it
//! hands out and reports back, and tells it of workers coming and going.
//!
//! Flow of one request: `submit` -> queued -> `schedule` places it in a worker's window
//! (`assigned(N)`) -> `take_actions` hands out `Prepare` (`preparing`) -> `prepared` ->
//! `take_actions` hands out `Execute` (`running`) -> `finished`. Resources count against the
//! worker from assignment to finish, so nothing placed can overcommit it.

mod assign;
pub mod cpus;
mod jobs;
pub mod plan;
mod request;
mod scheduler;
mod selector;
pub mod sim;
mod why;
mod worker;
pub mod world;

pub use assign::{PassStats, OVERTAKEN_HOLD};
pub use jobs::{Job, JobState, WorkerStats};
pub use request::{RequestId, TaskHandle, TaskRequest, WorkerId};
pub use scheduler::{Action, ActionKind, Assigner, Finished, SchedConfig, SchedError, Scheduler};
pub use selector::{AllocSelector, ExistingSelector, Refusal, Selector, StorageView, TaskSelector};
pub use why::{NotHere, WhyQueued};
pub use worker::{Account, Need, NoFit, Usage, WorkerSpec};
