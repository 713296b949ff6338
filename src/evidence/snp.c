/*
 * AMD SEV-SNP attestation reports: parse, verify against a VCEK or VLEK whose
 * chain ends at a pinned ARK, and turn into claims.
 *
 * Chain work (two RSA-4096 PSS checks plus X.509 path building) costs far more
 * than the report's one P-384 signature, so verified endorsement keys are kept
 * in a small process-wide cache keyed by the certificate bytes. An entry also
 * records the chain's common validity window, so a hit at any time inside it
 * is exactly what a fresh chain check at that time would conclude.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cloister/amd.h"
#include "cloister/crypto.h"
#include "cloister/endorse.h"
#include "cloister/memo.h"
#include "cloister/snp.h"
#include "envelope.h"
#include "format.h"
#include "internal.h"

/* ---------------------------------------------------------------- parsing */

static int mbz(struct cl_reader *r, size_t n, const char *what)
{
	const uint8_t *p = NULL;

	CL_GUARD(cl_read_ref(r, n, &p));
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return cl_fail(CL_ERR_MALFORMED, "SNP report: reserved %s is not zero",
				       what);
	return CL_OK;
}

/* A 72-byte little-endian scalar whose top 24 bytes P-384 leaves zero. */
static int read_scalar(struct cl_reader *r, uint8_t out[CL_SNP_P384_LEN])
{
	CL_GUARD(cl_read_bytes(r, out, CL_SNP_P384_LEN));
	CL_GUARD(
		mbz(r, CL_SNP_SIG_COMPONENT - CL_SNP_P384_LEN, "high bytes of a signature scalar"));
	cl_reverse(out, CL_SNP_P384_LEN);
	return CL_OK;
}

