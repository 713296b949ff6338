/*
 * The development-TEE report: parser, writer, signer and verifier.
 *
 * The verifier trusts nothing in the report about who signed it: the root
 * comes from the caller (cl_verify_opts.devtee.root) or the report is
 * refused, so dev-TEE evidence can never pass where a real TEE is expected
 * by accident.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "cloister/crypto.h"
#include "cloister/memo.h"
#include "cloister/devtee_report.h"
#include "format.h"
#include "internal.h"

_Static_assert(CL_DEVTEE_SIGNED_LEN == CL_DEVTEE_MAGIC_LEN + 4 + 4 + 3 * CL_DEVTEE_HASH_LEN +
					       CL_DEVTEE_REPORT_DATA_LEN +
					       CL_DEVTEE_RTMRS * CL_DEVTEE_HASH_LEN,
	       "signed part of the dev-TEE report");
_Static_assert(CL_DEVTEE_REPORT_LEN == CL_DEVTEE_SIGNED_LEN + 2 * CL_DEVTEE_HASH_LEN,
	       "dev-TEE report size");

int cl_devtee_report_parse(const uint8_t *p, size_t n, struct cl_devtee_report *out)
{
	struct cl_reader r = cl_reader_make(p, n < CL_DEVTEE_REPORT_LEN ? n : CL_DEVTEE_REPORT_LEN);
	uint8_t magic[CL_DEVTEE_MAGIC_LEN];
	size_t trailing = 0;

	memset(out, 0, sizeof(*out));
	CL_GUARD(cl_trailing_check(n, CL_DEVTEE_REPORT_LEN, "dev-TEE report", &trailing));
	CL_GUARD(cl_read_bytes(&r, magic, sizeof(magic)));
	CL_ENSURE_MSG(memcmp(magic, CL_DEVTEE_MAGIC, CL_DEVTEE_MAGIC_LEN) == 0, CL_ERR_MALFORMED,
		      "not a dev-TEE report (bad magic)");
	CL_GUARD(cl_read_u32le(&r, &out->version));
	CL_ENSURE_MSG(out->version == CL_DEVTEE_VERSION, CL_ERR_UNSUPPORTED,
		      "dev-TEE report version %u is not supported", out->version);
	CL_GUARD(cl_read_u32le(&r, &out->flags));
	CL_ENSURE_MSG((out->flags & ~CL_DEVTEE_FLAG_DEBUG) == 0, CL_ERR_MALFORMED,
		      "dev-TEE report has unknown flags 0x%x", out->flags);
	CL_GUARD(cl_read_bytes(&r, out->measurement, sizeof(out->measurement)));
	CL_GUARD(cl_read_bytes(&r, out->host_data, sizeof(out->host_data)));
	CL_GUARD(cl_read_bytes(&r, out->report_data, sizeof(out->report_data)));
	for (int i = 0; i < CL_DEVTEE_RTMRS; i++)
		CL_GUARD(cl_read_bytes(&r, out->rtmr[i], sizeof(out->rtmr[i])));
	CL_GUARD(cl_read_bytes(&r, out->signer_id, sizeof(out->signer_id)));
	CL_GUARD(cl_read_bytes(&r, out->sig_r, sizeof(out->sig_r)));
	CL_GUARD(cl_read_bytes(&r, out->sig_s, sizeof(out->sig_s)));
	CL_ENSURE(r.left == 0, CL_ERR_INTERNAL);
	out->trailing = trailing;
	return CL_OK;
}

static uint8_t *put(uint8_t *p, const void *v, size_t n)
{
	memcpy(p, v, n);
	return p + n;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	return put(p, b, 4);
}

void cl_devtee_report_write(const struct cl_devtee_report *r, uint8_t out[CL_DEVTEE_REPORT_LEN])
{
	uint8_t *p = out;

	p = put(p, CL_DEVTEE_MAGIC, CL_DEVTEE_MAGIC_LEN);
	p = put_u32(p, r->version);
	p = put_u32(p, r->flags);
	p = put(p, r->measurement, CL_DEVTEE_HASH_LEN);
	p = put(p, r->host_data, CL_DEVTEE_HASH_LEN);
	p = put(p, r->report_data, CL_DEVTEE_REPORT_DATA_LEN);
	for (int i = 0; i < CL_DEVTEE_RTMRS; i++)
		p = put(p, r->rtmr[i], CL_DEVTEE_HASH_LEN);
	p = put(p, r->signer_id, CL_DEVTEE_HASH_LEN);
	p = put(p, r->sig_r, CL_DEVTEE_HASH_LEN);
	(void)put(p, r->sig_s, CL_DEVTEE_HASH_LEN);
}

int cl_devtee_signer_id(EVP_PKEY *key, uint8_t out[CL_DEVTEE_HASH_LEN])
{
	unsigned char *der = NULL;
	int len = i2d_PUBKEY(key, &der);
	int rc = CL_OK;

	CL_CHECK(len > 0, CL_ERR_CRYPTO, "cannot encode the signing key");
	rc = cl_digest(CL_SHA384, der, (size_t)len, out);
out:
	OPENSSL_free(der);
	return rc;
}

static int is_p384(EVP_PKEY *key)
{
	char group[64] = "";
	size_t glen = 0;

	if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC)
		return 0;
	if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
					   &glen) != 1)
		return 0;
	return strcmp(group, "secp384r1") == 0;
}

int cl_devtee_report_sign(struct cl_devtee_report *r, EVP_PKEY *key,
			  uint8_t out[CL_DEVTEE_REPORT_LEN])
{
	EVP_MD_CTX *md = NULL;
	unsigned char der[160];
	uint8_t rs[2 * CL_DEVTEE_HASH_LEN];
	size_t dlen = sizeof(der);
	int rc = CL_OK;

	CL_CHECK(is_p384(key), CL_ERR_ARG, "the dev-TEE signing key must be EC P-384");
	CL_TRY(cl_devtee_signer_id(key, r->signer_id));
	memset(r->sig_r, 0, sizeof(r->sig_r));
	memset(r->sig_s, 0, sizeof(r->sig_s));
	cl_devtee_report_write(r, out);
	md = EVP_MD_CTX_new();
	CL_CHECK(md, CL_ERR_NOMEM, "out of memory");
	CL_CHECK(EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, key) == 1 &&
			 EVP_DigestSign(md, der, &dlen, out, CL_DEVTEE_SIGNED_LEN) == 1,
		 CL_ERR_CRYPTO, "cannot sign the dev-TEE report");
	CL_TRY(cl_ecdsa_der_to_raw(der, dlen, rs, CL_DEVTEE_HASH_LEN));
	memcpy(r->sig_r, rs, CL_DEVTEE_HASH_LEN);
	memcpy(r->sig_s, rs + CL_DEVTEE_HASH_LEN, CL_DEVTEE_HASH_LEN);
	cl_devtee_report_write(r, out);
out:
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return rc;
}

static int claims_fill(json_t *c, const struct cl_devtee_report *r)
{
	json_t *rtmr = json_array();
	int rc = CL_OK;

	CL_CHECK(rtmr, CL_ERR_NOMEM, "out of memory");
	for (int i = 0; i < CL_DEVTEE_RTMRS; i++) {
		char hex[2 * CL_DEVTEE_HASH_LEN + 1];

		cl_hex_encode(r->rtmr[i], CL_DEVTEE_HASH_LEN, hex);
		CL_CHECK(json_array_append_new(rtmr, json_string(hex)) == 0, CL_ERR_NOMEM,
			 "out of memory");
	}
	CL_TRY(cl_claims_set_hex(c, "measurement", r->measurement, CL_DEVTEE_HASH_LEN));
	CL_TRY(cl_claims_set_hex(c, "report_data", r->report_data, CL_DEVTEE_REPORT_DATA_LEN));
	CL_TRY(cl_claims_set_hex(c, "host_data", r->host_data, CL_DEVTEE_HASH_LEN));
	CL_TRY(cl_claims_set_hex(c, "signer_id", r->signer_id, CL_DEVTEE_HASH_LEN));
	CL_TRY(cl_claims_set_trailing(c, r->trailing));
	CL_CHECK(json_object_set_new(c, "debug", json_boolean(r->flags & CL_DEVTEE_FLAG_DEBUG)) ==
				 0 &&
			 json_object_set_new(c, "version", json_integer(r->version)) == 0 &&
			 json_object_set_new(c, "development", json_true()) == 0 &&
			 json_object_set(c, "rtmr", rtmr) == 0,
		 CL_ERR_NOMEM, "out of memory");
out:
	json_decref(rtmr);
	return rc;
}

/* The caller's root: one self-signed EC P-384 certificate, valid at o->at. */
static int root_check(const struct cl_verify_opts *o, X509 **out)
{
	X509 *root = NULL;
	STACK_OF(X509) *roots = NULL;
	int rc = CL_OK;

	CL_CHECK(o->devtee.root && o->devtee.root[0], CL_ERR_POLICY,
		 "dev-TEE evidence is accepted only with an explicitly trusted development root "
		 "(--devtee-root)");
	CL_TRY(cl_x509_from_any((const uint8_t *)o->devtee.root, strlen(o->devtee.root), &root));
	CL_CHECK(is_p384(X509_get0_pubkey(root)), CL_ERR_CHAIN,
		 "the development root key is not EC P-384");
	roots = sk_X509_new_null();
	CL_CHECK(roots && sk_X509_push(roots, root) > 0, CL_ERR_NOMEM, "out of memory");
	CL_TRY(cl_x509_verify(root, NULL, roots, NULL, o->at, NULL));
	*out = root;
	root = NULL;
out:
	sk_X509_free(roots);
	X509_free(root);
	return rc;
}

