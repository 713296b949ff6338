#!/bin/sh
# KBS end to end over real HTTP on loopback: curl as the client, the dev TEE
# for evidence, python3-jwcrypto to decrypt the JWE independently.
. tests/e2e/lib.sh
# LeakSanitizer cannot run inside the dev TEE's sandbox (ASan builds): leaks are
# still checked in the KBS itself.
DEVTEE_RUN="env ASAN_OPTIONS=detect_leaks=0 $CLOISTER devtee run"
# Debian's python3 carries python3-jwcrypto (scripts/deps.sh).
PY="/usr/bin/python3 tests/e2e/kbs_client.py"
DT=$TMP/devtee
ST=$TMP/state
SECRET="s3cr3t-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s' "$SECRET" >"$TMP/secret"
ROOT=$("$CLOISTER" devtee root --state "$DT") || fail "devtee root"

# A free loopback port: ask the kernel.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT

start_kbs() {
	"$CLOISTER" kbs serve --listen 127.0.0.1:"$PORT" --state "$ST" --devtee-root "$ROOT" \
		--session-ttl "${SESSION_TTL:-300}" --rate-limit 0 "$@" >"$TMP/kbs.log" 2>&1 &
	KBS_PID=$!
	i=0
	until grep -q "kbs: ready" "$TMP/kbs.log" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 100 ] && { fail "kbs did not start"; cat "$TMP/kbs.log" >&2; return 1; }
		sleep 0.05
	done
}
stop_kbs() {
	kill -TERM "$KBS_PID" 2>/dev/null
	wait "$KBS_PID" 2>/dev/null
	st=$?
	[ "$st" = 0 ] || fail "kbs exited with $st on SIGTERM"
	# sanitizer builds report here
	if grep -q "Sanitizer\|runtime error" "$TMP/kbs.log"; then
		fail "sanitizer report"
		cat "$TMP/kbs.log" >&2
	fi
}
trap 'kill $KBS_PID 2>/dev/null; [ -n "${KEEP:-}" ] && cp "$TMP/kbs.log" /tmp/kbs-e2e.log; rm -rf "$TMP"' EXIT
ADMIN="$CLOISTER kbs admin --kbs $URL --admin-key $ST/admin.key"

# code BODYFILE METHOD PATH [curl args]: print the HTTP status, body to BODYFILE.
code() {
	out=$1 m=$2 p=$3
	shift 3
	curl -s --path-as-is -o "$out" -w '%{http_code}' -X "$m" -b "$TMP/jar" -c "$TMP/jar" "$@" "$URL$p"
}
# problem_type FILE: the error name of a problem JSON
problem_type() { json_get title <"$1"; }
# refused_why WHAT BODYFILE WHY: the reason is in the KBS log, not in the response
refused_why() {
	grep -q "$3" "$2" && fail "$1: the response tells the client why: $(cat "$2")"
	grep -q "$3" "$TMP/kbs.log" || fail "$1: the log does not say why"
}

# One whole flow; the workload in the dev TEE is `cloister agent evidence`.
# flow DIR [INIT-DATA-FILE]: sets ATT (attest status) and RES (resource status).
flow() {
	d=$1
	mkdir -p "$d"
	rm -f "$TMP/jar"
	[ "$(code "$d/auth" POST /kbs/v0/auth -d '{"version":"0.1.1","tee":"devtee","extra-params":""}')" = 200 ] ||
		fail "auth"
	nonce=$(json_get nonce <"$d/auth")
	$PY keygen "$d"
	rd=$($PY runtime "$nonce" "$d")
	idopt=""
	[ -n "${2:-}" ] && idopt="--init-data $2"
	# shellcheck disable=SC2086
	$DEVTEE_RUN --state "$DT" $idopt -- "$CLOISTER" agent evidence --report-data "$rd" -o "$d/ev" ||
		fail "devtee run"
	$PY attest "$d" "$d/ev" devtee ${2:-} >"$d/attest.json"
	ATT=$(code "$d/token" POST /kbs/v0/attest -H 'Content-Type: application/json' --data-binary @"$d/attest.json")
	RES=$(code "$d/jwe" GET /kbs/v0/resource/default/key/1)
}

