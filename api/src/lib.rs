//! `api` owns what crosses the wire between the CLI, the sealer and workers: JSON-RPC 2.0 framing,
//! lotus method names and their permissions, the request/response types, the task calls a worker
//! executes and their typed results and errors, and the client that finds a daemon
//! through `MINER_API_INFO` or a repo.

pub mod attach;
pub mod client;
pub mod contract;
pub mod fullnode;
pub mod index;
pub mod methods;
pub mod rpc;
pub mod server;
pub mod tasks;
pub mod types;

/// How often a worker tells the sealer it is alive (`Filecoin.WorkerHeartbeat`). Every 2 s
/// costs a thousand workers' sealer about 4% of a core (BENCHMARKS.md, "Scale"); the sealer
/// disconnects a worker silent for two beats' time (one missed, the next due) and removes it
/// after five.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(2);

/// Every this many beats (10 s, as lotus reports storage health) a worker's beat carries its
/// paths' health.
pub const HEALTH_EVERY: u32 = 5;

pub use client::{ApiInfo, Client, ClientError};
pub use rpc::{RpcError, RpcRequest, RpcResponse};
pub use tasks::{TaskCall, TaskOutput};
pub use types::*;
