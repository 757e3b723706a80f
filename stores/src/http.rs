//! The `/remote` HTTP endpoints every machine serves (admin token required):
//! `GET /remote/stat/{id}`, `GET /remote/{type}/{sector}` (files with Range support; a cache
//! directory as a tar stream, never buffered whole) and `DELETE /remote/{type}/{sector}`.
//! Anything that does not name exactly one sector file type and sector is refused with 400.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use bytes::Bytes;
use resources::SectorId;
use tokio_stream::wrappers::ReceiverStream;

use crate::auth::{permissions_from_header, Permission, Secret};
use crate::filetype::FileType;
use crate::local::LocalStore;
use crate::meta::StorageId;

/// Header with the number of regular files in a cache directory's tar stream.
pub const TAR_FILES_HEADER: &str = "x-tar-files";
/// Header with the total bytes of those files.
pub const TAR_BYTES_HEADER: &str = "x-tar-bytes";

/// Counters of what this server sent.
#[derive(Debug, Default)]
pub struct ServeStats {
    /// Sector file or directory GETs answered with content.
    pub transfers: AtomicU64,
}

#[derive(Clone)]
struct AppState {
    local: LocalStore,
    stats: Arc<ServeStats>,
}

/// The `/remote` routes over `local`, guarded by tokens signed with `secret`.
pub fn router(local: LocalStore, secret: Secret) -> (Router, Arc<ServeStats>) {
    let stats = Arc::new(ServeStats::default());
    let state = AppState {
        local,
        stats: stats.clone(),
    };
    let r = Router::new()
        .route("/remote/{*rest}", get(get_any).delete(delete_any))
        .route("/remote", any(bad_path))
        .route("/remote/", any(bad_path))
        .with_state(state)
        .route_layer(middleware::from_fn_with_state(secret, require_admin));
    (r, stats)
}

async fn require_admin(State(secret): State<Secret>, req: Request, next: Next) -> Response {
    let h = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match permissions_from_header(&secret, h) {
        Err(msg) => (StatusCode::UNAUTHORIZED, msg).into_response(),
        Ok(p) if !p.contains(&Permission::Admin) => (
            StatusCode::FORBIDDEN,
            "this endpoint needs a token with admin permission",
        )
            .into_response(),
        Ok(_) => next.run(req).await,
    }
}

async fn bad_path(req: Request) -> Response {
    bad_uri(req.uri().path())
}

fn bad_uri(path: &str) -> Response {
    bad(format!("{path} does not name a sector file (want /remote/{{unsealed|sealed|cache}}/s-t0<miner>-<number>)"))
}

/// Splits the (percent-decoded) rest of a `/remote/` path into exactly two segments.
fn two_segments(rest: &str) -> Option<(&str, &str)> {
    let (a, b) = rest.split_once('/')?;
    (!a.is_empty() && !b.is_empty() && !b.contains('/')).then_some((a, b))
}

async fn get_any(state: State<AppState>, UrlPath(rest): UrlPath<String>, req: Request) -> Response {
    match two_segments(&rest) {
        Some(("stat", id)) => stat(state, id.to_string()).await,
        Some((ft, sector)) => get_sector(state, ft, sector, req).await,
        None => bad_uri(req.uri().path()),
    }
}

async fn delete_any(
    state: State<AppState>,
    UrlPath(rest): UrlPath<String>,
    req: Request,
) -> Response {
    match two_segments(&rest) {
        Some((ft, sector)) if ft != "stat" => delete_sector(state, ft, sector).await,
        _ => bad_uri(req.uri().path()),
    }
}

fn bad(msg: String) -> Response {
    (StatusCode::BAD_REQUEST, msg).into_response()
}

/// The file type and sector a path names, or why it names none.
fn parse(ft: &str, sector: &str) -> Result<(FileType, SectorId), String> {
    let ft: FileType = ft
        .parse()
        .map_err(|e: crate::filetype::BadFileType| e.to_string())?;
    let sector: SectorId = sector
        .parse()
        .map_err(|e: resources::proof::BadSectorName| e.to_string())?;
    Ok((ft, sector))
}

async fn stat(State(s): State<AppState>, id: String) -> Response {
    match s.local.stat(&StorageId(id)) {
        Ok(st) => Json(st).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
    }
}