start_kbs || finish
expect_exit 0 $ADMIN put-resource default/key/1 "$TMP/secret"
[ "$(stat -c %a "$ST/kbs.db")" = 600 ] || fail "kbs.db is not mode 0600"

# --- no reference values yet: attestation works, but the token is not affirming -> 403
flow "$TMP/f0"
[ "$ATT" = 200 ] || fail "attest without reference values: $ATT $(cat "$TMP/f0/token")"
[ "$RES" = 403 ] || fail "resource without reference values: $RES"
[ "$(problem_type "$TMP/f0/jwe")" = PolicyDeny ] || fail "403 is not PolicyDeny"

# --- an attestation policy that accepts this dev TEE's workloads: the full flow releases
# the secret. (The launch measurement covers the report-data argument, so it differs per
# flow here; tests/e2e/kbs_postgres.sh pins one with reference values through the agent.)
cat >"$TMP/attest.lua" <<'LUA'
policy_id = "test:devtee-any"
function appraise(claims, ctx)
  local v = {}
  v.executables = (claims.platform == "devtee" and not claims.debug) and AFFIRMING or CONTRAINDICATED
  v.hardware = AFFIRMING
  v["instance-identity"] = claims.report_data == ctx.report_data and AFFIRMING or CONTRAINDICATED
  return v
end
LUA
expect_exit 0 $ADMIN set-policy "$TMP/attest.lua"
flow "$TMP/f1"
[ "$ATT" = 200 ] || fail "attest: $ATT $(cat "$TMP/f1/token")"
[ "$RES" = 200 ] || fail "resource: $RES $(cat "$TMP/f1/jwe")"
got=$($PY decrypt "$TMP/f1" "$TMP/f1/jwe" 2>&1)
[ "$got" = "$SECRET" ] || fail "decrypted resource differs: $got"
# Trustee layout: flattened JWE, epk in the protected header
python3 -c '
import json,sys,base64
j=json.load(open(sys.argv[1])); p=j["protected"]; p+="="*(-len(p)%4)
h=json.loads(base64.urlsafe_b64decode(p))
assert h["alg"]=="ECDH-ES+A256KW" and h["enc"]=="A256GCM" and "epk" in h, h
assert set(j)=={"protected","encrypted_key","iv","ciphertext","tag"}, j.keys()' "$TMP/f1/jwe" || fail "JWE shape"

