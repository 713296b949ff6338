/*
 * Verifying attested certificates, and the OpenSSL hook that does it during
 * the handshake. A verdict is cached under the SHA-256 of the certificate's
 * DER until the certificate expires or the cache TTL passes, whichever is
 * first; any change to the certificate (key, evidence, dates) changes the
 * key, and the handshake still proves the peer holds the private key.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "internal.h"

struct cache_entry {
	uint8_t fp[32];
	int64_t expires;
	enum cl_format format;
	enum cl_tier tier;
	const char *source;
};

struct cl_ratls_verifier {
	struct cl_ratls_verifier_opts o;
	pthread_mutex_t lock;
	struct cache_entry *cache;
	size_t n, max;
};

int cl_ratls_verifier_new(const struct cl_ratls_verifier_opts *o, struct cl_ratls_verifier **out)
{
	struct cl_ratls_verifier *v = calloc(1, sizeof(*v));

	CL_ENSURE_MSG(v, CL_ERR_NOMEM, "out of memory");
	v->o = *o;
	v->max = o->cache_max ? o->cache_max : 256;
	if (!v->o.cache_ttl)
		v->o.cache_ttl = 3600;
	v->cache = calloc(v->max, sizeof(*v->cache));
	if (!v->cache) {
		free(v);
		CL_BAIL(CL_ERR_NOMEM, "out of memory");
	}
	pthread_mutex_init(&v->lock, NULL);
	*out = v;
	return CL_OK;
}

void cl_ratls_verifier_free(struct cl_ratls_verifier *v)
{
	if (!v)
		return;
	pthread_mutex_destroy(&v->lock);
	free(v->cache);
	free(v);
}

size_t cl_ratls_verifier_cached(struct cl_ratls_verifier *v)
{
	size_t n = 0;

	pthread_mutex_lock(&v->lock);
	n = v->n;
	pthread_mutex_unlock(&v->lock);
	return n;
}

void cl_ratls_result_free(struct cl_ratls_result *res)
{
	if (!res)
		return;
	json_decref(res->claims);
	res->claims = NULL;
}

static int64_t now_of(const struct cl_ratls_verifier *v)
{
	return v->o.verify.at ? v->o.verify.at : (int64_t)time(NULL);
}

static int cache_get(struct cl_ratls_verifier *v, const uint8_t fp[32], int64_t now,
		     struct cl_ratls_result *res)
{
	int hit = 0;

	pthread_mutex_lock(&v->lock);
	for (size_t i = 0; i < v->n; i++) {
		if (memcmp(v->cache[i].fp, fp, 32) != 0)
			continue;
		if (v->cache[i].expires > now) {
			res->format = v->cache[i].format;
			res->tier = v->cache[i].tier;
			res->source = v->cache[i].source;
			hit = 1;
		} else {
			v->cache[i] = v->cache[--v->n];
		}
		break;
	}
	pthread_mutex_unlock(&v->lock);
	return hit;
}

static void cache_put(struct cl_ratls_verifier *v, const struct cache_entry *e, int64_t now)
{
	size_t slot = 0;

	pthread_mutex_lock(&v->lock);
	if (v->n < v->max) {
		slot = v->n++;
	} else {
		/* Full: an expired entry goes first, else the one expiring soonest. */
		for (size_t i = 1; i < v->n; i++)
			if (v->cache[slot].expires > now &&
			    v->cache[i].expires < v->cache[slot].expires)
				slot = i;
	}
	v->cache[slot] = *e;
	pthread_mutex_unlock(&v->lock);
}

/* The appraisal verdict for verified claims. */
static int appraise(struct cl_ratls_verifier *v, const json_t *claims, const uint8_t rd[64],
		    struct cl_ratls_result *res)
{
	struct cl_appraise_ctx ctx = {NULL, 0, rd, v->o.verify.at};
	struct cl_appraisal a = {0};
	enum cl_tier worst = v->o.allow_warning ? CL_TIER_WARNING : CL_TIER_AFFIRMING;
	char why[400] = "";
	size_t off = 0, i = 0;
	json_t *r = NULL;
	int rc = CL_OK;

