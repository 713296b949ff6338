/*
 * Reference values: the accepted measurements, minimum SVNs and TCBs per
 * platform. The file is checked once at load and rewritten into one shape
 *   {"<platform>": {"<claim>": {"values": [{"value", "expires"?}...]}
 *                              | {"min", "expires"?}}}
 * so lookups never meet an unexpected type.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cloister/appraise.h"
#include "internal.h"

struct cl_refvalues {
	json_t *root;
};

static int is_hex(const char *s, size_t n)
{
	if (n == 0 || n % 2)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* Scalars only: values are compared, never interpreted. */
static int check_scalar(const json_t *v, const char *where, json_t **out)
{
	if (json_is_string(v)) {
		size_t n = json_string_length(v);
		const char *s = json_string_value(v);

		CL_ENSURE_MSG(n <= CL_MAX_RV_STRING, CL_ERR_MALFORMED,
			      "reference values: %s: string longer than %d", where,
			      CL_MAX_RV_STRING);
		CL_ENSURE_MSG(strlen(s) == n, CL_ERR_MALFORMED,
			      "reference values: %s: string contains NUL", where);
		if (is_hex(s, n)) {
			char *low = strdup(s);

			CL_ENSURE_MSG(low, CL_ERR_NOMEM, "out of memory");
			for (size_t i = 0; i < n; i++)
				low[i] = (char)tolower((unsigned char)low[i]);
			*out = json_string(low);
			free(low);
		} else {
			*out = json_copy((json_t *)v);
		}
	} else if (json_is_number(v) || json_is_boolean(v)) {
		*out = json_copy((json_t *)v);
	} else {
		CL_BAIL(CL_ERR_MALFORMED,
			"reference values: %s: value must be a string, number or boolean", where);
	}
	CL_ENSURE_MSG(*out, CL_ERR_NOMEM, "out of memory");
	return CL_OK;
}

static int parse_expires(const json_t *obj, const char *where, json_t *dst)
{
	const json_t *e = json_object_get(obj, "expires");
	int64_t t = 0;

	if (!e)
		return CL_OK;
	CL_ENSURE_MSG(json_is_string(e) && cl_time_parse(json_string_value(e), &t) == CL_OK,
		      CL_ERR_MALFORMED, "reference values: %s: expires is not an RFC 3339 time",
		      where);
	CL_ENSURE_MSG(json_object_set_new(dst, "expires", json_integer(t)) == 0, CL_ERR_NOMEM,
		      "out of memory");
	return CL_OK;
}

static int check_known_keys(const json_t *obj, const char *where, const char *const *keys)
{
	const char *k = NULL;
	json_t *v = NULL;

	json_object_foreach ((json_t *)obj, k, v) {
		int ok = 0;

		for (size_t i = 0; keys[i]; i++)
			ok |= strcmp(k, keys[i]) == 0;
		CL_ENSURE_MSG(ok, CL_ERR_MALFORMED, "reference values: %s: unknown member '%s'",
			      where, k);
		CL_ENSURE_MSG(strcmp(k, "note") != 0 || json_is_string(v), CL_ERR_MALFORMED,
			      "reference values: %s: note must be a string", where);
	}
	return CL_OK;
}

static int parse_min(const json_t *m, const char *where, json_t **out)
{
	const char *k = NULL;
	json_t *v = NULL;

	if (json_is_number(m)) {
		*out = json_copy((json_t *)m);
		CL_ENSURE_MSG(*out, CL_ERR_NOMEM, "out of memory");
		return CL_OK;
	}
	CL_ENSURE_MSG(json_is_object(m) && json_object_size(m) > 0 &&
			      json_object_size(m) <= CL_MAX_RV_CLAIMS,
		      CL_ERR_MALFORMED,
		      "reference values: %s: min must be a number or an object of numbers", where);
	json_object_foreach ((json_t *)m, k, v)
		CL_ENSURE_MSG(json_is_number(v), CL_ERR_MALFORMED,
			      "reference values: %s: min.%s is not a number", where, k);
	*out = json_copy((json_t *)m);
	CL_ENSURE_MSG(*out, CL_ERR_NOMEM, "out of memory");
	return CL_OK;
}

