/*
 * Resource policies: Lua text defining
 *     function release(ear, resource) return true | false[, reason] end
 * run in the appraisal sandbox. The KBS wraps it in an appraise() that maps
 * the answer onto one trustworthiness claim, so the sandbox, its limits and
 * its per-thread compile cache are the appraisal engine's own.
 */
#include <string.h>

#include "internal.h"

#define RP_DEFAULT_ID "tag:cloister,2025:kbs/resource-default#1"

static const char shim[] = "\nfunction appraise(c, ctx)\n"
			   "  local ok, why = release(c.ear, c.resource)\n"
			   "  if ok == true then return {['sourced-data'] = AFFIRMING} end\n"
			   "  return {['sourced-data'] = CONTRAINDICATED}, why\n"
			   "end\n";

static int compile(const char *text, size_t len, struct cl_policy **out)
{
	struct cl_buf b = {0};
	int rc = CL_OK;

	*out = NULL;
	CL_CHECK(len + sizeof(shim) < CL_MAX_POLICY_TEXT, CL_ERR_MALFORMED,
		 "resource policy too large");
	CL_TRY(cl_buf_append(&b, text, len));
	CL_TRY(cl_buf_append(&b, shim, sizeof(shim) - 1));
	CL_TRY(cl_policy_load((const char *)b.data, b.len, NULL, out));
out:
	cl_buf_free(&b);
	return rc;
}

int cl_kbs_resource_policy_check(const char *text, size_t len)
{
	struct cl_policy *p = NULL;
	int rc = compile(text, len, &p);

	cl_policy_free(p);
	return rc;
}

/* The scopes that may hold a policy for path, most specific first. */
static int scopes(const char *path, char out[4][CL_MAX_KBS_PATH + 1])
{
	const char *s1 = strchr(path, '/');
	const char *s2 = s1 ? strchr(s1 + 1, '/') : NULL;

	snprintf(out[0], CL_MAX_KBS_PATH + 1, "%s", path);
	snprintf(out[1], CL_MAX_KBS_PATH + 1, "%.*s", s2 ? (int)(s2 - path) : 0, path);
	snprintf(out[2], CL_MAX_KBS_PATH + 1, "%.*s", s1 ? (int)(s1 - path) : 0, path);
	out[3][0] = 0;
	return 4;
}

int cl_kbs_resource_decide(struct cl_kbs_store *st, const json_t *ear, const char *path,
			   struct cl_kbs_decision *d)
{
	char sc[4][CL_MAX_KBS_PATH + 1];
	struct cl_buf text = {0};
	struct cl_policy *p = NULL;
	struct cl_appraisal a = {0};
	json_t *in = NULL, *res = NULL;
	const char *s1 = NULL, *s2 = NULL;
	int n = scopes(path, sc), found = 0, rc = CL_OK;

	memset(d, 0, sizeof(*d));
	for (int i = 0; i < n && !found; i++) {
		if (i > 0 && sc[i][0] == 0 && i < 3)
			continue;
		rc = cl_kbs_store_policy_get(st, "resource", sc[i], &text);
		if (rc == CL_OK)
			found = 1;
		else if (rc != CL_ERR_NOT_FOUND)
			goto out;
	}
	rc = CL_OK;
	if (!found) {
		const char *status = json_string_value(json_object_get(ear, "ear_status"));

		snprintf(d->policy_id, sizeof(d->policy_id), "%s", RP_DEFAULT_ID);
		d->allow = status && strcmp(status, "affirming") == 0;
		if (!d->allow)
			snprintf(d->reason, sizeof(d->reason),
				 "attestation status is %s, not affirming",
				 status ? status : "missing");
		goto out;
	}
	CL_TRY(compile((const char *)text.data, text.len, &p));
	s1 = strchr(path, '/');
	s2 = strchr(s1 + 1, '/');
	res = json_pack("{s:s, s:s#, s:s#, s:s}", "path", path, "repository", path,
			(int)(s1 - path), "type", s1 + 1, (int)(s2 - s1 - 1), "tag", s2 + 1);
	/* The appraisal engine expects a platform claim (it passes it on in ctx). */
	in = json_pack("{s:s, s:O, s:o}", "platform", "kbs-resource", "ear", ear, "resource", res);
	res = NULL;
	CL_CHECK(in, CL_ERR_NOMEM, "out of memory");
	snprintf(d->policy_id, sizeof(d->policy_id), "%s", cl_policy_id(p));
	rc = cl_policy_appraise(p, in, NULL, NULL, &a);
	if (rc != CL_OK) {
		/* A failing policy denies; the reason stays in the audit log. */
		snprintf(d->reason, sizeof(d->reason), "%s", cl_error_detail());
		d->allow = 0;
		rc = CL_OK;
		goto out;
	}
	d->allow = a.status == CL_TIER_AFFIRMING;
	if (!d->allow) {
		const char *why = json_string_value(json_array_get(a.reasons, 0));

		snprintf(d->reason, sizeof(d->reason), "%s",
			 why ? why : "denied by resource policy");
	}
out:
	cl_appraisal_free(&a);
	json_decref(in);
	json_decref(res);
	cl_policy_free(p);
	cl_buf_free(&text);
	return rc;
}
