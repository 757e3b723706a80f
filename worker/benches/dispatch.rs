//! Dispatch benchmark (issue #6): a sealer that seals nothing itself, `WORKERS` workers (4) on
//! this machine, the mock engine with zero-duration tasks, chain waits at their minimum, and
//! `SECTORS` sectors (200) pledged at once. Reports how many tasks the scheduler started per
//! second and the time from a task becoming ready to it starting on a worker (p50/p99), as the
//! sealer's `sealing sched-diag` measured them.
//!
//! `cargo bench -p worker --bench dispatch --profile dev` (build the workspace first:
//! `cargo build --workspace`).
//!
//! `METRICS=compare` (issue #18) runs the whole thing `ROUNDS` (2) times each with the sealer's
//! metrics off (`[API] Metrics = false`) and on, alternately, a fresh cluster each time; with
//! metrics on, `/metrics` is scraped every second meanwhile (Prometheus' default is 15 s).
//! It prints each run and the ratio of the means. `METRICS=off` runs once with them off.

use testkit as common;

use std::time::{Duration, Instant};

use common::{Repo, WorkerProc};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one run measured.
struct Figures {
    tasks_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    sealer_cpu_s: f64,
    tasks: usize,
    scrapes: usize,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mode = std::env::var("METRICS").unwrap_or_else(|_| "on".into());
    if mode != "compare" {
        run(mode != "off");
        return;
    }
    let rounds = env_or("ROUNDS", 2);
    // A first run warms the machine (page cache, CPU frequency): not counted.
    println!("warm-up run (not counted):");
    run(false);
    let mut runs: Vec<(bool, Figures)> = Vec::new();
    for round in 0..rounds {
        // Alternate which goes first, so that a drift over time favours neither.
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for on in order {
            runs.push((on, run(on)));
        }
    }
    println!("\nmetrics | tasks/s | ready-to-start p50 / p99 | sealer CPU per task | scrapes");
    for (on, f) in &runs {
        println!(
            "{:<7} | {:>7.0} | {:.1} / {:.1} ms | {:.2} ms | {}",
            if *on { "on" } else { "off" },
            f.tasks_per_s,
            f.p50_ms,
            f.p99_ms,
            f.sealer_cpu_s * 1000.0 / f.tasks.max(1) as f64,
            f.scrapes
        );
    }
    let mean = |on: bool, g: fn(&Figures) -> f64| {
        let v: Vec<f64> = runs
            .iter()
            .filter(|(o, _)| *o == on)
            .map(|(_, f)| g(f))
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let tps = |f: &Figures| f.tasks_per_s;
    let cpu = |f: &Figures| f.sealer_cpu_s / f.tasks.max(1) as f64;
    println!(
        "on/off: throughput {:.3}x, sealer CPU per task {:.3}x (means of {rounds} runs each)",
        mean(true, tps) / mean(false, tps),
        mean(true, cpu) / mean(false, cpu)
    );
}

fn run(metrics: bool) -> Figures {
    let sectors = env_or("SECTORS", 200);
    let workers = env_or("WORKERS", 4);
    let limit = Duration::from_secs(env_or("LIMIT_S", 600) as u64);

    let repo = Repo::init_without_sealing(false, |c| {
        c.api.metrics = metrics;
        c.chain.block_delay = env_or("BLOCK_MS", 10).to_string() + "ms";
        c.chain.pre_commit_challenge_delay = 1;
        c.chain.other_network_power = "1TiB".into(); // no WinningPoSt load in the figures
        c.sealing.max_sealing_sectors = 0;
    });
    let d = repo.start();
    repo.attach_store();
    // Zero-duration tasks use no CPU: with `FREE_THREADS=1` (the default) the workers' tables say
    // so (`<TT>_MAX_PARALLELISM=0`), so that only the scheduler limits how many run at once.
    let free = env_or("FREE_THREADS", 1) == 1;
    let env: Vec<(&str, &str)> = if free {
        ["AP", "PC1", "PC2", "C1", "C2"]
            .iter()
            .map(|t| (&*format!("{t}_MAX_PARALLELISM").leak(), "0"))
            .collect()
    } else {
        Vec::new()
    };
    let ws: Vec<WorkerProc> = (0..workers)
        .map(|i| WorkerProc::start(&repo, &format!("W{i}"), &[], &env))
        .collect();

    let info = repo.ok(&["auth", "api-info", "--perm", "admin"]);
    let info = api::client::ApiInfo::parse(info.trim().trim_start_matches("MINER_API_INFO="))
        .expect("api info");
    let client = api::client::Client::new(&info, Duration::from_secs(60));
    let rt = tokio::runtime::Runtime::new().unwrap();
    // A scraper, as Prometheus would be, every second while the sectors seal.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scraper = metrics.then(|| {
        let (stop, url, token) = (stop.clone(), info.url_at("/metrics"), info.token.clone());
        std::thread::spawn(move || {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let c = reqwest::blocking::Client::new();
            let mut took = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t0 = Instant::now();
                let r = c
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .expect("scraping /metrics");
                assert!(r.status().is_success(), "/metrics: {}", r.status());
                assert!(r.text().unwrap().contains("sealer_build_info"));
                took.push(t0.elapsed().as_secs_f64() * 1000.0);
                std::thread::sleep(Duration::from_secs(1));
            }
            took
        })
    });
    let start = Instant::now();
    rt.block_on(async {
        let calls = (0..sectors).map(|_| client.request::<api::methods::PledgeSector>(()));
        for r in futures_util::future::join_all(calls).await {
            r.expect("PledgeSector");
        }
    });
    let pledged = start.elapsed();
    let mut last_print = Instant::now();
    loop {
        // One light call per poll (`sectors list` would ask for every sector).
        let info = rt
            .block_on(client.request::<api::methods::MinerInfoCall>(()))
            .expect("MinerInfo");
        let proving = info.states.get("Proving").copied().unwrap_or(0) as usize;
        if proving == sectors {
            break;
        }
        if last_print.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "{:>6.1}s: {proving}/{sectors} Proving",
                start.elapsed().as_secs_f64()
            );
            last_print = Instant::now();
        }
        if start.elapsed() > limit {
            let list = repo.ok(&["sectors", "list"]);
            let diag = repo.ok(&["sealing", "sched-diag"]);
            let jobs = repo.ok(&["sealing", "jobs"]);
            eprintln!("{list}\n{jobs}\n{diag}");
            for w in &ws {
                let log = w.log();
                let odd: Vec<&str> = log
                    .lines()
                    .filter(|l| !l.contains(" INFO ") || l.contains("C2"))
                    .collect();
                eprintln!(
                    "--- {} log (C2 and warnings):\n{}",
                    w.name,
                    tail(&odd.join("\n"), 20)
                );
            }
            eprintln!("--- sealer log tail:\n{}", tail(&d.log(), 40));
            panic!("not all {sectors} sectors reached Proving within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let total = start.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let took = scraper.map_or(Vec::new(), |s| s.join().unwrap());
    let scrapes = took.len();
    if scrapes > 0 {
        println!(
            "  /metrics scraped {scrapes} times: {:.1} ms mean, {:.1} ms max",
            took.iter().sum::<f64>() / scrapes as f64,
            took.iter().cloned().fold(0.0, f64::max)
        );
    }
    let diag: api::SchedDiag = serde_json::from_str(&repo.ok(&["sealing", "sched-diag"])).unwrap();
    let dsp = &diag.dispatch;
    let (tasks, span) = (dsp.tasks, dsp.first_to_last_start_s);
    println!(
        "dispatch: {sectors} sectors, {workers} workers, mock engine (zero-duration tasks), metrics {}",
        if metrics { "on (scraped every 1 s)" } else { "off" }
    );
    println!(
        "  pledged in {:.2} s, all Proving after {:.2} s",
        pledged.as_secs_f64(),
        total.as_secs_f64()
    );
    println!(
        "  tasks started: {tasks} over {span:.2} s = {:.0} tasks/s",
        tasks as f64 / span.max(1e-9)
    );
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v}"));
    println!(
        "  ready-to-start: p50 {} ms, p99 {} ms, max {} ms",
        ms(dsp.ready_to_start_p50_ms),
        ms(dsp.ready_to_start_p99_ms),
        ms(dsp.ready_to_start_max_ms)
    );
    println!(
        "  of which ready-to-assigned (the scheduler's part): p50 {} ms, p99 {} ms",
        ms(dsp.ready_to_assign_p50_ms),
        ms(dsp.ready_to_assign_p99_ms)
    );
    let sealer_cpu_s = cpu_s(d.child.id());
    let mut cpu = format!("  CPU time: sealer {sealer_cpu_s:.2} s");
    for w in &ws {
        cpu.push_str(&format!(", {} {:.2} s", w.name, cpu_s(w.child.id())));
    }
    println!("{cpu}");
    if let Ok(p) = std::env::var("KEEP_LOG") {
        std::fs::copy(&d.log, p).unwrap();
    }
    if std::env::var("SHOW_WORKERS").is_ok() {
        println!("{}", repo.ok(&["sealing", "workers"]));
    }
    Figures {
        tasks_per_s: tasks as f64 / span.max(1e-9),
        p50_ms: dsp.ready_to_start_p50_ms.unwrap_or(0.0),
        p99_ms: dsp.ready_to_start_p99_ms.unwrap_or(0.0),
        sealer_cpu_s,
        tasks,
        scrapes,
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// User + system CPU seconds a process has used so far (Linux).
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the ')'.
    (ticks(11) + ticks(12)) / 100.0
}
