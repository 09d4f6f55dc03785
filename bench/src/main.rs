//! `make bench`: what litefs_guard costs, against stock SQLite (same
//! process, interleaved) and against Django's stock SQLite backend.
//!
//!   litefs-guard-bench [--reps N] [--scale F] [--only ID,ID] [--no-fuse]
//!                      [--no-django] [--out FILE] [--django-python PY] [--aa]
//!                      [--secs S] [--writers 2,8,32] [--mode threads,processes]
//!                      [--load request,back-to-back] [--place local,sim]
//!                      [--hold-ms 0.6] [--pause-ms 4]
//!
//! The second line is the contention table's (`contention-table`, see
//! bench/src/contention.rs): seconds per side per cell per repetition and
//! the cells to run. It runs `--reps` repetitions if given (any number),
//! else 2; the other figures need at least 5 (default 9).
//!
//! `--aa` is the calibration run: the "guarded" side becomes a second stock
//! connection (and Django alias), so every ratio should come out 1.00 and
//! the spread shows the method's noise on this machine.
//!   litefs-guard-bench profile WORKLOAD guarded|stock N   (for perf/callgrind)
//!
//! Every figure runs guarded and stock in this one process, A B A B …,
//! after a warm-up pair, and reports medians and the median of the per-pair
//! guarded/stock throughput ratios. Once loaded, the guard wraps every VFS
//! (`?vfs=unix` included), so the stock side is a database *outside* the
//! guarded location: the bench sets LITEFS_GUARD_DIR to `…/guarded` and
//! keeps the stock databases in the sibling `…/stock`. The settings are read
//! once per process, so the FUSE rows, whose mount is litefs-sim's, run in a
//! child process of this binary (`fuse-child`); the forwarding row, whose
//! two nodes are two mounts, in another (`forward-child`, bench/src/forward.rs).
//! The contention table's process writers are children too
//! (`contention-child`), and so are its litefs-sim cells
//! (`contention-sim-child`).

mod common;
mod contention;
mod forward;
mod fuse;
mod report;
mod syscalls;
mod work;

use common::*;
use report::Row;
use std::path::{Path, PathBuf};
use std::time::Instant;

struct Opts {
    /// As given; see [`Opts::reps`].
    reps: Option<usize>,
    scale: f64,
    only: Option<Vec<String>>,
    fuse: bool,
    django: bool,
    out: PathBuf,
    django_python: PathBuf,
    /// A/A calibration: the "guarded" side is a second stock connection.
    aa: bool,
    table: contention::Opts,
}

impl Opts {
    /// Repetitions of the paired figures.
    fn reps(&self) -> usize {
        self.reps.unwrap_or(9)
    }

    fn want(&self, id: &str) -> bool {
        self.only.as_ref().is_none_or(|v| v.iter().any(|x| x == id))
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        reps: None,
        scale: 1.0,
        only: None,
        fuse: true,
        django: true,
        out: repo().join("target/bench/results.json"),
        django_python: repo().join("build/venv/bin/python"),
        aa: false,
        table: contention::Opts::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--reps" => o.reps = Some(val()?.parse().map_err(|e| format!("--reps: {e}"))?),
            "--scale" => o.scale = val()?.parse().map_err(|e| format!("--scale: {e}"))?,
            "--only" => o.only = Some(val()?.split(',').map(str::to_string).collect()),
            "--no-fuse" => o.fuse = false,
            "--no-django" => o.django = false,
            "--aa" => o.aa = true,
            "--out" => o.out = PathBuf::from(val()?),
            "--django-python" => o.django_python = PathBuf::from(val()?),
            _ if o.table.parse_arg(&a, &mut val)? => {}
            _ => return Err(format!("unknown argument {a:?}")),
        }
    }
    let only_table = o
        .only
        .as_ref()
        .is_some_and(|v| v.iter().all(|x| x == "contention-table"));
    match o.reps {
        Some(0) => return Err("--reps must be at least 1".into()),
        Some(r) if r < 5 && !only_table => {
            return Err("--reps must be at least 5 (fewer only with --only contention-table)".into())
        }
        _ => {}
    }
    o.table.reps = o.reps.unwrap_or(contention::DEFAULT_REPS);
    o.table.aa = o.aa;
    Ok(o)
}

