//! Test-side handle on a running `litefs-sim` process.
//!
//! ```no_run
//! use litefs_sim::harness::Sim;
//! let sim = Sim::start(&["n1", "n2"]).unwrap(); // n1 holds the lease
//! let db = sim.path("n2", "app.db");            // /tmp/litefs-sim-…/n2/app.db
//! sim.set_lease(Some("n2")).unwrap();
//! sim.set_lease(None).unwrap();                  // nobody can write
//! let stats = sim.stats().unwrap();
//! assert_eq!(stats.node("n1").refused, 0);
//! let events = sim.log().unwrap();
//! drop(sim);                                     // quits, unmounts, removes the temp dir
//! ```
//!
//! The daemon runs as a child process with `--exit-on-stdin-eof`, so even a
//! test process killed outright leaves no mount behind; `Drop` also falls
//! back to a lazy unmount (`umount -l`) if the daemon did not clean up.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::mounts;

/// How to start a sim.
#[derive(Clone, Debug)]
pub struct SimOptions {
    pub nodes: Vec<String>,
    /// Initial lease holder; `None` means nobody. Default: the first node.
    pub lease: Option<String>,
    /// The `litefs-sim` binary; default `$LITEFS_SIM_BIN` or next to the test binary.
    pub bin: Option<PathBuf>,
    /// FUSE worker threads per mount.
    pub threads: usize,
    /// `--halt-expiry-ms`; `None`: the sim's default (LiteFS's 30 s).
    pub halt_expiry_ms: Option<u64>,
}

impl SimOptions {
    pub fn new(nodes: &[&str]) -> SimOptions {
        SimOptions {
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
            lease: nodes.first().map(|s| s.to_string()),
            bin: None,
            threads: 8,
            halt_expiry_ms: None,
        }
    }

    pub fn lease(mut self, holder: Option<&str>) -> SimOptions {
        self.lease = holder.map(str::to_string);
        self
    }

    pub fn bin(mut self, bin: impl Into<PathBuf>) -> SimOptions {
        self.bin = Some(bin.into());
        self
    }

    pub fn threads(mut self, n: usize) -> SimOptions {
        self.threads = n;
        self
    }

    pub fn halt_expiry_ms(mut self, ms: u64) -> SimOptions {
        self.halt_expiry_ms = Some(ms);
        self
    }
}

/// Guarded-write counters of one node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    pub accepted: u64,
    pub refused: u64,
}

/// Counters of every node, from the `stats` command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    pub nodes: BTreeMap<String, NodeStats>,
}

impl SimStats {
    /// Counters of `node` (zero if unknown).
    pub fn node(&self, node: &str) -> NodeStats {
        self.nodes.get(node).copied().unwrap_or_default()
    }

    /// Parses `n1.accepted=3 n1.refused=0 ...`.
    pub fn parse(s: &str) -> SimStats {
        let mut out = SimStats::default();
        for tok in s.split_whitespace() {
            let Some((key, val)) = tok.split_once('=') else {
                continue;
            };
            let Some((node, what)) = key.rsplit_once('.') else {
                continue;
            };
            let Ok(v) = val.parse() else { continue };
            let e = out.nodes.entry(node.to_string()).or_default();
            match what {
                "accepted" => e.accepted = v,
                "refused" => e.refused = v,
                _ => {}
            }
        }
        out
    }
}

/// One line of the sim's event log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEvent {
    /// CLOCK_MONOTONIC time; compare with [`crate::log::monotonic_now`].
    pub ts: Duration,
    pub fields: BTreeMap<String, String>,
    pub raw: String,
}

impl LogEvent {
    pub fn parse(line: &str) -> Option<LogEvent> {
        let mut words = line.split_whitespace();
        let (secs, nanos) = words.next()?.split_once('.')?;
        let ts = Duration::new(secs.parse().ok()?, nanos.parse().ok()?);
        let fields = words
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(LogEvent {
            ts,
            fields,
            raw: line.to_string(),
        })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    pub fn op(&self) -> Option<&str> {
        self.get("op")
    }

    pub fn node(&self) -> Option<&str> {
        self.get("node")
    }

    pub fn file(&self) -> Option<&str> {
        self.get("file")
    }

    /// `accepted`, `refused`, `allowed` or `failed`.
    pub fn result(&self) -> Option<&str> {
        self.get("result")
    }
}

/// Is FUSE usable here (root and /dev/fuse)? `Err` says why not.
pub fn fuse_available() -> Result<(), String> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root: mounting and FUSE passthrough need CAP_SYS_ADMIN".into());
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .map(drop)
        .map_err(|e| format!("/dev/fuse: {e}"))
}

