/*
 * SQLite backend: one file, WAL journal with synchronous=FULL so a
 * committed resource survives power loss, and a busy timeout so the worker
 * threads (one connection each) and other processes wait for the lock.
 *
 * Two things keep it fast without weakening that:
 *
 * - Prepared statements are kept per connection. Parsing and planning the
 *   same dozen statements cost more than running them.
 *
 * - Group commit. With synchronous=FULL every commit waits for an fsync, and
 *   SQLite commits one writer at a time, so a KBS that committed each write
 *   on its own could never do more writes per second than the disk does
 *   fsyncs. Writers of one database file in this process therefore queue
 *   their statements; whichever arrives while no commit is running becomes
 *   the leader and commits everything queued so far in one transaction on
 *   its own connection, each caller's statements inside their own savepoint
 *   (so one caller's failure rolls back only its work). Every caller returns
 *   only after that commit, fsync included, has finished: durability per
 *   request is unchanged, only the fsyncs are shared.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "internal.h"

#define STMT_CACHE    32
#define GROUP_MAX_OPS 512

/* Writers of one database file in this process. */
struct group {
	char path[PATH_MAX];
	int refs;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct gop *head, **tail;
	int leader;
	struct group *next;
};

/* One caller's statements, queued for the next group commit. */
struct gop {
	const struct sq_stmt *s;
	int n;
	int rc;
	int done;
	char detail[256];
	struct gop *next;
};

struct lite {
	sqlite3 *db;
	struct {
		const char *sql;
		sqlite3_stmt *st;
	} cache[STMT_CACHE];
	unsigned next_slot;
	struct group *g;
};

static pthread_mutex_t groups_mu = PTHREAD_MUTEX_INITIALIZER;
static struct group *groups;

static int sql_fail(sqlite3 *db, const char *what)
{
	return cl_fail(CL_ERR_IO, "sqlite: %s: %s", what, sqlite3_errmsg(db));
}

static int lite_script(void *vl, const char *sql)
{
	struct lite *l = vl;
	char *err = NULL;

	if (sqlite3_exec(l->db, sql, NULL, NULL, &err) != SQLITE_OK) {
		int rc = cl_fail(CL_ERR_IO, "sqlite: %s", err ? err : "error");

		sqlite3_free(err);
		return rc;
	}
	return CL_OK;
}

