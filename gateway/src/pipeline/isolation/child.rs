//! The worker side: `gateway inspect-worker`, started by the gateway with its limits on
//! the command line. It sets them on itself before it reads any request, then answers
//! one request at a time on stdin/stdout until stdin closes (the gateway went away).
//!
//! The limits are the kernel's, so a parser cannot step around them:
//! - `RLIMIT_DATA` bounds heap and private anonymous memory (not the mapped binary), so
//!   an allocation beyond it fails; the global allocator turns that failure into exit
//!   code [`EXIT_MEMORY`] so the gateway can tell it from a crash.
//! - `RLIMIT_CPU` is re-armed before each request to the CPU time used so far plus the
//!   per-upload allowance: a parser spinning forever gets `SIGXCPU`.
//! - `RLIMIT_CORE` 0 (a crash never writes a core file of medical data) and
//!   `RLIMIT_FSIZE` 0 (a worker never writes a file).
//! - The wall-clock deadline is the gateway's: it kills a worker that does not answer.
//!
//! A stack overflow (deep nesting in a third-party parser) hits the guard page and the
//! runtime aborts the process: the gateway sees the signal and fails that upload only.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use super::job::{self, Job};
use super::wire;

/// Exit code of a worker whose allocation failed at its memory limit.
pub const EXIT_MEMORY: i32 = 86;

static IN_WORKER: AtomicBool = AtomicBool::new(false);

/// The limits a worker runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub memory_mib: u64,
    pub cpu_secs: u64,
}

fn setrlimit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads the struct we pass and changes only this process.
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// CPU seconds this process has used (user + system).
fn cpu_used_secs() -> u64 {
    // SAFETY: getrusage fills the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0;
    }
    (u.ru_utime.tv_sec + u.ru_stime.tv_sec).max(0) as u64 + 1
}

impl Limits {
    fn apply(&self) -> io::Result<()> {
        let bytes = self.memory_mib.saturating_mul(1 << 20);
        setrlimit(libc::RLIMIT_DATA, bytes, bytes)?;
        setrlimit(libc::RLIMIT_CORE, 0, 0)?;
        setrlimit(libc::RLIMIT_FSIZE, 0, 0)?;
        Ok(())
    }

    fn arm_cpu(&self) -> io::Result<()> {
        let soft = cpu_used_secs().saturating_add(self.cpu_secs);
        setrlimit(libc::RLIMIT_CPU, soft, libc::RLIM_INFINITY)
    }
}

/// Called by the global allocator when an allocation fails: in a worker this is the
/// memory limit, reported by exit code; elsewhere the caller handles it as usual.
pub fn allocation_failed() {
    if IN_WORKER.load(Ordering::Relaxed) {
        const MSG: &[u8] = b"inspect worker: memory limit reached\n";
        // SAFETY: write(2) and _exit(2) are async-signal-safe and allocate nothing.
        unsafe {
            libc::write(2, MSG.as_ptr().cast(), MSG.len());
            libc::_exit(EXIT_MEMORY);
        }
    }
}

/// The worker's main loop.
pub fn serve(limits: Limits) -> io::Result<()> {
    limits.apply()?;
    IN_WORKER.store(true, Ordering::Relaxed);
    let mut input = io::stdin().lock();
    let mut output = io::stdout().lock();
    while let Some(frame) = wire::read_frame(&mut input)? {
        let job: Job = serde_json::from_slice(&frame).map_err(io::Error::other)?;
        limits.arm_cpu()?;
        let reply = job::run(&job);
        let body = serde_json::to_vec(&reply).map_err(io::Error::other)?;
        wire::write_frame(&mut output, &body)?;
    }
    Ok(())
}

/// A global allocator that reports failed allocations to [`allocation_failed`] first;
/// the binary installs it so a worker at its memory limit exits with [`EXIT_MEMORY`].
pub struct LimitAwareAlloc;

// SAFETY: every method forwards to the system allocator unchanged; the hook only runs
// when it returned null.
unsafe impl std::alloc::GlobalAlloc for LimitAwareAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = unsafe { std::alloc::System.alloc(layout) };
        if p.is_null() {
            allocation_failed();
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = unsafe { std::alloc::System.alloc_zeroed(layout) };
        if p.is_null() {
            allocation_failed();
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        let p = unsafe { std::alloc::System.realloc(ptr, layout, new) };
        if p.is_null() {
            allocation_failed();
        }
        p
    }
}
