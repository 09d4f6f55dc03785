// litefs_guard through better-sqlite3 (its own bundled SQLite).
// LITEFS_GUARD_SO names the extension (default: target/release of this repo).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Database = require('better-sqlite3');

const SO = process.env.LITEFS_GUARD_SO ||
  path.resolve(__dirname, '..', '..', 'target', 'release', 'liblitefs_guard.so');

for (const k of Object.keys(process.env)) {
  if (k.startsWith('LITEFS_GUARD_') && k !== 'LITEFS_GUARD_SO') delete process.env[k];
}

// Load once per process, on a throwaway connection, before any file is opened.
const boot = new Database(':memory:');
boot.loadExtension(SO);
boot.close();

const dirs = [];
test.after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function mount() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'litefs-guard-node-'));
  dirs.push(dir);
  const m = path.join(dir, 'litefs');
  fs.mkdirSync(m);
  const db = new Database(path.join(m, 'app.db'));
  db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('a'), ('b');");
  db.close();
  return { dir, m, dbPath: path.join(m, 'app.db') };
}

function replica(m, host = 'node-b') {
  fs.writeFileSync(path.join(m, '.primary'), host + '\n');
}

test('loadExtension works and new connections are guarded', () => {
  const { m, dbPath } = mount();
  const db = new Database(dbPath);
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  const cfg = JSON.parse(db.prepare('SELECT litefs_config() AS c').get().c);
  assert.equal(cfg.vfs, true);
  assert.equal(cfg.role, 'primary');
  assert.equal(cfg.mount_dir, m);
  db.close();
});

test('litefs_is_primary() and litefs_primary() follow the marker', () => {
  const { m, dbPath } = mount();
  const db = new Database(dbPath);
  const q = db.prepare('SELECT litefs_is_primary() AS p, litefs_primary() AS h');
  assert.deepEqual(q.get(), { p: 1, h: null });
  replica(m, 'node-b');
  assert.deepEqual(q.get(), { p: 0, h: 'node-b' });
  fs.unlinkSync(path.join(m, '.primary'));
  assert.deepEqual(q.get(), { p: 1, h: null });
  assert.throws(() => db.prepare('SELECT litefs_is_primary(1)').get(),
    { code: 'SQLITE_ERROR', message: 'litefs_is_primary() takes no arguments, got 1 argument(s)' });
  db.close();
});

test('a write on a replica throws SQLITE_AUTH (or SQLITE_READONLY) and changes nothing', () => {
  const { m, dbPath } = mount();
  replica(m);
  const db = new Database(dbPath);
  const before = fs.readFileSync(dbPath);
  for (const sql of ["INSERT INTO t(v) VALUES ('c')", 'UPDATE t SET v = 1', 'DELETE FROM t',
    'DROP TABLE t', 'PRAGMA user_version = 3']) {
    assert.throws(() => db.prepare(sql).run(), { code: 'SQLITE_AUTH', message: 'not authorized' }, sql);
  }
  // CREATE is refused by the lock gate, so `IF NOT EXISTS` on an existing table still works.
  assert.throws(() => db.prepare('CREATE TABLE u(x)').run(),
    { code: 'SQLITE_READONLY', message: 'attempt to write a readonly database' });
  db.prepare('CREATE TABLE IF NOT EXISTS t(x)').run();
  assert.throws(() => db.exec('DELETE FROM t'), { code: 'SQLITE_AUTH' });
  assert.deepEqual(db.prepare('SELECT v FROM t ORDER BY id').all(), [{ v: 'a' }, { v: 'b' }]);
  assert.ok(before.equals(fs.readFileSync(dbPath)));
  db.close();
});

test('reads, transactions and TEMP tables work on a replica', () => {
  const { m, dbPath } = mount();
  replica(m);
  const db = new Database(dbPath);
  assert.equal(db.prepare('SELECT count(*) AS n FROM t').get().n, 2);
  const tx = db.transaction(() => db.prepare('SELECT v FROM t WHERE id = 1').get().v);
  assert.equal(tx(), 'a');
  db.exec('CREATE TEMP TABLE s(x); INSERT INTO s SELECT v FROM t;');
  assert.equal(db.prepare('SELECT count(*) AS n FROM s').get().n, 2);
  db.close();
});

test('a statement prepared on the primary is refused after the flip', () => {
  const { m, dbPath } = mount();
  const db = new Database(dbPath);
  const ins = db.prepare('INSERT INTO t(v) VALUES (?)');
  ins.run('as primary');
  replica(m, 'node-c');
  assert.throws(() => ins.run('as replica'), (e) => e.code.startsWith('SQLITE_READONLY'));
  assert.throws(() => db.prepare("INSERT INTO t(v) VALUES ('x')").run(),
    (e) => e.code === 'SQLITE_AUTH' || e.code.startsWith('SQLITE_READONLY'));
  assert.equal(db.prepare('SELECT count(*) AS n FROM t').get().n, 3);
  db.close();
});
