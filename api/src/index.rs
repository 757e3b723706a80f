//! The sector index over JSON-RPC: a worker's storage declares its paths and files to the
//! sealer's index through [`IndexClient`]; the sealer serves the same calls with [`serve`].

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use resources::{SectorId, SectorSize};
use serde_json::{json, Value};
use stores::index::{ReservationId, StorageEntry};
use stores::{
    FileType, FileTypes, FsStat, PathKind, SectorIndex, SectorLocation, StorageId, StorageInfo,
    StoreError,
};

use crate::rpc::RpcError;
use crate::Client;

pub const ATTACH: &str = "Filecoin.StorageIndexAttach";
pub const DETACH: &str = "Filecoin.StorageIndexDetach";
pub const REPORT_HEALTH: &str = "Filecoin.StorageIndexReportHealth";
pub const DECLARE: &str = "Filecoin.StorageIndexDeclareSector";
pub const DROP: &str = "Filecoin.StorageIndexDropSector";
pub const FIND: &str = "Filecoin.StorageIndexFindSector";
pub const BEST_ALLOC: &str = "Filecoin.StorageIndexBestAlloc";
pub const INFO: &str = "Filecoin.StorageIndexInfo";
pub const SECTORS: &str = "Filecoin.StorageIndexSectors";
pub const LIST: &str = "Filecoin.StorageIndexList";
pub const RESERVE: &str = "Filecoin.StorageIndexReserve";
pub const RELEASE: &str = "Filecoin.StorageIndexRelease";

pub const METHODS: [&str; 12] = [
    ATTACH,
    DETACH,
    REPORT_HEALTH,
    DECLARE,
    DROP,
    FIND,
    BEST_ALLOC,
    INFO,
    SECTORS,
    LIST,
    RESERVE,
    RELEASE,
];

pub struct IndexClient {
    pub client: Arc<Client>,
}

fn err(method: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Refused {
        what: format!("sealer index ({method})"),
        reason: e.to_string(),
    }
}

impl IndexClient {
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        m: &str,
        p: Value,
    ) -> Result<T, StoreError> {
        self.client.call(m, p).await.map_err(|e| err(m, e))
    }
}

#[async_trait]
impl SectorIndex for IndexClient {
    async fn storage_attach(&self, info: StorageInfo, stat: FsStat) -> Result<(), StoreError> {
        self.call(ATTACH, json!([info, stat])).await
    }
    async fn storage_detach(&self, id: &StorageId) -> Result<(), StoreError> {
        self.call(DETACH, json!([id])).await
    }
    async fn storage_report_health(
        &self,
        id: &StorageId,
        stat: FsStat,
        e: Option<String>,
    ) -> Result<(), StoreError> {
        self.call(REPORT_HEALTH, json!([id, stat, e])).await
    }
    async fn storage_declare_sector(
        &self,
        id: &StorageId,
        sector: SectorId,
        ft: FileType,
    ) -> Result<(), StoreError> {
        self.call(DECLARE, json!([id, sector, ft])).await
    }
    async fn storage_drop_sector(
        &self,
        id: &StorageId,
        sector: SectorId,
        ft: FileType,
    ) -> Result<(), StoreError> {
        self.call(DROP, json!([id, sector, ft])).await
    }
    async fn storage_find_sector(
        &self,
        sector: SectorId,
        types: FileTypes,
    ) -> Result<Vec<SectorLocation>, StoreError> {
        self.call(FIND, json!([sector, types])).await
    }
    async fn storage_best_alloc(
        &self,
        types: FileTypes,
        size: SectorSize,
        kind: PathKind,
        among: Option<&HashSet<StorageId>>,
    ) -> Result<Vec<StorageInfo>, StoreError> {
        self.call(BEST_ALLOC, json!([types, size, kind, among]))
            .await
    }
    async fn storage_info(&self, id: &StorageId) -> Result<StorageInfo, StoreError> {
        self.call(INFO, json!([id])).await
    }
    async fn storage_sectors(
        &self,
        id: &StorageId,
    ) -> Result<Vec<(SectorId, FileTypes)>, StoreError> {
        self.call(SECTORS, json!([id])).await
    }
    async fn storage_list(&self) -> Result<Vec<StorageEntry>, StoreError> {
        self.call(LIST, json!([])).await
    }
    async fn storage_reserve(
        &self,
        id: &StorageId,
        bytes: u64,
    ) -> Result<ReservationId, StoreError> {
        self.call(RESERVE, json!([id, bytes])).await
    }
    async fn storage_release(&self, res: ReservationId) -> Result<(), StoreError> {
        self.call(RELEASE, json!([res])).await
    }
}

fn arg<T: serde::de::DeserializeOwned>(m: &str, p: &Value, i: usize) -> Result<T, RpcError> {
    serde_json::from_value(p.get(i).cloned().unwrap_or(Value::Null))
        .map_err(|e| RpcError::params(m, format!("parameter {i}: {e}")))
}

fn out<T: serde::Serialize>(r: Result<T, StoreError>) -> Result<Value, RpcError> {
    r.map(|v| serde_json::to_value(v).expect("index values serialize"))
        .map_err(RpcError::app)
}

/// Serves one index call against `index`.
pub async fn serve(index: &dyn SectorIndex, m: &str, p: &Value) -> Result<Value, RpcError> {
    match m {
        ATTACH => out(index.storage_attach(arg(m, p, 0)?, arg(m, p, 1)?).await),
        DETACH => out(index.storage_detach(&arg(m, p, 0)?).await),
        REPORT_HEALTH => out(index
            .storage_report_health(&arg(m, p, 0)?, arg(m, p, 1)?, arg(m, p, 2)?)
            .await),
        DECLARE => out(index
            .storage_declare_sector(&arg(m, p, 0)?, arg(m, p, 1)?, arg(m, p, 2)?)
            .await),
        DROP => out(index
            .storage_drop_sector(&arg(m, p, 0)?, arg(m, p, 1)?, arg(m, p, 2)?)
            .await),
        FIND => out(index
            .storage_find_sector(arg(m, p, 0)?, arg(m, p, 1)?)
            .await),
        BEST_ALLOC => {
            let among: Option<HashSet<StorageId>> = arg(m, p, 3)?;
            out(index
                .storage_best_alloc(arg(m, p, 0)?, arg(m, p, 1)?, arg(m, p, 2)?, among.as_ref())
                .await)
        }
        INFO => out(index.storage_info(&arg(m, p, 0)?).await),
        SECTORS => out(index.storage_sectors(&arg(m, p, 0)?).await),
        LIST => out(index.storage_list().await),
        RESERVE => out(index.storage_reserve(&arg(m, p, 0)?, arg(m, p, 1)?).await),
        RELEASE => out(index.storage_release(arg(m, p, 0)?).await),
        other => Err(RpcError::new(
            crate::rpc::METHOD_NOT_FOUND,
            format!("method '{other}' not found"),
        )),
    }
}
