/*
 * KBS soak: SOAK_FLOWS (default 10,000) full RCAR flows -- auth -> attest with
 * a dev-TEE report over the runtime data -> resource -> JWE decrypt -- from
 * SOAK_CLIENTS concurrent clients (default 6) over plain sockets, against a
 * `cloister kbs serve` process on loopback with its SQLite store in a
 * temporary directory. Meanwhile:
 *
 *   - some flow attempts are aborted on purpose: the connection is closed
 *     (with FIN or RST) in the middle of a request or of a response, at auth,
 *     attest or resource; the slot then runs a fresh flow that must succeed;
 *   - some flows are slow: every request goes out in pieces of 1..48 bytes
 *     with pauses under 1 ms between them (a request takes well under a second,
 *     far inside the server's request and idle deadlines), and responses are
 *     read in small pieces;
 *   - one admin writer keeps updating eight resources the flows fetch and
 *     creating fresh ones, and records every update acknowledged with 200;
 *   - every SOAK_SEGMENT flows (default 1,000) the KBS is killed with SIGKILL
 *     while flows and admin writes are in flight, and restarted on the same
 *     store. Attempts the kill broke are retried and must succeed.
 *
 * Each segment is one KBS process lifetime. After its first SOAK_WARM flows
 * (default 100: thread stacks, SQLite caches and OpenSSL tables are in place
 * by then) and at its end, clients and writer pause with no connection open,
 * and the KBS's open descriptors (/proc/PID/fd) and VmRSS are sampled.
 *
 * Violations, each making the exit status 1:
 *   - an unexpected error: any failure of a flow that was not aborted on
 *     purpose and not broken by a kill (wrong status, bad JWE, timeout...);
 *   - a stale read: a fetched resource older than the last acknowledged
 *     update of it when the request was sent;
 *   - a lost write: after the last kill, an acknowledged update whose value
 *     is not in the store, or a path with fewer `put-resource` audit rows
 *     than acknowledged updates;
 *   - a missing audit row: a release the client received without its
 *     `release` row (matched by path and the digest of the token's claims),
 *     or more release rows than releases received, resource responses the
 *     clients cut on purpose and attempts a kill broke;
 *   - descriptors: more open at the end of a segment than after its warm-up,
 *     beyond SOAK_FD_SLACK (default 4);
 *   - memory: VmRSS at the end of a segment over SOAK_RSS_FACTOR (default 2)
 *     times its value after the warm-up. The KBS keeps no per-flow state in
 *     memory, so after the warm-up only allocator fragmentation and SQLite's
 *     page caches (2 MiB per worker connection at most) may grow it; 2x
 *     leaves room for those on any machine and still catches a leak of a
 *     flow's buffers (tens of KiB). Across restarts the footprint is printed,
 *     not bounded: the page caches fill as the store grows.
 *
 *   build/bench/soak CLOISTER_BINARY      (make soak)
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <jose/jose.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "cloister/crypto.h"
#include "cloister/devtee.h"
#include "cloister/kbs.h"

#define N_HOT	     8
#define MAX_RESP     (64 << 10)
#define IO_TIMEOUT_S 20
#define MAX_ERRLOG   8
#define MAX_SEGS     1000

/* ------------------------------------------------------------ configuration */

static int n_flows = 10000, n_clients = 6, seg_len = 1000, warm_len = 100, fd_slack = 4;
static double rss_factor = 2.0;
static const char *cloister_bin;
static char dir[] = "/tmp/kbs-soak-XXXXXX";
static int port;
static EVP_PKEY *root_key;
static char *admin_jwt;

/* ------------------------------------------------------------------ shared */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
/* Slots below gate may be claimed; done and in_flight let the coordinator
 * wait for a quiet point. All under mu. */
static int gate, next_slot, done_slots, in_flight, finished;
static int writer_pause, writer_idle, writer_stop;
/* down: the KBS is being killed or restarted; gen: kills so far. */
static atomic_int down, gen;
static pid_t kbs_pid = -1;

/* Acknowledged versions of the hot resources (one writer, so monotonic). */
static atomic_long hot_acked[N_HOT];
static long hot_acked_n[N_HOT], hot_next[N_HOT];

static struct {
	atomic_long ok, slow, aborts, kill_retries, unexpected, stale;
	atomic_long abort_kind[3][2]; /* stage x (mid-request, mid-response) */
	atomic_long w_acked, w_killed, w_unexpected;
} stats;
static char errlog[MAX_ERRLOG][200];
static atomic_int nerrlog;

/* Fresh admin paths acknowledged, and releases received: for the final check. */
static char (*fresh)[40];
static size_t nfresh, capfresh;
struct release {
	char path[24];
	char digest[72];
};

struct client {
	pthread_t t;
	uint64_t rng;
	int fd;
	struct release *rel;
	size_t nrel, caprel;
	uint8_t buf[MAX_RESP];
};

