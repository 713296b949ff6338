/*
 * EAR attestation results (draft-ietf-rats-ear-03) as JWTs signed with
 * ES256/ES384 through libjose.
 *
 * Signing reuses one parsed key: libjose re-imports its JWK on every
 * signature, which costs more than the P-256 signature itself, so the JWS
 * signature is made with the EVP_PKEY held here; for the same reason
 * verification checks r || s with OpenSSL on keys imported once per JWK.
 * libjose serves for the JWK, thumbprint and base64url. Verification accepts only the two ECDSA
 * algorithms, picks the key by curve (and kid when both sides have one) so a
 * token can never choose a weaker algorithm, then checks expiry and profile.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jose/b64.h>
#include <jose/jwk.h>
#include <jose/jws.h>
#include <jose/openssl.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/pem.h>

#include "cloister/appraise.h"
#include "cloister/crypto.h"
#include "cloister/jws.h"
#include "cloister/memo.h"

#define EAR_DEFAULT_TTL 300
/* Tolerated clock difference between issuer and relying party. */
#define EAR_CLOCK_SKEW 60

struct cl_ear_key {
	json_t *jwk; /* private JWK; "d" wiped on free */
	json_t *pub; /* public JWK with alg, use, kid */
	EVP_PKEY *pk;
	const char *alg;
	size_t half; /* bytes of r and of s */
};

static void wipe_jwk(json_t *jwk)
{
	json_t *d = json_object_get(jwk, "d");

	/* jansson owns the string; wipe it in place before it is freed. */
	if (json_is_string(d))
		cl_zeroize((char *)json_string_value(d), json_string_length(d));
	json_decref(jwk);
}

void cl_ear_key_free(struct cl_ear_key *k)
{
	if (!k)
		return;
	wipe_jwk(k->jwk);
	json_decref(k->pub);
	EVP_PKEY_free(k->pk);
	free(k);
}

int cl_ear_key_from_pem(const uint8_t *pem, size_t len, struct cl_ear_key **out)
{
	char curve[64] = "";
	BIO *bio = NULL;
	EVP_PKEY *pk = NULL;
	struct cl_ear_key *k = NULL;
	json_t *kid = NULL;
	int rc = CL_OK;

	*out = NULL;
	CL_CHECK(len <= 64 * 1024 && len <= (size_t)INT32_MAX, CL_ERR_MALFORMED,
		 "signing key too large");
	bio = BIO_new_mem_buf(pem, (int)len);
	CL_CHECK(bio, CL_ERR_NOMEM, "out of memory");
	pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	CL_CHECK(pk, CL_ERR_MALFORMED, "signing key is not a PEM private key");
	CL_CHECK(EVP_PKEY_is_a(pk, "EC") &&
			 EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, curve,
							sizeof(curve), NULL) == 1,
		 CL_ERR_UNSUPPORTED, "signing key must be an EC key (P-256 or P-384)");
	k = calloc(1, sizeof(*k));
	CL_CHECK(k, CL_ERR_NOMEM, "out of memory");
	if (strcmp(curve, "prime256v1") == 0 || strcmp(curve, "P-256") == 0) {
		k->alg = "ES256";
		k->half = 32;
	} else if (strcmp(curve, "secp384r1") == 0 || strcmp(curve, "P-384") == 0) {
		k->alg = "ES384";
		k->half = 48;
	} else {
		CL_CHECK(0, CL_ERR_UNSUPPORTED, "signing key curve %s: use P-256 or P-384", curve);
	}
	k->jwk = jose_openssl_jwk_from_EVP_PKEY(NULL, pk);
	CL_CHECK(k->jwk && json_object_get(k->jwk, "d"), CL_ERR_CRYPTO,
		 "cannot convert the signing key to a JWK");
	k->pub = json_deep_copy(k->jwk);
	CL_CHECK(k->pub && jose_jwk_pub(NULL, k->pub), CL_ERR_CRYPTO,
		 "cannot derive the public JWK");
	kid = jose_jwk_thp(NULL, k->pub, "S256");
	CL_CHECK(kid, CL_ERR_CRYPTO, "cannot compute the key thumbprint");
	CL_CHECK(json_object_set_new(k->pub, "alg", json_string(k->alg)) == 0 &&
			 json_object_set_new(k->pub, "use", json_string("sig")) == 0 &&
			 json_object_set(k->pub, "kid", kid) == 0 &&
			 json_object_set_new(k->jwk, "alg", json_string(k->alg)) == 0 &&
			 json_object_set(k->jwk, "kid", kid) == 0,
		 CL_ERR_NOMEM, "out of memory");
	k->pk = pk;
	pk = NULL;
	*out = k;
	k = NULL;
