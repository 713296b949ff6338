/*
 * Compact JWS: one parser, one signer, one verifier for every token cloister
 * handles. Signatures go through OpenSSL's EVP_DigestSign/Verify; ECDSA's
 * DER form is converted to and from JOSE's raw r‖s by the crypto helpers.
 */
#include <string.h>

#include <openssl/err.h>

#include "cloister/jws.h"

const char *cl_jws_alg_name(enum cl_jws_alg a)
{
	switch (a) {
	case CL_JWS_ES256:
		return "ES256";
	case CL_JWS_ES384:
		return "ES384";
	case CL_JWS_EDDSA:
		return "EdDSA";
	case CL_JWS_NONE:
	default:
		return NULL;
	}
}

enum cl_jws_alg cl_jws_alg_parse(const char *name)
{
	if (!name)
		return CL_JWS_NONE;
	if (strcmp(name, "ES256") == 0)
		return CL_JWS_ES256;
	if (strcmp(name, "ES384") == 0)
		return CL_JWS_ES384;
	if (strcmp(name, "EdDSA") == 0)
		return CL_JWS_EDDSA;
	return CL_JWS_NONE;
}

enum cl_jws_alg cl_jws_alg_of_key(EVP_PKEY *key)
{
	if (!key)
		return CL_JWS_NONE;
	if (EVP_PKEY_is_a(key, "ED25519"))
		return CL_JWS_EDDSA;
	if (!EVP_PKEY_is_a(key, "EC"))
		return CL_JWS_NONE;
	switch (EVP_PKEY_get_bits(key)) {
	case 256:
		return CL_JWS_ES256;
	case 384:
		return CL_JWS_ES384;
	default:
		return CL_JWS_NONE;
	}
}

/* Size of an ECDSA r or s for the algorithm; 0 for EdDSA. */
static size_t half_of(enum cl_jws_alg a)
{
	return a == CL_JWS_ES256 ? 32 : a == CL_JWS_ES384 ? 48 : 0;
}

static const EVP_MD *md_of(enum cl_jws_alg a)
{
	return a == CL_JWS_ES256 ? EVP_sha256() : a == CL_JWS_ES384 ? EVP_sha384() : NULL;
}

static int decode_json(const char *s, size_t n, json_t **out)
{
	uint8_t *buf = NULL;
	size_t m = 0;

	*out = NULL;
	if (cl_base64_decode(s, n, &buf, &m) == CL_OK)
		*out = json_loadb((const char *)buf, m, JSON_REJECT_DUPLICATES, NULL);
	free(buf);
	if (*out && !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
	}
	return *out ? CL_OK : CL_ERR_MALFORMED;
}

int cl_jws_parse(const char *tok, size_t len, size_t max, struct cl_jws *out)
{
	const char *d1 = NULL, *d2 = NULL, *sig = NULL;
	uint8_t *raw = NULL;
	size_t sl = 0, rl = 0, want = 0;
	int rc = CL_OK;

	memset(out, 0, sizeof(*out));
	while (len > 0 && (tok[len - 1] == '\n' || tok[len - 1] == '\r' || tok[len - 1] == ' '))
		len--;
	CL_ENSURE_MSG(len <= max, CL_ERR_MALFORMED, "token larger than %zu bytes", max);
	d1 = memchr(tok, '.', len);
	d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
	sig = d2 ? d2 + 1 : NULL;
	sl = d2 ? len - (size_t)(sig - tok) : 0;
	CL_ENSURE_MSG(d1 && d2 && cl_is_base64url(tok, (size_t)(d1 - tok)) &&
			      cl_is_base64url(d1 + 1, (size_t)(d2 - d1 - 1)) &&
			      cl_is_base64url(sig, sl),
		      CL_ERR_MALFORMED, "not a compact JWS");
	CL_ENSURE_MSG(decode_json(tok, (size_t)(d1 - tok), &out->header) == CL_OK, CL_ERR_MALFORMED,
		      "bad protected header");
	out->alg = cl_jws_alg_parse(json_string_value(json_object_get(out->header, "alg")));
	CL_CHECK(out->alg != CL_JWS_NONE, CL_ERR_UNSUPPORTED,
		 "algorithm must be ES256, ES384 or EdDSA");
	CL_CHECK(!json_object_get(out->header, "crit"), CL_ERR_UNSUPPORTED,
		 "critical header not understood");
	want = out->alg == CL_JWS_EDDSA ? 64 : 2 * half_of(out->alg);
	CL_CHECK(cl_base64_decode(sig, sl, &raw, &rl) == CL_OK && rl == want, CL_ERR_SIGNATURE,
		 "signature has the wrong size for %s", cl_jws_alg_name(out->alg));
	/*
	 * The signature is not signed: only its canonical encoding is accepted
	 * (unused low bits of the last character zero), so no byte of a token can
	 * change and the token still verify.
	 */
	{
		char *again = cl_base64url_encode(raw, rl);
		int same = again && strlen(again) == sl && memcmp(again, sig, sl) == 0;

		free(again);
		CL_CHECK(same, CL_ERR_SIGNATURE, "signature is not canonical base64url");
	}
	memcpy(out->sig, raw, rl);
	out->sig_len = rl;
	out->input = tok;
	out->input_len = (size_t)(d2 - tok);
	out->payload = d1 + 1;
	out->payload_len = (size_t)(d2 - d1 - 1);
out:
	free(raw);
	if (rc != CL_OK)
		cl_jws_clear(out);
	return rc;
}

