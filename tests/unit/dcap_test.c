/*
 * DCAP quotes: parsing of every real quote in the vectors, verification with
 * and without collateral at the times SOURCES.md gives, and tampering: every
 * byte of the signed and certified parts, and every truncation.
 */
#include <pthread.h>
#include <time.h>

#include "cloister/dcap.h"
#include "cloister/evidence.h"
#include "evidence/internal.h"
#include "test.h"

#define T_2025_07 1751328000 /* 2025-07-01T00:00:00Z */
#define T_2026_03 1772323200 /* 2026-03-01T00:00:00Z */
#define T_2026_07 1782864000 /* 2026-07-01T00:00:00Z */

static const char *claim_str(const json_t *c, const char *k)
{
	return json_string_value(json_object_get(c, k));
}

static int verify_at(const struct cl_buf *b, int64_t at, const char *coll, int allow_debug,
		     struct cl_verify_result *r)
{
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;

	o.at = at;
	o.offline = 1;
	o.allow_debug = allow_debug;
	o.dcap.collateral = coll ? vector_path(coll) : NULL;
	return cl_verify_evidence(b->data, b->len, &o, r);
}

static void test_parse(void)
{
	static const struct {
		const char *file;
		uint16_t version;
		uint32_t tee;
		uint16_t body;
	} cases[] = {
		{"tdx/dcap-qvl/tdx_quote", 4, CL_DCAP_TEE_TDX, CL_DCAP_BODY_TDX10},
		{"tdx/dcap-qvl/tdx_quote_outdated", 5, CL_DCAP_TEE_TDX, CL_DCAP_BODY_TDX15},
		{"tdx/trustee/tdx_quote_4.dat", 4, CL_DCAP_TEE_TDX, CL_DCAP_BODY_TDX10},
		{"tdx/trustee/tdx_quote_5.dat", 5, CL_DCAP_TEE_TDX, CL_DCAP_BODY_TDX15},
		{"tdx/trustee/tdx_quote_6.dat", 4, CL_DCAP_TEE_TDX, CL_DCAP_BODY_TDX10},
		{"azure-cvm/trustee/az-tdx-vtpm/td-quote.bin", 4, CL_DCAP_TEE_TDX,
		 CL_DCAP_BODY_TDX10},
		{"sgx/dcap-qvl/sgx_quote", 3, CL_DCAP_TEE_SGX, CL_DCAP_BODY_SGX},
		{"sgx/trustee/occlum_quote.dat", 3, CL_DCAP_TEE_SGX, CL_DCAP_BODY_SGX},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cl_buf b = vector_read(cases[i].file);
		struct cl_dcap_quote q;

		CHECK_EQ_INT(cl_dcap_quote_parse(b.data, b.len, &q), CL_OK);
		CHECK_EQ_INT(q.version, cases[i].version);
		CHECK_EQ_INT(q.tee_type, cases[i].tee);
		CHECK_EQ_INT(q.body_type, cases[i].body);
		CHECK_EQ_INT(q.cert.cert_type, CL_DCAP_CERT_PCK_CHAIN);
		CHECK_EQ_INT(q.cert.qe_auth_len, 32);
		CHECK(q.cert.cert_len > 1000);
		CHECK_EQ_INT(cl_format_detect(b.data, b.len),
			     cases[i].tee == CL_DCAP_TEE_TDX ? CL_FORMAT_TDX : CL_FORMAT_SGX);
		cl_buf_free(&b);
	}

	{
		struct cl_buf b = vector_read("sgx/dcap-qvl/sgx_quote");
		struct cl_dcap_quote q;
		static const uint8_t mre[4] = {0x33, 0xd8, 0x73, 0x6d};
		static const uint8_t mrs[4] = {0x81, 0x5f, 0x42, 0xf1};

		CHECK_EQ_INT(cl_dcap_quote_parse(b.data, b.len, &q), CL_OK);
		CHECK(memcmp(q.sgx.mr_enclave, mre, 4) == 0);
		CHECK(memcmp(q.sgx.mr_signer, mrs, 4) == 0);
		CHECK(memcmp(q.sgx.report_data, "Hello, world!", 13) == 0);
		cl_buf_free(&b);
	}
	{
		struct cl_buf b = vector_read("sgx/trustee/occlum_quote.dat");
		struct cl_dcap_quote q;

		CHECK_EQ_INT(cl_dcap_quote_parse(b.data, b.len, &q), CL_OK);
		CHECK(memcmp(q.sgx.report_data, "test", 4) == 0);
		cl_buf_free(&b);
	}
}

