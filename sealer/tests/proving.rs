//! WindowPoSt on the local chain with the mock engine: deadlines proven, a removed sealed file
//! found by `proving check`, declared faulty ahead of its deadline (power drops), then recovered
//! once the file is back (power returns); WinningPoSts answer elections.

use testkit as common;

use std::time::{Duration, Instant};

use api::methods as m;
use api::{DeadlineRow, ProvingDeadlines};
use common::Repo;

/// One sealer at a time: the deadlines here are fractions of a second long.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn deadlines(repo: &Repo) -> ProvingDeadlines {
    repo.request::<m::StateMinerDeadlines>(())
}

/// Deadlines holding sectors.
fn with_sectors(v: &ProvingDeadlines) -> Vec<&DeadlineRow> {
    v.deadlines
        .iter()
        .filter(|d| d.partitions.iter().any(|p| !p.sectors.is_empty()))
        .collect()
}

fn power_sectors(repo: &Repo) -> u64 {
    repo.request::<m::StateMinerPower>(()).sectors
}

fn wait(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts the sealer with its paths and seals sectors 1 and 2 to Proving.
fn two_sectors_proving(repo: &Repo) -> common::Daemon {
    let d = repo.start();
    repo.attach_paths();
    repo.ok(&["sectors", "pledge"]);
    repo.ok(&["sectors", "pledge"]);
    repo.wait_states(&[1, 2], Duration::from_secs(60), |s| {
        s.iter().all(|x| x == "Proving")
    });
    d
}

#[test]
fn deadlines_are_proven_a_lost_file_is_declared_faulty_and_recovers() {
    let _one = serial();
    let repo = Repo::init(false, |c| {
        c.chain.wpost_challenge_window = 3; // 48 x 3 epochs x 100 ms: a 14.4 s proving period
        c.chain.other_network_power = "0".into(); // elected every epoch
        c.sealing.rebuild_lost_sectors = false; // the file comes back by itself here
    });
    let d = two_sectors_proving(&repo);
    assert_eq!(power_sectors(&repo), 2);
    // Both sectors' deadlines get proven within a proving period.
    let proven = |d: &DeadlineRow| d.last_run.as_ref().is_some_and(|r| r.outcome == "proven");
    wait(Duration::from_secs(40), "both deadlines proven", || {
        let v = deadlines(&repo);
        let ds = with_sectors(&v);
        !ds.is_empty() && ds.iter().all(|d| proven(d))
    });
    let v = deadlines(&repo);
    let ds = with_sectors(&v);
    // The metrics say so too (#18): a WindowPoSt duration per proven deadline, the proofs.
    let m = repo.metrics();
    for d in &ds {
        let key = format!(
            r#"sealer_wdpost_duration_seconds_count{{deadline="{}"}}"#,
            d.index
        );
        assert!(m.get(&key).is_some_and(|n| *n >= 1.0), "{key} in {m:#?}");
    }
    wait(
        Duration::from_secs(15),
        "the proofs in the metrics (read every 5 s)",
        || {
            let m = repo.metrics();
            m.get("sealer_wdpost_proofs_total")
                .is_some_and(|n| *n >= ds.len() as f64)
                && m.get("sealer_wdpost_faulty_sectors") == Some(&0.0)
        },
    );
    // Which deadline holds sector 1: the one `proving check` names it in.
    let sealed = repo.path().join("store").join("sealed").join("s-t01000-1");
    assert!(sealed.exists());
    let moved = repo.path().join("s-t01000-1.away");
    std::fs::rename(&sealed, &moved).unwrap();
    let mut dl1 = None;
    for d in &ds {
        let i = d.index;
        // The CLI's own output is what this checks.
        let out = repo.ok(&["proving", "check", &i.to_string()]);
        if out.contains("sector 1:") {
            dl1 = Some(i);
        } else {
            assert!(out.contains("all can be proven"), "{out}");
        }
    }
    let dl1 = dl1.expect("proving check names sector 1");
    // Declared faulty ahead of its deadline: power drops by one sector; the other still proven.
    wait(Duration::from_secs(40), "sector 1 faulty", || {
        let v = deadlines(&repo);
        v.faults == [1]
            && v.deadlines[dl1 as usize]
                .partitions
                .iter()
                .any(|p| p.faults == [1])
    });
    let faults = repo.ok(&["proving", "faults"]);
    assert!(
        faults
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == [dl1.to_string().as_str(), "0", "1"]),
        "{faults}"
    );
    assert_eq!(power_sectors(&repo), 1);
    assert!(d.log().contains("declaring faults"), "{}", d.log());
    wait(Duration::from_secs(15), "the fault in the metrics", || {
        repo.metrics().get("sealer_wdpost_faulty_sectors") == Some(&1.0)
    });
    // Checked again 30 s later, still unreadable: no rebuild while it is off.
    wait(
        Duration::from_secs(50),
        "the rebuild-is-off warning",
        || d.log().contains("the automatic rebuild is off"),
    );
    // The file is back: recovered at a following deadline, power returns.
    std::fs::rename(&moved, &sealed).unwrap();
    wait(Duration::from_secs(60), "power back", || {
        power_sectors(&repo) == 2
    });
    assert!(d.log().contains("declaring recoveries"), "{}", d.log());
    let v = deadlines(&repo);
    assert!(v.faults.is_empty(), "{v:?}");
    // With no other power on the devnet the miner is elected every epoch; its WinningPoSts
    // (mock) land in time and count as blocks won.
    assert!(v.blocks_won > 0, "{v:?}");
    wait(
        Duration::from_secs(15),
        "the recovery and the wins in the metrics",
        || {
            let m = repo.metrics();
            m.get("sealer_wdpost_faulty_sectors") == Some(&0.0)
                && m["sealer_wnpost_wins_total"] >= v.blocks_won as f64
                && m["sealer_wnpost_elections_total"] >= m["sealer_wnpost_wins_total"]
        },
    );
    drop(d);
    // The declarations as a Lotus client no one here wrote reads them back from the node:
    // iso-filecoin recomputes their CIDs from the node's JSON.
    let Some(vectors) = common::vectors_dir() else {
        return;
    };
    let db = db::Db::open(&repo.path().join("datastore")).unwrap();
    let declared: Vec<String> = chain::devnet::stored_messages(&db)
        .unwrap()
        .iter()
        .filter(|m| matches!(m.message.method_num, 10 | 11))
        .map(|m| m.cid().to_string())
        .collect();
    drop(db);
    let _d = repo.start();
    let v = common::third_party_read(&vectors, &repo, &[1, 2], &declared);
    let mut methods: Vec<u64> = declared
        .iter()
        .map(|c| v["messages"][c.as_str()]["method"].as_u64().unwrap())
        .collect();
    methods.sort_unstable();
    methods.dedup();
    assert_eq!(methods, [10, 11], "{v}");
}

