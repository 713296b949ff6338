/*
 * The workload's sandbox.
 *
 * The platform clones a child into new PID and mount namespaces (and a user
 * namespace mapping only the caller's uid and gid when not root). That child
 * is the namespace's init: it covers every path through which the state
 * directory can be reached, mounts a /proc that shows only its own
 * namespace, drops every capability, arms the parent-death signal, installs
 * the seccomp filter, then forks the workload and reaps. So a workload
 *
 *  - cannot read the key or the sealing secret: not by path, not through the
 *    working directory it inherited (re-resolved through the covers), not
 *    through a bind mount of the state directory or of a directory above it
 *    (each is covered), not through an inherited descriptor (only stdio, its
 *    socket and its program reach it, and stdio naming the state directory
 *    is refused before launch), not through /proc/PID/cwd or /proc/PID/root
 *    of another process (it sees no process outside its namespace, and its
 *    init is not dumpable);
 *  - cannot reach another workload: no process outside its namespace can be
 *    named, and ptrace, process_vm_readv/writev, pidfd_getfd, kcmp and
 *    process_madvise fail with EPERM even for processes it can name;
 *  - cannot build itself new namespaces or mounts (unshare, setns, mount
 *    family and namespace-creating clone fail) nor regain privileges;
 *  - dies with its platform (the init has the parent-death signal; when a
 *    namespace's init dies the kernel kills every process in it).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>
#include <seccomp.h>

#include "internal.h"

#define MOUNTINFO_MAX (1 << 20)
#define MAX_COVERS    64

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

/* Is path equal to dir or below it (whole components)? */
static int path_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 1 && dir[0] == '/')
		return path[0] == '/';
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int cl_devtee_check_stdio(const char *real_state)
{
	struct stat st, sd;

	CL_ENSURE_MSG(stat(real_state, &sd) == 0, CL_ERR_IO, "%s: %s", real_state, strerror(errno));
	for (int fd = 0; fd <= 2; fd++) {
		char link[32], target[PATH_MAX];
		ssize_t n = 0;

		if (fstat(fd, &st) != 0)
			continue;
		CL_ENSURE_MSG(!(st.st_dev == sd.st_dev && st.st_ino == sd.st_ino), CL_ERR_ARG,
			      "descriptor %d is the state directory; the workload must not get it",
			      fd);
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0 || target[0] != '/')
			continue; /* pipes, sockets, anonymous files */
		target[n] = '\0';
		CL_ENSURE_MSG(!path_within(target, real_state), CL_ERR_ARG,
			      "descriptor %d is %s, inside the state directory; the workload must "
			      "not get it",
			      fd, target);
	}
	return CL_OK;
}

pid_t cl_devtee_clone(int *userns)
{
	const unsigned long base = CLONE_NEWPID | CLONE_NEWNS | SIGCHLD;
	long pid = syscall(SYS_clone, base, NULL, NULL, NULL, NULL);

	*userns = 0;
	if (pid >= 0 || errno != EPERM)
		return (pid_t)pid;
	*userns = 1;
	return (pid_t)syscall(SYS_clone, base | CLONE_NEWUSER, NULL, NULL, NULL, NULL);
}

/*
 * In a fresh user namespace: map only our own uid and gid, so files keep
 * their owners. The maps are files of /proc/self, which belong to root while
 * the process is not dumpable, so it is dumpable for these writes (it holds
 * no secret: the platform's were wiped in it) and not dumpable after.
 */
static int map_ids(uid_t uid, gid_t gid)
{
	char map[64];
	int rc = -1;

	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0)
		return -1;
	if (write_proc("/proc/self/setgroups", "deny") != 0)
		goto out;
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	if (write_proc("/proc/self/uid_map", map) != 0)
		goto out;
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
	rc = write_proc("/proc/self/gid_map", map);
out:
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		rc = -1;
	return rc;
}

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

struct mnt {
	unsigned major, minor;
	char *root, *point, *fstype;
};

/* Split one mountinfo line; returns 0 when it has the fields we need. */
static int parse_mount(char *line, struct mnt *m)
{
	char *save = NULL, *f[64];
	int n = 0, sep = -1;

	for (char *t = strtok_r(line, " ", &save); t && n < 64; t = strtok_r(NULL, " ", &save)) {
		if (n >= 6 && sep < 0 && strcmp(t, "-") == 0)
			sep = n;
		f[n++] = t;
	}
	if (sep < 0 || sep + 1 >= n || sscanf(f[2], "%u:%u", &m->major, &m->minor) != 2)
		return -1;
	m->root = f[3];
	m->point = f[4];
	m->fstype = f[sep + 1];
	unescape(m->root);
	unescape(m->point);
	return 0;
}

