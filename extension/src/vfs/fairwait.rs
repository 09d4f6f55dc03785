//! A fair, prompt wait for a WAL database's write lock (issue #14), in
//! plain Rust against a [`Line`] (the node-wide line of waiters, `line.rs`).
//!
//! Where the waiting happens: SQLite's default busy handler (what
//! `sqlite3_busy_timeout` installs, and so Python's, Node's and Go's
//! drivers) sleeps through the connection's VFS, which is the guard's
//! wrapper. When a guarded connection's write-lock request was busy, its
//! next sleep is spent standing in the line instead of sleeping blind:
//! - a waiter takes a ticket the first time and keeps it across the busy
//!   handler's rounds, so its place is its arrival;
//! - guarded writers mark the line while they hold the lock, and wake the
//!   front as they let it go;
//! - the waiter at the front (the oldest live ticket) looks at that mark
//!   whenever it is woken and every [`FRONT_POLL`]; seeing the lock free,
//!   it returns early holding the turn, and the retry that follows takes
//!   the lock before its read snapshot (`policy`). The sleep never touches
//!   the database file: it may run on a thread that does not own the
//!   connection, so it only reads the line;
//! - a writer outside the guard holds the lock without marking the line. A
//!   turn that finds the lock busy anyway ([`Waiter::missed`]) makes the
//!   rest of that wait distrust the mark: it returns early only after a
//!   guarded writer released the lock during the sleep;
//! - everyone else dozes until woken or [`BACK_DOZE`] passes;
//! - a sleep returns early only with the turn. Otherwise it lasts exactly
//!   as long as asked, so the busy handler's count of time slept stays
//!   true: the application's timeout is honoured in wall-clock time;
//! - a connection that waits here stands aside (answers "busy" without
//!   trying) while an older waiter is in line: no newcomer takes the lock
//!   from under the front. Whether it waits here is learned (`sleeper`):
//!   a busy answer followed by a sleep here says yes; one followed by no
//!   sleep (a custom handler, none, or one that gave up) says no, and a
//!   connection that says no waits and fails exactly as without the guard.
//!   A new connection goes by what its process's other connections to the
//!   database showed;
//! - a turn not used within [`TURN_TTL`] is given up: the waiter leaves
//!   the line (its retry never came).
//!
//! Mutual exclusion is SQLite's own lock, always: the line only orders who
//! asks for it next. A waiter that dies or stops standing in line is passed
//! over once its heartbeat is older than the line's staleness bound.

use super::seams::Line;
use std::time::{Duration, Instant};

/// How often the front waiter looks at the lock when nobody wakes it (a
/// writer outside the guard releases it without a word).
pub(super) const FRONT_POLL: Duration = Duration::from_millis(2);
/// How long a waiter behind the front dozes between heartbeats.
pub(super) const BACK_DOZE: Duration = Duration::from_millis(50);
/// A ticket is kept across the busy handler's rounds of one wait; one not
/// used for this long belongs to a wait that ended (the handler gave up).
pub(super) const TICKET_TTL: Duration = Duration::from_millis(100);
/// The retry that takes the lock comes microseconds after the turn is
/// given; a turn this old was never used.
pub(super) const TURN_TTL: Duration = Duration::from_millis(50);

/// How a sleep went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slept {
    /// Not here (no line, or it is full): sleep as the base VFS does.
    Elsewhere,
    /// At the front with the lock free, after this long: the turn is held.
    Early(Duration),
    /// The whole time asked.
    Full,
}

/// One connection's place in the line of its main database.
#[derive(Debug, Default)]
pub(super) struct Waiter {
    /// The ticket of the current wait and when it was last used.
    ticket: Option<(u64, Instant)>,
    /// The slot this waiter stands in, while it does.
    slot: Option<usize>,
    /// At the front with the lock seen free, at this time: the next
    /// request takes it.
    turn: Option<Instant>,
    /// A turn of this wait found the lock busy: a writer outside the guard
    /// holds it now and then (see the module's notes).
    distrust: bool,
}

impl Waiter {
    fn live_ticket(&self, now: Instant) -> Option<u64> {
        self.ticket
            .filter(|(_, seen)| now.saturating_duration_since(*seen) < TICKET_TTL)
            .map(|(t, _)| t)
    }

