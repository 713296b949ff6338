/*
 * The SEV-SNP report parser on arbitrary bytes, and the whole verifier with a
 * fixed, real VCEK and VLEK (loaded once) so the signature, hwID and TCB
 * checks run on every input that parses. The process-wide chain cache keeps
 * this at one P-384 verification per input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/evidence.h"
#include "cloister/snp.h"

static struct cl_buf vcek, vlek;

static void load(const char *rel, struct cl_buf *out)
{
	const char *base = getenv("CLOISTER_VECTORS");
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", base && *base ? base : "../shared/vectors", rel);
	if (cl_read_file(path, 0, out) != CL_OK)
		memset(out, 0, sizeof(*out)); /* parser-only fuzzing still works */
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	cl_log_set_level(CL_LOG_ERROR);
	load("sev-snp/trustee/test-vcek.der", &vcek);
	load("sev-snp/trustee/test-vlek.der", &vlek);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cl_snp_report r;
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	struct cl_verify_result res = {0};

	if (cl_snp_report_parse(data, size, &r) != CL_OK)
		return 0;
	o.format = CL_FORMAT_SNP;
	o.offline = 1;
	o.cache_dir = "/nonexistent/cloister-fuzz";
	o.at = 1748736000; /* 2025-06-01, inside both certificates' validity */
	o.allow_debug = data[8] & 1;
	if (r.signer == CL_SNP_SIGNER_VLEK) {
		o.snp.vcek = vlek.data;
		o.snp.vcek_len = vlek.len;
	} else {
		o.snp.vcek = vcek.data;
		o.snp.vcek_len = vcek.len;
	}
	(void)cl_verify_evidence(data, size, &o, &res);
	cl_verify_result_free(&res);
	return 0;
}
