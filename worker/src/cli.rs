//! The `worker` command line, shaped like `lotus-worker`'s.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use api::methods as m;
use api::{ApiInfo, Client};
use clap::{ArgAction, Parser, Subcommand};
use resources::{SectorSize, TaskSet, TaskType};

use crate::daemon::{default_repo, own_api, Options};

#[derive(Parser)]
#[command(name = "worker", version, about = "Filecoin sealing worker")]
struct Cli {
    /// The worker's repo (default: $WORKER_PATH, else $LOTUS_WORKER_PATH, else
    /// $VENUS_WORKER_PATH, else ~/.worker).
    #[arg(long = "worker-repo", global = true)]
    repo: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the worker.
    Run(RunArgs),
    /// Session, hostname, resources, task types and storage paths.
    Info,
    #[command(subcommand)]
    Storage(StorageCmd),
    #[command(subcommand)]
    Tasks(TasksCmd),
    /// The resource table with this machine's env overrides applied.
    Resources {
        /// Every task type and size (default: the ones that differ from lotus's defaults).
        #[arg(long)]
        all: bool,
        /// The defaults, without env overrides.
        #[arg(long)]
        default: bool,
    },
    /// Fetch (or, with --generate, make for a devnet) the proof parameters for a sector size.
    FetchParams {
        #[arg(default_value = "2KiB")]
        size: String,
        #[arg(long)]
        generate: bool,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// The sealer's API (multiaddr or host:port); default from MINER_API_INFO.
    #[arg(long)]
    miner_addr: Option<String>,
    /// The sealer's admin token; default from MINER_API_INFO.
    #[arg(long)]
    miner_token: Option<String>,
    #[arg(long, default_value = "0.0.0.0:3456")]
    listen: String,
    #[arg(long, action = ArgAction::Set, default_value_t = true, num_args = 0..=1, default_missing_value = "true")]
    addpiece: bool,
    #[arg(long, action = ArgAction::Set, default_value_t = true, num_args = 0..=1, default_missing_value = "true")]
    precommit1: bool,
    #[arg(long, action = ArgAction::Set, default_value_t = true, num_args = 0..=1, default_missing_value = "true")]
    precommit2: bool,
    #[arg(long, action = ArgAction::Set, default_value_t = true, num_args = 0..=1, default_missing_value = "true")]
    commit: bool,
    #[arg(long, action = ArgAction::Set, default_value_t = true, num_args = 0..=1, default_missing_value = "true")]
    unseal: bool,
    /// A WindowPoSt worker (as lotus-worker's flag): it takes WDP and no sealing task.
    #[arg(long)]
    windowpost: bool,
    /// A WinningPoSt worker: it takes WNP and no sealing task.
    #[arg(long)]
    winningpost: bool,
    /// Name shown in `sealing workers` (default: the hostname).
    #[arg(long)]
    name: Option<String>,
    /// Do not create a seal path in the repo.
    #[arg(long)]
    no_local_storage: bool,
    /// Leave swap out of the memory accounting.
    #[arg(long)]
    no_swap: bool,
    #[arg(long, default_value_t = 5)]
    parallel_fetch_limit: usize,
    /// Mock engine only (tests, demos): task delays, e.g. PC1=2s,C2=500ms.
    #[arg(long, default_value = "")]
    mock_delays: String,
    /// Mock engine only (crash tests): the next processor of a task type commits a fault:
    /// panic, abort, segfault, exit, kill, oom, hang or garbage; e.g. PC1=abort,C2=oom.
    #[arg(long, default_value = "")]
    mock_faults: String,
    /// The CPUs this worker may use, as Linux lists them (e.g. 0-47,96-143); tasks are placed
    /// on them and nothing the worker runs leaves them. Default: its affinity mask. Seed 001's
    /// 75%/25% split of machine B is two workers with two lists.
    #[arg(long)]
    cpus: Option<resources::topology::CpuSet>,
    /// Kill a task's processor still running after this, per task type: e.g. PC1=12h,C2=2h.
    /// Default: no limit, as lotus.
    #[arg(long, default_value = "")]
    task_timeouts: String,
    /// Serve GET /metrics (Prometheus) without a token; by default it needs one with read
    /// permission, as the worker's API does.
    #[arg(long, env = "WORKER_METRICS_WITHOUT_TOKEN")]
    metrics_without_token: bool,
}

#[derive(Subcommand)]
enum StorageCmd {
    Attach(api::attach::AttachArgs),
    /// Detach a storage path: it leaves storage.json and the index, its files stay on disk;
    /// the sectors only it held are rebuilt elsewhere (`[Sealing] RebuildLostSectors`).
    Detach(api::attach::DetachArgs),
}

#[derive(Subcommand)]
enum TasksCmd {
    Enable { task: String },
    Disable { task: String },
}

pub fn main() -> Result<()> {
    let cli = Cli::parse();
    let repo = cli.repo.clone().unwrap_or_else(default_repo);
    tokio::runtime::Runtime::new()?.block_on(run(repo, cli.cmd))
}

async fn run(repo: PathBuf, cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Run(a) => {
            let sealer = sealer_info(&a)?;
            let mut tasks = TaskSet::default();
            for (on, t) in [
                (a.addpiece, &[TaskType::AddPiece][..]),
                (a.precommit1, &[TaskType::PreCommit1]),
                (a.precommit2, &[TaskType::PreCommit2]),
                (a.commit, &[TaskType::Commit2]),
                (a.unseal, &[TaskType::Unseal]),
                (
                    true,
                    &[TaskType::Commit1, TaskType::Finalize, TaskType::Fetch],
                ),
            ] {
                if on {
                    t.iter().for_each(|x| tasks.insert(*x));
                }
            }
            if a.windowpost || a.winningpost {
                tasks = TaskSet::default();
                if a.windowpost {
                    tasks.insert(TaskType::WindowPoSt);
                }
                if a.winningpost {
                    tasks.insert(TaskType::WinningPoSt);
                }
            }
            let o = Options {
                sealer,
                listen: a.listen,
                name: a.name,
                tasks,
                no_local_storage: a.no_local_storage,
                no_swap: a.no_swap,
                parallel_fetch_limit: a.parallel_fetch_limit,
                mock_delays: per_task("--mock-delays", &a.mock_delays, parse_duration)?,
                mock_faults: per_task("--mock-faults", &a.mock_faults, |v| v.parse())?,
                timeouts: per_task("--task-timeouts", &a.task_timeouts, parse_duration)?,
                cpus: a.cpus,
                metrics_without_token: a.metrics_without_token,
            };
            crate::daemon::run(&repo, o).await
        }
        Cmd::Resources { all, default } => {
            let table = if default {
                resources::ResourceTable::default()
            } else {
                resources::ResourceTable::from_env()?
            };
            let base = resources::ResourceTable::default();
            println!(
                "{:<6} {:<7} {:>12} {:>12} {:>12} {:>5} {:>5} {:>6}",
                "TASK", "SIZE", "MinMemory", "MaxMemory", "BaseMinMem", "Par", "GPU", "MaxCon"
            );
            for t in TaskType::ALL {
                for s in SectorSize::ALL {
                    let r = table.get(t, s);
                    if !all && !default && r == base.get(t, s) {
                        continue;
                    }
                    println!(
                        "{:<6} {:<7} {:>12} {:>12} {:>12} {:>5} {:>5} {:>6}",
                        t.short(),
                        s.to_string(),
                        r.min_memory,
                        r.max_memory,
                        r.base_min_memory,
                        r.max_parallelism,
                        r.gpu_utilization,
                        r.max_concurrent
                    );
                }
            }
            Ok(())
        }
        Cmd::FetchParams { size, generate } => {
            let size: SectorSize = size
                .parse()
                .map_err(|_| anyhow!("unknown sector size {size:?}"))?;
            proofs::params::ensure(size, generate, &|l| println!("{l}")).map_err(|e| anyhow!("{e}"))
        }
        other => {
            let c = Client::new(&own_api(&repo)?, Duration::from_secs(30));
            remote(&c, other).await
        }
    }
}

