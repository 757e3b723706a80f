//! Real proofs end to end: one 2KiB sector pledged on the sealer, sealed by its in-process worker
//! with filecoin-proofs, its prove-commit verified by the local chain, reaching Proving; then its
//! lost replica rebuilt (real PC1 and PC2) byte for byte. Needs the 2KiB parameters (`.ci/run`
//! generates them once per machine).

use testkit as common;

use std::time::{Duration, Instant};

use common::{field, Repo};

#[test]
fn real_2kib_sector_is_sealed_verified_by_the_chain_and_proving() {
    let repo = Repo::init(true, |c| {
        c.chain.block_delay = "200ms".into();
        c.chain.pre_commit_challenge_delay = 5;
    });
    let d = repo.start();
    repo.attach_paths();
    let info = repo.ok(&["info"]);
    assert!(info.contains("Proof engine: real"), "{info}");
    let start = Instant::now();
    assert_eq!(
        repo.ok(&["sectors", "pledge"]).trim(),
        "Created CC sector: 1"
    );
    repo.wait_states(&[1], Duration::from_secs(600), |s| {
        assert!(
            !s[0].contains("Failed"),
            "sector failed: {}",
            repo.ok(&["sectors", "status", "1", "--log"])
        );
        s[0] == "Proving"
    });
    eprintln!(
        "real 2KiB sector: pledge to Proving in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let status = repo.ok(&["sectors", "status", "1", "--log", "--on-chain-info"]);
    // A real 2KiB seal proof is 192 bytes (one Groth16 proof); the chain activated the sector.
    assert_eq!(field(&status, "Proof:"), "192 bytes", "{status}");
    assert!(
        field(&status, "Activation:").parse::<i64>().unwrap() > 0,
        "{status}"
    );
    assert!(status.contains("SectorProving"), "{status}");
    let info = repo.ok(&["info"]);
    assert!(info.contains("Power: 2 KiB / 2 KiB (1 sectors)"), "{info}");
    assert!(info.contains("Pledge:     0.05 FIL"), "{info}");

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