# Bearer token works without the cookie
TOKEN=$(json_get token <"$TMP/f1/token")
st=$(curl -s -o "$TMP/b.jwe" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$URL/kbs/v0/resource/default/key/1")
[ "$st" = 200 ] || fail "bearer: $st"
# forged token: flip a signature character
FORGED=$(printf '%s' "$TOKEN" | python3 -c 'import sys; t=sys.stdin.read(); print(t[:-3]+("A" if t[-3]!="A" else "B")+t[-2:])')
st=$(curl -s -o "$TMP/f.json" -w '%{http_code}' -H "Authorization: Bearer $FORGED" "$URL/kbs/v0/resource/default/key/1")
[ "$st" = 401 ] || fail "forged bearer: $st"
[ "$(problem_type "$TMP/f.json")" = TokenVerifierError ] || fail "forged bearer problem type"

# --- wrong nonce: attest with runtime data for another nonce
rm -f "$TMP/jar"
code "$TMP/w.auth" POST /kbs/v0/auth -d '{"version":"0.1.1","tee":"devtee","extra-params":""}' >/dev/null
cp "$TMP/f1/attest.json" "$TMP/w.json" # carries f1's (spent) nonce
st=$(code "$TMP/w.out" POST /kbs/v0/attest --data-binary @"$TMP/w.json")
[ "$st" = 401 ] || fail "wrong nonce: $st"
refused_why "wrong nonce" "$TMP/w.out" "not this session"

# --- reused nonce: replay f1's attest on f1's session cookie
rm -f "$TMP/jar"
flow "$TMP/f2"
[ "$ATT" = 200 ] || fail "f2 attest"
st=$(code "$TMP/r.out" POST /kbs/v0/attest --data-binary @"$TMP/f2/attest.json")
[ "$st" = 401 ] || fail "reused nonce: $st"
refused_why "reused nonce" "$TMP/r.out" "already been used"

# --- report data not bound to the key: evidence for f2's key, runtime data with f3's key
mkdir -p "$TMP/f3"
rm -f "$TMP/jar"
code "$TMP/f3/auth" POST /kbs/v0/auth -d '{"version":"0.1.1","tee":"devtee","extra-params":""}' >/dev/null
$PY keygen "$TMP/f3"
$PY runtime "$(json_get nonce <"$TMP/f3/auth")" "$TMP/f3" >/dev/null
$PY attest "$TMP/f3" "$TMP/f2/ev" devtee >"$TMP/f3/attest.json"
st=$(code "$TMP/f3/out" POST /kbs/v0/attest --data-binary @"$TMP/f3/attest.json")
[ "$st" = 401 ] || fail "unbound report data: $st"
refused_why "unbound report data" "$TMP/f3/out" "report data\|report_data\|REPORT_DATA"
st=$(code "$TMP/f3/res" GET /kbs/v0/resource/default/key/1)
[ "$st" = 401 ] || fail "resource after failed attest: $st"

# --- init-data bound into HOST_DATA; a different init-data is refused
printf 'algorithm = "sha384"\nversion = "0.1.0"\n' >"$TMP/init.toml"
flow "$TMP/f4" "$TMP/init.toml"
[ "$ATT" = 200 ] && [ "$RES" = 200 ] || fail "init-data flow: $ATT $RES $(cat "$TMP/f4/token")"
printf 'tampered\n' >"$TMP/init2.toml"
$PY attest "$TMP/f4" "$TMP/f4/ev" devtee "$TMP/init2.toml" >/dev/null
rm -f "$TMP/jar"
mkdir -p "$TMP/f5"
code "$TMP/f5/auth" POST /kbs/v0/auth -d '{"version":"0.1.1","tee":"devtee","extra-params":""}' >/dev/null
$PY keygen "$TMP/f5"
rd=$($PY runtime "$(json_get nonce <"$TMP/f5/auth")" "$TMP/f5")
$DEVTEE_RUN --state "$DT" --init-data "$TMP/init.toml" -- "$CLOISTER" agent evidence --report-data "$rd" -o "$TMP/f5/ev"
$PY attest "$TMP/f5" "$TMP/f5/ev" devtee "$TMP/init2.toml" >"$TMP/f5/attest.json"
st=$(code "$TMP/f5/out" POST /kbs/v0/attest --data-binary @"$TMP/f5/attest.json")
[ "$st" = 401 ] || fail "wrong init-data: $st"

# --- a resource policy for the repository that names another measurement denies
cat >"$TMP/deny.lua" <<'LUA'
function release(ear, resource)
  local m = ear.submods.cpu0.ear_veraison_annotated_evidence.devtee.measurement
  return m == "00" and resource.repository == "default", "measurement not allowed"
end
LUA
expect_exit 0 $ADMIN set-policy --resource default "$TMP/deny.lua"
flow "$TMP/f6"
[ "$ATT" = 200 ] && [ "$RES" = 403 ] || fail "repository policy: $ATT $RES"
# a more specific policy for the path wins
printf 'function release(ear, r) return ear.ear_status == "affirming" and r.tag == "1" end\n' >"$TMP/allow.lua"
expect_exit 0 $ADMIN set-policy --resource default/key/1 "$TMP/allow.lua"
flow "$TMP/f7"
[ "$RES" = 200 ] || fail "path policy: $RES"

# --- path traversal, malformed and oversized bodies
for p in /kbs/v0/resource/default/../key/1 /kbs/v0/resource/default/key/..%2f1 /kbs/v0/resource/a/b \
	/kbs/v0/resource/../../etc/passwd; do
	st=$(code "$TMP/p.out" GET "$p")
	[ "$st" = 404 ] || fail "traversal $p: $st"
done
st=$(code "$TMP/m.out" POST /kbs/v0/auth -d '{"version":')
[ "$st" = 400 ] || fail "malformed auth: $st"
head -c 3000000 /dev/zero | tr '\0' 'a' >"$TMP/big"
st=$(code "$TMP/big.out" POST /kbs/v0/attest --data-binary @"$TMP/big")
[ "$st" = 413 ] || fail "oversized body: $st"

# --- admin API: unauthenticated or forged calls change nothing
st=$(code "$TMP/a.out" POST /kbs/v0/resource/default/key/1 --data-binary x)
[ "$st" = 401 ] || fail "unauthenticated put: $st"
"$CLOISTER" kbs admin --kbs "$URL" --admin-key "$ST/token.key" put-resource default/key/1 "$TMP/big" >/dev/null 2>&1 &&
	fail "put with a key that is not the admin key"
st=$(code "$TMP/a.out" POST /kbs/v0/resource-policy --data-binary 'function release() return true end')
[ "$st" = 401 ] || fail "unauthenticated policy: $st"
flow "$TMP/f8"
[ "$($PY decrypt "$TMP/f8" "$TMP/f8/jwe")" = "$SECRET" ] || fail "secret changed by a refused admin call"

# --- expired session
stop_kbs
SESSION_TTL=1 start_kbs
rm -f "$TMP/jar"
mkdir -p "$TMP/f9"
code "$TMP/f9/auth" POST /kbs/v0/auth -d '{"version":"0.1.1","tee":"devtee","extra-params":""}' >/dev/null
SID=$(awk '/kbs-session-id/{print $7}' "$TMP/jar")
sleep 2
$PY keygen "$TMP/f9"
rd=$($PY runtime "$(json_get nonce <"$TMP/f9/auth")" "$TMP/f9")
$DEVTEE_RUN --state "$DT" -- "$CLOISTER" agent evidence --report-data "$rd" -o "$TMP/f9/ev"
$PY attest "$TMP/f9" "$TMP/f9/ev" devtee >"$TMP/f9/attest.json"
# curl drops the expired cookie itself; send it by hand so the server has to refuse it
st=$(curl -s -o "$TMP/f9/out" -w '%{http_code}' -H "Cookie: kbs-session-id=$SID" \
	--data-binary @"$TMP/f9/attest.json" "$URL/kbs/v0/attest")
[ "$st" = 401 ] || fail "expired session: $st"
refused_why "expired session" "$TMP/f9/out" expired

# --- audit, metrics, and the secret never at rest or in logs
expect_exit 0 $ADMIN audit
grep -q '"release"' "$OUT" && grep -q '"deny"' "$OUT" || fail "audit lacks release/deny entries"
expect_exit 0 "$CLOISTER" kbs audit --state "$ST" --since 2000-01-01T00:00:00Z
grep -q 'sha256:' "$OUT" || fail "local audit lacks claims digests"
curl -s "$URL/metrics" >"$TMP/metrics"
grep -q '^kbs_requests_total{endpoint="auth",code="2xx"}' "$TMP/metrics" || fail "metrics"
stop_kbs
grep -q '^kbs_' "$TMP/metrics" || fail "metrics format"
for f in "$ST"/kbs.db* "$TMP/kbs.log"; do
	[ -e "$f" ] || continue
	if grep -q -a "$SECRET" "$f"; then fail "secret found in $f"; fi
done
finish
