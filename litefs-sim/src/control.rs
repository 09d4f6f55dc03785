//! The control channel: a unix socket taking one-line text commands, each
//! answered by one line starting with `ok` or `err`.
//!
//! ```text
//! lease NODE | lease none | lease   move (or show) the lease
//! status                            ok lease=n1 nodes=n1,n2 held=none halts=0 waiting_halts=0 waiting_locks=0
//! stats                             ok n1.accepted=3 n1.refused=0 n2.accepted=0 n2.refused=1
//! locks                             ok count=1 app.db:n1:R:0-0 ...
//! pos DB [NODE]                     ok 0000000000000003/9e3c...
//! hold NODE | release NODE          ok held=n2 | ok released=n2
//! halts                             ok count=1 app.db:n2
//! ping | help | quit
//! ```

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread;

use crate::cluster::Cluster;
use crate::locks::{LockType, HALT_NODE};
use crate::pos;

/// Longest command line accepted; anything longer closes the connection.
const MAX_LINE: u64 = 4096;

/// What one command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub reply: String,
    pub quit: bool,
}

fn ok(s: impl Into<String>) -> Answer {
    Answer {
        reply: format!("ok {}", s.into()).trim_end().to_string(),
        quit: false,
    }
}

fn err(s: impl Into<String>) -> Answer {
    Answer {
        reply: format!("err {}", s.into()),
        quit: false,
    }
}

/// Executes one command; never panics on any input.
pub fn execute(cluster: &Cluster, line: &str) -> Answer {
    let mut words = line.split_whitespace();
    let cmd = words.next().unwrap_or("");
    let arg = words.next();
    let arg2 = words.next();
    // Only `pos DB NODE` takes two arguments.
    if words.next().is_some() || (arg2.is_some() && cmd != "pos") {
        return err("too many arguments");
    }
    let node_index = |name: &str| {
        cluster.lease.index_of(name).ok_or_else(|| {
            err(format!(
                "unknown node {name:?} (nodes: {})",
                cluster.lease.nodes().join(",")
            ))
        })
    };
    let nodes = cluster.lease.nodes().join(",");
    let holder = || cluster.lease.holder_name().unwrap_or("none").to_string();
    match (cmd, arg) {
        ("", _) => err("empty command"),
        ("lease", None) => ok(format!("lease={}", holder())),
        ("lease", Some("none")) => {
            cluster.set_lease(None);
            ok("lease=none")
        }
        ("lease", Some(name)) => match cluster.lease.index_of(name) {
            Some(i) => {
                cluster.set_lease(Some(i));
                ok(format!("lease={name}"))
            }
            None => err(format!("unknown node {name:?} (nodes: {nodes})")),
        },
        ("status", None) => {
            let held: Vec<&str> = cluster
                .replication
                .held_nodes()
                .into_iter()
                .map(|i| cluster.node_name(i))
                .collect();
            let held = if held.is_empty() {
                "none".to_string()
            } else {
                held.join(",")
            };
            // waiting_locks stays last: callers read it with split(' ').last().
            ok(format!(
                "lease={} nodes={nodes} held={held} halts={} waiting_halts={} waiting_locks={}",
                holder(),
                cluster.halts.held().len(),
                cluster.halts.waiting(),
                cluster.locks.waiting()
            ))
        }
        ("hold", Some(name)) => match node_index(name) {
            Ok(i) => match cluster.hold_node(i) {
                Ok(()) => ok(format!("held={name}")),
                Err(e) => err(e),
            },
            Err(e) => e,
        },
        ("release", Some(name)) => match node_index(name) {
            Ok(i) if cluster.release_node(i, "command") => ok(format!("released={name}")),
            Ok(_) => err(format!("{name} is not held")),
            Err(e) => e,
        },
        ("halts", None) => {
            let held = cluster.halts.held();
            let mut s = format!("count={}", held.len());
            for (db, h) in held {
                let _ = write!(s, " {db}:{}", cluster.node_name(h.owner.node));
            }
            ok(s)
        }
        ("stats", None) => ok(cluster.stats.render(cluster.lease.nodes())),
        ("locks", None) => {
            let held = cluster.locks.held();
            let mut s = format!("count={}", held.len());
            for (file, h) in held {
                let t = if h.typ == LockType::Write { "W" } else { "R" };
                let node = if h.owner.node == HALT_NODE {
                    "halt"
                } else {
                    cluster.node_name(h.owner.node)
                };
                let _ = write!(s, " {file}:{node}:{t}:{}-{}", h.start, h.end);
            }
            ok(s)
        }
        ("pos", Some(db)) => {
            let (txid, chk) = match arg2.map(node_index) {
                None => cluster.pos.get(db),
                Some(Ok(i)) => cluster.pos_of(i, db),
                Some(Err(e)) => return e,
            };
            ok(pos::pos_text(txid, chk))
        }
        ("ping", None) => ok("pong"),
        ("help", None) => ok(
            "commands: lease [NODE|none], status, stats, locks, pos DB [NODE], hold NODE, release NODE, halts, ping, quit",
        ),
        ("quit", None) => Answer {
            reply: "ok bye".into(),
            quit: true,
        },
        _ => err(format!("unknown command {line:?}; try help")),
    }
}

