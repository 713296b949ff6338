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
 * nonce-bound evidence) has been verified. Limits: a cap on connections, in
 * all and per client address; a deadline from accept to forwarding; an idle
 * timeout after; and accept failures (out of descriptors) back off.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

#define SNIFF_MSECS 200
/* Descriptors kept for everything but connections when sizing the default cap. */
#define FD_SPARE 32
/* While accept fails: retry after 10 ms, doubling up to 1 s. */
#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 1000
/* Connections accepted and closed per round while out of descriptors. */
#define SHED_MAX 64
/* Per-connection log lines: 10 a second, bursts of 50; the rest are counted. */
#define LOG_RATE     10.0
#define LOG_BURST    50.0
#define ADDR_BUCKETS 1024

enum state { ST_HANDSHAKE, ST_FRESH, ST_SNIFF, ST_OPEN };

/* Open connections from one client address. */
struct addr_count {
	uint8_t key[16]; /* IPv6, or IPv4 mapped into it */
	int n;
	struct addr_count *next;
};

struct cl_ratls_proxy {
	struct cl_ratls_proxy_opts o;
	struct event_base *base;
	struct evconnlistener *lis;
	struct event *sigint, *sigterm, *stopev, *renew, *resume;
	struct pair *pairs; /* open connections, freed with the proxy */
	struct sockaddr_storage target;
	socklen_t target_len;
	char addr[128];
	SSL_CTX *ctx;
	EVP_PKEY *key;
	X509 *cert;
	int64_t issued, ttl;
	size_t nconns, max_conns;
	int per_addr;			   /* 0: no cap */
	int64_t handshake_secs, idle_secs; /* idle 0: never */
	struct addr_count *addrs[ADDR_BUCKETS];
	uint32_t addr_seed;
	int reserve_fd; /* spent to turn away connections when descriptors run out */
	int starved;	/* accept is failing for want of descriptors */
	unsigned long refused;
	int backoff_ms;
	double log_tokens, log_last;
	unsigned long log_dropped;
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
	struct event *timer; /* the deadline until open, then the idle check */
	double last_io;
	struct addr_count *ac;
	uint8_t nonce[32];
	struct pair *prev, *next;
};

static const char *pname(const struct cl_ratls_proxy *p)
{
	return p->o.mode == CL_RATLS_SERVE ? "serve" : "connect";
}

static double mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/*
 * Whether a per-connection message may be logged now: anyone can make
 * connections fail, and must not be able to fill the disk with the reasons.
 */
static int log_ok(struct cl_ratls_proxy *p)
{
	double now = mono();

	p->log_tokens += (now - p->log_last) * LOG_RATE;
	if (p->log_tokens > LOG_BURST)
		p->log_tokens = LOG_BURST;
	p->log_last = now;
	if (p->log_tokens < 1) {
		p->log_dropped++;
		return 0;
	}
	p->log_tokens -= 1;
	if (p->log_dropped) {
		cl_log_warn("%s: %lu connection message(s) suppressed", pname(p), p->log_dropped);
		p->log_dropped = 0;
	}
	return 1;
}

/* ------------------------------------------------------ per-address counts */

static void addr_key(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa && sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	} else if (sa && sa->sa_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	}
}

static struct addr_count **addr_slot(struct cl_ratls_proxy *p, const uint8_t key[16])
{
	uint32_t h = 2166136261u ^ p->addr_seed;
	struct addr_count **s = NULL;

	for (size_t i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	s = &p->addrs[h % ADDR_BUCKETS];
	while (*s && memcmp((*s)->key, key, 16) != 0)
		s = &(*s)->next;
	return s;
}

/* The count for sa's address, made when missing; NULL when out of memory. */
static struct addr_count *addr_get(struct cl_ratls_proxy *p, const struct sockaddr *sa)
{
	uint8_t key[16];
	struct addr_count **s = NULL;

