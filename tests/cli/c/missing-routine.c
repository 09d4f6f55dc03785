/* Loads the extension with a routine table that lacks one routine (as
 * SQLITE_OMIT_AUTHORIZATION builds lack sqlite3_set_authorizer): loading
 * must fail with a message naming it, allocated through the table. */
/* Use the real functions, not sqlite3ext.h's routine-table macros. */
#define SQLITE_CORE 1
#include <sqlite3.h>
#include <sqlite3ext.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef int (*initfn)(sqlite3 *, char **, const sqlite3_api_routines *);

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  sqlite3 *db;
  sqlite3_open(":memory:", &db);
  static sqlite3_api_routines t;
  memset(&t, 0, sizeof t);
  t.libversion_number = sqlite3_libversion_number;
  t.malloc = sqlite3_malloc;
  t.free = sqlite3_free;
  void *h = dlopen(argv[1], RTLD_NOW);
  if (!h) { printf("dlopen: %s\n", dlerror()); return 1; }
  initfn f = (initfn)dlsym(h, "sqlite3_litefsguard_init");
  if (!f) { printf("no entry point\n"); return 1; }
  char *err = 0;
  int rc = f(db, &err, &t);
  printf("rc=%d err=%s\n", rc, err ? err : "(null)");
  return 0;
}