void cl_jws_clear(struct cl_jws *j)
{
	if (!j)
		return;
	json_decref(j->header);
	memset(j, 0, sizeof(*j));
}

int cl_jws_verify(const struct cl_jws *j, EVP_PKEY *key)
{
	EVP_MD_CTX *c = NULL;
	uint8_t *der = NULL;
	size_t dl = 0, half = half_of(j->alg);
	int ok = 0;

	CL_ENSURE_MSG(cl_jws_alg_of_key(key) == j->alg, CL_ERR_SIGNATURE, "the key is not a %s key",
		      cl_jws_alg_name(j->alg));
	if (half)
		CL_GUARD(cl_ecdsa_raw_to_der(j->sig, half, &der, &dl));
	c = EVP_MD_CTX_new();
	ok = c && EVP_DigestVerifyInit(c, NULL, md_of(j->alg), NULL, key) == 1 &&
	     EVP_DigestVerify(c, half ? der : j->sig, half ? dl : j->sig_len,
			      (const uint8_t *)j->input, j->input_len) == 1;
	EVP_MD_CTX_free(c);
	OPENSSL_free(der);
	ERR_clear_error();
	CL_ENSURE_MSG(ok, CL_ERR_SIGNATURE, "signature does not verify");
	return CL_OK;
}

int cl_jws_payload_json(const struct cl_jws *j, json_t **out)
{
	CL_ENSURE_MSG(decode_json(j->payload, j->payload_len, out) == CL_OK, CL_ERR_MALFORMED,
		      "payload is not a JSON object");
	return CL_OK;
}

int cl_jws_sign(EVP_PKEY *key, const json_t *header, const void *payload, size_t len, char **out)
{
	enum cl_jws_alg alg = cl_jws_alg_of_key(key);
	json_t *h = header ? json_deep_copy(header) : json_object();
	char *hs = NULL, *h64 = NULL, *p64 = NULL, *s64 = NULL;
	uint8_t sig[160], raw[CL_JWS_MAX_SIG];
	size_t sl = sizeof(sig), half = half_of(alg);
	EVP_MD_CTX *c = NULL;
	struct cl_buf b = {0};
	int rc = CL_OK;

	*out = NULL;
	CL_CHECK(alg != CL_JWS_NONE, CL_ERR_ARG, "the key cannot sign a JWS (ES256, ES384, EdDSA)");
	CL_CHECK(h && json_object_set_new(h, "alg", json_string(cl_jws_alg_name(alg))) == 0,
		 CL_ERR_NOMEM, "out of memory");
	hs = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
	h64 = hs ? cl_base64url_encode(hs, strlen(hs)) : NULL;
	p64 = cl_base64url_encode(payload, len);
	CL_CHECK(h64 && p64, CL_ERR_NOMEM, "out of memory");
	CL_TRY(cl_buf_append(&b, h64, strlen(h64)));
	CL_TRY(cl_buf_append(&b, ".", 1));
	CL_TRY(cl_buf_append(&b, p64, strlen(p64)));
	c = EVP_MD_CTX_new();
	CL_CHECK(c && EVP_DigestSignInit(c, NULL, md_of(alg), NULL, key) == 1 &&
			 EVP_DigestSign(c, sig, &sl, b.data, b.len) == 1,
		 CL_ERR_CRYPTO, "signing failed");
	if (half) {
		CL_TRY(cl_ecdsa_der_to_raw(sig, sl, raw, half));
		s64 = cl_base64url_encode(raw, 2 * half);
	} else {
		s64 = cl_base64url_encode(sig, sl);
	}
	CL_CHECK(s64, CL_ERR_NOMEM, "out of memory");
	CL_TRY(cl_buf_append(&b, ".", 1));
	CL_TRY(cl_buf_append(&b, s64, strlen(s64) + 1));
	*out = (char *)b.data;
	b.data = NULL;
out:
	ERR_clear_error();
	EVP_MD_CTX_free(c);
	cl_buf_free(&b);
	free(s64);
	free(p64);
	free(h64);
	free(hs);
	json_decref(h);
	return rc;
}
