/* Reference-value files: parse, then look values up in what was accepted. */
#include <stddef.h>
#include <stdint.h>

#include "cloister/appraise.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const plats[] = {"snp", "sgx", "tdx", "devtee"};
	static const char *const claims[] = {"measurement", "reported_tcb", "guest_svn", "x"};
	struct cl_refvalues *rv = NULL;
	json_t *vals[4];

	if (cl_refvalues_parse((const char *)data, size, &rv) != CL_OK)
		return 0;
	vals[0] = json_string("a1f3");
	vals[1] = json_integer(4);
	vals[2] = json_pack("{s:i, s:i}", "bootloader", 3, "snp", 8);
	vals[3] = json_real(2.5);
	for (size_t p = 0; p < 4; p++) {
		for (size_t c = 0; c < 4; c++) {
			json_t *list = cl_refvalues_values(rv, plats[p], claims[c], 1748736000);

			(void)cl_refvalues_has(rv, plats[p], claims[c]);
			(void)cl_refvalues_min(rv, plats[p], claims[c], 1748736000);
			for (size_t v = 0; v < 4; v++) {
				(void)cl_refvalues_match(rv, plats[p], claims[c], vals[v],
							 1748736000);
				(void)cl_refvalues_meets_min(rv, plats[p], claims[c], vals[v], 0);
			}
			json_decref(list);
		}
	}
	for (size_t v = 0; v < 4; v++)
		json_decref(vals[v]);
	cl_refvalues_free(rv);
	return 0;
}
