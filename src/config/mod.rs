//! litefs.yml: find, parse, validate and render LiteFS's configuration.
//!
//! STUB: the config helper replaces this module. The interface below is what
//! the rest of the crate calls; keep these names and signatures.

use std::path::{Path, PathBuf};

/// Typed model of litefs.yml (stub).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LiteFsConfig {
    pub fuse_dir: Option<PathBuf>,
}

/// A litefs.yml that was found and parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovered {
    pub path: PathBuf,
    pub config: LiteFsConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
}

/// LITEFS_GUARD_CONFIG, else ./litefs.yml, $HOME/litefs.yml, /etc/litefs.yml.
/// Ok(None) when no file exists; Err when a file exists but is invalid.
pub fn discover() -> Result<Option<Discovered>, ConfigError> {
    Ok(None)
}

impl LiteFsConfig {
    /// `fuse.dir`.
    pub fn mount_dir(&self) -> Option<&Path> {
        self.fuse_dir.as_deref()
    }
    /// The parsed config as JSON, for `litefs_config()`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// Deterministic YAML rendering, for `litefs_config('yaml')`.
    pub fn to_yaml(&self) -> String {
        String::new()
    }
}
