//! The WAL rule: guarded databases stay in WAL. On a live LiteFS cluster,
//! `PRAGMA journal_mode=DELETE` on the primary crashed the replica (see the
//! README); this protects the cluster, it is not a preference. And they stay
//! in normal locking mode: with `locking_mode=EXCLUSIVE` SQLite stops asking
//! for the locks the execution-time gate lives in.

use crate::error::Error;

/// The refusal of a `PRAGMA name=value`, if it must be refused. `keep_wal`
/// is the connection's `LITEFS_GUARD_WAL` setting.
pub fn check_pragma(keep_wal: bool, name: Option<&str>, value: Option<&str>) -> Option<Error> {
    refusal(keep_wal, name?, value?)
}

fn refusal(keep_wal: bool, name: &str, value: &str) -> Option<Error> {
    if name.eq_ignore_ascii_case("locking_mode") && value.trim().eq_ignore_ascii_case("exclusive") {
        return Some(Error::ExclusiveLocking);
    }
    if !keep_wal || !name.eq_ignore_ascii_case("journal_mode") || value.trim().eq_ignore_ascii_case("wal") {
        return None;
    }
    Some(Error::LeavingWal(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::refusal;

    #[test]
    fn only_leaving_wal_is_refused() {
        assert!(refusal(true, "journal_mode", "DELETE")
            .unwrap()
            .message()
            .starts_with("litefs_guard: journal_mode=DELETE refused"));
        assert!(refusal(true, "JOURNAL_MODE", "memory").is_some());
        assert!(refusal(true, "journal_mode", "off").is_some());
        assert_eq!(refusal(true, "journal_mode", "wal"), None);
        assert_eq!(refusal(true, "journal_mode", "WAL"), None);
        assert_eq!(refusal(true, "user_version", "3"), None);
        assert_eq!(refusal(false, "journal_mode", "delete"), None);
        assert!(refusal(false, "locking_mode", "EXCLUSIVE")
            .unwrap()
            .message()
            .starts_with("litefs_guard: locking_mode=EXCLUSIVE refused"));
        assert_eq!(refusal(true, "locking_mode", "normal"), None);
    }
}
