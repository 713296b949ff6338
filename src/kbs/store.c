/*
 * The KBS store: sessions, sealed resources, policies, reference values and
 * the audit log, behind one interface with SQLite and PostgreSQL backends.
 * Every statement is plain SQL both dialects share (parameters ?N, upserts,
 * RETURNING); only the schema differs, and it is versioned by migrations
 * applied under a lock so that several KBS processes can start at once.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

struct migration {
	int version;
	const char *sqlite;
	const char *pg;
};

static const struct migration migrations[] = {
	{1,
	 "CREATE TABLE sessions (id TEXT PRIMARY KEY, nonce BLOB NOT NULL, tee "
	 "TEXT NOT NULL,"
	 " expires BIGINT NOT NULL, state INTEGER NOT NULL DEFAULT 0, token TEXT);"
	 "CREATE INDEX sessions_expires ON sessions (expires);"
	 "CREATE TABLE resources (path TEXT PRIMARY KEY, blob BLOB NOT NULL, "
	 "updated BIGINT NOT NULL);"
	 "CREATE TABLE policies (kind TEXT NOT NULL, scope TEXT NOT NULL, text "
	 "TEXT NOT NULL,"
	 " updated BIGINT NOT NULL, PRIMARY KEY (kind, scope));"
	 "CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, time BIGINT "
	 "NOT NULL,"
	 " event TEXT NOT NULL, path TEXT, decision TEXT, policy_id TEXT, "
	 "claims_digest TEXT,"
	 " detail TEXT);"
	 "CREATE INDEX audit_time ON audit (time);",
	 "CREATE TABLE sessions (id TEXT PRIMARY KEY, nonce BYTEA NOT NULL, tee "
	 "TEXT NOT NULL,"
	 " expires BIGINT NOT NULL, state INTEGER NOT NULL DEFAULT 0, token TEXT);"
	 "CREATE INDEX sessions_expires ON sessions (expires);"
	 "CREATE TABLE resources (path TEXT PRIMARY KEY, blob BYTEA NOT NULL, "
	 "updated BIGINT NOT NULL);"
	 "CREATE TABLE policies (kind TEXT NOT NULL, scope TEXT NOT NULL, text "
	 "TEXT NOT NULL,"
	 " updated BIGINT NOT NULL, PRIMARY KEY (kind, scope));"
	 "CREATE TABLE audit (id BIGSERIAL PRIMARY KEY, time BIGINT NOT NULL,"
	 " event TEXT NOT NULL, path TEXT, decision TEXT, policy_id TEXT, "
	 "claims_digest TEXT,"
	 " detail TEXT);"
	 "CREATE INDEX audit_time ON audit (time);"},
};

static int row_int(void *ctx, int n, const struct sq_val *c)
{
	if (n >= 1 && c[0].type == SQ_INT)
		*(int64_t *)ctx = c[0].i;
	return CL_OK;
}

static int migrate(struct cl_kbs_store *s)
{
	int64_t have = 0;
	int rc = CL_OK;
	char sql[64];

	CL_GUARD(s->be->script(
		s->db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
	CL_GUARD(s->be->exec(s->db, "SELECT MAX(version) FROM schema_version", NULL, 0, row_int,
			     &have, NULL));
	if (have >= migrations[sizeof(migrations) / sizeof(migrations[0]) - 1].version)
		return CL_OK;
	CL_GUARD(s->be->script(s->db, s->be->begin_migration));
	have = 0;
	/* Re-read under the lock: another process may have migrated meanwhile. */
	CL_TRY(s->be->exec(s->db, "SELECT MAX(version) FROM schema_version", NULL, 0, row_int,
			   &have, NULL));
	for (size_t i = 0; i < sizeof(migrations) / sizeof(migrations[0]); i++) {
		if (migrations[i].version <= have)
			continue;
		CL_TRY(s->be->script(s->db, s->be->pg ? migrations[i].pg : migrations[i].sqlite));
		snprintf(sql, sizeof(sql), "INSERT INTO schema_version VALUES (%d)",
			 migrations[i].version);
		CL_TRY(s->be->script(s->db, sql));
	}
	CL_TRY(s->be->script(s->db, "COMMIT"));
	return CL_OK;
out:
	(void)s->be->script(s->db, "ROLLBACK");
	return rc;
}

