#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cloister/attest.h"
#include "cloister/kbs.h"
#include "cloister/kbs_client.h"

#define MAX_KBS_URLS 16

static void usage(FILE *f)
{
	fprintf(f, "usage: cloister agent get-resource --kbs URL [--kbs URL...] [-o FILE] "
		   "[--attempts N]\n"
		   "                                   [--cacert F] [--init-data FILE] "
		   "[--attester KIND]\n"
		   "                                   REPO/TYPE/TAG\n"
		   "\n"
		   "Fetch a secret from a KBS (Trustee's protocol): attest this TEE with a "
		   "fresh\n"
		   "P-256 key bound into the report data, then decrypt the released "
		   "resource.\n"
		   "Unreachable servers are retried with backoff across the --kbs URLs; a "
		   "refusal\n"
		   "is final. The secret goes to FILE (created mode 0600) or stdout.\n"
		   "\n"
		   "options:\n"
		   "  --kbs URL          KBS base URL (repeat for replicas)\n"
		   "  -o, --output FILE  write the secret there (mode 0600)\n"
		   "  --attempts N       rounds over all URLs before giving up (default 5)\n"
		   "  --cacert F         CA bundle for https KBS URLs\n"
		   "  --init-data FILE   init-data to present (its hash is in the "
		   "evidence)\n"
		   "  --attester KIND    auto (default), devtee, tsm, sev-guest, gramine\n"
		   "  -h, --help         show this help\n"
		   "\n"
		   "Exit status: 0 secret written, 1 refused or unreachable, 2 usage.\n");
}

enum { OPT_KBS = 256, OPT_ATTEMPTS, OPT_CACERT, OPT_INIT, OPT_ATTESTER };

static const struct option longopts[] = {
	{"kbs", required_argument, NULL, OPT_KBS},
	{"output", required_argument, NULL, 'o'},
	{"attempts", required_argument, NULL, OPT_ATTEMPTS},
	{"cacert", required_argument, NULL, OPT_CACERT},
	{"init-data", required_argument, NULL, OPT_INIT},
	{"attester", required_argument, NULL, OPT_ATTESTER},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static int write_secret(const char *path, const struct cl_buf *s)
{
	int fd = path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600) : 1;
	size_t off = 0;

	if (fd < 0) {
		fprintf(stderr, "cloister agent: cannot create %s: %s\n", path, strerror(errno));
		return -1;
	}
	/* An existing file keeps its mode on O_TRUNC: tighten it. */
	if (path && fchmod(fd, 0600) != 0) {
		close(fd);
		return -1;
	}
	while (off < s->len) {
		ssize_t w = write(fd, s->data + off, s->len - off);

		if (w <= 0) {
			if (path)
				close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	if (path && (fsync(fd) != 0 || close(fd) != 0))
		return -1;
	return 0;
}

int cmd_agent_get_resource(int argc, char **argv)
{
	const char *urls[MAX_KBS_URLS];
	struct cl_kbs_client_opts o = CL_KBS_CLIENT_OPTS_INIT;
	struct cl_attest_config ac = CL_ATTEST_CONFIG_INIT;
	struct cl_attester *a = NULL;
	struct cl_buf secret = {0}, init = {0};
	const char *out = NULL, *init_path = NULL;
	char tee[16] = "";
	size_t n = 0;
	int c = 0, rc = EXIT_USAGE;

	optind = 1;
	while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case OPT_KBS:
			if (n >= MAX_KBS_URLS) {
				fprintf(stderr, "cloister agent: at most %d --kbs URLs\n",
					MAX_KBS_URLS);
				return EXIT_USAGE;
			}
			urls[n++] = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case OPT_ATTEMPTS:
			o.attempts = atoi(optarg);
			if (o.attempts < 1 || o.attempts > 100) {
				fprintf(stderr, "cloister agent: --attempts must be 1..100\n");
				return EXIT_USAGE;
			}
			break;
		case OPT_CACERT:
			o.cacert = optarg;
			break;
		case OPT_INIT:
			init_path = optarg;
			break;
		case OPT_ATTESTER:
			if (cl_attest_kind_parse(optarg, &ac.kind) != CL_OK) {
				fprintf(stderr, "cloister agent: %s\n", cl_error_detail());
				return EXIT_USAGE;
			}
			break;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || n == 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (cl_kbs_resource_path_check(argv[optind], strlen(argv[optind])) != CL_OK) {
		fprintf(stderr, "cloister agent: %s\n", cl_error_detail());
		return EXIT_USAGE;
	}
	if (init_path && cl_read_file(init_path, CL_MAX_KBS_BODY / 2, &init) != CL_OK) {
		fprintf(stderr, "cloister agent: %s\n", cl_error_detail());
		return EXIT_USAGE;
	}
	rc = 1;
	if (cl_attest_open(&ac, &a) != CL_OK || cl_kbs_client_attester_tee(a, tee) != CL_OK) {
		fprintf(stderr, "cloister agent: %s\n", cl_error_detail());
		goto out;
	}
	o.urls = urls;
	o.nurls = n;
	o.evidence = cl_kbs_client_attest_evidence;
	o.evidence_ctx = a;
	o.tee = tee;
	o.init_data = init.len ? (const char *)init.data : NULL;
	if (cl_kbs_client_get_resource(&o, argv[optind], &secret) != CL_OK) {
		fprintf(stderr, "cloister agent: %s\n", cl_error_detail());
		goto out;
	}
	rc = write_secret(out, &secret) == 0 ? 0 : 1;
out:
	cl_buf_free(&secret);
	cl_buf_free(&init);
	cl_attest_close(a);
	return rc;
}
