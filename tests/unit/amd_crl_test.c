/*
 * AMD CRL checks. No real AMD CRL is among the recorded vectors, so the
 * negative and positive cases use a throwaway ARK/ASK pair made here with
 * the same shape as AMD's (RSA-PSS SHA-384 signatures): a listed ASK, one
 * not listed, a CRL signed by another key under the ARK's name, another
 * issuer, a stale CRL, truncations and flipped bytes. Against the pinned
 * Milan ARK, a CRL not signed by it is refused.
 */
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "cloister/amd.h"
#include "cloister/crypto.h"
#include "test.h"

static int pss_sign(EVP_MD_CTX **c, EVP_PKEY *key)
{
	EVP_PKEY_CTX *pc = NULL;

	*c = EVP_MD_CTX_new();
	return *c && EVP_DigestSignInit(*c, &pc, EVP_sha384(), NULL, key) == 1 &&
	       EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1 &&
	       EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, 48) == 1;
}

static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, long serial)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext = NULL;
	EVP_MD_CTX *c = NULL;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509_time_adj_ex(X509_getm_notBefore(x), -1, 0, NULL);
	X509_time_adj_ex(X509_getm_notAfter(x), 30, 0, NULL);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (pss_sign(&c, ikey))
		X509_sign_ctx(x, c);
	EVP_MD_CTX_free(c);
	X509_NAME_free(name);
	return x;
}

/* A CRL over `issuer`'s name signed by `key`, valid days_from..days_to, listing serial (or 0). */
static void make_crl(X509 *issuer, EVP_PKEY *key, long serial, int days_from, int days_to,
		     struct cl_buf *out)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	EVP_MD_CTX *c = NULL;
	unsigned char *der = NULL;
	int n = 0;

	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer));
	X509_time_adj_ex(t, days_from, 0, NULL);
	X509_CRL_set1_lastUpdate(crl, t);
	X509_time_adj_ex(t, days_to, 0, NULL);
	X509_CRL_set1_nextUpdate(crl, t);
	if (serial) {
		X509_REVOKED *r = X509_REVOKED_new();
		ASN1_INTEGER *sn = ASN1_INTEGER_new();

		ASN1_INTEGER_set(sn, serial);
		X509_REVOKED_set_serialNumber(r, sn);
		X509_time_adj_ex(t, -1, 0, NULL);
		X509_REVOKED_set_revocationDate(r, t);
		X509_CRL_add0_revoked(crl, r);
		ASN1_INTEGER_free(sn);
	}
	X509_CRL_sort(crl);
	if (pss_sign(&c, key))
		X509_CRL_sign_ctx(crl, c);
	n = i2d_X509_CRL(crl, &der);
	memset(out, 0, sizeof(*out));
	if (n > 0 && cl_buf_append(out, der, (size_t)n) != CL_OK)
		n = 0;
	OPENSSL_free(der);
	EVP_MD_CTX_free(c);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
}

static void test_urls(void)
{
	char s[256];

	CHECK_EQ_INT(cl_amd_kds_crl_url(NULL, CL_AMD_MILAN, 0, s, sizeof(s)), CL_OK);
	CHECK_STR(s, "https://kdsintf.amd.com/vcek/v1/Milan/crl");
	CHECK_EQ_INT(cl_amd_kds_crl_url("http://127.0.0.1:9/", CL_AMD_TURIN, 1, s, sizeof(s)),
		     CL_OK);
	CHECK_STR(s, "http://127.0.0.1:9/vlek/v1/Turin/crl");
	CHECK_EQ_INT(cl_amd_crl_cache_name(CL_AMD_GENOA, 0, s, sizeof(s)), CL_OK);
	CHECK_STR(s, "crl-vcek-Genoa.der");
	CHECK(cl_amd_kds_crl_url(NULL, CL_AMD_MILAN, 0, s, 10) != CL_OK);
	CHECK(cl_amd_crl_cache_name((enum cl_amd_product)99, 0, s, sizeof(s)) != CL_OK);
}