/*
 * The checked root, by SHA-256 of the caller's PEM text. A KBS verifies every
 * report against the same root, and decoding it, re-checking it and
 * re-encoding its key (OpenSSL 3's encoders) cost as much as the report
 * signature itself. Only what follows from the certificate's bytes is kept:
 * its validity period bounds the entry and is checked against o->at on every
 * call, and under cl_cache_bypass() the root is checked afresh.
 */

struct root_info {
	X509 *root;
	uint8_t fpr[32];
	uint8_t signer_id[CL_DEVTEE_HASH_LEN];
};

static void root_info_clear(struct root_info *ri)
{
	X509_free(ri->root);
	memset(ri, 0, sizeof(*ri));
}

static int root_ref(void *value, void *out)
{
	const struct root_info *ri = value;

	if (X509_up_ref(ri->root) != 1)
		return 0;
	*(struct root_info *)out = *ri;
	return 1;
}

static void root_drop(void *value)
{
	root_info_clear(value);
	free(value);
}

static struct cl_memo roots = CL_MEMO_INIT("devtee root", 4, CL_MEMO_VERIFIED, root_ref, root_drop);

static int root_info_make(const struct cl_verify_opts *o, struct root_info *ri)
{
	unsigned char *der = NULL;
	int derlen = 0, rc = CL_OK;

	CL_TRY(root_check(o, &ri->root));
	derlen = i2d_X509(ri->root, &der);
	CL_CHECK(derlen > 0, CL_ERR_CRYPTO, "cannot encode the development root");
	CL_TRY(cl_digest(CL_SHA256, der, (size_t)derlen, ri->fpr));
	CL_TRY(cl_devtee_signer_id(X509_get0_pubkey(ri->root), ri->signer_id));
out:
	OPENSSL_free(der);
	return rc;
}

