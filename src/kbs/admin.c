/*
 * Admin API tokens: compact JWS signed with Ed25519 (EdDSA) or P-256 (ES256),
 * claims {"iat", "exp", "role"}. Only these two algorithms are accepted and
 * the algorithm must match the configured key's type, so a token cannot pick
 * a weaker one (or "none").
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <jose/b64.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

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
	EVP_MD_CTX *c = NULL;
	ECDSA_SIG *es = NULL;
	json_t *hdr = NULL, *cl = NULL;
	char *hs = NULL, *cs = NULL, *h64 = NULL, *c64 = NULL, *s64 = NULL, *input = NULL;
	uint8_t sig[160], raw[64];
	size_t sl = sizeof(sig);
	const uint8_t *sp = sig;
	int64_t now = (int64_t)time(NULL);
	int ed = 0, rc = CL_OK;

	*jwt = NULL;
	CL_TRY(cl_read_file(key_path, 16384, &pem));
	b = BIO_new_mem_buf(pem.data, (int)pem.len);
	pk = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	CL_CHECK(pk, CL_ERR_MALFORMED, "%s is not a PEM private key", key_path);
	CL_TRY(key_kind(pk, &ed));
	hdr = json_pack("{s:s, s:s}", "alg", ed ? "EdDSA" : "ES256", "typ", "JWT");
	cl = json_pack("{s:I, s:I, s:s}", "iat", (json_int_t)now, "exp",
		       (json_int_t)(now + (ttl > 0 && ttl <= MAX_ADMIN_TTL ? ttl : 300)), "role",
		       role ? role : "admin");
	hs = hdr ? json_dumps(hdr, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	cs = cl ? json_dumps(cl, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	h64 = hs ? cl_base64url_encode(hs, strlen(hs)) : NULL;
	c64 = cs ? cl_base64url_encode(cs, strlen(cs)) : NULL;
	CL_CHECK(h64 && c64, CL_ERR_NOMEM, "out of memory");
	input = malloc(strlen(h64) + strlen(c64) + 2 + 200);
	CL_CHECK(input, CL_ERR_NOMEM, "out of memory");
	sprintf(input, "%s.%s", h64, c64);
	c = EVP_MD_CTX_new();
	CL_CHECK(c && EVP_DigestSignInit(c, NULL, ed ? NULL : EVP_sha256(), NULL, pk) == 1 &&
			 EVP_DigestSign(c, sig, &sl, (const uint8_t *)input, strlen(input)) == 1,
		 CL_ERR_CRYPTO, "signing the admin token failed");
	if (ed) {
		s64 = cl_base64url_encode(sig, sl);
	} else {
		const BIGNUM *r = NULL, *s = NULL;

		es = d2i_ECDSA_SIG(NULL, &sp, (long)sl);
		CL_CHECK(es, CL_ERR_CRYPTO, "bad ECDSA signature");
		ECDSA_SIG_get0(es, &r, &s);
		CL_CHECK(BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32,
			 CL_ERR_CRYPTO, "bad ECDSA signature");
		s64 = cl_base64url_encode(raw, 64);
	}
	CL_CHECK(s64, CL_ERR_NOMEM, "out of memory");
	strcat(input, ".");
	strcat(input, s64);
	*jwt = input;
	input = NULL;
out:
	free(input);
	free(s64);
	free(c64);
	free(h64);
	free(cs);
	free(hs);
	json_decref(cl);
	json_decref(hdr);
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(c);
	EVP_PKEY_free(pk);
	BIO_free(b);
	cl_buf_free(&pem);
	return rc;
}

static json_t *dec_part(const char *s, size_t n)
{
	json_t *e = json_stringn(s, n), *j = NULL;
	uint8_t buf[4096];
	size_t m = e ? jose_b64_dec(e, NULL, 0) : SIZE_MAX;

	if (m != SIZE_MAX && m < sizeof(buf) && jose_b64_dec(e, buf, m) == m)
		j = json_loadb((const char *)buf, m, JSON_REJECT_DUPLICATES, NULL);
	json_decref(e);
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
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

int cl_kbs_admin_verify(const struct cl_kbs_admin_key *k, const char *jwt, size_t len, int64_t at,
			char role[32])
{
	const char *d1 = NULL, *d2 = NULL, *alg = NULL, *r = NULL;
	json_t *hdr = NULL, *cl = NULL, *sj = NULL;
	uint8_t sig[128], der[80];
	size_t sl = 0;
	EVP_MD_CTX *c = NULL;
	ECDSA_SIG *es = NULL;
	uint8_t *dp = der;
	int dl = 0, rc = CL_OK;

	role[0] = 0;
	if (!at)
		at = (int64_t)time(NULL);
	CL_CHECK(k && jwt && len > 0 && len <= 8192, CL_ERR_ARG, "no admin token");
	d1 = memchr(jwt, '.', len);
	d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - jwt)) : NULL;
	CL_CHECK(d1 && d2, CL_ERR_MALFORMED, "admin token is not a compact JWS");
	hdr = dec_part(jwt, (size_t)(d1 - jwt));
	cl = dec_part(d1 + 1, (size_t)(d2 - d1 - 1));
	CL_CHECK(hdr && cl, CL_ERR_MALFORMED, "admin token has a bad header or payload");
	alg = json_string_value(json_object_get(hdr, "alg"));
	CL_CHECK(alg && strcmp(alg, k->ed25519 ? "EdDSA" : "ES256") == 0, CL_ERR_UNSUPPORTED,
		 "admin token algorithm does not match the admin key");
	sj = json_stringn(d2 + 1, len - (size_t)(d2 + 1 - jwt));
	sl = sj ? jose_b64_dec(sj, NULL, 0) : SIZE_MAX;
	CL_CHECK(sl == (size_t)64 && jose_b64_dec(sj, sig, sizeof(sig)) == 64, CL_ERR_SIGNATURE,
		 "admin token signature has the wrong size");
	c = EVP_MD_CTX_new();
	CL_CHECK(c, CL_ERR_NOMEM, "out of memory");
	if (k->ed25519) {
		CL_CHECK(EVP_DigestVerifyInit(c, NULL, NULL, NULL, k->pk) == 1 &&
				 EVP_DigestVerify(c, sig, 64, (const uint8_t *)jwt,
						  (size_t)(d2 - jwt)) == 1,
			 CL_ERR_SIGNATURE, "admin token signature does not verify");
	} else {
		BIGNUM *br = BN_bin2bn(sig, 32, NULL), *bs = BN_bin2bn(sig + 32, 32, NULL);

		es = ECDSA_SIG_new();
		if (!es || !br || !bs || ECDSA_SIG_set0(es, br, bs) != 1) {
			BN_free(br);
			BN_free(bs);
			CL_CHECK(0, CL_ERR_NOMEM, "out of memory");
		}
		dl = i2d_ECDSA_SIG(es, &dp);
		CL_CHECK(dl > 0 && EVP_DigestVerifyInit(c, NULL, EVP_sha256(), NULL, k->pk) == 1 &&
				 EVP_DigestVerify(c, der, (size_t)dl, (const uint8_t *)jwt,
						  (size_t)(d2 - jwt)) == 1,
			 CL_ERR_SIGNATURE, "admin token signature does not verify");
	}
	CL_TRY(check_times(cl, at));
	r = json_string_value(json_object_get(cl, "role"));
	CL_CHECK(r && strlen(r) < 32, CL_ERR_MALFORMED, "admin token has no role");
	snprintf(role, 32, "%s", r);
out:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(c);
	json_decref(sj);
	json_decref(cl);
	json_decref(hdr);
	return rc;
}

int cl_kbs_role_allows(const char *role, const char *need)
{
	if (!role || !need)
		return 0;
	return strcmp(role, CL_KBS_ROLE_ADMIN) == 0 || strcmp(role, need) == 0;
}
