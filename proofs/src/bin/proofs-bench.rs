//! `proofs-bench [SIZE...]`: times each phase of one sector with the real engine, the baseline the
//! cluster's overhead is measured against. 2KiB and 8MiB: every phase (C2 and PoSt need that
//! size's parameters; phases without them are reported as skipped); 512MiB: AP, PC1, PC2.
//! Work happens under `BENCH_DIR` (default: the system temp dir).

use std::path::Path;
use std::time::{Duration, Instant};

use proofs::{
    params, Engine, PieceData, PoStSector, PublicSector, RealEngine, SealPaths, SealedCommitments,
};
use resources::{SectorRef, SectorSize};

fn time<T>(rows: &mut Vec<(String, String)>, name: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    let d = t.elapsed();
    println!("  {name:<16} {}", fmt(d));
    rows.push((name.to_string(), fmt(d)));
    out
}

fn fmt(d: Duration) -> String {
    if d.as_secs() >= 10 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{:.0} ms", d.as_secs_f64() * 1000.0)
    }
}

fn run(size: SectorSize, root: &Path) -> Vec<(String, String)> {
    let e = RealEngine;
    let sector = SectorRef::new(1000, 1, size.seal_proof());
    let dir = root.join(size.name());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (u, s, c) = (dir.join("unsealed"), dir.join("sealed"), dir.join("cache"));
    let paths = SealPaths {
        unsealed: &u,
        sealed: &s,
        cache: &c,
    };
    let ticket = [3u8; 32];
    let mut rows = Vec::new();
    println!("{size}:");
    let cap = proofs::unpadded_capacity(&sector);
    let piece = time(&mut rows, "AP", || {
        e.add_piece(&sector, &u, &PieceData::Zeros, cap, &[])
            .unwrap()
    });
    let pc1 = time(&mut rows, "PC1", || {
        e.pre_commit1(&sector, paths, &ticket, &[piece]).unwrap()
    });
    let comms: SealedCommitments = time(&mut rows, "PC2", || {
        e.pre_commit2(&sector, paths, &pc1).unwrap()
    });
    if size == SectorSize::S512MiB {
        return rows;
    }
    let have = params::status(&params::cache_dir(), &params::official_manifest(), size)
        .iter()
        .all(|(_, p)| *p);
    let seed = [4u8; 32];
    let c1 = time(&mut rows, "C1", || {
        e.commit1(&sector, paths, &ticket, &seed, &comms, &[piece])
            .unwrap()
    });
    if !have {
        println!("  C2, verify, PoSt: skipped, {size} parameters are missing");
        rows.push(("C2".into(), "skipped (no parameters)".into()));
        return rows;
    }
    let proof = time(&mut rows, "C2", || e.commit2(&sector, &c1).unwrap());
    let ok = time(&mut rows, "verify seal", || {
        e.verify_seal(&sector, &comms, &ticket, &seed, &proof)
            .unwrap()
    });
    assert!(ok, "the seal proof verifies");
    time(&mut rows, "FIN", || e.finalize(&sector, &c).unwrap());
    let ps = PoStSector {
        sector,
        comm_r: comms.comm_r,
        sealed: s.clone(),
        cache: c.clone(),
    };
    let rand = [5u8; 32];
    let wdp = time(&mut rows, "WindowPoSt", || {
        e.generate_window_post(1000, &rand, std::slice::from_ref(&ps))
            .unwrap()
    });
    let ok = time(&mut rows, "verify WDP", || {
        e.verify_window_post(1000, &rand, &[PublicSector::from(&ps)], &wdp)
            .unwrap()
    });
    assert!(ok, "the WindowPoSt verifies");
    let wnp = time(&mut rows, "WinningPoSt", || {
        e.generate_winning_post(1000, &rand, std::slice::from_ref(&ps))
            .unwrap()
    });
    assert!(e
        .verify_winning_post(1000, &rand, &[PublicSector::from(&ps)], &wnp)
        .unwrap());
    rows
}

fn main() {
    let sizes: Vec<SectorSize> = {
        let args: Vec<String> = std::env::args().skip(1).collect();
        if args.is_empty() {
            vec![SectorSize::S2KiB, SectorSize::S8MiB, SectorSize::S512MiB]
        } else {
            args.iter()
                .map(|a| a.parse().unwrap_or_else(|e| panic!("{e}")))
                .collect()
        }
    };
    let root = std::env::var("BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir());
    let root = root.join("proofs-bench");
    let mut table = Vec::new();
    for size in sizes {
        table.push((size, run(size, &root)));
    }
    let _ = std::fs::remove_dir_all(&root);
    println!("\n| size | phase | time |\n|---|---|---|");
    for (size, rows) in table {
        for (phase, t) in rows {
            println!("| {size} | {phase} | {t} |");
        }
    }
}
