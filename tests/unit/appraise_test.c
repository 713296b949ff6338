/* Reference values, the default policy and the Lua sandbox. */
#include <pthread.h>
#include <time.h>

#include "cloister/appraise.h"
#include "test.h"

/* Measurements of the trustee and go-sev-guest SNP vectors (SOURCES.md). */
#define TRUSTEE_MEAS                                                                               \
	"a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f90" \
	"50d3d38c"
#define GOSEV_MEAS                                                                                 \
	"b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2" \
	"e4872b01"

static const char rv_text[] =
	"{\"snp\": {\"measurement\": [\"" TRUSTEE_MEAS "\","
	"   {\"value\": \"" GOSEV_MEAS
	"\", \"expires\": \"2024-01-01T00:00:00Z\", \"note\": \"old\"}],"
	"  \"reported_tcb\": {\"min\": {\"bootloader\": 3, \"snp\": 8, \"microcode\": 115}},"
	"  \"guest_svn\": {\"min\": 4}},"
	" \"sgx\": {\"measurement\": [\"33D8736D\"]},"
	" \"tdx\": {\"measurement\": [\"aa\"]}}";

static int64_t T2025;

static json_t *snp_claims(const char *meas, int debug, int bl)
{
	return json_pack("{s:s, s:s, s:s, s:b, s:s, s:[], s:{s:i, s:i, s:i, s:i}, s:i}", "platform",
			 "snp", "measurement", meas, "report_data", "ec6c", "debug", debug,
			 "tcb_status", "UpToDate", "advisory_ids", "reported_tcb", "bootloader", bl,
			 "tee", 0, "snp", 8, "microcode", 115, "guest_svn", 4);
}

static json_t *dcap_claims(const char *plat, const char *meas, const char *status)
{
	return json_pack("{s:s, s:s, s:s, s:b, s:s, s:[s, s]}", "platform", plat, "measurement",
			 meas, "report_data", "48656c6c6f", "debug", 0, "tcb_status", status,
			 "advisory_ids", "INTEL-SA-00289", "INTEL-SA-00615");
}

static struct cl_refvalues *load_rv(void)
{
	struct cl_refvalues *rv = NULL;

	CHECK_EQ_INT(cl_refvalues_parse(rv_text, sizeof(rv_text) - 1, &rv), CL_OK);
	return rv;
}

static void test_tiers(void)
{
	enum cl_tier t = CL_TIER_NONE;

	CHECK_EQ_INT(cl_tier_of_value(0), CL_TIER_NONE);
	CHECK_EQ_INT(cl_tier_of_value(1), CL_TIER_NONE);
	CHECK_EQ_INT(cl_tier_of_value(-1), CL_TIER_NONE);
	CHECK_EQ_INT(cl_tier_of_value(2), CL_TIER_AFFIRMING);
	CHECK_EQ_INT(cl_tier_of_value(31), CL_TIER_AFFIRMING);
	CHECK_EQ_INT(cl_tier_of_value(32), CL_TIER_WARNING);
	CHECK_EQ_INT(cl_tier_of_value(95), CL_TIER_WARNING);
	CHECK_EQ_INT(cl_tier_of_value(96), CL_TIER_CONTRAINDICATED);
	CHECK_EQ_INT(cl_tier_of_value(127), CL_TIER_CONTRAINDICATED);
	CHECK_EQ_INT(cl_tier_of_value(-128), CL_TIER_CONTRAINDICATED);
	CHECK_EQ_INT(cl_tv_claim_index("instance_identity"), CL_TV_INSTANCE_IDENTITY);
	CHECK_EQ_INT(cl_tv_claim_index("sourced-data"), CL_TV_SOURCED_DATA);
	CHECK_EQ_INT(cl_tv_claim_index("hardwar"), -1);
	CHECK_EQ_INT(cl_tier_parse("warning", &t), CL_OK);
	CHECK_EQ_INT(t, CL_TIER_WARNING);
	CHECK(cl_tier_parse("great", &t) != CL_OK);
}

