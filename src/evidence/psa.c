/*
 * Arm PSA initial attestation tokens (TrustZone-M, Trusted Firmware-M): a
 * COSE_Sign1 (tag 18) signed by the device's Initial Attestation Key (IAK)
 * over a CBOR map of PSA claims.
 *
 * Two profiles, told apart by their claim keys (draft-tschofenig-rats-psa-token,
 * and veraison/psatoken's claims_p1.go / claims_p2.go):
 *
 *   claim                         PSA_IOT_PROFILE_1   http://arm.com/psa/2.0.0
 *   profile                       -75000 (optional)   265 (eat_profile)
 *   client id (int32)             -75001              2394
 *   security lifecycle (uint16)   -75002              2395
 *   implementation id (32 B)      -75003              2396
 *   boot seed                     -75004 (32 B)       2397 (8..32 B, optional)
 *   hardware version / cert. ref  -75005 (optional)   2398 (optional)
 *   software components           -75006              2399
 *   no software measurements      -75007              -
 *   nonce / challenge             -75008              10 (eat_nonce)
 *   instance id (UEID, 33 B)      -75009              256 (ueid)
 *   verification service          -75010 (optional)   2400 (optional)
 *
 * A software component is a map: 1 measurement type (text), 2 measurement
 * value (bytes), 3 reserved, 4 version (text), 5 signer id (bytes), 6
 * measurement description (text).
 *
 * There is no vendor root for PSA: an IAK is provisioned per device and
 * known to its verification service. The verifier therefore trusts exactly
 * the IAK its caller names (cl_verify_opts.psa.iak, `--psa-iak`) and rejects
 * every token without one. Parsing is strict: unknown or repeated claim keys,
 * wrong types and wrong sizes are refused, and nothing may follow the token.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jose/openssl.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cloister/cbor.h"
#include "cloister/cose.h"
#include "cloister/crypto.h"
#include "cloister/memo.h"
#include "format.h"
#include "internal.h"

enum psa_profile { PSA_P1 = 1, PSA_P2 = 2 };

#define PSA_P1_NAME "PSA_IOT_PROFILE_1"
#define PSA_P2_NAME "http://arm.com/psa/2.0.0"

/* The claims, by what they mean; psa_keys[] gives each profile's key. */
enum psa_claim {
	C_PROFILE,
	C_CLIENT_ID,
	C_LIFECYCLE,
	C_IMPL_ID,
	C_BOOT_SEED,
	C_HW_VERSION,
	C_SW_COMPONENTS,
	C_NO_SW_MEASUREMENTS,
	C_NONCE,
	C_INSTANCE_ID,
	C_VSI,
	C_COUNT
};

#define NO_KEY INT64_MIN

static const int64_t psa_keys[2][C_COUNT] = {
	[0] = {-75000, -75001, -75002, -75003, -75004, -75005, -75006, -75007, -75008, -75009,
	       -75010},
	[1] = {265, 2394, 2395, 2396, 2397, 2398, 2399, NO_KEY, 10, 256, 2400},
};

/* Software component keys. */
enum { SWC_TYPE = 1, SWC_VALUE = 2, SWC_VERSION = 4, SWC_SIGNER = 5, SWC_DESC = 6 };

#define PSA_MAX_SWC	32  /* software components */
#define PSA_MAX_TEXT	128 /* measurement type, version, description */
#define PSA_MAX_VSI	256
#define PSA_MAX_HASH	64
#define PSA_IMPL_ID_LEN 32
#define PSA_INST_ID_LEN 33
#define PSA_MAX_SEED	32
#define PSA_HW_VER_LEN	19 /* EAN-13+5: 13 digits, '-', 5 digits */
#define PSA_MAX_ITEMS	1024
#define PSA_MAX_DEPTH	4 /* claims map → components array → component map → value */
#define PSA_MAX_SIG	96

