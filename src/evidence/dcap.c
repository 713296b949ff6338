/*
 * Intel DCAP ECDSA quotes: SGX v3/v4/v5 and TDX v4/v5 (TDX 1.0 and 1.5
 * bodies). The parser reads the quote through the bounded reader only; the
 * verifier checks, in order: the PCK chain to the pinned Intel root (with the
 * collateral's CRLs when there is collateral), the PCK signature over the QE
 * report, the QE report's binding of the attestation key, the attestation
 * key's signature over header and body, local policy (debug, report data),
 * and finally the collateral and the TCB status it gives.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cloister/crypto.h"
#include "cloister/memo.h"
#include "cloister/dcap.h"
#include "cloister/endorse.h"
#include "format.h"
#include "internal.h"

/* Wire layouts, as byte offsets add up in Intel's structure definitions. */
_Static_assert(2 + 2 + 4 + 2 + 2 + 16 + 20 == CL_DCAP_HEADER_LEN, "quote header");
_Static_assert(16 + 4 + 12 + 16 + 16 + 32 + 32 + 32 + 32 + 64 + 2 + 2 + 2 + 42 + 16 + 64 ==
		       CL_DCAP_SGX_BODY_LEN,
	       "SGX report body");
_Static_assert(16 + 48 + 48 + 8 + 8 + 8 + 48 + 48 + 48 + 48 + 4 * 48 + 64 == CL_DCAP_TDX10_BODY_LEN,
	       "TDX 1.0 report body");
_Static_assert(CL_DCAP_TDX10_BODY_LEN + 16 + 48 == CL_DCAP_TDX15_BODY_LEN, "TDX 1.5 report body");
_Static_assert(CL_DCAP_MAX_CERT_DATA <= CL_MAX_PEM_CHAIN, "PCK chain cap");

/* ------------------------------------------------------------------ parsing */

int cl_dcap_sgx_report_parse(struct cl_reader *r, struct cl_sgx_report *out)
{
	struct cl_reader b = {0};

	memset(out, 0, sizeof(*out));
	CL_GUARD(cl_read_sub(r, CL_DCAP_SGX_BODY_LEN, &b));
	CL_GUARD(cl_read_bytes(&b, out->cpu_svn, sizeof(out->cpu_svn)));
	CL_GUARD(cl_read_u32le(&b, &out->misc_select));
	CL_GUARD(cl_read_skip(&b, 12));
	CL_GUARD(cl_read_bytes(&b, out->isv_ext_prod_id, sizeof(out->isv_ext_prod_id)));
	CL_GUARD(cl_read_bytes(&b, out->attributes, sizeof(out->attributes)));
	CL_GUARD(cl_read_bytes(&b, out->mr_enclave, sizeof(out->mr_enclave)));
	CL_GUARD(cl_read_skip(&b, 32));
	CL_GUARD(cl_read_bytes(&b, out->mr_signer, sizeof(out->mr_signer)));
	CL_GUARD(cl_read_skip(&b, 32));
	CL_GUARD(cl_read_bytes(&b, out->config_id, sizeof(out->config_id)));
	CL_GUARD(cl_read_u16le(&b, &out->isv_prod_id));
	CL_GUARD(cl_read_u16le(&b, &out->isv_svn));
	CL_GUARD(cl_read_u16le(&b, &out->config_svn));
	CL_GUARD(cl_read_skip(&b, 42));
	CL_GUARD(cl_read_bytes(&b, out->isv_family_id, sizeof(out->isv_family_id)));
	CL_GUARD(cl_read_bytes(&b, out->report_data, sizeof(out->report_data)));
	CL_ENSURE(b.left == 0, CL_ERR_INTERNAL);
	return CL_OK;
}

static int tdx_report_parse(struct cl_reader *r, int v15, struct cl_tdx_report *out)
{
	struct cl_reader b = {0};

	memset(out, 0, sizeof(*out));
	CL_GUARD(cl_read_sub(r, v15 ? CL_DCAP_TDX15_BODY_LEN : CL_DCAP_TDX10_BODY_LEN, &b));
	CL_GUARD(cl_read_bytes(&b, out->tee_tcb_svn, sizeof(out->tee_tcb_svn)));
	CL_GUARD(cl_read_bytes(&b, out->mr_seam, sizeof(out->mr_seam)));
	CL_GUARD(cl_read_bytes(&b, out->mr_signer_seam, sizeof(out->mr_signer_seam)));
	CL_GUARD(cl_read_bytes(&b, out->seam_attributes, sizeof(out->seam_attributes)));
	CL_GUARD(cl_read_bytes(&b, out->td_attributes, sizeof(out->td_attributes)));
	CL_GUARD(cl_read_bytes(&b, out->xfam, sizeof(out->xfam)));
	CL_GUARD(cl_read_bytes(&b, out->mr_td, sizeof(out->mr_td)));
	CL_GUARD(cl_read_bytes(&b, out->mr_config_id, sizeof(out->mr_config_id)));
	CL_GUARD(cl_read_bytes(&b, out->mr_owner, sizeof(out->mr_owner)));
	CL_GUARD(cl_read_bytes(&b, out->mr_owner_config, sizeof(out->mr_owner_config)));
	for (int i = 0; i < 4; i++)
		CL_GUARD(cl_read_bytes(&b, out->rtmr[i], sizeof(out->rtmr[i])));
	CL_GUARD(cl_read_bytes(&b, out->report_data, sizeof(out->report_data)));
	if (v15) {
		CL_GUARD(cl_read_bytes(&b, out->tee_tcb_svn2, sizeof(out->tee_tcb_svn2)));
		CL_GUARD(cl_read_bytes(&b, out->mr_servicetd, sizeof(out->mr_servicetd)));
	}
	CL_ENSURE(b.left == 0, CL_ERR_INTERNAL);
	return CL_OK;
}