struct seg_sample {
	long rss_start, rss_end; /* KiB */
	int fd_start, fd_end;
	int flows;
};
static struct seg_sample segs[MAX_SEGS];

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_ms(double ms)
{
	struct timespec t = {(time_t)(ms / 1000),
			     (long)((ms - (double)(long)(ms / 1000) * 1000) * 1e6)};

	nanosleep(&t, NULL);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* Uniform in [lo, hi]. */
static int rnd_in(uint64_t *s, int lo, int hi)
{
	return lo + (int)(rnd(s) % (uint64_t)(hi - lo + 1));
}

static void note_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note_error(const char *fmt, ...)
{
	int i = atomic_fetch_add(&nerrlog, 1);
	va_list ap;

	if (i >= MAX_ERRLOG)
		return;
	va_start(ap, fmt);
	vsnprintf(errlog[i], sizeof(errlog[i]), fmt, ap);
	va_end(ap);
}

static int env_int(const char *name, int def, int lo, int hi)
{
	const char *v = getenv(name);
	char *end = NULL;
	long n = 0;

	if (!v || !*v)
		return def;
	n = strtol(v, &end, 10);
	if (*end || n < lo || n > hi) {
		fprintf(stderr, "soak: %s must be %d..%d\n", name, lo, hi);
		exit(2);
	}
	return (int)n;
}

/* --------------------------------------------------------------- the KBS */

static int start_kbs(int life)
{
	char log[300], listen[40], root[300], line[512];
	double t0 = now();

	snprintf(log, sizeof(log), "%s/kbs-%d.log", dir, life);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	snprintf(root, sizeof(root), "%s/devtee/root.pem", dir);
	kbs_pid = fork();
	if (kbs_pid < 0)
		return -1;
	if (kbs_pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd < 0 || dup2(fd, 2) < 0 || dup2(fd, 1) < 0)
			_exit(125);
		close(fd);
		execl(cloister_bin, cloister_bin, "kbs", "serve", "--listen", listen, "--state",
		      dir, "--devtee-root", root, "--rate-limit", "0", (char *)NULL);
		_exit(125);
	}
	/* `kbs: ready` is written once every worker accepts. */
	while (now() - t0 < 30) {
		FILE *f = fopen(log, "r");
		int ready = 0;

		while (f && fgets(line, sizeof(line), f))
			ready |= strncmp(line, "kbs: ready", 10) == 0;
		if (f)
			fclose(f);
		if (ready)
			return 0;
		if (waitpid(kbs_pid, NULL, WNOHANG) == kbs_pid) {
			fprintf(stderr, "soak: the KBS exited at start; see %s\n", log);
			kbs_pid = -1;
			return -1;
		}
		sleep_ms(5);
	}
	fprintf(stderr, "soak: the KBS did not start; see %s\n", log);
	return -1;
}

static void kill_kbs(void)
{
	if (kbs_pid <= 0)
		return;
	kill(kbs_pid, SIGKILL);
	waitpid(kbs_pid, NULL, 0);
	kbs_pid = -1;
}

