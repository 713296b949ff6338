/*
 * GET /kbs/v0/resource/REPO/TYPE/TAG: the token (bearer, else the session's),
 * the resource policy's decision, then the secret unsealed with the KEK and
 * encrypted to the TEE's key. Released only once the audit entry saying so
 * has committed.
 */
#include <stdio.h>
#include <string.h>

#include "service.h"

/* The TEE key the token was issued for (borrowed from claims). */
static const json_t *token_tee_pubkey(const json_t *claims)
{
	const json_t *ae =
		json_object_get(json_object_get(json_object_get(claims, "submods"), "cpu0"),
				CL_EAR_ANNOTATED_EVIDENCE);
	const char *plat = NULL;
	json_t *v = NULL;

	/* Trustee's own tokens carry it directly under the annotated evidence. */
	if (json_object_get(json_object_get(ae, "runtime_data_claims"), "tee-pubkey"))
		return json_object_get(json_object_get(ae, "runtime_data_claims"), "tee-pubkey");
	json_object_foreach ((json_t *)ae, plat, v) {
		const json_t *k =
			json_object_get(json_object_get(v, "runtime_data_claims"), "tee-pubkey");

		if (k)
			return k;
	}
	return NULL;
}

int cl_kbs_do_resource(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
		       const char *path, struct cl_kbs_resp *r)
{
	char id[CL_KBS_SESSION_ID_LEN + 8];
	char *stok = NULL;
	const char *tok = cl_kbs_bearer(rq->authorization);
	json_t *claims = NULL, *jwe = NULL;
	const json_t *pub = NULL;
	struct cl_kbs_decision d = {0};
	struct cl_buf sealed = {0}, plain = {0};
	char why[320];
	int rc = CL_OK;

	if (cl_kbs_resource_path_check(path, strlen(path)) != CL_OK)
		return cl_kbs_reply_problem(r, 404, "InvalidRequestPath", cl_error_detail());
	if (!tok && cl_kbs_session_cookie(rq, id, sizeof(id)) == CL_OK &&
	    cl_kbs_store_session_token(st, id, cl_kbs_now(), &stok) == CL_OK)
		tok = stok;
	if (!tok) {
		rc = cl_kbs_reply_problem(r, 401, "TokenNotFound",
					  "no attestation token: attest first");
		goto out;
	}
	if (cl_ear_verify(k->jwks, tok, strlen(tok), 0, &claims) != CL_OK) {
		rc = cl_kbs_reply_problem(r, 401, "TokenVerifierError", cl_error_detail());
		goto out;
	}
	pub = token_tee_pubkey(claims);
	if (!pub || cl_kbs_check_tee_pubkey(pub) != CL_OK) {
		rc = cl_kbs_reply_problem(r, 401, "TokenVerifierError",
					  "the token names no usable tee-pubkey");
		goto out;
	}
	if (cl_kbs_resource_decide(st, claims, path, &d) != CL_OK) {
		rc = cl_kbs_reply_problem(r, 503, "StorageError", cl_error_detail());
		goto out;
	}
	if (!d.allow) {
		/* A refusal stands whether or not its entry could be written. */
		(void)cl_kbs_audit_write(st, "deny", path, "deny", d.policy_id, claims, d.reason);
		atomic_fetch_add(&k->m.releases[0], 1);
		rc = cl_kbs_reply_problem(r, 403, "PolicyDeny", d.reason);
		goto out;
	}
	rc = cl_kbs_store_resource_get(st, path, &sealed);
	if (rc == CL_ERR_NOT_FOUND) {
		(void)cl_kbs_audit_write(st, "deny", path, "deny", d.policy_id, claims,
					 "no such resource");
		rc = cl_kbs_reply_problem(r, 404, "InvalidRequestPath", "no such resource");
		goto out;
	}
	if (rc != CL_OK) {
		rc = cl_kbs_reply_problem(r, 503, "StorageError", cl_error_detail());
		goto out;
	}
	if (cl_kbs_unseal(k->kek, path, sealed.data, sealed.len, &plain) != CL_OK) {
		snprintf(why, sizeof(why), "stored resource does not unseal: %s",
			 cl_error_detail());
		(void)cl_kbs_audit_write(st, "deny", path, "deny", d.policy_id, claims, why);
		rc = cl_kbs_reply_problem(r, 500, "PluginInternalError", why);
		goto out;
	}
	if (cl_kbs_jwe_encrypt(pub, plain.data, plain.len, &jwe) != CL_OK) {
		rc = cl_kbs_reply_problem(r, 401, "JweError", cl_error_detail());
		goto out;
	}
	/*
	 * Released only once the entry saying so has committed: with a full disk
	 * or a store that fails, the client gets 503 and not the secret.
	 */
	if (cl_kbs_audit_write(st, "release", path, "allow", d.policy_id, claims, NULL) != CL_OK) {
		rc = cl_kbs_reply_problem(r, 503, "StorageError",
					  "the release could not be audited");
		goto out;
	}
	atomic_fetch_add(&k->m.releases[1], 1);
	rc = cl_kbs_reply_json(r, 200, jwe);
out:
	cl_buf_free(&plain);
	cl_buf_free(&sealed);
	json_decref(jwe);
	json_decref(claims);
	free(stok);
	return rc;
}
