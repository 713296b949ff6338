/*
 * Gramine's /dev/attestation pseudo-files (SGX enclaves): write 64 bytes to
 * user_report_data, read quote; attestation_type says whether DCAP quotes
 * are available at all. Sealing keys come from keys/_sgx_mrenclave.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define GRAMINE_PATH "/dev/attestation"
#define QUOTE_MAX    (64 * 1024)

static const char *base(const struct cl_attest_config *cfg)
{
	return cl_attest_cfg(cfg->gramine_path, "CLOISTER_GRAMINE_PATH", GRAMINE_PATH);
}

static int file(const struct cl_attester *a, const char *name, char *out, size_t cap)
{
	int w = snprintf(out, cap, "%s/%s", a->path, name);

	CL_ENSURE_MSG(w > 0 && (size_t)w < cap, CL_ERR_ARG, "path too long");
	return CL_OK;
}

static int probe(const struct cl_attest_config *cfg)
{
	char p[PATH_MAX];
	int w = snprintf(p, sizeof(p), "%s/attestation_type", base(cfg));

	return w > 0 && (size_t)w < sizeof(p) && access(p, R_OK) == 0;
}

static int open_(const struct cl_attest_config *cfg, struct cl_attester *a)
{
	const char *b = base(cfg);

	CL_ENSURE_MSG(strlen(b) < sizeof(a->path), CL_ERR_ARG, "path too long");
	snprintf(a->path, sizeof(a->path), "%s", b);
	return CL_OK;
}

static int evidence(struct cl_attester *a, const uint8_t rd[64], struct cl_attest_evidence *out)
{
	char path[PATH_MAX];
	struct cl_buf t = {0};
	int rc = CL_OK;

	CL_TRY(file(a, "attestation_type", path, sizeof(path)));
	CL_TRY(cl_attest_read_attr(path, 64, &t));
	while (t.len && (t.data[t.len - 1] == '\n' || t.data[t.len - 1] == '\0'))
		t.len--;
	CL_CHECK(t.len == 4 && memcmp(t.data, "dcap", 4) == 0, CL_ERR_UNSUPPORTED,
		 "Gramine attestation type is '%.*s'; only dcap quotes can be verified",
		 (int)(t.len < 16 ? t.len : 16), (const char *)t.data);
	CL_TRY(file(a, "user_report_data", path, sizeof(path)));
	CL_TRY(cl_attest_write_attr(path, rd, 64));
	CL_TRY(file(a, "quote", path, sizeof(path)));
	CL_TRY(cl_attest_read_attr(path, QUOTE_MAX, &out->evidence));
	out->format = CL_FORMAT_SGX;
	snprintf(out->provider, sizeof(out->provider), "%s", "gramine/dcap");
out:
	cl_buf_free(&t);
	return rc;
}

static int derive_key(struct cl_attester *a, const uint8_t *label, size_t n, uint8_t key[32])
{
	char path[PATH_MAX];
	struct cl_buf k = {0};
	int rc = CL_OK;

	CL_TRY(file(a, "keys/_sgx_mrenclave", path, sizeof(path)));
	CL_TRY(cl_attest_read_attr(path, 64, &k));
	CL_CHECK(k.len == 16, CL_ERR_MALFORMED, "%s holds %zu bytes, want 16", path, k.len);
	CL_TRY(cl_attest_hkdf(k.data, k.len, "cloister gramine key v1", label, n, key));
out:
	cl_buf_free(&k);
	return rc;
}

const struct cl_attest_provider cl_attest_gramine_provider = {
	CL_ATTEST_GRAMINE, probe, open_, evidence, derive_key, NULL, NULL, NULL,
};
