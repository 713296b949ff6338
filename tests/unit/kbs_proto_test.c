/*
 * KBS protocol: message parsers (valid, malformed, truncated, oversized),
 * the runtime-data binding, resource paths, JWE round trips and refusals,
 * sealing, admin tokens, and whole RCAR flows through cl_kbs_handle() with
 * dev-TEE reports made here and a real SNP report whose report data is not
 * bound to the key.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jose/jose.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cloister/crypto.h"
#include "cloister/devtee.h"
#include "cloister/kbs.h"
#include "cloister/snp.h"
#include "test.h"

static char tmpdir[] = "/tmp/kbs-proto-XXXXXX";

static const char *REQ = "{\"version\":\"0.1.1\",\"tee\":\"devtee\",\"extra-params\":\"\"}";

static void test_request(void)
{
	struct cl_kbs_request r;
	char buf[256];

	CHECK_EQ_INT(cl_kbs_parse_request((const uint8_t *)REQ, strlen(REQ), &r), CL_OK);
	CHECK_STR(r.tee, "devtee");
	CHECK_STR(r.version, "0.1.1");
	/* every strict prefix is malformed JSON */
	for (size_t n = 0; n < strlen(REQ); n++)
		CHECK(cl_kbs_parse_request((const uint8_t *)REQ, n, &r) != CL_OK);
	snprintf(buf, sizeof(buf), "{\"version\":\"9.0.0\",\"tee\":\"snp\",\"extra-params\":\"\"}");
	CHECK_EQ_INT(cl_kbs_parse_request((const uint8_t *)buf, strlen(buf), &r),
		     CL_ERR_UNSUPPORTED);
	snprintf(buf, sizeof(buf),
		 "{\"version\":\"0.1.1\",\"tee\":\"sample\",\"extra-params\":\"\"}");
	CHECK_EQ_INT(cl_kbs_parse_request((const uint8_t *)buf, strlen(buf), &r),
		     CL_ERR_UNSUPPORTED);
	snprintf(buf, sizeof(buf), "{\"version\":\"0.1.1\",\"tee\":\"snp\",\"tee\":\"tdx\"}");
	CHECK_EQ_INT(cl_kbs_parse_request((const uint8_t *)buf, strlen(buf), &r), CL_ERR_MALFORMED);
	snprintf(buf, sizeof(buf), "[\"version\"]");
	CHECK_EQ_INT(cl_kbs_parse_request((const uint8_t *)buf, strlen(buf), &r), CL_ERR_MALFORMED);
	snprintf(buf, sizeof(buf), "{\"version\":\"0.1.1\",\"tee\":\"%s\"}",
		 "snpsnpsnpsnpsnpsnpsnp");
	CHECK_EQ_INT(cl_kbs_parse_request((const uint8_t *)buf, strlen(buf), &r), CL_ERR_MALFORMED);
	{
		size_t big = CL_MAX_KBS_BODY + 1;
		uint8_t *p = calloc(1, big);

		memcpy(p, REQ, strlen(REQ));
		memset(p + strlen(REQ), ' ', big - strlen(REQ));
		CHECK_EQ_INT(cl_kbs_parse_request(p, big, &r), CL_ERR_MALFORMED);
		free(p);
	}
}

static json_t *ec_key(const char *crv)
{
	json_t *k = json_pack("{s:s, s:s}", "kty", "EC", "crv", crv);

	CHECK(jose_jwk_gen(NULL, k));
	return k;
}

static json_t *pub_of(const json_t *k, const char *alg)
{
	json_t *p = json_deep_copy(k);

	CHECK(jose_jwk_pub(NULL, p));
	if (alg)
		json_object_set_new(p, "alg", json_string(alg));
	return p;
}

