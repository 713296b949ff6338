/*
 * Issuing attested certificates: a fresh P-256 key, claims naming its
 * SubjectPublicKeyInfo hash, evidence over the hash of the claims, and a
 * self-signed certificate carrying the evidence twice: as the CCC structure
 * and as the CPU record of a CMW collection (beside any GPU evidence).
 */
#include <string.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "internal.h"

int cl_ratls_attester_fn(void *arg, const uint8_t report_data[CL_REPORT_DATA_LEN],
			 struct cl_attest_evidence *out)
{
	return cl_attest_evidence((struct cl_attester *)arg, report_data, out);
}

/* Evidence over claims for key; *ev holds the CCC structure, *fmt the format. */
static int attest_key(const struct cl_ratls_issue_opts *o, EVP_PKEY *key, const uint8_t *nonce,
		      size_t nonce_len, struct cl_buf *ccc, struct cl_attest_evidence *ev)
{
	enum cl_hash h = o->hash ? o->hash : CL_SHA384;
	struct cl_buf claims = {0};
	uint8_t dig[CL_MAX_DIGEST], rd[CL_REPORT_DATA_LEN];
	size_t dlen = 0;
	uint64_t tag = 0;
	int rc = CL_OK;

	CL_CHECK(o->attest, CL_ERR_ARG, "no evidence source to issue an attested certificate");
	CL_TRY(cl_ratls_spki_hash(key, h, dig, &dlen));
	CL_TRY(cl_ratls_claims_encode(h, dig, nonce, nonce_len, &claims));
	CL_TRY(cl_ratls_report_data(h, claims.data, claims.len, rd));
	CL_TRY(o->attest(o->attest_arg, rd, ev));
	if (ev->format == CL_FORMAT_AUTO)
		ev->format = cl_format_detect(ev->evidence.data, ev->evidence.len);
	CL_TRY(cl_ratls_tag_of(ev->format, &tag));
	CL_TRY(cl_ratls_evidence_encode(tag, ev->evidence.data, ev->evidence.len, claims.data,
					claims.len, ccc));
out:
	cl_buf_free(&claims);
	return rc;
}

static int add_ext(X509 *x, const char *oid, const uint8_t *p, size_t n)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext = NULL;
	int rc = CL_OK;

	CL_CHECK(obj && os && n <= INT32_MAX && ASN1_OCTET_STRING_set(os, p, (int)n) == 1,
		 CL_ERR_NOMEM, "out of memory");
	ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
	CL_CHECK(ext && X509_add_ext(x, ext, -1) == 1, CL_ERR_CRYPTO, "cannot add extension %s",
		 oid);
out:
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(obj);
	return rc;
}

static int add_v3(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext = NULL;
	int rc = CL_OK;

	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	CL_CHECK(ext && X509_add_ext(x, ext, -1) == 1, CL_ERR_CRYPTO, "cannot add %s",
		 OBJ_nid2sn(nid));
out:
	X509_EXTENSION_free(ext);
	return rc;
}

static int san(X509 *x, const char *const *dns)
{
	char text[1024] = "";
	size_t off = 0;

	if (!dns || !dns[0])
		return CL_OK;
	for (size_t i = 0; dns[i]; i++) {
		int w = snprintf(text + off, sizeof(text) - off, "%sDNS:%s", i ? "," : "", dns[i]);

		CL_ENSURE_MSG(w > 0 && (size_t)w < sizeof(text) - off, CL_ERR_ARG,
			      "too many subjectAltNames");
		CL_ENSURE_MSG(strpbrk(dns[i], ",:") == NULL, CL_ERR_ARG, "bad DNS name %s", dns[i]);
		off += (size_t)w;
	}
	return add_v3(x, NID_subject_alt_name, text);
}

