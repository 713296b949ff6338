/*
 * The attested-TLS proxies: one event loop, two bufferevents per
 * connection, bounded buffers in each direction.
 *
 *   serve:   client ==TLS==> [down | up] --plain--> upstream
 *   connect: client --plain--> [down | up] ==TLS==> server
 *
 * Backpressure: once the other side holds `watermark` bytes unsent, reading
 * stops until it has drained to half. Half-close: a side's EOF is passed on
 * (shutdown(SHUT_WR), or close_notify on TLS) once everything it sent has
 * been flushed; the pair is freed when both directions are done or on the
 * first error. connect forwards nothing, and does not even read from its
 * local client, until the server's certificate (and, with fresh, the
 * nonce-bound evidence) has been verified.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "internal.h"

#define FRESH_PREFIX   "GET " CL_RATLS_FRESH_PATH "?"
#define MAX_HTTP_HEAD  4096
#define HANDSHAKE_SECS 15
#define SNIFF_MSECS    200

enum state { ST_HANDSHAKE, ST_FRESH, ST_SNIFF, ST_OPEN };

struct cl_ratls_proxy {
	struct cl_ratls_proxy_opts o;
	struct event_base *base;
	struct evconnlistener *lis;
	struct event *sigint, *sigterm, *stopev, *renew;
	struct pair *pairs; /* open connections, freed with the proxy */
	struct sockaddr_storage target;
	socklen_t target_len;
	char addr[128];
	SSL_CTX *ctx;
	EVP_PKEY *key;
	X509 *cert;
	int64_t issued, ttl;
	size_t nconns;
	int stopping;
};

struct pair {
	struct cl_ratls_proxy *p;
	struct bufferevent *down, *up;
	enum state st;
	int eof_down, eof_up;	/* that side sent EOF */
	int shut_down, shut_up; /* we shut that side's write direction */
	int up_connected;
	struct event *sniff;
	uint8_t nonce[32];
	struct pair *prev, *next;
};

static void pair_free(struct pair *c)
{
	struct cl_ratls_proxy *p = c->p;

	if (c->sniff)
		event_free(c->sniff);
	if (c->down)
		bufferevent_free(c->down);
	if (c->up)
		bufferevent_free(c->up);
	if (c->prev)
		c->prev->next = c->next;
	else
		p->pairs = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
	p->nconns--;
	if (p->stopping && p->nconns == 0)
		event_base_loopexit(p->base, NULL);
}

static const char *side(const struct pair *c, const struct bufferevent *b)
{
	int tls = (b == c->down) == (c->p->o.mode == CL_RATLS_SERVE);

	return b == c->down ? (tls ? "client (TLS)" : "client")
			    : (tls ? "server (TLS)" : "upstream");
}

static struct bufferevent *other(struct pair *c, struct bufferevent *b)
{
	return b == c->down ? c->up : c->down;
}

static int is_tls(struct pair *c, struct bufferevent *b)
{
	return (b == c->down) == (c->p->o.mode == CL_RATLS_SERVE);
}

/* Pass EOF on to dst once its output is empty; free the pair when both are done. */
static void maybe_shut(struct pair *c, struct bufferevent *dst)
{
	int *shut = dst == c->down ? &c->shut_down : &c->shut_up;
	int src_eof = dst == c->down ? c->eof_up : c->eof_down;

	if (!src_eof || *shut || evbuffer_get_length(bufferevent_get_output(dst)) > 0)
		return;
	*shut = 1;
	if (is_tls(c, dst)) {
		SSL *ssl = bufferevent_openssl_get_ssl(dst);

		(void)SSL_shutdown(ssl);
		ERR_clear_error();
	} else {
		(void)shutdown(bufferevent_getfd(dst), SHUT_WR);
	}
	if (c->shut_down && c->shut_up)
		pair_free(c);
}

