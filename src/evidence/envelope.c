/*
 * The agent's JSON envelope around raw evidence. Nothing in it is believed:
 * the format name must agree with what the evidence itself is, certificates
 * are only candidates the inner verifier checks against the pinned roots,
 * and an event log means something only once its replay equals the signed
 * registers.
 */
#include <ctype.h>
#include <string.h>

#include "cloister/devtee.h"
#include "cloister/snp.h"
#include "cloister/tpm.h"
#include "envelope.h"
#include "internal.h"

/* GHCB specification, "SNP Extended Guest Request": GUIDs in RFC 4122 byte order. */
const uint8_t cl_snp_guid_vcek[16] = {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64,
				      0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd};
const uint8_t cl_snp_guid_vlek[16] = {0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e,
				      0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1};

int cl_envelope_detect(const uint8_t *ev, size_t n)
{
	size_t i = 0;

	while (i < n && isspace(ev[i]))
		i++;
	if (i == n || ev[i] != '{')
		return 0;
	/* Too large for either: the envelope parser refuses it without parsing. */
	return n > CL_MAX_ENVELOPE || !cl_tpm_detect(ev, n);
}

void cl_envelope_free(struct cl_envelope *e)
{
	if (!e)
		return;
	free(e->evidence);
	free(e->certs);
	free(e->eventlog);
	memset(e, 0, sizeof(*e));
}

static int b64_member(json_t *v, const char *key, size_t cap, uint8_t **out, size_t *len)
{
	const char *s = json_string_value(v);
	size_t sl = json_string_length(v);

	CL_ENSURE_MSG(s, CL_ERR_MALFORMED, "envelope \"%s\" is not a string", key);
	/* Checked before decoding so an oversized member costs no allocation. */
	CL_ENSURE_MSG(sl / 4 <= cap / 3 + 1, CL_ERR_MALFORMED,
		      "envelope \"%s\" larger than %zu bytes", key, cap);
	CL_ENSURE_MSG(cl_base64_decode(s, sl, out, len) == CL_OK, CL_ERR_MALFORMED,
		      "envelope \"%s\" is not base64", key);
	CL_ENSURE_MSG(*len <= cap, CL_ERR_MALFORMED, "envelope \"%s\" larger than %zu bytes", key,
		      cap);
	return CL_OK;
}

int cl_envelope_parse(const uint8_t *p, size_t n, struct cl_envelope *out)
{
	json_error_t jerr;
	json_t *root = NULL, *v = NULL;
	const char *key = NULL, *s = NULL;
	int rc = CL_OK, have_fmt = 0, have_prov = 0;

	memset(out, 0, sizeof(*out));
	CL_CHECK(n <= CL_MAX_ENVELOPE, CL_ERR_MALFORMED, "envelope larger than %u bytes",
		 CL_MAX_ENVELOPE);
	root = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &jerr);
	CL_CHECK(root, CL_ERR_MALFORMED, "envelope is not JSON: %s", jerr.text);
	CL_CHECK(json_is_object(root), CL_ERR_MALFORMED, "envelope is not a JSON object");
	json_object_foreach (root, key, v) {
		if (strcmp(key, "format") == 0) {
			s = json_string_value(v);
			CL_CHECK(s, CL_ERR_MALFORMED, "envelope \"format\" is not a string");
			CL_CHECK(cl_format_parse(s, &out->format) == CL_OK &&
					 out->format != CL_FORMAT_AUTO &&
					 out->format != CL_FORMAT_TPM,
				 CL_ERR_UNSUPPORTED, "envelope names an unsupported format");
			have_fmt = 1;
		} else if (strcmp(key, "provider") == 0) {
			s = json_string_value(v);
			CL_CHECK(s && json_string_length(v) > 0 &&
					 json_string_length(v) < sizeof(out->provider) &&
					 strlen(s) == json_string_length(v),
				 CL_ERR_MALFORMED, "envelope \"provider\" is not a short string");
			memcpy(out->provider, s, json_string_length(v) + 1);
			have_prov = 1;
		} else if (strcmp(key, "evidence") == 0) {
			CL_TRY(b64_member(v, key, CL_MAX_EVIDENCE, &out->evidence,
					  &out->evidence_len));
		} else if (strcmp(key, "certs") == 0) {
			CL_TRY(b64_member(v, key, CL_MAX_ENVELOPE_CERTS, &out->certs,
					  &out->certs_len));
		} else if (strcmp(key, "eventlog") == 0) {
			CL_TRY(b64_member(v, key, CL_MAX_ENVELOPE_EVENTLOG, &out->eventlog,
					  &out->eventlog_len));
			out->have_eventlog = 1;
		} else {
			CL_CHECK(0, CL_ERR_MALFORMED, "envelope has an unknown member");
		}
	}
	CL_CHECK(have_fmt && have_prov && out->evidence, CL_ERR_MALFORMED,
		 "envelope lacks \"format\", \"provider\" or \"evidence\"");
	CL_CHECK(out->evidence_len > 0, CL_ERR_MALFORMED, "envelope evidence is empty");
