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
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloister/crypto.h"
#include "cloister/devtee.h"
#include "internal.h"

extern char **environ;

#define EVENT_REC (4 + CL_DEVTEE_HASH_LEN + 2 + CL_DEVTEE_MAX_EVENT)

struct platform {
	EVP_PKEY *key;
	uint8_t seal[32];
	uint8_t measurement[CL_DEVTEE_HASH_LEN];
	uint8_t host_data[CL_DEVTEE_HASH_LEN];
	uint32_t flags;
	uint8_t rtmr[CL_DEVTEE_RTMRS][CL_DEVTEE_HASH_LEN];
	uint8_t log[CL_DEVTEE_MAX_EVENTS * EVENT_REC];
	size_t log_len;
	size_t events;
};

static volatile sig_atomic_t child_pid;

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
		CL_GUARD(cl_devtee_seal_key(pf->seal, sizeof(pf->seal), pf->measurement, q->data,
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

/* Serve until the workload exits; returns its wait status. */
static int serve(struct platform *pf, int sock, pid_t pid, int *wstatus)
{
	static uint8_t msg[CL_DEVTEE_MAX_MSG];
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd fds[2] = {{sock, POLLIN, 0}, {pidfd, POLLIN, 0}};

	CL_ENSURE_MSG(pidfd >= 0, CL_ERR_INTERNAL, "pidfd_open: %s", strerror(errno));
	for (;;) {
		ssize_t n = 0;

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
		n = recv(sock, msg, sizeof(msg), MSG_TRUNC | MSG_DONTWAIT);
		if (n == 0) {
			fds[0].fd = -1;
			continue;
		}
		if (n < 0)
			continue;
		/* An oversized message is refused as malformed, not cut. */
		serve_one(pf, sock, msg, (size_t)n > sizeof(msg) ? 0 : (size_t)n);
	}
	close(pidfd);
	while (waitpid(pid, wstatus, 0) < 0)
		CL_ENSURE_MSG(errno == EINTR, CL_ERR_INTERNAL, "waitpid: %s", strerror(errno));
	return CL_OK;
}

/* Copy the program into a sealed, anonymous file. */
static int sealed_copy(const struct cl_buf *prog, int *out)
{
	int fd = memfd_create("cloister-devtee", MFD_ALLOW_SEALING);
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
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
		close(fd);
		CL_BAIL(CL_ERR_IO, "cannot seal the program copy: %s", strerror(errno));
	}
	*out = fd;
	return CL_OK;
}

static void child(int sock, int memfd, const char *state, pid_t parent, int debug,
		  char *const argv[])
{
	int s = fcntl(sock, F_DUPFD, 10), m = fcntl(memfd, F_DUPFD, 10), hidden = 0;

	if (s < 0 || m < 0 || dup2(s, 3) != 3 || dup2(m, 4) != 4) {
		fprintf(stderr, "cloister devtee: cannot set up descriptors\n");
		_exit(126);
	}
	/* The workload gets stdio, its socket and its own program; nothing else. */
	if (syscall(SYS_close_range, 5U, ~0U, 0U) != 0) {
		for (int fd = 5; fd < 1024; fd++)
			close(fd);
	}
	if (setenv(CL_DEVTEE_FD_ENV, "3", 1) != 0 ||
	    cl_devtee_sandbox(state, parent, &hidden) != CL_OK) {
		fprintf(stderr, "cloister devtee: sandbox: %s\n", cl_error_detail());
		_exit(126);
	}
	if (!hidden) {
		if (!debug) {
			fprintf(stderr,
				"cloister devtee: cannot hide the state directory from the "
				"workload (no mount namespace); refusing to run without --debug\n");
			_exit(126);
		}
		fprintf(stderr,
			"cloister devtee: warning: the workload can read the platform key\n");
	}
	fexecve(4, argv, environ);
	fprintf(stderr, "cloister devtee: cannot execute %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int cl_devtee_run(const struct cl_devtee_opts *o, char *const argv[], int *status)
{
	static struct platform pf;
	struct cl_devtee_launch l = {0};
	struct cl_buf prog = {0};
	struct sigaction sa, old[4];
	static const int sigs[4] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	char dir[PATH_MAX], real[PATH_MAX], path[PATH_MAX];
	int sv[2] = {-1, -1}, memfd = -1, rc = CL_OK, ws = 0, have_sigs = 0;
	pid_t pid = -1, self = getpid();

	memset(&pf, 0, sizeof(pf));
	CL_CHECK(argv && argv[0], CL_ERR_ARG, "no program given");
	CL_TRY(cl_devtee_state_dir(o->state_dir, dir, sizeof(dir)));
	CL_TRY(cl_devtee_root_load(dir, &pf.key, NULL));
	CL_TRY(cl_devtee_seal_secret_load(dir, pf.seal));
	CL_CHECK(realpath(dir, real), CL_ERR_IO, "%s: %s", dir, strerror(errno));
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
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = forward;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	fflush(NULL);
	pid = fork();
	CL_CHECK(pid >= 0, CL_ERR_INTERNAL, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(sv[0]);
		child(sv[1], memfd, real, self, o->debug, argv);
	}
	child_pid = pid;
	for (int i = 0; i < 4; i++)
		sigaction(sigs[i], &sa, &old[i]);
	have_sigs = 1;
	close(sv[1]);
	sv[1] = -1;
	close(memfd);
	memfd = -1;
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
			sigaction(sigs[i], &old[i], NULL);
	child_pid = 0;
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	if (memfd >= 0)
		close(memfd);
	cl_buf_free(&prog);
	EVP_PKEY_free(pf.key);
	cl_zeroize(&pf, sizeof(pf));
	return rc;
}
