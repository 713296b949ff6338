/*
 * Replies, request fields and the audit write shared by the KBS endpoints.
 * Problem replies carry Trustee's error type and its fixed message only.
 */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cloister/crypto.h"
#include "service.h"

int cl_kbs_reply_problem(struct cl_kbs_resp *r, int status, const char *name, const char *detail)
{
	enum cl_log_level lvl = status >= 500			 ? CL_LOG_ERROR
				: status == 401 || status == 403 ? CL_LOG_WARN
								 : CL_LOG_INFO;

	if (detail && *detail)
		cl_log(lvl, "kbs: %d %s: %s", status, name, detail);
	free(r->body);
	r->status = status;
	r->content_type = "application/problem+json";
	r->body = cl_kbs_problem(name, status, NULL);
	r->body_len = r->body ? strlen(r->body) : 0;
	return r->body ? CL_OK : CL_ERR_NOMEM;
}

int cl_kbs_reply_json(struct cl_kbs_resp *r, int status, const json_t *j)
{
	free(r->body);
	r->status = status;
	r->content_type = "application/json";
	r->body = json_dumps(j, JSON_COMPACT);
	r->body_len = r->body ? strlen(r->body) : 0;
	return r->body ? CL_OK : CL_ERR_NOMEM;
}

int64_t cl_kbs_now(void)
{
	return (int64_t)time(NULL);
}

int cl_kbs_cookie(const char *hdr, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);

	out[0] = 0;
	for (const char *p = hdr; p && *p;) {
		while (*p == ' ' || *p == ';')
			p++;
		if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
			const char *v = p + nl + 1;
			size_t n = strcspn(v, ";");

			if (n == 0 || n >= cap)
				return CL_ERR_MALFORMED;
			memcpy(out, v, n);
			out[n] = 0;
			return CL_OK;
		}
		p += strcspn(p, ";");
	}
	return CL_ERR_NOT_FOUND;
}

static int session_id_ok(const char *id)
{
	size_t n = strlen(id);

	if (n != CL_KBS_SESSION_ID_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return 1;
}

const char *cl_kbs_bearer(const char *auth)
{
	if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
		return auth + 7;
	return NULL;
}

int cl_kbs_tee_index(const char *tee)
{
	for (int i = 0; i < KBS_N_TEES - 1; i++)
		if (tee && strcmp(tee, cl_kbs_tee_name(i)) == 0)
			return i;
	return KBS_N_TEES - 1;
}

char *cl_kbs_claims_digest(const json_t *claims)
{
	char *s = json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS), *out = NULL;
	uint8_t h[32];

	if (s && cl_digest(CL_SHA256, s, strlen(s), h) == CL_OK && (out = malloc(7 + 65))) {
		memcpy(out, "sha256:", 7);
		cl_hex_encode(h, sizeof(h), out + 7);
	}
	free(s);
	return out;
}

int cl_kbs_audit_write(struct cl_kbs_store *st, const char *event, const char *path,
		       const char *decision, const char *policy_id, const json_t *claims,
		       const char *detail)
{
	char *dg = claims ? cl_kbs_claims_digest(claims) : NULL;
	struct cl_kbs_audit a = {cl_kbs_now(), event, path, decision, policy_id, dg, detail};
	int rc = claims && !dg ? cl_fail(CL_ERR_NOMEM, "out of memory")
			       : cl_kbs_store_audit_add(st, &a);

	if (rc != CL_OK)
		cl_log_error("kbs: audit log write failed: %s", cl_error_detail());
	free(dg);
	return rc;
}

int cl_kbs_session_cookie(const struct cl_kbs_req *rq, char *id, size_t cap)
{
	if (cl_kbs_cookie(rq->cookie, "kbs-session-id", id, cap) != CL_OK || !session_id_ok(id))
		return CL_ERR_NOT_FOUND;
	return CL_OK;
}

const char *cl_kbs_tee_name(int i)
{
	static const char *const names[KBS_N_TEES] = {"snp", "tdx", "sgx", "devtee", "other"};

	return i >= 0 && i < KBS_N_TEES ? names[i] : names[KBS_N_TEES - 1];
}

int cl_kbs_reply_ok(struct cl_kbs_resp *r)
{
	json_t *j = json_pack("{s:s}", "status", "ok");
	int rc = j ? cl_kbs_reply_json(r, 200, j) : CL_ERR_NOMEM;

	json_decref(j);
	return rc;
}
