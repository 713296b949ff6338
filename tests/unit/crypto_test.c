#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/x509v3.h>

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

/* A throwaway certificate with the given basic constraints and key usage (NULL: none). */
static X509 *make_ca(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, long serial,
		     const char *bc, const char *ku)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext = NULL;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509_time_adj_ex(X509_getm_notBefore(x), -1, 0, NULL);
	X509_time_adj_ex(X509_getm_notAfter(x), 30, 0, NULL);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, bc);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (ku) {
		ext = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage, ku);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	X509_sign(x, ikey, EVP_sha256());
	X509_NAME_free(name);
	return x;
}

/* A throwaway CA or leaf for revocation tests (not evidence: only the X.509 logic). */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, long serial,
		       int ca)
{
	return make_ca(cn, key, issuer, ikey, serial, ca ? "critical,CA:TRUE" : "critical,CA:FALSE",
		       NULL);
}

static X509_CRL *make_crl(X509 *issuer, EVP_PKEY *ikey, long revoked_serial, int days_from,
			  int days_to)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();

	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer));
	X509_time_adj_ex(t, days_from, 0, NULL);
	X509_CRL_set1_lastUpdate(crl, t);
	X509_time_adj_ex(t, days_to, 0, NULL);
	X509_CRL_set1_nextUpdate(crl, t);
	if (revoked_serial) {
		X509_REVOKED *r = X509_REVOKED_new();
		ASN1_INTEGER *sn = ASN1_INTEGER_new();

		ASN1_INTEGER_set(sn, revoked_serial);
		X509_REVOKED_set_serialNumber(r, sn);
		X509_time_adj_ex(t, -1, 0, NULL);
		X509_REVOKED_set_revocationDate(r, t);
		X509_CRL_add0_revoked(crl, r);
		ASN1_INTEGER_free(sn);
	}
	X509_CRL_sort(crl);
	X509_CRL_sign(crl, ikey, EVP_sha256());
	ASN1_TIME_free(t);
	return crl;
}

