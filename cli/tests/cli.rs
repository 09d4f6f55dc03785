//! The built `litefs-guard` binary, run as a user would: exit statuses,
//! output, and the properties of `config init`. Every test works in a
//! temporary directory of its own (working directory and `$HOME`), with no
//! LITEFS_GUARD_* variable from the caller's environment.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_litefs-guard");

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/configs")
}

struct Place {
    dir: tempfile::TempDir,
}

impl Place {
    fn new() -> Place {
        let dir = tempfile::Builder::new()
            .prefix("litefs-guard-cli-test-")
            .tempdir()
            .unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        std::fs::create_dir(dir.path().join("cwd")).unwrap();
        Place { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn cmd(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).current_dir(self.path("cwd"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("LITEFS_GUARD_") {
                c.env_remove(k);
            }
        }
        c.env("HOME", self.path("home"));
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.cmd(args, env).output().unwrap()
    }

    fn run_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .cmd(args, &[])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        out(o),
        err(o)
    )
}

/// A plain directory standing in for the mount (FUSE not required).
fn mount_env(p: &Place, mount: &Path) -> Vec<(String, String)> {
    let _ = p;
    vec![
        ("LITEFS_GUARD_DIR".into(), mount.display().to_string()),
        ("LITEFS_GUARD_REQUIRE_FUSE".into(), "0".into()),
    ]
}

fn status(p: &Place, env: &[(String, String)], args: &[&str]) -> Output {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut a = vec!["status"];
    a.extend_from_slice(args);
    p.run(&a, &env)
}

#[test]
fn status_exit_codes_primary_replica_not_running_outside() {
    let p = Place::new();
    let mount = p.path("litefs");
    std::fs::create_dir(&mount).unwrap();
    let env = mount_env(&p, &mount);
    let db = mount.join("app.db");
    let db = db.to_str().unwrap();

    // Primary: no .primary.
    let o = status(&p, &env, &["--db", db]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(out(&o).contains("role:           primary\n"), "{}", show(&o));
    assert!(out(&o).contains(&format!(
        "mount:          {} (from LITEFS_GUARD_DIR)",
        mount.display()
    )));
    let o = status(&p, &env, &[]);
    assert_eq!(code(&o), 0, "{}", show(&o));

    // An existing, writable database on the primary.
    std::fs::write(mount.join("app.db"), b"").unwrap();
    let o = status(&p, &env, &["--db", db]);
    assert_eq!(code(&o), 0, "{}", show(&o));

    // Replica: .primary names the primary.
    std::fs::write(mount.join(".primary"), "node-b\n").unwrap();
    let o = status(&p, &env, &["--db", db]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(out(&o).contains("role:           replica\n"), "{}", show(&o));
    assert!(out(&o).contains("primary:        node-b\n"), "{}", show(&o));
    let o = status(&p, &env, &["--db", db, "--json"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["role"], "replica");
    assert_eq!(j["primary"], "node-b");
    assert_eq!(j["exit_code"], 1);
    assert_eq!(j["position"], serde_json::Value::Null);
    // Position and lag, as LiteFS writes them.
    std::fs::write(mount.join("app.db-pos"), "0000000000000027/83b05248774ce767\n").unwrap();
    std::fs::write(mount.join(".lag"), "+000000830\n").unwrap();
    let o = status(&p, &env, &["--db", db, "--json"]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["position"], "0000000000000027/83b05248774ce767");
    assert_eq!(j["lag_ms"], 830);
    let o = status(&p, &env, &["--db", db]);
    assert!(out(&o).contains("lag:            830 ms\n"), "{}", show(&o));
    std::fs::write(mount.join(".lag"), "+2147483647\n").unwrap();
    let o = status(&p, &env, &["--db", db, "--json"]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["lag_ms"], serde_json::Value::Null);
    std::fs::remove_file(mount.join(".lag")).unwrap();
    std::fs::remove_file(mount.join("app.db-pos")).unwrap();
    assert_eq!(j["guarded"], true);
    assert_eq!(j["database"], db);

    // Outside: a database outside the mount, whatever the mount's role.
    let outside = p.path("elsewhere.db");
    let o = status(&p, &env, &["--db", outside.to_str().unwrap()]);
    assert_eq!(code(&o), 3, "{}", show(&o));
    assert!(out(&o).contains("role:           outside\n"), "{}", show(&o));
    // A relative path is taken from the working directory.
    let o = status(&p, &env, &["--db", "app.db"]);
    assert_eq!(code(&o), 3, "{}", show(&o));
    let o = status(&p, &env, &["--db", "../litefs/app.db", "--json"]);
    assert_eq!(code(&o), 1, "{}", show(&o));

    // Not running: the mount is gone.
    std::fs::remove_dir_all(&mount).unwrap();
    let o = status(&p, &env, &["--db", db]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert!(out(&o).contains("role:           not_running\n"), "{}", show(&o));
    assert!(out(&o).contains("LiteFS is not running"), "{}", show(&o));
    let o = status(&p, &env, &["--json"]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["role"], "not_running");
}

#[test]
fn status_requires_fuse_by_default_when_a_mount_is_configured() {
    let p = Place::new();
    let mount = p.path("litefs");
    std::fs::create_dir(&mount).unwrap();
    let env = vec![("LITEFS_GUARD_DIR".to_string(), mount.display().to_string())];
    let o = status(&p, &env, &[]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert!(out(&o).contains("is not a FUSE mount"), "{}", show(&o));
}

#[test]
fn status_takes_the_mount_from_litefs_yml_like_the_extension() {
    let p = Place::new();
    let mount = p.path("litefs");
    std::fs::create_dir(&mount).unwrap();
    std::fs::write(
        p.path("cwd/litefs.yml"),
        format!(
            "fuse:\n  dir: \"{}\"\ndata:\n  dir: /var/lib/litefs\nlease:\n  type: static\n",
            mount.display()
        ),
    )
    .unwrap();
    let env = vec![("LITEFS_GUARD_REQUIRE_FUSE".to_string(), "0".to_string())];
    let o = status(&p, &env, &["--json"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["mount_source"], "litefs.yml");
    assert_eq!(j["config_file"], p.path("cwd/litefs.yml").display().to_string());
    let o = status(&p, &env, &["--db", p.path("x.db").to_str().unwrap()]);
    assert_eq!(code(&o), 3, "{}", show(&o));
}

#[test]
fn status_with_unusable_settings_or_no_mount_exits_78() {
    let p = Place::new();
    let env = vec![("LITEFS_GUARD_MARKER".to_string(), "sideways".to_string())];
    let o = status(&p, &env, &[]);
    assert_eq!(code(&o), 78, "{}", show(&o));
    assert!(
        err(&o).contains("LITEFS_GUARD_MARKER=\"sideways\" is not valid"),
        "{}",
        show(&o)
    );
    // No mount configured and no database named: nothing to look at.
    // (An /etc/litefs.yml on this machine would configure one.)
    if !Path::new("/etc/litefs.yml").exists() {
        let o = status(&p, &[], &[]);
        assert_eq!(code(&o), 78, "{}", show(&o));
        assert!(err(&o).contains("no LiteFS mount is configured"), "{}", show(&o));
    }
}

#[test]
fn config_check_reports_every_bad_sample_with_its_position() {
    let p = Place::new();
    let mut seen = 0;
    for entry in std::fs::read_dir(configs()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".yml") {
            continue;
        }
        seen += 1;
        let file = path.to_str().unwrap();
        let env = [
            ("LITEFS_DIR", "/litefs"),
            ("LITEFS_DATA_DIR", "/var/lib/litefs"),
            ("HOSTNAME", "node-a"),
        ];
        let o = p.run(&["config", "check", file], &env);
        if name.starts_with("bad-") {
            assert_eq!(code(&o), 1, "{name}: {}", show(&o));
            let lines: Vec<&str> = std::str::from_utf8(&o.stdout).unwrap().lines().collect();
            assert!(!lines.is_empty(), "{name}");
            for line in lines {
                let rest = line
                    .strip_prefix(file)
                    .unwrap_or_else(|| panic!("{name}: {line}"));
                // An empty file has no position to point at.
                let positioned = rest
                    .strip_prefix(':')
                    .and_then(|r| r.split_once(':'))
                    .and_then(|(l, r)| Some((l.parse::<usize>().ok()?, r.split_once(": ")?)))
                    .and_then(|(_, (c, reason))| Some((c.parse::<usize>().ok()?, reason)));
                if name == "bad-empty.yml" {
                    assert!(rest.starts_with(": the file is empty"), "{line}");
                } else {
                    let (_, reason) = positioned.unwrap_or_else(|| panic!("{name}: no LINE:COL: {line}"));
                    assert!(!reason.is_empty(), "{line}");
                }
            }
        } else {
            assert_eq!(code(&o), 0, "{name}: {}", show(&o));
            assert_eq!(out(&o), format!("{file}: ok\n"));
        }
    }
    assert!(seen >= 10, "only {seen} samples");
}

#[test]
fn config_check_names_the_key_of_a_rule_violation() {
    let p = Place::new();
    let file = configs().join("bad-relative-dir.yml");
    let o = p.run(&["config", "check", file.to_str().unwrap()], &[]);
    assert_eq!(
        out(&o),
        format!(
            "{}:2:3: fuse.dir = \"litefs\": must be an absolute path; write the directory LiteFS mounts, e.g. \"/litefs\"\n",
            file.display()
        )
    );
    let o = p.run(&["config", "check", "--json", file.to_str().unwrap()], &[]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j[0]["key"], "fuse.dir");
    assert_eq!(
        (j[0]["line"].as_u64(), j[0]["column"].as_u64()),
        (Some(2), Some(3))
    );
}

#[test]
fn config_check_without_file_uses_the_guards_discovery() {
    let p = Place::new();
    std::fs::copy(configs().join("bad-url.yml"), p.path("home/litefs.yml")).unwrap();
    let o = p.run(&["config", "check"], &[]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(
        out(&o).starts_with(&format!("{}:", p.path("home/litefs.yml").display())),
        "{}",
        show(&o)
    );
    // ./litefs.yml comes first.
    std::fs::copy(configs().join("static.yml"), p.path("cwd/litefs.yml")).unwrap();
    let o = p.run(&["config", "check"], &[]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    // LITEFS_GUARD_CONFIG names the only file read.
    let named = configs().join("bad-duration.yml");
    let o = p.run(
        &["config", "check"],
        &[("LITEFS_GUARD_CONFIG", named.to_str().unwrap())],
    );
    assert_eq!(code(&o), 1, "{}", show(&o));
    let missing = p.path("missing.yml");
    let o = p.run(
        &["config", "check"],
        &[("LITEFS_GUARD_CONFIG", missing.to_str().unwrap())],
    );
    assert_eq!(code(&o), 1, "{}", show(&o));
}

#[test]
fn config_check_follows_the_expansion_switch() {
    let p = Place::new();
    let file = configs().join("minimal-env.yml");
    let env = [("LITEFS_DIR", "/litefs"), ("LITEFS_DATA_DIR", "/var/lib/litefs")];
    let o = p.run(&["config", "check", file.to_str().unwrap()], &env);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let mut verbatim = env.to_vec();
    verbatim.push(("LITEFS_GUARD_CONFIG_EXPAND_ENV", "0"));
    let o = p.run(&["config", "check", file.to_str().unwrap()], &verbatim);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(out(&o).contains("fuse.dir = \"${LITEFS_DIR}\""), "{}", show(&o));
}

#[test]
fn config_render_expands_and_redacts() {
    let p = Place::new();
    let file = configs().join("consul.yml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("s3cr3t"), "the sample carries a token");
    let o = p.run(&["config", "render", file.to_str().unwrap()], &[]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let yaml = out(&o);
    assert!(!yaml.contains("s3cr3t"), "{yaml}");
    assert!(
        yaml.contains("https://:xxxxx@consul.internal:8501/my-app/"),
        "{yaml}"
    );
    // The rendering is a valid file, and rendering it again changes nothing.
    let again = p.run_stdin(&["config", "render", "-"], &yaml);
    assert_eq!(code(&again), 0, "{}", show(&again));
    assert_eq!(out(&again), yaml);
    let check = p.run_stdin(&["config", "check", "-"], &yaml);
    assert_eq!(code(&check), 0, "{}", show(&check));

    let minimal = configs().join("minimal-env.yml");
    let env = [
        ("LITEFS_DIR", "/mnt/lfs"),
        ("LITEFS_DATA_DIR", "/var/lib/litefs"),
        ("HOSTNAME", "node-z"),
    ];
    let o = p.run(&["config", "render", minimal.to_str().unwrap()], &env);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(out(&o).contains("dir: \"/mnt/lfs\""), "{}", show(&o));
    assert!(out(&o).contains("hostname: \"node-z\""), "{}", show(&o));

    // A value of the wrong type leaves nothing to render.
    let o = p.run(
        &[
            "config",
            "render",
            configs().join("bad-lease-type.yml").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(out(&o).is_empty());
    assert!(err(&o).contains(":6:9: lease.type"), "{}", show(&o));
}

fn init(p: &Place, args: &[&str]) -> String {
    let mut a = vec!["config", "init"];
    a.extend_from_slice(args);
    let o = p.run(&a, &[]);
    assert_eq!(code(&o), 0, "{args:?}: {}", show(&o));
    out(&o)
}

#[test]
fn config_init_is_deterministic_checked_and_round_trips() {
    let p = Place::new();
    let cases: &[&[&str]] = &[
        &[],
        &[
            "--mount",
            "/data/litefs",
            "--data-dir",
            "/data/lfs",
            "--candidate",
            "true",
            "--advertise-url",
            "http://node-a:20202",
        ],
        &["--candidate", "false", "--hostname", "node-b"],
        &[
            "--lease",
            "consul",
            "--consul-url",
            "http://consul:8500",
            "--consul-key",
            "litefs/app",
            "--advertise-url",
            "http://node-a.internal:20202",
            "--proxy-addr",
            ":8080",
            "--proxy-target",
            "localhost:8000",
            "--proxy-db",
            "db.sqlite3",
            "--exec",
            "gunicorn app.wsgi",
        ],
        &[
            "--exec",
            "app migrate",
            "--exec",
            "app serve --addr :8081 --key ${KEY}",
        ],
    ];
    for args in cases {
        let yaml = init(&p, args);
        assert_eq!(init(&p, args), yaml, "{args:?}: twice the same");
        let file = p.path("cwd/generated.yml");
        std::fs::write(&file, &yaml).unwrap();
        let o = p.run(
            &["config", "check", file.to_str().unwrap()],
            &[("HOSTNAME", "other")],
        );
        assert_eq!(code(&o), 0, "{args:?}: {}", show(&o));
        // parse(render(x)) == x, seen from outside: rendering what was
        // parsed gives the same text, expanded (`$` is escaped) or not.
        let o = p.run(
            &["config", "render", file.to_str().unwrap()],
            &[("HOSTNAME", "other")],
        );
        assert_eq!(out(&o), yaml, "{args:?}");
        let o = p.run(
            &["config", "render", file.to_str().unwrap()],
            &[("LITEFS_GUARD_CONFIG_EXPAND_ENV", "0")],
        );
        assert_eq!(out(&o), yaml, "{args:?}");
    }
    let yaml = init(
        &p,
        &[
            "--lease",
            "consul",
            "--consul-key",
            "k",
            "--consul-url",
            "http://c:8500",
        ],
    );
    assert!(yaml.contains("type: \"consul\""), "{yaml}");
}

#[test]
fn config_from_json() {
    let p = Place::new();
    let json = r#"{"fuse": {"dir": "/litefs"}, "data": {"dir": "/var/lib/litefs"},
        "lease": {"type": "static", "candidate": true, "advertise-url": "http://node-a:20202"},
        "proxy": {"addr": ":8080", "target": "localhost:8000", "db": "db.sqlite3"},
        "exec": "gunicorn app.wsgi"}"#;
    let o = p.run_stdin(&["config", "init", "--from-json", "-"], json);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let from_flags = init(
        &p,
        &[
            "--candidate",
            "true",
            "--advertise-url",
            "http://node-a:20202",
            "--proxy-addr",
            ":8080",
            "--proxy-target",
            "localhost:8000",
            "--proxy-db",
            "db.sqlite3",
            "--exec",
            "gunicorn app.wsgi",
        ],
    );
    assert_eq!(out(&o), from_flags);
    let o = p.run_stdin(&["config", "check", "--from-json", "-"], json);
    assert_eq!(code(&o), 0, "{}", show(&o));

    let bad = r#"{"fuse": {"dir": "litefs"}, "data": {"dir": "/var/lib/litefs"}, "lease": {"type": "etcd"}}"#;
    let o = p.run_stdin(&["config", "check", "--from-json", "--json", "-"], bad);
    assert_eq!(code(&o), 1, "{}", show(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let keys: Vec<&str> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["lease.type", "fuse.dir"]);
    let o = p.run_stdin(&["config", "init", "--from-json", "-"], bad);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(out(&o).is_empty());
    let o = p.run_stdin(&["config", "check", "--from-json", "-"], "[1, 2]");
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(err(&o).contains("must be an object"), "{}", show(&o));
}

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    let p = Place::new();
    for args in [
        &["status", "--bogus"][..],
        &["status", "--db"][..],
        &["frobnicate"][..],
        &[][..],
        &["config"][..],
        &["config", "init", "--lease", "etcd"][..],
        &["config", "init", "--consul-key", "k"][..],
        &["config", "init", "--from-json", "-", "--mount", "/x"][..],
        &["config", "check", "--from-json"][..],
        &["config", "render", "a.yml", "b.yml"][..],
    ] {
        let o = p.run(args, &[]);
        assert_eq!(code(&o), 64, "{args:?}: {}", show(&o));
        // A missing subcommand shows the usage instead of a one-line error.
        assert!(
            err(&o).contains("error") || err(&o).contains("Usage:"),
            "{args:?}: {}",
            show(&o)
        );
        assert!(out(&o).is_empty(), "{args:?}");
    }
    for args in [
        &["--help"][..],
        &["status", "--help"][..],
        &["config", "--help"][..],
        &["config", "check", "--help"][..],
        &["config", "render", "--help"][..],
        &["config", "init", "--help"][..],
        &["help", "status"][..],
    ] {
        let o = p.run(args, &[]);
        assert_eq!(code(&o), 0, "{args:?}: {}", show(&o));
        assert!(out(&o).contains("Usage: litefs-guard"), "{args:?}: {}", show(&o));
    }
    let o = p.run(&["status", "--help"], &[]);
    assert!(out(&o).contains("3 the database is"), "{}", show(&o));
}

#[test]
fn the_binary_carries_no_sqlite() {
    let bytes = std::fs::read(BIN).unwrap();
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    // Strings every SQLite build has, and the library a dynamic link names.
    assert!(!has(b"SQLite format 3"));
    assert!(!has(b"libsqlite3.so"));
}
