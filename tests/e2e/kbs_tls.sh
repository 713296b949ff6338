#!/bin/sh
# KBS over HTTPS (--tls-cert/--tls-key): a whole flow with curl trusting only
# the test CA (--cacert), python3-jwcrypto decrypting the JWE; without the CA,
# or in plain HTTP, curl gets nothing.
. tests/e2e/lib.sh
DEVTEE_RUN="env ASAN_OPTIONS=detect_leaks=0 $CLOISTER devtee run"
PY="/usr/bin/python3 tests/e2e/kbs_client.py"
DT=$TMP/devtee
ST=$TMP/state
SECRET="tls-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s' "$SECRET" >"$TMP/secret"
ROOT=$("$CLOISTER" devtee root --state "$DT") || fail "devtee root"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=https://127.0.0.1:$PORT

# A CA and a server certificate for 127.0.0.1 made by openssl(1), not by us.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj /CN=kbs-test-ca -keyout "$TMP/ca.key" -out "$TMP/ca.pem" 2>/dev/null || fail "CA"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
	-keyout "$TMP/tls.key" -out "$TMP/tls.csr" 2>/dev/null || fail "CSR"
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$TMP/ext"
openssl x509 -req -in "$TMP/tls.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca.key" -CAcreateserial \
	-days 2 -extfile "$TMP/ext" -out "$TMP/tls.pem" 2>/dev/null || fail "server certificate"

"$CLOISTER" kbs serve --listen 127.0.0.1:"$PORT" --state "$ST" --devtee-root "$ROOT" \
	--rate-limit 0 --tls-cert "$TMP/tls.pem" --tls-key "$TMP/tls.key" >"$TMP/kbs.log" 2>&1 &
KBS_PID=$!
trap 'kill $KBS_PID 2>/dev/null; rm -rf "$TMP"' EXIT
i=0
until grep -q "kbs: ready" "$TMP/kbs.log" 2>/dev/null; do
	i=$((i + 1))
	[ $i -gt 100 ] && { cat "$TMP/kbs.log" >&2; fail "kbs did not start"; finish; }
	sleep 0.05
done

# code BODYFILE METHOD PATH [curl args]
code() {
	out=$1 m=$2 p=$3
	shift 3
	curl -s --cacert "$TMP/ca.pem" -o "$out" -w '%{http_code}' -X "$m" -b "$TMP/jar" \
		-c "$TMP/jar" "$@" "$URL$p"
}

ADMIN="$CLOISTER kbs admin --kbs $URL --admin-key $ST/admin.key --cacert $TMP/ca.pem"
expect_exit 0 $ADMIN put-resource default/key/1 "$TMP/secret"
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

# The whole flow over TLS.
d=$TMP/f
mkdir -p "$d"
st=$(code "$d/auth" POST /kbs/v0/auth -d '{"version":"0.1.1","tee":"devtee","extra-params":""}')
[ "$st" = 200 ] || fail "auth over TLS: $st"
nonce=$(json_get nonce <"$d/auth")
$PY keygen "$d"
rd=$($PY runtime "$nonce" "$d")
$DEVTEE_RUN --state "$DT" -- "$CLOISTER" agent evidence --report-data "$rd" -o "$d/ev" ||
	fail "devtee run"
$PY attest "$d" "$d/ev" devtee >"$d/attest.json"
st=$(code "$d/token" POST /kbs/v0/attest -H 'Content-Type: application/json' --data-binary @"$d/attest.json")
[ "$st" = 200 ] || fail "attest over TLS: $st $(cat "$d/token")"
st=$(code "$d/jwe" GET /kbs/v0/resource/default/key/1)
[ "$st" = 200 ] || fail "resource over TLS: $st $(cat "$d/jwe")"
got=$($PY decrypt "$d" "$d/jwe" 2>&1)
[ "$got" = "$SECRET" ] || fail "decrypted resource differs: $got"

# Without the CA curl refuses the server (60: certificate problem); plain HTTP
# to the TLS port gets no HTTP response.
curl -s -o /dev/null "$URL/kbs/v0/jwks"
[ $? = 60 ] || fail "curl without --cacert did not refuse the certificate"
st=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/kbs/v0/jwks")
[ "$st" = 000 ] || fail "plain HTTP on the TLS port answered $st"
st=$(code "$d/jwks" GET /kbs/v0/jwks)
[ "$st" = 200 ] || fail "jwks over TLS after the refusals: $st"

kill -TERM "$KBS_PID"
wait "$KBS_PID"
[ $? = 0 ] || fail "kbs exited non-zero on SIGTERM"
if grep -q "Sanitizer\|runtime error" "$TMP/kbs.log"; then
	cat "$TMP/kbs.log" >&2
	fail "sanitizer report"
fi
finish
