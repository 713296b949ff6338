/*
 * COSE_Sign1: tokens signed at test time with OpenSSL over a Sig_structure
 * that libcbor serialises (not cloister's own writer), for ES256 and ES384,
 * tagged and untagged; every byte flipped and every truncation rejected;
 * wrong keys, curves, algorithms, crit, detached payloads and trailing bytes
 * refused; cl_cose_sign1_sign's output verifying.
 */
#include <openssl/evp.h>

#include "cloister/cbor.h"
#include "cloister/cose.h"
#include "cloister/crypto.h"
#include "test.h"

static void put(struct cl_buf *b, const void *p, size_t n)
{
	if (cl_buf_append(b, p, n) != CL_OK)
		abort();
}

static void bstr(struct cl_buf *b, const uint8_t *p, size_t n)
{
	uint8_t h[3] = {0x59, (uint8_t)(n >> 8), (uint8_t)n};

	if (n < 24) {
		h[0] = (uint8_t)(0x40 | n);
		put(b, h, 1);
	} else if (n < 256) {
		h[0] = 0x58;
		h[1] = (uint8_t)n;
		put(b, h, 2);
	} else {
		put(b, h, 3);
	}
	put(b, p, n);
}

/* ["Signature1", prot, h'', payload] serialised by libcbor. */
static struct cl_buf sig_structure(const uint8_t *prot, size_t plen, const uint8_t *payload,
				   size_t n)
{
	cbor_item_t *a = cbor_new_definite_array(4);
	unsigned char *out = NULL;
	size_t cap = 0, len = 0;
	struct cl_buf b = {0};
	cbor_item_t *x[4] = {cbor_build_string("Signature1"), cbor_build_bytestring(prot, plen),
			     cbor_build_bytestring(NULL, 0), cbor_build_bytestring(payload, n)};

	for (int i = 0; i < 4; i++) {
		if (!cbor_array_push(a, x[i]))
			abort();
		cbor_decref(&x[i]);
	}
	len = cbor_serialize_alloc(a, &out, &cap);
	cbor_decref(&a);
	put(&b, out, len);
	free(out);
	return b;
}

/* A COSE_Sign1 with the given protected header bytes, signed by key. */
static struct cl_buf make_token(EVP_PKEY *key, int hash, const uint8_t *prot, size_t plen,
				const uint8_t *payload, size_t n, int tagged)
{
	struct cl_buf tbs = sig_structure(prot, plen, payload, n), t = {0};
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t der[160], rs[96];
	size_t dlen = sizeof(der), half = hash == 256 ? 32 : 48;

	if (!md ||
	    EVP_DigestSignInit(md, NULL, hash == 256 ? EVP_sha256() : EVP_sha384(), NULL, key) !=
		    1 ||
	    EVP_DigestSign(md, der, &dlen, tbs.data, tbs.len) != 1 ||
	    cl_ecdsa_der_to_raw(der, dlen, rs, half) != CL_OK)
		abort();
	EVP_MD_CTX_free(md);
	if (tagged)
		put(&t, "\xd2", 1);
	put(&t, "\x84", 1);
	bstr(&t, prot, plen);
	put(&t, "\xa0", 1);
	bstr(&t, payload, n);
	bstr(&t, rs, 2 * half);
	cl_buf_free(&tbs);
	return t;
}

static const uint8_t PROT384[] = {0xa1, 0x01, 0x38, 0x22};
static const uint8_t PROT256[] = {0xa1, 0x01, 0x26};
static const uint8_t PAYLOAD[] = "a payload of some forty bytes, or so it says";

static int verify(const uint8_t *p, size_t n, EVP_PKEY *key)
{
	struct cl_cose_sign1 s;
	int rc = cl_cose_sign1_parse(p, n, &s);

	if (rc == CL_OK)
		rc = cl_cose_sign1_verify(&s, key);
	cl_cose_sign1_free(&s);
	return rc;
}

static void test_known_good(void)
{
	EVP_PKEY *k384 = EVP_EC_gen("P-384"), *k256 = EVP_EC_gen("P-256");

	for (int tagged = 0; tagged < 2; tagged++) {
		struct cl_buf a = make_token(k384, 384, PROT384, sizeof(PROT384), PAYLOAD,
					     sizeof(PAYLOAD), tagged);
		struct cl_buf b = make_token(k256, 256, PROT256, sizeof(PROT256), PAYLOAD,
					     sizeof(PAYLOAD), tagged);
		struct cl_cose_sign1 s;

		CHECK_EQ_INT(cl_cose_sign1_parse(a.data, a.len, &s), CL_OK);
		CHECK_EQ_INT(s.tagged, tagged);
		CHECK_EQ_INT(s.alg, CL_COSE_ALG_ES384);
		CHECK(s.payload_len == sizeof(PAYLOAD) &&
		      memcmp(s.payload, PAYLOAD, s.payload_len) == 0);
		CHECK_EQ_INT(cl_cose_sign1_verify(&s, k384), CL_OK);
		/* A key on the other curve, and another P-384 key. */
		CHECK_EQ_INT(cl_cose_sign1_verify(&s, k256), CL_ERR_SIGNATURE);
		cl_cose_sign1_free(&s);
		CHECK_EQ_INT(verify(b.data, b.len, k256), CL_OK);
		CHECK_EQ_INT(verify(b.data, b.len, k384), CL_ERR_SIGNATURE);
		cl_buf_free(&a);
		cl_buf_free(&b);
	}
	{
		EVP_PKEY *other = EVP_EC_gen("P-384");
		struct cl_buf a = make_token(k384, 384, PROT384, sizeof(PROT384), PAYLOAD,
					     sizeof(PAYLOAD), 0);

		CHECK_EQ_INT(verify(a.data, a.len, other), CL_ERR_SIGNATURE);
		cl_buf_free(&a);
		EVP_PKEY_free(other);
	}
	cl_cose_sign1_free(NULL);
	EVP_PKEY_free(k384);
	EVP_PKEY_free(k256);
}

