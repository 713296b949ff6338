/*
 * KBS service guarantees, through cl_kbs_handle() and the store: a release
 * or an admin change happens only with its audit entry (a full store refuses
 * with 503), clients never see policy errors or evidence rejection reasons,
 * the session table has a cap, admin token times cannot overflow, key files
 * appear whole or not at all on a full disk, and the serving process is
 * hardened (no core dumps, keys in the secure heap).
 */
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jose/jose.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cloister/crypto.h"
#include "cloister/devtee.h"
#include "cloister/kbs.h"
#include "kbs/internal.h"
#include "test.h"

static char tmpdir[] = "/tmp/kbs-service-XXXXXX";

static const char *RVS = "{\"devtee\":{\"measurement\":["
			 "\"424242424242424242424242424242424242424242"
			 "424242424242424242424242424242424242424242424242424242\"]}}";

struct env {
	struct cl_kbs *k;
	struct cl_kbs_store *st;
	struct cl_kbs_config cfg;
	struct cl_buf root_pem;
	EVP_PKEY *root_key;
	json_t *key;
	char cookie[160];
};

static int call(struct env *e, enum cl_kbs_method m, const char *path, const char *body,
		const char *auth, struct cl_kbs_resp *r)
{
	struct cl_kbs_req rq = {0};
	/* As the HTTP front hands it on: exactly the body's bytes, no NUL after them. */
	size_t len = body ? strlen(body) : 0;
	uint8_t *copy = len ? malloc(len) : NULL;

	if (len)
		memcpy(copy, body, len);
	rq.method = m;
	rq.path = path;
	rq.cookie = e->cookie[0] ? e->cookie : NULL;
	rq.authorization = auth;
	rq.body = copy;
	rq.body_len = len;
	cl_kbs_resp_free(r);
	CHECK_EQ_INT(cl_kbs_handle(e->k, e->st, &rq, r), CL_OK);
	free(copy);
	if (r->set_cookie[0]) {
		size_t n = strcspn(r->set_cookie, ";");

		snprintf(e->cookie, sizeof(e->cookie), "%.*s", (int)n, r->set_cookie);
	}
	return r->status;
}

static const char *title_of(const struct cl_kbs_resp *r, char *buf, size_t cap)
{
	json_t *j = json_loads(r->body, 0, NULL);

	snprintf(buf, cap, "%s", json_string_value(json_object_get(j, "title")) ?: "");
	json_decref(j);
	return buf;
}

/* auth, then an attest body with a dev-TEE report (bound to the key or not). */
static char *attest_body(struct env *e, int bind)
{
	struct cl_kbs_resp r = {0};
	json_t *ch = NULL, *pub = json_deep_copy(e->key), *rd = NULL, *body = NULL;
	uint8_t h[64], rep[CL_DEVTEE_REPORT_LEN];
	struct cl_devtee_report dr = {0};
	char *b64 = NULL, *s = NULL;

	CHECK(jose_jwk_pub(NULL, pub));
	json_object_set_new(pub, "alg", json_string("ECDH-ES+A256KW"));
	e->cookie[0] = 0;
	CHECK_EQ_INT(call(e, CL_KBS_POST, "/kbs/v0/auth",
			  "{\"version\":\"0.1.1\",\"tee\":\"devtee\",\"extra-params\":\"\"}", NULL,
			  &r),
		     200);
	ch = json_loads(r.body, 0, NULL);
	rd = json_pack("{s:O, s:O}", "nonce", json_object_get(ch, "nonce"), "tee-pubkey", pub);
	CHECK_EQ_INT(cl_kbs_runtime_data_hash(rd, h), CL_OK);
	dr.version = CL_DEVTEE_VERSION;
	memset(dr.measurement, 0x42, sizeof(dr.measurement));
	memcpy(dr.report_data, h, 64);
	if (!bind)
		dr.report_data[0] ^= 1;
	CHECK_EQ_INT(cl_devtee_report_sign(&dr, e->root_key, rep), CL_OK);
	b64 = cl_base64_encode(rep, sizeof(rep));
	body = json_pack("{s:O, s:{s:s}}", "runtime-data", rd, "tee-evidence", "report", b64);
	s = json_dumps(body, JSON_COMPACT);
	free(b64);
	json_decref(body);
	json_decref(rd);
	json_decref(pub);
	json_decref(ch);
	cl_kbs_resp_free(&r);
	return s;
}

