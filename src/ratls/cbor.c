/*
 * CBOR for attested TLS on libcbor. Input goes through the shared bounded
 * loader in canonical mode: the claims are hashed into REPORT_DATA as they
 * are, so each structure must have exactly one encoding, and canonical input
 * lets every byte string be placed back in the certificate it came from.
 * Output is built as libcbor items and serialised, shortest form throughout.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int cl_rcb_load(const uint8_t *p, size_t n, size_t max_items, const char *what, cbor_item_t **out)
{
	struct cl_cbor_caps caps = {what, CL_RATLS_CBOR_DEPTH, max_items, 1};

	return cl_cbor_load(p, n, &caps, out);
}

int cl_rcb_bstr(const cbor_item_t *it, size_t max, const char *what, size_t *len)
{
	CL_ENSURE_MSG(it && cbor_isa_bytestring(it) && cbor_bytestring_is_definite(it),
		      CL_ERR_MALFORMED, "%s is not a byte string", what);
	*len = cbor_bytestring_length(it);
	CL_ENSURE_MSG(*len <= max, CL_ERR_MALFORMED, "%s of %zu bytes exceeds %zu", what, *len,
		      max);
	return CL_OK;
}

int cl_rcb_tstr(const cbor_item_t *it, size_t max, const char *what, size_t *len)
{
	CL_ENSURE_MSG(it && cbor_isa_string(it) && cbor_string_is_definite(it), CL_ERR_MALFORMED,
		      "%s is not a text string", what);
	*len = cbor_string_length(it);
	CL_ENSURE_MSG(*len <= max, CL_ERR_MALFORMED, "%s of %zu bytes exceeds %zu", what, *len,
		      max);
	return CL_OK;
}

int cl_rcb_locate(const uint8_t *base, size_t n, size_t off, const cbor_item_t *it,
		  const uint8_t **p)
{
	size_t len = cbor_bytestring_length(it), at = 0;

	/* Guards the offset arithmetic: the bytes must be the item's, exactly. */
	CL_ENSURE_MSG(!__builtin_add_overflow(off, cl_cbor_head_len(len), &at) && at <= n &&
			      len <= n - at &&
			      (len == 0 || memcmp(base + at, cbor_bytestring_handle(it), len) == 0),
		      CL_ERR_INTERNAL, "CBOR byte string not where its encoding says");
	*p = base + at;
	return CL_OK;
}

cbor_item_t *cl_rcb_uint(uint64_t v)
{
	/* libcbor writes an integer at the width it was built with. */
	if (v <= 0xff)
		return cbor_build_uint8((uint8_t)v);
	if (v <= 0xffff)
		return cbor_build_uint16((uint16_t)v);
	if (v <= 0xffffffffu)
		return cbor_build_uint32((uint32_t)v);
	return cbor_build_uint64(v);
}

int cl_rcb_push(cbor_item_t *arr, cbor_item_t *it)
{
	bool ok = arr && it && cbor_array_push(arr, it);

	if (it)
		cbor_decref(&it);
	CL_ENSURE_MSG(ok, CL_ERR_NOMEM, "out of memory");
	return CL_OK;
}

int cl_rcb_put(cbor_item_t *m, cbor_item_t *k, cbor_item_t *v)
{
	bool ok = m && k && v && cbor_map_add(m, (struct cbor_pair){.key = k, .value = v});

	if (k)
		cbor_decref(&k);
	if (v)
		cbor_decref(&v);
	CL_ENSURE_MSG(ok, CL_ERR_NOMEM, "out of memory");
	return CL_OK;
}

int cl_rcb_serialize(cbor_item_t **it, struct cl_buf *out)
{
	unsigned char *buf = NULL;
	size_t cap = 0, len = 0;
	int rc = CL_OK;

	CL_CHECK(*it, CL_ERR_NOMEM, "out of memory");
	len = cbor_serialize_alloc(*it, &buf, &cap);
	CL_CHECK(len > 0 && buf, CL_ERR_NOMEM, "out of memory");
	CL_TRY(cl_buf_append(out, buf, len));
out:
	free(buf);
	if (*it)
		cbor_decref(it);
	return rc;
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
