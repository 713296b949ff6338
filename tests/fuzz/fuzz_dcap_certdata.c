/*
 * libFuzzer target: the DCAP certification-data parser on its own. Inputs are
 * whole quotes (the seeds are the real ones): the harness finds the
 * certification data the way the quote layout places it and hands that
 * region, with the quote's version, to cl_dcap_certdata_parse, so mutations
 * land in the QE report, auth data and certificate parts.
 */
#include <stdint.h>
#include <stdlib.h>

#include "cloister/dcap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cl_reader r = cl_reader_make(data, size), sig = {0};
	struct cl_dcap_certdata cd;
	uint16_t version = 0, body_type = 0;
	uint32_t tee = 0, body_len = 0, sig_len = 0;

	if (cl_read_u16le(&r, &version) != CL_OK || cl_read_skip(&r, 2) != CL_OK ||
	    cl_read_u32le(&r, &tee) != CL_OK || cl_read_skip(&r, CL_DCAP_HEADER_LEN - 8) != CL_OK)
		return 0;
	if (version == 5) {
		if (cl_read_u16le(&r, &body_type) != CL_OK || cl_read_u32le(&r, &body_len) != CL_OK)
			return 0;
	} else {
		body_len = tee == CL_DCAP_TEE_TDX ? CL_DCAP_TDX10_BODY_LEN : CL_DCAP_SGX_BODY_LEN;
	}
	if (cl_read_skip(&r, body_len) != CL_OK || cl_read_u32le(&r, &sig_len) != CL_OK ||
	    cl_read_sub(&r, sig_len, &sig) != CL_OK ||
	    cl_read_skip(&sig, CL_DCAP_SIG_LEN + CL_DCAP_KEY_LEN) != CL_OK)
		return 0;
	if (cl_dcap_certdata_parse(sig.p, sig.left, version, &cd) != CL_OK)
		return 0;
	if (cd.qe_auth_len > CL_DCAP_MAX_AUTH_DATA || cd.cert_len > CL_DCAP_MAX_CERT_DATA ||
	    !cd.qe_report_raw || !cd.qe_report_sig)
		abort();
	return 0;
}