/* QE report, its signature, QE authentication data and the inner certification data. */
static int qe_certdata_parse(struct cl_reader *r, struct cl_dcap_certdata *out)
{
	struct cl_reader qe = {0};
	uint16_t auth_len = 0;
	uint32_t cert_len = 0;

	CL_GUARD(cl_read_ref(r, CL_DCAP_QE_REPORT_LEN, &out->qe_report_raw));
	qe = cl_reader_make(out->qe_report_raw, CL_DCAP_QE_REPORT_LEN);
	CL_GUARD(cl_dcap_sgx_report_parse(&qe, &out->qe_report));
	CL_GUARD(cl_read_ref(r, CL_DCAP_SIG_LEN, &out->qe_report_sig));
	CL_GUARD(cl_read_u16le(r, &auth_len));
	CL_ENSURE_MSG(auth_len <= CL_DCAP_MAX_AUTH_DATA, CL_ERR_MALFORMED,
		      "QE authentication data of %u bytes exceeds %d", auth_len,
		      CL_DCAP_MAX_AUTH_DATA);
	CL_GUARD(cl_read_ref(r, auth_len, &out->qe_auth_data));
	out->qe_auth_len = auth_len;
	CL_GUARD(cl_read_u16le(r, &out->cert_type));
	CL_GUARD(cl_read_u32le(r, &cert_len));
	switch (out->cert_type) {
	case CL_DCAP_CERT_PPID_CLEAR:
	case CL_DCAP_CERT_PPID_RSA2048:
	case CL_DCAP_CERT_PPID_RSA3072:
	case CL_DCAP_CERT_PCK_CLEAR:
		break;
	case CL_DCAP_CERT_PCK_CHAIN:
		CL_ENSURE_MSG(cert_len > 0, CL_ERR_MALFORMED, "empty PCK certificate chain");
		break;
	default:
		CL_BAIL(CL_ERR_UNSUPPORTED, "unsupported certification data type %u",
			out->cert_type);
	}
	CL_ENSURE_MSG(cert_len <= CL_DCAP_MAX_CERT_DATA, CL_ERR_MALFORMED,
		      "certification data of %u bytes exceeds %d", cert_len, CL_DCAP_MAX_CERT_DATA);
	CL_GUARD(cl_read_ref(r, cert_len, &out->cert_data));
	out->cert_len = cert_len;
	return CL_OK;
}

int cl_dcap_certdata_parse(const uint8_t *p, size_t n, uint16_t version,
			   struct cl_dcap_certdata *out)
{
	struct cl_reader r = cl_reader_make(p, n), inner = {0};
	uint16_t type = 0;
	uint32_t len = 0;

	memset(out, 0, sizeof(*out));
	switch (version) {
	case 3:
		CL_GUARD(qe_certdata_parse(&r, out));
		break;
	case 4:
	case 5:
		CL_GUARD(cl_read_u16le(&r, &type));
		CL_ENSURE_MSG(type == CL_DCAP_CERT_QE_REPORT, CL_ERR_UNSUPPORTED,
			      "certification data type %u, expected QE report (6)", type);
		CL_GUARD(cl_read_u32le(&r, &len));
		CL_GUARD(cl_read_sub(&r, len, &inner));
		CL_GUARD(qe_certdata_parse(&inner, out));
		CL_ENSURE_MSG(inner.left == 0, CL_ERR_MALFORMED,
			      "%zu unexpected bytes after the QE report certification data",
			      inner.left);
		break;
	default:
		CL_BAIL(CL_ERR_UNSUPPORTED, "unsupported quote version %u", version);
	}
	CL_ENSURE_MSG(r.left == 0, CL_ERR_MALFORMED,
		      "%zu unexpected bytes after the certification data", r.left);
	return CL_OK;
}

