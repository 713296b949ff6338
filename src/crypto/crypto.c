#define _DEFAULT_SOURCE /* timegm */
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "cloister/crypto.h"
#include "cloister/memo.h"

size_t cl_hash_len(enum cl_hash h)
{
	switch (h) {
	case CL_SHA256:
		return 32;
	case CL_SHA384:
		return 48;
	case CL_SHA512:
		return 64;
	default:
		return 0;
	}
}

const EVP_MD *cl_hash_md(enum cl_hash h)
{
	switch (h) {
	case CL_SHA256:
		return EVP_sha256();
	case CL_SHA384:
		return EVP_sha384();
	case CL_SHA512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

int cl_digest(enum cl_hash h, const void *data, size_t n, uint8_t *out)
{
	const EVP_MD *md = cl_hash_md(h);

	CL_ENSURE(md != NULL, CL_ERR_ARG);
	CL_GUARD_OSSL(EVP_Digest(data, n, out, NULL, md, NULL), CL_ERR_CRYPTO);
	return CL_OK;
}

int cl_hkdf_sha384(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
		   const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[5];
	int n = 0, rc = CL_OK;

	CL_CHECK(ctx, CL_ERR_CRYPTO, "HKDF is not available");
	CL_CHECK(ikm_len > 0, CL_ERR_ARG, "HKDF needs key material");
	params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA384", 0);
	params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
	if (salt)
		params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt,
								salt_len);
	params[n++] =
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
	params[n] = OSSL_PARAM_construct_end();
	CL_CHECK(EVP_KDF_derive(ctx, out, out_len, params) == 1, CL_ERR_CRYPTO, "HKDF failed");
out:
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	ERR_clear_error();
	return rc;
}

void cl_reverse(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n / 2; i++) {
		uint8_t t = p[i];

		p[i] = p[n - 1 - i];
		p[n - 1 - i] = t;
	}
}

int cl_ecdsa_raw_to_der(const uint8_t *rs, size_t n, uint8_t **der, size_t *dlen)
{
	ECDSA_SIG *sig = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	int len = -1;

	*der = NULL;
	*dlen = 0;
	CL_ENSURE_MSG(n > 0 && n <= 66, CL_ERR_ARG, "ECDSA signature component of %zu bytes", n);
	sig = ECDSA_SIG_new();
	br = BN_bin2bn(rs, (int)n, NULL);
	bs = BN_bin2bn(rs + n, (int)n, NULL);
	if (!sig || !br || !bs || ECDSA_SIG_set0(sig, br, bs) != 1) {
		BN_free(br);
		BN_free(bs);
		ECDSA_SIG_free(sig);
		return cl_fail(CL_ERR_NOMEM, "out of memory");
	}
	len = i2d_ECDSA_SIG(sig, der);
	ECDSA_SIG_free(sig);
	CL_ENSURE_MSG(len > 0, CL_ERR_SIGNATURE, "malformed ECDSA signature");
	*dlen = (size_t)len;
	return CL_OK;
}

int cl_ecdsa_der_to_raw(const uint8_t *der, size_t dlen, uint8_t *rs, size_t n)
{
	const uint8_t *p = der;
	ECDSA_SIG *sig = NULL;
	const BIGNUM *r = NULL, *s = NULL;
	int ok = 0;

	CL_ENSURE_MSG(dlen > 0 && dlen <= 160 && n > 0 && n <= 66, CL_ERR_ARG,
		      "bad ECDSA signature sizes");
	sig = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
	if (sig && p == der + dlen) {
		ECDSA_SIG_get0(sig, &r, &s);
		ok = BN_bn2binpad(r, rs, (int)n) == (int)n &&
		     BN_bn2binpad(s, rs + n, (int)n) == (int)n;
	}
	ECDSA_SIG_free(sig);
	ERR_clear_error();
	CL_ENSURE_MSG(ok, CL_ERR_SIGNATURE, "malformed ECDSA signature");
	return CL_OK;
}

