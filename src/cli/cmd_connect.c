#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "cloister/ratls.h"
#include "ratls_limits.h"
#include "verifier_opts.h"

int ratls_write_ready(const char *path, const char *addr);

static void usage(FILE *f)
{
	fprintf(f,
		"usage: cloister connect --listen 127.0.0.1:PORT --server HOST:PORT [options]\n"
		"       cloister connect --check --server HOST:PORT [options]\n"
		"\n"
		"Run on the user's machine: accept plaintext connections on --listen and forward\n"
		"each over attested TLS to the server, only after the server's certificate has\n"
		"been verified (evidence, key binding, appraisal with the policy and reference\n"
		"values); otherwise the local connection is closed and the reason logged.\n"
		"Verified certificates are cached until they expire. --check makes one\n"
		"handshake and prints {\"status\", \"reason\", \"format\", \"tier\", \"source\",\n"
		"\"claims\"}; exit status 0 verified, 1 refused, 2 usage.\n"
		"\n"
		"options:\n"
		"  --listen ADDR         local HOST:PORT for plaintext clients\n"
		"  --server HOST:PORT    the attested TLS server (cloister serve)\n"
		"  --fresh               on every connection, also fetch evidence over a new\n"
		"                        nonce and the connection's key before forwarding\n"
		"  --check               verify the server once and exit\n"
		"  --allow-warning       accept servers appraised \"warning\", not only "
		"\"affirming\"\n"
		"  --cache-ttl SECONDS   reuse a verdict at most this long (default 3600; 0: "
		"never)\n"
		"  --client-attest       present an attested client certificate (inside a TEE)\n"
		"  --attester KIND       evidence source for --client-attest (default auto)\n"
		"  --ready-file FILE     write the bound HOST:PORT there once "
		"listening\n" RATLS_LIMITS_HELP VERIFIER_OPTS_HELP
		"  -h, --help            show this help\n");
}

enum {
	OPT_LISTEN = 256,
	OPT_SERVER,
	OPT_FRESH,
	OPT_CHECK,
	OPT_ALLOW_WARNING,
	OPT_CACHE_TTL,
	OPT_CLIENT_ATTEST,
	OPT_ATTESTER,
	OPT_READY,
	OPT_LIMITS_FIRST,
};

static const struct option longopts[] = {
	{"listen", required_argument, NULL, OPT_LISTEN},
	{"server", required_argument, NULL, OPT_SERVER},
	{"fresh", no_argument, NULL, OPT_FRESH},
	{"check", no_argument, NULL, OPT_CHECK},
	{"allow-warning", no_argument, NULL, OPT_ALLOW_WARNING},
	{"cache-ttl", required_argument, NULL, OPT_CACHE_TTL},
	{"client-attest", no_argument, NULL, OPT_CLIENT_ATTEST},
	{"attester", required_argument, NULL, OPT_ATTESTER},
	{"ready-file", required_argument, NULL, OPT_READY},
	RATLS_LIMITS_LONGOPTS(OPT_LIMITS_FIRST),
	VERIFIER_LONGOPTS,
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static int check(const struct cl_ratls_proxy_opts *po)
{
	struct cl_ratls_result res;
	json_t *j = NULL;
	char *text = NULL;
	int rc = cl_ratls_probe(po, &res);

	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O?}", "status",
		      rc == CL_OK ? "verified" : "rejected", "reason", res.reason, "format",
		      res.format == CL_FORMAT_AUTO ? "unknown" : cl_format_name(res.format), "tier",
		      cl_tier_name(res.tier), "source", res.source ? res.source : "", "claims",
		      res.claims);
	text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	if (text)
		printf("%s\n", text);
	if (rc != CL_OK)
		cl_log_warn("connect: refused %s: %s", po->target, res.reason);
	free(text);
	json_decref(j);
	cl_ratls_result_free(&res);
	return text ? (rc == CL_OK ? EXIT_VERIFIED : EXIT_REJECTED) : EXIT_USAGE;
}

