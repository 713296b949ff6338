/*
 * Admin API tokens: compact JWS signed with Ed25519 (EdDSA) or P-256 (ES256),
 * claims {"iat", "exp", "role"}. Only these two algorithms are accepted and
 * the algorithm must match the configured key's type, so a token cannot pick
 * a weaker one (or "none").
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cloister/jws.h"
#include "cloister/kbs.h"

#define ADMIN_CLOCK_SKEW 60
#define MAX_ADMIN_TTL	 (24 * 3600)

struct cl_kbs_admin_key {
	EVP_PKEY *pk;
	int ed25519;
};

void cl_kbs_admin_key_free(struct cl_kbs_admin_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pk);
	free(k);
}

static int key_kind(EVP_PKEY *pk, int *ed)
{
	char grp[32] = "";

	if (EVP_PKEY_is_a(pk, "ED25519")) {
		*ed = 1;
		return CL_OK;
	}
	CL_ENSURE_MSG(EVP_PKEY_is_a(pk, "EC") &&
			      EVP_PKEY_get_utf8_string_param(pk, "group", grp, sizeof(grp), NULL) ==
				      1 &&
			      (strcmp(grp, "prime256v1") == 0 || strcmp(grp, "P-256") == 0),
		      CL_ERR_UNSUPPORTED, "admin key must be Ed25519 or EC P-256");
	*ed = 0;
	return CL_OK;
}

int cl_kbs_admin_key_from_pem(const uint8_t *pem, size_t len, struct cl_kbs_admin_key **out)
{
	BIO *b = NULL;
	EVP_PKEY *pk = NULL;
	int ed = 0, rc = CL_OK;

	*out = NULL;
	CL_CHECK(len <= 16384, CL_ERR_MALFORMED, "admin key too large");
	b = BIO_new_mem_buf(pem, (int)len);
	CL_CHECK(b, CL_ERR_NOMEM, "out of memory");
	pk = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	if (!pk) {
		/* A private key file also yields its public half. */
		(void)BIO_reset(b);
		pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	}
	CL_CHECK(pk, CL_ERR_MALFORMED, "admin key is not a PEM public key");
	CL_TRY(key_kind(pk, &ed));
	*out = calloc(1, sizeof(**out));
	CL_CHECK(*out, CL_ERR_NOMEM, "out of memory");
	(*out)->pk = pk;
	(*out)->ed25519 = ed;
	pk = NULL;
out:
	EVP_PKEY_free(pk);
	BIO_free(b);
	return rc;
}

int cl_kbs_admin_key_load(const char *path, struct cl_kbs_admin_key **out)
{
	struct cl_buf b = {0};
	int rc = CL_OK;

	*out = NULL;
	CL_TRY(cl_read_file(path, 16384, &b));
	CL_TRY(cl_kbs_admin_key_from_pem(b.data, b.len, out));
out:
	cl_buf_free(&b);
	return rc;
}

