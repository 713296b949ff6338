/*
 * KBS protocol messages (Trustee's kbs_types, protocol 0.1.1): parsing and
 * checking of the auth and attest bodies, the runtime-data binding, resource
 * paths, the evidence shapes per TEE and problem JSON. No I/O here, so tests
 * and the fuzzer call these directly.
 */
#include <string.h>
#include <strings.h>

#include "cloister/crypto.h"
#include "cloister/kbs.h"
#include "cloister/snp.h"

#define MAX_B64_FIELD ((size_t)1 << 20)

static json_t *load_object(const uint8_t *body, size_t len, const char *what)
{
	json_error_t e;
	json_t *j = NULL;

	if (!body || len == 0 || len > CL_MAX_KBS_BODY) {
		cl_fail(CL_ERR_MALFORMED, "%s: empty or larger than %zu bytes", what,
			CL_MAX_KBS_BODY);
		return NULL;
	}
	j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &e);
	if (!j) {
		cl_fail(CL_ERR_MALFORMED, "%s: not JSON (%.80s)", what, e.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		cl_fail(CL_ERR_MALFORMED, "%s: not a JSON object", what);
		return NULL;
	}
	return j;
}

static int copy_str(const json_t *v, char *out, size_t cap, const char *what)
{
	CL_ENSURE_MSG(json_is_string(v), CL_ERR_MALFORMED, "%s is missing or not a string", what);
	CL_ENSURE_MSG(json_string_length(v) < cap &&
			      strlen(json_string_value(v)) == json_string_length(v),
		      CL_ERR_MALFORMED, "%s is too long", what);
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return CL_OK;
}

int cl_kbs_parse_request(const uint8_t *body, size_t len, struct cl_kbs_request *out)
{
	json_t *j = load_object(body, len, "auth request");
	int rc = CL_OK;

	memset(out, 0, sizeof(*out));
	if (!j)
		return CL_ERR_MALFORMED;
	CL_TRY(copy_str(json_object_get(j, "version"), out->version, sizeof(out->version),
			"version"));
	CL_TRY(copy_str(json_object_get(j, "tee"), out->tee, sizeof(out->tee), "tee"));
	/* Protocol versions 0.1.x and 0.2.x share these messages. */
	CL_CHECK(strncmp(out->version, "0.1.", 4) == 0 || strncmp(out->version, "0.2.", 4) == 0 ||
			 strcmp(out->version, "0.1") == 0,
		 CL_ERR_UNSUPPORTED, "protocol version %s is not supported", out->version);
	for (const char *p = out->tee; *p; p++)
		CL_CHECK((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'), CL_ERR_MALFORMED,
			 "tee name has bad characters");
	CL_CHECK(strcmp(out->tee, "snp") == 0 || strcmp(out->tee, "tdx") == 0 ||
			 strcmp(out->tee, "sgx") == 0 || strcmp(out->tee, "devtee") == 0,
		 CL_ERR_UNSUPPORTED, "tee %s is not supported", out->tee);
out:
	json_decref(j);
	return rc;
}

void cl_kbs_attestation_free(struct cl_kbs_attestation *a)
{
	if (!a)
		return;
	json_decref(a->root);
	memset(a, 0, sizeof(*a));
}

/* Length of a base64url JWK member once decoded, or 0 when it is not one. */
static size_t b64url_len(const json_t *v, size_t max_chars)
{
	const char *s = json_string_value(v);
	size_t n = s ? json_string_length(v) : 0;

	if (!s || n > max_chars || !cl_is_base64url(s, n) || n % 4 == 1)
		return 0;
	return n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
}

int cl_kbs_check_tee_pubkey(const json_t *jwk)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	const char *alg = json_string_value(json_object_get(jwk, "alg"));

	CL_ENSURE_MSG(json_is_object(jwk) && kty, CL_ERR_MALFORMED, "tee-pubkey is not a JWK");
	CL_ENSURE_MSG(!json_object_get(jwk, "d") && !json_object_get(jwk, "p"), CL_ERR_MALFORMED,
		      "tee-pubkey carries private key material");
	if (strcmp(kty, "EC") == 0) {
		const char *crv = json_string_value(json_object_get(jwk, "crv"));
		size_t want = 0;

		CL_ENSURE_MSG(!alg || strcmp(alg, "ECDH-ES+A256KW") == 0, CL_ERR_UNSUPPORTED,
			      "EC tee-pubkey algorithm %.32s is not supported", alg);
		CL_ENSURE_MSG(crv, CL_ERR_MALFORMED, "EC tee-pubkey without crv");
		if (strcmp(crv, "P-256") == 0)
			want = 32;
		else if (strcmp(crv, "P-521") == 0)
			want = 66;
		else
			CL_BAIL(CL_ERR_UNSUPPORTED, "tee-pubkey curve %.16s is not supported", crv);
		CL_ENSURE_MSG(b64url_len(json_object_get(jwk, "x"), 128) == want &&
				      b64url_len(json_object_get(jwk, "y"), 128) == want,
			      CL_ERR_MALFORMED, "EC tee-pubkey coordinates have the wrong size");
		return CL_OK;
	}
	if (strcmp(kty, "RSA") == 0) {
		size_t nlen = b64url_len(json_object_get(jwk, "n"), 1400);

		/* RSA1_5 is open to padding oracles (Bleichenbacher): refused. */
		CL_ENSURE_MSG(alg && strcmp(alg, "RSA-OAEP-256") == 0, CL_ERR_UNSUPPORTED,
			      "RSA tee-pubkey algorithm %.32s is not supported (use RSA-OAEP-256)",
			      alg ? alg : "(none)");
		CL_ENSURE_MSG(nlen >= 256 && nlen <= 1024 &&
				      b64url_len(json_object_get(jwk, "e"), 12) > 0,
			      CL_ERR_MALFORMED,
			      "RSA tee-pubkey must have a 2048..8192-bit modulus");
		return CL_OK;
	}
	CL_BAIL(CL_ERR_UNSUPPORTED, "tee-pubkey key type %.16s is not supported", kty);
}

