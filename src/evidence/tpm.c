/*
 * TPM 2.0 quotes: the TPMS_ATTEST a TPM signs with an attestation key (AK),
 * the PCR values it commits to, and the event log that explains them.
 *
 * Order of trust: the AK is trusted only because the caller pinned it or an
 * AK certificate chains to given roots; the quote only once its signature
 * verifies with that AK; PCR values only once they hash to the quote's
 * pcrDigest; events only once their replay gives those PCR values. Claims
 * are built from each layer as it is established.
 *
 * TPM structures are unmarshalled by libtss2-mu, which bounds every field by
 * the TPM2B/TPML maxima; we add the checks the spec makes on values.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include "cloister/crypto.h"
#include "cloister/memo.h"
#include "cloister/tpm.h"
#include "format.h"
#include "internal.h"

/* Selected PCR indices of one bank as a bitmask; checks the selection's shape. */
static int selection_mask(const TPMS_PCR_SELECTION *s, uint32_t *mask)
{
	*mask = 0;
	CL_ENSURE_MSG(s->sizeofSelect <= 3, CL_ERR_MALFORMED,
		      "PCR selection of %u bytes (at most 24 PCRs)", s->sizeofSelect);
	for (unsigned i = 0; i < s->sizeofSelect; i++)
		*mask |= (uint32_t)s->pcrSelect[i] << (8 * i);
	return CL_OK;
}

int cl_tpm_pcr_digest(const TPML_PCR_SELECTION *sel, const struct cl_tpm_pcrs *values, uint16_t alg,
		      uint8_t *out, size_t *outlen)
{
	const char *name = cl_tpm_alg_name(alg);
	EVP_MD *md = NULL;
	EVP_MD_CTX *ctx = NULL;
	unsigned len = 0;
	int rc = CL_OK;

	CL_CHECK(name && alg != CL_TPM_ALG_SM3_256, CL_ERR_UNSUPPORTED,
		 "PCR digest hash 0x%04x not supported", alg);
	md = EVP_MD_fetch(NULL,
			  alg == CL_TPM_ALG_SHA1     ? "SHA1"
			  : alg == CL_TPM_ALG_SHA256 ? "SHA256"
			  : alg == CL_TPM_ALG_SHA384 ? "SHA384"
						     : "SHA512",
			  NULL);
	ctx = EVP_MD_CTX_new();
	CL_CHECK(md && ctx && EVP_DigestInit_ex(ctx, md, NULL) == 1, CL_ERR_CRYPTO,
		 "digest init failed");
	CL_CHECK(sel->count <= TPM2_NUM_PCR_BANKS, CL_ERR_MALFORMED, "too many PCR banks selected");
	for (unsigned b = 0; b < sel->count; b++) {
		const TPMS_PCR_SELECTION *s = &sel->pcrSelections[b];
		uint32_t mask = 0;

		CL_TRY(selection_mask(s, &mask));
		for (unsigned i = 0; i < CL_TPM_NUM_PCRS; i++) {
			const uint8_t *v = NULL;

			if (!(mask & (1u << i)))
				continue;
			v = cl_tpm_pcrs_get(values, s->hash, i);
			CL_CHECK(v, CL_ERR_MALFORMED,
				 "PCR %s:%u is quoted but its value is not given",
				 cl_tpm_alg_name(s->hash) ? cl_tpm_alg_name(s->hash) : "?", i);
			CL_CHECK(EVP_DigestUpdate(ctx, v, cl_tpm_alg_digest_len(s->hash)) == 1,
				 CL_ERR_CRYPTO, "digest failed");
		}
	}
	CL_CHECK(EVP_DigestFinal_ex(ctx, out, &len) == 1, CL_ERR_CRYPTO, "digest failed");
	*outlen = len;
out:
	EVP_MD_CTX_free(ctx);
	EVP_MD_free(md);
	return rc;
}

/* ------------------------------------------------------ TPM structures */

