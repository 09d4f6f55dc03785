//! Settings: read once per process from the environment (and litefs.yml),
//! validated as a whole so nothing is ever half-configured.

use crate::config::{self, Discovered};
use crate::error::SettingsError;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

/// Which meaning the `.primary` marker file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// LiteFS's own: `.primary` exists on replicas and names the primary.
    Replica,
    /// Opt-in: a marker file present on the primary means "this is the primary".
    Primary,
}

impl Marker {
    pub fn as_str(self) -> &'static str {
        match self {
            Marker::Replica => "replica",
            Marker::Primary => "primary",
        }
    }
}

/// Where the mount directory came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountSource {
    /// LITEFS_GUARD_DIR.
    Env,
    /// `fuse.dir` of litefs.yml.
    Config,
    /// Neither: each database's own directory is its mount.
    DatabaseDir,
}

impl MountSource {
    pub fn as_str(self) -> &'static str {
        match self {
            MountSource::Env => "LITEFS_GUARD_DIR",
            MountSource::Config => "litefs.yml",
            MountSource::DatabaseDir => "database directory",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// The mount, when one is configured (env or litefs.yml).
    pub mount_dir: Option<PathBuf>,
    pub mount_source: MountSource,
    pub marker: Marker,
    /// Escalate plain BEGIN to an IMMEDIATE-style write lock on the primary.
    pub immediate: bool,
    /// Refuse writes unless the mount is a FUSE filesystem.
    pub require_fuse: bool,
    /// Put guarded databases in WAL on the primary and refuse leaving it.
    pub keep_wal: bool,
    pub config: Option<Discovered>,
}

impl Settings {
    /// The mount directory that guards `db_path`, or None when the file is
    /// outside the guarded location (and so passes through untouched).
    pub fn mount_for(&self, db_path: &Path) -> Option<PathBuf> {
        match &self.mount_dir {
            Some(m) => db_path.starts_with(m).then(|| m.clone()),
            None => db_path.parent().map(Path::to_path_buf),
        }
    }
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// The process-wide settings, read from the environment on first use.
/// A failed read is not stored, so fixing the environment and loading again works.
pub fn global() -> Result<&'static Settings, SettingsError> {
    if let Some(s) = SETTINGS.get() {
        return Ok(s);
    }
    let s = from_env(|k| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned()))?;
    Ok(SETTINGS.get_or_init(|| s))
}

/// The settings if they were read already (never reads the environment).
pub fn loaded() -> Option<&'static Settings> {
    SETTINGS.get()
}

/// Builds settings from an environment lookup (testable without the real env).
pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
    let var = |k: &str| get(k).filter(|v| !v.is_empty());
    let marker = match var("LITEFS_GUARD_MARKER").as_deref() {
        None | Some("replica") => Marker::Replica,
        Some("primary") => Marker::Primary,
        Some(other) => {
            return Err(SettingsError::Invalid {
                var: "LITEFS_GUARD_MARKER",
                value: other.into(),
                reason: "use \"replica\" (LiteFS's .primary, present on replicas; the default) or \"primary\" (a marker present on the primary)".into(),
            })
        }
    };
    let immediate = parse_bool("LITEFS_GUARD_IMMEDIATE", var("LITEFS_GUARD_IMMEDIATE"), true)?;
    let keep_wal = parse_bool("LITEFS_GUARD_WAL", var("LITEFS_GUARD_WAL"), true)?;
    let env_dir = match var("LITEFS_GUARD_DIR") {
        Some(d) => Some(validate_dir("LITEFS_GUARD_DIR", &d)?),
        None => None,
    };
    let config = config::discover().map_err(|e| SettingsError::Config(e.to_string()))?;
    let (mount_dir, mount_source) = match (env_dir, config.as_ref().and_then(|c| c.config.mount_dir())) {
        (Some(d), _) => (Some(d), MountSource::Env),
        (None, Some(d)) => (Some(canonical(d)), MountSource::Config),
        (None, None) => (None, MountSource::DatabaseDir),
    };
    let require_fuse = parse_bool(
        "LITEFS_GUARD_REQUIRE_FUSE",
        var("LITEFS_GUARD_REQUIRE_FUSE"),
        mount_source == MountSource::Config,
    )?;
    Ok(Settings {
        mount_dir,
        mount_source,
        marker,
        immediate,
        require_fuse,
        keep_wal,
        config,
    })
}

