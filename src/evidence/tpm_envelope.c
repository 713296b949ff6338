/*
 * The TPM evidence envelope (see tpm.h) in our shape and in the shapes of
 * go-attestation and trustee, tpm2-tools' PCR output files, and PCR
 * selection strings.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_mu.h>

#include "cloister/crypto.h"
#include "cloister/tpm.h"
#include "internal.h"

#define MAX_CHAIN 4

/* ------------------------------------------------------------ PCR values */

int cl_tpm_pcrs_set(struct cl_tpm_pcrs *p, uint16_t alg, unsigned idx, const uint8_t *v, size_t len)
{
	size_t want = cl_tpm_alg_digest_len(alg);
	unsigned b = 0;

	CL_ENSURE_MSG(want, CL_ERR_UNSUPPORTED, "unknown PCR bank 0x%04x", alg);
	CL_ENSURE_MSG(idx < CL_TPM_NUM_PCRS, CL_ERR_MALFORMED, "PCR index %u (max %u)", idx,
		      CL_TPM_NUM_PCRS - 1);
	CL_ENSURE_MSG(len == want, CL_ERR_MALFORMED, "%s PCR %u value has %zu bytes, expected %zu",
		      cl_tpm_alg_name(alg), idx, len, want);
	while (b < p->nbanks && p->bank[b].alg != alg)
		b++;
	if (b == p->nbanks) {
		CL_ENSURE_MSG(p->nbanks < CL_EVLOG_MAX_ALGS, CL_ERR_MALFORMED,
			      "too many PCR banks");
		p->nbanks++;
		p->bank[b].alg = alg;
		p->bank[b].len = want;
		p->bank[b].present = 0;
	}
	CL_ENSURE_MSG(!(p->bank[b].present & (1u << idx)), CL_ERR_MALFORMED,
		      "%s PCR %u given twice", cl_tpm_alg_name(alg), idx);
	memcpy(p->bank[b].v[idx], v, len);
	p->bank[b].present |= 1u << idx;
	return CL_OK;
}

const uint8_t *cl_tpm_pcrs_get(const struct cl_tpm_pcrs *p, uint16_t alg, unsigned idx)
{
	for (unsigned b = 0; b < p->nbanks; b++)
		if (p->bank[b].alg == alg && idx < CL_TPM_NUM_PCRS &&
		    (p->bank[b].present & (1u << idx)))
			return p->bank[b].v[idx];
	return NULL;
}

void cl_tpm_evidence_free(struct cl_tpm_evidence *ev)
{
	if (!ev)
		return;
	free(ev->ak);
	free(ev->ak_cert);
	for (size_t i = 0; i < ev->ak_chain_n; i++)
		free(ev->ak_chain[i]);
	free(ev->ak_chain);
	free(ev->ak_chain_len);
	free(ev->quote);
	free(ev->sig);
	free(ev->event_log);
	memset(ev, 0, sizeof(*ev));
}

/* A base64 string member (NULL/absent allowed when !required) of at most max bytes. */
static int b64_member(const json_t *o, const char *key, size_t max, int required, uint8_t **out,
		      size_t *len)
{
	const json_t *v = json_object_get(o, key);
	const char *s = json_string_value(v);

	*out = NULL;
	*len = 0;
	if (!v || json_is_null(v)) {
		CL_ENSURE_MSG(!required, CL_ERR_MALFORMED, "TPM evidence has no \"%s\"", key);
		return CL_OK;
	}
	CL_ENSURE_MSG(s, CL_ERR_MALFORMED, "TPM evidence \"%s\" is not a string", key);
	/* base64 carries 3 bytes per 4 characters; refuse before decoding. */
	CL_ENSURE_MSG(json_string_length(v) / 4 * 3 <= max + 3, CL_ERR_MALFORMED,
		      "TPM evidence \"%s\" is larger than %zu bytes", key, max);
	CL_GUARD(cl_base64_decode(s, json_string_length(v), out, len));
	if (*len > max || (required && *len == 0)) {
		free(*out);
		*out = NULL;
		CL_BAIL(CL_ERR_MALFORMED, "TPM evidence \"%s\" has %zu bytes (1..%zu)", key, *len,
			max);
	}
	return CL_OK;
}

