/*
 * The agent's full get-resource latency against a local KBS: one
 * cl_kbs_client_get_resource() call = auth -> attest (a real dev-TEE report
 * from the platform process, over the workload socket) -> resource -> JWE
 * decrypt, on a fresh connection and a fresh P-256 key, exactly as
 * `cloister agent get-resource` does. Printed beside its floor, measured in
 * the same run against the same server: three plain HTTP round trips on one
 * new connection (GET of a path the KBS answers 404), which any three-request
 * protocol on loopback pays whatever the crypto costs.
 *
 * Honest about the TEE: the measuring half runs as a real workload, under
 * `cloister devtee run` (the binary beside this one's folder), so every
 * report is signed by the platform for the launch measurement it took; the
 * KBS's reference values name that measurement, and the built-in resource
 * policy releases only to affirming EARs.
 *
 *   build/bench/agent [FLOWS]             (default 200; one flow at a time)
 */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cloister/attest.h"
#include "cloister/devtee.h"
#include "cloister/kbs.h"
#include "cloister/kbs_client.h"

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	size_t i = (size_t)((double)n * p);

	return v[i < n ? i : n - 1];
}

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return s * n;
}

/* Three GETs on one new connection: the floor of a three-request flow. */
static int floor_once(const char *base)
{
	CURL *c = curl_easy_init();
	char url[300];
	long st = 0;
	int ok = 1;

	if (!c)
		return 0;
	snprintf(url, sizeof(url), "%s/kbs/v0/bench-floor", base);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	for (int i = 0; i < 3 && ok; i++) {
		ok = curl_easy_perform(c) == CURLE_OK &&
		     curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st) == CURLE_OK && st == 404;
	}
	curl_easy_cleanup(c);
	return ok;
}

/* Inside the dev TEE: the measured flows and the floor, interleaved. */
static int inner(const char *base, int flows)
{
	struct cl_attester *a = NULL;
	struct cl_kbs_client_opts o = CL_KBS_CLIENT_OPTS_INIT;
	const char *urls[1] = {base};
	char tee[16] = "";
	double *lat = calloc((size_t)flows, sizeof(double)),
	       *fl = calloc((size_t)flows, sizeof(double));
	int errors = 0, rc = 1;

	if (!lat || !fl || cl_attest_open(NULL, &a) != CL_OK ||
	    cl_kbs_client_attester_tee(a, tee) != CL_OK) {
		fprintf(stderr, "bench agent: %s\n", cl_error_detail());
		goto out;
	}
	curl_global_init(CURL_GLOBAL_ALL);
	o.urls = urls;
	o.nurls = 1;
	o.attempts = 1;
	o.evidence = cl_kbs_client_attest_evidence;
	o.evidence_ctx = a;
	o.tee = tee;
	for (int i = -5; i < flows; i++) { /* five warm-up rounds */
		struct cl_buf s = {0};
		double t0 = now_ms(), t1 = 0;
		int ok = cl_kbs_client_get_resource(&o, "bench/key/1", &s) == CL_OK && s.len == 32;

		t1 = now_ms();
		cl_buf_free(&s);
		if (!ok) {
			if (errors++ == 0)
				fprintf(stderr, "bench agent: %s\n", cl_error_detail());
			continue;
		}
		ok = floor_once(base);
		if (i >= 0) {
			lat[i] = t1 - t0;
			fl[i] = now_ms() - t1;
		}
		if (!ok && errors++ == 0)
			fprintf(stderr, "bench agent: floor request failed\n");
	}
	if (errors) {
		fprintf(stderr, "bench agent: %d errors\n", errors);
		goto out;
	}
	qsort(lat, (size_t)flows, sizeof(double), cmp);
	qsort(fl, (size_t)flows, sizeof(double), cmp);
	printf("agent get-resource, full RCAR flow against a local KBS (SQLite), one at a time\n");
	printf("  (auth -> attest with a dev-TEE report from the platform -> resource -> JWE "
	       "decrypt)\n");
	printf("  %d flows, %ld CPUs on this machine\n", flows, sysconf(_SC_NPROCESSORS_ONLN));
	printf("  get-resource        p50 %7.3f ms   p99 %7.3f ms\n", pct(lat, (size_t)flows, 0.5),
	       pct(lat, (size_t)flows, 0.99));
	printf("  floor: 3 HTTP RTTs  p50 %7.3f ms   p99 %7.3f ms   (new connection, same "
	       "server)\n",
	       pct(fl, (size_t)flows, 0.5), pct(fl, (size_t)flows, 0.99));
	printf("  get-resource / floor at p50: %.1fx\n",
	       pct(lat, (size_t)flows, 0.5) / pct(fl, (size_t)flows, 0.5));
	rc = 0;
out:
	cl_attest_close(a);
	free(lat);
	free(fl);
	return rc;
}

static int free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(s, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (s >= 0)
		close(s);
	return port;
}

