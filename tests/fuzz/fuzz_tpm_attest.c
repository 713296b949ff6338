/*
 * TPM evidence on arbitrary bytes: the raw TPMS_ATTEST, TPMT_SIGNATURE and AK
 * parsers, and the whole verifier (envelope JSON, quote, signature, PCR
 * digest, event log replay) with the real GCP Shielded VM AK pinned, so
 * inputs close to the vector reach the signature and replay checks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/evidence.h"
#include "cloister/tpm.h"

static uint8_t *ak;
static size_t ak_len;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *base = getenv("CLOISTER_VECTORS");
	struct cl_buf b = {0};
	struct cl_tpm_evidence ev;
	char path[4096];

	(void)argc;
	(void)argv;
	cl_log_set_level(CL_LOG_ERROR);
	snprintf(path, sizeof(path), "%s/tpm/go-attestation/windows_gcp_shielded_vm.json",
		 base && *base ? base : "../shared/vectors");
	/* Without the vector the parsers are still fuzzed, the AK left unpinned. */
	if (cl_read_file(path, 0, &b) == CL_OK &&
	    cl_tpm_evidence_parse(b.data, b.len, &ev) == CL_OK) {
		ak = ev.ak;
		ak_len = ev.ak_len;
		ev.ak = NULL;
		cl_tpm_evidence_free(&ev);
	}
	cl_buf_free(&b);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	struct cl_verify_result res = {0};
	TPMS_ATTEST q;
	TPMT_SIGNATURE s;
	EVP_PKEY *k = NULL;

	(void)cl_tpm_quote_parse(data, size, &q);
	(void)cl_tpm_signature_parse(data, size, &s);
	if (cl_tpm_ak_parse(data, size, &k, NULL) == CL_OK)
		EVP_PKEY_free(k);
	(void)cl_tpm_detect(data, size);
	o.format = CL_FORMAT_TPM;
	o.tpm.ak = ak;
	o.tpm.ak_len = ak_len;
	(void)cl_verify_evidence(data, size, &o, &res);
	cl_verify_result_free(&res);
	return 0;
}
