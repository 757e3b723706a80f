//! The worker's side of one child: start it pinned to its CPUs, follow the protocol with a
//! deadline, reap it, and say what became of it.

use std::ffi::CString;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use proofs::{Crash, ProofError};
use resources::topology::{CpuSet, Place, Topology};
use resources::TaskType;
use serde::{Deserialize, Serialize};

use crate::wire::{Hello, Output, Request, ToWorker};

/// How long a child has to say hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a child has to exit once it sent its result.
const EXIT_GRACE: Duration = Duration::from_secs(10);
/// How often a running child's exit is looked for.
const TICK: Duration = Duration::from_secs(1);
/// How long a child has to read its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a task's child runs: the CPUs it is pinned to (none: the worker's own mask) and the env
/// its CPU set calls for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub cpus: Option<CpuSet>,
    pub env: Vec<(String, String)>,
    /// Allocate its memory on this NUMA node where it can (`set_mempolicy` MPOL_PREFERRED).
    #[serde(default)]
    pub numa: Option<u32>,
}

impl Placement {
    /// A task of type `task` placed at `place` (none: the worker's own CPUs, as they are):
    /// pinned there, with `RAYON_NUM_THREADS` the size of the set, for a multicore-SDR PC1 one
    /// producer per core of the unit but the one that hashes, and for a GPU task
    /// `CUDA_VISIBLE_DEVICES` its GPU (with `CUDA_DEVICE_ORDER=PCI_BUS_ID`, NVML's order).
    /// Variables the operator set are left alone.
    pub fn of(task: TaskType, place: Option<Place>, topo: Option<&Topology>) -> Placement {
        let Some(Place { cpus, gpu }) = place else {
            return Placement::default();
        };
        let unset = |k: &str| std::env::var_os(k).is_none();
        let mut env = Vec::new();
        if let Some(g) = gpu.filter(|_| unset("CUDA_VISIBLE_DEVICES")) {
            env.push(("CUDA_DEVICE_ORDER".to_string(), "PCI_BUS_ID".to_string()));
            env.push(("CUDA_VISIBLE_DEVICES".to_string(), g.to_string()));
        }
        if unset("RAYON_NUM_THREADS") {
            env.push(("RAYON_NUM_THREADS".to_string(), cpus.len().to_string()));
        }
        let producers = "FIL_PROOFS_MULTICORE_SDR_PRODUCERS";
        if task == TaskType::PreCommit1 && proofs::SdrMode::current().multicore && unset(producers)
        {
            let cores = topo.map_or(cpus.len(), |t| {
                t.cores
                    .iter()
                    .filter(|c| c.cpus.0.iter().any(|x| cpus.contains(*x)))
                    .count()
            });
            if cores >= 2 {
                env.push((producers.to_string(), (cores - 1).to_string()));
            }
        }
        Placement {
            cpus: Some(cpus),
            env,
            numa: None,
        }
    }
}

/// How a child ran: what the worker records with the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// "PC1 of sector 3".
    pub op: String,
    pub pid: u32,
    /// The CPUs it could run on (its own report; empty if it never said hello).
    pub cpus: CpuSet,
    /// The proof variables it saw (its own report).
    pub env: Vec<(String, String)>,
    pub wall_ms: u64,
    /// Peak resident memory (`wait4`'s ru_maxrss).
    pub peak_rss: u64,
}

/// What a child is started from.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The binary (the worker's own).
    pub exe: PathBuf,
    /// Its arguments (`["processor"]`).
    pub args: Vec<String>,
    /// Where pid files go, so a restarted worker can end the children of the one that died.
    pub pid_dir: Option<PathBuf>,
}

impl Launch {
    /// This binary as `<binary> processor`, its pid files in `<repo>/processors`.
    pub fn this_binary(repo: &Path) -> std::io::Result<Launch> {
        Ok(Launch {
            exe: std::env::current_exe()?,
            args: vec!["processor".into()],
            pid_dir: Some(repo.join("processors")),
        })
    }
}

enum Msg {
    Line(Result<ToWorker, String>),
    Eof,
}

