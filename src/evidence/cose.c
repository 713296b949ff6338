/*
 * COSE_Sign1 (RFC 9052) on the bounded CBOR loader. The module lives with
 * the loader in the evidence layer (crypto sits below it and must not reach
 * up); CoRIM in appraise uses it from above.
 *
 * The Sig_structure is never built in memory: its CBOR heads are fixed but
 * for two byte-string lengths, so the digest is fed the pieces in order.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "cloister/cbor.h"
#include "cloister/cose.h"
#include "cloister/crypto.h"

/* Nesting: the array, a header map, one level of values inside it. */
static const struct cl_cbor_caps sign1_caps = {"COSE_Sign1", 4, 64, 0};
static const struct cl_cbor_caps header_caps = {"COSE header", 3, 2 * CL_COSE_MAX_LABELS + 16, 0};

/* The head of a CBOR item of major type `major` and argument v; its length. */
static size_t head(unsigned major, uint64_t v, uint8_t out[9])
{
	size_t n = cl_cbor_head_len(v);
	uint8_t ai = n == 1 ? (uint8_t)v : n == 2 ? 24 : n == 3 ? 25 : n == 5 ? 26 : 27;

	out[0] = (uint8_t)(major << 5 | ai);
	for (size_t i = 1; i < n; i++)
		out[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return n;
}

static int want_int(const cbor_item_t *it, int64_t *v)
{
	uint64_t u = 0;

	if (!cbor_isa_uint(it) && !cbor_isa_negint(it))
		return 0;
	u = cbor_get_int(it);
	if (u > (uint64_t)INT64_MAX)
		return 0;
	*v = cbor_isa_uint(it) ? (int64_t)u : -1 - (int64_t)u;
	return 1;
}

/* Labels of a COSE header map: int or text, each once, at most CL_COSE_MAX_LABELS. */
static int labels_check(const cbor_item_t *m, const char *which)
{
	struct cbor_pair *pr = NULL;
	size_t n = 0;

	CL_ENSURE_MSG(cbor_isa_map(m) && cbor_map_is_definite(m), CL_ERR_MALFORMED,
		      "COSE_Sign1: %s header is not a map", which);
	pr = cbor_map_handle(m);
	n = cbor_map_size(m);
	CL_ENSURE_MSG(n <= CL_COSE_MAX_LABELS, CL_ERR_MALFORMED,
		      "COSE_Sign1: %s header has %zu labels (at most %d)", which, n,
		      CL_COSE_MAX_LABELS);
	for (size_t i = 0; i < n; i++) {
		const cbor_item_t *k = pr[i].key;

		CL_ENSURE_MSG(cbor_isa_uint(k) || cbor_isa_negint(k) ||
				      (cbor_isa_string(k) && cbor_string_is_definite(k)),
			      CL_ERR_MALFORMED, "COSE_Sign1: %s header label is not an int or text",
			      which);
		for (size_t j = 0; j < i; j++) {
			const cbor_item_t *o = pr[j].key;
			int same = 0;

			if (cbor_typeof(k) != cbor_typeof(o))
				continue;
			if (cbor_isa_string(k))
				same = cbor_string_length(k) == cbor_string_length(o) &&
				       memcmp(cbor_string_handle(k), cbor_string_handle(o),
					      cbor_string_length(k)) == 0;
			else
				same = cbor_get_int(k) == cbor_get_int(o);
			CL_ENSURE_MSG(!same, CL_ERR_MALFORMED,
				      "COSE_Sign1: %s header repeats a label", which);
		}
		/* crit (2): extensions the signer says we must understand; we know none. */
		if (!cbor_isa_string(k) && cbor_isa_uint(k) && cbor_get_int(k) == 2)
			CL_BAIL(CL_ERR_UNSUPPORTED,
				"COSE_Sign1: critical headers are not supported");
	}
	return CL_OK;
}

/* The protected header's alg: ES256 or ES384. */
static int protected_alg(const uint8_t *p, size_t n, int64_t *alg)
{
	cbor_item_t *h = NULL;
	struct cbor_pair *pr = NULL;
	int rc = CL_OK;

	*alg = 0;
	CL_CHECK(n > 0, CL_ERR_MALFORMED, "COSE_Sign1: empty protected header (no alg)");
	CL_TRY(cl_cbor_load(p, n, &header_caps, &h));
	CL_TRY(labels_check(h, "protected"));
	pr = cbor_map_handle(h);
	for (size_t i = 0; i < cbor_map_size(h); i++) {
		int64_t label = 0;

		if (!want_int(pr[i].key, &label) || label != 1)
			continue;
		CL_CHECK(want_int(pr[i].value, alg), CL_ERR_MALFORMED,
			 "COSE_Sign1: alg is not an integer");
		switch (*alg) {
		case CL_COSE_ALG_ES256:
		case CL_COSE_ALG_ES384:
			break;
		default:
			CL_CHECK(0, CL_ERR_UNSUPPORTED,
				 "COSE_Sign1: algorithm %lld is not accepted (ES256, ES384)",
				 (long long)*alg);
		}
	}
	CL_CHECK(*alg != 0, CL_ERR_MALFORMED, "COSE_Sign1: protected header has no alg");
out:
	if (h)
		cbor_decref(&h);
	return rc;
}

static int want_bytes(const cbor_item_t *it, const char *what, const uint8_t **p, size_t *n)
{
	CL_ENSURE_MSG(cbor_isa_bytestring(it) && cbor_bytestring_is_definite(it), CL_ERR_MALFORMED,
		      "COSE_Sign1: %s is not a byte string", what);
	*p = cbor_bytestring_handle(it);
	*n = cbor_bytestring_length(it);
	return CL_OK;
}

static size_t half_of(int64_t alg)
{
	return alg == CL_COSE_ALG_ES256 ? 32 : 48;
}

/* The four parts of a decoded COSE_Sign1 array, checked; pointers borrowed from it. */
static int from_item(const cbor_item_t *root, struct cl_cose_sign1 *s)
{
	cbor_item_t **a = NULL;

	CL_ENSURE_MSG(cbor_isa_array(root) && cbor_array_is_definite(root) &&
			      cbor_array_size(root) == 4,
		      CL_ERR_MALFORMED, "COSE_Sign1: not an array of four");
	a = cbor_array_handle(root);
	CL_GUARD(want_bytes(a[0], "protected header", &s->protected_hdr, &s->protected_len));
	CL_ENSURE_MSG(s->protected_len <= CL_COSE_MAX_PROTECTED, CL_ERR_MALFORMED,
		      "COSE_Sign1: protected header of %zu bytes (at most %d)", s->protected_len,
		      CL_COSE_MAX_PROTECTED);
	CL_GUARD(protected_alg(s->protected_hdr, s->protected_len, &s->alg));
	CL_GUARD(labels_check(a[1], "unprotected"));
	CL_ENSURE_MSG(!cl_cbor_is_null(a[2]), CL_ERR_UNSUPPORTED,
		      "COSE_Sign1: detached payloads are not supported");
	CL_GUARD(want_bytes(a[2], "payload", &s->payload, &s->payload_len));
	CL_GUARD(want_bytes(a[3], "signature", &s->sig, &s->sig_len));
	CL_ENSURE_MSG(s->sig_len == 2 * half_of(s->alg), CL_ERR_MALFORMED,
		      "COSE_Sign1: signature of %zu bytes, %s needs %zu", s->sig_len,
		      s->alg == CL_COSE_ALG_ES256 ? "ES256" : "ES384", 2 * half_of(s->alg));
	return CL_OK;
}

int cl_cose_sign1_parse(const uint8_t *p, size_t n, struct cl_cose_sign1 *s)
{
	cbor_item_t *root = NULL;
	int rc = CL_OK;

	memset(s, 0, sizeof(*s));
	CL_ENSURE_MSG(p && n > 0, CL_ERR_TRUNCATED, "COSE_Sign1: empty input");
	CL_ENSURE_MSG(n <= CL_COSE_MAX_LEN, CL_ERR_MALFORMED, "COSE_Sign1: %zu bytes (at most %u)",
		      n, CL_COSE_MAX_LEN);
	/*
	 * libcbor 0.8 refuses the one-byte head of tag 18 (0xd2): read it here
	 * and load the array that follows. Any other tag is not a COSE_Sign1.
	 */
	if (p[0] == 0xd2) {
		s->tagged = 1;
		p++;
		n--;
	}
	CL_ENSURE_MSG(n > 0 && p[0] == 0x84, n > 0 ? CL_ERR_MALFORMED : CL_ERR_TRUNCATED,
		      "COSE_Sign1: not an array of four (tag 18 or none)");
	CL_TRY(cl_cbor_load(p, n, &sign1_caps, &root));
	CL_TRY(from_item(root, s));
	s->tree = root;
	root = NULL;
out:
	if (root)
		cbor_decref(&root);
	if (rc != CL_OK)
		memset(s, 0, sizeof(*s));
	return rc;
}

int cl_cose_sign1_from_item(cbor_item_t *item, int tagged, struct cl_cose_sign1 *s)
{
	memset(s, 0, sizeof(*s));
	CL_ENSURE_MSG(item, CL_ERR_MALFORMED, "COSE_Sign1: nothing to read");
	CL_GUARD(from_item(item, s));
	s->tagged = tagged;
	s->tree = cbor_incref(item);
	return CL_OK;
}

void cl_cose_sign1_free(struct cl_cose_sign1 *s)
{
	cbor_item_t *t = NULL;

	if (!s)
		return;
	t = s->tree;
	if (t)
		cbor_decref(&t);
	memset(s, 0, sizeof(*s));
}

/* Digest of ["Signature1", prot, h'', payload] without building it. */
static int tbs_digest(int64_t alg, const uint8_t *prot, size_t prot_len, const uint8_t *payload,
		      size_t payload_len, uint8_t *out, size_t *out_len)
{
	static const uint8_t start[] = {0x84, 0x6a, 'S', 'i', 'g', 'n',
					'a',  't',  'u', 'r', 'e', '1'};
	static const uint8_t no_aad[] = {0x40};
	const EVP_MD *md = alg == CL_COSE_ALG_ES256 ? EVP_sha256() : EVP_sha384();
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t h1[9], h2[9];
	size_t n1 = head(2, prot_len, h1), n2 = head(2, payload_len, h2);
	unsigned int len = 0;
	int ok = 0;

	ok = ctx && EVP_DigestInit_ex(ctx, md, NULL) == 1 &&
	     EVP_DigestUpdate(ctx, start, sizeof(start)) == 1 &&
	     EVP_DigestUpdate(ctx, h1, n1) == 1 && EVP_DigestUpdate(ctx, prot, prot_len) == 1 &&
	     EVP_DigestUpdate(ctx, no_aad, sizeof(no_aad)) == 1 &&
	     EVP_DigestUpdate(ctx, h2, n2) == 1 &&
	     EVP_DigestUpdate(ctx, payload, payload_len) == 1 &&
	     EVP_DigestFinal_ex(ctx, out, &len) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	CL_ENSURE_MSG(ok, CL_ERR_CRYPTO, "cannot hash the COSE Sig_structure");
	*out_len = len;
	return CL_OK;
}

int cl_cose_sign1_tbs_digest(const struct cl_cose_sign1 *s, uint8_t *out, size_t *out_len)
{
	CL_ENSURE_MSG(s && s->tree, CL_ERR_ARG, "COSE_Sign1: nothing parsed");
	return tbs_digest(s->alg, s->protected_hdr, s->protected_len, s->payload, s->payload_len,
			  out, out_len);
}

/* The COSE alg for an EC key's curve, or 0. */
static int64_t alg_of_key(EVP_PKEY *key)
{
	char name[64] = "";
	size_t len = 0;

	if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
	    EVP_PKEY_get_group_name(key, name, sizeof(name), &len) != 1)
		return 0;
	if (strcmp(name, "prime256v1") == 0)
		return CL_COSE_ALG_ES256;
	if (strcmp(name, "secp384r1") == 0)
		return CL_COSE_ALG_ES384;
	return 0;
}

