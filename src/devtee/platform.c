/*
 * The platform process: measure, launch, serve.
 *
 * The program's bytes are copied once into a sealed memfd; the measurement
 * is taken over that copy and the workload is exec'd from it, so what runs
 * is exactly what was measured even if the file on disk changes meanwhile.
 * The workload keeps one end of a SEQPACKET socket pair (fd 3, named in
 * $CLOISTER_DEVTEE_FD); the platform answers requests on the other end with
 * the measurement it fixed before exec, never one the workload names.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cloister/crypto.h"
#include "cloister/devtee.h"
#include "internal.h"

extern char **environ;

#define EVENT_REC (4 + CL_DEVTEE_HASH_LEN + 2 + CL_DEVTEE_MAX_EVENT)
#define SEAL_LEN  32
#define RECV_EOF  (-1)
#define RECV_SKIP (-2)
/* Enough secure heap for the root key and the sealing secret. */
#define SECURE_HEAP (64 * 1024)

struct platform {
	EVP_PKEY *key;
	uint8_t *seal; /* CL_DEVTEE_SEAL_LEN bytes in OpenSSL's secure heap */
	uint8_t measurement[CL_DEVTEE_HASH_LEN];
	uint8_t host_data[CL_DEVTEE_HASH_LEN];
	uint32_t flags;
	uint8_t rtmr[CL_DEVTEE_RTMRS][CL_DEVTEE_HASH_LEN];
	uint8_t log[CL_DEVTEE_MAX_EVENTS * EVENT_REC];
	size_t log_len;
	size_t events;
	/* Whose requests are answered: the process tree under this one. */
	pid_t workload;
};

static volatile sig_atomic_t child_pid;
static const int fwd_sigs[4] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static void forward(int sig)
{
	if (child_pid > 0)
		kill((pid_t)child_pid, sig);
}

/* Answer one request; the response payload goes to out (CL_DEVTEE_MAX_MSG - 4). */
static int handle(struct platform *pf, const struct cl_devtee_req *q, uint8_t *out, size_t *len)
{
	struct cl_devtee_report r = {0};
	uint8_t *p = NULL;

	*len = 0;
	switch (q->op) {
	case CL_DEVTEE_OP_REPORT:
		r.version = CL_DEVTEE_VERSION;
		r.flags = pf->flags;
		memcpy(r.measurement, pf->measurement, sizeof(r.measurement));
		memcpy(r.host_data, pf->host_data, sizeof(r.host_data));
		memcpy(r.report_data, q->report_data, sizeof(r.report_data));
		memcpy(r.rtmr, pf->rtmr, sizeof(r.rtmr));
		CL_GUARD(cl_devtee_report_sign(&r, pf->key, out));
		*len = CL_DEVTEE_REPORT_LEN;
		return CL_OK;
	case CL_DEVTEE_OP_SEAL_KEY:
		CL_GUARD(cl_devtee_seal_key(pf->seal, SEAL_LEN, pf->measurement, q->data,
					    q->data_len, out));
		*len = CL_DEVTEE_SEAL_KEY_LEN;
		return CL_OK;
	case CL_DEVTEE_OP_EXTEND:
		CL_ENSURE_MSG(pf->events < CL_DEVTEE_MAX_EVENTS, CL_ERR_UNSUPPORTED,
			      "the event log is full (%d entries)", CL_DEVTEE_MAX_EVENTS);
		CL_GUARD(cl_devtee_extend(pf->rtmr[q->index], q->digest));
		p = pf->log + pf->log_len;
		for (int i = 0; i < 4; i++)
			p[i] = (uint8_t)(q->index >> (8 * i));
		memcpy(p + 4, q->digest, CL_DEVTEE_HASH_LEN);
		p[4 + CL_DEVTEE_HASH_LEN] = (uint8_t)q->data_len;
		p[5 + CL_DEVTEE_HASH_LEN] = (uint8_t)(q->data_len >> 8);
		if (q->data_len)
			memcpy(p + 6 + CL_DEVTEE_HASH_LEN, q->data, q->data_len);
		pf->log_len += 6 + CL_DEVTEE_HASH_LEN + q->data_len;
		pf->events++;
		return CL_OK;
	case CL_DEVTEE_OP_EVENTLOG:
		memcpy(out, pf->log, pf->log_len);
		*len = pf->log_len;
		return CL_OK;
	default:
		CL_BAIL(CL_ERR_UNSUPPORTED, "unknown request");
	}
}

