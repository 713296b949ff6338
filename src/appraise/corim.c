/*
 * CoRIM reference values (draft-ietf-rats-corim). The bytes are attacker
 * controlled until the COSE signature has verified, so libcbor never sees
 * them before cl_cbor_load's streaming pre-pass has bounded nesting, item
 * counts and declared lengths (cbor_load would otherwise allocate what a
 * header claims), and refused indefinite lengths. The decoded tree is then
 * walked with exact type, key and length checks, and the reference triples
 * are rewritten into the JSON reference-value shape, so one structure and one
 * set of policies serve both sources.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cloister/appraise.h"
#include "cloister/cbor.h"
#include "cloister/cose.h"
#include "cloister/crypto.h"
#include "internal.h"

enum {
	TAG_EPOCH = 1,
	TAG_COSE_SIGN1 = 18,
	TAG_URI = 32,
	TAG_UUID = 37,
	TAG_OID = 111,
	TAG_CORIM = 501,
	TAG_COMID = 506,
	TAG_INT = 551,
	TAG_SVN = 552,
	TAG_MIN_SVN = 553,
	TAG_RAW = 560,
};

#define MAX_CLAIM_NAME 64
/* 9999-12-31T23:59:59Z: the last instant RFC 3339 can write. */
#define MAX_EPOCH INT64_C(253402300799)

static int cbor_parse(const uint8_t *p, size_t n, cbor_item_t **out)
{
	static const struct cl_cbor_caps caps = {"CoRIM", CL_MAX_CORIM_DEPTH, CL_MAX_CORIM_ITEMS,
						 0};

	return cl_cbor_load(p, n, &caps, out);
}

/* ----------------------------------------------------------- accessors */

/* The item inside tag `tag`, or NULL when it is not one (borrowed). */
static const cbor_item_t *untag(const cbor_item_t *it, uint64_t tag)
{
	cbor_item_t *in = NULL, *keep = NULL;

	if (!cbor_isa_tag(it) || cbor_tag_value(it) != tag)
		return NULL;
	in = cbor_tag_item(it);
	keep = in;
	/* cbor_tag_item took a reference; the tag still holds one. */
	cbor_decref(&in);
	return keep;
}

static int want_uint(const cbor_item_t *it, uint64_t max, uint64_t *v, const char *what)
{
	CL_ENSURE_MSG(cbor_isa_uint(it), CL_ERR_MALFORMED, "CoRIM: %s is not an unsigned integer",
		      what);
	*v = cbor_get_int(it);
	CL_ENSURE_MSG(*v <= max, CL_ERR_MALFORMED, "CoRIM: %s is out of range", what);
	return CL_OK;
}

static int want_int(const cbor_item_t *it, int64_t *v, const char *what)
{
	uint64_t u = 0;

	CL_ENSURE_MSG(cbor_isa_uint(it) || cbor_isa_negint(it), CL_ERR_MALFORMED,
		      "CoRIM: %s is not an integer", what);
	u = cbor_get_int(it);
	CL_ENSURE_MSG(u <= (uint64_t)INT64_MAX, CL_ERR_MALFORMED, "CoRIM: %s is out of range",
		      what);
	*v = cbor_isa_uint(it) ? (int64_t)u : -1 - (int64_t)u;
	return CL_OK;
}

static int want_bytes(const cbor_item_t *it, size_t min, size_t max, const uint8_t **p, size_t *n,
		      const char *what)
{
	CL_ENSURE_MSG(it && cbor_isa_bytestring(it) && cbor_bytestring_is_definite(it),
		      CL_ERR_MALFORMED, "CoRIM: %s is not a byte string", what);
	*n = cbor_bytestring_length(it);
	CL_ENSURE_MSG(*n >= min && *n <= max, CL_ERR_MALFORMED,
		      "CoRIM: %s has length %zu, expected %zu..%zu", what, *n, min, max);
	*p = cbor_bytestring_handle(it);
	return CL_OK;
}

static int want_text(const cbor_item_t *it, size_t max, const uint8_t **s, size_t *n,
		     const char *what)
{
	CL_ENSURE_MSG(it && cbor_isa_string(it) && cbor_string_is_definite(it), CL_ERR_MALFORMED,
		      "CoRIM: %s is not a text string", what);
	*n = cbor_string_length(it);
	CL_ENSURE_MSG(*n <= max, CL_ERR_MALFORMED, "CoRIM: %s is longer than %zu", what, max);
	*s = cbor_string_handle(it);
	return CL_OK;
}

