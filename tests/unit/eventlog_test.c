/*
 * TCG event logs: the three real logs from go-attestation and the GCP
 * Shielded VM's log, replayed to values tpm2-tools' tpm2_eventlog computes
 * for the same files; malformed and truncated logs made from them.
 */
#include <jansson.h>

#include "cloister/eventlog.h"
#include "test.h"

#define GA "tpm/go-attestation/"

static int pcr_is(const struct cl_pcr_bank *b, unsigned idx, const char *hex)
{
	char got[2 * CL_TPM_MAX_DIGEST + 1];

	cl_hex_encode(b->pcr[idx], b->len, got);
	if (strcmp(got, hex) != 0) {
		fprintf(stderr, "    PCR %u: %s, want %s\n", idx, got, hex);
		return 0;
	}
	return 1;
}

static void test_crypto_agile(void)
{
	struct cl_buf b = vector_read(GA "crypto_agile_eventlog");
	struct cl_evlog log;
	struct cl_pcr_bank bank;
	json_t *sum = NULL;
	int sb = 7;

	CHECK_EQ_INT(cl_evlog_parse(b.data, b.len, &log), CL_OK);
	CHECK_EQ_INT(log.crypto_agile, 1);
	CHECK_EQ_INT(log.nalgs, 1);
	CHECK_EQ_INT(log.algs[0], CL_TPM_ALG_SHA256);
	CHECK_EQ_INT(log.nevents, 27);
	CHECK_EQ_INT(cl_evlog_replay(&log, CL_TPM_ALG_SHA256, &bank), CL_OK);
	CHECK(pcr_is(&bank, 0, "1536de221b2187a421602cd81f43aa04496b0bd5a424d3b25b637a942080d0fa"));
	CHECK(pcr_is(&bank, 4, "b0af298ea2ca63fe39d0f9887948f8c9ccedd1cca90b6ed20f0aa1f9cbd8504e"));
	CHECK(pcr_is(&bank, 7, "3d6207f9a2c3fa1db729f06e71b09d2e7ca7c0c198f6c1410c2186bbe2cc1826"));
	CHECK_EQ_INT(bank.extended, 0xff);
	CHECK_EQ_INT(cl_evlog_replay(&log, CL_TPM_ALG_SHA1, &bank), CL_ERR_UNSUPPORTED);
	CHECK_EQ_INT(cl_evlog_summary(&log, CL_TPM_ALG_SHA256, 0xffffff, &sum, &sb), CL_OK);
	/* The SecureBoot variable is logged empty: Secure Boot is off. */
	CHECK_EQ_INT(sb, 0);
	CHECK(json_array_size(json_object_get(sum, "boot_variables")) > 0);
	CHECK_STR(json_string_value(json_array_get(json_object_get(sum, "boot_variables"), 0)),
		  "BootOrder");
	json_decref(sum);
	/* Nothing trusted: every event counts as untrusted and no state is claimed. */
	CHECK_EQ_INT(cl_evlog_summary(&log, CL_TPM_ALG_SHA256, 0, &sum, &sb), CL_OK);
	CHECK_EQ_INT(sb, -1);
	CHECK_EQ_INT(json_integer_value(json_object_get(sum, "count")), 0);
	CHECK_EQ_INT(json_integer_value(json_object_get(sum, "untrusted")), 26);
	json_decref(sum);
	cl_evlog_free(&log);
	cl_buf_free(&b);
}

static void test_sb_cert(void)
{
	struct cl_buf b = vector_read(GA "sb_cert_eventlog");
	struct cl_evlog log;
	struct cl_pcr_bank bank;
	json_t *sum = NULL;
	int sb = -1;

	CHECK_EQ_INT(cl_evlog_parse(b.data, b.len, &log), CL_OK);
	CHECK_EQ_INT(log.nalgs, 3);
	CHECK_EQ_INT(cl_evlog_replay(&log, CL_TPM_ALG_SHA1, &bank), CL_OK);
	CHECK(pcr_is(&bank, 7, "45a8621d34a57df2b2e7f14c92b99ac8de7d5805"));
	CHECK_EQ_INT(cl_evlog_replay(&log, CL_TPM_ALG_SHA256, &bank), CL_OK);
	CHECK(pcr_is(&bank, 0, "fcecb56acc303862b30eb342c4990beb50b5e0ab89722449c2d9a73f37b019fe"));
	CHECK(pcr_is(&bank, 7, "51b30488c9e6255d822bdc1b20d9a92c32bde6c3e7bc02bcdd32825eb5ef069a"));
	CHECK_EQ_INT(bank.extended, (1u << 0) | (1u << 4) | (1u << 5) | (1u << 7));
	CHECK_EQ_INT(cl_evlog_replay(&log, CL_TPM_ALG_SHA384, &bank), CL_OK);
	CHECK(pcr_is(&bank, 7,
		     "bf54547614362d6cb54d3c7de075b78a81669cf63e3ea62d0da118220d96f489690c6ae84f146"
		     "d7e9019331bd4773b60"));
	CHECK_EQ_INT(cl_evlog_summary(&log, CL_TPM_ALG_SHA256, 0xffffff, &sum, &sb), CL_OK);
	CHECK_EQ_INT(sb, 1);
	json_decref(sum);
	cl_evlog_free(&log);
	cl_buf_free(&b);
}