/* Every byte flipped (two ways) and every truncation: never accepted. */
static void test_mutations(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-384");

	for (int tagged = 0; tagged < 2; tagged++) {
		struct cl_buf t = make_token(k, 384, PROT384, sizeof(PROT384), PAYLOAD,
					     sizeof(PAYLOAD), tagged);
		int accepted = 0, trunc_ok = 0;

		CHECK_EQ_INT(verify(t.data, t.len, k), CL_OK);
		for (size_t i = 0; i < t.len; i++) {
			static const uint8_t masks[] = {0x01, 0x80, 0xff};

			for (size_t m = 0; m < sizeof(masks); m++) {
				t.data[i] ^= masks[m];
				accepted += verify(t.data, t.len, k) == CL_OK;
				t.data[i] ^= masks[m];
			}
		}
		CHECK_EQ_INT(accepted, 0);
		for (size_t n = 0; n < t.len; n++)
			trunc_ok += verify(t.data, n, k) == CL_OK;
		CHECK_EQ_INT(trunc_ok, 0);
		CHECK_EQ_INT(verify(t.data, 0, k), CL_ERR_TRUNCATED);
		/* One byte more is not the same message. */
		put(&t, "\x00", 1);
		CHECK(verify(t.data, t.len, k) != CL_OK);
		cl_buf_free(&t);
	}
	EVP_PKEY_free(k);
}

static void test_headers(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-384");
	/* EdDSA (-8), alg as text, no alg, crit, a repeated label, an empty header. */
	static const uint8_t eddsa[] = {0xa1, 0x01, 0x27};
	static const uint8_t text_alg[] = {0xa1, 0x01, 0x65, 'E', 'S', '3', '8', '4'};
	static const uint8_t no_alg[] = {0xa1, 0x04, 0x41, 0x00};
	static const uint8_t crit[] = {0xa2, 0x01, 0x38, 0x22, 0x02, 0x81, 0x04};
	static const uint8_t twice[] = {0xa2, 0x01, 0x38, 0x22, 0x01, 0x38, 0x22};
	static const uint8_t not_map[] = {0x81, 0x01};
	static const uint8_t kid[] = {0xa2, 0x01, 0x38, 0x22, 0x04, 0x42, 0x6b, 0x31};
	struct {
		const uint8_t *p;
		size_t n;
		int want;
	} cases[] = {
		{eddsa, sizeof(eddsa), CL_ERR_UNSUPPORTED},
		{text_alg, sizeof(text_alg), CL_ERR_MALFORMED},
		{no_alg, sizeof(no_alg), CL_ERR_MALFORMED},
		{crit, sizeof(crit), CL_ERR_UNSUPPORTED},
		{twice, sizeof(twice), CL_ERR_MALFORMED},
		{not_map, sizeof(not_map), CL_ERR_MALFORMED},
		{(const uint8_t *)"", 0, CL_ERR_MALFORMED},
		{kid, sizeof(kid), CL_OK},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cl_buf t =
			make_token(k, 384, cases[i].p, cases[i].n, PAYLOAD, sizeof(PAYLOAD), 1);

		CHECK_EQ_INT(verify(t.data, t.len, k), cases[i].want);
		cl_buf_free(&t);
	}
	{
		/* Detached payload (null), another tag, an array of three. */
		static const uint8_t detached[] = {0x84, 0x44, 0xa1, 0x01, 0x38,
						   0x22, 0xa0, 0xf6, 0x40};
		static const uint8_t tag17[] = {0xd1, 0x84, 0x40, 0xa0, 0x40, 0x40};
		static const uint8_t three[] = {0x83, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0, 0x40};
		struct cl_cose_sign1 s;

		CHECK_EQ_INT(cl_cose_sign1_parse(detached, sizeof(detached), &s),
			     CL_ERR_UNSUPPORTED);
		CHECK_EQ_INT(cl_cose_sign1_parse(tag17, sizeof(tag17), &s), CL_ERR_MALFORMED);
		CHECK_EQ_INT(cl_cose_sign1_parse(three, sizeof(three), &s), CL_ERR_MALFORMED);
	}
	EVP_PKEY_free(k);
}

static void test_sign(void)
{
	const char *curves[] = {"P-256", "P-384"};

	for (int c = 0; c < 2; c++) {
		EVP_PKEY *k = EVP_EC_gen(curves[c]);
		uint8_t *t = NULL;
		size_t n = 0;
		struct cl_cose_sign1 s;
		uint8_t d[CL_MAX_DIGEST];
		size_t dl = 0;

		CHECK_EQ_INT(cl_cose_sign1_sign(k, PAYLOAD, sizeof(PAYLOAD), c, &t, &n), CL_OK);
		CHECK_EQ_INT(cl_cose_sign1_parse(t, n, &s), CL_OK);
		CHECK_EQ_INT(s.alg, c ? CL_COSE_ALG_ES384 : CL_COSE_ALG_ES256);
		CHECK_EQ_INT(cl_cose_sign1_verify(&s, k), CL_OK);
		CHECK_EQ_INT(cl_cose_sign1_tbs_digest(&s, d, &dl), CL_OK);
		CHECK_EQ_INT(dl, c ? 48 : 32);
		cl_cose_sign1_free(&s);
		free(t);
		EVP_PKEY_free(k);
	}
}

int main(void)
{
	cl_log_set_level(CL_LOG_ERROR);
	RUN(test_known_good);
	RUN(test_mutations);
	RUN(test_headers);
	RUN(test_sign);
	return test_done("cose_test");
}
