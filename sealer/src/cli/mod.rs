//! The `sealer` command line, shaped like `lotus-miner`'s.

mod print;
mod proving;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use api::methods as m;
use api::{ApiInfo, Client};
use clap::{Args, Parser, Subcommand};
use stores::Permission;

use crate::config::Config;
use crate::repo::Repo;

#[derive(Parser)]
#[command(
    name = "sealer",
    version,
    about = "Filecoin sealing cluster: the sealer daemon and its CLI"
)]
pub struct Cli {
    /// The repo (default: $SEALER_PATH, else ~/.sealer).
    #[arg(long, global = true, env = "SEALER_PATH")]
    repo: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a repo with config.toml written from defaults.
    Init(InitArgs),
    /// Start the daemon.
    Run {
        /// Use the mock proof engine (NOT real proofs; tests and demos only).
        #[arg(long)]
        mock: bool,
    },
    /// A single-machine devnet in one step: init a repo, attach paths, run, pledge, watch.
    Devnet(crate::devnet::DevnetArgs),
    /// The devnet as a chain node of its own (as `lotus daemon`): for a sealer with
    /// `[Chain] Mode = "lotus"` and the FULLNODE_API_INFO it prints.
    DevnetNode(crate::devnode::DevnetNodeArgs),
    /// Stop the running daemon.
    Stop,
    /// Miner summary: actor, power, sectors by state, proof engine.
    Info,
    #[command(subcommand)]
    Auth(AuthCmd),
    #[command(subcommand)]
    Chain(ChainCmd),
    #[command(subcommand)]
    Sectors(SectorsCmd),
    #[command(subcommand)]
    Sealing(SealingCmd),
    #[command(subcommand)]
    Storage(StorageCmd),
    /// WindowPoSt: deadlines, faults, checks.
    #[command(subcommand)]
    Proving(proving::ProvingCmd),
    /// The miner actor's addresses.
    #[command(subcommand)]
    Actor(ActorCmd),
    /// Plan a cluster before buying it: what fits at once on each machine and what stops the
    /// next task, the bound on sectors a day, what the scheduler reaches in a simulated week,
    /// MaxSealingSectors and seal space, and what to add next.
    Plan {
        /// The cluster: a TOML file of `[[machine]]`s (see README, "Plan a cluster"); without
        /// it, the workers registered with the running sealer.
        #[arg(long)]
        cluster: Option<std::path::PathBuf>,
        /// With the running sealer's workers: plan with the step times each one recorded
        /// (the mean of its last runs), the built-in ones where it has none.
        #[arg(long, conflicts_with = "cluster")]
        recorded: bool,
        /// With the running sealer's workers: a TOML file whose `[durations]` override the
        /// built-in step times (as in a cluster file).
        #[arg(long, conflicts_with = "cluster")]
        durations: Option<std::path::PathBuf>,
        /// Simulated days.
        #[arg(long, default_value_t = 7.0)]
        days: f64,
        /// Also simulate pledging this many sectors a day, refused while the seal space is full
        /// (as MaxSealingSectors would): what the cluster seals of them, what it refuses, and
        /// how many it holds in flight at once.
        #[arg(long)]
        pledge: Option<f64>,
    },
    /// Fetch (or, for devnet sizes, generate) the proof parameters for a sector size.
    FetchParams {
        /// Sector size (default: the repo's).
        size: Option<String>,
        /// Generate local devnet parameters instead of downloading (2KiB, 8MiB, 512MiB).
        #[arg(long)]
        generate: bool,
    },
}