static void forward(struct pair *c, struct bufferevent *src)
{
	struct bufferevent *dst = other(c, src);
	struct evbuffer *out = NULL;
	size_t wm = c->p->o.watermark ? c->p->o.watermark : CL_RATLS_WATERMARK;

	if (c->st != ST_OPEN || !dst)
		return;
	out = bufferevent_get_output(dst);
	evbuffer_add_buffer(out, bufferevent_get_input(src));
	if (evbuffer_get_length(out) >= wm) {
		bufferevent_disable(src, EV_READ);
		bufferevent_setwatermark(dst, EV_WRITE, wm / 2, 0);
	}
}

static void fail_pair(struct pair *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_pair(struct pair *c, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cl_log_warn("%s: %s", c->p->o.mode == CL_RATLS_SERVE ? "serve" : "connect", msg);
	pair_free(c);
}

static void open_pair(struct pair *c)
{
	c->st = ST_OPEN;
	bufferevent_set_timeouts(c->down, NULL, NULL);
	if (c->up)
		bufferevent_set_timeouts(c->up, NULL, NULL);
	bufferevent_enable(c->down, EV_READ);
	forward(c, c->down);
	if (c->up && c->up_connected) {
		bufferevent_enable(c->up, EV_READ);
		forward(c, c->up);
	}
}

/* ------------------------------------------------- serve: attestation endpoint */

static void fresh_reply(struct pair *c, const char *head, size_t len)
{
	struct evbuffer *out = bufferevent_get_output(c->down);
	const char *q = head + strlen(FRESH_PREFIX), *end = memchr(head, '\r', len);
	const char *sp = q;
	uint8_t nonce[CL_RATLS_MAX_NONCE];
	size_t hexlen = 0;
	struct cl_buf ev = {0};
	SSL *ssl = bufferevent_openssl_get_ssl(c->down);
	X509 *cert = ssl ? SSL_get_certificate(ssl) : NULL;

	while (sp < end && *sp != ' ' && *sp != '&')
		sp++;
	char hex[2 * CL_RATLS_MAX_NONCE + 1];

	if (strncmp(q, "nonce=", 6) == 0)
		hexlen = (size_t)(sp - q) - 6;
	if (hexlen >= 2 && hexlen < sizeof(hex)) {
		memcpy(hex, q + 6, hexlen);
		hex[hexlen] = 0;
	}
	if (hexlen < 2 || hexlen >= sizeof(hex) || hexlen % 2 ||
	    cl_hex_decode_exact(hex, nonce, hexlen / 2) != CL_OK) {
		evbuffer_add_printf(out, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
		return;
	}
	if (!cert ||
	    cl_ratls_fresh_evidence(c->p->o.issue, cert, nonce, hexlen / 2, &ev) != CL_OK) {
		cl_log_error("serve: no fresh evidence: %s", cl_error_detail());
		evbuffer_add_printf(
			out, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
		return;
	}
	evbuffer_add_printf(out,
			    "HTTP/1.1 200 OK\r\nContent-Type: application/cbor\r\n"
			    "Cache-Control: no-store\r\nContent-Length: %zu\r\n\r\n",
			    ev.len);
	evbuffer_add(out, ev.data, ev.len);
	cl_buf_free(&ev);
}

/* Decide whether the connection starts with an attestation request. */
static void sniff(struct pair *c)
{
	struct evbuffer *in = bufferevent_get_input(c->down);
	size_t len = evbuffer_get_length(in), plen = strlen(FRESH_PREFIX);
	size_t look = len < MAX_HTTP_HEAD ? len : MAX_HTTP_HEAD;
	unsigned char *p = NULL;
	struct evbuffer_ptr e;

	if (len == 0)
		return;
	p = evbuffer_pullup(in, (ev_ssize_t)look);
	if (memcmp(p, FRESH_PREFIX, len < plen ? len : plen) != 0) {
		open_pair(c);
		return;
	}
	if (len < plen)
		return;
	e = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (e.pos < 0 || (size_t)e.pos + 4 > MAX_HTTP_HEAD) {
		if (len >= MAX_HTTP_HEAD)
			fail_pair(c, "attestation request head too long");
		return;
	}
	fresh_reply(c, (const char *)p, (size_t)e.pos);
	evbuffer_drain(in, (size_t)e.pos + 4);
	open_pair(c);
}

static void sniff_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct pair *c = arg;

	(void)fd;
	(void)what;
	/* The upstream speaks first and the client has said nothing: no endpoint request. */
	if (c->st == ST_SNIFF)
		open_pair(c);
}

/* --------------------------------------------------- connect: fresh evidence */

static void fresh_request(struct pair *c)
{
	char hex[2 * sizeof(c->nonce) + 1];

	if (RAND_bytes(c->nonce, sizeof(c->nonce)) != 1) {
		fail_pair(c, "no randomness for the nonce");
		return;
	}
	cl_hex_encode(c->nonce, sizeof(c->nonce), hex);
	c->st = ST_FRESH;
	evbuffer_add_printf(bufferevent_get_output(c->up),
			    "GET %s?nonce=%s HTTP/1.1\r\nHost: cloister\r\n\r\n",
			    CL_RATLS_FRESH_PATH, hex);
}

static void fresh_response(struct pair *c)
{
	struct evbuffer *in = bufferevent_get_input(c->up);
	size_t len = evbuffer_get_length(in), body = 0;
	struct evbuffer_ptr e = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	const char *cl = NULL;
	char *head = NULL, *end = NULL;
	unsigned char *p = NULL;
	struct cl_ratls_result res;
	SSL *ssl = bufferevent_openssl_get_ssl(c->up);
	X509 *peer = NULL;
	unsigned long v = 0;

	if (e.pos < 0) {
		if (len >= MAX_HTTP_HEAD)
			fail_pair(c, "attestation response head too long");
		return;
	}
	if ((size_t)e.pos + 4 > MAX_HTTP_HEAD) {
		fail_pair(c, "attestation response head too long");
		return;
	}
	head = strndup((const char *)evbuffer_pullup(in, e.pos + 4), (size_t)e.pos + 4);
	if (!head) {
		fail_pair(c, "out of memory");
		return;
	}
	cl = strcasestr(head, "\r\ncontent-length:");
	if (strncmp(head, "HTTP/1.1 200 ", 13) != 0 || !cl) {
		fail_pair(c, "the server has no attestation endpoint (%.40s)", head);
		free(head);
		return;
	}
	errno = 0;
	v = strtoul(cl + 17, &end, 10);
	free(head);
	if (errno || v == 0 || v > CL_RATLS_MAX_EXT) {
		fail_pair(c, "attestation response has a bad length");
		return;
	}
	body = (size_t)v;
	if (len < (size_t)e.pos + 4 + body)
		return;
	evbuffer_drain(in, (size_t)e.pos + 4);
	p = evbuffer_pullup(in, (ev_ssize_t)body);
	peer = SSL_get1_peer_certificate(ssl);
	if (!peer || cl_ratls_verify_fresh(c->p->o.verifier, p, body, X509_get0_pubkey(peer),
					   c->nonce, sizeof(c->nonce), &res) != CL_OK) {
		fail_pair(c, "refused %s: fresh evidence: %s", c->p->o.target,
			  peer ? res.reason : "no peer certificate");
		if (peer)
			cl_ratls_result_free(&res);
		X509_free(peer);
		return;
	}
	cl_ratls_result_free(&res);
	X509_free(peer);
	evbuffer_drain(in, body);
	open_pair(c);
}

/* ------------------------------------------------------------ callbacks */

static void read_cb(struct bufferevent *b, void *arg)
{
	struct pair *c = arg;

	switch (c->st) {
	case ST_OPEN:
		forward(c, b);
		return;
	case ST_SNIFF:
		if (b == c->down)
			sniff(c);
		else if (!c->sniff && evbuffer_get_length(bufferevent_get_input(c->down)) == 0) {
			struct timeval tv = {0, SNIFF_MSECS * 1000};

			c->sniff = evtimer_new(c->p->base, sniff_timeout, c);
			if (c->sniff)
				evtimer_add(c->sniff, &tv);
		}
		return;
	case ST_FRESH:
		if (b == c->up)
			fresh_response(c);
		return;
	case ST_HANDSHAKE:
	default:
		return;
	}
}

static void write_cb(struct bufferevent *b, void *arg)
{
	struct pair *c = arg;
	struct bufferevent *src = other(c, b);
	int src_eof = b == c->down ? c->eof_up : c->eof_down;

	if (c->st != ST_OPEN)
		return;
	bufferevent_setwatermark(b, EV_WRITE, 0, 0);
	if (src && !src_eof)
		bufferevent_enable(src, EV_READ);
	maybe_shut(c, b);
}

static int connect_up_plain(struct pair *c)
{
	struct cl_ratls_proxy *p = c->p;

	c->up = bufferevent_socket_new(p->base, -1,
				       BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!c->up)
		return -1;
	bufferevent_setcb(c->up, read_cb, write_cb, NULL, c);
	return bufferevent_socket_connect(c->up, (struct sockaddr *)&p->target, (int)p->target_len);
}

static void event_cb(struct bufferevent *b, short what, void *arg);

/* Small request/response exchanges must not wait on Nagle and delayed ACKs. */
static void nodelay(evutil_socket_t fd)
{
	int one = 1;

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void connected(struct pair *c, struct bufferevent *b)
{
	struct cl_ratls_proxy *p = c->p;

	if (p->o.mode == CL_RATLS_SERVE && b == c->down) {
		/* Handshake done: only now is the upstream dialled. */
		c->st = ST_SNIFF;
		bufferevent_set_timeouts(c->down, NULL, NULL);
		if (connect_up_plain(c) != 0) {
			fail_pair(c, "cannot connect to the upstream %s", p->o.target);
			return;
		}
		bufferevent_setcb(c->up, read_cb, write_cb, event_cb, c);
		sniff(c);
		return;
	}
	if (b == c->up)
		c->up_connected = 1;
	if (p->o.mode == CL_RATLS_SERVE) {
		if (c->st == ST_OPEN) {
			bufferevent_enable(c->up, EV_READ);
			forward(c, c->down);
		} else {
			bufferevent_enable(c->up, EV_READ);
		}
		return;
	}
	/* connect: the server's certificate passed verification during the handshake. */
	cl_log_info("connect: %s verified", p->o.target);
	bufferevent_enable(c->up, EV_READ);
	if (p->o.fresh)
		fresh_request(c);
	else
		open_pair(c);
}

static void event_cb(struct bufferevent *b, short what, void *arg)
{
	struct pair *c = arg;
	struct cl_ratls_proxy *p = c->p;
	int *eof = b == c->down ? &c->eof_down : &c->eof_up;
	struct bufferevent *dst = other(c, b);

	if (what & BEV_EVENT_CONNECTED) {
		nodelay(bufferevent_getfd(b));
		connected(c, b);
		return;
	}
	if ((what & BEV_EVENT_EOF) && c->st == ST_OPEN && !(what & BEV_EVENT_ERROR)) {
		forward(c, b);
		*eof = 1;
		bufferevent_disable(b, EV_READ);
		if (is_tls(c, b) && evbuffer_get_length(bufferevent_get_output(b)) > 0) {
			/* libevent stops writing on close_notify; restart what is still queued. */
			bufferevent_disable(b, EV_WRITE);
			bufferevent_enable(b, EV_WRITE);
		}
		if (dst) {
			bufferevent_setwatermark(dst, EV_WRITE, 0, 0);
			maybe_shut(c, dst);
		}
		return;
	}
	if (c->st == ST_HANDSHAKE && is_tls(c, b)) {
		SSL *ssl = bufferevent_openssl_get_ssl(b);
		const char *why = ssl ? cl_ratls_ssl_reason(ssl) : NULL;
		unsigned long e = bufferevent_get_openssl_error(b);
		char ebuf[256] = "";

		if (e)
			ERR_error_string_n(e, ebuf, sizeof(ebuf));
		if (p->o.mode == CL_RATLS_CONNECT)
			fail_pair(c, "refused %s: %s", p->o.target,
				  why			       ? why
				  : e			       ? ebuf
				  : (what & BEV_EVENT_TIMEOUT) ? "handshake timed out"
							       : "connection failed");
		else
			fail_pair(c, "handshake with a client failed: %s",
				  why ? why
				  : e ? ebuf
				      : "connection closed");
		ERR_clear_error();
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		fail_pair(c, "%s timed out", side(c, b));
		return;
	}
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		/* EOF before the pair was open: nothing to pass on. */
		pair_free(c);
		return;
	}
	cl_log_debug("%s: %s closed with an error",
		     p->o.mode == CL_RATLS_SERVE ? "serve" : "connect", side(c, b));
	ERR_clear_error();
	pair_free(c);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
		      void *arg)
{
	struct cl_ratls_proxy *p = arg;
	struct pair *c = calloc(1, sizeof(*c));
	struct timeval hs = {HANDSHAKE_SECS, 0};
	SSL *ssl = NULL;
	int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;

	(void)l;
	(void)sa;
	(void)len;
	if (!c || !(ssl = SSL_new(p->ctx))) {
		free(c);
		SSL_free(ssl);
		evutil_closesocket(fd);
		return;
	}
	nodelay(fd);
	c->p = p;
	c->next = p->pairs;
	if (p->pairs)
		p->pairs->prev = c;
	p->pairs = c;
	p->nconns++;
	if (p->o.mode == CL_RATLS_SERVE) {
		c->down = bufferevent_openssl_socket_new(p->base, fd, ssl,
							 BUFFEREVENT_SSL_ACCEPTING, opts);
		if (!c->down) {
			SSL_free(ssl);
			evutil_closesocket(fd);
			pair_free(c);
			return;
		}
		/* Clients such as curl often close without close_notify. */
		bufferevent_openssl_set_allow_dirty_shutdown(c->down, 1);
		bufferevent_setcb(c->down, read_cb, write_cb, event_cb, c);
		bufferevent_set_timeouts(c->down, &hs, &hs);
		bufferevent_enable(c->down, EV_READ);
		return;
	}
	c->down = bufferevent_socket_new(p->base, fd, opts);
	c->up = bufferevent_openssl_socket_new(p->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, opts);
	if (!c->down || !c->up) {
		if (!c->down)
			evutil_closesocket(fd);
		if (!c->up)
			SSL_free(ssl);
		pair_free(c);
		return;
	}
	bufferevent_setcb(c->down, read_cb, write_cb, event_cb, c);
	bufferevent_setcb(c->up, read_cb, write_cb, event_cb, c);
	bufferevent_set_timeouts(c->up, &hs, &hs);
	if (bufferevent_socket_connect(c->up, (struct sockaddr *)&p->target, (int)p->target_len) !=
	    0)
		fail_pair(c, "cannot connect to %s", p->o.target);
}

/* ---------------------------------------------------------------- set-up */

static int parse_addr(const char *s, int passive, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256], *port = NULL;
	struct addrinfo hints, *ai = NULL;
	const char *h = host;
	int e = 0;

	CL_ENSURE_MSG(s && strlen(s) < sizeof(host), CL_ERR_ARG, "bad address");
	snprintf(host, sizeof(host), "%s", s);
	port = strrchr(host, ':');
	CL_ENSURE_MSG(port && port[1], CL_ERR_ARG, "address %s needs HOST:PORT", s);
	*port++ = 0;
	if (host[0] == '[') {
		size_t n = strlen(host);

		CL_ENSURE_MSG(n >= 2 && host[n - 1] == ']', CL_ERR_ARG, "bad address %s", s);
		host[n - 1] = 0;
		h = host + 1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = passive ? AI_PASSIVE : 0;
	e = getaddrinfo(*h ? h : NULL, port, &hints, &ai);
	CL_ENSURE_MSG(e == 0 && ai, CL_ERR_ARG, "cannot resolve %s: %s", s, gai_strerror(e));
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = (socklen_t)ai->ai_addrlen;
	freeaddrinfo(ai);
	return CL_OK;
}

static int make_ctx(struct cl_ratls_proxy *p, SSL_CTX **out)
{
	int server = p->o.mode == CL_RATLS_SERVE;
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	int rc = CL_OK;

	CL_CHECK(ctx, CL_ERR_CRYPTO, "cannot create a TLS context");
	CL_CHECK(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1, CL_ERR_CRYPTO,
		 "cannot set the TLS version");
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
	if (p->cert) {
		CL_CHECK(SSL_CTX_use_certificate(ctx, p->cert) == 1 &&
				 SSL_CTX_use_PrivateKey(ctx, p->key) == 1 &&
				 SSL_CTX_check_private_key(ctx) == 1,
			 CL_ERR_CRYPTO, "cannot use the attested certificate");
	}
	if (p->o.verifier && !p->o.unverified)
		CL_TRY(cl_ratls_ssl_ctx_verify(ctx, p->o.verifier, 1));
	*out = ctx;
	ctx = NULL;
out:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

static int issue(struct cl_ratls_proxy *p)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	SSL_CTX *ctx = NULL, *old = p->ctx;
	EVP_PKEY *okey = p->key;
	X509 *ocert = p->cert;
	int rc = CL_OK;

	CL_TRY(cl_ratls_issue(p->o.issue, &key, &cert));
	p->key = key;
	p->cert = cert;
	rc = make_ctx(p, &ctx);
	if (rc != CL_OK) {
		p->key = okey;
		p->cert = ocert;
		EVP_PKEY_free(key);
		X509_free(cert);
		goto out;
	}
	/* Live connections hold their own references to the old context. */
	p->ctx = ctx;
	SSL_CTX_free(old);
	EVP_PKEY_free(okey);
	X509_free(ocert);
	p->issued = p->o.issue->now ? p->o.issue->now : (int64_t)time(NULL);
	cl_log_info("attested TLS: certificate issued, valid %lld s", (long long)p->ttl);
out:
	return rc;
}

static void renew_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cl_ratls_proxy *p = arg;
	int64_t now = (int64_t)time(NULL);

	(void)fd;
	(void)what;
	/* Re-issue at two thirds of the lifetime, so peers never see an expired one. */
	if (now - p->issued >= 2 * p->ttl / 3 && issue(p) != CL_OK)
		cl_log_error("attested TLS: re-issuing the certificate failed: %s",
			     cl_error_detail());
}

static void stop_now(struct cl_ratls_proxy *p)
{
	struct timeval tv = {(time_t)(p->o.drain_secs > 0 ? p->o.drain_secs : 10), 0};

	if (p->stopping)
		return;
	p->stopping = 1;
	evconnlistener_disable(p->lis);
	if (p->nconns == 0) {
		event_base_loopexit(p->base, NULL);
		return;
	}
	cl_log_info("draining %zu connection(s)", p->nconns);
	event_base_loopexit(p->base, &tv);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	stop_now(arg);
}

int cl_ratls_proxy_new(const struct cl_ratls_proxy_opts *o, struct cl_ratls_proxy **out)
{
	struct cl_ratls_proxy *p = calloc(1, sizeof(*p));
	struct sockaddr_storage ls;
	socklen_t llen = sizeof(ls);
	char host[INET6_ADDRSTRLEN] = "";
	int rc = CL_OK, port = 0;

	CL_CHECK(p, CL_ERR_NOMEM, "out of memory");
	p->o = *o;
	CL_CHECK(o->listen && o->target, CL_ERR_ARG, "listen and target addresses are required");
	CL_CHECK(o->mode == CL_RATLS_SERVE ? o->issue != NULL
					   : o->verifier != NULL || o->unverified,
		 CL_ERR_ARG, "serve needs an evidence source, connect a verifier");
	CL_CHECK(!o->client_cert || o->issue, CL_ERR_ARG, "a client certificate needs evidence");
	signal(SIGPIPE, SIG_IGN);
	CL_CHECK(evthread_use_pthreads() == 0, CL_ERR_INTERNAL, "libevent threads");
	CL_TRY(parse_addr(o->target, 0, &p->target, &p->target_len));
	CL_TRY(parse_addr(o->listen, 1, &ls, &llen));
	p->base = event_base_new();
	CL_CHECK(p->base, CL_ERR_INTERNAL, "cannot create the event loop");
	p->ttl = o->issue && o->issue->ttl > 0 ? o->issue->ttl : 3600;
	if (o->mode == CL_RATLS_SERVE || o->client_cert)
		CL_TRY(issue(p));
	else
		CL_TRY(make_ctx(p, &p->ctx));
	p->lis = evconnlistener_new_bind(p->base, accept_cb, p,
					 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
						 LEV_OPT_CLOSE_ON_EXEC,
					 128, (struct sockaddr *)&ls, (int)llen);
	CL_CHECK(p->lis, CL_ERR_IO, "cannot listen on %s: %s", o->listen, strerror(errno));
	llen = sizeof(ls);
	CL_CHECK(getsockname(evconnlistener_get_fd(p->lis), (struct sockaddr *)&ls, &llen) == 0,
		 CL_ERR_IO, "getsockname: %s", strerror(errno));
	if (ls.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ls)->sin6_addr, host, sizeof(host));
		port = ntohs(((struct sockaddr_in6 *)&ls)->sin6_port);
		snprintf(p->addr, sizeof(p->addr), "[%s]:%d", host, port);
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ls)->sin_addr, host, sizeof(host));
		port = ntohs(((struct sockaddr_in *)&ls)->sin_port);
		snprintf(p->addr, sizeof(p->addr), "%s:%d", host, port);
	}
	p->stopev = event_new(p->base, -1, 0, stop_cb, p);
	CL_CHECK(p->stopev, CL_ERR_NOMEM, "out of memory");
	if (p->cert) {
		struct timeval tv = {
			(time_t)(p->ttl / 6 > 0 ? (p->ttl / 6 < 60 ? p->ttl / 6 : 60) : 1), 0};

		p->renew = event_new(p->base, -1, EV_PERSIST, renew_cb, p);
		CL_CHECK(p->renew && event_add(p->renew, &tv) == 0, CL_ERR_NOMEM, "out of memory");
	}
	*out = p;
	p = NULL;