static void test_refvalues(void)
{
	struct cl_refvalues *rv = load_rv();
	json_t *v = json_string(TRUSTEE_MEAS), *up = json_string("33d8736d"),
	       *old = json_string(GOSEV_MEAS);
	json_t *tcb = json_pack("{s:i, s:i, s:i, s:i}", "bootloader", 3, "tee", 0, "snp", 8,
				"microcode", 115);
	json_t *low = json_pack("{s:i, s:i, s:i}", "bootloader", 2, "snp", 8, "microcode", 115);
	json_t *n4 = json_integer(4), *n3 = json_integer(3), *vals = NULL;

	CHECK(rv != NULL);
	CHECK_EQ_INT(cl_refvalues_match(rv, "snp", "measurement", v, T2025), 1);
	CHECK_EQ_INT(cl_refvalues_match(rv, "tdx", "measurement", v, T2025), 0);
	CHECK_EQ_INT(cl_refvalues_match(rv, "sgx", "measurement", up, T2025), 1);
	/* Expired entries stop matching at their expiry. */
	CHECK_EQ_INT(cl_refvalues_match(rv, "snp", "measurement", old, T2025), 0);
	CHECK_EQ_INT(cl_refvalues_match(rv, "snp", "measurement", old, T2025 - 2 * 365 * 86400), 1);
	CHECK_EQ_INT(cl_refvalues_meets_min(rv, "snp", "reported_tcb", tcb, T2025), 1);
	CHECK_EQ_INT(cl_refvalues_meets_min(rv, "snp", "reported_tcb", low, T2025), 0);
	CHECK_EQ_INT(cl_refvalues_meets_min(rv, "snp", "guest_svn", n4, T2025), 1);
	CHECK_EQ_INT(cl_refvalues_meets_min(rv, "snp", "guest_svn", n3, T2025), 0);
	CHECK_EQ_INT(cl_refvalues_meets_min(rv, "snp", "measurement", n3, T2025), CL_ERR_NOT_FOUND);
	CHECK(cl_refvalues_has(rv, "snp", "guest_svn"));
	CHECK(!cl_refvalues_has(rv, "nitro", "measurement"));
	CHECK(!cl_refvalues_has(NULL, "snp", "measurement"));
	vals = cl_refvalues_values(rv, "snp", "measurement", T2025);
	CHECK_EQ_INT(json_array_size(vals), 1);
	json_decref(vals);
	json_decref(v);
	json_decref(up);
	json_decref(old);
	json_decref(tcb);
	json_decref(low);
	json_decref(n4);
	json_decref(n3);
	cl_refvalues_free(rv);
	cl_refvalues_free(NULL);
}

static void test_refvalues_malformed(void)
{
	static const char *const bad[] = {
		"",
		"[]",
		"{\"snp\": []}",
		"{\"snp\": {\"measurement\": \"aa\"}}",
		"{\"snp\": {\"measurement\": [[\"aa\"]]}}",
		"{\"snp\": {\"measurement\": [{\"note\": \"x\"}]}}",
		"{\"snp\": {\"measurement\": [{\"value\": \"aa\", \"expires\": \"soon\"}]}}",
		"{\"snp\": {\"measurement\": [{\"value\": \"aa\", \"colour\": 1}]}}",
		"{\"snp\": {\"measurement\": [null]}}",
		"{\"snp\": {\"svn\": {\"min\": \"4\"}}}",
		"{\"snp\": {\"svn\": {\"min\": {}}}}",
		"{\"snp\": {\"svn\": {\"max\": 4}}}",
		"{\"snp\": {\"measurement\": [\"aa\"]}, \"snp\": {}}",
		"{\"snp\": {\"measurement\": [\"aa\"]}",
	};
	struct cl_refvalues *rv = NULL;
	char *big = NULL;
	size_t n = sizeof(rv_text) - 1;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(cl_refvalues_parse(bad[i], strlen(bad[i]), &rv) != CL_OK);
		CHECK(rv == NULL);
	}
	/* Every truncation of a good file is refused. */
	for (size_t i = 0; i < n; i++) {
		int rc = cl_refvalues_parse(rv_text, i, &rv);

		CHECK(rc != CL_OK);
		cl_refvalues_free(rv);
		rv = NULL;
	}
	/* An over-long string. */
	big = malloc(CL_MAX_RV_STRING + 64);
	memcpy(big, "{\"a\": {\"b\": [\"", 14);
	memset(big + 14, 'x', CL_MAX_RV_STRING + 1);
	memcpy(big + 14 + CL_MAX_RV_STRING + 1, "\"]}}", 5);
	CHECK_EQ_INT(cl_refvalues_parse(big, strlen(big), &rv), CL_ERR_MALFORMED);
	free(big);
	CHECK(cl_refvalues_load("/nonexistent/rv.json", &rv) != CL_OK);
}

