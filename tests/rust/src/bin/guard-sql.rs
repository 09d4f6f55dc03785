//! Runs SQL in a fresh process with the guard loaded under the inherited
//! environment (settings are read once per process, so tests that vary
//! LITEFS_GUARD_* run this). Usage: `guard-sql SO DB SQL...`; prints one line
//! per statement: `ok <first column of each row, joined by |>` or
//! `err <code> <message>`. A failed load prints `load-error <message>`.
//! SO `-` loads nothing: stock SQLite, for fixtures and controls (once the
//! guard is loaded, every VFS of the process is guarded).

use rusqlite::Connection;

fn main() {
    let mut args = std::env::args().skip(1);
    let (so, db) = (args.next().expect("SO"), args.next().expect("DB"));
    if so != "-" {
        let c = Connection::open_in_memory().unwrap();
        // SAFETY: loading the extension under test.
        let loaded = unsafe {
            c.load_extension_enable().unwrap();
            c.load_extension(&so, None::<&str>)
        };
        if let Err(e) = loaded {
            println!("load-error {e}");
            return;
        }
    }
    let c = match Connection::open(&db) {
        Ok(c) => c,
        Err(e) => {
            println!("open-error {e}");
            return;
        }
    };
    for sql in args {
        let out = c.prepare(&sql).and_then(|mut st| {
            let mut rows = st.query([])?;
            let mut vals = Vec::new();
            while let Some(r) = rows.next()? {
                vals.push(match r.get_ref(0)? {
                    rusqlite::types::ValueRef::Null => "NULL".to_string(),
                    rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                    rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    other => format!("{other:?}"),
                });
            }
            Ok(vals.join("|"))
        });
        match out {
            Ok(v) => println!("ok {v}"),
            Err(rusqlite::Error::SqliteFailure(f, m)) => {
                println!("err {} {}", f.extended_code, m.unwrap_or_default())
            }
            Err(e) => println!("err ? {e}"),
        }
    }
}
