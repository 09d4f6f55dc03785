//! Settings: read once per process from the environment (and litefs.yml),
//! validated as a whole so nothing is ever half-configured. The one module
//! that reads environment variables; litefs-config is handed what it needs.

use crate::error::Error;
use crate::location::{self, Located};
use crate::role::Marker;
use litefs_config::{self as config, Discovered, Search};
use std::ffi::{OsStr, OsString};
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

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
    /// The mount, when one is configured (env or litefs.yml), symlinks
    /// resolved when it was read.
    pub mount_dir: Option<PathBuf>,
    /// The mount as configured: looked at again on every open, so a mount
    /// that appears later, or whose path now resolves elsewhere, counts.
    pub mount_given: Option<PathBuf>,
    pub mount_source: MountSource,
    pub marker: Marker,
    /// Escalate plain BEGIN to an IMMEDIATE-style write lock on the primary.
    pub immediate: bool,
    /// Wait for the write lock in a fair line (LITEFS_GUARD_FAIR_WAIT; see
    /// `vfs::fairwait`) instead of the busy handler's blind sleeps.
    pub fair_wait: bool,
    /// Refuse writes unless the mount is a FUSE filesystem. On by default
    /// whenever a mount is configured (LiteFS is always FUSE; a plain
    /// directory there means LiteFS is down).
    pub require_fuse: bool,
    /// Put guarded databases in WAL on the primary and refuse leaving it.
    pub keep_wal: bool,
    /// Write forwarding through LiteFS's halt lock, the default of each
    /// connection's `PRAGMA litefs_forward` (LITEFS_GUARD_FORWARD).
    pub forward: bool,
    /// Whether SQL may switch forwarding (`PRAGMA litefs_forward = …`);
    /// `LITEFS_GUARD_FORWARD_PRAGMA=0` leaves it to LITEFS_GUARD_FORWARD alone.
    pub forward_pragma: bool,
    /// How long a forwarding write waits for the halt lock before
    /// SQLITE_BUSY (LITEFS_GUARD_HALT_TIMEOUT_MS).
    pub halt_timeout_ms: u64,
    /// The litefs.yml read, if any. It may hold problems LiteFS would
    /// refuse (`document.problems`, for `litefs_config()` to report): the
    /// guard only needs `fuse.dir`, and only when LITEFS_GUARD_DIR is unset.
    pub config: Option<Discovered>,
    /// Why a litefs.yml found by the search could not be read or parsed,
    /// when that did not stop loading (`LITEFS_GUARD_DIR` names the mount,
    /// so the file's `fuse.dir` is not needed). For `litefs_config()`.
    pub config_error: Option<String>,
}

impl Settings {
    /// The mount that guards the database at `db_path` (by the file's
    /// identity, see `location`), or None when the file is outside the
    /// guarded location (and so passes through untouched).
    pub fn locate(&self, db_path: &Path) -> Option<Located> {
        location::locate(self.mount_dir.as_deref(), self.mount_given.as_deref(), db_path)
    }
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// The process-wide settings, read from the environment on first use.
/// A failed read is not stored, so fixing the environment and loading again works.
pub fn global() -> Result<&'static Settings, Error> {
    if let Some(s) = SETTINGS.get() {
        return Ok(s);
    }
    let s = with_process_sources(from_sources)?;
    Ok(SETTINGS.get_or_init(|| s))
}

/// Like LiteFS, which sets `HOSTNAME` from hostname(2) when it is unset so
/// litefs.yml can say `${HOSTNAME}`: an unset or empty `HOSTNAME` is the
/// kernel's host name (`kernel` reads it).
fn with_hostname(
    name: &str,
    value: Option<OsString>,
    kernel: &dyn Fn() -> Option<String>,
) -> Option<OsString> {
    if name != "HOSTNAME" || value.as_ref().is_some_and(|v| !v.is_empty()) {
        return value;
    }
    kernel()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .map(OsString::from)
}

/// Everything settings are read from. [`global`] passes the process's own;
/// tests pass theirs, so they never see the real environment, `$HOME`,
/// `/etc` or the working directory.
pub struct Sources<'a> {
    /// One environment variable, byte for byte (paths need not be UTF-8).
    pub var: &'a dyn Fn(&str) -> Option<OsString>,
    /// Searched first for litefs.yml; None: the relative `litefs.yml`.
    pub cwd: Option<&'a Path>,
    /// Searched last for litefs.yml: `/etc` in production.
    pub etc: &'a Path,
}

