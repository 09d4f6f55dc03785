//! The WAL rule: guarded databases stay in WAL. On a live LiteFS cluster,
//! `PRAGMA journal_mode=DELETE` on the primary crashed the replica (see the
//! README); this protects the cluster, it is not a preference. And they stay
//! in normal locking mode: with `locking_mode=EXCLUSIVE` SQLite stops asking
//! for the locks the execution-time gate lives in.

use crate::settings;

/// The message for a `PRAGMA journal_mode=X` that must be refused, if any.
pub fn check_pragma(name: Option<&str>, value: Option<&str>) -> Option<String> {
    let keep = settings::loaded().is_none_or(|s| s.keep_wal);
    refusal(keep, name?, value?)
}

fn refusal(keep_wal: bool, name: &str, value: &str) -> Option<String> {
    if name.eq_ignore_ascii_case("locking_mode") && value.trim().eq_ignore_ascii_case("exclusive") {
        return Some(
            "litefs_guard: locking_mode=EXCLUSIVE refused: with it SQLite stops taking the locks \
             where the guard checks this node may write"
                .into(),
        );
    }
    if !keep_wal || !name.eq_ignore_ascii_case("journal_mode") || value.trim().eq_ignore_ascii_case("wal") {
        return None;
    }
    Some(format!(
        "litefs_guard: journal_mode={value} refused: databases on LiteFS stay in WAL \
         (leaving WAL on a live cluster crashed replicas); set LITEFS_GUARD_WAL=0 only for \
         a cluster that never used WAL"
    ))
}

#[cfg(test)]
mod tests {
    use super::refusal;

    #[test]
    fn only_leaving_wal_is_refused() {
        assert!(refusal(true, "journal_mode", "DELETE")
            .unwrap()
            .contains("journal_mode=DELETE refused"));
        assert!(refusal(true, "JOURNAL_MODE", "memory").is_some());
        assert!(refusal(true, "journal_mode", "off").is_some());
        assert_eq!(refusal(true, "journal_mode", "wal"), None);
        assert_eq!(refusal(true, "journal_mode", "WAL"), None);
        assert_eq!(refusal(true, "user_version", "3"), None);
        assert_eq!(refusal(false, "journal_mode", "delete"), None);
        assert!(refusal(false, "locking_mode", "EXCLUSIVE")
            .unwrap()
            .contains("locking_mode=EXCLUSIVE refused"));
        assert_eq!(refusal(true, "locking_mode", "normal"), None);
    }
}
