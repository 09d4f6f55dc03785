//! Checks on a parsed config: the rules LiteFS enforces at startup, plus the
//! shape of paths, durations, URLs and addresses. The first problem found is
//! reported, naming its key path and value.
//!
//! An empty string in an optional key counts as unset, as it does in LiteFS
//! (it is what an unset `${VAR}` leaves behind).

use super::address::{check_addr, check_url, redact_url, Port};
use super::duration::GoDuration;
use super::error::ConfigError;
use super::model::{Exec, LiteFsConfig};
use std::path::{Component, Path};

/// Records one problem: key, value as shown, what is wrong, what to do.
type Report<'a> = dyn FnMut(&str, Option<&str>, &str, &str) + 'a;

/// Every problem found, in a fixed order (directories, exec, addresses,
/// lease, backup, durations): a checker shows them all at once.
pub(crate) fn validate(c: &LiteFsConfig, file: &str) -> Vec<ConfigError> {
    let fuse_dir = c.fuse.as_ref().and_then(|f| f.dir.as_deref());
    let data_dir = c.data.as_ref().and_then(|d| d.dir.as_deref());
    let dirs = [
        check_dir(file, "fuse.dir", fuse_dir, FUSE_DIR_WHAT),
        check_dir(
            file,
            "data.dir",
            data_dir,
            "LiteFS's own storage, e.g. \"/var/lib/litefs\"",
        ),
    ];
    let dirs_ok = dirs.iter().all(Result::is_ok);
    let mut problems: Vec<ConfigError> = dirs.into_iter().filter_map(Result::err).collect();
    let mut bad = |key: &str, value: Option<&str>, problem: &str, fix: &str| {
        problems.push(ConfigError::invalid(file, key, value, problem, fix));
    };
    if let (true, Some(f), Some(d)) = (dirs_ok, fuse_dir, data_dir) {
        if Path::new(f).components().eq(Path::new(d).components()) {
            bad(
                "data.dir",
                Some(d),
                "is the same directory as fuse.dir",
                "give LiteFS a separate data directory, e.g. \"/var/lib/litefs\"",
            );
        }
    }

    match &c.exec {
        Some(Exec::Command(cmd)) if cmd.trim().is_empty() => bad(
            "exec",
            Some(cmd),
            "is an empty command, which LiteFS crashes on",
            "give the command line to run, or remove exec",
        ),
        Some(Exec::List(list)) => {
            for (i, e) in list.iter().enumerate().filter(|(_, e)| e.cmd.trim().is_empty()) {
                bad(
                    &format!("exec[{i}].cmd"),
                    Some(&e.cmd),
                    "is an empty command, which LiteFS crashes on",
                    "give the command line to run, or remove the entry",
                );
            }
        }
        _ => {}
    }

    let mut addr = |key: &str, value: Option<&String>, port: Port, example: &str| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            if let Err(problem) = check_addr(v, port) {
                bad(key, Some(v), &problem, &format!("write it like {example:?}"));
            }
        }
    };
    if let Some(h) = &c.http {
        addr("http.addr", h.addr.as_ref(), Port::ListenAny, ":20202");
    }
    if let Some(p) = &c.proxy {
        addr("proxy.addr", p.addr.as_ref(), Port::ListenAny, ":8080");
        addr(
            "proxy.target",
            p.target.as_ref(),
            Port::Required,
            "localhost:8081",
        );
    }

    let url = |bad: &mut Report<'_>, key: &str, value: Option<&String>, example: &str| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            if let Err(problem) = check_url(v) {
                bad(
                    key,
                    Some(&redact_url(v)),
                    &problem,
                    &format!("write it like {example:?}"),
                );
            }
        }
    };

    let lease = c.lease.as_ref();
    if lease.and_then(|l| l.kind).is_none() {
        bad(
            "lease.type",
            None,
            "is missing",
            "set it to \"static\" or \"consul\"",
        );
    }
    if let Some(l) = lease {
        url(
            &mut bad,
            "lease.advertise-url",
            l.advertise_url.as_ref(),
            "http://myhost:20202",
        );
        if let Some(consul) = &l.consul {
            url(
                &mut bad,
                "lease.consul.url",
                consul.url.as_ref(),
                "http://myhost:8500",
            );
        }
        let filtered = l.databases.as_ref().is_some_and(|d| !d.is_empty());
        if filtered && c.is_candidate() {
            bad(
                "lease.databases",
                None,
                "is a replication filter, which LiteFS refuses on candidate nodes (lease.candidate defaults to true)",
                "set lease.candidate: false on this node or remove lease.databases",
            );
        }
    }

    if let Some(b) = &c.backup {
        match b.kind.as_deref() {
            None | Some("" | "file" | "litefs-cloud") => {}
            Some(other) => bad(
                "backup.type",
                Some(other),
                "is not a LiteFS backup type",
                "use \"file\" or \"litefs-cloud\", or remove backup",
            ),
        }
        url(&mut bad, "backup.url", b.url.as_ref(), "https://litefs.fly.io");
    }

    for (key, d) in durations(c) {
        if d.as_nanos() < 0 {
            bad(
                key,
                Some(d.as_str()),
                "must not be negative",
                "use a duration such as \"10s\" or \"1m\"",
            );
        }
    }
    problems
}