int cl_tpm_quote_parse(const uint8_t *p, size_t n, TPMS_ATTEST *out)
{
	size_t off = 0;

	memset(out, 0, sizeof(*out));
	CL_ENSURE_MSG(p && n > 0, CL_ERR_TRUNCATED, "empty quote");
	CL_ENSURE_MSG(n <= CL_TPM_MAX_QUOTE, CL_ERR_MALFORMED, "quote larger than %d bytes",
		      CL_TPM_MAX_QUOTE);
	CL_ENSURE_MSG(Tss2_MU_TPMS_ATTEST_Unmarshal(p, n, &off, out) == TSS2_RC_SUCCESS,
		      CL_ERR_MALFORMED, "quote is not a TPMS_ATTEST");
	CL_ENSURE_MSG(off == n, CL_ERR_MALFORMED, "quote has %zu trailing bytes", n - off);
	CL_ENSURE_MSG(out->magic == TPM2_GENERATED_VALUE, CL_ERR_MALFORMED,
		      "quote magic 0x%08x is not TPM_GENERATED_VALUE", out->magic);
	CL_ENSURE_MSG(out->type == TPM2_ST_ATTEST_QUOTE, CL_ERR_UNSUPPORTED,
		      "attestation type 0x%04x is not a quote", out->type);
	for (unsigned b = 0; b < out->attested.quote.pcrSelect.count; b++) {
		uint32_t mask = 0;

		CL_GUARD(selection_mask(&out->attested.quote.pcrSelect.pcrSelections[b], &mask));
		CL_ENSURE_MSG(
			cl_tpm_alg_digest_len(out->attested.quote.pcrSelect.pcrSelections[b].hash),
			CL_ERR_UNSUPPORTED, "quote selects unknown PCR bank 0x%04x",
			out->attested.quote.pcrSelect.pcrSelections[b].hash);
		for (unsigned c = 0; c < b; c++)
			CL_ENSURE_MSG(out->attested.quote.pcrSelect.pcrSelections[c].hash !=
					      out->attested.quote.pcrSelect.pcrSelections[b].hash,
				      CL_ERR_MALFORMED, "quote selects a PCR bank twice");
	}
	return CL_OK;
}

int cl_tpm_signature_parse(const uint8_t *p, size_t n, TPMT_SIGNATURE *out)
{
	size_t off = 0;

	memset(out, 0, sizeof(*out));
	CL_ENSURE_MSG(p && n > 0, CL_ERR_TRUNCATED, "empty signature");
	CL_ENSURE_MSG(n <= CL_TPM_MAX_SIG, CL_ERR_MALFORMED, "signature larger than %d bytes",
		      CL_TPM_MAX_SIG);
	CL_ENSURE_MSG(Tss2_MU_TPMT_SIGNATURE_Unmarshal(p, n, &off, out) == TSS2_RC_SUCCESS,
		      CL_ERR_MALFORMED, "signature is not a TPMT_SIGNATURE");
	CL_ENSURE_MSG(off == n, CL_ERR_MALFORMED, "signature has %zu trailing bytes", n - off);
	return CL_OK;
}

/* ------------------------------------------------------------ the AK */

static int rsa_from_public(const TPMT_PUBLIC *pub, EVP_PKEY **out)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	BIGNUM *n = NULL, *e = NULL;
	uint32_t exp =
		pub->parameters.rsaDetail.exponent ? pub->parameters.rsaDetail.exponent : 65537;
	int rc = CL_OK;

	CL_CHECK(pub->unique.rsa.size >= 128, CL_ERR_UNSUPPORTED, "RSA AK of %u bits",
		 pub->unique.rsa.size * 8u);
	n = BN_bin2bn(pub->unique.rsa.buffer, pub->unique.rsa.size, NULL);
	e = BN_new();
	bld = OSSL_PARAM_BLD_new();
	CL_CHECK(n && e && bld && BN_set_word(e, exp) == 1, CL_ERR_NOMEM, "out of memory");
	CL_CHECK(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1 &&
			 OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) == 1 &&
			 (params = OSSL_PARAM_BLD_to_param(bld)) != NULL,
		 CL_ERR_NOMEM, "out of memory");
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	CL_CHECK(ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
			 EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) == 1,
		 CL_ERR_MALFORMED, "AK: unusable RSA public key");
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return rc;
}

