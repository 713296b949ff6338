/*
 * SEV-SNP: the report parser, the AMD certificate extension parser, and
 * verification of the real go-sev-guest and trustee reports, plus negatives
 * made by mutating those reports and certificates in memory.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cloister/amd.h"
#include "cloister/crypto.h"
#include "cloister/evidence.h"
#include "cloister/snp.h"
#include "evidence/internal.h"
#include "test.h"

#define GSG "sev-snp/go-sev-guest/"
#define TRU "sev-snp/trustee/"

static struct cl_buf gsg_report, gsg_vcek, tru_report, tru_vcek, tru_vlek_report, tru_vlek;
static char cache_dir[64];

static int64_t when(const char *rfc3339)
{
	int64_t t = 0;

	if (cl_time_parse(rfc3339, &t) != CL_OK)
		abort();
	return t;
}

static struct cl_verify_opts opts(const struct cl_buf *vcek, const char *at)
{
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;

	o.format = CL_FORMAT_SNP;
	o.snp.vcek = vcek ? vcek->data : NULL;
	o.snp.vcek_len = vcek ? vcek->len : 0;
	o.at = when(at);
	o.offline = 1;
	o.cache_dir = cache_dir;
	return o;
}

/* Verify; returns status and keeps the claims in *claims when asked. */
static int verify(const uint8_t *ev, size_t n, const struct cl_verify_opts *o, json_t **claims)
{
	struct cl_verify_result r = {0};
	int rc = cl_verify_evidence(ev, n, o, &r);

	if (claims) {
		*claims = r.claims;
		r.claims = NULL;
	}
	cl_verify_result_free(&r);
	return rc;
}

static const char *str_claim(json_t *c, const char *key)
{
	return json_string_value(json_object_get(c, key));
}

static long long int_claim(json_t *c, const char *key)
{
	return json_integer_value(json_object_get(c, key));
}

/* ------------------------------------------------------------- parsing */

static void test_parse_go_sev_guest(void)
{
	struct cl_snp_report r;
	uint8_t rd[64] = {1, 2, 3, 4, 5};
	char hex[2 * 64 + 1];

	CHECK_EQ_INT(cl_snp_report_parse(gsg_report.data, gsg_report.len, &r), CL_OK);
	CHECK_EQ_INT(r.version, 2);
	CHECK_EQ_INT(r.policy, 0xb0000);
	CHECK_EQ_INT(r.vmpl, 0);
	CHECK_EQ_INT(r.sig_algo, 1);
	CHECK_EQ_INT(r.signer, CL_SNP_SIGNER_VCEK);
	CHECK_EQ_INT(r.debug, 1);
	CHECK_EQ_INT(r.has_cpuid, 0);
	CHECK(r.reported_tcb == UINT64_C(0x4405000000000002));
	CHECK(memcmp(r.report_data, rd, 64) == 0);
	cl_hex_encode(r.measurement, 48, hex);
	CHECK_STR(hex, "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece3"
		       "1a5a608eb0cf2e4872b01");
	cl_hex_encode(r.chip_id, 8, hex);
	CHECK_STR(hex, "3ac3fe21e13fb099");
}

