#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cloister/devtee.h"

/* Exit status when the platform itself fails (the program never ran). */
#define EXIT_PLATFORM 125

static void usage(FILE *f)
{
	fprintf(f,
		"usage: cloister devtee run [--state DIR] [--init-data FILE] [--debug] -- PROGRAM "
		"[ARGS...]\n"
		"       cloister devtee measure [--init-data FILE] [--debug] -- PROGRAM [ARGS...]\n"
		"       cloister devtee root [--state DIR]\n"
		"\n"
		"A development TEE for machines without TEE hardware. 'run' measures PROGRAM\n"
		"(SHA-384 over its bytes, its arguments, the init-data hash and the launch\n"
		"options), starts it sandboxed, and serves it reports signed by a development\n"
		"root on the socket named by $CLOISTER_DEVTEE_FD. It exits with PROGRAM's exit\n"
		"status (125 when the platform fails). 'measure' prints the measurement 'run'\n"
		"would give. 'root' creates the development root if needed and prints the path\n"
		"of its certificate, which verifiers must be given explicitly (--devtee-root).\n"
		"\n"
		"options:\n"
		"  --state DIR       keys and root certificate (default\n"
		"                    $XDG_DATA_HOME/cloister/devtee or "
		"~/.local/share/cloister/devtee)\n"
		"  --init-data FILE  init-data whose SHA-384 goes into the report's host_data\n"
		"  --debug           launch as debuggable (reports say so; verifiers reject them\n"
		"                    unless --allow-debug)\n"
		"  -h, --help        show this help\n");
}

enum { OPT_STATE = 256, OPT_INIT_DATA, OPT_DEBUG };

static const struct option longopts[] = {
	{"state", required_argument, NULL, OPT_STATE},
	{"init-data", required_argument, NULL, OPT_INIT_DATA},
	{"debug", no_argument, NULL, OPT_DEBUG},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

int cmd_devtee(int argc, char **argv)
{
	struct cl_devtee_opts o = {0};
	const char *sub = NULL;
	char dir[PATH_MAX];
	uint8_t m[CL_DEVTEE_HASH_LEN];
	char hex[2 * CL_DEVTEE_HASH_LEN + 1];
	int c = 0, status = 0;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	sub = argv[1];
	if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(sub, "run") && strcmp(sub, "measure") && strcmp(sub, "root")) {
		fprintf(stderr, "cloister devtee: unknown subcommand '%s'\n", sub);
		usage(stderr);
		return EXIT_USAGE;
	}
	argc--;
	argv++;
	optind = 1;
	opterr = 0;
	/* '+': options end at PROGRAM, whose own options are its business. */
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case OPT_STATE:
			o.state_dir = optarg;
			break;
		case OPT_INIT_DATA:
			o.init_data_path = optarg;
			break;
		case OPT_DEBUG:
			o.debug = 1;
			break;
		default:
			fprintf(stderr, "cloister devtee: unknown or incomplete option '%s'\n",
				argv[optind - 1]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (strcmp(sub, "root") == 0) {
		if (optind != argc || o.init_data_path || o.debug) {
			fprintf(stderr, "cloister devtee root: takes only --state\n");
			return EXIT_USAGE;
		}
		if (cl_devtee_state_dir(o.state_dir, dir, sizeof(dir)) != CL_OK ||
		    cl_devtee_root_load(dir, NULL, NULL) != CL_OK) {
			fprintf(stderr, "cloister devtee: %s\n", cl_error_detail());
			return EXIT_PLATFORM;
		}
		printf("%s/root.pem\n", dir);
		return 0;
	}
	if (optind >= argc) {
		fprintf(stderr, "cloister devtee %s: no PROGRAM given\n", sub);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(sub, "measure") == 0) {
		if (o.state_dir) {
			fprintf(stderr,
				"cloister devtee measure: --state does not change a measurement\n");
			return EXIT_USAGE;
		}
		if (cl_devtee_measure_argv(&o, argv + optind, m) != CL_OK) {
			fprintf(stderr, "cloister devtee: %s\n", cl_error_detail());
			return EXIT_PLATFORM;
		}
		cl_hex_encode(m, sizeof(m), hex);
		printf("%s\n", hex);
		return 0;
	}
	fflush(stdout);
	if (cl_devtee_run(&o, argv + optind, &status) != CL_OK) {
		fprintf(stderr, "cloister devtee: %s\n", cl_error_detail());
		return EXIT_PLATFORM;
	}
	return status;
}
