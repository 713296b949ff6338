/*
 * Appraisal policies in sandboxed Lua 5.4.
 *
 * Each thread keeps one Lua state, and in it each policy's compiled chunk,
 * cached under the SHA-256 of its text. Nothing else outlives an evaluation:
 * every one (loading included) runs the chunk afresh in a new global
 * environment with new copies of the library tables, then calls appraise(),
 * so no global, upvalue or library change made while appraising one client
 * is seen when appraising the next. The sandbox has no io, os, package,
 * debug or coroutine library, no load/dofile/loadfile, no string.dump, no
 * math.random, no finalizers, and takes text chunks only. Every evaluation
 * is bounded by an instruction budget and a deadline that the policy cannot
 * catch, and the state by an allocator that refuses to grow it past a limit.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
#define MAX_ERROR_TEXT	    400
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

/* Which limit an evaluation ran into. */
enum trip {
	TRIP_NONE = 0,
	TRIP_INSNS,
	TRIP_TIME,
};

struct lstate {
	lua_State *L;
	size_t used;
	long insns;	  /* instructions counted in this evaluation */
	int64_t deadline; /* monotonic ns at which this evaluation fails */
	enum trip trip;
	int ncached;
	const struct eval *cur;
};

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
/* Registry keys: compiled chunks (and ids of checked ones), the environment template. */
static const char CACHE_KEY[] = "cloister.policies";
static const char ENV_KEY[] = "cloister.env";

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

