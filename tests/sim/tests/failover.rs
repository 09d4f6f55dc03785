//! The guard on the sim's real FUSE mounts: steady state, no primary at
//! all, and LiteFS going away under open connections. The guard is loaded
//! into this test process (default settings); the `LITEFS_GUARD_REQUIRE_FUSE=1`
//! case runs in a child process, since settings are read once per process.
//! The failover-under-load scenarios are in `failover_load.rs`.

mod common;
mod scenarios;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{mpsc, Once};
use std::time::{Duration, Instant};

use common::start;
use litefs_sim::harness::Sim;
use litefs_sim::mounts::{is_mounted, unmount};
use rusqlite::Connection;
use scenarios::{
    am_child, load_guard, must_fail, run_child, so_path, within, SqlErr, SQLITE_AUTH, SQLITE_READONLY,
};

const STRICT_CHILD: &str = "require_fuse_child";
/// Longest any call on a dead mount may take before it counts as a hang.
const HANG: Duration = Duration::from_secs(30);

static GUARD: Once = Once::new();

/// Loads the guard into this process once, and checks it runs with the
/// defaults these tests assume (each database's directory is its mount).
fn guard() {
    GUARD.call_once(|| {
        load_guard(&so_path());
        let c = Connection::open_in_memory().unwrap();
        let cfg = config(&c);
        assert!(
            cfg.contains("\"mount_source\":\"database directory\"") && cfg.contains("\"require_fuse\":false"),
            "the guard's settings come from the environment and litefs.yml: run these tests without \
             LITEFS_GUARD_* variables and without a litefs.yml in ./, $HOME or /etc. Got {cfg}"
        );
    });
}

/// A guarded connection through `node`'s mount.
fn open(sim: &Sim, node: &str) -> Connection {
    guard();
    let c = Connection::open(sim.path(node, "app.db")).unwrap();
    c.busy_timeout(Duration::from_secs(2)).unwrap();
    c
}

fn config(c: &Connection) -> String {
    c.query_row("SELECT litefs_config()", [], |r| r.get(0)).unwrap()
}

fn is_primary(c: &Connection) -> rusqlite::Result<i64> {
    c.query_row("SELECT litefs_is_primary()", [], |r| r.get(0))
}

fn primary(c: &Connection) -> rusqlite::Result<Option<String>> {
    c.query_row("SELECT litefs_primary()", [], |r| r.get(0))
}

fn count(c: &Connection) -> rusqlite::Result<i64> {
    c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
}

/// Writes a replica must refuse: prepare-time (authorizer) and
/// execution-time (BEGIN IMMEDIATE takes the write lock) refusals.
const WRITES: &[&str] = &[
    "INSERT INTO t VALUES (100)",
    "UPDATE t SET x = x + 1",
    "DELETE FROM t",
    "CREATE TABLE u(y)",
    "PRAGMA user_version = 7",
    "BEGIN IMMEDIATE",
    "BEGIN; SELECT count(*) FROM t; INSERT INTO t VALUES (101); COMMIT",
];

/// Tries every write in WRITES on `c`; each must be refused by the guard.
/// Returns how many ended in each error code.
fn refused_writes(c: &Connection, node: &str) -> BTreeMap<String, usize> {
    let mut codes = BTreeMap::new();
    for sql in WRITES {
        let e = must_fail(&format!("{node}: {sql}"), c.execute_batch(sql));
        assert!(e.is_refusal(), "{node}: {sql}: not the guard's refusal: {e}");
        *codes.entry(e.to_string()).or_default() += 1;
        if !c.is_autocommit() {
            c.execute_batch("ROLLBACK").unwrap();
        }
    }
    codes
}

fn refused_events(sim: &Sim) -> Vec<String> {
    sim.log()
        .unwrap()
        .into_iter()
        .filter(|e| e.result() == Some("refused"))
        .map(|e| e.raw)
        .collect()
}

/// Names and sizes of the files in `dir` (a bare mountpoint after LiteFS stopped).
fn listing(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().map(|m| m.len()).unwrap_or(0),
            )
        })
        .collect();
    v.sort();
    v
}

