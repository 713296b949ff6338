#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "cli.h"
#include "cloister/kbs.h"
#include "verifier_opts.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: cloister kbs serve --listen ADDR [--state DIR] [--store "
		   "sqlite:PATH|postgres://...]\n"
		   "                          [--kek-file F] [--token-key K] "
		   "[--admin-pubkey P]\n"
		   "                          [--tls-cert C --tls-key K] [--devtee-root "
		   "PEM]\n"
		   "                          [--session-ttl S] [--token-ttl S] [--threads "
		   "N]\n"
		   "                          [--rate-limit R] [--max-sessions N] [verifier "
		   "options]\n"
		   "                          [--max-connections N] "
		   "[--max-connections-per-client N]\n"
		   "                          [--request-timeout S] [--idle-timeout S]\n"
		   "       cloister kbs admin --kbs URL --admin-key KEY [--role ROLE] "
		   "[--cacert F] COMMAND\n"
		   "           put-resource REPO/TYPE/TAG FILE\n"
		   "           set-policy [--resource REPO[/TYPE/TAG]] POLICY.lua\n"
		   "           set-reference-values RV.json\n"
		   "           audit [--since RFC3339]\n"
		   "       cloister kbs audit [--state DIR | --store URL] [--since "
		   "RFC3339]\n"
		   "\n"
		   "Key broker service speaking Trustee's KBS protocol 0.1.1 (see "
		   "docs/kbs.md).\n"
		   "\n"
		   "serve options:\n"
		   "  --listen ADDR       HOST:PORT to listen on (e.g. 127.0.0.1:8080)\n"
		   "  --state DIR         keys generated on first start (default "
		   "./kbs-state)\n"
		   "  --store URL         sqlite:PATH (default sqlite:DIR/kbs.db) or "
		   "postgres://...\n"
		   "  --kek-file F        key-encryption key (default DIR/kek)\n"
		   "  --token-key K       EAR signing key, EC P-256/P-384 PEM (default "
		   "DIR/token.key)\n"
		   "  --admin-pubkey P    admin JWT key, Ed25519 or P-256 PEM (default "
		   "DIR/admin.pub)\n"
		   "  --tls-cert/--tls-key  serve HTTPS\n"
		   "  --session-ttl S     session lifetime in seconds (default 300)\n"
		   "  --token-ttl S       EAR lifetime in seconds (default 300)\n"
		   "  --threads N         worker threads, 1..32 (default: 4 per CPU)\n"
		   "  --rate-limit R      requests per second per client IP (default 200; 0 "
		   "= off)\n"
		   "  --max-sessions N    live sessions in the store at most; beyond, auth\n"
		   "                      answers 503 TooManySessions (default 100000; 0 = no "
		   "cap)\n"
		   "  --max-connections N open connections at most (default 1024, fewer when "
		   "the\n"
		   "                      descriptor limit cannot hold them); more are closed "
		   "at once\n"
		   "  --max-connections-per-client N\n"
		   "                      open connections from one address at most (default "
		   "128;\n"
		   "                      0 = no cap)\n"
		   "  --request-timeout S a request, head and body, must arrive within S "
		   "seconds of\n"
		   "                      the connection opening or the previous response "
		   "(default 10)\n"
		   "  --idle-timeout S    a read or write that makes no progress for S seconds "
		   "closes\n"
		   "                      the connection (default 30)\n" VERIFIER_OPTS_HELP "\n"
		   "admin options:\n"
		   "  --kbs URL           the KBS base URL\n"
		   "  --admin-key KEY     admin private key PEM (Ed25519 or P-256)\n"
		   "  --role ROLE         role claimed in the admin token (default admin)\n"
		   "  --cacert F          CA bundle for an https KBS\n"
		   "\n"
		   "Exit status: 0 success, 1 refused or failed, 2 usage.\n");
}