static int read_mountinfo(char **out)
{
	int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	char *buf = malloc(MOUNTINFO_MAX + 1);

	*out = NULL;
	if (fd < 0 || !buf) {
		if (fd >= 0)
			close(fd);
		free(buf);
		return -1;
	}
	for (;;) {
		ssize_t r = read(fd, buf + len, MOUNTINFO_MAX - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		if (len == MOUNTINFO_MAX)
			break;
	}
	close(fd);
	if (len == MOUNTINFO_MAX) { /* refuse rather than miss a mount */
		free(buf);
		return -1;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

static int cover(const char *path)
{
	return mount("cloister-devtee", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		     "size=4k,mode=0");
}

/*
 * Cover the state directory wherever it can be reached: at its own path and
 * under every other mount of the same filesystem whose root holds it (bind
 * mounts of it or of a directory above it). Every proc mount is replaced by
 * one of the new PID namespace.
 */
static int hide(const char *state)
{
	char *info = NULL, *save = NULL, inner[PATH_MAX], paths[MAX_COVERS][PATH_MAX];
	char *procs[MAX_COVERS];
	struct mnt m, best = {0};
	struct stat sd;
	size_t best_len = 0, n_cover = 0, n_proc = 0;
	int rc = -1;

	if (stat(state, &sd) != 0 || read_mountinfo(&info) != 0)
		return -1;
	/* First pass: the mount the state directory lives on, and its proc mounts. */
	for (char *l = strtok_r(info, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *copy = strdup(l);
		size_t plen = 0;

		if (!copy || parse_mount(copy, &m) != 0) {
			free(copy);
			goto out;
		}
		plen = strlen(m.point);
		if (strcmp(m.fstype, "proc") == 0) {
			if (n_proc == MAX_COVERS) {
				free(copy);
				goto out;
			}
			procs[n_proc++] = strdup(m.point);
		}
		if (m.major == major(sd.st_dev) && m.minor == minor(sd.st_dev) &&
		    path_within(state, m.point) && plen >= best_len) {
			const char *rest = state + (plen == 1 ? 0 : plen);

			best_len = plen;
			best = m;
			snprintf(inner, sizeof(inner), "%s%s", strcmp(m.root, "/") ? m.root : "",
				 rest);
		}
		free(copy);
	}
	if (!best_len)
		goto out;
	/* Second pass: every mount of that filesystem whose root is at or above it. */
	free(info);
	if (read_mountinfo(&info) != 0)
		goto out;
	save = NULL;
	for (char *l = strtok_r(info, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		const char *rest = NULL;
		int w = 0;

		if (parse_mount(l, &m) != 0)
			goto out;
		if (m.major != best.major || m.minor != best.minor || !path_within(inner, m.root))
			continue;
		rest = inner + (strcmp(m.root, "/") == 0 ? 0 : strlen(m.root));
		w = snprintf(paths[n_cover], PATH_MAX, "%s%s", strcmp(m.point, "/") ? m.point : "",
			     *rest ? rest : "");
		if (w <= 0 || w >= PATH_MAX || n_cover + 1 == MAX_COVERS)
			goto out;
		if (paths[n_cover][0] == '\0')
			snprintf(paths[n_cover], PATH_MAX, "%s", "/");
		n_cover++;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		goto out;
	for (size_t i = 0; i < n_cover; i++) {
		struct stat st;

		/* A route that does not lead to the state directory needs no cover. */
		if (stat(paths[i], &st) != 0 || st.st_dev != sd.st_dev || st.st_ino != sd.st_ino)
			continue;
		if (cover(paths[i]) != 0)
			goto out;
	}
	for (size_t i = 0; i < n_proc; i++)
		if (!procs[i] ||
		    mount("proc", procs[i], "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
			goto out;
	/* The state directory's own path must now lead to a cover. */
	{
		struct stat st;

		rc = stat(state, &st) == 0 && st.st_dev != sd.st_dev ? 0 : -1;
	}
out:
	for (size_t i = 0; i < n_proc; i++)
		free(procs[i]);
	free(info);
	return rc;
}

/* Re-resolve the working directory through the covers; "/" when that fails. */
static int fix_cwd(const char *cwd, const char *state)
{
	if (cwd && !path_within(cwd, state) && chdir(cwd) == 0)
		return 0;
	return chdir("/");
}

static int seccomp_install(void)
{
	static const int deny[] = {
		SCMP_SYS(ptrace),
		SCMP_SYS(process_vm_readv),
		SCMP_SYS(process_vm_writev),
		SCMP_SYS(pidfd_getfd),
		SCMP_SYS(kcmp),
		SCMP_SYS(process_madvise),
		SCMP_SYS(unshare),
		SCMP_SYS(setns),
		SCMP_SYS(mount),
		SCMP_SYS(umount2),
		SCMP_SYS(pivot_root),
		SCMP_SYS(chroot),
		SCMP_SYS(fsopen),
		SCMP_SYS(fsmount),
		SCMP_SYS(fsconfig),
		SCMP_SYS(move_mount),
		SCMP_SYS(open_tree),
		SCMP_SYS(mount_setattr),
		SCMP_SYS(open_by_handle_at),
	};
	static const scmp_datum_t newns[] = {CLONE_NEWNS,    CLONE_NEWUSER, CLONE_NEWPID,
					     CLONE_NEWNET,   CLONE_NEWIPC,  CLONE_NEWUTS,
					     CLONE_NEWCGROUP};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int rc = -1;

	if (!ctx)
		return -1;
	/* Other architectures' syscall tables stay unreachable: bad arch kills. */
	for (size_t i = 0; i < sizeof(deny) / sizeof(deny[0]); i++)
		if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), deny[i], 0) != 0)
			goto out;
	/* No new namespaces; clone3 hides its flags in memory, so callers fall back to clone. */
	for (size_t i = 0; i < sizeof(newns) / sizeof(newns[0]); i++)
		if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, newns[i], newns[i])) != 0)
			goto out;
	if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) != 0)
		goto out;
	rc = seccomp_load(ctx) == 0 ? 0 : -1;
out:
	seccomp_release(ctx);
	return rc;
}