	CL_TRY(cl_policy_appraise(v->o.policy, claims, v->o.rv, &ctx, &a));
	res->tier = a.status;
	json_array_foreach (a.reasons, i, r) {
		int w = snprintf(why + off, sizeof(why) - off, "%s%s", off ? "; " : "",
				 json_string_value(r) ? json_string_value(r) : "?");

		if (w < 0 || (size_t)w >= sizeof(why) - off)
			break;
		off += (size_t)w;
	}
	CL_CHECK(a.status != CL_TIER_NONE && a.status <= worst, CL_ERR_POLICY,
		 "appraisal is %s: %s", cl_tier_name(a.status), off ? why : "no affirming claims");
out:
	cl_appraisal_free(&a);
	return rc;
}

/* Evidence verified with REPORT_DATA demanded, then appraised. */
static int evidence_check(struct cl_ratls_verifier *v, enum cl_format fmt, const uint8_t *ev,
			  size_t n, const uint8_t rd[64], struct cl_ratls_result *res)
{
	struct cl_verify_opts o = v->o.verify;
	struct cl_verify_result vr = {0};
	int rc = CL_OK;

	o.format = fmt;
	memcpy(o.report_data, rd, CL_REPORT_DATA_LEN);
	o.have_report_data = 1;
	rc = cl_verify_evidence(ev, n, &o, &vr);
	res->format = vr.format;
	res->claims = vr.claims;
	vr.claims = NULL;
	if (rc != CL_OK) {
		rc = cl_fail(vr.status, "%s%s",
			     vr.status == CL_ERR_MISMATCH
				     ? "key binding broken: the evidence does not cover this key: "
				     : "evidence: ",
			     vr.reason);
		goto out;
	}
	rc = appraise(v, res->claims, rd, res);
out:
	cl_verify_result_free(&vr);
	return rc;
}

/* The CCC structure for key (and nonce, when demanded). */
static int ccc_check(struct cl_ratls_verifier *v, const uint8_t *p, size_t n, EVP_PKEY *key,
		     const uint8_t *nonce, size_t nonce_len, struct cl_ratls_evidence *e,
		     struct cl_ratls_result *res)
{
	enum cl_format fmt = CL_FORMAT_AUTO, got = CL_FORMAT_AUTO;
	uint8_t dig[CL_MAX_DIGEST], rd[CL_REPORT_DATA_LEN];
	size_t dlen = 0;

	char why[256];
	int rc = cl_ratls_evidence_parse(p, n, e);

	if (rc != CL_OK) {
		snprintf(why, sizeof(why), "%s", cl_error_detail());
		CL_BAIL(rc, "malformed RA-TLS extension: %s", why);
	}
	CL_GUARD(cl_ratls_format_of(e->tag, &fmt));
	got = cl_format_detect(e->evidence, e->evidence_len);
	if (fmt == CL_FORMAT_AUTO)
		CL_ENSURE_MSG(got == CL_FORMAT_SGX || got == CL_FORMAT_TDX, CL_ERR_MALFORMED,
			      "RA-TLS tag says Intel quote, the evidence is not one");
	else
		CL_ENSURE_MSG(got == fmt, CL_ERR_MALFORMED,
			      "RA-TLS tag says %s, the evidence is not", cl_format_name(fmt));
	CL_GUARD(cl_ratls_spki_hash(key, e->hash, dig, &dlen));
	CL_ENSURE_MSG(dlen == e->pubkey_hash_len && cl_ct_equal(dig, e->pubkey_hash, dlen),
		      CL_ERR_MISMATCH,
		      "key binding broken: pubkey-hash does not match the certificate's key");
	if (nonce) {
		CL_ENSURE_MSG(e->nonce && e->nonce_len == nonce_len &&
				      cl_ct_equal(e->nonce, nonce, nonce_len),
			      CL_ERR_MISMATCH, "the evidence is not bound to our nonce");
	}
	CL_GUARD(cl_ratls_report_data(e->hash, e->claims, e->claims_len, rd));
	res->source = "ccc";
	return evidence_check(v, got, e->evidence, e->evidence_len, rd, res);
}

static int gramine_check(struct cl_ratls_verifier *v, const uint8_t *p, size_t n, EVP_PKEY *key,
			 struct cl_ratls_result *res)
{
	enum cl_format got = cl_format_detect(p, n);
	uint8_t rd[CL_REPORT_DATA_LEN];
	size_t dlen = 0;

	CL_ENSURE_MSG(got == CL_FORMAT_SGX, CL_ERR_MALFORMED,
		      "Gramine RA-TLS extension does not hold an SGX quote");
	memset(rd, 0, sizeof(rd));
	CL_GUARD(cl_ratls_spki_hash(key, CL_SHA256, rd, &dlen));
	res->source = "gramine";
	return evidence_check(v, got, p, n, rd, res);
}

