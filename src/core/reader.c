#include <string.h>

#include "cloister/core.h"

/*
 * Each read checks `left` before touching memory and leaves the cursor where
 * it was on failure, so a caller can report the position of the problem.
 */

int cl_read_ref(struct cl_reader *r, size_t n, const uint8_t **out)
{
	if (n > r->left)
		return cl_fail(CL_ERR_TRUNCATED, "need %zu bytes, %zu left", n, r->left);
	*out = r->p;
	r->p += n;
	r->left -= n;
	return CL_OK;
}

int cl_read_bytes(struct cl_reader *r, void *out, size_t n)
{
	const uint8_t *p = NULL;

	CL_GUARD(cl_read_ref(r, n, &p));
	if (n)
		memcpy(out, p, n);
	return CL_OK;
}

int cl_read_skip(struct cl_reader *r, size_t n)
{
	const uint8_t *p = NULL;

	return cl_read_ref(r, n, &p);
}

int cl_read_sub(struct cl_reader *r, size_t n, struct cl_reader *sub)
{
	const uint8_t *p = NULL;

	CL_GUARD(cl_read_ref(r, n, &p));
	sub->p = p;
	sub->left = n;
	return CL_OK;
}

int cl_read_u8(struct cl_reader *r, uint8_t *v)
{
	return cl_read_bytes(r, v, 1);
}

int cl_read_u16le(struct cl_reader *r, uint16_t *v)
{
	const uint8_t *p = NULL;

	CL_GUARD(cl_read_ref(r, 2, &p));
	*v = (uint16_t)(p[0] | (p[1] << 8));
	return CL_OK;
}

int cl_read_u16be(struct cl_reader *r, uint16_t *v)
{
	const uint8_t *p = NULL;

	CL_GUARD(cl_read_ref(r, 2, &p));
	*v = (uint16_t)((p[0] << 8) | p[1]);
	return CL_OK;
}

int cl_read_u32le(struct cl_reader *r, uint32_t *v)
{
	const uint8_t *p = NULL;

	CL_GUARD(cl_read_ref(r, 4, &p));
	*v = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	     ((uint32_t)p[3] << 24);
	return CL_OK;
}

int cl_read_u32be(struct cl_reader *r, uint32_t *v)
{
	const uint8_t *p = NULL;

	CL_GUARD(cl_read_ref(r, 4, &p));
	*v = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
	     (uint32_t)p[3];
	return CL_OK;
}

int cl_read_u64le(struct cl_reader *r, uint64_t *v)
{
	const uint8_t *p = NULL;
	uint64_t x = 0;

	CL_GUARD(cl_read_ref(r, 8, &p));
	for (int i = 7; i >= 0; i--)
		x = (x << 8) | p[i];
	*v = x;
	return CL_OK;
}
