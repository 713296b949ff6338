/*
 * Intel DCAP collateral: parse the dcap-qvl JSON layout or a directory of PCS
 * v4 responses into one immutable, shared structure (struct cl_intel_core),
 * and parse the signed TCB info and QE identity strictly. Verification and
 * the caches live in intel_verify.c; TCB status in intel_tcb.c.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cloister/crypto.h"
#include "cloister/memo.h"
#include "intel.h"

static const char *const status_names[CL_TCB_STATUS_COUNT] = {
	"UpToDate",
	"SWHardeningNeeded",
	"ConfigurationNeeded",
	"ConfigurationAndSWHardeningNeeded",
	"OutOfDate",
	"OutOfDateConfigurationNeeded",
	"Revoked",
};

const char *cl_intel_status_name(enum cl_intel_status s)
{
	return (unsigned)s < CL_TCB_STATUS_COUNT ? status_names[s] : "Unknown";
}

/* Platform levels may carry any status; identity levels only these three. */
static int parse_status(const char *s, int identity, enum cl_intel_status *out)
{
	for (int i = 0; i < CL_TCB_STATUS_COUNT; i++) {
		if (strcmp(s, status_names[i]) != 0)
			continue;
		if (identity && i != CL_TCB_UP_TO_DATE && i != CL_TCB_OUT_OF_DATE &&
		    i != CL_TCB_REVOKED)
			break;
		*out = (enum cl_intel_status)i;
		return CL_OK;
	}
	return cl_fail(CL_ERR_MALFORMED, "unknown tcbStatus \"%.40s\"", s);
}

/* ------------------------------------------------------- JSON field helpers */

static int get_str(json_t *o, const char *k, const char **out)
{
	json_t *v = json_object_get(o, k);

	CL_ENSURE_MSG(json_is_string(v), CL_ERR_MALFORMED,
		      "collateral: \"%s\" missing or not a string", k);
	*out = json_string_value(v);
	return CL_OK;
}

static int get_int(json_t *o, const char *k, json_int_t lo, json_int_t hi, json_int_t *out)
{
	json_t *v = json_object_get(o, k);

	CL_ENSURE_MSG(json_is_integer(v), CL_ERR_MALFORMED,
		      "collateral: \"%s\" missing or not an integer", k);
	*out = json_integer_value(v);
	CL_ENSURE_MSG(*out >= lo && *out <= hi, CL_ERR_MALFORMED, "collateral: \"%s\" out of range",
		      k);
	return CL_OK;
}

static int get_hex(json_t *o, const char *k, uint8_t *out, size_t n)
{
	const char *s = NULL;

	CL_GUARD(get_str(o, k, &s));
	CL_ENSURE_MSG(strlen(s) == 2 * n && cl_hex_decode_exact(s, out, n) == CL_OK,
		      CL_ERR_MALFORMED, "collateral: \"%s\" is not %zu hex bytes", k, n);
	return CL_OK;
}

static int get_time(json_t *o, const char *k, int64_t *out)
{
	const char *s = NULL;

	CL_GUARD(get_str(o, k, &s));
	CL_ENSURE_MSG(cl_time_parse(s, out) == CL_OK, CL_ERR_MALFORMED,
		      "collateral: \"%s\" is not a date-time", k);
	return CL_OK;
}

static int get_array(json_t *o, const char *k, size_t min, size_t max, json_t **out)
{
	json_t *v = json_object_get(o, k);

	CL_ENSURE_MSG(json_is_array(v), CL_ERR_MALFORMED,
		      "collateral: \"%s\" missing or not an array", k);
	CL_ENSURE_MSG(json_array_size(v) >= min && json_array_size(v) <= max, CL_ERR_MALFORMED,
		      "collateral: \"%s\" has %zu entries (allowed %zu..%zu)", k,
		      json_array_size(v), min, max);
	*out = v;
	return CL_OK;
}

