/*
 * Appraisal policies in sandboxed Lua 5.4.
 *
 * Each thread keeps one Lua state. A policy is compiled once per thread, in
 * its own environment table, and cached under the SHA-256 of its text, so a
 * verification pays only for the call to appraise(). The sandbox has no io,
 * os, package, debug or coroutine library, no load/dofile/loadfile, no
 * string.dump, and text chunks only; every run is bounded by an instruction
 * count hook and an allocator that refuses to grow the state past a limit.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "cloister/appraise.h"
#include "cloister/crypto.h"
#include "default_policy.lua.h"
#include "internal.h"

#define HOOK_EVERY	    1000
#define MAX_CACHED_POLICIES 32
#define MAX_JSON_DEPTH	    16
#define MAX_REASONS	    32
#define MAX_REASON_LEN	    256
/* Lua patterns backtrack: cost grows as subject^(quantifiers+1). */
#define PATTERN_BUDGET 100000000.0

struct cl_policy {
	char *text;
	size_t len;
	char id[CL_MAX_POLICY_ID];
	char key[65]; /* hex SHA-256 of text: the per-thread cache key */
};

/* What the rv_* helpers see while appraise() runs. */
struct eval {
	const json_t *claims;
	const struct cl_refvalues *rv;
	const char *platform;
	int64_t at;
};

struct lstate {
	lua_State *L;
	size_t used;
	long insns;
	int ncached;
	const struct eval *cur;
};

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static const char CACHE_KEY[] = "cloister.policies";

/* ---------------------------------------------------------------- limits */

static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct lstate *s = ud;
	void *n = NULL;

	if (!ptr)
		osize = 0; /* osize then names the object type, not a size */
	if (nsize == 0) {
		free(ptr);
		s->used -= osize;
		return NULL;
	}
	if (nsize > osize && s->used + (nsize - osize) > CL_POLICY_MEM_LIMIT)
		return NULL;
	n = realloc(ptr, nsize);
	if (!n)
		return NULL;
	s->used = s->used - osize + nsize;
	return n;
}

static struct lstate *state_of(lua_State *L)
{
	void *ud = NULL;

	(void)lua_getallocf(L, &ud);
	return ud;
}

static void l_hook(lua_State *L, lua_Debug *ar)
{
	struct lstate *s = state_of(L);

	(void)ar;
	s->insns += HOOK_EVERY;
	if (s->insns > CL_POLICY_INSN_LIMIT)
		luaL_error(L, "instruction limit exceeded (%d)", (int)CL_POLICY_INSN_LIMIT);
}

/* ------------------------------------------------------ JSON <-> Lua */