static void test_revocation(void)
{
	EVP_PKEY *rk = EVP_EC_gen("P-256"), *ik = EVP_EC_gen("P-256"), *lk = EVP_EC_gen("P-256");
	X509 *root = make_cert("test root", rk, NULL, rk, 1, 1);
	X509 *inter = make_cert("test intermediate", ik, root, rk, 2, 1);
	X509 *leaf = make_cert("test leaf", lk, inter, ik, 3, 0);
	STACK_OF(X509) *roots = sk_X509_new_null(), *untrusted = sk_X509_new_null();
	STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
	X509_CRL *root_crl = make_crl(root, rk, 0, -1, 7);
	X509_CRL *inter_crl = make_crl(inter, ik, 0, -1, 7);
	X509_CRL *inter_crl_rev = make_crl(inter, ik, 3, -1, 7);
	X509_CRL *inter_crl_old = make_crl(inter, ik, 0, -10, -3);
	X509_CRL *forged = make_crl(inter, rk, 0, -1, 7); /* right name, wrong key */
	int depth = 0;

	sk_X509_push(roots, root);
	sk_X509_push(untrusted, inter);
	CHECK_EQ_INT(cl_x509_verify(leaf, untrusted, roots, NULL, 0, &depth), CL_OK);
	CHECK_EQ_INT(depth, 3);
	/* A leaf signed by a key other than its issuer's is refused, cached or not. */
	{
		X509 *bad = make_cert("test leaf", lk, inter, rk, 4, 0);

		CHECK_EQ_INT(cl_x509_verify(bad, untrusted, roots, NULL, 0, &depth), CL_ERR_CHAIN);
		cl_cache_bypass(1);
		CHECK_EQ_INT(cl_x509_verify(bad, untrusted, roots, NULL, 0, &depth), CL_ERR_CHAIN);
		CHECK_EQ_INT(cl_x509_verify(leaf, untrusted, roots, NULL, 0, &depth), CL_OK);
		cl_cache_bypass(0);
		X509_free(bad);
	}
	/* Validity is checked at the given time for every certificate in the path. */
	CHECK_EQ_INT(cl_x509_verify(leaf, untrusted, roots, NULL, (int64_t)time(NULL) + 40 * 86400,
				    &depth),
		     CL_ERR_EXPIRED);
	CHECK_EQ_INT(cl_x509_verify(leaf, untrusted, roots, NULL, (int64_t)time(NULL) - 2 * 86400,
				    &depth),
		     CL_ERR_EXPIRED);
	/* Every certificate below the root needs its issuer's CRL. */
	sk_X509_CRL_push(crls, root_crl);
	CHECK_EQ_INT(cl_x509_verify(leaf, untrusted, roots, crls, 0, &depth), CL_ERR_CHAIN);
	sk_X509_CRL_push(crls, inter_crl);
	CHECK_EQ_INT(cl_x509_verify(leaf, untrusted, roots, crls, 0, &depth), CL_OK);
	(void)sk_X509_CRL_pop(crls);
	sk_X509_CRL_push(crls, inter_crl_rev);
	CHECK_EQ_INT(cl_x509_verify(leaf, untrusted, roots, crls, 0, &depth), CL_ERR_REVOKED);
	(void)sk_X509_CRL_pop(crls);
	sk_X509_CRL_push(crls, inter_crl_old);
	CHECK_EQ_INT(cl_x509_verify(leaf, untrusted, roots, crls, 0, &depth), CL_ERR_EXPIRED);
	(void)sk_X509_CRL_pop(crls);
	sk_X509_CRL_push(crls, forged);
	CHECK_EQ_INT(cl_x509_verify(leaf, untrusted, roots, crls, 0, &depth), CL_ERR_SIGNATURE);
	/* The cached signature result is tied to the CRL's content and issuer. */
	CHECK_EQ_INT(cl_crl_check(inter_crl, inter, 0), CL_OK);
	CHECK_EQ_INT(cl_crl_check(inter_crl, root, 0), CL_ERR_CHAIN);
	CHECK_EQ_INT(cl_crl_check(forged, inter, 0), CL_ERR_SIGNATURE);
	cl_cache_bypass(1);
	CHECK_EQ_INT(cl_crl_check(inter_crl, inter, 0), CL_OK);
	CHECK_EQ_INT(cl_crl_check(forged, inter, 0), CL_ERR_SIGNATURE);
	cl_cache_bypass(0);

	sk_X509_CRL_pop_free(crls, X509_CRL_free); /* root_crl, forged */
	X509_CRL_free(inter_crl);
	X509_CRL_free(inter_crl_rev);
	X509_CRL_free(inter_crl_old);
	sk_X509_free(roots);
	sk_X509_free(untrusted);
	X509_free(leaf);
	X509_free(inter);
	X509_free(root);
	EVP_PKEY_free(lk);
	EVP_PKEY_free(ik);
	EVP_PKEY_free(rk);
}

/* OpenSSL's own path validation, signature step included, as the reference. */
static int openssl_accepts(X509 *leaf, STACK_OF(X509) * untrusted, X509 *root)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok = 0;

	X509_STORE_add_cert(store, root);
	X509_STORE_CTX_init(ctx, store, leaf, untrusted);
	ok = X509_verify_cert(ctx) == 1;
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	ERR_clear_error();
	return ok;
}

/* Re-encode cert with its outer signature algorithm changed from ES256 to ES384. */
static X509 *swap_sig_alg(X509 *x)
{
	static const uint8_t es256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
	unsigned char *der = NULL;
	const unsigned char *q = NULL;
	int n = i2d_X509(x, &der), last = -1;
	X509 *out = NULL;

	/* The outer AlgorithmIdentifier is the last occurrence of the OID. */
	for (int i = 0; i + (int)sizeof(es256) <= n; i++)
		if (memcmp(der + i, es256, sizeof(es256)) == 0)
			last = i;
	if (last >= 0) {
		der[last + sizeof(es256) - 1] = 0x03;
		q = der;
		out = d2i_X509(NULL, &q, n);
	}
	OPENSSL_free(der);
	return out;
}

