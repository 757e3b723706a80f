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
pub const AUTH_NEW: &str = "Filecoin.AuthNew";
pub const AUTH_VERIFY: &str = "Filecoin.AuthVerify";
pub const SHUTDOWN: &str = "Filecoin.Shutdown";

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
    (AUTH_NEW, Permission::Admin),
    (AUTH_VERIFY, Permission::Read),
    (SHUTDOWN, Permission::Admin),
];

/// The permission `method` needs, or `None` for a method the sealer does not serve.
pub fn permission(method: &str) -> Option<Permission> {
    SEALER_METHODS
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, p)| *p)
}
