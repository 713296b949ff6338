#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cloister/ratls.h"
#include "ratls_limits.h"
#include "verifier_opts.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: cloister serve --listen ADDR --upstream HOST:PORT [options]\n"
		"\n"
		"Run inside a TEE: terminate attested TLS on ADDR and forward the plaintext to a\n"
		"local upstream (an inference server, a database). The certificate is a fresh\n"
		"P-256 key with this TEE's evidence over it (CCC RA-TLS extension 2.23.133.5.4.9\n"
		"and a CMW collection 1.3.6.1.5.5.7.1.35), re-issued before it expires.\n"
		"GET %s?nonce=HEX, sent first on a\n"
		"connection, answers with evidence over the nonce and the connection's key.\n"
		"Stops on SIGINT/SIGTERM after open connections drain.\n"
		"\n"
		"options:\n"
		"  --listen ADDR         HOST:PORT to accept TLS on (required)\n"
		"  --upstream HOST:PORT  where plaintext goes (required)\n"
		"  --cert-ttl SECONDS    certificate lifetime (default 3600, at least 30)\n"
		"  --dns NAME            subjectAltName DNS name for the certificate\n"
		"  --hash ALG            sha256, sha384 (default) or sha512 for pubkey-hash and\n"
		"                        REPORT_DATA\n"
		"  --attester KIND       auto (default), devtee, tsm, sev-guest, gramine\n"
		"  --require-client-attestation\n"
		"                        clients must present attested certificates, verified\n"
		"                        with the verifier options below\n"
		"  --allow-warning       accept clients appraised \"warning\", not only "
		"\"affirming\"\n"
		"  --ready-file FILE     write the bound HOST:PORT there once "
		"serving\n" RATLS_LIMITS_HELP VERIFIER_OPTS_HELP
		"  -h, --help            show this help\n",
		CL_RATLS_FRESH_PATH);
}

enum {
	OPT_LISTEN = 256,
	OPT_UPSTREAM,
	OPT_CERT_TTL,
	OPT_DNS,
	OPT_HASH,
	OPT_ATTESTER,
	OPT_REQUIRE,
	OPT_ALLOW_WARNING,
	OPT_READY,
	OPT_LIMITS_FIRST, /* see ratls_limit_opt */
};