/* A fresh KBS on its own SQLite file in tmpdir, with "default/key/1" stored. */
static void env_open(struct env *e, const char *name)
{
	char p[400];
	struct cl_buf sealed = {0};

	memset(e, 0, sizeof(*e));
	snprintf(p, sizeof(p), "%s/devtee", tmpdir);
	(void)mkdir(p, 0700);
	CHECK_EQ_INT(cl_devtee_root_load(p, &e->root_key, NULL), CL_OK);
	snprintf(p, sizeof(p), "%s/devtee/root.pem", tmpdir);
	CHECK_EQ_INT(cl_read_file(p, 0, &e->root_pem), CL_OK);
	snprintf(p, sizeof(p), "%s/state", tmpdir);
	CHECK_EQ_INT(cl_kbs_state_init(p), CL_OK);
	snprintf(p, sizeof(p), "%s/state/token.key", tmpdir);
	CHECK_EQ_INT(cl_ear_key_load(p, &e->cfg.token_key), CL_OK);
	memset(e->cfg.kek, 3, sizeof(e->cfg.kek));
	e->cfg.verify.devtee.root = (const char *)e->root_pem.data;
	e->cfg.verify.offline = 1;
	snprintf(p, sizeof(p), "sqlite:%s/%s.db", tmpdir, name);
	CHECK_EQ_INT(cl_kbs_store_open(p, &e->st), CL_OK);
	CHECK_EQ_INT(cl_kbs_new(&e->cfg, &e->k), CL_OK);
	CHECK_EQ_INT(
		cl_kbs_seal(e->cfg.kek, "default/key/1", (const uint8_t *)"hunter2", 7, &sealed),
		CL_OK);
	CHECK_EQ_INT(cl_kbs_store_resource_put(e->st, "default/key/1", sealed.data, sealed.len),
		     CL_OK);
	CHECK_EQ_INT(cl_kbs_store_policy_put(e->st, "refvalues", "", RVS, strlen(RVS)), CL_OK);
	e->key = json_pack("{s:s, s:s}", "kty", "EC", "crv", "P-256");
	CHECK(jose_jwk_gen(NULL, e->key));
	cl_buf_free(&sealed);
}

static void env_close(struct env *e)
{
	cl_kbs_free(e->k);
	cl_kbs_store_close(e->st);
	cl_ear_key_free(e->cfg.token_key);
	cl_buf_free(&e->root_pem);
	EVP_PKEY_free(e->root_key);
	json_decref(e->key);
}

/* An attested session's token, as "Bearer ..." (caller frees). */
static char *attest(struct env *e)
{
	struct cl_kbs_resp r = {0};
	char *body = attest_body(e, 1), *auth = NULL;
	json_t *tj = NULL;

	CHECK_EQ_INT(call(e, CL_KBS_POST, "/kbs/v0/attest", body, NULL, &r), 200);
	tj = json_loads(r.body, 0, NULL);
	if (json_string_value(json_object_get(tj, "token")) &&
	    (auth = malloc(strlen(json_string_value(json_object_get(tj, "token"))) + 8)))
		sprintf(auth, "Bearer %s", json_string_value(json_object_get(tj, "token")));
	CHECK(auth != NULL);
	json_decref(tj);
	free(body);
	cl_kbs_resp_free(&r);
	return auth;
}