/* Every CMW record we can verify must be the CCC evidence; others are noted. */
static int cmw_check(X509 *cert, const struct cl_ratls_evidence *e, enum cl_format fmt)
{
	const uint8_t *p = NULL;
	size_t n = 0;
	struct cl_ratls_cmw c;
	const char *ours = cl_ratls_cmw_type(fmt);

	if (cl_x509_ext_by_oid(cert, CL_RATLS_OID_CMW, &p, &n) != CL_OK) {
		cl_error_clear();
		return CL_OK;
	}
	if (cl_ratls_cmw_parse(p, n, &c) != CL_OK) {
		char why[256];

		snprintf(why, sizeof(why), "%s", cl_error_detail());
		CL_BAIL(CL_ERR_MALFORMED, "malformed CMW extension: %s", why);
	}
	for (size_t i = 0; i < c.n; i++) {
		const struct cl_ratls_cmw_record *r = &c.rec[i];

		if (strncmp(r->type, "application/vnd.cloister.", 25) == 0) {
			CL_ENSURE_MSG(e && ours && strcmp(r->type, ours) == 0 &&
					      r->value_len == e->evidence_len &&
					      memcmp(r->value, e->evidence, r->value_len) == 0,
				      CL_ERR_MISMATCH,
				      "CMW record %s is not the certificate's verified evidence",
				      r->label);
		} else {
			cl_log_info("attested TLS: CMW record %s (%s) is not appraised", r->label,
				    r->type[0] ? r->type : "content-format");
		}
	}
	return CL_OK;
}

static int one_ext(X509 *cert, const char *oid, const uint8_t **p, size_t *n)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	int first = -1, second = -1;

	CL_ENSURE_MSG(obj, CL_ERR_INTERNAL, "bad OID");
	first = X509_get_ext_by_OBJ(cert, obj, -1);
	second = first >= 0 ? X509_get_ext_by_OBJ(cert, obj, first) : -1;
	ASN1_OBJECT_free(obj);
	if (first < 0)
		return CL_ERR_NOT_FOUND;
	CL_ENSURE_MSG(second < 0, CL_ERR_MALFORMED, "certificate repeats extension %s", oid);
	return cl_x509_ext_by_oid(cert, oid, p, n);
}

static int cert_check(struct cl_ratls_verifier *v, X509 *cert, const uint8_t *nonce,
		      size_t nonce_len, struct cl_ratls_result *res, int64_t *not_after)
{
	EVP_PKEY *key = X509_get0_pubkey(cert);
	struct cl_ratls_evidence e;
	const uint8_t *p = NULL;
	size_t n = 0;
	int64_t nb = 0, na = 0, now = now_of(v);
	int rc = CL_OK;

	CL_ENSURE_MSG(key, CL_ERR_MALFORMED, "certificate has no usable public key");
	CL_GUARD(cl_asn1_time_epoch(X509_get0_notBefore(cert), &nb));
	CL_GUARD(cl_asn1_time_epoch(X509_get0_notAfter(cert), &na));
	CL_ENSURE_MSG(now >= nb, CL_ERR_EXPIRED, "certificate is not valid yet");
	CL_ENSURE_MSG(now <= na, CL_ERR_EXPIRED, "certificate expired");
	*not_after = na;
	CL_ENSURE_MSG(X509_verify(cert, key) == 1, CL_ERR_SIGNATURE,
		      "certificate is not signed by its own key");
	rc = one_ext(cert, CL_RATLS_OID_EVIDENCE, &p, &n);
	if (rc == CL_OK) {
		CL_GUARD(ccc_check(v, p, n, key, nonce, nonce_len, &e, res));
		return cmw_check(cert, &e, res->format);
	}
	CL_GUARD(rc == CL_ERR_NOT_FOUND ? CL_OK : rc);
	rc = one_ext(cert, CL_RATLS_OID_GRAMINE, &p, &n);
	CL_ENSURE_MSG(rc != CL_ERR_NOT_FOUND, CL_ERR_NOT_FOUND,
		      "certificate carries no attestation evidence");
	CL_GUARD(rc);
	CL_ENSURE_MSG(!nonce, CL_ERR_UNSUPPORTED, "Gramine's legacy extension carries no nonce");
	return gramine_check(v, p, n, key, res);
}

