//! The lenient reading of a litefs.yml: what a guard uses (`fuse.dir`)
//! separately from everything LiteFS would refuse.
//!
//! Only text that is not YAML at all (syntax, several documents, nesting,
//! the work budget, and not UTF-8) is an error here. A value LiteFS would
//! refuse, even one of the wrong type (`lease.type: etcd`, a duration
//! without a unit), is a [`Problem`] in the list; the typed model is then
//! kept when every value fits it, so it can still be shown.

use super::error::ConfigError;
use super::model::LiteFsConfig;
use super::parse::{expanded, from_yaml, utf8, yaml_value, EnvLookup};
use super::problem::Problem;
use super::validate::{check_dir, validate, FUSE_DIR_WHAT};
use serde_norway::Value;
use std::path::{Path, PathBuf};

/// A litefs.yml that is YAML, with whatever LiteFS would refuse in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The typed model; None when some value does not fit it (a problem
    /// says which).
    pub config: Option<LiteFsConfig>,
    /// Everything LiteFS would refuse, type errors first, then the rules in
    /// `validate`'s order. Empty for a file LiteFS accepts.
    pub problems: Vec<Problem>,
    mount: Result<PathBuf, Problem>,
}

impl Document {
    /// `fuse.dir` as a guard uses it: present, absolute, no `..`, no NUL,
    /// whether or not the rest of the file is valid.
    pub fn mount_dir(&self) -> Result<&Path, &Problem> {
        self.mount.as_deref()
    }
}

/// Reads `text` leniently; `file` names it in reports. `env` as for
/// [`crate::parse_str`].
pub fn parse_document(text: &str, file: &str, env: EnvLookup<'_>) -> Result<Document, ConfigError> {
    let text = match expanded(text, file, env) {
        Ok(t) => t,
        // Nothing to read: no fuse.dir either, and the reason says why.
        Err(e @ ConfigError::Empty { .. }) => {
            let p = Problem::from(e);
            return Ok(Document {
                config: None,
                problems: vec![p.clone()],
                mount: Err(p),
            });
        }
        Err(e) => return Err(e),
    };
    let value = yaml_value(&text, file)?;
    let mount = mount_of(&value, file).map_err(Problem::from);
    let (config, problems) = match from_yaml(&text, file) {
        Ok(c) => {
            let problems = validate(&c, file).iter().map(Problem::from).collect();
            (Some(c), problems)
        }
        // A wrong type hides the rules' checks; the mount's is still known.
        Err(e) => {
            let mut problems = vec![Problem::from(e)];
            problems.extend(mount.as_ref().err().cloned());
            (None, problems)
        }
    };
    Ok(Document {
        config,
        problems,
        mount,
    })
}

/// `parse_document` for raw file bytes, refusing anything that is not UTF-8.
pub fn parse_document_bytes(bytes: &[u8], file: &str, env: EnvLookup<'_>) -> Result<Document, ConfigError> {
    parse_document(utf8(bytes, file)?, file, env)
}

/// `fuse.dir` read from the generic value, so a wrong type elsewhere in the
/// file does not hide it.
fn mount_of(value: &Value, file: &str) -> Result<PathBuf, ConfigError> {
    let dir = match value.get("fuse").and_then(|f| f.get("dir")) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            return Err(ConfigError::invalid(
                file,
                "fuse.dir",
                None,
                "is not a path",
                format!("set it to {FUSE_DIR_WHAT}"),
            ))
        }
    };
    check_dir(file, "fuse.dir", dir, FUSE_DIR_WHAT)?;
    Ok(PathBuf::from(dir.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "fuse:\n  dir: /litefs\ndata:\n  dir: /var/lib/litefs\nlease:\n  type: static\n";

    fn doc(text: &str) -> Result<Document, String> {
        parse_document(text, "litefs.yml", None).map_err(|e| e.to_string())
    }

    fn reports(d: &Document) -> Vec<String> {
        d.problems.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn a_valid_file_has_a_model_a_mount_and_no_problems() {
        let d = doc(BASE).unwrap();
        assert_eq!(d.mount_dir(), Ok(Path::new("/litefs")));
        assert!(d.problems.is_empty());
        assert!(d.config.as_ref().is_some_and(|c| c.lease_type().is_some()));
    }

    #[test]
    fn a_wrong_type_keeps_the_mount_and_drops_the_model() {
        let d = doc(&BASE.replace("static", "etcd")).unwrap();
        assert_eq!(d.mount_dir(), Ok(Path::new("/litefs")));
        assert!(d.config.is_none());
        assert_eq!(
            reports(&d),
            ["litefs.yml:6:9: lease.type: unknown variant `etcd`, expected `static` or `consul`; fix the value at that position (LiteFS's reference litefs.yml shows each key's shape)"]
        );
        assert_eq!(d.problems[0].line, Some(6));
    }

    #[test]
    fn rule_problems_are_all_listed_and_the_model_kept() {
        let d = doc(&format!(
            "{}  advertise-url: myhost\nbackup:\n  type: s3\n",
            BASE.replace("/var/lib/litefs", "var")
        ))
        .unwrap();
        assert_eq!(d.mount_dir(), Ok(Path::new("/litefs")));
        assert!(d.config.is_some());
        let keys: Vec<_> = d.problems.iter().filter_map(|p| p.key.clone()).collect();
        assert_eq!(keys, ["data.dir", "lease.advertise-url", "backup.type"]);
    }

    #[test]
    fn the_mount_problem_is_known_even_when_the_model_fails() {
        for (text, want) in [
            ("fuse: 5\n", "litefs.yml: fuse.dir: is missing; set it to the directory LiteFS mounts, e.g. \"/litefs\""),
            ("fuse:\n  dir: [a]\n", "litefs.yml: fuse.dir: is not a path; set it to the directory LiteFS mounts, e.g. \"/litefs\""),
            ("fuse:\n  dir: litefs\n", "litefs.yml: fuse.dir = \"litefs\": must be an absolute path; write the directory LiteFS mounts, e.g. \"/litefs\""),
            ("- a\n", "litefs.yml: fuse.dir: is missing; set it to the directory LiteFS mounts, e.g. \"/litefs\""),
            (" \n", "litefs.yml: the file is empty; LiteFS needs at least fuse.dir, data.dir and lease.type"),
        ] {
            let d = doc(text).unwrap();
            assert_eq!(d.mount_dir().map_err(|p| p.to_string()), Err(want.to_owned()), "{text}");
            assert!(reports(&d).contains(&want.to_owned()), "{text}: {:?}", reports(&d));
        }
    }

    #[test]
    fn text_that_is_not_yaml_is_an_error() {
        assert!(doc("fuse: [unclosed\n")
            .unwrap_err()
            .starts_with("litefs.yml:2:1: "));
        let bomb = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/configs/bad-alias-bomb.yml"
        ));
        let e = doc(&bomb.unwrap_or_default()).unwrap_err();
        assert!(e.contains("once aliases are expanded"), "{e}");
        let e = parse_document_bytes(b"fuse:\n  dir: /\xff\n", "x", None).unwrap_err();
        assert!(e.to_string().starts_with("x:2:9: not valid UTF-8"), "{e}");
    }
}
