//! `litefs-guard`: this node's LiteFS role as the guard sees it (usable as
//! a container health check), and litefs.yml check, render and init.
//!
//! Role detection and settings are the extension's own (`litefs_guard::status`,
//! the same environment variables and litefs.yml discovery); litefs.yml is
//! read, checked and rendered by `litefs_config`. No SQLite is linked.

mod config_cmd;
mod locate;
mod status_cmd;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit statuses; see `EXIT_CODES`.
pub mod exit {
    pub const PRIMARY: u8 = 0;
    pub const OK: u8 = 0;
    pub const REPLICA: u8 = 1;
    /// `config check` found problems; `config render`/`init` could not render.
    pub const PROBLEMS: u8 = 1;
    pub const NOT_RUNNING: u8 = 2;
    pub const OUTSIDE: u8 = 3;
    /// sysexits EX_USAGE: unknown flag, missing value, bad combination.
    pub const USAGE: u8 = 64;
    /// sysexits EX_CONFIG: the guard's settings are unusable (the
    /// extension would refuse to load), or no mount to look at.
    pub const CONFIG: u8 = 78;
}

const EXIT_CODES: &str = "\
Exit status:
  status         0 primary, 1 replica, 2 LiteFS not running, 3 the database is
                 outside every guarded mount (its writes are not guarded)
  config check   0 no problems, 1 problems (each printed as FILE:LINE:COL: key: reason)
  config render  0 rendered, 1 the file cannot be read or has a value of the wrong type
  config init    0 written to stdout, 1 the result has problems
  any command    64 usage error (bad flag or value), 78 unusable LITEFS_GUARD_* settings";

#[derive(Debug, Parser)]
#[command(
    name = "litefs-guard",
    version,
    about = "LiteFS role of this node as litefs_guard sees it, and litefs.yml tools",
    after_help = EXIT_CODES,
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// This node's role, the primary and the mount, as the guard sees them
    /// (same LITEFS_GUARD_* variables and litefs.yml discovery as the extension).
    #[command(after_help = EXIT_CODES)]
    Status(Box<StatusArgs>),
    /// Check, render or generate litefs.yml.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// The database to ask about (its mount, its mode and its halt lock
    /// count); without it, the configured mount (LITEFS_GUARD_DIR or
    /// litefs.yml's fuse.dir). Name it when you can: a replica that has lost
    /// its primary has no `.primary`, and only the database's read-only
    /// mode tells it from the primary.
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a litefs.yml as LiteFS would; print each problem as
    /// FILE:LINE:COL: key: reason. Without FILE, the file the guard reads
    /// (LITEFS_GUARD_CONFIG, else ./litefs.yml, $HOME/litefs.yml, /etc/litefs.yml).
    #[command(after_help = EXIT_CODES)]
    Check(InputArgs),
    /// Print the effective file: ${ENV} expanded (unless
    /// LITEFS_GUARD_CONFIG_EXPAND_ENV=0), secrets (Consul token, backup
    /// auth token, URL passwords) replaced by xxxxx.
    #[command(after_help = EXIT_CODES)]
    Render(InputArgs),
    /// Generate a litefs.yml from flags (or from a JSON object with
    /// --from-json), checked before it is printed to stdout.
    #[command(after_help = EXIT_CODES)]
    Init(Box<InitArgs>),
}

#[derive(Debug, Args)]
struct InputArgs {
    /// The file; `-` reads standard input. Default: the guard's discovery.
    #[arg(value_name = "FILE")]
    file: Option<String>,
    /// FILE holds a JSON object with litefs.yml's structure (keys as in the
    /// file, e.g. {"fuse": {"dir": "/litefs"}}); values are taken literally,
    /// never expanded. Needs FILE.
    #[arg(long)]
    from_json: bool,
    /// Print the problems as a JSON array of {file, line, column, key, report}.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Lease {
    Static,
    Consul,
}

#[derive(Debug, Args)]
struct InitArgs {
    /// Read the whole structure from a JSON object in FILE (`-`: stdin)
    /// instead of the flags below, which must then be left out.
    #[arg(long, value_name = "FILE")]
    from_json: Option<String>,
    /// lease.type.
    #[arg(long, value_enum, default_value = "static")]
    lease: Lease,
    /// fuse.dir, the LiteFS mount.
    #[arg(long, value_name = "DIR", default_value = "/litefs")]
    mount: String,
    /// data.dir, LiteFS's own storage.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/litefs")]
    data_dir: String,
    /// lease.candidate: whether this node may become the primary.
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    candidate: Option<bool>,
    /// lease.hostname (what other nodes see in .primary).
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,
    /// lease.advertise-url, e.g. http://node-a:20202.
    #[arg(long, value_name = "URL")]
    advertise_url: Option<String>,
    /// lease.consul.url (consul lease only).
    #[arg(long, value_name = "URL")]
    consul_url: Option<String>,
    /// lease.consul.key (consul lease only).
    #[arg(long, value_name = "KEY")]
    consul_key: Option<String>,
    /// proxy.addr, e.g. :8080.
    #[arg(long, value_name = "ADDR")]
    proxy_addr: Option<String>,
    /// proxy.target, e.g. localhost:8081.
    #[arg(long, value_name = "HOST:PORT")]
    proxy_target: Option<String>,
    /// proxy.db, the database the proxy tracks.
    #[arg(long, value_name = "NAME")]
    proxy_db: Option<String>,
    /// exec: the command LiteFS starts once mounted. Repeat for several
    /// commands, run in order.
    #[arg(long, value_name = "CMD")]
    exec: Vec<String>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version print to stdout and succeed.
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    ExitCode::from(match cli.command {
        Command::Status(a) => status_cmd::run(a.db.as_deref(), a.json),
        Command::Config(ConfigCommand::Check(a)) => config_cmd::check(&a),
        Command::Config(ConfigCommand::Render(a)) => config_cmd::render(&a),
        Command::Config(ConfigCommand::Init(a)) => config_cmd::init(&a),
    })
}

/// A usage error found after parsing: printed like clap's, exit 64.
fn usage(message: &str) -> u8 {
    eprintln!("error: {message}\n\nFor more information, try '--help'.");
    exit::USAGE
}