static void test_parse_trustee(void)
{
	struct cl_snp_report r;
	char hex[2 * 64 + 1];

	CHECK_EQ_INT(cl_snp_report_parse(tru_report.data, tru_report.len, &r), CL_OK);
	CHECK_EQ_INT(r.version, 2);
	CHECK_EQ_INT(r.guest_svn, 4);
	CHECK_EQ_INT(r.policy, 0x3001f);
	CHECK(r.reported_tcb == UINT64_C(0x7308000000000003));
	cl_hex_encode(r.measurement, 48, hex);
	CHECK_STR(hex, "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e"
		       "692e6be917f9050d3d38c");

	CHECK_EQ_INT(cl_snp_report_parse(tru_vlek_report.data, tru_vlek_report.len, &r), CL_OK);
	CHECK_EQ_INT(r.version, 3);
	CHECK_EQ_INT(r.vmpl, 1);
	CHECK_EQ_INT(r.key_info, 4);
	CHECK_EQ_INT(r.signer, CL_SNP_SIGNER_VLEK);
	CHECK_EQ_INT(r.has_cpuid, 1);
	CHECK_EQ_INT(r.cpuid_fam_id, 25);
	CHECK_EQ_INT(r.cpuid_mod_id, 1);
	CHECK_EQ_INT(r.cpuid_step, 1);
	CHECK(r.reported_tcb == UINT64_C(0xd918000000000004));
	for (int i = 0; i < 64; i++)
		CHECK(r.chip_id[i] == 0);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void test_parse_malformed(void)
{
	struct cl_snp_report r;
	uint8_t *m = malloc(CL_SNP_REPORT_SIZE + CL_MAX_TRAILING + 1);
	int bad = 0;

	memcpy(m, gsg_report.data, CL_SNP_REPORT_SIZE);
	for (size_t n = 0; n < CL_SNP_REPORT_SIZE; n++)
		bad += cl_snp_report_parse(m, n, &r) != CL_ERR_TRUNCATED;
	CHECK_EQ_INT(bad, 0);
	/* Unsigned bytes after the report: accepted and counted, up to the cap. */
	memset(m + CL_SNP_REPORT_SIZE, 0xa5, CL_MAX_TRAILING + 1);
	CHECK_EQ_INT(cl_snp_report_parse(m, CL_SNP_REPORT_SIZE + 1, &r), CL_OK);
	CHECK_EQ_INT(r.trailing, 1);
	CHECK_EQ_INT(cl_snp_report_parse(m, CL_SNP_REPORT_SIZE + CL_MAX_TRAILING, &r), CL_OK);
	CHECK_EQ_INT(r.trailing, CL_MAX_TRAILING);
	CHECK_EQ_INT(cl_snp_report_parse(m, CL_SNP_REPORT_SIZE + CL_MAX_TRAILING + 1, &r),
		     CL_ERR_MALFORMED);
	CHECK_EQ_INT(cl_format_detect(m, CL_SNP_REPORT_SIZE + 4000), CL_FORMAT_SNP);
	CHECK_EQ_INT(cl_format_detect(m, CL_SNP_REPORT_SIZE + CL_MAX_TRAILING + 1), CL_FORMAT_AUTO);

	const struct {
		size_t off;
		uint32_t val;
		int want;
	} cases[] = {
		{0x00, 1, CL_ERR_UNSUPPORTED}, /* version */
		{0x00, 6, CL_ERR_UNSUPPORTED},
		{0x34, 0, CL_ERR_UNSUPPORTED}, /* signature algorithm */
		{0x34, 2, CL_ERR_UNSUPPORTED},
		{0x48, 2 << 2, CL_ERR_MALFORMED},   /* reserved signing key */
		{0x48, 7 << 2, CL_ERR_UNSUPPORTED}, /* unsigned report */
		{0x48, 1 << 5, CL_ERR_MALFORMED},   /* reserved key_info bit */
		{0x4C, 1, CL_ERR_MALFORMED},	    /* reserved */
		{0x30, 4, CL_ERR_MALFORMED},	    /* VMPL */
		{0x08, 0, CL_ERR_MALFORMED},	    /* policy without bit 17 */
		{0x18C, 1, CL_ERR_MALFORMED},	    /* reserved after reported_tcb */
		{0x1F8, 1, CL_ERR_MALFORMED},	    /* mitigation vectors in a v2 report */
		{0x290, 1, CL_ERR_MALFORMED},
		{0x2A0 + 48, 1, CL_ERR_MALFORMED}, /* high bytes of r */
		{0x2E8 + 68, 1, CL_ERR_MALFORMED}, /* high bytes of s */
		{0x49C, 1, CL_ERR_MALFORMED},	   /* signature padding */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(m, gsg_report.data, CL_SNP_REPORT_SIZE);
		put_u32(m + cases[i].off, cases[i].val);
		CHECK_EQ_INT(cl_snp_report_parse(m, CL_SNP_REPORT_SIZE, &r), cases[i].want);
	}
	/* A v5 report may carry mitigation vectors. */
	memcpy(m, tru_vlek_report.data, CL_SNP_REPORT_SIZE);
	put_u32(m, 5);
	put_u32(m + 0x1F8, 0x12);
	CHECK_EQ_INT(cl_snp_report_parse(m, CL_SNP_REPORT_SIZE, &r), CL_OK);
	CHECK(r.has_mit_vectors && r.launch_mit_vector == 0x12);
	free(m);
}

/* ------------------------------------------------- AMD certificate bits */

static void ext_of(const char *rel, struct cl_amd_cert_ext *e, int want)
{
	struct cl_buf b = vector_read(rel);
	X509 *x = NULL;

	CHECK_EQ_INT(cl_x509_from_any(b.data, b.len, &x), CL_OK);
	CHECK_EQ_INT(cl_amd_cert_ext_parse(x, e), want);
	X509_free(x);
	cl_buf_free(&b);
}

static void test_cert_extensions(void)
{
	struct cl_amd_cert_ext e;
	uint8_t seq[64];

	for (int i = 0; i < 64; i++)
		seq[i] = (uint8_t)i;
	ext_of(TRU "test-vcek-invalid-legacy.der", &e, CL_OK);
	CHECK(e.has_hwid && e.hwid_len == 64 && memcmp(e.hwid, seq, 64) == 0);
	CHECK(e.has_tcb && e.tcb.bootloader == 3 && e.tcb.tee == 0 && e.tcb.snp == 10 &&
	      e.tcb.microcode == 169);
	CHECK_STR(e.product, "Milan-B0");
	CHECK(!e.has_csp_id && !e.has_fmc);

	ext_of(TRU "test-vcek-invalid-new.der", &e, CL_OK);
	CHECK(e.has_hwid && e.hwid_len == 64 && memcmp(e.hwid, seq, 64) == 0);
	CHECK(e.has_tcb && e.tcb.bootloader == 0 && e.tcb.snp == 0 && e.tcb.microcode == 30);

	ext_of(TRU "test-vcek.der", &e, CL_OK);
	CHECK(e.has_tcb && e.tcb.bootloader == 3 && e.tcb.snp == 8 && e.tcb.microcode == 115);
	CHECK(e.has_hwid && memcmp(e.hwid, tru_report.data + 0x1A0, 64) == 0);

	ext_of(TRU "test-vlek.der", &e, CL_OK);
	CHECK(!e.has_hwid && e.has_csp_id);
	CHECK_STR(e.csp_id, "CN=cc-us-east-2.amazonaws.com");
	CHECK_STR(e.product, "Milan");
}

static void test_products_and_urls(void)
{
	enum cl_amd_product p = CL_AMD_PRODUCT_COUNT;
	struct cl_amd_tcb t;
	uint8_t chip[64] = {0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xee};
	char url[1024];

	CHECK(cl_amd_product_from_cpuid(0x19, 0x01, &p) == CL_OK && p == CL_AMD_MILAN);
	CHECK(cl_amd_product_from_cpuid(0x19, 0x11, &p) == CL_OK && p == CL_AMD_GENOA);
	CHECK(cl_amd_product_from_cpuid(0x19, 0xa0, &p) == CL_OK && p == CL_AMD_GENOA);
	CHECK(cl_amd_product_from_cpuid(0x1a, 0x02, &p) == CL_OK && p == CL_AMD_TURIN);
	CHECK(cl_amd_product_from_cpuid(0x17, 0x31, &p) == CL_ERR_UNSUPPORTED);
	CHECK(cl_amd_product_from_name("Milan-B0", &p) == CL_OK && p == CL_AMD_MILAN);
	CHECK(cl_amd_product_from_name("Genoa", &p) == CL_OK && p == CL_AMD_GENOA);
	CHECK(cl_amd_product_from_name("Milanese", &p) == CL_ERR_UNSUPPORTED);

	cl_amd_tcb_decode(CL_AMD_MILAN, UINT64_C(0x4405000000000002), &t);
	CHECK(t.bootloader == 2 && t.tee == 0 && t.snp == 5 && t.microcode == 0x44 && t.fmc == 0);
	/* Turin: fmc, bootloader, tee, snp, 3 reserved, microcode. */
	cl_amd_tcb_decode(CL_AMD_TURIN, UINT64_C(0x0500000004020103), &t);
	CHECK(t.fmc == 3 && t.bootloader == 1 && t.tee == 2 && t.snp == 4 && t.microcode == 5);

	CHECK_EQ_INT(cl_amd_kds_vcek_url(NULL, CL_AMD_TURIN, chip, &t, url, sizeof(url)), CL_OK);
	CHECK_STR(url, "https://kdsintf.amd.com/vcek/v1/Turin/"
		       "cdcdcdcdcdcdcdcd?fmcSPL=3&blSPL=1&teeSPL=2&snpSPL=4&ucodeSPL=5");
	cl_amd_tcb_decode(CL_AMD_MILAN, UINT64_C(0x4405000000000002), &t);
	CHECK_EQ_INT(cl_amd_kds_vcek_url("http://127.0.0.1:1/", CL_AMD_MILAN,
					 gsg_report.data + 0x1A0, &t, url, sizeof(url)),
		     CL_OK);
	CHECK(strncmp(url, "http://127.0.0.1:1/vcek/v1/Milan/3ac3fe21e13fb099", 49) == 0);
	CHECK(strstr(url, "006b5d?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68") != NULL);
}

/* -------------------------------------------------------- verification */

static void test_go_sev_guest(void)
{
	struct cl_verify_opts o = opts(&gsg_vcek, "2022-09-24T01:00:00Z");
	json_t *c = NULL;
	char rd[129];

	/* Policy 0xb0000 allows debugging: rejected unless asked for. */
	CHECK_EQ_INT(verify(gsg_report.data, gsg_report.len, &o, &c), CL_ERR_POLICY);
	CHECK(strstr(cl_error_detail(), "debug") != NULL);
	CHECK(c != NULL && json_is_true(json_object_get(c, "debug")));
	json_decref(c);

	o.allow_debug = 1;
	CHECK_EQ_INT(verify(gsg_report.data, gsg_report.len, &o, &c), CL_OK);
	CHECK_STR(str_claim(c, "platform"), "snp");
	CHECK_STR(str_claim(c, "product"), "Milan");
	CHECK_STR(str_claim(c, "signing_key"), "vcek");
	CHECK_STR(str_claim(c, "tcb_status"), "Unknown");
	CHECK_STR(str_claim(c, "measurement"), "b07af9620f3b839b47996422ddec6058338951d984e31211513"
					       "1ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01");
	memset(rd, '0', 128);
	rd[128] = 0;
	memcpy(rd, "0102030405", 10);
	CHECK_STR(str_claim(c, "report_data"), rd);
	CHECK_EQ_INT(int_claim(c, "policy"), 0xb0000);
	CHECK_EQ_INT(int_claim(json_object_get(c, "reported_tcb"), "microcode"), 68);
	CHECK_EQ_INT(int_claim(json_object_get(c, "reported_tcb"), "snp"), 5);
	CHECK(json_object_get(json_object_get(c, "reported_tcb"), "fmc") == NULL);
	json_decref(c);

	o.have_report_data = 1;
	memset(o.report_data, 0, 64);
	memcpy(o.report_data, "\x01\x02\x03\x04\x05", 5);
	CHECK_EQ_INT(verify(gsg_report.data, gsg_report.len, &o, NULL), CL_OK);
	o.report_data[5] = 6;
	CHECK_EQ_INT(verify(gsg_report.data, gsg_report.len, &o, NULL), CL_ERR_MISMATCH);
}

/*
 * Chain building tries candidates and products and abandons the ones that do
 * not verify; a verification that ends well must not keep their failure as
 * its detail, where a later failure that sets none would report it.
 */
static void test_no_stale_detail(void)
{
	struct cl_verify_opts o = opts(&tru_vcek, "2025-06-01T00:00:00Z");
	struct cl_buf certs = vector_read(TRU "milan_ask_ark_asvk.pem");
	uint8_t *bad = malloc(tru_report.len);

	o.no_cache = 1;
	o.snp.certs = certs.data; /* ASK, ARK, ASVK: the ASVK is tried and abandoned */
	o.snp.certs_len = certs.len;
	CHECK_EQ_INT(verify(tru_report.data, tru_report.len, &o, NULL), CL_OK);
	CHECK_STR(cl_error_detail(), "");
	/* No --vcek, nothing cached, offline: the cache miss is not the reason. */
	o = opts(NULL, "2025-06-01T00:00:00Z");
	CHECK_EQ_INT(verify(tru_report.data, tru_report.len, &o, NULL), CL_ERR_COLLATERAL);
	CHECK(strstr(cl_error_detail(), "not cached") == NULL);
	CHECK(strstr(cl_error_detail(), "--offline") != NULL);
	/* A failure reports its own cause after a success in the same thread. */
	o = opts(&tru_vcek, "2025-06-01T00:00:00Z");
	CHECK(bad != NULL);
	if (bad) {
		memcpy(bad, tru_report.data, tru_report.len);
		bad[42] ^= 1;
		CHECK_EQ_INT(verify(bad, tru_report.len, &o, NULL), CL_ERR_SIGNATURE);
		CHECK(strstr(cl_error_detail(), "signature") != NULL);
	}
	free(bad);
	cl_buf_free(&certs);
}

/* A report in a driver's fixed-size buffer; two reports are one plus 1184 unsigned bytes. */
static void test_trailing_bytes(void)
{
	struct cl_verify_opts o = opts(&tru_vcek, "2025-06-01T00:00:00Z");
	size_t n = 2 * CL_SNP_REPORT_SIZE;
	uint8_t *buf = malloc(4096);
	json_t *c = NULL;

	CHECK(buf != NULL);
	if (!buf)
		return;
	o.format = CL_FORMAT_AUTO;
	memcpy(buf, tru_report.data, CL_SNP_REPORT_SIZE);
	CHECK_EQ_INT(verify(buf, CL_SNP_REPORT_SIZE, &o, &c), CL_OK);
	CHECK_EQ_INT(int_claim(c, "trailing_bytes"), 0);
	CHECK(json_is_integer(json_object_get(c, "trailing_bytes")));
	json_decref(c);
	memset(buf + CL_SNP_REPORT_SIZE, 0xff, 4096 - CL_SNP_REPORT_SIZE);
	CHECK_EQ_INT(verify(buf, 4096, &o, &c), CL_OK);
	CHECK_EQ_INT(int_claim(c, "trailing_bytes"), 4096 - CL_SNP_REPORT_SIZE);
	json_decref(c);
	memcpy(buf + CL_SNP_REPORT_SIZE, gsg_report.data, CL_SNP_REPORT_SIZE);
	CHECK_EQ_INT(verify(buf, n, &o, &c), CL_OK);
	CHECK_EQ_INT(int_claim(c, "trailing_bytes"), CL_SNP_REPORT_SIZE);
	/* The first report's chip; the second report is never read. */
	CHECK(str_claim(c, "chip_id") && strncmp(str_claim(c, "chip_id"), "c38427a3", 8) == 0);
	CHECK_STR(str_claim(c, "signing_key"), "vcek");
	json_decref(c);
	/* The signed bytes keep their every-byte-flip rejection with bytes after them. */
	buf[42] ^= 1;
	CHECK_EQ_INT(verify(buf, n, &o, NULL), CL_ERR_SIGNATURE);
	free(buf);
}

static void test_trustee(void)
{
	const char *times[] = {"2023-06-01T00:00:00Z", "2025-06-01T00:00:00Z"};
	json_t *c = NULL;

	for (int i = 0; i < 2; i++) {
		struct cl_verify_opts o = opts(&tru_vcek, times[i]);

		CHECK_EQ_INT(verify(tru_report.data, tru_report.len, &o, &c), CL_OK);
		CHECK_STR(str_claim(c, "measurement"),
			  "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644"
			  "e0e692e6be917f9050d3d38c");
		CHECK_STR(str_claim(c, "signing_key"), "vcek");
		CHECK_EQ_INT(int_claim(c, "guest_svn"), 4);
		CHECK(json_is_false(json_object_get(c, "debug")));
		json_decref(c);
	}
	struct cl_verify_opts o = opts(&tru_vlek, "2025-06-01T00:00:00Z");

	CHECK_EQ_INT(verify(tru_vlek_report.data, tru_vlek_report.len, &o, &c), CL_OK);
	CHECK_STR(str_claim(c, "signing_key"), "vlek");
	CHECK_STR(str_claim(c, "product"), "Milan");
	CHECK_EQ_INT(int_claim(c, "vmpl"), 1);
	CHECK_EQ_INT(int_claim(c, "version"), 3);
	CHECK_STR(str_claim(c, "chip_id"),
		  "00000000000000000000000000000000000000000000000000000000000000000000000000000000"
		  "000000000000000000000000000000000000000000000000");
	json_decref(c);
	/* The VLEK was issued 2024-12-10 for one year. */
	o = opts(&tru_vlek, "2024-06-01T00:00:00Z");
	CHECK_EQ_INT(verify(tru_vlek_report.data, tru_vlek_report.len, &o, NULL), CL_ERR_EXPIRED);
	o = opts(&tru_vlek, "2026-06-01T00:00:00Z");
	CHECK_EQ_INT(verify(tru_vlek_report.data, tru_vlek_report.len, &o, NULL), CL_ERR_EXPIRED);
}

/* The cache may only skip chain work, never a time check. */
static void test_cache_respects_time(void)
{
	struct cl_verify_opts o = opts(&gsg_vcek, "2022-09-24T01:00:00Z");

	o.allow_debug = 1;
	cl_snp_cache_clear();
	CHECK_EQ_INT(verify(gsg_report.data, gsg_report.len, &o, NULL), CL_OK);
	o.at = when("2029-09-25T00:00:00Z"); /* VCEK ends 2029-09-24 */
	CHECK_EQ_INT(verify(gsg_report.data, gsg_report.len, &o, NULL), CL_ERR_EXPIRED);
	o.at = when("2022-09-23T00:00:00Z");
	CHECK_EQ_INT(verify(gsg_report.data, gsg_report.len, &o, NULL), CL_ERR_EXPIRED);
	o.at = when("2028-01-01T00:00:00Z");
	CHECK_EQ_INT(verify(gsg_report.data, gsg_report.len, &o, NULL), CL_OK);
	cl_snp_cache_clear();
	o.at = when("2029-09-25T00:00:00Z");
	CHECK_EQ_INT(verify(gsg_report.data, gsg_report.len, &o, NULL), CL_ERR_EXPIRED);
	/* no_cache: every check from scratch, same verdicts. */
	o.no_cache = 1;
	o.at = when("2024-01-01T00:00:00Z");
	CHECK_EQ_INT(verify(gsg_report.data, gsg_report.len, &o, NULL), CL_OK);
	o.at = when("2029-09-25T00:00:00Z");
	CHECK_EQ_INT(verify(gsg_report.data, gsg_report.len, &o, NULL), CL_ERR_EXPIRED);
}

static void test_wrong_keys(void)
{
	struct cl_verify_opts o = opts(&tru_vcek, "2025-06-01T00:00:00Z");

	o.allow_debug = 1;
	/* Another chip's VCEK. */
	CHECK(verify(gsg_report.data, gsg_report.len, &o, NULL) != CL_OK);
	o = opts(&gsg_vcek, "2025-06-01T00:00:00Z");
	CHECK(verify(tru_report.data, tru_report.len, &o, NULL) != CL_OK);
	/* A VLEK for a VCEK-signed report and the other way round. */
	o = opts(&tru_vlek, "2025-06-01T00:00:00Z");
	CHECK_EQ_INT(verify(tru_report.data, tru_report.len, &o, NULL), CL_ERR_MISMATCH);
	o = opts(&tru_vcek, "2025-06-01T00:00:00Z");
	CHECK_EQ_INT(verify(tru_vlek_report.data, tru_vlek_report.len, &o, NULL), CL_ERR_MISMATCH);
	/* No VCEK, nothing cached, no network. */
	o = opts(NULL, "2025-06-01T00:00:00Z");
	CHECK_EQ_INT(verify(tru_report.data, tru_report.len, &o, NULL), CL_ERR_COLLATERAL);
	CHECK_EQ_INT(verify(tru_vlek_report.data, tru_vlek_report.len, &o, NULL),
		     CL_ERR_COLLATERAL);
	CHECK(strstr(cl_error_detail(), "--vcek") != NULL);
}

static void test_certs_option(void)
{
	struct cl_buf ask = vector_read(GSG "ask_ark_milan.pem");
	struct cl_buf asvk = vector_read(GSG "ask_ark_milan_vlek.pem");
	struct cl_buf genoa = vector_read(GSG "ask_ark_genoa.pem");
	struct cl_buf all = vector_read(TRU "milan_ask_ark_asvk.pem");
	struct cl_verify_opts o = opts(&tru_vcek, "2025-06-01T00:00:00Z");

	o.snp.certs = ask.data;
	o.snp.certs_len = ask.len;
	CHECK_EQ_INT(verify(tru_report.data, tru_report.len, &o, NULL), CL_OK);
	o.snp.certs = all.data;
	o.snp.certs_len = all.len;
	CHECK_EQ_INT(verify(tru_report.data, tru_report.len, &o, NULL), CL_OK);
	/* The VCEK against the ASVK instead of the ASK. */
	o.snp.certs = asvk.data;
	o.snp.certs_len = asvk.len;
	CHECK_EQ_INT(verify(tru_report.data, tru_report.len, &o, NULL), CL_ERR_CHAIN);
	o.snp.certs = genoa.data;
	o.snp.certs_len = genoa.len;
	CHECK_EQ_INT(verify(tru_report.data, tru_report.len, &o, NULL), CL_ERR_CHAIN);

	o = opts(&tru_vlek, "2025-06-01T00:00:00Z");
	o.snp.certs = asvk.data;
	o.snp.certs_len = asvk.len;
	CHECK_EQ_INT(verify(tru_vlek_report.data, tru_vlek_report.len, &o, NULL), CL_OK);
	o.snp.certs = ask.data;
	o.snp.certs_len = ask.len;
	CHECK_EQ_INT(verify(tru_vlek_report.data, tru_vlek_report.len, &o, NULL), CL_ERR_CHAIN);
	cl_buf_free(&ask);
	cl_buf_free(&asvk);
	cl_buf_free(&genoa);
	cl_buf_free(&all);
}

/* Every byte of each report flipped, every truncation: never OK. */
static void report_tamper(const struct cl_buf *rep, const struct cl_buf *vcek, int named_flips)
{
	struct cl_verify_opts o = opts(vcek, "2025-06-01T00:00:00Z");
	uint8_t *m = malloc(rep->len);
	int ok = 0;

	o.allow_debug = 1;
	CHECK_EQ_INT(verify(rep->data, rep->len, &o, NULL), CL_OK);
	memcpy(m, rep->data, rep->len);
	if (named_flips) {
		m[42] ^= 1;
		CHECK_EQ_INT(verify(m, rep->len, &o, NULL), CL_ERR_SIGNATURE);
		m[42] ^= 1;
		m[0x180] ^= 1;
		CHECK(verify(m, rep->len, &o, NULL) != CL_OK);
		m[0x180] ^= 1;
	}
	for (size_t i = 0; i < rep->len; i++) {
		m[i] ^= 0x01;
		ok += verify(m, rep->len, &o, NULL) == CL_OK;
		m[i] ^= 0x81;
		ok += verify(m, rep->len, &o, NULL) == CL_OK;
		m[i] ^= 0x80;
	}
	for (size_t n = 0; n < rep->len; n += 7)
		ok += verify(m, n, &o, NULL) == CL_OK;
	CHECK_EQ_INT(ok, 0);
	free(m);
}

static void test_report_tamper(void)
{
	report_tamper(&tru_report, &tru_vcek, 1);
	report_tamper(&tru_vlek_report, &tru_vlek, 1);
}

static void test_report_tamper_gsg(void)
{
	struct cl_buf v = gsg_vcek;
	struct cl_verify_opts o = opts(&v, "2022-09-24T01:00:00Z");
	uint8_t m[CL_SNP_REPORT_SIZE];

	o.allow_debug = 1;
	memcpy(m, gsg_report.data, sizeof(m));
	m[42] ^= 1;
	CHECK_EQ_INT(verify(m, sizeof(m), &o, NULL), CL_ERR_SIGNATURE);
}

/* Every byte of each endorsement key certificate flipped: never OK. */
static void cert_tamper(const struct cl_buf *rep, const struct cl_buf *cert)
{
	uint8_t *m = malloc(cert->len);
	struct cl_buf mb = {m, cert->len, cert->len, 0};
	struct cl_verify_opts o = opts(&mb, "2025-06-01T00:00:00Z");
	int ok = 0;

	memcpy(m, cert->data, cert->len);
	m[42] ^= 1;
	CHECK(verify(rep->data, rep->len, &o, NULL) != CL_OK);
	m[42] ^= 1;
	for (size_t i = 0; i < cert->len; i++) {
		m[i] ^= 0x01;
		ok += verify(rep->data, rep->len, &o, NULL) == CL_OK;
		m[i] ^= 0x01;
	}
	CHECK_EQ_INT(ok, 0);
	/* A truncated certificate. */
	o.snp.vcek_len = cert->len - 1;
	CHECK(verify(rep->data, rep->len, &o, NULL) != CL_OK);
	free(m);
}

static void test_cert_tamper(void)
{
	cert_tamper(&tru_report, &tru_vcek);
	cert_tamper(&tru_vlek_report, &tru_vlek);
}

/* The file cache is untrusted: a cached VCEK is verified like a given one. */
static void test_file_cache(void)
{
	struct cl_snp_report r;
	struct cl_verify_opts o = opts(NULL, "2025-06-01T00:00:00Z");
	char name[256];
	json_t *c = NULL;

	CHECK_EQ_INT(cl_snp_report_parse(tru_report.data, tru_report.len, &r), CL_OK);
	CHECK_EQ_INT(
		cl_amd_vcek_cache_name(CL_AMD_MILAN, r.chip_id, r.reported_tcb, name, sizeof(name)),
		CL_OK);
	CHECK_EQ_INT(cl_cache_put(cache_dir, "amd", name, tru_vcek.data, tru_vcek.len), CL_OK);
	CHECK_EQ_INT(verify(tru_report.data, tru_report.len, &o, &c), CL_OK);
	CHECK_STR(str_claim(c, "product"), "Milan");
	json_decref(c);
	/* Another chip's VCEK under this chip's name is caught. */
	CHECK_EQ_INT(cl_cache_put(cache_dir, "amd", name, gsg_vcek.data, gsg_vcek.len), CL_OK);
	CHECK(verify(tru_report.data, tru_report.len, &o, NULL) != CL_OK);
}

/* A CRL under the Milan ARK's name, signed by a throwaway key (it cannot be AMD's). */
static void forged_crl(struct cl_buf *out)
{
	X509 *ark = cl_amd_ark(CL_AMD_MILAN);
	EVP_PKEY *k = EVP_RSA_gen(2048);
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	unsigned char *der = NULL;
	int n = 0;

	memset(out, 0, sizeof(*out));
	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(ark));
	ASN1_TIME_set(t, (time_t)when("2025-05-01T00:00:00Z"));
	X509_CRL_set1_lastUpdate(crl, t);
	ASN1_TIME_set(t, (time_t)when("2025-07-01T00:00:00Z"));
	X509_CRL_set1_nextUpdate(crl, t);
	X509_CRL_sign(crl, k, EVP_sha384());
	n = i2d_X509_CRL(crl, &der);
	if (n > 0)
		CHECK_EQ_INT(cl_buf_append(out, der, (size_t)n), CL_OK);
	OPENSSL_free(der);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
	EVP_PKEY_free(k);
}

