//! Deterministic YAML rendering of a config (or any YAML value).
//!
//! Block style, keys in model order (LiteFS's reference file order), unknown
//! keys sorted after them. Every string is double-quoted, so `true`, `null`,
//! `1.0`, `~`, `#`, `: `, leading/trailing spaces and newlines all come back
//! as the same string. `$` is written as the escape `\x24`: the text contains
//! no `$` at all, so `${VAR}` expansion (ours or LiteFS's) cannot change it,
//! and parsing the output gives back the same config with expansion on or off.

use serde::Serialize;
use serde_norway::{Mapping, Value};
use std::fmt::Write;

/// Renders anything serializable, e.g. a `LiteFsConfig`.
pub(crate) fn render<T: Serialize>(value: &T) -> String {
    match serde_norway::to_value(value) {
        Ok(v) => render_value(&v),
        // Our model only has string keys, so this is not expected; keep the
        // output valid YAML that says what happened.
        Err(e) => format!("# cannot render: {}\n{{}}\n", e.to_string().replace('\n', " ")),
    }
}

pub(crate) fn render_value(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Mapping(m) if !m.is_empty() => block_mapping(&mut out, m, 0),
        other => {
            out.push_str(&flow(other));
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn block_mapping(out: &mut String, m: &Mapping, indent: usize) {
    for (k, v) in m {
        pad(out, indent);
        entry(out, k, v, indent);
    }
}

/// `key: value` from the current position; nested blocks at `indent + 2`.
fn entry(out: &mut String, k: &Value, v: &Value, indent: usize) {
    if matches!(k, Value::Sequence(_) | Value::Mapping(_) | Value::Tagged(_)) {
        // Complex key: explicit `? key` / `: value`, both in flow style.
        let _ = writeln!(out, "? {}", flow(k));
        pad(out, indent);
        let _ = writeln!(out, ": {}", flow(v));
        return;
    }
    out.push_str(&key_text(k));
    out.push(':');
    match v {
        Value::Mapping(m) if !m.is_empty() => {
            out.push('\n');
            block_mapping(out, m, indent + 2);
        }
        Value::Sequence(s) if !s.is_empty() => {
            out.push('\n');
            block_sequence(out, s, indent + 2);
        }
        _ => {
            let _ = writeln!(out, " {}", flow(v));
        }
    }
}

fn block_sequence(out: &mut String, s: &[Value], indent: usize) {
    for item in s {
        pad(out, indent);
        out.push('-');
        match item {
            Value::Mapping(m) if !m.is_empty() => {
                // `- first: x` then the other keys aligned under `first`.
                out.push(' ');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        pad(out, indent + 2);
                    }
                    entry(out, k, v, indent + 2);
                }
            }
            Value::Sequence(inner) if !inner.is_empty() => {
                out.push('\n');
                block_sequence(out, inner, indent + 2);
            }
            _ => {
                let _ = writeln!(out, " {}", flow(item));
            }
        }
    }
}

/// Plain for our own lowercase keys, quoted for anything YAML might read
/// as something other than that string.
fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) if is_plain_key(s) => s.clone(),
        other => flow(other),
    }
}

fn is_plain_key(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !matches!(
            s,
            "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
        )
}

fn flow(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        // serde_norway prints floats so they read back as floats (1.0, 1e100,
        // .inf, .nan) and integers as plain digits.
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Sequence(s) => {
            let items: Vec<String> = s.iter().map(flow).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Mapping(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| match k {
                    Value::Sequence(_) | Value::Mapping(_) | Value::Tagged(_) => {
                        format!("? {}: {}", flow(k), flow(v))
                    }
                    _ => format!("{}: {}", key_text(k), flow(v)),
                })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Tagged(t) => format!("{} {}", tag_text(&t.tag.to_string()), flow(&t.value)),
    }
}

/// `!name` with every byte outside `[A-Za-z0-9_.-]` %-escaped (YAML decodes
/// tag escapes), so no `$` or flow indicator appears in the output.
fn tag_text(tag: &str) -> String {
    let name = tag.strip_prefix('!').unwrap_or(tag);
    let mut out = String::from("!");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// JSON for a config: every key as in YAML (non-string keys of unknown
/// entries become their YAML text), plus `"unknown_keys"`.
pub(crate) fn render_json<T: Serialize>(value: &T, unknown_keys: Vec<String>) -> serde_json::Value {
    let mut json = match serde_norway::to_value(value) {
        Ok(v) => to_json(&v),
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    };
    if let serde_json::Value::Object(map) = &mut json {
        map.insert("unknown_keys".to_owned(), unknown_keys.into());
    }
    json
}

fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                J::from(i)
            } else if let Some(u) = n.as_u64() {
                J::from(u)
            } else {
                // NaN and infinities have no JSON number: keep YAML's text.
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or_else(|| J::String(n.to_string()), J::Number)
            }
        }
        Value::String(s) => J::String(s.clone()),
        Value::Sequence(s) => J::Array(s.iter().map(to_json).collect()),
        Value::Mapping(m) => J::Object(
            m.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::String(s) => s.clone(),
                        other => flow(other),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Value::Tagged(t) => {
            let mut obj = serde_json::Map::new();
            obj.insert(t.tag.to_string(), to_json(&t.value));
            J::Object(obj)
        }
    }
}

