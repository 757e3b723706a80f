//! The metadata scale check: a large miner's sector records in the sealer's RocksDB, written
//! through the sealer's own state machine and store, then the sealer started on them.

use std::time::{Duration, Instant};

use api::methods as m;
use api::SectorState;
use proofs::{PhaseOutput, PieceInfo, SealedCommitments};
use resources::{SealProof, SectorRef};
use sealer::fsm::{Event, Sector};
use testkit::Repo;

/// Sectors left in each state whose resumption queues a task (the rest are Proving):
/// 10,000 in PreCommit1 (the filtered list the issue times), 1,000 in each other.
const SEALING: [(SectorState, u64); 5] = [
    (SectorState::PreCommit1, 10_000),
    (SectorState::PreCommit2, 1_000),
    (SectorState::Committing, 1_000),
    (SectorState::FinalizeSector, 1_000),
    (SectorState::Packing, 1_000),
];

/// Sector `n` moved along the happy path by its events until it reaches `want`.
fn sector_in(n: u64, want: SectorState) -> Sector {
    let mut s = Sector::new(SectorRef::new(1000, n, SealProof::StackedDrg2KiBV1_1));
    // Outputs the size of the mock engine's; a real 32GiB PC1 output is a few KiB.
    let out = || PhaseOutput {
        engine: proofs::EngineKind::Mock,
        data: vec![7; 64],
    };
    let comms = SealedCommitments {
        comm_d: [1; 32],
        comm_r: [2; 32],
    };
    let piece = PieceInfo {
        size: 2032,
        commitment: [3; 32],
    };
    let events = [
        Event::PieceAdded(piece),
        Event::Ticket(1, [4; 32]),
        Event::PreCommit1Done(out()),
        Event::PreCommit2Done(comms),
        Event::PreCommitSent(format!("bafy2bzaceprecommit{n}")),
        Event::PreCommitLanded(3),
        Event::Seed(13, [5; 32]),
        Event::Commit1Done(out()),
        Event::ProofReady(vec![6; 192]),
        Event::CommitSent(format!("bafy2bzacecommit{n}")),
        Event::CommitLanded(15),
        Event::Finalized,
    ];
    for e in events {
        if s.state == want {
            break;
        }
        s.apply(e, 3).expect("the happy path");
    }
    assert_eq!(s.state, want, "sector {n}");
    s
}

