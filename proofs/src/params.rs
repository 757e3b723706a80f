//! Groth16 parameters, as `lotus fetch-params` handles them: which files a sector size needs, which
//! are present in `FIL_PROOFS_PARAMETER_CACHE`, downloading the official ones from a gateway with
//! a digest check, and generating local ones for small devnets.
//!
//! Generated parameters come from a fresh random setup on this machine. They are for local devnets
//! only: they are NOT the Filecoin network's trusted setup, and proofs made with them verify only
//! against themselves.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use filecoin_proofs::constants::DefaultPieceHasher;
use filecoin_proofs::parameters::{
    public_params, window_post_public_params, winning_post_public_params,
};
use filecoin_proofs::types::{PoRepConfig, PoStConfig};
use filecoin_proofs::with_shape;
use filecoin_proofs_api::{RegisteredPoStProof, RegisteredSealProof};
use rand::rngs::OsRng;
use resources::SectorSize;
use serde::Deserialize;
use storage_proofs_core::compound_proof::CompoundProof;
use storage_proofs_core::merkle::MerkleTreeTrait;
use storage_proofs_core::parameter_cache::{parameter_cache_params_path, CacheableParameters};
use storage_proofs_porep::stacked::{StackedCircuit, StackedCompound, StackedDrg};
use storage_proofs_post::fallback::{FallbackPoSt, FallbackPoStCircuit, FallbackPoStCompound};

/// Where parameters live unless `FIL_PROOFS_PARAMETER_CACHE` says otherwise (lotus's default).
pub const DEFAULT_PARAMETER_CACHE: &str = "/var/tmp/filecoin-proof-parameters";
/// The gateway lotus downloads parameters from unless `IPFS_GATEWAY` says otherwise.
pub const DEFAULT_GATEWAY: &str = "https://proofs.filecoin.io/ipfs/";

/// Said whenever parameters are generated.
pub const LOCAL_ONLY_WARNING: &str =
    "generated parameters are for local devnets only: they are NOT the Filecoin network's \
trusted setup, and proofs made with them are worthless on any public network";

#[derive(Debug, thiserror::Error)]
pub enum ParamError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("downloading {name} from {url}: {reason}")]
    Download {
        name: String,
        url: String,
        reason: String,
    },
    #[error("{name}: digest mismatch (want {want}, got {got}); the download was discarded")]
    Digest {
        name: String,
        want: String,
        got: String,
    },
    #[error(
        "parameters for {0} sectors cannot be generated here (only 2KiB, 8MiB and 512MiB devnets)"
    )]
    TooBig(SectorSize),
    #[error("{0}")]
    Refused(String),
    #[error("generating {name}: {reason}")]
    Generate { name: String, reason: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ParamError + '_ {
    move |source| ParamError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One entry of the proofs' parameter manifest (`parameters.json`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ParamEntry {
    pub cid: String,
    pub digest: String,
    pub sector_size: u64,
}

pub type Manifest = BTreeMap<String, ParamEntry>;

/// The manifest shipped with filecoin-proofs 19 (official CIDs and digests).
pub fn official_manifest() -> Manifest {
    serde_json::from_str(include_str!("../parameters.json")).expect("the bundled manifest parses")
}

/// `FIL_PROOFS_PARAMETER_CACHE`, or lotus's default.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("FIL_PROOFS_PARAMETER_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PARAMETER_CACHE))
}

/// `IPFS_GATEWAY`, or lotus's default.
pub fn gateway() -> String {
    std::env::var("IPFS_GATEWAY").unwrap_or_else(|_| DEFAULT_GATEWAY.to_string())
}

/// The files sealing and proving `size` sectors need: PoRep, WinningPoSt and WindowPoSt
/// (`.params` and `.vk`); snap-deal files are left out.
pub fn needed(manifest: &Manifest, size: SectorSize) -> Vec<(String, ParamEntry)> {
    manifest
        .iter()
        .filter(|(name, e)| e.sector_size == size.bytes() && !name.contains("empty-sector-update"))
        .map(|(n, e)| (n.clone(), e.clone()))
        .collect()
}