enum {
	OPT_LISTEN = 256,
	OPT_STATE,
	OPT_STORE,
	OPT_KEK,
	OPT_TOKEN_KEY,
	OPT_ADMIN_PUB,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_SESSION_TTL,
	OPT_TOKEN_TTL,
	OPT_THREADS,
	OPT_RATE,
	OPT_KBS,
	OPT_ADMIN_KEY,
	OPT_ROLE,
	OPT_CACERT,
	OPT_RESOURCE,
	OPT_SINCE,
	OPT_MAX_SESSIONS,
	OPT_MAX_CONNS,
	OPT_MAX_CONNS_ADDR,
	OPT_REQ_TIMEOUT,
	OPT_IDLE_TIMEOUT,
};

static const struct option serve_opts[] = {
	{"listen", required_argument, NULL, OPT_LISTEN},
	{"state", required_argument, NULL, OPT_STATE},
	{"store", required_argument, NULL, OPT_STORE},
	{"kek-file", required_argument, NULL, OPT_KEK},
	{"token-key", required_argument, NULL, OPT_TOKEN_KEY},
	{"admin-pubkey", required_argument, NULL, OPT_ADMIN_PUB},
	{"tls-cert", required_argument, NULL, OPT_TLS_CERT},
	{"tls-key", required_argument, NULL, OPT_TLS_KEY},
	{"session-ttl", required_argument, NULL, OPT_SESSION_TTL},
	{"token-ttl", required_argument, NULL, OPT_TOKEN_TTL},
	{"threads", required_argument, NULL, OPT_THREADS},
	{"rate-limit", required_argument, NULL, OPT_RATE},
	{"max-sessions", required_argument, NULL, OPT_MAX_SESSIONS},
	{"max-connections", required_argument, NULL, OPT_MAX_CONNS},
	{"max-connections-per-client", required_argument, NULL, OPT_MAX_CONNS_ADDR},
	{"request-timeout", required_argument, NULL, OPT_REQ_TIMEOUT},
	{"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
	{"help", no_argument, NULL, 'h'},
	VERIFIER_LONGOPTS,
	{NULL, 0, NULL, 0},
};

static int bad(const char *what)
{
	fprintf(stderr, "cloister kbs: %s\n", what);
	return EXIT_USAGE;
}

static int num_arg(const char *s, long lo, long hi, long *out)
{
	char *end = NULL;
	long v = strtol(s, &end, 10);

	if (!*s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static char *state_path(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static int cmd_serve(int argc, char **argv)
{
	struct cl_kbs_config cfg = {0};
	struct verifier_opts vo = {0};
	uint8_t *kek_mem = NULL;
	const char *state = "./kbs-state", *store = NULL, *kek = NULL, *tkey = NULL, *apub = NULL;
	char *p_store = NULL, *p_kek = NULL, *p_tkey = NULL, *p_apub = NULL;
	long v = 0;
	int c = 0, rc = EXIT_USAGE;

	cfg.rate_limit = 200;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", serve_opts, NULL)) != -1) {
		int h = verifier_opts_handle(&vo, c, optarg);

		if (h < 0) {
			fprintf(stderr, "cloister kbs: %s\n", cl_error_detail());
			goto out;
		}
		if (h > 0)
			continue;
		switch (c) {
		case 'h':
			usage(stdout);
			rc = 0;
			goto out;
		case OPT_LISTEN:
			cfg.listen = optarg;
			break;
		case OPT_STATE:
			state = optarg;
			break;
		case OPT_STORE:
			store = optarg;
			break;
		case OPT_KEK:
			kek = optarg;
			break;
		case OPT_TOKEN_KEY:
			tkey = optarg;
			break;
		case OPT_ADMIN_PUB:
			apub = optarg;
			break;
		case OPT_TLS_CERT:
			cfg.tls_cert = optarg;
			break;
		case OPT_TLS_KEY:
			cfg.tls_key = optarg;
			break;
		case OPT_SESSION_TTL:
		case OPT_TOKEN_TTL:
			if (num_arg(optarg, 1, 86400, &v) != 0) {
				rc = bad("TTL must be 1..86400 seconds");
				goto out;
			}
			if (c == OPT_SESSION_TTL)
				cfg.session_ttl = v;
			else
				cfg.token_ttl = v;
			break;
		case OPT_THREADS:
			if (num_arg(optarg, 1, 32, &v) != 0) {
				rc = bad("--threads must be 1..32");
				goto out;
			}
			cfg.threads = (int)v;
			break;
		case OPT_RATE:
			if (num_arg(optarg, 0, 10000000, &v) != 0) {
				rc = bad("--rate-limit must be a number of requests per second");
				goto out;
			}
			cfg.rate_limit = (double)v;
			break;
		case OPT_MAX_SESSIONS:
			if (num_arg(optarg, 0, 100000000, &v) != 0) {
				rc = bad("--max-sessions must be 0..100000000");
				goto out;
			}
			cfg.max_sessions = v ? v : -1;
			break;
		case OPT_MAX_CONNS:
			if (num_arg(optarg, 1, 1000000, &v) != 0) {
				rc = bad("--max-connections must be 1..1000000");
				goto out;
			}
			cfg.max_conns = (int)v;
			break;
		case OPT_MAX_CONNS_ADDR:
			if (num_arg(optarg, 0, 1000000, &v) != 0) {
				rc = bad("--max-connections-per-client must be 0..1000000");
				goto out;
			}
			cfg.max_conns_per_addr = v ? (int)v : -1;
			break;
		case OPT_REQ_TIMEOUT:
		case OPT_IDLE_TIMEOUT:
			if (num_arg(optarg, 1, 3600, &v) != 0) {
				rc = bad("timeouts must be 1..3600 seconds");
				goto out;
			}
			if (c == OPT_REQ_TIMEOUT)
				cfg.request_timeout = v;
			else
				cfg.idle_timeout = v;
			break;
		default:
			usage(stderr);
			goto out;
		}
	}
	if (optind != argc || !cfg.listen) {
		fprintf(stderr, "cloister kbs serve: --listen is required\n\n");
		usage(stderr);
		goto out;
	}
	rc = 1;
	/* Before any key is loaded: no core dumps, and keys in the secure heap. */
	if (cl_kbs_process_harden() != CL_OK) {
		fprintf(stderr, "cloister kbs: %s\n", cl_error_detail());
		goto out;
	}
	/* The store file and anything else created here holds sealed secrets and
   * sessions. */
	umask(077);
	if (cl_kbs_state_init(state) != CL_OK || verifier_opts_load(&vo) != CL_OK) {
		fprintf(stderr, "cloister kbs: %s\n", cl_error_detail());
		goto out;
	}
	p_store = state_path(state, "kbs.db");
	p_kek = state_path(state, "kek");
	p_tkey = state_path(state, "token.key");
	p_apub = state_path(state, "admin.pub");
	if (!p_store || !p_kek || !p_tkey || !p_apub)
		goto out;
	if (!store) {
		size_t n = strlen(p_store) + 8;
		char *s = malloc(n);

		if (!s)
			goto out;
		snprintf(s, n, "sqlite:%s", p_store);
		free(p_store);
		p_store = s;
		store = p_store;
	}
	cfg.store_url = store;
	cfg.verify = vo.verify;
	cfg.attest_policy = vo.policy;
	cfg.refvalues = vo.rv;
	kek_mem = OPENSSL_secure_zalloc(CL_KBS_KEK_LEN);
	if (!kek_mem)
		goto out;
	cfg.kek_ref = kek_mem;
	if (cl_kbs_kek_load(kek ? kek : p_kek, kek_mem) != CL_OK ||
	    cl_ear_key_load(tkey ? tkey : p_tkey, &cfg.token_key) != CL_OK ||
	    cl_kbs_admin_key_load(apub ? apub : p_apub, &cfg.admin_key) != CL_OK) {
		fprintf(stderr, "cloister kbs: %s\n", cl_error_detail());
		goto out;
	}
	if (cl_kbs_serve(&cfg) != CL_OK) {
		fprintf(stderr, "cloister kbs: %s\n", cl_error_detail());
		goto out;
	}
	rc = 0;
out:
	cl_zeroize(cfg.kek, sizeof(cfg.kek));
	OPENSSL_secure_clear_free(kek_mem, CL_KBS_KEK_LEN);
	cl_ear_key_free(cfg.token_key);
	cl_kbs_admin_key_free(cfg.admin_key);
	verifier_opts_free(&vo);
	free(p_store);
	free(p_kek);
	free(p_tkey);
	free(p_apub);
	return rc;
}

/* ----------------------------------------------------------------- admin */

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	return cl_buf_append(ud, p, sz * n) == CL_OK ? sz * n : 0;
}

static int admin_call(const char *base, const char *path, const char *token, const char *cacert,
		      const uint8_t *body, size_t len, const char *ctype, struct cl_buf *resp,
		      long *status)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char url[2048], auth[8300], ct[128];
	CURLcode e;

	if (!c)
		return -1;
	snprintf(url, sizeof(url), "%s%s", base, path);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	h = curl_slist_append(h, auth);
	if (ctype) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
		h = curl_slist_append(h, ct);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	if (cacert)
		curl_easy_setopt(c, CURLOPT_CAINFO, cacert);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
	}
	e = curl_easy_perform(c);
	if (e == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	else
		fprintf(stderr, "cloister kbs admin: %s: %s\n", url, curl_easy_strerror(e));
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return e == CURLE_OK ? 0 : -1;
}

static const struct option admin_opts[] = {
	{"kbs", required_argument, NULL, OPT_KBS},
	{"admin-key", required_argument, NULL, OPT_ADMIN_KEY},
	{"role", required_argument, NULL, OPT_ROLE},
	{"cacert", required_argument, NULL, OPT_CACERT},
	{"resource", required_argument, NULL, OPT_RESOURCE},
	{"since", required_argument, NULL, OPT_SINCE},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static int cmd_admin(int argc, char **argv)
{
	const char *kbs = NULL, *key = NULL, *role = "admin", *cacert = NULL, *scope = NULL,
		   *since = NULL, *sub = NULL;
	struct cl_buf file = {0}, resp = {0};
	char *jwt = NULL, path[512];
	long status = 0;
	int64_t t = 0;
	int c = 0, rc = EXIT_USAGE;

	optind = 1;
	/* Options may come before or after the subcommand. */
	while ((c = getopt_long(argc, argv, "h", admin_opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case OPT_KBS:
			kbs = optarg;
			break;
		case OPT_ADMIN_KEY:
			key = optarg;
			break;
		case OPT_ROLE:
			role = optarg;
			break;
		case OPT_CACERT:
			cacert = optarg;
			break;
		case OPT_RESOURCE:
			scope = optarg;
			break;
		case OPT_SINCE:
			since = optarg;
			break;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc || !kbs || !key) {
		fprintf(stderr, "cloister kbs admin: --kbs, --admin-key and a command are "
				"required\n\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	sub = argv[optind++];
	if (since && cl_time_parse(since, &t) != CL_OK)
		return bad("--since must be an RFC 3339 time");
	if (cl_kbs_admin_sign(key, role, 300, &jwt) != CL_OK) {
		fprintf(stderr, "cloister kbs admin: %s\n", cl_error_detail());
		return 1;
	}
	if (strcmp(sub, "put-resource") == 0 && argc - optind == 2) {
		if (cl_kbs_resource_path_check(argv[optind], strlen(argv[optind])) != CL_OK) {
			rc = bad(cl_error_detail());
			goto out;
		}
		snprintf(path, sizeof(path), "/kbs/v0/resource/%s", argv[optind]);
		if (cl_read_file(argv[optind + 1], CL_MAX_KBS_RESOURCE, &file) != CL_OK)
			goto io;
		rc = admin_call(kbs, path, jwt, cacert, file.data, file.len,
				"application/octet-stream", &resp, &status);
	} else if (strcmp(sub, "set-policy") == 0 && argc - optind == 1) {
		char q[400];

		if (cl_read_file(argv[optind], CL_MAX_POLICY_TEXT, &file) != CL_OK)
			goto io;
		if (scope)
			snprintf(q, sizeof(q), "/kbs/v0/resource-policy?scope=%s", scope);
		rc = admin_call(kbs, scope ? q : "/kbs/v0/attestation-policy", jwt, cacert,
				file.data, file.len, "text/x-lua", &resp, &status);
	} else if (strcmp(sub, "set-resource-policy") == 0 && argc - optind == 1) {
		if (cl_read_file(argv[optind], CL_MAX_POLICY_TEXT, &file) != CL_OK)
			goto io;
		rc = admin_call(kbs, "/kbs/v0/resource-policy", jwt, cacert, file.data, file.len,
				"text/x-lua", &resp, &status);
	} else if (strcmp(sub, "set-reference-values") == 0 && argc - optind == 1) {
		if (cl_read_file(argv[optind], CL_MAX_REFVALUES_FILE, &file) != CL_OK)
			goto io;
		rc = admin_call(kbs, "/kbs/v0/reference-values", jwt, cacert, file.data, file.len,
				"application/json", &resp, &status);
	} else if (strcmp(sub, "audit") == 0 && argc == optind) {
		char ts[21];

		cl_time_format(t, ts);
		snprintf(path, sizeof(path), "/kbs/v0/audit%s%s", since ? "?since=" : "",
			 since ? ts : "");
		rc = admin_call(kbs, path, jwt, cacert, NULL, 0, NULL, &resp, &status);
	} else {
		fprintf(stderr, "cloister kbs admin: unknown command or wrong arguments: %s\n\n",
			sub);
		usage(stderr);
		rc = EXIT_USAGE;
		goto out;
	}
	if (rc != 0) {
		rc = 1;
		goto out;
	}
	if (resp.len)
		printf("%.*s\n", (int)resp.len, (const char *)resp.data);
	rc = status == 200 ? 0 : 1;
	goto out;
io:
	fprintf(stderr, "cloister kbs admin: %s\n", cl_error_detail());
	rc = EXIT_USAGE;
out:
	cl_buf_free(&file);
	cl_buf_free(&resp);
	free(jwt);
	return rc;
}

/* ------------------------------------------------------------ local audit */

static int cmd_audit(int argc, char **argv)
{
	const char *state = "./kbs-state", *store = NULL, *since = NULL;
	struct cl_kbs_store *st = NULL;
	json_t *list = NULL;
	char *s = NULL, dbp[4200];
	int64_t t = 0;
	int c = 0, rc = EXIT_USAGE;
	static const struct option o[] = {
		{"state", required_argument, NULL, OPT_STATE},
		{"store", required_argument, NULL, OPT_STORE},
		{"since", required_argument, NULL, OPT_SINCE},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", o, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		if (c == OPT_STATE)
			state = optarg;
		else if (c == OPT_STORE)
			store = optarg;
		else if (c == OPT_SINCE)
			since = optarg;
		else {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (since && cl_time_parse(since, &t) != CL_OK)
		return bad("--since must be an RFC 3339 time");
	snprintf(dbp, sizeof(dbp), "sqlite:%s/kbs.db", state);
	if (!store) {
		struct stat sb;

		if (stat(dbp + 7, &sb) != 0)
			return bad("no store: give --store or a --state directory with kbs.db");
		store = dbp;
	}
	rc = 1;
	if (cl_kbs_store_open(store, &st) != CL_OK ||
	    cl_kbs_store_audit_list(st, t, &list) != CL_OK) {
		fprintf(stderr, "cloister kbs audit: %s\n", cl_error_detail());
		goto out;
	}
	s = json_dumps(list, JSON_INDENT(2));
	if (s)
		printf("%s\n", s);
	rc = s ? 0 : 1;
out:
	free(s);
	json_decref(list);
	cl_kbs_store_close(st);
	return rc;
}

int cmd_kbs(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
		{"serve", cmd_serve},
		{"admin", cmd_admin},
		{"audit", cmd_audit},
	};

	return cli_dispatch("kbs", argc, argv, subs, sizeof(subs) / sizeof(subs[0]), usage);
}