static int want_array(const cbor_item_t *it, size_t min, size_t max, const char *what)
{
	size_t n = 0;

	CL_ENSURE_MSG(cbor_isa_array(it) && cbor_array_is_definite(it), CL_ERR_MALFORMED,
		      "CoRIM: %s is not an array", what);
	n = cbor_array_size(it);
	CL_ENSURE_MSG(n >= min && n <= max, CL_ERR_MALFORMED,
		      "CoRIM: %s has %zu entries, expected %zu..%zu", what, n, min, max);
	return CL_OK;
}

static int text_is(const cbor_item_t *it, const char *s)
{
	size_t n = strlen(s);

	return cbor_isa_string(it) && cbor_string_is_definite(it) && cbor_string_length(it) == n &&
	       memcmp(cbor_string_handle(it), s, n) == 0;
}

/*
 * A map with small unsigned keys: each key must be in `allowed`, appear
 * once, and every key in `required` must be there. vals[k] gets the value of
 * key k (borrowed) or NULL.
 */
static int map_fields(const cbor_item_t *m, const char *what, uint64_t allowed, uint64_t required,
		      const cbor_item_t *vals[64])
{
	struct cbor_pair *pr = NULL;
	uint64_t seen = 0;
	size_t n = 0;

	CL_ENSURE_MSG(cbor_isa_map(m) && cbor_map_is_definite(m), CL_ERR_MALFORMED,
		      "CoRIM: %s is not a map", what);
	n = cbor_map_size(m);
	CL_ENSURE_MSG(n <= 64, CL_ERR_MALFORMED, "CoRIM: %s has too many entries", what);
	pr = cbor_map_handle(m);
	memset(vals, 0, 64 * sizeof(vals[0]));
	for (size_t i = 0; i < n; i++) {
		uint64_t k = 0;

		CL_ENSURE_MSG(cbor_isa_uint(pr[i].key), CL_ERR_MALFORMED,
			      "CoRIM: %s has a key that is not an unsigned integer", what);
		k = cbor_get_int(pr[i].key);
		CL_ENSURE_MSG(k < 64 && (allowed >> k) & 1, CL_ERR_MALFORMED,
			      "CoRIM: %s has unknown key %llu", what, (unsigned long long)k);
		CL_ENSURE_MSG(!((seen >> k) & 1), CL_ERR_MALFORMED, "CoRIM: %s repeats key %llu",
			      what, (unsigned long long)k);
		seen |= UINT64_C(1) << k;
		vals[k] = pr[i].value;
	}
	CL_ENSURE_MSG((seen & required) == required, CL_ERR_MALFORMED,
		      "CoRIM: %s lacks a required entry", what);
	CL_ENSURE_MSG(n > 0, CL_ERR_MALFORMED, "CoRIM: %s is empty", what);
	return CL_OK;
}

#define BIT(k) (UINT64_C(1) << (k))

/* time = #6.1(int), seconds since the epoch. */
static int want_time(const cbor_item_t *it, int64_t *t, const char *what)
{
	const cbor_item_t *in = untag(it, TAG_EPOCH);

	CL_ENSURE_MSG(in, CL_ERR_MALFORMED, "CoRIM: %s is not an epoch time (tag 1)", what);
	CL_GUARD(want_int(in, t, what));
	CL_ENSURE_MSG(*t >= 0 && *t <= MAX_EPOCH, CL_ERR_MALFORMED, "CoRIM: %s is out of range",
		      what);
	return CL_OK;
}

/* -------------------------------------------------------------- output */

struct corim_ctx {
	json_t *doc; /* reference values in the JSON file's shape */
	int has_expires;
	char expires[21];
	size_t triples;
};

static int platform_obj(struct corim_ctx *c, const char *platform, json_t **plat)
{
	*plat = json_object_get(c->doc, platform);
	if (!*plat) {
		*plat = json_object();
		CL_ENSURE_MSG(*plat && json_object_set_new(c->doc, platform, *plat) == 0,
			      CL_ERR_NOMEM, "out of memory");
	}
	return CL_OK;
}

