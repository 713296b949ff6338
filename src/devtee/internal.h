/* Pieces of the development TEE shared between its files. */
#ifndef CLOISTER_DEVTEE_INTERNAL_H
#define CLOISTER_DEVTEE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "cloister/devtee.h"

/* Resolve a program name like execvp() would; out gets the path. */
CL_MUST_USE int cl_devtee_resolve(const char *prog, char *out, size_t cap);
/* SHA-384 of the init-data file, or zero when path is NULL. */
CL_MUST_USE int cl_devtee_host_data(const char *init_data_path, uint8_t out[CL_DEVTEE_HASH_LEN]);
/*
 * In the forked child, before exec: hide state_dir, drop capabilities, set
 * no-new-privs and the parent-death signal, install the seccomp filter.
 * Returns CL_OK or a cl_err; `hidden` tells whether state_dir is out of reach.
 */
CL_MUST_USE int cl_devtee_sandbox(const char *state_dir, pid_t parent, int *hidden);

#endif
