/*
 * Attested TLS through the connect -> serve proxies, against the same pair
 * with plain TLS (same P-256 certificate, verification skipped) and against
 * a direct connection to the upstream, all in one run:
 *   - handshakes/s: sequential connections, one byte echoed on each
 *     (attested with the verdict cached, attested uncached, plain, direct);
 *   - bulk throughput: 256 MiB one way through each path.
 * Floors, measured in the same run: cached attested handshakes >= 0.9x plain,
 * attested bulk >= 0.9x plain. Exit 1 when missed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "cloister/devtee.h"
#include "cloister/ratls.h"

#define BULK ((size_t)256 << 20)

static EVP_PKEY *root_key;
static uint8_t measurement[48];

static int sign(void *arg, const uint8_t rd[64], struct cl_attest_evidence *out)
{
	struct cl_devtee_report r;
	uint8_t buf[CL_DEVTEE_REPORT_LEN];

	(void)arg;
	memset(&r, 0, sizeof(r));
	r.version = CL_DEVTEE_VERSION;
	memcpy(r.measurement, measurement, 48);
	memcpy(r.report_data, rd, 64);
	CL_GUARD(cl_devtee_report_sign(&r, root_key, buf));
	out->format = CL_FORMAT_DEVTEE;
	return cl_buf_append(&out->evidence, buf, sizeof(buf));
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The upstream: echoes a 1-byte request, or counts a bulk upload and answers with the count. */
static void *serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	static __thread char buf[1 << 16];
	size_t total = 0;
	ssize_t n = 0;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (total == 0 && n == 1 && buf[0] == 'x') {
			if (write(fd, "x", 1) != 1)
				break;
			continue;
		}
		total += (size_t)n;
	}
	if (total) {
		uint64_t t = total;

		if (write(fd, &t, sizeof(t)) != (ssize_t)sizeof(t))
			perror("write");
	}
	close(fd);
	return NULL;
}

static void *upstream(void *arg)
{
	int l = (int)(intptr_t)arg;

	for (;;) {
		pthread_t t;
		int fd = accept(l, NULL, NULL);

		if (fd < 0)
			return NULL;
		pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)fd);
		pthread_detach(t);
	}
}

static void *run(void *arg)
{
	if (cl_ratls_proxy_run(arg, 0) != CL_OK)
		fprintf(stderr, "proxy: %s\n", cl_error_detail());
	return NULL;
}

static int dial(const char *addr)
{
	char host[64];
	struct sockaddr_in sa;
	char *c = NULL;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	snprintf(host, sizeof(host), "%s", addr);
	c = strrchr(host, ':');
	*c = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(c + 1));
	inet_pton(AF_INET, host, &sa.sin_addr);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("connect");
		exit(1);
	}
	return fd;
}

static double handshakes(const char *addr, int n)
{
	double t0 = now_s();
	char b = 0;

	for (int i = 0; i < n; i++) {
		int fd = dial(addr);

		if (write(fd, "x", 1) != 1 || read(fd, &b, 1) != 1 || b != 'x') {
			fprintf(stderr, "echo through %s failed\n", addr);
			exit(1);
		}
		close(fd);
	}
	return n / (now_s() - t0);
}