static int parse_claim(const char *platform, const char *claim, const json_t *in, json_t **out)
{
	static const char *const value_keys[] = {"value", "expires", "note", NULL};
	static const char *const min_keys[] = {"min", "expires", "note", NULL};
	char where[160];
	json_t *res = json_object(), *vals = NULL, *one = NULL, *x = NULL;
	size_t i = 0;
	int rc = CL_OK;

	snprintf(where, sizeof(where), "%.60s.%.60s", platform, claim);
	CL_CHECK(res, CL_ERR_NOMEM, "out of memory");
	if (json_is_object(in)) {
		CL_TRY(check_known_keys(in, where, min_keys));
		CL_CHECK(json_object_get(in, "min"), CL_ERR_MALFORMED,
			 "reference values: %s: an object needs a min", where);
		CL_TRY(parse_min(json_object_get(in, "min"), where, &x));
		CL_CHECK(json_object_set_new(res, "min", x) == 0, CL_ERR_NOMEM, "out of memory");
		x = NULL;
		CL_TRY(parse_expires(in, where, res));
		goto done;
	}
	CL_CHECK(json_is_array(in), CL_ERR_MALFORMED,
		 "reference values: %s: expected an array of accepted values or {\"min\": ...}",
		 where);
	CL_CHECK(json_array_size(in) <= CL_MAX_RV_VALUES, CL_ERR_MALFORMED,
		 "reference values: %s: more than %d values", where, CL_MAX_RV_VALUES);
	vals = json_array();
	CL_CHECK(vals, CL_ERR_NOMEM, "out of memory");
	for (i = 0; i < json_array_size(in); i++) {
		const json_t *e = json_array_get(in, i);

		one = json_object();
		CL_CHECK(one, CL_ERR_NOMEM, "out of memory");
		if (json_is_object(e)) {
			CL_TRY(check_known_keys(e, where, value_keys));
			CL_CHECK(json_object_get(e, "value"), CL_ERR_MALFORMED,
				 "reference values: %s[%zu]: object without value", where, i);
			CL_TRY(check_scalar(json_object_get(e, "value"), where, &x));
			CL_TRY(parse_expires(e, where, one));
		} else {
			CL_TRY(check_scalar(e, where, &x));
		}
		CL_CHECK(json_object_set_new(one, "value", x) == 0, CL_ERR_NOMEM, "out of memory");
		x = NULL;
		CL_CHECK(json_array_append_new(vals, one) == 0, CL_ERR_NOMEM, "out of memory");
		one = NULL;
	}
	CL_CHECK(json_object_set_new(res, "values", vals) == 0, CL_ERR_NOMEM, "out of memory");
	vals = NULL;
done:
	*out = res;
	res = NULL;
out:
	json_decref(x);
	json_decref(one);
	json_decref(vals);
	json_decref(res);
	return rc;
}

int cl_refvalues_parse(const char *text, size_t len, struct cl_refvalues **out)
{
	json_error_t jerr;
	json_t *in = NULL;
	int rc = CL_OK;

	*out = NULL;
	CL_CHECK(len <= CL_MAX_REFVALUES_FILE, CL_ERR_MALFORMED,
		 "reference values larger than %zu bytes", CL_MAX_REFVALUES_FILE);
	in = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	CL_CHECK(in, CL_ERR_MALFORMED, "reference values: line %d: %s", jerr.line, jerr.text);
	CL_TRY(cl_refvalues_from_json(in, out));
out:
	json_decref(in);
	return rc;
}

int cl_refvalues_from_json(const json_t *in, struct cl_refvalues **out)
{
	json_t *root = NULL, *plat = NULL, *pv = NULL, *cv = NULL, *norm = NULL;
	const char *pname = NULL, *cname = NULL;
	struct cl_refvalues *rv = NULL;
	int rc = CL_OK;

	*out = NULL;
	CL_CHECK(json_is_object(in), CL_ERR_MALFORMED, "reference values: expected a JSON object");
	CL_CHECK(json_object_size(in) <= CL_MAX_RV_PLATFORMS, CL_ERR_MALFORMED,
		 "reference values: more than %d platforms", CL_MAX_RV_PLATFORMS);
	root = json_object();
	CL_CHECK(root, CL_ERR_NOMEM, "out of memory");
	json_object_foreach ((json_t *)in, pname, pv) {
		CL_CHECK(json_is_object(pv), CL_ERR_MALFORMED,
			 "reference values: platform '%.60s' must map claims to values", pname);
		CL_CHECK(json_object_size(pv) <= CL_MAX_RV_CLAIMS, CL_ERR_MALFORMED,
			 "reference values: more than %d claims for '%.60s'", CL_MAX_RV_CLAIMS,
			 pname);
		plat = json_object();
		CL_CHECK(plat, CL_ERR_NOMEM, "out of memory");
		json_object_foreach (pv, cname, cv) {
			CL_TRY(parse_claim(pname, cname, cv, &norm));
			CL_CHECK(json_object_set_new(plat, cname, norm) == 0, CL_ERR_NOMEM,
				 "out of memory");
			norm = NULL;
		}
		CL_CHECK(json_object_set_new(root, pname, plat) == 0, CL_ERR_NOMEM,
			 "out of memory");
		plat = NULL;
	}
	rv = calloc(1, sizeof(*rv));
	CL_CHECK(rv, CL_ERR_NOMEM, "out of memory");
	rv->root = root;
	root = NULL;
	*out = rv;
out:
	json_decref(norm);
	json_decref(plat);
	json_decref(root);
	return rc;
}

