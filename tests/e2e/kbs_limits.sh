#!/bin/sh
# The serving process: no core dumps, not dumpable (its /proc files belong to
# root even when it runs as another user, who then cannot read its memory or
# environment), and the session cap answered with 503 TooManySessions.
. tests/e2e/lib.sh
ST=$TMP/state
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
KBS_PID=
trap 'kill $KBS_PID 2>/dev/null; rm -rf "$TMP"' EXIT
AS=""
# As root, run the KBS as nobody: ownership of /proc/PID then shows dumpability.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	AS="setpriv --reuid=65534 --regid=65534 --clear-groups"
	chmod 755 "$TMP"
	mkdir -m 700 "$ST" && chown 65534:65534 "$ST"
fi
$AS "$CLOISTER" kbs serve --listen 127.0.0.1:"$PORT" --state "$ST" --rate-limit 0 --threads 2 \
	--max-sessions 2 >"$TMP/kbs.log" 2>&1 &
KBS_PID=$!
i=0
until grep -q "kbs: ready" "$TMP/kbs.log" 2>/dev/null; do
	i=$((i + 1))
	[ $i -gt 200 ] && { fail "kbs did not start"; cat "$TMP/kbs.log" >&2; finish; }
	sleep 0.05
done

grep -q '^Max core file size  *0  *0 ' "/proc/$KBS_PID/limits" ||
	fail "core dumps are not off: $(grep core "/proc/$KBS_PID/limits")"
if [ -n "$AS" ]; then
	[ "$(awk '/^Uid:/{print $2}' "/proc/$KBS_PID/status")" = 65534 ] || fail "the KBS does not run as nobody"
	[ "$(stat -c %u "/proc/$KBS_PID/environ")" = 0 ] || fail "the KBS process is dumpable"
	$AS cat "/proc/$KBS_PID/environ" >/dev/null 2>&1 && fail "its own uid can read the KBS's environment"
else
	echo "  (not root: dumpability not checked)" >&2
fi

auth() { curl -s -o "$TMP/a.out" -w '%{http_code}' -d '{"version":"0.1.1","tee":"devtee","extra-params":""}' "$URL/kbs/v0/auth"; }
[ "$(auth)" = 200 ] && [ "$(auth)" = 200 ] || fail "first two sessions"
[ "$(auth)" = 503 ] || fail "third session over the cap: not 503"
[ "$(json_get title <"$TMP/a.out")" = TooManySessions ] || fail "cap problem type: $(cat "$TMP/a.out")"
kill -TERM "$KBS_PID"
wait "$KBS_PID" || fail "kbs exited with $? on SIGTERM"
finish
