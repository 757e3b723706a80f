//! The sector index over JSON-RPC: a worker's storage declares its paths and files to the
//! sealer's index through [`IndexClient`]; the sealer serves the same calls, registered by [`serve`].

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use resources::{SectorId, SectorSize};
use stores::index::{Listing, ReservationId, StorageEntry};
use stores::{
    FileType, FileTypes, FsStat, PathKind, SectorIndex, SectorLocation, StorageId, StorageInfo,
    StoreError,
};

use crate::contract::{Handlers, Method};
use crate::methods as m;
use crate::rpc::RpcError;
use crate::Client;

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
    async fn call<M: Method>(&self, p: M::Params) -> Result<M::Result, StoreError> {
        self.client
            .request::<M>(p)
            .await
            .map_err(|e| err(M::NAME, e))
    }
}

#[async_trait]
impl SectorIndex for IndexClient {
    async fn storage_attach(&self, info: StorageInfo, stat: FsStat) -> Result<(), StoreError> {
        self.call::<m::IndexAttach>((info, stat)).await
    }
    async fn storage_detach(&self, id: &StorageId) -> Result<(), StoreError> {
        self.call::<m::IndexDetach>((id.clone(),)).await
    }
    async fn storage_report_health(
        &self,
        id: &StorageId,
        stat: FsStat,
        e: Option<String>,
    ) -> Result<(), StoreError> {
        self.call::<m::IndexReportHealth>((id.clone(), stat, e))
            .await
    }
    async fn storage_declare_sector(
        &self,
        id: &StorageId,
        sector: SectorId,
        ft: FileType,
    ) -> Result<(), StoreError> {
        self.call::<m::IndexDeclareSector>((id.clone(), sector, ft))
            .await
    }
    async fn storage_declare_sectors(
        &self,
        id: &StorageId,
        files: Vec<(SectorId, FileType)>,
    ) -> Result<(), StoreError> {
        self.call::<m::IndexDeclareSectors>((id.clone(), files))
            .await
    }
    async fn storage_drop_sector(
        &self,
        id: &StorageId,
        sector: SectorId,
        ft: FileType,
    ) -> Result<(), StoreError> {
        self.call::<m::IndexDropSector>((id.clone(), sector, ft))
            .await
    }
    async fn storage_find_sector(
        &self,
        sector: SectorId,
        types: FileTypes,
    ) -> Result<Vec<SectorLocation>, StoreError> {
        self.call::<m::IndexFindSector>((sector, types)).await
    }
    async fn storage_best_alloc(
        &self,
        types: FileTypes,
        size: SectorSize,
        kind: PathKind,
        among: Option<&HashSet<StorageId>>,
    ) -> Result<Vec<StorageInfo>, StoreError> {
        self.call::<m::IndexBestAlloc>((types, size, kind, among.cloned()))
            .await
    }
    async fn storage_info(&self, id: &StorageId) -> Result<StorageInfo, StoreError> {
        self.call::<m::IndexInfo>((id.clone(),)).await
    }
    async fn storage_listing(&self, id: &StorageId) -> Result<Option<Listing>, StoreError> {
        self.call::<m::IndexListing>((id.clone(),)).await
    }
    async fn storage_sectors(
        &self,
        id: &StorageId,
    ) -> Result<Vec<(SectorId, FileTypes)>, StoreError> {
        self.call::<m::IndexSectors>((id.clone(),)).await
    }
    async fn storage_list(&self) -> Result<Vec<StorageEntry>, StoreError> {
        self.call::<m::IndexList>(()).await
    }
    async fn storage_reserve(
        &self,
        id: &StorageId,
        bytes: u64,
    ) -> Result<ReservationId, StoreError> {
        self.call::<m::IndexReserve>((id.clone(), bytes)).await
    }
    async fn storage_release(&self, res: ReservationId) -> Result<(), StoreError> {
        self.call::<m::IndexRelease>((res,)).await
    }
}

fn out<T>(r: Result<T, StoreError>) -> Result<T, RpcError> {
    r.map_err(RpcError::app)
}

/// Adds the index methods to `h`, served against the index `index` finds in the state.
pub fn serve<S: Clone + Send + Sync + 'static>(
    h: Handlers<S>,
    index: fn(&S) -> Arc<dyn SectorIndex>,
) -> Handlers<S> {
    h.on::<m::IndexAttach, _, _>(move |s, (info, stat)| async move {
        out(index(&s).storage_attach(info, stat).await)
    })
    .on::<m::IndexDetach, _, _>(
        move |s, (id,)| async move { out(index(&s).storage_detach(&id).await) },
    )
    .on::<m::IndexReportHealth, _, _>(move |s, (id, stat, e)| async move {
        out(index(&s).storage_report_health(&id, stat, e).await)
    })
    .on::<m::IndexDeclareSector, _, _>(move |s, (id, sector, ft)| async move {
        out(index(&s).storage_declare_sector(&id, sector, ft).await)
    })
    .on::<m::IndexDeclareSectors, _, _>(move |s, (id, files)| async move {
        out(index(&s).storage_declare_sectors(&id, files).await)
    })
    .on::<m::IndexDropSector, _, _>(move |s, (id, sector, ft)| async move {
        out(index(&s).storage_drop_sector(&id, sector, ft).await)
    })
    .on::<m::IndexFindSector, _, _>(move |s, (sector, types)| async move {
        out(index(&s).storage_find_sector(sector, types).await)
    })
    .on::<m::IndexBestAlloc, _, _>(move |s, (types, size, kind, among)| async move {
        out(index(&s)
            .storage_best_alloc(types, size, kind, among.as_ref())
            .await)
    })
    .on::<m::IndexInfo, _, _>(move |s, (id,)| async move { out(index(&s).storage_info(&id).await) })
    .on::<m::IndexSectors, _, _>(move |s, (id,)| async move {
        out(index(&s).storage_sectors(&id).await)
    })
    .on::<m::IndexListing, _, _>(move |s, (id,)| async move {
        out(index(&s).storage_listing(&id).await)
    })
    .on::<m::IndexList, _, _>(move |s, ()| async move { out(index(&s).storage_list().await) })
    .on::<m::IndexReserve, _, _>(move |s, (id, bytes)| async move {
        out(index(&s).storage_reserve(&id, bytes).await)
    })
    .on::<m::IndexRelease, _, _>(move |s, (res,)| async move {
        out(index(&s).storage_release(res).await)
    })
}