int cmd_ratls_connect(int argc, char **argv)
{
	struct verifier_opts vo = {0};
	struct cl_ratls_verifier_opts ro = {0};
	struct cl_ratls_verifier *ver = NULL;
	struct cl_attest_config cfg = CL_ATTEST_CONFIG_INIT;
	struct cl_attester *att = NULL;
	struct cl_ratls_issue_opts io = {0};
	struct cl_ratls_proxy_opts po = {0};
	struct cl_ratls_proxy *p = NULL;
	const char *ready = NULL;
	char *end = NULL;
	int c = 0, r = 0, want_check = 0, ret = EXIT_USAGE;
	long ttl = 3600;

	optind = 1;
	opterr = 0;
	po.mode = CL_RATLS_CONNECT;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case OPT_LISTEN:
			po.listen = optarg;
			break;
		case OPT_SERVER:
			po.target = optarg;
			break;
		case OPT_FRESH:
			po.fresh = 1;
			break;
		case OPT_CHECK:
			want_check = 1;
			break;
		case OPT_ALLOW_WARNING:
			ro.allow_warning = 1;
			break;
		case OPT_CACHE_TTL:
			ttl = strtol(optarg, &end, 10);
			if (!*optarg || *end || ttl < 0 || ttl > 7L * 86400) {
				fprintf(stderr,
					"cloister connect: --cache-ttl must be 0 to 604800\n");
				goto out;
			}
			break;
		case OPT_CLIENT_ATTEST:
			po.client_cert = 1;
			break;
		case OPT_ATTESTER:
			if (cl_attest_kind_parse(optarg, &cfg.kind) != CL_OK) {
				fprintf(stderr, "cloister connect: %s\n", cl_error_detail());
				goto out;
			}
			break;
		case OPT_READY:
			ready = optarg;
			break;
		default:
			r = ratls_limit_opt(c - OPT_LIMITS_FIRST, optarg, "connect", &po);
			if (r < 0)
				goto out;
			if (r > 0)
				break;
			r = verifier_opts_handle(&vo, c, optarg);
			if (r > 0)
				break;
			if (r < 0)
				fprintf(stderr, "cloister connect: %s\n", cl_error_detail());
			else
				fprintf(stderr,
					"cloister connect: unknown or incomplete option '%s'\n",
					argv[optind - 1]);
			usage(stderr);
			goto out;
		}
	}
	if (optind != argc || !po.target || (!po.listen && !want_check)) {
		fprintf(stderr,
			"cloister connect: --server and --listen (or --check) are required\n");
		usage(stderr);
		goto out;
	}
	if (verifier_opts_load(&vo) != CL_OK) {
		fprintf(stderr, "cloister connect: %s\n", cl_error_detail());
		goto out;
	}
	ro.verify = vo.verify;
	ro.policy = vo.policy;
	ro.rv = vo.rv;
	ro.cache_ttl = ttl ? ttl : -1;
	if (cl_ratls_verifier_new(&ro, &ver) != CL_OK) {
		fprintf(stderr, "cloister connect: %s\n", cl_error_detail());
		goto out;
	}
	po.verifier = ver;
	if (want_check) {
		ret = check(&po);
		goto out;
	}
	ret = EXIT_REJECTED;
	if (po.client_cert) {
		if (cl_attest_open(&cfg, &att) != CL_OK) {
			fprintf(stderr, "cloister connect: %s\n", cl_error_detail());
			goto out;
		}
		io.attest = cl_ratls_attester_fn;
		io.attest_arg = att;
		po.issue = &io;
	}
	if (cl_ratls_proxy_new(&po, &p) != CL_OK) {
		fprintf(stderr, "cloister connect: %s\n", cl_error_detail());
		goto out;
	}
	cl_log_info("connect: plaintext on %s, attested TLS to %s", cl_ratls_proxy_addr(p),
		    po.target);
	if (ratls_write_ready(ready, cl_ratls_proxy_addr(p)) != 0) {
		fprintf(stderr, "cloister connect: cannot write %s\n", ready);
		goto out;
	}
	if (cl_ratls_proxy_run(p, 1) != CL_OK) {
		fprintf(stderr, "cloister connect: %s\n", cl_error_detail());
		goto out;
	}
	ret = 0;
out:
	cl_ratls_proxy_free(p);
	cl_ratls_verifier_free(ver);
	cl_attest_close(att);
	verifier_opts_free(&vo);
	cl_policy_thread_release();
	return ret;
}