static int build(const struct cl_ratls_issue_opts *o, EVP_PKEY *key, const struct cl_buf *ccc,
		 const struct cl_buf *cmw, X509 **out)
{
	X509 *x = X509_new();
	X509_NAME *name = NULL;
	BIGNUM *bn = NULL;
	uint8_t serial[16];
	int64_t now = o->now ? o->now : (int64_t)time(NULL);
	int64_t ttl = o->ttl > 0 ? o->ttl : 3600;
	const char *cn = o->common_name ? o->common_name : "cloister attested TLS";
	int rc = CL_OK;

	CL_CHECK(x, CL_ERR_NOMEM, "out of memory");
	CL_CHECK(RAND_bytes(serial, sizeof(serial)) == 1, CL_ERR_CRYPTO, "no randomness");
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	CL_CHECK(bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)), CL_ERR_CRYPTO,
		 "cannot set the serial number");
	CL_CHECK(X509_set_version(x, 2) == 1, CL_ERR_CRYPTO, "cannot set the version");
	/* A minute of slack for peers whose clocks run a little behind. */
	CL_CHECK(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)(now - 60)) &&
			 ASN1_TIME_set(X509_getm_notAfter(x), (time_t)(now + ttl)),
		 CL_ERR_CRYPTO, "cannot set the validity");
	name = X509_get_subject_name(x);
	CL_CHECK(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
					    -1, -1, 0) == 1 &&
			 X509_set_issuer_name(x, name) == 1 && X509_set_pubkey(x, key) == 1,
		 CL_ERR_CRYPTO, "cannot set the names");
	CL_TRY(add_v3(x, NID_basic_constraints, "critical,CA:FALSE"));
	CL_TRY(add_v3(x, NID_key_usage, "critical,digitalSignature"));
	CL_TRY(add_v3(x, NID_ext_key_usage, "serverAuth,clientAuth"));
	CL_TRY(san(x, o->dns));
	CL_TRY(add_ext(x, CL_RATLS_OID_EVIDENCE, ccc->data, ccc->len));
	CL_TRY(add_ext(x, CL_RATLS_OID_CMW, cmw->data, cmw->len));
	CL_CHECK(X509_sign(x, key, EVP_sha256()) > 0, CL_ERR_CRYPTO, "cannot sign the certificate");
	*out = x;
	x = NULL;
out:
	BN_free(bn);
	X509_free(x);
	return rc;
}

int cl_ratls_issue(const struct cl_ratls_issue_opts *o, EVP_PKEY **key, X509 **cert)
{
	EVP_PKEY *k = NULL;
	struct cl_attest_evidence ev = {0};
	struct cl_buf ccc = {0}, cmw = {0};
	struct cl_ratls_cmw c;
	const char *type = NULL;
	int rc = CL_OK;

	*key = NULL;
	*cert = NULL;
	memset(&c, 0, sizeof(c));
	CL_CHECK(o->n_extra < CL_RATLS_MAX_CMW_RECORDS, CL_ERR_ARG, "too many extra CMW records");
	k = EVP_EC_gen("P-256");
	CL_CHECK(k, CL_ERR_CRYPTO, "cannot generate the TLS key");
	CL_TRY(attest_key(o, k, NULL, 0, &ccc, &ev));
	type = cl_ratls_cmw_type(ev.format);
	CL_CHECK(type, CL_ERR_UNSUPPORTED, "no CMW type for %s evidence",
		 cl_format_name(ev.format));
	snprintf(c.rec[0].label, sizeof(c.rec[0].label), "cpu0");
	snprintf(c.rec[0].type, sizeof(c.rec[0].type), "%s", type);
	c.rec[0].value = ev.evidence.data;
	c.rec[0].value_len = ev.evidence.len;
	c.rec[0].ind = 4; /* evidence */
	for (size_t i = 0; i < o->n_extra; i++)
		c.rec[1 + i] = o->extra[i];
	c.n = 1 + o->n_extra;
	CL_TRY(cl_ratls_cmw_encode(&c, &cmw));
	CL_TRY(build(o, k, &ccc, &cmw, cert));
	*key = k;
	k = NULL;
out:
	EVP_PKEY_free(k);
	cl_attest_evidence_free(&ev);
	cl_buf_free(&ccc);
	cl_buf_free(&cmw);
	ERR_clear_error();
	return rc;
}

int cl_ratls_fresh_evidence(const struct cl_ratls_issue_opts *o, X509 *cert, const uint8_t *nonce,
			    size_t nonce_len, struct cl_buf *out)
{
	struct cl_attest_evidence ev = {0};
	EVP_PKEY *key = X509_get0_pubkey(cert);
	int rc = CL_OK;

	CL_CHECK(key, CL_ERR_ARG, "certificate has no key");
	CL_CHECK(nonce && nonce_len > 0 && nonce_len <= CL_RATLS_MAX_NONCE, CL_ERR_ARG,
		 "the nonce must be 1..%d bytes", CL_RATLS_MAX_NONCE);
	rc = attest_key(o, key, nonce, nonce_len, out, &ev);
out:
	cl_attest_evidence_free(&ev);
	return rc;
}