static int hex_value(const json_t *v, uint8_t *out, size_t *len)
{
	const char *s = json_string_value(v);
	size_t n = s ? json_string_length(v) : 0;

	CL_ENSURE_MSG(s && n % 2 == 0 && n / 2 <= CL_TPM_MAX_DIGEST && n > 0, CL_ERR_MALFORMED,
		      "PCR value is not a hex digest");
	*len = n / 2;
	return cl_hex_decode_exact(s, out, *len);
}

static int parse_index(const char *k, unsigned *idx)
{
	char *end = NULL;
	unsigned long v = 0;

	CL_ENSURE_MSG(isdigit((unsigned char)k[0]) && strlen(k) <= 2, CL_ERR_MALFORMED,
		      "PCR index '%s' is not a number below %u", k, CL_TPM_NUM_PCRS);
	v = strtoul(k, &end, 10);
	CL_ENSURE_MSG(*end == 0 && v < CL_TPM_NUM_PCRS, CL_ERR_MALFORMED,
		      "PCR index '%s' is not a number below %u", k, CL_TPM_NUM_PCRS);
	*idx = (unsigned)v;
	return CL_OK;
}

/* Ours: {"sha256": {"0": hex, ...}, ...} */
static int pcrs_ours(const json_t *o, struct cl_tpm_pcrs *out)
{
	const char *bank = NULL, *k = NULL;
	json_t *vals = NULL, *v = NULL;

	CL_ENSURE_MSG(json_is_object(o), CL_ERR_MALFORMED,
		      "TPM evidence \"pcrs\" is not an object");
	json_object_foreach ((json_t *)o, bank, vals) {
		uint16_t alg = cl_tpm_alg_from_name(bank);

		CL_ENSURE_MSG(alg, CL_ERR_UNSUPPORTED, "unknown PCR bank '%s'", bank);
		CL_ENSURE_MSG(json_is_object(vals), CL_ERR_MALFORMED,
			      "PCR bank '%s' is not an object", bank);
		json_object_foreach (vals, k, v) {
			uint8_t d[CL_TPM_MAX_DIGEST];
			size_t len = 0;
			unsigned idx = 0;

			CL_GUARD(parse_index(k, &idx));
			CL_GUARD(hex_value(v, d, &len));
			CL_GUARD(cl_tpm_pcrs_set(out, alg, idx, d, len));
		}
	}
	return CL_OK;
}

static uint16_t alg_by_len(size_t len)
{
	switch (len) {
	case 20:
		return CL_TPM_ALG_SHA1;
	case 32:
		return CL_TPM_ALG_SHA256;
	case 48:
		return CL_TPM_ALG_SHA384;
	case 64:
		return CL_TPM_ALG_SHA512;
	default:
		return 0;
	}
}

/* trustee: ["hex", ...] indexed by PCR number; the bank follows from the size. */
static int pcrs_list(const json_t *a, struct cl_tpm_pcrs *out)
{
	CL_ENSURE_MSG(json_is_array(a) && json_array_size(a) <= CL_TPM_NUM_PCRS, CL_ERR_MALFORMED,
		      "TPM evidence PCR list is not an array of at most %u values",
		      CL_TPM_NUM_PCRS);
	for (size_t i = 0; i < json_array_size(a); i++) {
		uint8_t d[CL_TPM_MAX_DIGEST];
		size_t len = 0;

		CL_GUARD(hex_value(json_array_get(a, i), d, &len));
		CL_ENSURE_MSG(alg_by_len(len), CL_ERR_MALFORMED, "PCR value of %zu bytes", len);
		CL_GUARD(cl_tpm_pcrs_set(out, alg_by_len(len), (unsigned)i, d, len));
	}
	return CL_OK;
}