out:
	json_decref(kid);
	cl_ear_key_free(k);
	EVP_PKEY_free(pk);
	BIO_free(bio);
	return rc;
}

int cl_ear_key_load(const char *path, struct cl_ear_key **out)
{
	struct cl_buf b = {0};
	int rc = CL_OK;

	*out = NULL;
	CL_TRY(cl_read_file(path, 64 * 1024, &b));
	CL_TRY(cl_ear_key_from_pem(b.data, b.len, out));
out:
	cl_buf_free(&b); /* wipes the PEM */
	return rc;
}

const char *cl_ear_key_alg(const struct cl_ear_key *k)
{
	return k ? k->alg : NULL;
}

json_t *cl_ear_key_jwks(const struct cl_ear_key *k)
{
	if (!k)
		return NULL;
	return json_pack("{s:[O]}", "keys", k->pub);
}

/* ----------------------------------------------------------------- sign */

static json_t *appraisal_json(const struct cl_ear_submod *sm)
{
	const struct cl_appraisal *a = sm->appraisal;
	json_t *o = NULL, *tv = json_object();

	if (!tv)
		return NULL;
	for (int i = 0; i < CL_TV_COUNT; i++) {
		/* AR4SI: a claim of 0 is the absence of a claim. */
		if (a->vector[i] != 0 &&
		    json_object_set_new(tv, cl_tv_claim_name(i), json_integer(a->vector[i])) != 0)
			goto fail;
	}
	o = json_pack("{s:s, s:O, s:[s]}", "ear_status", cl_tier_name(a->status),
		      "ear_trustworthiness_vector", tv, "ear_appraisal_policy_ids", a->policy_id);
	if (!o)
		goto fail;
	if (sm->claims) {
		const char *plat = json_string_value(json_object_get(sm->claims, "platform"));

		if (json_object_set_new(o, CL_EAR_ANNOTATED_EVIDENCE,
					json_pack("{s:O}", plat ? plat : "unknown", sm->claims)) !=
		    0)
			goto fail;
	}
	if (a->reasons && json_array_size(a->reasons) > 0 &&
	    json_object_set(o, "ear_cloister_reasons", a->reasons) != 0)
		goto fail;
	json_decref(tv);
	return o;
fail:
	json_decref(tv);
	json_decref(o);
	return NULL;
}