static int64_t count_entries(struct cl_kbs_store *st, const char *event, const char *needle)
{
	json_t *list = NULL, *v = NULL;
	size_t i = 0;
	int64_t n = 0;

	if (cl_kbs_store_audit_list(st, 0, &list) != CL_OK)
		return -1;
	json_array_foreach (list, i, v) {
		const char *ev = json_string_value(json_object_get(v, "event"));
		const char *d = json_string_value(json_object_get(v, "detail"));

		if (ev && strcmp(ev, event) == 0 && (!needle || (d && strstr(d, needle))))
			n++;
	}
	json_decref(list);
	return n;
}

static int row_i(void *ctx, int n, const struct sq_val *c)
{
	if (n >= 1 && c[0].type == SQ_INT)
		*(int64_t *)ctx = c[0].i;
	return CL_OK;
}

/* Make the SQLite file full: no page may be added, and the free space is used. */
static void fill_store(struct cl_kbs_store *st)
{
	int64_t pages = 0;
	char sql[80];
	struct cl_kbs_audit a = {1,
				 "filler",
				 "x/y/z",
				 "allow",
				 NULL,
				 NULL,
				 "filler filler filler filler filler filler filler filler"};
	int i = 0;

	CHECK_EQ_INT(st->be->exec(st->db, "PRAGMA page_count", NULL, 0, row_i, &pages, NULL),
		     CL_OK);
	snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld", (long long)pages + 1);
	CHECK_EQ_INT(st->be->exec(st->db, sql, NULL, 0, NULL, NULL, NULL), CL_OK);
	while (i++ < 100000 && cl_kbs_store_audit_add(st, &a) == CL_OK)
		;
	CHECK(i < 100000);
}

static void test_release_needs_audit(void)
{
	struct env e;
	struct cl_kbs_resp r = {0};
	struct cl_buf got = {0}, plain = {0};
	char t[64], *auth = NULL;
	int64_t releases = 0, puts = 0;

	env_open(&e, "full");
	auth = attest(&e);
	CHECK_EQ_INT(call(&e, CL_KBS_GET, "/kbs/v0/resource/default/key/1", NULL, auth, &r), 200);
	releases = count_entries(e.st, "release", NULL);
	CHECK_EQ_INT(releases, 1);

	fill_store(e.st);
	/* the audit entry cannot be written: nothing is released */
	CHECK_EQ_INT(call(&e, CL_KBS_GET, "/kbs/v0/resource/default/key/1", NULL, auth, &r), 503);
	CHECK_STR(title_of(&r, t, sizeof(t)), "StorageError");
	CHECK(strstr(r.body, "ciphertext") == NULL && strstr(r.body, "encrypted_key") == NULL);
	CHECK_EQ_INT(count_entries(e.st, "release", NULL), releases);
	CHECK_EQ_INT(call(&e, CL_KBS_GET, "/metrics", NULL, NULL, &r), 200);
	CHECK(strstr(r.body, "kbs_resource_decisions_total{decision=\"release\"} 1\n") != NULL);

	/* an admin change that would fit but whose audit entry does not: neither */
	{
		struct cl_kbs_admin_key *ak = NULL;
		char p[400], *jwt = NULL, bearer[600];

		snprintf(p, sizeof(p), "%s/state/admin.pub", tmpdir);
		CHECK_EQ_INT(cl_kbs_admin_key_load(p, &ak), CL_OK);
		cl_kbs_free(e.k);
		e.cfg.admin_key = ak;
		CHECK_EQ_INT(cl_kbs_new(&e.cfg, &e.k), CL_OK);
		snprintf(p, sizeof(p), "%s/state/admin.key", tmpdir);
		CHECK_EQ_INT(cl_kbs_admin_sign(p, "admin", 300, &jwt), CL_OK);
		snprintf(bearer, sizeof(bearer), "Bearer %s", jwt);
		puts = count_entries(e.st, "admin", NULL);
		/* same size as the stored secret: the row is rewritten in place */
		CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/resource/default/key/1", "evilxyz",
				  bearer, &r),
			     503);
		CHECK_EQ_INT(count_entries(e.st, "admin", NULL), puts);
		CHECK_EQ_INT(cl_kbs_store_resource_get(e.st, "default/key/1", &got), CL_OK);
		CHECK_EQ_INT(cl_kbs_unseal(e.cfg.kek, "default/key/1", got.data, got.len, &plain),
			     CL_OK);
		CHECK(plain.len == 7 && memcmp(plain.data, "hunter2", 7) == 0);
		/* with room again, both happen */
		CHECK_EQ_INT(e.st->be->exec(e.st->db, "PRAGMA max_page_count = 1000000", NULL, 0,
					    NULL, NULL, NULL),
			     CL_OK);
		CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/resource/default/key/1", "newval1",
				  bearer, &r),
			     200);
		CHECK_EQ_INT(count_entries(e.st, "admin", NULL), puts + 1);
		/* every admin endpoint stores and audits the body it was given */
		CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/reference-values",
				  "{\"devtee\": {\"measurement\": [\"00\"]}}", bearer, &r),
			     200);
		CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/resource-policy",
				  "function release(ear, res) return true end", bearer, &r),
			     200);
		CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/attestation-policy",
				  "function appraise(claims, ctx) return {} end", bearer, &r),
			     200);
		CHECK_EQ_INT(count_entries(e.st, "admin", NULL), puts + 4);
		free(jwt);
		cl_kbs_free(e.k);
		e.k = NULL;
		cl_kbs_admin_key_free(ak);
		e.cfg.admin_key = NULL;
		CHECK_EQ_INT(cl_kbs_new(&e.cfg, &e.k), CL_OK);
	}
	CHECK_EQ_INT(call(&e, CL_KBS_GET, "/kbs/v0/resource/default/key/1", NULL, auth, &r), 200);
	CHECK_EQ_INT(count_entries(e.st, "release", NULL), releases + 1);
	cl_buf_free(&got);
	cl_buf_free(&plain);
	cl_kbs_resp_free(&r);
	free(auth);
	env_close(&e);
}