/// What `fuse.dir` should be, for messages.
pub(crate) const FUSE_DIR_WHAT: &str = "the directory LiteFS mounts, e.g. \"/litefs\"";

/// Required, absolute, no `..`, no NUL.
pub(crate) fn check_dir(file: &str, key: &str, value: Option<&str>, what: &str) -> Result<(), ConfigError> {
    let bad =
        |v: Option<&str>, problem: &str, fix: String| Err(ConfigError::invalid(file, key, v, problem, fix));
    let v = match value {
        None => return bad(None, "is missing", format!("set it to {what}")),
        Some("") => {
            return bad(
                Some(""),
                "is empty (an unset ${VAR}?)",
                format!("set it to {what}"),
            )
        }
        Some(v) => v,
    };
    if v.contains('\0') {
        return bad(
            Some(v),
            "contains a NUL byte",
            "remove it; paths cannot contain NUL".into(),
        );
    }
    if !v.starts_with('/') {
        return bad(Some(v), "must be an absolute path", format!("write {what}"));
    }
    if Path::new(v).components().any(|c| c == Component::ParentDir) {
        return bad(
            Some(v),
            "must not contain \"..\" components",
            "write the directory's real path without \"..\"".into(),
        );
    }
    Ok(())
}

/// Every duration in the config with its key path.
fn durations(c: &LiteFsConfig) -> Vec<(&'static str, &GoDuration)> {
    let mut out: Vec<(&'static str, Option<&GoDuration>)> = Vec::new();
    if let Some(d) = &c.data {
        out.push(("data.retention", d.retention.as_ref()));
        out.push((
            "data.retention-monitor-interval",
            d.retention_monitor_interval.as_ref(),
        ));
    }
    if let Some(h) = &c.http {
        out.push(("http.snapshot-timeout", h.snapshot_timeout.as_ref()));
    }
    if let Some(p) = &c.proxy {
        out.push(("proxy.max-lag", p.max_lag.as_ref()));
        out.push((
            "proxy.primary-redirect-timeout",
            p.primary_redirect_timeout.as_ref(),
        ));
        out.push(("proxy.read-timeout", p.read_timeout.as_ref()));
        out.push(("proxy.read-header-timeout", p.read_header_timeout.as_ref()));
        out.push(("proxy.write-timeout", p.write_timeout.as_ref()));
        out.push(("proxy.idle-timeout", p.idle_timeout.as_ref()));
    }
    if let Some(l) = &c.lease {
        out.push(("lease.reconnect-delay", l.reconnect_delay.as_ref()));
        out.push(("lease.demote-delay", l.demote_delay.as_ref()));
        if let Some(k) = &l.consul {
            out.push(("lease.consul.ttl", k.ttl.as_ref()));
            out.push(("lease.consul.lock-delay", k.lock_delay.as_ref()));
        }
    }
    out.into_iter().filter_map(|(k, d)| Some((k, d?))).collect()
}

#[cfg(test)]
mod tests {
    use crate::parse::parse_str;

    const BASE: &str = "fuse:\n  dir: /litefs\ndata:\n  dir: /var/lib/litefs\nlease:\n  type: static\n";

    fn check(text: &str) -> Result<(), String> {
        parse_str(text, "litefs.yml", None)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// BASE with `from` replaced by `to`.
    fn with(from: &str, to: &str) -> Result<(), String> {
        assert!(BASE.contains(from), "{from}");
        check(&BASE.replacen(from, to, 1))
    }

    #[test]
    fn base_is_valid() {
        assert_eq!(check(BASE), Ok(()));
    }

    #[test]
    fn dirs_are_required_absolute_and_clean() {
        assert_eq!(
            with("fuse:\n  dir: /litefs\n", ""),
            Err(
                "litefs.yml: fuse.dir: is missing; set it to the directory LiteFS mounts, e.g. \"/litefs\""
                    .into()
            )
        );
        assert_eq!(
            with("  dir: /var/lib/litefs\n", "  dir: \"\"\n"),
            Err("litefs.yml: data.dir = \"\": is empty (an unset ${VAR}?); set it to LiteFS's own storage, e.g. \"/var/lib/litefs\"".into())
        );
        assert_eq!(
            with("/litefs\n", "litefs\n"),
            Err("litefs.yml: fuse.dir = \"litefs\": must be an absolute path; write the directory LiteFS mounts, e.g. \"/litefs\"".into())
        );
        assert_eq!(
            with("/var/lib/litefs", "/var/lib/../../etc"),
            Err("litefs.yml: data.dir = \"/var/lib/../../etc\": must not contain \"..\" components; write the directory's real path without \"..\"".into())
        );
        assert_eq!(
            with("/litefs\n", "\"/lite\\0fs\"\n"),
            Err("litefs.yml: fuse.dir = \"/lite\\0fs\": contains a NUL byte; remove it; paths cannot contain NUL".into())
        );
        assert_eq!(
            with("/var/lib/litefs", "/litefs/"),
            Err("litefs.yml: data.dir = \"/litefs/\": is the same directory as fuse.dir; give LiteFS a separate data directory, e.g. \"/var/lib/litefs\"".into())
        );
        // "..." is a name, not a parent reference.
        assert_eq!(with("/litefs\n", "/a/.../b\n"), Ok(()));
    }

    #[test]
    fn lease_type_is_required() {
        assert_eq!(
            with("lease:\n  type: static\n", ""),
            Err("litefs.yml: lease.type: is missing; set it to \"static\" or \"consul\"".into())
        );
    }

    #[test]
    fn urls_and_addresses_are_checked_and_tokens_hidden() {
        assert_eq!(
            check(&format!("{BASE}  advertise-url: myhost:20202\n")),
            Err("litefs.yml: lease.advertise-url = \"myhost:20202\": must start with http:// or https://; write it like \"http://myhost:20202\"".into())
        );
        assert_eq!(
            check(&format!("{BASE}  consul:\n    url: \"https://:t0k3n@consul .net/\"\n")),
            Err("litefs.yml: lease.consul.url = \"https://:xxxxx@consul .net/\": contains ' '; URLs have no spaces or control characters; write it like \"http://myhost:8500\"".into())
        );
        assert_eq!(
            check(&format!("{BASE}http:\n  addr: 20202\n")),
            Err("litefs.yml: http.addr = \"20202\": has no port; write host:port or :port; write it like \":20202\"".into())
        );
        assert_eq!(
            check(&format!("{BASE}proxy:\n  target: \":0\"\n")),
            Err("litefs.yml: proxy.target = \":0\": has port 0, which cannot be connected to; write it like \"localhost:8081\"".into())
        );
        // Empty optional values are unset, as in LiteFS.
        assert_eq!(
            check(&format!("{BASE}  advertise-url: \"\"\nhttp:\n  addr: \"\"\n")),
            Ok(())
        );
    }

    #[test]
    fn durations_must_not_be_negative() {
        assert_eq!(
            check(&format!("{BASE}  consul:\n    ttl: -10s\n")),
            Err("litefs.yml: lease.consul.ttl = \"-10s\": must not be negative; use a duration such as \"10s\" or \"1m\"".into())
        );
        assert_eq!(
            check(&format!("{BASE}  consul:\n    ttl: 0s\n    lock-delay: 1.5s\n")),
            Ok(())
        );
    }

    #[test]
    fn litefs_startup_rules() {
        assert_eq!(
            check(&format!("{BASE}  databases: [app.db]\n")),
            Err("litefs.yml: lease.databases: is a replication filter, which LiteFS refuses on candidate nodes (lease.candidate defaults to true); set lease.candidate: false on this node or remove lease.databases".into())
        );
        assert_eq!(
            check(&format!("{BASE}  databases: [app.db]\n  candidate: false\n")),
            Ok(())
        );
        assert_eq!(
            check(&format!("{BASE}exec:\n  - cmd: a\n  - cmd: \" \"\n")),
            Err("litefs.yml: exec[1].cmd = \" \": is an empty command, which LiteFS crashes on; give the command line to run, or remove the entry".into())
        );
        assert_eq!(
            check(&format!("{BASE}backup:\n  type: s3\n")),
            Err("litefs.yml: backup.type = \"s3\": is not a LiteFS backup type; use \"file\" or \"litefs-cloud\", or remove backup".into())
        );
    }
}
