/*
 * The admin endpoints (resources, policies, reference values) and the audit
 * log, each behind an admin token whose role allows it (admin.c). Every
 * change commits with its audit entry or not at all.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "service.h"

static int admin_auth(struct cl_kbs *k, const struct cl_kbs_req *rq, const char *need,
		      struct cl_kbs_resp *r, char role[32])
{
	const char *t = cl_kbs_bearer(rq->authorization);

	if (!k->cfg.admin_key) {
		cl_kbs_reply_problem(r, 401, "AdminAuthAccess",
				     "the admin API is disabled (no admin key)");
		return 0;
	}
	if (!t || cl_kbs_admin_verify(k->cfg.admin_key, t, strlen(t), 0, role) != CL_OK) {
		cl_kbs_reply_problem(r, 401, "AdminAuthAccess",
				     t ? cl_error_detail() : "no admin token");
		return 0;
	}
	if (!cl_kbs_role_allows(role, need)) {
		cl_kbs_reply_problem(r, 403, "AdminAuthAccess",
				     "the token's role may not call this endpoint");
		return 0;
	}
	return 1;
}

/* Policy text from a raw Lua body or Trustee's {"policy": base64, ...}; *scope
 * from JSON or query. */
static int policy_body(const struct cl_kbs_req *rq, struct cl_buf *text, char *scope, size_t cap)
{
	const char *q = rq->query;

	scope[0] = 0;
	if (q && strncmp(q, "scope=", 6) == 0)
		snprintf(scope, cap, "%s", q + 6);
	if (rq->body_len > 0 && rq->body[0] == '{') {
		json_t *j = json_loadb((const char *)rq->body, rq->body_len, JSON_REJECT_DUPLICATES,
				       NULL);
		const json_t *p = json_object_get(j, "policy"), *s = json_object_get(j, "scope");
		uint8_t *d = NULL;
		size_t n = 0;
		int rc = CL_OK;

		if (!json_is_string(p) ||
		    cl_base64_decode(json_string_value(p), json_string_length(p), &d, &n) !=
			    CL_OK) {
			json_decref(j);
			CL_BAIL(CL_ERR_MALFORMED,
				"policy body must be Lua text or {\"policy\": base64}");
		}
		if (json_is_string(s))
			snprintf(scope, cap, "%s", json_string_value(s));
		rc = cl_buf_append(text, d, n);
		free(d);
		json_decref(j);
		return rc;
	}
	return cl_buf_append(text, rq->body, rq->body_len);
}

static int scope_ok(const char *s)
{
	size_t slashes = 0;

	if (!*s)
		return 1;
	for (const char *p = s; *p; p++)
		slashes += *p == '/';
	if (slashes == 2)
		return cl_kbs_resource_path_check(s, strlen(s)) == CL_OK;
	if (slashes > 2)
		return 0;
	/* REPO or REPO/TYPE: check as a full path with placeholders appended. */
	char tmp[CL_MAX_KBS_PATH + 8];
	snprintf(tmp, sizeof(tmp), "%s%s", s, slashes == 0 ? "/x/x" : "/x");
	return cl_kbs_resource_path_check(tmp, strlen(tmp)) == CL_OK;
}

/* POST /kbs/v0/resource/REPO/TYPE/TAG: store a secret, sealed, with its audit entry. */
int cl_kbs_do_put_resource(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
			   const char *path, struct cl_kbs_resp *r)
{
	char role[32] = "";
	struct cl_buf sealed = {0};
	int rc = CL_OK;

	if (cl_kbs_resource_path_check(path, strlen(path)) != CL_OK)
		return cl_kbs_reply_problem(r, 404, "InvalidRequestPath", cl_error_detail());
	if (!admin_auth(k, rq, "resource-writer", r, role))
		return CL_OK;
	if (rq->body_len > CL_MAX_KBS_RESOURCE)
		return cl_kbs_reply_problem(r, 413, "PayloadTooLarge", "resource too large");
	struct cl_kbs_audit a = {cl_kbs_now(), "admin", path, "put-resource", NULL, NULL, role};

	if (cl_kbs_seal(k->kek, path, rq->body, rq->body_len, &sealed) != CL_OK ||
	    cl_kbs_store_resource_put_audited(st, path, sealed.data, sealed.len, &a) != CL_OK)
		rc = cl_kbs_reply_problem(r, 503, "StorageError", cl_error_detail());
	else
		rc = cl_kbs_reply_ok(r);
	cl_buf_free(&sealed);
	return rc;
}