/// Where litefs.yml is looked for, and whether it is expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigPlaces {
    /// LITEFS_GUARD_CONFIG: when set, the only file read.
    pub explicit: Option<PathBuf>,
    /// LiteFS's search: `./`, `$HOME`, `/etc`.
    pub candidates: Vec<PathBuf>,
    /// LITEFS_GUARD_CONFIG_EXPAND_ENV (on unless `0`).
    pub expand: bool,
}

/// The litefs.yml part of the settings, alone: the `litefs-guard` tool
/// checks and renders the file the guard would read, even when the rest of
/// the settings would stop the extension from loading.
pub fn config_places(src: &Sources<'_>) -> Result<ConfigPlaces, Error> {
    let (explicit, candidates, expand) = places(src);
    Ok(ConfigPlaces {
        explicit,
        candidates,
        expand: expand?,
    })
}

/// Where litefs.yml is looked for, and the expansion switch — which may be
/// unusable without that mattering (see `from_sources`).
fn places(src: &Sources<'_>) -> (Option<PathBuf>, Vec<PathBuf>, Result<bool, Error>) {
    let raw = |k: &str| (src.var)(k).filter(|v| !v.is_empty());
    let explicit = raw(CONFIG_VAR).map(PathBuf::from);
    let home = raw("HOME").map(PathBuf::from);
    let candidates = config::search_paths(src.cwd, home.as_deref(), src.etc);
    // `0` reads the file verbatim, like `litefs mount -no-expand-env`.
    let expand = word(src, EXPAND_VAR).and_then(|value| {
        parse_bool_as(
            EXPAND_VAR,
            value,
            true,
            "use 1 (expand ${VAR} references, the default) or 0 (read the file verbatim)",
        )
    });
    (explicit, candidates, expand)
}

/// Runs `f` with the process's own sources (environment, working
/// directory, `/etc`), as [`global`] reads them.
pub fn with_process_sources<R>(f: impl FnOnce(&Sources<'_>) -> R) -> R {
    let cwd = std::env::current_dir().ok();
    let kernel_hostname = || std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    f(&Sources {
        var: &|name| with_hostname(name, std::env::var_os(name), &kernel_hostname),
        cwd: cwd.as_deref(),
        etc: Path::new(config::ETC_DIR),
    })
}

/// A setting that is a word or a number (unset or empty: None). A value
/// that is not UTF-8 is refused, never read approximately.
fn word(src: &Sources<'_>, k: &'static str) -> Result<Option<String>, Error> {
    (src.var)(k)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.into_string().map_err(|v| Error::Invalid {
                var: k,
                value: v.to_string_lossy().into_owned(),
                reason: "the value is not UTF-8".into(),
            })
        })
        .transpose()
}

