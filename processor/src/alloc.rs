//! The allocator of binaries that run processor children: the system allocator, which in a child
//! also reports a failed allocation on the protocol pipe before Rust aborts, so the worker can say
//! "out of memory" rather than only "SIGABRT". Declare it in the binary:
//! `#[global_allocator] static A: processor::alloc::Reporting = processor::alloc::Reporting;`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI32, Ordering};

/// The pipe to report on: set in a child, -1 elsewhere.
static PIPE: AtomicI32 = AtomicI32::new(-1);

pub(crate) fn report_on(fd: i32) {
    PIPE.store(fd, Ordering::SeqCst);
}

/// See the module documentation.
pub struct Reporting;

// SAFETY: every call goes to `System` unchanged; the report only reads its arguments.
unsafe impl GlobalAlloc for Reporting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if p.is_null() {
            failed(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if p.is_null() {
            failed(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if p.is_null() {
            failed(new_size);
        }
        p
    }
}

/// Writes `{"OutOfMemory":{"bytes":N}}` on its own line without allocating.
fn failed(bytes: usize) {
    let fd = PIPE.load(Ordering::SeqCst);
    if fd < 0 {
        return;
    }
    let mut buf = [0u8; 64];
    let head = b"\n{\"OutOfMemory\":{\"bytes\":";
    buf[..head.len()].copy_from_slice(head);
    let mut n = head.len();
    let mut digits = [0u8; 20];
    let mut d = 0;
    let mut v = bytes;
    loop {
        digits[d] = b'0' + (v % 10) as u8;
        d += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    while d > 0 {
        d -= 1;
        buf[n] = digits[d];
        n += 1;
    }
    buf[n..n + 3].copy_from_slice(b"}}\n");
    n += 3;
    // SAFETY: a write of our own buffer; a failure is ignored (the abort follows anyway).
    unsafe { libc::write(fd, buf.as_ptr().cast(), n) };
}
