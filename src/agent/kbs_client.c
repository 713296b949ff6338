/*
 * The agent's KBS client. One attempt runs the whole RCAR flow against one
 * server on one curl handle (its cookie engine carries kbs-session-id);
 * retries start over with a fresh key and a fresh challenge, so nothing
 * from a failed attempt is reused.
 */
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jose/jose.h>

#include "cloister/attest.h"
#include "cloister/kbs.h"
#include "cloister/kbs_client.h"

#define CLIENT_MAX_RESPONSE ((size_t)4 << 20)

/* An attempt's outcome: retry elsewhere, or stop. */
enum { ATT_OK = 0, ATT_RETRY = 1, ATT_REFUSED = 2 };

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct cl_buf *b = ud;

	if (cl_buf_append(b, p, sz * n) != CL_OK)
		return 0;
	return sz * n;
}

static int http(CURL *c, const char *base, const char *path, const char *body, struct cl_buf *resp,
		const struct cl_kbs_client_opts *o)
{
	char url[1024];
	struct curl_slist *h = NULL;
	long status = 0;
	CURLcode e;

	snprintf(url, sizeof(url), "%s%s", base, path);
	cl_buf_free(resp);
	resp->max = CLIENT_MAX_RESPONSE;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : 10000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (o->cacert)
		curl_easy_setopt(c, CURLOPT_CAINFO, o->cacert);
	if (body) {
		h = curl_slist_append(NULL, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	}
	e = curl_easy_perform(c);
	curl_slist_free_all(h);
	if (e != CURLE_OK) {
		cl_fail(CL_ERR_NETWORK, "%s: %s", url, curl_easy_strerror(e));
		return ATT_RETRY;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 500 || status == 429) {
		cl_fail(CL_ERR_NETWORK, "%s: HTTP %ld", url, status);
		return ATT_RETRY;
	}
	if (status != 200) {
		json_t *j = json_loadb((const char *)resp->data, resp->len, 0, NULL);
		const char *d = json_string_value(json_object_get(j, "detail"));
		const char *t = json_string_value(json_object_get(j, "title"));

		cl_fail(CL_ERR_POLICY, "%s: HTTP %ld %s: %.200s", url, status, t ? t : "",
			d ? d : "refused");
		json_decref(j);
		return ATT_REFUSED;
	}
	return ATT_OK;
}

static json_t *parse(const struct cl_buf *b)
{
	json_t *j = json_loadb((const char *)b->data, b->len, 0, NULL);

	if (!json_is_object(j)) {
		json_decref(j);
		cl_fail(CL_ERR_MALFORMED, "KBS answered with something that is not a JSON object");
		return NULL;
	}
	return j;
}

static void wipe_jwk(json_t *k)
{
	json_t *d = json_object_get(k, "d");

	if (json_is_string(d))
		cl_zeroize((char *)json_string_value(d), json_string_length(d));
	json_decref(k);
}

static int attempt(const struct cl_kbs_client_opts *o, const char *base, const char *path,
		   struct cl_buf *out)
{
	CURL *c = curl_easy_init();
	struct cl_buf resp = {0};
	json_t *j = NULL, *key = NULL, *pub = NULL, *rd = NULL, *ev = NULL, *body = NULL;
	uint8_t hash[64], *pt = NULL;
	char *s = NULL, rpath[CL_MAX_KBS_PATH + 32];
	size_t ptl = 0;
	int res = ATT_REFUSED;

	if (!c) {
		cl_fail(CL_ERR_NOMEM, "out of memory");
		return ATT_REFUSED;
	}
	curl_easy_setopt(c, CURLOPT_COOKIEFILE, "");
	body = json_pack("{s:s, s:s, s:s}", "version", CL_KBS_PROTOCOL_VERSION, "tee", o->tee,
			 "extra-params", "");
	s = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (!s)
		goto nomem;
	if ((res = http(c, base, "/kbs/v0/auth", s, &resp, o)) != ATT_OK)
		goto out;
	res = ATT_REFUSED;
	if (!(j = parse(&resp)) || !json_is_string(json_object_get(j, "nonce"))) {
		cl_fail(CL_ERR_MALFORMED, "KBS challenge has no nonce");
		goto out;
	}
	/* A fresh key per attempt, bound into the evidence through the runtime data.
   */
	key = json_pack("{s:s, s:s}", "kty", "EC", "crv", "P-256");
	if (!key || !jose_jwk_gen(NULL, key) || !(pub = json_deep_copy(key)) ||
	    !jose_jwk_pub(NULL, pub) ||
	    json_object_set_new(pub, "alg", json_string("ECDH-ES+A256KW"))) {
		cl_fail(CL_ERR_CRYPTO, "cannot generate the ephemeral key");
		goto out;
	}
	rd = json_pack("{s:O, s:O}", "nonce", json_object_get(j, "nonce"), "tee-pubkey", pub);
	if (!rd)
		goto nomem;
	if (cl_kbs_runtime_data_hash(rd, hash) != CL_OK ||
	    o->evidence(o->evidence_ctx, hash, &ev) != CL_OK)
		goto out;
	json_decref(body);
	body = json_pack("{s:O, s:O}", "runtime-data", rd, "tee-evidence", ev);
	if (body && o->init_data)
		json_object_set_new(
			body, "init-data",
			json_pack("{s:s, s:s}", "format", "toml", "body", o->init_data));
	free(s);
	s = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (!s)
		goto nomem;
	if ((res = http(c, base, "/kbs/v0/attest", s, &resp, o)) != ATT_OK)
		goto out;
	snprintf(rpath, sizeof(rpath), "/kbs/v0/resource/%s", path);
	if ((res = http(c, base, rpath, NULL, &resp, o)) != ATT_OK)
		goto out;
	res = ATT_REFUSED;
	json_decref(j);
	if (!(j = parse(&resp)) || cl_kbs_jwe_decrypt(key, j, &pt, &ptl) != CL_OK)
		goto out;
	if (cl_buf_append(out, pt, ptl) != CL_OK)
		goto out;
	res = ATT_OK;
	goto out;
nomem:
	cl_fail(CL_ERR_NOMEM, "out of memory");
	res = ATT_REFUSED;
out:
	if (pt) {
		cl_zeroize(pt, ptl);
		free(pt);
	}
	free(s);
	json_decref(body);
	json_decref(ev);
	json_decref(rd);
	json_decref(pub);
	wipe_jwk(key);
	json_decref(j);
	cl_buf_free(&resp);
	curl_easy_cleanup(c);
	return res;
}

int cl_kbs_client_get_resource(const struct cl_kbs_client_opts *o, const char *path,
			       struct cl_buf *out)
{
	int rounds = o->attempts > 0 ? o->attempts : 5;
	long delay = o->backoff_ms > 0 ? o->backoff_ms : 200;

	CL_ENSURE_MSG(o->nurls > 0 && o->evidence && o->tee, CL_ERR_ARG,
		      "KBS client needs a URL and an evidence source");
	CL_GUARD(cl_kbs_resource_path_check(path, strlen(path)));
	for (int r = 0; r < rounds; r++) {
		for (size_t i = 0; i < o->nurls; i++) {
			int res = attempt(o, o->urls[i], path, out);

			if (res == ATT_OK)
				return CL_OK;
			if (res == ATT_REFUSED)
				return cl_error_detail()[0] ? CL_ERR_POLICY : CL_ERR_INTERNAL;
			cl_log_warn("kbs client: %s unreachable: %s", o->urls[i],
				    cl_error_detail());
		}
		if (r + 1 < rounds) {
			struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};

			nanosleep(&ts, NULL);
			delay *= 2;
		}
	}
	CL_BAIL(CL_ERR_NETWORK, "no KBS reachable after %d rounds", rounds);
}

