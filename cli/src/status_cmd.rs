//! `litefs-guard status`.

use crate::exit;
use litefs_guard::status::{node_status, NodeRole, NodeStatus};
use std::path::Path;

pub fn run(db: Option<&Path>, json: bool) -> u8 {
    let st = match node_status(db) {
        Ok(st) => st,
        Err(e) => {
            eprintln!("litefs-guard: {e}");
            return exit::CONFIG;
        }
    };
    let code = match st.role {
        NodeRole::Primary => exit::PRIMARY,
        NodeRole::Replica => exit::REPLICA,
        NodeRole::NotRunning => exit::NOT_RUNNING,
        NodeRole::Outside => exit::OUTSIDE,
    };
    if json {
        println!("{}", to_json(&st, code));
    } else {
        print_text(&st);
    }
    code
}

fn lossy(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn to_json(st: &NodeStatus, code: u8) -> serde_json::Value {
    serde_json::json!({
        "role": st.role.as_str(),
        "exit_code": code,
        "primary": st.primary,
        "mount": st.mount.as_deref().map(lossy),
        "mount_source": st.mount_source,
        "database": st.database.as_deref().map(lossy),
        "guarded": st.role != NodeRole::Outside,
        "reason": st.reason,
        "halt_lock": st.halt_lock,
        "marker": st.marker,
        "require_fuse": st.require_fuse,
        "config_file": st.config_file.as_deref().map(lossy),
        "config_problems": st.config_problems,
        "position": st.position,
        "lag_ms": st.lag_ms,
        "version": env!("CARGO_PKG_VERSION"),
    })
}

fn print_text(st: &NodeStatus) {
    let primary = match (st.role, st.primary.as_deref()) {
        (_, Some(h)) => h.to_owned(),
        (NodeRole::Primary, None) => "this node".to_owned(),
        _ => "unknown".to_owned(),
    };
    let mut rows: Vec<(&str, String)> = vec![
        ("role", st.role.as_str().to_owned()),
        ("primary", primary),
        (
            "mount",
            match &st.mount {
                Some(m) => format!("{} (from {})", m.display(), st.mount_source),
                None => format!("none (from {})", st.mount_source),
            },
        ),
        (
            "database",
            st.database
                .as_deref()
                .map_or_else(|| "none given (--db)".to_owned(), |d| d.display().to_string()),
        ),
        (
            "position",
            st.position.clone().unwrap_or_else(|| "unknown".to_owned()),
        ),
        (
            "lag",
            st.lag_ms
                .map_or_else(|| "unknown".to_owned(), |ms| format!("{ms} ms")),
        ),
        ("marker", st.marker.to_owned()),
        ("require_fuse", st.require_fuse.to_string()),
        (
            "config",
            st.config_file
                .as_deref()
                .map_or_else(|| "none (no litefs.yml)".to_owned(), |c| c.display().to_string()),
        ),
    ];
    if let Some(r) = &st.reason {
        rows.insert(2, ("reason", r.clone()));
    }
    if st.halt_lock {
        rows.push(("halt_lock", "held".to_owned()));
    }
    for p in &st.config_problems {
        rows.push(("config_problem", p.clone()));
    }
    for (k, v) in rows {
        println!("{:<16}{v}", format!("{k}:"));
    }
}
