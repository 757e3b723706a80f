//! How an operation run in a processor child (a process of its own, see the `processor` crate)
//! ended without giving its result. The worker that started it goes on; the task fails with one
//! of these, which says what happened to the process.

use serde::{Deserialize, Serialize};

/// What became of a processor child that gave no result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Crash {
    /// The operation panicked (the child caught it and reported the message).
    #[error("panicked: {0}")]
    Panicked(String),
    /// An allocation failed: the memory limit on the child (RLIMIT_AS, a cgroup's memory.max)
    /// or the machine's memory was reached.
    #[error("out of memory: an allocation of {bytes} bytes failed")]
    OutOfMemory { bytes: u64 },
    /// The child was killed by a signal it did not get from the worker.
    #[error("killed by signal {signal} ({})", signal_name(*.signal))]
    Signalled { signal: i32 },
    /// The child exited without a result.
    #[error("exited with code {0} without a result")]
    Exited(i32),
    /// The child ran past the task's deadline and was killed.
    #[error("still running after its deadline of {}s: killed", .0)]
    TimedOut(u64),
    /// The child wrote something that is not the protocol on its pipe, and was killed.
    #[error("wrote garbage on its pipe ({0}): killed")]
    Protocol(String),
    /// The child could not be started or did not say hello in time.
    #[error("could not be started: {0}")]
    Start(String),
}

impl Crash {
    /// A short fixed name of the kind of failure (the metrics' `kind` label).
    pub fn kind(&self) -> &'static str {
        match self {
            Crash::Panicked(_) => "panic",
            Crash::OutOfMemory { .. } => "out of memory",
            Crash::Signalled { .. } => "signal",
            Crash::Exited(_) => "exit",
            Crash::TimedOut(_) => "timeout",
            Crash::Protocol(_) => "protocol",
            Crash::Start(_) => "start",
        }
    }
}

/// A signal's name as `kill -l` prints it, for the common ones.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL: the kernel's OOM killer or an operator",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => "signal",
    }
}
