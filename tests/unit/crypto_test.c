#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>

#include "cloister/crypto.h"
#include "cloister/endorse.h"
#include "test.h"

/* Sign with a fresh key and check the raw-(r, s) verifier against it. */
static void test_ecdsa_raw(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-384");
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	static const char msg[] = "cloister";
	uint8_t der[128], r[48], s[48];
	size_t derlen = sizeof(der);
	const unsigned char *p = der;
	ECDSA_SIG *sig = NULL;

	CHECK(key && ctx);
	CHECK(EVP_DigestSignInit(ctx, NULL, EVP_sha384(), NULL, key) == 1);
	CHECK(EVP_DigestSign(ctx, der, &derlen, (const uint8_t *)msg, sizeof(msg)) == 1);
	sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	CHECK(sig != NULL);
	CHECK(BN_bn2binpad(ECDSA_SIG_get0_r(sig), r, 48) == 48);
	CHECK(BN_bn2binpad(ECDSA_SIG_get0_s(sig), s, 48) == 48);
	CHECK_EQ_INT(cl_ecdsa_verify_raw(key, CL_SHA384, msg, sizeof(msg), r, s, 48), CL_OK);
	CHECK_EQ_INT(cl_verify_der(key, CL_SHA384, msg, sizeof(msg), der, derlen), CL_OK);
	r[10] ^= 1;
	CHECK_EQ_INT(cl_ecdsa_verify_raw(key, CL_SHA384, msg, sizeof(msg), r, s, 48),
		     CL_ERR_SIGNATURE);
	r[10] ^= 1;
	CHECK_EQ_INT(cl_ecdsa_verify_raw(key, CL_SHA384, msg, sizeof(msg) - 1, r, s, 48),
		     CL_ERR_SIGNATURE);
	CHECK_EQ_INT(cl_verify_der(key, CL_SHA256, msg, sizeof(msg), der, derlen),
		     CL_ERR_SIGNATURE);
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
}

static void test_ec_from_xy(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-256"), *back = NULL;
	uint8_t pub[65];
	size_t publen = 0;

	CHECK(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub),
					      &publen) == 1);
	CHECK_EQ_INT(publen, 65);
	CHECK_EQ_INT(cl_ec_key_from_xy("prime256v1", pub + 1, pub + 33, 32, &back), CL_OK);
	CHECK(back && EVP_PKEY_eq(key, back) == 1);
	EVP_PKEY_free(back);
	back = NULL;
	/* A point off the curve is refused, not silently accepted. */
	pub[40] ^= 1;
	CHECK(cl_ec_key_from_xy("prime256v1", pub + 1, pub + 33, 32, &back) != CL_OK);
	CHECK(back == NULL);
	EVP_PKEY_free(key);
}

static void test_amd_chain(void)
{
	struct cl_buf der = vector_read("sev-snp/go-sev-guest/vcek_milan.der");
	X509 *vcek = NULL;
	STACK_OF(X509) *untrusted = sk_X509_new_null(), *roots = sk_X509_new_null();
	int depth = 0;
	int64_t at = 0;
	const uint8_t *v = NULL;
	size_t vl = 0;

	CHECK_EQ_INT(cl_x509_from_der(der.data, der.len, &vcek), CL_OK);
	sk_X509_push(untrusted, cl_amd_ask(CL_AMD_MILAN));
	sk_X509_push(roots, cl_amd_ark(CL_AMD_MILAN));
	CHECK_EQ_INT(cl_time_parse("2022-09-24T01:00:00Z", &at), CL_OK);
	CHECK_EQ_INT(cl_x509_verify(vcek, untrusted, roots, NULL, at, &depth), CL_OK);
	CHECK_EQ_INT(depth, 3);
	/* Before the VCEK was issued. */
	CHECK_EQ_INT(cl_x509_verify(vcek, untrusted, roots, NULL, at - 86400, &depth),
		     CL_ERR_EXPIRED);
	/* Against another product's root. */
	sk_X509_pop(roots);
	sk_X509_push(roots, cl_amd_ark(CL_AMD_GENOA));
	CHECK_EQ_INT(cl_x509_verify(vcek, untrusted, roots, NULL, at, &depth), CL_ERR_CHAIN);
	/* hwID extension is there and holds the raw 64-byte chip id. */
	CHECK_EQ_INT(cl_x509_ext_by_oid(vcek, "1.3.6.1.4.1.3704.1.4", &v, &vl), CL_OK);
	CHECK_EQ_INT(vl, 64);
	CHECK_EQ_INT(cl_x509_ext_by_oid(vcek, "1.2.3.4", &v, &vl), CL_ERR_NOT_FOUND);
	sk_X509_free(untrusted);
	sk_X509_free(roots);
	X509_free(vcek);
	cl_buf_free(&der);
}

