//! A replica holding LiteFS's halt lock may write (LiteFS forwards the
//! change to the primary); the guard must allow it, and only while held.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn replica_may_write_while_another_process_holds_the_halt_lock() {
    let m = Mount::new("halt");
    let c = m.open("app.db");
    c.execute_batch("CREATE TABLE t(x)").unwrap();
    m.make_replica("node-a");
    assert!(is_refusal(
        &c.execute("INSERT INTO t VALUES (1)", []).unwrap_err()
    ));

    let mut holder = Command::new(env!("CARGO_BIN_EXE_halt-holder"))
        .arg(m.db("app.db"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");

    c.execute("INSERT INTO t VALUES (2)", []).unwrap();
    let cfg: String = c.query_row("SELECT litefs_config()", [], |r| r.get(0)).unwrap();
    assert!(
        cfg.contains("\"halt_lock\":true") && cfg.contains("\"is_primary\":false"),
        "{cfg}"
    );

    drop(holder.stdin.take());
    holder.wait().unwrap();
    assert!(is_refusal(
        &c.execute("INSERT INTO t VALUES (3)", []).unwrap_err()
    ));
    assert_eq!(count(&c, "t"), 1);
}

#[test]
fn a_lock_on_another_byte_is_not_the_halt_lock() {
    let m = Mount::new("halt-other");
    let c = m.open("app.db");
    c.execute_batch("CREATE TABLE t(x)").unwrap();
    m.make_replica("node-a");
    // An unrelated lock file content/bytes: nothing held at byte 72.
    std::fs::write(m.db("app.db-lock"), b"").unwrap();
    assert!(is_refusal(
        &c.execute("INSERT INTO t VALUES (1)", []).unwrap_err()
    ));
}

#[test]
fn checking_the_halt_lock_never_releases_this_process_s_own_lock() {
    let m = Mount::new("halt-own");
    let c = m.open("app.db");
    c.execute_batch("CREATE TABLE t(x)").unwrap();
    m.make_replica("node-a");
    // The application itself holds the halt lock (litefs-go's WithHalt does
    // this in-process). Closing any descriptor of the file would drop it.
    let lock = litefs_guard_tests::take_halt_lock(&m.db("app.db")).unwrap();
    for i in 0..3 {
        c.execute("INSERT INTO t VALUES (?1)", [i])
            .unwrap_or_else(|e| panic!("write {i} with our own halt lock held: {e}"));
    }
    drop(lock);
    assert!(is_refusal(
        &c.execute("INSERT INTO t VALUES (9)", []).unwrap_err()
    ));
}