static int get_advisories(json_t *lvl, json_t **out)
{
	json_t *v = json_object_get(lvl, "advisoryIDs");
	size_t i = 0;
	json_t *e = NULL;

	*out = NULL;
	if (!v)
		return CL_OK;
	CL_GUARD(get_array(lvl, "advisoryIDs", 0, CL_INTEL_MAX_ADVISORIES, out));
	json_array_foreach (v, i, e)
		CL_ENSURE_MSG(json_is_string(e), CL_ERR_MALFORMED,
			      "collateral: advisory id not a string");
	return CL_OK;
}

/* ------------------------------------------------------------- TCB info */

static int parse_components(json_t *tcb, const char *k, uint8_t svn[16], unsigned *count)
{
	json_t *arr = NULL, *e = NULL;
	size_t i = 0;

	CL_GUARD(get_array(tcb, k, 0, CL_INTEL_MAX_COMPONENTS, &arr));
	json_array_foreach (arr, i, e) {
		json_int_t v = 0;

		CL_ENSURE_MSG(json_is_object(e), CL_ERR_MALFORMED,
			      "collateral: %s entry not an object", k);
		CL_GUARD(get_int(e, "svn", 0, 255, &v));
		if (i < 16)
			svn[i] = (uint8_t)v;
	}
	*count = (unsigned)json_array_size(arr);
	return CL_OK;
}

static int parse_tcb_level(json_t *lvl, int version, int is_tdx, struct cl_intel_tcb_level *out)
{
	json_t *tcb = json_object_get(lvl, "tcb");
	const char *st = NULL;
	json_int_t v = 0;
	int64_t date = 0;

	CL_ENSURE_MSG(json_is_object(lvl) && json_is_object(tcb), CL_ERR_MALFORMED,
		      "collateral: tcb level without \"tcb\" object");
	if (version == 2) {
		for (int i = 0; i < 16; i++) {
			char k[32];

			snprintf(k, sizeof(k), "sgxtcbcomp%02dsvn", i + 1);
			CL_GUARD(get_int(tcb, k, 0, 255, &v));
			out->sgx[i] = (uint8_t)v;
		}
		out->sgx_count = 16;
	} else {
		CL_GUARD(parse_components(tcb, "sgxtcbcomponents", out->sgx, &out->sgx_count));
		if (is_tdx)
			CL_GUARD(parse_components(tcb, "tdxtcbcomponents", out->tdx,
						  &out->tdx_count));
	}
	CL_GUARD(get_int(tcb, "pcesvn", 0, 65535, &v));
	out->pcesvn = (uint16_t)v;
	CL_GUARD(get_time(lvl, "tcbDate", &date));
	CL_GUARD(get_str(lvl, "tcbStatus", &st));
	CL_GUARD(parse_status(st, 0, &out->status));
	return get_advisories(lvl, &out->advisories);
}

static int parse_isv_levels(json_t *o, struct cl_intel_isv_level **out, size_t *nout)
{
	json_t *arr = NULL, *lvl = NULL;
	size_t i = 0, n = 0;
	struct cl_intel_isv_level *levels = NULL;

	CL_GUARD(get_array(o, "tcbLevels", 1, CL_INTEL_MAX_TCB_LEVELS, &arr));
	n = json_array_size(arr);
	levels = calloc(n, sizeof(*levels));
	CL_ENSURE_MSG(levels != NULL, CL_ERR_NOMEM, "out of memory");
	json_array_foreach (arr, i, lvl) {
		json_t *tcb = json_object_get(lvl, "tcb");
		const char *st = NULL;
		json_int_t v = 0;
		int64_t date = 0;
		int rc = CL_OK;

		if (!json_is_object(lvl) || !json_is_object(tcb))
			rc = cl_fail(CL_ERR_MALFORMED,
				     "collateral: identity level without \"tcb\"");
		if (rc == CL_OK)
			rc = get_int(tcb, "isvsvn", 0, 65535, &v);
		if (rc == CL_OK)
			rc = get_time(lvl, "tcbDate", &date);
		if (rc == CL_OK)
			rc = get_str(lvl, "tcbStatus", &st);
		if (rc == CL_OK)
			rc = parse_status(st, 1, &levels[i].status);
		if (rc == CL_OK)
			rc = get_advisories(lvl, &levels[i].advisories);
		if (rc < 0) {
			free(levels);
			return rc;
		}
		levels[i].isvsvn = (uint16_t)v;
	}
	*out = levels;
	*nout = n;
	return CL_OK;
}