/// A double-quoted YAML scalar that reads back as exactly `s`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '$' => out.push_str("\\x24"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            // YAML 1.1 line breaks: raw, they would fold into spaces.
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if is_printable(c) => out.push(c),
            c => {
                let n = u32::from(c);
                let _ = if n <= 0xFF {
                    write!(out, "\\x{n:02X}")
                } else if n <= 0xFFFF {
                    write!(out, "\\u{n:04X}")
                } else {
                    write!(out, "\\U{n:08X}")
                };
            }
        }
    }
    out.push('"');
    out
}

/// YAML's printable set, minus the byte-order mark (which a reader may
/// drop as a BOM).
fn is_printable(c: char) -> bool {
    matches!(u32::from(c), 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFEFE | 0xFF00..=0xFFFD | 0x10000..=0x10FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn back(yaml: &str) -> Result<Value, String> {
        serde_norway::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn quotes_tricky_strings_so_they_read_back() {
        for s in [
            "",
            " lead",
            "trail ",
            "true",
            "null",
            "~",
            "1.0",
            "0x10",
            "#x",
            "a: b",
            "a #b",
            "- x",
            "line\nbreak",
            "tab\there",
            "${X}",
            "$X",
            "$$",
            "\\",
            "\"",
            "'",
            "\u{0}\u{1}\u{7f}\u{9f}",
            "\u{85}\u{2028}\u{2029}",
            "\u{feff}bom",
            "\u{fffe}\u{ffff}",
            "é日本🦀",
            "%x",
            "!tag",
            "&a",
            "*a",
            "{[",
            "@`",
            "---",
            "...",
            "? x",
            "|",
            ">",
        ] {
            let q = quote(s);
            assert!(!q.contains('$'), "{q}");
            assert_eq!(back(&q), Ok(Value::String(s.to_owned())), "{s:?} as {q}");
        }
    }

    #[test]
    fn layout_is_block_style_and_stable() {
        let v = back("b: {x: [1, {c: d, e: [f]}], y: {}}\na: [[1, 2], []]\n'$k': !t$ 1.0\n? [1]\n: 2\n")
            .unwrap_or(Value::Null);
        let want = "b:\n  x:\n    - 1\n    - c: \"d\"\n      e:\n        - \"f\"\n  \"y\": {}\na:\n  -\n    - 1\n    - 2\n  - []\n\"\\x24k\": !t%24 1.0\n? [1]\n: 2\n";
        assert_eq!(render_value(&v), want);
        assert_eq!(back(want), Ok(v));
    }

    #[test]
    fn json_keeps_odd_keys_and_lists_unknown_ones() {
        let v = back("a: {1: x, [2]: y, k: .nan, t: !z 1}\n").unwrap_or(Value::Null);
        assert_eq!(
            render_json(&v, vec!["a".into()]),
            serde_json::json!({"a": {"1": "x", "[2]": "y", "k": ".nan", "t": {"!z": 1}}, "unknown_keys": ["a"]})
        );
    }

    #[test]
    fn tags_round_trip_with_odd_names() {
        for tag in ["!t", "!a$b", "!x y", "!é", "!a,b[c]{d}", "!%"] {
            let v = Value::Tagged(Box::new(serde_norway::value::TaggedValue {
                tag: serde_norway::value::Tag::new(tag),
                value: Value::String("v".into()),
            }));
            let doc = Value::Mapping([(Value::String("k".into()), v)].into_iter().collect());
            let yaml = render_value(&doc);
            assert!(!yaml.contains('$'), "{yaml}");
            assert_eq!(back(&yaml), Ok(doc), "{yaml}");
        }
    }

    #[test]
    fn scalars_at_the_top_level() {
        assert_eq!(render_value(&Value::Null), "null\n");
        assert_eq!(render_value(&Value::Mapping(Mapping::new())), "{}\n");
    }

    mod properties {
        use crate::arb::config;
        use crate::model::LiteFsConfig;
        use crate::parse::{from_yaml, parse_str};
        use proptest::prelude::*;

        fn hostile(_: &str) -> Option<String> {
            Some("CHANGED\"'\n".to_owned())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Any model, valid or not, survives render → YAML parse.
            #[test]
            fn any_config_round_trips(c in config(false)) {
                let yaml = c.to_yaml();
                prop_assert!(!yaml.contains('$'));
                let back = from_yaml(&yaml, "r").map_err(|e| format!("{e}\n{yaml}"));
                prop_assert_eq!(back.as_ref(), Ok(&c), "{}", yaml);
                prop_assert_eq!(back.map(|b| b.to_yaml()), Ok(yaml.clone()));
                prop_assert_eq!(c.clone().to_yaml(), yaml);
            }

            /// Valid configs pass the full pipeline back, with env expansion
            /// on (even with every variable set to junk) or off.
            #[test]
            fn valid_config_round_trips_through_parse_str(c in config(true)) {
                let yaml = c.to_yaml();
                let on = parse_str(&yaml, "r", Some(&hostile)).map_err(|e| format!("{e}\n{yaml}"));
                prop_assert_eq!(on.as_ref(), Ok(&c));
                let off = parse_str(&yaml, "r", None).map_err(|e| e.to_string());
                prop_assert_eq!(off.as_ref(), Ok(&c));
            }

            #[test]
            fn json_always_lists_unknown_keys(c in config(false)) {
                let json = c.to_json();
                let listed = json.get("unknown_keys").cloned();
                prop_assert_eq!(listed, Some(serde_json::json!(c.unknown_keys())));
            }
        }

        #[test]
        fn default_config_renders_as_empty_mapping() {
            assert_eq!(LiteFsConfig::default().to_yaml(), "{}\n");
        }
    }
}
