#!/bin/sh
# Resource and appraisal policies through the KBS on ONE worker thread, so every
# request meets the same Lua state: 1,000 decisions in a row from a stateful
# policy must all be the same, a policy that sets a global for an affirming
# client must not release to the next, contraindicated one, and a policy that
# tries to outrun its limits must neither stall the other requests nor keep
# SIGTERM from stopping the KBS. Then `cloister verify --policy` with the same
# kinds of policy.
. tests/e2e/lib.sh
DEVTEE_RUN="env ASAN_OPTIONS=detect_leaks=0 $CLOISTER devtee run"
PY="/usr/bin/python3 tests/e2e/kbs_client.py"
DT=$TMP/devtee
ST=$TMP/state
N=${POLICY_RUNS:-1000}
ROOT=$("$CLOISTER" devtee root --state "$DT") || fail "devtee root"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
KBS_PID=

start_kbs() {
	"$CLOISTER" kbs serve --listen 127.0.0.1:"$PORT" --state "$ST" --devtee-root "$ROOT" \
		--threads 1 --rate-limit 0 >"$TMP/kbs.log" 2>&1 &
	KBS_PID=$!
	i=0
	until grep -q "kbs: ready" "$TMP/kbs.log" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 100 ] && { fail "kbs did not start"; cat "$TMP/kbs.log" >&2; return 1; }
		sleep 0.05
	done
}
# stop_kbs SECONDS: SIGTERM, and the KBS must be gone within SECONDS.
stop_kbs() {
	kill -TERM "$KBS_PID" 2>/dev/null
	i=0
	while kill -0 "$KBS_PID" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt $(($1 * 10)) ]; then
			fail "kbs still running $1 s after SIGTERM"
			kill -KILL "$KBS_PID" 2>/dev/null
			break
		fi
		sleep 0.1
	done
	wait "$KBS_PID" 2>/dev/null
	st=$?
	[ "$st" = 0 ] || fail "kbs exited with $st on SIGTERM"
	if grep -q "Sanitizer\|runtime error" "$TMP/kbs.log"; then
		fail "sanitizer report"
		cat "$TMP/kbs.log" >&2
	fi
	KBS_PID=
}
trap '[ -n "$KBS_PID" ] && kill -KILL $KBS_PID 2>/dev/null; [ -n "${KEEP:-}" ] && cp "$TMP/kbs.log" /tmp/policy-kbs.log; rm -rf "$TMP"' EXIT
ADMIN="$CLOISTER kbs admin --kbs $URL --admin-key $ST/admin.key"

# token DIR: one attestation through the dev TEE; prints the EAR token.
token() {
	d=$1
	mkdir -p "$d"
	curl -s -o "$d/auth" -c "$d/jar" "$URL/kbs/v0/auth" \
		-d '{"version":"0.1.1","tee":"devtee","extra-params":""}'
	$PY keygen "$d"
	rd=$($PY runtime "$(json_get nonce <"$d/auth")" "$d")
	$DEVTEE_RUN --state "$DT" -- "$CLOISTER" agent evidence --report-data "$rd" -o "$d/ev" ||
		fail "devtee run"
	$PY attest "$d" "$d/ev" devtee >"$d/attest.json"
	curl -s -o "$d/token" -b "$d/jar" -H 'Content-Type: application/json' \
		--data-binary @"$d/attest.json" "$URL/kbs/v0/attest"
	json_get token <"$d/token"
}