/* go-attestation: [{"Index", "Digest": base64, "DigestAlg": Go crypto.Hash}] */
static int pcrs_go(const json_t *a, struct cl_tpm_pcrs *out)
{
	CL_ENSURE_MSG(json_is_array(a) && json_array_size(a) <= CL_TPM_NUM_PCRS * CL_EVLOG_MAX_ALGS,
		      CL_ERR_MALFORMED, "Log.PCRs is not an array of PCRs");
	for (size_t i = 0; i < json_array_size(a); i++) {
		const json_t *e = json_array_get(a, i);
		json_int_t idx = json_integer_value(json_object_get(e, "Index"));
		json_int_t halg = json_integer_value(json_object_get(e, "DigestAlg"));
		uint8_t *d = NULL;
		size_t len = 0;
		uint16_t alg = 0;
		int rc = CL_OK;

		/* crypto.SHA1 = 3, SHA256 = 5, SHA384 = 6, SHA512 = 7 */
		alg = halg == 3	  ? CL_TPM_ALG_SHA1
		      : halg == 5 ? CL_TPM_ALG_SHA256
		      : halg == 6 ? CL_TPM_ALG_SHA384
		      : halg == 7 ? CL_TPM_ALG_SHA512
				  : 0;
		CL_ENSURE_MSG(json_is_integer(json_object_get(e, "Index")) && idx >= 0 &&
				      idx < CL_TPM_NUM_PCRS && alg,
			      CL_ERR_MALFORMED, "Log.PCRs[%zu] has a bad index or algorithm", i);
		CL_GUARD(b64_member(e, "Digest", CL_TPM_MAX_DIGEST, 1, &d, &len));
		rc = cl_tpm_pcrs_set(out, alg, (unsigned)idx, d, len);
		free(d);
		CL_GUARD(rc);
	}
	return CL_OK;
}

static int chain_member(const json_t *o, struct cl_tpm_evidence *ev)
{
	const json_t *a = json_object_get(o, "ak_chain");

	if (!a || json_is_null(a))
		return CL_OK;
	CL_ENSURE_MSG(json_is_array(a) && json_array_size(a) <= MAX_CHAIN, CL_ERR_MALFORMED,
		      "\"ak_chain\" is not an array of at most %d certificates", MAX_CHAIN);
	ev->ak_chain = calloc(MAX_CHAIN, sizeof(*ev->ak_chain));
	ev->ak_chain_len = calloc(MAX_CHAIN, sizeof(*ev->ak_chain_len));
	CL_ENSURE_MSG(ev->ak_chain && ev->ak_chain_len, CL_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < json_array_size(a); i++) {
		json_t *wrap = json_pack("{s:O}", "c", json_array_get(a, i));
		int rc = wrap ? b64_member(wrap, "c", CL_MAX_CERT_DER, 1, &ev->ak_chain[i],
					   &ev->ak_chain_len[i])
			      : cl_fail(CL_ERR_NOMEM, "out of memory");

		json_decref(wrap);
		CL_GUARD(rc);
		ev->ak_chain_n = i + 1;
	}
	return CL_OK;
}