static void test_no_internals_to_clients(void)
{
	struct env e;
	struct cl_kbs_resp r = {0};
	char t[64], *body = NULL, *auth = NULL;
	const char *boom = "policy_id = \"test:boom\"\n"
			   "function appraise(claims, ctx) error(\"zebra-7731 exploded\") end\n";
	const char *deny = "function release(ear, res) error(\"quokka-4410 broke\") end\n";

	env_open(&e, "leak");
	/* evidence rejected for a reason of its own: the report data differs */
	body = attest_body(&e, 0);
	CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/attest", body, NULL, &r), 401);
	CHECK_STR(title_of(&r, t, sizeof(t)), "AttestationError");
	CHECK(strstr(r.body, "report data") == NULL);
	CHECK(strstr(r.body, cl_kbs_problem_message("AttestationError")) != NULL);
	CHECK_EQ_INT(count_entries(e.st, "attest", "report data"), 1);
	free(body);

	/* an attestation policy that raises an error */
	CHECK_EQ_INT(cl_kbs_store_policy_put(e.st, "attestation", "", boom, strlen(boom)), CL_OK);
	body = attest_body(&e, 1);
	CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/attest", body, NULL, &r), 500);
	CHECK_STR(title_of(&r, t, sizeof(t)), "PolicyEngineError");
	CHECK(strstr(r.body, "zebra") == NULL && strstr(r.body, "lua") == NULL);
	CHECK(strstr(r.body, cl_kbs_problem_message("PolicyEngineError")) != NULL);
	CHECK_EQ_INT(count_entries(e.st, "attest", "zebra-7731 exploded"), 1);
	/* the nonce was spent with that entry */
	CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/attest", body, NULL, &r), 401);
	free(body);

	/* a resource policy that raises an error: denied, the error only audited */
	CHECK_EQ_INT(e.st->be->exec(e.st->db, "DELETE FROM policies WHERE kind = 'attestation'",
				    NULL, 0, NULL, NULL, NULL),
		     CL_OK);
	auth = attest(&e);
	CHECK_EQ_INT(cl_kbs_store_policy_put(e.st, "resource", "", deny, strlen(deny)), CL_OK);
	CHECK_EQ_INT(call(&e, CL_KBS_GET, "/kbs/v0/resource/default/key/1", NULL, auth, &r), 403);
	CHECK(strstr(r.body, "quokka") == NULL);
	CHECK_EQ_INT(count_entries(e.st, "deny", "quokka-4410 broke"), 1);
	/* a malformed token: the verifier's reason stays here too */
	auth[strlen(auth) - 3] ^= 1;
	CHECK_EQ_INT(call(&e, CL_KBS_GET, "/kbs/v0/resource/default/key/1", NULL, auth, &r), 401);
	CHECK_STR(title_of(&r, t, sizeof(t)), "TokenVerifierError");
	CHECK(strstr(r.body, cl_kbs_problem_message("TokenVerifierError")) != NULL);
	CHECK(strstr(r.body, "JWKS") == NULL && strstr(r.body, "signature") == NULL);
	free(auth);
	cl_kbs_resp_free(&r);
	env_close(&e);
}