/* ------------------------------------------------------- default source */

static const char *tee_of(enum cl_format f)
{
	switch (f) {
	case CL_FORMAT_SNP:
		return "snp";
	case CL_FORMAT_TDX:
		return "tdx";
	case CL_FORMAT_SGX:
		return "sgx";
	case CL_FORMAT_DEVTEE:
		return "devtee";
	default:
		return NULL;
	}
}

int cl_kbs_client_attester_tee(void *attester, char tee[16])
{
	struct cl_attest_evidence ev = {0};
	uint8_t zero[64] = {0};
	const char *t = NULL;

	if (cl_attest_kind(attester) == CL_ATTEST_DEVTEE) {
		snprintf(tee, 16, "devtee");
		return CL_OK;
	}
	/* Other providers tell their format only with a report in hand. */
	CL_GUARD(cl_attest_evidence(attester, zero, &ev));
	t = tee_of(ev.format);
	cl_attest_evidence_free(&ev);
	CL_ENSURE_MSG(t, CL_ERR_UNSUPPORTED, "this TEE's evidence cannot be sent to a KBS");
	snprintf(tee, 16, "%s", t);
	return CL_OK;
}

int cl_kbs_client_attest_evidence(void *ctx, const uint8_t report_data[64], json_t **evidence)
{
	struct cl_attest_evidence ev = {0};
	char *b = NULL, *aux = NULL;
	int rc = CL_OK;

	*evidence = NULL;
	CL_TRY(cl_attest_evidence(ctx, report_data, &ev));
	b = cl_base64_encode(ev.evidence.data, ev.evidence.len);
	aux = ev.aux.len ? cl_base64_encode(ev.aux.data, ev.aux.len) : NULL;
	CL_CHECK(b && (aux || !ev.aux.len), CL_ERR_NOMEM, "out of memory");
	switch (ev.format) {
	case CL_FORMAT_DEVTEE:
		*evidence = json_pack("{s:s}", "report", b);
		break;
	case CL_FORMAT_SNP:
		*evidence = json_pack("{s:s}", "attestation_report", b);
		break;
	case CL_FORMAT_TDX:
		*evidence = aux ? json_pack("{s:s, s:s}", "quote", b, "cc_eventlog", aux)
				: json_pack("{s:s}", "quote", b);
		break;
	case CL_FORMAT_SGX:
		*evidence = json_pack("{s:s}", "quote", b);
		break;
	default:
		CL_CHECK(0, CL_ERR_UNSUPPORTED, "this TEE's evidence cannot be sent to a KBS");
	}
	CL_CHECK(*evidence, CL_ERR_NOMEM, "out of memory");
out:
	free(b);
	free(aux);
	cl_attest_evidence_free(&ev);
	return rc;
}