int cl_ear_sign(const struct cl_ear_key *key, const struct cl_ear_submod *subs, size_t n,
		const struct cl_ear_opts *o, char **jwt)
{
	static const struct cl_ear_opts defaults = {0};
	json_t *payload = NULL, *submods = NULL, *sm = NULL, *hdr = NULL;
	char *body = NULL, *nonce = NULL;
	enum cl_tier worst = CL_TIER_NONE;
	int64_t iat = 0;
	int rc = CL_OK;

	*jwt = NULL;
	if (!o)
		o = &defaults;
	CL_CHECK(key && subs && n > 0, CL_ERR_ARG, "EAR needs a key and at least one appraisal");
	CL_CHECK(!o->nonce || (o->nonce_len >= 8 && o->nonce_len <= 64), CL_ERR_ARG,
		 "EAR nonce must be 8 to 64 bytes");
	iat = o->iat ? o->iat : (int64_t)time(NULL);
	submods = json_object();
	CL_CHECK(submods, CL_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		CL_CHECK(subs[i].name && subs[i].appraisal, CL_ERR_ARG,
			 "EAR submod without a name");
		sm = appraisal_json(&subs[i]);
		CL_CHECK(sm && json_object_set_new(submods, subs[i].name, sm) == 0, CL_ERR_NOMEM,
			 "out of memory");
		sm = NULL;
		if (subs[i].appraisal->status > worst)
			worst = subs[i].appraisal->status;
	}
	payload = json_pack(
		"{s:s, s:I, s:I, s:s, s:{s:s, s:s}, s:O}", "eat_profile", CL_EAR_PROFILE, "iat",
		(json_int_t)iat, "exp", (json_int_t)(iat + (o->ttl > 0 ? o->ttl : EAR_DEFAULT_TTL)),
		"ear_status", cl_tier_name(worst), "ear_verifier_id", "developer", "cloister",
		"build", o->verifier_build ? o->verifier_build : "cloister", "submods", submods);
	CL_CHECK(payload, CL_ERR_NOMEM, "out of memory");
	if (o->nonce) {
		nonce = cl_base64url_encode(o->nonce, o->nonce_len);
		CL_CHECK(nonce &&
				 json_object_set_new(payload, "eat_nonce", json_string(nonce)) == 0,
			 CL_ERR_NOMEM, "out of memory");
	}
	body = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
	hdr = json_pack("{s:s, s:O}", "typ", "JWT", "kid", json_object_get(key->pub, "kid"));
	CL_CHECK(body && hdr, CL_ERR_NOMEM, "out of memory");
	CL_TRY(cl_jws_sign(key->pk, hdr, body, strlen(body), jwt));
out:
	free(nonce);
	free(body);
	json_decref(hdr);
	json_decref(sm);
	json_decref(payload);
	json_decref(submods);
	return rc;
}

/* --------------------------------------------------------------- verify */

/* A JWK from the set that may check a token of this alg and kid. */
static const json_t *pick_key(const json_t *jwks, const char *alg, const char *kid, size_t skip)
{
	const char *crv = strcmp(alg, "ES256") == 0 ? "P-256" : "P-384";
	const json_t *keys = json_object_get(jwks, "keys"), *k = NULL;
	size_t i = 0, seen = 0;

	json_array_foreach (keys, i, k) {
		const char *kk = json_string_value(json_object_get(k, "kid"));
		const char *ka = json_string_value(json_object_get(k, "alg"));

		const char *kty = json_string_value(json_object_get(k, "kty"));
		const char *kc = json_string_value(json_object_get(k, "crv"));

		if (!kty || !kc || strcmp(kty, "EC") != 0 || strcmp(kc, crv) != 0)
			continue;
		if ((ka && strcmp(ka, alg) != 0) || (kid && kk && strcmp(kid, kk) != 0))
			continue;
		if (seen++ == skip)
			return k;
	}
	return NULL;
}

static const struct {
	const char *old, *cur;
} renames[] = {
	{"ear.status", "ear_status"},
	{"ear.trustworthiness-vector", "ear_trustworthiness_vector"},
	{"ear.appraisal-policy-id", "ear_appraisal_policy_ids"},
	{"ear.verifier-id", "ear_verifier_id"},
	{"ear.raw-evidence", "ear_raw_evidence"},
	{"ear.veraison.annotated-evidence", CL_EAR_ANNOTATED_EVIDENCE},
	{"ear.veraison.policy-claims", "ear_veraison_policy_claims"},
	{"ear.veraison.key-attestation", "ear_veraison_key_attestation"},
};

