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

use crate::real::fresh_dir;
use crate::types::*;

/// Every mock proof starts with these bytes.
pub const MOCK_PREFIX: &[u8] = b"MOCK";

/// See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct MockEngine {
    delays: HashMap<TaskType, Duration>,
    /// C2 proofs still to be made corrupt (fault injection, shared by clones).
    corrupt_proofs: std::sync::Arc<std::sync::atomic::AtomicU32>,
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

    /// Makes the next `n` C2 proofs corrupt (one byte flipped), as a failing GPU or a
    /// damaged transfer would: they do not verify.
    pub fn with_corrupt_proofs(self, n: u32) -> Self {
        self.corrupt_proofs
            .store(n, std::sync::atomic::Ordering::SeqCst);
        self
    }

    /// The per-task delays set with [`MockEngine::with_delay`].
    pub fn delays(&self) -> Vec<(TaskType, Duration)> {
        let mut v: Vec<_> = self.delays.iter().map(|(t, d)| (*t, *d)).collect();
        v.sort();
        v
    }

    /// Takes one of the corrupt C2 proofs still to make, if any (for a processor child that
    /// makes this one proof: the count stays with the worker across children).
    pub fn take_corrupt_proof(&self) -> bool {
        self.corrupt_proofs
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            )
            .is_ok()
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

/// Word `idx` of the keystream for `key`: cheap, and addressable at any offset.
fn key_word(key: &[u8; 32], idx: u64) -> u64 {
    let k = u64::from_le_bytes(key[..8].try_into().expect("8 bytes"))
        ^ u64::from_le_bytes(key[8..16].try_into().expect("8 bytes")).rotate_left(17);
    let mut z = k ^ idx.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// XORs `data` in place with the keystream for `key`, starting at byte `at`.
fn xor_keystream(key: &[u8; 32], at: u64, data: &mut [u8]) {
    for (i, b) in data.iter_mut().enumerate() {
        let pos = at + i as u64;
        *b ^= key_word(key, pos / 8).to_le_bytes()[(pos % 8) as usize];
    }
}

const CHUNK: usize = 127 * 8192;

/// Creates `path` with `len` bytes of keyed content (layer and tree files).
fn create_sized(path: &Path, key: &[u8; 32], len: u64) -> Result<(), ProofError> {
    let mut f = std::io::BufWriter::new(fs::File::create(path).map_err(io(path))?);
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(CHUNK as u64) as usize;
        buf[..n].fill(0);
        xor_keystream(key, done, &mut buf[..n]);
        f.write_all(&buf[..n]).map_err(io(path))?;
        done += n as u64;
    }
    f.flush().map_err(io(path))
}

/// Hashes everything read through it.
struct Hashing<R> {
    inner: R,
    state: blake2b_simd::State,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.state.update(&buf[..n]);
        Ok(n)
    }
}

fn hashing<R: Read>(inner: R) -> Hashing<R> {
    Hashing {
        inner,
        state: blake2b_simd::Params::new().hash_length(32).to_state(),
    }
}