static int parse_module_ids(json_t *t, struct cl_intel_tcb_info *ti)
{
	json_t *arr = json_object_get(t, "tdxModuleIdentities"), *m = NULL;
	size_t i = 0;

	if (!arr)
		return CL_OK;
	CL_GUARD(get_array(t, "tdxModuleIdentities", 0, CL_INTEL_MAX_MODULE_IDS, &arr));
	ti->modules = calloc(json_array_size(arr) + 1, sizeof(*ti->modules));
	CL_ENSURE_MSG(ti->modules != NULL, CL_ERR_NOMEM, "out of memory");
	json_array_foreach (arr, i, m) {
		struct cl_intel_module_id *id = &ti->modules[i];
		const char *s = NULL;

		CL_ENSURE_MSG(json_is_object(m), CL_ERR_MALFORMED,
			      "collateral: module identity not an object");
		CL_GUARD(get_str(m, "id", &s));
		CL_ENSURE_MSG(strlen(s) == 6 && strncmp(s, "TDX_", 4) == 0 &&
				      cl_hex_decode_exact(s + 4, &id->version, 1) == CL_OK,
			      CL_ERR_MALFORMED, "collateral: bad TDX module identity id");
		CL_GUARD(get_hex(m, "mrsigner", id->mrsigner, 48));
		CL_GUARD(get_hex(m, "attributes", id->attributes, 8));
		CL_GUARD(get_hex(m, "attributesMask", id->attributes_mask, 8));
		CL_GUARD(parse_isv_levels(m, &id->levels, &id->nlevels));
		ti->nmodules = i + 1;
	}
	return CL_OK;
}

static int parse_tcb_info(const char *text, size_t len, struct cl_intel_tcb_info *ti)
{
	json_error_t jerr;
	json_t *t = NULL, *levels = NULL, *lvl = NULL;
	const char *id = NULL;
	json_int_t v = 0;
	size_t i = 0;

	ti->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	CL_ENSURE_MSG(json_is_object(ti->root), CL_ERR_MALFORMED,
		      "TCB info is not a JSON object: %s", jerr.text);
	t = ti->root;
	CL_GUARD(get_str(t, "id", &id));
	if (strcmp(id, "TDX") == 0)
		ti->is_tdx = 1;
	else
		CL_ENSURE_MSG(strcmp(id, "SGX") == 0, CL_ERR_UNSUPPORTED, "TCB info id \"%.16s\"",
			      id);
	CL_GUARD(get_int(t, "version", 2, 3, &v));
	ti->version = (int)v;
	CL_ENSURE_MSG(!(ti->is_tdx && ti->version != 3), CL_ERR_UNSUPPORTED,
		      "TDX TCB info must be version 3");
	CL_GUARD(get_time(t, "issueDate", &ti->issue_date));
	CL_GUARD(get_time(t, "nextUpdate", &ti->next_update));
	CL_GUARD(get_hex(t, "fmspc", ti->fmspc, 6));
	CL_GUARD(get_hex(t, "pceId", ti->pceid, 2));
	CL_GUARD(get_int(t, "tcbType", 0, 0, &v));
	CL_GUARD(get_int(t, "tcbEvaluationDataNumber", 0, INT32_MAX, &v));
	if (ti->is_tdx) {
		json_t *m = json_object_get(t, "tdxModule");

		CL_ENSURE_MSG(json_is_object(m), CL_ERR_MALFORMED,
			      "TDX TCB info without tdxModule");
		CL_GUARD(get_hex(m, "mrsigner", ti->module_mrsigner, 48));
		CL_GUARD(get_hex(m, "attributes", ti->module_attributes, 8));
		CL_GUARD(get_hex(m, "attributesMask", ti->module_attributes_mask, 8));
		ti->have_module = 1;
		CL_GUARD(parse_module_ids(t, ti));
	}
	CL_GUARD(get_array(t, "tcbLevels", 1, CL_INTEL_MAX_TCB_LEVELS, &levels));
	ti->levels = calloc(json_array_size(levels), sizeof(*ti->levels));
	CL_ENSURE_MSG(ti->levels != NULL, CL_ERR_NOMEM, "out of memory");
	json_array_foreach (levels, i, lvl) {
		CL_GUARD(parse_tcb_level(lvl, ti->version, ti->is_tdx, &ti->levels[i]));
		ti->nlevels = i + 1;
	}
	return CL_OK;
}

