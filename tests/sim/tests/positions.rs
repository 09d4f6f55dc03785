//! The position functions on the sim's real FUSE mounts: `litefs_txid()`
//! and `litefs_position()` advance with commits, on the primary and on a
//! replica; `litefs_wait_txid()` on a replica returns once the primary
//! commits; `litefs_lag_ms()` reads the sim's `.lag`. The guard is loaded into
//! this test process with default settings.

mod common;
mod scenarios;

use std::sync::Once;
use std::time::{Duration, Instant};

use common::start;
use litefs_sim::harness::Sim;
use rusqlite::Connection;
use scenarios::{load_guard, so_path};

static GUARD: Once = Once::new();

fn open(sim: &Sim, node: &str) -> Connection {
    GUARD.call_once(|| load_guard(&so_path()));
    let c = Connection::open(sim.path(node, "app.db")).unwrap();
    c.busy_timeout(Duration::from_secs(2)).unwrap();
    c
}

fn txid(c: &Connection) -> i64 {
    c.query_row("SELECT litefs_txid()", [], |r| r.get(0)).unwrap()
}

fn position(c: &Connection) -> String {
    c.query_row("SELECT litefs_position()", [], |r| r.get(0)).unwrap()
}

fn lag(c: &Connection) -> Option<i64> {
    c.query_row("SELECT litefs_lag_ms()", [], |r| r.get(0)).unwrap()
}

#[test]
fn positions_advance_with_commits_and_lag_follows_the_lease() {
    require_fuse!();
    let sim = start(&["n1", "n2"]);
    let w = open(&sim, "n1");
    w.execute_batch("CREATE TABLE t(x)").unwrap();
    let r = open(&sim, "n2");
    let mut last = txid(&w);
    for i in 0..5 {
        w.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
        let now = txid(&w);
        assert!(now > last, "commit {i}: TXID {now} after {last}");
        last = now;
        // Exactly the file's text, without its newline, on both nodes.
        let file = std::fs::read_to_string(sim.path("n1", "app.db-pos")).unwrap();
        assert_eq!(format!("{}\n", position(&w)), file);
        assert_eq!(position(&r), position(&w));
        assert_eq!(i64::from_str_radix(&file[..16], 16).unwrap(), now);
        assert_eq!(txid(&r), now);
    }

    // A replica waits for the primary's next commit.
    let target = last + 1;
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        w.execute("INSERT INTO t VALUES (99)", []).unwrap();
        w
    });
    let start_wait = Instant::now();
    let got: i64 = r
        .query_row("SELECT litefs_wait_txid(?1, 5000)", [target], |row| row.get(0))
        .unwrap();
    let took = start_wait.elapsed();
    let w = writer.join().unwrap();
    assert_eq!(got, 1);
    assert!(
        took >= Duration::from_millis(140) && took < Duration::from_millis(1000),
        "{took:?}"
    );
    let bookmark = position(&w);
    let got: i64 = r
        .query_row("SELECT litefs_wait_txid(?1, 0)", [&bookmark], |row| row.get(0))
        .unwrap();
    assert_eq!(got, 1);
    let got: i64 = r
        .query_row("SELECT litefs_wait_txid(?1, 100)", [txid(&w) + 1], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(got, 0);

    // `.lag`: 0 while a primary holds the lease; never caught up without one.
    assert_eq!(lag(&w), Some(0));
    assert_eq!(lag(&r), Some(0));
    sim.set_lease(None).unwrap();
    assert_eq!(lag(&w), None);
    assert_eq!(lag(&r), None);
    sim.set_lease(Some("n1")).unwrap();
    assert_eq!(lag(&r), Some(0));
}