#[derive(Args)]
pub struct InitArgs {
    /// The miner actor (ID address). Without it, `--owner` and `--worker` create one on the
    /// node (t01000 on the embedded devnet otherwise).
    #[arg(long, conflicts_with_all = ["owner", "worker"])]
    actor: Option<String>,
    /// Creates the miner actor (CreateMiner on the power actor, sent from this address, whose
    /// key the node's wallet must hold), as `lotus-miner init --owner`. Needs a node.
    #[arg(long, requires = "worker")]
    owner: Option<String>,
    /// The new miner's worker: a BLS key's address (or its account ID).
    #[arg(long, requires = "owner")]
    worker: Option<String>,
    /// Its sector size: read from the chain when a node is given (and refused if it differs
    /// there); 2KiB for the embedded devnet.
    #[arg(long)]
    sector_size: Option<String>,
    /// The chain node to seal for (venus-style; lotus-miner's FULLNODE_API_INFO is read
    /// too): a multiaddr (`/ip4/127.0.0.1/tcp/1234/http`) or `http://host:port`. With one, the
    /// node and the actor are checked first and the repo uses `[Chain] Mode = "lotus"`.
    #[arg(long, requires = "auth_token")]
    node_url: Option<String>,
    /// The node's API token (it must grant `sign`).
    #[arg(long, requires = "node_url")]
    auth_token: Option<String>,
    /// API listen multiaddr.
    #[arg(long)]
    listen: Option<String>,
    /// Write `[Proofs] Engine = "mock"` (NOT real proofs).
    #[arg(long)]
    mock: bool,
}

#[derive(Subcommand)]
enum AuthCmd {
    /// Print `MINER_API_INFO=<token>:<multiaddr>`.
    ApiInfo {
        #[arg(long, default_value = "admin")]
        perm: String,
    },
    /// Print a token.
    CreateToken {
        #[arg(long, default_value = "admin")]
        perm: String,
    },
}

#[derive(Subcommand)]
enum ActorCmd {
    /// Control addresses: list them, or set them (ChangeWorkerAddress from the owner).
    #[command(subcommand)]
    Control(ControlCmd),
}

#[derive(Subcommand)]
enum ControlCmd {
    /// The owner, worker and control addresses: what each sends under `[Addresses]`, its
    /// balance, and whether the node holds its key.
    List,
    /// Sets the control addresses (the worker kept), as `lotus-miner actor control set`.
    Set {
        addresses: Vec<String>,
        #[arg(long)]
        really_do_it: bool,
    },
}

#[derive(Subcommand)]
enum ChainCmd {
    /// The current epoch.
    Head,
}

#[derive(Subcommand)]
enum SectorsCmd {
    /// Pledge a committed-capacity sector.
    Pledge,
    /// The sectors, in one call to the sealer (`--fast` leaves out the on-chain expiration,
    /// which is one chain lookup per on-chain sector, as lotus's `--fast`).
    List {
        /// Only sectors in these states, comma-separated (e.g. PreCommit1,PreCommit2).
        #[arg(long, value_delimiter = ',')]
        states: Vec<String>,
        /// Leave out the on-chain information.
        #[arg(long)]
        fast: bool,
        /// Skip the first N matching sectors.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// At most N rows (0: all).
        #[arg(long, default_value_t = 0)]
        limit: u64,
    },
    Status {
        id: u64,
        /// Show the event log.
        #[arg(long)]
        log: bool,
        #[arg(long)]
        on_chain_info: bool,
    },
    /// Remove a sector and its files.
    Remove {
        id: u64,
        #[arg(long)]
        really_do_it: bool,
    },
    /// Make a committed-capacity sector's replica again from its recorded ticket (PC1 of
    /// zeros, PC2, commR checked against the chain's), then finalize it onto a store path.
    Rebuild {
        id: u64,
        /// Needed for a Proving sector: its replica is replaced (the old copy removed).
        #[arg(long)]
        really_do_it: bool,
    },
    /// End Proving sectors' commitment early (TerminateSectors), then remove their files.
    Terminate {
        ids: Vec<u64>,
        #[arg(long)]
        really_do_it: bool,
    },
    /// Move active sectors' expiration later (ExtendSectorExpiration2, from the worker).
    Extend {
        ids: Vec<u64>,
        /// The new expiration epoch.
        #[arg(
            long,
            conflicts_with = "extension",
            required_unless_present = "extension"
        )]
        new_expiration: Option<i64>,
        /// Epochs to add to each sector's expiration.
        #[arg(long)]
        extension: Option<i64>,
        /// The most the message's gas may cost ("0": the node's default).
        #[arg(long, default_value = "0")]
        max_fee: String,
    },
    /// The sectors waiting in a batch queue (`[Sealing] BatchPreCommits`, `AggregateCommits`).
    #[command(subcommand)]
    Batching(BatchingCmd),
}