struct psa_swc {
	char type[PSA_MAX_TEXT + 1];
	char version[PSA_MAX_TEXT + 1];
	char desc[PSA_MAX_TEXT + 1];
	uint8_t value[PSA_MAX_HASH];
	size_t value_len;
	uint8_t signer[PSA_MAX_HASH];
	size_t signer_len;
};

struct psa_token {
	enum psa_profile profile;
	int32_t client_id;
	uint16_t lifecycle;
	uint8_t impl_id[PSA_IMPL_ID_LEN];
	uint8_t inst_id[PSA_INST_ID_LEN];
	uint8_t boot_seed[PSA_MAX_SEED];
	size_t boot_seed_len; /* 0: absent (profile 2 only) */
	char hw_version[PSA_HW_VER_LEN + 1];
	char vsi[PSA_MAX_VSI + 1];
	uint8_t nonce[PSA_MAX_HASH];
	size_t nonce_len;
	struct psa_swc swc[PSA_MAX_SWC];
	size_t nswc; /* 0 with no_sw_measurements (profile 1 only) */
	struct cl_cose_sign1 cose;
};

/* ------------------------------------------------------------ CBOR values */

static int get_int(const cbor_item_t *it, int64_t *v)
{
	uint64_t u = 0;

	if (!cbor_isa_uint(it) && !cbor_isa_negint(it))
		return 0;
	u = cbor_get_int(it);
	if (u > INT64_MAX)
		return 0;
	*v = cbor_isa_uint(it) ? (int64_t)u : -1 - (int64_t)u;
	return 1;
}

static int want_bytes(const cbor_item_t *it, size_t min, size_t max, uint8_t *out, size_t *len,
		      const char *what)
{
	size_t n = 0;

	CL_ENSURE_MSG(cbor_isa_bytestring(it) && cbor_bytestring_is_definite(it), CL_ERR_MALFORMED,
		      "PSA token: %s is not a byte string", what);
	n = cbor_bytestring_length(it);
	CL_ENSURE_MSG(n >= min && n <= max, CL_ERR_MALFORMED,
		      "PSA token: %s is %zu bytes (expected %zu..%zu)", what, n, min, max);
	memcpy(out, cbor_bytestring_handle(it), n);
	if (len)
		*len = n;
	return CL_OK;
}

/* psa-hash-type: 32, 48 or 64 bytes. */
static int want_hash(const cbor_item_t *it, uint8_t *out, size_t *len, const char *what)
{
	CL_GUARD(want_bytes(it, 32, 64, out, len, what));
	CL_ENSURE_MSG(*len == 32 || *len == 48 || *len == 64, CL_ERR_MALFORMED,
		      "PSA token: %s is %zu bytes (expected 32, 48 or 64)", what, *len);
	return CL_OK;
}

/* Text without NUL bytes, copied NUL-terminated into out (max + 1 bytes). */
static int want_text(const cbor_item_t *it, size_t max, char *out, const char *what)
{
	size_t n = 0;

	CL_ENSURE_MSG(cbor_isa_string(it) && cbor_string_is_definite(it), CL_ERR_MALFORMED,
		      "PSA token: %s is not a text string", what);
	n = cbor_string_length(it);
	CL_ENSURE_MSG(n <= max, CL_ERR_MALFORMED, "PSA token: %s is longer than %zu bytes", what,
		      max);
	CL_ENSURE_MSG(!memchr(cbor_string_handle(it), 0, n), CL_ERR_MALFORMED,
		      "PSA token: %s holds a NUL byte", what);
	memcpy(out, cbor_string_handle(it), n);
	out[n] = '\0';
	return CL_OK;
}

/* ------------------------------------------------------------ the claims */