static int ecc_from_public(const TPMT_PUBLIC *pub, EVP_PKEY **out)
{
	const TPMS_ECC_POINT *pt = &pub->unique.ecc;
	uint8_t x[66] = {0}, y[66] = {0};
	const char *curve = NULL;
	size_t len = 0;

	switch (pub->parameters.eccDetail.curveID) {
	case TPM2_ECC_NIST_P256:
		curve = "prime256v1";
		len = 32;
		break;
	case TPM2_ECC_NIST_P384:
		curve = "secp384r1";
		len = 48;
		break;
	case TPM2_ECC_NIST_P521:
		curve = "secp521r1";
		len = 66;
		break;
	default:
		CL_BAIL(CL_ERR_UNSUPPORTED, "AK on ECC curve 0x%04x",
			pub->parameters.eccDetail.curveID);
	}
	CL_ENSURE_MSG(pt->x.size <= len && pt->y.size <= len && pt->x.size && pt->y.size,
		      CL_ERR_MALFORMED, "AK: ECC point coordinates of %u/%u bytes", pt->x.size,
		      pt->y.size);
	memcpy(x + len - pt->x.size, pt->x.buffer, pt->x.size);
	memcpy(y + len - pt->y.size, pt->y.buffer, pt->y.size);
	return cl_ec_key_from_xy(curve, x, y, len, out);
}

static int from_tpmt_public(const TPMT_PUBLIC *pub, EVP_PKEY **out, int *restricted)
{
	if (restricted)
		*restricted = (pub->objectAttributes & TPMA_OBJECT_RESTRICTED) &&
			      (pub->objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT) &&
			      !(pub->objectAttributes & TPMA_OBJECT_DECRYPT);
	switch (pub->type) {
	case TPM2_ALG_RSA:
		return rsa_from_public(pub, out);
	case TPM2_ALG_ECC:
		return ecc_from_public(pub, out);
	default:
		CL_BAIL(CL_ERR_UNSUPPORTED, "AK of key type 0x%04x", pub->type);
	}
}

/*
 * Decoded AKs by SHA-256 of their encoding. OpenSSL 3 spends several times a
 * signature check decoding a public key, and the same AK signs every quote of
 * a machine. Only decoding is cached: the key is still checked against the
 * pin or its certificate, and every signature is verified.
 */
struct ak {
	EVP_PKEY *key;
	int restricted;
};

static int ak_ref(void *value, void *out)
{
	const struct ak *a = value;

	if (EVP_PKEY_up_ref(a->key) != 1)
		return 0;
	*(struct ak *)out = *a;
	return 1;
}

static void ak_drop(void *value)
{
	struct ak *a = value;

	EVP_PKEY_free(a->key);
	free(a);
}

static struct cl_memo aks = CL_MEMO_INIT("tpm ak", 16, CL_MEMO_DECODED, ak_ref, ak_drop);

static int ak_parse_uncached(const uint8_t *p, size_t n, EVP_PKEY **out, int *restricted);

int cl_tpm_ak_parse(const uint8_t *p, size_t n, EVP_PKEY **out, int *restricted)
{
	struct cl_memo_key k;
	struct ak a = {NULL, -1}, *v = NULL;

	*out = NULL;
	if (restricted)
		*restricted = -1;
	CL_ENSURE_MSG(p && n > 0, CL_ERR_TRUNCATED, "empty AK");
	CL_ENSURE_MSG(n <= CL_TPM_MAX_AK, CL_ERR_MALFORMED, "AK larger than %d bytes",
		      CL_TPM_MAX_AK);
	CL_GUARD(cl_memo_key(&k, "tpm ak", p, n));
	if (!cl_memo_get(&aks, &k, 0, &a)) {
		CL_GUARD(ak_parse_uncached(p, n, &a.key, &a.restricted));
		v = malloc(sizeof(*v));
		if (v && EVP_PKEY_up_ref(a.key) == 1) {
			*v = a;
			cl_memo_put(&aks, &k, v, CL_MEMO_ALWAYS_FROM, CL_MEMO_ALWAYS_UNTIL);
		} else {
			free(v);
		}
	}
	*out = a.key;
	if (restricted)
		*restricted = a.restricted;
	return CL_OK;
}