static const struct option longopts[] = {
	{"listen", required_argument, NULL, OPT_LISTEN},
	{"upstream", required_argument, NULL, OPT_UPSTREAM},
	{"cert-ttl", required_argument, NULL, OPT_CERT_TTL},
	{"dns", required_argument, NULL, OPT_DNS},
	{"hash", required_argument, NULL, OPT_HASH},
	{"attester", required_argument, NULL, OPT_ATTESTER},
	{"require-client-attestation", no_argument, NULL, OPT_REQUIRE},
	{"allow-warning", no_argument, NULL, OPT_ALLOW_WARNING},
	{"ready-file", required_argument, NULL, OPT_READY},
	RATLS_LIMITS_LONGOPTS(OPT_LIMITS_FIRST),
	VERIFIER_LONGOPTS,
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

int ratls_limit_opt(int which, const char *arg, const char *cmd, struct cl_ratls_proxy_opts *po)
{
	static const struct {
		const char *name;
		long min, max;
	} lim[] = {
		{"--max-connections", 1, 1000000},
		{"--max-connections-per-client", 0, 1000000},
		{"--handshake-timeout", 1, 3600},
		{"--idle-timeout", 0, 7L * 86400},
	};
	char *end = NULL;
	long v = 0;

	if (which < 0 || which > 3)
		return 0;
	v = strtol(arg, &end, 10);
	if (!*arg || *end || v < lim[which].min || v > lim[which].max) {
		fprintf(stderr, "cloister %s: %s must be %ld to %ld\n", cmd, lim[which].name,
			lim[which].min, lim[which].max);
		return -1;
	}
	switch (which) {
	case 0:
		po->max_conns = (int)v;
		break;
	case 1:
		po->max_conns_per_addr = v ? (int)v : -1;
		break;
	case 2:
		po->handshake_secs = v;
		break;
	default:
		po->idle_secs = v ? v : -1;
		break;
	}
	return 1;
}

/* Atomically, so a watcher never reads half an address. */
int ratls_write_ready(const char *path, const char *addr);
int ratls_write_ready(const char *path, const char *addr)
{
	char tmp[4096];
	FILE *f = NULL;

	if (!path)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%s\n", addr) < 0 || fclose(f) != 0 || rename(tmp, path) != 0)
		return -1;
	return 0;
}

int cmd_ratls_serve(int argc, char **argv)
{
	struct verifier_opts vo = {0};
	struct cl_ratls_verifier_opts ro = {0};
	struct cl_ratls_verifier *ver = NULL;
	struct cl_attest_config cfg = CL_ATTEST_CONFIG_INIT;
	struct cl_attester *att = NULL;
	struct cl_ratls_issue_opts io = {0};
	struct cl_ratls_proxy_opts po = {0};
	struct cl_ratls_proxy *p = NULL;
	const char *dns[2] = {NULL, NULL}, *ready = NULL;
	char *end = NULL;
	int c = 0, r = 0, require = 0, ret = EXIT_USAGE;
	long ttl = 3600;

	optind = 1;
	opterr = 0;
	po.mode = CL_RATLS_SERVE;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case OPT_LISTEN:
			po.listen = optarg;
			break;
		case OPT_UPSTREAM:
			po.target = optarg;
			break;
		case OPT_CERT_TTL:
			ttl = strtol(optarg, &end, 10);
			if (!*optarg || *end || ttl < 30 || ttl > 366L * 86400) {
				fprintf(stderr,
					"cloister serve: --cert-ttl must be 30 s to a year\n");
				goto out;
			}
			break;
		case OPT_DNS:
			dns[0] = optarg;
			break;
		case OPT_HASH:
			if (strcmp(optarg, "sha256") == 0)
				io.hash = CL_SHA256;
			else if (strcmp(optarg, "sha384") == 0)
				io.hash = CL_SHA384;
			else if (strcmp(optarg, "sha512") == 0)
				io.hash = CL_SHA512;
			else {
				fprintf(stderr,
					"cloister serve: --hash is sha256, sha384 or sha512\n");
				goto out;
			}
			break;
		case OPT_ATTESTER:
			if (cl_attest_kind_parse(optarg, &cfg.kind) != CL_OK) {
				fprintf(stderr, "cloister serve: %s\n", cl_error_detail());
				goto out;
			}
			break;
		case OPT_REQUIRE:
			require = 1;
			break;
		case OPT_ALLOW_WARNING:
			ro.allow_warning = 1;
			break;
		case OPT_READY:
			ready = optarg;
			break;
		default:
			r = ratls_limit_opt(c - OPT_LIMITS_FIRST, optarg, "serve", &po);
			if (r < 0)
				goto out;
			if (r > 0)
				break;
			r = verifier_opts_handle(&vo, c, optarg);
			if (r > 0)
				break;
			if (r < 0)
				fprintf(stderr, "cloister serve: %s\n", cl_error_detail());
			else
				fprintf(stderr,
					"cloister serve: unknown or incomplete option '%s'\n",
					argv[optind - 1]);
			usage(stderr);
			goto out;
		}
	}
	if (optind != argc || !po.listen || !po.target) {
		fprintf(stderr,
			"cloister serve: --listen and --upstream are required; no operands\n");
		usage(stderr);
		goto out;
	}
	if (verifier_opts_load(&vo) != CL_OK) {
		fprintf(stderr, "cloister serve: %s\n", cl_error_detail());
		goto out;
	}
	ret = EXIT_REJECTED;
	if (cl_attest_open(&cfg, &att) != CL_OK) {
		fprintf(stderr, "cloister serve: %s\n", cl_error_detail());
		goto out;
	}
	io.attest = cl_ratls_attester_fn;
	io.attest_arg = att;
	io.ttl = ttl;
	io.dns = dns[0] ? dns : NULL;
	po.issue = &io;
	if (require) {
		ro.verify = vo.verify;
		ro.policy = vo.policy;
		ro.rv = vo.rv;
		if (cl_ratls_verifier_new(&ro, &ver) != CL_OK) {
			fprintf(stderr, "cloister serve: %s\n", cl_error_detail());
			goto out;
		}
		po.verifier = ver;
	}
	if (cl_ratls_proxy_new(&po, &p) != CL_OK) {
		fprintf(stderr, "cloister serve: %s\n", cl_error_detail());
		goto out;
	}
	cl_log_info("serve: attested TLS on %s, upstream %s", cl_ratls_proxy_addr(p), po.target);
	if (ratls_write_ready(ready, cl_ratls_proxy_addr(p)) != 0) {
		fprintf(stderr, "cloister serve: cannot write %s\n", ready);
		goto out;
	}
	if (cl_ratls_proxy_run(p, 1) != CL_OK) {
		fprintf(stderr, "cloister serve: %s\n", cl_error_detail());
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
