/*
 * The workload's sandbox, set up in the forked child before exec.
 *
 * What it buys: the workload cannot read the platform's key or sealing
 * secret (the state directory is covered by an empty read-only tmpfs in a
 * private mount namespace and capabilities are gone, so it cannot be
 * uncovered), cannot trace or read the memory of any process (seccomp:
 * ptrace, process_vm_readv/writev fail with EPERM, inherited by everything
 * it starts), cannot regain privileges (no-new-privs), and dies with its
 * platform (parent-death signal SIGKILL).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <linux/capability.h>
#include <seccomp.h>

#include "internal.h"

static int write_proc(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n = 0, want = (ssize_t)strlen(text);

	if (fd < 0)
		return -1;
	n = write(fd, text, (size_t)want);
	close(fd);
	return n == want ? 0 : -1;
}

/*
 * A private mount namespace; unprivileged users get one inside a user
 * namespace that maps only their own uid and gid, so files keep their owners.
 */
static int new_mount_ns(void)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();
	char map[64];

	if (unshare(CLONE_NEWNS) == 0)
		return 0;
	if (errno != EPERM || unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
		return -1;
	if (write_proc("/proc/self/setgroups", "deny") != 0)
		return -1;
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	if (write_proc("/proc/self/uid_map", map) != 0)
		return -1;
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
	return write_proc("/proc/self/gid_map", map);
}

static int hide(const char *dir)
{
	if (new_mount_ns() != 0)
		return -1;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		return -1;
	return mount("cloister-devtee", dir, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		     "size=4k,mode=0")
		       ? -1
		       : 0;
}

static int seccomp_install(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int rc = -1;

	if (!ctx)
		return -1;
	/* Other architectures' syscall tables stay unreachable: bad arch kills. */
	if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ptrace), 0) == 0 &&
	    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(process_vm_readv), 0) == 0 &&
	    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(process_vm_writev), 0) == 0 &&
	    seccomp_load(ctx) == 0)
		rc = 0;
	seccomp_release(ctx);
	return rc;
}

int cl_devtee_sandbox(const char *state_dir, pid_t parent, int *hidden)
{
	*hidden = hide(state_dir) == 0;
	/* Without capabilities the tmpfs cannot be unmounted nor the key reached another way. */
	for (int cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL && errno != EPERM)
			CL_BAIL(CL_ERR_INTERNAL, "cannot drop capability %d: %s", cap,
				strerror(errno));
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	CL_ENSURE_MSG(prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == 0, CL_ERR_INTERNAL,
		      "cannot set the parent-death signal: %s", strerror(errno));
	/* The platform may have died before the signal was armed. */
	CL_ENSURE_MSG(getppid() == parent, CL_ERR_INTERNAL, "the platform process is gone");
	CL_ENSURE_MSG(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, CL_ERR_INTERNAL,
		      "cannot set no-new-privs: %s", strerror(errno));
	/* Holds until exec; exec of an ordinary binary makes it dumpable again. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	CL_ENSURE_MSG(seccomp_install() == 0, CL_ERR_INTERNAL, "cannot install the seccomp filter");
	return CL_OK;
}