/// Runs `req` in a child placed by `placement`, killed after `deadline`. The child is reaped
/// before this returns.
pub fn run(
    launch: &Launch,
    placement: &Placement,
    deadline: Option<Duration>,
    req: &Request,
    on_progress: &dyn Fn(resources::Progress),
) -> (Result<Output, ProofError>, Option<Run>) {
    let what = req.op.describe();
    let crashed = |pid: u32, crash: Crash| ProofError::Crashed {
        op: what.clone(),
        pid,
        crash,
    };
    let start = Instant::now();
    let mut child = match spawn(launch, placement) {
        Ok(c) => c,
        Err(e) => return (Err(crashed(0, Crash::Start(e))), None),
    };
    let pid = child.pid;
    tracing::debug!(pid, cpus = ?placement.cpus, "processor started for {what}");

    let mut hello: Option<Hello> = None;
    let mut result: Option<Result<Output, ProofError>> = None;
    let mut crash: Option<Crash> = None;
    let end = deadline.map(|d| start + d);
    loop {
        // Woken at least once a second: a child that exited while something it started keeps
        // its pipe open gives no EOF, so its exit is looked for too.
        let limit = match (&hello, end) {
            (None, _) => Some(start + HELLO_TIMEOUT),
            (Some(_), end) => end,
        };
        let wait = limit
            .map_or(TICK, |l| l.saturating_duration_since(Instant::now()))
            .min(TICK);
        match child.msgs.recv_timeout(wait) {
            Ok(Msg::Line(Ok(ToWorker::Hello(h)))) if hello.is_none() => {
                if let Err(e) = child.send(req) {
                    // It did not take its request: it is stuck or gone.
                    child.kill();
                    crash = Some(Crash::Protocol(format!("its request was not read: {e}")));
                    break;
                }
                hello = Some(h);
            }
            Ok(Msg::Line(Ok(ToWorker::Progress(p)))) if hello.is_some() => {
                tracing::debug!(pid, "processor: {p}");
                on_progress(p);
            }
            Ok(Msg::Line(Ok(ToWorker::Result(r)))) if hello.is_some() => {
                result = Some(r.map_err(ProofError::from));
                break;
            }
            Ok(Msg::Line(Ok(ToWorker::Panicked(m)))) => {
                crash.get_or_insert(Crash::Panicked(m));
            }
            // The first failed allocation: more may fail on the way down (a backtrace).
            Ok(Msg::Line(Ok(ToWorker::OutOfMemory { bytes }))) => {
                crash.get_or_insert(Crash::OutOfMemory { bytes });
            }
            Ok(Msg::Line(Ok(m))) => {
                child.kill();
                crash = Some(Crash::Protocol(format!("{m:?} out of turn")));
                break;
            }
            Ok(Msg::Line(Err(garbage))) => {
                child.kill();
                crash = Some(Crash::Protocol(garbage));
                break;
            }
            Ok(Msg::Eof) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if limit.is_some_and(|l| Instant::now() >= l) {
                    child.kill();
                    // What it reported on the way down (OOM, a panic) says more.
                    crash.get_or_insert(match (&hello, deadline) {
                        (Some(_), Some(d)) => Crash::TimedOut(d.as_secs()),
                        _ => Crash::Start(format!("no hello within {}s", HELLO_TIMEOUT.as_secs())),
                    });
                    break;
                }
                if child.exited() {
                    break;
                }
            }
        }
    }
    let (status, peak_rss) = child.reap();
    let (cpus, env) = hello.map(|h| (h.affinity, h.env)).unwrap_or_default();
    let run = Run {
        op: what.clone(),
        pid,
        cpus,
        env,
        wall_ms: start.elapsed().as_millis() as u64,
        peak_rss,
    };
    let out = match (result, crash) {
        (Some(r), _) => r,
        (None, Some(c)) => Err(crashed(pid, c)),
        (None, None) => Err(crashed(pid, status)),
    };
    (out, Some(run))
}

struct Child {
    pid: u32,
    sock: UnixStream,
    msgs: mpsc::Receiver<Msg>,
    pid_file: Option<PathBuf>,
}

