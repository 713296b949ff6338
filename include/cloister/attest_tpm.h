/*
 * cloister attest_tpm: the TPM evidence provider. Talks to a TPM 2.0 through
 * tpm2-tss (ESYS over a TCTI: "device:/dev/tpmrm0", "swtpm:port=2321",
 * "mssim:..."; NULL means $TPM2TOOLS_TCTI, then tpm2-tss's default search).
 *
 * The attestation key is a primary key in the endorsement hierarchy from a
 * fixed template (restricted ECDSA P-256/SHA-256 signing key), so the TPM
 * re-derives the same AK on every call without storing anything; it changes
 * only when the endorsement seed does (TPM2_Clear does not change it).
 */
#ifndef CLOISTER_ATTEST_TPM_H
#define CLOISTER_ATTEST_TPM_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cloister/core.h"

/* Where the firmware event log is read from when the TPM is the platform's. */
#define CL_ATTEST_TPM_EVENT_LOG	   "/sys/kernel/security/tpm0/binary_bios_measurements"
#define CL_ATTEST_TPM_DEFAULT_PCRS "sha256:0-7"

/*
 * Quote the PCRs in `pcrs` (tpm2-tools syntax, e.g. "sha256:0,1,7"; NULL:
 * CL_ATTEST_TPM_DEFAULT_PCRS) with nonce (at most 64 bytes) as extraData,
 * and return the evidence envelope of tpm.h: ak_public (TPMT_PUBLIC),
 * quote, signature, pcrs, and event_log when the TCTI is a local device
 * whose firmware log is readable. *envelope is a new reference.
 */
CL_MUST_USE int cl_attest_tpm_quote(const char *tcti, const uint8_t *nonce, size_t nonce_len,
				    const char *pcrs, json_t **envelope);

/* The AK's public key as PEM SubjectPublicKeyInfo (malloc'd, caller frees). */
CL_MUST_USE int cl_attest_tpm_ak_pem(const char *tcti, char **pem);

#endif
