//! `sqlrun`: a tiny SQLite client for the version matrix. The same source is
//! built against several SQLite releases (one Cargo project per release,
//! see tests/versions/README.md), so a test can run one script on each.
//!
//! Usage: `sqlrun CMD...` — every argument is one command, run in order on
//! the current connection; each prints exactly one line:
//!   `ok ROWS`            rows joined by `;`, columns by `|` (NULL, integers,
//!                        reals, text, blobs as x'hex')
//!   `err CODE MESSAGE`   the extended result code and sqlite3_errmsg
//! Commands:
//!   `.open DB [VFS]`     sqlite3_open_v2(DB, READWRITE|CREATE|URI, VFS); the
//!                        new connection becomes current (earlier ones stay open)
//!   `.open-ro DB [VFS]`  the same, read-only
//!   `.use N`             make the N-th opened connection (from 0) current
//!   `.close`             close the current connection
//!   `.load SO`           enable extension loading and load SO into the
//!                        current connection (a :memory: one if none is open)
//!   `.fcntl SCHEMA OP N` sqlite3_file_control with an int64 argument N; OP is
//!                        a number or SIZE_HINT, CHUNK_SIZE, PERSIST_WAL,
//!                        POWERSAFE_OVERWRITE, OVERWRITE, SYNC, COMMIT_PHASETWO;
//!                        prints `ok RC N-after`
//!   `.busy MS`           sqlite3_busy_timeout
//!   `.version`           prints `ok 3.40.1`
//!   `.autocommit`        prints `ok 1` or `ok 0`
//!   anything else        SQL (any bytes): every statement of it, in order; the first
//!                        failing statement ends the command with `err`.
//! Never panics on SQLite's answers; exits 2 on a usage error only.

#![allow(clippy::missing_safety_doc)]

use libsqlite3_sys as ffi;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};
use std::ptr;

struct Runner {
    conns: Vec<*mut ffi::sqlite3>,
    cur: Option<usize>,
}

