//! Go `time.Duration` strings (`10s`, `1m30s`, `250ms`, `1.5h`), as LiteFS
//! reads them with `time.ParseDuration`.
//!
//! The value keeps the text it was written with, so a config renders back
//! exactly as the user wrote it; equality compares the nanoseconds only
//! (`"90s" == "1m30s"`).

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::hash::{Hash, Hasher};

const NS: u64 = 1;
const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;
const MIN: u64 = 60 * SEC;
const HOUR: u64 = 60 * MIN;

/// Magnitude limit: Go durations are i64 nanoseconds.
const NEG_LIMIT: u64 = 1 << 63;

#[derive(Clone, Debug)]
pub struct GoDuration {
    nanos: i64,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("unexpected {0:?}; a Go duration is numbers with units, e.g. \"10s\", \"1m30s\", \"250ms\"")]
    Syntax(String),
    #[error("missing unit after {0:?}; add one of ns, us, ms, s, m, h (e.g. \"10s\")")]
    MissingUnit(String),
    #[error("unknown unit {0:?}; use ns, us (or µs), ms, s, m or h")]
    UnknownUnit(String),
    #[error("out of range; Go durations are at most about 292 years (2562047h)")]
    Overflow,
}

impl GoDuration {
    /// Parses Go syntax: an optional sign, then one or more `<number><unit>`
    /// groups, where a number may have a fraction; `"0"` alone needs no unit.
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let nanos = parse_nanos(text)?;
        Ok(GoDuration {
            nanos,
            text: text.to_owned(),
        })
    }

    /// A duration written the way Go's `Duration.String()` writes it.
    pub fn from_nanos(nanos: i64) -> Self {
        GoDuration {
            nanos,
            text: go_format(nanos),
        }
    }

    pub fn as_nanos(&self) -> i64 {
        self.nanos
    }

    /// The text as written in the file (or Go's rendering for `from_nanos`).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// None for negative durations.
    pub fn to_std(&self) -> Option<std::time::Duration> {
        u64::try_from(self.nanos)
            .ok()
            .map(std::time::Duration::from_nanos)
    }
}

impl PartialEq for GoDuration {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}
impl Eq for GoDuration {}
impl Hash for GoDuration {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.nanos.hash(state);
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for GoDuration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GoDuration::parse(s)
    }
}

fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => NS,
        // U+00B5 (micro sign) and U+03BC (Greek mu), as Go accepts both.
        "us" | "\u{b5}s" | "\u{3bc}s" => US,
        "ms" => MS,
        "s" => SEC,
        "m" => MIN,
        "h" => HOUR,
        _ => return None,
    })
}

fn parse_nanos(text: &str) -> Result<i64, DurationError> {
    let (neg, mut s) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        Some(_) => (false, text),
        None => return Err(DurationError::Empty),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(DurationError::Syntax(text.to_owned()));
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        let group_start = s;
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let mut whole: u64 = 0;
        for b in s[..int_len].bytes() {
            whole = whole
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(b - b'0')))
                .filter(|v| *v <= NEG_LIMIT)
                .ok_or(DurationError::Overflow)?;
        }
        s = &s[int_len..];
        // Fraction digits past u64 precision are dropped, as Go does.
        let (mut frac, mut scale, mut frac_len) = (0u64, 1u64, 0usize);
        if let Some(rest) = s.strip_prefix('.') {
            s = rest;
            frac_len = s.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflowed = false;
            for b in s[..frac_len].bytes() {
                if overflowed {
                    continue;
                }
                match frac
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(b - b'0')))
                    .zip(scale.checked_mul(10))
                {
                    Some((f, sc)) => (frac, scale) = (f, sc),
                    None => overflowed = true,
                }
            }
            s = &s[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(DurationError::Syntax(group_start.to_owned()));
        }
        let unit_len = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        if unit.is_empty() {
            return Err(DurationError::MissingUnit(text.to_owned()));
        }
        let per = unit_nanos(unit).ok_or_else(|| DurationError::UnknownUnit(unit.to_owned()))?;
        let frac_nanos = u64::try_from(u128::from(frac) * u128::from(per) / u128::from(scale))
            .map_err(|_| DurationError::Overflow)?;
        total = whole
            .checked_mul(per)
            .and_then(|v| v.checked_add(frac_nanos))
            .and_then(|v| v.checked_add(total))
            .filter(|v| *v <= NEG_LIMIT)
            .ok_or(DurationError::Overflow)?;
    }
    if neg {
        // -(1<<63) is representable; anything smaller was refused above.
        Ok(0i64.wrapping_sub_unsigned(total))
    } else {
        i64::try_from(total).map_err(|_| DurationError::Overflow)
    }
}

