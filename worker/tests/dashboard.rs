//! Metrics and the dashboard during a mock sealing run with two workers (issue #18): `/metrics`
//! on the sealer and on each worker, the JSON views, the access rules, and every page in a real
//! headless Chromium (skipped, saying so, where none is installed; CI installs Debian's).
//!
//! Set-up: the sealer seals nothing itself; worker A takes AP/PC1/PC2/C1/FIN with PC1 taking 20 s
//! and one PC1 at a time (`PC1_MAX_CONCURRENT=1`), worker B takes C2 only. Three sectors are
//! pledged: while the first one's PC1 runs (20 s), the others' wait (for 40 s, the time the
//! browser has), and say why on each worker.

mod browser;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::{Repo, WorkerProc};

const A_ONLY: &[&str] = &["--commit=false", "--mock-delays", "PC1=20s"];
const C2_ONLY: &[&str] = &[
    "--addpiece=false",
    "--precommit1=false",
    "--precommit2=false",
    "--unseal=false",
];

struct Http {
    base: String,
    c: reqwest::blocking::Client,
}

impl Http {
    fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut r = self.c.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    fn post(&self, path: &str, token: &str) -> u16 {
        self.post_from(path, token, None)
    }

    /// A POST as a browser sends it from a page at `origin`.
    fn post_from(&self, path: &str, token: &str, origin: Option<&str>) -> u16 {
        let mut r = self
            .c
            .post(format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send().unwrap().status().as_u16()
    }

    fn json(&self, path: &str, token: &str) -> Value {
        let (status, body) = self.get(path, Some(token));
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

use testkit::metric_samples as samples;

fn value(s: &BTreeMap<String, f64>, key: &str) -> f64 {
    *s.get(key).unwrap_or_else(|| {
        panic!(
            "no sample {key} in:\n{}",
            s.keys().cloned().collect::<Vec<_>>().join("\n")
        )
    })
}

/// Per (task type, worker) labels: started, returned, failed.
fn task_totals(s: &BTreeMap<String, f64>, prefix: &str) -> BTreeMap<String, [f64; 3]> {
    let mut m: BTreeMap<String, [f64; 3]> = BTreeMap::new();
    for (i, fam) in ["started", "returned", "failed"].iter().enumerate() {
        let name = format!("{prefix}_tasks_{fam}_total");
        for (k, v) in s {
            if let Some(labels) = k.strip_prefix(&name) {
                m.entry(labels.to_string()).or_default()[i] = *v;
            }
        }
    }
    m
}

const SEALER_FAMILIES: &[&str] = &[
    "sealer_build_info",
    "sealer_sealing_sectors",
    "sealer_sealing_tasks_started_total",
    "sealer_sealing_tasks_returned_total",
    "sealer_sealing_task_duration_seconds",
    "sealer_sched_queue_tasks",
    "sealer_sched_queue_wait_seconds",
    "sealer_sched_pass_duration_seconds",
    "sealer_api_request_duration_seconds",
    "sealer_sched_queued_blocked_tasks",
    "sealer_worker_up",
    "sealer_worker_heartbeat_age_seconds",
    "sealer_worker_cpus",
    "sealer_worker_cpus_reserved",
    "sealer_worker_memory_bytes",
    "sealer_worker_memory_reserved_bytes",
    "sealer_worker_gpus",
    "sealer_worker_gpus_reserved",
    "sealer_worker_tasks_running",
    "sealer_storage_path_capacity_bytes",
    "sealer_storage_path_available_bytes",
    "sealer_storage_path_reserved_bytes",
    "sealer_wdpost_faulty_sectors",
    "sealer_wdpost_recovering_sectors",
    "sealer_wdpost_proofs_total",
    "sealer_wdpost_missed_total",
    "sealer_wnpost_elections_total",
    "sealer_wnpost_wins_total",
    "sealer_chain_head_height",
];

#[test]
fn metrics_json_and_pages_during_a_mock_sealing_run() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let repo = Repo::init_without_sealing(false, |c| {
        c.sealing.max_sealing_sectors = 0;
    });
    let _d = repo.start();
    repo.attach_store();
    let a = WorkerProc::start(&repo, "A", A_ONLY, &[("PC1_MAX_CONCURRENT", "1")]);
    let b = WorkerProc::start(&repo, "B", C2_ONLY, &[]);
    let token = |perm: &str| {
        repo.ok(&["auth", "create-token", "--perm", perm])
            .trim()
            .to_string()
    };
    let (read, admin) = (token("read"), token("admin"));
    let addr = std::fs::read_to_string(repo.path().join("api")).unwrap();
    let port = addr.trim().split('/').nth(4).unwrap().to_string();
    let http = Http {
        base: format!("http://127.0.0.1:{port}"),
        c: reqwest::blocking::Client::new(),
    };

    // Access: nothing without a token; a read token reads but cannot act.
    for path in [
        "/metrics",
        "/ui/overview",
        "/ui/tasks",
        "/api/v0/overview",
        "/ui/frag/workers",
    ] {
        let (status, body) = http.get(path, None);
        assert_eq!(status, 401, "{path} without a token: {body}");
    }
    assert!(
        http.get("/ui/overview", None).1.contains("name=\"token\""),
        "the 401 page is the login form"
    );
    assert_eq!(http.get("/metrics", Some("not-a-token")).0, 401);
    assert_eq!(http.post("/ui/act/abort/0", &read), 403);
    assert_eq!(http.post("/ui/act/remove/1", &read), 403);
    // An admin token acts, but not from another site's page, and a job must exist.
    assert_eq!(
        http.post_from(
            "/ui/act/abort/999",
            &admin,
            Some("http://elsewhere.example")
        ),
        403
    );
    assert_eq!(
        http.post_from("/ui/act/abort/999", &admin, Some(&http.base)),
        409,
        "no job 999"
    );
    assert_eq!(http.post("/ui/act/reboot/1", &admin), 404);

    for _ in 0..3 {
        repo.ok(&["sectors", "pledge"]);
    }

    // One PC1 runs on A; the other waits, and says why on each worker.
    let start = Instant::now();
    let tasks = loop {
        let t = http.json("/api/v0/tasks", &read);
        // Running and past its first layer; queued and explained (once a second).
        let running = t["Placed"].as_array().unwrap().iter().any(|j| {
            j["Task"] == "seal/v0/precommit/1"
                && j["State"] == "running"
                && j["Progress"].is_object()
        });
        let queued = t["Queued"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|q| q["Task"] == "PC1" && q["Reason"].is_string())
            .count();
        if running && queued == 2 {
            break t;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no running PC1 (with progress) and two explained queued ones together: {t:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let pc1 = tasks["Placed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["State"] == "running")
        .unwrap();
    assert_eq!(
        pc1["Progress"]["Steps"], "Layers",
        "the running PC1 says how far it is: {pc1:#}"
    );
    assert_eq!(
        pc1["Progress"]["Total"], 2,
        "2KiB SDR has 2 layers: {pc1:#}"
    );
    let q = tasks["Queued"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["Task"] == "PC1")
        .unwrap();
    assert_eq!(q["Reason"], "MaxConcurrent reached", "{q:#}");
    assert_eq!(q["Why"], "MaxConcurrent reached (1 running)", "{q:#}");
    let on = |host: &str| -> String {
        q["Workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["Host"] == host)
            .unwrap()["Why"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(on("A"), "MaxConcurrent reached (1 running)");
    assert_eq!(on("B"), "task type disabled");
    // The same, in sched-diag.
    let diag = repo.request::<api::methods::SealingSchedDiag>(());
    assert_eq!(
        diag.queued
            .iter()
            .find(|q| q.task == "PC1")
            .and_then(|q| q.reason.clone())
            .as_deref(),
        Some("MaxConcurrent reached")
    );

    // Metrics mid-run: every family, with values that agree with the cluster.
    let (status, text) = http.get("/metrics", Some(&read));
    assert_eq!(status, 200, "{text}");
    for f in SEALER_FAMILIES {
        // A sample, not only the family's TYPE line (which an unused family has too).
        let sampled = text.lines().any(|l| {
            l.strip_prefix(f).is_some_and(|rest| {
                rest.starts_with(' ') || rest.starts_with('{') || rest.starts_with("_count")
            })
        });
        assert!(sampled, "no sample of {f} in:\n{text}");
    }
    let s = samples(&text);
    // The pledges above, timed per method as the sealer answered them.
    assert!(
        value(
            &s,
            r#"sealer_api_request_duration_seconds_count{method="Filecoin.PledgeSector"}"#
        ) >= 1.0
    );
    let sectors = repo.request::<api::methods::SectorsList>(()).len() as f64;
    let by_state: f64 = s
        .iter()
        .filter(|(k, _)| k.starts_with("sealer_sealing_sectors{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(
        by_state, sectors,
        "sectors per state sum to the sector list"
    );
    assert_eq!(
        value(
            &s,
            r#"sealer_sched_queued_blocked_tasks{task_type="PC1",reason="MaxConcurrent reached"}"#
        ),
        2.0
    );
    assert_eq!(
        value(&s, r#"sealer_sched_queue_tasks{task_type="PC1"}"#),
        2.0
    );
    assert_eq!(value(&s, "sealer_chain_up"), 1.0);
    let pc1_a = task_totals(&s, "sealer_sealing")[r#"{task_type="PC1",worker="A"}"#];
    assert_eq!(
        pc1_a[0] - pc1_a[1],
        1.0,
        "started = returned + the one running: {pc1_a:?}"
    );
    assert_eq!(value(&s, r#"sealer_worker_up{worker="A"}"#), 1.0);
    let age = value(&s, r#"sealer_worker_heartbeat_age_seconds{worker="B"}"#);
    assert!(
        age > 0.0 && age < 5.0,
        "B answered its 2 s heartbeat {age} s ago"
    );
    assert_eq!(
        value(
            &s,
            r#"sealer_worker_tasks_running{task_type="PC1",worker="A"}"#
        ),
        1.0
    );
    // The chain's figures are read every 5 s: the head moves on in them.
    let start = Instant::now();
    while samples(&http.get("/metrics", Some(&read)).1).get("sealer_chain_head_height")
        <= Some(&0.0)
    {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the chain head never showed in /metrics"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The pages, in a browser.
    match browser::find() {
        None if std::env::var_os("DASHBOARD_BROWSER_REQUIRED").is_some() => {
            panic!("no chromium on PATH, and DASHBOARD_BROWSER_REQUIRED is set (CI): apt-get install chromium")
        }
        None => eprintln!("SKIPPED the browser part: no chromium on PATH (apt-get install chromium; CI installs it)"),
        Some(bin) => {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(pages_in_a_browser(&bin, &http.base, &read));
        }
    }

    // Enough for all three to finish: PC1 three times (20 s each), then the rest at once.
    repo.wait_states(&[1, 2, 3], Duration::from_secs(150), |s| {
        s.iter().all(|s| s == "Proving")
    });
    let s = samples(&http.get("/metrics", Some(&read)).1);
    // Sealing tasks all came back (a WindowPoSt may be running now: deadlines keep opening).
    let sealing = task_totals(&s, "sealer_sealing");
    for (labels, [started, returned, _]) in sealing
        .iter()
        .filter(|(l, _)| !l.contains("WDP") && !l.contains("WNP"))
    {
        assert_eq!(started, returned, "{labels}: every task started came back");
    }
    assert_eq!(sealing[r#"{task_type="C2",worker="B"}"#][0], 3.0);
    assert_eq!(sealing[r#"{task_type="PC1",worker="A"}"#], [3.0, 3.0, 0.0]);
    assert_eq!(
        value(&s, r#"sealer_sealing_sectors{sector_state="Proving"}"#),
        3.0
    );
    assert_eq!(
        value(
            &s,
            r#"sealer_sealing_task_duration_seconds_count{task_type="PC1"}"#
        ),
        3.0
    );
    assert!(
        value(
            &s,
            r#"sealer_sealing_task_duration_seconds_sum{task_type="PC1"}"#
        ) >= 60.0
    );

    // Each worker's own metrics, with the same token.
    for (w, task, n) in [(&a, "PC1", 3.0), (&b, "C2", 3.0)] {
        let waddr = std::fs::read_to_string(w.repo.path().join("api")).unwrap();
        let wh = Http {
            base: format!("http://{}", waddr.trim()),
            c: reqwest::blocking::Client::new(),
        };
        assert_eq!(wh.get("/metrics", None).0, 401);
        let (status, text) = wh.get("/metrics", Some(&read));
        assert_eq!(status, 200, "{text}");
        let ws = samples(&text);
        assert_eq!(
            value(
                &ws,
                &format!(
                    r#"sealer_build_info{{version="{}",node_type="worker",worker="{}"}}"#,
                    env!("CARGO_PKG_VERSION"),
                    w.name
                )
            ),
            1.0
        );
        let t = format!(r#"{{task_type="{task}"}}"#);
        assert_eq!(
            value(&ws, &format!("sealer_processor_tasks_started_total{t}")),
            n,
            "{}",
            w.name
        );
        assert_eq!(
            value(&ws, &format!("sealer_processor_tasks_returned_total{t}")),
            n
        );
        assert_eq!(
            value(&ws, &format!("sealer_processor_tasks_running{t}")),
            0.0
        );
        assert!(value(&ws, &format!("sealer_processor_peak_rss_bytes{t}")) > 0.0);
        assert!(
            text.contains("sealer_storage_path_capacity_bytes{"),
            "{text}"
        );
    }
}

/// Logs in with the form, visits every page, checks what it shows, follows a refresh, saves a
/// screenshot of each under the target dir (`dashboard-screenshots/`), and checks that no
/// request left the sealer's origin.
async fn pages_in_a_browser(bin: &std::path::Path, base: &str, read: &str) {
    let shots = testkit::bin()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let mut b = browser::Browser::start(bin).await;
    b.goto(&format!("{base}/ui/overview")).await;
    assert_eq!(
        b.eval("!!document.getElementById('token')").await,
        Value::Bool(true),
        "the login form"
    );
    b.screenshot(&shots.join("login.png")).await;
    b.eval(&format!("document.getElementById('token').value = {}; document.querySelector('form').submit(); true", serde_json::to_string(read).unwrap())).await;
    b.loaded().await;
    b.until(
        "location.pathname === '/ui/overview' && !document.getElementById('token') && !!document.getElementById('pipeline')",
        Duration::from_secs(10),
    )
    .await;

    // Overview: the pipeline with both sectors, the mock banner.
    b.until(
        "document.querySelector('#pipeline [data-state=\"PreCommit1\"] b') !== null",
        Duration::from_secs(10),
    )
    .await;
    let in_pipeline = b.eval("Array.from(document.querySelectorAll('#pipeline .stage b')).reduce((n, e) => n + parseInt(e.textContent), 0)").await;
    assert_eq!(
        in_pipeline.as_f64(),
        Some(3.0),
        "the three sectors in the pipeline"
    );
    assert_eq!(
        b.eval("!!document.getElementById('mock-banner')").await,
        Value::Bool(true),
        "the mock engine is labelled"
    );
    b.screenshot(&shots.join("overview.png")).await;

    // Workers: A and B, A running a PC1.
    b.goto(&format!("{base}/ui/workers")).await;
    let names = b.eval("Array.from(document.querySelectorAll('#workers tr[data-worker]')).map(r => r.dataset.worker).join(',')").await;
    assert!(
        names.as_str().unwrap().contains('A') && names.as_str().unwrap().contains('B'),
        "{names}"
    );
    let a_runs = b.eval("Array.from(document.querySelectorAll('#workers tr[data-worker=\"A\"] .running')).map(e => e.textContent).join(' | ')").await;
    assert!(
        a_runs.as_str().unwrap().contains("PC1"),
        "A runs a PC1: {a_runs}"
    );
    b.screenshot(&shots.join("workers.png")).await;

    // Tasks: the running PC1, and the queued one with its reason per worker; then a refresh.
    b.goto(&format!("{base}/ui/tasks")).await;
    let queued = b.eval("Array.from(document.querySelectorAll('#queued tr[data-job]')).map(r => r.dataset.reason + ' | ' + r.textContent).join('\\n')").await;
    let queued = queued.as_str().unwrap();
    assert!(
        queued.contains("MaxConcurrent reached |") && queued.contains("task type disabled"),
        "{queued}"
    );
    let placed = b
        .eval("document.getElementById('placed').textContent")
        .await;
    assert!(placed.as_str().unwrap().contains("running"), "{placed}");
    b.until(
        "parseInt(document.getElementById('live').getAttribute('data-refreshed') || '0') >= 2",
        Duration::from_secs(15),
    )
    .await;
    let after = b.eval("document.querySelectorAll('#queued tr[data-job]').length + document.querySelectorAll('#placed tr[data-job]').length").await;
    assert!(
        after.as_f64().unwrap() >= 1.0,
        "the refreshed fragment still lists the tasks"
    );
    b.screenshot(&shots.join("tasks.png")).await;

    // Sectors: the list, the search, and sector 1's timeline.
    b.goto(&format!("{base}/ui/sectors")).await;
    let rows = b
        .eval("document.querySelectorAll('#sectors tr[data-sector]').length")
        .await;
    assert_eq!(rows.as_f64(), Some(3.0));
    b.goto(&format!("{base}/ui/sectors?q=2")).await;
    let rows = b.eval("Array.from(document.querySelectorAll('#sectors tr[data-sector]')).map(r => r.dataset.sector).join(',')").await;
    assert_eq!(
        rows,
        Value::String("2".into()),
        "the search finds sector 2 only"
    );
    b.screenshot(&shots.join("sectors.png")).await;
    b.goto(&format!("{base}/ui/sectors/1")).await;
    let steps = b.eval("Array.from(document.querySelectorAll('#timeline tbody tr')).map(r => r.children[1].textContent).join(',')").await;
    let steps = steps.as_str().unwrap();
    assert!(
        steps.contains("Packing") && steps.contains("PreCommit1"),
        "sector 1's timeline: {steps}"
    );
    assert_eq!(
        b.eval("!!document.getElementById('remove')").await,
        Value::Bool(false),
        "no remove button for a read token"
    );
    b.screenshot(&shots.join("sector-1.png")).await;

    // Storage and proving.
    b.goto(&format!("{base}/ui/storage")).await;
    let paths = b
        .eval("document.querySelectorAll('#storage tbody tr').length")
        .await;
    assert!(paths.as_f64().unwrap() >= 1.0, "the store path");
    b.screenshot(&shots.join("storage.png")).await;
    b.goto(&format!("{base}/ui/proving")).await;
    let dls = b
        .eval("document.querySelectorAll('#deadlines [data-deadline]').length")
        .await;
    assert_eq!(dls.as_f64(), Some(48.0), "48 deadlines");
    b.screenshot(&shots.join("proving.png")).await;

    let foreign = b.foreign_requests(base);
    assert!(
        b.errors.is_empty(),
        "the pages logged errors (a blocked resource, a script error): {:?}",
        b.errors
    );
    assert!(
        foreign.is_empty(),
        "the pages asked for non-local URLs: {foreign:?}"
    );
    assert!(
        b.requested.iter().any(|u| u.ends_with("/ui/static/ui.js")),
        "requests seen: {:?}",
        browser::tally(&b.requested)
    );
    eprintln!("dashboard screenshots in {}", shots.display());
}