/* The certification-data parser on its own, on the tail of real quotes. */
static void test_certdata(void)
{
	struct cl_buf b = vector_read("tdx/dcap-qvl/tdx_quote_outdated");
	struct cl_dcap_quote q;
	struct cl_dcap_certdata cd;
	size_t off = 0, len = 0;

	CHECK_EQ_INT(cl_dcap_quote_parse(b.data, b.len, &q), CL_OK);
	off = q.signed_len + 4 + CL_DCAP_SIG_LEN + CL_DCAP_KEY_LEN;
	len = b.len - off;
	CHECK_EQ_INT(cl_dcap_certdata_parse(b.data + off, len, 5, &cd), CL_OK);
	CHECK_EQ_INT(cd.cert_type, CL_DCAP_CERT_PCK_CHAIN);
	CHECK(cd.qe_report_raw == q.cert.qe_report_raw);
	CHECK(cl_dcap_certdata_parse(b.data + off, len, 3, &cd) != CL_OK);
	CHECK(cl_dcap_certdata_parse(b.data + off, len - 1, 5, &cd) != CL_OK);
	CHECK(cl_dcap_certdata_parse(b.data + off, len, 6, &cd) != CL_OK);
	/* Outer type must be 6. */
	b.data[off] = 5;
	CHECK_EQ_INT(cl_dcap_certdata_parse(b.data + off, len, 5, &cd), CL_ERR_UNSUPPORTED);
	cl_buf_free(&b);
}

static void test_verify_no_collateral(void)
{
	static const struct {
		const char *file;
		int debug;
		const char *fmt;
		int64_t at;
	} cases[] = {
		{"tdx/dcap-qvl/tdx_quote", 0, "tdx", T_2025_07},
		{"tdx/dcap-qvl/tdx_quote_outdated", 0, "tdx", T_2026_03},
		{"tdx/trustee/tdx_quote_4.dat", 1, "tdx", T_2025_07},
		{"tdx/trustee/tdx_quote_5.dat", 0, "tdx", T_2025_07},
		{"tdx/trustee/tdx_quote_6.dat", 0, "tdx", T_2025_07},
		{"azure-cvm/trustee/az-tdx-vtpm/td-quote.bin", 0, "tdx", T_2025_07},
		{"sgx/dcap-qvl/sgx_quote", 0, "sgx", T_2025_07},
		{"sgx/trustee/occlum_quote.dat", 1, "sgx", T_2025_07},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cl_buf b = vector_read(cases[i].file);
		struct cl_verify_result r;

		CHECK_EQ_INT(verify_at(&b, cases[i].at, NULL, 1, &r), CL_OK);
		CHECK_STR(claim_str(r.claims, "platform"), cases[i].fmt);
		CHECK_STR(claim_str(r.claims, "tcb_status"), "Unknown");
		CHECK_EQ_INT(json_array_size(json_object_get(r.claims, "advisory_ids")), 0);
		CHECK_EQ_INT(json_is_true(json_object_get(r.claims, "debug")), cases[i].debug);
		CHECK(claim_str(r.claims, "fmspc") != NULL);
		cl_verify_result_free(&r);
		/* Debuggable TDs and enclaves are refused unless allowed. */
		CHECK_EQ_INT(verify_at(&b, cases[i].at, NULL, 0, &r),
			     cases[i].debug ? CL_ERR_POLICY : CL_OK);
		CHECK(r.claims != NULL);
		cl_verify_result_free(&r);
		/* Outside the PCK chain's validity. */
		CHECK_EQ_INT(verify_at(&b, 1500000000, NULL, 1, &r), CL_ERR_EXPIRED);
		cl_verify_result_free(&r);
		cl_buf_free(&b);
	}
}

