//! `exec` owns running a task call on one machine's storage with a proof engine: the part of a
//! worker that is the same whether it runs inside the sealer or as its own daemon. Every step can
//! be rerun after an interrupted attempt: files a step writes are removed before it starts again.
//! Failures come back as [`TaskError`]s whose kind the sector's retry policy acts on: storage
//! without room is `OutOfSpace`, a missing input file or an unusable earlier output `BadInput`.

use std::sync::Arc;

use proofs::{Engine, PieceData, SealPaths};
use resources::SectorRef;
use stores::{AcquireMode, FileType, FileTypes, LocalStore, PathKind, Remote, StoreError};

use api::tasks::{PoStTarget, TaskCall, TaskError, TaskOutput, TaskResult};

/// Fetches what `call` reads onto this machine (the prepare stage). Sealing files move (as
/// lotus's sealing fetches do): a second copy would only take room and go stale.
pub async fn prepare(remote: &Remote, call: &TaskCall) -> Result<(), TaskError> {
    prepare_reporting(remote, call, &|_| {}).await
}

/// `fetch`, telling `report` how far the transfer is (bytes of those announced) about once a
/// second while it runs.
pub async fn fetch_reporting(
    remote: &Remote,
    sector: &SectorRef,
    need: FileTypes,
    report: &(dyn Fn(resources::Progress) + Send + Sync),
) -> Result<(), TaskError> {
    reporting_transfers(remote, Some(sector), fetch(remote, sector, need), report).await
}

/// `execute`, telling `report` how far a transfer of the call's sector is (a GET moving a
/// finalized sector, an input fetched on the way) about once a second while it runs.
pub async fn execute_reporting(
    remote: &Remote,
    engine: &Arc<dyn Engine>,
    call: TaskCall,
    report: &(dyn Fn(resources::Progress) + Send + Sync),
) -> TaskResult {
    let sector = call.sector();
    reporting_transfers(
        remote,
        sector.as_ref(),
        execute(remote, engine, call),
        report,
    )
    .await
}

/// Runs `work`, reporting the transfers of `sector` under way meanwhile.
async fn reporting_transfers<T>(
    remote: &Remote,
    sector: Option<&SectorRef>,
    work: impl std::future::Future<Output = T>,
    report: &(dyn Fn(resources::Progress) + Send + Sync),
) -> T {
    let Some(sector) = sector else {
        return work.await;
    };
    tokio::pin!(work);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut last = None;
    loop {
        tokio::select! {
            r = &mut work => return r,
            _ = tick.tick() => {
                let now = remote.transfer(sector.id());
                if let Some(p) = now.filter(|_| now != last) {
                    report(p);
                }
                last = now;
            }
        }
    }
}

/// `prepare`, telling `report` how far its fetch is (see [`fetch_reporting`]).
pub async fn prepare_reporting(
    remote: &Remote,
    call: &TaskCall,
    report: &(dyn Fn(resources::Progress) + Send + Sync),
) -> Result<(), TaskError> {
    let need = call.inputs();
    let Some(sector) = call.sector().filter(|_| !need.is_empty()) else {
        return Ok(());
    };
    fetch_reporting(remote, &sector, need, report)
        .await
        .map_err(|e| e.context(format_args!("{}", call.describe())))
}

/// Brings `sector`'s files of `need` onto this machine's sealing paths, moving them.
pub async fn fetch(remote: &Remote, sector: &SectorRef, need: FileTypes) -> Result<(), TaskError> {
    remote
        .acquire(
            sector,
            need,
            FileTypes::NONE,
            PathKind::Sealing,
            AcquireMode::Move,
        )
        .await
        .map(|_| ())
        .map_err(|e| {
            TaskError::from(e).context(format_args!("fetching {need} of sector {}", sector.number))
        })
}

/// Runs `call` against the machine's storage with `engine`. Blocking proof work runs on
/// blocking threads.
pub async fn execute(remote: &Remote, engine: &Arc<dyn Engine>, call: TaskCall) -> TaskResult {
    let what = call.describe();
    run(remote, engine, call).await.map_err(|e| e.context(what))
}