static void test_attestation(void)
{
	json_t *k = ec_key("P-256"), *pub = pub_of(k, "ECDH-ES+A256KW"), *j = NULL;
	struct cl_kbs_attestation a;
	char *s = NULL;
	const char *nonce = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

	j = json_pack("{s:{s:s, s:O}, s:{s:s}}", "runtime-data", "nonce", nonce, "tee-pubkey", pub,
		      "tee-evidence", "report", "AAAA");
	s = json_dumps(j, 0);
	CHECK_EQ_INT(cl_kbs_parse_attestation((const uint8_t *)s, strlen(s), &a), CL_OK);
	CHECK_STR(a.nonce, nonce);
	CHECK(json_is_object(a.evidence));
	cl_kbs_attestation_free(&a);
	for (size_t n = 0; n < strlen(s); n += 7)
		CHECK(cl_kbs_parse_attestation((const uint8_t *)s, n, &a) != CL_OK);
	free(s);

	/* protocol 0.2 composite evidence */
	json_object_set_new(j, "tee-evidence",
			    json_pack("{s:{s:s}, s:s}", "primary_evidence", "report", "AAAA",
				      "additional_evidence", ""));
	s = json_dumps(j, 0);
	CHECK_EQ_INT(cl_kbs_parse_attestation((const uint8_t *)s, strlen(s), &a), CL_OK);
	CHECK(json_object_get(a.evidence, "report") != NULL);
	cl_kbs_attestation_free(&a);
	free(s);

	/* a nonce that is not 32 bytes */
	json_object_set_new(json_object_get(j, "runtime-data"), "nonce", json_string("AAAA"));
	s = json_dumps(j, 0);
	CHECK_EQ_INT(cl_kbs_parse_attestation((const uint8_t *)s, strlen(s), &a), CL_ERR_MALFORMED);
	free(s);
	json_decref(j);

	/* tee-pubkey checks */
	CHECK_EQ_INT(cl_kbs_check_tee_pubkey(pub), CL_OK);
	CHECK_EQ_INT(cl_kbs_check_tee_pubkey(k), CL_ERR_MALFORMED); /* carries "d" */
	json_object_set_new(pub, "alg", json_string("ECDH-ES"));
	CHECK_EQ_INT(cl_kbs_check_tee_pubkey(pub), CL_ERR_UNSUPPORTED);
	json_object_set_new(pub, "alg", json_string("ECDH-ES+A256KW"));
	json_object_set_new(pub, "x", json_string("AAAA"));
	CHECK_EQ_INT(cl_kbs_check_tee_pubkey(pub), CL_ERR_MALFORMED);
	json_decref(pub);
	json_decref(k);
	k = ec_key("P-384");
	pub = pub_of(k, NULL);
	CHECK_EQ_INT(cl_kbs_check_tee_pubkey(pub), CL_ERR_UNSUPPORTED);
	json_decref(pub);
	json_decref(k);
	k = json_pack("{s:s, s:i}", "kty", "RSA", "bits", 2048);
	CHECK(jose_jwk_gen(NULL, k));
	pub = pub_of(k, "RSA1_5");
	CHECK_EQ_INT(cl_kbs_check_tee_pubkey(pub), CL_ERR_UNSUPPORTED);
	json_object_set_new(pub, "alg", json_string("RSA-OAEP-256"));
	CHECK_EQ_INT(cl_kbs_check_tee_pubkey(pub), CL_OK);
	json_decref(pub);
	json_decref(k);
}

static void test_runtime_hash(void)
{
	/* Known answer: canonical form is sorted keys, no whitespace. */
	const char *canon = "{\"nonce\":\"n\",\"tee-pubkey\":{\"alg\":\"ECDH-ES+"
			    "A256KW\",\"crv\":\"P-256\","
			    "\"kty\":\"EC\",\"x\":\"xx\",\"y\":\"yy\"}}";
	json_t *rd =
		json_pack("{s:{s:s, s:s, s:s, s:s, s:s}, s:s}", "tee-pubkey", "y", "yy", "x", "xx",
			  "kty", "EC", "crv", "P-256", "alg", "ECDH-ES+A256KW", "nonce", "n");
	uint8_t got[64], want[64] = {0};

	CHECK_EQ_INT(cl_digest(CL_SHA384, canon, strlen(canon), want), CL_OK);
	CHECK_EQ_INT(cl_kbs_runtime_data_hash(rd, got), CL_OK);
	CHECK(memcmp(got, want, 64) == 0);
	for (int i = 48; i < 64; i++)
		CHECK(got[i] == 0);
	json_decref(rd);
}

static void test_paths(void)
{
	static const struct {
		const char *p;
		int ok;
	} cases[] = {
		{"default/key/1", 1}, {"a.b/c-d/e_f", 1}, {"a/b", 0},	     {"a/b/c/d", 0},
		{"a/../c", 0},	      {"../b/c", 0},	  {"a/./c", 0},	     {"a//c", 0},
		{"/a/b/c", 0},	      {"a/b/c/", 0},	  {"a/b/%2e%2e", 0}, {"a/b/c d", 0},
		{"a/b/..", 0},	      {"a/b/...", 1},	  {"", 0},
	};
	char longp[200];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = cl_kbs_resource_path_check(cases[i].p, strlen(cases[i].p));

		if ((rc == CL_OK) != cases[i].ok)
			fprintf(stderr, "path case '%s'\n", cases[i].p);
		CHECK((rc == CL_OK) == cases[i].ok);
	}
	memset(longp, 'a', sizeof(longp));
	longp[0] = 'r';
	longp[1] = '/';
	longp[2] = 't';
	longp[3] = '/';
	longp[199] = 0;
	CHECK(cl_kbs_resource_path_check(longp, strlen(longp)) != CL_OK);
}

