/* Shared inside src/ratls: a strict CBOR reader/writer and small helpers. */
#ifndef CLOISTER_RATLS_INTERNAL_H
#define CLOISTER_RATLS_INTERNAL_H

#include "cloister/ratls.h"

enum {
	CB_UINT = 0,
	CB_NINT = 1,
	CB_BSTR = 2,
	CB_TSTR = 3,
	CB_ARRAY = 4,
	CB_MAP = 5,
	CB_TAG = 6,
};

/*
 * One data-item head: major type and argument. Refuses indefinite lengths,
 * simple values and floats, reserved encodings, and non-shortest arguments
 * (so every structure has exactly one encoding). Does not move on failure.
 */
CL_MUST_USE int cl_cb_head(struct cl_reader *r, uint8_t *major, uint64_t *arg);
/* A head of the given major type. */
CL_MUST_USE int cl_cb_expect(struct cl_reader *r, uint8_t major, uint64_t *arg);
/* A byte or text string of at most max bytes; *p points into the input. */
CL_MUST_USE int cl_cb_string(struct cl_reader *r, uint8_t major, size_t max, const uint8_t **p,
			     size_t *len);
/* Append a head in shortest form. */
CL_MUST_USE int cl_cb_put_head(struct cl_buf *b, uint8_t major, uint64_t arg);
CL_MUST_USE int cl_cb_put_string(struct cl_buf *b, uint8_t major, const void *p, size_t n);

/* IANA named-information id ↔ cl_hash. */
CL_MUST_USE int cl_ratls_hash_from_id(uint64_t id, enum cl_hash *h);
uint64_t cl_ratls_hash_id(enum cl_hash h);

#endif