pub async fn run(total: u64) {
    let node = crate::ChainNode::start();
    let repo = Repo::init_without_sealing(false, |c| {
        c.chain.mode = "lotus".into();
        c.chain.api_info = node.info.clone();
        c.chain.other_network_power = "1TiB".into();
    });
    // Once, so that the devnet and the miner exist; then stopped.
    let mut d = repo.start();
    let base_rss = crate::rss_mib(d.child.id());
    d.kill9();

    let t = Instant::now();
    let db = db::Db::open(&repo.path().join("datastore")).unwrap();
    let sectors = sealer::sectors::Sectors::load(db.clone(), 3).unwrap();
    let sealing: u64 = SEALING.iter().map(|(_, k)| k).sum();
    let mut n = 0;
    let mut batch = Vec::new();
    for (state, count) in SEALING
        .iter()
        .copied()
        .chain([(SectorState::Proving, total.saturating_sub(sealing))])
    {
        for _ in 0..count {
            n += 1;
            batch.push(sector_in(n, state));
            if batch.len() == 50_000 {
                sectors.import(std::mem::take(&mut batch)).unwrap();
            }
        }
    }
    sectors.import(batch).unwrap();
    drop(sectors);
    drop(db);
    let size = dir_mib(&repo.path().join("datastore"));
    println!(
        "\n[meta] {n} sectors written through the state machine and `Sectors` in {:.1} s ({sealing} sealing, the rest Proving); datastore {size} MiB",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let d = repo.start();
    let serving = t.elapsed();
    let pid = d.child.id();
    // Every sealing sector resumed: its task waits in the queue (the sealer runs none itself),
    // or it waits for a worker that can rebuild its files (those of its seeded state are not on
    // any disk: Packing and PreCommit1 ones go to AP, after the restart's grace period; the
    // others to RebuildWait).
    let queued = || {
        let m = testkit::metric_samples(
            &tokio::task::block_in_place(|| repo.http_get("/metrics", "read")).1,
        );
        m.iter()
            .filter(|(k, _)| {
                k.starts_with("sealer_sched_queue_tasks")
                    || k.as_str() == "sealer_sealing_sectors{sector_state=\"RebuildWait\"}"
            })
            .map(|(_, v)| *v as u64)
            .sum::<u64>()
    };
    let mut last = 0;
    while t.elapsed() < Duration::from_secs(600) {
        last = queued();
        if last >= sealing {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let resumed = t.elapsed();
    println!(
        "  sealer run: answering the API after {:.2} s; {last} of {sealing} sealing sectors resumed (a task queued, or waiting for a worker to rebuild) after {:.2} s",
        serving.as_secs_f64(),
        resumed.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = crate::rss_mib(pid);
    println!(
        "  sealer RSS {rss} MiB (a fresh sealer without sectors: {base_rss} MiB): {:.2} KiB per sector",
        (rss.saturating_sub(base_rss)) as f64 * 1024.0 / n as f64
    );
    let info = repo.ok(&["auth", "api-info", "--perm", "admin"]);
    let info = api::ApiInfo::parse(info.trim().trim_start_matches("MINER_API_INFO=")).unwrap();
    let client = api::Client::new(&info, Duration::from_secs(120));
    let mut rows = 0;
    let mut rpc = Vec::new();
    let mut cli = Vec::new();
    for _ in 0..10 {
        let a = Instant::now();
        let page = client
            .request::<m::SectorsListPage>((vec![SectorState::Packing], 0, 0, Some(true)))
            .await
            .unwrap();
        rpc.push(a.elapsed().as_secs_f64() * 1000.0);
        assert!(page.rows.len() >= 10_000, "{} rows", page.rows.len());
        rows = page.rows.len();
        let a = Instant::now();
        let out =
            tokio::task::block_in_place(|| repo.ok(&["sectors", "list", "--states", "Packing"]));
        cli.push(a.elapsed().as_secs_f64() * 1000.0);
        assert!(out.lines().count() > rows, "{}", out.lines().count());
    }
    let a = Instant::now();
    let all = client
        .request::<m::SectorsListPage>((Vec::new(), 0, 0, None))
        .await
        .unwrap();
    let whole = a.elapsed();
    println!(
        "  `sectors list --states Packing` ({rows} rows: the PreCommit1 ones went back to AP, their files not being anywhere), 10 times: the RPC p50 {:.0} ms, max {:.0} ms; the CLI p50 {:.0} ms, max {:.0} ms; every sector ({} rows) in one call: {:.0} ms",
        crate::pct(&rpc, 50.0),
        rpc.iter().cloned().fold(0.0, f64::max),
        crate::pct(&cli, 50.0),
        cli.iter().cloned().fold(0.0, f64::max),
        all.rows.len(),
        whole.as_secs_f64() * 1000.0
    );
    println!(
        "  sealer CPU {:.1} s so far, RSS {} MiB",
        crate::cpu_s(pid),
        crate::rss_mib(pid)
    );
    // `META_HOLD_S`: the sealer kept serving this long, to look at it from outside.
    let hold = crate::env_or("META_HOLD_S", 0);
    if hold > 0 {
        println!(
            "  the sealer serves for {hold} s more (META_HOLD_S): sealer --repo {} ...",
            repo.path().display()
        );
        tokio::time::sleep(Duration::from_secs(hold)).await;
    }
    tokio::task::block_in_place(|| drop(d));
}

fn dir_mib(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|r| {
            r.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum::<u64>()
        })
        .unwrap_or(0)
        >> 20
}
