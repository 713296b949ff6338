/*
 * Fuzz the Intel collateral parsers: the dcap-qvl JSON layout (which also
 * parses the signed TCB info and QE identity strictly), and the PCS body
 * scanner that finds the exact signed span, checked against jansson.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/endorse.h"
#include "endorse/intel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cl_intel_collateral *c = NULL;
	size_t off = 0, len = 0;

	if (cl_intel_collateral_parse_json(data, size, &c) == CL_OK) {
		/* a parsed set must answer its accessors and verify without crashing */
		if (!cl_intel_collateral_crls(c))
			abort();
		(void)!cl_intel_collateral_verify(c, 1751328000); /* 2025-07-01 */
	}
	cl_intel_collateral_free(c);

	for (int k = 0; k < 2; k++) {
		const char *key = k ? "enclaveIdentity" : "tcbInfo";

		if (cl_intel_json_member_span(data, size, key, &off, &len) == CL_OK) {
			json_t *whole =
				json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
			json_t *part = NULL;

			if (off > size || len > size - off)
				abort();
			/* whenever jansson accepts the body, the span must be that member's value */
			if (json_is_object(whole)) {
				part = json_loadb((const char *)data + off, len, JSON_DECODE_ANY,
						  NULL);
				if (!part || !json_equal(part, json_object_get(whole, key)))
					abort();
			}
			json_decref(part);
			json_decref(whole);
		}
	}
	return 0;
}