/// Builds and validates settings from `src`.
pub fn from_sources(src: &Sources<'_>) -> Result<Settings, Error> {
    let raw = |k: &str| (src.var)(k).filter(|v| !v.is_empty());
    let var = |k: &'static str| word(src, k);
    let marker = match var("LITEFS_GUARD_MARKER")?.as_deref() {
        None | Some("replica") => Marker::OnReplicas,
        Some("primary") => Marker::OnPrimary,
        Some(other) => {
            return Err(Error::Invalid {
                var: "LITEFS_GUARD_MARKER",
                value: other.into(),
                reason: "use \"replica\" (LiteFS's .primary, present on replicas; the default) or \"primary\" (a marker present on the primary)".into(),
            })
        }
    };
    let immediate = parse_bool("LITEFS_GUARD_IMMEDIATE", var("LITEFS_GUARD_IMMEDIATE")?, true)?;
    let keep_wal = parse_bool("LITEFS_GUARD_WAL", var("LITEFS_GUARD_WAL")?, true)?;
    let fair_wait = parse_bool("LITEFS_GUARD_FAIR_WAIT", var("LITEFS_GUARD_FAIR_WAIT")?, true)?;
    let forward = parse_bool("LITEFS_GUARD_FORWARD", var("LITEFS_GUARD_FORWARD")?, false)?;
    let forward_pragma = parse_bool(
        "LITEFS_GUARD_FORWARD_PRAGMA",
        var("LITEFS_GUARD_FORWARD_PRAGMA")?,
        true,
    )?;
    let halt_timeout_ms = parse_ms(
        "LITEFS_GUARD_HALT_TIMEOUT_MS",
        var("LITEFS_GUARD_HALT_TIMEOUT_MS")?,
        DEFAULT_HALT_TIMEOUT_MS,
    )?;
    // Paths are taken byte for byte.
    let env_dir = match raw("LITEFS_GUARD_DIR") {
        Some(d) => Some(validate_dir("LITEFS_GUARD_DIR", &d)?),
        None => None,
    };
    let (explicit, candidates, expand) = places(src);
    // litefs.yml's own `${VAR}` expansion works on text.
    let text_env = |k: &str| (src.var)(k).map(|v| v.to_string_lossy().into_owned());
    // LITEFS_GUARD_DIR names the mount, so the guard does not need a
    // litefs.yml that the search happened to find (in ./, $HOME or /etc):
    // one that cannot be read or parsed (or a bad expansion switch for it)
    // must not stop the extension from loading. The error is kept for
    // litefs_config(). A file named by LITEFS_GUARD_CONFIG is different: the
    // user asked for that file, so its failing to read or parse fails loading.
    let optional = env_dir.is_some() && explicit.is_none();
    let found = expand.and_then(|expand| {
        config::discover(&Search {
            explicit: explicit.as_deref(),
            candidates: &candidates,
            expand,
            env: &text_env,
        })
        .map_err(|e| Error::Config(e.to_string()))
    });
    let (config, config_error) = match found {
        // What LiteFS alone would refuse (lease type, durations, URLs…) is
        // kept for litefs_config() to report. Only the mount matters to the
        // guard, and only when LITEFS_GUARD_DIR does not name it.
        Ok(Some(found)) => match found.document.mount_dir() {
            Err(problem) if env_dir.is_none() => return Err(Error::Config(problem.to_string())),
            _ => (Some(found), None),
        },
        Ok(None) => (None, None),
        Err(e) if optional => (None, Some(e.to_string())),
        Err(e) => return Err(e),
    };
    let given_env = raw("LITEFS_GUARD_DIR").map(PathBuf::from);
    let (mount_dir, mount_given, mount_source) =
        match (env_dir, config.as_ref().and_then(|c| c.document.mount_dir().ok())) {
            (Some(d), _) => (Some(d), given_env, MountSource::Env),
            (None, Some(d)) => (Some(canonical(d)), Some(d.to_path_buf()), MountSource::Config),
            (None, None) => (None, None, MountSource::DatabaseDir),
        };
    // LiteFS is always FUSE: whenever a mount is configured, a plain
    // directory there means LiteFS is down and a write would create a local
    // database LiteFS later hides. Without a configured mount (each
    // database's directory is its own) there is nothing to check against.
    let require_fuse = parse_bool(
        "LITEFS_GUARD_REQUIRE_FUSE",
        var("LITEFS_GUARD_REQUIRE_FUSE")?,
        mount_source != MountSource::DatabaseDir,
    )?;
    Ok(Settings {
        mount_dir,
        mount_given,
        mount_source,
        marker,
        immediate,
        fair_wait,
        require_fuse,
        keep_wal,
        forward,
        forward_pragma,
        halt_timeout_ms,
        config,
        config_error,
    })
}

/// LITEFS_GUARD_HALT_TIMEOUT_MS's default.
pub const DEFAULT_HALT_TIMEOUT_MS: u64 = 5000;
/// Its largest value: a wait for the halt lock stays well under the lock's
/// own 30-second lifetime on LiteFS.
pub const MAX_HALT_TIMEOUT_MS: u64 = 20_000;

/// A number of milliseconds, 1 to [`MAX_HALT_TIMEOUT_MS`]; blank is the default.
fn parse_ms(var: &'static str, value: Option<String>, default: u64) -> Result<u64, Error> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(ms) if (1..=MAX_HALT_TIMEOUT_MS).contains(&ms) => Ok(ms),
            _ => Err(Error::Invalid {
                var,
                value: value.clone().unwrap_or_default(),
                reason: format!("use a number of milliseconds from 1 to {MAX_HALT_TIMEOUT_MS}"),
            }),
        },
    }
}

