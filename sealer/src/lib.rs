//! `sealer` owns the sealer daemon: its repo and `config.toml`, what it keeps in the metadata
//! store (`db`), the sector state machine and the pipeline that drives it, the call tracker
//! (`calls/`), the steps' usual times (`took/`), the glue from the scheduler to workers
//! (including the in-process worker), the
//! WindowPoSt and WinningPoSt schedulers over the `chain` crate's trait, the JSON-RPC API (its
//! handlers, from `api::methods`' definitions) and the CLI.

pub mod batch;
pub mod calls;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod devnet;
pub mod devnode;
pub mod expiry;
pub mod extend;
pub mod fsm;
pub mod funds;
pub mod heartbeat;
pub mod localworker;
pub mod manager;
pub mod pipeline;
pub mod plan;
pub mod repo;
pub mod rpc;
pub mod sectors;
pub mod took;
pub mod wdpost;
pub mod web;
pub mod wnpost;
