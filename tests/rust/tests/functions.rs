//! The SQL functions: values, errors, DIRECTONLY.

mod common;
use common::*;

fn one<T: rusqlite::types::FromSql>(c: &rusqlite::Connection, sql: &str) -> rusqlite::Result<T> {
    c.query_row(sql, [], |r| r.get(0))
}

#[test]
fn values_follow_the_role() {
    let m = Mount::new("fn");
    let c = m.open("app.db");
    assert_eq!(one::<i64>(&c, "SELECT litefs_is_primary()").unwrap(), 1);
    assert_eq!(
        one::<Option<String>>(&c, "SELECT litefs_primary()").unwrap(),
        None
    );
    m.make_replica("node-b.internal");
    assert_eq!(one::<i64>(&c, "SELECT litefs_is_primary()").unwrap(), 0);
    assert_eq!(
        one::<Option<String>>(&c, "SELECT litefs_primary()")
            .unwrap()
            .as_deref(),
        Some("node-b.internal")
    );
    let cfg: String = one(&c, "SELECT litefs_config()").unwrap();
    for needle in [
        format!("\"mount_dir\":\"{}\"", m.dir.display()),
        "\"marker\":\"replica\"".into(),
        "\"config_file\":null".into(),
        "\"is_primary\":false".into(),
        "\"primary\":\"node-b.internal\"".into(),
        "\"vfs\":true".into(),
    ] {
        assert!(cfg.contains(&needle), "{needle} not in {cfg}");
    }
}

#[test]
fn wrong_arguments_are_clear_errors() {
    let m = Mount::new("fnargs");
    let c = m.open("app.db");
    let e = one::<i64>(&c, "SELECT litefs_is_primary(1)").unwrap_err();
    assert!(
        e.to_string()
            .contains("litefs_is_primary() takes no arguments, got 1"),
        "{e}"
    );
    let e = one::<String>(&c, "SELECT litefs_primary('/etc/passwd')").unwrap_err();
    assert!(
        e.to_string().contains("litefs_primary() takes no arguments"),
        "{e}"
    );
    let e = one::<String>(&c, "SELECT litefs_config('toml')").unwrap_err();
    assert!(e.to_string().contains("unknown format \"toml\""), "{e}");
    let e = one::<String>(&c, "SELECT litefs_config(1)").unwrap_err();
    assert!(e.to_string().contains("must be text"), "{e}");
    let e = one::<String>(&c, "SELECT litefs_config('json', 2)").unwrap_err();
    assert!(e.to_string().contains("at most one argument"), "{e}");
    let e = one::<String>(&c, "SELECT litefs_config('yaml')").unwrap_err();
    assert!(e.to_string().contains("no litefs.yml was found"), "{e}");
}

#[test]
fn functions_are_direct_only() {
    let m = Mount::new("fndirect");
    let c = m.open("app.db");
    c.execute_batch(
        "CREATE TABLE t(x); CREATE TABLE seen(v);
         CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN INSERT INTO seen VALUES (litefs_is_primary()); END;
         CREATE VIEW v AS SELECT litefs_primary() AS p;",
    )
    .unwrap();
    let e = c.execute("INSERT INTO t VALUES (1)", []).unwrap_err();
    assert!(e.to_string().contains("unsafe use of litefs_is_primary()"), "{e}");
    let e = one::<Option<String>>(&c, "SELECT p FROM v").unwrap_err();
    assert!(e.to_string().contains("unsafe use of litefs_primary()"), "{e}");
}

#[test]
fn memory_database_without_mount_names_the_fix() {
    load_guard();
    let c = rusqlite::Connection::open_in_memory().unwrap();
    let e = one::<i64>(&c, "SELECT litefs_is_primary()").unwrap_err();
    assert!(e.to_string().contains("LITEFS_GUARD_DIR"), "{e}");
    // Memory databases are never guarded.
    c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
        .unwrap();
}

#[test]
fn connections_keep_opening_after_load_in_many_threads() {
    let m = Mount::new("fnthreads");
    m.open("app.db").execute_batch("CREATE TABLE t(x)").unwrap();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let p = m.db("app.db");
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let c = rusqlite::Connection::open(&p).unwrap();
                    c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
                    c.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
                    let p: i64 = c
                        .query_row("SELECT litefs_is_primary()", [], |r| r.get(0))
                        .unwrap();
                    assert_eq!(p, 1);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(count(&m.open("app.db"), "t"), 200);
}

#[test]
fn loading_again_while_a_statement_runs_leaves_the_connection_guarded() {
    let m = Mount::new("reload");
    let c = m.open("app.db");
    c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2)")
        .unwrap();
    let mut st = c.prepare("SELECT x FROM t").unwrap();
    let mut rows = st.query([]).unwrap();
    assert!(rows.next().unwrap().is_some());
    // SAFETY: loading our own extension again, on purpose.
    let second = unsafe {
        c.load_extension_enable().unwrap();
        c.load_extension(so_path(), None::<&str>)
    };
    drop(rows);
    drop(st);
    // Whether or not the second load could replace the functions (a running
    // statement makes SQLite refuse), the guard keeps working.
    let _ = second;
    c.execute("INSERT INTO t VALUES (3)", []).unwrap();
    m.make_replica("node-b");
    std::thread::sleep(std::time::Duration::from_millis(150));
    assert!(is_refusal(
        &c.execute("INSERT INTO t VALUES (4)", []).unwrap_err()
    ));
    assert_eq!(one::<i64>(&c, "SELECT litefs_is_primary()").unwrap(), 0);
}
