//! Two machines, each a store served over HTTP on 127.0.0.1, sharing one index.

mod common;

use std::fs;
use std::sync::Arc;

use common::*;
use resources::SectorSize::*;
use stores::{
    AcquireMode, FileType, FileTypes, FsStat, MemIndex, PathKind, Permission, SectorIndex,
    StorageId, StorageInfo, StoreError,
};

#[tokio::test]
async fn fetches_a_sealed_file_and_a_cache_directory_byte_for_byte() {
    let index = Arc::new(MemIndex::default());
    let a = machine(index.clone(), true, false, None).await;
    let b = machine(index.clone(), true, false, None).await;
    let s = sector(1, S8MiB);
    seed_sector(&a, &s, 3 << 20).await;

    let got = b
        .remote
        .acquire(
            &s,
            FileTypes::SEALED,
            FileTypes::NONE,
            PathKind::Sealing,
            AcquireMode::Copy,
        )
        .await
        .unwrap();
    let a_sealed = a.seal_path.join("sealed").join(s.file_name());
    assert_eq!(
        fs::read(got.paths.sealed.as_ref().unwrap()).unwrap(),
        fs::read(&a_sealed).unwrap()
    );
    let a_cache = a.seal_path.join("cache").join(s.file_name());
    assert_eq!(tree(got.paths.cache.as_ref().unwrap()), tree(&a_cache));
    assert!(a_sealed.exists(), "a copy leaves the source in place");
    assert!(!b
        .seal_path
        .join("sealed/fetching")
        .join(s.file_name())
        .exists());
    let locs = index
        .storage_find_sector(s.id(), FileTypes::SEALED)
        .await
        .unwrap();
    assert_eq!(locs.len(), 2, "both machines are listed as holders");

    // A move deletes the source once the copy is complete.
    let s2 = sector(2, S8MiB);
    seed_sector(&a, &s2, 1 << 20).await;
    b.remote
        .acquire(
            &s2,
            FileTypes::SEALED,
            FileTypes::NONE,
            PathKind::Sealing,
            AcquireMode::Move,
        )
        .await
        .unwrap();
    assert!(!a.seal_path.join("sealed").join(s2.file_name()).exists());
    assert!(!a.seal_path.join("cache").join(s2.file_name()).exists());
    let locs = index
        .storage_find_sector(s2.id(), FileTypes::SEALED)
        .await
        .unwrap();
    assert_eq!(locs.len(), 1);
    assert_eq!(locs[0].storage.id, b.seal);
}

