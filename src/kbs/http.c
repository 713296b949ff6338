/*
 * HTTP(S) front end: libevent's evhttp on N worker threads sharing one
 * listening socket, each with its own event base and its own store handle
 * (SQLite connections and libpq connections are not shared across threads).
 * Bodies are bounded by evhttp itself, clients are rate-limited per IP, and
 * SIGTERM stops accepting, lets the workers finish what they have, then
 * exits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <openssl/ssl.h>

#include "internal.h"

#define MAX_THREADS	  32
#define THREADS_PER_CPU	  4
#define RL_SLOTS	  4096
#define GC_INTERVAL_S	  60
#define SHUTDOWN_GRACE_MS 1500

struct rl_slot {
	char ip[48];
	double tokens;
	double last;
};

struct worker {
	pthread_t tid;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct event *stop_ev, *gc_ev;
	struct cl_kbs *kbs;
	struct cl_kbs_store *store;
	const struct cl_kbs_config *cfg;
	SSL_CTX *ssl;
	struct rl_slot *rl;
	int index;
};

static double mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Token bucket per client address (per worker: an approximation that needs no
 * lock). */
static int rate_ok(struct worker *w, const char *ip)
{
	double rate = w->cfg->rate_limit, now = mono(), burst = 0;
	uint32_t h = 2166136261u;
	struct rl_slot *s = NULL;

	if (rate <= 0)
		return 1;
	/* Each worker sees about 1/threads of a client's requests. */
	rate /= (double)(w->cfg->threads > 0 ? w->cfg->threads : 1);
	burst = rate * 2 + 1;
	for (const char *p = ip; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	s = &w->rl[h % RL_SLOTS];
	if (strcmp(s->ip, ip) != 0) {
		snprintf(s->ip, sizeof(s->ip), "%s", ip);
		s->tokens = burst;
		s->last = now;
	}
	s->tokens += (now - s->last) * rate;
	if (s->tokens > burst)
		s->tokens = burst;
	s->last = now;
	if (s->tokens < 1)
		return 0;
	s->tokens -= 1;
	return 1;
}

static void send_resp(struct evhttp_request *req, const struct cl_kbs_resp *r)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	struct evbuffer *out = evhttp_request_get_output_buffer(req);

	evhttp_add_header(oh, "Content-Type",
			  r->content_type ? r->content_type : "application/json");
	evhttp_add_header(oh, "Cache-Control", "no-store");
	if (r->set_cookie[0])
		evhttp_add_header(oh, "Set-Cookie", r->set_cookie);
	if (r->body)
		evbuffer_add(out, r->body, r->body_len);
	evhttp_send_reply(req, r->status, NULL, NULL);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct worker *w = arg;
	struct cl_kbs_req rq = {0};
	struct cl_kbs_resp r = {0};
	struct evkeyvalq *ih = evhttp_request_get_input_headers(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	char *peer = NULL, ip[48] = "?";
	ev_uint16_t port = 0;
	size_t blen = evbuffer_get_length(in);

	if (conn) {
		evhttp_connection_get_peer(conn, &peer, &port);
		if (peer)
			snprintf(ip, sizeof(ip), "%s", peer);
	}
	if (!rate_ok(w, ip)) {
		r.status = 429;
		r.content_type = "application/problem+json";
		r.body = cl_kbs_problem("TooManyRequests", 429, "rate limit exceeded; retry later");
		r.body_len = r.body ? strlen(r.body) : 0;
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
		send_resp(req, &r);
		cl_kbs_resp_free(&r);
		return;
	}
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET:
		rq.method = CL_KBS_GET;
		break;
	case EVHTTP_REQ_POST:
		rq.method = CL_KBS_POST;
		break;
	default:
		rq.method = CL_KBS_OTHER;
		break;
	}
	rq.path = u ? evhttp_uri_get_path(u) : NULL;
	rq.query = u ? evhttp_uri_get_query(u) : NULL;
	rq.cookie = evhttp_find_header(ih, "Cookie");
	rq.authorization = evhttp_find_header(ih, "Authorization");
	rq.content_type = evhttp_find_header(ih, "Content-Type");
	rq.body = blen ? evbuffer_pullup(in, (ev_ssize_t)blen) : NULL;
	rq.body_len = blen;
	if (cl_kbs_handle(w->kbs, w->store, &rq, &r) != CL_OK || !r.body) {
		evhttp_send_error(req, 500, "Internal Server Error");
	} else {
		send_resp(req, &r);
		cl_log_debug("kbs: %s %s -> %d", rq.method == CL_KBS_GET ? "GET" : "POST",
			     rq.path ? rq.path : "?", r.status);
	}
	/* Request bodies can hold secrets (admin uploads): wipe them. */
	if (rq.body)
		cl_zeroize((void *)rq.body, blen);
	cl_kbs_resp_free(&r);
}

