//! One thing wrong with a litefs.yml, as a checker lists it: where (file,
//! line and column when the parser knows them, the key) and the whole
//! one-line report, which also says what to do.

use super::error::ConfigError;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file as named in the report (a path, or what the caller passed).
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted key path (`lease.consul.url`, `exec[1].cmd`) when the problem
    /// is a value the rules refuse; type errors carry theirs in `report`.
    pub key: Option<String>,
    /// `FILE[:LINE:COL]: what is wrong; what to do`.
    pub report: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.report)
    }
}

impl From<&ConfigError> for Problem {
    fn from(e: &ConfigError) -> Problem {
        let (file, line, column, key) = match e {
            ConfigError::NotFound { path }
            | ConfigError::Io { path, .. }
            | ConfigError::NotAFile { path, .. }
            | ConfigError::SymlinkLoop { path }
            | ConfigError::TooLarge { path, .. } => (path.display().to_string(), None, None, None),
            ConfigError::NotUtf8 {
                file, line, column, ..
            } => (file.clone(), Some(*line), Some(*column), None),
            ConfigError::Empty { file, .. } => (file.clone(), None, None, None),
            ConfigError::Yaml {
                file, line, column, ..
            } => (file.clone(), *line, *column, None),
            ConfigError::Invalid { file, key, .. } => (file.clone(), None, None, Some(key.clone())),
        };
        Problem {
            file,
            line,
            column,
            key,
            report: e.to_string(),
        }
    }
}

impl From<ConfigError> for Problem {
    fn from(e: ConfigError) -> Problem {
        Problem::from(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_position_and_the_report() {
        let e = ConfigError::Yaml {
            file: "a.yml".into(),
            line: Some(6),
            column: Some(9),
            message: "lease.type: unknown variant `etcd`".into(),
            hint: "fix it",
        };
        let p = Problem::from(&e);
        assert_eq!((p.line, p.column), (Some(6), Some(9)));
        assert_eq!(
            p.to_string(),
            "a.yml:6:9: lease.type: unknown variant `etcd`; fix it"
        );
        let p = Problem::from(ConfigError::invalid(
            "a.yml",
            "fuse.dir",
            None,
            "is missing",
            "set it",
        ));
        assert_eq!(p.key.as_deref(), Some("fuse.dir"));
        assert_eq!(p.report, "a.yml: fuse.dir: is missing; set it");
    }
}