/* A valid time for a root that passed root_check() at some other time. */
static int root_time_ok(X509 *root, int64_t at)
{
	time_t t = at ? (time_t)at : time(NULL);

	CL_ENSURE_MSG(X509_cmp_time(X509_get0_notBefore(root), &t) < 0 &&
			      X509_cmp_time(X509_get0_notAfter(root), &t) > 0,
		      CL_ERR_CHAIN, "the development root is not valid at this time");
	return CL_OK;
}

static int root_get(const struct cl_verify_opts *o, struct root_info *out)
{
	struct cl_memo_key k;
	struct root_info *v = NULL;
	int64_t nb = 0, na = 0;
	int rc = CL_OK;

	memset(out, 0, sizeof(*out));
	CL_ENSURE_MSG(o->devtee.root && o->devtee.root[0], CL_ERR_POLICY,
		      "dev-TEE evidence is accepted only with an explicitly trusted development "
		      "root (--devtee-root)");
	CL_GUARD(cl_memo_key(&k, "devtee root pem", o->devtee.root, strlen(o->devtee.root)));
	if (cl_memo_get(&roots, &k, o->at ? o->at : (int64_t)time(NULL), out)) {
		rc = root_time_ok(out->root, o->at);
		if (rc != CL_OK)
			root_info_clear(out);
		return rc;
	}
	CL_GUARD(root_info_make(o, out));
	if (cl_asn1_time_epoch(X509_get0_notBefore(out->root), &nb) != CL_OK ||
	    cl_asn1_time_epoch(X509_get0_notAfter(out->root), &na) != CL_OK) {
		cl_error_clear();
		return CL_OK; /* not cached */
	}
	v = malloc(sizeof(*v));
	if (v && X509_up_ref(out->root) == 1) {
		*v = *out;
		cl_memo_put(&roots, &k, v, nb, na);
	} else {
		free(v);
	}
	return CL_OK;
}

