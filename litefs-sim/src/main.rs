//! `litefs-sim` binary: parse flags, mount every node, serve the control
//! socket, and unmount everything on SIGINT/SIGTERM/SIGHUP, `quit`, or
//! (optionally) stdin closing.

use std::io::Read;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use litefs_sim::cli::{self, InitialLease};
use litefs_sim::cluster::Cluster;
use litefs_sim::log::EventLog;
use litefs_sim::{control, mounts, signals};

fn main() {
    match run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("litefs-sim: {e}");
            std::process::exit(1);
        }
    }
}

fn run() -> Result<i32, String> {
    let args = match cli::parse(std::env::args_os().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{}", cli::USAGE);
            return Ok(0);
        }
        Err(e) => {
            eprintln!("litefs-sim: {e}\n{}", cli::USAGE);
            return Ok(2);
        }
    };
    // Before any thread exists, so only the signal thread sees these.
    signals::block_shutdown_signals().map_err(|e| format!("sigmask: {e}"))?;

    std::fs::create_dir_all(&args.backing).map_err(|e| format!("backing {}: {e}", args.backing.display()))?;
    for (_, dir) in &args.nodes {
        std::fs::create_dir_all(dir).map_err(|e| format!("mount dir {}: {e}", dir.display()))?;
    }
    let log = EventLog::open(args.log.as_deref()).map_err(|e| format!("log: {e}"))?;
    let names: Vec<String> = args.nodes.iter().map(|(n, _)| n.clone()).collect();
    let holder = match &args.lease {
        InitialLease::FirstNode => Some(0),
        InitialLease::Nobody => None,
        InitialLease::Node(n) => names.iter().position(|x| x == n),
    };
    let cluster = Arc::new(Cluster::new(
        &args.backing,
        names.clone(),
        holder,
        log,
        Duration::from_millis(args.halt_expiry_ms),
    ));
    let lease_name = cluster.lease.holder_name().unwrap_or("none").to_string();
    cluster.log.event(&[
        ("op", &"start"),
        ("nodes", &names.join(",")),
        ("lease", &lease_name),
        ("pid", &std::process::id()),
    ]);

    let mut live = Vec::new();
    for (i, (name, dir)) in args.nodes.iter().enumerate() {
        match mounts::mount_node(cluster.clone(), i, dir, args.threads, args.allow_other) {
            Ok(m) => live.push(m),
            Err(e) => {
                for m in &live {
                    let _ = mounts::unmount(&m.path);
                }
                return Err(format!("mount {name} at {}: {e}", dir.display()));
            }
        }
    }

    let (tx, rx) = mpsc::channel::<String>();
    if let Some(sock) = &args.control {
        control::serve(sock, cluster.clone(), tx.clone())
            .map_err(|e| format!("control socket {}: {e}", sock.display()))?;
    }
    {
        let tx = tx.clone();
        thread::Builder::new()
            .name("signals".into())
            .spawn(move || loop {
                let sig = signals::wait_shutdown_signal();
                let _ = tx.send(format!("signal-{sig}"));
            })
            .map_err(|e| e.to_string())?;
    }
    {
        // Emulates FUSE_INTERRUPT for blocked F_SETLKW callers (fuser drops
        // it), and ends halt locks past their TTL.
        let cluster = cluster.clone();
        thread::Builder::new()
            .name("lock-interrupts".into())
            .spawn(move || loop {
                thread::sleep(Duration::from_millis(20));
                if cluster.locks.waiting() > 0 {
                    cluster.locks.cancel_interrupted(signals::thread_interrupted);
                }
                cluster.halt_tick(signals::thread_interrupted);
            })
            .map_err(|e| e.to_string())?;
    }
    if args.exit_on_stdin_eof {
        let tx = tx.clone();
        thread::Builder::new()
            .name("stdin-watch".into())
            .spawn(move || {
                let mut sink = [0u8; 256];
                let mut stdin = std::io::stdin();
                while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
                let _ = tx.send("stdin-closed".into());
            })
            .map_err(|e| e.to_string())?;
    }

    let mounted: Vec<String> = live
        .iter()
        .map(|m| format!("{}={}", m.node, m.path.display()))
        .collect();
    eprintln!("litefs-sim: ready, lease={lease_name}, {}", mounted.join(" "));

    let reason = rx.recv().unwrap_or_else(|_| "channel-closed".into());
    cluster.log.event(&[("op", &"stop"), ("reason", &reason)]);
    cluster.locks.cancel_all();
    let mut code = 0;
    for m in &live {
        if let Err(e) = mounts::unmount(&m.path) {
            eprintln!("litefs-sim: unmount {}: {e}", m.path.display());
            code = 1;
        }
    }
    if let Some(sock) = &args.control {
        let _ = std::fs::remove_file(sock);
    }
    Ok(code)
}