int cl_ratls_verify_cert(struct cl_ratls_verifier *v, X509 *cert, const uint8_t *nonce,
			 size_t nonce_len, struct cl_ratls_result *res)
{
	uint8_t fp[32];
	unsigned int fplen = 0;
	int64_t now = now_of(v), na = 0;
	struct cache_entry e;
	int rc = CL_OK;

	memset(res, 0, sizeof(*res));
	if (X509_digest(cert, EVP_sha256(), fp, &fplen) != 1 || fplen != 32) {
		rc = cl_fail(CL_ERR_CRYPTO, "cannot hash the certificate");
		goto out;
	}
	if (!nonce && v->o.cache_ttl > 0 && cache_get(v, fp, now, res)) {
		res->cached = 1;
		goto out;
	}
	rc = cert_check(v, cert, nonce, nonce_len, res, &na);
	if (rc == CL_OK && !nonce && v->o.cache_ttl > 0) {
		memset(&e, 0, sizeof(e));
		memcpy(e.fp, fp, 32);
		e.expires = now + v->o.cache_ttl < na ? now + v->o.cache_ttl : na;
		e.format = res->format;
		e.tier = res->tier;
		e.source = res->source;
		cache_put(v, &e, now);
	}
out:
	res->status = rc;
	if (rc != CL_OK)
		snprintf(res->reason, sizeof(res->reason), "%s", cl_error_detail());
	ERR_clear_error();
	return rc;
}

int cl_ratls_verify_fresh(struct cl_ratls_verifier *v, const uint8_t *p, size_t n, EVP_PKEY *key,
			  const uint8_t *nonce, size_t nonce_len, struct cl_ratls_result *res)
{
	struct cl_ratls_evidence e;
	int rc = CL_OK;

	memset(res, 0, sizeof(*res));
	if (!nonce || !nonce_len)
		rc = cl_fail(CL_ERR_ARG, "fresh evidence needs a nonce");
	else
		rc = ccc_check(v, p, n, key, nonce, nonce_len, &e, res);
	res->status = rc;
	if (rc != CL_OK)
		snprintf(res->reason, sizeof(res->reason), "%s", cl_error_detail());
	ERR_clear_error();
	return rc;
}

/* ----------------------------------------------------------- OpenSSL hook */

static int reason_idx = -1;
static pthread_once_t reason_once = PTHREAD_ONCE_INIT;

static void reason_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

static void reason_init(void)
{
	reason_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, reason_free);
}

static void set_reason(SSL *ssl, const char *why)
{
	char *old = NULL;

	if (reason_idx < 0)
		return;
	old = SSL_get_ex_data(ssl, reason_idx);
	free(old);
	(void)SSL_set_ex_data(ssl, reason_idx, why ? strdup(why) : NULL);
}

const char *cl_ratls_ssl_reason(const SSL *ssl)
{
	pthread_once(&reason_once, reason_init);
	return reason_idx < 0 ? NULL : SSL_get_ex_data(ssl, reason_idx);
}

/* Replaces chain building: the attestation, not a CA, vouches for the key. */
static int verify_cb(X509_STORE_CTX *sctx, void *arg)
{
	struct cl_ratls_verifier *v = arg;
	SSL *ssl = X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx());
	X509 *cert = X509_STORE_CTX_get0_cert(sctx);
	struct cl_ratls_result res;

	if (!cert) {
		if (ssl)
			set_reason(ssl, "the peer sent no certificate");
		X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	if (cl_ratls_verify_cert(v, cert, NULL, 0, &res) != CL_OK) {
		if (ssl)
			set_reason(ssl, res.reason);
		cl_ratls_result_free(&res);
		X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	cl_log_debug("attested TLS: peer verified (%s evidence, %s%s)", cl_format_name(res.format),
		     cl_tier_name(res.tier), res.cached ? ", cached" : "");
	cl_ratls_result_free(&res);
	X509_STORE_CTX_set_error(sctx, X509_V_OK);
	return 1;
}

int cl_ratls_ssl_ctx_verify(SSL_CTX *ctx, struct cl_ratls_verifier *v, int require)
{
	pthread_once(&reason_once, reason_init);
	CL_ENSURE_MSG(reason_idx >= 0, CL_ERR_CRYPTO, "no SSL ex_data index");
	SSL_CTX_set_cert_verify_callback(ctx, verify_cb, v);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (require ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
			   NULL);
	return CL_OK;
}