async fn run(
    remote: &Remote,
    engine: &Arc<dyn Engine>,
    call: TaskCall,
) -> Result<TaskOutput, TaskError> {
    let store = remote.local();
    let e = engine.clone();
    match call {
        TaskCall::AddPiece { sector } => {
            store
                .remove(sector.id(), FileType::Unsealed.into())
                .await
                .map_err(err)?;
            let acq = store
                .acquire(
                    &sector,
                    FileTypes::NONE,
                    FileType::Unsealed.into(),
                    PathKind::Sealing,
                )
                .map_err(err)?;
            let unsealed = acq.paths.unsealed.clone().expect("allocated");
            let size = proofs::unpadded_capacity(&sector);
            let piece =
                blocking(move || e.add_piece(&sector, &unsealed, &PieceData::Zeros, size, &[]))
                    .await?;
            declare(store, &sector, &acq.storage, FileType::Unsealed.into()).await?;
            Ok(TaskOutput::Piece(piece))
        }
        TaskCall::PreCommit1 {
            sector,
            ticket,
            pieces,
            rebuild: true,
        } => {
            // A committed-capacity sector's data is zeros: its unsealed file is written here, and
            // the same ticket makes the same replica.
            store
                .remove(sector.id(), FileTypes::ALL)
                .await
                .map_err(err)?;
            let acq = store
                .acquire(&sector, FileTypes::NONE, FileTypes::ALL, PathKind::Sealing)
                .map_err(err)?;
            let p = acq.paths.clone();
            let unsealed = p.unsealed.clone().expect("allocated");
            let size = proofs::unpadded_capacity(&sector);
            let engine = e.clone();
            let piece = blocking(move || {
                engine.add_piece(&sector, &unsealed, &PieceData::Zeros, size, &[])
            })
            .await?;
            if pieces.as_slice() != [piece] {
                let recorded: Vec<String> = pieces
                    .iter()
                    .map(|p| proofs::bytes::hex(&p.commitment))
                    .collect();
                return Err(TaskError::bad_input(format!(
                    "sector {} records pieces [{}], zeros give {}: it holds data other than zeros, \
                     which must come back before its replica can be made again",
                    sector.number,
                    recorded.join(", "),
                    proofs::bytes::hex(&piece.commitment)
                )));
            }
            let out =
                blocking(move || e.pre_commit1(&sector, seal_paths(&p), &ticket, &pieces)).await?;
            declare(store, &sector, &acq.storage, FileTypes::ALL).await?;
            Ok(TaskOutput::PreCommit1(out))
        }
        TaskCall::PreCommit1 {
            sector,
            ticket,
            pieces,
            rebuild: false,
        } => {
            store
                .remove(sector.id(), FileTypes::SEALED)
                .await
                .map_err(err)?;
            let acq = store
                .acquire(
                    &sector,
                    FileType::Unsealed.into(),
                    FileTypes::SEALED,
                    PathKind::Sealing,
                )
                .map_err(err)?;
            let p = acq.paths.clone();
            let out =
                blocking(move || e.pre_commit1(&sector, seal_paths(&p), &ticket, &pieces)).await?;
            declare(store, &sector, &acq.storage, FileTypes::SEALED).await?;
            Ok(TaskOutput::PreCommit1(out))
        }
        TaskCall::PreCommit2 { sector, pc1 } => {
            let p = existing(store, &sector, FileTypes::ALL)?;
            let comms = blocking(move || e.pre_commit2(&sector, seal_paths(&p), &pc1)).await?;
            Ok(TaskOutput::PreCommit2(comms))
        }
        TaskCall::Commit1 {
            sector,
            ticket,
            seed,
            comms,
            pieces,
        } => {
            let p = existing(store, &sector, FileTypes::ALL)?;
            let out = blocking(move || {
                e.commit1(&sector, seal_paths(&p), &ticket, &seed, &comms, &pieces)
            })
            .await?;
            Ok(TaskOutput::Commit1(out))
        }
        TaskCall::Commit2 { sector, c1 } => {
            let proof = blocking(move || e.commit2(&sector, &c1)).await?;
            Ok(TaskOutput::Proof(proof))
        }
        TaskCall::Finalize { sector } => {
            let p = existing(store, &sector, FileTypes::SEALED)?;
            let cache = p.cache.clone().expect("found");
            blocking(move || e.finalize(&sector, &cache)).await?;
            if has_store_path(store) {
                store
                    .move_to_storage(&sector, FileTypes::SEALED)
                    .await
                    .map_err(err)?;
            }
            Ok(TaskOutput::Finalized)
        }
        TaskCall::WinningPoSt {
            miner,
            randomness,
            sectors,
            ..
        } => {
            let (targets, missing) = post_sectors(store, &sectors);
            if let Some((n, why)) = missing.first() {
                return Err(TaskError::bad_input(format!(
                    "WinningPoSt: sector {n}: {why}"
                )));
            }
            let proof =
                blocking(move || e.generate_winning_post(miner, &randomness, &targets)).await?;
            Ok(TaskOutput::WinningPoSt(proof))
        }
        TaskCall::WindowPoSt {
            miner,
            randomness,
            sectors,
            check_only,
            ..
        } => {
            let (targets, missing) = post_sectors(store, &sectors);
            if check_only || !missing.is_empty() || targets.is_empty() {
                let mut bad = missing;
                if !targets.is_empty() {
                    bad.extend(
                        blocking(move || e.check_provable(miner, &randomness, &targets)).await?,
                    );
                }
                bad.sort();
                return Ok(TaskOutput::Unprovable(bad));
            }
            match tokio::task::spawn_blocking(move || {
                e.generate_window_post(miner, &randomness, &targets)
            })
            .await
            .map_err(panicked)?
            {
                Ok(proof) => Ok(TaskOutput::WindowPoSt(proof)),
                Err(proofs::ProofError::FaultySectors(bad)) => Ok(TaskOutput::Unprovable(bad)),
                Err(e) => Err(e.into()),
            }
        }
        TaskCall::MoveStorage { sector } => {
            remote
                .acquire(
                    &sector,
                    FileTypes::SEALED,
                    FileTypes::NONE,
                    PathKind::Storage,
                    AcquireMode::Move,
                )
                .await
                .map_err(err)?;
            store
                .move_to_storage(&sector, FileTypes::SEALED)
                .await
                .map_err(err)?;
            // A committed-capacity sector keeps no unsealed copy.
            remote
                .remove_everywhere(sector.id(), FileType::Unsealed.into())
                .await
                .map_err(err)?;
            Ok(TaskOutput::Moved)
        }
    }
}