static int body_parse(struct cl_reader *r, struct cl_dcap_quote *q)
{
	uint32_t body_len = 0;
	struct cl_reader b = {0};

	if (q->version == 5) {
		CL_GUARD(cl_read_u16le(r, &q->body_type));
		CL_GUARD(cl_read_u32le(r, &body_len));
	} else {
		q->body_type =
			q->tee_type == CL_DCAP_TEE_TDX ? CL_DCAP_BODY_TDX10 : CL_DCAP_BODY_SGX;
	}
	switch (q->body_type) {
	case CL_DCAP_BODY_SGX:
		CL_ENSURE_MSG(q->tee_type == CL_DCAP_TEE_SGX, CL_ERR_MALFORMED,
			      "SGX report body in a TDX quote");
		CL_ENSURE_MSG(q->version != 5 || body_len == CL_DCAP_SGX_BODY_LEN, CL_ERR_MALFORMED,
			      "SGX report body of %u bytes", body_len);
		return cl_dcap_sgx_report_parse(r, &q->sgx);
	case CL_DCAP_BODY_TDX10:
	case CL_DCAP_BODY_TDX15:
		CL_ENSURE_MSG(q->tee_type == CL_DCAP_TEE_TDX, CL_ERR_MALFORMED,
			      "TD report body in an SGX quote");
		body_len = q->version != 5 ? CL_DCAP_TDX10_BODY_LEN : body_len;
		CL_ENSURE_MSG(body_len == (q->body_type == CL_DCAP_BODY_TDX15
						   ? CL_DCAP_TDX15_BODY_LEN
						   : CL_DCAP_TDX10_BODY_LEN),
			      CL_ERR_MALFORMED, "TD report body type %u of %u bytes", q->body_type,
			      body_len);
		CL_GUARD(cl_read_sub(r, body_len, &b));
		return tdx_report_parse(&b, q->body_type == CL_DCAP_BODY_TDX15, &q->tdx);
	default:
		CL_BAIL(CL_ERR_UNSUPPORTED, "unsupported quote body type %u", q->body_type);
	}
}

int cl_dcap_quote_parse(const uint8_t *p, size_t n, struct cl_dcap_quote *q)
{
	struct cl_reader r = cl_reader_make(p, n), sig = {0};
	uint32_t sig_len = 0;

	memset(q, 0, sizeof(*q));
	CL_GUARD(cl_read_u16le(&r, &q->version));
	CL_GUARD(cl_read_u16le(&r, &q->att_key_type));
	CL_GUARD(cl_read_u32le(&r, &q->tee_type));
	CL_ENSURE_MSG(q->version >= 3 && q->version <= 5, CL_ERR_UNSUPPORTED,
		      "unsupported quote version %u", q->version);
	CL_ENSURE_MSG(q->att_key_type == CL_DCAP_ATT_KEY_ECDSA_P256, CL_ERR_UNSUPPORTED,
		      "unsupported attestation key type %u (only ECDSA P-256)", q->att_key_type);
	CL_ENSURE_MSG(q->tee_type == CL_DCAP_TEE_SGX ||
			      (q->tee_type == CL_DCAP_TEE_TDX && q->version >= 4),
		      CL_ERR_UNSUPPORTED, "unsupported TEE type 0x%x in a v%u quote", q->tee_type,
		      q->version);
	/* v3 carries the QE and PCE SVNs here; later versions reserve the bytes. */
	CL_GUARD(cl_read_u16le(&r, &q->qe_svn));
	CL_GUARD(cl_read_u16le(&r, &q->pce_svn));
	if (q->version != 3)
		q->qe_svn = q->pce_svn = 0;
	CL_GUARD(cl_read_bytes(&r, q->qe_vendor_id, sizeof(q->qe_vendor_id)));
	CL_GUARD(cl_read_bytes(&r, q->user_data, sizeof(q->user_data)));
	CL_GUARD(body_parse(&r, q));
	q->signed_data = p;
	q->signed_len = n - r.left;

	CL_GUARD(cl_read_u32le(&r, &sig_len));
	CL_GUARD(cl_read_sub(&r, sig_len, &sig));
	CL_GUARD(cl_read_ref(&sig, CL_DCAP_SIG_LEN, &q->signature));
	CL_GUARD(cl_read_ref(&sig, CL_DCAP_KEY_LEN, &q->att_key));
	CL_GUARD(cl_dcap_certdata_parse(sig.p, sig.left, q->version, &q->cert));

	/* Unsigned and never read, whatever their value: only counted. */
	CL_GUARD(cl_trailing_check(n, n - r.left, "quote", &q->trailing));
	return CL_OK;
}

/* ------------------------------------------------------- PCK chain cache */

/*
 * Verified PCK chains, keyed by SHA-256 over the chain PEM and the CRLs it
 * was checked against. An entry keeps the window in which every certificate
 * and CRL involved is valid, so a hit at another time is exactly as good as
 * running the chain check again: with the same certificates and CRLs,
 * X509_verify_cert's outcome depends on the time only through those windows.
 * Outside the window the chain is verified again, so the error names the
 * certificate.
 */