out:
	json_decref(root);
	if (rc != CL_OK)
		cl_envelope_free(out);
	return rc;
}

int cl_snp_certtable_find(const uint8_t *p, size_t n, const uint8_t guid[16], const uint8_t **cert,
			  size_t *len)
{
	static const uint8_t zero[16] = {0};
	struct cl_reader r = cl_reader_make(p, n);
	unsigned k = 0;

	*cert = NULL;
	*len = 0;
	for (;;) {
		uint8_t g[16];
		uint32_t off = 0, l = 0;

		CL_GUARD(cl_read_bytes(&r, g, sizeof(g)));
		CL_GUARD(cl_read_u32le(&r, &off));
		CL_GUARD(cl_read_u32le(&r, &l));
		if (memcmp(g, zero, sizeof(g)) == 0) {
			CL_ENSURE_MSG(off == 0 && l == 0, CL_ERR_MALFORMED,
				      "certificate table terminator is not all zero");
			break;
		}
		CL_ENSURE_MSG(++k <= CL_MAX_SNP_CERT_ENTRIES, CL_ERR_MALFORMED,
			      "certificate table has more than %d entries",
			      CL_MAX_SNP_CERT_ENTRIES);
		CL_ENSURE_MSG(l > 0 && off <= n && l <= n - off, CL_ERR_MALFORMED,
			      "certificate table entry %u lies outside the table", k);
		if (memcmp(g, guid, sizeof(g)) == 0) {
			CL_ENSURE_MSG(!*cert, CL_ERR_MALFORMED,
				      "certificate table names a certificate twice");
			*cert = p + off;
			*len = l;
		}
	}
	return CL_OK;
}

/* Claims for a replayed log: the entries, so a policy can read what was extended. */
static int eventlog_claims(const uint8_t *p, size_t n, json_t *claims)
{
	struct cl_reader r = cl_reader_make(p, n);
	json_t *arr = json_array();
	int rc = CL_OK;

	CL_CHECK(arr, CL_ERR_NOMEM, "out of memory");
	while (r.left) {
		uint32_t idx = 0;
		uint16_t elen = 0;
		const uint8_t *d = NULL, *e = NULL;
		char *dh = NULL, *eh = NULL;
		json_t *o = NULL;

		CL_TRY(cl_read_u32le(&r, &idx));
		CL_TRY(cl_read_ref(&r, CL_DEVTEE_HASH_LEN, &d));
		CL_TRY(cl_read_u16le(&r, &elen));
		CL_TRY(cl_read_ref(&r, elen, &e));
		dh = cl_hex_strdup(d, CL_DEVTEE_HASH_LEN);
		eh = cl_hex_strdup(e, elen);
		o = dh && eh ? json_pack("{s:I, s:s, s:s}", "index", (json_int_t)idx, "digest", dh,
					 "data", eh)
			     : NULL;
		free(dh);
		free(eh);
		CL_CHECK(o && json_array_append_new(arr, o) == 0, CL_ERR_NOMEM, "out of memory");
	}
	CL_CHECK(json_object_set_new(claims, "eventlog", arr) == 0, CL_ERR_NOMEM, "out of memory");
	arr = NULL;
out:
	json_decref(arr);
	return rc;
}