static void test_claims(void)
{
	struct cl_buf b = vector_read("tdx/dcap-qvl/tdx_quote_outdated");
	struct cl_verify_result r;
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	const char *rd = NULL;

	CHECK_EQ_INT(verify_at(&b, T_2026_03, NULL, 0, &r), CL_OK);
	CHECK_EQ_INT(r.format, CL_FORMAT_TDX);
	CHECK_EQ_INT(json_integer_value(json_object_get(r.claims, "quote_version")), 5);
	CHECK_STR(claim_str(r.claims, "measurement"), claim_str(r.claims, "mr_td"));
	CHECK(claim_str(r.claims, "tee_tcb_svn2") != NULL);
	CHECK(claim_str(r.claims, "mr_servicetd") != NULL);
	CHECK(claim_str(r.claims, "rtmr3") != NULL);
	CHECK_EQ_INT(strlen(claim_str(r.claims, "td_attributes")), 16);
	rd = claim_str(r.claims, "report_data");
	CHECK(rd && strncmp(rd, "d2142b643598eb5f", 16) == 0);
	/* The expected REPORT_DATA, then one that differs. */
	o.at = T_2026_03;
	o.have_report_data = 1;
	CHECK_EQ_INT(cl_hex_decode_exact(rd, o.report_data, 64), CL_OK);
	cl_verify_result_free(&r);
	CHECK_EQ_INT(cl_verify_evidence(b.data, b.len, &o, &r), CL_OK);
	cl_verify_result_free(&r);
	o.report_data[63] ^= 1;
	CHECK_EQ_INT(cl_verify_evidence(b.data, b.len, &o, &r), CL_ERR_MISMATCH);
	cl_verify_result_free(&r);
	cl_buf_free(&b);

	b = vector_read("sgx/dcap-qvl/sgx_quote");
	CHECK_EQ_INT(verify_at(&b, T_2025_07, NULL, 0, &r), CL_OK);
	CHECK_EQ_INT(r.format, CL_FORMAT_SGX);
	CHECK_STR(claim_str(r.claims, "measurement"), claim_str(r.claims, "mr_enclave"));
	CHECK(strncmp(claim_str(r.claims, "mr_enclave"), "33d8736d", 8) == 0);
	CHECK(strncmp(claim_str(r.claims, "mr_signer"), "815f42f1", 8) == 0);
	CHECK(strncmp(claim_str(r.claims, "report_data"), "48656c6c6f2c20776f726c6421", 26) == 0);
	CHECK(json_is_integer(json_object_get(r.claims, "isv_svn")));
	CHECK(claim_str(r.claims, "cpu_svn") != NULL);
	cl_verify_result_free(&r);
	cl_buf_free(&b);
}

static void test_collateral(void)
{
	struct cl_buf b = vector_read("tdx/dcap-qvl/tdx_quote");
	struct cl_verify_result r;
	json_t *adv = NULL;

	CHECK_EQ_INT(verify_at(&b, T_2025_07, "tdx/dcap-qvl/tdx_quote_collateral.json", 0, &r),
		     CL_OK);
	CHECK_STR(claim_str(r.claims, "tcb_status"), "UpToDate");
	CHECK_EQ_INT(json_array_size(json_object_get(r.claims, "advisory_ids")), 0);
	cl_verify_result_free(&r);
	/* Same again: the cached chain and collateral must give the same answer. */
	CHECK_EQ_INT(verify_at(&b, T_2025_07, "tdx/dcap-qvl/tdx_quote_collateral.json", 0, &r),
		     CL_OK);
	cl_verify_result_free(&r);
	CHECK(verify_at(&b, T_2026_07, "tdx/dcap-qvl/tdx_quote_collateral.json", 0, &r) != CL_OK);
	cl_verify_result_free(&r);
	/* SGX collateral: its PCK CRL is the Processor CA's, this chain is the Platform CA's. */
	CHECK(verify_at(&b, T_2025_07, "sgx/dcap-qvl/sgx_quote_collateral.json", 0, &r) != CL_OK);
	cl_verify_result_free(&r);
	/* Valid TDX collateral, but for another platform (FMSPC). */
	CHECK_EQ_INT(
		verify_at(&b, T_2026_03, "tdx/dcap-qvl/tdx_quote_outdated_collateral.json", 0, &r),
		CL_ERR_COLLATERAL);
	CHECK(strstr(r.reason, "FMSPC") != NULL);
	cl_verify_result_free(&r);
	cl_buf_free(&b);

	b = vector_read("tdx/dcap-qvl/tdx_quote_outdated");
	CHECK_EQ_INT(
		verify_at(&b, T_2026_03, "tdx/dcap-qvl/tdx_quote_outdated_collateral.json", 0, &r),
		CL_ERR_TCB);
	CHECK(strstr(r.reason, "match") != NULL);
	cl_verify_result_free(&r);
	cl_buf_free(&b);

	b = vector_read("sgx/dcap-qvl/sgx_quote");
	CHECK_EQ_INT(verify_at(&b, T_2025_07, "sgx/dcap-qvl/sgx_quote_collateral.json", 0, &r),
		     CL_OK);
	CHECK_STR(claim_str(r.claims, "tcb_status"), "ConfigurationAndSWHardeningNeeded");
	adv = json_object_get(r.claims, "advisory_ids");
	CHECK_EQ_INT(json_array_size(adv), 2);
	CHECK_STR(json_string_value(json_array_get(adv, 0)), "INTEL-SA-00289");
	CHECK_STR(json_string_value(json_array_get(adv, 1)), "INTEL-SA-00615");
	cl_verify_result_free(&r);
	/* TDX collateral for an SGX quote. */
	CHECK(verify_at(&b, T_2025_07, "tdx/dcap-qvl/tdx_quote_collateral.json", 0, &r) != CL_OK);
	cl_verify_result_free(&r);
	cl_buf_free(&b);
}