static void push_json(lua_State *L, const json_t *v, int depth)
{
	const char *k = NULL;
	json_t *x = NULL;
	size_t i = 0;

	luaL_checkstack(L, 4, "claims nested too deeply");
	if (!v || depth > MAX_JSON_DEPTH) {
		lua_pushnil(L);
		return;
	}
	switch (json_typeof(v)) {
	case JSON_STRING:
		lua_pushlstring(L, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		lua_pushinteger(L, (lua_Integer)json_integer_value(v));
		break;
	case JSON_REAL:
		lua_pushnumber(L, json_real_value(v));
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		lua_pushboolean(L, json_is_true(v));
		break;
	case JSON_OBJECT:
		lua_createtable(L, 0, (int)json_object_size(v));
		json_object_foreach ((json_t *)v, k, x) {
			push_json(L, x, depth + 1);
			lua_setfield(L, -2, k);
		}
		break;
	case JSON_ARRAY:
		lua_createtable(L, (int)json_array_size(v), 0);
		json_array_foreach (v, i, x) {
			push_json(L, x, depth + 1);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		break;
	case JSON_NULL:
	default:
		lua_pushnil(L);
		break;
	}
}

/* A Lua argument as a JSON value: scalars, or a table of named numbers. */
static json_t *lua_to_json(lua_State *L, int idx)
{
	json_t *o = NULL;

	switch (lua_type(L, idx)) {
	case LUA_TSTRING: {
		size_t n = 0;
		const char *s = lua_tolstring(L, idx, &n);

		return json_stringn(s, n);
	}
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			return json_integer((json_int_t)lua_tointeger(L, idx));
		return json_real(lua_tonumber(L, idx));
	case LUA_TBOOLEAN:
		return json_boolean(lua_toboolean(L, idx));
	case LUA_TTABLE:
		o = json_object();
		idx = lua_absindex(L, idx);
		lua_pushnil(L);
		while (o && lua_next(L, idx)) {
			if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TNUMBER)
				json_object_set_new(
					o, lua_tostring(L, -2),
					lua_isinteger(L, -1)
						? json_integer((json_int_t)lua_tointeger(L, -1))
						: json_real(lua_tonumber(L, -1)));
			lua_pop(L, 1);
		}
		return o;
	default:
		return NULL;
	}
}

/* --------------------------------------------------------- Lua helpers */

static const struct eval *cur_eval(lua_State *L)
{
	const struct eval *e = state_of(L)->cur;

	if (!e)
		luaL_error(L, "reference values are only available inside appraise()");
	return e;
}

/* The value to test: the argument when given, else the verified claim. */
static json_t *arg_value(lua_State *L, const struct eval *e, const char *claim)
{
	if (lua_gettop(L) >= 2 && !lua_isnil(L, 2))
		return lua_to_json(L, 2);
	return json_incref(json_object_get(e->claims, claim));
}

static int l_rv_has(lua_State *L)
{
	const struct eval *e = cur_eval(L);

	lua_pushboolean(L, cl_refvalues_has(e->rv, e->platform, luaL_checkstring(L, 1)));
	return 1;
}

static int l_rv_contains(lua_State *L)
{
	const struct eval *e = cur_eval(L);
	const char *claim = luaL_checkstring(L, 1);
	json_t *v = arg_value(L, e, claim);

	lua_pushboolean(L, cl_refvalues_match(e->rv, e->platform, claim, v, e->at) == 1);
	json_decref(v);
	return 1;
}

static int l_rv_min(lua_State *L)
{
	const struct eval *e = cur_eval(L);

	push_json(L, cl_refvalues_min(e->rv, e->platform, luaL_checkstring(L, 1), e->at), 0);
	return 1;
}

static int l_rv_meets_min(lua_State *L)
{
	const struct eval *e = cur_eval(L);
	const char *claim = luaL_checkstring(L, 1);
	json_t *v = arg_value(L, e, claim);
	int r = cl_refvalues_meets_min(e->rv, e->platform, claim, v, e->at);

	json_decref(v);
	if (r == CL_ERR_NOT_FOUND)
		lua_pushnil(L);
	else
		lua_pushboolean(L, r == 1);
	return 1;
}

static int l_rv_values(lua_State *L)
{
	const struct eval *e = cur_eval(L);
	json_t *a = cl_refvalues_values(e->rv, e->platform, luaL_checkstring(L, 1), e->at);

	if (!a)
		return luaL_error(L, "out of memory");
	push_json(L, a, 0);
	json_decref(a);
	return 1;
}

/* {claim = min} for every minimum in force for this platform. */
static int l_rv_minimums(lua_State *L)
{
	const struct eval *e = cur_eval(L);
	const json_t *plat = cl_refvalues_platform(e->rv, e->platform);
	const char *k = NULL;
	json_t *x = NULL;

	lua_newtable(L);
	json_object_foreach ((json_t *)plat, k, x) {
		const json_t *m = cl_refvalues_min(e->rv, e->platform, k, e->at);

		if (m) {
			push_json(L, m, 0);
			lua_setfield(L, -2, k);
		}
	}
	return 1;
}

/* Pattern functions: refuse subjects whose backtracking could run unbounded. */
static int pattern_guard(lua_State *L)
{
	size_t n = 0, plen = 0;
	const char *pat = NULL;
	double cost = 1.0;
	int q = 0;

	(void)luaL_checklstring(L, 1, &n);
	pat = luaL_checklstring(L, 2, &plen);
	for (size_t i = 0; i < plen; i++) {
		if (pat[i] == '%')
			i++;
		else if (pat[i] == '*' || pat[i] == '+' || pat[i] == '-')
			q++;
	}
	for (int i = 0; i <= q && cost <= PATTERN_BUDGET; i++)
		cost *= (double)n + 1.0;
	if (cost > PATTERN_BUDGET)
		return luaL_error(
			L,
			"pattern too costly for the policy sandbox (%d quantifiers over %d bytes)",
			q, (int)n);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
	return lua_gettop(L);
}

static void wrap_patterns(lua_State *L, int strtab)
{
	static const char *const fns[] = {"find", "match", "gmatch", "gsub"};

	strtab = lua_absindex(L, strtab);
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		lua_getfield(L, strtab, fns[i]);
		lua_pushcclosure(L, pattern_guard, 1);
		lua_setfield(L, strtab, fns[i]);
	}
	lua_pushnil(L);
	lua_setfield(L, strtab, "dump");
}

