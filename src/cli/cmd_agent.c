#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "cloister/attest.h"
#include "cloister/attest_tpm.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: cloister agent evidence --report-data HEX [-o FILE] [--json] [--attester "
		"KIND]\n"
		"       cloister agent evidence --tpm --report-data HEX [--tcti T] [--pcrs SEL] "
		"[-o FILE]\n"
		"\n"
		"The attester inside a TEE.\n"
		"\n"
		"evidence: write this TEE's native evidence over REPORT_DATA (the raw report or\n"
		"quote, which 'cloister verify' accepts as it is). The TEE is detected: the dev\n"
		"TEE ($CLOISTER_DEVTEE_FD), configfs-tsm, /dev/sev-guest, Gramine's\n"
		"/dev/attestation. Exit status 0, 1 when no evidence could be had, 2 usage.\n"
		"\n"
		"options:\n"
		"  --report-data HEX  up to 64 bytes, zero-padded to 64 (required)\n"
		"  -o, --output FILE  write there instead of stdout\n"
		"  --json             a JSON envelope: {\"format\", \"provider\", \"evidence\",\n"
		"                     and \"certs\" (configfs-tsm auxblob) or \"eventlog\" (dev "
		"TEE),\n"
		"                     base64}\n"
		"  --attester KIND    auto (default), devtee, tsm, sev-guest, gramine\n"
		"  --tpm              quote the TPM instead, REPORT_DATA as the quote's nonce\n"
		"                     (extraData, unpadded); prints the TPM evidence envelope\n"
		"                     (JSON) that 'cloister verify --ak ...' accepts\n"
		"  --tcti T           TPM to talk to, e.g. device:/dev/tpmrm0 or\n"
		"                     swtpm:host=127.0.0.1,port=2321 (default $TPM2TOOLS_TCTI)\n"
		"  --pcrs SEL         PCRs to quote, e.g. sha256:0,1,7\n"
		"                     (default " CL_ATTEST_TPM_DEFAULT_PCRS ")\n"
		"  -h, --help         show this help\n");
}

enum { OPT_REPORT_DATA = 256, OPT_JSON, OPT_ATTESTER, OPT_TPM, OPT_TCTI, OPT_PCRS };

