//! Booleans as LiteFS's YAML library (go-yaml v3) reads them into a typed
//! bool: `true`/`false` (any YAML 1.2 spelling), plus the YAML 1.1 words
//! `yes`/`no`/`on`/`off`/`y`/`n` for compatibility. A quoted `"true"` is a
//! string to go-yaml and is refused there, so it is refused here too.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// For `Option<bool>` fields: `#[serde(default, deserialize_with = "gobool::opt")]`.
pub(crate) fn opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    d.deserialize_any(GoBool)
}

struct GoBool;

impl Visitor<'_> for GoBool {
    type Value = Option<bool>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("true or false")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match v {
            "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Ok(Some(true)),
            "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Ok(Some(false)),
            _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "super::opt")]
        b: Option<bool>,
    }

    fn b(yaml: &str) -> Result<Option<bool>, String> {
        serde_norway::from_str::<T>(yaml)
            .map(|t| t.b)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_go_yaml_spellings() {
        for (y, want) in [
            ("b: true", Some(true)),
            ("b: False", Some(false)),
            ("b: TRUE", Some(true)),
            ("b: yes", Some(true)),
            ("b: off", Some(false)),
            ("b: \"on\"", Some(true)),
            ("b: ~", None),
            ("b:", None),
            ("{}", None),
        ] {
            assert_eq!(b(y), Ok(want), "{y}");
        }
    }

    #[test]
    fn refuses_other_values_with_location() {
        assert_eq!(
            b("b: maybe"),
            Err("b: invalid value: string \"maybe\", expected true or false at line 1 column 4".into())
        );
        assert_eq!(
            b("b: \"true\""),
            Err("b: invalid value: string \"true\", expected true or false at line 1 column 4".into())
        );
        assert_eq!(
            b("b: 1"),
            Err("b: invalid type: integer `1`, expected true or false at line 1 column 4".into())
        );
    }
}
