/* AR4SI trustworthiness claims and tiers (draft-ietf-rats-ar4si). */
#include <string.h>

#include "cloister/appraise.h"

static const char *const tv_names[CL_TV_COUNT] = {
	"instance-identity", "configuration",  "executables",	 "file-system",
	"hardware",	     "runtime-opaque", "storage-opaque", "sourced-data",
};

const char *cl_tv_claim_name(int claim)
{
	if (claim < 0 || claim >= CL_TV_COUNT)
		return NULL;
	return tv_names[claim];
}

int cl_tv_claim_index(const char *name)
{
	for (int i = 0; name && i < CL_TV_COUNT; i++) {
		const char *a = tv_names[i], *b = name;

		while (*a && *b && (*a == *b || (*a == '-' && *b == '_'))) {
			a++;
			b++;
		}
		if (!*a && !*b)
			return i;
	}
	return -1;
}

/*
 * AR4SI section 2.3: -1..1 carry no claim; 2..31 (and -2..-32) affirm;
 * 32..95 (and -33..-96) warn; 96..127 (and below -96) contraindicate.
 */
enum cl_tier cl_tier_of_value(int v)
{
	int a = v < 0 ? -v - 1 : v;

	if (v >= -1 && v <= 1)
		return CL_TIER_NONE;
	if (a < 32)
		return CL_TIER_AFFIRMING;
	if (a < 96)
		return CL_TIER_WARNING;
	return CL_TIER_CONTRAINDICATED;
}

const char *cl_tier_name(enum cl_tier t)
{
	switch (t) {
	case CL_TIER_NONE:
		return "none";
	case CL_TIER_AFFIRMING:
		return "affirming";
	case CL_TIER_WARNING:
		return "warning";
	case CL_TIER_CONTRAINDICATED:
		return "contraindicated";
	default:
		return "unknown";
	}
}

int cl_tier_parse(const char *s, enum cl_tier *out)
{
	static const enum cl_tier all[] = {CL_TIER_NONE, CL_TIER_AFFIRMING, CL_TIER_WARNING,
					   CL_TIER_CONTRAINDICATED};

	for (size_t i = 0; s && i < sizeof(all) / sizeof(all[0]); i++) {
		if (strcmp(s, cl_tier_name(all[i])) == 0) {
			*out = all[i];
			return CL_OK;
		}
	}
	return cl_fail(CL_ERR_MALFORMED, "unknown trustworthiness tier '%.40s'", s ? s : "(null)");
}

enum cl_tier cl_vector_status(const int8_t vector[CL_TV_COUNT])
{
	enum cl_tier worst = CL_TIER_NONE;

	for (int i = 0; i < CL_TV_COUNT; i++) {
		enum cl_tier t = cl_tier_of_value(vector[i]);

		if (t > worst)
			worst = t;
	}
	return worst;
}
