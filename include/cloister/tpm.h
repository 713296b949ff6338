/*
 * cloister tpm: TPM 2.0 quotes (TPMS_ATTEST signed by an attestation key),
 * the PCR values they cover, and the JSON evidence envelope that carries
 * them:
 *
 *   { "ak_public":  base64 (DER SubjectPublicKeyInfo, TPM2B_PUBLIC or TPMT_PUBLIC),
 *     "ak_cert":    base64 DER AK certificate (optional; for --ak-roots),
 *     "ak_chain":   [base64 DER intermediates] (optional),
 *     "quote":      base64 TPMS_ATTEST (the signed bytes, as tpm2_quote -m writes them),
 *     "signature":  base64 TPMT_SIGNATURE (tpm2_quote -s, tss format),
 *     "pcrs":       { "sha256": { "0": hex, ... }, ... },
 *     "event_log":  base64 TCG event log (optional) }
 *
 * The go-attestation (AK.Public, Quote.Quote/Signature, Log.PCRs/Raw) and
 * trustee (ak_public, tpm_quote.message/signature/pcrs) shapes are read as
 * well. Structures are (un)marshalled by tpm2-tss's libtss2-mu.
 */
#ifndef CLOISTER_TPM_H
#define CLOISTER_TPM_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

#include "cloister/core.h"
#include "cloister/eventlog.h"

/* Caps on the envelope's parts. */
#define CL_TPM_MAX_QUOTE 4096
#define CL_TPM_MAX_SIG	 2048
#define CL_TPM_MAX_AK	 4096
#define CL_TPM_MAX_NONCE 64 /* sizeof(TPMU_HA): the most a TPM2B_DATA holds */

/* PCR values supplied beside a quote, per bank. */
struct cl_tpm_pcrs {
	unsigned nbanks;
	struct {
		uint16_t alg;
		size_t len;
		uint32_t present; /* bit i: value i given */
		uint8_t v[CL_TPM_NUM_PCRS][CL_TPM_MAX_DIGEST];
	} bank[CL_EVLOG_MAX_ALGS];
};

/* Set PCR idx of bank alg (adding the bank); the value must have the bank's size. */
CL_MUST_USE int cl_tpm_pcrs_set(struct cl_tpm_pcrs *p, uint16_t alg, unsigned idx, const uint8_t *v,
				size_t len);
/* The value of PCR idx in bank alg, or NULL. */
const uint8_t *cl_tpm_pcrs_get(const struct cl_tpm_pcrs *p, uint16_t alg, unsigned idx);

/* A parsed envelope; every buffer is owned. */
struct cl_tpm_evidence {
	uint8_t *ak;
	size_t ak_len;
	uint8_t *ak_cert;
	size_t ak_cert_len;
	uint8_t **ak_chain;
	size_t *ak_chain_len;
	size_t ak_chain_n;
	uint8_t *quote;
	size_t quote_len;
	uint8_t *sig;
	size_t sig_len;
	uint8_t *event_log;
	size_t event_log_len;
	struct cl_tpm_pcrs pcrs;
};

/* 1 when the bytes look like a TPM JSON envelope in one of the shapes above. */
int cl_tpm_detect(const uint8_t *ev, size_t n);
CL_MUST_USE int cl_tpm_evidence_parse(const uint8_t *json, size_t n, struct cl_tpm_evidence *out);
/* The same from a parsed document (borrowed; root may be NULL: not JSON). */
CL_MUST_USE int cl_tpm_evidence_from_json(const json_t *root, struct cl_tpm_evidence *out);
void cl_tpm_evidence_free(struct cl_tpm_evidence *ev);
/* Our envelope for ev (new reference owned by the caller). */
CL_MUST_USE int cl_tpm_evidence_to_json(const struct cl_tpm_evidence *ev, json_t **out);

/* TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE with TPM_GENERATED_VALUE; all bytes used. */
CL_MUST_USE int cl_tpm_quote_parse(const uint8_t *p, size_t n, TPMS_ATTEST *out);
/* TPMT_SIGNATURE; all bytes used. */
CL_MUST_USE int cl_tpm_signature_parse(const uint8_t *p, size_t n, TPMT_SIGNATURE *out);

/*
 * An attestation key from PEM or DER SubjectPublicKeyInfo, TPM2B_PUBLIC or
 * TPMT_PUBLIC (RSA, or ECC on P-256/P-384/P-521). *restricted (may be NULL)
 * is 1 for a restricted signing key, 0 for another key, -1 when the format
 * does not say (SPKI).
 */
CL_MUST_USE int cl_tpm_ak_parse(const uint8_t *p, size_t n, EVP_PKEY **out, int *restricted);

/*
 * Verify sig over the quote bytes msg with ak: RSASSA-PKCS1-v1_5, RSA-PSS or
 * ECDSA, with SHA-1 (still what some vTPMs sign with), SHA-256, SHA-384 or
 * SHA-512.
 */
CL_MUST_USE int cl_tpm_signature_verify(EVP_PKEY *ak, const TPMT_SIGNATURE *sig, const uint8_t *msg,
					size_t n);

/*
 * The quote's PCR digest over values, hashed with alg (the signing scheme's
 * hash): the selected PCRs of each selected bank, in selection order,
 * ascending index. CL_ERR_MALFORMED if a selected value is missing.
 */
CL_MUST_USE int cl_tpm_pcr_digest(const TPML_PCR_SELECTION *sel, const struct cl_tpm_pcrs *values,
				  uint16_t alg, uint8_t *out, size_t *outlen);

/*
 * The PCR output file of tpm2_quote -o for this quote: either "values"
 * (the digests back to back, in selection order) or tpm2-tools'
 * "serialized" layout (TPML_PCR_SELECTION, count, TPML_DIGEST[] as the
 * x86-64 structs), told apart by size.
 */
CL_MUST_USE int cl_tpm_pcrs_from_tpm2_tools(const TPMS_ATTEST *quote, const uint8_t *p, size_t n,
					    struct cl_tpm_pcrs *out);

/* Parse "sha256:0,1,2+sha1:0-7" (tpm2-tools' PCR list syntax, ranges allowed). */
CL_MUST_USE int cl_tpm_pcr_selection_parse(const char *s, TPML_PCR_SELECTION *out);

#endif