static void jwe_roundtrip(json_t *key, const char *alg)
{
	json_t *pub = pub_of(key, alg), *jwe = NULL, *hdr = NULL;
	const uint8_t msg[] = "the secret bytes";
	uint8_t *pt = NULL;
	size_t n = 0;

	CHECK_EQ_INT(cl_kbs_jwe_encrypt(pub, msg, sizeof(msg), &jwe), CL_OK);
	CHECK(jwe && !json_object_get(jwe, "header"));
	CHECK(json_is_string(json_object_get(jwe, "protected")));
	hdr = jose_jwe_hdr(jwe, NULL);
	CHECK_STR(json_string_value(json_object_get(hdr, "enc")), "A256GCM");
	if (cl_kbs_jwe_decrypt(key, jwe, &pt, &n) != CL_OK)
		fprintf(stderr, "jwe round trip with %s failed\n", alg ? alg : "(no alg)");
	CHECK(n == sizeof(msg) && pt && memcmp(pt, msg, n) == 0);
	free(pt);
	pt = NULL;
	/* a flipped ciphertext character fails authentication */
	{
		char *ct = strdup(json_string_value(json_object_get(jwe, "ciphertext")));

		ct[0] = ct[0] == 'A' ? 'B' : 'A';
		json_object_set_new(jwe, "ciphertext", json_string(ct));
		free(ct);
		CHECK(cl_kbs_jwe_decrypt(key, jwe, &pt, &n) != CL_OK);
		CHECK(pt == NULL);
	}
	json_decref(hdr);
	json_decref(jwe);
	json_decref(pub);
}

static void test_jwe(void)
{
	json_t *k = ec_key("P-256"), *other = ec_key("P-256"), *jwe = NULL, *pub = NULL;
	uint8_t *pt = NULL;
	size_t n = 0;

	jwe_roundtrip(k, "ECDH-ES+A256KW");
	jwe_roundtrip(k, NULL);
	/* the ephemeral key sits in the protected header (Trustee's clients read it
   * there) */
	pub = pub_of(k, NULL);
	CHECK_EQ_INT(cl_kbs_jwe_encrypt(pub, (const uint8_t *)"x", 1, &jwe), CL_OK);
	{
		json_t *p = json_object_get(jwe, "protected");
		size_t m = jose_b64_dec(p, NULL, 0);
		char *h = calloc(1, m + 1);

		CHECK(jose_b64_dec(p, h, m) == m);
		CHECK(strstr(h, "\"epk\"") != NULL && strstr(h, "ECDH-ES+A256KW") != NULL);
		free(h);
	}
	/* the wrong private key cannot unwrap */
	CHECK(cl_kbs_jwe_decrypt(other, jwe, &pt, &n) != CL_OK);
	json_decref(jwe);
	jwe = NULL;
	/* an empty secret encrypts to an empty ciphertext with a full tag (libjose,
   * the decrypting side here, refuses to return empty plaintexts) */
	CHECK_EQ_INT(cl_kbs_jwe_encrypt(pub, (const uint8_t *)"", 0, &jwe), CL_OK);
	CHECK_STR(json_string_value(json_object_get(jwe, "ciphertext")), "");
	CHECK_EQ_INT((int)json_string_length(json_object_get(jwe, "tag")), 22);
	json_decref(jwe);
	jwe = NULL;
	/* a point off the curve, or coordinates of the wrong size, get nothing */
	{
		json_t *bad = json_deep_copy(pub);
		char *x = strdup(json_string_value(json_object_get(pub, "x")));

		x[5] = x[5] == 'A' ? 'B' : 'A';
		json_object_set_new(bad, "x", json_string(x));
		CHECK(cl_kbs_jwe_encrypt(bad, (const uint8_t *)"x", 1, &jwe) != CL_OK);
		CHECK(jwe == NULL);
		x[strlen(x) - 2] = 0;
		json_object_set_new(bad, "x", json_string(x));
		CHECK_EQ_INT(cl_kbs_jwe_encrypt(bad, (const uint8_t *)"x", 1, &jwe),
			     CL_ERR_MALFORMED);
		json_object_set_new(bad, "x", json_integer(1));
		CHECK(cl_kbs_jwe_encrypt(bad, (const uint8_t *)"x", 1, &jwe) != CL_OK);
		free(x);
		json_decref(bad);
	}
	json_decref(pub);
	json_decref(k);
	json_decref(other);
	k = ec_key("P-521");
	jwe_roundtrip(k, "ECDH-ES+A256KW");
	json_decref(k);
	k = json_pack("{s:s, s:i}", "kty", "RSA", "bits", 2048);
	CHECK(jose_jwk_gen(NULL, k));
	jwe_roundtrip(k, "RSA-OAEP-256");
	pub = pub_of(k, "RSA1_5");
	CHECK_EQ_INT(cl_kbs_jwe_encrypt(pub, (const uint8_t *)"x", 1, &jwe), CL_ERR_UNSUPPORTED);
	CHECK(jwe == NULL);
	json_decref(pub);
	json_decref(k);
}

