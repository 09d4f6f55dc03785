"""The oracle: what the guarded run must answer, given what stock+query_only answered.

Per command (see README.md for the full statement):
  stock ok ROWS         -> guarded ok with the same ROWS                  (else REFUSED / ROWS)
  stock err 8 (a write) -> guarded err whose low byte is 23 or 8          (else CODE / ACK)
  stock err C, C != 8   -> guarded err whose low byte is C, 23 or 8       (else CODE / ODD_OK)
                           (1 also for stock's 17: a stale schema on stock's side)
  not run on stock      -> a file write query_only does not cover: guarded err 23/8
                           (or ok where SKIP_RULES says so)               (else CODE / NOT_REFUSED)
except where ALLOW (keyed on the generator's command kind) permits a documented difference.
After the run: the mount's files are unchanged (FILES), and the stock copy too (ORACLE).
"""

from __future__ import annotations

import dataclasses
import re

WRITE_CODES = frozenset({23, 8})  # SQLITE_AUTH, SQLITE_READONLY (low byte of the extended code)


@dataclasses.dataclass(frozen=True)
class Allow:
    codes: frozenset  # low bytes the guarded run may answer
    reason: str
    message: str | None = None  # for code 1: the message must start with this
    ok: bool = False  # (commands not run on stock) the guarded run may also answer ok

    def accepts(self, g: "Outcome") -> bool:
        if g.ok:
            return self.ok
        if g.low not in self.codes:
            return False
        return g.low != 1 or (self.message is not None and g.text.startswith(self.message.encode()))


# Differences the oracle accepts where stock+query_only answered ok, keyed on command
# kind. Keep it short: every entry is a documented decision, not a bug being tolerated.
ALLOW: dict[str, Allow] = {
    "pragma.journal_mode.rollback": Allow(
        WRITE_CODES,
        "Rollback-journal database: switching between rollback modes (delete/truncate/persist/memory/off) "
        "changes no file, so query_only allows it; the guard may refuse it like every journal_mode= "
        "(README: on a replica nothing is written to switch modes)."),
    "explain.write": Allow(
        WRITE_CODES,
        "README (Limits): EXPLAIN of a write statement is refused on a replica; the authorizer cannot tell "
        "EXPLAIN apart. Stock+query_only only prepares it."),
    "attach.new_mount": Allow(
        WRITE_CODES,
        "ATTACH of a path in the mount that does not exist creates the file (query_only does not cover "
        "opens). Creating a file on a replica is a write: the guard may refuse the ATTACH."),
    "pragma.journal_mode.same": Allow(
        WRITE_CODES,
        "journal_mode=<a rollback mode> on a database already in that mode changes nothing, so query_only "
        "allows it; the guard refuses every journal_mode other than wal at prepare on a replica (leaving WAL "
        "crashed a replica; the authorizer cannot see the current mode)."),
    "attach.bypass": Allow(
        WRITE_CODES,
        "ATTACH of a guarded file through a VFS or URI parameter that skips the guard's locks "
        "(vfs=unix*, nolock=1): refusing the ATTACH is one valid way to keep the file guarded."),
}

