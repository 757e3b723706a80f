//! The seeds' two-machine plan with real processes on 127.0.0.1 (mock engine): a sealer that
//! seals nothing itself, worker A (AP, PC1, PC2), B1 (PC1, PC2) and B2 (C2) sharing B1's seal
//! path; and a worker killed during PC1.

use testkit as common;

use std::path::Path;
use std::time::Duration;

use common::{Repo, WorkerProc};

/// Each test runs a sealer and several workers: one test at a time keeps 2-core machines from
/// timing out.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn sealer_without_sealing(delays: &str) -> (Repo, common::Daemon) {
    let repo = Repo::init_without_sealing(false, |c| {
        c.proofs.mock_delays = delays.into();
    });
    let d = repo.start();
    repo.attach_store();
    (repo, d)
}

/// Which worker each task of sector `n` ran on, from its event log (`PC1 on B1`).
fn ran_on(repo: &Repo, n: u64, task: &str) -> Vec<String> {
    let log = repo.ok(&["sectors", "status", &n.to_string(), "--log"]);
    let needle = format!("{task} on ");
    let mut out = Vec::new();
    for l in log.lines() {
        for (i, _) in l.match_indices(&needle) {
            if l[..i]
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            {
                continue; // "C2 on" inside "PC2 on"
            }
            let rest = &l[i + needle.len()..];
            out.push(
                rest.split([',', ')', '('])
                    .next()
                    .unwrap()
                    .trim()
                    .to_string(),
            );
        }
    }
    out
}

fn files_of(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for t in ["unsealed", "sealed", "cache"] {
        if let Ok(rd) = std::fs::read_dir(dir.join(t)) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("s-t0") {
                    out.push(format!("{t}/{name}"));
                }
            }
        }
    }
    out.sort();
    out
}

/// The seeds' workers: A (AP, PC1, PC2; environment `a_env`), B1 (PC1, PC2) on a seal path of
/// its own, and B2 (C2) sharing B1's seal path.
struct SeedPlan {
    a: WorkerProc,
    b1: WorkerProc,
    b2: WorkerProc,
    b_seal: tempfile::TempDir,
}

fn seeds_plan(repo: &Repo, a_env: &[(&str, &str)]) -> SeedPlan {
    let delays = "--mock-delays=PC1=500ms,PC2=200ms";
    let a = WorkerProc::start(repo, "A", &["--commit=false", delays], a_env);
    let b_seal = tempfile::tempdir().unwrap();
    let b1 = WorkerProc::start(
        repo,
        "B1",
        &[
            "--unseal=false",
            "--addpiece=false",
            "--commit=false",
            "--no-local-storage",
            delays,
        ],
        &[],
    );
    b1.cli(&[
        "storage",
        "attach",
        "--init",
        "--seal",
        b_seal.path().to_str().unwrap(),
    ]);
    let b2 = WorkerProc::start(
        repo,
        "B2",
        &[&common::C2_ONLY[..], &["--no-local-storage"]].concat(),
        &[],
    );
    b2.cli(&[
        "storage",
        "attach",
        "--seal",
        b_seal.path().to_str().unwrap(),
    ]);
    SeedPlan { a, b1, b2, b_seal }
}

