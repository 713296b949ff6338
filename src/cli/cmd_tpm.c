/*
 * cloister tpm: TPM tooling around the verifier and the attester.
 *   eventlog FILE          a TCG event log's events and replayed PCRs as JSON
 *   import --msg --sig --pcrs [--ak] [--event-log]
 *                          tpm2_quote output files -> our evidence envelope
 *   quote [--tcti T] --nonce HEX [--pcrs SEL]
 *                          quote this machine's TPM -> evidence envelope
 *   ak [--tcti T]          the attestation key as PEM (to pin with --ak)
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cli.h"
#include "cloister/attest_tpm.h"
#include "cloister/eventlog.h"
#include "cloister/tpm.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: cloister tpm eventlog FILE\n"
		"       cloister tpm import --msg FILE --sig FILE --pcrs FILE [--ak FILE]\n"
		"                           [--event-log FILE] [--ak-cert FILE]\n"
		"       cloister tpm quote [--tcti TCTI] --nonce HEX [--pcrs SELECTION]\n"
		"       cloister tpm ak [--tcti TCTI]\n"
		"\n"
		"eventlog  print a TCG event log (crypto-agile or SHA-1) as JSON: its events,\n"
		"          every bank replayed, Secure Boot state. Exit 1 for a malformed log.\n"
		"import    turn tpm2_quote's -m (message), -s (signature, tss format) and -o\n"
		"          (PCR values, 'values' or 'serialized') files into the JSON evidence\n"
		"          envelope that 'cloister verify' reads; --ak takes the AK as PEM/DER\n"
		"          SubjectPublicKeyInfo or TPM2B_PUBLIC (tpm2_createak -u).\n"
		"quote     quote this platform's TPM over the nonce (at most 64 bytes) and print\n"
		"          the envelope. SELECTION like sha256:0,1,7 or sha1:0-7+sha256:all\n"
		"          (default " CL_ATTEST_TPM_DEFAULT_PCRS ").\n"
		"ak        print the attestation key 'quote' signs with, as PEM.\n"
		"\n"
		"TCTI: --tcti, else $TPM2TOOLS_TCTI, else tpm2-tss's default (e.g. /dev/tpmrm0);\n"
		"for example swtpm:port=2321 or device:/dev/tpmrm0.\n");
}

enum { OPT_MSG = 256, OPT_SIG, OPT_PCRS, OPT_AK, OPT_EVENT_LOG, OPT_AK_CERT, OPT_TCTI, OPT_NONCE };

static const struct option longopts[] = {
	{"msg", required_argument, NULL, OPT_MSG},
	{"sig", required_argument, NULL, OPT_SIG},
	{"pcrs", required_argument, NULL, OPT_PCRS},
	{"ak", required_argument, NULL, OPT_AK},
	{"event-log", required_argument, NULL, OPT_EVENT_LOG},
	{"ak-cert", required_argument, NULL, OPT_AK_CERT},
	{"tcti", required_argument, NULL, OPT_TCTI},
	{"nonce", required_argument, NULL, OPT_NONCE},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

struct args {
	const char *msg, *sig, *pcrs, *ak, *event_log, *ak_cert, *tcti, *nonce;
};

/* Options of every subcommand; `allowed` lists the ones this one takes. */
static int parse_args(int argc, char **argv, const int *allowed, struct args *a)
{
	int c = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int ok = 0;

		if (c == 'h') {
			usage(stdout);
			return 1;
		}
		for (const int *p = allowed; *p; p++)
			ok |= *p == c;
		if (!ok) {
			fprintf(stderr, "cloister tpm %s: unknown or incomplete option '%s'\n",
				argv[0], argv[optind - 1]);
			usage(stderr);
			return -1;
		}
		switch (c) {
		case OPT_MSG:
			a->msg = optarg;
			break;
		case OPT_SIG:
			a->sig = optarg;
			break;
		case OPT_PCRS:
			a->pcrs = optarg;
			break;
		case OPT_AK:
			a->ak = optarg;
			break;
		case OPT_EVENT_LOG:
			a->event_log = optarg;
			break;
		case OPT_AK_CERT:
			a->ak_cert = optarg;
			break;
		case OPT_TCTI:
			a->tcti = optarg;
			break;
		case OPT_NONCE:
			a->nonce = optarg;
			break;
		default:
			return -1;
		}
	}
	return 0;
}

