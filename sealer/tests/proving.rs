//! WindowPoSt on the local chain with the mock engine: deadlines proven, a removed sealed file
//! found by `proving check`, declared faulty ahead of its deadline (power drops), then recovered
//! once the file is back (power returns); WinningPoSts answer elections.

mod common;

use std::time::{Duration, Instant};

use common::Repo;
use serde_json::Value;

fn deadlines(repo: &Repo) -> Value {
    // The CLI's tables are for people; the test reads the same RPC through `proving` output and
    // the raw numbers through `info`.
    let out = repo.ok(&["proving", "deadlines"]);
    let mut rows = Vec::new();
    for l in out.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        rows.push(serde_json::json!({
            "Index": f[0].parse::<u64>().unwrap(),
            "Sectors": f[3].parse::<u64>().unwrap(),
            "Faults": f[4].parse::<u64>().unwrap(),
            "Last": f[6..].join(" "),
        }));
    }
    Value::Array(rows)
}

fn power_sectors(repo: &Repo) -> u64 {
    let out = repo.ok(&["proving", "info"]);
    common::field(&out, "Power:")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn wait(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn deadlines_are_proven_a_lost_file_is_declared_faulty_and_recovers() {
    let repo = Repo::init(false, |c| {
        c.chain.wpost_challenge_window = 3; // 48 x 3 epochs x 100 ms: a 14.4 s proving period
        c.chain.other_network_power = "0".into(); // elected every epoch
    });
    let d = repo.start();
    repo.attach_paths();
    repo.ok(&["sectors", "pledge"]);
    repo.ok(&["sectors", "pledge"]);
    repo.wait_states(&[1, 2], Duration::from_secs(60), |s| {
        s.iter().all(|x| x == "Proving")
    });
    assert_eq!(power_sectors(&repo), 2);
    // Both sectors' deadlines get proven within a proving period.
    let with_sectors = |v: &Value| -> Vec<Value> {
        v.as_array()
            .unwrap()
            .iter()
            .filter(|d| d["Sectors"].as_u64().unwrap() > 0)
            .cloned()
            .collect()
    };
    wait(Duration::from_secs(40), "both deadlines proven", || {
        let v = deadlines(&repo);
        let ds = with_sectors(&v);
        !ds.is_empty()
            && ds
                .iter()
                .all(|d| d["Last"].as_str().unwrap().starts_with("proven"))
    });
    let v = deadlines(&repo);
    let ds = with_sectors(&v);
    // Which deadline holds sector 1: the one `proving check` names it in.
    let sealed = repo.path().join("store").join("sealed").join("s-t01000-1");
    assert!(sealed.exists());
    let moved = repo.path().join("s-t01000-1.away");
    std::fs::rename(&sealed, &moved).unwrap();
    let mut dl1 = None;
    for d in &ds {
        let i = d["Index"].as_u64().unwrap();
        let out = repo.ok(&["proving", "check", &i.to_string()]);
        if out.contains("sector 1:") {
            dl1 = Some(i);
        } else {
            assert!(out.contains("all can be proven"), "{out}");
        }
    }
    let dl1 = dl1.expect("proving check names sector 1");
    // Declared faulty ahead of its deadline: power drops by one sector; the other still proven.
    wait(Duration::from_secs(40), "sector 1 faulty", || {
        repo.ok(&["proving", "faults"]).lines().skip(1).any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f[0] == dl1.to_string() && f[2] == "1"
        })
    });
    assert_eq!(power_sectors(&repo), 1);
    assert!(d.log().contains("declaring faults"), "{}", d.log());
    // The file is back: recovered at a following deadline, power returns.
    std::fs::rename(&moved, &sealed).unwrap();
    wait(Duration::from_secs(60), "power back", || {
        power_sectors(&repo) == 2
    });
    assert!(d.log().contains("declaring recoveries"), "{}", d.log());
    let info = repo.ok(&["proving", "info"]);
    assert!(info.contains("Faulty Sectors:          0"), "{info}");
    // With no other power on the devnet the miner is elected every epoch; its WinningPoSts
    // (mock) land in time and count as blocks won.
    let won: u64 = common::field(&info, "Blocks Won:")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(won > 0, "{info}");
    drop(d);
}
