//! Loading the extension, opening guarded and stock connections, measuring.

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant};

/// The built extension (`make bench` builds it; LITEFS_GUARD_SO overrides).
pub fn so_path() -> PathBuf {
    if let Some(p) = std::env::var_os("LITEFS_GUARD_SO") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/liblitefs_guard.so")
}

static LOAD: Once = Once::new();

/// The bench's SQLite must give each connection its own page cache (see
/// mk/bench.mk): with one shared pool the two sides evict each other's pages.
pub fn check_sqlite_build() {
    let c = Connection::open_in_memory().unwrap();
    let mut st = c.prepare("PRAGMA compile_options").unwrap();
    let opts: Vec<String> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    if opts.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT") {
        eprintln!(
            "litefs-guard-bench: this binary's SQLite was built with SQLITE_ENABLE_MEMORY_MANAGEMENT \
             (one page-cache pool for all connections: guarded and stock would evict each other's \
             pages). Build it through `make bench`, or with \
             LIBSQLITE3_FLAGS=-USQLITE_ENABLE_MEMORY_MANAGEMENT cargo build --release --manifest-path bench/Cargo.toml"
        );
        std::process::exit(2);
    }
}

/// Where this process's databases go: `guarded/` is the guard's mount
/// (LITEFS_GUARD_DIR), `stock/` a sibling directory outside it.
pub struct Dirs {
    pub root: PathBuf,
    pub guarded: PathBuf,
    pub stock: PathBuf,
}

impl Dirs {
    /// A fresh `lfg-bench-TAG-PID/{guarded,stock}` on local disk.
    pub fn new(tag: &str) -> Dirs {
        let root = temp_dir(tag);
        let (guarded, stock) = (root.join("guarded"), root.join("stock"));
        std::fs::create_dir_all(&guarded).unwrap();
        std::fs::create_dir_all(&stock).unwrap();
        // SQLite hands the VFS resolved paths; so must the assertions.
        Dirs {
            guarded: guarded.canonicalize().unwrap(),
            stock: stock.canonicalize().unwrap(),
            root,
        }
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The guarded location of this process, as `set_guard_env` configured it.
static MOUNT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Configures the guard for this process: `mount` is its mount
/// (LITEFS_GUARD_DIR), and the FUSE check is off (LITEFS_GUARD_REQUIRE_FUSE=0:
/// a plain directory must opt out, and the FUSE rows measure the role check
/// as before, without the statfs). The guard reads its settings once per
/// process, so this must run before `load_guard`; every database outside
/// `mount` is then opened by the base VFS in place (the stock side).
pub fn set_guard_env(mount: &Path) {
    assert!(!LOAD.is_completed(), "set_guard_env after the guard was loaded");
    let mount = mount.canonicalize().unwrap();
    std::env::set_var("LITEFS_GUARD_DIR", &mount);
    std::env::set_var("LITEFS_GUARD_REQUIRE_FUSE", "0");
    MOUNT.set(mount).expect("one guarded location per process");
}

/// The guarded location of this process, if `set_guard_env` configured one.
pub fn mount() -> Option<&'static Path> {
    MOUNT.get().map(PathBuf::as_path)
}

/// Loads the extension once for this process on a throwaway `:memory:`
/// connection: every connection opened afterwards gets the authorizer, and
/// every database under the mount (`set_guard_env`) the guard's VFS.
pub fn load_guard() {
    assert!(MOUNT.get().is_some(), "set_guard_env must run before load_guard");
    load();
}

/// Loads the extension with no mount configured: each database's own
/// directory is its mount (what a process with several litefs-sim nodes
/// needs, e.g. the forwarding row). No guarded/stock split in such a process.
pub fn load_guard_per_database_dir() {
    assert!(MOUNT.get().is_none(), "a mount is configured");
    assert!(std::env::var_os("LITEFS_GUARD_DIR").is_none());
    load();
}

fn load() {
    LOAD.call_once(|| {
        check_sqlite_build();
        let so = so_path();
        assert!(
            so.exists(),
            "{} is missing: run `cargo build --release` in the repository root",
            so.display()
        );
        let c = Connection::open_in_memory().unwrap();
        // SAFETY: loading this repository's own extension.
        unsafe {
            c.load_extension_enable().unwrap();
            c.load_extension(&so, None::<&str>).unwrap();
            c.load_extension_disable().unwrap();
        }
    });
}

/// WAL, synchronous=NORMAL, 5 s busy timeout: the setting of every figure.
pub fn configure(c: &Connection) {
    c.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

/// A guarded connection: a database under the mount, the default VFS and
/// the authorizer.
pub fn open_guarded(path: &Path) -> Connection {
    let mount = MOUNT.get().expect("set_guard_env first");
    assert!(
        path.starts_with(mount),
        "{} is not under the guarded mount {}",
        path.display(),
        mount.display()
    );
    let c = Connection::open(path).unwrap();
    configure(&c);
    let cfg = config(&c);
    assert_eq!(
        cfg["vfs"],
        serde_json::json!(true),
        "guarded connection is not on the guard's VFS: {cfg}"
    );
    assert_eq!(
        cfg["mount_source"],
        serde_json::json!("LITEFS_GUARD_DIR"),
        "the bench sets the mount through LITEFS_GUARD_DIR (no other setting may win): {cfg}"
    );
    assert_eq!(cfg["mount_dir"], serde_json::json!(mount), "{cfg}");
    assert_eq!(cfg["require_fuse"], serde_json::json!(false), "{cfg}");
    assert_eq!(cfg["role"], serde_json::json!("primary"), "{cfg}");
    c
}

/// Stock SQLite cost-wise: a database outside the guarded mount, so the VFS
/// opens it with the base VFS in place, and no authorizer. It is named
/// "unix": before the guard wrapped every VFS that was the base VFS itself;
/// since, it is the guard's wrapper of it, which only looks at the path at
/// open time and leaves the file to the base VFS (`vfs` false below).
pub fn open_stock(path: &Path) -> Connection {
    if let Some(mount) = MOUNT.get() {
        assert!(
            !path.starts_with(mount),
            "stock database {} is inside the guarded mount",
            path.display()
        );
    }
    let c = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), c"unix").unwrap();
    // SAFETY: valid open connection; removes the auto-extension's authorizer.
    let rc = unsafe { rusqlite::ffi::sqlite3_set_authorizer(c.handle(), None, std::ptr::null_mut()) };
    assert_eq!(rc, 0);
    configure(&c);
    let cfg = config(&c);
    assert_eq!(
        cfg["vfs"],
        serde_json::json!(false),
        "stock connection is guarded: {cfg}"
    );
    c
}

