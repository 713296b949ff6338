/*
 * HTTP(S) front end: libevent's evhttp on N worker threads sharing one
 * listening socket, each with its own event base and its own store handle
 * (SQLite connections and libpq connections are not shared across threads).
 * Bodies are bounded by evhttp itself, clients are rate-limited per IP, and
 * SIGTERM stops accepting, lets the workers finish what they have, then
 * exits.
 *
 * Connection limits around evhttp, which has none of its own in libevent
 * 2.1: every new connection's bufferevent is made here (the bevcb) and, once
 * evhttp has wrapped it, checked against the caps (in all, per address)
 * before a byte is read; each carries an absolute deadline for its next
 * request; accept failures (out of descriptors) back off and turn waiting
 * clients away through a reserve descriptor instead of spinning.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <openssl/ssl.h>

#include "internal.h"

#define MAX_THREADS	  32
#define THREADS_PER_CPU	  4
#define RL_SLOTS	  4096
#define GC_INTERVAL_S	  60
#define SHUTDOWN_GRACE_MS 1500
#define ADDR_BUCKETS	  1024
#define FD_SPARE	  32 /* descriptors for everything but connections */
#define BACKOFF_MIN_MS	  10
#define BACKOFF_MAX_MS	  1000
#define SHED_MAX	  64
#define LOG_RATE	  10.0 /* per-connection log lines a second, bursts of LOG_BURST */
#define LOG_BURST	  50.0

struct rl_slot {
	char ip[48];
	double tokens;
	double last;
};

/* Open connections from one address. */
struct addr_count {
	char ip[48];
	int n;
	struct addr_count *next;
};

/* Shared by the workers, under lock. */
struct limits {
	pthread_mutex_t lock;
	size_t nconns, max_conns;
	int per_addr; /* 0: no cap */
	struct addr_count *addrs[ADDR_BUCKETS];
	int reserve_fd;
	int starved; /* accept is failing for want of descriptors */
	unsigned long refused;
	double log_tokens, log_last;
	unsigned long log_dropped;
};

struct worker;

/* One connection, from the bevcb until evhttp closes it. */
struct conn {
	struct worker *w;
	struct bufferevent *bev;
	struct evhttp_connection *evcon;
	struct event *deadline;
	struct addr_count *ac;
	int plain_fallback; /* TLS wanted, but its bufferevent could not be made */
	struct conn *prev, *next;
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
	struct limits *lim;
	struct event *checkev, *resume;
	struct conn *pending; /* made by the bevcb, not yet checked */
	struct conn *conns;   /* checked and counted */
	int backoff_ms;
};

/* The worker running on this thread (for the listener's error callback). */
static __thread struct worker *this_worker;

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

/* --------------------------------------------------------- connection limits */

/* Whether a per-connection message may be logged now (call under lim->lock). */
static int log_ok(struct limits *l)
{
	double now = mono();

	l->log_tokens += (now - l->log_last) * LOG_RATE;
	if (l->log_tokens > LOG_BURST)
		l->log_tokens = LOG_BURST;
	l->log_last = now;
	if (l->log_tokens < 1) {
		l->log_dropped++;
		return 0;
	}
	l->log_tokens -= 1;
	if (l->log_dropped) {
		cl_log_warn("kbs: %lu connection message(s) suppressed", l->log_dropped);
		l->log_dropped = 0;
	}
	return 1;
}

static struct addr_count **addr_slot(struct limits *l, const char *ip)
{
	uint32_t h = 2166136261u;
	struct addr_count **s = NULL;

