//! proptest strategies for configs: tricky strings everywhere, unknown keys
//! with arbitrary YAML values, and a variant that passes validation.

use super::duration::GoDuration;
use super::model::*;
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use serde_norway::{Mapping, Number, Value};

#[rustfmt::skip]
const TRICKY: &[&str] = &[
    "", " ", "true", "false", "null", "Null", "~", "yes", "no", "on", "1.0", "1e3", "0x1F",
    "0o7", ".inf", ".nan", "-", "?", ":", "a: b", "#", "a #b", "- x", "[x]", "{x}", "&a",
    "*a", "!t", "%x", "@", "`", "|", ">", "---", "...", "'", "\"", "\\", "${X}", "$X", "$$",
    "$", "${X == 'y'}", " lead", "trail ", "a\nb", "a\r\nb", "tab\t", "\u{0}", "\u{7f}",
    "\u{85}", "\u{a0}", "\u{2028}", "\u{feff}", "\u{fffe}", "é", "日本語", "🦀",
];

/// Strings YAML or env expansion could misread, plus arbitrary Unicode.
pub(crate) fn tricky() -> BoxedStrategy<String> {
    prop_oneof![
        prop::sample::select(TRICKY).prop_map(str::to_owned),
        any::<String>(),
        "[ -~]{0,24}",
    ]
    .boxed()
}

fn duration() -> impl Strategy<Value = GoDuration> {
    prop_oneof![
        (0..i64::MAX).prop_map(GoDuration::from_nanos),
        prop::sample::select(vec![
            "10s", "1m30s", "1.5s", "250ms", "0", "+1h", "1h0m0s", "3µs", ".5m"
        ])
        .prop_filter_map("valid", |s| GoDuration::parse(s).ok()),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        any::<u64>().prop_map(|n| Value::Number(n.into())),
        any::<f64>().prop_map(|f| Value::Number(Number::from(f))),
        tricky().prop_map(Value::String),
    ]
}

/// Any YAML value (no tags: those have their own unit test).
fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Sequence),
            vec((scalar(), inner), 0..4).prop_map(|kv| Value::Mapping(kv.into_iter().collect::<Mapping>())),
        ]
    })
}

/// Unknown keys: prefixed so they never collide with a known key.
fn extra() -> impl Strategy<Value = Extra> {
    btree_map(tricky().prop_map(|k| format!("x-{k}")), value(), 0..3)
}

fn flag() -> impl Strategy<Value = Option<bool>> {
    option::of(any::<bool>())
}

fn strings() -> impl Strategy<Value = Option<Vec<String>>> {
    option::of(vec(tricky(), 0..3))
}

/// Free-text options, or values from `valid` when validation must pass.
fn text(valid: Option<&'static [&'static str]>) -> BoxedStrategy<Option<String>> {
    match valid {
        Some(list) => option::of(prop::sample::select(list).prop_map(str::to_owned)).boxed(),
        None => option::of(tricky()).boxed(),
    }
}

const URLS: &[&str] = &[
    "",
    "http://myhost:20202",
    "https://:t0k$n@consul:8501/app/",
    "http://[::1]:20202",
];
const LISTEN: &[&str] = &["", ":20202", "0.0.0.0:8080", "[::]:0"];
const TARGETS: &[&str] = &["", "localhost:8081", "[::1]:8081"];
const BACKUP: &[&str] = &["", "file", "litefs-cloud"];

/// An absolute, `..`-free, NUL-free directory under `root`.
fn dir(root: &'static str) -> impl Strategy<Value = String> {
    tricky().prop_map(move |s| format!("/{root}/{}", s.replace('\0', "").replace("..", "._")))
}

prop_compose! {
    fn exec_command(valid: bool)(cmd in tricky(), if_candidate in flag(), extra in extra()) -> ExecCommand {
        let cmd = if valid && cmd.trim().is_empty() { format!("run{cmd}") } else { cmd };
        ExecCommand { cmd, if_candidate, extra }
    }
}

fn exec(valid: bool) -> impl Strategy<Value = Exec> {
    prop_oneof![
        tricky().prop_map(move |c| Exec::Command(if valid && c.trim().is_empty() {
            format!("run{c}")
        } else {
            c
        })),
        vec(exec_command(valid), 0..3).prop_map(Exec::List),
    ]
}

