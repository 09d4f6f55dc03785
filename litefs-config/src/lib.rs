//! litefs.yml: find, parse, validate and render LiteFS's configuration.
//!
//! - Finding: `LITEFS_GUARD_CONFIG`, else `./litefs.yml`, `$HOME/litefs.yml`,
//!   `/etc/litefs.yml` (LiteFS's order).
//! - Reading: regular files only, at most 1 MiB, UTF-8.
//! - `${VAR}`/`$VAR` expansion over the whole text, as LiteFS does, unless
//!   `LITEFS_GUARD_CONFIG_EXPAND_ENV=0`.
//! - Parsing with serde_norway under a work budget (alias bombs, deep nesting).
//! - Validation of the rules LiteFS enforces at startup and of value shapes.
//! - Rendering back to YAML that parses to the same config, with expansion
//!   on or off.

mod address;
#[cfg(test)]
mod arb;
mod budget;
mod discover;
mod duration;
mod error;
mod expand;
mod fuzzing;
mod gobool;
mod model;
mod parse;
mod read;
mod render;
mod validate;

use std::path::{Path, PathBuf};

pub use budget::{MAX_NODES, MAX_SCALAR_BYTES};
pub use discover::{
    discover_from, discover_in, discover_with, load_file, load_file_with, process_env, process_env_os,
    search_paths, search_paths_in, CONFIG_VAR, ETC_DIR, EXPAND_VAR,
};
pub use duration::{DurationError, GoDuration};
pub use error::{ConfigError, MAX_CONFIG_BYTES};
pub use expand::expand_env;
#[doc(hidden)]
pub use fuzzing::check_one as fuzz_check_one;
pub use model::{
    BackupConfig, ConsulConfig, DataConfig, Exec, ExecCommand, Extra, FuseConfig, HttpConfig, LeaseConfig,
    LeaseType, LiteFsConfig, LogConfig, LogFormat, ProxyConfig, TracingConfig, DEFAULT_HTTP_ADDR,
};
pub use parse::{parse_bytes, parse_str, Env, EnvLookup};

/// A litefs.yml that was found and parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovered {
    pub path: PathBuf,
    pub config: LiteFsConfig,
}

/// LITEFS_GUARD_CONFIG, else ./litefs.yml, $HOME/litefs.yml, /etc/litefs.yml.
/// Ok(None) when no file exists; Err when a file exists but is invalid (or
/// LITEFS_GUARD_CONFIG names one that does not exist).
pub fn discover() -> Result<Option<Discovered>, ConfigError> {
    let cwd = std::env::current_dir().ok();
    let explicit = process_env_os(CONFIG_VAR).map(PathBuf::from);
    let home = process_env_os("HOME").map(PathBuf::from);
    let candidates = search_paths_in(cwd.as_deref(), home.as_deref(), Path::new(ETC_DIR));
    discover_in(&process_env, explicit.as_deref(), &candidates)
}

impl LiteFsConfig {
    /// `fuse.dir`.
    pub fn mount_dir(&self) -> Option<&Path> {
        self.fuse_dir()
    }

    /// The parsed config as JSON, for `litefs_config()`: the keys as written
    /// (unknown ones in place), plus `"unknown_keys"`, their dotted paths.
    pub fn to_json(&self) -> serde_json::Value {
        render::render_json(self, self.unknown_keys())
    }

    /// Deterministic YAML rendering, for `litefs_config('yaml')`.
    /// `parse_str(&c.to_yaml(), _, _)` gives back `c`, expansion on or off.
    pub fn to_yaml(&self) -> String {
        render::render(self)
    }
}