/* Rewrite older dotted names in one object; 1 when any was found. */
static int rename_dotted(json_t *o)
{
	int found = 0;

	for (size_t i = 0; i < sizeof(renames) / sizeof(renames[0]); i++) {
		json_t *v = json_object_get(o, renames[i].old);

		if (!v)
			continue;
		found = 1;
		/* The old single policy id became a list. */
		if (strcmp(renames[i].old, "ear.appraisal-policy-id") == 0 && json_is_string(v))
			json_object_set_new(o, renames[i].cur, json_pack("[O]", v));
		else
			json_object_set(o, renames[i].cur, v);
		json_object_del(o, renames[i].old);
	}
	return found;
}

static int check_tier(const json_t *v, const char *where)
{
	enum cl_tier t = CL_TIER_NONE;

	CL_ENSURE_MSG(json_is_string(v) && cl_tier_parse(json_string_value(v), &t) == CL_OK,
		      CL_ERR_MALFORMED, "EAR: %s has no valid ear_status", where);
	return CL_OK;
}

static int check_shape(json_t *c, int64_t at)
{
	const json_t *prof = json_object_get(c, "eat_profile"), *exp = json_object_get(c, "exp");
	const json_t *iat = json_object_get(c, "iat"), *subs = json_object_get(c, "submods");
	const char *name = NULL;
	json_t *sm = NULL;
	int legacy = rename_dotted(c);

	json_object_foreach ((json_t *)subs, name, sm) {
		if (json_is_object(sm))
			legacy |= rename_dotted(sm);
	}
	CL_ENSURE_MSG(
		json_is_string(prof) &&
			(strcmp(json_string_value(prof), CL_EAR_PROFILE) == 0 ||
			 (legacy && strcmp(json_string_value(prof), CL_EAR_PROFILE_LEGACY) == 0)),
		CL_ERR_UNSUPPORTED, "EAR: unexpected eat_profile");
	CL_ENSURE_MSG(json_is_integer(exp), CL_ERR_MALFORMED, "EAR: no exp");
	CL_ENSURE_MSG(json_integer_value(exp) > at, CL_ERR_EXPIRED, "EAR: token has expired");
	CL_ENSURE_MSG(json_is_integer(iat) && json_integer_value(iat) <= at + EAR_CLOCK_SKEW,
		      CL_ERR_MALFORMED, "EAR: iat missing or in the future");
	CL_ENSURE_MSG(json_is_object(subs) && json_object_size(subs) > 0, CL_ERR_MALFORMED,
		      "EAR: no submods");
	if (json_object_get(c, "ear_status"))
		CL_GUARD(check_tier(json_object_get(c, "ear_status"), "the token"));
	json_object_foreach ((json_t *)subs, name, sm) {
		const json_t *tv = json_object_get(sm, "ear_trustworthiness_vector");
		const char *k = NULL;
		json_t *v = NULL;

		CL_ENSURE_MSG(json_is_object(sm), CL_ERR_MALFORMED, "EAR: submod is not an object");
		CL_GUARD(check_tier(json_object_get(sm, "ear_status"), "a submod"));
		CL_ENSURE_MSG(!tv || json_is_object(tv), CL_ERR_MALFORMED,
			      "EAR: trustworthiness vector is not an object");
		json_object_foreach ((json_t *)tv, k, v)
			CL_ENSURE_MSG(cl_tv_claim_index(k) >= 0 && json_is_integer(v) &&
					      json_integer_value(v) >= -128 &&
					      json_integer_value(v) <= 127,
				      CL_ERR_MALFORMED, "EAR: bad trustworthiness claim '%.40s'",
				      k);
	}
	return CL_OK;
}

/*
 * Public keys of JWKs already seen, by curve and coordinates. A relying party
 * checks every token against the same few keys, and importing a JWK
 * (libjose's jose_jws_ver does it per call) costs more than the P-256
 * signature check. The entries are public keys; nothing secret is kept.
 */
static int pkey_ref(void *value, void *out)
{
	if (EVP_PKEY_up_ref(value) != 1)
		return 0;
	*(EVP_PKEY **)out = value;
	return 1;
}

