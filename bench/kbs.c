/*
 * Full RCAR flows per second against a KBS on loopback (SQLite store): N
 * client threads each run auth -> attest (a dev-TEE report over the runtime
 * data) -> resource -> JWE decrypt, over keep-alive HTTP. Printed beside the
 * crypto floor of one flow, measured in the same run: what the server must
 * compute whatever its design (report signature check, EAR sign and verify,
 * ECDH-ES key wrap, AES-GCM unseal and encrypt).
 *
 * Clients and server share this machine's CPUs, and every flow costs the
 * client a P-384 report signature (the dev TEE's part), so the server's CPU
 * per flow is measured too (from /proc) and printed as the rate the server
 * alone could sustain on one and on two cores.
 *
 *   build/bench/kbs [CLIENTS] [SECONDS] [SERVER_THREADS (0: the server's
 *   default)]
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jose/jose.h>
#include <openssl/evp.h>

#include "cloister/devtee.h"
#include "cloister/kbs.h"

static char dir[] = "/tmp/kbs-bench-XXXXXX";
static char base[340];
static EVP_PKEY *root_key;
static double deadline;

struct cl {
	int flows, errors;
	double *lat;
	size_t nlat, cap;
};

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
	return cl_buf_append(ud, p, s * n) == CL_OK ? s * n : 0;
}

static long req(CURL *c, const char *path, const char *body, struct cl_buf *out)
{
	char url[400];
	long st = 0;

	cl_buf_free(out);
	snprintf(url, sizeof(url), "%s%s", base, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	} else {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	}
	if (curl_easy_perform(c) != CURLE_OK)
		return -1;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
	return st;
}

static int flow(CURL *c)
{
	struct cl_buf r = {0};
	json_t *ch = NULL, *key = json_pack("{s:s, s:s}", "kty", "EC", "crv", "P-256"), *pub = NULL;
	json_t *rd = NULL, *body = NULL, *jwe = NULL;
	struct cl_devtee_report dr = {0};
	uint8_t rep[CL_DEVTEE_REPORT_LEN], h[64], *pt = NULL;
	char *b64 = NULL, *s = NULL;
	size_t n = 0;
	int ok = 0;

	if (req(c, "/kbs/v0/auth",
		"{\"version\":\"0.1.1\",\"tee\":\"devtee\",\"extra-params\":\"\"}", &r) != 200)
		goto out;
	ch = json_loadb((const char *)r.data, r.len, 0, NULL);
	if (!jose_jwk_gen(NULL, key) || !(pub = json_deep_copy(key)) || !jose_jwk_pub(NULL, pub))
		goto out;
	json_object_set_new(pub, "alg", json_string("ECDH-ES+A256KW"));
	rd = json_pack("{s:O, s:O}", "nonce", json_object_get(ch, "nonce"), "tee-pubkey", pub);
	if (cl_kbs_runtime_data_hash(rd, h) != CL_OK)
		goto out;
	dr.version = CL_DEVTEE_VERSION;
	memset(dr.measurement, 0x42, sizeof(dr.measurement));
	memcpy(dr.report_data, h, 64);
	if (cl_devtee_report_sign(&dr, root_key, rep) != CL_OK)
		goto out;
	b64 = cl_base64_encode(rep, sizeof(rep));
	body = json_pack("{s:O, s:{s:s}}", "runtime-data", rd, "tee-evidence", "report", b64);
	s = json_dumps(body, JSON_COMPACT);
	if (req(c, "/kbs/v0/attest", s, &r) != 200)
		goto out;
	if (req(c, "/kbs/v0/resource/bench/key/1", NULL, &r) != 200)
		goto out;
	jwe = json_loadb((const char *)r.data, r.len, 0, NULL);
	ok = cl_kbs_jwe_decrypt(key, jwe, &pt, &n) == CL_OK && n == 32;
out:
	free(pt);
	free(s);
	free(b64);
	json_decref(jwe);
	json_decref(body);
	json_decref(rd);
	json_decref(pub);
	json_decref(key);
	json_decref(ch);
	cl_buf_free(&r);
	return ok;
}

static void *client(void *arg)
{
	struct cl *st = arg;
	CURL *c = curl_easy_init();

	curl_easy_setopt(c, CURLOPT_COOKIEFILE, "");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	while (now() < deadline) {
		double t0 = now();

		if (!flow(c)) {
			st->errors++;
			continue;
		}
		st->flows++;
		if (st->nlat == st->cap) {
			st->cap = st->cap ? 2 * st->cap : 1024;
			st->lat = realloc(st->lat, st->cap * sizeof(double));
		}
		st->lat[st->nlat++] = now() - t0;
	}
	curl_easy_cleanup(c);
	return NULL;
}

/* CPU seconds a process has used so far (user + system). */
static double proc_cpu(pid_t pid)
{
	char path[64], buf[1024], *p = NULL;
	unsigned long long ut = 0, st = 0;
	FILE *f = NULL;
	size_t n = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* Fields 14 and 15, counted after the parenthesised command name. */
	if (!(p = strrchr(buf, ')')) ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* What the dev TEE spends signing one report (client side), one core. */
static double sign_us(void)
{
	struct cl_devtee_report dr = {0};
	uint8_t rep[CL_DEVTEE_REPORT_LEN];
	double t0 = now();
	int n = 0;

	dr.version = CL_DEVTEE_VERSION;
	for (n = 0; now() - t0 < 0.3; n++)
		if (cl_devtee_report_sign(&dr, root_key, rep) != CL_OK)
			return -1;
	return (now() - t0) * 1e6 / n;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Server-side crypto of one flow, single-threaded. */
static double floor_us(const struct cl_kbs_config *cfg, const char *rvjson)
{
	struct cl_devtee_report dr = {0};
	uint8_t rep[CL_DEVTEE_REPORT_LEN], kek[32] = {1}, secret[32] = {2};
	struct cl_verify_opts vo = cfg->verify;
	struct cl_appraisal ap = {0};
	struct cl_ear_submod sub = {"cpu0", &ap, NULL};
	json_t *key = json_pack("{s:s, s:s}", "kty", "EC", "crv", "P-256"), *pub = NULL,
	       *jwks = NULL;
	struct cl_buf sealed = {0};
	double t0 = 0;
	int n = 0;

	(void)rvjson;
	jose_jwk_gen(NULL, key);
	pub = json_deep_copy(key);
	jose_jwk_pub(NULL, pub);
	dr.version = CL_DEVTEE_VERSION;
	if (cl_devtee_report_sign(&dr, root_key, rep) != CL_OK ||
	    cl_kbs_seal(kek, "bench/key/1", secret, sizeof(secret), &sealed) != CL_OK)
		return -1;
	ap.status = CL_TIER_AFFIRMING;
	ap.vector[CL_TV_EXECUTABLES] = 2;
	snprintf(ap.policy_id, sizeof(ap.policy_id), "bench");
	jwks = cl_ear_key_jwks(cfg->token_key);
	vo.format = CL_FORMAT_DEVTEE;
	t0 = now();
	for (n = 0; now() - t0 < 1.0; n++) {
		struct cl_verify_result vr = {0};
		struct cl_buf p = {0};
		char *jwt = NULL;
		json_t *claims = NULL, *jwe = NULL;

		/* Report data is not checked here, so the evidence verifies; anything else
     * is a bug. */
		if (cl_verify_evidence(rep, sizeof(rep), &vo, &vr) != CL_OK ||
		    cl_ear_sign(cfg->token_key, &sub, 1, NULL, &jwt) != CL_OK ||
		    cl_ear_verify(jwks, jwt, strlen(jwt), 0, &claims) != CL_OK ||
		    cl_kbs_unseal(kek, "bench/key/1", sealed.data, sealed.len, &p) != CL_OK ||
		    cl_kbs_jwe_encrypt(pub, p.data, p.len, &jwe) != CL_OK) {
			fprintf(stderr, "bench floor: %s\n", cl_error_detail());
			return -1;
		}
		json_decref(jwe);
		json_decref(claims);
		free(jwt);
		cl_buf_free(&p);
		cl_verify_result_free(&vr);
	}
	t0 = (now() - t0) * 1e6 / n;
	cl_buf_free(&sealed);
	json_decref(jwks);
	json_decref(pub);
	json_decref(key);
	return t0;
}

int main(int argc, char **argv)
{
	int nclients = argc > 1 ? atoi(argv[1]) : 8;
	double secs = argc > 2 ? atof(argv[2]) : 3;
	int sthreads = argc > 3 ? atoi(argv[3]) : 0;
	struct cl_kbs_config cfg = {0};
	struct cl_kbs_store *st = NULL;
	struct cl_buf root = {0}, sealed = {0};
	char p[300], db[320], rv[400];
	uint8_t secret[32];
	pthread_t *t = NULL;
	struct cl *cs = NULL;
	double *all = NULL, fl = 0, el = 0, sg = 0, scpu = 0, ccpu = 0;
	size_t nall = 0;
	int flows = 0, errors = 0, port = 0;
	pid_t srv = -1;

	if (nclients < 1 || nclients > 256 || secs <= 0 || sthreads < 0 || sthreads > 32)
		return 2;
	if (!mkdtemp(dir) || cl_kbs_state_init(dir) != CL_OK)
		return 1;
	snprintf(p, sizeof(p), "%s/devtee", dir);
	mkdir(p, 0700);
	if (cl_devtee_root_load(p, &root_key, NULL) != CL_OK)
		return 1;
	snprintf(p, sizeof(p), "%s/devtee/root.pem", dir);
	if (cl_read_file(p, 0, &root) != CL_OK)
		return 1;
	snprintf(p, sizeof(p), "%s/token.key", dir);
	snprintf(db, sizeof(db), "sqlite:%s/kbs.db", dir);
	if (cl_ear_key_load(p, &cfg.token_key) != CL_OK)
		return 1;
	memset(cfg.kek, 5, sizeof(cfg.kek));
	memset(secret, 7, sizeof(secret));
	{
		char m[97];

		for (int i = 0; i < 96; i += 2)
			memcpy(m + i, "42", 2);
		m[96] = 0;
		snprintf(rv, sizeof(rv), "{\"devtee\":{\"measurement\":[\"%s\"]}}", m);
	}
	cfg.verify.devtee.root = (const char *)root.data;
	cfg.store_url = db;
	cfg.threads = sthreads;
	if (cl_kbs_store_open(db, &st) != CL_OK ||
	    cl_kbs_seal(cfg.kek, "bench/key/1", secret, sizeof(secret), &sealed) != CL_OK ||
	    cl_kbs_store_resource_put(st, "bench/key/1", sealed.data, sealed.len) != CL_OK ||
	    cl_kbs_store_policy_put(st, "refvalues", "", rv, strlen(rv)) != CL_OK) {
		fprintf(stderr, "bench: %s\n", cl_error_detail());
		return 1;
	}
	cl_kbs_store_close(st);
	port = 20000 + (int)(getpid() % 20000);
	snprintf(p, sizeof(p), "127.0.0.1:%d", port);
	snprintf(base, sizeof(base), "http://%s", p);
	cfg.listen = p;
	srv = fork();
	if (srv == 0) {
		cl_log_set_level(CL_LOG_ERROR);
		_exit(cl_kbs_serve(&cfg) == CL_OK ? 0 : 1);
	}
	usleep(300000);
	fl = floor_us(&cfg, rv);
	sg = sign_us();
	if (fl <= 0 || sg <= 0) {
		kill(srv, SIGTERM);
		return 1;
	}
	curl_global_init(CURL_GLOBAL_ALL);
	t = calloc((size_t)nclients, sizeof(*t));
	cs = calloc((size_t)nclients, sizeof(*cs));
	deadline = now() + secs;
	el = now();
	scpu = proc_cpu(srv);
	ccpu = self_cpu();
	for (int i = 0; i < nclients; i++)
		pthread_create(&t[i], NULL, client, &cs[i]);
	for (int i = 0; i < nclients; i++) {
		pthread_join(t[i], NULL);
		flows += cs[i].flows;
		errors += cs[i].errors;
	}
	el = now() - el;
	scpu = proc_cpu(srv) - scpu;
	ccpu = self_cpu() - ccpu;
	kill(srv, SIGTERM);
	waitpid(srv, NULL, 0);
	all = malloc(((size_t)flows + 1) * sizeof(double));
	for (int i = 0; i < nclients; i++) {
		memcpy(all + nall, cs[i].lat, cs[i].nlat * sizeof(double));
		nall += cs[i].nlat;
		free(cs[i].lat);
	}
	qsort(all, nall, sizeof(double), cmp);
	printf("kbs full RCAR flows (auth+attest+resource, dev-TEE evidence, SQLite "
	       "WAL synchronous=FULL)\n");
	printf("  %d clients, %d server threads%s, %ld CPUs shared by clients and "
	       "server, %.1f s\n",
	       nclients, sthreads, sthreads ? "" : " (auto)", sysconf(_SC_NPROCESSORS_ONLN), el);
	printf("  flows/s         %10.0f   end to end (%d flows, %d errors)\n", flows / el, flows,
	       errors);
	if (nall)
		printf("  latency         p50 %.2f ms  p99 %.2f ms\n", all[nall / 2] * 1e3,
		       all[(size_t)((double)nall * 0.99)] * 1e3);
	if (flows > 0 && scpu > 0) {
		double sf = scpu * 1e6 / flows, cf = ccpu * 1e6 / flows;

		printf("  server CPU      %10.1f us per flow = %.0f flows/s per core, "
		       "%.0f on 2 cores\n",
		       sf, 1e6 / sf, 2e6 / sf);
		printf("  client CPU      %10.1f us per flow (of which %.1f us signing the "
		       "P-384 dev-TEE report)\n",
		       cf, sg);
		printf("  crypto floor    %10.1f us per flow server side (report verify, "
		       "EAR sign+verify, unseal, JWE) = %.0f flows/s/core;"
		       " server CPU is %.2fx the floor\n",
		       fl, 1e6 / fl, sf / fl);
		printf("  crypto floor    %10.1f us per flow end to end (+ report signing) "
		       "= %.0f flows/s on 2 cores\n",
		       fl + sg, 2e6 / (fl + sg));
	}
	free(all);
	free(cs);
	free(t);
	cl_buf_free(&root);
	cl_buf_free(&sealed);
	cl_ear_key_free(cfg.token_key);
	EVP_PKEY_free(root_key);
	{
		char cmd[100];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			return 1;
	}
	return errors > flows / 100 ? 1 : 0;
}