static int parse_swc(const cbor_item_t *m, struct psa_swc *c, size_t idx)
{
	struct cbor_pair *pr = NULL;
	unsigned seen = 0;

	CL_ENSURE_MSG(cbor_isa_map(m) && cbor_map_is_definite(m), CL_ERR_MALFORMED,
		      "PSA token: software component %zu is not a map", idx);
	pr = cbor_map_handle(m);
	for (size_t i = 0; i < cbor_map_size(m); i++) {
		int64_t k = 0;

		CL_ENSURE_MSG(get_int(pr[i].key, &k) && k >= 1 && k <= 6 && k != 3,
			      CL_ERR_MALFORMED,
			      "PSA token: software component %zu has an unknown key", idx);
		CL_ENSURE_MSG(!(seen & (1u << k)), CL_ERR_MALFORMED,
			      "PSA token: software component %zu repeats key %lld", idx,
			      (long long)k);
		seen |= 1u << k;
		switch (k) {
		case SWC_TYPE:
			CL_GUARD(want_text(pr[i].value, PSA_MAX_TEXT, c->type, "measurement type"));
			break;
		case SWC_VALUE:
			CL_GUARD(want_hash(pr[i].value, c->value, &c->value_len,
					   "measurement value"));
			break;
		case SWC_VERSION:
			CL_GUARD(want_text(pr[i].value, PSA_MAX_TEXT, c->version, "version"));
			break;
		case SWC_SIGNER:
			CL_GUARD(want_hash(pr[i].value, c->signer, &c->signer_len, "signer id"));
			break;
		case SWC_DESC:
			CL_GUARD(want_text(pr[i].value, PSA_MAX_TEXT, c->desc,
					   "measurement description"));
			break;
		default:
			CL_BAIL(CL_ERR_INTERNAL, "PSA token: software component key");
		}
	}
	CL_ENSURE_MSG((seen & (1u << SWC_VALUE)) && (seen & (1u << SWC_SIGNER)), CL_ERR_MALFORMED,
		      "PSA token: software component %zu lacks its measurement value or signer id",
		      idx);
	return CL_OK;
}

static int parse_swcs(const cbor_item_t *a, struct psa_token *t)
{
	CL_ENSURE_MSG(cbor_isa_array(a) && cbor_array_is_definite(a), CL_ERR_MALFORMED,
		      "PSA token: software components are not an array");
	CL_ENSURE_MSG(cbor_array_size(a) >= 1 && cbor_array_size(a) <= PSA_MAX_SWC,
		      CL_ERR_MALFORMED, "PSA token: %zu software components (expected 1..%d)",
		      cbor_array_size(a), PSA_MAX_SWC);
	t->nswc = cbor_array_size(a);
	for (size_t i = 0; i < t->nswc; i++)
		CL_GUARD(parse_swc(cbor_array_handle(a)[i], &t->swc[i], i));
	return CL_OK;
}

