#include "internal.h"

int cl_snp_verify(const uint8_t *ev, size_t n, const struct cl_verify_opts *o, json_t **claims)
{
	(void)ev; (void)n; (void)o; (void)claims;
	return cl_fail(CL_ERR_UNSUPPORTED, "SEV-SNP verification not built yet");
}
