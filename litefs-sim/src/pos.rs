//! Text of the virtual files, and the per-database TXID counter behind
//! `NAME-pos`.
//!
//! The sim does not replicate, so the TXID is a commit counter: it goes up
//! when the holder commits (a WAL commit frame, or deleting/truncating the
//! rollback journal). The checksum is a hash chain over TXIDs, not a page
//! checksum like LiteFS's.

use std::collections::HashMap;
use std::sync::Mutex;

/// `TXID/CHECKSUM\n`, both 16 hex digits (34 bytes).
pub fn pos_text(txid: u64, checksum: u64) -> String {
    format!("{txid:016x}/{checksum:016x}\n")
}

/// LiteFS's `%+010d\n`; the largest i32 while no primary is known.
pub fn lag_text(lag_ms: Option<i64>) -> String {
    format!("{:+010}\n", lag_ms.unwrap_or(i32::MAX as i64))
}

/// `.primary` content: the holder's hostname and a newline.
pub fn primary_text(hostname: &str) -> String {
    format!("{hostname}\n")
}

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser: a cheap, well-spread fake checksum.
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[derive(Debug, Default)]
pub struct Positions {
    inner: Mutex<HashMap<String, (u64, u64)>>,
}

impl Positions {
    pub fn new() -> Positions {
        Positions::default()
    }

    pub fn get(&self, db: &str) -> (u64, u64) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.get(db).copied().unwrap_or((0, 0))
    }

    /// Every database's position now (what a held node keeps showing).
    pub fn snapshot(&self) -> HashMap<String, (u64, u64)> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// One more committed transaction on `db`.
    pub fn bump(&self, db: &str) -> (u64, u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let e = inner.entry(db.to_string()).or_insert((0, 0));
        e.0 += 1;
        e.1 = mix(e.1 ^ e.0);
        *e
    }
}

/// Does this write to a `-wal` file carry a commit frame header?
/// SQLite writes each 24-byte frame header on its own; bytes 4..8 hold the
/// database size after commit, non-zero only on a transaction's last frame.
pub fn is_wal_commit(offset: u64, data: &[u8]) -> bool {
    offset >= 32 && data.len() == 24 && data[4..8] != [0, 0, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_litefs() {
        assert_eq!(
            pos_text(0x27, 0x83b05248774ce767),
            "0000000000000027/83b05248774ce767\n"
        );
        assert_eq!(pos_text(1, 2).len(), 34);
        assert_eq!(lag_text(Some(0)), "+000000000\n");
        assert_eq!(lag_text(Some(12)), "+000000012\n");
        assert_eq!(lag_text(None), "+2147483647\n");
        assert_eq!(primary_text("n1"), "n1\n");
    }

    #[test]
    fn txid_counts_commits() {
        let p = Positions::new();
        assert_eq!(p.get("a"), (0, 0));
        let (t1, c1) = p.bump("a");
        let (t2, c2) = p.bump("a");
        assert_eq!((t1, t2), (1, 2));
        assert_ne!(c1, c2);
        assert_eq!(p.get("b"), (0, 0));
        let mut hdr = [0u8; 24];
        assert!(!is_wal_commit(32, &hdr));
        hdr[7] = 3;
        assert!(is_wal_commit(32, &hdr));
        assert!(!is_wal_commit(0, &hdr));
    }
}
