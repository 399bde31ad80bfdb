//! A read-only window of a spill segment mapped into memory: entries are
//! handed out straight from the page cache, without the `pread` copy into
//! a buffer first (under backpressure every record is read back once).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

const PAGE: u64 = 4096;

/// `len` bytes of a file from offset `off` (page-aligned), mapped shared
/// and read-only, populated up front.
pub struct Window {
    ptr: *mut libc::c_void,
    len: usize,
    off: u64,
    /// File offset up to which the file was last seen to hold bytes: only
    /// those are handed out (a page past the file's end faults, SIGBUS).
    valid: u64,
}

impl Window {
    /// Maps at least `[at, at + len)` of `file`, reading ahead to `ahead`
    /// bytes; `file_len`: the file's length now.
    pub fn map(
        file: &File,
        at: u64,
        len: usize,
        ahead: usize,
        file_len: u64,
    ) -> io::Result<Window> {
        let off = at - at % PAGE;
        let want = ((at - off) as usize + len).max(ahead);
        let size = want.div_ceil(PAGE as usize) * PAGE as usize;
        // SAFETY: a fresh mapping of an open file; nothing aliases it. Only
        // bytes below the file's length as last seen are read (`get`), and
        // the spill only appends to a segment while it is mapped (segments
        // are truncated at open only, before any reader).
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                file.as_raw_fd(),
                off as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Window {
            ptr,
            len: size,
            off,
            valid: file_len,
        })
    }

    /// Whether `[at, at + len)` lies in the mapping (whatever the file holds).
    pub fn covers(&self, at: u64, len: usize) -> bool {
        at >= self.off && (at - self.off) as usize + len <= self.len
    }

    /// The file grew (appended since it was mapped) to `file_len`.
    pub fn grew(&mut self, file_len: u64) {
        self.valid = self.valid.max(file_len);
    }

    /// The `len` bytes at file offset `at`, when the window holds them and
    /// the file was last seen to.
    pub fn get(&self, at: u64, len: usize) -> Option<&[u8]> {
        if !self.covers(at, len) || at + len as u64 > self.valid {
            return None;
        }
        let from = (at - self.off) as usize;
        // SAFETY: within the mapping, which lives as long as `self`.
        Some(unsafe { std::slice::from_raw_parts((self.ptr as *const u8).add(from), len) })
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}
