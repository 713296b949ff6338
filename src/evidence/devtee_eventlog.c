/*
 * The dev-TEE runtime-register event log: entries a workload extended into
 * its registers, returned by the platform and carried in the agent's envelope
 * beside the report. The log means something only once its replay equals the
 * registers the report signed.
 */
#include <string.h>

#include "cloister/crypto.h"
#include "cloister/devtee_report.h"
#include "internal.h"

int cl_devtee_extend(uint8_t reg[CL_DEVTEE_HASH_LEN], const uint8_t digest[CL_DEVTEE_HASH_LEN])
{
	uint8_t buf[2 * CL_DEVTEE_HASH_LEN];

	memcpy(buf, reg, CL_DEVTEE_HASH_LEN);
	memcpy(buf + CL_DEVTEE_HASH_LEN, digest, CL_DEVTEE_HASH_LEN);
	return cl_digest(CL_SHA384, buf, sizeof(buf), reg);
}

int cl_devtee_eventlog_replay(const uint8_t *p, size_t n,
			      uint8_t rtmr[CL_DEVTEE_RTMRS][CL_DEVTEE_HASH_LEN], size_t *count)
{
	struct cl_reader r = cl_reader_make(p, n);
	size_t k = 0;

	memset(rtmr, 0, CL_DEVTEE_RTMRS * CL_DEVTEE_HASH_LEN);
	while (r.left) {
		uint32_t idx = 0;
		uint16_t elen = 0;
		uint8_t digest[CL_DEVTEE_HASH_LEN];

		CL_ENSURE_MSG(k < CL_DEVTEE_MAX_EVENTS, CL_ERR_MALFORMED,
			      "event log has more than %d entries", CL_DEVTEE_MAX_EVENTS);
		CL_GUARD(cl_read_u32le(&r, &idx));
		CL_ENSURE_MSG(idx < CL_DEVTEE_RTMRS, CL_ERR_MALFORMED,
			      "event %zu names register %u", k, idx);
		CL_GUARD(cl_read_bytes(&r, digest, sizeof(digest)));
		CL_GUARD(cl_read_u16le(&r, &elen));
		CL_ENSURE_MSG(elen <= CL_DEVTEE_MAX_EVENT, CL_ERR_MALFORMED,
			      "event %zu data longer than %d bytes", k, CL_DEVTEE_MAX_EVENT);
		CL_GUARD(cl_read_skip(&r, elen));
		CL_GUARD(cl_devtee_extend(rtmr[idx], digest));
		k++;
	}
	if (count)
		*count = k;
	return CL_OK;
}

/* Claims for a replayed log: the entries, so a policy can read what was extended. */
static int eventlog_claims(const uint8_t *p, size_t n, json_t *claims)
{
	struct cl_reader r = cl_reader_make(p, n);
	json_t *arr = json_array();
	int rc = CL_OK;

	CL_CHECK(arr, CL_ERR_NOMEM, "out of memory");
	while (r.left) {
		uint32_t idx = 0;
		uint16_t elen = 0;
		const uint8_t *d = NULL, *e = NULL;
		char *dh = NULL, *eh = NULL;
		json_t *o = NULL;

		CL_TRY(cl_read_u32le(&r, &idx));
		CL_TRY(cl_read_ref(&r, CL_DEVTEE_HASH_LEN, &d));
		CL_TRY(cl_read_u16le(&r, &elen));
		CL_TRY(cl_read_ref(&r, elen, &e));
		dh = cl_hex_strdup(d, CL_DEVTEE_HASH_LEN);
		eh = cl_hex_strdup(e, elen);
		o = dh && eh ? json_pack("{s:I, s:s, s:s}", "index", (json_int_t)idx, "digest", dh,
					 "data", eh)
			     : NULL;
		free(dh);
		free(eh);
		CL_CHECK(o && json_array_append_new(arr, o) == 0, CL_ERR_NOMEM, "out of memory");
	}
	CL_CHECK(json_object_set_new(claims, "eventlog", arr) == 0, CL_ERR_NOMEM, "out of memory");
	arr = NULL;
out:
	json_decref(arr);
	return rc;
}

int cl_devtee_eventlog_check(const uint8_t *log, size_t n,
			     const uint8_t signed_rtmr[CL_DEVTEE_RTMRS][CL_DEVTEE_HASH_LEN],
			     json_t *claims)
{
	uint8_t rtmr[CL_DEVTEE_RTMRS][CL_DEVTEE_HASH_LEN];

	CL_GUARD(cl_devtee_eventlog_replay(log, n, rtmr, NULL));
	CL_ENSURE_MSG(cl_ct_equal(rtmr, signed_rtmr, sizeof(rtmr)), CL_ERR_MISMATCH,
		      "event log replay does not match the report's registers");
	return eventlog_claims(log, n, claims);
}
