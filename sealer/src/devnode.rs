//! `sealer devnet-node`: the devnet as a chain node of its own process (as `lotus daemon` is
//! for lotus-miner): its state in `<dir>/datastore`, its FullNode API on `--listen`, its
//! FULLNODE_API_INFO printed and written to `<dir>/fullnode_api`. A sealer with
//! `[Chain] Mode = "lotus"` and that FULLNODE_API_INFO seals on it; the node can be stopped and
//! started again under a running sealer, which waits for it and carries on.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use chain::devnet::DevnetConfig;
use chain::Devnet;
use clap::Args;
use proofs::{Engine, MockEngine, RealEngine};

use crate::config::{parse_actor, parse_duration};

#[derive(Args)]
pub struct DevnetNodeArgs {
    /// Where the node keeps its state (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// Where its FullNode API listens.
    #[arg(long, default_value = "127.0.0.1:1234")]
    listen: std::net::SocketAddr,
    /// The miner made at genesis.
    #[arg(long, default_value = "t01000")]
    actor: String,
    #[arg(long, default_value = "2KiB")]
    sector_size: String,
    #[arg(long, default_value = "4s")]
    block_delay: String,
    #[arg(long, default_value_t = 10)]
    pre_commit_challenge_delay: i64,
    #[arg(long = "wpost-challenge-window", default_value_t = 60)]
    window: i64,
    /// Raw power of the rest of the network (elections).
    #[arg(long, default_value = "5MiB")]
    other_network_power: String,
    /// What the genesis gives the miner's worker (as `[Chain] DevnetWorkerFunds`).
    #[arg(long, default_value = "100 FIL")]
    worker_funds: String,
    /// Verify with the mock proof engine (for a sealer running the mock engine).
    #[arg(long)]
    mock: bool,
}

pub async fn run(a: DevnetNodeArgs) -> Result<()> {
    let actor = parse_actor(&a.actor).map_err(anyhow::Error::msg)?;
    let size = resources::parse_bytes(&a.sector_size)
        .ok()
        .and_then(resources::SectorSize::from_bytes)
        .with_context(|| format!("--sector-size {:?}", a.sector_size))?;
    let other_power = resources::parse_bytes(&a.other_network_power)
        .map_err(anyhow::Error::msg)
        .context("--other-network-power")?;
    let block_delay = parse_duration(&a.block_delay)
        .map_err(anyhow::Error::msg)
        .context("--block-delay")?;
    let engine: Arc<dyn Engine> = if a.mock {
        tracing::warn!("MOCK PROOF ENGINE: the devnet node verifies mock proofs only");
        Arc::new(MockEngine::new())
    } else {
        Arc::new(RealEngine)
    };
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    let db = db::Db::open(&a.dir.join("datastore"))?;
    let cfg = DevnetConfig {
        block_delay,
        challenge_delay: a.pre_commit_challenge_delay,
        window: a.window,
        other_power,
        worker_funds: lotus::json::parse_fil(&a.worker_funds).context("--worker-funds")?,
        max_ticket_age: chain::MAX_PRECOMMIT_RANDOMNESS_LOOKBACK,
        ticket_lookback: 0,
        max_prove_commit_duration: chain::MAX_PROVE_COMMIT_DURATION,
    };
    let devnet = Devnet::open(db, engine, cfg, actor, size)?;
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("--listen: cannot listen on {}", a.listen))?;
    let served = devnet.run(listener)?;
    let info = served.info.to_env();
    crate::repo::write_private_file(&a.dir.join("fullnode_api"), info.as_bytes())?;
    println!("FULLNODE_API_INFO={info}");
    let never = tokio::sync::Notify::new();
    api::server::until_stopped(&never).await;
    tracing::info!("devnet node stopping");
    drop(served);
    Ok(())
}