int cl_snp_report_parse(const uint8_t *p, size_t n, struct cl_snp_report *out)
{
	struct cl_reader r = cl_reader_make(p, n < CL_SNP_REPORT_SIZE ? n : CL_SNP_REPORT_SIZE);
	struct cl_snp_report *o = out;
	uint32_t signing_key = 0;
	size_t trailing = 0;

	memset(o, 0, sizeof(*o));
	CL_ENSURE_MSG(p != NULL || n == 0, CL_ERR_ARG, "no report");
	CL_GUARD(cl_trailing_check(n, CL_SNP_REPORT_SIZE, "SNP report", &trailing));
	o->trailing = trailing;

	CL_GUARD(cl_read_u32le(&r, &o->version));
	/* 4 is what Turin firmware briefly emitted between 3 and 5 (same layout as 5). */
	CL_ENSURE_MSG(o->version >= 2 && o->version <= 5, CL_ERR_UNSUPPORTED,
		      "unsupported SNP report version %u", o->version);
	CL_GUARD(cl_read_u32le(&r, &o->guest_svn));
	CL_GUARD(cl_read_u64le(&r, &o->policy));
	CL_ENSURE_MSG(o->policy & CL_SNP_POLICY_RESERVED_ONE, CL_ERR_MALFORMED,
		      "SNP report: guest policy bit 17 must be set");
	CL_GUARD(cl_read_bytes(&r, o->family_id, sizeof(o->family_id)));
	CL_GUARD(cl_read_bytes(&r, o->image_id, sizeof(o->image_id)));
	CL_GUARD(cl_read_u32le(&r, &o->vmpl));
	CL_ENSURE_MSG(o->vmpl <= 3, CL_ERR_MALFORMED, "SNP report: VMPL %u out of range", o->vmpl);
	CL_GUARD(cl_read_u32le(&r, &o->sig_algo));
	CL_ENSURE_MSG(o->sig_algo == CL_SNP_SIG_ALGO_ECDSA_P384_SHA384, CL_ERR_UNSUPPORTED,
		      "unsupported SNP signature algorithm %u", o->sig_algo);
	CL_GUARD(cl_read_u64le(&r, &o->current_tcb));
	CL_GUARD(cl_read_u64le(&r, &o->platform_info));
	CL_GUARD(cl_read_u32le(&r, &o->key_info));
	CL_ENSURE_MSG((o->key_info >> 5) == 0, CL_ERR_MALFORMED,
		      "SNP report: reserved key_info bits set (0x%x)", o->key_info);
	signing_key = (o->key_info >> 2) & 7;
	switch (signing_key) {
	case CL_SNP_SIGNER_VCEK:
	case CL_SNP_SIGNER_VLEK:
		o->signer = (enum cl_snp_signer)signing_key;
		break;
	case 7:
		return cl_fail(CL_ERR_UNSUPPORTED, "SNP report is not signed (signing key 7)");
	default:
		return cl_fail(CL_ERR_MALFORMED, "SNP report: reserved signing key %u",
			       signing_key);
	}
	o->author_key_en = (int)(o->key_info & 1);
	o->mask_chip_key = (int)((o->key_info >> 1) & 1);
	o->debug = (o->policy & CL_SNP_POLICY_DEBUG) != 0;
	CL_GUARD(mbz(&r, 4, "0x4C"));
	CL_GUARD(cl_read_bytes(&r, o->report_data, sizeof(o->report_data)));
	CL_GUARD(cl_read_bytes(&r, o->measurement, sizeof(o->measurement)));
	CL_GUARD(cl_read_bytes(&r, o->host_data, sizeof(o->host_data)));
	CL_GUARD(cl_read_bytes(&r, o->id_key_digest, sizeof(o->id_key_digest)));
	CL_GUARD(cl_read_bytes(&r, o->author_key_digest, sizeof(o->author_key_digest)));
	CL_GUARD(cl_read_bytes(&r, o->report_id, sizeof(o->report_id)));
	CL_GUARD(cl_read_bytes(&r, o->report_id_ma, sizeof(o->report_id_ma)));
	CL_GUARD(cl_read_u64le(&r, &o->reported_tcb));
	if (o->version >= 3) {
		o->has_cpuid = 1;
		CL_GUARD(cl_read_u8(&r, &o->cpuid_fam_id));
		CL_GUARD(cl_read_u8(&r, &o->cpuid_mod_id));
		CL_GUARD(cl_read_u8(&r, &o->cpuid_step));
		CL_GUARD(mbz(&r, 0x1A0 - 0x18B, "0x18B-0x19F"));
	} else {
		CL_GUARD(mbz(&r, 0x1A0 - 0x188, "0x188-0x19F"));
	}
	CL_GUARD(cl_read_bytes(&r, o->chip_id, sizeof(o->chip_id)));
	CL_GUARD(cl_read_u64le(&r, &o->committed_tcb));
	CL_GUARD(cl_read_u8(&r, &o->current_build));
	CL_GUARD(cl_read_u8(&r, &o->current_minor));
	CL_GUARD(cl_read_u8(&r, &o->current_major));
	CL_GUARD(mbz(&r, 1, "0x1EB"));
	CL_GUARD(cl_read_u8(&r, &o->committed_build));
	CL_GUARD(cl_read_u8(&r, &o->committed_minor));
	CL_GUARD(cl_read_u8(&r, &o->committed_major));
	CL_GUARD(mbz(&r, 1, "0x1EF"));
	CL_GUARD(cl_read_u64le(&r, &o->launch_tcb));
	if (o->version >= 4) {
		o->has_mit_vectors = 1;
		CL_GUARD(cl_read_u64le(&r, &o->launch_mit_vector));
		CL_GUARD(cl_read_u64le(&r, &o->current_mit_vector));
	} else {
		CL_GUARD(mbz(&r, 16, "0x1F8-0x207"));
	}
	CL_GUARD(mbz(&r, CL_SNP_SIGNED_SIZE - 0x208, "0x208-0x29F"));
	CL_GUARD(read_scalar(&r, o->sig_r));
	CL_GUARD(read_scalar(&r, o->sig_s));
	CL_GUARD(mbz(&r, CL_SNP_REPORT_SIZE - CL_SNP_SIGNED_SIZE - 2 * CL_SNP_SIG_COMPONENT,
		     "signature padding"));
	CL_ENSURE_MSG(r.left == 0, CL_ERR_INTERNAL, "SNP report parser out of step");
	return CL_OK;
}

/* ----------------------------------------------------------------- claims */

static int set_new(json_t *obj, const char *key, json_t *v)
{
	if (!v || json_object_set_new(obj, key, v) != 0)
		return cl_fail(CL_ERR_NOMEM, "out of memory");
	return CL_OK;
}