int cl_kbs_store_open(const char *url, struct cl_kbs_store **out)
{
	struct cl_kbs_store *s = calloc(1, sizeof(*s));
	int rc = CL_OK;

	*out = NULL;
	CL_CHECK(s, CL_ERR_NOMEM, "out of memory");
	CL_CHECK(url && *url, CL_ERR_ARG, "no store given");
	if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0)
		CL_TRY(cl_kbs_pg_open(url, s));
	else
		CL_TRY(cl_kbs_sqlite_open(strncmp(url, "sqlite:", 7) == 0 ? url + 7 : url, s));
	CL_TRY(migrate(s));
	*out = s;
	s = NULL;
out:
	cl_kbs_store_close(s);
	return rc;
}

void cl_kbs_store_close(struct cl_kbs_store *s)
{
	if (!s)
		return;
	if (s->be && s->db)
		s->be->close(s->db);
	free(s);
}

const char *cl_kbs_store_kind(const struct cl_kbs_store *s)
{
	return s && s->be ? s->be->kind : NULL;
}

int cl_kbs_store_schema_version(struct cl_kbs_store *s)
{
	int64_t v = 0;

	CL_GUARD(s->be->exec(s->db, "SELECT MAX(version) FROM schema_version", NULL, 0, row_int, &v,
			     NULL));
	return (int)v;
}

/* Statements as one transaction, all or nothing. */
static int store_unit(struct cl_kbs_store *s, const struct sq_stmt *q, int n)
{
	int rc = CL_OK;

	if (s->be->unit)
		return s->be->unit(s->db, q, n);
	CL_GUARD(s->be->script(s->db, "BEGIN"));
	for (int i = 0; i < n; i++) {
		int64_t ch = 0;

		CL_TRY(s->be->exec(s->db, q[i].sql, q[i].p, q[i].np, q[i].fn, q[i].ctx, &ch));
		if (q[i].changes)
			*q[i].changes = ch;
		CL_CHECK(!q[i].one_row || ch == 1, CL_ERR_MISMATCH,
			 "the row to update is gone or has changed");
	}
	CL_TRY(s->be->script(s->db, "COMMIT"));
	return CL_OK;
out:
	(void)s->be->script(s->db, "ROLLBACK");
	return rc;
}

/* ------------------------------------------------------------- sessions */

#define SESSION_INSERT "INSERT INTO sessions (id, nonce, tee, expires) VALUES (?1, ?2, ?3, ?4)"

int cl_kbs_store_session_new(struct cl_kbs_store *s, const char *id,
			     const uint8_t nonce[CL_KBS_NONCE_LEN], const char *tee,
			     int64_t expires)
{
	struct sq_val p[] = {SQ_T(id), SQ_B(nonce, CL_KBS_NONCE_LEN), SQ_T(tee), SQ_I(expires)};

	return s->be->exec(s->db, SESSION_INSERT, p, 4, NULL, NULL, NULL);
}

struct cap_ctx {
	int64_t max;
};

static int row_cap(void *ctx, int n, const struct sq_val *c)
{
	const struct cap_ctx *x = ctx;

	CL_ENSURE_MSG(n >= 1 && c[0].type == SQ_INT, CL_ERR_MALFORMED, "store: bad count row");
	CL_ENSURE_MSG(c[0].i <= x->max, CL_ERR_POLICY,
		      "the session table is full (%lld live sessions)", (long long)x->max);
	return CL_OK;
}

int cl_kbs_store_session_new_capped(struct cl_kbs_store *s, const char *id,
				    const uint8_t nonce[CL_KBS_NONCE_LEN], const char *tee,
				    int64_t now, int64_t expires, int64_t max)
{
	struct sq_val p[] = {SQ_T(id), SQ_B(nonce, CL_KBS_NONCE_LEN), SQ_T(tee), SQ_I(expires)};
	struct sq_val pc[] = {SQ_I(now)};
	struct cap_ctx cx = {max};
	/*
	 * Insert, then count the live sessions in the same transaction and roll
	 * back when that makes one too many. Every process sharing the store
	 * counts the same table; concurrent PostgreSQL transactions can each miss
	 * the other's row, so the cap can be passed by at most the number of
	 * concurrent inserts.
	 */
	struct sq_stmt q[] = {
		{SESSION_INSERT, p, 4, NULL, NULL, NULL, 1},
		{"SELECT COUNT(*) FROM sessions WHERE expires > ?1", pc, 1, row_cap, &cx, NULL, 0}};

	if (max <= 0)
		return cl_kbs_store_session_new(s, id, nonce, tee, expires);
	return store_unit(s, q, 2);
}

struct consume_ctx {
	uint8_t *nonce;
	char *tee;
	int found;
	int64_t expires, state;
};

