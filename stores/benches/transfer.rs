//! Fetching a 512 MiB sealed file and a 512 MiB cache directory (512 files) over loopback HTTP,
//! next to a local copy of the same data in the same run.
//!
//! Run: `cargo bench -p stores --bench transfer`. Both sides make their result durable (fsync):
//! a fetch does, so the baseline `local-copy` is `fs::copy` + fsync per file. `local-copy-nosync`
//! is shown for reference.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use resources::{SectorRef, SectorSize};
use stores::http::router;
use stores::{
    AcquireMode, AttachOptions, FileType, FileTypes, LocalStore, MemIndex, PathKind, Permission,
    Remote, Secret, SectorIndex, StorageId,
};

const SIZE: usize = 512 << 20;
const FILES: usize = 512;

fn copy_tree(src: &Path, dst: &Path, sync: bool) {
    if src.is_dir() {
        fs::create_dir_all(dst).unwrap();
        for e in fs::read_dir(src).unwrap().flatten() {
            copy_tree(&e.path(), &dst.join(e.file_name()), sync);
        }
    } else {
        fs::copy(src, dst).unwrap();
        if sync {
            fs::File::open(dst).unwrap().sync_all().unwrap();
        }
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    a_root: std::path::PathBuf,
    b: LocalStore,
    remote: Remote,
    sector: SectorRef,
    scratch: std::path::PathBuf,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir_in(
        std::env::var("BENCH_DIR").unwrap_or_else(|_| std::env::temp_dir().display().to_string()),
    )
    .unwrap();
    let index = Arc::new(MemIndex::default());
    let secret = Secret::generate();
    let mut stores = Vec::new();
    for name in ["a", "b"] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let idx: Arc<dyn SectorIndex> = index.clone();
        let local = LocalStore::open(
            &dir.path().join(format!("{name}.json")),
            idx,
            vec![format!("http://{addr}/remote")],
        )
        .await
        .unwrap();
        let opts = AttachOptions {
            init: true,
            seal: true,
            ..Default::default()
        };
        let id: StorageId = local.attach(&dir.path().join(name), &opts).await.unwrap();
        let (app, _) = router(local.clone(), secret.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        local.spawn_heartbeats(Duration::from_secs(10));
        stores.push((local, id));
    }
    let sector = SectorRef::new(1000, 1, SectorSize::S512MiB.seal_proof());
    let a_root = dir.path().join("a");
    let data: Vec<u8> = (0..SIZE as u64)
        .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
        .collect();
    fs::write(a_root.join("sealed").join(sector.file_name()), &data).unwrap();
    let cache = a_root.join("cache").join(sector.file_name());
    fs::create_dir_all(&cache).unwrap();
    let per = SIZE / FILES;
    for i in 0..FILES {
        fs::write(
            cache.join(format!("layer-{i:04}.dat")),
            &data[i * per..(i + 1) * per],
        )
        .unwrap();
    }
    let (a, a_id) = &stores[0];
    for t in [FileType::Sealed, FileType::Cache] {
        a.declare(sector.id(), t, a_id).await.unwrap();
    }
    let b = stores[1].0.clone();
    let remote = Remote::new(b.clone(), secret.token_for(Permission::Admin), 5);
    Setup {
        scratch: dir.path().join("scratch"),
        _dir: dir,
        a_root,
        b,
        remote,
        sector,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(setup());
    let mut g = c.benchmark_group("transfer");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Bytes(SIZE as u64));
    for (what, t) in [("file", FileType::Sealed), ("cache", FileType::Cache)] {
        let src = s.a_root.join(t.dir()).join(s.sector.file_name());
        for sync in [true, false] {
            let name = if sync {
                "local-copy"
            } else {
                "local-copy-nosync"
            };
            g.bench_function(format!("{what}/{name}"), |bench| {
                bench.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let _ = fs::remove_dir_all(&s.scratch);
                        let _ = fs::remove_file(&s.scratch);
                        let t0 = Instant::now();
                        copy_tree(&src, &s.scratch, sync);
                        total += t0.elapsed();
                    }
                    total
                })
            });
        }
        g.bench_function(format!("{what}/fetch"), |bench| {
            bench.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    rt.block_on(s.b.remove(s.sector.id(), t.into())).unwrap();
                    let t0 = Instant::now();
                    let got = rt
                        .block_on(s.remote.acquire(
                            &s.sector,
                            t.into(),
                            FileTypes::NONE,
                            PathKind::Sealing,
                            AcquireMode::Copy,
                        ))
                        .unwrap();
                    total += t0.elapsed();
                    drop(got);
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