# Commands never run on stock: what the guarded run may answer. Every kind the
# generator marks `skip` has an entry.
SKIP_RULES: dict[str, Allow] = {
    "pragma.wal_checkpoint": Allow(
        WRITE_CODES | {5, 6},
        "query_only does not cover checkpoints (stock would write its copy). The guard may refuse, or answer "
        "ok with SQLite's busy result when its gate turned the checkpoint lock away (the file check proves "
        "nothing was written); SQLITE_BUSY/SQLITE_LOCKED are SQLite's own answers to a checkpoint inside a "
        "transaction.", ok=True),
    "pragma.journal_mode.switch": Allow(
        WRITE_CODES | {1, 5},
        "Entering or leaving WAL rewrites the database header; query_only does not stop it. Must be refused "
        "(or, inside a transaction, SQLite's own 'cannot change into/out of wal mode' error, as stock gives). "
        "journal_mode=wal on a database already in WAL changes nothing and may answer ok (the file check "
        "proves nothing was written). SQLITE_BUSY is SQLite's own answer when one file is attached twice "
        "(the aliases lock each other out), as stock would give.",
        message="cannot change ", ok=True),
    "pragma.locking_mode.exclusive": Allow(
        frozenset({1, 23, 8}),
        "README (Limits): EXCLUSIVE locking mode is refused on guarded databases (in it SQLite stops taking "
        "the locks the execution-time gate lives in). Not run on stock: it would change how stock locks every "
        "database attached later, so the runs would diverge. Answering ok is fine too if the guard keeps "
        "guarding (the file check and later commands tell).",
        message="litefs_guard: locking_mode=EXCLUSIVE refused", ok=True),
    "pragma.query_only": Allow(
        frozenset(),
        "The oracle's own switch: connection state, must answer ok (the generator then runs TEMP writes "
        "with query_only on for stock too).", ok=True),
}


@dataclasses.dataclass(frozen=True)
class Outcome:
    ok: bool
    code: int = 0
    text: bytes = b""  # rows (ok) or message (err)

    @property
    def low(self) -> int:
        return self.code & 0xFF

    def show(self) -> str:
        t = self.text.decode("utf-8", "replace")
        return ("ok " + t if self.ok else f"err {self.code} {t}")[:300]


def parse(line: bytes, roots: list[bytes]) -> Outcome:
    for r in roots:
        line = line.replace(r, b"@R@")
    # EXPLAIN prints a virtual table's address: differs between any two processes.
    line = re.sub(rb"vtab:[0-9A-Fa-f]+", b"vtab:ADDR", line)
    # ... and OP_Transaction's P4, the schema generation: counts schema reloads, which
    # differ when one run refuses statements at prepare time and the other at run time.
    line = re.sub(rb"(\|Transaction\|-?\d+\|-?\d+\|-?\d+\|)-?\d+\|", rb"\1G|", line)
    if line.startswith(b"ok"):
        return Outcome(True, 0, line[3:])
    m = re.match(rb"err (-?\d+) ?(.*)", line, re.S)
    if m:
        return Outcome(False, int(m.group(1)), m.group(2))
    return Outcome(False, -1, b"unparsable: " + line)


@dataclasses.dataclass(frozen=True)
class Finding:
    type: str  # REFUSED ROWS CODE ACK ODD_OK NOT_REFUSED TXSTATE FILES ORACLE CRASH SETUP
    kind: str
    index: int | None  # command index; None for whole-run findings
    detail: str
    signature: tuple


def msg_class(o: Outcome) -> str:
    """The message without the names it quotes, for grouping findings."""
    if o.ok:
        return ""
    t = o.text.decode("utf-8", "replace")
    t = t.split(":")[0]
    return re.sub(r"\d+", "N", t)[:48]


def same_rows(text: bytes) -> bytes:
    """Rows as compared: a refusal quoted inside a row (3.45+'s integrity_check
    runs each FTS table's own `integrity-check` write) reads `not authorized`
    under the guard where query_only says `attempt to write a readonly
    database`; both are the refusal of a write."""
    text = text.replace(b"not authorized", b"attempt to write a readonly database")
    # query_only covers TEMP too, the guard does not (TEMP is the connection's
    # own): a TEMP FTS table validates under the guard and not under query_only.
    text = re.sub(rb"unable to validate the inverted index for FTS\d table temp\.[^;:]*: [^;]*;?", b"", text)
    return text.rstrip(b";")