static int parse_root(const json_t *root, struct cl_tpm_evidence *ev)
{
	const json_t *tq = json_object_get(root, "tpm_quote");
	const json_t *ak = json_object_get(root, "AK"), *q = json_object_get(root, "Quote");

	if (json_is_object(ak) || json_is_object(q)) { /* go-attestation */
		const json_t *log = json_object_get(root, "Log");

		CL_ENSURE_MSG(json_is_object(ak) && json_is_object(q), CL_ERR_MALFORMED,
			      "go-attestation evidence needs AK and Quote");
		CL_GUARD(b64_member(ak, "Public", CL_TPM_MAX_AK, 1, &ev->ak, &ev->ak_len));
		CL_GUARD(b64_member(q, "Quote", CL_TPM_MAX_QUOTE, 1, &ev->quote, &ev->quote_len));
		CL_GUARD(b64_member(q, "Signature", CL_TPM_MAX_SIG, 1, &ev->sig, &ev->sig_len));
		if (json_is_object(log)) {
			CL_GUARD(b64_member(log, "Raw", CL_EVLOG_MAX_BYTES, 0, &ev->event_log,
					    &ev->event_log_len));
			if (json_object_get(log, "PCRs"))
				CL_GUARD(pcrs_go(json_object_get(log, "PCRs"), &ev->pcrs));
		}
		return CL_OK;
	}
	CL_GUARD(b64_member(root, "ak_public", CL_TPM_MAX_AK, 0, &ev->ak, &ev->ak_len));
	CL_GUARD(b64_member(root, "ak_cert", CL_MAX_CERT_DER, 0, &ev->ak_cert, &ev->ak_cert_len));
	CL_GUARD(chain_member(root, ev));
	if (json_is_object(tq)) { /* trustee */
		CL_GUARD(
			b64_member(tq, "message", CL_TPM_MAX_QUOTE, 1, &ev->quote, &ev->quote_len));
		CL_GUARD(b64_member(tq, "signature", CL_TPM_MAX_SIG, 1, &ev->sig, &ev->sig_len));
		if (json_object_get(tq, "pcrs"))
			CL_GUARD(pcrs_list(json_object_get(tq, "pcrs"), &ev->pcrs));
		return CL_OK;
	}
	CL_GUARD(b64_member(root, "quote", CL_TPM_MAX_QUOTE, 1, &ev->quote, &ev->quote_len));
	CL_GUARD(b64_member(root, "signature", CL_TPM_MAX_SIG, 1, &ev->sig, &ev->sig_len));
	CL_GUARD(b64_member(root, "event_log", CL_EVLOG_MAX_BYTES, 0, &ev->event_log,
			    &ev->event_log_len));
	if (json_object_get(root, "pcrs"))
		CL_GUARD(pcrs_ours(json_object_get(root, "pcrs"), &ev->pcrs));
	return CL_OK;
}

static json_t *load_json(const uint8_t *p, size_t n)
{
	json_error_t err;

	return json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &err);
}

int cl_tpm_json_shape(const json_t *root)
{
	return json_is_object(root) &&
	       ((json_object_get(root, "quote") && json_object_get(root, "signature")) ||
		json_is_object(json_object_get(root, "tpm_quote")) ||
		(json_is_object(json_object_get(root, "AK")) &&
		 json_is_object(json_object_get(root, "Quote"))));
}

int cl_tpm_detect(const uint8_t *ev, size_t n)
{
	size_t i = 0;
	json_t *root = NULL;
	int yes = 0;

	while (i < n && isspace(ev[i]))
		i++;
	if (i == n || ev[i] != '{')
		return 0;
	root = load_json(ev, n);
	yes = cl_tpm_json_shape(root);
	json_decref(root);
	return yes;
}

int cl_tpm_evidence_from_json(const json_t *root, struct cl_tpm_evidence *out)
{
	int rc = CL_OK;

	memset(out, 0, sizeof(*out));
	CL_ENSURE_MSG(json_is_object(root), CL_ERR_MALFORMED, "TPM evidence is not a JSON object");
	rc = parse_root(root, out);
	if (rc != CL_OK)
		cl_tpm_evidence_free(out);
	return rc;
}

int cl_tpm_evidence_parse(const uint8_t *json, size_t n, struct cl_tpm_evidence *out)
{
	json_t *root = load_json(json, n);
	int rc = cl_tpm_evidence_from_json(root, out);

	json_decref(root);
	return rc;
}

static int set_b64(json_t *o, const char *key, const uint8_t *p, size_t n)
{
	char *s = NULL;
	int bad = 0;

	if (!p || !n)
		return CL_OK;
	s = cl_base64_encode(p, n);
	bad = !s || json_object_set_new(o, key, json_string(s)) != 0;
	free(s);
	CL_ENSURE_MSG(!bad, CL_ERR_NOMEM, "out of memory");
	return CL_OK;
}