/* EAN-13 (profile 1 only) or EAN-13+5. */
static int hw_version_ok(const char *s, enum psa_profile p)
{
	size_t n = strlen(s);

	if (n != 13 && n != PSA_HW_VER_LEN)
		return 0;
	if (n == 13 && p != PSA_P1)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (i == 13 ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
			return 0;
	return 1;
}

/* The profile the keys belong to: profile 2 uses only non-negative keys. */
static int profile_of(const cbor_item_t *m, enum psa_profile *p)
{
	struct cbor_pair *pr = cbor_map_handle(m);
	int neg = 0, pos = 0;

	for (size_t i = 0; i < cbor_map_size(m); i++) {
		int64_t k = 0;

		CL_ENSURE_MSG(get_int(pr[i].key, &k), CL_ERR_MALFORMED,
			      "PSA token: a claim key is not an integer");
		if (k < 0)
			neg = 1;
		else
			pos = 1;
	}
	CL_ENSURE_MSG(neg != pos, CL_ERR_MALFORMED,
		      "PSA token: claim keys of no single profile (PSA_IOT_PROFILE_1 keys are "
		      "-75000..-75010, psa 2.0.0 ones are EAT keys)");
	*p = neg ? PSA_P1 : PSA_P2;
	return CL_OK;
}

static int claim_of(enum psa_profile p, int64_t k)
{
	for (int c = 0; c < C_COUNT; c++)
		if (psa_keys[p - 1][c] == k)
			return c;
	return -1;
}

static int parse_claim(struct psa_token *t, int c, const cbor_item_t *v)
{
	char prof[64];
	int64_t i = 0;

	switch (c) {
	case C_PROFILE:
		CL_GUARD(want_text(v, sizeof(prof) - 1, prof, "profile"));
		CL_ENSURE_MSG(strcmp(prof, t->profile == PSA_P1 ? PSA_P1_NAME : PSA_P2_NAME) == 0,
			      CL_ERR_UNSUPPORTED, "PSA token: profile \"%s\" is not supported",
			      prof);
		return CL_OK;
	case C_CLIENT_ID:
		CL_ENSURE_MSG(get_int(v, &i) && i >= INT32_MIN && i <= INT32_MAX, CL_ERR_MALFORMED,
			      "PSA token: client id is not an int32");
		t->client_id = (int32_t)i;
		return CL_OK;
	case C_LIFECYCLE:
		CL_ENSURE_MSG(cbor_isa_uint(v) && cbor_get_int(v) <= 0xffff, CL_ERR_MALFORMED,
			      "PSA token: security lifecycle is not a uint16");
		t->lifecycle = (uint16_t)cbor_get_int(v);
		CL_ENSURE_MSG((t->lifecycle >> 12) <= 6 && (t->lifecycle & 0x0f00) == 0,
			      CL_ERR_MALFORMED, "PSA token: security lifecycle 0x%04x is not valid",
			      t->lifecycle);
		return CL_OK;
	case C_IMPL_ID:
		return want_bytes(v, PSA_IMPL_ID_LEN, PSA_IMPL_ID_LEN, t->impl_id, NULL,
				  "implementation id");
	case C_BOOT_SEED:
		return want_bytes(v, t->profile == PSA_P1 ? 32 : 8, PSA_MAX_SEED, t->boot_seed,
				  &t->boot_seed_len, "boot seed");
	case C_HW_VERSION:
		CL_GUARD(want_text(v, PSA_HW_VER_LEN, t->hw_version, "hardware version"));
		CL_ENSURE_MSG(hw_version_ok(t->hw_version, t->profile), CL_ERR_MALFORMED,
			      "PSA token: hardware version is not EAN-13%s",
			      t->profile == PSA_P1 ? " or EAN-13+5" : "+5");
		return CL_OK;
	case C_SW_COMPONENTS:
		return parse_swcs(v, t);
	case C_NO_SW_MEASUREMENTS:
		CL_ENSURE_MSG(cbor_isa_uint(v) && cbor_get_int(v) == 1, CL_ERR_MALFORMED,
			      "PSA token: no-software-measurements is not 1");
		return CL_OK;
	case C_NONCE:
		/* EAT allows an array of nonces; PSA demands exactly one. */
		if (t->profile == PSA_P2 && cbor_isa_array(v) && cbor_array_is_definite(v)) {
			CL_ENSURE_MSG(cbor_array_size(v) == 1, CL_ERR_MALFORMED,
				      "PSA token: %zu nonces (expected 1)", cbor_array_size(v));
			v = cbor_array_handle(v)[0];
		}
		return want_hash(v, t->nonce, &t->nonce_len, "nonce");
	case C_INSTANCE_ID:
		CL_GUARD(want_bytes(v, PSA_INST_ID_LEN, PSA_INST_ID_LEN, t->inst_id, NULL,
				    "instance id"));
		CL_ENSURE_MSG(t->inst_id[0] == 0x01, CL_ERR_MALFORMED,
			      "PSA token: instance id is not a random UEID (type 0x01)");
		return CL_OK;
	case C_VSI:
		CL_GUARD(want_text(v, PSA_MAX_VSI, t->vsi, "verification service"));
		CL_ENSURE_MSG(t->vsi[0], CL_ERR_MALFORMED,
			      "PSA token: verification service is empty");
		return CL_OK;
	default:
		CL_BAIL(CL_ERR_INTERNAL, "PSA token: claim %d", c);
	}
}

static const char *const claim_names[C_COUNT] = {
	"profile",   "client id",	 "security lifecycle",	 "implementation id",
	"boot seed", "hardware version", "software components",	 "no-software-measurements",
	"nonce",     "instance id",	 "verification service",
};

/* The payload: a map of one profile's claims, each at most once. */
static int parse_claims(const uint8_t *p, size_t n, struct psa_token *t)
{
	static const struct cl_cbor_caps caps = {"PSA token", PSA_MAX_DEPTH, PSA_MAX_ITEMS, 0};
	cbor_item_t *m = NULL;
	struct cbor_pair *pr = NULL;
	unsigned seen = 0;
	int rc = CL_OK;

	CL_GUARD(cl_cbor_load(p, n, &caps, &m));
	CL_CHECK(cbor_isa_map(m) && cbor_map_is_definite(m), CL_ERR_MALFORMED,
		 "PSA token: the payload is not a map of claims");
	CL_TRY(profile_of(m, &t->profile));
	pr = cbor_map_handle(m);
	for (size_t i = 0; i < cbor_map_size(m); i++) {
		int64_t k = 0;
		int c = get_int(pr[i].key, &k) ? claim_of(t->profile, k) : -1;

		CL_CHECK(c >= 0, CL_ERR_MALFORMED, "PSA token: unknown claim key %lld",
			 (long long)k);
		CL_CHECK(!(seen & (1u << c)), CL_ERR_MALFORMED, "PSA token: %s repeated",
			 claim_names[c]);
		seen |= 1u << c;
		CL_TRY(parse_claim(t, c, pr[i].value));
	}
	for (int c = 0; c < C_COUNT; c++) {
		int mandatory = c == C_CLIENT_ID || c == C_LIFECYCLE || c == C_IMPL_ID ||
				c == C_NONCE || c == C_INSTANCE_ID ||
				(c == C_BOOT_SEED && t->profile == PSA_P1) ||
				(c == C_PROFILE && t->profile == PSA_P2);

		CL_CHECK(!mandatory || (seen & (1u << c)), CL_ERR_MALFORMED,
			 "PSA token: the mandatory %s claim is missing", claim_names[c]);
	}
	/* Profile 1: software components, or the statement that there are none. */
	CL_CHECK(((seen >> C_SW_COMPONENTS) & 1) + ((seen >> C_NO_SW_MEASUREMENTS) & 1) == 1 ||
			 (t->profile == PSA_P2 && (seen & (1u << C_SW_COMPONENTS))),
		 CL_ERR_MALFORMED,
		 "PSA token: needs software components or (profile 1) no-software-measurements, "
		 "exactly one");
out:
	cbor_decref(&m);
	return rc;
}

static int psa_token_parse(const uint8_t *p, size_t n, struct psa_token *t)
{
	memset(t, 0, sizeof(*t));
	CL_GUARD(cl_cose_sign1_parse(p, n, &t->cose));
	CL_ENSURE_MSG(t->cose.tagged, CL_ERR_MALFORMED,
		      "PSA token: not a tagged COSE_Sign1 (CBOR tag 18)");
	return parse_claims(t->cose.payload, t->cose.payload_len, t);
}

/* ------------------------------------------------------------- the IAK */

static int iak_check(EVP_PKEY *k, int64_t alg)
{
	char group[64] = "";
	size_t glen = 0;
	const char *want = alg == CL_COSE_ALG_ES384 ? "secp384r1" : "prime256v1";

	CL_ENSURE_MSG(EVP_PKEY_get_base_id(k) == EVP_PKEY_EC &&
			      EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group,
							     sizeof(group), &glen) == 1,
		      CL_ERR_ARG, "--psa-iak: not an EC key");
	CL_ENSURE_MSG(strcmp(group, want) == 0, CL_ERR_SIGNATURE,
		      "PSA token: signed with %s but the IAK is on %s",
		      alg == CL_COSE_ALG_ES384 ? "ES384" : "ES256", group);
	return CL_OK;
}