def compare(c, s: Outcome | None, g: Outcome) -> tuple[str | None, str | None]:
    """(finding type or None, 'allowed' when an allow-listed difference) for one command."""
    if s is None:  # not run on stock
        rule = SKIP_RULES[c.kind]
        if rule.accepts(g):
            # The guarded connection's state may now differ from stock's.
            return None, ("allowed" if g.ok else None)
        return ("NOT_REFUSED" if g.ok else "CODE"), None
    a = ALLOW.get(c.kind)
    if s.ok:
        if g.ok:
            if c.unordered:  # RETURNING: rows come in no defined order
                return (None, None) if sorted(g.text.split(b";")) == sorted(s.text.split(b";")) else ("ROWS", None)
            return (None, None) if same_rows(g.text) == same_rows(s.text) else ("ROWS", None)
        if a and a.accepts(g):
            return None, "allowed"
        return "REFUSED", None
    if g.ok:
        if c.kind.startswith("tx.") and c.kind != "tx.begin_write":
            # Transaction control writes nothing; stock's 8 there comes from the oracle
            # toggling query_only around its TEMP writes, not from a write.
            return None, None
        return ("ACK" if s.low == 8 else "ODD_OK"), None
    if s.low == 8:
        return (None, None) if g.low in WRITE_CODES else ("CODE", None)
    if g.low in WRITE_CODES or g.low == s.low:
        return None, None
    if s.low == 17 and g.low == 1:
        return None, None  # stock hit its stale schema (SQLITE_SCHEMA); the guard reports the error itself
    return "CODE", None


EXPLAIN = {
    "REFUSED": "stock+query_only answered it; the guard refused it",
    "ROWS": "both answered; different rows",
    "CODE": "refused with a code whose low byte is not 23/8 (nor stock's), or not one its rule accepts",
    "ACK": "stock+query_only refused it as a write (8); the guard answered ok",
    "ODD_OK": "stock failed; the guard answered ok",
    "NOT_REFUSED": "a file write query_only does not cover; the guard answered ok",
    "TXSTATE": "transaction state differs",
}


# State tokens (diff_gen) that belong to the connection rather than to a database file.
CONNECTION_STATE = ("p:", "a:", "dbl", "lm", "jm", "qo", "tx", "chg", "plan")  # "dbl" covers "dblist"
TX_END = ("tx.commit", "tx.rollback", "tx.rollback_to", "tx.release")


def tainted_by(deps: frozenset, tainted: set) -> bool:
    if deps & tainted or "*" in tainted:
        return True
    if "s:*" in deps and any(t.startswith("s:") for t in tainted):
        return True
    return False