static void serve_one(struct platform *pf, int sock, const uint8_t *msg, size_t n)
{
	static uint8_t payload[CL_DEVTEE_MAX_MSG], resp[CL_DEVTEE_MAX_MSG];
	struct cl_devtee_req q;
	size_t plen = 0, rlen = 0;
	int st = cl_devtee_req_parse(msg, n, &q);

	if (st == CL_OK)
		st = handle(pf, &q, payload, &plen);
	if (st != CL_OK) {
		cl_log_info("devtee: request refused: %s", cl_error_detail());
		plen = 0;
	}
	if (cl_devtee_resp_encode(st, payload, plen, resp, sizeof(resp), &rlen) == CL_OK)
		(void)send(sock, resp, rlen, MSG_NOSIGNAL);
	cl_zeroize(payload, plen);
	cl_zeroize(resp, rlen);
}

/*
 * Is pid one of the workload's processes: the child the platform started or
 * a descendant? In a PID namespace every process of the workload descends
 * from that child, its init (orphans are reparented to it), and none can
 * leave the namespace. /proc/PID/stat stays readable for processes that are
 * not dumpable.
 */
static int ours(const struct platform *pf, pid_t pid)
{
	for (int depth = 0; depth < 4096 && pid > 1; depth++) {
		char path[64], buf[1024], *rp = NULL;
		FILE *f = NULL;
		size_t n = 0;
		int ppid = 0;

		if (pid == pf->workload)
			return 1;
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		f = fopen(path, "re");
		if (!f)
			return 0;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		/* comm may hold spaces and parentheses: the state and ppid follow the last ')'. */
		rp = strrchr(buf, ')');
		if (!rp || sscanf(rp, ") %*c %d", &ppid) != 1)
			return 0;
		pid = (pid_t)ppid;
	}
	return 0;
}

/*
 * Read one request with its sender's credentials, which the kernel attaches
 * (SO_PASSCRED). Returns the length (0 for an empty message), RECV_EOF at
 * the end of the stream, RECV_SKIP when nothing could be read.
 */
static ssize_t recv_req(int sock, uint8_t *msg, size_t cap, pid_t *sender)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct ucred))];
	} ctl;
	struct iovec iov = {msg, cap};
	struct msghdr mh = {0};
	struct cmsghdr *c = NULL;
	ssize_t n = 0;

	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	*sender = 0;
	n = recvmsg(sock, &mh, MSG_TRUNC | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return RECV_SKIP;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		struct ucred cr;

		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
		    c->cmsg_len == CMSG_LEN(sizeof(cr))) {
			memcpy(&cr, CMSG_DATA(c), sizeof(cr));
			*sender = cr.pid;
		} else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			/* Descriptors are never part of a request: close what came. */
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (size_t i = 0; i < k; i++) {
				int fd = -1;

				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				close(fd);
			}
		}
	}
	/* Every message carries credentials; only the end of the stream has none. */
	if (n == 0 && *sender == 0)
		return RECV_EOF;
	return n;
}

/* A request came through the workload's socket from a process not its own. */
static void refuse_foreign(int sock, pid_t sender)
{
	uint8_t resp[8];
	size_t rlen = 0;

	cl_log_info("devtee: refused a request from process %d, which is not the workload's",
		    (int)sender);
	if (cl_devtee_resp_encode(CL_ERR_POLICY, NULL, 0, resp, sizeof(resp), &rlen) == CL_OK)
		(void)send(sock, resp, rlen, MSG_NOSIGNAL);
}

/* Serve until the workload exits; returns its wait status. */
static int serve(struct platform *pf, int sock, pid_t pid, int *wstatus)
{
	static uint8_t msg[CL_DEVTEE_MAX_MSG];
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd fds[2] = {{sock, POLLIN, 0}, {pidfd, POLLIN, 0}};

	CL_ENSURE_MSG(pidfd >= 0, CL_ERR_INTERNAL, "pidfd_open: %s", strerror(errno));
	for (;;) {
		ssize_t n = 0;
		pid_t sender = 0;

		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			close(pidfd);
			CL_BAIL(CL_ERR_INTERNAL, "poll: %s", strerror(errno));
		}
		if (fds[1].revents)
			break;
		if (!(fds[0].revents & POLLIN)) {
			if (fds[0].revents)
				fds[0].fd = -1; /* every copy of the workload's end is closed */
			continue;
		}
		n = recv_req(sock, msg, sizeof(msg), &sender);
		if (n == RECV_EOF) {
			fds[0].fd = -1;
			continue;
		}
		if (n == RECV_SKIP)
			continue;
		if (!ours(pf, sender)) {
			refuse_foreign(sock, sender);
			continue;
		}
		/* An oversized message is refused as malformed, not cut; so is an empty one. */
		serve_one(pf, sock, msg, (size_t)n > sizeof(msg) ? 0 : (size_t)n);
	}
	close(pidfd);
	while (waitpid(pid, wstatus, 0) < 0)
		CL_ENSURE_MSG(errno == EINTR, CL_ERR_INTERNAL, "waitpid: %s", strerror(errno));
	return CL_OK;
}

