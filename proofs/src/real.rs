//! The real engine: every operation is a filecoin-proofs-api 19 call. `FIL_PROOFS_*` and
//! `BELLMAN_*` variables reach the proofs as they are (they read the process environment).

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use filecoin_proofs_api::{
    fr32::Fr32Reader, post, seal, PrivateReplicaInfo, PublicReplicaInfo, RegisteredPoStProof,
    RegisteredSealProof, SectorId, UnpaddedByteIndex, UnpaddedBytesAmount,
};
use resources::{SealProof, SectorRef};

use crate::params::post_proofs;
use crate::types::*;

/// Proofs through filecoin-proofs-api (CPU, or GPU with the `cuda` feature).
#[derive(Debug, Default, Clone, Copy)]
pub struct RealEngine;

pub(crate) fn registered(p: SealProof) -> RegisteredSealProof {
    use RegisteredSealProof::*;
    match p {
        SealProof::StackedDrg2KiBV1 => StackedDrg2KiBV1,
        SealProof::StackedDrg8MiBV1 => StackedDrg8MiBV1,
        SealProof::StackedDrg512MiBV1 => StackedDrg512MiBV1,
        SealProof::StackedDrg32GiBV1 => StackedDrg32GiBV1,
        SealProof::StackedDrg64GiBV1 => StackedDrg64GiBV1,
        SealProof::StackedDrg2KiBV1_1 => StackedDrg2KiBV1_1,
        SealProof::StackedDrg8MiBV1_1 => StackedDrg8MiBV1_1,
        SealProof::StackedDrg512MiBV1_1 => StackedDrg512MiBV1_1,
        SealProof::StackedDrg32GiBV1_1 => StackedDrg32GiBV1_1,
        SealProof::StackedDrg64GiBV1_1 => StackedDrg64GiBV1_1,
    }
}

fn winning(p: SealProof) -> RegisteredPoStProof {
    post_proofs(p.sector_size()).0
}

fn window(p: SealProof) -> RegisteredPoStProof {
    post_proofs(p.sector_size()).1
}

fn fail(op: &'static str, sector: impl ToString) -> impl FnOnce(anyhow::Error) -> ProofError {
    move |e| ProofError::Failed {
        op,
        sector: sector.to_string(),
        reason: format!("{e:#}"),
    }
}

fn pieces_api(pieces: &[PieceInfo]) -> Vec<filecoin_proofs_api::PieceInfo> {
    pieces
        .iter()
        .map(|p| filecoin_proofs_api::PieceInfo {
            commitment: p.commitment,
            size: UnpaddedBytesAmount(p.size),
        })
        .collect()
}