async fn remote(c: &Client, cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Info => {
            let i = c.request::<m::WorkerInfoCall>(()).await?;
            println!("Session: {}", i.session);
            println!("Enabled: {}", i.enabled);
            println!("Hostname: {}", i.hostname);
            println!("CPUs: {}; GPUs: {:?}", i.resources.cpus, i.resources.gpus);
            println!(
                "RAM: {}; Swap: {}",
                gib(i.resources.mem_physical),
                gib(i.resources.mem_swap)
            );
            println!("Reserved memory: {}", gib(i.resources.mem_used));
            println!("Task types: {}", i.tasks);
            println!("PC1 SDR: {}", proofs::SdrMode::describe(i.sdr));
            match &i.topology {
                Some(t) => {
                    let l3: Vec<String> = t.l3.iter().map(|s| s.to_string()).collect();
                    let numa: Vec<String> =
                        t.numa.iter().map(|(n, s)| format!("node{n} {s}")).collect();
                    println!(
                        "CPU topology: {} CPUs ({}) in {} cores; L3 groups: {}; NUMA: {}",
                        t.cpus.len(),
                        t.cpus,
                        t.cores.len(),
                        l3.join(" "),
                        numa.join(" ")
                    );
                }
                None => println!("CPU topology: not known (see the worker's log)"),
            }
            if let Some(c) = &i.cpus {
                println!("CPUs used: {c}");
            }
            for (t, c) in &i.task_cpus {
                println!("CPUs for {}: {c} (worker.toml)", t.short());
            }
            for r in &i.running {
                match &r.place {
                    Some(p) => {
                        let gpu = p.gpu.map(|g| format!(" and GPU {g}")).unwrap_or_default();
                        println!("Running: {} on CPUs {}{gpu}", r.call, p.cpus)
                    }
                    None => println!("Running: {} on the worker's CPUs", r.call),
                }
            }
            println!("Fetches: {}", i.fetches);
            println!();
            for p in i.paths {
                println!("{}:", p.id);
                println!(
                    "\tWeight: {}; Use: {}{}",
                    p.weight,
                    if p.can_seal { "Seal " } else { "" },
                    if p.can_store { "Store" } else { "" }
                );
                println!("\tLocal: {}", p.local_path);
            }
        }
        Cmd::Storage(StorageCmd::Attach(a)) => {
            let p = a.params().map_err(|e| anyhow::anyhow!(e))?;
            let path = p.path.clone();
            let id = c.request::<m::StorageAttach>((p,)).await?;
            println!("Attached {path} as {id}");
        }
        Cmd::Storage(StorageCmd::Detach(a)) => {
            let path = a.path().map_err(|e| anyhow::anyhow!(e))?;
            let id = c.request::<m::StorageDetachLocal>((path.clone(),)).await?;
            println!("Detached {path} ({id})");
        }
        Cmd::Tasks(t) => {
            let (task, word) = match t {
                TasksCmd::Enable { task } => {
                    c.request::<m::WorkerTaskEnable>((task.clone(),)).await?;
                    (task, "enabled")
                }
                TasksCmd::Disable { task } => {
                    c.request::<m::WorkerTaskDisable>((task.clone(),)).await?;
                    (task, "disabled")
                }
            };
            println!("{task} {word}");
        }
        _ => unreachable!("handled locally"),
    }
    Ok(())
}

