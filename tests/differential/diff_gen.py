"""Random command sequences for the differential test, and the fixture they run on.

Every command carries what the harness and the oracle need besides its SQL:

  kind   a label; the oracle's allow-list (diff_oracle.ALLOW) is keyed on it
  mode   how the stock run executes it:
           qo    with PRAGMA query_only=1 (everything that may touch a guarded file)
           rw    with query_only switched off around it: it writes only what the
                 guard leaves alone (TEMP objects, databases outside the mount,
                 :memory:), so both runs keep the same connection state
           skip  not run on stock: a file write that query_only does not cover
                 (stock would rewrite its copy), or a connection pragma that would make
                 the runs diverge; diff_oracle.SKIP_RULES says what the guard may answer.
                 With `probe`, stock prepares it under EXPLAIN (name errors still show)
  deps   state tokens the answer depends on; mods  tokens it changes. When the
         two runs diverge on a command (a finding, or an allow-listed difference),
         its mods are "tainted" and later commands depending on them are not
         compared (the file-level oracle still applies to the whole run).

Paths are written with @R@ (the run's root): @R@/mount is the LiteFS mount,
@R@/outside an unguarded directory. Runs start in @R@, so `mount/app.db` is a
relative path to the same file. Non-UTF-8 bytes are carried as surrogate escapes.
"""

from __future__ import annotations

import dataclasses
import random

QO, RW, SKIP = "qo", "rw", "skip"


def B(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


@dataclasses.dataclass(frozen=True)
class Features:
    version: str
    fts3: bool = False
    fts4: bool = False
    fts5: bool = False
    fts5vocab: bool = False
    rtree: bool = False
    json: bool = False
    dbstat: bool = False
    returning: bool = False
    window: bool = False
    drop_column: bool = False
    sqlite_schema: bool = False
    table_list: bool = False
    strict: bool = False
    arrow: bool = False


@dataclasses.dataclass(frozen=True)
class Cmd:
    sql: bytes
    kind: str
    mode: str = QO
    deps: frozenset = frozenset()
    mods: frozenset = frozenset()
    attach: bool = False  # the stock run re-asserts query_only after it
    new_file: bytes | None = None  # a mount file stock+query_only may create (an open of a missing path)
    probe: bool = False  # (skip) stock prepares it under EXPLAIN instead: same parse and name errors, no effect
    volatile: bool = False  # the runs may diverge even when both refuse it (effects at prepare time)
    unordered: bool = False  # its rows come in no defined order (RETURNING): compared as a multiset
    guarded_write: bool = False  # meant to write a guarded file (stock+query_only refuses it)


WORDS = ["alpha", "beta", "gamma", "delta", "hello", "world", "litefs", "replica", "primary",
         "guard", "sqlite", "write", "read", "node", "lease", "über", "naïve"]


def q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


# ---------------------------------------------------------------- fixture


@dataclasses.dataclass
class FixtureSpec:
    journal: str  # "wal" (closed cleanly), "wal-frames" (WAL left with frames), "rollback"
    auto_vacuum: str
    analyzed: bool
    build_cmds: list[bytes]
    vtabs: dict[str, str]  # name -> module, in main (and in an ATTACHed copy of app.db)
    other_fts: bool


def make_fixture(rng: random.Random, f: Features) -> FixtureSpec:
    journal = rng.choices(["wal", "wal-frames", "rollback"], [5, 2, 3])[0]
    auto_vacuum = rng.choice(["none", "none", "incremental", "full"])
    analyzed = rng.random() < 0.5
    jm = "delete" if journal == "rollback" else "wal"
    c: list[str] = []
    # foreign_keys off: some builds (rusqlite's bundled ones) turn it on by default.
    c += [".open @R@/mount/app.db", "PRAGMA foreign_keys=OFF", f"PRAGMA auto_vacuum={auto_vacuum}",
          f"PRAGMA journal_mode={jm}"]
    c += [
        "CREATE TABLE t1(id INTEGER PRIMARY KEY, a TEXT, b INT, c REAL, j TEXT)",
        "CREATE INDEX t1_b ON t1(b)",
        "CREATE UNIQUE INDEX t1_a ON t1(a)",
        "CREATE TABLE t2(k TEXT PRIMARY KEY, v BLOB, t1id INT REFERENCES t1(id)) WITHOUT ROWID",
        "CREATE TABLE log(id INTEGER PRIMARY KEY AUTOINCREMENT, msg TEXT)",
        "CREATE VIEW v1 AS SELECT t1.id, t1.a, t2.k FROM t1 LEFT JOIN t2 ON t2.t1id = t1.id",
        "CREATE TRIGGER trg_t1_u AFTER UPDATE ON t1 BEGIN INSERT INTO log(msg) VALUES('u' || new.id); END",
        "CREATE TRIGGER trg_v1_i INSTEAD OF INSERT ON v1 BEGIN INSERT INTO t1(a) VALUES(new.a); END",
    ]
    n = rng.randint(8, 30)
    rows = []
    for i in range(1, n + 1):
        w = f"{rng.choice(WORDS)}{i}"
        rows.append(f"({i}, {q(w)}, {rng.randint(-5, 50)}, {rng.randint(0, 1000) / 8}, "
                    f"{q('{' + chr(34) + 'k' + chr(34) + ':' + str(rng.randint(0, 9)) + ',' + chr(34) + 'l' + chr(34) + ':[1,2,' + str(i) + ']}')})")
    c.append("INSERT INTO t1 VALUES " + ", ".join(rows))
    c.append("INSERT INTO t2 VALUES " + ", ".join(
        f"({q('k' + str(i))}, x'{rng.randbytes(3).hex()}', {rng.randint(1, n)})" for i in range(1, rng.randint(3, 12))))
    c.append("UPDATE t1 SET b = b + 1 WHERE id % 3 = 0")
    vtabs: dict[str, str] = {}
    def text():
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5)))
    if f.fts5:
        vtabs["ft5"] = "fts5"
        c.append("CREATE VIRTUAL TABLE ft5 USING fts5(title, body)")
        c.append("INSERT INTO ft5(title, body) VALUES " + ", ".join(f"({q(text())}, {q(text())})" for _ in range(rng.randint(3, 12))))
    if f.fts4:
        vtabs["ft4"] = "fts4"
        c.append("CREATE VIRTUAL TABLE ft4 USING fts4(body)")
        c.append("INSERT INTO ft4(body) VALUES " + ", ".join(f"({q(text())})" for _ in range(rng.randint(3, 12))))
    if f.fts3 and rng.random() < 0.5:
        vtabs["ft3"] = "fts3"
        c.append("CREATE VIRTUAL TABLE ft3 USING fts3(body)")
        c.append("INSERT INTO ft3(body) VALUES " + ", ".join(f"({q(text())})" for _ in range(rng.randint(2, 6))))
    if f.rtree:
        vtabs["rt"] = "rtree"
        c.append("CREATE VIRTUAL TABLE rt USING rtree(id, x0, x1, y0, y1)")
        boxes = []
        for i in range(1, rng.randint(4, 20)):
            x, y = rng.randint(0, 90), rng.randint(0, 90)
            boxes.append(f"({i}, {x}, {x + rng.randint(1, 10)}, {y}, {y + rng.randint(1, 10)})")
        c.append("INSERT INTO rt VALUES " + ", ".join(boxes))
    c.append(f"PRAGMA user_version={rng.randint(1, 99)}")
    c.append(f"PRAGMA application_id={rng.randint(1, 1 << 30)}")
    if auto_vacuum != "none":
        c.append("DELETE FROM t1 WHERE id > 6 AND id % 4 = 0")  # leaves free pages
    if analyzed:
        c.append("ANALYZE")
    if journal != "wal-frames":
        c.append(".close")  # a clean close: checkpointed, no -wal/-shm left
    # A second guarded database in the mount, to ATTACH.
    c += [".open @R@/mount/other.db", f"PRAGMA journal_mode={jm}",
          "CREATE TABLE o1(x INTEGER PRIMARY KEY, y TEXT)", "CREATE INDEX o1_y ON o1(y)",
          "INSERT INTO o1(y) VALUES " + ", ".join(f"({q(rng.choice(WORDS))})" for _ in range(rng.randint(2, 9)))]
    other_fts = f.fts5
    if other_fts:
        c += ["CREATE VIRTUAL TABLE oft USING fts5(y)", "INSERT INTO oft SELECT y FROM o1"]
    c.append(".close")
    # A guarded database whose name is not UTF-8.
    c += [".open @R@/mount/x\udcff.db", "CREATE TABLE z1(a INTEGER PRIMARY KEY, b TEXT)",
          "INSERT INTO z1(b) VALUES ('z'), ('zz')", ".close"]
    # An unguarded database outside the mount.
    c += [".open @R@/outside/out.db", "CREATE TABLE u1(x INTEGER PRIMARY KEY, y TEXT)",
          "INSERT INTO u1(y) VALUES " + ", ".join(f"({q(rng.choice(WORDS))})" for _ in range(rng.randint(2, 6))), ".close"]
    if journal == "wal-frames":
        c.append(".use 0")  # app.db stays open: the process exits with frames in its WAL
    return FixtureSpec(journal, auto_vacuum, analyzed, [B(x) for x in c], vtabs, other_fts)


