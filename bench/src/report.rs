//! The table: one row per figure, printed and written as JSON and Markdown.

use crate::common::{median, Paired};
use crate::contention::{CellResult, Named, Run, Side, Table};
use crate::forward::Forward;
use crate::fuse::Fuse;
use serde_json::{json, Value};
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Met,
    Missed,
    /// No target: context for the other rows.
    Info,
    NotRun(String),
}

impl Status {
    fn of(met: bool) -> Status {
        if met {
            Status::Met
        } else {
            Status::Missed
        }
    }
    fn text(&self) -> &str {
        match self {
            Status::Met => "yes",
            Status::Missed => "NO",
            Status::Info => "—",
            Status::NotRun(_) => "not run",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub figure: String,
    pub guarded: String,
    pub stock: String,
    pub ratio: Option<f64>,
    pub cpu_ratio: Option<f64>,
    pub target: String,
    pub status: Status,
    pub detail: Value,
}

fn rate(ops_per_s: f64) -> String {
    let us = 1e6 / ops_per_s;
    let r = if ops_per_s >= 1e5 {
        format!("{:.0}k/s", ops_per_s / 1e3)
    } else if ops_per_s >= 1e3 {
        format!("{:.1}k/s", ops_per_s / 1e3)
    } else {
        format!("{ops_per_s:.0}/s")
    };
    format!("{r} ({us:.2} µs)")
}

impl Row {
    fn new(id: &str, figure: &str) -> Row {
        Row {
            id: id.into(),
            figure: figure.into(),
            guarded: "—".into(),
            stock: "—".into(),
            ratio: None,
            cpu_ratio: None,
            target: "—".into(),
            status: Status::Info,
            detail: Value::Null,
        }
    }

    pub fn paired(id: &str, figure: &str, p: &Paired, target: f64) -> Row {
        Row {
            guarded: rate(p.g_ops()),
            stock: rate(p.s_ops()),
            ratio: Some(p.ratio()),
            cpu_ratio: Some(p.cpu_ratio()),
            target: format!("≥ {target:.2}"),
            status: Status::of(p.ratio() >= target),
            detail: p.json(),
            ..Row::new(id, figure)
        }
    }

    pub fn lookups(id: &str, figure: &str, per_op: f64, max: f64) -> Row {
        Row {
            guarded: format!("{per_op:.3}"),
            target: if max == 0.0 {
                "0".into()
            } else {
                format!("≤ {max}")
            },
            status: Status::of(per_op <= max),
            detail: json!({ "primary_lookups_per_op": per_op }),
            ..Row::new(id, figure)
        }
    }

    pub fn contention(res: &[Vec<Run>; 3], threads: usize, secs: f64) -> Vec<Row> {
        let med = |v: &[Run]| median(&v.iter().map(Run::tx_per_s).collect::<Vec<_>>());
        let pair_ratio = |a: &[Run], b: &[Run]| {
            median(
                &a.iter()
                    .zip(b)
                    .map(|(x, y)| x.tx_per_s() / y.tx_per_s())
                    .collect::<Vec<_>>(),
            )
        };
        let failed = |v: &[Run]| v.iter().map(|c| c.log.failed).sum::<usize>();
        let consistent = |v: &[Run]| v.iter().all(Run::counter_exact);
        let (g, si, sp) = (&res[0], &res[1], &res[2]);
        let attempts = sp.iter().map(|c| c.log.committed + c.log.failed).sum::<usize>();
        let ratio = pair_ratio(g, si);
        let detail = |v: &[Run]| {
            json!({
                "committed_per_s": v.iter().map(Run::tx_per_s).collect::<Vec<_>>(),
                "committed": v.iter().map(|c| c.log.committed).collect::<Vec<_>>(),
                "failed": v.iter().map(|c| c.log.failed).collect::<Vec<_>>(),
                "counter_consistent": consistent(v),
            })
        };
        let main = Row {
            guarded: format!("{:.0} tx/s, {} failed", med(g), failed(g)),
            stock: format!("{:.0} tx/s, {} failed", med(si), failed(si)),
            ratio: Some(ratio),
            target: "≥ 0.95, 0 failed".into(),
            status: Status::of(ratio >= 0.95 && failed(g) == 0 && consistent(g)),
            detail: json!({
                "threads": threads, "seconds_per_run": secs,
                "guard_plain_begin": detail(g),
                "stock_begin_immediate": detail(si),
            }),
            ..Row::new(
                "contention",
                &format!("contention, {threads} threads RMW: guard plain BEGIN vs stock BEGIN IMMEDIATE"),
            )
        };
        let plain = Row {
            guarded: format!("{:.0} tx/s, {} failed", med(g), failed(g)),
            stock: format!(
                "{:.0} tx/s, {} of {attempts} failed ({:.1}%)",
                med(sp),
                failed(sp),
                100.0 * failed(sp) as f64 / attempts as f64
            ),
            ratio: Some(pair_ratio(g, sp)),
            detail: json!({ "stock_plain_begin": detail(sp) }),
            ..Row::new(
                "contention_stock_plain",
                "contention, same: guard plain BEGIN vs stock plain BEGIN (committed tx/s)",
            )
        };
        vec![main, plain]
    }

    /// The contention table's line in the main table: how many cells met
    /// the targets; the cells themselves are in `detail` and in the table
    /// [`contention_text`] prints.
    pub fn contention_table(t: &Table) -> Row {
        let ran: Vec<_> = t.cells.iter().filter_map(CellResult::verdict).collect();
        let met = ran.iter().filter(|v| v.missed.is_empty()).count();
        let not_run = t.cells.len() - ran.len();
        let status = if ran.is_empty() {
            let why = t.cells.iter().find_map(|c| c.sides.as_ref().err()).cloned();
            Status::NotRun(why.unwrap_or_else(|| "no cell selected".into()))
        } else {
            Status::of(met == ran.len())
        };
        Row {
            guarded: format!(
                "{met} of {} cells met{}",
                ran.len(),
                if not_run > 0 {
                    format!(", {not_run} not run")
                } else {
                    String::new()
                }
            ),
            target: "see the contention table".into(),
            status,
            detail: t.json(),
            ..Row::new(
                "contention-table",
                "contention table: guard plain BEGIN vs stock BEGIN IMMEDIATE (and stock plain BEGIN)",
            )
        }
    }

    pub fn fuse(f: &Fuse) -> Vec<Row> {
        let us = |v: f64| format!("{:.1} µs", 1e6 / v);
        let (g, s) = (f.insert.g_ops(), f.insert.s_ops());
        let insert = Row {
            guarded: us(g),
            stock: us(s),
            ratio: Some(f.insert.ratio()),
            cpu_ratio: Some(f.insert.cpu_ratio()),
            detail: f.insert.json(),
            ..Row::new(
                "fuse_insert",
                &format!(
                    "FUSE (litefs-sim): autocommit INSERT, µs each (guard adds {:.0} µs)",
                    f.insert.extra_us()
                ),
            )
        };
        vec![
            insert,
            Row::lookups(
                "fuse_lookups_insert",
                "FUSE: `.primary` lookups per autocommit INSERT",
                f.per_insert,
                1.0,
            ),
            Row::lookups(
                "fuse_lookups_tx10",
                "FUSE: `.primary` lookups per BEGIN…COMMIT of 10",
                f.per_tx10,
                1.0,
            ),
            Row::lookups(
                "fuse_lookups_read",
                "FUSE: `.primary` lookups per autocommit SELECT",
                f.per_read,
                0.0,
            ),
        ]
    }

    pub fn fuse_not_run(why: &str) -> Vec<Row> {
        [
            "fuse_insert",
            "fuse_lookups_insert",
            "fuse_lookups_tx10",
            "fuse_lookups_read",
        ]
        .iter()
        .map(|id| Row {
            status: Status::NotRun(why.into()),
            ..Row::new(id, &format!("FUSE (litefs-sim): {id}"))
        })
        .collect()
    }

    /// The "guarded" column is the forwarded transaction on the replica,
    /// "stock" the local one on the primary; the ratio is forwarded/local
    /// throughput (median of pairs), the figure says how many times as long.
    pub fn forward(f: &Forward) -> Row {
        let ms = |us: f64| format!("{:.2} ms", us / 1e3);
        let cell = |ops: f64, p50: f64, p99: f64| format!("{ops:.0} tx/s, p50 {}, p99 {}", ms(p50), ms(p99));
        let (fwd, local) = (f.tx.g_ops(), f.tx.s_ops());
        let mut detail = f.json();
        detail["forwarded_over_local_latency_p50"] = json!(f.fwd_p50 / f.local_p50);
        Row {
            guarded: cell(fwd, f.fwd_p50, f.fwd_p99),
            stock: cell(local, f.local_p50, f.local_p99),
            ratio: Some(f.tx.ratio()),
            cpu_ratio: Some(f.tx.cpu_ratio()),
            detail,
            ..Row::new(
                "forward",
                &format!(
                    "FUSE sim, 2 nodes: BEGIN+INSERT+COMMIT forwarded (replica n2) vs local (primary n1), \
                     {} pairs: {:.1}× as long",
                    f.tx.guarded.len(),
                    1.0 / f.tx.ratio()
                ),
            )
        }
    }

    pub fn forward_not_run(why: &str) -> Row {
        Row {
            status: Status::NotRun(why.into()),
            ..Row::new(
                "forward",
                "FUSE (litefs-sim, 2 nodes): forwarded vs local write transaction",
            )
        }
    }

    pub fn django(v: &Value) -> Vec<Row> {
        let mut rows = Vec::new();
        for id in ["django_create", "django_get", "django_atomic10"] {
            let w = &v["workloads"][id];
            let r = w["ratio_median_of_pairs"].as_f64().unwrap_or(f64::NAN);
            rows.push(Row {
                guarded: rate(w["guarded_median"].as_f64().unwrap_or(f64::NAN)),
                stock: rate(w["stock_median"].as_f64().unwrap_or(f64::NAN)),
                ratio: Some(r),
                cpu_ratio: w["cpu_ratio"].as_f64(),
                target: "≥ 0.97".into(),
                status: Status::of(r >= 0.97),
                detail: w.clone(),
                ..Row::new(id, &format!("Django ORM: {}", w["label"].as_str().unwrap_or(id)))
            });
        }
        rows
    }

    pub fn django_not_run(why: &str) -> Vec<Row> {
        ["django_create", "django_get", "django_atomic10"]
            .iter()
            .map(|id| Row {
                target: "≥ 0.97".into(),
                status: Status::NotRun(why.into()),
                ..Row::new(id, &format!("Django ORM: {id}"))
            })
            .collect()
    }

    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "figure": self.figure,
            "guarded": self.guarded,
            "stock": self.stock,
            "ratio": self.ratio,
            "cpu_ratio": self.cpu_ratio,
            "target": self.target,
            "met": match self.status { Status::Met => json!(true), Status::Missed => json!(false), _ => Value::Null },
            "status": match &self.status { Status::NotRun(w) => format!("not run: {w}"), s => s.text().to_string() },
            "detail": self.detail,
        })
    }

    fn cells(&self) -> [String; 7] {
        let f = |x: Option<f64>| x.map_or("—".to_string(), |r| format!("{r:.3}"));
        [
            self.figure.clone(),
            self.guarded.clone(),
            self.stock.clone(),
            f(self.ratio),
            f(self.cpu_ratio),
            self.target.clone(),
            self.status.text().to_string(),
        ]
    }
}

