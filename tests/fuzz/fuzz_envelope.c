/*
 * The agent's JSON envelope on arbitrary bytes: the strict parser, then the
 * SNP certificate table and dev-TEE event log it may carry, and the whole
 * envelope verifier (offline, no roots given, so it ends in a rejection
 * without touching the network). The raw input is also tried as a table.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/devtee.h"
#include "cloister/evidence.h"
#include "evidence/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cl_envelope e;
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	struct cl_verify_result r = {0};
	uint8_t rtmr[CL_DEVTEE_RTMRS][CL_DEVTEE_HASH_LEN];
	const uint8_t *c = NULL;
	size_t len = 0;

	if (cl_snp_certtable_find(data, size, cl_snp_guid_vcek, &c, &len) == CL_OK && c &&
	    (c < data || len > size || (size_t)(c - data) > size - len))
		abort();
	if (cl_envelope_parse(data, size, &e) == CL_OK) {
		if (!e.evidence || !e.evidence_len || e.evidence_len > CL_MAX_EVIDENCE ||
		    e.certs_len > CL_MAX_ENVELOPE_CERTS ||
		    e.eventlog_len > CL_MAX_ENVELOPE_EVENTLOG || e.format == CL_FORMAT_AUTO)
			abort();
		if (e.certs &&
		    cl_snp_certtable_find(e.certs, e.certs_len, cl_snp_guid_vlek, &c, &len) ==
			    CL_OK &&
		    c && (size_t)(c - e.certs) + len > e.certs_len)
			abort();
		if (e.have_eventlog)
			(void)!cl_devtee_eventlog_replay(e.eventlog, e.eventlog_len, rtmr, NULL);
	}
	cl_envelope_free(&e);
	o.offline = 1;
	o.cache_dir = "/nonexistent/cloister-fuzz-envelope";
	if (cl_envelope_detect(data, size) && cl_verify_evidence(data, size, &o, &r) == CL_OK)
		abort(); /* nothing can verify without a root or a VCEK */
	cl_verify_result_free(&r);
	return 0;
}
