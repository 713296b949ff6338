/*
 * POST /kbs/v0/attest, one function per step:
 *
 *   session   the cookie's session, its challenge, the echoed nonce
 *   verify    the evidence, bound to runtime data (and init-data)
 *   appraise  the attestation policy and reference values
 *   issue     the EAR token, stored with its audit entry in one commit
 *
 * A step either goes on (CL_OK) or has written the refusal and stops
 * (STOP); a negative result is an internal failure. The challenge is read
 * without being spent: the write that spends it also stores the token, one
 * commit instead of two; whatever else the outcome, the nonce is spent on
 * the way out with an audit entry saying why, so each challenge gets one
 * attempt. Concurrent attempts on one session may both be checked, but at
 * most one gets a token.
 */
#include <stdio.h>
#include <string.h>

#include "cloister/crypto.h"
#include "service.h"

#define STOP 1

struct attest_ctx {
	char id[CL_KBS_SESSION_ID_LEN + 8];
	char tee[16];
	int ti;	   /* metrics index of the session's TEE */
	int spend; /* the challenge was read and is not yet spent */
	uint8_t nonce[CL_KBS_NONCE_LEN];
	uint8_t rd[64]; /* runtime-data hash: the evidence's report data */
	struct cl_kbs_attestation att;
	struct cl_verify_opts vo;
	struct cl_buf ev, vcek, pol, rvtext;
	struct cl_verify_result vr;
	struct cl_policy *policy;
	struct cl_refvalues *rv;
	struct cl_appraisal ap;
	json_t *claims;
	char *jwt;
	char why[640]; /* for the audit entry of a refusal */
};

static void attest_ctx_free(struct attest_ctx *x)
{
	cl_kbs_attestation_free(&x->att);
	cl_buf_free(&x->ev);
	cl_buf_free(&x->vcek);
	cl_buf_free(&x->pol);
	cl_buf_free(&x->rvtext);
	cl_verify_result_free(&x->vr);
	cl_policy_free(x->policy);
	cl_refvalues_free(x->rv);
	cl_appraisal_free(&x->ap);
	json_decref(x->claims);
	free(x->jwt);
	cl_zeroize(x->nonce, sizeof(x->nonce));
}

/* A refused attest: counted against the TEE (tee < 0: not the evidence's fault), why kept. */
static int refuse(struct cl_kbs *k, struct attest_ctx *x, struct cl_kbs_resp *r, int tee,
		  int status, const char *name, const char *detail)
{
	snprintf(x->why, sizeof(x->why), "%s", detail && *detail ? detail : name);
	if (tee >= 0)
		atomic_fetch_add(&k->m.attest[tee][0], 1);
	return cl_kbs_reply_problem(r, status, name, detail) == CL_OK ? STOP : CL_ERR_NOMEM;
}

static enum cl_format format_of(const char *tee)
{
	if (strcmp(tee, "snp") == 0)
		return CL_FORMAT_SNP;
	if (strcmp(tee, "tdx") == 0)
		return CL_FORMAT_TDX;
	if (strcmp(tee, "sgx") == 0)
		return CL_FORMAT_SGX;
	if (strcmp(tee, "devtee") == 0)
		return CL_FORMAT_DEVTEE;
	return CL_FORMAT_AUTO;
}

/*
 * init-data binding: its digest (SHA-256 for a 32-byte field, SHA-384 for 48
 * or more, zero-padded) must equal SNP/dev-TEE HOST_DATA or TDX MRCONFIGID.
 */
static int check_init_data(const json_t *claims, const json_t *init)
{
	const char *field = json_string_value(json_object_get(claims, "host_data"));
	const char *body = json_string_value(json_object_get(init, "body"));
	uint8_t want[64] = {0}, have[64];
	size_t n = 0;

	if (!field)
		field = json_string_value(json_object_get(claims, "mr_config_id"));
	CL_ENSURE_MSG(field, CL_ERR_UNSUPPORTED, "this TEE has no field to bind init-data to");
	n = strlen(field) / 2;
	CL_ENSURE_MSG(n >= 32 && n <= 64 && cl_hex_decode_exact(field, have, n) == CL_OK,
		      CL_ERR_MALFORMED, "init-data field has a bad size");
	CL_GUARD(cl_digest(n == 32 ? CL_SHA256 : CL_SHA384, body,
			   json_string_length(json_object_get(init, "body")), want));
	CL_ENSURE_MSG(cl_ct_equal(want, have, n), CL_ERR_MISMATCH,
		      "init-data digest does not match the evidence");
	return CL_OK;
}

