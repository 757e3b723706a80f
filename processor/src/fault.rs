//! Faults a processor child can be told to commit instead of its operation, with the mock
//! engine only: how the crash tests make a child misbehave (`worker run --mock-fault PC1=abort`).

use std::io::Write;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a child does wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Fault {
    /// Panics in the operation.
    Panic,
    /// Calls `abort()` (SIGABRT), as a failed assertion in native code does.
    Abort,
    /// Writes through a null pointer (SIGSEGV).
    Segfault,
    /// Exits with code 3.
    Exit,
    /// Sends itself SIGKILL, as the kernel's OOM killer would.
    Kill,
    /// Lowers its address-space limit (RLIMIT_AS) and allocates until an allocation fails.
    Oom,
    /// Sleeps forever.
    Hang,
    /// Writes a line that is not the protocol, then sleeps.
    Garbage,
}

pub const FAULTS: [(&str, Fault); 8] = [
    ("panic", Fault::Panic),
    ("abort", Fault::Abort),
    ("segfault", Fault::Segfault),
    ("exit", Fault::Exit),
    ("kill", Fault::Kill),
    ("oom", Fault::Oom),
    ("hang", Fault::Hang),
    ("garbage", Fault::Garbage),
];

impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Fault, String> {
        FAULTS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s))
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                let names: Vec<&str> = FAULTS.iter().map(|(n, _)| *n).collect();
                format!("unknown fault {s:?}: one of {}", names.join(", "))
            })
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = FAULTS.iter().find(|(_, x)| x == self).map(|(n, _)| *n);
        f.write_str(name.unwrap_or("?"))
    }
}

impl Fault {
    /// Commits the fault in this (child) process. Returns only for [`Fault::Panic`]'s unwinding.
    pub(crate) fn commit(self, pipe: &mut impl Write) {
        match self {
            Fault::Panic => panic!("mock fault: a panic in the operation"),
            Fault::Abort => std::process::abort(),
            Fault::Segfault => {
                // SAFETY: none; this is the point. A volatile write keeps it from being elided.
                unsafe { std::ptr::write_volatile(std::ptr::null_mut::<u64>(), 1) };
            }
            Fault::Exit => std::process::exit(3),
            Fault::Kill => {
                // SAFETY: plain syscall on this process.
                unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            }
            Fault::Oom => {
                let limit = libc::rlimit {
                    rlim_cur: 1 << 30,
                    rlim_max: libc::RLIM_INFINITY,
                };
                // SAFETY: plain syscall with a valid struct.
                unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
                let mut hold: Vec<Vec<u8>> = Vec::new();
                loop {
                    // Touched, so the pages are real; the allocator reports the failure.
                    hold.push(vec![1u8; 64 << 20]);
                }
            }
            Fault::Hang => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            Fault::Garbage => {
                let _ = pipe.write_all(b"\x00\x01 this is not the protocol\n");
                let _ = pipe.flush();
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
        }
        // Only a fault that failed to act gets here (kill refused, say).
        std::process::exit(4)
    }
}