/*
 * Copy the program into a sealed, anonymous file. A binary's copy is
 * execute-only: exec of a file its caller cannot read leaves the new image
 * non-dumpable, so the workload starts out of reach of every other process.
 * A #! script's copy stays readable, as its interpreter reads it.
 */
static int sealed_copy(const struct cl_buf *prog, int *out)
{
	int fd = memfd_create("cloister-devtee", MFD_ALLOW_SEALING | MFD_CLOEXEC);
	int script = prog->len >= 2 && prog->data[0] == '#' && prog->data[1] == '!';
	size_t off = 0;

	CL_ENSURE_MSG(fd >= 0, CL_ERR_IO, "memfd_create: %s", strerror(errno));
	while (off < prog->len) {
		ssize_t w = write(fd, prog->data + off, prog->len - off);

		if (w <= 0) {
			close(fd);
			CL_BAIL(CL_ERR_IO, "cannot copy the program: %s", strerror(errno));
		}
		off += (size_t)w;
	}
	if (fchmod(fd, script ? 0555 : 0111) != 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
		close(fd);
		CL_BAIL(CL_ERR_IO, "cannot seal the program copy: %s", strerror(errno));
	}
	*out = fd;
	return CL_OK;
}

/*
 * Leave a process forked from the platform: a copy, so nothing of the
 * library's or the runtime's state is its own to tear down or check (exit
 * hooks, sanitizers' leak checks included); only the status matters.
 */
static _Noreturn void leave(int status)
{
	fflush(stderr);
	syscall(SYS_exit_group, status);
	for (;;)
		;
}

static _Noreturn void die(const char *what)
{
	fprintf(stderr, "cloister devtee: %s\n", what);
	leave(126);
}

/* The workload itself: default signal handling, no capabilities, exec. */
static void exec_workload(char *const argv[])
{
	sigset_t none;

	for (int i = 0; i < 4; i++)
		signal(fwd_sigs[i], SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (cl_devtee_drop_caps() != CL_OK)
		die(cl_error_detail());
	fexecve(4, argv, environ);
	fprintf(stderr, "cloister devtee: cannot execute %s: %s\n", argv[0], strerror(errno));
	leave(127);
}

/*
 * The child: sandbox, then (in a PID namespace) stay as its init, forward
 * signals to the workload, reap, and exit with the workload's status.
 */
static void child(struct platform *pf, int sock, int memfd, struct cl_devtee_sandbox *sb, int debug,
		  char *const argv[])
{
	int s = fcntl(sock, F_DUPFD, 10), m = fcntl(memfd, F_DUPFD, 10), hidden = 0, ws = 0;
	sigset_t block;
	pid_t w = -1;

	/* Nothing of the platform's secrets stays in this process. */
	EVP_PKEY_free(pf->key);
	pf->key = NULL;
	OPENSSL_secure_clear_free(pf->seal, SEAL_LEN);
	pf->seal = NULL;
	if (s < 0 || m < 0 || dup2(s, 3) != 3 || dup2(m, 4) != 4)
		die("cannot set up descriptors");
	/* The workload gets stdio, its socket and its own program; nothing else. */
	if (syscall(SYS_close_range, 5U, ~0U, 0U) != 0) {
		for (int fd = 5; fd < 1024; fd++)
			close(fd);
	}
	sb->sock = 3;
	if (setenv(CL_DEVTEE_FD_ENV, "3", 1) != 0 || cl_devtee_sandbox(sb, &hidden) != CL_OK) {
		fprintf(stderr, "cloister devtee: sandbox: %s\n", cl_error_detail());
		leave(126);
	}
	if (!hidden) {
		if (!debug)
			die("cannot hide the state directory from the workload (no mount or PID "
			    "namespace); refusing to run without --debug");
		fprintf(stderr,
			"cloister devtee: warning: the workload can read the platform key\n");
	}
	if (!sb->namespaced)
		exec_workload(argv);
	sigemptyset(&block);
	for (int i = 0; i < 4; i++)
		sigaddset(&block, fwd_sigs[i]);
	sigprocmask(SIG_BLOCK, &block, NULL);
	w = fork();
	if (w < 0)
		die("cannot start the workload");
	if (w == 0)
		exec_workload(argv);
	/* Only the workload keeps its socket and program. */
	close(3);
	close(4);
	if (chdir("/") != 0)
		die("cannot leave the working directory");
	/*
	 * A namespace's init gets signals from outside only where it has a
	 * handler: the platform's forwarded SIGINT/TERM/HUP/QUIT go on to the
	 * workload from here.
	 */
	child_pid = w;
	{
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = forward;
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = SA_RESTART;
		for (int i = 0; i < 4; i++)
			sigaction(fwd_sigs[i], &sa, NULL);
	}
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	for (;;) {
		pid_t r = waitpid(-1, &ws, 0);

		if (r == w)
			leave(WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws));
		if (r < 0 && errno != EINTR)
			leave(126);
	}
}

