//! `sealer` owns the sealer daemon: its repo and `config.toml`, the RocksDB metadata store, the
//! sector state machine and the pipeline that drives it, the call tracker (`calls/`), the glue from
//! the scheduler to workers (including the in-process worker), the embedded devnet chain, the
//! JSON-RPC API (its handlers, from `api::methods`' definitions) and the CLI.

pub mod calls;
pub mod chain;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod db;
pub mod devnet;
pub mod fsm;
pub mod localworker;
pub mod manager;
pub mod pipeline;
pub mod proving;
pub mod repo;
pub mod rpc;
pub mod sectors;
pub mod wdpost;
pub mod wnpost;