/* value: a new reference, consumed. */
static int add_value(struct corim_ctx *c, const char *platform, const char *claim, json_t *value)
{
	json_t *plat = NULL, *list = NULL, *e = NULL;
	int rc = CL_OK;

	CL_CHECK(value, CL_ERR_NOMEM, "out of memory");
	CL_TRY(platform_obj(c, platform, &plat));
	list = json_object_get(plat, claim);
	if (!list) {
		list = json_array();
		CL_CHECK(list && json_object_set_new(plat, claim, list) == 0, CL_ERR_NOMEM,
			 "out of memory");
	}
	CL_CHECK(json_is_array(list), CL_ERR_MALFORMED,
		 "CoRIM: %s.%s has both accepted values and a minimum", platform, claim);
	CL_CHECK(json_array_size(list) < CL_MAX_RV_VALUES, CL_ERR_MALFORMED,
		 "CoRIM: more than %d values for %s.%s", CL_MAX_RV_VALUES, platform, claim);
	e = json_pack("{s:O}", "value", value);
	CL_CHECK(e, CL_ERR_NOMEM, "out of memory");
	if (c->has_expires)
		CL_CHECK(json_object_set_new(e, "expires", json_string(c->expires)) == 0,
			 CL_ERR_NOMEM, "out of memory");
	CL_CHECK(json_array_append_new(list, e) == 0, CL_ERR_NOMEM, "out of memory");
	e = NULL;
out:
	json_decref(e);
	json_decref(value);
	return rc;
}

static int add_min(struct corim_ctx *c, const char *platform, const char *claim, int64_t min)
{
	json_t *plat = NULL, *e = NULL;

	CL_GUARD(platform_obj(c, platform, &plat));
	CL_ENSURE_MSG(!json_object_get(plat, claim), CL_ERR_MALFORMED,
		      "CoRIM: %s.%s is given a minimum twice, or beside accepted values", platform,
		      claim);
	e = json_pack("{s:I}", "min", (json_int_t)min);
	CL_ENSURE_MSG(e, CL_ERR_NOMEM, "out of memory");
	if (c->has_expires && json_object_set_new(e, "expires", json_string(c->expires)) != 0) {
		json_decref(e);
		CL_BAIL(CL_ERR_NOMEM, "out of memory");
	}
	CL_ENSURE_MSG(json_object_set_new(plat, claim, e) == 0, CL_ERR_NOMEM, "out of memory");
	return CL_OK;
}

/* ------------------------------------------------------------- CoMID */

/* Which verifier platform an environment's class names (docs/policy.md). */
static const struct {
	const char *vendor, *model, *platform, *svn_claim;
} platforms[] = {
	{"AMD", "SEV-SNP", "snp", "guest_svn"},
	{"Intel", "TDX", "tdx", NULL},
	{"Intel", "SGX", "sgx", "isv_svn"},
	{"cloister", "devtee", "devtee", NULL},
};

#define N_PLATFORMS (sizeof(platforms) / sizeof(platforms[0]))

/* *idx: index into platforms, or -1 when the environment is not ours to judge. */
static int parse_environment(const cbor_item_t *env, int *idx)
{
	const cbor_item_t *e[64], *cl[64], *id = NULL;
	const uint8_t *p = NULL;
	size_t n = 0;
	uint64_t u = 0;
	int64_t i64 = 0;

	*idx = -1;
	CL_GUARD(map_fields(env, "environment-map", BIT(0) | BIT(1) | BIT(2), 0, e));
	if (e[1] || e[2]) {
		/* Narrower than a class: cloister cannot tell instances or groups apart. */
		cl_log_debug("CoRIM: skipping a triple bound to an instance or group");
		return CL_OK;
	}
	if (!e[0])
		return CL_OK;
	CL_GUARD(map_fields(e[0], "class-map", BIT(0) | BIT(1) | BIT(2) | BIT(3) | BIT(4), 0, cl));
	if (cl[0]) {
		if ((id = untag(cl[0], TAG_OID)))
			CL_GUARD(want_bytes(id, 1, 64, &p, &n, "class-id"));
		else if ((id = untag(cl[0], TAG_UUID)))
			CL_GUARD(want_bytes(id, 16, 16, &p, &n, "class-id"));
		else if ((id = untag(cl[0], TAG_INT)))
			CL_GUARD(want_int(id, &i64, "class-id"));
		else
			CL_BAIL(CL_ERR_MALFORMED,
				"CoRIM: class-id is not a tagged OID, UUID or integer");
	}
	if (cl[1])
		CL_GUARD(want_text(cl[1], CL_MAX_CORIM_TEXT, &p, &n, "class vendor"));
	if (cl[2])
		CL_GUARD(want_text(cl[2], CL_MAX_CORIM_TEXT, &p, &n, "class model"));
	if (cl[3])
		CL_GUARD(want_uint(cl[3], UINT64_MAX, &u, "class layer"));
	if (cl[4])
		CL_GUARD(want_uint(cl[4], UINT64_MAX, &u, "class index"));
	if (!cl[1] || !cl[2])
		return CL_OK;
	for (size_t k = 0; k < N_PLATFORMS; k++)
		if (text_is(cl[1], platforms[k].vendor) && text_is(cl[2], platforms[k].model))
			*idx = (int)k;
	if (*idx < 0)
		cl_log_debug(
			"CoRIM: skipping a triple for an environment cloister does not verify");
	return CL_OK;
}

