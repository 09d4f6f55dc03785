//! SQL functions: `litefs_is_primary()`, `litefs_primary()`,
//! `litefs_config([format])`, `litefs_guard_stats()`, and the replication
//! position: `litefs_txid([schema])`, `litefs_position([schema])`,
//! `litefs_lag_ms()`, `litefs_wait_txid(txid_or_position, timeout_ms)`. All
//! DIRECTONLY, so triggers and views from an untrusted schema cannot call
//! them; none takes a path (a schema name is looked up on the connection),
//! and none can change what the guard does.

use crate::connection::ConnState;
use crate::error::{check, Error};
use crate::litefs_files::{self, Unreadable};
use crate::location::Located;
use crate::position::{Lag, Position};
use crate::role::{self, Role};
use crate::sqlite_api::api;
use libsqlite3_sys as ffi;
use std::ffi::{c_int, c_void, CStr, CString};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Body = fn(&ConnState, &[Arg]) -> Result<Value, Error>;

/// An argument, as far as these functions care.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Other(&'static str),
}

impl Arg {
    /// What kind of value the argument is, as an error message names it.
    fn kind(&self) -> &'static str {
        match self {
            Arg::Null => "NULL",
            Arg::Int(_) => "an integer",
            Arg::Real(_) => "a real",
            Arg::Text(_) => "text",
            Arg::Other(kind) => kind,
        }
    }

    /// The argument (its value, text cut short) as an error message names it.
    fn described(&self) -> String {
        match self {
            Arg::Null => "NULL".into(),
            Arg::Int(i) => format!("the integer {i}"),
            Arg::Real(r) => format!("the real {r:?}"),
            Arg::Text(t) => format!("the text {}", shown(t)),
            Arg::Other(kind) => kind.to_string(),
        }
    }
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
    (c"litefs_txid", "litefs_txid", txid),
    (c"litefs_position", "litefs_position", position),
    (c"litefs_lag_ms", "litefs_lag_ms", lag_ms),
    (c"litefs_wait_txid", "litefs_wait_txid", wait_txid),
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
        Ok(Err(e)) => error(ctx, &e.to_string(), e.code()),
        Err(_) => error(ctx, &Error::Internal.message(), ffi::SQLITE_ERROR),
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
            ffi::SQLITE_INTEGER => Arg::Int((api().value_int64)(v)),
            ffi::SQLITE_FLOAT => Arg::Real((api().value_double)(v)),
            _ => Arg::Other("a blob"),
        }
    }
}

fn result(ctx: *mut ffi::sqlite3_context, v: Value) {
    // SAFETY: valid context; text is copied by SQLite (SQLITE_TRANSIENT).
    unsafe {
        match v {
            Value::Null => (api().result_null)(ctx),
            Value::Int(i) => (api().result_int64)(ctx, i),
            Value::Text(t) => {
                let c = CString::new(t.replace('\0', "")).unwrap_or_default();
                (api().result_text)(ctx, c.as_ptr(), -1, ffi::SQLITE_TRANSIENT())
            }
        }
    }
}