static void test_throwaway_chain(void)
{
	EVP_PKEY *ark_key = EVP_RSA_gen(2048), *ask_key = EVP_RSA_gen(2048);
	EVP_PKEY *other_key = EVP_RSA_gen(2048);
	X509 *ark = make_cert("ARK-Test", ark_key, NULL, ark_key, 1);
	X509 *ask = make_cert("SEV-Test", ask_key, ark, ark_key, 77);
	X509 *other_ask = make_cert("SEV-Test", ask_key, ark, ark_key, 78);
	struct cl_buf good = {0}, listed = {0}, forged = {0}, stale = {0}, wrong_issuer = {0};
	int64_t now = (int64_t)time(NULL);
	int accepted = 0;

	make_crl(ark, ark_key, 0, -1, 7, &good);
	make_crl(ark, ark_key, 77, -1, 7, &listed);
	make_crl(ark, other_key, 77, -1, 7, &forged);
	make_crl(ark, ark_key, 0, -20, -10, &stale);
	make_crl(ask, ark_key, 0, -1, 7, &wrong_issuer);
	CHECK(good.len > 0 && listed.len > 0);

	CHECK_EQ_INT(cl_amd_crl_check(good.data, good.len, ark, ask, now), CL_OK);
	CHECK_EQ_INT(cl_amd_crl_check(listed.data, listed.len, ark, ask, now), CL_ERR_REVOKED);
	CHECK(strstr(cl_error_detail(), "SEV-Test") != NULL);
	/* Another intermediate, not on the list. */
	CHECK_EQ_INT(cl_amd_crl_check(listed.data, listed.len, ark, other_ask, now), CL_OK);
	/* The ARK's name but not its signature: cached verdicts must not help it. */
	CHECK_EQ_INT(cl_amd_crl_check(forged.data, forged.len, ark, ask, now), CL_ERR_SIGNATURE);
	CHECK_EQ_INT(cl_amd_crl_check(stale.data, stale.len, ark, ask, now), CL_ERR_EXPIRED);
	CHECK_EQ_INT(cl_amd_crl_check(good.data, good.len, ark, ask, now + 30 * 86400),
		     CL_ERR_EXPIRED);
	CHECK_EQ_INT(cl_amd_crl_check(wrong_issuer.data, wrong_issuer.len, ark, ask, now),
		     CL_ERR_CHAIN);
	CHECK_EQ_INT(cl_amd_crl_check((const uint8_t *)"nonsense", 8, ark, ask, now),
		     CL_ERR_MALFORMED);
	CHECK_EQ_INT(cl_amd_crl_check(good.data, 0, ark, ask, now), CL_ERR_MALFORMED);
	CHECK(cl_amd_crl_check(good.data, good.len, NULL, ask, now) != CL_OK);
	/* Every truncation is refused; so is every flipped byte of the revocation list. */
	for (size_t i = 1; i < listed.len; i++)
		if (cl_amd_crl_check(listed.data, i, ark, ask, now) == CL_OK)
			accepted++;
	for (size_t i = 0; i < listed.len; i++) {
		listed.data[i] ^= 0x01;
		if (cl_amd_crl_check(listed.data, listed.len, ark, ask, now) == CL_OK)
			accepted++;
		listed.data[i] ^= 0x01;
	}
	CHECK_EQ_INT(accepted, 0);
	cl_buf_free(&good);
	cl_buf_free(&listed);
	cl_buf_free(&forged);
	cl_buf_free(&stale);
	cl_buf_free(&wrong_issuer);
	X509_free(other_ask);
	X509_free(ask);
	X509_free(ark);
	EVP_PKEY_free(other_key);
	EVP_PKEY_free(ask_key);
	EVP_PKEY_free(ark_key);
}

/* With the pinned Milan ARK: a CRL under its name but not its key is refused. */
static void test_pinned_ark(void)
{
	EVP_PKEY *k = EVP_RSA_gen(2048);
	X509 *ark = cl_amd_ark(CL_AMD_MILAN), *ask = cl_amd_ask(CL_AMD_MILAN);
	struct cl_buf crl = {0};

	CHECK(ark != NULL && ask != NULL);
	if (!ark || !ask)
		return;
	make_crl(ark, k, 0, -1, 7, &crl);
	CHECK_EQ_INT(cl_amd_crl_check(crl.data, crl.len, ark, ask, 0), CL_ERR_SIGNATURE);
	cl_buf_free(&crl);
	EVP_PKEY_free(k);
}

int main(void)
{
	cl_log_set_level(CL_LOG_ERROR);
	RUN(test_urls);
	RUN(test_throwaway_chain);
	RUN(test_pinned_ark);
	return test_done("amd_crl_test");
}