# hammer COUNT PATH:TOKEN:WANT...: COUNT GETs on one connection, cycling through
# the specs; each must answer WANT.
hammer() {
	python3 - "$PORT" "$@" <<'PY'
import http.client, sys
port, n, specs = int(sys.argv[1]), int(sys.argv[2]), [s.split(":") for s in sys.argv[3:]]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
bad = 0
for i in range(n):
    path, tok, want = specs[i % len(specs)]
    status = None
    for attempt in (0, 1):  # once more if the server closed a kept-alive connection
        try:
            c.request("GET", "/kbs/v0/resource/" + path, headers={"Authorization": "Bearer " + tok})
            r = c.getresponse()
            r.read()
            status = str(r.status)
            break
        except TimeoutError:
            print(f"  request {i} for {path}: no answer in 10 s", file=sys.stderr)
            sys.exit(1)
        except (http.client.HTTPException, ConnectionError):
            c.close()
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    if status != want:
        if bad == 0:
            print(f"  request {i} for {path}: {status}, want {want}", file=sys.stderr)
        bad += 1
if bad:
    print(f"  {bad} of {n} requests got another answer", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

start_kbs || finish
for p in counter/1 leak/1 stuck/1 xpcall/1 gc/1 ok/1; do
	printf 'secret-%s' "$p" >"$TMP/res"
	expect_exit 0 $ADMIN put-resource "default/$p" "$TMP/res"
done

# A token that is not affirming (no attestation policy, no reference values),
# then one that is.
DENIED=$(token "$TMP/t0")
[ -n "$DENIED" ] || fail "no token for the unaffirmed client"
cat >"$TMP/attest.lua" <<'LUA'
function appraise(claims, ctx)
  return { executables = claims.platform == "devtee" and AFFIRMING or CONTRAINDICATED,
           hardware = AFFIRMING,
           ["instance-identity"] = claims.report_data == ctx.report_data and AFFIRMING
                                   or CONTRAINDICATED }
end
LUA
expect_exit 0 $ADMIN set-policy "$TMP/attest.lua"
GOOD=$(token "$TMP/t1")
[ -n "$GOOD" ] || fail "no token for the affirmed client"

# --- state: a counter, and a verdict kept in a global by a missing `local`
cat >"$TMP/counter.lua" <<'LUA'
function release(ear, resource)
  calls = (calls or 0) + 1
  return calls == 1 and ear.ear_status == "affirming", "call " .. calls
end
LUA
cat >"$TMP/leak.lua" <<'LUA'
function release(ear, resource)
  if ear.ear_status == "affirming" then allowed = true; string.allowed = true end
  return allowed == true or string.allowed == true, "not affirming"
end
LUA
expect_exit 0 $ADMIN set-policy --resource default/counter/1 "$TMP/counter.lua"
expect_exit 0 $ADMIN set-policy --resource default/leak/1 "$TMP/leak.lua"
hammer "$N" "default/counter/1:$GOOD:200" || fail "counter policy: not the same verdict $N times"
hammer "$N" "default/leak/1:$GOOD:200" "default/leak/1:$DENIED:403" ||
	fail "leak policy: a verdict carried from one client to the next"
# The same token stays refused on its own.
hammer 10 "default/leak/1:$DENIED:403" || fail "leak policy: unaffirmed client released"

# --- limits: policies that try to run for ever are cut off, the others go on
cat >"$TMP/stuck.lua" <<'LUA'
function release(ear, resource)
  while true do pcall(function() while true do end end) end
end
LUA
cat >"$TMP/xpcall.lua" <<'LUA'
function release(ear, resource)
  while true do xpcall(function() while true do end end, function() while true do end end) end
end
LUA
cat >"$TMP/gc.lua" <<'LUA'
function release(ear, resource)
  setmetatable({}, { __gc = function() while true do end end })
  return true
end
LUA
printf 'function release(ear, r) return ear.ear_status == "affirming" end\n' >"$TMP/ok.lua"
for p in stuck xpcall gc ok; do
	expect_exit 0 $ADMIN set-policy --resource "default/$p/1" "$TMP/$p.lua"
done
for p in stuck xpcall gc; do
	t0=$(date +%s)
	st=$(curl -s --max-time 20 -o "$TMP/$p.out" -w '%{http_code}' \
		-H "Authorization: Bearer $GOOD" "$URL/kbs/v0/resource/default/$p/1")
	[ "$st" = 403 ] || fail "$p policy: $st, want 403"
	[ $(($(date +%s) - t0)) -le 5 ] || fail "$p policy took more than 5 s"
	grep -qs "limit\|__gc\|policy:" "$TMP/$p.out" && fail "$p: policy error text sent to the client"
	st=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' \
		-H "Authorization: Bearer $GOOD" "$URL/kbs/v0/resource/default/ok/1")
	[ "$st" = 200 ] || fail "after the $p policy, another request got $st"
done
# The finalizer was refused, so garbage collection has nothing to run.
hammer 200 "default/ok/1:$GOOD:200" "default/counter/1:$GOOD:200" || fail "requests after gc"
# Stuck requests in flight when SIGTERM arrives do not hold the KBS up.
for i in 1 2 3; do
	curl -s --max-time 30 -o /dev/null -H "Authorization: Bearer $GOOD" \
		"$URL/kbs/v0/resource/default/stuck/1" &
done
sleep 0.3
stop_kbs 5
wait
expect_exit 0 "$CLOISTER" kbs audit --state "$ST" --since 2000-01-01T00:00:00Z
grep -q "instruction limit exceeded" "$OUT" || fail "the audit does not name the limit"
grep -q "__gc" "$OUT" || fail "the audit does not name the refused finalizer"

# --- the CLI: the same kinds of policy, one appraisal per process
T=$V/sev-snp/trustee
verify() {
	timeout 30 "$CLOISTER" verify --offline --cache-dir "$TMP/cache" --vcek "$T/test-vcek.der" \
		--at 2025-06-01T00:00:00Z "$@" "$T/test-report.bin"
}
cat >"$TMP/v_counter.lua" <<'LUA'
loads = (loads or 0) + 1
function appraise(claims, ctx)
  calls = (calls or 0) + 1
  local ok = loads == 1 and calls == 1 and claims.platform == "snp" and not string.seen
  string.seen = true
  return { executables = ok and AFFIRMING or CONTRAINDICATED, hardware = AFFIRMING }
end
LUA
for i in 1 2 3; do
	expect_exit 0 verify --policy "$TMP/v_counter.lua"
	expect_json appraisal.status affirming
done
printf 'function appraise() while true do pcall(function() while true do end end) end end\n' \
	>"$TMP/v_stuck.lua"
t0=$(date +%s)
expect_exit 2 verify --policy "$TMP/v_stuck.lua"
[ $(($(date +%s) - t0)) -le 5 ] || fail "verify with a looping policy took more than 5 s"
grep -q "instruction limit" "$ERR" || fail "verify does not name the limit: $(cat "$ERR")"
printf 'function appraise() error("line\\n\\27[2Jspoof") end\n' >"$TMP/v_err.lua"
expect_exit 2 verify --policy "$TMP/v_err.lua"
grep -q "line??\[2Jspoof" "$ERR" || fail "policy error text not cleaned: $(od -c "$ERR" | head)"
finish