fn error(ctx: *mut ffi::sqlite3_context, msg: &str, code: c_int) {
    let c = CString::new(msg.replace('\0', "")).unwrap_or_default();
    // SAFETY: valid context; SQLite copies the message.
    unsafe { (api().result_error)(ctx, c.as_ptr(), -1) }
    if code != ffi::SQLITE_ERROR {
        // SAFETY: valid context; keeps the message set just above.
        unsafe { (api().result_error_code)(ctx, code) }
    }
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
        [a @ (Arg::Int(_) | Arg::Real(_) | Arg::Other(_))] => {
            return Err(Error::BadArgument {
                name: "litefs_config",
                message: format!("the format must be text ('json' or 'yaml'), got {}", a.kind()),
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
        // The last read of main refused by PRAGMA litefs_min_txid or
        // litefs_max_lag_ms on this connection (SQLite itself only says
        // "database table is locked").
        "last_refusal": state.main_last_refusal(),
        "vfs": state.main_is_gated(),
        "immediate": s.immediate,
        "keep_wal": s.keep_wal,
        "forward": s.forward,
        "halt_timeout_ms": s.halt_timeout_ms,
        // This connection's PRAGMA litefs_forward, and the TXID its last
        // forwarded write produced (its read floor). TODO: feed it to the
        // litefs_min_txid floor once that lands.
        "forwarding": state.main_forwarding(),
        "forwarded_txid": state.main_forwarded_txid(),
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
        serde_json::json!({
            "primary_lookups": role::marker_lookups(),
            "position_reads": litefs_files::reads().0,
            "lag_reads": litefs_files::reads().1,
        })
        .to_string(),
    ))
}

/// The schema a position function is asked about: none or NULL is `main`.
fn schema_arg<'a>(name: &'static str, args: &'a [Arg]) -> Result<&'a str, Error> {
    match args {
        [] | [Arg::Null] => Ok("main"),
        [Arg::Text(t)] => Ok(t),
        [a] => Err(Error::BadArgument {
            name,
            message: format!(
                "the schema must be text ('main' or an ATTACH name), got {}",
                a.described()
            ),
        }),
        _ => Err(Error::Arity {
            name,
            expected: "at most one argument (a schema name)",
            got: args.len() as i32,
        }),
    }
}

/// The mount and database behind a schema name of this connection; never
/// a path from SQL.
fn located(state: &ConnState, name: &'static str, schema: &str) -> Result<Located, Error> {
    let unknown = || Error::UnknownSchema {
        name,
        schema: shown(schema),
    };
    let not_in_mount = |why: String| Error::NotInMount {
        name,
        schema: shown(schema),
        why,
    };
    // Known to SQLite only once used, and never in a mount.
    if schema.eq_ignore_ascii_case("temp") {
        return Err(not_in_mount("is in memory or temporary".into()));
    }
    let c = CString::new(schema).map_err(|_| unknown())?;
    if !state.has_schema(&c) {
        return Err(unknown());
    }
    let path = state
        .schema_path(&c)
        .ok_or_else(|| not_in_mount("is in memory or temporary".into()))?;
    state
        .mount_for(&path)
        .ok_or_else(|| not_in_mount(format!("({}) is outside every LiteFS mount", path.display())))
}

fn file_error(name: &'static str) -> impl Fn(Unreadable) -> Error {
    move |u| Error::LiteFsFile {
        name,
        path: u.path,
        why: u.why,
    }
}

fn read_position(name: &'static str, l: &Located) -> Result<Position, Error> {
    litefs_files::position(l).map_err(file_error(name))
}

fn txid(state: &ConnState, args: &[Arg]) -> Result<Value, Error> {
    const NAME: &str = "litefs_txid";
    let l = located(state, NAME, schema_arg(NAME, args)?)?;
    let p = read_position(NAME, &l)?;
    match i64::try_from(p.txid) {
        Ok(t) => Ok(Value::Int(t)),
        Err(_) => Err(Error::LiteFsFile {
            name: NAME,
            path: litefs_files::pos_path(&l),
            why: format!(
                "its TXID {} is larger than an SQL INTEGER holds; use litefs_position()",
                p.txid
            ),
        }),
    }
}

fn position(state: &ConnState, args: &[Arg]) -> Result<Value, Error> {
    const NAME: &str = "litefs_position";
    let l = located(state, NAME, schema_arg(NAME, args)?)?;
    Ok(Value::Text(read_position(NAME, &l)?.to_string()))
}

fn lag_ms(state: &ConnState, args: &[Arg]) -> Result<Value, Error> {
    const NAME: &str = "litefs_lag_ms";
    no_args(NAME, args)?;
    let (mount, _) = target(state)?;
    Ok(match litefs_files::lag(&mount).map_err(file_error(NAME))? {
        Lag::Millis(ms) => Value::Int(ms),
        Lag::NeverCaughtUp => Value::Null,
    })
}

/// The longest wait `litefs_wait_txid` accepts, in ms.
const MAX_WAIT_MS: i64 = 60_000;
/// Polling starts this often and backs off to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(1);
const LONGEST_PAUSE: Duration = Duration::from_millis(16);

/// `litefs_wait_txid(txid_or_position, timeout_ms)`: 1 once main's local
/// TXID reaches the one given, 0 when the timeout passes first.
fn wait_txid(state: &ConnState, args: &[Arg]) -> Result<Value, Error> {
    const NAME: &str = "litefs_wait_txid";
    let bad = |message: String| Error::BadArgument { name: NAME, message };
    let [want, timeout] = args else {
        return Err(Error::Arity {
            name: NAME,
            expected: "two arguments (a TXID or a position from litefs_position(), and a timeout in ms)",
            got: args.len() as i32,
        });
    };
    let want = match want {
        Arg::Int(i) if *i >= 0 => *i as u64,
        Arg::Text(t) => match Position::parse(t) {
            Some(p) => p.txid,
            None => {
                return Err(bad(format!(
                    "{} is not a position; pass TXID/CHECKSUM as litefs_position() returns it \
                     (16 hex digits each) or an INTEGER TXID",
                    shown(t)
                )))
            }
        },
        a => {
            return Err(bad(format!(
                "the TXID must be an INTEGER from 0 up or a position from litefs_position(), got {}",
                a.described()
            )))
        }
    };
    let timeout = match timeout {
        Arg::Int(ms) if (0..=MAX_WAIT_MS).contains(ms) => Duration::from_millis(*ms as u64),
        a => {
            return Err(bad(format!(
                "the timeout must be an INTEGER from 0 to {MAX_WAIT_MS} (ms), got {}",
                a.described()
            )))
        }
    };
    let l = located(state, NAME, "main")?;
    refuse_inside_a_transaction(state)?;
    let deadline = Instant::now() + timeout;
    let mut pause = FIRST_PAUSE;
    loop {
        if read_position(NAME, &l)?.txid >= want {
            return Ok(Value::Int(1));
        }
        if interrupted(state) {
            return Err(Error::WaitInterrupted);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Value::Int(0));
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// A read lock held on main would keep replication from ever reaching the
/// TXID on a replica: refused. SQLite before 3.34 cannot say whether a
/// transaction holds a read lock, so there any open transaction is refused.
fn refuse_inside_a_transaction(state: &ConnState) -> Result<(), Error> {
    match api().txn_state {
        Some(txn_state) => {
            // SAFETY: valid connection and schema name.
            let s = unsafe { txn_state(state.db(), c"main".as_ptr()) };
            if s > ffi::SQLITE_TXN_NONE {
                return Err(Error::WaitInTransaction("holds a read lock on main"));
            }
        }
        None => {
            // SAFETY: valid connection.
            if unsafe { (api().get_autocommit)(state.db()) } == 0 {
                return Err(Error::WaitInTransaction(
                    "may hold a read lock on main (SQLite before 3.34 cannot tell, so every open transaction is refused)",
                ));
            }
        }
    }
    Ok(())
}

/// Whether sqlite3_interrupt() was called on the connection. SQLite before
/// 3.41 cannot say: there a wait ends only at its timeout.
fn interrupted(state: &ConnState) -> bool {
    match api().is_interrupted {
        // SAFETY: valid connection.
        Some(f) => unsafe { f(state.db()) != 0 },
        None => false,
    }
}