#[test]
fn the_seeds_two_machine_plan_seals_six_sectors() {
    let _one = serial();
    let (repo, d) = sealer_without_sealing("");
    let SeedPlan { a, b1, b2, b_seal } = seeds_plan(&repo, &[("PC1_MAX_CONCURRENT", "2")]);
    std::thread::sleep(Duration::from_millis(2500)); // the sealer learns the new paths
    let info = b2.cli(&["info"]);
    let tasks = common::field(&info, "Task types:");
    assert!(tasks.contains("C2") && !tasks.contains("PC1"), "{info}");
    assert!(info.contains("PC1 SDR: none (mock engine)"), "{info}");
    // Its CPUs as /sys lays them out (where /sys can be read).
    let topo = common::field(&info, "CPU topology:");
    if std::path::Path::new("/sys/devices/system/cpu/online").exists() {
        assert!(
            topo.contains(" cores; L3 groups: ") && topo.contains("NUMA: node"),
            "{info}"
        );
    }
    // The worker logged its effective options once, in one block.
    let log = b2.log();
    assert_eq!(log.matches("effective options").count(), 1, "{log}");
    for want in [
        "no-local-storage: true",
        "parallel-fetch-limit: 5",
        "PC1 SDR: none (mock engine)",
    ] {
        assert!(log.contains(want), "{want}: {log}");
    }

    let numbers: Vec<u64> = (1..=6).collect();
    for _ in &numbers {
        repo.ok(&["sectors", "pledge"]);
    }
    for n in ["A", "B1", "B2"] {
        assert!(repo.worker(n).is_some(), "{:?}", repo.workers());
    }
    repo.wait_states(&numbers, Duration::from_secs(120), |s| {
        if let Some(i) = s.iter().position(|s| s.contains("Failed")) {
            let n = (i + 1).to_string();
            panic!("{s:?}: {}", repo.ok(&["sectors", "status", &n, "--log"]));
        }
        s.iter().all(|s| s == "Proving")
    });
    let mut pc1_hosts = std::collections::BTreeSet::new();
    for n in &numbers {
        assert_eq!(ran_on(&repo, *n, "AP"), ["A"], "sector {n}");
        assert_eq!(ran_on(&repo, *n, "C2"), ["B2"], "sector {n}");
        pc1_hosts.extend(ran_on(&repo, *n, "PC1"));
        assert!(ran_on(&repo, *n, "GET")
            .iter()
            .all(|h| h != "A" && h != "B1" && h != "B2"));
    }
    assert_eq!(pc1_hosts.into_iter().collect::<Vec<_>>(), ["A", "B1"]);
    // B2 reads B1's files on the shared path: it never fetched anything.
    assert!(
        b2.cli(&["info"]).contains("Fetches: 0"),
        "{}",
        b2.cli(&["info"])
    );
    // Finalized files are on the sealer's store path and gone from the seal paths.
    let stored = files_of(&repo.path().join("store"));
    assert_eq!(stored.len(), 12, "{stored:?}");
    assert!(stored.iter().all(|f| !f.starts_with("unsealed")));
    assert_eq!(
        files_of(b_seal.path()),
        Vec::<String>::new(),
        "{}\n{}\n{}",
        d.log(),
        b1.log(),
        b2.log()
    );
    assert_eq!(files_of(&a.repo.path().join("local")), Vec::<String>::new());
    let found = repo.ok(&["storage", "find", "3"]);
    assert!(
        found.contains("Store: true") && !found.contains("Seal: true"),
        "{found}"
    );
    plan_of_the_running_cluster(&repo);
    drop((a, b1, b2, d));
}

/// `sealer plan --recorded` for the seeds' workers, once they sealed six sectors: every
/// registered worker planned with what stops its next task, the seal path B1 and B2 share
/// counted once, and the step times each one recorded (the mock engine's, and said so).
fn plan_of_the_running_cluster(repo: &Repo) {
    let plan = repo.ok(&["plan", "--recorded", "--days", "2"]);
    eprintln!("{plan}");
    assert!(
        plan.contains("workers registered with the sealer (mock engine)"),
        "{plan}"
    );
    for w in ["\nA:", "\nB1:", "\nB2:"] {
        assert!(plan.contains(w), "{w}: {plan}");
    }
    let section = |name: &str| -> String {
        let start = plan.find(&format!("\n{name}:")).unwrap();
        let rest = &plan[start + 1..];
        rest[..rest.find("\n\n").unwrap_or(rest.len())].to_string()
    };
    let b2 = section("B2");
    assert!(b2.contains("C2") && !b2.contains("PC1"), "{b2}");
    let a = section("A");
    assert!(a.contains("PC1 ") && a.contains("recorded, "), "{a}");
    assert!(plan.contains("The mock engine ran these steps"), "{plan}");
    // The sealer's own store path does not seal; B1's path, which B2 reaches too, counts once
    // beside A's own.
    assert!(plan.contains(" on 2 paths, "), "{plan}");
    assert!(
        plan.contains("WindowPoSt with 6 sectors (the sectors the miner proves now)"),
        "{plan}"
    );
    let bound = common::plan_bound(&plan);
    assert!(bound > 0.0, "{plan}");
    assert!(plan.contains("Scheduler, simulated "), "{plan}");
}

