//! litefs.yml: find, parse, validate and render LiteFS's configuration.
//!
//! - Finding: the file the caller names, else `./litefs.yml`,
//!   `$HOME/litefs.yml`, `/etc/litefs.yml` (LiteFS's order). The crate reads
//!   no environment: the caller passes paths and a variable lookup.
//! - Reading: regular files only, at most 1 MiB, UTF-8, never blocking.
//! - `${VAR}`/`$VAR` expansion over the whole text, as LiteFS does, when
//!   the caller turns it on.
//! - Parsing with serde_norway under a work budget (alias bombs, deep nesting).
//! - Validation of the rules LiteFS enforces at startup and of value shapes.
//!   Strict ([`parse_str`]: the config or the first problem) or lenient
//!   ([`parse_document`], [`check_file`]: `fuse.dir` and the model kept
//!   apart from every [`Problem`], with FILE:LINE:COL where known).
//! - Rendering back to YAML that parses to the same config, with expansion
//!   on or off.

mod address;
#[cfg(test)]
mod arb;
mod budget;
mod check;
mod discover;
mod document;
mod duration;
mod error;
mod expand;
mod fuzzing;
mod gobool;
mod model;
mod parse;
mod problem;
mod read;
mod render;
mod tolerant;
mod validate;

use std::path::{Path, PathBuf};

pub use budget::{MAX_NODES, MAX_SCALAR_BYTES};
pub use check::{check_file, check_str};
pub use discover::{discover, load_file, search_paths, Search, ETC_DIR};
pub use document::{parse_document, parse_document_bytes, Document};
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
pub use problem::Problem;

/// A litefs.yml that was found and is YAML.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovered {
    pub path: PathBuf,
    pub document: Document,
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