fn spawn(launch: &Launch, placement: &Placement) -> Result<Child, String> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    let mask = match &placement.cpus {
        Some(c) if c.is_empty() => return Err("an empty CPU set".into()),
        Some(c) => Some(crate::affinity::cpu_set_t(c)?),
        None => None,
    };
    let stdout = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| format!("stderr: {e}"))?;
    let mut cmd = Command::new(&launch.exe);
    cmd.args(&launch.args)
        .envs(placement.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .process_group(0);
    let fd = theirs.as_raw_fd();
    // SAFETY: the getpid() of this process, read before the fork.
    let parent = unsafe { libc::getpid() };
    let oom = CString::new("/proc/self/oom_score_adj").expect("no NUL");
    let numa = match placement.numa {
        Some(n) if n >= 64 => return Err(format!("NUMA node {n}: nodes 0-63 are supported")),
        Some(n) => Some(1u64 << n),
        None => None,
    };
    // SAFETY: only async-signal-safe calls between fork and exec, on data made before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 || libc::getppid() != parent
            {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            if let Some(m) = &mask {
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), m) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if fd == crate::child::FD {
                libc::fcntl(fd, libc::F_SETFD, 0);
            } else if libc::dup2(fd, crate::child::FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Memory on its NUMA node where there is room (a kernel without NUMA says no:
            // the preference is dropped, the task runs).
            if let Some(mask) = &numa {
                const MPOL_PREFERRED: libc::c_long = 1;
                libc::syscall(
                    libc::SYS_set_mempolicy,
                    MPOL_PREFERRED,
                    mask as *const u64,
                    65 as libc::c_ulong,
                );
            }
            // First in line for the OOM killer: a proof, not the worker. Best effort.
            let f = libc::open(oom.as_ptr(), libc::O_WRONLY);
            if f >= 0 {
                libc::write(f, b"1000".as_ptr().cast(), 4);
                libc::close(f);
            }
            Ok(())
        });
    }
    let reader = ours.try_clone().map_err(|e| format!("socket: {e}"))?;
    ours.set_write_timeout(Some(REQUEST_TIMEOUT))
        .map_err(|e| format!("socket: {e}"))?;
    let spawned = cmd.spawn().map_err(|e| {
        let on = placement
            .cpus
            .as_ref()
            .map(|c| format!(" on CPUs {c}"))
            .unwrap_or_default();
        format!("{}{on}: {e}", launch.exe.display())
    })?;
    drop(theirs);
    let pid = spawned.id();
    // The Child handle is not used to wait: `reap` calls wait4 for the rusage.
    drop(spawned);
    let pid_file = launch.pid_dir.as_ref().and_then(|d| {
        let f = d.join(pid.to_string());
        let start = start_time(pid)?;
        std::fs::create_dir_all(d)
            .and_then(|_| std::fs::write(&f, start.to_string()))
            .map_err(|e| tracing::warn!("processor pid file {}: {e}", f.display()))
            .ok()?;
        Some(f)
    });
    let (tx, msgs) = mpsc::channel();
    let child = Child {
        pid,
        sock: ours,
        msgs,
        pid_file,
    };
    let read = std::thread::Builder::new()
        .name(format!("processor-{pid}"))
        .spawn(move || {
            let mut r = BufReader::new(reader);
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    // A last line without its newline was cut off by the child's end: EOF.
                    Ok(0) | Err(_) => break,
                    Ok(_) if line.last() != Some(&b'\n') => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&line);
                if text.trim().is_empty() {
                    continue;
                }
                let m = serde_json::from_str::<ToWorker>(&text).map_err(|_| {
                    let s: String = text.trim_end().chars().take(80).collect();
                    format!("{s:?}")
                });
                if tx.send(Msg::Line(m)).is_err() {
                    return;
                }
            }
            let _ = tx.send(Msg::Eof);
        });
    if let Err(e) = read {
        child.kill();
        let _ = child.reap();
        return Err(format!("reader thread: {e}"));
    }
    Ok(child)
}

