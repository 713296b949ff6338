/*
 * The sev crate's serde JSON report (Trustee's snp evidence) on arbitrary
 * text: the converter must refuse or produce bytes, never both, and what it
 * produces goes through the report parser and the whole verifier with the
 * real VCEK from the Trustee vector, so signature checks run on every input
 * that converts and parses.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/evidence.h"
#include "cloister/snp.h"

static struct cl_buf vcek;

/* cert_chain[0].data of the Trustee evidence, as DER. */
static void load_vcek(void)
{
	const char *base = getenv("CLOISTER_VECTORS");
	char path[4096];
	struct cl_buf b = {0};
	json_t *j = NULL, *x = NULL;
	size_t i = 0;

	snprintf(path, sizeof(path), "%s/sev-snp/trustee/e2e-snp-evidence.json",
		 base && *base ? base : "../shared/vectors");
	if (cl_read_file(path, 0, &b) != CL_OK)
		return; /* converter-only fuzzing still works */
	j = json_loadb((const char *)b.data, b.len, 0, NULL);
	json_array_foreach (
		json_object_get(json_array_get(json_object_get(j, "cert_chain"), 0), "data"), i,
		x) {
		uint8_t c = (uint8_t)json_integer_value(x);

		if (cl_buf_append(&vcek, &c, 1) != CL_OK)
			break;
	}
	json_decref(j);
	cl_buf_free(&b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	cl_log_set_level(CL_LOG_ERROR);
	load_vcek();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t rep[CL_SNP_REPORT_SIZE];
	struct cl_snp_report r;
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	struct cl_verify_result res = {0};

	if (cl_snp_report_from_serde_json((const char *)data, size, rep) != CL_OK) {
		for (size_t i = 0; i < sizeof(rep); i++)
			if (rep[i] != 0)
				abort(); /* a refusal must not leave partial bytes behind */
		return 0;
	}
	if (cl_snp_report_parse(rep, sizeof(rep), &r) != CL_OK || vcek.len == 0)
		return 0;
	o.format = CL_FORMAT_SNP;
	o.offline = 1;
	o.cache_dir = "/nonexistent/cloister-fuzz";
	o.at = 1751328000; /* 2025-07-01, inside the VCEK's validity */
	o.snp.vcek = vcek.data;
	o.snp.vcek_len = vcek.len;
	(void)cl_verify_evidence(rep, sizeof(rep), &o, &res);
	cl_verify_result_free(&res);
	return 0;
}