static void test_session_cap(void)
{
	struct env e;
	struct cl_kbs_resp r = {0};
	const char *req = "{\"version\":\"0.1.1\",\"tee\":\"devtee\",\"extra-params\":\"\"}";
	char t[64];
	uint8_t nonce[CL_KBS_NONCE_LEN] = {0};

	env_open(&e, "cap");
	cl_kbs_free(e.k);
	e.cfg.max_sessions = 3;
	CHECK_EQ_INT(cl_kbs_new(&e.cfg, &e.k), CL_OK);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/auth", req, NULL, &r), 200);
	e.cookie[0] = 0;
	CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/auth", req, NULL, &r), 503);
	CHECK_STR(title_of(&r, t, sizeof(t)), "TooManySessions");
	CHECK(r.set_cookie[0] == 0);
	/* the refused session was not written */
	{
		int64_t n = 0;

		CHECK_EQ_INT(e.st->be->exec(e.st->db, "SELECT COUNT(*) FROM sessions", NULL, 0,
					    row_i, &n, NULL),
			     CL_OK);
		CHECK_EQ_INT(n, 3);
	}
	/* expired sessions do not count */
	CHECK_EQ_INT(e.st->be->exec(e.st->db, "UPDATE sessions SET expires = 1", NULL, 0, NULL,
				    NULL, NULL),
		     CL_OK);
	CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/auth", req, NULL, &r), 200);
	/* the store call itself */
	CHECK_EQ_INT(cl_kbs_store_session_new_capped(e.st, "a1", nonce, "devtee", 10, 100, 1),
		     CL_ERR_POLICY);
	CHECK_EQ_INT(cl_kbs_store_session_new_capped(e.st, "a1", nonce, "devtee", 10, 100, 2),
		     CL_OK);
	cl_kbs_resp_free(&r);
	env_close(&e);
}

/* ------------------------------------------------------------ admin times */

static char *admin_jwt(EVP_PKEY *pk, long long iat, long long exp)
{
	char claims[200], *h = NULL, *c = NULL, *input = NULL, *s64 = NULL, *out = NULL;
	uint8_t sig[64];
	size_t sl = sizeof(sig);
	EVP_MD_CTX *m = EVP_MD_CTX_new();

	snprintf(claims, sizeof(claims), "{\"exp\":%lld,\"iat\":%lld,\"role\":\"admin\"}", exp,
		 iat);
	h = cl_base64url_encode("{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}", 27);
	c = cl_base64url_encode(claims, strlen(claims));
	input = malloc(strlen(h) + strlen(c) + 2);
	sprintf(input, "%s.%s", h, c);
	CHECK(EVP_DigestSignInit(m, NULL, NULL, NULL, pk) == 1 &&
	      EVP_DigestSign(m, sig, &sl, (const uint8_t *)input, strlen(input)) == 1);
	s64 = cl_base64url_encode(sig, sl);
	out = malloc(strlen(input) + strlen(s64) + 2);
	sprintf(out, "%s.%s", input, s64);
	free(h);
	free(c);
	free(input);
	free(s64);
	EVP_MD_CTX_free(m);
	return out;
}

