/*
 * Intel PCS bodies sign the exact bytes of the "tcbInfo" / "enclaveIdentity"
 * value as it appears in the body. Re-serialising a parsed tree does not
 * reproduce those bytes, so the signed span is located with this bounded
 * scanner; the whole body is parsed by jansson as well, which confirms the
 * structure the scanner walked.
 */
#include <string.h>

#include "intel.h"

static int peek(const struct cl_reader *r, uint8_t *c)
{
	if (r->left == 0)
		return cl_fail(CL_ERR_TRUNCATED, "JSON ends early");
	*c = r->p[0];
	return CL_OK;
}

/* Move past one byte the caller has already seen. */
static void adv(struct cl_reader *r)
{
	uint8_t c = 0;

	if (cl_read_u8(r, &c) < 0)
		return;
}

static void skip_ws(struct cl_reader *r)
{
	while (r->left && (r->p[0] == ' ' || r->p[0] == '\t' || r->p[0] == '\n' || r->p[0] == '\r'))
		adv(r);
}

static int expect(struct cl_reader *r, uint8_t want)
{
	uint8_t c = 0;

	CL_GUARD(cl_read_u8(r, &c));
	CL_ENSURE_MSG(c == want, CL_ERR_MALFORMED, "JSON: expected '%c'", want);
	return CL_OK;
}

/* Skip a string whose opening quote is next; raw, rawlen: its bytes between the quotes. */
static int scan_string(struct cl_reader *r, const uint8_t **raw, size_t *rawlen)
{
	const uint8_t *start = NULL;
	size_t n = 0;
	uint8_t c = 0;

	CL_GUARD(expect(r, '"'));
	start = r->p;
	for (;;) {
		CL_GUARD(cl_read_u8(r, &c));
		if (c == '"')
			break;
		CL_ENSURE_MSG(c >= 0x20, CL_ERR_MALFORMED, "JSON: control character in string");
		n++;
		if (c == '\\') {
			CL_GUARD(cl_read_u8(r, &c));
			n++;
		}
	}
	if (raw)
		*raw = start;
	if (rawlen)
		*rawlen = n;
	return CL_OK;
}

static int skip_value(struct cl_reader *r, int depth)
{
	uint8_t c = 0;

	CL_ENSURE_MSG(depth < CL_INTEL_MAX_JSON_DEPTH, CL_ERR_MALFORMED, "JSON nested too deeply");
	skip_ws(r);
	CL_GUARD(peek(r, &c));
	if (c == '"')
		return scan_string(r, NULL, NULL);
	if (c == '{' || c == '[') {
		uint8_t close = c == '{' ? '}' : ']';

		adv(r);
		skip_ws(r);
		CL_GUARD(peek(r, &c));
		if (c == close) {
			adv(r);
			return CL_OK;
		}
		for (;;) {
			if (close == '}') {
				skip_ws(r);
				CL_GUARD(scan_string(r, NULL, NULL));
				skip_ws(r);
				CL_GUARD(expect(r, ':'));
			}
			CL_GUARD(skip_value(r, depth + 1));
			skip_ws(r);
			CL_GUARD(cl_read_u8(r, &c));
			if (c == close)
				return CL_OK;
			CL_ENSURE_MSG(c == ',', CL_ERR_MALFORMED, "JSON: expected ',' or '%c'",
				      close);
		}
	}
	/* number, true, false, null: run of literal characters; jansson checks them */
	{
		size_t n = 0;

		while (r->left &&
		       (r->p[0] == '-' || r->p[0] == '+' || r->p[0] == '.' ||
			(r->p[0] >= '0' && r->p[0] <= '9') || (r->p[0] >= 'a' && r->p[0] <= 'z') ||
			(r->p[0] >= 'A' && r->p[0] <= 'Z'))) {
			adv(r);
			n++;
		}
		CL_ENSURE_MSG(n > 0, CL_ERR_MALFORMED, "JSON: unexpected character");
	}
	return CL_OK;
}

int cl_intel_json_member_span(const uint8_t *body, size_t n, const char *key, size_t *off,
			      size_t *len)
{
	struct cl_reader r = cl_reader_make(body, n);
	size_t klen = strlen(key);
	int found = 0;
	uint8_t c = 0;

	skip_ws(&r);
	CL_GUARD(expect(&r, '{'));
	skip_ws(&r);
	CL_GUARD(peek(&r, &c));
	if (c == '}') {
		adv(&r);
	} else {
		for (;;) {
			const uint8_t *k = NULL;
			size_t kl = 0, start = 0;

			skip_ws(&r);
			CL_GUARD(scan_string(&r, &k, &kl));
			skip_ws(&r);
			CL_GUARD(expect(&r, ':'));
			skip_ws(&r);
			start = n - r.left;
			CL_GUARD(skip_value(&r, 1));
			if (kl == klen && memcmp(k, key, klen) == 0) {
				CL_ENSURE_MSG(!found, CL_ERR_MALFORMED,
					      "JSON: duplicate key \"%s\"", key);
				found = 1;
				*off = start;
				*len = n - r.left - start;
			}
			skip_ws(&r);
			CL_GUARD(cl_read_u8(&r, &c));
			if (c == '}')
				break;
			CL_ENSURE_MSG(c == ',', CL_ERR_MALFORMED, "JSON: expected ',' or '}'");
		}
	}
	skip_ws(&r);
	CL_ENSURE_MSG(r.left == 0, CL_ERR_MALFORMED, "JSON: bytes after the top-level object");
	CL_ENSURE_MSG(found, CL_ERR_MALFORMED, "JSON: no \"%s\" member", key);
	return CL_OK;
}
