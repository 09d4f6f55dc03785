//! Text to validated model: UTF-8 check, env expansion, YAML with a work
//! budget, then validation. The pieces are shared with `document`, the
//! lenient form.

use super::budget::{check_flow_brackets, Budget, Limited};
use super::error::ConfigError;
use super::expand::expand_env;
use super::model::LiteFsConfig;
use super::validate::validate;
use serde::Deserialize;
use std::borrow::Cow;

/// An environment: variable name to value (None = unset).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;
/// How `${VAR}` references are resolved; `None` turns expansion off.
pub type EnvLookup<'a> = Option<Env<'a>>;

/// Parses and validates litefs.yml text, strictly: the config only if
/// LiteFS would accept it, else the first problem. `file` names the source
/// in errors. With `env` set, `${VAR}`/`$VAR` are expanded first, as LiteFS
/// does; error positions then refer to the expanded text (the same unless a
/// value has a newline). [`crate::parse_document`] is the lenient form.
pub fn parse_str(text: &str, file: &str, env: EnvLookup<'_>) -> Result<LiteFsConfig, ConfigError> {
    let text = expanded(text, file, env)?;
    let config = from_yaml(&text, file)?;
    match validate(&config, file).into_iter().next() {
        Some(problem) => Err(problem),
        None => Ok(config),
    }
}

/// `parse_str` for raw file bytes, refusing anything that is not UTF-8.
pub fn parse_bytes(bytes: &[u8], file: &str, env: EnvLookup<'_>) -> Result<LiteFsConfig, ConfigError> {
    parse_str(utf8(bytes, file)?, file, env)
}

/// The bytes as text, or where the first byte that is not UTF-8 is.
pub(crate) fn utf8<'a>(bytes: &'a [u8], file: &str) -> Result<&'a str, ConfigError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = &bytes[..e.valid_up_to()];
        // The prefix is valid UTF-8, so this never falls back.
        let prefix = std::str::from_utf8(valid).unwrap_or_default();
        let line_start = prefix.rfind('\n').map_or(0, |i| i + 1);
        ConfigError::NotUtf8 {
            file: file.to_owned(),
            line: prefix.matches('\n').count() + 1,
            column: prefix[line_start..].chars().count() + 1,
            offset: e.valid_up_to(),
            byte: bytes.get(e.valid_up_to()).copied().unwrap_or_default(),
        }
    })
}

/// The text after `${VAR}` expansion (when `env` is set); an error when it
/// is blank before or after.
pub(crate) fn expanded<'a>(
    text: &'a str,
    file: &str,
    env: EnvLookup<'_>,
) -> Result<Cow<'a, str>, ConfigError> {
    if text.trim().is_empty() {
        return Err(empty(file, false));
    }
    let Some(lookup) = env else {
        return Ok(Cow::Borrowed(text));
    };
    let expanded = expand_env(text, lookup);
    if expanded.trim().is_empty() {
        return Err(empty(file, true));
    }
    Ok(Cow::Owned(expanded))
}

fn empty(file: &str, after_expansion: bool) -> ConfigError {
    ConfigError::Empty {
        file: file.to_owned(),
        after_expansion,
    }
}

/// YAML to model, without validation.
pub(crate) fn from_yaml(text: &str, file: &str) -> Result<LiteFsConfig, ConfigError> {
    under_budget(text, file)
}

/// Fails only on what makes the text unusable as YAML at all (syntax,
/// several documents, nesting, the work budget), never on a value of the
/// wrong type for LiteFS. Reads nothing into memory.
pub(crate) fn check_yaml(text: &str, file: &str) -> Result<(), ConfigError> {
    under_budget::<super::tolerant::AnyYaml>(text, file).map(|_| ())
}

/// The text as `T`, under the same budget as every other reading.
pub(crate) fn read_as<T: for<'de> Deserialize<'de>>(text: &str, file: &str) -> Result<T, ConfigError> {
    under_budget(text, file)
}

fn under_budget<T: for<'de> Deserialize<'de>>(text: &str, file: &str) -> Result<T, ConfigError> {
    check_flow_brackets(text).map_err(|message| ConfigError::Yaml {
        file: file.to_owned(),
        line: None,
        column: None,
        message,
        hint: "write nested values in block style, one key per line",
    })?;
    let budget = Budget::default();
    T::deserialize(Limited {
        inner: serde_norway::Deserializer::from_str(text),
        budget: &budget,
    })
    .map_err(|e| yaml_error(&e, file))
}

