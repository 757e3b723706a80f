//! Processor children in a running cluster (mock engine, real processes on 127.0.0.1): the
//! scheduler places tasks on concrete CPUs and the children run there; `--cpus` keeps a worker
//! inside its CPUs; a worker whose children crash in every way keeps serving and the sector
//! still reaches Proving.

use testkit as common;

use std::time::{Duration, Instant};

use api::methods as m;
use common::{Repo, WorkerProc};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn sealer() -> (Repo, common::Daemon) {
    let repo = Repo::init_without_sealing(false, |_| {});
    let d = repo.start();
    repo.attach_store();
    (repo, d)
}

/// The CPUs each finished processor of `task` reported, from the worker's log
/// (`processor ran PC1 of sector 1 pid=… cpus=0 …`).
fn children_cpus(w: &WorkerProc, task: &str) -> Vec<(String, String)> {
    w.log()
        .lines()
        .filter_map(|l| {
            let i = l.find("processor ran ")?;
            let op = l[i + 14..].split(" pid=").next()?.to_string();
            if !op.starts_with(&format!("{task} ")) {
                return None;
            }
            let cpus = l.split(" cpus=").nth(1)?.split(' ').next()?.to_string();
            Some((op, cpus))
        })
        .collect()
}

fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_pc1s_at_once_run_each_on_a_core_of_its_own() {
    let _g = serial();
    let cores = resources::topology::Topology::read(std::path::Path::new("/"))
        .unwrap()
        .cores
        .len();
    // (One core with two hyperthreads: the first PC1 gets the core, the second shares it.)
    let (repo, _d) = sealer();
    let w = WorkerProc::start(&repo, "A", &["--mock-delays", "PC1=4s"], &[]);
    repo.ok(&["sectors", "pledge"]);
    repo.ok(&["sectors", "pledge"]);
    // Both PC1s running: the scheduler gave each its own CPUs.
    let jobs = wait_for("two running PC1s", Duration::from_secs(60), || {
        let jobs: Vec<api::JobRow> = repo
            .request::<m::WorkerJobs>(())
            .into_iter()
            .filter(|j| j.task == resources::TaskType::PreCommit1 && j.state == "running")
            .collect();
        (jobs.len() == 2).then_some(jobs)
    });
    let sets: Vec<String> = jobs
        .iter()
        .map(|j| j.cpus.as_ref().expect("placed").to_string())
        .collect();
    let row = repo.worker("A").unwrap();
    assert_eq!(row.cpus_held.len(), 2, "{row:?}");
    let own = row.cpus_held.iter().filter(|h| h.exclusive).count();
    if cores >= 2 {
        assert_ne!(sets[0], sets[1], "{sets:?}");
        assert_eq!(own, 2, "{row:?}");
    } else {
        assert_eq!(own, 1, "{row:?}");
    }
    let printed = repo.ok(&["sealing", "workers"]);
    assert!(printed.contains("PC1 "), "{printed}");
    let info = w.cli(&["info"]);
    for s in &sets {
        assert!(info.contains(&format!("on CPUs {s}")), "{info}");
    }
    // Each child ran where it was placed, and said so itself.
    let ran = wait_for("both PC1 children done", Duration::from_secs(60), || {
        let r = children_cpus(&w, "PC1");
        (r.len() == 2).then_some(r)
    });
    let mut got: Vec<String> = ran.iter().map(|(_, c)| c.clone()).collect();
    got.sort();
    let mut want = sets.clone();
    want.sort();
    assert_eq!(got, want, "{ran:?}");
    repo.wait_states(&[1, 2], Duration::from_secs(120), |s| {
        s.iter().all(|x| x == "Proving")
    });
    // Nothing held once the tasks are done.
    let row = repo.worker("A").unwrap();
    assert!(row.cpus_held.is_empty(), "{row:?}");
}