/* ------------------------------------------------------------ the state */

static void tls_free(void *p)
{
	struct lstate *s = p;

	if (!s)
		return;
	if (s->L)
		lua_close(s->L);
	free(s);
}

static void tls_init(void)
{
	(void)pthread_key_create(&tls_key, tls_free);
}

void cl_policy_thread_release(void)
{
	(void)pthread_once(&tls_once, tls_init);
	tls_free(pthread_getspecific(tls_key));
	(void)pthread_setspecific(tls_key, NULL);
}

static const char *const safe_base[] = {
	"assert",   "error",  "ipairs",	      "next",	      "pairs",	  "pcall",
	"rawequal", "rawget", "rawlen",	      "select",	      "tonumber", "tostring",
	"type",	    "xpcall", "setmetatable", "getmetatable", "_VERSION", NULL,
};
static const char *const safe_libs[] = {"string", "table", "math", "utf8", NULL};

static int open_sandbox(lua_State *L)
{
	luaL_requiref(L, "_G", luaopen_base, 1);
	luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
	luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
	luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
	luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
	wrap_patterns(L, -4);
	lua_settop(L, 0);
	/* Hide the shared string metatable (and so the real string table). */
	lua_pushliteral(L, "");
	lua_getmetatable(L, -1);
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_settop(L, 0);
	lua_newtable(L);
	lua_setfield(L, LUA_REGISTRYINDEX, CACHE_KEY);
	return 0;
}

static struct lstate *get_state(void)
{
	struct lstate *s = NULL;

	(void)pthread_once(&tls_once, tls_init);
	s = pthread_getspecific(tls_key);
	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->L = lua_newstate(l_alloc, s);
	if (!s->L) {
		free(s);
		return NULL;
	}
	lua_pushcfunction(s->L, open_sandbox);
	if (lua_pcall(s->L, 0, 0, 0) != LUA_OK || pthread_setspecific(tls_key, s) != 0) {
		tls_free(s);
		return NULL;
	}
	return s;
}

/* A fresh environment: copies of the safe functions and library tables. */
static void push_env(lua_State *L)
{
	static const luaL_Reg helpers[] = {
		{"rv_has", l_rv_has},
		{"rv_contains", l_rv_contains},
		{"rv_min", l_rv_min},
		{"rv_meets_min", l_rv_meets_min},
		{"rv_values", l_rv_values},
		{"rv_minimums", l_rv_minimums},
		{NULL, NULL},
	};

	lua_newtable(L);
	lua_pushglobaltable(L);
	for (size_t i = 0; safe_base[i]; i++) {
		lua_getfield(L, -1, safe_base[i]);
		lua_setfield(L, -3, safe_base[i]);
	}
	for (size_t i = 0; safe_libs[i]; i++) {
		lua_newtable(L);
		lua_getfield(L, -2, safe_libs[i]);
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_settable(L, -5);
		}
		lua_pop(L, 1);
		lua_setfield(L, -3, safe_libs[i]);
	}
	lua_pop(L, 1);
	luaL_setfuncs(L, helpers, 0);
	lua_pushinteger(L, CL_TIER_NONE);
	lua_setfield(L, -2, "NONE");
	lua_pushinteger(L, CL_TIER_AFFIRMING);
	lua_setfield(L, -2, "AFFIRMING");
	lua_pushinteger(L, CL_TIER_WARNING);
	lua_setfield(L, -2, "WARNING");
	lua_pushinteger(L, CL_TIER_CONTRAINDICATED);
	lua_setfield(L, -2, "CONTRAINDICATED");
}

