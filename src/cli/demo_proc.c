#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "demo_proc.h"

volatile sig_atomic_t demo_signal;

static const int handled[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static void on_signal(int sig)
{
	demo_signal = sig;
}

void demo_signals_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a sleep or wait in progress returns at once. */
	for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
		sigaction(handled[i], &sa, NULL);
}

void demo_signals_restore(void)
{
	for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
		signal(handled[i], SIG_DFL);
}

const char *demo_self(void)
{
	static char path[PATH_MAX];
	ssize_t n = 0;

	if (path[0])
		return path;
	n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n <= 0) {
		path[0] = 0;
		return NULL;
	}
	path[n] = 0;
	return path;
}

double demo_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void child(char *const argv[], const char *self, const char *log, int no_leak_check,
		  pid_t parent)
{
	sigset_t none;
	int in = -1, out = -1;

	/* A background job starts with SIGINT ignored, and ignoring survives exec. */
	demo_signals_restore();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
		_exit(125);
	in = open("/dev/null", O_RDONLY);
	out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600);
	if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(125);
	if (in > 2)
		close(in);
	if (out > 2)
		close(out);
	if (no_leak_check) {
#if defined(__SANITIZE_ADDRESS__)
		setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
		setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
#endif
#endif
	}
	execv(self, argv);
	_exit(127);
}

pid_t demo_spawn(char *const argv[], const char *log, int no_leak_check)
{
	const char *self = demo_self();
	pid_t parent = getpid(), pid = -1;

	if (!self)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		child(argv, self, log, no_leak_check, parent);
	return pid;
}

static int decode(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 255;
}

static void nap(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

int demo_wait(pid_t pid, long timeout_ms, int *status)
{
	double end = demo_now_ms() + (double)timeout_ms;
	int st = 0;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid) {
			*status = decode(st);
			return DEMO_EXITED;
		}
		if (r < 0 && errno != EINTR) {
			*status = 255;
			return DEMO_EXITED;
		}
		if (demo_signal)
			return DEMO_INTERRUPTED;
		if (demo_now_ms() >= end)
			return DEMO_TIMEOUT;
		nap(10);
	}
}

void demo_stop(pid_t pid, long grace_ms, int *status)
{
	double end = 0;
	int st = 0, dummy = 0;

	if (!status)
		status = &dummy;
	*status = 255;
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	end = demo_now_ms() + (double)grace_ms;
	while (demo_now_ms() < end) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid) {
			*status = decode(st);
			return;
		}
		if (r < 0 && errno != EINTR)
			return;
		nap(10);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	*status = decode(st);
}

static int rm_one(const char *path, const struct stat *sb, int type, struct FTW *f)
{
	(void)sb;
	(void)f;
	return (type == FTW_DP ? rmdir(path) : unlink(path)) == 0 || errno == ENOENT ? 0 : -1;
}

int demo_rmtree(const char *dir)
{
	return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