static int ak_parse_uncached(const uint8_t *p, size_t n, EVP_PKEY **out, int *restricted)
{
	TPM2B_PUBLIC pub2b;
	TPMT_PUBLIC pub;
	const unsigned char *q = p;
	size_t off = 0;
	BIO *bio = NULL;

	*out = NULL;
	if (restricted)
		*restricted = -1;
	CL_ENSURE_MSG(p && n > 0, CL_ERR_TRUNCATED, "empty AK");
	CL_ENSURE_MSG(n <= CL_TPM_MAX_AK, CL_ERR_MALFORMED, "AK larger than %d bytes",
		      CL_TPM_MAX_AK);
	if (n > 10 && memcmp(p, "-----BEGIN", 10) == 0) {
		bio = BIO_new_mem_buf(p, (int)n);
		*out = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
		BIO_free(bio);
		CL_ENSURE_MSG(*out, CL_ERR_MALFORMED, "AK: PEM is not a public key");
		return CL_OK;
	}
	if (p[0] == 0x30) {
		*out = d2i_PUBKEY(NULL, &q, (long)n);
		if (*out && q == p + n)
			return CL_OK;
		EVP_PKEY_free(*out);
		*out = NULL;
	}
	memset(&pub2b, 0, sizeof(pub2b));
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(p, n, &off, &pub2b) == TSS2_RC_SUCCESS && off == n)
		return from_tpmt_public(&pub2b.publicArea, out, restricted);
	off = 0;
	memset(&pub, 0, sizeof(pub));
	if (Tss2_MU_TPMT_PUBLIC_Unmarshal(p, n, &off, &pub) == TSS2_RC_SUCCESS && off == n)
		return from_tpmt_public(&pub, out, restricted);
	CL_BAIL(CL_ERR_MALFORMED,
		"AK is neither a SubjectPublicKeyInfo nor a TPM2B_PUBLIC/TPMT_PUBLIC");
}

static int spki_der(EVP_PKEY *k, uint8_t **der, size_t *len)
{
	unsigned char *d = NULL;
	int l = i2d_PUBKEY(k, &d);

	CL_ENSURE_MSG(l > 0, CL_ERR_CRYPTO, "cannot encode the AK");
	*der = d;
	*len = (size_t)l;
	return CL_OK;
}

/* -------------------------------------------------------- the signature */

static const char *md_name(uint16_t alg)
{
	switch (alg) {
	case TPM2_ALG_SHA1:
		return "SHA1";
	case TPM2_ALG_SHA256:
		return "SHA256";
	case TPM2_ALG_SHA384:
		return "SHA384";
	case TPM2_ALG_SHA512:
		return "SHA512";
	default:
		return NULL;
	}
}

/* The hash a signature names (the quote's pcrDigest uses it too). */
static uint16_t sig_hash(const TPMT_SIGNATURE *sig)
{
	switch (sig->sigAlg) {
	case TPM2_ALG_RSASSA:
		return sig->signature.rsassa.hash;
	case TPM2_ALG_RSAPSS:
		return sig->signature.rsapss.hash;
	case TPM2_ALG_ECDSA:
		return sig->signature.ecdsa.hash;
	default:
		return 0;
	}
}

static const char *sig_name(uint16_t alg)
{
	switch (alg) {
	case TPM2_ALG_RSASSA:
		return "rsassa";
	case TPM2_ALG_RSAPSS:
		return "rsapss";
	case TPM2_ALG_ECDSA:
		return "ecdsa";
	default:
		return "unknown";
	}
}

/* DER ECDSA-Sig-Value from the TPM's big-endian r and s (each as long as the TPM made it). */
static int ecdsa_der(const TPMS_SIGNATURE_ECC *e, unsigned char **der, size_t *len)
{
	uint8_t rs[2 * 66];
	size_t rn = e->signatureR.size, sn = e->signatureS.size, n = rn > sn ? rn : sn;

	CL_ENSURE_MSG(n > 0 && n <= 66, CL_ERR_MALFORMED, "ECDSA signature of %zu-byte values", n);
	memset(rs, 0, sizeof(rs));
	memcpy(rs + (n - rn), e->signatureR.buffer, rn);
	memcpy(rs + n + (n - sn), e->signatureS.buffer, sn);
	return cl_ecdsa_raw_to_der(rs, n, der, len);
}

