/*
 * The `sev` crate's serde JSON report (Trustee's e2e evidence) converted to
 * binary: the result parses, its signature verifies with the VCEK the
 * evidence carries and that VCEK chains to the pinned Genoa ARK; changing any
 * integer anywhere in the JSON makes it fail; malformed shapes are refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/evidence.h"
#include "cloister/snp.h"
#include "test.h"

#define EVIDENCE "sev-snp/trustee/e2e-snp-evidence.json"
/* 2025-07-01: inside the VCEK's validity (2025-05-27 .. 2032-05-27). */
#define AT 1751328000

static json_t *ev;
static struct cl_buf vcek;
/* The product the last verification's claims named. */
static char product[16];

static void load(void)
{
	struct cl_buf b = vector_read(EVIDENCE);
	json_t *data = NULL;
	size_t i = 0;
	json_t *x = NULL;

	ev = json_loadb((const char *)b.data, b.len, JSON_REJECT_DUPLICATES, NULL);
	CHECK(ev != NULL);
	data = json_object_get(json_array_get(json_object_get(ev, "cert_chain"), 0), "data");
	CHECK(json_is_array(data));
	json_array_foreach (data, i, x) {
		uint8_t c = (uint8_t)json_integer_value(x);

		CHECK_EQ_INT(cl_buf_append(&vcek, &c, 1), CL_OK);
	}
	cl_buf_free(&b);
}

static int verify(const uint8_t *rep, const uint8_t *rd)
{
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	struct cl_verify_result r = {0};
	int rc = 0;

	o.format = CL_FORMAT_SNP;
	o.snp.vcek = vcek.data;
	o.snp.vcek_len = vcek.len;
	o.at = AT;
	o.offline = 1;
	o.cache_dir = "/nonexistent/cloister-test";
	if (rd) {
		memcpy(o.report_data, rd, sizeof(o.report_data));
		o.have_report_data = 1;
	}
	rc = cl_verify_evidence(rep, CL_SNP_REPORT_SIZE, &o, &r);
	CHECK_EQ_INT(rc, r.status);
	snprintf(product, sizeof(product), "%s",
		 json_string_value(json_object_get(r.claims, "product")) ?: "");
	cl_verify_result_free(&r);
	return rc;
}

static void test_known_answer(void)
{
	uint8_t rep[CL_SNP_REPORT_SIZE], rep2[CL_SNP_REPORT_SIZE], rd[64];
	struct cl_snp_report p;
	struct cl_buf b = vector_read(EVIDENCE);
	const json_t *ar = json_object_get(ev, "attestation_report");
	char *bare = NULL;

	CHECK_EQ_INT(cl_snp_report_from_serde(ar, rep), CL_OK);
	CHECK_EQ_INT(cl_snp_report_parse(rep, sizeof(rep), &p), CL_OK);
	CHECK_EQ_INT((int)p.version, 3);
	CHECK(p.policy == 0x30000);
	CHECK(p.has_cpuid && p.cpuid_fam_id == 25 && p.cpuid_mod_id == 160 && p.cpuid_step == 2);
	/* legacy TCB layout: bootloader 10, tee 0, snp 23 (byte 6), microcode 25 (byte 7) */
	CHECK(p.reported_tcb == UINT64_C(0x191700000000000a));
	CHECK(p.current_tcb == p.reported_tcb && p.launch_tcb == p.reported_tcb);
	CHECK(p.current_major == 1 && p.current_minor == 55 && p.current_build == 40);
	CHECK(p.platform_info == 37 && p.key_info == 0 && p.signer == CL_SNP_SIGNER_VCEK);
	CHECK(p.measurement[0] == 106 && p.measurement[1] == 101 && p.report_data[0] == 126);
	CHECK(p.chip_id[0] == 55 && p.report_id_ma[0] == 255);
	/* the signature (and the pinned Genoa chain behind the VCEK) verify */
	CHECK_EQ_INT(verify(rep, NULL), CL_OK);
	CHECK_STR(product, "Genoa");
	memcpy(rd, p.report_data, sizeof(rd));
	CHECK_EQ_INT(verify(rep, rd), CL_OK);
	rd[63] ^= 1;
	CHECK_EQ_INT(verify(rep, rd), CL_ERR_MISMATCH);

	/* text form: the evidence object and the bare report give the same bytes */
	CHECK_EQ_INT(cl_snp_report_from_serde_json((const char *)b.data, b.len, rep2), CL_OK);
	CHECK(memcmp(rep, rep2, sizeof(rep)) == 0);
	bare = json_dumps(ar, JSON_COMPACT);
	CHECK_EQ_INT(cl_snp_report_from_serde_json(bare, strlen(bare), rep2), CL_OK);
	CHECK(memcmp(rep, rep2, sizeof(rep)) == 0);
	free(bare);
	cl_buf_free(&b);
}