fn gib(b: u64) -> String {
    format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
}

fn sealer_info(a: &RunArgs) -> Result<ApiInfo> {
    match (&a.miner_addr, &a.miner_token) {
        (Some(addr), Some(token)) => {
            let addr = if addr.starts_with('/') {
                api::client::multiaddr_to_addr(addr).map_err(|e| anyhow!("--miner-addr: {e}"))?
            } else {
                addr.clone()
            };
            Ok(ApiInfo {
                token: token.clone(),
                addr,
            })
        }
        (None, None) => {
            let s = std::env::var("MINER_API_INFO")
                .context("no sealer: set MINER_API_INFO (`sealer auth api-info --perm admin`) or --miner-addr and --miner-token")?;
            Ok(ApiInfo::parse(&s)?)
        }
        _ => Err(anyhow!("--miner-addr and --miner-token go together")),
    }
}

/// `TASK=VALUE,...` for a per-task-type flag.
fn per_task<T>(
    flag: &str,
    s: &str,
    value: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<(TaskType, T)>> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (t, v) = part
            .split_once('=')
            .ok_or_else(|| anyhow!("{flag}: {part:?} is not TASK=VALUE"))?;
        let t: TaskType = t.trim().parse().map_err(|e| anyhow!("{flag}: {e}"))?;
        out.push((t, value(v.trim()).map_err(|e| anyhow!("{flag}: {e}"))?));
    }
    Ok(out)
}

/// `500ms`, `2s`, `30m`, `12h`.
fn parse_duration(d: &str) -> Result<Duration, String> {
    let bad = || format!("bad duration {d:?} (e.g. 500ms, 2s, 30m, 12h)");
    let (num, unit) = d
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| d.split_at(i))
        .ok_or_else(bad)?;
    let n: u64 = num.parse().map_err(|_| bad())?;
    let ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    Ok(Duration::from_millis(n * ms))
}