impl Engine for RealEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Real
    }

    fn add_piece(
        &self,
        sector: &SectorRef,
        unsealed: &Path,
        data: &PieceData,
        size: u64,
        existing: &[u64],
    ) -> Result<PieceInfo, ProofError> {
        let mut target = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(unsealed)
            .map_err(ProofError::io(unsealed))?;
        let offset = piece_offset(existing);
        target
            .seek(SeekFrom::Start(offset))
            .map_err(ProofError::io(unsealed))?;
        let lengths: Vec<UnpaddedBytesAmount> =
            existing.iter().map(|s| UnpaddedBytesAmount(*s)).collect();
        let source: Box<dyn Read> = match data {
            PieceData::Zeros => Box::new(std::io::repeat(0).take(size)),
            PieceData::File(p) => {
                Box::new(fs::File::open(p).map_err(ProofError::io(p))?.take(size))
            }
        };
        let (info, _) = seal::add_piece(
            registered(sector.proof),
            source,
            &mut target,
            UnpaddedBytesAmount(size),
            &lengths,
        )
        .map_err(fail("AddPiece", sector))?;
        target.sync_all().map_err(ProofError::io(unsealed))?;
        Ok(PieceInfo {
            size: info.size.0,
            commitment: info.commitment,
        })
    }

    fn pre_commit1(
        &self,
        sector: &SectorRef,
        paths: SealPaths<'_>,
        ticket: &Randomness,
        pieces: &[PieceInfo],
    ) -> Result<PhaseOutput, ProofError> {
        // Layers left from an earlier attempt (another ticket) would be reused by the proofs:
        // PC1 always starts from an empty cache.
        fresh_dir(paths.cache)?;
        // PC1 writes the replica into an existing file.
        fs::File::create(paths.sealed).map_err(ProofError::io(paths.sealed))?;
        let out = seal::seal_pre_commit_phase1(
            registered(sector.proof),
            paths.cache,
            paths.unsealed,
            paths.sealed,
            prover_id(sector.miner),
            SectorId::from(sector.number),
            *ticket,
            &pieces_api(pieces),
        )
        .map_err(fail("PreCommit1", sector))?;
        Ok(PhaseOutput::encode(EngineKind::Real, &out))
    }

    fn pre_commit2(
        &self,
        sector: &SectorRef,
        paths: SealPaths<'_>,
        pc1: &PhaseOutput,
    ) -> Result<SealedCommitments, ProofError> {
        let out: seal::SealPreCommitPhase1Output = pc1.decode(EngineKind::Real, "PreCommit2")?;
        let out = seal::seal_pre_commit_phase2(out, paths.cache, paths.sealed)
            .map_err(fail("PreCommit2", sector))?;
        Ok(SealedCommitments {
            comm_d: out.comm_d,
            comm_r: out.comm_r,
        })
    }

    fn commit1(
        &self,
        sector: &SectorRef,
        paths: SealPaths<'_>,
        ticket: &Randomness,
        seed: &Randomness,
        comms: &SealedCommitments,
        pieces: &[PieceInfo],
    ) -> Result<PhaseOutput, ProofError> {
        let pre = seal::SealPreCommitPhase2Output {
            registered_proof: registered(sector.proof),
            comm_r: comms.comm_r,
            comm_d: comms.comm_d,
        };
        let out = seal::seal_commit_phase1(
            paths.cache,
            paths.sealed,
            prover_id(sector.miner),
            SectorId::from(sector.number),
            *ticket,
            *seed,
            pre,
            &pieces_api(pieces),
        )
        .map_err(fail("Commit1", sector))?;
        Ok(PhaseOutput::encode(EngineKind::Real, &out))
    }

    fn commit2(&self, sector: &SectorRef, c1: &PhaseOutput) -> Result<Vec<u8>, ProofError> {
        let c1: seal::SealCommitPhase1Output = c1.decode(EngineKind::Real, "Commit2")?;
        let out =
            seal::seal_commit_phase2(c1, prover_id(sector.miner), SectorId::from(sector.number))
                .map_err(fail("Commit2", sector))?;
        Ok(out.proof)
    }

    fn finalize(&self, sector: &SectorRef, cache: &Path) -> Result<(), ProofError> {
        seal::clear_cache(cache).map_err(fail("Finalize", sector))
    }

    fn unseal(
        &self,
        sector: &SectorRef,
        paths: SealPaths<'_>,
        ticket: &Randomness,
        comm_d: &Commitment,
        offset: u64,
        len: u64,
    ) -> Result<(), ProofError> {
        check_unseal_range(offset, len)?;
        let sealed = fs::File::open(paths.sealed).map_err(ProofError::io(paths.sealed))?;
        let mut raw = Vec::with_capacity(len as usize);
        seal::unseal_range(
            registered(sector.proof),
            paths.cache,
            sealed,
            &mut raw,
            prover_id(sector.miner),
            SectorId::from(sector.number),
            *comm_d,
            *ticket,
            UnpaddedByteIndex(offset),
            UnpaddedBytesAmount(len),
        )
        .map_err(fail("Unseal", sector))?;
        write_padded_at(paths.unsealed, offset / 127 * 128, &raw)
    }

    fn check_provable(
        &self,
        miner: u64,
        randomness: &Randomness,
        sectors: &[PoStSector],
    ) -> Result<Vec<(u64, String)>, ProofError> {
        if sectors.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vanilla_proofs(miner, randomness, sectors)?.1)
    }

    fn generate_window_post(
        &self,
        miner: u64,
        randomness: &Randomness,
        sectors: &[PoStSector],
    ) -> Result<Vec<u8>, ProofError> {
        let (vanilla, faulty) = vanilla_proofs(miner, randomness, sectors)?;
        if !faulty.is_empty() {
            return Err(ProofError::FaultySectors(faulty));
        }
        let proof = window(sectors[0].sector.proof);
        let rand = post_randomness(randomness);
        let mut out =
            post::generate_window_post_with_vanilla(proof, &rand, prover_id(miner), &vanilla)
                .map_err(fail("WindowPoSt", format!("miner {miner}")))?;
        Ok(out.pop().map(|(_, p)| p).unwrap_or_default())
    }

    fn winning_post_challenge(
        &self,
        proof: SealProof,
        miner: u64,
        randomness: &Randomness,
        eligible: u64,
    ) -> Result<Vec<u64>, ProofError> {
        post::generate_winning_post_sector_challenge(
            winning(proof),
            &post_randomness(randomness),
            eligible,
            prover_id(miner),
        )
        .map_err(fail("WinningPoSt challenge", format!("miner {miner}")))
    }

    fn generate_winning_post(
        &self,
        miner: u64,
        randomness: &Randomness,
        sectors: &[PoStSector],
    ) -> Result<Vec<u8>, ProofError> {
        let replicas: BTreeMap<SectorId, PrivateReplicaInfo> = sectors
            .iter()
            .map(|s| {
                let info = PrivateReplicaInfo::new(
                    winning(s.sector.proof),
                    s.comm_r,
                    s.cache.clone(),
                    s.sealed.clone(),
                );
                (SectorId::from(s.sector.number), info)
            })
            .collect();
        let mut out =
            post::generate_winning_post(&post_randomness(randomness), &replicas, prover_id(miner))
                .map_err(fail("WinningPoSt", format!("miner {miner}")))?;
        Ok(out.pop().map(|(_, p)| p).unwrap_or_default())
    }

    fn verify_seal(
        &self,
        sector: &SectorRef,
        comms: &SealedCommitments,
        ticket: &Randomness,
        seed: &Randomness,
        proof: &[u8],
    ) -> Result<bool, ProofError> {
        require_vk(
            sector.proof,
            "stacked-proof-of-replication",
            "seal verification",
        )?;
        // A malformed proof is a proof that does not verify, not an engine failure.
        Ok(seal::verify_seal(
            registered(sector.proof),
            comms.comm_r,
            comms.comm_d,
            prover_id(sector.miner),
            SectorId::from(sector.number),
            *ticket,
            *seed,
            proof,
        )
        .unwrap_or(false))
    }

    fn verify_window_post(
        &self,
        miner: u64,
        randomness: &Randomness,
        sectors: &[PublicSector],
        proof: &[u8],
    ) -> Result<bool, ProofError> {
        let Some(first) = sectors.first() else {
            return Ok(false);
        };
        require_vk(first.proof, "proof-of-spacetime", "WindowPoSt verification")?;
        let pp = window(first.proof);
        let replicas = public_replicas(sectors, window);
        Ok(post::verify_window_post(
            &post_randomness(randomness),
            &[(pp, proof)],
            &replicas,
            prover_id(miner),
        )
        .unwrap_or(false))
    }

    fn verify_winning_post(
        &self,
        miner: u64,
        randomness: &Randomness,
        sectors: &[PublicSector],
        proof: &[u8],
    ) -> Result<bool, ProofError> {
        let Some(first) = sectors.first() else {
            return Ok(false);
        };
        require_vk(
            first.proof,
            "proof-of-spacetime",
            "WinningPoSt verification",
        )?;
        let replicas = public_replicas(sectors, winning);
        Ok(post::verify_winning_post(
            &post_randomness(randomness),
            proof,
            &replicas,
            prover_id(miner),
        )
        .unwrap_or(false))
    }
}

