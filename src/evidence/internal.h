/* Helpers the evidence formats share (claims.c) and format-specific pieces one format file hands another. */
#ifndef CLOISTER_EVIDENCE_INTERNAL_H
#define CLOISTER_EVIDENCE_INTERNAL_H

#include "cloister/devtee_report.h"
#include "cloister/evidence.h"

/* Helpers shared by the verifiers. */
/* The common claims every platform has; fields set to defaults. */
json_t *cl_claims_new(const char *platform);
CL_MUST_USE int cl_claims_set_hex(json_t *claims, const char *key, const uint8_t *p, size_t n);
/*
 * Bytes after a structure of `used` bytes in evidence of n bytes: CL_OK with
 * *trailing set when at most CL_MAX_TRAILING, else CL_ERR_MALFORMED.
 */
CL_MUST_USE int cl_trailing_check(size_t n, size_t used, const char *what, size_t *trailing);
/* The "trailing_bytes" claim (an integer, 0 when none). */
CL_MUST_USE int cl_claims_set_trailing(json_t *claims, size_t trailing);
/* Compare report_data with the expected value in opts (when given). */
CL_MUST_USE int cl_check_report_data(const struct cl_verify_opts *o, const uint8_t rd[64]);

/* 1 when a parsed JSON document (may be NULL) has one of the TPM evidence shapes (tpm.h). */
int cl_tpm_json_shape(const json_t *root);

/*
 * Replay a dev-TEE event log (devtee_eventlog.c), demand that it ends in the
 * registers the report signed, and add its entries to claims as "eventlog".
 */
CL_MUST_USE int
cl_devtee_eventlog_check(const uint8_t *log, size_t n,
			 const uint8_t signed_rtmr[CL_DEVTEE_RTMRS][CL_DEVTEE_HASH_LEN],
			 json_t *claims);

#endif