/* A text mkey names the claim; it must look like one. */
static int claim_name(const cbor_item_t *mkey, char out[MAX_CLAIM_NAME + 1], int *usable)
{
	const uint8_t *s = NULL;
	size_t n = 0;
	uint64_t u = 0;

	*usable = 1;
	out[0] = 0;
	if (!mkey)
		return CL_OK;
	if (cbor_isa_string(mkey)) {
		CL_GUARD(want_text(mkey, MAX_CLAIM_NAME, &s, &n, "mkey"));
		CL_ENSURE_MSG(n > 0, CL_ERR_MALFORMED, "CoRIM: empty mkey");
		for (size_t i = 0; i < n; i++)
			CL_ENSURE_MSG((s[i] >= 'a' && s[i] <= 'z') ||
					      (s[i] >= '0' && s[i] <= '9') || s[i] == '_',
				      CL_ERR_MALFORMED,
				      "CoRIM: mkey is not a claim name ([a-z0-9_])");
		memcpy(out, s, n);
		out[n] = 0;
		return CL_OK;
	}
	*usable = 0;
	if (cbor_isa_uint(mkey))
		return want_uint(mkey, UINT64_MAX, &u, "mkey");
	if (untag(mkey, TAG_OID))
		return want_bytes(untag(mkey, TAG_OID), 1, 64, &s, &n, "mkey");
	if (untag(mkey, TAG_UUID))
		return want_bytes(untag(mkey, TAG_UUID), 16, 16, &s, &n, "mkey");
	CL_BAIL(CL_ERR_MALFORMED, "CoRIM: mkey is not a text, unsigned integer, OID or UUID");
}

static int digest_len(int64_t alg, size_t *len)
{
	/* IANA Named Information Hash Algorithm Registry. */
	switch (alg) {
	case 1: /* sha-256 */
		*len = 32;
		return CL_OK;
	case 7: /* sha-384 */
		*len = 48;
		return CL_OK;
	case 8: /* sha-512 */
		*len = 64;
		return CL_OK;
	default:
		CL_BAIL(CL_ERR_UNSUPPORTED, "CoRIM: digest algorithm %lld is not accepted",
			(long long)alg);
	}
}

/* Lowercase hex of a byte string, as a new JSON string (NULL when out of memory). */
static json_t *hex_value(const cbor_item_t *b)
{
	char *h = cl_hex_strdup(cbor_bytestring_handle(b), cbor_bytestring_length(b));
	json_t *j = h ? json_string(h) : NULL;

	free(h);
	return j;
}