static void test_cert_parsing_bounds(void)
{
	struct cl_buf der = vector_read("sev-snp/go-sev-guest/vcek_milan.der");
	struct cl_buf pem = vector_read("sev-snp/go-sev-guest/ask_ark_milan.pem");
	X509 *x = NULL;
	STACK_OF(X509) *sk = NULL;

	CHECK_EQ_INT(cl_x509_from_der(der.data, der.len - 1, &x), CL_ERR_MALFORMED);
	CHECK(x == NULL);
	CHECK_EQ_INT(cl_x509_from_any(pem.data, pem.len, &x), CL_OK);
	X509_free(x);
	CHECK_EQ_INT(cl_x509_chain_from_pem(pem.data, pem.len, &sk), CL_OK);
	CHECK_EQ_INT(sk_X509_num(sk), 2);
	sk_X509_pop_free(sk, X509_free);
	sk = NULL;
	CHECK_EQ_INT(cl_x509_chain_from_pem((const uint8_t *)"junk", 4, &sk), CL_ERR_MALFORMED);
	cl_buf_free(&der);
	cl_buf_free(&pem);
}

/* Decoding is cached by content; a changed byte must still be decoded afresh. */
static void test_decode_cache(void)
{
	struct cl_buf der = vector_read("sev-snp/go-sev-guest/vcek_milan.der");
	X509 *a = NULL, *b = NULL, *c = NULL;

	CHECK_EQ_INT(cl_x509_from_der(der.data, der.len, &a), CL_OK);
	CHECK_EQ_INT(cl_x509_from_der(der.data, der.len, &b), CL_OK);
	CHECK(a && a == b);
	/* A flipped byte in the signature value: decodes, but is not the cached object. */
	der.data[der.len - 5] ^= 1;
	CHECK_EQ_INT(cl_x509_from_der(der.data, der.len, &c), CL_OK);
	CHECK(c && c != a && X509_cmp(a, c) != 0);
	X509_free(c);
	c = NULL;
	/* A flipped tag byte: not a certificate at all. */
	der.data[der.len - 5] ^= 1;
	der.data[0] ^= 0x10;
	CHECK_EQ_INT(cl_x509_from_der(der.data, der.len, &c), CL_ERR_MALFORMED);
	CHECK(c == NULL);
	X509_free(a);
	X509_free(b);
	cl_buf_free(&der);
}

static void test_pinned_roots(void)
{
	for (int p = 0; p < CL_AMD_PRODUCT_COUNT; p++) {
		CHECK(cl_amd_ark((enum cl_amd_product)p) != NULL);
		CHECK(cl_amd_ask((enum cl_amd_product)p) != NULL);
		CHECK(cl_amd_asvk((enum cl_amd_product)p) != NULL);
	}
	CHECK(cl_amd_ark(CL_AMD_PRODUCT_COUNT) == NULL);
	CHECK(cl_intel_root() != NULL);
	CHECK_STR(cl_amd_product_name(CL_AMD_TURIN), "Turin");
}

int main(void)
{
	RUN(test_ecdsa_raw);
	RUN(test_ec_from_xy);
	RUN(test_amd_chain);
	RUN(test_cert_parsing_bounds);
	RUN(test_decode_cache);
	RUN(test_pinned_roots);
	return test_done("crypto_test");
}
