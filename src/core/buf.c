#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/core.h"

int cl_buf_append(struct cl_buf *b, const void *p, size_t n)
{
	size_t max = b->max ? b->max : CL_BUF_DEFAULT_MAX;
	size_t need = 0;

	if (__builtin_add_overflow(b->len, n, &need) || need > max)
		return cl_fail(CL_ERR_ARG, "buffer would exceed %zu bytes", max);
	if (need + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 256;
		uint8_t *nd = NULL;

		while (ncap < need + 1)
			ncap *= 2;
		nd = malloc(ncap);
		if (!nd)
			return cl_fail(CL_ERR_NOMEM, "out of memory");
		if (b->data) {
			memcpy(nd, b->data, b->len);
			cl_zeroize(b->data, b->cap);
			free(b->data);
		}
		b->data = nd;
		b->cap = ncap;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len = need;
	b->data[b->len] = 0;
	return CL_OK;
}

void cl_buf_free(struct cl_buf *b)
{
	if (!b)
		return;
	if (b->data) {
		cl_zeroize(b->data, b->cap);
		free(b->data);
	}
	b->data = NULL;
	b->len = b->cap = 0;
}

int cl_read_file(const char *path, size_t max, struct cl_buf *out)
{
	FILE *f = NULL;
	uint8_t chunk[16384];
	size_t n = 0;
	int rc = CL_OK;

	out->max = max;
	if (strcmp(path, "-") == 0) {
		f = stdin;
	} else {
		f = fopen(path, "rb");
		if (!f)
			return cl_fail(CL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		rc = cl_buf_append(out, chunk, n);
		if (rc < 0) {
			rc = cl_fail(CL_ERR_IO, "%s is larger than %zu bytes", path,
				     max ? max : CL_BUF_DEFAULT_MAX);
			break;
		}
	}
	if (rc == CL_OK && ferror(f))
		rc = cl_fail(CL_ERR_IO, "cannot read %s", path);
	if (rc == CL_OK && !out->data)
		rc = cl_buf_append(out, "", 0);
	if (f != stdin)
		fclose(f);
	if (rc < 0)
		cl_buf_free(out);
	return rc;
}