/// Names the litefs.yml to read; when set (non-empty), no search happens.
const CONFIG_VAR: &str = "LITEFS_GUARD_CONFIG";
/// Whether litefs.yml's `${VAR}` references are expanded.
const EXPAND_VAR: &str = "LITEFS_GUARD_CONFIG_EXPAND_ENV";

/// The one parser for every boolean setting. It accepts each value either
/// former parser did, so nothing that loaded before fails now: the words
/// 1/true/on/yes and 0/false/off/no (both had them), with surrounding
/// whitespace ignored and blank meaning the default (as
/// LITEFS_GUARD_CONFIG_EXPAND_ENV had it). Anything else is refused rather
/// than guessed at: a typo must not silently turn a safety off.
fn parse_bool(var: &'static str, value: Option<String>, default: bool) -> Result<bool, Error> {
    parse_bool_as(var, value, default, "use 1 or 0")
}

/// [`parse_bool`] with the variable's own advice when the value is refused.
fn parse_bool_as(
    var: &'static str,
    value: Option<String>,
    default: bool,
    advice: &str,
) -> Result<bool, Error> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some("1" | "true" | "on" | "yes") => Ok(true),
        Some("0" | "false" | "off" | "no") => Ok(false),
        Some(_) => Err(Error::Invalid {
            var,
            value: value.unwrap_or_default(),
            reason: advice.into(),
        }),
    }
}