/// Whether each needed file is in `dir`.
pub fn status(dir: &Path, manifest: &Manifest, size: SectorSize) -> Vec<(String, bool)> {
    needed(manifest, size)
        .into_iter()
        .map(|(name, _)| {
            let present = dir.join(&name).is_file();
            (name, present)
        })
        .collect()
}

/// The manifest's digest of a file: the first 16 bytes of its BLAKE2b-512, in hex.
pub fn digest_of(mut r: impl Read) -> io::Result<String> {
    let mut h = blake2b_simd::Params::new().hash_length(64).to_state();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(crate::bytes::hex(&h.finalize().as_bytes()[..16]))
}

/// Downloads `name` from `gateway` into `dir`, checking its digest before renaming it into place.
/// Nothing is left under the final name unless the digest matched.
pub fn download(
    gateway: &str,
    dir: &Path,
    name: &str,
    entry: &ParamEntry,
) -> Result<(), ParamError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let url = format!("{}/{}", gateway.trim_end_matches('/'), entry.cid);
    let fail = |reason: String| ParamError::Download {
        name: name.to_string(),
        url: url.clone(),
        reason,
    };
    // A name of its own, so two processes fetching into one cache never share a file.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let partial = dir.join(format!("{name}.partial.{}-{nonce}", std::process::id()));
    // TLS for https gateways, with ring as the crypto provider (installed once per process).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let result = (|| {
        let mut resp = reqwest::blocking::Client::builder()
            .timeout(None)
            .connect_timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| fail(with_causes(&e)))?
            .get(&url)
            .send()
            .map_err(|e| fail(with_causes(&e)))?;
        if !resp.status().is_success() {
            return Err(fail(resp.status().to_string()));
        }
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)
            .map_err(io_err(&partial))?;
        let mut h = blake2b_simd::Params::new().hash_length(64).to_state();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = resp.read(&mut buf).map_err(|e| fail(with_causes(&e)))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            f.write_all(&buf[..n]).map_err(io_err(&partial))?;
        }
        f.sync_all().map_err(io_err(&partial))?;
        let got = crate::bytes::hex(&h.finalize().as_bytes()[..16]);
        if got != entry.digest {
            return Err(ParamError::Digest {
                name: name.to_string(),
                want: entry.digest.clone(),
                got,
            });
        }
        let dest = dir.join(name);
        fs::rename(&partial, &dest).map_err(io_err(&dest))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result
}

/// An error with every cause under it ("error sending request: dns error: ..."): reqwest's
/// own message leaves the timeout, the reset or the closed connection to its sources. The
/// parameter download and the API client both say their failures this way.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Downloads every needed file that is missing. Returns the names fetched.
pub fn fetch_missing(
    gateway: &str,
    dir: &Path,
    manifest: &Manifest,
    size: SectorSize,
) -> Result<Vec<String>, ParamError> {
    let mut got = Vec::new();
    for (name, entry) in needed(manifest, size) {
        if dir.join(&name).is_file() {
            continue;
        }
        tracing::info!(%name, "downloading parameter file");
        download(gateway, dir, &name, &entry)?;
        got.push(name);
    }
    Ok(got)
}

fn seal_proof(size: SectorSize) -> RegisteredSealProof {
    match size {
        SectorSize::S2KiB => RegisteredSealProof::StackedDrg2KiBV1_1,
        SectorSize::S8MiB => RegisteredSealProof::StackedDrg8MiBV1_1,
        SectorSize::S512MiB => RegisteredSealProof::StackedDrg512MiBV1_1,
        SectorSize::S32GiB => RegisteredSealProof::StackedDrg32GiBV1_1,
        SectorSize::S64GiB => RegisteredSealProof::StackedDrg64GiBV1_1,
    }
}

