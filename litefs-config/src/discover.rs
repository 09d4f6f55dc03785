//! Finding litefs.yml: `LITEFS_GUARD_CONFIG`, else LiteFS's own search order.
//! Everything takes the environment as a lookup function so tests never touch
//! the real environment.

use super::error::ConfigError;
use super::model::LiteFsConfig;
use super::parse::{parse_bytes, Env};
use super::read::read_capped;
use super::Discovered;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Names the config file; when set (non-empty), no search happens.
pub const CONFIG_VAR: &str = "LITEFS_GUARD_CONFIG";
/// `0` reads the file verbatim, like `litefs mount -no-expand-env`.
pub const EXPAND_VAR: &str = "LITEFS_GUARD_CONFIG_EXPAND_ENV";

/// `discover()` with an explicit environment and working directory.
pub fn discover_with(env: Env<'_>, cwd: Option<&Path>) -> Result<Option<Discovered>, ConfigError> {
    discover_from(env, &search_paths(env, cwd))
}

/// `LITEFS_GUARD_CONFIG` from `env`, else the first of `candidates` that
/// exists.
pub fn discover_from(env: Env<'_>, candidates: &[PathBuf]) -> Result<Option<Discovered>, ConfigError> {
    let explicit = env(CONFIG_VAR).filter(|p| !p.is_empty()).map(PathBuf::from);
    discover_in(env, explicit.as_deref(), candidates)
}