int cl_ecdsa_verify_raw(EVP_PKEY *key, enum cl_hash h, const void *msg, size_t msglen,
			const uint8_t *r, const uint8_t *s, size_t n)
{
	uint8_t dgst[CL_MAX_DIGEST];

	CL_GUARD(cl_digest(h, msg, msglen, dgst));
	return cl_ecdsa_verify_digest_raw(key, dgst, cl_hash_len(h), r, s, n);
}

int cl_ecdsa_verify_digest_raw(EVP_PKEY *key, const uint8_t *dgst, size_t dlen, const uint8_t *r,
			       const uint8_t *s, size_t n)
{
	uint8_t *der = NULL, rs[132];
	size_t derlen = 0;
	int ok = 0;
	EVP_PKEY_CTX *ctx = NULL;

	if (n > 66)
		return cl_fail(CL_ERR_ARG, "signature component too large");
	memcpy(rs, r, n);
	memcpy(rs + n, s, n);
	if (cl_ecdsa_raw_to_der(rs, n, &der, &derlen) != CL_OK)
		return cl_fail(CL_ERR_SIGNATURE, "malformed ECDSA signature");
	ctx = EVP_PKEY_CTX_new(key, NULL);
	if (ctx && EVP_PKEY_verify_init(ctx) == 1)
		ok = EVP_PKEY_verify(ctx, der, derlen, dgst, dlen);
	EVP_PKEY_CTX_free(ctx);
	OPENSSL_free(der);
	ERR_clear_error();
	if (ok != 1)
		return cl_fail(CL_ERR_SIGNATURE, "ECDSA signature does not verify");
	return CL_OK;
}

int cl_verify_der(EVP_PKEY *key, enum cl_hash h, const void *msg, size_t msglen, const uint8_t *sig,
		  size_t siglen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = 0;

	if (!ctx)
		return cl_fail(CL_ERR_NOMEM, "out of memory");
	if (EVP_DigestVerifyInit(ctx, NULL, cl_hash_md(h), NULL, key) == 1)
		ok = EVP_DigestVerify(ctx, sig, siglen, msg, msglen);
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	if (ok != 1)
		return cl_fail(CL_ERR_SIGNATURE, "signature does not verify");
	return CL_OK;
}

int cl_ec_key_from_xy(const char *curve, const uint8_t *x, const uint8_t *y, size_t n,
		      EVP_PKEY **out)
{
	uint8_t pt[1 + 2 * 66];
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	int rc = CL_OK;

	if (n > 66)
		return cl_fail(CL_ERR_ARG, "EC coordinate too large");
	pt[0] = 0x04;
	memcpy(pt + 1, x, n);
	memcpy(pt + 1 + n, y, n);
	bld = OSSL_PARAM_BLD_new();
	CL_CHECK(bld != NULL, CL_ERR_NOMEM, "out of memory");
	CL_CHECK(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curve, 0) == 1 &&
			 OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt,
							  1 + 2 * n) == 1,
		 CL_ERR_CRYPTO, "cannot build EC key parameters");
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	CL_CHECK(params && ctx && EVP_PKEY_fromdata_init(ctx) == 1, CL_ERR_CRYPTO,
		 "cannot create EC key");
	CL_CHECK(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1, CL_ERR_MALFORMED,
		 "invalid EC public key");
	/*
	 * fromdata does not promise that the point is on the curve. The quick
	 * check (on the curve, not at infinity) is complete for the prime-order
	 * curves used here (cofactor 1); the full check adds a scalar
	 * multiplication by the order, as costly as the signature check itself.
	 */
	EVP_PKEY_CTX_free(ctx);
	ctx = EVP_PKEY_CTX_new(pkey, NULL);
	CL_CHECK(ctx && EVP_PKEY_public_check_quick(ctx) == 1, CL_ERR_MALFORMED,
		 "EC public key is not on the curve");
	*out = pkey;
	pkey = NULL;
