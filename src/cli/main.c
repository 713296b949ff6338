#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cloister/core.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{"verify", cmd_verify, "verify hardware evidence (SEV-SNP, TDX, SGX) offline"},
	{"ear", cmd_ear, "verify EAR attestation results, publish the signing JWKS"},
	{"devtee", cmd_devtee, "run a program in the development TEE, measure it"},
	{"agent", cmd_agent, "attester inside a TEE: write this TEE's evidence"},
	{"serve", cmd_ratls_serve, "in a TEE: attested TLS in front of a local upstream"},
	{"connect", cmd_ratls_connect,
	 "forward local connections to a verified attested TLS server"},
	{"kbs", cmd_kbs, "key broker service (Trustee KBS protocol): serve, admin, audit"},
	{"tpm", cmd_tpm, "TPM 2.0: event logs, import tpm2_quote output, quote, AK"},
	{"demo", cmd_demo,
	 "the whole flow on this machine: KBS, dev TEE, secret released or refused"},
	{"version", cmd_version, "print the version"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: cloister [--log-level LEVEL] <command> [options]\n\n"
		   "Confidential-computing toolkit: verify TEE evidence.\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nglobal options:\n"
		   "  --log-level LEVEL  error, warn (default), info or debug; logs go to stderr\n"
		   "  -h, --help         show this help\n\n"
		   "Run 'cloister <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
	int i = 1;

	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--version") == 0)
			return cmd_version(1, argv);
		if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
			enum cl_log_level lvl = CL_LOG_WARN;

			if (cl_log_parse_level(argv[i + 1], &lvl) != CL_OK) {
				fprintf(stderr, "cloister: %s\n", cl_error_detail());
				return EXIT_USAGE;
			}
			cl_log_set_level(lvl);
			i += 2;
			continue;
		}
		fprintf(stderr, "cloister: unknown option '%s'\n\n", argv[i]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++)
		if (strcmp(argv[i], commands[c].name) == 0)
			return commands[c].fn(argc - i, argv + i);
	if (strcmp(argv[i], "help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "cloister: unknown command '%s'\n\n", argv[i]);
	usage(stderr);
	return EXIT_USAGE;
}