static void test_seal(void)
{
	uint8_t kek[32], kek2[32];
	struct cl_buf s = {0}, p = {0};
	const char *msg = "attack at dawn";

	memset(kek, 7, sizeof(kek));
	memset(kek2, 8, sizeof(kek2));
	CHECK_EQ_INT(cl_kbs_seal(kek, "a/b/c", (const uint8_t *)msg, strlen(msg), &s), CL_OK);
	CHECK(s.len == 4 + 12 + strlen(msg) + 16);
	CHECK(memmem(s.data, s.len, msg, strlen(msg)) == NULL);
	CHECK_EQ_INT(cl_kbs_unseal(kek, "a/b/c", s.data, s.len, &p), CL_OK);
	CHECK(p.len == strlen(msg) && memcmp(p.data, msg, p.len) == 0);
	cl_buf_free(&p);
	/* another path (AAD), another key, a flipped byte, truncation */
	CHECK_EQ_INT(cl_kbs_unseal(kek, "a/b/d", s.data, s.len, &p), CL_ERR_SIGNATURE);
	CHECK_EQ_INT(cl_kbs_unseal(kek2, "a/b/c", s.data, s.len, &p), CL_ERR_SIGNATURE);
	for (size_t i = 0; i < s.len; i++) {
		s.data[i] ^= 1;
		CHECK(cl_kbs_unseal(kek, "a/b/c", s.data, s.len, &p) != CL_OK);
		s.data[i] ^= 1;
	}
	for (size_t n = 0; n < s.len; n++)
		CHECK(cl_kbs_unseal(kek, "a/b/c", s.data, n, &p) != CL_OK);
	CHECK(p.len == 0);
	cl_buf_free(&s);
}

static void write_key(const char *path, EVP_PKEY *pk, int priv)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	if (priv)
		CHECK(PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) == 1);
	else
		CHECK(PEM_write_PUBKEY(f, pk) == 1);
	fclose(f);
}

static void admin_case(const char *type, const char *curve)
{
	EVP_PKEY *pk = curve ? EVP_EC_gen(curve) : EVP_PKEY_Q_keygen(NULL, NULL, type);
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	char kp[256], pp[256], op[256], role[32];
	struct cl_kbs_admin_key *k = NULL, *ok = NULL;
	char *jwt = NULL;

	snprintf(kp, sizeof(kp), "%s/admin-%s.key", tmpdir, type);
	snprintf(pp, sizeof(pp), "%s/admin-%s.pub", tmpdir, type);
	snprintf(op, sizeof(op), "%s/other-%s.pub", tmpdir, type);
	write_key(kp, pk, 1);
	write_key(pp, pk, 0);
	write_key(op, other, 0);
	CHECK_EQ_INT(cl_kbs_admin_key_load(pp, &k), CL_OK);
	CHECK_EQ_INT(cl_kbs_admin_key_load(op, &ok), CL_OK);
	CHECK_EQ_INT(cl_kbs_admin_sign(kp, "auditor", 60, &jwt), CL_OK);
	CHECK_EQ_INT(cl_kbs_admin_verify(k, jwt, strlen(jwt), 0, role), CL_OK);
	CHECK_STR(role, "auditor");
	CHECK(cl_kbs_role_allows(role, "auditor") && !cl_kbs_role_allows(role, "resource-writer"));
	CHECK(cl_kbs_role_allows("admin", "resource-writer"));
	CHECK(cl_kbs_admin_verify(ok, jwt, strlen(jwt), 0, role) != CL_OK);
	/* expired: checked two minutes later */
	CHECK_EQ_INT(cl_kbs_admin_verify(k, jwt, strlen(jwt), (int64_t)time(NULL) + 120, role),
		     CL_ERR_EXPIRED);
	/* every single-character change is refused */
	for (size_t i = 0; i < strlen(jwt); i += 5) {
		char c = jwt[i];

		if (c == '.')
			continue;
		jwt[i] = c == 'A' ? 'B' : 'A';
		CHECK(cl_kbs_admin_verify(k, jwt, strlen(jwt), 0, role) != CL_OK);
		jwt[i] = c;
	}
	CHECK(cl_kbs_admin_verify(k, jwt, strlen(jwt) - 1, 0, role) != CL_OK);
	free(jwt);
	cl_kbs_admin_key_free(k);
	cl_kbs_admin_key_free(ok);
	EVP_PKEY_free(pk);
	EVP_PKEY_free(other);
}