static int appraise(const struct cl_policy *p, json_t *claims, const struct cl_refvalues *rv,
		    const uint8_t *rd, struct cl_appraisal *a)
{
	struct cl_appraise_ctx ctx = {0};
	int rc = 0;

	ctx.at = T2025;
	ctx.report_data = rd;
	rc = cl_policy_appraise(p, claims, rv, &ctx, a);
	json_decref(claims);
	return rc;
}

static void test_default_policy(void)
{
	struct cl_refvalues *rv = load_rv();
	struct cl_appraisal a = {0};
	uint8_t rd[64] = {0xec, 0x6c};

	/* SNP, measurement accepted: affirming. */
	CHECK_EQ_INT(appraise(NULL, snp_claims(TRUSTEE_MEAS, 0, 3), rv, NULL, &a), CL_OK);
	CHECK_EQ_INT(a.status, CL_TIER_AFFIRMING);
	CHECK_EQ_INT(a.vector[CL_TV_EXECUTABLES], 2);
	CHECK_EQ_INT(a.vector[CL_TV_HARDWARE], 2);
	CHECK_EQ_INT(a.vector[CL_TV_INSTANCE_IDENTITY], 0);
	CHECK_STR(a.policy_id, cl_policy_id(cl_policy_default()));
	CHECK_EQ_INT(json_array_size(a.reasons), 0);
	cl_appraisal_free(&a);

	/* Claims without a platform are refused, not appraised (and never crash). */
	{
		json_t *c = snp_claims(TRUSTEE_MEAS, 0, 3);

		json_object_del(c, "platform");
		CHECK_EQ_INT(appraise(NULL, c, rv, NULL, &a), CL_ERR_ARG);
		cl_appraisal_free(&a);
		c = snp_claims(TRUSTEE_MEAS, 0, 3);
		json_object_set_new(c, "platform", json_integer(7));
		CHECK_EQ_INT(appraise(NULL, c, rv, NULL, &a), CL_ERR_ARG);
		cl_appraisal_free(&a);
	}

	/* Another measurement: contraindicated, with a reason. */
	CHECK_EQ_INT(appraise(NULL, snp_claims(GOSEV_MEAS, 0, 3), rv, NULL, &a), CL_OK);
	CHECK_EQ_INT(a.status, CL_TIER_CONTRAINDICATED);
	CHECK_EQ_INT(a.vector[CL_TV_EXECUTABLES], 96);
	CHECK_STR(json_string_value(json_array_get(a.reasons, 0)),
		  "measurement is not in the reference values");
	cl_appraisal_free(&a);

	/* No reference values at all: fail closed. */
	CHECK_EQ_INT(appraise(NULL, snp_claims(TRUSTEE_MEAS, 0, 3), NULL, NULL, &a), CL_OK);
	CHECK_EQ_INT(a.status, CL_TIER_CONTRAINDICATED);
	cl_appraisal_free(&a);

	/* Debug guest: hardware contraindicated. */
	CHECK_EQ_INT(appraise(NULL, snp_claims(TRUSTEE_MEAS, 1, 3), rv, NULL, &a), CL_OK);
	CHECK_EQ_INT(a.vector[CL_TV_HARDWARE], 96);
	CHECK_EQ_INT(a.status, CL_TIER_CONTRAINDICATED);
	cl_appraisal_free(&a);

	/* Reported TCB under the minimum: hardware contraindicated. */
	CHECK_EQ_INT(appraise(NULL, snp_claims(TRUSTEE_MEAS, 0, 2), rv, NULL, &a), CL_OK);
	CHECK_EQ_INT(a.vector[CL_TV_HARDWARE], 96);
	cl_appraisal_free(&a);

	/* Report data as expected / not. */
	CHECK_EQ_INT(appraise(NULL, snp_claims(TRUSTEE_MEAS, 0, 3), rv, rd, &a), CL_OK);
	CHECK_EQ_INT(a.vector[CL_TV_INSTANCE_IDENTITY], 96);
	cl_appraisal_free(&a);
	{
		json_t *c = snp_claims(TRUSTEE_MEAS, 0, 3);
		char hex[129];

		cl_hex_encode(rd, 64, hex);
		json_object_set_new(c, "report_data", json_string(hex));
		CHECK_EQ_INT(appraise(NULL, c, rv, rd, &a), CL_OK);
		CHECK_EQ_INT(a.vector[CL_TV_INSTANCE_IDENTITY], 2);
		CHECK_EQ_INT(a.status, CL_TIER_AFFIRMING);
		cl_appraisal_free(&a);
	}

	/* SGX ConfigurationAndSWHardeningNeeded: hardware in the warning band. */
	CHECK_EQ_INT(appraise(NULL,
			      dcap_claims("sgx", "33d8736d", "ConfigurationAndSWHardeningNeeded"),
			      rv, NULL, &a),
		     CL_OK);
	CHECK_EQ_INT(cl_tier_of_value(a.vector[CL_TV_HARDWARE]), CL_TIER_WARNING);
	CHECK_EQ_INT(a.status, CL_TIER_WARNING);
	cl_appraisal_free(&a);

	CHECK_EQ_INT(appraise(NULL, dcap_claims("tdx", "AA", "UpToDate"), rv, NULL, &a), CL_OK);
	CHECK_EQ_INT(a.status, CL_TIER_AFFIRMING);
	cl_appraisal_free(&a);
	CHECK_EQ_INT(appraise(NULL, dcap_claims("tdx", "aa", "OutOfDate"), rv, NULL, &a), CL_OK);
	CHECK_EQ_INT(a.vector[CL_TV_HARDWARE], 96);
	cl_appraisal_free(&a);
	CHECK_EQ_INT(appraise(NULL, dcap_claims("tdx", "aa", "Revoked"), rv, NULL, &a), CL_OK);
	CHECK_EQ_INT(a.status, CL_TIER_CONTRAINDICATED);
	cl_appraisal_free(&a);
	CHECK_EQ_INT(appraise(NULL, dcap_claims("tdx", "aa", "SWHardeningNeeded"), rv, NULL, &a),
		     CL_OK);
	CHECK_EQ_INT(a.vector[CL_TV_HARDWARE], 32);
	cl_appraisal_free(&a);
	CHECK_EQ_INT(appraise(NULL, dcap_claims("tdx", "aa", "Whatever"), rv, NULL, &a), CL_OK);
	CHECK_EQ_INT(a.status, CL_TIER_CONTRAINDICATED);
	cl_appraisal_free(&a);
	cl_refvalues_free(rv);
}

