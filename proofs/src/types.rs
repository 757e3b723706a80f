//! Inputs and outputs of the engine: plain serde types that cross the network between the sealer
//! and workers.

use std::path::{Path, PathBuf};

use resources::{SealProof, SectorRef};
use serde::{Deserialize, Serialize};

pub type Commitment = [u8; 32];
/// Chain randomness (tickets, seeds, PoSt challenges).
pub type Randomness = [u8; 32];

/// Which engine made an output. Outputs of one engine are refused by the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Real,
    Mock,
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EngineKind::Real => "real",
            EngineKind::Mock => "mock",
        })
    }
}

/// A piece in a sector: unpadded size and piece commitment (commP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceInfo {
    pub size: u64,
    pub commitment: Commitment,
}

/// What AddPiece writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PieceData {
    /// Zeros: the committed-capacity filler.
    Zeros,
    /// The bytes of a file (deal data).
    File(PathBuf),
}

/// An engine's opaque output passed between phases (PC1 -> PC2, C1 -> C2), tagged with the engine
/// that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseOutput {
    pub engine: EngineKind,
    #[serde(with = "crate::bytes")]
    pub data: Vec<u8>,
}

impl PhaseOutput {
    pub(crate) fn encode<T: Serialize>(engine: EngineKind, v: &T) -> PhaseOutput {
        PhaseOutput {
            engine,
            data: serde_json::to_vec(v).expect("phase outputs serialize"),
        }
    }

    /// The output as `T`, if `engine` made it.
    pub(crate) fn decode<T: serde::de::DeserializeOwned>(
        &self,
        engine: EngineKind,
        op: &'static str,
    ) -> Result<T, ProofError> {
        if self.engine != engine {
            return Err(ProofError::WrongEngine {
                op,
                engine,
                made_by: self.engine,
            });
        }
        serde_json::from_slice(&self.data).map_err(|e| ProofError::Invalid {
            op,
            reason: format!("unreadable phase output: {e}"),
        })
    }
}

/// PC2's result: the data and replica commitments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedCommitments {
    pub comm_d: Commitment,
    pub comm_r: Commitment,
}

/// A sealed sector's files, as a PoSt needs them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoStSector {
    pub sector: SectorRef,
    pub comm_r: Commitment,
    pub sealed: PathBuf,
    pub cache: PathBuf,
}

/// A sealed sector as a PoSt verifier knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicSector {
    pub number: u64,
    pub proof: SealProof,
    pub comm_r: Commitment,
}

impl From<&PoStSector> for PublicSector {
    fn from(s: &PoStSector) -> Self {
        PublicSector {
            number: s.sector.number,
            proof: s.sector.proof,
            comm_r: s.comm_r,
        }
    }
}

/// Paths of one sector's files for a sealing step.
#[derive(Debug, Clone, Copy)]
pub struct SealPaths<'a> {
    pub unsealed: &'a Path,
    pub sealed: &'a Path,
    pub cache: &'a Path,
}

#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The proof library failed.
    #[error("{op} of {sector}: {reason}")]
    Failed {
        op: &'static str,
        sector: String,
        reason: String,
    },
    /// Some sectors could not be proven (unreadable or damaged files): declare them faulty and
    /// prove the rest.
    #[error("WindowPoSt: faulty sectors: {}", .0.iter().map(|(n, why)| format!("{n} ({why})")).collect::<Vec<_>>().join(", "))]
    FaultySectors(Vec<(u64, String)>),
    /// An output from the other engine (a mock proof given to the real engine, or the reverse).
    #[error("{op}: this is the {engine} engine but the input was made by the {made_by} engine")]
    WrongEngine {
        op: &'static str,
        engine: EngineKind,
        made_by: EngineKind,
    },
    #[error("{op}: {reason}")]
    Invalid { op: &'static str, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An error the operation met in a processor child, as the child reported it. `bad_input`
    /// when the child's error was one of unusable inputs (`WrongEngine`, `Invalid`).
    #[error("{message}")]
    InChild { bad_input: bool, message: String },
    /// The processor child running the operation gave no result.
    #[error("processor pid {pid} {crash}")]
    Crashed {
        op: String,
        pid: u32,
        crash: crate::crash::Crash,
    },
}

impl ProofError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProofError + '_ {
        move |source| ProofError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The one place that turns tasks into proofs. Operations block: call them from a blocking
/// thread. Every operation takes plain data and paths, so a worker can run it for the sealer.
pub trait Engine: Send + Sync {
    fn kind(&self) -> EngineKind;

    /// AP: appends a piece of `size` unpadded bytes to the unsealed file (after pieces of
    /// `existing` sizes) and returns its commitment.
    fn add_piece(
        &self,
        sector: &SectorRef,
        unsealed: &Path,
        data: &PieceData,
        size: u64,
        existing: &[u64],
    ) -> Result<PieceInfo, ProofError>;

    fn pre_commit1(
        &self,
        sector: &SectorRef,
        paths: SealPaths<'_>,
        ticket: &Randomness,
        pieces: &[PieceInfo],
    ) -> Result<PhaseOutput, ProofError>;

    fn pre_commit2(
        &self,
        sector: &SectorRef,
        paths: SealPaths<'_>,
        pc1: &PhaseOutput,
    ) -> Result<SealedCommitments, ProofError>;

