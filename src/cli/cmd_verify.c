#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cloister/appraise.h"
#include "cloister/evidence.h"
#include "verifier_opts.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: cloister verify [options] EVIDENCE\n"
		"\n"
		"Verify hardware evidence offline against pinned vendor roots and print one\n"
		"JSON object: {\"status\", \"format\", \"reason\", \"claims\"}.\n"
		"Exit status: 0 verified, 1 rejected (also for malformed evidence), 2 usage or I/O "
		"error\n"
		"(a file an option names, or the evidence file, missing or unreadable).\n"
		"With --policy or --reference-values the object also has an \"appraisal\".\n"
		"With --ear it prints only a signed EAR token (draft-ietf-rats-ear-03) and exits "
		"0\n"
		"whenever the evidence verified, whatever the token's status; 1 when it did not.\n"
		"\n"
		"options:\n"
		"  --format F          auto (default), snp, tdx, sgx, devtee, tpm or "
		"nitro\n" VERIFIER_OPTS_HELP
		"  --ear               print an EAR attestation result instead of JSON\n"
		"  --signing-key FILE  EAR signing key (PEM EC P-256 → ES256, P-384 → ES384)\n"
		"  --nonce HEX         freshness nonce, 1..64 bytes. Evidence: a TPM quote's\n"
		"                      extraData must equal it (any length the TPM accepts);\n"
		"                      a Nitro document's nonce must equal it.\n"
		"                      EAR: it is carried as eat_nonce, which must be 8..64 bytes\n"
		"  --ttl SECONDS       EAR lifetime (default 300)\n"
		"  --report-data HEX   demand this REPORT_DATA (zero-padded to 64 bytes)\n"
		"  -h, --help          show this help\n");
}

enum {
	OPT_FORMAT = 256,
	OPT_REPORT_DATA,
	OPT_EAR,
	OPT_SIGNING_KEY,
	OPT_NONCE,
	OPT_TTL,
};

