/*
 * KBS client (the attester side of Trustee's RCAR protocol), used inside a
 * TEE: auth -> attest -> resource over libcurl, with an ephemeral P-256 key
 * bound into the evidence's report data and the JWE-wrapped resource
 * decrypted with it.
 *
 *   struct cl_kbs_client_opts o = CL_KBS_CLIENT_OPTS_INIT;
 *   o.urls = urls; o.nurls = 2;
 *   struct cl_buf secret = {0};
 *   cl_kbs_client_get_resource(&o, "default/key/1", &secret);
 *
 * Unreachable servers (connection errors, 5xx, 429) are retried with
 * exponential backoff across the URLs; a refusal (any other 4xx) is final.
 */
#ifndef CLOISTER_KBS_CLIENT_H
#define CLOISTER_KBS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cloister/core.h"

/* Evidence over report_data as tee-evidence JSON in Trustee's shape (caller
 * owns). */
typedef int (*cl_kbs_evidence_fn)(void *ctx, const uint8_t report_data[64], json_t **evidence);

struct cl_kbs_client_opts {
	const char *const *urls; /* base URLs, e.g. "http://127.0.0.1:8080" */
	size_t nurls;
	int attempts;	    /* rounds over all URLs; 0 = 5 */
	long backoff_ms;    /* first delay; doubles per round; 0 = 200 */
	long timeout_ms;    /* per request; 0 = 10000 */
	const char *cacert; /* CA bundle for https, or NULL for the system's */
	/* Evidence source and its TEE name ("snp", "tdx", "sgx", "devtee"). */
	cl_kbs_evidence_fn evidence;
	void *evidence_ctx;
	const char *tee;
	const char *init_data; /* init-data body to present, or NULL */
};

#define CL_KBS_CLIENT_OPTS_INIT                                                                    \
	{                                                                                          \
		0                                                                                  \
	}

/*
 * Fetch REPO/TYPE/TAG. Returns CL_OK and the secret in *out (wipe with
 * cl_buf_free); CL_ERR_NETWORK when no KBS could be reached; CL_ERR_POLICY
 * when one refused (the detail has its problem text).
 */
CL_MUST_USE int cl_kbs_client_get_resource(const struct cl_kbs_client_opts *o, const char *path,
					   struct cl_buf *out);

/*
 * The default evidence source: ctx is a struct cl_attester (cloister/attest.h).
 * cl_kbs_client_attester_tee() names its TEE for the auth request.
 */
int cl_kbs_client_attest_evidence(void *ctx, const uint8_t report_data[64], json_t **evidence);
CL_MUST_USE int cl_kbs_client_attester_tee(void *attester, char tee[16]);

#endif
