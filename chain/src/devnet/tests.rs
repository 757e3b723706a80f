//! The local chain: messages, activation, and keeping power with WindowPoSt.
use super::*;
use crate::Partitions;
use proofs::MockEngine;
use proofs::SealedCommitments;
use resources::SealProof;

#[tokio::test]
async fn precommit_then_provecommit_activates_and_bad_proof_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let engine: Arc<dyn Engine> = Arc::new(MockEngine::new());
    let chain = LocalChain::open(
        db.clone(),
        engine.clone(),
        Duration::from_secs(3600),
        2,
        10,
        0,
    )
    .unwrap();
    chain.ensure_miner(1000, SectorSize::S2KiB).await.unwrap();
    assert!(chain.ensure_miner(1000, SectorSize::S8MiB).await.is_err());
    let sector = SectorRef::new(1000, 1, SealProof::StackedDrg2KiBV1_1);
    let comms = SealedCommitments {
        comm_d: [1; 32],
        comm_r: [2; 32],
    };
    chain.advance().await.unwrap();
    let id = chain
        .push(Message::PreCommit {
            sector,
            comms,
            ticket_epoch: 1,
        })
        .await
        .unwrap();
    assert_eq!(chain.receipt(&id).await.unwrap(), None);
    assert_eq!(chain.advance().await.unwrap(), 2);
    assert_eq!(chain.receipt(&id).await.unwrap().unwrap().exit_code, 0);
    let pc = chain.precommit(&sector).await.unwrap().unwrap();
    assert_eq!(pc.precommit_epoch, 2);
    // A proof that does not verify is refused and adds no power.
    let bad = chain
        .push(Message::ProveCommit {
            sector,
            proof: b"MOCK garbage".to_vec(),
        })
        .await
        .unwrap();
    for _ in 0..3 {
        chain.advance().await.unwrap();
    }
    let r = chain.receipt(&bad).await.unwrap().unwrap();
    assert_ne!(r.exit_code, 0, "{r:?}");
    assert_eq!(chain.power(1000).await.unwrap().sectors, 0);
    // Randomness is stable and refused for the future.
    let t = chain.randomness(RandKind::Ticket, 1).await.unwrap();
    assert_eq!(t, chain.randomness(RandKind::Ticket, 1).await.unwrap());
    assert!(chain.randomness(RandKind::Seed, 100).await.is_err());
    // Restart: the head and state survive.
    drop(chain);
    let chain = LocalChain::open(db, engine, Duration::from_secs(3600), 2, 10, 0).unwrap();
    assert_eq!(chain.head().await.unwrap().height, 5);
    assert!(chain.precommit(&sector).await.unwrap().is_some());
}

/// Sends `msg` and mines the epoch it lands in: its receipt.
async fn land(chain: &LocalChain, msg: Message) -> Receipt {
    let id = chain.push(msg).await.unwrap();
    chain.advance().await.unwrap();
    chain.receipt(&id).await.unwrap().unwrap()
}

/// Mines epochs until the head is at least `epoch`.
async fn advance_to(chain: &LocalChain, epoch: i64) {
    while chain.head().await.unwrap().height < epoch {
        chain.advance().await.unwrap();
    }
}