/// The files of the sectors a PoSt covers on this machine, and those not here.
#[allow(clippy::type_complexity)]
fn post_sectors(
    store: &LocalStore,
    sectors: &[PoStTarget],
) -> (Vec<proofs::PoStSector>, Vec<(u64, String)>) {
    let mut targets = Vec::new();
    let mut missing = Vec::new();
    for t in sectors {
        match store.acquire(
            &t.sector,
            FileTypes::SEALED,
            FileTypes::NONE,
            PathKind::Storage,
        ) {
            Ok(a) => targets.push(proofs::PoStSector {
                sector: t.sector,
                comm_r: t.comm_r,
                sealed: a.paths.sealed.clone().expect("found"),
                cache: a.paths.cache.clone().expect("found"),
            }),
            Err(e) => missing.push((t.sector.number, format!("not on this machine: {e}"))),
        }
    }
    (targets, missing)
}

/// Whether this machine has a long-term storage path.
pub fn has_store_path(store: &LocalStore) -> bool {
    store.paths().iter().any(|(_, _, m)| m.can_store)
}

fn err(e: StoreError) -> TaskError {
    e.into()
}

/// A proof step that panicked: not worth repeating on the same inputs as if it were passing.
fn panicked(e: tokio::task::JoinError) -> TaskError {
    TaskError::temporary(format!("task panicked: {e}"))
}

fn existing(
    store: &LocalStore,
    sector: &SectorRef,
    types: FileTypes,
) -> Result<stores::SectorPaths, TaskError> {
    Ok(store
        .acquire(sector, types, FileTypes::NONE, PathKind::Sealing)
        .map_err(err)?
        .paths)
}

fn seal_paths(p: &stores::SectorPaths) -> SealPaths<'_> {
    static EMPTY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let empty = EMPTY.get_or_init(Default::default);
    SealPaths {
        unsealed: p.unsealed.as_deref().unwrap_or(empty),
        sealed: p.sealed.as_deref().unwrap_or(empty),
        cache: p.cache.as_deref().unwrap_or(empty),
    }
}

async fn declare(
    store: &LocalStore,
    sector: &SectorRef,
    storage: &std::collections::HashMap<FileType, stores::StorageId>,
    types: FileTypes,
) -> Result<(), TaskError> {
    for t in types.iter() {
        if let Some(id) = storage.get(&t) {
            store.declare(sector.id(), t, id).await.map_err(err)?;
        }
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, proofs::ProofError> + Send + 'static,
) -> Result<T, TaskError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(panicked)?
        .map_err(TaskError::from)
}
