// A real litefs-sim (the FUSE LiteFS stand-in, litefs-sim/README.md) for the
// Node tests, as tests/simnodes.py is for Python's: nodes n1 (the lease
// holder: primary) and n2 (replica), each a FUSE mount over one shared
// backing directory.
//
//   const { startSim } = require('./simnodes');
//   test('x', async (t) => {
//     const sim = await startSim(t);   // null: skipped (outside CI) with the reason
//     if (!sim) return;
//     sim.mount('n2');                 // the node's mount directory
//     await sim.hold('n2'); await sim.release('n2'); await sim.lease('n2');
//     await sim.command('pos app.db'); // any control command, the reply after "ok"
//   });                                // stopped by t.after()
//
// Nothing is built here: the binary is $LITEFS_SIM_BIN, else the workspace's
// target/release/litefs-sim (`make test-node` builds it first). Needs root and
// /dev/fuse: without them (or the binary) the test is skipped with the reason,
// and fails under CI=true.
//
// The sim runs in a fresh directory under $TMPDIR, removed at teardown once
// every mount is gone: `quit`, stdin closed (--exit-on-stdin-eof: even a
// killed test process leaves no mount), SIGKILL after 10 s, then umount /
// umount -l of whatever is still mounted.
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const IN_CI = process.env.CI === 'true';

function simBin() {
  return process.env.LITEFS_SIM_BIN || path.join(ROOT, 'target', 'release', 'litefs-sim');
}

// Why a sim cannot run here, or null.
function unavailable() {
  if (process.getuid() !== 0) return 'not root: mounting FUSE needs CAP_SYS_ADMIN';
  try {
    fs.closeSync(fs.openSync('/dev/fuse', 'r+'));
  } catch (e) {
    return `/dev/fuse: ${e.code}`;
  }
  try {
    fs.accessSync(simBin(), fs.constants.X_OK);
  } catch {
    return `${simBin()} is missing: build it with \`cargo build --release -p litefs-sim\` (or set LITEFS_SIM_BIN)`;
  }
  return null;
}

function isMounted(p) {
  const target = fs.realpathSync(p);
  // /proc/self/mountinfo escapes space, tab, newline and backslash in octal.
  const unescape = (f) => f.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .some((line) => line && unescape(line.split(' ')[4]) === target);
}

function unmount(p) {
  for (const args of [[p], ['-l', p]]) {
    if (!isMounted(p)) return;
    try {
      execFileSync('umount', args, { stdio: 'ignore' });
    } catch {
      // busy: a connection still open; the lazy one follows
    }
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class Sim {
  constructor(nodes = ['n1', 'n2']) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'litefs-sim-js-'));
    this.socket = path.join(this.dir, 'sim.sock');
    this.logPath = path.join(this.dir, 'sim.log');
    this.stderrPath = path.join(this.dir, 'sim.stderr');
    this.mounts = Object.fromEntries(nodes.map((n) => [n, path.join(this.dir, n)]));
    const args = ['--backing', path.join(this.dir, 'backing'), '--control', this.socket, '--log', this.logPath,
      '--threads', '4', '--lease', nodes[0], '--exit-on-stdin-eof'];
    for (const [n, p] of Object.entries(this.mounts)) args.push('--node', `${n}=${p}`);
    const err = fs.openSync(this.stderrPath, 'w');
    this.proc = spawn(simBin(), args, { cwd: this.dir, stdio: ['pipe', 'ignore', err] });
    fs.closeSync(err);
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => resolve(code ?? signal));
      this.proc.on('error', (e) => resolve(`spawn failed: ${e.message}`));
    });
    this.exitCode = undefined;
    this.exited.then((c) => { this.exitCode = c; });
  }

  stderr() {
    try {
      return fs.readFileSync(this.stderrPath, 'utf8').trim();
    } catch {
      return '';
    }
  }

  async waitReady(timeoutMs = 20000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exitCode !== undefined) throw new Error(`litefs-sim exited at start (${this.exitCode}): ${this.stderr()}`);
      try {
        await this.command('ping');
        if (Object.values(this.mounts).every(isMounted)) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`litefs-sim not ready after ${timeoutMs} ms: ${this.stderr()}`);
      await sleep(20);
    }
  }

  // One control command; the reply after "ok", else throws.
  command(line) {
    return new Promise((resolve, reject) => {
      const s = net.createConnection({ path: this.socket });
      let buf = '';
      s.setTimeout(10000, () => s.destroy(new Error(`${line}: no reply in 10 s`)));
      s.on('connect', () => s.write(line + '\n'));
      s.on('data', (d) => {
        buf += d;
        if (buf.endsWith('\n')) s.end();
      });
      s.on('error', reject);
      s.on('close', () => {
        const reply = buf.replace(/\n$/, '');
        if (reply === 'ok' || reply.startsWith('ok ')) resolve(reply.slice(3));
        else reject(new Error(`${JSON.stringify(line)} -> ${JSON.stringify(reply)}`));
      });
    });
  }

  mount(node) {
    return this.mounts[node];
  }

  lease(node) {
    return this.command(`lease ${node || 'none'}`);
  }

  hold(node) {
    return this.command(`hold ${node}`);
  }

  release(node) {
    return this.command(`release ${node}`);
  }

  log() {
    try {
      return fs.readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  async stop() {
    if (this.exitCode === undefined) {
      await this.command('quit').catch(() => {});
      this.proc.stdin.end();
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10000);
      await this.exited;
      clearTimeout(timer);
    }
    const still = [];
    for (const p of Object.values(this.mounts)) {
      unmount(p);
      if (isMounted(p)) still.push(p);
    }
    // Leave the directory when a mount is left: removing it would walk into it.
    if (still.length) throw new Error(`still mounted after stop: ${still.join(', ')}`);
    if (!process.env.LITEFS_SIM_KEEP) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// A started two-node sim for test context `t` (stopped after the test), or
// null when none can run here: then `t` is skipped with the reason, or fails
// under CI=true.
async function startSim(t) {
  const why = unavailable();
  if (why !== null) {
    if (IN_CI) throw new Error(`litefs-sim cannot run under CI=true: ${why}`);
    t.skip(`litefs-sim unavailable: ${why}`);
    return null;
  }
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.waitReady();
  return sim;
}

module.exports = { startSim, unavailable, Sim };
