//! `processor` owns proof operations in child processes. A worker (or the sealer's own worker)
//! starts its own binary as `processor` for each heavy engine operation (AP, PC1, PC2, C1, C2,
//! finalize, unseal, PoSts) with:
//!
//! - a socket on fd 3 for the protocol ([`wire`]): the child says hello (its pid, the CPUs it
//!   may run on, the env it sees), reads one request, may send progress, sends one result and
//!   exits. stdout and stderr go to the worker's log, since native proof code writes there;
//! - its CPU set applied with `sched_setaffinity` before `exec`, in a process group of its own,
//!   killed with the worker (`PR_SET_PDEATHSIG`), first in line for the OOM killer;
//! - the env its CPU set calls for ([`Placement`]).
//!
//! Whatever the child does, the worker goes on: a result, or a [`proofs::Crash`] that names what
//! happened (panic, failed allocation, signal, exit code, deadline, garbage). The child is reaped
//! (its peak RSS read then) before the operation returns, so a task's resources are released only
//! once its process is gone. A pid file per child lets a restarted worker end the children of the
//! one that died ([`end_orphans`]).

pub mod affinity;
pub mod alloc;
pub mod child;
pub mod engine;
pub mod fault;
pub mod limits;
pub mod parent;
pub mod progress;
pub mod wire;

pub use engine::{ChildEngine, Processors, Run};
pub use fault::Fault;
pub use parent::{end_orphans, Placement};