int cl_refvalues_load(const char *path, struct cl_refvalues **out)
{
	struct cl_buf b = {0};
	int rc = CL_OK;

	*out = NULL;
	CL_TRY(cl_read_file(path, CL_MAX_REFVALUES_FILE, &b));
	CL_TRY(cl_refvalues_parse((const char *)b.data, b.len, out));
out:
	cl_buf_free(&b);
	return rc;
}

void cl_refvalues_free(struct cl_refvalues *rv)
{
	if (!rv)
		return;
	json_decref(rv->root);
	free(rv);
}

static const json_t *entry(const struct cl_refvalues *rv, const char *platform, const char *claim)
{
	if (!rv || !platform || !claim)
		return NULL;
	return json_object_get(json_object_get(rv->root, platform), claim);
}

static int live(const json_t *e, int64_t at)
{
	const json_t *x = json_object_get(e, "expires");

	return !x || json_integer_value(x) > at;
}

int cl_refvalues_has(const struct cl_refvalues *rv, const char *platform, const char *claim)
{
	return entry(rv, platform, claim) != NULL;
}

static int value_equal(const json_t *ref, const json_t *v)
{
	if (json_is_string(ref) && json_is_string(v)) {
		const char *a = json_string_value(ref), *b = json_string_value(v);
		size_t n = json_string_length(ref);

		if (n != json_string_length(v))
			return 0;
		/* Reference hex was lowercased at load; evidence hex may be either case. */
		return is_hex(a, n) ? strncasecmp(a, b, n) == 0 : memcmp(a, b, n) == 0;
	}
	if (json_is_number(ref) && json_is_number(v))
		return json_number_value(ref) == json_number_value(v);
	return json_equal((json_t *)ref, (json_t *)v);
}

int cl_refvalues_match(const struct cl_refvalues *rv, const char *platform, const char *claim,
		       const json_t *value, int64_t at)
{
	const json_t *vals = json_object_get(entry(rv, platform, claim), "values");
	const json_t *e = NULL;
	size_t i = 0;

	if (!value)
		return 0;
	json_array_foreach (vals, i, e) {
		if (live(e, at) && value_equal(json_object_get(e, "value"), value))
			return 1;
	}
	return 0;
}

const json_t *cl_refvalues_min(const struct cl_refvalues *rv, const char *platform,
			       const char *claim, int64_t at)
{
	const json_t *e = entry(rv, platform, claim);

	if (!e || !live(e, at))
		return NULL;
	return json_object_get(e, "min");
}

int cl_refvalues_meets_min(const struct cl_refvalues *rv, const char *platform, const char *claim,
			   const json_t *value, int64_t at)
{
	const json_t *min = cl_refvalues_min(rv, platform, claim, at);
	const char *k = NULL;
	json_t *m = NULL;

	if (!min)
		return CL_ERR_NOT_FOUND;
	if (json_is_number(min))
		return json_is_number(value) && json_number_value(value) >= json_number_value(min);
	if (!json_is_object(value))
		return 0;
	json_object_foreach ((json_t *)min, k, m) {
		const json_t *v = json_object_get(value, k);

		if (!json_is_number(v) || json_number_value(v) < json_number_value(m))
			return 0;
	}
	return 1;
}

json_t *cl_refvalues_values(const struct cl_refvalues *rv, const char *platform, const char *claim,
			    int64_t at)
{
	const json_t *vals = json_object_get(entry(rv, platform, claim), "values");
	json_t *res = json_array(), *e = NULL;
	size_t i = 0;

	if (!res)
		return NULL;
	json_array_foreach (vals, i, e) {
		if (live(e, at) && json_array_append(res, json_object_get(e, "value")) != 0) {
			json_decref(res);
			return NULL;
		}
	}
	return res;
}

const json_t *cl_refvalues_platform(const struct cl_refvalues *rv, const char *platform)
{
	if (!rv || !platform)
		return NULL;
	return json_object_get(rv->root, platform);
}