static int parse_measurement(struct corim_ctx *c, int plat, const cbor_item_t *mm)
{
	const cbor_item_t *m[64], *v[64], *in = NULL;
	const char *pname = plat >= 0 ? platforms[plat].platform : NULL;
	char named[MAX_CLAIM_NAME + 1];
	const char *claim = NULL;
	const uint8_t *p = NULL;
	size_t n = 0, dl = 0;
	uint64_t svn = 0;
	int usable = 0;

	CL_GUARD(map_fields(mm, "measurement-map", BIT(0) | BIT(1), BIT(1), m));
	CL_GUARD(claim_name(m[0], named, &usable));
	CL_GUARD(map_fields(m[1], "measurement-values-map",
			    BIT(0) | BIT(1) | BIT(2) | BIT(3) | BIT(4) | BIT(5) | BIT(6) | BIT(7) |
				    BIT(8) | BIT(9) | BIT(10) | BIT(11),
			    0, v));
	/* Type checks first, so a malformed CoRIM fails whatever it describes. */
	if (v[0])
		CL_ENSURE_MSG(cbor_isa_map(v[0]), CL_ERR_MALFORMED, "CoRIM: version is not a map");
	if (v[1]) {
		in = untag(v[1], TAG_SVN);
		if (!in)
			in = untag(v[1], TAG_MIN_SVN);
		CL_ENSURE_MSG(in, CL_ERR_MALFORMED, "CoRIM: svn is not tagged 552 or 553");
		CL_GUARD(want_uint(in, (uint64_t)INT64_MAX, &svn, "svn"));
	}
	if (v[2]) {
		CL_GUARD(want_array(v[2], 1, CL_MAX_CORIM_DIGESTS, "digests"));
		for (size_t i = 0; i < cbor_array_size(v[2]); i++) {
			const cbor_item_t *he = cbor_array_handle(v[2])[i];
			int64_t alg = 0;

			CL_GUARD(want_array(he, 2, 2, "hash-entry"));
			CL_GUARD(want_int(cbor_array_handle(he)[0], &alg, "hash-alg-id"));
			CL_GUARD(digest_len(alg, &dl));
			CL_GUARD(want_bytes(cbor_array_handle(he)[1], dl, dl, &p, &n, "digest"));
		}
	}
	if (v[3])
		CL_ENSURE_MSG(cbor_isa_map(v[3]), CL_ERR_MALFORMED, "CoRIM: flags is not a map");
	if (v[4]) {
		CL_ENSURE_MSG(untag(v[4], TAG_RAW), CL_ERR_MALFORMED,
			      "CoRIM: raw-value is not tagged 560");
		CL_GUARD(
			want_bytes(untag(v[4], TAG_RAW), 1, CL_MAX_CORIM_RAW, &p, &n, "raw-value"));
	}
	CL_ENSURE_MSG(!v[5], CL_ERR_UNSUPPORTED, "CoRIM: raw-value-mask is not supported");
	if (v[8])
		CL_GUARD(want_text(v[8], CL_MAX_CORIM_TEXT, &p, &n, "serial-number"));
	if (v[11])
		CL_GUARD(want_text(v[11], CL_MAX_CORIM_TEXT, &p, &n, "name"));
	for (int k = 6; k <= 10; k++)
		if (v[k] && k != 8)
			CL_ENSURE_MSG(cbor_isa_bytestring(v[k]) || cbor_isa_tag(v[k]),
				      CL_ERR_MALFORMED,
				      "CoRIM: measurement value %d has the wrong type", k);

	if (!pname || !usable)
		return CL_OK;
	if (v[3] || v[6] || v[7] || v[8] || v[9] || v[10]) {
		/* Constraints cloister does not compare: dropping the measurement never widens. */
		cl_log_debug("CoRIM: skipping a measurement with flags or instance attributes");
		return CL_OK;
	}
	claim = named[0] ? named : "measurement";
	if (v[2])
		for (size_t i = 0; i < cbor_array_size(v[2]); i++)
			CL_GUARD(add_value(
				c, pname, claim,
				hex_value(cbor_array_handle(cbor_array_handle(v[2])[i])[1])));
	if (v[4])
		CL_GUARD(add_value(c, pname, claim, hex_value(untag(v[4], TAG_RAW))));
	if (v[1]) {
		const char *sc = named[0] ? named : platforms[plat].svn_claim;

		if (!sc) {
			cl_log_debug("CoRIM: no svn claim for %s; svn skipped", pname);
			return CL_OK;
		}
		if (untag(v[1], TAG_SVN))
			CL_GUARD(add_value(c, pname, sc, json_integer((json_int_t)svn)));
		else
			CL_GUARD(add_min(c, pname, sc, (int64_t)svn));
	}
	return CL_OK;
}

static int parse_reference_triple(struct corim_ctx *c, const cbor_item_t *t)
{
	const cbor_item_t *ms = NULL;
	int plat = -1;

	CL_GUARD(want_array(t, 2, 2, "reference-triple-record"));
	CL_GUARD(parse_environment(cbor_array_handle(t)[0], &plat));
	ms = cbor_array_handle(t)[1];
	CL_GUARD(want_array(ms, 1, CL_MAX_CORIM_MEASUREMENTS, "measurements"));
	for (size_t i = 0; i < cbor_array_size(ms); i++)
		CL_GUARD(parse_measurement(c, plat, cbor_array_handle(ms)[i]));
	return CL_OK;
}