fn serve_conn(stream: UnixStream, cluster: Arc<Cluster>, quit: Sender<String>) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut buf = Vec::new();
        let n = reader.by_ref().take(MAX_LINE + 1).read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if buf.last() != Some(&b'\n') && n as u64 > MAX_LINE {
            writeln!(out, "err line too long")?;
            return Ok(());
        }
        let line = String::from_utf8_lossy(&buf);
        let answer = execute(&cluster, line.trim());
        writeln!(out, "{}", answer.reply)?;
        if answer.quit {
            let _ = quit.send("quit".into());
            return Ok(());
        }
    }
}

/// Binds the socket (replacing a stale one) and serves it on a thread.
pub fn serve(path: &Path, cluster: Arc<Cluster>, quit: Sender<String>) -> io::Result<()> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    thread::Builder::new().name("control".into()).spawn(move || {
        for stream in listener.incoming().flatten() {
            let cluster = cluster.clone();
            let quit = quit.clone();
            let _ = thread::Builder::new()
                .name("control-conn".into())
                .spawn(move || serve_conn(stream, cluster, quit));
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::EventLog;

    fn cluster() -> Cluster {
        Cluster::new(
            Path::new("/nonexistent"),
            vec!["n1".into(), "n2".into()],
            Some(0),
            EventLog::open(None).unwrap(),
            std::time::Duration::from_secs(30),
        )
    }

    #[test]
    fn commands() {
        let c = cluster();
        assert_eq!(execute(&c, "lease").reply, "ok lease=n1");
        assert_eq!(execute(&c, "lease n2").reply, "ok lease=n2");
        assert_eq!(c.lease.holder(), Some(1));
        assert_eq!(execute(&c, "lease none").reply, "ok lease=none");
        assert_eq!(c.lease.holder(), None);
        assert!(execute(&c, "lease n9").reply.starts_with("err unknown node"));
        assert_eq!(c.lease.holder(), None);
        assert_eq!(
            execute(&c, "stats").reply,
            "ok n1.accepted=0 n1.refused=0 n2.accepted=0 n2.refused=0"
        );
        assert!(execute(&c, "status")
            .reply
            .starts_with("ok lease=none nodes=n1,n2"));
        assert!(execute(&c, "quit").quit);
        assert_eq!(execute(&c, "locks").reply, "ok count=0");
        assert_eq!(execute(&c, "pos x").reply, "ok 0000000000000000/0000000000000000");
    }

    #[test]
    fn hold_and_release() {
        let c = cluster();
        assert_eq!(execute(&c, "hold n1").reply, "err n1 holds the lease");
        assert_eq!(execute(&c, "hold n2").reply, "ok held=n2");
        assert_eq!(execute(&c, "hold n2").reply, "err n2 is held already");
        c.pos.bump("x");
        assert_eq!(
            execute(&c, "pos x n2").reply,
            "ok 0000000000000000/0000000000000000"
        );
        assert!(execute(&c, "pos x n1").reply.starts_with("ok 0000000000000001/"));
        assert!(execute(&c, "status").reply.contains(" held=n2 halts=0 "));
        assert_eq!(execute(&c, "release n2").reply, "ok released=n2");
        assert_eq!(execute(&c, "release n2").reply, "err n2 is not held");
        assert!(execute(&c, "pos x n2").reply.starts_with("ok 0000000000000001/"));
        // Moving the lease to a held node releases it first.
        execute(&c, "hold n2");
        assert_eq!(execute(&c, "lease n2").reply, "ok lease=n2");
        assert!(!c.replication.is_held(1));
        assert_eq!(execute(&c, "halts").reply, "ok count=0");
        for bad in [
            "hold",
            "hold n9",
            "release n9",
            "pos x n9",
            "pos x n1 n2",
            "hold n1 n2",
            "halts x",
        ] {
            assert!(execute(&c, bad).reply.starts_with("err "), "{bad}");
        }
    }

    #[test]
    fn garbage_is_refused_without_panic() {
        let c = cluster();
        for bad in [
            "",
            "   ",
            "lease a b",
            "\u{0}\u{1}",
            "stats now",
            "🙂",
            "LEASE n1",
            "quit x",
        ] {
            let a = execute(&c, bad);
            assert!(a.reply.starts_with("err "), "{bad:?} -> {a:?}");
            assert!(!a.quit);
        }
        assert_eq!(c.lease.holder(), Some(0));
    }
}
