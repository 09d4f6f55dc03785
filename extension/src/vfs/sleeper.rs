//! A main database file's seat in its line (`fairwait`, `line`), and whose
//! sleep is whose. xSleep is a VFS method with no file, so a file whose
//! write-lock request was just busy arms this thread, and the thread's next
//! xSleep (the busy handler's, within microseconds) is spent in that file's
//! line. The sleep holds an `Arc` of the seat and touches nothing else of
//! the file: a stray sleep on another thread, or after the file closed, is
//! harmless.

use super::fairwait::{Slept, Waiter};
use super::line::{self, RealLine};
use super::seams::Line;
use std::cell::RefCell;
use std::ffi::c_int;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How soon after a busy answer the busy handler's sleep must come to be
/// counted as its. It comes within microseconds, unless the thread was
/// preempted; a later sleep is some other one (an application's own
/// `sqlite3_sleep`), left to the base VFS.
const ARMED_FOR: Duration = Duration::from_millis(200);

thread_local! {
    static ARMED: RefCell<Option<(Arc<Seat>, Instant)>> = const { RefCell::new(None) };
}

/// One main database file's place in its line.
#[derive(Default)]
pub(super) struct Seat {
    waiter: Mutex<Waiter>,
    /// Joined on first use; None where there is no line to be had.
    line: OnceLock<Option<Arc<RealLine>>>,
    /// Mirrors of the waiter's flags, read without the lock on every
    /// write-lock request and every read transaction.
    sleeps_here: AtomicBool,
    turn: AtomicBool,
}

impl Seat {
    pub fn new() -> Arc<Seat> {
        Arc::new(Seat::default())
    }

    fn waiter(&self) -> MutexGuard<'_, Waiter> {
        self.waiter.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn line(&self) -> Option<&RealLine> {
        self.line.get().and_then(|l| l.as_deref())
    }

    /// The line of `db`, joined once.
    pub fn join(&self, db: &Path) {
        self.line.get_or_init(|| line::attach(db));
    }

    fn mirror(&self, w: &Waiter) {
        self.sleeps_here.store(w.sleeps_here, Ordering::Relaxed);
        self.turn.store(w.turn, Ordering::Relaxed);
    }

    pub fn stand_aside(&self) -> bool {
        if !self.sleeps_here.load(Ordering::Relaxed) {
            return false;
        }
        let Some(line) = self.line() else { return false };
        self.waiter().should_stand_aside(Some(line), Instant::now())
    }

    /// Arms this thread's next sleep for this seat.
    pub fn busy(self: &Arc<Self>) {
        if self.line().is_some() {
            ARMED.with(|a| *a.borrow_mut() = Some((self.clone(), Instant::now())));
        }
    }

    pub fn take_turn(&self) -> bool {
        if !self.turn.load(Ordering::Relaxed) {
            return false;
        }
        let mut w = self.waiter();
        let t = std::mem::take(&mut w.turn);
        self.mirror(&w);
        t
    }

    pub fn missed(&self) {
        let mut w = self.waiter();
        w.missed(self.line(), Instant::now());
        self.mirror(&w);
    }

    /// The file holds the base write lock: its wait (if any) is over.
    pub fn held(&self) {
        if let Some(line) = self.line() {
            line.hold();
            let mut w = self.waiter();
            w.done(Some(line));
            self.mirror(&w);
        }
    }

    pub fn released(&self) {
        if let Some(line) = self.line() {
            line.release();
        }
    }

    /// The file closes: out of line.
    pub fn close(&self) {
        let mut w = self.waiter();
        w.done(self.line());
        self.mirror(&w);
    }

    /// A busy handler's sleep of `us` µs; None to sleep as the base VFS does.
    fn sleep(&self, us: c_int) -> Option<c_int> {
        let line = self.line()?;
        let mut w = self.waiter();
        let slept = w.sleep(line, Duration::from_micros(us.max(0) as u64), &Instant::now);
        self.mirror(&w);
        match slept {
            Slept::Elsewhere => None,
            Slept::Early(d) => Some(d.as_micros().min(us.max(0) as u128) as c_int),
            Slept::Full => Some(us),
        }
    }
}

/// This thread's sleep of `us` µs, if a seat armed it just now: spent in
/// that seat's line. None: sleep as the base VFS does.
pub(super) fn sleep(us: c_int) -> Option<c_int> {
    let (seat, at) = ARMED.with(|a| a.borrow_mut().take())?;
    if at.elapsed() >= ARMED_FOR {
        return None;
    }
    seat.sleep(us)
}
