//! SQL functions: `litefs_is_primary()`, `litefs_primary()`,
//! `litefs_config([format])`, `litefs_guard_stats()`. All DIRECTONLY, so
//! triggers and views from an untrusted schema cannot call them; none takes
//! a path, and none can change what the guard does.

use crate::connection::ConnState;
use crate::error::{check, Error};
use crate::role::{self, Role};
use crate::sqlite_api::api;
use libsqlite3_sys as ffi;
use std::ffi::{c_int, c_void, CStr, CString};
use std::path::PathBuf;
use std::sync::Arc;

type Body = fn(&ConnState, &[Arg]) -> Result<Value, Error>;

/// An argument, as far as these functions care.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Null,
    Text(String),
    Other(&'static str),
}

/// A result.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

/// Name, and the body that answers it.
const FUNCTIONS: &[(&CStr, &str, Body)] = &[
    (c"litefs_is_primary", "litefs_is_primary", is_primary),
    (c"litefs_primary", "litefs_primary", primary),
    (c"litefs_config", "litefs_config", config),
    (c"litefs_guard_stats", "litefs_guard_stats", stats),
];

/// Registers the functions; each holds the connection state, which is freed
/// when SQLite drops the last of them (at close).
pub fn register(db: *mut ffi::sqlite3, state: Arc<ConnState>) -> Result<(), Error> {
    for (i, (cname, _, _)) in FUNCTIONS.iter().enumerate() {
        let data = Box::into_raw(Box::new(Entry {
            index: i,
            state: state.clone(),
        }));
        // SAFETY: valid connection; `data` is freed by `destroy` (SQLite calls
        // it on failure too).
        let rc = unsafe {
            (api().create_function_v2)(
                db,
                cname.as_ptr(),
                -1,
                ffi::SQLITE_UTF8 | ffi::SQLITE_DIRECTONLY,
                data as *mut c_void,
                Some(call),
                None,
                None,
                Some(destroy),
            )
        };
        check(rc, &format!("registering {}", cname.to_string_lossy()))?;
    }
    Ok(())
}

struct Entry {
    index: usize,
    state: Arc<ConnState>,
}

unsafe extern "C" fn destroy(p: *mut c_void) {
    // SAFETY: `p` is the Box<Entry> made in `register`, dropped once here.
    let _ = std::panic::catch_unwind(|| drop(unsafe { Box::from_raw(p as *mut Entry) }));
}

unsafe extern "C" fn call(ctx: *mut ffi::sqlite3_context, argc: c_int, argv: *mut *mut ffi::sqlite3_value) {
    let r = std::panic::catch_unwind(|| {
        // SAFETY: user data is the Entry registered with this function.
        let entry = unsafe { &*((api().user_data)(ctx) as *const Entry) };
        let (_, _, body) = FUNCTIONS[entry.index];
        let args: Vec<Arg> = (0..argc.max(0) as usize)
            // SAFETY: argv has argc valid values.
            .map(|i| unsafe { read_arg(*argv.add(i)) })
            .collect();
        body(&entry.state, &args)
    });
    match r {
        Ok(Ok(v)) => result(ctx, v),
        // Function errors start with the function's name (see `error`).
        Ok(Err(e)) => error(ctx, &e.to_string()),
        Err(_) => error(ctx, &Error::Internal.message()),
    }
}

unsafe fn read_arg(v: *mut ffi::sqlite3_value) -> Arg {
    // SAFETY: `v` is a valid sqlite3_value for the duration of the call.
    unsafe {
        match (api().value_type)(v) {
            ffi::SQLITE_NULL => Arg::Null,
            ffi::SQLITE_TEXT => {
                let p = (api().value_text)(v);
                Arg::Text(if p.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(p as *const _).to_string_lossy().into_owned()
                })
            }
            ffi::SQLITE_INTEGER => Arg::Other("an integer"),
            ffi::SQLITE_FLOAT => Arg::Other("a real"),
            _ => Arg::Other("a blob"),
        }
    }
}

fn result(ctx: *mut ffi::sqlite3_context, v: Value) {
    // SAFETY: valid context; text is copied by SQLite (SQLITE_TRANSIENT).
    unsafe {
        match v {
            Value::Null => (api().result_null)(ctx),
            Value::Int(i) => (api().result_int)(ctx, i as c_int),
            Value::Text(t) => {
                let c = CString::new(t.replace('\0', "")).unwrap_or_default();
                (api().result_text)(ctx, c.as_ptr(), -1, ffi::SQLITE_TRANSIENT())
            }
        }
    }
}

fn error(ctx: *mut ffi::sqlite3_context, msg: &str) {
    let c = CString::new(msg.replace('\0', "")).unwrap_or_default();
    // SAFETY: valid context; SQLite copies the message.
    unsafe { (api().result_error)(ctx, c.as_ptr(), -1) }
}

fn lossy(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}

/// An argument echoed in an error message, cut to a readable length.
fn shown(t: &str) -> String {
    const MAX: usize = 40;
    match t.char_indices().nth(MAX) {
        Some((i, _)) => format!("{:?}… ({} bytes)", &t[..i], t.len()),
        None => format!("{t:?}"),
    }
}