fn yaml_error(e: &serde_norway::Error, file: &str) -> ConfigError {
    let loc = e.location();
    let mut message = e.to_string();
    // serde_norway writes the position into the message (at the end, or before
    // libyaml's ", while parsing …" context); we lead with it instead.
    if let Some(l) = &loc {
        let suffix = format!(" at line {} column {}", l.line(), l.column());
        let at = if message.ends_with(&suffix) {
            Some(message.len() - suffix.len())
        } else {
            message.find(&format!("{suffix},"))
        };
        if let Some(at) = at {
            message.replace_range(at..at + suffix.len(), "");
        }
    }
    let hint = if message.contains("recursion limit exceeded") {
        "the document nests deeper than 128 levels; litefs.yml needs 3"
    } else if message.contains("repetition limit exceeded") || message.contains("once aliases are expanded") {
        "a litefs.yml needs under a hundred values and no anchors or aliases; write the values out"
    } else if message.contains("more than one document") {
        "keep a single YAML document (no `---` separators)"
    } else if message.contains("expected struct LiteFsConfig") {
        "the top level must be a mapping of keys such as fuse:, data:, lease:"
    } else {
        "fix the value at that position (LiteFS's reference litefs.yml shows each key's shape)"
    };
    ConfigError::Yaml {
        file: file.to_owned(),
        line: loc.as_ref().map(|l| l.line()),
        column: loc.as_ref().map(|l| l.column()),
        message,
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    const MINIMAL: &str = "fuse:\n  dir: /litefs\ndata:\n  dir: /var/lib/litefs\nlease:\n  type: static\n";

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn err(text: &str) -> String {
        match parse_str(text, "litefs.yml", Some(&no_env)) {
            Ok(c) => format!("parsed: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn minimal_config_parses() {
        let c = parse_str(MINIMAL, "t", None).map_err(|e| e.to_string());
        assert_eq!(
            c.map(|c| c.fuse_dir().map(|p| p.to_owned())),
            Ok(Some("/litefs".into()))
        );
    }

    #[test]
    fn empty_file_is_refused() {
        assert_eq!(
            err(""),
            "litefs.yml: the file is empty; LiteFS needs at least fuse.dir, data.dir and lease.type"
        );
        assert_eq!(
            err(" \n\t\n"),
            "litefs.yml: the file is empty; LiteFS needs at least fuse.dir, data.dir and lease.type"
        );
        assert_eq!(
            err("${UNSET}\n"),
            "litefs.yml: empty after environment expansion (every ${VAR} in it is unset?); LiteFS needs at least fuse.dir, data.dir and lease.type"
        );
    }

    #[test]
    fn non_utf8_is_refused_with_position() {
        let mut bytes = b"fuse:\n  dir: /lit".to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        let e = parse_bytes(&bytes, "litefs.yml", None).map_err(|e| e.to_string());
        assert_eq!(
            e.err(),
            Some(
                "litefs.yml:2:12: not valid UTF-8 (byte 0xff at offset 17); save litefs.yml as UTF-8 text"
                    .into()
            )
        );
        // A Latin-1 é in a value.
        let e = parse_bytes(b"lease:\n  hostname: caf\xe9\n", "x.yml", None).map_err(|e| e.to_string());
        assert_eq!(
            e.err(),
            Some(
                "x.yml:2:16: not valid UTF-8 (byte 0xe9 at offset 22); save litefs.yml as UTF-8 text".into()
            )
        );
    }

    #[test]
    fn syntax_error_names_file_line_and_column() {
        assert_eq!(
            err("fuse: {dir: 'a'\n"),
            "litefs.yml:2:1: did not find expected ',' or '}', while parsing a flow mapping at line 1 column 7; fix the value at that position (LiteFS's reference litefs.yml shows each key's shape)"
        );
        assert_eq!(
            err("fuse:\n  allow-other: maybe\n"),
            "litefs.yml:2:16: fuse.allow-other: invalid value: string \"maybe\", expected true or false; fix the value at that position (LiteFS's reference litefs.yml shows each key's shape)"
        );
        assert_eq!(
            err("- a\n"),
            "litefs.yml:1:1: invalid type: sequence, expected struct LiteFsConfig; the top level must be a mapping of keys such as fuse:, data:, lease:"
        );
        assert_eq!(
            err("data:\n  retention: 10\n"),
            "litefs.yml:2:14: data.retention: invalid Go duration \"10\": missing unit after \"10\"; add one of ns, us, ms, s, m, h (e.g. \"10s\"); fix the value at that position (LiteFS's reference litefs.yml shows each key's shape)"
        );
    }

    #[test]
    fn alias_bomb_fails_fast_in_bounded_memory() {
        // Classic billion laughs: 10 levels of 10 aliases each (10^10 leaves).
        let mut doc = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..10 {
            let p = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [{}]\n",
                vec![format!("*a{p}"); 10].join(", ")
            ));
        }
        doc.push_str(MINIMAL);
        let start = Instant::now();
        let e = err(&doc);
        assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
        assert_eq!(
            e,
            "litefs.yml:1:35: a3[7][8][8][5]: the document has more than 10000 YAML values once aliases are expanded; a litefs.yml needs under a hundred values and no anchors or aliases; write the values out"
        );
    }

    #[test]
    fn wide_alias_fan_out_is_stopped_by_the_budget() {
        // Under serde_norway's own repetition limit, yet 2 GB once expanded.
        let mut doc = format!("{MINIMAL}big: &big \"{}\"\nlease2: [", "x".repeat(100_000));
        doc.push_str(&"*big,".repeat(20_000));
        doc.push_str("]\n");
        let start = Instant::now();
        let e = err(&doc);
        assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
        assert!(e.starts_with("litefs.yml:"), "{e}");
        assert!(
            e.contains(
                "lease2[40]: the document has more than 4194304 bytes of text once aliases are expanded"
            ),
            "{e}"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        const HINT: &str = "; the document nests deeper than 128 levels; litefs.yml needs 3";
        assert_eq!(
            err(&format!("x: {}", "[".repeat(1000))),
            format!("litefs.yml:1:131: recursion limit exceeded{HINT}")
        );
        assert_eq!(
            err(&format!("x:\n{}", "- ".repeat(200_000))),
            format!("litefs.yml:2:255: recursion limit exceeded{HINT}")
        );
        let indented: String = (0..1000).map(|i| format!("{}a:\n", " ".repeat(i))).collect();
        assert_eq!(
            err(&indented),
            format!("litefs.yml:129:129: recursion limit exceeded{HINT}")
        );
    }

    #[test]
    fn flow_nesting_that_would_stall_the_parser_is_refused_up_front() {
        for open in ["[", "{a: "] {
            let doc = format!("x: {}", open.repeat(200_000));
            let start = Instant::now();
            let e = err(&doc);
            assert!(start.elapsed() < Duration::from_secs(1), "{:?}", start.elapsed());
            assert_eq!(
                e,
                format!("litefs.yml: 200000 '[' and '{{' characters in {} bytes is more than the YAML parser handles in bounded time (at most {} at this size); write nested values in block style, one key per line", doc.len(), 64 * 1024 * 1024 / doc.len())
            );
        }
    }

    #[test]
    fn several_documents_are_refused() {
        assert_eq!(
            err(&format!("{MINIMAL}---\n{MINIMAL}")),
            "litefs.yml: deserializing from YAML containing more than one document is not supported; keep a single YAML document (no `---` separators)"
        );
    }

    #[test]
    fn expansion_happens_before_parsing() {
        let env = |n: &str| match n {
            "MOUNT" => Some("/mnt/litefs".to_owned()),
            "REGION" => Some("ord".to_owned()),
            _ => None,
        };
        let text = format!("{MINIMAL}lease:\n  candidate: ${{REGION == 'ord'}}\n")
            .replace("/litefs\n", "${MOUNT}\n")
            .replacen("lease:\n  type: static\n", "", 1)
            .replace("candidate", "type: static\n  candidate");
        let c = parse_str(&text, "t", Some(&env)).map_err(|e| e.to_string());
        let c = c.unwrap_or_default();
        assert_eq!(c.fuse_dir(), Some(std::path::Path::new("/mnt/litefs")));
        assert_eq!(c.lease.and_then(|l| l.candidate), Some(true));
        // Off: the references are taken literally, and fail as LiteFS
        // (run with -no-expand-env) would fail on them.
        let e = parse_str(&text, "t", None).map_err(|e| e.to_string());
        assert_eq!(
            e.err(),
            Some("t:7:14: lease.candidate: invalid value: string \"${REGION == 'ord'}\", expected true or false; fix the value at that position (LiteFS's reference litefs.yml shows each key's shape)".into())
        );
    }
}