fn digest<R>(h: &Hashing<R>) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(h.state.finalize().as_bytes());
    out
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
    let len = fs::metadata(&s.sealed).map(|m| m.len()).unwrap_or(0);
    if !s.sealed.is_file() {
        return Err(format!("sealed file {} is missing", s.sealed.display()));
    }
    if len != s.sector.size().bytes() {
        return Err(format!(
            "sealed file {} holds {len} bytes, not a sector's {}",
            s.sealed.display(),
            s.sector.size().bytes()
        ));
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
        if size == 0 || !size.is_multiple_of(127) {
            return Err(ProofError::Invalid {
                op: "AddPiece",
                reason: format!("{size} bytes is not a valid unpadded piece size"),
            });
        }
        let source: Box<dyn Read> = match data {
            PieceData::Zeros => Box::new(std::io::repeat(0).take(size)),
            PieceData::File(p) => {
                let f = fs::File::open(p).map_err(io(p))?;
                let len = f.metadata().map_err(io(p))?.len();
                if len < size {
                    return Err(ProofError::Invalid {
                        op: "AddPiece",
                        reason: format!("{} holds {len} bytes, the piece is {size}", p.display()),
                    });
                }
                Box::new(f.take(size))
            }
        };
        let mut src = hashing(source);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(unsealed)
            .map_err(io(unsealed))?;
        f.seek(SeekFrom::Start(piece_offset(existing)))
            .map_err(io(unsealed))?;
        let mut w = std::io::BufWriter::with_capacity(CHUNK, f);
        let mut padded = Fr32Reader::new(&mut src).take(size / 127 * 128);
        std::io::copy(&mut padded, &mut w).map_err(io(unsealed))?;
        w.flush().map_err(io(unsealed))?;
        Ok(PieceInfo {
            size,
            commitment: hash(&[b"commP", &size.to_le_bytes(), &digest(&src)]),
        })
    }

    fn pre_commit1(
        &self,
        sector: &SectorRef,
        paths: SealPaths<'_>,
        ticket: &Randomness,
        pieces: &[PieceInfo],
    ) -> Result<PhaseOutput, ProofError> {
        // The delay goes by in SDR layers, each said as the real proofs say it (a child's
        // progress report reads it).
        if let Some(d) = self.delays.get(&TaskType::PreCommit1) {
            let layers = resources::progress::sdr_layers(sector.size());
            for layer in 1..=layers {
                tracing::info!("MOCK PC1: generating layer: {layer}");
                std::thread::sleep(*d / layers as u32);
            }
        }
        let size = sector.size().bytes();
        fresh_dir(paths.cache)?;
        // The replica: the unsealed data under the sector's keystream, a chunk at a time.
        let rkey = replica_key(sector, ticket);
        let mut input = fs::File::open(paths.unsealed)
            .map_err(io(paths.unsealed))?
            .take(size);
        let mut out =
            std::io::BufWriter::new(fs::File::create(paths.sealed).map_err(io(paths.sealed))?);
        let mut buf = vec![0u8; CHUNK];
        let mut done = 0u64;
        while done < size {
            let n = (size - done).min(CHUNK as u64) as usize;
            buf[..n].fill(0);
            let mut got = 0;
            while got < n {
                match input.read(&mut buf[got..n]).map_err(io(paths.unsealed))? {
                    0 => break,
                    k => got += k,
                }
            }
            xor_keystream(&rkey, done, &mut buf[..n]);
            out.write_all(&buf[..n]).map_err(io(paths.sealed))?;
            done += n as u64;
        }
        out.flush().map_err(io(paths.sealed))?;
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
        let mut sealed = hashing(fs::File::open(paths.sealed).map_err(io(paths.sealed))?);
        std::io::copy(&mut sealed, &mut std::io::sink()).map_err(io(paths.sealed))?;
        let comm_r = hash(&[b"comm_r", &pc1.comm_d, &digest(&sealed)]);
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
        let mut proof = seal_proof(sector, &c1.comms, &c1.ticket, &c1.seed);
        if self.take_corrupt_proof() {
            tracing::warn!(
                sector = sector.number,
                "MOCK engine: making a corrupt C2 proof (MockCorruptProofs)"
            );
            if let Some(b) = proof.last_mut() {
                *b ^= 0xff;
            }
        }
        Ok(proof)
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
        check_unseal_range(offset, len)?;
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

    fn check_provable(
        &self,
        _miner: u64,
        _randomness: &Randomness,
        sectors: &[PoStSector],
    ) -> Result<Vec<(u64, String)>, ProofError> {
        Ok(sectors
            .iter()
            .filter_map(|s| check_sector(s).err().map(|why| (s.sector.number, why)))
            .collect())
    }

    fn generate_window_post(
        &self,
        miner: u64,
        randomness: &Randomness,
        sectors: &[PoStSector],
    ) -> Result<Vec<u8>, ProofError> {
        self.wait(TaskType::WindowPoSt);
        let faulty = self.check_provable(miner, randomness, sectors)?;
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
