/*
 * The options every verifying command shares (verify, kbs serve, serve
 * --require-client-attestation, connect), parsed in one place so that each
 * accepts the same flags with the same meaning. A command splices
 * VERIFIER_LONGOPTS into its getopt_long table, hands each option to
 * verifier_opts_handle(), then calls verifier_opts_load() once; the filled
 * struct cl_verify_opts is v->verify (platform groups: snp, dcap, tpm, devtee, psa).
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
	VOPT_CERTS,
	VOPT_AK,
	VOPT_AK_ROOTS,
	VOPT_OFFLINE,
	VOPT_CACHE_DIR,
	VOPT_KDS_URL,
	VOPT_PCS_URL,
	VOPT_CRL,
	VOPT_PSA_IAK,
};

#define VERIFIER_LONGOPTS                                                                          \
	{"policy", required_argument, NULL, VOPT_POLICY},                                          \
		{"reference-values", required_argument, NULL, VOPT_REFERENCE_VALUES},              \
		{"collateral", required_argument, NULL, VOPT_COLLATERAL},                          \
		{"vcek", required_argument, NULL, VOPT_VCEK},                                      \
		{"at", required_argument, NULL, VOPT_AT},                                          \
		{"allow-debug", no_argument, NULL, VOPT_ALLOW_DEBUG},                              \
		{"corim-key", required_argument, NULL, VOPT_CORIM_KEY},                            \
		{"devtee-root", required_argument, NULL, VOPT_DEVTEE_ROOT},                        \
		{"certs", required_argument, NULL, VOPT_CERTS},                                    \
		{"ak", required_argument, NULL, VOPT_AK},                                          \
		{"ak-roots", required_argument, NULL, VOPT_AK_ROOTS},                              \
		{"offline", no_argument, NULL, VOPT_OFFLINE},                                      \
		{"cache-dir", required_argument, NULL, VOPT_CACHE_DIR},                            \
		{"kds-url", required_argument, NULL, VOPT_KDS_URL},                                \
		{"crl", required_argument, NULL, VOPT_CRL},                                        \
		{"psa-iak", required_argument, NULL, VOPT_PSA_IAK},                                \
	{                                                                                          \
		"pcs-url", required_argument, NULL, VOPT_PCS_URL                                   \
	}

#define VERIFIER_OPTS_HELP                                                                         \
	"  --policy FILE       Lua appraisal policy (default: the built-in policy)\n"              \
	"  --reference-values FILE  accepted measurements and minimum TCBs (JSON, or a\n"          \
	"                      CoRIM: unsigned, or COSE-signed with --corim-key)\n"                \
	"  --corim-key PEM     public key or certificate the CoRIM must be signed by\n"            \
	"  --at RFC3339        verify as of this time (default: now)\n"                            \
	"  --allow-debug       accept debuggable guests and enclaves\n"                            \
	"  --offline           never fetch endorsements from the network\n"                        \
	"  --cache-dir DIR     endorsement cache (default $XDG_CACHE_HOME/cloister)\n"             \
	"  --vcek FILE         SNP: VCEK or VLEK certificate (DER or PEM); otherwise the\n"        \
	"                      cache, then the AMD KDS, are used\n"                                \
	"  --certs FILE        SNP: ASK/ASVK+ARK chain (PEM) to use instead of the pinned\n"       \
	"                      intermediates; DCAP: PCK chain when the quote has none\n"           \
	"  --kds-url URL       SNP: AMD KDS base URL (default https://kdsintf.amd.com)\n"          \
	"  --crl FILE          SNP: AMD's CRL of the ASKs/ASVKs (DER or PEM) to check the\n"       \
	"                      chain against (default: the cached one; none: unchecked)\n"         \
	"  --collateral PATH   DCAP collateral: JSON file or directory of PCS responses\n"         \
	"  --pcs-url URL       DCAP: Intel PCS/PCCS base URL to fetch missing collateral from\n"   \
	"  --ak FILE           TPM: the trusted attestation key (PEM/DER SPKI,\n"                  \
	"                      TPM2B_PUBLIC or TPMT_PUBLIC)\n"                                     \
	"  --ak-roots FILE     TPM: roots (PEM) the evidence's ak_cert must chain to\n"            \
	"  --devtee-root PEM   trust dev-TEE reports signed by this development root\n"            \
	"  --psa-iak FILE      PSA: the device's Initial Attestation Key (JWK, or PEM/DER\n"       \
	"                      public key); PSA tokens are rejected without it\n"

struct verifier_opts {
	struct cl_verify_opts verify; /* filled in by handle() and load() */
	const char *policy_path;
	const char *rv_path;
	const char *vcek_path;
	const char *corim_key_path;
	const char *certs_path;
	const char *ak_path;
	const char *ak_roots_path;
	const char *crl_path;
	struct cl_policy *policy; /* NULL: the default policy */
	struct cl_refvalues *rv;  /* NULL: none given */
	struct cl_buf vcek;
	struct cl_buf corim_key;
	struct cl_buf certs;	/* verify.snp.certs and verify.dcap.pck_chain point into it */
	struct cl_buf ak;	/* verify.tpm.ak */
	struct cl_buf ak_roots; /* verify.tpm.ak_roots */
	struct cl_buf crl;	/* verify.snp.crl */
	const char *devtee_root_path;
	struct cl_buf devtee_root; /* PEM text; verify.devtee.root points into it */
	const char *psa_iak_path;
	struct cl_buf psa_iak; /* verify.psa.iak */
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
