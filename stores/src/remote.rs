//! Fetching sector files from other machines: a file streams into `<type>/fetching/<name>` and is
//! renamed into place only when complete and of the right size; a cache directory arrives as tar,
//! whose entries must be plain files or directories inside the target. Space is reserved before
//! the first byte; at most ParallelFetchLimit transfers run at once; concurrent requests for one
//! sector fetch it once; after a move the source copy is deleted.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use resources::{SectorId, SectorRef};
use tokio::sync::Semaphore;

use crate::filetype::{sector_path, FileType, FileTypes, PathKind};
use crate::fsutil::{fsync_dir, join_inside, remove_all};
use crate::http::{TAR_BYTES_HEADER, TAR_FILES_HEADER};
use crate::index::SectorLocation;
use crate::local::{Acquired, LocalStore};
use crate::meta::StorageId;
use crate::StoreError;

/// Lotus's default ParallelFetchLimit on the sealer (a worker uses 5).
pub const SEALER_FETCH_LIMIT: usize = 10;
pub const WORKER_FETCH_LIMIT: usize = 5;

/// The smallest size limit (and reservation) of one fetched file or directory.
pub const MIN_FETCH_LIMIT: u64 = 64 << 10;

/// Whether the source copy stays after a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcquireMode {
    /// Delete the source once the fetch is complete.
    Move,
    Copy,
}

/// Where a sector's files are, seen from one machine.
#[derive(Debug, Clone)]
pub struct Located {
    pub local: Vec<(FileType, std::path::PathBuf)>,
    pub fetchable: Vec<SectorLocation>,
}

/// A machine's view of all storage: its own paths, and other machines' through HTTP.
pub struct Remote {
    local: LocalStore,
    client: reqwest::Client,
    token: String,
    limit: Arc<Semaphore>,
    locks: Mutex<HashMap<SectorId, Arc<tokio::sync::Mutex<()>>>>,
    fetches: AtomicU64,
    attempts: AtomicU64,
    /// Fetches under way: bytes received of those announced, per sector (one fetch per sector
    /// at a time: its lock).
    transfers: Arc<Mutex<HashMap<SectorId, resources::Progress>>>,
}

impl Remote {
    /// `token` is an admin token accepted by the other machines' `/remote` endpoints.
    pub fn new(local: LocalStore, token: String, parallel_fetch_limit: usize) -> Remote {
        // TLS (for https URLs) with ring as the crypto provider, installed once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Remote {
            local,
            // A few idle connections per machine fetched from, closed after 5 s: a sector's
            // files share them, and a worker that fetched from hundreds of others does not
            // hold their sockets open (a transfer of gigabytes does not miss a handshake).
            client: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(2)
                .pool_idle_timeout(Duration::from_secs(5))
                .build()
                .expect("an HTTP client builds"),
            token,
            limit: Arc::new(Semaphore::new(parallel_fetch_limit.max(1))),
            locks: Mutex::new(HashMap::new()),
            fetches: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            transfers: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// How far the fetch of a file of `sector` under way is (bytes of those announced).
    pub fn transfer(&self, sector: SectorId) -> Option<resources::Progress> {
        self.transfers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&sector)
            .copied()
    }

    pub fn local(&self) -> &LocalStore {
        &self.local
    }

    /// Completed fetches so far.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Where a sector's files of `types` are: on this machine (type and path), and elsewhere
    /// (healthy locations that can be fetched from, best first).
    pub async fn locate(&self, sector: SectorId, types: FileTypes) -> Result<Located, StoreError> {
        let local: Vec<(FileType, std::path::PathBuf)> = types
            .iter()
            .filter_map(|t| self.local.find_local(sector, t).map(|(_, p)| (t, p)))
            .collect();
        let mine: HashSet<StorageId> = self.local.paths().into_iter().map(|p| p.0).collect();
        let fetchable = self
            .local
            .index()
            .storage_find_sector(sector, types)
            .await?
            .into_iter()
            .filter(|l| l.healthy && !mine.contains(&l.storage.id))
            .collect();
        Ok(Located { local, fetchable })
    }

    fn sector_lock(&self, id: SectorId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(id).or_default().clone()
    }