def judge(cmds, run, spec, stats: dict | None = None) -> list[Finding]:
    roots = [bytes(run.g_root), bytes(run.s_root)]
    out: list[Finding] = []
    g_lines, s_lines = run.guarded.lines, run.stock.lines
    if len(g_lines) < 2 or not g_lines[0].startswith(b"ok") or not g_lines[1].startswith(b"ok"):
        d = f"loading/opening failed: {g_lines[:2]!r} {run.guarded.stderr[-300:]!r}"
        return [Finding("SETUP", "setup", None, d, ("SETUP",))]
    if len(s_lines) < 2 or not s_lines[1].startswith(b"ok"):
        return [Finding("ORACLE", "setup", None, f"stock setup failed: {s_lines[:2]!r}", ("ORACLE", "setup"))]
    tainted: set = set()
    compared = 0
    skipped: list[int] = []
    g_ac = s_ac = b"ok 1"
    prev_ac = (g_ac, s_ac)
    for i, c in enumerate(cmds):
        gi = run.g_line[i]
        if gi + 1 >= len(g_lines):
            why = "timed out" if run.guarded.timed_out else f"exit {run.guarded.rc}"
            d = f"guarded process ended at command {i + 1} ({why}): {run.guarded.stderr[-400:]!r}"
            out.append(Finding("CRASH", c.kind, i, d, ("CRASH", c.kind, why)))
            break
        g = parse(g_lines[gi], roots)
        g_ac = g_lines[gi + 1]
        si = run.s_line[i]
        s = None
        if si is not None:
            if si + 1 >= len(s_lines):
                out.append(Finding("ORACLE", c.kind, i, f"stock process ended early (exit {run.stock.rc}): "
                                   f"{run.stock.stderr[-300:]!r}", ("ORACLE", "stock-crash")))
                break
            s = parse(s_lines[si], roots)
            s_ac = s_lines[si + 1]
        probe = None
        if run.modes[i] == "skip":
            probe, s = s, None
        demoted = run.modes[i] != c.mode  # stock ran it with query_only on after all
        # Once the lock state may differ (a transaction in which the runs diverged), it
        # shows as SQLITE_BUSY/SQLITE_LOCKED anywhere, schema loads included.
        # Stock answering SQLITE_BUSY/LOCKED gave no verdict (two aliases of one file in one
        # connection can lock each other out): not compared.
        lock_noise = ((("tx" in tainted or "dbl" in tainted) and g.low in (5, 6))
                      or (s is not None and s.low in (5, 6)))
        # A TEMP/unguarded write stock refused for query_only before SQLite noticed its
        # in-memory schema was stale (query_only is checked first): no verdict on a name error.
        lock_noise = lock_noise or (c.kind.startswith(("temp.", "local.", "dml.local")) and s is not None
                                    and s.low == 8 and not g.ok and g.text.startswith(b"no such"))
        # One run inside a transaction and the other not: every answer may depend on it.
        tx_apart = prev_ac[0] != prev_ac[1]
        if demoted or lock_noise or tx_apart or tainted_by(c.deps, tainted):
            # Its inputs differ between the runs: not compared. What it changes differs
            # too if the runs answered differently, or if either carried it out on
            # inputs that differ (not just on a different transaction/lock state).
            skipped.append(i)
            both_refused = s is not None and not s.ok and not g.ok and {s.low, g.low} <= WRITE_CODES
            differs = (s is None or s.ok != g.ok or (s.ok and s.text != g.text)
                       or (not s.ok and s.low != g.low and not both_refused))
            content = bool((c.deps & tainted) - {"tx"})
            if differs or (content and (g.ok or s.ok)) or (demoted and g.ok) or c.volatile:
                tainted |= set(c.mods)
            if differs and c.kind in TX_END:
                tainted.add("*")  # one run kept what the other rolled back
            if differs and c.kind.startswith("attach."):
                tainted.add("*")  # the runs now see different databases under that name
            if c.guarded_write and g.ok and not (s is not None and s.ok):
                tainted.add("*")  # the guard let a write through (reported or not): content may differ
            if differs:
                tainted.add("tx")
            if g.ok and s is not None and not s.ok and s.low == 8 and not demoted:
                tainted.add("*")  # a write may have landed (see below)
        else:
            compared += 1
            if probe is not None and not probe.ok:
                # Stock could not even prepare it (a name error, say): the guard may answer
                # the same or refuse it as a write.
                ftype, allowed = (None, None) if (not g.ok and g.low in WRITE_CODES | {probe.low}) else ("CODE", None)
            else:
                ftype, allowed = compare(c, s, g)
            if s is not None and not s.ok and not g.ok and s.low != g.low:
                # Refused at different points (stock at run time, the guard while preparing):
                # stock may have begun a read transaction, opened the TEMP database or
                # changed its in-memory schema (query plans) where the guard never did.
                tainted |= {m for m in c.mods if m.startswith(CONNECTION_STATE)} | {"tx", "plan"}
            if ftype or allowed or c.volatile:
                # Diverged (or may have): what it changes differs, and so may the
                # transaction and lock state of the databases it touched. When only the
                # guard refused a command stock ran with query_only on, stock changed no
                # file either: only connection state can differ.
                if g.ok or run.modes[i] != "qo" or c.volatile:
                    tainted |= set(c.mods)
                else:
                    tainted |= {m for m in c.mods if m.startswith(CONNECTION_STATE)}
                tainted.add("tx")
                if allowed and g.ok and c.kind == "pragma.journal_mode.switch":
                    tainted.add("*")  # carried out here, never on stock: files and modes may differ
                if allowed and not g.ok and c.kind.startswith("attach."):
                    # The guard refused an ATTACH stock carried out: from here on the two
                    # connections see different databases under that name (and whatever
                    # touches "every attached database"), so nothing after is comparable.
                    tainted.add("*")
                if ftype in ("ACK", "ODD_OK", "NOT_REFUSED") or (c.kind in TX_END and s is not None and s.ok != g.ok):
                    # A write may have landed: from here on the replica's content and the
                    # stock copy may differ anywhere (the file check still judges the run).
                    tainted.add("*")
            if ftype:
                sig = (ftype, c.kind) if ftype == "ROWS" else (ftype, c.kind, g.low if not g.ok else "ok", msg_class(g))
                d = (f"command {i + 1} [{c.kind}]: {EXPLAIN[ftype]}\n"
                     f"    sql:              {c.sql.decode('utf-8', 'backslashreplace')[:300]}\n"
                     f"    stock+query_only: {s.show() if s else '(not run: ' + (('prepared only: ' + probe.show()) if probe else 'see SKIP_RULES') + ')'}\n"
                     f"    guarded:          {g.show()}")
                out.append(Finding(ftype, c.kind, i, d, sig))
        # Transaction state after every command: both in autocommit mode means no
        # transaction and no lock is held on either side, so it is in step again.
        prev_ac = (g_ac, s_ac)
        if g_ac == s_ac == b"ok 1":
            tainted.discard("tx")
        elif g_ac != s_ac and "tx" not in tainted and "*" not in tainted:
            d = (f"command {i + 1} [{c.kind}]: transaction state differs after it (autocommit: "
                 f"stock {s_ac[3:].decode()}, guarded {g_ac[3:].decode()})\n"
                 f"    sql:              {c.sql.decode('utf-8', 'backslashreplace')[:300]}\n"
                 f"    stock+query_only: {s.show() if s else '(not run)'}\n"
                 f"    guarded:          {g.show()}")
            out.append(Finding("TXSTATE", c.kind, i, d, ("TXSTATE", c.kind, g.low if not g.ok else "ok", msg_class(g))))
            tainted.add("tx")
    if stats is not None:
        stats["compared"] = compared
        stats["skipped"] = skipped
    out += file_findings(run.before, run.after_guarded, run.wal_dbs, set(), "FILES")
    may_create = {c.new_file for c, si in zip(cmds, run.s_line) if c.new_file and si is not None}
    out += file_findings(run.before, run.after_stock, run.wal_dbs, may_create, "ORACLE")
    return out