    /// Whether a request for the write lock should answer "busy" without
    /// trying: an older waiter stands in line and this connection would
    /// wait here too (`sleeps_here`).
    pub fn should_stand_aside<L: Line>(&self, sleeps_here: bool, line: Option<&L>, now: Instant) -> bool {
        if !sleeps_here || self.turn.is_some() {
            return false;
        }
        line.is_some_and(|l| l.older_than(self.live_ticket(now)))
    }

    pub fn has_turn(&self) -> bool {
        self.turn.is_some()
    }

    /// The turn, taken (asked once). One older than [`TURN_TTL`] was never
    /// used: the waiter leaves the line and the next front is woken.
    pub fn take_turn<L: Line>(&mut self, line: Option<&L>, now: Instant) -> bool {
        let Some(at) = self.turn.take() else { return false };
        if now.saturating_duration_since(at) < TURN_TTL {
            return true;
        }
        if let Some(l) = line {
            self.leave(l);
            l.wake_front();
        }
        false
    }

    /// The busy handler's sleep of `d`, spent in `line`.
    pub fn sleep<L: Line>(&mut self, line: &L, d: Duration, now: &dyn Fn() -> Instant) -> Slept {
        let start = now();
        let deadline = start + d;
        let t = match self.live_ticket(start) {
            Some(t) => t,
            None => {
                self.distrust = false;
                line.ticket()
            }
        };
        let released_before = line.releases();
        let distrust = self.distrust;
        let free = || !line.held() && (!distrust || line.releases() != released_before);
        self.ticket = Some((t, start));
        let slot = match self.slot.or_else(|| line.join(t)) {
            Some(s) => s,
            None => return Slept::Elsewhere,
        };
        self.slot = Some(slot);
        loop {
            // Read before looking: a wake-up after this is not missed.
            let seen = line.seen(slot);
            line.refresh(slot);
            let at = now();
            let front = !line.older_than(Some(t));
            if front && free() {
                self.turn = Some(at);
                self.ticket = Some((t, at));
                return Slept::Early(at.saturating_duration_since(start));
            }
            if at >= deadline {
                break;
            }
            let nap = if front { FRONT_POLL } else { BACK_DOZE };
            line.doze(slot, seen, nap.min(deadline - at));
        }
        self.leave(line);
        // The next waiter may be the front now.
        line.wake_front();
        self.ticket = Some((t, now()));
        Slept::Full
    }

    fn leave<L: Line>(&mut self, line: &L) {
        if let Some(s) = self.slot.take() {
            line.leave(s);
        }
    }

    /// The wait is over: the lock was taken (or the file closes).
    pub fn done<L: Line>(&mut self, line: Option<&L>) {
        if let Some(l) = line {
            self.leave(l);
        }
        self.slot = None;
        self.ticket = None;
        self.turn = None;
        self.distrust = false;
    }