/// Scenario 1: writes through the holder succeed; through the other nodes
/// the guard refuses them before they reach the filesystem.
#[test]
fn steady_state_only_the_holder_writes() {
    require_fuse!();
    let sim = start(&["n1", "n2", "n3"]);
    let p = open(&sim, "n1");
    let mode: String = p.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(
        mode, "wal",
        "the guard puts the primary's database in WAL at open"
    );
    p.execute_batch("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1);")
        .unwrap();
    assert_eq!(is_primary(&p).unwrap(), 1);
    assert_eq!(primary(&p).unwrap(), None);

    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    for node in ["n2", "n3"] {
        let r = open(&sim, node);
        assert_eq!(is_primary(&r).unwrap(), 0, "{node}");
        assert_eq!(primary(&r).unwrap().as_deref(), Some("n1"), "{node}");
        assert_eq!(count(&r).unwrap(), 1, "{node} reads the holder's data");
        for (k, n) in refused_writes(&r, node) {
            *codes.entry(k).or_default() += n;
        }
        assert_eq!(count(&r).unwrap(), 1, "{node}: nothing was written");
    }
    // The holder keeps writing; every node sees it.
    p.execute("INSERT INTO t VALUES (2)", []).unwrap();
    for node in ["n2", "n3"] {
        assert_eq!(count(&open(&sim, node)).unwrap(), 2, "{node}");
    }

    let stats = sim.stats().unwrap();
    assert!(stats.node("n1").accepted > 0);
    assert_eq!(
        stats.node("n2").refused,
        0,
        "n2's writes never reached the filesystem"
    );
    assert_eq!(
        stats.node("n3").refused,
        0,
        "n3's writes never reached the filesystem"
    );
    let refused = refused_events(&sim);
    assert!(refused.is_empty(), "sim refused writes: {refused:?}");
    eprintln!(
        "steady state: n1 accepted {} writes; n2/n3: {} writes refused by the guard {codes:?}, 0 by the filesystem",
        stats.node("n1").accepted,
        2 * WRITES.len()
    );
}

/// Scenario 6: nobody holds the lease: no `.primary` anywhere, databases
/// 0444 everywhere. Nobody is primary, nobody writes, everybody reads.
#[test]
fn no_primary_at_all() {
    require_fuse!();
    let sim = start(&["n1", "n2"]);
    let p = open(&sim, "n1");
    p.execute_batch("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1);")
        .unwrap();
    // Prepared while n1 was primary: the authorizer never sees it again, so
    // only the execution-time gate can refuse it later.
    let insert = "INSERT INTO t VALUES (?1)";
    p.prepare_cached(insert).unwrap().execute([2]).unwrap();

    sim.set_lease(None).unwrap();
    for node in ["n1", "n2"] {
        use std::os::unix::fs::PermissionsExt;
        assert!(!sim.path(node, ".primary").exists(), "{node}: no .primary");
        let mode = std::fs::metadata(sim.path(node, "app.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o444, "{node}: database read-only");
        let c = open(&sim, node);
        assert_eq!(is_primary(&c).unwrap(), 0, "{node}");
        assert_eq!(primary(&c).unwrap(), None, "{node}");
        assert_eq!(count(&c).unwrap(), 2, "{node} reads");
        let codes = refused_writes(&c, node);
        assert_eq!(count(&c).unwrap(), 2, "{node}: nothing written");
        eprintln!("no primary, new connection on {node}: refused {codes:?}");
    }
    // The connection opened while n1 was primary.
    assert_eq!(is_primary(&p).unwrap(), 0);
    let e = must_fail("cached insert", p.prepare_cached(insert).unwrap().execute([3]));
    assert_eq!(
        e.code, SQLITE_READONLY,
        "refused by the gate at execution time: {e}"
    );
    let e2 = must_fail("fresh insert", p.execute("INSERT INTO t VALUES (4)", []));
    assert_eq!(e2.code, SQLITE_AUTH, "refused by the authorizer: {e2}");
    assert_eq!(count(&p).unwrap(), 2);
    eprintln!("no primary, connection opened on the old primary: cached statement {e}; fresh statement {e2}");

    let refused = refused_events(&sim);
    assert!(refused.is_empty(), "sim refused writes: {refused:?}");
}

/// What the attempts on a connection whose LiteFS went away gave.
struct Dead {
    node: &'static str,
    /// A statement prepared now: the authorizer sees LiteFS is gone.
    fresh_insert: SqlErr,
    is_primary: SqlErr,
    /// The old primary: its INSERT prepared while it was primary (the
    /// authorizer never sees it again). The replica: a read.
    last: (&'static str, SqlErr),
    took: Duration,
}

impl std::fmt::Display for Dead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: fresh insert -> {}; litefs_is_primary() -> {}; {} -> {} (all in {:.1?})",
            self.node, self.fresh_insert, self.is_primary, self.last.0, self.last.1, self.took
        )
    }
}