static int row_consume(void *ctx, int n, const struct sq_val *c)
{
	struct consume_ctx *x = ctx;

	CL_ENSURE_MSG(n >= 2 && c[0].type == SQ_BLOB && c[0].n == CL_KBS_NONCE_LEN &&
			      c[1].type == SQ_TEXT && strlen(c[1].t) < 16,
		      CL_ERR_MALFORMED, "store: bad session row");
	memcpy(x->nonce, c[0].b, CL_KBS_NONCE_LEN);
	snprintf(x->tee, 16, "%s", c[1].t);
	x->found = 1;
	return CL_OK;
}

static int row_state(void *ctx, int n, const struct sq_val *c)
{
	struct consume_ctx *x = ctx;

	if (n >= 2 && c[0].type == SQ_INT && c[1].type == SQ_INT) {
		x->expires = c[0].i;
		x->state = c[1].i;
		x->found = 1;
	}
	return CL_OK;
}

static int row_peek(void *ctx, int n, const struct sq_val *c)
{
	struct consume_ctx *x = ctx;

	CL_ENSURE_MSG(n >= 4 && c[2].type == SQ_INT && c[3].type == SQ_INT, CL_ERR_MALFORMED,
		      "store: bad session row");
	CL_GUARD(row_consume(ctx, 2, c));
	x->expires = c[2].i;
	x->state = c[3].i;
	return CL_OK;
}

int cl_kbs_store_session_consume(struct cl_kbs_store *s, const char *id, int64_t now,
				 uint8_t nonce[CL_KBS_NONCE_LEN], char tee[16])
{
	struct consume_ctx x = {nonce, tee, 0, 0, 0};
	struct sq_val p[] = {SQ_T(id), SQ_I(now)};

	/* One atomic statement, so two concurrent attests cannot both use the nonce.
   */
	CL_GUARD(s->be->exec(s->db,
			     "UPDATE sessions SET state = 1 WHERE id = ?1 AND state "
			     "= 0 AND expires > ?2"
			     " RETURNING nonce, tee",
			     p, 2, row_consume, &x, NULL));
	if (x.found)
		return CL_OK;
	CL_GUARD(s->be->exec(s->db, "SELECT expires, state FROM sessions WHERE id = ?1", p, 1,
			     row_state, &x, NULL));
	CL_ENSURE_MSG(x.found, CL_ERR_NOT_FOUND, "unknown session");
	CL_ENSURE_MSG(x.expires > now, CL_ERR_EXPIRED, "session has expired");
	CL_BAIL(CL_ERR_MISMATCH, "the session's nonce has already been used");
}

int cl_kbs_store_session_set_token(struct cl_kbs_store *s, const char *id, const char *token)
{
	struct sq_val p[] = {SQ_T(id), SQ_T(token)};

	return s->be->exec(s->db, "UPDATE sessions SET token = ?2, state = 2 WHERE id = ?1", p, 2,
			   NULL, NULL, NULL);
}

static struct sq_val opt_text(const char *t)
{
	struct sq_val v = {0};

	if (t)
		v = SQ_T(t);
	return v;
}

#define AUDIT_INSERT                                                                               \
	"INSERT INTO audit (time, event, path, decision, policy_id, claims_digest,"                \
	" detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
#define AUDIT_PARAMS(a)                                                                            \
	{                                                                                          \
		SQ_I((a)->time ? (a)->time : (int64_t)time(NULL)),                                 \
			SQ_T((a)->event ? (a)->event : "event"), opt_text((a)->path),              \
			opt_text((a)->decision), opt_text((a)->policy_id),                         \
			opt_text((a)->claims_digest), opt_text((a)->detail)                        \
	}

int cl_kbs_store_session_attested(struct cl_kbs_store *s, const char *id, int64_t now,
				  const char *token, const struct cl_kbs_audit *a)
{
	struct sq_val p[] = {SQ_T(id), SQ_T(token), SQ_I(now)}, ap[] = AUDIT_PARAMS(a);
	/* The nonce is spent here, atomically with the token: of concurrent attests
   * on one session at most one can succeed, and its audit entry commits with
   * it. */
	struct sq_stmt q[] = {
		{"UPDATE sessions SET token = ?2, state = 2 WHERE id = ?1 AND state = 0"
		 " AND expires > ?3",
		 p, 3, NULL, NULL, NULL, 1},
		{AUDIT_INSERT, ap, 7, NULL, NULL, NULL, 0}};
	int rc = store_unit(s, q, 2);

	if (rc == CL_ERR_MISMATCH)
		return cl_fail(rc, "the session's nonce has already been used or expired");
	return rc;
}

