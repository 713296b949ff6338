/*
 * serve's attestation request head (cl_ratls_fresh_parse): any bytes, at
 * every length from the whole input down (as a client delivers them in
 * pieces). A verdict must not change once given: a head that is OK, BAD or
 * NOT at some length stays so with more bytes after it, an OK head ends in
 * CR LF CR LF within CL_RATLS_MAX_HEAD, and its nonce is 1..64 bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ratls/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t nonce[CL_RATLS_MAX_NONCE];
	size_t nlen = 0, hlen = 0, n2 = 0, h2 = 0;
	enum cl_ratls_head v = cl_ratls_fresh_parse(data, size, nonce, &nlen, &hlen);

	if (v == CL_RATLS_HEAD_OK &&
	    (nlen < 1 || nlen > CL_RATLS_MAX_NONCE || hlen < 4 || hlen > size ||
	     hlen > CL_RATLS_MAX_HEAD || memcmp(data + hlen - 4, "\r\n\r\n", 4) != 0))
		__builtin_trap();
	if ((v == CL_RATLS_HEAD_BAD) && (hlen < 4 || hlen > size))
		__builtin_trap();
	/* Shorter inputs: never a different verdict once the head is complete. */
	for (size_t n = size; n-- > 0 && n + 64 > size;) {
		enum cl_ratls_head w = cl_ratls_fresh_parse(data, n, nonce, &n2, &h2);

		if (w == CL_RATLS_HEAD_MORE)
			continue;
		if (w != v || (w == CL_RATLS_HEAD_OK && (h2 != hlen || n2 != nlen)))
			__builtin_trap();
	}
	return 0;
}
