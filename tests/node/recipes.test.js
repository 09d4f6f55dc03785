// README's Node recipe "read your own writes" (<!-- recipe: ryw-node -->),
// extracted and run as written against two stand-in nodes: plain
// directories (each database's directory is its mount), a primary and a
// replica (`.primary`), both at TXID 5 with table t(x). LiteFS's part is
// played by hand: the primary's app.db-pos goes to 6 as the recipe writes
// (written just before: what litefs_position() reads after COMMIT is all the
// recipe sees), and a child process with stock SQLite (the sqlite3 CLI, no
// guard) copies t into the replica after a delay, then writes its app.db-pos.
// A child, because better-sqlite3 blocks this thread while a read waits.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Database = require('better-sqlite3');

const ROOT = path.resolve(__dirname, '..', '..');
const SO = process.env.LITEFS_GUARD_SO || path.join(ROOT, 'target', 'release', 'liblitefs_guard.so');
for (const k of Object.keys(process.env)) {
  if (k.startsWith('LITEFS_GUARD_') && k !== 'LITEFS_GUARD_SO') delete process.env[k];
}
const boot = new Database(':memory:');
boot.loadExtension(SO);
boot.close();

const recipeText = execFileSync('bash', [path.join(ROOT, 'scripts', 'readme-snippet.sh'), 'ryw-node'], { encoding: 'utf8' });
const { write, readFloor } = new Function(`${recipeText}\nreturn { write, readFloor };`)();

const pos = (txid) => `${txid.toString(16).padStart(16, '0')}/83b05248774ce767`;
function writePos(db, txid) {
  fs.writeFileSync(`${db}-pos.tmp`, pos(txid) + '\n');
  fs.renameSync(`${db}-pos.tmp`, `${db}-pos`);
}

const dirs = [];
test.after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function nodes() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'litefs-guard-node-recipe-'));
  dirs.push(dir);
  const out = {};
  for (const [name, sub] of [['primary', 'a'], ['replica', 'b']]) {
    fs.mkdirSync(path.join(dir, sub, 'litefs'), { recursive: true });
    const db = path.join(dir, sub, 'litefs', 'app.db');
    const c = new Database(db);
    c.exec('CREATE TABLE t(x)');
    c.close();
    writePos(db, 5);
    out[name] = db;
  }
  fs.writeFileSync(path.join(path.dirname(out.replica), '.primary'), 'node-a\n');
  return out;
}

// In `delay` s the replica gets the primary's rows of t, then TXID `txid`.
function replicate(n, txid, delay) {
  const sql = `ATTACH '${n.primary}' AS p; BEGIN; DELETE FROM main.t; INSERT INTO main.t SELECT * FROM p.t; COMMIT;`;
  const script = `sleep ${delay} && sqlite3 "$1" "$2" && printf '%s\\n' "$3" > "$1-pos.tmp" && mv "$1-pos.tmp" "$1-pos"`;
  const child = spawn('bash', ['-c', script, 'replicate', n.replica, sql, pos(txid)], { stdio: 'inherit' });
  return new Promise((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`replicator exit ${code}`)))));
}

test('README recipe ryw-node: a lagging replica waits for the write', async () => {
  const n = nodes();
  const primary = new Database(n.primary);
  const replica = new Database(n.replica);
  writePos(n.primary, 6); // as LiteFS will at the recipe's COMMIT
  const position = write(primary, 'INSERT INTO t VALUES (?)', 'hello');
  assert.equal(position, pos(6));
  assert.deepEqual(replica.prepare('SELECT x FROM t').all(), [], 'the replica is behind');
  const done = replicate(n, 6, 0.3);
  readFloor(replica, position);
  const t0 = Date.now();
  assert.deepEqual(replica.prepare('SELECT x FROM t').all(), [{ x: 'hello' }]);
  assert.ok(Date.now() - t0 >= 250, `waited ${Date.now() - t0} ms`);
  await done;
  primary.close();
  replica.close();
});

test('README recipe ryw-node: a replica that stays behind throws SQLITE_LOCKED', () => {
  const n = nodes();
  const replica = new Database(n.replica);
  replica.pragma('litefs_wait_ms = 100');
  readFloor(replica, pos(6));
  assert.throws(() => replica.prepare('SELECT x FROM t').all(), { code: 'SQLITE_LOCKED' });
  readFloor(replica, pos(5)); // reached: reads (and the schema) work again
  const cfg = JSON.parse(replica.prepare('SELECT litefs_config() AS c').get().c);
  assert.match(cfg.last_refusal, /below the read floor TXID 6 \(PRAGMA litefs_min_txid\)/);
  assert.deepEqual(replica.prepare('SELECT x FROM t').all(), []);
  replica.close();
});

test('README recipe ryw-node: what is not a position never reaches the PRAGMA', () => {
  const n = nodes();
  const replica = new Database(n.replica);
  for (const bad of ['6', `${pos(6)}'; DROP TABLE t; --`, pos(6).toUpperCase()]) {
    assert.throws(() => readFloor(replica, bad), { message: `not a position: ${bad}` });
  }
  assert.equal(replica.pragma('litefs_min_txid', { simple: true }), '0');
  replica.close();
});

test('README recipe "write from a replica" (forward-node): the replica writes with forwarding on', () => {
  const text = execFileSync('bash', [path.join(ROOT, 'scripts', 'readme-snippet.sh'), 'forward-node'], { encoding: 'utf8' });
  const { forwardWrites } = new Function(`${text}\nreturn { forwardWrites };`)();
  const n = nodes();
  fs.writeFileSync(`${n.replica}-lock`, ''); // LiteFS's lock file
  const db = new Database(n.replica);
  try {
    assert.throws(() => db.prepare("INSERT INTO t VALUES ('refused')").run(), (e) => e.code === 'SQLITE_AUTH');
    forwardWrites(db);
    db.prepare("INSERT INTO t VALUES ('written on a replica')").run();
    assert.deepEqual(db.prepare('SELECT x FROM t').all(), [{ x: 'written on a replica' }]);
  } finally {
    db.close();
  }
});