	addr_key(sa, key);
	s = addr_slot(p, key);
	if (!*s) {
		*s = calloc(1, sizeof(**s));
		if (*s)
			memcpy((*s)->key, key, 16);
	}
	return *s;
}

/* Drop an entry whose count is zero. */
static void addr_put(struct cl_ratls_proxy *p, struct addr_count *a)
{
	struct addr_count **s = NULL;

	if (!a || a->n > 0)
		return;
	s = addr_slot(p, a->key);
	if (*s == a) {
		*s = a->next;
		free(a);
	}
}

/* -------------------------------------------------------------- the pairs */

static void pair_free(struct pair *c)
{
	struct cl_ratls_proxy *p = c->p;

	if (c->timer)
		event_free(c->timer);
	if (c->sniff)
		event_free(c->sniff);
	if (c->down)
		bufferevent_free(c->down);
	if (c->up)
		bufferevent_free(c->up);
	if (c->ac) {
		c->ac->n--;
		addr_put(p, c->ac);
	}
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

	if (log_ok(c->p)) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		cl_log_warn("%s: %s", pname(c->p), msg);
	}
	pair_free(c);
}

static void arm(struct pair *c, double secs)
{
	struct timeval tv = {(time_t)secs, (suseconds_t)((secs - (double)(time_t)secs) * 1e6)};

	if (evtimer_add(c->timer, &tv) != 0)
		cl_log_error("%s: cannot arm a connection timer", pname(c->p));
}

static void open_pair(struct pair *c)
{
	c->st = ST_OPEN;
	c->last_io = mono();
	evtimer_del(c->timer);
	if (c->p->idle_secs > 0)
		arm(c, (double)c->p->idle_secs);
	bufferevent_enable(c->down, EV_READ);
	forward(c, c->down);
	if (c->up && c->up_connected) {
		bufferevent_enable(c->up, EV_READ);
		forward(c, c->up);
	}
}

/*
 * Before the pair opens: the deadline for the handshake (and the attestation
 * exchange), which no trickle of bytes moves. After: the idle check.
 */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pair *c = arg;
	struct cl_ratls_proxy *p = c->p;
	double idle = 0;

	(void)fd;
	(void)what;
	switch (c->st) {
	case ST_OPEN:
		idle = mono() - c->last_io;
		if (idle >= (double)p->idle_secs) {
			fail_pair(c, "closing a connection idle for %lld s",
				  (long long)p->idle_secs);
			return;
		}
		arm(c, (double)p->idle_secs - idle);
		return;
	case ST_SNIFF:
		/* Nothing from the client at all: not an attestation request. */
		if (evbuffer_get_length(bufferevent_get_input(c->down)) == 0) {
			open_pair(c);
			return;
		}
		fail_pair(c, "no complete attestation request within %lld s",
			  (long long)p->handshake_secs);
		return;
	case ST_FRESH:
		fail_pair(c, "refused %s: no attestation response within %lld s", p->o.target,
			  (long long)p->handshake_secs);
		return;
	case ST_HANDSHAKE:
	default:
		if (p->o.mode == CL_RATLS_CONNECT)
			fail_pair(c, "refused %s: handshake not finished within %lld s",
				  p->o.target, (long long)p->handshake_secs);
		else
			fail_pair(c, "handshake with a client not finished within %lld s",
				  (long long)p->handshake_secs);
		return;
	}
}

/* ------------------------------------------------- serve: attestation endpoint */

/* Index of the first "\r\n" (crlf2: "\r\n\r\n") in p[0..n), or n. */
static size_t find_crlf(const uint8_t *p, size_t n, int crlf2)
{
	size_t w = crlf2 ? 4 : 2;

	for (size_t i = 0; n >= w && i <= n - w; i++) {
		if (p[i] == '\r' && p[i + 1] == '\n' &&
		    (!crlf2 || (p[i + 2] == '\r' && p[i + 3] == '\n')))
			return i;
	}
	return n;
}

