//! The miner actor calls a sealer sends for a sector, built from the official params.

use lotus::miner::{CompactCommD, PreCommitSectorBatchParams2, SectorPreCommitInfo};
use lotus::state::PreCommitInfo;
use proofs::SealedCommitments;
use resources::SectorRef;

use crate::Call;

/// What one sector's pre-commit says: its replica, ticket and expiration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreCommitSpec {
    pub sector: SectorRef,
    pub comms: SealedCommitments,
    pub ticket_epoch: i64,
    pub expiration: i64,
}

impl PreCommitSpec {
    /// As the actor reads it (and `StateMinerPreCommitDepositForPower` takes it).
    pub fn params(&self) -> SectorPreCommitInfo {
        let mut info = lotus::miner::precommit_cc(
            lotus::RegisteredSealProof::from(self.sector.proof as i64),
            self.sector.number,
            &self.comms.comm_r,
            self.ticket_epoch,
            self.expiration,
        );
        info.unsealed_cid = CompactCommD(Some(self.unsealed_cid()));
        info
    }

    fn unsealed_cid(&self) -> lotus::Cid {
        lotus::fvm_shared::commcid::data_commitment_v1_to_cid(&self.comms.comm_d)
            .expect("a data commitment")
    }

    /// In Lotus JSON.
    pub fn info(&self) -> PreCommitInfo {
        let p = self.params();
        PreCommitInfo {
            seal_proof: p.seal_proof,
            sector_number: p.sector_number,
            sealed_cid: p.sealed_cid,
            seal_rand_epoch: p.seal_rand_epoch,
            deal_ids: Some(Vec::new()),
            expiration: p.expiration,
            unsealed_cid: Some(self.unsealed_cid()),
        }
    }

    /// The pre-commit of this one sector (PreCommitSectorBatch2).
    pub fn call(&self) -> Call {
        precommit_batch(std::slice::from_ref(self))
    }
}

/// The pre-commit of these sectors in one PreCommitSectorBatch2.
pub fn precommit_batch(specs: &[PreCommitSpec]) -> Call {
    Call::of(&PreCommitSectorBatchParams2 {
        sectors: specs.iter().map(PreCommitSpec::params).collect(),
    })
    .expect("pre-commit params encode")
}

/// The prove-commit of one sector (ProveCommitSectors3), its proof alone.
pub fn prove_commit(sector: u64, proof: Vec<u8>) -> Call {
    prove_commit_batch(&[(sector, proof)])
}

/// The prove-commit of these sectors in one ProveCommitSectors3, one proof each (no
/// aggregate); a sector whose proof fails does not stop the others.
pub fn prove_commit_batch(sectors: &[(u64, Vec<u8>)]) -> Call {
    Call::of(&lotus::miner::prove_commit_cc(sectors)).expect("prove-commit params encode")
}