static void test_admin_times(void)
{
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	BIO *b = BIO_new(BIO_s_mem());
	char *pem = NULL, role[32], *j = NULL;
	long n = 0;
	struct cl_kbs_admin_key *k = NULL;
	long long now = (long long)time(NULL);
	const struct {
		long long iat, exp, at;
		int ok;
	} cases[] = {
		{now, now + 300, 0, 1},
		{INT64_MIN, now + 300, 0, 0}, /* exp - iat overflows */
		{INT64_MIN + 1, INT64_MAX, 0, 0},
		{now, INT64_MAX, 0, 0},				/* lifetime too long */
		{INT64_MAX, INT64_MAX, 0, 0},			/* issued in the future */
		{now + 300, now + 200, 0, 0},			/* exp before iat */
		{now - 100, now - 10, 0, 0},			/* expired */
		{INT64_MAX - 20, INT64_MAX, INT64_MAX - 10, 1}, /* at + skew overflows */
		{INT64_MIN, INT64_MIN + 10, INT64_MIN + 5, 1},
	};

	CHECK(pk && b && PEM_write_bio_PUBKEY(b, pk) == 1);
	n = BIO_get_mem_data(b, &pem);
	CHECK_EQ_INT(cl_kbs_admin_key_from_pem((const uint8_t *)pem, (size_t)n, &k), CL_OK);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = 0;

		j = admin_jwt(pk, cases[i].iat, cases[i].exp);
		rc = cl_kbs_admin_verify(k, j, strlen(j), (int64_t)cases[i].at, role);
		if ((rc == CL_OK) != cases[i].ok)
			fprintf(stderr, "    case %zu: iat %lld exp %lld at %lld -> %d\n", i,
				cases[i].iat, cases[i].exp, cases[i].at, rc);
		CHECK_EQ_INT(rc == CL_OK, cases[i].ok);
		free(j);
	}
	cl_kbs_admin_key_free(k);
	BIO_free(b);
	EVP_PKEY_free(pk);
}

/* ------------------------------------------------------------ key files */

static int key_files_sane(const char *dir)
{
	char p[400];
	struct cl_buf b = {0};
	struct cl_kbs_admin_key *ap = NULL;
	char *jwt = NULL, role[32];
	int ok = 1;

	snprintf(p, sizeof(p), "%s/kek", dir);
	if (access(p, F_OK) == 0) {
		ok &= cl_read_file(p, 0, &b) == CL_OK && b.len == CL_KBS_KEK_LEN;
		cl_buf_free(&b);
	}
	snprintf(p, sizeof(p), "%s/token.key", dir);
	if (access(p, F_OK) == 0) {
		struct cl_ear_key *ek = NULL;

		ok &= cl_ear_key_load(p, &ek) == CL_OK;
		cl_ear_key_free(ek);
	}
	/* a private admin key always has its public half, and they match */
	snprintf(p, sizeof(p), "%s/admin.key", dir);
	if (access(p, F_OK) == 0) {
		ok &= cl_kbs_admin_sign(p, "admin", 60, &jwt) == CL_OK;
		snprintf(p, sizeof(p), "%s/admin.pub", dir);
		ok &= cl_kbs_admin_key_load(p, &ap) == CL_OK;
		ok &= jwt && ap && cl_kbs_admin_verify(ap, jwt, strlen(jwt), 0, role) == CL_OK;
	}
	free(jwt);
	cl_kbs_admin_key_free(ap);
	return ok;
}