async fn delete_sector(State(s): State<AppState>, ft: &str, sector: &str) -> Response {
    let (ft, sector) = match parse(ft, sector) {
        Ok(v) => v,
        Err(msg) => return bad(msg),
    };
    match s.local.remove(sector, ft.into()).await {
        Ok(true) => StatusCode::OK.into_response(),
        Ok(false) => (
            StatusCode::NOT_FOUND,
            format!("no {ft} file of {sector} here"),
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn get_sector(State(s): State<AppState>, ft: &str, sector: &str, req: Request) -> Response {
    // Answered from a blocking thread: files stream in 4 MiB chunks, directories as tar.
    let (ft, sector) = match parse(ft, sector) {
        Ok(v) => v,
        Err(msg) => return bad(msg),
    };
    let Some((_, path)) = s.local.find_local(sector, ft) else {
        return (
            StatusCode::NOT_FOUND,
            format!("no {ft} file of {sector} here"),
        )
            .into_response();
    };
    s.stats.transfers.fetch_add(1, Ordering::Relaxed);
    if path.is_dir() {
        return tar_response(path);
    }
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    file_response(path, range)
}

/// Parses a single `bytes=` range against a file of `len` bytes: `Ok(None)` means the whole file
/// (no header, or several ranges), `Err(())` an unsatisfiable range.
fn parse_range(h: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, ()> {
    // A Range header that does not parse is ignored (RFC 9110): the whole file is sent.
    let Some(spec) = h.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let num = |x: &str| x.parse::<u64>().ok();
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => match num(n) {
            Some(n) => (len.saturating_sub(n), len),
            None => return Ok(None),
        },
        (a, "") => match num(a) {
            Some(a) => (a, len),
            None => return Ok(None),
        },
        (a, b) => match (num(a), num(b)) {
            (Some(a), Some(b)) if a <= b => (a, b.saturating_add(1).min(len)),
            _ => return Ok(None),
        },
    };
    if start >= end {
        return Err(());
    }
    Ok(Some((start, end)))
}

const FILE_CHUNK: usize = 4 << 20;

/// Streams a file (or one range of it) from a blocking reader thread in 4 MiB chunks.
fn file_response(path: PathBuf, range: Option<&str>) -> Response {
    let len = match fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{}: {e}", path.display()),
            )
                .into_response()
        }
    };
    let (start, end, partial) = match parse_range(range, len) {
        Ok(Some((s, e))) => (s, e, true),
        Ok(None) => (0, len, false),
        Err(()) => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            let v = HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii");
            r.headers_mut().insert(header::CONTENT_RANGE, v);
            return r;
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let res = (|| -> io::Result<()> {
            let mut f = fs::File::open(&path)?;
            f.seek(SeekFrom::Start(start))?;
            let mut left = end - start;
            while left > 0 {
                let mut buf = vec![0u8; (FILE_CHUNK as u64).min(left) as usize];
                f.read_exact(&mut buf)?;
                left -= buf.len() as u64;
                if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                    return Ok(()); // the client went away
                }
            }
            Ok(())
        })();
        if let Err(e) = res {
            let _ = tx.blocking_send(Err(e));
        }
    });
    let mut resp = Body::from_stream(ReceiverStream::new(rx)).into_response();
    if partial {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        let cr = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1)).expect("ascii");
        resp.headers_mut().insert(header::CONTENT_RANGE, cr);
    }
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    resp
}

/// Writes a tar stream into a channel in 1 MiB chunks (backpressure from the client).
struct ChanWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 1 << 20;

impl Write for ChanWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

/// Regular files and directories under `root`, relative, sorted; anything else is skipped.
fn walk(root: &Path, rel: &Path, out: &mut Vec<(PathBuf, bool, u64)>) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(root.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let meta = fs::symlink_metadata(e.path())?;
        let r = rel.join(e.file_name());
        if meta.is_dir() {
            out.push((r.clone(), true, 0));
            walk(root, &r, out)?;
        } else if meta.is_file() {
            out.push((r, false, meta.len()));
        } else {
            tracing::warn!(path = %e.path().display(), "not serving a cache entry that is neither a file nor a directory");
        }
    }
    Ok(())
}

fn tar_response(dir: PathBuf) -> Response {
    let mut entries = Vec::new();
    if let Err(e) = walk(&dir, Path::new(""), &mut entries) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{}: {e}", dir.display()),
        )
            .into_response();
    }
    let files = entries.iter().filter(|e| !e.1).count();
    let bytes: u64 = entries.iter().map(|e| e.2).sum();
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let err_tx = tx.clone();
        let mut b = tar::Builder::new(ChanWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        });
        let res = (|| -> io::Result<()> {
            for (rel, is_dir, _) in &entries {
                let src = dir.join(rel);
                if *is_dir {
                    b.append_dir(rel, &src)?;
                } else {
                    // Never follow a link swapped in since the walk.
                    let mut f = fs::OpenOptions::new()
                        .read(true)
                        .custom_flags(libc::O_NOFOLLOW)
                        .open(&src)?;
                    b.append_file(rel, &mut f)?;
                }
            }
            b.finish()?;
            b.get_mut().flush()
        })();
        if let Err(e) = res {
            // Abort the body so the client sees a broken transfer, not a short archive.
            let _ = err_tx.blocking_send(Err(e));
        }
    });
    let mut resp = Body::from_stream(ReceiverStream::new(rx)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    h.insert(TAR_FILES_HEADER, HeaderValue::from(files as u64));
    h.insert(TAR_BYTES_HEADER, HeaderValue::from(bytes));
    resp
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=10-19"), 100), Ok(Some((10, 20))));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Ok(Some((90, 100))));
        assert_eq!(parse_range(Some("bytes=-5"), 100), Ok(Some((95, 100))));
        assert_eq!(parse_range(Some("bytes=50-500"), 100), Ok(Some((50, 100))));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Err(()));
        assert_eq!(
            parse_range(Some("bytes=x-"), 100),
            Ok(None),
            "malformed: ignored"
        );
        assert_eq!(parse_range(Some("bytes=9-3"), 100), Ok(None));
    }
}
