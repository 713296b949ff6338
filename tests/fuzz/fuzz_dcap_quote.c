/* libFuzzer target: the DCAP quote parser (SGX v3/v4/v5, TDX v4/v5). */
#include <stdint.h>
#include <stdlib.h>

#include "cloister/dcap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Pointers the parser hands out must lie inside the input. */
static void inside(const uint8_t *data, size_t size, const uint8_t *p, size_t n)
{
	if (n == 0)
		return;
	if (!p || p < data || n > size || (size_t)(p - data) > size - n)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cl_dcap_quote q;

	if (cl_dcap_quote_parse(data, size, &q) != CL_OK)
		return 0;
	if (q.version < 3 || q.version > 5 || q.att_key_type != CL_DCAP_ATT_KEY_ECDSA_P256)
		abort();
	inside(data, size, q.signed_data, q.signed_len);
	inside(data, size, q.signature, CL_DCAP_SIG_LEN);
	inside(data, size, q.att_key, CL_DCAP_KEY_LEN);
	inside(data, size, q.cert.qe_report_raw, CL_DCAP_QE_REPORT_LEN);
	inside(data, size, q.cert.qe_report_sig, CL_DCAP_SIG_LEN);
	inside(data, size, q.cert.qe_auth_data, q.cert.qe_auth_len);
	inside(data, size, q.cert.cert_data, q.cert.cert_len);
	if (q.cert.qe_auth_len > CL_DCAP_MAX_AUTH_DATA || q.cert.cert_len > CL_DCAP_MAX_CERT_DATA)
		abort();
	return 0;
}
