//! Load tool (issue #19): a real sealer (`sealer run`, mock engine, the devnet chain) and
//! `WORKERS` simulated workers in this process, each speaking the worker API over HTTP on its
//! own loopback port (see `sim.rs`). In order:
//! 1. idle: the sealer alone for `IDLE_S` seconds, then with every worker registered and idle
//!    for as long: its CPU and RSS, and `sealing workers` latency;
//! 2. seal: `SECTORS` sectors pledged at once and driven to Proving, tasks taking the times of
//!    lotus's 32GiB figures times `SCALE`: tasks/s, scheduling pass time, RPC latencies
//!    (`sectors list`, `sealing workers`, `sealing jobs` polled every `PROBE_MS`, and every
//!    `WorkerReturn`), errors, and a check that no step was lost or run twice;
//! 3. restart: one PC1 held running per worker, the sealer killed (-9) and started again: the
//!    time to serve, to have every worker registered, and every running PC1 attached again.
//!
//! 4. meta (alone: `PHASES=meta`): `META_SECTORS` (330,000) sector records written into a
//!    stopped sealer's RocksDB through its own code (the state machine's events, `Sectors`),
//!    most Proving and the rest in the states whose resumption queues a task; then the time from
//!    `sealer run` to answering the API and to every one of those tasks queued, a state-filtered
//!    `sectors list`, and the sealer's RSS per sector.
//!
//! `cargo build --workspace && cargo bench --workspace --bench load --profile dev`
//! (`WORKERS=1000 SECTORS=10000 IDLE_S=30`; `PHASES=idle,seal,restart` to pick; `SIM_NICE`,
//! 0, the simulated workers' priority).

mod meta;
mod sim;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::methods as m;
use api::{ApiInfo, Client};
use futures_util::StreamExt;
use resources::TaskType;
use testkit::Repo;

pub(crate) fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// lotus's 32GiB task times on a typical sealing box (its docs' benchmarks): AP 5 min,
/// PC1 3.5 h, PC2 15 min (GPU), C1 1 min, C2 10 min (GPU), FIN 2 min; WindowPoSt 10 min.
const PROFILE_32G_S: [(TaskType, f64); 7] = [
    (TaskType::AddPiece, 300.0),
    (TaskType::PreCommit1, 12_600.0),
    (TaskType::PreCommit2, 900.0),
    (TaskType::Commit1, 60.0),
    (TaskType::Commit2, 600.0),
    (TaskType::Finalize, 120.0),
    (TaskType::WindowPoSt, 600.0),
];

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // The simulated workers run on this runtime's threads, at `SIM_NICE` (0; in a cluster
    // they are machines of their own). The main thread (which starts the sealer and the chain
    // node, whose children keep its priority) and the probes' thread (the operator's CLI) stay
    // at 0. (At 10 the workers, starved, return late and the sealer's figures get worse.)
    let nice = env_or("SIM_NICE", 0) as libc::c_int;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(4096)
        .on_thread_start(move || {
            // SAFETY: setpriority on the calling thread (Linux: `who` 0 is this thread).
            unsafe { libc::setpriority(libc::PRIO_PROCESS as _, 0, nice) };
        })
        .build()
        .unwrap();
    println!("simulated workers at nice {nice} (SIM_NICE); the sealer, the chain node and the probes at 0");
    rt.block_on(run());
}