int cl_kbs_store_session_rejected(struct cl_kbs_store *s, const char *id,
				  const struct cl_kbs_audit *a)
{
	struct sq_val p[] = {SQ_T(id)}, ap[] = AUDIT_PARAMS(a);
	/* Spent already (a concurrent attempt) is as good as spent: no one_row. */
	struct sq_stmt q[] = {{"UPDATE sessions SET state = 1 WHERE id = ?1 AND state = 0", p, 1,
			       NULL, NULL, NULL, 0},
			      {AUDIT_INSERT, ap, 7, NULL, NULL, NULL, 0}};

	return store_unit(s, q, 2);
}

int cl_kbs_store_session_peek(struct cl_kbs_store *s, const char *id, int64_t now,
			      uint8_t nonce[CL_KBS_NONCE_LEN], char tee[16])
{
	struct consume_ctx x = {nonce, tee, 0, 0, 0};
	struct sq_val p[] = {SQ_T(id)};

	CL_GUARD(s->be->exec(s->db,
			     "SELECT nonce, tee, expires, state FROM sessions"
			     " WHERE id = ?1",
			     p, 1, row_peek, &x, NULL));
	CL_ENSURE_MSG(x.found, CL_ERR_NOT_FOUND, "unknown session");
	CL_ENSURE_MSG(x.expires > now, CL_ERR_EXPIRED, "session has expired");
	CL_ENSURE_MSG(x.state == 0, CL_ERR_MISMATCH, "the session's nonce has already been used");
	return CL_OK;
}

static int row_text(void *ctx, int n, const struct sq_val *c)
{
	char **out = ctx;

	if (n >= 1 && c[0].type == SQ_TEXT && !*out) {
		*out = strdup(c[0].t);
		CL_ENSURE_MSG(*out, CL_ERR_NOMEM, "out of memory");
	}
	return CL_OK;
}

int cl_kbs_store_session_token(struct cl_kbs_store *s, const char *id, int64_t now, char **token)
{
	struct sq_val p[] = {SQ_T(id), SQ_I(now)};

	*token = NULL;
	CL_GUARD(s->be->exec(
		s->db, "SELECT token FROM sessions WHERE id = ?1 AND expires > ?2 AND state = 2", p,
		2, row_text, token, NULL));
	CL_ENSURE_MSG(*token, CL_ERR_NOT_FOUND, "no attested session");
	return CL_OK;
}

int cl_kbs_store_session_gc(struct cl_kbs_store *s, int64_t now)
{
	struct sq_val p[] = {SQ_I(now)};

	return s->be->exec(s->db, "DELETE FROM sessions WHERE expires <= ?1", p, 1, NULL, NULL,
			   NULL);
}

/* ------------------------------------------------------------ resources */

/*
 * A change with its audit record: both statements in one transaction (one
 * savepoint of a group commit with SQLite), so a crash, a full disk or a
 * failed audit insert leaves neither. Without an audit record the change runs
 * alone, for provisioning a store outside the service.
 */
static int change_unit(struct cl_kbs_store *s, const struct sq_stmt *change,
		       const struct cl_kbs_audit *a)
{
	struct sq_val ap[] = AUDIT_PARAMS(a ? a : &(struct cl_kbs_audit){0});
	struct sq_stmt q[2] = {*change, {AUDIT_INSERT, ap, 7, NULL, NULL, NULL, 0}};

	if (!a)
		return s->be->exec(s->db, change->sql, change->p, change->np, NULL, NULL, NULL);
	return store_unit(s, q, 2);
}

#define RESOURCE_UPSERT                                                                            \
	"INSERT INTO resources (path, blob, updated) VALUES (?1, ?2, ?3)"                          \
	" ON CONFLICT (path) DO UPDATE SET blob = excluded.blob, updated = excluded.updated"

int cl_kbs_store_resource_put_audited(struct cl_kbs_store *s, const char *path, const uint8_t *blob,
				      size_t len, const struct cl_kbs_audit *a)
{
	struct sq_val p[] = {SQ_T(path), SQ_B(blob, len), SQ_I((int64_t)time(NULL))};
	struct sq_stmt q = {RESOURCE_UPSERT, p, 3, NULL, NULL, NULL, 0};

	return change_unit(s, &q, a);
}

int cl_kbs_store_resource_put(struct cl_kbs_store *s, const char *path, const uint8_t *blob,
			      size_t len)
{
	return cl_kbs_store_resource_put_audited(s, path, blob, len, NULL);
}

struct blob_ctx {
	struct cl_buf *out;
	int found;
};