prop_compose! {
    fn proxy(valid: bool)(
        addr in text(valid.then_some(LISTEN)), target in text(valid.then_some(TARGETS)), db in text(None),
        passthrough in strings(), always_forward in strings(),
        max_lag in option::of(duration()), primary_redirect_timeout in option::of(duration()),
        read_timeout in option::of(duration()), read_header_timeout in option::of(duration()),
        write_timeout in option::of(duration()), idle_timeout in option::of(duration()),
        debug in flag(), extra in extra(),
    ) -> ProxyConfig {
        ProxyConfig { addr, target, db, passthrough, always_forward, max_lag, primary_redirect_timeout,
            read_timeout, read_header_timeout, write_timeout, idle_timeout, debug, extra }
    }
}

prop_compose! {
    fn consul(valid: bool)(url in text(valid.then_some(URLS)), key in text(None), ttl in option::of(duration()),
        lock_delay in option::of(duration()), extra in extra()) -> ConsulConfig {
        ConsulConfig { url, key, ttl, lock_delay, extra }
    }
}

prop_compose! {
    fn lease(valid: bool)(
        kind in prop::sample::select(vec![LeaseType::Static, LeaseType::Consul]),
        hostname in text(None), advertise_url in text(valid.then_some(URLS)),
        candidate in flag(), promote in flag(),
        reconnect_delay in option::of(duration()), demote_delay in option::of(duration()),
        databases in strings(), consul in option::of(consul(valid)), extra in extra(),
    ) -> LeaseConfig {
        // LiteFS refuses a replication filter on candidates.
        let databases = if valid && candidate != Some(false) { None } else { databases };
        LeaseConfig { kind: Some(kind), hostname, advertise_url, candidate, promote, reconnect_delay,
            demote_delay, databases, consul, extra }
    }
}

prop_compose! {
    fn sections(valid: bool)(
        allow_other in flag(), fuse_debug in flag(), fuse_extra in extra(),
        compress in flag(), retention in option::of(duration()),
        retention_monitor_interval in option::of(duration()), data_extra in extra(),
        http in option::of((text(valid.then_some(LISTEN)), option::of(duration()), extra())),
        backup in option::of((text(valid.then_some(BACKUP)), text(None), text(valid.then_some(URLS)),
            text(None), text(None), extra())),
        log in option::of((option::of(prop::sample::select(vec![LogFormat::Text, LogFormat::Json])),
            flag(), flag(), extra())),
        tracing in option::of((flag(), text(None), option::of(any::<u64>()), option::of(any::<u64>()),
            flag(), extra())),
    ) -> LiteFsConfig {
        LiteFsConfig {
            fuse: Some(FuseConfig { dir: None, allow_other, debug: fuse_debug, extra: fuse_extra }),
            data: Some(DataConfig { dir: None, compress, retention, retention_monitor_interval, extra: data_extra }),
            http: http.map(|(addr, snapshot_timeout, extra)| HttpConfig { addr, snapshot_timeout, extra }),
            backup: backup.map(|(kind, path, url, cluster, auth_token, extra)| BackupConfig {
                kind, path, url, cluster, auth_token, extra }),
            log: log.map(|(format, timestamp, debug, extra)| LogConfig { format, timestamp, debug, extra }),
            tracing: tracing.map(|(enabled, path, max_size, max_count, compress, extra)| TracingConfig {
                enabled, path, max_size, max_count, compress, extra }),
            ..LiteFsConfig::default()
        }
    }
}

prop_compose! {
    /// A config of any content; `valid` keeps it within validation's rules.
    pub(crate) fn config(valid: bool)(
        base in sections(valid),
        fuse_dir in dir("f"), data_dir in dir("d"),
        exec in option::of(exec(valid)), skip_sync in flag(), exit_on_error in flag(), strict_verify in flag(),
        proxy in option::of(proxy(valid)), lease in lease(valid), extra in extra(),
    ) -> LiteFsConfig {
        let mut c = base;
        if let Some(f) = c.fuse.as_mut() { f.dir = Some(fuse_dir); }
        if let Some(d) = c.data.as_mut() { d.dir = Some(data_dir); }
        LiteFsConfig { exec, skip_sync, exit_on_error, strict_verify, proxy, lease: Some(lease), extra, ..c }
    }
}