static int parse_qe_identity(const char *text, size_t len, struct cl_intel_qe_identity *qe)
{
	json_error_t jerr;
	json_t *t = NULL;
	const char *id = NULL;
	json_int_t v = 0;

	qe->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	CL_ENSURE_MSG(json_is_object(qe->root), CL_ERR_MALFORMED,
		      "QE identity is not a JSON object: %s", jerr.text);
	t = qe->root;
	CL_GUARD(get_str(t, "id", &id));
	if (strcmp(id, "TD_QE") == 0)
		qe->is_td_qe = 1;
	else
		CL_ENSURE_MSG(strcmp(id, "QE") == 0, CL_ERR_UNSUPPORTED, "QE identity id \"%.16s\"",
			      id);
	CL_GUARD(get_int(t, "version", 2, 2, &v));
	CL_GUARD(get_time(t, "issueDate", &qe->issue_date));
	CL_GUARD(get_time(t, "nextUpdate", &qe->next_update));
	CL_GUARD(get_int(t, "tcbEvaluationDataNumber", 0, INT32_MAX, &v));
	CL_GUARD(get_hex(t, "miscselect", qe->miscselect, 4));
	CL_GUARD(get_hex(t, "miscselectMask", qe->miscselect_mask, 4));
	CL_GUARD(get_hex(t, "attributes", qe->attributes, 16));
	CL_GUARD(get_hex(t, "attributesMask", qe->attributes_mask, 16));
	CL_GUARD(get_hex(t, "mrsigner", qe->mrsigner, 32));
	CL_GUARD(get_int(t, "isvprodid", 0, 65535, &v));
	qe->isvprodid = (uint16_t)v;
	return parse_isv_levels(t, &qe->levels, &qe->nlevels);
}

/* ------------------------------------------------------------------ core */

static void core_free(struct cl_intel_core *c)
{
	if (!c)
		return;
	free(c->tcb_text);
	free(c->qe_text);
	free(c->tcb_chain_pem);
	free(c->qe_chain_pem);
	free(c->pck_crl_chain_pem);
	sk_X509_CRL_pop_free(c->crls, X509_CRL_free);
	X509_CRL_free(c->root_crl);
	X509_CRL_free(c->pck_crl);
	free(c->tcb.levels);
	for (size_t i = 0; i < c->tcb.nmodules; i++)
		free(c->tcb.modules[i].levels);
	free(c->tcb.modules);
	json_decref(c->tcb.root);
	free(c->qe.levels);
	json_decref(c->qe.root);
	free(c);
}

/*
 * Parsed collateral shared by content hash: a verifier that sees the same
 * collateral bytes again skips parsing them. Parsing proves nothing, so the
 * parse is shared under a cache bypass too; what was verified of it is kept
 * apart, in intel_verify.c, for the window in which it holds.
 */
static int core_ref(void *value, void *out)
{
	struct cl_intel_core *c = value;

	atomic_fetch_add(&c->refs, 1);
	*(struct cl_intel_core **)out = c;
	return 1;
}

static void core_release(void *value)
{
	struct cl_intel_core *c = value;

	if (c && atomic_fetch_sub(&c->refs, 1) == 1)
		core_free(c);
}

static struct cl_memo cores =
	CL_MEMO_INIT("intel collateral", 16, CL_MEMO_DECODED, core_ref, core_release);