def _group(name: bytes) -> str:
    return re.sub(r"\d+", "N", name.decode("utf-8", "backslashreplace"))


def file_findings(before, after, wal_dbs, may_create, ftype) -> list[Finding]:
    """The mount after a run must equal the mount before it, except what a reader of a
    WAL database legitimately does: create/update/remove its -shm, create an empty -wal."""
    out = []
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name), after.get(name)
        if a == b:
            continue
        base, suffix = name, b""
        for sfx in (b"-shm", b"-wal"):
            if name.endswith(sfx):
                base, suffix = name[: -len(sfx)], sfx
        if suffix == b"-shm" and base in wal_dbs:
            continue
        if suffix == b"-wal" and base in wal_dbs and b is None and (a is None or (a.kind == "file" and a.size == 0)):
            continue
        if b is None and name in may_create and a.kind == "file" and a.size == 0:
            continue
        # unix-dotfile's lock directory: a reader's SHARED lock, left behind when the
        # process exits inside a transaction (a new database file itself is reported).
        if b is None and a.kind == "dir" and name.endswith(b".lock") and (name[:-5] in before or name[:-5] in after):
            continue
        if b is None:
            what = f"created ({a.kind}, {a.size} bytes)"
            change = "created"
        elif a is None:
            what, change = "removed", "removed"
        else:
            what = f"changed ({b.size} -> {a.size} bytes)"
            change = "changed"
        who = "the guarded run" if ftype == "FILES" else "the STOCK run (oracle sanity)"
        out.append(Finding(ftype, "files", None, f"{who}: mount/{name.decode('utf-8', 'backslashreplace')} {what}",
                           (ftype, _group(name), change)))
    return out


