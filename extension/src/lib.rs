//! litefs_guard: a SQLite loadable extension that makes every SQLite client
//! on a LiteFS node safe. `lib.rs` only wires the modules together:
//!
//! - [`settings`]: what the guard is configured to do (litefs.yml through the `litefs_config` crate);
//! - [`role`] / [`halt_lock`]: the one place that decides whether this node may write;
//! - [`authorizer`]: prepare-time veto of writes, from SQLite's own parser;
//! - [`vfs`]: execution-time write gate, IMMEDIATE for plain BEGIN, the WAL rule;
//! - [`functions`]: `litefs_is_primary()`, `litefs_primary()`, `litefs_config()`,
//!   and the position functions (`litefs_txid()`, `litefs_wait_txid()`, …);
//! - [`position`] / [`litefs_files`]: LiteFS's `NAME-pos` and `.lag`, parsed and read;
//! - [`setup`]: sets up each connection; [`connection`]: what the guard
//!   knows about one; [`entry`]: the entry point; [`error`]: the one error type;
//! - [`sqlite_api`]: the loading SQLite's API table (no SQLite is linked in);
//! - [`status`]: the one public Rust API, this node's status for the
//!   `litefs-guard` command line tool (settings, location and role, no SQLite).

mod sqlite_api;

mod authorizer;
/// Public for the fuzz target and tools that read litefs.yml.
mod connection;
mod entry;
mod error;
mod functions;
mod halt_lock;
mod litefs_files;
mod location;
mod position;
mod role;
mod settings;
mod setup;
pub mod status;
mod vfs;
mod wal_rule;

pub use entry::sqlite3_litefsguard_init;