/* A CRL given as DER, PEM or hex-encoded DER (PCCS serves hex). */
static int crl_from_bytes(const uint8_t *p, size_t n, X509_CRL **out)
{
	uint8_t *der = NULL;
	size_t dlen = 0;
	int rc = CL_OK, hex = n > 0 && n % 2 == 0;

	CL_ENSURE_MSG(n > 0 && n <= 2 * CL_INTEL_MAX_CRL, CL_ERR_MALFORMED,
		      "CRL empty or too large");
	for (size_t i = 0; hex && i < n; i++)
		hex = (p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f') ||
		      (p[i] >= 'A' && p[i] <= 'F');
	if (!hex)
		return cl_crl_from_any(p, n, out);
	CL_GUARD(cl_hex_decode((const char *)p, n, &der, &dlen));
	rc = cl_crl_from_any(der, dlen, out);
	free(der);
	return rc;
}

/*
 * Parsed CRLs shared by SHA-256 of their bytes: the PCK CRL is the largest
 * item of a collateral set, and it changes far less often than the set.
 * Decoding only: CRL signatures and times are checked on every use.
 */
static int crl_ref(void *value, void *out)
{
	if (X509_CRL_up_ref(value) != 1)
		return 0;
	*(X509_CRL **)out = value;
	return 1;
}

static void crl_drop(void *value)
{
	X509_CRL_free(value);
}

static struct cl_memo crls_decoded = CL_MEMO_INIT("crl", 8, CL_MEMO_DECODED, crl_ref, crl_drop);

static int crl_cached(const uint8_t *p, size_t n, X509_CRL **out, uint8_t hash[32])
{
	struct cl_memo_key k;

	*out = NULL;
	CL_GUARD(cl_digest(CL_SHA256, p, n, hash));
	CL_GUARD(cl_memo_key(&k, "crl bytes", hash, 32));
	if (cl_memo_get(&crls_decoded, &k, 0, out))
		return CL_OK;
	CL_GUARD(crl_from_bytes(p, n, out));
	if (X509_CRL_up_ref(*out) == 1)
		cl_memo_put(&crls_decoded, &k, *out, CL_MEMO_ALWAYS_FROM, CL_MEMO_ALWAYS_UNTIL);
	return CL_OK;
}

static int dup_text(const char *s, size_t n, char **out)
{
	*out = malloc(n + 1);
	CL_ENSURE_MSG(*out != NULL, CL_ERR_NOMEM, "out of memory");
	memcpy(*out, s, n);
	(*out)[n] = '\0';
	return CL_OK;
}

static int get_sig(const char *hex, uint8_t sig[64], const char *what)
{
	CL_ENSURE_MSG(hex && strlen(hex) == 128 && cl_hex_decode_exact(hex, sig, 64) == CL_OK,
		      CL_ERR_MALFORMED, "%s signature is not 64 hex bytes (r || s)", what);
	return CL_OK;
}

int cl_intel_collateral_from_raw(const struct cl_intel_raw *raw, const uint8_t hash[32],
				 struct cl_intel_collateral **out)
{
	struct cl_intel_core *c = calloc(1, sizeof(*c));
	struct cl_intel_collateral *h = calloc(1, sizeof(*h));
	int rc = CL_OK;

	CL_CHECK(c && h, CL_ERR_NOMEM, "out of memory");
	memcpy(c->hash, hash, 32);
	c->refs = 1;
	CL_CHECK(raw->tcb_len <= CL_INTEL_MAX_SIGNED_JSON &&
			 raw->qe_len <= CL_INTEL_MAX_SIGNED_JSON,
		 CL_ERR_MALFORMED, "signed collateral JSON larger than %u bytes",
		 CL_INTEL_MAX_SIGNED_JSON);
	CL_TRY(dup_text(raw->tcb_text, raw->tcb_len, &c->tcb_text));
	c->tcb_len = raw->tcb_len;
	CL_TRY(dup_text(raw->qe_text, raw->qe_len, &c->qe_text));
	c->qe_len = raw->qe_len;
	CL_TRY(get_sig(raw->tcb_sig_hex, c->tcb_sig, "TCB info"));
	CL_TRY(get_sig(raw->qe_sig_hex, c->qe_sig, "QE identity"));
	c->tcb_chain_len = strlen(raw->tcb_chain);
	c->qe_chain_len = strlen(raw->qe_chain);
	c->pck_crl_chain_len = strlen(raw->pck_crl_chain);
	CL_CHECK(c->tcb_chain_len <= CL_MAX_PEM_CHAIN && c->qe_chain_len <= CL_MAX_PEM_CHAIN &&
			 c->pck_crl_chain_len <= CL_MAX_PEM_CHAIN,
		 CL_ERR_MALFORMED, "issuer chain larger than %d bytes", CL_MAX_PEM_CHAIN);
	CL_TRY(dup_text(raw->tcb_chain, c->tcb_chain_len, &c->tcb_chain_pem));
	CL_TRY(dup_text(raw->qe_chain, c->qe_chain_len, &c->qe_chain_pem));
	CL_TRY(dup_text(raw->pck_crl_chain, c->pck_crl_chain_len, &c->pck_crl_chain_pem));
	CL_TRY(crl_cached(raw->root_crl, raw->root_crl_len, &c->root_crl, c->root_crl_hash));
	CL_TRY(crl_cached(raw->pck_crl, raw->pck_crl_len, &c->pck_crl, c->pck_crl_hash));
	c->crls = sk_X509_CRL_new_null();
	CL_CHECK(c->crls && sk_X509_CRL_push(c->crls, c->root_crl) > 0, CL_ERR_NOMEM,
		 "out of memory");
	X509_CRL_up_ref(c->root_crl);
	CL_CHECK(sk_X509_CRL_push(c->crls, c->pck_crl) > 0, CL_ERR_NOMEM, "out of memory");
	X509_CRL_up_ref(c->pck_crl);
	CL_TRY(parse_tcb_info(c->tcb_text, c->tcb_len, &c->tcb));
	CL_TRY(parse_qe_identity(c->qe_text, c->qe_len, &c->qe));
	{
		struct cl_memo_key k;

		memcpy(k.b, hash, sizeof(k.b));
		c->refs = 2; /* the handle's and the cache's */
		cl_memo_put(&cores, &k, c, CL_MEMO_ALWAYS_FROM, CL_MEMO_ALWAYS_UNTIL);
	}
	h->core = c;
	c = NULL;
	*out = h;
	h = NULL;
out:
	core_free(c);
	free(h);
	return rc;
}

/* The content hash is already SHA-256 over a kind tag and every byte. */
static int handle_from_cache(const uint8_t hash[32], struct cl_intel_collateral **out)
{
	struct cl_memo_key k;
	struct cl_intel_core *c = NULL;
	struct cl_intel_collateral *h = NULL;

	memcpy(k.b, hash, sizeof(k.b));
	if (!cl_memo_get(&cores, &k, 0, &c))
		return 0;
	h = calloc(1, sizeof(*h));
	if (!h) {
		core_release(c);
		return cl_fail(CL_ERR_NOMEM, "out of memory");
	}
	h->core = c;
	*out = h;
	return 1;
}

static int content_hash(const char *domain, const uint8_t *p, size_t n, uint8_t hash[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(ctx, domain, strlen(domain) + 1) == 1 &&
		 EVP_DigestUpdate(ctx, p, n) == 1 && EVP_DigestFinal_ex(ctx, hash, NULL) == 1;

	EVP_MD_CTX_free(ctx);
	return ok ? CL_OK : cl_fail(CL_ERR_CRYPTO, "SHA-256 failed");
}

/* ------------------------------------------------------ dcap-qvl JSON layout */

int cl_intel_collateral_parse_json(const uint8_t *p, size_t n, struct cl_intel_collateral **out)
{
	static const char *const keys[] = {
		"pck_crl_issuer_chain",	    "root_ca_crl", "pck_crl",
		"tcb_info_issuer_chain",    "tcb_info",	   "tcb_info_signature",
		"qe_identity_issuer_chain", "qe_identity", "qe_identity_signature"};
	json_error_t jerr;
	json_t *root = NULL;
	struct cl_intel_raw raw = {0};
	uint8_t hash[32];
	int rc = CL_OK;

	*out = NULL;
	CL_ENSURE_MSG(n <= CL_INTEL_MAX_COLLATERAL, CL_ERR_MALFORMED,
		      "collateral larger than %u bytes", CL_INTEL_MAX_COLLATERAL);
	CL_GUARD(content_hash("cloister intel collateral json", p, n, hash));
	rc = handle_from_cache(hash, out);
	if (rc != 0)
		return rc < 0 ? rc : CL_OK;
	root = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &jerr);
	CL_CHECK(json_is_object(root), CL_ERR_MALFORMED, "collateral is not a JSON object: %s",
		 jerr.text);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		CL_CHECK(json_is_string(json_object_get(root, keys[i])), CL_ERR_MALFORMED,
			 "collateral: \"%s\" missing or not a string", keys[i]);
#define S(k) json_string_value(json_object_get(root, k))
#define L(k) json_string_length(json_object_get(root, k))
	raw.tcb_text = S("tcb_info");
	raw.tcb_len = L("tcb_info");
	raw.tcb_sig_hex = S("tcb_info_signature");
	raw.qe_text = S("qe_identity");
	raw.qe_len = L("qe_identity");
	raw.qe_sig_hex = S("qe_identity_signature");
	raw.tcb_chain = S("tcb_info_issuer_chain");
	raw.qe_chain = S("qe_identity_issuer_chain");
	raw.pck_crl_chain = S("pck_crl_issuer_chain");
	raw.root_crl = (const uint8_t *)S("root_ca_crl");
	raw.root_crl_len = L("root_ca_crl");
	raw.pck_crl = (const uint8_t *)S("pck_crl");
	raw.pck_crl_len = L("pck_crl");
#undef S
#undef L
	rc = cl_intel_collateral_from_raw(&raw, hash, out);
out:
	json_decref(root);
	return rc;
}

/* ------------------------------------------------------ PCS directory layout */

enum { F_TCB, F_TCB_CHAIN, F_QE, F_QE_CHAIN, F_PCK_CRL, F_PCK_CRL_CHAIN, F_ROOT_CRL, F_COUNT };

static const char *const dir_files[F_COUNT][2] = {
	[F_TCB] = {"tcbinfo.json", NULL},
	[F_TCB_CHAIN] = {"tcbinfo-issuer-chain.pem", NULL},
	[F_QE] = {"qeidentity.json", NULL},
	[F_QE_CHAIN] = {"qeidentity-issuer-chain.pem", NULL},
	[F_PCK_CRL] = {"pckcrl.der", "pckcrl.pem"},
	[F_PCK_CRL_CHAIN] = {"pckcrl-issuer-chain.pem", NULL},
	[F_ROOT_CRL] = {"rootcacrl.der", "rootcacrl.pem"},
};

static int read_dir_file(const char *dir, int which, struct cl_buf *out)
{
	char path[4096];

	for (int alt = 0; alt < 2 && dir_files[which][alt]; alt++) {
		int n = snprintf(path, sizeof(path), "%s/%s", dir, dir_files[which][alt]);

		CL_ENSURE_MSG(n > 0 && (size_t)n < sizeof(path), CL_ERR_ARG,
			      "collateral path too long");
		if (access(path, R_OK) == 0)
			return cl_read_file(path, CL_INTEL_MAX_COLLATERAL, out);
	}
	return cl_fail(CL_ERR_COLLATERAL, "collateral directory %s has no %s", dir,
		       dir_files[which][0]);
}

/*
 * A PCS body {"tcbInfo": {...}, "signature": "hex"}: the signed span is the
 * exact bytes of the member's value; jansson confirms the whole body.
 */
static int pcs_body(const struct cl_buf *b, const char *member, const char **text, size_t *len,
		    const char **sig, json_t **root)
{
	json_error_t jerr;
	size_t off = 0;

	CL_GUARD(cl_intel_json_member_span(b->data, b->len, member, &off, len));
	*root = json_loadb((const char *)b->data, b->len, JSON_REJECT_DUPLICATES, &jerr);
	CL_ENSURE_MSG(json_is_object(*root), CL_ERR_MALFORMED, "PCS %s body is not JSON: %s",
		      member, jerr.text);
	CL_ENSURE_MSG(
		json_object_size(*root) == 2 && json_is_object(json_object_get(*root, member)) &&
			json_is_string(json_object_get(*root, "signature")),
		CL_ERR_MALFORMED, "PCS body must hold exactly \"%s\" and \"signature\"", member);
	*text = (const char *)b->data + off;
	*sig = json_string_value(json_object_get(*root, "signature"));
	return CL_OK;
}

int cl_intel_collateral_load_dir(const char *dir, struct cl_intel_collateral **out)
{
	struct cl_buf f[F_COUNT];
	struct cl_intel_raw raw = {0};
	json_t *tcb_root = NULL, *qe_root = NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t hash[32];
	int rc = CL_OK;

	memset(f, 0, sizeof(f));
	*out = NULL;
	CL_CHECK(md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1, CL_ERR_CRYPTO,
		 "SHA-256 failed");
	CL_CHECK(EVP_DigestUpdate(md, "cloister intel collateral dir", 30) == 1, CL_ERR_CRYPTO,
		 "SHA-256 failed");
	for (int i = 0; i < F_COUNT; i++) {
		uint64_t len = 0;

		CL_TRY(read_dir_file(dir, i, &f[i]));
		len = f[i].len;
		CL_CHECK(EVP_DigestUpdate(md, &len, sizeof(len)) == 1 &&
				 EVP_DigestUpdate(md, f[i].data, f[i].len) == 1,
			 CL_ERR_CRYPTO, "SHA-256 failed");
	}
	CL_CHECK(EVP_DigestFinal_ex(md, hash, NULL) == 1, CL_ERR_CRYPTO, "SHA-256 failed");
	rc = handle_from_cache(hash, out);
	if (rc != 0) {
		rc = rc < 0 ? rc : CL_OK;
		goto out;
	}
	CL_TRY(pcs_body(&f[F_TCB], "tcbInfo", &raw.tcb_text, &raw.tcb_len, &raw.tcb_sig_hex,
			&tcb_root));
	CL_TRY(pcs_body(&f[F_QE], "enclaveIdentity", &raw.qe_text, &raw.qe_len, &raw.qe_sig_hex,
			&qe_root));
	CL_CHECK(strlen((char *)f[F_TCB_CHAIN].data) == f[F_TCB_CHAIN].len &&
			 strlen((char *)f[F_QE_CHAIN].data) == f[F_QE_CHAIN].len &&
			 strlen((char *)f[F_PCK_CRL_CHAIN].data) == f[F_PCK_CRL_CHAIN].len,
		 CL_ERR_MALFORMED, "issuer chain file holds a NUL byte");
	raw.tcb_chain = (const char *)f[F_TCB_CHAIN].data;
	raw.qe_chain = (const char *)f[F_QE_CHAIN].data;
	raw.pck_crl_chain = (const char *)f[F_PCK_CRL_CHAIN].data;
	raw.pck_crl = f[F_PCK_CRL].data;
	raw.pck_crl_len = f[F_PCK_CRL].len;
	raw.root_crl = f[F_ROOT_CRL].data;
	raw.root_crl_len = f[F_ROOT_CRL].len;
	rc = cl_intel_collateral_from_raw(&raw, hash, out);
out:
	json_decref(tcb_root);
	json_decref(qe_root);
	EVP_MD_CTX_free(md);
	for (int i = 0; i < F_COUNT; i++)
		cl_buf_free(&f[i]);
	return rc;
}

int cl_intel_collateral_load(const char *path, struct cl_intel_collateral **out)
{
	struct stat st;
	struct cl_buf b = {0};
	int rc = CL_OK;

	*out = NULL;
	CL_ENSURE_MSG(path != NULL, CL_ERR_ARG, "no collateral path");
	if (stat(path, &st) != 0)
		return cl_fail(CL_ERR_IO, "cannot read collateral %s: %s", path, strerror(errno));
	if (S_ISDIR(st.st_mode))
		return cl_intel_collateral_load_dir(path, out);
	CL_GUARD(cl_read_file(path, CL_INTEL_MAX_COLLATERAL, &b));
	rc = cl_intel_collateral_parse_json(b.data, b.len, out);
	cl_buf_free(&b);
	return rc;
}

void cl_intel_collateral_free(struct cl_intel_collateral *c)
{
	if (!c)
		return;
	core_release(c->core);
	free(c);
}

STACK_OF(X509_CRL) * cl_intel_collateral_crls(struct cl_intel_collateral *c)
{
	return c && c->core ? c->core->crls : NULL;
}