/*
 * The chain checks that a real path builder must make besides signatures and
 * times: each is refused by cl_x509_verify (whose signature and time pass is
 * its own) and by OpenSSL's unmodified X509_verify_cert, and the well-formed
 * chain is accepted by both.
 */
static void test_chain_builder_rules(void)
{
	EVP_PKEY *rk = EVP_EC_gen("P-256"), *ik = EVP_EC_gen("P-256"), *lk = EVP_EC_gen("P-256");
	X509 *root = make_ca("rules root", rk, NULL, rk, 1, "critical,CA:TRUE",
			     "critical,keyCertSign,cRLSign");
	X509 *root0 = make_ca("rules root", rk, NULL, rk, 1, "critical,CA:TRUE,pathlen:0",
			      "critical,keyCertSign,cRLSign");
	X509 *good = make_ca("rules inter", ik, root, rk, 2, "critical,CA:TRUE",
			     "critical,keyCertSign,cRLSign");
	X509 *no_certsign = make_ca("rules inter", ik, root, rk, 3, "critical,CA:TRUE",
				    "critical,digitalSignature");
	X509 *not_ca = make_ca("rules inter", ik, root, rk, 4, "critical,CA:FALSE", NULL);
	X509 *leaf = make_ca("rules leaf", lk, good, ik, 10, "critical,CA:FALSE", NULL);
	X509 *bad_alg = swap_sig_alg(leaf);
	struct {
		const char *what;
		X509 *root, *inter, *leaf;
	} cases[] = {
		{"an intermediate without keyCertSign", root, no_certsign, leaf},
		{"a CA:FALSE certificate used as an issuer", root, not_ca, leaf},
		{"a path longer than the root's pathlen allows", root0, good, leaf},
		{"a signature algorithm that is not the one signed", root, good, bad_alg},
	};

	CHECK(bad_alg != NULL);
	{
		STACK_OF(X509) *roots = sk_X509_new_null(), *untrusted = sk_X509_new_null();

		sk_X509_push(roots, root);
		sk_X509_push(untrusted, good);
		CHECK_EQ_INT(cl_x509_verify(leaf, untrusted, roots, NULL, 0, NULL), CL_OK);
		CHECK(openssl_accepts(leaf, untrusted, root));
		sk_X509_free(roots);
		sk_X509_free(untrusted);
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]) && bad_alg; i++) {
		STACK_OF(X509) *roots = sk_X509_new_null(), *untrusted = sk_X509_new_null();
		int rc = 0;

		sk_X509_push(roots, cases[i].root);
		sk_X509_push(untrusted, cases[i].inter);
		for (int bypass = 0; bypass < 2; bypass++) {
			cl_cache_bypass(bypass);
			rc = cl_x509_verify(cases[i].leaf, untrusted, roots, NULL, 0, NULL);
			if (rc != CL_ERR_CHAIN)
				fprintf(stderr, "    accepted %s (cache %s)\n", cases[i].what,
					bypass ? "bypassed" : "used");
			CHECK_EQ_INT(rc, CL_ERR_CHAIN);
		}
		cl_cache_bypass(0);
		CHECK(!openssl_accepts(cases[i].leaf, untrusted, cases[i].root));
		sk_X509_free(roots);
		sk_X509_free(untrusted);
	}
	X509_free(bad_alg);
	X509_free(leaf);
	X509_free(not_ca);
	X509_free(no_certsign);
	X509_free(good);
	X509_free(root0);
	X509_free(root);
	EVP_PKEY_free(lk);
	EVP_PKEY_free(ik);
	EVP_PKEY_free(rk);
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
	RUN(test_revocation);
	RUN(test_chain_builder_rules);
	RUN(test_pinned_roots);
	return test_done("crypto_test");
}
