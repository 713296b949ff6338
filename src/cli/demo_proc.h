/*
 * Child processes for `cloister demo`: each one is this same binary run with
 * other arguments, its output in a log file, and tracked so that the demo
 * can stop every one of them on any way out, a signal included.
 */
#ifndef CLOISTER_CLI_DEMO_PROC_H
#define CLOISTER_CLI_DEMO_PROC_H

#include <signal.h>
#include <sys/types.h>

/* The signal that asked the demo to stop, or 0. */
extern volatile sig_atomic_t demo_signal;

/* SIGINT, SIGTERM, SIGHUP and SIGQUIT set demo_signal (no SA_RESTART). */
void demo_signals_install(void);
/* Back to the default action, e.g. before re-raising demo_signal. */
void demo_signals_restore(void);

/* The running binary's absolute path (from /proc/self/exe); NULL if unknown. */
const char *demo_self(void);

/*
 * Start `demo_self() argv[1..]` with stdin from /dev/null and stdout and
 * stderr appended to log (mode 0600). The child dies with the demo
 * (PR_SET_DEATHSIG), so even a SIGKILLed demo leaves no server behind.
 * no_leak_check: LeakSanitizer needs ptrace, which the dev TEE's sandbox
 * denies, so sanitizer builds turn it off for what runs inside.
 * Returns the pid, or -1.
 */
pid_t demo_spawn(char *const argv[], const char *log, int no_leak_check);

enum { DEMO_EXITED = 0, DEMO_TIMEOUT = 1, DEMO_INTERRUPTED = 2 };

/*
 * Wait up to timeout_ms for pid. DEMO_EXITED with *status its exit status
 * (128 + signal when killed), DEMO_TIMEOUT, or DEMO_INTERRUPTED when
 * demo_signal was set meanwhile (pid is then still running).
 */
int demo_wait(pid_t pid, long timeout_ms, int *status);

/* SIGTERM, up to grace_ms to exit, then SIGKILL; always reaped. *status as
 * demo_wait (may be NULL). */
void demo_stop(pid_t pid, long grace_ms, int *status);

/* rm -rf dir without following links; 0 on success. */
int demo_rmtree(const char *dir);

/* Milliseconds on the monotonic clock. */
double demo_now_ms(void);

#endif