/// The deadline index and last opening ("<outcome> at <epoch>") of every deadline holding
/// sectors: a new opening changes it even when the outcome is the same.
fn proven_runs(repo: &Repo) -> Vec<(u64, String)> {
    with_sectors(&deadlines(repo))
        .iter()
        .map(|d| {
            let last = d
                .last_run
                .as_ref()
                .map(|r| format!("{} at {}", r.outcome, r.open));
            (d.index, last.unwrap_or_default())
        })
        .collect()
}

fn running(repo: &Repo, task: &str) -> bool {
    repo.request::<m::WorkerJobs>(())
        .iter()
        .any(|j| j.task.short() == task && j.state == "running")
}

#[test]
fn a_window_post_does_not_wait_for_a_c2_holding_the_machine() {
    let _one = serial();
    let repo = Repo::init(false, |c| {
        c.chain.wpost_challenge_window = 3;
        c.proofs.mock_delays = "C2=20s".into();
    });
    // C2 takes every thread of this machine, for 20 s; WDP needs a thread too.
    let cpus = std::thread::available_parallelism()
        .unwrap()
        .get()
        .to_string();
    let d = repo.start_env(&[("C2_2K_MAX_PARALLELISM", &cpus)]);
    repo.attach_paths();
    repo.ok(&["sectors", "pledge"]);
    repo.wait_states(&[1], Duration::from_secs(60), |s| s[0] == "Proving");
    repo.ok(&["sectors", "pledge"]);
    wait(Duration::from_secs(20), "sector 2's C2 running", || {
        running(&repo, "C2")
    });
    let before = proven_runs(&repo);
    // Within one proving period (14.4 s) sector 1's deadline opens and is proven while the C2
    // still holds the machine.
    wait(Duration::from_secs(18), "a WindowPoSt during C2", || {
        proven_runs(&repo) != before
            && proven_runs(&repo)
                .iter()
                .all(|(_, l)| l.starts_with("proven"))
    });
    assert!(running(&repo, "C2"), "{}", repo.ok(&["sealing", "jobs"]));
    drop(d);
}

