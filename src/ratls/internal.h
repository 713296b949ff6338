/* Shared inside src/ratls: strict CBOR reading and writing on libcbor. */
#ifndef CLOISTER_RATLS_INTERNAL_H
#define CLOISTER_RATLS_INTERNAL_H

#include "cloister/cbor.h"
#include "cloister/ratls.h"

/*
 * One canonical CBOR item (shortest heads, definite lengths, nothing after
 * it), nested at most CL_RATLS_CBOR_DEPTH and at most max_items items; what
 * names the structure in errors. *out is the caller's (cbor_decref).
 */
#define CL_RATLS_CBOR_DEPTH 4
CL_MUST_USE int cl_rcb_load(const uint8_t *p, size_t n, size_t max_items, const char *what,
			    cbor_item_t **out);
/* A definite byte (text) string of at most max bytes; *len is set. */
CL_MUST_USE int cl_rcb_bstr(const cbor_item_t *it, size_t max, const char *what, size_t *len);
CL_MUST_USE int cl_rcb_tstr(const cbor_item_t *it, size_t max, const char *what, size_t *len);
/*
 * Where the contents of byte string it, whose head starts at base[off] in
 * the canonical input it was loaded from, lie in that input. The item holds
 * a copy; callers want pointers into the certificate, as the API promises.
 */
CL_MUST_USE int cl_rcb_locate(const uint8_t *base, size_t n, size_t off, const cbor_item_t *it,
			      const uint8_t **p);

/* Builders: NULL on allocation failure. An unsigned integer in shortest form. */
cbor_item_t *cl_rcb_uint(uint64_t v);
/* Append it to array arr / the pair (k, v) to map m; always drops the caller's reference. */
CL_MUST_USE int cl_rcb_push(cbor_item_t *arr, cbor_item_t *it);
CL_MUST_USE int cl_rcb_put(cbor_item_t *m, cbor_item_t *k, cbor_item_t *v);
/* Append the encoding of *it to out, then release *it (NULL is out of memory). */
CL_MUST_USE int cl_rcb_serialize(cbor_item_t **it, struct cl_buf *out);

/*
 * serve's attestation endpoint: the head of the first request on a
 * connection, head[0..n). CL_RATLS_HEAD_NOT: not a request for
 * CL_RATLS_FRESH_PATH (forward it); MORE: not decided yet, wait for more
 * bytes; BAD: a request for the path that is malformed (answer 400);
 * TOO_LONG: no end of head within CL_RATLS_MAX_HEAD bytes; OK: *nonce_len
 * bytes of nonce decoded into nonce, and the head, terminator included, is
 * *head_len bytes. No I/O: tests and the fuzzer call it directly.
 */
#define CL_RATLS_MAX_HEAD 4096
enum cl_ratls_head {
	CL_RATLS_HEAD_OK,
	CL_RATLS_HEAD_NOT,
	CL_RATLS_HEAD_MORE,
	CL_RATLS_HEAD_BAD,
	CL_RATLS_HEAD_TOO_LONG,
};
enum cl_ratls_head cl_ratls_fresh_parse(const uint8_t *head, size_t n,
					uint8_t nonce[CL_RATLS_MAX_NONCE], size_t *nonce_len,
					size_t *head_len);

/* Tests: run the proxy's event loop once without blocking; open connections. */
int cl_ratls_proxy_loop_once(struct cl_ratls_proxy *p);
size_t cl_ratls_proxy_nconns(const struct cl_ratls_proxy *p);

/* IANA named-information id ↔ cl_hash. */
CL_MUST_USE int cl_ratls_hash_from_id(uint64_t id, enum cl_hash *h);
uint64_t cl_ratls_hash_id(enum cl_hash h);

#endif