int cl_tpm_signature_verify(EVP_PKEY *ak, const TPMT_SIGNATURE *sig, const uint8_t *msg, size_t n)
{
	const char *mdn = md_name(sig_hash(sig));
	const unsigned char *sp = NULL;
	unsigned char *der = NULL;
	size_t slen = 0;
	EVP_MD *md = NULL;
	EVP_MD_CTX *ctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	int rc = CL_OK, want = EVP_PKEY_RSA;

	CL_CHECK(mdn, CL_ERR_UNSUPPORTED, "signature hash 0x%04x not supported", sig_hash(sig));
	switch (sig->sigAlg) {
	case TPM2_ALG_RSASSA:
		sp = sig->signature.rsassa.sig.buffer;
		slen = sig->signature.rsassa.sig.size;
		break;
	case TPM2_ALG_RSAPSS:
		sp = sig->signature.rsapss.sig.buffer;
		slen = sig->signature.rsapss.sig.size;
		break;
	case TPM2_ALG_ECDSA:
		want = EVP_PKEY_EC;
		CL_TRY(ecdsa_der(&sig->signature.ecdsa, &der, &slen));
		sp = der;
		break;
	default:
		CL_CHECK(0, CL_ERR_UNSUPPORTED, "signature algorithm 0x%04x not supported",
			 sig->sigAlg);
	}
	CL_CHECK(EVP_PKEY_get_base_id(ak) == want, CL_ERR_SIGNATURE,
		 "%s signature does not fit the AK's key type", sig_name(sig->sigAlg));
	md = EVP_MD_fetch(NULL, mdn, NULL);
	ctx = EVP_MD_CTX_new();
	CL_CHECK(md && ctx && EVP_DigestVerifyInit(ctx, &pctx, md, NULL, ak) == 1, CL_ERR_CRYPTO,
		 "signature verification could not start");
	if (sig->sigAlg == TPM2_ALG_RSAPSS) {
		/* TPMs differ in the salt length they use; the PSS encoding says which. */
		CL_CHECK(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
				 EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) ==
					 1 &&
				 EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) == 1,
			 CL_ERR_CRYPTO, "cannot set up RSA-PSS");
	} else if (sig->sigAlg == TPM2_ALG_RSASSA) {
		CL_CHECK(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1, CL_ERR_CRYPTO,
			 "cannot set up RSASSA");
	}
	CL_CHECK(EVP_DigestVerify(ctx, sp, slen, msg, n) == 1, CL_ERR_SIGNATURE,
		 "quote signature (%s) does not verify with the AK", sig_name(sig->sigAlg));
out:
	ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	EVP_MD_free(md);
	OPENSSL_free(der);
	return rc;
}

/* ------------------------------------------------------------- verify */

