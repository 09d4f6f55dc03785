/** The absolute path of the litefs_guard extension shipped in this package. */
export function getLoadablePath(): string;

/**
 * Loads the extension through `db` (a better-sqlite3 `Database`, or a
 * node:sqlite `DatabaseSync` opened with `{ allowExtension: true }`). Load it
 * once per process on a throwaway `:memory:` database, before any database
 * file is opened.
 */
export function load(db: { loadExtension(path: string): unknown }): void;
