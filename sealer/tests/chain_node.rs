//! The devnet node seen from outside the sealer: a Lotus client no one here wrote
//! (iso-filecoin's RPC, run with node) reads the node with the token `sealer` printed and gets
//! the facts the sealer shows; it recomputes the CID of every message the sealer sent from the
//! node's Lotus JSON.

use testkit as common;

use std::time::Duration;

use common::{field, Repo};

#[test]
fn a_third_party_lotus_client_reads_what_the_sealer_shows() {
    let Some(vectors) = common::vectors_dir() else {
        return;
    };
    let repo = Repo::init(false, |c| {
        c.chain.wpost_challenge_window = 4;
        c.chain.other_network_power = "0".into();
    });
    let _d = repo.start();
    repo.attach_paths();
    repo.ok(&["sectors", "pledge"]);
    repo.wait_states(&[1], Duration::from_secs(60), |s| s[0] == "Proving");
    // Proven at least once: a SubmitWindowedPoSt is on chain too.
    let start = std::time::Instant::now();
    let post_msg = loop {
        let dl = repo.deadlines();
        if let Some(m) = dl
            .deadlines
            .iter()
            .filter_map(|d| d.last_run.as_ref())
            .find(|r| r.outcome == "proven")
            .and_then(|r| r.message.clone())
        {
            break m;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{dl:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let status = repo.ok(&["sectors", "status", "--on-chain-info", "1"]);
    let (pc, commit) = (field(&status, "Precommit:"), field(&status, "Commit:"));
    let sent = [pc.clone(), commit.clone(), post_msg.clone()];
    let v = common::third_party_read(&vectors, &repo, &[1], &sent);
    assert_eq!(
        v["sectors"]["1"]["sealedCid"],
        field(&status, "SealedCID:"),
        "{v}\n{status}"
    );
    assert_eq!(
        v["sectors"]["1"]["activation"].to_string(),
        field(&status, "Activation:"),
        "{v}\n{status}"
    );
    let deadline = field(&status, "Deadline:");
    let parts = &v["partitions"][&deadline];
    assert!(
        parts.is_array(),
        "deadline {deadline} has no partition: {v}"
    );
    assert_eq!(v["miner"]["sectorSize"], 2048, "{v}");
    assert!(
        v["miner"]["worker"].as_str().unwrap().starts_with("t0"),
        "{v}"
    );
    assert!(
        v["miner"]["workerKey"].as_str().unwrap().starts_with("t3"),
        "{v}"
    );
    assert_eq!(v["deadline"]["window"], 4, "{v}");
    // Every message the sealer sent, named the same by iso-filecoin from the node's JSON.
    let methods: Vec<u64> = [&pc, &commit, &post_msg]
        .iter()
        .map(|c| v["messages"][c.as_str()]["method"].as_u64().unwrap())
        .collect();
    assert_eq!(methods, vec![28, 34, 5], "{v}");
    for c in [&pc, &commit, &post_msg] {
        // Sent from the worker's key address, which StateMinerInfo names by its ID.
        let from = &v["messages"][c.as_str()]["from"];
        assert_eq!(from, &v["miner"]["workerKey"], "{v}");
        assert_eq!(v["messages"][c.as_str()]["to"], "t01000", "{v}");
    }
    // The head the sealer shows is the node's (the client read it later: same or higher).
    let head = repo.ok(&["chain", "head"]);
    let sealer_height: i64 = head.split(':').next().unwrap().trim().parse().unwrap();
    assert!(
        v["head"]["height"].as_i64().unwrap() <= sealer_height,
        "{v} {head}"
    );
}

/// `sealer devnet-node` on `port`, its state in `dir`: killed when dropped.
struct NodeProc {
    child: std::process::Child,
}

impl NodeProc {
    fn start(dir: &std::path::Path, port: u16) -> NodeProc {
        let _ = std::fs::remove_file(dir.join("fullnode_api"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.with_extension("log"))
            .unwrap();
        let child = std::process::Command::new(common::bin())
            .arg("devnet-node")
            .arg("--dir")
            .arg(dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args([
                "--block-delay",
                "500ms",
                "--pre-commit-challenge-delay",
                "3",
            ])
            .args(["--other-network-power", "0", "--mock"])
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while !dir.join("fullnode_api").exists() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "devnet-node did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        NodeProc { child }
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(repo: &Repo, n: u64, states: &[&str]) -> String {
    let start = std::time::Instant::now();
    loop {
        let s = repo.state(n);
        if states.contains(&s.as_str()) {
            return s;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "sector {n}: {s}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_sealer_survives_its_own_kill_and_its_nodes_restart_and_sends_each_message_once() {
    let (node_dir, port) = (tempfile::tempdir().unwrap(), free_port());
    let state = node_dir.path().join("node");
    let mut node = NodeProc::start(&state, port);
    let info = std::fs::read_to_string(state.join("fullnode_api")).unwrap();
    let repo = Repo::init(false, |c| {
        c.chain.mode = "lotus".into();
        c.chain.api_info = info.trim().to_string();
    });
    let mut d = repo.start();
    repo.attach_paths();
    repo.ok(&["sectors", "pledge"]);
    // Killed between MpoolPushMessage and the receipt: the restarted sealer waits for that
    // message, sends no second one.
    wait_for(&repo, 1, &["PreCommitWait"]);
    d.kill9();
    let mut d = repo.start();
    wait_for(
        &repo,
        1,
        &["WaitSeed", "Committing", "SubmitCommit", "CommitWait"],
    );
    // The node stopped and started again under the running sealer: it waits and carries on.
    drop(node);
    std::thread::sleep(Duration::from_secs(2));
    node = NodeProc::start(&state, port);
    wait_for(&repo, 1, &["Proving"]);
    assert!(
        d.log().contains("unreachable") && d.log().contains("reached again"),
        "{}",
        d.log_lines(&["chain node"])
    );
    d.kill9();
    drop(node);
    let db = db::Db::open(&state.join("datastore")).unwrap();
    let sent = chain::devnet::stored_messages(&db).unwrap();
    let count = |method: lotus::miner::Method| {
        sent.iter()
            .filter(|m| m.message.method_num == method.number())
            .count()
    };
    assert_eq!(
        (
            count(lotus::miner::Method::PreCommitSectorBatch2),
            count(lotus::miner::Method::ProveCommitSectors3)
        ),
        (1, 1),
        "{sent:?}"
    );
}

#[test]
fn init_against_a_node_reads_the_miner_from_the_chain_and_refuses_what_is_wrong() {
    let (node_dir, port) = (tempfile::tempdir().unwrap(), free_port());
    let state = node_dir.path().join("node");
    let _node = NodeProc::start(&state, port);
    let info = std::fs::read_to_string(state.join("fullnode_api")).unwrap();
    let token = info.trim().split_once(':').unwrap().0.to_string();
    let url = format!("http://127.0.0.1:{port}");
    let init = |extra: &[&str]| {
        let repo = Repo {
            dir: tempfile::tempdir().unwrap(),
        };
        let mut args = vec!["init", "--node-url", &url, "--auth-token", &token];
        args.extend_from_slice(extra);
        let out = repo.cli(&args);
        (repo, out)
    };
    // The sector size and addresses come from the chain; the repo seals on that node.
    let (repo, out) = init(&["--actor", "t01000"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("network sealer-devnet")
            && text.contains("Miner t01000: 2KiB sectors; owner t0100, worker t0100 (key t3"),
        "{text}"
    );
    let cfg = std::fs::read_to_string(repo.config()).unwrap();
    assert!(
        cfg.contains("Mode = \"lotus\"") && cfg.contains("SectorSize = \"2KiB\""),
        "{cfg}"
    );
    assert!(
        cfg.contains(&format!("/ip4/127.0.0.1/tcp/{port}/http")),
        "{cfg}"
    );
    // What is wrong is named, and no repo is made.
    for (args, says) in [
        (
            vec!["--actor", "t09999"],
            "actor t09999 not found on sealer-devnet",
        ),
        (
            vec!["--actor", "t01000", "--sector-size", "8MiB"],
            "t01000 has 2KiB sectors on sealer-devnet, not 8MiB",
        ),
    ] {
        let (repo, out) = init(&args);
        assert!(!out.status.success());
        let err = common::stderr(&out);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!repo.config().exists());
    }

    // Without --actor, the miner is created as `lotus-miner init` does: CreateMiner from the
    // owner (the node's default wallet address), the worker a new BLS key of the node's wallet.
    let api_info = api::ApiInfo::parse(info.trim()).unwrap();
    let node = api::Client::new_at(&api_info, api::fullnode::PATH, Duration::from_secs(30));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let owner = rt
        .block_on(node.request::<api::fullnode::WalletDefaultAddress>(()))
        .unwrap()
        .0
        .to_string();
    let new_key = |kind: &str| {
        rt.block_on(node.request::<api::fullnode::WalletNew>((kind.to_string(),)))
            .unwrap()
            .0
            .to_string()
    };
    // (This process writes addresses with the mainnet prefix; the sealer with the node's.)
    let worker = new_key("bls");
    let key = &worker[1..];
    let create = [
        "--owner",
        &owner,
        "--worker",
        &worker,
        "--sector-size",
        "2KiB",
    ];
    let (repo, out) = init(&create);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("Created miner t01001"), "{text}");
    assert!(
        text.contains(&format!(
            "Miner t01001: 2KiB sectors; owner t0101, worker t0102 (key t{key})"
        )),
        "{text}"
    );
    let cfg = std::fs::read_to_string(repo.config()).unwrap();
    assert!(cfg.contains("Actor = \"t01001\""), "{cfg}");
    // A worker key that is not BLS: the power actor refuses it, and init says so.
    let secp = new_key("secp256k1");
    let create = [
        "--owner",
        &owner,
        "--worker",
        &secp,
        "--sector-size",
        "2KiB",
    ];
    let (repo, out) = init(&create);
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(
        err.contains("CreateMiner from") && err.contains("exit code 16 (illegal argument)"),
        "{err}"
    );
    assert!(!repo.config().exists());
}

#[test]
fn a_reorg_on_the_node_that_drops_the_pre_commit_has_the_sealer_send_it_again() {
    let (node_dir, port) = (tempfile::tempdir().unwrap(), free_port());
    let state = node_dir.path().join("node");
    let _node = NodeProc::start(&state, port);
    let info = std::fs::read_to_string(state.join("fullnode_api")).unwrap();
    let api_info = api::ApiInfo::parse(info.trim()).unwrap();
    let node = api::Client::new_at(&api_info, api::fullnode::PATH, Duration::from_secs(30));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let height = || {
        rt.block_on(node.request::<api::fullnode::ChainHead>(()))
            .unwrap()
            .height
    };
    let repo = Repo::init(false, |c| {
        c.chain.mode = "lotus".into();
        c.chain.api_info = info.trim().to_string();
    });
    let _d = repo.start();
    repo.attach_paths();
    // Far enough from genesis for a reorg of 3 epochs.
    let start = std::time::Instant::now();
    while height() < 4 {
        assert!(start.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
    }
    repo.ok(&["sectors", "pledge"]);
    // The pre-commit lands (500 ms epochs, 5 of confidence): the node takes 3 epochs back and
    // drops its messages.
    let miner = lotus::json::wire::Addr(lotus::Address::new_id(1000));
    let start = std::time::Instant::now();
    loop {
        let pc = rt
            .block_on(node.request::<api::fullnode::StateSectorPreCommitInfo>((
                miner,
                1,
                Default::default(),
            )))
            .unwrap();
        if pc.is_some() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no pre-commit");
        std::thread::sleep(Duration::from_millis(20));
    }
    let gone = rt
        .block_on(node.request::<api::fullnode::DevnetRevert>((3, true)))
        .unwrap();
    assert_eq!(gone.0.len(), 1, "{gone:?}");
    wait_for(&repo, 1, &["Proving"]);
    let log = repo.ok(&["sectors", "status", "1", "--log"]);
    assert_eq!(log.matches("SectorMessageDropped").count(), 1, "{log}");
    assert_eq!(log.matches("SectorPreCommitted").count(), 2, "{log}");
    assert!(!log.contains("SectorFailed"), "{log}");
}