static int parse_comid(struct corim_ctx *c, const cbor_item_t *comid)
{
	const cbor_item_t *f[64], *id[64], *tr[64], *refs = NULL;
	const uint8_t *p = NULL;
	size_t n = 0;
	uint64_t u = 0;

	CL_GUARD(map_fields(comid, "concise-mid-tag", BIT(0) | BIT(1) | BIT(2) | BIT(3) | BIT(4),
			    BIT(1) | BIT(4), f));
	if (f[0])
		CL_GUARD(want_text(f[0], CL_MAX_CORIM_TEXT, &p, &n, "language"));
	CL_GUARD(map_fields(f[1], "tag-identity", BIT(0) | BIT(1), BIT(0), id));
	if (cbor_isa_bytestring(id[0]))
		CL_GUARD(want_bytes(id[0], 16, 16, &p, &n, "tag-id"));
	else
		CL_GUARD(want_text(id[0], CL_MAX_CORIM_TEXT, &p, &n, "tag-id"));
	if (id[1])
		CL_GUARD(want_uint(id[1], UINT64_MAX, &u, "tag-version"));
	if (f[2])
		CL_GUARD(want_array(f[2], 1, CL_MAX_CORIM_TAGS, "entities"));
	if (f[3])
		CL_GUARD(want_array(f[3], 1, CL_MAX_CORIM_TAGS, "linked-tags"));
	/* Other triple kinds (endorsements, keys...) are not reference values. */
	CL_GUARD(map_fields(f[4], "triples-map", ~UINT64_C(0), 0, tr));
	refs = tr[0];
	if (!refs)
		return CL_OK;
	CL_GUARD(want_array(refs, 1, CL_MAX_CORIM_TRIPLES, "reference-triples"));
	CL_ENSURE_MSG(cbor_array_size(refs) <= CL_MAX_CORIM_TRIPLES - c->triples, CL_ERR_MALFORMED,
		      "CoRIM: more than %d reference triples", CL_MAX_CORIM_TRIPLES);
	c->triples += cbor_array_size(refs);
	for (size_t i = 0; i < cbor_array_size(refs); i++)
		CL_GUARD(parse_reference_triple(c, cbor_array_handle(refs)[i]));
	return CL_OK;
}

/* ----------------------------------------------------------- corim-map */

static int check_profile(const cbor_item_t *it)
{
	const cbor_item_t *in = NULL;
	const uint8_t *p = NULL;
	size_t n = 0;

	if (cbor_isa_string(it))
		return want_text(it, CL_MAX_CORIM_TEXT, &p, &n, "profile");
	if ((in = untag(it, TAG_URI)))
		return want_text(in, CL_MAX_CORIM_TEXT, &p, &n, "profile");
	if ((in = untag(it, TAG_OID)))
		return want_bytes(in, 1, 64, &p, &n, "profile");
	CL_BAIL(CL_ERR_MALFORMED, "CoRIM: profile is not a URI or OID");
}

static int parse_validity(struct corim_ctx *c, const cbor_item_t *vm, int64_t at)
{
	const cbor_item_t *v[64];
	char when[21];
	int64_t nb = 0, na = 0;

	CL_GUARD(map_fields(vm, "rim-validity", BIT(0) | BIT(1), BIT(1), v));
	CL_GUARD(want_time(v[1], &na, "not-after"));
	if (v[0]) {
		CL_GUARD(want_time(v[0], &nb, "not-before"));
		cl_time_format(nb, when);
		CL_ENSURE_MSG(at >= nb, CL_ERR_EXPIRED, "CoRIM is not valid before %s", when);
	}
	cl_time_format(na, when);
	CL_ENSURE_MSG(at < na, CL_ERR_EXPIRED, "CoRIM expired at %s", when);
	c->has_expires = 1;
	memcpy(c->expires, when, sizeof(c->expires));
	return CL_OK;
}

static int parse_corim_map(struct corim_ctx *c, const cbor_item_t *m, int64_t at)
{
	const cbor_item_t *f[64], *tags = NULL;
	const uint8_t *p = NULL;
	size_t n = 0;

	CL_GUARD(map_fields(m, "corim-map", BIT(0) | BIT(1) | BIT(2) | BIT(3) | BIT(4) | BIT(5),
			    BIT(0) | BIT(1), f));
	if (cbor_isa_bytestring(f[0]))
		CL_GUARD(want_bytes(f[0], 16, 16, &p, &n, "corim id"));
	else
		CL_GUARD(want_text(f[0], CL_MAX_CORIM_TEXT, &p, &n, "corim id"));
	if (f[2])
		CL_GUARD(want_array(f[2], 1, CL_MAX_CORIM_TAGS, "dependent-rims"));
	if (f[3]) {
		if (cbor_isa_array(f[3])) {
			CL_GUARD(want_array(f[3], 1, 8, "profile"));
			for (size_t i = 0; i < cbor_array_size(f[3]); i++)
				CL_GUARD(check_profile(cbor_array_handle(f[3])[i]));
		} else {
			CL_GUARD(check_profile(f[3]));
		}
	}
	if (f[4])
		CL_GUARD(parse_validity(c, f[4], at));
	if (f[5])
		CL_GUARD(want_array(f[5], 1, CL_MAX_CORIM_TAGS, "entities"));
	tags = f[1];
	CL_GUARD(want_array(tags, 1, CL_MAX_CORIM_TAGS, "tags"));
	for (size_t i = 0; i < cbor_array_size(tags); i++) {
		const cbor_item_t *t = cbor_array_handle(tags)[i], *in = NULL;
		cbor_item_t *comid = NULL;
		int rc = CL_OK;

		CL_ENSURE_MSG(cbor_isa_tag(t), CL_ERR_MALFORMED, "CoRIM: tags[%zu] is not tagged",
			      i);
		in = untag(t, cbor_tag_value(t));
		CL_GUARD(want_bytes(in, 1, CL_MAX_CORIM, &p, &n, "tag"));
		if (cbor_tag_value(t) != TAG_COMID) {
			/* CoSWID, CoTL...: nothing cloister appraises. */
			cl_log_debug("CoRIM: skipping a tag of type %llu",
				     (unsigned long long)cbor_tag_value(t));
			continue;
		}
		CL_GUARD(cbor_parse(p, n, &comid));
		rc = parse_comid(c, comid);
		cbor_decref(&comid);
		CL_GUARD(rc);
	}
	return CL_OK;
}

