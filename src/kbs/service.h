/*
 * Shared by the KBS request handler's files: the handler's state, its
 * metrics, the reply and audit helpers, and one entry per endpoint.
 *
 *   service.c   routing table and cl_kbs_handle
 *   reply.c     problem/JSON replies, cookies, the audit write
 *   auth.c      POST /kbs/v0/auth
 *   attest.c    POST /kbs/v0/attest, one function per step
 *   resource.c  GET /kbs/v0/resource/...
 *   admin_api.c the admin endpoints and the audit log
 *   metrics.c   counters and the Prometheus text
 */
#ifndef CLOISTER_KBS_SERVICE_H
#define CLOISTER_KBS_SERVICE_H

#include <stdatomic.h>

#include "internal.h"

enum kbs_ep {
	EP_AUTH,
	EP_ATTEST,
	EP_RESOURCE,
	EP_ADMIN,
	EP_METRICS,
	EP_JWKS,
	EP_AUDIT,
	EP_UNKNOWN,
	EP_RESOURCE_PUT,
	EP_COUNT
};

#define KBS_LAT_BUCKETS 12
#define KBS_N_TEES	5 /* snp, tdx, sgx, devtee, other */

struct kbs_metrics {
	atomic_ullong requests[EP_COUNT][6]; /* by status class 1xx..5xx, [0] unused */
	atomic_ullong lat[EP_COUNT][KBS_LAT_BUCKETS + 1];
	atomic_ullong lat_sum_us[EP_COUNT];
	atomic_ullong attest[KBS_N_TEES][2]; /* [0] rejected, [1] token issued */
	atomic_ullong releases[2];	     /* [0] denied, [1] released */
};

struct cl_kbs {
	struct cl_kbs_config cfg;
	uint8_t *kek; /* CL_KBS_KEK_LEN bytes in the OpenSSL secure heap */
	json_t *jwks;
	struct kbs_metrics m;
};

/* One endpoint: rest is what follows the route's path (for prefix routes). */
typedef int (*kbs_handler)(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
			   const char *rest, struct cl_kbs_resp *r);

int cl_kbs_do_auth(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
		   const char *rest, struct cl_kbs_resp *r);
int cl_kbs_do_attest(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
		     const char *rest, struct cl_kbs_resp *r);
int cl_kbs_do_resource(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
		       const char *rest, struct cl_kbs_resp *r);
int cl_kbs_do_put_resource(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
			   const char *rest, struct cl_kbs_resp *r);
int cl_kbs_do_put_policy(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
			 const char *rest, struct cl_kbs_resp *r);
int cl_kbs_do_put_refvalues(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
			    const char *rest, struct cl_kbs_resp *r);
int cl_kbs_do_audit(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
		    const char *rest, struct cl_kbs_resp *r);

/*
 * A refusal: the client gets the type and its fixed message; detail, which
 * may say what a policy or verifier found, goes to the log only (callers put
 * it in the audit entry too where there is one).
 */
int cl_kbs_reply_problem(struct cl_kbs_resp *r, int status, const char *name, const char *detail);
int cl_kbs_reply_json(struct cl_kbs_resp *r, int status, const json_t *j);
int cl_kbs_reply_ok(struct cl_kbs_resp *r);
int64_t cl_kbs_now(void);
/* Value of cookie `name` in a Cookie header, copied into out. */
int cl_kbs_cookie(const char *hdr, const char *name, char *out, size_t cap);
/* The request's session id from its cookie, checked for shape; CL_OK or not found. */
int cl_kbs_session_cookie(const struct cl_kbs_req *rq, char *id, size_t cap);
const char *cl_kbs_bearer(const char *auth);
int cl_kbs_tee_index(const char *tee);
const char *cl_kbs_tee_name(int i);
/* "sha256:" and the hex digest of the claims as sorted compact JSON; caller frees. */
char *cl_kbs_claims_digest(const json_t *claims);
/* Add an audit entry and wait for its commit: CL_OK only once it is durable. */
int cl_kbs_audit_write(struct cl_kbs_store *st, const char *event, const char *path,
		       const char *decision, const char *policy_id, const json_t *claims,
		       const char *detail);

/* Count one handled request (metrics.c). */
void cl_kbs_metrics_observe(struct kbs_metrics *m, int ep, int status, unsigned long long us);

#endif