int cl_devtee_sandbox(const struct cl_devtee_sandbox *sb, int *hidden)
{
	*hidden = 0;
	if (sb->namespaced) {
		if (sb->userns && map_ids(sb->uid, sb->gid) != 0)
			CL_BAIL(CL_ERR_INTERNAL, "cannot map ids in the user namespace: %s",
				strerror(errno));
		*hidden = hide(sb->state_dir) == 0;
	}
	CL_ENSURE_MSG(fix_cwd(sb->cwd, sb->state_dir) == 0, CL_ERR_INTERNAL,
		      "cannot change the working directory: %s", strerror(errno));
	/* Without capabilities the covers cannot be removed nor the key reached another way. */
	for (int cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL && errno != EPERM)
			CL_BAIL(CL_ERR_INTERNAL, "cannot drop capability %d: %s", cap,
				strerror(errno));
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	CL_ENSURE_MSG(prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == 0, CL_ERR_INTERNAL,
		      "cannot set the parent-death signal: %s", strerror(errno));
	/* The platform may have died before the signal was armed: then its end is closed. */
	{
		struct pollfd pfd = {sb->sock, POLLIN, 0};

		CL_ENSURE_MSG(poll(&pfd, 1, 0) >= 0 && !(pfd.revents & (POLLHUP | POLLERR)) &&
				      (sb->namespaced || getppid() == sb->parent),
			      CL_ERR_INTERNAL, "the platform process is gone");
	}
	CL_ENSURE_MSG(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, CL_ERR_INTERNAL,
		      "cannot set no-new-privs: %s", strerror(errno));
	CL_ENSURE_MSG(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0, CL_ERR_INTERNAL,
		      "cannot make the sandbox non-dumpable: %s", strerror(errno));
	CL_ENSURE_MSG(seccomp_install() == 0, CL_ERR_INTERNAL, "cannot install the seccomp filter");
	return CL_OK;
}

int cl_devtee_drop_caps(void)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	CL_ENSURE_MSG(syscall(SYS_capset, &h, d) == 0, CL_ERR_INTERNAL,
		      "cannot drop capabilities: %s", strerror(errno));
	return CL_OK;
}
