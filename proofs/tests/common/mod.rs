//! One sector's life through an engine, shared by the real and mock tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use proofs::*;
use resources::{SectorRef, SectorSize};

pub const MINER: u64 = 1000;

pub struct Sealed {
    pub sector: SectorRef,
    pub dir: PathBuf,
    pub ticket: Randomness,
    pub comms: SealedCommitments,
    pub pieces: Vec<PieceInfo>,
}

impl Sealed {
    pub fn unsealed(&self) -> PathBuf {
        self.dir.join("unsealed")
    }
    pub fn sealed(&self) -> PathBuf {
        self.dir.join("sealed")
    }
    pub fn cache(&self) -> PathBuf {
        self.dir.join("cache")
    }
    pub fn paths(&self) -> (PathBuf, PathBuf, PathBuf) {
        (self.unsealed(), self.sealed(), self.cache())
    }
    pub fn post_sector(&self) -> PoStSector {
        PoStSector {
            sector: self.sector,
            comm_r: self.comms.comm_r,
            sealed: self.sealed(),
            cache: self.cache(),
        }
    }
}

pub fn seal_paths<'a>(u: &'a Path, s: &'a Path, c: &'a Path) -> SealPaths<'a> {
    SealPaths {
        unsealed: u,
        sealed: s,
        cache: c,
    }
}

/// AP (zeros, or `data` as the one piece), PC1 and PC2 of sector `number` under `root`.
pub fn seal(
    engine: &dyn Engine,
    root: &Path,
    number: u64,
    size: SectorSize,
    data: Option<&Path>,
) -> Sealed {
    let sector = SectorRef::new(MINER, number, size.seal_proof());
    let dir = root.join(format!("s-{number}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut s = Sealed {
        sector,
        dir,
        ticket: [number as u8 + 1; 32],
        comms: SealedCommitments {
            comm_d: [0; 32],
            comm_r: [0; 32],
        },
        pieces: vec![],
    };
    let (u, sl, c) = s.paths();
    let piece = match data {
        Some(p) => PieceData::File(p.to_path_buf()),
        None => PieceData::Zeros,
    };
    let info = engine
        .add_piece(&sector, &u, &piece, unpadded_capacity(&sector), &[])
        .unwrap();
    assert_eq!(info.size, unpadded_capacity(&sector));
    s.pieces = vec![info];
    let pc1 = engine
        .pre_commit1(&sector, seal_paths(&u, &sl, &c), &s.ticket, &s.pieces)
        .unwrap();
    assert_eq!(pc1.engine, engine.kind());
    s.comms = engine
        .pre_commit2(&sector, seal_paths(&u, &sl, &c), &pc1)
        .unwrap();
    assert_eq!(
        std::fs::metadata(&sl).unwrap().len(),
        size.bytes(),
        "the sealed file is a sector's size"
    );
    s
}

/// C1 and C2 with `seed`.
pub fn prove(engine: &dyn Engine, s: &Sealed, seed: &Randomness) -> Vec<u8> {
    let (u, sl, c) = s.paths();
    let c1 = engine
        .commit1(
            &s.sector,
            seal_paths(&u, &sl, &c),
            &s.ticket,
            seed,
            &s.comms,
            &s.pieces,
        )
        .unwrap();
    engine.commit2(&s.sector, &c1).unwrap()
}

/// A file of `len` bytes of varied content.
pub fn random_file(path: &Path, len: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..len as u64)
        .map(|i| (i.wrapping_mul(0x9E3779B97F4A7C15) >> 56) as u8)
        .collect();
    std::fs::write(path, &data).unwrap();
    data
}

/// Seals sector `number` holding one piece of varied data, deletes its unsealed file, unseals it
/// back and checks that the file is restored byte for byte and holds the original piece.
pub fn check_unseal(engine: &dyn Engine, root: &Path, number: u64) -> Sealed {
    let data_file = root.join(format!("deal-{number}.bin"));
    let data = random_file(&data_file, 2032);
    let s = seal(engine, root, number, SectorSize::S2KiB, Some(&data_file));
    let padded = std::fs::read(s.unsealed()).unwrap();
    std::fs::remove_file(s.unsealed()).unwrap();
    let (u, sl, c) = s.paths();
    engine
        .unseal(
            &s.sector,
            seal_paths(&u, &sl, &c),
            &s.ticket,
            &s.comms.comm_d,
            0,
            2032,
        )
        .unwrap();
    let back = std::fs::read(s.unsealed()).unwrap();
    assert_eq!(back, padded, "the unsealed file is restored byte for byte");
    let mut raw = Vec::new();
    filecoin_proofs_api::fr32::write_unpadded(&back, &mut raw, 0, 2032).unwrap();
    assert_eq!(raw, data, "and holds the original piece");
    s
}