/*
 * AMD's CRL: without one the report verifies and says revocation is
 * unchecked; a CRL given that is not the ARK's rejects; one in the cache
 * that is not usable is ignored (unchecked), never trusted.
 */
static void test_revocation(void)
{
	struct cl_verify_opts o = opts(&tru_vcek, "2025-06-01T00:00:00Z");
	struct cl_buf crl = {0};
	char name[64];
	json_t *c = NULL;

	CHECK_EQ_INT(verify(tru_report.data, tru_report.len, &o, &c), CL_OK);
	CHECK_STR(str_claim(c, "revocation"), "unchecked");
	json_decref(c);
	forged_crl(&crl);
	o.snp.crl = crl.data;
	o.snp.crl_len = crl.len;
	CHECK_EQ_INT(verify(tru_report.data, tru_report.len, &o, NULL), CL_ERR_SIGNATURE);
	o.snp.crl = (const uint8_t *)"not a CRL";
	o.snp.crl_len = 9;
	CHECK_EQ_INT(verify(tru_report.data, tru_report.len, &o, NULL), CL_ERR_MALFORMED);
	o.snp.crl = NULL;
	o.snp.crl_len = 0;
	CHECK_EQ_INT(cl_amd_crl_cache_name(CL_AMD_MILAN, 0, name, sizeof(name)), CL_OK);
	CHECK_EQ_INT(cl_cache_put(cache_dir, "amd", name, crl.data, crl.len), CL_OK);
	CHECK_EQ_INT(verify(tru_report.data, tru_report.len, &o, &c), CL_OK);
	CHECK_STR(str_claim(c, "revocation"), "unchecked");
	json_decref(c);
	cl_buf_free(&crl);
}