/*
 * Bytes of the PCK chain PEM whose change leaves the chain as it was: what
 * follows the last END line, that is its line break and the NUL that Intel's
 * quoting library appends. The PEM reader drops trailing whitespace and
 * control characters of a line and reads nothing after the last
 * certificate; neither byte is part of any certificate, and the quote
 * signature does not cover the certification data (the certificates carry
 * their own signatures). Every other byte (base64 text, inner line breaks,
 * BEGIN/END lines) changes a certificate or drops one from the chain and must
 * be rejected.
 */
static int pem_byte_exempt(const uint8_t *pem, size_t len, size_t i)
{
	static const char end[] = "-----END CERTIFICATE-----";
	size_t tail = 0;

	for (size_t j = 0; j + sizeof(end) - 1 <= len; j++)
		if (memcmp(pem + j, end, sizeof(end) - 1) == 0)
			tail = j + sizeof(end) - 1;
	return tail && i >= tail;
}

/*
 * Flip every byte of the quote (header, body, signature, attestation key,
 * QE report, QE report signature, QE auth data, all length fields and the
 * PCK chain) and check it is refused; then every truncation. The chain cache
 * keeps this fast: only flips inside the chain redo chain verification.
 */
static void tamper(const char *file, int64_t at, int allow_debug)
{
	struct cl_buf b = vector_read(file);
	struct cl_verify_result r;
	struct cl_dcap_quote q;
	size_t end = 0, pem_off = 0, pem_len = 0, accepted = 0, exempt = 0;
	clock_t t0 = clock();

	CHECK_EQ_INT(cl_dcap_quote_parse(b.data, b.len, &q), CL_OK);
	CHECK_EQ_INT(verify_at(&b, at, NULL, allow_debug, &r), CL_OK);
	cl_verify_result_free(&r);
	/* Everything up to the end of the certification data; what follows is not signed. */
	end = (size_t)(q.cert.cert_data - b.data) + q.cert.cert_len;
	pem_off = (size_t)(q.cert.cert_data - b.data);
	pem_len = q.cert.cert_len;
	for (size_t i = 0; i < end; i++) {
		uint8_t old = b.data[i];
		b.data[i] = (uint8_t)(old ^ 0x01);
		if (verify_at(&b, at, NULL, allow_debug, &r) == CL_OK) {
			if (i >= pem_off &&
			    pem_byte_exempt(b.data + pem_off, pem_len, i - pem_off)) {
				exempt++;
			} else {
				accepted++;
				fprintf(stderr, "%s: flipping byte %zu (0x%02x) still verifies\n",
					file, i, old);
			}
		}
		cl_verify_result_free(&r);
		b.data[i] = old;
	}
	CHECK_EQ_INT(accepted, 0);
	CHECK(exempt <= 2);
	/* Bytes after the quote are accepted whatever their value, and counted. */
	for (size_t i = end; i < b.len; i++) {
		uint8_t old = b.data[i];

		b.data[i] = 0x80;
		CHECK_EQ_INT(verify_at(&b, at, NULL, allow_debug, &r), CL_OK);
		CHECK_EQ_INT(json_integer_value(json_object_get(r.claims, "trailing_bytes")),
			     b.len - end);
		cl_verify_result_free(&r);
		b.data[i] = old;
	}
	/* Every truncation of the quote itself. */
	for (size_t n = 0; n < end; n++) {
		struct cl_buf t = {b.data, n, b.cap, 0};

		CHECK(verify_at(&t, at, NULL, allow_debug, &r) != CL_OK);
		cl_verify_result_free(&r);
	}
	/* Any bytes after the quote, up to CL_MAX_TRAILING; one more is oversized. */
	{
		uint8_t *ext = malloc(end + CL_MAX_TRAILING + 1);

		CHECK(ext != NULL);
		if (ext) {
			struct cl_buf t = {ext, end + 1, end + 1, 0};

			memcpy(ext, b.data, end);
			memset(ext + end, 0x41, CL_MAX_TRAILING + 1);
			CHECK_EQ_INT(verify_at(&t, at, NULL, allow_debug, &r), CL_OK);
			CHECK_EQ_INT(
				json_integer_value(json_object_get(r.claims, "trailing_bytes")), 1);
			cl_verify_result_free(&r);
			t.len = end + CL_MAX_TRAILING;
			CHECK_EQ_INT(verify_at(&t, at, NULL, allow_debug, &r), CL_OK);
			cl_verify_result_free(&r);
			t.len = end + CL_MAX_TRAILING + 1;
			CHECK_EQ_INT(verify_at(&t, at, NULL, allow_debug, &r), CL_ERR_MALFORMED);
			cl_verify_result_free(&r);
			/* Nothing after the quote: 0, not absent. */
			t.len = end;
			CHECK_EQ_INT(verify_at(&t, at, NULL, allow_debug, &r), CL_OK);
			CHECK(json_is_integer(json_object_get(r.claims, "trailing_bytes")) &&
			      json_integer_value(json_object_get(r.claims, "trailing_bytes")) == 0);
			cl_verify_result_free(&r);
			free(ext);
		}
	}
	fprintf(stderr, "    %s: %zu flips, %zu truncations in %.2fs\n", file, end, end,
		(double)(clock() - t0) / CLOCKS_PER_SEC);
	cl_buf_free(&b);
}