impl Child {
    fn send(&mut self, req: &Request) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(req)?;
        line.push(b'\n');
        self.sock.write_all(&line)
    }

    /// Whether the child has exited (it stays a zombie until `reap`).
    fn exited(&self) -> bool {
        // SAFETY: a zeroed siginfo_t is valid for waitid to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                self.pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: si_pid is set when waitid found the child (0 otherwise).
        r != 0 || unsafe { info.si_pid() } == self.pid as libc::pid_t
    }

    /// Kills the child's whole process group.
    fn kill(&self) {
        // SAFETY: plain syscall; the group is the child's own (process_group(0)).
        unsafe { libc::kill(-(self.pid as i32), libc::SIGKILL) };
    }

    /// Waits for the child to end (killing it after a grace period), ends anything left in its
    /// group, and reaps it: how it ended, and its peak RSS in bytes.
    fn reap(self) -> (Crash, u64) {
        let pid = self.pid as libc::pid_t;
        let since = Instant::now();
        // The child stays a zombie until wait4, so its group id cannot be reused meanwhile.
        while !self.exited() {
            if since.elapsed() > EXIT_GRACE {
                self.kill();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        let mut status = 0;
        // SAFETY: a zeroed rusage is valid for wait4 to fill.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: the child is ours and not yet reaped.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if let Some(f) = &self.pid_file {
            let _ = std::fs::remove_file(f);
        }
        let crash = if reaped != pid {
            let e = std::io::Error::last_os_error();
            Crash::Start(format!("could not be reaped: {e}"))
        } else if libc::WIFSIGNALED(status) {
            Crash::Signalled {
                signal: libc::WTERMSIG(status),
            }
        } else {
            Crash::Exited(libc::WEXITSTATUS(status))
        };
        (crash, (usage.ru_maxrss.max(0) as u64) * 1024)
    }
}

/// A process's start time (field 22 of `/proc/<pid>/stat`), which tells it from a later process
/// with the same pid.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Ends the children a previous worker left behind (those of `pid_dir`'s files still running as
/// the same process) and clears the directory. Returns how many were ended.
pub fn end_orphans(pid_dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(pid_dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let path = e.path();
        let pid: Option<u32> = e.file_name().to_str().and_then(|s| s.parse().ok());
        let recorded: Option<u64> = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        if let (Some(pid), Some(rec)) = (pid, recorded) {
            if start_time(pid) == Some(rec) {
                tracing::warn!("ending processor pid {pid}, left running by a worker that died");
                // SAFETY: plain syscall on a group this worker's predecessor made.
                unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
                n += 1;
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_placed_task_gets_the_env_its_place_calls_for_and_the_operators_own_stays() {
        let place = Place {
            cpus: "0-3,48-51".parse().unwrap(),
            gpu: Some(1),
        };
        let p = Placement::of(TaskType::Commit2, Some(place.clone()), None);
        assert_eq!(p.cpus, Some(place.cpus));
        let has = |k: &str, v: &str| p.env.contains(&(k.to_string(), v.to_string()));
        // Set by the operator (in this process's env), a variable is left to them.
        let mine = |k: &str| std::env::var_os(k).is_some();
        assert!(
            mine("RAYON_NUM_THREADS") || has("RAYON_NUM_THREADS", "8"),
            "{p:?}"
        );
        assert!(
            mine("CUDA_VISIBLE_DEVICES")
                || (has("CUDA_VISIBLE_DEVICES", "1") && has("CUDA_DEVICE_ORDER", "PCI_BUS_ID")),
            "{p:?}"
        );
        assert_eq!(
            Placement::of(TaskType::AddPiece, None, None),
            Placement::default()
        );
    }

    #[test]
    fn orphans_left_by_a_dead_worker_are_ended_and_stale_pid_files_only_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut orphan = Command::new("sleep")
            .arg("600")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = orphan.id();
        std::fs::write(
            dir.path().join(pid.to_string()),
            start_time(pid).unwrap().to_string(),
        )
        .unwrap();
        // A pid file whose process is another one now (other start time), and one of a pid
        // that is gone: neither is touched, both files go.
        let mut other = Command::new("sleep").arg("600").spawn().unwrap();
        std::fs::write(dir.path().join(other.id().to_string()), "1").unwrap();
        std::fs::write(dir.path().join("4194304"), "1").unwrap();

        assert_eq!(end_orphans(dir.path()), 1);
        let status = orphan.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(
            other.try_wait().unwrap().is_none(),
            "not ours: left running"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        other.kill().unwrap();
        other.wait().unwrap();
        assert_eq!(end_orphans(&dir.path().join("none")), 0);
    }
}
