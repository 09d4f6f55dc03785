//! The position functions on a SQLite new enough (3.41+, rusqlite's bundled
//! one) for `sqlite3_is_interrupted`: an interrupt ends a wait at once. The
//! rest is covered through Python's sqlite3 in tests/python/test_positions.py.

mod common;
use common::*;
use rusqlite::ErrorCode;
use std::time::{Duration, Instant};

fn write_pos(m: &Mount, txid: u64) {
    std::fs::write(
        m.dir.join("app.db-pos"),
        format!("{txid:016x}/{:016x}\n", 0x83b0_5248_774c_e767_u64),
    )
    .unwrap();
}

#[test]
fn an_interrupt_ends_a_wait_at_once() {
    let m = Mount::new("pos-int");
    let c = m.open("app.db");
    write_pos(&m, 0x27);
    let version: String = c.query_row("SELECT sqlite_version()", [], |r| r.get(0)).unwrap();
    assert!(rusqlite::version_number() >= 3_041_000, "{version}");
    let h = c.get_interrupt_handle();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        h.interrupt();
    });
    let start = Instant::now();
    let e = c
        .query_row("SELECT litefs_wait_txid(1000, 10000)", [], |r| r.get::<_, i64>(0))
        .unwrap_err();
    let took = start.elapsed();
    t.join().unwrap();
    assert_eq!(code(&e), Some(ErrorCode::OperationInterrupted), "{e}");
    assert!(e.to_string().contains("litefs_wait_txid(): interrupted"), "{e}");
    assert!(
        took >= Duration::from_millis(95) && took < Duration::from_millis(150),
        "{took:?}"
    );
    // The connection is usable afterwards.
    let got: i64 = c
        .query_row("SELECT litefs_wait_txid(0x27, 0)", [], |r| r.get(0))
        .unwrap();
    assert_eq!(got, 1);
}

#[test]
fn waits_see_the_position_advance_and_time_out_on_the_bound() {
    let m = Mount::new("pos-wait");
    let c = m.open("app.db");
    write_pos(&m, 1);
    let pos: String = c.query_row("SELECT litefs_position()", [], |r| r.get(0)).unwrap();
    assert_eq!(pos, "0000000000000001/83b05248774ce767");
    let dir = m.dir.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(80));
        std::fs::write(dir.join("app.db-pos"), "0000000000000002/0000000000000000\n").unwrap();
    });
    let start = Instant::now();
    let got: i64 = c
        .query_row("SELECT litefs_wait_txid(2, 5000)", [], |r| r.get(0))
        .unwrap();
    t.join().unwrap();
    assert_eq!(got, 1);
    assert!(
        start.elapsed() < Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );
    for bound in [0u64, 30, 300] {
        let start = Instant::now();
        let got: i64 = c
            .query_row("SELECT litefs_wait_txid(3, ?1)", [bound as i64], |r| r.get(0))
            .unwrap();
        let took = start.elapsed().as_millis() as i64;
        assert_eq!(got, 0);
        assert!(
            (took - bound as i64).abs() <= 50,
            "bound {bound} ms, took {took} ms"
        );
    }
}

#[test]
fn a_wait_inside_a_read_transaction_fails_at_once() {
    let m = Mount::new("pos-txn");
    let c = m.open("app.db");
    write_pos(&m, 1);
    c.execute_batch("CREATE TABLE t(x); BEGIN; SELECT * FROM t;")
        .unwrap();
    let start = Instant::now();
    let e = c
        .query_row("SELECT litefs_wait_txid(5, 5000)", [], |r| r.get::<_, i64>(0))
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(50));
    assert!(
        e.to_string()
            .contains("called inside a transaction that holds a read lock on main"),
        "{e}"
    );
    c.execute_batch("COMMIT").unwrap();
}
