/*
 * cloister CBOR: libcbor behind a bounded pre-pass, shared by every reader of
 * attacker-controlled CBOR (CoRIM, attested TLS).
 *
 * libcbor 0.8's cbor_load trusts length headers and allocates what they
 * claim, so cl_cbor_load first walks the bytes with cbor_stream_decode and
 * refuses anything a header promises beyond the input, nesting and item
 * counts over the caps, indefinite lengths and trailing bytes. Only then does
 * cbor_load build the tree. The caller walks it with exact type checks
 * (cbor_isa_*, cbor_*_is_definite, sizes, known keys).
 *
 *   struct cl_cbor_caps caps = { "RA-TLS claims", 4, 64, 1 };
 *   cbor_item_t *it = NULL;
 *   CL_GUARD(cl_cbor_load(p, n, &caps, &it));
 *   ... cbor_isa_map(it) ...
 *   cbor_decref(&it);
 */
#ifndef CLOISTER_CBOR_H
#define CLOISTER_CBOR_H

#include <stddef.h>
#include <stdint.h>

#include <cbor.h>

#include "cloister/core.h"

#define CL_CBOR_MAX_DEPTH 64

struct cl_cbor_caps {
	const char *what; /* prefixes every error message ("CoRIM") */
	size_t max_depth; /* nesting of arrays, maps and tags; 1..CL_CBOR_MAX_DEPTH */
	size_t max_items; /* data items in all, the outermost one included */
	/*
	 * Refuse integer, length and tag heads not in shortest form, so a
	 * structure has one encoding and cl_cbor_encoded_len() can place every
	 * item in the input (floats and simple values are not checked).
	 */
	int canonical;
};

/*
 * Exactly one well-formed, definite-length data item filling p[0..n).
 * *out is owned by the caller (cbor_decref). libcbor 0.8 refuses the one-byte
 * heads of tags 6..20 (0xc6..0xd4): a caller expecting one (COSE_Sign1 is 18)
 * reads that byte itself and loads the rest.
 */
CL_MUST_USE int cl_cbor_load(const uint8_t *p, size_t n, const struct cl_cbor_caps *caps,
			     cbor_item_t **out);

/*
 * 1 when it is the simple value null. libcbor's own cbor_is_null() asserts
 * (aborting the process) when handed a float, which attacker bytes can be;
 * every caller asks through this instead.
 */
int cl_cbor_is_null(const cbor_item_t *it);

/* Bytes of the shortest head carrying arg (1, 2, 3, 5 or 9). */
size_t cl_cbor_head_len(uint64_t arg);
/*
 * Bytes the item takes in an input it was loaded from with canonical set
 * (head and contents). Recursion is bounded by the depth the load allowed.
 */
size_t cl_cbor_encoded_len(const cbor_item_t *it);

#endif
