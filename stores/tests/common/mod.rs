//! Test machines: a local store on its own temp directory, served over HTTP on 127.0.0.1.

#![allow(dead_code)]

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use resources::{SectorRef, SectorSize};
use stores::http::{router, ServeStats};
use stores::{
    AttachOptions, FileType, LocalStore, MemIndex, Permission, Remote, Secret, SectorIndex,
    StorageId,
};

pub struct Machine {
    pub dir: tempfile::TempDir,
    pub local: LocalStore,
    pub remote: Remote,
    pub addr: SocketAddr,
    pub stats: Arc<ServeStats>,
    pub seal: StorageId,
    pub seal_path: PathBuf,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub fn secret() -> Secret {
    Secret::from_bytes(vec![7u8; 32]).unwrap()
}

pub fn admin_token() -> String {
    secret().token_for(Permission::Admin)
}

/// A machine with one path (`seal` and/or `store`, at most `max_storage` bytes when set).
pub async fn machine(
    index: Arc<MemIndex>,
    seal: bool,
    store: bool,
    max_storage: Option<u64>,
) -> Machine {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let idx: Arc<dyn SectorIndex> = index;
    let local = LocalStore::open(
        &dir.path().join("storage.json"),
        idx,
        vec![format!("http://{addr}/remote")],
    )
    .await
    .unwrap();
    let seal_path = dir.path().join("path");
    let opts = AttachOptions {
        init: true,
        seal,
        store,
        max_storage,
        ..Default::default()
    };
    let id = local.attach(&seal_path, &opts).await.unwrap();
    let (app, stats) = router(local.clone(), secret());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let remote = Remote::new(local.clone(), admin_token(), 5);
    Machine {
        dir,
        local,
        remote,
        addr,
        stats,
        seal: id,
        seal_path,
        server,
    }
}

pub fn sector(n: u64, size: SectorSize) -> SectorRef {
    SectorRef::new(1000, n, size.seal_proof())
}

/// Deterministic bytes that differ from position to position.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64 * 2654435761 + seed as u64) >> 7) as u8)
        .collect()
}

/// Writes a sealed file and a cache directory (with a subdirectory) for `s` on `m`, and declares
/// them.
pub async fn seed_sector(m: &Machine, s: &SectorRef, sealed_len: usize) {
    let sealed = m.seal_path.join("sealed").join(s.file_name());
    fs::write(&sealed, pattern(sealed_len, 1)).unwrap();
    let cache = m.seal_path.join("cache").join(s.file_name());
    fs::create_dir_all(cache.join("sub")).unwrap();
    fs::write(cache.join("p_aux"), pattern(64, 2)).unwrap();
    fs::write(cache.join("t_aux"), pattern(1000, 3)).unwrap();
    fs::write(
        cache.join("sc-02-data-tree-r-last.dat"),
        pattern(300_000, 4),
    )
    .unwrap();
    fs::write(cache.join("sub/nested"), pattern(5, 5)).unwrap();
    fs::write(cache.join("empty"), b"").unwrap();
    m.local
        .declare(s.id(), FileType::Sealed, &m.seal)
        .await
        .unwrap();
    m.local
        .declare(s.id(), FileType::Cache, &m.seal)
        .await
        .unwrap();
}

/// Every file under `root` with its bytes, relative and sorted.
pub fn tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn go(root: &Path, rel: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let mut es: Vec<_> = fs::read_dir(root.join(rel)).unwrap().flatten().collect();
        es.sort_by_key(|e| e.file_name());
        for e in es {
            let r = rel.join(e.file_name());
            if e.path().is_dir() {
                go(root, &r, out);
            } else {
                out.push((r, fs::read(e.path()).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    go(root, Path::new(""), &mut out);
    out
}

/// Sends a raw HTTP/1.1 request (no client-side path normalisation) and returns the status.
pub async fn raw_status(addr: SocketAddr, method: &str, path: &str, token: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf);
    head.split_whitespace().nth(1).unwrap().parse().unwrap()
}
