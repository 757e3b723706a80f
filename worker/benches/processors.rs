//! What a processor child costs (issue #17), real engine, in one run on one machine:
//!
//! - `c2`: a 2KiB sector sealed up to C1 in this process, then C2 and WindowPoSt in this process
//!   and in a `worker processor` child, twice each, interleaved. A child loads the Groth parameters
//!   again each time (the page cache keeps the file); the second in-process run has them in
//!   memory already. If a child's second C2 cost more than 10% over the in-process second C2, a
//!   long-lived child per task type would be worth it.
//! - `pc1 [ROUNDS]`: 8MiB PC1 in a child pinned to the first two CPUs, single-core SDR against
//!   multicore SDR with one producer (a unit of 2 cores, as the scheduler places it), alternating.
//!
//! `cargo build --workspace && cargo bench -p worker --bench processors --profile dev -- c2`
//! (C2 needs the 2KiB parameters; PC1 needs none).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use processor::parent::Launch;
use processor::{Placement, Processors};
use proofs::{Engine, PieceData, RealEngine, SealPaths};
use resources::topology::{CpuSet, Place};
use resources::{SectorRef, SectorSize, TaskType};

fn procs(dir: &Path) -> Arc<Processors> {
    Arc::new(Processors::real(Launch {
        exe: env!("CARGO_BIN_EXE_worker").into(),
        args: vec!["processor".into()],
        pid_dir: Some(dir.join("pids")),
    }))
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed())
}

fn c2() {
    let dir = tempfile::tempdir().unwrap();
    let e = RealEngine;
    let sector = SectorRef::new(1000, 1, SectorSize::S2KiB.seal_proof());
    let sealed =
        proofs::sealed::seal_cc_to_c1(&e, sector, &dir.path().join("s"), [3; 32], [4; 32]).unwrap();
    e.finalize(&sector, &sealed.post.cache).unwrap();
    let (comms, ticket, seed, c1) = (sealed.comms, sealed.ticket, sealed.seed, &sealed.c1);
    let post = [sealed.post.clone()];
    let r = [7u8; 32];
    let p = procs(dir.path());
    let child = p.engine(Placement::default());
    let mut rows: Vec<(&str, Duration)> = Vec::new();
    // Interleaved, so that the machine's drift falls on both alike.
    for round in ["1st", "2nd"] {
        for (name, eng) in [
            ("in process", &e as &dyn Engine),
            ("child", &child as &dyn Engine),
        ] {
            let (proof, t) = time(|| eng.commit2(&sector, c1).unwrap());
            assert!(e
                .verify_seal(&sector, &comms, &ticket, &seed, &proof)
                .unwrap());
            rows.push((leak(format!("C2 {name}, {round}")), t));
            let (_, t) = time(|| eng.generate_window_post(1000, &r, &post).unwrap());
            rows.push((leak(format!("WindowPoSt {name}, {round}")), t));
        }
    }
    println!("| run | wall |\n|---|---|");
    for (n, t) in &rows {
        println!("| {n} | {} |", secs(*t));
    }
    let get = |n: &str| rows.iter().find(|(m, _)| *m == n).unwrap().1.as_secs_f64();
    println!(
        "\nC2 child/in-process, 2nd runs: {:.3}x; WindowPoSt: {:.3}x",
        get("C2 child, 2nd") / get("C2 in process, 2nd"),
        get("WindowPoSt child, 2nd") / get("WindowPoSt in process, 2nd")
    );
    for r in child.runs() {
        println!(
            "child {}: pid {}, CPUs {}, peak RSS {} MiB, {} ms",
            r.op,
            r.pid,
            r.cpus,
            r.peak_rss >> 20,
            r.wall_ms
        );
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn pc1(rounds: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mine = processor::affinity::current().unwrap();
    let unit: CpuSet = mine.0.iter().copied().take(2).collect();
    let p = procs(dir.path());
    let sector = SectorRef::new(1000, 1, SectorSize::S8MiB.seal_proof());
    let cap = proofs::unpadded_capacity(&sector);
    let e = RealEngine;
    let ticket = [5u8; 32];
    // Three ways, alternating after a warm-up that builds the 8MiB parent cache: in this process
    // (single-core: this process does not set FIL_PROOFS_USE_MULTICORE_SDR), and in a pinned
    // child with single-core and with multicore SDR.
    let ways = [
        "in process, single-core",
        "child, single-core",
        "child, multicore 1 producer",
    ];
    let mut times: Vec<(usize, Duration, u64)> = Vec::new();
    for i in 0..=3 * rounds {
        let way = if i == 0 { 1 } else { (i - 1) % 3 };
        let d = dir.path().join(format!("s{i}"));
        std::fs::create_dir_all(&d).unwrap();
        let (u, s, c) = (d.join("unsealed"), d.join("sealed"), d.join("cache"));
        let piece = e
            .add_piece(&sector, &u, &PieceData::Zeros, cap, &[])
            .unwrap();
        let paths = SealPaths {
            unsealed: &u,
            sealed: &s,
            cache: &c,
        };
        let (t, peak) = if way == 0 {
            let (_, t) = time(|| e.pre_commit1(&sector, paths, &ticket, &[piece]).unwrap());
            (t, 0)
        } else {
            let multicore = way == 2;
            let mut at = Placement::of(
                TaskType::PreCommit1,
                Some(Place {
                    cpus: unit.clone(),
                    gpu: None,
                }),
                None,
            );
            at.env.push((
                "FIL_PROOFS_USE_MULTICORE_SDR".into(),
                if multicore { "1" } else { "0" }.into(),
            ));
            if multicore {
                at.env
                    .push(("FIL_PROOFS_MULTICORE_SDR_PRODUCERS".into(), "1".into()));
            }
            let child = p.engine(at);
            let (_, t) = time(|| {
                child
                    .pre_commit1(&sector, paths, &ticket, &[piece])
                    .unwrap()
            });
            let run = child.runs().pop().unwrap();
            assert_eq!(run.cpus, unit, "the child ran where it was pinned");
            (t, run.peak_rss)
        };
        if i > 0 {
            times.push((way, t, peak));
        }
        std::fs::remove_dir_all(&d).unwrap();
    }
    println!("8MiB PC1, child pinned to CPUs {unit}, {rounds} rounds:\n");
    println!("| PC1 | median wall | runs | child's peak RSS |\n|---|---|---|---|");
    let mut med = Vec::new();
    for (w, name) in ways.iter().enumerate() {
        let mut v: Vec<&(usize, Duration, u64)> = times.iter().filter(|x| x.0 == w).collect();
        v.sort_by_key(|x| x.1);
        let mid = v[v.len() / 2];
        med.push(mid.1.as_secs_f64());
        let all: Vec<String> = v
            .iter()
            .map(|x| format!("{:.2}", x.1.as_secs_f64()))
            .collect();
        let rss = if w == 0 {
            "-".to_string()
        } else {
            format!("{} MiB", mid.2 >> 20)
        };
        println!("| {name} | {} | {} | {rss} |", secs(mid.1), all.join(", "));
    }
    println!(
        "\nchild/in-process (single-core): {:.3}; multicore/single-core (children): {:.3}",
        med[1] / med[0],
        med[2] / med[1]
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("pc1") => pc1(args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3)),
        Some("c2") | None => c2(),
        Some(other) => panic!("unknown mode {other:?}: c2 or pc1 [ROUNDS]"),
    }
}