/// Stock SQLite in a process that never loaded the extension (the stock
/// writers of the contention table's process cells).
pub fn open_unloaded(path: &Path) -> Connection {
    assert!(!LOAD.is_completed(), "the extension is loaded in this process");
    let c = Connection::open(path).unwrap();
    configure(&c);
    assert!(
        c.query_row("SELECT litefs_config()", [], |_| Ok(())).is_err(),
        "litefs_config() exists without the extension"
    );
    c
}

pub fn config(c: &Connection) -> serde_json::Value {
    let s: String = c.query_row("SELECT litefs_config()", [], |r| r.get(0)).unwrap();
    serde_json::from_str(&s).unwrap()
}

/// The process-wide count of `.primary` lookups.
pub fn lookups(c: &Connection) -> u64 {
    let s: String = c
        .query_row("SELECT litefs_guard_stats()", [], |r| r.get(0))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    v["primary_lookups"].as_u64().unwrap()
}

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// The `q` quantile of `v` (nearest rank, rounded); NaN if `v` is empty.
pub fn percentile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[(((s.len() - 1) as f64) * q).round() as usize]
}

/// CPU time of the calling thread (user + system): unlike wall time, not
/// inflated while other processes hold the CPU.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// One timed run of `n` operations.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub ops_per_s: f64,
    /// Thread CPU time per operation, µs.
    pub cpu_us: f64,
}

/// Wall and thread-CPU seconds of `f`.
fn timed(f: impl FnOnce()) -> (f64, f64) {
    let c0 = thread_cpu();
    let t = Instant::now();
    f();
    (t.elapsed().as_secs_f64(), (thread_cpu() - c0).as_secs_f64())
}

pub fn measure(n: usize, f: impl FnOnce()) -> Sample {
    let (wall, cpu) = timed(f);
    Sample {
        ops_per_s: n as f64 / wall,
        cpu_us: cpu * 1e6 / n as f64,
    }
}

/// Slices per repetition: each repetition alternates guarded and stock
/// slices of n/SLICES operations, so a burst of load from elsewhere on the
/// machine lands on both sides of a pair, not on one.
pub const SLICES: usize = 10;

/// One figure: `reps` runs of each side, interleaved (A B A B …, in
/// `SLICES` slices per run) after one warm-up pair.
#[derive(Debug, Default, Clone)]
pub struct Paired {
    pub n: usize,
    pub guarded: Vec<Sample>,
    pub stock: Vec<Sample>,
}