static const struct option longopts[] = {
	{"format", required_argument, NULL, OPT_FORMAT},
	VERIFIER_LONGOPTS,
	{"report-data", required_argument, NULL, OPT_REPORT_DATA},
	{"ear", no_argument, NULL, OPT_EAR},
	{"signing-key", required_argument, NULL, OPT_SIGNING_KEY},
	{"nonce", required_argument, NULL, OPT_NONCE},
	{"ttl", required_argument, NULL, OPT_TTL},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static int parse_report_data(const char *hex, uint8_t out[CL_REPORT_DATA_LEN])
{
	size_t n = strlen(hex);

	if (n >= 2 && hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X')) {
		hex += 2;
		n -= 2;
	}
	if (n > 2 * CL_REPORT_DATA_LEN || n % 2)
		return cl_fail(CL_ERR_ARG,
			       "--report-data needs an even number of hex digits, at most %d",
			       2 * CL_REPORT_DATA_LEN);
	memset(out, 0, CL_REPORT_DATA_LEN);
	for (size_t i = 0; i < n / 2; i++) {
		char pair[3] = {hex[2 * i], hex[2 * i + 1], 0};
		uint8_t b = 0;

		if (cl_hex_decode_exact(pair, &b, 1) != CL_OK)
			return cl_fail(CL_ERR_ARG, "--report-data is not hex");
		out[i] = b;
	}
	return CL_OK;
}

/*
 * --nonce means two things, with two length rules. As the evidence nonce it
 * is compared with what the evidence signed (a TPM quote's extraData, a
 * TPM2B_DATA of 1..64 bytes: `tpm2_quote -q 0badc0de` makes a 4-byte one).
 * As an EAR's eat_nonce it must be 8..64 bytes (EAT); that rule is checked
 * only when an EAR is built.
 */
#define NONCE_MIN     1
#define NONCE_MAX     64
#define EAR_NONCE_MIN 8

static int parse_nonce(const char *hex, uint8_t **out, size_t *len)
{
	CL_GUARD(cl_hex_decode(hex, strlen(hex), out, len));
	if (*len < NONCE_MIN || *len > NONCE_MAX) {
		free(*out);
		*out = NULL;
		return cl_fail(CL_ERR_ARG, "--nonce must be %d to %d bytes of hex", NONCE_MIN,
			       NONCE_MAX);
	}
	return CL_OK;
}

/* Appraise verified claims; JSON for the plain output, or a signed EAR. */
static int appraise(const struct verifier_opts *vo, const struct cl_verify_opts *o,
		    const json_t *claims, const uint8_t *nonce, size_t nonce_len,
		    const struct cl_ear_key *key, int64_t ttl, json_t **json, char **jwt)
{
	struct cl_appraise_ctx ctx = {nonce, nonce_len, o->have_report_data ? o->report_data : NULL,
				      o->at};
	struct cl_appraisal a = {0};
	struct cl_ear_submod sm = {"cpu0", &a, claims};
	struct cl_ear_opts eo = {"cloister " CLOISTER_VERSION, nonce, nonce_len, 0, ttl};
	json_t *tv = NULL;
	int rc = CL_OK;

	CL_TRY(cl_policy_appraise(vo->policy, claims, vo->rv, &ctx, &a));
	if (key) {
		CL_TRY(cl_ear_sign(key, &sm, 1, &eo, jwt));
		goto out;
	}
	tv = json_object();
	CL_CHECK(tv, CL_ERR_NOMEM, "out of memory");
	for (int i = 0; i < CL_TV_COUNT; i++)
		if (a.vector[i])
			json_object_set_new(tv, cl_tv_claim_name(i), json_integer(a.vector[i]));
	*json = json_pack("{s:s, s:O, s:s, s:O}", "status", cl_tier_name(a.status),
			  "trustworthiness_vector", tv, "policy_id", a.policy_id, "reasons",
			  a.reasons);
	CL_CHECK(*json, CL_ERR_NOMEM, "out of memory");
out:
	json_decref(tv);
	cl_appraisal_free(&a);
	return rc;
}

int cmd_verify(int argc, char **argv)
{
	struct verifier_opts vo = {0};
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	struct cl_verify_result res = {0};
	struct cl_buf ev = {0};
	struct cl_ear_key *key = NULL;
	const char *key_path = NULL;
	json_t *out = NULL, *appraisal = NULL;
	uint8_t *nonce = NULL;
	size_t nonce_len = 0;
	char *text = NULL, *jwt = NULL, *end = NULL;
	int c = 0, ret = EXIT_USAGE, want_ear = 0, r = 0;
	long ttl = 0;

	optind = 1;
	opterr = 0;
	cl_error_clear(); /* a new operation: nothing before it is its failure */
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case OPT_FORMAT:
			if (cl_format_parse(optarg, &o.format) != CL_OK)
				goto usage_err;
			break;
		case OPT_REPORT_DATA:
			if (parse_report_data(optarg, o.report_data) != CL_OK)
				goto usage_err;
			o.have_report_data = 1;
			break;
		case OPT_EAR:
			want_ear = 1;
			break;
		case OPT_SIGNING_KEY:
			key_path = optarg;
			break;
		case OPT_NONCE:
			free(nonce);
			nonce = NULL;
			if (parse_nonce(optarg, &nonce, &nonce_len) != CL_OK)
				goto usage_err;
			break;
		case OPT_TTL:
			ttl = strtol(optarg, &end, 10);
			if (!*optarg || *end || ttl <= 0 || ttl > 7 * 86400) {
				(void)cl_fail(CL_ERR_ARG, "--ttl must be 1 to 604800 seconds");
				goto usage_err;
			}
			break;
		default:
			r = verifier_opts_handle(&vo, c, optarg);
			if (r < 0)
				goto usage_err;
			if (r > 0)
				break;
			fprintf(stderr, "cloister verify: unknown or incomplete option '%s'\n",
				argv[optind - 1]);
			usage(stderr);
			goto out;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "cloister verify: expected exactly one EVIDENCE file\n");
		usage(stderr);
		goto out;
	}
	if (want_ear != (key_path != NULL)) {
		fprintf(stderr, "cloister verify: --ear and --signing-key go together\n");
		goto out;
	}
	if (want_ear && nonce && nonce_len < EAR_NONCE_MIN) {
		fprintf(stderr,
			"cloister verify: --nonce of %zu bytes cannot be an EAR's eat_nonce "
			"(%d to %d bytes)\n",
			nonce_len, EAR_NONCE_MIN, NONCE_MAX);
		goto out;
	}
	if (verifier_path_check("evidence", argv[optind], VPATH_FILE) != CL_OK ||
	    verifier_path_check("--signing-key", key_path, VPATH_FILE) != CL_OK ||
	    verifier_opts_load(&vo) != CL_OK ||
	    cl_read_file(argv[optind], CL_MAX_EVIDENCE, &ev) != CL_OK ||
	    (key_path && cl_ear_key_load(key_path, &key) != CL_OK)) {
		fprintf(stderr, "cloister verify: %s\n", cl_error_detail());
		goto out;
	}
	/* The shared verifier options, plus what only this command takes. */
	vo.verify.format = o.format;
	memcpy(vo.verify.report_data, o.report_data, sizeof(o.report_data));
	vo.verify.have_report_data = o.have_report_data;
	o = vo.verify;
	o.tpm.nonce = nonce;
	o.tpm.nonce_len = nonce_len;
	o.nitro.nonce = nonce;
	o.nitro.nonce_len = nonce_len;

	if (cl_verify_evidence(ev.data, ev.len, &o, &res) != CL_OK)
		cl_log_debug("verification failed: %s", res.reason);
	if (res.status == CL_ERR_IO) {
		/* A file that could not be read (collateral, the cache) is no verdict. */
		fprintf(stderr, "cloister verify: %s\n", res.reason);
		goto out;
	}
	if (res.status == CL_OK && (want_ear || vo.policy_path || vo.rv_path) &&
	    appraise(&vo, &o, res.claims, nonce, nonce_len, key, ttl, &appraisal, &jwt) != CL_OK) {
		/* The evidence is fine but no result could be issued: not a verdict. */
		fprintf(stderr, "cloister verify: %s\n", cl_error_detail());
		goto out;
	}
	if (want_ear) {
		if (res.status == CL_OK) {
			printf("%s\n", jwt);
			ret = EXIT_VERIFIED;
		} else {
			fprintf(stderr, "cloister verify: rejected: %s\n", res.reason);
			ret = EXIT_REJECTED;
		}
		goto out;
	}
	out = json_pack("{s:s, s:s, s:s, s:O?}", "status",
			res.status == CL_OK ? "verified" : "rejected", "format",
			res.format == CL_FORMAT_AUTO ? "unknown" : cl_format_name(res.format),
			"reason", res.reason, "claims", res.claims);
	if (out && appraisal)
		json_object_set(out, "appraisal", appraisal);
	text = out ? json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	if (!text) {
		fprintf(stderr, "cloister verify: out of memory\n");
		goto out;
	}
	printf("%s\n", text);
	if (res.status != CL_OK)
		cl_log_info("rejected: %s", res.reason);
	ret = res.status == CL_OK ? EXIT_VERIFIED : EXIT_REJECTED;
	goto out;
usage_err:
	fprintf(stderr, "cloister verify: %s\n", cl_error_detail());
out:
	free(text);
	free(jwt);
	free(nonce);
	json_decref(out);
	json_decref(appraisal);
	cl_ear_key_free(key);
	cl_verify_result_free(&res);
	cl_buf_free(&ev);
	verifier_opts_free(&vo);
	cl_policy_thread_release();
	return ret;
}