#[derive(Subcommand)]
enum BatchingCmd {
    /// The pre-commit batch queue.
    Precommit {
        /// Send the batch now.
        #[arg(long)]
        publish_now: bool,
    },
    /// The prove-commit batch queue.
    Commit {
        /// Send the batch now.
        #[arg(long)]
        publish_now: bool,
    },
}

#[derive(Subcommand)]
enum SealingCmd {
    /// Tasks placed on workers.
    Jobs,
    /// Workers with task counts and resource use.
    Workers,
    /// Abort a job (the sector retries after its cool-down).
    Abort { job: u64 },
    /// The scheduler's queue and requests no worker can take.
    SchedDiag,
}

#[derive(Subcommand)]
enum StorageCmd {
    /// Attach a storage path.
    Attach(api::attach::AttachArgs),
    List,
    /// Where a sector's files are.
    Find {
        id: u64,
    },
    /// Detach a storage path: it leaves storage.json and the index, its files stay on disk;
    /// the sectors only it held are rebuilt elsewhere (`[Sealing] RebuildLostSectors`).
    Detach(api::attach::DetachArgs),
}

pub fn main() -> Result<()> {
    let cli = Cli::parse();
    let repo = Repo::locate(cli.repo.clone());
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(run(repo, cli.cmd))
}

async fn run(repo: Repo, cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Init(a) => init(&repo, a).await,
        Cmd::Run { mock } => crate::daemon::run(repo, mock).await,
        Cmd::Devnet(a) => crate::devnet::run(a).await,
        Cmd::DevnetNode(a) => crate::devnode::run(a).await,
        Cmd::FetchParams { size, generate } => fetch_params(&repo, size, generate),
        Cmd::Plan {
            cluster,
            recorded,
            durations,
            days,
            pledge,
        } => {
            if let Some(p) = pledge.filter(|p| !(*p > 0.0 && *p <= 100_000.0)) {
                anyhow::bail!("--pledge {p}: sectors a day, above 0 and at most 100000");
            }
            if !(days > 1.0 && days <= 365.0) {
                anyhow::bail!(
                    "--days {days}: between 1 (excluded, the first day fills the pipeline) and 365"
                );
            }
            let cluster = match cluster {
                Some(path) => crate::plan::Cluster::from_file(&read_toml(&path)?)?,
                None => {
                    let over = match durations {
                        Some(path) => read_toml::<crate::plan::DurationsFile>(&path)?.durations,
                        None => Default::default(),
                    };
                    let inputs = client(&repo)?.request::<m::SealingPlanInputs>(()).await?;
                    crate::plan::Cluster::from_sealer(&inputs, &over, recorded)?
                }
            };
            // The simulation takes seconds: it is not run on the caller's runtime thread.
            let text =
                tokio::task::spawn_blocking(move || crate::plan::report(&cluster, days, pledge))
                    .await??;
            print!("{text}");
            Ok(())
        }
        Cmd::Auth(AuthCmd::CreateToken { perm }) => {
            let p: Permission = perm.parse()?;
            println!("{}", repo.secret()?.token_for(p));
            Ok(())
        }
        Cmd::Auth(AuthCmd::ApiInfo { perm }) => {
            let p: Permission = perm.parse()?;
            let info = repo.api_info()?;
            let (_, listen) = info.split_once(":/").context("malformed api file")?;
            // Other machines use the advertised address where the config sets one.
            let (cfg, _) = Config::load(&repo.config_file())?;
            let ma = api::client::host_port_to_multiaddr(cfg.api.remote_listen_address.trim())
                .unwrap_or_else(|| format!("/{listen}"));
            println!("MINER_API_INFO={}:{ma}", repo.secret()?.token_for(p));
            Ok(())
        }
        other => {
            let client = client(&repo)?;
            remote(&client, other).await
        }
    }
}

fn read_toml<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{}", path.display()))
}

/// Epochs a CreateMiner waits on top of it (lotus's MessageConfidence).
const CONFIDENCE: u64 = 5;

