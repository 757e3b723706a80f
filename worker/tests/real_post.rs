//! Real proofs, 2KiB: three sectors sealed by the sealer's own worker and activated, each in its
//! own deadline, then every deadline proven with a real WindowPoSt that the local chain
//! verifies, with no miss, by a PoSt worker on the sealer's store (shared storage), the way
//! lotus operators run them: the sealer's built-in prover stands aside while a PoSt worker can
//! do the job. Needs the 2KiB parameters (`.ci/run` makes them).

use testkit as common;

use std::time::{Duration, Instant};

use api::methods as m;
use common::{Repo, WorkerProc};

#[test]
fn three_real_sectors_are_proven_at_their_deadlines_without_a_miss() {
    let repo = Repo::init(true, |c| {
        c.chain.block_delay = "250ms".into();
        // 16 s deadlines (a 768 s proving period): a sector's first deadline opens while the
        // other sectors' C2s still hold both cores. A WindowPoSt started 20 s into a C2 took
        // 23.7 s in the C2's process (it waits for the C2's proof thread pools), 2.8 s in a
        // process of its own (BENCHMARKS.md, `proofs-bench --post-beside-c2`).
        c.chain.wpost_challenge_window = 64;
    });
    // Each call's queue wait and run time, for the failure message.
    let d = repo.start_env(&[("RUST_LOG", "info,sealer::manager=debug")]);
    let story = || {
        d.log_lines(&[
            "sealer::pipeline",
            "sealer::manager",
            "sealer::wdpost",
            "sealer::chain",
        ])
    };
    repo.attach_paths();
    let post = WorkerProc::start(
        &repo,
        "P",
        &["--windowpost", "--winningpost", "--no-local-storage"],
        &[],
    );
    post.cli(&[
        "storage",
        "attach",
        "--store",
        repo.path().join("store").to_str().unwrap(),
    ]);
    for _ in 0..3 {
        repo.ok(&["sectors", "pledge"]);
    }
    repo.wait_states(&[1, 2, 3], Duration::from_secs(900), |s| {
        assert!(
            !s.iter().any(|x| x.contains("Failed")),
            "{}",
            repo.ok(&["sectors", "status", "1", "--log"])
        );
        s.iter().all(|x| x == "Proving")
    });
    let start = Instant::now();
    loop {
        let v = repo.request::<m::StateMinerDeadlines>(());
        let why = || format!("{v:#?}\n{}\nPoSt worker:\n{}", story(), post.log());
        assert_eq!(v.missed, 0, "{}", why());
        // Three deadlines, one sector each, each proven by the scheduler (which records its run
        // once it has the receipt, a moment after the chain counted the proof).
        let proven = v
            .deadlines
            .iter()
            .filter(|d| d.last_run.as_ref().is_some_and(|r| r.outcome == "proven"))
            .count();
        if v.proofs_accepted >= 3 && proven >= 3 {
            assert_eq!((v.power.sectors, v.faults.len()), (3, 0), "{}", why());
            assert_eq!(proven, 3, "{}", why());
            eprintln!(
                "three real WindowPoSts verified {:.0} s after the sectors reached Proving",
                start.elapsed().as_secs_f64()
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "{}", why());
        std::thread::sleep(Duration::from_millis(500));
    }
    // Every WindowPoSt went to the PoSt worker. A check ahead of a deadline may not, nor may a
    // WinningPoSt: one that comes while a sector just activated still has its files on the seal
    // path (FIN and GET are moving them to the shared store) goes to the sealer's own worker,
    // the one that reaches them then (both seen on CI).
    let calls = d.log_lines(&["executing call=WDP"]);
    let proofs: Vec<&str> = calls.lines().filter(|l| !l.contains("(check)")).collect();
    assert!(
        proofs.len() >= 3 && proofs.iter().all(|l| l.contains("worker=P")),
        "{calls}"
    );
    eprintln!("{}", d.log_lines(&["WindowPoSt: deadline proven"]));
    drop((post, d));
}
