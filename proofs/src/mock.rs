//! The MOCK engine, for fast tests and demos: instant, deterministic commitments derived from the
//! inputs, sealed and cache files of the sector's real sizes (so storage and transfer are
//! exercised), a sealed file that really encodes the data (so unsealing returns it), and proofs
//! that start with `MOCK` and fail verification when tampered with. Optional per-task delays hold a
//! worker's resources for a while. It announces itself in the log when created.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use filecoin_proofs_api::fr32::Fr32Reader;
use resources::{SealProof, SectorRef, SectorSize, TaskType};
use serde::{Deserialize, Serialize};

use crate::types::*;

/// Every mock proof starts with these bytes.
pub const MOCK_PREFIX: &[u8] = b"MOCK";

/// See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct MockEngine {
    delays: HashMap<TaskType, Duration>,
}

impl MockEngine {
    pub fn new() -> Self {
        tracing::warn!("MOCK proof engine active: seals and PoSts are not real proofs");
        MockEngine::default()
    }

    /// Makes each task of type `t` take `d` (to hold a worker's resources in tests).
    pub fn with_delay(mut self, t: TaskType, d: Duration) -> Self {
        self.delays.insert(t, d);
        self
    }

    fn wait(&self, t: TaskType) {
        if let Some(d) = self.delays.get(&t) {
            std::thread::sleep(*d);
        }
    }
}

fn hash(parts: &[&[u8]]) -> [u8; 32] {
    let mut st = blake2b_simd::Params::new().hash_length(32).to_state();
    for p in parts {
        st.update(&(p.len() as u64).to_le_bytes());
        st.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(st.finalize().as_bytes());
    out
}

fn sector_bytes(s: &SectorRef) -> Vec<u8> {
    let mut v = s.miner.to_le_bytes().to_vec();
    v.extend(s.number.to_le_bytes());
    v.extend((s.proof as i64).to_le_bytes());
    v
}

/// Layer files a real cache holds while sealing (2 below 32GiB, 11 above).
fn layers(size: SectorSize) -> usize {
    if size.bytes() >= 32 << 30 {
        11
    } else {
        2
    }
}

const P_AUX: &str = "p_aux";
const T_AUX: &str = "t_aux";
const TREE_R_LAST: &str = "sc-02-data-tree-r-last.dat";

fn io(p: &Path) -> impl FnOnce(std::io::Error) -> ProofError + '_ {
    ProofError::io(p)
}

/// Writes `len` bytes of a keyed stream into `w` (content for layer and tree files).
fn write_stream(w: &mut impl Write, key: &[u8; 32], len: u64) -> std::io::Result<()> {
    let mut written = 0u64;
    let mut block = 0u64;
    let mut buf = Vec::with_capacity(1 << 16);
    while written < len {
        buf.clear();
        while buf.len() < (1 << 16) && written + (buf.len() as u64) < len {
            buf.extend_from_slice(&hash(&[key, &block.to_le_bytes()]));
            block += 1;
        }
        let take = (len - written).min(buf.len() as u64) as usize;
        w.write_all(&buf[..take])?;
        written += take as u64;
    }
    Ok(())
}

fn create_sized(path: &Path, key: &[u8; 32], len: u64) -> Result<(), ProofError> {
    let mut f = std::io::BufWriter::new(fs::File::create(path).map_err(io(path))?);
    write_stream(&mut f, key, len).map_err(io(path))?;
    f.flush().map_err(io(path))
}

/// XORs `data` in place with the sector's keystream starting at byte `at`.
fn xor_keystream(key: &[u8; 32], at: u64, data: &mut [u8]) {
    let mut i = 0usize;
    while i < data.len() {
        let pos = at + i as u64;
        let block = hash(&[key, &(pos / 32).to_le_bytes()]);
        let off = (pos % 32) as usize;
        let n = (32 - off).min(data.len() - i);
        for k in 0..n {
            data[i + k] ^= block[off + k];
        }
        i += n;
    }
}

fn replica_key(sector: &SectorRef, ticket: &Randomness) -> [u8; 32] {
    hash(&[b"replica", &sector_bytes(sector), ticket])
}

