// litefs-guard: where the litefs_guard SQLite extension is, and how to load it
// into better-sqlite3 (12) or node:sqlite. The extension itself is the file
// lib/<platform>-<arch>/liblitefs_guard.so of this package (linux-x64 only,
// built for glibc 2.17 and later).
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const LIBRARY = 'liblitefs_guard.so';
let cached;

function isGlibc() {
  // musl (Alpine) has no glibcVersionRuntime; the extension needs glibc.
  try {
    const header = process.report.getReport().header;
    return Boolean(header.glibcVersionRuntime);
  } catch {
    return true; // no report facility: let dlopen() decide
  }
}

/** The absolute path of the extension shipped in this package. */
function getLoadablePath() {
  if (cached) return cached;
  const dir = `${process.platform}-${process.arch}`;
  if (dir !== 'linux-x64') {
    throw new Error(`litefs-guard: no extension for ${dir}: the package carries linux-x64 (glibc) only`);
  }
  if (!isGlibc()) {
    throw new Error('litefs-guard: this Linux is not glibc-based (musl?): the extension needs glibc 2.17 or later');
  }
  const p = path.join(__dirname, 'lib', dir, LIBRARY);
  if (!fs.existsSync(p)) {
    throw new Error(`litefs-guard: the extension is missing: ${p} does not exist (install the package built by \`make npm\`)`);
  }
  cached = p;
  return p;
}

/**
 * Loads the extension through `db`: a better-sqlite3 `Database`, or a
 * node:sqlite `DatabaseSync` opened with `{ allowExtension: true }`.
 *
 * The first load registers the guard for every connection the process opens
 * afterwards. Load it once, on a throwaway `:memory:` database, before any
 * database file is opened: the connection that ran the load opened its file
 * before the guard existed and only gets the prepare-time checks.
 */
function load(db) {
  if (!db || typeof db.loadExtension !== 'function') {
    throw new TypeError('litefs-guard: load(db) needs a better-sqlite3 Database or a node:sqlite DatabaseSync');
  }
  const p = getLoadablePath();
  try {
    db.loadExtension(p);
  } catch (e) {
    const hint = e && e.code === 'ERR_INVALID_STATE'
      ? ' (node:sqlite: open the database with new DatabaseSync(path, { allowExtension: true }))'
      : '';
    throw new Error(`litefs-guard: loading ${p} failed: ${e && e.message}${hint}`, { cause: e });
  }
}

module.exports = { getLoadablePath, load };
