//! Overhead on real work (issue #6): one real 2KiB sector sealed across the seeds' plan (a sealer
//! that seals nothing, worker A for AP/PC1/PC2/C1/FIN, worker B2 for C2, the finalized files moved
//! to the sealer's store over HTTP, the proof verified by the local chain), pledge to Proving,
//! next to the raw engine's own AP+PC1+PC2+C1+C2 on the same machine in the same run.
//!
//! `cargo build --workspace && cargo bench -p worker --bench overhead --profile dev`
//! (needs the 2KiB parameters: `cargo run -p proofs --bin fetch-params -- --generate 2KiB`).

use testkit as common;

use std::time::{Duration, Instant};

use common::{Repo, WorkerProc};
use proofs::{params, Engine, PieceData, RealEngine, SealPaths};
use resources::{SectorRef, SectorSize};

/// The raw engine, one phase after another, as a single-machine sealer with no scheduling would.
fn raw_engine() -> Vec<(&'static str, Duration)> {
    let e = RealEngine;
    let sector = SectorRef::new(1000, 1, SectorSize::S2KiB.seal_proof());
    let dir = tempfile::tempdir().unwrap();
    let (u, s, c) = (
        dir.path().join("unsealed"),
        dir.path().join("sealed"),
        dir.path().join("cache"),
    );
    let paths = SealPaths {
        unsealed: &u,
        sealed: &s,
        cache: &c,
    };
    let (ticket, seed) = ([3u8; 32], [4u8; 32]);
    let mut rows = Vec::new();
    let mut t = Instant::now();
    let mut lap = |rows: &mut Vec<(&'static str, Duration)>, name| {
        rows.push((name, t.elapsed()));
        t = Instant::now();
    };
    let cap = proofs::unpadded_capacity(&sector);
    let piece = e
        .add_piece(&sector, &u, &PieceData::Zeros, cap, &[])
        .unwrap();
    lap(&mut rows, "AP");
    let pc1 = e.pre_commit1(&sector, paths, &ticket, &[piece]).unwrap();
    lap(&mut rows, "PC1");
    let comms = e.pre_commit2(&sector, paths, &pc1).unwrap();
    lap(&mut rows, "PC2");
    let c1 = e
        .commit1(&sector, paths, &ticket, &seed, &comms, &[piece])
        .unwrap();
    lap(&mut rows, "C1");
    let proof = e.commit2(&sector, &c1).unwrap();
    lap(&mut rows, "C2");
    assert!(e
        .verify_seal(&sector, &comms, &ticket, &seed, &proof)
        .unwrap());
    rows
}

/// The cluster: pledge to Proving.
fn cluster() -> Duration {
    let repo = Repo::init_without_sealing(true, |c| {
        c.chain.block_delay = "50ms".into();
        c.chain.pre_commit_challenge_delay = 1;
    });
    let _d = repo.start();
    let store = repo.attach_store();
    let _a = WorkerProc::start(&repo, "A", &["--commit=false"], &[]);
    let _b2 = WorkerProc::start(&repo, "B2", &common::C2_ONLY, &[]);
    let start = Instant::now();
    repo.ok(&["sectors", "pledge"]);
    repo.wait_states(&[1], Duration::from_secs(900), |s| {
        assert!(
            !s[0].contains("Failed"),
            "{}",
            repo.ok(&["sectors", "status", "1", "--log"])
        );
        s[0] == "Proving"
    });
    let took = start.elapsed();
    let log = repo.ok(&["sectors", "status", "1", "--log"]);
    for want in ["PC1 on A", "C2 on B2"] {
        assert!(log.contains(want), "{want}: {log}");
    }
    assert!(store.join("sealed").join("s-t01000-1").exists());
    took
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let have = params::status(
        &params::cache_dir(),
        &params::official_manifest(),
        SectorSize::S2KiB,
    )
    .iter()
    .all(|(_, p)| *p);
    if !have {
        println!("overhead: skipped, the 2KiB parameters are missing");
        return;
    }
    let raw = raw_engine();
    let raw_total: Duration = raw.iter().map(|(_, d)| *d).sum();
    let phases: Vec<String> = raw
        .iter()
        .map(|(n, d)| format!("{n} {:.2} s", d.as_secs_f64()))
        .collect();
    let cl = cluster();
    println!("overhead: one real 2KiB sector");
    println!(
        "  raw engine AP+PC1+PC2+C1+C2: {:.1} s ({})",
        raw_total.as_secs_f64(),
        phases.join(", ")
    );
    println!(
        "  cluster (sealer + A + B2, 50 ms epochs, challenge delay 1), pledge to Proving: {:.1} s",
        cl.as_secs_f64()
    );
    println!(
        "  ratio: {:.3}x",
        cl.as_secs_f64() / raw_total.as_secs_f64()
    );
}
