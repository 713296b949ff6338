/* Per-format verifiers behind cl_verify_evidence(). */
#ifndef CLOISTER_EVIDENCE_INTERNAL_H
#define CLOISTER_EVIDENCE_INTERNAL_H

#include "cloister/evidence.h"

/*
 * Each verifier parses ev, fills *claims (a new JSON object owned by the
 * caller, set as soon as the evidence parsed, even if a later check fails)
 * and returns CL_OK or a cl_err with the detail set through cl_fail().
 */
CL_MUST_USE int cl_snp_verify(const uint8_t *ev, size_t n, const struct cl_verify_opts *o,
			      json_t **claims);
CL_MUST_USE int cl_dcap_verify(const uint8_t *ev, size_t n, const struct cl_verify_opts *o,
			       enum cl_format *fmt, json_t **claims);
CL_MUST_USE int cl_devtee_verify(const uint8_t *ev, size_t n, const struct cl_verify_opts *o,
				 json_t **claims);
CL_MUST_USE int cl_tpm_verify(const uint8_t *ev, size_t n, const struct cl_verify_opts *o,
			      json_t **claims);

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

#endif
