#!/bin/sh
# Attested TLS end to end on loopback: an HTTP upstream behind `serve` in the
# dev TEE, `connect` in front of curl; bodies of 0 B, 1 kB and 100 MiB both
# ways, byte for byte; openssl s_client and x509 as independent parsers; and
# the refusals (measurement not in the reference values, evidence for another
# key, a replayed server flight, an expired certificate, malformed
# extensions), each before the upstream sees a byte.
#
# CLOISTER_E2E_NO_LARGE=1 skips the 100 MiB bodies (sanitizer builds of the
# binary skip them by themselves).
set -u
. "$(dirname "$0")/lib.sh"
H="python3 $(dirname "$0")/ratls_helper.py"
NOLEAK=ASAN_OPTIONS=detect_leaks=0
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
bg() { "$@" & PIDS="$PIDS $!"; }
wait_file() {
	i=0
	while [ ! -s "$1" ] && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
	[ -s "$1" ] || fail "$1 never appeared"
}
hits() { wc -l <"$TMP/hits" 2>/dev/null || echo 0; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

expect_exit 0 "$CLOISTER" serve --help
expect_exit 0 "$CLOISTER" connect --help
expect_exit 2 "$CLOISTER" serve --listen 127.0.0.1:0
expect_exit 2 "$CLOISTER" connect --server 127.0.0.1:1
expect_exit 2 "$CLOISTER" connect --bogus
expect_exit 2 "$CLOISTER" serve --listen 127.0.0.1:0 --upstream 127.0.0.1:1 --cert-ttl 5
# No TEE here outside the dev TEE: serve refuses to start.
expect_exit 1 env -u CLOISTER_DEVTEE_FD "$CLOISTER" serve --listen 127.0.0.1:0 --upstream 127.0.0.1:1

S=$TMP/state
# The dev TEE hides its state directory from workloads: the root goes beside it.
cp "$("$CLOISTER" devtee root --state "$S")" "$TMP/root.pem"
ROOT=$TMP/root.pem
mkdir "$TMP/www"
: >"$TMP/www/empty.bin"
head -c 1000 /dev/urandom >"$TMP/www/small.bin"
LARGE=1
if [ "${CLOISTER_E2E_NO_LARGE:-0}" = 1 ] || grep -q __asan_init "$CLOISTER"; then LARGE=0; fi
[ $LARGE = 1 ] && head -c $((100 * 1024 * 1024)) /dev/urandom >"$TMP/www/large.bin"

bg $H upstream "$TMP/www" "$TMP/up.port" "$TMP/hits"
wait_file "$TMP/up.port"
UP=127.0.0.1:$(cat "$TMP/up.port")

SERVE="$CLOISTER serve --listen 127.0.0.1:0 --upstream $UP --cert-ttl 600 --ready-file $TMP/serve.addr"
bg env $NOLEAK "$CLOISTER" devtee run --state "$S" -- $SERVE 2>"$TMP/serve.log"
wait_file "$TMP/serve.addr"
SRV=$(cat "$TMP/serve.addr")
M=$("$CLOISTER" devtee measure -- $SERVE)
printf '{"devtee": {"measurement": ["%s"]}}\n' "$M" >"$TMP/rv.json"
printf '{"devtee": {"measurement": ["%s"]}}\n' "$(printf '%096d' 0)" >"$TMP/rv-other.json"
V="--devtee-root $ROOT --reference-values $TMP/rv.json"

# The server verifies as the workload we measured.
expect_exit 0 "$CLOISTER" connect --check --server "$SRV" $V
expect_json status verified
expect_json format devtee
expect_json source ccc
expect_exit 0 "$CLOISTER" connect --check --fresh --server "$SRV" $V
expect_json claims.measurement "$M"

# openssl as an independent client and parser.
openssl s_client -connect "$SRV" -showcerts </dev/null >"$TMP/sclient" 2>&1
grep -q "BEGIN CERTIFICATE" "$TMP/sclient" || fail "s_client completed no handshake"
openssl x509 -in "$TMP/sclient" -out "$TMP/server.pem" 2>/dev/null || fail "x509 cannot read the certificate"
openssl x509 -in "$TMP/server.pem" -noout -text >"$TMP/x509.txt" 2>&1 || fail "x509 -text failed"
grep -q "2.23.133.5.4.9" "$TMP/x509.txt" || fail "no CCC RA-TLS extension in x509 -text"
grep -q "1.3.6.1.5.5.7.1.35" "$TMP/x509.txt" || fail "no CMW extension in x509 -text"
grep -q "ASN1 OID: prime256v1" "$TMP/x509.txt" || fail "the TLS key is not P-256"

# Requests and responses through connect -> serve, byte for byte.
bg "$CLOISTER" --log-level info connect --listen 127.0.0.1:0 --server "$SRV" $V \
	--ready-file "$TMP/conn.addr" 2>"$TMP/conn.log"
wait_file "$TMP/conn.addr"
L=$(cat "$TMP/conn.addr")
sizes="empty small"
[ $LARGE = 1 ] && sizes="$sizes large"
for s in $sizes; do
	curl -sf -o "$TMP/got.$s" "http://$L/$s.bin" || fail "GET $s through the proxies"
	[ "$(sha "$TMP/got.$s")" = "$(sha "$TMP/www/$s.bin")" ] || fail "GET $s differs"
	curl -sf -o "$TMP/echo.$s" --data-binary "@$TMP/www/$s.bin" -H 'Content-Type: application/octet-stream' \
		"http://$L/echo" || fail "POST $s through the proxies"
	[ "$(sha "$TMP/echo.$s")" = "$(sha "$TMP/www/$s.bin")" ] || fail "POST $s differs"
done
# Several at once, on one event loop.
for i in 1 2 3 4 5 6; do curl -sf -o "$TMP/par.$i" "http://$L/small.bin" & done
sleep 0.5
for i in 1 2 3 4 5 6; do cmp -s "$TMP/par.$i" "$TMP/www/small.bin" || fail "parallel GET $i"; done
# Half-close: the request's end travels as EOF, the reply still comes back.
python3 - "$L" <<'PY' || fail "half-close through the proxies"
import socket, sys
h, p = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((h, int(p)))
s.sendall(b"GET /small.bin HTTP/1.0\r\n\r\n")
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    got += d
sys.exit(0 if got.startswith(b"HTTP/1.1 200") and len(got) > 1000 else 1)
PY

# Refusals: curl gets nothing, the upstream sees nothing.
before=$(hits)
bg "$CLOISTER" connect --listen 127.0.0.1:0 --server "$SRV" --devtee-root "$ROOT" \
	--reference-values "$TMP/rv-other.json" --ready-file "$TMP/bad.addr" 2>"$TMP/bad.log"
wait_file "$TMP/bad.addr"
curl -sf -o /dev/null "http://$(cat "$TMP/bad.addr")/small.bin" && fail "a refused server got a request through"
expect_exit 1 "$CLOISTER" connect --check --server "$SRV" --devtee-root "$ROOT" --reference-values "$TMP/rv-other.json"
grep -q "measurement is not in the reference values" "$OUT" || fail "the refusal names the measurement"
sleep 0.3
grep -q "measurement is not in the reference values" "$TMP/bad.log" || fail "connect logs why it refused"

# Expired: the same certificate judged an hour after its ten minutes ran out.
later=$(date -u -d '+70 minutes' +%Y-%m-%dT%H:%M:%SZ)
expect_exit 1 "$CLOISTER" connect --check --server "$SRV" $V --at "$later"
grep -q "expired" "$OUT" || fail "the refusal says expired"

# Evidence that belongs to another key: the extension copied into a new certificate.
ext=$($H extvalue "$TMP/server.pem" 0606678105050409)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=stolen -days 1 \
	-addext "2.23.133.5.4.9=DER:$ext" -keyout "$TMP/k2.pem" -out "$TMP/stolen.pem" 2>/dev/null ||
	fail "cannot make the stolen-evidence certificate"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=junk -days 1 \
	-addext "2.23.133.5.4.9=DER:d9ea608241514100" -keyout "$TMP/k3.pem" -out "$TMP/junk.pem" 2>/dev/null ||
	fail "cannot make the malformed certificate"
for c in stolen junk; do
	port=$($H freeport)
	key=$TMP/k2.pem
	[ $c = junk ] && key=$TMP/k3.pem
	bg openssl s_server -quiet -accept "127.0.0.1:$port" -cert "$TMP/$c.pem" -key "$key" -www
	i=0
	until python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])))' "$port" 2>/dev/null ||
		[ $i -ge 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	expect_exit 1 "$CLOISTER" connect --check --server "127.0.0.1:$port" $V
	expect_json status rejected
	[ $c = stolen ] && { grep -q "key binding broken" "$OUT" || fail "stolen evidence: $(cat "$OUT")"; }
	[ $c = junk ] && { grep -q "RA-TLS" "$OUT" || fail "malformed extension: $(cat "$OUT")"; }
done

# A replayed server flight: recorded from the real server, played to a new client.
bg $H relay "$SRV" "$TMP/relay.port" "$TMP/flight.bin"
wait_file "$TMP/relay.port"
"$CLOISTER" connect --check --server "127.0.0.1:$(cat "$TMP/relay.port")" $V >/dev/null 2>&1 ||
	fail "the relayed handshake should verify"
sleep 0.3
bg $H replay "$TMP/flight.bin" "$TMP/replay.port"
wait_file "$TMP/replay.port"
expect_exit 1 "$CLOISTER" connect --check --server "127.0.0.1:$(cat "$TMP/replay.port")" $V
[ "$(hits)" -eq "$before" ] || fail "the upstream saw requests from refused connections"

# Client attestation: required, so a client without a certificate is turned away.
SERVE2="$CLOISTER serve --listen 127.0.0.1:0 --upstream $UP --require-client-attestation --devtee-root $ROOT --reference-values $TMP/rv.json --ready-file $TMP/serve2.addr"
bg env $NOLEAK "$CLOISTER" devtee run --state "$S" -- $SERVE2 2>"$TMP/serve2.log"
wait_file "$TMP/serve2.addr"
M2=$("$CLOISTER" devtee measure -- $SERVE2)
printf '{"devtee": {"measurement": ["%s"]}}\n' "$M2" >"$TMP/rv2.json"
bg "$CLOISTER" connect --listen 127.0.0.1:0 --server "$(cat "$TMP/serve2.addr")" --devtee-root "$ROOT" \
	--reference-values "$TMP/rv2.json" --ready-file "$TMP/c2.addr" 2>"$TMP/c2.log"
wait_file "$TMP/c2.addr"
curl -sf -o /dev/null "http://$(cat "$TMP/c2.addr")/small.bin" && fail "an unattested client got a request through"
[ "$(hits)" -eq "$before" ] || fail "an unattested client reached the upstream"

# Mutual attestation: both ends in the dev TEE, each appraising the other's
# launch measurement. Every command line is fixed before launch (the server's
# port chosen up front) so both measurements can be written down first.
P3=$($H freeport)
SERVE3="$CLOISTER serve --listen 127.0.0.1:$P3 --upstream $UP --require-client-attestation --devtee-root $ROOT --reference-values $TMP/rv-clients.json --ready-file $TMP/serve3.addr"
CONN3="$CLOISTER connect --listen 127.0.0.1:0 --server 127.0.0.1:$P3 --client-attest --devtee-root $ROOT --reference-values $TMP/rv3.json --ready-file $TMP/c3.addr"
# Same binary and options but another argv, so another measurement.
CONN4="$CLOISTER connect --listen 127.0.0.1:0 --server 127.0.0.1:$P3 --client-attest --devtee-root $ROOT --reference-values $TMP/rv3.json --ready-file $TMP/c4.addr"
printf '{"devtee": {"measurement": ["%s"]}}\n' "$("$CLOISTER" devtee measure -- $SERVE3)" >"$TMP/rv3.json"
printf '{"devtee": {"measurement": ["%s"]}}\n' "$("$CLOISTER" devtee measure -- $CONN3)" >"$TMP/rv-clients.json"
bg env $NOLEAK "$CLOISTER" devtee run --state "$S" -- $SERVE3 2>"$TMP/serve3.log"
wait_file "$TMP/serve3.addr"
bg env $NOLEAK "$CLOISTER" devtee run --state "$S" -- $CONN3 2>"$TMP/c3.log"
wait_file "$TMP/c3.addr"
curl -sf -o "$TMP/mutual.small" "http://$(cat "$TMP/c3.addr")/small.bin" ||
	fail "an attested client in the reference values was refused: $(cat "$TMP/serve3.log")"
cmp -s "$TMP/mutual.small" "$TMP/www/small.bin" || fail "GET through mutual attestation differs"
curl -sf -o "$TMP/mutual.echo" --data-binary "@$TMP/www/small.bin" -H 'Content-Type: application/octet-stream' \
	"http://$(cat "$TMP/c3.addr")/echo" || fail "POST through mutual attestation"
cmp -s "$TMP/mutual.echo" "$TMP/www/small.bin" || fail "POST through mutual attestation differs"
grep -q "handshake with a client failed" "$TMP/serve3.log" && fail "serve refused the good client: $(cat "$TMP/serve3.log")"
before=$(hits)
bg env $NOLEAK "$CLOISTER" devtee run --state "$S" -- $CONN4 2>"$TMP/c4.log"
wait_file "$TMP/c4.addr"
curl -sf -o /dev/null "http://$(cat "$TMP/c4.addr")/small.bin" && fail "an attested client outside the reference values got a request through"
sleep 0.3
[ "$(hits)" -eq "$before" ] || fail "a client outside the reference values reached the upstream"
grep -q "measurement is not in the reference values" "$TMP/serve3.log" ||
	fail "serve logs why it refused the client: $(cat "$TMP/serve3.log")"

# Graceful shutdown: SIGTERM ends connect with status 0.
cpid=$(pgrep -f "ready-file $TMP/conn.addr" | head -1)
if [ -n "$cpid" ]; then
	kill -TERM "$cpid"
	i=0
	while kill -0 "$cpid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	kill -0 "$cpid" 2>/dev/null && fail "connect did not stop on SIGTERM"
fi
finish
