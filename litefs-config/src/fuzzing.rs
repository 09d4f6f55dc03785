//! The oracle behind the `config_parse` fuzz target, shared with a plain
//! `cargo test` that replays the fuzz corpus and the sample configs, so the
//! same checks run where no nightly toolchain is available.

use super::document::{parse_document_bytes, Document};
use super::error::ConfigError;
use super::model::LiteFsConfig;
use super::parse::{parse_bytes, parse_str, EnvLookup};
use super::render::render;

/// Parses `data` (with and without env expansion), strictly and leniently;
/// the two must agree, and whatever parses must render to YAML that parses
/// back to the same config and renders the same.
/// Panics on a broken invariant: that is what the fuzzer looks for.
#[doc(hidden)]
pub fn check_one(data: &[u8]) {
    let env = |name: &str| match name {
        "HOSTNAME" => Some("fuzz-host".to_owned()),
        "QUOTE" => Some("\"'".to_owned()),
        "NEWLINE" => Some("\n  ".to_owned()),
        _ => None,
    };
    let lookups: [EnvLookup<'_>; 2] = [None, Some(&env)];
    for lookup in lookups {
        let strict = parse_bytes(data, "fuzz", lookup);
        agrees_with_lenient(&strict, parse_document_bytes(data, "fuzz", lookup));
        if let Ok(config) = strict {
            round_trips(&config);
        }
    }
}

/// The lenient reading is the strict one with problems listed instead of
/// raised: the same config when there are none, a problem otherwise, and an
/// error only where the strict one fails too.
fn agrees_with_lenient(strict: &Result<LiteFsConfig, ConfigError>, lenient: Result<Document, ConfigError>) {
    match (strict, lenient) {
        (Ok(c), Ok(d)) => {
            assert!(
                d.problems.is_empty(),
                "strict accepts, lenient lists {:?}",
                d.problems
            );
            assert_eq!(d.config.as_ref(), Some(c));
            assert_eq!(d.mount_dir().ok(), c.fuse_dir());
        }
        (Err(e), Ok(d)) => assert_eq!(d.problems.first().map(|p| p.report.clone()), Some(e.to_string())),
        (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) => panic!("strict accepts, lenient refuses: {e}"),
    }
}

fn round_trips(config: &LiteFsConfig) {
    let yaml = render(config);
    let hostile_env = |_: &str| -> Option<String> { Some("CHANGED".to_owned()) };
    // A hostile environment must not matter: the rendering has no `$`.
    for lookup in [None, Some(&hostile_env as &dyn Fn(&str) -> Option<String>)] {
        match parse_str(&yaml, "rendered", lookup) {
            Ok(again) => {
                assert_eq!(&again, config, "round trip changed the config:\n{yaml}");
                assert_eq!(render(&again), yaml, "rendering is not stable");
            }
            Err(e) => panic!("rendered config does not parse: {e}\n{yaml}"),
        }
    }
    let _ = serde_json::to_string(&config.to_json());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every file in `dir` (missing directories are fine: the fuzz corpus
    /// exists only where the fuzzer has run).
    fn files(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out: Vec<_> = std::fs::read_dir(dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        out.retain(|p| p.is_file());
        out.sort();
        out
    }

    #[test]
    fn replay_sample_configs_and_fuzz_corpus() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let samples = files(&root.join("../tests/configs"));
        assert!(samples.len() >= 4, "tests/configs has {} files", samples.len());
        let mut count = 0;
        for dir in ["../tests/configs", "fuzz/corpus/config_parse"] {
            for path in files(&root.join(dir)) {
                let data = std::fs::read(&path).unwrap_or_default();
                // Same input cap as the fuzz target.
                if data.len() <= 64 * 1024 {
                    check_one(&data);
                    count += 1;
                }
            }
        }
        eprintln!("replayed {count} inputs");
    }

    #[test]
    fn oracle_survives_hostile_inputs() {
        for data in [
            &b""[..],
            b"\xff\xfe",
            b"fuse: {dir: /x}\ndata: {dir: /y}\nlease: {type: consul}\nx: \"$HOSTNAME ${QUOTE} ${NEWLINE}\"\n",
            b"fuse:\n  dir: /litefs\ndata:\n  dir: /d\nlease:\n  type: static\n  hostname: ${QUOTE}\n",
            b"[[[[[[[[[[[[[[[[",
        ] {
            check_one(data);
        }
    }
}