/* The AK to verify with, and how it came to be trusted ("pinned", "certificate", NULL). */
static int choose_ak(const struct cl_tpm_evidence *ev, const struct cl_verify_opts *o,
		     EVP_PKEY **ak, const char **trust, int *restricted)
{
	EVP_PKEY *given = NULL, *pinned = NULL;
	X509 *leaf = NULL;
	STACK_OF(X509) *roots = NULL, *chain = NULL;
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	int rc = CL_OK, r2 = -1;

	*ak = NULL;
	*trust = NULL;
	/* The same bytes as the pin: one parse (key decoding dominates the cost). */
	if (o->tpm.ak && ev->ak && o->tpm.ak_len == ev->ak_len &&
	    memcmp(o->tpm.ak, ev->ak, ev->ak_len) == 0) {
		CL_TRY(cl_tpm_ak_parse(ev->ak, ev->ak_len, ak, restricted));
		*trust = "pinned";
		goto out;
	}
	if (ev->ak)
		CL_TRY(cl_tpm_ak_parse(ev->ak, ev->ak_len, &given, restricted));
	if (o->tpm.ak) {
		CL_TRY(cl_tpm_ak_parse(o->tpm.ak, o->tpm.ak_len, &pinned, &r2));
		if (given) {
			CL_TRY(spki_der(given, &a, &alen));
			CL_TRY(spki_der(pinned, &b, &blen));
			CL_CHECK(alen == blen && memcmp(a, b, alen) == 0, CL_ERR_MISMATCH,
				 "the evidence's AK is not the pinned AK");
		} else if (restricted) {
			*restricted = r2;
		}
		*ak = pinned;
		pinned = NULL;
		*trust = "pinned";
		goto out;
	}
	if (o->tpm.ak_roots && ev->ak_cert) {
		CL_TRY(cl_x509_from_any(ev->ak_cert, ev->ak_cert_len, &leaf));
		CL_TRY(cl_x509_chain_from_pem(o->tpm.ak_roots, o->tpm.ak_roots_len, &roots));
		chain = sk_X509_new_null();
		CL_CHECK(chain, CL_ERR_NOMEM, "out of memory");
		for (size_t i = 0; i < ev->ak_chain_n; i++) {
			X509 *c = NULL;

			CL_TRY(cl_x509_from_any(ev->ak_chain[i], ev->ak_chain_len[i], &c));
			CL_CHECK(sk_X509_push(chain, c) > 0, CL_ERR_NOMEM, "out of memory");
		}
		CL_TRY(cl_x509_verify(leaf, chain, roots, NULL, o->at, NULL));
		pinned = X509_get_pubkey(leaf);
		CL_CHECK(pinned, CL_ERR_MALFORMED, "AK certificate has no usable key");
		if (given) {
			CL_TRY(spki_der(given, &a, &alen));
			CL_TRY(spki_der(pinned, &b, &blen));
			CL_CHECK(alen == blen && memcmp(a, b, alen) == 0, CL_ERR_MISMATCH,
				 "the AK certificate does not certify the evidence's AK");
		}
		*ak = pinned;
		pinned = NULL;
		*trust = "certificate";
		goto out;
	}
	/* Nothing vouches for the AK: verify with it anyway, the caller rejects. */
	CL_CHECK(given, CL_ERR_MALFORMED, "TPM evidence has no AK and none was given");
	*ak = given;
	given = NULL;
out:
	OPENSSL_free(a);
	OPENSSL_free(b);
	EVP_PKEY_free(given);
	EVP_PKEY_free(pinned);
	X509_free(leaf);
	sk_X509_pop_free(roots, X509_free);
	sk_X509_pop_free(chain, X509_free);
	return rc;
}

static int set(json_t *c, const char *k, json_t *v)
{
	CL_ENSURE_MSG(v && json_object_set_new(c, k, v) == 0, CL_ERR_NOMEM, "out of memory");
	return CL_OK;
}

/* {bank: {index: hex}} of the quoted PCRs. */
static int quoted_pcrs(const TPML_PCR_SELECTION *sel, const struct cl_tpm_pcrs *v, json_t *c)
{
	json_t *all = json_object();

	CL_GUARD(set(c, "pcrs", all));
	for (unsigned b = 0; b < sel->count; b++) {
		const TPMS_PCR_SELECTION *s = &sel->pcrSelections[b];
		json_t *bank = json_object();
		uint32_t mask = 0;
		char idx[4];

		CL_GUARD(set(all, cl_tpm_alg_name(s->hash), bank));
		CL_GUARD(selection_mask(s, &mask));
		for (unsigned i = 0; i < CL_TPM_NUM_PCRS; i++) {
			if (!(mask & (1u << i)))
				continue;
			snprintf(idx, sizeof(idx), "%u", i);
			CL_GUARD(cl_claims_set_hex(bank, idx, cl_tpm_pcrs_get(v, s->hash, i),
						   cl_tpm_alg_digest_len(s->hash)));
		}
	}
	return CL_OK;
}

/*
 * Replay the log into every quoted bank it carries and compare with the
 * quoted values; then summarise the events of the PCRs that matched.
 */
