//! This node's status as the guard sees it, for tools outside SQLite (the
//! `litefs-guard status` command): the one public API of the crate besides
//! the extension's entry point. Built on the same settings, location and
//! role detection as the extension, so the answer is the guard's own.

use crate::litefs_files;
use crate::position::Lag;
use crate::role::{self, Role};
use crate::settings;
use std::fmt;
use std::path::{Path, PathBuf};

/// What the guard would do with writes to the database (or the mount).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    /// This node may write.
    Primary,
    /// Writes are refused: LiteFS says another node is the primary (or
    /// shows the database read-only).
    Replica,
    /// The mount is missing, is not FUSE (when required) or its `.primary`
    /// cannot be read.
    NotRunning,
    /// The database is outside every guarded mount: the guard lets its
    /// writes through untouched, and LiteFS does not replicate it.
    Outside,
}

impl NodeRole {
    /// `primary`, `replica`, `not_running`, `outside`.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::Primary => "primary",
            NodeRole::Replica => "replica",
            NodeRole::NotRunning => "not_running",
            NodeRole::Outside => "outside",
        }
    }
}

/// One look at the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub role: NodeRole,
    /// The primary's hostname, when this node is a replica that knows it.
    pub primary: Option<String>,
    /// The mount looked at: the one guarding the database, else the
    /// configured one.
    pub mount: Option<PathBuf>,
    /// Where the mount came from: `LITEFS_GUARD_DIR`, `litefs.yml`,
    /// `database directory`.
    pub mount_source: &'static str,
    /// The database as the guard names it (inside the mount), or as given
    /// when it is outside.
    pub database: Option<PathBuf>,
    /// Why this node may not write (None on the primary).
    pub reason: Option<String>,
    /// A replica holding LiteFS's halt lock on the database (it may write).
    pub halt_lock: bool,
    /// `replica` (LiteFS's `.primary`) or `primary`.
    pub marker: &'static str,
    pub require_fuse: bool,
    /// The litefs.yml read, if any.
    pub config_file: Option<PathBuf>,
    /// What LiteFS would refuse in that file, or why it could not be read.
    pub config_problems: Vec<String>,
    /// The database's replication position (`NAME-pos`, `TXID/CHECKSUM`),
    /// when LiteFS shows one.
    pub position: Option<String>,
    /// Replication lag from `.lag` in ms (0 on the primary); None when
    /// unreadable or when the replica never caught up.
    pub lag_ms: Option<i64>,
}

/// Why the status cannot be told: the settings are unusable (the extension
/// would refuse to load), or there is nothing to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusError(String);

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StatusError {}