/// The file named by `explicit` (`LITEFS_GUARD_CONFIG`, taken byte for byte
/// by the caller), else the first of `candidates` that exists. `env` serves
/// `LITEFS_GUARD_CONFIG_EXPAND_ENV` and `${VAR}` expansion. Nothing here
/// looks at the process environment, the working directory or `/etc`: the
/// caller passes them in (see [`search_paths_in`]).
pub fn discover_in(
    env: Env<'_>,
    explicit: Option<&Path>,
    candidates: &[PathBuf],
) -> Result<Option<Discovered>, ConfigError> {
    if let Some(path) = explicit.filter(|p| !p.as_os_str().is_empty()) {
        let config = load_file_with(path, env)?;
        return Ok(Some(Discovered {
            path: path.to_path_buf(),
            config,
        }));
    }
    for path in candidates {
        match load_file_with(path, env) {
            Ok(config) => {
                return Ok(Some(Discovered {
                    path: path.clone(),
                    config,
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

/// `./litefs.yml`, `$HOME/litefs.yml`, `/etc/litefs.yml`.
pub fn search_paths(env: Env<'_>, cwd: Option<&Path>) -> Vec<PathBuf> {
    let home = env("HOME").map(PathBuf::from);
    search_paths_in(cwd, home.as_deref(), Path::new(ETC_DIR))
}

/// Where LiteFS's search looks: `litefs.yml` in `cwd` (relative to the
/// working directory when None), in `home` (when set and non-empty), and in
/// `etc` (`/etc` in production; tests pass a directory of their own).
pub fn search_paths_in(cwd: Option<&Path>, home: Option<&Path>, etc: &Path) -> Vec<PathBuf> {
    let mut paths = vec![cwd.map_or_else(|| PathBuf::from("litefs.yml"), |d| d.join("litefs.yml"))];
    if let Some(home) = home.filter(|h| !h.as_os_str().is_empty()) {
        paths.push(home.join("litefs.yml"));
    }
    paths.push(etc.join("litefs.yml"));
    paths
}

/// The last place LiteFS searches.
pub const ETC_DIR: &str = "/etc";

/// Reads, expands (unless `LITEFS_GUARD_CONFIG_EXPAND_ENV=0`), parses and
/// validates one file, with the process environment.
pub fn load_file(path: &Path) -> Result<LiteFsConfig, ConfigError> {
    load_file_with(path, &process_env)
}

pub fn load_file_with(path: &Path, env: Env<'_>) -> Result<LiteFsConfig, ConfigError> {
    let expand = expand_enabled(env)?;
    let bytes = read_capped(path)?;
    parse_bytes(&bytes, &path.display().to_string(), expand.then_some(env))
}

fn expand_enabled(env: Env<'_>) -> Result<bool, ConfigError> {
    match env(EXPAND_VAR).as_deref().map(str::trim) {
        None | Some("" | "1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => Err(ConfigError::BadEnvSwitch {
            var: EXPAND_VAR,
            value: other.to_owned(),
        }),
    }
}

/// The process environment. Like LiteFS, which sets `HOSTNAME` from
/// hostname(2) when it is unset so configs can say `${HOSTNAME}`, an unset
/// or empty `HOSTNAME` reads the kernel's host name.
pub fn process_env(name: &str) -> Option<String> {
    process_env_os(name).map(|v| v.to_string_lossy().into_owned())
}

/// [`process_env`] byte for byte (paths such as `LITEFS_GUARD_DIR`,
/// `LITEFS_GUARD_CONFIG` and `HOME` need not be UTF-8).
pub fn process_env_os(name: &str) -> Option<OsString> {
    let value = std::env::var_os(name);
    if name == "HOSTNAME" && value.as_ref().is_none_or(|v| v.is_empty()) {
        return std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .map(OsString::from);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::tests::TempDir;
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

    fn found(
        r: Result<Option<Discovered>, ConfigError>,
    ) -> Result<Option<(PathBuf, Option<String>)>, String> {
        r.map(|o| o.map(|d| (d.path, d.config.lease.and_then(|l| l.hostname))))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn search_order_is_cwd_home_etc() {
        let env = env_of(&[("HOME", "/home/u")]);
        assert_eq!(
            search_paths(&env, Some(Path::new("/srv/app"))),
            vec![
                PathBuf::from("/srv/app/litefs.yml"),
                PathBuf::from("/home/u/litefs.yml"),
                PathBuf::from("/etc/litefs.yml")
            ]
        );
        let env = env_of(&[]);
        assert_eq!(
            search_paths(&env, None),
            vec![PathBuf::from("litefs.yml"), PathBuf::from("/etc/litefs.yml")]
        );
        assert_eq!(
            search_paths_in(Some(Path::new("/w")), Some(Path::new("")), Path::new("/x/etc")),
            vec![PathBuf::from("/w/litefs.yml"), PathBuf::from("/x/etc/litefs.yml")]
        );
    }

    #[test]
    fn explicit_path_wins_and_is_expanded() {
        let t = TempDir::new("explicit");
        let p = t.0.join("custom.yml");
        write(&p, VALID);
        write(&t.0.join("litefs.yml"), "not: valid");
        let path = p.to_string_lossy().into_owned();
        let env = env_of(&[(CONFIG_VAR, &path), ("HOST", "node-7")]);
        assert_eq!(
            found(discover_with(&env, Some(&t.0))),
            Ok(Some((p.clone(), Some("node-7".into()))))
        );
        let env = env_of(&[(CONFIG_VAR, &path), ("HOST", "node-7"), (EXPAND_VAR, "0")]);
        assert_eq!(
            found(discover_with(&env, Some(&t.0))),
            Ok(Some((p, Some("${HOST}".into()))))
        );
    }

    #[test]
    fn explicit_path_must_exist() {
        let t = TempDir::new("explicit_missing");
        let p = t.0.join("gone.yml");
        let path = p.to_string_lossy().into_owned();
        let env = env_of(&[(CONFIG_VAR, &path)]);
        assert_eq!(
            found(discover_with(&env, Some(&t.0))),
            Err(format!("cannot read {path}: no such file; check the path (LITEFS_GUARD_CONFIG) or unset LITEFS_GUARD_CONFIG to search ./litefs.yml, $HOME/litefs.yml, /etc/litefs.yml"))
        );
    }

    #[test]
    fn search_falls_through_missing_files_to_home() {
        let t = TempDir::new("search");
        let cwd = t.0.join("cwd");
        let home = t.0.join("home");
        assert!(std::fs::create_dir_all(&cwd).is_ok() && std::fs::create_dir_all(&home).is_ok());
        write(&home.join("litefs.yml"), VALID);
        let env = env_of(&[("HOME", &home.to_string_lossy()), ("HOST", "h")]);
        assert_eq!(
            found(discover_with(&env, Some(&cwd))),
            Ok(Some((home.join("litefs.yml"), Some("h".into()))))
        );
    }

    #[test]
    fn search_stops_at_a_broken_candidate() {
        let t = TempDir::new("broken");
        assert!(std::fs::create_dir(t.0.join("litefs.yml")).is_ok());
        let env = env_of(&[]);
        assert_eq!(
            found(discover_with(&env, Some(&t.0))),
            Err(format!("cannot read {}: it is a directory, not a regular file; point LITEFS_GUARD_CONFIG at the litefs.yml file itself", t.0.join("litefs.yml").display()))
        );
    }

    #[test]
    fn nothing_found_is_none() {
        let t = TempDir::new("none");
        let candidates = [t.0.join("litefs.yml"), t.0.join("home/litefs.yml")];
        assert_eq!(found(discover_from(&env_of(&[]), &candidates)), Ok(None));
    }

    #[test]
    fn an_empty_config_variable_means_search() {
        let t = TempDir::new("emptyvar");
        let p = t.0.join("litefs.yml");
        write(&p, VALID);
        let env = env_of(&[(CONFIG_VAR, ""), ("HOST", "h")]);
        assert_eq!(
            found(discover_from(&env, std::slice::from_ref(&p))),
            Ok(Some((p, Some("h".into()))))
        );
    }

    #[test]
    fn expand_switch_is_strict() {
        let t = TempDir::new("switch");
        let p = t.0.join("litefs.yml");
        write(&p, VALID);
        let env = env_of(&[(EXPAND_VAR, "maybe")]);
        assert_eq!(
            load_file_with(&p, &env).map(|_| ()).map_err(|e| e.to_string()),
            Err("LITEFS_GUARD_CONFIG_EXPAND_ENV=\"maybe\" is not understood; use 1 (expand ${VAR} references, the default) or 0 (read the file verbatim)".into())
        );
    }

    fn sample(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/configs")
            .join(name)
    }

    fn load_sample(name: &str, env: &[(&str, &str)]) -> Result<LiteFsConfig, String> {
        load_file_with(&sample(name), &env_of(env)).map_err(|e| e.to_string())
    }

    #[test]
    fn good_samples_load() {
        let c = load_sample("static.yml", &[]).unwrap_or_default();
        assert_eq!(c.mount_dir(), Some(Path::new("/litefs")));
        assert_eq!(c.lease_type(), Some(crate::LeaseType::Static));
        assert!(c.is_candidate());
        assert!(matches!(&c.exec, Some(crate::Exec::List(l)) if l.len() == 2));
        assert!(c.unknown_keys().is_empty());

        let c = load_sample("consul.yml", &[]).unwrap_or_default();
        assert_eq!(c.lease_type(), Some(crate::LeaseType::Consul));
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

    #[test]
    fn hostname_falls_back_to_the_kernel() {
        // Only the fallback branch is deterministic enough to check here.
        if std::env::var_os("HOSTNAME").is_none() {
            let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
            assert_eq!(
                process_env("HOSTNAME"),
                kernel.map(|h| h.trim().to_owned()).filter(|h| !h.is_empty())
            );
        }
    }
}