#[tokio::test]
async fn range_reads_and_stat() {
    let index = Arc::new(MemIndex::default());
    let a = machine(index, true, false, None).await;
    let s = sector(1, S2KiB);
    seed_sector(&a, &s, 10_000).await;
    let client = reqwest::Client::new();
    let url = format!("http://{}/remote/sealed/{}", a.addr, s.file_name());
    let r = client
        .get(&url)
        .bearer_auth(admin_token())
        .header("Range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.bytes().await.unwrap().to_vec(),
        pattern(10_000, 1)[100..200].to_vec()
    );
    let body = client
        .get(format!("http://{}/remote/stat/{}", a.addr, a.seal))
        .bearer_auth(admin_token())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let stat: FsStat = serde_json::from_slice(&body).unwrap();
    assert!(stat.capacity > 0 && stat.used >= 10_000);
    let r = client
        .get(format!("http://{}/remote/stat/nope", a.addr))
        .bearer_auth(admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn tokens_are_required() {
    let index = Arc::new(MemIndex::default());
    let a = machine(index, true, false, None).await;
    let s = sector(1, S2KiB);
    seed_sector(&a, &s, 100).await;
    let path = format!("/remote/sealed/{}", s.file_name());
    let client = reqwest::Client::new();
    let url = format!("http://{}{path}", a.addr);
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        401,
        "no token"
    );
    let other = stores::Secret::generate().token_for(Permission::Admin);
    assert_eq!(
        client
            .get(&url)
            .bearer_auth(other)
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "foreign token"
    );
    assert_eq!(
        client
            .get(&url)
            .bearer_auth("garbage")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let read = secret().token_for(Permission::Write);
    assert_eq!(
        client
            .get(&url)
            .bearer_auth(&read)
            .send()
            .await
            .unwrap()
            .status(),
        403,
        "not admin"
    );
    assert_eq!(
        client
            .delete(&url)
            .bearer_auth(&read)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert!(a.seal_path.join("sealed").join(s.file_name()).exists());
    assert_eq!(
        client
            .get(&url)
            .bearer_auth(admin_token())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn paths_outside_the_store_are_refused() {
    let index = Arc::new(MemIndex::default());
    let a = machine(index, true, false, None).await;
    let s = sector(1, S2KiB);
    seed_sector(&a, &s, 100).await;
    let secret_file = a.dir.path().join("secret.txt");
    fs::write(&secret_file, b"do not serve").unwrap();
    let token = admin_token();
    let bad = [
        "/remote/sealed/../../secret.txt",
        "/remote/sealed/..",
        "/remote/sealed/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/remote/sealed/s-t01000-1%2f..%2f..%2fsecret.txt",
        "/remote/%2e%2e/s-t01000-1",
        "/remote/sealed/%2Fetc%2Fpasswd",
        "/remote/%2Fetc/passwd",
        "/remote/sealed//etc/passwd",
        "/remote/cache/s-t01000-1/p_aux",
        "/remote/sealed/s-t01000-1x",
        "/remote/",
    ];
    for path in bad {
        assert_eq!(
            raw_status(a.addr, "GET", path, &token).await,
            400,
            "GET {path}"
        );
        assert_eq!(
            raw_status(a.addr, "DELETE", path, &token).await,
            400,
            "DELETE {path}"
        );
    }
    assert!(secret_file.exists());
    assert!(a.seal_path.join("sealed").join(s.file_name()).exists());
    assert!(a
        .seal_path
        .join("cache")
        .join(s.file_name())
        .join("p_aux")
        .exists());
    assert_eq!(
        raw_status(
            a.addr,
            "GET",
            &format!("/remote/sealed/{}", s.file_name()),
            &token
        )
        .await,
        200
    );
}

/// Declares `sector`'s `t` file on a fake storage path served at `url`.
async fn declare_fake(index: &MemIndex, url: String, sector: resources::SectorId, t: FileType) {
    let info = StorageInfo {
        id: StorageId("evil".into()),
        urls: vec![url],
        weight: 10,
        max_storage: 0,
        can_seal: true,
        can_store: false,
        groups: vec![],
        allow_to: vec![],
    };
    index.storage_attach(info, FsStat::default()).await.unwrap();
    index
        .storage_declare_sector(&StorageId("evil".into()), sector, t)
        .await
        .unwrap();
}

/// A one-shot server that answers any request with `head` and `body`, then closes.
async fn serve_raw(head: String, body: Vec<u8>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf).await;
            let _ = c.write_all(head.as_bytes()).await;
            let _ = c.write_all(&body).await;
            let _ = c.shutdown().await;
        }
    });
    format!("http://{addr}/remote")
}

fn tar_with(raw_name: &[u8], kind: tar::EntryType, link: Option<&str>, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    {
        let name = &mut h.as_old_mut().name;
        name[..raw_name.len()].copy_from_slice(raw_name);
    }
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    if let Some(l) = link {
        h.set_link_name(l).unwrap();
    }
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[tokio::test]
async fn tar_with_links_or_escaping_entries_is_refused() {
    let cases: [(&[u8], tar::EntryType, Option<&str>); 4] = [
        (b"../escaped.txt", tar::EntryType::Regular, None),
        (b"/tmp/absolute-escape.txt", tar::EntryType::Regular, None),
        (b"link", tar::EntryType::Symlink, Some("/etc")),
        (b"hard", tar::EntryType::Link, Some("/etc/passwd")),
    ];
    for (i, (name, kind, link)) in cases.into_iter().enumerate() {
        let index = Arc::new(MemIndex::default());
        let b = machine(index.clone(), true, false, None).await;
        let s = sector(10 + i as u64, S2KiB);
        let body = tar_with(name, kind, link, b"pwned");
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-tar\r\nx-tar-files: 1\r\nx-tar-bytes: 5\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        declare_fake(&index, serve_raw(head, body).await, s.id(), FileType::Cache).await;
        let err = b
            .remote
            .acquire(
                &s,
                FileType::Cache.into(),
                FileTypes::NONE,
                PathKind::Sealing,
                AcquireMode::Copy,
            )
            .await
            .err()
            .unwrap_or_else(|| panic!("case {i} accepted"));
        assert!(matches!(err, StoreError::Refused { .. }), "case {i}: {err}");
        let cache = b.seal_path.join("cache");
        assert!(!cache.join(s.file_name()).exists(), "case {i}");
        assert!(
            !cache.join("escaped.txt").exists() && !cache.join("fetching/escaped.txt").exists()
        );
        assert!(!std::path::Path::new("/tmp/absolute-escape.txt").exists());
        assert_eq!(
            fs::read_dir(cache.join("fetching"))
                .map(|d| d.count())
                .unwrap_or(0),
            0,
            "case {i}: staging cleaned"
        );
    }
}

/// Fetches one file type of `s` onto `m`, copying.
async fn fetch(
    m: &Machine,
    s: &resources::SectorRef,
    t: FileType,
) -> Result<stores::Acquired, StoreError> {
    m.remote
        .acquire(
            s,
            t.into(),
            FileTypes::NONE,
            PathKind::Sealing,
            AcquireMode::Copy,
        )
        .await
}

/// Nothing of `s` under the final name of `t`, and no staging left.
fn nothing_left(m: &Machine, s: &resources::SectorRef, t: FileType) {
    assert!(
        !m.seal_path.join(t.dir()).join(s.file_name()).exists(),
        "{t} under its final name"
    );
    let staged = fs::read_dir(m.seal_path.join(t.dir()).join("fetching"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(staged, 0, "staging left in {t}/fetching");
}

#[tokio::test]
async fn a_fetch_cut_off_halfway_leaves_nothing_under_the_final_name() {
    let index = Arc::new(MemIndex::default());
    let b = machine(index.clone(), true, false, None).await;
    // A file: the server promises 1 MB and dies after half.
    let s = sector(1, S8MiB);
    let head =
        "HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\nconnection: close\r\n\r\n".to_string();
    declare_fake(
        &index,
        serve_raw(head, vec![9u8; 500_000]).await,
        s.id(),
        FileType::Sealed,
    )
    .await;
    let err = fetch(&b, &s, FileType::Sealed).await;
    assert!(
        matches!(err, Err(StoreError::Fetch { .. })),
        "{:?}",
        err.err()
    );
    nothing_left(&b, &s, FileType::Sealed);

    // A cache directory: a valid tar entry, then the stream ends before the announced second file.
    let s = sector(2, S2KiB);
    let mut body = tar_with(b"p_aux", tar::EntryType::Regular, None, b"12345");
    body.truncate(body.len() - 1024);
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/x-tar\r\nx-tar-files: 2\r\nx-tar-bytes: 10\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    declare_fake(&index, serve_raw(head, body).await, s.id(), FileType::Cache).await;
    let err = fetch(&b, &s, FileType::Cache).await;
    assert!(
        matches!(err, Err(StoreError::Fetch { .. })),
        "{:?}",
        err.err()
    );
    nothing_left(&b, &s, FileType::Cache);

    // More than a sector's worth announced for a 2KiB sector: refused before writing.
    let s = sector(3, S2KiB);
    let head =
        "HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\nconnection: close\r\n\r\n".to_string();
    declare_fake(
        &index,
        serve_raw(head, vec![9u8; 1_000_000]).await,
        s.id(),
        FileType::Sealed,
    )
    .await;
    let msg = fetch(&b, &s, FileType::Sealed)
        .await
        .err()
        .unwrap()
        .to_string();
    // Tiny sectors get a 64 KiB floor (their fixed-size files outgrow the ratios).
    assert!(msg.contains("more than the 65536 reserved"), "{msg}");
    nothing_left(&b, &s, FileType::Sealed);
}

#[tokio::test]
async fn out_of_space_is_refused_before_any_byte_moves() {
    let index = Arc::new(MemIndex::default());
    let a = machine(index.clone(), true, false, None).await;
    // 4 MiB of room; an 8MiB sector's sealed file needs 8 MiB.
    let b = machine(index.clone(), true, false, Some(4 << 20)).await;
    let s = sector(1, S8MiB);
    seed_sector(&a, &s, 1 << 20).await;
    let err = b
        .remote
        .acquire(
            &s,
            FileType::Sealed.into(),
            FileTypes::NONE,
            PathKind::Sealing,
            AcquireMode::Copy,
        )
        .await
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains(&b.seal_path.display().to_string())
            && msg.contains("available: ")
            && msg.contains("need: 8388608"),
        "{msg}"
    );
    assert_eq!(
        a.stats.transfers.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "no transfer started"
    );
    assert!(!b.seal_path.join("sealed").join(s.file_name()).exists());
    assert_eq!(
        fs::read_dir(b.seal_path.join("sealed/fetching"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
}

#[tokio::test]
async fn concurrent_requests_for_one_sector_transfer_it_once() {
    let index = Arc::new(MemIndex::default());
    let a = machine(index.clone(), true, false, None).await;
    let b = machine(index.clone(), true, false, None).await;
    let s = sector(1, S8MiB);
    seed_sector(&a, &s, 2 << 20).await;
    let acquire = || {
        b.remote.acquire(
            &s,
            FileTypes::SEALED,
            FileTypes::NONE,
            PathKind::Sealing,
            AcquireMode::Copy,
        )
    };
    let (x, y) = tokio::join!(acquire(), acquire());
    assert_eq!(x.unwrap().paths, y.unwrap().paths);
    assert_eq!(
        a.stats.transfers.load(std::sync::atomic::Ordering::Relaxed),
        2,
        "sealed + cache, once each"
    );
    assert_eq!(b.remote.fetch_count(), 2);
}

#[tokio::test]
async fn a_second_worker_on_the_same_path_sees_the_files_without_a_copy() {
    let index = Arc::new(MemIndex::default());
    let b1 = machine(index.clone(), true, false, None).await;
    let s = sector(1, S2KiB);
    seed_sector(&b1, &s, 4096).await;
    // Worker B2 attaches B1's seal path without --init.
    let dir = tempfile::tempdir().unwrap();
    let idx: Arc<dyn SectorIndex> = index.clone();
    let b2 = stores::LocalStore::open(
        &dir.path().join("storage.json"),
        idx,
        vec!["http://127.0.0.1:1/remote".into()],
    )
    .await
    .unwrap();
    let id = b2
        .attach(&b1.seal_path, &stores::AttachOptions::default())
        .await
        .unwrap();
    assert_eq!(id, b1.seal);
    let got = b2
        .acquire(&s, FileTypes::SEALED, FileTypes::NONE, PathKind::Sealing)
        .unwrap();
    assert_eq!(
        got.paths.sealed.unwrap(),
        b1.seal_path.join("sealed").join(s.file_name())
    );
}

/// A server that holds each connection `delay` before answering with a 10-byte file, and
/// records how many connections it held at once.
async fn slow_server(delay: std::time::Duration) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let m = max.clone();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            let (now, max) = (now.clone(), m.clone());
            tokio::spawn(async move {
                let n = now.fetch_add(1, SeqCst) + 1;
                max.fetch_max(n, SeqCst);
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf).await;
                tokio::time::sleep(delay).await;
                let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\n0123456789").await;
                let _ = c.shutdown().await;
                now.fetch_sub(1, SeqCst);
            });
        }
    });
    (format!("http://{addr}/remote"), max)
}

#[tokio::test]
async fn parallel_fetch_limit_caps_transfers_in_flight() {
    for limit in [1usize, 3] {
        let index = Arc::new(MemIndex::default());
        let b = machine(index.clone(), true, false, None).await;
        let remote = stores::Remote::new(b.local.clone(), admin_token(), limit);
        let (url, max) = slow_server(std::time::Duration::from_millis(150)).await;
        let sectors: Vec<_> = (1..=4).map(|n| sector(n, S2KiB)).collect();
        for s in &sectors {
            declare_fake(&index, url.clone(), s.id(), FileType::Sealed).await;
        }
        let all = futures_util::future::join_all(sectors.iter().map(|s| {
            remote.acquire(
                s,
                FileType::Sealed.into(),
                FileTypes::NONE,
                PathKind::Sealing,
                AcquireMode::Copy,
            )
        }))
        .await;
        assert!(all.iter().all(|r| r.is_ok()));
        assert_eq!(
            max.load(std::sync::atomic::Ordering::SeqCst),
            limit,
            "limit {limit}"
        );
        let located = remote
            .locate(sectors[0].id(), FileTypes::SEALED)
            .await
            .unwrap();
        assert_eq!(located.local.len(), 1);
        assert_eq!(located.fetchable.len(), 1, "the slow server still has it");
    }
}

/// A one-shot server that sends `head` and `first`, waits `pause`, then sends `rest`.
async fn serve_in_two(
    head: String,
    first: Vec<u8>,
    rest: Vec<u8>,
    pause: std::time::Duration,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        if let Ok((mut c, _)) = l.accept().await {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf).await;
            let _ = c.write_all(head.as_bytes()).await;
            let _ = c.write_all(&first).await;
            tokio::time::sleep(pause).await;
            let _ = c.write_all(&rest).await;
            let _ = c.shutdown().await;
        }
    });
    format!("http://{addr}/remote")
}