#[derive(Serialize, Deserialize)]
struct Pc1 {
    sector: SectorRef,
    ticket: Randomness,
    comm_d: Commitment,
}

#[derive(Serialize, Deserialize)]
struct C1 {
    sector: SectorRef,
    ticket: Randomness,
    seed: Randomness,
    comms: SealedCommitments,
}

fn proof(domain: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut all: Vec<&[u8]> = vec![domain];
    all.extend_from_slice(parts);
    let mut p = MOCK_PREFIX.to_vec();
    p.extend_from_slice(&hash(&all));
    p
}

fn comm_d_of(pieces: &[PieceInfo]) -> Commitment {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for p in pieces {
        parts.push(p.size.to_le_bytes().to_vec());
        parts.push(p.commitment.to_vec());
    }
    let refs: Vec<&[u8]> = parts.iter().map(|v| v.as_slice()).collect();
    let mut all: Vec<&[u8]> = vec![b"comm_d"];
    all.extend(refs);
    hash(&all)
}

fn post_proof(
    domain: &[u8],
    miner: u64,
    randomness: &Randomness,
    sectors: &[PublicSector],
) -> Vec<u8> {
    let mut sorted: Vec<&PublicSector> = sectors.iter().collect();
    sorted.sort_by_key(|s| s.number);
    let mut body = Vec::new();
    for s in sorted {
        body.extend(s.number.to_le_bytes());
        body.extend(s.comm_r);
    }
    proof(
        domain,
        &[&miner.to_le_bytes(), &post_randomness(randomness), &body],
    )
}

/// Whether a sector's files are there and match its replica commitment.
fn check_sector(s: &PoStSector) -> Result<(), String> {
    if !s.sealed.is_file() {
        return Err(format!("sealed file {} is missing", s.sealed.display()));
    }
    let aux = fs::read(s.cache.join(P_AUX))
        .map_err(|e| format!("{}: {e}", s.cache.join(P_AUX).display()))?;
    if aux != s.comm_r {
        return Err("cache does not match the replica commitment".into());
    }
    Ok(())
}