static int64_t now_ns(void)
{
	struct timespec ts = {0};

#ifdef CLOCK_MONOTONIC_COARSE
	/* A few milliseconds of resolution is plenty, and it is read on every call. */
	(void)clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *trip_text(enum trip t)
{
	switch (t) {
	case TRIP_INSNS:
		return "instruction limit exceeded";
	case TRIP_TIME:
		return "time limit exceeded";
	case TRIP_NONE:
	default:
		return "no limit exceeded";
	}
}

static void l_hook(lua_State *L, lua_Debug *ar);

/*
 * Fail the evaluation for good. A policy can catch one error with pcall(),
 * so once a limit is reached the hook fires before every instruction and
 * every call, and each raises the error again: whatever catches it has no
 * instruction left to run but its own return, and the error climbs to the
 * outermost call. evaluate() then reports the limit whatever the policy
 * returned, so an exhausted budget can never become a verdict.
 */
static void fail_limit(lua_State *L, struct lstate *s, enum trip why)
{
	if (s->trip == TRIP_NONE) {
		s->trip = why;
		lua_sethook(L, l_hook, LUA_MASKCOUNT | LUA_MASKCALL, 1);
	}
	luaL_error(L, "%s", trip_text(s->trip));
}

/*
 * Count events every HOOK_EVERY instructions charge the budget; call events
 * (every Lua or C function call) check the deadline, since a loop of few
 * instructions that each call a long C function (s:upper() over megabytes,
 * table.sort of a large table) stays within any instruction budget for hours.
 */
static void l_hook(lua_State *L, lua_Debug *ar)
{
	struct lstate *s = state_of(L);

	if (s->trip != TRIP_NONE)
		fail_limit(L, s, s->trip);
	if (ar->event == LUA_HOOKCOUNT) {
		s->insns += HOOK_EVERY;
		if (s->insns > CL_POLICY_INSN_LIMIT)
			fail_limit(L, s, TRIP_INSNS);
	}
	if (now_ns() > s->deadline)
		fail_limit(L, s, TRIP_TIME);
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

/*
 * setmetatable() without finalizers. Lua runs __gc metamethods with hooks
 * switched off (GCTM clears allowhook) at whatever allocation triggers a
 * collection step -- in a later evaluation, another client's -- and at
 * lua_close() when the thread ends, so neither the instruction budget nor the
 * deadline can stop a finalizer, and one that loops hangs its thread for
 * good. Collecting with the hook still armed cannot help for that reason.
 * Lua 5.4 marks an object for finalization only when setmetatable() gives it
 * a metatable that already holds a __gc field (raw; a field added later does
 * not count), and a policy can neither create userdata nor reach a metatable
 * that has one, so refusing __gc here removes finalizers from the sandbox.
 */
static int l_setmetatable(lua_State *L)
{
	if (lua_type(L, 2) == LUA_TTABLE) {
		lua_pushliteral(L, "__gc");
		if (lua_rawget(L, 2) != LUA_TNIL)
			return luaL_error(L, "__gc metamethods are not available to policies");
		lua_pop(L, 1);
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
	return lua_gettop(L);
}

/*
 * xpcall(f, msgh, ...) that runs msgh once the error has unwound. Lua calls a
 * message handler from inside the raising of the error; when the hook raised
 * it, hooks are still off there, so a handler that loops would escape both
 * limits. Run as an ordinary call afterwards, it stays under them.
 */
static int l_xpcall(lua_State *L)
{
	int n = lua_gettop(L);

	luaL_checktype(L, 2, LUA_TFUNCTION);
	luaL_checkstack(L, n + 2, "too many arguments");
	lua_pushvalue(L, 1);
	for (int i = 3; i <= n; i++)
		lua_pushvalue(L, i);
	if (lua_pcall(L, n > 2 ? n - 2 : 0, LUA_MULTRET, 0) == LUA_OK) {
		lua_pushboolean(L, 1);
		lua_insert(L, n + 1);
		return lua_gettop(L) - n;
	}
	lua_pushvalue(L, 2);
	lua_insert(L, -2);
	(void)lua_pcall(L, 1, 1, 0); /* its error, if any, stands for its result */
	lua_pushboolean(L, 0);
	lua_insert(L, -2);
	return 2;
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
	"assert", "error",  "ipairs",	"next",	    "pairs", "pcall",	     "rawequal", "rawget",
	"rawlen", "select", "tonumber", "tostring", "type",  "getmetatable", "_VERSION", NULL,
};
static const char *const safe_libs[] = {"string", "table", "math", "utf8", NULL};

/*
 * The template every evaluation's environment is copied from, kept in the
 * registry where no policy can reach it: the safe base functions, the
 * guarded setmetatable and xpcall, the libraries, the rv_* helpers and the
 * tier constants.
 */
static void make_env_template(lua_State *L)
{
	static const luaL_Reg helpers[] = {
		{"rv_has", l_rv_has},	    {"rv_contains", l_rv_contains},
		{"rv_min", l_rv_min},	    {"rv_meets_min", l_rv_meets_min},
		{"rv_values", l_rv_values}, {"rv_minimums", l_rv_minimums},
		{"xpcall", l_xpcall},	    {NULL, NULL},
	};
	static const struct {
		const char *name;
		int value;
	} tiers[] = {
		{"NONE", CL_TIER_NONE},
		{"AFFIRMING", CL_TIER_AFFIRMING},
		{"WARNING", CL_TIER_WARNING},
		{"CONTRAINDICATED", CL_TIER_CONTRAINDICATED},
	};

	lua_newtable(L);
	lua_pushglobaltable(L);
	for (size_t i = 0; safe_base[i]; i++) {
		lua_getfield(L, -1, safe_base[i]);
		lua_setfield(L, -3, safe_base[i]);
	}
	for (size_t i = 0; safe_libs[i]; i++) {
		lua_getfield(L, -1, safe_libs[i]);
		lua_setfield(L, -3, safe_libs[i]);
	}
	lua_getfield(L, -1, "setmetatable");
	lua_pushcclosure(L, l_setmetatable, 1);
	lua_setfield(L, -3, "setmetatable");
	lua_pop(L, 1);
	/*
	 * The generator state of math.random lives in the Lua state, so it would
	 * carry from one evaluation to the next; an appraisal has no use for
	 * chance anyway.
	 */
	lua_getfield(L, -1, "math");
	lua_pushnil(L);
	lua_setfield(L, -2, "random");
	lua_pushnil(L);
	lua_setfield(L, -2, "randomseed");
	lua_pop(L, 1);
	luaL_setfuncs(L, helpers, 0);
	for (size_t i = 0; i < sizeof(tiers) / sizeof(tiers[0]); i++) {
		lua_pushinteger(L, tiers[i].value);
		lua_setfield(L, -2, tiers[i].name);
	}
	lua_setfield(L, LUA_REGISTRYINDEX, ENV_KEY);
}

static int open_sandbox(lua_State *L)
{
	luaL_requiref(L, "_G", luaopen_base, 1);
	luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
	luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
	luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
	luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
	/* In place: the string metatable indexes this very table. */
	wrap_patterns(L, -4);
	lua_settop(L, 0);
	/* Hide the shared string metatable (and so the real string table). */
	lua_pushliteral(L, "");
	lua_getmetatable(L, -1);
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_settop(L, 0);
	make_env_template(L);
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

/*
 * A fresh environment: the template's functions and constants, and a copy of
 * each library table of its own, so that changing `string` or `math` in one
 * evaluation changes nothing for the next.
 */
static void push_env(lua_State *L)
{
	int env = 0, tmpl = 0;

	lua_createtable(L, 0, 32);
	env = lua_gettop(L);
	lua_getfield(L, LUA_REGISTRYINDEX, ENV_KEY);
	tmpl = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, tmpl)) {
		if (lua_type(L, -1) == LUA_TTABLE) {
			int lib = lua_gettop(L);

			lua_createtable(L, 0, 32);
			lua_pushnil(L);
			while (lua_next(L, lib)) {
				lua_pushvalue(L, -2);
				lua_insert(L, -2);
				lua_rawset(L, lib + 1);
			}
			lua_remove(L, lib);
		}
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_rawset(L, env);
	}
	lua_pop(L, 1);
}

/* ------------------------------------------------------------ evaluation */

/* One evaluation: with claims, appraise them; without, load (check) the policy. */
struct run {
	struct lstate *s;
	const struct cl_policy *p;
	const json_t *claims;
	const struct cl_appraise_ctx *ctx;
	const struct eval *e;
};

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

/* Push p's compiled chunk, compiling and caching it if needed. Raises on error. */
static void push_chunk(lua_State *L, struct lstate *s, const struct cl_policy *p)
{
	lua_getfield(L, LUA_REGISTRYINDEX, CACHE_KEY);
	if (lua_getfield(L, -1, p->key) == LUA_TFUNCTION) {
		lua_remove(L, -2);
		return;
	}
	lua_pop(L, 1);
	if (s->ncached >= MAX_CACHED_POLICIES) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_setfield(L, LUA_REGISTRYINDEX, CACHE_KEY);
		s->ncached = 0;
	}
	if (luaL_loadbufferx(L, p->text, p->len, "=policy", "t") != LUA_OK)
		lua_error(L);
	lua_pushvalue(L, -1);
	lua_setfield(L, -3, p->key);
	lua_remove(L, -2);
	s->ncached++;
}

/*
 * Run under lua_pcall with the hook armed, the struct run as a light
 * userdata; returns vector, reasons, policy_id. The chunk runs in a new
 * environment every time, which also gives it new chunk-level locals, so
 * appraise() and everything it can reach are new as well.
 */
static int l_evaluate(lua_State *L)
{
	struct run *r = lua_touserdata(L, 1);
	const int chunk = 1, env = 2, id = 3;

	lua_settop(L, 0);
	if (!r->claims) {
		/* Loading a policy this thread has already checked: its id is known. */
		lua_getfield(L, LUA_REGISTRYINDEX, CACHE_KEY);
		lua_pushfstring(L, "id:%s", r->p->key);
		if (lua_rawget(L, -2) != LUA_TNIL) {
			lua_pushnil(L);
			lua_pushnil(L);
			lua_rotate(L, -3, 2);
			return 3;
		}
		lua_settop(L, 0);
	}
	push_chunk(L, r->s, r->p);
	push_env(L);
	lua_pushvalue(L, env);
	if (!lua_setupvalue(L, chunk, 1))
		return luaL_error(L, "policy chunk has no _ENV");
	lua_pushvalue(L, chunk);
	lua_call(L, 0, 0);
	/* Raw reads: a metatable the policy put on its environment must not run here. */
	lua_pushliteral(L, "policy_id");
	if (lua_rawget(L, env) != LUA_TSTRING) {
		lua_pop(L, 1);
		lua_pushboolean(L, 0);
	}
	lua_pushliteral(L, "appraise");
	if (lua_rawget(L, env) != LUA_TFUNCTION)
		return luaL_error(L, "policy does not define function appraise(claims, ctx)");
	if (!r->claims) {
		lua_getfield(L, LUA_REGISTRYINDEX, CACHE_KEY);
		lua_pushfstring(L, "id:%s", r->p->key);
		lua_pushvalue(L, id);
		lua_rawset(L, -3);
		lua_pushnil(L);
		lua_pushnil(L);
	} else {
		push_json(L, r->claims, 0);
		push_ctx(L, r->claims, r->ctx, r->e->at);
		r->s->cur = r->e;
		lua_call(L, 2, 2);
		r->s->cur = NULL;
	}
	/* Let go of this evaluation's globals now rather than at the next. */
	lua_pushnil(L);
	(void)lua_setupvalue(L, chunk, 1);
	lua_pushvalue(L, id);
	return 3;
}

/* Log-safe copy of a policy's error text: printable ASCII, the rest '?'. */
static void clean_text(const char *in, size_t n, char *out, size_t cap)
{
	size_t i = 0;

	for (; i < n && i + 1 < cap; i++)
		out[i] = in[i] >= 0x20 && in[i] < 0x7f ? in[i] : '?';
	out[i] = 0;
}

/*
 * Run r under the limits. CL_OK leaves vector, reasons and policy_id (a
 * string, or false) at stack indices 1..3; otherwise CL_ERR_POLICY, the
 * stack empty, and the reason in the error detail.
 */
static int evaluate(struct run *r)
{
	struct lstate *s = r->s;
	lua_State *L = s->L;
	char msg[MAX_ERROR_TEXT + 1];
	int st = LUA_OK;

	lua_settop(L, 0);
	s->insns = 0;
	s->trip = TRIP_NONE;
	s->deadline = now_ns() + (int64_t)CL_POLICY_TIME_LIMIT_MS * 1000000;
	lua_pushcfunction(L, l_evaluate);
	lua_pushlightuserdata(L, r);
	lua_sethook(L, l_hook, LUA_MASKCOUNT | LUA_MASKCALL, HOOK_EVERY);
	st = lua_pcall(L, 1, 3, 0);
	lua_sethook(L, NULL, 0, 0);
	s->cur = NULL;
	if (st == LUA_OK && s->trip == TRIP_NONE)
		return CL_OK;
	if (s->trip == TRIP_INSNS)
		cl_fail(CL_ERR_POLICY, "policy: instruction limit exceeded (%ld instructions)",
			(long)CL_POLICY_INSN_LIMIT);
	else if (s->trip == TRIP_TIME)
		cl_fail(CL_ERR_POLICY, "policy: time limit exceeded (%d ms)",
			(int)CL_POLICY_TIME_LIMIT_MS);
	else if (st == LUA_ERRMEM)
		cl_fail(CL_ERR_POLICY, "policy: memory limit exceeded (%zu MiB)",
			CL_POLICY_MEM_LIMIT >> 20);
	else {
		static const char notstr[] = "error object is not a string";
		const char *e = notstr;
		size_t n = sizeof(notstr) - 1;

		/* Only a string is read: an error object's metamethods must not run here. */
		if (lua_type(L, -1) == LUA_TSTRING)
			e = lua_tolstring(L, -1, &n);
		clean_text(e, n, msg, sizeof(msg));
		cl_fail(CL_ERR_POLICY, "policy: %s", msg);
	}
	lua_settop(L, 0);
	/* A runaway policy leaves garbage behind; give the memory back now (no finalizers run). */
	lua_gc(L, LUA_GCCOLLECT);
	return CL_ERR_POLICY;
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
	struct run r = {0};
	int rc = CL_OK;

	*out = NULL;
	CL_TRY(policy_new(text, len, id, &p));
	r.s = get_state();
	r.p = p;
	CL_CHECK(r.s, CL_ERR_NOMEM, "cannot create the policy sandbox");
	/* Compile and run it now so a broken policy fails at load, not per request. */
	CL_TRY(evaluate(&r));
	if (!id && lua_type(r.s->L, 3) == LUA_TSTRING)
		snprintf(p->id, sizeof(p->id), "%s", lua_tostring(r.s->L, 3));
	lua_settop(r.s->L, 0);
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
	struct run r = {0};
	struct eval e = {0};
	lua_State *L = NULL;
	int rc = CL_OK;

	memset(out, 0, sizeof(*out));
	if (!p)
		p = cl_policy_default();
	CL_ENSURE_MSG(p && json_is_object(claims), CL_ERR_ARG,
		      "appraisal needs a policy and claims");
	r.s = get_state();
	CL_ENSURE_MSG(r.s, CL_ERR_NOMEM, "cannot create the policy sandbox");
	L = r.s->L;
	e.claims = claims;
	e.rv = rv;
	e.platform = json_string_value(json_object_get(claims, "platform"));
	CL_ENSURE_MSG(e.platform, CL_ERR_ARG, "claims name no platform");
	e.at = ctx && ctx->at ? ctx->at : (int64_t)time(NULL);
	out->reasons = json_array();
	CL_CHECK(out->reasons, CL_ERR_NOMEM, "out of memory");

	r.p = p;
	r.claims = claims;
	r.ctx = ctx;
	r.e = &e;
	CL_TRY(evaluate(&r));
	/* vector and reasons at 1 and 2; read_result touches them raw only. */
	lua_pop(L, 1);
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