#[test]
fn a_sealer_killed_while_proving_proves_the_deadline_after_restart() {
    let _one = serial();
    let repo = Repo::init(false, |c| {
        c.chain.wpost_challenge_window = 40; // 4 s deadlines
        c.proofs.mock_delays = "WDP=1s".into();
    });
    let mut d = repo.start();
    repo.attach_paths();
    repo.ok(&["sectors", "pledge"]);
    repo.wait_states(&[1], Duration::from_secs(60), |s| s[0] == "Proving");
    // Wait for the WindowPoSt to be running, then kill the sealer in the middle of it.
    wait(Duration::from_secs(120), "a WDP running", || {
        running(&repo, "WDP")
    });
    let dl = proven_runs(&repo)[0].0;
    d.kill9();
    let d = repo.start();
    // The restarted sealer proves the deadline it was proving (the embedded chain stood still
    // while it was down); the chain records no miss.
    wait(
        Duration::from_secs(10),
        "the deadline proven after the restart",
        || {
            proven_runs(&repo)
                .iter()
                .any(|(i, l)| *i == dl && l.starts_with("proven"))
        },
    );
    assert_eq!(deadlines(&repo).missed, 0);
    assert_eq!(power_sectors(&repo), 1);
    drop(d);
}

/// Waits until sector `n`'s log has `count` rebuilds and it is Proving again.
fn wait_rebuilt(repo: &Repo, n: u64, count: usize, d: &common::Daemon) {
    wait(Duration::from_secs(90), "the rebuild", || {
        let log = repo.ok(&["sectors", "status", &n.to_string(), "--log"]);
        assert!(!log.contains("Failed"), "{log}\n{}", d.log());
        log.matches("[SectorRebuilt]").count() == count && repo.state(n) == "Proving"
    });
}

#[test]
fn a_proving_sector_whose_files_are_deleted_or_whose_path_is_detached_is_rebuilt_and_recovers() {
    let _one = serial();
    let repo = Repo::init(false, |c| {
        c.chain.wpost_challenge_window = 3; // a 14.4 s proving period
    });
    let d = two_sectors_proving(&repo);
    wait(Duration::from_secs(30), "power", || {
        power_sectors(&repo) == 2
    });
    let store = repo.path().join("store");
    let sealed = store.join("sealed").join("s-t01000-1");
    let original = std::fs::read(&sealed).unwrap();
    std::fs::remove_file(&sealed).unwrap();
    std::fs::remove_dir_all(store.join("cache").join("s-t01000-1")).unwrap();

    // Found unreadable ahead of its deadline: declared faulty and rebuilt by itself, then
    // declared recovered once it reads again; power comes back.
    wait(Duration::from_secs(40), "sector 1 faulty", || {
        deadlines(&repo).faults == [1]
    });
    wait_rebuilt(&repo, 1, 1, &d);
    wait(Duration::from_secs(60), "power back", || {
        power_sectors(&repo) == 2 && deadlines(&repo).faults.is_empty()
    });
    assert!(d.log().contains("declaring recoveries"), "{}", d.log());
    let log = repo.ok(&["sectors", "status", "1", "--log"]);
    assert!(log.contains("WindowPoSt could not read it"), "{log}");
    assert!(log.contains("as its active sector on chain"), "{log}");
    for step in ["PC1 on ", "PC2 on", "FIN on", "GET on"] {
        assert_eq!(log.matches(step).count(), 2, "{step}: {log}");
    }
    assert_eq!(
        log.matches("AP on ").count(),
        1,
        "no AP for a rebuild: {log}"
    );
    assert_eq!(
        std::fs::read(&sealed).unwrap(),
        original,
        "the same replica"
    );
    assert!(store.join("cache").join("s-t01000-1").is_dir());

    // The store path is detached with both sectors on it: they are rebuilt onto another one.
    let store2 = repo.path().join("store2");
    std::fs::create_dir_all(&store2).unwrap();
    repo.ok(&[
        "storage",
        "attach",
        "--init",
        "--store",
        store2.to_str().unwrap(),
    ]);
    let refused = repo.cli(&["storage", "detach", store.to_str().unwrap()]);
    assert!(!refused.status.success());
    repo.ok(&[
        "storage",
        "detach",
        "--really-do-it",
        store.to_str().unwrap(),
    ]);
    let listed = repo.ok(&["storage", "list"]);
    assert!(
        !listed
            .lines()
            .any(|l| l.trim() == format!("Local: {}", store.display())),
        "{listed}"
    );
    wait_rebuilt(&repo, 1, 2, &d);
    wait_rebuilt(&repo, 2, 1, &d);
    for n in [1, 2] {
        let name = format!("s-t01000-{n}");
        assert!(store2.join("sealed").join(&name).is_file(), "sector {n}");
        let found = repo.ok(&["storage", "find", &n.to_string()]);
        assert!(found.contains(store2.to_str().unwrap()), "{found}");
        assert!(!found.contains(&format!("{}/", store.display())), "{found}");
    }
    assert_eq!(
        std::fs::read(store2.join("sealed").join("s-t01000-1")).unwrap(),
        original
    );
    wait(
        Duration::from_secs(60),
        "power back after the detach",
        || power_sectors(&repo) == 2 && deadlines(&repo).faults.is_empty(),
    );
    assert_eq!(deadlines(&repo).missed, 0);
    drop(d);
}