    /// Like `LocalStore::acquire`, but `existing` files not on this machine are fetched first
    /// (onto a path of `kind`) from wherever the index says they are.
    pub async fn acquire(
        &self,
        sector: &SectorRef,
        existing: FileTypes,
        allocate: FileTypes,
        kind: PathKind,
        mode: AcquireMode,
    ) -> Result<Acquired, StoreError> {
        let lock = self.sector_lock(sector.id());
        let _one_at_a_time = lock.lock().await;
        for t in existing.iter() {
            if self.local.find_local(sector.id(), t).is_none() {
                self.fetch(sector, t, kind, mode).await?;
            }
        }
        self.local.acquire(sector, existing, allocate, kind)
    }

    async fn fetch(
        &self,
        sector: &SectorRef,
        t: FileType,
        kind: PathKind,
        mode: AcquireMode,
    ) -> Result<(), StoreError> {
        let id = sector.id();
        let sources: Vec<String> = self
            .locate(id, t.into())
            .await?
            .fetchable
            .into_iter()
            .flat_map(|l| l.storage.urls)
            .collect();
        if sources.is_empty() {
            return Err(StoreError::NotFound {
                sector: id,
                file_type: t,
            });
        }
        // Room first: nothing is written when the space is not there. Each attempt stages under
        // its own name, so an abandoned attempt can never mix with a later one.
        // lotus's overhead ratios undercount the fixed-size files of tiny (devnet) sectors,
        // e.g. a finalized 2KiB cache is ~300 bytes against 204 estimated: a floor keeps them
        // fetchable while a runaway transfer is still refused.
        let limit = t.overhead(sector.size(), kind).max(MIN_FETCH_LIMIT);
        let tag = format!(
            "{}-{}",
            std::process::id(),
            self.attempts.fetch_add(1, Ordering::Relaxed)
        );
        let (sid, root, staging, _reservation) =
            self.local.reserve_fetch(sector, t, kind, limit, &tag)?;
        let _permit = self
            .limit
            .acquire()
            .await
            .expect("semaphore is never closed");
        let mut last = None;
        for base in sources {
            let url = format!(
                "{}/{}/{}",
                base.trim_end_matches('/'),
                t.dir(),
                id.file_name()
            );
            match self
                .fetch_one(&url, id, t, &staging, &sector_path(&root, t, id), limit)
                .await
            {
                Ok(()) => {
                    self.fetches.fetch_add(1, Ordering::Relaxed);
                    self.local.declare(id, t, &sid).await?;
                    if mode == AcquireMode::Move {
                        self.delete_source(&url).await;
                    }
                    tracing::debug!(sector = %id, file = %t, from = %url, "fetched");
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(sector = %id, file = %t, from = %url, "fetch failed: {e}");
                    last = Some(e);
                }
            }
        }
        Err(last.expect("at least one source was tried"))
    }

    /// Removes the sector's files of `types` from this machine and, over HTTP, from every
    /// other machine the index lists (a finalized CC sector's unsealed copies, a removed sector).
    pub async fn remove_everywhere(
        &self,
        sector: SectorId,
        types: FileTypes,
    ) -> Result<(), StoreError> {
        self.local.remove(sector, types).await?;
        for t in types.iter() {
            for l in self.locate(sector, t.into()).await?.fetchable {
                for base in &l.storage.urls {
                    let url = format!(
                        "{}/{}/{}",
                        base.trim_end_matches('/'),
                        t.dir(),
                        sector.file_name()
                    );
                    self.delete_source(&url).await;
                }
            }
        }
        Ok(())
    }