fn errline(db: *mut ffi::sqlite3, rc: c_int) -> String {
    if db.is_null() {
        return format!("err {rc} (no connection)");
    }
    // SAFETY: valid connection handle.
    let (code, msg) = unsafe {
        let m = ffi::sqlite3_errmsg(db);
        let msg = if m.is_null() {
            String::new()
        } else {
            CStr::from_ptr(m).to_string_lossy().into_owned()
        };
        (ffi::sqlite3_extended_errcode(db), msg)
    };
    let code = if code == 0 { rc } else { code };
    format!("err {code} {}", msg.replace('\n', " "))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Runner {
    fn db(&mut self) -> *mut ffi::sqlite3 {
        match self.cur {
            Some(i) => self.conns[i],
            None => {
                self.open(
                    b":memory:",
                    None,
                    ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE,
                );
                self.conns[self.cur.unwrap()]
            }
        }
    }

    fn open(&mut self, name: &[u8], vfs: Option<&[u8]>, flags: c_int) -> String {
        let n = CString::new(name).unwrap_or_default();
        let v = vfs.map(|v| CString::new(v).unwrap_or_default());
        let mut db: *mut ffi::sqlite3 = ptr::null_mut();
        // SAFETY: valid C strings; db receives a handle (possibly on error too).
        let rc = unsafe {
            ffi::sqlite3_open_v2(
                n.as_ptr(),
                &mut db,
                flags | ffi::SQLITE_OPEN_URI,
                v.as_ref().map_or(ptr::null(), |v| v.as_ptr()),
            )
        };
        if rc != ffi::SQLITE_OK {
            let line = errline(db, rc);
            // SAFETY: close whatever handle SQLite returned.
            unsafe { ffi::sqlite3_close(db) };
            return line;
        }
        // SAFETY: valid handle.
        unsafe { ffi::sqlite3_extended_result_codes(db, 1) };
        self.conns.push(db);
        self.cur = Some(self.conns.len() - 1);
        "ok ".into()
    }

    fn load(&mut self, so: &[u8]) -> String {
        let db = self.db();
        let p = CString::new(so).unwrap_or_default();
        let mut err: *mut c_char = ptr::null_mut();
        // SAFETY: valid handle and strings; err is freed with sqlite3_free.
        unsafe {
            ffi::sqlite3_enable_load_extension(db, 1);
            let rc = ffi::sqlite3_load_extension(db, p.as_ptr(), ptr::null(), &mut err);
            if rc != ffi::SQLITE_OK {
                let msg = if err.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(err).to_string_lossy().into_owned()
                };
                ffi::sqlite3_free(err as *mut c_void);
                return format!("err {rc} {}", msg.replace('\n', " "));
            }
        }
        "ok ".into()
    }

    fn fcntl(&mut self, schema: &[u8], op: &str, n: i64) -> String {
        let op = match op {
            "SIZE_HINT" => ffi::SQLITE_FCNTL_SIZE_HINT,
            "CHUNK_SIZE" => ffi::SQLITE_FCNTL_CHUNK_SIZE,
            "PERSIST_WAL" => ffi::SQLITE_FCNTL_PERSIST_WAL,
            "POWERSAFE_OVERWRITE" => ffi::SQLITE_FCNTL_POWERSAFE_OVERWRITE,
            "OVERWRITE" => ffi::SQLITE_FCNTL_OVERWRITE,
            "SYNC" => ffi::SQLITE_FCNTL_SYNC,
            "COMMIT_PHASETWO" => ffi::SQLITE_FCNTL_COMMIT_PHASETWO,
            other => match other.parse() {
                Ok(v) => v,
                Err(_) => return format!("err 1 unknown file control {other}"),
            },
        };
        let db = self.db();
        let s = CString::new(schema).unwrap_or_default();
        // Room for an int or an int64, whichever the control reads.
        let mut arg: i64 = n;
        // SAFETY: valid handle; `arg` outlives the call.
        let rc =
            unsafe { ffi::sqlite3_file_control(db, s.as_ptr(), op, &mut arg as *mut i64 as *mut c_void) };
        format!("ok {rc} {arg}")
    }

    fn sql(&mut self, sql: &[u8]) -> String {
        let db = self.db();
        let c = match CString::new(sql) {
            Ok(c) => c,
            Err(_) => return "err 1 SQL contains a NUL byte".into(),
        };
        let mut rows: Vec<String> = Vec::new();
        let mut tail: *const c_char = c.as_ptr();
        loop {
            // SAFETY: tail points into `c`, which is NUL-terminated.
            if unsafe { *tail } == 0 {
                break;
            }
            let mut st: *mut ffi::sqlite3_stmt = ptr::null_mut();
            let mut next: *const c_char = ptr::null();
            // SAFETY: valid handle; st/next are written by SQLite.
            let rc = unsafe { ffi::sqlite3_prepare_v2(db, tail, -1, &mut st, &mut next) };
            if rc != ffi::SQLITE_OK {
                return errline(db, rc);
            }
            tail = next;
            if st.is_null() {
                continue; // whitespace or a comment
            }
            loop {
                // SAFETY: valid statement.
                let rc = unsafe { ffi::sqlite3_step(st) };
                if rc == ffi::SQLITE_ROW {
                    rows.push(row(st));
                } else if rc == ffi::SQLITE_DONE {
                    break;
                } else {
                    let line = errline(db, rc);
                    // SAFETY: finalize once.
                    unsafe { ffi::sqlite3_finalize(st) };
                    return line;
                }
            }
            // SAFETY: finalize once.
            unsafe { ffi::sqlite3_finalize(st) };
        }
        format!("ok {}", rows.join(";"))
    }

    fn run(&mut self, cmd: &[u8]) -> String {
        if cmd.first() != Some(&b'.') {
            return self.sql(cmd);
        }
        // Dot-commands: words split on ASCII whitespace, kept as bytes (paths
        // and schema names need not be UTF-8).
        let words: Vec<&[u8]> = cmd
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .collect();
        let text = |w: &[u8]| String::from_utf8_lossy(w).into_owned();
        let rw = ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE;
        match (text(words[0]).as_str(), &words[1..]) {
            (".open", [db]) => self.open(db, None, rw),
            (".open", [db, vfs]) => self.open(db, Some(vfs), rw),
            (".open-ro", [db]) => self.open(db, None, ffi::SQLITE_OPEN_READONLY),
            (".open-ro", [db, vfs]) => self.open(db, Some(vfs), ffi::SQLITE_OPEN_READONLY),
            (".use", [n]) => match text(n).parse::<usize>() {
                Ok(i) if i < self.conns.len() && !self.conns[i].is_null() => {
                    self.cur = Some(i);
                    "ok ".into()
                }
                _ => format!("err 1 no connection {}", text(n)),
            },
            (".close", []) => match self.cur.take() {
                Some(i) => {
                    // SAFETY: closing a handle we opened; it is nulled below.
                    let rc = unsafe { ffi::sqlite3_close(self.conns[i]) };
                    self.conns[i] = ptr::null_mut();
                    format!("ok {rc}")
                }
                None => "err 1 no connection".into(),
            },
            (".load", [so]) => self.load(so),
            (".fcntl", [schema, op, n]) => match text(n).parse() {
                Ok(n) => self.fcntl(schema, &text(op), n),
                Err(_) => format!("err 1 bad number {}", text(n)),
            },
            (".busy", [ms]) => {
                let db = self.db();
                // SAFETY: valid handle.
                let rc = unsafe { ffi::sqlite3_busy_timeout(db, text(ms).parse().unwrap_or(0)) };
                format!("ok {rc}")
            }
            (".version", []) => {
                // SAFETY: static string.
                let v = unsafe { CStr::from_ptr(ffi::sqlite3_libversion()) };
                format!("ok {}", v.to_string_lossy())
            }
            (".autocommit", []) => {
                let db = self.db();
                // SAFETY: valid handle.
                format!("ok {}", unsafe { ffi::sqlite3_get_autocommit(db) })
            }
            (w, _) => format!("err 1 unknown command or arguments {w}"),
        }
    }
}

