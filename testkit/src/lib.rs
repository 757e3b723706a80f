//! `testkit` owns the multi-process test harness every crate that starts binaries uses: the
//! built `sealer` and `worker` binaries run on 127.0.0.1 with their own temporary repos, CLI
//! commands against them, and waits with time limits. Dropping a [`Daemon`] checks the sealer's
//! own accounting (`sealing sched-diag` reports no broken invariant) before it is stopped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sealer::config::Config;

/// The `sealer` binary the workspace build made.
pub fn bin() -> PathBuf {
    built("sealer")
}

/// The `worker` binary the workspace build made.
pub fn worker_bin() -> PathBuf {
    built("worker")
}

/// A binary of the workspace: beside the test executable's directory (`target/<profile>/deps/`
/// holds tests, `target/<profile>/` the binaries).
fn built(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe
        .parent()
        .and_then(|d| {
            if d.ends_with("deps") {
                d.parent()
            } else {
                Some(d)
            }
        })
        .expect("a target directory");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is not built: run the tests with `cargo test --workspace` (or `cargo build -p {name}` first)",
        p.display()
    );
    p
}

pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Repo {
    /// `sealer init` (mock engine unless `real`), then `edit` on the config: the API on a free
    /// port, a fast chain and short cool-downs by default.
    pub fn init(real: bool, edit: impl FnOnce(&mut Config)) -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["init", "--actor", "t01000", "--sector-size", "2KiB"];
        if !real {
            args.push("--mock");
        }
        let r = Repo { dir };
        let out = r.cli(&args);
        assert!(out.status.success(), "init: {}", stderr(&out));
        let (mut cfg, _) = Config::load(&r.config()).unwrap();
        cfg.api.listen_address = "/ip4/127.0.0.1/tcp/0/http".into();
        cfg.chain.block_delay = "100ms".into();
        cfg.chain.pre_commit_challenge_delay = 3;
        cfg.sealing.retry_cooldown = "1s".into();
        edit(&mut cfg);
        std::fs::write(r.config(), cfg.to_toml()).unwrap();
        r
    }

    /// `init` for the seeds' sealer that seals nothing itself (every `[Storage] Allow*` false),
    /// then `edit`.
    pub fn init_without_sealing(real: bool, edit: impl FnOnce(&mut Config)) -> Repo {
        Repo::init(real, |c| {
            c.storage.allow_add_piece = false;
            c.storage.allow_pre_commit1 = false;
            c.storage.allow_pre_commit2 = false;
            c.storage.allow_commit = false;
            c.storage.allow_unseal = false;
            edit(c);
        })
    }

    /// Attaches `<repo>/store` as a long-term store path (the daemon runs); returns it.
    pub fn attach_store(&self) -> PathBuf {
        let store = self.path().join("store");
        std::fs::create_dir_all(&store).unwrap();
        self.ok(&[
            "storage",
            "attach",
            "--init",
            "--store",
            store.to_str().unwrap(),
        ]);
        store
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> PathBuf {
        self.path().join("config.toml")
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .arg("--repo")
            .arg(self.path())
            .args(args)
            .env_remove("MINER_API_INFO")
            .env_remove("FULLNODE_API_INFO")
            .output()
            .unwrap()
    }

    /// Runs a CLI command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "sealer {args:?} failed: {}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// Calls method `M` on the running sealer with an admin token and returns its typed
    /// result (panics with the error otherwise).
    pub fn request<M: api::contract::Method>(&self, params: M::Params) -> M::Result {
        self.try_request::<M>(params)
            .unwrap_or_else(|e| panic!("{}: {e}", M::NAME))
    }

    /// `request`, returning the error.
    pub fn try_request<M: api::contract::Method>(
        &self,
        params: M::Params,
    ) -> Result<M::Result, api::ClientError> {
        request_at::<M>(self.path(), params).expect("the sealer's API info")
    }

    /// `GET <path>` on the sealer's HTTP port with a fresh token of `perm` (`read`, `admin`):
    /// status and body.
    pub fn http_get(&self, path: &str, perm: &str) -> (u16, String) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let token = self.ok(&["auth", "create-token", "--perm", perm]);
        let addr = std::fs::read_to_string(self.path().join("api")).unwrap();
        let port = addr
            .trim()
            .split('/')
            .nth(4)
            .expect("/ip4/<ip>/tcp/<port>/http");
        let r = reqwest::blocking::Client::new()
            .get(format!("http://127.0.0.1:{port}{path}"))
            .bearer_auth(token.trim())
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    /// The sealer's `/metrics` as `name{labels}` -> value (histogram buckets left out).
    pub fn metrics(&self) -> std::collections::BTreeMap<String, f64> {
        let (status, text) = self.http_get("/metrics", "read");
        assert_eq!(status, 200, "{text}");
        metric_samples(&text)
    }

    /// `Filecoin.WorkerStats`: the workers the sealer knows, typed.
    pub fn workers(&self) -> Vec<api::WorkerRow> {
        self.request::<api::methods::WorkerStats>(())
    }

    /// The sealer's worker whose host name (or `--name`) is `name`.
    pub fn worker(&self, name: &str) -> Option<api::WorkerRow> {
        self.workers().into_iter().find(|w| w.hostname == name)
    }

    /// `Filecoin.StateMinerDeadlines`: deadlines, power and proof counts, typed.
    pub fn deadlines(&self) -> api::ProvingDeadlines {
        self.request::<api::methods::StateMinerDeadlines>(())
    }

    /// How many deadlines were proven at their last opening.
    pub fn proven_deadlines(&self) -> usize {
        self.deadlines()
            .deadlines
            .iter()
            .filter(|d| d.last_run.as_ref().is_some_and(|r| r.outcome == "proven"))
            .count()
    }

    /// Starts `sealer run` and waits until it answers.
    pub fn start(&self) -> Daemon {
        self.start_env(&[])
    }

    /// `start` with extra environment variables (resource overrides).
    pub fn start_env(&self, env: &[(&str, &str)]) -> Daemon {
        let _ = std::fs::remove_file(self.path().join("api"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path().join("daemon.log"))
            .unwrap();
        let child = Command::new(bin())
            .arg("--repo")
            .arg(self.path())
            .arg("run")
            // `SEALER_LOG=info,api::server=trace` to see every RPC call the sealer takes.
            .env(
                "RUST_LOG",
                std::env::var("SEALER_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut d = Daemon {
            child,
            log: self.path().join("daemon.log"),
        };
        let start = Instant::now();
        loop {
            if let Some(st) = d.child.try_wait().unwrap() {
                panic!("sealer run exited ({st}): {}", d.log());
            }
            if self.path().join("api").exists() && self.cli(&["chain", "head"]).status.success() {
                return d;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "daemon did not start: {}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Attaches `<repo>/seal` (seal) and `<repo>/store` (store).
    pub fn attach_paths(&self) {
        let seal = self.path().join("seal");
        std::fs::create_dir_all(&seal).unwrap();
        self.ok(&[
            "storage",
            "attach",
            "--init",
            "--seal",
            seal.to_str().unwrap(),
        ]);
        self.attach_store();
    }

    /// Sector `n`'s state, read through `SectorsStatus`.
    pub fn state(&self, n: u64) -> String {
        self.request::<api::methods::SectorsStatus>((n, None))
            .state
            .to_string()
    }

    /// Waits until `cond` holds on the states of `sectors`, or panics after `limit`.
    pub fn wait_states(
        &self,
        sectors: &[u64],
        limit: Duration,
        cond: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let start = Instant::now();
        loop {
            let states: Vec<String> = sectors.iter().map(|n| self.state(*n)).collect();
            if cond(&states) {
                return states;
            }
            assert!(
                start.elapsed() < limit,
                "states now {states:?} after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log's lines that contain any of `needles` (a failure message that CI shows whole,
    /// where the full log of a real-proof run is cut in the middle).
    pub fn log_lines(&self, needles: &[&str]) -> String {
        self.log()
            .lines()
            .filter(|l| needles.iter().any(|n| l.contains(n)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The scheduler's own accounting check, as `sealing sched-diag` reports it: `None` when
    /// every invariant holds (or the daemon no longer runs).
    pub fn broken_invariants(&mut self) -> Option<String> {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return None;
        }
        match request_at::<api::methods::SealingSchedDiag>(self.log.parent()?, ())? {
            Ok(d) => d.invariants,
            Err(e) => Some(format!("sched-diag could not be read: {e}")),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let broken = self.broken_invariants();
        self.kill9();
        if let Some(why) = broken {
            if !std::thread::panicking() {
                panic!("the sealer's scheduler accounting is broken at the end of the test: {why}");
            }
        }
    }
}

/// Calls method `M` on the sealer whose repo is `repo`, with its admin token; `None` if the repo
/// names no running daemon's address.
impl Repo {
    /// Sends `fil` FIL to `to` from the devnet node's wallet's default address (its faucet),
    /// over the node's API as `lotus send` does.
    pub fn send_funds(&self, to: &str, fil: &str) {
        let info = std::fs::read_to_string(self.path().join("fullnode_api")).unwrap();
        let info = api::ApiInfo::parse(info.trim()).unwrap();
        let node = api::Client::new_at(&info, api::fullnode::PATH, Duration::from_secs(10));
        let to = lotus::json::parse_address(to).unwrap();
        let amount = lotus::json::parse_fil(fil).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            let from = node
                .request::<api::fullnode::WalletDefaultAddress>(())
                .await
                .unwrap()
                .0;
            let m = lotus::Call::transfer().message(from, to, amount);
            node.request::<api::fullnode::MpoolPushMessage>((
                lotus::json::MessageJson::from(&m),
                None,
            ))
            .await
            .unwrap();
        });
    }
}

fn request_at<M: api::contract::Method>(
    repo: &Path,
    params: M::Params,
) -> Option<Result<M::Result, api::ClientError>> {
    let info = (sealer::repo::Repo {
        path: repo.to_path_buf(),
    })
    .api_info()
    .ok()?;
    let info = match api::ApiInfo::parse(&info) {
        Ok(i) => i,
        Err(e) => return Some(Err(e)),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    Some(rt.block_on(api::Client::new(&info, Duration::from_secs(30)).request::<M>(params)))
}

/// The samples of a metrics text: `name{labels}` -> value (histogram buckets left out).
pub fn metric_samples(text: &str) -> std::collections::BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty() && !l.contains("_bucket{"))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The value after `name` in `sectors status` output.
pub fn field(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(name))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// The bound on sectors a day in `sealer plan`'s output (its `Bound: N sectors a day` line).
pub fn plan_bound(plan: &str) -> f64 {
    plan.lines()
        .find_map(|l| l.strip_prefix("Bound: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no bound: {plan}"))
}

/// `worker run` flags for the seeds' B2: C2 only (C1, FIN and GET are always on).
pub const C2_ONLY: [&str; 4] = [
    "--precommit1=false",
    "--precommit2=false",
    "--addpiece=false",
    "--unseal=false",
];

/// A `worker run` process with its own repo.
pub struct WorkerProc {
    pub repo: tempfile::TempDir,
    pub child: Child,
    pub name: String,
}

impl WorkerProc {
    /// Starts `worker run` for the sealer at `api_info` with `flags`, and waits until the
    /// sealer lists it.
    pub fn start(sealer: &Repo, name: &str, flags: &[&str], env: &[(&str, &str)]) -> WorkerProc {
        let repo = tempfile::tempdir().unwrap();
        let info = sealer.ok(&["auth", "api-info", "--perm", "admin"]);
        let info = info
            .trim()
            .trim_start_matches("MINER_API_INFO=")
            .to_string();
        let w = WorkerProc::spawn(repo, &info, name, flags, env);
        let start = Instant::now();
        while sealer.worker(name).is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "worker {name} did not connect: {}",
                w.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        w
    }

    fn spawn(
        repo: tempfile::TempDir,
        info: &str,
        name: &str,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> WorkerProc {
        let log = std::fs::File::create(repo.path().join("worker.log")).unwrap();
        let mut cmd = Command::new(worker_bin());
        cmd.arg("--worker-repo")
            .arg(repo.path())
            .args(["run", "--listen", "127.0.0.1:0", "--name", name])
            .args(flags)
            .env("MINER_API_INFO", info)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        WorkerProc {
            child: cmd.spawn().unwrap(),
            repo,
            name: name.to_string(),
        }
    }

    /// Runs a `worker` CLI command against this worker.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(worker_bin())
            .arg("--worker-repo")
            .arg(self.repo.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "worker {args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// Waits until the worker answers its own API.
    pub fn wait_api(&self) {
        let start = Instant::now();
        loop {
            let ok = Command::new(worker_bin())
                .arg("--worker-repo")
                .arg(self.repo.path())
                .arg("info")
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "worker API did not come up: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.repo.path().join("worker.log")).unwrap_or_default()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `lotus/tests/vectors` with iso-filecoin's packages installed (`npm ci`, Node 20 or later), or
/// `None` after saying on stderr why the check is skipped; with LOTUS_VECTORS_REQUIRED set (CI),
/// their absence fails the test instead.
pub fn vectors_dir() -> Option<PathBuf> {
    // The running test's package in the checkout under test (cargo sets CARGO_MANIFEST_DIR
    // when it runs a test; the path compiled in is that of whichever clone built testkit into
    // a shared target dir). Every package sits at the workspace's root.
    let d = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../lotus/tests/vectors");
    if d.join("node_modules/iso-filecoin").exists() {
        return Some(d);
    }
    let why = format!(
        "the check with iso-filecoin needs `npm ci` in {} (Node 20 or later); `./dev test` runs it",
        d.display()
    );
    assert!(
        std::env::var_os("LOTUS_VECTORS_REQUIRED").is_none(),
        "{why} (LOTUS_VECTORS_REQUIRED is set)"
    );
    eprintln!("skipped: {why}");
    None
}

/// What a Lotus client no one here wrote (iso-filecoin's RPC, `live.mjs` in `vectors`) reads
/// from the devnet node of `repo`'s running daemon, with the token the daemon wrote: the head,
/// the miner, its deadlines and partitions, `sectors` and `messages` (whose CIDs it recomputes).
pub fn third_party_read(
    vectors: &Path,
    repo: &Repo,
    sectors: &[u64],
    messages: &[String],
) -> serde_json::Value {
    let info = std::fs::read_to_string(repo.path().join("fullnode_api")).unwrap();
    let sectors: Vec<String> = sectors.iter().map(|n| n.to_string()).collect();
    let out = Command::new("node")
        .args([
            "live.mjs",
            "t01000",
            &sectors.join(","),
            &messages.join(","),
        ])
        .env("FULLNODE_API_INFO", info.trim())
        .current_dir(vectors)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}