static int print_json(json_t *j)
{
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (!text) {
		fprintf(stderr, "cloister tpm: out of memory\n");
		return EXIT_USAGE;
	}
	printf("%s\n", text);
	free(text);
	return 0;
}

static int cmd_eventlog(int argc, char **argv)
{
	static const int allowed[] = {0};
	struct args a = {0};
	struct cl_buf b = {0};
	struct cl_evlog log;
	json_t *j = NULL;
	int r = parse_args(argc, argv, allowed, &a), ret = EXIT_USAGE;

	if (r)
		return r > 0 ? 0 : EXIT_USAGE;
	if (optind != argc - 1) {
		fprintf(stderr, "cloister tpm eventlog: expected exactly one FILE\n");
		return EXIT_USAGE;
	}
	if (cl_read_file(argv[optind], CL_EVLOG_MAX_BYTES + 1, &b) != CL_OK) {
		fprintf(stderr, "cloister tpm eventlog: %s\n", cl_error_detail());
		return EXIT_USAGE;
	}
	if (cl_evlog_parse(b.data, b.len, &log) != CL_OK || cl_evlog_to_json(&log, &j) != CL_OK) {
		fprintf(stderr, "cloister tpm eventlog: malformed event log: %s\n",
			cl_error_detail());
		ret = EXIT_REJECTED;
	} else {
		ret = print_json(j);
	}
	json_decref(j);
	cl_evlog_free(&log);
	cl_buf_free(&b);
	return ret;
}

/* Take a file's bytes (PEM decoded to DER where it is PEM). */
static int load_der(const char *path, size_t max, int cert, uint8_t **out, size_t *len)
{
	struct cl_buf b = {0};
	BIO *bio = NULL;
	int rc = CL_OK, l = 0;
	unsigned char *der = NULL;

	CL_GUARD(cl_read_file(path, max, &b));
	if (b.len > 10 && memcmp(b.data, "-----BEGIN", 10) == 0) {
		bio = BIO_new_mem_buf(b.data, (int)b.len);
		if (cert) {
			X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

			l = x ? i2d_X509(x, &der) : -1;
			X509_free(x);
		} else {
			EVP_PKEY *k = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;

			l = k ? i2d_PUBKEY(k, &der) : -1;
			EVP_PKEY_free(k);
		}
		BIO_free(bio);
		CL_CHECK(l > 0, CL_ERR_MALFORMED, "%s: unreadable PEM", path);
		*out = malloc((size_t)l);
		CL_CHECK(*out, CL_ERR_NOMEM, "out of memory");
		memcpy(*out, der, (size_t)l);
		*len = (size_t)l;
	} else {
		*out = b.data;
		*len = b.len;
		b.data = NULL;
	}
out:
	OPENSSL_free(der);
	cl_buf_free(&b);
	return rc;
}