/* Every integer leaf of the report, changed in turn, must not verify. */
static void flip_all(json_t *root, json_t *node, size_t *n, size_t *unconverted)
{
	if (json_is_object(node)) {
		const char *k = NULL;
		json_t *v = NULL;

		json_object_foreach (node, k, v)
			flip_all(root, v, n, unconverted);
	} else if (json_is_array(node)) {
		size_t i = 0;
		json_t *v = NULL;

		json_array_foreach (node, i, v)
			flip_all(root, v, n, unconverted);
	} else if (json_is_integer(node)) {
		json_int_t orig = json_integer_value(node);
		uint8_t rep[CL_SNP_REPORT_SIZE];

		CHECK_EQ_INT(json_integer_set(node, orig ^ 1), 0);
		if (cl_snp_report_from_serde(root, rep) == CL_OK)
			CHECK(verify(rep, NULL) != CL_OK);
		else
			(*unconverted)++;
		CHECK_EQ_INT(json_integer_set(node, orig), 0);
		(*n)++;
	}
}

static void test_every_integer(void)
{
	json_t *ar = json_deep_copy(json_object_get(ev, "attestation_report"));
	uint8_t rep[CL_SNP_REPORT_SIZE];
	size_t n = 0, unconverted = 0;

	flip_all(ar, ar, &n, &unconverted);
	/* 7 scalars, 3 CPUID, 4 TCBs x 4, 2 versions x 3, 400 array bytes, 144 signature bytes */
	CHECK(n == 7 + 3 + 16 + 6 + 400 + 144);
	/* only version 3 -> 2 changes the shape (CPUID must then be null) */
	CHECK(unconverted == 1);
	/* and the copy is intact afterwards */
	CHECK_EQ_INT(cl_snp_report_from_serde(ar, rep), CL_OK);
	CHECK_EQ_INT(verify(rep, NULL), CL_OK);
	json_decref(ar);
}

static int conv_with(const char *key, json_t *val)
{
	json_t *ar = json_deep_copy(json_object_get(ev, "attestation_report"));
	uint8_t rep[CL_SNP_REPORT_SIZE];
	int rc = 0;

	if (val)
		json_object_set_new(ar, key, val);
	else
		json_object_del(ar, key);
	rc = cl_snp_report_from_serde(ar, rep);
	if (rc == CL_OK)
		rc = verify(rep, NULL);
	else
		for (size_t i = 0; i < sizeof(rep); i++)
			CHECK(rep[i] == 0);
	json_decref(ar);
	return rc;
}

static json_t *field_copy(const char *key)
{
	return json_deep_copy(json_object_get(json_object_get(ev, "attestation_report"), key));
}