/* The connection's prepared statement for sql, reset and unbound. */
static int stmt_get(struct lite *l, const char *sql, sqlite3_stmt **out)
{
	sqlite3_stmt *st = NULL;
	unsigned slot = 0;

	for (unsigned i = 0; i < STMT_CACHE; i++) {
		if (l->cache[i].st &&
		    (l->cache[i].sql == sql || strcmp(sqlite3_sql(l->cache[i].st), sql) == 0)) {
			*out = l->cache[i].st;
			return CL_OK;
		}
	}
	if (sqlite3_prepare_v3(l->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
		return sql_fail(l->db, "prepare");
	slot = l->next_slot++ % STMT_CACHE;
	sqlite3_finalize(l->cache[slot].st);
	/* Only compared by address first; the text is re-read from the statement. */
	l->cache[slot].sql = sql;
	l->cache[slot].st = st;
	*out = st;
	return CL_OK;
}

static void stmt_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Run one statement on this connection. */
static int run_stmt(struct lite *l, const struct sq_stmt *q)
{
	sqlite3 *db = l->db;
	sqlite3_stmt *st = NULL;
	struct sq_val cols[8];
	int rc = CL_OK, s = 0;

	CL_GUARD(stmt_get(l, q->sql, &st));
	for (int i = 0; i < q->np; i++) {
		const struct sq_val *p = &q->p[i];

		switch (p->type) {
		case SQ_INT:
			s = sqlite3_bind_int64(st, i + 1, p->i);
			break;
		case SQ_TEXT:
			s = sqlite3_bind_text(st, i + 1, p->t, -1, SQLITE_STATIC);
			break;
		case SQ_BLOB:
			s = sqlite3_bind_blob64(st, i + 1, p->b, p->n, SQLITE_STATIC);
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
		if (q->fn)
			CL_TRY(q->fn(q->ctx, n, cols));
	}
	CL_CHECK(s == SQLITE_DONE, CL_ERR_IO, "sqlite: step: %s", sqlite3_errmsg(db));
	if (q->changes)
		*q->changes = sqlite3_changes64(db);
out:
	stmt_done(st);
	return rc;
}

static int run_plain(struct lite *l, const char *sql)
{
	struct sq_stmt q = {sql, NULL, 0, NULL, NULL, NULL, 0};

	return run_stmt(l, &q);
}

/* One caller's statements inside a savepoint of the open transaction. */
static void run_op(struct lite *l, struct gop *op)
{
	int rc = run_plain(l, "SAVEPOINT op");

	for (int i = 0; rc == CL_OK && i < op->n; i++) {
		rc = run_stmt(l, &op->s[i]);
		if (rc == CL_OK && op->s[i].one_row && sqlite3_changes64(l->db) != 1)
			rc = cl_fail(CL_ERR_MISMATCH, "the row to update is gone or has changed");
	}
	if (rc == CL_OK)
		rc = run_plain(l, "RELEASE op");
	op->rc = rc;
	if (rc == CL_OK)
		return;
	snprintf(op->detail, sizeof(op->detail), "%s", cl_error_detail());
	/* A failed statement leaves the transaction open unless SQLite gave up on
   * it (I/O errors, out of memory): then the batch is lost, see run_batch. */
	if (!sqlite3_get_autocommit(l->db)) {
		(void)run_plain(l, "ROLLBACK TO op");
		(void)run_plain(l, "RELEASE op");
	}
}

static void fail_all(struct gop *b, int rc, const char *detail)
{
	for (; b; b = b->next) {
		if (b->rc == CL_OK) {
			b->rc = rc;
			snprintf(b->detail, sizeof(b->detail), "%s", detail);
		}
	}
}

static void run_batch(struct lite *l, struct gop *batch)
{
	char saved[256];
	int lost = 0;

	/* Errors met on others' behalf must not become this thread's detail. */
	snprintf(saved, sizeof(saved), "%s", cl_error_detail());
	if (run_plain(l, "BEGIN IMMEDIATE") != CL_OK) {
		fail_all(batch, CL_ERR_IO, cl_error_detail());
		goto out;
	}
	for (struct gop *op = batch; op; op = op->next) {
		if (lost) {
			op->rc = CL_ERR_IO;
			snprintf(op->detail, sizeof(op->detail), "sqlite: transaction lost");
			continue;
		}
		run_op(l, op);
		lost = sqlite3_get_autocommit(l->db);
	}
	if (lost) {
		fail_all(batch, CL_ERR_IO, "sqlite: transaction rolled back");
		goto out;
	}
	if (run_plain(l, "COMMIT") != CL_OK) {
		fail_all(batch, CL_ERR_IO, cl_error_detail());
		if (!sqlite3_get_autocommit(l->db))
			(void)run_plain(l, "ROLLBACK");
	}
out:
	cl_error_clear();
	if (saved[0])
		(void)cl_fail(CL_ERR_IO, "%s", saved);
}

/* Queue the statements for the next group commit and wait for it. */
static int group_write(struct lite *l, const struct sq_stmt *s, int n)
{
	struct group *g = l->g;
	struct gop op = {s, n, CL_OK, 0, "", NULL};

	pthread_mutex_lock(&g->mu);
	*g->tail = &op;
	g->tail = &op.next;
	while (!op.done) {
		if (!g->leader) {
			struct gop *batch = g->head, *last = batch;
			int cnt = 1;

			/* Take a bounded prefix of the queue; the rest waits for the next. */
			while (last->next && cnt < GROUP_MAX_OPS) {
				last = last->next;
				cnt++;
			}
			g->head = last->next;
			if (!g->head)
				g->tail = &g->head;
			last->next = NULL;
			g->leader = 1;
			pthread_mutex_unlock(&g->mu);
			run_batch(l, batch);
			pthread_mutex_lock(&g->mu);
			for (struct gop *b = batch, *nx = NULL; b; b = nx) {
				nx = b->next;
				b->done = 1;
			}
			g->leader = 0;
			pthread_cond_broadcast(&g->cv);
		} else {
			pthread_cond_wait(&g->cv, &g->mu);
		}
	}
	pthread_mutex_unlock(&g->mu);
	if (op.rc != CL_OK)
		return cl_fail(op.rc, "%s", op.detail);
	return CL_OK;
}

static int is_write(struct lite *l, const char *sql, int *w)
{
	sqlite3_stmt *st = NULL;

	CL_GUARD(stmt_get(l, sql, &st));
	*w = !sqlite3_stmt_readonly(st);
	return CL_OK;
}

static int lite_exec(void *vl, const char *sql, const struct sq_val *p, int np, sq_row_fn fn,
		     void *ctx, int64_t *changes)
{
	struct lite *l = vl;
	struct sq_stmt q = {sql, p, np, fn, ctx, changes, 0};
	int w = 0;

	CL_GUARD(is_write(l, sql, &w));
	/* Inside a transaction of its own (migrations) a connection writes
   * directly. */
	if (!w || !l->g || !sqlite3_get_autocommit(l->db))
		return run_stmt(l, &q);
	return group_write(l, &q, 1);
}

static int lite_unit(void *vl, const struct sq_stmt *s, int n)
{
	struct lite *l = vl;

	return group_write(l, s, n);
}

static void group_put(struct group *g)
{
	struct group **pp = NULL;

	if (!g)
		return;
	pthread_mutex_lock(&groups_mu);
	if (--g->refs == 0) {
		for (pp = &groups; *pp && *pp != g; pp = &(*pp)->next)
			;
		if (*pp)
			*pp = g->next;
		pthread_mutex_destroy(&g->mu);
		pthread_cond_destroy(&g->cv);
		free(g);
	}
	pthread_mutex_unlock(&groups_mu);
}

static struct group *group_get(const char *path)
{
	struct group *g = NULL;

	pthread_mutex_lock(&groups_mu);
	for (g = groups; g && strcmp(g->path, path) != 0; g = g->next)
		;
	if (!g && (g = calloc(1, sizeof(*g)))) {
		snprintf(g->path, sizeof(g->path), "%s", path);
		pthread_mutex_init(&g->mu, NULL);
		pthread_cond_init(&g->cv, NULL);
		g->tail = &g->head;
		g->next = groups;
		groups = g;
	}
	if (g)
		g->refs++;
	pthread_mutex_unlock(&groups_mu);
	return g;
}

static void lite_close(void *vl)
{
	struct lite *l = vl;

	if (!l)
		return;
	for (unsigned i = 0; i < STMT_CACHE; i++)
		sqlite3_finalize(l->cache[i].st);
	sqlite3_close_v2(l->db);
	group_put(l->g);
	free(l);
}

static const struct sq_backend lite = {
	.kind = "sqlite",
	.exec = lite_exec,
	.script = lite_script,
	.unit = lite_unit,
	.close = lite_close,
	.begin_migration = "BEGIN IMMEDIATE",
	.pg = 0,
};

int cl_kbs_sqlite_open(const char *path, struct cl_kbs_store *s)
{
	struct lite *l = calloc(1, sizeof(*l));
	char real[PATH_MAX];
	const char *key = path;

	CL_ENSURE_MSG(l, CL_ERR_NOMEM, "out of memory");
	if (sqlite3_open_v2(path, &l->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		int rc = cl_fail(CL_ERR_IO, "sqlite: cannot open %s: %s", path,
				 l->db ? sqlite3_errmsg(l->db) : "out of memory");

		lite_close(l);
		return rc;
	}
	s->be = &lite;
	s->db = l;
	sqlite3_busy_timeout(l->db, 10000);
	CL_GUARD(lite_script(l, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
				" PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;"));
	/* Connections to one file share a commit queue, however the path was
   * spelt. */
	if (realpath(path, real))
		key = real;
	l->g = group_get(key);
	CL_ENSURE_MSG(l->g, CL_ERR_NOMEM, "out of memory");
	return CL_OK;
}
