/*
 * cloister demo: the whole flow on one machine, with real processes. A KBS on
 * loopback (SQLite store in a fresh directory) holds a secret under a
 * resource policy naming one workload's launch measurement; that workload,
 * launched in the development TEE, attests and gets the secret; the same
 * workload with one comment line added is refused. Every child is this
 * binary run with other arguments, and is stopped, and the directory
 * removed, on every way out, Ctrl-C included.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "cli.h"
#include "cloister/crypto.h"
#include "cloister/devtee.h"
#include "cloister/kbs.h"
#include "demo_proc.h"

#define DEMO_RESOURCE	"demo/key/secret"
#define DEMO_SECRET_LEN 32
#define DEMO_POLICY_ID	"tag:cloister,2025:demo/release-to-one-measurement#1"
#define KBS_START_MS	30000L
#define CHILD_MS	120000L
#define STOP_GRACE_MS	5000L

struct demo {
	char dir[PATH_MAX]; /* the work directory; everything lives under it */
	char url[64];
	int port, fixed_port, keep;
	pid_t kbs;
	struct cl_kbs_store *store;
	size_t audit_seen;
	uint8_t secret_hash[32];
	uint8_t m_good[CL_DEVTEE_HASH_LEN], m_mod[CL_DEVTEE_HASH_LEN];
	char hex_good[2 * CL_DEVTEE_HASH_LEN + 1], hex_mod[2 * CL_DEVTEE_HASH_LEN + 1];
	char detail[2048];	   /* the current step's lines */
	char failed_log[PATH_MAX]; /* a child's log worth showing when a step fails */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: cloister demo [--keep] [--port N]\n"
		"\n"
		"Run the whole attestation flow on this machine, no TEE hardware needed: start\n"
		"a KBS on loopback (SQLite store in a fresh temporary directory), store a secret\n"
		"under a resource policy that names one workload's launch measurement, launch\n"
		"that workload in the development TEE so it attests and fetches the secret, then\n"
		"launch the same workload with one line added and show it refused. Prints each\n"
		"step, what was checked and how long it took; the last line begins 'demo: ok'\n"
		"when every step behaved as expected. The KBS is stopped and the directory\n"
		"removed on every way out, Ctrl-C included.\n"
		"\n"
		"options:\n"
		"  --keep      keep the work directory (KBS state, logs, workloads)\n"
		"  --port N    KBS port on 127.0.0.1 (default: a free one)\n"
		"  -h, --help  show this help\n"
		"\n"
		"Exit status: 0 every step as expected, 1 a step was not, 2 usage;\n"
		"interrupted: the signal's own status, after cleaning up.\n");
}

static void add(struct demo *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append one indented line to the current step's detail. */
static void add(struct demo *d, const char *fmt, ...)
{
	size_t n = strlen(d->detail);
	va_list ap;

	if (n + 8 >= sizeof(d->detail))
		return;
	memcpy(d->detail + n, "       ", 7);
	n += 7;
	va_start(ap, fmt);
	vsnprintf(d->detail + n, sizeof(d->detail) - n, fmt, ap);
	va_end(ap);
	n = strlen(d->detail);
	if (n + 1 < sizeof(d->detail)) {
		d->detail[n] = '\n';
		d->detail[n + 1] = 0;
	}
}

static int path_in(const struct demo *d, const char *name, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%s", d->dir, name);

	return n > 0 && (size_t)n < cap ? 0 : -1;
}

static int write_text(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "wx");
	int ok = 0;

	if (!f)
		return -1;
	ok = fchmod(fileno(f), mode) == 0 && fputs(text, f) >= 0;
	ok = fclose(f) == 0 && ok;
	return ok ? 0 : -1;
}

/* Run a child to completion; DEMO_INTERRUPTED leaves it to the caller. */
static int run_child(struct demo *d, char *const argv[], const char *log, int in_tee, int *status)
{
	pid_t pid = demo_spawn(argv, log, in_tee);
	int r = 0;

	if (pid < 0) {
		add(d, "cannot start %s: %s", argv[1], strerror(errno));
		*status = 255;
		return DEMO_EXITED;
	}
	r = demo_wait(pid, CHILD_MS, status);
	if (r != DEMO_EXITED) {
		demo_stop(pid, STOP_GRACE_MS, NULL);
		if (r == DEMO_TIMEOUT)
			add(d, "%s %s did not finish in %ld s", argv[1], argv[2], CHILD_MS / 1000);
		*status = 255;
	}
	return r;
}