/// The status of the database at `db` (absolute, or relative to the
/// working directory), or of the configured mount when `db` is None.
/// Settings come from the process environment and litefs.yml discovery,
/// exactly as the loaded extension reads them.
pub fn node_status(db: Option<&Path>) -> Result<NodeStatus, StatusError> {
    let s = settings::global().map_err(|e| StatusError(e.to_string()))?;
    let db = match db {
        Some(p) => Some(std::path::absolute(p).map_err(|e| StatusError(format!("{}: {e}", p.display())))?),
        None => None,
    };
    let mut st = NodeStatus {
        role: NodeRole::NotRunning,
        primary: None,
        mount: s.mount_dir.clone(),
        mount_source: s.mount_source.as_str(),
        database: db.clone(),
        reason: None,
        halt_lock: false,
        marker: s.marker.as_str(),
        require_fuse: s.require_fuse,
        config_file: s.config.as_ref().map(|c| c.path.clone()),
        config_problems: match (&s.config, &s.config_error) {
            (Some(c), _) => c.document.problems.iter().map(ToString::to_string).collect(),
            (None, Some(e)) => vec![e.clone()],
            (None, None) => Vec::new(),
        },
        position: None,
        lag_ms: None,
    };
    let (mount, located_db) = match db.as_deref() {
        Some(path) => match s.locate(path) {
            Some(l) => (l.mount, Some(l.db)),
            None => {
                st.role = NodeRole::Outside;
                st.reason = Some(format!(
                    "{} is outside the guarded mount {}: the guard does not watch it and LiteFS does not replicate it",
                    path.display(),
                    s.mount_dir.as_deref().map_or_else(String::new, |m| m.display().to_string())
                ));
                return Ok(st);
            }
        },
        None => match &s.mount_dir {
            Some(m) => (m.clone(), None),
            None => {
                return Err(StatusError(
                    "no LiteFS mount is configured: name a database (--db), or set LITEFS_GUARD_DIR, or put a litefs.yml with fuse.dir in ./, $HOME or /etc (or name it with LITEFS_GUARD_CONFIG)".into(),
                ))
            }
        },
    };
    // A database that does not exist yet is asked about through its mount
    // (on the primary, writing would create it). The extension only ever
    // asks about open databases, whose file a missing one means LiteFS went away.
    let probe_db = located_db
        .as_deref()
        .filter(|d| std::fs::symlink_metadata(d).is_ok());
    let r = role::detect(role::Probe {
        mount: &mount,
        marker: s.marker,
        require_fuse: s.require_fuse,
        db: probe_db,
    });
    st.role = match r {
        Role::Primary => NodeRole::Primary,
        Role::Replica { .. } | Role::ReadOnlyFile(_) => NodeRole::Replica,
        Role::NotRunning(_) => NodeRole::NotRunning,
    };
    st.primary = r.primary_host().map(str::to_owned);
    st.halt_lock = matches!(r, Role::Replica { halt_lock: true, .. });
    // A replica holding the halt lock may write, but is still a replica.
    st.reason = match &r {
        Role::Primary => None,
        Role::Replica { halt_lock: true, .. } => Some(format!(
            "this node is a replica holding the halt lock; the primary is {}",
            r.primary_host().unwrap_or("unknown")
        )),
        _ => r.refusal().map(|why| why.to_string()),
    };
    if st.role != NodeRole::NotRunning {
        if let Some(d) = &located_db {
            let at = crate::location::Located {
                mount: mount.clone(),
                db: d.clone(),
            };
            st.position = litefs_files::position(&at).ok().map(|p| p.to_string());
        }
        st.lag_ms = match litefs_files::lag(&mount) {
            Ok(Lag::Millis(ms)) => Some(ms),
            _ => None,
        };
    }
    st.mount = Some(mount);
    st.database = located_db.or(db);
    Ok(st)
}

/// How the guard finds and reads litefs.yml, from the process environment
/// (LITEFS_GUARD_CONFIG, `$HOME`, LITEFS_GUARD_CONFIG_EXPAND_ENV): the
/// `litefs-guard config` commands read the file the guard would read, the
/// way it reads it, with `litefs_config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSource {
    /// LITEFS_GUARD_CONFIG: when set, the only file read.
    pub explicit: Option<PathBuf>,
    /// LiteFS's search order: `./litefs.yml`, `$HOME/litefs.yml`, `/etc/litefs.yml`.
    pub candidates: Vec<PathBuf>,
    /// Whether `${VAR}` references are expanded (LITEFS_GUARD_CONFIG_EXPAND_ENV).
    pub expand: bool,
}

impl ConfigSource {
    /// The guard's own: from the process environment and working directory.
    pub fn from_env() -> Result<ConfigSource, StatusError> {
        settings::with_process_sources(settings::config_places)
            .map(|p| ConfigSource {
                explicit: p.explicit,
                candidates: p.candidates,
                expand: p.expand,
            })
            .map_err(|e| StatusError(e.to_string()))
    }

    /// One variable for `${VAR}` expansion, as the guard resolves it
    /// (an unset `HOSTNAME` is the kernel's host name, as in LiteFS).
    pub fn var(name: &str) -> Option<String> {
        settings::with_process_sources(|src| (src.var)(name)).map(|v| v.to_string_lossy().into_owned())
    }
}
