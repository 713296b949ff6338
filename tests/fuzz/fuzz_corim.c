/*
 * CoRIM reader: unsigned and COSE_Sign1 CoRIMs, with and without a key, then
 * lookups in whatever was accepted. The corpus starts empty: the vectors hold
 * no CoRIMs.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cloister/appraise.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fixed P-256 public key: signatures will not verify, but everything before them runs. */
static const char key_pem[] = "-----BEGIN PUBLIC KEY-----\n"
			      "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEJ8gaKVp65C1yjFp6O8iPzS/SxXw7\n"
			      "N7mRUkR45PdquSRi9ms5GVIVafaYnZT/3HQsEoh5Q7tV1wiaXarE1SGX8Q==\n"
			      "-----END PUBLIC KEY-----\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cl_corim_opts plain = {NULL, 0, 1748736000};
	struct cl_corim_opts keyed = {(const uint8_t *)key_pem, sizeof(key_pem) - 1, 1748736000};
	struct cl_refvalues *rv = NULL;

	(void)cl_corim_detect(data, size);
	if (cl_corim_parse(data, size, &plain, &rv) == CL_OK) {
		json_t *v = json_string("a1f3");
		json_t *list = cl_refvalues_values(rv, "snp", "measurement", 1748736000);

		(void)cl_refvalues_match(rv, "snp", "measurement", v, 1748736000);
		(void)cl_refvalues_meets_min(rv, "snp", "guest_svn", v, 1748736000);
		json_decref(list);
		json_decref(v);
		cl_refvalues_free(rv);
		rv = NULL;
	}
	if (cl_corim_parse(data, size, &keyed, &rv) == CL_OK)
		cl_refvalues_free(rv);
	return 0;
}