out:
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	ERR_clear_error();
	return rc;
}

/*
 * Decoded certificates, by SHA-256 of their DER. OpenSSL 3 spends more on
 * decoding a certificate (its provider-based key decoder) than on checking a
 * signature, and the same vendor certificates arrive with every piece of
 * evidence. Only decoding is cached: an X509 object records no verification
 * outcome, so every chain, signature and time check still runs.
 */
static int x509_ref(void *value, void *out)
{
	if (X509_up_ref(value) != 1)
		return 0;
	*(X509 **)out = value;
	return 1;
}

static void x509_drop(void *value)
{
	X509_free(value);
}

static struct cl_memo decoded = CL_MEMO_INIT("x509", 64, CL_MEMO_DECODED, x509_ref, x509_drop);

int cl_x509_from_der(const uint8_t *der, size_t n, X509 **out)
{
	const unsigned char *p = der;
	X509 *x = NULL;
	struct cl_memo_key k;

	if (n > CL_MAX_CERT_DER || n > LONG_MAX)
		return cl_fail(CL_ERR_MALFORMED, "certificate larger than %d bytes",
			       CL_MAX_CERT_DER);
	CL_GUARD(cl_memo_key(&k, "x509 der", der, n));
	if (cl_memo_get(&decoded, &k, 0, out))
		return CL_OK;
	x = d2i_X509(NULL, &p, (long)n);
	ERR_clear_error();
	if (!x || p != der + n) {
		X509_free(x);
		return cl_fail(CL_ERR_MALFORMED, "not a DER certificate");
	}
	if (X509_up_ref(x) == 1)
		cl_memo_put(&decoded, &k, x, CL_MEMO_ALWAYS_FROM, CL_MEMO_ALWAYS_UNTIL);
	*out = x;
	return CL_OK;
}

static int looks_pem(const uint8_t *p, size_t n)
{
	static const char tag[] = "-----BEGIN";

	for (size_t i = 0; i + sizeof(tag) - 1 <= n && i < 4096; i++)
		if (memcmp(p + i, tag, sizeof(tag) - 1) == 0)
			return 1;
	return 0;
}

int cl_x509_from_any(const uint8_t *p, size_t n, X509 **out)
{
	STACK_OF(X509) *sk = NULL;

	if (!looks_pem(p, n))
		return cl_x509_from_der(p, n, out);
	CL_GUARD(cl_x509_chain_from_pem(p, n, &sk));
	*out = sk_X509_shift(sk);
	sk_X509_pop_free(sk, X509_free);
	return CL_OK;
}

/*
 * Decoded PEM chains by SHA-256 of the text, for the same reason as single
 * certificates: vendor chains arrive unchanged with every piece of evidence
 * and collateral, and base64 plus DER decoding of each costs more than the
 * hash. Callers get their own stack of references.
 */
static STACK_OF(X509) * refs_of(STACK_OF(X509) * sk)
{
	STACK_OF(X509) *copy = sk_X509_new_null();

	for (int i = 0; copy && i < sk_X509_num(sk); i++) {
		X509 *x = sk_X509_value(sk, i);

		if (X509_up_ref(x) != 1 || sk_X509_push(copy, x) <= 0) {
			sk_X509_pop_free(copy, X509_free);
			return NULL;
		}
	}
	return copy;
}

static int chain_ref(void *value, void *out)
{
	STACK_OF(X509) *copy = refs_of(value);

	*(STACK_OF(X509) **)out = copy;
	return copy != NULL;
}

static void chain_drop(void *value)
{
	sk_X509_pop_free(value, X509_free);
}

static struct cl_memo pem_chains =
	CL_MEMO_INIT("pem chain", 16, CL_MEMO_DECODED, chain_ref, chain_drop);

static int chain_from_pem(const uint8_t *p, size_t n, STACK_OF(X509) * *out);