/* Open descriptors of the KBS; -1 when /proc/PID/fd cannot be read. */
static int count_fds(pid_t pid)
{
	char p[64];
	struct dirent *e = NULL;
	DIR *d = NULL;
	int n = 0;

	snprintf(p, sizeof(p), "/proc/%d/fd", (int)pid);
	if (!(d = opendir(p)))
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* VmRSS in KiB; -1 when unknown. */
static long rss_kib(pid_t pid)
{
	char p[64], line[256];
	long v = -1;
	FILE *f = NULL;

	snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
	if (!(f = fopen(p, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* ------------------------------------------------------------------- HTTP */

enum outcome { OK = 0, ABORTED, KILLED, UNEXPECTED };

static int dial(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {IO_TIMEOUT_S, 0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Close; with rst, as an abort with SO_LINGER 0 (RST, no FIN). */
static void hang_up(struct client *c, int rst)
{
	struct linger l = {1, 0};

	if (c->fd < 0)
		return;
	if (rst)
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(c->fd);
	c->fd = -1;
}

static int send_all(struct client *c, const char *p, size_t n, int slow)
{
	while (n > 0) {
		size_t k = slow ? (size_t)rnd_in(&c->rng, 1, 48) : n;
		ssize_t w = 0;

		if (k > n)
			k = n;
		w = send(c->fd, p, k, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
		if (slow && n > 0)
			sleep_ms(rnd_in(&c->rng, 0, 900) / 1000.0);
	}
	return 0;
}

struct resp {
	int status;
	const char *body;
	size_t body_len;
	char cookie[CL_KBS_SESSION_ID_LEN + 1];
	int close;
};

static const char *header(const char *head, const char *name)
{
	size_t n = strlen(name);

	for (const char *l = strstr(head, "\r\n"); l; l = strstr(l + 2, "\r\n"))
		if (strncasecmp(l + 2, name, n) == 0 && l[2 + n] == ':')
			return l + 3 + n + strspn(l + 3 + n, " ");
	return NULL;
}

/* Read one response into c->buf; slow reads take small pieces. */
static int recv_resp(struct client *c, int slow, struct resp *r)
{
	size_t got = 0, need = 0, hl = 0;
	char *end = NULL;
	const char *v = NULL;

	memset(r, 0, sizeof(*r));
	for (;;) {
		size_t room = MAX_RESP - 1 - got;
		ssize_t n = 0;

		if (slow && room > 64)
			room = (size_t)rnd_in(&c->rng, 1, 64);
		if (room == 0)
			return -2;
		n = recv(c->fd, c->buf + got, room, 0);
		if (n <= 0)
			return -1;
		got += (size_t)n;
		c->buf[got] = 0;
		if (!hl && (end = strstr((char *)c->buf, "\r\n\r\n"))) {
			hl = (size_t)(end - (char *)c->buf) + 4;
			end[2] = 0;
			if (sscanf((char *)c->buf, "HTTP/1.1 %d", &r->status) != 1 ||
			    !(v = header((char *)c->buf, "Content-Length")))
				return -2;
			need = hl + strtoul(v, NULL, 10);
			if (need >= MAX_RESP)
				return -2;
			if ((v = header((char *)c->buf, "Connection")) &&
			    strncasecmp(v, "close", 5) == 0)
				r->close = 1;
			if ((v = header((char *)c->buf, "Set-Cookie")) &&
			    strncmp(v, "kbs-session-id=", 15) == 0)
				snprintf(r->cookie, sizeof(r->cookie), "%.*s",
					 (int)strcspn(v + 15, ";\r"), v + 15);
		}
		if (hl && got >= need)
			break;
	}
	c->buf[need] = 0;
	r->body = (const char *)c->buf + hl;
	r->body_len = need - hl;
	return 0;
}

/* How a flow aborts, if it does: at stage (0 auth, 1 attest, 2 resource). */
struct plan {
	int slow;
	int abort_stage; /* -1: no abort */
	int mid_response, rst;
};

/*
 * One request on the client's connection. OK with the response in r, ABORTED
 * when the plan aborted here, KILLED or UNEXPECTED on a transport failure
 * (by whether a kill happened since g0).
 */
static enum outcome request(struct client *c, const struct plan *pl, int stage, int g0,
			    const char *method, const char *path, const char *cookie,
			    const char *auth, const char *body, struct resp *r)
{
	char head[2048];
	size_t bl = body ? strlen(body) : 0, hl = 0;
	char *msg = NULL;
	int rc = 0;

	hl = (size_t)snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", method,
			      path);
	if (body && hl < sizeof(head))
		hl += (size_t)snprintf(head + hl, sizeof(head) - hl,
				       "Content-Type: application/json\r\n");
	if (cookie && hl < sizeof(head))
		hl += (size_t)snprintf(head + hl, sizeof(head) - hl,
				       "Cookie: kbs-session-id=%s\r\n", cookie);
	if (auth && hl < sizeof(head))
		hl += (size_t)snprintf(head + hl, sizeof(head) - hl, "Authorization: Bearer %s\r\n",
				       auth);
	if (hl < sizeof(head))
		hl += (size_t)snprintf(head + hl, sizeof(head) - hl, "Content-Length: %zu\r\n\r\n",
				       bl);
	if (hl >= sizeof(head) || !(msg = malloc(hl + bl + 1)))
		return UNEXPECTED;
	memcpy(msg, head, hl);
	if (body)
		memcpy(msg + hl, body, bl);
	if (c->fd < 0 && (c->fd = dial()) < 0) {
		free(msg);
		if (atomic_load(&gen) != g0 || atomic_load(&down))
			return KILLED;
		note_error("connect: %s", strerror(errno));
		return UNEXPECTED;
	}
	if (pl->abort_stage >= 0 && pl->abort_stage == stage) {
		if (!pl->mid_response) {
			/* Part of the head or of the body, never all of it. */
			(void)send_all(c, msg, (size_t)rnd_in(&c->rng, 1, (int)(hl + bl - 1)),
				       pl->slow);
		} else if (send_all(c, msg, hl + bl, pl->slow) == 0) {
			size_t k = (size_t)rnd_in(&c->rng, 0, 40);

			if (k > 0)
				(void)!recv(c->fd, c->buf, k, MSG_WAITALL);
		}
		free(msg);
		hang_up(c, pl->rst);
		atomic_fetch_add(&stats.abort_kind[stage][pl->mid_response], 1);
		return ABORTED;
	}
	rc = send_all(c, msg, hl + bl, pl->slow);
	free(msg);
	if (rc == 0)
		rc = recv_resp(c, pl->slow, r);
	if (rc != 0) {
		hang_up(c, 0);
		if (atomic_load(&gen) != g0 || atomic_load(&down))
			return KILLED;
		note_error("%s %s: %s", method, path,
			   rc == -2 ? "malformed response"
			   : errno  ? strerror(errno)
				    : "EOF");
		return UNEXPECTED;
	}
	if (r->close)
		hang_up(c, 0);
	return OK;
}

/* sha256: of the token's claims as the KBS writes it in the audit row. */
static int claims_digest(const char *tok, size_t tl, char out[72])
{
	const char *d1 = memchr(tok, '.', tl),
		   *d2 = d1 ? memchr(d1 + 1, '.', tl - (size_t)(d1 + 1 - tok)) : NULL;
	uint8_t *p = NULL, h[32];
	size_t n = 0;
	json_t *j = NULL;
	char *s = NULL;
	int ok = 0;

	if (d2 && cl_base64_decode(d1 + 1, (size_t)(d2 - d1 - 1), &p, &n) == CL_OK &&
	    (j = json_loadb((const char *)p, n, 0, NULL)) &&
	    (s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS)) &&
	    cl_digest(CL_SHA256, s, strlen(s), h) == CL_OK) {
		memcpy(out, "sha256:", 7);
		cl_hex_encode(h, sizeof(h), out + 7);
		ok = 1;
	}
	free(s);
	json_decref(j);
	free(p);
	return ok;
}

/* --------------------------------------------------------------- one flow */

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		note_error(__VA_ARGS__);                                                           \
		oc = UNEXPECTED;                                                                   \
		goto out;                                                                          \
	} while (0)

static enum outcome attempt(struct client *c, const struct plan *pl)
{
	int g0 = atomic_load(&gen), hot = rnd_in(&c->rng, 0, N_HOT - 1);
	json_t *ch = NULL, *key = json_pack("{s:s, s:s}", "kty", "EC", "crv", "P-256"), *pub = NULL;
	json_t *rd = NULL, *body = NULL, *jwe = NULL, *tok = NULL;
	struct cl_devtee_report dr = {0};
	uint8_t rep[CL_DEVTEE_REPORT_LEN], h[64], *pt = NULL;
	char *b64 = NULL, *s = NULL, cookie[CL_KBS_SESSION_ID_LEN + 1] = "", path[64], want[64];
	char digest[72] = "";
	const char *t = NULL;
	struct resp r;
	enum outcome oc = OK;
	long acked = 0;
	size_t n = 0;

	oc = request(c, pl, 0, g0, "POST", "/kbs/v0/auth", NULL, NULL,
		     "{\"version\":\"0.1.1\",\"tee\":\"devtee\",\"extra-params\":\"\"}", &r);
	if (oc != OK)
		goto out;
	if (r.status != 200 || !r.cookie[0])
		FAIL("auth: status %d: %.100s", r.status, r.body);
	snprintf(cookie, sizeof(cookie), "%s", r.cookie);
	ch = json_loadb(r.body, r.body_len, 0, NULL);
	if (!jose_jwk_gen(NULL, key) || !(pub = json_deep_copy(key)) || !jose_jwk_pub(NULL, pub))
		FAIL("key generation failed");
	json_object_set_new(pub, "alg", json_string("ECDH-ES+A256KW"));
	rd = json_pack("{s:O, s:O}", "nonce", json_object_get(ch, "nonce"), "tee-pubkey", pub);
	if (!rd || cl_kbs_runtime_data_hash(rd, h) != CL_OK)
		FAIL("auth: no nonce: %.100s", r.body);
	dr.version = CL_DEVTEE_VERSION;
	memset(dr.measurement, 0x42, sizeof(dr.measurement));
	memcpy(dr.report_data, h, 64);
	if (cl_devtee_report_sign(&dr, root_key, rep) != CL_OK)
		FAIL("report signing failed");
	b64 = cl_base64_encode(rep, sizeof(rep));
	body = json_pack("{s:O, s:{s:s}}", "runtime-data", rd, "tee-evidence", "report", b64);
	s = json_dumps(body, JSON_COMPACT);
	oc = request(c, pl, 1, g0, "POST", "/kbs/v0/attest", cookie, NULL, s, &r);
	if (oc != OK)
		goto out;
	if (r.status != 200 || !(tok = json_loadb(r.body, r.body_len, 0, NULL)) ||
	    !(t = json_string_value(json_object_get(tok, "token"))) ||
	    !claims_digest(t, strlen(t), digest))
		FAIL("attest: status %d: %.100s", r.status, r.body);
	snprintf(path, sizeof(path), "/kbs/v0/resource/soak/key/%d", hot);
	acked = atomic_load(&hot_acked[hot]);
	oc = request(c, pl, 2, g0, "GET", path, cookie, NULL, NULL, &r);
	if (oc != OK)
		goto out;
	if (r.status != 200 || !(jwe = json_loadb(r.body, r.body_len, 0, NULL)))
		FAIL("resource: status %d: %.100s", r.status, r.body);
	if (cl_kbs_jwe_decrypt(key, jwe, &pt, &n) != CL_OK)
		FAIL("resource: JWE does not decrypt: %s", cl_error_detail());
	{
		long v = -1;

		snprintf(want, sizeof(want), "soak/key/%d v=", hot);
		if (n < strlen(want) || memcmp(pt, want, strlen(want)) != 0 ||
		    sscanf((const char *)pt + strlen(want), "%ld", &v) != 1)
			FAIL("resource: unexpected content");
		if (v < acked) {
			atomic_fetch_add(&stats.stale, 1);
			FAIL("soak/key/%d: read v=%ld after v=%ld was acknowledged", hot, v, acked);
		}
	}
	if (c->nrel == c->caprel) {
		c->caprel = c->caprel ? 2 * c->caprel : 1024;
		c->rel = realloc(c->rel, c->caprel * sizeof(*c->rel));
		if (!c->rel)
			abort();
	}
	snprintf(c->rel[c->nrel].path, sizeof(c->rel[0].path), "soak/key/%d", hot);
	memcpy(c->rel[c->nrel].digest, digest, sizeof(digest));
	c->nrel++;
out:
	free(pt);
	free(s);
	free(b64);
	json_decref(tok);
	json_decref(jwe);
	json_decref(body);
	json_decref(rd);
	json_decref(pub);
	json_decref(key);
	json_decref(ch);
	if (oc == UNEXPECTED)
		hang_up(c, 0);
	return oc;
}

static void wait_up(void)
{
	pthread_mutex_lock(&mu);
	while (atomic_load(&down))
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

/* One slot: maybe an aborted attempt first, then a full flow until it succeeds. */
static void run_slot(struct client *c)
{
	struct plan pl = {0};
	int tries = 0;
	enum outcome oc = OK;

	pl.slow = rnd_in(&c->rng, 0, 99) < 10;
	pl.abort_stage = -1;
	if (rnd_in(&c->rng, 0, 99) < 12) {
		pl.abort_stage = rnd_in(&c->rng, 0, 2);
		pl.mid_response = rnd_in(&c->rng, 0, 1);
		pl.rst = rnd_in(&c->rng, 0, 1);
		oc = attempt(c, &pl);
		if (oc == ABORTED)
			atomic_fetch_add(&stats.aborts, 1);
		else if (oc == KILLED) {
			atomic_fetch_add(&stats.kill_retries, 1);
			wait_up();
		} else if (oc == UNEXPECTED)
			atomic_fetch_add(&stats.unexpected, 1);
		pl.abort_stage = -1;
	}
	/* Keep-alive across flows, but new connections often too. */
	if (rnd_in(&c->rng, 0, 99) < 30)
		hang_up(c, 0);
	for (tries = 0; tries < 5; tries++) {
		oc = attempt(c, &pl);
		if (oc == OK)
			break;
		if (oc == KILLED) {
			atomic_fetch_add(&stats.kill_retries, 1);
			wait_up();
			tries--; /* a kill is not the flow's fault; it must succeed after it */
			continue;
		}
		atomic_fetch_add(&stats.unexpected, 1);
	}
	if (oc == OK) {
		atomic_fetch_add(&stats.ok, 1);
		if (pl.slow)
			atomic_fetch_add(&stats.slow, 1);
	}
}

static void *client_main(void *arg)
{
	struct client *c = arg;

	for (;;) {
		pthread_mutex_lock(&mu);
		while (!finished && next_slot >= gate) {
			/* Quiet points are measured with no client connection open. */
			hang_up(c, 0);
			pthread_cond_wait(&cv, &mu);
		}
		if (finished) {
			pthread_mutex_unlock(&mu);
			break;
		}
		next_slot++;
		in_flight++;
		pthread_mutex_unlock(&mu);
		run_slot(c);
		pthread_mutex_lock(&mu);
		in_flight--;
		done_slots++;
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
	}
	hang_up(c, 0);
	return NULL;
}

/* ------------------------------------------------------------ admin writer */

/* One admin POST on a fresh connection: HTTP status, 0 on a transport failure. */
static int admin_post(struct client *c, const char *path, const char *body)
{
	struct plan pl = {0, -1, 0, 0};
	struct resp r;
	int st = 0;

	if (request(c, &pl, -1, atomic_load(&gen), "POST", path, NULL, admin_jwt, body, &r) == OK)
		st = r.status;
	hang_up(c, 0);
	return st;
}

static void *writer_main(void *arg)
{
	struct client *c = arg;
	char path[80], body[80];
	long seq = 0;

	for (;;) {
		int hot = (int)(seq / 2 % N_HOT), isfresh = (int)(seq % 2), g0 = 0, st = 0;
		long v = 0;

		pthread_mutex_lock(&mu);
		while (!writer_stop && (writer_pause || atomic_load(&down))) {
			writer_idle = 1;
			pthread_cond_broadcast(&cv);
			pthread_cond_wait(&cv, &mu);
		}
		writer_idle = 0;
		pthread_mutex_unlock(&mu);
		if (writer_stop)
			break;
		g0 = atomic_load(&gen);
		if (isfresh) {
			snprintf(path, sizeof(path), "/kbs/v0/resource/soak/w/%ld", seq);
			snprintf(body, sizeof(body), "fresh %ld", seq);
		} else {
			v = ++hot_next[hot];
			snprintf(path, sizeof(path), "/kbs/v0/resource/soak/key/%d", hot);
			snprintf(body, sizeof(body), "soak/key/%d v=%ld", hot, v);
		}
		st = admin_post(c, path, body);
		if (st == 200) {
			atomic_fetch_add(&stats.w_acked, 1);
			if (isfresh) {
				if (nfresh == capfresh) {
					capfresh = capfresh ? 2 * capfresh : 1024;
					fresh = realloc(fresh, capfresh * sizeof(*fresh));
					if (!fresh)
						abort();
				}
				snprintf(fresh[nfresh++], sizeof(fresh[0]), "soak/w/%ld", seq);
			} else {
				hot_acked_n[hot]++;
				atomic_store(&hot_acked[hot], v);
			}
		} else if (st == 0 && (atomic_load(&gen) != g0 || atomic_load(&down))) {
			atomic_fetch_add(&stats.w_killed, 1);
		} else {
			atomic_fetch_add(&stats.w_unexpected, 1);
			note_error("admin POST %s: status %d", path, st);
		}
		seq++;
		sleep_ms(2);
	}
	return NULL;
}

/* ------------------------------------------------------------ coordinator */

/* Let slots up to g run, then wait until they are all done and the writer rests. */
static void quiesce(int g)
{
	pthread_mutex_lock(&mu);
	gate = g;
	pthread_cond_broadcast(&cv);
	while (done_slots < g || in_flight > 0)
		pthread_cond_wait(&cv, &mu);
	writer_pause = 1;
	while (!writer_idle)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

static void resume_writer(void)
{
	pthread_mutex_lock(&mu);
	writer_pause = 0;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* Descriptors once the KBS has closed every connection the clients closed. */
static int settled_fds(int target)
{
	double t0 = now();
	int n = count_fds(kbs_pid), prev = -2;

	/* At most target, or (target < 0) the same twice in a row. */
	while ((target >= 0 ? n > target : n != prev) && now() - t0 < 3) {
		prev = n;
		sleep_ms(50);
		n = count_fds(kbs_pid);
	}
	return n;
}

/* SIGKILL the KBS a few flows after slot `after` completes, then restart it. */
static int kill_restart(int after, uint64_t *rng, int life, int restart)
{
	int at = after + rnd_in(rng, 2, 20);

	pthread_mutex_lock(&mu);
	gate = after + warm_len > n_flows ? n_flows : after + warm_len;
	if (at > gate - 1)
		at = gate - 1;
	pthread_cond_broadcast(&cv);
	while (restart && done_slots < at)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	if (!restart)
		sleep_ms(rnd_in(rng, 20, 80)); /* the last kill: admin writes in flight */
	atomic_store(&down, 1);
	atomic_fetch_add(&gen, 1);
	kill_kbs();
	if (restart && start_kbs(life) != 0)
		return -1;
	pthread_mutex_lock(&mu);
	if (restart)
		atomic_store(&down, 0);
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	return 0;
}

/* ----------------------------------------------------------- final checks */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct verdict {
	long fresh_found, hot_ok, put_rows, release_rows, releases, releases_found;
	long lost;
};

static int verify_store(struct client *cs, struct verdict *vd)
{
	char db[300], p[300], **keys = NULL, k[128];
	uint8_t kek[CL_KBS_KEK_LEN];
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;
	size_t nkeys = 0, cap = 0;
	int rc = -1;

	snprintf(db, sizeof(db), "%s/kbs.db", dir);
	snprintf(p, sizeof(p), "%s/kek", dir);
	if (cl_kbs_kek_load(p, kek) != CL_OK || sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL))
		goto out;
	/* The value of an acknowledged update, or a later one, is in the store. */
	if (sqlite3_prepare_v2(h, "SELECT blob FROM resources WHERE path = ?", -1, &st, NULL))
		goto out;
	for (size_t i = 0; i < nfresh + N_HOT; i++) {
		char want[320];
		const char *path = i < nfresh ? fresh[i] : p;
		struct cl_buf pt = {0};
		long v = -1;

		if (i >= nfresh)
			snprintf(p, sizeof(p), "soak/key/%zu", i - nfresh);
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, path, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) != SQLITE_ROW ||
		    cl_kbs_unseal(kek, path, sqlite3_column_blob(st, 0),
				  (size_t)sqlite3_column_bytes(st, 0), &pt) != CL_OK) {
			vd->lost++;
			note_error("lost write: %s is not in the store", path);
			continue;
		}
		if (i < nfresh) {
			snprintf(want, sizeof(want), "fresh %s", path + 7);
			if (pt.len == strlen(want) && memcmp(pt.data, want, pt.len) == 0) {
				vd->fresh_found++;
			} else {
				vd->lost++;
				note_error("lost write: %s does not hold its value", path);
			}
		} else {
			snprintf(want, sizeof(want), "%s v=", path);
			if (pt.len > strlen(want) && memcmp(pt.data, want, strlen(want)) == 0 &&
			    sscanf((char *)pt.data + strlen(want), "%ld", &v) == 1 &&
			    v >= atomic_load(&hot_acked[i - nfresh]))
				vd->hot_ok++;
			else {
				vd->lost++;
				note_error("lost write: %s holds v=%ld, v=%ld was acknowledged",
					   path, v, atomic_load(&hot_acked[i - nfresh]));
			}
		}
		cl_buf_free(&pt);
	}
	sqlite3_finalize(st);
	st = NULL;
	/*
	 * Each acknowledged update has its row: per path, rows >= acknowledgements.
	 * Counted once into an indexed temporary table (audit has no path index).
	 */
	if (sqlite3_exec(h,
			 "CREATE TEMP TABLE puts AS SELECT path, COUNT(*) AS n FROM audit WHERE "
			 "event = 'admin' AND decision = 'put-resource' GROUP BY path;"
			 "CREATE INDEX temp.puts_path ON puts (path);",
			 NULL, NULL, NULL) ||
	    sqlite3_prepare_v2(h, "SELECT n FROM temp.puts WHERE path = ?", -1, &st, NULL))
		goto out;
	for (size_t i = 0; i < nfresh + N_HOT; i++) {
		const char *path = i < nfresh ? fresh[i] : p;
		long need = i < nfresh ? 1 : hot_acked_n[i - nfresh], got = 0;

		if (i >= nfresh)
			snprintf(p, sizeof(p), "soak/key/%zu", i - nfresh);
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, path, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) == SQLITE_ROW)
			got = sqlite3_column_int64(st, 0);
		vd->put_rows += got < need ? got : need;
		if (got < need) {
			vd->lost++;
			note_error("%s: %ld put-resource audit rows for %ld acknowledged updates",
				   path, got, need);
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	/* Every release a client received has its row. */
	if (sqlite3_prepare_v2(h,
			       "SELECT path || ' ' || claims_digest FROM audit WHERE event = "
			       "'release' AND decision = 'allow'",
			       -1, &st, NULL))
		goto out;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0);

		if (nkeys == cap) {
			cap = cap ? 2 * cap : 4096;
			keys = realloc(keys, cap * sizeof(*keys));
			if (!keys)
				abort();
		}
		keys[nkeys++] = strdup(s ? s : "");
	}
	vd->release_rows = (long)nkeys;
	qsort(keys, nkeys, sizeof(*keys), cmp_str);
	for (int i = 0; i < n_clients; i++)
		for (size_t j = 0; j < cs[i].nrel; j++) {
			char *kp = k;

			snprintf(k, sizeof(k), "%s %s", cs[i].rel[j].path, cs[i].rel[j].digest);
			vd->releases++;
			if (bsearch(&kp, keys, nkeys, sizeof(*keys), cmp_str))
				vd->releases_found++;
			else
				note_error("release without audit row: %s", k);
		}
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "soak: cannot read the store: %s\n", h ? sqlite3_errmsg(h) : "");
	for (size_t i = 0; i < nkeys; i++)
		free(keys[i]);
	free(keys);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return rc;
}

/* ------------------------------------------------------------------- main */

static int setup(uint64_t seed)
{
	char p[300];
	struct client c = {.fd = -1, .rng = seed};
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), st = 0;
	char m[97], rv_json[200];

	if (!mkdtemp(dir) || cl_kbs_state_init(dir) != CL_OK)
		return -1;
	snprintf(p, sizeof(p), "%s/devtee", dir);
	mkdir(p, 0700);
	if (cl_devtee_root_load(p, &root_key, NULL) != CL_OK)
		return -1;
	snprintf(p, sizeof(p), "%s/admin.key", dir);
	if (cl_kbs_admin_sign(p, CL_KBS_ROLE_ADMIN, 86400, &admin_jwt) != CL_OK)
		return -1;
	/* A free loopback port; the KBS binds it with SO_REUSEADDR on every restart. */
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &al) != 0)
		return -1;
	port = ntohs(a.sin_port);
	close(fd);
	if (start_kbs(0) != 0)
		return -1;
	for (int i = 0; i < 96; i += 2)
		memcpy(m + i, "42", 2);
	m[96] = 0;
	snprintf(rv_json, sizeof(rv_json), "{\"devtee\":{\"measurement\":[\"%s\"]}}", m);
	if ((st = admin_post(&c, "/kbs/v0/reference-values", rv_json)) != 200) {
		fprintf(stderr, "soak: setting reference values: %d\n", st);
		return -1;
	}
	for (int i = 0; i < N_HOT; i++) {
		char path[64], body[64];

		snprintf(path, sizeof(path), "/kbs/v0/resource/soak/key/%d", i);
		snprintf(body, sizeof(body), "soak/key/%d v=0", i);
		if ((st = admin_post(&c, path, body)) != 200) {
			fprintf(stderr, "soak: first upload: %d\n", st);
			return -1;
		}
		hot_acked_n[i] = 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t seed =
		(uint64_t)env_int("SOAK_SEED", (int)(time(NULL) & 0x7fffffff), 0, 0x7fffffff);
	uint64_t rng = seed * 2 + 1;
	struct client *cs = NULL, *wr = NULL;
	struct verdict vd = {0};
	pthread_t wt;
	int nseg = 0, kills = 0, life = 0, bad = 0, rc = 1, fd_unreadable = 0;
	long extra_ok = 0;
	double t0 = 0, el = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CLOISTER_BINARY\n", argv[0]);
		return 2;
	}
	cloister_bin = argv[1];
	n_flows = env_int("SOAK_FLOWS", n_flows, 1, 10000000);
	n_clients = env_int("SOAK_CLIENTS", n_clients, 1, 64);
	seg_len = env_int("SOAK_SEGMENT", seg_len, 10, 10000000);
	warm_len = env_int("SOAK_WARM", warm_len, 1, seg_len - 1);
	fd_slack = env_int("SOAK_FD_SLACK", fd_slack, 0, 1000);
	rss_factor = env_int("SOAK_RSS_FACTOR", 2, 1, 100);
	nseg = (n_flows + seg_len - 1) / seg_len;
	if (nseg > MAX_SEGS || warm_len >= seg_len) {
		fprintf(stderr, "soak: at most %d segments, SOAK_WARM below SOAK_SEGMENT\n",
			MAX_SEGS);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	cl_log_set_level(CL_LOG_ERROR);
	if (setup(seed) != 0) {
		fprintf(stderr, "soak: setup failed: %s\n", cl_error_detail());
		goto out;
	}
	printf("kbs soak: %d flows, %d clients, SIGKILL every %d flows, seed %llu, state %s\n",
	       n_flows, n_clients, seg_len, (unsigned long long)seed, dir);
	fflush(stdout);
	cs = calloc((size_t)n_clients, sizeof(*cs));
	wr = calloc(1, sizeof(*wr));
	if (!cs || !wr)
		goto out;
	wr->fd = -1;
	wr->rng = seed ^ 0x5eed;
	pthread_create(&wt, NULL, writer_main, wr);
	for (int i = 0; i < n_clients; i++) {
		cs[i].fd = -1;
		cs[i].rng = (seed + 1) * 0x9e3779b97f4a7c15ull + (uint64_t)i;
		pthread_create(&cs[i].t, NULL, client_main, &cs[i]);
	}
	t0 = now();
	for (int s = 0; s < nseg; s++) {
		int base = s * seg_len, end = base + seg_len > n_flows ? n_flows : base + seg_len;
		int warm = base + warm_len > end ? end : base + warm_len;
		struct seg_sample *g = &segs[s];

		quiesce(warm);
		g->fd_start = settled_fds(-1);
		g->rss_start = rss_kib(kbs_pid);
		resume_writer();
		quiesce(end);
		g->fd_end = settled_fds(g->fd_start);
		g->rss_end = rss_kib(kbs_pid);
		g->flows = end - base;
		resume_writer();
		if (g->fd_start < 0)
			fd_unreadable = 1;
		if (kill_restart(end, &rng, ++life, s < nseg - 1) != 0)
			goto out;
		kills++;
	}
	el = now() - t0;
	pthread_mutex_lock(&mu);
	finished = 1;
	writer_stop = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < n_clients; i++)
		pthread_join(cs[i].t, NULL);
	pthread_join(wt, NULL);
	if (verify_store(cs, &vd) != 0)
		goto out;

	printf("  flows           %ld ok of %d in %.1f s = %.1f flows/s (%ld slow)\n",
	       atomic_load(&stats.ok), n_flows, el, (double)atomic_load(&stats.ok) / el,
	       atomic_load(&stats.slow));
	printf("  kills           %d SIGKILLs, %d restarts; %ld flow attempts broken by them, all "
	       "retried\n",
	       kills, kills - 1, atomic_load(&stats.kill_retries));
	printf("  aborts          %ld expected (auth %ld/%ld, attest %ld/%ld, resource %ld/%ld "
	       "mid-request/mid-response)\n",
	       atomic_load(&stats.aborts), atomic_load(&stats.abort_kind[0][0]),
	       atomic_load(&stats.abort_kind[0][1]), atomic_load(&stats.abort_kind[1][0]),
	       atomic_load(&stats.abort_kind[1][1]), atomic_load(&stats.abort_kind[2][0]),
	       atomic_load(&stats.abort_kind[2][1]));
	printf("  unexpected      %ld flow errors, %ld stale reads, %ld admin errors\n",
	       atomic_load(&stats.unexpected), atomic_load(&stats.stale),
	       atomic_load(&stats.w_unexpected));
	printf("  admin writes    %ld resource updates acknowledged (%zu new paths, the rest to "
	       "the "
	       "%d fetched ones), %ld cut by kills; in the store: %ld/%zu new, %ld/%d fetched at "
	       "or "
	       "past their last acknowledged version; %ld lost\n",
	       atomic_load(&stats.w_acked) + N_HOT, nfresh, N_HOT, atomic_load(&stats.w_killed),
	       vd.fresh_found, nfresh, vd.hot_ok, N_HOT, vd.lost);
	printf("  audit           %ld acknowledged updates have their put-resource row; %ld/%ld "
	       "releases received have their release row (%ld release rows in all)\n",
	       vd.put_rows, vd.releases_found, vd.releases, vd.release_rows);
	printf("  segment  flows  fds warm->end  VmRSS KiB warm->end\n");
	for (int s = 0; s < nseg; s++) {
		struct seg_sample *g = &segs[s];
		int fd_bad = g->fd_start >= 0 && g->fd_end > g->fd_start + fd_slack;
		int rss_bad = g->rss_end > (long)(rss_factor * (double)g->rss_start);

		printf("  %7d  %5d  %4d -> %-4d   %7ld -> %7ld%s%s\n", s, g->flows, g->fd_start,
		       g->fd_end, g->rss_start, g->rss_end, fd_bad ? "  FD LEAK" : "",
		       rss_bad ? "  RSS GROWTH" : "");
		bad |= fd_bad | rss_bad;
	}
	if (fd_unreadable)
		printf("  (/proc/PID/fd of the KBS is unreadable without root: descriptors not "
		       "checked)\n");
	/* A release row beyond those received needs a resource response the client cut or
	 * a kill lost. */
	extra_ok = atomic_load(&stats.abort_kind[2][1]) + atomic_load(&stats.kill_retries);
	if (vd.release_rows - vd.releases > extra_ok) {
		printf("  error: %ld release rows for %ld releases, at most %ld responses lost\n",
		       vd.release_rows, vd.releases, extra_ok);
		bad = 1;
	}
	bad |= atomic_load(&stats.unexpected) || atomic_load(&stats.stale) ||
	       atomic_load(&stats.w_unexpected) || vd.lost || vd.releases_found != vd.releases ||
	       atomic_load(&stats.ok) != n_flows;
	for (int i = 0; i < atomic_load(&nerrlog) && i < MAX_ERRLOG; i++)
		printf("  error: %s\n", errlog[i]);
	printf("soak: %s\n", bad ? "FAILED" : "passed");
	rc = bad ? 1 : 0;
out:
	kill_kbs();
	if (rc == 0) {
		char cmd[100];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			rc = 1;
	} else {
		fprintf(stderr, "soak: state and KBS logs kept in %s\n", dir);
	}
	for (int i = 0; cs && i < n_clients; i++)
		free(cs[i].rel);
	free(cs);
	free(wr);
	free(fresh);
	free(admin_jwt);
	EVP_PKEY_free(root_key);
	return rc;
}