/* What a verified chain gives the quote verifier; key is a reference the caller frees. */
struct pck {
	EVP_PKEY *key;
	struct cl_intel_pck_info info;
	int platform_ca;
};

static int pck_ref(void *value, void *out)
{
	const struct pck *p = value;

	if (EVP_PKEY_up_ref(p->key) != 1)
		return 0;
	*(struct pck *)out = *p;
	return 1;
}

static void pck_drop(void *value)
{
	struct pck *p = value;

	EVP_PKEY_free(p->key);
	free(p);
}

static struct cl_memo pck_chains =
	CL_MEMO_INIT("pck chain", 64, CL_MEMO_VERIFIED, pck_ref, pck_drop);

static int pck_id(const uint8_t *pem, size_t len, STACK_OF(X509_CRL) * crls, int require_root,
		  uint8_t id[32])
{
	const uint8_t flag = (uint8_t)require_root;

	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int rc = CL_OK;

	CL_CHECK(ctx != NULL, CL_ERR_NOMEM, "out of memory");
	CL_CHECK(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
			 EVP_DigestUpdate(ctx, "dcap pck chain", 15) == 1 &&
			 EVP_DigestUpdate(ctx, &flag, 1) == 1 &&
			 EVP_DigestUpdate(ctx, pem, len) == 1,
		 CL_ERR_CRYPTO, "SHA-256 failed");
	for (int i = 0; i < sk_X509_CRL_num(crls); i++) {
		CL_CHECK(X509_CRL_digest(sk_X509_CRL_value(crls, i), EVP_sha256(), md, &mdlen) ==
					 1 &&
				 EVP_DigestUpdate(ctx, md, mdlen) == 1,
			 CL_ERR_CRYPTO, "CRL digest failed");
	}
	CL_CHECK(EVP_DigestFinal_ex(ctx, id, NULL) == 1, CL_ERR_CRYPTO, "SHA-256 failed");
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* Keep a copy of p (a new key reference) for [nb, na]. */
static void pck_cache_put(const uint8_t id[32], int64_t nb, int64_t na, const struct pck *p)
{
	struct cl_memo_key k;
	struct pck *v = malloc(sizeof(*v));

	if (!v)
		return;
	*v = *p;
	if (EVP_PKEY_up_ref(v->key) != 1) {
		free(v);
		return;
	}
	memcpy(k.b, id, sizeof(k.b));
	cl_memo_put(&pck_chains, &k, v, nb, na);
}

/* Narrow [*nb, *na] to the validity of cert. */
static int narrow_cert(X509 *cert, int64_t *nb, int64_t *na)
{
	int64_t a = 0, b = 0;

	CL_GUARD(cl_asn1_time_epoch(X509_get0_notBefore(cert), &a));
	CL_GUARD(cl_asn1_time_epoch(X509_get0_notAfter(cert), &b));
	*nb = a > *nb ? a : *nb;
	*na = b < *na ? b : *na;
	return CL_OK;
}

static int issuer_is_platform_ca(X509 *leaf)
{
	X509_NAME *iss = X509_get_issuer_name(leaf);
	int idx = X509_NAME_get_index_by_NID(iss, NID_commonName, -1);
	const ASN1_STRING *cn = NULL;

	if (idx < 0)
		return 0;
	cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(iss, idx));
	return cn && ASN1_STRING_length(cn) > 0 &&
	       memmem(ASN1_STRING_get0_data(cn), (size_t)ASN1_STRING_length(cn), "Platform", 8) !=
		       NULL;
}

/*
 * Every certificate given must be on the path, leaf first, and a root at
 * the end must be the pinned one. OpenSSL alone would ignore a stray or
 * altered copy of the root (the pinned root is found first), leaving bytes
 * of the quote that nothing checks.
 */
static int chain_shape(STACK_OF(X509) * chain, X509 *root, int require_root)
{
	int n = sk_X509_num(chain);
	X509 *last = sk_X509_value(chain, n - 1);

	for (int i = 1; i < n; i++)
		CL_ENSURE_MSG(X509_check_issued(sk_X509_value(chain, i),
						sk_X509_value(chain, i - 1)) == X509_V_OK,
			      CL_ERR_CHAIN,
			      "PCK chain: certificate %d did not issue certificate %d", i, i - 1);
	if (require_root || X509_check_issued(last, last) == X509_V_OK)
		CL_ENSURE_MSG(n > 1 && X509_cmp(last, root) == 0, CL_ERR_CHAIN,
			      "PCK chain does not end at the pinned Intel SGX Root CA");
	return CL_OK;
}