static int check_event_log(const struct cl_tpm_evidence *ev, const TPML_PCR_SELECTION *sel,
			   json_t *c)
{
	static const uint16_t pref[] = {CL_TPM_ALG_SHA256, CL_TPM_ALG_SHA384, CL_TPM_ALG_SHA512,
					CL_TPM_ALG_SHA1};
	struct cl_evlog log;
	struct cl_pcr_bank *bank = NULL;
	json_t *summary = NULL;
	uint32_t trusted = 0, best_trusted = 0;
	unsigned replayed = 0, best = sizeof(pref) / sizeof(pref[0]);
	int rc = CL_OK, sb = -1;

	memset(&log, 0, sizeof(log));
	CL_TRY(cl_evlog_parse(ev->event_log, ev->event_log_len, &log));
	bank = malloc(sizeof(*bank));
	CL_CHECK(bank, CL_ERR_NOMEM, "out of memory");
	for (unsigned b = 0; b < sel->count; b++) {
		const TPMS_PCR_SELECTION *s = &sel->pcrSelections[b];
		uint32_t mask = 0;

		CL_TRY(selection_mask(s, &mask));
		if (cl_evlog_replay(&log, s->hash, bank) != CL_OK) {
			cl_error_clear();
			continue;
		}
		replayed++;
		trusted = 0;
		for (unsigned i = 0; i < CL_TPM_NUM_PCRS; i++) {
			if (!(mask & bank->extended & (1u << i)))
				continue;
			CL_CHECK(memcmp(bank->pcr[i], cl_tpm_pcrs_get(&ev->pcrs, s->hash, i),
					bank->len) == 0,
				 CL_ERR_MISMATCH,
				 "event log replay of PCR %s:%u does not match the quoted value",
				 cl_tpm_alg_name(s->hash), i);
			trusted |= 1u << i;
		}
		/* Claims come from the strongest bank that replayed. */
		for (unsigned p = 0; p < sizeof(pref) / sizeof(pref[0]); p++) {
			if (pref[p] == s->hash && p < best) {
				best = p;
				best_trusted = trusted;
			}
		}
	}
	CL_CHECK(replayed > 0 && best < sizeof(pref) / sizeof(pref[0]), CL_ERR_UNSUPPORTED,
		 "the event log has no PCR bank that the quote covers");
	CL_TRY(cl_evlog_summary(&log, pref[best], best_trusted, &summary, &sb));
	CL_TRY(set(c, "events", summary));
	summary = NULL;
	CL_TRY(set(c, "secure_boot", sb < 0 ? json_null() : json_boolean(sb)));
out:
	json_decref(summary);
	free(bank);
	cl_evlog_free(&log);
	return rc;
}

/* ------------------------------------------------------------- format */

struct tpm_parsed {
	struct cl_tpm_evidence ev;
	TPMS_ATTEST q;
	TPMT_SIGNATURE sig;
};

static int tpm_detect(const uint8_t *ev, size_t n, const json_t *json)
{
	(void)ev;
	(void)n;
	return cl_tpm_json_shape(json);
}

static void tpm_free(void *parsed)
{
	struct tpm_parsed *p = parsed;

	if (!p)
		return;
	cl_tpm_evidence_free(&p->ev);
	free(p);
}

static int tpm_parse(struct cl_evidence *e)
{
	struct tpm_parsed *p = calloc(1, sizeof(*p));

	CL_ENSURE_MSG(p, CL_ERR_NOMEM, "out of memory");
	e->parsed = p;
	CL_GUARD(cl_tpm_evidence_from_json(e->json, &p->ev));
	CL_GUARD(cl_tpm_quote_parse(p->ev.quote, p->ev.quote_len, &p->q));
	return cl_tpm_signature_parse(p->ev.sig, p->ev.sig_len, &p->sig);
}

/* What the quote says; nothing in it is believed before the AK's signature checks. */
static int tpm_claims(const struct cl_evidence *e, json_t **claims)
{
	const struct tpm_parsed *p = e->parsed;
	const TPMS_ATTEST *q = &p->q;
	uint8_t rd[CL_REPORT_DATA_LEN] = {0};
	const char *hash = cl_tpm_alg_name(sig_hash(&p->sig));
	json_t *c = cl_claims_new("tpm");
	char fw[17];

	CL_ENSURE_MSG(c, CL_ERR_NOMEM, "out of memory");
	*claims = c;
	/* extraData is at most 64 bytes (TPM2B_DATA), so it always fits report_data. */
	memcpy(rd, q->extraData.buffer, q->extraData.size);
	CL_GUARD(cl_claims_set_hex(c, "report_data", rd, sizeof(rd)));
	CL_GUARD(cl_claims_set_hex(c, "nonce", q->extraData.buffer, q->extraData.size));
	CL_GUARD(cl_claims_set_hex(c, "measurement", q->attested.quote.pcrDigest.buffer,
				   q->attested.quote.pcrDigest.size));
	/* The quote and signature arrive length-exact in JSON: nothing can trail them. */
	CL_GUARD(cl_claims_set_trailing(c, 0));
	CL_GUARD(set(c, "signature_alg", json_string(sig_name(p->sig.sigAlg))));
	CL_GUARD(set(c, "hash_alg", json_string(hash ? hash : "unknown")));
	snprintf(fw, sizeof(fw), "%016llx", (unsigned long long)q->firmwareVersion);
	CL_GUARD(set(c, "firmware_version", json_string(fw)));
	CL_GUARD(set(c, "clock",
		     json_pack("{s:I, s:I, s:I, s:b}", "clock", (json_int_t)q->clockInfo.clock,
			       "reset_count", (json_int_t)q->clockInfo.resetCount, "restart_count",
			       (json_int_t)q->clockInfo.restartCount, "safe",
			       q->clockInfo.safe == TPM2_YES)));
	CL_GUARD(set(c, "secure_boot", json_null()));
	return set(c, "events", json_null());
}

