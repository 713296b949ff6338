/*
 * SQLite backend: one file, WAL journal with synchronous=FULL so a
 * committed resource survives power loss, and a busy timeout so the worker
 * threads (one connection each) and other processes wait for the lock.
 */
#include <string.h>

#include <sqlite3.h>

#include "internal.h"

static int sql_fail(sqlite3 *db, const char *what) {
  return cl_fail(CL_ERR_IO, "sqlite: %s: %s", what, sqlite3_errmsg(db));
}

static int lite_script(void *db, const char *sql) {
  char *err = NULL;

  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
    int rc = cl_fail(CL_ERR_IO, "sqlite: %s", err ? err : "error");

    sqlite3_free(err);
    return rc;
  }
  return CL_OK;
}

static int lite_exec(void *vdb, const char *sql, const struct sq_val *p, int np,
                     sq_row_fn fn, void *ctx, int64_t *changes) {
  sqlite3 *db = vdb;
  sqlite3_stmt *st = NULL;
  struct sq_val cols[8];
  int rc = CL_OK, s = 0;

  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    return sql_fail(db, "prepare");
  for (int i = 0; i < np; i++) {
    switch (p[i].type) {
    case SQ_INT:
      s = sqlite3_bind_int64(st, i + 1, p[i].i);
      break;
    case SQ_TEXT:
      s = sqlite3_bind_text(st, i + 1, p[i].t, -1, SQLITE_STATIC);
      break;
    case SQ_BLOB:
      s = sqlite3_bind_blob64(st, i + 1, p[i].b, p[i].n, SQLITE_STATIC);
      break;
    case SQ_NULL:
    default:
      s = sqlite3_bind_null(st, i + 1);
      break;
    }
    CL_CHECK(s == SQLITE_OK, CL_ERR_IO, "sqlite: bind: %s", sqlite3_errmsg(db));
  }
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    int n = sqlite3_column_count(st);

    if (n > 8)
      n = 8;
    for (int i = 0; i < n; i++) {
      memset(&cols[i], 0, sizeof(cols[i]));
      switch (sqlite3_column_type(st, i)) {
      case SQLITE_INTEGER:
        cols[i].type = SQ_INT;
        cols[i].i = sqlite3_column_int64(st, i);
        break;
      case SQLITE_TEXT:
        cols[i].type = SQ_TEXT;
        cols[i].t = (const char *)sqlite3_column_text(st, i);
        break;
      case SQLITE_BLOB:
        cols[i].type = SQ_BLOB;
        cols[i].b = sqlite3_column_blob(st, i);
        cols[i].n = (size_t)sqlite3_column_bytes(st, i);
        break;
      default:
        cols[i].type = SQ_NULL;
        break;
      }
    }
    if (fn)
      CL_TRY(fn(ctx, n, cols));
  }
  CL_CHECK(s == SQLITE_DONE, CL_ERR_IO, "sqlite: step: %s", sqlite3_errmsg(db));
  if (changes)
    *changes = sqlite3_changes64(db);
out:
  sqlite3_finalize(st);
  return rc;
}

static void lite_close(void *db) { sqlite3_close_v2(db); }

static const struct sq_backend lite = {
    .kind = "sqlite",
    .exec = lite_exec,
    .script = lite_script,
    .close = lite_close,
    .begin_migration = "BEGIN IMMEDIATE",
    .pg = 0,
};

int cl_kbs_sqlite_open(const char *path, struct cl_kbs_store *s) {
  sqlite3 *db = NULL;
  int rc = CL_OK;

  if (sqlite3_open_v2(path, &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                          SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK) {
    rc = cl_fail(CL_ERR_IO, "sqlite: cannot open %s: %s", path,
                 db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close_v2(db);
    return rc;
  }
  s->be = &lite;
  s->db = db;
  sqlite3_busy_timeout(db, 10000);
  CL_GUARD(lite_script(db,
                       "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                       " PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;"));
  return CL_OK;
}