/* Run the function below nargs arguments under the limits; 0 or CL_ERR_POLICY. */
static int run_limited(struct lstate *s, int nargs, int nres)
{
	lua_State *L = s->L;
	int st = 0;

	s->insns = 0;
	lua_sethook(L, l_hook, LUA_MASKCOUNT, HOOK_EVERY);
	st = lua_pcall(L, nargs, nres, 0);
	lua_sethook(L, NULL, 0, 0);
	if (st == LUA_OK)
		return CL_OK;
	if (st == LUA_ERRMEM)
		cl_fail(CL_ERR_POLICY, "policy: memory limit exceeded (%zu MiB)",
			CL_POLICY_MEM_LIMIT >> 20);
	else
		cl_fail(CL_ERR_POLICY, "policy: %.400s",
			lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
						       : "error object is not a string");
	lua_pop(L, 1);
	/* A runaway policy leaves garbage behind; give the memory back now. */
	lua_gc(L, LUA_GCCOLLECT);
	return CL_ERR_POLICY;
}

/* Push the cached environment of p, compiling it first if needed. */
static int push_compiled(struct lstate *s, const struct cl_policy *p)
{
	lua_State *L = s->L;
	int rc = CL_OK;

	lua_getfield(L, LUA_REGISTRYINDEX, CACHE_KEY);
	if (lua_getfield(L, -1, p->key) == LUA_TTABLE) {
		lua_remove(L, -2);
		return CL_OK;
	}
	lua_pop(L, 1);
	if (s->ncached >= MAX_CACHED_POLICIES) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_setfield(L, LUA_REGISTRYINDEX, CACHE_KEY);
		s->ncached = 0;
		lua_gc(L, LUA_GCCOLLECT);
	}
	if (luaL_loadbufferx(L, p->text, p->len, "=policy", "t") != LUA_OK) {
		rc = cl_fail(CL_ERR_POLICY, "policy: %.400s", lua_tostring(L, -1));
		lua_pop(L, 2);
		return rc;
	}
	push_env(L);
	lua_pushvalue(L, -1);
	lua_insert(L, -3); /* cache, env, chunk, env */
	if (!lua_setupvalue(L, -2, 1)) {
		lua_pop(L, 3);
		return cl_fail(CL_ERR_INTERNAL, "policy chunk has no _ENV");
	}
	rc = run_limited(s, 0, 0);
	if (rc != CL_OK) {
		lua_pop(L, 2);
		return rc;
	}
	if (lua_getfield(L, -1, "appraise") != LUA_TFUNCTION) {
		lua_pop(L, 3);
		return cl_fail(CL_ERR_POLICY,
			       "policy does not define function appraise(claims, ctx)");
	}
	lua_pop(L, 1);
	lua_pushvalue(L, -1);
	lua_setfield(L, -3, p->key);
	lua_remove(L, -2);
	s->ncached++;
	return CL_OK;
}

/* ------------------------------------------------------------- policies */