static void test_tamper(void)
{
	tamper("tdx/dcap-qvl/tdx_quote", T_2025_07, 0);
	tamper("tdx/trustee/tdx_quote_5.dat", T_2025_07, 0);
	tamper("sgx/dcap-qvl/sgx_quote", T_2025_07, 0);
}

/* Certificates swapped between quotes: a valid chain for another platform. */
static void test_swapped_chain(void)
{
	struct cl_buf a = vector_read("tdx/dcap-qvl/tdx_quote");
	struct cl_buf c = vector_read("tdx/trustee/tdx_quote_6.dat");
	struct cl_dcap_quote qa, qc;
	struct cl_verify_result r;

	CHECK_EQ_INT(cl_dcap_quote_parse(a.data, a.len, &qa), CL_OK);
	CHECK_EQ_INT(cl_dcap_quote_parse(c.data, c.len, &qc), CL_OK);
	CHECK_EQ_INT(qa.cert.cert_len, qc.cert.cert_len);
	if (qa.cert.cert_len == qc.cert.cert_len) {
		memcpy(a.data + (qa.cert.cert_data - a.data), qc.cert.cert_data, qc.cert.cert_len);
		CHECK_EQ_INT(verify_at(&a, T_2025_07, NULL, 0, &r), CL_ERR_SIGNATURE);
		cl_verify_result_free(&r);
	}
	cl_buf_free(&a);
	cl_buf_free(&c);
}

/*
 * The process-wide caches under concurrent verifications of different quotes
 * with and without collateral. Paths are resolved before the threads start:
 * vector_path() hands out shared static buffers.
 */
struct thread_arg {
	struct cl_buf quote;
	char coll[4096];
};

static void *thread_main(void *p)
{
	const struct thread_arg *a = p;
	long bad = 0;

	for (int i = 0; i < 40; i++) {
		struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
		struct cl_verify_result r;

		o.at = T_2025_07;
		o.offline = 1;
		o.dcap.collateral = i % 2 ? a->coll : NULL;
		if (cl_verify_evidence(a->quote.data, a->quote.len, &o, &r) != CL_OK) {
			fprintf(stderr, "concurrent verification failed: %s\n", r.reason);
			bad++;
		}
		cl_verify_result_free(&r);
	}
	return (void *)bad;
}

static void test_threads(void)
{
	struct thread_arg a[2];
	pthread_t th[8];

	a[0].quote = vector_read("tdx/dcap-qvl/tdx_quote");
	snprintf(a[0].coll, sizeof(a[0].coll), "%s",
		 vector_path("tdx/dcap-qvl/tdx_quote_collateral.json"));
	a[1].quote = vector_read("sgx/dcap-qvl/sgx_quote");
	snprintf(a[1].coll, sizeof(a[1].coll), "%s",
		 vector_path("sgx/dcap-qvl/sgx_quote_collateral.json"));
	for (int i = 0; i < 8; i++)
		CHECK_EQ_INT(pthread_create(&th[i], NULL, thread_main, &a[i % 2]), 0);
	for (int i = 0; i < 8; i++) {
		void *bad = NULL;

		CHECK_EQ_INT(pthread_join(th[i], &bad), 0);
		CHECK(bad == NULL);
	}
	cl_buf_free(&a[0].quote);
	cl_buf_free(&a[1].quote);
}

int main(void)
{
	RUN(test_parse);
	RUN(test_certdata);
	RUN(test_verify_no_collateral);
	RUN(test_claims);
	RUN(test_collateral);
	RUN(test_tamper);
	RUN(test_swapped_chain);
	RUN(test_threads);
	return test_done("dcap_test");
}