static double bulk(const char *addr)
{
	static char buf[1 << 16];
	double t0 = now_s();
	int fd = dial(addr);
	size_t sent = 0;
	uint64_t got = 0;

	while (sent < BULK) {
		ssize_t n = write(fd, buf, sizeof(buf));

		if (n <= 0) {
			perror("write");
			exit(1);
		}
		sent += (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	if (read(fd, &got, sizeof(got)) != (ssize_t)sizeof(got) || got != sent) {
		fprintf(stderr, "bulk through %s: %llu of %zu bytes\n", addr,
			(unsigned long long)got, sent);
		exit(1);
	}
	close(fd);
	return (double)BULK / (1 << 20) / (now_s() - t0);
}

static struct cl_ratls_proxy *start(struct cl_ratls_proxy_opts *o, pthread_t *t)
{
	struct cl_ratls_proxy *p = NULL;

	if (cl_ratls_proxy_new(o, &p) != CL_OK) {
		fprintf(stderr, "proxy: %s\n", cl_error_detail());
		exit(1);
	}
	pthread_create(t, NULL, run, p);
	return p;
}

static double best(double (*f)(const char *, int), const char *a, int n)
{
	double b = 0;

	for (int i = 0; i < 3; i++) {
		double v = f(a, n);

		b = v > b ? v : b;
	}
	return b;
}

static double bulk_best(const char *a)
{
	double b = 0;

	for (int i = 0; i < 3; i++) {
		double v = bulk(a);

		b = v > b ? v : b;
	}
	return b;
}

int main(void)
{
	char dir[] = "/tmp/cloister-bench-ratls.XXXXXX", up[64], cmd[128], rvj[256], hex[97];
	X509 *root = NULL;
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem = NULL, *rootpem = NULL;
	long pemlen = 0;
	struct cl_refvalues *rv = NULL;
	struct cl_ratls_verifier_opts vo = {0};
	struct cl_ratls_verifier *vc = NULL, *vu = NULL;
	struct cl_ratls_issue_opts io = {0};
	struct cl_ratls_proxy_opts so = {0}, co = {0}, uo = {0}, po = {0};
	struct cl_ratls_proxy *ps = NULL, *pc = NULL, *pu = NULL, *pp = NULL;
	pthread_t ts, tc, tu, tp, tup;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0), ret = 0;
	double h_att, h_unc, h_plain, h_direct, b_att, b_plain, b_direct;

	cl_log_set_level(CL_LOG_ERROR);
	if (!mkdtemp(dir) || cl_devtee_root_load(dir, &root_key, &root) != CL_OK ||
	    PEM_write_bio_X509(bio, root) != 1)
		return 1;
	pemlen = BIO_get_mem_data(bio, &pem);
	rootpem = strndup(pem, (size_t)pemlen);
	if (cl_digest(CL_SHA384, "bench", 5, measurement) != CL_OK)
		return 1;
	cl_hex_encode(measurement, 48, hex);
	snprintf(rvj, sizeof(rvj), "{\"devtee\":{\"measurement\":[\"%s\"]}}", hex);
	if (cl_refvalues_parse(rvj, strlen(rvj), &rv) != CL_OK)
		return 1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(l, 512) != 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &sl) != 0)
		return 1;
	snprintf(up, sizeof(up), "127.0.0.1:%d", ntohs(sa.sin_port));
	pthread_create(&tup, NULL, upstream, (void *)(intptr_t)l);

	io.attest = sign;
	so.mode = CL_RATLS_SERVE;
	so.listen = "127.0.0.1:0";
	so.target = up;
	so.issue = &io;
	ps = start(&so, &ts);

	vo.verify.devtee.root = rootpem;
	vo.rv = rv;
	if (cl_ratls_verifier_new(&vo, &vc) != CL_OK)
		return 1;
	vo.cache_ttl = -1;
	if (cl_ratls_verifier_new(&vo, &vu) != CL_OK)
		return 1;
	co.mode = CL_RATLS_CONNECT;
	co.listen = "127.0.0.1:0";
	co.target = cl_ratls_proxy_addr(ps);
	co.verifier = vc;
	pc = start(&co, &tc);
	uo = co;
	uo.verifier = vu;
	pu = start(&uo, &tu);
	po = co;
	po.verifier = NULL;
	po.unverified = 1;
	pp = start(&po, &tp);

	(void)handshakes(cl_ratls_proxy_addr(pc), 5); /* warm the cache */
	h_att = best(handshakes, cl_ratls_proxy_addr(pc), 300);
	h_plain = best(handshakes, cl_ratls_proxy_addr(pp), 300);
	h_unc = best(handshakes, cl_ratls_proxy_addr(pu), 100);
	h_direct = best(handshakes, up, 300);
	b_att = bulk_best(cl_ratls_proxy_addr(pc));
	b_plain = bulk_best(cl_ratls_proxy_addr(pp));
	b_direct = bulk_best(up);

	printf("handshakes/s   attested (cached) %8.0f   attested (uncached) %8.0f   plain TLS "
	       "%8.0f   direct %8.0f\n",
	       h_att, h_unc, h_plain, h_direct);
	printf("bulk MiB/s     attested          %8.0f   plain TLS           %8.0f   direct "
	       "%8.0f\n",
	       b_att, b_plain, b_direct);
	printf("ratio          handshakes %.2f (floor 0.90)   bulk %.2f (floor 0.90)\n",
	       h_att / h_plain, b_att / b_plain);
	if (h_att < 0.9 * h_plain || b_att < 0.9 * b_plain) {
		fprintf(stderr, "bench/ratls: below the floor\n");
		ret = 1;
	}
	cl_ratls_proxy_stop(pc);
	cl_ratls_proxy_stop(pu);
	cl_ratls_proxy_stop(pp);
	cl_ratls_proxy_stop(ps);
	pthread_join(tc, NULL);
	pthread_join(tu, NULL);
	pthread_join(tp, NULL);
	pthread_join(ts, NULL);
	cl_ratls_proxy_free(pc);
	cl_ratls_proxy_free(pu);
	cl_ratls_proxy_free(pp);
	cl_ratls_proxy_free(ps);
	cl_ratls_verifier_free(vc);
	cl_ratls_verifier_free(vu);
	cl_refvalues_free(rv);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		ret = 1;
	return ret;
}