	for (const char *p = ip; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	s = &l->addrs[h % ADDR_BUCKETS];
	while (*s && strcmp((*s)->ip, ip) != 0)
		s = &(*s)->next;
	return s;
}

static void addr_put(struct limits *l, struct addr_count *a)
{
	struct addr_count **s = NULL;

	if (!a || a->n > 0)
		return;
	s = addr_slot(l, a->ip);
	if (*s == a) {
		*s = a->next;
		free(a);
	}
}

static void conn_unlink(struct conn **list, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else if (*list == c)
		*list = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static void conn_link(struct conn **list, struct conn *c)
{
	c->prev = NULL;
	c->next = *list;
	if (*list)
		(*list)->prev = c;
	*list = c;
}

static void arm_deadline(struct conn *c)
{
	struct timeval tv = {(time_t)(c->w->cfg->request_timeout > 0 ? c->w->cfg->request_timeout
								     : CL_KBS_REQUEST_TIMEOUT),
			     0};

	if (c->deadline && evtimer_add(c->deadline, &tv) != 0)
		cl_log_error("kbs: cannot arm a connection deadline");
}

/* evhttp is closing the connection: give back what it counted. */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
	struct conn *c = arg;
	struct limits *l = c->w->lim;

	evhttp_connection_set_closecb(evcon, NULL, NULL);
	pthread_mutex_lock(&l->lock);
	l->nconns--;
	if (c->ac) {
		c->ac->n--;
		addr_put(l, c->ac);
	}
	pthread_mutex_unlock(&l->lock);
	conn_unlink(&c->w->conns, c);
	if (c->deadline)
		event_free(c->deadline);
	free(c);
}

/* The request (head and body) did not arrive in time: a trickle cannot keep it open. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct limits *l = c->w->lim;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&l->lock);
	if (log_ok(l))
		cl_log_warn("kbs: closing a connection whose request did not arrive within %lld s",
			    (long long)(c->w->cfg->request_timeout > 0 ? c->w->cfg->request_timeout
								       : CL_KBS_REQUEST_TIMEOUT));
	pthread_mutex_unlock(&l->lock);
	evhttp_connection_free(c->evcon); /* runs on_close, which frees c */
}

/* Count one new connection, or say why not (NULL: counted). */
static const char *admit(struct limits *l, struct conn *c, const char *ip)
{
	struct addr_count **s = NULL;

	if (l->nconns >= l->max_conns)
		return "connection limit reached";
	s = addr_slot(l, ip);
	if (!*s) {
		*s = calloc(1, sizeof(**s));
		if (!*s)
			return "out of memory";
		snprintf((*s)->ip, sizeof((*s)->ip), "%s", ip);
	}
	if (l->per_addr > 0 && (*s)->n >= l->per_addr) {
		addr_put(l, *s);
		return "connection limit for the client's address reached";
	}
	(*s)->n++;
	c->ac = *s;
	l->nconns++;
	return NULL;
}

/*
 * Right after accept, before the loop reads from them: the connections the
 * bevcb saw, now wrapped by evhttp (found through the bufferevent's callback
 * argument, which evhttp sets to its connection, and checked both ways).
 */
static void on_check(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct limits *l = w->lim;

	(void)fd;
	(void)what;
	while (w->pending) {
		struct conn *c = w->pending;
		struct evhttp_connection *evcon = NULL;
		bufferevent_data_cb rd = NULL, wr = NULL;
		bufferevent_event_cb ev = NULL;
		void *cbarg = NULL;
		char *peer = NULL, ip[48] = "?";
		ev_uint16_t port = 0;
		const char *why = NULL;

		conn_unlink(&w->pending, c);
		bufferevent_getcb(c->bev, &rd, &wr, &ev, &cbarg);
		evcon = cbarg;
		if (!evcon || evhttp_connection_get_bufferevent(evcon) != c->bev) {
			/* evhttp gave up on it already (and freed it, but for our reference). */
			bufferevent_decref(c->bev);
			free(c);
			continue;
		}
		bufferevent_decref(c->bev);
		c->evcon = evcon;
		evhttp_connection_get_peer(evcon, &peer, &port);
		if (peer)
			snprintf(ip, sizeof(ip), "%s", peer);
		pthread_mutex_lock(&l->lock);
		if (l->starved) {
			cl_log_warn(
				"kbs: accepting connections again (%lu refused while out of file "
				"descriptors)",
				l->refused);
			l->starved = 0;
			l->refused = 0;
		}
		why = c->plain_fallback ? "cannot set up TLS: out of memory" : admit(l, c, ip);
		if (why && log_ok(l))
			cl_log_warn("kbs: refused a connection from %s: %s", ip, why);
		pthread_mutex_unlock(&l->lock);
		w->backoff_ms = 0;
		c->deadline = why ? NULL : evtimer_new(w->base, on_deadline, c);
		if (!why && !c->deadline) {
			pthread_mutex_lock(&l->lock);
			l->nconns--;
			c->ac->n--;
			addr_put(l, c->ac);
			pthread_mutex_unlock(&l->lock);
			why = "out of memory";
		}
		if (why) {
			/* A prompt close: the client learns at once instead of hanging. */
			evhttp_connection_free(evcon);
			free(c);
			continue;
		}
		conn_link(&w->conns, c);
		evhttp_connection_set_closecb(evcon, on_close, c);
		arm_deadline(c);
	}
}