/* --------------------------------------------------------- COSE_Sign1 */

static int load_key(const uint8_t *pem, size_t n, EVP_PKEY **out)
{
	BIO *b = NULL;
	X509 *x = NULL;

	*out = NULL;
	CL_ENSURE_MSG(n > 0 && n <= CL_MAX_CORIM_KEY, CL_ERR_ARG, "CoRIM key: empty or too large");
	b = BIO_new_mem_buf(pem, (int)n);
	CL_ENSURE_MSG(b, CL_ERR_NOMEM, "out of memory");
	*out = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	BIO_free(b);
	if (!*out && cl_x509_from_any(pem, n, &x) == CL_OK) {
		*out = X509_get_pubkey(x);
		X509_free(x);
	}
	ERR_clear_error();
	CL_ENSURE_MSG(*out, CL_ERR_ARG, "CoRIM key: not a PEM public key or certificate");
	if (EVP_PKEY_get_base_id(*out) != EVP_PKEY_EC) {
		EVP_PKEY_free(*out);
		*out = NULL;
		CL_BAIL(CL_ERR_ARG, "CoRIM key: not an EC key");
	}
	return CL_OK;
}

/*
 * The protected header names a CoRIM as its content type (3). The COSE
 * module has checked its shape, labels, alg and the absence of crit.
 */
static int check_content_type(const uint8_t *p, size_t n)
{
	cbor_item_t *h = NULL;
	struct cbor_pair *pr = NULL;
	int have_ct = 0, rc = CL_OK;

	CL_TRY(cbor_parse(p, n, &h));
	CL_CHECK(cbor_isa_map(h) && cbor_map_is_definite(h), CL_ERR_MALFORMED,
		 "CoRIM: COSE protected header is not a map");
	pr = cbor_map_handle(h);
	for (size_t i = 0; i < cbor_map_size(h); i++) {
		int64_t label = 0;

		if (cbor_isa_string(pr[i].key))
			continue;
		CL_TRY(want_int(pr[i].key, &label, "COSE label"));
		if (label != 3)
			continue; /* alg, kid, corim-meta, CWT claims...: not ours to read */
		CL_CHECK(text_is(pr[i].value, "application/rim+cbor") ||
				 text_is(pr[i].value, "application/corim-unsigned+cbor"),
			 CL_ERR_MALFORMED, "CoRIM: COSE content type is not a CoRIM");
		have_ct = 1;
	}
	CL_CHECK(have_ct, CL_ERR_MALFORMED, "CoRIM: COSE protected header has no content type");
out:
	if (h)
		cbor_decref(&h);
	return rc;
}

/* Check a COSE_Sign1 under the key; cs keeps the message (and its payload) for the caller. */
static int verify_sign1(cbor_item_t *item, const struct cl_corim_opts *o, struct cl_cose_sign1 *cs)
{
	EVP_PKEY *key = NULL;
	int rc = CL_OK;

	/* What is signed must say it is a CoRIM before anything else is looked at. */
	if (cbor_isa_array(item) && cbor_array_is_definite(item) && cbor_array_size(item) == 4 &&
	    cbor_isa_bytestring(cbor_array_handle(item)[0]) &&
	    cbor_bytestring_is_definite(cbor_array_handle(item)[0]))
		CL_TRY(check_content_type(cbor_bytestring_handle(cbor_array_handle(item)[0]),
					  cbor_bytestring_length(cbor_array_handle(item)[0])));
	CL_TRY(cl_cose_sign1_from_item(item, 1, cs));
	CL_CHECK(cs->payload_len > 0 && cs->payload_len <= CL_MAX_CORIM, CL_ERR_MALFORMED,
		 "CoRIM: COSE payload is empty or larger than %zu bytes", CL_MAX_CORIM);
	CL_CHECK(o && o->key, CL_ERR_SIGNATURE, "CoRIM is signed: a key to verify it is needed");
	CL_TRY(load_key(o->key, o->key_len, &key));
	CL_CHECK(cl_cose_sign1_verify(cs, key) == CL_OK, CL_ERR_SIGNATURE,
		 "CoRIM signature does not verify under the given key");
out:
	EVP_PKEY_free(key);
	return rc;
}

