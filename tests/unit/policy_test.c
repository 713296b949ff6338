/*
 * The policy sandbox between evaluations and at its limits: no state carried
 * from one appraisal to the next, and no way for a policy to outrun its
 * instruction budget, its deadline or its memory cap.
 *
 * Every case that could hang runs in a child process under alarm(), so a
 * policy that escapes the limits fails the test instead of stalling it.
 */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cloister/appraise.h"
#include "test.h"

#define RUNS 1000
/* How long any limit case may take: the deadline plus generous slack. */
#define CASE_SECONDS ((CL_POLICY_TIME_LIMIT_MS + 999) / 1000 + 4)

#define MEAS_A	     "a1f3930413247bb38cfc171579ea3c12"
#define MEAS_B	     "b07af9620f3b839b47996422ddec6058"

static json_t *claims_with(const char *meas)
{
	return json_pack("{s:s, s:s, s:b}", "platform", "snp", "measurement", meas, "debug", 0);
}

static int eval(const struct cl_policy *p, const char *meas, struct cl_appraisal *a)
{
	struct cl_appraise_ctx ctx = {0};
	json_t *c = claims_with(meas);
	int rc = 0;

	ctx.at = 1748736000;
	rc = cl_policy_appraise(p, c, NULL, &ctx, a);
	json_decref(c);
	return rc;
}

static struct cl_policy *load(const char *text)
{
	struct cl_policy *p = NULL;

	CHECK_EQ_INT(cl_policy_load(text, strlen(text), NULL, &p), CL_OK);
	return p;
}

/*
 * Evaluate text RUNS times with claims alternating between MEAS_A and MEAS_B;
 * every run must give hardware AFFIRMING for A and CONTRAINDICATED for B,
 * and, when reason is set, exactly that first reason.
 */
static void same_verdict(const char *name, const char *text, int alternate, const char *reason)
{
	struct cl_policy *p = load(text);
	int wrong = 0, first_wrong = -1;

	for (int i = 0; p && i < RUNS; i++) {
		struct cl_appraisal a = {0};
		int b = alternate && i % 2;
		const char *why = NULL;
		int ok = eval(p, b ? MEAS_B : MEAS_A, &a) == CL_OK;

		why = json_string_value(json_array_get(a.reasons, 0));
		if (!ok ||
		    a.vector[CL_TV_HARDWARE] != (b ? CL_TIER_CONTRAINDICATED : CL_TIER_AFFIRMING) ||
		    (reason && (!why || strcmp(why, reason) != 0))) {
			if (first_wrong < 0) {
				first_wrong = i;
				fprintf(stderr, "  %s: run %d gave %d (%s)\n", name, i,
					a.vector[CL_TV_HARDWARE], why ? why : cl_error_detail());
			}
			wrong++;
		}
		cl_appraisal_free(&a);
	}
	CHECK_EQ_INT(wrong, 0);
	cl_policy_free(p);
}

static void test_globals_do_not_persist(void)
{
	/* A counter in a global. */
	same_verdict("global counter",
		     "function appraise(c)\n"
		     "  calls = (calls or 0) + 1\n"
		     "  return { hardware = calls == 1 and AFFIRMING or CONTRAINDICATED },\n"
		     "         'call ' .. calls\n"
		     "end\n",
		     0, "call 1");
	/* A counter in a chunk-level local, which appraise() keeps as an upvalue. */
	same_verdict(
		"upvalue counter",
		"local n = 0\n"
		"function appraise(c)\n"
		"  n = n + 1\n"
		"  return { hardware = n == 1 and AFFIRMING or CONTRAINDICATED }, 'call ' .. n\n"
		"end\n",
		0, "call 1");
	/* Loading counts as a run too: top-level code must not see the load's globals. */
	same_verdict(
		"top-level counter",
		"runs = (runs or 0) + 1\n"
		"function appraise(c)\n"
		"  return { hardware = runs == 1 and AFFIRMING or CONTRAINDICATED }, 'run ' .. "
		"runs\n"
		"end\n",
		0, "run 1");
	/* A missing `local`: the verdict of an affirming client must not carry to the next. */
	same_verdict("leaked verdict",
		     "function appraise(c)\n"
		     "  if c.measurement == '" MEAS_A "' then ok = true end\n"
		     "  return { hardware = ok and AFFIRMING or CONTRAINDICATED }\n"
		     "end\n",
		     1, NULL);
	/* The same through a table kept at chunk level. */
	same_verdict("leaked table",
		     "local seen = {}\n"
		     "function appraise(c)\n"
		     "  if c.measurement == '" MEAS_A "' then seen.ok = true end\n"
		     "  return { hardware = seen.ok and AFFIRMING or CONTRAINDICATED }\n"
		     "end\n",
		     1, NULL);
}