static int run_policy(const char *text, struct cl_appraisal *a)
{
	struct cl_policy *p = NULL;
	int rc = cl_policy_load(text, strlen(text), NULL, &p);

	if (rc == CL_OK)
		rc = appraise(p, snp_claims(TRUSTEE_MEAS, 0, 3), NULL, NULL, a);
	cl_policy_free(p);
	return rc;
}

static void expect_policy_error(const char *text, const char *needle)
{
	struct cl_appraisal a = {0};
	struct timespec t0, t1;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = run_policy(text, &a);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK_EQ_INT(rc, CL_ERR_POLICY);
	if (!strstr(cl_error_detail(), needle)) {
		fprintf(stderr, "  policy error '%s' lacks '%s'\n", cl_error_detail(), needle);
		CHECK(0);
	}
	CHECK(t1.tv_sec - t0.tv_sec < 10);
	cl_appraisal_free(&a);
}

static void test_custom_policy(void)
{
	struct cl_appraisal a = {0};
	struct cl_policy *p = NULL;
	static const char ok[] = "policy_id = 'policy://test/1'\n"
				 "function appraise(c, ctx)\n"
				 "  assert(ctx.time > 0 and ctx.platform == 'snp')\n"
				 "  local v = { hardware = AFFIRMING, ['file-system'] = 3 }\n"
				 "  if c.reported_tcb.snp >= 8 and c.measurement:match('^a1f3') "
				 "then v.executables = 2 end\n"
				 "  return v, 'fine'\n"
				 "end\n";

	CHECK_EQ_INT(cl_policy_load(ok, strlen(ok), NULL, &p), CL_OK);
	CHECK_STR(cl_policy_id(p), "policy://test/1");
	CHECK_EQ_INT(appraise(p, snp_claims(TRUSTEE_MEAS, 0, 3), NULL, NULL, &a), CL_OK);
	CHECK_EQ_INT(a.vector[CL_TV_EXECUTABLES], 2);
	CHECK_EQ_INT(a.vector[CL_TV_FILE_SYSTEM], 3);
	CHECK_EQ_INT(a.status, CL_TIER_AFFIRMING);
	CHECK_STR(json_string_value(json_array_get(a.reasons, 0)), "fine");
	cl_appraisal_free(&a);
	cl_policy_free(p);

	/* Broken policies fail at load or at run with a clear reason. */
	expect_policy_error("function appraise(", "policy:");
	expect_policy_error("x = 1", "does not define function appraise");
	expect_policy_error("function appraise() return 5 end", "must return a table");
	expect_policy_error("function appraise() return { colour = 2 } end",
			    "not a trustworthiness claim");
	expect_policy_error("function appraise() return { hardware = 200 } end", "-128..127");
	expect_policy_error("function appraise() error('nope') end", "nope");
	expect_policy_error("\x1bLua\x54", "precompiled");
}