static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
	struct worker *w = arg;
	SSL *ssl = SSL_new(w->ssl);

	if (!ssl)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					      BEV_OPT_CLOSE_ON_FREE);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval grace = {SHUTDOWN_GRACE_MS / 1000, (SHUTDOWN_GRACE_MS % 1000) * 1000};

	(void)fd;
	(void)what;
	if (w->bound)
		evhttp_del_accept_socket(w->http, w->bound);
	w->bound = NULL;
	/* Responses already handed to evhttp still need their bytes written. */
	event_base_loopexit(w->base, &grace);
}

static void on_gc(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	if (cl_kbs_store_session_gc(w->store, (int64_t)time(NULL)) != CL_OK)
		cl_log_warn("kbs: session clean-up failed: %s", cl_error_detail());
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	event_base_dispatch(w->base);
	cl_policy_thread_release();
	return NULL;
}

static int listen_socket(const char *listen_addr, evutil_socket_t *out)
{
	char host[256], *port = NULL;
	struct addrinfo hints = {0}, *ai = NULL;
	evutil_socket_t fd = -1;
	int one = 1, rc = CL_OK;

	snprintf(host, sizeof(host), "%s", listen_addr);
	port = strrchr(host, ':');
	CL_CHECK(port, CL_ERR_ARG, "listen address must be HOST:PORT");
	*port++ = 0;
	if (host[0] == '[') {
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = 0;
	}
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	CL_CHECK(getaddrinfo(host[0] ? host : NULL, port, &hints, &ai) == 0 && ai, CL_ERR_ARG,
		 "cannot resolve listen address %s", listen_addr);
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CL_CHECK(fd >= 0, CL_ERR_IO, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	CL_CHECK(bind(fd, ai->ai_addr, ai->ai_addrlen) == 0, CL_ERR_IO, "cannot bind %s: %s",
		 listen_addr, strerror(errno));
	CL_CHECK(listen(fd, 1024) == 0, CL_ERR_IO, "listen: %s", strerror(errno));
	CL_CHECK(evutil_make_socket_nonblocking(fd) == 0, CL_ERR_IO, "nonblocking socket");
	*out = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	if (ai)
		freeaddrinfo(ai);
	return rc;
}

static int tls_ctx(const struct cl_kbs_config *cfg, SSL_CTX **out)
{
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());

	*out = NULL;
	CL_ENSURE_MSG(c, CL_ERR_CRYPTO, "cannot create a TLS context");
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(c, cfg->tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(c, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(c) != 1) {
		SSL_CTX_free(c);
		CL_BAIL(CL_ERR_IO, "cannot load the TLS certificate %s and key %s", cfg->tls_cert,
			cfg->tls_key);
	}
	*out = c;
	return CL_OK;
}

static int worker_init(struct worker *w, evutil_socket_t fd, size_t max_body)
{
	struct timeval gc = {GC_INTERVAL_S, 0};

	w->base = event_base_new();
	w->http = w->base ? evhttp_new(w->base) : NULL;
	w->rl = calloc(RL_SLOTS, sizeof(*w->rl));
	CL_ENSURE_MSG(w->http && w->rl, CL_ERR_NOMEM, "cannot create the HTTP server");
	CL_GUARD(cl_kbs_store_open(w->cfg->store_url, &w->store));
	evhttp_set_max_body_size(w->http, (ev_ssize_t)max_body);
	evhttp_set_max_headers_size(w->http, 16384);
	evhttp_set_timeout(w->http, 30);
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
						    EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
	evhttp_set_gencb(w->http, on_request, w);
	if (w->ssl)
		evhttp_set_bevcb(w->http, tls_bev, w);
	w->bound = evhttp_accept_socket_with_handle(w->http, fd);
	CL_ENSURE_MSG(w->bound, CL_ERR_IO, "cannot accept on the listening socket");
	w->stop_ev = event_new(w->base, -1, 0, on_stop, w);
	CL_ENSURE_MSG(w->stop_ev, CL_ERR_NOMEM, "out of memory");
	if (w->index == 0) {
		w->gc_ev = event_new(w->base, -1, EV_PERSIST, on_gc, w);
		CL_ENSURE_MSG(w->gc_ev && event_add(w->gc_ev, &gc) == 0, CL_ERR_NOMEM,
			      "out of memory");
	}
	return CL_OK;
}

static void worker_free(struct worker *w)
{
	if (w->stop_ev)
		event_free(w->stop_ev);
	if (w->gc_ev)
		event_free(w->gc_ev);
	if (w->http)
		evhttp_free(w->http);
	if (w->base)
		event_base_free(w->base);
	cl_kbs_store_close(w->store);
	free(w->rl);
}

int cl_kbs_serve(const struct cl_kbs_config *cfg_in)
{
	struct cl_kbs_config cfg = *cfg_in;
	struct worker ws[MAX_THREADS];
	struct cl_kbs *k = NULL;
	SSL_CTX *ssl = NULL;
	evutil_socket_t fd = -1;
	sigset_t set, old;
	int n = 0, started = 0, sig = 0, rc = CL_OK;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	memset(ws, 0, sizeof(ws));
	/* Workers block while the store commits (an fsync with SQLite, a round
   * trip with PostgreSQL), and concurrent commits share one fsync (see
   * store_sqlite.c), so more workers than cores keep the cores busy. */
	if (cfg.threads <= 0)
		cfg.threads = ncpu > 0 ? (int)(THREADS_PER_CPU * ncpu) : 8;
	if (cfg.threads > MAX_THREADS)
		cfg.threads = MAX_THREADS;
	n = cfg.threads;
	CL_CHECK(evthread_use_pthreads() == 0, CL_ERR_INTERNAL, "libevent without threads");
	CL_CHECK(!cfg.tls_cert == !cfg.tls_key, CL_ERR_ARG, "--tls-cert and --tls-key go together");
	if (cfg.tls_cert)
		CL_TRY(tls_ctx(&cfg, &ssl));
	CL_TRY(cl_kbs_new(&cfg, &k));
	CL_TRY(listen_socket(cfg.listen, &fd));
	/* Workers inherit the mask: only this thread takes SIGTERM/SIGINT. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < n; i++) {
		ws[i].kbs = k;
		ws[i].cfg = &cfg;
		ws[i].ssl = ssl;
		ws[i].index = i;
		CL_TRY(worker_init(&ws[i], fd, cfg.max_body ? cfg.max_body : CL_MAX_KBS_BODY));
	}
	for (int i = 0; i < n; i++) {
		CL_CHECK(pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) == 0,
			 CL_ERR_INTERNAL, "cannot start a worker thread");
		started++;
	}
	cl_log_info("kbs: listening on %s%s (%d threads, store %s)", cfg.listen,
		    ssl ? " (TLS)" : "", n, cl_kbs_store_kind(ws[0].store));
	/* The e2e tests and scripts wait for this line. */
	fprintf(stderr, "kbs: ready on %s\n", cfg.listen);
	while (sigwait(&set, &sig) != 0)
		;
	cl_log_info("kbs: signal %d, shutting down", sig);
out:
	for (int i = 0; i < started; i++)
		event_active(ws[i].stop_ev, 0, 0);
	for (int i = 0; i < started; i++)
		pthread_join(ws[i].tid, NULL);
	for (int i = 0; i < n; i++)
		worker_free(&ws[i]);
	if (fd >= 0)
		evutil_closesocket(fd);
	cl_kbs_free(k);
	SSL_CTX_free(ssl);
	cl_zeroize(cfg.kek, sizeof(cfg.kek));
	return rc;
}