int cl_x509_chain_from_pem(const uint8_t *p, size_t n, STACK_OF(X509) * *out)
{
	struct cl_memo_key k;
	STACK_OF(X509) *sk = NULL, *mine = NULL;

	CL_ENSURE_MSG(n <= CL_MAX_PEM_CHAIN && n <= INT32_MAX, CL_ERR_MALFORMED,
		      "certificate chain larger than %d bytes", CL_MAX_PEM_CHAIN);
	CL_GUARD(cl_memo_key(&k, "x509 pem chain", p, n));
	if (cl_memo_get(&pem_chains, &k, 0, out))
		return CL_OK;
	CL_GUARD(chain_from_pem(p, n, &sk));
	mine = refs_of(sk);
	if (mine)
		cl_memo_put(&pem_chains, &k, mine, CL_MEMO_ALWAYS_FROM, CL_MEMO_ALWAYS_UNTIL);
	*out = sk;
	return CL_OK;
}

static int chain_from_pem(const uint8_t *p, size_t n, STACK_OF(X509) * *out)
{
	BIO *bio = NULL;
	STACK_OF(X509) *sk = NULL;
	X509 *x = NULL;
	int rc = CL_OK;

	CL_ENSURE_MSG(n <= CL_MAX_PEM_CHAIN && n <= INT32_MAX, CL_ERR_MALFORMED,
		      "certificate chain larger than %d bytes", CL_MAX_PEM_CHAIN);
	bio = BIO_new_mem_buf(p, (int)n);
	sk = sk_X509_new_null();
	CL_CHECK(bio && sk, CL_ERR_NOMEM, "out of memory");
	for (;;) {
		char *name = NULL, *header = NULL;
		unsigned char *der = NULL;
		long dlen = 0;
		int ok = PEM_read_bio(bio, &name, &header, &der, &dlen);

		/* Other block types are skipped, as PEM_read_bio_X509 would. */
		if (ok == 1 && strcmp(name, PEM_STRING_X509) == 0 && dlen > 0) {
			rc = cl_x509_from_der(der, (size_t)dlen, &x);
			if (rc < 0)
				rc = cl_fail(CL_ERR_MALFORMED, "a PEM certificate does not parse");
		}
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(der);
		if (ok != 1 || rc < 0)
			break;
		if (!x)
			continue;
		CL_CHECK(sk_X509_num(sk) < CL_MAX_CERT_CHAIN, CL_ERR_MALFORMED,
			 "more than %d certificates in chain", CL_MAX_CERT_CHAIN);
		CL_CHECK(sk_X509_push(sk, x) > 0, CL_ERR_NOMEM, "out of memory");
		x = NULL;
	}
	if (rc < 0)
		goto out;
	CL_CHECK(sk_X509_num(sk) > 0, CL_ERR_MALFORMED, "no PEM certificate found");
	*out = sk;
	sk = NULL;
out:
	X509_free(x);
	sk_X509_pop_free(sk, X509_free);
	BIO_free(bio);
	ERR_clear_error();
	return rc;
}

int cl_crl_from_any(const uint8_t *p, size_t n, X509_CRL **out)
{
	X509_CRL *crl = NULL;

	if (n > INT32_MAX)
		return cl_fail(CL_ERR_MALFORMED, "CRL too large");
	if (looks_pem(p, n)) {
		BIO *bio = BIO_new_mem_buf(p, (int)n);

		if (bio)
			crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
		BIO_free(bio);
	} else {
		const unsigned char *q = p;

		crl = d2i_X509_CRL(NULL, &q, (long)n);
		if (crl && q != p + n) {
			X509_CRL_free(crl);
			crl = NULL;
		}
	}
	ERR_clear_error();
	if (!crl)
		return cl_fail(CL_ERR_MALFORMED, "not a CRL");
	*out = crl;
	return CL_OK;
}

/*
 * Signatures already checked: SHA-256 of the signed object (a certificate or
 * a CRL, whose DER encodings cannot collide) and of its issuer certificate,
 * in a cache bound to the bypass epoch. The verdict of a signature over fixed bytes by a fixed
 * key never changes, so a hit skips only the public-key operation; times,
 * names and revocation are still checked on every use.
 */
