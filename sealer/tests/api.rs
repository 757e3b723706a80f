//! Auth and bad input on the JSON-RPC endpoint; config errors.

use testkit as common;

use common::{stderr, Repo};
use serde_json::{json, Value};

fn post(url: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let c = reqwest::blocking::Client::new();
    let mut r = c
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().unwrap();
    let status = resp.status().as_u16();
    let v = serde_json::from_str(&resp.text().unwrap()).unwrap_or(Value::Null);
    (status, v)
}

#[test]
fn auth_and_bad_input_get_clear_errors_and_the_daemon_keeps_answering() {
    let repo = Repo::init(false, |_| {});
    let d = repo.start();
    let info = repo.ok(&["auth", "api-info", "--perm", "admin"]);
    let info = info
        .trim()
        .strip_prefix("MINER_API_INFO=")
        .expect("MINER_API_INFO=")
        .to_string();
    let parsed = api::ApiInfo::parse(&info).unwrap();
    assert!(
        info.contains(":/ip4/127.0.0.1/tcp/") && info.ends_with("/http"),
        "{info}"
    );
    let url = parsed.url();
    let read = repo.ok(&["auth", "create-token", "--perm", "read"]);
    let read = read.trim();
    let admin = parsed.token.as_str();
    let call = |m: &str, p: Value| {
        json!({"jsonrpc": "2.0", "id": 1, "method": m, "params": p}).to_string()
    };

    let (st, v) = post(&url, None, &call("Filecoin.SectorsList", json!([])));
    assert_eq!(st, 401, "{v}");
    let (st, _) = post(
        &url,
        Some("not.a.token"),
        &call("Filecoin.SectorsList", json!([])),
    );
    assert_eq!(st, 401);
    let (st, v) = post(&url, Some(read), &call("Filecoin.SectorsList", json!([])));
    assert_eq!((st, v["result"].clone()), (200, json!([])));
    let (st, v) = post(&url, Some(read), &call("Filecoin.SectorRemove", json!([1])));
    assert_eq!(st, 403, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("need 'admin'"),
        "{v}"
    );
    let (st, v) = post(&url, Some(read), &call("Filecoin.PledgeSector", json!([])));
    assert_eq!(st, 403, "{v}");
    // Admin in lotus-miner's documentation, so here too.
    for (m, p) in [
        ("Filecoin.WorkerJobs", json!([])),
        ("Filecoin.WorkerStats", json!([])),
        ("Filecoin.StorageList", json!([])),
        ("Filecoin.StorageFindSector", json!([1])),
    ] {
        let (st, v) = post(&url, Some(read), &call(m, p.clone()));
        assert_eq!(st, 403, "{m}: {v}");
        // Admin passes (StorageFindSector then says there is no sector 1).
        let (st, v) = post(&url, Some(admin), &call(m, p));
        assert!(
            st == 200 && v["error"]["code"] != json!(2),
            "{m} with admin: {st} {v}"
        );
    }
    let (st, v) = post(&url, Some(admin), "{not json");
    assert_eq!(
        (st, v["error"]["code"].clone()),
        (200, json!(-32700)),
        "{v}"
    );
    let (_, v) = post(&url, Some(admin), &call("Filecoin.NoSuchMethod", json!([])));
    assert_eq!(v["error"]["code"], json!(-32601), "{v}");
    let (_, v) = post(
        &url,
        Some(admin),
        &call("Filecoin.SectorsStatus", json!(["x"])),
    );
    assert_eq!(v["error"]["code"], json!(-32602), "{v}");
    let (_, v) = post(
        &url,
        Some(admin),
        &call("Filecoin.SectorsStatus", json!([99])),
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sector 99 not found"),
        "{v}"
    );
    let (_, v) = post(&url, Some(admin), "[]");
    assert_eq!(v["error"]["code"], json!(-32600), "{v}");
    // Still answering, through MINER_API_INFO too.
    let out = std::process::Command::new(common::bin())
        .args(["chain", "head"])
        .env("MINER_API_INFO", &info)
        .env("SEALER_PATH", "/nonexistent")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    drop(d);

    // A bad value in the config: the daemon refuses to start and names the key and the file.
    let cfg = std::fs::read_to_string(repo.config()).unwrap();
    std::fs::write(
        repo.config(),
        cfg.replace("SectorSize = \"2KiB\"", "SectorSize = \"3KiB\""),
    )
    .unwrap();
    let out = repo.cli(&["run"]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains("Miner.SectorSize") && e.contains("config.toml") && e.contains("3KiB"),
        "{e}"
    );
    std::fs::write(
        repo.config(),
        cfg.replace("SectorSize = \"2KiB\"", "SectorSizes = \"2KiB\""),
    )
    .unwrap();
    let e = stderr(&repo.cli(&["run"]));
    assert!(
        e.contains("SectorSizes") && e.contains("config.toml"),
        "{e}"
    );

    // A valid size that does not match the miner on chain: the daemon runs, the pledge is
    // refused with the reason, and the daemon keeps answering.
    std::fs::write(
        repo.config(),
        cfg.replace("SectorSize = \"2KiB\"", "SectorSize = \"8MiB\""),
    )
    .unwrap();
    let d = repo.start();
    let out = repo.cli(&["sectors", "pledge"]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains("2KiB") && e.contains("8MiB") && e.contains("config.toml"),
        "{e}"
    );
    repo.ok(&["chain", "head"]);
    drop(d);
}