fn row(st: *mut ffi::sqlite3_stmt) -> String {
    // SAFETY: `st` has a current row; column accessors stay in range.
    unsafe {
        let n = ffi::sqlite3_column_count(st);
        (0..n)
            .map(|i| match ffi::sqlite3_column_type(st, i) {
                ffi::SQLITE_NULL => "NULL".to_string(),
                ffi::SQLITE_INTEGER => ffi::sqlite3_column_int64(st, i).to_string(),
                ffi::SQLITE_FLOAT => ffi::sqlite3_column_double(st, i).to_string(),
                ffi::SQLITE_BLOB => {
                    let p = ffi::sqlite3_column_blob(st, i) as *const u8;
                    let len = ffi::sqlite3_column_bytes(st, i) as usize;
                    let b = if p.is_null() {
                        &[][..]
                    } else {
                        std::slice::from_raw_parts(p, len)
                    };
                    format!("x'{}'", hex(b))
                }
                _ => {
                    let p = ffi::sqlite3_column_text(st, i);
                    let len = ffi::sqlite3_column_bytes(st, i) as usize;
                    if p.is_null() {
                        String::new()
                    } else {
                        String::from_utf8_lossy(std::slice::from_raw_parts(p, len)).replace('\n', "\\n")
                    }
                }
            })
            .collect::<Vec<_>>()
            .join("|")
    }
}

fn main() {
    use std::os::unix::ffi::OsStrExt;
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.is_empty() || args[0] == "--help" {
        eprintln!("usage: sqlrun CMD... (see the source header)");
        std::process::exit(2);
    }
    let mut r = Runner {
        conns: Vec::new(),
        cur: None,
    };
    for a in &args {
        println!("{}", r.run(a.as_bytes()));
    }
}