static void test_ubuntu(void)
{
	struct cl_buf b = vector_read(GA "ubuntu_2104_shielded_vm_no_secure_boot_eventlog");
	struct cl_evlog log;
	struct cl_pcr_bank bank;
	json_t *sum = NULL, *j = NULL;
	int sb = 1;

	CHECK_EQ_INT(cl_evlog_parse(b.data, b.len, &log), CL_OK);
	CHECK_EQ_INT(cl_evlog_replay(&log, CL_TPM_ALG_SHA1, &bank), CL_OK);
	CHECK(pcr_is(&bank, 14, "cd3734d2bdfcfba9e443ac02c03c812ffcceb255"));
	CHECK_EQ_INT(cl_evlog_replay(&log, CL_TPM_ALG_SHA256, &bank), CL_OK);
	CHECK(pcr_is(&bank, 0, "24af52a4f429b71a3184a6d64cddad17e54ea030e2aa6576bf3a5a3d8bd3328f"));
	CHECK(pcr_is(&bank, 5, "47715f9f2c10769da6ee23be5633fd88e247caf162f4eeb0b6f8482ccfeadfb5"));
	CHECK_EQ_INT(cl_evlog_summary(&log, CL_TPM_ALG_SHA256, 0xffffff, &sum, &sb), CL_OK);
	CHECK_EQ_INT(sb, 0);
	/* grub measures its commands as EV_IPL into PCR 8. */
	CHECK(json_array_size(json_object_get(sum, "ipl")) > 10);
	json_decref(sum);
	CHECK_EQ_INT(cl_evlog_to_json(&log, &j), CL_OK);
	CHECK_STR(json_string_value(json_object_get(j, "format")), "crypto-agile");
	CHECK_EQ_INT(json_array_size(json_object_get(j, "events")), log.nevents);
	CHECK_STR(json_string_value(json_object_get(
			  json_object_get(json_object_get(j, "pcrs"), "sha1"), "14")),
		  "cd3734d2bdfcfba9e443ac02c03c812ffcceb255");
	CHECK(json_is_false(json_object_get(j, "secure_boot")));
	json_decref(j);
	cl_evlog_free(&log);
	cl_buf_free(&b);
}

static void test_gcp_log(void)
{
	struct cl_buf b = vector_read(GA "windows_gcp_shielded_vm.json");
	json_t *root = json_loadb((const char *)b.data, b.len, 0, NULL);
	const char *raw = json_string_value(json_object_get(json_object_get(root, "Log"), "Raw"));
	const json_t *pcrs = json_object_get(json_object_get(root, "Log"), "PCRs");
	uint8_t *log_bytes = NULL, *d = NULL;
	size_t n = 0, dn = 0, idx = 0;
	struct cl_evlog log;
	struct cl_pcr_bank bank;
	json_t *e = NULL;

	CHECK(raw != NULL);
	CHECK_EQ_INT(cl_base64_decode(raw, strlen(raw), &log_bytes, &n), CL_OK);
	CHECK_EQ_INT(cl_evlog_parse(log_bytes, n, &log), CL_OK);
	CHECK_EQ_INT(cl_evlog_replay(&log, CL_TPM_ALG_SHA1, &bank), CL_OK);
	/* Every PCR the log extends replays to the value go-attestation recorded. */
	json_array_foreach (pcrs, idx, e) {
		unsigned i = (unsigned)json_integer_value(json_object_get(e, "Index"));
		const char *dig = json_string_value(json_object_get(e, "Digest"));

		CHECK_EQ_INT(json_integer_value(json_object_get(e, "DigestAlg")), 3);
		if (!(bank.extended & (1u << i)))
			continue;
		CHECK_EQ_INT(cl_base64_decode(dig, strlen(dig), &d, &dn), CL_OK);
		CHECK(dn == 20 && memcmp(d, bank.pcr[i], 20) == 0);
		free(d);
		d = NULL;
	}
	CHECK(bank.extended & (1u << 7));
	cl_evlog_free(&log);
	free(log_bytes);
	json_decref(root);
	cl_buf_free(&b);
}

/* Every prefix either parses (at an event boundary) or fails cleanly. */
static void test_truncated(void)
{
	struct cl_buf b = vector_read(GA "sb_cert_eventlog");
	struct cl_evlog log;
	size_t ok = 0;

	for (size_t n = 0; n < b.len; n++) {
		uint8_t *copy = malloc(n ? n : 1);
		int rc = 0;

		memcpy(copy, b.data, n);
		rc = cl_evlog_parse(copy, n, &log);
		if (rc == CL_OK) {
			ok++;
			cl_evlog_free(&log);
		} else {
			CHECK(rc == CL_ERR_TRUNCATED || rc == CL_ERR_MALFORMED);
		}
		free(copy);
	}
	/*
	 * Each whole-event prefix parses; so may a cut whose remainder is all
	 * zero (read as padding), which only ever drops events.
	 */
	CHECK(ok >= 14);
	CHECK(ok < 40);
	cl_buf_free(&b);
}

