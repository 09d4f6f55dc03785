//! Command-line parsing (no dependencies; the surface is small).

use std::ffi::OsString;
use std::path::PathBuf;

pub const USAGE: &str = "\
usage: litefs-sim --backing DIR --node NAME=MOUNTDIR [--node NAME=MOUNTDIR ...]
                  [--control SOCKET] [--log FILE] [--lease NAME|none]
                  [--threads N] [--exit-on-stdin-eof] [--allow-other]
                  [--halt-expiry-ms MS]

Mounts one FUSE filesystem per node over the shared backing DIR. Only the
lease holder (default: the first node) accepts writes to databases.
  --control SOCKET      unix socket for one-line commands (lease NODE|none, hold/release NODE, status, help, quit)
  --log FILE            append one line per write accepted/refused and per lease change
  --threads N           FUSE worker threads per mount (default 8)
  --exit-on-stdin-eof   unmount and exit when stdin closes (parent died)
  --allow-other         let other users use the mounts (allow_other)
  --halt-expiry-ms MS   a halt lock ends after MS milliseconds (default 30000, LiteFS's TTL)";

/// Who holds the lease at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InitialLease {
    FirstNode,
    Nobody,
    Node(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    pub backing: PathBuf,
    pub nodes: Vec<(String, PathBuf)>,
    pub control: Option<PathBuf>,
    pub log: Option<PathBuf>,
    pub lease: InitialLease,
    pub threads: usize,
    pub exit_on_stdin_eof: bool,
    pub allow_other: bool,
    pub halt_expiry_ms: u64,
}

fn valid_node_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// Parses arguments; `Ok(None)` means help was asked for.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Option<Args>, String> {
    let mut backing = None;
    let mut nodes: Vec<(String, PathBuf)> = Vec::new();
    let mut control = None;
    let mut log = None;
    let mut lease = InitialLease::FirstNode;
    let mut threads = 8usize;
    let mut exit_on_stdin_eof = false;
    let mut allow_other = false;
    let mut halt_expiry_ms = 30_000u64;

    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let arg = arg
            .into_string()
            .map_err(|a| format!("argument is not UTF-8: {a:?}"))?;
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it
                    .next()
                    .and_then(|v| v.into_string().ok())
                    .ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--backing" => backing = Some(PathBuf::from(value("--backing")?)),
            "--node" => {
                let v = value("--node")?;
                let (name, dir) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--node wants NAME=MOUNTDIR, got {v:?}"))?;
                if !valid_node_name(name) {
                    return Err(format!("bad node name {name:?} (use [A-Za-z0-9._-])"));
                }
                if dir.is_empty() {
                    return Err(format!("node {name} has an empty mount dir"));
                }
                if nodes.iter().any(|(n, _)| n == name) {
                    return Err(format!("node {name} given twice"));
                }
                nodes.push((name.to_string(), PathBuf::from(dir)));
            }
            "--control" => control = Some(PathBuf::from(value("--control")?)),
            "--log" => log = Some(PathBuf::from(value("--log")?)),
            "--lease" => {
                lease = match value("--lease")?.as_str() {
                    "none" => InitialLease::Nobody,
                    n => InitialLease::Node(n.to_string()),
                }
            }
            "--threads" => {
                let v = value("--threads")?;
                threads = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or_else(|| format!("--threads wants 1..64, got {v:?}"))?;
            }
            "--halt-expiry-ms" => {
                let v = value("--halt-expiry-ms")?;
                halt_expiry_ms = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=86_400_000).contains(n))
                    .ok_or_else(|| format!("--halt-expiry-ms wants 1..86400000, got {v:?}"))?;
            }
            "--exit-on-stdin-eof" => exit_on_stdin_eof = true,
            "--allow-other" => allow_other = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let backing = backing.ok_or("--backing is required")?;
    if nodes.is_empty() {
        return Err("at least one --node NAME=MOUNTDIR is required".into());
    }
    for (i, (_, a)) in nodes.iter().enumerate() {
        if nodes[..i].iter().any(|(_, b)| b == a) {
            return Err(format!("mount dir {} used twice", a.display()));
        }
    }
    if let InitialLease::Node(n) = &lease {
        if !nodes.iter().any(|(name, _)| name == n) {
            return Err(format!("--lease names unknown node {n:?}"));
        }
    }
    Ok(Some(Args {
        backing,
        nodes,
        control,
        log,
        lease,
        threads,
        exit_on_stdin_eof,
        allow_other,
        halt_expiry_ms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<Option<Args>, String> {
        parse(v.iter().map(OsString::from))
    }

    #[test]
    fn parses_the_documented_form() {
        let a = p(&[
            "--backing",
            "/b",
            "--node",
            "n1=/m/1",
            "--node=n2=/m/2",
            "--control",
            "/s",
            "--log=/l",
            "--lease",
            "n2",
            "--threads",
            "8",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.nodes.len(), 2);
        assert_eq!(a.nodes[1], ("n2".into(), PathBuf::from("/m/2")));
        assert_eq!(a.lease, InitialLease::Node("n2".into()));
        assert_eq!(a.threads, 8);
        assert_eq!(a.log, Some(PathBuf::from("/l")));
        assert_eq!(a.halt_expiry_ms, 30_000);
        let b = p(&["--backing=/b", "--node=a=/m", "--halt-expiry-ms", "250"])
            .unwrap()
            .unwrap();
        assert_eq!(b.halt_expiry_ms, 250);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(p(&[]).is_err());
        assert!(p(&["--backing", "/b"]).is_err());
        assert!(p(&["--backing", "/b", "--node", "n1"]).is_err());
        assert!(p(&["--backing", "/b", "--node", "n 1=/m"]).is_err());
        assert!(p(&["--backing", "/b", "--node", "a=/m", "--node", "a=/n"]).is_err());
        assert!(p(&["--backing", "/b", "--node", "a=/m", "--node", "b=/m"]).is_err());
        assert!(p(&["--backing", "/b", "--node", "a=/m", "--lease", "z"]).is_err());
        assert!(p(&["--backing", "/b", "--node", "a=/m", "--threads", "0"]).is_err());
        assert!(p(&["--bogus"]).is_err());
        for bad in ["0", "-1", "x", "99999999999"] {
            assert!(p(&["--backing", "/b", "--node", "a=/m", "--halt-expiry-ms", bad]).is_err());
        }
        assert_eq!(p(&["--help"]).unwrap(), None);
    }
}