int cl_cose_sign1_verify(const struct cl_cose_sign1 *s, EVP_PKEY *key)
{
	uint8_t dgst[CL_MAX_DIGEST];
	size_t dlen = 0, half = 0;

	CL_ENSURE_MSG(s && s->tree, CL_ERR_ARG, "COSE_Sign1: nothing parsed");
	CL_ENSURE_MSG(alg_of_key(key) == s->alg, CL_ERR_SIGNATURE,
		      "COSE_Sign1: the key is not on the curve of %s",
		      s->alg == CL_COSE_ALG_ES256 ? "ES256" : "ES384");
	half = half_of(s->alg);
	CL_ENSURE(s->sig_len == 2 * half, CL_ERR_INTERNAL);
	CL_GUARD(tbs_digest(s->alg, s->protected_hdr, s->protected_len, s->payload, s->payload_len,
			    dgst, &dlen));
	return cl_ecdsa_verify_digest_raw(key, dgst, dlen, s->sig, s->sig + half, half);
}

static uint8_t *put(uint8_t *p, const void *v, size_t n)
{
	if (n)
		memcpy(p, v, n);
	return p + n;
}

int cl_cose_sign1_sign(EVP_PKEY *key, const uint8_t *payload, size_t payload_len, int tagged,
		       uint8_t **out, size_t *out_len)
{
	static const uint8_t prot256[] = {0xa1, 0x01, 0x26};
	static const uint8_t prot384[] = {0xa1, 0x01, 0x38, 0x22};
	int64_t alg = alg_of_key(key);
	const uint8_t *prot = alg == CL_COSE_ALG_ES256 ? prot256 : prot384;
	size_t prot_len = alg == CL_COSE_ALG_ES256 ? sizeof(prot256) : sizeof(prot384);
	uint8_t dgst[CL_MAX_DIGEST], der[160], rs[96], h[9];
	size_t dlen = 0, derlen = sizeof(der), half = 0, cap = 0;
	EVP_PKEY_CTX *ctx = NULL;
	uint8_t *buf = NULL, *p = NULL;
	int rc = CL_OK;

	*out = NULL;
	*out_len = 0;
	CL_CHECK(alg != 0, CL_ERR_ARG, "COSE_Sign1: signing needs an EC P-256 or P-384 key");
	CL_CHECK(payload_len <= CL_COSE_MAX_LEN - 256, CL_ERR_ARG, "COSE_Sign1: payload too large");
	half = half_of(alg);
	CL_TRY(tbs_digest(alg, prot, prot_len, payload, payload_len, dgst, &dlen));
	ctx = EVP_PKEY_CTX_new(key, NULL);
	CL_CHECK(ctx && EVP_PKEY_sign_init(ctx) == 1 &&
			 EVP_PKEY_sign(ctx, der, &derlen, dgst, dlen) == 1,
		 CL_ERR_CRYPTO, "COSE_Sign1: cannot sign");
	CL_TRY(cl_ecdsa_der_to_raw(der, derlen, rs, half));
	cap = 1 + 1 + 9 + prot_len + 1 + 9 + payload_len + 9 + 2 * half;
	buf = malloc(cap);
	CL_CHECK(buf, CL_ERR_NOMEM, "out of memory");
	p = buf;
	if (tagged)
		*p++ = 0xd2;
	*p++ = 0x84;
	p = put(p, h, head(2, prot_len, h));
	p = put(p, prot, prot_len);
	*p++ = 0xa0;
	p = put(p, h, head(2, payload_len, h));
	p = put(p, payload, payload_len);
	p = put(p, h, head(2, 2 * half, h));
	p = put(p, rs, 2 * half);
	*out_len = (size_t)(p - buf);
	*out = buf;
	buf = NULL;
out:
	free(buf);
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}
