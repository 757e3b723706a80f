//! `worker` owns the worker daemon (`worker run`): its repo (`$WORKER_PATH`), registration and
//! liveness with the sealer, running the task calls the sealer sends on its own storage (fetching
//! inputs from other machines), call tracking in its own RocksDB with results returned until
//! delivered, the `/remote` file server, and the `worker` CLI.

pub mod calls;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod link;
pub mod metrics;
