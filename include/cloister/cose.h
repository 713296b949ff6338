/*
 * cloister COSE: COSE_Sign1 (RFC 9052) with ES256 and ES384, for the
 * evidence and reference values that arrive signed that way (AWS Nitro
 * attestation documents, Arm PSA tokens, CoRIM).
 *
 * Parsing goes through the bounded CBOR loader (cloister/cbor.h) and checks
 * the exact shape: tag 18 or none, an array of four, a protected header in a
 * byte string that holds a map with an alg, an unprotected map, a byte-string
 * payload (detached payloads are refused) and a byte-string signature of
 * exactly 2 × the curve size (raw r‖s). Header labels are ints or text, each
 * once; "crit" is refused, since no extension is understood. Only ES256 (-7)
 * and ES384 (-35) are accepted, and the key's curve must match the alg.
 *
 *   struct cl_cose_sign1 s;
 *   CL_GUARD(cl_cose_sign1_parse(p, n, &s));
 *   rc = cl_cose_sign1_verify(&s, key);   // Sig_structure, external_aad = h''
 *   ... s.payload, s.payload_len ...      // borrowed from s
 *   cl_cose_sign1_free(&s);
 */
#ifndef CLOISTER_COSE_H
#define CLOISTER_COSE_H

#include <stddef.h>
#include <stdint.h>

#include <cbor.h>
#include <openssl/evp.h>

#include "cloister/core.h"

#define CL_COSE_ALG_ES256 (-7)
#define CL_COSE_ALG_ES384 (-35)

#define CL_COSE_TAG_SIGN1 18
/* Caps on what a COSE_Sign1 may hold. */
#define CL_COSE_MAX_LEN	      (1u << 20) /* the whole encoded message */
#define CL_COSE_MAX_PROTECTED 4096
#define CL_COSE_MAX_LABELS    16

struct cl_cose_sign1 {
	int tagged;  /* 1 when it came in tag 18 */
	int64_t alg; /* CL_COSE_ALG_ES256 or CL_COSE_ALG_ES384 */
	/* Borrowed from the decoded tree; valid until cl_cose_sign1_free(). */
	const uint8_t *protected_hdr; /* the protected header's bytes, as signed */
	size_t protected_len;
	const uint8_t *payload;
	size_t payload_len;
	const uint8_t *sig; /* r‖s */
	size_t sig_len;
	void *tree; /* private: the decoded message */
};

/*
 * Parse a COSE_Sign1 filling p[0..n) exactly (no trailing bytes). Nothing is
 * verified. On failure *s holds nothing to free (freeing it is harmless).
 */
CL_MUST_USE int cl_cose_sign1_parse(const uint8_t *p, size_t n, struct cl_cose_sign1 *s);
/*
 * The same checks on a COSE_Sign1 array already decoded (by a caller that
 * loaded it inside a larger structure, bounded); s keeps its own reference.
 */
CL_MUST_USE int cl_cose_sign1_from_item(cbor_item_t *item, int tagged, struct cl_cose_sign1 *s);

/*
 * Verify the signature under key (EC P-256 for ES256, P-384 for ES384) over
 * Sig_structure ["Signature1", protected, h'', payload]. CL_OK or
 * CL_ERR_SIGNATURE.
 */
CL_MUST_USE int cl_cose_sign1_verify(const struct cl_cose_sign1 *s, EVP_PKEY *key);

/* The digest of the Sig_structure under the alg's hash (32 or 48 bytes to out). */
CL_MUST_USE int cl_cose_sign1_tbs_digest(const struct cl_cose_sign1 *s, uint8_t *out,
					 size_t *out_len);

/*
 * Make a COSE_Sign1 over payload with an EC private key (P-256 → ES256,
 * P-384 → ES384); the protected header is {1: alg}, the unprotected one
 * empty. *out is malloc'd and owned by the caller. For attesters and tests.
 */
CL_MUST_USE int cl_cose_sign1_sign(EVP_PKEY *key, const uint8_t *payload, size_t payload_len,
				   int tagged, uint8_t **out, size_t *out_len);

void cl_cose_sign1_free(struct cl_cose_sign1 *s);

#endif
