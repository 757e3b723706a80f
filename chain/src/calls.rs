//! The miner actor calls a sealer sends for a sector, built from the official params.

use lotus::miner::{CompactCommD, PreCommitSectorBatchParams2};
use proofs::SealedCommitments;
use resources::SectorRef;

use crate::Call;

/// The pre-commit of one sector (PreCommitSectorBatch2), naming its CommD, committed until
/// `expiration`.
pub fn precommit(
    sector: &SectorRef,
    comms: &SealedCommitments,
    ticket_epoch: i64,
    expiration: i64,
) -> Call {
    let mut info = lotus::miner::precommit_cc(
        lotus::RegisteredSealProof::from(sector.proof as i64),
        sector.number,
        &comms.comm_r,
        ticket_epoch,
        expiration,
    );
    info.unsealed_cid = CompactCommD(Some(
        lotus::fvm_shared::commcid::data_commitment_v1_to_cid(&comms.comm_d)
            .expect("a data commitment"),
    ));
    Call::of(&PreCommitSectorBatchParams2 {
        sectors: vec![info],
    })
    .expect("pre-commit params encode")
}

/// The prove-commit of one sector (ProveCommitSectors3), its proof alone.
pub fn prove_commit(sector: u64, proof: Vec<u8>) -> Call {
    Call::of(&lotus::miner::prove_commit_cc(&[(sector, proof)]))
        .expect("prove-commit params encode")
}