/*
 * Verify a PCK chain (PEM, leaf first) to the pinned Intel root at `at`,
 * through the cache. Chains from a quote must include the root, as Intel's
 * quoting library always puts it there.
 */
static int pck_chain_verify(const uint8_t *pem, size_t len, STACK_OF(X509_CRL) * crls,
			    int require_root, int64_t at, struct pck *out)
{
	STACK_OF(X509) *chain = NULL, *roots = NULL;
	X509 *leaf = NULL, *root = cl_intel_root();
	EVP_PKEY *key = NULL;
	uint8_t id[32];
	struct cl_memo_key k;
	int64_t nb = INT64_MIN, na = INT64_MAX, t = 0;
	int rc = CL_OK;

	memset(out, 0, sizeof(*out));
	CL_TRY(pck_id(pem, len, crls, require_root, id));
	memcpy(k.b, id, sizeof(k.b));
	if (cl_memo_get(&pck_chains, &k, at, out))
		return CL_OK;

	CL_CHECK(root != NULL, CL_ERR_INTERNAL, "pinned Intel SGX root CA unavailable");
	CL_TRY(cl_x509_chain_from_pem(pem, len, &chain));
	roots = sk_X509_new_null();
	CL_CHECK(roots && sk_X509_push(roots, root) > 0, CL_ERR_NOMEM, "out of memory");
	leaf = sk_X509_value(chain, 0);
	CL_TRY(chain_shape(chain, root, require_root));
	CL_TRY(cl_x509_verify(leaf, chain, roots, crls, at, NULL));

	key = X509_get0_pubkey(leaf);
	CL_CHECK(key && EVP_PKEY_is_a(key, "EC"), CL_ERR_UNSUPPORTED, "PCK key is not an EC key");
	{
		char group[32] = "";
		size_t glen = 0;

		CL_CHECK(EVP_PKEY_get_group_name(key, group, sizeof(group), &glen) == 1 &&
				 strcmp(group, "prime256v1") == 0,
			 CL_ERR_UNSUPPORTED, "PCK key is not on P-256");
	}
	CL_TRY(cl_intel_pck_info(leaf, &out->info));
	out->platform_ca = issuer_is_platform_ca(leaf);

	for (int i = 0; i < sk_X509_num(chain); i++)
		CL_TRY(narrow_cert(sk_X509_value(chain, i), &nb, &na));
	CL_TRY(narrow_cert(root, &nb, &na));
	for (int i = 0; i < sk_X509_CRL_num(crls); i++) {
		X509_CRL *crl = sk_X509_CRL_value(crls, i);

		CL_TRY(cl_asn1_time_epoch(X509_CRL_get0_lastUpdate(crl), &t));
		nb = t > nb ? t : nb;
		if (X509_CRL_get0_nextUpdate(crl)) {
			CL_TRY(cl_asn1_time_epoch(X509_CRL_get0_nextUpdate(crl), &t));
			na = t < na ? t : na;
		}
	}
	CL_CHECK(EVP_PKEY_up_ref(key) == 1, CL_ERR_CRYPTO, "cannot reference PCK key");
	out->key = key;
	pck_cache_put(id, nb, na, out);
out:
	sk_X509_free(roots);
	sk_X509_pop_free(chain, X509_free);
	ERR_clear_error();
	return rc;
}

/*
 * Parsed attestation keys. The QE keeps its attestation key for as long as
 * it runs, so quotes from one platform repeat it; building an EVP_PKEY from
 * the raw point through the provider interface costs about a third of a
 * signature check. Keyed by the exact 64 bytes, so a hit is the same key.
 */
static int key_ref(void *value, void *out)
{
	if (EVP_PKEY_up_ref(value) != 1)
		return 0;
	*(EVP_PKEY **)out = value;
	return 1;
}

static void key_drop(void *value)
{
	EVP_PKEY_free(value);
}

static struct cl_memo att_keys =
	CL_MEMO_INIT("dcap attestation key", 32, CL_MEMO_DECODED, key_ref, key_drop);

/*
 * Shared under a cache bypass too: this only decodes a point (checked on the
 * curve when first built); it vouches for nothing, the quote's signature is
 * verified with it every time.
 */
static int att_key_get(const uint8_t xy[CL_DCAP_KEY_LEN], EVP_PKEY **out)
{
	struct cl_memo_key k;
	EVP_PKEY *key = NULL;

	CL_GUARD(cl_memo_key(&k, "p-256 point", xy, CL_DCAP_KEY_LEN));
	if (cl_memo_get(&att_keys, &k, 0, out))
		return CL_OK;
	CL_GUARD(cl_ec_key_from_xy("prime256v1", xy, xy + 32, 32, &key));
	if (EVP_PKEY_up_ref(key) == 1)
		cl_memo_put(&att_keys, &k, key, CL_MEMO_ALWAYS_FROM, CL_MEMO_ALWAYS_UNTIL);
	*out = key;
	return CL_OK;
}

