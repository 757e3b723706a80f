//! Real proofs on 2KiB sectors (filecoin-proofs-api, CPU). Needs the 2KiB parameters in
//! FIL_PROOFS_PARAMETER_CACHE: `.ci/run` generates them once; tests never do.

mod common;

use common::*;
use proofs::params;
use proofs::*;
use resources::SectorSize::S2KiB;

fn require_params() {
    let dir = params::cache_dir();
    let missing: Vec<String> = params::status(&dir, &params::official_manifest(), S2KiB)
        .into_iter()
        .filter(|(_, present)| !present)
        .map(|(n, _)| n)
        .collect();
    assert!(
        missing.is_empty(),
        "2KiB parameters missing in {}: {missing:?}. Generate them once with \
         `cargo run -p proofs --bin fetch-params -- --generate 2KiB` (about 25 minutes on 2 cores)",
        dir.display()
    );
}

#[test]
fn cc_sector_seals_proves_and_verifies_and_a_changed_byte_fails() {
    require_params();
    let dir = tempfile::tempdir().unwrap();
    let e = RealEngine;
    let s = seal(&e, dir.path(), 1, S2KiB, None);
    let seed = [42u8; 32];
    let proof = prove(&e, &s, &seed);
    assert!(!proof.starts_with(MOCK_PREFIX));
    assert!(e
        .verify_seal(&s.sector, &s.comms, &s.ticket, &seed, &proof)
        .unwrap());
    let mut bad = proof.clone();
    bad[proof.len() / 2] ^= 0x01;
    assert!(!e
        .verify_seal(&s.sector, &s.comms, &s.ticket, &seed, &bad)
        .unwrap());
    e.finalize(&s.sector, &s.cache()).unwrap();
    let rand = [5u8; 32];
    let post = e
        .generate_window_post(MINER, &rand, &[s.post_sector()])
        .unwrap();
    assert!(e
        .verify_window_post(MINER, &rand, &[PublicSector::from(&s.post_sector())], &post)
        .unwrap());
}

#[test]
fn window_post_over_two_sectors_and_a_missing_file_is_named() {
    require_params();
    let dir = tempfile::tempdir().unwrap();
    let e = RealEngine;
    let a = seal(&e, dir.path(), 2, S2KiB, None);
    let data = dir.path().join("deal.bin");
    random_file(&data, 2032);
    let b = seal(&e, dir.path(), 3, S2KiB, Some(&data));
    for s in [&a, &b] {
        e.finalize(&s.sector, &s.cache()).unwrap();
    }
    let rand = [0xffu8; 32];
    let sectors = [a.post_sector(), b.post_sector()];
    let public: Vec<PublicSector> = sectors.iter().map(PublicSector::from).collect();
    let proof = e.generate_window_post(MINER, &rand, &sectors).unwrap();
    assert!(e.verify_window_post(MINER, &rand, &public, &proof).unwrap());
    assert!(
        !e.verify_window_post(MINER, &[1u8; 32], &public, &proof)
            .unwrap(),
        "other randomness"
    );
    let reversed = [b.post_sector(), a.post_sector()];
    let proof = e.generate_window_post(MINER, &rand, &reversed).unwrap();
    assert!(
        e.verify_window_post(MINER, &rand, &public, &proof).unwrap(),
        "the caller's order does not matter"
    );

    let idx = e
        .winning_post_challenge(a.sector.proof, MINER, &rand, 2)
        .unwrap();
    assert_eq!(idx.len(), 1);
    let chosen = &sectors[idx[0] as usize];
    let w = e
        .generate_winning_post(MINER, &rand, std::slice::from_ref(chosen))
        .unwrap();
    assert!(e
        .verify_winning_post(MINER, &rand, &[PublicSector::from(chosen)], &w)
        .unwrap());

    std::fs::remove_file(b.sealed()).unwrap();
    match e.generate_window_post(MINER, &rand, &sectors) {
        Err(ProofError::FaultySectors(f)) => {
            assert_eq!(f.len(), 1, "{f:?}");
            assert_eq!(f[0].0, 3);
        }
        other => panic!("expected sector 3 to be named faulty, got {other:?}"),
    }
    let rest = e.generate_window_post(MINER, &rand, &sectors[..1]).unwrap();
    assert!(
        e.verify_window_post(MINER, &rand, &public[..1], &rest)
            .unwrap(),
        "the rest still proves"
    );
}

#[test]
fn unseal_gives_back_the_original_piece() {
    require_params();
    let dir = tempfile::tempdir().unwrap();
    check_unseal(&RealEngine, dir.path(), 4);
}