async fn run() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A thousand workers in this process: their listeners and both ends of their connections.
    // The hard limit too (root may): the sealer started from here inherits it.
    let mut r = libc::rlimit {
        rlim_cur: 1 << 20,
        rlim_max: 1 << 20,
    };
    // SAFETY: setrlimit only reads the struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
        let _ = processor::limits::raise_open_files();
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
        println!(
            "open files limit: {} (could not raise it to 2^20)",
            r.rlim_cur
        );
    }
    let workers = env_or("WORKERS", 1000) as usize;
    let sectors = env_or("SECTORS", 10_000) as usize;
    let idle_s = env_or("IDLE_S", 30);
    let scale: f64 = std::env::var("SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1e-6);
    let phases = std::env::var("PHASES").unwrap_or_else(|_| "idle,seal,restart".into());
    if phases == "meta" {
        meta::run(env_or("META_SECTORS", 330_000)).await;
        return;
    }
    let delays: Vec<(TaskType, Duration)> = PROFILE_32G_S
        .iter()
        .map(|(t, s)| (*t, Duration::from_secs_f64(s * scale)))
        .collect();
    println!(
        "load: {workers} simulated workers, {sectors} sectors, chain node {}, task times = lotus 32GiB x {scale} \
         ({})",
        match std::env::var("CHAIN").as_deref() {
            Ok("embedded") => "in the sealer's process",
            _ => "of its own (sealer devnet-node)",
        },
        delays
            .iter()
            .map(|(t, d)| format!("{} {:.1} ms", t.short(), d.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // The chain: by default the devnet as a node of its own process (`sealer devnet-node`, as
    // lotus-miner has its lotus daemon), so that the sealer's figures are the sealer's alone;
    // `CHAIN=embedded` keeps it in the sealer's process.
    let node = (std::env::var("CHAIN").as_deref() != Ok("embedded")).then(ChainNode::start);
    let mut repo = Repo::init_without_sealing(false, |c| {
        if let Some(n) = &node {
            c.chain.mode = "lotus".into();
            c.chain.api_info = n.info.clone();
        }
        c.chain.block_delay = format!("{}ms", env_or("BLOCK_MS", 100));
        c.chain.pre_commit_challenge_delay = 1;
        c.chain.other_network_power = "1TiB".into();
        // Deposits and pledges for tens of thousands of sectors.
        c.chain.devnet_worker_funds = "1000000 FIL".into();
        c.sealing.max_sealing_sectors = 0;
        // A large miner batches: 256 pre-commits, 819 prove-commits a message.
        c.sealing.batch_pre_commit_above_base_fee = "0 FIL".into();
        c.sealing.aggregate_above_base_fee = "0 FIL".into();
        c.sealing.pre_commit_batch_wait = "2s".into();
        c.sealing.commit_batch_wait = "2s".into();
    });
    let mut daemon = repo.start();
    let info = repo.ok(&["auth", "api-info", "--perm", "admin"]);
    let info = ApiInfo::parse(info.trim().trim_start_matches("MINER_API_INFO=")).unwrap();
    let client = Arc::new(Client::new(&info, Duration::from_secs(120)));
    let secret = client.request::<m::WorkerJwtSecret>(()).await.unwrap();
    let secret = stores::Secret::from_bytes(unhex(&secret)).unwrap();
    let cpu = Sampler::start(daemon.child.id());

    // 1. Idle.
    let pid = daemon.child.id();
    if phases.contains("idle") {
        let (c, r) = cpu.window(idle_s).await;
        println!("\n[idle, no workers] {idle_s} s: sealer CPU {c:.1}% of one core, RSS {r} MiB");
    }
    // The simulated workers' paths on a tmpfs (`SIM_DIR`, /dev/shm where it is): on this
    // machine's ext4, creating their tens of thousands of small files took over half of the
    // tool's CPU in the inode allocator (a profile), CPU the sealer then waited for. In a
    // cluster each worker has disks of its own; the sealer's repo stays on disk.
    let sim_root = std::env::var("SIM_DIR").unwrap_or_else(|_| {
        let shm = std::path::Path::new("/dev/shm");
        match shm.is_dir() && tempfile::tempdir_in(shm).is_ok() {
            true => "/dev/shm".into(),
            false => std::env::temp_dir().display().to_string(),
        }
    });
    let dir = tempfile::tempdir_in(&sim_root).unwrap();
    println!("simulated workers' paths under {sim_root} (SIM_DIR)");
    let seen = Arc::new(sim::Seen::default());
    let t0 = Instant::now();
    // The first makes the shared store; the others attach it.
    let first = sim::Sim::start(0, dir.path(), &info, secret.clone(), &delays, seen.clone())
        .await
        .unwrap();
    let mut sims: Vec<Arc<sim::Sim>> = futures_util::stream::iter(1..workers)
        .map(|i| {
            let (info, secret, delays, seen) =
                (info.clone(), secret.clone(), delays.clone(), seen.clone());
            let dir = dir.path().to_path_buf();
            async move {
                sim::Sim::start(i, &dir, &info, secret, &delays, seen)
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    sims.push(first);
    let hold = Arc::new(AtomicBool::new(false));
    for s in &sims {
        s.set_hold(hold.clone());
        tokio::spawn(s.clone().stay_connected());
    }
    let registered = wait_workers(&client, workers, Duration::from_secs(600)).await;
    println!(
        "\n{workers} workers started and registered in {:.1} s (registration alone {:.1} s)",
        t0.elapsed().as_secs_f64(),
        registered.as_secs_f64()
    );
    if phases.contains("idle") {
        let beats = seen.heartbeats.load(Ordering::Relaxed);
        let (c, r) = cpu.window(idle_s).await;
        let beats = seen.heartbeats.load(Ordering::Relaxed) - beats;
        println!("[idle, {workers} workers] {idle_s} s: sealer CPU {c:.1}% of one core, RSS {r} MiB, {beats} heartbeats");
    }
    let probes = Probes::start(&info, repo.path(), env_or("PROBE_MS", 1000));
    if phases.contains("idle") {
        let (c, r) = cpu.window(idle_s).await;
        println!("[idle, {workers} workers, the CLI's calls every second] {idle_s} s: sealer CPU {c:.1}% of one core, RSS {r} MiB");
        probes.report();
    }

    // 2. Seal.
    let mut pledged_before = 0;
    let mut held_once = true;
    if phases.contains("seal") {
        pledged_before = sectors;
        probes.reset();
        seen.returns_ms.lock().unwrap().clear();
        let cpu0 = cpu_s(pid);
        let mark = cpu.mark();
        let start = Instant::now();
        let numbers: Vec<u64> = futures_util::stream::iter(0..sectors)
            .map(|_| client.request::<m::PledgeSector>(()))
            .buffer_unordered(64)
            .map(|r| r.expect("PledgeSector").number)
            .collect()
            .await;
        let pledged = start.elapsed();
        wait_proving(
            &client,
            sectors,
            Duration::from_secs(env_or("LIMIT_S", 3600)),
        )
        .await;
        let took = start.elapsed();
        let cpu_used = cpu_s(pid) - cpu0;
        let diag = client.request::<m::SealingSchedDiag>(()).await.unwrap();
        let d = &diag.dispatch;
        println!(
            "\n[seal] {sectors} sectors pledged in {:.1} s, all Proving after {:.1} s",
            pledged.as_secs_f64(),
            took.as_secs_f64()
        );
        println!(
            "  tasks started: {} over {:.1} s = {:.0} tasks/s; ready-to-start p50 {:?} ms, p99 {:?} ms",
            d.tasks,
            d.first_to_last_start_s,
            d.tasks as f64 / d.first_to_last_start_s.max(1e-9),
            d.ready_to_start_p50_ms,
            d.ready_to_start_p99_ms
        );
        let metrics_text = tokio::task::block_in_place(|| repo.http_get("/metrics", "read")).1;
        let metrics = testkit::metric_samples(&metrics_text);
        let pass = |k: &str| {
            metrics
                .get(&format!("sealer_sched_pass_duration_seconds_{k}"))
                .copied()
                .unwrap_or(0.0)
        };
        println!(
            "  scheduling passes: {} , mean {:.2} ms",
            pass("count"),
            pass("sum") * 1000.0 / pass("count").max(1.0)
        );
        if let Some(n) = &node {
            println!(
                "  chain node (its own process) CPU so far: {:.1} s",
                cpu_s(n.child.id())
            );
        }
        println!(
            "  sealer CPU {cpu_used:.1} s ({:.0}% of one core, {:.2} ms per task)",
            cpu_used * 100.0 / took.as_secs_f64(),
            cpu_used * 1000.0 / d.tasks.max(1) as f64
        );
        let (mean, peak, series) = cpu.since(mark, 10);
        println!("  sealer CPU mean {mean:.0}%, peak RSS {peak} MiB; every 10 s: {series}");
        let rets = std::mem::take(&mut *seen.returns_ms.lock().unwrap());
        println!(
            "  WorkerReturn: {} calls, p50 {:.1} ms, p99 {:.1} ms, {} failed and retried",
            rets.len(),
            pct(&rets, 50.0),
            pct(&rets, 99.0),
            seen.return_errors.load(Ordering::Relaxed)
        );
        probes.report();
        println!("  the sealer's own part (its /metrics, since it started: the request read to the answer written out):");
        for method in [
            "Filecoin.SectorsListPage",
            "Filecoin.WorkerStats",
            "Filecoin.WorkerJobs",
            "Filecoin.WorkerReturn",
        ] {
            println!("    {method}: {}", api_times(&metrics_text, method));
        }
        held_once &= check_steps(&seen, &numbers, &client, t0).await;
    }

    // 3. Restart.
    if phases.contains("restart") {
        hold.store(true, Ordering::SeqCst);
        let held: Vec<u64> = futures_util::stream::iter(0..workers)
            .map(|_| client.request::<m::PledgeSector>(()))
            .buffer_unordered(64)
            .map(|r| r.expect("PledgeSector").number)
            .collect()
            .await;
        wait_pc1s(&client, held.len(), "running", Duration::from_millis(500)).await;
        println!(
            "\n[restart] {} PC1s running; killing the sealer (-9)",
            held.len()
        );
        // Back on the same address, as a sealer whose workers are configured with it.
        let addr = std::fs::read_to_string(repo.path().join("api")).unwrap();
        let (mut cfg, _) = sealer::config::Config::load(&repo.config()).unwrap();
        cfg.api.listen_address = addr.trim().to_string();
        std::fs::write(repo.config(), cfg.to_toml()).unwrap();
        daemon.kill9();
        let t = Instant::now();
        daemon = tokio::task::block_in_place(|| repo.start());
        let serving = t.elapsed();
        let pid = daemon.child.id();
        cpu.follow(pid);
        let mark = cpu.mark();
        let back = wait_workers(&client, workers, Duration::from_secs(300)).await;
        let all_back = t.elapsed();
        wait_pc1s(
            &client,
            held.len(),
            "re-attached",
            Duration::from_millis(200),
        )
        .await;
        let attached = t.elapsed();
        println!(
            "  from the restart: serving after {:.1} s, {workers} workers registered after {:.1} s \
             (the wait itself {:.1} s), {} running PC1s attached again after {:.1} s",
            serving.as_secs_f64(),
            all_back.as_secs_f64(),
            back.as_secs_f64(),
            held.len(),
            attached.as_secs_f64()
        );
        let (mean, peak, series) = cpu.since(mark, 2);
        println!("  sealer CPU mean {mean:.0}%, peak RSS {peak} MiB; every 2 s: {series}");
        hold.store(false, Ordering::SeqCst);
        wait_proving(
            &client,
            pledged_before + held.len(),
            Duration::from_secs(env_or("LIMIT_S", 3600)),
        )
        .await;
        println!(
            "  all {} sectors Proving after {:.1} s; sealer CPU {:.1} s since the restart",
            pledged_before + held.len(),
            t.elapsed().as_secs_f64(),
            cpu_s(pid)
        );
        let all: Vec<u64> = (1..=(pledged_before + held.len()) as u64).collect();
        held_once &= check_steps(&seen, &all, &client, t0).await;
    }
    if !held_once {
        // Kept for whoever finds out why: the sealer's repo (its log, its RocksDB).
        repo.dir.disable_cleanup(true);
        println!(
            "\nA step was lost or ran twice: the sealer's repo is kept at {} (its log: {})",
            repo.path().display(),
            daemon.log.display()
        );
    }
    // Its drop asks the sealer for its accounting check, synchronously.
    tokio::task::block_in_place(|| drop(daemon));
}

/// `sealer devnet-node` on a free port with the load's chain settings: killed when dropped.
pub(crate) struct ChainNode {
    child: std::process::Child,
    pub info: String,
    _dir: tempfile::TempDir,
}

impl ChainNode {
    pub fn start() -> ChainNode {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("node.log")).unwrap();
        let child = std::process::Command::new(testkit::bin())
            .arg("devnet-node")
            .arg("--dir")
            .arg(dir.path())
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--block-delay", &format!("{}ms", env_or("BLOCK_MS", 100))])
            .args(["--pre-commit-challenge-delay", "1"])
            .args(["--other-network-power", "1TiB"])
            .args(["--worker-funds", "1000000 FIL", "--mock"])
            // Deadlines of 1,000 s: no sector's first WindowPoSt falls inside the run (PoSt
            // at scale is `sealer/src/wdpost_tests.rs`' 20-partition deadline).
            .args([
                "--wpost-challenge-window",
                &env_or("WPOST_WINDOW", 10_000).to_string(),
            ])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let file = dir.path().join("fullnode_api");
        let t = Instant::now();
        while !file.exists() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "devnet-node did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(100));
        let info = std::fs::read_to_string(&file).unwrap().trim().to_string();
        ChainNode {
            child,
            info,
            _dir: dir,
        }
    }
}

impl Drop for ChainNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `n` PC1s show as running in `WorkerJobs` (10 minutes at most), polling every
/// `every`; `what` names the wait in the failure.
async fn wait_pc1s(client: &Client, n: usize, what: &str, every: Duration) {
    let t = Instant::now();
    loop {
        let jobs = client.request::<m::WorkerJobs>(()).await.unwrap();
        let running = jobs
            .iter()
            .filter(|j| j.task == TaskType::PreCommit1 && j.state == "running")
            .count();
        if running >= n {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(600),
            "PC1s not all {what}: {running} of {n}"
        );
        tokio::time::sleep(every).await;
    }
}

/// Waits until `n` workers are registered; returns how long that took.
async fn wait_workers(client: &Client, n: usize, limit: Duration) -> Duration {
    let t = Instant::now();
    loop {
        if let Ok(rows) = client.request::<m::WorkerStats>(()).await {
            // The sealer's own worker is not one of them.
            if rows
                .iter()
                .filter(|r| r.hostname.starts_with("sim-"))
                .count()
                >= n
            {
                return t.elapsed();
            }
        }
        assert!(
            t.elapsed() < limit,
            "not all {n} workers registered after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_proving(client: &Client, n: usize, limit: Duration) {
    let t = Instant::now();
    let mut shown = Instant::now();
    // This process's open files at most (its limit caps how many simulated workers it holds).
    let mut files = 0;
    loop {
        files = files.max(std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()));
        let info = match client.request::<m::MinerInfoCall>(()).await {
            Ok(i) => i,
            Err(e) => {
                eprintln!("  MinerInfo: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let proving = info.states.get("Proving").copied().unwrap_or(0) as usize;
        if proving >= n {
            return;
        }
        if shown.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "  {:>6.1} s: {proving}/{n} Proving {:?} (this process: at most {files} files open)",
                t.elapsed().as_secs_f64(),
                info.states
            );
            shown = Instant::now();
        }
        assert!(
            t.elapsed() < limit,
            "not all {n} sectors Proving after {limit:?}: {:?}",
            info.states
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every sector's sealing steps ran exactly once: none lost, none duplicated. On a bad count,
/// and for each sector with a failed task, names the sector: each run of its steps (worker,
/// call, when) and the sealer's log of it. Returns whether every step ran once.
async fn check_steps(seen: &sim::Seen, numbers: &[u64], client: &Client, t0: Instant) -> bool {
    let want = TaskType::STEPS;
    let (mut missing, mut twice) = (0, 0);
    let mut named = std::collections::BTreeSet::new();
    {
        let steps = seen.steps.lock().unwrap();
        for n in numbers {
            for t in want {
                match steps.get(&(*n, t)).copied().unwrap_or(0) {
                    0 => missing += 1,
                    1 => continue,
                    _ => twice += 1,
                }
                named.insert(*n);
            }
        }
    }
    let dup_calls = seen
        .calls
        .lock()
        .unwrap()
        .values()
        .filter(|n| **n > 1)
        .count();
    println!(
        "  steps: {} sectors x 6: {missing} missing, {twice} run more than once; {dup_calls} call IDs sent again (run once); {} tasks failed",
        numbers.len(),
        seen.failed.load(Ordering::Relaxed)
    );
    let wanted: std::collections::HashSet<u64> = numbers.iter().copied().collect();
    named.extend(
        seen.runs
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.error.is_some() && wanted.contains(&r.sector))
            .map(|r| r.sector),
    );
    for n in named.iter().take(10) {
        println!("  sector {n}:");
        for r in seen.runs.lock().unwrap().iter().filter(|r| r.sector == *n) {
            println!(
                "    {:>8.3} s  {} on {} (call {}){}",
                r.ended.saturating_duration_since(t0).as_secs_f64(),
                r.task.short(),
                r.worker,
                r.call_id,
                r.error
                    .as_ref()
                    .map(|e| format!(": FAILED {e}"))
                    .unwrap_or_default()
            );
        }
        match client.request::<m::SectorsStatus>((*n, None)).await {
            Ok(info) => {
                for l in &info.log {
                    println!(
                        "    log {:>8.3} s  {} -> {:?} {}",
                        (l.timestamp_ms as f64 - unix_ms(t0)) / 1000.0,
                        l.kind,
                        l.state,
                        l.message
                    );
                }
            }
            Err(e) => println!("    SectorsStatus: {e}"),
        }
    }
    missing == 0 && twice == 0
}

/// `t`, an instant of this process, as unix milliseconds.
fn unix_ms(t: Instant) -> f64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    (now.as_secs_f64() - t.elapsed().as_secs_f64()) * 1000.0
}

/// A method's calls as the sealer's `sealer_api_request_duration_seconds` histogram has them
/// (`text`, its /metrics): how many, their mean, the bucket its p99 falls in, and the slowest
/// bucket used.
fn api_times(text: &str, method: &str) -> String {
    let name = "sealer_api_request_duration_seconds";
    let of_method = format!("method=\"{method}\"");
    let mut count = 0.0;
    let mut sum = 0.0;
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for line in text.lines().filter(|l| l.contains(&of_method)) {
        let Some((key, v)) = line.rsplit_once(' ') else {
            continue;
        };
        let v: f64 = v.parse().unwrap_or(0.0);
        if key.starts_with(&format!("{name}_count")) {
            count = v;
        } else if key.starts_with(&format!("{name}_sum")) {
            sum = v;
        } else if key.starts_with(&format!("{name}_bucket")) {
            let le = key
                .split("le=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("+Inf");
            buckets.push((le.parse().unwrap_or(f64::INFINITY), v));
        }
    }
    if count == 0.0 {
        return "no calls".into();
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let within = |share: f64| {
        buckets
            .iter()
            .find(|(_, c)| *c >= count * share)
            .map_or(f64::NAN, |b| b.0 * 1000.0)
    };
    format!(
        "{count} calls, mean {:.1} ms, p99 at most {} ms, all at most {} ms",
        sum * 1000.0 / f64::max(count, 1.0),
        within(0.99),
        within(1.0)
    )
}

pub(crate) fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[((s.len() - 1) as f64 * p / 100.0).round() as usize]
}

/// Each probed RPC's calls (when it started, ms taken) and errors.
type Latencies = Arc<Mutex<BTreeMap<&'static str, (Vec<(Instant, f64)>, u64)>>>;

/// RPCs an operator's CLI makes, polled while the cluster runs: each one's latencies. The
/// calls come from a thread and a client of their own, as from the CLI's own process, so
/// that they do not wait behind the simulated workers' tasks in this process.
struct Probes {
    took: Latencies,
    since: Arc<Mutex<Instant>>,
}

impl Probes {
    fn start(info: &ApiInfo, repo: &std::path::Path, every_ms: u64) -> Probes {
        let took: Latencies = Default::default();
        let t = took.clone();
        let info = info.clone();
        let repo = repo.to_path_buf();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let client = Client::new(&info, Duration::from_secs(120));
            rt.block_on(async move {
                loop {
                    let a = Instant::now();
                    let r1 = client
                        .request::<m::SectorsListPage>((Vec::new(), 0, 0, Some(true)))
                        .await
                        .map(|_| ());
                    let b = Instant::now();
                    let r2 = client.request::<m::WorkerStats>(()).await.map(|_| ());
                    let c = Instant::now();
                    let r3 = client.request::<m::WorkerJobs>(()).await.map(|_| ());
                    let d = Instant::now();
                    // The same list without the chain's column (no `StateMinerSectors`):
                    // what the sealer's own part of `sectors list` costs.
                    let r4 = client
                        .request::<m::SectorsListPage>((Vec::new(), 0, 0, None))
                        .await
                        .map(|_| ());
                    let e = Instant::now();
                    // The chain's head through the sealer (the CLI's second call).
                    let r6 = client.request::<m::ChainHead>(()).await.map(|_| ());
                    let f = Instant::now();
                    // The operator's own command: a process of its own, a new connection, every
                    // row printed.
                    let r5 = std::process::Command::new(testkit::bin())
                        .arg("--repo")
                        .arg(&repo)
                        .args(["sectors", "list"])
                        .env_remove("MINER_API_INFO")
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .status()
                        .map_err(|e| e.to_string())
                        .and_then(|s| s.success().then_some(()).ok_or(s.to_string()));
                    let end = Instant::now();
                    {
                        let mut g = t.lock().unwrap();
                        for (name, r, at, took) in [
                            ("sectors list", r1.map_err(|e| e.to_string()), a, b - a),
                            ("sealing workers", r2.map_err(|e| e.to_string()), b, c - b),
                            ("sealing jobs", r3.map_err(|e| e.to_string()), c, d - c),
                            (
                                "sectors list, no expirations",
                                r4.map_err(|e| e.to_string()),
                                d,
                                e - d,
                            ),
                            ("chain head", r6.map_err(|e| e.to_string()), e, f - e),
                            ("sectors list, the CLI (its own process)", r5, f, end - f),
                        ] {
                            let e = g.entry(name).or_default();
                            e.0.push((at, took.as_secs_f64() * 1000.0));
                            if r.is_err() {
                                e.1 += 1;
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(every_ms)).await;
                }
            })
        });
        Probes {
            took,
            since: Arc::new(Mutex::new(Instant::now())),
        }
    }

    fn reset(&self) {
        self.took.lock().unwrap().clear();
        *self.since.lock().unwrap() = Instant::now();
    }

    /// Each call's p50, p99 and max, and when its three slowest calls started (seconds since
    /// the reset).
    fn report(&self) {
        let since = *self.since.lock().unwrap();
        for (name, (calls, errors)) in self.took.lock().unwrap().iter() {
            let v: Vec<f64> = calls.iter().map(|c| c.1).collect();
            let mut slow = calls.clone();
            slow.sort_by(|a, b| b.1.total_cmp(&a.1));
            println!(
                "  {name}: {} calls, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {errors} errors; slowest at {}",
                v.len(),
                pct(&v, 50.0),
                pct(&v, 99.0),
                v.iter().cloned().fold(0.0, f64::max),
                slow.iter()
                    .take(3)
                    .map(|(at, ms)| format!(
                        "{:.0} s ({ms:.0} ms)",
                        at.saturating_duration_since(since).as_secs_f64()
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
}

/// The sealer's CPU and RSS, sampled every second for the whole run (the pid changes at the
/// restart).
struct Sampler {
    pid: Arc<std::sync::atomic::AtomicU32>,
    /// (seconds since the start, CPU % of one core over the last second, RSS MiB).
    series: Arc<Mutex<Vec<(f64, f64, u64)>>>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let series: Arc<Mutex<Vec<(f64, f64, u64)>>> = Default::default();
        let pid = Arc::new(std::sync::atomic::AtomicU32::new(pid));
        let (s, p) = (series.clone(), pid.clone());
        let t0 = Instant::now();
        tokio::spawn(async move {
            let mut last = (
                p.load(Ordering::Relaxed),
                cpu_s(p.load(Ordering::Relaxed)),
                Instant::now(),
            );
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let pid = p.load(Ordering::Relaxed);
                let c = cpu_s(pid);
                let used = if pid == last.0 { c - last.1 } else { c };
                let pc = used * 100.0 / last.2.elapsed().as_secs_f64();
                s.lock()
                    .unwrap()
                    .push((t0.elapsed().as_secs_f64(), pc, rss_mib(pid)));
                last = (pid, c, Instant::now());
            }
        });
        Sampler { pid, series }
    }

    fn follow(&self, pid: u32) {
        self.pid.store(pid, Ordering::Relaxed);
    }

    fn mark(&self) -> usize {
        self.series.lock().unwrap().len()
    }

    /// The samples since `mark`: mean CPU, peak RSS, and the series in `every`-second steps.
    fn since(&self, mark: usize, every: usize) -> (f64, u64, String) {
        let g = self.series.lock().unwrap();
        let v = &g[mark.min(g.len())..];
        let mean = v.iter().map(|x| x.1).sum::<f64>() / v.len().max(1) as f64;
        let peak = v.iter().map(|x| x.2).max().unwrap_or(0);
        let series = v
            .chunks(every.max(1))
            .map(|c| {
                let cpu = c.iter().map(|x| x.1).sum::<f64>() / c.len() as f64;
                format!(
                    "{:.0}s {:.0}% {}M",
                    c[0].0,
                    cpu,
                    c.iter().map(|x| x.2).max().unwrap_or(0)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        (mean, peak, series)
    }

    /// Mean CPU (% of one core) and peak RSS (MiB) over the next `secs` seconds.
    async fn window(&self, secs: u64) -> (f64, u64) {
        let m = self.mark();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let (c, r, _) = self.since(m, 1);
        (c, r)
    }
}

/// User + system CPU seconds a process has used so far (Linux).
pub(crate) fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

pub(crate) fn rss_mib(pid: u32) -> u64 {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    st.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