static int check_eventlog(const struct cl_envelope *e, json_t *claims)
{
	uint8_t rtmr[CL_DEVTEE_RTMRS][CL_DEVTEE_HASH_LEN];
	struct cl_devtee_report rep;

	CL_GUARD(cl_devtee_report_parse(e->evidence, e->evidence_len, &rep));
	CL_GUARD(cl_devtee_eventlog_replay(e->eventlog, e->eventlog_len, rtmr, NULL));
	CL_ENSURE_MSG(cl_ct_equal(rtmr, rep.rtmr, sizeof(rtmr)), CL_ERR_MISMATCH,
		      "event log replay does not match the report's registers");
	return eventlog_claims(e->eventlog, e->eventlog_len, claims);
}

int cl_envelope_verify(const uint8_t *ev, size_t n, const struct cl_verify_opts *o,
		       enum cl_format *fmt, json_t **claims)
{
	struct cl_envelope e = {0};
	struct cl_verify_opts io = *o;
	struct cl_verify_result res = {0};
	struct cl_snp_report rep = {0};
	enum cl_format inner = CL_FORMAT_AUTO;
	int rc = CL_OK;

	*claims = NULL;
	*fmt = CL_FORMAT_AUTO;
	CL_TRY(cl_envelope_parse(ev, n, &e));
	inner = cl_format_detect(e.evidence, e.evidence_len);
	*fmt = inner;
	CL_CHECK(inner != CL_FORMAT_AUTO, CL_ERR_UNSUPPORTED,
		 "envelope evidence is in no recognised format");
	CL_CHECK(inner == e.format, CL_ERR_MISMATCH, "envelope says %s but the evidence is %s",
		 cl_format_name(e.format), cl_format_name(inner));
	CL_CHECK(o->format == CL_FORMAT_AUTO || o->format == inner, CL_ERR_MISMATCH,
		 "--format %s but the envelope's evidence is %s", cl_format_name(o->format),
		 cl_format_name(inner));
	CL_CHECK(!e.certs || inner == CL_FORMAT_SNP, CL_ERR_MALFORMED,
		 "envelope \"certs\" goes only with SNP evidence");
	CL_CHECK(!e.have_eventlog || inner == CL_FORMAT_DEVTEE, CL_ERR_MALFORMED,
		 "envelope \"eventlog\" goes only with dev-TEE evidence");
	io.format = inner;
	if (e.certs) {
		const uint8_t *c = NULL;
		size_t cl = 0;

		int vlek = 0;

		/* A report that does not parse fails below with its own reason. */
		if (cl_snp_report_parse(e.evidence, e.evidence_len, &rep) == CL_OK)
			vlek = rep.signer == CL_SNP_SIGNER_VLEK;
		else
			cl_error_clear();
		/* The table is checked whole even when --vcek makes it unused. */
		CL_TRY(cl_snp_certtable_find(e.certs, e.certs_len,
					     vlek ? cl_snp_guid_vlek : cl_snp_guid_vcek, &c, &cl));
		if (!(o->vcek && o->vcek_len) && c) {
			io.vcek = c;
			io.vcek_len = cl;
		}
	}
	rc = cl_verify_evidence(e.evidence, e.evidence_len, &io, &res);
	*fmt = res.format;
	*claims = res.claims;
	res.claims = NULL;
	if (rc != CL_OK) {
		rc = cl_fail(rc, "%s", res.reason);
		goto out;
	}
	if (e.have_eventlog)
		CL_TRY(check_eventlog(&e, *claims));
out:
	cl_verify_result_free(&res);
	cl_envelope_free(&e);
	return rc;
}