/// What a circuit's files need.
#[derive(PartialEq)]
enum Todo {
    /// Both there: nothing is overwritten.
    Nothing,
    /// The `.params` is there: its `.vk` is derived from it.
    VerifyingKey,
    /// Neither: a fresh setup.
    Everything,
}

/// Refuses when only a `.vk` exists: a new `.params` would not match it.
fn todo(id: &str) -> Result<Todo, ParamError> {
    let params = parameter_cache_params_path(id);
    let vk = params.with_extension("vk");
    match (params.exists(), vk.exists()) {
        (true, true) => Ok(Todo::Nothing),
        (true, false) => Ok(Todo::VerifyingKey),
        (false, true) => Err(ParamError::Refused(format!(
            "{} exists without its .params: remove it to generate a matching pair, nothing was overwritten",
            vk.display()
        ))),
        (false, false) => Ok(Todo::Everything),
    }
}

fn generated(name: &str) -> impl Fn(anyhow::Error) -> ParamError + '_ {
    move |e| ParamError::Generate {
        name: name.to_string(),
        reason: e.to_string(),
    }
}

fn gen_porep<Tree: 'static + MerkleTreeTrait>(
    config: &PoRepConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<(), ParamError> {
    let name = "PoRep";
    let pp = public_params::<Tree>(config).map_err(generated(name))?;
    type C<T> = StackedCompound<T, DefaultPieceHasher>;
    let circuit =
        <C<Tree> as CompoundProof<StackedDrg<'_, Tree, DefaultPieceHasher>, _>>::blank_circuit(&pp);
    let id = <C<Tree> as CacheableParameters<StackedCircuit<Tree, DefaultPieceHasher>, _>>::cache_identifier(&pp);
    let todo = todo(&id)?;
    if todo == Todo::Nothing {
        progress(&format!("{name}: {id} present, not overwritten"));
        return Ok(());
    }
    progress(&format!("{name}: generating {id} (this takes a while)"));
    let t = Instant::now();
    <C<Tree> as CacheableParameters<_, _>>::get_param_metadata(circuit, &pp)
        .map_err(generated(name))?;
    if todo == Todo::Everything {
        <C<Tree> as CompoundProof<StackedDrg<'_, Tree, DefaultPieceHasher>, _>>::groth_params(
            Some(&mut OsRng),
            &pp,
        )
        .map_err(generated(name))?;
    }
    <C<Tree> as CompoundProof<StackedDrg<'_, Tree, DefaultPieceHasher>, _>>::verifying_key(
        Some(&mut OsRng),
        &pp,
    )
    .map_err(generated(name))?;
    progress(&format!(
        "{name}: generated {id} in {:.0} s",
        t.elapsed().as_secs_f64()
    ));
    Ok(())
}