fn no_args(name: &'static str, args: &[Arg]) -> Result<(), Error> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(Error::Arity {
            name,
            expected: "no arguments",
            got: args.len() as i32,
        })
    }
}

/// The mount and main database this connection's questions are about.
fn target(state: &ConnState) -> Result<(PathBuf, Option<PathBuf>), Error> {
    if let Some(p) = state.schema_path(c"main") {
        if let Some(l) = state.mount_for(&p) {
            return Ok((l.mount, Some(l.db)));
        }
    }
    match &state.settings().mount_dir {
        Some(m) => Ok((m.clone(), None)),
        None => Err(Error::NoMount),
    }
}

fn running_role(state: &ConnState) -> Result<Role, Error> {
    let (mount, db) = target(state)?;
    match state.role_for(&mount, db.as_deref()) {
        Role::NotRunning(why) => Err(Error::NotRunning(why)),
        r => Ok(r),
    }
}

fn is_primary(state: &ConnState, args: &[Arg]) -> Result<Value, Error> {
    no_args("litefs_is_primary", args)?;
    Ok(Value::Int(running_role(state)?.is_primary() as i64))
}

fn primary(state: &ConnState, args: &[Arg]) -> Result<Value, Error> {
    no_args("litefs_primary", args)?;
    Ok(match running_role(state)?.primary_host() {
        Some(h) => Value::Text(h.to_string()),
        None => Value::Null,
    })
}

fn config(state: &ConnState, args: &[Arg]) -> Result<Value, Error> {
    let format = match args {
        [] | [Arg::Null] => "json",
        [Arg::Text(t)] if t.eq_ignore_ascii_case("json") => "json",
        [Arg::Text(t)] if t.eq_ignore_ascii_case("yaml") => "yaml",
        [Arg::Text(t)] => {
            return Err(Error::BadArgument {
                name: "litefs_config",
                message: format!("unknown format {}; use 'json' (the default) or 'yaml'", shown(t)),
            })
        }
        [Arg::Other(kind)] => {
            return Err(Error::BadArgument {
                name: "litefs_config",
                message: format!("the format must be text ('json' or 'yaml'), got {kind}"),
            })
        }
        _ => {
            return Err(Error::Arity {
                name: "litefs_config",
                expected: "at most one argument",
                got: args.len() as i32,
            })
        }
    };
    let s = state.settings();
    if format == "yaml" {
        return match &s.config {
            // Secrets (Consul token, backup auth token) are blanked: any SQL client can ask.
            Some(c) => match &c.document.config {
                Some(model) => Ok(Value::Text(model.redacted().to_yaml())),
                // A value of the wrong type leaves no model to render.
                None => Err(Error::BadArgument {
                    name: "litefs_config",
                    message: format!(
                        "{} cannot be shown as YAML: {}; litefs_config() lists every problem under config_problems",
                        lossy(&c.path),
                        c.document.problems.first().map(ToString::to_string).unwrap_or_default()
                    ),
                }),
            },
            None => Err(Error::BadArgument {
                name: "litefs_config",
                message: "no litefs.yml was found (set LITEFS_GUARD_CONFIG, or put litefs.yml in ./, $HOME or /etc)".into(),
            }),
        };
    }
    let (mount, db, role) = match target(state) {
        Ok((m, db)) => {
            let r = state.role_for(&m, db.as_deref());
            (Some(m), db, Some(r))
        }
        Err(_) => (None, None, None),
    };
    // Whether the main database is inside a guarded mount (null: no file).
    let guarded = state.schema_path(c"main").map(|p| state.mount_for(&p).is_some());
    let j = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "guarded": guarded,
        // Paths need not be UTF-8; JSON text must be.
        "mount_dir": mount.as_deref().map(lossy),
        "mount_source": s.mount_source.as_str(),
        "database": db.as_deref().map(lossy),
        "marker": s.marker.as_str(),
        "config_file": s.config.as_ref().map(|c| lossy(&c.path)),
        "config_error": s.config_error,
        "role": role.as_ref().map(Role::name),
        "is_primary": role.as_ref().and_then(|r| (!matches!(r, Role::NotRunning(_))).then(|| r.is_primary())),
        "may_write": role.as_ref().map(Role::may_write),
        "primary": role.as_ref().and_then(|r| r.primary_host().map(str::to_string)),
        "halt_lock": matches!(role, Some(Role::Replica { halt_lock: true, .. })),
        "reason": role.as_ref().and_then(Role::refusal).map(|r| r.to_string()),
        "vfs": state.main_is_gated(),
        "immediate": s.immediate,
        "keep_wal": s.keep_wal,
        "require_fuse": s.require_fuse,
        // What LiteFS would refuse in the file; the guard loaded regardless.
        "config_problems": s.config.as_ref().map_or_else(Vec::new, |c| c.document.problems.iter().map(ToString::to_string).collect()),
        // Null too when a value of the wrong type left no model.
        "litefs": s.config.as_ref().and_then(|c| c.document.config.as_ref()).map(|m| m.redacted().to_json()),
    });
    Ok(Value::Text(j.to_string()))
}

fn stats(_state: &ConnState, args: &[Arg]) -> Result<Value, Error> {
    no_args("litefs_guard_stats", args)?;
    Ok(Value::Text(
        serde_json::json!({ "primary_lookups": role::marker_lookups() }).to_string(),
    ))
}