impl Engine for MockEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Mock
    }

    fn add_piece(
        &self,
        _sector: &SectorRef,
        unsealed: &Path,
        data: &PieceData,
        size: u64,
        existing: &[u64],
    ) -> Result<PieceInfo, ProofError> {
        self.wait(TaskType::AddPiece);
        let mut raw = Vec::with_capacity(size as usize);
        match data {
            PieceData::Zeros => raw.resize(size as usize, 0),
            PieceData::File(p) => {
                fs::File::open(p)
                    .map_err(io(p))?
                    .take(size)
                    .read_to_end(&mut raw)
                    .map_err(io(p))?;
                raw.resize(size as usize, 0);
            }
        }
        let mut padded = Vec::new();
        Fr32Reader::new(raw.as_slice())
            .read_to_end(&mut padded)
            .map_err(io(unsealed))?;
        padded.truncate(size.div_ceil(127) as usize * 128);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(unsealed)
            .map_err(io(unsealed))?;
        let at: u64 = existing.iter().map(|s| s / 127 * 128).sum();
        f.seek(SeekFrom::Start(at)).map_err(io(unsealed))?;
        f.write_all(&padded).map_err(io(unsealed))?;
        Ok(PieceInfo {
            size,
            commitment: hash(&[b"commP", &size.to_le_bytes(), &raw]),
        })
    }

    fn pre_commit1(
        &self,
        sector: &SectorRef,
        paths: SealPaths<'_>,
        ticket: &Randomness,
        pieces: &[PieceInfo],
    ) -> Result<PhaseOutput, ProofError> {
        self.wait(TaskType::PreCommit1);
        let size = sector.size().bytes();
        fs::create_dir_all(paths.cache).map_err(io(paths.cache))?;
        // The replica: the unsealed data under the sector's keystream.
        let mut data = Vec::with_capacity(size as usize);
        let f = fs::File::open(paths.unsealed).map_err(io(paths.unsealed))?;
        f.take(size)
            .read_to_end(&mut data)
            .map_err(io(paths.unsealed))?;
        data.resize(size as usize, 0);
        xor_keystream(&replica_key(sector, ticket), 0, &mut data);
        fs::write(paths.sealed, &data).map_err(io(paths.sealed))?;
        let key = hash(&[b"layers", &sector_bytes(sector), ticket]);
        for l in 1..=layers(sector.size()) {
            create_sized(
                &paths.cache.join(format!("sc-02-data-layer-{l}.dat")),
                &key,
                size,
            )?;
        }
        create_sized(
            &paths.cache.join("sc-02-data-tree-d.dat"),
            &key,
            2 * size - 32,
        )?;
        Ok(PhaseOutput::encode(
            EngineKind::Mock,
            &Pc1 {
                sector: *sector,
                ticket: *ticket,
                comm_d: comm_d_of(pieces),
            },
        ))
    }

    fn pre_commit2(
        &self,
        sector: &SectorRef,
        paths: SealPaths<'_>,
        pc1: &PhaseOutput,
    ) -> Result<SealedCommitments, ProofError> {
        self.wait(TaskType::PreCommit2);
        let pc1: Pc1 = pc1.decode(EngineKind::Mock, "PreCommit2")?;
        if pc1.sector != *sector {
            return Err(ProofError::Invalid {
                op: "PreCommit2",
                reason: format!("PC1 output is for {}, not {sector}", pc1.sector),
            });
        }
        let sealed = fs::read(paths.sealed).map_err(io(paths.sealed))?;
        let comm_r = hash(&[b"comm_r", &pc1.comm_d, &sealed]);
        let key = hash(&[b"trees", &comm_r]);
        create_sized(
            &paths.cache.join("sc-02-data-tree-c.dat"),
            &key,
            sector.size().bytes(),
        )?;
        create_sized(
            &paths.cache.join(TREE_R_LAST),
            &key,
            (sector.size().bytes() / 8).max(64),
        )?;
        fs::write(paths.cache.join(P_AUX), comm_r).map_err(io(paths.cache))?;
        fs::write(paths.cache.join(T_AUX), b"mock t_aux").map_err(io(paths.cache))?;
        Ok(SealedCommitments {
            comm_d: pc1.comm_d,
            comm_r,
        })
    }

    fn commit1(
        &self,
        sector: &SectorRef,
        paths: SealPaths<'_>,
        ticket: &Randomness,
        seed: &Randomness,
        comms: &SealedCommitments,
        _pieces: &[PieceInfo],
    ) -> Result<PhaseOutput, ProofError> {
        self.wait(TaskType::Commit1);
        let s = PoStSector {
            sector: *sector,
            comm_r: comms.comm_r,
            sealed: paths.sealed.to_path_buf(),
            cache: paths.cache.to_path_buf(),
        };
        check_sector(&s).map_err(|reason| ProofError::Failed {
            op: "Commit1",
            sector: sector.to_string(),
            reason,
        })?;
        Ok(PhaseOutput::encode(
            EngineKind::Mock,
            &C1 {
                sector: *sector,
                ticket: *ticket,
                seed: *seed,
                comms: *comms,
            },
        ))
    }

    fn commit2(&self, sector: &SectorRef, c1: &PhaseOutput) -> Result<Vec<u8>, ProofError> {
        self.wait(TaskType::Commit2);
        let c1: C1 = c1.decode(EngineKind::Mock, "Commit2")?;
        if c1.sector != *sector {
            return Err(ProofError::Invalid {
                op: "Commit2",
                reason: format!("C1 output is for {}, not {sector}", c1.sector),
            });
        }
        Ok(seal_proof(sector, &c1.comms, &c1.ticket, &c1.seed))
    }

    fn finalize(&self, _sector: &SectorRef, cache: &Path) -> Result<(), ProofError> {
        self.wait(TaskType::Finalize);
        for e in fs::read_dir(cache).map_err(io(cache))?.flatten() {
            let name = e.file_name();
            let keep = [P_AUX, T_AUX, TREE_R_LAST].iter().any(|k| name == *k);
            if !keep {
                fs::remove_file(e.path()).map_err(io(&e.path()))?;
            }
        }
        Ok(())
    }

    fn unseal(
        &self,
        sector: &SectorRef,
        paths: SealPaths<'_>,
        ticket: &Randomness,
        _comm_d: &Commitment,
        offset: u64,
        len: u64,
    ) -> Result<(), ProofError> {
        self.wait(TaskType::Unseal);
        check_unseal_offset(offset)?;
        let start = offset / 127 * 128;
        let plen = len.div_ceil(127) * 128;
        let mut f = fs::File::open(paths.sealed).map_err(io(paths.sealed))?;
        f.seek(SeekFrom::Start(start)).map_err(io(paths.sealed))?;
        let mut data = vec![0u8; plen as usize];
        f.read_exact(&mut data).map_err(io(paths.sealed))?;
        xor_keystream(&replica_key(sector, ticket), start, &mut data);
        let mut out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(paths.unsealed)
            .map_err(io(paths.unsealed))?;
        out.seek(SeekFrom::Start(start))
            .map_err(io(paths.unsealed))?;
        out.write_all(&data).map_err(io(paths.unsealed))
    }

    fn generate_window_post(
        &self,
        miner: u64,
        randomness: &Randomness,
        sectors: &[PoStSector],
    ) -> Result<Vec<u8>, ProofError> {
        self.wait(TaskType::WindowPoSt);
        let faulty: Vec<(u64, String)> = sectors
            .iter()
            .filter_map(|s| check_sector(s).err().map(|why| (s.sector.number, why)))
            .collect();
        if !faulty.is_empty() {
            return Err(ProofError::FaultySectors(faulty));
        }
        let public: Vec<PublicSector> = sectors.iter().map(PublicSector::from).collect();
        Ok(post_proof(b"window", miner, randomness, &public))
    }

    fn winning_post_challenge(
        &self,
        _proof: SealProof,
        miner: u64,
        randomness: &Randomness,
        eligible: u64,
    ) -> Result<Vec<u64>, ProofError> {
        if eligible == 0 {
            return Ok(Vec::new());
        }
        let h = hash(&[
            b"winning-challenge",
            &miner.to_le_bytes(),
            &post_randomness(randomness),
        ]);
        Ok(vec![
            u64::from_le_bytes(h[..8].try_into().expect("8 bytes")) % eligible,
        ])
    }

    fn generate_winning_post(
        &self,
        miner: u64,
        randomness: &Randomness,
        sectors: &[PoStSector],
    ) -> Result<Vec<u8>, ProofError> {
        self.wait(TaskType::WinningPoSt);
        for s in sectors {
            check_sector(s).map_err(|reason| ProofError::Failed {
                op: "WinningPoSt",
                sector: s.sector.to_string(),
                reason,
            })?;
        }
        let public: Vec<PublicSector> = sectors.iter().map(PublicSector::from).collect();
        Ok(post_proof(b"winning", miner, randomness, &public))
    }

    fn verify_seal(
        &self,
        sector: &SectorRef,
        comms: &SealedCommitments,
        ticket: &Randomness,
        seed: &Randomness,
        proof: &[u8],
    ) -> Result<bool, ProofError> {
        Ok(proof == seal_proof(sector, comms, ticket, seed).as_slice())
    }

    fn verify_window_post(
        &self,
        miner: u64,
        randomness: &Randomness,
        sectors: &[PublicSector],
        proof: &[u8],
    ) -> Result<bool, ProofError> {
        Ok(!sectors.is_empty()
            && proof == post_proof(b"window", miner, randomness, sectors).as_slice())
    }

    fn verify_winning_post(
        &self,
        miner: u64,
        randomness: &Randomness,
        sectors: &[PublicSector],
        proof: &[u8],
    ) -> Result<bool, ProofError> {
        Ok(!sectors.is_empty()
            && proof == post_proof(b"winning", miner, randomness, sectors).as_slice())
    }
}

fn seal_proof(
    sector: &SectorRef,
    comms: &SealedCommitments,
    ticket: &Randomness,
    seed: &Randomness,
) -> Vec<u8> {
    proof(
        b"seal",
        &[
            &sector_bytes(sector),
            &comms.comm_d,
            &comms.comm_r,
            ticket,
            seed,
        ],
    )
}
