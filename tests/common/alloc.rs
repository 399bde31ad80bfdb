//! The counting global allocator of every test (and bench) that checks heap
//! use: per thread, the number of allocations (the zero-allocation checks)
//! and the live bytes with their peak (the fuzz targets: heap per input in
//! proportion to its size, no growth over a run). Thread-local cells, no
//! atomics: each test measures its own thread, and frees on another thread
//! only lower that thread's count.
//!
//! A test crate installs it with
//! `#[global_allocator] static GLOBAL: common::alloc::Counting = common::alloc::Counting;`
//! (benches include this file by `#[path]`).
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

pub struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

/// One allocation (or reallocation) changing live bytes by `bytes`.
fn count(bytes: i64) {
    // try_with: the cells may be gone during thread teardown.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
    grow(bytes);
}

fn grow(bytes: i64) {
    let _ = LIVE.try_with(|l| {
        let v = l.get() + bytes;
        l.set(v);
        let _ = PEAK.try_with(|p| {
            if v > p.get() {
                p.set(v)
            }
        });
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(l.size() as i64);
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        count(l.size() as i64);
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count(n as i64 - l.size() as i64);
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        grow(-(l.size() as i64));
        unsafe { System.dealloc(p, l) }
    }
}

/// Allocations (and reallocations) made so far by this thread.
pub fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

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