static int step_session(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
			struct attest_ctx *x, struct cl_kbs_resp *r)
{
	uint8_t *sent = NULL;
	size_t sl = 0;
	int c = CL_OK, ok = 0;

	if (cl_kbs_session_cookie(rq, x->id, sizeof(x->id)) != CL_OK)
		return refuse(k, x, r, x->ti, 401, "AttestationError",
			      "no kbs-session-id cookie: call /kbs/v0/auth first");
	if (cl_kbs_parse_attestation(rq->body, rq->body_len, &x->att) != CL_OK)
		return cl_kbs_reply_problem(r, 400, "SerdeError", cl_error_detail()) == CL_OK
			       ? STOP
			       : CL_ERR_NOMEM;
	c = cl_kbs_store_session_peek(st, x->id, cl_kbs_now(), x->nonce, x->tee);
	if (c == CL_ERR_IO)
		return cl_kbs_reply_problem(r, 503, "StorageError", cl_error_detail()) == CL_OK
			       ? STOP
			       : CL_ERR_NOMEM;
	if (c != CL_OK)
		return refuse(k, x, r, x->ti, 401, "AttestationError", cl_error_detail());
	x->ti = cl_kbs_tee_index(x->tee);
	x->spend = 1;
	ok = cl_base64_decode(x->att.nonce, strlen(x->att.nonce), &sent, &sl) == CL_OK &&
	     sl == sizeof(x->nonce) && cl_ct_equal(sent, x->nonce, sizeof(x->nonce));
	free(sent);
	if (!ok)
		return refuse(k, x, r, x->ti, 401, "AttestationError",
			      "runtime-data nonce is not this session's challenge");
	return CL_OK;
}

static int step_verify(struct cl_kbs *k, struct attest_ctx *x, struct cl_kbs_resp *r)
{
	char detail[640];

	x->vo = k->cfg.verify;
	if (cl_kbs_runtime_data_hash(x->att.runtime_data, x->rd) != CL_OK ||
	    cl_kbs_evidence_bytes(x->tee, x->att.evidence, &x->ev,
				  x->vo.snp.vcek ? NULL : &x->vcek) != CL_OK)
		return refuse(k, x, r, x->ti, 401, "AttestationError", cl_error_detail());
	x->vo.format = format_of(x->tee);
	memcpy(x->vo.report_data, x->rd, sizeof(x->rd));
	x->vo.have_report_data = 1;
	if (x->vcek.len) {
		x->vo.snp.vcek = x->vcek.data;
		x->vo.snp.vcek_len = x->vcek.len;
	}
	if (cl_verify_evidence(x->ev.data, x->ev.len, &x->vo, &x->vr) != CL_OK) {
		snprintf(detail, sizeof(detail), "evidence rejected: %s", x->vr.reason);
		return refuse(k, x, r, x->ti, 401, "AttestationError", detail);
	}
	if (x->att.init_data && check_init_data(x->vr.claims, x->att.init_data) != CL_OK)
		return refuse(k, x, r, x->ti, 401, "AttestationError", cl_error_detail());
	return CL_OK;
}

/* The store's attestation policy and reference values, else the configured ones. */
static int step_appraise(struct cl_kbs *k, struct cl_kbs_store *st, struct attest_ctx *x,
			 struct cl_kbs_resp *r)
{
	struct cl_appraise_ctx actx = {0};
	char detail[640];
	int c = cl_kbs_store_policy_get(st, "attestation", "", &x->pol);

	if (c == CL_OK)
		c = cl_policy_load((const char *)x->pol.data, x->pol.len, NULL, &x->policy);
	if (c == CL_OK || c == CL_ERR_NOT_FOUND) {
		c = cl_kbs_store_policy_get(st, "refvalues", "", &x->rvtext);
		if (c == CL_OK)
			c = cl_refvalues_parse((const char *)x->rvtext.data, x->rvtext.len, &x->rv);
	}
	if (c != CL_OK && c != CL_ERR_NOT_FOUND) {
		snprintf(detail, sizeof(detail), "the attestation policy cannot be used: %s",
			 cl_error_detail());
		return refuse(k, x, r, -1, c == CL_ERR_IO ? 503 : 500,
			      c == CL_ERR_IO ? "StorageError" : "PolicyEngineError", detail);
	}
	actx.nonce = x->nonce;
	actx.nonce_len = sizeof(x->nonce);
	actx.report_data = x->rd;
	actx.at = x->vo.at;
	if (cl_policy_appraise(x->policy ? x->policy : k->cfg.attest_policy, x->vr.claims,
			       x->rv ? x->rv : k->cfg.refvalues, &actx, &x->ap) != CL_OK) {
		snprintf(detail, sizeof(detail), "the attestation policy failed: %s",
			 cl_error_detail());
		return refuse(k, x, r, -1, 500, "PolicyEngineError", detail);
	}
	return CL_OK;
}