/// Starts the attempts on `c` (`node`'s connection, its mount gone) on a
/// thread of its own, so the slow ones on both connections overlap.
fn attempts_on_dead(c: Connection, node: &'static str) -> mpsc::Receiver<(Connection, Dead)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let t0 = Instant::now();
        let fresh_insert = must_fail("fresh insert", c.execute("INSERT INTO t VALUES (51)", []));
        let is_primary = must_fail("litefs_is_primary()", is_primary(&c));
        let last = if node == "n1" {
            let r = c
                .prepare_cached("INSERT INTO t VALUES (?1)")
                .and_then(|mut s| s.execute([50]));
            ("cached insert", must_fail("cached insert", r))
        } else {
            ("read", must_fail("read", count(&c)))
        };
        if !c.is_autocommit() {
            let _ = c.execute_batch("ROLLBACK");
        }
        let took = t0.elapsed();
        let _ = tx.send((
            c,
            Dead {
                node,
                fresh_insert,
                is_primary,
                last,
                took,
            },
        ));
    });
    rx
}

/// Runs the attempts on the old primary's and the replica's connections at
/// once; a hang fails the test. Checks what must hold and prints the rest.
fn check_dead_connections(p: Connection, r: Connection, what: &str) {
    // The authorizer skips its look for 100 ms after a check that allowed
    // writes (the gate at the lock looks anyway). On a dead mount SQLite
    // never gets to the lock: within those 100 ms a fresh statement fares
    // like a cached one (see a_cached_write_after_litefs_stops_is_refused_promptly).
    std::thread::sleep(Duration::from_millis(200));
    let (rp, rr) = (attempts_on_dead(p, "n1"), attempts_on_dead(r, "n2"));
    let (p, dp) = rp
        .recv_timeout(HANG)
        .unwrap_or_else(|_| panic!("{what}: n1 hangs"));
    let (r, dr) = rr
        .recv_timeout(HANG)
        .unwrap_or_else(|_| panic!("{what}: n2 hangs"));
    eprintln!("{what}:\n  {dp}\n  {dr}");
    for d in [&dp, &dr] {
        assert_eq!(
            d.fresh_insert.code, SQLITE_AUTH,
            "{what}: {}: a fresh write is refused at prepare: {}",
            d.node, d.fresh_insert
        );
        assert!(
            d.is_primary.msg.contains("LiteFS is not running"),
            "{what}: {}: litefs_is_primary(): {}",
            d.node,
            d.is_primary
        );
    }
    within(HANG, "closing the connections", move || drop((p, r)));
}

/// A database with rows on n1, an old-primary connection (with a cached
/// INSERT) and a replica connection, both having read.
fn two_open_connections(sim: &Sim) -> (Connection, Connection) {
    let p = open(sim, "n1");
    p.execute_batch("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1), (2);")
        .unwrap();
    p.prepare_cached("INSERT INTO t VALUES (?1)")
        .unwrap()
        .execute([3])
        .unwrap();
    let r = open(sim, "n2");
    assert_eq!(count(&r).unwrap(), 3);
    (p, r)
}

/// Scenario 5: LiteFS quits (clean unmount, lazily as connections are open):
/// writes are refused, reads fail cleanly, nothing lands in the bare
/// mountpoint. Then a NEW connection on the bare mountpoint with the default
/// settings (no REQUIRE_FUSE) is tried and what happens is reported.
#[test]
fn litefs_quits_under_open_connections() {
    require_fuse!();
    let mut sim = start(&["n1", "n2"]);
    let (p, r) = two_open_connections(&sim);
    sim.command("quit").unwrap();
    assert!(
        sim.wait_exit(Duration::from_secs(10)).unwrap().is_some(),
        "sim exited"
    );
    for node in ["n1", "n2"] {
        assert!(!is_mounted(sim.mount(node)), "{node} unmounted");
        assert_eq!(
            listing(sim.mount(node)),
            vec![],
            "{node}: bare mountpoint is empty"
        );
    }

    check_dead_connections(p, r, "LiteFS quit (mounts lazily unmounted), open connections");
    for node in ["n1", "n2"] {
        assert_eq!(
            listing(sim.mount(node)),
            vec![],
            "{node}: nothing was written to the bare mountpoint"
        );
    }

    // Not asserted, reported: a new connection on the bare mountpoint with
    // default settings (the guard cannot tell a bare directory from a mount
    // unless LITEFS_GUARD_REQUIRE_FUSE=1).
    let path = sim.path("n1", "app.db");
    let report = within(HANG, "new connection on the bare mountpoint", move || {
        let mut out = Vec::new();
        match Connection::open(&path) {
            Err(e) => out.push(format!("open: {}", SqlErr::from(&e))),
            Ok(c) => {
                let show = |r: rusqlite::Result<String>| r.unwrap_or_else(|e| SqlErr::from(&e).to_string());
                out.push(format!(
                    "litefs_is_primary(): {}",
                    show(is_primary(&c).map(|v| v.to_string()))
                ));
                out.push(format!(
                    "journal_mode: {}",
                    show(c.query_row("PRAGMA journal_mode", [], |r| r.get(0)))
                ));
                for sql in ["CREATE TABLE t(x)", "INSERT INTO t VALUES (1)"] {
                    let r = c.execute_batch(sql).map(|_| "ok".to_string());
                    out.push(format!("{sql}: {}", show(r)));
                }
            }
        }
        out
    })
    .0;
    eprintln!(
        "REPORT new connection on the bare mountpoint, default settings:\n  {}\n  files left: {:?}",
        report.join("\n  "),
        listing(sim.mount("n1"))
    );
}