static int policy_new(const char *text, size_t len, const char *id, struct cl_policy **out)
{
	uint8_t h[32];
	struct cl_policy *p = NULL;

	*out = NULL;
	CL_ENSURE_MSG(len <= CL_MAX_POLICY_TEXT, CL_ERR_MALFORMED, "policy larger than %zu bytes",
		      CL_MAX_POLICY_TEXT);
	CL_ENSURE_MSG(len == 0 || text[0] != LUA_SIGNATURE[0], CL_ERR_POLICY,
		      "policy: precompiled Lua is not accepted");
	CL_GUARD(cl_digest(CL_SHA256, text, len, h));
	p = calloc(1, sizeof(*p));
	CL_ENSURE_MSG(p, CL_ERR_NOMEM, "out of memory");
	p->text = malloc(len + 1);
	if (!p->text) {
		free(p);
		CL_BAIL(CL_ERR_NOMEM, "out of memory");
	}
	memcpy(p->text, text, len);
	p->text[len] = 0;
	p->len = len;
	cl_hex_encode(h, sizeof(h), p->key);
	if (id)
		snprintf(p->id, sizeof(p->id), "%s", id);
	else
		snprintf(p->id, sizeof(p->id), "sha256:%s", p->key);
	*out = p;
	return CL_OK;
}

int cl_policy_load(const char *text, size_t len, const char *id, struct cl_policy **out)
{
	struct cl_policy *p = NULL;
	struct lstate *s = NULL;
	int rc = CL_OK;

	*out = NULL;
	CL_TRY(policy_new(text, len, id, &p));
	s = get_state();
	CL_CHECK(s, CL_ERR_NOMEM, "cannot create the policy sandbox");
	/* Compile and run it now so a broken policy fails at load, not per request. */
	CL_TRY(push_compiled(s, p));
	if (!id && lua_getfield(s->L, -1, "policy_id") == LUA_TSTRING)
		snprintf(p->id, sizeof(p->id), "%s", lua_tostring(s->L, -1));
	lua_settop(s->L, 0);
	*out = p;
	p = NULL;
out:
	cl_policy_free(p);
	return rc;
}

int cl_policy_load_file(const char *path, struct cl_policy **out)
{
	struct cl_buf b = {0};
	int rc = CL_OK;

	*out = NULL;
	CL_TRY(cl_read_file(path, CL_MAX_POLICY_TEXT, &b));
	CL_TRY(cl_policy_load((const char *)b.data, b.len, NULL, out));
out:
	cl_buf_free(&b);
	return rc;
}

static struct cl_policy *default_policy;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void default_init(void)
{
	if (policy_new(cl_default_policy_text, sizeof(cl_default_policy_text) - 1,
		       CL_DEFAULT_POLICY_ID, &default_policy) != CL_OK)
		default_policy = NULL;
}

const struct cl_policy *cl_policy_default(void)
{
	(void)pthread_once(&default_once, default_init);
	return default_policy;
}

const char *cl_policy_id(const struct cl_policy *p)
{
	return p ? p->id : NULL;
}

void cl_policy_free(struct cl_policy *p)
{
	if (!p || p == default_policy)
		return;
	free(p->text);
	free(p);
}

void cl_appraisal_free(struct cl_appraisal *a)
{
	if (!a)
		return;
	json_decref(a->reasons);
	memset(a, 0, sizeof(*a));
}

/* ------------------------------------------------------------ appraise */

static void push_ctx(lua_State *L, const json_t *claims, const struct cl_appraise_ctx *ctx,
		     int64_t at)
{
	char hex[2 * 64 + 1];

	lua_createtable(L, 0, 4);
	if (ctx && ctx->nonce && ctx->nonce_len <= 64) {
		cl_hex_encode(ctx->nonce, ctx->nonce_len, hex);
		lua_pushstring(L, hex);
		lua_setfield(L, -2, "nonce");
	}
	if (ctx && ctx->report_data) {
		cl_hex_encode(ctx->report_data, 64, hex);
		lua_pushstring(L, hex);
		lua_setfield(L, -2, "report_data");
	}
	lua_pushinteger(L, (lua_Integer)at);
	lua_setfield(L, -2, "time");
	push_json(L, json_object_get(claims, "platform"), 0);
	lua_setfield(L, -2, "platform");
}

