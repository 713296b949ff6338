#!/bin/sh
# Audit completeness under SIGKILL: concurrent admin resource uploads while
# `cloister kbs serve` is killed with SIGKILL, again and again. Afterwards every
# resource in the store has the audit entry of its upload, and every upload
# that was acknowledged is in the store.
. tests/e2e/lib.sh
PY=/usr/bin/python3
ROUNDS=${KILL_ROUNDS:-15}
ST=$TMP/state
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
KBS_PID=
trap 'kill -9 $KBS_PID 2>/dev/null; rm -rf "$TMP"' EXIT

# writer SECONDS: 8 threads upload fresh paths until the KBS goes away or time runs
# out; each acknowledged path is appended to $TMP/acked.
cat >"$TMP/writer.py" <<'PY'
import base64, http.client, json, sys, threading, time
from cryptography.hazmat.primitives import serialization
key = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), None)
port, secs, rnd = int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
now = int(time.time())
si = b64(b'{"alg":"EdDSA","typ":"JWT"}') + "." + b64(json.dumps(
    {"iat": now, "exp": now + 600, "role": "admin"}).encode())
tok = si + "." + b64(key.sign(si.encode()))
lock, acked = threading.Lock(), open(sys.argv[5], "a")
end = time.time() + secs
def run(t):
    i = 0
    while time.time() < end:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            while time.time() < end:
                p = "kill/r%s-t%d/n%d" % (rnd, t, i)
                i += 1
                c.request("POST", "/kbs/v0/resource/" + p, body=b"v-" + p.encode(),
                          headers={"Authorization": "Bearer " + tok})
                r = c.getresponse(); r.read()
                if r.status == 200:
                    with lock:
                        acked.write(p + "\n"); acked.flush()
        except Exception:
            return
ts = [threading.Thread(target=run, args=(t,)) for t in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
PY

start_kbs() {
	: >"$TMP/kbs.log"
	"$CLOISTER" kbs serve --listen 127.0.0.1:"$PORT" --state "$ST" --rate-limit 0 --threads 8 \
		>"$TMP/kbs.log" 2>&1 &
	KBS_PID=$!
	i=0
	until grep -q "kbs: ready" "$TMP/kbs.log" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 200 ] && { fail "kbs did not start"; cat "$TMP/kbs.log" >&2; return 1; }
		sleep 0.05
	done
}

: >"$TMP/acked"
r=0
while [ $r -lt "$ROUNDS" ]; do
	r=$((r + 1))
	start_kbs || break
	$PY "$TMP/writer.py" "$ST/admin.key" "$PORT" 5 "$r" "$TMP/acked" &
	WPID=$!
	# kill somewhere between 0.3 and 1.0 s into the uploads
	sleep "0.$(($(od -An -N1 -tu1 /dev/urandom) % 7 + 3))"
	kill -9 "$KBS_PID"
	wait "$KBS_PID" 2>/dev/null
	wait "$WPID" 2>/dev/null
done

DB=$ST/kbs.db
N=$(sqlite3 "$DB" "SELECT COUNT(*) FROM resources WHERE path LIKE 'kill/%'")
ORPHANS=$(sqlite3 "$DB" "SELECT COUNT(*) FROM resources r WHERE path LIKE 'kill/%' AND NOT EXISTS
	(SELECT 1 FROM audit a WHERE a.event = 'admin' AND a.decision = 'put-resource' AND a.path = r.path)")
[ "$N" -gt 0 ] || fail "no upload reached the store"
[ "$ORPHANS" = 0 ] || fail "$ORPHANS of $N stored resources have no audit entry"
sqlite3 "$DB" "SELECT path FROM resources WHERE path LIKE 'kill/%'" | sort >"$TMP/stored"
sort -u "$TMP/acked" >"$TMP/acked.s"
LOST=$(comm -23 "$TMP/acked.s" "$TMP/stored" | wc -l)
[ "$LOST" = 0 ] || fail "$LOST acknowledged uploads are not in the store"
echo "  $ROUNDS kills, $N uploads stored, $(wc -l <"$TMP/acked.s") acknowledged" >&2
finish