static struct cl_memo verdicts = CL_MEMO_INIT("signature", 64, CL_MEMO_VERIFIED, NULL, NULL);

static int sig_key(const uint8_t digests[64], struct cl_memo_key *k)
{
	return cl_memo_key(k, "signature verdict", digests, 64);
}

static int sig_cached(const struct cl_memo_key *k)
{
	return cl_memo_get(&verdicts, k, 0, NULL);
}

static void sig_store(const struct cl_memo_key *k)
{
	cl_memo_put(&verdicts, k, NULL, CL_MEMO_ALWAYS_FROM, CL_MEMO_ALWAYS_UNTIL);
}

int cl_asn1_time_epoch(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return cl_fail(CL_ERR_MALFORMED, "invalid time in certificate or CRL");
	*out = (int64_t)timegm(&tm);
	return CL_OK;
}

int cl_crl_check(X509_CRL *crl, X509 *issuer, int64_t at)
{
	uint8_t key[64];
	struct cl_memo_key k;
	unsigned int n1 = 0, n2 = 0;
	int64_t from = 0, until = 0;
	EVP_PKEY *ikey = X509_get0_pubkey(issuer);
	char who[128] = "";

	X509_NAME_oneline(X509_CRL_get_issuer(crl), who, sizeof(who));
	CL_ENSURE_MSG(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) == 0,
		      CL_ERR_CHAIN, "CRL of %s is not from the certificate's issuer", who);
	CL_ENSURE_MSG(ikey != NULL, CL_ERR_CHAIN, "CRL issuer has no usable key");
	CL_GUARD_OSSL(X509_CRL_digest(crl, EVP_sha256(), key, &n1), CL_ERR_CRYPTO);
	CL_GUARD_OSSL(X509_digest(issuer, EVP_sha256(), key + 32, &n2), CL_ERR_CRYPTO);
	CL_GUARD(sig_key(key, &k));
	if (!sig_cached(&k)) {
		int ok = X509_CRL_verify(crl, ikey);

		ERR_clear_error();
		CL_ENSURE_MSG(ok == 1, CL_ERR_SIGNATURE, "CRL of %s: signature does not verify",
			      who);
		sig_store(&k);
	}
	CL_ENSURE_MSG(X509_CRL_get0_nextUpdate(crl) != NULL, CL_ERR_CHAIN,
		      "CRL of %s has no nextUpdate", who);
	CL_GUARD(cl_asn1_time_epoch(X509_CRL_get0_lastUpdate(crl), &from));
	CL_GUARD(cl_asn1_time_epoch(X509_CRL_get0_nextUpdate(crl), &until));
	if (at == 0)
		at = (int64_t)time(NULL);
	CL_ENSURE_MSG(at >= from && at <= until, CL_ERR_EXPIRED,
		      "CRL of %s is not valid at that time", who);
	return CL_OK;
}

/* Is cert's signature by issuer's key good? Through the signature cache. */
static int cert_sig_ok(X509 *cert, X509 *issuer)
{
	uint8_t key[64];
	struct cl_memo_key k;
	unsigned int n1 = 0, n2 = 0;
	EVP_PKEY *ikey = X509_get0_pubkey(issuer);
	int ok = 0;

	if (!ikey || X509_digest(cert, EVP_sha256(), key, &n1) != 1 ||
	    X509_digest(issuer, EVP_sha256(), key + 32, &n2) != 1 || sig_key(key, &k) != CL_OK)
		return 0;
	if (sig_cached(&k))
		return 1;
	ok = X509_verify(cert, ikey) == 1;
	ERR_clear_error();
	if (ok)
		sig_store(&k);
	return ok;
}

