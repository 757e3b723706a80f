//! The metadata store: one RocksDB (the sealer's is `<repo>/datastore`), values as JSON under
//! key prefixes (the sealer's `sectors/`, `calls/` and `callidx/`, `meta/`; the devnet chain's
//! `chain/`). Writes that belong together go in one batch.

use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("metadata store {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("metadata store: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("metadata store: value under {key:?} is unreadable: {reason}")]
    Decode { key: String, reason: String },
}

#[derive(Clone)]
pub struct Db {
    db: Arc<rocksdb::DB>,
}

/// Writes applied together or not at all.
#[derive(Default)]
pub struct Batch {
    /// Each write in order: a key and its new value, or `None` to delete it.
    ops: Vec<(String, Option<Vec<u8>>)>,
    /// The keys written, for [`Batch::writes`] (a devnet epoch's batch asks it of each of
    /// thousands of sectors).
    written: std::collections::HashSet<String>,
}

impl Batch {
    pub fn put<T: Serialize>(&mut self, key: &str, value: &T) {
        let v = serde_json::to_vec(value).expect("values serialize");
        self.written.insert(key.to_string());
        self.ops.push((key.to_string(), Some(v)));
    }
    pub fn delete(&mut self, key: &str) {
        self.written.insert(key.to_string());
        self.ops.push((key.to_string(), None));
    }
    /// Whether this batch writes (or deletes) `key`.
    pub fn writes(&self, key: &str) -> bool {
        self.written.contains(key)
    }
    /// The keys this batch writes or deletes, each once, in the order first written.
    pub fn keys(&self) -> Vec<&str> {
        let mut seen = std::collections::HashSet::new();
        self.ops
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| seen.insert(*k))
            .collect()
    }
    /// Adds `other`'s writes after these (a step's writes kept only once it succeeded).
    pub fn extend(&mut self, other: Batch) {
        self.written.extend(other.written);
        self.ops.extend(other.ops);
    }
    fn into_rocks(self) -> rocksdb::WriteBatch {
        let mut b = rocksdb::WriteBatch::default();
        for (k, v) in self.ops {
            match v {
                Some(v) => b.put(k.as_bytes(), v),
                None => b.delete(k.as_bytes()),
            }
        }
        b
    }
}

impl Db {
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.set_keep_log_file_num(4);
        let db = rocksdb::DB::open(&opts, path).map_err(|e| DbError::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(Db { db: Arc::new(db) })
    }

    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, DbError> {
        match self.db.get(key.as_bytes())? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| DbError::Decode {
                    key: key.to_string(),
                    reason: e.to_string(),
                }),
        }
    }

    pub fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), DbError> {
        let mut b = Batch::default();
        b.put(key, value);
        self.write(b)
    }

    /// Writes `value` to the write-ahead log without waiting for the disk: it survives a crash
    /// of this process (kill -9), not a power cut. For records whose loss costs at most a
    /// recomputation (call records); sector state is written with `put`.
    pub fn put_unsynced<T: Serialize>(&self, key: &str, value: &T) -> Result<(), DbError> {
        let mut b = Batch::default();
        b.put(key, value);
        self.write_unsynced(b)
    }

    /// Applies a batch like `put_unsynced`: survives a crash of this process, not a power cut.
    pub fn write_unsynced(&self, batch: Batch) -> Result<(), DbError> {
        self.db.write(batch.into_rocks())?;
        Ok(())
    }

    pub fn delete(&self, key: &str) -> Result<(), DbError> {
        let mut b = Batch::default();
        b.delete(key);
        self.write(b)
    }

    /// Applies a batch durably (the write-ahead log is synced: a kill -9 loses nothing acked).
    pub fn write(&self, batch: Batch) -> Result<(), DbError> {
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        let b = batch.into_rocks();
        blocking_io(|| self.db.write_opt(b, &wo))?;
        Ok(())
    }

    /// The first key (in key order) that starts with `prefix`, its value not read.
    pub fn first_key(&self, prefix: &str) -> Result<Option<String>, DbError> {
        match self.db.prefix_iterator(prefix.as_bytes()).next() {
            Some(item) => {
                let (k, _) = item?;
                Ok(k.starts_with(prefix.as_bytes())
                    .then(|| String::from_utf8_lossy(&k).into_owned()))
            }
            None => Ok(None),
        }
    }

    /// The store's write sequence: it changes with every write (a value decoded at one
    /// sequence is still what the store holds while the sequence is the same).
    pub fn sequence(&self) -> u64 {
        self.db.latest_sequence_number()
    }

    /// Every value whose key starts with `prefix`, in key order. Values are read in chunks
    /// and each chunk is decoded on every core (a large miner's 330,000 sector records are
    /// decoded at start, before the sealer serves).
    pub fn scan<T: DeserializeOwned + Send>(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, DbError> {
        let mut out = Vec::new();
        let mut raw = Vec::with_capacity(SCAN_CHUNK);
        for item in self.db.prefix_iterator(prefix.as_bytes()) {
            let (k, v) = item?;
            if !k.starts_with(prefix.as_bytes()) {
                break;
            }
            raw.push((String::from_utf8_lossy(&k).into_owned(), v));
            if raw.len() == SCAN_CHUNK {
                out.extend(decode_all(std::mem::take(&mut raw))?);
            }
        }
        out.extend(decode_all(raw)?);
        Ok(out)
    }
}

