/*
 * The claims every format shares (platform, measurement, report_data, debug,
 * tcb_status, advisory_ids, trailing_bytes) and the checks every format makes
 * the same way, so that one policy reads all platforms alike.
 */
#include <string.h>

#include "internal.h"

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
