#!/bin/sh
# `connect --check` keeps one deadline for the handshake, verification and
# the attestation exchange: a server that trickles a TLS record one byte a
# second cannot hold it past --handshake-timeout.
set -u
. "$(dirname "$0")/lib.sh"
"$CLOISTER" devtee root --state "$TMP/dt" >/dev/null || fail "devtee root"
cat >"$TMP/trickle.py" <<'PY'
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(4)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
c, _ = s.accept()
c.recv(4096)
# A TLS handshake record header promising 16000 bytes, then one byte a second.
c.sendall(bytes([22, 3, 3, 0x3e, 0x80]))
for _ in range(60):
    try:
        c.sendall(b"\x02")
    except OSError:
        break
    time.sleep(1)
PY
python3 "$TMP/trickle.py" "$TMP/port" &
srv=$!
i=0
while [ ! -s "$TMP/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
start=$(date +%s)
expect_exit 1 "$CLOISTER" connect --check --server 127.0.0.1:"$(cat "$TMP/port")" \
	--devtee-root "$TMP/dt/root.pem" --handshake-timeout 2
took=$(($(date +%s) - start))
[ "$took" -le 8 ] || fail "a trickling server held connect --check for ${took}s (deadline 2 s)"
kill "$srv" 2>/dev/null
wait "$srv" 2>/dev/null
finish