static int chain_fail(X509_STORE_CTX *ctx, int err, int depth, X509 *cert)
{
	X509_STORE_CTX_verify_cb cb = X509_STORE_CTX_get_verify_cb(ctx);

	X509_STORE_CTX_set_error(ctx, err);
	X509_STORE_CTX_set_error_depth(ctx, depth);
	X509_STORE_CTX_set_current_cert(ctx, cert);
	return cb ? cb(0, ctx) : 0;
}

/*
 * The signature and validity-time pass of chain verification, in place of
 * OpenSSL's own (X509_STORE_set_verify): the same checks, but each signature
 * goes through the signature cache, so an intermediate that appears in
 * several chains of one verification (Intel's PCK Platform CA signs the PCK
 * certificate and the PCK CRL) is checked once. As in OpenSSL's default, the
 * trust anchor's self-signature is not checked: it is pinned.
 */
static int verify_chain_sigs(X509_STORE_CTX *ctx)
{
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
	X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(ctx);
	time_t t = X509_VERIFY_PARAM_get_time(vp);
	time_t *when = (X509_VERIFY_PARAM_get_flags(vp) & X509_V_FLAG_USE_CHECK_TIME) ? &t : NULL;
	int n = sk_X509_num(chain);

	for (int i = n - 1; i >= 0; i--) {
		X509 *x = sk_X509_value(chain, i);
		int c = 0;

		if (i + 1 < n && !cert_sig_ok(x, sk_X509_value(chain, i + 1)) &&
		    !chain_fail(ctx, X509_V_ERR_CERT_SIGNATURE_FAILURE, i, x))
			return 0;
		c = X509_cmp_time(X509_get0_notBefore(x), when);
		if (c == 0 && !chain_fail(ctx, X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD, i, x))
			return 0;
		if (c > 0 && !chain_fail(ctx, X509_V_ERR_CERT_NOT_YET_VALID, i, x))
			return 0;
		c = X509_cmp_time(X509_get0_notAfter(x), when);
		if (c == 0 && !chain_fail(ctx, X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD, i, x))
			return 0;
		if (c < 0 && !chain_fail(ctx, X509_V_ERR_CERT_HAS_EXPIRED, i, x))
			return 0;
	}
	return 1;
}

/*
 * Revocation by hand rather than X509_V_FLAG_CRL_CHECK_ALL: OpenSSL checks a
 * CRL's signature again for every chain it appears in, and one DCAP
 * verification builds four chains under the same root CRL. Here each
 * certificate below the root needs a CRL from its own issuer that passes
 * cl_crl_check() and does not list it.
 */
static int check_revocation(STACK_OF(X509) * chain, STACK_OF(X509_CRL) * crls, int64_t at)
{
	for (int i = 0; i + 1 < sk_X509_num(chain); i++) {
		X509 *cert = sk_X509_value(chain, i), *issuer = sk_X509_value(chain, i + 1);
		X509_CRL *crl = NULL;
		X509_REVOKED *rev = NULL;

		for (int j = 0; j < sk_X509_CRL_num(crls) && !crl; j++)
			if (X509_NAME_cmp(X509_CRL_get_issuer(sk_X509_CRL_value(crls, j)),
					  X509_get_subject_name(issuer)) == 0)
				crl = sk_X509_CRL_value(crls, j);
		CL_ENSURE_MSG(crl != NULL, CL_ERR_CHAIN,
			      "certificate chain: no CRL from the issuer at depth %d", i + 1);
		CL_GUARD(cl_crl_check(crl, issuer, at));
		if (X509_CRL_get0_by_cert(crl, &rev, cert) == 1)
			return cl_fail(CL_ERR_REVOKED,
				       "certificate chain: certificate revoked (depth %d)", i);
	}
	return CL_OK;
}