static int free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (s < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(s, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(s);
	return port;
}

static int kbs_ready(const char *log)
{
	struct cl_buf b = {0};
	int ready = 0;

	if (cl_read_file(log, (size_t)1 << 20, &b) == CL_OK && b.len) {
		ready = memmem(b.data, b.len, "kbs: ready on", 13) != NULL;
	}
	cl_buf_free(&b);
	cl_error_clear();
	return ready;
}

/* ------------------------------------------------------------------ steps */

/* 1: the KBS, with a dev-TEE root it trusts. */
static int step_kbs(struct demo *d)
{
	char state[PATH_MAX], devtee[PATH_MAX], root[PATH_MAX], log[PATH_MAX], listen[32],
		db[PATH_MAX], store[PATH_MAX + 16];
	int st = 0;

	if (path_in(d, "kbs", state, sizeof(state)) ||
	    path_in(d, "devtee", devtee, sizeof(devtee)) ||
	    path_in(d, "devtee/root.pem", root, sizeof(root)) ||
	    path_in(d, "kbs.log", log, sizeof(log)) || path_in(d, "kbs/kbs.db", db, sizeof(db)))
		return -1;
	if (cl_devtee_root_load(devtee, NULL, NULL) != CL_OK) {
		add(d, "cannot create the development root: %s", cl_error_detail());
		return -1;
	}
	/* A port picked by the kernel may be taken again before the KBS binds it. */
	for (int attempt = 0; attempt < 5; attempt++) {
		char *argv[] = {"cloister", "kbs",
				"serve",    "--listen",
				listen,	    "--state",
				state,	    "--devtee-root",
				root,	    "--rate-limit",
				"0",	    "--threads",
				"2",	    NULL};
		double end = demo_now_ms() + (double)KBS_START_MS;

		d->port = d->fixed_port ? d->fixed_port : free_port();
		if (d->port <= 0) {
			add(d, "no free loopback port");
			return -1;
		}
		snprintf(listen, sizeof(listen), "127.0.0.1:%d", d->port);
		snprintf(d->url, sizeof(d->url), "http://127.0.0.1:%d", d->port);
		unlink(log);
		d->kbs = demo_spawn(argv, log, 0);
		if (d->kbs < 0) {
			add(d, "cannot start the KBS: %s", strerror(errno));
			return -1;
		}
		snprintf(d->failed_log, sizeof(d->failed_log), "%s", log);
		for (;;) {
			int r = demo_wait(d->kbs, 20, &st);

			if (r == DEMO_INTERRUPTED)
				return -1;
			if (r == DEMO_EXITED) {
				d->kbs = -1;
				break;
			}
			if (kbs_ready(log))
				goto ready;
			if (demo_now_ms() > end) {
				add(d, "the KBS did not start within %ld s", KBS_START_MS / 1000);
				return -1;
			}
		}
		if (d->fixed_port)
			break;
	}
	add(d, "the KBS exited at start (status %d)", st);
	return -1;
ready:
	snprintf(store, sizeof(store), "sqlite:%s", db);
	/* The demo reads the audit log straight from the store, as `kbs audit` does. */
	if (cl_kbs_store_open(store, &d->store) != CL_OK) {
		add(d, "cannot open the KBS store: %s", cl_error_detail());
		return -1;
	}
	d->failed_log[0] = 0;
	add(d, "cloister kbs serve on %s, SQLite store %s", d->url, db);
	add(d, "trusts dev-TEE evidence signed by the development root %s", root);
	return 0;
}

static int script_text(const struct demo *d, int modified, char *out, size_t cap)
{
	const char *self = demo_self();
	int n = 0;

	/* Single quotes keep the paths literal; a path holding one would break out. */
	if (!self || strchr(self, '\'') || strchr(d->dir, '\''))
		return -1;
	n = snprintf(out, cap,
		     "#!/bin/sh\n"
		     "# cloister demo workload: attest to the KBS, fetch the secret.\n"
		     "exec '%s' agent get-resource --kbs '%s' --attempts 1 \\\n"
		     "\t-o '%s/secret.out' " DEMO_RESOURCE "\n"
		     "%s",
		     self, d->url, d->dir,
		     modified ? "# modified: this line is the only difference\n" : "");
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* 2: the two workloads and their launch measurements, taken before launch. */
static int step_workloads(struct demo *d)
{
	struct cl_devtee_opts o = {0};
	char good[PATH_MAX], mod[PATH_MAX], devtee[PATH_MAX], text[2 * PATH_MAX + 512];
	char *argv_good[] = {good, NULL}, *argv_mod[] = {mod, NULL};

	if (path_in(d, "workload.sh", good, sizeof(good)) ||
	    path_in(d, "workload-modified.sh", mod, sizeof(mod)) ||
	    path_in(d, "devtee", devtee, sizeof(devtee)))
		return -1;
	if (script_text(d, 0, text, sizeof(text)) || write_text(good, text, 0700) ||
	    script_text(d, 1, text, sizeof(text)) || write_text(mod, text, 0700)) {
		add(d, "cannot write the workload scripts in %s", d->dir);
		return -1;
	}
	o.state_dir = devtee;
	/* The same computation as `cloister devtee measure`, over the same bytes. */
	if (cl_devtee_measure_argv(&o, argv_good, d->m_good) != CL_OK ||
	    cl_devtee_measure_argv(&o, argv_mod, d->m_mod) != CL_OK) {
		add(d, "cannot measure the workloads: %s", cl_error_detail());
		return -1;
	}
	cl_hex_encode(d->m_good, sizeof(d->m_good), d->hex_good);
	cl_hex_encode(d->m_mod, sizeof(d->m_mod), d->hex_mod);
	add(d, "workload.sh           measurement %.16s...", d->hex_good);
	add(d, "workload-modified.sh  measurement %.16s...  (one comment line added)", d->hex_mod);
	if (memcmp(d->m_good, d->m_mod, sizeof(d->m_good)) == 0) {
		add(d, "the two measurements are equal");
		return -1;
	}
	add(d, "checked: the measurements differ (SHA-384 over program bytes and argv)");
	return 0;
}

static int admin(struct demo *d, const char *what, char *const args[], int nargs)
{
	char key[PATH_MAX], log[PATH_MAX];
	char *argv[12] = {"cloister", "kbs", "admin", "--kbs", d->url, "--admin-key", key};
	int st = 0, r = 0;

	if (nargs > 4 || path_in(d, "kbs/admin.key", key, sizeof(key)) ||
	    path_in(d, "admin.log", log, sizeof(log)))
		return -1;
	for (int i = 0; i < nargs; i++)
		argv[7 + i] = args[i];
	argv[7 + nargs] = NULL;
	r = run_child(d, argv, log, 0, &st);
	if (r != DEMO_EXITED)
		return -1;
	if (st != 0) {
		add(d, "kbs admin %s failed (exit %d)", what, st);
		snprintf(d->failed_log, sizeof(d->failed_log), "%s", log);
		return -1;
	}
	return 0;
}

/* 3: the secret, the reference values and the resource policy, through the admin API. */
static int step_policy(struct demo *d)
{
	char sec[PATH_MAX], rv[PATH_MAX], pol[PATH_MAX], text[1024], hs[65];
	uint8_t secret[DEMO_SECRET_LEN];
	int rc = -1;

	if (path_in(d, "secret.in", sec, sizeof(sec)) || path_in(d, "rv.json", rv, sizeof(rv)) ||
	    path_in(d, "release.lua", pol, sizeof(pol)))
		return -1;
	if (RAND_bytes(secret, sizeof(secret)) != 1 ||
	    cl_digest(CL_SHA256, secret, sizeof(secret), d->secret_hash) != CL_OK)
		goto out;
	{
		FILE *f = fopen(sec, "wx");
		int ok = f && fchmod(fileno(f), 0600) == 0 &&
			 fwrite(secret, 1, sizeof(secret), f) == sizeof(secret);

		if (f)
			ok = fclose(f) == 0 && ok;
		if (!ok)
			goto out;
	}
	{
		char *a[] = {"put-resource", DEMO_RESOURCE, sec};

		rc = admin(d, "put-resource", a, 3);
		/* The KBS holds it sealed now; no copy stays on disk. */
		unlink(sec);
		if (rc)
			goto out;
	}
	cl_hex_encode(d->secret_hash, sizeof(d->secret_hash), hs);
	add(d, "secret %s: %d random bytes, sha256 %.16s... (sealed at rest by the KBS)",
	    DEMO_RESOURCE, DEMO_SECRET_LEN, hs);
	rc = -1;
	snprintf(text, sizeof(text), "{\"devtee\": {\"measurement\": [\"%s\"]}}\n", d->hex_good);
	{
		char *a[] = {"set-reference-values", rv};

		if (write_text(rv, text, 0600) || admin(d, "set-reference-values", a, 2))
			goto out;
	}
	add(d, "reference values: devtee measurement %.16s... (the attestation policy's input)",
	    d->hex_good);
	snprintf(text, sizeof(text),
		 "policy_id = \"" DEMO_POLICY_ID "\"\n"
		 "-- Release only to the dev-TEE workload launched with this measurement,\n"
		 "-- and only when its attestation was affirming.\n"
		 "local allowed = \"%s\"\n"
		 "function release(ear, resource)\n"
		 "  local cpu = ear.submods and ear.submods.cpu0\n"
		 "  local ae = cpu and cpu.ear_veraison_annotated_evidence\n"
		 "  local ev = ae and ae.devtee\n"
		 "  if ev == nil then return false, \"not dev-TEE evidence\" end\n"
		 "  if ev.measurement ~= allowed then\n"
		 "    return false, \"measurement \" .. string.sub(ev.measurement, 1, 16) .. \"... "
		 "is not the allowed one\"\n"
		 "  end\n"
		 "  if ear.ear_status ~= \"affirming\" then\n"
		 "    return false, \"attestation status is \" .. tostring(ear.ear_status)\n"
		 "  end\n"
		 "  return true\n"
		 "end\n",
		 d->hex_good);
	{
		char *a[] = {"set-policy", "--resource", DEMO_RESOURCE, pol};

		if (write_text(pol, text, 0600) || admin(d, "set-policy", a, 4))
			goto out;
	}
	add(d, "resource policy for %s: release only to measurement %.16s...", DEMO_RESOURCE,
	    d->hex_good);
	rc = 0;
out:
	cl_zeroize(secret, sizeof(secret));
	if (rc && !d->detail[0])
		add(d, "cannot prepare the secret in %s", d->dir);
	return rc;
}

struct audit_view {
	char tier[32];	  /* the attest entry's decision: the EAR status */
	char event[16];	  /* "release" or "deny" for the resource */
	char policy[128]; /* the resource decision's policy id */
	char reason[256]; /* a denial's reason */
};

/* The entries the KBS added since the last call: one attest, one decision. */
static int audit_read(struct demo *d, struct audit_view *v)
{
	json_t *list = NULL, *e = NULL;
	size_t i = 0;

	memset(v, 0, sizeof(*v));
	if (cl_kbs_store_audit_list(d->store, 0, &list) != CL_OK) {
		add(d, "cannot read the audit log: %s", cl_error_detail());
		return -1;
	}
	json_array_foreach (list, i, e) {
		const char *ev = json_string_value(json_object_get(e, "event"));
		const char *dec = json_string_value(json_object_get(e, "decision"));
		const char *path = json_string_value(json_object_get(e, "path"));
		const char *pid = json_string_value(json_object_get(e, "policy_id"));
		const char *why = json_string_value(json_object_get(e, "detail"));

		if (i < d->audit_seen || !ev)
			continue;
		if (strcmp(ev, "attest") == 0 && dec)
			snprintf(v->tier, sizeof(v->tier), "%s", dec);
		if ((strcmp(ev, "release") == 0 || strcmp(ev, "deny") == 0) && path &&
		    strcmp(path, DEMO_RESOURCE) == 0) {
			snprintf(v->event, sizeof(v->event), "%s", ev);
			snprintf(v->policy, sizeof(v->policy), "%s", pid ? pid : "");
			snprintf(v->reason, sizeof(v->reason), "%s", why ? why : "");
		}
	}
	d->audit_seen = json_array_size(list);
	json_decref(list);
	return 0;
}

/* Launch one workload in the dev TEE; *st its exit status. */
static int launch(struct demo *d, const char *script, const char *logname, int *st)
{
	char devtee[PATH_MAX], prog[PATH_MAX], log[PATH_MAX];
	char *argv[] = {"cloister", "devtee", "run", "--state", devtee, "--", prog, NULL};

	if (path_in(d, "devtee", devtee, sizeof(devtee)) ||
	    path_in(d, script, prog, sizeof(prog)) || path_in(d, logname, log, sizeof(log)))
		return -1;
	snprintf(d->failed_log, sizeof(d->failed_log), "%s", log);
	return run_child(d, argv, log, 1, st) == DEMO_EXITED ? 0 : -1;
}

/* 4: the workload the policy names gets the secret. */
static int step_good(struct demo *d)
{
	struct cl_buf got = {0};
	struct audit_view v;
	char out[PATH_MAX], hs[65];
	uint8_t h[32];
	int st = 0, rc = -1, match = 0;

	if (path_in(d, "secret.out", out, sizeof(out)) ||
	    launch(d, "workload.sh", "workload.log", &st))
		return -1;
	add(d, "cloister devtee run -- workload.sh    measurement %.16s...", d->hex_good);
	if (st != 0) {
		add(d, "the workload exited with %d, expected 0", st);
		goto out;
	}
	if (audit_read(d, &v))
		goto out;
	add(d, "KBS: report signed under the dev root, bound to the agent's nonce and key;");
	add(d, "     measurement in the reference values: EAR status %s",
	    v.tier[0] ? v.tier : "(none)");
	add(d, "KBS: %s %s (policy %s)", v.event[0] ? v.event : "no decision", DEMO_RESOURCE,
	    v.policy);
	if (cl_read_file(out, 4096, &got) != CL_OK) {
		add(d, "the workload wrote no secret: %s", cl_error_detail());
		goto out;
	}
	unlink(out);
	match = got.len == DEMO_SECRET_LEN && cl_digest(CL_SHA256, got.data, got.len, h) == CL_OK &&
		cl_ct_equal(h, d->secret_hash, sizeof(h));
	cl_hex_encode(h, sizeof(h), hs);
	add(d, "workload received %zu bytes, sha256 %.16s... %s", got.len, hs,
	    match ? "= the stored secret" : "!= the stored secret");
	if (!match || strcmp(v.tier, "affirming") != 0 || strcmp(v.event, "release") != 0)
		goto out;
	d->failed_log[0] = 0;
	rc = 0;
out:
	cl_buf_free(&got);
	return rc;
}

/* 5: the modified workload is refused, and nothing reaches it. */
static int step_modified(struct demo *d)
{
	struct cl_buf log = {0};
	struct audit_view v;
	char out[PATH_MAX], logp[PATH_MAX];
	char prefix[17];
	int st = 0, denied = 0, nothing = 0;

	snprintf(prefix, sizeof(prefix), "%.16s", d->hex_mod);
	if (path_in(d, "secret.out", out, sizeof(out)) ||
	    path_in(d, "workload-modified.log", logp, sizeof(logp)) ||
	    launch(d, "workload-modified.sh", "workload-modified.log", &st))
		return -1;
	add(d, "cloister devtee run -- workload-modified.sh    measurement %.16s...", d->hex_mod);
	if (audit_read(d, &v))
		return -1;
	add(d, "KBS: report signed under the dev root, bound to the agent's nonce and key;");
	add(d, "     measurement not in the reference values: EAR status %s",
	    v.tier[0] ? v.tier : "(none)");
	add(d, "KBS: %s %s: %s", v.event[0] ? v.event : "no decision", DEMO_RESOURCE,
	    v.reason[0] ? v.reason : "-");
	if (cl_read_file(logp, (size_t)1 << 20, &log) == CL_OK)
		denied = memmem(log.data, log.len, "403 PolicyDeny", 14) != NULL;
	cl_buf_free(&log);
	cl_error_clear();
	nothing = access(out, F_OK) != 0;
	add(d, "workload: exit %d, %s; %s", st,
	    denied ? "refused with HTTP 403 PolicyDeny" : "no PolicyDeny refusal",
	    nothing ? "no secret written" : "A SECRET WAS WRITTEN");
	/* The policy's reason names the measurement the KBS saw: it must be this launch's. */
	if (st != 1 || !denied || !nothing || strcmp(v.event, "deny") != 0 || v.tier[0] == 0 ||
	    strcmp(v.tier, "affirming") == 0 || !strstr(v.reason, prefix))
		return -1;
	d->failed_log[0] = 0;
	return 0;
}

/* 6: the KBS stops cleanly on SIGTERM. */
static int step_stop(struct demo *d)
{
	int st = 0;

	cl_kbs_store_close(d->store);
	d->store = NULL;
	demo_stop(d->kbs, STOP_GRACE_MS, &st);
	d->kbs = -1;
	add(d, "SIGTERM: the KBS finished in-flight requests and exited with %d", st);
	return st == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- driver */

static void show_log(const char *path)
{
	struct cl_buf b = {0};
	size_t start = 0;

	if (!path[0] || cl_read_file(path, (size_t)1 << 20, &b) != CL_OK || !b.len) {
		cl_buf_free(&b);
		return;
	}
	/* Enough tail to hold the child's own error after any sanitizer chatter. */
	start = b.len > 8000 ? b.len - 8000 : 0;
	fprintf(stderr, "--- %s (end) ---\n%.*s\n---\n", path, (int)(b.len - start),
		(const char *)b.data + start);
	cl_buf_free(&b);
}

static void cleanup(struct demo *d)
{
	cl_kbs_store_close(d->store);
	d->store = NULL;
	if (d->kbs > 0)
		demo_stop(d->kbs, STOP_GRACE_MS, NULL);
	d->kbs = -1;
	if (d->dir[0] && !d->keep && demo_rmtree(d->dir) != 0)
		fprintf(stderr, "cloister demo: cannot remove %s: %s\n", d->dir, strerror(errno));
}

static int parse(int argc, char **argv, struct demo *d)
{
	static const struct option opts[] = {
		{"keep", no_argument, NULL, 'k'},
		{"port", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char *end = NULL;
	long v = 0;
	int c = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case 'k':
			d->keep = 1;
			break;
		case 'p':
			v = strtol(optarg, &end, 10);
			if (!*optarg || *end || v < 1 || v > 65535) {
				fprintf(stderr, "cloister demo: --port must be 1..65535\n");
				return EXIT_USAGE;
			}
			d->fixed_port = (int)v;
			break;
		default:
			fprintf(stderr, "cloister demo: unknown or incomplete option '%s'\n\n",
				argv[optind - 1]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "cloister demo: no operands expected\n\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	return -1;
}

int cmd_demo(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct demo *d);
	} steps[] = {
		{"start the KBS", step_kbs},	   {"measure workloads", step_workloads},
		{"store the secret", step_policy}, {"run the workload", step_good},
		{"run modified", step_modified},   {"stop the KBS", step_stop},
	};
	struct demo *d = calloc(1, sizeof(*d));
	const char *tmp = getenv("TMPDIR");
	char tmpl[PATH_MAX];
	double t0 = demo_now_ms();
	int rc = 1, failed = -1, sig = 0;

	if (!d)
		return 1;
	d->kbs = -1;
	rc = parse(argc, argv, d);
	if (rc >= 0)
		goto done;
	rc = 1;
	demo_signals_install();
	snprintf(tmpl, sizeof(tmpl), "%s/cloister-demo.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(tmpl) || !realpath(tmpl, d->dir) || strlen(d->dir) > sizeof(d->dir) - 256) {
		fprintf(stderr, "cloister demo: cannot create a work directory from %s: %s\n", tmpl,
			strerror(errno));
		if (d->dir[0] == 0)
			rmdir(tmpl);
		goto done;
	}
	printf("cloister demo: a secret released only to the workload it was meant for\n");
	printf("(development TEE, KBS on loopback; work directory %s)\n\n", d->dir);
	fflush(stdout);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		double s = demo_now_ms();
		int ok = 0;

		d->detail[0] = 0;
		ok = steps[i].fn(d) == 0 && !demo_signal;
		if (demo_signal)
			break;
		printf("[%s] %zu. %-20s %7.0f ms\n%s", ok ? " ok " : "FAIL", i + 1, steps[i].name,
		       demo_now_ms() - s, d->detail);
		fflush(stdout);
		if (!ok) {
			failed = (int)i;
			show_log(d->failed_log);
			break;
		}
	}
	sig = demo_signal;
	cleanup(d);
	if (sig) {
		fprintf(stderr, "cloister demo: interrupted; KBS stopped, %s %s\n", d->dir,
			d->keep ? "kept" : "removed");
		free(d);
		demo_signals_restore();
		raise(sig);
		return 128 + sig;
	}
	if (failed >= 0) {
		printf("demo: FAILED at step %d (%s)%s%s\n", failed + 1, steps[failed].name,
		       d->keep ? "; work directory kept: " : "", d->keep ? d->dir : "");
		goto done;
	}
	if (d->keep)
		printf("\nwork directory kept: %s\n", d->dir);
	else
		printf("\nKBS stopped, work directory removed\n");
	printf("demo: ok: secret released to measurement %.16s..., refused to %.16s... (%.1f s)\n",
	       d->hex_good, d->hex_mod, (demo_now_ms() - t0) / 1000);
	rc = 0;
done:
	fflush(stdout);
	free(d);
	return rc;
}