    async fn delete_source(&self, url: &str) {
        let res = self
            .client
            .delete(url)
            .bearer_auth(&self.token)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                tracing::warn!(%url, status = %r.status(), "could not delete the source copy after a move")
            }
            Err(e) => tracing::warn!(%url, "could not delete the source copy after a move: {e}"),
        }
    }

    /// Fetches one file or directory from `url` through `staging` into `dest`, all or nothing,
    /// refusing more than `limit` bytes.
    async fn fetch_one(
        &self,
        url: &str,
        id: SectorId,
        t: FileType,
        staging: &Path,
        dest: &Path,
        limit: u64,
    ) -> Result<(), StoreError> {
        let fail = |reason: String| StoreError::Fetch {
            what: url.to_string(),
            reason,
        };
        let refuse = |reason: String| StoreError::Refused {
            what: url.to_string(),
            reason,
        };
        let resp = tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.client.get(url).bearer_auth(&self.token).send(),
        )
        .await
        .map_err(|_| {
            fail(format!(
                "no response within {} s",
                REQUEST_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(fail(format!("{status}: {body}")));
        }
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        let expect = if t == FileType::Cache {
            let (files, bytes) = header(TAR_FILES_HEADER)
                .zip(header(TAR_BYTES_HEADER))
                .ok_or_else(|| fail("no tar size headers".into()))?;
            Expect::Tree { files, bytes }
        } else {
            Expect::File(
                resp.content_length()
                    .ok_or_else(|| fail("no Content-Length".into()))?,
            )
        };
        let announced = match expect {
            Expect::File(n) | Expect::Tree { bytes: n, .. } => n,
        };
        if announced > limit {
            return Err(refuse(format!(
                "{announced} bytes announced, more than the {limit} reserved for it"
            )));
        }
        let guard = Staging::new(staging.to_path_buf());
        let parent = staging.parent().expect("fetching dir");
        fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
        // The network side batches body chunks for a blocking writer, so receiving and writing
        // overlap and neither waits on the other's small steps.
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Bytes>>(4);
        let st = staging.to_path_buf();
        let writer = tokio::task::spawn_blocking(move || match expect {
            Expect::File(len) => write_file(rx, &st, len),
            Expect::Tree { files, bytes } => unpack_tar(ChanReader::new(rx), &st, files, bytes),
        });
        let progress = Transfer::start(&self.transfers, id, announced);
        let pumped = pump(resp, tx, &progress).await;
        drop(progress);
        let written = writer.await.map_err(|e| fail(e.to_string()))?;
        match (pumped, written) {
            (Err(e), _) | (Ok(()), Err(Unpack::Io(e))) => return Err(fail(e.to_string())),
            (Ok(()), Err(Unpack::Refused(reason))) => return Err(refuse(reason)),
            (Ok(()), Ok(())) => {}
        }
        remove_all(dest)?;
        fs::rename(staging, dest).map_err(|e| StoreError::io(dest, e))?;
        guard.disarm();
        let dir = dest.parent().expect("type dir");
        fsync_dir(dir).map_err(|e| StoreError::io(dir, e))?;
        Ok(())
    }
}

/// Removes a staging path when dropped, unless the attempt completed (also when the fetch is
/// cancelled).
struct Staging {
    path: PathBuf,
    armed: bool,
}

impl Staging {
    fn new(path: PathBuf) -> Self {
        Staging { path, armed: true }
    }

    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.armed {
            let _ = remove_all(&self.path);
        }
    }
}

/// How long a request may wait for a response, and a body for its next chunk.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Forwards the response body in batches of about 4 MiB.
/// A fetch's entry in `Remote::transfers`, gone with it.
struct Transfer<'a> {
    map: &'a Mutex<HashMap<SectorId, resources::Progress>>,
    id: SectorId,
}

impl<'a> Transfer<'a> {
    fn start(
        map: &'a Mutex<HashMap<SectorId, resources::Progress>>,
        id: SectorId,
        total: u64,
    ) -> Self {
        let t = Transfer { map, id };
        t.set(0, total);
        t
    }

    fn set(&self, done: u64, total: u64) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(self.id, resources::Progress::bytes(done, total));
    }

    fn add(&self, n: u64) {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = m.get_mut(&self.id) {
            p.done += n;
        }
    }
}

impl Drop for Transfer<'_> {
    fn drop(&mut self) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

async fn pump(
    mut resp: reqwest::Response,
    tx: tokio::sync::mpsc::Sender<Vec<Bytes>>,
    progress: &Transfer<'_>,
) -> io::Result<()> {
    let mut batch = Vec::new();
    let mut size = 0;
    loop {
        let next = tokio::time::timeout(REQUEST_TIMEOUT, resp.chunk())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the source stopped sending"))?;
        let Some(chunk) = next.map_err(io::Error::other)? else {
            break;
        };
        size += chunk.len();
        progress.add(chunk.len() as u64);
        batch.push(chunk);
        if size >= BATCH {
            size = 0;
            if tx.send(std::mem::take(&mut batch)).await.is_err() {
                return Ok(()); // the writer stopped; it reports why
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(batch).await;
    }
    Ok(())
}

const BATCH: usize = 4 << 20;

/// A blocking `Read` over the batches `pump` sends.
struct ChanReader {
    rx: tokio::sync::mpsc::Receiver<Vec<Bytes>>,
    pending: std::collections::VecDeque<Bytes>,
}

impl ChanReader {
    fn new(rx: tokio::sync::mpsc::Receiver<Vec<Bytes>>) -> Self {
        ChanReader {
            rx,
            pending: Default::default(),
        }
    }
}

impl Read for ChanReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(front) = self.pending.front_mut() {
                let n = front.len().min(out.len());
                out[..n].copy_from_slice(&front[..n]);
                let _ = front.split_to(n);
                if front.is_empty() {
                    self.pending.pop_front();
                }
                return Ok(n);
            }
            match self.rx.blocking_recv() {
                Some(batch) => self
                    .pending
                    .extend(batch.into_iter().filter(|b| !b.is_empty())),
                None => return Ok(0),
            }
        }
    }
}

