/*
 * AWS Nitro attestation documents on arbitrary bytes: raw COSE_Sign1 and
 * base64 text go through detection, the strict parser and, whenever a
 * document parses, the chain and signature checks against the pinned root at
 * a time inside the real documents' validity.
 */
#include <stdint.h>
#include <stdlib.h>

#include "cloister/evidence.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	cl_log_set_level(CL_LOG_ERROR);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	struct cl_verify_result res = {0};

	/* Detected, then forced: both paths see every input. */
	o.at = 1725719859; /* 2024-09-07T14:37:39Z */
	o.allow_debug = size > 0 && (data[size - 1] & 1);
	(void)cl_verify_evidence(data, size, &o, &res);
	cl_verify_result_free(&res);
	o.format = CL_FORMAT_NITRO;
	(void)cl_verify_evidence(data, size, &o, &res);
	cl_verify_result_free(&res);
	return 0;
}