/// Scenario 5 with the daemon killed outright: the mounts stay, dead
/// (ENOTCONN). Old connections are refused and fail cleanly; a new one
/// cannot open; after the lazy unmount the mountpoints are empty.
#[test]
fn litefs_killed_under_open_connections() {
    require_fuse!();
    let mut sim = start(&["n1", "n2"]);
    let (p, r) = two_open_connections(&sim);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(sim.pid().unwrap() as i32, libc::SIGKILL) };
    assert!(sim.wait_exit(Duration::from_secs(10)).unwrap().is_some());

    check_dead_connections(p, r, "LiteFS killed (mounts dead, ENOTCONN), open connections");
    let path = sim.path("n1", "app.db");
    let (new, _) = within(HANG, "new connection on a dead mount", move || {
        Connection::open(&path).and_then(|c| c.execute_batch("INSERT INTO t VALUES (9)"))
    });
    let e = must_fail("new connection on a dead mount", new);
    eprintln!("LiteFS killed, new connection: {e}");
    for node in ["n1", "n2"] {
        unmount(sim.mount(node)).unwrap();
        assert!(!is_mounted(sim.mount(node)));
        assert_eq!(
            listing(sim.mount(node)),
            vec![],
            "{node}: bare mountpoint is empty"
        );
    }
}