int cl_kbs_parse_attestation(const uint8_t *body, size_t len, struct cl_kbs_attestation *out)
{
	json_t *j = load_object(body, len, "attestation");
	const json_t *ev = NULL, *id = NULL;
	uint8_t *nonce = NULL;
	size_t nl = 0;
	int rc = CL_OK;

	memset(out, 0, sizeof(*out));
	if (!j)
		return CL_ERR_MALFORMED;
	out->root = j;
	out->runtime_data = json_object_get(j, "runtime-data");
	CL_CHECK(json_is_object(out->runtime_data), CL_ERR_MALFORMED, "runtime-data is missing");
	out->nonce = json_string_value(json_object_get(out->runtime_data, "nonce"));
	CL_CHECK(out->nonce, CL_ERR_MALFORMED, "runtime-data.nonce is missing");
	CL_CHECK(strlen(out->nonce) < 128 &&
			 cl_base64_decode(out->nonce, strlen(out->nonce), &nonce, &nl) == CL_OK &&
			 nl == CL_KBS_NONCE_LEN,
		 CL_ERR_MALFORMED, "runtime-data.nonce is not 32 bytes of base64");
	out->tee_pubkey = json_object_get(out->runtime_data, "tee-pubkey");
	CL_TRY(cl_kbs_check_tee_pubkey(out->tee_pubkey));
	ev = json_object_get(j, "tee-evidence");
	/* Protocol 0.2 wraps the evidence as {primary_evidence, additional_evidence}.
   */
	if (json_is_object(ev) && json_object_get(ev, "primary_evidence"))
		ev = json_object_get(ev, "primary_evidence");
	CL_CHECK(ev && (json_is_object(ev) || json_is_string(ev)), CL_ERR_MALFORMED,
		 "tee-evidence is missing");
	out->evidence = ev;
	id = json_object_get(j, "init-data");
	if (id && !json_is_null(id)) {
		CL_CHECK(json_is_object(id) && json_is_string(json_object_get(id, "format")) &&
				 json_is_string(json_object_get(id, "body")),
			 CL_ERR_MALFORMED, "init-data must be {\"format\", \"body\"}");
		out->init_data = id;
	}
out:
	free(nonce);
	if (rc != CL_OK)
		cl_kbs_attestation_free(out);
	return rc;
}

