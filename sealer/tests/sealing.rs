//! The sealer daemon end to end with the mock engine: pledges reach Proving with complete event
//! logs, jobs show while running, MaxSealingSectors, and kill -9 restarts.

use testkit as common;

use std::time::Duration;

use common::{field, stderr, Repo};

const ORDER: [&str; 12] = [
    "Packing",
    "GetTicket",
    "PreCommit1",
    "PreCommit2",
    "PreCommitting",
    "PreCommitWait",
    "WaitSeed",
    "Committing",
    "SubmitCommit",
    "CommitWait",
    "FinalizeSector",
    "Proving",
];

/// The states a sector's event log went through, in order, without repeats.
fn logged_states(repo: &Repo, n: u64) -> Vec<String> {
    let out = repo.ok(&["sectors", "status", &n.to_string(), "--log"]);
    let mut states: Vec<String> = Vec::new();
    for l in out
        .lines()
        .skip_while(|l| !l.starts_with("Event Log:"))
        .skip(1)
    {
        let state = l.split('\t').nth(3).unwrap_or_default().to_string();
        if states.last() != Some(&state) {
            states.push(state);
        }
    }
    states
}

#[test]
fn five_pledged_sectors_reach_proving_and_a_sixth_is_refused() {
    let repo = Repo::init(false, |c| {
        c.sealing.max_sealing_sectors = 5;
        c.proofs.mock_delays = "AP=200ms,PC1=400ms,PC2=400ms,C2=400ms".into();
    });
    let d = repo.start();
    repo.attach_paths();
    let info = repo.ok(&["info"]);
    assert!(info.contains("mock -- NOT REAL PROOFS"), "{info}");

    let mut numbers = Vec::new();
    for i in 1..=5u64 {
        let out = repo.ok(&["sectors", "pledge"]);
        assert_eq!(out.trim(), format!("Created CC sector: {i}"));
        numbers.push(i);
    }
    let sixth = repo.cli(&["sectors", "pledge"]);
    assert!(!sixth.status.success());
    assert!(
        stderr(&sixth).contains("too many sectors sealing (curSealing: 5, max: 5)"),
        "{}",
        stderr(&sixth)
    );

    // Jobs show while tasks run.
    let mut seen_running = false;
    for _ in 0..100 {
        let jobs = repo.ok(&["sealing", "jobs"]);
        assert!(jobs.starts_with("ID"), "{jobs}");
        if jobs.lines().skip(1).any(|l| l.contains("running")) {
            assert!(jobs.contains("Hostname") && jobs.contains("Task"), "{jobs}");
            seen_running = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(seen_running, "sealing jobs never showed a running task");
    let workers = repo.ok(&["sealing", "workers"]);
    assert!(
        workers.contains("CPU:") && workers.contains("RAM:") && workers.contains("VMEM:"),
        "{workers}"
    );

    repo.wait_states(&numbers, Duration::from_secs(120), |s| {
        s.iter().all(|s| s == "Proving")
    });
    for n in &numbers {
        assert_eq!(logged_states(&repo, *n), ORDER, "sector {n}");
        let status = repo.ok(&["sectors", "status", &n.to_string()]);
        assert_ne!(field(&status, "CIDcommR:"), "<nil>");
    }
    let list = repo.ok(&["sectors", "list"]);
    // Committed for CommittedCapacitySectorLifetime (540 days), as the chain holds it.
    assert_eq!(
        list.lines()
            .filter(|l| l.contains("Proving") && l.contains("(in 540 days)"))
            .count(),
        5,
        "{list}"
    );
    // The epoch the expirations were read at comes with them (the CLI asks no `ChainHead`).
    let page = repo.request::<api::methods::SectorsListPage>((Vec::new(), 0, 0, Some(true)));
    let head = repo.request::<api::methods::ChainHead>(()).height;
    assert!(
        page.head.is_some_and(|h| h > 0 && h <= head),
        "{:?} at head {head}",
        page.head
    );
    let page = repo.request::<api::methods::SectorsListPage>((Vec::new(), 0, 0, None));
    assert_eq!(page.head, None, "no expirations asked for, no head");
    // One call, filtered by state and paged (#19); --fast asks the chain nothing.
    let fast = repo.ok(&[
        "sectors",
        "list",
        "--states",
        "Proving,PreCommit1",
        "--fast",
        "--offset",
        "1",
        "--limit",
        "2",
    ]);
    let rows: Vec<&str> = fast
        .lines()
        .skip(1)
        .filter(|l| l.contains("Proving"))
        .collect();
    assert_eq!(rows.len(), 2, "{fast}");
    assert!(
        rows[0].starts_with(&format!("{} ", numbers[1])),
        "the second matching sector first: {fast}"
    );
    assert!(rows.iter().all(|l| l.contains("(--fast)")), "{fast}");
    assert!(fast.contains("(2 of 5 sectors)"), "{fast}");
    let none = repo.ok(&["sectors", "list", "--states", "PreCommit1"]);
    assert_eq!(none.lines().count(), 1, "only the header: {none}");
    let bad = repo.cli(&["sectors", "list", "--states", "PreCommit9"]);
    assert!(
        !bad.status.success() && common::stderr(&bad).contains("PreCommit9"),
        "{}",
        common::stderr(&bad)
    );
    let info = repo.ok(&["info"]);
    assert!(info.contains("(5 sectors)"), "{info}");
    // Each sector's pledge (0.05 FIL on the devnet) is locked in the miner actor; the worker
    // (100 FIL at genesis) sent the deposits and pledge as the messages' value, and paid gas.
    for line in [
        "Pledge:     0.25 FIL",
        "PreCommit:  0 FIL",
        "Available:  0 FIL",
    ] {
        assert!(info.contains(line), "{line:?} not in {info}");
    }
    assert!(
        info.contains("Worker Balance:   99.7") && info.contains("(t0100, t3"),
        "{info}"
    );
    // No [Addresses] lists: the worker (also the genesis miner's owner) sends everything.
    let ctl = repo.ok(&["actor", "control", "list"]);
    let worker = ctl
        .lines()
        .find(|l| l.starts_with("worker"))
        .unwrap_or_default();
    assert!(
        worker.contains("t0100")
            && worker.contains("precommit commit post")
            && worker.ends_with("yes"),
        "{ctl}"
    );
    // Finalized files are on the store path.
    let found = repo.ok(&["storage", "find", "1"]);
    assert!(
        found.contains("Store: true") && !found.contains("unsealed"),
        "{found}"
    );
    let storage = repo.ok(&["storage", "list"]);
    assert!(storage.contains("Sealed: 5; Caches: 5"), "{storage}");
    // With the five Proving, a new pledge is accepted.
    assert_eq!(
        repo.ok(&["sectors", "pledge"]).trim(),
        "Created CC sector: 6"
    );
    drop(d);
}

#[test]
fn kill9_during_pc2_and_waitseed_loses_nothing() {
    let repo = Repo::init(false, |c| {
        c.chain.pre_commit_challenge_delay = 40;
        c.proofs.mock_delays = "PC2=3s".into();
    });
    let mut d = repo.start();
    repo.attach_paths();
    assert_eq!(
        repo.ok(&["sectors", "pledge"]).trim(),
        "Created CC sector: 1"
    );
    repo.wait_states(&[1], Duration::from_secs(30), |s| s[0] == "WaitSeed");
    assert_eq!(
        repo.ok(&["sectors", "pledge"]).trim(),
        "Created CC sector: 2"
    );
    repo.wait_states(&[1, 2], Duration::from_secs(30), |s| s[1] == "PreCommit2");
    std::thread::sleep(Duration::from_millis(500));
    let states = repo.wait_states(&[1, 2], Duration::from_secs(1), |_| true);
    assert_eq!(states, ["WaitSeed", "PreCommit2"]);
    d.kill9();

    let d = repo.start();
    repo.wait_states(&[1, 2], Duration::from_secs(60), |s| {
        s.iter().all(|s| s == "Proving")
    });
    let list = repo.ok(&["sectors", "list"]);
    let ids: Vec<&str> = list
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(ids, ["1", "2"], "{list}");
    // The interrupted PC2 ran again from PC1; the event log says so.
    let log2 = repo.ok(&["sectors", "status", "2", "--log"]);
    assert!(log2.contains("SectorRestart"), "{log2}");
    assert!(repo.ok(&["info"]).contains("(2 sectors)"));
    assert_eq!(
        repo.ok(&["sectors", "pledge"]).trim(),
        "Created CC sector: 3"
    );
    drop(d);
}

#[test]
fn an_aborted_job_fails_its_step_and_the_sector_retries_to_proving() {
    let repo = Repo::init(false, |c| {
        c.proofs.mock_delays = "PC1=2s".into();
    });
    let d = repo.start();
    repo.attach_paths();
    repo.ok(&["sectors", "pledge"]);
    let start = std::time::Instant::now();
    let job = loop {
        let jobs = repo.ok(&["sealing", "jobs"]);
        if let Some(l) = jobs
            .lines()
            .find(|l| l.contains("PC1") && l.contains("running"))
        {
            break l.split_whitespace().next().unwrap().to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "PC1 never ran: {jobs}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let diag = repo.ok(&["sealing", "sched-diag"]);
    assert!(diag.contains("\"Unplaceable\": []"), "{diag}");
    assert_eq!(
        repo.ok(&["sealing", "abort", &job]).trim(),
        format!("Aborted job {job}")
    );
    repo.wait_states(&[1], Duration::from_secs(5), |s| {
        s[0] == "SealPreCommit1Failed"
    });
    let status = repo.ok(&["sectors", "status", "1"]);
    assert!(
        field(&status, "Last Error:").contains("aborted by the operator [aborted]"),
        "{status}"
    );
    repo.wait_states(&[1], Duration::from_secs(30), |s| s[0] == "Proving");
    let log = repo.ok(&["sectors", "status", "1", "--log"]);
    assert!(log.contains("SectorRetry"), "{log}");
    drop(d);
}

#[test]
fn a_proof_that_does_not_verify_is_computed_again_before_any_message() {
    let repo = Repo::init(false, |c| {
        c.proofs.mock_corrupt_proofs = 1;
    });
    let d = repo.start();
    repo.attach_paths();
    repo.ok(&["sectors", "pledge"]);
    repo.wait_states(&[1], Duration::from_secs(60), |s| s[0] == "Proving");
    let log = repo.ok(&["sectors", "status", "1", "--log"]);
    let failed: Vec<&str> = log.lines().filter(|l| l.contains("SectorFailed")).collect();
    assert_eq!(failed.len(), 1, "{log}");
    assert!(
        failed[0].contains("ComputeProofFailed")
            && failed[0].contains("does not verify [proof invalid]"),
        "{log}"
    );
    // C1 and C2 ran again; only the good proof went to the chain.
    assert_eq!(log.matches("SectorCommit1").count(), 2, "{log}");
    assert_eq!(log.matches("SectorCommitSubmitted").count(), 1, "{log}");
    let status = repo.ok(&["sectors", "status", "1"]);
    assert!(
        field(&status, "Last Error:").contains("[proof invalid]"),
        "{status}"
    );
    drop(d);
}

#[test]
fn batch_queues_are_listed_and_flushed_from_the_cli_and_survive_a_kill9() {
    let repo = Repo::init(false, |c| {
        let s = &mut c.sealing;
        s.batch_pre_commit_above_base_fee = "0 FIL".into();
        s.aggregate_above_base_fee = "0 FIL".into();
        (s.pre_commit_batch_wait, s.commit_batch_wait) = ("1h".into(), "1h".into());
        (s.pre_commit_batch_slack, s.commit_batch_slack) = ("0s".into(), "0s".into());
    });
    let mut d = repo.start();
    repo.attach_paths();
    for _ in 0..2 {
        repo.ok(&["sectors", "pledge"]);
    }
    let listed = |kind: &str| {
        let start = std::time::Instant::now();
        loop {
            let out = repo.ok(&["sectors", "batching", kind]);
            let mut queued: Vec<&str> = out
                .lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().next())
                .collect();
            // Listed in the order they joined, which the two reach in either order.
            queued.sort_unstable();
            if queued == ["1", "2"] {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "{out}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    listed("precommit");
    let states = repo.wait_states(&[1, 2], Duration::from_secs(1), |_| true);
    assert_eq!(states, ["SubmitPreCommitBatch", "SubmitPreCommitBatch"]);
    // The queue is the sectors' state: a restart puts them back in it.
    d.kill9();
    let d = repo.start();
    listed("precommit");
    let out = repo.ok(&["sectors", "batching", "precommit", "--publish-now"]);
    assert!(
        out.contains("pre-commit batch of 2 sector(s) [1, 2] sent in bafy")
            && out.contains("flushed by the operator"),
        "{out}"
    );
    listed("commit");
    let out = repo.ok(&["sectors", "batching", "commit", "--publish-now"]);
    assert!(
        out.contains("prove-commit batch of 2 sector(s) [1, 2] sent in bafy"),
        "{out}"
    );
    repo.wait_states(&[1, 2], Duration::from_secs(30), |s| {
        s.iter().all(|s| s == "Proving")
    });
    for kind in ["precommit", "commit"] {
        let out = repo.ok(&["sectors", "batching", kind]);
        assert_eq!(out.trim(), "No sectors queued to be batched");
    }
    let log = repo.ok(&["sectors", "status", "1", "--log"]);
    assert_eq!(log.matches("[SectorBatched]").count(), 2, "{log}");
    assert_eq!(field(&log, "Retries:"), "0", "{log}");
    drop(d);
}

#[test]
fn a_proving_sector_is_extended_then_terminated_and_its_files_removed() {
    let repo = Repo::init(false, |c| {
        // 2 s deadlines: a termination waits at most two of them for its deadline to be free.
        c.chain.wpost_challenge_window = 20;
    });
    let d = repo.start();
    repo.attach_paths();
    repo.ok(&["sectors", "pledge"]);
    repo.wait_states(&[1], Duration::from_secs(30), |s| s[0] == "Proving");
    let on_chain = || repo.ok(&["sectors", "status", "1", "--on-chain-info"]);
    let before: i64 = field(&on_chain(), "Expiration:").parse().unwrap();
    // `sectors list` shows the chain's expiration (the pre-commit's, kept since the seed).
    let listed = || {
        let out = repo.ok(&["sectors", "list"]);
        let row = out
            .lines()
            .find(|l| l.starts_with("1 "))
            .unwrap_or("")
            .to_string();
        row.split_whitespace().nth(4).unwrap_or("").to_string()
    };
    assert_eq!(listed(), before.to_string());

    // Not later, or too far: refused before anything is sent, naming the sector and the limit.
    let e = repo.cli(&[
        "sectors",
        "extend",
        "--new-expiration",
        &before.to_string(),
        "1",
    ]);
    assert!(!e.status.success());
    assert!(
        stderr(&e).contains(&format!("sector 1: new expiration {before} is not after")),
        "{}",
        stderr(&e)
    );
    let e = repo.cli(&["sectors", "extend", "--extension", "4000000", "1"]);
    assert!(
        stderr(&e).contains("MaxSectorExpirationExtension"),
        "{}",
        stderr(&e)
    );
    let out = repo.ok(&["sectors", "extend", "--extension", "2880", "1"]);
    assert!(
        out.contains(&format!(
            "sector 1: expiration {before} -> {}",
            before + 2880
        )),
        "{out}"
    );
    let start = std::time::Instant::now();
    while field(&on_chain(), "Expiration:") != (before + 2880).to_string() {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", on_chain());
        std::thread::sleep(Duration::from_millis(200));
    }
    // The list reads a sector being extended again at every call until it surely landed.
    assert_eq!(listed(), (before + 2880).to_string());

    let no = repo.cli(&["sectors", "terminate", "1"]);
    assert!(!no.status.success() && stderr(&no).contains("--really-do-it"));
    repo.ok(&["sectors", "terminate", "--really-do-it", "1"]);
    repo.wait_states(&[1], Duration::from_secs(60), |s| s[0] == "Removed");
    let log = repo.ok(&["sectors", "status", "1", "--log"]);
    for kind in [
        "[SectorTerminate]",
        "[SectorTerminating]",
        "[SectorTerminated]",
        "[SectorRemoved]",
    ] {
        assert!(log.contains(kind), "{kind} not in {log}");
    }
    let info = repo.ok(&["info"]);
    assert!(info.contains("(0 sectors)"), "{info}");
    assert!(info.contains("Pledge:     0 FIL"), "{info}");
    let sealed = repo.path().join("store").join("sealed").join("s-t01000-1");
    assert!(!sealed.exists(), "{sealed:?} not removed");
    drop(d);
}
