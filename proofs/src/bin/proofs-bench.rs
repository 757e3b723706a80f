//! `proofs-bench [SIZE...]`: times each phase of one sector with the real engine, the baseline the
//! cluster's overhead is measured against. 2KiB and 8MiB: every phase (C2 and PoSt need that
//! size's parameters; phases without them are reported as skipped); 512MiB: AP, PC1, PC2.
//! Work happens under `BENCH_DIR` (default: the system temp dir).
//! `proofs-bench --pc1-sdr [SIZE] [ROUNDS]` compares PC1 with single-core and multicore SDR.
//! `proofs-bench --post-beside-c2 [SECONDS...]` times a 2KiB WindowPoSt alone and started
//! SECONDS into a C2, in the C2's process and in a child process.

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

/// An empty `dir` and its unsealed, sealed and cache paths.
fn sector_dir(dir: &Path) -> [std::path::PathBuf; 3] {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    ["unsealed", "sealed", "cache"].map(|n| dir.join(n))
}

fn run(size: SectorSize, root: &Path) -> Vec<(String, String)> {
    let e = RealEngine;
    let sector = SectorRef::new(1000, 1, size.seal_proof());
    let [u, s, c] = sector_dir(&root.join(size.name()));
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

/// CPU time (user + system) this process has used.
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct it is given and nothing else.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// `--pc1-child SIZE`: AP then one PC1 into a fresh directory, in the SDR mode this process's
/// environment sets; prints one `pc1 ...` line for the parent to read.
fn pc1_child(size: SectorSize, root: &Path) {
    let mode = proofs::SdrMode::current();
    let e = RealEngine;
    let sector = SectorRef::new(1000, 1, size.seal_proof());
    let dir = root.join(format!("pc1-{}-{}", size.name(), std::process::id()));
    let [u, s, c] = sector_dir(&dir);
    let paths = SealPaths {
        unsealed: &u,
        sealed: &s,
        cache: &c,
    };
    let cap = proofs::unpadded_capacity(&sector);
    let piece = e
        .add_piece(&sector, &u, &PieceData::Zeros, cap, &[])
        .unwrap();
    let (t, cpu) = (Instant::now(), cpu_time());
    let pc1 = e.pre_commit1(&sector, paths, &[3u8; 32], &[piece]).unwrap();
    let (wall, cpu) = (t.elapsed(), cpu_time() - cpu);
    // The replica both modes must agree on (PC2, untimed).
    let comm_r = e.pre_commit2(&sector, paths, &pc1).unwrap().comm_r;
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "pc1 wall_ms={} cpu_ms={} multicore={} producers={} comm_r={}",
        wall.as_millis(),
        cpu.as_millis(),
        mode.multicore,
        mode.producers,
        comm_r
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
}

/// Runs this binary as a child (`cmd`) and returns the line of its output that starts with
/// `prefix`.
fn child_line(mut cmd: std::process::Command, prefix: &str) -> String {
    let out = cmd.output().expect("running a proofs-bench child");
    assert!(out.status.success(), "child failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in {text}"))
        .to_string()
}

/// `--pc1-sdr SIZE [ROUNDS]`: PC1 with and without `FIL_PROOFS_USE_MULTICORE_SDR=1`, each in
/// its own child process (rust-fil-proofs reads the mode once per process), alternating for
/// ROUNDS rounds (default 3) after one warm-up that also builds the parent cache. Reports wall
/// and CPU time per run and the median ratio; a CPU/wall above 1 shows the producers working.
fn pc1_sdr(size: SectorSize, rounds: usize) {
    let me = std::env::current_exe().unwrap();
    let child = |multicore: bool| -> (u64, u64, String) {
        let mut cmd = std::process::Command::new(&me);
        cmd.args(["--pc1-child", &size.to_string()]).env(
            "FIL_PROOFS_USE_MULTICORE_SDR",
            if multicore { "1" } else { "0" },
        );
        let line = child_line(cmd, "pc1 ");
        let field = |k: &str| -> u64 {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(k))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{k} in {line}"))
        };
        let on = line.contains("multicore=true");
        assert_eq!(
            on, multicore,
            "the child ran in the SDR mode asked for: {line}"
        );
        (field("wall_ms="), field("cpu_ms="), line)
    };
    let comm_r = |line: &str| line.split("comm_r=").nth(1).unwrap_or("").to_string();
    let warm = child(false).2;
    println!("{size} PC1, warm-up (parent cache): {warm}");
    let want = comm_r(&warm);
    let mut runs: [Vec<(u64, u64)>; 2] = [Vec::new(), Vec::new()];
    for round in 1..=rounds {
        for multicore in [false, true] {
            let (wall, cpu, line) = child(multicore);
            println!("round {round}: {line}");
            assert_eq!(comm_r(&line), want, "both SDR modes make the same replica");
            runs[multicore as usize].push((wall, cpu));
        }
    }
    let median = |v: &mut Vec<(u64, u64)>| {
        v.sort();
        v[v.len() / 2]
    };
    let (single, multi) = (median(&mut runs[0]), median(&mut runs[1]));
    println!("\n| {size} PC1 | median wall | CPU time | CPU/wall |\n|---|---|---|---|");
    for (name, (w, c)) in [("single-core SDR", single), ("multicore SDR", multi)] {
        println!(
            "| {name} | {:.2} s | {:.2} s | {:.2} |",
            w as f64 / 1000.0,
            c as f64 / 1000.0,
            c as f64 / w as f64
        );
    }
    println!(
        "multicore / single-core wall time: {:.3}; every run's comm_r {want}",
        multi.0 as f64 / single.0 as f64
    );
}

