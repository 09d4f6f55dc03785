//! The event log: one line per accepted/refused write or lease change.
//!
//! Line format: `SECONDS.NANOS key=value ...` where the timestamp is
//! CLOCK_MONOTONIC, so a test process can compare it with its own clock.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// CLOCK_MONOTONIC now; shared by every process on the machine.
pub fn monotonic_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes into the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Formats a monotonic instant the way the log writes it.
pub fn format_ts(t: Duration) -> String {
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

/// Append-only log file; a no-op when no file was given.
#[derive(Debug)]
pub struct EventLog {
    file: Mutex<Option<File>>,
}

impl EventLog {
    pub fn open(path: Option<&Path>) -> io::Result<EventLog> {
        let file = match path {
            Some(p) => Some(OpenOptions::new().create(true).append(true).open(p)?),
            None => None,
        };
        Ok(EventLog {
            file: Mutex::new(file),
        })
    }

    /// Writes one event; values must not contain spaces or newlines
    /// (callers pass names the filesystem already validated).
    pub fn event(&self, fields: &[(&str, &dyn std::fmt::Display)]) {
        let mut line = format_ts(monotonic_now());
        for (k, v) in fields {
            let _ = write!(line, " {k}={v}");
        }
        line.push('\n');
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = guard.as_mut() {
            // One write(2) per line keeps lines whole for concurrent readers.
            let _ = f.write_all(line.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_is_monotonic() {
        let a = monotonic_now();
        let b = monotonic_now();
        assert!(b >= a);
        assert_eq!(format_ts(Duration::new(3, 5)), "3.000000005");
    }
}