/* Every new connection's bufferevent: TLS or plain, noted for on_check. */
static struct bufferevent *on_new_conn(struct event_base *base, void *arg)
{
	struct worker *w = arg;
	struct conn *c = calloc(1, sizeof(*c));
	struct bufferevent *b = NULL;
	SSL *ssl = NULL;

	if (!c)
		return NULL;
	c->w = w;
	if (w->ssl) {
		ssl = SSL_new(w->ssl);
		/* libevent 2.1 frees the SSL itself when this fails. */
		b = ssl ? bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
							 BEV_OPT_CLOSE_ON_FREE)
			: NULL;
		/*
		 * Without a bufferevent evhttp would make a plain one and speak
		 * HTTP on a TLS port: make it here, and have on_check close it.
		 */
		if (!b)
			c->plain_fallback = 1;
	}
	if (!b)
		b = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!b) {
		free(c);
		return NULL;
	}
	c->bev = b;
	/* Kept alive until on_check, even if evhttp frees it first. */
	bufferevent_incref(b);
	conn_link(&w->pending, c);
	event_active(w->checkev, EV_READ, 0);
	return b;
}

/* The backlog, closed unread: the reserve descriptor makes room for each. */
static void shed(struct limits *l, evutil_socket_t lfd)
{
	if (l->reserve_fd >= 0)
		close(l->reserve_fd);
	l->reserve_fd = -1;
	for (int i = 0; i < SHED_MAX; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			break;
		close(fd);
		l->refused++;
	}
	l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/*
 * accept failed with something other than "try again": libevent would log
 * and retry at once, for as long as it lasts. Log once, turn the waiting
 * clients away, and retry after a backoff.
 */
static void on_accept_error(struct evconnlistener *lis, void *arg)
{
	struct worker *w = this_worker;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {0, 0};

	(void)arg;
	if (!w)
		return;
	pthread_mutex_lock(&w->lim->lock);
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		if (!w->lim->starved)
			cl_log_warn("kbs: out of file descriptors (%s): refusing connections until "
				    "some close",
				    strerror(err));
		w->lim->starved = 1;
		shed(w->lim, evconnlistener_get_fd(lis));
	} else if (log_ok(w->lim)) {
		cl_log_warn("kbs: accept: %s", strerror(err));
	}
	pthread_mutex_unlock(&w->lim->lock);
	w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (w->backoff_ms > BACKOFF_MAX_MS)
		w->backoff_ms = BACKOFF_MAX_MS;
	tv.tv_sec = w->backoff_ms / 1000;
	tv.tv_usec = (w->backoff_ms % 1000) * 1000;
	evconnlistener_disable(lis);
	if (event_add(w->resume, &tv) != 0)
		evconnlistener_enable(lis);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	if (w->bound)
		evconnlistener_enable(evhttp_bound_socket_get_listener(w->bound));
}

