#!/bin/sh
# Fetching a VCEK from an AMD KDS compatible server: a loopback python HTTP
# server laid out like KDS serves the recorded VCEK. The first run fetches and
# caches it, the second verifies from the cache with the server gone, and a
# chip the server does not know gives a clear rejection.
set -u
. "$(dirname "$0")/lib.sh"
T=$V/sev-snp/trustee
AT=2025-06-01T00:00:00Z
command -v python3 >/dev/null 2>&1 || { echo "  skip: no python3" >&2; exit 0; }

HWID=c38427a30d4c7af9d96f7a15b97269825a64cb76a2352ffd5d18115d89ad473f8e8c0bcd9a5d9286612bad4aadfb4426205a3b9e4fea82301135a170e477524e
mkdir -p "$TMP/kds/vcek/v1/Milan" "$TMP/cache"
cp "$T/test-vcek.der" "$TMP/kds/vcek/v1/Milan/$HWID"

python3 "$(dirname "$0")/kds_server.py" "$TMP/kds" "$TMP/port" 2>"$TMP/server.log" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; rm -rf "$TMP"' EXIT
i=0
while [ ! -s "$TMP/port" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$TMP/port" ] || { fail "KDS test server did not start"; finish; }
URL=http://127.0.0.1:$(cat "$TMP/port")

expect_exit 0 "$CLOISTER" verify --kds-url "$URL" --cache-dir "$TMP/cache" --at "$AT" "$T/test-report.bin"
expect_json claims.product Milan
grep -q "GET /vcek/v1/Milan/$HWID?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115" "$TMP/server.log" ||
	fail "KDS request has the hwID and SPLs"
ls "$TMP/cache/amd/" 2>/dev/null | grep -q "^vcek-Milan-$HWID-" || fail "fetched VCEK is cached"

kill "$SERVER" 2>/dev/null
wait "$SERVER" 2>/dev/null
expect_exit 0 "$CLOISTER" verify --kds-url "$URL" --cache-dir "$TMP/cache" --at "$AT" "$T/test-report.bin"
expect_exit 0 "$CLOISTER" verify --offline --cache-dir "$TMP/cache" --at "$AT" "$T/test-report.bin"

# Restart the server without the VCEK: 404 is a clear rejection.
rm -f "$TMP/port" "$TMP/kds/vcek/v1/Milan/$HWID"
python3 "$(dirname "$0")/kds_server.py" "$TMP/kds" "$TMP/port" 2>"$TMP/server.log" &
SERVER=$!
i=0
while [ ! -s "$TMP/port" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
URL=http://127.0.0.1:$(cat "$TMP/port")
expect_exit 1 "$CLOISTER" verify --kds-url "$URL" --cache-dir "$TMP/cache2" --at "$AT" "$T/test-report.bin"
expect_json status rejected
grep -q "404" "$OUT" || fail "404 is named in the reason"
# A VLEK-signed report is never fetched.
expect_exit 1 "$CLOISTER" verify --kds-url "$URL" --cache-dir "$TMP/cache2" --at "$AT" "$T/test-vlek-report.bin"
grep -q -- "--vcek" "$OUT" || fail "VLEK asks for --vcek"

finish
