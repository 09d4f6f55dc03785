//! Every problem in a litefs.yml, for a checker (`litefs-guard config
//! check`): what cannot be read or parsed, else all that LiteFS would refuse.

use super::discover::load_file;
use super::document::parse_document;
use super::parse::EnvLookup;
use super::problem::Problem;
use std::path::Path;

/// The problems of `text`, named `file` in reports; empty when LiteFS
/// would accept it. `env` as for [`crate::parse_str`].
pub fn check_str(text: &str, file: &str, env: EnvLookup<'_>) -> Vec<Problem> {
    match parse_document(text, file, env) {
        Ok(d) => d.problems,
        Err(e) => vec![e.into()],
    }
}

/// [`check_str`] for a file, read as the guard reads it (regular files
/// only, at most `MAX_CONFIG_BYTES`, UTF-8).
pub fn check_file(path: &Path, env: EnvLookup<'_>) -> Vec<Problem> {
    match load_file(path, env) {
        Ok(d) => d.problems,
        Err(e) => vec![e.into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::load_file;

    fn sample(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/configs")
            .join(name)
    }

    #[test]
    fn good_samples_have_no_problems() {
        for name in ["static.yml", "consul.yml", "unknown-keys.yml"] {
            assert_eq!(check_file(&sample(name), None), [], "{name}");
        }
    }

    #[test]
    fn each_bad_sample_has_one_problem_with_its_position() {
        for (name, line) in [
            ("bad-empty.yml", None),
            ("bad-relative-dir.yml", None),
            ("bad-lease-type.yml", Some(6)),
            ("bad-duration.yml", Some(9)),
            ("bad-url.yml", None),
            ("bad-syntax.yml", Some(4)),
            ("bad-alias-bomb.yml", Some(2)),
            ("bad-not-utf8.yml", Some(4)),
        ] {
            let p = sample(name);
            let problems = check_file(&p, None);
            assert_eq!(problems.len(), 1, "{name}: {problems:?}");
            assert_eq!(problems[0].line, line, "{name}");
            assert!(problems[0].report.starts_with(&p.display().to_string()), "{name}");
        }
    }

    /// Which bad samples a guard can still take its mount from: those whose
    /// only fault is something LiteFS checks.
    #[test]
    fn the_mount_survives_litefs_level_problems_only() {
        for (name, mount) in [
            ("bad-lease-type.yml", true),
            ("bad-duration.yml", true),
            ("bad-url.yml", true),
            ("bad-empty.yml", false),
            ("bad-relative-dir.yml", false),
        ] {
            let d = load_file(&sample(name), None).map_err(|e| e.to_string());
            assert_eq!(d.map(|d| d.mount_dir().is_ok()), Ok(mount), "{name}");
        }
        for name in ["bad-syntax.yml", "bad-alias-bomb.yml", "bad-not-utf8.yml"] {
            assert!(load_file(&sample(name), None).is_err(), "{name}");
        }
    }

    #[test]
    fn text_is_checked_too() {
        let problems = check_str("fuse:\n  dir: /litefs\n", "t.yml", None);
        let keys: Vec<_> = problems.iter().filter_map(|p| p.key.as_deref()).collect();
        assert_eq!(keys, ["data.dir", "lease.type"]);
    }
}