static void test_libraries_do_not_persist(void)
{
	/* Changes to the library tables and the environment stay in one evaluation. */
	same_verdict(
		"library tables",
		"function appraise(c)\n"
		"  local bad = string.marker or table.marker or math.marker or utf8.marker\n"
		"    or math.pi ~= 3.141592653589793 or string.rep == nil or table.concat == nil\n"
		"    or type(setmetatable) ~= 'function' or AFFIRMING ~= 2 or "
		"getmetatable(string)\n"
		"  string.marker, table.marker, math.marker, utf8.marker = 1, 1, 1, 1\n"
		"  math.pi, string.rep, table.concat = 3, nil, nil\n"
		"  setmetatable(string, { __index = function() return 1 end })\n"
		"  AFFIRMING, setmetatable = 96, nil\n"
		"  return { hardware = bad and 96 or 2 }\n"
		"end\n",
		0, NULL);
	/* Strings share one metatable: it stays hidden and cannot be replaced. */
	same_verdict("string metatable",
		     "function appraise(c)\n"
		     "  local bad = ('').marker ~= nil or getmetatable('') ~= false\n"
		     "    or ('ab'):rep(2) ~= 'abab'\n"
		     "  pcall(function() getmetatable('').__index.marker = 1 end)\n"
		     "  pcall(function() getmetatable('').__index.rep = nil end)\n"
		     "  pcall(setmetatable, '', { __index = { marker = 1 } })\n"
		     "  return { hardware = bad and 96 or 2 }\n"
		     "end\n",
		     0, NULL);
	/*
	 * math.random keeps its generator state in the Lua state, across
	 * evaluations; an appraisal must be a function of its inputs anyway.
	 */
	same_verdict("no random",
		     "function appraise(c)\n"
		     "  local bad = math.random ~= nil or math.randomseed ~= nil\n"
		     "  return { hardware = bad and 96 or 2 }\n"
		     "end\n",
		     0, NULL);
	/* Two policies on one thread never share globals either. */
	{
		struct cl_policy *w = load("function appraise(c) shared = 1 return {} end");
		struct cl_policy *r =
			load("function appraise(c) return { hardware = shared and 96 or 2 } end");
		struct cl_appraisal a = {0};

		CHECK_EQ_INT(eval(w, MEAS_A, &a), CL_OK);
		cl_appraisal_free(&a);
		CHECK_EQ_INT(eval(r, MEAS_A, &a), CL_OK);
		CHECK_EQ_INT(a.vector[CL_TV_HARDWARE], CL_TIER_AFFIRMING);
		cl_appraisal_free(&a);
		cl_policy_free(w);
		cl_policy_free(r);
	}
}

/* pcall and xpcall still work for policies that use them honestly. */
static void test_protected_calls(void)
{
	same_verdict("pcall and xpcall",
		     "function appraise(c)\n"
		     "  local ok1, e1 = pcall(error, 'x', 0)\n"
		     "  local ok2, e2 = xpcall(function() error('y', 0) end,\n"
		     "                         function(m) return 'handled ' .. m end)\n"
		     "  local ok3, s = xpcall(function(a, b) return a + b end, error, 1, 2)\n"
		     "  local good = not ok1 and e1 == 'x' and not ok2 and e2 == 'handled y'\n"
		     "    and ok3 and s == 3\n"
		     "  return { hardware = good and 2 or 96 }\n"
		     "end\n",
		     0, NULL);
}

/*
 * Load and appraise text in a child under alarm(); the child exits 0 when
 * the outcome is want (CL_OK, or CL_ERR_POLICY with needle in the detail),
 * within CASE_SECONDS, and the thread's Lua state then closes promptly.
 */
static void limited(const char *text, int want, const char *needle)
{
	pid_t pid = fork();
	int st = 0, ok = 0;

	if (pid < 0) {
		CHECK(pid >= 0);
		return;
	}
	if (pid == 0) {
		struct cl_appraisal a = {0};
		struct cl_policy *p = NULL;
		int rc = 0;

		alarm(CASE_SECONDS);
		rc = cl_policy_load(text, strlen(text), NULL, &p);
		if (rc == CL_OK)
			rc = eval(p, MEAS_A, &a);
		if (rc != want || (needle && !strstr(cl_error_detail(), needle))) {
			fprintf(stderr, "  got %d '%s', want %d '%s'\n", rc, cl_error_detail(),
				want, needle ? needle : "");
			_exit(1);
		}
		for (const char *d = cl_error_detail(); *d; d++)
			if ((unsigned char)*d < 0x20 || (unsigned char)*d > 0x7e) {
				fprintf(stderr, "  detail has byte 0x%02x\n", (unsigned char)*d);
				_exit(1);
			}
		cl_appraisal_free(&a);
		cl_policy_free(p);
		/* The state must close (and run nothing) when the thread lets it go. */
		cl_policy_thread_release();
		_exit(0);
	}
	while (waitpid(pid, &st, 0) < 0)
		;
	ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
	if (!ok)
		fprintf(stderr, "  %s: %.200s\n",
			WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM ? "hung" : "wrong outcome",
			text);
	CHECK(ok);
}