static json_t *tcb_json(const struct cl_amd_tcb *t, int turin)
{
	json_t *o = json_pack("{s:i, s:i, s:i, s:i}", "bootloader", (int)t->bootloader, "tee",
			      (int)t->tee, "snp", (int)t->snp, "microcode", (int)t->microcode);

	if (o && turin && json_object_set_new(o, "fmc", json_integer(t->fmc)) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int set_tcb(json_t *c, const char *key, enum cl_amd_product p, uint64_t raw)
{
	struct cl_amd_tcb t;

	cl_amd_tcb_decode(p, raw, &t);
	return set_new(c, key, tcb_json(&t, p == CL_AMD_TURIN));
}

static int set_version(json_t *c, const char *key, uint8_t major, uint8_t minor, uint8_t build)
{
	char v[16];

	snprintf(v, sizeof(v), "%u.%u.%u", major, minor, build);
	return set_new(c, key, json_string(v));
}

static int set_u64(json_t *c, const char *key, uint64_t v)
{
	char hex[24];

	if (v <= (uint64_t)INT64_MAX)
		return set_new(c, key, json_integer((json_int_t)v));
	snprintf(hex, sizeof(hex), "0x%016llx", (unsigned long long)v);
	return set_new(c, key, json_string(hex));
}

/*
 * Everything the report says. `p` decides the TCB layout: v2 reports carry
 * no CPUID and come from Milan or Genoa, which share one.
 */
static int fill_claims(json_t *c, const struct cl_snp_report *r, enum cl_amd_product p,
		       int product_known)
{
	const struct {
		const char *key;
		const uint8_t *p;
		size_t n;
	} hex[] = {
		{"measurement", r->measurement, sizeof(r->measurement)},
		{"report_data", r->report_data, sizeof(r->report_data)},
		{"chip_id", r->chip_id, sizeof(r->chip_id)},
		{"host_data", r->host_data, sizeof(r->host_data)},
		{"id_key_digest", r->id_key_digest, sizeof(r->id_key_digest)},
		{"author_key_digest", r->author_key_digest, sizeof(r->author_key_digest)},
		{"report_id", r->report_id, sizeof(r->report_id)},
		{"report_id_ma", r->report_id_ma, sizeof(r->report_id_ma)},
		{"family_id", r->family_id, sizeof(r->family_id)},
		{"image_id", r->image_id, sizeof(r->image_id)},
	};

	for (size_t i = 0; i < sizeof(hex) / sizeof(hex[0]); i++)
		CL_GUARD(cl_claims_set_hex(c, hex[i].key, hex[i].p, hex[i].n));
	CL_GUARD(set_new(c, "debug", json_boolean(r->debug)));
	CL_GUARD(set_new(c, "version", json_integer(r->version)));
	CL_GUARD(set_new(c, "guest_svn", json_integer(r->guest_svn)));
	CL_GUARD(set_u64(c, "policy", r->policy));
	CL_GUARD(set_new(c, "vmpl", json_integer(r->vmpl)));
	CL_GUARD(cl_claims_set_trailing(c, r->trailing));
	CL_GUARD(set_new(c, "signing_key",
			 json_string(r->signer == CL_SNP_SIGNER_VLEK ? "vlek" : "vcek")));
	if (product_known)
		CL_GUARD(set_new(c, "product", json_string(cl_amd_product_name(p))));
	CL_GUARD(set_tcb(c, "reported_tcb", p, r->reported_tcb));
	CL_GUARD(set_tcb(c, "current_tcb", p, r->current_tcb));
	CL_GUARD(set_tcb(c, "committed_tcb", p, r->committed_tcb));
	CL_GUARD(set_tcb(c, "launch_tcb", p, r->launch_tcb));
	CL_GUARD(set_version(c, "current_firmware", r->current_major, r->current_minor,
			     r->current_build));
	CL_GUARD(set_version(c, "committed_firmware", r->committed_major, r->committed_minor,
			     r->committed_build));
	CL_GUARD(set_u64(c, "platform_info", r->platform_info));
	CL_GUARD(set_new(c, "author_key_en", json_boolean(r->author_key_en)));
	CL_GUARD(set_new(c, "mask_chip_key", json_boolean(r->mask_chip_key)));
	if (r->has_cpuid)
		CL_GUARD(set_new(c, "cpuid",
				 json_pack("{s:i, s:i, s:i}", "family", (int)r->cpuid_fam_id,
					   "model", (int)r->cpuid_mod_id, "stepping",
					   (int)r->cpuid_step)));
	if (r->has_mit_vectors) {
		CL_GUARD(set_u64(c, "launch_mit_vector", r->launch_mit_vector));
		CL_GUARD(set_u64(c, "current_mit_vector", r->current_mit_vector));
	}
	return CL_OK;
}

/* -------------------------------------------- verified endorsement keys */

#define SNP_CACHE_SLOTS 64

/* A verified key as one verification uses it; pkey and inter hold their own references. */
struct vek {
	EVP_PKEY *pkey;
	X509 *inter; /* the ASK or ASVK the chain went through, for the CRL */
	struct cl_amd_cert_ext ext;
	enum cl_amd_product product;
	enum cl_snp_signer signer;
	int64_t not_before, not_after; /* the chain is valid for every t in between */
};

static void vek_release(struct vek *v)
{
	EVP_PKEY_free(v->pkey);
	X509_free(v->inter);
	v->pkey = NULL;
	v->inter = NULL;
}

/* The cache's copy of a verified key: the caller gets its own references. */
static int vek_ref(void *value, void *out)
{
	const struct vek *v = value;
	struct vek *o = out;

	if (EVP_PKEY_up_ref(v->pkey) != 1)
		return 0;
	if (X509_up_ref(v->inter) != 1) {
		EVP_PKEY_free(v->pkey);
		return 0;
	}
	*o = *v;
	return 1;
}

static void vek_drop(void *value)
{
	vek_release(value);
	free(value);
}

/*
 * Verified VCEK/VLEK chains, keyed by the certificate and the intermediates
 * it was checked with, each valid for the window of its chain.
 */
static struct cl_memo vek_memo =
	CL_MEMO_INIT("snp-vek", SNP_CACHE_SLOTS, CL_MEMO_VERIFIED, vek_ref, vek_drop);

void cl_snp_cache_clear(void)
{
	cl_memo_clear(&vek_memo);
}

static void cache_insert(const struct cl_memo_key *k, const struct vek *v)
{
	struct vek *copy = malloc(sizeof(*copy));

	if (!copy || vek_ref((void *)v, copy) != 1) {
		free(copy);
		return;
	}
	cl_memo_put(&vek_memo, k, copy, v->not_before, v->not_after);
}

/* Identity of a (certificate, intermediates) pair: what a cached verdict depends on. */
static int vek_id(const struct cl_verify_opts *o, const uint8_t *cert, size_t n,
		  struct cl_memo_key *k)
{
	static const uint8_t none[1];
	int given = o->snp.certs && o->snp.certs_len;
	uint8_t len[8];
	struct cl_memo_part parts[3] = {
		{len, sizeof(len)},
		{given ? o->snp.certs : none, given ? o->snp.certs_len : 0},
		{cert, n},
	};

	/* The intermediates' length first, so no split of the bytes maps to the same key. */
	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t)((uint64_t)parts[1].n >> (8 * i));
	return cl_memo_key_parts(k, "snp-vek", parts, 3);
}

static int widen_window(X509 *x, int64_t *nb, int64_t *na)
{
	int64_t b = 0, a = 0;

	CL_GUARD(cl_asn1_time_epoch(X509_get0_notBefore(x), &b));
	CL_GUARD(cl_asn1_time_epoch(X509_get0_notAfter(x), &a));
	if (b > *nb)
		*nb = b;
	if (a < *na)
		*na = a;
	return CL_OK;
}

/* Does cert's subject CN equal want? */
static int cn_is(X509 *cert, const char *want)
{
	char cn[64];
	int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn,
					  (int)sizeof(cn));

	return n > 0 && (size_t)n == strlen(want) && strcmp(cn, want) == 0;
}

