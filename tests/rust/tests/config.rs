//! litefs.yml drives the guard: the mount comes from `fuse.dir`, the strict
//! FUSE check is on by default, a file the guard cannot use stops loading
//! with its location; what only LiteFS checks is reported, not fatal.
//! Each case runs in a fresh process (settings are read once per process).

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// Runs `guard-sql` with the given environment; returns its output lines.
fn run(env: &[(&str, &str)], db: &Path, sql: &[&str]) -> Vec<String> {
    run_in(&std::env::temp_dir(), env, db, sql)
}

/// `run` in working directory `cwd`.
fn run_in(cwd: &Path, env: &[(&str, &str)], db: &Path, sql: &[&str]) -> Vec<String> {
    // The database exists, as it does on a LiteFS node: creating one where
    // the node may not write is refused at open.
    if !db.exists() && db.parent().is_some_and(Path::exists) {
        std::fs::write(db, b"").unwrap();
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_guard-sql"));
    cmd.arg(so_path()).arg(db).args(sql).current_dir(cwd);
    for (k, _) in std::env::vars() {
        if k.starts_with("LITEFS_GUARD") {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", std::env::temp_dir().join("lfg-no-home"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_config(dir: &Path, mount: &Path, extra: &str) -> std::path::PathBuf {
    let p = dir.join("litefs.yml");
    std::fs::write(
        &p,
        format!(
            "fuse:\n  dir: \"{}\"\ndata:\n  dir: \"/var/lib/litefs\"\nlease:\n  type: \"static\"\n  candidate: true\n  advertise-url: \"http://primary:20202\"\n{extra}",
            mount.display()
        ),
    )
    .unwrap();
    p
}

#[test]
fn mount_comes_from_fuse_dir_and_strict_fuse_check_is_on_by_default() {
    let m = Mount::new("cfg-strict");
    let cfg = write_config(&m.dir, &m.dir, "");
    let env = [("LITEFS_GUARD_CONFIG", cfg.to_str().unwrap())];
    let out = run(
        &env,
        &m.db("app.db"),
        &[
            "SELECT json_extract(litefs_config(), '$.mount_dir')",
            "SELECT json_extract(litefs_config(), '$.mount_source')",
            "SELECT json_extract(litefs_config(), '$.config_file')",
            "SELECT json_extract(litefs_config(), '$.require_fuse')",
            "SELECT json_extract(litefs_config(), '$.litefs.fuse.dir')",
            "SELECT json_extract(litefs_config(), '$.role')",
            "CREATE TABLE t(x)",
            "SELECT litefs_is_primary()",
        ],
    );
    let dir = m.dir.display().to_string();
    assert_eq!(out[0], format!("ok {dir}"));
    assert_eq!(out[1], "ok litefs.yml");
    assert_eq!(out[2], format!("ok {}", cfg.display()));
    assert_eq!(out[3], "ok 1");
    assert_eq!(out[4], format!("ok {dir}"));
    // A plain directory is not LiteFS's FUSE mount: writing there could
    // create a local database that LiteFS later hides.
    assert_eq!(out[5], "ok not_running");
    // CREATE TABLE is refused by the lock gate (SQLITE_READONLY).
    assert!(out[6].starts_with("err 8 "), "{}", out[6]);
    assert!(out[7].contains("is not a FUSE mount"), "{}", out[7]);
}

#[test]
fn with_fuse_check_off_the_config_mount_is_guarded_by_the_marker() {
    let m = Mount::new("cfg-marker");
    let cfg = write_config(&m.dir, &m.dir, "");
    let env = [
        ("LITEFS_GUARD_CONFIG", cfg.to_str().unwrap()),
        ("LITEFS_GUARD_REQUIRE_FUSE", "0"),
    ];
    let out = run(
        &env,
        &m.db("app.db"),
        &[
            "CREATE TABLE t(x)",
            "INSERT INTO t VALUES (1)",
            "SELECT litefs_is_primary()",
        ],
    );
    assert_eq!(out, ["ok ", "ok ", "ok 1"]);
    m.make_replica("node-b");
    let out = run(
        &env,
        &m.db("app.db"),
        &[
            "INSERT INTO t VALUES (2)",
            "SELECT litefs_primary()",
            "SELECT count(*) FROM t",
        ],
    );
    assert!(out[0].starts_with("err 23 "), "{}", out[0]);
    assert_eq!(out[1..], ["ok node-b", "ok 1"]);
}

#[test]
fn databases_outside_fuse_dir_are_not_guarded() {
    let m = Mount::new("cfg-mount");
    let elsewhere = Mount::new("cfg-elsewhere");
    let cfg = write_config(&m.dir, &m.dir, "");
    elsewhere.make_replica("node-b");
    let env = [
        ("LITEFS_GUARD_CONFIG", cfg.to_str().unwrap()),
        ("LITEFS_GUARD_REQUIRE_FUSE", "0"),
    ];
    let out = run(
        &env,
        &elsewhere.db("local.db"),
        &["CREATE TABLE t(x)", "INSERT INTO t VALUES (1)"],
    );
    assert_eq!(out, ["ok ", "ok "]);
}

#[test]
fn litefs_guard_dir_wins_over_the_config() {
    let m = Mount::new("cfg-env-wins");
    let other = Mount::new("cfg-env-dir");
    let cfg = write_config(&m.dir, &m.dir, "");
    let env = [
        ("LITEFS_GUARD_CONFIG", cfg.to_str().unwrap()),
        ("LITEFS_GUARD_DIR", other.dir.to_str().unwrap()),
        // A plain directory stands in for the mount.
        ("LITEFS_GUARD_REQUIRE_FUSE", "0"),
    ];
    let out = run(
        &env,
        &other.db("app.db"),
        &[
            "SELECT json_extract(litefs_config(), '$.mount_source')",
            "SELECT json_extract(litefs_config(), '$.require_fuse')",
            "CREATE TABLE t(x)",
        ],
    );
    assert_eq!(out, ["ok LITEFS_GUARD_DIR", "ok 0", "ok "]);
}

#[test]
fn litefs_guard_dir_requires_fuse_by_default() {
    // LiteFS is always FUSE: a plain directory at LITEFS_GUARD_DIR means
    // LiteFS is down, and a write there would create a local database.
    let m = Mount::new("env-strict");
    let dir = m.dir.to_str().unwrap();
    let out = run(
        &[("LITEFS_GUARD_DIR", dir)],
        &m.db("app.db"),
        &[
            "SELECT json_extract(litefs_config(), '$.require_fuse')",
            "SELECT json_extract(litefs_config(), '$.role')",
            "CREATE TABLE t(x)",
            "SELECT count(*) FROM sqlite_schema",
            "SELECT json_extract(litefs_config(), '$.reason')",
            "SELECT litefs_is_primary()",
        ],
    );
    assert_eq!(out[..2], ["ok 1", "ok not_running"]);
    // CREATE TABLE is refused by the lock gate (SQLITE_READONLY).
    assert!(out[2].starts_with("err 8 "), "{}", out[2]);
    assert_eq!(out[3], "ok 0");
    // Why, as litefs_config() and the functions (and the Python/Django
    // helpers, from them) report it.
    let why = format!("LiteFS is not running: {dir} is not a FUSE mount");
    assert!(out[4].starts_with(&format!("ok {why}")), "{}", out[4]);
    assert!(out[5].starts_with("err ") && out[5].contains(&why), "{}", out[5]);
    assert_eq!(
        std::fs::metadata(m.db("app.db")).map(|md| md.len()).unwrap_or(0),
        0
    );
    // An explicit opt-out restores the plain-directory behaviour.
    let out = run(
        &[("LITEFS_GUARD_DIR", dir), ("LITEFS_GUARD_REQUIRE_FUSE", "0")],
        &m.db("app.db"),
        &["CREATE TABLE t(x)", "SELECT litefs_is_primary()"],
    );
    assert_eq!(out, ["ok ", "ok 1"]);
}

#[test]
fn a_broken_litefs_yml_in_the_working_directory_does_not_stop_loading_when_litefs_guard_dir_is_set() {
    let m = Mount::new("env-broken-cwd");
    let cwd = Mount::new("env-broken-cwd-wd");
    std::fs::write(cwd.dir.join("litefs.yml"), "fuse:\n  dir: [not, a, path\n").unwrap();
    // Without LITEFS_GUARD_DIR the mount would come from that file: loading fails.
    let out = run_in(&cwd.dir, &[], &m.db("app.db"), &["SELECT 1"]);
    assert!(
        out[0].starts_with("load-error") && out[0].contains("litefs.yml"),
        "{out:?}"
    );
    let env = [
        ("LITEFS_GUARD_DIR", m.dir.to_str().unwrap()),
        ("LITEFS_GUARD_REQUIRE_FUSE", "0"),
    ];
    let out = run_in(
        &cwd.dir,
        &env,
        &m.db("app.db"),
        &[
            "SELECT json_extract(litefs_config(), '$.mount_source')",
            "CREATE TABLE t(x)",
        ],
    );
    assert_eq!(out, ["ok LITEFS_GUARD_DIR", "ok "]);
    // A file named by LITEFS_GUARD_CONFIG still has to load.
    let named = cwd.dir.join("litefs.yml");
    let env = [
        ("LITEFS_GUARD_DIR", m.dir.to_str().unwrap()),
        ("LITEFS_GUARD_CONFIG", named.to_str().unwrap()),
    ];
    let out = run_in(&cwd.dir, &env, &m.db("app.db"), &["SELECT 1"]);
    assert!(out[0].starts_with("load-error"), "{out:?}");
}

#[test]
fn yaml_rendering_is_available_and_hides_secrets() {
    let m = Mount::new("cfg-yaml");
    let cfg = write_config(
        &m.dir,
        &m.dir,
        "backup:\n  type: \"litefs-cloud\"\n  auth-token: \"s3cr3t-token\"\n",
    );
    let env = [("LITEFS_GUARD_CONFIG", cfg.to_str().unwrap())];
    let out = run(
        &env,
        &m.db("app.db"),
        &["SELECT litefs_config('yaml')", "SELECT litefs_config()"],
    );
    assert!(out[0].starts_with("ok fuse:"), "{out:?}");
    let all = out.join("\n");
    assert!(!all.contains("s3cr3t-token"), "secret leaked: {all}");
}

#[test]
fn a_config_the_guard_cannot_use_stops_loading_with_file_line_and_reason() {
    let m = Mount::new("cfg-bad");
    let p = m.dir.join("litefs.yml");
    // Only LiteFS cares about the lease type: the guard loads, takes its
    // mount from fuse.dir and reports the problem.
    std::fs::write(
        &p,
        "fuse:\n  dir: \"/litefs\"\ndata:\n  dir: \"/var/lib/litefs\"\nlease:\n  type: \"raft\"\n",
    )
    .unwrap();
    let out = run(
        &[("LITEFS_GUARD_CONFIG", p.to_str().unwrap())],
        &m.db("app.db"),
        &[
            "SELECT json_extract(litefs_config(), '$.mount_dir')",
            "SELECT json_extract(litefs_config(), '$.config_problems[0]')",
        ],
    );
    assert_eq!(out[0], "ok /litefs", "{out:?}");
    assert!(
        out[1].starts_with(&format!("ok {}:6:9: lease.type", p.display())) && out[1].contains("raft"),
        "{}",
        out[1]
    );

    // A relative fuse.dir is the guard's own business: loading fails.
    std::fs::write(
        &p,
        "fuse:\n  dir: \"litefs\"\ndata:\n  dir: \"/var/lib/litefs\"\nlease:\n  type: \"static\"\n",
    )
    .unwrap();
    let out = run(
        &[("LITEFS_GUARD_CONFIG", p.to_str().unwrap())],
        &m.db("app.db"),
        &[],
    );
    assert_eq!(out.len(), 1);
    assert!(
        out[0].starts_with("load-error") && out[0].contains("litefs_guard: "),
        "{}",
        out[0]
    );
    assert!(
        out[0].contains(p.to_str().unwrap()) && out[0].contains("fuse.dir"),
        "{}",
        out[0]
    );

    std::fs::write(&p, "fuse:\n  dir: [unclosed\n").unwrap();
    let out = run(
        &[("LITEFS_GUARD_CONFIG", p.to_str().unwrap())],
        &m.db("app.db"),
        &[],
    );
    assert!(
        out[0].contains(&format!("{}:", p.display())),
        "line/column: {}",
        out[0]
    );

    let out = run(
        &[("LITEFS_GUARD_CONFIG", "/nonexistent/litefs.yml")],
        &m.db("app.db"),
        &[],
    );
    assert!(
        out[0].starts_with("load-error") && out[0].contains("/nonexistent/litefs.yml"),
        "{}",
        out[0]
    );
}

#[test]
fn bad_settings_stop_loading_and_name_the_variable() {
    let m = Mount::new("cfg-env");
    for (k, v, needle) in [
        (
            "LITEFS_GUARD_MARKER",
            "leader",
            "LITEFS_GUARD_MARKER=\"leader\" is not valid",
        ),
        (
            "LITEFS_GUARD_DIR",
            "litefs",
            "LITEFS_GUARD_DIR=\"litefs\" is not valid: the path must be absolute",
        ),
        (
            "LITEFS_GUARD_DIR",
            "/litefs/../etc",
            "must not contain a \"..\" component",
        ),
        (
            "LITEFS_GUARD_IMMEDIATE",
            "maybe",
            "LITEFS_GUARD_IMMEDIATE=\"maybe\" is not valid: use 1 or 0",
        ),
        ("LITEFS_GUARD_WAL", "2", "LITEFS_GUARD_WAL=\"2\" is not valid"),
        (
            "LITEFS_GUARD_REQUIRE_FUSE",
            "yes please",
            "LITEFS_GUARD_REQUIRE_FUSE=\"yes please\"",
        ),
    ] {
        let out = run(&[(k, v)], &m.db("app.db"), &["SELECT 1"]);
        assert!(
            out[0].starts_with("load-error") && out[0].contains("litefs_guard: ") && out[0].contains(needle),
            "{k}={v}: {out:?}"
        );
    }
}