static int limits_init(struct limits *l, const struct cl_kbs_config *cfg)
{
	struct rlimit rl;

	memset(l, 0, sizeof(*l));
	l->reserve_fd = -1;
	CL_ENSURE_MSG(pthread_mutex_init(&l->lock, NULL) == 0, CL_ERR_INTERNAL, "mutex");
	l->max_conns = cfg->max_conns > 0 ? (size_t)cfg->max_conns : CL_KBS_MAX_CONNS;
	if (cfg->max_conns <= 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY) {
		/* The store holds a few descriptors per worker too. */
		size_t spare = FD_SPARE + 4 * (size_t)(cfg->threads > 0 ? cfg->threads : 1);
		size_t fit = rl.rlim_cur > 2 * spare ? (size_t)rl.rlim_cur - spare
						     : (size_t)rl.rlim_cur / 2;

		if (fit < 1)
			fit = 1;
		if (fit < l->max_conns)
			l->max_conns = fit;
	}
	l->per_addr = cfg->max_conns_per_addr > 0    ? cfg->max_conns_per_addr
		      : cfg->max_conns_per_addr == 0 ? CL_KBS_MAX_CONNS_PER_ADDR
						     : 0;
	l->log_tokens = LOG_BURST;
	l->log_last = mono();
	l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CL_ENSURE_MSG(l->reserve_fd >= 0, CL_ERR_IO, "cannot open /dev/null: %s", strerror(errno));
	return CL_OK;
}

static void limits_free(struct limits *l)
{
	for (size_t i = 0; i < ADDR_BUCKETS; i++) {
		while (l->addrs[i]) {
			struct addr_count *a = l->addrs[i];

			l->addrs[i] = a->next;
			free(a);
		}
	}
	if (l->reserve_fd >= 0)
		close(l->reserve_fd);
	pthread_mutex_destroy(&l->lock);
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
		/* The next request's time starts now. */
		for (struct conn *c = w->conns; c; c = c->next) {
			if (c->evcon == conn) {
				arm_deadline(c);
				break;
			}
		}
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

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval grace = {SHUTDOWN_GRACE_MS / 1000, (SHUTDOWN_GRACE_MS % 1000) * 1000};

	(void)fd;
	(void)what;
	if (w->bound)
		evhttp_del_accept_socket(w->http, w->bound);
	w->bound = NULL;
	event_del(w->resume);
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

	this_worker = w;
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
	evhttp_set_timeout(w->http, w->cfg->idle_timeout > 0 ? (int)w->cfg->idle_timeout
							     : CL_KBS_IDLE_TIMEOUT);
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
						    EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
	evhttp_set_gencb(w->http, on_request, w);
	evhttp_set_bevcb(w->http, on_new_conn, w);
	w->checkev = event_new(w->base, -1, 0, on_check, w);
	w->resume = evtimer_new(w->base, on_resume, w);
	CL_ENSURE_MSG(w->checkev && w->resume, CL_ERR_NOMEM, "out of memory");
	w->bound = evhttp_accept_socket_with_handle(w->http, fd);
	CL_ENSURE_MSG(w->bound, CL_ERR_IO, "cannot accept on the listening socket");
	evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(w->bound), on_accept_error);
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
	/* evhttp_free closes every connection (on_close frees each). */
	if (w->http)
		evhttp_free(w->http);
	w->http = NULL;
	while (w->pending) {
		struct conn *c = w->pending;

		conn_unlink(&w->pending, c);
		bufferevent_decref(c->bev);
		free(c);
	}
	if (w->checkev)
		event_free(w->checkev);
	if (w->resume)
		event_free(w->resume);
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
	struct limits lim;
	int lim_ok = 0;
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
	CL_TRY(limits_init(&lim, &cfg));
	lim_ok = 1;
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
		ws[i].lim = &lim;
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
	if (lim_ok)
		limits_free(&lim);
	cl_zeroize(cfg.kek, sizeof(cfg.kek));
	return rc;
}