/// A file writer that asks the kernel to start writing back every 32 MiB, so the final fsync
/// has little left to do.
struct Durable {
    f: fs::File,
    written: u64,
    kicked: u64,
}

const KICK: u64 = 32 << 20;

impl Durable {
    fn create(path: &Path) -> io::Result<Durable> {
        Ok(Durable {
            f: fs::File::create(path)?,
            written: 0,
            kicked: 0,
        })
    }

    fn finish(self) -> io::Result<u64> {
        self.f.sync_all()?;
        Ok(self.written)
    }

    /// Starts writeback of what is not yet on its way, without waiting; returns bytes written.
    fn start_writeback(mut self) -> u64 {
        self.kick();
        self.written
    }

    fn kick(&mut self) {
        use std::os::fd::AsRawFd;
        if self.written > self.kicked {
            // SAFETY: a valid fd and range; SYNC_FILE_RANGE_WRITE only starts writeback.
            unsafe {
                libc::sync_file_range(
                    self.f.as_raw_fd(),
                    self.kicked as i64,
                    (self.written - self.kicked) as i64,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            self.kicked = self.written;
        }
    }
}

impl Write for Durable {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.f.write(buf)?;
        self.written += n as u64;
        if self.written - self.kicked >= KICK {
            self.kick();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `io::copy` with a 1 MiB buffer (its own is 8 KiB: too many small writes).
fn copy_big(r: &mut impl Read, w: &mut impl Write) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        total += n as u64;
    }
}

enum Expect {
    File(u64),
    Tree { files: u64, bytes: u64 },
}

enum Unpack {
    Io(io::Error),
    Refused(String),
}

impl From<io::Error> for Unpack {
    fn from(e: io::Error) -> Self {
        Unpack::Io(e)
    }
}

/// Writes the batches straight to the file (no copy through a read buffer).
fn write_file(
    mut rx: tokio::sync::mpsc::Receiver<Vec<Bytes>>,
    path: &Path,
    len: u64,
) -> Result<(), Unpack> {
    let mut w = Durable::create(path)?;
    while let Some(batch) = rx.blocking_recv() {
        for b in batch {
            w.write_all(&b)?;
        }
    }
    let n = w.finish()?;
    if n != len {
        return Err(Unpack::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("short transfer: {n} of {len} bytes"),
        )));
    }
    Ok(())
}

/// Unpacks a tar stream into `dir`, accepting only files and directories that stay inside it,
/// and checking the file count and bytes the server announced.
fn unpack_tar(r: impl Read, dir: &Path, want_files: u64, want_bytes: u64) -> Result<(), Unpack> {
    fs::create_dir_all(dir)?;
    let mut ar = tar::Archive::new(r);
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut written = Vec::new();
    for entry in ar.entries()? {
        let mut e = entry?;
        let rel = e.path()?.into_owned();
        let kind = e.header().entry_type();
        let Some(dest) = join_inside(dir, &rel) else {
            return Err(Unpack::Refused(format!(
                "entry {} would land outside the target",
                rel.display()
            )));
        };
        if kind.is_dir() {
            fs::create_dir_all(&dest)?;
        } else if kind.is_file() {
            if let Some(p) = dest.parent() {
                fs::create_dir_all(p)?;
            }
            let mut w = Durable::create(&dest)?;
            copy_big(&mut e, &mut w)?;
            bytes += w.start_writeback();
            if bytes > want_bytes || files >= want_files {
                return Err(Unpack::Refused(format!("the archive holds more than the {want_files} files / {want_bytes} bytes announced")));
            }
            written.push(dest);
            files += 1;
        } else {
            return Err(Unpack::Refused(format!(
                "entry {} is a {:?}: only plain files and directories are accepted",
                rel.display(),
                kind
            )));
        }
    }
    if (files, bytes) != (want_files, want_bytes) {
        return Err(Unpack::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "incomplete archive: {files} files / {bytes} bytes of {want_files} / {want_bytes}"
            ),
        )));
    }
    Ok(())
}