#[tokio::test]
async fn a_fetch_under_way_says_how_many_bytes_have_come() {
    let index = Arc::new(MemIndex::default());
    let b = machine(index.clone(), true, false, None).await;
    let s = sector(1, S8MiB);
    let head =
        "HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\nconnection: close\r\n\r\n".to_string();
    let url = serve_in_two(
        head,
        vec![7u8; 400_000],
        vec![7u8; 600_000],
        std::time::Duration::from_secs(2),
    )
    .await;
    declare_fake(&index, url, s.id(), FileType::Sealed).await;
    assert_eq!(b.remote.transfer(s.id()), None, "nothing under way yet");
    let id = s.id();
    let watch = async {
        // Sampled while the server pauses after the first 400,000 bytes.
        let start = std::time::Instant::now();
        loop {
            if let Some(p) = b.remote.transfer(id).filter(|p| p.done == 400_000) {
                return p;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "{:?}",
                b.remote.transfer(id)
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let (fetched, seen) = tokio::join!(fetch(&b, &s, FileType::Sealed), watch);
    fetched.unwrap();
    assert_eq!(seen, resources::Progress::bytes(400_000, 1_000_000));
    assert!(
        seen.to_string().starts_with("390.625 KiB of 976.5"),
        "{seen}"
    );
    assert_eq!(b.remote.transfer(s.id()), None, "done: nothing under way");
}