int cl_kbs_admin_sign(const char *key_path, const char *role, int64_t ttl, char **jwt)
{
	struct cl_buf pem = {0};
	BIO *b = NULL;
	EVP_PKEY *pk = NULL;
	json_t *hdr = NULL, *cl = NULL;
	char *cs = NULL;
	int64_t now = (int64_t)time(NULL);
	int ed = 0, rc = CL_OK;

	*jwt = NULL;
	CL_TRY(cl_read_file(key_path, 16384, &pem));
	b = BIO_new_mem_buf(pem.data, (int)pem.len);
	pk = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	CL_CHECK(pk, CL_ERR_MALFORMED, "%s is not a PEM private key", key_path);
	CL_TRY(key_kind(pk, &ed));
	hdr = json_pack("{s:s}", "typ", "JWT");
	cl = json_pack("{s:I, s:I, s:s}", "iat", (json_int_t)now, "exp",
		       (json_int_t)(now + (ttl > 0 && ttl <= MAX_ADMIN_TTL ? ttl : 300)), "role",
		       role ? role : "admin");
	cs = cl ? json_dumps(cl, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	CL_CHECK(hdr && cs, CL_ERR_NOMEM, "out of memory");
	CL_TRY(cl_jws_sign(pk, hdr, cs, strlen(cs), jwt));
out:
	free(cs);
	json_decref(cl);
	json_decref(hdr);
	EVP_PKEY_free(pk);
	BIO_free(b);
	cl_buf_free(&pem);
	return rc;
}

/*
 * exp after at; iat no later than at plus the clock skew; exp - iat (the
 * lifetime) at most MAX_ADMIN_TTL. exp and iat are whatever 64-bit integers
 * the token carries, so no sum or difference is taken that could overflow.
 */
static int check_times(const json_t *cl, int64_t at)
{
	const json_t *je = json_object_get(cl, "exp"), *ji = json_object_get(cl, "iat");
	int64_t exp = 0, iat = 0, life = 0, latest = 0;

	CL_ENSURE_MSG(json_is_integer(je), CL_ERR_MALFORMED, "admin token has no exp");
	exp = (int64_t)json_integer_value(je);
	CL_ENSURE_MSG(exp > at, CL_ERR_EXPIRED, "admin token has expired");
	CL_ENSURE_MSG(json_is_integer(ji), CL_ERR_MALFORMED, "admin token has no iat");
	iat = (int64_t)json_integer_value(ji);
	if (__builtin_add_overflow(at, ADMIN_CLOCK_SKEW, &latest))
		latest = INT64_MAX;
	CL_ENSURE_MSG(iat <= latest, CL_ERR_MALFORMED, "admin token iat is in the future");
	CL_ENSURE_MSG(iat <= exp && !__builtin_sub_overflow(exp, iat, &life) &&
			      life <= MAX_ADMIN_TTL,
		      CL_ERR_MALFORMED, "admin token lifetime (exp - iat) is negative or too long");
	return CL_OK;
}

/* Re-fail with a prefix naming the token, keeping the code and the cause. */
static int admin_fail(int rc)
{
	char why[256];

	snprintf(why, sizeof(why), "%s", cl_error_detail());
	return cl_fail(rc, "admin token: %s", why);
}

int cl_kbs_admin_verify(const struct cl_kbs_admin_key *k, const char *jwt, size_t len, int64_t at,
			char role[32])
{
	struct cl_jws j;
	json_t *cl = NULL;
	const char *r = NULL;
	int rc = CL_OK, c = CL_OK;

	role[0] = 0;
	memset(&j, 0, sizeof(j));
	if (!at)
		at = (int64_t)time(NULL);
	CL_CHECK(k && jwt && len > 0 && len <= 8192, CL_ERR_ARG, "no admin token");
	c = cl_jws_parse(jwt, len, 8192, &j);
	if (c != CL_OK) {
		rc = admin_fail(c);
		goto out;
	}
	/* The algorithm is the configured key's: a token cannot choose another. */
	CL_CHECK(j.alg == (k->ed25519 ? CL_JWS_EDDSA : CL_JWS_ES256), CL_ERR_UNSUPPORTED,
		 "admin token algorithm does not match the admin key");
	c = cl_jws_verify(&j, k->pk);
	if (c == CL_OK)
		c = cl_jws_payload_json(&j, &cl);
	if (c != CL_OK) {
		rc = admin_fail(c);
		goto out;
	}
	CL_TRY(check_times(cl, at));
	r = json_string_value(json_object_get(cl, "role"));
	CL_CHECK(r && strlen(r) < 32, CL_ERR_MALFORMED, "admin token has no role");
	snprintf(role, 32, "%s", r);
out:
	json_decref(cl);
	cl_jws_clear(&j);
	return rc;
}

int cl_kbs_role_allows(const char *role, const char *need)
{
	if (!role || !need)
		return 0;
	return strcmp(role, CL_KBS_ROLE_ADMIN) == 0 || strcmp(role, need) == 0;
}