static void test_malformed(void)
{
	struct cl_buf b = vector_read(GA "sb_cert_eventlog");
	struct cl_evlog log;
	uint8_t *m = malloc(b.len + 8);
	size_t hdr = 0;

	CHECK_EQ_INT(cl_evlog_parse(b.data, b.len, &log), CL_OK);
	hdr = (size_t)(log.events[1].digests[0].d - b.data) - 14; /* start of event 1 */
	cl_evlog_free(&log);

	/* PCR index 24 in the second event. */
	memcpy(m, b.data, b.len);
	m[hdr] = 24;
	CHECK_EQ_INT(cl_evlog_parse(m, b.len, &log), CL_ERR_MALFORMED);
	/* More digests than the log declares banks. */
	memcpy(m, b.data, b.len);
	m[hdr + 8] = 4;
	CHECK_EQ_INT(cl_evlog_parse(m, b.len, &log), CL_ERR_MALFORMED);
	/* A digest of an undeclared algorithm. */
	memcpy(m, b.data, b.len);
	m[hdr + 12] = 0x12;
	CHECK_EQ_INT(cl_evlog_parse(m, b.len, &log), CL_ERR_MALFORMED);
	/* Spec ID event declaring 9 algorithms. */
	memcpy(m, b.data, b.len);
	m[32 + 24] = 9;
	CHECK_EQ_INT(cl_evlog_parse(m, b.len, &log), CL_ERR_MALFORMED);
	/* Trailing zeros are padding; trailing garbage is not. */
	memcpy(m, b.data, b.len);
	memset(m + b.len, 0, 8);
	CHECK_EQ_INT(cl_evlog_parse(m, b.len + 8, &log), CL_OK);
	cl_evlog_free(&log);
	m[b.len + 3] = 1;
	CHECK(cl_evlog_parse(m, b.len + 8, &log) < 0);
	/* Oversized. */
	CHECK_EQ_INT(cl_evlog_parse(m, CL_EVLOG_MAX_BYTES + 1, &log), CL_ERR_MALFORMED);
	CHECK_EQ_INT(cl_evlog_parse(m, 0, &log), CL_ERR_TRUNCATED);
	free(m);
	cl_buf_free(&b);
}

/* A flipped byte in a digest changes the replay; in variable data it fails the claims. */
static void test_tampered(void)
{
	struct cl_buf b = vector_read(GA "sb_cert_eventlog");
	struct cl_evlog log;
	struct cl_pcr_bank good, bad;
	json_t *sum = NULL;
	int sb = -1;
	size_t off = 0;

	CHECK_EQ_INT(cl_evlog_parse(b.data, b.len, &log), CL_OK);
	CHECK_EQ_INT(cl_evlog_replay(&log, CL_TPM_ALG_SHA256, &good), CL_OK);
	off = (size_t)(log.events[1].digests[1].d - b.data);
	CHECK_EQ_INT(log.events[1].digests[1].alg, CL_TPM_ALG_SHA256);
	b.data[off] ^= 1;
	CHECK_EQ_INT(cl_evlog_replay(&log, CL_TPM_ALG_SHA256, &bad), CL_OK);
	CHECK(memcmp(good.pcr[log.events[1].pcr], bad.pcr[log.events[1].pcr], 32) != 0);
	b.data[off] ^= 1;
	for (size_t i = 1; i < log.nevents; i++) {
		if (log.events[i].type != CL_EV_EFI_VARIABLE_DRIVER_CONFIG)
			continue;
		off = (size_t)(log.events[i].data - b.data) + log.events[i].data_len - 1;
		break;
	}
	b.data[off] ^= 1;
	CHECK_EQ_INT(cl_evlog_summary(&log, CL_TPM_ALG_SHA256, 0xffffff, &sum, &sb),
		     CL_ERR_MISMATCH);
	cl_evlog_free(&log);
	cl_buf_free(&b);
}

static void test_names(void)
{
	CHECK_EQ_INT(cl_tpm_alg_digest_len(CL_TPM_ALG_SHA384), 48);
	CHECK_EQ_INT(cl_tpm_alg_digest_len(0x9999), 0);
	CHECK_STR(cl_tpm_alg_name(CL_TPM_ALG_SHA1), "sha1");
	CHECK_EQ_INT(cl_tpm_alg_from_name("sha256"), CL_TPM_ALG_SHA256);
	CHECK_EQ_INT(cl_tpm_alg_from_name("md5"), 0);
	CHECK_STR(cl_evlog_type_name(0x80000001), "EV_EFI_VARIABLE_DRIVER_CONFIG");
	CHECK(cl_evlog_type_name(0x12345) == NULL);
}

int main(void)
{
	cl_log_set_level(CL_LOG_ERROR);
	RUN(test_crypto_agile);
	RUN(test_sb_cert);
	RUN(test_ubuntu);
	RUN(test_gcp_log);
	RUN(test_truncated);
	RUN(test_malformed);
	RUN(test_tampered);
	RUN(test_names);
	return test_done("eventlog_test");
}