    /// The turn was used and the lock still taken by someone else: step out
    /// of line, keeping the ticket (the next sleep stands in its old place),
    /// and stop trusting the line's mark for the rest of this wait.
    pub fn missed<L: Line>(&mut self, line: Option<&L>, now: Instant) {
        if let Some(l) = line {
            self.leave(l);
        }
        self.turn = None;
        self.distrust = true;
        if let Some((t, _)) = self.ticket {
            self.ticket = Some((t, now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    /// A line in one thread, with a clock the test moves: dozing advances
    /// it. The lock is held by a guarded writer until `held_until`.
    #[derive(Default)]
    struct FakeLine {
        next: Cell<u64>,
        slots: RefCell<Vec<Option<u64>>>,
        clock: Cell<Duration>,
        wakes: Cell<u32>,
        held_until: Cell<Duration>,
        released: Cell<u64>,
        /// (slot, how long) of every doze.
        dozes: RefCell<Vec<(usize, Duration)>>,
    }

    impl Line for FakeLine {
        fn ticket(&self) -> u64 {
            self.next.set(self.next.get() + 1);
            self.next.get()
        }
        fn join(&self, ticket: u64) -> Option<usize> {
            let mut s = self.slots.borrow_mut();
            if s.len() >= 2 && s.iter().all(Option::is_some) {
                return None;
            }
            match s.iter().position(Option::is_none) {
                Some(i) => {
                    s[i] = Some(ticket);
                    Some(i)
                }
                None => {
                    s.push(Some(ticket));
                    Some(s.len() - 1)
                }
            }
        }
        fn refresh(&self, _slot: usize) {}
        fn leave(&self, slot: usize) {
            self.slots.borrow_mut()[slot] = None;
        }
        fn older_than(&self, ticket: Option<u64>) -> bool {
            self.slots
                .borrow()
                .iter()
                .flatten()
                .any(|t| ticket.is_none_or(|mine| *t < mine))
        }
        fn seen(&self, _slot: usize) -> u32 {
            self.wakes.get()
        }
        fn doze(&self, slot: usize, _seen: u32, d: Duration) {
            self.dozes.borrow_mut().push((slot, d));
            let before = self.clock.get();
            self.clock.set(before + d);
            if before < self.held_until.get() && self.clock.get() >= self.held_until.get() {
                self.released.set(self.released.get() + 1);
            }
        }
        fn wake_front(&self) {
            self.wakes.set(self.wakes.get() + 1);
        }
        fn held(&self) -> bool {
            self.clock.get() < self.held_until.get()
        }
        fn hold(&self) {}
        fn release(&self) {}
        fn releases(&self) -> u64 {
            self.released.get()
        }
    }

    impl FakeLine {
        fn held_for(d: Duration) -> FakeLine {
            let l = FakeLine::default();
            l.held_until.set(d);
            l
        }
    }

    fn clock(line: &FakeLine, base: Instant) -> impl Fn() -> Instant + '_ {
        move || base + line.clock.get()
    }

    const LONG: Duration = Duration::from_secs(3600);

    #[test]
    fn at_the_front_with_the_lock_free_the_sleep_ends_at_once_holding_the_turn() {
        let line = FakeLine::default();
        let base = Instant::now();
        let mut w = Waiter::default();
        let r = w.sleep(&line, Duration::from_millis(5), &clock(&line, base));
        assert_eq!(r, Slept::Early(Duration::ZERO));
        assert!(w.has_turn());
        assert_eq!(
            line.slots.borrow().iter().flatten().count(),
            1,
            "stays in line until it takes the lock"
        );
        w.done(Some(&line));
        assert!(!line.older_than(None), "the line is empty after done");
        assert!(!w.has_turn());
    }

    #[test]
    fn a_sleep_without_the_lock_lasts_exactly_as_long_as_asked() {
        let line = FakeLine::held_for(LONG);
        let base = Instant::now();
        let mut w = Waiter::default();
        let d = Duration::from_millis(25);
        let r = w.sleep(&line, d, &clock(&line, base));
        assert_eq!(r, Slept::Full);
        assert_eq!(line.clock.get(), d, "never shorter than asked, never longer");
        assert!(
            line.dozes.borrow().iter().all(|(_, n)| *n <= FRONT_POLL),
            "the front polls"
        );
        assert!(!line.older_than(None), "out of line between rounds");
        assert_eq!(line.wakes.get(), 1, "leaving wakes the next front");
    }

    #[test]
    fn the_lock_freed_mid_sleep_ends_it_early() {
        let line = FakeLine::held_for(FRONT_POLL * 3);
        let base = Instant::now();
        let mut w = Waiter::default();
        let r = w.sleep(&line, Duration::from_millis(100), &clock(&line, base));
        assert_eq!(r, Slept::Early(FRONT_POLL * 3));
    }

    #[test]
    fn the_ticket_is_kept_across_rounds_so_the_place_in_line_is_the_arrival() {
        let line = FakeLine::held_for(LONG);
        let base = Instant::now();
        let (mut old, mut young) = (Waiter::default(), Waiter::default());
        let c = clock(&line, base);
        assert_eq!(old.sleep(&line, Duration::from_millis(1), &c), Slept::Full);
        assert_eq!(young.sleep(&line, Duration::from_millis(1), &c), Slept::Full);
        // Between rounds both are out of line. The young one is back in
        // line first; the old one's kept ticket still puts it at the front.
        assert_eq!((old.ticket.unwrap().0, young.ticket.unwrap().0), (1, 2));
        let young_slot = line.join(2).unwrap();
        line.held_until.set(line.clock.get());
        let r = old.sleep(&line, Duration::from_millis(1), &c);
        assert_eq!(r, Slept::Early(Duration::ZERO), "the older ticket is the front");
        assert!(
            young.should_stand_aside(true, Some(&line), c()),
            "the younger one stands aside"
        );
        line.leave(young_slot);
    }

    #[test]
    fn behind_the_front_a_waiter_waits_even_with_the_lock_free() {
        let line = FakeLine::default();
        let base = Instant::now();
        let front = line.join(line.ticket()).unwrap();
        let mut w = Waiter::default();
        let r = w.sleep(&line, BACK_DOZE * 2 + FRONT_POLL * 4, &clock(&line, base));
        assert_eq!(r, Slept::Full);
        assert_eq!(
            *line.dozes.borrow(),
            [(1, BACK_DOZE), (1, BACK_DOZE), (1, FRONT_POLL * 4)],
            "never woken to look at the lock"
        );
        line.leave(front);
    }

    #[test]
    fn a_stale_ticket_is_not_reused() {
        let line = FakeLine::held_for(LONG);
        let base = Instant::now();
        let mut w = Waiter::default();
        let c = clock(&line, base);
        w.sleep(&line, Duration::from_millis(1), &c);
        let first = w.ticket.unwrap().0;
        line.clock.set(line.clock.get() + TICKET_TTL);
        w.sleep(&line, Duration::from_millis(1), &c);
        assert!(w.ticket.unwrap().0 > first, "a new wait queues at the back");
    }

    #[test]
    fn only_a_connection_that_waits_here_stands_aside() {
        let line = FakeLine::default();
        let base = Instant::now();
        let s = line.join(line.ticket()).unwrap();
        let mut w = Waiter::default();
        assert!(
            !w.should_stand_aside(false, Some(&line), base),
            "custom handlers and none: as without the guard"
        );
        assert!(w.should_stand_aside(true, Some(&line), base));
        assert!(
            !w.should_stand_aside(true, None::<&FakeLine>, base),
            "no line: nothing to stand aside for"
        );
        w.turn = Some(base);
        assert!(
            !w.should_stand_aside(true, Some(&line), base),
            "the turn is taken, not given away"
        );
        line.leave(s);
        w.turn = None;
        assert!(!w.should_stand_aside(true, Some(&line), base), "nobody in line");
    }

    #[test]
    fn a_turn_is_taken_once_and_an_unused_one_is_given_up() {
        let line = FakeLine::default();
        let base = Instant::now();
        let c = clock(&line, base);
        let mut w = Waiter::default();
        assert_eq!(
            w.sleep(&line, Duration::from_millis(5), &c),
            Slept::Early(Duration::ZERO)
        );
        assert!(w.take_turn(Some(&line), c()));
        assert!(!w.take_turn(Some(&line), c()), "once");
        assert!(line.older_than(None), "still in line until the lock is taken");
        w.done(Some(&line));
        // A turn nobody came for: out of line, the next front woken.
        assert_eq!(
            w.sleep(&line, Duration::from_millis(5), &c),
            Slept::Early(Duration::ZERO)
        );
        let wakes = line.wakes.get();
        assert!(!w.take_turn(Some(&line), c() + TURN_TTL));
        assert!(!line.older_than(None));
        assert_eq!(line.wakes.get(), wakes + 1);
    }

    #[test]
    fn a_full_line_leaves_the_sleep_to_the_base_vfs() {
        let line = FakeLine::default();
        let base = Instant::now();
        let a = line.join(line.ticket()).unwrap();
        let b = line.join(line.ticket()).unwrap();
        let mut w = Waiter::default();
        let r = w.sleep(&line, Duration::from_millis(5), &clock(&line, base));
        assert_eq!(r, Slept::Elsewhere);
        assert_eq!(line.clock.get(), Duration::ZERO);
        line.leave(a);
        line.leave(b);
    }

    #[test]
    fn a_missed_turn_keeps_the_place_and_then_waits_for_a_real_release() {
        // The line's mark says free, but a writer outside the guard holds the lock.
        let line = FakeLine::default();
        let base = Instant::now();
        let c = clock(&line, base);
        let mut w = Waiter::default();
        assert_eq!(
            w.sleep(&line, Duration::from_millis(5), &c),
            Slept::Early(Duration::ZERO)
        );
        let t = w.ticket.unwrap().0;
        w.missed(Some(&line), c());
        assert!(!w.has_turn());
        assert!(!line.older_than(None), "out of line");
        assert_eq!(w.live_ticket(c()), Some(t));
        // No guarded release during the sleep: the whole sleep, as asked.
        assert_eq!(w.sleep(&line, Duration::from_millis(5), &c), Slept::Full);
        assert_eq!(w.live_ticket(c()), Some(t), "same place");
        // A guarded writer releases mid-sleep: early again.
        line.held_until.set(line.clock.get() + FRONT_POLL);
        assert_eq!(
            w.sleep(&line, Duration::from_millis(50), &c),
            Slept::Early(FRONT_POLL)
        );
        w.done(Some(&line));
        assert!(!w.distrust, "a new wait trusts the line again");
    }
}
