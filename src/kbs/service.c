/*
 * The KBS request handler: one function from a parsed HTTP request to a
 * response, with no network I/O, so unit tests drive the whole protocol
 * through it and the HTTP front end (http.c) stays thin. This file holds the
 * routing table; each endpoint lives in its own file (service.h).
 *
 * Errors follow Trustee: problem JSON with "type" under
 * https://github.com/confidential-containers/kbs/errors/, 401 for
 * attestation and token failures, 403 for a policy denial, 404 for a bad
 * resource path; malformed bodies get 400 and unknown routes 404. A client
 * gets the type and its fixed message only; why (a policy's Lua error, the
 * reason evidence was rejected) goes to the log and the audit entry.
 *
 * Every side effect commits with its audit entry or not at all: a resource
 * is released only once its "release" entry has committed, and admin changes
 * write the change and the entry in one transaction (store.c).
 */
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "cloister/crypto.h"
#include "service.h"

int cl_kbs_new(const struct cl_kbs_config *cfg, struct cl_kbs **out)
{
	struct cl_kbs *k = calloc(1, sizeof(*k));

	*out = NULL;
	CL_ENSURE_MSG(k, CL_ERR_NOMEM, "out of memory");
	if (!cfg->token_key) {
		free(k);
		CL_BAIL(CL_ERR_ARG, "kbs: no token signing key");
	}
	k->cfg = *cfg;
	/* Only the secure-heap copy is kept. */
	cl_zeroize(k->cfg.kek, sizeof(k->cfg.kek));
	k->cfg.kek_ref = NULL;
	k->kek = OPENSSL_secure_malloc(CL_KBS_KEK_LEN);
	k->jwks = cl_ear_key_jwks(cfg->token_key);
	if (!k->jwks || !k->kek) {
		cl_kbs_free(k);
		CL_BAIL(CL_ERR_NOMEM, "out of memory");
	}
	memcpy(k->kek, cfg->kek_ref ? cfg->kek_ref : cfg->kek, CL_KBS_KEK_LEN);
	*out = k;
	return CL_OK;
}

void cl_kbs_free(struct cl_kbs *k)
{
	if (!k)
		return;
	cl_zeroize(k->cfg.kek, sizeof(k->cfg.kek));
	OPENSSL_secure_clear_free(k->kek, CL_KBS_KEK_LEN);
	json_decref(k->jwks);
	free(k);
}

void cl_kbs_resp_free(struct cl_kbs_resp *r)
{
	if (!r)
		return;
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* ---------------------------------------------------------------- routing */

static int do_metrics(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
		      const char *rest, struct cl_kbs_resp *r)
{
	(void)st, (void)rq, (void)rest;
	free(r->body);
	r->body = cl_kbs_metrics(k);
	r->status = r->body ? 200 : 500;
	r->content_type = "text/plain; version=0.0.4";
	r->body_len = r->body ? strlen(r->body) : 0;
	return r->body ? CL_OK : CL_ERR_NOMEM;
}

static int do_jwks(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
		   const char *rest, struct cl_kbs_resp *r)
{
	(void)st, (void)rq, (void)rest;
	return cl_kbs_reply_json(r, 200, k->jwks);
}

#define ANY_METHOD 0

static const struct route {
	int method; /* enum cl_kbs_method, or ANY_METHOD */
	const char *path;
	int prefix; /* path is a prefix; the handler gets the rest */
	int ep;
	kbs_handler fn;
} routes[] = {
	{CL_KBS_GET, "/metrics", 0, EP_METRICS, do_metrics},
	{CL_KBS_POST, "/kbs/v0/auth", 0, EP_AUTH, cl_kbs_do_auth},
	{CL_KBS_POST, "/kbs/v0/attest", 0, EP_ATTEST, cl_kbs_do_attest},
	{CL_KBS_GET, "/kbs/v0/resource/", 1, EP_RESOURCE, cl_kbs_do_resource},
	{ANY_METHOD, "/kbs/v0/token-certificate-chain", 0, EP_JWKS, do_jwks},
	{ANY_METHOD, "/kbs/v0/jwks", 0, EP_JWKS, do_jwks},
	{CL_KBS_GET, "/kbs/v0/audit", 0, EP_AUDIT, cl_kbs_do_audit},
	{CL_KBS_POST, "/kbs/v0/resource/", 1, EP_RESOURCE_PUT, cl_kbs_do_put_resource},
	{CL_KBS_POST, "/kbs/v0/attestation-policy", 0, EP_ADMIN, cl_kbs_do_put_policy},
	{CL_KBS_POST, "/kbs/v0/resource-policy", 0, EP_ADMIN, cl_kbs_do_put_policy},
	{CL_KBS_POST, "/kbs/v0/reference-values", 0, EP_ADMIN, cl_kbs_do_put_refvalues},
};

static int route(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
		 struct cl_kbs_resp *r, int *ep)
{
	int path_known = 0;

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *t = &routes[i];
		size_t n = strlen(t->path);

		if (t->prefix ? strncmp(rq->path, t->path, n) != 0 : strcmp(rq->path, t->path) != 0)
			continue;
		path_known = 1;
		if (t->method != ANY_METHOD && t->method != (int)rq->method)
			continue;
		*ep = t->ep;
		return t->fn(k, st, rq, t->prefix ? rq->path + n : "", r);
	}
	*ep = EP_UNKNOWN;
	/* A known path asked with a method it does not take. */
	if (path_known && rq->method == CL_KBS_OTHER)
		return cl_kbs_reply_problem(r, 405, "InvalidRequestPath", "method not allowed");
	return cl_kbs_reply_problem(r, rq->method == CL_KBS_OTHER ? 405 : 404, "InvalidRequestPath",
				    "no such endpoint");
}

int cl_kbs_handle(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
		  struct cl_kbs_resp *r)
{
	struct timespec t0, t1;
	int ep = EP_UNKNOWN, rc = CL_OK;
	size_t max = k->cfg.max_body ? k->cfg.max_body : CL_MAX_KBS_BODY;

	memset(r, 0, sizeof(*r));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cl_error_clear();
	if (!rq->path || rq->path[0] != '/')
		rc = cl_kbs_reply_problem(r, 404, "InvalidRequestPath", "bad request path");
	else if (rq->body_len > max)
		rc = cl_kbs_reply_problem(r, 413, "PayloadTooLarge", "request body too large");
	else
		rc = route(k, st, rq, r, &ep);
	if (rc < 0 && !r->body)
		rc = cl_kbs_reply_problem(r, 500, "InternalError", "internal error");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cl_kbs_metrics_observe(&k->m, ep, r->status,
			       (unsigned long long)((t1.tv_sec - t0.tv_sec) * 1000000LL +
						    (t1.tv_nsec - t0.tv_nsec) / 1000));
	return r->body ? CL_OK : rc;
}
