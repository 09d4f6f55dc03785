//! Every way loading litefs.yml can fail. Each message names the file, the
//! place (line/column or key path) and the value, then says what to do.

use std::path::PathBuf;

/// Files larger than this are refused before reading: a real litefs.yml is a
/// few KiB, and the cap bounds memory for whatever else is pointed at us.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The named file does not exist (only reported for an explicit path;
    /// the default search skips missing candidates).
    #[error("cannot read {}: no such file; check the path (LITEFS_GUARD_CONFIG) or unset LITEFS_GUARD_CONFIG to search ./litefs.yml, $HOME/litefs.yml, /etc/litefs.yml", .path.display())]
    NotFound { path: PathBuf },

    #[error("cannot read {}: {source}; make the file readable by this process or point LITEFS_GUARD_CONFIG elsewhere", .path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("cannot read {}: it is a {kind}, not a regular file; point LITEFS_GUARD_CONFIG at the litefs.yml file itself", .path.display())]
    NotAFile { path: PathBuf, kind: &'static str },

    #[error("cannot read {}: too many levels of symbolic links (a link loop); repair or remove the link", .path.display())]
    SymlinkLoop { path: PathBuf },

    #[error("cannot read {}: {size} bytes is over the {limit}-byte limit for litefs.yml; is this the right file?", .path.display(), size = .size, limit = MAX_CONFIG_BYTES)]
    TooLarge {
        path: PathBuf,
        /// Bytes seen; for a file that grew while read, the cap plus one.
        size: u64,
    },

    #[error("{file}:{line}:{column}: not valid UTF-8 (byte 0x{byte:02x} at offset {offset}); save litefs.yml as UTF-8 text")]
    NotUtf8 {
        file: String,
        line: usize,
        column: usize,
        offset: usize,
        byte: u8,
    },

    #[error("{file}: {}; LiteFS needs at least fuse.dir, data.dir and lease.type", if *.after_expansion { "empty after environment expansion (every ${VAR} in it is unset?)" } else { "the file is empty" })]
    Empty { file: String, after_expansion: bool },

    /// YAML syntax or type error, with serde_norway's key path in `message`.
    /// Syntax makes the file unusable; a type error is a `Problem` of a
    /// `Document` (see `document`).
    #[error("{file}{}: {message}; {hint}", location(.line, .column))]
    Yaml {
        file: String,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
        hint: &'static str,
    },

    /// A well-formed document whose values LiteFS would reject.
    #[error("{file}: {key}{}: {problem}; {fix}", shown_value(.value))]
    Invalid {
        file: String,
        /// Dotted key path, e.g. `lease.consul.url` or `exec[1].cmd`.
        key: String,
        value: Option<String>,
        problem: String,
        fix: String,
    },
}

fn location(line: &Option<usize>, column: &Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

fn shown_value(value: &Option<String>) -> String {
    match value {
        Some(v) => format!(" = {v:?}"),
        None => String::new(),
    }
}

impl ConfigError {
    /// A validation failure for `key` holding `value`.
    pub(crate) fn invalid(
        file: &str,
        key: impl Into<String>,
        value: Option<&str>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            file: file.to_owned(),
            key: key.into(),
            value: value.map(str::to_owned),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_error_without_location_has_no_colon_pair() {
        let e = ConfigError::Yaml {
            file: "a.yml".into(),
            line: None,
            column: None,
            message: "boom".into(),
            hint: "fix it",
        };
        assert_eq!(e.to_string(), "a.yml: boom; fix it");
    }

    #[test]
    fn invalid_quotes_the_value() {
        let e = ConfigError::invalid("a.yml", "fuse.dir", Some("x\"y"), "bad", "do this");
        assert_eq!(e.to_string(), "a.yml: fuse.dir = \"x\\\"y\": bad; do this");
        let e = ConfigError::invalid("a.yml", "fuse.dir", None, "is missing", "set it");
        assert_eq!(e.to_string(), "a.yml: fuse.dir: is missing; set it");
    }
}