static void rm_rf(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

int main(void)
{
	snprintf(cache_dir, sizeof(cache_dir), "/tmp/cloister-snp-test.XXXXXX");
	if (!mkdtemp(cache_dir))
		return 2;
	gsg_report = vector_read(GSG "attestation.bin");
	gsg_vcek = vector_read(GSG "vcek_milan.der");
	tru_report = vector_read(TRU "test-report.bin");
	tru_vcek = vector_read(TRU "test-vcek.der");
	tru_vlek_report = vector_read(TRU "test-vlek-report.bin");
	tru_vlek = vector_read(TRU "test-vlek.der");

	RUN(test_parse_go_sev_guest);
	RUN(test_parse_trustee);
	RUN(test_parse_malformed);
	RUN(test_cert_extensions);
	RUN(test_products_and_urls);
	RUN(test_go_sev_guest);
	RUN(test_trustee);
	RUN(test_no_stale_detail);
	RUN(test_trailing_bytes);
	RUN(test_cache_respects_time);
	RUN(test_wrong_keys);
	RUN(test_certs_option);
	RUN(test_revocation);
	RUN(test_report_tamper);
	RUN(test_report_tamper_gsg);
	RUN(test_cert_tamper);
	RUN(test_file_cache);

	cl_buf_free(&gsg_report);
	cl_buf_free(&gsg_vcek);
	cl_buf_free(&tru_report);
	cl_buf_free(&tru_vcek);
	cl_buf_free(&tru_vlek_report);
	cl_buf_free(&tru_vlek);
	cl_snp_cache_clear();
	rm_rf(cache_dir);
	return test_done("snp_test");
}