const TABLE_HEADER: [&str; 13] = [
    "cell", "side", "tx/s", "fail", "p50 ms", "p99 ms", "max ms", "max wait", "p99×", "max×", "tx/s×", "met",
    "missed",
];

fn side_label(s: Side) -> &'static str {
    match s {
        Side::Guard => "guard BEGIN",
        Side::StockImmediate => "stock IMMEDIATE",
        Side::StockPlain => "stock BEGIN",
    }
}

/// The contention table's lines: per cell, one line per side; the ratios
/// (guard / stock IMMEDIATE) and the verdict on the first side's line.
fn contention_cells(t: &Table) -> Vec<[String; 13]> {
    let ms = |x: f64| {
        if x < 10.0 {
            format!("{x:.2}")
        } else {
            format!("{x:.0}")
        }
    };
    let mut out = Vec::new();
    for c in &t.cells {
        let cell = format!(
            "{} {} {} {}",
            c.cell.writers,
            c.cell.mode.name(),
            c.cell.load.name(),
            c.cell.place.name()
        );
        let sides = match &c.sides {
            Ok(s) => s,
            Err(_) => {
                let mut l: [String; 13] = Default::default();
                l[0] = cell;
                l[1] = "not run".into();
                l[11] = "not run".into();
                out.push(l);
                continue;
            }
        };
        let v = c.verdict().unwrap();
        for (i, s) in sides.iter().enumerate() {
            let mut l: [String; 13] = Default::default();
            if i == 0 {
                l[0] = cell.clone();
                l[8] = format!("{:.2}", v.p99);
                l[9] = format!("{:.2}", v.max);
                l[10] = format!("{:.2}", v.tx_per_s);
                l[11] = if v.missed.is_empty() { "PASS" } else { "FAIL" }.into();
                l[12] = v.missed.join("; ");
            }
            l[1] = side_label(s.side).into();
            if !s.counter_exact {
                l[1] += " (COUNTER OFF)";
            }
            l[2] = format!("{:.0}", s.tx_per_s);
            l[3] = s.failed.to_string();
            l[4] = ms(s.p50_ms);
            l[5] = ms(s.p99_ms);
            l[6] = ms(s.max_ms);
            l[7] = ms(s.max_wait_ms);
            out.push(l);
        }
    }
    out
}

