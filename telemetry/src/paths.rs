//! The storage-path families both daemons serve (`sealer_storage_path_*_bytes`): the sealer for
//! every path the index knows, a worker for its own.

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::labels as l;

/// One path's figures, read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct PathGauges {
    pub id: String,
    pub seal: bool,
    pub store: bool,
    pub capacity_bytes: u64,
    pub available_bytes: u64,
    pub reserved_bytes: u64,
}

#[derive(Default)]
pub struct PathFamilies {
    capacity: Family<l::StoragePath, Gauge>,
    available: Family<l::StoragePath, Gauge>,
    reserved: Family<l::StoragePath, Gauge>,
}

impl PathFamilies {
    pub fn register(&self, r: &mut Registry) {
        let families = [
            (
                "storage_path_capacity",
                "A storage path's file system size",
                &self.capacity,
            ),
            (
                "storage_path_available",
                "A storage path's free space for sealing, less what is reserved",
                &self.available,
            ),
            (
                "storage_path_reserved",
                "Space reserved on a storage path for files being written",
                &self.reserved,
            ),
        ];
        for (name, help, f) in families {
            r.register_with_unit(name, help, Unit::Bytes, f.clone());
        }
    }

    /// Replaces every path's gauges with `paths` (a gone path leaves none).
    pub fn set(&self, paths: &[PathGauges]) {
        for f in [&self.capacity, &self.available, &self.reserved] {
            f.clear();
        }
        for p in paths {
            let k = l::StoragePath {
                storage_id: p.id.clone(),
                seal: p.seal.to_string(),
                store: p.store.to_string(),
            };
            self.capacity.get_or_create(&k).set(p.capacity_bytes as i64);
            self.available
                .get_or_create(&k)
                .set(p.available_bytes as i64);
            self.reserved.get_or_create(&k).set(p.reserved_bytes as i64);
        }
    }
}