/* The caller's IAK: a JWK (JSON) or a PEM/DER SubjectPublicKeyInfo. */
static int iak_decode(const uint8_t *p, size_t n, EVP_PKEY **out)
{
	json_t *jwk = NULL;
	json_error_t err;
	BIO *b = NULL;
	size_t i = 0;

	*out = NULL;
	CL_ENSURE_MSG(p && n > 0 && n <= 64 * 1024, CL_ERR_ARG, "--psa-iak: empty or too large");
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
		i++;
	if (i < n && p[i] == '{') {
		jwk = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &err);
		CL_ENSURE_MSG(json_is_object(jwk), CL_ERR_ARG, "--psa-iak: not a JWK: %s",
			      err.text);
		if (json_is_string(json_object_get(jwk, "kty")) &&
		    strcmp(json_string_value(json_object_get(jwk, "kty")), "EC") == 0)
			/* Only the public part: a private "d" in the file is not used. */
			(void)json_object_del(jwk, "d");
		*out = jose_openssl_jwk_to_EVP_PKEY(NULL, jwk);
		json_decref(jwk);
	} else {
		const unsigned char *q = p;

		b = BIO_new_mem_buf(p, (int)n);
		CL_ENSURE_MSG(b, CL_ERR_NOMEM, "out of memory");
		*out = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
		BIO_free(b);
		if (!*out)
			*out = d2i_PUBKEY(NULL, &q, (long)n);
	}
	ERR_clear_error();
	CL_ENSURE_MSG(*out, CL_ERR_ARG, "--psa-iak: not an EC public key (JWK, PEM or DER)");
	if (EVP_PKEY_get_base_id(*out) != EVP_PKEY_EC) {
		EVP_PKEY_free(*out);
		*out = NULL;
		CL_BAIL(CL_ERR_ARG, "--psa-iak: not an EC key");
	}
	return CL_OK;
}