int cl_kbs_runtime_data_hash(const json_t *runtime_data, uint8_t out[64])
{
	char *s = NULL;
	int rc = CL_OK;

	memset(out, 0, 64);
	CL_ENSURE_MSG(json_is_object(runtime_data), CL_ERR_ARG, "runtime data is not an object");
	s = json_dumps(runtime_data, JSON_COMPACT | JSON_SORT_KEYS);
	CL_ENSURE_MSG(s, CL_ERR_NOMEM, "out of memory");
	rc = cl_digest(CL_SHA384, s, strlen(s), out);
	free(s);
	return rc;
}

static int path_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

int cl_kbs_resource_path_check(const char *path, size_t len)
{
	size_t parts = 0, start = 0;

	CL_ENSURE_MSG(path && len > 0 && len <= CL_MAX_KBS_PATH, CL_ERR_MALFORMED,
		      "resource path is empty or too long");
	for (size_t i = 0; i <= len; i++) {
		size_t n = 0;

		if (i < len && path[i] != '/') {
			CL_ENSURE_MSG(path_char(path[i]), CL_ERR_MALFORMED,
				      "resource path has a bad character");
			continue;
		}
		n = i - start;
		CL_ENSURE_MSG(n > 0 && n <= CL_MAX_KBS_PATH_PART, CL_ERR_MALFORMED,
			      "resource path part is empty or too long");
		CL_ENSURE_MSG(!(n == 1 && path[start] == '.') &&
				      !(n == 2 && path[start] == '.' && path[start + 1] == '.'),
			      CL_ERR_MALFORMED, "resource path may not contain . or ..");
		parts++;
		start = i + 1;
	}
	CL_ENSURE_MSG(parts == 3, CL_ERR_MALFORMED, "resource path must be REPO/TYPE/TAG");
	return CL_OK;
}

/* Bytes from a base64 string or a JSON array of integers 0..255 (serde's
 * Vec<u8>). */
static int json_bytes(const json_t *v, struct cl_buf *out, const char *what)
{
	if (json_is_string(v)) {
		uint8_t *p = NULL;
		size_t n = 0;
		int rc = CL_OK;

		CL_ENSURE_MSG(json_string_length(v) <= MAX_B64_FIELD * 2, CL_ERR_MALFORMED,
			      "%s is too large", what);
		CL_ENSURE_MSG(cl_base64_decode(json_string_value(v), json_string_length(v), &p,
					       &n) == CL_OK,
			      CL_ERR_MALFORMED, "%s is not base64", what);
		rc = cl_buf_append(out, p, n);
		free(p);
		return rc;
	}
	if (json_is_array(v)) {
		size_t i = 0;
		json_t *x = NULL;

		CL_ENSURE_MSG(json_array_size(v) <= MAX_B64_FIELD, CL_ERR_MALFORMED,
			      "%s is too large", what);
		json_array_foreach (v, i, x) {
			uint8_t b = 0;

			CL_ENSURE_MSG(json_is_integer(x) && json_integer_value(x) >= 0 &&
					      json_integer_value(x) <= 255,
				      CL_ERR_MALFORMED, "%s is not a byte array", what);
			b = (uint8_t)json_integer_value(x);
			CL_GUARD(cl_buf_append(out, &b, 1));
		}
		return CL_OK;
	}
	CL_BAIL(CL_ERR_MALFORMED, "%s is missing", what);
}

static int snp_vcek(const json_t *chain, struct cl_buf *vcek)
{
	size_t i = 0;
	json_t *e = NULL;

	if (!chain || json_is_null(chain))
		return CL_OK;
	CL_ENSURE_MSG(json_is_array(chain) && json_array_size(chain) <= 8, CL_ERR_MALFORMED,
		      "snp cert_chain is not a short array");
	json_array_foreach (chain, i, e) {
		const char *t = json_string_value(json_object_get(e, "cert_type"));

		if (t && (strcasecmp(t, "vcek") == 0 || strcasecmp(t, "vlek") == 0))
			return json_bytes(json_object_get(e, "data"), vcek, "snp cert_chain data");
	}
	return CL_OK;
}