/* POST /kbs/v0/attestation-policy and /kbs/v0/resource-policy. */
int cl_kbs_do_put_policy(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
			 const char *rest, struct cl_kbs_resp *r)
{
	int res = strcmp(rq->path, "/kbs/v0/resource-policy") == 0;
	char role[32] = "", scope[CL_MAX_KBS_PATH + 1] = "";
	struct cl_buf text = {0};
	struct cl_policy *p = NULL;
	int rc = CL_OK, c = CL_OK;

	(void)rest;
	if (!admin_auth(k, rq, "policy-writer", r, role))
		return CL_OK;
	struct cl_kbs_audit a = {
		cl_kbs_now(), "admin",
		scope,	      res ? "set-resource-policy" : "set-attestation-policy",
		NULL,	      NULL,
		role};

	c = policy_body(rq, &text, scope, sizeof(scope));
	if (c != CL_OK) {
		rc = cl_kbs_reply_problem(r, 400, "ParsePolicyError", cl_error_detail());
		goto out;
	}
	if (!scope_ok(scope) || (!res && scope[0])) {
		rc = cl_kbs_reply_problem(r, 400, "ParsePolicyError", "bad policy scope");
		goto out;
	}
	if ((res ? cl_kbs_resource_policy_check((const char *)text.data, text.len)
		 : cl_policy_load((const char *)text.data, text.len, NULL, &p)) != CL_OK) {
		rc = cl_kbs_reply_problem(r, 400, "ParsePolicyError", cl_error_detail());
		goto out;
	}
	if (cl_kbs_store_policy_put_audited(st, res ? "resource" : "attestation", scope,
					    (const char *)text.data, text.len, &a) != CL_OK) {
		rc = cl_kbs_reply_problem(r, 503, "StorageError", cl_error_detail());
		goto out;
	}
	rc = cl_kbs_reply_ok(r);
out:
	cl_policy_free(p);
	cl_buf_free(&text);
	return rc;
}

/* POST /kbs/v0/reference-values. */
int cl_kbs_do_put_refvalues(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
			    const char *rest, struct cl_kbs_resp *r)
{
	char role[32] = "";
	struct cl_refvalues *rv = NULL;
	struct cl_buf text = {0}; /* the body, NUL-terminated for the store */
	int rc = CL_OK;

	(void)rest;
	if (!admin_auth(k, rq, "policy-writer", r, role))
		return CL_OK;
	if (cl_refvalues_parse((const char *)rq->body, rq->body_len, &rv) != CL_OK)
		return cl_kbs_reply_problem(r, 400, "RvpsError", cl_error_detail());
	cl_refvalues_free(rv);
	CL_TRY(cl_buf_append(&text, rq->body, rq->body_len));
	struct cl_kbs_audit a = {cl_kbs_now(), "admin", "",  "set-reference-values",
				 NULL,	       NULL,	role};

	if (cl_kbs_store_policy_put_audited(st, "refvalues", "", (const char *)text.data, text.len,
					    &a) != CL_OK)
		rc = cl_kbs_reply_problem(r, 503, "StorageError", cl_error_detail());
	else
		rc = cl_kbs_reply_ok(r);
out:
	cl_buf_free(&text);
	return rc;
}

int cl_kbs_do_audit(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
		    const char *rest, struct cl_kbs_resp *r)
{
	char role[32], ts[64] = "";
	int64_t since = 0;
	json_t *list = NULL, *j = NULL;
	int rc = CL_OK;

	(void)rest;
	if (!admin_auth(k, rq, "auditor", r, role))
		return CL_OK;
	if (rq->query && strncmp(rq->query, "since=", 6) == 0) {
		/* The query is not decoded: accept the RFC 3339 forms that need no
     * escaping. */
		snprintf(ts, sizeof(ts), "%s", rq->query + 6);
		if (cl_time_parse(ts, &since) != CL_OK)
			return cl_kbs_reply_problem(r, 400, "SerdeError",
						    "since must be an RFC 3339 time");
	}
	if (cl_kbs_store_audit_list(st, since, &list) != CL_OK)
		return cl_kbs_reply_problem(r, 503, "StorageError", cl_error_detail());
	j = json_pack("{s:o}", "entries", list);
	rc = j ? cl_kbs_reply_json(r, 200, j) : CL_ERR_NOMEM;
	json_decref(j);
	return rc;
}
