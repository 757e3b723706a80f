//! Real proofs across machines: one 2KiB sector with PC1/PC2 on worker A, C2 on worker B2 from
//! the C1 output, the finalized files moved from A to the sealer's store over HTTP, and the
//! proof verified by the local chain. Needs the 2KiB parameters (`.ci/run` makes them).

use testkit as common;

use std::time::{Duration, Instant};

use common::{Repo, WorkerProc};

#[test]
fn real_2kib_sector_sealed_across_workers_is_verified_by_the_chain() {
    let repo = Repo::init_without_sealing(true, |c| {
        c.chain.block_delay = "200ms".into();
    });
    let d = repo.start();
    let store = repo.attach_store();
    // A labels with multicore SDR (one producer thread on these 2 cores), as seeds 000 and 001
    // set it on every PC1 worker; B2 is left single-core.
    let a = WorkerProc::start(
        &repo,
        "A",
        &["--commit=false"],
        &[
            ("FIL_PROOFS_USE_MULTICORE_SDR", "1"),
            ("FIL_PROOFS_MULTICORE_SDR_PRODUCERS", "1"),
        ],
    );
    let b2 = WorkerProc::start(&repo, "B2", &common::C2_ONLY, &[]);
    let sdr = |w: &WorkerProc| common::field(&w.cli(&["info"]), "PC1 SDR:");
    assert!(
        sdr(&a).starts_with("multicore (1 producer thread + 1"),
        "{}",
        sdr(&a)
    );
    assert!(sdr(&b2).starts_with("single-core"), "{}", sdr(&b2));
    assert!(
        repo.ok(&["info"])
            .contains("PC1 SDR (in-process worker): single-core"),
        "{}",
        repo.ok(&["info"])
    );
    let start = Instant::now();
    repo.ok(&["sectors", "pledge"]);
    repo.wait_states(&[1], Duration::from_secs(600), |s| {
        assert!(
            !s[0].contains("Failed"),
            "{}",
            repo.ok(&["sectors", "status", "1", "--log"])
        );
        s[0] == "Proving"
    });
    eprintln!(
        "real 2KiB sector across workers: pledge to Proving in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let log = repo.ok(&["sectors", "status", "1", "--log", "--on-chain-info"]);
    for want in [
        "AP on A",
        "PC1 on A",
        "PC2 on A",
        "C2 on B2",
        "Proof:\t\t192 bytes",
    ] {
        assert!(log.contains(want), "{want}: {log}");
    }
    // Every proof step ran in a processor child of its worker, which reported its pid, CPUs and
    // peak memory: "PC1 on A (pid 123 on CPUs 0-1, peak RSS 40 MiB)".
    for step in [
        "AP on A (pid ",
        "PC1 on A (pid ",
        "PC2 on A (pid ",
        "C2 on B2 (pid ",
    ] {
        let at = log.find(step).unwrap_or_else(|| panic!("{step}: {log}"));
        let note = &log[at..log[at..].find(')').map_or(log.len(), |e| at + e)];
        assert!(
            note.contains(" on CPUs ") && note.contains("peak RSS"),
            "{note}"
        );
    }
    assert!(
        common::field(&log, "Activation:").parse::<i64>().unwrap() > 0,
        "{log}"
    );
    assert!(store.join("sealed").join("s-t01000-1").exists());
    assert!(!a
        .repo
        .path()
        .join("local")
        .join("sealed")
        .join("s-t01000-1")
        .exists());
    assert!(repo
        .ok(&["info"])
        .contains("Power: 2 KiB / 2 KiB (1 sectors)"));
    // rust-fil-proofs' own log line: A's PC1 really took the multicore labelling path.
    let log = a.log();
    assert!(log.contains("multi core replication"), "{log}");
    assert!(!log.contains("single core replication"), "{log}");
    drop((a, b2, d));
}