#define LOOP "function() while true do end end"

static void test_budget_cannot_be_caught(void)
{
	limited("function appraise() while true do pcall(" LOOP ") end end", CL_ERR_POLICY,
		"instruction limit");
	/* The same while loading. */
	limited("while true do pcall(" LOOP ") end", CL_ERR_POLICY, "instruction limit");
	limited("function appraise()\n"
		"  while true do pcall(pcall, pcall, " LOOP ") end\n"
		"end\n",
		CL_ERR_POLICY, "instruction limit");
	limited("function appraise()\n"
		"  while true do pcall(function()\n"
		"    while true do pcall(function() while true do pcall(" LOOP ") end end) end\n"
		"  end) end\n"
		"end\n",
		CL_ERR_POLICY, "instruction limit");
	/* A message handler must not run where the hook cannot reach it. */
	limited("function appraise()\n"
		"  while true do xpcall(" LOOP ", " LOOP ") end\n"
		"end\n",
		CL_ERR_POLICY, "instruction limit");
	limited("function appraise() xpcall(" LOOP ", " LOOP ") end", CL_ERR_POLICY,
		"instruction limit");
	limited("function appraise()\n"
		"  local function h(m) return xpcall(" LOOP ", h) end\n"
		"  while true do xpcall(" LOOP ", h) end\n"
		"end\n",
		CL_ERR_POLICY, "instruction limit");
	/* Nothing may turn an exhausted budget into a verdict. */
	limited("function appraise()\n"
		"  return xpcall(" LOOP ", function() return { hardware = AFFIRMING } end)\n"
		"end\n",
		CL_ERR_POLICY, "instruction limit");
	limited("function appraise()\n"
		"  local ok = pcall(" LOOP ")\n"
		"  return { hardware = AFFIRMING }\n"
		"end\n",
		CL_ERR_POLICY, "instruction limit");
	limited("function appraise() return pcall(" LOOP ") end", CL_ERR_POLICY,
		"instruction limit");
	/* Loops inside library callbacks. */
	limited("function appraise()\n"
		"  while true do pcall(table.sort, {3, 2, 1}, function() while true do end end) "
		"end\n"
		"end\n",
		CL_ERR_POLICY, "instruction limit");
	limited("function appraise()\n"
		"  while true do pcall(string.gsub, 'abc', '%w', function() while true do end end) "
		"end\n"
		"end\n",
		CL_ERR_POLICY, "instruction limit");
	/* No coroutines to hide in: the library is not there. */
	limited("function appraise()\n"
		"  local co = coroutine.wrap(function() while true do pcall(" LOOP ") end end)\n"
		"  co()\n"
		"end\n",
		CL_ERR_POLICY, "coroutine");
	/* A budget blown once does not carry into the next evaluation. */
	limited("function appraise() return { hardware = AFFIRMING } end", CL_OK, NULL);
}

static void test_error_objects(void)
{
	/* Error objects whose metamethods loop: caught and used inside the policy. */
	limited("function appraise()\n"
		"  local e = setmetatable({}, { __tostring = " LOOP ", __index = " LOOP ",\n"
		"                               __concat = " LOOP ", __eq = " LOOP " })\n"
		"  while true do\n"
		"    local ok, err = pcall(error, e)\n"
		"    pcall(tostring, err) pcall(function() return err.x end)\n"
		"    pcall(function() return err .. 'x' end)\n"
		"  end\n"
		"end\n",
		CL_ERR_POLICY, "instruction limit");
	/* Or thrown out of the policy: cloister never calls them. */
	limited("function appraise()\n"
		"  error(setmetatable({}, { __tostring = " LOOP ", __index = " LOOP " }))\n"
		"end\n",
		CL_ERR_POLICY, "error object is not a string");
	/* A result whose metamethods loop is read raw. */
	limited("function appraise()\n"
		"  return setmetatable({}, { __index = " LOOP ", __pairs = " LOOP ",\n"
		"                            __len = " LOOP " }),\n"
		"         setmetatable({}, { __index = " LOOP ", __len = " LOOP " })\n"
		"end\n",
		CL_OK, NULL);
	/* An environment with a looping __index is read raw as well. */
	limited("setmetatable(_ENV, { __index = " LOOP " })", CL_ERR_POLICY,
		"does not define function appraise");
	limited("setmetatable(_ENV, { __index = " LOOP ", __newindex = " LOOP " })\n"
		"rawset = nil\n",
		CL_ERR_POLICY, "instruction limit");
	/* Error text goes to logs: no control bytes from the policy survive. */
	limited("function appraise() error('bad\\nline\\27[31m\\0\\200', 0) end", CL_ERR_POLICY,
		"bad?line?[31m??");
}

