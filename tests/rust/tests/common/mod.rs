//! Shared helpers: load the real built extension into rusqlite's bundled
//! SQLite, and make temporary "mounts" whose role we flip by hand.
#![allow(dead_code)]

use rusqlite::{Connection, ErrorCode};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

/// The built extension (`make` builds it; LITEFS_GUARD_SO overrides).
pub fn so_path() -> PathBuf {
    if let Some(p) = std::env::var_os("LITEFS_GUARD_SO") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/liblitefs_guard.so");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --release` in the repository root first",
        p.display()
    );
    p
}

static LOAD: Once = Once::new();

/// Loads the extension once for this process, on a throwaway connection, so
/// every connection opened afterwards is guarded (auto-extension + VFS).
pub fn load_guard() {
    LOAD.call_once(|| {
        let c = Connection::open_in_memory().unwrap();
        // SAFETY: loading our own extension, built from this repository.
        unsafe {
            c.load_extension_enable().unwrap();
            c.load_extension(so_path(), None::<&str>).unwrap();
            c.load_extension_disable().unwrap();
        }
    });
}

/// A temporary directory standing in for a LiteFS mount.
pub struct Mount {
    pub dir: PathBuf,
}

impl Mount {
    pub fn new(tag: &str) -> Mount {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "lfg-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Mount { dir }
    }
    pub fn db(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    /// Makes this node a replica of `host` (LiteFS writes `.primary` on replicas).
    pub fn make_replica(&self, host: &str) {
        std::fs::write(self.dir.join(".primary"), format!("{host}\n")).unwrap();
    }
    pub fn make_primary(&self) {
        let _ = std::fs::remove_file(self.dir.join(".primary"));
    }
    /// Opens a guarded connection (extension loaded first).
    pub fn open(&self, name: &str) -> Connection {
        load_guard();
        let c = Connection::open(self.db(name)).unwrap();
        c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        c
    }
    /// Runs SQL on stock SQLite in a process that never loaded the guard
    /// (fixtures the guard would refuse to make, such as a rollback-journal
    /// database). Statements are split at `;`. Panics on any error.
    pub fn stock_exec(&self, name: &str, sql: &str) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_guard-sql"))
            .args(["-", self.db(name).to_str().unwrap()])
            .args(sql.split(';').map(str::trim).filter(|s| !s.is_empty()))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.lines().all(|l| l.starts_with("ok")),
            "{sql}: {text}"
        );
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The primary SQLite error code of a rusqlite error.
pub fn code(e: &rusqlite::Error) -> Option<ErrorCode> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
        _ => None,
    }
}

/// Whether `e` is the guard's refusal (SQLITE_AUTH at prepare, SQLITE_READONLY at the lock).
pub fn is_refusal(e: &rusqlite::Error) -> bool {
    matches!(
        code(e),
        Some(ErrorCode::AuthorizationForStatementDenied) | Some(ErrorCode::ReadOnly)
    )
}

pub fn count(c: &Connection, table: &str) -> i64 {
    c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// Bytes of the database and its WAL, to prove nothing was written.
pub fn file_bytes(db: &Path) -> Vec<u8> {
    let mut out = std::fs::read(db).unwrap_or_default();
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    out.extend(std::fs::read(PathBuf::from(wal)).unwrap_or_default());
    out
}

/// One read-modify-write transaction opened with plain BEGIN.
pub fn rmw(c: &Connection) -> rusqlite::Result<()> {
    c.execute_batch("BEGIN")?;
    let v: i64 = c.query_row("SELECT v FROM counter WHERE id = 1", [], |r| r.get(0))?;
    c.execute("UPDATE counter SET v = ?1 WHERE id = 1", [v + 1])?;
    c.execute_batch("COMMIT")
}

/// `threads` × `txns` [`rmw`] transactions on `app.db` (guarded, or stock
/// SQLite in a process that never loaded the guard); returns (failed
/// transactions, final counter).
pub fn run_rmw_threads(m: &Mount, stock: bool, threads: usize, txns: usize, pragmas: &str) -> (usize, i64) {
    if stock {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_guard-worker"))
            .args([m.db("app.db").to_str().unwrap(), &txns.to_string(), "stock"])
            .env("GUARD_WORKER_THREADS", threads.to_string())
            .env(
                "GUARD_WORKER_PRAGMAS",
                if pragmas.is_empty() { "SELECT 1" } else { pragmas },
            )
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let s = String::from_utf8(out.stdout).unwrap();
        let err: usize = s.trim().rsplit('=').next().unwrap().parse().unwrap();
        let v = m
            .open("app.db")
            .query_row("SELECT v FROM counter", [], |r| r.get(0))
            .unwrap();
        return (err, v);
    }
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let c = m.open("app.db");
            c.execute_batch(pragmas).unwrap();
            std::thread::spawn(move || {
                let mut errors = 0;
                for _ in 0..txns {
                    if let Err(e) = rmw(&c) {
                        eprintln!("guarded transaction failed: {e:?}");
                        errors += 1;
                        let _ = c.execute_batch("ROLLBACK");
                    }
                }
                errors
            })
        })
        .collect();
    let errors = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let v = m
        .open("app.db")
        .query_row("SELECT v FROM counter", [], |r| r.get(0))
        .unwrap();
    (errors, v)
}
