//! Per-thread heap accounting: live bytes and their peak, so a target can
//! check that one input never allocates out of proportion to its size and
//! that nothing accumulates over a run. Each target runs on its own test
//! thread; frees on another thread would only lower that thread's count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Tracking;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn add(n: i64) {
    // try_with: the counters may be gone during thread teardown.
    let _ = LIVE.try_with(|l| {
        let v = l.get() + n;
        l.set(v);
        let _ = PEAK.try_with(|p| {
            if v > p.get() {
                p.set(v)
            }
        });
    });
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        add(l.size() as i64);
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        add(l.size() as i64);
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        add(n as i64 - l.size() as i64);
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        add(-(l.size() as i64));
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// Bytes allocated and not yet freed by this thread.
pub fn live() -> i64 {
    LIVE.with(|l| l.get())
}

/// Starts a new peak measurement from the current live bytes.
pub fn reset_peak() {
    let v = live();
    PEAK.with(|p| p.set(v));
}

/// Highest live bytes since the last [`reset_peak`].
pub fn peak() -> i64 {
    PEAK.with(|p| p.get())
}