/* ------------------------------------------------------------- claims */

static int set_int(json_t *c, const char *k, json_int_t v)
{
	CL_ENSURE_MSG(json_object_set_new(c, k, json_integer(v)) == 0, CL_ERR_NOMEM,
		      "out of memory");
	return CL_OK;
}

static int quote_claims(const struct cl_dcap_quote *q, json_t **out)
{
	json_t *c = cl_claims_new(q->tee_type == CL_DCAP_TEE_TDX ? "tdx" : "sgx");
	int rc = CL_OK;

	CL_CHECK(c != NULL, CL_ERR_NOMEM, "out of memory");
	CL_TRY(set_int(c, "quote_version", q->version));
	CL_TRY(cl_claims_set_trailing(c, q->trailing));
	if (q->tee_type == CL_DCAP_TEE_TDX) {
		const struct cl_tdx_report *t = &q->tdx;
		static const char *const rtmr[4] = {"rtmr0", "rtmr1", "rtmr2", "rtmr3"};

		CL_TRY(cl_claims_set_hex(c, "measurement", t->mr_td, sizeof(t->mr_td)));
		CL_TRY(cl_claims_set_hex(c, "report_data", t->report_data, sizeof(t->report_data)));
		CL_CHECK(json_object_set_new(c, "debug",
					     json_boolean(t->td_attributes[0] & 0x01)) == 0,
			 CL_ERR_NOMEM, "out of memory");
		CL_TRY(cl_claims_set_hex(c, "mr_td", t->mr_td, sizeof(t->mr_td)));
		CL_TRY(cl_claims_set_hex(c, "mr_seam", t->mr_seam, sizeof(t->mr_seam)));
		CL_TRY(cl_claims_set_hex(c, "mr_signer_seam", t->mr_signer_seam,
					 sizeof(t->mr_signer_seam)));
		CL_TRY(cl_claims_set_hex(c, "seam_attributes", t->seam_attributes,
					 sizeof(t->seam_attributes)));
		CL_TRY(cl_claims_set_hex(c, "td_attributes", t->td_attributes,
					 sizeof(t->td_attributes)));
		CL_TRY(cl_claims_set_hex(c, "xfam", t->xfam, sizeof(t->xfam)));
		CL_TRY(cl_claims_set_hex(c, "tee_tcb_svn", t->tee_tcb_svn, sizeof(t->tee_tcb_svn)));
		CL_TRY(cl_claims_set_hex(c, "mr_config_id", t->mr_config_id,
					 sizeof(t->mr_config_id)));
		CL_TRY(cl_claims_set_hex(c, "mr_owner", t->mr_owner, sizeof(t->mr_owner)));
		CL_TRY(cl_claims_set_hex(c, "mr_owner_config", t->mr_owner_config,
					 sizeof(t->mr_owner_config)));
		for (int i = 0; i < 4; i++)
			CL_TRY(cl_claims_set_hex(c, rtmr[i], t->rtmr[i], sizeof(t->rtmr[i])));
		if (q->body_type == CL_DCAP_BODY_TDX15) {
			CL_TRY(cl_claims_set_hex(c, "tee_tcb_svn2", t->tee_tcb_svn2,
						 sizeof(t->tee_tcb_svn2)));
			CL_TRY(cl_claims_set_hex(c, "mr_servicetd", t->mr_servicetd,
						 sizeof(t->mr_servicetd)));
		}
	} else {
		const struct cl_sgx_report *s = &q->sgx;

		CL_TRY(cl_claims_set_hex(c, "measurement", s->mr_enclave, sizeof(s->mr_enclave)));
		CL_TRY(cl_claims_set_hex(c, "report_data", s->report_data, sizeof(s->report_data)));
		CL_CHECK(json_object_set_new(c, "debug", json_boolean(s->attributes[0] & 0x02)) ==
				 0,
			 CL_ERR_NOMEM, "out of memory");
		CL_TRY(cl_claims_set_hex(c, "mr_enclave", s->mr_enclave, sizeof(s->mr_enclave)));
		CL_TRY(cl_claims_set_hex(c, "mr_signer", s->mr_signer, sizeof(s->mr_signer)));
		CL_TRY(set_int(c, "isv_prod_id", s->isv_prod_id));
		CL_TRY(set_int(c, "isv_svn", s->isv_svn));
		CL_TRY(cl_claims_set_hex(c, "attributes", s->attributes, sizeof(s->attributes)));
		CL_TRY(set_int(c, "miscselect", s->misc_select));
		CL_TRY(cl_claims_set_hex(c, "cpu_svn", s->cpu_svn, sizeof(s->cpu_svn)));
	}
	*out = c;
	c = NULL;
out:
	json_decref(c);
	return rc;
}

/* ---------------------------------------------------------- verification */