/* Read `vector[, reasons]` returned by appraise() into out. */
static int read_result(lua_State *L, struct cl_appraisal *out)
{
	int vi = lua_absindex(L, -2), ri = lua_absindex(L, -1);

	CL_ENSURE_MSG(lua_type(L, vi) == LUA_TTABLE, CL_ERR_POLICY,
		      "policy: appraise() must return a table of trustworthiness claims");
	lua_pushnil(L);
	while (lua_next(L, vi)) {
		int isnum = 0, idx = -1;
		lua_Integer v = 0;

		if (lua_type(L, -2) == LUA_TSTRING)
			idx = cl_tv_claim_index(lua_tostring(L, -2));
		v = lua_tointegerx(L, -1, &isnum);
		if (idx < 0 || !isnum || v < -128 || v > 127) {
			const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";

			lua_pop(L, 2);
			CL_BAIL(CL_ERR_POLICY,
				"policy: '%.60s' is not a trustworthiness claim with a value in "
				"-128..127",
				k);
		}
		out->vector[idx] = (int8_t)v;
		lua_pop(L, 1);
	}
	if (lua_type(L, ri) == LUA_TSTRING) {
		json_array_append_new(out->reasons,
				      json_stringn(lua_tostring(L, ri),
						   strnlen(lua_tostring(L, ri), MAX_REASON_LEN)));
	} else if (lua_type(L, ri) == LUA_TTABLE) {
		lua_Integer n = (lua_Integer)lua_rawlen(L, ri);

		for (lua_Integer i = 1; i <= n && i <= MAX_REASONS; i++) {
			if (lua_rawgeti(L, ri, i) == LUA_TSTRING)
				json_array_append_new(
					out->reasons,
					json_stringn(lua_tostring(L, -1),
						     strnlen(lua_tostring(L, -1), MAX_REASON_LEN)));
			lua_pop(L, 1);
		}
	} else {
		CL_ENSURE_MSG(lua_isnil(L, ri), CL_ERR_POLICY,
			      "policy: reasons must be a string or a list of strings");
	}
	return CL_OK;
}

int cl_policy_appraise(const struct cl_policy *p, const json_t *claims,
		       const struct cl_refvalues *rv, const struct cl_appraise_ctx *ctx,
		       struct cl_appraisal *out)
{
	struct lstate *s = NULL;
	struct eval e = {0};
	lua_State *L = NULL;
	int rc = CL_OK;

	memset(out, 0, sizeof(*out));
	if (!p)
		p = cl_policy_default();
	CL_ENSURE_MSG(p && json_is_object(claims), CL_ERR_ARG,
		      "appraisal needs a policy and claims");
	s = get_state();
	CL_ENSURE_MSG(s, CL_ERR_NOMEM, "cannot create the policy sandbox");
	L = s->L;
	e.claims = claims;
	e.rv = rv;
	e.platform = json_string_value(json_object_get(claims, "platform"));
	CL_ENSURE_MSG(e.platform, CL_ERR_ARG, "claims name no platform");
	e.at = ctx && ctx->at ? ctx->at : (int64_t)time(NULL);
	out->reasons = json_array();
	CL_CHECK(out->reasons, CL_ERR_NOMEM, "out of memory");

	lua_settop(L, 0);
	CL_TRY(push_compiled(s, p));
	lua_getfield(L, -1, "appraise");
	lua_remove(L, -2);
	push_json(L, claims, 0);
	push_ctx(L, claims, ctx, e.at);
	s->cur = &e;
	rc = run_limited(s, 2, 2);
	s->cur = NULL;
	if (rc != CL_OK)
		goto out;
	rc = read_result(L, out);
	if (rc != CL_OK)
		goto out;
	out->status = cl_vector_status(out->vector);
	snprintf(out->policy_id, sizeof(out->policy_id), "%s", p->id);
out:
	if (L)
		lua_settop(L, 0);
	if (rc != CL_OK)
		cl_appraisal_free(out);
	return rc;
}