static int cmd_import(int argc, char **argv)
{
	static const int allowed[] = {OPT_MSG,	     OPT_SIG,	  OPT_PCRS, OPT_AK,
				      OPT_EVENT_LOG, OPT_AK_CERT, 0};
	struct args a = {0};
	struct cl_tpm_evidence ev;
	struct cl_buf pcrs = {0};
	TPMS_ATTEST att;
	TPMT_SIGNATURE sig;
	EVP_PKEY *k = NULL;
	json_t *j = NULL;
	int r = parse_args(argc, argv, allowed, &a), ret = EXIT_USAGE;

	memset(&ev, 0, sizeof(ev));
	if (r)
		return r > 0 ? 0 : EXIT_USAGE;
	if (!a.msg || !a.sig || !a.pcrs || optind != argc) {
		fprintf(stderr, "cloister tpm import: --msg, --sig and --pcrs are required\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (load_der(a.msg, CL_TPM_MAX_QUOTE, 0, &ev.quote, &ev.quote_len) != CL_OK ||
	    load_der(a.sig, CL_TPM_MAX_SIG, 0, &ev.sig, &ev.sig_len) != CL_OK ||
	    cl_read_file(a.pcrs, 64 * 1024, &pcrs) != CL_OK ||
	    (a.ak && load_der(a.ak, CL_TPM_MAX_AK, 0, &ev.ak, &ev.ak_len) != CL_OK) ||
	    (a.ak_cert &&
	     load_der(a.ak_cert, 16 * 1024, 1, &ev.ak_cert, &ev.ak_cert_len) != CL_OK) ||
	    (a.event_log && load_der(a.event_log, CL_EVLOG_MAX_BYTES, 0, &ev.event_log,
				     &ev.event_log_len) != CL_OK)) {
		fprintf(stderr, "cloister tpm import: %s\n", cl_error_detail());
		goto out;
	}
	/* Refuse what the verifier would refuse to parse, with the reason. */
	ret = EXIT_REJECTED;
	if (cl_tpm_quote_parse(ev.quote, ev.quote_len, &att) != CL_OK ||
	    cl_tpm_signature_parse(ev.sig, ev.sig_len, &sig) != CL_OK ||
	    cl_tpm_pcrs_from_tpm2_tools(&att, pcrs.data, pcrs.len, &ev.pcrs) != CL_OK ||
	    (ev.ak && cl_tpm_ak_parse(ev.ak, ev.ak_len, &k, NULL) != CL_OK)) {
		fprintf(stderr, "cloister tpm import: %s\n", cl_error_detail());
		goto out;
	}
	if (cl_tpm_evidence_to_json(&ev, &j) != CL_OK) {
		fprintf(stderr, "cloister tpm import: %s\n", cl_error_detail());
		ret = EXIT_USAGE;
		goto out;
	}
	ret = print_json(j);
out:
	json_decref(j);
	EVP_PKEY_free(k);
	cl_buf_free(&pcrs);
	cl_tpm_evidence_free(&ev);
	return ret;
}

static int cmd_quote(int argc, char **argv)
{
	static const int allowed[] = {OPT_TCTI, OPT_NONCE, OPT_PCRS, 0};
	struct args a = {0};
	uint8_t *nonce = NULL;
	size_t nonce_len = 0;
	json_t *j = NULL;
	int r = parse_args(argc, argv, allowed, &a), ret = EXIT_USAGE;

	if (r)
		return r > 0 ? 0 : EXIT_USAGE;
	if (!a.nonce || optind != argc) {
		fprintf(stderr, "cloister tpm quote: --nonce HEX is required\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (cl_hex_decode(a.nonce, strlen(a.nonce), &nonce, &nonce_len) != CL_OK ||
	    nonce_len > CL_TPM_MAX_NONCE) {
		fprintf(stderr, "cloister tpm quote: --nonce must be hex, at most %d bytes\n",
			CL_TPM_MAX_NONCE);
		goto out;
	}
	if (cl_attest_tpm_quote(a.tcti, nonce, nonce_len, a.pcrs, &j) != CL_OK) {
		fprintf(stderr, "cloister tpm quote: %s\n", cl_error_detail());
		goto out;
	}
	ret = print_json(j);
out:
	json_decref(j);
	free(nonce);
	return ret;
}

static int cmd_ak(int argc, char **argv)
{
	static const int allowed[] = {OPT_TCTI, 0};
	struct args a = {0};
	char *pem = NULL;
	int r = parse_args(argc, argv, allowed, &a);

	if (r)
		return r > 0 ? 0 : EXIT_USAGE;
	if (optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (cl_attest_tpm_ak_pem(a.tcti, &pem) != CL_OK) {
		fprintf(stderr, "cloister tpm ak: %s\n", cl_error_detail());
		return EXIT_USAGE;
	}
	fputs(pem, stdout);
	free(pem);
	return 0;
}

int cmd_tpm(int argc, char **argv)
{
	static const struct cli_sub subs[] = {{"eventlog", cmd_eventlog},
					      {"import", cmd_import},
					      {"quote", cmd_quote},
					      {"ak", cmd_ak}};

	/* tpm2-tss logs every TPM error to stderr; our own message says enough. */
	setenv("TSS2_LOG", "all+none", 0);
	return cli_dispatch("tpm", argc, argv, subs, sizeof(subs) / sizeof(subs[0]), usage);
}