/*
 * Decoded IAKs by SHA-256 of the caller's bytes: a verifier checks every token
 * of a device against the same key, and turning a JWK into an EVP_PKEY costs
 * more than the signature check. Only decoding is cached; every signature is
 * verified.
 */
static int iak_ref(void *value, void *out)
{
	if (EVP_PKEY_up_ref(value) != 1)
		return 0;
	*(EVP_PKEY **)out = value;
	return 1;
}

static void iak_drop(void *value)
{
	EVP_PKEY_free(value);
}

static struct cl_memo iaks = CL_MEMO_INIT("psa iak", 16, CL_MEMO_DECODED, iak_ref, iak_drop);

static int iak_load(const uint8_t *p, size_t n, EVP_PKEY **out)
{
	struct cl_memo_key k;

	*out = NULL;
	CL_ENSURE_MSG(p && n > 0 && n <= 64 * 1024, CL_ERR_ARG, "--psa-iak: empty or too large");
	CL_GUARD(cl_memo_key(&k, "psa iak", p, n));
	if (cl_memo_get(&iaks, &k, 0, out))
		return CL_OK;
	CL_GUARD(iak_decode(p, n, out));
	if (EVP_PKEY_up_ref(*out) == 1)
		cl_memo_put(&iaks, &k, *out, CL_MEMO_ALWAYS_FROM, CL_MEMO_ALWAYS_UNTIL);
	return CL_OK;
}

/* ------------------------------------------------------------- claims */

static const char *lifecycle_name(uint16_t v)
{
	static const char *const names[] = {
		"unknown",	     "assembly-and-test",	  "psa-rot-provisioning", "secured",
		"non-psa-rot-debug", "recoverable-psa-rot-debug", "decommissioned",
	};

	return (v >> 12) < sizeof(names) / sizeof(names[0]) ? names[v >> 12] : "invalid";
}

static int lifecycle_debug(uint16_t v)
{
	return (v >> 12) == 4 || (v >> 12) == 5;
}

/*
 * "measurement": SHA-256 over every software component in token order, each
 * as len(value) ‖ value ‖ len(signer id) ‖ signer id (one-byte lengths), so
 * one value pins the whole measured boot chain and who signed each image.
 * Empty when the token says there are no software measurements.
 */