/// What a newcomer trips on when deploying: a sealer on every interface with no advertised
/// address, `storage attach --groups/--allow-to`, the advertised address in `api-info`, and the
/// effective config in the start-up log.
#[test]
fn deployment_settings_are_checked_and_shown() {
    // 0.0.0.0 with RemoteListenAddress empty: refused before anything listens.
    let repo = Repo::init(false, |c| {
        c.api.listen_address = "/ip4/0.0.0.0/tcp/0/http".into();
    });
    let out = repo.cli(&["run"]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains("API.RemoteListenAddress")
            && e.contains("config.toml")
            && e.contains("every interface"),
        "{e}"
    );

    // An advertised address: api-info gives it to other machines; the store's URL uses it.
    let repo = Repo::init(false, |c| {
        c.api.remote_listen_address = "sealer.lan:2345".into();
        c.sealing.max_sealing_sectors = 7;
    });
    let d = repo.start();
    let info = repo.ok(&["auth", "api-info", "--perm", "admin"]);
    assert!(
        info.trim().ends_with(":/dns/sealer.lan/tcp/2345/http"),
        "{info}"
    );
    // One block at start: every section with the values in force, and what the env decides.
    let log = d.log();
    let block = log
        .split("effective config")
        .nth(1)
        .unwrap_or_else(|| panic!("no effective config in the log: {log}"));
    for want in [
        "[API]",
        "RemoteListenAddress = \"sealer.lan:2345\"",
        "MaxSealingSectors = 7",
        "[Proofs]",
        "proof engine: mock",
        "parameter cache:",
    ] {
        assert!(block.contains(want), "{want}: {block}");
    }

    // storage attach --groups / --allow-to, as lotus-miner takes them.
    let p = repo.path().join("grouped");
    std::fs::create_dir_all(&p).unwrap();
    repo.ok(&[
        "storage",
        "attach",
        "--init",
        "--store",
        "--groups",
        "g1,g2",
        "--groups",
        "g3",
        "--allow-to",
        "g1",
        p.to_str().unwrap(),
    ]);
    let meta: Value =
        serde_json::from_slice(&std::fs::read(p.join("sectorstore.json")).unwrap()).unwrap();
    assert_eq!(meta["Groups"], json!(["g1", "g2", "g3"]), "{meta}");
    assert_eq!(meta["AllowTo"], json!(["g1"]), "{meta}");
    drop(d);
}