static void test_admin(void)
{
	admin_case("ED25519", NULL);
	admin_case("EC", "P-256");
}

static void test_evidence_shapes(void)
{
	struct cl_buf b = {0}, v = {0};
	json_t *e = json_pack("{s:s, s:[{s:s, s:[i,i]}]}", "attestation_report", "AQID",
			      "cert_chain", "cert_type", "VCEK", "data", 9, 10);

	CHECK_EQ_INT(cl_kbs_evidence_bytes("snp", e, &b, &v), CL_OK);
	CHECK(b.len == 3 && b.data[2] == 3 && v.len == 2 && v.data[1] == 10);
	cl_buf_free(&b);
	cl_buf_free(&v);
	json_decref(e);
	e = json_pack("{s:s}", "quote", "AQID");
	CHECK_EQ_INT(cl_kbs_evidence_bytes("tdx", e, &b, NULL), CL_OK);
	cl_buf_free(&b);
	CHECK_EQ_INT(cl_kbs_evidence_bytes("devtee", e, &b, NULL), CL_ERR_MALFORMED);
	json_decref(e);
	e = json_pack("{s:[i, i]}", "report", 1, 256);
	CHECK_EQ_INT(cl_kbs_evidence_bytes("devtee", e, &b, NULL), CL_ERR_MALFORMED);
	cl_buf_free(&b);
	json_decref(e);
	e = json_string("{\"quote\":\"AQID\"}");
	CHECK_EQ_INT(cl_kbs_evidence_bytes("sgx", e, &b, NULL), CL_OK);
	CHECK(b.len == 3);
	cl_buf_free(&b);
	json_decref(e);
	e = json_pack("{s:{}}", "attestation_report");
	CHECK_EQ_INT(cl_kbs_evidence_bytes("snp", e, &b, NULL), CL_ERR_MALFORMED);
	json_decref(e);
	e = json_pack("{s:i}", "attestation_report", 1);
	CHECK_EQ_INT(cl_kbs_evidence_bytes("snp", e, &b, NULL), CL_ERR_UNSUPPORTED);
	json_decref(e);
}

/* Trustee's snp evidence: the sev crate's serde report plus its cert chain,
 * as an object or as a JSON string. */
static void test_evidence_trustee_snp(void)
{
	struct cl_buf text = vector_read("sev-snp/trustee/e2e-snp-evidence.json");
	struct cl_buf b = {0}, v = {0};
	uint8_t rep[CL_SNP_REPORT_SIZE];
	struct cl_snp_report p;
	json_t *e = json_loadb((const char *)text.data, text.len, 0, NULL);
	json_t *s = json_stringn((const char *)text.data, text.len);

	CHECK(e != NULL && s != NULL);
	CHECK_EQ_INT(cl_snp_report_from_serde(json_object_get(e, "attestation_report"), rep),
		     CL_OK);
	CHECK_EQ_INT(cl_kbs_evidence_bytes("snp", e, &b, &v), CL_OK);
	CHECK(b.len == sizeof(rep) && memcmp(b.data, rep, sizeof(rep)) == 0);
	CHECK_EQ_INT(cl_snp_report_parse(b.data, b.len, &p), CL_OK);
	/* the VCEK is cert_chain[0], a DER certificate */
	CHECK(v.len == json_array_size(json_object_get(
			       json_array_get(json_object_get(e, "cert_chain"), 0), "data")));
	CHECK(v.len > 2 && v.data[0] == 0x30);
	cl_buf_free(&b);
	cl_buf_free(&v);
	CHECK_EQ_INT(cl_kbs_evidence_bytes("snp", s, &b, NULL), CL_OK);
	CHECK(b.len == sizeof(rep) && memcmp(b.data, rep, sizeof(rep)) == 0);
	cl_buf_free(&b);
	/* a malformed serde report stops here, before any verification */
	json_object_set_new(json_object_get(e, "attestation_report"), "vmpl",
			    json_integer(1L << 32));
	CHECK_EQ_INT(cl_kbs_evidence_bytes("snp", e, &b, NULL), CL_ERR_MALFORMED);
	CHECK(strstr(cl_error_detail(), "vmpl") != NULL);
	cl_buf_free(&b);
	json_decref(s);
	json_decref(e);
	cl_buf_free(&text);
}

/* ------------------------------------------------------------- whole flows */

