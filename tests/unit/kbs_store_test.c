/*
 * KBS store (SQLite; PostgreSQL too when $CLOISTER_TEST_PG names a
 * database): migrations, sessions with single-use nonces under concurrency,
 * sealed resources that do not survive being moved to another path,
 * policies and the audit log.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cloister/kbs.h"
#include "kbs/internal.h"
#include "test.h"

static char tmpdir[] = "/tmp/kbs-store-XXXXXX";

struct racer {
	const char *url;
	const char *id;
	int won;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	struct cl_kbs_store *s = NULL;
	uint8_t n[32];
	char tee[16];

	if (cl_kbs_store_open(r->url, &s) == CL_OK) {
		r->won = cl_kbs_store_session_consume(s, r->id, (int64_t)time(NULL), n, tee) ==
			 CL_OK;
		cl_kbs_store_close(s);
	}
	return NULL;
}

/* Attest on one session from its own connection; won when it got the token. */
static void *race_attested(void *arg)
{
	struct racer *r = arg;
	struct cl_kbs_store *s = NULL;
	struct cl_kbs_audit a = {0, "attest-race", r->id, "affirming", "p", NULL, NULL};

	if (cl_kbs_store_open(r->url, &s) == CL_OK) {
		r->won = cl_kbs_store_session_attested(s, r->id, (int64_t)time(NULL), "tok.en.x",
						       &a) == CL_OK;
		cl_kbs_store_close(s);
	}
	return NULL;
}

/* Many writes from one connection while others write too (group commit). */
static void *bulk_audit(void *arg)
{
	struct racer *r = arg;
	struct cl_kbs_store *s = NULL;
	struct cl_kbs_audit a = {0, "bulk", r->id, "allow", NULL, NULL, NULL};

	if (cl_kbs_store_open(r->url, &s) == CL_OK) {
		for (int i = 0; i < 50; i++)
			r->won += cl_kbs_store_audit_add(s, &a) == CL_OK;
		cl_kbs_store_close(s);
	}
	return NULL;
}

static int count_event(json_t *list, const char *event)
{
	size_t i = 0;
	json_t *e = NULL;
	int n = 0;

	json_array_foreach (list, i, e)
		n += strcmp(json_string_value(json_object_get(e, "event")), event) == 0;
	return n;
}

