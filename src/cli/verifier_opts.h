/*
 * The options every verifying command shares (verify, and later kbs serve,
 * serve, connect), parsed in one place. A command splices
 * VERIFIER_LONGOPTS into its getopt_long table, hands each option to
 * verifier_opts_handle(), then calls verifier_opts_load() once.
 */
#ifndef CLOISTER_CLI_VERIFIER_OPTS_H
#define CLOISTER_CLI_VERIFIER_OPTS_H

#include <getopt.h>

#include "cloister/appraise.h"
#include "cloister/evidence.h"

enum {
	VOPT_POLICY = 0x1000,
	VOPT_REFERENCE_VALUES,
	VOPT_COLLATERAL,
	VOPT_VCEK,
	VOPT_AT,
	VOPT_ALLOW_DEBUG,
	VOPT_CORIM_KEY,
	VOPT_DEVTEE_ROOT,
};

#define VERIFIER_LONGOPTS                                                                          \
	{"policy", required_argument, NULL, VOPT_POLICY},                                          \
		{"reference-values", required_argument, NULL, VOPT_REFERENCE_VALUES},              \
		{"collateral", required_argument, NULL, VOPT_COLLATERAL},                          \
		{"vcek", required_argument, NULL, VOPT_VCEK},                                      \
		{"at", required_argument, NULL, VOPT_AT},                                          \
		{"allow-debug", no_argument, NULL, VOPT_ALLOW_DEBUG},                              \
		{"corim-key", required_argument, NULL, VOPT_CORIM_KEY},                            \
	{                                                                                          \
		"devtee-root", required_argument, NULL, VOPT_DEVTEE_ROOT                           \
	}

#define VERIFIER_OPTS_HELP                                                                         \
	"  --policy FILE       Lua appraisal policy (default: the built-in policy)\n"              \
	"  --reference-values FILE  accepted measurements and minimum TCBs (JSON, or a\n"          \
	"                      CoRIM: unsigned, or COSE-signed with --corim-key)\n"                \
	"  --corim-key PEM     public key or certificate the CoRIM must be signed by\n"            \
	"  --collateral PATH   DCAP collateral: JSON file or directory of PCS responses\n"         \
	"  --vcek FILE         SNP: VCEK or VLEK certificate (DER or PEM); otherwise the\n"        \
	"                      cache, then the AMD KDS, are used\n"                                \
	"  --at RFC3339        verify as of this time (default: now)\n"                            \
	"  --allow-debug       accept debuggable guests and enclaves\n"                            \
	"  --devtee-root PEM   trust dev-TEE reports signed by this development root\n"

struct verifier_opts {
	struct cl_verify_opts verify; /* vcek, collateral, at, allow_debug filled in */
	const char *policy_path;
	const char *rv_path;
	const char *vcek_path;
	const char *corim_key_path;
	struct cl_policy *policy; /* NULL: the default policy */
	struct cl_refvalues *rv;  /* NULL: none given */
	struct cl_buf vcek;
	struct cl_buf corim_key;
	const char *devtee_root_path;
	struct cl_buf devtee_root; /* PEM text; verify.devtee_root points into it */
};

/* What a path option must name. */
enum verifier_path_kind {
	VPATH_FILE,	   /* a readable file ("-" is stdin) */
	VPATH_FILE_OR_DIR, /* a readable file or directory */
	VPATH_CACHE_DIR,   /* a usable directory, or nothing yet (created when needed) */
};

/*
 * Check that the file or directory an option names can be read before
 * anything is verified, so a missing or unreadable one is a usage error (exit
 * 2) with a one-line detail naming the option and the path, never a
 * rejection of the evidence.
 */
int verifier_path_check(const char *opt, const char *path, enum verifier_path_kind kind);

/* 1: c was a verifier option and is handled; 0: not one; <0: bad value (detail set). */
int verifier_opts_handle(struct verifier_opts *v, int c, const char *arg);
/* Read the files named by the options. */
int verifier_opts_load(struct verifier_opts *v);
void verifier_opts_free(struct verifier_opts *v);

#endif