fn public_replicas(
    sectors: &[PublicSector],
    kind: fn(SealProof) -> RegisteredPoStProof,
) -> BTreeMap<SectorId, PublicReplicaInfo> {
    sectors
        .iter()
        .map(|s| {
            (
                SectorId::from(s.number),
                PublicReplicaInfo::new(kind(s.proof), s.comm_r),
            )
        })
        .collect()
}

/// Verification without the verifying key would report every proof as invalid: say what is
/// missing instead.
fn require_vk(proof: SealProof, kind: &str, op: &'static str) -> Result<(), ProofError> {
    let size = proof.sector_size();
    let dir = crate::params::cache_dir();
    let missing: Vec<String> =
        crate::params::status(&dir, &crate::params::official_manifest(), size)
            .into_iter()
            .filter(|(name, present)| !present && name.contains(kind) && name.ends_with(".vk"))
            .map(|(name, _)| name)
            .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(ProofError::Invalid {
        op,
        reason: format!(
            "verifying key missing in {}: {} (run fetch-params {size})",
            dir.display(),
            missing.join(", ")
        ),
    })
}

/// Removes `dir` if it exists and creates it empty.
pub(crate) fn fresh_dir(dir: &Path) -> Result<(), ProofError> {
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ProofError::io(dir)(e)),
    }
    fs::create_dir_all(dir).map_err(ProofError::io(dir))
}