/// An absolute path with no `..` component and no NUL byte. Any other bytes
/// are kept as they are: a path need not be UTF-8.
pub fn validate_dir(var: &'static str, value: &OsStr) -> Result<PathBuf, Error> {
    let bad = |reason: &str| Error::Invalid {
        var,
        value: value.to_string_lossy().into_owned(),
        reason: reason.into(),
    };
    if value.as_encoded_bytes().contains(&0) {
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
    use std::os::unix::ffi::OsStrExt;

    type Env = HashMap<String, OsString>;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect()
    }

    /// Settings from `env` alone: the search for litefs.yml looks only in
    /// empty directories of a fresh temporary one.
    fn from_env(env: Env) -> Result<Settings, Error> {
        let place = Place::new();
        place.settings(&env)
    }

    /// A working directory, a home and an "/etc" of the test's own.
    struct Place {
        root: tempfile::TempDir,
    }

    impl Place {
        fn new() -> Place {
            let root = tempfile::tempdir().unwrap();
            for d in ["cwd", "home", "etc"] {
                std::fs::create_dir(root.path().join(d)).unwrap();
            }
            Place { root }
        }

        fn dir(&self, name: &str) -> PathBuf {
            self.root.path().join(name)
        }

        fn settings(&self, env: &Env) -> Result<Settings, Error> {
            let cwd = self.dir("cwd");
            let etc = self.dir("etc");
            from_sources(&Sources {
                var: &|k| env.get(k).cloned(),
                cwd: Some(&cwd),
                etc: &etc,
            })
        }
    }

    const BROKEN_YML: &str = "fuse:\n  dir: [not, a, path\n";

    fn valid_yml(mount: &Path) -> String {
        format!(
            "fuse:\n  dir: \"{}\"\ndata:\n  dir: \"/var/lib/litefs\"\nlease:\n  type: \"static\"\n  candidate: true\n  advertise-url: \"http://a:20202\"\n",
            mount.display()
        )
    }

    #[test]
    fn defaults() {
        let s = from_env(env(&[])).unwrap();
        assert_eq!(s.marker, Marker::OnReplicas);
        assert!(s.immediate);
        assert!(!s.require_fuse);
        assert_eq!(s.mount_dir, None);
        assert_eq!(
            s.locate(Path::new("/a/b.db")).map(|l| l.mount),
            Some(PathBuf::from("/a"))
        );
    }

    #[test]
    fn marker_values() {
        assert_eq!(
            from_env(env(&[("LITEFS_GUARD_MARKER", "primary")]))
                .unwrap()
                .marker,
            Marker::OnPrimary
        );
        assert_eq!(
            from_env(env(&[("LITEFS_GUARD_MARKER", "replica")]))
                .unwrap()
                .marker,
            Marker::OnReplicas
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
        let e = validate_dir("LITEFS_GUARD_DIR", OsStr::new("/lite\0fs")).unwrap_err();
        assert!(e.to_string().contains("NUL"), "{e}");
    }

    #[test]
    fn mount_for_respects_configured_dir() {
        let s = from_env(env(&[("LITEFS_GUARD_DIR", "/nonexistent-litefs")])).unwrap();
        assert_eq!(s.mount_source, MountSource::Env);
        assert_eq!(
            s.locate(Path::new("/nonexistent-litefs/app.db")).map(|l| l.mount),
            Some(PathBuf::from("/nonexistent-litefs"))
        );
        assert_eq!(s.locate(Path::new("/tmp/app.db")), None);
        assert_eq!(s.locate(Path::new("/nonexistent-litefsX/app.db")), None);
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

    #[test]
    fn forwarding_settings() {
        let s = from_env(env(&[])).unwrap();
        assert!(!s.forward, "forwarding is off by default");
        assert!(s.forward_pragma, "SQL may switch it by default");
        let s = from_env(env(&[("LITEFS_GUARD_FORWARD_PRAGMA", "0")])).unwrap();
        assert!(!s.forward_pragma);
        assert_eq!(s.halt_timeout_ms, DEFAULT_HALT_TIMEOUT_MS);
        let s = from_env(env(&[
            ("LITEFS_GUARD_FORWARD", "on"),
            ("LITEFS_GUARD_HALT_TIMEOUT_MS", " 250 "),
        ]))
        .unwrap();
        assert!(s.forward);
        assert_eq!(s.halt_timeout_ms, 250);
        let e = from_env(env(&[("LITEFS_GUARD_FORWARD", "sometimes")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "LITEFS_GUARD_FORWARD=\"sometimes\" is not valid: use 1 or 0"
        );
        for bad in ["0", "-5", "20001", "5s", "1e3"] {
            let e = from_env(env(&[("LITEFS_GUARD_HALT_TIMEOUT_MS", bad)])).unwrap_err();
            assert!(e.to_string().contains("from 1 to 20000"), "{bad}: {e}");
        }
    }

    #[test]
    fn require_fuse_is_on_whenever_a_mount_is_configured() {
        let s = from_env(env(&[("LITEFS_GUARD_DIR", "/nonexistent-litefs")])).unwrap();
        assert!(s.require_fuse);
        let s = from_env(env(&[
            ("LITEFS_GUARD_DIR", "/nonexistent-litefs"),
            ("LITEFS_GUARD_REQUIRE_FUSE", "0"),
        ]))
        .unwrap();
        assert!(!s.require_fuse);

        let p = Place::new();
        std::fs::write(
            p.dir("cwd/litefs.yml"),
            valid_yml(Path::new("/nonexistent-litefs")),
        )
        .unwrap();
        let s = p.settings(&env(&[])).unwrap();
        assert_eq!(s.mount_source, MountSource::Config);
        assert!(s.require_fuse);
        let s = p.settings(&env(&[("LITEFS_GUARD_REQUIRE_FUSE", "off")])).unwrap();
        assert!(!s.require_fuse);
    }

    #[test]
    fn a_broken_searched_config_does_not_stop_loading_when_the_dir_is_set() {
        for place in ["cwd", "home", "etc"] {
            let p = Place::new();
            let file = p.dir(place).join("litefs.yml");
            std::fs::write(&file, BROKEN_YML).unwrap();
            let home = p.dir("home");
            let mut e = env(&[("HOME", home.to_str().unwrap())]);
            // Without LITEFS_GUARD_DIR the mount comes from the file: loading fails.
            let err = p.settings(&e).unwrap_err().to_string();
            assert!(err.starts_with(&file.display().to_string()), "{place}: {err}");
            e.insert("LITEFS_GUARD_DIR".into(), "/nonexistent-litefs".into());
            let s = p.settings(&e).unwrap();
            assert_eq!(s.mount_source, MountSource::Env, "{place}");
            assert!(s.config.is_none());
            assert_eq!(s.config_error.as_deref(), Some(err.as_str()), "{place}");
        }
    }

    #[test]
    fn a_broken_named_config_stops_loading_even_when_the_dir_is_set() {
        let p = Place::new();
        let file = p.dir("custom.yml");
        std::fs::write(&file, BROKEN_YML).unwrap();
        let e = env(&[
            ("LITEFS_GUARD_DIR", "/nonexistent-litefs"),
            ("LITEFS_GUARD_CONFIG", file.to_str().unwrap()),
        ]);
        let err = p.settings(&e).unwrap_err().to_string();
        assert!(err.starts_with(&file.display().to_string()), "{err}");
    }

    #[test]
    fn a_valid_config_is_kept_when_the_dir_is_set() {
        let p = Place::new();
        std::fs::write(p.dir("etc/litefs.yml"), valid_yml(Path::new("/from-yml"))).unwrap();
        let s = p
            .settings(&env(&[("LITEFS_GUARD_DIR", "/nonexistent-litefs")]))
            .unwrap();
        assert_eq!(s.mount_dir, Some(PathBuf::from("/nonexistent-litefs")));
        assert_eq!(s.config.map(|c| c.path), Some(p.dir("etc/litefs.yml")));
        assert_eq!(s.config_error, None);
    }

    #[test]
    fn paths_that_are_not_utf8_are_kept_byte_for_byte() {
        let p = Place::new();
        let mount = p.dir("cwd").join(OsStr::from_bytes(b"lite\xfffs"));
        let mut e = env(&[]);
        e.insert("LITEFS_GUARD_DIR".into(), mount.clone().into_os_string());
        let s = p.settings(&e).unwrap();
        assert_eq!(s.mount_dir.as_deref(), Some(mount.as_path()));
        // Once it exists it is canonicalized, still byte for byte.
        std::fs::create_dir(&mount).unwrap();
        let s = p.settings(&e).unwrap();
        assert_eq!(
            s.mount_dir.unwrap().as_os_str().as_bytes(),
            std::fs::canonicalize(&mount).unwrap().as_os_str().as_bytes()
        );
        // So is a named config file.
        let cfg = p.dir("cwd").join(OsStr::from_bytes(b"conf\xfe.yml"));
        std::fs::write(&cfg, valid_yml(Path::new("/from-yml"))).unwrap();
        let mut e = env(&[]);
        e.insert("LITEFS_GUARD_CONFIG".into(), cfg.clone().into_os_string());
        let s = p.settings(&e).unwrap();
        assert_eq!(s.config.map(|c| c.path), Some(cfg));
        assert_eq!(s.mount_dir, Some(PathBuf::from("/from-yml")));
    }

    #[test]
    fn words_that_are_not_utf8_are_refused() {
        let mut e = env(&[]);
        e.insert(
            "LITEFS_GUARD_MARKER".into(),
            OsStr::from_bytes(b"prim\xffary").into(),
        );
        let err = from_env(e).unwrap_err().to_string();
        assert!(err.starts_with("LITEFS_GUARD_MARKER=\"prim"), "{err}");
        assert!(err.ends_with("is not valid: the value is not UTF-8"), "{err}");
    }

    #[test]
    fn one_boolean_parser_for_every_switch() {
        for var in [
            "LITEFS_GUARD_IMMEDIATE",
            "LITEFS_GUARD_FAIR_WAIT",
            "LITEFS_GUARD_WAL",
            "LITEFS_GUARD_REQUIRE_FUSE",
            EXPAND_VAR,
        ] {
            for (value, want) in [
                ("1", true),
                ("yes", true),
                (" on ", true),
                ("0", false),
                ("off\n", false),
                ("no", false),
            ] {
                assert_eq!(
                    parse_bool(var, Some(value.into()), !want).ok(),
                    Some(want),
                    "{var}={value:?}"
                );
            }
            assert_eq!(parse_bool(var, Some("  ".into()), true).ok(), Some(true), "{var}");
            let e = from_env(env(&[(var, "maybe")])).unwrap_err();
            let advice = if var == EXPAND_VAR {
                "use 1 (expand ${VAR} references, the default) or 0 (read the file verbatim)"
            } else {
                "use 1 or 0"
            };
            assert_eq!(e.to_string(), format!("{var}=\"maybe\" is not valid: {advice}"));
        }
    }

    #[test]
    fn a_bad_expansion_switch_stops_loading_only_where_litefs_yml_is_needed() {
        let e = env(&[("LITEFS_GUARD_DIR", "/nonexistent-litefs"), (EXPAND_VAR, "maybe")]);
        let s = from_env(e).unwrap();
        assert!(
            s.config_error
                .as_deref()
                .is_some_and(|m| m.starts_with(EXPAND_VAR)),
            "{s:?}"
        );
        let p = Place::new();
        let file = p.dir("custom.yml");
        std::fs::write(&file, valid_yml(Path::new("/litefs"))).unwrap();
        let e = env(&[
            ("LITEFS_GUARD_DIR", "/nonexistent-litefs"),
            (EXPAND_VAR, "maybe"),
            ("LITEFS_GUARD_CONFIG", file.to_str().unwrap()),
        ]);
        assert!(p.settings(&e).is_err());
    }

    #[test]
    fn expansion_follows_its_switch() {
        let p = Place::new();
        let file = p.dir("custom.yml");
        std::fs::write(&file, valid_yml(Path::new("${MOUNT}"))).unwrap();
        let mut e = env(&[
            ("LITEFS_GUARD_CONFIG", file.to_str().unwrap()),
            ("MOUNT", "/from-env"),
        ]);
        assert_eq!(
            p.settings(&e).unwrap().mount_dir,
            Some(PathBuf::from("/from-env"))
        );
        // Verbatim, `${MOUNT}` is not an absolute path: the mount is unusable.
        e.insert(EXPAND_VAR.into(), "0".into());
        let err = p.settings(&e).unwrap_err().to_string();
        assert!(
            err.contains("fuse.dir = \"${MOUNT}\": must be an absolute path"),
            "{err}"
        );
    }

    #[test]
    fn problems_only_litefs_cares_about_do_not_stop_loading() {
        let p = Place::new();
        let file = p.dir("custom.yml");
        let text = valid_yml(Path::new("/from-yml"))
            .replace("\"static\"", "\"etcd\"")
            .replace("http://a:20202", "a:20202");
        std::fs::write(&file, text).unwrap();
        let s = p
            .settings(&env(&[("LITEFS_GUARD_CONFIG", file.to_str().unwrap())]))
            .unwrap();
        assert_eq!(s.mount_source, MountSource::Config);
        assert_eq!(s.mount_dir, Some(PathBuf::from("/from-yml")));
        assert_eq!(s.config_error, None);
        let doc = s.config.map(|c| c.document).unwrap();
        // The wrong lease type leaves no model, so the URL rule is not reached.
        assert!(doc.config.is_none());
        assert_eq!(doc.problems.len(), 1);
        assert!(
            doc.problems[0].report.contains("lease.type"),
            "{}",
            doc.problems[0]
        );
    }

    #[test]
    fn a_bad_fuse_dir_stops_loading_only_when_the_mount_comes_from_the_file() {
        let p = Place::new();
        let file = p.dir("custom.yml");
        std::fs::write(&file, valid_yml(Path::new("litefs"))).unwrap();
        let mut e = env(&[("LITEFS_GUARD_CONFIG", file.to_str().unwrap())]);
        let err = p.settings(&e).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: fuse.dir = \"litefs\"", file.display())),
            "{err}"
        );
        e.insert("LITEFS_GUARD_DIR".into(), "/nonexistent-litefs".into());
        let s = p.settings(&e).unwrap();
        assert_eq!(s.mount_source, MountSource::Env);
        let problems = s.config.map(|c| c.document.problems).unwrap_or_default();
        assert_eq!(problems.first().map(|p| p.to_string()), Some(err));
    }

    #[test]
    fn hostname_falls_back_to_the_kernel() {
        let kernel = || Some("node-k\n".to_owned());
        let none = || None;
        assert_eq!(with_hostname("HOSTNAME", None, &kernel), Some("node-k".into()));
        assert_eq!(
            with_hostname("HOSTNAME", Some("".into()), &kernel),
            Some("node-k".into())
        );
        assert_eq!(
            with_hostname("HOSTNAME", Some("mine".into()), &kernel),
            Some("mine".into())
        );
        assert_eq!(with_hostname("HOSTNAME", None, &none), None);
        assert_eq!(with_hostname("HOST", None, &kernel), None);
    }
}