fn contention_caption(t: &Table) -> String {
    let o = &t.opts;
    format!(
        "Contention table: each writer loops BEGIN; SELECT v; UPDATE v+1; {:.1} ms spin holding the write lock; \
         COMMIT; then a {:.0} ms sleep (request) or none (back-to-back); busy_timeout 5 s. {} s × {} reps per side \
         per cell, sides interleaved A B C; latency = BEGIN issued → COMMIT returned (committed transactions), \
         wait = BEGIN issued → the statement that took the write lock returned; p99×, max×, tx/s× = guard / stock \
         IMMEDIATE{}. Targets: no failure where stock IMMEDIATE has none, counter exact; with ≥ 8 writers, request: \
         p99× and max× ≤ 0.2, tx/s× ≥ 1.0; back-to-back: max× ≤ 0.2, tx/s× ≥ 0.9. {:.0} s.",
        o.hold.as_secs_f64() * 1e3,
        o.pause.as_secs_f64() * 1e3,
        o.secs,
        o.reps,
        if o.aa { " (--aa: the first side is a second stock IMMEDIATE)" } else { "" },
        t.secs
    )
}

/// The contention table as aligned text.
pub fn contention_text(t: &Table) -> String {
    let cells = contention_cells(t);
    let mut w = TABLE_HEADER.map(|h| h.chars().count());
    for c in &cells {
        for (i, s) in c.iter().enumerate() {
            w[i] = w[i].max(s.chars().count());
        }
    }
    let line = |c: &[String]| {
        let s = c
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let pad = " ".repeat(w[i] - s.chars().count());
                // Numbers right-aligned.
                if (2..=10).contains(&i) {
                    format!("{pad}{s}")
                } else {
                    format!("{s}{pad}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ");
        s.trim_end().to_string()
    };
    let mut s = format!("\n{}\n", line(&TABLE_HEADER.map(String::from)));
    s += &format!("{}\n", line(&w.map(|n| "-".repeat(n))));
    for c in &cells {
        s += &format!("{}\n", line(c));
    }
    for c in &t.cells {
        if let Err(why) = &c.sides {
            s += &format!("NOT RUN: {} — {why}\n", c.cell.id());
        }
    }
    s + &contention_caption(t) + "\n"
}

fn contention_markdown(t: &Table) -> String {
    let mut s = format!("\n### Contention table\n\n| {} |\n", TABLE_HEADER.join(" | "));
    s += &format!("|{}\n", "---|".repeat(TABLE_HEADER.len()));
    for c in contention_cells(t) {
        s += &format!("| {} |\n", c.join(" | "));
    }
    s + "\n" + &contention_caption(t) + "\n"
}

const HEADER: [&str; 7] = [
    "figure",
    "guarded",
    "stock",
    "ratio",
    "CPU ratio",
    "target",
    "met",
];

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

pub fn loadavg() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn machine(django: &Value, load_before: String) -> Value {
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let cli = std::process::Command::new("sqlite3")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().next().map(str::to_string));
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "sqlite_bench": rusqlite::version(),
        "sqlite_python": django.get("python_sqlite"),
        "sqlite_cli": cli,
        "python": django.get("python"),
        "django": django.get("django"),
        "extension": std::env::var("BENCH_LABEL").unwrap_or_else(|_| crate::common::so_path().display().to_string()),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    })
}

