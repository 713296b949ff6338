/* Pieces of the development TEE shared between its files. */
#ifndef CLOISTER_DEVTEE_INTERNAL_H
#define CLOISTER_DEVTEE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cloister/devtee.h"

/* Resolve a program name like execvp() would; out gets the path. */
CL_MUST_USE int cl_devtee_resolve(const char *prog, char *out, size_t cap);
/* SHA-384 of the init-data file, or zero when path is NULL. */
CL_MUST_USE int cl_devtee_host_data(const char *init_data_path, uint8_t out[CL_DEVTEE_HASH_LEN]);
/* Refuse to launch when stdin, stdout or stderr is the state directory or a file in it. */
CL_MUST_USE int cl_devtee_check_stdio(const char *real_state);
/*
 * fork() into new PID and mount namespaces, adding a user namespace when the
 * caller may not create those alone (*userns then set). -1 with errno when
 * no namespace can be had.
 */
pid_t cl_devtee_clone(int *userns);

struct cl_devtee_sandbox {
	const char *state_dir; /* real path */
	const char *cwd;       /* the platform's working directory, or NULL */
	pid_t parent;	       /* the platform, for the un-namespaced case */
	int sock;	       /* the workload's socket: its peer closes when the platform dies */
	int namespaced;	       /* made by cl_devtee_clone() */
	int userns;
	uid_t uid;
	gid_t gid;
};

/*
 * In the child, before it forks the workload: map ids, cover the state
 * directory wherever it can be reached, mount a private /proc, re-resolve the
 * working directory, drop the capability bounding set, set no-new-privs, the
 * parent-death signal and non-dumpable, install the seccomp filter.
 * Returns CL_OK or a cl_err; `hidden` tells whether state_dir is out of reach.
 */
CL_MUST_USE int cl_devtee_sandbox(const struct cl_devtee_sandbox *sb, int *hidden);
/* Empty the effective, permitted and inheritable capability sets. */
CL_MUST_USE int cl_devtee_drop_caps(void);

#endif