/// Regression (found by this suite): a plain BEGIN on the primary is
/// escalated at its first read: the guard checks the role, then waits in the
/// busy handler for the write lock. If the lease moves while it waits, the
/// guard must check again once it has the lock, so the gate refuses the
/// transaction and nothing reaches the filesystem.
#[test]
fn writer_waiting_for_the_lock_across_a_lease_move_is_refused_by_the_gate() {
    require_fuse!();
    let sim = start(&["n1", "n2"]);
    let holder = open(&sim, "n1");
    holder
        .execute_batch("CREATE TABLE t(x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
        .unwrap();
    let path = sim.path("n1", "app.db");
    let waiter = std::thread::spawn(move || {
        let c = Connection::open(path).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        let r = c.execute_batch("BEGIN; INSERT INTO t VALUES (2); COMMIT;");
        r.map_err(|e| SqlErr::from(&e))
    });
    std::thread::sleep(Duration::from_millis(300)); // the waiter is in the busy handler
    sim.set_lease(Some("n2")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    holder.execute_batch("ROLLBACK").unwrap(); // writes nothing; frees the lock
    let e = waiter.join().unwrap().expect_err("n1 is no longer the holder");
    let refused = refused_events(&sim);
    assert!(
        refused.is_empty(),
        "the waiting writer reached the filesystem after the lease moved (client got {e}): {refused:?}"
    );
    assert_eq!(e.code, SQLITE_READONLY, "{e}");
}

/// After LiteFS stops, a statement prepared while the node was primary (the
/// authorizer never sees it again) must fail promptly and clearly. Without
/// the guard's help SQLite's read lock on the dead -shm fails as "busy"
/// (the unix VFS maps every fcntl error to SQLITE_BUSY), the WAL read
/// retries for about 10 s and ends in SQLITE_PROTOCOL. The guard recognises
/// the dead mount and answers SQLITE_CANTOPEN at once (reason in the log).
#[test]
fn a_cached_write_after_litefs_stops_is_refused_promptly() {
    require_fuse!();
    let mut sim = start(&["n1", "n2"]);
    let (p, r) = two_open_connections(&sim);
    drop(r);
    sim.command("quit").unwrap();
    assert!(sim.wait_exit(Duration::from_secs(10)).unwrap().is_some());
    let ((_p, res), took) = within(HANG, "cached insert after LiteFS quit", move || {
        let r = p
            .prepare_cached("INSERT INTO t VALUES (?1)")
            .and_then(|mut s| s.execute([50]));
        (p, r)
    });
    let e = must_fail("cached insert after LiteFS quit", res);
    assert!(
        (e.is_refusal() || e.code == 14) && took < Duration::from_secs(2),
        "got {e} after {took:?}"
    );
}

/// Scenario 5, strict: with LITEFS_GUARD_REQUIRE_FUSE=1 (child process) a
/// NEW connection on the bare mountpoint cannot write.
#[test]
fn require_fuse_refuses_a_new_connection_on_the_bare_mountpoint() {
    require_fuse!();
    /// The child's cwd and HOME; removed even when the child fails.
    struct Dir(std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let dir = Dir(std::env::temp_dir().join(format!("litefs-failover-strict-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let out = run_child(STRICT_CHILD, &dir.0, &[("LITEFS_GUARD_REQUIRE_FUSE", "1")]);
    assert!(out.contains("STRICT OK"), "child reported: {out}");
}

#[test]
fn require_fuse_child() {
    if !am_child(STRICT_CHILD) {
        return;
    }
    load_guard(&so_path());
    let mut sim = start(&["n1", "n2"]);
    {
        let c = Connection::open(sim.path("n1", "app.db")).unwrap();
        assert!(config(&c).contains("\"require_fuse\":true"), "{}", config(&c));
        // On a live FUSE mount the strict check changes nothing.
        c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
        assert_eq!(is_primary(&c).unwrap(), 1);
        let r = Connection::open(sim.path("n2", "app.db")).unwrap();
        assert!(must_fail("replica insert", r.execute("INSERT INTO t VALUES (2)", [])).is_refusal());
    }
    sim.command("quit").unwrap();
    assert!(sim.wait_exit(Duration::from_secs(10)).unwrap().is_some());
    let mnt = sim.mount("n1").to_path_buf();
    assert!(!is_mounted(&mnt));
    assert_eq!(listing(&mnt), vec![]);

    let path = sim.path("n1", "app.db");
    let ((open_result, files_after_open), _) = within(HANG, "strict: new connection", move || {
        let dir = path.parent().unwrap().to_path_buf();
        let r = Connection::open(&path);
        let files = listing(&dir);
        (r, files)
    });
    println!("strict: files after sqlite3_open on the bare mountpoint: {files_after_open:?}");
    // Creating the database there would be a write LiteFS later hides: the
    // open itself is refused (SQLITE_READONLY), and nothing is created.
    let e = must_fail("open on a bare directory", open_result);
    assert!(e.is_refusal(), "strict: open: {e}");
    println!("strict: open: {e}");
    assert_eq!(
        files_after_open,
        vec![],
        "strict: the refused open left files in the bare mountpoint"
    );
    // An existing database there (LiteFS's files were left behind, say):
    // opens, reads, and refuses every write.
    std::fs::write(mnt.join("app.db"), b"").unwrap();
    let c = Connection::open(sim.path("n1", "app.db")).expect("open an existing file on a bare directory");
    let e = must_fail("litefs_is_primary()", is_primary(&c));
    assert!(
        e.msg.contains("LiteFS is not running") && e.msg.contains("not a FUSE mount"),
        "{e}"
    );
    println!("strict: litefs_is_primary(): {e}");
    for sql in ["CREATE TABLE t(x)", "BEGIN IMMEDIATE", "PRAGMA user_version = 3"] {
        let e = must_fail(sql, c.execute_batch(sql));
        assert!(e.is_refusal(), "strict: {sql}: {e}");
        println!("strict: {sql}: {e}");
        if !c.is_autocommit() {
            c.execute_batch("ROLLBACK").unwrap();
        }
    }
    drop(c);
    let files = listing(&mnt);
    println!("strict: files left in the bare mountpoint: {files:?}");
    assert!(
        files.iter().all(|(name, size)| name == "app.db" && *size == 0),
        "strict: something was written to the bare mountpoint: {files:?}"
    );
    println!("STRICT OK");
}
