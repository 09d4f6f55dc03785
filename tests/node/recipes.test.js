// README's Node recipes, extracted and run as written (scripts/readme-snippet.sh)
// on a real two-node litefs-sim (./simnodes.js; FUSE, root): "read your own
// writes" (<!-- recipe: ryw-node -->) and "write from a replica"
// (<!-- recipe: forward-node -->). n1 holds the lease (the primary), n2 is its
// replica, each test on a sim of its own. Positions are the sim's: every
// commit advances app.db-pos, and `hold n2` freezes what n2 reports until
// `release n2`.
//
// What the sim cannot show: a held node still reads the newest bytes (one
// shared backing store), so a replica that ignored the floor would not read a
// stale row here; it would answer at once. So the test asserts that the read
// is still waiting while n2 is held and answers after the release, and a
// control shows that the same node answers at once without the floor.
// better-sqlite3 blocks its thread while a read waits: that read runs in a
// worker thread, so this one can release n2.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const Database = require('better-sqlite3');
const { startSim } = require('./simnodes');

const ROOT = path.resolve(__dirname, '..', '..');
const SO = process.env.LITEFS_GUARD_SO || path.join(ROOT, 'target', 'release', 'liblitefs_guard.so');
for (const k of Object.keys(process.env)) {
  if (k.startsWith('LITEFS_GUARD_') && k !== 'LITEFS_GUARD_SO') delete process.env[k];
}
// Once per process (worker threads included: the guard is registered in the
// SQLite this process shares), before any database is opened.
const boot = new Database(':memory:');
boot.loadExtension(SO);
boot.close();

const recipe = (name) => execFileSync('bash', [path.join(ROOT, 'scripts', 'readme-snippet.sh'), name], { encoding: 'utf8' });
const rywText = recipe('ryw-node');
const { write, readFloor } = new Function(`${rywText}\nreturn { write, readFloor };`)();

// How long a read must still be waiting on the held replica to count as blocked.
const BLOCKED_FOR_MS = 500;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const txid = (position) => parseInt(position.split('/')[0], 16);
const open = (sim, node) => new Database(path.join(sim.mount(node), 'app.db'));
const position = (sim, node) => sim.command(node ? `pos app.db ${node}` : 'pos app.db');

// t(x) in n1's app.db; the cluster's position after it.
async function tableOnPrimary(sim) {
  const db = open(sim, 'n1');
  db.exec('CREATE TABLE t(x)');
  db.close();
  return position(sim);
}

// On n1 through the recipe's write(): the position it returns.
function writeOnPrimary(sim, value) {
  const db = open(sim, 'n1');
  try {
    return write(db, 'INSERT INTO t VALUES (?)', value);
  } finally {
    db.close();
  }
}

function rowsOnPrimary(sim) {
  const db = open(sim, 'n1');
  try {
    return db.prepare('SELECT x FROM t').all();
  } finally {
    db.close();
  }
}

// n2's accepted and refused writes as the sim counted them.
async function n2WritesSeen(sim) {
  const stats = Object.fromEntries((await sim.command('stats')).split(' ').map((kv) => kv.split('=')));
  return [stats['n2.accepted'], stats['n2.refused']];
}