fn parse_bool(var: &'static str, value: Option<String>, default: bool) -> Result<bool, SettingsError> {
    match value.as_deref() {
        None => Ok(default),
        Some("1") | Some("true") | Some("on") | Some("yes") => Ok(true),
        Some("0") | Some("false") | Some("off") | Some("no") => Ok(false),
        Some(other) => Err(SettingsError::Invalid {
            var,
            value: other.into(),
            reason: "use 1 or 0".into(),
        }),
    }
}

/// An absolute path with no `..` component and no NUL byte.
pub fn validate_dir(var: &'static str, value: &str) -> Result<PathBuf, SettingsError> {
    let bad = |reason: &str| SettingsError::Invalid {
        var,
        value: value.into(),
        reason: reason.into(),
    };
    if value.contains('\0') {
        return Err(bad("the path contains a NUL byte"));
    }
    let p = Path::new(value);
    if !p.is_absolute() {
        return Err(bad("the path must be absolute, e.g. /litefs"));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(bad("the path must not contain a \"..\" component"));
    }
    Ok(canonical(p))
}

/// Resolves symlinks when the directory exists (SQLite hands the VFS
/// resolved paths); keeps the path as given while the mount is absent.
fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn defaults() {
        let s = from_env(env(&[])).unwrap();
        assert_eq!(s.marker, Marker::Replica);
        assert!(s.immediate);
        assert!(!s.require_fuse);
        assert_eq!(s.mount_dir, None);
        assert_eq!(s.mount_for(Path::new("/a/b.db")), Some(PathBuf::from("/a")));
    }

    #[test]
    fn marker_values() {
        assert_eq!(
            from_env(env(&[("LITEFS_GUARD_MARKER", "primary")]))
                .unwrap()
                .marker,
            Marker::Primary
        );
        assert_eq!(
            from_env(env(&[("LITEFS_GUARD_MARKER", "replica")]))
                .unwrap()
                .marker,
            Marker::Replica
        );
        let e = from_env(env(&[("LITEFS_GUARD_MARKER", "Primary!")])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("LITEFS_GUARD_MARKER=\"Primary!\" is not valid"),
            "{e}"
        );
    }

    #[test]
    fn dir_must_be_absolute_without_dotdot() {
        let e = from_env(env(&[("LITEFS_GUARD_DIR", "litefs")])).unwrap_err();
        assert!(e.to_string().contains("must be absolute"), "{e}");
        let e = from_env(env(&[("LITEFS_GUARD_DIR", "/litefs/../etc")])).unwrap_err();
        assert!(e.to_string().contains("\"..\""), "{e}");
        let e = validate_dir("LITEFS_GUARD_DIR", "/lite\0fs").unwrap_err();
        assert!(e.to_string().contains("NUL"), "{e}");
    }

    #[test]
    fn mount_for_respects_configured_dir() {
        let s = from_env(env(&[("LITEFS_GUARD_DIR", "/nonexistent-litefs")])).unwrap();
        assert_eq!(s.mount_source, MountSource::Env);
        assert_eq!(
            s.mount_for(Path::new("/nonexistent-litefs/app.db")),
            Some(PathBuf::from("/nonexistent-litefs"))
        );
        assert_eq!(s.mount_for(Path::new("/tmp/app.db")), None);
        assert_eq!(s.mount_for(Path::new("/nonexistent-litefsX/app.db")), None);
    }

    #[test]
    fn bools() {
        assert!(
            !from_env(env(&[("LITEFS_GUARD_IMMEDIATE", "0")]))
                .unwrap()
                .immediate
        );
        assert!(
            from_env(env(&[("LITEFS_GUARD_REQUIRE_FUSE", "1")]))
                .unwrap()
                .require_fuse
        );
        let e = from_env(env(&[("LITEFS_GUARD_IMMEDIATE", "maybe")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "LITEFS_GUARD_IMMEDIATE=\"maybe\" is not valid: use 1 or 0"
        );
    }
}
