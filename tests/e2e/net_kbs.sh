#!/bin/sh
# Robustness of the KBS's HTTP front on loopback: a request head sent a byte
# at a time is cut at --request-timeout; connection N+1 from one address is
# refused at once; and out of file descriptors (ulimit -n 64) the KBS
# neither spins nor floods its log, and serves again once the flood ends.
set -u
. "$(dirname "$0")/lib.sh"
DT=$TMP/devtee
ROOT=$("$CLOISTER" devtee root --state "$DT") || fail "devtee root"
HZ=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start NAME [options]: a KBS with its own state, log $TMP/NAME.log, port $PORT, pid $KBS.
start() {
	n=$1
	shift
	PORT=$(freeport)
	sh -c 'ulimit -n "$0" && exec "$@"' "${NOFILE:-1024}" "$CLOISTER" kbs serve \
		--listen 127.0.0.1:"$PORT" --state "$TMP/$n" --devtee-root "$ROOT" --rate-limit 0 \
		--threads 2 "$@" >"$TMP/$n.log" 2>&1 &
	KBS=$!
	i=0
	until grep -q "kbs: ready" "$TMP/$n.log" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 200 ] && { fail "kbs $n did not start: $(cat "$TMP/$n.log")"; return 1; }
		sleep 0.05
	done
}
stop() {
	kill -TERM "$KBS" 2>/dev/null
	wait "$KBS" 2>/dev/null
	grep -q "Sanitizer\|runtime error" "$TMP/$1.log" && fail "sanitizer report: $(cat "$TMP/$1.log")"
	return 0
}
get() { curl -sf -m 10 -o /dev/null "http://127.0.0.1:$PORT/kbs/v0/jwks"; }

py() {
	python3 - "$@" <<'PY'
import socket, sys, time
cmd, port = sys.argv[1], int(sys.argv[2])

def conn():
    return socket.create_connection(("127.0.0.1", port), timeout=10)

def closed_within(s, secs):
    t0 = time.time()
    s.settimeout(secs)
    try:
        while True:
            if not s.recv(4096):
                return time.time() - t0
    except socket.timeout:
        return None
    except OSError:
        return time.time() - t0

if cmd == "trickle":
    # A request head one byte every half second: a per-read timer never fires.
    s = conn()
    t0 = time.time()
    try:
        for b in b"GET /kbs/v0/jwks HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"y" * 200:
            s.sendall(bytes([b]))
            time.sleep(0.5)
            if time.time() - t0 > 20:
                sys.exit("still open after 20 s")
            s.settimeout(0)
            try:
                if s.recv(1) == b"":
                    break
            except BlockingIOError:
                pass
            finally:
                s.settimeout(10)
    except OSError:
        pass
    took = time.time() - t0
    sys.exit(0 if took < 10 else "cut after %.1f s" % took)
elif cmd == "body":
    # A complete head, then a body one byte a second.
    s = conn()
    s.sendall(b"POST /kbs/v0/auth HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
    t0 = time.time()
    try:
        for _ in range(100):
            s.sendall(b"{")
            time.sleep(0.5)
            if time.time() - t0 > 20:
                sys.exit("still open after 20 s")
    except OSError:
        pass
    took = time.time() - t0
    sys.exit(0 if took < 10 else "cut after %.1f s" % took)
elif cmd == "cap":
    n = int(sys.argv[3])
    held = [conn() for _ in range(n)]
    time.sleep(0.3)
    t = closed_within(conn(), 3)
    if t is None or t > 1:
        sys.exit("connection %d was not refused promptly: %s" % (n + 1, t))
    for s in held:
        if closed_within(s, 0.1) is not None:
            sys.exit("a connection under the cap was closed")
elif cmd == "flood":
    n, secs = int(sys.argv[3]), float(sys.argv[4])
    held = []
    for _ in range(n):
        try:
            s = socket.socket()
            s.settimeout(2)
            s.connect(("127.0.0.1", port))
            held.append(s)
        except OSError:
            pass
    time.sleep(secs)
    for s in held:
        s.close()
else:
    sys.exit("unknown command")
PY
}

expect_exit 2 "$CLOISTER" kbs serve --listen 127.0.0.1:0 --request-timeout 0
expect_exit 2 "$CLOISTER" kbs serve --listen 127.0.0.1:0 --max-connections x
"$CLOISTER" kbs --help 2>&1 | grep -q -- "--max-connections-per-client" || fail "kbs --help lacks the limits"

start k1 --request-timeout 2 --max-connections-per-client 4
get || fail "a request"
py trickle "$PORT" || fail "a trickled request head outlived --request-timeout"
py body "$PORT" || fail "a trickled request body outlived --request-timeout"
grep -q "did not arrive within 2 s" "$TMP/k1.log" || fail "the kbs logs the deadline"
py cap "$PORT" 4 || fail "the per-client cap"
grep -q "limit for the client's address" "$TMP/k1.log" || fail "the kbs logs the per-client refusal"
sleep 0.3
get || fail "a request after the per-client cap"
stop k1

# Out of descriptors: with the default cap (fitted to the limit), and with a
# cap above what the limit holds, so accept itself fails.
for n in fit over; do
	cap=""
	[ $n = over ] && cap="--max-connections 1000"
	NOFILE=64 start $n --max-connections-per-client 0 $cap
	c0=$(cpu "$KBS")
	py flood "$PORT" 300 3 || fail "flood ($n)"
	c1=$(cpu "$KBS")
	[ $((c1 - c0)) -lt $((HZ * 3 / 2)) ] || fail "the kbs ($n) used $((c1 - c0)) ticks during the flood"
	sz=$(wc -c <"$TMP/$n.log")
	[ "$sz" -lt 65536 ] || fail "the kbs ($n) logged $sz bytes during the flood"
	sleep 0.5
	get || fail "a request after the flood ($n): $(tail -3 "$TMP/$n.log")"
	a=$(cpu "$KBS")
	sleep 2
	b=$(cpu "$KBS")
	[ $((b - a)) -lt $((HZ / 2)) ] || fail "the kbs ($n) used $((b - a)) ticks in 2 s after the flood"
	stop $n
done
grep -q "out of file descriptors" "$TMP/over.log" || fail "the kbs logs running out of descriptors: $(head -5 "$TMP/over.log")"
finish