/* ---------------------------------------------------------------- API */

int cl_corim_detect(const uint8_t *p, size_t n)
{
	if (!p)
		return 0;
	if (n >= 3 && p[0] == 0xd9 && p[1] == 0x01 && p[2] == 0xf5)
		return 1;
	return n >= 1 && p[0] == 0xd2;
}

static int parse_unsigned(struct corim_ctx *c, const cbor_item_t *root, int64_t at)
{
	const cbor_item_t *m = untag(root, TAG_CORIM);

	CL_ENSURE_MSG(m, CL_ERR_MALFORMED, "CoRIM: expected an unsigned CoRIM (tag 501)");
	return parse_corim_map(c, m, at);
}

int cl_corim_parse(const uint8_t *p, size_t n, const struct cl_corim_opts *o,
		   struct cl_refvalues **out)
{
	struct corim_ctx c = {0};
	cbor_item_t *root = NULL, *inner = NULL;
	const cbor_item_t *s = NULL;
	struct cl_cose_sign1 cs = {0};
	int64_t at = o && o->at ? o->at : (int64_t)time(NULL);
	int rc = CL_OK;

	*out = NULL;
	CL_CHECK(p && n > 0, CL_ERR_MALFORMED, "CoRIM: empty input");
	CL_CHECK(n <= CL_MAX_CORIM, CL_ERR_MALFORMED, "CoRIM larger than %zu bytes", CL_MAX_CORIM);
	c.doc = json_object();
	CL_CHECK(c.doc, CL_ERR_NOMEM, "out of memory");
	if (p[0] == 0xd2) {
		/*
		 * libcbor 0.8 refuses the one-byte heads of tags 6..20 (unassigned
		 * when RFC 7049 was written), and 18 is COSE_Sign1's: read the tag
		 * head here and hand the array that follows to libcbor.
		 */
		CL_TRY(cbor_parse(p + 1, n - 1, &root));
		s = root;
	} else {
		CL_TRY(cbor_parse(p, n, &root));
		s = untag(root, TAG_COSE_SIGN1);
	}
	if (s) {
		CL_TRY(verify_sign1((cbor_item_t *)s, o, &cs));
		CL_TRY(cbor_parse(cs.payload, cs.payload_len, &inner));
		CL_TRY(parse_unsigned(&c, inner, at));
	} else {
		CL_CHECK(untag(root, TAG_CORIM), CL_ERR_MALFORMED,
			 "not a CoRIM: expected tag 501 or a COSE_Sign1 (tag 18)");
		CL_CHECK(!o || !o->key, CL_ERR_SIGNATURE,
			 "CoRIM is not signed, but a key to verify it was given");
		CL_TRY(parse_unsigned(&c, root, at));
	}
	CL_CHECK(json_object_size(c.doc) > 0, CL_ERR_NOT_FOUND,
		 "CoRIM holds no reference values for a platform cloister verifies");
	CL_TRY(cl_refvalues_from_json(c.doc, out));
out:
	cl_cose_sign1_free(&cs);
	if (inner)
		cbor_decref(&inner);
	if (root)
		cbor_decref(&root);
	json_decref(c.doc);
	return rc;
}

int cl_refvalues_load_any(const char *path, const struct cl_corim_opts *o,
			  struct cl_refvalues **out)
{
	struct cl_buf b = {0};
	int rc = CL_OK;

	*out = NULL;
	CL_TRY(cl_read_file(path, CL_MAX_REFVALUES_FILE, &b));
	if (cl_corim_detect(b.data, b.len)) {
		CL_TRY(cl_corim_parse(b.data, b.len, o, out));
	} else {
		CL_CHECK(!o || !o->key, CL_ERR_ARG,
			 "a CoRIM key was given, but the reference values are not a CoRIM");
		CL_TRY(cl_refvalues_parse((const char *)b.data, b.len, out));
	}
out:
	cl_buf_free(&b);
	return rc;
}