fn gen_post<Tree: 'static + MerkleTreeTrait>(
    config: &PoStConfig,
    window: bool,
    progress: &mut dyn FnMut(&str),
) -> Result<(), ParamError> {
    let name = if window { "WindowPoSt" } else { "WinningPoSt" };
    let pp = if window {
        window_post_public_params::<Tree>(config)
    } else {
        winning_post_public_params::<Tree>(config)
    }
    .map_err(generated(name))?;
    type C<T> = FallbackPoStCompound<T>;
    let circuit = <C<Tree> as CompoundProof<FallbackPoSt<'_, Tree>, _>>::blank_circuit(&pp);
    let id = <C<Tree> as CacheableParameters<FallbackPoStCircuit<Tree>, _>>::cache_identifier(&pp);
    let todo = todo(&id)?;
    if todo == Todo::Nothing {
        progress(&format!("{name}: {id} present, not overwritten"));
        return Ok(());
    }
    progress(&format!("{name}: generating {id}"));
    let t = Instant::now();
    <C<Tree> as CacheableParameters<_, _>>::get_param_metadata(circuit, &pp)
        .map_err(generated(name))?;
    if todo == Todo::Everything {
        <C<Tree> as CompoundProof<FallbackPoSt<'_, Tree>, _>>::groth_params(Some(&mut OsRng), &pp)
            .map_err(generated(name))?;
    }
    <C<Tree> as CompoundProof<FallbackPoSt<'_, Tree>, _>>::verifying_key(Some(&mut OsRng), &pp)
        .map_err(generated(name))?;
    progress(&format!(
        "{name}: generated {id} in {:.0} s",
        t.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Generates the parameters a small devnet needs (2KiB, 8MiB, 512MiB): WinningPoSt, WindowPoSt,
/// then PoRep, into `FIL_PROOFS_PARAMETER_CACHE`. Existing files are never overwritten.
/// `progress` gets a line per step, starting with [`LOCAL_ONLY_WARNING`].
pub fn generate(size: SectorSize, progress: &mut dyn FnMut(&str)) -> Result<(), ParamError> {
    if !matches!(
        size,
        SectorSize::S2KiB | SectorSize::S8MiB | SectorSize::S512MiB
    ) {
        return Err(ParamError::TooBig(size));
    }
    progress(&format!("WARNING: {LOCAL_ONLY_WARNING}"));
    let dir = cache_dir();
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let seal = seal_proof(size);
    let (winning, window) = post_proofs(size);
    let bytes = size.bytes();
    with_shape!(bytes, gen_post, &winning.as_v1_config(), false, progress)?;
    with_shape!(bytes, gen_post, &window.as_v1_config(), true, progress)?;
    with_shape!(bytes, gen_porep, &seal.as_v1_config(), progress)?;
    Ok(())
}

/// WinningPoSt and WindowPoSt proof types for a size (window: the chain's V1_1, proofs' V1_2).
pub(crate) fn post_proofs(size: SectorSize) -> (RegisteredPoStProof, RegisteredPoStProof) {
    use RegisteredPoStProof::*;
    match size {
        SectorSize::S2KiB => (StackedDrgWinning2KiBV1, StackedDrgWindow2KiBV1_2),
        SectorSize::S8MiB => (StackedDrgWinning8MiBV1, StackedDrgWindow8MiBV1_2),
        SectorSize::S512MiB => (StackedDrgWinning512MiBV1, StackedDrgWindow512MiBV1_2),
        SectorSize::S32GiB => (StackedDrgWinning32GiBV1, StackedDrgWindow32GiBV1_2),
        SectorSize::S64GiB => (StackedDrgWinning64GiBV1, StackedDrgWindow64GiBV1_2),
    }
}

/// Makes sure the parameters for `size` are in the cache: downloads the missing ones, or with
/// `generate` makes local devnet parameters (2KiB, 8MiB, 512MiB). `progress` gets a line per
/// step, and one a minute while generating.
pub fn ensure(
    size: SectorSize,
    generate_missing: bool,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), ParamError> {
    let dir = cache_dir();
    let manifest = official_manifest();
    let st = status(&dir, &manifest, size);
    let missing = st.iter().filter(|(_, p)| !p).count();
    progress(&format!(
        "parameter cache: {} ({} of {} files present for {size})",
        dir.display(),
        st.len() - missing,
        st.len()
    ));
    if missing == 0 {
        return Ok(());
    }
    if !generate_missing {
        for name in fetch_missing(&gateway(), &dir, &manifest, size)? {
            progress(&format!("downloaded {name}"));
        }
        return Ok(());
    }
    let start = std::time::Instant::now();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let r = std::thread::scope(|s| {
        s.spawn(move || {
            use std::sync::mpsc::RecvTimeoutError::Timeout;
            while let Err(Timeout) = stopped.recv_timeout(std::time::Duration::from_secs(60)) {
                progress(&format!(
                    "  ... still generating parameters, {} s elapsed (15-25 minutes on 2 cores, once)",
                    start.elapsed().as_secs()
                ));
            }
        });
        let r = generate(size, &mut |line| progress(line));
        let _ = stop.send(());
        r
    });
    r?;
    progress(&format!(
        "generated {size} parameters in {} s",
        start.elapsed().as_secs()
    ));
    Ok(())
}