/// The guard reads its settings once per process: start from the defaults
/// whatever the caller's environment says; `set_guard_env` then sets the
/// mount (LITEFS_GUARD_DIR) and LITEFS_GUARD_REQUIRE_FUSE=0 before loading.
fn clean_env() {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("LITEFS_GUARD_") && k != "LITEFS_GUARD_SO" {
            std::env::remove_var(&k);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    clean_env();
    match args.get(1).map(String::as_str) {
        Some("profile") => return profile(&args[2..]),
        Some("fuse-child") => return fuse::child(&args[2..]),
        Some("forward-child") => return forward::child(&args[2..]),
        Some("contention-child") => return contention::child(&args[2..]),
        Some("contention-sim-child") => return contention::sim_child(&args[2..]),
        _ => {}
    }
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("litefs-guard-bench: {e}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let load_before = report::loadavg();
    // Guarded databases under dirs.guarded (the mount), stock ones in
    // dirs.stock, outside it.
    let dirs = Dirs::new("local");
    set_guard_env(&dirs.guarded);
    load_guard();
    let want = |id: &str| o.want(id);
    let reps = o.reps();
    let n = |base: usize| ((base as f64 * o.scale) as usize).max(10);
    let mut rows: Vec<Row> = Vec::new();

    let s_path = dirs.stock.join("stock.db");
    let g = if o.aa {
        open_stock(&dirs.stock.join("guarded.db"))
    } else {
        open_guarded(&dirs.guarded.join("guarded.db"))
    };
    let s = open_stock(&s_path);
    work::schema(&g);
    work::schema(&s);

    if want("point_select") {
        eprintln!("bench: point SELECT …");
        let p = Paired::run(
            reps,
            n(100_000),
            |n| work::point_select(&g, n),
            |n| work::point_select(&s, n),
        );
        rows.push(Row::paired(
            "point_select",
            "point SELECT by primary key (prepared once)",
            &p,
            0.97,
        ));
    }
    if want("prepare_write") {
        eprintln!("bench: prepare + finalize …");
        let p = Paired::run(
            reps,
            n(30_000),
            |n| work::prepare_write(&g, n),
            |n| work::prepare_write(&s, n),
        );
        rows.push(Row::paired(
            "prepare_write",
            "prepare + finalize of an INSERT (authorizer)",
            &p,
            0.90,
        ));
    }
    if want("insert") {
        eprintln!("bench: autocommit INSERT …");
        let p = Paired::run(
            reps,
            n(10_000),
            |n| work::autocommit_insert(&g, n),
            |n| work::autocommit_insert(&s, n),
        );
        rows.push(Row::paired("insert", "single-row autocommit INSERT", &p, 0.97));
    }
    if want("tx10") {
        eprintln!("bench: 10-statement transactions …");
        let p = Paired::run(reps, n(1_500), |n| work::tx10(&g, n), |n| work::tx10(&s, n));
        rows.push(Row::paired(
            "tx10",
            "plain BEGIN + 10 INSERTs + COMMIT (tx/s)",
            &p,
            0.97,
        ));
    }
    if want("lookups") {
        eprintln!("bench: .primary lookups (local disk) …");
        let k = n(2_000);
        rows.push(Row::lookups(
            "lookups_insert",
            "`.primary` lookups per autocommit INSERT (local)",
            fuse::lookups_per(&g, k, work::autocommit_insert),
            1.0,
        ));
        rows.push(Row::lookups(
            "lookups_tx10",
            "`.primary` lookups per BEGIN…COMMIT of 10 (local)",
            fuse::lookups_per(&g, k / 10, work::tx10),
            1.0,
        ));
        rows.push(Row::lookups(
            "lookups_read",
            "`.primary` lookups per autocommit SELECT (local)",
            fuse::lookups_per(&g, k * 5, work::point_select),
            0.0,
        ));
    }
    drop(g);
    drop(s);
    if want("contention") {
        eprintln!("bench: contention, 4 threads …");
        rows.extend(contention(&dirs, reps, 0.25 * o.scale));
    }
    let mut table = None;
    if want("contention-table") {
        eprintln!("bench: contention table …");
        let sim = (!o.fuse).then(|| "disabled with --no-fuse".to_string());
        let t = contention::run(&o.table, &dirs, sim);
        rows.push(Row::contention_table(&t));
        table = Some(t);
    }
    drop(dirs);

    if want("fuse") {
        if !o.fuse {
            rows.extend(Row::fuse_not_run("disabled with --no-fuse"));
        } else {
            eprintln!("bench: FUSE mount (litefs-sim) …");
            match fuse::run(reps, n(300), o.aa) {
                Ok(f) => rows.extend(Row::fuse(&f)),
                Err(why) => {
                    eprintln!(
                        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                         !!! FUSE BENCHMARK NOT RUN: {why}\n\
                         !!! The role-check-on-FUSE rows are marked \"not run\".\n\
                         !!! Run as root with /dev/fuse to measure them.\n\
                         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
                    );
                    rows.extend(Row::fuse_not_run(&why));
                }
            }
        }
    }

    if want("forward") {
        if !o.fuse {
            rows.push(Row::forward_not_run("disabled with --no-fuse"));
        } else if o.aa {
            rows.push(Row::forward_not_run("no stock side to calibrate (--aa)"));
        } else {
            eprintln!("bench: forwarded vs local write transaction (litefs-sim, 2 nodes) …");
            match forward::run(5, n(100)) {
                Ok(f) => rows.push(Row::forward(&f)),
                Err(why) => {
                    eprintln!("\n!!! FORWARDING BENCHMARK NOT RUN: {why}\n");
                    rows.push(Row::forward_not_run(&why));
                }
            }
        }
    }

    let mut django_meta = serde_json::Value::Null;
    if want("django") {
        if !o.django {
            rows.extend(Row::django_not_run("disabled with --no-django"));
        } else {
            eprintln!("bench: Django ORM (separate Python process) …");
            match django(&o) {
                Ok(v) => {
                    rows.extend(Row::django(&v));
                    django_meta = v;
                }
                Err(why) => {
                    eprintln!("\n!!! DJANGO BENCHMARK NOT RUN: {why}\n");
                    rows.extend(Row::django_not_run(&why));
                }
            }
        }
    }

    let machine = report::machine(&django_meta, load_before);
    let secs = started.elapsed().as_secs_f64();
    report::print(&rows, table.as_ref(), &machine, reps, secs);
    if let Err(e) = report::write(&o.out, &rows, table.as_ref(), &machine, reps, secs) {
        eprintln!("litefs-guard-bench: writing {}: {e}", o.out.display());
        std::process::exit(1);
    }
    eprintln!(
        "bench: wrote {} and {}",
        o.out.display(),
        o.out.with_extension("md").display()
    );
}

/// Guarded plain BEGIN vs stock BEGIN IMMEDIATE vs stock plain BEGIN, one
/// database each, interleaved per repetition: 4 threads back to back, no
/// hold (the contention table's writer, `contention::Target::run`).
fn contention(dirs: &Dirs, reps: usize, secs: f64) -> Vec<Row> {
    use contention::{Mode, Side, Target};
    const THREADS: usize = 4;
    let targets = [
        Target::new(Side::Guard, dirs.guarded.join("cont-guarded.db")),
        Target::new(Side::StockImmediate, dirs.stock.join("cont-stock-imm.db")),
        Target::new(Side::StockPlain, dirs.stock.join("cont-stock-plain.db")),
    ];
    let run = |t: &Target| {
        let plan = t.side.plan(std::time::Duration::ZERO, std::time::Duration::ZERO);
        t.run(Mode::Threads, THREADS, &plan, secs)
    };
    for t in &targets {
        t.create();
        run(t); // warm-up
    }
    let mut res: [Vec<contention::Run>; 3] = Default::default();
    for _ in 0..reps {
        for (t, r) in targets.iter().zip(&mut res) {
            r.push(run(t));
        }
    }
    Row::contention(&res, THREADS, secs)
}

fn django(o: &Opts) -> Result<serde_json::Value, String> {
    let py = &o.django_python;
    if !py.exists() {
        return Err(format!(
            "{} is missing: `make venv` builds it (python package with litefs_guard.django, Django 5.2)",
            py.display()
        ));
    }
    let script = repo().join("bench/django_bench.py");
    let out = o.out.with_file_name("django.json");
    if let Some(d) = out.parent() {
        std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }
    let status = std::process::Command::new(py)
        .arg(&script)
        .arg("--out")
        .arg(&out)
        .arg("--reps")
        .arg(o.reps().to_string())
        .arg("--scale")
        .arg(o.scale.to_string())
        .args(o.aa.then_some("--aa"))
        .status()
        .map_err(|e| format!("running {}: {e}", py.display()))?;
    if !status.success() {
        return Err(format!("{} exited with {status}", script.display()));
    }
    let text = std::fs::read_to_string(&out).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// `profile WORKLOAD guarded|stock N`: one side of one figure, for perf or
/// callgrind (`valgrind --tool=callgrind … profile insert guarded 20000`).
fn profile(args: &[String]) {
    let usage =
        "usage: litefs-guard-bench profile point_select|prepare_write|insert|tx10|syscalls guarded|stock N";
    let (Some(w), Some(side), Some(n)) = (
        args.first(),
        args.get(1),
        args.get(2).and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    if w == "syscalls" {
        // `profile syscalls DIR|- N`: DIR may be a FUSE mount.
        if side == "-" {
            let dir = temp_dir("profile");
            syscalls::run(&dir, n);
            let _ = std::fs::remove_dir_all(&dir);
        } else {
            syscalls::run(Path::new(side), n);
            let _ = std::fs::remove_file(Path::new(side).join("p.db"));
        }
        return;
    }
    let dirs = Dirs::new("profile");
    set_guard_env(&dirs.guarded);
    load_guard();
    let c = match side.as_str() {
        "guarded" => open_guarded(&dirs.guarded.join("p.db")),
        "stock" => open_stock(&dirs.stock.join("p.db")),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    work::schema(&c);
    let f: fn(&rusqlite::Connection, usize) = match w.as_str() {
        "point_select" => work::point_select,
        "prepare_write" => work::prepare_write,
        "insert" => work::autocommit_insert,
        "tx10" => work::tx10,
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    f(&c, n / 10 + 1); // warm-up
    let l0 = lookups(&c);
    let smp = measure(n, || f(&c, n));
    println!(
        "{w} {side}: {:.0} ops/s, {:.2} µs CPU/op, {:.3} .primary lookups/op",
        smp.ops_per_s,
        smp.cpu_us,
        (lookups(&c) - l0) as f64 / n as f64
    );
    drop(c);
    drop(dirs);
}
