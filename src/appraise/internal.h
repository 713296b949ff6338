/* Shared inside src/appraise only. */
#ifndef CLOISTER_APPRAISE_INTERNAL_H
#define CLOISTER_APPRAISE_INTERNAL_H

#include "cloister/appraise.h"

/* The normalised claims object of one platform (borrowed), or NULL. */
const json_t *cl_refvalues_platform(const struct cl_refvalues *rv, const char *platform);

#endif