struct env {
	struct cl_kbs *k;
	struct cl_kbs_store *st;
	struct cl_kbs_config cfg;
	struct cl_buf root_pem;
	EVP_PKEY *root_key;
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

/* 1 when the newest audit entry's detail contains what. */
static int last_audit_has(struct env *e, const char *what)
{
	json_t *list = NULL;
	const char *d = NULL;
	int found = 0;

	if (cl_kbs_store_audit_list(e->st, 0, &list) != CL_OK)
		return 0;
	d = json_string_value(
		json_object_get(json_array_get(list, json_array_size(list) - 1), "detail"));
	found = d && strstr(d, what) != NULL;
	json_decref(list);
	return found;
}

/* auth, then an attest body for a dev-TEE report (or raw evidence) over the
 * runtime data. */
static char *attest_body(struct env *e, const char *tee, json_t *key, const struct cl_buf *raw,
			 int bind)
{
	struct cl_kbs_resp r = {0};
	char req[128];
	json_t *ch = NULL, *pub = pub_of(key, "ECDH-ES+A256KW"), *rd = NULL, *body = NULL;
	uint8_t h[64], rep[CL_DEVTEE_REPORT_LEN];
	struct cl_devtee_report dr = {0};
	char *b64 = NULL, *s = NULL;

	e->cookie[0] = 0;
	snprintf(req, sizeof(req), "{\"version\":\"0.1.1\",\"tee\":\"%s\",\"extra-params\":\"\"}",
		 tee);
	CHECK_EQ_INT(call(e, CL_KBS_POST, "/kbs/v0/auth", req, NULL, &r), 200);
	ch = json_loads(r.body, 0, NULL);
	rd = json_pack("{s:O, s:O}", "nonce", json_object_get(ch, "nonce"), "tee-pubkey", pub);
	CHECK_EQ_INT(cl_kbs_runtime_data_hash(rd, h), CL_OK);
	if (raw) {
		b64 = cl_base64_encode(raw->data, raw->len);
		body = json_pack("{s:O, s:{s:s}}", "runtime-data", rd, "tee-evidence",
				 "attestation_report", b64);
	} else {
		dr.version = CL_DEVTEE_VERSION;
		memset(dr.measurement, 0x42, sizeof(dr.measurement));
		memcpy(dr.report_data, h, 64);
		if (!bind)
			dr.report_data[0] ^= 1;
		CHECK_EQ_INT(cl_devtee_report_sign(&dr, e->root_key, rep), CL_OK);
		b64 = cl_base64_encode(rep, sizeof(rep));
		body = json_pack("{s:O, s:{s:s}}", "runtime-data", rd, "tee-evidence", "report",
				 b64);
	}
	s = json_dumps(body, JSON_COMPACT);
	free(b64);
	json_decref(body);
	json_decref(rd);
	json_decref(pub);
	json_decref(ch);
	cl_kbs_resp_free(&r);
	return s;
}

/* auth, then an attest body carrying `tev` as tee-evidence. */
static char *attest_body_ev(struct env *e, const char *tee, json_t *key, json_t *tev)
{
	struct cl_kbs_resp r = {0};
	char req[128];
	json_t *ch = NULL, *pub = pub_of(key, "ECDH-ES+A256KW"), *rd = NULL, *body = NULL;
	char *s = NULL;

	e->cookie[0] = 0;
	snprintf(req, sizeof(req), "{\"version\":\"0.1.1\",\"tee\":\"%s\",\"extra-params\":\"\"}",
		 tee);
	CHECK_EQ_INT(call(e, CL_KBS_POST, "/kbs/v0/auth", req, NULL, &r), 200);
	ch = json_loads(r.body, 0, NULL);
	rd = json_pack("{s:O, s:O}", "nonce", json_object_get(ch, "nonce"), "tee-pubkey", pub);
	body = json_pack("{s:O, s:O}", "runtime-data", rd, "tee-evidence", tev);
	s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	json_decref(rd);
	json_decref(pub);
	json_decref(ch);
	cl_kbs_resp_free(&r);
	return s;
}

static void test_flow(void)
{
	struct env e = {0};
	struct cl_kbs_resp r = {0};
	char db[300], dt[300], rootp[320], t[64], *body = NULL, *jwt = NULL;
	json_t *key = ec_key("P-256"), *jwe = NULL;
	struct cl_buf sealed = {0}, snp = vector_read("sev-snp/trustee/test-report.bin");
	struct cl_buf vcek = vector_read("sev-snp/trustee/test-vcek.der");
	uint8_t *pt = NULL;
	size_t n = 0;
	const char *rvs = "{\"devtee\":{\"measurement\":["
			  "\"424242424242424242424242424242424242424242"
			  "424242424242424242424242424242424242424242424242424242\"]}}";

	snprintf(db, sizeof(db), "sqlite:%s/flow.db", tmpdir);
	snprintf(dt, sizeof(dt), "%s/devtee", tmpdir);
	snprintf(rootp, sizeof(rootp), "%s/root.pem", dt);
	CHECK_EQ_INT(mkdir(dt, 0700), 0);
	CHECK_EQ_INT(cl_devtee_root_load(dt, &e.root_key, NULL), CL_OK);
	CHECK_EQ_INT(cl_read_file(rootp, 0, &e.root_pem), CL_OK);
	CHECK_EQ_INT(cl_kbs_state_init(tmpdir), CL_OK);
	snprintf(rootp, sizeof(rootp), "%s/token.key", tmpdir);
	CHECK_EQ_INT(cl_ear_key_load(rootp, &e.cfg.token_key), CL_OK);
	memset(e.cfg.kek, 3, sizeof(e.cfg.kek));
	e.cfg.verify.devtee.root = (const char *)e.root_pem.data;
	e.cfg.verify.snp.vcek = vcek.data;
	e.cfg.verify.snp.vcek_len = vcek.len;
	e.cfg.verify.offline = 1;
	CHECK_EQ_INT(cl_kbs_store_open(db, &e.st), CL_OK);
	CHECK_EQ_INT(cl_kbs_new(&e.cfg, &e.k), CL_OK);
	CHECK_EQ_INT(
		cl_kbs_seal(e.cfg.kek, "default/key/1", (const uint8_t *)"hunter2", 7, &sealed),
		CL_OK);
	CHECK_EQ_INT(cl_kbs_store_resource_put(e.st, "default/key/1", sealed.data, sealed.len),
		     CL_OK);

	/* no reference values: a token, but not affirming, so the default policy
   * denies */
	body = attest_body(&e, "devtee", key, NULL, 1);
	CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/attest", body, NULL, &r), 200);
	free(body);
	CHECK_EQ_INT(call(&e, CL_KBS_GET, "/kbs/v0/resource/default/key/1", NULL, NULL, &r), 403);
	CHECK_STR(title_of(&r, t, sizeof(t)), "PolicyDeny");

	/* reference values naming the measurement: released, and it decrypts */
	CHECK_EQ_INT(cl_kbs_store_policy_put(e.st, "refvalues", "", rvs, strlen(rvs)), CL_OK);
	body = attest_body(&e, "devtee", key, NULL, 1);
	CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/attest", body, NULL, &r), 200);
	{
		json_t *tj = json_loads(r.body, 0, NULL);

		jwt = strdup(json_string_value(json_object_get(tj, "token")));
		json_decref(tj);
	}
	/* the nonce is spent: the same body again is refused */
	CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/attest", body, NULL, &r), 401);
	CHECK_STR(title_of(&r, t, sizeof(t)), "AttestationError");
	CHECK(strstr(r.body, "already been used") == NULL);
	free(body);
	CHECK_EQ_INT(call(&e, CL_KBS_GET, "/kbs/v0/resource/default/key/1", NULL, NULL, &r), 200);
	jwe = json_loads(r.body, 0, NULL);
	CHECK_EQ_INT(cl_kbs_jwe_decrypt(key, jwe, &pt, &n), CL_OK);
	CHECK(n == 7 && pt && memcmp(pt, "hunter2", 7) == 0);
	free(pt);
	json_decref(jwe);
	/* Bearer works without the cookie; a missing resource is 404; traversal 404
   */
	e.cookie[0] = 0;
	{
		char auth[8192];

		snprintf(auth, sizeof(auth), "Bearer %s", jwt);
		CHECK_EQ_INT(call(&e, CL_KBS_GET, "/kbs/v0/resource/default/key/1", NULL, auth, &r),
			     200);
		CHECK_EQ_INT(call(&e, CL_KBS_GET, "/kbs/v0/resource/default/key/2", NULL, auth, &r),
			     404);
		CHECK_EQ_INT(call(&e, CL_KBS_GET, "/kbs/v0/resource/default/../1", NULL, auth, &r),
			     404);
		auth[strlen(auth) - 2] ^= 1;
		CHECK_EQ_INT(call(&e, CL_KBS_GET, "/kbs/v0/resource/default/key/1", NULL, auth, &r),
			     401);
		CHECK_STR(title_of(&r, t, sizeof(t)), "TokenVerifierError");
	}
	CHECK_EQ_INT(call(&e, CL_KBS_GET, "/kbs/v0/resource/default/key/1", NULL, NULL, &r), 401);
	CHECK_STR(title_of(&r, t, sizeof(t)), "TokenNotFound");

	/* report data not bound to the key */
	body = attest_body(&e, "devtee", key, NULL, 0);
	CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/attest", body, NULL, &r), 401);
	CHECK_STR(title_of(&r, t, sizeof(t)), "AttestationError");
	free(body);
	/* metrics count what happened */
	CHECK_EQ_INT(call(&e, CL_KBS_GET, "/metrics", NULL, NULL, &r), 200);
	CHECK(strstr(r.body, "kbs_attestations_total{tee=\"devtee\",outcome=\"token\"} 2") != NULL);
	CHECK(strstr(r.body, "kbs_resource_decisions_total{decision=\"release\"} 2") != NULL);
	/* real SNP evidence verifies (as of 2025-06-01, when its VCEK is valid) but
   * was made for other report data */
	cl_kbs_free(e.k);
	e.cfg.verify.at = 1748736000;
	CHECK_EQ_INT(cl_kbs_new(&e.cfg, &e.k), CL_OK);
	body = attest_body(&e, "snp", key, &snp, 1);
	CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/attest", body, NULL, &r), 401);
	/* the client learns only that attestation failed; the audit says why */
	CHECK(strstr(r.body, "report data") == NULL);
	CHECK(last_audit_has(&e, "report data"));
	free(body);
	/* a mutated SNP report fails its signature */
	snp.data[42] ^= 1;
	body = attest_body(&e, "snp", key, &snp, 1);
	CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/attest", body, NULL, &r), 401);
	free(body);
	/*
   * Trustee's serde-form SNP evidence: converted, signature and the Genoa
   * chain from its own cert_chain[0] verify (no VCEK configured, 2025-07-01),
   * and it fails only on the report-data binding to this session.
   */
	cl_kbs_free(e.k);
	e.cfg.verify.snp.vcek = NULL;
	e.cfg.verify.snp.vcek_len = 0;
	e.cfg.verify.at = 1751328000;
	CHECK_EQ_INT(cl_kbs_new(&e.cfg, &e.k), CL_OK);
	{
		struct cl_buf tx = vector_read("sev-snp/trustee/e2e-snp-evidence.json");
		json_t *tev = json_loadb((const char *)tx.data, tx.len, 0, NULL);
		json_t *m = NULL;

		CHECK(tev != NULL);
		body = attest_body_ev(&e, "snp", key, tev);
		CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/attest", body, NULL, &r), 401);
		CHECK_STR(title_of(&r, t, sizeof(t)), "AttestationError");
		CHECK(strstr(r.body, "report data") == NULL);
		CHECK(last_audit_has(&e, "report data does not match"));
		free(body);
		/* the same with one measurement byte changed: now the signature fails */
		m = json_array_get(
			json_object_get(json_object_get(tev, "attestation_report"), "measurement"),
			0);
		json_integer_set(m, json_integer_value(m) ^ 1);
		body = attest_body_ev(&e, "snp", key, tev);
		CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/attest", body, NULL, &r), 401);
		CHECK(strstr(r.body, "signature") == NULL);
		CHECK(last_audit_has(&e, "signature"));
		CHECK(!last_audit_has(&e, "report data"));
		free(body);
		json_decref(tev);
		cl_buf_free(&tx);
	}
	/* no cookie at all; garbage body */
	e.cookie[0] = 0;
	CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/attest", "{}", NULL, &r), 401);
	body = attest_body(&e, "devtee", key, NULL, 1);
	free(body);
	CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/attest", "{\"runtime-data\":", NULL, &r), 400);
	/* admin endpoints refuse without a token and leave the resource alone */
	CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/resource/default/key/1", "evil", NULL, &r),
		     401);
	CHECK_EQ_INT(call(&e, CL_KBS_POST, "/kbs/v0/resource-policy",
			  "function release() return true end", "Bearer x.y.z", &r),
		     401);
	cl_buf_free(&sealed);
	CHECK_EQ_INT(cl_kbs_store_resource_get(e.st, "default/key/1", &sealed), CL_OK);
	{
		struct cl_buf p = {0};

		CHECK_EQ_INT(cl_kbs_unseal(e.cfg.kek, "default/key/1", sealed.data, sealed.len, &p),
			     CL_OK);
		CHECK(p.len == 7 && memcmp(p.data, "hunter2", 7) == 0);
		cl_buf_free(&p);
	}
	cl_kbs_resp_free(&r);
	free(jwt);
	cl_buf_free(&sealed);
	cl_buf_free(&snp);
	cl_buf_free(&vcek);
	cl_buf_free(&e.root_pem);
	json_decref(key);
	cl_kbs_free(e.k);
	cl_kbs_store_close(e.st);
	cl_ear_key_free(e.cfg.token_key);
	EVP_PKEY_free(e.root_key);
}

int main(void)
{
	CHECK(mkdtemp(tmpdir) != NULL);
	RUN(test_request);
	RUN(test_attestation);
	RUN(test_runtime_hash);
	RUN(test_paths);
	RUN(test_jwe);
	RUN(test_seal);
	RUN(test_admin);
	RUN(test_evidence_shapes);
	RUN(test_evidence_trustee_snp);
	RUN(test_flow);
	cl_policy_thread_release();
	{
		char cmd[100];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmpdir);
	}
	return test_done("kbs_proto_test");
}
