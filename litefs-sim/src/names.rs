//! What LiteFS makes of a file name at the mount root.

/// Node-wide virtual file naming the current primary (replicas only).
pub const PRIMARY: &str = ".primary";
/// Node-wide virtual file with the replication lag.
pub const LAG: &str = ".lag";

/// The role a name plays, as LiteFS's `ParseFilename` sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Db,
    Journal,
    Wal,
    Shm,
    /// Virtual `NAME-pos`: replication position.
    Pos,
    /// Virtual `NAME-lock`: lock-only file (halt lock lives here).
    Lock,
    /// Virtual `.primary`.
    Primary,
    /// Virtual `.lag`.
    Lag,
}

impl Kind {
    /// Files that exist only inside the daemon.
    pub fn is_virtual(self) -> bool {
        matches!(self, Kind::Pos | Kind::Lock | Kind::Primary | Kind::Lag)
    }

    /// Files whose content changes only on the lease holder
    /// (write, truncate).
    pub fn is_guarded(self) -> bool {
        matches!(self, Kind::Db | Kind::Journal | Kind::Wal)
    }

    /// Files that only the lease holder may create or delete. LiteFS lets
    /// replicas create and remove -wal and -shm (readers need them).
    pub fn guards_existence(self) -> bool {
        matches!(self, Kind::Db | Kind::Journal)
    }

    /// Short name used in the event log.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Db => "db",
            Kind::Journal => "journal",
            Kind::Wal => "wal",
            Kind::Shm => "shm",
            Kind::Pos => "pos",
            Kind::Lock => "lock",
            Kind::Primary => "primary",
            Kind::Lag => "lag",
        }
    }
}

/// Splits a root-level name into its kind and the database it belongs to.
/// Everything without a known suffix is a database, as in LiteFS.
pub fn classify(name: &str) -> (Kind, &str) {
    match name {
        PRIMARY => return (Kind::Primary, ""),
        LAG => return (Kind::Lag, ""),
        _ => {}
    }
    const SUFFIXES: [(&str, Kind); 5] = [
        ("-journal", Kind::Journal),
        ("-wal", Kind::Wal),
        ("-shm", Kind::Shm),
        ("-pos", Kind::Pos),
        ("-lock", Kind::Lock),
    ];
    for (suffix, kind) in SUFFIXES {
        if let Some(db) = name.strip_suffix(suffix) {
            return (kind, db);
        }
    }
    (Kind::Db, name)
}

/// Names the daemon will serve: one path component, no NUL.
pub fn valid(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_like_litefs() {
        assert_eq!(classify("app.db"), (Kind::Db, "app.db"));
        assert_eq!(classify("app.db-journal"), (Kind::Journal, "app.db"));
        assert_eq!(classify("app.db-wal"), (Kind::Wal, "app.db"));
        assert_eq!(classify("app.db-shm"), (Kind::Shm, "app.db"));
        assert_eq!(classify("app.db-pos"), (Kind::Pos, "app.db"));
        assert_eq!(classify("app.db-lock"), (Kind::Lock, "app.db"));
        assert_eq!(classify(".primary"), (Kind::Primary, ""));
        assert_eq!(classify(".lag"), (Kind::Lag, ""));
        assert!(!valid("a/b"));
        assert!(!valid(".."));
        assert!(valid("x"));
    }
}