/// Gate for FUSE tests: `true` to run. Without FUSE it panics when `CI=true`
/// and otherwise prints a loud banner and returns `false` (never silent).
pub fn fuse_or_skip(test: &str) -> bool {
    match fuse_available() {
        Ok(()) => true,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("FUSE UNAVAILABLE under CI=true, test {test} cannot run: {why}")
        }
        Err(why) => {
            // Straight to fd 2: the test harness does not capture this.
            let _ = writeln!(
                io::stderr(),
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 !!! SKIPPED {test}: FUSE unavailable ({why})\n\
                 !!! This test did NOT run. Run as root with /dev/fuse.\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
            );
            false
        }
    }
}

fn find_bin() -> io::Result<PathBuf> {
    if let Some(p) = std::env::var_os("LITEFS_SIM_BIN") {
        return Ok(PathBuf::from(p));
    }
    // Test binaries live in target/<profile>/deps; the sim one level up.
    let exe = std::env::current_exe()?;
    for dir in exe.ancestors().skip(1).take(3) {
        let c = dir.join("litefs-sim");
        if c.is_file() {
            return Ok(c);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        "litefs-sim binary not found: build it or set LITEFS_SIM_BIN",
    ))
}

fn temp_dir() -> io::Result<PathBuf> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let base = std::env::var_os("LITEFS_SIM_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let nanos = crate::log::monotonic_now().subsec_nanos();
    let dir = base.join(format!(
        "litefs-sim-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A running sim; dropping it quits the daemon and unmounts every node.
#[derive(Debug)]
pub struct Sim {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    dir: PathBuf,
    backing: PathBuf,
    mounts: Vec<(String, PathBuf)>,
    socket: PathBuf,
    log_path: PathBuf,
    stderr_path: PathBuf,
}

impl Sim {
    /// Starts a sim with these nodes; the first holds the lease.
    pub fn start(nodes: &[&str]) -> io::Result<Sim> {
        Sim::start_with(SimOptions::new(nodes))
    }

    pub fn start_with(opts: SimOptions) -> io::Result<Sim> {
        let bin = match opts.bin.clone() {
            Some(b) => b,
            None => find_bin()?,
        };
        let dir = temp_dir()?;
        let backing = dir.join("backing");
        let socket = dir.join("sim.sock");
        let log_path = dir.join("sim.log");
        let stderr_path = dir.join("sim.stderr");
        let mounts: Vec<(String, PathBuf)> = opts.nodes.iter().map(|n| (n.clone(), dir.join(n))).collect();
        let mut cmd = Command::new(&bin);
        cmd.arg("--backing")
            .arg(&backing)
            .arg("--control")
            .arg(&socket)
            .arg("--log")
            .arg(&log_path)
            .arg("--threads")
            .arg(opts.threads.to_string())
            .arg("--lease")
            .arg(opts.lease.as_deref().unwrap_or("none"))
            .arg("--exit-on-stdin-eof");
        if let Some(ms) = opts.halt_expiry_ms {
            cmd.arg("--halt-expiry-ms").arg(ms.to_string());
        }
        for (n, p) in &mounts {
            cmd.arg("--node").arg(format!("{n}={}", p.display()));
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path)?);
        let mut child = cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("spawn {}: {e}", bin.display())))?;
        let stdin = child.stdin.take();
        let mut sim = Sim {
            child: Some(child),
            stdin,
            dir,
            backing,
            mounts,
            socket,
            log_path,
            stderr_path,
        };
        sim.wait_ready(Duration::from_secs(20))?;
        Ok(sim)
    }

    fn wait_ready(&mut self, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    let err = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
                    self.child = None;
                    return Err(io::Error::other(format!(
                        "litefs-sim exited at start ({status}): {}",
                        err.trim()
                    )));
                }
            }
            if self.command("ping").is_ok() && self.mounts.iter().all(|(_, p)| mounts::is_mounted(p)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let err = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("litefs-sim not ready after {timeout:?}: {}", err.trim()),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends one control command; returns the reply after `ok `, or an
    /// error carrying the `err …` line.
    pub fn command(&self, line: &str) -> io::Result<String> {
        let mut s = UnixStream::connect(&self.socket)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        writeln!(s, "{line}")?;
        let mut reply = String::new();
        BufReader::new(&s).read_line(&mut reply)?;
        let reply = reply.trim_end();
        match reply.strip_prefix("ok") {
            Some(rest) => Ok(rest.trim_start().to_string()),
            None => Err(io::Error::other(format!("{line:?} -> {reply:?}"))),
        }
    }

    /// Mount directory of `node`. Panics on an unknown node (a test bug).
    pub fn mount(&self, node: &str) -> &Path {
        self.mounts
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, p)| p.as_path())
            .unwrap_or_else(|| panic!("no node {node:?} in this sim"))
    }

    /// `file` as seen through `node`'s mount.
    pub fn path(&self, node: &str, file: &str) -> PathBuf {
        self.mount(node).join(file)
    }

    pub fn nodes(&self) -> Vec<&str> {
        self.mounts.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The shared backing directory (write here only to set up fixtures).
    pub fn backing(&self) -> &Path {
        &self.backing
    }

    /// Temp dir holding backing store, mounts, socket and log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits up to `timeout` for the daemon to exit (after `quit`, a signal
    /// or a kill); `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = child.try_wait()? {
                return Ok(Some(st));
            }
            if Instant::now() > deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Moves the lease to `node`, or to nobody.
    pub fn set_lease(&self, node: Option<&str>) -> io::Result<()> {
        self.command(&format!("lease {}", node.unwrap_or("none")))
            .map(drop)
    }

    pub fn lease(&self) -> io::Result<Option<String>> {
        let r = self.command("lease")?;
        Ok(match r.strip_prefix("lease=") {
            Some("none") | None => None,
            Some(n) => Some(n.to_string()),
        })
    }

    /// Holds back `node`'s replication: its `NAME-pos` freezes, `.lag` grows.
    pub fn hold(&self, node: &str) -> io::Result<()> {
        self.command(&format!("hold {node}")).map(drop)
    }

    /// Lets a held node catch up.
    pub fn release(&self, node: &str) -> io::Result<()> {
        self.command(&format!("release {node}")).map(drop)
    }

    pub fn stats(&self) -> io::Result<SimStats> {
        Ok(SimStats::parse(&self.command("stats")?))
    }

    /// Every event logged so far.
    pub fn log(&self) -> io::Result<Vec<LogEvent>> {
        let text = std::fs::read_to_string(&self.log_path)?;
        Ok(text.lines().filter_map(LogEvent::parse).collect())
    }

    /// Quits the daemon and checks every mount is gone.
    pub fn stop(mut self) -> io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        if let Some(mut child) = self.child.take() {
            let _ = self.command("quit");
            drop(self.stdin.take());
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // Whatever happened to the daemon, leave no mount behind.
        let mut still = Vec::new();
        for (_, p) in &self.mounts {
            if mounts::unmount(p).is_err() || mounts::is_mounted(p) {
                still.push(p.display().to_string());
            }
        }
        if !still.is_empty() {
            return Err(io::Error::other(format!("still mounted: {}", still.join(", "))));
        }
        if !self.dir.as_os_str().is_empty() && std::env::var_os("LITEFS_SIM_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        Ok(())
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            eprintln!("litefs-sim harness: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stats_and_log_lines() {
        let s = SimStats::parse("n1.accepted=3 n1.refused=0 n-2.accepted=0 n-2.refused=7");
        assert_eq!(
            s.node("n1"),
            NodeStats {
                accepted: 3,
                refused: 0
            }
        );
        assert_eq!(s.node("n-2").refused, 7);
        assert_eq!(s.node("zz"), NodeStats::default());
        let e = LogEvent::parse("12.000000034 node=n2 op=write file=app.db result=refused").unwrap();
        assert_eq!(e.ts, Duration::new(12, 34));
        assert_eq!(e.node(), Some("n2"));
        assert_eq!(e.result(), Some("refused"));
        assert!(LogEvent::parse("garbage").is_none());
    }
}