static void test_finalizers(void)
{
	/* A finalizer would run with hooks off, at any later allocation or at close. */
	limited("function appraise()\n"
		"  setmetatable({}, { __gc = " LOOP " })\n"
		"  return { hardware = AFFIRMING }\n"
		"end\n",
		CL_ERR_POLICY, "__gc");
	limited("setmetatable({}, { __gc = " LOOP " })\n"
		"function appraise() return {} end\n",
		CL_ERR_POLICY, "__gc");
	/* Added after setmetatable(), __gc marks nothing (Lua 5.4); setting it again is refused. */
	limited("function appraise()\n"
		"  local mt = {} local t = setmetatable({}, mt) mt.__gc = " LOOP "\n"
		"  for i = 1, 100000 do local x = { i } end\n"
		"  return { hardware = AFFIRMING }\n"
		"end\n",
		CL_OK, NULL);
	limited("function appraise()\n"
		"  local mt = {} local t = setmetatable({}, mt) mt.__gc = " LOOP "\n"
		"  setmetatable(t, mt)\n"
		"end\n",
		CL_ERR_POLICY, "__gc");
	limited("function appraise() collectgarbage() end", CL_ERR_POLICY, "collectgarbage");
	/* To-be-closed variables run under the budget. */
	limited("function appraise()\n"
		"  local x <close> = setmetatable({}, { __close = " LOOP " })\n"
		"  return { hardware = AFFIRMING }\n"
		"end\n",
		CL_ERR_POLICY, "instruction limit");
	limited("function appraise()\n"
		"  local x <close> = setmetatable({}, { __close = " LOOP " })\n"
		"  while true do end\n"
		"end\n",
		CL_ERR_POLICY, "instruction limit");
}

static void test_memory_and_time(void)
{
	limited("function appraise() return { hardware = #string.rep('x', 1 << 30) } end",
		CL_ERR_POLICY, "memory limit");
	limited("function appraise() return { hardware = #string.rep('x', 1 << 24, 'yy') } end",
		CL_ERR_POLICY, "memory limit");
	limited("function appraise()\n"
		"  local t = {}\n"
		"  for i = 1, 64 do t[i] = string.rep('x', 1 << 20) .. i end\n"
		"end\n",
		CL_ERR_POLICY, "memory limit");
	limited("local t = {} for i = 1, 64 do t[i] = string.rep('x', 1 << 20) .. i end",
		CL_ERR_POLICY, "memory limit");
	limited("function appraise()\n"
		"  local t = {} for i = 1, 1 << 16 do t[i] = 'x' end\n"
		"  while true do t = { table.concat(t), table.concat(t) } end\n"
		"end\n",
		CL_ERR_POLICY, "limit exceeded");
	/* Caught memory errors still end at the instruction budget. */
	limited("function appraise() while true do pcall(string.rep, 'x', 1 << 30) end end",
		CL_ERR_POLICY, "limit exceeded");
	/*
	 * Few instructions, each a long call into C: the instruction budget
	 * alone would allow hours of this; the deadline stops it.
	 */
	limited("function appraise()\n"
		"  local s = string.rep('x', 1 << 22)\n"
		"  while true do local u = s:upper() end\n"
		"end\n",
		CL_ERR_POLICY, "time limit");
	limited("function appraise()\n"
		"  local t = {} for i = 1, 200000 do t[i] = (i * 7919) % 200000 end\n"
		"  while true do table.sort(t) end\n"
		"end\n",
		CL_ERR_POLICY, "time limit");
	/* And an ordinary policy still runs afterwards. */
	limited("function appraise() return { hardware = AFFIRMING } end", CL_OK, NULL);
}

/* After all of the above in this process, the default policy still appraises. */
static void test_default_after(void)
{
	struct cl_appraisal a = {0};

	CHECK_EQ_INT(eval(NULL, MEAS_A, &a), CL_OK);
	CHECK_EQ_INT(a.vector[CL_TV_EXECUTABLES], CL_TIER_CONTRAINDICATED);
	cl_appraisal_free(&a);
}

int main(void)
{
	RUN(test_globals_do_not_persist);
	RUN(test_libraries_do_not_persist);
	RUN(test_protected_calls);
	RUN(test_budget_cannot_be_caught);
	RUN(test_error_objects);
	RUN(test_finalizers);
	RUN(test_memory_and_time);
	RUN(test_default_after);
	cl_policy_thread_release();
	return test_done("policy_test");
}