int cl_tpm_evidence_to_json(const struct cl_tpm_evidence *ev, json_t **out)
{
	json_t *o = json_object(), *pcrs = json_object(), *chain = NULL;
	int rc = CL_OK;

	*out = NULL;
	CL_CHECK(o && pcrs, CL_ERR_NOMEM, "out of memory");
	CL_TRY(set_b64(o, "ak_public", ev->ak, ev->ak_len));
	CL_TRY(set_b64(o, "ak_cert", ev->ak_cert, ev->ak_cert_len));
	if (ev->ak_chain_n) {
		chain = json_array();
		CL_CHECK(chain, CL_ERR_NOMEM, "out of memory");
		for (size_t i = 0; i < ev->ak_chain_n; i++) {
			char *s = cl_base64_encode(ev->ak_chain[i], ev->ak_chain_len[i]);

			CL_CHECK(s && json_array_append_new(chain, json_string(s)) == 0,
				 CL_ERR_NOMEM, "out of memory");
			free(s);
		}
		CL_CHECK(json_object_set(o, "ak_chain", chain) == 0, CL_ERR_NOMEM, "out of memory");
	}
	CL_TRY(set_b64(o, "quote", ev->quote, ev->quote_len));
	CL_TRY(set_b64(o, "signature", ev->sig, ev->sig_len));
	for (unsigned b = 0; b < ev->pcrs.nbanks; b++) {
		json_t *bank = json_object();
		char idx[4];

		CL_CHECK(bank && json_object_set_new(pcrs, cl_tpm_alg_name(ev->pcrs.bank[b].alg),
						     bank) == 0,
			 CL_ERR_NOMEM, "out of memory");
		for (unsigned i = 0; i < CL_TPM_NUM_PCRS; i++) {
			if (!(ev->pcrs.bank[b].present & (1u << i)))
				continue;
			snprintf(idx, sizeof(idx), "%u", i);
			CL_TRY(cl_claims_set_hex(bank, idx, ev->pcrs.bank[b].v[i],
						 ev->pcrs.bank[b].len));
		}
	}
	CL_CHECK(json_object_set(o, "pcrs", pcrs) == 0, CL_ERR_NOMEM, "out of memory");
	CL_TRY(set_b64(o, "event_log", ev->event_log, ev->event_log_len));
	*out = o;
	o = NULL;
out:
	json_decref(o);
	json_decref(pcrs);
	json_decref(chain);
	return rc;
}

/* ------------------------------------------------- tpm2-tools PCR files */

/* x86-64 sizes of the tpm2-tss structs tpm2-tools writes raw ("serialized"). */
#define SER_PCR_SELECTION      8u /* u16 hash, u8 sizeofSelect, u8[4] pcrSelect, pad */
#define SER_PCR_SELECTION_LIST (4u + TPM2_NUM_PCR_BANKS * SER_PCR_SELECTION)
#define SER_DIGEST	       (2u + 64u) /* TPM2B_DIGEST: u16 size, sizeof(TPMU_HA) bytes */
#define SER_DIGEST_LIST	       (4u + 8u * SER_DIGEST)

static int pcrs_values(const TPML_PCR_SELECTION *sel, struct cl_reader *r, struct cl_tpm_pcrs *out)
{
	for (unsigned b = 0; b < sel->count; b++) {
		const TPMS_PCR_SELECTION *s = &sel->pcrSelections[b];
		size_t len = cl_tpm_alg_digest_len(s->hash);

		for (unsigned i = 0; i < CL_TPM_NUM_PCRS; i++) {
			const uint8_t *v = NULL;

			if (i / 8 >= s->sizeofSelect || !(s->pcrSelect[i / 8] & (1u << (i % 8))))
				continue;
			CL_GUARD(cl_read_ref(r, len, &v));
			CL_GUARD(cl_tpm_pcrs_set(out, s->hash, i, v, len));
		}
	}
	CL_ENSURE_MSG(r->left == 0, CL_ERR_MALFORMED, "PCR file has %zu bytes too many", r->left);
	return CL_OK;
}

/*
 * The serialized layout: the selection the tool asked for (checked against
 * the quote's), then TPML_DIGESTs of up to 8 values each, filled in
 * selection order.
 */
static int pcrs_serialized(const TPML_PCR_SELECTION *sel, struct cl_reader *r,
			   struct cl_tpm_pcrs *out)
{
	uint32_t count = 0, nlists = 0, inlist = 0, listcount = 0;
	struct cl_reader lists;
	size_t total = 0;