/// A 2KiB sector sealed through C1 under `root`: what a WindowPoSt and a C2 need.
fn sealed_2kib(root: &Path) -> (PoStSector, proofs::PhaseOutput) {
    let sector = SectorRef::new(1000, 1, SectorSize::S2KiB.seal_proof());
    let dir = root.join("post-beside-c2");
    let _ = std::fs::remove_dir_all(&dir);
    let s = proofs::sealed::seal_cc_to_c1(&RealEngine, sector, &dir, [3u8; 32], [4u8; 32]).unwrap();
    (s.post, s.c1)
}

/// One 2KiB WindowPoSt over `ps`, verified; its wall time.
fn timed_wdp(ps: &PoStSector) -> Duration {
    let e = RealEngine;
    let rand = [5u8; 32];
    let t = Instant::now();
    let proof = e
        .generate_window_post(1000, &rand, std::slice::from_ref(ps))
        .unwrap();
    let d = t.elapsed();
    assert!(e
        .verify_window_post(1000, &rand, &[PublicSector::from(ps)], &proof)
        .unwrap());
    d
}

/// `--wdp-child SEALED CACHE COMM_R`: one timed WindowPoSt; prints `wdp wall_ms=N`.
fn wdp_child(args: &[String]) {
    let hex = &args[2];
    let mut comm_r = [0u8; 32];
    for (i, b) in comm_r.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("COMM_R hex");
    }
    let ps = PoStSector {
        sector: SectorRef::new(1000, 1, SectorSize::S2KiB.seal_proof()),
        comm_r,
        sealed: args[0].clone().into(),
        cache: args[1].clone().into(),
    };
    println!("wdp wall_ms={}", timed_wdp(&ps).as_millis());
}

/// `--post-beside-c2 [SECONDS...]`: a 2KiB WindowPoSt alone, then started SECONDS into a C2
/// (default 3, 20 and 35: synthesis, then the multiexps) while the C2 runs in this process (the
/// sealer's in-process worker), and in a child process while the C2 runs here (a PoSt worker
/// process beside a sealing one).
fn post_beside_c2(offsets: &[u64], root: &Path) {
    let (ps, c1) = sealed_2kib(root);
    let child = || -> Duration {
        let comm_r: String = ps.comm_r.iter().map(|b| format!("{b:02x}")).collect();
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.arg("--wdp-child")
            .arg(&ps.sealed)
            .arg(&ps.cache)
            .arg(comm_r);
        let line = child_line(cmd, "wdp wall_ms=");
        Duration::from_millis(line["wdp wall_ms=".len()..].trim().parse().unwrap())
    };
    // A WindowPoSt started `offset` into a C2; whether the C2 was still running when it ended.
    let beside_c2 = |offset: u64, f: &dyn Fn() -> Duration| -> (Duration, bool) {
        let c1 = c1.clone();
        let sector = ps.sector;
        let c2 = std::thread::spawn(move || RealEngine.commit2(&sector, &c1).unwrap());
        std::thread::sleep(Duration::from_secs(offset));
        let d = f();
        let overlapped = !c2.is_finished();
        c2.join().unwrap();
        (d, overlapped)
    };
    let alone = timed_wdp(&ps);
    println!("WindowPoSt alone: {}", fmt(alone));
    let mut rows = Vec::new();
    for &offset in offsets {
        let (same, a) = beside_c2(offset, &|| timed_wdp(&ps));
        let (other, b) = beside_c2(offset, &child);
        let note = |o: bool| if o { "" } else { " (the C2 ended first)" };
        println!(
            "{offset} s into a C2: same process {}{}, child process {}{}",
            fmt(same),
            note(a),
            fmt(other),
            note(b)
        );
        rows.push((offset, same, a, other, b));
    }
    let _ = std::fs::remove_dir_all(root);
    println!("\n| 2KiB WindowPoSt | same process as the C2 | child process |\n|---|---|---|");
    println!("| alone | {} | |", fmt(alone));
    for (offset, same, a, other, b) in rows {
        let mark = |o: bool| if o { "" } else { " *" };
        println!(
            "| started {offset} s into a C2 | {}{} | {}{} |",
            fmt(same),
            mark(a),
            fmt(other),
            mark(b)
        );
    }
    println!("(* the C2 ended before the WindowPoSt did)");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bench_root = || {
        std::env::var("BENCH_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| std::env::temp_dir())
            .join("proofs-bench")
    };
    let size_arg = |i: usize| -> SectorSize {
        args.get(i)
            .map(|a| a.parse().unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or(SectorSize::S8MiB)
    };
    match args.first().map(String::as_str) {
        Some("--pc1-child") => return pc1_child(size_arg(1), &bench_root()),
        Some("--wdp-child") => return wdp_child(&args[1..]),
        Some("--post-beside-c2") => {
            let mut offsets: Vec<u64> = args[1..]
                .iter()
                .map(|a| a.parse().expect("SECONDS"))
                .collect();
            if offsets.is_empty() {
                offsets = vec![3, 20, 35];
            }
            return post_beside_c2(&offsets, &bench_root());
        }
        Some("--pc1-sdr") => {
            let rounds = args.get(2).map_or(3, |r| r.parse().expect("ROUNDS"));
            return pc1_sdr(size_arg(1), rounds);
        }
        _ => {}
    }
    let sizes: Vec<SectorSize> = {
        if args.is_empty() {
            vec![SectorSize::S2KiB, SectorSize::S8MiB, SectorSize::S512MiB]
        } else {
            args.iter()
                .map(|a| a.parse().unwrap_or_else(|e| panic!("{e}")))
                .collect()
        }
    };
    let root = bench_root();
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