#[test]
fn a_worker_killed_during_pc1_loses_nothing() {
    let _one = serial();
    // The sealer does AP; A's PC1 moves the unsealed file over, so when A dies the sector is
    // packed again and sealed on B.
    let (repo, d) = sealer_without_sealing("");
    let cfg = std::fs::read_to_string(repo.config()).unwrap();
    drop(d);
    std::fs::write(
        repo.config(),
        cfg.replace("AllowAddPiece = false", "AllowAddPiece = true"),
    )
    .unwrap();
    let d = repo.start();
    let seal = repo.path().join("seal");
    std::fs::create_dir_all(&seal).unwrap();
    repo.ok(&[
        "storage",
        "attach",
        "--init",
        "--seal",
        seal.to_str().unwrap(),
    ]);
    let mut a = WorkerProc::start(&repo, "A", &["--mock-delays=PC1=30s"], &[]);
    repo.ok(&["sectors", "pledge"]);
    let start = std::time::Instant::now();
    loop {
        let jobs = repo.ok(&["sealing", "jobs"]);
        // Running, with the layer its processor said it started (#18): PC1 of 2KiB has 2.
        if jobs.lines().any(|l| {
            l.contains("PC1")
                && l.contains(" A ")
                && l.contains("running")
                && l.contains("layer 1/2")
        }) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{jobs}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let b = WorkerProc::start(&repo, "B", &[], &[]);
    a.kill9();
    let start = std::time::Instant::now();
    while repo.state(1) != "Proving" {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "{}\n{}\n--- sealer log:\n{}",
            repo.ok(&["sectors", "status", "1", "--log"]),
            repo.ok(&["sealing", "jobs"]),
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = repo.ok(&["sectors", "status", "1", "--log"]);
    assert!(log.contains("PC1 on B"), "{log}");
    assert!(log.contains("SectorRepack"), "{log}");
    assert!(
        log.contains("worker was lost") || log.contains("not answering"),
        "{log}"
    );
    // The lost worker cost no retry.
    assert!(log.contains("[worker lost]"), "{log}");
    assert!(log.contains("no retry spent"), "{log}");
    assert!(!log.contains("retry 1 after"), "{log}");
    // Nothing of the dead attempt is still counted anywhere.
    let jobs = repo.ok(&["sealing", "jobs"]);
    assert_eq!(jobs.lines().count(), 1, "{jobs}");
    assert!(repo.worker("A").is_none(), "{:?}", repo.workers());
    drop((b, d));
}

/// A sealer that seals nothing, on a fixed port so that workers find it again after a restart.
fn sealer_on_fixed_port() -> (Repo, common::Daemon) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let repo = Repo::init_without_sealing(false, |c| {
        c.api.listen_address = format!("/ip4/127.0.0.1/tcp/{port}/http");
    });
    let d = repo.start();
    repo.attach_store();
    (repo, d)
}

fn wait_running(repo: &Repo, task: &str) {
    let start = std::time::Instant::now();
    loop {
        let jobs = repo.ok(&["sealing", "jobs"]);
        if jobs
            .lines()
            .any(|l| l.split_whitespace().nth(4) == Some(task) && l.contains("running"))
        {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{jobs}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The CPUs of the running PC1 of sector `n`, as `sealing jobs` places it.
fn pc1_cpus(repo: &Repo, n: u64) -> Option<String> {
    repo.request::<api::methods::WorkerJobs>(())
        .into_iter()
        .find(|j| {
            j.task == resources::TaskType::PreCommit1
                && j.state == "running"
                && j.subject.sector().map(|s| s.number) == Some(n)
        })
        .and_then(|j| j.cpus.map(|c| c.to_string()))
}

#[test]
fn a_pc1_running_across_a_sealer_restart_keeps_its_cpus() {
    let _one = serial();
    let (repo, mut d) = sealer_on_fixed_port();
    let w = WorkerProc::start(&repo, "W", &["--mock-delays=PC1=12s"], &[]);
    repo.ok(&["sectors", "pledge"]);
    wait_running(&repo, "PC1");
    let first = pc1_cpus(&repo, 1).expect("placed");
    d.kill9();
    let d = repo.start();
    // W registers again, saying what it runs and where; the next PC1 is placed elsewhere.
    repo.ok(&["sectors", "pledge"]);
    let start = std::time::Instant::now();
    let second = loop {
        if let Some(c) = pc1_cpus(&repo, 2) {
            break c;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(repo.state(1), "PreCommit1", "sector 1's PC1 still runs");
    assert_ne!(first, second, "{}", w.log());
    repo.wait_states(&[1, 2], Duration::from_secs(60), |s| {
        s.iter().all(|x| x == "Proving")
    });
    drop((w, d));
}

#[test]
fn a_result_made_while_the_sealer_was_down_is_delivered_not_recomputed() {
    let _one = serial();
    let (repo, mut d) = sealer_on_fixed_port();
    let w = WorkerProc::start(&repo, "W", &["--mock-delays=C2=4s"], &[]);
    repo.ok(&["sectors", "pledge"]);
    wait_running(&repo, "C2");
    d.kill9();
    // C2 finishes while the sealer is down; the worker keeps the result and retries returning it.
    std::thread::sleep(Duration::from_secs(5));
    let d = repo.start();
    repo.wait_states(&[1], Duration::from_secs(60), |s| s[0] == "Proving");
    let log = repo.ok(&["sectors", "status", "1", "--log"]);
    assert_eq!(ran_on(&repo, 1, "C2"), ["W"], "{log}");
    assert_eq!(
        w.log().matches("running C2 of sector 1").count(),
        1,
        "{}",
        w.log()
    );
    assert!(d.log().contains("re-attaching to call"), "{}", d.log());
    drop((w, d));
}

#[test]
fn a_worker_without_room_gets_no_new_sector_and_sched_diag_says_why() {
    let _one = serial();
    let (repo, d) = sealer_without_sealing("");
    let small = WorkerProc::start(&repo, "Small", &["--no-local-storage"], &[]);
    let tiny = tempfile::tempdir().unwrap();
    // A 2KiB sector needs ~33 KiB of sealing room (unsealed + sealed + 14.1x cache).
    small.cli(&[
        "storage",
        "attach",
        "--init",
        "--seal",
        "--max-storage",
        "16KiB",
        tiny.path().to_str().unwrap(),
    ]);
    std::thread::sleep(Duration::from_millis(2500));
    repo.ok(&["sectors", "pledge"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(repo.state(1), "Packing");
    let diag = repo.ok(&["sealing", "sched-diag"]);
    assert!(
        diag.contains("\"Host\": \"Small\"") && diag.contains("\"RoomToSeal\": false"),
        "{diag}"
    );
    assert!(diag.contains("gets no AP or PC1 of a new sector"), "{diag}");
    assert!(diag.contains("\"Task\": \"AP\""), "{diag}");
    // A worker with room arrives: the new sector goes there (C2, which needs no room, may
    // still run on Small).
    let big = WorkerProc::start(&repo, "Big", &[], &[]);
    repo.wait_states(&[1], Duration::from_secs(60), |s| s[0] == "Proving");
    let log = repo.ok(&["sectors", "status", "1", "--log"]);
    assert!(
        log.contains("AP on Big")
            && log.contains("PC1 on Big")
            && !log.contains("AP on Small")
            && !log.contains("PC1 on Small"),
        "{log}"
    );
    drop((small, big, d));
}

#[test]
fn worker_tasks_disable_and_enable_reach_the_scheduler_at_once() {
    let _one = serial();
    let (repo, d) = sealer_without_sealing("");
    let w = WorkerProc::start(&repo, "W", &[], &[]);
    let takes_ap = |repo: &Repo| {
        let w = repo.worker("W").expect("W is listed");
        w.tasks.contains(resources::TaskType::AddPiece)
    };
    w.cli(&["tasks", "disable", "AP"]);
    let start = std::time::Instant::now();
    while takes_ap(&repo) {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            repo.worker("W")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    repo.ok(&["sectors", "pledge"]);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(repo.state(1), "Packing");
    let diag = repo.request::<api::methods::SealingSchedDiag>(());
    let ap = |j: &api::QueuedJob| j.task == "AP";
    assert!(
        diag.queued.iter().chain(&diag.unplaceable).any(ap),
        "{diag:?}"
    );
    w.cli(&["tasks", "enable", "AP"]);
    repo.wait_states(&[1], Duration::from_secs(30), |s| s[0] == "Proving");
    assert!(takes_ap(&repo), "{:?}", repo.worker("W"));
    drop((w, d));
}

#[test]
fn a_call_whose_worker_never_comes_back_after_a_sealer_restart_runs_elsewhere() {
    let _one = serial();
    let (repo, mut d) = sealer_on_fixed_port();
    let a = WorkerProc::start(&repo, "A", &["--commit=false"], &[]);
    let mut w = WorkerProc::start(
        &repo,
        "W",
        &[&common::C2_ONLY[..], &["--mock-delays=C2=60s"]].concat(),
        &[],
    );
    repo.ok(&["sectors", "pledge"]);
    wait_running(&repo, "C2");
    d.kill9();
    w.kill9();
    let d = repo.start();
    let w2 = WorkerProc::start(&repo, "W2", &common::C2_ONLY, &[]);
    // The sealer waits for W through the heartbeat's removal time, then retries C2 on W2.
    repo.wait_states(&[1], Duration::from_secs(60), |s| s[0] == "Proving");
    let log = repo.ok(&["sectors", "status", "1", "--log"]);
    assert!(log.contains("worker W did not come back"), "{log}");
    assert_eq!(ran_on(&repo, 1, "C2"), ["W", "W2"], "{log}");
    drop((a, w2, d));
}

#[test]
fn a_windowpost_worker_on_the_shared_store_proves_the_deadlines() {
    let _one = serial();
    // The sealer seals by itself; a `--windowpost` worker sees its store path (shared storage).
    let repo = Repo::init(false, |c| {
        c.chain.wpost_challenge_window = 3;
    });
    let d = repo.start();
    repo.attach_paths();
    let post = WorkerProc::start(&repo, "P", &["--windowpost", "--no-local-storage"], &[]);
    post.cli(&[
        "storage",
        "attach",
        "--store",
        repo.path().join("store").to_str().unwrap(),
    ]);
    let p = repo.worker("P").expect("P is listed");
    let wdp_only: resources::TaskSet = [resources::TaskType::WindowPoSt].into_iter().collect();
    assert_eq!(p.tasks, wdp_only, "{p:?}");
    repo.ok(&["sectors", "pledge"]);
    repo.wait_states(&[1], Duration::from_secs(60), |s| s[0] == "Proving");
    let start = std::time::Instant::now();
    while !post.log().contains("running WDP") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no WDP on the PoSt worker: {}\n{}",
            post.log(),
            repo.ok(&["proving", "deadlines"])
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let start = std::time::Instant::now();
    while repo.proven_deadlines() == 0 {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", d.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(repo.deadlines().missed, 0);
    drop((post, d));
}

#[test]
fn a_windowpost_worker_killed_while_proving_is_replaced_by_another_in_time() {
    let _one = serial();
    // 15 s deadlines: time for the heartbeat to give the lost worker up (10 s) and prove again.
    let repo = Repo::init(false, |c| {
        c.chain.wpost_challenge_window = 150;
    });
    let d = repo.start();
    repo.attach_paths();
    let store = repo.path().join("store");
    let mut posts: Vec<WorkerProc> = ["P1", "P2"]
        .iter()
        .map(|name| {
            let w = WorkerProc::start(
                &repo,
                name,
                &["--windowpost", "--no-local-storage", "--mock-delays=WDP=3s"],
                &[],
            );
            w.cli(&["storage", "attach", "--store", store.to_str().unwrap()]);
            w
        })
        .collect();
    repo.ok(&["sectors", "pledge"]);
    repo.wait_states(&[1], Duration::from_secs(60), |s| s[0] == "Proving");
    // The sector's deadline opens within two deadlines; kill whichever PoSt worker takes it.
    let start = std::time::Instant::now();
    let victim = loop {
        if let Some(i) = posts.iter().position(|w| w.log().contains("running WDP")) {
            break i;
        }
        assert!(start.elapsed() < Duration::from_secs(45), "no WDP started");
        std::thread::sleep(Duration::from_millis(100));
    };
    // While it proves (3 s), `sealing jobs` names the deadline, not a sector.
    let log = posts[victim].log();
    let deadline: u64 = log
        .split("running WDP for deadline ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{log}"));
    let jobs = repo.ok(&["sealing", "jobs"]);
    let row = jobs
        .lines()
        .find(|l| l.contains(" WDP "))
        .unwrap_or_else(|| panic!("{jobs}"));
    assert!(row.contains(&format!(" deadline {deadline} ")), "{jobs}");
    posts[victim].kill9();
    let other = &posts[1 - victim];
    let start = std::time::Instant::now();
    while repo.proven_deadlines() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{:?}\n{}",
            repo.deadlines(),
            d.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(other.log().contains("running WDP"), "{}", other.log());
    assert_eq!(repo.deadlines().missed, 0);
    drop((posts, d));
}

/// The storage ID of the path at `dir`, from its sectorstore.json.
fn storage_id(dir: &Path) -> String {
    let meta = std::fs::read_to_string(dir.join("sectorstore.json")).unwrap();
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    meta["ID"].as_str().unwrap().to_string()
}

/// The `CIDcommR` line of `sectors status`.
fn comm_r(repo: &Repo, n: u64) -> String {
    let out = repo.ok(&["sectors", "status", &n.to_string()]);
    common::field(&out, "CIDcommR:").to_string()
}

#[test]
fn sectors_pre_committed_on_a_worker_killed_with_kill_9_are_rebuilt_on_another() {
    let _one = serial();
    let (repo, d) = sealer_without_sealing("");
    let SeedPlan {
        mut a,
        b1,
        b2,
        b_seal: _b_seal,
    } = seeds_plan(&repo, &[]);
    std::thread::sleep(Duration::from_millis(2500)); // the sealer learns the new paths
    for _ in 1..=4 {
        repo.ok(&["sectors", "pledge"]);
    }
    repo.wait_states(&[1, 2, 3, 4], Duration::from_secs(120), |s| {
        s.iter().all(|s| s == "Proving")
    });
    // Sectors 5 and 6 seal on A alone and are pre-committed; their C1 waits (A takes none now).
    for t in ["PC1", "PC2"] {
        b1.cli(&["tasks", "disable", t]);
    }
    a.cli(&["tasks", "disable", "C1"]);
    std::thread::sleep(Duration::from_millis(500));
    repo.ok(&["sectors", "pledge"]);
    repo.ok(&["sectors", "pledge"]);
    repo.wait_states(&[5, 6], Duration::from_secs(60), |s| {
        s.iter().all(|s| s == "Committing")
    });
    let comm_rs = [comm_r(&repo, 5), comm_r(&repo, 6)];
    for n in [5, 6] {
        assert_eq!(ran_on(&repo, n, "PC2"), ["A"], "sector {n}");
    }
    let a_path = storage_id(&a.repo.path().join("local"));
    assert!(repo.ok(&["storage", "find", "5"]).contains(&a_path));
    a.kill9();

    // A is given up after 10 s: its path leaves the index with what only it held, the queued
    // C1s are withdrawn, and the sectors wait for a worker that can run PC1, saying so.
    let start = std::time::Instant::now();
    let diag = loop {
        let diag = repo.request::<api::methods::SealingSchedDiag>(());
        if diag.sectors_waiting.len() == 2 {
            break diag;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "{diag:?}\n{}",
            repo.ok(&["sectors", "status", "5", "--log"])
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for w in &diag.sectors_waiting {
        assert_eq!(w.state, api::SectorState::RebuildWait, "{diag:?}");
        assert!(
            w.why.contains("no connected, enabled worker runs PC1"),
            "{diag:?}"
        );
    }
    assert!(
        diag.queued
            .iter()
            .chain(&diag.unplaceable)
            .all(|j| j.task != "C1"),
        "{diag:?}"
    );
    let status = repo.ok(&["sectors", "status", "5"]);
    assert!(
        common::field(&status, "Waiting:").contains("runs PC1"),
        "{status}"
    );
    assert_eq!(
        repo.ok(&["storage", "find", "5"]).trim(),
        "sector 5: no files found"
    );
    assert!(!repo.ok(&["storage", "list"]).contains(&a_path));

    // A worker that can run PC1 and PC2 again: both sectors are rebuilt on B1 and go on.
    for t in ["PC1", "PC2"] {
        b1.cli(&["tasks", "enable", t]);
    }
    repo.wait_states(&[5, 6], Duration::from_secs(90), |s| {
        assert!(!s.iter().any(|s| s.contains("Failed")), "{s:?}");
        s.iter().all(|s| s == "Proving")
    });
    for (i, n) in [5u64, 6].into_iter().enumerate() {
        let log = repo.ok(&["sectors", "status", &n.to_string(), "--log"]);
        assert!(log.contains("rebuilt on B1 after A was lost"), "{log}");
        assert_eq!(ran_on(&repo, n, "PC1"), ["A", "B1"], "{log}");
        assert_eq!(ran_on(&repo, n, "PC2"), ["A", "B1"], "{log}");
        assert_eq!(ran_on(&repo, n, "C2"), ["B2"], "{log}");
        assert_eq!(comm_r(&repo, n), comm_rs[i], "{log}");
        // The loss spent no retry.
        assert!(!log.contains("retry 1 after"), "{log}");
    }
    assert_eq!(files_of(&repo.path().join("store")).len(), 2 * 6);
    assert!(!repo.ok(&["storage", "find", "5"]).contains(&a_path));
    drop((b1, b2, d));
}

#[test]
fn a_sector_to_rebuild_waits_for_a_worker_that_runs_pc1_and_goes_on_once_one_starts() {
    let _one = serial();
    let repo = Repo::init_without_sealing(false, |c| {
        c.chain.wpost_challenge_window = 3; // a 14.4 s proving period
    });
    let d = repo.start();
    repo.attach_store();
    let mut w = WorkerProc::start(&repo, "W", &[], &[]);
    repo.ok(&["sectors", "pledge"]);
    repo.wait_states(&[1], Duration::from_secs(60), |s| s[0] == "Proving");
    // A worker's path detached from the worker leaves the sealer's index too.
    let local = w.repo.path().join("local");
    let id = storage_id(&local);
    assert!(repo.ok(&["storage", "list"]).contains(&id));
    w.cli(&[
        "storage",
        "detach",
        "--really-do-it",
        local.to_str().unwrap(),
    ]);
    assert!(!repo.ok(&["storage", "list"]).contains(&id));
    w.kill9();
    let start = std::time::Instant::now();
    while repo.worker("W").is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "W is never given up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Its replica is gone from the sealer's store: WindowPoSt finds it unreadable, and the
    // sealer (which runs no PC1) has nobody to rebuild it.
    let store = repo.path().join("store");
    std::fs::remove_file(store.join("sealed").join("s-t01000-1")).unwrap();
    std::fs::remove_dir_all(store.join("cache").join("s-t01000-1")).unwrap();
    let start = std::time::Instant::now();
    let waiting = loop {
        let diag = repo.request::<api::methods::SealingSchedDiag>(());
        if let Some(w) = diag.sectors_waiting.first() {
            break w.clone();
        }
        // Its deadline's check, then the check again 30 s later.
        assert!(start.elapsed() < Duration::from_secs(80), "{diag:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        (waiting.sector, waiting.state),
        (1, api::SectorState::RebuildWait)
    );
    assert!(
        waiting
            .why
            .contains("no connected, enabled worker runs PC1"),
        "{waiting:?}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let status = repo.ok(&["sectors", "status", "1"]);
    assert_eq!(common::field(&status, "Status:"), "RebuildWait", "{status}");
    assert!(
        common::field(&status, "Waiting:").contains("runs PC1"),
        "{status}"
    );
    let w2 = WorkerProc::start(&repo, "W2", &[], &[]);
    repo.wait_states(&[1], Duration::from_secs(60), |s| s[0] == "Proving");
    let log = repo.ok(&["sectors", "status", "1", "--log"]);
    assert!(
        log.contains("rebuilt on W2 after WindowPoSt could not read it"),
        "{log}"
    );
    let start = std::time::Instant::now();
    loop {
        let v = repo.deadlines();
        if v.power.sectors == 1 && v.faults.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{v:?}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop((w2, d));
}

/// Sends `signal` (STOP, CONT) to a worker process.
fn signal(w: &WorkerProc, signal: &str) {
    let ok = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(w.child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{signal}");
}

#[test]
fn a_worker_back_from_an_outage_keeps_its_sectors_files_and_nothing_is_rebuilt() {
    let _one = serial();
    let (repo, d) = sealer_without_sealing("");
    let a = WorkerProc::start(&repo, "A", &[], &[]);
    a.cli(&["tasks", "disable", "C1"]);
    repo.ok(&["sectors", "pledge"]);
    repo.wait_states(&[1], Duration::from_secs(60), |s| s[0] == "Committing");
    // Frozen past the heartbeat's removal time: given up, its path leaves the index, and the
    // sector waits to be rebuilt (nobody else runs PC1).
    signal(&a, "STOP");
    let start = std::time::Instant::now();
    while repo.state(1) != "RebuildWait" {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "{}",
            repo.ok(&["sectors", "status", "1", "--log"])
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(repo.worker("A").is_none(), "{:?}", repo.workers());
    // Back: it registers again and declares its files; the sector goes on with them.
    signal(&a, "CONT");
    repo.wait_states(&[1], Duration::from_secs(30), |s| s[0] == "Committing");
    a.cli(&["tasks", "enable", "C1"]);
    repo.wait_states(&[1], Duration::from_secs(60), |s| s[0] == "Proving");
    let log = repo.ok(&["sectors", "status", "1", "--log"]);
    assert!(log.contains("[SectorFilesFound]"), "{log}");
    assert!(log.contains("its files are back on"), "{log}");
    assert!(!log.contains("[SectorRebuilt]"), "{log}");
    assert_eq!(ran_on(&repo, 1, "PC1"), ["A"], "{log}");
    assert_eq!(ran_on(&repo, 1, "C1"), ["A"], "{log}");
    drop((a, d));
}

#[test]
fn a_workers_path_that_cannot_be_read_shows_in_the_sealers_storage_list_through_its_beats() {
    let _one = serial();
    let (repo, d) = sealer_without_sealing("");
    let w = WorkerProc::start(&repo, "W", &[], &[]);
    let local = w.repo.path().join("local");
    let id = storage_id(&local);
    let listed = |repo: &Repo| {
        let out = repo.ok(&["storage", "list"]);
        let at = out
            .find(&id)
            .unwrap_or_else(|| panic!("{id} not listed: {out}\nworker: {}", w.log()));
        out[at..].split("\n\n").next().unwrap_or("").to_string()
    };
    let start = std::time::Instant::now();
    while !repo.ok(&["storage", "list"]).contains(&id) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "W's path never declared"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!listed(&repo).contains("Error:"), "{}", listed(&repo));
    // The disk goes away under the worker: its beats carry the error (every 10 s).
    std::fs::remove_dir_all(&local).unwrap();
    let start = std::time::Instant::now();
    while !listed(&repo).contains("Error:") {
        assert!(
            start.elapsed() < Duration::from_secs(25),
            "{}",
            listed(&repo)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    drop((w, d));
}