    #[allow(clippy::too_many_arguments)]
    fn commit1(
        &self,
        sector: &SectorRef,
        paths: SealPaths<'_>,
        ticket: &Randomness,
        seed: &Randomness,
        comms: &SealedCommitments,
        pieces: &[PieceInfo],
    ) -> Result<PhaseOutput, ProofError>;

    /// C2: the seal proof.
    fn commit2(&self, sector: &SectorRef, c1: &PhaseOutput) -> Result<Vec<u8>, ProofError>;

    /// FIN: clears the cache down to what PoSt needs.
    fn finalize(&self, sector: &SectorRef, cache: &Path) -> Result<(), ProofError>;

    /// UNS: unseals `len` unpadded bytes from `offset` (a multiple of 127) back into the unsealed
    /// file, in its padded form, at the matching padded offset.
    #[allow(clippy::too_many_arguments)]
    fn unseal(
        &self,
        sector: &SectorRef,
        paths: SealPaths<'_>,
        ticket: &Randomness,
        comm_d: &Commitment,
        offset: u64,
        len: u64,
    ) -> Result<(), ProofError>;

    /// `proving check`: reads the leaves a WindowPoSt with `randomness` would challenge in each
    /// sector (as lotus's CheckProvable does). Returns the sectors that cannot be proven, with
    /// why; empty when all can.
    fn check_provable(
        &self,
        miner: u64,
        randomness: &Randomness,
        sectors: &[PoStSector],
    ) -> Result<Vec<(u64, String)>, ProofError>;

    /// WDP. Sectors whose files cannot be proven come back as `FaultySectors`.
    fn generate_window_post(
        &self,
        miner: u64,
        randomness: &Randomness,
        sectors: &[PoStSector],
    ) -> Result<Vec<u8>, ProofError>;

    /// Which of `eligible` sectors (by index) a WinningPoSt challenges.
    fn winning_post_challenge(
        &self,
        proof: SealProof,
        miner: u64,
        randomness: &Randomness,
        eligible: u64,
    ) -> Result<Vec<u64>, ProofError>;

    /// WNP over the challenged sectors.
    fn generate_winning_post(
        &self,
        miner: u64,
        randomness: &Randomness,
        sectors: &[PoStSector],
    ) -> Result<Vec<u8>, ProofError>;

    #[allow(clippy::too_many_arguments)]
    fn verify_seal(
        &self,
        sector: &SectorRef,
        comms: &SealedCommitments,
        ticket: &Randomness,
        seed: &Randomness,
        proof: &[u8],
    ) -> Result<bool, ProofError>;

    fn verify_window_post(
        &self,
        miner: u64,
        randomness: &Randomness,
        sectors: &[PublicSector],
        proof: &[u8],
    ) -> Result<bool, ProofError>;

    fn verify_winning_post(
        &self,
        miner: u64,
        randomness: &Randomness,
        sectors: &[PublicSector],
        proof: &[u8],
    ) -> Result<bool, ProofError>;
}

/// The prover ID of a miner actor: the payload of its ID address (LEB128 of the actor ID),
/// zero-padded to 32 bytes, as lotus computes it.
pub fn prover_id(miner: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut v = miner;
    let mut i = 0;
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out[i] = b;
            break;
        }
        out[i] = b | 0x80;
        i += 1;
    }
    out
}

/// PoSt randomness must be a field element: the top two bits of the last byte go.
pub fn post_randomness(r: &Randomness) -> Randomness {
    let mut r = *r;
    r[31] &= 0x3f;
    r
}

/// Unsealing works on whole 127-byte units of unpadded data.
pub(crate) fn check_unseal_range(offset: u64, len: u64) -> Result<(), ProofError> {
    if offset.is_multiple_of(127) && len.is_multiple_of(127) && len > 0 {
        Ok(())
    } else {
        Err(ProofError::Invalid {
            op: "Unseal",
            reason: format!(
                "offset {offset} and length {len} must be non-zero multiples of 127 unpadded bytes"
            ),
        })
    }
}

/// Where in the unsealed file (padded bytes) a piece starts after pieces of `existing`
/// unpadded sizes, with the proofs' alignment padding between them.
pub fn piece_offset(existing: &[u64]) -> u64 {
    use filecoin_proofs_api::{PaddedBytesAmount, UnpaddedBytesAmount};
    let lengths: Vec<UnpaddedBytesAmount> =
        existing.iter().map(|s| UnpaddedBytesAmount(*s)).collect();
    let unpadded = filecoin_proofs::pieces::sum_piece_bytes_with_alignment(&lengths);
    PaddedBytesAmount::from(unpadded).0
}

/// Unpadded bytes a sector holds (127/128 of its size).
pub fn unpadded_capacity(sector: &SectorRef) -> u64 {
    sector.size().bytes() / 128 * 127
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_offsets_follow_alignment() {
        assert_eq!(piece_offset(&[]), 0);
        assert_eq!(piece_offset(&[127]), 128);
        // A 254-byte piece after a 127-byte one is aligned to 256 padded bytes first.
        assert_eq!(piece_offset(&[127, 254]), 512);
    }

    #[test]
    fn prover_ids() {
        assert_eq!(prover_id(1000)[..3], [0xe8, 0x07, 0]);
        assert_eq!(prover_id(0)[..2], [0, 0]);
        assert_eq!(prover_id(127)[..2], [0x7f, 0]);
        let r = post_randomness(&[0xff; 32]);
        assert_eq!(r[31], 0x3f);
    }
}