/* The AK, how it came to be trusted, and its claims. */
static int tpm_ak(const struct tpm_parsed *p, const struct cl_verify_opts *o, json_t *c,
		  EVP_PKEY **ak, const char **trust)
{
	uint8_t *spki = NULL, akh[32];
	size_t spki_len = 0;
	int rc = CL_OK, restricted = -1;

	CL_TRY(choose_ak(&p->ev, o, ak, trust, &restricted));
	CL_TRY(spki_der(*ak, &spki, &spki_len));
	CL_TRY(cl_digest(CL_SHA256, spki, spki_len, akh));
	CL_TRY(cl_claims_set_hex(c, "ak", akh, sizeof(akh)));
	CL_TRY(set(c, "ak_trust", *trust ? json_string(*trust) : json_null()));
	CL_TRY(set(c, "ak_restricted", restricted < 0 ? json_null() : json_boolean(restricted)));
out:
	OPENSSL_free(spki);
	return rc;
}

static int tpm_verify(const struct cl_evidence *e, const struct cl_verify_opts *o, json_t *c)
{
	const struct tpm_parsed *p = e->parsed;
	const TPMS_ATTEST *q = &p->q;
	const TPML_PCR_SELECTION *sel = &q->attested.quote.pcrSelect;
	EVP_PKEY *ak = NULL;
	const char *trust = NULL;
	uint8_t rd[CL_REPORT_DATA_LEN] = {0}, dg[CL_MAX_DIGEST];
	size_t dglen = 0;
	int rc = CL_OK;

	CL_TRY(tpm_ak(p, o, c, &ak, &trust));
	/* From here on every value is checked against the signed quote. */
	CL_TRY(cl_tpm_signature_verify(ak, &p->sig, p->ev.quote, p->ev.quote_len));
	if (o->tpm.nonce)
		CL_CHECK(o->tpm.nonce_len == q->extraData.size &&
				 cl_ct_equal(o->tpm.nonce, q->extraData.buffer, o->tpm.nonce_len),
			 CL_ERR_MISMATCH, "quote extraData does not match the expected nonce");
	memcpy(rd, q->extraData.buffer, q->extraData.size);
	CL_TRY(cl_check_report_data(o, rd));
	CL_TRY(cl_tpm_pcr_digest(sel, &p->ev.pcrs, sig_hash(&p->sig), dg, &dglen));
	CL_CHECK(dglen == q->attested.quote.pcrDigest.size &&
			 memcmp(dg, q->attested.quote.pcrDigest.buffer, dglen) == 0,
		 CL_ERR_MISMATCH, "PCR values do not match the quote's PCR digest");
	CL_TRY(quoted_pcrs(sel, &p->ev.pcrs, c));
	if (p->ev.event_log)
		CL_TRY(check_event_log(&p->ev, sel, c));
	CL_CHECK(trust, CL_ERR_POLICY,
		 "the AK is not trusted: pin it (--ak) or give roots for its certificate "
		 "(--ak-roots)");
out:
	EVP_PKEY_free(ak);
	return rc;
}

const struct cl_format_ops cl_tpm_format = {
	.name = "tpm",
	.id = CL_FORMAT_TPM,
	.flags = CL_FMT_JSON,
	.detect = tpm_detect,
	.parse = tpm_parse,
	.claims = tpm_claims,
	.verify = tpm_verify,
	.free = tpm_free,
};