impl Paired {
    pub fn run(reps: usize, n: usize, mut g: impl FnMut(usize), mut s: impl FnMut(usize)) -> Paired {
        let k = (n / SLICES).max(1);
        let n = k * SLICES;
        g(n);
        s(n);
        let mut p = Paired {
            n,
            ..Default::default()
        };
        let sample = |(wall, cpu): (f64, f64)| Sample {
            ops_per_s: n as f64 / wall,
            cpu_us: cpu * 1e6 / n as f64,
        };
        for _ in 0..reps {
            let (mut gt, mut st) = ((0.0, 0.0), (0.0, 0.0));
            for _ in 0..SLICES {
                let a = timed(|| g(k));
                let b = timed(|| s(k));
                gt = (gt.0 + a.0, gt.1 + a.1);
                st = (st.0 + b.0, st.1 + b.1);
            }
            p.guarded.push(sample(gt));
            p.stock.push(sample(st));
        }
        p
    }

    pub fn g_ops(&self) -> f64 {
        median(&self.guarded.iter().map(|x| x.ops_per_s).collect::<Vec<_>>())
    }
    pub fn s_ops(&self) -> f64 {
        median(&self.stock.iter().map(|x| x.ops_per_s).collect::<Vec<_>>())
    }

    /// Median of the per-pair throughput ratios guarded/stock (adjacent
    /// runs, so a slow spell of the machine hits both sides of a pair).
    pub fn ratio(&self) -> f64 {
        median(
            &self
                .guarded
                .iter()
                .zip(&self.stock)
                .map(|(g, s)| g.ops_per_s / s.ops_per_s)
                .collect::<Vec<_>>(),
        )
    }

    /// The same ratio from thread CPU time per operation (stock/guarded).
    pub fn cpu_ratio(&self) -> f64 {
        median(
            &self
                .guarded
                .iter()
                .zip(&self.stock)
                .map(|(g, s)| s.cpu_us / g.cpu_us)
                .collect::<Vec<_>>(),
        )
    }

    /// Median of the per-pair differences in wall time per operation (µs):
    /// what the guard adds to one operation.
    pub fn extra_us(&self) -> f64 {
        median(
            &self
                .guarded
                .iter()
                .zip(&self.stock)
                .map(|(g, s)| 1e6 / g.ops_per_s - 1e6 / s.ops_per_s)
                .collect::<Vec<_>>(),
        )
    }

    /// Back from [`Paired::json`] (the FUSE rows come from a child process).
    pub fn from_json(v: &serde_json::Value) -> Option<Paired> {
        let list = |k: &str| -> Option<Vec<f64>> { v[k].as_array()?.iter().map(|x| x.as_f64()).collect() };
        let samples = |ops: &str, cpu: &str| -> Option<Vec<Sample>> {
            let (o, c) = (list(ops)?, list(cpu)?);
            (o.len() == c.len()).then(|| {
                o.into_iter()
                    .zip(c)
                    .map(|(ops_per_s, cpu_us)| Sample { ops_per_s, cpu_us })
                    .collect()
            })
        };
        Some(Paired {
            n: v["ops_per_rep"].as_u64()? as usize,
            guarded: samples("guarded_ops_per_s", "guarded_cpu_us_per_op")?,
            stock: samples("stock_ops_per_s", "stock_cpu_us_per_op")?,
        })
    }

    pub fn json(&self) -> serde_json::Value {
        let ops = |v: &[Sample]| v.iter().map(|x| x.ops_per_s).collect::<Vec<_>>();
        let cpu = |v: &[Sample]| v.iter().map(|x| x.cpu_us).collect::<Vec<_>>();
        serde_json::json!({
            "ops_per_rep": self.n,
            "guarded_ops_per_s": ops(&self.guarded),
            "stock_ops_per_s": ops(&self.stock),
            "guarded_cpu_us_per_op": cpu(&self.guarded),
            "stock_cpu_us_per_op": cpu(&self.stock),
            "guarded_median_ops_per_s": self.g_ops(),
            "stock_median_ops_per_s": self.s_ops(),
            "ratio": self.ratio(),
            "ratio_of_medians": self.g_ops() / self.s_ops(),
            "cpu_ratio": self.cpu_ratio(),
            "guard_extra_us_per_op": self.extra_us(),
        })
    }
}

/// A deterministic id sequence (no rand dependency).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next_in(&mut self, n: i64) -> i64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as i64) % n + 1
    }
}

/// A fresh directory on local disk for the bench's databases.
pub fn temp_dir(tag: &str) -> PathBuf {
    let base = std::env::var_os("BENCH_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let d = base.join(format!("lfg-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
