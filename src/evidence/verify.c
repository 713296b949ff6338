/*
 * cl_verify_evidence(): the one pipeline every format goes through. The input
 * is looked at once (binary, or a JSON document parsed once), the format is
 * detected once, and the registry's descriptor parses, states claims and
 * verifies. An agent envelope is opened here and its inner evidence verified
 * in the same pass: nothing in the evidence layer calls back into this
 * function.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cloister/evidence.h"
#include "envelope.h"
#include "format.h"
#include "internal.h"

static int looks_json(const uint8_t *ev, size_t n)
{
	size_t i = 0;

	while (i < n && isspace(ev[i]))
		i++;
	return i < n && ev[i] == '{';
}

/* JSON text without a parse: NULL, and the first detector gets no document. */
static json_t *json_try(const uint8_t *ev, size_t n)
{
	json_error_t err;

	return json_loadb((const char *)ev, n, JSON_REJECT_DUPLICATES, &err);
}

enum cl_format cl_format_detect(const uint8_t *ev, size_t n)
{
	const struct cl_format_ops *ops = NULL;
	json_t *doc = NULL;

	if (looks_json(ev, n)) {
		doc = json_try(ev, n);
		if (json_is_object(doc))
			ops = cl_format_ops_detect(ev, n, doc);
		json_decref(doc);
	} else {
		ops = cl_format_ops_detect(ev, n, NULL);
	}
	return ops ? ops->id : CL_FORMAT_AUTO;
}

/* What the input holds, opened once. */
struct source {
	json_t *doc;		/* the JSON document, or NULL */
	struct cl_envelope env; /* an agent envelope, when the input was one */
};

/* A JSON document: evidence in a JSON format, or an agent envelope. */
static int open_json(const uint8_t *ev, size_t n, const struct cl_verify_opts *o, struct source *s,
		     struct cl_evidence *e)
{
	const struct cl_format_ops *forced = cl_format_ops_get(o->format);
	const struct cl_format_ops *ops = NULL;

	if (forced && (forced->flags & CL_FMT_JSON)) {
		/* Its own parser says why a document is not one. */
		CL_ENSURE_MSG(n <= CL_MAX_EVIDENCE, CL_ERR_MALFORMED,
			      "evidence larger than %u bytes", CL_MAX_EVIDENCE);
		s->doc = json_try(ev, n);
		ops = forced;
	} else {
		CL_GUARD(cl_envelope_load(ev, n, &s->doc));
		if (!forced)
			ops = cl_format_ops_detect(ev, n, s->doc);
	}
	if (ops) {
		CL_ENSURE_MSG(n <= CL_MAX_EVIDENCE, CL_ERR_MALFORMED,
			      "evidence larger than %u bytes", CL_MAX_EVIDENCE);
		e->ops = ops;
		e->format = ops->id;
		e->raw = ev;
		e->raw_len = n;
		e->json = s->doc;
		return CL_OK;
	}
	CL_GUARD(cl_envelope_from_json(s->doc, &s->env));
	return cl_envelope_open(&s->env, o, e);
}

static int open_evidence(const uint8_t *ev, size_t n, const struct cl_verify_opts *o,
			 struct source *s, struct cl_evidence *e)
{
	if (looks_json(ev, n))
		return open_json(ev, n, o, s, e);
	CL_ENSURE_MSG(n <= CL_MAX_EVIDENCE, CL_ERR_MALFORMED, "evidence larger than %u bytes",
		      CL_MAX_EVIDENCE);
	e->ops = o->format == CL_FORMAT_AUTO ? cl_format_ops_detect(ev, n, NULL)
					     : cl_format_ops_get(o->format);
	e->format = o->format;
	CL_ENSURE_MSG(e->ops, CL_ERR_UNSUPPORTED, "unrecognised evidence format");
	e->format = e->ops->id;
	e->raw = ev;
	e->raw_len = n;
	return CL_OK;
}

int cl_verify_evidence(const uint8_t *ev, size_t n, const struct cl_verify_opts *opts,
		       struct cl_verify_result *res)
{
	static const struct cl_verify_opts defaults = CL_VERIFY_OPTS_INIT;
	const struct cl_verify_opts *o = opts ? opts : &defaults;
	struct source src = {0};
	struct cl_evidence e = {0};
	json_t *claims = NULL;
	int rc = CL_OK;

	memset(res, 0, sizeof(*res));
	cl_error_clear();
	if (o->no_cache)
		cl_cache_bypass(1);
	rc = open_evidence(ev, n, o, &src, &e);
	if (rc == CL_OK)
		rc = e.ops->parse(&e);
	if (rc == CL_OK)
		rc = e.ops->claims(&e, &claims);
	if (rc == CL_OK)
		rc = e.ops->verify(&e, o, claims);
	if (e.ops)
		e.ops->free(e.parsed);
	cl_envelope_free(&src.env);
	json_decref(src.doc);
	if (o->no_cache)
		cl_cache_bypass(0);
	res->format = e.format;
	res->status = rc;
	res->claims = claims;
	if (rc != CL_OK)
		snprintf(res->reason, sizeof(res->reason), "%s", cl_error_reason(rc));
	else
		cl_error_clear(); /* a verified result carries no failure detail */
	return rc;
}

void cl_verify_result_free(struct cl_verify_result *res)
{
	if (!res)
		return;
	json_decref(res->claims);
	res->claims = NULL;
}
