/*
 * The KBS request handler: one function from a parsed HTTP request to a
 * response, with no network I/O, so unit tests drive the whole protocol
 * through it and the HTTP front end (http.c) stays thin.
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
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cloister/crypto.h"
#include "internal.h"

#define EP_COUNT    9
#define LAT_BUCKETS 12

static const char *const ep_names[EP_COUNT] = {"auth",	"attest",  "resource",
					       "admin", "metrics", "jwks",
					       "audit", "unknown", "resource_put"};
static const double lat_bounds[LAT_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
					       0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

enum {
	EP_AUTH,
	EP_ATTEST,
	EP_RESOURCE,
	EP_ADMIN,
	EP_METRICS,
	EP_JWKS,
	EP_AUDIT,
	EP_UNKNOWN,
	EP_RESOURCE_PUT
};

#define N_TEES 5
static const char *const tee_names[N_TEES] = {"snp", "tdx", "sgx", "devtee", "other"};

struct cl_kbs {
	struct cl_kbs_config cfg;
	uint8_t *kek; /* CL_KBS_KEK_LEN bytes in the OpenSSL secure heap */
	json_t *jwks;
	atomic_ullong requests[EP_COUNT][6]; /* by status class 1xx..5xx, [0] unused */
	atomic_ullong lat[EP_COUNT][LAT_BUCKETS + 1];
	atomic_ullong lat_sum_us[EP_COUNT];
	atomic_ullong attest[N_TEES][2]; /* [0] rejected, [1] token issued */
	atomic_ullong releases[2];	 /* [0] denied, [1] released */
};

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

/* --------------------------------------------------------------- helpers */

/*
 * A refusal: the client gets the type and its fixed message; detail, which
 * may say what a policy or verifier found, goes to the log only (callers put
 * it in the audit entry too where there is one).
 */
static int problem(struct cl_kbs_resp *r, int status, const char *name, const char *detail)
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