# ---------------------------------------------------------------- model


@dataclasses.dataclass
class Tab:
    name: str  # as written in SQL, possibly qualified
    cols: list[tuple[str, str]]  # (name, type): int, text, real, blob, json
    order: str  # ORDER BY expression that makes the row order total
    deps: frozenset
    module: str = "table"  # table, view, fts5, fts4, fts3, rtree, vocab, stat
    local: bool = False  # writes only TEMP / unguarded state
    pk: str | None = None  # an INTEGER PRIMARY KEY column (for UPSERT)


@dataclasses.dataclass
class Alias:
    sql: str  # how SQL names it (quoted form)
    key: str  # case-folded, for tokens
    target: str  # app, other, odd, link, hard, out, newm, newo, mem
    guarded: bool  # its file is in the mount (whatever the path it was reached by)
    readonly: bool
    tables: list[Tab]
    file: str = ""  # token of the file it reaches ("f:out"...): several aliases may share one


def T(*xs: str) -> frozenset:
    return frozenset(xs)


class Model:
    def __init__(self, spec: FixtureSpec, f: Features):
        self.spec, self.f = spec, f
        self.aliases: dict[str, Alias] = {}
        self.temp: list[Tab] = []
        self.temp_triggers: list[str] = []
        self.temp_views: list[str] = []
        self.temp_indexes: list[str] = []
        self.owner: dict[str, str] = {}  # TEMP index/trigger -> the table it belongs to
        self.trig_writes: dict[str, set] = {}  # TEMP table -> tables its triggers write
        self.n = 0
        self.guard_query_only = False
        self.used_aliases: set[str] = set()
        self.savepoints: list[str] = []
        self.in_tx = False

    def fresh(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def local_mode(self) -> str:
        # With the guarded connection's own query_only on, TEMP writes fail on both sides.
        return QO if self.guard_query_only else RW

    def main_tables(self, schema: str = "", deps_extra: frozenset = frozenset()) -> list[Tab]:
        p = schema + "." if schema else ""
        d = deps_extra
        out = [
            Tab(p + "t1", [("id", "int"), ("a", "text"), ("b", "int"), ("c", "real"), ("j", "json")], "id",
                d | T("n:t1"), pk="id"),
            Tab(p + "t2", [("k", "text"), ("v", "blob"), ("t1id", "int")], "k", d | T("n:t2")),
            Tab(p + "log", [("id", "int"), ("msg", "text")], "id", d | T("n:log"), pk="id"),
            Tab(p + "v1", [("id", "int"), ("a", "text"), ("k", "text")], "id, k", d | T("n:v1", "n:t1", "n:t2"), "view"),
        ]
        for name, mod in self.spec.vtabs.items():
            if mod == "rtree":
                out.append(Tab(p + name, [("id", "int"), ("x0", "real"), ("x1", "real"), ("y0", "real"), ("y1", "real")],
                               "id", d | T("n:" + name), "rtree"))
            elif mod == "fts5":
                out.append(Tab(p + name, [("title", "text"), ("body", "text")], "rowid", d | T("n:" + name), "fts5"))
            else:
                out.append(Tab(p + name, [("body", "text")], "rowid", d | T("n:" + name), mod))
        # Unqualified, these may resolve to TEMP's own (ANALYZE temp, AUTOINCREMENT in temp).
        sd = d if p else d | T("s:temp")
        if self.spec.analyzed:
            out.append(Tab(p + "sqlite_stat1", [("tbl", "text"), ("idx", "text"), ("stat", "text")], "tbl, idx",
                           sd | T("n:sqlite_stat1"), "stat"))
        out.append(Tab(p + "sqlite_sequence", [("name", "text"), ("seq", "int")], "name", sd | T("n:sqlite_sequence"), "stat"))
        return out

    def alias_tables(self, target: str, a: str, key: str, ftok: str) -> list[Tab]:
        d = T("a:" + key, ftok)
        if target == "app":
            return self.main_tables(a, d | T("lm"))
        if target in ("other", "link", "hard"):
            t = [Tab(a + ".o1", [("x", "int"), ("y", "text")], "x", d | T("n:o1"), pk="x")]
            if self.spec.other_fts:
                t.append(Tab(a + ".oft", [("y", "text")], "rowid", d | T("n:oft"), "fts5"))
            return t
        if target == "odd":
            return [Tab(a + ".z1", [("a", "int"), ("b", "text")], "a", d | T("n:z1"), pk="a")]
        if target == "out":
            return [Tab(a + ".u1", [("x", "int"), ("y", "text")], "x", d | T("n:u1"), pk="x", local=True)]
        return []

    def readable(self) -> list[Tab]:
        out = self.main_tables() + list(self.temp)
        for al in self.aliases.values():
            out += al.tables
        return out


# ---------------------------------------------------------------- expressions


def val(rng: random.Random, typ: str) -> str:
    r = rng.random()
    if r < 0.07:
        return "NULL"
    if typ == "int":
        return str(rng.randint(-3, 60))
    if typ == "real":
        return str(rng.randint(0, 800) / 4)
    if typ == "blob":
        return f"x'{rng.randbytes(rng.randint(0, 4)).hex()}'"
    if typ == "json":
        return q('{"k":%d,"l":[%d]}' % (rng.randint(0, 9), rng.randint(0, 9)))
    return q(rng.choice(WORDS) + str(rng.randint(0, 40)))


def pred(rng: random.Random, t: Tab) -> str:
    if t.module in ("fts5", "fts4", "fts3"):
        name = t.name.split(".")[-1]
        if rng.random() < 0.7:
            return f"{name} MATCH {q(rng.choice(WORDS[:12]))}"
        return f"rowid {rng.choice(['<', '>', '=', '<='])} {rng.randint(0, 8)}"
    if t.module == "rtree":
        lo = rng.randint(0, 80)
        return rng.choice([f"x0 >= {lo} AND x1 <= {lo + 30}", f"y1 > {lo}", f"id = {rng.randint(1, 10)}",
                           f"x0 < {lo} AND y0 > {lo // 2}"])
    col, typ = rng.choice(t.cols)
    if typ in ("int", "real"):
        return rng.choice([f"{col} > {val(rng, typ)}", f"{col} BETWEEN {rng.randint(-2, 10)} AND {rng.randint(10, 50)}",
                           f"{col} IS NULL", f"{col} % 3 = {rng.randint(0, 2)}", f"{col} IN (1, 2, 3, 5, 8)"])
    if typ == "json":
        return f"json_extract({col}, '$.k') = {rng.randint(0, 9)}"
    if typ == "blob":
        return f"length({col}) > {rng.randint(0, 3)}"
    return rng.choice([f"{col} LIKE {q(rng.choice('abghlprw') + '%')}", f"{col} > {q(rng.choice(WORDS))}",
                       f"{col} IS NOT NULL", f"{col} GLOB '*a*'"])


# ---------------------------------------------------------------- productions


class Gen:
    def __init__(self, rng: random.Random, spec: FixtureSpec, f: Features):
        self.r, self.spec, self.f = rng, spec, f
        self.m = Model(spec, f)

    def C(self, sql: str, kind: str, mode: str = QO, deps=frozenset(), mods=frozenset(), **kw) -> Cmd:
        if kind.startswith(("temp.", "local.", "dml.", "ddl.")):
            mods = frozenset(mods) | {"chg"}  # total_changes(), last_insert_rowid(): shadow tables too
        if "RETURNING" in sql:
            kw["unordered"] = True
        if kind.startswith(("dml.main", "dml.attached", "dml.schema", "ddl.main", "ddl.attached", "maint.",
                            "pragma.file_write", "tx.begin_write")):
            kw["guarded_write"] = True
        return Cmd(B(sql), kind, mode, frozenset(deps), frozenset(mods), **kw)

    # --- reads -------------------------------------------------------------

    def select_table(self) -> Cmd:
        r = self.r
        t = r.choice(self.m.readable())
        cols = "*" if r.random() < 0.4 else ", ".join(r.sample([c for c, _ in t.cols], r.randint(1, len(t.cols))))
        if t.module in ("fts5", "fts4", "fts3") and cols == "*":
            cols = "rowid, *"
        w = f" WHERE {pred(r, t)}" if r.random() < 0.7 else ""
        lim = f" LIMIT {r.randint(1, 10)}" if r.random() < 0.2 else ""
        kind = "select." + t.module
        return self.C(f"SELECT {cols} FROM {t.name}{w} ORDER BY {t.order}{lim}", kind, deps=t.deps)

    def select_fts(self) -> Cmd:
        r = self.r
        fts = [t for t in self.m.readable() if t.module in ("fts5", "fts4", "fts3")]
        if not fts:
            return self.select_table()
        t = r.choice(fts)
        name = t.name.split(".")[-1]
        w = q(r.choice(WORDS[:12]))
        if t.module == "fts5":
            sql = r.choice([
                f"SELECT rowid, highlight({name}, 0, '[', ']') FROM {t.name} WHERE {name} MATCH {w} ORDER BY rowid",
                f"SELECT rowid, round(bm25({name}), 3) FROM {t.name}({w}) ORDER BY rowid",
                f"SELECT snippet({name}, -1, '<', '>', '..', 4) FROM {t.name} WHERE {name} MATCH {w} ORDER BY rank, rowid",
                f"SELECT count(*) FROM {t.name} WHERE {name} MATCH {q(r.choice(WORDS[:12]) + ' OR ' + r.choice(WORDS[:12]))}",
            ])
        else:
            sql = r.choice([
                f"SELECT rowid, snippet({name}) FROM {t.name} WHERE {name} MATCH {w} ORDER BY rowid",
                f"SELECT rowid, offsets({name}) FROM {t.name} WHERE body MATCH {w} ORDER BY rowid",
                f"SELECT hex(matchinfo({name})) FROM {t.name} WHERE {name} MATCH {w} ORDER BY rowid",
                f"SELECT count(*) FROM {t.name} WHERE {name} MATCH {q(r.choice(WORDS[:12]) + '*')}",
            ])
        return self.C(sql, "select.fts", deps=t.deps)

    def select_join(self) -> Cmd:
        r = self.r
        others = [t for t in self.m.readable() if t.module == "table" and t.name not in ("t1",)]
        o = r.choice(others) if others else None
        if o is None or r.random() < 0.4:
            sql = r.choice([
                "SELECT t1.id, t1.a, t2.k FROM t1 JOIN t2 ON t2.t1id = t1.id ORDER BY t1.id, t2.k",
                "SELECT t1.b, count(*), group_concat(t2.k) FROM t1 LEFT JOIN t2 ON t2.t1id = t1.id GROUP BY t1.b ORDER BY 1",
                "SELECT id, a FROM t1 WHERE id IN (SELECT t1id FROM t2) ORDER BY id",
                "SELECT * FROM v1 ORDER BY id, k",
                "SELECT (SELECT count(*) FROM t2 WHERE t2.t1id = t1.id) AS n, id FROM t1 ORDER BY n DESC, id LIMIT 5",
            ])
            return self.C(sql, "select.join", deps=T("n:t1", "n:t2", "n:v1"))
        c0 = o.cols[0][0]
        sql = f"SELECT t1.id, x.{c0} FROM t1 JOIN {o.name} AS x ON x.{c0} = t1.id ORDER BY 1, 2"
        return self.C(sql, "select.join", deps=o.deps | T("n:t1"))

    def select_misc(self) -> Cmd:
        r = self.r
        opts = [
            ("WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 6) "
             "SELECT n, (SELECT count(*) FROM t1 WHERE b > n) FROM c", T("n:t1")),
            ("SELECT b, count(*), sum(c), min(a), max(a) FROM t1 GROUP BY b HAVING count(*) > 0 ORDER BY b", T("n:t1")),
            ("SELECT sqlite_version() = sqlite_version(), typeof(1.5), 7 / 2, 'x' || 1", T()),
            # Not changes(): a write refused at prepare time (guard) leaves it alone, one
            # refused at run time (query_only) resets it to 0.
            ("SELECT total_changes(), last_insert_rowid()", T("chg")),
            ("SELECT count(*), sum(length(v)) FROM t2", T("n:t2")),
            ("SELECT id FROM t1 EXCEPT SELECT t1id FROM t2 ORDER BY 1", T("n:t1", "n:t2")),
            ("SELECT DISTINCT b FROM t1 ORDER BY b DESC", T("n:t1")),
            ("SELECT msg FROM log ORDER BY id DESC LIMIT 3", T("n:log")),
            ("SELECT printf('%05d|%s', id, upper(a)) FROM t1 ORDER BY id LIMIT 4", T("n:t1")),
        ]
        if self.f.window:
            opts.append(("SELECT id, sum(b) OVER (ORDER BY id ROWS 2 PRECEDING), rank() OVER (ORDER BY b) FROM t1 ORDER BY id", T("n:t1")))
        if self.f.arrow:
            opts.append(("SELECT id, j ->> '$.k', j -> '$.l' FROM t1 ORDER BY id", T("n:t1")))
        sql, deps = r.choice(opts)
        return self.C(sql, "select.misc", deps=deps)

    def select_json(self) -> Cmd:
        if not self.f.json:
            return self.select_misc()
        r = self.r
        sql = r.choice([
            "SELECT key, value, type, fullkey FROM json_each('[1, 2.5, \"x\", null, {\"a\": [3]}]')",
            "SELECT key, value, type, path FROM json_tree('{\"a\": {\"b\": [1, 2]}, \"c\": true}') ORDER BY id",
            "SELECT t1.id, e.value FROM t1, json_each(t1.j, '$.l') AS e WHERE t1.id < 5 ORDER BY t1.id, e.key",
            "SELECT count(*) FROM t1, json_tree(t1.j)",
            f"SELECT value FROM json_each(json_array({r.randint(0, 9)}, 'a', json('{{\"z\":1}}')))",
        ])
        return self.C(sql, "select.json", deps=T("n:t1"))

    def select_pragma_fn(self) -> Cmd:
        r = self.r
        m = self.m
        al = None
        if m.aliases and r.random() < 0.3:
            al = r.choice(list(m.aliases.values()))
        opts = [
            ("SELECT name, type, pk FROM pragma_table_info('t1') ORDER BY cid", T("n:t1")),
            ("SELECT * FROM pragma_index_list('t1') ORDER BY name", T("n:t1")),
            ("SELECT * FROM pragma_index_info('t1_b')", T("n:t1")),
            ("SELECT * FROM pragma_foreign_key_list('t2')", T("n:t2")),
            ("SELECT name, file FROM pragma_database_list ORDER BY seq", T("dblist")),
            ("SELECT * FROM pragma_collation_list ORDER BY name", T()),
            ("SELECT count(*) FROM pragma_compile_options", T()),
            ("SELECT p.name, i.name FROM sqlite_master AS p, pragma_index_list(p.name) AS i WHERE p.type = 'table' ORDER BY 1, 2",
             T("s:main")),
        ]
        if self.f.table_list:
            opts.append(("SELECT schema, name, type, ncol FROM pragma_table_list ORDER BY schema, name", T("s:*", "dblist", "plan")))
        sql, deps = r.choice(opts)
        if al is not None and "pragma_database_list" not in sql and "sqlite_master" not in sql:
            tabs = [t.name.split(".")[-1] for t in al.tables if t.module == "table"]
            if tabs:
                sql = f"SELECT * FROM pragma_table_info({q(tabs[0])}, {q(al.key)})"
                deps = T("a:" + al.key, al.file)
        return self.C(sql, "select.pragma_fn", deps=deps)

    def select_schema(self) -> Cmd:
        r = self.r
        m = self.m
        master = "sqlite_schema" if self.f.sqlite_schema and r.random() < 0.6 else "sqlite_master"
        opts = [
            (f"SELECT type, name, tbl_name, sql FROM {master} ORDER BY type, name", T("s:main")),
            (f"SELECT count(*) FROM {master} WHERE type = 'table'", T("s:main")),
            ("SELECT type, name, sql FROM sqlite_temp_master ORDER BY name", T("s:temp")),
            # What the sqlite3 CLI's .schema runs (simplified).
            ("SELECT sql FROM (SELECT sql, type, tbl_name, name FROM sqlite_master UNION ALL "
             "SELECT sql, type, tbl_name, name FROM sqlite_temp_master) WHERE type != 'meta' AND sql NOTNULL "
             "AND name NOT LIKE 'sqlite_%' ORDER BY tbl_name, type DESC, name", T("s:main", "s:temp")),
        ]
        if m.aliases:
            al = r.choice(list(m.aliases.values()))
            opts.append((f"SELECT type, name FROM {al.sql}.sqlite_master ORDER BY name", T("a:" + al.key, "s:" + al.key, al.file)))
        sql, deps = r.choice(opts)
        return self.C(sql, "select.schema", deps=deps)

    def select_dbstat(self) -> Cmd:
        if not self.f.dbstat:
            return self.select_misc()
        sql = self.r.choice([
            "SELECT name, count(*) FROM dbstat GROUP BY name ORDER BY name",
            "SELECT count(*) FROM dbstat WHERE name = 't1'",
            "SELECT sum(pgsize) > 0 FROM dbstat('main')",
        ])
        return self.C(sql, "select.dbstat", deps=T("s:main", "n:t1"))

    def explain(self) -> Cmd:
        r = self.r
        if r.random() < 0.6:
            sel = self.select_table()
            pre = r.choice(["EXPLAIN QUERY PLAN ", "EXPLAIN "])
            # Bytecode names databases by index: it depends on the attach order too.
            return self.C(pre + sel.sql.decode("utf-8", "surrogateescape"), "explain.read", deps=sel.deps | T("dbl", "plan"))
        w = self.write_main()
        return self.C("EXPLAIN " + w.sql.decode("utf-8", "surrogateescape"), "explain.write", deps=w.deps | T("dbl", "plan"))

    PRAGMA_READS = [
        ("user_version", True), ("application_id", True), ("schema_version", True), ("data_version", True),
        ("page_count", True), ("page_size", True), ("freelist_count", True), ("auto_vacuum", True),
        ("encoding", False), ("integrity_check", True), ("quick_check", True), ("foreign_key_check", True),
        ("table_info(t1)", True), ("table_xinfo(t2)", True), ("index_list(t1)", True), ("index_info(t1_a)", True),
        ("index_xinfo(t1_b)", True), ("foreign_key_list(t2)", True), ("collation_list", False),
        ("database_list", False), ("compile_options", False), ("journal_mode", True), ("locking_mode", True),
        ("cache_size", True), ("foreign_keys", False), ("busy_timeout", False), ("synchronous", True),
        ("recursive_triggers", False), ("wal_autocheckpoint", False), ("journal_size_limit", True),
        ("max_page_count", True), ("secure_delete", True), ("cell_size_check", False), ("temp_store", False),
        ("writable_schema", False), ("automatic_index", False),
        ("case_sensitive_like", False), ("mmap_size", True), ("cache_spill", False),
    ]

    def pragma_read(self) -> Cmd:
        r = self.r
        p, schema_ok = r.choice(self.PRAGMA_READS)
        name = p.split("(")[0]
        deps = {"p:" + name}
        if name in ("journal_mode",):
            deps.add("jm")
        if name == "locking_mode":
            deps.add("lm")
        if name in ("cache_spill", "cache_size"):
            deps |= {"p:cache_size", "p:cache_spill"}
        if name in ("database_list",):
            deps.add("dblist")
        if name in ("table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list",
                    "integrity_check", "quick_check", "foreign_key_check", "schema_version", "page_count",
                    "freelist_count"):
            deps.add("s:main")
        pre = ""
        if schema_ok and r.random() < 0.3:
            choices = ["main"] + [a.sql for a in self.m.aliases.values() if "(" not in p or a.target == "app"]
            s = r.choice(choices)
            pre = s + "."
            if s != "main":
                al = next(a for a in self.m.aliases.values() if a.sql == s)
                deps |= {"a:" + al.key, al.file}
        return self.C(f"PRAGMA {pre}{p}", "pragma.read", deps=deps)

    # Connection-state pragmas: stock+query_only answers them; so must the guard.
    def pragma_conn(self) -> Cmd:
        r = self.r
        name, v = r.choice([
            ("cache_size", str(r.choice([-2000, 100, 500]))), ("foreign_keys", r.choice(["ON", "OFF"])),
            ("busy_timeout", str(r.choice([0, 10, 100]))), ("synchronous", r.choice(["OFF", "NORMAL", "FULL"])),
            ("recursive_triggers", r.choice(["ON", "OFF"])), ("wal_autocheckpoint", str(r.choice([0, 100, 1000]))),
            ("journal_size_limit", str(r.choice([-1, 0, 65536]))), ("mmap_size", str(r.choice([0, 1 << 20]))),
            ("max_page_count", str(r.choice([1000, 1 << 20]))), ("secure_delete", r.choice(["ON", "OFF"])),
            ("cell_size_check", r.choice(["ON", "OFF"])), ("case_sensitive_like", r.choice(["ON", "OFF"])),
            ("automatic_index", r.choice(["ON", "OFF"])),
            ("writable_schema", r.choice(["ON", "OFF", "RESET"])), ("cache_spill", r.choice(["ON", "OFF"])),
            ("analysis_limit", str(r.choice([0, 100]))), ("trusted_schema", r.choice(["ON", "OFF"])),
            ("locking_mode", "NORMAL"), ("threads", "0"), ("legacy_alter_table", r.choice(["ON", "OFF"])),
            ("ignore_check_constraints", r.choice(["ON", "OFF"])),
        ])
        tok = {"p:" + name} | ({"lm"} if name == "locking_mode" else set())
        if name == "writable_schema" and v == "RESET":
            return self.C("PRAGMA writable_schema=RESET", "pragma.conn", deps=tok, mods=tok)
        return self.C(f"PRAGMA {name}={v}", "pragma.conn", deps=tok, mods=tok)

    # --- writes to guarded databases (stock+query_only refuses them) ---------

    def dml(self, t: Tab, kind: str) -> Cmd:
        r = self.r
        name = t.name
        base = name.split(".")[-1]
        muts = set(t.deps) | {"chg"}
        if base == "t1":
            muts |= {"n:log", "n:sqlite_sequence"}
        if t.module in ("fts5", "fts4", "fts3"):
            cols = [c for c, _ in t.cols]
            sql = r.choice([
                f"INSERT INTO {name}({', '.join(cols)}) VALUES({', '.join(q(r.choice(WORDS)) for _ in cols)})",
                f"DELETE FROM {name} WHERE rowid = {r.randint(1, 6)}",
                f"UPDATE {name} SET {cols[-1]} = {q(r.choice(WORDS))} WHERE rowid = {r.randint(1, 6)}",
                f"INSERT INTO {name}({base}) VALUES('optimize')",
                f"INSERT INTO {name}({base}) VALUES({q('integrity-check' if t.module == 'fts5' else 'rebuild')})",
            ])
            return self.C(sql, kind, deps=t.deps, mods=muts)
        if t.module == "rtree":
            x = r.randint(0, 90)
            sql = r.choice([
                f"INSERT INTO {name} VALUES({r.randint(1, 40)}, {x}, {x + 3}, {x}, {x + 5})",
                f"DELETE FROM {name} WHERE id = {r.randint(1, 10)}",
                f"UPDATE {name} SET x1 = x1 + 1 WHERE id = {r.randint(1, 10)}",
            ])
            return self.C(sql, kind, deps=t.deps, mods=muts)
        cols = [(c, ty) for c, ty in t.cols]
        ins_cols = [c for c, _ in cols]
        values = "(" + ", ".join(val(r, ty) for _, ty in cols) + ")"
        ret = " RETURNING *" if self.f.returning and r.random() < 0.2 and t.module != "view" else ""
        c1, ty1 = r.choice(cols)
        forms = [
            f"INSERT INTO {name}({', '.join(ins_cols)}) VALUES{values}{ret}",
            f"INSERT OR IGNORE INTO {name} VALUES{values}",
            f"REPLACE INTO {name} VALUES{values}",
            f"UPDATE {name} SET {c1} = {val(r, ty1)} WHERE {pred(r, t)}{ret}",
            f"DELETE FROM {name} WHERE {pred(r, t)}{ret}",
            f"DELETE FROM {name} WHERE 0",
            f"UPDATE {name} SET {c1} = {c1} WHERE 0",
            f"INSERT INTO {name}({ins_cols[-1]}) SELECT a FROM t1 WHERE 0",
            f"WITH c(x) AS (SELECT 1) INSERT INTO {name}({ins_cols[-1]}) SELECT x FROM c",
        ]
        if t.pk:
            forms.append(f"INSERT INTO {name}({', '.join(ins_cols)}) VALUES{values} ON CONFLICT({t.pk}) DO UPDATE SET "
                         f"{c1} = excluded.{c1}{ret}" if c1 != t.pk else
                         f"INSERT INTO {name}({', '.join(ins_cols)}) VALUES{values} ON CONFLICT DO NOTHING")
        if t.module == "view":
            forms = [f"INSERT INTO {name}(a) VALUES({q(r.choice(WORDS) + str(r.randint(100, 999)))})"]
        return self.C(r.choice(forms), kind, deps=t.deps, mods=muts)

    def write_main(self) -> Cmd:
        r = self.r
        tabs = [t for t in self.m.main_tables() if t.module != "stat"]
        return self.dml(r.choice(tabs), "dml.main")

    def write_alias(self) -> Cmd:
        r = self.r
        als = [a for a in self.m.aliases.values() if a.tables]
        if not als:
            return self.write_main()
        a = r.choice(als)
        t = r.choice([t for t in a.tables if t.module != "stat"] or a.tables)
        if a.guarded:
            return self.dml(t, "dml.attached")
        c = self.dml(t, "dml.local")
        return dataclasses.replace(c, mode=self.m.local_mode())

    def ddl_main(self) -> Cmd:
        r = self.r
        m = self.m
        schema = ""
        guarded_aliases = [a for a in m.aliases.values() if a.guarded]
        if guarded_aliases and r.random() < 0.25:
            schema = r.choice(guarded_aliases).sql + "."
        new = m.fresh("n")
        ine = " IF NOT EXISTS" if r.random() < 0.5 else ""
        ie = " IF EXISTS" if r.random() < 0.5 else ""
        exist_t = r.choice(["t1", "t2", "log"] + list(self.spec.vtabs))
        fts = self.f.fts5
        forms = [
            f"CREATE TABLE{ine} {schema}{new}(a INTEGER PRIMARY KEY, b TEXT)",
            f"CREATE TABLE{ine} {schema}{r.choice(['t1', 't2', 'log'])}(a, b)",  # exists: a no-op with IF NOT EXISTS
            f"CREATE TABLE {schema}{new} AS SELECT id, a FROM t1",
            f"CREATE INDEX{ine} {schema}{r.choice(['t1_b', new])} ON t1(b)",
            f"CREATE UNIQUE INDEX{ine} {schema}t1_a ON t1(a)",
            f"CREATE VIEW{ine} {schema}{r.choice(['v1', new])} AS SELECT 1 AS x",
            f"CREATE TRIGGER{ine} {schema}{r.choice(['trg_t1_u', new])} AFTER DELETE ON t1 BEGIN SELECT 1; END",
            f"DROP TABLE{ie} {schema}{r.choice([exist_t, new])}",
            f"DROP INDEX{ie} {schema}{r.choice(['t1_b', new])}",
            f"DROP VIEW{ie} {schema}{r.choice(['v1', new])}",
            f"DROP TRIGGER{ie} {schema}{r.choice(['trg_t1_u', new])}",
            f"ALTER TABLE {schema}t1 ADD COLUMN {new} TEXT",
            f"ALTER TABLE {schema}log RENAME TO {new}",
            f"ALTER TABLE {schema}t1 RENAME COLUMN c TO {new}",
        ]
        if self.f.drop_column:
            forms.append(f"ALTER TABLE {schema}t1 DROP COLUMN c")
        if fts:
            forms.append(f"CREATE VIRTUAL TABLE{ine} {schema}{r.choice(['ft5', new])} USING fts5(x)")
        if self.f.rtree:
            forms.append(f"CREATE VIRTUAL TABLE{ine} {schema}{r.choice(['rt', new])} USING rtree(id, a, b)")
        if self.f.strict:
            forms.append(f"CREATE TABLE{ine} {schema}{new}(a INT) STRICT")
        sql = r.choice(forms)
        kind = "ddl.main" if not schema else "ddl.attached"
        # Unqualified DDL on existing names may resolve against TEMP.
        return self.C(sql, kind, deps=T("s:main", "n:" + exist_t, "n:t1"),
                      mods=T("s:main", "n:" + new, "n:" + exist_t, "n:t1", "n:log", "n:v1", "dblist"))

    def maintenance(self) -> Cmd:
        r = self.r
        m = self.m
        guarded = [a.sql for a in m.aliases.values() if a.guarded]
        forms = [
            ("VACUUM", "maint.vacuum"), ("VACUUM main", "maint.vacuum"),
            ("VACUUM INTO '@R@/mount/@NEW@'", "maint.vacuum_into_mount"),
            ("REINDEX", "maint.reindex"), ("REINDEX t1", "maint.reindex"), ("REINDEX t1_b", "maint.reindex"),
            ("REINDEX NOCASE", "maint.reindex"),
            ("ANALYZE", "maint.analyze"), ("ANALYZE main", "maint.analyze"), ("ANALYZE t1", "maint.analyze"),
            ("PRAGMA optimize", "maint.optimize"), ("PRAGMA optimize(0x10002)", "maint.optimize"),
            (f"PRAGMA incremental_vacuum({r.randint(0, 3)})", "maint.incremental_vacuum"),
            (f"PRAGMA user_version={r.randint(0, 99)}", "pragma.file_write"),
            (f"PRAGMA application_id={r.randint(0, 99)}", "pragma.file_write"),
            (f"PRAGMA default_cache_size={r.choice([100, 2000])}", "pragma.file_write"),
            (f"PRAGMA page_size={r.choice([1024, 4096, 8192])}", "pragma.file_setting"),
            (f"PRAGMA auto_vacuum={r.choice(['NONE', 'FULL', 'INCREMENTAL'])}", "pragma.file_setting"),
            (f"PRAGMA encoding={r.choice(['UTF8', 'UTF16le'])}", "pragma.file_setting"),
            ("UPDATE sqlite_master SET sql = sql WHERE name = 't1'", "dml.schema"),
            (r.choice(["BEGIN IMMEDIATE", "BEGIN EXCLUSIVE"]), "tx.begin_write"),
        ]
        if guarded:
            a = r.choice(guarded)
            forms += [(f"VACUUM {a}", "maint.vacuum"), (f"ANALYZE {a}", "maint.analyze"),
                      (f"PRAGMA {a}.user_version={r.randint(0, 9)}", "pragma.file_write"),
                      (f"PRAGMA {a}.incremental_vacuum", "maint.incremental_vacuum")]
        sql, kind = r.choice(forms)
        new_file = None
        if "@NEW@" in sql:
            new_file = m.fresh("vac") + ".db"
            sql = sql.replace("@NEW@", new_file)
            new_file = B(new_file)
        # default_cache_size, page_size, auto_vacuum and encoding change the connection while
        # they are prepared, before query_only can refuse anything; the guard refuses earlier.
        volatile = "default_cache_size" in sql or kind == "pragma.file_setting"
        if kind == "tx.begin_write":
            mods = T("tx")
        elif volatile:
            name = sql.split(".")[-1].split("=")[0].replace("PRAGMA ", "")
            mods = T("p:" + name)
            if name == "default_cache_size":
                mods = T("p:cache_size", "p:cache_spill")
        else:
            # What it would change if it landed (refused on both sides, nothing changes).
            mods = T("s:main", "n:t1", "n:sqlite_stat1", "p:user_version", "p:application_id", "p:schema_version",
                     "p:page_count", "p:freelist_count", "p:data_version")
        # VACUUM fails inside a transaction, and when ten databases are attached.
        deps = T("s:main", "tx", "dbl") if "VACUUM" in sql else T("s:main")
        if kind == "maint.optimize":
            # What optimize finds to analyze depends on every attached database and on
            # what the planner has seen (a statement refused at prepare never ran).
            deps = deps | T("s:*", "dbl", "plan")
        return self.C(sql, kind, deps=deps, mods=mods, new_file=new_file, volatile=volatile)

    # --- writes the guard allows: TEMP and unguarded databases ---------------

    def temp_write(self) -> Cmd:
        r = self.r
        m = self.m
        mode = m.local_mode()
        choice = r.random()
        if not m.temp or choice < 0.25:
            name = m.fresh("tt")
            form = r.random()
            if form < 0.5:
                sql = f"CREATE TEMP TABLE {name}(x INTEGER PRIMARY KEY, y TEXT, z INT)"
            elif form < 0.75:
                sql = f"CREATE TABLE temp.{name}(x INTEGER PRIMARY KEY, y TEXT, z INT)"
            else:
                sql = f"CREATE TEMP TABLE {name} AS SELECT id AS x, a AS y, b AS z FROM t1 WHERE {pred(r, m.main_tables()[0])}"
            m.temp.append(Tab("temp." + name, [("x", "int"), ("y", "text"), ("z", "int")], "x",
                              T("n:" + name), local=True, pk="x"))
            return self.C(sql, "temp.ddl", mode, deps=T("n:t1"), mods=T("n:" + name, "s:temp"))
        plain = [t for t in m.temp if t.module == "table"]
        if choice < 0.35 and plain:
            t = r.choice(plain)
            base = t.name.split(".")[-1]
            sub = r.random()
            if sub < 0.3:
                v = m.fresh("tv")
                m.temp_views.append(v)
                m.temp.append(Tab("temp." + v, [("x", "int"), ("y", "text")], "x, y", T("n:" + v, "n:" + base, "n:t1"), "view", local=True))
                return self.C(f"CREATE TEMP VIEW {v} AS SELECT x, y FROM {t.name} UNION ALL SELECT id, a FROM main.t1",
                              "temp.ddl", mode, deps=T("n:" + base), mods=T("n:" + v, "s:temp"))
            if sub < 0.5:
                i = m.fresh("ti")
                m.temp_indexes.append(i)
                m.owner[i] = base
                return self.C(f"CREATE INDEX temp.{i} ON {base}(z)", "temp.ddl", mode, deps=T("n:" + base),
                              mods=T("n:" + i, "s:temp", "n:" + base))
            if sub < 0.75:
                g = m.fresh("tg")
                other = r.choice(plain).name.split(".")[-1]
                m.temp_triggers.append(g)
                m.owner[g] = base
                m.trig_writes.setdefault(base, set()).add(other)
                return self.C(f"CREATE TEMP TRIGGER {g} AFTER INSERT ON {base} BEGIN "
                              f"UPDATE {other} SET z = coalesce(z, 0) + 1 WHERE x = new.x; END",
                              "temp.ddl", mode, deps=T("n:" + base, "n:" + other), mods=T("n:" + g, "s:temp", "n:" + base))
            # A TEMP trigger on a main table: writes only the temp schema; its body runs
            # only when the main table is written, which is refused.
            g = m.fresh("tg")
            m.temp_triggers.append(g)
            m.owner[g] = "t1"
            return self.C(f"CREATE TEMP TRIGGER {g} AFTER UPDATE ON main.t1 BEGIN "
                          f"INSERT INTO {base}(y) VALUES('t1 ' || new.id); END",
                          "temp.trigger_on_main", mode, deps=T("n:t1", "n:" + base), mods=T("n:" + g, "s:temp", "n:t1"))
        if choice < 0.45:
            # TEMP virtual tables (the constructor runs SQLite's own statements).
            opts = []
            if self.f.fts5:
                opts.append(("fts5", "USING fts5(y)"))
            if self.f.rtree:
                opts.append(("rtree", "USING rtree(id, a, b)"))
            if self.f.fts4:
                opts.append(("fts4", "USING fts4(y)"))
            if self.f.fts5vocab and "ft5" in self.spec.vtabs:
                opts.append(("vocab", f"USING fts5vocab(main, ft5, {q(r.choice(['row', 'col', 'instance']))})"))
            if opts:
                mod, using = r.choice(opts)
                name = m.fresh("tvt")
                if mod == "rtree":
                    cols = [("id", "int"), ("a", "real"), ("b", "real")]
                    order = "id"
                elif mod == "vocab":
                    cols = [("term", "text")]
                    order = "term"
                else:
                    cols = [("y", "text")]
                    order = "rowid"
                extra = T("n:ft5") if mod == "vocab" else T()
                m.temp.append(Tab("temp." + name, cols, order, T("n:" + name) | extra, mod, local=True))
                return self.C(f"CREATE VIRTUAL TABLE temp.{name} {using}", "temp.vtab", mode, deps=extra,
                              mods=T("n:" + name, "s:temp"))
        if choice < 0.52:
            drops = [(t.name, "TABLE") for t in m.temp if t.module != "view"] + [(v, "VIEW") for v in m.temp_views] + \
                    [(g, "TRIGGER") for g in m.temp_triggers] + [("temp." + i, "INDEX") for i in m.temp_indexes]
            if drops:
                name, what = r.choice(drops)
                base = name.split(".")[-1]
                # Dropping a table drops its indexes and triggers too.
                gone = {base} | {x for x, o in m.owner.items() if o == base}
                m.temp = [t for t in m.temp if t.name.split(".")[-1] not in gone]
                for lst in (m.temp_views, m.temp_triggers, m.temp_indexes):
                    lst[:] = [x for x in lst if x not in gone]
                deps = {"n:" + base} | ({"n:" + m.owner[base]} if base in m.owner else set())
                return self.C(f"DROP {what} {name}", "temp.ddl", mode, deps=deps,
                              mods=frozenset("n:" + x for x in gone) | {"s:temp"})
        writable = [t for t in m.temp if t.module != "view" and t.module != "vocab"]
        if not writable:
            return self.select_table()
        t = r.choice(writable)
        c = self.dml(t, "temp.dml")
        fired = frozenset("n:" + x for x in m.trig_writes.get(t.name.split(".")[-1], set()))
        return dataclasses.replace(c, mode=mode, deps=c.deps | fired, mods=c.mods | fired)

    def local_other(self) -> Cmd:
        r = self.r
        m = self.m
        mode = m.local_mode()
        local = [a for a in m.aliases.values() if not a.guarded and not a.readonly]
        forms = [
            (f"VACUUM INTO {q('@R@/outside/' + m.fresh('vac') + '.db')}", "local.vacuum_into", T("s:main", "tx", "dbl"), T()),
            ("ANALYZE temp", "local.analyze", T("s:temp"), T("s:temp", "n:sqlite_stat1")),
        ]
        if local:
            a = r.choice(local)
            name = m.fresh("l")
            forms += [
                (f"CREATE TABLE {a.sql}.{name}(x INTEGER PRIMARY KEY, y TEXT)", "local.ddl", T("a:" + a.key, a.file),
                 T("a:" + a.key, "s:" + a.key, a.file)),
                (f"VACUUM {a.sql}", "local.vacuum", T("a:" + a.key, a.file, "tx", "dbl"), T()),
                (f"ANALYZE {a.sql}", "local.analyze", T("a:" + a.key, a.file), T("a:" + a.key, a.file)),
                (f"PRAGMA {a.sql}.user_version={r.randint(1, 9)}", "local.pragma", T("a:" + a.key, a.file),
                 T("a:" + a.key, a.file)),
            ]
            sql, kind, deps, mods = r.choice(forms)
            if kind == "local.ddl":
                a.tables.append(Tab(f"{a.sql}.{name}", [("x", "int"), ("y", "text")], "x",
                                    T("a:" + a.key, "n:" + name, a.file), local=True, pk="x"))
            return self.C(sql, kind, mode, deps=deps, mods=mods)
        sql, kind, deps, mods = r.choice(forms)
        return self.C(sql, kind, mode, deps=deps, mods=mods)

    # --- pragmas around journal and locking modes --------------------------

    def pragma_mode(self) -> Cmd:
        r = self.r
        m = self.m
        rollback = self.spec.journal == "rollback"
        x = r.random()
        if x < 0.3:
            target = r.choice(["WAL", "DELETE", "TRUNCATE", "PERSIST", "MEMORY", "OFF", "wal", "delete"])
            cur = "delete" if rollback else "wal"
            t = target.lower()
            pre = r.choice(["", "", "main."])
            sql = f"PRAGMA {pre}journal_mode={target}"
            # Unqualified, it sets every attached database's mode: never a no-op for sure.
            if t == cur and pre:
                return self.C(sql, "pragma.journal_mode.same", deps=T("jm"), mods=T("jm"))
            if rollback and t != "wal" and (pre or not m.aliases):
                return self.C(sql, "pragma.journal_mode.rollback", deps=T("jm"), mods=T("jm"))
            # Entering or leaving WAL rewrites the header: query_only does not stop it.
            return self.C(sql, "pragma.journal_mode.switch", SKIP, deps=T("jm"), mods=T("jm", "s:main"), probe=True)
        if x < 0.45:
            guarded = [a.sql for a in m.aliases.values() if a.guarded]
            pre = r.choice(["", "main."] + [g + "." for g in guarded])
            arg = r.choice(["", "(PASSIVE)", "(FULL)", "(RESTART)", "(TRUNCATE)"])
            return self.C(f"PRAGMA {pre}wal_checkpoint{arg}", "pragma.wal_checkpoint", SKIP, deps=T("tx"), probe=True)
        if x < 0.65:
            pre = r.choice(["", "main."])
            return self.C(f"PRAGMA {pre}locking_mode={r.choice(['EXCLUSIVE', 'exclusive'])}",
                          "pragma.locking_mode.exclusive", SKIP, deps=T("lm"), mods=T("lm", "dbl"))
        if x < 0.8:
            return self.C("PRAGMA locking_mode", "pragma.read", deps=T("lm"))
        v = r.choice([0, 1, 1])
        m.guard_query_only = bool(v)
        return self.C(f"PRAGMA query_only={v}", "pragma.query_only", SKIP, mods=T("qo"))

    # --- transactions --------------------------------------------------------

    def tx(self) -> Cmd:
        r = self.r
        m = self.m
        x = r.random()
        if m.in_tx and r.random() < 0.6:
            x = 0.6 + 0.4 * r.random()  # mostly end an open transaction
        if x < 0.3:
            m.in_tx = True
            return self.C(r.choice(["BEGIN", "BEGIN DEFERRED", "BEGIN TRANSACTION"]), "tx.begin", deps=T("tx"), mods=T("tx"))
        if x < 0.45:
            s = m.fresh("sp")
            m.savepoints.append(s)
            m.in_tx = True
            return self.C(f"SAVEPOINT {s}", "tx.savepoint", deps=T("tx"), mods=T("tx"))
        if x < 0.6 and m.savepoints:
            s = r.choice(m.savepoints)
            if r.random() < 0.5:
                m.savepoints = m.savepoints[: m.savepoints.index(s)]
                return self.C(f"RELEASE {s}", "tx.release", m.local_mode(), deps=T("tx"), mods=T("tx", "s:temp"))
            return self.C(f"ROLLBACK TO {s}", "tx.rollback_to", deps=T("tx"), mods=T("tx", "s:temp", "chg"))
        m.in_tx = False
        m.savepoints = []
        if x < 0.8:
            # With query_only off on stock: some TEMP writes are only flushed at COMMIT (FTS5's
            # pending data); writes to guarded files never got that far on stock.
            return self.C(r.choice(["COMMIT", "END"]), "tx.commit", m.local_mode(), deps=T("tx"), mods=T("tx", "s:temp"))
        return self.C("ROLLBACK", "tx.rollback", deps=T("tx"), mods=T("tx", "s:temp"))

    # --- ATTACH / DETACH ----------------------------------------------------

    # Odd schema names first; plain numbered ones when they are used up. A name is never
    # reused after DETACH: the DETACH may have failed on both sides (inside a transaction),
    # and the model must never believe a name is free (or unguarded) when it is not.
    ALIAS_NAMES = [
        ("a1", "a1"), ("aux", "aux"), ('"Aux Two"', "aux two"), ('"we ird"', "we ird"), ('"x""y"', 'x"y'),
        ('"\u00ff"', "\u00ff"), ('"\udcff"', "\udcff"), ('"\udcfe\udcff"', "\udcfe\udcff"), ("[brk]", "brk"),
        ("`bq`", "bq"), ('"main "', "main "), ('"TEMP2"', "temp2"),
    ] + [(f"d{i}", f"d{i}") for i in range(60)]

    def attach(self) -> Cmd:
        r = self.r
        m = self.m
        free = [(s, k) for s, k in self.ALIAS_NAMES if k not in m.used_aliases][:14]
        if not free or len(m.aliases) >= 8 or r.random() < 0.15:
            if m.aliases and r.random() < 0.8:
                return self.detach()
            if not free:
                return self.detach()
        sql_name, key = r.choice(free)
        # How the schema name is written in ATTACH: identifier, string, or expression.
        as_forms = [sql_name]
        if key == "\udcff":
            as_forms.append("CAST(x'ff' AS TEXT)")
        if key.isalnum():
            as_forms.append(q(key))
        as_sql = r.choice(as_forms)
        target = r.choices(["other", "app", "odd", "out", "link", "hard", "newm", "newo", "mem"],
                           [6, 4, 1, 3, 1, 1, 1, 1, 2])[0]
        paths = {
            "other": "@R@/mount/other.db", "app": "@R@/mount/app.db", "odd": "@R@/mount/x\udcff.db",
            "out": "@R@/outside/out.db", "link": "@R@/outside/link.db", "hard": "@R@/outside/hard.db",
            "newm": f"@R@/mount/{m.fresh('new')}.db", "newo": f"@R@/outside/{m.fresh('new')}.db",
        }
        kind = "attach.plain"
        readonly = False
        new_file = None
        if target == "mem":
            path = r.choice([":memory:", "", "file::memory:", f"file:{m.fresh('mem')}?mode=memory"])
        else:
            path = paths[target]
            style = r.random()
            if style < 0.35:
                pass
            elif style < 0.5 and target in ("other", "app", "out"):
                rel = path.replace("@R@/", "")
                path = r.choice([rel, "./" + rel, rel.replace("/", "//"), "@R@/outside/../" + rel])
            else:
                params = ["", "vfs=unix", "mode=ro", "mode=rw", "immutable=1", "cache=shared", "psow=0"]
                if target not in ("out", "newo"):
                    # Lock-less or exclusive VFSes only where they matter: on guarded files. On an
                    # unguarded file next to another alias of it they corrupt it in whichever run writes.
                    params += ["vfs=unix-none", "vfs=unix-excl", "vfs=unix-dotfile", "nolock=1", "vfs=unix&nolock=1",
                               "mode=ro&vfs=unix-none"]
                params = r.choice(params)
                path = "file:" + path.replace("%", "%25").replace("?", "%3f").replace("#", "%23") + (("?" + params) if params else "")
                if target not in ("out", "newo") and any(p in params for p in ("vfs=", "nolock")):
                    kind = "attach.bypass"
                readonly = "mode=ro" in params or "immutable" in params
        guarded = target in ("other", "app", "odd", "link", "hard", "newm")
        if target == "newm":
            kind = "attach.new_mount"
            new_file = B(paths["newm"].split("/")[-1])
        if target in ("newm", "newo"):
            ftok = "f:" + paths[target]
        elif target == "mem":
            ftok = "f:mem:" + key  # private to the alias (a named shared-cache memdb is fresh too)
        else:
            ftok = "f:" + {"link": "other", "hard": "other"}.get(target, target)
        tables = m.alias_tables(target, sql_name, key, ftok)
        m.aliases[key] = Alias(sql_name, key, target, guarded, readonly, tables, ftok)
        m.used_aliases.add(key)
        if any(p in path for p in ("vfs=", "nolock")):
            # Locks taken through another VFS may conflict with the main connection's own.
            for t in tables:
                t.deps = t.deps | T("tx")
        return self.C(f"ATTACH {q(path)} AS {as_sql}", kind, deps=T("tx", "dbl", "a:" + key),
                      mods=T("dbl", "dblist", "a:" + key), attach=True, new_file=new_file)

    def detach(self) -> Cmd:
        r = self.r
        m = self.m
        if not m.aliases or r.random() < 0.05:
            return self.C(f"DETACH {r.choice(['main', 'temp', 'nosuch'])}", "detach", deps=T("tx", "dbl"), mods=T("dbl", "dblist"))
        key = r.choice(list(m.aliases))
        a = m.aliases.pop(key)
        name = a.sql
        if key.isalpha() and r.random() < 0.3:
            name = key.upper()  # schema names are case-insensitive
        return self.C(f"DETACH DATABASE {name}", "detach", deps=T("tx", "dbl", "a:" + key), mods=T("dbl", "dblist", "a:" + key))

    # --- the mix -------------------------------------------------------------

    def one(self) -> Cmd:
        r = self.r
        prods = [
            (self.select_table, 12), (self.select_fts, 5), (self.select_join, 4), (self.select_misc, 4),
            (self.select_json, 3), (self.select_pragma_fn, 4), (self.select_schema, 4), (self.select_dbstat, 1),
            (self.explain, 2), (self.pragma_read, 6), (self.pragma_conn, 4),
            (self.write_main, 7), (self.write_alias, 4), (self.ddl_main, 6), (self.maintenance, 5),
            (self.temp_write, 9), (self.local_other, 2), (self.pragma_mode, 3), (self.tx, 5), (self.attach, 6),
        ]
        fn = r.choices([p for p, _ in prods], [w for _, w in prods])[0]
        return fn()


def generate(rng: random.Random, spec: FixtureSpec, f: Features, n: int) -> list[Cmd]:
    g = Gen(rng, spec, f)
    return [g.one() for _ in range(n)]