/// Seals `sector` with the mock engine under `dir`, pre-commits and prove-commits it, and
/// advances until it is active. Returns what a WindowPoSt needs.
async fn activate(
    chain: &LocalChain,
    engine: &Arc<dyn Engine>,
    dir: &std::path::Path,
    sector: SectorRef,
) -> proofs::PoStSector {
    let d = dir.join(sector.number.to_string());
    std::fs::create_dir_all(&d).unwrap();
    let (u, s, c) = (d.join("unsealed"), d.join("sealed"), d.join("cache"));
    let paths = proofs::SealPaths {
        unsealed: &u,
        sealed: &s,
        cache: &c,
    };
    let cap = proofs::unpadded_capacity(&sector);
    let piece = engine
        .add_piece(&sector, &u, &proofs::PieceData::Zeros, cap, &[])
        .unwrap();
    let ticket_epoch = chain.head().await.unwrap().height;
    let ticket = chain
        .randomness(RandKind::Ticket, ticket_epoch)
        .await
        .unwrap();
    let pc1 = engine
        .pre_commit1(&sector, paths, &ticket, &[piece])
        .unwrap();
    let comms = engine.pre_commit2(&sector, paths, &pc1).unwrap();
    let r = land(
        chain,
        Message::PreCommit {
            sector,
            comms,
            ticket_epoch,
        },
    )
    .await;
    assert_eq!(r.exit_code, 0, "{r:?}");
    let pc = chain.precommit(&sector).await.unwrap().unwrap();
    let seed_epoch = pc.precommit_epoch + chain.precommit_challenge_delay();
    advance_to(chain, seed_epoch).await;
    let seed = chain.randomness(RandKind::Seed, seed_epoch).await.unwrap();
    let c1 = engine
        .commit1(&sector, paths, &ticket, &seed, &comms, &[piece])
        .unwrap();
    let proof = engine.commit2(&sector, &c1).unwrap();
    let r = land(chain, Message::ProveCommit { sector, proof }).await;
    assert_eq!(r.exit_code, 0, "{r:?}");
    proofs::PoStSector {
        sector,
        comm_r: comms.comm_r,
        sealed: s,
        cache: c,
    }
}

/// Advances to the next opening of `deadline` and lands a WindowPoSt over `sectors` in it.
async fn prove(
    chain: &LocalChain,
    engine: &Arc<dyn Engine>,
    deadline: u64,
    sectors: &[proofs::PoStSector],
) -> Receipt {
    let w = chain.wpost_window();
    let head = chain.head().await.unwrap().height;
    let d = crate::next_opening(deadline, head + 1, w);
    advance_to(chain, d.open).await;
    let rand = chain
        .randomness(RandKind::WindowPoSt, d.challenge)
        .await
        .unwrap();
    let proof = engine.generate_window_post(1000, &rand, sectors).unwrap();
    land(
        chain,
        Message::SubmitWindowedPoSt {
            miner: 1000,
            deadline,
            partitions: vec![0],
            skipped: vec![],
            proof,
        },
    )
    .await
}

#[tokio::test]
async fn window_post_keeps_power_a_missed_deadline_loses_it_and_a_recovery_brings_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let engine: Arc<dyn Engine> = Arc::new(MockEngine::new());
    let chain = LocalChain::open(db, engine.clone(), Duration::from_secs(3600), 1, 2, 0).unwrap();
    chain.ensure_miner(1000, SectorSize::S2KiB).await.unwrap();
    chain.advance().await.unwrap();
    let s1 = activate(
        &chain,
        &engine,
        dir.path(),
        SectorRef::new(1000, 1, SealProof::StackedDrg2KiBV1_1),
    )
    .await;
    let a = chain.active_sector(&s1.sector).await.unwrap().unwrap();
    let head = chain.head().await.unwrap().height;
    let now = crate::deadline_at(head, 2).index;
    assert!(
        a.deadline != now && a.deadline != (now + 1) % 48,
        "{a:?} at {head}"
    );
    assert_eq!(chain.power(1000).await.unwrap().sectors, 1);
    // A proof before the deadline opens is refused; one in it is accepted, twice in a row.
    let early = land(
        &chain,
        Message::SubmitWindowedPoSt {
            miner: 1000,
            deadline: a.deadline,
            partitions: vec![0],
            skipped: vec![],
            proof: b"MOCK".to_vec(),
        },
    )
    .await;
    let r = early;
    assert!(r.error.contains("is not open"), "{r:?}");
    for _ in 0..2 {
        let r = prove(&chain, &engine, a.deadline, std::slice::from_ref(&s1)).await;
        assert_eq!(r.exit_code, 0, "{r:?}");
        let close = crate::deadline_at(r.epoch, 2).close;
        advance_to(&chain, close + 1).await;
        assert_eq!(chain.power(1000).await.unwrap().sectors, 1);
    }
    // A whole period without a proof: the sector is faulty and its power gone.
    for _ in 0..(48 * 2) {
        chain.advance().await.unwrap();
    }
    assert_eq!(chain.power(1000).await.unwrap().sectors, 0);
    let dls = chain.deadlines(1000).await.unwrap();
    let tally = chain.tally(1000).await.unwrap().unwrap();
    assert!(
        dls[a.deadline as usize].partitions.faults().contains(&1) && tally.missed >= 1,
        "{dls:?} {tally:?}"
    );
    // Recovery declared (outside the deadline's open and next window), then proven.
    let head = chain.head().await.unwrap().height;
    let d = crate::next_opening(a.deadline, head + 6, 2);
    advance_to(&chain, d.open - 6).await;
    let rec = land(
        &chain,
        Message::DeclareFaultsRecovered {
            miner: 1000,
            deadline: a.deadline,
            sectors: vec![1],
        },
    )
    .await;
    assert_eq!(rec.exit_code, 0);
    assert_eq!(chain.power(1000).await.unwrap().sectors, 0);
    let r = prove(&chain, &engine, a.deadline, std::slice::from_ref(&s1)).await;
    assert_eq!(r.exit_code, 0, "{r:?}");
    assert_eq!(chain.power(1000).await.unwrap().sectors, 1);
}