static void run_store(const char *url)
{
	struct cl_kbs_store *s = NULL, *s2 = NULL;
	uint8_t nonce[32], got[32], kek[32];
	char tee[16], *tok = NULL;
	struct cl_buf b = {0}, p = {0};
	json_t *list = NULL;
	int64_t now = (int64_t)time(NULL);
	char id[65];

	fprintf(stderr, "    store %s\n", url);
	CHECK_EQ_INT(cl_kbs_store_open(url, &s), CL_OK);
	if (!s)
		return;
	CHECK_EQ_INT(cl_kbs_store_schema_version(s), 1);
	/* a second open finds the schema migrated and does nothing */
	CHECK_EQ_INT(cl_kbs_store_open(url, &s2), CL_OK);
	CHECK_EQ_INT(cl_kbs_store_schema_version(s2), 1);
	cl_kbs_store_close(s2);

	/* sessions: the nonce is consumed exactly once */
	memset(nonce, 0xa5, sizeof(nonce));
	snprintf(id, sizeof(id), "%064lx", (unsigned long)now ^ (unsigned long)getpid());
	CHECK_EQ_INT(cl_kbs_store_session_new(s, id, nonce, "devtee", now + 60), CL_OK);
	CHECK(cl_kbs_store_session_new(s, id, nonce, "devtee", now + 60) != CL_OK);
	CHECK_EQ_INT(cl_kbs_store_session_token(s, id, now, &tok), CL_ERR_NOT_FOUND);
	CHECK_EQ_INT(cl_kbs_store_session_consume(s, id, now, got, tee), CL_OK);
	CHECK(memcmp(got, nonce, 32) == 0);
	CHECK_STR(tee, "devtee");
	CHECK_EQ_INT(cl_kbs_store_session_consume(s, id, now, got, tee), CL_ERR_MISMATCH);
	CHECK_EQ_INT(cl_kbs_store_session_consume(s, "f00", now, got, tee), CL_ERR_NOT_FOUND);
	CHECK_EQ_INT(cl_kbs_store_session_set_token(s, id, "a.b.c"), CL_OK);
	CHECK_EQ_INT(cl_kbs_store_session_token(s, id, now, &tok), CL_OK);
	CHECK_STR(tok, "a.b.c");
	free(tok);
	tok = NULL;
	CHECK_EQ_INT(cl_kbs_store_session_token(s, id, now + 61, &tok), CL_ERR_NOT_FOUND);
	/* expired before use */
	id[0] = 'e';
	CHECK_EQ_INT(cl_kbs_store_session_new(s, id, nonce, "snp", now - 1), CL_OK);
	CHECK_EQ_INT(cl_kbs_store_session_consume(s, id, now, got, tee), CL_ERR_EXPIRED);
	CHECK_EQ_INT(cl_kbs_store_session_gc(s, now), CL_OK);
	CHECK_EQ_INT(cl_kbs_store_session_consume(s, id, now, got, tee), CL_ERR_NOT_FOUND);

	/* eight connections race for one nonce: exactly one wins */
	{
		pthread_t t[8];
		struct racer r[8];
		int wins = 0;

		id[0] = 'r';
		CHECK_EQ_INT(cl_kbs_store_session_new(s, id, nonce, "snp", now + 60), CL_OK);
		for (int i = 0; i < 8; i++) {
			r[i] = (struct racer){url, id, 0};
			CHECK_EQ_INT(pthread_create(&t[i], NULL, race, &r[i]), 0);
		}
		for (int i = 0; i < 8; i++) {
			pthread_join(t[i], NULL);
			wins += r[i].won;
		}
		CHECK_EQ_INT(wins, 1);
	}

	/* peek, then spend and store the token in one unit, exactly once */
	id[0] = 'p';
	CHECK_EQ_INT(cl_kbs_store_session_new(s, id, nonce, "tdx", now + 60), CL_OK);
	memset(got, 0, sizeof(got));
	CHECK_EQ_INT(cl_kbs_store_session_peek(s, id, now, got, tee), CL_OK);
	CHECK(memcmp(got, nonce, 32) == 0);
	CHECK_STR(tee, "tdx");
	CHECK_EQ_INT(cl_kbs_store_session_peek(s, id, now + 61, got, tee), CL_ERR_EXPIRED);
	CHECK_EQ_INT(cl_kbs_store_session_peek(s, "f00", now, got, tee), CL_ERR_NOT_FOUND);
	{
		struct cl_kbs_audit a = {now, "attest-unit", id, "affirming", "p", NULL, NULL};

		/* expired: refused, and no audit entry without its token */
		CHECK_EQ_INT(cl_kbs_store_session_attested(s, id, now + 61, "t.o.k", &a),
			     CL_ERR_MISMATCH);
		CHECK_EQ_INT(cl_kbs_store_session_attested(s, id, now, "t.o.k", &a), CL_OK);
		CHECK_EQ_INT(cl_kbs_store_session_attested(s, id, now, "t.o.k", &a),
			     CL_ERR_MISMATCH);
		CHECK_EQ_INT(cl_kbs_store_session_peek(s, id, now, got, tee), CL_ERR_MISMATCH);
		CHECK_EQ_INT(cl_kbs_store_session_consume(s, id, now, got, tee), CL_ERR_MISMATCH);
		CHECK_EQ_INT(cl_kbs_store_session_token(s, id, now, &tok), CL_OK);
		CHECK_STR(tok, "t.o.k");
		free(tok);
		tok = NULL;
		/* a consumed (failed) attest cannot be turned into a token afterwards */
		id[0] = 'q';
		CHECK_EQ_INT(cl_kbs_store_session_new(s, id, nonce, "tdx", now + 60), CL_OK);
		CHECK_EQ_INT(cl_kbs_store_session_consume(s, id, now, got, tee), CL_OK);
		CHECK_EQ_INT(cl_kbs_store_session_attested(s, id, now, "t.o.k", &a),
			     CL_ERR_MISMATCH);
		CHECK_EQ_INT(cl_kbs_store_audit_list(s, 0, &list), CL_OK);
		CHECK_EQ_INT(count_event(list, "attest-unit"), 1);
		json_decref(list);
		list = NULL;
	}

	/* eight connections race to attest one session: one token, one record */
	{
		pthread_t t[8];
		struct racer r[8];
		int wins = 0;

		id[0] = 'a';
		CHECK_EQ_INT(cl_kbs_store_session_new(s, id, nonce, "snp", now + 60), CL_OK);
		for (int i = 0; i < 8; i++) {
			r[i] = (struct racer){url, id, 0};
			CHECK_EQ_INT(pthread_create(&t[i], NULL, race_attested, &r[i]), 0);
		}
		for (int i = 0; i < 8; i++) {
			pthread_join(t[i], NULL);
			wins += r[i].won;
		}
		CHECK_EQ_INT(wins, 1);
		CHECK_EQ_INT(cl_kbs_store_audit_list(s, 0, &list), CL_OK);
		CHECK_EQ_INT(count_event(list, "attest-race"), 1);
		json_decref(list);
		list = NULL;
	}

	/* concurrent writers: every acknowledged write is there afterwards */
	{
		pthread_t t[8];
		struct racer r[8];
		int ok = 0;

		for (int i = 0; i < 8; i++) {
			r[i] = (struct racer){url, "bulk/x/y", 0};
			CHECK_EQ_INT(pthread_create(&t[i], NULL, bulk_audit, &r[i]), 0);
		}
		for (int i = 0; i < 8; i++) {
			pthread_join(t[i], NULL);
			ok += r[i].won;
		}
		CHECK_EQ_INT(ok, 400);
		CHECK_EQ_INT(cl_kbs_store_audit_list(s, 0, &list), CL_OK);
		CHECK_EQ_INT(count_event(list, "bulk"), 400);
		json_decref(list);
		list = NULL;
	}

	/* resources: sealed rows; one copied to another path does not unseal there */
	memset(kek, 9, sizeof(kek));
	CHECK_EQ_INT(cl_kbs_seal(kek, "r/t/a", (const uint8_t *)"alpha-secret", 12, &b), CL_OK);
	CHECK_EQ_INT(cl_kbs_store_resource_put(s, "r/t/a", b.data, b.len), CL_OK);
	cl_buf_free(&b);
	CHECK_EQ_INT(cl_kbs_seal(kek, "r/t/b", (const uint8_t *)"beta-secret", 11, &b), CL_OK);
	CHECK_EQ_INT(cl_kbs_store_resource_put(s, "r/t/b", b.data, b.len), CL_OK);
	cl_buf_free(&b);
	CHECK_EQ_INT(cl_kbs_store_resource_get(s, "r/t/a", &b), CL_OK);
	CHECK_EQ_INT(cl_kbs_store_resource_put(s, "r/t/b", b.data, b.len), CL_OK); /* the attack */
	cl_buf_free(&b);
	CHECK_EQ_INT(cl_kbs_store_resource_get(s, "r/t/b", &b), CL_OK);
	CHECK_EQ_INT(cl_kbs_unseal(kek, "r/t/b", b.data, b.len, &p), CL_ERR_SIGNATURE);
	CHECK_EQ_INT(cl_kbs_unseal(kek, "r/t/a", b.data, b.len, &p), CL_OK);
	CHECK(p.len == 12 && memcmp(p.data, "alpha-secret", 12) == 0);
	cl_buf_free(&p);
	cl_buf_free(&b);
	CHECK_EQ_INT(cl_kbs_store_resource_get(s, "r/t/none", &b), CL_ERR_NOT_FOUND);
	cl_buf_free(&b);

	/* policies: upsert per kind and scope */
	CHECK_EQ_INT(cl_kbs_store_policy_put(s, "resource", "r", "v1", 2), CL_OK);
	CHECK_EQ_INT(cl_kbs_store_policy_put(s, "resource", "r", "v2", 2), CL_OK);
	CHECK_EQ_INT(cl_kbs_store_policy_get(s, "resource", "r", &b), CL_OK);
	CHECK(b.len == 2 && memcmp(b.data, "v2", 2) == 0);
	cl_buf_free(&b);
	CHECK_EQ_INT(cl_kbs_store_policy_get(s, "attestation", "r", &b), CL_ERR_NOT_FOUND);
	cl_buf_free(&b);
	CHECK_EQ_INT(cl_kbs_store_policy_put(s, "resource", "x", "a\0b", 3), CL_ERR_MALFORMED);

	/* audit: entries since a time, oldest first */
	{
		struct cl_kbs_audit a1 = {1000,	 "release",   "r/t/a", "allow",
					  "pid", "sha256:00", NULL};
		struct cl_kbs_audit a2 = {2000, "deny", "r/t/b", "deny", "pid", NULL, "why"};
		size_t n0 = 0;

		CHECK_EQ_INT(cl_kbs_store_audit_list(s, 1500, &list), CL_OK);
		n0 = json_array_size(list);
		json_decref(list);
		CHECK_EQ_INT(cl_kbs_store_audit_add(s, &a1), CL_OK);
		CHECK_EQ_INT(cl_kbs_store_audit_add(s, &a2), CL_OK);
		CHECK_EQ_INT(cl_kbs_store_audit_list(s, 1500, &list), CL_OK);
		CHECK_EQ_INT(json_array_size(list), n0 + 1);
		CHECK_STR(json_string_value(json_object_get(json_array_get(list, n0), "detail")),
			  "why");
		CHECK_STR(json_string_value(json_object_get(json_array_get(list, n0), "time")),
			  "1970-01-01T00:33:20Z");
		json_decref(list);
	}
	/* changes with their audit entry, session cap, refused attests (both backends) */
	{
		struct cl_kbs_audit a = {3000, "admin", "r/t/c", "put-resource", NULL, NULL, "t"};
		struct cl_kbs_audit d = {3000, "attest", "devtee", "deny", NULL, NULL, "nope"};
		char cid[40];
		size_t n0 = 0;

		CHECK_EQ_INT(cl_kbs_store_audit_list(s, 3000, &list), CL_OK);
		n0 = json_array_size(list);
		json_decref(list);
		CHECK_EQ_INT(
			cl_kbs_store_resource_put_audited(s, "r/t/c", (const uint8_t *)"x", 1, &a),
			CL_OK);
		CHECK_EQ_INT(cl_kbs_store_policy_put_audited(s, "resource", "r/t", "v3", 2, &a),
			     CL_OK);
		/* with no audit table to write to, the change is undone with its entry */
		CHECK_EQ_INT(s->be->script(s->db, "ALTER TABLE audit RENAME TO audit_off"), CL_OK);
		CHECK(cl_kbs_store_resource_put_audited(s, "r/t/c", (const uint8_t *)"y", 1, &a) !=
		      CL_OK);
		CHECK(cl_kbs_store_policy_put_audited(s, "resource", "r/t", "v4", 2, &a) != CL_OK);
		CHECK_EQ_INT(s->be->script(s->db, "ALTER TABLE audit_off RENAME TO audit"), CL_OK);
		CHECK_EQ_INT(cl_kbs_store_resource_get(s, "r/t/c", &b), CL_OK);
		CHECK(b.len == 1 && b.data[0] == 'x');
		cl_buf_free(&b);
		CHECK_EQ_INT(cl_kbs_store_policy_get(s, "resource", "r/t", &b), CL_OK);
		CHECK(b.len == 2 && memcmp(b.data, "v3", 2) == 0);
		cl_buf_free(&b);
		CHECK_EQ_INT(cl_kbs_store_audit_list(s, 3000, &list), CL_OK);
		CHECK_EQ_INT(json_array_size(list), n0 + 2);
		json_decref(list);
		snprintf(cid, sizeof(cid), "cap-%lld", (long long)now);
		CHECK_EQ_INT(cl_kbs_store_session_gc(s, now + 100000), CL_OK);
		CHECK_EQ_INT(
			cl_kbs_store_session_new_capped(s, cid, nonce, "snp", now, now + 60, 1),
			CL_OK);
		cid[0] = 'd';
		CHECK_EQ_INT(
			cl_kbs_store_session_new_capped(s, cid, nonce, "snp", now, now + 60, 1),
			CL_ERR_POLICY);
		CHECK_EQ_INT(cl_kbs_store_session_consume(s, cid, now, got, tee), CL_ERR_NOT_FOUND);
		cid[0] = 'c';
		CHECK_EQ_INT(cl_kbs_store_session_rejected(s, cid, &d), CL_OK);
		CHECK_EQ_INT(cl_kbs_store_session_consume(s, cid, now, got, tee), CL_ERR_MISMATCH);
		CHECK_EQ_INT(cl_kbs_store_session_rejected(s, cid, &d), CL_OK);
		CHECK_EQ_INT(cl_kbs_store_audit_list(s, 3000, &list), CL_OK);
		CHECK_EQ_INT(json_array_size(list), n0 + 4);
		json_decref(list);
	}
	cl_kbs_store_close(s);
}

