//! Every RPC method of the sealer and the workers, as [`crate::contract`] definitions: name
//! (lotus's where lotus has one), positional parameters, result, and permission (lotus-miner's
//! documented one for every lotus-named method: WorkerJobs, WorkerStats, StorageList and
//! StorageFindSector are admin there).

use resources::{SectorId, SectorRef, SectorSize};
use stores::index::{Listing, ReservationId, StorageEntry};
use stores::{
    FileType, FileTypes, FsStat, PathKind, Permission, SectorLocation, StorageId, StorageInfo,
};

use crate::contract::methods;
use crate::tasks::{TaskCall, TaskResult};
use crate::types::*;

methods! {
    Version = "Filecoin.Version", Read, () -> VersionInfo;
    ActorAddress = "Filecoin.ActorAddress", Read, () -> String;
    ActorSectorSize = "Filecoin.ActorSectorSize", Read, () -> u64;
    /// The miner as this sealer runs it (engine, sector size, storage, workers).
    MinerInfoCall = "Filecoin.MinerInfo", Read, () -> MinerInfo;
    PledgeSector = "Filecoin.PledgeSector", Write, () -> SectorId;
    SectorsList = "Filecoin.SectorsList", Read, () -> Vec<u64>;
    /// lotus's: the numbers of the sectors in any of the states.
    SectorsListInStates = "Filecoin.SectorsListInStates", Read, (Vec<SectorState>,) -> Vec<u64>;
    /// Ours: `sectors list` in one call: the sectors in any of the states (all with none),
    /// by number, `limit` of them (0: all) from `offset`, and how many match; with the fourth
    /// `true`, each on-chain row's expiration too (one chain call for the page).
    SectorsListPage = "Filecoin.SectorsListPage", Read, (Vec<SectorState>, u64, u64, Option<bool>) -> SectorsPage;
    /// Sector number, and whether to add the on-chain view.
    SectorsStatus = "Filecoin.SectorsStatus", Read, (u64, Option<bool>) -> SectorInfo;
    SectorRemove = "Filecoin.SectorRemove", Admin, (u64,) -> ();
    /// `sectors rebuild N`: makes the committed-capacity sector's replica again from its
    /// recorded ticket (PC1 of zeros, PC2, checked against the chain's commR).
    SectorRebuild = "Filecoin.SectorRebuild", Admin, (u64,) -> ();
    /// `sectors terminate N`: the Proving sector's TerminateSectors, then its files removed.
    SectorTerminate = "Filecoin.SectorTerminate", Admin, (u64,) -> ();
    /// `sectors extend`: one ExtendSectorExpiration2 for these sectors, from the worker, with
    /// this MaxFee ("0": the node's).
    SectorsExtend = "Filecoin.SectorsExtend", Admin, (Vec<u64>, ExtendTo, String) -> Extended;
    WorkerJobs = "Filecoin.WorkerJobs", Admin, () -> Vec<JobRow>;
    WorkerStats = "Filecoin.WorkerStats", Admin, () -> Vec<WorkerRow>;
    SealingAbort = "Filecoin.SealingAbort", Admin, (u64,) -> ();
    SealingSchedDiag = "Filecoin.SealingSchedDiag", Admin, () -> SchedDiag;
    /// Ours: what `sealer plan` needs of a running cluster: the sector size, the sectors
    /// proven, and each registered worker with its resource table, sealing paths and the
    /// usual times of the steps it ran.
    SealingPlanInputs = "Filecoin.SealingPlanInputs", Admin, () -> PlanInputs;
    StorageList = "Filecoin.StorageList", Admin, () -> Vec<StorageRow>;
    StorageAttach = "Filecoin.StorageAttach", Admin, (AttachParams,) -> String;
    /// `storage detach PATH` (lotus's StorageDetachLocal): the path leaves storage.json and the
    /// index; its files stay on disk. Returns the path's storage ID.
    StorageDetachLocal = "Filecoin.StorageDetachLocal", Admin, (String,) -> String;
    StorageFindSector = "Filecoin.StorageFindSector", Admin, (u64,) -> Vec<FoundFile>;
    ChainHead = "Filecoin.ChainHead", Read, () -> crate::types::ChainHead;
    StateMinerPower = "Filecoin.StateMinerPower", Read, () -> MinerPower;
    /// The miner's WindowPoSt deadlines: partitions, faults, recoveries, the current deadline
    /// and what happened at each deadline's last opening.
    StateMinerDeadlines = "Filecoin.StateMinerDeadlines", Read, () -> ProvingDeadlines;
    /// `proving check DEADLINE`: the deadline's sectors that cannot be proven now, with why.
    CheckProvable = "Filecoin.CheckProvable", Admin, (u64,) -> Provable;
    /// `actor control list`: the miner's owner, worker and control addresses, what each
    /// sends under `[Addresses]`, and their balances.
    ActorControlList = "Filecoin.ActorControlList", Read, () -> Vec<ControlRow>;
    /// `actor control set ADDR...`: ChangeWorkerAddress from the owner with these control
    /// addresses (the worker kept); returns the message's CID.
    ActorControlSet = "Filecoin.ActorControlSet", Admin, (Vec<String>,) -> String;
    /// `sectors batching precommit`: the sectors waiting in the pre-commit batch queue.
    SectorPreCommitPending = "Filecoin.SectorPreCommitPending", Read, () -> Vec<BatchQueued>;
    /// `sectors batching precommit --publish-now`: the batch goes now; what was sent.
    SectorPreCommitFlush = "Filecoin.SectorPreCommitFlush", Admin, () -> Vec<BatchSent>;
    /// `sectors batching commit`: the sectors waiting in the prove-commit batch queue.
    SectorCommitPending = "Filecoin.SectorCommitPending", Read, () -> Vec<BatchQueued>;
    /// `sectors batching commit --publish-now`.
    SectorCommitFlush = "Filecoin.SectorCommitFlush", Admin, () -> Vec<BatchSent>;
    AuthNew = "Filecoin.AuthNew", Admin, (Vec<Permission>,) -> String;
    AuthVerify = "Filecoin.AuthVerify", Read, (String,) -> Vec<Permission>;
    Shutdown = "Filecoin.Shutdown", Admin, () -> ();
    /// A worker announces itself (its API URL); the sealer connects back.
    WorkerConnect = "Filecoin.WorkerConnect", Admin, (String,) -> Connected;
    /// A worker's heartbeat, every [`crate::HEARTBEAT`]: its URL and session, and every
    /// [`crate::HEALTH_EVERY`] beats its paths' health (what `StorageIndexReportHealth`
    /// reports, in the same call: a thousand workers' paths are 200 calls a second fewer). The
    /// answer says whether the sealer knows that session (`false`: a restarted sealer, or a
    /// worker given up as lost; it connects again with `WorkerConnect`). lotus's miner pings
    /// each worker instead, which costs the sealer a call out per worker per beat.
    WorkerHeartbeat = "Filecoin.WorkerHeartbeat", Admin, (String, String, Option<Vec<stores::local::PathHealth>>) -> bool;
    /// A worker returns a call's result (retried until delivered): call ID and result.
    /// The third parameter: how the call's processor children ran (pid, CPUs, peak RSS).
    /// (A worker from before it sends none.)
    WorkerReturn = "Filecoin.WorkerReturn", Admin, (String, TaskResult, Option<Vec<processor::Run>>) -> ();
        /// A worker says how far a running call (or a fetch, under the key `WorkerFetch` gave) is
    /// (PC1's layer, a transfer's bytes). Not lotus's: its workers report nothing between
    /// start and result.
    WorkerProgress = "Filecoin.WorkerProgress", Admin, (String, resources::Progress) -> ();
    /// The token secret, for workers (they verify the sealer's tokens and serve /remote with it).
    WorkerJwtSecret = "Filecoin.WorkerJwtSecret", Admin, () -> String;

    // The sector index, served by the sealer to workers' storage.
    IndexAttach = "Filecoin.StorageIndexAttach", Admin, (StorageInfo, FsStat) -> ();
    IndexDetach = "Filecoin.StorageIndexDetach", Admin, (StorageId,) -> ();
    IndexReportHealth = "Filecoin.StorageIndexReportHealth", Admin, (StorageId, FsStat, Option<String>) -> ();
    IndexDeclareSector = "Filecoin.StorageIndexDeclareSector", Admin, (StorageId, SectorId, FileType) -> ();
    /// A path's files at once (a path attached or declared again).
    IndexDeclareSectors = "Filecoin.StorageIndexDeclareSectors", Admin, (StorageId, Vec<(SectorId, FileType)>) -> ();
    IndexDropSector = "Filecoin.StorageIndexDropSector", Admin, (StorageId, SectorId, FileType) -> ();
    IndexFindSector = "Filecoin.StorageIndexFindSector", Admin, (SectorId, FileTypes) -> Vec<SectorLocation>;
    IndexBestAlloc = "Filecoin.StorageIndexBestAlloc", Admin, (FileTypes, SectorSize, PathKind, Option<std::collections::HashSet<StorageId>>) -> Vec<StorageInfo>;
    IndexInfo = "Filecoin.StorageIndexInfo", Admin, (StorageId,) -> StorageInfo;
    IndexSectors = "Filecoin.StorageIndexSectors", Admin, (StorageId,) -> Vec<(SectorId, FileTypes)>;
    /// A path's declared files added up (`stores::index::Listing`): a worker declaring its
    /// paths again sends a path's files only when its own listing differs.
    IndexListing = "Filecoin.StorageIndexListing", Admin, (StorageId,) -> Option<Listing>;
    IndexList = "Filecoin.StorageIndexList", Admin, () -> Vec<StorageEntry>;
    IndexReserve = "Filecoin.StorageIndexReserve", Admin, (StorageId, u64) -> ReservationId;
    IndexRelease = "Filecoin.StorageIndexRelease", Admin, (ReservationId,) -> ();

    // Served by workers.
    Session = "Filecoin.Session", Read, () -> String;
    WorkerInfoCall = "Filecoin.WorkerInfo", Read, () -> WorkerInfo;
    /// The prepare stage: brings a sector's files a call reads onto the worker (moving them).
    /// The third parameter: the key under which the worker reports the fetch's progress
    /// (`WorkerProgress`); none from a sealer before it.
    WorkerFetch = "Filecoin.WorkerFetch", Admin, (SectorRef, FileTypes, Option<String>) -> ();
    /// Runs a call under an ID the sealer chose (a call ID runs once); the result comes back
    /// through `WorkerReturn`.
    /// The third parameter: the CPUs (and GPU) the scheduler placed it on (null where it did
    /// not).
    WorkerExecute = "Filecoin.WorkerExecute", Admin, (String, TaskCall, Option<resources::topology::Place>) -> ();
    WorkerTaskEnable = "Filecoin.WorkerTaskEnable", Admin, (String,) -> ();
    WorkerTaskDisable = "Filecoin.WorkerTaskDisable", Admin, (String,) -> ();
}
