//! Reads LiteFS's small per-node and per-database files, `NAME-pos` and
//! `.lag`, through the same system calls as the `.primary` lookup in
//! `role` (non-blocking open, regular files only, a fixed-size buffer), and
//! hands the text to `position` to parse.

use crate::location::Located;
use crate::position::{self, Lag, Position};
use crate::role::{file_type_name, MarkerIo, SysMarker};
use std::ffi::CString;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How many `NAME-pos` and `.lag` reads this process made (any caller):
/// what `litefs_guard_stats()` reports, so tests can prove a path made none.
static POSITION_READS: AtomicU64 = AtomicU64::new(0);
static LAG_READS: AtomicU64 = AtomicU64::new(0);

/// (`NAME-pos` reads, `.lag` reads) so far in this process.
pub fn reads() -> (u64, u64) {
    (
        POSITION_READS.load(Ordering::Relaxed),
        LAG_READS.load(Ordering::Relaxed),
    )
}

/// `NAME-pos` is 34 bytes; `.lag` 11. Anything much longer is not LiteFS's.
const MAX_LEN: usize = 64;

/// Why a file could not be read or understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub path: PathBuf,
    pub why: String,
}

/// `NAME-pos` of a guarded database (NAME: the file's name at the mount root).
pub fn pos_path(l: &Located) -> PathBuf {
    let mut name = l.db.file_name().unwrap_or_default().to_os_string();
    name.push("-pos");
    l.mount.join(name)
}

/// The database's replication position, read now.
pub fn position(l: &Located) -> Result<Position, Unreadable> {
    position_at(&pos_path(l))
}

/// The position in the `NAME-pos` file at `path`, read now.
pub fn position_at(path: &Path) -> Result<Position, Unreadable> {
    POSITION_READS.fetch_add(1, Ordering::Relaxed);
    let path = path.to_path_buf();
    let content = read_small(&path)?;
    Position::parse_file(&content).ok_or_else(|| Unreadable {
        why: format!(
            "it holds {}, not a LiteFS position (TXID/CHECKSUM, 16 hex digits each)",
            shown(&content)
        ),
        path,
    })
}

/// The node's replication lag, read now from `.lag` at the mount root.
pub fn lag(mount: &Path) -> Result<Lag, Unreadable> {
    lag_at(&mount.join(".lag"))
}

/// The lag in the `.lag` file at `path`, read now.
pub fn lag_at(path: &Path) -> Result<Lag, Unreadable> {
    LAG_READS.fetch_add(1, Ordering::Relaxed);
    let path = path.to_path_buf();
    let content = read_small(&path)?;
    position::parse_lag(&content).ok_or_else(|| Unreadable {
        why: format!(
            "it holds {}, not a LiteFS lag (milliseconds as %+010d)",
            shown(&content)
        ),
        path,
    })
}

fn shown(content: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(content))
}

/// At most [`MAX_LEN`] bytes of the regular file at `path`.
fn read_small(path: &Path) -> Result<Vec<u8>, Unreadable> {
    read_with(&mut SysMarker, path)
}

fn read_with<I: MarkerIo>(io: &mut I, path: &Path) -> Result<Vec<u8>, Unreadable> {
    let fail = |why: String| Unreadable {
        path: path.to_path_buf(),
        why,
    };
    let io_fail = |e: std::io::Error| {
        fail(match e.kind() {
            ErrorKind::NotFound => "it does not exist".to_string(),
            _ => e.to_string(),
        })
    };
    let c =
        CString::new(path.as_os_str().as_bytes()).map_err(|_| fail("the path holds a NUL byte".into()))?;
    let file = io.open(&c).map_err(io_fail)?;
    match io.file_type(&file).map_err(io_fail)? {
        libc::S_IFREG => {}
        kind => return Err(fail(format!("it is {}, not LiteFS's file", file_type_name(kind)))),
    }
    // One byte more than allowed, to tell "exactly full" from "too long".
    let mut buf = [0u8; MAX_LEN + 1];
    let mut len = 0;
    while len < buf.len() {
        match io.read(&file, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n.min(buf.len() - len),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_fail(e)),
        }
    }
    if len > MAX_LEN {
        return Err(fail(format!(
            "it holds more than {MAX_LEN} bytes, not LiteFS's file"
        )));
    }
    Ok(buf[..len].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn located(mount: &Path) -> Located {
        Located {
            mount: mount.to_path_buf(),
            db: mount.join("app.db"),
        }
    }

    #[test]
    fn reads_what_litefs_writes() {
        let d = tempfile::tempdir().unwrap();
        let l = located(d.path());
        assert_eq!(pos_path(&l), d.path().join("app.db-pos"));
        std::fs::write(d.path().join("app.db-pos"), "0000000000000027/83b05248774ce767\n").unwrap();
        std::fs::write(d.path().join(".lag"), "+000000830\n").unwrap();
        assert_eq!(position(&l).unwrap().txid, 0x27);
        assert_eq!(lag(d.path()), Ok(Lag::Millis(830)));
    }

    #[test]
    fn missing_odd_and_long_files_are_named_errors() {
        let d = tempfile::tempdir().unwrap();
        let l = located(d.path());
        let e = position(&l).unwrap_err();
        assert_eq!(e.path, d.path().join("app.db-pos"));
        assert_eq!(e.why, "it does not exist");
        std::fs::create_dir(d.path().join(".lag")).unwrap();
        assert_eq!(
            lag(d.path()).unwrap_err().why,
            "it is a directory, not LiteFS's file"
        );
        std::fs::write(d.path().join("app.db-pos"), "x".repeat(65)).unwrap();
        assert!(position(&l).unwrap_err().why.contains("more than 64 bytes"));
        std::fs::write(d.path().join("app.db-pos"), "27/1\n").unwrap();
        let e = position(&l).unwrap_err();
        assert!(e.why.contains("\"27/1\\n\", not a LiteFS position"), "{}", e.why);
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let fifo = CString::new(d.path().join(".lag").as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert_eq!(lag(d.path()).unwrap_err().why, "it is a FIFO, not LiteFS's file");
    }
}
