#!/bin/sh
# Robustness of `serve` and `connect` on loopback, serve in the dev TEE:
# an attestation request without header lines is answered;
# clients that drop a download leave neither a spinning loop nor open
# sockets behind; a trickling client is cut at the handshake deadline; an
# idle connection at the idle timeout; connection N+1 from one address is
# refused at once; and out of file descriptors (ulimit -n 64) the proxy
# neither spins nor floods its log, and serves again once the flood ends.
set -u
. "$(dirname "$0")/lib.sh"
H="python3 $(dirname "$0")/ratls_helper.py"
NOLEAK=ASAN_OPTIONS=detect_leaks=0
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	# Give them 5 s to drain and exit, then stop them for good.
	i=0
	while [ $i -lt 50 ]; do
		alive=0
		for p in $PIDS; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.1
		i=$((i + 1))
	done
	for p in $PIDS; do
		kill -0 "$p" 2>/dev/null && echo "  (pid $p had not exited 5 s after SIGTERM: $(tr '\0' ' ' <"/proc/$p/cmdline"))" >&2
		kill -KILL "$p" 2>/dev/null
	done
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
# The proxy itself, not the dev TEE's processes around it: the one whose
# command line has the ready file but not "devtee run".
pid_of() {
	for p in $(pgrep -f "ready-file $1"); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q "devtee run" || echo "$p"
	done | head -1
}
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
nfd() { ls "/proc/$1/fd" | wc -l; }
HZ=$(getconf CLK_TCK)
# cpu_flat NAME PID: CPU time grows by less than half a second over 3 s.
cpu_flat() {
	a=$(cpu "$2")
	sleep 3
	b=$(cpu "$2")
	[ $((b - a)) -lt $((HZ / 2)) ] || fail "$1 used $((b - a)) ticks of CPU in 3 s while idle"
}
# fds_back NAME PID IDLE: the descriptor count returns to IDLE within 5 s.
fds_back() {
	i=0
	while [ "$(nfd "$2")" -gt "$3" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	[ "$(nfd "$2")" -le "$3" ] || fail "$1 holds $(nfd "$2") descriptors, $3 when idle"
}
# A python client: CMD ADDR [ARGS]; exit 0 when the behaviour is as expected.
py() {
	python3 - "$@" <<'PY'
import socket, ssl, struct, sys, time
cmd, addr = sys.argv[1], sys.argv[2]
host, port = addr.rsplit(":", 1)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

def conn(tls):
    s = socket.create_connection((host, int(port)), timeout=10)
    return ctx.wrap_socket(s) if tls else s

def closed_within(s, secs):
    """Seconds until the peer closes s, or None if it stays open that long."""
    t0 = time.time()
    s.settimeout(secs)
    try:
        while True:
            if not s.recv(4096):
                return time.time() - t0
    except (ConnectionError, ssl.SSLError, OSError) as e:
        if isinstance(e, socket.timeout):
            return None
        return time.time() - t0

if cmd in ("drop", "drop-tls"):
    # Ask for a large file, read a little, then reset the connection.
    for _ in range(3):
        s = conn(cmd == "drop-tls")
        s.sendall(b"GET /large.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        got = 0
        while got < 65536:
            d = s.recv(16384)
            if not d:
                sys.exit("closed before any body")
            got += len(d)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    time.sleep(0.5)
elif cmd == "fresh":
    # The attestation request with no header lines at all.
    s = conn(True)
    s.sendall(b"GET /.well-known/cloister/attestation?nonce=00112233 HTTP/1.1\r\n\r\n")
    got = s.recv(65536)
    sys.exit(0 if got.startswith(b"HTTP/1.1 200") else "got %r" % got[:40])
elif cmd == "get":
    s = conn(sys.argv[3] == "tls")
    s.sendall(b"GET /small.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    got = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
    sys.exit(0 if got.startswith(b"HTTP/1.1 200") and len(got) > 1000 else "bad reply")
elif cmd == "trickle":
    # One byte every half second of an attestation request after the handshake.
    s = conn(True)
    t0 = time.time()
    try:
        for b in b"GET /.well-known/cloister/attestation?nonce=" + b"00" * 60:
            s.sendall(bytes([b]))
            time.sleep(0.5)
            if time.time() - t0 > 20:
                sys.exit("still open after 20 s")
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    took = time.time() - t0
    sys.exit(0 if took < 10 else "cut after %.1f s" % took)
elif cmd == "silent":
    # TCP only, no ClientHello: cut at the deadline.
    t = closed_within(conn(False), 15)
    sys.exit(0 if t is not None and t < 10 else "not cut: %s" % t)
elif cmd == "idle":
    s = conn(sys.argv[3] == "tls")
    s.sendall(b"GET /small.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
    while n > 0:
        n -= len(s.recv(n))
    t = closed_within(s, 15)
    sys.exit(0 if t is not None and t < 10 else "idle connection kept: %s" % t)
elif cmd == "cap":
    # N connections held open; connection N+1 is closed at once.
    n = int(sys.argv[3])
    held = [conn(False) for _ in range(n)]
    time.sleep(0.3)
    t = closed_within(conn(False), 3)
    if t is None or t > 1:
        sys.exit("connection %d was not refused promptly: %s" % (n + 1, t))
    for s in held:
        if closed_within(s, 0.1) is not None:
            sys.exit("a connection under the cap was closed")
elif cmd == "flood":
    # Many more connections than descriptors, held for a while, then closed.
    n, secs = int(sys.argv[3]), float(sys.argv[4])
    held = []
    for _ in range(n):
        try:
            s = socket.socket()
            s.settimeout(2)
            s.connect((host, int(port)))
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

expect_exit 2 "$CLOISTER" serve --listen 127.0.0.1:0 --upstream 127.0.0.1:1 --idle-timeout x
expect_exit 2 "$CLOISTER" serve --listen 127.0.0.1:0 --upstream 127.0.0.1:1 --max-connections 0
expect_exit 2 "$CLOISTER" connect --listen 127.0.0.1:0 --server 127.0.0.1:1 --handshake-timeout 0
"$CLOISTER" serve --help | grep -q -- "--max-connections-per-client" || fail "serve --help lacks the limits"
"$CLOISTER" connect --help | grep -q -- "--idle-timeout" || fail "connect --help lacks the limits"

S=$TMP/state
cp "$("$CLOISTER" devtee root --state "$S")" "$TMP/root.pem"
ROOT=$TMP/root.pem
mkdir "$TMP/www"
head -c 1000 /dev/urandom >"$TMP/www/small.bin"
head -c $((32 * 1024 * 1024)) /dev/zero >"$TMP/www/large.bin"
# The upstream reports each dropped client on stderr: keep that out of the way.
bg $H upstream "$TMP/www" "$TMP/up.port" "$TMP/hits" 2>"$TMP/up.log"
wait_file "$TMP/up.port"
UP=127.0.0.1:$(cat "$TMP/up.port")

# serve <name> [options]: start serve in the dev TEE, with its ready file $TMP/<name>.addr.
serve() {
	n=$1
	shift
	bg env $NOLEAK "$CLOISTER" devtee run --state "$S" -- "$CLOISTER" serve --listen 127.0.0.1:0 \
		--upstream "$UP" --ready-file "$TMP/$n.addr" "$@" 2>"$TMP/$n.log"
	wait_file "$TMP/$n.addr"
}

# ---- a dropped download, directly and through connect
serve s1 --handshake-timeout 2 --idle-timeout 3 --max-connections-per-client 4
SRV=$(cat "$TMP/s1.addr")
SP=$(pid_of "$TMP/s1.addr")
[ -n "$SP" ] || fail "cannot find serve's pid"
M=$("$CLOISTER" devtee measure -- "$CLOISTER" serve --listen 127.0.0.1:0 --upstream "$UP" \
	--ready-file "$TMP/s1.addr" --handshake-timeout 2 --idle-timeout 3 --max-connections-per-client 4)
printf '{"devtee": {"measurement": ["%s"]}}\n' "$M" >"$TMP/rv.json"
bg "$CLOISTER" connect --listen 127.0.0.1:0 --server "$SRV" --devtee-root "$ROOT" \
	--reference-values "$TMP/rv.json" --ready-file "$TMP/c1.addr" 2>"$TMP/c1.log"
wait_file "$TMP/c1.addr"
L=$(cat "$TMP/c1.addr")
CP=$(pid_of "$TMP/c1.addr")
py get "$L" plain || fail "a request through connect and serve"
sleep 0.5
SIDLE=$(nfd "$SP")
CIDLE=$(nfd "$CP")

py drop-tls "$SRV" || fail "dropped downloads from serve"
fds_back serve "$SP" "$SIDLE"
cpu_flat serve "$SP"
py drop "$L" || fail "dropped downloads through connect"
fds_back connect "$CP" "$CIDLE"
fds_back serve "$SP" "$SIDLE"
cpu_flat connect "$CP"
cpu_flat serve "$SP"
py get "$L" plain || fail "a request after the dropped downloads"

# ---- the attestation endpoint without header lines
py fresh "$SRV" || fail "an attestation request without header lines"

# ---- deadlines and idle timeouts
py trickle "$SRV" || fail "a trickled attestation request outlived the deadline"
grep -q "no complete attestation request within 2 s" "$TMP/s1.log" || fail "serve logs the deadline"
py silent "$SRV" || fail "a silent client outlived the handshake deadline"
py idle "$SRV" tls || fail "an idle connection to serve outlived --idle-timeout"
grep -q "idle for 3 s" "$TMP/s1.log" || fail "serve logs the idle timeout: $(tail -3 "$TMP/s1.log")"
fds_back serve "$SP" "$SIDLE"

# ---- connection N+1 from one address
py cap "$SRV" 4 || fail "the per-client cap"
grep -q "limit for the client's address" "$TMP/s1.log" || fail "serve logs the per-client refusal"
fds_back serve "$SP" "$SIDLE"
py get "$SRV" tls || fail "a request after the per-client cap"

# ---- out of descriptors: with the default cap (fitted to the limit), and
# with a cap above what the limit holds, so accept itself fails.
for n in fit over; do
	cap=""
	[ $n = over ] && cap="--max-connections 1000"
	bg env $NOLEAK sh -c 'ulimit -n 64 && exec "$@"' sh "$CLOISTER" devtee run --state "$S" -- \
		"$CLOISTER" serve --listen 127.0.0.1:0 --upstream "$UP" --ready-file "$TMP/$n.addr" \
		--max-connections-per-client 0 $cap 2>"$TMP/$n.log"
	wait_file "$TMP/$n.addr"
	A=$(cat "$TMP/$n.addr")
	P=$(pid_of "$TMP/$n.addr")
	c0=$(cpu "$P")
	py flood "$A" 300 3 || fail "flood ($cap)"
	c1=$(cpu "$P")
	# Behavioural bound: a spinning accept loop burns all of the 3 s.
	[ $((c1 - c0)) -lt $((HZ * 3 / 2)) ] || fail "serve ($cap) used $((c1 - c0)) ticks during the flood"
	sz=$(wc -c <"$TMP/$n.log")
	[ "$sz" -lt 65536 ] || fail "serve ($cap) logged $sz bytes during the flood"
	sleep 0.5
	py get "$A" tls || fail "a request after the flood ($cap): $(tail -3 "$TMP/$n.log")"
	cpu_flat "serve ($cap)" "$P"
done
grep -q "out of file descriptors" "$TMP/over.log" || fail "serve logs running out of descriptors: $(head -5 "$TMP/over.log")"
# Sanitizer builds report memory errors as they happen.
for f in "$TMP"/*.log; do
	grep -q "ERROR: AddressSanitizer\|runtime error" "$f" && fail "sanitizer report in $f: $(head -30 "$f")"
done
finish