#[tokio::test]
async fn winning_post_counts_a_block_only_when_valid_and_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let engine: Arc<dyn Engine> = Arc::new(MockEngine::new());
    // No other power on the network: elected at every epoch with power.
    let chain = LocalChain::open(db, engine.clone(), Duration::from_secs(3600), 1, 60, 0).unwrap();
    chain.ensure_miner(1000, SectorSize::S2KiB).await.unwrap();
    chain.advance().await.unwrap();
    let h = chain.head().await.unwrap().height;
    assert!(
        !chain.elected(1000, h).await.unwrap(),
        "no power, no election"
    );
    let s1 = activate(
        &chain,
        &engine,
        dir.path(),
        SectorRef::new(1000, 1, SealProof::StackedDrg2KiBV1_1),
    )
    .await;
    let h = chain.head().await.unwrap().height;
    assert!(chain.elected(1000, h).await.unwrap());
    let picked = chain.winning_sectors(1000, h).await.unwrap();
    assert!(!picked.is_empty() && picked.iter().all(|a| a.sector == s1.sector));
    let rand = chain.randomness(RandKind::WinningPoSt, h).await.unwrap();
    let proof = engine
        .generate_winning_post(1000, &rand, std::slice::from_ref(&s1))
        .unwrap();
    // In time: counted.
    let ok = land(
        &chain,
        Message::WinningPoSt {
            miner: 1000,
            epoch: h,
            proof: proof.clone(),
        },
    )
    .await;
    assert_eq!(ok.exit_code, 0);
    assert_eq!(chain.tally(1000).await.unwrap().unwrap().blocks_won, 1);
    // Late (sent for an epoch that has passed) or for another epoch's challenge: refused.
    let late = land(
        &chain,
        Message::WinningPoSt {
            miner: 1000,
            epoch: h,
            proof: proof.clone(),
        },
    )
    .await;
    let r = late;
    assert!(r.error.contains("too late"), "{r:?}");
    let h2 = chain.head().await.unwrap().height;
    let wrong = land(
        &chain,
        Message::WinningPoSt {
            miner: 1000,
            epoch: h2,
            proof,
        },
    )
    .await;
    let r = wrong;
    assert_ne!(r.exit_code, 0, "{r:?}");
    assert_eq!(chain.tally(1000).await.unwrap().unwrap().blocks_won, 1);
}

#[tokio::test]
async fn elections_follow_the_share_of_power() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let engine: Arc<dyn Engine> = Arc::new(MockEngine::new());
    // The rest of the network holds three times this miner's one sector: elected ~1 in 4.
    let chain = LocalChain::open(
        db,
        engine.clone(),
        Duration::from_secs(3600),
        1,
        1000,
        3 * 2048,
    )
    .unwrap();
    chain.ensure_miner(1000, SectorSize::S2KiB).await.unwrap();
    chain.advance().await.unwrap();
    activate(
        &chain,
        &engine,
        dir.path(),
        SectorRef::new(1000, 1, SealProof::StackedDrg2KiBV1_1),
    )
    .await;
    for _ in 0..400 {
        chain.advance().await.unwrap();
    }
    let head = chain.head().await.unwrap().height;
    let mut won = 0;
    for e in head - 399..=head {
        won += chain.elected(1000, e).await.unwrap() as u32;
    }
    assert!(
        (60..=140).contains(&won),
        "elected {won} times in 400 epochs"
    );
}