	CL_GUARD(cl_read_u32le(r, &count));
	CL_ENSURE_MSG(count == sel->count, CL_ERR_MISMATCH,
		      "PCR file selects %u banks, the quote %u", count, sel->count);
	for (unsigned b = 0; b < TPM2_NUM_PCR_BANKS; b++) {
		uint16_t hash = 0;
		uint8_t size = 0, pad = 0, bits[4] = {0};

		CL_GUARD(cl_read_u16le(r, &hash));
		CL_GUARD(cl_read_u8(r, &size));
		CL_GUARD(cl_read_bytes(r, bits, 4));
		CL_GUARD(cl_read_u8(r, &pad));
		if (b >= count)
			continue;
		CL_ENSURE_MSG(hash == sel->pcrSelections[b].hash &&
				      size == sel->pcrSelections[b].sizeofSelect &&
				      memcmp(bits, sel->pcrSelections[b].pcrSelect, size) == 0,
			      CL_ERR_MISMATCH, "PCR file selection differs from the quote's");
	}
	CL_GUARD(cl_read_u32le(r, &nlists));
	CL_ENSURE_MSG((size_t)nlists * SER_DIGEST_LIST == r->left, CL_ERR_MALFORMED,
		      "PCR file: %u digest lists in %zu bytes", nlists, r->left);
	lists = *r;
	for (unsigned b = 0; b < sel->count; b++) {
		const TPMS_PCR_SELECTION *s = &sel->pcrSelections[b];
		size_t len = cl_tpm_alg_digest_len(s->hash);

		for (unsigned i = 0; i < CL_TPM_NUM_PCRS; i++) {
			uint16_t dsize = 0;
			uint8_t d[64];

			if (i / 8 >= s->sizeofSelect || !(s->pcrSelect[i / 8] & (1u << (i % 8))))
				continue;
			if (inlist == listcount) { /* next TPML_DIGEST */
				CL_ENSURE_MSG(total < nlists, CL_ERR_TRUNCATED,
					      "PCR file lacks values");
				CL_GUARD(cl_read_u32le(&lists, &listcount));
				CL_ENSURE_MSG(listcount >= 1 && listcount <= 8, CL_ERR_MALFORMED,
					      "PCR file: digest list of %u", listcount);
				inlist = 0;
				total++;
			}
			CL_GUARD(cl_read_u16le(&lists, &dsize));
			CL_GUARD(cl_read_bytes(&lists, d, sizeof(d)));
			CL_ENSURE_MSG(dsize == len, CL_ERR_MALFORMED, "PCR file: %u-byte %s value",
				      dsize, cl_tpm_alg_name(s->hash));
			CL_GUARD(cl_tpm_pcrs_set(out, s->hash, i, d, len));
			if (++inlist == listcount)
				CL_GUARD(cl_read_skip(&lists, (8 - listcount) * SER_DIGEST));
		}
	}
	CL_ENSURE_MSG(inlist == listcount && total == nlists, CL_ERR_MALFORMED,
		      "PCR file has more values than the quote selects");
	return CL_OK;
}

int cl_tpm_pcrs_from_tpm2_tools(const TPMS_ATTEST *quote, const uint8_t *p, size_t n,
				struct cl_tpm_pcrs *out)
{
	const TPML_PCR_SELECTION *sel = &quote->attested.quote.pcrSelect;
	struct cl_reader r = cl_reader_make(p, n);
	size_t values = 0;

	memset(out, 0, sizeof(*out));
	for (unsigned b = 0; b < sel->count; b++)
		for (unsigned i = 0; i < CL_TPM_NUM_PCRS; i++)
			if (i / 8 < sel->pcrSelections[b].sizeofSelect &&
			    (sel->pcrSelections[b].pcrSelect[i / 8] & (1u << (i % 8))))
				values += cl_tpm_alg_digest_len(sel->pcrSelections[b].hash);
	if (n == values)
		return pcrs_values(sel, &r, out);
	CL_ENSURE_MSG(
		n >= SER_PCR_SELECTION_LIST + 4, CL_ERR_MALFORMED,
		"PCR file of %zu bytes fits neither the values (%zu) nor the serialized layout", n,
		values);
	return pcrs_serialized(sel, &r, out);
}

