//! The base file as the policy sees it: [`RawBase`] is the base VFS's
//! `sqlite3_file` with its own method table, behind the safe [`BaseFile`]
//! trait. A missing method answers SQLITE_IOERR, as a forwarder would.

use super::seams::BaseFile;
use libsqlite3_sys as ffi;
use std::ffi::{c_int, c_void};

/// The file the base methods take, and those methods.
pub(super) struct RawBase<'a> {
    pub file: *mut ffi::sqlite3_file,
    pub methods: &'a ffi::sqlite3_io_methods,
}

/// Calls a base method on the base file; SQLITE_IOERR when it has none.
macro_rules! forward {
    ($base:expr, $m:ident ( $($arg:expr),* )) => {{
        match $base.methods.$m {
            // SAFETY: the base file's own method, on the base file (open while
            // its wrapper is: see `layout::parts`), with SQLite's arguments or
            // buffers this layer owns for the call.
            Some(m) => unsafe { m($base.file, $($arg),*) },
            None => ffi::SQLITE_IOERR,
        }
    }};
}
pub(super) use forward;

impl BaseFile for RawBase<'_> {
    fn lock(&mut self, level: c_int) -> c_int {
        forward!(self, xLock(level))
    }
    fn unlock(&mut self, level: c_int) -> c_int {
        forward!(self, xUnlock(level))
    }
    fn read(&mut self, buf: &mut [u8], off: i64) -> c_int {
        forward!(
            self,
            xRead(buf.as_mut_ptr() as *mut c_void, buf.len() as c_int, off)
        )
    }
    fn write(&mut self, buf: &[u8], off: i64) -> c_int {
        forward!(
            self,
            xWrite(buf.as_ptr() as *const c_void, buf.len() as c_int, off)
        )
    }
    fn truncate(&mut self, size: i64) -> c_int {
        forward!(self, xTruncate(size))
    }
    fn sync(&mut self, flags: c_int) -> c_int {
        forward!(self, xSync(flags))
    }
    fn shm_lock(&mut self, offset: c_int, n: c_int, flags: c_int) -> c_int {
        forward!(self, xShmLock(offset, n, flags))
    }
    fn shm_barrier(&mut self) {
        if let Some(m) = self.methods.xShmBarrier {
            // SAFETY: the base file's own method, on the base file.
            unsafe { m(self.file) }
        }
    }
    fn shm_unmap(&mut self, delete: c_int) -> c_int {
        forward!(self, xShmUnmap(delete))
    }
}
