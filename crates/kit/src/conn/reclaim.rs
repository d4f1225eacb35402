//! Gives back to the operating system the memory a flood of unfinished requests held, once the
//! flood is over. glibc's allocator keeps what is freed in its arenas for reuse and returns only
//! the free space at the top of each heap, so after thousands of connections each held a header
//! buffer the process kept most of that memory for good (2,500 of them: 25 MiB before, 67 MiB
//! half a minute after they closed). `malloc_trim(0)` hands the free pages back.
//!
//! A task checks once a second whether what opening connections are charged ([`super::opening`])
//! rose past [`FLOOD_BYTES`] since the last check and has since fallen to a quarter of that peak;
//! only then does it trim, on a blocking thread (a trim walks every arena). Ordinary traffic never
//! comes near the mark, so it never pays for a trim. Elsewhere than glibc, nothing is done.

use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A peak of opening connections' charge that counts as a flood.
const FLOOD_BYTES: usize = 8 << 20;

/// How often the charge is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The highest charge since the last check.
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Notes the charge now, for the peak.
pub(super) fn note(charged: usize) {
    PEAK.fetch_max(charged, Ordering::Relaxed);
}

/// Starts the check, once per process (needs a Tokio runtime).
pub(super) fn start() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        tokio::spawn(async {
            let mut flood = 0;
            loop {
                tokio::time::sleep(CHECK_EVERY).await;
                let now = super::opening::charged();
                flood = flood.max(PEAK.swap(now, Ordering::Relaxed));
                if flood >= FLOOD_BYTES && now <= flood / 4 {
                    flood = 0;
                    let _ = tokio::task::spawn_blocking(trim).await;
                }
            }
        });
    });
}

/// Returns the allocator's free pages to the operating system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(
    unsafe_code,
    reason = "glibc's malloc_trim exists only as a C function"
)]
fn trim() {
    // SAFETY: malloc_trim takes no pointers and only releases memory glibc holds free, under the
    // locks of its arenas; it touches nothing in use.
    let released = unsafe { nix::libc::malloc_trim(0) } == 1;
    tracing::debug!(
        released,
        "returned the memory of a flood of unfinished requests"
    );
}

/// Other allocators give large free blocks back themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