/// How many values a scan holds undecoded at once.
const SCAN_CHUNK: usize = 16_384;

/// Decodes `raw` in order, split across the machine's cores.
fn decode_all<T: DeserializeOwned + Send>(
    raw: Vec<(String, Box<[u8]>)>,
) -> Result<Vec<(String, T)>, DbError> {
    let decode = |part: &[(String, Box<[u8]>)]| -> Result<Vec<(String, T)>, DbError> {
        part.iter()
            .map(|(key, v)| {
                serde_json::from_slice(v)
                    .map(|value| (key.clone(), value))
                    .map_err(|e| DbError::Decode {
                        key: key.clone(),
                        reason: e.to_string(),
                    })
            })
            .collect()
    };
    if raw.len() < 256 {
        return decode(&raw);
    }
    // Asked once: the answer reads cgroup files, which cost more than a small scan.
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if cores == 1 {
        return decode(&raw);
    }
    let per = raw.len().div_ceil(cores);
    let parts: Vec<Result<Vec<(String, T)>, DbError>> = std::thread::scope(|s| {
        let handles: Vec<_> = raw
            .chunks(per)
            .map(|part| s.spawn(move || decode(part)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a decoding thread panicked"))
            .collect()
    });
    let mut out = Vec::with_capacity(raw.len());
    for p in parts {
        out.extend(p?);
    }
    Ok(out)
}

/// A key whose numeric part sorts numerically (`sectors/00000000000000000042`).
pub fn num_key(prefix: &str, n: u64) -> String {
    format!("{prefix}{n:020}")
}

/// Runs blocking I/O (a synced metadata write, an fsync) from a daemon's async code: on the
/// multi-threaded runtime the other tasks move off this thread while it waits, so a disk flush
/// does not stall RPC handling and dispatch. Elsewhere (a current-thread runtime, plain threads)
/// it simply runs `f`.
fn blocking_io<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Locks `m`, which its holder keeps across a synced write: when it is taken, the wait is
/// made as [`blocking_io`] (the runtime's other tasks move off this thread meanwhile).
pub fn lock_held_across_io<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.try_lock() {
        Ok(g) => g,
        Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => {
            blocking_io(|| m.lock().unwrap_or_else(|e| e.into_inner()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_scan_batch() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        for n in [10u64, 2, 33] {
            db.put(&num_key("s/", n), &n).unwrap();
        }
        db.put("t/x", &"other").unwrap();
        let all: Vec<u64> = db.scan("s/").unwrap().into_iter().map(|(_, v)| v).collect();
        assert_eq!(all, vec![2, 10, 33]);
        assert_eq!(db.first_key("s/").unwrap(), Some(num_key("s/", 2)));
        assert_eq!(db.first_key("u/").unwrap(), None);
        let seq = db.sequence();
        let mut b = Batch::default();
        b.delete(&num_key("s/", 2));
        b.put("meta/next", &34u64);
        assert!(b.writes("meta/next") && b.writes(&num_key("s/", 2)) && !b.writes("t/x"));
        db.write(b).unwrap();
        assert!(db.sequence() > seq, "a write moves the sequence on");
        assert_eq!(db.get::<u64>("meta/next").unwrap(), Some(34));
        assert_eq!(db.scan::<u64>("s/").unwrap().len(), 2);
        drop(db);
        let db = Db::open(dir.path()).unwrap();
        assert_eq!(db.get::<u64>("meta/next").unwrap(), Some(34));
    }

    #[test]
    fn a_scan_over_several_chunks_keeps_key_order_and_names_an_unreadable_value() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let n = SCAN_CHUNK as u64 * 2 + 123;
        let mut b = Batch::default();
        for i in 0..n {
            b.put(&num_key("s/", i), &i);
        }
        db.write(b).unwrap();
        let all: Vec<u64> = db.scan("s/").unwrap().into_iter().map(|(_, v)| v).collect();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
        db.put(&num_key("s/", SCAN_CHUNK as u64 + 7), &"not a number")
            .unwrap();
        match db.scan::<u64>("s/") {
            Err(DbError::Decode { key, .. }) => {
                assert_eq!(key, num_key("s/", SCAN_CHUNK as u64 + 7))
            }
            other => panic!("{other:?}"),
        }
    }

    /// A task waiting for a lock held across a flush does not stall the runtime's other tasks
    /// (here the only worker thread): they go on while it waits.
    #[test]
    fn waiting_for_a_lock_held_across_io_leaves_the_runtime_running() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let m = std::sync::Arc::new(std::sync::Mutex::new(()));
        let held = m.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        // Another thread holds it for 500 ms, as a synced write would.
        let holder = std::thread::spawn(move || {
            let _g = held.lock().unwrap();
            tx.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(500));
        });
        rx.recv().unwrap();
        let ticks = rt.block_on(async {
            let ticker = tokio::spawn(async {
                let mut n = 0;
                let t = std::time::Instant::now();
                while t.elapsed() < std::time::Duration::from_millis(400) {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    n += 1;
                }
                n
            });
            let waiter = tokio::spawn(async move {
                let _g = lock_held_across_io(&m);
            });
            waiter.await.unwrap();
            ticker.await.unwrap()
        });
        holder.join().unwrap();
        // About 40 when the runtime goes on; at most 1 when the wait holds its only thread.
        assert!(
            ticks >= 5,
            "the other task ran {ticks} times while the lock was waited for"
        );
    }
}
