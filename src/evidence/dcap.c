#include "internal.h"

int cl_dcap_verify(const uint8_t *ev, size_t n, const struct cl_verify_opts *o, enum cl_format *fmt, json_t **claims)
{
	(void)ev; (void)n; (void)o; (void)fmt; (void)claims;
	return cl_fail(CL_ERR_UNSUPPORTED, "DCAP verification not built yet");
}