static int load_collateral(const struct cl_verify_opts *o, int is_tdx, const struct pck *pck,
			   struct cl_intel_collateral **out)
{
	*out = NULL;
	if (o->dcap.collateral)
		return cl_intel_collateral_load(o->dcap.collateral, out);
	if (o->dcap.pcs_url && !o->offline)
		return cl_intel_collateral_fetch_at(
			o->dcap.pcs_url, o->cache_dir, is_tdx, pck->info.fmspc,
			pck->platform_ca ? "platform" : "processor", o->at, out);
	return CL_OK;
}

/* The QE report must carry SHA-256(attestation key || QE auth data), zero-padded. */
static int check_qe_binding(const struct cl_dcap_quote *q)
{
	static const uint8_t zero[32];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t h[32];
	int rc = CL_OK;

	CL_CHECK(ctx != NULL, CL_ERR_NOMEM, "out of memory");
	CL_CHECK(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
			 EVP_DigestUpdate(ctx, q->att_key, CL_DCAP_KEY_LEN) == 1 &&
			 EVP_DigestUpdate(ctx, q->cert.qe_auth_data, q->cert.qe_auth_len) == 1 &&
			 EVP_DigestFinal_ex(ctx, h, NULL) == 1,
		 CL_ERR_CRYPTO, "SHA-256 failed");
	CL_CHECK(memcmp(q->cert.qe_report.report_data, h, 32) == 0 &&
			 memcmp(q->cert.qe_report.report_data + 32, zero, 32) == 0,
		 CL_ERR_MISMATCH, "QE report does not vouch for the attestation key");
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

static int verify_sig(EVP_PKEY *key, const uint8_t *msg, size_t len, const uint8_t *sig,
		      const char *what)
{
	uint8_t dgst[32];

	CL_GUARD(cl_digest(CL_SHA256, msg, len, dgst));
	if (cl_ecdsa_verify_digest_raw(key, dgst, sizeof(dgst), sig, sig + 32, 32) != CL_OK)
		CL_BAIL(CL_ERR_SIGNATURE, "%s signature does not verify", what);
	return CL_OK;
}

static int tcb_check(const struct cl_dcap_quote *q, const struct pck *pck,
		     const struct cl_intel_collateral *c, json_t *claims)
{
	struct cl_intel_tcb_input in;
	char status[48] = "";
	json_t *adv = json_object_get(claims, "advisory_ids");
	int rc = CL_OK;

	memset(&in, 0, sizeof(in));
	in.is_tdx = q->tee_type == CL_DCAP_TEE_TDX;
	in.pck = pck->info;
	if (in.is_tdx) {
		memcpy(in.tee_tcb_svn, q->tdx.tee_tcb_svn, sizeof(in.tee_tcb_svn));
		memcpy(in.mr_signer_seam, q->tdx.mr_signer_seam, sizeof(in.mr_signer_seam));
		memcpy(in.seam_attributes, q->tdx.seam_attributes, sizeof(in.seam_attributes));
	}
	in.qe_miscselect = q->cert.qe_report.misc_select;
	memcpy(in.qe_attributes, q->cert.qe_report.attributes, sizeof(in.qe_attributes));
	memcpy(in.qe_mrsigner, q->cert.qe_report.mr_signer, sizeof(in.qe_mrsigner));
	in.qe_isv_prod_id = q->cert.qe_report.isv_prod_id;
	in.qe_isv_svn = q->cert.qe_report.isv_svn;

	CL_CHECK(json_is_array(adv), CL_ERR_INTERNAL, "claims have no advisory_ids");
	rc = cl_intel_tcb_evaluate(c, &in, status, adv);
	status[sizeof(status) - 1] = '\0';
	if (rc == CL_OK && status[0])
		CL_CHECK(json_object_set_new(claims, "tcb_status", json_string(status)) == 0,
			 CL_ERR_NOMEM, "out of memory");
	CL_TRY(rc);
	CL_CHECK(strcmp(status, "Revoked") != 0, CL_ERR_REVOKED, "platform TCB is revoked");
out:
	return rc;
}

/* ------------------------------------------------------------- format */

/*
 * The quote header: version u16, attestation key type u16 (2: ECDSA P-256),
 * TEE type u32. Lengths are checked first: detection is a guess and leaves
 * no failure detail.
 */
static int dcap_header(const uint8_t *ev, size_t n, int *tdx)
{
	struct cl_reader r = cl_reader_make(ev, n);
	uint16_t ver = 0, att_key = 0;
	uint32_t tee = 0;

	if (n < 8 || cl_read_u16le(&r, &ver) != CL_OK || cl_read_u16le(&r, &att_key) != CL_OK ||
	    cl_read_u32le(&r, &tee) != CL_OK || att_key != 2)
		return 0;
	*tdx = tee == CL_DCAP_TEE_TDX;
	if (tee == CL_DCAP_TEE_TDX)
		return ver == 4 || ver == 5;
	return tee == CL_DCAP_TEE_SGX && ver >= 3 && ver <= 5;
}

static int tdx_detect(const uint8_t *ev, size_t n, const json_t *json)
{
	int tdx = 0;

	(void)json;
	return dcap_header(ev, n, &tdx) && tdx;
}

static int sgx_detect(const uint8_t *ev, size_t n, const json_t *json)
{
	int tdx = 0;

	(void)json;
	return dcap_header(ev, n, &tdx) && !tdx;
}

/* Either descriptor takes either kind of quote; the quote says which it is. */
static int dcap_parse(struct cl_evidence *e)
{
	struct cl_dcap_quote *q = calloc(1, sizeof(*q));

	CL_ENSURE_MSG(q, CL_ERR_NOMEM, "out of memory");
	e->parsed = q;
	CL_GUARD(cl_dcap_quote_parse(e->raw, e->raw_len, q));
	e->format = q->tee_type == CL_DCAP_TEE_TDX ? CL_FORMAT_TDX : CL_FORMAT_SGX;
	return CL_OK;
}

static int dcap_claims(const struct cl_evidence *e, json_t **claims)
{
	return quote_claims(e->parsed, claims);
}

static int dcap_verify(const struct cl_evidence *e, const struct cl_verify_opts *o, json_t *c)
{
	const struct cl_dcap_quote *q = e->parsed;
	struct pck pck = {0};
	struct cl_intel_collateral *coll = NULL;
	STACK_OF(X509_CRL) *crls = NULL;
	EVP_PKEY *ak = NULL;
	const uint8_t *pem = NULL;
	size_t pem_len = 0;
	int64_t at = o->at ? o->at : (int64_t)time(NULL);
	int is_tdx = q->tee_type == CL_DCAP_TEE_TDX, from_quote = 0, rc = CL_OK;
	int debug = is_tdx ? (q->tdx.td_attributes[0] & 0x01) : (q->sgx.attributes[0] & 0x02);

	if (q->cert.cert_type == CL_DCAP_CERT_PCK_CHAIN) {
		pem = q->cert.cert_data;
		pem_len = q->cert.cert_len;
		from_quote = 1;
	} else {
		pem = o->dcap.pck_chain;
		pem_len = o->dcap.pck_chain_len;
	}
	CL_CHECK(pem && pem_len, CL_ERR_COLLATERAL,
		 "quote carries no PCK certificate chain (certification data type %u) and none was "
		 "given",
		 q->cert.cert_type);

	/* Fetching needs the FMSPC, so the chain is checked once before the CRLs are known. */
	if (!o->dcap.collateral && o->dcap.pcs_url && !o->offline)
		CL_TRY(pck_chain_verify(pem, pem_len, NULL, from_quote, at, &pck));
	CL_TRY(load_collateral(o, is_tdx, &pck, &coll));
	if (coll) {
		CL_TRY(cl_intel_collateral_verify(coll, at));
		crls = cl_intel_collateral_crls(coll);
	}
	EVP_PKEY_free(pck.key);
	CL_TRY(pck_chain_verify(pem, pem_len, crls, from_quote, at, &pck));
	CL_TRY(cl_claims_set_hex(c, "fmspc", pck.info.fmspc, sizeof(pck.info.fmspc)));

	CL_TRY(verify_sig(pck.key, q->cert.qe_report_raw, CL_DCAP_QE_REPORT_LEN,
			  q->cert.qe_report_sig, "QE report"));
	CL_TRY(check_qe_binding(q));
	CL_TRY(att_key_get(q->att_key, &ak));
	CL_TRY(verify_sig(ak, q->signed_data, q->signed_len, q->signature, "quote"));

	CL_CHECK(!debug || o->allow_debug, CL_ERR_POLICY,
		 is_tdx ? "TD is debuggable (TD_ATTRIBUTES.DEBUG)"
			: "enclave is debuggable (ATTRIBUTES.DEBUG)");
	CL_TRY(cl_check_report_data(o, is_tdx ? q->tdx.report_data : q->sgx.report_data));
	if (coll)
		CL_TRY(tcb_check(q, &pck, coll, c));
out:
	EVP_PKEY_free(ak);
	EVP_PKEY_free(pck.key);
	cl_intel_collateral_free(coll);
	return rc;
}

const struct cl_format_ops cl_tdx_format = {
	.name = "tdx",
	.id = CL_FORMAT_TDX,
	.detect = tdx_detect,
	.parse = dcap_parse,
	.claims = dcap_claims,
	.verify = dcap_verify,
	.free = free,
};

const struct cl_format_ops cl_sgx_format = {
	.name = "sgx",
	.id = CL_FORMAT_SGX,
	.detect = sgx_detect,
	.parse = dcap_parse,
	.claims = dcap_claims,
	.verify = dcap_verify,
	.free = free,
};
