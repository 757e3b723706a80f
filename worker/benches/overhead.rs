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

/// The cluster: pledge to Proving (`real`: real proofs; otherwise the mock engine, which
/// leaves the cluster's own time alone).
fn cluster(real: bool) -> Duration {
    let repo = Repo::init_without_sealing(real, |c| {
        // 250 ms epochs: the devnet chain at 50 ms (20 tipsets a second) took 14% of a core in
        // a dev build with nothing sealing, CPU the C2 then lacked (issue #17, BENCHMARKS.md).
        c.chain.block_delay = "250ms".into();
        c.chain.pre_commit_challenge_delay = 1;
    });
    let _d = repo.start();
    let store = repo.attach_store();
    let _a = WorkerProc::start(&repo, "A", &["--commit=false"], &[]);
    let _b2 = WorkerProc::start(&repo, "B2", &common::C2_ONLY, &[]);
    repo.ok(&["sectors", "pledge"]);
    // Polled once a second: polling every 100 ms took 4% of a core (a dev-build client per
    // poll) from the C2 it measures. The time is the sector's own log's, pledge to Proving.
    let start = Instant::now();
    loop {
        let state = repo.state(1);
        assert!(
            !state.contains("Failed"),
            "{}",
            repo.ok(&["sectors", "status", "1", "--log"])
        );
        if state == "Proving" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(900), "still {state}");
        std::thread::sleep(Duration::from_secs(1));
    }
    let log = repo.ok(&["sectors", "status", "1", "--log"]);
    if std::env::var_os("OVERHEAD_LOG").is_some() {
        println!("{log}");
    }
    for want in ["PC1 on A", "C2 on B2"] {
        assert!(log.contains(want), "{want}: {log}");
    }
    let took = logged_span(&log, "[SectorStartCC]", "\tProving\t");
    assert!(store.join("sealed").join("s-t01000-1").exists());
    took
}

/// The time between the log's first event whose line holds `from` and its last holding `to`
/// (`N.\t2026-12-06 20:04:24.794:\t[Event]\tState\t...`).
fn logged_span(log: &str, from: &str, to: &str) -> Duration {
    let at = |needle: &str, last: bool| -> f64 {
        let mut lines = log.lines().filter(|l| l.contains(needle));
        let line = if last {
            lines.next_back()
        } else {
            lines.next()
        };
        let line = line.unwrap_or_else(|| panic!("no {needle:?} in {log}"));
        let time = line.split('\t').nth(1).expect("a timestamp");
        let clock = time
            .trim_end_matches(':')
            .split(' ')
            .nth(1)
            .expect("a time");
        let mut parts = clock
            .split(':')
            .map(|x| x.parse::<f64>().expect("a number"));
        let (h, m, s) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        h * 3600.0 + m * 60.0 + s
    };
    let mut span = at(to, true) - at(from, false);
    if span < 0.0 {
        span += 86400.0; // past midnight
    }
    Duration::from_secs_f64(span)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if std::env::args().any(|a| a == "mock") {
        // The cluster's own time: every proof instant.
        let t = cluster(false);
        println!(
            "overhead, mock engine: pledge to Proving in {:.2} s",
            t.as_secs_f64()
        );
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
    // Rounds of raw engine then cluster, so that the machine's drift (C2 alone varied 53-66 s
    // within minutes here) falls on both alike; the ratio is of the medians.
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    println!("overhead: one real 2KiB sector, {rounds} rounds");
    let (mut raws, mut cls) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let raw = raw_engine();
        let raw_total: Duration = raw.iter().map(|(_, d)| *d).sum();
        let phases: Vec<String> = raw
            .iter()
            .map(|(n, d)| format!("{n} {:.2} s", d.as_secs_f64()))
            .collect();
        let cl = cluster(true);
        println!(
            "  round {round}: raw engine AP+PC1+PC2+C1+C2 {:.1} s ({}); cluster (sealer + A + B2, \
             250 ms epochs, challenge delay 1), pledge to Proving {:.1} s",
            raw_total.as_secs_f64(),
            phases.join(", "),
            cl.as_secs_f64()
        );
        raws.push(raw_total.as_secs_f64());
        cls.push(cl.as_secs_f64());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (r, c) = (median(&mut raws), median(&mut cls));
    println!(
        "  medians: raw {r:.1} s, cluster {c:.1} s; ratio {:.3}x",
        c / r
    );
}
