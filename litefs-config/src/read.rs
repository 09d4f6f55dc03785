//! Reading a config file safely: never block on a FIFO, never read more than
//! the size cap, and turn each way a path can be wrong into its own error.

use super::error::{ConfigError, MAX_CONFIG_BYTES};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The file's bytes, at most `MAX_CONFIG_BYTES`.
pub(crate) fn read_capped(path: &Path) -> Result<Vec<u8>, ConfigError> {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
    // writer. It has no effect on the regular files we go on to read.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| open_error(path, e))?;
    // fstat the descriptor we read from, not the path: no swap in between.
    let meta = file.metadata().map_err(|e| io_error(path, e))?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let kind = if ft.is_dir() {
            "directory"
        } else if ft.is_fifo() {
            "named pipe"
        } else if ft.is_socket() {
            "socket"
        } else if ft.is_char_device() || ft.is_block_device() {
            "device"
        } else {
            "special file"
        };
        return Err(ConfigError::NotAFile {
            path: path.to_owned(),
            kind,
        });
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge {
            path: path.to_owned(),
            size: meta.len(),
        });
    }
    read_at_most(file, path)
}

/// Reads one byte past the cap so a file that grew after fstat is still
/// caught, without ever holding more than cap + 1 bytes.
fn read_at_most(file: File, path: &Path) -> Result<Vec<u8>, ConfigError> {
    let mut buf = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io_error(path, e))?;
    if buf.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge {
            path: path.to_owned(),
            size: MAX_CONFIG_BYTES + 1,
        });
    }
    Ok(buf)
}

fn open_error(path: &Path, e: io::Error) -> ConfigError {
    match e.raw_os_error() {
        Some(libc::ELOOP) => ConfigError::SymlinkLoop {
            path: path.to_owned(),
        },
        _ if e.kind() == io::ErrorKind::NotFound => ConfigError::NotFound {
            path: path.to_owned(),
        },
        _ => io_error(path, e),
    }
}

fn io_error(path: &Path, source: io::Error) -> ConfigError {
    ConfigError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap_or_else(|e| panic!("cannot make a temporary directory: {e}"))
    }

    fn err(path: &Path) -> String {
        match read_capped(path) {
            Ok(b) => format!("read {} bytes", b.len()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn refuses_a_file_over_one_mib_before_reading() {
        let t = tempdir();
        let p = t.path().join("litefs.yml");
        let f = File::create(&p).map_err(|e| e.to_string());
        // Sparse: 2 GiB that were never written, so reading it would be slow.
        assert_eq!(
            f.and_then(|f| f.set_len(2 << 30).map_err(|e| e.to_string())),
            Ok(())
        );
        assert_eq!(
            err(&p),
            format!("cannot read {}: 2147483648 bytes is over the 1048576-byte limit for litefs.yml; is this the right file?", p.display())
        );
    }

    #[test]
    fn accepts_exactly_one_mib() {
        let t = tempdir();
        let p = t.path().join("litefs.yml");
        assert!(std::fs::write(&p, vec![b'#'; MAX_CONFIG_BYTES as usize]).is_ok());
        assert_eq!(err(&p), "read 1048576 bytes");
    }

    #[test]
    fn read_cap_catches_growth_after_stat() {
        let t = tempdir();
        let p = t.path().join("litefs.yml");
        assert!(std::fs::write(&p, vec![b'#'; MAX_CONFIG_BYTES as usize + 10]).is_ok());
        let got = File::open(&p)
            .map_err(|e| e.to_string())
            .and_then(|f| read_at_most(f, &p).map_err(|e| e.to_string()));
        assert_eq!(
            got,
            Err(format!("cannot read {}: 1048577 bytes is over the 1048576-byte limit for litefs.yml; is this the right file?", p.display()))
        );
    }

    #[test]
    fn refuses_a_directory() {
        let t = tempdir();
        let p = t.path().join("litefs.yml");
        assert!(std::fs::create_dir(&p).is_ok());
        assert_eq!(
            err(&p),
            format!("cannot read {}: it is a directory, not a regular file; point LITEFS_GUARD_CONFIG at the litefs.yml file itself", p.display())
        );
    }

    #[test]
    fn refuses_a_symlink_loop() {
        let t = tempdir();
        let a = t.path().join("a.yml");
        let b = t.path().join("b.yml");
        assert!(std::os::unix::fs::symlink(&b, &a).is_ok());
        assert!(std::os::unix::fs::symlink(&a, &b).is_ok());
        assert_eq!(
            err(&a),
            format!(
                "cannot read {}: too many levels of symbolic links (a link loop); repair or remove the link",
                a.display()
            )
        );
    }

    #[test]
    fn refuses_a_fifo_without_blocking() {
        let t = tempdir();
        let p = t.path().join("litefs.yml");
        let c = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str())).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        assert_eq!(
            err(&p),
            format!("cannot read {}: it is a named pipe, not a regular file; point LITEFS_GUARD_CONFIG at the litefs.yml file itself", p.display())
        );
    }

    #[test]
    fn reports_a_missing_file() {
        let t = tempdir();
        let p = t.path().join("nope.yml");
        assert_eq!(
            err(&p),
            format!("cannot read {}: no such file; check the path (LITEFS_GUARD_CONFIG) or unset LITEFS_GUARD_CONFIG to search ./litefs.yml, $HOME/litefs.yml, /etc/litefs.yml", p.display())
        );
    }
}