int cl_devtee_run(const struct cl_devtee_opts *o, char *const argv[], int *status)
{
	static struct platform pf;
	struct cl_devtee_launch l = {0};
	struct cl_devtee_sandbox sb = {0};
	struct cl_buf prog = {0};
	struct sigaction sa, old[4];
	struct rlimit nocore = {0, 0};
	char dir[PATH_MAX], real[PATH_MAX], path[PATH_MAX], cwd[PATH_MAX];
	int sv[2] = {-1, -1}, memfd = -1, rc = CL_OK, ws = 0, have_sigs = 0, on = 1;
	pid_t pid = -1;

	memset(&pf, 0, sizeof(pf));
	CL_CHECK(argv && argv[0], CL_ERR_ARG, "no program given");
	/* Long-lived secrets live in the secure heap: locked, kept out of core dumps. */
	CL_TRY(cl_secure_heap_init(SECURE_HEAP, NULL));
	pf.seal = OPENSSL_secure_zalloc(SEAL_LEN);
	CL_CHECK(pf.seal, CL_ERR_NOMEM, "out of memory");
	CL_TRY(cl_devtee_state_dir(o->state_dir, dir, sizeof(dir)));
	CL_TRY(cl_devtee_root_load(dir, &pf.key, NULL));
	CL_TRY(cl_devtee_seal_secret_load(dir, pf.seal));
	CL_CHECK(realpath(dir, real), CL_ERR_IO, "%s: %s", dir, strerror(errno));
	CL_TRY(cl_devtee_check_stdio(real));
	CL_TRY(cl_devtee_resolve(argv[0], path, sizeof(path)));
	CL_TRY(cl_read_file(path, CL_DEVTEE_MAX_PROGRAM, &prog));
	CL_TRY(sealed_copy(&prog, &memfd));
	CL_TRY(cl_devtee_host_data(o->init_data_path, pf.host_data));
	pf.flags = o->debug ? CL_DEVTEE_FLAG_DEBUG : 0;
	l.program = prog.data;
	l.program_len = prog.len;
	l.argv = argv;
	while (argv[l.argc])
		l.argc++;
	memcpy(l.host_data, pf.host_data, sizeof(l.host_data));
	l.flags = pf.flags;
	CL_TRY(cl_devtee_measure(&l, pf.measurement));
	cl_buf_free(&prog);
	{
		char hex[2 * CL_DEVTEE_HASH_LEN + 1];

		cl_hex_encode(pf.measurement, CL_DEVTEE_HASH_LEN, hex);
		cl_log_info("devtee: launching %s, measurement %s", path, hex);
	}

	/* The platform holds the key: keep other processes of this user out of its memory. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	CL_CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0, CL_ERR_IO,
		 "socketpair: %s", strerror(errno));
	/* Every request then carries its sender's pid, checked against the workload. */
	CL_CHECK(setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) == 0, CL_ERR_IO,
		 "SO_PASSCRED: %s", strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = forward;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sb.state_dir = real;
	sb.cwd = getcwd(cwd, sizeof(cwd));
	sb.parent = getpid();
	sb.uid = geteuid();
	sb.gid = getegid();
	fflush(NULL);
	pid = cl_devtee_clone(&sb.userns);
	sb.namespaced = pid >= 0;
	if (pid < 0)
		pid = fork();
	CL_CHECK(pid >= 0, CL_ERR_INTERNAL, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(sv[0]);
		child(&pf, sv[1], memfd, &sb, o->debug, argv);
	}
	child_pid = pid;
	for (int i = 0; i < 4; i++)
		sigaction(fwd_sigs[i], &sa, &old[i]);
	have_sigs = 1;
	close(sv[1]);
	sv[1] = -1;
	close(memfd);
	memfd = -1;
	(void)setrlimit(RLIMIT_CORE, &nocore);
	pf.workload = pid;
	rc = serve(&pf, sv[0], pid, &ws);
	if (rc == CL_OK) {
		pid = -1;
		*status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	}
out:
	if (pid > 0) {
		/* The platform is giving up: its workload must not outlive it. */
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (have_sigs)
		for (int i = 0; i < 4; i++)
			sigaction(fwd_sigs[i], &old[i], NULL);
	child_pid = 0;
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	if (memfd >= 0)
		close(memfd);
	cl_buf_free(&prog);
	EVP_PKEY_free(pf.key);
	OPENSSL_secure_clear_free(pf.seal, SEAL_LEN);
	cl_zeroize(&pf, sizeof(pf));
	return rc;
}
