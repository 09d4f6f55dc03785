//! What a node shows of replication: `NAME-pos` per node, `.lag`, holding a
//! node back (`hold`/`release`), and `.primary` after the primary is lost.

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::thread;
use std::time::Duration;

use common::{opts, start};
use litefs_sim::harness::Sim;

fn txid(sim: &Sim, node: &str, db: &str) -> u64 {
    let pos = fs::read_to_string(sim.path(node, &format!("{db}-pos"))).unwrap();
    assert_eq!(pos.len(), 34, "{pos:?}");
    u64::from_str_radix(&pos[..16], 16).unwrap()
}

fn lag(sim: &Sim, node: &str) -> i64 {
    let s = fs::read_to_string(sim.path(node, ".lag")).unwrap();
    assert!(s.ends_with('\n') && s.starts_with('+'), "{s:?}");
    s.trim_end().parse().unwrap()
}

/// A rollback-journal commit through `node`: the journal appears and is deleted.
fn commit_journal(sim: &Sim, node: &str, db: &str) {
    fs::write(sim.path(node, &format!("{db}-journal")), b"j").unwrap();
    fs::remove_file(sim.path(node, &format!("{db}-journal"))).unwrap();
}

#[test]
fn pos_advances_on_every_node_with_each_commit() {
    require_fuse!();
    let sim = start(&["n1", "n2", "n3"]);
    fs::write(sim.path("n1", "a.db"), b"x").unwrap();
    for n in ["n1", "n2", "n3"] {
        assert_eq!(txid(&sim, n, "a.db"), 0, "{n}");
    }
    commit_journal(&sim, "n1", "a.db");
    for n in ["n1", "n2", "n3"] {
        assert_eq!(txid(&sim, n, "a.db"), 1, "{n}");
    }
    // A WAL commit frame header (bytes 4..8 = db size after commit).
    let wal = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(sim.path("n1", "a.db-wal"))
        .unwrap();
    let mut hdr = [0u8; 24];
    wal.write_all_at(&hdr, 32).unwrap();
    assert_eq!(txid(&sim, "n2", "a.db"), 1, "a non-commit frame is no commit");
    hdr[7] = 1;
    wal.write_all_at(&hdr, 56).unwrap();
    assert_eq!(txid(&sim, "n3", "a.db"), 2);
    // Commits through another node's mount (after a failover) reach all.
    sim.set_lease(Some("n3")).unwrap();
    commit_journal(&sim, "n3", "a.db");
    for n in ["n1", "n2", "n3"] {
        assert_eq!(txid(&sim, n, "a.db"), 3, "{n}");
    }
    // The checksum moves with the TXID and is the same on every node.
    let p1 = fs::read_to_string(sim.path("n1", "a.db-pos")).unwrap();
    assert_eq!(p1, fs::read_to_string(sim.path("n2", "a.db-pos")).unwrap());
    assert_eq!(sim.command("pos a.db").unwrap(), p1.trim_end());
    // A second database has its own counter.
    fs::write(sim.path("n3", "b.db"), b"y").unwrap();
    assert_eq!(txid(&sim, "n1", "b.db"), 0);
}