static void test_sqlite(void)
{
	char url[300];
	struct cl_buf db = {0};

	snprintf(url, sizeof(url), "sqlite:%s/kbs.db", tmpdir);
	run_store(url);
	/* nothing readable of a secret in the database file or its journal */
	snprintf(url, sizeof(url), "%s/kbs.db", tmpdir);
	CHECK_EQ_INT(cl_read_file(url, 0, &db), CL_OK);
	CHECK(memmem(db.data, db.len, "alpha-secret", 12) == NULL);
	cl_buf_free(&db);
	snprintf(url, sizeof(url), "%s/kbs.db-wal", tmpdir);
	if (cl_read_file(url, 0, &db) == CL_OK)
		CHECK(memmem(db.data, db.len, "alpha-secret", 12) == NULL);
	cl_buf_free(&db);
	/* unusable locations fail cleanly */
	{
		struct cl_kbs_store *s = NULL;

		CHECK_EQ_INT(cl_kbs_store_open("sqlite:/nonexistent/dir/kbs.db", &s), CL_ERR_IO);
		CHECK(s == NULL);
		CHECK_EQ_INT(cl_kbs_store_open("postgres://127.0.0.1:1/none?connect_timeout=2", &s),
			     CL_ERR_IO);
	}
}

static void test_postgres(void)
{
	const char *url = getenv("CLOISTER_TEST_PG");

	if (!url || !*url) {
		fprintf(stderr, "    (no $CLOISTER_TEST_PG: PostgreSQL store covered by "
				"tests/e2e/kbs_postgres.sh)\n");
		return;
	}
	run_store(url);
}

int main(void)
{
	CHECK(mkdtemp(tmpdir) != NULL);
	RUN(test_sqlite);
	RUN(test_postgres);
	{
		char cmd[100];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmpdir);
	}
	return test_done("kbs_store_test");
}
