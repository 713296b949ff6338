#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cloister/evidence.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: cloister verify [options] EVIDENCE\n"
		"\n"
		"Verify hardware evidence offline against pinned vendor roots and print one\n"
		"JSON object: {\"status\", \"format\", \"reason\", \"claims\"}.\n"
		"Exit status: 0 verified, 1 rejected (also for malformed evidence), 2 usage or I/O error.\n"
		"\n"
		"options:\n"
		"  --format F          auto (default), snp, tdx or sgx\n"
		"  --vcek FILE         SNP: VCEK or VLEK certificate (DER or PEM); otherwise the\n"
		"                      cache, then the AMD KDS, are used\n"
		"  --certs FILE        SNP: ASK/ASVK+ARK chain (PEM) to use instead of the pinned\n"
		"                      intermediates; DCAP: PCK chain when the quote has none\n"
		"  --collateral PATH   DCAP collateral: JSON file or directory of PCS responses\n"
		"  --at RFC3339        verify as of this time (default: now)\n"
		"  --report-data HEX   demand this REPORT_DATA (zero-padded to 64 bytes)\n"
		"  --allow-debug       accept debuggable guests and enclaves\n"
		"  --offline           never fetch endorsements from the network\n"
		"  --cache-dir DIR     endorsement cache (default $XDG_CACHE_HOME/cloister)\n"
		"  --kds-url URL       AMD KDS base URL (default https://kdsintf.amd.com)\n"
		"  --pcs-url URL       Intel PCS/PCCS base URL to fetch missing collateral from\n"
		"  -h, --help          show this help\n");
}

enum {
	OPT_FORMAT = 256,
	OPT_VCEK,
	OPT_CERTS,
	OPT_COLLATERAL,
	OPT_AT,
	OPT_REPORT_DATA,
	OPT_ALLOW_DEBUG,
	OPT_OFFLINE,
	OPT_CACHE_DIR,
	OPT_KDS_URL,
	OPT_PCS_URL,
};

static const struct option longopts[] = {
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "vcek", required_argument, NULL, OPT_VCEK },
	{ "certs", required_argument, NULL, OPT_CERTS },
	{ "collateral", required_argument, NULL, OPT_COLLATERAL },
	{ "at", required_argument, NULL, OPT_AT },
	{ "report-data", required_argument, NULL, OPT_REPORT_DATA },
	{ "allow-debug", no_argument, NULL, OPT_ALLOW_DEBUG },
	{ "offline", no_argument, NULL, OPT_OFFLINE },
	{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
	{ "kds-url", required_argument, NULL, OPT_KDS_URL },
	{ "pcs-url", required_argument, NULL, OPT_PCS_URL },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int parse_report_data(const char *hex, uint8_t out[CL_REPORT_DATA_LEN])
{
	size_t n = strlen(hex);

	if (n >= 2 && hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X')) {
		hex += 2;
		n -= 2;
	}
	if (n > 2 * CL_REPORT_DATA_LEN || n % 2)
		return cl_fail(CL_ERR_ARG, "--report-data needs an even number of hex digits, at most %d",
			       2 * CL_REPORT_DATA_LEN);
	memset(out, 0, CL_REPORT_DATA_LEN);
	for (size_t i = 0; i < n / 2; i++) {
		char pair[3] = { hex[2 * i], hex[2 * i + 1], 0 };
		uint8_t b = 0;

		if (cl_hex_decode_exact(pair, &b, 1) != CL_OK)
			return cl_fail(CL_ERR_ARG, "--report-data is not hex");
		out[i] = b;
	}
	return CL_OK;
}

int cmd_verify(int argc, char **argv)
{
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	struct cl_verify_result res = { 0 };
	struct cl_buf ev = { 0 }, vcek = { 0 }, certs = { 0 };
	const char *vcek_path = NULL, *certs_path = NULL;
	json_t *out = NULL;
	char *text = NULL;
	int c = 0, ret = EXIT_USAGE;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case OPT_FORMAT:
			if (cl_format_parse(optarg, &o.format) != CL_OK)
				goto usage_err;
			break;
		case OPT_VCEK:
			vcek_path = optarg;
			break;
		case OPT_CERTS:
			certs_path = optarg;
			break;
		case OPT_COLLATERAL:
			o.collateral = optarg;
			break;
		case OPT_AT:
			if (cl_time_parse(optarg, &o.at) != CL_OK)
				goto usage_err;
			break;
		case OPT_REPORT_DATA:
			if (parse_report_data(optarg, o.report_data) != CL_OK)
				goto usage_err;
			o.have_report_data = 1;
			break;
		case OPT_ALLOW_DEBUG:
			o.allow_debug = 1;
			break;
		case OPT_OFFLINE:
			o.offline = 1;
			break;
		case OPT_CACHE_DIR:
			o.cache_dir = optarg;
			break;
		case OPT_KDS_URL:
			o.kds_url = optarg;
			break;
		case OPT_PCS_URL:
			o.pcs_url = optarg;
			break;
		default:
			fprintf(stderr, "cloister verify: unknown or incomplete option '%s'\n",
				argv[optind - 1]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "cloister verify: expected exactly one EVIDENCE file\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (cl_read_file(argv[optind], CL_MAX_EVIDENCE, &ev) != CL_OK ||
	    (vcek_path && cl_read_file(vcek_path, 64 * 1024, &vcek) != CL_OK) ||
	    (certs_path && cl_read_file(certs_path, 256 * 1024, &certs) != CL_OK)) {
		fprintf(stderr, "cloister verify: %s\n", cl_error_detail());
		goto out;
	}
	o.vcek = vcek.data;
	o.vcek_len = vcek.len;
	o.certs = certs.data;
	o.certs_len = certs.len;

	if (cl_verify_evidence(ev.data, ev.len, &o, &res) != CL_OK)
		cl_log_debug("verification failed: %s", res.reason);
	out = json_pack("{s:s, s:s, s:s, s:O?}", "status",
			res.status == CL_OK ? "verified" : "rejected", "format",
			res.format == CL_FORMAT_AUTO ? "unknown" : cl_format_name(res.format),
			"reason", res.reason, "claims", res.claims);
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
	json_decref(out);
	cl_verify_result_free(&res);
	cl_buf_free(&ev);
	cl_buf_free(&vcek);
	cl_buf_free(&certs);
	return ret;
}