// In a worker thread: readFloor(position) on n2, then `SELECT x FROM t`.
// `floorSet` resolves once the pragma ran, `done` with { rows, at: Date.now() }.
function readOnN2InWorker(sim, position) {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const Database = require(workerData.betterSqlite3);
    const { readFloor } = new Function(workerData.recipe + '\\nreturn { readFloor };')();
    const db = new Database(workerData.db);
    try {
      const guarded = JSON.parse(db.prepare('SELECT litefs_config() AS c').get().c).vfs;
      readFloor(db, workerData.position);
      parentPort.postMessage({ floorSet: guarded });
      const rows = db.prepare('SELECT x FROM t').all();
      parentPort.postMessage({ rows, at: Date.now() });
    } catch (e) {
      parentPort.postMessage({ error: { code: e.code, message: e.message } });
    } finally {
      db.close();
    }`;
  const worker = new Worker(code, {
    eval: true,
    workerData: {
      betterSqlite3: require.resolve('better-sqlite3'),
      recipe: rywText,
      db: path.join(sim.mount('n2'), 'app.db'),
      position,
    },
  });
  let floorSet;
  let done;
  const out = {
    floorSet: new Promise((resolve, reject) => { floorSet = { resolve, reject }; }),
    done: new Promise((resolve, reject) => { done = { resolve, reject }; }),
  };
  worker.on('message', (m) => {
    if (m.error) {
      const e = Object.assign(new Error(m.error.message), { code: m.error.code });
      floorSet.reject(e);
      done.reject(e);
    } else if ('floorSet' in m) {
      floorSet.resolve(m.floorSet);
    } else {
      done.resolve(m);
    }
  });
  worker.on('error', (e) => { floorSet.reject(e); done.reject(e); });
  worker.on('exit', (c) => done.reject(new Error(`worker exited (${c}) without an answer`)));
  out.done.catch(() => {}); // awaited by the test; no unhandled rejection before that
  return out;
}

test('README recipe ryw-node: a held replica waits for the write, then reads it', async (t) => {
  const sim = await startSim(t);
  if (!sim) return;
  const before = await tableOnPrimary(sim);
  await sim.hold('n2');
  const pos = writeOnPrimary(sim, 'hello');
  assert.equal(pos, await position(sim));
  assert.equal(txid(pos), txid(before) + 1);
  // The controls: n2 reports that it has not got `pos`, and without the floor
  // it answers at once (on litefs-sim a held node reads the newest bytes).
  assert.equal(await position(sim, 'n2'), before);
  const n2 = open(sim, 'n2');
  assert.equal(n2.prepare('SELECT litefs_wait_txid(?, 0) AS c').get(pos).c, 0);
  const t0 = Date.now();
  assert.deepEqual(n2.prepare('SELECT x FROM t').all(), [{ x: 'hello' }]);
  assert.ok(Date.now() - t0 < 2000, `a read without the floor took ${Date.now() - t0} ms`);
  n2.close();

  const read = readOnN2InWorker(sim, pos);
  assert.equal(await read.floorSet, true, 'the worker thread\'s connection is guarded');
  const first = await Promise.race([read.done.then(() => 'answered'), sleep(BLOCKED_FOR_MS).then(() => 'waiting')]);
  assert.equal(first, 'waiting', 'the read on the held n2 did not wait');
  const released = Date.now();
  await sim.release('n2');
  const { rows, at } = await read.done;
  assert.deepEqual(rows, [{ x: 'hello' }]);
  assert.ok(at >= released, `answered ${released - at} ms before the release`);
});

test('README recipe ryw-node: a replica that stays held throws SQLITE_LOCKED', async (t) => {
  const sim = await startSim(t);
  if (!sim) return;
  const before = await tableOnPrimary(sim);
  await sim.hold('n2');
  const pos = writeOnPrimary(sim, 'hello');
  const n2 = open(sim, 'n2');
  try {
    n2.pragma('litefs_wait_ms = 100');
    readFloor(n2, pos);
    const t0 = Date.now();
    assert.throws(() => n2.prepare('SELECT x FROM t').all(), { code: 'SQLITE_LOCKED' });
    assert.ok(Date.now() - t0 >= 90, `gave up after ${Date.now() - t0} ms`);
    readFloor(n2, before); // reached: reads (and the schema) work again
    const cfg = JSON.parse(n2.prepare('SELECT litefs_config() AS c').get().c);
    assert.match(cfg.last_refusal, new RegExp(`below the read floor TXID ${txid(pos)} \\(PRAGMA litefs_min_txid\\)`));
    await sim.release('n2');
    readFloor(n2, pos);
    assert.deepEqual(n2.prepare('SELECT x FROM t').all(), [{ x: 'hello' }]);
  } finally {
    n2.close();
  }
});

test('README recipe ryw-node: what is not a position never reaches the PRAGMA', async (t) => {
  const sim = await startSim(t);
  if (!sim) return;
  const pos = await tableOnPrimary(sim);
  const n2 = open(sim, 'n2');
  try {
    for (const bad of [String(txid(pos)), `${pos}'; DROP TABLE t; --`, pos.toUpperCase()]) {
      assert.throws(() => readFloor(n2, bad), { message: `not a position: ${bad}` });
    }
    assert.equal(n2.pragma('litefs_min_txid', { simple: true }), '0');
  } finally {
    n2.close();
  }
});

test('README recipe "write from a replica" (forward-node): n2 writes to n1 with forwarding on', async (t) => {
  const sim = await startSim(t);
  if (!sim) return;
  const { forwardWrites } = new Function(`${recipe('forward-node')}\nreturn { forwardWrites };`)();
  const before = await tableOnPrimary(sim);
  const n2 = open(sim, 'n2');
  try {
    // Without it: refused by the guard before LiteFS sees a write, naming n1.
    const seen = await n2WritesSeen(sim);
    assert.throws(() => n2.prepare("INSERT INTO t VALUES ('refused')").run(), { code: 'SQLITE_AUTH' });
    assert.deepEqual(await n2WritesSeen(sim), seen);
    assert.equal(n2.prepare('SELECT litefs_primary() AS p').get().p, 'n1');
    assert.match(JSON.parse(n2.prepare('SELECT litefs_config() AS c').get().c).reason, /the primary is n1$/);

    forwardWrites(n2);
    assert.equal(n2.pragma('litefs_forward', { simple: true }), '1');
    n2.prepare("INSERT INTO t VALUES ('written on a replica')").run();
    const pos = n2.prepare('SELECT litefs_position() AS p').get().p;
    assert.equal(pos, await position(sim));
    assert.equal(txid(pos), txid(before) + 1);
  } finally {
    n2.close();
  }
  assert.deepEqual(rowsOnPrimary(sim), [{ x: 'written on a replica' }]);
  // The sim saw n2 take app.db's halt lock, write through it and let it go.
  const log = sim.log().split('\n').filter((l) => l.includes(' node=n2 ')).map((l) => l.slice(l.indexOf(' ') + 1));
  const logged = (start, also = '') => assert.ok(log.some((e) => e.startsWith(start) && e.includes(also)), log.join('\n'));
  logged('node=n2 op=halt file=app.db-lock result=acquired');
  logged('node=n2 op=write file=app.db-wal result=accepted', 'via=halt');
  logged('node=n2 op=halt file=app.db-lock result=released');
  assert.equal(await sim.command('halts'), 'count=0');
});