/*
 * Find the intermediate among candidates that issued leaf and chains to the
 * pinned ARK of product p, and check the chain at time at. The intermediate
 * must be the right kind: the ASK ("SEV-<product>") for a VCEK, the ASVK
 * ("SEV-VLEK-<product>") for a VLEK.
 */
static int verify_chain(X509 *leaf, STACK_OF(X509) * candidates, enum cl_amd_product p,
			enum cl_snp_signer signer, int64_t at, int64_t *nb, int64_t *na,
			X509 **inter)
{
	X509 *ark = cl_amd_ark(p);
	STACK_OF(X509) *roots = sk_X509_new_null(), *untrusted = sk_X509_new_null();
	char want[48];
	int rc = CL_ERR_CHAIN, tried = 0, depth = 0;

	snprintf(want, sizeof(want), "%s%s", signer == CL_SNP_SIGNER_VLEK ? "SEV-VLEK-" : "SEV-",
		 cl_amd_product_name(p));
	if (!ark || !roots || !untrusted || sk_X509_push(roots, ark) <= 0) {
		rc = cl_fail(CL_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < sk_X509_num(candidates); i++) {
		X509 *ic = sk_X509_value(candidates, i);

		if (X509_cmp(ic, ark) == 0 || !cn_is(ic, want) ||
		    X509_check_issued(ic, leaf) != X509_V_OK)
			continue;
		(void)sk_X509_pop(untrusted);
		if (sk_X509_push(untrusted, ic) <= 0) {
			rc = cl_fail(CL_ERR_NOMEM, "out of memory");
			goto out;
		}
		tried = 1;
		rc = cl_x509_verify(leaf, untrusted, roots, NULL, at, &depth);
		if (rc == CL_OK && depth != 3)
			rc = cl_fail(CL_ERR_CHAIN, "unexpected chain length %d", depth);
		if (rc != CL_OK)
			continue;
		*nb = INT64_MIN;
		*na = INT64_MAX;
		CL_TRY(widen_window(leaf, nb, na));
		CL_TRY(widen_window(ic, nb, na));
		CL_TRY(widen_window(ark, nb, na));
		CL_CHECK(X509_up_ref(ic) == 1, CL_ERR_CRYPTO, "cannot reference a certificate");
		*inter = ic;
		break;
	}
	if (!tried)
		rc = cl_fail(CL_ERR_CHAIN, "%s is not issued by the AMD %s of %s",
			     signer == CL_SNP_SIGNER_VLEK ? "VLEK" : "VCEK",
			     signer == CL_SNP_SIGNER_VLEK ? "ASVK" : "ASK", cl_amd_product_name(p));
	else if (rc == CL_OK)
		cl_error_clear(); /* candidates that failed before this one */
out:
	sk_X509_free(untrusted);
	sk_X509_free(roots);
	ERR_clear_error();
	return rc;
}

static int check_key_kind(const struct cl_amd_cert_ext *ext, enum cl_snp_signer signer)
{
	if (signer == CL_SNP_SIGNER_VCEK)
		CL_ENSURE_MSG(ext->has_hwid && !ext->has_csp_id, CL_ERR_MISMATCH,
			      "report is signed by a VCEK but the certificate is not a VCEK");
	else
		CL_ENSURE_MSG(ext->has_csp_id && !ext->has_hwid, CL_ERR_MISMATCH,
			      "report is signed by a VLEK but the certificate is not a VLEK");
	CL_ENSURE_MSG(ext->has_tcb, CL_ERR_MALFORMED,
		      "endorsement key certificate lacks the TCB extensions");
	return CL_OK;
}

/*
 * Parse and verify an endorsement key certificate from scratch. `cpu` is the
 * product from the report's CPUID (have_cpu 0 for v2 reports).
 */
static int vek_verify(const uint8_t *cert, size_t n, const struct cl_verify_opts *o,
		      enum cl_snp_signer signer, int have_cpu, enum cl_amd_product cpu, int64_t at,
		      struct vek *out)
{
	X509 *leaf = NULL;
	STACK_OF(X509) *given = NULL, *pinned = NULL;
	EVP_PKEY *pk = NULL;
	enum cl_amd_product named = CL_AMD_MILAN, first = CL_AMD_MILAN, last = CL_AMD_TURIN;
	char group[32] = "";
	int rc = CL_OK, have_named = 0;

	memset(out, 0, sizeof(*out));
	CL_TRY(cl_x509_from_any(cert, n, &leaf));
	CL_TRY(cl_amd_cert_ext_parse(leaf, &out->ext));
	CL_TRY(check_key_kind(&out->ext, signer));
	if (out->ext.has_product) {
		/* An unknown name only leaves the product to the chain search. */
		have_named = cl_amd_product_from_name(out->ext.product, &named) == CL_OK;
		if (!have_named)
			cl_error_clear();
	}
	CL_CHECK(!(have_cpu && have_named && named != cpu), CL_ERR_MISMATCH,
		 "certificate is for %s but the report comes from a %s CPU",
		 cl_amd_product_name(named), cl_amd_product_name(cpu));
	if (have_cpu || have_named)
		first = last = have_cpu ? cpu : named;
	if (o->snp.certs && o->snp.certs_len)
		CL_TRY(cl_x509_chain_from_pem(o->snp.certs, o->snp.certs_len, &given));
	rc = CL_ERR_CHAIN;
	for (int p = (int)first; p <= (int)last; p++) {
		STACK_OF(X509) *cands = given;

		if (!given) {
			X509 *ic = signer == CL_SNP_SIGNER_VLEK
					   ? cl_amd_asvk((enum cl_amd_product)p)
					   : cl_amd_ask((enum cl_amd_product)p);

			sk_X509_free(pinned);
			pinned = sk_X509_new_null();
			CL_CHECK(pinned && ic && sk_X509_push(pinned, ic) > 0, CL_ERR_NOMEM,
				 "out of memory");
			cands = pinned;
		}
		X509_free(out->inter);
		out->inter = NULL;
		rc = verify_chain(leaf, cands, (enum cl_amd_product)p, signer, at, &out->not_before,
				  &out->not_after, &out->inter);
		if (rc == CL_OK) {
			out->product = (enum cl_amd_product)p;
			cl_error_clear(); /* products tried before this one */
			break;
		}
	}
	if (rc != CL_OK)
		goto out;
	pk = X509_get0_pubkey(leaf);
	CL_CHECK(pk && EVP_PKEY_is_a(pk, "EC") &&
			 EVP_PKEY_get_group_name(pk, group, sizeof(group), NULL) == 1 &&
			 strcmp(group, "secp384r1") == 0,
		 CL_ERR_UNSUPPORTED, "endorsement key is not an ECDSA P-384 key");
	CL_CHECK(EVP_PKEY_up_ref(pk) == 1, CL_ERR_CRYPTO, "cannot reference key");
	out->pkey = pk;
	out->signer = signer;
out:
	sk_X509_free(pinned);
	sk_X509_pop_free(given, X509_free);
	X509_free(leaf);
	ERR_clear_error();
	return rc;
}

/* --------------------------------------------------- finding the VCEK */

struct vek_source {
	struct cl_buf buf;
	const uint8_t *p;
	size_t n;
	int fetched; /* came from KDS: cache it once verified */
	enum cl_amd_product product;
};

static int all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* The certificate: given, else cached, else fetched from KDS. */
static int vek_find(const struct cl_snp_report *r, const struct cl_verify_opts *o,
		    const uint8_t *given, size_t given_len, int have_cpu, enum cl_amd_product cpu,
		    struct vek_source *src)
{
	enum cl_amd_product cands[2] = {CL_AMD_MILAN, CL_AMD_GENOA};
	int ncands = 2, rc = CL_OK;
	char name[256];

	if (given && given_len) {
		src->p = given;
		src->n = given_len;
		return CL_OK;
	}
	CL_ENSURE_MSG(r->signer != CL_SNP_SIGNER_VLEK, CL_ERR_COLLATERAL,
		      "report is signed by a VLEK, which AMD KDS gives only to cloud providers: "
		      "pass the VLEK certificate with --vcek");
	CL_ENSURE_MSG(!r->mask_chip_key && !all_zero(r->chip_id, sizeof(r->chip_id)),
		      CL_ERR_COLLATERAL,
		      "report masks CHIP_ID, so its VCEK cannot be looked up: pass it with --vcek");
	if (have_cpu) {
		cands[0] = cpu;
		ncands = 1;
	}
	for (int i = 0; i < ncands; i++) {
		CL_GUARD(cl_amd_vcek_cache_name(cands[i], r->chip_id, r->reported_tcb, name,
						sizeof(name)));
		if (cl_cache_get(o->cache_dir, "amd", name, CL_MAX_CERT_DER, &src->buf) == CL_OK) {
			cl_log_debug("VCEK from cache: %s", name);
			src->p = src->buf.data;
			src->n = src->buf.len;
			return CL_OK;
		}
		/* A miss is not this verification's failure: the fetch below decides. */
		cl_error_clear();
	}
	CL_ENSURE_MSG(!o->offline, CL_ERR_COLLATERAL,
		      "no VCEK given or cached for this chip and TCB, and fetching is disabled "
		      "(--offline): pass it with --vcek");
	for (int i = 0; i < ncands; i++) {
		rc = cl_amd_kds_fetch_vcek(o->snp.kds_url, cands[i], r->chip_id, r->reported_tcb,
					   &src->buf);
		if (rc == CL_OK) {
			src->p = src->buf.data;
			src->n = src->buf.len;
			src->fetched = 1;
			src->product = cands[i];
			cl_error_clear(); /* a 404 for another product */
			return CL_OK;
		}
		if (rc != CL_ERR_NOT_FOUND)
			return rc;
	}
	return rc;
}

/* ------------------------------------------------------------- verify */

static int check_hwid(const struct cl_snp_report *r, const struct vek *v)
{
	size_t n = v->ext.hwid_len;

	/* A masked CHIP_ID binds nothing; the signature still proves the chip's key. */
	if (r->mask_chip_key)
		return CL_OK;
	CL_ENSURE_MSG(n == CL_AMD_CHIP_ID_LEN ||
			      (v->product == CL_AMD_TURIN && n == CL_AMD_TURIN_HWID_LEN),
		      CL_ERR_MALFORMED, "VCEK hwID has %zu bytes", n);
	CL_ENSURE_MSG(memcmp(v->ext.hwid, r->chip_id, n) == 0, CL_ERR_MISMATCH,
		      "VCEK hwID does not match the report's CHIP_ID");
	return CL_OK;
}

static int check_tcb(const struct cl_snp_report *r, const struct vek *v)
{
	struct cl_amd_tcb t;
	const struct cl_amd_tcb *c = &v->ext.tcb;
	int turin = v->product == CL_AMD_TURIN;

	cl_amd_tcb_decode(v->product, r->reported_tcb, &t);
	CL_ENSURE_MSG(!turin || v->ext.has_fmc, CL_ERR_MALFORMED,
		      "Turin endorsement key certificate lacks the fmcSPL extension");
	if (t.bootloader != c->bootloader || t.tee != c->tee || t.snp != c->snp ||
	    t.microcode != c->microcode || (turin && t.fmc != c->fmc))
		return cl_fail(
			CL_ERR_TCB,
			"reported TCB (fmc %u bl %u tee %u snp %u ucode %u) differs from the "
			"certificate's (fmc %u bl %u tee %u snp %u ucode %u)",
			t.fmc, t.bootloader, t.tee, t.snp, t.microcode, c->fmc, c->bootloader,
			c->tee, c->snp, c->microcode);
	return CL_OK;
}

static int check_signature(const uint8_t *ev, const struct cl_snp_report *r, EVP_PKEY *pkey)
{
	uint8_t dg[48];
	int rc = CL_OK;

	CL_GUARD(cl_digest(CL_SHA384, ev, CL_SNP_SIGNED_SIZE, dg));
	rc = cl_ecdsa_verify_digest_raw(pkey, dg, sizeof(dg), r->sig_r, r->sig_s, CL_SNP_P384_LEN);
	if (rc != CL_OK)
		return cl_fail(CL_ERR_SIGNATURE, "SNP report signature does not verify with the %s",
			       r->signer == CL_SNP_SIGNER_VLEK ? "VLEK" : "VCEK");
	return CL_OK;
}

/* ------------------------------------------------------------- format */

/* The report and what it says about its CPU. */
struct snp_parsed {
	struct cl_snp_report r;
	enum cl_amd_product cpu;
	int have_cpu;
};

/*
 * SNP ATTESTATION_REPORT: 1184 bytes, version 2..5 at offset 0 (which no
 * DCAP header, dev-TEE magic or JSON text starts with), then at most
 * CL_MAX_TRAILING unsigned bytes.
 */
static int snp_detect(const uint8_t *ev, size_t n, const json_t *json)
{
	struct cl_reader r = cl_reader_make(ev, n);
	uint32_t ver = 0;

	(void)json;
	return n >= CL_SNP_REPORT_SIZE && n - CL_SNP_REPORT_SIZE <= CL_MAX_TRAILING &&
	       cl_read_u32le(&r, &ver) == CL_OK && ver >= 2 && ver <= 5;
}

static int snp_parse(struct cl_evidence *e)
{
	struct snp_parsed *p = calloc(1, sizeof(*p));

	CL_ENSURE_MSG(p, CL_ERR_NOMEM, "out of memory");
	e->parsed = p;
	p->cpu = CL_AMD_MILAN;
	CL_GUARD(cl_snp_report_parse(e->raw, e->raw_len, &p->r));
	if (p->r.has_cpuid) {
		CL_GUARD(cl_amd_product_from_cpuid(p->r.cpuid_fam_id, p->r.cpuid_mod_id, &p->cpu));
		p->have_cpu = 1;
	}
	return CL_OK;
}

static int snp_claims(const struct cl_evidence *e, json_t **claims)
{
	const struct snp_parsed *p = e->parsed;

	*claims = cl_claims_new("snp");
	CL_ENSURE_MSG(*claims, CL_ERR_NOMEM, "out of memory");
	return fill_claims(*claims, &p->r, p->cpu, p->have_cpu);
}

/*
 * The endorsement key certificate the caller gave, else the one in an
 * envelope's certificate table (checked whole even when unused).
 */
static int vek_given(const struct cl_evidence *e, const struct cl_verify_opts *o,
		     const uint8_t **cert, size_t *len)
{
	const struct snp_parsed *p = e->parsed;
	const uint8_t *c = NULL;
	size_t cl = 0;

	*cert = o->snp.vcek;
	*len = o->snp.vcek_len;
	if (!e->env || !e->env->certs)
		return CL_OK;
	CL_GUARD(cl_snp_certtable_find(
		e->env->certs, e->env->certs_len,
		p->r.signer == CL_SNP_SIGNER_VLEK ? cl_snp_guid_vlek : cl_snp_guid_vcek, &c, &cl));
	if (!(o->snp.vcek && o->snp.vcek_len) && c) {
		*cert = c;
		*len = cl;
	}
	return CL_OK;
}

/*
 * AMD's CRL for the intermediate the chain went through: the one given
 * (which must be usable), else the cached one, else, when the VCEK itself
 * came from KDS, KDS's. A cached or fetched CRL that cannot be used (stale,
 * not the ARK's) leaves revocation unchecked, as does having none: the claim
 * says which, and policies decide. A listed intermediate is rejected.
 */
static int check_revocation(const struct cl_verify_opts *o, const struct vek *v, int fetched,
			    int64_t at, json_t *c)
{
	struct cl_buf buf = {0};
	const uint8_t *crl = o->snp.crl;
	size_t n = o->snp.crl_len;
	int vlek = v->signer == CL_SNP_SIGNER_VLEK, from_kds = 0, rc = CL_OK;
	const char *kind = vlek ? "ASVK" : "ASK";
	char name[64], why[256];

	if (!crl) {
		CL_TRY(cl_amd_crl_cache_name(v->product, vlek, name, sizeof(name)));
		if (cl_cache_get(o->cache_dir, "amd", name, CL_AMD_MAX_CRL, &buf) == CL_OK) {
			crl = buf.data;
		} else if (fetched && !o->offline &&
			   cl_amd_kds_fetch_crl(o->snp.kds_url, v->product, vlek, &buf) == CL_OK) {
			crl = buf.data;
			from_kds = 1;
		}
		n = buf.len;
		if (!crl)
			cl_error_clear(); /* no CRL is not this verification's failure */
	}
	if (!crl) {
		/* Once per product and key kind: a KBS verifies the same chains all day. */
		static _Atomic unsigned warned;
		unsigned bit = 1u << ((unsigned)v->product * 2 + (unsigned)vlek);

		if (!(atomic_fetch_or(&warned, bit) & bit))
			cl_log_warn("SNP: no AMD CRL for the %s of %s (give one with --crl, or let "
				    "the VCEK be fetched from KDS): revocation unchecked",
				    kind, cl_amd_product_name(v->product));
		rc = set_new(c, "revocation", json_string("unchecked"));
		goto out;
	}
	rc = cl_amd_crl_check(crl, n, cl_amd_ark(v->product), v->inter, at);
	if (rc != CL_OK && rc != CL_ERR_REVOKED && !o->snp.crl) {
		snprintf(why, sizeof(why), "%s", cl_error_detail());
		cl_log_warn("SNP: the %s AMD CRL cannot be used (%s): revocation unchecked",
			    from_kds ? "fetched" : "cached", why);
		cl_error_clear();
		rc = set_new(c, "revocation", json_string("unchecked"));
		goto out;
	}
	if (rc != CL_OK)
		goto out;
	CL_TRY(set_new(c, "revocation", json_string("checked")));
	if (from_kds && cl_cache_put(o->cache_dir, "amd", name, buf.data, buf.len) != CL_OK)
		cl_log_warn("cannot cache the fetched AMD CRL: %s", cl_error_detail());
out:
	cl_buf_free(&buf);
	return rc;
}

static int snp_verify(const struct cl_evidence *e, const struct cl_verify_opts *o, json_t *c)
{
	const struct snp_parsed *p = e->parsed;
	const struct cl_snp_report *r = &p->r;
	struct vek_source src;
	struct vek v;
	const uint8_t *given = NULL;
	size_t given_len = 0;
	int rc = CL_OK, hit = 0;
	int64_t at = o->at ? o->at : (int64_t)time(NULL);
	struct cl_memo_key id;
	char name[256];

	memset(&src, 0, sizeof(src));
	memset(&v, 0, sizeof(v));
	CL_TRY(vek_given(e, o, &given, &given_len));
	CL_TRY(vek_find(r, o, given, given_len, p->have_cpu, p->cpu, &src));
	CL_TRY(vek_id(o, src.p, src.n, &id));
	/* A hit is a chain verified for a window that holds `at`. */
	hit = cl_memo_get(&vek_memo, &id, at, &v);
	if (hit) {
		CL_CHECK(v.signer == r->signer, CL_ERR_MISMATCH,
			 "report signing key kind does not match the certificate");
		CL_CHECK(!p->have_cpu || v.product == p->cpu, CL_ERR_MISMATCH,
			 "certificate is for %s but the report comes from a %s CPU",
			 cl_amd_product_name(v.product), cl_amd_product_name(p->cpu));
	} else {
		CL_TRY(vek_verify(src.p, src.n, o, r->signer, p->have_cpu, p->cpu, at, &v));
	}
	if (!p->have_cpu)
		CL_TRY(set_new(c, "product", json_string(cl_amd_product_name(v.product))));

	CL_TRY(check_signature(e->raw, r, v.pkey));
	if (r->signer == CL_SNP_SIGNER_VCEK)
		CL_TRY(check_hwid(r, &v));
	CL_TRY(check_tcb(r, &v));
	CL_TRY(check_revocation(o, &v, src.fetched, at, c));
	if (!hit)
		cache_insert(&id, &v);
	if (src.fetched && (cl_amd_vcek_cache_name(v.product, r->chip_id, r->reported_tcb, name,
						   sizeof(name)) != CL_OK ||
			    cl_cache_put(o->cache_dir, "amd", name, src.p, src.n) != CL_OK))
		cl_log_warn("cannot cache the fetched VCEK: %s", cl_error_detail());

	CL_CHECK(!r->debug || o->allow_debug, CL_ERR_POLICY,
		 "guest policy allows debugging (policy bit 19): the host can read guest memory; "
		 "use --allow-debug to accept");
	CL_TRY(cl_check_report_data(o, r->report_data));
out:
	vek_release(&v);
	cl_buf_free(&src.buf);
	return rc;
}

const struct cl_format_ops cl_snp_format = {
	.name = "snp",
	.id = CL_FORMAT_SNP,
	.flags = CL_FMT_ENV_CERTS,
	.detect = snp_detect,
	.parse = snp_parse,
	.claims = snp_claims,
	.verify = snp_verify,
	.free = free,
};