static void pkey_drop(void *value)
{
	EVP_PKEY_free(value);
}

/* Decoding only (every token's signature is verified), so shared under a bypass too. */
static struct cl_memo jwk_keys = CL_MEMO_INIT("jwk", 8, CL_MEMO_DECODED, pkey_ref, pkey_drop);

/* The EC public key of a JWK (caller frees), from the cache when seen before. */
static EVP_PKEY *jwk_pkey(const json_t *jwk)
{
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	const char *x = json_string_value(json_object_get(jwk, "x"));
	const char *y = json_string_value(json_object_get(jwk, "y"));
	struct cl_memo_key k;
	int cacheable = 0;
	EVP_PKEY *pk = NULL;
	json_t *pub = NULL;

	if (!crv || !x || !y)
		return NULL;
	{
		/* each with its NUL, so the parts cannot run into one another */
		const struct cl_memo_part parts[] = {
			{crv, strlen(crv) + 1}, {x, strlen(x) + 1}, {y, strlen(y) + 1}};

		cacheable = cl_memo_key_parts(&k, "jwk ec public", parts, 3) == CL_OK;
	}
	if (cacheable && cl_memo_get(&jwk_keys, &k, 0, &pk))
		return pk;
	/* Only the public members: a private "d" never reaches the cache. */
	pub = json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", crv, "x", x, "y", y);
	pk = pub ? jose_openssl_jwk_to_EVP_PKEY(NULL, pub) : NULL;
	json_decref(pub);
	if (pk && cacheable && EVP_PKEY_up_ref(pk) == 1)
		cl_memo_put(&jwk_keys, &k, pk, CL_MEMO_ALWAYS_FROM, CL_MEMO_ALWAYS_UNTIL);
	return pk;
}

/* Re-fail with a prefix naming the token, keeping the code and the cause. */
static int ear_fail(int rc)
{
	char why[256];

	snprintf(why, sizeof(why), "%s", cl_error_detail());
	return cl_fail(rc, "EAR: %s", why);
}

int cl_ear_verify(const json_t *jwks, const char *token, size_t len, int64_t at, json_t **claims)
{
	const char *alg = NULL, *kid = NULL;
	struct cl_jws j;
	json_t *payload = NULL;
	const json_t *k = NULL;
	int rc = CL_OK, ok = 0, c = CL_OK;

	*claims = NULL;
	memset(&j, 0, sizeof(j));
	if (!at)
		at = (int64_t)time(NULL);
	CL_CHECK(json_is_object(jwks), CL_ERR_ARG, "EAR: no JWKS");
	c = cl_jws_parse(token, len, CL_MAX_EAR_TOKEN, &j);
	if (c != CL_OK) {
		rc = ear_fail(c);
		goto out;
	}
	alg = cl_jws_alg_name(j.alg);
	kid = json_string_value(json_object_get(j.header, "kid"));
	CL_CHECK(j.alg == CL_JWS_ES256 || j.alg == CL_JWS_ES384, CL_ERR_UNSUPPORTED,
		 "EAR: algorithm must be ES256 or ES384");
	for (size_t i = 0; !ok && (k = pick_key(jwks, alg, kid, i)) != NULL; i++) {
		EVP_PKEY *pk = jwk_pkey(k);

		ok = pk && cl_jws_verify(&j, pk) == CL_OK;
		EVP_PKEY_free(pk);
	}
	CL_CHECK(ok, CL_ERR_SIGNATURE, "EAR: signature does not verify with any key in the JWKS");
	c = cl_jws_payload_json(&j, &payload);
	if (c != CL_OK) {
		rc = ear_fail(c);
		goto out;
	}
	CL_TRY(check_shape(payload, at));
	*claims = payload;
	payload = NULL;
out:
	json_decref(payload);
	cl_jws_clear(&j);
	return rc;
}