/* Sign the EAR and store it with its audit entry; the nonce is spent by the same commit. */
static int step_issue(struct cl_kbs *k, struct cl_kbs_store *st, struct attest_ctx *x,
		      struct cl_kbs_resp *r)
{
	struct cl_ear_opts eo = {0};
	struct cl_ear_submod sub = {0};
	json_t *rdc = NULL, *tok = NULL;
	char *dg = NULL;
	int rc = CL_OK, c = CL_OK;

	/* Where Trustee's clients and our resource endpoint find the key (docs/kbs.md). */
	x->claims = json_deep_copy(x->vr.claims);
	rdc = json_pack("{s:O, s:s}", "tee-pubkey", x->att.tee_pubkey, "nonce", x->att.nonce);
	CL_CHECK(x->claims && rdc && json_object_set(x->claims, "runtime_data_claims", rdc) == 0,
		 CL_ERR_NOMEM, "out of memory");
	sub.name = "cpu0";
	sub.appraisal = &x->ap;
	sub.claims = x->claims;
	eo.nonce = x->nonce;
	eo.nonce_len = sizeof(x->nonce);
	eo.ttl = k->cfg.token_ttl;
	CL_TRY(cl_ear_sign(k->cfg.token_key, &sub, 1, &eo, &x->jwt));
	dg = cl_kbs_claims_digest(x->claims);
	CL_CHECK(dg, CL_ERR_NOMEM, "out of memory");
	{
		struct cl_kbs_audit a = {
			cl_kbs_now(),	 "attest", x->tee, cl_tier_name(x->ap.status),
			x->ap.policy_id, dg,	   NULL};

		c = cl_kbs_store_session_attested(st, x->id, cl_kbs_now(), x->jwt, &a);
	}
	if (c == CL_ERR_MISMATCH) {
		rc = refuse(k, x, r, x->ti, 401, "AttestationError", cl_error_detail());
		goto out;
	}
	if (c != CL_OK) {
		rc = refuse(k, x, r, -1, 503, "StorageError", cl_error_detail());
		goto out;
	}
	x->spend = 0;
	atomic_fetch_add(&k->m.attest[x->ti][1], 1);
	tok = json_pack("{s:s}", "token", x->jwt);
	CL_CHECK(tok, CL_ERR_NOMEM, "out of memory");
	rc = cl_kbs_reply_json(r, 200, tok);
out:
	free(dg);
	json_decref(rdc);
	json_decref(tok);
	return rc;
}

int cl_kbs_do_attest(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
		     const char *rest, struct cl_kbs_resp *r)
{
	struct attest_ctx x = {0};
	int rc = CL_OK;

	(void)rest;
	x.ti = KBS_N_TEES - 1;
	if ((rc = step_session(k, st, rq, &x, r)) == CL_OK &&
	    (rc = step_verify(k, &x, r)) == CL_OK && (rc = step_appraise(k, st, &x, r)) == CL_OK)
		rc = step_issue(k, st, &x, r);
	if (rc == STOP)
		rc = CL_OK;
	if (rc < 0 && !r->body)
		rc = refuse(k, &x, r, -1, 500, "InternalError", cl_error_detail()) == STOP
			     ? CL_OK
			     : CL_ERR_NOMEM;
	if (x.spend) {
		struct cl_kbs_audit a = {cl_kbs_now(),
					 "attest",
					 x.tee,
					 "deny",
					 x.ap.policy_id[0] ? x.ap.policy_id : NULL,
					 NULL,
					 x.why[0] ? x.why : "refused"};

		/* The nonce is spent together with the entry saying why. */
		if (cl_kbs_store_session_rejected(st, x.id, &a) != CL_OK)
			cl_log_error("kbs: cannot record a refused attestation: %s",
				     cl_error_detail());
	}
	attest_ctx_free(&x);
	return rc;
}
