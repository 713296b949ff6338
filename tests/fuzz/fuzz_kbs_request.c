/*
 * KBS request bodies: the auth and attest messages, the evidence shapes of
 * every TEE inside them, the runtime-data hash, resource paths and sealed
 * blobs, all from the same attacker-controlled bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/kbs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const tees[] = {"snp", "tdx", "sgx", "devtee", "other"};
	static const uint8_t kek[CL_KBS_KEK_LEN] = {1};
	struct cl_kbs_request rq;
	struct cl_kbs_attestation at;
	struct cl_buf b = {0}, v = {0};
	uint8_t h[64];
	char *path = NULL;

	(void)cl_kbs_parse_request(data, size, &rq);
	if (cl_kbs_parse_attestation(data, size, &at) == CL_OK) {
		(void)cl_kbs_runtime_data_hash(at.runtime_data, h);
		for (size_t i = 0; i < sizeof(tees) / sizeof(tees[0]); i++) {
			(void)cl_kbs_evidence_bytes(tees[i], at.evidence, &b, &v);
			cl_buf_free(&b);
			cl_buf_free(&v);
		}
		cl_kbs_attestation_free(&at);
	}
	(void)cl_kbs_resource_path_check((const char *)data, size < 300 ? size : 300);
	(void)cl_kbs_unseal(kek, "a/b/c", data, size, &b);
	cl_buf_free(&b);
	path = malloc(size + 1);
	if (path) {
		memcpy(path, data, size);
		path[size] = 0;
		(void)cl_kbs_resource_path_check(path, strlen(path));
		free(path);
	}
	return 0;
}
