#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cloister/appraise.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: cloister ear verify --jwks FILE [--at RFC3339] TOKEN\n"
		   "       cloister ear jwks --signing-key KEY.pem\n"
		   "\n"
		   "EAR attestation results (draft-ietf-rats-ear-03 JWTs, ES256/ES384).\n"
		   "\n"
		   "  verify   check a token's signature against a JWKS, its expiry and profile,\n"
		   "           and print its claims as JSON. TOKEN is a file, '-' for stdin, or\n"
		   "           the token itself. Exit status: 0 valid, 1 invalid, 2 usage.\n"
		   "  jwks     print the public JWKS of a signing key (PEM EC P-256 or P-384)\n"
		   "\n"
		   "options:\n"
		   "  --jwks FILE         JWKS holding the verifier's public key(s)\n"
		   "  --at RFC3339        check expiry as of this time (default: now)\n"
		   "  --signing-key FILE  PEM EC private key\n"
		   "  -h, --help          show this help\n");
}

enum { OPT_JWKS = 256, OPT_AT, OPT_KEY };

static const struct option longopts[] = {
	{"jwks", required_argument, NULL, OPT_JWKS},
	{"at", required_argument, NULL, OPT_AT},
	{"signing-key", required_argument, NULL, OPT_KEY},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static int print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (!s) {
		fprintf(stderr, "cloister ear: out of memory\n");
		return EXIT_USAGE;
	}
	printf("%s\n", s);
	free(s);
	return 0;
}

/* A token argument: a file, '-' for stdin, or the compact token itself. */
static int read_token(const char *arg, struct cl_buf *out)
{
	if (strcmp(arg, "-") == 0 || access(arg, F_OK) == 0 || !strchr(arg, '.') ||
	    strchr(arg, '/'))
		return cl_read_file(arg, CL_MAX_EAR_TOKEN, out);
	return cl_buf_append(out, arg, strlen(arg));
}

int cmd_ear(int argc, char **argv)
{
	const char *sub = NULL, *jwks_path = NULL, *key_path = NULL;
	struct cl_buf jb = {0}, tok = {0};
	struct cl_ear_key *key = NULL;
	json_t *jwks = NULL, *claims = NULL;
	int64_t at = 0;
	int c = 0, ret = EXIT_USAGE;

	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc < 2 || (strcmp(argv[1], "verify") != 0 && strcmp(argv[1], "jwks") != 0)) {
		fprintf(stderr, "cloister ear: expected 'verify' or 'jwks'\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	sub = argv[1];
	argc--;
	argv++;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case OPT_JWKS:
			jwks_path = optarg;
			break;
		case OPT_AT:
			if (cl_time_parse(optarg, &at) != CL_OK) {
				fprintf(stderr, "cloister ear: %s\n", cl_error_detail());
				return EXIT_USAGE;
			}
			break;
		case OPT_KEY:
			key_path = optarg;
			break;
		default:
			fprintf(stderr, "cloister ear: unknown or incomplete option '%s'\n",
				argv[optind - 1]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (strcmp(sub, "jwks") == 0) {
		if (!key_path || optind != argc) {
			fprintf(stderr,
				"cloister ear jwks: needs --signing-key and no other argument\n");
			return EXIT_USAGE;
		}
		if (cl_ear_key_load(key_path, &key) != CL_OK) {
			fprintf(stderr, "cloister ear: %s: %s\n", key_path, cl_error_detail());
			goto out;
		}
		jwks = cl_ear_key_jwks(key);
		ret = jwks ? print_json(jwks) : EXIT_USAGE;
		goto out;
	}
	if (!jwks_path || optind != argc - 1) {
		fprintf(stderr, "cloister ear verify: needs --jwks FILE and one TOKEN\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (cl_read_file(jwks_path, CL_MAX_JWKS, &jb) != CL_OK ||
	    read_token(argv[optind], &tok) != CL_OK) {
		fprintf(stderr, "cloister ear: %s\n", cl_error_detail());
		goto out;
	}
	jwks = json_loadb((const char *)jb.data, jb.len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(jwks)) {
		fprintf(stderr, "cloister ear: %s is not a JWKS\n", jwks_path);
		goto out;
	}
	if (cl_ear_verify(jwks, (const char *)tok.data, tok.len, at, &claims) != CL_OK) {
		printf("{\"status\": \"invalid\", \"reason\": ");
		{
			json_t *r = json_string(cl_error_detail());
			char *s = r ? json_dumps(r, JSON_ENCODE_ANY) : NULL;

			printf("%s}\n", s ? s : "\"\"");
			free(s);
			json_decref(r);
		}
		ret = EXIT_REJECTED;
		goto out;
	}
	ret = print_json(claims);
out:
	json_decref(claims);
	json_decref(jwks);
	cl_ear_key_free(key);
	cl_buf_free(&tok);
	cl_buf_free(&jb);
	return ret;
}
