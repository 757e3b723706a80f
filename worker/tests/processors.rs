//! Processor children of the worker binary, driven directly: whatever a child does, the caller
//! gets a typed result, the child is reaped with nothing left behind, and the next child runs.
//! Children are pinned to the CPUs they are given and see the env they are given.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use processor::parent::Launch;
use processor::{Fault, Placement, Processors};
use proofs::{Crash, Engine, MockEngine, PieceData, ProofError};
use resources::topology::CpuSet;
use resources::{SealProof, SectorRef, TaskType};

fn launch(pid_dir: &Path) -> Launch {
    Launch {
        exe: env!("CARGO_BIN_EXE_worker").into(),
        args: vec!["processor".into()],
        pid_dir: Some(pid_dir.to_path_buf()),
    }
}

fn sector(n: u64) -> SectorRef {
    SectorRef {
        miner: 1000,
        number: n,
        proof: SealProof::StackedDrg2KiBV1_1,
    }
}

/// AP of sector `n` into `dir` through a child of `p` placed by `at`.
fn add_piece(
    p: &Arc<Processors>,
    at: Placement,
    dir: &Path,
    n: u64,
) -> (Result<proofs::PieceInfo, ProofError>, Vec<processor::Run>) {
    let e = p.engine(at);
    let s = sector(n);
    let r = e.add_piece(
        &s,
        &dir.join(format!("unsealed-{n}")),
        &PieceData::Zeros,
        proofs::unpadded_capacity(&s),
        &[],
    );
    (r, e.runs())
}

fn gone(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as i32, 0) != 0 }
}

#[test]
fn every_way_a_child_can_fail_is_a_typed_failure_and_the_next_child_runs() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    // One worker's processors per fault, and a deadline only where the fault is a hang: a slow
    // core dump or the OOM fault's gigabyte is not mistaken for one.
    let procs = |fault: Fault| {
        let mut p = Processors::mock(launch(&pids), MockEngine::default());
        if fault == Fault::Hang {
            p = p.with_timeout(TaskType::AddPiece, Duration::from_secs(3));
        }
        Arc::new(p.with_faults(vec![(TaskType::AddPiece, fault)]).unwrap())
    };
    for (name, fault) in processor::fault::FAULTS {
        let p = procs(fault);
        let t = Instant::now();
        let (r, runs) = add_piece(&p, Placement::default(), dir.path(), 1);
        let err = r.expect_err(name);
        let ProofError::Crashed { op, pid, crash } = &err else {
            panic!("{name}: {err:?}");
        };
        assert_eq!(op, "AP of sector 1", "{name}");
        let expected = match fault {
            Fault::Panic => matches!(crash, Crash::Panicked(m) if m.contains("mock fault")),
            Fault::Abort => {
                *crash
                    == Crash::Signalled {
                        signal: libc::SIGABRT,
                    }
            }
            Fault::Segfault => {
                *crash
                    == Crash::Signalled {
                        signal: libc::SIGSEGV,
                    }
            }
            Fault::Exit => *crash == Crash::Exited(3),
            Fault::Kill => {
                *crash
                    == Crash::Signalled {
                        signal: libc::SIGKILL,
                    }
            }
            Fault::Oom => *crash == Crash::OutOfMemory { bytes: 64 << 20 },
            Fault::Hang => *crash == Crash::TimedOut(3),
            Fault::Garbage => matches!(crash, Crash::Protocol(g) if g.contains("not the protocol")),
        };
        assert!(expected, "{name}: {err}");
        // Reaped, its group gone, its pid file removed, its peak memory measured.
        assert!(gone(*pid), "{name}: pid {pid} still there");
        assert_eq!(std::fs::read_dir(&pids).unwrap().count(), 0, "{name}");
        assert_eq!(runs.len(), 1, "{name}");
        assert!(runs[0].peak_rss > 0, "{name}: {:?}", runs[0]);
        if fault == Fault::Oom {
            assert!(runs[0].peak_rss > 256 << 20, "{name}: {:?}", runs[0]);
        }
        eprintln!("{name:>8}: {err} ({:.1} s)", t.elapsed().as_secs_f64());
        // The fault was taken once; the next child does its work.
        let (r, runs) = add_piece(&p, Placement::default(), dir.path(), 2);
        let piece = r.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(piece.size, proofs::unpadded_capacity(&sector(2)));
        assert!(gone(runs[0].pid));
    }
}

#[test]
fn children_run_on_the_cpus_they_are_given_with_the_env_they_are_given() {
    let dir = tempfile::tempdir().unwrap();
    let p = Arc::new(Processors::mock(
        launch(&dir.path().join("pids")),
        MockEngine::default().with_delay(TaskType::AddPiece, Duration::from_millis(700)),
    ));
    let mine = processor::affinity::current().unwrap();
    let cpus: Vec<u32> = mine.0.iter().copied().take(2).collect();
    // Two children at once, one per CPU (the same CPU twice on a one-CPU machine).
    let sets: Vec<CpuSet> = [cpus[0], *cpus.last().unwrap()]
        .iter()
        .map(|c| CpuSet::from_iter([*c]))
        .collect();
    let both = Instant::now();
    let runs: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = sets
            .iter()
            .enumerate()
            .map(|(i, set)| {
                let p = p.clone();
                let at = Placement {
                    cpus: Some(set.clone()),
                    env: vec![("RAYON_NUM_THREADS".into(), "1".into())],
                    numa: Some(0),
                };
                let d = dir.path();
                s.spawn(move || add_piece(&p, at, d, i as u64 + 1))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for ((r, run), set) in runs.iter().zip(&sets) {
        r.as_ref().unwrap();
        assert_eq!(&run[0].cpus, set, "{run:?}");
        assert!(
            run[0]
                .env
                .contains(&("RAYON_NUM_THREADS".into(), "1".into())),
            "{run:?}"
        );
    }
    // Both ran at once: each took its 700 ms, the two together well under 1.4 s.
    let spans: Vec<u64> = runs.iter().map(|(_, r)| r[0].wall_ms).collect();
    assert!(spans.iter().all(|ms| *ms >= 700), "{spans:?}");
    assert!(
        both.elapsed() < Duration::from_millis(1300),
        "{:?}",
        both.elapsed()
    );
    // A set outside the machine is refused by the kernel before the child runs.
    let (r, _) = add_piece(
        &p,
        Placement {
            cpus: Some("1023".parse().unwrap()),
            ..Placement::default()
        },
        dir.path(),
        9,
    );
    match r {
        Err(ProofError::Crashed {
            crash: Crash::Start(why),
            ..
        }) => assert!(why.contains("on CPUs 1023"), "{why}"),
        other => panic!("{other:?}"),
    }
}
