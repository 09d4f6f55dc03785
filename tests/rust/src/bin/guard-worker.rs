//! A worker process for the multi-process contention test:
//! `guard-worker DB N (guard|stock)` runs N read-modify-write transactions
//! with plain BEGIN and prints "ok=<n> err=<n>".

use rusqlite::Connection;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (db, n, mode) = (&args[1], args[2].parse::<usize>().unwrap(), args[3].as_str());
    if mode == "guard" {
        let so = std::env::var("LITEFS_GUARD_SO").expect("LITEFS_GUARD_SO");
        let c = Connection::open_in_memory().unwrap();
        // SAFETY: loading the extension under test.
        unsafe {
            c.load_extension_enable().unwrap();
            c.load_extension(so, None::<&str>).unwrap();
        }
    }
    let c = Connection::open(db).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c.execute_batch("PRAGMA synchronous = OFF").unwrap();
    // Optionally wait for a start signal so all workers contend from the first transaction.
    if let Some(go) = std::env::var_os("GUARD_WORKER_GO") {
        while !std::path::Path::new(&go).exists() {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let (mut ok, mut err) = (0, 0);
    for _ in 0..n {
        match rmw(&c) {
            Ok(()) => ok += 1,
            Err(_) => {
                err += 1;
                let _ = c.execute_batch("ROLLBACK");
            }
        }
    }
    println!("ok={ok} err={err}");
}

fn rmw(c: &Connection) -> rusqlite::Result<()> {
    c.execute_batch("BEGIN")?;
    let v: i64 = c.query_row("SELECT v FROM counter WHERE id = 1", [], |r| r.get(0))?;
    c.execute("UPDATE counter SET v = ?1 WHERE id = 1", [v + 1])?;
    c.execute_batch("COMMIT")
}