int cl_x509_verify(X509 *leaf, STACK_OF(X509) * untrusted, STACK_OF(X509) * roots,
		   STACK_OF(X509_CRL) * crls, int64_t at, int *depth)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_VERIFY_PARAM *vp = NULL;
	int rc = CL_OK, ok = 0, err = 0;
	/*
	 * Not X509_V_FLAG_X509_STRICT: vendor certificates (AMD VCEKs, Intel PCK
	 * chains) lack Authority Key Identifiers, which strict mode demands.
	 */
	unsigned long flags = 0;

	CL_CHECK(store && ctx, CL_ERR_NOMEM, "out of memory");
	X509_STORE_set_verify(store, verify_chain_sigs);
	for (int i = 0; i < sk_X509_num(roots); i++)
		CL_CHECK(X509_STORE_add_cert(store, sk_X509_value(roots, i)) == 1, CL_ERR_CRYPTO,
			 "cannot add trust anchor");
	CL_CHECK(X509_STORE_CTX_init(ctx, store, leaf, untrusted) == 1, CL_ERR_CRYPTO,
		 "cannot initialise chain verification");
	vp = X509_STORE_CTX_get0_param(ctx);
	if (at)
		X509_VERIFY_PARAM_set_time(vp, (time_t)at);
	X509_VERIFY_PARAM_set_flags(vp, flags);
	/* Only the pinned roots are trust anchors; never the system store. */
	X509_VERIFY_PARAM_set_trust(vp, X509_TRUST_DEFAULT);
	ok = X509_verify_cert(ctx);
	if (ok != 1) {
		err = X509_STORE_CTX_get_error(ctx);
		switch (err) {
		case X509_V_ERR_CERT_HAS_EXPIRED:
		case X509_V_ERR_CERT_NOT_YET_VALID:
			rc = cl_fail(CL_ERR_EXPIRED, "certificate chain: %s (depth %d)",
				     X509_verify_cert_error_string(err),
				     X509_STORE_CTX_get_error_depth(ctx));
			break;
		default:
			rc = cl_fail(CL_ERR_CHAIN, "certificate chain: %s (depth %d)",
				     X509_verify_cert_error_string(err),
				     X509_STORE_CTX_get_error_depth(ctx));
			break;
		}
		goto out;
	}
	if (crls)
		CL_TRY(check_revocation(X509_STORE_CTX_get0_chain(ctx), crls, at));
	if (depth)
		*depth = sk_X509_num(X509_STORE_CTX_get0_chain(ctx));
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	ERR_clear_error();
	return rc;
}

int cl_x509_ext_by_oid(X509 *cert, const char *oid, const uint8_t **val, size_t *len)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	int idx = -1;
	X509_EXTENSION *ext = NULL;
	ASN1_OCTET_STRING *os = NULL;

	if (!obj)
		return cl_fail(CL_ERR_ARG, "bad OID %s", oid);
	idx = X509_get_ext_by_OBJ(cert, obj, -1);
	ASN1_OBJECT_free(obj);
	if (idx < 0)
		return cl_fail(CL_ERR_NOT_FOUND, "certificate has no extension %s", oid);
	ext = X509_get_ext(cert, idx);
	os = X509_EXTENSION_get_data(ext);
	*val = ASN1_STRING_get0_data(os);
	*len = (size_t)ASN1_STRING_length(os);
	return CL_OK;
}

int cl_secure_heap_init(size_t size, int *locked)
{
	uint8_t warm = 0;
	int rc = 0;

	if (locked)
		*locked = 1;
	if (CRYPTO_secure_malloc_initialized())
		return CL_OK;
	/*
	 * This thread's random generators are created first, outside the heap:
	 * created after, OpenSSL keeps parts of them there unfreed at exit,
	 * where leak checkers cannot follow pointers and report them lost.
	 */
	(void)RAND_priv_bytes(&warm, 1);
	(void)RAND_bytes(&warm, 1);
	rc = CRYPTO_secure_malloc_init(size, 16);
	ERR_clear_error();
	CL_ENSURE_MSG(rc != 0, CL_ERR_CRYPTO, "cannot set up the OpenSSL secure heap");
	if (locked)
		*locked = rc == 1;
	return CL_OK;
}