#[test]
fn hold_freezes_pos_and_grows_lag_release_catches_up() {
    require_fuse!();
    let sim = start(&["n1", "n2", "n3"]);
    fs::write(sim.path("n1", "h.db"), b"x").unwrap();
    commit_journal(&sim, "n1", "h.db");
    assert_eq!(lag(&sim, "n2"), 0, "a connected replica");

    sim.hold("n2").unwrap();
    let status = sim.command("status").unwrap();
    assert!(status.contains(" held=n2 "), "{status}");
    for _ in 0..3 {
        commit_journal(&sim, "n1", "h.db");
    }
    assert_eq!(txid(&sim, "n1", "h.db"), 4);
    assert_eq!(txid(&sim, "n3", "h.db"), 4);
    assert_eq!(txid(&sim, "n2", "h.db"), 1, "held at its position");
    assert_eq!(
        sim.command("pos h.db n2").unwrap(),
        fs::read_to_string(sim.path("n2", "h.db-pos")).unwrap().trim_end()
    );
    // The data itself is shared: the held node reads the newest bytes.
    fs::write(sim.path("n1", "h.db"), b"new").unwrap();
    assert_eq!(fs::read(sim.path("n2", "h.db")).unwrap(), b"new");

    thread::sleep(Duration::from_millis(300));
    let l1 = lag(&sim, "n2");
    assert!((300..10_000).contains(&l1), "{l1}");
    thread::sleep(Duration::from_millis(100));
    assert!(lag(&sim, "n2") >= l1 + 100, "lag grows");
    assert_eq!(lag(&sim, "n1"), 0);
    assert_eq!(lag(&sim, "n3"), 0);

    // The holder cannot be held; unknown nodes and double holds are errors.
    assert!(sim.hold("n1").is_err());
    assert!(sim.hold("n2").is_err());
    assert!(sim.hold("n9").is_err());

    sim.release("n2").unwrap();
    assert_eq!(txid(&sim, "n2", "h.db"), 4, "caught up");
    assert_eq!(lag(&sim, "n2"), 0);
    assert!(sim.release("n2").is_err(), "not held any more");

    // Moving the lease to a held node lets it catch up first.
    sim.hold("n3").unwrap();
    commit_journal(&sim, "n1", "h.db");
    assert_eq!(txid(&sim, "n3", "h.db"), 4);
    sim.set_lease(Some("n3")).unwrap();
    assert_eq!(txid(&sim, "n3", "h.db"), 5);
    assert_eq!(lag(&sim, "n3"), 0);

    let log = sim.log().unwrap();
    let ops: Vec<(String, String, String)> = log
        .iter()
        .filter(|e| matches!(e.op(), Some("hold" | "release")))
        .map(|e| {
            (
                e.op().unwrap().to_string(),
                e.node().unwrap().to_string(),
                e.get("reason").unwrap_or("-").to_string(),
            )
        })
        .collect();
    let want = [
        ("hold", "n2", "-"),
        ("release", "n2", "command"),
        ("hold", "n3", "-"),
        ("release", "n3", "lease"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(ops, want);
}

#[test]
fn lag_grows_without_a_primary_and_is_max_before_first_sync() {
    require_fuse!();
    let sim = start(&["n1", "n2"]);
    sim.set_lease(None).unwrap();
    thread::sleep(Duration::from_millis(200));
    for n in ["n1", "n2"] {
        let l = lag(&sim, n);
        assert!((200..10_000).contains(&l), "{n}: {l}");
    }
    sim.set_lease(Some("n2")).unwrap();
    assert_eq!(lag(&sim, "n1"), 0);
    assert_eq!(lag(&sim, "n2"), 0);
    drop(sim);

    // Never caught up: LiteFS shows the largest i32.
    let sim = Sim::start_with(opts(&["n1", "n2"]).lease(None)).unwrap();
    assert_eq!(
        fs::read_to_string(sim.path("n2", ".lag")).unwrap(),
        "+2147483647\n"
    );
    sim.set_lease(Some("n1")).unwrap();
    assert_eq!(lag(&sim, "n2"), 0);
}

#[test]
fn lost_primary_keeps_primary_openable_but_read_says_enoent() {
    require_fuse!();
    let sim = start(&["n1", "n2", "n3"]);
    assert_eq!(fs::read_to_string(sim.path("n2", ".primary")).unwrap(), "n1\n");
    sim.set_lease(None).unwrap();
    // n2 has looked `.primary` up: it opens, but stat and read say ENOENT.
    let mut f = fs::File::open(sim.path("n2", ".primary")).expect("cached .primary opens");
    let mut s = String::new();
    assert_eq!(
        f.read_to_string(&mut s).unwrap_err().raw_os_error(),
        Some(libc::ENOENT)
    );
    assert_eq!(f.metadata().unwrap_err().raw_os_error(), Some(libc::ENOENT));
    assert_eq!(
        fs::metadata(sim.path("n2", ".primary"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::ENOENT)
    );
    assert!(!sim.path("n2", ".primary").exists());
    // Not listed either.
    let listed = fs::read_dir(sim.mount("n2"))
        .unwrap()
        .any(|e| e.unwrap().file_name() == ".primary");
    assert!(!listed);
    // n3 never looked it up: plain ENOENT at open. n1 was the primary.
    for n in ["n1", "n3"] {
        assert_eq!(
            fs::File::open(sim.path(n, ".primary"))
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ENOENT),
            "{n}"
        );
    }
    // Reconnected: the same handle reads the new primary.
    sim.set_lease(Some("n3")).unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "n3\n");
}
