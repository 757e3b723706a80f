//! Real proofs end to end: two 2KiB sectors pledged on the sealer, sealed by its in-process
//! worker with filecoin-proofs, pre-committed and prove-committed in batches that first wait
//! for the worker to be paid, verified by the local chain, reaching Proving and proven at their
//! WindowPoSt deadlines; then a lost replica rebuilt (real PC1 and PC2) byte for byte. Needs the
//! 2KiB parameters (`.ci/run` generates them once per machine).

use testkit as common;

use std::time::{Duration, Instant};

use api::methods as m;
use common::{field, Repo};

#[test]
fn real_2kib_sectors_are_batched_paid_for_proven_and_rebuilt() {
    let repo = Repo::init(true, |c| {
        c.chain.block_delay = "250ms".into();
        c.chain.pre_commit_challenge_delay = 5;
        // 16 s deadlines: each sector's first is 2 or 3 deadlines after its activation.
        c.chain.wpost_challenge_window = 64;
        // The worker starts with nothing: the batches wait for funds.
        c.chain.devnet_worker_funds = "0 FIL".into();
        let s = &mut c.sealing;
        (s.max_pre_commit_batch, s.max_commit_batch) = (2, 2);
        // Lotus's slacks are hours, more than this devnet's ticket lifetime (3780 epochs of
        // 250 ms): a batch would go at once.
        (s.pre_commit_batch_slack, s.commit_batch_slack) = ("10s".into(), "10s".into());
        s.batch_pre_commit_above_base_fee = "0 FIL".into();
        s.aggregate_above_base_fee = "0 FIL".into();
    });
    let d = repo.start();
    repo.attach_paths();
    let info = repo.ok(&["info"]);
    assert!(info.contains("Proof engine: real"), "{info}");
    let start = Instant::now();
    for n in 1..=2 {
        assert_eq!(
            repo.ok(&["sectors", "pledge"]).trim(),
            format!("Created CC sector: {n}")
        );
    }
    let status = |n: u64| repo.ok(&["sectors", "status", &n.to_string(), "--log"]);
    // Both wait in the pre-commit batch, which no address can pay for yet.
    let waited = Instant::now();
    let why = loop {
        let s = status(1);
        let why = field(&s, "Waiting:");
        if why.contains("pre-commit batch of 2 sectors (1, 2) needs") {
            break why;
        }
        assert!(!s.contains("Failed"), "{s}");
        assert!(waited.elapsed() < Duration::from_secs(600), "{s}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(why.contains("has 0 FIL"), "{why}");
    assert_eq!(field(&status(1), "Status:"), "SubmitPreCommitBatch");
    let worker = repo
        .request::<m::ActorControlList>(())
        .into_iter()
        .find(|r| r.name == "worker")
        .unwrap();
    repo.send_funds(&worker.id, "10");
    repo.wait_states(&[1, 2], Duration::from_secs(600), |s| {
        assert!(
            !s.iter().any(|x| x.contains("Failed")),
            "sector failed: {}",
            status(1)
        );
        s.iter().all(|x| x == "Proving")
    });
    eprintln!(
        "two real 2KiB sectors: pledge to Proving in {:.1} s (batched, after a wait for funds)",
        start.elapsed().as_secs_f64()
    );
    let (one, two) = (status(1), status(2));
    // One pre-commit and one prove-commit message carried both; no retry was spent.
    for f in ["Precommit:", "Commit:"] {
        assert_eq!(field(&one, f), field(&two, f), "{one}\n{two}");
    }
    for s in [&one, &two] {
        assert_eq!(field(s, "Retries:"), "0", "{s}");
        assert_eq!(s.matches("[SectorBatched]").count(), 2, "{s}");
        assert_eq!(s.matches("[SectorWaiting]").count(), 1, "{s}");
    }
    let status = repo.ok(&["sectors", "status", "1", "--log", "--on-chain-info"]);
    // A real 2KiB seal proof is 192 bytes (one Groth16 proof); the chain activated the sector.
    assert_eq!(field(&status, "Proof:"), "192 bytes", "{status}");
    assert!(
        field(&status, "Activation:").parse::<i64>().unwrap() > 0,
        "{status}"
    );
    assert!(status.contains("SectorProving"), "{status}");
    let info = repo.ok(&["info"]);
    assert!(info.contains("Power: 4 KiB / 4 KiB (2 sectors)"), "{info}");
    assert!(info.contains("Pledge:     0.1 FIL"), "{info}");

    // Real WindowPoSts of both sectors' deadlines, verified by the chain, none missed.
    let proving = Instant::now();
    loop {
        let v = repo.deadlines();
        assert_eq!((v.missed, v.faults.len()), (0, 0), "{v:#?}");
        if v.proofs_accepted >= 2 && repo.proven_deadlines() >= 2 {
            break;
        }
        assert!(proving.elapsed() < Duration::from_secs(300), "{v:#?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "both deadlines proven with real WindowPoSts {:.0} s after Proving",
        proving.elapsed().as_secs_f64()
    );

    // Its replica and cache are lost from the store; `sectors rebuild` makes them again from
    // the recorded ticket with real PC1 and PC2: the same bytes, and they prove.
    let store = repo.path().join("store");
    let sealed = store.join("sealed").join("s-t01000-1");
    let original = std::fs::read(&sealed).unwrap();
    std::fs::remove_file(&sealed).unwrap();
    std::fs::remove_dir_all(store.join("cache").join("s-t01000-1")).unwrap();
    let deadline = field(&status, "Deadline:");
    let check = repo.ok(&["proving", "check", &deadline]);
    assert!(check.contains("sector 1:"), "{check}");
    let start = Instant::now();
    repo.ok(&["sectors", "rebuild", "1", "--really-do-it"]);
    let log = || repo.ok(&["sectors", "status", "1", "--log"]);
    repo.wait_states(&[1], Duration::from_secs(300), |s| {
        assert!(!s[0].contains("Failed"), "{}", log());
        s[0] == "Proving" && log().contains("[SectorRebuilt]")
    });
    eprintln!("real 2KiB rebuild: {:.1} s", start.elapsed().as_secs_f64());
    assert!(log().contains("as its active sector on chain"), "{}", log());
    assert_eq!(
        std::fs::read(&sealed).unwrap(),
        original,
        "the same replica"
    );
    let check = repo.ok(&["proving", "check", &deadline]);
    assert!(check.contains("all can be proven"), "{check}");
    drop(d);
}