/* ------------------------------------------------------ selection strings */

static int parse_indices(const char *s, size_t n, uint32_t *mask)
{
	size_t i = 0;

	*mask = 0;
	if (n == 3 && strncmp(s, "all", 3) == 0) {
		*mask = (1u << CL_TPM_NUM_PCRS) - 1;
		return CL_OK;
	}
	while (i < n) {
		unsigned lo = 0, hi = 0, digits = 0;

		while (i < n && isdigit((unsigned char)s[i]) && digits++ < 3)
			lo = lo * 10 + (unsigned)(s[i++] - '0');
		CL_ENSURE_MSG(digits > 0 && digits <= 2, CL_ERR_ARG, "bad PCR index in selection");
		hi = lo;
		if (i < n && s[i] == '-') {
			i++;
			hi = 0;
			digits = 0;
			while (i < n && isdigit((unsigned char)s[i]) && digits++ < 3)
				hi = hi * 10 + (unsigned)(s[i++] - '0');
			CL_ENSURE_MSG(digits > 0 && digits <= 2 && hi >= lo, CL_ERR_ARG,
				      "bad PCR range in selection");
		}
		CL_ENSURE_MSG(hi < CL_TPM_NUM_PCRS, CL_ERR_ARG, "PCR index %u (max %u)", hi,
			      CL_TPM_NUM_PCRS - 1);
		for (unsigned k = lo; k <= hi; k++)
			*mask |= 1u << k;
		if (i < n) {
			CL_ENSURE_MSG(s[i] == ',', CL_ERR_ARG, "bad character in PCR selection");
			i++;
			CL_ENSURE_MSG(i < n, CL_ERR_ARG, "PCR selection ends with ','");
		}
	}
	CL_ENSURE_MSG(*mask, CL_ERR_ARG, "empty PCR selection");
	return CL_OK;
}

int cl_tpm_pcr_selection_parse(const char *s, TPML_PCR_SELECTION *out)
{
	memset(out, 0, sizeof(*out));
	CL_ENSURE_MSG(s && *s, CL_ERR_ARG, "empty PCR selection");
	while (*s) {
		const char *colon = strchr(s, ':'), *end = strchr(s, '+');
		char name[16];
		uint16_t alg = 0;
		uint32_t mask = 0;
		TPMS_PCR_SELECTION *ps = NULL;

		if (!end)
			end = s + strlen(s);
		CL_ENSURE_MSG(colon && colon < end && (size_t)(colon - s) < sizeof(name),
			      CL_ERR_ARG, "PCR selection needs BANK:INDICES (e.g. sha256:0,1,7)");
		memcpy(name, s, (size_t)(colon - s));
		name[colon - s] = 0;
		alg = cl_tpm_alg_from_name(name);
		CL_ENSURE_MSG(alg && alg != CL_TPM_ALG_SM3_256, CL_ERR_ARG, "unknown PCR bank '%s'",
			      name);
		CL_GUARD(parse_indices(colon + 1, (size_t)(end - colon - 1), &mask));
		for (unsigned b = 0; b < out->count; b++)
			CL_ENSURE_MSG(out->pcrSelections[b].hash != alg, CL_ERR_ARG,
				      "PCR bank '%s' selected twice", name);
		CL_ENSURE_MSG(out->count < CL_EVLOG_MAX_ALGS, CL_ERR_ARG, "too many PCR banks");
		ps = &out->pcrSelections[out->count++];
		ps->hash = alg;
		ps->sizeofSelect = 3;
		ps->pcrSelect[0] = (uint8_t)(mask & 0xff);
		ps->pcrSelect[1] = (uint8_t)((mask >> 8) & 0xff);
		ps->pcrSelect[2] = (uint8_t)((mask >> 16) & 0xff);
		s = *end ? end + 1 : end;
		CL_ENSURE_MSG(*end == 0 || *s, CL_ERR_ARG, "PCR selection ends with '+'");
	}
	return CL_OK;
}