static int wait_up(const char *base)
{
	for (int i = 0; i < 500; i++) {
		CURL *c = curl_easy_init();
		char url[300];
		int ok = 0;

		snprintf(url, sizeof(url), "%s/metrics", base);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
		ok = curl_easy_perform(c) == CURLE_OK;
		curl_easy_cleanup(c);
		if (ok)
			return 0;
		usleep(20000);
	}
	return -1;
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/agent-bench-XXXXXX";
	char self[PATH_MAX], cloister[PATH_MAX + 16], dt[64], p[128], db[64], listen[32], base[64],
		nflows[16], rv[256], hex[2 * CL_DEVTEE_HASH_LEN + 1];
	uint8_t m[CL_DEVTEE_HASH_LEN], secret[32];
	struct cl_kbs_config cfg = {0};
	struct cl_kbs_store *st = NULL;
	struct cl_devtee_opts dopts = {0};
	struct cl_buf root = {0}, sealed = {0};
	pid_t srv = -1, run = -1;
	int flows = 200, status = 1, rc = 1, port = 0;
	ssize_t n = 0;
	char *slash = NULL;

	if (argc == 4 && strcmp(argv[1], "--inner") == 0)
		return inner(argv[2], atoi(argv[3]));
	if (argc > 1)
		flows = atoi(argv[1]);
	if (flows < 10 || flows > 1000000)
		return 2;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0 || !mkdtemp(dir))
		return 1;
	self[n] = 0;
	/* build/bench/agent -> build/cloister */
	snprintf(cloister, sizeof(cloister), "%s", self);
	slash = strrchr(cloister, '/');
	if (slash)
		*slash = 0;
	slash = strrchr(cloister, '/');
	if (!slash)
		goto out;
	snprintf(slash, sizeof(cloister) - (size_t)(slash - cloister), "/cloister");
	if (access(cloister, X_OK) != 0) {
		fprintf(stderr, "bench agent: needs %s (make builds it)\n", cloister);
		goto out;
	}
	port = free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	snprintf(base, sizeof(base), "http://%s", listen);
	snprintf(nflows, sizeof(nflows), "%d", flows);
	snprintf(dt, sizeof(dt), "%s/devtee", dir);
	snprintf(db, sizeof(db), "sqlite:%s/kbs.db", dir);
	{
		char *inner_argv[] = {self, "--inner", base, nflows, NULL};

		dopts.state_dir = dt;
		if (cl_kbs_state_init(dir) != CL_OK ||
		    cl_devtee_root_load(dt, NULL, NULL) != CL_OK ||
		    cl_devtee_measure_argv(&dopts, inner_argv, m) != CL_OK)
			goto fail;
	}
	cl_hex_encode(m, sizeof(m), hex);
	snprintf(rv, sizeof(rv), "{\"devtee\":{\"measurement\":[\"%s\"]}}", hex);
	snprintf(p, sizeof(p), "%s/root.pem", dt);
	if (cl_read_file(p, 0, &root) != CL_OK)
		goto fail;
	snprintf(p, sizeof(p), "%s/token.key", dir);
	if (cl_ear_key_load(p, &cfg.token_key) != CL_OK)
		goto fail;
	memset(cfg.kek, 5, sizeof(cfg.kek));
	memset(secret, 7, sizeof(secret));
	cfg.verify.devtee.root = (const char *)root.data;
	cfg.store_url = db;
	cfg.listen = listen;
	cfg.threads = 2;
	if (cl_kbs_store_open(db, &st) != CL_OK ||
	    cl_kbs_seal(cfg.kek, "bench/key/1", secret, sizeof(secret), &sealed) != CL_OK ||
	    cl_kbs_store_resource_put(st, "bench/key/1", sealed.data, sealed.len) != CL_OK ||
	    cl_kbs_store_policy_put(st, "refvalues", "", rv, strlen(rv)) != CL_OK)
		goto fail;
	cl_kbs_store_close(st);
	st = NULL;
	fflush(NULL);
	srv = fork();
	if (srv == 0) {
		cl_log_set_level(CL_LOG_ERROR);
		_exit(cl_kbs_serve(&cfg) == CL_OK ? 0 : 1);
	}
	curl_global_init(CURL_GLOBAL_ALL);
	if (srv < 0 || wait_up(base) != 0) {
		fprintf(stderr, "bench agent: the KBS did not start\n");
		goto out;
	}
	run = fork();
	if (run == 0) {
		char *a[] = {cloister, "devtee",  "run", "--state", dt,	 "--",
			     self,     "--inner", base,	 nflows,    NULL};

		execv(cloister, a);
		_exit(127);
	}
	if (run > 0 && waitpid(run, &status, 0) == run && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0)
		rc = 0;
	goto out;
fail:
	fprintf(stderr, "bench agent: %s\n", cl_error_detail());
out:
	if (srv > 0) {
		kill(srv, SIGTERM);
		waitpid(srv, NULL, 0);
	}
	cl_kbs_store_close(st);
	cl_buf_free(&root);
	cl_buf_free(&sealed);
	cl_ear_key_free(cfg.token_key);
	snprintf(p, sizeof(p), "rm -rf '%s'", dir);
	if (system(p) != 0)
		rc = 1;
	return rc;
}
