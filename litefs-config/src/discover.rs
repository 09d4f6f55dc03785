//! Finding litefs.yml: the file the caller names, else LiteFS's own search
//! order. Nothing here reads the process environment, the working
//! directory or `/etc`: the caller passes each in ([`Search`]), so tests
//! (and a guard that must read its settings in one place) decide.

use super::document::{parse_document_bytes, Document};
use super::error::ConfigError;
use super::parse::Env;
use super::read::read_capped;
use super::Discovered;
use std::path::{Path, PathBuf};

/// The last place LiteFS searches.
pub const ETC_DIR: &str = "/etc";

/// Everything discovery looks at.
#[derive(Clone, Copy)]
pub struct Search<'a> {
    /// The file the user named (a guard's `LITEFS_GUARD_CONFIG`); when set
    /// and non-empty no search happens and the file must exist.
    pub explicit: Option<&'a Path>,
    /// Searched in order; the first that exists is read (see
    /// [`search_paths`]).
    pub candidates: &'a [PathBuf],
    /// Expand `${VAR}` references as LiteFS does (off: like
    /// `litefs mount -no-expand-env`).
    pub expand: bool,
    /// Resolves `${VAR}` when `expand` is on (None = unset).
    pub env: Env<'a>,
}

/// The file named by `search.explicit`, else the first of its candidates
/// that exists. Ok(None) when none does; Err when the file found cannot be
/// read or is not YAML. What LiteFS would refuse in it is in the
/// document's `problems`.
pub fn discover(search: &Search<'_>) -> Result<Option<Discovered>, ConfigError> {
    let load = |path: &Path| load_file(path, search.expand.then_some(search.env));
    if let Some(path) = search.explicit.filter(|p| !p.as_os_str().is_empty()) {
        return Ok(Some(Discovered {
            path: path.to_path_buf(),
            document: load(path)?,
        }));
    }
    for path in search.candidates {
        match load(path) {
            Ok(document) => {
                return Ok(Some(Discovered {
                    path: path.clone(),
                    document,
                }))
            }
            // Only absence moves on, as in LiteFS: a candidate that exists
            // but cannot be read or parsed is an error, not a skip.
            Err(ConfigError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Where LiteFS's search looks: `litefs.yml` in `cwd` (relative to the
/// working directory when None), in `home` (when set and non-empty), and in
/// `etc` ([`ETC_DIR`] in production; tests pass a directory of their own).
pub fn search_paths(cwd: Option<&Path>, home: Option<&Path>, etc: &Path) -> Vec<PathBuf> {
    let mut paths = vec![cwd.map_or_else(|| PathBuf::from("litefs.yml"), |d| d.join("litefs.yml"))];
    if let Some(home) = home.filter(|h| !h.as_os_str().is_empty()) {
        paths.push(home.join("litefs.yml"));
    }
    paths.push(etc.join("litefs.yml"));
    paths
}

/// Reads one file (regular, capped, UTF-8), expands it when `env` is set
/// and reads it leniently.
pub fn load_file(path: &Path, env: Option<Env<'_>>) -> Result<Document, ConfigError> {
    let bytes = read_capped(path)?;
    parse_document_bytes(&bytes, &path.display().to_string(), env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Exec, LeaseType, LiteFsConfig};
    use crate::parse::parse_bytes;
    use std::collections::HashMap;

    const VALID: &str =
        "fuse:\n  dir: /litefs\ndata:\n  dir: /var/lib/litefs\nlease:\n  type: static\n  hostname: ${HOST}\n";

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn write(path: &Path, text: &str) {
        if let Err(e) = std::fs::write(path, text) {
            panic!("cannot write {}: {e}", path.display());
        }
    }

    fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap_or_else(|e| panic!("cannot make a temporary directory: {e}"))
    }

    /// Discovery with `HOST=h`, expansion on unless `expand` is false.
    fn find(
        explicit: Option<&Path>,
        candidates: &[PathBuf],
        expand: bool,
    ) -> Result<Option<(PathBuf, Option<String>)>, String> {
        let env = env_of(&[("HOST", "h")]);
        discover(&Search {
            explicit,
            candidates,
            expand,
            env: &env,
        })
        .map(|o| {
            o.map(|d| {
                let host = d.document.config.and_then(|c| c.lease).and_then(|l| l.hostname);
                (d.path, host)
            })
        })
        .map_err(|e| e.to_string())
    }

    #[test]
    fn search_order_is_cwd_home_etc() {
        assert_eq!(
            search_paths(
                Some(Path::new("/srv/app")),
                Some(Path::new("/home/u")),
                Path::new(ETC_DIR)
            ),
            vec![
                PathBuf::from("/srv/app/litefs.yml"),
                PathBuf::from("/home/u/litefs.yml"),
                PathBuf::from("/etc/litefs.yml")
            ]
        );
        assert_eq!(
            search_paths(None, None, Path::new(ETC_DIR)),
            vec![PathBuf::from("litefs.yml"), PathBuf::from("/etc/litefs.yml")]
        );
        assert_eq!(
            search_paths(Some(Path::new("/w")), Some(Path::new("")), Path::new("/x/etc")),
            vec![PathBuf::from("/w/litefs.yml"), PathBuf::from("/x/etc/litefs.yml")]
        );
    }

    #[test]
    fn explicit_path_wins_and_is_expanded() {
        let t = tempdir();
        let p = t.path().join("custom.yml");
        write(&p, VALID);
        let searched = t.path().join("litefs.yml");
        write(&searched, "not: valid");
        let candidates = [searched];
        assert_eq!(
            find(Some(&p), &candidates, true),
            Ok(Some((p.clone(), Some("h".into()))))
        );
        assert_eq!(
            find(Some(&p), &candidates, false),
            Ok(Some((p, Some("${HOST}".into()))))
        );
    }

    #[test]
    fn explicit_path_must_exist() {
        let t = tempdir();
        let p = t.path().join("gone.yml");
        assert_eq!(
            find(Some(&p), &[], true),
            Err(format!("cannot read {}: no such file; check the path (LITEFS_GUARD_CONFIG) or unset LITEFS_GUARD_CONFIG to search ./litefs.yml, $HOME/litefs.yml, /etc/litefs.yml", p.display()))
        );
    }

    #[test]
    fn search_falls_through_missing_files_to_home() {
        let t = tempdir();
        let cwd = t.path().join("cwd");
        let home = t.path().join("home");
        assert!(std::fs::create_dir_all(&cwd).is_ok() && std::fs::create_dir_all(&home).is_ok());
        write(&home.join("litefs.yml"), VALID);
        let candidates = search_paths(Some(&cwd), Some(&home), &t.path().join("etc"));
        assert_eq!(
            find(None, &candidates, true),
            Ok(Some((home.join("litefs.yml"), Some("h".into()))))
        );
    }

    #[test]
    fn search_stops_at_a_broken_candidate() {
        let t = tempdir();
        let p = t.path().join("litefs.yml");
        assert!(std::fs::create_dir(&p).is_ok());
        assert_eq!(
            find(None, std::slice::from_ref(&p), true),
            Err(format!("cannot read {}: it is a directory, not a regular file; point LITEFS_GUARD_CONFIG at the litefs.yml file itself", p.display()))
        );
    }

    #[test]
    fn nothing_found_is_none() {
        let t = tempdir();
        let candidates = [t.path().join("litefs.yml"), t.path().join("home/litefs.yml")];
        assert_eq!(find(None, &candidates, true), Ok(None));
    }

    #[test]
    fn an_empty_explicit_path_means_search() {
        let t = tempdir();
        let p = t.path().join("litefs.yml");
        write(&p, VALID);
        assert_eq!(
            find(Some(Path::new("")), std::slice::from_ref(&p), true),
            Ok(Some((p, Some("h".into()))))
        );
    }

    #[test]
    fn a_file_litefs_would_refuse_is_found_with_its_problems() {
        let t = tempdir();
        let p = t.path().join("litefs.yml");
        write(&p, &VALID.replace("static", "etcd"));
        let env = env_of(&[]);
        let found = discover(&Search {
            explicit: Some(&p),
            candidates: &[],
            expand: true,
            env: &env,
        });
        let d = found.ok().flatten().map(|d| d.document);
        assert_eq!(d.as_ref().map(|d| d.mount_dir().is_ok()), Some(true));
        assert_eq!(d.map(|d| d.problems.len()), Some(1));
    }

    fn sample(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/configs")
            .join(name)
    }

    /// The strict reading of a sample, as LiteFS would read it.
    fn load_sample(name: &str, env: &[(&str, &str)]) -> Result<LiteFsConfig, String> {
        let p = sample(name);
        let env = env_of(env);
        read_capped(&p)
            .and_then(|b| parse_bytes(&b, &p.display().to_string(), Some(&env)))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn good_samples_load() {
        let c = load_sample("static.yml", &[]).unwrap_or_default();
        assert_eq!(c.mount_dir(), Some(Path::new("/litefs")));
        assert_eq!(c.lease_type(), Some(LeaseType::Static));
        assert!(c.is_candidate());
        assert!(matches!(&c.exec, Some(Exec::List(l)) if l.len() == 2));
        assert!(c.unknown_keys().is_empty());

        let c = load_sample("consul.yml", &[]).unwrap_or_default();
        assert_eq!(c.lease_type(), Some(LeaseType::Consul));
        let consul = c
            .lease
            .as_ref()
            .and_then(|l| l.consul.clone())
            .unwrap_or_default();
        assert_eq!(consul.ttl.map(|d| d.as_nanos()), Some(10_000_000_000));
        assert_eq!(
            c.data.and_then(|d| d.retention).map(|d| d.to_string()),
            Some("1m30s".into())
        );

        let c = load_sample("unknown-keys.yml", &[]).unwrap_or_default();
        assert_eq!(
            c.unknown_keys(),
            vec!["future-section", "fuse.alow-other", "lease.consul.session-ttl"]
        );
        assert_eq!(
            c.to_json()["unknown_keys"],
            serde_json::json!(["future-section", "fuse.alow-other", "lease.consul.session-ttl"])
        );
    }

    #[test]
    fn minimal_sample_takes_its_values_from_the_environment() {
        let env = [
            ("LITEFS_DIR", "/mnt/litefs"),
            ("LITEFS_DATA_DIR", "/mnt/data"),
            ("HOSTNAME", "node-a"),
            ("FLY_REGION", "ord"),
            ("PRIMARY_REGION", "ord"),
        ];
        let c = load_sample("minimal-env.yml", &env).unwrap_or_default();
        assert_eq!(c.mount_dir(), Some(Path::new("/mnt/litefs")));
        assert_eq!(c.data_dir(), Some(Path::new("/mnt/data")));
        assert_eq!(
            c.lease.as_ref().and_then(|l| l.hostname.as_deref()),
            Some("node-a")
        );
        assert_eq!(c.lease.as_ref().and_then(|l| l.candidate), Some(true));
        let p = sample("minimal-env.yml");
        assert_eq!(
            load_sample("minimal-env.yml", &[]),
            Err(format!(
                "{}: fuse.dir: is missing; set it to the directory LiteFS mounts, e.g. \"/litefs\"",
                p.display()
            ))
        );
    }

    #[test]
    fn bad_samples_fail_with_exact_messages() {
        const FIX: &str =
            "fix the value at that position (LiteFS's reference litefs.yml shows each key's shape)";
        let cases = [
            ("bad-empty.yml", "{}: the file is empty; LiteFS needs at least fuse.dir, data.dir and lease.type".to_owned()),
            ("bad-relative-dir.yml", "{}: fuse.dir = \"litefs\": must be an absolute path; write the directory LiteFS mounts, e.g. \"/litefs\"".to_owned()),
            ("bad-lease-type.yml", format!("{{}}:6:9: lease.type: unknown variant `etcd`, expected `static` or `consul`; {FIX}")),
            ("bad-duration.yml", format!("{{}}:9:10: lease.consul.ttl: invalid Go duration \"10\": missing unit after \"10\"; add one of ns, us, ms, s, m, h (e.g. \"10s\"); {FIX}")),
            ("bad-url.yml", "{}: lease.advertise-url = \"primary.internal:20202\": must start with http:// or https://; write it like \"http://myhost:20202\"".to_owned()),
            ("bad-syntax.yml", format!("{{}}:4:6: did not find expected ',' or '}}', while parsing a flow mapping at line 3 column 7; {FIX}")),
            ("bad-alias-bomb.yml", "{}:2:35: a3[7][8][8][5]: the document has more than 10000 YAML values once aliases are expanded; a litefs.yml needs under a hundred values and no anchors or aliases; write the values out".to_owned()),
            ("bad-not-utf8.yml", "{}:4:16: not valid UTF-8 (byte 0xe9 at offset 43); save litefs.yml as UTF-8 text".to_owned()),
        ];
        for (name, want) in cases {
            let p = sample(name);
            let want = want.replacen("{}", &p.display().to_string(), 1);
            assert_eq!(load_sample(name, &[]).map(|_| ()), Err(want), "{name}");
        }
    }
}
