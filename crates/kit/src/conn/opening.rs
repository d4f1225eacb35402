//! Connections still *opening* — an HTTP/1.1 connection until its request's headers are in (and
//! again while it idles between requests), an HTTP/2 one until its preface, a TLS one until its
//! handshake — are the ones a client can hold without the server having anything to show for
//! them. This module keeps them in the order they started opening, so that:
//! - at the connection cap, the oldest opening connection is evicted to make room for a new one
//!   (the ones serving requests are never touched);
//! - the header bytes they hold are bounded for the whole process ([`BUDGET_BYTES`]): each is
//!   charged what it has sent while opening plus a fixed cost for its buffers, and when the
//!   process is over budget the oldest are evicted until it is not.
//!
//! An evicted connection's next read fails, which closes it; its task is woken to see that.
//!
//! The budget is a process-wide count, not a per-listener one, because memory is the process's:
//! thousands of unfinished headers spread over several ports exhaust it just the same.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use atomic_waker::AtomicWaker;

/// The most that opening connections may be charged, in bytes, across the process: unfinished
/// headers, and [`BASE_BYTES`] for each. Beyond it the oldest are evicted. At 32 MiB, about two
/// thousand idle connections, or five hundred each holding a 64 KiB header, fit before any is
/// evicted; what the allocator holds for them stays well inside a 256 MiB container.
pub const BUDGET_BYTES: usize = 32 << 20;

/// What an opening connection is charged before it sends a byte: the read and write buffers, the
/// connection's state and its task, which a connection that has sent nothing holds already.
pub const BASE_BYTES: usize = 16 << 10;

/// The charges of all opening connections of the process.
static CHARGED: AtomicUsize = AtomicUsize::new(0);

/// The bytes opening connections are charged now, across the process.
pub fn charged() -> usize {
    CHARGED.load(Ordering::Relaxed)
}

/// The connections of one listener: how many are open, and the opening ones, oldest first.
#[derive(Debug, Default)]
pub(super) struct Registry {
    opening: Mutex<BTreeMap<u64, Arc<State>>>,
    next: AtomicU64,
    open: AtomicUsize,
}

/// One connection's part in its listener's registry.
#[derive(Debug, Default)]
pub(super) struct State {
    /// Its place in the registry while opening; 0 while serving (or closed).
    place: AtomicU64,
    /// What it is charged while opening.
    charged: AtomicUsize,
    /// Set when it is evicted; its next read fails.
    evicted: AtomicBool,
    /// Set when it has closed: it never opens again.
    closed: AtomicBool,
    /// Set when the request head just read was framed two ways ([`super::framing`]).
    ambiguous: AtomicBool,
    /// The task reading it, woken on eviction.
    pub(super) waker: AtomicWaker,
}

impl State {
    /// Whether the connection was evicted.
    pub(super) fn evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// Whether the connection is opening.
    pub(super) fn is_opening(&self) -> bool {
        self.place() != 0
    }

    /// Its place among the opening connections; 0 when it is not opening. A new place each time it
    /// starts opening again.
    pub(super) fn place(&self) -> u64 {
        self.place.load(Ordering::Relaxed)
    }

    /// Marks the request head just read as framed two ways.
    pub(super) fn mark_ambiguous(&self) {
        self.ambiguous.store(true, Ordering::Relaxed);
    }

    /// Takes that mark.
    pub(super) fn take_ambiguous(&self) -> bool {
        self.ambiguous.swap(false, Ordering::Relaxed)
    }
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<State>>> {
        self.opening.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts `state` among the opening connections, as the newest, charged its base cost.
    /// Returns how many connections were evicted to keep the process within budget.
    pub(super) fn open(&self, state: &Arc<State>) -> usize {
        let mut opening = self.lock();
        if state.closed.load(Ordering::Relaxed) || state.place.load(Ordering::Relaxed) != 0 {
            return 0;
        }
        let place = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        state.place.store(place, Ordering::Relaxed);
        opening.insert(place, state.clone());
        charge(state, BASE_BYTES);
        evict_over_budget(&mut opening)
    }

    /// Charges the opening connection `state` for `bytes` more of its headers; returns how many
    /// connections were evicted to keep the process within budget (it may be one of them).
    pub(super) fn charge(&self, state: &Arc<State>, bytes: usize) -> usize {
        let mut opening = self.lock();
        if state.place.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        charge(state, bytes);
        evict_over_budget(&mut opening)
    }

    /// Takes `state` out of the opening connections (it is serving now), releasing its charge.
    pub(super) fn served(&self, state: &State) {
        let mut opening = self.lock();
        leave(&mut opening, state);
    }

    /// Counts a connection accepted (before it is [`Registry::open`]ed).
    pub(super) fn accepted(&self) {
        self.open.fetch_add(1, Ordering::Relaxed);
    }

    /// How many connections are open, opening or serving.
    pub(super) fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Takes `state` out for good: the connection has closed.
    pub(super) fn closed(&self, state: &State) {
        let mut opening = self.lock();
        state.closed.store(true, Ordering::Relaxed);
        leave(&mut opening, state);
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Evicts the oldest opening connection, if there is one; returns whether there was.
    pub(super) fn evict_oldest(&self) -> bool {
        let mut opening = self.lock();
        evict_first(&mut opening)
    }
}

fn charge(state: &State, bytes: usize) {
    state.charged.fetch_add(bytes, Ordering::Relaxed);
    let charged = CHARGED.fetch_add(bytes, Ordering::Relaxed) + bytes;
    super::reclaim::note(charged);
}

/// Removes `state` from `opening` and releases its charge (under the registry's lock, so that a
/// charge is never added after it was released).
fn leave(opening: &mut BTreeMap<u64, Arc<State>>, state: &State) {
    let place = state.place.swap(0, Ordering::Relaxed);
    if place != 0 {
        opening.remove(&place);
    }
    CHARGED.fetch_sub(state.charged.swap(0, Ordering::Relaxed), Ordering::Relaxed);
}

fn evict_first(opening: &mut BTreeMap<u64, Arc<State>>) -> bool {
    let Some((_, oldest)) = opening.pop_first() else {
        return false;
    };
    oldest.place.store(0, Ordering::Relaxed);
    CHARGED.fetch_sub(oldest.charged.swap(0, Ordering::Relaxed), Ordering::Relaxed);
    oldest.evicted.store(true, Ordering::Release);
    oldest.waker.wake();
    true
}

/// Evicts this listener's oldest opening connections while the process is over budget.
fn evict_over_budget(opening: &mut BTreeMap<u64, Arc<State>>) -> usize {
    let mut evicted = 0;
    while CHARGED.load(Ordering::Relaxed) > BUDGET_BYTES && evict_first(opening) {
        evicted += 1;
    }
    evicted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_opening_connection_is_evicted_first_and_serving_ones_never() {
        let registry = Registry::default();
        let [first, second, third] = [(); 3].map(|()| Arc::new(State::default()));
        for state in [&first, &second, &third] {
            registry.accepted();
            registry.open(state);
        }
        registry.served(&first);
        assert!(registry.evict_oldest());
        assert!(!first.evicted(), "a serving connection is never evicted");
        assert!(second.evicted());
        assert!(!third.evicted());
        // Idle again, the first is now the newest.
        registry.open(&first);
        assert!(registry.evict_oldest());
        assert!(third.evicted());
        registry.closed(&first);
        assert_eq!(registry.open_connections(), 2);
        assert!(!registry.evict_oldest(), "nothing left opening");
        registry.open(&first);
        assert!(!first.is_opening(), "a closed connection never opens again");
    }
}
