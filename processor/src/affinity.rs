//! The calling process's CPU affinity, as a [`CpuSet`], and the `cpu_set_t` to set one.

use resources::topology::CpuSet;

/// The CPUs this process may run on (`sched_getaffinity`).
pub fn current() -> std::io::Result<CpuSet> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the kernel writes at most its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((0..libc::CPU_SETSIZE as u32)
        // SAFETY: the index is below CPU_SETSIZE.
        .filter(|c| unsafe { libc::CPU_ISSET(*c as usize, &set) })
        .collect())
}

/// `cpus` as the kernel takes it. CPUs at or above `CPU_SETSIZE` (1024) are refused.
pub fn cpu_set_t(cpus: &CpuSet) -> Result<libc::cpu_set_t, String> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for c in &cpus.0 {
        if *c as usize >= libc::CPU_SETSIZE as usize {
            return Err(format!(
                "CPU {c} is beyond the {} CPUs an affinity mask holds",
                libc::CPU_SETSIZE
            ));
        }
        // SAFETY: the index is below CPU_SETSIZE (checked above).
        unsafe { libc::CPU_SET(*c as usize, &mut set) };
    }
    Ok(set)
}

/// Pins every thread of this process to `cpus` (threads made later inherit it). Used by a
/// worker started with `--cpus`, so that nothing it runs leaves them.
pub fn pin_process(cpus: &CpuSet) -> std::io::Result<()> {
    let set = cpu_set_t(cpus).map_err(std::io::Error::other)?;
    for e in std::fs::read_dir("/proc/self/task")? {
        let Some(tid) = e?.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        // SAFETY: plain syscall with a valid set; a thread that ended since is skipped.
        let r =
            unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(e);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_may_run_somewhere_and_its_mask_goes_back_and_forth() {
        let cur = super::current().unwrap();
        assert!(!cur.is_empty());
        let set = super::cpu_set_t(&cur).unwrap();
        for c in &cur.0 {
            assert!(unsafe { libc::CPU_ISSET(*c as usize, &set) });
        }
        assert!(super::cpu_set_t(&"5000".parse().unwrap()).is_err());
    }
}