static int measurement_summary(const struct psa_token *t, uint8_t out[32])
{
	uint8_t buf[PSA_MAX_SWC * (2 + 2 * PSA_MAX_HASH)];
	size_t off = 0;

	for (size_t i = 0; i < t->nswc; i++) {
		const struct psa_swc *c = &t->swc[i];

		buf[off++] = (uint8_t)c->value_len;
		memcpy(buf + off, c->value, c->value_len);
		off += c->value_len;
		buf[off++] = (uint8_t)c->signer_len;
		memcpy(buf + off, c->signer, c->signer_len);
		off += c->signer_len;
	}
	return cl_digest(CL_SHA256, buf, off, out);
}

static int set_str(json_t *o, const char *k, const char *v)
{
	CL_ENSURE_MSG(json_object_set_new(o, k, json_string(v)) == 0, CL_ERR_NOMEM,
		      "out of memory");
	return CL_OK;
}

static int swc_json(const struct psa_swc *c, json_t **out)
{
	json_t *o = json_object();
	int rc = CL_OK;

	CL_CHECK(o, CL_ERR_NOMEM, "out of memory");
	CL_TRY(set_str(o, "measurement_type", c->type));
	CL_TRY(cl_claims_set_hex(o, "measurement_value", c->value, c->value_len));
	CL_TRY(cl_claims_set_hex(o, "signer_id", c->signer, c->signer_len));
	CL_TRY(set_str(o, "version", c->version));
	CL_TRY(set_str(o, "measurement_description", c->desc));
	*out = o;
	o = NULL;
out:
	json_decref(o);
	return rc;
}

static int claims_fill(json_t *c, const struct psa_token *t)
{
	json_t *swcs = json_array(), *lc = NULL;
	uint8_t m[32];
	int rc = CL_OK;

	CL_CHECK(swcs, CL_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < t->nswc; i++) {
		json_t *o = NULL;

		CL_TRY(swc_json(&t->swc[i], &o));
		CL_CHECK(json_array_append_new(swcs, o) == 0, CL_ERR_NOMEM, "out of memory");
	}
	if (t->nswc) {
		CL_TRY(measurement_summary(t, m));
		CL_TRY(cl_claims_set_hex(c, "measurement", m, sizeof(m)));
	}
	CL_TRY(set_str(c, "profile", t->profile == PSA_P1 ? PSA_P1_NAME : PSA_P2_NAME));
	CL_TRY(cl_claims_set_hex(c, "report_data", t->nonce, t->nonce_len));
	CL_TRY(cl_claims_set_hex(c, "implementation_id", t->impl_id, sizeof(t->impl_id)));
	CL_TRY(cl_claims_set_hex(c, "instance_id", t->inst_id, sizeof(t->inst_id)));
	CL_TRY(cl_claims_set_hex(c, "boot_seed", t->boot_seed, t->boot_seed_len));
	CL_TRY(set_str(c, "hardware_version", t->hw_version));
	CL_TRY(set_str(c, "verification_service", t->vsi));
	CL_TRY(cl_claims_set_trailing(c, 0));
	lc = json_pack("{s:s, s:I}", "name", lifecycle_name(t->lifecycle), "value",
		       (json_int_t)t->lifecycle);
	CL_CHECK(lc && json_object_set_new(c, "lifecycle", lc) == 0, CL_ERR_NOMEM, "out of memory");
	CL_CHECK(json_object_set_new(c, "client_id", json_integer(t->client_id)) == 0 &&
			 json_object_set_new(c, "debug",
					     json_boolean(lifecycle_debug(t->lifecycle))) == 0 &&
			 json_object_set(c, "sw_components", swcs) == 0,
		 CL_ERR_NOMEM, "out of memory");
out:
	json_decref(swcs);
	return rc;
}

/* ------------------------------------------------------------- format */