int cl_kbs_evidence_bytes(const char *tee, const json_t *ev, struct cl_buf *out,
			  struct cl_buf *vcek)
{
	json_t *inner = NULL;
	int rc = CL_OK;

	/* Some attesters send the evidence JSON as a string. */
	if (json_is_string(ev) && json_string_length(ev) > 0 && json_string_value(ev)[0] == '{') {
		inner = json_loadb(json_string_value(ev), json_string_length(ev),
				   JSON_REJECT_DUPLICATES, NULL);
		CL_CHECK(json_is_object(inner), CL_ERR_MALFORMED, "tee-evidence is not valid JSON");
		ev = inner;
	}
	if (json_is_string(ev)) {
		CL_TRY(json_bytes(ev, out, "tee-evidence"));
	} else if (strcmp(tee, "snp") == 0) {
		const json_t *r = json_object_get(ev, "attestation_report");

		if (json_is_object(r)) {
			/* Trustee's attester sends the sev crate's serde form of the report. */
			uint8_t rep[CL_SNP_REPORT_SIZE];

			CL_TRY(cl_snp_report_from_serde(r, rep));
			CL_TRY(cl_buf_append(out, rep, sizeof(rep)));
		} else {
			CL_CHECK(json_is_string(r) || json_is_array(r), CL_ERR_UNSUPPORTED,
				 "snp attestation_report must be the raw report (base64 or "
				 "bytes) or the sev crate's JSON form");
			CL_TRY(json_bytes(r, out, "snp attestation_report"));
		}
		if (vcek)
			CL_TRY(snp_vcek(json_object_get(ev, "cert_chain"), vcek));
	} else if (strcmp(tee, "tdx") == 0 || strcmp(tee, "sgx") == 0) {
		CL_TRY(json_bytes(json_object_get(ev, "quote"), out, "quote"));
	} else if (strcmp(tee, "devtee") == 0) {
		const json_t *r = json_object_get(ev, "report");

		if (!r)
			r = json_object_get(ev, "evidence");
		CL_TRY(json_bytes(r, out, "devtee report"));
	} else {
		CL_CHECK(0, CL_ERR_UNSUPPORTED, "tee %.16s is not supported", tee);
	}
	CL_CHECK(out->len > 0 && out->len <= CL_MAX_EVIDENCE, CL_ERR_MALFORMED,
		 "evidence is empty or too large");
out:
	json_decref(inner);
	return rc;
}

static const struct {
	const char *name, *message;
} problem_messages[] = {
	{"SerdeError", "the request is malformed"},
	{"AttestationError", "attestation failed"},
	{"StorageError", "the store is unavailable; retry later"},
	{"InternalError", "internal error"},
	{"PolicyEngineError", "the policy engine failed"},
	{"InvalidRequestPath", "invalid request path"},
	{"TokenNotFound", "no attestation token: attest first"},
	{"TokenVerifierError", "the attestation token is not valid"},
	{"PolicyDeny", "Access denied by policy"},
	{"PluginInternalError", "the resource cannot be served"},
	{"JweError", "the resource cannot be encrypted to the TEE key"},
	{"AdminAuthAccess", "admin access refused"},
	{"PayloadTooLarge", "request body too large"},
	{"ParsePolicyError", "the policy does not parse or compile"},
	{"RvpsError", "the reference values are malformed"},
	{"TooManyRequests", "rate limit exceeded; retry later"},
	{"TooManySessions", "too many open sessions; retry later"},
};

const char *cl_kbs_problem_message(const char *name)
{
	for (size_t i = 0; name && i < sizeof(problem_messages) / sizeof(problem_messages[0]); i++)
		if (strcmp(name, problem_messages[i].name) == 0)
			return problem_messages[i].message;
	return "request refused";
}

char *cl_kbs_problem(const char *name, int status, const char *detail)
{
	char type[160];
	json_t *j = NULL;
	char *s = NULL;

	snprintf(type, sizeof(type), "%s%s", CL_KBS_ERROR_PREFIX, name);
	j = json_pack("{s:s, s:s, s:i, s:s}", "type", type, "title", name, "status", status,
		      "detail", detail ? detail : cl_kbs_problem_message(name));
	if (j)
		s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	return s;
}