/* ------------------------------------------------------------- format */

static int devtee_detect(const uint8_t *ev, size_t n, const json_t *json)
{
	(void)json;
	return n >= CL_DEVTEE_MAGIC_LEN && memcmp(ev, CL_DEVTEE_MAGIC, CL_DEVTEE_MAGIC_LEN) == 0;
}

static int devtee_parse(struct cl_evidence *e)
{
	struct cl_devtee_report *r = calloc(1, sizeof(*r));

	CL_ENSURE_MSG(r, CL_ERR_NOMEM, "out of memory");
	e->parsed = r;
	return cl_devtee_report_parse(e->raw, e->raw_len, r);
}

static int devtee_claims(const struct cl_evidence *e, json_t **claims)
{
	const struct cl_devtee_report *r = e->parsed;
	json_t *c = cl_claims_new("devtee");

	CL_ENSURE_MSG(c, CL_ERR_NOMEM, "out of memory");
	*claims = c;
	CL_GUARD(claims_fill(c, r));
	/* The development root stands in for a vendor's: "UpToDate" by definition. */
	CL_ENSURE_MSG(json_object_set_new(c, "tcb_status", json_string("UpToDate")) == 0,
		      CL_ERR_NOMEM, "out of memory");
	return CL_OK;
}

static int devtee_verify(const struct cl_evidence *e, const struct cl_verify_opts *o, json_t *c)
{
	const struct cl_devtee_report *r = e->parsed;
	struct root_info ri = {0};
	int rc = CL_OK;

	CL_TRY(root_get(o, &ri));
	CL_TRY(cl_claims_set_hex(c, "devtee_root", ri.fpr, sizeof(ri.fpr)));
	CL_CHECK(memcmp(ri.signer_id, r->signer_id, sizeof(ri.signer_id)) == 0, CL_ERR_CHAIN,
		 "the dev-TEE report was signed by a different development root");
	CL_TRY(cl_ecdsa_verify_raw(X509_get0_pubkey(ri.root), CL_SHA384, e->raw,
				   CL_DEVTEE_SIGNED_LEN, r->sig_r, r->sig_s, CL_DEVTEE_HASH_LEN));
	CL_CHECK(!(r->flags & CL_DEVTEE_FLAG_DEBUG) || o->allow_debug, CL_ERR_POLICY,
		 "the dev-TEE workload was launched with --debug");
	CL_TRY(cl_check_report_data(o, r->report_data));
	/* The log is believed only as far as its replay equals the signed registers. */
	if (e->env && e->env->have_eventlog)
		CL_TRY(cl_devtee_eventlog_check(e->env->eventlog, e->env->eventlog_len, r->rtmr,
						c));
out:
	root_info_clear(&ri);
	return rc;
}

const struct cl_format_ops cl_devtee_format = {
	.name = "devtee",
	.id = CL_FORMAT_DEVTEE,
	.flags = CL_FMT_ENV_EVENTLOG,
	.detect = devtee_detect,
	.parse = devtee_parse,
	.claims = devtee_claims,
	.verify = devtee_verify,
	.free = free,
};
