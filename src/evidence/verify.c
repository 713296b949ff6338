#include <stdio.h>
#include <string.h>

#include "cloister/devtee.h"
#include "cloister/evidence.h"
#include "cloister/tpm.h"
#include "envelope.h"
#include "internal.h"

static const char *const format_names[] = {"auto", "snp", "tdx", "sgx", "devtee", "tpm"};

const char *cl_format_name(enum cl_format f)
{
	if ((unsigned)f < sizeof(format_names) / sizeof(format_names[0]))
		return format_names[f];
	return "unknown";
}

int cl_format_parse(const char *s, enum cl_format *out)
{
	for (unsigned i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
		if (strcmp(s, format_names[i]) == 0) {
			*out = (enum cl_format)i;
			return CL_OK;
		}
	}
	return cl_fail(CL_ERR_ARG,
		       "unknown evidence format '%s' (auto, snp, tdx, sgx, devtee, tpm)", s);
}

enum cl_format cl_format_detect(const uint8_t *ev, size_t n)
{
	struct cl_reader r = cl_reader_make(ev, n);
	uint16_t ver = 0, att_key = 0;
	uint32_t tee = 0, snpver = 0;

	/*
	 * DCAP quote header: version u16, att key type u16, tee type u32. Lengths
	 * are checked first: detection is a guess and leaves no failure detail.
	 */
	if (n >= 8 && cl_read_u16le(&r, &ver) == CL_OK && cl_read_u16le(&r, &att_key) == CL_OK &&
	    cl_read_u32le(&r, &tee) == CL_OK) {
		if ((ver == 3 || ver == 4) && att_key == 2 && tee == 0x00000000)
			return CL_FORMAT_SGX;
		if ((ver == 4 || ver == 5) && att_key == 2 && tee == 0x00000081)
			return CL_FORMAT_TDX;
		if (ver == 5 && att_key == 2 && tee == 0x00000000)
			return CL_FORMAT_SGX;
	}
	if (n >= CL_DEVTEE_MAGIC_LEN && memcmp(ev, CL_DEVTEE_MAGIC, CL_DEVTEE_MAGIC_LEN) == 0)
		return CL_FORMAT_DEVTEE;
	/*
	 * SNP ATTESTATION_REPORT: 1184 bytes, version 2..5 at offset 0 (which no
	 * DCAP header, dev-TEE magic or JSON text starts with), then at most
	 * CL_MAX_TRAILING unsigned bytes.
	 */
	r = cl_reader_make(ev, n);
	if (n >= 1184 && n - 1184 <= CL_MAX_TRAILING && cl_read_u32le(&r, &snpver) == CL_OK &&
	    snpver >= 2 && snpver <= 5)
		return CL_FORMAT_SNP;
	if (cl_tpm_detect(ev, n))
		return CL_FORMAT_TPM;
	return CL_FORMAT_AUTO;
}

json_t *cl_claims_new(const char *platform)
{
	return json_pack("{s:s, s:s, s:s, s:b, s:s, s:[]}", "platform", platform, "measurement", "",
			 "report_data", "", "debug", 0, "tcb_status", "Unknown", "advisory_ids");
}

int cl_claims_set_hex(json_t *claims, const char *key, const uint8_t *p, size_t n)
{
	char *s = cl_hex_strdup(p, n);

	if (!s || json_object_set_new(claims, key, json_string(s)) != 0) {
		free(s);
		return cl_fail(CL_ERR_NOMEM, "out of memory");
	}
	free(s);
	return CL_OK;
}

int cl_trailing_check(size_t n, size_t used, const char *what, size_t *trailing)
{
	*trailing = 0;
	if (n < used)
		return cl_fail(CL_ERR_TRUNCATED, "%s is %zu bytes, expected %zu", what, n, used);
	if (n - used > CL_MAX_TRAILING)
		return cl_fail(CL_ERR_MALFORMED, "%zu bytes follow the %s (at most %u)", n - used,
			       what, CL_MAX_TRAILING);
	*trailing = n - used;
	return CL_OK;
}

int cl_claims_set_trailing(json_t *claims, size_t trailing)
{
	if (json_object_set_new(claims, "trailing_bytes", json_integer((json_int_t)trailing)) != 0)
		return cl_fail(CL_ERR_NOMEM, "out of memory");
	return CL_OK;
}

int cl_check_report_data(const struct cl_verify_opts *o, const uint8_t rd[64])
{
	if (!o->have_report_data)
		return CL_OK;
	/* Not secret, but there is no reason to leak where a mismatch starts. */
	if (!cl_ct_equal(rd, o->report_data, CL_REPORT_DATA_LEN))
		return cl_fail(CL_ERR_MISMATCH, "report data does not match the expected value");
	return CL_OK;
}

int cl_verify_evidence(const uint8_t *ev, size_t n, const struct cl_verify_opts *opts,
		       struct cl_verify_result *res)
{
	static const struct cl_verify_opts defaults = CL_VERIFY_OPTS_INIT;
	const struct cl_verify_opts *o = opts ? opts : &defaults;
	enum cl_format fmt = o->format;
	json_t *claims = NULL;
	int rc = CL_OK;

	memset(res, 0, sizeof(*res));
	cl_error_clear();
	/* The agent's JSON envelope has its own size cap and names its inner format. */
	if (fmt != CL_FORMAT_TPM && cl_envelope_detect(ev, n)) {
		rc = cl_envelope_verify(ev, n, o, &res->format, &claims);
		goto out;
	}
	if (n > CL_MAX_EVIDENCE) {
		rc = cl_fail(CL_ERR_MALFORMED, "evidence larger than %u bytes", CL_MAX_EVIDENCE);
		goto out;
	}
	if (fmt == CL_FORMAT_AUTO)
		fmt = cl_format_detect(ev, n);
	if (o->no_cache)
		cl_cache_bypass(1);
	res->format = fmt;
	switch (fmt) {
	case CL_FORMAT_SNP:
		rc = cl_snp_verify(ev, n, o, &claims);
		break;
	case CL_FORMAT_TDX:
	case CL_FORMAT_SGX:
		rc = cl_dcap_verify(ev, n, o, &fmt, &claims);
		res->format = fmt;
		break;
	case CL_FORMAT_DEVTEE:
		rc = cl_devtee_verify(ev, n, o, &claims);
		break;
	case CL_FORMAT_TPM:
		rc = cl_tpm_verify(ev, n, o, &claims);
		break;
	case CL_FORMAT_AUTO:
	default:
		rc = cl_fail(CL_ERR_UNSUPPORTED, "unrecognised evidence format");
		break;
	}
out:
	if (o->no_cache)
		cl_cache_bypass(0);
	res->status = rc;
	res->claims = claims;
	if (rc != CL_OK)
		snprintf(res->reason, sizeof(res->reason), "%s", cl_error_reason(rc));
	else
		cl_error_clear(); /* a verified result carries no failure detail */
	return rc;
}

void cl_verify_result_free(struct cl_verify_result *res)
{
	if (!res)
		return;
	json_decref(res->claims);
	res->claims = NULL;
}
