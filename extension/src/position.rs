//! LiteFS's replication position and lag, as text: what `NAME-pos` and
//! `.lag` hold, and what `litefs_position()` hands out. Pure: no files here
//! (see `litefs_files` for the reads).
//!
//! - `NAME-pos`: `TXID/CHECKSUM\n`, both 16 lowercase hex digits
//!   (`0000000000000027/83b05248774ce767`).
//! - `.lag`: milliseconds as `%+010d\n` (`+000000830`); `+2147483647` only
//!   before a replica first caught up.

use std::fmt;

/// Digits of each half of a position.
const HEX_DIGITS: usize = 16;
/// `.lag` before a replica's first catch-up.
const LAG_NEVER_CAUGHT_UP: i64 = i32::MAX as i64;

/// A replication position: the TXID of the last transaction applied and the
/// database checksum after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub txid: u64,
    pub checksum: u64,
}

impl fmt::Display for Position {
    /// As LiteFS writes it, without the newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}/{:016x}", self.txid, self.checksum)
    }
}

impl Position {
    /// A position as text: exactly `TXID/CHECKSUM`, 16 hex digits each
    /// (either case), nothing around it.
    pub fn parse(text: &str) -> Option<Position> {
        let (txid, checksum) = text.split_once('/')?;
        Some(Position {
            txid: hex16(txid)?,
            checksum: hex16(checksum)?,
        })
    }

    /// The content of a `NAME-pos` file: a position and one optional
    /// trailing newline.
    pub fn parse_file(content: &[u8]) -> Option<Position> {
        let content = content.strip_suffix(b"\n").unwrap_or(content);
        Position::parse(std::str::from_utf8(content).ok()?)
    }
}

/// Exactly 16 hex digits.
fn hex16(s: &str) -> Option<u64> {
    if s.len() != HEX_DIGITS || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// What `.lag` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lag {
    /// Milliseconds behind the primary (0 on the primary). LiteFS subtracts
    /// timestamps of two clocks, so a small negative value is possible and
    /// is passed on as it is.
    Millis(i64),
    /// The replica has not caught up once since it started.
    NeverCaughtUp,
}

/// The content of `.lag`: a sign, digits, one optional trailing newline.
/// Lenient about the width (`%+010d` pads to 9 digits, a longer number is
/// still a number) but not about anything else.
pub fn parse_lag(content: &[u8]) -> Option<Lag> {
    let content = content.strip_suffix(b"\n").unwrap_or(content);
    let (&sign, digits) = content.split_first()?;
    if !matches!(sign, b'+' | b'-')
        || digits.is_empty()
        || digits.len() > 18
        || !digits.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let n: i64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let n = if sign == b'-' { -n } else { n };
    Some(if n == LAG_NEVER_CAUGHT_UP {
        Lag::NeverCaughtUp
    } else {
        Lag::Millis(n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_as_litefs_writes_them() {
        let p = Position::parse_file(b"0000000000000027/83b05248774ce767\n").unwrap();
        assert_eq!(
            p,
            Position {
                txid: 0x27,
                checksum: 0x83b0_5248_774c_e767
            }
        );
        assert_eq!(p.to_string(), "0000000000000027/83b05248774ce767");
        assert_eq!(Position::parse(&p.to_string()), Some(p));
        // No newline is fine; upper case too.
        assert_eq!(
            Position::parse_file(b"0000000000000027/83B05248774CE767"),
            Some(p)
        );
        let max = Position {
            txid: u64::MAX,
            checksum: 0,
        };
        assert_eq!(Position::parse(&max.to_string()), Some(max));
    }

    #[test]
    fn anything_else_is_not_a_position() {
        for bad in [
            "",
            "27",
            "0000000000000027",
            "0000000000000027/",
            "/83b05248774ce767",
            "27/83b05248774ce767",
            "00000000000000027/83b05248774ce767",
            "0000000000000027/83b05248774ce7677",
            "000000000000002g/83b05248774ce767",
            " 0000000000000027/83b05248774ce767",
            "0000000000000027/83b05248774ce767\n",
            "0000000000000027/83b05248774ce767/0",
            "+000000000000027/83b05248774ce767",
            "0000000000000027\\83b05248774ce767",
        ] {
            assert_eq!(Position::parse(bad), None, "{bad:?}");
        }
        for bad in [
            &b"0000000000000027/83b05248774ce767\n\n"[..],
            b"0000000000000027/83b05248774ce767\r\n",
            b"\xff000000000000027/83b05248774ce767",
            b"",
            b"\n",
        ] {
            assert_eq!(Position::parse_file(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lag_as_litefs_writes_it() {
        assert_eq!(parse_lag(b"+000000830\n"), Some(Lag::Millis(830)));
        assert_eq!(parse_lag(b"+000000000\n"), Some(Lag::Millis(0)));
        assert_eq!(parse_lag(b"-000000012\n"), Some(Lag::Millis(-12)));
        assert_eq!(parse_lag(b"+000000830"), Some(Lag::Millis(830)));
        assert_eq!(parse_lag(b"+2147483647\n"), Some(Lag::NeverCaughtUp));
        assert_eq!(parse_lag(b"+2147483646\n"), Some(Lag::Millis(2_147_483_646)));
        assert_eq!(parse_lag(b"+99999999999\n"), Some(Lag::Millis(99_999_999_999)));
    }

    #[test]
    fn anything_else_is_not_a_lag() {
        for bad in [
            &b""[..],
            b"\n",
            b"+",
            b"830",
            b"+ 830",
            b"+000000830\n\n",
            b"+00000083x",
            b"++00000830",
            b"+1234567890123456789",
            b"+0000008.3",
        ] {
            assert_eq!(parse_lag(bad), None, "{bad:?}");
        }
    }
}