static void test_malformed(void)
{
	const json_t *ar = json_object_get(ev, "attestation_report");
	const char *k = NULL;
	json_t *v = NULL, *x = NULL;
	uint8_t rep[CL_SNP_REPORT_SIZE];
	char *big = NULL;

	/* every key the crate emits is required */
	json_object_foreach ((json_t *)ar, k, v)
		CHECK_EQ_INT(conv_with(k, NULL), CL_ERR_MALFORMED);
	CHECK_EQ_INT(conv_with("_reserved_0", json_integer(0)), CL_ERR_MALFORMED);
	/* newer crates' mitigation vectors: null is zero, a value needs v4+ */
	CHECK_EQ_INT(conv_with("launch_mit_vector", json_null()), CL_OK);
	CHECK_EQ_INT(conv_with("current_mit_vector", json_integer(0)), CL_ERR_MALFORMED);
	/* ranges and types */
	CHECK_EQ_INT(conv_with("vmpl", json_integer(-1)), CL_ERR_MALFORMED);
	CHECK_EQ_INT(conv_with("vmpl", json_integer((json_int_t)1 << 32)), CL_ERR_MALFORMED);
	CHECK_EQ_INT(conv_with("vmpl", json_real(0.0)), CL_ERR_MALFORMED);
	CHECK_EQ_INT(conv_with("vmpl", json_string("0")), CL_ERR_MALFORMED);
	CHECK_EQ_INT(conv_with("cpuid_step", json_integer(256)), CL_ERR_MALFORMED);
	CHECK_EQ_INT(conv_with("cpuid_step", json_null()), CL_ERR_MALFORMED);
	/* arrays: exact length, bytes only */
	x = field_copy("host_data");
	json_array_remove(x, 0);
	CHECK_EQ_INT(conv_with("host_data", x), CL_ERR_MALFORMED);
	x = field_copy("host_data");
	json_array_append_new(x, json_integer(0));
	CHECK_EQ_INT(conv_with("host_data", x), CL_ERR_MALFORMED);
	x = field_copy("host_data");
	json_array_set_new(x, 3, json_integer(256));
	CHECK_EQ_INT(conv_with("host_data", x), CL_ERR_MALFORMED);
	CHECK_EQ_INT(conv_with("host_data", json_string("00")), CL_ERR_MALFORMED);
	/* TCB: fmc on a Genoa report, unknown and missing members */
	x = field_copy("launch_tcb");
	json_object_set_new(x, "fmc", json_integer(0));
	CHECK_EQ_INT(conv_with("launch_tcb", x), CL_ERR_MALFORMED);
	x = field_copy("launch_tcb");
	json_object_del(x, "fmc");
	CHECK_EQ_INT(conv_with("launch_tcb", x), CL_ERR_MALFORMED);
	x = field_copy("launch_tcb");
	json_object_set_new(x, "spl", json_integer(0));
	CHECK_EQ_INT(conv_with("launch_tcb", x), CL_ERR_MALFORMED);
	x = field_copy("current");
	json_object_del(x, "build");
	CHECK_EQ_INT(conv_with("current", x), CL_ERR_MALFORMED);
	/* Turin layout claimed by the family but not by the TCBs */
	CHECK_EQ_INT(conv_with("cpuid_fam_id", json_integer(0x1A)), CL_ERR_MALFORMED);
	/* signature: exactly r and s of 72 bytes */
	x = field_copy("signature");
	json_object_set_new(x, "_reserved", json_array());
	CHECK_EQ_INT(conv_with("signature", x), CL_ERR_MALFORMED);
	x = field_copy("signature");
	json_array_remove(json_object_get(x, "s"), 71);
	CHECK_EQ_INT(conv_with("signature", x), CL_ERR_MALFORMED);
	/* not an object at all */
	x = json_array();
	CHECK_EQ_INT(cl_snp_report_from_serde(x, rep), CL_ERR_MALFORMED);
	json_decref(x);
	CHECK_EQ_INT(cl_snp_report_from_serde(NULL, rep), CL_ERR_MALFORMED);
	/* text: truncated, duplicate keys, oversized */
	CHECK_EQ_INT(cl_snp_report_from_serde_json("{\"version\":3", 12, rep), CL_ERR_MALFORMED);
	CHECK_EQ_INT(cl_snp_report_from_serde_json("{\"version\":3,\"version\":3}", 25, rep),
		     CL_ERR_MALFORMED);
	big = calloc(1, CL_SNP_SERDE_MAX_JSON + 2);
	CHECK(big != NULL);
	if (big) {
		memset(big, ' ', CL_SNP_SERDE_MAX_JSON + 1);
		big[0] = '{';
		big[CL_SNP_SERDE_MAX_JSON] = '}';
		CHECK_EQ_INT(cl_snp_report_from_serde_json(big, CL_SNP_SERDE_MAX_JSON + 1, rep),
			     CL_ERR_MALFORMED);
		CHECK(strstr(cl_error_detail(), "at most") != NULL);
	}
	free(big);
}

int main(void)
{
	cl_log_set_level(CL_LOG_ERROR);
	load();
	RUN(test_known_answer);
	RUN(test_every_integer);
	RUN(test_malformed);
	json_decref(ev);
	cl_buf_free(&vcek);
	return test_done("snp_serde_test");
}
