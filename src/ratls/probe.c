/*
 * One verified handshake with a server, without the event loop: what
 * `cloister connect --check` reports, and the benchmark's handshake client.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>

#include "internal.h"

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
static int fresh(const struct cl_ratls_proxy_opts *o, SSL *ssl, struct cl_ratls_result *res)
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
	CL_CHECK(SSL_write(ssl, req, n) == n, CL_ERR_NETWORK,
		 "cannot send the attestation request");
	buf = malloc(cap + 1);
	CL_CHECK(buf, CL_ERR_NOMEM, "out of memory");
	for (;;) {
		if (!hdr) {
			buf[len] = 0;
			hdr = strstr(buf, "\r\n\r\n");
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
		CL_CHECK(n > 0, CL_ERR_NETWORK, "attestation response cut short");
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
	char ebuf[256] = "";

	memset(res, 0, sizeof(*res));
	CL_CHECK(o->verifier, CL_ERR_ARG, "a verifier is required");
	ctx = SSL_CTX_new(TLS_client_method());
	CL_CHECK(ctx && SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1, CL_ERR_CRYPTO,
		 "cannot create a TLS context");
	CL_TRY(cl_ratls_ssl_ctx_verify(ctx, o->verifier, 1));
	CL_TRY(dial(o->target, &fd));
	ssl = SSL_new(ctx);
	CL_CHECK(ssl && SSL_set_fd(ssl, fd) == 1, CL_ERR_CRYPTO, "cannot create a TLS session");
	if (SSL_connect(ssl) != 1) {
		const char *why = cl_ratls_ssl_reason(ssl);

		ERR_error_string_n(ERR_peek_last_error(), ebuf, sizeof(ebuf));
		rc = cl_fail(CL_ERR_POLICY, "%s", why ? why : ebuf);
		goto out;
	}
	if (o->fresh) {
		rc = fresh(o, ssl, res);
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
