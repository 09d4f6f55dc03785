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
use super::parse::{check_yaml, expanded, from_yaml, read_as, utf8, EnvLookup};
use super::problem::Problem;
use super::tolerant::MountOnly;
use super::validate::{check_dir, validate, FUSE_DIR_WHAT};
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
    check_yaml(&text, file)?;
    let mount = mount_of(&text, file).map_err(Problem::from);
    let (config, mut problems) = match from_yaml(&text, file) {
        Ok(c) => (
            Some(c.clone()),
            validate(&c, file).iter().map(Problem::from).collect(),
        ),
        // A wrong type hides the rules' checks.
        Err(e) => (None, vec![Problem::from(e)]),
    };
    // The mount's problem is always listed, whatever else was found.
    if let Err(p) = &mount {
        if !problems.contains(p) {
            problems.push(p.clone());
        }
    }
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

/// `fuse.dir` (see `tolerant`), checked as LiteFS checks it. A value of a
/// type the model would refuse (a list, a mapping) is "not a path".
fn mount_of(text: &str, file: &str) -> Result<PathBuf, ConfigError> {
    let dir = match read_as::<MountOnly>(text, file) {
        Ok(m) => m.0,
        Err(_) => {
            return Err(ConfigError::invalid(
                file,
                "fuse.dir",
                None,
                "is not a path",
                format!("set it to {FUSE_DIR_WHAT}"),
            ))
        }
    };
    check_dir(file, "fuse.dir", dir.as_deref(), FUSE_DIR_WHAT)?;
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

    #[test]
    fn what_the_guard_does_not_read_never_hides_the_mount() {
        // Duplicate unknown keys and tags: the typed model reads past them,
        // so the mount must be found too (LiteFS may refuse the file).
        for text in [
            "fuse:\n  dir: /litefs\nfoo: 1\nfoo: 2\n",
            "fuse:\n  dir: !path /litefs\n",
            "fuse:\n  dir: /litefs\nlease:\n  x: !tag [1, 2]\n",
        ] {
            let d = doc(text).unwrap();
            assert_eq!(d.mount_dir(), Ok(Path::new("/litefs")), "{text}");
            crate::fuzz_check_one(text.as_bytes());
        }
        // A duplicate `dir` is ambiguous, as for the model.
        let d = doc("fuse:\n  dir: /a\n  dir: /b\n").unwrap();
        assert!(d.mount_dir().is_err());
        // A number reads as text, as the model reads it.
        let d = doc("fuse:\n  dir: 5\n").unwrap();
        assert_eq!(
            d.mount_dir().map_err(|p| p.to_string()),
            Err("litefs.yml: fuse.dir = \"5\": must be an absolute path; write the directory LiteFS mounts, e.g. \"/litefs\"".to_owned())
        );
    }

    #[test]
    fn no_report_shows_a_secret() {
        for url in [
            "htps://litefs:S3cret@consul:8500",
            "S3cret@consul",
            "http://u:S3cret@c:8500",
        ] {
            let text = format!("{BASE}  candidate: true\n  consul:\n    url: \"{url}\"\n    key: k\n");
            let d = doc(&text.replace("type: static", "type: consul")).unwrap();
            assert!(
                !format!("{:?}", d.problems).contains("S3cret"),
                "{url}: {:?}",
                d.problems
            );
            if let Some(c) = &d.config {
                assert!(!c.redacted().to_yaml().contains("S3cret"), "{url}");
                assert!(!c.redacted().to_json().to_string().contains("S3cret"), "{url}");
            }
        }
    }
}
