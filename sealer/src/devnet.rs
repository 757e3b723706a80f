//! `sealer devnet`: a working single-machine devnet in one step. Creates a repo, attaches a seal
//! and a store path, starts the daemon, pledges sectors and shows their progress until Proving.
//! Also the parameter check shared with `fetch-params`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use api::methods as m;
use api::{AttachParams, SectorState};
use clap::Args;
use proofs::params;
use resources::SectorSize;

use crate::repo::Repo;

#[derive(Args)]
pub struct DevnetArgs {
    /// Use the mock proof engine: instant, NOT real proofs.
    #[arg(long)]
    mock: bool,
    /// Sectors to pledge.
    #[arg(long, default_value_t = 2)]
    sectors: u64,
    /// Repo directory (default: a new one under /tmp).
    #[arg(long = "devnet-repo")]
    devnet_repo: Option<PathBuf>,
    /// Time between epochs.
    #[arg(long, default_value = "1s")]
    block_delay: String,
    /// Keep the daemon running once every sector is Proving (stop it with Ctrl-C).
    #[arg(long)]
    keep_running: bool,
}

/// Makes sure the proof parameters for `size` are present, printing progress.
pub fn ensure_params(size: SectorSize, generate: bool) -> Result<()> {
    params::ensure(size, generate, &|line| println!("{line}")).with_context(|| {
        format!("{size} parameters (for a local devnet, `--generate` makes them here)")
    })
}

pub async fn run(a: DevnetArgs) -> Result<()> {
    let started = Instant::now();
    let size = SectorSize::S2KiB;
    if a.mock {
        println!("*** MOCK PROOF ENGINE: sectors are not really sealed, proofs are not real (demo only) ***");
    } else {
        tokio::task::spawn_blocking(move || ensure_params(size, true)).await??;
    }
    let path = match a.devnet_repo {
        Some(p) => p,
        None => {
            let p = std::env::temp_dir().join(format!("sealer-devnet-{}", std::process::id()));
            std::fs::create_dir_all(&p)?;
            p
        }
    };
    let repo = Repo { path: path.clone() };
    if !repo.exists() {
        repo.init(|c| {
            c.api.listen_address = "/ip4/127.0.0.1/tcp/0/http".into();
            c.chain.block_delay = a.block_delay.clone();
            c.sealing.retry_cooldown = "10s".into();
            if a.mock {
                c.proofs.engine = "mock".into();
            }
        })?;
    }
    println!(
        "devnet repo: {} (MINER_API_INFO: `sealer --repo {} auth api-info`)",
        path.display(),
        path.display()
    );
    let daemon_repo = Repo { path: path.clone() };
    let daemon = tokio::spawn(crate::daemon::run(daemon_repo, a.mock));
    let client = loop {
        if daemon.is_finished() {
            daemon.await??;
            bail!("the daemon stopped");
        }
        if let Ok(c) = crate::cli::client(&repo) {
            if c.request::<m::Version>(()).await.is_ok() {
                break c;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The devnet node the daemon runs: any Lotus client can be pointed at it.
    if let Ok(info) = std::fs::read_to_string(repo.fullnode_api_file()) {
        println!("devnet node: FULLNODE_API_INFO={}", info.trim());
    }
    for (dir, seal, store) in [("seal", true, false), ("store", false, true)] {
        let p = path.join(dir);
        if p.join("sectorstore.json").exists() {
            continue;
        }
        std::fs::create_dir_all(&p)?;
        let params = AttachParams {
            path: p.display().to_string(),
            init: true,
            seal,
            store,
            weight: 10,
            max_storage: 0,
            groups: Vec::new(),
            allow_to: Vec::new(),
        };
        let id = client.request::<m::StorageAttach>((params,)).await?;
        println!(
            "attached {} ({}) as {id}",
            p.display(),
            if seal { "seal" } else { "store" }
        );
    }
    let mut numbers = Vec::new();
    for _ in 0..a.sectors {
        let id = client.request::<m::PledgeSector>(()).await?;
        println!("Created CC sector: {}", id.number);
        numbers.push(id.number);
    }
    let mut last: Vec<Option<SectorState>> = vec![None; numbers.len()];
    loop {
        let mut done = true;
        for (i, n) in numbers.iter().enumerate() {
            let s = client
                .request::<m::SectorsStatus>((*n, Some(false)))
                .await?;
            if last[i] != Some(s.state) {
                println!(
                    "[{:>6.1}s] sector {n}: {}{}",
                    started.elapsed().as_secs_f64(),
                    s.state,
                    if s.last_error.is_empty() || !s.state.is_failed() {
                        String::new()
                    } else {
                        format!(" ({})", s.last_error)
                    }
                );
                last[i] = Some(s.state);
            }
            if s.state == SectorState::FailedUnrecoverable {
                bail!("sector {n} failed: {}", s.last_error);
            }
            done &= s.state == SectorState::Proving;
        }
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let info = client.request::<m::MinerInfoCall>(()).await?;
    println!(
        "all {} sectors Proving in {:.1} s; power {} sectors ({} bytes), {} proofs, chain epoch {}",
        numbers.len(),
        started.elapsed().as_secs_f64(),
        info.power.sectors,
        info.power.raw_bytes,
        info.engine,
        info.head.height
    );
    for (part, calls) in &info.chain_calls {
        println!("chain API calls, {part}: {}", calls.values().sum::<u64>());
    }
    if a.keep_running {
        println!("daemon still running; Ctrl-C to stop");
        daemon.await??;
    } else {
        client.request::<m::Shutdown>(()).await?;
        daemon.await??;
    }
    Ok(())
}