static void test_sandbox(void)
{
	struct cl_appraisal a = {0};

	expect_policy_error("function appraise() while true do end end", "instruction limit");
	expect_policy_error("while true do end", "instruction limit");
	expect_policy_error(
		"function appraise() local t = {} local i = 0 "
		"while true do i = i + 1 t[i] = tostring(i) .. string.rep('x', 64) end end",
		"memory limit");
	expect_policy_error("function appraise() local s = 'x' while true do s = s .. s end end",
			    "memory limit");
	expect_policy_error(
		"function appraise() return { hardware = #string.rep('x', 1 << 40) } end", "");
	expect_policy_error("function appraise() os.execute('touch /tmp/pwned') end", "os");
	expect_policy_error("function appraise() io.open('/etc/passwd') end", "io");
	expect_policy_error("function appraise() require('os') end", "require");
	expect_policy_error("function appraise() load('return 1')() end", "load");
	expect_policy_error("function appraise() dofile('/etc/passwd') end", "dofile");
	expect_policy_error("function appraise() return string.dump(appraise) end", "dump");
	expect_policy_error("function appraise() debug.getinfo(1) end", "debug");
	expect_policy_error("function appraise() collectgarbage('stop') end", "collectgarbage");
	expect_policy_error("function appraise() local mt = getmetatable('') mt.__index = {} end",
			    "index");
	expect_policy_error("function appraise() return { hardware = "
			    "#(string.rep('a', 100000):find('.-.-.-.-b') or '') } end",
			    "pattern too costly");
	expect_policy_error("function appraise() rv_has('measurement') end x = rv_has('m')",
			    "only available inside appraise");
	/* Tampering with library tables stays inside that policy. */
	CHECK_EQ_INT(run_policy("string.rep = nil function appraise() return {} end", &a), CL_OK);
	cl_appraisal_free(&a);
	CHECK_EQ_INT(
		run_policy("function appraise() return { hardware = #string.rep('ab', 2) } end",
			   &a),
		CL_OK);
	CHECK_EQ_INT(a.vector[CL_TV_HARDWARE], 4);
	cl_appraisal_free(&a);
	/* And the default policy still works after all of that. */
	{
		struct cl_refvalues *rv = load_rv();

		CHECK_EQ_INT(appraise(NULL, snp_claims(TRUSTEE_MEAS, 0, 3), rv, NULL, &a), CL_OK);
		CHECK_EQ_INT(a.status, CL_TIER_AFFIRMING);
		cl_appraisal_free(&a);
		cl_refvalues_free(rv);
	}
}

static void *thread_main(void *arg)
{
	const struct cl_refvalues *rv = arg;
	long bad = 0;

	for (int i = 0; i < 200; i++) {
		struct cl_appraisal a = {0};

		if (appraise(NULL, snp_claims(i % 2 ? TRUSTEE_MEAS : GOSEV_MEAS, 0, 3), rv, NULL,
			     &a) != CL_OK ||
		    a.status != (i % 2 ? CL_TIER_AFFIRMING : CL_TIER_CONTRAINDICATED))
			bad++;
		cl_appraisal_free(&a);
	}
	return (void *)bad;
}

static void test_threads(void)
{
	struct cl_refvalues *rv = load_rv();
	pthread_t th[4];

	for (int i = 0; i < 4; i++)
		CHECK_EQ_INT(pthread_create(&th[i], NULL, thread_main, rv), 0);
	for (int i = 0; i < 4; i++) {
		void *res = NULL;

		CHECK_EQ_INT(pthread_join(th[i], &res), 0);
		CHECK_EQ_INT((long)res, 0);
	}
	cl_refvalues_free(rv);
}

int main(void)
{
	CHECK_EQ_INT(cl_time_parse("2025-06-01T00:00:00Z", &T2025), CL_OK);
	RUN(test_tiers);
	RUN(test_refvalues);
	RUN(test_refvalues_malformed);
	RUN(test_default_policy);
	RUN(test_custom_policy);
	RUN(test_sandbox);
	RUN(test_threads);
	cl_policy_thread_release();
	return test_done("appraise_test");
}
