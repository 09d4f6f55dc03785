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
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How soon after a busy answer the busy handler's sleep must come to be
/// counted as its. It comes within microseconds, unless the thread was
/// preempted; a later sleep is some other one (an application's own
/// `sqlite3_sleep`, or a busy handler of a database outside the guard on
/// this thread), left to the base VFS.
const ARMED_FOR: Duration = Duration::from_millis(50);

/// What a seat knows of its connection's busy handler (0: nothing yet).
const SLEEPS_HERE: u8 = 1;
const SLEEPS_ELSEWHERE: u8 = 2;

thread_local! {
    static ARMED: RefCell<Option<(Arc<Seat>, Instant)>> = const { RefCell::new(None) };
}

/// One main database file's place in its line.
#[derive(Default)]
pub(super) struct Seat {
    waiter: Mutex<Waiter>,
    /// Joined on first use; None where there is no line to be had.
    line: OnceLock<Option<Arc<RealLine>>>,
    /// Whether the connection's busy handler sleeps here (0 until a
    /// busy answer shows it): a busy answer followed by a sleep here says
    /// yes, one followed by no sleep says no.
    learned: AtomicU8,
    /// A busy answer armed a sleep that has not come yet.
    armed: AtomicBool,
    /// Mirror of the waiter's turn, read without the lock at every read
    /// transaction.
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
        self.turn.store(w.has_turn(), Ordering::Relaxed);
    }

    /// Whether this connection waits in line: as learned, else as its
    /// process's other connections to the database showed.
    fn sleeps_here(&self, line: &RealLine) -> bool {
        if self.armed.swap(false, Ordering::Relaxed) {
            // The last busy answer was not followed by a sleep here.
            self.learned.store(SLEEPS_ELSEWHERE, Ordering::Relaxed);
        }
        match self.learned.load(Ordering::Relaxed) {
            SLEEPS_HERE => true,
            SLEEPS_ELSEWHERE => false,
            _unknown => line.sleepers_seen(),
        }
    }

    pub fn stand_aside(&self) -> bool {
        let Some(line) = self.line() else { return false };
        // Nobody in line (the uncontended case): no lock taken.
        if !line.older_than(None) {
            self.armed.store(false, Ordering::Relaxed);
            return false;
        }
        let here = self.sleeps_here(line);
        self.waiter().should_stand_aside(here, Some(line), Instant::now())
    }

    /// Arms this thread's next sleep for this seat.
    pub fn busy(self: &Arc<Self>) {
        if self.line().is_some() {
            self.armed.store(true, Ordering::Relaxed);
            ARMED.with(|a| *a.borrow_mut() = Some((self.clone(), Instant::now())));
        }
    }

    pub fn take_turn(&self) -> bool {
        if !self.turn.load(Ordering::Relaxed) {
            return false;
        }
        let mut w = self.waiter();
        let t = w.take_turn(self.line(), Instant::now());
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
        self.armed.store(false, Ordering::Relaxed);
        self.learned.store(SLEEPS_HERE, Ordering::Relaxed);
        line.saw_a_sleeper();
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