static void test_state_full_disk(void)
{
	char dir[300], st[320], p[400];
	struct cl_buf b = {0};
	int bad_first = 0;

	snprintf(dir, sizeof(dir), "%s/tiny", tmpdir);
	CHECK_EQ_INT(mkdir(dir, 0700), 0);
	/* a tmpfs of three pages: room for three of the four key files */
	if (mount("tmpfs", dir, "tmpfs", 0, "size=12k,mode=0700") != 0) {
		fprintf(stderr, "    (cannot mount a tmpfs here: full-disk case skipped)\n");
		return;
	}
	snprintf(st, sizeof(st), "%s/state", dir);
	CHECK(cl_kbs_state_init(st) != CL_OK);
	bad_first = !key_files_sane(st);
	CHECK(!bad_first);
	/* a stray temporary file, as a crash would leave it, is removed */
	snprintf(p, sizeof(p), "%s/admin.key.tmp", st);
	if (cl_read_file(p, 0, &b) != CL_OK) {
		FILE *f = fopen(p, "w");

		if (f) {
			fputs("-----BEGIN PRIV", f);
			fclose(f);
		}
	}
	cl_buf_free(&b);
	/* with room again the next start finishes the job */
	CHECK_EQ_INT(mount(NULL, dir, NULL, MS_REMOUNT, "size=256k,mode=0700"), 0);
	CHECK_EQ_INT(cl_kbs_state_init(st), CL_OK);
	CHECK(key_files_sane(st));
	CHECK(access(p, F_OK) != 0);
	snprintf(p, sizeof(p), "%s/admin.pub", st);
	CHECK(access(p, F_OK) == 0);
	/* a lost public key is made again from the private one */
	CHECK_EQ_INT(unlink(p), 0);
	CHECK_EQ_INT(cl_kbs_state_init(st), CL_OK);
	CHECK(key_files_sane(st) && access(p, F_OK) == 0);
	CHECK_EQ_INT(umount(dir), 0);
}

/* ------------------------------------------------------------ hardening */

static void test_harden(void)
{
	pid_t pid = fork();
	int status = 0;

	CHECK(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = {1, 1};
		struct cl_kbs_config cfg = {0};
		struct cl_kbs *k = NULL;
		char p[400];
		size_t before = 0;
		int fails = 0;

		fails += cl_kbs_process_harden() != CL_OK;
		fails += prctl(PR_GET_DUMPABLE) != 0;
		fails += getrlimit(RLIMIT_CORE, &rl) != 0 || rl.rlim_cur != 0 || rl.rlim_max != 0;
		fails += !CRYPTO_secure_malloc_initialized();
		/* a signing key loaded afterwards keeps its private scalar there */
		before = CRYPTO_secure_used();
		snprintf(p, sizeof(p), "%s/state/token.key", tmpdir);
		fails += cl_ear_key_load(p, &cfg.token_key) != CL_OK;
		fails += CRYPTO_secure_used() <= before;
		/* and the KBS keeps its KEK there */
		before = CRYPTO_secure_used();
		memset(cfg.kek, 1, sizeof(cfg.kek));
		fails += cl_kbs_new(&cfg, &k) != CL_OK;
		fails += CRYPTO_secure_used() < before + CL_KBS_KEK_LEN;
		cl_kbs_free(k);
		cl_ear_key_free(cfg.token_key);
		_exit(fails > 100 ? 100 : fails);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ_INT(WEXITSTATUS(status), 0);
}

int main(void)
{
	CHECK(mkdtemp(tmpdir) != NULL);
	RUN(test_release_needs_audit);
	RUN(test_no_internals_to_clients);
	RUN(test_session_cap);
	RUN(test_admin_times);
	RUN(test_state_full_disk);
	RUN(test_harden);
	cl_policy_thread_release();
	{
		char cmd[100];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmpdir);
	}
	return test_done("kbs_service_test");
}
