/*
 * The few CBOR shapes attested TLS needs, read straight off the bounded
 * reader. The structures are small and fixed, so a direct decoder that
 * allocates nothing and accepts one encoding per value is both stricter and
 * smaller than building a libcbor tree (whose loader trusts length headers).
 */
#include <string.h>

#include "internal.h"

int cl_cb_head(struct cl_reader *r, uint8_t *major, uint64_t *arg)
{
	struct cl_reader t = *r;
	uint8_t ib = 0, ai = 0, b8 = 0;
	uint16_t b16 = 0;
	uint32_t b32 = 0, hi = 0;
	uint64_t v = 0;

	CL_ENSURE_MSG(cl_read_u8(&t, &ib) == CL_OK, CL_ERR_TRUNCATED, "CBOR ends inside an item");
	ai = ib & 31;
	*major = (uint8_t)(ib >> 5);
	CL_ENSURE_MSG(*major <= CB_TAG, CL_ERR_MALFORMED,
		      "CBOR simple values and floats are not accepted here");
	if (ai < 24) {
		v = ai;
	} else if (ai == 24) {
		CL_ENSURE_MSG(cl_read_u8(&t, &b8) == CL_OK, CL_ERR_TRUNCATED, "CBOR head truncated");
		v = b8;
		CL_ENSURE_MSG(v >= 24, CL_ERR_MALFORMED, "CBOR argument not in shortest form");
	} else if (ai == 25) {
		CL_ENSURE_MSG(cl_read_u16be(&t, &b16) == CL_OK, CL_ERR_TRUNCATED,
			      "CBOR head truncated");
		v = b16;
		CL_ENSURE_MSG(v > 0xff, CL_ERR_MALFORMED, "CBOR argument not in shortest form");
	} else if (ai == 26) {
		CL_ENSURE_MSG(cl_read_u32be(&t, &b32) == CL_OK, CL_ERR_TRUNCATED,
			      "CBOR head truncated");
		v = b32;
		CL_ENSURE_MSG(v > 0xffff, CL_ERR_MALFORMED, "CBOR argument not in shortest form");
	} else if (ai == 27) {
		CL_ENSURE_MSG(cl_read_u32be(&t, &hi) == CL_OK && cl_read_u32be(&t, &b32) == CL_OK,
			      CL_ERR_TRUNCATED, "CBOR head truncated");
		v = ((uint64_t)hi << 32) | b32;
		CL_ENSURE_MSG(v > 0xffffffffu, CL_ERR_MALFORMED, "CBOR argument not in shortest form");
	} else if (ai == 31) {
		CL_BAIL(CL_ERR_MALFORMED, "indefinite-length CBOR is not accepted");
	} else {
		CL_BAIL(CL_ERR_MALFORMED, "reserved CBOR head 0x%02x", ib);
	}
	*arg = v;
	*r = t;
	return CL_OK;
}

int cl_cb_expect(struct cl_reader *r, uint8_t major, uint64_t *arg)
{
	struct cl_reader t = *r;
	uint8_t m = 0;

	CL_GUARD(cl_cb_head(&t, &m, arg));
	CL_ENSURE_MSG(m == major, CL_ERR_MALFORMED, "CBOR major type %u where %u was expected",
		      (unsigned)m, (unsigned)major);
	*r = t;
	return CL_OK;
}

int cl_cb_string(struct cl_reader *r, uint8_t major, size_t max, const uint8_t **p, size_t *len)
{
	struct cl_reader t = *r;
	uint64_t n = 0;

	CL_GUARD(cl_cb_expect(&t, major, &n));
	CL_ENSURE_MSG(n <= max, CL_ERR_MALFORMED, "CBOR string of %llu bytes exceeds %zu",
		      (unsigned long long)n, max);
	CL_ENSURE_MSG(n <= t.left, CL_ERR_TRUNCATED, "CBOR string longer than its input");
	CL_GUARD(cl_read_ref(&t, (size_t)n, p));
	*len = (size_t)n;
	*r = t;
	return CL_OK;
}

int cl_cb_put_head(struct cl_buf *b, uint8_t major, uint64_t arg)
{
	uint8_t h[9];
	size_t n = 0;
	uint8_t m = (uint8_t)(major << 5);

	if (arg < 24) {
		h[n++] = (uint8_t)(m | arg);
	} else if (arg <= 0xff) {
		h[n++] = (uint8_t)(m | 24);
		h[n++] = (uint8_t)arg;
	} else if (arg <= 0xffff) {
		h[n++] = (uint8_t)(m | 25);
		h[n++] = (uint8_t)(arg >> 8);
		h[n++] = (uint8_t)arg;
	} else if (arg <= 0xffffffffu) {
		h[n++] = (uint8_t)(m | 26);
		for (int s = 24; s >= 0; s -= 8)
			h[n++] = (uint8_t)(arg >> s);
	} else {
		h[n++] = (uint8_t)(m | 27);
		for (int s = 56; s >= 0; s -= 8)
			h[n++] = (uint8_t)(arg >> s);
	}
	return cl_buf_append(b, h, n);
}

int cl_cb_put_string(struct cl_buf *b, uint8_t major, const void *p, size_t n)
{
	CL_GUARD(cl_cb_put_head(b, major, n));
	return n ? cl_buf_append(b, p, n) : CL_OK;
}

int cl_ratls_hash_from_id(uint64_t id, enum cl_hash *h)
{
	switch (id) {
	case CL_RATLS_HASH_SHA256:
		*h = CL_SHA256;
		return CL_OK;
	case CL_RATLS_HASH_SHA384:
		*h = CL_SHA384;
		return CL_OK;
	case CL_RATLS_HASH_SHA512:
		*h = CL_SHA512;
		return CL_OK;
	default:
		CL_BAIL(CL_ERR_UNSUPPORTED, "pubkey-hash algorithm id %llu is not accepted",
			(unsigned long long)id);
	}
}

uint64_t cl_ratls_hash_id(enum cl_hash h)
{
	switch (h) {
	case CL_SHA256:
		return CL_RATLS_HASH_SHA256;
	case CL_SHA384:
		return CL_RATLS_HASH_SHA384;
	case CL_SHA512:
		return CL_RATLS_HASH_SHA512;
	default:
		return 0;
	}
}
