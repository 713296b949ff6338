/*
 * TDX runtime measurement registers in sysfs (Linux 6.16+,
 * Documentation/ABI/testing/sysfs-devices-virtual-misc-tdx_guest):
 * measurements/rtmrN:sha384 reads as the register's 48 bytes, and writing 48
 * bytes extends it. The kernel keeps no log of such extensions; callers that
 * need one keep it beside the evidence. Quotes come through configfs-tsm.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static int reg_path(const char *dir, unsigned index, char *out, size_t cap)
{
	int w = snprintf(out, cap, "%s/rtmr%u:sha384", dir, index);

	CL_ENSURE_MSG(index < 4, CL_ERR_ARG, "RTMR index %u out of range (0..3)", index);
	CL_ENSURE_MSG(w > 0 && (size_t)w < cap, CL_ERR_ARG, "RTMR path too long");
	return CL_OK;
}

int cl_attest_tdx_read(const char *dir, unsigned index, uint8_t out[48])
{
	char path[PATH_MAX];
	struct cl_buf b = {0};
	int rc = CL_OK;

	CL_TRY(reg_path(dir, index, path, sizeof(path)));
	CL_TRY(cl_attest_read_attr(path, 4096, &b));
	CL_CHECK(b.len == 48, CL_ERR_MALFORMED, "%s holds %zu bytes, want 48", path, b.len);
	memcpy(out, b.data, 48);
out:
	cl_buf_free(&b);
	return rc;
}

int cl_attest_tdx_extend(const char *dir, unsigned index, const uint8_t digest[48])
{
	char path[PATH_MAX];

	CL_GUARD(reg_path(dir, index, path, sizeof(path)));
	return cl_attest_write_attr(path, digest, 48);
}

static const char *dir_of(const struct cl_attest_config *cfg)
{
	return cl_attest_cfg(cfg->tdx_measurements, "CLOISTER_TDX_MEASUREMENTS",
			     CL_TDX_MEASUREMENTS);
}

static int probe(const struct cl_attest_config *cfg)
{
	char path[PATH_MAX];

	return reg_path(dir_of(cfg), 0, path, sizeof(path)) == CL_OK && access(path, R_OK) == 0;
}

static int open_(const struct cl_attest_config *cfg, struct cl_attester *a)
{
	const char *d = dir_of(cfg);

	CL_ENSURE_MSG(strlen(d) < sizeof(a->path), CL_ERR_ARG, "path too long");
	snprintf(a->path, sizeof(a->path), "%s", d);
	return CL_OK;
}

static int extend(struct cl_attester *a, unsigned index, const uint8_t digest[48],
		  const void *event, size_t event_len)
{
	(void)event;
	(void)event_len;
	return cl_attest_tdx_extend(a->path, index, digest);
}

static int read_register(struct cl_attester *a, unsigned index, uint8_t out[48])
{
	return cl_attest_tdx_read(a->path, index, out);
}

const struct cl_attest_provider cl_attest_tdx_guest_provider = {
	CL_ATTEST_TDX_GUEST, probe, open_, NULL, NULL, extend, read_register, NULL,
};
