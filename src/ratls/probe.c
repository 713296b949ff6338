/*
 * One verified handshake with a server, without the event loop: what
 * `cloister connect --check` reports, and the benchmark's handshake client.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>

#include "internal.h"

/* Seconds since an arbitrary start, for the probe's one deadline. */
static double mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/*
 * After an SSL call on a non-blocking socket returned ret: wait for what it
 * wants, at most until the deadline, so a server that sends a byte now and
 * then cannot hold the probe past it. CL_OK means call again.
 */
static int wait_io(SSL *ssl, int ret, double deadline)
{
	int e = SSL_get_error(ssl, ret);
	struct pollfd p = {SSL_get_fd(ssl), 0, 0};
	double left = deadline - mono();
	int n = 0;

	if (e == SSL_ERROR_WANT_READ)
		p.events = POLLIN;
	else if (e == SSL_ERROR_WANT_WRITE)
		p.events = POLLOUT;
	else
		return CL_ERR_NETWORK;
	do {
		left = deadline - mono();
		CL_ENSURE_MSG(left > 0, CL_ERR_NETWORK,
			      "the server did not finish within the deadline");
		n = poll(&p, 1, (int)(left * 1000) + 1);
	} while (n < 0 && errno == EINTR);
	CL_ENSURE_MSG(n > 0, CL_ERR_NETWORK, "the server did not finish within the deadline");
	return CL_OK;
}

