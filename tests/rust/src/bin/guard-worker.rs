//! A worker process for the contention tests:
//! `guard-worker DB N (guard|stock)` runs N read-modify-write transactions
//! with plain BEGIN on each of GUARD_WORKER_THREADS threads (default 1),
//! after GUARD_WORKER_PRAGMAS, and prints "ok=<n> err=<n>". `stock` loads
//! nothing: the stock control (in a process that loaded the guard, every
//! VFS is guarded).

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
    let threads: usize = std::env::var("GUARD_WORKER_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let pragmas = std::env::var("GUARD_WORKER_PRAGMAS").unwrap_or_else(|_| "PRAGMA synchronous = OFF".into());
    let conns: Vec<Connection> = (0..threads)
        .map(|_| {
            let c = Connection::open(db).unwrap();
            c.busy_timeout(Duration::from_secs(5)).unwrap();
            c.execute_batch(&pragmas).unwrap();
            c
        })
        .collect();
    // Optionally wait for a start signal so all workers contend from the first transaction.
    if let Some(go) = std::env::var_os("GUARD_WORKER_GO") {
        while !std::path::Path::new(&go).exists() {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let handles: Vec<_> = conns
        .into_iter()
        .map(|c| {
            std::thread::spawn(move || {
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
                (ok, err)
            })
        })
        .collect();
    let (ok, err) = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
    println!("ok={ok} err={err}");
}

fn rmw(c: &Connection) -> rusqlite::Result<()> {
    c.execute_batch("BEGIN")?;
    let v: i64 = c.query_row("SELECT v FROM counter WHERE id = 1", [], |r| r.get(0))?;
    c.execute("UPDATE counter SET v = ?1 WHERE id = 1", [v + 1])?;
    c.execute_batch("COMMIT")
}
