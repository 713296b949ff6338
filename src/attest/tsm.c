/*
 * Linux configfs-tsm (Documentation/ABI/testing/configfs-tsm-report):
 * mkdir an entry, write inblob, read outblob (+auxblob, provider). The
 * entry's generation counts writes; anyone else writing the same entry
 * between our write and our read shows up as a generation that moved by
 * more than our one write, and the report is fetched again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define TSM_PATH	"/sys/kernel/config/tsm/report"
#define TSM_OUTBLOB_MAX (32 * 1024)
#define TSM_AUXBLOB_MAX (64 * 1024)
#define TSM_TRIES	3

int cl_attest_tsm_format(const char *provider, enum cl_format *out)
{
	if (strcmp(provider, "sev_guest") == 0)
		*out = CL_FORMAT_SNP;
	else if (strcmp(provider, "tdx_guest") == 0)
		*out = CL_FORMAT_TDX;
	else if (strcmp(provider, "arm_cca_guest") == 0)
		*out = CL_FORMAT_AUTO;
	else
		CL_BAIL(CL_ERR_UNSUPPORTED, "unknown configfs-tsm provider '%s'", provider);
	return CL_OK;
}

static int probe(const struct cl_attest_config *cfg)
{
	struct stat st;

	return stat(cl_attest_cfg(cfg->tsm_path, "CLOISTER_TSM_PATH", TSM_PATH), &st) == 0 &&
	       S_ISDIR(st.st_mode);
}

static int attr(const struct cl_attester *a, const char *name, char *out, size_t cap)
{
	int w = snprintf(out, cap, "%s/%s", a->entry, name);

	CL_ENSURE_MSG(w > 0 && (size_t)w < cap, CL_ERR_ARG, "configfs-tsm path too long");
	return CL_OK;
}

/* A small text attribute, trailing newline removed. */
static int read_text(const struct cl_attester *a, const char *name, char *out, size_t cap)
{
	char path[PATH_MAX];
	struct cl_buf b = {0};
	int rc = CL_OK;

	CL_TRY(attr(a, name, path, sizeof(path)));
	CL_TRY(cl_attest_read_attr(path, 64, &b));
	while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\0'))
		b.len--;
	CL_CHECK(b.len > 0 && b.len < cap && memchr(b.data, '\0', b.len) == NULL, CL_ERR_MALFORMED,
		 "configfs-tsm %s is not a short text value", name);
	memcpy(out, b.data, b.len);
	out[b.len] = '\0';
out:
	cl_buf_free(&b);
	return rc;
}

static int read_generation(const struct cl_attester *a, unsigned long long *g)
{
	char text[32], *end = NULL;

	CL_GUARD(read_text(a, "generation", text, sizeof(text)));
	errno = 0;
	*g = strtoull(text, &end, 10);
	CL_ENSURE_MSG(!errno && *end == '\0' && text[0] >= '0' && text[0] <= '9', CL_ERR_MALFORMED,
		      "configfs-tsm generation '%s' is not a number", text);
	return CL_OK;
}

static int open_(const struct cl_attest_config *cfg, struct cl_attester *a)
{
	const char *base = cl_attest_cfg(cfg->tsm_path, "CLOISTER_TSM_PATH", TSM_PATH);
	const char *name = cl_attest_cfg(cfg->tsm_entry, "CLOISTER_TSM_ENTRY", NULL);
	char def[64];
	int w = 0;

	if (!name) {
		snprintf(def, sizeof(def), "cloister.%ld", (long)getpid());
		name = def;
	}
	CL_ENSURE_MSG(!strchr(name, '/') && strcmp(name, ".") && strcmp(name, ".."), CL_ERR_ARG,
		      "bad configfs-tsm entry name '%s'", name);
	w = snprintf(a->entry, sizeof(a->entry), "%s/%s", base, name);
	CL_ENSURE_MSG(w > 0 && (size_t)w < sizeof(a->entry), CL_ERR_ARG,
		      "configfs-tsm path too long");
	snprintf(a->path, sizeof(a->path), "%s", base);
	/* configfs fills a new directory with the report attributes. */
	if (mkdir(a->entry, 0700) == 0)
		a->entry_created = 1;
	else
		CL_ENSURE_MSG(errno == EEXIST, CL_ERR_IO, "cannot create %s: %s", a->entry,
			      strerror(errno));
	return CL_OK;
}

static int evidence(struct cl_attester *a, const uint8_t rd[64], struct cl_attest_evidence *out)
{
	char path[PATH_MAX], provider[24];
	unsigned long long g0 = 0, g1 = 0;
	int rc = CL_OK;

	for (int attempt = 0; attempt < TSM_TRIES; attempt++) {
		cl_buf_free(&out->evidence);
		cl_buf_free(&out->aux);
		CL_GUARD(read_generation(a, &g0));
		CL_GUARD(attr(a, "inblob", path, sizeof(path)));
		CL_GUARD(cl_attest_write_attr(path, rd, 64));
		CL_GUARD(attr(a, "outblob", path, sizeof(path)));
		CL_GUARD(cl_attest_read_attr(path, TSM_OUTBLOB_MAX, &out->evidence));
		CL_GUARD(attr(a, "auxblob", path, sizeof(path)));
		if (access(path, R_OK) == 0)
			CL_GUARD(cl_attest_read_attr(path, TSM_AUXBLOB_MAX, &out->aux));
		CL_GUARD(read_generation(a, &g1));
		if (g1 == g0 + 1)
			break;
		cl_log_warn("configfs-tsm: %s was written concurrently (generation %llu -> %llu); "
			    "retrying",
			    a->entry, g0, g1);
		rc = cl_fail(CL_ERR_IO, "configfs-tsm report %s kept changing under us", a->entry);
	}
	if (g1 != g0 + 1)
		return rc;
	CL_GUARD(read_text(a, "provider", provider, sizeof(provider)));
	CL_GUARD(cl_attest_tsm_format(provider, &out->format));
	CL_ENSURE_MSG(out->evidence.len > 0, CL_ERR_IO, "configfs-tsm returned an empty report");
	snprintf(out->provider, sizeof(out->provider), "tsm/%s", provider);
	return CL_OK;
}

static void close_(struct cl_attester *a)
{
	if (a->entry_created)
		(void)rmdir(a->entry);
}

const struct cl_attest_provider cl_attest_tsm_provider = {
	CL_ATTEST_TSM, probe, open_, evidence, NULL, NULL, NULL, close_,
};