static int hexval(uint8_t ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* The nonce parameter of query q ("a=b&nonce=HEX&c"), decoded; 0 or -1. */
static int query_nonce(struct cl_reader q, uint8_t *nonce, size_t *nonce_len)
{
	while (q.left > 0) {
		struct cl_reader v = q;
		size_t n = 0;

		while (n < q.left && q.p[n] != '&')
			n++;
		if (cl_read_sub(&q, n, &v) != CL_OK)
			return -1;
		if (q.left > 0 && cl_read_skip(&q, 1) != CL_OK)
			return -1;
		if (v.left < 6 || memcmp(v.p, "nonce=", 6) != 0)
			continue;
		if (cl_read_skip(&v, 6) != CL_OK || v.left < 2 || v.left % 2 ||
		    v.left > 2 * CL_RATLS_MAX_NONCE)
			return -1;
		*nonce_len = v.left / 2;
		for (size_t i = 0; i < *nonce_len; i++) {
			uint8_t hi = 0, lo = 0;

			if (cl_read_u8(&v, &hi) != CL_OK || cl_read_u8(&v, &lo) != CL_OK ||
			    hexval(hi) < 0 || hexval(lo) < 0)
				return -1;
			nonce[i] = (uint8_t)(hexval(hi) << 4 | hexval(lo));
		}
		return 0;
	}
	return -1;
}

enum cl_ratls_head cl_ratls_fresh_parse(const uint8_t *head, size_t n,
					uint8_t nonce[CL_RATLS_MAX_NONCE], size_t *nonce_len,
					size_t *head_len)
{
	static const char start[] = "GET " CL_RATLS_FRESH_PATH;
	const size_t slen = sizeof(start) - 1;
	size_t look = n < CL_RATLS_MAX_HEAD ? n : CL_RATLS_MAX_HEAD, end = 0, line = 0, qlen = 0;
	struct cl_reader r, q;
	uint8_t ch = 0;

	*nonce_len = 0;
	*head_len = 0;
	if (memcmp(head, start, look < slen ? look : slen) != 0)
		return CL_RATLS_HEAD_NOT;
	if (look <= slen)
		return CL_RATLS_HEAD_MORE;
	/* Another path that merely starts like ours is the upstream's. */
	if (head[slen] != '?' && head[slen] != ' ')
		return CL_RATLS_HEAD_NOT;
	end = find_crlf(head, look, 1);
	if (end == look)
		return look >= CL_RATLS_MAX_HEAD ? CL_RATLS_HEAD_TOO_LONG : CL_RATLS_HEAD_MORE;
	*head_len = end + 4;
	/* The request line ends at the first CRLF: where the head ends, without headers. */
	line = find_crlf(head, end + 2, 0);
	r = cl_reader_make(head + slen, line - slen);
	/* "?QUERY HTTP/1.x": no controls, no stray CR or LF, one space. */
	for (size_t i = 0; i < r.left; i++) {
		if (r.p[i] < 0x20 || r.p[i] == 0x7f)
			return CL_RATLS_HEAD_BAD;
	}
	if (cl_read_u8(&r, &ch) != CL_OK || ch != '?')
		return CL_RATLS_HEAD_BAD;
	while (qlen < r.left && r.p[qlen] != ' ')
		qlen++;
	if (cl_read_sub(&r, qlen, &q) != CL_OK || cl_read_u8(&r, &ch) != CL_OK || ch != ' ')
		return CL_RATLS_HEAD_BAD;
	if (r.left != 8 || (memcmp(r.p, "HTTP/1.1", 8) != 0 && memcmp(r.p, "HTTP/1.0", 8) != 0))
		return CL_RATLS_HEAD_BAD;
	if (query_nonce(q, nonce, nonce_len) != 0) {
		*nonce_len = 0;
		return CL_RATLS_HEAD_BAD;
	}
	return CL_RATLS_HEAD_OK;
}

static void fresh_reply(struct pair *c, const uint8_t *nonce, size_t nonce_len)
{
	struct evbuffer *out = bufferevent_get_output(c->down);
	struct cl_buf ev = {0};
	SSL *ssl = bufferevent_openssl_get_ssl(c->down);
	X509 *cert = ssl ? SSL_get_certificate(ssl) : NULL;

	if (!cert || cl_ratls_fresh_evidence(c->p->o.issue, cert, nonce, nonce_len, &ev) != CL_OK) {
		if (log_ok(c->p))
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
	size_t len = evbuffer_get_length(in), nlen = 0, hlen = 0;
	size_t look = len < CL_RATLS_MAX_HEAD ? len : CL_RATLS_MAX_HEAD;
	uint8_t nonce[CL_RATLS_MAX_NONCE];
	const uint8_t *p = NULL;

	if (len == 0)
		return;
	p = evbuffer_pullup(in, (ev_ssize_t)look);
	if (!p) {
		fail_pair(c, "out of memory");
		return;
	}
	switch (cl_ratls_fresh_parse(p, look, nonce, &nlen, &hlen)) {
	case CL_RATLS_HEAD_NOT:
		open_pair(c);
		return;
	case CL_RATLS_HEAD_MORE:
		return;
	case CL_RATLS_HEAD_OK:
		fresh_reply(c, nonce, nlen);
		break;
	case CL_RATLS_HEAD_BAD:
		evbuffer_add_printf(bufferevent_get_output(c->down),
				    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
		break;
	case CL_RATLS_HEAD_TOO_LONG:
	default:
		fail_pair(c, "attestation request head too long");
		return;
	}
	evbuffer_drain(in, hlen);
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
		if (len >= CL_RATLS_MAX_HEAD)
			fail_pair(c, "attestation response head too long");
		return;
	}
	if ((size_t)e.pos + 4 > CL_RATLS_MAX_HEAD) {
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

	c->last_io = mono();
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

	c->last_io = mono();
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
		/*
		 * An OpenSSL bufferevent that allows dirty shutdowns reports a
		 * failed write (EPIPE, a reset) as EOF while writing: that peer
		 * is gone, with whatever was still queued for it. So is one that
		 * ends twice.
		 */
		if ((what & BEV_EVENT_WRITING) || *eof) {
			cl_log_debug("%s: %s went away", pname(p), side(c, b));
			pair_free(c);
			return;
		}
		forward(c, b);
		*eof = 1;
		bufferevent_disable(b, EV_READ);
		if (is_tls(c, b) && evbuffer_get_length(bufferevent_get_output(b)) > 0) {
			/*
			 * libevent stops writing on close_notify; restart what is
			 * still queued, once: if the peer has gone, the write fails
			 * and comes back here as EOF while writing.
			 */
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
				  why ? why
				  : e ? ebuf
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
	cl_log_debug("%s: %s closed with an error", pname(p), side(c, b));
	ERR_clear_error();
	pair_free(c);
}

/*
 * An OpenSSL bufferevent on fd, or (fd < 0) one that connects later; fd is
 * the callee's either way. Some libevent versions free the SSL when they fail
 * to build the bufferevent, some do not, and some only on some paths: a
 * reference of our own held across the call makes the SSL, and with it the
 * socket its BIO closes, go exactly once whatever libevent did.
 */
static struct bufferevent *tls_bev(struct cl_ratls_proxy *p, evutil_socket_t fd,
				   enum bufferevent_ssl_state st)
{
	SSL *ssl = SSL_new(p->ctx);
	BIO *bio = NULL;
	struct bufferevent *b = NULL;

	if (!ssl)
		goto out;
	if (fd >= 0) {
		bio = BIO_new_socket((int)fd, BIO_CLOSE);
		if (!bio)
			goto out;
		SSL_set_bio(ssl, bio, bio); /* the SSL owns the socket now */
	}
	if (SSL_up_ref(ssl) != 1)
		goto out;
	b = bufferevent_openssl_socket_new(p->base, fd, ssl, st,
					   BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
out:
	if (fd >= 0 && !bio)
		evutil_closesocket(fd);
	SSL_free(ssl);
	ERR_clear_error();
	return b;
}

/* Close fd at once, so the client learns promptly rather than hanging. */
static void refuse(struct cl_ratls_proxy *p, evutil_socket_t fd, const char *why)
{
	evutil_closesocket(fd);
	if (log_ok(p))
		cl_log_warn("%s: refused a connection: %s", pname(p), why);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
		      void *arg)
{
	struct cl_ratls_proxy *p = arg;
	struct addr_count *ac = NULL;
	struct pair *c = NULL;
	evutil_socket_t ufd = -1;

	(void)l;
	(void)len;
	if (p->starved) {
		cl_log_warn("%s: accepting connections again (%lu refused while out of file "
			    "descriptors)",
			    pname(p), p->refused);
		p->starved = 0;
		p->refused = 0;
	}
	p->backoff_ms = 0;
	if (p->nconns >= p->max_conns) {
		refuse(p, fd, "connection limit reached");
		return;
	}
	ac = addr_get(p, sa);
	if (!ac) {
		refuse(p, fd, "out of memory");
		return;
	}
	if (p->per_addr > 0 && ac->n >= p->per_addr) {
		addr_put(p, ac);
		refuse(p, fd, "connection limit for the client's address reached");
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		addr_put(p, ac);
		refuse(p, fd, "out of memory");
		return;
	}
	c->p = p;
	c->ac = ac;
	ac->n++;
	c->next = p->pairs;
	if (p->pairs)
		p->pairs->prev = c;
	p->pairs = c;
	p->nconns++;
	c->last_io = mono();
	c->timer = evtimer_new(p->base, timer_cb, c);
	if (!c->timer) {
		evutil_closesocket(fd);
		fail_pair(c, "out of memory");
		return;
	}
	arm(c, (double)p->handshake_secs);
	nodelay(fd);
	if (p->o.mode == CL_RATLS_SERVE) {
		c->down = tls_bev(p, fd, BUFFEREVENT_SSL_ACCEPTING);
		if (!c->down) {
			fail_pair(c, "cannot set up TLS for a client: out of memory");
			return;
		}
		/* Clients such as curl often close without close_notify. */
		bufferevent_openssl_set_allow_dirty_shutdown(c->down, 1);
		bufferevent_setcb(c->down, read_cb, write_cb, event_cb, c);
		bufferevent_enable(c->down, EV_READ);
		return;
	}
	c->down = bufferevent_socket_new(p->base, fd,
					 BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!c->down) {
		evutil_closesocket(fd);
		fail_pair(c, "out of memory");
		return;
	}
	/*
	 * The socket is dialled here, not by bufferevent_socket_connect(): that
	 * leaves the socket unowned, and open, when it cannot wrap it in a BIO.
	 */
	ufd = socket(p->target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ufd < 0 || (connect(ufd, (struct sockaddr *)&p->target, p->target_len) != 0 &&
			errno != EINPROGRESS)) {
		int e = errno;

		if (ufd >= 0)
			evutil_closesocket(ufd);
		fail_pair(c, "cannot connect to %s: %s", p->o.target, strerror(e));
		return;
	}
	nodelay(ufd);
	c->up = tls_bev(p, ufd, BUFFEREVENT_SSL_CONNECTING);
	if (!c->up) {
		fail_pair(c, "cannot set up TLS to %s: out of memory", p->o.target);
		return;
	}
	bufferevent_setcb(c->down, read_cb, write_cb, event_cb, c);
	bufferevent_setcb(c->up, read_cb, write_cb, event_cb, c);
	bufferevent_enable(c->up, EV_READ);
}

/* The listening socket's backlog, closed unread: the reserve descriptor makes room for each. */
static void shed(struct cl_ratls_proxy *p, evutil_socket_t lfd)
{
	if (p->reserve_fd >= 0)
		close(p->reserve_fd);
	p->reserve_fd = -1;
	for (int i = 0; i < SHED_MAX; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			break;
		close(fd);
		p->refused++;
	}
	p->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/*
 * accept failed with something other than "try again": without this,
 * libevent logs and retries at once, forever, for as long as the condition
 * lasts. Log once, turn the waiting clients away, and retry after a backoff.
 */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct cl_ratls_proxy *p = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {0, 0};

	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		if (!p->starved)
			cl_log_warn("%s: out of file descriptors (%s): refusing connections until "
				    "some close",
				    pname(p), strerror(err));
		p->starved = 1;
		shed(p, evconnlistener_get_fd(l));
	} else if (log_ok(p)) {
		cl_log_warn("%s: accept: %s", pname(p), strerror(err));
	}
	p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (p->backoff_ms > BACKOFF_MAX_MS)
		p->backoff_ms = BACKOFF_MAX_MS;
	tv.tv_sec = p->backoff_ms / 1000;
	tv.tv_usec = (p->backoff_ms % 1000) * 1000;
	evconnlistener_disable(l);
	if (event_add(p->resume, &tv) != 0)
		evconnlistener_enable(l);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cl_ratls_proxy *p = arg;

	(void)fd;
	(void)what;
	if (!p->stopping)
		evconnlistener_enable(p->lis);
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

/* The limits, defaults filled in; the connection cap fits the descriptor limit. */
static void set_limits(struct cl_ratls_proxy *p)
{
	const struct cl_ratls_proxy_opts *o = &p->o;
	struct rlimit rl;

	p->max_conns = o->max_conns > 0 ? (size_t)o->max_conns : CL_RATLS_MAX_CONNS;
	if (o->max_conns <= 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY) {
		/* Two descriptors a connection, and some for everything else. */
		size_t fit = rl.rlim_cur > 2 * FD_SPARE ? (size_t)(rl.rlim_cur - FD_SPARE) / 2
							: (size_t)rl.rlim_cur / 4;

		if (fit < 1)
			fit = 1;
		if (fit < p->max_conns)
			p->max_conns = fit;
	}
	p->per_addr = o->max_conns_per_addr > 0	   ? o->max_conns_per_addr
		      : o->max_conns_per_addr == 0 ? CL_RATLS_MAX_CONNS_PER_ADDR
						   : 0;
	p->handshake_secs = o->handshake_secs > 0 ? o->handshake_secs : CL_RATLS_HANDSHAKE_SECS;
	p->idle_secs = o->idle_secs > 0 ? o->idle_secs : o->idle_secs == 0 ? CL_RATLS_IDLE_SECS : 0;
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
	p->reserve_fd = -1;
	CL_CHECK(o->listen && o->target, CL_ERR_ARG, "listen and target addresses are required");
	CL_CHECK(o->mode == CL_RATLS_SERVE ? o->issue != NULL
					   : o->verifier != NULL || o->unverified,
		 CL_ERR_ARG, "serve needs an evidence source, connect a verifier");
	CL_CHECK(!o->client_cert || o->issue, CL_ERR_ARG, "a client certificate needs evidence");
	signal(SIGPIPE, SIG_IGN);
	CL_CHECK(evthread_use_pthreads() == 0, CL_ERR_INTERNAL, "libevent threads");
	CL_CHECK(o->handshake_secs >= 0, CL_ERR_ARG, "the handshake deadline cannot be negative");
	CL_TRY(parse_addr(o->target, 0, &p->target, &p->target_len));
	CL_TRY(parse_addr(o->listen, 1, &ls, &llen));
	set_limits(p);
	p->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CL_CHECK(p->reserve_fd >= 0, CL_ERR_IO, "cannot open /dev/null: %s", strerror(errno));
	CL_CHECK(RAND_bytes((uint8_t *)&p->addr_seed, sizeof(p->addr_seed)) == 1, CL_ERR_CRYPTO,
		 "no randomness");
	p->log_tokens = LOG_BURST;
	p->log_last = mono();
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
	evconnlistener_set_error_cb(p->lis, accept_error_cb);
	p->resume = evtimer_new(p->base, resume_cb, p);
	CL_CHECK(p->resume, CL_ERR_NOMEM, "out of memory");
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
	if (p->resume)
		event_free(p->resume);
	for (size_t i = 0; i < ADDR_BUCKETS; i++) {
		while (p->addrs[i]) {
			struct addr_count *a = p->addrs[i];

			p->addrs[i] = a->next;
			free(a);
		}
	}
	if (p->reserve_fd >= 0)
		close(p->reserve_fd);
	if (p->base)
		event_base_free(p->base);
	SSL_CTX_free(p->ctx);
	EVP_PKEY_free(p->key);
	X509_free(p->cert);
	free(p);
}

int cl_ratls_proxy_loop_once(struct cl_ratls_proxy *p)
{
	return event_base_loop(p->base, EVLOOP_NONBLOCK);
}

size_t cl_ratls_proxy_nconns(const struct cl_ratls_proxy *p)
{
	return p->nconns;
}