static int dial(const char *addr, int *fd)
{
	char host[256], *port = NULL;
	const char *h = host;
	struct addrinfo hints, *ai = NULL;
	struct timeval tv = {15, 0};
	int s = -1, e = 0;

	CL_ENSURE_MSG(addr && strlen(addr) < sizeof(host), CL_ERR_ARG, "bad address");
	snprintf(host, sizeof(host), "%s", addr);
	port = strrchr(host, ':');
	CL_ENSURE_MSG(port, CL_ERR_ARG, "address %s needs HOST:PORT", addr);
	*port++ = 0;
	if (host[0] == '[') {
		host[strlen(host) - 1] = 0;
		h = host + 1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	e = getaddrinfo(h, port, &hints, &ai);
	CL_ENSURE_MSG(e == 0 && ai, CL_ERR_ARG, "cannot resolve %s: %s", addr, gai_strerror(e));
	s = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s >= 0) {
		(void)setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		(void)setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	if (s < 0 || connect(s, ai->ai_addr, ai->ai_addrlen) != 0) {
		e = errno;
		if (s >= 0)
			close(s);
		freeaddrinfo(ai);
		CL_BAIL(CL_ERR_NETWORK, "cannot connect to %s: %s", addr, strerror(e));
	}
	freeaddrinfo(ai);
	*fd = s;
	return CL_OK;
}

/* GET the attestation endpoint over ssl and verify the answer. */
static int fresh(const struct cl_ratls_proxy_opts *o, SSL *ssl, double deadline,
		 struct cl_ratls_result *res)
{
	uint8_t nonce[32];
	char req[256], hex[65], *buf = NULL, *hdr = NULL, *cl = NULL;
	size_t cap = CL_RATLS_MAX_EXT + 4096, len = 0, body = 0;
	X509 *peer = NULL;
	int n = 0, rc = CL_OK;

	CL_CHECK(RAND_bytes(nonce, sizeof(nonce)) == 1, CL_ERR_CRYPTO, "no randomness");
	cl_hex_encode(nonce, sizeof(nonce), hex);
	n = snprintf(req, sizeof(req), "GET %s?nonce=%s HTTP/1.1\r\nHost: cloister\r\n\r\n",
		     CL_RATLS_FRESH_PATH, hex);
	for (int w = SSL_write(ssl, req, n); w != n; w = SSL_write(ssl, req, n))
		CL_CHECK(w <= 0 && wait_io(ssl, w, deadline) == CL_OK, CL_ERR_NETWORK,
			 "cannot send the attestation request: %s", cl_error_detail());
	buf = malloc(cap + 1);
	CL_CHECK(buf, CL_ERR_NOMEM, "out of memory");
	for (;;) {
		if (!hdr) {
			buf[len] = 0;
			hdr = memmem(buf, len, "\r\n\r\n", 4);
			/* The head is text: a NUL in it would end the searches below early. */
			CL_CHECK(!hdr || memchr(buf, 0, (size_t)(hdr - buf)) == NULL,
				 CL_ERR_MALFORMED, "attestation response head holds a NUL byte");
			if (hdr) {
				CL_CHECK(strncmp(buf, "HTTP/1.1 200 ", 13) == 0, CL_ERR_NOT_FOUND,
					 "the server has no attestation endpoint");
				cl = strcasestr(buf, "\r\ncontent-length:");
				CL_CHECK(cl && cl < hdr, CL_ERR_MALFORMED, "no Content-Length");
				body = strtoul(cl + 17, NULL, 10);
				CL_CHECK(body > 0 && body <= CL_RATLS_MAX_EXT, CL_ERR_MALFORMED,
					 "bad Content-Length");
				hdr += 4;
			}
		}
		if (hdr && len >= (size_t)(hdr - buf) + body)
			break;
		CL_CHECK(len < cap, CL_ERR_MALFORMED, "attestation response too long");
		n = SSL_read(ssl, buf + len, (int)(cap - len > 65536 ? 65536 : cap - len));
		if (n <= 0 && SSL_get_error(ssl, n) != SSL_ERROR_ZERO_RETURN &&
		    wait_io(ssl, n, deadline) == CL_OK)
			continue;
		CL_CHECK(n > 0, CL_ERR_NETWORK, "attestation response cut short%s%s",
			 cl_error_detail()[0] ? ": " : "", cl_error_detail());
		len += (size_t)n;
	}
	peer = SSL_get1_peer_certificate(ssl);
	CL_CHECK(peer, CL_ERR_INTERNAL, "no peer certificate");
	rc = cl_ratls_verify_fresh(o->verifier, (const uint8_t *)hdr, body, X509_get0_pubkey(peer),
				   nonce, sizeof(nonce), res);
out:
	X509_free(peer);
	free(buf);
	return rc;
}

int cl_ratls_probe(const struct cl_ratls_proxy_opts *o, struct cl_ratls_result *res)
{
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	X509 *peer = NULL;
	int fd = -1, rc = CL_OK;
	double deadline = 0;
	char ebuf[256] = "";

	memset(res, 0, sizeof(*res));
	CL_CHECK(o->verifier, CL_ERR_ARG, "a verifier is required");
	ctx = SSL_CTX_new(TLS_client_method());
	CL_CHECK(ctx && SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1, CL_ERR_CRYPTO,
		 "cannot create a TLS context");
	CL_TRY(cl_ratls_ssl_ctx_verify(ctx, o->verifier, 1));
	CL_TRY(dial(o->target, &fd));
	/* One deadline for the handshake, verification and the attestation exchange. */
	deadline = mono() +
		   (double)(o->handshake_secs > 0 ? o->handshake_secs : CL_RATLS_HANDSHAKE_SECS);
	CL_CHECK(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0, CL_ERR_NETWORK,
		 "cannot make the socket non-blocking: %s", strerror(errno));
	ssl = SSL_new(ctx);
	CL_CHECK(ssl && SSL_set_fd(ssl, fd) == 1, CL_ERR_CRYPTO, "cannot create a TLS session");
	for (;;) {
		int r = SSL_connect(ssl);

		if (r == 1 || SSL_get_error(ssl, r) == SSL_ERROR_SSL ||
		    SSL_get_error(ssl, r) == SSL_ERROR_SYSCALL)
			break;
		cl_error_clear();
		if (wait_io(ssl, r, deadline) != CL_OK) {
			rc = cl_fail(CL_ERR_NETWORK, "%s",
				     "handshake: the server did not finish "
				     "within the deadline");
			goto out;
		}
	}
	if (!SSL_is_init_finished(ssl)) {
		const char *why = cl_ratls_ssl_reason(ssl);

		ERR_error_string_n(ERR_peek_last_error(), ebuf, sizeof(ebuf));
		rc = cl_fail(CL_ERR_POLICY, "%s", why ? why : ebuf);
		goto out;
	}
	if (o->fresh) {
		rc = fresh(o, ssl, deadline, res);
		goto out;
	}
	peer = SSL_get1_peer_certificate(ssl);
	CL_CHECK(peer, CL_ERR_INTERNAL, "no peer certificate");
	rc = cl_ratls_verify_cert(o->verifier, peer, NULL, 0, res);
out:
	if (rc != CL_OK && !res->reason[0]) {
		res->status = rc;
		snprintf(res->reason, sizeof(res->reason), "%s", cl_error_detail());
	}
	if (ssl)
		(void)SSL_shutdown(ssl);
	X509_free(peer);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	ERR_clear_error();
	return rc;
}
