//! A committed-capacity sector sealed through C1 in one call, for benchmarks and tests that need
//! a C2 input or a sector to prove and are not about the sealing steps themselves.

use std::path::Path;

use resources::SectorRef;

use crate::types::*;

/// What [`seal_cc_to_c1`] leaves: the sector as a PoSt sees it, and C2's input.
pub struct SealedCc {
    pub post: PoStSector,
    pub comms: SealedCommitments,
    pub ticket: Randomness,
    pub seed: Randomness,
    pub c1: PhaseOutput,
}

/// AP (zeros), PC1, PC2 and C1 of `sector` with `e`, its files in `dir/{unsealed,sealed,cache}`.
pub fn seal_cc_to_c1(
    e: &dyn Engine,
    sector: SectorRef,
    dir: &Path,
    ticket: Randomness,
    seed: Randomness,
) -> Result<SealedCc, ProofError> {
    std::fs::create_dir_all(dir).map_err(ProofError::io(dir))?;
    let [u, s, c] = ["unsealed", "sealed", "cache"].map(|n| dir.join(n));
    let paths = SealPaths {
        unsealed: &u,
        sealed: &s,
        cache: &c,
    };
    let cap = crate::unpadded_capacity(&sector);
    let piece = e.add_piece(&sector, &u, &PieceData::Zeros, cap, &[])?;
    let pc1 = e.pre_commit1(&sector, paths, &ticket, &[piece])?;
    let comms = e.pre_commit2(&sector, paths, &pc1)?;
    let c1 = e.commit1(&sector, paths, &ticket, &seed, &comms, &[piece])?;
    Ok(SealedCc {
        post: PoStSector {
            sector,
            comm_r: comms.comm_r,
            sealed: s,
            cache: c,
        },
        comms,
        ticket,
        seed,
        c1,
    })
}
