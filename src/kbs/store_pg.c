/*
 * PostgreSQL backend (libpq). Parameters go as text except blobs, which go
 * binary; results come back as text, bytea in its hex form. Migrations take a
 * transaction-scoped advisory lock so replicas starting together migrate once.
 */
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "internal.h"

#define PG_INT8	   20
#define PG_INT2	   21
#define PG_INT4	   23
#define PG_BYTEA   17
#define MAX_PARAMS 8

static int pg_fail(PGconn *c, const char *what)
{
	char msg[200];
	size_t n = 0;

	snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = 0;
	return cl_fail(CL_ERR_IO, "postgres: %s: %s", what, msg);
}

/* "?N" placeholders to "$N"; statements here have no '?' elsewhere. */
static char *rewrite(const char *sql)
{
	char *o = strdup(sql);

	for (char *p = o; p && *p; p++)
		if (*p == '?')
			*p = '$';
	return o;
}

static int pg_script(void *db, const char *sql)
{
	PGresult *r = PQexec(db, sql);
	int ok = r &&
		 (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
	int rc = ok ? CL_OK : pg_fail(db, "exec");

	PQclear(r);
	return rc;
}

static int unhex(const char *s, uint8_t **out, size_t *n)
{
	if (strncmp(s, "\\x", 2) != 0)
		return cl_fail(CL_ERR_MALFORMED, "postgres: bytea not in hex form");
	return cl_hex_decode(s + 2, strlen(s + 2), out, n);
}

static int pg_exec(void *db, const char *sql, const struct sq_val *p, int np, sq_row_fn fn,
		   void *ctx, int64_t *changes)
{
	const char *vals[MAX_PARAMS] = {0};
	int lens[MAX_PARAMS] = {0}, fmts[MAX_PARAMS] = {0};
	char nums[MAX_PARAMS][24];
	struct sq_val cols[8];
	uint8_t *bufs[8] = {0};
	PGresult *r = NULL;
	char *q = rewrite(sql);
	int rc = CL_OK, st = 0;

	CL_CHECK(q, CL_ERR_NOMEM, "out of memory");
	CL_CHECK(np <= MAX_PARAMS, CL_ERR_ARG, "too many parameters");
	for (int i = 0; i < np; i++) {
		switch (p[i].type) {
		case SQ_INT:
			snprintf(nums[i], sizeof(nums[i]), "%lld", (long long)p[i].i);
			vals[i] = nums[i];
			break;
		case SQ_TEXT:
			vals[i] = p[i].t;
			break;
		case SQ_BLOB:
			vals[i] = (const char *)p[i].b;
			lens[i] = (int)p[i].n;
			fmts[i] = 1;
			break;
		case SQ_NULL:
		default:
			vals[i] = NULL;
			break;
		}
	}
	r = PQexecParams(db, q, np, NULL, vals, lens, fmts, 0);
	st = r ? (int)PQresultStatus(r) : -1;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		rc = pg_fail(db, "query");
		goto out;
	}
	for (int row = 0; fn && st == PGRES_TUPLES_OK && row < PQntuples(r); row++) {
		int n = PQnfields(r);

		if (n > 8)
			n = 8;
		for (int i = 0; i < n; i++) {
			Oid t = PQftype(r, i);
			const char *v = PQgetvalue(r, row, i);

			memset(&cols[i], 0, sizeof(cols[i]));
			free(bufs[i]);
			bufs[i] = NULL;
			if (PQgetisnull(r, row, i)) {
				cols[i].type = SQ_NULL;
			} else if (t == PG_INT8 || t == PG_INT4 || t == PG_INT2) {
				cols[i].type = SQ_INT;
				cols[i].i = strtoll(v, NULL, 10);
			} else if (t == PG_BYTEA) {
				cols[i].type = SQ_BLOB;
				CL_TRY(unhex(v, &bufs[i], &cols[i].n));
				cols[i].b = bufs[i];
			} else {
				cols[i].type = SQ_TEXT;
				cols[i].t = v;
			}
		}
		CL_TRY(fn(ctx, n, cols));
	}
	if (changes)
		*changes = strtoll(PQcmdTuples(r), NULL, 10);
out:
	for (int i = 0; i < 8; i++) {
		if (bufs[i] && cols[i].n)
			cl_zeroize(bufs[i], cols[i].n);
		free(bufs[i]);
	}
	PQclear(r);
	free(q);
	return rc;
}

static void pg_close(void *db)
{
	PQfinish(db);
}

static const struct sq_backend pgb = {
	.kind = "postgres",
	.exec = pg_exec,
	.script = pg_script,
	.close = pg_close,
	.begin_migration = "BEGIN; SELECT pg_advisory_xact_lock(7143001)",
	.pg = 1,
};

int cl_kbs_pg_open(const char *conninfo, struct cl_kbs_store *s)
{
	PGconn *c = PQconnectdb(conninfo);

	if (!c || PQstatus(c) != CONNECTION_OK) {
		int rc = c ? pg_fail(c, "connect") : cl_fail(CL_ERR_NOMEM, "out of memory");

		PQfinish(c);
		return rc;
	}
	s->be = &pgb;
	s->db = c;
	/* Keep replicas quiet about CREATE ... IF NOT EXISTS notices. */
	return pg_script(c, "SET client_min_messages = warning");
}