/*
 * A tagged COSE_Sign1 whose payload is a map holding a PSA claim key: the
 * psa 2.0.0 profile string under key 265, or the head of one of the keys
 * -75000..-75010 (0x3a 0x00 0x01 0x24 0xf7..0xff, 0x3a 0x00 0x01 0x25
 * 0x00..0x01). Other COSE_Sign1 evidence (Nitro) keys its payload by text.
 */
static int psa_payload_keys(const uint8_t *p, size_t n)
{
	static const uint8_t p2[] = "\x19\x01\x09\x78\x18" PSA_P2_NAME;

	if (n < 1 || (p[0] >> 5) != 5) /* major type 5: a map */
		return 0;
	if (memmem(p, n, p2, sizeof(p2) - 1))
		return 1;
	for (size_t i = 1; i + 5 <= n; i++)
		if (p[i] == 0x3a && p[i + 1] == 0x00 && p[i + 2] == 0x01 &&
		    ((p[i + 3] == 0x24 && p[i + 4] >= 0xf7) ||
		     (p[i + 3] == 0x25 && p[i + 4] <= 0x01)))
			return 1;
	return 0;
}

static int psa_detect(const uint8_t *ev, size_t n, const json_t *json)
{
	struct cl_cose_sign1 s;
	int yes = 0;

	(void)json;
	if (n < 8 || ev[0] != 0xd2 || ev[1] != 0x84)
		return 0;
	if (cl_cose_sign1_parse(ev, n, &s) == CL_OK)
		yes = psa_payload_keys(s.payload, s.payload_len);
	cl_cose_sign1_free(&s);
	cl_error_clear(); /* a guess leaves no failure detail */
	return yes;
}

static void psa_free(void *parsed)
{
	struct psa_token *t = parsed;

	if (!t)
		return;
	cl_cose_sign1_free(&t->cose);
	free(t);
}

static int psa_parse(struct cl_evidence *e)
{
	struct psa_token *t = calloc(1, sizeof(*t));

	CL_ENSURE_MSG(t, CL_ERR_NOMEM, "out of memory");
	e->parsed = t;
	return psa_token_parse(e->raw, e->raw_len, t);
}

static int psa_claims(const struct cl_evidence *e, json_t **claims)
{
	json_t *c = cl_claims_new("psa");

	CL_ENSURE_MSG(c, CL_ERR_NOMEM, "out of memory");
	*claims = c;
	return claims_fill(c, e->parsed);
}

static int psa_verify(const struct cl_evidence *e, const struct cl_verify_opts *o, json_t *c)
{
	const struct psa_token *t = e->parsed;
	uint8_t rd[CL_REPORT_DATA_LEN] = {0};
	EVP_PKEY *iak = NULL;
	int rc = CL_OK;

	(void)c;
	CL_CHECK(o->psa.iak && o->psa.iak_len, CL_ERR_POLICY,
		 "PSA tokens are accepted only with the device's IAK given explicitly "
		 "(--psa-iak): there is no vendor root to chain to");
	CL_TRY(iak_load(o->psa.iak, o->psa.iak_len, &iak));
	CL_TRY(iak_check(iak, t->cose.alg));
	CL_TRY(cl_cose_sign1_verify(&t->cose, iak));
	CL_CHECK(!lifecycle_debug(t->lifecycle) || o->allow_debug, CL_ERR_POLICY,
		 "the PSA security lifecycle is %s (debug)", lifecycle_name(t->lifecycle));
	/* A 32- or 48-byte challenge compares as report data zero-padded to 64 bytes. */
	memcpy(rd, t->nonce, t->nonce_len);
	CL_TRY(cl_check_report_data(o, rd));
out:
	EVP_PKEY_free(iak);
	return rc;
}

const struct cl_format_ops cl_psa_format = {
	.name = "psa",
	.id = CL_FORMAT_PSA,
	.flags = 0,
	.detect = psa_detect,
	.parse = psa_parse,
	.claims = psa_claims,
	.verify = psa_verify,
	.free = psa_free,
};
