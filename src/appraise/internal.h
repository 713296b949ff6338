/* Shared inside src/appraise only. */
#ifndef CLOISTER_APPRAISE_INTERNAL_H
#define CLOISTER_APPRAISE_INTERNAL_H

#include "cloister/appraise.h"

/* The normalised claims object of one platform (borrowed), or NULL. */
const json_t *cl_refvalues_platform(const struct cl_refvalues *rv, const char *platform);
/*
 * Check and normalise reference values already held as JSON in the file's
 * shape; the JSON file parser and the CoRIM reader both end here, so every
 * source lands in the same structure. in stays the caller's.
 */
CL_MUST_USE int cl_refvalues_from_json(const json_t *in, struct cl_refvalues **out);

#endif
