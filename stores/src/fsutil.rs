//! Filesystem helpers: free space, space used, atomic writes, and moves that never leave a
//! half-written file under its final name.

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::StoreError;

/// Capacity and space available to unprivileged users of the filesystem holding `path`.
pub fn statfs(path: &Path) -> Result<(u64, u64), StoreError> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| StoreError::Attach(format!("{} contains a NUL byte", path.display())))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated string and `st` a valid out-pointer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(StoreError::io(path, std::io::Error::last_os_error()));
    }
    let frsize = st.f_frsize as u64;
    Ok((st.f_blocks as u64 * frsize, st.f_bavail as u64 * frsize))
}

/// Disk space taken by a file or a directory tree (allocated blocks, like `du`). Missing: 0.
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        fs::read_dir(path)
            .map(|rd| rd.flatten().map(|e| disk_usage(&e.path())).sum())
            .unwrap_or(0)
    } else {
        meta.blocks() * 512
    }
}

/// Writes `data` to `file` through a temporary file and a rename, so the file is either the old
/// one or the new one, never half of either.
pub fn write_atomic(file: &Path, data: &[u8]) -> Result<(), StoreError> {
    let tmp = file.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
    f.write_all(data).map_err(|e| StoreError::io(&tmp, e))?;
    f.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
    fs::rename(&tmp, file).map_err(|e| StoreError::io(file, e))?;
    Ok(())
}

/// Removes a file or a directory tree; a missing path is fine.
pub fn remove_all(path: &Path) -> Result<(), StoreError> {
    let res = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    res.map_err(|e| StoreError::io(path, e))
}

fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    let meta = fs::symlink_metadata(src)?;
    if meta.is_dir() {
        fs::create_dir_all(dst)?;
        for e in fs::read_dir(src)? {
            let e = e?;
            copy_tree(&e.path(), &dst.join(e.file_name()))?;
        }
        fsync_dir(dst)?;
    } else if meta.is_file() {
        fs::copy(src, dst)?;
        fs::File::open(dst)?.sync_all()?;
    } else {
        return Err(std::io::Error::other(format!(
            "{} is neither a file nor a directory",
            src.display()
        )));
    }
    Ok(())
}

/// Makes a directory's entries (new names, renames) durable.
pub fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// How a move went.
#[derive(Debug, PartialEq, Eq)]
pub enum Moved {
    /// Renamed on one filesystem: the source is gone.
    Renamed,
    /// Copied to another filesystem and made durable: the caller removes the source (after
    /// updating whatever points at it).
    Copied,
}

/// Moves `src` to `dst`: a rename on one filesystem; otherwise a durable copy into `staging` (a
/// path on `dst`'s filesystem) and a rename into place. `dst` never holds a partial copy, and
/// `staging` is removed when anything fails.
pub fn move_path(src: &Path, dst: &Path, staging: &Path) -> Result<Moved, StoreError> {
    let parent = dst.parent().expect("destination has a parent");
    fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
    match fs::rename(src, dst) {
        Ok(()) => {
            fsync_dir(parent).map_err(|e| StoreError::io(parent, e))?;
            return Ok(Moved::Renamed);
        }
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {}
        Err(e) => return Err(StoreError::io(src, e)),
    }
    remove_all(staging)?;
    if let Some(p) = staging.parent() {
        fs::create_dir_all(p).map_err(|e| StoreError::io(p, e))?;
    }
    let copied = copy_tree(src, staging)
        .map_err(|e| StoreError::io(src, e))
        .and_then(|()| fs::rename(staging, dst).map_err(|e| StoreError::io(dst, e)))
        .and_then(|()| fsync_dir(parent).map_err(|e| StoreError::io(parent, e)));
    if let Err(e) = copied {
        let _ = remove_all(staging);
        return Err(e);
    }
    Ok(Moved::Copied)
}

/// `path` with every component checked to stay below `root` (no `..`, no absolute parts).
pub fn join_inside(root: &Path, rel: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let mut out = root.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (out != root).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        let d = tempfile::tempdir().unwrap();
        let (cap, avail) = statfs(d.path()).unwrap();
        assert!(cap > 0 && avail <= cap);
        let f = d.path().join("a.json");
        write_atomic(&f, b"{}").unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"{}");
        let tree = d.path().join("tree");
        fs::create_dir_all(tree.join("sub")).unwrap();
        fs::write(tree.join("sub/x"), vec![1u8; 5000]).unwrap();
        assert!(disk_usage(&tree) >= 4096);
        let dst = d.path().join("moved");
        assert_eq!(
            move_path(&tree, &dst, &d.path().join("staging")).unwrap(),
            Moved::Renamed
        );
        assert!(!tree.exists() && dst.join("sub/x").exists());
        assert!(join_inside(d.path(), Path::new("../x")).is_none());
        assert!(join_inside(d.path(), Path::new("/etc/passwd")).is_none());
        assert!(join_inside(d.path(), Path::new("")).is_none());
        assert_eq!(
            join_inside(d.path(), Path::new("a/./b")).unwrap(),
            d.path().join("a/b")
        );
        remove_all(&dst).unwrap();
        remove_all(&dst).unwrap();
    }
}