static int reply_json(struct cl_kbs_resp *r, int status, const json_t *j)
{
	free(r->body);
	r->status = status;
	r->content_type = "application/json";
	r->body = json_dumps(j, JSON_COMPACT);
	r->body_len = r->body ? strlen(r->body) : 0;
	return r->body ? CL_OK : CL_ERR_NOMEM;
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

/* Value of cookie `name` in a Cookie header, copied into out. */
static int cookie_get(const char *hdr, const char *name, char *out, size_t cap)
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

static const char *bearer(const char *auth)
{
	if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
		return auth + 7;
	return NULL;
}

static int tee_index(const char *tee)
{
	for (int i = 0; i < N_TEES - 1; i++)
		if (tee && strcmp(tee, tee_names[i]) == 0)
			return i;
	return N_TEES - 1;
}

static char *claims_digest(const json_t *claims)
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

/* Add an audit entry and wait for its commit: CL_OK only once it is durable. */
static int audit(struct cl_kbs_store *st, const char *event, const char *path, const char *decision,
		 const char *policy_id, const json_t *claims, const char *detail)
{
	char *dg = claims ? claims_digest(claims) : NULL;
	struct cl_kbs_audit a = {now_s(), event, path, decision, policy_id, dg, detail};
	int rc = claims && !dg ? cl_fail(CL_ERR_NOMEM, "out of memory")
			       : cl_kbs_store_audit_add(st, &a);

	if (rc != CL_OK)
		cl_log_error("kbs: audit log write failed: %s", cl_error_detail());
	free(dg);
	return rc;
}

/* ------------------------------------------------------------------ auth */

static int do_auth(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
		   struct cl_kbs_resp *r)
{
	struct cl_kbs_request req;
	uint8_t nonce[CL_KBS_NONCE_LEN], sid[32];
	char id[CL_KBS_SESSION_ID_LEN + 1];
	char *nb = NULL;
	json_t *j = NULL;
	int64_t ttl = k->cfg.session_ttl > 0 ? k->cfg.session_ttl : CL_KBS_SESSION_TTL, now = 0;
	int64_t max = k->cfg.max_sessions ? k->cfg.max_sessions : CL_KBS_MAX_SESSIONS;
	int rc = CL_OK, c = 0;

	if ((c = cl_kbs_parse_request(rq->body, rq->body_len, &req)) != CL_OK)
		return problem(r, c == CL_ERR_UNSUPPORTED ? 401 : 400,
			       c == CL_ERR_UNSUPPORTED ? "AttestationError" : "SerdeError",
			       cl_error_detail());
	if (RAND_bytes(nonce, sizeof(nonce)) != 1 || RAND_bytes(sid, sizeof(sid)) != 1)
		return problem(r, 500, "InternalError", "no randomness");
	cl_hex_encode(sid, sizeof(sid), id);
	now = now_s();
	c = cl_kbs_store_session_new_capped(st, id, nonce, req.tee, now, now + ttl, max);
	if (c == CL_ERR_POLICY)
		return problem(r, 503, "TooManySessions", cl_error_detail());
	if (c != CL_OK)
		return problem(r, 503, "StorageError", cl_error_detail());
	nb = cl_base64_encode(nonce, sizeof(nonce));
	j = nb ? json_pack("{s:s, s:s}", "nonce", nb, "extra-params", "") : NULL;
	CL_CHECK(j, CL_ERR_NOMEM, "out of memory");
	snprintf(r->set_cookie, sizeof(r->set_cookie),
		 "kbs-session-id=%s; Path=/kbs; Max-Age=%lld; HttpOnly; SameSite=Strict", id,
		 (long long)ttl);
	rc = reply_json(r, 200, j);
out:
	free(nb);
	json_decref(j);
	return rc;
}

/* ---------------------------------------------------------------- attest */

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

struct attest_ctx {
	struct cl_kbs_attestation att;
	struct cl_buf ev, vcek, pol, rvtext;
	struct cl_verify_result vr;
	struct cl_policy *policy;
	struct cl_refvalues *rv;
	struct cl_appraisal ap;
	json_t *claims;
	char *jwt;
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
}

/* A refused attest; why is kept for the audit entry written on the way out. */
static int attest_fail(struct cl_kbs *k, struct cl_kbs_resp *r, int tee, int status,
		       const char *name, const char *detail, char *why, size_t cap)
{
	snprintf(why, cap, "%s", detail && *detail ? detail : name);
	if (tee >= 0)
		atomic_fetch_add(&k->attest[tee][0], 1);
	return problem(r, status, name, detail);
}

static int do_attest(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
		     struct cl_kbs_resp *r)
{
	struct attest_ctx x = {0};
	struct cl_verify_opts vo = k->cfg.verify;
	struct cl_appraise_ctx actx = {0};
	struct cl_ear_opts eo = {0};
	struct cl_ear_submod sub = {0};
	uint8_t nonce[CL_KBS_NONCE_LEN], rd[64], *sent = NULL;
	char id[CL_KBS_SESSION_ID_LEN + 8], tee[16] = "", detail[640], why[640] = "";
	size_t sl = 0;
	json_t *rdc = NULL, *tok = NULL;
	char *dg = NULL;
	int ti = N_TEES - 1, rc = CL_OK, c = 0, spend = 0;

	if (cookie_get(rq->cookie, "kbs-session-id", id, sizeof(id)) != CL_OK || !session_id_ok(id))
		return attest_fail(k, r, ti, 401, "AttestationError",
				   "no kbs-session-id cookie: call /kbs/v0/auth first", why,
				   sizeof(why));
	if (cl_kbs_parse_attestation(rq->body, rq->body_len, &x.att) != CL_OK) {
		rc = problem(r, 400, "SerdeError", cl_error_detail());
		goto out;
	}
	/*
   * Read the challenge without spending it: the write that spends it also
   * stores the token (cl_kbs_store_session_attested), one commit instead of
   * two. Whatever else the outcome, the nonce is spent on the way out, so
   * each challenge still gets one attempt; concurrent attempts on one
   * session may both be checked, but at most one gets a token.
   */
	c = cl_kbs_store_session_peek(st, id, now_s(), nonce, tee);
	if (c == CL_ERR_IO) {
		rc = problem(r, 503, "StorageError", cl_error_detail());
		goto out;
	}
	if (c != CL_OK) {
		rc = attest_fail(k, r, ti, 401, "AttestationError", cl_error_detail(), why,
				 sizeof(why));
		goto out;
	}
	ti = tee_index(tee);
	spend = 1;
	if (cl_base64_decode(x.att.nonce, strlen(x.att.nonce), &sent, &sl) != CL_OK ||
	    sl != sizeof(nonce) || !cl_ct_equal(sent, nonce, sizeof(nonce))) {
		rc = attest_fail(k, r, ti, 401, "AttestationError",
				 "runtime-data nonce is not this session's challenge", why,
				 sizeof(why));
		goto out;
	}
	if (cl_kbs_runtime_data_hash(x.att.runtime_data, rd) != CL_OK ||
	    cl_kbs_evidence_bytes(tee, x.att.evidence, &x.ev, vo.vcek ? NULL : &x.vcek) != CL_OK) {
		rc = attest_fail(k, r, ti, 401, "AttestationError", cl_error_detail(), why,
				 sizeof(why));
		goto out;
	}
	vo.format = format_of(tee);
	memcpy(vo.report_data, rd, sizeof(rd));
	vo.have_report_data = 1;
	if (x.vcek.len) {
		vo.vcek = x.vcek.data;
		vo.vcek_len = x.vcek.len;
	}
	if (cl_verify_evidence(x.ev.data, x.ev.len, &vo, &x.vr) != CL_OK) {
		snprintf(detail, sizeof(detail), "evidence rejected: %s", x.vr.reason);
		rc = attest_fail(k, r, ti, 401, "AttestationError", detail, why, sizeof(why));
		goto out;
	}
	if (x.att.init_data && check_init_data(x.vr.claims, x.att.init_data) != CL_OK) {
		rc = attest_fail(k, r, ti, 401, "AttestationError", cl_error_detail(), why,
				 sizeof(why));
		goto out;
	}
	/* Attestation policy and reference values: the store's, else the configured
   * ones. */
	c = cl_kbs_store_policy_get(st, "attestation", "", &x.pol);
	if (c == CL_OK)
		c = cl_policy_load((const char *)x.pol.data, x.pol.len, NULL, &x.policy);
	if (c == CL_OK || c == CL_ERR_NOT_FOUND) {
		c = cl_kbs_store_policy_get(st, "refvalues", "", &x.rvtext);
		if (c == CL_OK)
			c = cl_refvalues_parse((const char *)x.rvtext.data, x.rvtext.len, &x.rv);
	}
	if (c != CL_OK && c != CL_ERR_NOT_FOUND) {
		snprintf(detail, sizeof(detail), "the attestation policy cannot be used: %s",
			 cl_error_detail());
		rc = attest_fail(k, r, -1, 500, "PolicyEngineError", detail, why, sizeof(why));
		goto out;
	}
	actx.nonce = nonce;
	actx.nonce_len = sizeof(nonce);
	actx.report_data = rd;
	actx.at = vo.at;
	if (cl_policy_appraise(x.policy ? x.policy : k->cfg.attest_policy, x.vr.claims,
			       x.rv ? x.rv : k->cfg.refvalues, &actx, &x.ap) != CL_OK) {
		snprintf(detail, sizeof(detail), "the attestation policy failed: %s",
			 cl_error_detail());
		rc = attest_fail(k, r, -1, 500, "PolicyEngineError", detail, why, sizeof(why));
		goto out;
	}
	/* Where Trustee's clients and our resource endpoint find the key
   * (docs/kbs.md). */
	x.claims = json_deep_copy(x.vr.claims);
	rdc = json_pack("{s:O, s:s}", "tee-pubkey", x.att.tee_pubkey, "nonce", x.att.nonce);
	CL_CHECK(x.claims && rdc && json_object_set(x.claims, "runtime_data_claims", rdc) == 0,
		 CL_ERR_NOMEM, "out of memory");
	sub.name = "cpu0";
	sub.appraisal = &x.ap;
	sub.claims = x.claims;
	eo.nonce = nonce;
	eo.nonce_len = sizeof(nonce);
	eo.ttl = k->cfg.token_ttl;
	CL_TRY(cl_ear_sign(k->cfg.token_key, &sub, 1, &eo, &x.jwt));
	dg = claims_digest(x.claims);
	CL_CHECK(dg, CL_ERR_NOMEM, "out of memory");
	{
		struct cl_kbs_audit a = {now_s(),	 "attest", tee, cl_tier_name(x.ap.status),
					 x.ap.policy_id, dg,	   NULL};

		/* The token and its audit record commit together. */
		c = cl_kbs_store_session_attested(st, id, now_s(), x.jwt, &a);
		if (c == CL_ERR_MISMATCH) {
			rc = attest_fail(k, r, ti, 401, "AttestationError", cl_error_detail(), why,
					 sizeof(why));
			goto out;
		}
		if (c != CL_OK) {
			rc = attest_fail(k, r, -1, 503, "StorageError", cl_error_detail(), why,
					 sizeof(why));
			goto out;
		}
		spend = 0;
	}
	atomic_fetch_add(&k->attest[ti][1], 1);
	tok = json_pack("{s:s}", "token", x.jwt);
	CL_CHECK(tok, CL_ERR_NOMEM, "out of memory");
	rc = reply_json(r, 200, tok);
out:
	if (rc < 0 && !r->body)
		rc = attest_fail(k, r, -1, 500, "InternalError", cl_error_detail(), why,
				 sizeof(why));
	if (spend) {
		struct cl_kbs_audit a = {now_s(),
					 "attest",
					 tee,
					 "deny",
					 x.ap.policy_id[0] ? x.ap.policy_id : NULL,
					 NULL,
					 why[0] ? why : "refused"};

		/* The nonce is spent together with the entry saying why. */
		if (cl_kbs_store_session_rejected(st, id, &a) != CL_OK)
			cl_log_error("kbs: cannot record a refused attestation: %s",
				     cl_error_detail());
	}
	free(sent);
	free(dg);
	json_decref(rdc);
	json_decref(tok);
	attest_ctx_free(&x);
	cl_zeroize(nonce, sizeof(nonce));
	return rc;
}

/* -------------------------------------------------------------- resource */

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

static int do_resource(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
		       const char *path, struct cl_kbs_resp *r)
{
	char id[CL_KBS_SESSION_ID_LEN + 8];
	char *stok = NULL;
	const char *tok = bearer(rq->authorization);
	json_t *claims = NULL, *jwe = NULL;
	const json_t *pub = NULL;
	struct cl_kbs_decision d = {0};
	struct cl_buf sealed = {0}, plain = {0};
	char why[320];
	int rc = CL_OK;

	if (cl_kbs_resource_path_check(path, strlen(path)) != CL_OK)
		return problem(r, 404, "InvalidRequestPath", cl_error_detail());
	if (!tok && cookie_get(rq->cookie, "kbs-session-id", id, sizeof(id)) == CL_OK &&
	    session_id_ok(id) && cl_kbs_store_session_token(st, id, now_s(), &stok) == CL_OK)
		tok = stok;
	if (!tok) {
		rc = problem(r, 401, "TokenNotFound", "no attestation token: attest first");
		goto out;
	}
	if (cl_ear_verify(k->jwks, tok, strlen(tok), 0, &claims) != CL_OK) {
		rc = problem(r, 401, "TokenVerifierError", cl_error_detail());
		goto out;
	}
	pub = token_tee_pubkey(claims);
	if (!pub || cl_kbs_check_tee_pubkey(pub) != CL_OK) {
		rc = problem(r, 401, "TokenVerifierError", "the token names no usable tee-pubkey");
		goto out;
	}
	if (cl_kbs_resource_decide(st, claims, path, &d) != CL_OK) {
		rc = problem(r, 503, "StorageError", cl_error_detail());
		goto out;
	}
	if (!d.allow) {
		/* A refusal stands whether or not its entry could be written. */
		(void)audit(st, "deny", path, "deny", d.policy_id, claims, d.reason);
		atomic_fetch_add(&k->releases[0], 1);
		rc = problem(r, 403, "PolicyDeny", d.reason);
		goto out;
	}
	rc = cl_kbs_store_resource_get(st, path, &sealed);
	if (rc == CL_ERR_NOT_FOUND) {
		(void)audit(st, "deny", path, "deny", d.policy_id, claims, "no such resource");
		rc = problem(r, 404, "InvalidRequestPath", "no such resource");
		goto out;
	}
	if (rc != CL_OK) {
		rc = problem(r, 503, "StorageError", cl_error_detail());
		goto out;
	}
	if (cl_kbs_unseal(k->kek, path, sealed.data, sealed.len, &plain) != CL_OK) {
		snprintf(why, sizeof(why), "stored resource does not unseal: %s",
			 cl_error_detail());
		(void)audit(st, "deny", path, "deny", d.policy_id, claims, why);
		rc = problem(r, 500, "PluginInternalError", why);
		goto out;
	}
	if (cl_kbs_jwe_encrypt(pub, plain.data, plain.len, &jwe) != CL_OK) {
		rc = problem(r, 401, "JweError", cl_error_detail());
		goto out;
	}
	/*
	 * Released only once the entry saying so has committed: with a full disk
	 * or a store that fails, the client gets 503 and not the secret.
	 */
	if (audit(st, "release", path, "allow", d.policy_id, claims, NULL) != CL_OK) {
		rc = problem(r, 503, "StorageError", "the release could not be audited");
		goto out;
	}
	atomic_fetch_add(&k->releases[1], 1);
	rc = reply_json(r, 200, jwe);
out:
	cl_buf_free(&plain);
	cl_buf_free(&sealed);
	json_decref(jwe);
	json_decref(claims);
	free(stok);
	return rc;
}

/* ----------------------------------------------------------------- admin */

static int admin_auth(struct cl_kbs *k, const struct cl_kbs_req *rq, const char *need,
		      struct cl_kbs_resp *r, char role[32])
{
	const char *t = bearer(rq->authorization);

	if (!k->cfg.admin_key) {
		problem(r, 401, "AdminAuthAccess", "the admin API is disabled (no admin key)");
		return 0;
	}
	if (!t || cl_kbs_admin_verify(k->cfg.admin_key, t, strlen(t), 0, role) != CL_OK) {
		problem(r, 401, "AdminAuthAccess", t ? cl_error_detail() : "no admin token");
		return 0;
	}
	if (!cl_kbs_role_allows(role, need)) {
		problem(r, 403, "AdminAuthAccess", "the token's role may not call this endpoint");
		return 0;
	}
	return 1;
}

static int ok_empty(struct cl_kbs_resp *r)
{
	json_t *j = json_pack("{s:s}", "status", "ok");
	int rc = reply_json(r, 200, j);

	json_decref(j);
	return rc;
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

static int do_admin(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
		    const char *what, struct cl_kbs_resp *r)
{
	char role[32] = "", scope[CL_MAX_KBS_PATH + 1];
	struct cl_buf text = {0}, sealed = {0};
	struct cl_policy *p = NULL;
	struct cl_refvalues *rv = NULL;
	int rc = CL_OK;

	if (strncmp(what, "resource/", 9) == 0) {
		const char *path = what + 9;

		if (cl_kbs_resource_path_check(path, strlen(path)) != CL_OK)
			return problem(r, 404, "InvalidRequestPath", cl_error_detail());
		if (!admin_auth(k, rq, "resource-writer", r, role))
			return CL_OK;
		if (rq->body_len > CL_MAX_KBS_RESOURCE)
			return problem(r, 413, "PayloadTooLarge", "resource too large");
		struct cl_kbs_audit a = {now_s(), "admin", path, "put-resource", NULL, NULL, role};

		if (cl_kbs_seal(k->kek, path, rq->body, rq->body_len, &sealed) != CL_OK ||
		    cl_kbs_store_resource_put_audited(st, path, sealed.data, sealed.len, &a) !=
			    CL_OK) {
			rc = problem(r, 503, "StorageError", cl_error_detail());
			goto out;
		}
		rc = ok_empty(r);
		goto out;
	}
	if (strcmp(what, "attestation-policy") == 0 || strcmp(what, "resource-policy") == 0) {
		int res = what[0] == 'r';

		if (!admin_auth(k, rq, "policy-writer", r, role))
			return CL_OK;
		struct cl_kbs_audit a = {
			now_s(), "admin",
			scope,	 res ? "set-resource-policy" : "set-attestation-policy",
			NULL,	 NULL,
			role};

		if (policy_body(rq, &text, scope, sizeof(scope)) != CL_OK || !scope_ok(scope) ||
		    (!res && scope[0])) {
			rc = problem(r, 400, "ParsePolicyError",
				     cl_error_detail()[0] ? cl_error_detail() : "bad policy scope");
			goto out;
		}
		if ((res ? cl_kbs_resource_policy_check((const char *)text.data, text.len)
			 : cl_policy_load((const char *)text.data, text.len, NULL, &p)) != CL_OK) {
			rc = problem(r, 400, "ParsePolicyError", cl_error_detail());
			goto out;
		}
		if (cl_kbs_store_policy_put_audited(st, res ? "resource" : "attestation", scope,
						    (const char *)text.data, text.len,
						    &a) != CL_OK) {
			rc = problem(r, 503, "StorageError", cl_error_detail());
			goto out;
		}
		rc = ok_empty(r);
		goto out;
	}
	if (strcmp(what, "reference-values") == 0) {
		if (!admin_auth(k, rq, "policy-writer", r, role))
			return CL_OK;
		if (cl_refvalues_parse((const char *)rq->body, rq->body_len, &rv) != CL_OK) {
			rc = problem(r, 400, "RvpsError", cl_error_detail());
			goto out;
		}
		CL_TRY(cl_buf_append(&text, rq->body, rq->body_len));
		struct cl_kbs_audit a = {now_s(), "admin", "",	"set-reference-values",
					 NULL,	  NULL,	   role};

		if (cl_kbs_store_policy_put_audited(st, "refvalues", "", (const char *)text.data,
						    text.len, &a) != CL_OK) {
			rc = problem(r, 503, "StorageError", cl_error_detail());
			goto out;
		}
		rc = ok_empty(r);
		goto out;
	}
	rc = problem(r, 404, "InvalidRequestPath", "no such endpoint");
out:
	cl_policy_free(p);
	cl_refvalues_free(rv);
	cl_buf_free(&text);
	cl_buf_free(&sealed);
	return rc;
}

static int do_audit(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
		    struct cl_kbs_resp *r)
{
	char role[32], ts[64] = "";
	int64_t since = 0;
	json_t *list = NULL, *j = NULL;
	int rc = CL_OK;

	if (!admin_auth(k, rq, "auditor", r, role))
		return CL_OK;
	if (rq->query && strncmp(rq->query, "since=", 6) == 0) {
		/* The query is not decoded: accept the RFC 3339 forms that need no
     * escaping. */
		snprintf(ts, sizeof(ts), "%s", rq->query + 6);
		if (cl_time_parse(ts, &since) != CL_OK)
			return problem(r, 400, "SerdeError", "since must be an RFC 3339 time");
	}
	if (cl_kbs_store_audit_list(st, since, &list) != CL_OK)
		return problem(r, 503, "StorageError", cl_error_detail());
	j = json_pack("{s:o}", "entries", list);
	rc = j ? reply_json(r, 200, j) : CL_ERR_NOMEM;
	json_decref(j);
	return rc;
}

/* --------------------------------------------------------------- metrics */

char *cl_kbs_metrics(struct cl_kbs *k)
{
	struct cl_buf b = {0};
	char line[256];
	char *out = NULL;

#define EMIT(...)                                                                                  \
	do {                                                                                       \
		int n_ = snprintf(line, sizeof(line), __VA_ARGS__);                                \
		if (n_ < 0 || cl_buf_append(&b, line, (size_t)n_) != CL_OK)                        \
			goto fail;                                                                 \
	} while (0)

	EMIT("# HELP kbs_requests_total HTTP requests by endpoint and status class.\n"
	     "# TYPE kbs_requests_total counter\n");
	for (int e = 0; e < EP_COUNT; e++)
		for (int c = 1; c < 6; c++) {
			unsigned long long v = atomic_load(&k->requests[e][c]);

			if (v)
				EMIT("kbs_requests_total{endpoint=\"%s\",code=\"%dxx\"} %llu\n",
				     ep_names[e], c, v);
		}
	EMIT("# HELP kbs_attestations_total Attestations by TEE and outcome.\n"
	     "# TYPE kbs_attestations_total counter\n");
	for (int t = 0; t < N_TEES; t++)
		for (int o = 0; o < 2; o++)
			EMIT("kbs_attestations_total{tee=\"%s\",outcome=\"%s\"} %llu\n",
			     tee_names[t], o ? "token" : "rejected", atomic_load(&k->attest[t][o]));
	EMIT("# HELP kbs_resource_decisions_total Resource requests released or "
	     "denied by policy.\n"
	     "# TYPE kbs_resource_decisions_total counter\n"
	     "kbs_resource_decisions_total{decision=\"deny\"} %llu\n"
	     "kbs_resource_decisions_total{decision=\"release\"} %llu\n",
	     atomic_load(&k->releases[0]), atomic_load(&k->releases[1]));
	EMIT("# HELP kbs_request_duration_seconds Request latency by endpoint.\n"
	     "# TYPE kbs_request_duration_seconds histogram\n");
	for (int e = 0; e < EP_COUNT; e++) {
		unsigned long long cum = 0;

		for (int i = 0; i <= LAT_BUCKETS; i++) {
			cum += atomic_load(&k->lat[e][i]);
			if (i < LAT_BUCKETS)
				EMIT("kbs_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%"
				     "g\"} "
				     "%llu\n",
				     ep_names[e], lat_bounds[i], cum);
			else
				EMIT("kbs_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+"
				     "Inf\"} "
				     "%llu\n",
				     ep_names[e], cum);
		}
		EMIT("kbs_request_duration_seconds_sum{endpoint=\"%s\"} %.6f\n"
		     "kbs_request_duration_seconds_count{endpoint=\"%s\"} %llu\n",
		     ep_names[e], (double)atomic_load(&k->lat_sum_us[e]) / 1e6, ep_names[e], cum);
	}
#undef EMIT
	out = strdup((const char *)b.data);
fail:
	cl_buf_free(&b);
	return out;
}

/* ---------------------------------------------------------------- routing */

static int route(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
		 struct cl_kbs_resp *r, int *ep)
{
	const char *p = rq->path;

	if (strcmp(p, "/metrics") == 0 && rq->method == CL_KBS_GET) {
		*ep = EP_METRICS;
		free(r->body);
		r->body = cl_kbs_metrics(k);
		r->status = r->body ? 200 : 500;
		r->content_type = "text/plain; version=0.0.4";
		r->body_len = r->body ? strlen(r->body) : 0;
		return r->body ? CL_OK : CL_ERR_NOMEM;
	}
	if (strncmp(p, "/kbs/v0/", 8) != 0) {
		*ep = EP_UNKNOWN;
		return problem(r, 404, "InvalidRequestPath", "no such endpoint");
	}
	p += 8;
	if (strcmp(p, "auth") == 0 && rq->method == CL_KBS_POST) {
		*ep = EP_AUTH;
		return do_auth(k, st, rq, r);
	}
	if (strcmp(p, "attest") == 0 && rq->method == CL_KBS_POST) {
		*ep = EP_ATTEST;
		return do_attest(k, st, rq, r);
	}
	if (strncmp(p, "resource/", 9) == 0 && rq->method == CL_KBS_GET) {
		*ep = EP_RESOURCE;
		return do_resource(k, st, rq, p + 9, r);
	}
	if (strcmp(p, "token-certificate-chain") == 0 || strcmp(p, "jwks") == 0) {
		*ep = EP_JWKS;
		return reply_json(r, 200, k->jwks);
	}
	if (strcmp(p, "audit") == 0 && rq->method == CL_KBS_GET) {
		*ep = EP_AUDIT;
		return do_audit(k, st, rq, r);
	}
	if (rq->method == CL_KBS_POST) {
		*ep = strncmp(p, "resource/", 9) == 0 ? EP_RESOURCE_PUT : EP_ADMIN;
		return do_admin(k, st, rq, p, r);
	}
	*ep = EP_UNKNOWN;
	return problem(r, rq->method == CL_KBS_OTHER ? 405 : 404, "InvalidRequestPath",
		       "no such endpoint");
}

int cl_kbs_handle(struct cl_kbs *k, struct cl_kbs_store *st, const struct cl_kbs_req *rq,
		  struct cl_kbs_resp *r)
{
	struct timespec t0, t1;
	int ep = EP_UNKNOWN, rc = CL_OK, cls = 0;
	unsigned long long us = 0;
	size_t b = 0;
	size_t max = k->cfg.max_body ? k->cfg.max_body : CL_MAX_KBS_BODY;

	memset(r, 0, sizeof(*r));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cl_error_clear();
	if (!rq->path || rq->path[0] != '/')
		rc = problem(r, 404, "InvalidRequestPath", "bad request path");
	else if (rq->body_len > max)
		rc = problem(r, 413, "PayloadTooLarge", "request body too large");
	else
		rc = route(k, st, rq, r, &ep);
	if (rc < 0 && !r->body)
		rc = problem(r, 500, "InternalError", "internal error");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = (unsigned long long)((t1.tv_sec - t0.tv_sec) * 1000000LL +
				  (t1.tv_nsec - t0.tv_nsec) / 1000);
	cls = r->status / 100;
	if (cls >= 1 && cls <= 5)
		atomic_fetch_add(&k->requests[ep][cls], 1);
	while (b < LAT_BUCKETS && (double)us / 1e6 > lat_bounds[b])
		b++;
	atomic_fetch_add(&k->lat[ep][b], 1);
	atomic_fetch_add(&k->lat_sum_us[ep], us);
	return r->body ? CL_OK : rc;
}
