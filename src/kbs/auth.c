/*
 * POST /kbs/v0/auth: a new session with a fresh challenge, under the
 * session cap. Refusals are chosen by result code: an unsupported TEE or
 * protocol version is an attestation error, anything else malformed a
 * SerdeError; a full session table is TooManySessions.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

#include "service.h"

int cl_kbs_do_auth(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
		   const char *rest, struct cl_kbs_resp *r)
{
	struct cl_kbs_request req;
	uint8_t nonce[CL_KBS_NONCE_LEN], sid[32];
	char id[CL_KBS_SESSION_ID_LEN + 1];
	char *nb = NULL;
	json_t *j = NULL;
	int64_t ttl = k->cfg.session_ttl > 0 ? k->cfg.session_ttl : CL_KBS_SESSION_TTL, now = 0;
	int64_t max = k->cfg.max_sessions ? k->cfg.max_sessions : CL_KBS_MAX_SESSIONS;
	int rc = CL_OK, c = 0;

	(void)rest;

	if ((c = cl_kbs_parse_request(rq->body, rq->body_len, &req)) != CL_OK)
		return cl_kbs_reply_problem(r, c == CL_ERR_UNSUPPORTED ? 401 : 400,
					    c == CL_ERR_UNSUPPORTED ? "AttestationError"
								    : "SerdeError",
					    cl_error_detail());
	if (RAND_bytes(nonce, sizeof(nonce)) != 1 || RAND_bytes(sid, sizeof(sid)) != 1)
		return cl_kbs_reply_problem(r, 500, "InternalError", "no randomness");
	cl_hex_encode(sid, sizeof(sid), id);
	now = cl_kbs_now();
	c = cl_kbs_store_session_new_capped(st, id, nonce, req.tee, now, now + ttl, max);
	if (c == CL_ERR_POLICY)
		return cl_kbs_reply_problem(r, 503, "TooManySessions", cl_error_detail());
	if (c != CL_OK)
		return cl_kbs_reply_problem(r, 503, "StorageError", cl_error_detail());
	nb = cl_base64_encode(nonce, sizeof(nonce));
	j = nb ? json_pack("{s:s, s:s}", "nonce", nb, "extra-params", "") : NULL;
	CL_CHECK(j, CL_ERR_NOMEM, "out of memory");
	snprintf(r->set_cookie, sizeof(r->set_cookie),
		 "kbs-session-id=%s; Path=/kbs; Max-Age=%lld; HttpOnly; SameSite=Strict", id,
		 (long long)ttl);
	rc = cl_kbs_reply_json(r, 200, j);
out:
	free(nb);
	json_decref(j);
	return rc;
}
