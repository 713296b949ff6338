/*
 * Compact JWS (RFC 7515) for the tokens cloister signs and checks: EAR
 * attestation results and KBS admin tokens. ECDSA signatures are raw r‖s
 * of the curve's size (RFC 7518 §3.4); EdDSA is Ed25519 (RFC 8037).
 *
 *   struct cl_jws j;
 *   if (cl_jws_parse(tok, len, CL_MAX_EAR_TOKEN, &j) == CL_OK &&
 *       cl_jws_verify(&j, key) == CL_OK && cl_jws_payload_json(&j, &claims) == CL_OK)
 *           ...
 *   cl_jws_clear(&j);
 */
#ifndef CLOISTER_JWS_H
#define CLOISTER_JWS_H

#include <jansson.h>

#include "cloister/crypto.h"

enum cl_jws_alg { CL_JWS_NONE = 0, CL_JWS_ES256, CL_JWS_ES384, CL_JWS_EDDSA };

#define CL_JWS_MAX_SIG 132 /* ES512's r‖s would be the largest */

/* "ES256", "ES384", "EdDSA"; NULL for CL_JWS_NONE. */
const char *cl_jws_alg_name(enum cl_jws_alg a);
/* The algorithm of a name; CL_JWS_NONE when it is not one of ours. */
enum cl_jws_alg cl_jws_alg_parse(const char *name);
/* The algorithm a key signs with: P-256 ES256, P-384 ES384, Ed25519 EdDSA; else NONE. */
enum cl_jws_alg cl_jws_alg_of_key(EVP_PKEY *key);

/* A parsed token; pointers other than header are views into the token. */
struct cl_jws {
	json_t *header; /* the protected header, owned */
	enum cl_jws_alg alg;
	const char *input; /* "protected.payload": what is signed */
	size_t input_len;
	const char *payload; /* base64url */
	size_t payload_len;
	uint8_t sig[CL_JWS_MAX_SIG];
	size_t sig_len;
};

/*
 * Split tok (at most max bytes; trailing whitespace ignored) into three
 * non-empty base64url parts; the header must be a JSON object without
 * duplicate keys, naming one of our algorithms, with no "crit"; the
 * signature must decode to the size its algorithm has. Errors name the part.
 */
CL_MUST_USE int cl_jws_parse(const char *tok, size_t len, size_t max, struct cl_jws *out);
void cl_jws_clear(struct cl_jws *j);
/* Check the signature with key, which must be of the token's algorithm. */
CL_MUST_USE int cl_jws_verify(const struct cl_jws *j, EVP_PKEY *key);
/* The payload as a JSON object without duplicate keys (caller owns). */
CL_MUST_USE int cl_jws_payload_json(const struct cl_jws *j, json_t **out);
/*
 * Sign payload with key into a compact JWS: header (may be NULL) gets "alg"
 * from the key and is written compact with sorted keys. *out malloc'd.
 */
CL_MUST_USE int cl_jws_sign(EVP_PKEY *key, const json_t *header, const void *payload, size_t len,
			    char **out);

#endif