#[test]
fn a_worker_given_cpus_runs_everything_on_them_and_refuses_cpus_it_cannot_have() {
    let _g = serial();
    let (repo, _d) = sealer();
    let mine = processor::affinity::current().unwrap();
    let last = *mine.0.iter().last().unwrap();
    let only = last.to_string();
    let w = WorkerProc::start(&repo, "B", &["--cpus", &only], &[]);
    repo.ok(&["sectors", "pledge"]);
    repo.wait_states(&[1], Duration::from_secs(120), |s| s[0] == "Proving");
    for task in ["AP", "PC1", "PC2", "C1", "C2", "FIN"] {
        let ran = children_cpus(&w, task);
        assert!(!ran.is_empty(), "{task}: {}", w.log());
        assert!(ran.iter().all(|(_, c)| *c == only), "{task}: {ran:?}");
    }
    let row = repo.worker("B").unwrap();
    assert_eq!(row.resources.cpus, 1);
    assert_eq!(row.cpus.unwrap().to_string(), only);
    assert!(w.cli(&["info"]).contains(&format!("CPUs used: {only}")));

    // CPUs that are not online, or outside the process's mask, are refused by name.
    for (cpus, why) in [
        ("4000-4001", "not online"),
        (only.as_str(), "affinity mask"),
    ] {
        let d = tempfile::tempdir().unwrap();
        let mut cmd = std::process::Command::new(common::worker_bin());
        cmd.arg("--worker-repo").arg(d.path()).args([
            "run",
            "--listen",
            "127.0.0.1:0",
            "--cpus",
            cpus,
        ]);
        cmd.env(
            "MINER_API_INFO",
            repo.ok(&["auth", "api-info", "--perm", "admin"])
                .trim()
                .trim_start_matches("MINER_API_INFO="),
        );
        if why == "affinity mask" {
            // Started outside that CPU (taskset's way): asking for it is refused.
            let other = *mine.0.iter().next().unwrap();
            if other == last {
                continue; // one CPU: nothing to be outside of
            }
            cmd = taskset(cmd, other);
        }
        let out = cmd.output().unwrap();
        let err = common::stderr(&out);
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains(&format!("--cpus {cpus}")) && err.contains(why),
            "{err}"
        );
    }
}

/// `cmd` started on `cpu` only (as `taskset -c cpu cmd` would).
fn taskset(cmd: std::process::Command, cpu: u32) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = cmd;
    let set =
        processor::affinity::cpu_set_t(&resources::topology::CpuSet::from_iter([cpu])).unwrap();
    // SAFETY: one syscall on data made before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

#[test]
fn a_worker_whose_children_crash_every_way_keeps_serving_and_the_sector_reaches_proving() {
    let _g = serial();
    let (repo, _d) = sealer();
    let faults = "AP=kill,PC1=segfault,PC1=garbage,PC2=abort,PC2=hang,C1=panic,C2=oom,FIN=exit";
    let w = WorkerProc::start(
        &repo,
        "C",
        &["--mock-faults", faults, "--task-timeouts", "PC2=3s"],
        &[],
    );
    let session = repo.worker("C").unwrap().id;
    repo.ok(&["sectors", "pledge"]);
    let start = Instant::now();
    while repo.state(1) != "Proving" {
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "{}\nworker:\n{}",
            repo.ok(&["sectors", "status", "1", "--log"]),
            w.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = repo.ok(&["sectors", "status", "1", "--log"]);
    for what in [
        "killed by signal 9 (SIGKILL",
        "killed by signal 11 (SIGSEGV)",
        "wrote garbage on its pipe",
        "killed by signal 6 (SIGABRT)",
        "still running after its deadline of 3s",
        "panicked: mock fault",
        "out of memory: an allocation of 67108864 bytes failed",
        "exited with code 3 without a result",
    ] {
        assert!(log.contains(what), "{what} not in the sector's log:\n{log}");
    }
    // The same worker served it all: never restarted, never dropped.
    assert_eq!(repo.worker("C").unwrap().id, session);
    assert!(w.log().matches("worker C listening").count() <= 1);
    // Everything was given back: no task, no CPU, no memory held.
    let row = repo.worker("C").unwrap();
    assert!(row.cpus_held.is_empty(), "{row:?}");
    assert_eq!(
        (row.usage.cpus, row.usage.mem_min, row.usage.mem_max),
        (0, 0, 0),
        "{row:?}"
    );
    // And no child is left.
    let pids = std::fs::read_dir(w.repo.path().join("processors"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(pids, 0);
}
