/*
 * The agent's JSON envelope around raw evidence. Nothing in it is believed:
 * the format name must agree with what the evidence itself is, certificates
 * are only candidates the inner verifier checks against the pinned roots,
 * and an event log means something only once its replay equals the signed
 * registers.
 */
#include <ctype.h>
#include <string.h>

#include "cloister/tpm.h"
#include "envelope.h"
#include "format.h"
#include "internal.h"

int cl_envelope_detect(const uint8_t *ev, size_t n)
{
	size_t i = 0;

	while (i < n && isspace(ev[i]))
		i++;
	if (i == n || ev[i] != '{')
		return 0;
	/* Too large for either: the envelope parser refuses it without parsing. */
	return n > CL_MAX_ENVELOPE || !cl_tpm_detect(ev, n);
}

void cl_envelope_free(struct cl_envelope *e)
{
	if (!e)
		return;
	free(e->evidence);
	free(e->certs);
	free(e->eventlog);
	memset(e, 0, sizeof(*e));
}

static int b64_member(json_t *v, const char *key, size_t cap, uint8_t **out, size_t *len)
{
	const char *s = json_string_value(v);
	size_t sl = json_string_length(v);

	CL_ENSURE_MSG(s, CL_ERR_MALFORMED, "envelope \"%s\" is not a string", key);
	/* Checked before decoding so an oversized member costs no allocation. */
	CL_ENSURE_MSG(sl / 4 <= cap / 3 + 1, CL_ERR_MALFORMED,
		      "envelope \"%s\" larger than %zu bytes", key, cap);
	CL_ENSURE_MSG(cl_base64_decode(s, sl, out, len) == CL_OK, CL_ERR_MALFORMED,
		      "envelope \"%s\" is not base64", key);
	CL_ENSURE_MSG(*len <= cap, CL_ERR_MALFORMED, "envelope \"%s\" larger than %zu bytes", key,
		      cap);
	return CL_OK;
}

int cl_envelope_from_json(const json_t *root, struct cl_envelope *out)
{
	const struct cl_format_ops *ops = NULL;
	const char *key = NULL, *s = NULL;
	json_t *v = NULL;
	int rc = CL_OK, have_fmt = 0, have_prov = 0;

	memset(out, 0, sizeof(*out));
	CL_CHECK(json_is_object(root), CL_ERR_MALFORMED, "envelope is not a JSON object");
	json_object_foreach ((json_t *)root, key, v) {
		if (strcmp(key, "format") == 0) {
			s = json_string_value(v);
			CL_CHECK(s, CL_ERR_MALFORMED, "envelope \"format\" is not a string");
			CL_CHECK(cl_format_parse(s, &out->format) == CL_OK &&
					 (ops = cl_format_ops_get(out->format)) != NULL &&
					 !(ops->flags & CL_FMT_JSON),
				 CL_ERR_UNSUPPORTED, "envelope names an unsupported format");
			have_fmt = 1;
		} else if (strcmp(key, "provider") == 0) {
			s = json_string_value(v);
			CL_CHECK(s && json_string_length(v) > 0 &&
					 json_string_length(v) < sizeof(out->provider) &&
					 strlen(s) == json_string_length(v),
				 CL_ERR_MALFORMED, "envelope \"provider\" is not a short string");
			memcpy(out->provider, s, json_string_length(v) + 1);
			have_prov = 1;
		} else if (strcmp(key, "evidence") == 0) {
			CL_TRY(b64_member(v, key, CL_MAX_EVIDENCE, &out->evidence,
					  &out->evidence_len));
		} else if (strcmp(key, "certs") == 0) {
			CL_TRY(b64_member(v, key, CL_MAX_ENVELOPE_CERTS, &out->certs,
					  &out->certs_len));
		} else if (strcmp(key, "eventlog") == 0) {
			CL_TRY(b64_member(v, key, CL_MAX_ENVELOPE_EVENTLOG, &out->eventlog,
					  &out->eventlog_len));
			out->have_eventlog = 1;
		} else {
			CL_CHECK(0, CL_ERR_MALFORMED, "envelope has an unknown member");
		}
	}
	CL_CHECK(have_fmt && have_prov && out->evidence, CL_ERR_MALFORMED,
		 "envelope lacks \"format\", \"provider\" or \"evidence\"");
	CL_CHECK(out->evidence_len > 0, CL_ERR_MALFORMED, "envelope evidence is empty");
out:
	if (rc != CL_OK)
		cl_envelope_free(out);
	return rc;
}

int cl_envelope_load(const uint8_t *p, size_t n, json_t **root)
{
	json_error_t jerr;

	*root = NULL;
	CL_ENSURE_MSG(n <= CL_MAX_ENVELOPE, CL_ERR_MALFORMED, "envelope larger than %u bytes",
		      CL_MAX_ENVELOPE);
	*root = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &jerr);
	CL_ENSURE_MSG(*root, CL_ERR_MALFORMED, "envelope is not JSON: %s", jerr.text);
	return CL_OK;
}

int cl_envelope_parse(const uint8_t *p, size_t n, struct cl_envelope *out)
{
	json_t *root = NULL;
	int rc = CL_OK;

	memset(out, 0, sizeof(*out));
	CL_GUARD(cl_envelope_load(p, n, &root));
	rc = cl_envelope_from_json(root, out);
	json_decref(root);
	return rc;
}

int cl_envelope_open(const struct cl_envelope *env, const struct cl_verify_opts *o,
		     struct cl_evidence *e)
{
	const struct cl_format_ops *inner =
		cl_format_ops_detect(env->evidence, env->evidence_len, NULL);

	e->format = inner ? inner->id : CL_FORMAT_AUTO;
	CL_ENSURE_MSG(inner, CL_ERR_UNSUPPORTED, "envelope evidence is in no recognised format");
	CL_ENSURE_MSG(inner->id == env->format, CL_ERR_MISMATCH,
		      "envelope says %s but the evidence is %s", cl_format_name(env->format),
		      inner->name);
	CL_ENSURE_MSG(o->format == CL_FORMAT_AUTO || o->format == inner->id, CL_ERR_MISMATCH,
		      "--format %s but the envelope's evidence is %s", cl_format_name(o->format),
		      inner->name);
	CL_ENSURE_MSG(!env->certs || (inner->flags & CL_FMT_ENV_CERTS), CL_ERR_MALFORMED,
		      "envelope \"certs\" does not go with %s evidence", inner->name);
	CL_ENSURE_MSG(!env->have_eventlog || (inner->flags & CL_FMT_ENV_EVENTLOG), CL_ERR_MALFORMED,
		      "envelope \"eventlog\" does not go with %s evidence", inner->name);
	e->ops = inner;
	e->raw = env->evidence;
	e->raw_len = env->evidence_len;
	e->env = env;
	return CL_OK;
}
