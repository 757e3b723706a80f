//! The child's side (`worker processor`, `sealer processor`): say hello on fd 3, read the
//! request, run it with the engine it names, send the result, exit.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::panic::AssertUnwindSafe;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use proofs::{Engine, EngineKind, MockEngine, ProofError, RealEngine};

use crate::wire::{EngineSpec, Hello, Op, Output, Request, ToWorker};

/// The fd the protocol runs on.
pub const FD: i32 = 3;

/// Variables a child reports in its hello: those the proofs read.
pub fn proof_env() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("FIL_PROOFS_")
                || k.starts_with("BELLMAN_")
                || k == "RAYON_NUM_THREADS"
                || k == "CUDA_VISIBLE_DEVICES"
        })
        .collect();
    v.sort();
    v
}

/// Runs the child and exits: 0 once the result is sent, 2 when the protocol could not be
/// followed (said on stderr), 101 after a panic (reported on the pipe).
pub fn serve() -> ! {
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        );
    // PC1's layer messages are read at info whatever RUST_LOG says.
    let layers = crate::progress::Watch {
        send: |p| {
            let _ = send_shared(&ToWorker::Progress(p));
        },
    }
    .with_filter(
        tracing_subscriber::filter::Targets::new()
            .with_target("storage_proofs_porep", tracing::Level::INFO)
            .with_target("proofs", tracing::Level::INFO),
    );
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(layers)
        .try_init();
    match run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("processor: {e}");
            std::process::exit(2)
        }
    }
}

/// The pipe to the worker, for whoever reports (progress from the proofs' threads).
static PIPE: OnceLock<Mutex<UnixStream>> = OnceLock::new();

/// Sends `m` on the shared pipe, one line at a time.
fn send_shared(m: &ToWorker) -> Result<(), String> {
    let pipe = PIPE.get().ok_or("the pipe is not open yet")?;
    let mut g = pipe.lock().unwrap_or_else(|e| e.into_inner());
    send(&mut *g, m)
}

fn send(pipe: &mut impl Write, m: &ToWorker) -> Result<(), String> {
    let mut line = serde_json::to_vec(m).map_err(|e| e.to_string())?;
    line.push(b'\n');
    pipe.write_all(&line)
        .and_then(|_| pipe.flush())
        .map_err(|e| format!("writing to the worker: {e}"))
}

fn run() -> Result<i32, String> {
    // SAFETY: F_GETFD only asks whether the descriptor is open.
    if unsafe { libc::fcntl(FD, libc::F_GETFD) } < 0 {
        return Err(format!(
            "a processor is started by a worker, with its protocol on fd {FD}, which is not open"
        ));
    }
    // Not inherited by anything the proofs start: the worker's EOF must mean this process.
    // SAFETY: plain fcntl on an open descriptor.
    unsafe { libc::fcntl(FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: fd 3 is open (checked) and this process owns it from here on.
    let sock = unsafe { UnixStream::from_raw_fd(FD) };
    crate::alloc::report_on(FD);
    let out = sock.try_clone().map_err(|e| e.to_string())?;
    let mut fault_pipe = out.try_clone().map_err(|e| e.to_string())?;
    let _ = PIPE.set(Mutex::new(out));
    let hello = Hello {
        pid: std::process::id(),
        affinity: crate::affinity::current().map_err(|e| format!("sched_getaffinity: {e}"))?,
        env: proof_env(),
    };
    send_shared(&ToWorker::Hello(hello))?;
    let mut line = String::new();
    BufReader::new(&sock)
        .read_line(&mut line)
        .map_err(|e| format!("reading the request: {e}"))?;
    let req: Request =
        serde_json::from_str(&line).map_err(|e| format!("unreadable request: {e}"))?;
    if let Op::PreCommit1 { sector, .. } = &req.op {
        crate::progress::pc1(resources::progress::sdr_layers(sector.proof.sector_size()));
    }
    let engine = build(&req.engine);
    let fault = req.fault;
    let done = std::panic::catch_unwind(AssertUnwindSafe(move || {
        if let Some(f) = fault {
            f.commit(&mut fault_pipe);
        }
        execute(&*engine, req.op)
    }));
    match done {
        Ok(r) => {
            send_shared(&ToWorker::Result(r.map_err(|e| (&e).into())))?;
            Ok(0)
        }
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            send_shared(&ToWorker::Panicked(msg))?;
            Ok(101)
        }
    }
}

fn build(spec: &EngineSpec) -> Box<dyn Engine> {
    match spec.kind {
        EngineKind::Real => Box::new(RealEngine),
        EngineKind::Mock => {
            let mut m = MockEngine::default().with_corrupt_proofs(u32::from(spec.corrupt));
            for (t, d) in &spec.delays {
                m = m.with_delay(*t, *d);
            }
            Box::new(m)
        }
    }
}

/// Runs `op` on `e` in this process.
pub fn execute(e: &dyn Engine, op: Op) -> Result<Output, ProofError> {
    Ok(match op {
        Op::AddPiece {
            sector,
            unsealed,
            data,
            size,
            existing,
        } => Output::Piece(e.add_piece(&sector, &unsealed, &data, size, &existing)?),
        Op::PreCommit1 {
            sector,
            paths,
            ticket,
            pieces,
        } => Output::Phase(e.pre_commit1(&sector, paths.seal(), &ticket, &pieces)?),
        Op::PreCommit2 { sector, paths, pc1 } => {
            Output::Comms(e.pre_commit2(&sector, paths.seal(), &pc1)?)
        }
        Op::Commit1 {
            sector,
            paths,
            ticket,
            seed,
            comms,
            pieces,
        } => Output::Phase(e.commit1(&sector, paths.seal(), &ticket, &seed, &comms, &pieces)?),
        Op::Commit2 { sector, c1 } => Output::Proof(e.commit2(&sector, &c1)?),
        Op::Finalize { sector, cache } => {
            e.finalize(&sector, &cache)?;
            Output::Done
        }
        Op::Unseal {
            sector,
            paths,
            ticket,
            comm_d,
            offset,
            len,
        } => {
            e.unseal(&sector, paths.seal(), &ticket, &comm_d, offset, len)?;
            Output::Done
        }
        Op::CheckProvable {
            miner,
            randomness,
            sectors,
        } => Output::Unprovable(e.check_provable(miner, &randomness, &sectors)?),
        Op::WindowPoSt {
            miner,
            randomness,
            sectors,
        } => Output::Proof(e.generate_window_post(miner, &randomness, &sectors)?),
        Op::WinningPoSt {
            miner,
            randomness,
            sectors,
        } => Output::Proof(e.generate_winning_post(miner, &randomness, &sectors)?),
    })
}