out:
	cl_ratls_proxy_free(p);
	return rc;
}

const char *cl_ratls_proxy_addr(const struct cl_ratls_proxy *p)
{
	return p->addr;
}

int cl_ratls_proxy_run(struct cl_ratls_proxy *p, int handle_signals)
{
	if (handle_signals) {
		p->sigint = evsignal_new(p->base, SIGINT, stop_cb, p);
		p->sigterm = evsignal_new(p->base, SIGTERM, stop_cb, p);
		CL_ENSURE_MSG(p->sigint && p->sigterm && event_add(p->sigint, NULL) == 0 &&
				      event_add(p->sigterm, NULL) == 0,
			      CL_ERR_INTERNAL, "cannot watch signals");
	}
	CL_ENSURE_MSG(event_base_dispatch(p->base) >= 0, CL_ERR_INTERNAL, "event loop failed");
	return CL_OK;
}

void cl_ratls_proxy_stop(struct cl_ratls_proxy *p)
{
	event_active(p->stopev, EV_READ, 0);
}

void cl_ratls_proxy_free(struct cl_ratls_proxy *p)
{
	if (!p)
		return;
	p->stopping = 0;
	while (p->pairs)
		pair_free(p->pairs);
	if (p->lis)
		evconnlistener_free(p->lis);
	if (p->sigint)
		event_free(p->sigint);
	if (p->sigterm)
		event_free(p->sigterm);
	if (p->stopev)
		event_free(p->stopev);
	if (p->renew)
		event_free(p->renew);
	if (p->base)
		event_base_free(p->base);
	SSL_CTX_free(p->ctx);
	EVP_PKEY_free(p->key);
	X509_free(p->cert);
	free(p);
}