/// The node `sealer init` is given: `--node-url` with `--auth-token`, else FULLNODE_API_INFO.
fn init_node(a: &InitArgs) -> Result<Option<ApiInfo>> {
    if let (Some(url), Some(token)) = (&a.node_url, &a.auth_token) {
        let hostport = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("ws://"))
            .map(|rest| rest.split('/').next().unwrap_or_default().to_string());
        let ma = match hostport {
            Some(hp) => api::client::host_port_to_multiaddr(&hp)
                .with_context(|| format!("--node-url {url:?}: not http://host:port"))?,
            None => url.clone(),
        };
        return Ok(Some(
            ApiInfo::parse(&format!("{token}:{ma}")).context("--node-url")?,
        ));
    }
    match std::env::var("FULLNODE_API_INFO") {
        Ok(s) if !s.trim().is_empty() => {
            Ok(Some(ApiInfo::parse(s.trim()).context("FULLNODE_API_INFO")?))
        }
        _ => Ok(None),
    }
}

async fn init(repo: &Repo, a: InitArgs) -> Result<()> {
    let actor = a.actor.clone().unwrap_or_else(|| "t01000".into());
    let mut actor = crate::config::parse_actor(&actor)
        .map_err(anyhow::Error::msg)
        .context("--actor")?;
    let asked = match &a.sector_size {
        Some(s) => Some(
            s.parse::<resources::SectorSize>()
                .map_err(|e| anyhow::anyhow!("--sector-size: {e}"))?,
        ),
        None => None,
    };
    let node = init_node(&a)?;
    let mut size = asked.unwrap_or(resources::SectorSize::S2KiB);
    if let Some(info) = &node {
        if repo.exists() {
            bail!(
                "{} is already initialized (config.toml exists); remove it or use another --repo",
                repo.path.display()
            );
        }
        if let (Some(owner), Some(worker)) = (&a.owner, &a.worker) {
            let addr = |flag: &str, v: &str| {
                lotus::json::parse_address(v).with_context(|| format!("{flag} {v:?}"))
            };
            let (owner, worker) = (addr("--owner", owner)?, addr("--worker", worker)?);
            let size = asked.context("--sector-size is needed to create a miner")?;
            println!(
                "Creating a miner with {size} sectors: CreateMiner to the power actor, waiting \
                 for {CONFIDENCE} epochs on top of it"
            );
            actor = chain::init::create_miner(info, owner, worker, size, CONFIDENCE).await?;
            println!("Created miner {}", crate::config::actor_name(actor));
        }
        let f = chain::init::check(info, actor, asked).await?;
        size = f.sector_size;
        let control: Vec<String> = f.control.iter().map(|c| c.to_string()).collect();
        println!(
            "Chain node {}: network {}, {}",
            info.url_at(api::fullnode::PATH),
            f.network,
            f.node_version
        );
        println!(
            "Miner {}: {} sectors; owner {}, worker {} (key {}), control addresses: {}",
            crate::config::actor_name(actor),
            f.sector_size,
            f.owner,
            f.worker,
            f.worker_key,
            if control.is_empty() {
                "none".to_string()
            } else {
                control.join(", ")
            }
        );
    }
    if node.is_none() && a.owner.is_some() {
        bail!("creating a miner (--owner, --worker) needs a chain node: --node-url and --auth-token, or FULLNODE_API_INFO");
    }
    let cfg = repo.init(|c| {
        c.miner.actor = crate::config::actor_name(actor);
        c.miner.sector_size = size.to_string();
        if let Some(info) = &node {
            c.chain.mode = "lotus".into();
            c.chain.api_info = info.to_env();
        }
        if let Some(l) = &a.listen {
            c.api.listen_address = l.clone();
        }
        if a.mock {
            c.proofs.engine = "mock".into();
        }
    })?;
    println!(
        "Initialized repo {} for miner {} with {} sectors{}",
        repo.path.display(),
        cfg.miner.actor,
        cfg.miner.sector_size,
        if a.mock {
            " (MOCK proof engine: not real proofs)"
        } else {
            ""
        }
    );
    Ok(())
}

/// The daemon's address: `MINER_API_INFO` if set, else the repo's `api` and `token` files.
pub fn client(repo: &Repo) -> Result<Client> {
    let info = match std::env::var("MINER_API_INFO") {
        Ok(s) if !s.is_empty() => s,
        _ => repo.api_info()?,
    };
    let info = ApiInfo::parse(&info)?;
    let timeout = Config::load(&repo.config_file())
        .ok()
        .map(|(_, s)| s.timeout)
        .unwrap_or(Duration::from_secs(30));
    Ok(Client::new(&info, timeout))
}