/// Writes unpadded `raw` bytes, fr32-padded, into `path` at padded offset `at`.
fn write_padded_at(path: &Path, at: u64, raw: &[u8]) -> Result<(), ProofError> {
    use std::io::Write;
    let mut padded = Vec::with_capacity(raw.len() / 127 * 128 + 128);
    Fr32Reader::new(raw)
        .read_to_end(&mut padded)
        .map_err(ProofError::io(path))?;
    padded.truncate((raw.len() as u64).div_ceil(127) as usize * 128);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(ProofError::io(path))?;
    f.seek(SeekFrom::Start(at)).map_err(ProofError::io(path))?;
    f.write_all(&padded).map_err(ProofError::io(path))?;
    f.sync_all().map_err(ProofError::io(path))
}

/// One vanilla WindowPoSt proof per sector (in sector-number order, each sector once), so an
/// unreadable sector is named rather than failing all: the proofs, and the sectors that failed.
#[allow(clippy::type_complexity)]
fn vanilla_proofs(
    miner: u64,
    randomness: &Randomness,
    sectors: &[PoStSector],
) -> Result<(Vec<Vec<u8>>, Vec<(u64, String)>), ProofError> {
    // The verifier orders sectors by number: prove them in that order, once each.
    let mut sectors = sectors.to_vec();
    sectors.sort_by_key(|s| s.sector.number);
    sectors.dedup_by_key(|s| s.sector.number);
    let Some(first) = sectors.first() else {
        return Err(ProofError::Invalid {
            op: "WindowPoSt",
            reason: "no sectors to prove".into(),
        });
    };
    let proof = window(first.sector.proof);
    let rand = post_randomness(randomness);
    let ids: Vec<SectorId> = sectors
        .iter()
        .map(|s| SectorId::from(s.sector.number))
        .collect();
    let challenges =
        post::generate_fallback_sector_challenges(proof, &rand, &ids, prover_id(miner))
            .map_err(fail("WindowPoSt", format!("miner {miner}")))?;
    let mut vanilla = Vec::with_capacity(sectors.len());
    let mut faulty = Vec::new();
    for s in &sectors {
        let id = SectorId::from(s.sector.number);
        let replica = PrivateReplicaInfo::new(proof, s.comm_r, s.cache.clone(), s.sealed.clone());
        let res = match (s.sealed.is_file(), challenges.get(&id)) {
            (false, _) => Err(format!("sealed file {} is missing", s.sealed.display())),
            (_, None) => Err("no challenges".into()),
            (true, Some(c)) => post::generate_single_vanilla_proof(proof, id, &replica, c)
                .map_err(|e| format!("{e:#}")),
        };
        match res {
            Ok(v) => vanilla.push(v),
            Err(why) => faulty.push((s.sector.number, why)),
        }
    }
    Ok((vanilla, faulty))
}
