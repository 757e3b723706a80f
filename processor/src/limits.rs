//! The daemons' open-file limit. A sealer with a thousand workers holds two connections per
//! worker (its calls to the worker, the worker's heartbeats and results to it) besides its
//! database and sector files: far past the 1,024 a shell usually starts a process with. As
//! lotus does at start, each daemon raises its soft limit to the hard one.

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit; returns the soft limit before
/// and after.
pub fn raise_open_files() -> std::io::Result<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = r.rlim_cur;
    if r.rlim_cur < r.rlim_max {
        r.rlim_cur = r.rlim_max;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok((before, r.rlim_cur))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_ends_at_the_hard_one() {
        let (before, after) = super::raise_open_files().unwrap();
        assert!(after >= before);
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
        assert_eq!((r.rlim_cur, r.rlim_cur), (after, r.rlim_max));
    }
}