async fn remote(c: &Client, cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Proving(p) => proving::run(c, p).await?,
        Cmd::Actor(ActorCmd::Control(ControlCmd::List)) => {
            print::control(&c.request::<m::ActorControlList>(()).await?);
        }
        Cmd::Actor(ActorCmd::Control(ControlCmd::Set {
            addresses,
            really_do_it,
        })) => {
            if !really_do_it {
                bail!(
                    "this sends ChangeWorkerAddress from the owner, making {} the control \
                     addresses: pass --really-do-it",
                    if addresses.is_empty() {
                        "no address".to_string()
                    } else {
                        addresses.join(", ")
                    }
                );
            }
            let cid = c.request::<m::ActorControlSet>((addresses,)).await?;
            println!("Message CID: {cid}");
        }
        Cmd::Stop => {
            c.request::<m::Shutdown>(()).await?;
            println!("sealer stopping");
        }
        Cmd::Info => {
            let i = c.request::<m::MinerInfoCall>(()).await?;
            print::info(&i);
        }
        Cmd::Chain(ChainCmd::Head) => {
            let h = c.request::<m::ChainHead>(()).await?;
            let key: Vec<String> = h.cids.iter().map(|c| format!("{{{c}}}")).collect();
            println!("{}: [{}]", h.height, key.join(","));
        }
        Cmd::Sectors(SectorsCmd::Pledge) => {
            let id = c.request::<m::PledgeSector>(()).await?;
            println!("Created CC sector: {}", id.number);
        }
        Cmd::Sectors(SectorsCmd::List {
            states,
            fast,
            offset,
            limit,
        }) => {
            let states = states
                .iter()
                .map(|s| s.parse::<api::SectorState>().map_err(anyhow::Error::msg))
                .collect::<Result<Vec<_>>>()
                .context("--states")?;
            // One call: the rows, with their expirations unless --fast.
            let page = c
                .request::<m::SectorsListPage>((states, offset, limit, Some(!fast)))
                .await?;
            // The epoch the expirations were read at comes with them; the chain's head only
            // from a sealer that does not send it (and not at all without expirations).
            let head = match (fast, page.head) {
                (true, _) => 0,
                (false, Some(h)) => h,
                (false, None) => c.request::<m::ChainHead>(()).await?.height,
            };
            let expirations: Vec<Option<i64>> = page.rows.iter().map(|r| r.expiration).collect();
            print::buffered(|o| print::sectors(o, &page, &expirations, head, !fast))?;
        }
        Cmd::Sectors(SectorsCmd::Status {
            id,
            log,
            on_chain_info,
        }) => {
            let s = c
                .request::<m::SectorsStatus>((id, Some(on_chain_info)))
                .await?;
            print::status(&s, log);
        }
        Cmd::Sectors(SectorsCmd::Remove { id, really_do_it }) => {
            if !really_do_it {
                bail!("this removes sector {id} and its files; pass --really-do-it to confirm");
            }
            c.request::<m::SectorRemove>((id,)).await?;
            println!("Removing sector {id}");
        }
        Cmd::Sectors(SectorsCmd::Rebuild { id, really_do_it }) => {
            let s = c.request::<m::SectorsStatus>((id, Some(false))).await?;
            if s.state == api::SectorState::Proving && !really_do_it {
                bail!(
                    "sector {id} is Proving: its replica is made again and the old copy removed \
                     (WindowPoSt rebuilds an unreadable one by itself); pass --really-do-it to confirm"
                );
            }
            c.request::<m::SectorRebuild>((id,)).await?;
            println!("Rebuilding sector {id} (sectors status {id} --log follows it)");
        }
        Cmd::Sectors(SectorsCmd::Terminate { ids, really_do_it }) => {
            if !really_do_it {
                bail!(
                    "terminating ends the sectors' commitment early (a termination fee on a real \
                     network) and removes their files; pass --really-do-it to confirm"
                );
            }
            for id in ids {
                c.request::<m::SectorTerminate>((id,)).await?;
                println!("Terminating sector {id} (sectors status {id} --log follows it)");
            }
        }
        Cmd::Sectors(SectorsCmd::Extend {
            ids,
            new_expiration,
            extension,
            max_fee,
        }) => {
            let to = match (new_expiration, extension) {
                (Some(e), _) => api::ExtendTo::At(e),
                (None, Some(d)) => api::ExtendTo::By(d),
                (None, None) => bail!("give --new-expiration EPOCH or --extension EPOCHS"),
            };
            let r = c.request::<m::SectorsExtend>((ids, to, max_fee)).await?;
            println!("Extension message: {}", r.message);
            for (n, from, to) in r.sectors {
                println!("sector {n}: expiration {from} -> {to}");
            }
        }
        Cmd::Sectors(SectorsCmd::Batching(b)) => {
            let (kind, publish_now) = match b {
                BatchingCmd::Precommit { publish_now } => {
                    (crate::batch::BatchKind::PreCommit, publish_now)
                }
                BatchingCmd::Commit { publish_now } => {
                    (crate::batch::BatchKind::Commit, publish_now)
                }
            };
            use crate::batch::BatchKind::*;
            match (kind, publish_now) {
                (PreCommit, false) => {
                    print::batch_queue(&c.request::<m::SectorPreCommitPending>(()).await?)
                }
                (Commit, false) => {
                    print::batch_queue(&c.request::<m::SectorCommitPending>(()).await?)
                }
                (PreCommit, true) => {
                    print::batches(kind, &c.request::<m::SectorPreCommitFlush>(()).await?)
                }
                (Commit, true) => {
                    print::batches(kind, &c.request::<m::SectorCommitFlush>(()).await?)
                }
            }
        }
        Cmd::Sealing(SealingCmd::Jobs) => {
            let jobs = c.request::<m::WorkerJobs>(()).await?;
            print::buffered(|o| print::jobs(o, &jobs))?;
        }
        Cmd::Sealing(SealingCmd::Workers) => {
            let ws = c.request::<m::WorkerStats>(()).await?;
            print::buffered(|o| print::workers(o, &ws))?;
        }
        Cmd::Sealing(SealingCmd::Abort { job }) => {
            c.request::<m::SealingAbort>((job,)).await?;
            println!("Aborted job {job}");
        }
        Cmd::Sealing(SealingCmd::SchedDiag) => {
            let diag = c.request::<m::SealingSchedDiag>(()).await?;
            println!("{}", serde_json::to_string_pretty(&diag)?);
        }
        Cmd::Storage(StorageCmd::Attach(a)) => {
            let p = a.params().map_err(|e| anyhow::anyhow!(e))?;
            let path = p.path.clone();
            let id = c.request::<m::StorageAttach>((p,)).await?;
            println!("Attached {path} as {id}");
        }
        Cmd::Storage(StorageCmd::List) => {
            let rows = c.request::<m::StorageList>(()).await?;
            print::storage(&rows);
        }
        Cmd::Storage(StorageCmd::Detach(a)) => {
            let path = a.path().map_err(|e| anyhow::anyhow!(e))?;
            let id = c.request::<m::StorageDetachLocal>((path.clone(),)).await?;
            println!("Detached {path} ({id})");
        }
        Cmd::Storage(StorageCmd::Find { id }) => {
            let found = c.request::<m::StorageFindSector>((id,)).await?;
            print::find(id, &found);
        }
        Cmd::Init(_)
        | Cmd::Run { .. }
        | Cmd::Devnet(_)
        | Cmd::DevnetNode(_)
        | Cmd::FetchParams { .. }
        | Cmd::Plan { .. }
        | Cmd::Auth(_) => {
            unreachable!("handled locally")
        }
    }
    Ok(())
}

fn fetch_params(repo: &Repo, size: Option<String>, generate: bool) -> Result<()> {
    let size = match size {
        Some(s) => s,
        None => Config::load(&repo.config_file())
            .map(|(c, _)| c.miner.sector_size)
            .unwrap_or_else(|_| "2KiB".into()),
    };
    let size: resources::SectorSize = size.parse().map_err(|_| {
        anyhow::anyhow!(
            "unknown sector size {size:?} (expected 2KiB, 8MiB, 512MiB, 32GiB or 64GiB)"
        )
    })?;
    crate::devnet::ensure_params(size, generate)
}