static int row_blob(void *ctx, int n, const struct sq_val *c)
{
	struct blob_ctx *x = ctx;

	if (n < 1 || x->found)
		return CL_OK;
	x->found = 1;
	if (c[0].type == SQ_BLOB)
		return cl_buf_append(x->out, c[0].b, c[0].n);
	if (c[0].type == SQ_TEXT)
		return cl_buf_append(x->out, c[0].t, strlen(c[0].t));
	return CL_OK;
}

int cl_kbs_store_resource_get(struct cl_kbs_store *s, const char *path, struct cl_buf *blob)
{
	struct blob_ctx x = {blob, 0};
	struct sq_val p[] = {SQ_T(path)};

	CL_GUARD(s->be->exec(s->db, "SELECT blob FROM resources WHERE path = ?1", p, 1, row_blob,
			     &x, NULL));
	CL_ENSURE_MSG(x.found, CL_ERR_NOT_FOUND, "no such resource");
	return CL_OK;
}

/* -------------------------------------------------------------- policies */

int cl_kbs_store_policy_put_audited(struct cl_kbs_store *s, const char *kind, const char *scope,
				    const char *text, size_t len, const struct cl_kbs_audit *a)
{
	struct sq_val p[] = {SQ_T(kind), SQ_T(scope), SQ_T(text), SQ_I((int64_t)time(NULL))};
	struct sq_stmt q = {
		"INSERT INTO policies (kind, scope, text, updated) VALUES (?1, ?2, ?3, ?4)"
		" ON CONFLICT (kind, scope) DO UPDATE SET text = excluded.text,"
		" updated = excluded.updated",
		p,
		4,
		NULL,
		NULL,
		NULL,
		0};

	CL_ENSURE_MSG(strlen(text) == len, CL_ERR_MALFORMED, "policy text contains NUL bytes");
	return change_unit(s, &q, a);
}

int cl_kbs_store_policy_put(struct cl_kbs_store *s, const char *kind, const char *scope,
			    const char *text, size_t len)
{
	return cl_kbs_store_policy_put_audited(s, kind, scope, text, len, NULL);
}

int cl_kbs_store_policy_get(struct cl_kbs_store *s, const char *kind, const char *scope,
			    struct cl_buf *text)
{
	struct blob_ctx x = {text, 0};
	struct sq_val p[] = {SQ_T(kind), SQ_T(scope)};

	CL_GUARD(s->be->exec(s->db, "SELECT text FROM policies WHERE kind = ?1 AND scope = ?2", p,
			     2, row_blob, &x, NULL));
	CL_ENSURE_MSG(x.found, CL_ERR_NOT_FOUND, "no %s policy for '%s'", kind, scope);
	return CL_OK;
}

/* ----------------------------------------------------------------- audit */

int cl_kbs_store_audit_add(struct cl_kbs_store *s, const struct cl_kbs_audit *a)
{
	struct sq_val p[] = AUDIT_PARAMS(a);

	return s->be->exec(s->db, AUDIT_INSERT, p, 7, NULL, NULL, NULL);
}

static int row_audit(void *ctx, int n, const struct sq_val *c)
{
	static const char *names[] = {"time",	   "event",	    "path",  "decision",
				      "policy_id", "claims_digest", "detail"};
	json_t *arr = ctx, *o = json_object();
	char ts[21];

	CL_ENSURE_MSG(o, CL_ERR_NOMEM, "out of memory");
	for (int i = 0; i < n && i < 7; i++) {
		json_t *v = NULL;

		if (i == 0 && c[i].type == SQ_INT) {
			cl_time_format(c[i].i, ts);
			v = json_string(ts);
		} else if (c[i].type == SQ_TEXT) {
			v = json_string(c[i].t);
		} else {
			continue;
		}
		json_object_set_new(o, names[i], v);
	}
	return json_array_append_new(arr, o) == 0 ? CL_OK : CL_ERR_NOMEM;
}

int cl_kbs_store_audit_list(struct cl_kbs_store *s, int64_t since, json_t **out)
{
	struct sq_val p[] = {SQ_I(since)};
	json_t *arr = json_array();
	int rc = CL_OK;

	*out = NULL;
	CL_ENSURE_MSG(arr, CL_ERR_NOMEM, "out of memory");
	rc = s->be->exec(s->db,
			 "SELECT time, event, path, decision, policy_id, "
			 "claims_digest, detail FROM audit"
			 " WHERE time >= ?1 ORDER BY id",
			 p, 1, row_audit, arr, NULL);
	if (rc != CL_OK) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return CL_OK;
}