static const struct option longopts[] = {
	{"report-data", required_argument, NULL, OPT_REPORT_DATA},
	{"output", required_argument, NULL, 'o'},
	{"json", no_argument, NULL, OPT_JSON},
	{"attester", required_argument, NULL, OPT_ATTESTER},
	{"tpm", no_argument, NULL, OPT_TPM},
	{"tcti", required_argument, NULL, OPT_TCTI},
	{"pcrs", required_argument, NULL, OPT_PCRS},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static int parse_rd(const char *hex, uint8_t out[64], size_t *len)
{
	uint8_t *b = NULL;
	size_t n = 0;

	if (hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X'))
		hex += 2;
	if (cl_hex_decode(hex, strlen(hex), &b, &n) != CL_OK || n > 64) {
		free(b);
		return cl_fail(CL_ERR_ARG, "--report-data needs at most 64 bytes of hex");
	}
	memset(out, 0, 64);
	if (n)
		memcpy(out, b, n);
	*len = n;
	free(b);
	return CL_OK;
}

static char *envelope(const struct cl_attest_evidence *ev)
{
	char *e = cl_base64_encode(ev->evidence.data, ev->evidence.len);
	char *x = ev->aux.len ? cl_base64_encode(ev->aux.data, ev->aux.len) : NULL;
	json_t *j = NULL;
	char *text = NULL;

	if (!e || (ev->aux.len && !x))
		goto out;
	j = json_pack("{s:s, s:s, s:s}", "format",
		      ev->format == CL_FORMAT_AUTO ? "unknown" : cl_format_name(ev->format),
		      "provider", ev->provider, "evidence", e);
	if (j && x)
		json_object_set_new(j, ev->format == CL_FORMAT_DEVTEE ? "eventlog" : "certs",
				    json_string(x));
	text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
out:
	json_decref(j);
	free(e);
	free(x);
	return text;
}

static int cmd_evidence(int argc, char **argv)
{
	struct cl_attest_config cfg = CL_ATTEST_CONFIG_INIT;
	struct cl_attester *a = NULL;
	struct cl_attest_evidence ev = {0};
	const char *outp = NULL, *tcti = NULL, *pcrs = NULL;
	uint8_t rd[64];
	size_t rd_len = 0;
	int c = 0, have_rd = 0, json = 0, ok = 0, tpm = 0, attester = 0, ret = EXIT_USAGE;
	json_t *tpm_ev = NULL;
	char *text = NULL;
	FILE *f = NULL;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case 'o':
			outp = optarg;
			break;
		case OPT_REPORT_DATA:
			if (parse_rd(optarg, rd, &rd_len) != CL_OK)
				goto usage_err;
			have_rd = 1;
			break;
		case OPT_JSON:
			json = 1;
			break;
		case OPT_ATTESTER:
			if (cl_attest_kind_parse(optarg, &cfg.kind) != CL_OK)
				goto usage_err;
			attester = 1;
			break;
		case OPT_TPM:
			tpm = 1;
			break;
		case OPT_TCTI:
			tcti = optarg;
			break;
		case OPT_PCRS:
			pcrs = optarg;
			break;
		default:
			fprintf(stderr,
				"cloister agent evidence: unknown or incomplete option '%s'\n",
				argv[optind - 1]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || !have_rd) {
		fprintf(stderr,
			"cloister agent evidence: --report-data is required; no operands\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (tpm ? attester : (tcti || pcrs)) {
		fprintf(stderr, "cloister agent evidence: --tcti and --pcrs go with --tpm, "
				"--attester without it\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (tpm) {
		/* The TPM's evidence is its JSON envelope; --json changes nothing. */
		if (cl_attest_tpm_quote(tcti, rd, rd_len, pcrs, &tpm_ev) != CL_OK) {
			fprintf(stderr, "cloister agent evidence: %s\n", cl_error_detail());
			ret = EXIT_REJECTED;
			goto out;
		}
		text = json_dumps(tpm_ev, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		json = 1;
		if (!text) {
			fprintf(stderr, "cloister agent evidence: out of memory\n");
			ret = EXIT_REJECTED;
			goto out;
		}
	} else if (cl_attest_open(&cfg, &a) != CL_OK || cl_attest_evidence(a, rd, &ev) != CL_OK) {
		fprintf(stderr, "cloister agent evidence: %s\n", cl_error_detail());
		ret = EXIT_REJECTED;
		goto out;
	}
	if (json && !tpm) {
		text = envelope(&ev);
		if (!text) {
			fprintf(stderr, "cloister agent evidence: out of memory\n");
			ret = EXIT_REJECTED;
			goto out;
		}
	}
	f = outp ? fopen(outp, "wb") : stdout;
	if (!f) {
		fprintf(stderr, "cloister agent evidence: cannot create %s\n", outp);
		goto out;
	}
	ok = json ? fprintf(f, "%s\n", text) >= 0
		  : fwrite(ev.evidence.data, 1, ev.evidence.len, f) == ev.evidence.len;
	ok = (outp ? fclose(f) == 0 : fflush(f) == 0) && ok;
	if (!ok) {
		fprintf(stderr, "cloister agent evidence: cannot write %s\n",
			outp ? outp : "stdout");
		goto out;
	}
	ret = 0;
	goto out;
usage_err:
	fprintf(stderr, "cloister agent evidence: %s\n", cl_error_detail());
out:
	json_decref(tpm_ev);
	free(text);
	cl_attest_evidence_free(&ev);
	cl_attest_close(a);
	return ret;
}

static const struct cli_sub subs[] = {
	{"evidence", cmd_evidence},
	{"get-resource", cmd_agent_get_resource},
};

int cmd_agent(int argc, char **argv)
{
	return cli_dispatch("agent", argc, argv, subs, sizeof(subs) / sizeof(subs[0]), usage);
}