pub fn print(rows: &[Row], table: Option<&Table>, m: &Value, reps: usize, secs: f64) {
    let cells: Vec<[String; 7]> = rows.iter().map(Row::cells).collect();
    let mut w = HEADER.map(|h| h.chars().count());
    for c in &cells {
        for (i, s) in c.iter().enumerate() {
            w[i] = w[i].max(s.chars().count());
        }
    }
    let line = |c: &[String]| {
        c.iter()
            .enumerate()
            .map(|(i, s)| format!("{s}{}", " ".repeat(w[i] - s.chars().count())))
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!();
    println!("{}", line(&HEADER.map(String::from)));
    println!("{}", line(&w.map(|n| "-".repeat(n))));
    for c in &cells {
        println!("{}", line(c));
    }
    for r in rows {
        if let Status::NotRun(why) = &r.status {
            println!("NOT RUN: {} — {why}", r.id);
        }
    }
    if let Some(t) = table {
        print!("{}", contention_text(t));
    }
    println!(
        "\nguarded/stock throughput ratio: median of {reps} back-to-back pairs (after a warm-up pair). \
         CPU ratio: the same from thread CPU time per op.\n\
         machine: {} × {}, kernel {}, SQLite {} (bench, bundled) / {} (Python); extension {}; load {} → {}; {:.0} s",
        m["nproc"],
        m["cpu"].as_str().unwrap_or("?"),
        m["kernel"].as_str().unwrap_or("?"),
        m["sqlite_bench"].as_str().unwrap_or("?"),
        m["sqlite_python"].as_str().unwrap_or("?"),
        m["extension"].as_str().unwrap_or("?"),
        m["loadavg_before"].as_str().unwrap_or("?"),
        m["loadavg_after"].as_str().unwrap_or("?"),
        secs
    );
}

pub fn markdown(rows: &[Row], table: Option<&Table>, m: &Value, reps: usize) -> String {
    let mut s = String::new();
    s.push_str(&format!("| {} |\n", HEADER.join(" | ")));
    s.push_str(&format!("|{}\n", "---|".repeat(HEADER.len())));
    for r in rows {
        s.push_str(&format!("| {} |\n", r.cells().join(" | ")));
    }
    s.push_str(&format!(
        "\nRatios: guarded/stock throughput, median of {reps} back-to-back pairs after a warm-up pair; \
         CPU ratio: the same computed from thread CPU time per operation.\n\n\
         Machine: {} CPUs, {}, kernel {}; SQLite {} (bench binary, bundled), {} (Python's sqlite3), \
         CLI {}; Python {}, Django {}; extension {}; load average {} before, {} after.\n",
        m["nproc"],
        m["cpu"].as_str().unwrap_or("?"),
        m["kernel"].as_str().unwrap_or("?"),
        m["sqlite_bench"].as_str().unwrap_or("?"),
        m["sqlite_python"].as_str().unwrap_or("?"),
        m["sqlite_cli"].as_str().unwrap_or("?"),
        m["python"].as_str().unwrap_or("?"),
        m["django"].as_str().unwrap_or("?"),
        m["extension"].as_str().unwrap_or("?"),
        m["loadavg_before"].as_str().unwrap_or("?"),
        m["loadavg_after"].as_str().unwrap_or("?"),
    ));
    if let Some(t) = table {
        s += &contention_markdown(t);
    }
    s
}

pub fn write(
    out: &Path,
    rows: &[Row],
    table: Option<&Table>,
    m: &Value,
    reps: usize,
    secs: f64,
) -> std::io::Result<()> {
    if let Some(d) = out.parent() {
        std::fs::create_dir_all(d)?;
    }
    let j = json!({
        "machine": m,
        "reps": reps,
        "runtime_s": secs,
        "rows": rows.iter().map(Row::json).collect::<Vec<_>>(),
    });
    std::fs::write(out, serde_json::to_string_pretty(&j)? + "\n")?;
    std::fs::write(out.with_extension("md"), markdown(rows, table, m, reps))
}