/// Go's `Duration.String()`: `1h0m0s`, `1m30s`, `1.5s`, `250ms`, `1.5µs`, `0s`.
fn go_format(nanos: i64) -> String {
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < SEC {
        if u == 0 {
            return "0s".to_owned();
        }
        let (unit, per) = if u < US {
            ("ns", NS)
        } else if u < MS {
            ("\u{b5}s", US)
        } else {
            ("ms", MS)
        };
        out.push_str(&with_fraction(u / per, u % per, per));
        out.push_str(unit);
    } else {
        let secs = u / SEC;
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&with_fraction(s, u % SEC, SEC));
        out.push('s');
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// `whole.frac` with trailing zeros of the fraction dropped.
fn with_fraction(whole: u64, frac: u64, per: u64) -> String {
    if frac == 0 {
        return whole.to_string();
    }
    let width = per.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = GoDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Go duration string such as \"10s\", \"1m30s\" or \"250ms\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GoDuration, E> {
                GoDuration::parse(v).map_err(|e| E::custom(format_args!("invalid Go duration {v:?}: {e}")))
            }
        }
        // Asking for a string makes serde_norway hand over `10` as "10", which
        // then fails with "missing unit" instead of a vaguer type error.
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ns(s: &str) -> i64 {
        match GoDuration::parse(s) {
            Ok(d) => d.as_nanos(),
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    #[test]
    fn parses_go_examples() {
        assert_eq!(ns("10s"), 10 * SEC as i64);
        assert_eq!(ns("1m30s"), 90 * SEC as i64);
        assert_eq!(ns("250ms"), 250 * MS as i64);
        assert_eq!(ns("1h"), HOUR as i64);
        assert_eq!(ns("1.5s"), 1_500 * MS as i64);
        assert_eq!(ns(".5s"), 500 * MS as i64);
        assert_eq!(ns("1.s"), SEC as i64);
        assert_eq!(ns("0"), 0);
        assert_eq!(ns("-0"), 0);
        assert_eq!(ns("+5m"), 5 * MIN as i64);
        assert_eq!(ns("-1.5h"), -((90 * MIN) as i64));
        assert_eq!(
            ns("1h2m3s4ms5us6ns"),
            (HOUR + 2 * MIN + 3 * SEC + 4 * MS + 5 * US + 6) as i64
        );
        assert_eq!(ns("3\u{b5}s"), 3000);
        assert_eq!(ns("3\u{3bc}s"), 3000);
        assert_eq!(ns("9223372036854775807ns"), i64::MAX);
        assert_eq!(ns("-9223372036854775808ns"), i64::MIN);
        // Fraction digits beyond u64 precision are ignored, not an error.
        assert_eq!(ns("1.000000000000000000000000001s"), SEC as i64);
    }

    #[test]
    fn rejects_what_go_rejects() {
        let err = |s: &str| GoDuration::parse(s).err().map(|e| e.to_string());
        assert_eq!(err(""), Some("empty duration".into()));
        assert_eq!(
            err("10"),
            Some("missing unit after \"10\"; add one of ns, us, ms, s, m, h (e.g. \"10s\")".into())
        );
        assert_eq!(
            err("1d"),
            Some("unknown unit \"d\"; use ns, us (or µs), ms, s, m or h".into())
        );
        assert!(matches!(GoDuration::parse("-"), Err(DurationError::Syntax(_))));
        assert!(matches!(GoDuration::parse("."), Err(DurationError::Syntax(_))));
        assert!(matches!(GoDuration::parse("s"), Err(DurationError::Syntax(_))));
        assert!(matches!(GoDuration::parse(" 1s"), Err(DurationError::Syntax(_))));
        assert!(matches!(
            GoDuration::parse("1s "),
            Err(DurationError::UnknownUnit(_))
        ));
        assert!(matches!(
            GoDuration::parse("1S"),
            Err(DurationError::UnknownUnit(_))
        ));
        assert_eq!(
            GoDuration::parse("9223372036854775808ns"),
            Err(DurationError::Overflow)
        );
        assert_eq!(GoDuration::parse("2562048h"), Err(DurationError::Overflow));
        assert_eq!(
            GoDuration::parse("99999999999999999999999s"),
            Err(DurationError::Overflow)
        );
    }

    #[test]
    fn keeps_the_written_text() {
        for s in ["10s", "1m30s", "250ms", "1h", "1.5s", "90s", "-1s", "0", "+2m"] {
            assert_eq!(GoDuration::parse(s).map(|d| d.to_string()), Ok(s.to_owned()));
        }
        assert_eq!(GoDuration::parse("90s"), GoDuration::parse("1m30s"));
    }

    #[test]
    fn formats_like_go() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (250 * MS as i64, "250ms"),
            (1_500 * MS as i64, "1.5s"),
            (90 * SEC as i64, "1m30s"),
            (HOUR as i64, "1h0m0s"),
            (-(HOUR as i64) - 1, "-1h0m0.000000001s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for (n, s) in cases {
            assert_eq!(GoDuration::from_nanos(n).as_str(), s);
        }
    }

    #[test]
    fn std_conversion_refuses_negative() {
        assert_eq!(GoDuration::from_nanos(-1).to_std(), None);
        assert_eq!(
            GoDuration::from_nanos(5).to_std(),
            Some(std::time::Duration::from_nanos(5))
        );
    }

    proptest! {
        #[test]
        fn go_format_parses_back(n in any::<i64>()) {
            let d = GoDuration::from_nanos(n);
            prop_assert_eq!(GoDuration::parse(d.as_str()).map(|p| p.as_nanos()), Ok(n));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,24}") {
            let _ = GoDuration::parse(&s);
        }
    }
}
