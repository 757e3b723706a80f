//! The mock engine behaves like the real one where tests rely on it, and says it is a mock.

mod common;

use common::*;
use proofs::*;
use resources::SectorSize::S2KiB;

#[test]
fn a_sector_seals_proves_and_verifies_and_tampering_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let e = MockEngine::new();
    let s = seal(&e, dir.path(), 1, S2KiB, None);
    let layers = std::fs::read_dir(s.cache()).unwrap().count();
    assert!(
        layers >= 5,
        "the cache holds layers and trees while sealing"
    );
    let seed = [9u8; 32];
    let proof = prove(&e, &s, &seed);
    assert!(proof.starts_with(MOCK_PREFIX), "mock proofs say so");
    assert!(e
        .verify_seal(&s.sector, &s.comms, &s.ticket, &seed, &proof)
        .unwrap());
    let mut bad = proof.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert!(!e
        .verify_seal(&s.sector, &s.comms, &s.ticket, &seed, &bad)
        .unwrap());
    assert!(
        !e.verify_seal(&s.sector, &s.comms, &s.ticket, &[8u8; 32], &proof)
            .unwrap(),
        "another seed"
    );
    e.finalize(&s.sector, &s.cache()).unwrap();
    let kept: Vec<String> = std::fs::read_dir(s.cache())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(kept.len(), 3, "{kept:?}");
}

#[test]
fn window_post_names_the_sector_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let e = MockEngine::new();
    let a = seal(&e, dir.path(), 1, S2KiB, None);
    let b = seal(&e, dir.path(), 2, S2KiB, None);
    let rand = [7u8; 32];
    let sectors = [a.post_sector(), b.post_sector()];
    let proof = e.generate_window_post(MINER, &rand, &sectors).unwrap();
    let public: Vec<PublicSector> = sectors.iter().map(PublicSector::from).collect();
    assert!(e.verify_window_post(MINER, &rand, &public, &proof).unwrap());
    assert!(!e
        .verify_window_post(MINER, &[6u8; 32], &public, &proof)
        .unwrap());
    std::fs::remove_file(b.sealed()).unwrap();
    match e.generate_window_post(MINER, &rand, &sectors) {
        Err(ProofError::FaultySectors(f)) => {
            assert_eq!(f.iter().map(|x| x.0).collect::<Vec<_>>(), vec![2])
        }
        other => panic!("{other:?}"),
    }
    let challenged = e
        .winning_post_challenge(a.sector.proof, MINER, &rand, 2)
        .unwrap();
    assert_eq!(challenged.len(), 1);
    let w = e
        .generate_winning_post(MINER, &rand, &[a.post_sector()])
        .unwrap();
    assert!(e
        .verify_winning_post(MINER, &rand, &[PublicSector::from(&a.post_sector())], &w)
        .unwrap());
}

#[test]
fn unseal_gives_back_the_piece() {
    let dir = tempfile::tempdir().unwrap();
    let e = MockEngine::new();
    let s = check_unseal(&e, dir.path(), 3);
    let (u, sl, c) = s.paths();
    let odd = e.unseal(
        &s.sector,
        seal_paths(&u, &sl, &c),
        &s.ticket,
        &s.comms.comm_d,
        5,
        10,
    );
    assert!(odd.is_err(), "ranges are whole 127-byte units");
}

#[test]
fn outputs_of_one_engine_are_refused_by_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let e = MockEngine::new();
    let s = seal(&e, dir.path(), 4, S2KiB, None);
    let (u, sl, c) = s.paths();
    let c1 = e
        .commit1(
            &s.sector,
            seal_paths(&u, &sl, &c),
            &s.ticket,
            &[1; 32],
            &s.comms,
            &s.pieces,
        )
        .unwrap();
    let err = RealEngine.commit2(&s.sector, &c1).unwrap_err().to_string();
    assert!(err.contains("made by the mock engine"), "{err}");
}

#[test]
fn delays_hold_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let e = MockEngine::new().with_delay(
        resources::TaskType::AddPiece,
        std::time::Duration::from_millis(200),
    );
    let t = std::time::Instant::now();
    let sector = resources::SectorRef::new(MINER, 1, S2KiB.seal_proof());
    e.add_piece(&sector, &dir.path().join("u"), &PieceData::Zeros, 2032, &[])
        .unwrap();
    assert!(t.elapsed() >= std::time::Duration::from_millis(200));
}
