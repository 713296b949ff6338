/*
 * The attested-TLS certificate extensions: the CCC RA-TLS structure (tagged
 * CBOR [evidence, claims] with the claims map inside) and the CMW collection
 * (DER OCTET STRING around a CBOR map of records). Both parsers see every
 * input; what parses is re-encoded and must parse to the same fields.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cloister/ratls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cl_ratls_evidence e, f;
	struct cl_ratls_cmw c, d;
	struct cl_buf b = {0};

	if (cl_ratls_evidence_parse(data, size, &e) == CL_OK) {
		if (cl_ratls_evidence_encode(e.tag, e.evidence, e.evidence_len, e.claims,
					     e.claims_len, &b) == CL_OK &&
		    (cl_ratls_evidence_parse(b.data, b.len, &f) != CL_OK ||
		     f.evidence_len != e.evidence_len || f.claims_len != e.claims_len ||
		     f.hash != e.hash || f.nonce_len != e.nonce_len))
			__builtin_trap();
		cl_buf_free(&b);
	}
	if (cl_ratls_cmw_parse(data, size, &c) == CL_OK) {
		if (cl_ratls_cmw_encode(&c, &b) == CL_OK &&
		    (cl_ratls_cmw_parse(b.data, b.len, &d) != CL_OK || d.n != c.n))
			__builtin_trap();
		cl_buf_free(&b);
	}
	return 0;
}
