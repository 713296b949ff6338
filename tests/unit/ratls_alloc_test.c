/*
 * The proxies' accept path under allocation failure: for N = 1, 2, ... the
 * Nth allocation OpenSSL makes after a client connects fails, once;
 * whatever failed, the connection must be released exactly once (no double
 * free of the SSL or double close of its socket, which ASan and the
 * descriptor count see) and the proxy must go on serving. Its own binary:
 * it replaces OpenSSL's allocator for the whole process. libevent's
 * allocations are left alone: libevent 2.1 itself crashes when one fails
 * inside bufferevent_openssl_socket_new().
 */
#include <dirent.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cloister/devtee.h"
#include "cloister/ratls.h"
#include "ratls/internal.h"
#include "test.h"

static long fail_at; /* 0: never */
static long allocs;

static int should_fail(void)
{
	return fail_at > 0 && ++allocs == fail_at;
}

/*
 * OpenSSL's allocator, replaced by interposition (the executable's
 * definitions win over libcrypto's): CRYPTO_set_mem_functions() refuses once
 * anything has allocated, and some shared library's constructor may already
 * have, before main.
 */
void *CRYPTO_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return n == 0 || should_fail() ? NULL : malloc(n);
}

void *CRYPTO_zalloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return n == 0 || should_fail() ? NULL : calloc(1, n);
}

void *CRYPTO_realloc(void *p, size_t n, const char *file, int line)
{
	if (!p)
		return CRYPTO_malloc(n, file, line);
	if (n == 0) {
		free(p);
		return NULL;
	}
	return should_fail() ? NULL : realloc(p, n);
}

void CRYPTO_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	free(p);
}

static char state_dir[] = "/tmp/cloister-ratls-alloc.XXXXXX";
static EVP_PKEY *root_key;
static X509 *root_cert;

static int devtee_sign(void *arg, const uint8_t rd[64], struct cl_attest_evidence *out)
{
	struct cl_devtee_report r;
	uint8_t buf[CL_DEVTEE_REPORT_LEN];

	(void)arg;
	memset(&r, 0, sizeof(r));
	r.version = CL_DEVTEE_VERSION;
	memcpy(r.report_data, rd, 64);
	CL_GUARD(cl_devtee_report_sign(&r, root_key, buf));
	out->format = CL_FORMAT_DEVTEE;
	return cl_buf_append(&out->evidence, buf, sizeof(buf));
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e = NULL;
	int n = 0;

	while (d && (e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static int dial(const char *addr)
{
	const char *colon = strrchr(addr, ':');
	struct sockaddr_in sa = {0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void sleep_ms(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&t, NULL);
}

static void run_accept_path(enum cl_ratls_mode mode)
{
	struct cl_ratls_issue_opts io = {0};
	struct cl_ratls_proxy_opts o = {0};
	struct cl_ratls_proxy *p = NULL;
	long n = 0, injected = 0;
	int fds = 0;

	io.attest = devtee_sign;
	io.ttl = 3600;
	o.mode = mode;
	o.listen = "127.0.0.1:0";
	o.target = "127.0.0.1:1"; /* nothing listens: connect's dial fails */
	o.handshake_secs = 1;
	if (mode == CL_RATLS_SERVE)
		o.issue = &io;
	else
		o.unverified = 1;
	CHECK_EQ_INT(cl_ratls_proxy_new(&o, &p), CL_OK);
	if (!p)
		return;
	/* Warm up: what libevent allocates once per base is not the accept path's. */
	for (int i = 0; i < 3; i++)
		(void)cl_ratls_proxy_loop_once(p);
	fds = count_fds();
	for (n = 1; n < 5000; n++) {
		int cfd = dial(cl_ratls_proxy_addr(p));
		int waited = 0;

		CHECK(cfd >= 0);
		allocs = 0;
		fail_at = n;
		for (int i = 0; i < 4; i++) {
			(void)cl_ratls_proxy_loop_once(p);
			sleep_ms(1);
		}
		fail_at = 0;
		close(cfd);
		/* Closed by the client, refused by the target or at the deadline. */
		while (cl_ratls_proxy_nconns(p) > 0 && waited < 3000) {
			(void)cl_ratls_proxy_loop_once(p);
			sleep_ms(2);
			waited += 2;
		}
		CHECK_EQ_INT(cl_ratls_proxy_nconns(p), 0);
		if (allocs < n)
			break; /* the whole path ran without reaching the Nth allocation */
		injected++;
	}
	fprintf(stderr, "    %s: %ld allocations failed one at a time\n",
		mode == CL_RATLS_SERVE ? "serve" : "connect", injected);
	CHECK(injected > 3);
	CHECK_EQ_INT(count_fds(), fds);
	cl_ratls_proxy_free(p);
}

static void test_serve_accept(void)
{
	run_accept_path(CL_RATLS_SERVE);
}

static void test_connect_accept(void)
{
	run_accept_path(CL_RATLS_CONNECT);
}

int main(void)
{
	CHECK(mkdtemp(state_dir) != NULL);
	CHECK_EQ_INT(cl_devtee_root_load(state_dir, &root_key, &root_cert), CL_OK);
	RUN(test_serve_accept);
	RUN(test_connect_accept);
	EVP_PKEY_free(root_key);
	X509_free(root_cert);
	{
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", state_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", state_dir);
	}
	return test_done("ratls_alloc_test");
}
