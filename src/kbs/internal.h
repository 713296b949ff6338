/* Shared inside src/kbs only: the store backends behind one small SQL
 * interface. */
#ifndef CLOISTER_KBS_INTERNAL_H
#define CLOISTER_KBS_INTERNAL_H

#include "cloister/kbs.h"

enum sq_type { SQ_NULL = 0, SQ_INT, SQ_TEXT, SQ_BLOB };

/* A bound parameter or a column value (borrowed for the duration of a call). */
struct sq_val {
	enum sq_type type;
	int64_t i;
	const char *t;
	const uint8_t *b;
	size_t n;
};

#define SQ_I(v)	     ((struct sq_val){.type = SQ_INT, .i = (v)})
#define SQ_T(v)	     ((struct sq_val){.type = SQ_TEXT, .t = (v)})
#define SQ_B(p, len) ((struct sq_val){.type = SQ_BLOB, .b = (p), .n = (len)})

/* Called per result row; a negative return stops and is returned by exec. */
typedef int (*sq_row_fn)(void *ctx, int ncols, const struct sq_val *cols);

/* One statement of an atomic unit (sq_backend.unit). */
struct sq_stmt {
	const char *sql;
	const struct sq_val *p;
	int np;
	sq_row_fn fn;
	void *ctx;
	int64_t *changes;
	/* Fail the unit with CL_ERR_MISMATCH, rolled back, unless exactly one row
   * changed. */
	int one_row;
};

struct sq_backend {
	const char *kind;
	/*
   * Run one statement with parameters ?1..?n (rewritten for the backend).
   * *changes: rows changed, when not NULL.
   */
	int (*exec)(void *db, const char *sql, const struct sq_val *p, int np, sq_row_fn fn,
		    void *ctx, int64_t *changes);
	/* Run a script (no parameters, no rows). */
	int (*script)(void *db, const char *sql);
	/*
   * Run statements as one transaction, all or nothing; NULL where the
   * backend has no better way than BEGIN ... COMMIT around exec.
   */
	int (*unit)(void *db, const struct sq_stmt *s, int n);
	void (*close)(void *db);
	/* SQL that starts a transaction holding the migration lock. */
	const char *begin_migration;
	int pg; /* schema dialect */
};

struct cl_kbs_store {
	const struct sq_backend *be;
	void *db;
};

int cl_kbs_sqlite_open(const char *path, struct cl_kbs_store *s);
int cl_kbs_pg_open(const char *conninfo, struct cl_kbs_store *s);

/* Resource policies (rpolicy.c). */
struct cl_kbs_decision {
	int allow;
	char policy_id[CL_MAX_POLICY_ID];
	char reason[256];
};

/*
 * Decide on a resource request: the most specific resource policy in the
 * store (REPO/TYPE/TAG, then REPO, then global), else the built-in default
 * (release only when the EAR's ear_status is "affirming").
 */
int cl_kbs_resource_decide(struct cl_kbs_store *st, const json_t *ear, const char *path,
			   struct cl_kbs_decision *d);
/* Compile-check a resource policy text before storing it. */
int cl_kbs_resource_policy_check(const char *text, size_t len);

#endif
