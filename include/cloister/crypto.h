/*
 * cloister crypto: thin, checked wrappers over OpenSSL 3 for what evidence
 * verification needs: digests, ECDSA over raw (r, s) pairs, EC keys from raw
 * points, and X.509 chain checks against pinned roots at a given time.
 */
#ifndef CLOISTER_CRYPTO_H
#define CLOISTER_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cloister/core.h"

enum cl_hash { CL_SHA256 = 1, CL_SHA384 = 2, CL_SHA512 = 3 };

#define CL_MAX_DIGEST 64
/* Caps on endorsement material read from the wire or disk. */
#define CL_MAX_CERT_CHAIN 8
#define CL_MAX_CERT_DER	  (16 * 1024)
#define CL_MAX_PEM_CHAIN  (64 * 1024)

size_t cl_hash_len(enum cl_hash h);
const EVP_MD *cl_hash_md(enum cl_hash h);
CL_MUST_USE int cl_digest(enum cl_hash h, const void *data, size_t n, uint8_t *out);

/*
 * Verify an ECDSA signature given as big-endian r and s of n bytes each over
 * msg (hashed here with h). Returns CL_OK or CL_ERR_SIGNATURE.
 */
CL_MUST_USE int cl_ecdsa_verify_raw(EVP_PKEY *key, enum cl_hash h, const void *msg, size_t msglen,
				    const uint8_t *r, const uint8_t *s, size_t n);
/* Same, over a digest computed by the caller. */
CL_MUST_USE int cl_ecdsa_verify_digest_raw(EVP_PKEY *key, const uint8_t *dgst, size_t dlen,
					   const uint8_t *r, const uint8_t *s, size_t n);
/* Verify a DER-encoded signature (ECDSA or RSA PKCS#1 v1.5) over msg. */
CL_MUST_USE int cl_verify_der(EVP_PKEY *key, enum cl_hash h, const void *msg, size_t msglen,
			      const uint8_t *sig, size_t siglen);

/* An EC public key from the affine coordinates x, y (n bytes each, big-endian). */
CL_MUST_USE int cl_ec_key_from_xy(const char *curve, const uint8_t *x, const uint8_t *y, size_t n,
				  EVP_PKEY **out);

/*
 * HKDF-SHA384 (RFC 5869): out_len bytes from ikm, an optional salt (NULL for
 * none) and info. The caller wipes out when it holds a secret.
 */
CL_MUST_USE int cl_hkdf_sha384(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt,
			       size_t salt_len, const uint8_t *info, size_t info_len, uint8_t *out,
			       size_t out_len);

/* Reverse a byte string in place (little-endian wire integers). */
void cl_reverse(uint8_t *p, size_t n);

/*
 * Set up OpenSSL's secure heap (size bytes, a power of two) for long-lived
 * keys: locked in memory where RLIMIT_MEMLOCK allows (*locked tells), left
 * out of core dumps. Once per process; later calls do nothing.
 */
CL_MUST_USE int cl_secure_heap_init(size_t size, int *locked);

/*
 * ECDSA signatures between DER (OpenSSL) and raw big-endian r‖s of n bytes
 * each (JOSE, COSE, SEV-SNP, TPM, the dev TEE). raw_to_der: *der is
 * OPENSSL_malloc'd. der_to_raw: rs holds 2n bytes; the DER must be exactly
 * one ECDSA-Sig-Value.
 */
CL_MUST_USE int cl_ecdsa_raw_to_der(const uint8_t *rs, size_t n, uint8_t **der, size_t *dlen);
CL_MUST_USE int cl_ecdsa_der_to_raw(const uint8_t *der, size_t dlen, uint8_t *rs, size_t n);

/* --------------------------------------------------------------------- X.509 */

/* Seconds since the epoch of an ASN1_TIME (UTCTime or GeneralizedTime). */
CL_MUST_USE int cl_asn1_time_epoch(const ASN1_TIME *t, int64_t *out);

/* Parse one DER certificate. */
CL_MUST_USE int cl_x509_from_der(const uint8_t *der, size_t n, X509 **out);
/* Parse a DER certificate or the first PEM certificate. */
CL_MUST_USE int cl_x509_from_any(const uint8_t *p, size_t n, X509 **out);
/* Parse every PEM certificate in p (at most CL_MAX_CERT_CHAIN). */
CL_MUST_USE int cl_x509_chain_from_pem(const uint8_t *p, size_t n, STACK_OF(X509) * *out);
/* Parse a CRL in DER or PEM. */
CL_MUST_USE int cl_crl_from_any(const uint8_t *p, size_t n, X509_CRL **out);

/*
 * Check a CRL issued by `issuer`: issuer name, signature by the issuer's key,
 * and thisUpdate <= at <= nextUpdate (CL_ERR_EXPIRED otherwise; at 0 = now).
 * Signature results are cached by (CRL, issuer) content, per cache epoch.
 */
CL_MUST_USE int cl_crl_check(X509_CRL *crl, X509 *issuer, int64_t at);

/*
 * Verify leaf up to one of the trusted roots (self-signed, pinned), using
 * untrusted intermediates, at time `at` (seconds since the epoch; 0 = now).
 * With crls (may be NULL) every certificate in the chain below the root must
 * be covered by a CRL from its issuer that passes cl_crl_check() and must
 * not be listed on it. The resulting chain length is stored in *depth when
 * non-NULL.
 */
CL_MUST_USE int cl_x509_verify(X509 *leaf, STACK_OF(X509) * untrusted, STACK_OF(X509) * roots,
			       STACK_OF(X509_CRL) * crls, int64_t at, int *depth);

/*
 * The raw value of a (non-standard) extension as DER bytes of its
 * extnValue OCTET STRING contents. Pointer is into the certificate.
 */
CL_MUST_USE int cl_x509_ext_by_oid(X509 *cert, const char *oid, const uint8_t **val, size_t *len);

#endif
