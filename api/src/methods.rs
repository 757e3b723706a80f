//! Method names (lotus's where lotus has one) and the permission each needs.

use stores::Permission;

pub const VERSION: &str = "Filecoin.Version";
pub const ACTOR_ADDRESS: &str = "Filecoin.ActorAddress";
pub const ACTOR_SECTOR_SIZE: &str = "Filecoin.ActorSectorSize";
pub const MINER_INFO: &str = "Filecoin.MinerInfo";
pub const PLEDGE_SECTOR: &str = "Filecoin.PledgeSector";
pub const SECTORS_LIST: &str = "Filecoin.SectorsList";
pub const SECTORS_STATUS: &str = "Filecoin.SectorsStatus";
pub const SECTOR_REMOVE: &str = "Filecoin.SectorRemove";
pub const WORKER_JOBS: &str = "Filecoin.WorkerJobs";
pub const WORKER_STATS: &str = "Filecoin.WorkerStats";
pub const SEALING_ABORT: &str = "Filecoin.SealingAbort";
pub const SEALING_SCHED_DIAG: &str = "Filecoin.SealingSchedDiag";
pub const STORAGE_LIST: &str = "Filecoin.StorageList";
pub const STORAGE_ATTACH: &str = "Filecoin.StorageAttach";
pub const STORAGE_FIND_SECTOR: &str = "Filecoin.StorageFindSector";
pub const CHAIN_HEAD: &str = "Filecoin.ChainHead";
pub const STATE_MINER_POWER: &str = "Filecoin.StateMinerPower";
/// The miner's WindowPoSt deadlines: partitions, faults, recoveries, the current deadline and
/// what happened at each deadline's last opening.
pub const STATE_MINER_DEADLINES: &str = "Filecoin.StateMinerDeadlines";
/// `proving check DEADLINE`: the deadline's sectors that cannot be proven now, with why.
pub const CHECK_PROVABLE: &str = "Filecoin.CheckProvable";
pub const AUTH_NEW: &str = "Filecoin.AuthNew";
pub const AUTH_VERIFY: &str = "Filecoin.AuthVerify";
pub const SHUTDOWN: &str = "Filecoin.Shutdown";
/// A worker announces itself (its API URL); the sealer connects back.
pub const WORKER_CONNECT: &str = "Filecoin.WorkerConnect";
/// A worker returns a task's result (retried until delivered).
pub const WORKER_RETURN: &str = "Filecoin.WorkerReturn";
/// The token secret, for workers (they verify the sealer's tokens and serve /remote with it).
pub const WORKER_JWT_SECRET: &str = "Filecoin.WorkerJwtSecret";

// Served by workers.
pub const SESSION: &str = "Filecoin.Session";
pub const WORKER_INFO: &str = "Filecoin.WorkerInfo";
pub const WORKER_FETCH: &str = "Filecoin.WorkerFetch";
pub const WORKER_EXECUTE: &str = "Filecoin.WorkerExecute";
pub const WORKER_TASK_ENABLE: &str = "Filecoin.WorkerTaskEnable";
pub const WORKER_TASK_DISABLE: &str = "Filecoin.WorkerTaskDisable";

/// Every method the sealer serves, with the permission it needs.
pub const SEALER_METHODS: &[(&str, Permission)] = &[
    (VERSION, Permission::Read),
    (ACTOR_ADDRESS, Permission::Read),
    (ACTOR_SECTOR_SIZE, Permission::Read),
    (MINER_INFO, Permission::Read),
    (PLEDGE_SECTOR, Permission::Write),
    (SECTORS_LIST, Permission::Read),
    (SECTORS_STATUS, Permission::Read),
    (SECTOR_REMOVE, Permission::Admin),
    (WORKER_JOBS, Permission::Read),
    (WORKER_STATS, Permission::Read),
    (SEALING_ABORT, Permission::Admin),
    (SEALING_SCHED_DIAG, Permission::Admin),
    (STORAGE_LIST, Permission::Read),
    (STORAGE_ATTACH, Permission::Admin),
    (STORAGE_FIND_SECTOR, Permission::Read),
    (CHAIN_HEAD, Permission::Read),
    (STATE_MINER_POWER, Permission::Read),
    (STATE_MINER_DEADLINES, Permission::Read),
    (CHECK_PROVABLE, Permission::Admin),
    (AUTH_NEW, Permission::Admin),
    (AUTH_VERIFY, Permission::Read),
    (SHUTDOWN, Permission::Admin),
    (WORKER_CONNECT, Permission::Admin),
    (WORKER_RETURN, Permission::Admin),
    (WORKER_JWT_SECRET, Permission::Admin),
];

/// Every method a worker serves, with the permission it needs.
pub const WORKER_METHODS: &[(&str, Permission)] = &[
    (VERSION, Permission::Read),
    (SESSION, Permission::Read),
    (WORKER_INFO, Permission::Read),
    (WORKER_FETCH, Permission::Admin),
    (WORKER_EXECUTE, Permission::Admin),
    (WORKER_TASK_ENABLE, Permission::Admin),
    (WORKER_TASK_DISABLE, Permission::Admin),
    (STORAGE_ATTACH, Permission::Admin),
    (SHUTDOWN, Permission::Admin),
];

/// The permission `method` needs, or `None` for a method the sealer does not serve.
pub fn permission(method: &str) -> Option<Permission> {
    if crate::index::METHODS.contains(&method) {
        return Some(Permission::Admin);
    }
    find(SEALER_METHODS, method)
}

/// The permission `method` needs on a worker.
pub fn worker_permission(method: &str) -> Option<Permission> {
    find(WORKER_METHODS, method)
}

fn find(list: &[(&str, Permission)], method: &str) -> Option<Permission> {
    list.iter().find(|(m, _)| *m == method).map(|(_, p)| *p)
}
